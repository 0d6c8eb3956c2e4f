//! `exec` seals itself before the container can see it.
//!
//! `exec` joins a running container: from its `setns` into the container's
//! PID namespace on, the command it forks is a process *of the container*,
//! listed in its `/proc`, and until its `execve` that process is a copy of
//! the runtime: the caller's environment in its memory (`/proc/PID/environ`:
//! tokens, `SUDO_USER`, ...), the caller's open files (`/proc/PID/fd/7` is
//! as good as the caller's fd 7: a host directory, say), the runtime's
//! binary (`/proc/PID/exe`), and root's full set of capabilities until step
//! 06 drops them. A process of the container that watches `/proc` for new
//! pids reads all of it, or holds the newcomer with `PTRACE_SEIZE` and works
//! through its fds at leisure. The container's own processes may do that
//! to each other: they are root, with the same capabilities (and the
//! kernel lets a process trace one whose capabilities are a subset of its
//! own).
//!
//! Two things close that window:
//!
//! - **non-dumpable** (`prctl(PR_SET_DUMPABLE, 0)`), here, before the
//!   runtime joins the container: `/proc/PID/*` of a non-dumpable process
//!   belongs to root and needs `CAP_SYS_PTRACE` (in the host's user
//!   namespace) to read, and `ptrace` needs it too; the flag is inherited by
//!   `fork` and reset by the next `execve`, which runs the container's
//!   program: by then there is nothing of the host's left;
//! - **no inherited fds**: the child closes every fd but its exec report's
//!   first thing after the fork (step 01's `Lockdown::seal`, [`crate::fds`]),
//!   before it follows any path (its working directory's), not only marks
//!   them close-on-exec; and once it has entered its working directory it
//!   checks that it is inside the container.
//!
//! runc does the same in `runc init` (the last two since CVE-2024-21626).

use nix::errno::Errno;

// ANCHOR: seal
/// In the runtime's `exec`, first thing, before it joins the container.
pub fn seal() -> Result<(), Errno> {
    // TODO(lesson-06): when this returns, this process and every child it forks (until that child's execve) are out of the container's sight: their /proc/PID/environ, fd/, exe and mem can't be read, nor can they be traced, by a process without CAP_SYS_PTRACE, whatever its user and capabilities. Shell: none (it is a flag of the process, kept across fork and cleared by execve)
    // BEGIN SOLUTION
    // prctl(2) PR_SET_DUMPABLE 0: the kernel's ptrace_may_access() now
    // wants CAP_SYS_PTRACE of whoever asks, for /proc/PID/* and ptrace.
    nix::sys::prctl::set_dumpable(false)
    // END SOLUTION
}
// ANCHOR_END: seal
