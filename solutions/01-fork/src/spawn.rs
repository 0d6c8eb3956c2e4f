//! `fork`, and how the parent learns whether the child's `execve` worked.
//!
//! `fork(2)` makes a copy of the calling process. It returns twice: in the
//! parent with the child's pid, in the child with 0. Shell equivalent: every
//! command a shell runs is a `fork` followed by an `exec` in the child.
//!
//! The parent can't see the child's `execve` fail: the failure happens in
//! another process. The classic answer (used by Rust's `std::process`, runc
//! and crun alike) is the *exec report*: a pipe whose ends the kernel closes
//! by itself at a successful `execve` (close-on-exec), so the parent reads
//! end-of-file; if something fails first, the child writes what and why
//! into the pipe, then exits. The bytes of a report and the line it
//! becomes are given ([`crate::given::wire`]).

use crate::exec::{self, Prepared};
use crate::given::wire::{self, Message};
use crate::status::NOT_FOUND;
use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, write, ForkResult, Pid};
use std::io::Read;
use std::os::fd::OwnedFd;

pub use crate::given::wire::errno_of;

/// Which stage of the child's way to the command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    /// Entering the working directory (`-w`).
    Chdir = 1,
    /// Finding the program on the command's `PATH`.
    Lookup = 2,
    /// The `execve` itself.
    Exec = 3,
    /// A step of container set-up before the exec (later steps: mounts,
    /// host name, ...); the report carries a description of it.
    Setup = 4,
}

/// The exec report: a pipe from child to parent, open until the `execve`.
pub struct ExecReport {
    read: OwnedFd,
    write: OwnedFd,
}

impl ExecReport {
    // ANCHOR: new
    /// Before the fork: the pipe, both of whose ends the kernel closes in
    /// any process that execs.
    pub fn new() -> anyhow::Result<Self> {
        // TODO(lesson-01): a pipe whose two ends are closed by the kernel itself in a process that calls execve successfully, and in no other case
        // Both ends are inherited by the child at the fork. Flags given at
        // creation hold from the first instant: set later, another thread's
        // fork+exec could slip in between and carry the pipe away.
        // BEGIN SOLUTION
        // pipe2(2) with O_CLOEXEC: both ends close by themselves at execve.
        let (read, write) =
            pipe2(OFlag::O_CLOEXEC).context("cannot create the exec report pipe (pipe2)")?;
        Ok(ExecReport { read, write })
        // END SOLUTION
    }
    // ANCHOR_END: new

    /// The pipe's two file descriptors: what a child that closes every
    /// inherited descriptor must keep (step 06's init).
    pub fn fds(&self) -> [std::os::fd::RawFd; 2] {
        use std::os::fd::AsRawFd;
        [self.read.as_raw_fd(), self.write.as_raw_fd()]
    }

    /// In the child: report `errno` at `stage` to the parent, then exit.
    pub fn fail(&self, stage: Stage, errno: Errno) -> ! {
        self.send(Message {
            stage,
            errno,
            what: String::new(),
        })
    }

    /// In the child: report that set-up step `what` failed with `errno`,
    /// then exit. The parent prints `minibox: <what>: <errno>` and exits 125.
    pub fn fail_setup(&self, what: &str, errno: Errno) -> ! {
        self.send(Message {
            stage: Stage::Setup,
            errno,
            what: what.to_string(),
        })
    }

    // ANCHOR: send
    fn send(&self, message: Message) -> ! {
        // TODO(lesson-01): in the child: the parent can read `message` whole from the pipe, and the child is gone, without running any more of the runtime's code and without writing anything else anywhere
        // `Message::encode` gives the bytes; one write of at most PIPE_BUF
        // (4096) bytes is atomic. Kernel facts: the child holds a copy of the
        // parent's memory, its unflushed stdout buffer and its exit
        // handlers included; the system call that ends a process runs none
        // of them, the C library's exit runs them all. Shell: `echo "$why"
        // >&3; exit`.
        // BEGIN SOLUTION
        // A failed write (the parent gone) changes nothing: the child ends.
        let _ = write(&self.write, &message.encode());
        // SAFETY: _exit(2) ends the child at once. Not `std::process::exit`,
        // which would run the runtime's atexit handlers and flush stdio buffers
        // copied from the parent, printing the parent's pending output twice.
        unsafe { nix::libc::_exit(NOT_FOUND) }
        // END SOLUTION
    }
    // ANCHOR_END: send

    // ANCHOR: wait_for_exec
    /// In the parent, right after the fork: wait until the child has either
    /// exec'd the command (`Ok`) or reported why it couldn't (`Err`, with the
    /// exit code docker would use). A failed child is reaped before returning.
    pub fn wait_for_exec(self, child: Pid, cmd: &Prepared) -> anyhow::Result<()> {
        // TODO(lesson-01): return Ok once the child has exec'd; if it reported a failure instead, return the error the report stands for (a `Failure`, with its exit code) after the child is reaped; bytes that are no report are a runtime error
        // Kernel facts: read(2) on a pipe returns end-of-file (0) only when
        // no process holds its write end any more, this one included; the
        // child's copy closes at its execve or its exit. A child that has
        // exited stays a zombie until its parent waits for it.
        // `Message::decode` and `Message::failure` are given.
        // Shell: `read -r why <&3 && { wait $child; exit 126; }`.
        // BEGIN SOLUTION
        let ExecReport {
            read: reader,
            write,
        } = self;
        // Close our copy of the write end, or read() would never see EOF.
        drop(write);
        let mut bytes = Vec::new();
        // read_to_end reads until end-of-file, through partial reads and
        // EINTR.
        std::fs::File::from(reader)
            .read_to_end(&mut bytes)
            .context("cannot read the exec report pipe")?;
        if bytes.is_empty() {
            return Ok(()); // EOF at once: execve succeeded.
        }
        // The child failed and is exiting: reap it so no zombie is left.
        let _ = waitpid(child, None);
        match Message::decode(&bytes) {
            Some(message) => Err(message.failure(cmd).into()),
            None => Err(wire::garbled()),
        }
        // END SOLUTION
    }
    // ANCHOR_END: wait_for_exec
}

// ANCHOR: spawn
/// Start `cmd` in a new child process and return the child's pid. The child
/// runs [`exec::exec_child`]; `report` tells the parent later if that failed.
pub fn spawn(cmd: &Prepared, report: &ExecReport) -> anyhow::Result<Pid> {
    // TODO(lesson-01): a new process, a copy of this one, becomes the command (`exec::exec_child` knows how) while this one returns the new process's pid
    // `nix::unistd::fork` is unsafe: read its Safety section. Why is it sound
    // here? (See the note at the top of given/child.rs.) Shell: `CMD &
    // child=$!`.
    // BEGIN SOLUTION
    // SAFETY: fork(2) copies only the calling thread. minibox is
    // single-threaded here, so no lock (the allocator's, stdout's) can be held
    // by a thread that doesn't exist in the child.
    match unsafe { fork() }.context("cannot create a process (fork)")? {
        ForkResult::Child => exec::exec_child(cmd, report),
        ForkResult::Parent { child } => Ok(child),
    }
    // END SOLUTION
}
// ANCHOR_END: spawn
