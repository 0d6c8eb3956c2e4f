//! An image's manifest: the one document that names all of an image's
//! blobs, each by a *descriptor* (media type, digest, size).
//!
//! ```json
//! {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
//!  "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:<image id>","size":1021},
//!  "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:<diff_id>","size":2242560}]}
//! ```
//!
//! The manifest's own digest is what `NAME@sha256:...` pins: it covers the
//! config's digest, which covers the layers' diff_ids. One hash at the top
//! vouches for every byte below it.

use oci_spec::image::ImageManifest;
use step04::digest::Digest;
use step04::store::Store;

// ANCHOR: manifest
/// The manifest of the image `id` of `store`, its layers as the store
/// keeps them (uncompressed tars).
pub fn manifest(store: &Store, id: &Digest) -> anyhow::Result<ImageManifest> {
    // TODO(lesson-08): return an OCI image manifest (schema 2, its own media type set) whose config descriptor is the image's config exactly as stored (its digest is the image id, its size the config's bytes) and whose layers are one descriptor per rootfs.diff_ids entry, bottom first: media type the uncompressed OCI layer tar, digest the diff_id, size the bytes of that layer's tar in the store
    // An uncompressed layer's blob digest *is* its diff_id: the same hash
    // the config lists. (A gzip'd layer would have a second one.) Shell:
    // `sha256sum ROOT/layers/sha256/<hex>/layer.tar`, `stat -c %s` of it.
    todo!(
        "lesson-08: return an OCI image manifest (schema 2, its own media type set) whose config descriptor is the image's config exactly as stored (its digest is the image id, its size the config's bytes) and whose layers are one descriptor per rootfs.diff_ids entry, bottom first: media type the uncompressed OCI layer tar, digest the diff_id, size the bytes of that layer's tar in the store"
    );
}
// ANCHOR_END: manifest
