//! Networks: a bridge on the host, a subnet, and who has which address.
//!
//! `ROOT/networks/NAME.json` holds a network (its id, subnet, gateway and
//! bridge); `ROOT/networks/NAME.ipam.json` its allocations (see
//! [`crate::ipam`]). Both change only under `ROOT/networks.lock` (flock),
//! written whole (temp + rename).
//!
//! The default network, `bridge`, is made on first use, on the bridge
//! `minibox0` with 10.200.0.0/16 (docker's default is 172.17.0.0/16: this
//! one stays out of its way). User-defined networks get a /24 from
//! 10.201.0.0/16 unless `--subnet` says otherwise.
//!
//! **A bridge per network, whichever store made it.** Two stores (two
//! `--root`s) on one host share its network namespace, but not their
//! files: if both put their default network on `minibox0`, each with its
//! own IPAM file, both hand out 10.200.0.2 on one switch. A shared IPAM
//! would need a file per network namespace that outlives none of them;
//! docker's answer for two daemons on one host is the simpler one, and
//! ours: each store's networks get bridges of their own, and subnets that
//! the *kernel* says are free. The kernel is the one thing the stores
//! share: a network is made (record, bridge, gateway address) under a lock
//! of the namespace itself, `flock(2)` on `/proc/self/ns/net`, after asking
//! it which prefixes its routes and addresses already use (as docker
//! checks its pools against `ip route`). The first store's default network
//! gets `minibox0` and 10.200.0.0/16; a second store's gets a bridge
//! `mbx-<id>` and the next free /16 (10.202, 10.203, ...). Each bridge
//! carries its network's id as its alias (`ip link set minibox0 alias ID`),
//! so no store uses, or removes, another's bridge.
//!
//! **What a container may not tell the host.** A bridge is a switch the
//! containers share with the host, and anything they send on it reaches
//! the host's stack. Each bridge is made with three settings
//! ([`harden_bridge`]), as docker's are: no IPv6 on it and no router
//! advertisements taken from it (a container claiming to be the router
//! would get the host an address and a default route: docker's
//! CVE-2020-13401), and strict reverse-path filtering (a packet coming in
//! by the bridge must have a source the host would route back through it:
//! no forged addresses of another network, or of the internet). The
//! container's side is done in [`crate::attach`].
//!
//! **Records are checked when read**, not only when made: a name, a bridge,
//! a subnet from a record end up in nft scripts and netlink requests, and
//! a record edited by hand is skipped (with a warning) or refused, never
//! run.

use crate::netlink::{Netlink, Prefix};
use crate::plumbing;
use crate::subnet::Subnet;
use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default network's name, as docker's.
pub const DEFAULT: &str = "bridge";
/// The default network's bridge on the host (the first store's).
pub const DEFAULT_BRIDGE: &str = "minibox0";
pub const DEFAULT_SUBNET: &str = "10.200.0.0/16";

/// The subnets a default network may get, first free one first:
/// 10.200.0.0/16, then 10.202.0.0/16 to 10.254.0.0/16 (10.201 is for
/// user-defined networks).
fn default_pool() -> impl Iterator<Item = Subnet> {
    std::iter::once(200)
        .chain(202..=254)
        .map(|n| Subnet::parse(&format!("10.{n}.0.0/16")).expect("a valid subnet"))
}

/// The subnets a user-defined network may get: the /24s of 10.201.0.0/16.
fn user_pool() -> impl Iterator<Item = Subnet> {
    (0..=255).map(|n| Subnet::parse(&format!("10.201.{n}.0/24")).expect("a valid subnet"))
}

/// A network, with docker's field names (`network inspect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    /// The bridge interface on the host (at most 15 characters).
    pub bridge: String,
}

/// Who has an address: container id and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: String,
    pub name: String,
}

pub struct Networks {
    dir: PathBuf,
}

/// The networks' lock, held until dropped.
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl Networks {
    pub fn new(root: &Path) -> anyhow::Result<Networks> {
        // Private as the store's other dirs: made 0700, or refused if it
        // is someone else's (they could put records in it).
        step04::store::private_dirs(root, &["networks"])
            .context("cannot create the networks' dir")?;
        Ok(Networks {
            dir: root.join("networks"),
        })
    }

    pub fn lock(&self) -> anyhow::Result<Lock> {
        // O_NOFOLLOW: a link there is refused (ELOOP), not followed to a
        // file made wherever it points.
        let file = step04::store::lock_options()
            .open(self.dir.with_file_name("networks.lock"))
            .context("cannot open the networks' lock")?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .context("cannot lock the networks")?;
        Ok(Lock(lock))
    }

    fn write(&self, path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
        let temp = path.with_extension("tmp");
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        fs::write(&temp, bytes)?;
        fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The network `name`, if there is one; an error if its record is
    /// damaged (see [`check`]).
    pub fn load(&self, name: &str) -> anyhow::Result<Option<Network>> {
        validate_name(name)?;
        let bytes = match fs::read(self.dir.join(format!("{name}.json"))) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("cannot read a network"),
        };
        serde_json::from_slice(&bytes)
            .map_err(anyhow::Error::from)
            .and_then(|network| check(name, network))
            .map(Some)
            .with_context(|| {
                format!("network {name}: its record is damaged (network rm {name} removes it)")
            })
    }

    /// Every network whose record is sound; each damaged one is skipped,
    /// with a warning (once per process).
    pub fn all(&self) -> anyhow::Result<Vec<Network>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(network) = name.strip_suffix(".json").filter(|n| !n.ends_with(".ipam")) {
                match self.load(network) {
                    Ok(Some(network)) => out.push(network),
                    Ok(None) => {}
                    Err(error) => warn_once(&name, &error),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `network rm` of a damaged record: its files only (its bridge and
    /// rules, if any, are named by what can't be trusted).
    pub fn remove_damaged(&self, name: &str) -> anyhow::Result<bool> {
        validate_name(name)?;
        if !self.dir.join(format!("{name}.json")).exists() {
            return Ok(false);
        }
        self.remove(name)?;
        Ok(true)
    }

    /// `network create`: check everything, then write it and make its
    /// bridge. The default network's name is refused: it is made on first
    /// use, with the default pool (docker's always exists, and refuses the
    /// name as taken).
    pub fn create(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
    ) -> anyhow::Result<Network> {
        if name == DEFAULT {
            bail!(
                "network create {DEFAULT}: {DEFAULT} is the default network's name (made on first use): choose another name"
            );
        }
        self.make(name, subnet, gateway)
    }

    // ANCHOR: make
    /// Make a network: its record, then its bridge, with the subnet checked
    /// against this store's networks and the kernel's prefixes, all under
    /// the store's lock and the network namespace's.
    fn make(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
    ) -> anyhow::Result<Network> {
        validate_name(name)?;
        let asked = subnet.map(Subnet::parse).transpose()?;
        let _lock = self.lock()?;
        if self.load(name)?.is_some() {
            bail!("network {name} already exists");
        }
        let others = self.all()?;
        let mut netlink = Netlink::open()?;
        let _namespace = lock_namespace()?;
        let in_use = netlink.prefixes()?;
        let subnet = match asked {
            Some(subnet) => subnet,
            None => {
                let mut pool: Box<dyn Iterator<Item = Subnet>> = if name == DEFAULT {
                    Box::new(default_pool())
                } else {
                    Box::new(user_pool())
                };
                pool.find(|s| {
                    !others
                        .iter()
                        .any(|o| Subnet::parse(&o.subnet).is_ok_and(|t| t.overlaps(s)))
                        && taken_by(s, &in_use).is_none()
                })
                .context("no free subnet left in minibox's pool: give --subnet")?
            }
        };
        if let Some(other) = others
            .iter()
            .find(|o| Subnet::parse(&o.subnet).is_ok_and(|t| t.overlaps(&subnet)))
        {
            bail!(
                "subnet {subnet} overlaps network {} ({})",
                other.name,
                other.subnet
            );
        }
        if let Some(prefix) = taken_by(&subnet, &in_use) {
            bail!(
                "subnet {subnet} overlaps {} in this network namespace (ip -4 {} show): choose another --subnet",
                describe(prefix),
                prefix.kind
            );
        }
        let gateway = match gateway {
            Some(text) => {
                let address: Ipv4Addr = text
                    .parse()
                    .with_context(|| format!("invalid gateway {text:?}: not an IPv4 address"))?;
                if !subnet.contains(address)
                    || address == subnet.network
                    || address == subnet.nth(subnet.size() - 1)
                {
                    bail!("gateway {address} is not a usable address of {subnet}");
                }
                address
            }
            None => subnet.gateway(),
        };
        let id = random_id()?;
        // The default network's bridge is minibox0, unless another store's
        // default network has it in this namespace already.
        let bridge = if name == DEFAULT && netlink.link(DEFAULT_BRIDGE)?.is_none() {
            DEFAULT_BRIDGE.to_string()
        } else {
            // "mbx-" + 11 hex digits: 15 characters, the kernel's limit.
            format!("mbx-{}", step04::state::prefix(&id, 11))
        };
        let network = Network {
            name: name.to_string(),
            id,
            created: step04::state::now(),
            driver: "bridge".to_string(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            bridge,
        };
        step04::fault::point("network:locked");
        let path = self.dir.join(format!("{name}.json"));
        self.write(&path, &network)?;
        // The bridge now, not at the first container: its address is what
        // tells the other stores that this subnet is taken.
        if let Err(error) = make_bridge(&mut netlink, &network) {
            let _ = fs::remove_file(&path);
            return Err(error);
        }
        Ok(network)
    }
    // ANCHOR_END: make

    /// Forget a network (its bridge and rules are the caller's).
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let _ = fs::remove_file(self.dir.join(format!("{name}.ipam.json")));
        fs::remove_file(self.dir.join(format!("{name}.json")))
            .with_context(|| format!("cannot remove network {name}"))
    }

    /// The default network, made on first use.
    pub fn default_network(&self) -> anyhow::Result<Network> {
        if let Some(network) = self.load(DEFAULT)? {
            return Ok(network);
        }
        match self.make(DEFAULT, None, None) {
            Ok(network) => Ok(network),
            // Another run made it meanwhile.
            Err(_) => self
                .load(DEFAULT)?
                .context("cannot make the default network"),
        }
    }

    pub fn allocations(&self, name: &str) -> anyhow::Result<BTreeMap<Ipv4Addr, Allocation>> {
        match fs::read(self.dir.join(format!("{name}.ipam.json"))) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).context("cannot read a network's addresses"),
        }
    }

    /// Write a network's allocations whole (a temp file, then rename(2)):
    /// a reader sees the old file or the new one, never half of one. The
    /// caller holds the networks' lock.
    pub fn save_allocations(
        &self,
        name: &str,
        allocations: &BTreeMap<Ipv4Addr, Allocation>,
    ) -> anyhow::Result<()> {
        self.write(&self.dir.join(format!("{name}.ipam.json")), allocations)
    }

    // ANCHOR: ensure_bridge
    /// The network's bridge, made again if this network namespace lacks it
    /// (a reboot, another namespace) and its subnet is still free there:
    /// `ip link add NAME type bridge; ip addr add GW/N dev NAME; ip link set
    /// NAME alias ID up`.
    pub fn ensure_bridge(&self, network: &Network, netlink: &mut Netlink) -> anyhow::Result<u32> {
        let _lock = self.lock()?;
        match bridge_of(network, netlink)? {
            Bridge::Ours(index) => {
                // Made before bridges were, or changed since.
                harden_bridge(&network.bridge)?;
                return Ok(index);
            }
            Bridge::Foreign(why) => bail!("network {}: {why}", network.name),
            Bridge::Missing => {}
        }
        let _namespace = lock_namespace()?;
        let subnet = Subnet::parse(&network.subnet)?;
        if let Some(prefix) = taken_by(&subnet, &netlink.prefixes()?) {
            bail!(
                "network {}: its subnet {subnet} is now used in this network namespace by {}: remove the network and create it again",
                network.name,
                describe(prefix)
            );
        }
        make_bridge(netlink, network)
    }
    // ANCHOR_END: ensure_bridge
}

/// Network names as docker's: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, but for one
/// suffix: `NAME.ipam.json` is network NAME's addresses, so a network
/// called `NAME.ipam` would have its record in the same file.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    step04::state::check_name("network", name, 64)?;
    if ["host", "none"].contains(&name) {
        bail!("{name} is a network mode, not a name a network can have");
    }
    if name.ends_with(".ipam") {
        bail!("invalid network name {name:?}: .ipam ends the names of the networks' address files");
    }
    Ok(())
}

/// A record as read: sound if its fields are what [`Networks::create`]
/// would have written (they go into nft scripts and netlink requests).
fn check(file: &str, network: Network) -> anyhow::Result<Network> {
    if network.name != file {
        bail!("it names network {:?}", network.name);
    }
    step04::state::check_name("bridge", &network.bridge, 15)?;
    if Subnet::parse(&network.subnet)?.to_string() != network.subnet {
        bail!("its subnet {:?} is not one", network.subnet);
    }
    if network.gateway.parse::<Ipv4Addr>()?.to_string() != network.gateway {
        bail!("its gateway {:?} is not an address", network.gateway);
    }
    if network.id.len() != 64 || !network.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("its id {:?} is not one", network.id);
    }
    Ok(network)
}

/// Say once per process that the record `file` is skipped.
fn warn_once(file: &str, error: &anyhow::Error) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.iter().any(|w| w == file) {
        warned.push(file.to_string());
        step01::cli::report(&format!("warning: skipped: {error:#}"));
    }
}

/// What a network's bridge is in this network namespace.
pub enum Bridge {
    /// Ours: it carries the network's id (its index).
    Ours(u32),
    /// There is none.
    Missing,
    /// Someone else's, and why we think so.
    Foreign(String),
}

/// Is `network.bridge` this network's? Its alias says so; a bridge without
/// one (made before bridges carried it, or by hand) is ours if it has our
/// gateway's address, and is then given the alias.
pub fn bridge_of(network: &Network, netlink: &mut Netlink) -> anyhow::Result<Bridge> {
    let Some(link) = netlink.link(&network.bridge)? else {
        return Ok(Bridge::Missing);
    };
    let index = link.header.index;
    match crate::netlink::alias(&link) {
        Some(alias) if alias == network.id => Ok(Bridge::Ours(index)),
        Some(alias) => Ok(Bridge::Foreign(format!(
            "the bridge {} belongs to another store's network (its alias is {})",
            network.bridge,
            step04::state::short(alias)
        ))),
        None => {
            let subnet = Subnet::parse(&network.subnet)?;
            let gateway: Ipv4Addr = network.gateway.parse()?;
            let ours = netlink.prefixes()?.iter().any(|p| {
                p.kind == "address"
                    && p.device == network.bridge
                    && p.address == gateway
                    && p.length == subnet.prefix
            });
            if ours {
                netlink.set_alias(index, &network.id)?;
                Ok(Bridge::Ours(index))
            } else {
                Ok(Bridge::Foreign(format!(
                    "the bridge {} exists without the gateway {gateway}/{}: not this network's",
                    network.bridge, subnet.prefix
                )))
            }
        }
    }
}

/// `ip link add NAME type bridge; ip addr add GW/N dev NAME; ip link set
/// NAME alias ID up`: the bridge, its gateway address, and the network's
/// id on it, hardened before it is up. Nothing is left if a step fails.
fn make_bridge(netlink: &mut Netlink, network: &Network) -> anyhow::Result<u32> {
    let subnet = Subnet::parse(&network.subnet)?;
    netlink.add_bridge(&network.bridge)?;
    let index = netlink.index(&network.bridge)?;
    let made = (|| {
        harden_bridge(&network.bridge)?;
        plumbing::add_address(netlink, index, network.gateway.parse()?, subnet.prefix)?;
        netlink.set_alias(index, &network.id)?;
        plumbing::set_up(netlink, index, None)
    })();
    if let Err(error) = made {
        let _ = netlink.delete(index);
        return Err(error);
    }
    Ok(index)
}

/// What the host takes from a bridge, as docker limits it:
///
/// - `sysctl -w net.ipv6.conf.BRIDGE.accept_ra=0`: no router advertisement
///   from a container makes the host's routes (docker sets it on its
///   bridges since CVE-2020-13401);
/// - `net.ipv6.conf.BRIDGE.disable_ipv6=1`: no IPv6 on the bridge at all
///   (our networks have none): no link-local address a container could
///   reach the host's services by, no neighbour discovery to fool;
/// - `net.ipv4.conf.BRIDGE.rp_filter=1`: strict reverse-path filtering, a
///   packet that comes in by the bridge is dropped unless its source is
///   routed back through the bridge (no forged source addresses). The
///   kernel uses the higher of this and `conf.all.rp_filter`, so a host
///   with `all.rp_filter=2` (loose) makes it loose: the nft rule of
///   [`crate::firewall`] drops such packets too, whatever the sysctls.
///
/// Each setting is written only if it differs (a read costs microseconds).
/// A kernel without IPv6 has no `net.ipv6`: nothing to close there.
pub fn harden_bridge(bridge: &str) -> anyhow::Result<()> {
    for (family, key, value) in [
        ("ipv6", "accept_ra", "0"),
        ("ipv6", "disable_ipv6", "1"),
        ("ipv4", "rp_filter", "1"),
    ] {
        let path = format!("/proc/sys/net/{family}/conf/{bridge}/{key}");
        match fs::read_to_string(&path) {
            Ok(now) if now.trim() == value => {}
            Ok(_) => fs::write(&path, value)
                .with_context(|| format!("cannot set net.{family}.conf.{bridge}.{key}={value}"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && family == "ipv6" => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {path}")),
        }
    }
    Ok(())
}

/// The network namespace's own lock, shared by every store and every
/// process in it, and by nothing outside it: `flock(2)` on the namespace's
/// file, `/proc/self/ns/net` (the same inode for every process in the
/// namespace). No file is made, and the kernel drops the lock when its
/// holder dies, as any flock. `flock /proc/self/ns/net CMD` in a shell.
/// Take it after the store's lock (always that order: no deadlock).
pub fn lock_namespace() -> anyhow::Result<Lock> {
    let file =
        File::open("/proc/self/ns/net").context("cannot open this network namespace's file")?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .context("cannot lock this network namespace")?;
    Ok(Lock(lock))
}

/// The first of the kernel's prefixes that `subnet` overlaps.
fn taken_by<'a>(subnet: &Subnet, in_use: &'a [Prefix]) -> Option<&'a Prefix> {
    in_use.iter().find(|p| {
        // Two prefixes overlap when they agree on the bits of the shorter.
        let shorter = u32::from(p.length.min(subnet.prefix));
        let mask = u32::MAX.checked_shl(32 - shorter).unwrap_or(0);
        u32::from(p.address) & mask == u32::from(subnet.network) & mask
    })
}

/// "the route 10.200.0.0/16 dev minibox0", as `ip` would show it.
fn describe(prefix: &Prefix) -> String {
    format!(
        "the {} {}/{} dev {}",
        prefix.kind, prefix.address, prefix.length, prefix.device
    )
}

fn random_id() -> anyhow::Result<String> {
    step04::container::random_id()
}
