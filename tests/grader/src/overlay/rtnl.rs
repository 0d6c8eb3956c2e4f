//! A route-netlink socket in a network namespace named by path.
//!
//! `ip`, `bridge` and the runtime all talk to the kernel's network stack
//! through `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`. A netlink socket
//! belongs to the namespace it was *created* in, whatever thread uses it
//! later: [`Rtnl::open_in`] enters the namespace (`setns`, this thread
//! only), makes the socket and comes back, as `ip -n NAME` and
//! `nsenter --net=PATH ip ...` do.

use anyhow::{bail, Context};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::collections::BTreeMap;
use std::os::fd::AsFd;

/// A route-netlink socket bound to one network namespace.
pub struct Rtnl {
    socket: Socket,
    sequence: u32,
}

impl Rtnl {
    /// A socket in the network namespace at `netns` (`/run/netns/X` or
    /// `/proc/PID/ns/net`).
    pub fn open_in(netns: &str) -> anyhow::Result<Rtnl> {
        in_netns(netns, Rtnl::open)
    }

    fn open() -> anyhow::Result<Rtnl> {
        // socket(2) + bind(2) with port 0 (the kernel picks our address) +
        // connect(2) to the kernel (port 0): requests go to the kernel only.
        let mut socket = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
        socket.bind_auto().context("cannot bind a netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("cannot connect a netlink socket to the kernel")?;
        Ok(Rtnl {
            socket,
            sequence: 0,
        })
    }

    /// Send one request with `NLM_F_ACK` and wait for the kernel's answer:
    /// Ok on its ACK (an error message with code 0), the errno otherwise
    /// (`EEXIST` is "File exists", `ENOENT` "No such file or directory").
    /// `flags`: `NLM_F_CREATE | NLM_F_EXCL` for `add`, `NLM_F_CREATE |
    /// NLM_F_REPLACE` for `replace`, `NLM_F_CREATE | NLM_F_APPEND` for
    /// `bridge fdb append`, none for `del` and `set`.
    pub fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<()> {
        let sequence = self.send(message, flags | NLM_F_ACK)?;
        loop {
            for answer in self.receive()? {
                if answer.header.sequence_number != sequence {
                    continue;
                }
                if let NetlinkPayload::Error(error) = answer.payload {
                    return match error.code {
                        None => Ok(()),
                        Some(_) => Err(error.to_io().into()),
                    };
                }
            }
        }
    }

    /// Send a dump request (`NLM_F_DUMP`: "all of them") and gather the
    /// answers, which may span several reads, up to the kernel's `DONE`.
    pub fn dump(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> anyhow::Result<Vec<RouteNetlinkMessage>> {
        let sequence = self.send(message, NLM_F_DUMP)?;
        let mut out = Vec::new();
        loop {
            for answer in self.receive()? {
                if answer.header.sequence_number != sequence {
                    continue;
                }
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

    /// Every link of the namespace by index (`ip -o link show`), the
    /// messages whole: the read side takes what it needs of them.
    pub fn links(&mut self) -> anyhow::Result<Vec<LinkMessage>> {
        Ok(self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })
            .collect())
    }

    /// Index -> name of every link of the namespace.
    pub fn names(&mut self) -> anyhow::Result<BTreeMap<u32, String>> {
        Ok(self
            .links()?
            .iter()
            .filter_map(|link| Some((link.header.index, name(link)?.to_string())))
            .collect())
    }

    /// The index of the link `name`, which must exist (`ip link show NAME`).
    pub fn index(&mut self, name: &str) -> anyhow::Result<u32> {
        match self.names()?.into_iter().find(|(_, n)| n == name) {
            Some((index, _)) => Ok(index),
            None => bail!("no interface {name} in this namespace"),
        }
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> anyhow::Result<u32> {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        // sendmsg(2) to the kernel; fails only on a broken socket or ENOBUFS.
        self.socket
            .send(&buffer, 0)
            .context("cannot send to netlink")?;
        Ok(self.sequence)
    }

    fn receive(&mut self) -> anyhow::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        // recvmsg(2): one datagram holds one or more netlink messages; it
        // blocks until the kernel answers (it always does, ACK or error).
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
            // Messages are 4-byte aligned inside the datagram.
            offset += (length + 3) & !3;
        }
        Ok(messages)
    }
}

/// The name of a link (`IFLA_IFNAME`).
pub fn name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

/// Run `f` with this thread in the network namespace at `netns`, then
/// come back. Sockets made by `f` stay in that namespace.
pub fn in_netns<T>(netns: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    use nix::sched::{setns, CloneFlags};
    let ours = std::fs::File::open("/proc/thread-self/ns/net")
        .context("cannot open our own network namespace")?;
    let theirs = std::fs::File::open(netns)
        .with_context(|| format!("cannot open the network namespace {netns}"))?;
    // setns(2) moves only this thread (network namespaces may differ
    // between threads); EPERM without CAP_SYS_ADMIN.
    setns(theirs.as_fd(), CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("cannot enter the network namespace {netns}"))?;
    let result = f();
    // Back home; should this fail the thread would stay in the lab, so it
    // is fatal: a later socket of this thread would land in the wrong place.
    setns(ours.as_fd(), CloneFlags::CLONE_NEWNET)
        .expect("cannot return to the grader's own network namespace");
    result
}
