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
    // BEGIN SOLUTION
    use anyhow::Context;
    use std::io::{Seek, SeekFrom};
    let digest = descriptor.digest().to_string();
    let blobs = format!("/v2/{}/blobs", repo.name);
    let registry: &Registry = repo.registry;
    let head = registry.request("HEAD", &format!("{blobs}/{digest}"), &[], Body::Empty)?;
    match head.status {
        200 => return Ok(Sent::Exists),
        404 => {}
        _ => return Err(head.error(&format!("blob {digest}"))),
    }
    let post = match mount_from {
        Some(from) => format!("{blobs}/uploads/?mount={digest}&from={from}"),
        None => format!("{blobs}/uploads/"),
    };
    let opened = registry.request("POST", &post, &[], Body::Empty)?;
    match opened.status {
        // 201 Created: the registry linked the blob (only a mount can).
        201 => return Ok(Sent::Mounted),
        202 => {}
        _ => return Err(opened.error(&format!("blob {digest}: opening an upload"))),
    }
    let mut location = opened
        .header("location")
        .context("the registry opened an upload without a Location")?
        .to_string();
    let size = descriptor.size();
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let chunk = chunk_size();
    let with_digest = |location: &str| {
        let sep = if location.contains('?') { '&' } else { '?' };
        format!("{location}{sep}digest={digest}")
    };
    let closed = if size <= chunk {
        let headers = [("Content-Type", "application/octet-stream")];
        registry.request(
            "PUT",
            &with_digest(&location),
            &headers,
            Body::File(&mut file, size),
        )?
    } else {
        let mut start = 0u64;
        while start < size {
            let len = chunk.min(size - start);
            file.seek(SeekFrom::Start(start))?;
            let range = format!("{}-{}", start, start + len - 1);
            let headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range.as_str()),
            ];
            let sent =
                registry.request("PATCH", &location, &headers, Body::File(&mut file, len))?;
            if sent.status != 202 {
                return Err(sent.error(&format!("blob {digest}: chunk {range}")));
            }
            location = sent
                .header("location")
                .context("the registry took a chunk without a Location")?
                .to_string();
            start += len;
        }
        registry.request("PUT", &with_digest(&location), &[], Body::Empty)?
    };
    if closed.status != 201 {
        return Err(closed.error(&format!("blob {digest}: closing the upload")));
    }
    Ok(Sent::Uploaded)
    // END SOLUTION
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
    // BEGIN SOLUTION
    use anyhow::bail;
    let manifest = crate::manifest::manifest(store, id)?;
    let _pin = store.pin()?;
    let config = store.image(id)?;
    for (descriptor, diff_id) in manifest.layers().iter().zip(&config.rootfs.diff_ids) {
        let from = mount_from(diff_id);
        let sent = push_blob(repo, descriptor, &store.layer_tar(diff_id), from.as_deref())?;
        repo.registry.progress().status(
            diff_id.as_str(),
            match sent {
                Sent::Exists => "Layer already exists",
                Sent::Mounted => "Mounted",
                Sent::Uploaded => "Pushed",
            },
        );
    }
    let staging = store.temp_dir("config")?;
    let path = staging.path().join("config.json");
    std::fs::write(&path, store.image_bytes(id)?)?;
    push_blob(repo, manifest.config(), &path, mount_from(id).as_deref())?;
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = step04::digest::of_bytes(&bytes);
    let media = oci_spec::image::MediaType::ImageManifest.to_string();
    let answer = repo.registry.request(
        "PUT",
        &format!("/v2/{}/manifests/{tag}", repo.name),
        &[("Content-Type", media.as_str())],
        Body::Bytes(&bytes),
    )?;
    if answer.status != 201 {
        return Err(answer.error(&format!("manifest {tag}")));
    }
    if let Some(said) = answer.header("docker-content-digest") {
        if said != digest.as_str() {
            bail!("manifest {tag}: the registry stored {said}, not the {digest} sent");
        }
    }
    Ok(digest)
    // END SOLUTION
}
// ANCHOR_END: push
