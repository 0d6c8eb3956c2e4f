//! Addresses of an overlay network, given out cluster-wide.
//!
//! Step 05's IPAM held a lock on one host's disk; three hosts share no
//! disk. What they share is the store, and etcd's transactions are what
//! a lock was: a compare and the writes it guards, decided by the leader
//! in the order of the Raft log. "Create this key if nobody has" succeeds
//! for exactly one of any number of hosts asking at once.
//!
//! ```text
//! /minibox/v1/ipam/NETWORK/10.0.0.2  -> CONTAINER ID   (under its lease)
//! ```

use crate::etcd::Etcd;
use crate::store::OverlayNetwork;
use std::net::Ipv4Addr;

// ANCHOR: allocate
/// The lowest free address of `network`'s subnet, now held by container
/// `id` under `lease` (the address goes back by itself when the lease
/// ends). Never the network address, `.1` (kept for a gateway, as docker
/// keeps it) or the broadcast address.
pub fn allocate(
    etcd: &Etcd,
    network: &OverlayNetwork,
    id: &str,
    lease: i64,
) -> anyhow::Result<Ipv4Addr> {
    // TODO(lesson-07): return the lowest address of network.subnet that no other caller on any host holds, from the third (.2) to the one before the broadcast, and afterwards its key (store::address_key) holds id, attached to lease; of callers racing on all hosts, never two get one address; a full network is an error that holds nothing
    // One etcd transaction per candidate (Etcd::txn): compare the key's
    // create_revision with 0 (a key that does not exist has none), and on
    // success put the key with its value and lease. Kernel fact of etcd:
    // the leader applies transactions one at a time, so a compare that
    // held is still true when the put lands. Shell: etcdctl txn <<< $'
    // create("/minibox/v1/ipam/ov/10.0.0.2") = "0"\n\nput --lease=ID
    // /minibox/v1/ipam/ov/10.0.0.2 ID\n\n'
    todo!(
        "lesson-07: return the lowest address of network.subnet that no other caller on any host holds, from the third (.2) to the one before the broadcast, and afterwards its key (store::address_key) holds id, attached to lease; of callers racing on all hosts, never two get one address; a full network is an error that holds nothing"
    );
}
// ANCHOR_END: allocate

// ANCHOR: release
/// Give `address` of `network` back, if container `id` holds it (a
/// stale release never frees someone else's).
pub fn release(etcd: &Etcd, network: &str, address: Ipv4Addr, id: &str) -> anyhow::Result<()> {
    // TODO(lesson-07): afterwards the address's key is gone if its value was id, and untouched if it held another container's id (or did not exist); in one step, so that no allocation can slip in between the look and the delete
    // One transaction again: compare the key's VALUE with the id, on
    // success delete the key (a request_delete_range of that one key).
    // Shell: etcdctl txn <<< $'value("KEY") = "ID"\n\ndel KEY\n\n'
    todo!(
        "lesson-07: afterwards the address's key is gone if its value was id, and untouched if it held another container's id (or did not exist); in one step, so that no allocation can slip in between the look and the delete"
    );
}
// ANCHOR_END: release
