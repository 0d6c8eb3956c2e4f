//! `exec`: run one more command in a running container.
//!
//! A container is a set of namespaces (step 02) with a root filesystem
//! (step 03) and processes in it. To run another command *inside*, a new
//! process joins the same namespaces with `setns(2)`: open
//! `/proc/PID/ns/<kind>` of the container's init and pass the fd. Shell:
//! `nsenter --target PID --all CMD`.
//!
//! The order matters:
//!
//! 1. **open every namespace file first**: once we join the mount
//!    namespace, the host's `/proc/PID/...` is no longer where it was;
//! 2. **user** first (when the container has its own): it owns the others,
//!    and joining it gives the capabilities that joining them asks for;
//! 3. ipc, uts, net, pid, cgroup;
//! 4. **mount** last: joining it also moves this process's root and working
//!    directory to the container's `/` (the pivoted rootfs), so no chroot
//!    is needed.
//!
//! Joining a PID namespace moves only the *children* made afterwards (as
//! `unshare` in step 02): the command is forked after, by step 01's
//! spawn, and is a process of the container, seen by its `ps`.

use crate::state::{self, Record};
use anyhow::{bail, Context};
use nix::sched::CloneFlags;
use std::fs::File;
use std::os::unix::fs::MetadataExt;

/// The namespaces to join, in order: user first, mount last.
pub const ORDER: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

// ANCHOR: join_namespaces
/// Join the namespaces of process `pid` (the container's init).
pub fn join_namespaces(pid: i32) -> anyhow::Result<()> {
    // TODO(lesson-04): for each (kind, flag) of ORDER, open /proc/{pid}/ns/{kind} (all of them before joining any), then setns(file, flag) in ORDER — skipping each one whose inode is the same as /proc/self/ns/{kind} (a namespace shared with the host: joining your own user namespace is EINVAL)
    // nix::sched::setns takes the open File and the CloneFlags.
    todo!(
        "lesson-04: for each (kind, flag) of ORDER, open /proc/{{pid}}/ns/{{kind}} (all of them before joining any), then setns(file, flag) in ORDER — skipping each one whose inode is the same as /proc/self/ns/{{kind}} (a namespace shared with the host: joining your own user namespace is EINVAL)"
    );
}
// ANCHOR_END: join_namespaces

/// `exec CONTAINER CMD...`: join, then run the command as step 01 runs
/// one; returns its exit code.
pub fn exec(
    record: &Record,
    command: Vec<String>,
    env: Vec<String>,
    workdir: Option<String>,
) -> anyhow::Result<i32> {
    if !record.is_running() || !state::alive(record.state.pid, record.monitor.init_start_time) {
        bail!("container {} is not running", record.short_name());
    }
    if command.is_empty() {
        bail!("exec needs a command");
    }
    join_namespaces(record.state.pid)?;
    let mut full_env = record.config.env.clone();
    for entry in env {
        let key = entry
            .split_once('=')
            .map_or(entry.as_str(), |(k, _)| k)
            .to_string();
        full_env.retain(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) != key);
        full_env.push(entry);
    }
    let workdir = workdir.or_else(|| {
        (!record.config.working_dir.is_empty()).then(|| record.config.working_dir.clone())
    });
    step01::run(&step01::RunSpec {
        command,
        env: full_env,
        workdir: Some(workdir.unwrap_or_else(|| "/".to_string()).into()),
    })
}
