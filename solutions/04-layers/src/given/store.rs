//! The content-addressed store under `--root`.
//!
//! ```text
//! ROOT/
//!   store.lock                    flock(2): one writer at a time
//!   layers/sha256/<hex>/          one dir per layer, named by its diff_id
//!     layer.tar                   the layer as built or imported: sha256 = <hex>
//!     diff/                       the same, unpacked: an overlay lower dir
//!     size                        bytes of file content in the layer
//!   images/sha256/<hex>.json      image configs, named by their own digest
//!   repositories.json             NAME:TAG -> image id
//!   repodigests.json              NAME@DIGEST -> image id (pulled or pushed; step 08)
//!   cache/<hex>                   build cache: step key -> the layer it made
//!   containers/<id>/              a running container's upper, work, merged
//!   tmp/                          staging; renamed into place when complete
//! ```
//!
//! Every file is written whole to `tmp/` and then renamed into place (a
//! rename on one filesystem is atomic), so a crash leaves either the old or
//! the new state, never half a layer. Layers are immutable once there.

use crate::digest::{self, Digest};
use crate::image::{ImageConfig, Reference};
use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default `--root`, as docker's `/var/lib/docker`.
pub const DEFAULT_ROOT: &str = "/var/lib/minibox";

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The store's lock, held until dropped.
pub struct Lock(#[allow(dead_code)] Flock<File>);

/// A shared hold on the store's layers: while one exists, garbage
/// collection leaves every layer alone (a build's layers belong to no image
/// until its last step).
pub struct Pin(#[allow(dead_code)] Flock<File>);

impl Store {
    /// Open (creating when missing) the store at `root`.
    pub fn open(root: &Path) -> anyhow::Result<Store> {
        private_dirs(root, &PRIVATE).with_context(|| format!("store {}", root.display()))?;
        for dir in ["layers/sha256", "images/sha256"] {
            let path = root.join(dir);
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create the store at {}", root.display()))?;
        }
        let root = root
            .canonicalize()
            .with_context(|| format!("store {}", root.display()))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Take the store's lock (waiting for another minibox to finish).
    pub fn lock(&self) -> anyhow::Result<Lock> {
        let file = lock_options()
            .open(self.root.join("store.lock"))
            .context("cannot open the store's lock")?;
        // flock(2), exclusive: held by the open file, so it is released
        // when we drop it or if we die; it never outlives the process.
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .context("cannot lock the store")?;
        Ok(Lock(lock))
    }

    fn gc_lock_file(&self) -> anyhow::Result<File> {
        lock_options()
            .open(self.root.join("gc.lock"))
            .context("cannot open the store's gc lock")
    }

    /// Keep every layer while the returned pin lives (flock, shared).
    pub fn pin(&self) -> anyhow::Result<Pin> {
        let lock = Flock::lock(self.gc_lock_file()?, FlockArg::LockShared)
            .map_err(|(_, errno)| errno)
            .context("cannot pin the store's layers")?;
        Ok(Pin(lock))
    }

    /// A fresh, empty dir under `tmp/`, removed when the guard drops.
    pub fn temp_dir(&self, what: &str) -> anyhow::Result<Staging> {
        let path = self.root.join("tmp").join(unique_name(what));
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging { path: Some(path) })
    }

    // ---- layers ----

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers/sha256").join(diff_id.hex())
    }

    /// The unpacked layer: what overlayfs stacks.
    pub fn layer_diff(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("diff")
    }

    pub fn layer_tar(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("layer.tar")
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// Bytes of file content in a layer (what `docker history` calls SIZE).
    pub fn layer_size(&self, diff_id: &Digest) -> anyhow::Result<u64> {
        let path = self.layer_dir(diff_id).join("size");
        if !path.exists() && self.layer_tar(diff_id).is_file() {
            // A layer committed by a build has no size file: count its tar.
            return content_size(&self.layer_tar(diff_id));
        }
        let text = fs::read_to_string(&path)
            .with_context(|| format!("layer {diff_id} is missing from the store"))?;
        text.trim()
            .parse()
            .with_context(|| format!("{}: not a number", path.display()))
    }

    /// All layers in the store.
    pub fn layers(&self) -> anyhow::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("layers/sha256"))? {
            let name = entry?.file_name();
            if let Ok(digest) = Digest::parse(&format!("sha256:{}", name.to_string_lossy())) {
                out.push(digest);
            }
        }
        out.sort();
        Ok(out)
    }

    // ANCHOR: add_layer
    /// Take a layer tar (a file under `tmp/`, moved into the store): name it
    /// by its digest and unpack it, once. Returns its diff_id.
    pub fn add_layer(&self, tar: &Path) -> anyhow::Result<Digest> {
        let file = File::open(tar).with_context(|| format!("cannot open {}", tar.display()))?;
        let (diff_id, _) = digest::diff_id(file)?;
        if self.has_layer(&diff_id) {
            // Content addressing at work: the same bytes are already here.
            return Ok(diff_id);
        }
        let staging = self.temp_dir("layer")?;
        let diff = staging.path().join("diff");
        fs::create_dir(&diff)?;
        let file = File::open(tar)?;
        crate::unpack::unpack_layer(file, &diff)?;
        let size = content_size(tar)?;
        fs::rename(tar, staging.path().join("layer.tar"))
            .with_context(|| format!("cannot move {} into the store", tar.display()))?;
        write_file(&staging.path().join("size"), format!("{size}\n").as_bytes())?;
        let _lock = self.lock()?;
        if !self.has_layer(&diff_id) {
            let staged = staging.keep();
            fs::rename(&staged, self.layer_dir(&diff_id))
                .with_context(|| format!("cannot store layer {diff_id}"))?;
        }
        Ok(diff_id)
    }
    // ANCHOR_END: add_layer

    // ---- images ----

    fn config_path(&self, id: &Digest) -> PathBuf {
        self.root
            .join("images/sha256")
            .join(format!("{}.json", id.hex()))
    }

    /// Store an image config; its id is the digest of its bytes.
    pub fn put_image(&self, config: &ImageConfig) -> anyhow::Result<Digest> {
        for diff_id in &config.rootfs.diff_ids {
            if !self.has_layer(diff_id) {
                bail!("image refers to layer {diff_id}, which is not in the store");
            }
        }
        let bytes = config.to_bytes();
        let id = digest::of_bytes(&bytes);
        let path = self.config_path(&id);
        if !path.exists() {
            self.write_atomic(&path, &bytes)?;
        }
        Ok(id)
    }

    /// Store a config exactly as it came (from an archive or a registry):
    /// its id is the digest of these bytes, so it must not be written
    /// again in another form, and fields minibox does not know are kept.
    /// The bytes must be a config whose layers are all in the store.
    pub fn put_image_bytes(&self, bytes: &[u8]) -> anyhow::Result<Digest> {
        let config: ImageConfig = serde_json::from_slice(bytes).context("not an image config")?;
        if config.rootfs.kind != "layers" {
            bail!(
                "image config: rootfs.type is {:?}, not \"layers\"",
                config.rootfs.kind
            );
        }
        for diff_id in &config.rootfs.diff_ids {
            if !self.has_layer(diff_id) {
                bail!("image refers to layer {diff_id}, which is not in the store");
            }
        }
        let id = digest::of_bytes(bytes);
        let path = self.config_path(&id);
        if !path.exists() {
            self.write_atomic(&path, bytes)?;
        }
        Ok(id)
    }

    /// An image's config as stored: what `save` and `push` send, byte for
    /// byte (its digest is the image id).
    pub fn image_bytes(&self, id: &Digest) -> anyhow::Result<Vec<u8>> {
        let bytes = fs::read(self.config_path(id))
            .with_context(|| format!("image {} not found", id.short()))?;
        if digest::of_bytes(&bytes) != *id {
            bail!("image {id}: its config does not match its digest (the store is damaged)");
        }
        Ok(bytes)
    }

    /// An image's config, checked against its id.
    pub fn image(&self, id: &Digest) -> anyhow::Result<ImageConfig> {
        let path = self.config_path(id);
        let bytes = fs::read(&path).with_context(|| format!("image {} not found", id.short()))?;
        if digest::of_bytes(&bytes) != *id {
            bail!("image {id}: its config does not match its digest (the store is damaged)");
        }
        serde_json::from_slice(&bytes).with_context(|| format!("image {id}: bad config"))
    }

    pub fn images(&self) -> anyhow::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("images/sha256"))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(hex) = name.strip_suffix(".json") {
                if let Ok(digest) = Digest::parse(&format!("sha256:{hex}")) {
                    out.push(digest);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    // ---- names ----

    /// NAME:TAG -> image id.
    pub fn repositories(&self) -> anyhow::Result<BTreeMap<String, Digest>> {
        let path = self.root.join("repositories.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: damaged", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn save_repositories(&self, repos: &BTreeMap<String, Digest>) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(repos)?;
        bytes.push(b'\n');
        self.write_atomic(&self.root.join("repositories.json"), &bytes)
    }

    /// Point NAME:TAG at an image (moving the tag if it was elsewhere).
    pub fn tag(&self, reference: &Reference, id: &Digest) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let mut repos = self.repositories()?;
        repos.insert(reference.to_string(), id.clone());
        self.save_repositories(&repos)
    }

    /// Record that image `id` is the manifest `digest` of the repository
    /// `name` (`10.77.0.1:5000/app`): docker's RepoDigests, the name that
    /// no one can move (`name@digest`), kept when pulled or pushed.
    pub fn add_repo_digest(&self, name: &str, digest: &Digest, id: &Digest) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let path = self.root.join("repodigests.json");
        let mut all: BTreeMap<String, Digest> = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        all.insert(format!("{name}@{digest}"), id.clone());
        let mut bytes = serde_json::to_vec_pretty(&all)?;
        bytes.push(b'\n');
        self.write_atomic(&path, &bytes)
    }

    /// `NAME@DIGEST` of every manifest recorded for an image.
    pub fn repo_digests_of(&self, id: &Digest) -> Vec<String> {
        let all: BTreeMap<String, Digest> = fs::read(self.root.join("repodigests.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        all.into_iter()
            .filter(|(_, to)| to == id)
            .map(|(name, _)| name)
            .collect()
    }

    /// The tags pointing at an image.
    pub fn tags_of(&self, id: &Digest) -> anyhow::Result<Vec<String>> {
        Ok(self
            .repositories()?
            .into_iter()
            .filter(|(_, to)| to == id)
            .map(|(name, _)| name)
            .collect())
    }

    /// An image by NAME[:TAG], full id, or a unique prefix of the id (as
    /// docker: `3f2a`, `sha256:3f2a...`). `None` when nothing matches.
    pub fn resolve(&self, text: &str) -> anyhow::Result<Option<Digest>> {
        if let Ok(reference) = Reference::parse(text) {
            if let Some(id) = self.repositories()?.get(&reference.to_string()) {
                return Ok(Some(id.clone()));
            }
        }
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let matches: Vec<Digest> = self
            .images()?
            .into_iter()
            .filter(|id| id.hex().starts_with(hex))
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => bail!("{text}: ambiguous, {} images match", matches.len()),
        }
    }

    /// `rmi`: remove a tag, or an image with all its tags; then every layer
    /// and config nothing refers to any more. Returns what was removed.
    pub fn remove(&self, text: &str) -> anyhow::Result<Vec<String>> {
        let Some(id) = self.resolve(text)? else {
            bail!("no such image: {text}");
        };
        if let Some(user) = crate::state::Containers::new(self)
            .all()?
            .into_iter()
            .find(|r| r.image == id.as_str())
        {
            bail!(
                "image {text} is used by container {} ({}): remove the container first (rm)",
                user.short_name(),
                user.state.status
            );
        }
        let _lock = self.lock()?;
        let mut repos = self.repositories()?;
        let mut removed = Vec::new();
        let by_name = Reference::parse(text)
            .ok()
            .map(|r| r.to_string())
            .filter(|name| repos.get(name) == Some(&id));
        match by_name {
            Some(name) => {
                repos.remove(&name);
                removed.push(format!("Untagged: {name}"));
            }
            None => repos.retain(|name, to| {
                let keep = *to != id;
                if !keep {
                    removed.push(format!("Untagged: {name}"));
                }
                keep
            }),
        }
        self.save_repositories(&repos)?;
        if !repos.values().any(|to| *to == id) {
            fs::remove_file(self.config_path(&id))?;
            removed.push(format!("Deleted: {id}"));
            removed.extend(self.collect_garbage()?);
        }
        Ok(removed)
    }

    /// Remove the layers no stored image uses, now: after a `load` or a
    /// `pull` failed half-way, its layers go again.
    pub fn sweep_layers(&self) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        self.collect_garbage().map(|_| ())
    }

    /// Remove the layers no stored image uses. Call with the lock held.
    /// Skipped while a build or a starting container pins the layers: the
    /// next `rmi` collects them.
    fn collect_garbage(&self) -> anyhow::Result<Vec<String>> {
        let Ok(_exclusive) = Flock::lock(self.gc_lock_file()?, FlockArg::LockExclusiveNonblock)
        else {
            return Ok(Vec::new());
        };
        let mut used = std::collections::BTreeSet::new();
        for id in self.images()? {
            used.extend(self.image(&id)?.rootfs.diff_ids);
        }
        let mut removed = Vec::new();
        for layer in self.layers()? {
            if !used.contains(&layer) {
                // Move it out of the way first (atomic), then delete at
                // leisure: no one ever sees half a layer.
                let doomed = self.root.join("tmp").join(unique_name("removed"));
                fs::rename(self.layer_dir(&layer), &doomed)?;
                fs::remove_dir_all(&doomed)?;
                removed.push(format!("Deleted: {layer}"));
            }
        }
        Ok(removed)
    }

    // ---- build cache ----

    /// The layer a build step made before, if it is still in the store.
    pub fn cached(&self, key: &Digest) -> Option<Digest> {
        let text = fs::read_to_string(self.root.join("cache").join(key.hex())).ok()?;
        let layer = Digest::parse(text.trim()).ok()?;
        self.has_layer(&layer).then_some(layer)
    }

    pub fn remember(&self, key: &Digest, layer: &Digest) -> anyhow::Result<()> {
        let path = self.root.join("cache").join(key.hex());
        self.write_atomic(&path, format!("{layer}\n").as_bytes())
    }

    // ---- files ----

    /// Write a file whole: to `tmp/`, flushed to disk, then renamed into place.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let temp = self.root.join("tmp").join(unique_name("file"));
        write_file(&temp, bytes)?;
        fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Create `path` with `bytes` and fsync it.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    // fsync(2) before the rename: otherwise a crash can leave the new name
    // pointing at an empty file.
    file.sync_all()?;
    Ok(())
}

/// The bytes of file content in a layer tar.
fn content_size(tar: &Path) -> anyhow::Result<u64> {
    let mut archive = tar::Archive::new(File::open(tar)?);
    let mut total = 0;
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file() {
            total += entry.header().size()?;
        }
    }
    Ok(total)
}

/// A name no other process or call uses: what, pid, a counter, the time.
pub fn unique_name(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{what}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A dir under the store's `tmp/`, removed on drop unless kept.
#[derive(Debug)]
pub struct Staging {
    path: Option<PathBuf>,
}

impl Staging {
    pub fn path(&self) -> &Path {
        self.path
            .as_deref()
            .expect("a staging dir has a path until kept")
    }

    /// Keep the dir (it is being renamed into the store).
    pub fn keep(mut self) -> PathBuf {
        self.path.take().expect("kept once")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// How a lock file is opened: made 0600 if missing, and with O_NOFOLLOW,
/// so a link in its place is refused (ELOOP) instead of followed to a file
/// made wherever it points.
pub fn lock_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = File::options();
    options
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW);
    options
}

/// The store's directories, root's alone: the layers hold setuid-root
/// files, the containers' writable layers whatever a container's root
/// made (a setuid copy of a shell, say), their records the environment
/// each got from `-e`. docker's `/var/lib/docker/{overlay2,containers}`
/// are 0710 and 0700 for the same reasons.
pub const PRIVATE: [&str; 5] = ["layers", "images", "cache", "containers", "tmp"];

pub use crate::private_dirs::private_dirs;
