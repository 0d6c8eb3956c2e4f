//! COPY and ADD: files of the build context, laid out as the next layer.
//!
//! The builder stages a COPY in an empty dir shaped like the image
//! (`app/main.rs` for `COPY main.rs /app/`), then writes that dir as the
//! layer's tar. Sources come from a context the user may not control (a
//! cloned repository), so both sides are careful. Reading, nothing is
//! looked up by a path the context's owner could change: sources arrive
//! open, and a dir's children are opened from its fd ([`crate::context`]).
//! Writing, nothing is ever written *through* a link: every parent in the
//! stage is checked with `lstat(2)`, whatever stands where a new entry goes
//! is removed first, files are created with `O_CREAT | O_EXCL |
//! O_NOFOLLOW`, and modes and owners are set on open file descriptors
//! (`fchmod`, `fchown`), not on paths. A link that one source puts in the
//! stage is replaced, never followed, by the next.

use crate::context::{self, Entry};
use crate::image_fs;
use anyhow::{bail, Context};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// A stage: `root` is the layer's `/`; `layers` the image so far (top
/// first), whose dirs lend their modes to the parents made here.
pub struct Stage<'a> {
    pub root: PathBuf,
    pub layers: &'a [PathBuf],
}

impl Stage<'_> {
    /// Copy a source, opened beneath the context (`source` is its name in
    /// the Dockerfile), to `to`, an absolute path in the image. A dir's
    /// *contents* go into `to`.
    pub fn copy(&self, from: Entry, source: &str, to: &Path) -> anyhow::Result<()> {
        let target = self.prepare(to)?;
        match from {
            Entry::Dir(dir) => {
                // fstat(2) of the open dir: its mode, whatever the name
                // means by now.
                let meta = dir.metadata()?;
                self.place_dir(&target, to, Some(&meta))?;
                self.copy_children(&dir, Path::new(source), &target)
            }
            entry => self
                .place(entry, &target)
                .with_context(|| source.to_string()),
        }
    }

    /// ADD of a local tar, opened beneath the context: its entries go into
    /// `to` (a dir in the image), confined as any layer's.
    pub fn extract(&self, tar: File, to: &Path) -> anyhow::Result<()> {
        let target = self.prepare(to)?;
        self.place_dir(&target, to, None)?;
        crate::unpack::unpack_layer(tar, &target)
    }

    /// The stage path for `to`, its parents made real dirs.
    fn prepare(&self, to: &Path) -> anyhow::Result<PathBuf> {
        let mut here = self.root.clone();
        let mut in_image = PathBuf::from("/");
        let parts: Vec<_> = to
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_owned()),
                _ => None,
            })
            .collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            here.push(part);
            in_image.push(part);
            self.place_dir(&here, &in_image, None)?;
        }
        if let Some(last) = parts.last() {
            here.push(last);
        }
        Ok(here)
    }

    /// The children of the open dir `dir` (`shown` in errors) into `to`.
    fn copy_children(&self, dir: &File, shown: &Path, to: &Path) -> anyhow::Result<()> {
        let names = context::children(dir).with_context(|| shown.display().to_string())?;
        for name in names {
            let (target, shown) = (to.join(&name), shown.join(&name));
            // Opened from `dir`'s fd by its bare name: a link in the
            // context is copied as a link, never followed.
            let entry = context::child(dir, &name).with_context(|| shown.display().to_string())?;
            match entry {
                Entry::Dir(sub) => {
                    let meta = sub.metadata()?;
                    self.place_dir(&target, Path::new(""), Some(&meta))?;
                    self.copy_children(&sub, &shown, &target)?;
                }
                entry => self
                    .place(entry, &target)
                    .with_context(|| shown.display().to_string())?,
            }
        }
        Ok(())
    }

    /// A dir at `path` (in the stage): kept if it is one, else made, with
    /// the source's mode, or the image's for a dir the image has, or 0755.
    fn place_dir(
        &self,
        path: &Path,
        in_image: &Path,
        source: Option<&fs::Metadata>,
    ) -> anyhow::Result<()> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                remove_any(path)?;
                fs::create_dir(path)?;
            }
            Err(_) => fs::create_dir(path)?,
        }
        let from_image = (source.is_none() && in_image.as_os_str().len() > 1)
            .then(|| image_fs::lookup(self.layers, in_image))
            .flatten()
            .filter(|(_, m)| m.is_dir())
            .map(|(_, m)| m);
        let (mode, uid, gid) = match (source, &from_image) {
            (Some(meta), _) => (meta.mode() & 0o7777, 0, 0),
            (None, Some(meta)) => (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (None, None) => (0o755, 0, 0),
        };
        // open(2) with O_DIRECTORY | O_NOFOLLOW: this very dir, not a link.
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        set_owner_and_mode(&dir, uid, gid, mode)
    }

    /// A file or a link from the context at `to` (in the stage).
    fn place(&self, from: Entry, to: &Path) -> anyhow::Result<()> {
        let mut source = match from {
            Entry::File(file) => file,
            Entry::Link(target) => {
                remove_any(to)?;
                std::os::unix::fs::symlink(target, to)?;
                // lchown(2): the link itself, owned by root as COPY's files are.
                std::os::unix::fs::lchown(to, Some(0), Some(0))?;
                return Ok(());
            }
            Entry::Dir(_) => bail!("a dir, where a file was expected"),
        };
        // fstat(2) of the open file: its mode, from the inode being read.
        let meta = source.metadata()?;
        remove_any(to)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(to)
            .with_context(|| format!("cannot create {}", to.display()))?;
        io::copy(&mut source, &mut file)?;
        set_owner_and_mode(&file, 0, 0, meta.mode() & 0o7777)
    }
}

/// Owner first: chown(2) clears setuid/setgid, so the mode comes after.
fn set_owner_and_mode(file: &File, uid: u32, gid: u32, mode: u32) -> anyhow::Result<()> {
    std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Remove whatever is at `path` (a link itself, never its target).
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
