//! The names of things in manifests: media types, and digests in the two
//! spellings (the store's and the oci-spec crate's).

use anyhow::bail;
use oci_spec::image::{Descriptor, MediaType};
use step04::digest::Digest;

/// Docker's own manifest media types (schema 2), which registries and
/// podman still serve and accept beside the OCI ones.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What a pull asks for (the `Accept` header): any single-image manifest,
/// or an index of them, in either family.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests, configs and indexes are small documents; more than this
/// from a registry is refused rather than kept in memory.
pub const DOCUMENT_LIMIT: u64 = 4 * 1024 * 1024;

/// The store's digest in the crate's type.
pub fn oci_digest(digest: &Digest) -> oci_spec::image::Digest {
    digest
        .as_str()
        .parse()
        .expect("a store digest is a valid sha256 digest")
}

/// A descriptor's digest in the store's type; only sha256 is spoken here
/// (the spec allows sha512 too, which no common tool writes).
pub fn digest_of(descriptor: &Descriptor) -> anyhow::Result<Digest> {
    let digest = descriptor.digest().to_string();
    if !digest.starts_with("sha256:") {
        bail!("{digest}: only sha256 digests are supported");
    }
    Digest::parse(&digest)
}

/// How a layer blob is compressed, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A layer's compression, or an error for what is not a layer.
pub fn compression(media_type: &MediaType) -> anyhow::Result<Compression> {
    Ok(match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Compression::None,
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Compression::Gzip,
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Compression::Zstd,
        MediaType::Other(t) if t == DOCKER_LAYER => Compression::None,
        MediaType::Other(t) if t == DOCKER_LAYER_GZIP => Compression::Gzip,
        other => bail!("{other}: not a layer media type minibox knows"),
    })
}

/// A manifest of one image (OCI or docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == MediaType::ImageManifest.to_string() || media_type == DOCKER_MANIFEST
}

/// An index of manifests, one per platform (OCI index or docker list).
pub fn is_index(media_type: &str) -> bool {
    media_type == MediaType::ImageIndex.to_string() || media_type == DOCKER_MANIFEST_LIST
}

/// This machine's platform, as indexes spell it: `linux`, `amd64`.
pub fn platform() -> (String, String) {
    (
        oci_spec::image::Os::default().to_string(),
        oci_spec::image::Arch::default().to_string(),
    )
}

/// Where an image's blobs come from: an OCI layout on disk, or a
/// registry. `open` gives the blob's bytes *unverified*: the reader's
/// business is to verify them.
pub trait BlobSource {
    fn open(&self, descriptor: &Descriptor) -> anyhow::Result<Box<dyn std::io::Read + '_>>;
}

/// The blobs of an OCI image layout: `DIR/blobs/sha256/<hex>`.
pub struct LayoutBlobs<'a>(pub &'a std::path::Path);

impl BlobSource for LayoutBlobs<'_> {
    fn open(&self, descriptor: &Descriptor) -> anyhow::Result<Box<dyn std::io::Read + '_>> {
        use anyhow::Context;
        // digest_of checks the name is sha256:<64 hex>: a descriptor can
        // never name a path outside blobs/ (no `..`, no `/`).
        let digest = digest_of(descriptor)?;
        let path = self.0.join("blobs/sha256").join(digest.hex());
        let file = std::fs::File::open(&path)
            .with_context(|| format!("blob {digest} is missing from the layout"))?;
        Ok(Box::new(std::io::BufReader::new(file)))
    }
}
