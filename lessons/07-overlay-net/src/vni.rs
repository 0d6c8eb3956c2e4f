//! The VXLAN Network Identifier: 24 bits in every VXLAN header, the number
//! that keeps two overlay networks apart on one underlay. It must be the
//! same for a network on every host, and differ between networks: chosen
//! once, cluster-wide, when the network is created.
//!
//! ```text
//! /minibox/v1/vni/256  -> NETWORK NAME
//! ```

use crate::etcd::Etcd;

// ANCHOR: allocate
/// The lowest VNI from 256 (libnetwork's first) that no network holds, now
/// held by the network `name`.
pub fn allocate(etcd: &Etcd, name: &str) -> anyhow::Result<u32> {
    // TODO(lesson-07): return the lowest VNI from store::FIRST_VNI to store::LAST_VNI whose key (store::vni_key) did not exist, and afterwards that key holds name; of creators racing on all hosts, never two get one VNI
    // The same create-if-absent transaction as ipam::allocate (compare
    // create_revision = 0, then put), without a lease: a network lasts
    // until `network rm`. Shell: etcdctl txn <<< $'create("/minibox/v1/
    // vni/256") = "0"\n\nput /minibox/v1/vni/256 NAME\n\n'
    todo!(
        "lesson-07: return the lowest VNI from store::FIRST_VNI to store::LAST_VNI whose key (store::vni_key) did not exist, and afterwards that key holds name; of creators racing on all hosts, never two get one VNI"
    );
}
// ANCHOR_END: allocate
