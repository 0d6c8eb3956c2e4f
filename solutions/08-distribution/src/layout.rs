//! The OCI image layout: images as plain files, the form `skopeo`,
//! `umoci`, `podman` and `docker save` (since 25) all read.
//!
//! ```text
//! app/
//! ├── oci-layout              {"imageLayoutVersion":"1.0.0"}
//! ├── index.json              the entry point: a descriptor per image manifest,
//! │                           with its name in annotations
//! └── blobs/sha256/
//!     ├── 6f1c...             the manifest (JSON)
//!     ├── 9a78...             the config (JSON; its digest is the image id)
//!     └── e4e9...             a layer (a tar)
//! ```
//!
//! Every file under `blobs/` is named by the sha256 of its bytes: a blob
//! shared by two images is there once. Shell: `skopeo copy
//! containers-storage:app oci:app:1`, `umoci unpack --image app:1 bundle`.

use oci_spec::image::ImageManifest;
use std::path::Path;
use step04::digest::Digest;
use step04::image::Reference;
use step04::store::Store;

/// The annotation that names an image in an index: its tag (skopeo's and
/// umoci's `DIR:TAG`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The whole name, as docker and containerd write it beside the tag.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// An image to save: its id, and the name it goes under (none: by id only).
#[derive(Debug, Clone)]
pub struct Named {
    pub id: Digest,
    pub name: Option<Reference>,
}

/// An image found in a layout.
#[derive(Debug, Clone)]
pub struct Found {
    /// The full name (`app:1`), when the index gives one.
    pub name: Option<String>,
    pub manifest: ImageManifest,
    /// The manifest's own digest.
    pub digest: Digest,
}

// ANCHOR: write
/// Write `images` of `store` as an OCI image layout at `dir`: a
/// directory to create, or an empty one.
pub fn write(store: &Store, dir: &Path, images: &[Named]) -> anyhow::Result<()> {
    // TODO(lesson-08): afterwards dir exists and is an OCI image layout: the oci-layout file (version 1.0.0); under blobs/sha256/, each image's config, manifest (the image's manifest, as JSON) and layer tars, each file named by the hex of its digest and written once however many images share it; and index.json (schema 2) with one manifest descriptor per image in the order given, annotated with the tag (REF_NAME) and the full NAME:TAG (IMAGE_NAME) when the image has a name
    // A layout is read by tools that trust nothing: a blob's bytes must
    // hash to its file name. Shell: `mkdir -p DIR/blobs/sha256 && cp
    // ROOT/layers/sha256/<hex>/layer.tar DIR/blobs/sha256/<hex>`.
    // BEGIN SOLUTION
    use anyhow::Context;
    use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType, OciLayoutBuilder};
    use std::collections::HashMap;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)
        .with_context(|| format!("cannot create {}", blobs.display()))?;
    let put = |digest: &Digest, bytes: &[u8]| -> anyhow::Result<()> {
        let path = blobs.join(digest.hex());
        if !path.exists() {
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    };
    let mut entries = Vec::new();
    for image in images {
        let manifest = crate::manifest::manifest(store, &image.id)?;
        put(&image.id, &store.image_bytes(&image.id)?)?;
        let config = store.image(&image.id)?;
        for diff_id in &config.rootfs.diff_ids {
            let path = blobs.join(diff_id.hex());
            if !path.exists() {
                std::fs::copy(store.layer_tar(diff_id), &path)
                    .with_context(|| format!("cannot copy layer {diff_id}"))?;
            }
        }
        let bytes = serde_json::to_vec(&manifest)?;
        let digest = step04::digest::of_bytes(&bytes);
        put(&digest, &bytes)?;
        let mut descriptor = Descriptor::new(
            MediaType::ImageManifest,
            bytes.len() as u64,
            crate::blobs::oci_digest(&digest),
        );
        if let Some(name) = &image.name {
            descriptor.set_annotations(Some(HashMap::from([
                (REF_NAME.to_string(), name.tag.clone()),
                (IMAGE_NAME.to_string(), name.to_string()),
            ])));
        }
        entries.push(descriptor);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()?;
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    std::fs::write(dir.join("oci-layout"), serde_json::to_vec(&layout)?)?;
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: write

// ANCHOR: read
/// The images of the OCI image layout at `dir`, in its index's order.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Found>> {
    // TODO(lesson-08): return one Found per image manifest that dir's index.json names (a descriptor that names a nested index stands for that index's entries of this platform, an entry naming no platform being every platform's, in the index's order and named as the index is), each manifest read from its blob only after its bytes proved to be the descriptor's (verified as it is read), its name the IMAGE_NAME annotation, else a REF_NAME that is a whole name rather than a bare tag (it holds a `:` or a `/`, as `solo:3` or `lab/pathy`), else none; a dir without an oci-layout of version 1.0.0 is refused, as is an index that names nothing
    // The index itself has no digest to check it against: it is the root
    // of trust of a layout, as a tag is of a registry. Everything below it
    // is checked. Shell: `jq .manifests index.json`.
    // BEGIN SOLUTION
    use crate::blobs::BlobSource as _;
    use anyhow::{bail, Context};
    use oci_spec::image::{Descriptor, ImageIndex, OciLayout};
    let layout = OciLayout::from_file(dir.join("oci-layout")).with_context(|| {
        format!(
            "{}: not an OCI image layout (no oci-layout file)",
            dir.display()
        )
    })?;
    if layout.image_layout_version() != "1.0.0" {
        bail!(
            "{}: image layout version {}, not 1.0.0",
            dir.display(),
            layout.image_layout_version()
        );
    }
    let index = ImageIndex::from_file(dir.join("index.json"))
        .with_context(|| format!("{}: no readable index.json", dir.display()))?;
    let source = crate::blobs::LayoutBlobs(dir);
    let mut found = Vec::new();
    let mut todo: Vec<Descriptor> = index.manifests().iter().rev().cloned().collect();
    while let Some(descriptor) = todo.pop() {
        let mut bytes = Vec::new();
        crate::verify::copy_verified(source.open(&descriptor)?, &mut bytes, &descriptor)?;
        let media = descriptor.media_type().to_string();
        if crate::blobs::is_index(&media) {
            let nested = ImageIndex::from_reader(&bytes[..]).context("a nested index")?;
            let (os, arch) = crate::blobs::platform();
            for mut child in nested.manifests().iter().rev().cloned() {
                let ours = child.platform().as_ref().is_none_or(|p| {
                    p.os().to_string() == os && p.architecture().to_string() == arch
                });
                if ours {
                    if child.annotations().is_none() {
                        child.set_annotations(descriptor.annotations().clone());
                    }
                    todo.push(child);
                }
            }
            continue;
        }
        if !crate::blobs::is_manifest(&media) {
            continue;
        }
        let manifest = ImageManifest::from_reader(&bytes[..])
            .with_context(|| format!("manifest {}: not an image manifest", descriptor.digest()))?;
        let notes = descriptor.annotations().clone().unwrap_or_default();
        let name = notes
            .get(IMAGE_NAME)
            .or_else(|| {
                notes
                    .get(REF_NAME)
                    .filter(|n| n.contains(':') || n.contains('/'))
            })
            .cloned();
        found.push(Found {
            name,
            manifest,
            digest: step04::digest::of_bytes(&bytes),
        });
    }
    if found.is_empty() {
        bail!("{}: its index names no image", dir.display());
    }
    Ok(found)
    // END SOLUTION
}
// ANCHOR_END: read
