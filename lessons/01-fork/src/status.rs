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
    // TODO(lesson-01): map the child's end to an exit code: its own code if it exited, 128 + N if signal N killed it
    // `WaitStatus::Exited` and `WaitStatus::Signaled` are the two endings that
    // matter; anything else means the runtime lost track: call it a runtime error.
    todo!(
        "lesson-01: map the child's end to an exit code: its own code if it exited, 128 + N if signal N killed it"
    );
}
// ANCHOR_END: exit_code

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
