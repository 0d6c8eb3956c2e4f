//! The sync's plan: what this host's VXLAN device should hold, against
//! what it holds. A pure function, so it can be read, and tested, apart
//! from etcd and the kernel.
//!
//! What it should hold: for each endpoint of the network on ANOTHER host,
//! an FDB entry (its MAC -> its host) and a neighbour entry (its IP -> its
//! MAC). Endpoints of this host need none: their veths are on the local
//! bridge, which learns them. Whatever else the device holds of ours is
//! stale (an endpoint gone, moved, or re-addressed) and goes.

use crate::store::Endpoint;
use std::net::Ipv4Addr;

/// One FDB entry of a VXLAN device: frames for `mac` go to `vtep`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fdb {
    pub mac: String,
    pub vtep: Ipv4Addr,
}

/// One neighbour entry of a VXLAN device: `ip` is at `mac`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: String,
}

/// What a VXLAN device holds (its permanent entries), or should.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    pub fdb: Vec<Fdb>,
    pub neighbours: Vec<Neighbour>,
}

/// The changes that make the device hold what it should: each list sorted,
/// without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add_fdb: Vec<Fdb>,
    pub delete_fdb: Vec<Fdb>,
    pub add_neighbours: Vec<Neighbour>,
    pub delete_neighbours: Vec<Neighbour>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add_fdb.is_empty()
            && self.delete_fdb.is_empty()
            && self.add_neighbours.is_empty()
            && self.delete_neighbours.is_empty()
    }
}

// ANCHOR: plan
/// The plan for the device holding `local`, given every endpoint of its
/// network in the store and this host's underlay address `me`.
pub fn plan(local: &Entries, endpoints: &[Endpoint], me: Ipv4Addr) -> Plan {
    // TODO(lesson-07): add_* are the entries the endpoints on other hosts than me need (an Fdb mac -> host, a Neighbour ip -> mac) that local lacks; delete_* are the entries local holds that no such endpoint needs; each list sorted and without duplicates
    // Two set differences each way: wanted minus held, held minus wanted.
    // An endpoint of this host (host == me) wants nothing: its frames never
    // cross the underlay. An entry is the pair (MAC, VTEP): a MAC that
    // moved to another host is one pair to delete and one to add.
    todo!(
        "lesson-07: add_* are the entries the endpoints on other hosts than me need (an Fdb mac -> host, a Neighbour ip -> mac) that local lacks; delete_* are the entries local holds that no such endpoint needs; each list sorted and without duplicates"
    );
}
// ANCHOR_END: plan

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: &str, ip: [u8; 4], host: [u8; 4]) -> Endpoint {
        let ip = Ipv4Addr::from(ip);
        Endpoint {
            network: "ov".into(),
            id: id.into(),
            name: id.into(),
            ip,
            mac: crate::store::mac_of(ip),
            host: Ipv4Addr::from(host),
        }
    }

    #[test]
    fn remote_endpoints_are_added_and_stale_entries_go() {
        let me = Ipv4Addr::new(10, 99, 0, 1);
        let a = endpoint("a", [10, 0, 0, 2], [10, 99, 0, 1]);
        let c = endpoint("c", [10, 0, 0, 3], [10, 99, 0, 3]);
        let local = Entries {
            fdb: vec![Fdb {
                mac: "02:42:0a:00:00:09".into(),
                vtep: Ipv4Addr::new(10, 99, 0, 2),
            }],
            neighbours: vec![],
        };
        let plan = plan(&local, &[a, c.clone()], me);
        assert_eq!(
            plan.add_fdb,
            vec![Fdb {
                mac: c.mac.clone(),
                vtep: c.host
            }]
        );
        assert_eq!(plan.delete_fdb, local.fdb);
        assert_eq!(
            plan.add_neighbours,
            vec![Neighbour {
                ip: c.ip,
                mac: c.mac
            }]
        );
        assert!(plan.delete_neighbours.is_empty());
    }
}
