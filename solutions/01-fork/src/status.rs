//! Exit statuses: how a child's end becomes the runtime's exit code.
//!
//! The kernel tells a parent *how* its child ended through `waitpid`: either it
//! called `exit(code)` or a signal killed it. A shell folds both into one number
//! (`$?`), and docker does the same, so scripts can't tell the runtime from the
//! command it ran:
//!
//! | how it ended                  | exit code     |
//! |-------------------------------|---------------|
//! | `exit(n)`                     | `n` (0..=255) |
//! | killed by signal `N`          | `128 + N`     |
//! | the runtime itself failed     | 125           |
//! | the command can't be executed | 126           |
//! | the command wasn't found      | 127           |

use crate::spawn::Stage;
use nix::errno::Errno;
use nix::sys::wait::WaitStatus;
use std::fmt;

/// The runtime failed before or around the command: bad flags, a directory
/// that doesn't exist, a syscall that said no.
pub const RUNTIME_ERROR: i32 = 125;
/// The command exists but can't be executed (no `x` bit, not a program).
pub const CANNOT_EXECUTE: i32 = 126;
/// No such command.
pub const NOT_FOUND: i32 = 127;

// ANCHOR: exit_code
/// The exit code a shell (and docker) would report for a child that ended
/// with `status`.
pub fn exit_code(status: WaitStatus) -> i32 {
    // TODO(lesson-01): the number a shell puts in `$?` for a child that ended this way: its own code if it exited, 128 + N if signal N killed it; any other status means the runtime lost track of its child: a runtime error
    // Kernel facts: an exit code is 0..=255 (the low byte of what the
    // program passed to exit); a signal's number is 1..=64. Shell: `sh -c
    // 'kill -9 $$'; echo $?` prints 137.
    // BEGIN SOLUTION
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _core_dumped) => 128 + signal as i32,
        _ => RUNTIME_ERROR,
    }
    // END SOLUTION
}
// ANCHOR_END: exit_code

// ANCHOR: exec_failure_code
/// The exit code for a child that could not become the command: it failed
/// at `stage` with `errno`.
pub fn exec_failure_code(stage: Stage, errno: Errno) -> i32 {
    // TODO(lesson-01): docker's code for a command that never ran: 127 when there is no such program (not on the PATH, or execve found nothing at the path), 126 when there is one but it can't be executed, 125 when the runtime's own preparation failed (the working directory, a set-up step)
    // Kernel facts: execve says ENOENT when the path leads nowhere (or the
    // script's interpreter doesn't exist), EACCES without the x bit or on a
    // noexec mount, ENOEXEC for a file it can't load. Shell: `/nonexistent;
    // echo $?` is 127, `/etc/passwd; echo $?` is 126.
    // BEGIN SOLUTION
    match stage {
        Stage::Lookup => NOT_FOUND,
        Stage::Exec if errno == Errno::ENOENT => NOT_FOUND,
        Stage::Exec => CANNOT_EXECUTE,
        Stage::Chdir | Stage::Setup => RUNTIME_ERROR,
    }
    // END SOLUTION
}
// ANCHOR_END: exec_failure_code

/// An error that carries its own exit code (126, 127, ...). Every other error
/// is a runtime error (125).
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code for an error: its own if it is a [`Failure`], else 125.
pub fn error_code(error: &anyhow::Error) -> i32 {
    error
        .downcast_ref::<Failure>()
        .map_or(RUNTIME_ERROR, |failure| failure.code)
}
