//! # Step 06: lockdown, as docker does it
//!
//! The finished runtime. Step 05's containers are isolated, not contained:
//! root inside is root on the host with every capability, and the runtime's
//! open files, environment and the kernel's settings are in reach. This
//! step closes each way out the way docker does, and adds resource limits:
//!
//! What the learner writes, one concept per file:
//!
//! - [`fds`]: no inherited file descriptor reaches the container;
//! - [`seal`] and [`trampoline`]: `exec` is out of the container's sight
//!   until its `execve`, and no container program is ever started from
//!   the runtime's own binary;
//! - [`capabilities`]: docker's 14 capabilities, no more;
//! - [`seccomp`]: the system calls denied without their capability;
//! - [`masks`]: the host's parts of `/proc` and `/sys` masked or read-only;
//! - [`cgroups`]: a cgroup of the container's own, with `--memory`,
//!   `--pids-limit`, `--cpus`, v2 or v1, whichever holds the controller;
//! - [`devices`]: docker's device rules, a BPF program on the container's
//!   v2 group (or v1's `devices.allow`): no host disk through `mknod`;
//! - [`policy`]: what a container is allowed, applied in its init and
//!   before each `execve`, in an order that matters.
//!
//! Everything else is given, under `src/given/` (re-exported here, so the
//! paths stay `step06::cli`, `step06::environ`, ...).

pub mod capabilities;
pub mod cgroups;
pub mod devices;
pub mod fds;
mod given;
pub mod masks;
pub mod policy;
pub mod seal;
pub mod seccomp;
pub mod trampoline;

pub use given::{attach, bpf, cli, environ, procfs};
