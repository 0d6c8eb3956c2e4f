//! The clone as the runtime uses it: your [`clone_child`], its errors
//! explained, and a birth straight into a cgroup where the kernel can.

use crate::namespaces::{clone_child, Cloned};
use anyhow::Context;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// [`clone_child`], with an error that says what to do about it.
pub fn clone_process(flags: CloneFlags) -> anyhow::Result<Cloned> {
    match clone_child(flags) {
        Ok(cloned) => Ok(cloned),
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
        // returns twice. Sound here as clone_child is: single-threaded.
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
