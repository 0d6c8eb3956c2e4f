//! # Step 03: a root filesystem of its own
//!
//! `run --rootfs DIR` makes DIR the container's `/`: by default with
//! `pivot_root`, or with plain `chroot` (`--chroot`) to see why that isn't
//! enough. The container gets its own `/proc`, `/dev`, `/sys` (read-only)
//! and `/tmp`; `--read-only` makes `/` itself read-only.
//!
//! On top of step 02: the runtime's side is step 02's [`step02::start`]; the
//! child runs [`init::container_init`], which adds the root switch between
//! step 02's mount privacy and its PID 1 loop.
//!
//! What you write, one concept per file:
//!
//! - [`rootfs`]: the root switch as a whole ([`rootfs::switch_root`]), the
//!   rootfs made a mount point, `pivot_root` and the old root's detach,
//!   plain `chroot` (to see why it isn't enough);
//! - [`mounts`]: what the container finds mounted (`/proc`, `/dev` and its
//!   devices, `/sys`, `/tmp`) and `--read-only`.
//!
//! Everything else is given, under [`given`], and re-exported here under
//! its own name.

pub mod given;
pub mod mounts;
pub mod rootfs;

pub use given::{cli, init, layout};

use std::path::PathBuf;

/// A failed step of the root switch: what was being done, and the kernel's
/// answer.
pub type Failed = (String, nix::errno::Errno);

/// How the container enters its rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enter {
    /// `pivot_root`: the rootfs becomes the root mount; the host's is gone.
    Pivot,
    /// `chroot`: only this process's idea of `/` changes. Escapable.
    Chroot,
}

/// A step 02 container with a root filesystem.
#[derive(Debug, Clone)]
pub struct Spec {
    pub container: step02::ContainerSpec,
    /// The rootfs directory: absolute, with no symbolic links.
    pub rootfs: PathBuf,
    pub enter: Enter,
    pub read_only: bool,
    /// A tmpfs of its own on `/tmp` (step 03 always; step 04 with
    /// `--read-only` only, so that a build's RUN can leave files in `/tmp`).
    pub tmpfs_tmp: bool,
}

// ANCHOR: run
/// Run a container in its rootfs; return the code to exit with.
pub fn run(spec: &Spec) -> anyhow::Result<i32> {
    step02::start(&spec.container, |cmd, report, gate| {
        init::container_init(spec, cmd, report, gate)
    })
}
// ANCHOR_END: run
