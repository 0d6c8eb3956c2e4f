//! # Step 01: a container is a process
//!
//! Before namespaces, images or networks, a container is a program that starts
//! another program and waits for it. Everything later in the workshop happens
//! between the `fork` and the `exec` you write here.
//!
//! What you write, one concept per file:
//!
//! - [`run`] (here): the supervisor as a whole, its parts in an order that
//!   loses no signal and no report;
//! - [`supervise`]: the reaper of orphans with its signals blocked, and the
//!   wait loop that forwards signals and reaps;
//! - [`spawn`]: the fork, and the exec report: how the child tells the
//!   parent that its `execve` failed, and how the parent learns it;
//! - [`exec`]: the child's way to the command (signals, `-w`, `execve`);
//! - [`status`]: how a child's end, or a failed exec, becomes docker's exit
//!   code (125, 126, 127, 128 + N).
//!
//! Everything else is given, under [`given`]: the command line ([`cli`]),
//! the environment rule ([`env`]), the C strings and `PATH` search, the
//! report's bytes and messages, and later steps' hooks.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "minibox builds containers from Linux kernel features, so it needs Linux. \
     On macOS or Windows, work inside a Linux VM: see the book, chapter \"Setup\"."
);

pub mod exec;
pub mod given;
pub mod spawn;
pub mod status;
pub mod supervise;

pub use given::{cli, env};
pub use status::Failure;

use std::path::PathBuf;

/// What `run` was asked to do, independent of how it was asked.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// The program and its arguments, `argv[0]` first.
    pub command: Vec<String>,
    /// The command's full environment, in order, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// Where the command starts; `None` keeps the runtime's directory.
    pub workdir: Option<PathBuf>,
}

// ANCHOR: run
/// Run one command as a supervised child and return the exit code the
/// runtime should exit with.
pub fn run(spec: &RunSpec) -> anyhow::Result<i32> {
    // TODO(lesson-01): the command ran as this process's child, supervised until it ended, and the result is docker's exit code for how it ended; a command that never ran is the error its exec report stands for, and no child is left behind
    // Everything the child must inherit exists before the fork; a signal
    // or an orphan's end that comes between the fork and the wait loop
    // must still be seen there. The parts are yours: [`exec::Prepared`]
    // (given), `supervise`, `spawn`, `status`. Shell: `sh -c 'CMD'; echo $?`.
    // BEGIN SOLUTION
    let prepared = exec::Prepared::new(spec)?;
    let supervisor = supervise::Supervisor::start()?;
    let report = spawn::ExecReport::new()?;
    let child = spawn::spawn(&prepared, &report)?;
    report.wait_for_exec(child, &prepared)?;
    let status = supervisor.wait(child)?;
    Ok(status::exit_code(status))
    // END SOLUTION
}
// ANCHOR_END: run
