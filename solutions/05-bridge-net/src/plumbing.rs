//! The rtnetlink requests that plumb a container into a bridge network:
//! what `ip link`, `ip addr` and `ip route` send the kernel.
//!
//! Each request is one `netlink-packet-route` message (a header with the
//! fixed fields, then a list of attributes, some nested), sent with
//! [`Netlink::request`], which waits for the kernel's answer and turns an
//! error into an `io::Error`. [`Netlink::add_bridge`] is a worked example:
//! a `LinkMessage` with the name and a nested `IFLA_LINKINFO` saying what
//! kind of link to make.
//!
//! ```text
//!   host (or the lab)                      container
//!   ┌──────────── minibox0 (bridge, 10.200.0.1/16) ───┐
//!   │    mbx3f2a9c1d0e  <── veth pair ──>  eth0 10.200.0.2/16
//!   └─────────────────────────────────────────────────┘
//!        default route inside: via 10.200.0.1 (the bridge)
//! ```

use crate::netlink::Netlink;
use std::net::Ipv4Addr;

// ANCHOR: add_veth
/// `ip link add NAME type veth peer name PEER netns PID`: a pair of linked
/// interfaces, `name` here, `peer` made directly in the network namespace
/// of process `peer_pid`. Fails if `name` exists.
pub fn add_veth(
    netlink: &mut Netlink,
    name: &str,
    peer: &str,
    peer_pid: i32,
) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards a veth pair exists: `name` in the socket's namespace, `peer` in the namespace of process `peer_pid`; if `name` already exists, fail and make nothing
    // An RTM_NEWLINK. Its IFLA_LINKINFO says the kind (veth) and, nested
    // in the kind's data, describes the peer as a link message of its own:
    // its name and IFLA_NET_NS_PID, the namespace it is born in. Born
    // there, it never shows up on the host (no race with udev or another
    // run, no move afterwards). Shell: ip link add NAME type veth peer
    // name PEER netns PID
    // BEGIN SOLUTION
    use anyhow::Context;
    use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
    use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo};
    use netlink_packet_route::{link::LinkMessage, RouteNetlinkMessage};
    let mut other = LinkMessage::default();
    other
        .attributes
        .push(LinkAttribute::IfName(peer.to_string()));
    other
        .attributes
        .push(LinkAttribute::NetNsPid(peer_pid as u32));
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(other))),
    ]));
    netlink
        .request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("cannot create the veth pair {name}"))
    // END SOLUTION
}
// ANCHOR_END: add_veth

// ANCHOR: set_up
/// `ip link set dev INDEX master BRIDGE up` (with `master`), or `ip link
/// set dev INDEX up`.
pub fn set_up(netlink: &mut Netlink, index: u32, master: Option<u32>) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards the link with this index is up and, when a master is given, a port of that bridge
    // An RTM_SETLINK for an existing link, named by its index in the
    // header. The header's flags are the new values and its change mask
    // says which of them to change (leave the others as they are); the
    // bridge is the link's IFLA_MASTER attribute. Shell: ip link set dev
    // NAME master BRIDGE up
    // BEGIN SOLUTION
    use anyhow::Context;
    use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
    use netlink_packet_route::RouteNetlinkMessage;
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    if let Some(bridge) = master {
        message.attributes.push(LinkAttribute::Controller(bridge));
    }
    netlink
        .request(RouteNetlinkMessage::SetLink(message), 0)
        .context("cannot bring an interface up")
    // END SOLUTION
}
// ANCHOR_END: set_up

// ANCHOR: add_address
/// `ip addr add ADDRESS/PREFIX dev INDEX`: the address, and with it the
/// kernel's route to its subnet on that link (once the link is up).
pub fn add_address(
    netlink: &mut Netlink,
    index: u32,
    address: Ipv4Addr,
    prefix: u8,
) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards the link with this index has the IPv4 address with this prefix length (fail if it has it already)
    // An RTM_NEWADDR: family, prefix length and the link's index in the
    // header; the address itself as IFA_LOCAL (the interface's own) and
    // IFA_ADDRESS (the same on a broadcast link; the far end on a
    // point-to-point one). Shell: ip addr add 10.200.0.2/16 dev eth0
    // BEGIN SOLUTION
    use anyhow::Context;
    use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
    use netlink_packet_route::address::{AddressAttribute, AddressMessage};
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use std::net::IpAddr;
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(IpAddr::V4(address)));
    message
        .attributes
        .push(AddressAttribute::Address(IpAddr::V4(address)));
    netlink
        .request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("cannot add the address {address}/{prefix}"))
    // END SOLUTION
}
// ANCHOR_END: add_address

// ANCHOR: add_default_route
/// `ip route add default via GATEWAY dev INDEX`.
pub fn add_default_route(
    netlink: &mut Netlink,
    index: u32,
    gateway: Ipv4Addr,
) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards the main routing table has a default route (every destination, prefix length 0) via the gateway, out of the link with this index
    // An RTM_NEWROUTE. Its header holds what `ip -d route show` prints of
    // a route (the family, the table, who made it, its scope, its type),
    // its attributes the gateway (RTA_GATEWAY) and the output link
    // (RTA_OIF): ask the kernel what `ip route add` made in a scratch
    // namespace, and make the same. No destination attribute and a prefix
    // length of 0: the default. The gateway must be on a subnet the link
    // reaches, or the kernel answers ENETUNREACH.
    // Shell: ip route add default via 10.200.0.1 dev eth0
    // BEGIN SOLUTION
    use anyhow::Context;
    use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
    use netlink_packet_route::route::{RouteProtocol, RouteScope, RouteType};
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    message.attributes.push(RouteAttribute::Oif(index));
    netlink
        .request(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("cannot add the default route via {gateway}"))
    // END SOLUTION
}
// ANCHOR_END: add_default_route

// ANCHOR: plumb
/// The host's side of a container's network: its veth pair, `host` on
/// the host and `eth0` in the namespace of `pid`, the host end on the
/// bridge (whose index is `bridge`) and up.
pub fn plumb(netlink: &mut Netlink, host: &str, pid: i32, bridge: u32) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards the container (process `pid`) has an eth0 whose other end, `host`, is a port of the bridge and up
    // Shell: ip link add HOST type veth peer name eth0 netns PID; ip link
    // set HOST master BRIDGE up. Links are named by index in requests that
    // change them: look the new one up by its name.
    // BEGIN SOLUTION
    add_veth(netlink, host, "eth0", pid)?;
    let index = netlink.index(host)?;
    set_up(netlink, index, Some(bridge))
    // END SOLUTION
}
// ANCHOR_END: plumb

// ANCHOR: configure_inside
/// The container's side, through a socket of its network namespace: eth0
/// with its address and up, lo up, the default route via the gateway.
pub fn configure_inside(
    inside: &mut Netlink,
    address: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards, in the container's namespace: eth0 has ADDRESS/PREFIX and is up, lo is up, and the default route goes via the gateway on eth0
    // Order matters: the kernel accepts a route only via a gateway that a
    // link which is up reaches (its address's subnet), else ENETUNREACH.
    // Shell: ip addr add ADDRESS/PREFIX dev eth0; ip link set eth0 up; ip
    // link set lo up; ip route add default via GATEWAY dev eth0
    // BEGIN SOLUTION
    let eth0 = inside.index("eth0")?;
    add_address(inside, eth0, address, prefix)?;
    set_up(inside, eth0, None)?;
    let lo = inside.index("lo")?;
    set_up(inside, lo, None)?;
    add_default_route(inside, eth0, gateway)
    // END SOLUTION
}
// ANCHOR_END: configure_inside
