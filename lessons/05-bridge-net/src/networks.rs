//! Networks: a bridge on the host, a subnet, and who has which address.
//!
//! `ROOT/networks/NAME.json` holds a network (its id, subnet, gateway and
//! bridge); `ROOT/networks/NAME.ipam.json` its allocations. Both change only
//! under `ROOT/networks.lock` (flock), written whole (temp + rename).
//!
//! The default network, `bridge`, is made on first use, on the bridge
//! `minibox0` with 10.200.0.0/16 (docker's default is 172.17.0.0/16: this
//! one stays out of its way). User-defined networks get a /24 from
//! 10.201.0.0/16 unless `--subnet` says otherwise.

use crate::ipam::{self, Subnet};
use crate::netlink::Netlink;
use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default network's name, as docker's.
pub const DEFAULT: &str = "bridge";
/// The default network's bridge on the host.
pub const DEFAULT_BRIDGE: &str = "minibox0";
pub const DEFAULT_SUBNET: &str = "10.200.0.0/16";

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
        let dir = root.join("networks");
        fs::create_dir_all(&dir).context("cannot create the networks' dir")?;
        Ok(Networks { dir })
    }

    pub fn lock(&self) -> anyhow::Result<Lock> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.with_file_name("networks.lock"))?;
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

    pub fn load(&self, name: &str) -> anyhow::Result<Option<Network>> {
        match fs::read(self.dir.join(format!("{name}.json"))) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("cannot read a network"),
        }
    }

    pub fn all(&self) -> anyhow::Result<Vec<Network>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(network) = name.strip_suffix(".json").filter(|n| !n.ends_with(".ipam")) {
                if let Some(network) = self.load(network)? {
                    out.push(network);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `network create`: check everything, then write it (the bridge is
    /// made when a container first joins).
    pub fn create(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
    ) -> anyhow::Result<Network> {
        validate_name(name)?;
        let _lock = self.lock()?;
        if self.load(name)?.is_some() {
            bail!("network {name} already exists");
        }
        let others = self.all()?;
        let subnet = match subnet {
            Some(text) => Subnet::parse(text)?,
            None => (0..=255)
                .map(|n| Subnet::parse(&format!("10.201.{n}.0/24")).expect("a valid subnet"))
                .find(|s| {
                    !others
                        .iter()
                        .any(|o| Subnet::parse(&o.subnet).is_ok_and(|t| t.overlaps(s)))
                })
                .context("no free /24 left in 10.201.0.0/16: give --subnet")?,
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
        let bridge = if name == DEFAULT {
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
        self.write(&self.dir.join(format!("{name}.json")), &network)?;
        Ok(network)
    }

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
        match self.create(DEFAULT, Some(DEFAULT_SUBNET), None) {
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

    // ANCHOR: allocate
    /// Give a container the lowest free address of the network.
    pub fn allocate(&self, network: &Network, who: Allocation) -> anyhow::Result<Ipv4Addr> {
        let _lock = self.lock()?;
        let mut taken = self.allocations(&network.name)?;
        let subnet = Subnet::parse(&network.subnet)?;
        let gateway: Ipv4Addr = network.gateway.parse()?;
        let used: Vec<Ipv4Addr> = taken.keys().copied().collect();
        let Some(address) = ipam::allocate(&subnet, gateway, &used) else {
            bail!("network {}: no free address left in {subnet}", network.name);
        };
        taken.insert(address, who);
        self.write(
            &self.dir.join(format!("{}.ipam.json", network.name)),
            &taken,
        )?;
        Ok(address)
    }
    // ANCHOR_END: allocate

    /// Give back a container's addresses on every network.
    pub fn release(&self, container: &str) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        for network in self.all()? {
            let mut taken = self.allocations(&network.name)?;
            let before = taken.len();
            taken.retain(|_, a| a.id != container);
            if taken.len() != before {
                self.write(
                    &self.dir.join(format!("{}.ipam.json", network.name)),
                    &taken,
                )?;
            }
        }
        Ok(())
    }

    // ANCHOR: ensure_bridge
    /// Make the network's bridge if this network namespace lacks it:
    /// `ip link add NAME type bridge; ip addr add GW/N dev NAME; ip link set
    /// NAME up`.
    pub fn ensure_bridge(&self, network: &Network, netlink: &mut Netlink) -> anyhow::Result<u32> {
        let _lock = self.lock()?;
        if let Some(link) = netlink.link(&network.bridge)? {
            return Ok(link.header.index);
        }
        netlink.add_bridge(&network.bridge)?;
        let index = netlink.index(&network.bridge)?;
        let subnet = Subnet::parse(&network.subnet)?;
        netlink.add_address(index, network.gateway.parse()?, subnet.prefix)?;
        netlink.set_up(index, None)?;
        Ok(index)
    }
    // ANCHOR_END: ensure_bridge
}

/// Network names as docker's: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    step04::state::check_name("network", name, 64)?;
    if ["host", "none"].contains(&name) {
        bail!("{name} is a network mode, not a name a network can have");
    }
    Ok(())
}

fn random_id() -> anyhow::Result<String> {
    step04::container::random_id()
}
