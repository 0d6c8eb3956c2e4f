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
        // TODO(lesson-01): become the reaper of your descendants' orphans: prctl(PR_SET_CHILD_SUBREAPER, 1)
        // nix calls it `nix::sys::prctl::set_child_subreaper`.
        todo!(
            "lesson-01: become the reaper of your descendants' orphans: prctl(PR_SET_CHILD_SUBREAPER, 1)"
        );
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGCHLD);
        for signal in FORWARDED {
            signals.add(signal);
        }
        // sigprocmask(2): block them, so they wait as "pending" until sigwait
        // collects them. The child unblocks them again before execve.
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
            .context("cannot block signals (sigprocmask)")?;
        Ok(Supervisor { signals })
    }
    // ANCHOR_END: start

    // ANCHOR: wait
    /// Forward signals to `child` and reap every child that ends, until
    /// `child` itself ends; return how it ended.
    pub fn wait(&self, child: Pid) -> anyhow::Result<WaitStatus> {
        // TODO(lesson-01): loop on `self.signals.wait()` (sigwait); forward every signal but SIGCHLD to the child with kill; on SIGCHLD reap until the child's own status comes back
        // Reaping: one SIGCHLD can stand for several dead children (pending
        // signals don't queue), so call waitpid(-1, WNOHANG) again and again;
        // in nix, pid -1 ("any child") is `None`. Each call returns one dead
        // child's WaitStatus; return it if its pid is `child`, else keep
        // reaping. `Ok(WaitStatus::StillAlive)` or `Err(ECHILD)` means no one
        // is left to reap for now: go back to sigwait. (While the child lives
        // it can't be ECHILD: the child is yours to reap.)
        todo!(
            "lesson-01: loop on `self.signals.wait()` (sigwait); forward every signal but SIGCHLD to the child with kill; on SIGCHLD reap until the child's own status comes back"
        );
    }
    // ANCHOR_END: wait
}
