//! The names file: a container's `/etc/hosts`.
//!
//! On a user-defined network containers find each other by name, and
//! minibox does it as docker did before its embedded DNS server: each
//! container's `/etc/hosts` (a file of the container's state dir, bound
//! over the image's) lists the others, and is rewritten when one joins or
//! leaves. The C library reads it at every lookup (`getent hosts NAME`),
//! before any DNS. One line per address: the address, a tab, then its
//! names separated by spaces.

use crate::networks::Allocation;
use std::net::Ipv4Addr;

// ANCHOR: hosts_file
/// The `/etc/hosts` of the container `me` at `address`: localhost, itself,
/// and each of `others` (every other container of a user-defined network;
/// none on the default network, where names do not resolve).
pub fn hosts_file(me: &Allocation, address: Ipv4Addr, others: &[(Ipv4Addr, Allocation)]) -> String {
    // TODO(lesson-05): the text of the file: first the line for localhost (127.0.0.1), then one line for this container, then one for each of the others in their order; a container's line is its address, a tab, its name, a space and its short id (the first 12 characters of its id); every line ends in a newline
    // What a container resolves is exactly what this file says: a name
    // missing here is "unknown host" inside. Shell: printf
    // '127.0.0.1\tlocalhost\n10.201.0.2\tweb 3f2a9c1d0e4b\n' > hosts
    // BEGIN SOLUTION
    let mut text = String::from("127.0.0.1\tlocalhost\n");
    let line = |address: &Ipv4Addr, who: &Allocation| {
        format!(
            "{address}\t{} {}\n",
            who.name,
            step04::state::short(&who.id)
        )
    };
    text.push_str(&line(&address, me));
    for (other_address, other) in others {
        text.push_str(&line(other_address, other));
    }
    text
    // END SOLUTION
}
// ANCHOR_END: hosts_file
