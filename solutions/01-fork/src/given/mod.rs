//! Given code: what step 01 needs around the supervisor you write, with no
//! exercise in it. Read it; `lib.rs` re-exports [`cli`] and [`env`] under
//! their own names (`step01::cli`, `step01::env`), and the learner's files
//! re-export the rest where later steps look for it (`step01::exec::Prepared`).
//!
//! - [`cli`]: the command line, and how errors are printed (one line);
//! - [`env`]: the command's environment, docker's rule;
//! - [`child`]: the command turned into `execve`'s C strings before the
//!   fork, the `PATH` search, the signal dispositions reset, the terminal;
//! - [`wire`]: the bytes of an exec report, and the one line it becomes;
//! - [`lockdown`]: the hooks later steps run in the child around `execve`.

pub mod child;
pub mod cli;
pub mod env;
pub mod lockdown;
pub mod wire;
