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
    todo!(
        "lesson-08: afterwards dir exists and is an OCI image layout: the oci-layout file (version 1.0.0); under blobs/sha256/, each image's config, manifest (the image's manifest, as JSON) and layer tars, each file named by the hex of its digest and written once however many images share it; and index.json (schema 2) with one manifest descriptor per image in the order given, annotated with the tag (REF_NAME) and the full NAME:TAG (IMAGE_NAME) when the image has a name"
    );
}
// ANCHOR_END: write

// ANCHOR: read
/// The images of the OCI image layout at `dir`, in its index's order.
pub fn read(dir: &Path) -> anyhow::Result<Vec<Found>> {
    // TODO(lesson-08): return one Found per image manifest that dir's index.json names (a descriptor that names a nested index stands for that index's entries of this platform, an entry naming no platform being every platform's, in the index's order and named as the index is), each manifest read from its blob only after its bytes proved to be the descriptor's (verified as it is read), its name the IMAGE_NAME annotation, else a REF_NAME that is a whole name rather than a bare tag (it holds a `:` or a `/`, as `solo:3` or `lab/pathy`), else none; a dir without an oci-layout of version 1.0.0 is refused, as is an index that names nothing
    // The index itself has no digest to check it against: it is the root
    // of trust of a layout, as a tag is of a registry. Everything below it
    // is checked. Shell: `jq .manifests index.json`.
    todo!(
        "lesson-08: return one Found per image manifest that dir's index.json names (a descriptor that names a nested index stands for that index's entries of this platform, an entry naming no platform being every platform's, in the index's order and named as the index is), each manifest read from its blob only after its bytes proved to be the descriptor's (verified as it is read), its name the IMAGE_NAME annotation, else a REF_NAME that is a whole name rather than a bare tag (it holds a `:` or a `/`, as `solo:3` or `lab/pathy`), else none; a dir without an oci-layout of version 1.0.0 is refused, as is an index that names nothing"
    );
}
// ANCHOR_END: read
