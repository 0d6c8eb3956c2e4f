//! User namespaces: root inside, somebody else outside.
//!
//! In a new user namespace, a process can be uid 0 with every capability,
//! while the host sees an ordinary user. The kernel translates ids through two
//! maps that the *parent* writes once, from outside, into
//! `/proc/PID/uid_map` and `/proc/PID/gid_map`, one line per range:
//!
//! ```text
//! INSIDE  OUTSIDE  COUNT        e.g.  0  1000  1   (root inside is uid 1000 outside)
//! ```
//!
//! - An **unprivileged** caller may map exactly one id: its own. Before it may
//!   write `gid_map` it must write `deny` to `/proc/PID/setgroups`, or it
//!   could use `setgroups()` inside to drop a group that a file's permissions
//!   deny it ("permission by group absence"). Shell: `unshare --user
//!   --map-root-user`.
//! - **Root** may map any range. minibox maps root inside to an unprivileged
//!   range (100000 and up, from `/etc/subuid` when it names one), as docker's
//!   `userns-remap` and podman do: root in the container is nobody special on
//!   the host. Shell: `newuidmap`/`newgidmap` do this for ordinary users.
//!
//! Create the user namespace *first* (in the same `clone` as the others): the
//! user namespace that exists when another namespace is created owns it, and
//! capabilities only count in namespaces your user namespace owns.

use anyhow::Context;
use nix::unistd::{Gid, Pid, Uid};
use std::fs;

/// One line of a uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdRange {
    /// The line the kernel wants: `INSIDE OUTSIDE COUNT\n`.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.inside, self.outside, self.count)
    }
}

/// The maps for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserMapping {
    pub uids: IdRange,
    pub gids: IdRange,
    /// Written by root: `setgroups` may stay allowed.
    pub privileged: bool,
}

/// The default subordinate range for root, when `/etc/subuid` names none.
pub const DEFAULT_RANGE: (u32, u32) = (100_000, 65_536);

/// The mapping for a container started by `uid`/`gid`.
pub fn mapping_for(uid: Uid, gid: Gid) -> UserMapping {
    if uid.is_root() && in_initial_user_namespace() {
        let (start, count) = subordinate("/etc/subuid").unwrap_or(DEFAULT_RANGE);
        let (gstart, gcount) = subordinate("/etc/subgid").unwrap_or(DEFAULT_RANGE);
        UserMapping {
            uids: IdRange {
                inside: 0,
                outside: start,
                count,
            },
            gids: IdRange {
                inside: 0,
                outside: gstart,
                count: gcount,
            },
            privileged: true,
        }
    } else {
        UserMapping {
            uids: IdRange {
                inside: 0,
                outside: uid.as_raw(),
                count: 1,
            },
            gids: IdRange {
                inside: 0,
                outside: gid.as_raw(),
                count: 1,
            },
            privileged: false,
        }
    }
}

/// Root of the machine, or only root of a user namespace (`unshare -r`)?
/// The initial user namespace maps every uid to itself: `0 0 4294967295`.
fn in_initial_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// root's range in a `/etc/subuid`-style file (`root:100000:65536`).
fn subordinate(path: &str) -> Option<(u32, u32)> {
    fs::read_to_string(path).ok()?.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let start = fields.next()?.trim().parse().ok()?;
        let count = fields.next()?.trim().parse().ok()?;
        (name == "root" || name == "0").then_some((start, count))
    })
}

// ANCHOR: write_maps
/// From outside: give the user namespace of `pid` its uid and gid maps.
pub fn write_maps(pid: Pid, mapping: &UserMapping) -> anyhow::Result<()> {
    // TODO(lesson-02): afterwards the user namespace of process `pid` maps `mapping.gids` and `mapping.uids` (one range each, as `IdRange::line` writes them), and when `mapping.privileged` is false it denies setgroups; any refusal is an error naming the file
    // Kernel facts: each map is written once, from outside (a process of
    // the parent user namespace), in one write(2) of the whole map; a
    // second write fails (EPERM). An unprivileged writer may map only its
    // own ids, and the kernel takes its gid map only once setgroups is
    // denied for that namespace (not the other way round). The files are
    // under /proc/PID/. Shell: `echo deny > /proc/PID/setgroups; echo '0
    // 1000 1' > /proc/PID/gid_map; echo '0 1000 1' > /proc/PID/uid_map`.
    // BEGIN SOLUTION
    let proc = format!("/proc/{pid}");
    if !mapping.privileged {
        // Must come before gid_map for an unprivileged writer (see above).
        fs::write(format!("{proc}/setgroups"), "deny")
            .context("cannot deny setgroups in the user namespace")?;
    }
    fs::write(format!("{proc}/gid_map"), mapping.gids.line())
        .with_context(|| format!("cannot write gid_map {:?}", mapping.gids.line().trim()))?;
    fs::write(format!("{proc}/uid_map"), mapping.uids.line())
        .with_context(|| format!("cannot write uid_map {:?}", mapping.uids.line().trim()))?;
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: write_maps
