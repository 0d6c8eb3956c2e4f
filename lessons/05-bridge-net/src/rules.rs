//! The nftables rules of networks and containers, as text.
//!
//! All of minibox's rules live in one table of their own, `ip minibox`
//! (declared by [`crate::firewall`], which also applies and removes the
//! rules these functions describe):
//!
//! ```text
//! table ip minibox {
//!     set bridges { type ifname; }      # every network's bridge
//!     chain prerouting  { type nat hook prerouting priority dstnat; }
//!     chain output      { type nat hook output priority -100; }
//!     chain postrouting { type nat hook postrouting priority srcnat; }
//!     chain forward     { type filter hook forward priority filter; }
//! }
//! ```
//!
//! A [`Rule`] is one rule for one chain, written as `nft add rule ip
//! minibox CHAIN TEXT` takes it, and its text ends in `comment "KEY"`: the
//! key names whose rule it is and what for, uniquely, which is how the
//! rules are found again (already there? whose to remove?). Keys:
//!
//! | rule | key |
//! |---|---|
//! | a network's egress NAT | `net:NAME:BRIDGE:masq` |
//! | a network's isolation | `net:NAME:BRIDGE:isolate` |
//! | a published port, in chain C | `ctr:ID:dnat:HOSTPORT:C` |
//!
//! (Two stores on one host may both have a network called `bridge`, each
//! on a bridge of its own: the bridge in the key keeps them apart.)

use std::net::Ipv4Addr;

/// One rule: the chain of table `ip minibox` it goes in, and its text,
/// which ends in `comment "KEY"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub text: String,
}

impl Rule {
    /// The key in the rule's closing comment, if it has one.
    pub fn key(&self) -> Option<&str> {
        let (_, comment) = self.text.rsplit_once("comment \"")?;
        comment.strip_suffix('"')
    }
}

/// The key of a network's rules start with this.
pub fn network_key(name: &str, bridge: &str) -> String {
    format!("net:{name}:{bridge}:")
}

/// The keys of a container's rules start with this.
pub fn container_key(id: &str) -> String {
    format!("ctr:{id}:")
}

// ANCHOR: masquerade
/// Egress: packets from the network's subnet that leave the host by any
/// other interface than its bridge leave with the host's address.
pub fn masquerade(name: &str, subnet: &str, bridge: &str) -> Rule {
    // TODO(lesson-05): the postrouting rule that source-NATs (masquerades) packets from the subnet leaving by another interface than the bridge; its key is net:NAME:BRIDGE:masq
    // Masquerade: the source becomes the address of the interface the
    // packet leaves by, and conntrack turns the answers back. Traffic that
    // stays on the bridge must keep its source (the container it talks to
    // would answer the host). Interface names are quoted strings in nft.
    // Shell, as docker writes it with iptables (the nft form is yours; the
    // chapter's "nftables" section has its grammar):
    // `iptables -t nat -A POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE`
    todo!(
        "lesson-05: the postrouting rule that source-NATs (masquerades) packets from the subnet leaving by another interface than the bridge; its key is net:NAME:BRIDGE:masq"
    );
}
// ANCHOR_END: masquerade

// ANCHOR: isolation
/// Isolation: nothing that comes in by this network's bridge is routed out
/// by another network's bridge.
pub fn isolation(name: &str, bridge: &str) -> Rule {
    // TODO(lesson-05): the forward rule that drops packets coming in by this bridge and going out by another network's bridge (any member of the set @bridges but this one); its key is net:NAME:BRIDGE:isolate
    // The forward hook sees packets the host routes from one interface to
    // another; a set holds every network's bridge, so one rule per network
    // covers the networks made later too. Shell, as docker writes it with
    // iptables, in two stages: `iptables -A DOCKER-ISOLATION-STAGE-1 -i
    // BRIDGE ! -o BRIDGE -j DOCKER-ISOLATION-STAGE-2`, then in stage 2 one
    // `-o OTHER_BRIDGE -j DROP` per network (a set does that in one rule).
    todo!(
        "lesson-05: the forward rule that drops packets coming in by this bridge and going out by another network's bridge (any member of the set @bridges but this one); its key is net:NAME:BRIDGE:isolate"
    );
}
// ANCHOR_END: isolation

// ANCHOR: published_port
/// `-p HOST:INSIDE` for the container `id` at `address`: TCP connections
/// to port HOST of one of the host's own addresses go to INSIDE of the
/// container, from elsewhere and from the host itself.
pub fn published_port(id: &str, address: Ipv4Addr, host: u16, inside: u16) -> Vec<Rule> {
    // TODO(lesson-05): the destination-NAT rules that send TCP to port HOST of any of the host's own addresses to ADDRESS:INSIDE: one in prerouting (packets from elsewhere) and one in output (the host's own connections); keys ctr:ID:dnat:HOST:CHAIN
    // Only the host's own addresses: without that match a container's
    // connection to port HOST of any other machine would land here too
    // (the fib expression asks the routing table what kind of address the
    // destination is; docker's iptables says -m addrtype --dst-type LOCAL).
    // Shell, as docker writes it with iptables: `iptables -t nat -A
    // PREROUTING -m addrtype --dst-type LOCAL -p tcp --dport 8080 -j DNAT
    // --to-destination 10.200.0.2:80`, and the same in OUTPUT.
    todo!(
        "lesson-05: the destination-NAT rules that send TCP to port HOST of any of the host's own addresses to ADDRESS:INSIDE: one in prerouting (packets from elsewhere) and one in output (the host's own connections); keys ctr:ID:dnat:HOST:CHAIN"
    );
}
// ANCHOR_END: published_port

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_says_its_key() {
        let rule = masquerade("n1", "10.201.0.0/24", "mbx-0123456789a");
        assert_eq!(rule.key(), Some("net:n1:mbx-0123456789a:masq"));
        assert!(rule
            .key()
            .unwrap()
            .starts_with(&network_key("n1", "mbx-0123456789a")));
        for rule in published_port("abc", "10.200.0.2".parse().unwrap(), 8080, 80) {
            assert!(rule.key().unwrap().starts_with(&container_key("abc")));
        }
    }
}
