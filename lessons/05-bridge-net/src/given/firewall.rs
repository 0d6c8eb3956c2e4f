//! Published ports, egress NAT and isolation between networks: applying
//! the nftables rules of [`crate::rules`], finding and removing them.
//!
//! All of minibox's rules live in one table of their own, `ip minibox`, so
//! they never touch anyone else's and `nft delete table ip minibox` undoes
//! them all. Each rule ends in a comment holding its key, which says whose
//! it is and what for (`net:NAME:BRIDGE:masq`, `ctr:ID:dnat:PORT:CHAIN`,
//! ...): a rule is added only if no rule has its key, and a container's or
//! a network's rules are those whose keys start with its prefix.
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

use crate::rules::{self, Rule};
use anyhow::{bail, Context};
use std::net::Ipv4Addr;
use std::process::Command;

const TABLE: &str = "
table ip minibox {
    set bridges { type ifname; }
    chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
    chain output { type nat hook output priority -100; policy accept; }
    chain postrouting { type nat hook postrouting priority srcnat; policy accept; }
    chain forward { type filter hook forward priority filter; policy accept; }
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

/// The table, made if missing (declaring it again is a no-op).
fn ensure_table() -> anyhow::Result<()> {
    nft(TABLE)
}

// ANCHOR: apply
/// Add the `rules` that the table lacks, in one `nft` run: a rule is there
/// when a rule of its chain carries its key. Called under the networks'
/// lock (check, then add: two runs never both add one).
pub fn apply(rules: &[Rule], extra: &str) -> anyhow::Result<()> {
    let present = keys()?;
    let mut script = String::new();
    for rule in rules {
        let Some(key) = rule.key() else {
            bail!(
                "the rule for chain {} has no closing comment \"KEY\": {}",
                rule.chain,
                rule.text
            );
        };
        if !present
            .iter()
            .any(|(chain, k)| *chain == rule.chain && k == key)
        {
            script.push_str(&format!(
                "add rule ip minibox {} {}\n",
                rule.chain, rule.text
            ));
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&format!("{extra}{script}"))
}
// ANCHOR_END: apply

// ANCHOR: add_network
/// A network's rules: its bridge in the isolation set, its egress NAT and
/// its isolation.
pub fn add_network(name: &str, subnet: &str, bridge: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // warned at the start of the run
    }
    ensure_table()?;
    // net.ipv4.ip_forward: route between interfaces, in this namespace.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .context("cannot turn on IPv4 forwarding")?;
    apply(
        &[
            rules::masquerade(name, subnet, bridge),
            rules::isolation(name, bridge),
        ],
        &format!("add element ip minibox bridges {{ \"{bridge}\" }}\n"),
    )
}
// ANCHOR_END: add_network

// ANCHOR: add_ports
/// A container's published ports: DNAT from the host's port to its own.
pub fn add_ports(id: &str, address: Ipv4Addr, ports: &[(u16, u16)]) -> anyhow::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    ports_need_nft()?;
    ensure_table()?;
    let taken = published()?;
    let mut all = Vec::new();
    for (host, inside) in ports {
        if taken.contains(host) {
            bail!("port {host} is already published by another container");
        }
        all.extend(rules::published_port(id, address, *host, *inside));
    }
    apply(&all, "")
}
// ANCHOR_END: add_ports

/// Refuse ports another container already publishes (before anything is
/// made for this one).
pub fn check_free(ports: &[(u16, u16)]) -> anyhow::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    ports_need_nft()?;
    let taken = published()?;
    for (host, _) in ports {
        if taken.contains(host) {
            bail!("port {host} is already published by another container");
        }
    }
    Ok(())
}

/// Host ports already published: the HOSTPORT of every key
/// `ctr:ID:dnat:HOSTPORT:prerouting`.
fn published() -> anyhow::Result<Vec<u16>> {
    Ok(keys()?
        .into_iter()
        .filter(|(chain, _)| chain == "prerouting")
        .filter_map(|(_, key)| {
            let rest = key.strip_prefix("ctr:")?;
            let mut parts = rest.split(':');
            let (_id, dnat, port) = (parts.next()?, parts.next()?, parts.next()?);
            (dnat == "dnat").then(|| port.parse().ok())?
        })
        .collect())
}

/// (chain, key) of every rule of ours that has one.
fn keys() -> anyhow::Result<Vec<(String, String)>> {
    Ok(rules(&list()?)
        .into_iter()
        .filter_map(|r| {
            Some((
                r["chain"].as_str()?.to_string(),
                r["comment"].as_str()?.to_string(),
            ))
        })
        .collect())
}

fn list() -> anyhow::Result<String> {
    if !found() {
        return Ok(String::new()); // no nft, no rules of ours to find
    }
    let out = Command::new("nft")
        .args(["-j", "list", "table", "ip", "minibox"])
        .output()
        .context("cannot run nft")?;
    Ok(if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::new() // no table yet
    })
}

fn rules(text: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    value["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("rule").cloned())
        .collect()
}

/// (chain, handle) of the rules whose key starts with `prefix`.
fn rules_with(prefix: &str) -> anyhow::Result<Vec<(String, u64)>> {
    Ok(rules(&list()?)
        .into_iter()
        .filter(|r| r["comment"].as_str().is_some_and(|c| c.starts_with(prefix)))
        .filter_map(|r| Some((r["chain"].as_str()?.to_string(), r["handle"].as_u64()?)))
        .collect())
}

/// Remove the rules whose key starts with `prefix` (a container's:
/// [`rules::container_key`]).
pub fn remove(prefix: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // no nft, no rules of ours
    }
    delete(rules_with(prefix)?)
}

/// Delete rules by (chain, handle).
fn delete(found: Vec<(String, u64)>) -> anyhow::Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    let script: String = found
        .iter()
        .map(|(chain, handle)| format!("delete rule ip minibox {chain} handle {handle}\n"))
        .collect();
    nft(&script)
}

/// Forget a network's bridge in the isolation set.
pub fn remove_network(name: &str, bridge: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // nothing of ours can be there
    }
    delete(rules_with(&rules::network_key(name, bridge))?)?;
    let _ = nft(&format!(
        "delete element ip minibox bridges {{ \"{bridge}\" }}\n"
    ));
    Ok(())
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
