//! A container on an overlay network, in the order of its life (step 04's
//! `Attach`):
//!
//! - `created`: a lease (10 s), an address from the cluster's IPAM under
//!   it, a local record, its `/etc/hosts`;
//! - `ready` (in the monitor, the init waiting at the gate): the network's
//!   bridge and VXLAN device on this host if missing, the veth (MTU 1450
//!   both ends, docker's MAC from the address), the endpoint registered,
//!   a first sync; then the monitor's tick: every second, keep the lease
//!   alive and sync the network;
//! - `finished`: the tick stops, the address and the endpoint go, the lease
//!   is revoked, a last sync (the bridge and device go with the last local
//!   container).
//!
//! There is no egress: docker gives each overlay container a second
//! interface on a local bridge (docker_gwbridge) for the outside world;
//! minibox's overlay containers reach each other only.

use crate::dataplane::{self, Local};
use crate::etcd::Etcd;
use crate::netlink::Netlink;
use crate::store::{self, Endpoint, OverlayNetwork};
use anyhow::Context;
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How often a monitor keeps its lease alive and syncs its network.
pub const TICK: Duration = Duration::from_secs(1);

/// Step 04's `Attach`, for an overlay network.
pub struct Overlay {
    pub root: PathBuf,
    pub etcd: Etcd,
    /// This host's underlay address (`--cluster-advertise`).
    pub advertise: Ipv4Addr,
    pub network: OverlayNetwork,
    local: Option<Local>,
    /// The monitor's tick: dropping the sender stops it.
    ticker: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Overlay {
    pub fn new(root: &Path, etcd: Etcd, advertise: Ipv4Addr, network: OverlayNetwork) -> Overlay {
        Overlay {
            root: root.to_path_buf(),
            etcd,
            advertise,
            network,
            local: None,
            ticker: None,
        }
    }
}

impl step04::container::Attach for Overlay {
    fn created(&mut self, id: &str, name: &str, dir: &Path) -> anyhow::Result<()> {
        let lease = self.etcd.grant_lease(store::LEASE_TTL)?;
        let made = (|| -> anyhow::Result<Local> {
            let ip = crate::ipam::allocate(&self.etcd, &self.network, id, lease)?;
            let endpoint = Endpoint {
                network: self.network.name.clone(),
                id: id.to_string(),
                name: name.to_string(),
                ip,
                mac: store::mac_of(ip),
                host: self.advertise,
            };
            let local = Local {
                network: self.network.clone(),
                endpoint: endpoint.clone(),
                lease,
                store: self.etcd.endpoints().to_vec(),
            };
            dataplane::save_local(&self.root, &local)?;
            dataplane::write_hosts_new(dir, &endpoint)?;
            Ok(local)
        })();
        match made {
            Ok(local) => {
                self.local = Some(local);
                Ok(())
            }
            Err(error) => {
                // Nothing half-made: the lease takes the address with it.
                let _ = self.etcd.revoke(lease);
                dataplane::remove_local(&self.root, id);
                Err(error)
            }
        }
    }

    fn binds(&self) -> Vec<(PathBuf, PathBuf)> {
        match &self.local {
            Some(local) => vec![(
                dataplane::hosts_path(&self.root, &local.endpoint.id),
                PathBuf::from("/etc/hosts"),
            )],
            None => Vec::new(),
        }
    }

    fn ready(&mut self, pid: Pid) -> anyhow::Result<Option<serde_json::Value>> {
        let local = self.local.clone().context("no address allocated")?;
        let endpoint = &local.endpoint;
        let subnet = crate::subnet::Subnet::parse(&self.network.subnet)?;
        {
            let _lock = dataplane::lock(&self.root, &self.network.name)?;
            let mut host = Netlink::open()?;
            let (bridge, _, mtu) = dataplane::ensure(&mut host, &self.network, self.advertise)?;
            let veth = step05::attach::host_interface(&endpoint.id);
            step05::plumbing::plumb(&mut host, &veth, pid.as_raw(), bridge)?;
            let index = host.index(&veth)?;
            set_link(&mut host, index, mtu, None)?;
            // Inside: IPv6 off before eth0 is up, docker's MAC, the MTU,
            // the address; no default route (no egress, see above).
            crate::netlink::in_netns(pid.as_raw(), || dataplane::no_ipv6("eth0"))??;
            let mut inside = Netlink::open_in(pid.as_raw())?;
            let eth0 = inside.index("eth0")?;
            set_link(&mut inside, eth0, mtu, Some(&endpoint.mac))?;
            step05::plumbing::add_address(&mut inside, eth0, endpoint.ip, subnet.prefix)?;
            step05::plumbing::set_up(&mut inside, eth0, None)?;
            let lo = inside.index("lo")?;
            step05::plumbing::set_up(&mut inside, lo, None)?;
        }
        crate::endpoints::register(&self.etcd, endpoint, local.lease)?;
        dataplane::sync(&self.root, &self.etcd, &self.network, self.advertise)?;
        self.ticker = Some(tick(
            self.root.clone(),
            self.etcd.clone(),
            self.network.clone(),
            self.advertise,
            local.lease,
        ));
        Ok(Some(serde_json::json!({
            "Ports": {},
            "Networks": {
                self.network.name.clone(): {
                    "NetworkID": self.network.id,
                    "Gateway": "",
                    "IPAddress": endpoint.ip.to_string(),
                    "IPPrefixLen": subnet.prefix,
                    "MacAddress": endpoint.mac,
                }
            }
        })))
    }

    fn finished(&mut self, id: &str) {
        if let Some((stop, thread)) = self.ticker.take() {
            drop(stop);
            let _ = thread.join();
        }
        if let Some(local) = self.local.take() {
            release(&self.root, &self.etcd, &local);
        } else {
            dataplane::remove_local(&self.root, id);
        }
    }
}

/// Everything a container had on its overlay network, given back (best
/// effort: a store that is down keeps its keys until the lease expires).
pub fn release(root: &Path, etcd: &Etcd, local: &Local) {
    // Your functions run in here (ipam::release, the sync): one that panics
    // (a part still unwritten, say) must not stop the container's cleanup,
    // or its cgroup and veths stay on the host after it.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        release_all(root, etcd, local)
    }));
}

fn release_all(root: &Path, etcd: &Etcd, local: &Local) {
    let endpoint = &local.endpoint;
    let _ = crate::ipam::release(etcd, &endpoint.network, endpoint.ip, &endpoint.id);
    let _ = etcd.delete(&store::endpoint_key(&endpoint.network, &endpoint.id));
    let _ = etcd.revoke(local.lease);
    dataplane::remove_local(root, &endpoint.id);
    step05::attach::delete_veths(std::slice::from_ref(&endpoint.id));
    if dataplane::sync(root, etcd, &local.network, endpoint.host).is_err() {
        // The store is down: the local side still goes with the last
        // container.
        if let (Ok(_lock), Ok(mut netlink)) =
            (dataplane::lock(root, &local.network.name), Netlink::open())
        {
            if !dataplane::locals(root)
                .iter()
                .any(|l| l.network.name == local.network.name)
            {
                let _ = dataplane::teardown(&mut netlink, &local.network);
            }
        }
    }
}

/// The monitor's periodic work, on a thread of its own: keep the lease
/// alive and sync the network, every [`TICK`], until the sender is dropped.
fn tick(
    root: PathBuf,
    etcd: Etcd,
    network: OverlayNetwork,
    me: Ipv4Addr,
    lease: i64,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
            // A store that is briefly down (a member killed, an election)
            // is tried again at the next tick; the lease's TTL is the
            // margin.
            let _ = etcd.keepalive(lease);
            let _ = dataplane::sync(&root, &etcd, &network, me);
        }
    });
    (stop, thread)
}

/// RTM_SETLINK: `ip link set dev X mtu MTU [address MAC]`.
fn set_link(netlink: &mut Netlink, index: u32, mtu: u32, mac: Option<&str>) -> anyhow::Result<()> {
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    use netlink_packet_route::RouteNetlinkMessage;
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.attributes.push(LinkAttribute::Mtu(mtu));
    if let Some(mac) = mac {
        message
            .attributes
            .push(LinkAttribute::Address(store::mac_bytes(mac)?));
    }
    netlink
        .request(RouteNetlinkMessage::SetLink(message), 0)
        .context("cannot set the MTU and MAC of a veth")
}

/// Before any command: what containers that are gone still hold on overlay
/// networks (a monitor killed with SIGKILL never ran `finished`).
pub fn sweep(root: &Path) {
    let containers = step04::state::Containers::new_at(root);
    for local in dataplane::locals(root) {
        let alive = match containers.read(std::ffi::OsStr::new(&local.endpoint.id)) {
            None => false,
            Some(Ok(record)) => {
                let record = step04::state::refresh(record);
                record.is_running() || record.state.status == "created"
            }
            Some(Err(_)) => true,
        };
        if !alive {
            release(root, &Etcd::new(&local.store), &local);
        }
    }
}
