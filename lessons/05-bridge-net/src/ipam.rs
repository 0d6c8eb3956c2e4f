//! IP address management: which address of a network's subnet each
//! container has.
//!
//! A network's allocations are a small JSON file next to its definition,
//! changed only under the networks' lock (flock), and written whole (temp +
//! rename): two `run`s at once never get the same address. The first address
//! of the subnet is the network's own name, the last its broadcast; the
//! second is the gateway (the bridge's address on the host side).

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

// ANCHOR: allocate
/// The lowest free address of `subnet` that is neither the network, the
/// gateway nor the broadcast address, and not in `taken`.
pub fn allocate(subnet: &Subnet, gateway: Ipv4Addr, taken: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    (1..subnet.size() - 1)
        .map(|n| subnet.nth(n))
        .find(|a| *a != gateway && !taken.contains(a))
}
// ANCHOR_END: allocate

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

    #[test]
    fn allocation_skips_the_gateway_and_what_is_taken() {
        let s = Subnet::parse("10.9.0.0/29").unwrap();
        let gw = s.gateway();
        assert_eq!(allocate(&s, gw, &[]), Some("10.9.0.2".parse().unwrap()));
        let taken: Vec<Ipv4Addr> = (2..7).map(|n| s.nth(n)).collect();
        assert_eq!(allocate(&s, gw, &taken), None, "broadcast is never given");
    }
}
