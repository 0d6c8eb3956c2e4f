//! A VXLAN testbed: two "hosts" (network namespaces) on an underlay, each
//! with a bridge, a VXLAN device enslaved to it and "containers" (network
//! namespaces) plugged into the bridge by veth pairs:
//!
//! ```text
//!  container a (10.0.0.2)                         container b (10.0.0.3)
//!        | eth0 (mtu 1450)                              | eth0
//!  host A: br0 -- vx0 (vni 42)                  host B: br0 -- vx0 (vni 42)
//!                  | ua 192.168.50.1 ====== ub 192.168.50.2 |
//!                          underlay (a veth pair)
//! ```
//!
//! The plumbing a bridge network already has (step 05: veths, addresses,
//! bridges) is made with `ip`, in the lab namespaces. What is new for step
//! 07 is written over rtnetlink, the prototype of what the reference will
//! send: [`add_vxlan`] (a VXLAN link), [`fdb_append`] and [`fdb_del`] (the
//! VXLAN device's forwarding entries), [`neigh_replace`] (a permanent ARP
//! entry). Test code only: nothing here is exported for runtime use.

use grader::overlay::{Rtnl, NUD_NOARP, NUD_PERMANENT};
use grader::{Fail, NetLab};
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The UDP port IANA gave VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// A "host": a network namespace with an underlay address.
pub struct Host {
    pub net: NetLab,
    /// Its end of the underlay (`ua`, `ub`).
    pub underlay: String,
    pub address: Ipv4Addr,
}

/// A "container": a network namespace with `eth0` in a host's bridge.
pub struct Container {
    pub net: NetLab,
    pub address: Ipv4Addr,
    pub mac: String,
}

impl Host {
    pub fn netns(&self) -> String {
        self.net.netns()
    }

    pub fn rtnl(&self) -> Result<Rtnl, Fail> {
        Rtnl::open_in(&self.netns()).map_err(|e| fail("open rtnetlink in a host", e))
    }

    pub fn index(&self, name: &str) -> Result<u32, Fail> {
        self.rtnl()?
            .index(name)
            .map_err(|e| fail("find a link of a host", e))
    }
}

/// Two hosts on an underlay: a veth pair `ua` (192.168.50.1/24, in A) to
/// `ub` (192.168.50.2/24, in B).
pub fn hosts() -> Result<(Host, Host), Fail> {
    let a = NetLab::new()?;
    let b = NetLab::new()?;
    // ip link add ua type veth peer name ub netns B
    a.sh(&format!(
        "ip link add ua type veth peer name ub netns {} \
         && ip addr add 192.168.50.1/24 dev ua && ip link set ua up",
        b.pid
    ))?;
    b.sh("ip addr add 192.168.50.2/24 dev ub && ip link set ub up")?;
    Ok((
        Host {
            net: a,
            underlay: "ua".into(),
            address: Ipv4Addr::new(192, 168, 50, 1),
        },
        Host {
            net: b,
            underlay: "ub".into(),
            address: Ipv4Addr::new(192, 168, 50, 2),
        },
    ))
}

/// `ip link add BRIDGE type bridge && ip link set BRIDGE up`, in `host`.
pub fn add_bridge(host: &Host, bridge: &str) -> Result<(), Fail> {
    host.net.sh(&format!(
        "ip link add {bridge} type bridge && ip link set {bridge} up"
    ))?;
    Ok(())
}

/// A container with `address`/24 on `bridge` of `host`, through the veth
/// `port` (host side) / `eth0` (container side), both of MTU 1450: the
/// underlay's 1500 minus VXLAN's 50 bytes. Its MAC is made from its
/// address as docker makes it: 02:42 and the four bytes of the IPv4
/// address, so that each end can write the other's entries knowing only
/// its address.
pub fn container(
    host: &Host,
    bridge: &str,
    port: &str,
    address: Ipv4Addr,
) -> Result<Container, Fail> {
    let net = NetLab::new()?;
    let [a, b, c, d] = address.octets();
    let mac = format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
    host.net.sh(&format!(
        "ip link add {port} mtu 1450 type veth peer name eth0 netns {pid} \
         && ip link set {port} master {bridge} && ip link set {port} up",
        pid = net.pid
    ))?;
    net.sh(&format!(
        "ip link set eth0 address {mac} mtu 1450 && ip addr add {address}/24 dev eth0 \
         && ip link set eth0 up"
    ))?;
    Ok(Container { net, address, mac })
}

/// A VXLAN device `name` in `host`, enslaved to `bridge`, up:
///
/// ```text
/// ip link add vx0 type vxlan id 42 dstport 4789 local 192.168.50.1 dev ua \
///     nolearning proxy
/// ip link set vx0 master br0 && ip link set vx0 up
/// ```
///
/// One `RTM_NEWLINK` with `NLM_F_CREATE | NLM_F_EXCL` (fail if it exists):
/// `IFLA_IFNAME`, `IFLA_MASTER`, and `IFLA_LINKINFO` holding
/// `IFLA_INFO_KIND` "vxlan" and `IFLA_INFO_DATA` with the VXLAN attributes.
/// `nolearning`: the device never learns "MAC behind VTEP" from what
/// arrives; only written FDB entries send frames anywhere. `proxy`: it
/// answers ARP requests from its neighbour table instead of sending them
/// across (there is no default destination to flood them to).
pub fn add_vxlan(host: &Host, name: &str, vni: u32, bridge: &str) -> Result<(), Fail> {
    let mut rtnl = host.rtnl()?;
    let underlay = rtnl
        .index(&host.underlay)
        .map_err(|e| fail("find the underlay device", e))?;
    let master = rtnl.index(bridge).map_err(|e| fail("find the bridge", e))?;
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    // IFLA_MASTER (the crate's Controller): `master br0` at creation.
    message.attributes.push(LinkAttribute::Controller(master));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Vxlan),
        LinkInfo::Data(InfoData::Vxlan(vec![
            InfoVxlan::Id(vni),             // id 42
            InfoVxlan::Port(VXLAN_PORT),    // dstport 4789 (else 8472)
            InfoVxlan::Local(host.address), // local 192.168.50.1
            InfoVxlan::Link(underlay),      // dev ua: MTU 1500 - 50
            InfoVxlan::Learning(false),     // nolearning
            InfoVxlan::Proxy(true),         // proxy
        ])),
    ]));
    rtnl.request(
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(|e| fail(&format!("create the VXLAN device {name} (vni {vni})"), e))?;
    // ip link set vx0 up: RTM_NEWLINK on its index, IFF_UP in both the
    // flags and the change mask (the bits to change).
    let mut up = LinkMessage::default();
    up.header.index = rtnl
        .index(name)
        .map_err(|e| fail("find the new VXLAN device", e))?;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    rtnl.request(RouteNetlinkMessage::SetLink(up), 0)
        .map_err(|e| fail(&format!("set {name} up"), e))
}

/// The forwarding entry "frames for `mac` go to the VTEP `dst`", in the
/// VXLAN device's own table:
///
/// ```text
/// bridge fdb append 02:42:0a:00:00:03 dev vx0 dst 192.168.50.2 self permanent
/// ```
///
/// A neighbour message of the *bridge* family (`AF_BRIDGE`), `RTM_NEWNEIGH`
/// with `NLM_F_CREATE | NLM_F_APPEND` (append: one MAC may have several
/// VTEPs, as the all-zeros MAC `00:00:00:00:00:00` of a flooding list has):
/// `ndm_flags` NTF_SELF (the device's table, not its master bridge's),
/// `ndm_state` NUD_NOARP | NUD_PERMANENT as `bridge` sends it,
/// `NDA_LLADDR` the MAC, `NDA_DST` the VTEP.
pub fn fdb_append(host: &Host, dev: &str, mac: &str, dst: Ipv4Addr) -> Result<(), Fail> {
    let message = fdb_message(host, dev, mac, dst)?;
    host.rtnl()?
        .request(
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_CREATE | NLM_F_APPEND,
        )
        .map_err(|e| fail(&format!("bridge fdb append {mac} dev {dev} dst {dst}"), e))
}

/// `bridge fdb del 02:42:0a:00:00:03 dev vx0 dst 192.168.50.2 self`: the
/// same message as [`fdb_append`], as `RTM_DELNEIGH`.
pub fn fdb_del(host: &Host, dev: &str, mac: &str, dst: Ipv4Addr) -> Result<(), Fail> {
    let message = fdb_message(host, dev, mac, dst)?;
    host.rtnl()?
        .request(RouteNetlinkMessage::DelNeighbour(message), 0)
        .map_err(|e| fail(&format!("bridge fdb del {mac} dev {dev} dst {dst}"), e))
}

fn fdb_message(host: &Host, dev: &str, mac: &str, dst: Ipv4Addr) -> Result<NeighbourMessage, Fail> {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    message.header.ifindex = host.index(dev)?;
    // The crate's NeighbourState is an enum of single states; the kernel's
    // ndm_state is a bit set, so the pair goes in as Other(bits).
    message.header.state = NeighbourState::Other(NUD_NOARP | NUD_PERMANENT);
    // NTF_SELF: the crate calls it Own.
    message.header.flags = NeighbourFlags::Own;
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac_bytes(mac)));
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    Ok(message)
}

/// The ARP entry "`ip` is at `mac`" on `dev`, never aged out:
///
/// ```text
/// ip neigh replace 10.0.0.3 lladdr 02:42:0a:00:00:03 dev vx0 nud permanent
/// ```
///
/// `RTM_NEWNEIGH` of the family `AF_INET` with `NLM_F_CREATE |
/// NLM_F_REPLACE` (make it, or overwrite what is there): `ndm_state`
/// NUD_PERMANENT, `NDA_DST` the address, `NDA_LLADDR` the MAC. On a VXLAN
/// device made with `proxy` this is what answers the containers' ARP
/// requests.
pub fn neigh_replace(host: &Host, dev: &str, ip: Ipv4Addr, mac: &str) -> Result<(), Fail> {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.ifindex = host.index(dev)?;
    message.header.state = NeighbourState::Permanent;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac_bytes(mac)));
    host.rtnl()?
        .request(
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(|e| {
            fail(
                &format!("ip neigh replace {ip} lladdr {mac} dev {dev} nud permanent"),
                e,
            )
        })
}

/// `ip link del NAME` in `host` (a veth takes its peer with it, even in
/// another namespace).
pub fn delete_link(host: &Host, name: &str) -> Result<(), Fail> {
    let mut rtnl = host.rtnl()?;
    let mut message = LinkMessage::default();
    message.header.index = rtnl
        .index(name)
        .map_err(|e| fail(&format!("find {name} to delete it"), e))?;
    rtnl.request(RouteNetlinkMessage::DelLink(message), 0)
        .map_err(|e| fail(&format!("ip link del {name}"), e))
}

/// A UDP socket bound to `address:port` inside the namespace at `netns`.
pub fn udp_in(netns: &str, address: Ipv4Addr, port: u16) -> Result<UdpSocket, Fail> {
    grader::overlay::rtnl::in_netns(netns, || Ok(UdpSocket::bind((address, port))?))
        .map_err(|e| fail(&format!("bind UDP {address}:{port} in a lab"), e))
}

/// One UDP round trip made by the test itself: `client` sends a numbered
/// datagram of `size` bytes to `server`, the server socket reads it
/// (skipping older ones a queue released late) and sends it back. The
/// time it took, or None if either way got nothing within `timeout`.
pub fn round_trip(
    client: &UdpSocket,
    server: &UdpSocket,
    sequence: u64,
    size: usize,
    timeout: Duration,
) -> Option<Duration> {
    let to: SocketAddr = server.local_addr().ok()?;
    let deadline = Instant::now() + timeout;
    let mut message = sequence.to_be_bytes().to_vec();
    message.resize(size.max(8), 0x55);
    let started = Instant::now();
    client.send_to(&message, to).ok()?;
    let from = receive(server, &message, deadline)?;
    server.send_to(&message, from).ok()?;
    receive(client, &message, deadline)?;
    Some(started.elapsed())
}

/// Read from `socket` until `message` comes (its sender) or `deadline`.
fn receive(socket: &UdpSocket, message: &[u8], deadline: Instant) -> Option<SocketAddr> {
    let mut buffer = [0u8; 2048];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match socket.recv_from(&mut buffer) {
            Ok((n, from)) if &buffer[..n] == message => return Some(from),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// The median of `samples`.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mac_bytes(mac: &str) -> Vec<u8> {
    grader::overlay::parse_mac(mac)
        .expect("the testbed's MACs are well formed")
        .to_vec()
}

fn fail(what: &str, e: anyhow::Error) -> Fail {
    Fail::new(format!("testbed: cannot {what}")).seen(format!("{e:#}"))
}
