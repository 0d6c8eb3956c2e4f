//! Taking an image in, top-down, every hop verified.
//!
//! ```text
//! manifest (its digest known)  ─names─▶  config (digest)  ─lists─▶  diff_ids
//!        └──names──▶ layer blobs (digests) ──decompress──▶ tars ──hash──▶ = diff_ids?
//! ```
//!
//! The same walk takes an image from a layout on disk (`load`) and from a
//! registry (`pull`); only where the bytes come from differs.

use crate::blobs::BlobSource;
use oci_spec::image::ImageManifest;
use step04::digest::Digest;
use step04::store::Store;

// ANCHOR: image
/// Take the image `manifest` describes, its blobs from `source`, into the
/// store. Returns the image id.
pub fn image(
    store: &Store,
    source: &dyn BlobSource,
    manifest: &ImageManifest,
) -> anyhow::Result<Digest> {
    // TODO(lesson-08): afterwards the store holds the image: its config exactly as received (its digest is the image id) and every layer it lists, each layer blob verified against its descriptor and taken in as the layer the config's rootfs.diff_ids names at the same position, as the layer step does; a layer already in the store is not fetched again; the config must list as many diff_ids as the manifest has layers; on any error nothing of this image is an image in the store
    // Verify the config before trusting what it lists; stage each blob in a
    // file of the store's staging area (the store's temp dirs vanish on drop).
    // Shell: `curl .../blobs/$CONFIG | tee config | sha256sum`, then each
    // layer: `curl .../blobs/$L > blob; sha256sum blob; gunzip < blob | sha256sum`.
    // BEGIN SOLUTION
    use anyhow::{bail, Context};
    let config_descriptor = manifest.config();
    let mut config = Vec::new();
    crate::verify::copy_verified(
        source.open(config_descriptor)?,
        &mut config,
        config_descriptor,
    )
    .context("the image's config")?;
    let parsed: step04::image::ImageConfig =
        serde_json::from_slice(&config).context("the image's config is not an image config")?;
    let diff_ids = &parsed.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers().len() {
        bail!(
            "the manifest has {} layers but the config lists {} diff_ids",
            manifest.layers().len(),
            diff_ids.len()
        );
    }
    let _pin = store.pin()?;
    for (descriptor, diff_id) in manifest.layers().iter().zip(diff_ids) {
        if store.has_layer(diff_id) {
            continue;
        }
        let compression = crate::blobs::compression(descriptor.media_type())?;
        let staging = store.temp_dir("blob")?;
        let path = staging.path().join("blob");
        let mut file = std::fs::File::create(&path)?;
        crate::verify::copy_verified(source.open(descriptor)?, &mut file, descriptor)?;
        drop(file);
        crate::layers::import(store, &path, compression, diff_id)?;
    }
    store.put_image_bytes(&config)
    // END SOLUTION
}
// ANCHOR_END: image
