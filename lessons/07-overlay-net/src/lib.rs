//! # Step 07: overlay networks across hosts (VXLAN), etcd as the cluster store
//!
//! The finished runtime. Step 05's networks end at the host: a bridge. An
//! overlay network spans hosts: each host has the network's bridge and a
//! VXLAN device on it, which carries the containers' Ethernet frames to the
//! other hosts inside UDP datagrams (port 4789), tagged with the network's
//! VNI. The hard part is who-is-where: every host must know, for every
//! container on another host, its MAC and the host it is behind. That is
//! shared state, kept in etcd, a store with consensus (Raft).
//!
//! What the learner writes, one concept per file:
//!
//! - [`vxlan`]: the VXLAN device, one rtnetlink request;
//! - [`entries`]: its forwarding (FDB) and neighbour entries, added and
//!   deleted;
//! - [`ipam`]: addresses given out cluster-wide by etcd transactions;
//! - [`vni`]: a network's VNI, likewise;
//! - [`endpoints`]: a container's endpoint registered under its lease;
//! - [`plan`]: the sync's plan, local entries against the store's
//!   endpoints.
//!
//! Everything else is given, under `src/given/` (re-exported here, so the
//! paths stay `step07::etcd`, `step07::cli`, ...).

pub mod endpoints;
pub mod entries;
mod given;
pub mod ipam;
pub mod plan;
pub mod vni;
pub mod vxlan;

pub use given::{attach, cli, dataplane, dump, etcd, store};
pub use step05::{netlink, subnet};
