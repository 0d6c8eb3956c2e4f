//! Namespaces: which parts of the machine the container gets its own copy of.
//!
//! A namespace wraps one kind of global resource so that the processes inside
//! see their own instance of it:
//!
//! | namespace | flag            | what it gives its own copy of                 |
//! |-----------|-----------------|-----------------------------------------------|
//! | mount     | CLONE_NEWNS     | the mount table (what is mounted where)       |
//! | UTS       | CLONE_NEWUTS    | host name and NIS domain name                 |
//! | IPC       | CLONE_NEWIPC    | System V IPC objects and POSIX message queues |
//! | PID       | CLONE_NEWPID    | process IDs (the first process is PID 1)      |
//! | network   | CLONE_NEWNET    | interfaces, addresses, routes, ports, firewall|
//! | user      | CLONE_NEWUSER   | user and group IDs, and capabilities          |
//! | cgroup    | CLONE_NEWCGROUP | the view of the cgroup tree (its root)        |
//!
//! Shell: `unshare --mount --uts --ipc --pid --net --cgroup --fork CMD`
//! creates them; `nsenter --target PID --all CMD` joins a process's; `ls -l
//! /proc/PID/ns` shows which a process is in (one inode number per instance).

use anyhow::Context;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// Which namespaces the container gets new (`true`) or shares with the host.
/// A new mount namespace is not optional: minibox mounts a `/proc` for the
/// container, and that must never land in the host's mount table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    pub user: bool,
    pub pid: bool,
    pub uts: bool,
    pub ipc: bool,
    pub net: bool,
    pub cgroup: bool,
}

impl Namespaces {
    /// docker's defaults: everything new but the user namespace.
    pub const DOCKER_DEFAULTS: Namespaces = Namespaces {
        user: false,
        pid: true,
        uts: true,
        ipc: true,
        net: true,
        cgroup: true,
    };
}

// ANCHOR: clone_flags
/// The `clone(2)` flags that create the namespaces in `ns`.
pub fn clone_flags(ns: &Namespaces) -> CloneFlags {
    // TODO(lesson-02): return the CLONE_NEW* flags for each namespace `ns` asks for, plus CLONE_NEWNS (a new mount namespace) always
    // The table at the top of this file names one flag per namespace.
    todo!(
        "lesson-02: return the CLONE_NEW* flags for each namespace `ns` asks for, plus CLONE_NEWNS (a new mount namespace) always"
    );
}
// ANCHOR_END: clone_flags

/// Which side of [`clone_process`] we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloned {
    /// In the new process, inside the new namespaces.
    Child,
    /// In the runtime; the child's pid as the host sees it.
    Parent(Pid),
}

// ANCHOR: clone_process
/// `fork()` with namespace flags: a new process that starts in new
/// namespaces. The parent stays where it is.
///
/// Why `clone(2)` and not `fork()` then `unshare(2)`: `unshare(CLONE_NEWPID)`
/// does not move the caller, only the children it forks afterwards (a
/// process's PID can't change), and a user namespace must exist *before* the
/// namespaces it should own. One `clone` with all the flags makes the child
/// PID 1 of its PID namespace, and creates the user namespace first so that
/// it owns all the others. runc, crun and youki start containers this way.
pub fn clone_process(flags: CloneFlags) -> anyhow::Result<Cloned> {
    // SAFETY: the raw clone(2) system call with a NULL stack behaves like
    // fork(): the child continues from here on a copy of our memory. It is
    // sound for the same reason fork is here: minibox is single-threaded.
    // Unlike glibc's fork(), it doesn't update glibc's cached thread id in
    // the child, so the child must not use pthread_kill/raise (Rust doesn't)
    // before it execs. SIGCHLD: the parent is told when the child ends, as
    // after fork. The other arguments (parent/child tid pointers, TLS) are
    // unused: zero.
    let ret = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_clone,
            flags.bits() as nix::libc::c_ulong | nix::libc::SIGCHLD as nix::libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match Errno::result(ret) {
        Ok(0) => Ok(Cloned::Child),
        Ok(pid) => Ok(Cloned::Parent(Pid::from_raw(pid as i32))),
        Err(errno @ (Errno::EPERM | Errno::EACCES)) => Err(errno).context(
            "cannot create the namespaces (clone): creating them needs root, or --userns \
             where unprivileged user namespaces are allowed (see the book: Setup)",
        ),
        Err(errno @ (Errno::ENOSPC | Errno::EUSERS)) => Err(errno).context(
            "cannot create the namespaces (clone): a namespace limit is reached \
             (/proc/sys/user/max_*_namespaces)",
        ),
        Err(errno) => Err(errno).context("cannot create the namespaces (clone)"),
    }
}
// ANCHOR_END: clone_process

// ANCHOR: clone_into
/// [`clone_process`], with the child born in the cgroup2 group whose
/// directory `cgroup` is open, when the kernel can (`clone3` with
/// `CLONE_INTO_CGROUP`, Linux 5.7): moving a process into a group later
/// makes the kernel wait for an RCU grace period (up to milliseconds on a
/// busy machine), a birth there doesn't. Where the kernel can't, a plain
/// clone: the caller sees where the child is (`/proc/PID/cgroup`) and moves
/// it.
pub fn clone_into(flags: CloneFlags, cgroup: Option<std::os::fd::RawFd>) -> anyhow::Result<Cloned> {
    if let Some(cgroup) = cgroup {
        // struct clone_args (88 bytes, CLONE_ARGS_SIZE_VER2): flags,
        // pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        // set_tid, set_tid_size, cgroup. A zero stack: the child goes on
        // on a copy of ours, as after fork.
        let mut args = [0u64; 11];
        args[0] = flags.bits() as u64 | CLONE_INTO_CGROUP;
        args[4] = nix::libc::SIGCHLD as u64;
        args[10] = cgroup as u64;
        // SAFETY: clone3(2) reads `args` (its size given); like fork() it
        // returns twice. Sound here as clone_process is: single-threaded.
        let ret = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_clone3,
                args.as_ptr(),
                std::mem::size_of_val(&args),
            )
        };
        match Errno::result(ret) {
            Ok(0) => return Ok(Cloned::Child),
            Ok(pid) => return Ok(Cloned::Parent(Pid::from_raw(pid as i32))),
            // No clone3 (ENOSYS), no CLONE_INTO_CGROUP (E2BIG, EINVAL: an
            // older kernel), or any other refusal: clone(2), whose errors
            // say more, and the caller moves the child.
            Err(_) => {}
        }
    }
    clone_process(flags)
}

/// `CLONE_INTO_CGROUP` from <linux/sched.h>.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
// ANCHOR_END: clone_into
