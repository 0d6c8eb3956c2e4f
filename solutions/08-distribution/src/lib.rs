//! # Step 08: images out of the store and in
//!
//! The finished runtime. Until now an image lived in minibox's store only.
//! This step gives it the forms the rest of the container world reads: an
//! OCI image layout (what `skopeo`, `umoci` and `podman` take), docker's
//! archive (`docker load`, `podman load`), and a registry speaking the
//! distribution API (`docker pull`, `podman pull`). All three rest on one
//! idea: a *descriptor* (media type, digest, size) names a blob by its
//! hash, and whoever receives a blob checks it before trusting it.
//!
//! What the learner writes, one concept per file:
//!
//! - [`manifest`]: an image's manifest, its descriptors;
//! - [`verify`]: a blob checked as it streams in;
//! - [`layers`]: a layer's second digest (compressed blob, uncompressed tar);
//! - [`layout`]: the OCI image layout, written and read;
//! - [`fetch`]: an image taken in top-down, from any source;
//! - [`pull`]: a registry's manifest for a tag, and its blobs;
//! - [`push`]: blobs and a manifest into a registry.
//!
//! Everything else is given, under `src/given/` (re-exported here, so the
//! paths stay `step08::http`, `step08::cli`, ...).

pub mod fetch;
mod given;
pub mod layers;
pub mod layout;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod verify;

pub use given::{archive, blobs, cli, http, progress, reference, sources};
