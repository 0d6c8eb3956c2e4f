//! # Step 01: a container is a process
//!
//! Before namespaces, images or networks, a container is a program that starts
//! another program and waits for it. Everything later in the workshop happens
//! between the `fork` and the `exec` you write here.
//!
//! The path of `minibox run -- CMD`:
//!
//! 1. [`cli`] reads the command line; bad input is one line and exit 125.
//! 2. [`env`] builds the command's environment (not the runtime's own).
//! 3. [`supervise::Supervisor::start`] blocks the signals the runtime will
//!    forward and makes the runtime the reaper of orphans.
//! 4. [`spawn::spawn`] forks; the child runs [`exec::exec_child`], which
//!    resets signals, enters the working directory and `execve`s the command.
//! 5. [`spawn::ExecReport::wait_for_exec`] learns from a close-on-exec pipe
//!    whether the `execve` happened (126/127 come from here).
//! 6. [`supervise::Supervisor::wait`] forwards signals and reaps children
//!    until the command exits; [`status::exit_code`] turns that into ours.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "minibox builds containers from Linux kernel features, so it needs Linux. \
     On macOS or Windows, work inside a Linux VM: see the book, chapter \"Setup\"."
);

pub mod cli;
pub mod env;
pub mod exec;
pub mod spawn;
pub mod status;
pub mod supervise;

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
    let prepared = exec::Prepared::new(spec)?;
    let supervisor = supervise::Supervisor::start()?;
    let report = spawn::ExecReport::new()?;
    let child = spawn::spawn(&prepared, &report)?;
    report.wait_for_exec(child, &prepared)?;
    let status = supervisor.wait(child)?;
    Ok(status::exit_code(status))
}
// ANCHOR_END: run
