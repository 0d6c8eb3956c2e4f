//! A layer has two digests once it is compressed.
//!
//! The registry knows the blob: the gzip'd bytes it stores and serves,
//! named by *their* sha256 (the descriptor's digest). The config knows the
//! diff_id: the sha256 of the tar *inside*. Verifying the blob proves the
//! download; verifying the diff_id proves the tar is the one the image's
//! config (and so the image id) vouches for. An uncompressed blob's two
//! digests are one.
//!
//! ```text
//! sha256sum blob               # the descriptor's digest
//! gunzip < blob | sha256sum    # the config's diff_id
//! ```

use crate::blobs::Compression;
use std::path::Path;
use step04::digest::Digest;
use step04::store::Store;

// ANCHOR: import
/// Add the layer blob at `blob`, compressed as `compression` says, to the
/// store as the layer `diff_id`.
pub fn import(
    store: &Store,
    blob: &Path,
    compression: Compression,
    diff_id: &Digest,
) -> anyhow::Result<()> {
    // TODO(lesson-08): afterwards the store holds the layer diff_id (already there: nothing to do, it is the same tar by its hash), made from the blob's tar: gzip'd blobs decompressed, uncompressed ones as they are; a tar that does not hash to diff_id is refused and leaves nothing in the store; zstd is refused in one line (minibox has no zstd)
    // Decompress into a file of the store's staging area, then hand that
    // file to the store, which hashes, unpacks and renames it in. Shell:
    // `gunzip < blob > ROOT/tmp/x/layer.tar && sha256sum ROOT/tmp/x/layer.tar`
    // BEGIN SOLUTION
    use anyhow::{bail, Context};
    use std::fs::File;
    if store.has_layer(diff_id) {
        return Ok(());
    }
    let staging = store.temp_dir("pulled-layer")?;
    let tar = staging.path().join("layer.tar");
    let mut out = File::create(&tar).with_context(|| format!("cannot create {}", tar.display()))?;
    let file = File::open(blob).with_context(|| format!("cannot open {}", blob.display()))?;
    match compression {
        Compression::None => {
            std::io::copy(&mut std::io::BufReader::new(file), &mut out)
                .with_context(|| format!("layer {diff_id}: copying"))?;
        }
        Compression::Gzip => {
            let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
            std::io::copy(&mut gz, &mut out)
                .with_context(|| format!("layer {diff_id}: not a gzip stream"))?;
        }
        Compression::Zstd => bail!("layer {diff_id}: zstd-compressed layers are not supported"),
    }
    drop(out);
    let (seen, _) = step04::digest::diff_id(File::open(&tar)?)?;
    if seen != *diff_id {
        bail!("layer {diff_id}: its tar hashes to {seen}, not to the diff_id the config names: refused");
    }
    let stored = store.add_layer(&tar)?;
    debug_assert_eq!(&stored, diff_id);
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: import
