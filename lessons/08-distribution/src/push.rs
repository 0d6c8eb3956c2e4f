//! `push`: an image of the store into a registry.
//!
//! ```text
//! HEAD /v2/app/blobs/sha256:e4e9                        → 200: there already, skip
//! POST /v2/app/blobs/uploads/?mount=sha256:e4e9&from=a  → 201: linked from repository a, no bytes sent
//! POST /v2/app/blobs/uploads/                           → 202, Location: <upload URL>
//! PUT  <upload URL>&digest=sha256:e4e9   (the blob)     → 201           monolithic
//!   or PATCH <upload URL>  Content-Range: 0-16777215   → 202, Location  chunked, a chunk at a time,
//!      PUT <last Location>&digest=sha256:e4e9 (empty)  → 201           then closed by its digest
//! PUT  /v2/app/manifests/1  (the manifest, last)        → 201
//! ```
//!
//! The manifest goes last: a registry refuses a manifest whose blobs it
//! does not have, so nobody can pull a half-pushed image. The registry
//! checks every blob against the digest the closing PUT names.

use crate::http::{Body, Registry};
use crate::pull::Repository;
use oci_spec::image::Descriptor;
use std::path::Path;
use step04::digest::Digest;
use step04::store::Store;

/// What became of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The repository had it.
    Exists,
    /// Linked from another repository of the registry.
    Mounted,
    /// Its bytes were sent.
    Uploaded,
}

/// Blobs up to this size go in one PUT; larger ones in PATCHes of this
/// size (`MINIBOX_PUSH_CHUNK` bytes, 16 MiB by default).
pub fn chunk_size() -> u64 {
    std::env::var("MINIBOX_PUSH_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(16 * 1024 * 1024)
}

// ANCHOR: push_blob
/// Make sure `repo` has the blob `descriptor` names, whose bytes are the
/// file at `path`; `mount_from` is another repository of the same registry
/// that had it.
pub fn push_blob(
    repo: &Repository,
    descriptor: &Descriptor,
    path: &Path,
    mount_from: Option<&str>,
) -> anyhow::Result<Sent> {
    // TODO(lesson-08): afterwards repo has the blob, found by HEAD (then Exists), else mounted from mount_from (then Mounted; a registry may answer a mount with a fresh upload instead), else uploaded (Uploaded): an upload is opened by POST, its bytes sent to the Location the registry gives (in one PUT when the blob is at most the chunk size, else in PATCHes of the chunk size, each with its Content-Range, each answer's Location the next one's URL), and closed by a PUT naming the digest; every answer the sequence does not expect is an error in the registry's words
    // The upload URL may carry a query already: the digest is added with
    // `&` or `?` as fits. Shell: see the sequence at the top of this file.
    todo!(
        "lesson-08: afterwards repo has the blob, found by HEAD (then Exists), else mounted from mount_from (then Mounted; a registry may answer a mount with a fresh upload instead), else uploaded (Uploaded): an upload is opened by POST, its bytes sent to the Location the registry gives (in one PUT when the blob is at most the chunk size, else in PATCHes of the chunk size, each with its Content-Range, each answer's Location the next one's URL), and closed by a PUT naming the digest; every answer the sequence does not expect is an error in the registry's words"
    );
}
// ANCHOR_END: push_blob

// ANCHOR: push
/// Push the image `id` of `store` to `repo` as `tag`: its blobs, then its
/// manifest. `mount_from` tells, for a blob's digest, another repository
/// of this registry known to have it. Returns the manifest's digest.
pub fn push(
    store: &Store,
    repo: &Repository,
    tag: &str,
    id: &Digest,
    mount_from: &dyn Fn(&Digest) -> Option<String>,
) -> anyhow::Result<Digest> {
    // TODO(lesson-08): afterwards repo holds the image under tag: every layer and the config pushed (the config's bytes exactly as the store holds them; push_blob sends a file, so they go into one first), then the manifest (the image's manifest, as JSON) put under the tag with its media type as Content-Type; return the sha256 of the manifest bytes sent, which the registry's Docker-Content-Digest answer must equal
    // Shell: `curl -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'
    // --data-binary @manifest.json http://HOST/v2/NAME/manifests/TAG`
    todo!(
        "lesson-08: afterwards repo holds the image under tag: every layer and the config pushed (the config's bytes exactly as the store holds them; push_blob sends a file, so they go into one first), then the manifest (the image's manifest, as JSON) put under the tag with its media type as Content-Type; return the sha256 of the manifest bytes sent, which the registry's Docker-Content-Digest answer must equal"
    );
}
// ANCHOR_END: push
