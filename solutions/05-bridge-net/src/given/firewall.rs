//! Published ports, egress NAT and isolation between networks: applying
//! the nftables rules of [`crate::rules`], finding and removing them.
//!
//! All of minibox's rules live in one table of their own, `ip minibox`, so
//! they never touch anyone else's and `nft delete table ip minibox` undoes
//! them all. Each rule ends in a comment holding its key, which says whose
//! it is and what for (`net:NAME:BRIDGE:masq`, `ctr:ID:dnat:PORT:CHAIN`,
//! ...): a rule is added only if no rule has its key, and a container's or
//! a network's rules are those whose keys start with its prefix. The rules
//! are read, and deleted, over netfilter netlink ([`crate::nftables`]):
//! `nft` runs only to add what is missing, in one batch.
//!
//! - **egress**: `postrouting ip saddr SUBNET oifname != BRIDGE masquerade`
//!   — a container's packets leave with the host's address (NAT), and the
//!   answers find their way back through conntrack; forwarding must be on
//!   (`net.ipv4.ip_forward=1`, per network namespace).
//! - **ports**: `-p 8080:80` is a DNAT, `tcp dport 8080 dnat to IP:80`, in
//!   `prerouting` (from elsewhere) and in `output` (from the host itself,
//!   to one of its own addresses).
//! - **isolation**: `forward iifname BRIDGE oifname @bridges drop` — one
//!   network's packets may not be routed into another's bridge.
//! - **sources**: `sources iifname BRIDGE ip saddr != SUBNET drop` — a
//!   packet that comes in by a network's bridge has an address of that
//!   network as its source, or it is dropped before anything else sees it
//!   (chain `sources`, at the prerouting hook's raw priority): a container
//!   can't pass for another network's container, or for an address of the
//!   internet whose answers would come back to it. The bridge's strict
//!   `rp_filter` ([`crate::networks::harden_bridge`]) does the same when
//!   there is no nft, on hosts whose `all.rp_filter` isn't loose.
//!
//! **Without nft** (a fresh VM, a minimal image: no package `nftables`),
//! containers still run on their bridges, and reach each other there: the
//! rules are skipped, not the container. When `nft` isn't on `PATH`, each
//! run on a bridge network says so in one warning line ([`warn_if_missing`]),
//! forwarding is left as it is (routing between bridges without the
//! isolation rule would join the networks), `-p` is refused before anything
//! is made (a port nobody forwards would only look published), and removing
//! rules does nothing (there can be none). docker's `--iptables=false` is
//! the same trade: containers get their addresses, but no NAT takes them
//! beyond the host, and nothing keeps networks apart but the host's own
//! firewall.

use crate::nftables::{self, Nfnetlink, Table};
use crate::rules::{self, Rule};
use anyhow::{bail, Context};
use std::net::Ipv4Addr;
use std::process::Command;

const TABLE_NAME: &str = "minibox";
const CHAINS: [&str; 5] = ["prerouting", "output", "postrouting", "forward", "sources"];
/// The isolation set: every network's bridge.
const SET: &str = "bridges";

const TABLE: &str = "
table ip minibox {
    set bridges { type ifname; }
    chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
    chain output { type nat hook output priority -100; policy accept; }
    chain postrouting { type nat hook postrouting priority srcnat; policy accept; }
    chain forward { type filter hook forward priority filter; policy accept; }
    chain sources { type filter hook prerouting priority raw; policy accept; }
}
";

/// Whether `nft` is on `PATH`, where `Command` would look for it.
fn found() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join("nft"))
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// Without nft, say what a container on `network` goes without, once per
/// run and before it starts (in the caller's terminal: a `run -d`'s
/// monitor writes to the container's log).
pub fn warn_if_missing(network: &str) {
    if !found() {
        step01::cli::report(&format!(
            "warning: nft not found on PATH: containers on network {network} get no egress NAT or isolation (install nftables)"
        ));
    }
}

/// `-p` without nft: refused, not published in name only.
fn ports_need_nft() -> anyhow::Result<()> {
    if !found() {
        bail!("publishing ports (-p) needs nftables: nft not found on PATH (install nftables, or run without -p)");
    }
    Ok(())
}

/// Run `nft` with a script on stdin.
fn nft(script: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run nft (install nftables: .ci/install does it)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        bail!("nft: {}", why.lines().next().unwrap_or("failed"));
    }
    Ok(())
}

/// Our table as the kernel holds it now (`nft list table ip minibox`,
/// asked over netlink: no process, no wait), `None` if there is none.
fn read() -> anyhow::Result<Option<Table>> {
    let mut kernel = match Nfnetlink::open() {
        Ok(kernel) => kernel,
        // No nfnetlink in this kernel: no rules of ours either.
        Err(e) if e.raw_os_error() == Some(nix::libc::EPROTONOSUPPORT) => return Ok(None),
        Err(e) => return Err(e).context("cannot open a netfilter netlink socket"),
    };
    kernel
        .table(TABLE_NAME)
        .context("cannot read nftables' table ip minibox")
}

/// Is `rule` in the kernel's table: a rule of its chain with its key?
fn holds(table: &Table, rule: &Rule) -> bool {
    table
        .rules
        .iter()
        .any(|r| r.chain == rule.chain && r.comment.as_deref() == rule.key())
}

/// Make sure the rules `rules` are in the kernel, each once, and
/// `bridge` (if any) in the isolation set: the table is read over netlink,
/// and one `nft -f -` adds only what is missing (the table, its chains
/// and set with it, if they are missing too). Nothing missing: no `nft`
/// process at all. Returns how many rules were added.
pub fn apply(
    current: Option<&Table>,
    bridge: Option<&str>,
    rules: &[Rule],
) -> anyhow::Result<usize> {
    let empty = Table::default();
    let table = current.unwrap_or(&empty);
    let mut script = String::new();
    let complete = current.is_some()
        && CHAINS.iter().all(|c| table.chains.iter().any(|t| t == c))
        && table.sets.iter().any(|s| s == SET);
    if !complete {
        // Declaring what exists already changes nothing: this adds only
        // the missing parts.
        script.push_str(TABLE);
    }
    if let Some(bridge) = bridge {
        let member = complete
            && Nfnetlink::open()
                .and_then(|mut kernel| kernel.names_in(TABLE_NAME, SET))
                .context("cannot read the set ip minibox bridges")?
                .iter()
                .any(|name| name == bridge);
        if !member {
            script.push_str(&format!(
                "add element ip minibox {SET} {{ \"{bridge}\" }}\n"
            ));
        }
    }
    let mut added = 0;
    for rule in rules {
        if rule.key().is_none() {
            bail!(
                "the rule for chain {} has no closing comment \"KEY\": {}",
                rule.chain,
                rule.text
            );
        }
        if !holds(table, rule) {
            script.push_str(&format!(
                "add rule ip minibox {} {}\n",
                rule.chain, rule.text
            ));
            added += 1;
        }
    }
    if !script.is_empty() {
        nft(&script)?;
    }
    Ok(added)
}

// ANCHOR: add_network
/// A network's rules: its bridge in the isolation set, its egress NAT.
pub fn add_network(name: &str, subnet: &str, bridge: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // warned at the start of the run
    }
    // net.ipv4.ip_forward: route between interfaces, in this namespace.
    let forward = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(forward).map_or(true, |now| now.trim() != "1") {
        std::fs::write(forward, "1").context("cannot turn on IPv4 forwarding")?;
    }
    apply(
        read()?.as_ref(),
        Some(bridge),
        &[
            rules::masquerade(name, subnet, bridge),
            rules::isolation(name, bridge),
            sources(name, subnet, bridge),
        ],
    )?;
    Ok(())
}
// ANCHOR_END: add_network

/// Anti-spoofing: what comes in by the bridge has a source of its subnet.
/// Shell: nft add rule ip minibox sources iifname "BRIDGE" ip saddr !=
/// 10.201.0.0/24 drop comment "net:NAME:BRIDGE:sources"
fn sources(name: &str, subnet: &str, bridge: &str) -> Rule {
    Rule {
        chain: "sources".to_string(),
        text: format!(
            "iifname \"{bridge}\" ip saddr != {subnet} drop comment \"{}sources\"",
            rules::network_key(name, bridge)
        ),
    }
}

// ANCHOR: add_ports
/// A container's published ports: DNAT from the host's port to its own.
pub fn add_ports(id: &str, address: Ipv4Addr, ports: &[(u16, u16)]) -> anyhow::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    ports_need_nft()?;
    let current = read()?;
    let taken = published(current.as_ref(), Some(&rules::container_key(id)));
    for (host, _) in ports {
        if taken.contains(host) {
            bail!("port {host} is already published by another container");
        }
    }
    let mut all = Vec::new();
    for (host, inside) in ports {
        all.extend(rules::published_port(id, address, *host, *inside));
    }
    apply(current.as_ref(), None, &all)?;
    Ok(())
}
// ANCHOR_END: add_ports

/// Refuse ports another container already publishes (before anything is
/// made for this one).
pub fn check_free(ports: &[(u16, u16)]) -> anyhow::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    ports_need_nft()?;
    let taken = published(read()?.as_ref(), None);
    for (host, _) in ports {
        if taken.contains(host) {
            bail!("port {host} is already published by another container");
        }
    }
    Ok(())
}

/// Host ports already published: the destination ports of the DNAT rules
/// in `prerouting` (read from their expressions: the kernel's word, not
/// the key's), but those whose key starts with `mine`.
fn published(table: Option<&Table>, mine: Option<&str>) -> Vec<u16> {
    let Some(table) = table else {
        return Vec::new();
    };
    table
        .rules
        .iter()
        .filter(|r| r.chain == "prerouting" && r.has("nat"))
        .filter(|r| match (mine, &r.comment) {
            (Some(prefix), Some(comment)) => !comment.starts_with(prefix),
            _ => true,
        })
        .filter_map(|r| r.dport())
        .collect()
}

/// Delete, in one batch over netlink, the rules `pick` chooses (and
/// `bridge` from the isolation set); read again and retry if another
/// process deleted some meanwhile (the batch is then refused whole).
fn delete_where(
    pick: impl Fn(&nftables::Rule) -> bool,
    bridge: Option<&str>,
) -> anyhow::Result<()> {
    for attempt in 0.. {
        let Some(table) = read()? else {
            return Ok(()); // no table, no rules of ours
        };
        let rules: Vec<(String, u64)> = table
            .rules
            .iter()
            .filter(|r| pick(r))
            .map(|r| (r.chain.clone(), r.handle))
            .collect();
        let mut kernel = Nfnetlink::open().context("cannot open a netfilter netlink socket")?;
        let names: Vec<(String, String)> = match bridge {
            Some(bridge) if table.sets.iter().any(|s| s == SET) => kernel
                .names_in(TABLE_NAME, SET)?
                .into_iter()
                .filter(|name| name == bridge)
                .map(|name| (SET.to_string(), name))
                .collect(),
            _ => Vec::new(),
        };
        match kernel.delete(TABLE_NAME, &rules, &names) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) && attempt < 3 => continue,
            Err(e) => return Err(e).context("cannot delete nftables rules"),
        }
    }
    Ok(())
}

/// Remove the rules whose keys start with `prefix` (a container's:
/// [`rules::container_key`]).
pub fn remove(prefix: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // no nft, no rules of ours
    }
    delete_where(
        |rule| {
            rule.comment
                .as_deref()
                .is_some_and(|c| c.starts_with(prefix))
        },
        None,
    )
}

/// A network's rules ([`rules::network_key`]: its name and bridge), and
/// its bridge in the isolation set.
pub fn remove_network(name: &str, bridge: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // nothing of ours can be there
    }
    let prefix = rules::network_key(name, bridge);
    delete_where(
        |rule| {
            rule.comment
                .as_deref()
                .is_some_and(|c| c.starts_with(&prefix))
        },
        Some(bridge),
    )
}

/// `-p HOST:CONTAINER[/tcp]`.
pub fn parse_port(text: &str) -> anyhow::Result<(u16, u16)> {
    let spec = text.strip_suffix("/tcp").unwrap_or(text);
    if spec.contains('/') {
        bail!("-p {text}: only tcp ports are supported");
    }
    let Some((host, inside)) = spec.split_once(':') else {
        bail!("-p {text}: write HOSTPORT:CONTAINERPORT, e.g. 8080:80");
    };
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("-p {text}: {p:?} is not a port (1-65535)"))
    };
    Ok((port(host)?, port(inside)?))
}
