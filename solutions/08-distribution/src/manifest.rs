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
    // BEGIN SOLUTION
    use anyhow::Context;
    use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
    let config = store.image_bytes(id)?;
    let image = store.image(id)?;
    let mut layers = Vec::new();
    for diff_id in &image.rootfs.diff_ids {
        let tar = store.layer_tar(diff_id);
        let size = std::fs::metadata(&tar)
            .with_context(|| format!("layer {diff_id} has no tar in the store"))?
            .len();
        layers.push(Descriptor::new(
            MediaType::ImageLayer,
            size,
            crate::blobs::oci_digest(diff_id),
        ));
    }
    Ok(ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config.len() as u64,
            crate::blobs::oci_digest(id),
        ))
        .layers(layers)
        .build()?)
    // END SOLUTION
}
// ANCHOR_END: manifest
