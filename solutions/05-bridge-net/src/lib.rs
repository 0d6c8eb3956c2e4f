//! # Step 05: bridge networking, as docker does it
//!
//! The finished runtime. Containers get real networks: a veth pair from the
//! container's `eth0` to a bridge on the host, an address from IPAM, a
//! default route via the bridge; names on user-defined networks; published
//! ports and egress NAT through nftables.
//!
//! What the learner writes, one concept per file:
//!
//! - [`ipam`]: an address for a container, under a lock, and back;
//! - [`plumbing`]: the rtnetlink messages (`ip link add ... type veth peer
//!   ... netns`, `ip link set ... master ... up`, `ip addr add`, `ip route
//!   add default via`) and their order;
//! - [`rules`]: the nftables rules for egress NAT, isolation and published
//!   ports, as text;
//! - [`hosts`]: a container's `/etc/hosts`.
//!
//! Everything else is given, under `src/given/` (re-exported here, so the
//! paths stay `step05::netlink`, `step05::cli`, ...).

mod given;
pub mod hosts;
pub mod ipam;
pub mod plumbing;
pub mod rules;

pub use given::{attach, cli, firewall, netlink, networks, nftables, ports, subnet};
