//! Cgroups: a group of the container's own, with limits.
//!
//! Namespaces decide what a container *sees*; control groups decide how
//! much it may *use*. A cgroup is a directory in a cgroup filesystem: make
//! one (`mkdir`), write a pid into its `cgroup.procs`, and that process and
//! every child it makes belong to it; write a limit into one of its files
//! and the kernel enforces it for all of them. Shell:
//!
//! ```sh
//! mkdir /sys/fs/cgroup/demo
//! echo 20 > /sys/fs/cgroup/demo/pids.max
//! echo $$ > /sys/fs/cgroup/demo/cgroup.procs   # this shell, and its children
//! ```
//!
//! Each *controller* (memory, pids, cpu, ...) is attached to one hierarchy:
//!
//! - **v2** (`cgroup2`, one tree, usually at `/sys/fs/cgroup`): the files
//!   are `memory.max`, `pids.max`, `cpu.max`; a group's controllers must be
//!   enabled in its parent's `cgroup.subtree_control`, and a group with
//!   processes may not give them to children ("no internal processes"),
//!   which is why minibox's groups live in `/minibox/ID` under the root,
//!   as docker's do in `/docker/ID`;
//! - **v1** (`cgroup`, a tree per controller, `/sys/fs/cgroup/memory`...):
//!   `memory.limit_in_bytes`, `pids.max`, `cpu.cfs_quota_us`. Hybrid
//!   machines mount both, each controller in one of them: minibox asks
//!   `/proc/self/mountinfo` where each one is. In v1 the group goes under
//!   the caller's own (`/proc/self/cgroup`), so a limit on the caller (a
//!   classroom's per-student group) still holds for its containers.
//!
//! The container gets a group of its own in the v2 tree, and in the v1 tree
//! of each controller it has a limit for, made before its init leaves the
//! gate; the init then makes a new cgroup namespace, rooted there, so
//! `/proc/self/cgroup` shows `/` inside. When the container ends, its group
//! is removed.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// The limits of `run --memory --pids-limit --cpus`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    /// Thousandths of a CPU: `--cpus 1.5` is 1500.
    pub millicpus: Option<u64>,
}

/// The smallest `--memory` docker takes: less can't start a process.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// `--memory 64m`: bytes, or a number (`1.5g` too) with b, k, m or g
/// (powers of 1024), as docker reads it.
pub fn parse_memory(text: &str) -> anyhow::Result<u64> {
    let bad = || anyhow::anyhow!("--memory {text}: write a size like 64m, 512k or 1.5g");
    let lower = text.trim().to_ascii_lowercase();
    let at = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(at);
    let scale: f64 = match unit {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    let bytes = bytes as u64;
    if bytes < MIN_MEMORY {
        bail!("--memory {text}: the minimum is 6m");
    }
    Ok(bytes)
}

/// The most pids.max takes: the kernel's PID_MAX_LIMIT (2^22).
const MAX_PIDS: i64 = 1 << 22;

/// `--pids-limit 100` (docker: 0 or -1 mean unlimited). At least 2: the
/// container's init and its command are two processes.
pub fn parse_pids(text: &str) -> anyhow::Result<Option<u64>> {
    match text.trim().parse::<i64>() {
        Ok(1) => bail!("--pids-limit 1: a container needs 2 at least (its init and its command)"),
        Ok(n) if (2..=MAX_PIDS).contains(&n) => Ok(Some(n as u64)),
        Ok(0 | -1) => Ok(None),
        _ => bail!("--pids-limit {text}: write a number of processes from 2 to {MAX_PIDS}, e.g. 100 (-1: no limit)"),
    }
}

/// `--cpus 1.5`: from 0.01 to the number of CPUs.
pub fn parse_cpus(text: &str) -> anyhow::Result<u64> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    match text.trim().parse::<f64>() {
        Ok(n) if (0.01..=cpus).contains(&n) => Ok((n * 1000.0).round() as u64),
        _ => bail!("--cpus {text}: the range is from 0.01 to {cpus:.2} (this machine's CPUs)"),
    }
}

/// The controllers minibox limits.
pub const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// A mounted hierarchy: where, and which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// `true`: cgroup2. `false`: v1, with `controllers` attached.
    pub v2: bool,
    /// v1: the controllers in its mount options (`cpu,cpuacct`); v2: those
    /// listed in its root's `cgroup.controllers`.
    pub controllers: Vec<String>,
}

/// Where this host keeps its cgroups, from `/proc/self/mountinfo`: read
/// once per run of the runtime (its sweep and its container both ask).
pub fn hierarchies() -> anyhow::Result<Vec<Hierarchy>> {
    static FOUND: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found.clone());
    }
    let found = read_hierarchies()?;
    Ok(FOUND.get_or_init(|| found).clone())
}

fn read_hierarchies() -> anyhow::Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    let mut found = Vec::new();
    for line in text.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = PathBuf::from(left.split(' ').nth(4).unwrap_or_default());
        let mut right = right.split(' ');
        let (fstype, superopts) = (right.next(), right.nth(1).unwrap_or_default());
        match fstype {
            Some("cgroup2") => {
                let controllers = std::fs::read_to_string(mount.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                found.push(Hierarchy {
                    mount,
                    v2: true,
                    controllers,
                });
            }
            Some("cgroup") => found.push(Hierarchy {
                mount,
                v2: false,
                controllers: superopts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(String::from)
                    .collect(),
            }),
            _ => {}
        }
    }
    // The same hierarchy mounted twice (a bind): keep the first.
    let mut seen = Vec::new();
    found.retain(|h| {
        let key = (h.v2, h.controllers.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    Ok(found)
}

/// The hierarchy that holds `controller`: v1 wins where it has it (a
/// controller attached to v1 is absent from v2).
fn holder<'a>(all: &'a [Hierarchy], controller: &str) -> Option<&'a Hierarchy> {
    let has = |h: &&Hierarchy| h.controllers.iter().any(|c| c == controller);
    all.iter()
        .filter(|h| !h.v2)
        .find(has)
        .or_else(|| all.iter().filter(|h| h.v2).find(has))
}

/// This process's group in a hierarchy, from `/proc/self/cgroup`
/// (`ID:CONTROLLERS:PATH`, v2 is `0::PATH`).
fn own_path(hierarchy: &Hierarchy) -> String {
    // Read once: the runtime never moves itself, and it asks for each
    // hierarchy in turn.
    static OWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = OWN.get_or_init(|| std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
    text.lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = if hierarchy.v2 {
                controllers.is_empty()
            } else {
                let listed: Vec<&str> = controllers.split(',').collect();
                hierarchy
                    .controllers
                    .iter()
                    .all(|c| listed.contains(&c.as_str()))
            };
            matches.then(|| path.to_string())
        })
        .unwrap_or_else(|| "/".to_string())
}

fn write(dir: &Path, file: &str, value: &str) -> anyhow::Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value)
        .with_context(|| format!("cannot write {value:?} to {}", path.display()))
}

/// A container's group: one directory per hierarchy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub dirs: Vec<PathBuf>,
}

impl Group {
    // ANCHOR: create
    /// Make the container's group `id` and set its `limits`. Fails, with
    /// nothing left behind, if a limit's controller is on no hierarchy.
    pub fn create(id: &str, limits: &Limits) -> anyhow::Result<Group> {
        let all = hierarchies()?;
        let mut wanted: Vec<&Hierarchy> = Vec::new();
        let asked = [
            ("memory", limits.memory.is_some()),
            ("pids", limits.pids.is_some()),
            ("cpu", limits.millicpus.is_some()),
        ];
        // A v1 tree only where a limit needs it: moving a process between
        // groups takes the kernel a few hundred microseconds per tree (an
        // RCU grace period), the dearest part of a container's start.
        for (controller, _) in asked.iter().filter(|(_, asked)| *asked) {
            if let Some(h) = holder(&all, controller) {
                if !wanted.contains(&h) {
                    wanted.push(h);
                }
            }
        }
        // The v2 tree always, whatever it holds: the container's own group,
        // the cgroup namespace's root there.
        if let Some(v2) = all.iter().find(|h| h.v2) {
            if !wanted.contains(&v2) {
                wanted.push(v2);
            }
        }
        let mut group = Group::default();
        let made = (|| {
            for hierarchy in &wanted {
                group.dirs.push(make_dir(hierarchy, id)?);
            }
            if *limits == Limits::default() {
                return Ok(()); // a group of its own, no limits
            }
            group.set_limits(&all, limits)
        })();
        if let Err(error) = made {
            group.remove();
            return Err(error);
        }
        Ok(group)
    }
    // ANCHOR_END: create

    /// The group's directory in `hierarchy`.
    fn dir_in(&self, hierarchy: &Hierarchy) -> Option<&PathBuf> {
        self.dirs.iter().find(|d| d.starts_with(&hierarchy.mount))
    }

    /// The group's directory in the v2 tree, if one is mounted.
    /// Where container `id`'s v2 group is, whoever made it: always
    /// `V2/minibox/ID` (v1 groups are under their maker's own group, which
    /// only their maker knows).
    pub fn v2_dir_of(id: &str) -> Option<PathBuf> {
        let all = hierarchies().ok()?;
        let v2 = all.iter().find(|h| h.v2)?;
        Some(v2.mount.join("minibox").join(id))
    }

    pub fn v2_dir(&self) -> Option<PathBuf> {
        let all = hierarchies().ok()?;
        let v2 = all.iter().find(|h| h.v2)?;
        self.dir_in(v2).cloned()
    }

    /// A group `id` in the v1 tree of `controller` too (the device rules'
    /// fallback), made before any process is in the group; its directory,
    /// or `None` where no v1 tree holds the controller.
    pub fn add_v1(&mut self, id: &str, controller: &str) -> anyhow::Result<Option<PathBuf>> {
        let all = hierarchies()?;
        let has = |h: &&Hierarchy| !h.v2 && h.controllers.iter().any(|c| c == controller);
        let Some(hierarchy) = all.iter().find(has) else {
            return Ok(None);
        };
        if let Some(dir) = self.dir_in(hierarchy) {
            return Ok(Some(dir.clone())); // a limit made it already
        }
        let dir = make_dir(hierarchy, id)?;
        self.dirs.push(dir.clone());
        Ok(Some(dir))
    }

    // ANCHOR: set_limits
    /// Write `limits` into the group's directories (`all`: this host's
    /// hierarchies, as [`hierarchies`] found them). Fails naming the flag
    /// whose controller no hierarchy holds, or the file the kernel refused.
    pub fn set_limits(&self, all: &[Hierarchy], limits: &Limits) -> anyhow::Result<()> {
        // TODO(lesson-06): when this returns Ok, each limit asked for is in the kernel, in the container's directory of the hierarchy that holds its controller (v1 wins where both could), in that version's own files: memory, the bytes, and no swap on top (v2: memory.max, and memory.swap.max 0 where the kernel has it; v1: memory.limit_in_bytes, and memory.memsw.limit_in_bytes, memory plus swap, the same where it has it); pids, pids.max (both); cpu, `millicpus` thousandths of a CPU as CFS bandwidth, a quota of CPU time in microseconds per period of 100000 (v2: cpu.max "QUOTA PERIOD"; v1: cpu.cfs_period_us, then cpu.cfs_quota_us). A limit not asked for is left as it is. Shell: `echo 20 > .../pids.max`
        // No swap: a container over its memory is ended by the OOM killer
        // rather than slowed down by swapping. Each file takes one number
        // (or "max") per write(2); the kernel answers EINVAL to anything else.
        todo!(
            "lesson-06: when this returns Ok, each limit asked for is in the kernel, in the container's directory of the hierarchy that holds its controller (v1 wins where both could), in that version's own files: memory, the bytes, and no swap on top (v2: memory.max, and memory.swap.max 0 where the kernel has it; v1: memory.limit_in_bytes, and memory.memsw.limit_in_bytes, memory plus swap, the same where it has it); pids, pids.max (both); cpu, `millicpus` thousandths of a CPU as CFS bandwidth, a quota of CPU time in microseconds per period of 100000 (v2: cpu.max \"QUOTA PERIOD\"; v1: cpu.cfs_period_us, then cpu.cfs_quota_us). A limit not asked for is left as it is. Shell: `echo 20 > .../pids.max`"
        );
    }
    // ANCHOR_END: set_limits

    // ANCHOR: add
    /// Put process `pid` (and so all its future children) in the group.
    pub fn add(&self, pid: i32) -> anyhow::Result<()> {
        // TODO(lesson-06): when this returns Ok, process `pid` is in the container's group in every hierarchy the group has a directory in (`self.dirs`), and so is every child it makes from then on; `/proc/PID/cgroup` shows the group's path on each of its lines. Shell: `echo PID > DIR/cgroup.procs` for each DIR
        // The kernel moves a whole process (all its threads) in one write of
        // its pid; ESRCH if it has ended meanwhile.
        todo!(
            "lesson-06: when this returns Ok, process `pid` is in the container's group in every hierarchy the group has a directory in (`self.dirs`), and so is every child it makes from then on; `/proc/PID/cgroup` shows the group's path on each of its lines. Shell: `echo PID > DIR/cgroup.procs` for each DIR"
        );
    }
    // ANCHOR_END: add

    // ANCHOR: end
    /// The container has ended: end what is left in its group, then remove
    /// it. With a PID namespace of its own nothing is left (its init's end
    /// took every process with it); with `--pid host` a process it started
    /// in the background lives on, still in the group, still under the
    /// container's seccomp filter and capabilities, with nobody watching:
    /// runc kills every process of the container's cgroup then, and so does
    /// minibox.
    pub fn end(&self) {
        // TODO(lesson-06): when this returns, no process is left in any of the group's directories (each one killed, SIGKILL, whatever it was doing), and the directories are gone. Shell: `echo 1 > DIR/cgroup.kill` where the file exists, else `kill -9 $(cat DIR/cgroup.procs)` until it lists none; then `rmdir DIR`
        // cgroup.kill (v2, Linux 5.14) kills every process of the group in
        // one write, atomically: one that forks meanwhile can't slip out.
        // Elsewhere a process may fork between the read of cgroup.procs and
        // the kill of it: read again, until the list is empty. A killed
        // process leaves the list once it has finished dying, and a group's
        // rmdir says EBUSY while any process is in it.
        todo!(
            "lesson-06: when this returns, no process is left in any of the group's directories (each one killed, SIGKILL, whatever it was doing), and the directories are gone. Shell: `echo 1 > DIR/cgroup.kill` where the file exists, else `kill -9 $(cat DIR/cgroup.procs)` until it lists none; then `rmdir DIR`"
        );
    }
    // ANCHOR_END: end

    /// Remove the group. Its processes are gone (the container's init has
    /// been reaped, and with it its PID namespace); a group is busy a
    /// moment longer while the kernel finishes their exit, so retry.
    pub fn remove(&self) {
        for dir in self.dirs.iter().rev() {
            for _ in 0..1000 {
                match std::fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(1))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Where this process's containers' groups are made: `minibox` in the v2
/// root, and under this process's own group in each v1 tree.
fn bases(all: &[Hierarchy]) -> Vec<PathBuf> {
    all.iter()
        .map(|h| {
            if h.v2 {
                h.mount.join("minibox")
            } else {
                h.mount
                    .join(own_path(h).trim_start_matches('/'))
                    .join("minibox")
            }
        })
        .collect()
}

/// Remove the empty groups that a runtime killed between making them and
/// recording them left behind: no process, and older than `age`, so a
/// container being started right now (by any `--root`) keeps its group.
/// A group with a process in it can't be removed (EBUSY): nothing running
/// is touched.
pub fn sweep_orphans(age: std::time::Duration) {
    let Ok(all) = hierarchies() else {
        return;
    };
    for base in bases(&all) {
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let is_id = name.len() == 64
                && name
                    .to_string_lossy()
                    .chars()
                    .all(|c| c.is_ascii_hexdigit());
            // The control files beside the groups (`cgroup.procs`, ...)
            // are not looked at further: two system calls fewer each.
            if !is_id {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age));
            let empty = old
                && std::fs::read_to_string(entry.path().join("cgroup.procs"))
                    .is_ok_and(|procs| procs.trim().is_empty());
            if empty {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

/// `HIERARCHY/BASE/minibox/ID`, made, with the v2 controllers enabled on
/// the way down.
fn make_dir(hierarchy: &Hierarchy, id: &str) -> anyhow::Result<PathBuf> {
    let base = bases(std::slice::from_ref(hierarchy)).remove(0);
    let dir = base.join(id);
    // The parent `minibox` stays, as docker's `/docker` does: removing it
    // would race with another container being made.
    if !base.is_dir() {
        std::fs::create_dir_all(&base)
            .with_context(|| format!("cannot create {}", base.display()))?;
    }
    if hierarchy.v2 {
        // +memory +pids +cpu in the root's and in minibox's
        // subtree_control: each level gives its children the controllers.
        for level in [&hierarchy.mount, &base] {
            let available =
                std::fs::read_to_string(level.join("cgroup.controllers")).unwrap_or_default();
            let enable: Vec<String> = CONTROLLERS
                .iter()
                .filter(|c| available.split_whitespace().any(|a| a == **c))
                .map(|c| format!("+{c}"))
                .collect();
            if !enable.is_empty() {
                // Best effort: a missing controller fails its limit later,
                // with the file named.
                let _ = std::fs::write(level.join("cgroup.subtree_control"), enable.join(" "));
            }
        }
    }
    match std::fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}

/// The groups of process `pid` (`exec` joins its container's), as
/// directories, except those it shares with this process.
pub fn of_process(pid: i32) -> anyhow::Result<Group> {
    let all = hierarchies()?;
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("cannot read /proc/{pid}/cgroup"))?;
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut group = Group::default();
    for line in theirs.lines().filter(|l| !ours.lines().any(|o| o == *l)) {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let listed: Vec<&str> = controllers.split(',').collect();
        let hierarchy = all.iter().find(|h| {
            if controllers.is_empty() {
                h.v2
            } else {
                !h.v2
                    && !h.controllers.is_empty()
                    && h.controllers.iter().all(|c| listed.contains(&c.as_str()))
            }
        });
        if let Some(h) = hierarchy {
            group.dirs.push(h.mount.join(path.trim_start_matches('/')));
        }
    }
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_read_as_docker_reads_them() {
        assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(parse_memory("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("8388608").unwrap(), 8 << 20);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert!(parse_memory("64kbb").is_err());
        assert!(parse_memory("1m")
            .unwrap_err()
            .to_string()
            .contains("minimum is 6m"));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("99999999999999g").is_err());
    }

    #[test]
    fn pids_and_cpus_are_checked() {
        assert_eq!(parse_pids("20").unwrap(), Some(20));
        assert_eq!(parse_pids("-1").unwrap(), None);
        assert!(parse_pids("many").is_err());
        assert!(parse_pids("1")
            .unwrap_err()
            .to_string()
            .contains("2 at least"));
        assert!(parse_pids("4194305").is_err());
        assert_eq!(parse_cpus("0.5").unwrap(), 500);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("1000")
            .unwrap_err()
            .to_string()
            .contains("the range is"));
    }
}
