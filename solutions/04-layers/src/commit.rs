//! Committing a build step: what a RUN or a COPY changed becomes one layer
//! of the image, and one line of its history.
//!
//! After a RUN, the container's overlay upper dir holds exactly what the
//! command changed (deletions as whiteouts); after a COPY, a staging dir
//! holds the files copied, laid out as in the image. Either tree becomes a
//! layer: its deterministic tar ([`crate::layer_tar`]), named by the tar's
//! sha256 ([`crate::digest::diff_id`]), unpacked once into the store as an
//! overlay lower dir ([`crate::unpack`]). The store layout is in
//! [`crate::store`]:
//!
//! ```text
//! ROOT/layers/sha256/<hex>/layer.tar   sha256sum layer.tar = <hex>
//! ROOT/layers/sha256/<hex>/diff/       the same, unpacked
//! ROOT/tmp/                            staging, renamed into place
//! ```

use crate::digest::{self, Digest};
use crate::image::ImageConfig;
use crate::store::Store;
use anyhow::Context;
use std::fs;
use std::path::Path;

// ANCHOR: commit_layer
/// Store the tree `dir` as a layer (file times clamped to `epoch`); return
/// its diff_id.
pub fn commit_layer(store: &Store, dir: &Path, epoch: u64) -> anyhow::Result<Digest> {
    // TODO(lesson-04): when this returns, the store holds the layer of `dir` exactly once, in the dir named by its diff_id (see Store::layer_dir): `layer.tar` (the deterministic tar of `dir`, whose sha256 is the diff_id returned) and `diff/` (that tar unpacked, whiteouts included: an overlay lower dir); a layer the store has already is not stored again, even when two builds commit it at once; nothing half-made is ever visible under a layer's name, even if the process is killed midway
    // Build the whole layer dir in a staging dir of the store (same
    // filesystem), then rename(2) it into place: a rename is atomic, and
    // it fails on a non-empty dir that is already there. The store's lock
    // (flock on store.lock) serializes writers. Shell:
    //   tar -C DIR --sort=name ... -cf T/layer.tar . && sha256sum T/layer.tar
    //   mkdir T/diff && tar -C T/diff -xpf T/layer.tar
    //   flock store.lock mv T layers/sha256/HEX
    // BEGIN SOLUTION
    use crate::layer_tar::write_layer;
    use crate::unpack::unpack_layer;
    use std::fs::File;
    use std::io::BufWriter;
    let staging = store.temp_dir("commit")?;
    let tar = staging.path().join("layer.tar");
    let file = File::create(&tar).with_context(|| format!("cannot create {}", tar.display()))?;
    let mut out = BufWriter::new(file);
    write_layer(dir, &mut out, epoch)?;
    // fsync(2): the layer is named by these bytes; they must be on disk
    // before the name is.
    out.into_inner()
        .context("cannot write the layer tar")?
        .sync_all()
        .context("cannot write the layer tar")?;
    let (diff_id, _) = digest::diff_id(File::open(&tar)?)?;
    if store.has_layer(&diff_id) {
        // Content addressing at work: the same bytes are already here.
        return Ok(diff_id);
    }
    let diff = staging.path().join("diff");
    fs::create_dir(&diff)?;
    unpack_layer(File::open(&tar)?, &diff)?;
    // Checked again under the lock: another build may have stored the
    // same layer since.
    let _lock = store.lock()?;
    if !store.has_layer(&diff_id) {
        let staged = staging.keep();
        fs::rename(&staged, store.layer_dir(&diff_id))
            .with_context(|| format!("cannot store layer {diff_id}"))?;
    }
    Ok(diff_id)
    // END SOLUTION
}
// ANCHOR_END: commit_layer

// ANCHOR: record_step
/// Add one build step to the image's config: `created_by` is the
/// instruction's text, `layer` the layer it made (None for ENV, CMD ...).
pub fn record_step(image: &mut ImageConfig, created_by: &str, layer: Option<Digest>, epoch: u64) {
    // TODO(lesson-04): when this returns, the config tells what the step did: one more history entry, created at `epoch` (written as RFC 3339 text), created_by the instruction, and marked as an empty layer exactly when the step made no layer; a step that made a layer also appends it to rootfs.diff_ids (bottom first), so that the n-th history entry that is not empty describes the n-th diff_id
    // The OCI image spec's config: `rootfs.diff_ids` lists the layers, and
    // `history` has one entry per step, layer or not (`docker history`
    // shows them). Shell: `skopeo inspect --config oci:DIR` shows both.
    // BEGIN SOLUTION
    use crate::image::{rfc3339, History};
    let empty_layer = layer.is_none();
    if let Some(layer) = layer {
        image.rootfs.diff_ids.push(layer);
    }
    image.history.push(History {
        created: rfc3339(epoch),
        created_by: created_by.to_string(),
        empty_layer,
        ..History::default()
    });
    // END SOLUTION
}
// ANCHOR_END: record_step

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::rfc3339;

    #[test]
    fn history_and_diff_ids_stay_in_step() {
        let mut image = ImageConfig::default();
        let layer = digest::of_bytes(b"layer");
        record_step(&mut image, "ENV A=1", None, 0);
        record_step(&mut image, "RUN true", Some(layer.clone()), 0);
        assert_eq!(image.rootfs.diff_ids, vec![layer]);
        assert!(image.history[0].empty_layer);
        assert!(!image.history[1].empty_layer);
        assert_eq!(image.history[1].created_by, "RUN true");
        assert_eq!(image.history[1].created, rfc3339(0));
    }
}
