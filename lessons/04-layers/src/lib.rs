//! # Step 04: images made of shared, content-addressed layers
//!
//! Containers now run from **images**. `run IMAGE` mounts an overlayfs whose
//! lower dirs are the image's layers (top first) and whose upper dir is the
//! container's own writable layer: the image never changes. `build` turns
//! each RUN and COPY of a Dockerfile into one more layer.
//!
//! What you write, one concept per file:
//!
//! - [`digest`]: a layer's name, the sha256 of its tar (diff_id), and the
//!   chain_ids of a stack;
//! - [`layer_tar`]: a tree as a deterministic tar, overlayfs deletions as
//!   OCI `.wh.` markers; [`whiteout`]: overlayfs's deletion marks;
//! - [`unpack`]: a layer tar back into a directory, never outside it;
//! - [`commit`]: a RUN's or COPY's tree stored once as a layer, and the
//!   config's diff_ids and history; [`cache_key`]: the build cache's key;
//! - [`overlay`]: the union mount's options, and the mount;
//! - [`beneath`], [`private_dirs`], [`pipes`], [`exec`]: the security edges
//!   (COPY confined to its context, a store only its owner can read, a
//!   container's stdio, `exec` joining a container's namespaces).
//!
//! Everything else is given, under [`given`], and re-exported here under
//! its own name.

pub mod beneath;
pub mod cache_key;
pub mod commit;
pub mod digest;
pub mod exec;
pub mod given;
pub mod layer_tar;
pub mod overlay;
pub mod pipes;
pub mod private_dirs;
pub mod unpack;
pub mod whiteout;

pub use given::{
    base, builder, cli, container, context, dockerfile, fault, image, image_fs, lifecycle, monitor,
    show, staging, state, store, tty,
};
