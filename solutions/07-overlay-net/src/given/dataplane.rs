//! An overlay network on this host: its bridge and VXLAN device, made at
//! the first local endpoint and removed with the last, and the sync that
//! keeps the device's entries and the local containers' `/etc/hosts` equal
//! to what the store says.
//!
//! ```text
//! ip link add ovbr256 type bridge && ip link set ovbr256 up
//! ip link add ovx256 mtu 1450 master ovbr256 type vxlan id 256 dstport 4789 \
//!     local 10.99.0.1 dev eth0 nolearning proxy       # your vxlan::add_vxlan
//! ip link set ovx256 up
//! ```
//!
//! What this host has of each container on an overlay network is a small
//! record under `ROOT/overlay/` (its endpoint, its lease, the store): the
//! sync reads the local containers from it, and the sweep finds there what
//! a killed monitor left.
//!
//! Who-is-where converges by a periodic sync rather than an etcd watch:
//! every local container's monitor syncs its network once a second (and
//! each run, stop and rm does at once), so a host learns an endpoint at
//! most about a second after it is registered, and forgets one at most a
//! second after its key goes, with no long-lived stream to re-establish
//! after a member dies. A watch would cut that second to milliseconds, at
//! the price of a stream per network and a resync after every break.

use crate::entries::{self, Change};
use crate::etcd::Etcd;
use crate::netlink::Netlink;
use crate::store::{Endpoint, OverlayNetwork, VXLAN_OVERHEAD};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// A container of this host on an overlay network: `ROOT/overlay/ID.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Local {
    pub network: OverlayNetwork,
    pub endpoint: Endpoint,
    pub lease: i64,
    /// The store's members, for the sweep.
    pub store: Vec<String>,
}

fn dir(root: &Path) -> PathBuf {
    root.join("overlay")
}

pub fn save_local(root: &Path, local: &Local) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir(root))?;
    let path = dir(root).join(format!("{}.json", local.endpoint.id));
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, serde_json::to_vec(local)?)?;
    // rename(2): a reader sees the old file or the new one, never half.
    std::fs::rename(&temp, &path)?;
    Ok(())
}

pub fn remove_local(root: &Path, id: &str) {
    let _ = std::fs::remove_file(dir(root).join(format!("{id}.json")));
}

/// Every local record (a damaged one is skipped).
pub fn locals(root: &Path) -> Vec<Local> {
    let Ok(entries) = std::fs::read_dir(dir(root)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// flock(2) on `ROOT/overlay/NETWORK.lock`: one sync (or set-up, or
/// tear-down) of a network at a time on this host. Held until dropped.
pub fn lock(root: &Path, network: &str) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(dir(root))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir(root).join(format!("{network}.lock")))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("cannot lock the overlay network")
}

/// `sysctl -w net.ipv6.conf.DEV.disable_ipv6=1`: our overlays are IPv4;
/// a device with IPv6 would send router solicitations across. A kernel
/// without IPv6 has nothing to turn off.
pub fn no_ipv6(dev: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.with_context(|| format!("cannot turn IPv6 off on {dev}")),
    }
}

/// The device holding `address` (`--cluster-advertise`), and its MTU.
pub fn underlay(netlink: &mut Netlink, address: Ipv4Addr) -> anyhow::Result<(u32, u32)> {
    use netlink_packet_route::link::LinkAttribute;
    let prefix = netlink
        .prefixes()?
        .into_iter()
        .find(|p| p.kind == "address" && p.address == address)
        .with_context(|| {
            format!("--cluster-advertise {address}: no interface of this host has that address")
        })?;
    let link = netlink
        .link(&prefix.device)?
        .with_context(|| format!("the interface {} went away", prefix.device))?;
    let mtu = link
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(mtu) => Some(*mtu),
            _ => None,
        })
        .unwrap_or(1500);
    Ok((link.header.index, mtu))
}

/// The network's bridge and VXLAN device on this host, made if missing
/// (call under [`lock`]): their indexes, and the MTU of the overlay.
pub fn ensure(
    netlink: &mut Netlink,
    network: &OverlayNetwork,
    advertise: Ipv4Addr,
) -> anyhow::Result<(u32, u32, u32)> {
    let (device, underlay_mtu) = underlay(netlink, advertise)?;
    let mtu = underlay_mtu - VXLAN_OVERHEAD;
    let bridge = match netlink.link(&network.bridge())? {
        Some(link) => link.header.index,
        None => {
            netlink.add_bridge(&network.bridge())?;
            no_ipv6(&network.bridge())?;
            let index = netlink.index(&network.bridge())?;
            step05::plumbing::set_up(netlink, index, None)?;
            index
        }
    };
    let vxlan = match netlink.link(&network.vxlan())? {
        Some(link) => link.header.index,
        None => {
            crate::vxlan::add_vxlan(
                netlink,
                &crate::vxlan::VxlanSpec {
                    name: network.vxlan(),
                    vni: network.vni,
                    local: advertise,
                    underlay: device,
                    bridge,
                    mtu,
                },
            )?;
            no_ipv6(&network.vxlan())?;
            let index = netlink.index(&network.vxlan())?;
            step05::plumbing::set_up(netlink, index, None)?;
            index
        }
    };
    Ok((bridge, vxlan, mtu))
}

/// `ip link del` the network's VXLAN device and bridge, where they exist.
pub fn teardown(netlink: &mut Netlink, network: &OverlayNetwork) -> anyhow::Result<()> {
    for name in [network.vxlan(), network.bridge()] {
        if let Some(link) = netlink.link(&name)? {
            netlink.delete(link.header.index)?;
        }
    }
    Ok(())
}

/// Make the VXLAN device of index `vxlan` hold what the plan says. A change
/// the kernel already has (another sync was first) is no error.
pub fn apply(netlink: &mut Netlink, vxlan: u32, plan: &crate::plan::Plan) -> anyhow::Result<()> {
    let benign = |e: &anyhow::Error| {
        e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(io.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOENT))
            })
        })
    };
    let check = |r: anyhow::Result<()>| match r {
        Err(e) if !benign(&e) => Err(e),
        _ => Ok(()),
    };
    for f in &plan.delete_fdb {
        check(entries::fdb(netlink, Change::Delete, vxlan, &f.mac, f.vtep))?;
    }
    for n in &plan.delete_neighbours {
        check(entries::neighbour(
            netlink,
            Change::Delete,
            vxlan,
            n.ip,
            &n.mac,
        ))?;
    }
    for f in &plan.add_fdb {
        check(entries::fdb(netlink, Change::Add, vxlan, &f.mac, f.vtep))?;
    }
    for n in &plan.add_neighbours {
        check(entries::neighbour(
            netlink,
            Change::Add,
            vxlan,
            n.ip,
            &n.mac,
        ))?;
    }
    Ok(())
}

/// Sync `network` on this host: the store's endpoints against the VXLAN
/// device's entries (your plan, applied), the local containers' `/etc/hosts`
/// rewritten; the bridge and device removed when no local container is
/// left on it.
pub fn sync(
    root: &Path,
    etcd: &Etcd,
    network: &OverlayNetwork,
    me: Ipv4Addr,
) -> anyhow::Result<()> {
    let _lock = lock(root, &network.name)?;
    let mine: Vec<Local> = locals(root)
        .into_iter()
        .filter(|l| l.network.name == network.name)
        .collect();
    let mut netlink = Netlink::open()?;
    if mine.is_empty() {
        return teardown(&mut netlink, network);
    }
    let endpoints = crate::endpoints::list(etcd, &network.name)?;
    if let Some(link) = netlink.link(&network.vxlan())? {
        let vxlan = link.header.index;
        let held = crate::given::dump::entries(vxlan)?;
        let plan = crate::plan::plan(&held, &endpoints, me);
        apply(&mut netlink, vxlan, &plan)?;
    }
    for local in &mine {
        write_hosts(root, &local.endpoint, &endpoints)?;
    }
    Ok(())
}

/// The `/etc/hosts` of a local container: itself, then every other
/// endpoint of its network, on any host (step 05's hosts_file).
pub fn write_hosts(root: &Path, me: &Endpoint, endpoints: &[Endpoint]) -> anyhow::Result<()> {
    let who = |e: &Endpoint| step05::networks::Allocation {
        id: e.id.clone(),
        name: e.name.clone(),
    };
    let others: Vec<(Ipv4Addr, step05::networks::Allocation)> = endpoints
        .iter()
        .filter(|e| e.id != me.id)
        .map(|e| (e.ip, who(e)))
        .collect();
    let text = step05::hosts::hosts_file(&who(me), me.ip, &others);
    let path = hosts_path(root, &me.id);
    // Written in place, and only when it changes: the container sees the
    // file through a bind mount of its inode (a rename would leave it the
    // old one), and a write truncates it first.
    if std::fs::read_to_string(&path).is_ok_and(|old| old != text) {
        std::fs::write(&path, text)?;
    }
    Ok(())
}

pub fn hosts_path(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id).join("hosts")
}

/// A new container's `/etc/hosts`, in its state dir `dir`: only itself
/// until the first sync.
pub fn write_hosts_new(dir: &Path, me: &Endpoint) -> anyhow::Result<()> {
    let who = step05::networks::Allocation {
        id: me.id.clone(),
        name: me.name.clone(),
    };
    std::fs::write(
        dir.join("hosts"),
        step05::hosts::hosts_file(&who, me.ip, &[]),
    )?;
    Ok(())
}
