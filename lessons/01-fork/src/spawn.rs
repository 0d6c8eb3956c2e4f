//! `fork`, and how the parent learns whether the child's `execve` worked.
//!
//! `fork(2)` makes a copy of the calling process. It returns twice: in the
//! parent with the child's pid, in the child with 0. Shell equivalent: every
//! command a shell runs is a `fork` followed by an `exec` in the child.
//!
//! The parent can't see the child's `execve` fail: the failure happens in
//! another process. The classic answer (used by Rust's `std::process`, runc
//! and crun alike) is a pipe opened with `O_CLOEXEC`: the kernel closes it
//! when `execve` succeeds, so the parent reads end-of-file; if `execve`
//! fails, the child writes its errno into the pipe first.

use crate::exec::{self, Prepared};
use crate::status::{Failure, CANNOT_EXECUTE, NOT_FOUND, RUNTIME_ERROR};
use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, read, write, ForkResult, Pid};
use std::os::fd::OwnedFd;

/// Which step of the child's setup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    Chdir = 1,
    Lookup = 2,
    Exec = 3,
    /// A step of container set-up before the exec (later steps: mounts,
    /// host name, ...); the report carries a description of it.
    Setup = 4,
}

/// The close-on-exec pipe from child to parent.
pub struct ExecReport {
    read: OwnedFd,
    write: OwnedFd,
}

impl ExecReport {
    pub fn new() -> anyhow::Result<Self> {
        // pipe2(2) with O_CLOEXEC: both ends close by themselves at execve.
        let (read, write) =
            pipe2(OFlag::O_CLOEXEC).context("cannot create the exec report pipe (pipe2)")?;
        Ok(ExecReport { read, write })
    }

    /// The pipe's two file descriptors: what a child that closes every
    /// inherited descriptor must keep (step 06's init).
    pub fn fds(&self) -> [std::os::fd::RawFd; 2] {
        use std::os::fd::AsRawFd;
        [self.read.as_raw_fd(), self.write.as_raw_fd()]
    }

    /// In the child: report `errno` at `stage` to the parent, then exit.
    pub fn fail(&self, stage: Stage, errno: Errno) -> ! {
        self.send(stage, errno, "")
    }

    /// In the child: report that set-up step `what` failed with `errno`,
    /// then exit. The parent prints `minibox: <what>: <errno>` and exits 125.
    pub fn fail_setup(&self, what: &str, errno: Errno) -> ! {
        self.send(Stage::Setup, errno, what)
    }

    fn send(&self, stage: Stage, errno: Errno, what: &str) -> ! {
        // stage, errno, then the description: one write of at most PIPE_BUF
        // (4096) bytes is atomic, so the parent reads all of it or nothing.
        let mut message = Vec::with_capacity(8 + what.len());
        message.extend_from_slice(&(stage as u32).to_ne_bytes());
        message.extend_from_slice(&(errno as i32).to_ne_bytes());
        message.extend_from_slice(&what.as_bytes()[..what.len().min(4000)]);
        let _ = write(&self.write, &message);
        // SAFETY: _exit(2) ends the child at once. Not `std::process::exit`,
        // which would run the runtime's atexit handlers and flush stdio buffers
        // copied from the parent, printing the parent's pending output twice.
        unsafe { nix::libc::_exit(NOT_FOUND) }
    }

    // ANCHOR: wait_for_exec
    /// In the parent, right after the fork: wait until the child has either
    /// exec'd the command (`Ok`) or reported why it couldn't (`Err`, with the
    /// exit code docker would use). A failed child is reaped before returning.
    pub fn wait_for_exec(self, child: Pid, cmd: &Prepared) -> anyhow::Result<()> {
        let ExecReport {
            read: reader,
            write,
        } = self;
        // Close our copy of the write end, or read() below would never see EOF.
        drop(write);
        let mut message = [0u8; 4096];
        let mut filled = 0;
        while filled < message.len() {
            match read(&reader, &mut message[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("cannot read the exec report pipe"),
            }
        }
        if filled == 0 {
            return Ok(()); // EOF: execve succeeded and the kernel closed the pipe.
        }
        // The child failed and is exiting: reap it so no zombie is left.
        let _ = waitpid(child, None);
        if filled < 8 {
            return Err(anyhow::anyhow!(
                "the container's set-up sent a garbled report"
            ));
        }
        let stage = u32::from_ne_bytes(message[..4].try_into().unwrap());
        let errno = Errno::from_raw(i32::from_ne_bytes(message[4..8].try_into().unwrap()));
        let what = String::from_utf8_lossy(&message[8..filled]);
        Err(describe(stage, errno, &what, cmd).into())
    }
    // ANCHOR_END: wait_for_exec
}

fn describe(stage: u32, errno: Errno, what: &str, cmd: &Prepared) -> Failure {
    let name = &cmd.name;
    let why = errno.desc().to_lowercase();
    match stage {
        s if s == Stage::Setup as u32 => Failure::new(RUNTIME_ERROR, format!("{what}: {why}")),
        s if s == Stage::Chdir as u32 => {
            let dir = cmd
                .workdir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            Failure::new(
                RUNTIME_ERROR,
                format!("cannot enter working directory {dir:?}: {why}"),
            )
        }
        s if s == Stage::Lookup as u32 => Failure::new(
            NOT_FOUND,
            format!("exec: {name:?}: executable file not found in $PATH"),
        ),
        _ if errno == Errno::ENOENT => Failure::new(NOT_FOUND, format!("exec: {name:?}: {why}")),
        _ => Failure::new(CANNOT_EXECUTE, format!("exec: {name:?}: {why}")),
    }
}

/// The errno behind an error, for [`ExecReport::fail_setup`]: the first
/// `Errno` in its chain of causes, or EIO when there is none.
pub fn errno_of(error: &anyhow::Error) -> Errno {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Errno>().copied())
        .unwrap_or(Errno::EIO)
}

// ANCHOR: spawn
/// Start `cmd` in a new child process and return the child's pid. The child
/// runs [`exec::exec_child`]; `report` tells the parent later if that failed.
pub fn spawn(cmd: &Prepared, report: &ExecReport) -> anyhow::Result<Pid> {
    // TODO(lesson-01): fork; in the child run `exec::exec_child(cmd, report)`, in the parent return the child's pid
    // `nix::unistd::fork` is unsafe: read its Safety section. Why is it sound
    // here? (See the note at the top of exec.rs.)
    todo!(
        "lesson-01: fork; in the child run `exec::exec_child(cmd, report)`, in the parent return the child's pid"
    );
}
// ANCHOR_END: spawn
