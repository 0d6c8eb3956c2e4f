//! The leak guard: what the host looks like before a run of the checks, and
//! whether it looks the same after.
//!
//! The checks promise never to leave anything on the host: no mount, link,
//! address, route or named network namespace, no nftables or iptables rule,
//! no running container, no process in a lab's network namespace (which
//! keeps the lab alive), no process of a tool they ran (podman's conmon,
//! a registry: whatever names one of their temp dirs on its command line),
//! no cgroup, no temp dir of theirs. `verify` (and CI, around
//! everything it runs) holds them to it: a difference fails, with the list.
//! Things that disappeared are reported too: a check that removed the
//! host's own route is as bad as one that added one.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The host, as far as the checks could change it. Each set holds one
/// line per thing, in a form that doesn't change unless the thing does.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub parts: BTreeMap<String, BTreeSet<String>>,
}

/// Temp entries that are ours (the grader's labs, the runtime's, the tools').
const OUR_TEMP: &[&str] = &["grader-", "minibox-", "xtask-", "mbx"];

impl Host {
    pub fn snapshot() -> Host {
        let mut parts = BTreeMap::new();
        parts.insert("mount".to_string(), mounts());
        parts.insert(
            "link".to_string(),
            lines("ip", &["-o", "link", "show"], link_name),
        );
        parts.insert(
            "address".to_string(),
            lines("ip", &["-o", "addr", "show"], address),
        );
        parts.insert(
            "route".to_string(),
            lines("ip", &["route", "show", "table", "all"], |l| {
                Some(l.trim().to_string())
            }),
        );
        parts.insert("netns".to_string(), named_netns());
        parts.insert(
            "nftables".to_string(),
            lines("nft", &["list", "ruleset"], |l| {
                let l = l.trim();
                (!l.is_empty() && l != "}").then(|| l.to_string())
            }),
        );
        parts.insert(
            "iptables".to_string(),
            lines("iptables-save", &[], iptables_rule),
        );
        parts.insert("sysctl".to_string(), sysctls());
        parts.insert("container process".to_string(), container_processes());
        parts.insert("lab process".to_string(), lab_processes());
        parts.insert("tool process".to_string(), tool_processes());
        parts.insert("temp dir".to_string(), temp_entries());
        parts.insert("cgroup".to_string(), container_cgroups());
        Host { parts }
    }

    /// What changed from `before` to `self`, one line each.
    pub fn changes_since(&self, before: &Host) -> Vec<String> {
        let empty = BTreeSet::new();
        let mut out = Vec::new();
        let kinds: BTreeSet<&String> = self.parts.keys().chain(before.parts.keys()).collect();
        for kind in kinds {
            let (was, is) = (
                before.parts.get(kind).unwrap_or(&empty),
                self.parts.get(kind).unwrap_or(&empty),
            );
            out.extend(
                is.difference(was)
                    .map(|x| format!("{kind} left behind: {x}")),
            );
            out.extend(was.difference(is).map(|x| format!("{kind} gone: {x}")));
        }
        out
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(path: &Path) -> anyhow::Result<Host> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

/// `cargo xtask leaks check FILE`: fail with the list of differences.
pub fn check(before: &Host, what: &str) -> anyhow::Result<()> {
    let changes = Host::snapshot().changes_since(before);
    if changes.is_empty() {
        println!("leaks: the host is as it was before {what}");
        Ok(())
    } else {
        anyhow::bail!(
            "{what} changed the host ({} difference(s)):\n  {}",
            changes.len(),
            changes.join("\n  ")
        )
    }
}

/// The output of `program args`, one entry per line `keep` keeps; nothing
/// if the program is not there (a host without iptables has no rules).
fn lines(program: &str, args: &[&str], keep: impl Fn(&str) -> Option<String>) -> BTreeSet<String> {
    let Some(path) = grader::which(program) else {
        return BTreeSet::new();
    };
    Command::new(path)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(&keep)
                .collect()
        })
        .unwrap_or_default()
}

/// Mount point, type and source of every mount this process sees (the
/// host's mount namespace when run from a shell on the host).
fn mounts() -> BTreeSet<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(format!(
                "{} ({} from {})",
                fields.get(4)?,
                fields.get(dash + 1)?,
                fields.get(dash + 2)?
            ))
        })
        .collect()
}

/// `2: mbx-0a1b@if3: <...>` → `mbx-0a1b`.
fn link_name(line: &str) -> Option<String> {
    let name = line.split(": ").nth(1)?;
    Some(name.split('@').next()?.to_string())
}

/// `4: eth0    inet 192.0.2.2/24 brd ...` → `eth0 inet 192.0.2.2/24`.
fn address(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().skip(1);
    let (dev, family, addr) = (words.next()?, words.next()?, words.next()?);
    Some(format!("{dev} {family} {addr}"))
}

/// iptables-save's rules and chains, without its comments and counters.
fn iptables_rule(line: &str) -> Option<String> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    Some(match line.find(" [") {
        Some(at) if line.starts_with(':') => line[..at].to_string(),
        _ => line.to_string(),
    })
}

fn named_netns() -> BTreeSet<String> {
    ["/run/netns", "/var/run/netns"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn sysctls() -> BTreeSet<String> {
    ["net/ipv4/ip_forward"]
        .iter()
        .filter_map(|name| {
            let value = std::fs::read_to_string(Path::new("/proc/sys").join(name)).ok()?;
            Some(format!("{} = {}", name.replace('/', "."), value.trim()))
        })
        .collect()
}

/// Processes in a PID namespace other than ours: containers. Keyed by pid
/// and start time, so a reused pid is another process.
fn container_processes() -> BTreeSet<String> {
    let ours = std::fs::read_link("/proc/self/ns/pid").ok();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter_map(|pid| {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
            if Some(&ns) == ours.as_ref() {
                return None;
            }
            let stat = grader::procfs::stat(pid)?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Some(format!(
                "pid {pid} ({}), started at tick {}, in {}",
                comm.trim(),
                stat.start_time,
                ns.display()
            ))
        })
        .collect()
}

/// Processes of our PID namespace in a network namespace other than ours:
/// what keeps a lab alive (its holder, an etcd member of a cluster lab).
/// A lab namespace has no name to list (`ip netns` shows none): it lasts
/// as long as a process in it, so a process is what leaks. Keyed by pid
/// and start time, as above.
fn lab_processes() -> BTreeSet<String> {
    let ours = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).ok();
    let (pid_ns, net_ns) = (ours("pid"), ours("net"));
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter_map(|pid| {
            let ns = |kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
            let net = ns("net")?;
            if ns("pid") != pid_ns || Some(&net) == net_ns.as_ref() {
                return None;
            }
            let stat = grader::procfs::stat(pid)?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Some(format!(
                "pid {pid} ({}), started at tick {}, in {}",
                comm.trim(),
                stat.start_time,
                net.display()
            ))
        })
        .collect()
}

/// Processes whose command line names one of our temp entries: what a
/// tool the checks ran may leave in the machine's own namespaces (podman's
/// conmon names its bundle under podman's `--runroot`; a registry, its
/// config). Keyed by pid and start time, as above.
fn tool_processes() -> BTreeSet<String> {
    let tmp = std::env::temp_dir();
    let ours: Vec<String> = OUR_TEMP
        .iter()
        .map(|prefix| tmp.join(prefix).display().to_string())
        .collect();
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if !ours.iter().any(|p| cmdline.contains(p.as_str())) {
                return None;
            }
            let stat = grader::procfs::stat(pid)?;
            let shown: String = cmdline.trim().chars().take(160).collect();
            Some(format!(
                "pid {pid}, started at tick {}: {shown}",
                stat.start_time
            ))
        })
        .collect()
}

/// Containers' cgroups left behind (see [`grader::cgroups`]), and the
/// cgroups the grader's tools make (podman's `--cgroup-parent`, named as
/// its temp dir: `grader-podman-PID-N`) in any hierarchy.
fn container_cgroups() -> BTreeSet<String> {
    let root = Path::new("/sys/fs/cgroup");
    let tools = std::iter::once(root.to_path_buf())
        .chain(
            std::fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path()),
        )
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("grader-"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path());
    grader::cgroups::container_groups()
        .into_iter()
        .chain(tools)
        .map(|group| group.display().to_string())
        .collect()
}

fn temp_entries() -> BTreeSet<String> {
    let dir = std::env::temp_dir();
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| OUR_TEMP.iter().any(|p| name.starts_with(p)))
        .map(|name| dir.join(name).display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(parts: &[(&str, &[&str])]) -> Host {
        Host {
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn what_appeared_and_what_vanished_are_both_leaks() {
        let before = host(&[
            ("link", &["lo", "eth0"]),
            ("route", &["default via 192.0.2.1 dev eth0"]),
        ]);
        let after = host(&[("link", &["lo", "eth0", "mbx-0a1b"]), ("route", &[])]);
        assert_eq!(
            after.changes_since(&before),
            [
                "link left behind: mbx-0a1b",
                "route gone: default via 192.0.2.1 dev eth0"
            ]
        );
        assert!(before.changes_since(&before).is_empty());
    }

    #[test]
    fn the_parsers_keep_what_identifies_a_thing() {
        assert_eq!(
            link_name("7: mbx0a1b2c3d4@if6: <BROADCAST,MULTICAST,UP> mtu 1500").as_deref(),
            Some("mbx0a1b2c3d4")
        );
        assert_eq!(
            address("4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0").as_deref(),
            Some("eth0 inet 192.0.2.2/24")
        );
        assert_eq!(
            iptables_rule(":FORWARD ACCEPT [12:345]").as_deref(),
            Some(":FORWARD ACCEPT")
        );
        assert_eq!(iptables_rule("# Generated by iptables-save"), None);
        assert_eq!(
            iptables_rule("-A FORWARD -j DROP").as_deref(),
            Some("-A FORWARD -j DROP")
        );
    }

    #[test]
    fn a_process_left_in_a_lab_namespace_is_seen() {
        if !nix::unistd::geteuid().is_root() {
            return; // an unprivileged unshare --net needs a user namespace too
        }
        let before = Host::snapshot();
        // A lab's holder, as the grader makes one.
        let mut holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "30"])
            .spawn()
            .unwrap();
        let pid = holder.id();
        let seen = grader::poll(std::time::Duration::from_secs(5), || {
            let changes = Host::snapshot().changes_since(&before);
            changes
                .iter()
                .any(|c| c.contains(&format!("pid {pid} (sleep)")))
                .then_some(changes)
        });
        let _ = holder.kill();
        let _ = holder.wait();
        assert!(
            seen.is_some(),
            "the holder (pid {pid}) should be seen as a lab process"
        );
    }

    #[test]
    fn a_tool_left_running_in_the_hosts_namespaces_is_seen() {
        // As podman's conmon would be: in our own network namespace, with
        // a temp dir of ours on its command line.
        let before = Host::snapshot();
        let dir = std::env::temp_dir().join(format!("grader-podman-{}-99", std::process::id()));
        let mut tool = Command::new("sh")
            .args(["-c", "sleep 30; :"])
            .arg(&dir)
            .spawn()
            .unwrap();
        let pid = tool.id();
        let seen = grader::poll(std::time::Duration::from_secs(5), || {
            let changes = Host::snapshot().changes_since(&before);
            changes
                .iter()
                .any(|c| c.starts_with(&format!("tool process left behind: pid {pid},")))
                .then_some(changes)
        });
        let _ = tool.kill();
        let _ = tool.wait();
        assert!(seen.is_some(), "the tool (pid {pid}) should be seen");
    }

    #[test]
    fn a_tools_cgroup_left_behind_is_seen() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let before = Host::snapshot();
        let name = format!("grader-podman-{}-98", std::process::id());
        let made: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup/pids")
            .map(|_| vec![Path::new("/sys/fs/cgroup/pids").join(&name)])
            .unwrap_or_else(|_| vec![Path::new("/sys/fs/cgroup").join(&name)]);
        for dir in &made {
            if std::fs::create_dir(dir).is_err() {
                return; // cgroups not writable here
            }
        }
        let changes = Host::snapshot().changes_since(&before);
        for dir in &made {
            let _ = std::fs::remove_dir(dir);
        }
        assert!(
            changes.contains(&format!("cgroup left behind: {}", made[0].display())),
            "{changes:?}"
        );
    }

    #[test]
    fn a_temp_dir_left_behind_is_seen_on_this_machine() {
        let before = Host::snapshot();
        assert!(!before.parts["mount"].is_empty(), "mountinfo read");
        let dir = std::env::temp_dir().join(format!("grader-leaktest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let changes = Host::snapshot().changes_since(&before);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            changes.contains(&format!("temp dir left behind: {}", dir.display())),
            "{changes:?}"
        );
    }
}
