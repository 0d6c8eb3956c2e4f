//! IP address management: which address of a network's subnet each
//! container has.
//!
//! A network's allocations are a small JSON file next to its definition,
//! `ROOT/networks/NAME.ipam.json`: a map from address to who has it
//! ([`Networks::allocations`] reads it, [`Networks::save_allocations`]
//! writes it whole). Many `run`s may start at once, each its own process:
//! the file may only be read, changed and written back under the networks'
//! lock ([`Networks::lock`], `flock(2)` on `ROOT/networks.lock`), or two of
//! them read the same free address and both take it.
//!
//! Of a subnet's addresses, the first names the network itself and the last
//! is its broadcast: neither can be an interface's. The gateway is the
//! bridge's own address on the host side. Everything else is free until
//! someone has it.

use crate::networks::{Allocation, Network, Networks};
use crate::subnet::Subnet;
use anyhow::{bail, Context};
use std::net::Ipv4Addr;

// ANCHOR: allocate
/// Give `who` the lowest free address of `network`, and record it: no
/// other caller, in this process or another, may get the same one until it
/// is released. Fails, changing nothing, when none is left.
pub fn allocate(
    networks: &Networks,
    network: &Network,
    who: Allocation,
) -> anyhow::Result<Ipv4Addr> {
    // TODO(lesson-05): hand out the lowest address of the network's subnet that is neither the network address, the broadcast address, the gateway, nor already someone's, and record who has it; parallel callers must never get the same one
    // The whole read-choose-write happens under the networks' lock (it is
    // held until dropped), or two runs read the same file and choose alike.
    // The subnet and the gateway are strings in the network's record.
    // No address left: an error naming the network and its subnet, and
    // the file untouched. Shell: flock ROOT/networks.lock sh -c 'read
    // the file; pick; write it whole'.
    // BEGIN SOLUTION
    let _lock = networks.lock()?;
    let mut taken = networks.allocations(&network.name)?;
    let subnet = Subnet::parse(&network.subnet)?;
    let gateway: Ipv4Addr = network
        .gateway
        .parse()
        .with_context(|| format!("network {}: a bad gateway", network.name))?;
    let Some(address) = (1..subnet.size() - 1)
        .map(|n| subnet.nth(n))
        .find(|a| *a != gateway && !taken.contains_key(a))
    else {
        bail!("network {}: no free address left in {subnet}", network.name);
    };
    taken.insert(address, who);
    networks.save_allocations(&network.name, &taken)?;
    Ok(address)
    // END SOLUTION
}
// ANCHOR_END: allocate

// ANCHOR: release
/// Give back every address `container` has, on every network; the others
/// keep theirs. Releasing a container that has none is not an error.
pub fn release(networks: &Networks, container: &str) -> anyhow::Result<()> {
    // TODO(lesson-05): afterwards no network's allocations name this container, and every other allocation is as it was
    // Under the same lock as allocate: a release that rewrites a file
    // between another run's read and write loses that run's address (or
    // brings back this one).
    // BEGIN SOLUTION
    let _lock = networks.lock()?;
    for network in networks.all()? {
        let mut taken = networks.allocations(&network.name)?;
        let before = taken.len();
        taken.retain(|_, a| a.id != container);
        if taken.len() != before {
            networks.save_allocations(&network.name, &taken)?;
        }
    }
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: release
