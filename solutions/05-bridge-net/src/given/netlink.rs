//! Talking to the kernel's network stack: rtnetlink.
//!
//! `ip link`, `ip addr` and `ip route` are front ends for one socket type:
//! `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`. A request is a message
//! (`RTM_NEWLINK`, `RTM_NEWADDR`, `RTM_NEWROUTE`, ...) with attributes; with
//! `NLM_F_ACK` the kernel answers every request with an error code (0 for
//! success). The messages themselves come from the `netlink-packet-route`
//! crate; this module sends them and reads the answers. The requests that
//! plumb a container (a veth pair, an address, a route) are yours, in
//! [`crate::plumbing`]; [`Netlink::add_bridge`] shows how one is built.
//!
//! A netlink socket belongs to the network namespace it was *created* in:
//! [`Netlink::open_in`] enters a container's namespace just long enough to
//! make one, then comes back, and the socket keeps working on the
//! container's interfaces. (`ip -n NAME` and `nsenter --net` do the same.)

use anyhow::{bail, Context};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr};

/// An IPv4 prefix the kernel has in a namespace: a route's destination, or
/// an address with its prefix length, and the interface it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub address: Ipv4Addr,
    pub length: u8,
    pub device: String,
    /// "route" or "address".
    pub kind: &'static str,
}

/// A route-netlink socket, in the namespace it was made in.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
    sent: Vec<Sent>,
}

/// One request as the kernel received it: its message type (`RTM_NEWLINK`
/// ...) and header flags, what `strace -e trace=sendmsg ip link add ...`
/// shows of `ip`'s own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub message_type: u16,
    pub flags: u16,
}

impl Netlink {
    /// A socket in this process's network namespace.
    pub fn open() -> anyhow::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
        socket.bind_auto().context("cannot bind a netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("cannot connect a netlink socket to the kernel")?;
        Ok(Netlink {
            socket,
            sequence: 0,
            sent: Vec::new(),
        })
    }

    // ANCHOR: open_in
    /// A socket in the network namespace of process `pid`.
    pub fn open_in(pid: i32) -> anyhow::Result<Netlink> {
        // The socket stays bound to the namespace it was made in.
        in_netns(pid, Netlink::open)?
    }
    // ANCHOR_END: open_in

    // ANCHOR: request
    /// Send one request and wait for the kernel's answer: Ok on its ACK,
    /// the errno as an error otherwise (`EEXIST`, `ENODEV`, `ENETUNREACH`
    /// ... as an [`std::io::Error`], which `ip` would print as "File
    /// exists" and so on).
    ///
    /// `flags` are the request's own, beside `NLM_F_REQUEST` and
    /// `NLM_F_ACK` which are always set: `NLM_F_CREATE` (make it if it is
    /// missing) and `NLM_F_EXCL` (fail if it exists) for a new object, as
    /// `ip ... add` sends them; none to change one that exists (`ip link
    /// set`).
    pub fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<()> {
        self.send(message, flags | NLM_F_ACK)?;
        loop {
            for answer in self.receive()? {
                if let NetlinkPayload::Error(error) = answer.payload {
                    return match error.code {
                        None => Ok(()),
                        Some(_) => Err(error.to_io().into()),
                    };
                }
            }
        }
    }
    // ANCHOR_END: request

    /// Every request this socket has sent, oldest first.
    pub fn sent(&self) -> &[Sent] {
        &self.sent
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<()> {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket
            .send(&buffer, 0)
            .context("cannot send to netlink")?;
        self.sent.push(Sent {
            message_type: packet.header.message_type,
            flags: packet.header.flags,
        });
        Ok(())
    }

    fn receive(&mut self) -> anyhow::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        let (bytes, _) = self
            .socket
            .recv_from_full()
            .context("cannot read from netlink")?;
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < bytes.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                .context("a netlink answer we cannot read")?;
            let length = message.header.length as usize;
            messages.push(message);
            if length == 0 {
                break;
            }
            offset += length;
        }
        Ok(messages)
    }

    /// The link named `name` as the kernel describes it (its index is in
    /// the header), if it exists. `ip link show NAME`.
    pub fn link(&mut self, name: &str) -> anyhow::Result<Option<LinkMessage>> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        self.send(RouteNetlinkMessage::GetLink(message), 0)?;
        loop {
            for answer in self.receive()? {
                match answer.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                        return Ok(Some(link))
                    }
                    NetlinkPayload::Error(error) if error.code.is_some() => {
                        let io = error.to_io();
                        return match io.raw_os_error() {
                            Some(nix::libc::ENODEV) => Ok(None),
                            _ => Err(io).with_context(|| format!("cannot look up {name}")),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// The index of `name`, which must exist.
    pub fn index(&mut self, name: &str) -> anyhow::Result<u32> {
        match self.link(name)? {
            Some(link) => Ok(link.header.index),
            None => bail!("no interface {name}"),
        }
    }

    // ANCHOR: add_bridge
    /// `ip link add NAME type bridge`.
    pub fn add_bridge(&mut self, name: &str) -> anyhow::Result<()> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        // A MAC of its own (`ip link add NAME address MAC type bridge`):
        // else a bridge takes the lowest MAC of its ports, and changes it
        // when that container leaves, and the others' ARP caches point at
        // a gateway MAC that is gone (for as long as 30 s).
        message
            .attributes
            .push(LinkAttribute::Address(random_mac()?));
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .with_context(|| format!("cannot create the bridge {name}"))
    }
    // ANCHOR_END: add_bridge

    /// `ip link del NAME` (a veth takes its peer with it).
    pub fn delete(&mut self, index: u32) -> anyhow::Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(message), 0)
            .context("cannot delete an interface")
    }

    /// The MAC address of a link, as `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&mut self, name: &str) -> anyhow::Result<String> {
        let link = self
            .link(name)?
            .with_context(|| format!("no interface {name}"))?;
        let bytes = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(bytes) => Some(bytes.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Ok(bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"))
    }

    /// Send a dump request (`NLM_F_DUMP`: "all of them") and gather the
    /// answers, which may span several reads, up to the kernel's `DONE`.
    fn dump(&mut self, message: RouteNetlinkMessage) -> anyhow::Result<Vec<RouteNetlinkMessage>> {
        self.send(message, NLM_F_DUMP)?;
        let mut out = Vec::new();
        loop {
            for answer in self.receive()? {
                match answer.payload {
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(error) if error.code.is_some() => {
                        return Err(error.to_io()).context("a netlink dump failed")
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every interface: index, name. `ip -o link show`.
    pub fn links(&mut self) -> anyhow::Result<Vec<(u32, String)>> {
        let answers = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => {
                    let name = link.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(name) => Some(name.clone()),
                        _ => None,
                    })?;
                    Some((link.header.index, name))
                }
                _ => None,
            })
            .collect())
    }

    // ANCHOR: prefixes
    /// The IPv4 prefixes in use in this namespace: every route of the main
    /// table but the default one (`ip -4 route show`), and every address
    /// with its prefix (`ip -4 -o addr show`), even on an interface that is
    /// down (whose routes are gone, while its address still claims them).
    pub fn prefixes(&mut self) -> anyhow::Result<Vec<Prefix>> {
        let names: std::collections::BTreeMap<u32, String> = self.links()?.into_iter().collect();
        let device = |index: Option<u32>| {
            index
                .and_then(|i| names.get(&i).cloned())
                .unwrap_or_else(|| "?".to_string())
        };
        let mut out = Vec::new();
        let mut request = RouteMessage::default();
        request.header.address_family = AddressFamily::Inet;
        for answer in self.dump(RouteNetlinkMessage::GetRoute(request))? {
            let RouteNetlinkMessage::NewRoute(route) = answer else {
                continue;
            };
            let header = &route.header;
            if header.table != netlink_packet_route::route::RouteHeader::RT_TABLE_MAIN
                || header.kind != RouteType::Unicast
                || header.destination_prefix_length == 0
            {
                continue;
            }
            let mut address = None;
            let mut oif = None;
            for attribute in &route.attributes {
                match attribute {
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => address = Some(*a),
                    RouteAttribute::Oif(index) => oif = Some(*index),
                    _ => {}
                }
            }
            if let Some(address) = address {
                out.push(Prefix {
                    address,
                    length: header.destination_prefix_length,
                    device: device(oif),
                    kind: "route",
                });
            }
        }
        let mut request = AddressMessage::default();
        request.header.family = AddressFamily::Inet;
        for answer in self.dump(RouteNetlinkMessage::GetAddress(request))? {
            let RouteNetlinkMessage::NewAddress(message) = answer else {
                continue;
            };
            let local = message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(a))
                | AddressAttribute::Address(IpAddr::V4(a)) => Some(*a),
                _ => None,
            });
            if let Some(address) = local {
                out.push(Prefix {
                    address,
                    length: message.header.prefix_len,
                    device: device(Some(message.header.index)),
                    kind: "address",
                });
            }
        }
        Ok(out)
    }
    // ANCHOR_END: prefixes

    /// `ip link set dev INDEX alias TEXT`: a note the kernel keeps on the
    /// interface (`ip -d link show` prints it), for whoever finds it later.
    pub fn set_alias(&mut self, index: u32, alias: &str) -> anyhow::Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message
            .attributes
            .push(LinkAttribute::IfAlias(alias.to_string()));
        self.request(RouteNetlinkMessage::SetLink(message), 0)
            .context("cannot set an interface's alias")
    }
}

/// The alias of a link, as [`Netlink::set_alias`] wrote it.
pub fn alias(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(text) if !text.is_empty() => Some(text.as_str()),
        _ => None,
    })
}

/// A random, locally administered, unicast MAC (02:xx:xx:xx:xx:xx).
fn random_mac() -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    bytes[0] = (bytes[0] & 0xfe) | 0x02;
    Ok(bytes.to_vec())
}

// ANCHOR: in_netns
/// Run `f` with this thread in the network namespace of process `pid`,
/// then come back: what `f` opens there (a netlink socket, a file of
/// `/proc/sys/net`) belongs to that namespace for good, whatever this
/// thread does next. Shell: `nsenter --net=/proc/PID/ns/net CMD`. The
/// result of `f`, or why the thread could not go or come back.
pub fn in_netns<T>(pid: i32, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    use nix::sched::{setns, CloneFlags};
    let ours = std::fs::File::open("/proc/self/ns/net")?;
    let theirs = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("cannot open the network namespace of {pid}"))?;
    // setns(2) moves only this thread; EPERM without CAP_SYS_ADMIN.
    setns(&theirs, CloneFlags::CLONE_NEWNET)
        .context("cannot enter the container's network namespace")?;
    let result = f();
    // Back, or every later socket of this thread would be the container's.
    setns(&ours, CloneFlags::CLONE_NEWNET).context("cannot return to our network namespace")?;
    Ok(result)
}
// ANCHOR_END: in_netns
