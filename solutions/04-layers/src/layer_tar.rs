//! Layer tars, written: same tree, same bytes.
//!
//! A layer is a plain tar of a directory tree, with OCI's whiteout files for
//! deletions (see [`crate::whiteout`]). It is named by the sha256 of its
//! bytes, so two builds of the same tree must give the same tar, or the
//! store fills up with copies and caches never hit. Whatever varies between
//! two machines or two runs (the order `readdir` returns names in, user
//! names, times of the build) must not reach the tar. This is the idea of
//! reproducible builds, and `epoch` is its `SOURCE_DATE_EPOCH`. GNU tar
//! writes the same with:
//!
//! ```text
//! tar -C DIR --sort=name --format=gnu --numeric-owner \
//!     --mtime=@EPOCH --clamp-mtime -cf layer.tar .
//! ```
//!
//! (and knows nothing of overlayfs's whiteouts: they are the learner's.)

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tar::{Builder, EntryType, Header};

use crate::whiteout;

/// The longest name (or link target) a tar header holds in place; longer
/// ones go into a GNU long-name record before the header.
const HEADER_NAME_LEN: usize = 100;

/// Mode of the `.wh.*` marker files. Unpacking turns them into whiteouts, so
/// the value only shows if someone unpacks a layer with plain `tar -x`: then
/// the markers come out as ordinary readable files rather than puzzling
/// unreadable ones.
pub const MARKER_MODE: u32 = 0o644;

// ANCHOR: write_layer
/// Write `dir` as a layer tar to `out`. Deterministic: same tree => same
/// bytes on any machine.
///
/// `dir` is an overlay upper dir (its whiteouts and opaque dirs become OCI
/// ones) or a whole rootfs. Modification times later than `epoch` are
/// clamped to it.
pub fn write_layer(dir: &Path, out: impl Write, epoch: u64) -> Result<()> {
    let mut layer = LayerWriter {
        tar: Builder::new(out),
        epoch,
        first_links: HashMap::new(),
    };
    // The root itself is no entry (unpacking puts the entries into an
    // existing directory); if it is opaque, its marker comes first.
    let root =
        fs::symlink_metadata(dir).with_context(|| format!("{}: cannot stat", dir.display()))?;
    if opaque(dir)? {
        layer.marker(dir, Path::new(whiteout::OPAQUE_MARKER), &root)?;
    }
    layer.children(dir, Path::new(""))?;
    // `into_inner` finishes the archive: two zero blocks say "the end".
    let mut out = layer
        .tar
        .into_inner()
        .context("cannot finish the layer tar")?;
    out.flush().context("cannot write the layer tar")
}
// ANCHOR_END: write_layer

struct LayerWriter<W: Write> {
    tar: Builder<W>,
    epoch: u64,
    /// (device, inode) of files with more than one link, and the layer path
    /// they were first written under.
    first_links: HashMap<(u64, u64), PathBuf>,
}

/// One directory entry, with the name it gets in the layer.
struct Child {
    path: PathBuf,
    meta: Metadata,
    layer_name: OsString,
}

impl<W: Write> LayerWriter<W> {
    /// Write the entries below `dir`, whose path in the layer is `rel`.
    fn children(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        for child in sorted_children(dir)? {
            self.entry(&child.path, &rel.join(&child.layer_name), &child.meta)?;
        }
        Ok(())
    }

    /// Write one entry of the tree (`path`, lstat'ed as `meta`) under the
    /// name `rel` in the layer.
    fn entry(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
        // TODO(lesson-04): when this returns, the layer holds `path` as the entry its kind calls for: a directory (with all below it), a regular file, a symlink, a FIFO; an overlayfs whiteout becomes an OCI marker (an empty regular file under the `.wh.NAME` name `rel` already has); a socket is left out (it means nothing without its process); any other device node is an error, never a silent skip (an image must not carry the host's devices)
        // The kind is in `meta`'s file type; a whiteout is a char device too,
        // so ask whether it is one before refusing devices. This file has a
        // writer for each kind below. Shell: `tar --format=gnu -cf L.tar`
        // refuses nothing, which is why you decide here.
        // BEGIN SOLUTION
        let kind = meta.file_type();
        if kind.is_dir() {
            self.directory(path, rel, meta)
        } else if kind.is_file() {
            self.file(path, rel, meta)
        } else if kind.is_symlink() {
            self.symlink(path, rel, meta)
        } else if kind.is_fifo() {
            let mut header = self.header(EntryType::Fifo, meta);
            self.append(path, &mut header, rel, io::empty())
        } else if whiteout::is_overlay_whiteout(meta) {
            self.marker(path, rel, meta)
        } else if kind.is_socket() {
            // A socket is only an address for a process listening on it: it
            // means nothing in an image (tar and Docker skip them too).
            Ok(())
        } else {
            bail!("{}: device nodes cannot go into a layer", path.display())
        }
        // END SOLUTION
    }

    /// A directory entry, then (for an opaque one) its marker, then all
    /// that is below it.
    fn directory(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
        // TODO(lesson-04): when this returns, the layer holds the directory `rel` (its name ending in `/`, as tar writes directories), then, if overlayfs made it opaque (its xattr says so), the OCI marker `rel/.wh..wh..opq` right after it and before any child (it hides what the lower layers have in it, not what this layer puts there), then every entry below it in sorted order
        // Shell: `getfattr -n trusted.overlay.opaque DIR` prints `y` for an
        // opaque one; `tar -tvf L.tar` lists `DIR/`, `DIR/.wh..wh..opq`, ...
        // BEGIN SOLUTION
        // A trailing `/` says "directory" to tools that only look at names.
        let mut name = rel.as_os_str().to_owned();
        name.push("/");
        let mut header = self.header(EntryType::Directory, meta);
        self.append(path, &mut header, Path::new(&name), io::empty())?;
        // The opaque marker right after its directory, before any child: it
        // hides the lower layers' children, not this layer's.
        if opaque(path)? {
            self.marker(path, &rel.join(whiteout::OPAQUE_MARKER), meta)?;
        }
        self.children(path, rel)
        // END SOLUTION
    }

    fn file(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
        // A file with several names is stored once; its other names become
        // hard link entries that point at the first name in the tar.
        if meta.nlink() > 1 {
            let inode = (meta.dev(), meta.ino());
            if let Some(first) = self.first_links.get(&inode).cloned() {
                let mut header = self.header(EntryType::Link, meta);
                return self
                    .tar
                    .append_link(&mut header, rel, &first)
                    .with_context(|| format!("{}: cannot write to the layer", path.display()));
            }
            self.first_links.insert(inode, rel.to_path_buf());
        }
        // O_NOFOLLOW: if the file was replaced by a symlink since the lstat,
        // fail rather than store whatever it points to.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        // The size in the header must be the size of the data that follows:
        // take it from the open file, and read exactly that much.
        let size = file
            .metadata()
            .with_context(|| format!("{}: cannot stat", path.display()))?
            .len();
        let mut header = self.header(EntryType::Regular, meta);
        header.set_size(size);
        let data = Exactly { file, left: size };
        self.append(path, &mut header, rel, data)
    }

    fn symlink(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
        // readlink(2): the target is stored as it is, never followed.
        let target = fs::read_link(path)
            .with_context(|| format!("{}: cannot read the symlink", path.display()))?;
        let mut header = self.header(EntryType::Symlink, meta);
        let bytes = target.as_os_str().as_bytes();
        if bytes.len() <= HEADER_NAME_LEN {
            // A target is just bytes: copy them as they are (the tar crate's
            // `set_link_name` would tidy them, e.g. `a/.` into `a`).
            header.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
            self.append(path, &mut header, rel, io::empty())
        } else {
            // A long target goes, unchanged, into a GNU long-link record.
            self.tar
                .append_link(&mut header, rel, &target)
                .with_context(|| format!("{}: cannot write to the layer", path.display()))
        }
    }

    /// An OCI marker: an empty file, owned by root. `rel` is its layer path
    /// (`DIR/.wh.NAME` or `DIR/.wh..wh..opq`); `path` and `meta` are the
    /// whiteout or the opaque directory it stands for.
    fn marker(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
        let mut header = self.header(EntryType::Regular, meta);
        header.set_mode(MARKER_MODE);
        header.set_uid(0);
        header.set_gid(0);
        self.append(path, &mut header, rel, io::empty())
    }

    /// A header with only what the tree says: no user or group *names*
    /// (they depend on the machine's /etc/passwd), no atime or ctime (they
    /// change when the tree is merely read), and a clamped mtime.
    ///
    /// (`Builder::mode(HeaderMode::Deterministic)` only applies to the
    /// builder's `append_path*`, which read the filesystem themselves.)
    fn header(&self, kind: EntryType, meta: &Metadata) -> Header {
        // TODO(lesson-04): return a header of type `kind` that holds only what the tree says, the same on every machine: one header format for every entry (GNU), the permission bits (setuid, setgid and sticky included, the file type bits not), the numeric uid and gid, the mtime but never later than `self.epoch`, a size of 0 (the file writer sets a file's own); no user or group name, no atime, no ctime
        // Why: the layer is named by the sha256 of its bytes. A user name
        // depends on the machine's /etc/passwd, atime changes when the tree
        // is merely read, and every file a build makes has the build's time.
        // Shell: `tar --format=gnu --numeric-owner --mtime=@EPOCH
        // --clamp-mtime ...`. (`Builder::mode(HeaderMode::Deterministic)`
        // only applies to the builder's `append_path*`, which read the
        // filesystem themselves.)
        // BEGIN SOLUTION
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        // Permission bits, setuid/setgid/sticky included; the type is in
        // the entry type, not in the mode.
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        // Files made by a build all get the build's time; clamping makes
        // them the same in every build, while older files (from the base
        // image) keep theirs.
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        header.set_mtime(mtime.min(self.epoch));
        header
        // END SOLUTION
    }

    /// Append an entry; the builder writes a GNU long-name record first if
    /// `rel` doesn't fit the header. `path` is for error messages.
    fn append(
        &mut self,
        path: &Path,
        header: &mut Header,
        rel: &Path,
        data: impl Read,
    ) -> Result<()> {
        // Empty, not left over from somewhere: the names are machine-local.
        header.set_username("")?;
        header.set_groupname("")?;
        self.tar
            .append_data(header, rel, data)
            .with_context(|| format!("{}: cannot write to the layer", path.display()))
    }
}

/// The entries of `dir`, sorted by their names in the layer, as bytes.
///
/// `readdir` returns names in an order that depends on the filesystem and
/// its history: sorting makes the tar depend on the tree only.
fn sorted_children(dir: &Path) -> Result<Vec<Child>> {
    // TODO(lesson-04): return every entry of `dir` once, described by lstat (a symlink is an entry of its own, never followed), with the name it gets in the layer: an overlayfs whiteout gets the OCI name `.wh.NAME`, any other entry its own name, and an entry whose own name starts with `.wh.` is refused (unpacking would take it for a deletion); sorted by those layer names as raw bytes
    // readdir(2) returns names in an order that depends on the filesystem
    // and its history, not on the tree. Shell: `tar --sort=name`.
    // BEGIN SOLUTION
    let mut children = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let path = entry.path();
        // lstat(2): a symlink is an entry of its own, never followed.
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("{}: cannot stat", path.display()))?;
        let name = entry.file_name();
        let layer_name = if whiteout::is_overlay_whiteout(&meta) {
            whiteout::oci_whiteout_name(&name)
        } else if name
            .as_bytes()
            .starts_with(whiteout::WHITEOUT_PREFIX.as_bytes())
        {
            // Unpacking would take this file for a deletion.
            bail!(
                "{}: names starting with {} are reserved for whiteouts in a layer",
                path.display(),
                whiteout::WHITEOUT_PREFIX
            );
        } else {
            name
        };
        children.push(Child {
            path,
            meta,
            layer_name,
        });
    }
    children.sort_by(|a, b| a.layer_name.as_bytes().cmp(b.layer_name.as_bytes()));
    Ok(children)
    // END SOLUTION
}

fn opaque(dir: &Path) -> Result<bool> {
    whiteout::is_opaque_dir(dir)
        .with_context(|| format!("{}: cannot read {}", dir.display(), whiteout::OPAQUE_XATTR))
}

/// Reads exactly `left` bytes of a file. The tar header already said how
/// many bytes follow: a file that shrinks while being read is an error, and
/// bytes it gains are left out.
struct Exactly {
    file: File,
    left: u64,
}

impl Read for Exactly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.file.read(&mut buf[..max])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being read",
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}
