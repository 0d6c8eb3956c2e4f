//! Given code: what step 03 needs around the root switch you write, with no
//! exercise in it. Read it; `lib.rs` re-exports each module under its own
//! name (`crate::init`, `step03::cli` ...), so later steps use the same
//! paths.
//!
//! - [`layout`]: where the container's mounts go (each on a real directory
//!   of the image), in what order, with your functions of
//!   [`crate::mounts`], and the usual links in `/dev`;
//! - [`init`]: the container's init, step 02's with the root switch
//!   ([`crate::rootfs::switch_root`]) between mount privacy and PID 1;
//! - [`cli`]: `run --rootfs DIR [--chroot] [--read-only]`.

pub mod cli;
pub mod init;
pub mod layout;
