//! What step 02 gives: the code around the exercise, read it freely.
//!
//! - [`cli`]: the command line, `run` with docker's namespace flags;
//! - [`hostname`]: a host name checked, or a random one;
//! - [`clone`]: the clone as the runtime calls it, `clone_process` (your
//!   `clone_child`, its errors explained) and `clone_into` (a birth in a
//!   cgroup, for step 06);
//! - [`setup`]: the gate the child waits at, `become_root`,
//!   `set_hostname`, and `exit`: the init's small parts.

pub mod cli;
pub mod clone;
pub mod hostname;
pub mod setup;
