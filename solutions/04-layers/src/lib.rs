//! # Step 04: images made of shared, content-addressed layers
//!
//! Containers now run from **images**. `run IMAGE` mounts an overlayfs whose
//! lower dirs are the image's layers (top first) and whose upper dir is the
//! container's own writable layer: the image never changes.
//!
//! - [`digest`]: layers are named by the SHA-256 of their tar (diff_id);
//!   stacks by chain_id; images by the digest of their config;
//! - [`store`]: the content-addressed store under `--root`, each layer once;
//! - [`tarball`] and [`whiteout`]: layers as deterministic tars, deletions
//!   converted between overlayfs (char device 0/0, opaque xattr) and OCI
//!   (`.wh.NAME`, `.wh..wh..opq`);
//! - [`overlay`]: the union mount;
//! - [`container`]: a container of an image, on top of steps 02 and 03;
//! - [`dockerfile`] and [`builder`]: `build`, with a cache; [`context`]:
//!   the build context, read by file descriptors only;
//! - [`base`]: the built-in image `base`; [`image`]: the config;
//!   [`show`]: `images`, `history`, `inspect`; [`cli`]: the commands.

pub mod base;
pub mod builder;
pub mod cli;
pub mod container;
pub mod context;
pub mod digest;
pub mod dockerfile;
pub mod exec;
pub mod fault;
mod fuzz;
pub mod image;
pub mod image_fs;
pub mod lifecycle;
pub mod monitor;
pub mod overlay;
pub mod pipes;
pub mod show;
pub mod staging;
pub mod state;
pub mod store;
pub mod tarball;
pub mod tty;
pub mod whiteout;
