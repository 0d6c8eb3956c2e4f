//! What the VXLAN device holds, read back: its permanent FDB and neighbour
//! entries, dumped over rtnetlink (`bridge fdb show dev ovx256`, `ip neigh
//! show dev ovx256`), the sync's "local" side.
//!
//! netlink-packet-route 0.30 parses `NDA_DST` by the message's family: in
//! `AF_BRIDGE` (an FDB entry) it cannot know the VTEP's family and hands
//! over raw bytes (`NeighbourAddress::Other`), 4 of them for IPv4. And the
//! kernel filters an `AF_BRIDGE` dump by device only for some requests: we
//! dump all and keep the device's, by index.

use crate::entries::NUD_PERMANENT;
use crate::plan::{Entries, Fdb, Neighbour};
use anyhow::Context;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::Ipv4Addr;

/// Every neighbour message of `family` the kernel has in this thread's
/// network namespace (RTM_GETNEIGH with NLM_F_DUMP).
fn dump_neighbours(family: AddressFamily) -> anyhow::Result<Vec<NeighbourMessage>> {
    // socket(2) + bind(2) with port 0 + connect(2) to the kernel (port 0).
    let mut socket = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
    socket.bind_auto().context("cannot bind a netlink socket")?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .context("cannot connect a netlink socket")?;
    let mut request = NeighbourMessage::default();
    request.header.family = family;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetNeighbour(request)),
    );
    packet.finalize();
    let mut buffer = vec![0; packet.buffer_len()];
    packet.serialize(&mut buffer);
    socket.send(&buffer, 0).context("cannot send to netlink")?;
    let mut out = Vec::new();
    loop {
        // recvmsg(2): one datagram holds several messages, until NLMSG_DONE.
        let (bytes, _) = socket
            .recv_from_full()
            .context("cannot read from netlink")?;
        let mut offset = 0;
        while offset < bytes.len() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                .context("a netlink answer we cannot read")?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => out.push(n),
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(error.to_io()).context("a netlink dump failed")
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            // Messages are 4-byte aligned inside the datagram.
            offset += (length + 3) & !3;
        }
    }
}

/// The permanent entries of the VXLAN device of index `vxlan`: its own FDB
/// entries with an IPv4 VTEP, and its IPv4 neighbours.
pub fn entries(vxlan: u32) -> anyhow::Result<Entries> {
    let mut entries = Entries::default();
    for message in dump_neighbours(AddressFamily::Bridge)? {
        let state = u16::from(message.header.state);
        if message.header.ifindex != vxlan
            || !message.header.flags.contains(NeighbourFlags::Own)
            || state & NUD_PERMANENT == 0
        {
            continue;
        }
        let (mut mac, mut vtep) = (None, None);
        for attribute in &message.attributes {
            match attribute {
                NeighbourAttribute::LinkLayerAddress(bytes) => {
                    mac = Some(crate::store::mac_text(bytes))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Other(bytes))
                    if bytes.len() == 4 =>
                {
                    vtep = Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet(address)) => {
                    vtep = Some(*address)
                }
                _ => {}
            }
        }
        if let (Some(mac), Some(vtep)) = (mac, vtep) {
            entries.fdb.push(Fdb { mac, vtep });
        }
    }
    for message in dump_neighbours(AddressFamily::Inet)? {
        let state = u16::from(message.header.state);
        if message.header.ifindex != vxlan || state & NUD_PERMANENT == 0 {
            continue;
        }
        let (mut ip, mut mac) = (None, None);
        for attribute in &message.attributes {
            match attribute {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(address)) => {
                    ip = Some(*address)
                }
                NeighbourAttribute::LinkLayerAddress(bytes) => {
                    mac = Some(crate::store::mac_text(bytes))
                }
                _ => {}
            }
        }
        if let (Some(ip), Some(mac)) = (ip, mac) {
            entries.neighbours.push(Neighbour { ip, mac });
        }
    }
    entries.fdb.sort();
    entries.neighbours.sort();
    Ok(entries)
}
