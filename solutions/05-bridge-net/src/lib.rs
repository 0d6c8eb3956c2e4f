//! # Step 05: bridge networking, as docker does it (in progress)
//!
//! - [`netlink`]: rtnetlink requests (`ip link`, `ip addr`, `ip route`);
//! - [`ipam`]: subnets and address allocation;
//! - [`networks`]: networks under `--root`, their bridges.

pub mod ipam;
pub mod netlink;
pub mod networks;
