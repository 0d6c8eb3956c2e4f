//! What step 05 gives: the code around the exercise, read it freely.
//!
//! - [`netlink`]: the rtnetlink socket (send a request, wait for the
//!   kernel's answer, dumps, lookups) and the bridge itself;
//! - [`networks`]: networks under `--root`, their records and bridges;
//! - [`subnet`]: IPv4 subnets, parsed and compared;
//! - [`attach`]: a container on a network, step 04's `Attach`;
//! - [`firewall`]: applying and removing nftables rules;
//! - [`nftables`]: what nftables holds, read (and rules deleted) over
//!   netfilter netlink, without an `nft` process;
//! - [`ports`]: a published port held by a bound socket;
//! - [`cli`]: step 04's commands plus `network` and `run --network -p`.

pub mod attach;
pub mod cli;
pub mod firewall;
pub mod netlink;
pub mod networks;
pub mod nftables;
pub mod ports;
pub mod subnet;
