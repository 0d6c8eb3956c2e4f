//! # Step 05: bridge networking, as docker does it
//!
//! The finished runtime. Containers get real networks: a veth pair from the
//! container's `eth0` to a bridge on the host, an address from IPAM, a
//! default route via the bridge; names on user-defined networks; published
//! ports and egress NAT through nftables.
//!
//! - [`netlink`]: rtnetlink requests (`ip link`, `ip addr`, `ip route`);
//! - [`ipam`]: subnets and address allocation;
//! - [`networks`]: networks under `--root`, their bridges;
//! - [`attach`]: a container on a network (the veth, its set-up, hosts);
//! - [`firewall`]: nftables rules for ports, NAT and isolation;
//! - [`nftables`]: what nftables holds, read (and rules deleted) over
//!   netfilter netlink, without an `nft` process;
//! - [`ports`]: a published port held by a bound socket;
//! - [`cli`]: step 04's commands plus `network` and `run --network -p`.

pub mod attach;
pub mod cli;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod networks;
pub mod nftables;
pub mod ports;
