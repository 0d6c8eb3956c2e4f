//! Published ports, egress NAT and isolation between networks: nftables.
//!
//! All of minibox's rules live in one table of their own, `ip minibox`, so
//! they never touch anyone else's and `nft delete table ip minibox` undoes
//! them all. Each rule carries a comment saying whose it is
//! (`ctr:<id>` or `net:<name>`), which is how they are found and removed.
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

// ANCHOR: add_network
/// A network's rules: its bridge in the isolation set, its egress NAT.
pub fn add_network(name: &str, subnet: &str, bridge: &str) -> anyhow::Result<()> {
    if !found() {
        return Ok(()); // warned at the start of the run
    }
    ensure_table()?;
    // net.ipv4.ip_forward: route between interfaces, in this namespace.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .context("cannot turn on IPv4 forwarding")?;
    if network_rules(name, bridge)?.is_empty() {
        nft(&format!(
            "add element ip minibox bridges {{ \"{bridge}\" }}
add rule ip minibox postrouting ip saddr {subnet} oifname != \"{bridge}\" masquerade comment \"net:{name}\"
add rule ip minibox forward iifname \"{bridge}\" oifname != \"{bridge}\" oifname @bridges drop comment \"net:{name}\"
"
        ))?;
    }
    Ok(())
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
    let mut script = String::new();
    for (host, inside) in ports {
        if taken.contains(host) {
            bail!("port {host} is already published by another container");
        }
        for chain in ["prerouting", "output"] {
            // Only packets for one of the host's own addresses: without it,
            // a container's connection to port H of *any* outside host
            // would land here (docker: -m addrtype --dst-type LOCAL).
            let local = "fib daddr type local ";
            script.push_str(&format!(
                "add rule ip minibox {chain} {local}tcp dport {host} dnat to {address}:{inside} comment \"ctr:{id}\"\n"
            ));
        }
    }
    nft(&script)
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

/// Host ports already published.
fn published() -> anyhow::Result<Vec<u16>> {
    let text = list()?;
    let mut ports = Vec::new();
    for rule in rules(&text) {
        let expr = rule["expr"].to_string();
        if rule["chain"] == "prerouting" && expr.contains("\"dnat\"") {
            if let Some(port) = rule["expr"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|e| e["match"]["right"].as_u64())
            {
                ports.push(port as u16);
            }
        }
    }
    Ok(ports)
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

/// (chain, handle) of the rules with this comment.
fn rules_with(comment: &str) -> anyhow::Result<Vec<(String, u64)>> {
    Ok(rules(&list()?)
        .into_iter()
        .filter(|r| r["comment"] == comment)
        .filter_map(|r| Some((r["chain"].as_str()?.to_string(), r["handle"].as_u64()?)))
        .collect())
}

/// The rules of network `name` on `bridge`: two stores may both have a
/// network of that name (`bridge` itself, the default), each on a bridge
/// of its own, and its rules name its bridge.
fn network_rules(name: &str, bridge: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let comment = format!("net:{name}");
    let quoted = format!("\"{bridge}\"");
    Ok(rules(&list()?)
        .into_iter()
        .filter(|r| r["comment"] == comment.as_str() && r["expr"].to_string().contains(&quoted))
        .filter_map(|r| Some((r["chain"].as_str()?.to_string(), r["handle"].as_u64()?)))
        .collect())
}

/// Remove the rules of a container (`ctr:ID`).
pub fn remove(owner: &str) -> anyhow::Result<()> {
    delete(rules_with(owner)?)
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
    delete(network_rules(name, bridge)?)?;
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
