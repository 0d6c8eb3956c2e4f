//! The parent's side: wait for the command, pass signals on, reap orphans.
//!
//! A runtime sits between the user and the command. Three duties follow:
//!
//! - **Signals.** `kill <runtime>` or Ctrl-C reach the runtime, not the command.
//!   The runtime forwards them, so `docker stop` (SIGTERM) lets the command
//!   shut down cleanly. Shell: `trap 'kill -TERM $child' TERM`.
//! - **Orphans.** When a process dies, its children are re-parented, normally
//!   to the host's PID 1. A runtime that asks to be a *child subreaper*
//!   (`prctl(PR_SET_CHILD_SUBREAPER)`) gets them instead, so everything the
//!   container started stays in its tree (containerd's shim and `tini -s` do
//!   this). Whoever adopts them must `wait` for them, or they stay zombies.
//! - **Status.** The command's end becomes the runtime's exit code.
//!
//! All three meet in one loop. The signals are *blocked* before the fork and
//! collected synchronously with `sigwait(3)`: no signal handler runs, so
//! nothing can interrupt the runtime at a bad moment, and a SIGCHLD that
//! arrives before we wait is kept pending, not lost.

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The signals passed on to the command (docker forwards these and more).
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Holds the blocked signal set between `start` and `wait`.
pub struct Supervisor {
    signals: SigSet,
}

impl Supervisor {
    // ANCHOR: start
    /// Prepare the runtime to supervise a child. Call before `fork`, so no
    /// signal can slip between the fork and the wait loop.
    pub fn start() -> anyhow::Result<Self> {
        // TODO(lesson-01): afterwards orphans of this process's descendants come to this process (not to the host's init), and SIGCHLD and every FORWARDED signal are blocked in it: they wait as pending until the wait loop takes them; the set is kept for that loop
        // Kernel facts: a process may ask to be its descendants' "child
        // subreaper" (prctl(2)); it is per process and not inherited. A
        // blocked signal isn't lost: the kernel keeps it pending (once per
        // kind) until it is unblocked or taken with sigwait. The mask is
        // inherited by fork and survives execve. Shell: `trap '' TERM`
        // comes closest, but that ignores, and an ignored signal is lost.
        todo!(
            "lesson-01: afterwards orphans of this process's descendants come to this process (not to the host's init), and SIGCHLD and every FORWARDED signal are blocked in it: they wait as pending until the wait loop takes them; the set is kept for that loop"
        );
    }
    // ANCHOR_END: start

    // ANCHOR: wait
    /// Forward signals to `child` and reap every child that ends, until
    /// `child` itself ends; return how it ended.
    pub fn wait(&self, child: Pid) -> anyhow::Result<WaitStatus> {
        // TODO(lesson-01): return how `child` ended; until then every FORWARDED signal that reaches this process reaches `child` too, and every child of this process that ends (adopted orphans included) is reaped at once, never left a zombie
        // Kernel facts: sigwait(3) sleeps until one of a set of *blocked*
        // signals is pending, and takes it; a process blocked anywhere else
        // (in a waitpid without WNOHANG, say) takes none. One pending
        // SIGCHLD can stand for many dead children: pending signals of one
        // kind don't queue. waitpid(2) on any child (-1) with WNOHANG reaps
        // one dead child per call, says "none dead right now", or ECHILD
        // when there is no child at all; kill(2) of a process that is gone
        // is ESRCH. Shell: `trap 'kill -TERM $child' TERM; wait $child`.
        todo!(
            "lesson-01: return how `child` ended; until then every FORWARDED signal that reaches this process reaches `child` too, and every child of this process that ends (adopted orphans included) is reaped at once, never left a zombie"
        );
    }
    // ANCHOR_END: wait
}
