//! Who is where, written into the kernel: for each container on another
//! host, two entries on this host's VXLAN device.
//!
//! - A forwarding (FDB) entry: frames for its MAC go to its host's
//!   underlay address. `bridge fdb replace 02:42:0a:00:00:03 dev ovx256 dst
//!   10.99.0.3 self permanent`.
//! - A neighbour (ARP) entry: its overlay address has that MAC. `ip neigh
//!   replace 10.0.0.3 lladdr 02:42:0a:00:00:03 dev ovx256 nud permanent`.
//!   The device was made with `proxy`: it answers the containers' ARP
//!   requests from these entries itself, nothing is flooded.
//!
//! With learning off, nothing else sends a frame anywhere: a container
//! without its entries here is unreachable from this host.
//!
//! Both are added with NLM_F_CREATE | NLM_F_REPLACE (`replace`: made, or
//! overwritten when the MAC or IP has one), never NLM_F_APPEND: a
//! container's MAC has one VTEP, and an appended second one is ignored.
//!
//! netlink-packet-route 0.30 names things its own way: NTF_SELF is
//! `NeighbourFlags::Own`; its `NeighbourState` is an enum of single states
//! while the kernel's `ndm_state` is a bit set. The FDB entry's state is
//! NUD_NOARP | NUD_PERMANENT (0xc0, as `bridge fdb replace` sends it),
//! written `NeighbourState::Other(0xc0)`; the neighbour entry's is
//! NUD_PERMANENT alone, `NeighbourState::Permanent`.

use crate::netlink::Netlink;
use std::net::Ipv4Addr;

/// NUD_* bits (include/uapi/linux/neighbour.h).
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Delete,
}

// ANCHOR: fdb
/// `bridge fdb replace MAC dev VXLAN dst VTEP self permanent` (Add) or
/// `bridge fdb del MAC dev VXLAN dst VTEP self` (Delete), on the VXLAN
/// device of index `vxlan`.
pub fn fdb(
    netlink: &mut Netlink,
    change: Change,
    vxlan: u32,
    mac: &str,
    vtep: Ipv4Addr,
) -> anyhow::Result<()> {
    // TODO(lesson-07): Add: the VXLAN device vxlan has in its own forwarding table a permanent entry sending frames for mac to vtep, made or, if the MAC has one, replaced (bridge fdb replace, never append); Delete: the MAC's entry to vtep is gone and every other MAC's stays
    // A neighbour message of the *bridge* family (AF_BRIDGE): RTM_NEWNEIGH
    // to add, RTM_DELNEIGH to delete. Kernel facts: NTF_SELF picks the
    // device's own table (not its master bridge's); NDA_LLADDR is the MAC,
    // NDA_DST the VTEP; a unicast MAC has one VTEP: NLM_F_REPLACE moves
    // it (a container's address given again on another host), where
    // NLM_F_APPEND adds VTEPs to the all-zeros and multicast MACs only.
    // Shell: bridge fdb replace 02:42:0a:00:00:03 dev ovx256 dst 10.99.0.3
    // self permanent
    todo!(
        "lesson-07: Add: the VXLAN device vxlan has in its own forwarding table a permanent entry sending frames for mac to vtep, made or, if the MAC has one, replaced (bridge fdb replace, never append); Delete: the MAC's entry to vtep is gone and every other MAC's stays"
    );
}
// ANCHOR_END: fdb

// ANCHOR: neighbour
/// `ip neigh replace IP lladdr MAC dev VXLAN nud permanent` (Add) or `ip
/// neigh del IP dev VXLAN` (Delete), on the VXLAN device of index `vxlan`.
pub fn neighbour(
    netlink: &mut Netlink,
    change: Change,
    vxlan: u32,
    ip: Ipv4Addr,
    mac: &str,
) -> anyhow::Result<()> {
    // TODO(lesson-07): Add: the VXLAN device vxlan has a permanent IPv4 neighbour entry ip -> mac, made or overwritten; Delete: the device has no neighbour entry for ip
    // A neighbour message of the family AF_INET: RTM_NEWNEIGH with
    // NLM_F_CREATE | NLM_F_REPLACE (make it, or overwrite what is there),
    // RTM_DELNEIGH to delete. Kernel facts: a permanent entry is never
    // aged out nor re-checked; NDA_DST is the IP, NDA_LLADDR the MAC.
    // Shell: ip neigh replace 10.0.0.3 lladdr 02:42:0a:00:00:03 dev ovx256
    // nud permanent
    todo!(
        "lesson-07: Add: the VXLAN device vxlan has a permanent IPv4 neighbour entry ip -> mac, made or overwritten; Delete: the device has no neighbour entry for ip"
    );
}
// ANCHOR_END: neighbour
