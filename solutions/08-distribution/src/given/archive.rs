//! Archives: an image layout in one tar file.
//!
//! `save` (docker's default form) writes what `docker save` has written
//! since docker 25: an OCI image layout *and* docker's older
//! `manifest.json` beside it, in one tar, so both kinds of reader take it.
//!
//! ```text
//! manifest.json   [{"Config":"blobs/sha256/9a78...","RepoTags":["app:1"],
//!                   "Layers":["blobs/sha256/e4e9...", ...]}]
//! oci-layout, index.json, blobs/sha256/...
//! ```
//!
//! `load` takes either: an OCI layout (a directory, or a tar of one: `oci-archive`),
//! or a docker-archive, also the older kind (`podman save`) whose files are
//! `<hex>.json` and `<hex>/layer.tar` with no descriptors at all. There
//! the only digests are the config's diff_ids, and they are enough: the
//! config's own hash is the image id, and each layer tar must hash to its
//! diff_id.

use crate::blobs::BlobSource;
use anyhow::{bail, Context};
use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use step04::digest::Digest;

/// An image found in an archive: its manifest and its names.
pub type Named = (ImageManifest, Vec<String>);

/// One entry of docker's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DockerEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Add docker's `manifest.json` to the layout in `dir`: one entry per
/// image (`found`: manifest, and all of its names).
pub fn add_docker_manifest(
    dir: &Path,
    images: &[(ImageManifest, Vec<String>)],
) -> anyhow::Result<()> {
    let blob = |d: &Descriptor| format!("blobs/sha256/{}", d.digest().digest());
    let entries: Vec<DockerEntry> = images
        .iter()
        .map(|(manifest, names)| DockerEntry {
            config: blob(manifest.config()),
            repo_tags: Some(names.clone()),
            layers: manifest.layers().iter().map(blob).collect(),
        })
        .collect();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&entries)?)?;
    Ok(())
}

/// Tar the directory `dir` into `file`, deterministically: names sorted,
/// owner 0:0, mtime 0, so one image saves to the same bytes anywhere.
/// Written to `FILE.partial` and renamed: never half a file under FILE.
pub fn tar_dir(dir: &Path, file: &Path) -> anyhow::Result<()> {
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let result = (|| -> anyhow::Result<()> {
        let out =
            File::create(&partial).with_context(|| format!("cannot create {}", file.display()))?;
        let mut builder = tar::Builder::new(std::io::BufWriter::new(out));
        let mut paths = Vec::new();
        collect(dir, dir, &mut paths)?;
        paths.sort();
        for relative in paths {
            let path = dir.join(&relative);
            let meta = std::fs::symlink_metadata(&path)?;
            let mut header = tar::Header::new_ustar();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            if meta.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, &relative, std::io::empty())?;
            } else {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(meta.len());
                builder.append_data(&mut header, &relative, File::open(&path)?)?;
            }
        }
        let out = builder.into_inner()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&partial, file)
            .with_context(|| format!("cannot write {}", file.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let relative = path.strip_prefix(base)?.to_path_buf();
        let is_dir = std::fs::symlink_metadata(&path)?.is_dir();
        out.push(relative);
        if is_dir {
            collect(base, &path, out)?;
        }
    }
    Ok(())
}

/// Unpack the archive `file` into the empty directory `into`: regular
/// files, directories, and links between files of the archive; every name
/// relative and without `..` (an archive from a stranger must not write
/// outside `into`, nor plant a link out of it). A truncated or damaged tar is an error.
pub fn untar(file: &Path, into: &Path) -> anyhow::Result<()> {
    let what = file.display();
    let input = File::open(file).with_context(|| format!("cannot open {what}"))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(input));
    let mut any = false;
    let mut links = Vec::new();
    for entry in archive
        .entries()
        .with_context(|| format!("{what}: not a tar archive"))?
    {
        let mut entry = entry.with_context(|| format!("{what}: a damaged or truncated tar"))?;
        let name = entry
            .path()
            .with_context(|| format!("{what}: a bad name"))?
            .into_owned();
        if name
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!(
                "{what}: the entry {} leaves the archive's directory: refused",
                name.display()
            );
        }
        let target = into.join(&name);
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut out = File::create(&target)?;
                let size = entry.header().size()?;
                let copied = std::io::copy(&mut entry, &mut out)
                    .with_context(|| format!("{what}: a damaged or truncated tar"))?;
                if copied != size {
                    bail!("{what}: truncated inside {}", name.display());
                }
            }
            tar::EntryType::Symlink => {
                // `podman save` links `<id>/layer.tar -> ../<diff_id>.tar`.
                // Followed only inside the archive: the target, taken
                // relative to the link's directory, must stay in `into`.
                let to = entry
                    .link_name()?
                    .with_context(|| format!("{what}: a link without a target"))?
                    .into_owned();
                let mut resolved = name.parent().map(Path::to_path_buf).unwrap_or_default();
                for part in to.components() {
                    match part {
                        Component::Normal(p) => resolved.push(p),
                        Component::CurDir => {}
                        Component::ParentDir if resolved.pop() => {}
                        _ => bail!(
                            "{what}: the link {} points outside the archive: refused",
                            name.display()
                        ),
                    }
                }
                links.push((name.clone(), resolved));
            }
            other => bail!(
                "{what}: the entry {} is a {other:?}, not a file: refused",
                name.display()
            ),
        }
        any = true;
    }
    if !any {
        bail!("{what}: an empty archive");
    }
    // Links last, as hard links to regular files of the archive only (a
    // link to a link, or to nothing, is refused).
    for (name, target) in links {
        let from = into.join(&target);
        let meta = std::fs::symlink_metadata(&from).with_context(|| {
            format!(
                "{what}: {} links to {}, which the archive lacks",
                name.display(),
                target.display()
            )
        })?;
        if !meta.is_file() {
            bail!(
                "{what}: {} links to {}, not a file: refused",
                name.display(),
                target.display()
            );
        }
        let at = into.join(&name);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::hard_link(&from, &at)?;
    }
    Ok(())
}

/// The images of a docker-archive unpacked at `dir`, each as a manifest
/// made from `manifest.json` (digests computed from the files, checked
/// later against the config's diff_ids), its names, and where each blob
/// is.
pub fn docker_images(dir: &Path) -> anyhow::Result<(Vec<Named>, PathBlobs)> {
    let text = std::fs::read(dir.join("manifest.json")).context("no manifest.json")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&text).context("manifest.json: not docker's manifest")?;
    if entries.is_empty() {
        bail!("manifest.json names no image");
    }
    let mut blobs = PathBlobs::default();
    let mut images = Vec::new();
    for entry in entries {
        let mut describe = |name: &str, media: MediaType| -> anyhow::Result<Descriptor> {
            let relative = Path::new(name);
            if relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
            {
                bail!("manifest.json names {name}, outside the archive");
            }
            let path = dir.join(relative);
            let file = File::open(&path)
                .with_context(|| format!("manifest.json names {name}, which the archive lacks"))?;
            let (digest, size) = step04::digest::diff_id(file)?;
            blobs.0.insert(digest.clone(), path);
            Ok(Descriptor::new(
                media,
                size,
                crate::blobs::oci_digest(&digest),
            ))
        };
        let config = describe(&entry.config, MediaType::ImageConfig)?;
        let mut layers = Vec::new();
        for layer in &entry.layers {
            layers.push(describe(layer, layer_media(&dir.join(layer))?)?);
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(layers)
            .build()?;
        images.push((manifest, entry.repo_tags.unwrap_or_default()));
    }
    Ok((images, blobs))
}

/// A layer file of a docker-archive is a tar, or (some writers) a gzip'd one.
fn layer_media(path: &Path) -> anyhow::Result<MediaType> {
    let mut magic = [0u8; 2];
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let n = file.read(&mut magic)?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        MediaType::ImageLayerGzip
    } else {
        MediaType::ImageLayer
    })
}

/// Blobs found by digest at paths.
#[derive(Default)]
pub struct PathBlobs(pub HashMap<Digest, PathBuf>);

impl BlobSource for PathBlobs {
    fn open(&self, descriptor: &Descriptor) -> anyhow::Result<Box<dyn Read + '_>> {
        let digest = crate::blobs::digest_of(descriptor)?;
        let path = self
            .0
            .get(&digest)
            .with_context(|| format!("blob {digest} is not in the archive"))?;
        Ok(Box::new(std::io::BufReader::new(File::open(path)?)))
    }
}
