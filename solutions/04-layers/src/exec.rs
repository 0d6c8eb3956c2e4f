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
    // TODO(lesson-04): when this returns, this process is in every namespace of process `pid` that ORDER lists and that it does not share already (joining your own user namespace again is an error), joined in ORDER (user first: it owns the others; mnt last: after it, /proc may be the container's); if one of them cannot be opened, none is joined
    // A process's namespaces are the files /proc/PID/ns/KIND; two processes
    // share one when those files have the same inode. Only children of a
    // process that joined a PID namespace are in it. Shell:
    // `nsenter --target PID --user --ipc --uts --net --pid --cgroup --mount CMD`.
    // BEGIN SOLUTION
    use std::fs::File;
    use std::os::unix::fs::MetadataExt;
    let mut opened = Vec::new();
    for (kind, flag) in ORDER {
        let path = format!("/proc/{pid}/ns/{kind}");
        let file = File::open(&path).with_context(|| format!("cannot open {path}"))?;
        let theirs = file.metadata()?.ino();
        let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"))?.ino();
        if theirs != ours {
            opened.push((kind, flag, file));
        }
    }
    for (kind, flag, file) in opened {
        // setns(2): this process now belongs to that namespace. EPERM
        // without the capability in the namespace's owner; EINVAL for a
        // multi-threaded process joining a user or mount namespace.
        nix::sched::setns(&file, flag)
            .with_context(|| format!("cannot join the container's {kind} namespace (setns)"))?;
    }
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: join_namespaces

/// `exec CONTAINER CMD...`: join, then run the command as step 01 runs
/// one, with pipes for its stdio (`-i`: its stdin is ours, copied);
/// returns its exit code.
pub fn exec(
    record: &Record,
    command: Vec<String>,
    env: Vec<String>,
    workdir: Option<String>,
    interactive: bool,
) -> anyhow::Result<i32> {
    if !record.is_running() || !state::alive(record.state.pid, record.monitor.init_start_time) {
        bail!("container {} is not running", record.short_name());
    }
    if command.is_empty() {
        bail!("exec needs a command");
    }
    // The pipes, and the process that copies them, before joining: once in
    // the container's PID namespace this process may fork but no longer
    // start a thread, and the copier belongs outside anyway.
    let (mut inside, outside) = crate::pipes::pipes(interactive, crate::pipes::Streams::Apart)?;
    let copying = outside.relay_in_process(crate::pipes::Sink::stdio(), &mut inside)?;
    let ran = joined(record, command, env, workdir, inside);
    copying.finish();
    ran
}

/// Join, then run the command; its stdio are `inside`.
fn joined(
    record: &Record,
    command: Vec<String>,
    env: Vec<String>,
    workdir: Option<String>,
    inside: crate::pipes::Inside,
) -> anyhow::Result<i32> {
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
    let spec = step01::RunSpec {
        command,
        env: full_env,
        workdir: Some(workdir.unwrap_or_else(|| "/".to_string()).into()),
    };
    run_joined(&spec, inside)
}

// ANCHOR: run_joined
/// Step 01's `run`, for a process that has joined a container: the child
/// leads a session of its own and its stdio are pipes, never the caller's.
fn run_joined(spec: &step01::RunSpec, inside: crate::pipes::Inside) -> anyhow::Result<i32> {
    use step01::spawn::ExecReport;
    let prepared = step01::exec::Prepared::new(spec)?;
    let supervisor = step01::supervise::Supervisor::start()?;
    let report = ExecReport::new()?;
    // fork(2): this process is single-threaded.
    // SAFETY: no other thread exists, nothing is locked across the fork.
    let child = match unsafe { nix::unistd::fork() }.context("cannot start the command (fork)")? {
        nix::unistd::ForkResult::Child => {
            // setsid(2): out of the caller's session, and so out of reach of
            // its terminal (/dev/tty), like the container's init (step 02).
            if let Err(errno) = nix::unistd::setsid() {
                report.fail_setup("cannot leave the caller's terminal (setsid)", errno);
            }
            if let Err((what, errno)) = inside.in_child() {
                report.fail_setup(&what, errno);
            }
            step01::exec::exec_child(&prepared, &report)
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(inside); // the command's ends: only the command holds them now
    report.wait_for_exec(child, &prepared)?;
    let status = supervisor.wait(child)?;
    Ok(step01::status::exit_code(status))
}
// ANCHOR_END: run_joined
