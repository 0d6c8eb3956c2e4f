//! What an overlay network looks like from the kernel, for the checks to
//! see the data plane of step 07 (VXLAN across "hosts"): read over
//! rtnetlink in a network namespace given by path (`/run/netns/X` or
//! `/proc/PID/ns/net`), never by running `ip` and parsing its text.
//!
//! Per network and host, docker's classic overlay driver and flannel make
//! a bridge and a VXLAN device enslaved to it; with learning off the VXLAN
//! device knows remote endpoints only from entries written for it:
//!
//! - [`vxlans`]: the VXLAN links (`ip -d link show type vxlan`): VNI, UDP
//!   port, learning, the local underlay address, the device they ride on,
//!   MTU, master bridge;
//! - [`fdb`]: a device's forwarding entries (`bridge fdb show dev vx0`):
//!   which underlay host (VTEP) a MAC is behind;
//! - [`neighbours`]: a device's neighbour (ARP) entries (`ip neigh show dev
//!   vx0`): which MAC an overlay IP has; the VXLAN device answers ARP
//!   requests from them itself when made with `proxy`;
//! - [`capture`]: VXLAN packets seen on an underlay device, decoded.
//!
//! netlink-packet-route 0.30 has every message this needs; where it falls
//! short we work around it:
//!
//! - `NDA_DST` is parsed by the message's family: in `AF_BRIDGE` (an FDB
//!   entry) it cannot know the VTEP's and gives `NeighbourAddress::Other`
//!   raw bytes (4: IPv4, 16: IPv6), which we decode. Writing is fine.
//! - `ndm_state` is a bit set, the crate's `NeighbourState` an enum of
//!   single states: `bridge fdb add` sends NUD_NOARP | NUD_PERMANENT,
//!   which is only `Other(0xc0)`. We read `u16::from(state)` as bits
//!   ([`nud`]) and write `Other(bits)`.
//! - Kernel names differ: NTF_SELF is `NeighbourFlags::Own`, NTF_MASTER
//!   `Controller`, `IFLA_MASTER` `LinkAttribute::Controller`, `NDA_MASTER`
//!   `NeighbourAttribute::Controller`.
//! - `InfoVxlan::Gbp`, `Gpe` and `RemCsumNoPartial` are flag attributes
//!   written with no value: `Gbp(false)` *turns GBP on*. Leave them out.
//!
//! And two kernel facts that look like bugs: the bridge's own FDB entries
//! carry no NTF_MASTER flag in a dump, but an `NDA_MASTER` attribute
//! ([`FdbEntry::master`] reads that); and the kernel filters an
//! `AF_BRIDGE` dump by port only for an `ifinfomsg` request or a socket
//! with strict checking: we dump all and filter by index.

pub mod capture;
pub mod rtnl;

pub use capture::{Capture, VxlanPacket};
pub use rtnl::Rtnl;

use crate::Fail;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A VXLAN link, as `ip -d link show dev vx0` describes it:
///
/// ```text
/// vx0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 ... master br0 ...
///     vxlan id 42 local 192.168.50.1 dev ua srcport 0 0 dstport 4789 nolearning proxy ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub name: String,
    pub index: u32,
    /// The VXLAN Network Identifier (`id 42`): 24 bits, carried in every
    /// packet; a device takes only packets of its own VNI.
    pub vni: u32,
    /// The UDP destination port (`dstport 4789`, IANA's; the kernel's own
    /// default is Linux's pre-standard 8472, so say it).
    pub port: u16,
    /// `learning`: the device learns "MAC behind VTEP" from what arrives.
    /// Off (`nolearning`), only written FDB entries send anything anywhere.
    pub learning: bool,
    /// `proxy`: the device answers ARP requests itself, from its neighbour
    /// table, instead of sending them across.
    pub proxy: bool,
    /// The underlay address packets leave from (`local`).
    pub local: Option<Ipv4Addr>,
    /// The underlay device it rides on (`dev ua`), by name.
    pub device: Option<String>,
    pub mtu: u32,
    /// The bridge it is a port of (`master br0`), by name.
    pub master: Option<String>,
}

/// Every VXLAN link in the namespace at `netns`, in index order.
pub fn vxlans(netns: &str) -> Result<Vec<Vxlan>, Fail> {
    let mut rtnl = open(netns)?;
    let links = rtnl.links().map_err(|e| seen("cannot list the links", e))?;
    let names: BTreeMap<u32, String> = links
        .iter()
        .filter_map(|l| Some((l.header.index, rtnl::name(l)?.to_string())))
        .collect();
    let mut out = Vec::new();
    for link in &links {
        // IFLA_LINKINFO holds IFLA_INFO_KIND ("vxlan") and IFLA_INFO_DATA,
        // the kind's own attributes (IFLA_VXLAN_*).
        let info = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(info) => Some(info),
            _ => None,
        });
        let Some(info) = info else { continue };
        if !info
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)))
        {
            continue;
        }
        let data: &[InfoVxlan] = info
            .iter()
            .find_map(|i| match i {
                LinkInfo::Data(InfoData::Vxlan(data)) => Some(data.as_slice()),
                _ => None,
            })
            .unwrap_or_default();
        let mut vxlan = Vxlan {
            name: rtnl::name(link).unwrap_or("?").to_string(),
            index: link.header.index,
            vni: 0,
            port: 0,
            learning: false,
            proxy: false,
            local: None,
            device: None,
            mtu: 0,
            master: None,
        };
        for attribute in data {
            match attribute {
                InfoVxlan::Id(vni) => vxlan.vni = *vni,
                // IFLA_VXLAN_PORT is in network byte order, unlike the
                // other numbers; the crate converts it.
                InfoVxlan::Port(port) => vxlan.port = *port,
                InfoVxlan::Learning(on) => vxlan.learning = *on,
                InfoVxlan::Proxy(on) => vxlan.proxy = *on,
                InfoVxlan::Local(address) => vxlan.local = Some(*address),
                InfoVxlan::Link(index) => vxlan.device = names.get(index).cloned(),
                _ => {}
            }
        }
        for attribute in &link.attributes {
            match attribute {
                LinkAttribute::Mtu(mtu) => vxlan.mtu = *mtu,
                // IFLA_MASTER; the crate calls it Controller.
                LinkAttribute::Controller(index) => vxlan.master = names.get(index).cloned(),
                _ => {}
            }
        }
        out.push(vxlan);
    }
    Ok(out)
}

/// One forwarding entry of a device, as `bridge fdb show dev vx0` prints
/// it:
///
/// ```text
/// 02:42:0a:00:00:03 dst 192.168.50.2 self permanent
/// ce:a1:20:d8:84:d4 master br0 permanent
/// ```
///
/// The first is the VXLAN device's *own* table (`self`): frames for that
/// MAC go in a UDP packet to the VTEP `dst`. The second is the bridge's
/// table (`master br0`): which port a MAC is behind, here vx0's own MAC;
/// the bridge also learns there, as `02:42:0a:00:00:03 master br0` (not
/// permanent), the MACs whose frames came in through vx0, whatever the
/// VXLAN device's own `nolearning`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: String,
    /// The remote VTEP (`dst`), for a VXLAN device's own entries.
    pub dst: Option<IpAddr>,
    /// `self`: the device's own table (NTF_SELF), not its bridge's.
    pub own: bool,
    /// `master br0`: an entry of the bridge's table, about this port (the
    /// kernel says so with an `NDA_MASTER` attribute naming the bridge,
    /// not with the NTF_MASTER flag, which only requests use).
    pub master: Option<String>,
    /// `permanent` (NUD_PERMANENT): written, never aged out.
    pub permanent: bool,
    /// `vni N` when the entry names a VNI other than the device's.
    pub vni: Option<u32>,
}

/// The forwarding entries of the device `dev` in the namespace at `netns`.
///
/// `RTM_GETNEIGH` with `NLM_F_DUMP` in the family `AF_BRIDGE` dumps every
/// FDB of the namespace (bridges' and devices' own); the kernel filters by
/// port only for a request carrying an `ifinfomsg` (what old `bridge`
/// sends) or with strict checking on, so we filter here, by index.
pub fn fdb(netns: &str, dev: &str) -> Result<Vec<FdbEntry>, Fail> {
    let mut rtnl = open(netns)?;
    let names = rtnl.names().map_err(|e| seen("cannot list the links", e))?;
    let index = rtnl.index(dev).map_err(|e| seen("no such device", e))?;
    let mut request = NeighbourMessage::default();
    request.header.family = AddressFamily::Bridge;
    let answers = rtnl
        .dump(RouteNetlinkMessage::GetNeighbour(request))
        .map_err(|e| seen("cannot dump the forwarding database", e))?;
    Ok(answers
        .into_iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewNeighbour(n)
                if n.header.ifindex == index && n.header.family == AddressFamily::Bridge =>
            {
                Some(fdb_entry(&n, &names))
            }
            _ => None,
        })
        .collect())
}

fn fdb_entry(message: &NeighbourMessage, names: &BTreeMap<u32, String>) -> FdbEntry {
    let mut entry = FdbEntry {
        mac: String::new(),
        dst: None,
        own: message.header.flags.contains(NeighbourFlags::Own),
        master: None,
        permanent: nud(message) & NUD_PERMANENT != 0,
        vni: None,
    };
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::LinkLayerAddress(bytes) => entry.mac = mac(bytes),
            // The crate parses NDA_DST by the message's family: in
            // AF_BRIDGE it cannot know the VTEP's family and hands over
            // raw bytes; 4 of them are IPv4, 16 IPv6.
            NeighbourAttribute::Destination(address) => entry.dst = ip(address),
            NeighbourAttribute::Vni(vni) => entry.vni = Some(*vni),
            // NDA_MASTER (the crate's Controller): the bridge's index.
            NeighbourAttribute::Controller(index) => {
                entry.master = Some(names.get(index).cloned().unwrap_or_default())
            }
            _ => {}
        }
    }
    entry
}

/// One neighbour (ARP) entry, as `ip neigh show dev vx0` prints it:
/// `10.0.0.3 lladdr 02:42:0a:00:00:03 PERMANENT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: IpAddr,
    /// None while unresolved (INCOMPLETE, FAILED).
    pub mac: Option<String>,
    /// `PERMANENT`, `REACHABLE`, `STALE`, ... as `ip` prints it.
    pub state: String,
}

/// The IPv4 and IPv6 neighbour entries of the device `dev` in the
/// namespace at `netns`, but those in state NOARP alone, which `ip neigh
/// show` hides too: the kernel's own entries for multicast groups
/// (`ff02::1:ff6a:f9b0 lladdr 33:33:ff:6a:f9:b0 NOARP`, made as soon as a
/// device gets IPv6), no ARP ever asked for them. (`RTM_GETNEIGH`,
/// `NLM_F_DUMP`, family `AF_UNSPEC`: both tables, filtered here by index.)
pub fn neighbours(netns: &str, dev: &str) -> Result<Vec<Neighbour>, Fail> {
    let mut rtnl = open(netns)?;
    let index = rtnl.index(dev).map_err(|e| seen("no such device", e))?;
    let answers = rtnl
        .dump(RouteNetlinkMessage::GetNeighbour(
            NeighbourMessage::default(),
        ))
        .map_err(|e| seen("cannot dump the neighbour tables", e))?;
    Ok(answers
        .into_iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewNeighbour(n)
                if n.header.ifindex == index
                    && matches!(n.header.family, AddressFamily::Inet | AddressFamily::Inet6)
                    && nud(&n) != NUD_NOARP =>
            {
                let ip = n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(address) => ip(address),
                    _ => None,
                })?;
                let mac = n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(bytes) => Some(mac(bytes)),
                    _ => None,
                });
                Some(Neighbour {
                    ip,
                    mac,
                    state: state_name(nud(&n)),
                })
            }
            _ => None,
        })
        .collect())
}

/// NUD_* bits (include/uapi/linux/neighbour.h).
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_STALE: u16 = 0x04;
pub const NUD_DELAY: u16 = 0x08;
pub const NUD_PROBE: u16 = 0x10;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

/// The entry's state as the kernel's bits. The crate models `ndm_state`
/// as an enum of single states, but it is a bit set: `bridge fdb add`
/// writes NUD_NOARP | NUD_PERMANENT (0xc0), which the crate can only call
/// `Other(0xc0)`. Converting back to `u16` gives the bits whatever it is.
pub fn nud(message: &NeighbourMessage) -> u16 {
    message.header.state.into()
}

/// The state bits in words, as `ip neigh` prints them: `PERMANENT`,
/// `REACHABLE`, `NOARP PERMANENT`...
pub fn state_name(bits: u16) -> String {
    const NAMES: [(u16, &str); 8] = [
        (NUD_INCOMPLETE, "INCOMPLETE"),
        (NUD_REACHABLE, "REACHABLE"),
        (NUD_STALE, "STALE"),
        (NUD_DELAY, "DELAY"),
        (NUD_PROBE, "PROBE"),
        (NUD_FAILED, "FAILED"),
        (NUD_NOARP, "NOARP"),
        (NUD_PERMANENT, "PERMANENT"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "NONE".to_string()
    } else {
        names.join(" ")
    }
}

/// `aa:bb:cc:dd:ee:ff`, lower case, as `ip` prints a MAC.
pub fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The six bytes of `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = text
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

/// An address of a neighbour message, whatever family the crate gave it.
fn ip(address: &NeighbourAddress) -> Option<IpAddr> {
    match address {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => Some(IpAddr::V4(Ipv4Addr::new(
                bytes[0], bytes[1], bytes[2], bytes[3],
            ))),
            16 => {
                let octets: [u8; 16] = bytes.as_slice().try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            _ => None,
        },
        _ => None,
    }
}

fn open(netns: &str) -> Result<Rtnl, Fail> {
    Rtnl::open_in(netns).map_err(|e| seen("the grader cannot open rtnetlink in a lab", e))
}

fn seen(what: &str, error: anyhow::Error) -> Fail {
    Fail::new(format!("the grader's overlay view: {what}")).seen(format!("{error:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bits_read_as_ip_prints_them() {
        assert_eq!(state_name(NUD_PERMANENT), "PERMANENT");
        assert_eq!(state_name(NUD_NOARP | NUD_PERMANENT), "NOARP PERMANENT");
        assert_eq!(state_name(0), "NONE");
    }

    #[test]
    fn macs_print_and_parse_back() {
        let bytes = parse_mac("02:42:0a:00:00:03").unwrap();
        assert_eq!(bytes, [0x02, 0x42, 0x0a, 0, 0, 3]);
        assert_eq!(mac(&bytes), "02:42:0a:00:00:03");
        assert_eq!(parse_mac("02:42:0a:00:00"), None);
        assert_eq!(parse_mac("02:42:0a:00:00:zz"), None);
    }

    /// The crate's pitfall, kept here so that a version that fixes it is
    /// noticed: a flag attribute is on by being there, whatever the value.
    #[test]
    fn the_crate_writes_gbp_false_as_the_gbp_flag() {
        use netlink_packet_core::Emitable;
        const IFLA_VXLAN_GBP: u16 = 23;
        let attributes = [InfoVxlan::Gbp(false)];
        let mut bytes = vec![0u8; attributes.as_slice().buffer_len()];
        attributes.as_slice().emit(&mut bytes);
        // An attribute header alone: length 4, type IFLA_VXLAN_GBP.
        assert_eq!(bytes, [4, 0, IFLA_VXLAN_GBP as u8, 0]);
    }

    #[test]
    fn a_bridge_fdb_dst_in_raw_bytes_is_an_address() {
        assert_eq!(
            ip(&NeighbourAddress::Other(vec![192, 168, 50, 2])),
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 50, 2)))
        );
        assert_eq!(ip(&NeighbourAddress::Other(vec![1, 2, 3])), None);
    }
}
