//! `pull`: a registry's image into the store.
//!
//! ```text
//! GET /v2/app/manifests/1            Accept: manifest and index types   → 200, the manifest (or an index)
//! GET /v2/app/manifests/sha256:6f1c  (an index: this platform's entry)  → 200, the manifest
//! GET /v2/app/blobs/sha256:9a78      the config                         → 200
//! GET /v2/app/blobs/sha256:e4e9      each layer not in the store yet    → 200
//! ```
//!
//! A tag is a name the registry may move at any moment; a digest is a
//! promise. A pull by tag learns the manifest's digest by hashing what came
//! (and checks the `Docker-Content-Digest` header against it); a pull by
//! digest refuses anything else.

use crate::blobs::BlobSource;
use crate::http::Registry;
use oci_spec::image::{Descriptor, ImageManifest};
use step04::digest::Digest;

/// A repository of a registry: `10.77.0.1:5000` + `team/app`.
pub struct Repository<'a> {
    pub registry: &'a Registry,
    pub name: String,
}

// ANCHOR: open
impl BlobSource for Repository<'_> {
    /// The blob's bytes as the registry sends them (unverified).
    fn open(&self, descriptor: &Descriptor) -> anyhow::Result<Box<dyn std::io::Read + '_>> {
        // TODO(lesson-08): return the body of the registry's answer to a GET of this repository's blob with descriptor's digest; any answer but 200 is an error in the registry's own words
        // Shell: `curl -s http://HOST/v2/NAME/blobs/sha256:...`
        // BEGIN SOLUTION
        let path = format!("/v2/{}/blobs/{}", self.name, descriptor.digest());
        let answer = self
            .registry
            .request("GET", &path, &[], crate::http::Body::Empty)?;
        if answer.status != 200 {
            return Err(answer.error(&format!("blob {}", descriptor.digest())));
        }
        Ok(answer.body())
        // END SOLUTION
    }
}
// ANCHOR_END: open

// ANCHOR: resolve
/// The manifest `reference` (a tag, or `sha256:...`) names in `repo`, for
/// this machine's platform, and the manifest's digest.
pub fn resolve(repo: &Repository, reference: &str) -> anyhow::Result<(ImageManifest, Digest)> {
    // TODO(lesson-08): return the image manifest reference names in repo and the sha256 of its bytes: asked for with an Accept of every manifest and index type, never more than a document's limit read; an index (by the answer's Content-Type) stands for its entry of this platform, fetched by digest; bytes fetched by digest must hash to it, and a Docker-Content-Digest header must equal the hash of what came; 404 is "not found" naming the reference, any other non-200 the registry's own words
    // The manifest's digest is computed over the exact bytes received,
    // never over a re-serialization. Shell: `curl -sD- -H "Accept: ..."
    // http://HOST/v2/NAME/manifests/TAG | tee m | sha256sum`.
    // BEGIN SOLUTION
    use anyhow::{bail, Context};
    use oci_spec::image::ImageIndex;
    let mut wanted = reference.to_string();
    for _hop in 0..2 {
        let path = format!("/v2/{}/manifests/{wanted}", repo.name);
        let answer = repo.registry.request(
            "GET",
            &path,
            &[("Accept", crate::blobs::ACCEPT_MANIFESTS)],
            crate::http::Body::Empty,
        )?;
        if answer.status == 404 {
            let sep = if wanted.starts_with("sha256:") {
                '@'
            } else {
                ':'
            };
            bail!(
                "{}/{}{sep}{wanted}: not found in the registry",
                repo.registry.host(),
                repo.name
            );
        }
        if answer.status != 200 {
            return Err(answer.error(&format!("manifest {wanted}")));
        }
        let media = answer
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let claimed = answer.header("docker-content-digest").map(str::to_string);
        let bytes = answer.bytes(crate::blobs::DOCUMENT_LIMIT)?;
        let digest = step04::digest::of_bytes(&bytes);
        if wanted.starts_with("sha256:") && digest.as_str() != wanted {
            bail!("manifest {wanted}: the registry sent bytes that hash to {digest}: refused");
        }
        if let Some(claimed) = claimed {
            if claimed != digest.as_str() {
                bail!("manifest {wanted}: the registry says its digest is {claimed}, its bytes hash to {digest}: refused");
            }
        }
        if crate::blobs::is_index(&media) {
            let index = ImageIndex::from_reader(&bytes[..]).context("the registry's index")?;
            let (os, arch) = crate::blobs::platform();
            let entry = index
                .manifests()
                .iter()
                .find(|d| {
                    d.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == os && p.architecture().to_string() == arch
                    })
                })
                .with_context(|| format!("{}: no image for {os}/{arch} in its index", repo.name))?;
            wanted = entry.digest().to_string();
            continue;
        }
        let manifest = ImageManifest::from_reader(&bytes[..])
            .with_context(|| format!("manifest {wanted}: not an image manifest ({media})"))?;
        return Ok((manifest, digest));
    }
    bail!("{}: an index that names another index", repo.name)
    // END SOLUTION
}
// ANCHOR_END: resolve
