//! What step 06 gives: the code around the exercise, read it freely.
//!
//! - [`bpf`]: eBPF instructions as the kernel encodes them, and the
//!   bpf(2) calls that load a device program and attach it to a group;
//! - [`environ`]: the init's environment and command line, overwritten
//!   where `/proc/PID/environ` and `/proc/PID/cmdline` read them;
//! - [`procfs`]: one field of `/proc/PID/status`;
//! - [`attach`]: the cgroup, its device rules and a loopback that is up,
//!   attached to a container beside its network;
//! - [`cli`]: step 05's commands, `--privileged`, `--cap-add/--cap-drop`,
//!   `--security-opt seccomp=unconfined`, and the limits.

pub mod attach;
pub mod bpf;
pub mod cli;
pub mod environ;
pub mod procfs;
