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

use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub use crate::given::clone::{clone_into, clone_process};

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
/// The `clone(2)` flags that create the namespaces in `ns`: one new
/// namespace for each kind `ns` asks for, none for the others (the child
/// shares the host's), and always a new mount namespace.
pub fn clone_flags(ns: &Namespaces) -> CloneFlags {
    // TODO(lesson-02): afterwards the flags ask the kernel for a new namespace of each kind `ns` wants and of no other, and for a new mount namespace whatever `ns` says
    // A mount namespace is never optional here: the init mounts a /proc,
    // which must land in the container's mount table, not the host's. The
    // table at the top of this file names one flag per kind. Shell: each
    // kind is one option of `unshare` (--uts, --pid, ...).
    todo!(
        "lesson-02: afterwards the flags ask the kernel for a new namespace of each kind `ns` wants and of no other, and for a new mount namespace whatever `ns` says"
    );
}
// ANCHOR_END: clone_flags

/// Which side of [`clone_child`] we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloned {
    /// In the new process, inside the new namespaces.
    Child,
    /// In the runtime; the child's pid as the host sees it.
    Parent(Pid),
}

// ANCHOR: clone_child
/// `fork()` with namespace flags: a new process that starts in new
/// namespaces. The parent stays where it is.
///
/// Why `clone` and not `fork()` then `unshare(2)`: `unshare(CLONE_NEWPID)`
/// does not move the caller, only the children it forks afterwards (a
/// process's PID can't change), and a user namespace must exist *before* the
/// namespaces it should own. One `clone` with all the flags makes the child
/// PID 1 of its PID namespace, and creates the user namespace first so that
/// it owns all the others. runc, crun and youki start containers this way.
///
/// minibox is single-threaded when it calls this: like `fork()`, it is
/// sound only then.
pub fn clone_child(flags: CloneFlags) -> nix::Result<Cloned> {
    // TODO(lesson-02): afterwards there are two processes, as after fork(): this one, which gets Parent(the child's pid), and the child, which gets Child, goes on from here on a copy of this process's memory and stack, and is already inside the new namespaces `flags` asks for; the parent learns of the child's end by SIGCHLD, as after fork(); a refusal is the kernel's errno, and no child
    // Kernel facts: the clone system call given no stack of its own goes on
    // like fork(), on a copy of the caller's; the low byte of its flags is
    // the signal the parent gets at the child's end. Its newer form,
    // clone3, takes a struct with the exit signal as a field of its own,
    // but some seccomp filters (docker's, when minibox itself runs in a
    // container) answer it with ENOSYS. nix's own wrapper wants a stack
    // and a callback: not what this needs. Shell: `unshare --fork --pid
    // --uts ... CMD`.
    todo!(
        "lesson-02: afterwards there are two processes, as after fork(): this one, which gets Parent(the child's pid), and the child, which gets Child, goes on from here on a copy of this process's memory and stack, and is already inside the new namespaces `flags` asks for; the parent learns of the child's end by SIGCHLD, as after fork(); a refusal is the kernel's errno, and no child"
    );
}
// ANCHOR_END: clone_child
