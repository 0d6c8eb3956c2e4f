//! The exec report's bytes, and the one line a failure becomes.
//!
//! A report is one `write(2)` of at most `PIPE_BUF` (4096) bytes, which the
//! kernel makes atomic: the parent reads all of it or nothing. It holds the
//! stage that failed (4 bytes), the errno (4 bytes), then for a set-up step
//! the description of what failed. No report at all (end-of-file at once)
//! means the `execve` happened.

use crate::exec::Prepared;
use crate::spawn::Stage;
use crate::status::{exec_failure_code, Failure};
use nix::errno::Errno;

// ANCHOR: message
/// What a child that could not become the command tells its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub stage: Stage,
    pub errno: Errno,
    /// For [`Stage::Setup`]: which step failed; empty otherwise.
    pub what: String,
}
// ANCHOR_END: message

impl Message {
    /// The bytes to write, in one `write`.
    pub fn encode(&self) -> Vec<u8> {
        let what = &self.what.as_bytes()[..self.what.len().min(4000)];
        let mut bytes = Vec::with_capacity(8 + what.len());
        bytes.extend_from_slice(&(self.stage as u32).to_ne_bytes());
        bytes.extend_from_slice(&(self.errno as i32).to_ne_bytes());
        bytes.extend_from_slice(what);
        bytes
    }

    /// The message in `bytes` (all that was read), or `None` if they are
    /// not one (too short, an unknown stage).
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let stage = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?);
        let errno = i32::from_ne_bytes(bytes.get(4..8)?.try_into().ok()?);
        let stage = [Stage::Chdir, Stage::Lookup, Stage::Exec, Stage::Setup]
            .into_iter()
            .find(|s| *s as u32 == stage)?;
        Some(Message {
            stage,
            errno: Errno::from_raw(errno),
            what: String::from_utf8_lossy(&bytes[8..]).into_owned(),
        })
    }

    /// The error the runtime exits with: the code from
    /// [`exec_failure_code`], and one line that names the command (or the
    /// directory, or the set-up step) and why.
    pub fn failure(&self, cmd: &Prepared) -> Failure {
        let code = exec_failure_code(self.stage, self.errno);
        let name = &cmd.name;
        let why = self.errno.desc().to_lowercase();
        let message = match self.stage {
            Stage::Setup => format!("{}: {why}", self.what),
            Stage::Chdir => {
                let dir = cmd
                    .workdir
                    .as_ref()
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("cannot enter working directory {dir:?}: {why}")
            }
            Stage::Lookup => format!("exec: {name:?}: executable file not found in $PATH"),
            Stage::Exec => format!("exec: {name:?}: {why}"),
        };
        Failure::new(code, message)
    }
}

/// The error for bytes that are not a [`Message`].
pub fn garbled() -> anyhow::Error {
    anyhow::anyhow!("the container's set-up sent a garbled report")
}

/// The errno behind an error, for [`crate::spawn::ExecReport::fail_setup`]:
/// the first `Errno` in its chain of causes, or EIO when there is none.
pub fn errno_of(error: &anyhow::Error) -> Errno {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Errno>().copied())
        .unwrap_or(Errno::EIO)
}
