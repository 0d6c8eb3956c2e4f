//! IPv4 subnets: `10.200.0.0/16`, parsed, compared, counted.
//!
//! The first address of a subnet names the network itself, the last is its
//! broadcast address; neither may be given to an interface. Docker's
//! gateway, the bridge's own address, is the first usable one.

use anyhow::{bail, Context};
use std::net::Ipv4Addr;

/// An IPv4 subnet, `10.200.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parse `A.B.C.D/N`, N from 8 to 30, with no host bits set.
    pub fn parse(text: &str) -> anyhow::Result<Subnet> {
        let Some((address, prefix)) = text.split_once('/') else {
            bail!("invalid subnet {text:?}: write it as A.B.C.D/N, e.g. 10.210.0.0/24");
        };
        let network: Ipv4Addr = address.parse().with_context(|| {
            format!("invalid subnet {text:?}: {address} is not an IPv4 address")
        })?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .with_context(|| format!("invalid subnet {text:?}: the prefix must be 8 to 30"))?;
        let subnet = Subnet { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            bail!(
                "invalid subnet {text:?}: host bits are set (did you mean {}/{prefix}?)",
                Ipv4Addr::from(u32::from(network) & subnet.mask())
            );
        }
        Ok(subnet)
    }

    pub fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.network) & mask == u32::from(other.network) & mask
    }

    /// The N-th address of the subnet (0 is the network itself).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }

    /// How many addresses it has, network and broadcast included.
    pub fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The last address: the broadcast, never an interface's.
    pub fn broadcast(&self) -> Ipv4Addr {
        self.nth(self.size() - 1)
    }

    /// The gateway docker picks: the first usable address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.nth(1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_overlap() {
        let a = Subnet::parse("10.200.0.0/16").unwrap();
        let b = Subnet::parse("10.200.5.0/24").unwrap();
        let c = Subnet::parse("10.201.0.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && !a.overlaps(&c));
        assert!(a.contains("10.200.9.9".parse().unwrap()));
        assert_eq!(a.gateway().to_string(), "10.200.0.1");
        assert_eq!(a.broadcast().to_string(), "10.200.255.255");
        for bad in [
            "10.0.0.1/24",
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/4",
            "x/24",
            "10.0.0/24",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }
}
