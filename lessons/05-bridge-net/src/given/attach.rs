//! A container on a bridge network, in the order of its life: an address
//! when it is created, its veth and routes when its init is at the gate
//! (see [`crate::plumbing`]), its rules and ports, its name in the others'
//! `/etc/hosts`; and all of it undone when it ends.
//!
//! ```text
//!   host (or the lab)                      container
//!   ┌──────────── minibox0 (bridge, 10.200.0.1/16) ───┐
//!   │    mbx3f2a9c1d0e  <── veth pair ──>  eth0 10.200.0.2/16
//!   │    mbx81b0c7e4aa  <── veth pair ──>  eth0 10.200.0.3/16 (another one)
//!   └─────────────────────────────────────────────────┘
//!        default route inside: via 10.200.0.1 (the bridge)
//! ```

use crate::firewall;
use crate::hosts::hosts_file;
use crate::ipam;
use crate::netlink::Netlink;
use crate::networks::{Allocation, Network, Networks, DEFAULT};
use crate::plumbing::{configure_inside, plumb};
use crate::subnet::Subnet;
use anyhow::Context;
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The host side of a container's veth: `mbx` + 10 hex digits of its id,
/// 13 characters (interface names stop at 15).
pub fn host_interface(id: &str) -> String {
    format!("mbx{}", step04::state::prefix(id, 10))
}

// ANCHOR: refresh_hosts
/// Rewrite the `/etc/hosts` of every container on `network`, in place (the
/// containers see the file through a bind mount of its inode: a rename
/// would leave them the old one). The default network resolves no names, as
/// docker's: each container knows only itself there.
pub fn refresh_hosts(root: &Path, networks: &Networks, network: &Network) -> anyhow::Result<()> {
    let all: Vec<(Ipv4Addr, Allocation)> =
        networks.allocations(&network.name)?.into_iter().collect();
    for (address, who) in &all {
        let others: Vec<(Ipv4Addr, Allocation)> = if network.name == DEFAULT {
            Vec::new()
        } else {
            all.iter()
                .filter(|(_, o)| o.id != who.id)
                .cloned()
                .collect()
        };
        let path = hosts_path(root, &who.id);
        let text = hosts_file(who, *address, &others);
        // Only a file whose text changes is written: each write of a
        // file that exists truncates it, and frees its block (2-3 ms on a
        // disk mounted with discard).
        if read_at_most(&path, text.len() + 1).is_ok_and(|old| old != text.as_bytes()) {
            std::fs::write(&path, text)?;
        }
    }
    Ok(())
}
// ANCHOR_END: refresh_hosts

/// The first `most` bytes of the file at `path`: all a comparison with a
/// text one byte shorter needs. The container writes its `/etc/hosts` as
/// it likes (gigabytes of it, if it likes): read whole, it would be the
/// runtime's memory.
fn read_at_most(path: &Path, most: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(most);
    std::fs::File::open(path)?
        .take(most as u64)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `sysctl -w net.ipv6.conf.eth0.disable_ipv6=1` in the container's
/// network namespace (process `pid`'s), before its eth0 is up: our
/// networks have no IPv6, and an interface with it would take another
/// container's router advertisement (an address and a default route of
/// the attacker's choosing), as docker's containers did before it turned
/// IPv6 off on the interfaces of IPv4-only networks. /proc/sys/net is the
/// namespace of whoever opens it: this thread enters the container's
/// namespace, writes, and comes back. A kernel without IPv6 has nothing
/// to turn off.
fn disable_ipv6_inside(pid: i32) -> anyhow::Result<()> {
    let path = "/proc/sys/net/ipv6/conf/eth0/disable_ipv6";
    let written = crate::netlink::in_netns(pid, || match std::fs::write(path, "1") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    })?;
    written.context("cannot turn IPv6 off on the container's eth0")
}

fn hosts_path(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id).join("hosts")
}

/// `--network host` or `none`: nothing to make, only what `inspect` shows
/// (docker lists the mode as the container's one network).
pub struct Mode(pub &'static str);

impl step04::container::Attach for Mode {
    fn ready(&mut self, _pid: Pid) -> anyhow::Result<Option<serde_json::Value>> {
        Ok(Some(
            serde_json::json!({ "Ports": {}, "Networks": { self.0: {} } }),
        ))
    }
}

/// Step 04's `Attach`, for a bridge network.
pub struct Bridge {
    pub root: PathBuf,
    pub network: Network,
    pub ports: Vec<(u16, u16)>,
    /// The published host ports, held (see [`crate::ports`]): in the
    /// monitor (the foreground `run`, or `run -d`'s forked monitor, which
    /// inherits them) until the container has ended.
    pub held: Vec<std::os::fd::OwnedFd>,
    id: String,
    name: String,
    address: Option<Ipv4Addr>,
}

impl Bridge {
    pub fn new(root: &Path, network: Network, ports: Vec<(u16, u16)>) -> Bridge {
        Bridge {
            root: root.to_path_buf(),
            network,
            ports,
            held: Vec::new(),
            id: String::new(),
            name: String::new(),
            address: None,
        }
    }
}

impl step04::container::Attach for Bridge {
    fn created(&mut self, id: &str, name: &str, dir: &Path) -> anyhow::Result<()> {
        firewall::warn_if_missing(&self.network.name);
        self.id = id.to_string();
        self.name = name.to_string();
        let networks = Networks::new(&self.root)?;
        let me = Allocation {
            id: id.to_string(),
            name: name.to_string(),
        };
        let address = ipam::allocate(&networks, &self.network, me.clone())?;
        self.address = Some(address);
        std::fs::write(dir.join("hosts"), hosts_file(&me, address, &[]))?;
        Ok(())
    }

    fn binds(&self) -> Vec<(PathBuf, PathBuf)> {
        vec![(
            hosts_path(&self.root, &self.id),
            PathBuf::from("/etc/hosts"),
        )]
    }

    // ANCHOR: ready
    fn ready(&mut self, pid: Pid) -> anyhow::Result<Option<serde_json::Value>> {
        let address = self.address.context("no address allocated")?;
        let subnet = Subnet::parse(&self.network.subnet)?;
        let gateway: Ipv4Addr = self.network.gateway.parse()?;
        let networks = Networks::new(&self.root)?;
        let mut host = Netlink::open()?;
        let bridge = networks.ensure_bridge(&self.network, &mut host)?;
        {
            // Check-then-add under the networks' lock: parallel first runs
            // on a network add its rules once. Once they exist, the check
            // is a netlink dump (well under a millisecond) and the lock is
            // let go at once; only the first run waits for nft.
            let _lock = networks.lock()?;
            firewall::add_network(
                &self.network.name,
                &self.network.subnet,
                &self.network.bridge,
            )?;
        }
        plumb(&mut host, &host_interface(&self.id), pid.as_raw(), bridge)?;
        // Before eth0 is up: no IPv6 on it (see the bridge's, in
        // `networks::harden_bridge`).
        disable_ipv6_inside(pid.as_raw())?;
        let mut inside = Netlink::open_in(pid.as_raw())?;
        configure_inside(&mut inside, address, subnet.prefix, gateway)?;
        let mac = inside.mac("eth0")?;
        // No lock for the ports: their rules are this container's alone
        // (keyed by its id), and of two runs with one -p at once only one
        // could bind the port (`held`, in `run`): the other never got here.
        firewall::add_ports(&self.id, address, &self.ports)?;
        // The names files of the others on a user-defined network: one
        // more name. On the default network there are no names of others
        // (this container's own file was written in `created`).
        if self.network.name != DEFAULT {
            refresh_hosts(&self.root, &networks, &self.network)?;
        }
        let ports: serde_json::Map<String, serde_json::Value> = self
            .ports
            .iter()
            .map(|(h, c)| {
                (
                    format!("{c}/tcp"),
                    serde_json::json!([{ "HostIp": "0.0.0.0", "HostPort": h.to_string() }]),
                )
            })
            .collect();
        Ok(Some(serde_json::json!({
            "Ports": ports,
            "Networks": {
                self.network.name.clone(): {
                    "NetworkID": self.network.id,
                    "Gateway": gateway.to_string(),
                    "IPAddress": address.to_string(),
                    "IPPrefixLen": subnet.prefix,
                    "MacAddress": mac,
                }
            }
        })))
    }
    // ANCHOR_END: ready

    fn finished(&mut self, id: &str) {
        // Without published ports there are no rules of ours to look for.
        // The host-side veth is left to the kernel: the container's
        // network namespace is going away, and with it its `eth0` and so
        // the pair (deleting it ourselves waited 12-34 ms for the kernel's
        // synchronize_net). Its name is the container's own, never given
        // again; `rm` and the sweep delete it when something else kept
        // the namespace alive.
        let _ = cleanup(&self.root, id, !self.ports.is_empty(), false);
        // The ports go last: their DNAT rules are gone, so whoever binds
        // them next is reached.
        self.held.clear();
    }
}

/// Undo what a container had: its address, its port rules, its name in
/// the others' hosts files (on the networks it was on), and if `veth`, its
/// host-side veth (gone with its namespace, unless something kept that
/// alive: a process that joined it, a mount of its `/proc/PID/ns/net`).
pub fn cleanup(root: &Path, id: &str, rules: bool, veth: bool) -> anyhow::Result<()> {
    let networks = Networks::new(root)?;
    let mut was_on = Vec::new();
    for network in networks.all()? {
        if networks
            .allocations(&network.name)?
            .values()
            .any(|who| who.id == id)
        {
            was_on.push(network);
        }
    }
    ipam::release(&networks, id)?;
    if veth {
        delete_veths(&[id.to_string()]);
    }
    if rules {
        firewall::remove(&crate::rules::container_key(id))?;
    }
    for network in was_on.iter().filter(|n| n.name != DEFAULT) {
        refresh_hosts(root, &networks, network)?;
    }
    Ok(())
}

/// Delete the host-side veths of containers `ids`, where they still exist
/// (`ip link del mbx...`): after `rm` and for the sweep, when a process or
/// a mount may hold the container's network namespace, and its veth, alive.
pub fn delete_veths(ids: &[String]) {
    let Ok(mut netlink) = Netlink::open() else {
        return;
    };
    for id in ids {
        // RTM_GETLINK by name, then RTM_DELLINK by index: ENODEV when it
        // went away meanwhile (its namespace ended), which is as good.
        if let Ok(Some(link)) = netlink.link(&host_interface(id)) {
            let _ = netlink.delete(link.header.index);
        }
    }
}

/// The full ids of the containers `rm` is given (names, ids, prefixes),
/// read before it removes them: the veths to delete after it.
pub fn ids_of(root: &Path, texts: &[String]) -> Vec<String> {
    let containers = step04::state::Containers::new_at(root);
    texts
        .iter()
        .filter_map(|text| match containers.resolve(text) {
            Ok(Some(Ok(record))) => Some(record.id),
            _ => None,
        })
        .collect()
}

// ANCHOR: sweep
/// Before any command: free what containers that are gone still hold (a
/// runtime killed with SIGKILL never ran its cleanup).
pub fn sweep(root: &Path) -> anyhow::Result<()> {
    step04::container::sweep_abandoned(&step04::store::Store::open(root)?);
    let networks = Networks::new(root)?;
    let containers = step04::state::Containers::new_at(root);
    for network in networks.all()? {
        for who in networks.allocations(&network.name)?.values() {
            let alive = match containers.read(std::ffi::OsStr::new(&who.id)) {
                None => false,
                Some(Ok(record)) => {
                    let record = step04::state::refresh(record);
                    record.is_running() || record.state.status == "created"
                }
                // A damaged record can't say: its address is kept until
                // `rm -f` removes it (and the sweep after it frees it).
                Some(Err(_)) => true,
            };
            if !alive {
                cleanup(root, &who.id, true, true)?;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: sweep
