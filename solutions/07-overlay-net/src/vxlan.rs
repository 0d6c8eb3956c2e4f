//! The VXLAN device: one per overlay network on each host, a port of the
//! network's bridge. What the bridge sends to it leaves the host inside a
//! UDP datagram to port 4789 of another host (the VTEP that has the
//! destination MAC), with an 8-byte VXLAN header carrying the network's
//! VNI; what arrives with that VNI comes out of it onto the bridge.
//!
//! ```text
//!   host A (10.99.0.1)                                host C (10.99.0.3)
//!   container eth0 10.0.0.2 (mtu 1450)                container eth0 10.0.0.3
//!        |  veth                                           |  veth
//!   ovbr256 (bridge) -- ovx256 (vxlan id 256)         ovbr256 -- ovx256
//!                         | local 10.99.0.1, dev eth0     |
//!   ======== underlay: UDP 10.99.0.1:x -> 10.99.0.3:4789 [VXLAN vni 256][frame] ========
//! ```

use crate::netlink::Netlink;
use std::net::Ipv4Addr;

/// What the device is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    /// Its name (`ovx256`).
    pub name: String,
    /// The network's VNI.
    pub vni: u32,
    /// This host's underlay address (`--cluster-advertise`): the source of
    /// what it sends.
    pub local: Ipv4Addr,
    /// The index of the underlay device holding that address (`eth0`).
    pub underlay: u32,
    /// The index of the network's bridge, its master.
    pub bridge: u32,
    /// The underlay's MTU minus VXLAN's 50 bytes.
    pub mtu: u32,
}

// ANCHOR: add_vxlan
/// `ip link add ovx256 mtu 1450 master ovbr256 type vxlan id 256 dstport
/// 4789 local 10.99.0.1 dev eth0 nolearning proxy`: the device exists
/// (down), with exactly these settings; fails if the name exists.
pub fn add_vxlan(netlink: &mut Netlink, spec: &VxlanSpec) -> anyhow::Result<()> {
    // TODO(lesson-07): afterwards a VXLAN link named spec.name exists in the socket's namespace: VNI spec.vni, UDP destination port 4789, source address spec.local on the underlay device spec.underlay, learning off, ARP proxy on, MTU spec.mtu, a port of the bridge spec.bridge; if the name exists, fail and make nothing
    // One RTM_NEWLINK, as for step 05's bridge, whose IFLA_LINKINFO says
    // the kind (vxlan) and, nested in the kind's data, the VXLAN
    // attributes (IFLA_VXLAN_*). Kernel facts: with no port given the
    // kernel uses Linux's pre-standard 8472; a device that learns would
    // believe any packet's source; `proxy` answers ARP requests from the
    // neighbour table instead of sending them across. Shell: ip link add
    // ovx256 mtu 1450 master ovbr256 type vxlan id 256 dstport 4789 local
    // 10.99.0.1 dev eth0 nolearning proxy
    // BEGIN SOLUTION
    use anyhow::Context;
    use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
    use netlink_packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo};
    use netlink_packet_route::{link::LinkMessage, RouteNetlinkMessage};
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(spec.name.clone()));
    message.attributes.push(LinkAttribute::Mtu(spec.mtu));
    // IFLA_MASTER: the crate calls it Controller.
    message
        .attributes
        .push(LinkAttribute::Controller(spec.bridge));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Vxlan),
        LinkInfo::Data(InfoData::Vxlan(vec![
            InfoVxlan::Id(spec.vni),
            InfoVxlan::Port(crate::store::VXLAN_PORT),
            InfoVxlan::Local(spec.local),
            InfoVxlan::Link(spec.underlay),
            InfoVxlan::Learning(false),
            InfoVxlan::Proxy(true),
        ])),
    ]));
    netlink
        .request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("cannot create the VXLAN device {}", spec.name))
    // END SOLUTION
}
// ANCHOR_END: add_vxlan
