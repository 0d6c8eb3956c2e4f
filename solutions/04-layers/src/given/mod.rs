//! Given code: what step 04 needs around the learner's image machinery, and
//! has no exercise in it. Read it; `lib.rs` re-exports each module under
//! its own name (`crate::store`, `step04::cli` ...), so later steps and the
//! learner's files use the same paths.
//!
//! - [`store`]: the content-addressed store under `--root`; [`image`]: the
//!   config and its JSON; [`image_fs`]: looking a path up in a layer stack;
//! - [`builder`] and [`dockerfile`]: `build`, one instruction at a time;
//!   [`context`]: the build context, read by file descriptors only;
//!   [`staging`]: laying COPY's files out as the layer will hold them;
//! - [`container`], [`monitor`], [`lifecycle`], [`state`], [`tty`]: running
//!   containers, detached or not, their records, `stop`, `rm`, `logs`, `-t`;
//! - [`base`]: the built-in image `base`; [`show`]: `images`, `history`,
//!   `inspect`; [`cli`]: the commands; [`fault`]: crash points for tests.

pub mod base;
pub mod builder;
pub mod cli;
pub mod container;
pub mod context;
pub mod dockerfile;
pub mod fault;
mod fuzz;
pub mod image;
pub mod image_fs;
#[cfg(test)]
mod layer_tests;
pub mod lifecycle;
pub mod monitor;
pub mod show;
pub mod staging;
pub mod state;
pub mod store;
pub mod tty;
