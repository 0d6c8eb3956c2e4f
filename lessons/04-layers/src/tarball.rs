//! Layer tars: written deterministically from a directory, read back into a
//! directory without ever writing outside it.
//!
//! A layer is a plain tar of a directory tree, with OCI's whiteout files for
//! deletions (see [`crate::whiteout`]). Two properties matter here:
//!
//! - **Same tree, same bytes.** A layer is named by the sha256 of its bytes,
//!   so two builds of the same tree must give the same tar, or the store
//!   fills up with copies and caches never hit. Whatever varies between two
//!   machines or two runs (the order `readdir` returns names in, user names,
//!   times of the build) must not reach the tar. This is the idea of
//!   reproducible builds, and `epoch` is its `SOURCE_DATE_EPOCH`.
//! - **Unpacking stays inside.** Unpacking runs as root, and later on tars
//!   that come from elsewhere. A hostile tar can name `../../etc/passwd` or
//!   `/etc/passwd`, or first make a symlink `evil -> /etc` and then write
//!   `evil/passwd`. Every entry is checked, and no path is ever followed
//!   through a symlink while writing.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, FileTimes, Metadata, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{
    fchown, lchown, DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt,
};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::{Builder, EntryType, Header};

use crate::whiteout;

/// The longest name (or link target) a tar header holds in place; longer
/// ones go into a GNU long-name record before the header.
const HEADER_NAME_LEN: usize = 100;

/// Mode of the `.wh.*` marker files. Unpacking turns them into whiteouts, so
/// the value only shows if someone unpacks a layer with plain `tar -x`: then
/// the markers come out as ordinary readable files rather than puzzling
/// unreadable ones.
const MARKER_MODE: u32 = 0o644;

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

    fn entry(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
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
    }

    fn directory(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<()> {
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
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        // Permission bits, setuid/setgid/sticky included; the type is in
        // the entry type, not in the mode.
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(clamp_mtime(meta, self.epoch));
        header
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
}

fn opaque(dir: &Path) -> Result<bool> {
    whiteout::is_opaque_dir(dir)
        .with_context(|| format!("{}: cannot read {}", dir.display(), whiteout::OPAQUE_XATTR))
}

/// The mtime to store: the file's, but never later than `epoch`. Files
/// made by a build all get the build's time; clamping makes them the same
/// in every build, while older files (from the base image) keep theirs.
fn clamp_mtime(meta: &Metadata, epoch: u64) -> u64 {
    u64::try_from(meta.mtime()).unwrap_or(0).min(epoch)
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

// ANCHOR: unpack_layer
/// Unpack a layer tar into `dest` (an existing empty directory), confined
/// to it; OCI whiteouts become overlayfs ones.
///
/// The later of two entries with the same path wins.
pub fn unpack_layer(tar: impl Read, dest: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(tar);
    let mut dir_times = BTreeMap::new();
    let entries = archive.entries().context("cannot read the layer tar")?;
    for entry in entries {
        let mut entry = entry.context("cannot read the layer tar")?;
        unpack_entry(&mut entry, dest, &mut dir_times)?;
    }
    set_dir_times(dest, dir_times)
}
// ANCHOR_END: unpack_layer

/// The mtimes of the directories unpacked so far, by their layer path.
type DirTimes = BTreeMap<Vec<OsString>, u64>;

/// The metadata of an entry, from its header.
struct Owner {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
}

// ANCHOR: unpack_entry
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    dest: &Path,
    dir_times: &mut DirTimes,
) -> Result<()> {
    let kind = entry.header().entry_type();
    if kind == EntryType::XGlobalHeader {
        // pax global headers (`git archive` writes one, with a comment)
        // hold nothing a layer uses.
        return Ok(());
    }
    let raw = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&raw).into_owned();
    let Some(parts) = layer_path(&raw, &name)? else {
        // `.` or `./`: the root, which already exists.
        return Ok(());
    };
    let (last, parents) = parts.split_last().expect("a layer path has a component");
    let parent = enter_parents(dest, parents, &name, true)?;
    let path = parent.join(last);

    // Whiteouts are known by their names, whatever their entry type.
    let last_bytes = last.as_bytes();
    if last_bytes == whiteout::OPAQUE_MARKER.as_bytes() {
        return whiteout::make_opaque(&parent)
            .with_context(|| format!("{name}: cannot make the directory opaque"));
    }
    if last_bytes.starts_with(b".wh..wh.") {
        bail!("{name}: unknown whiteout marker");
    }
    if let Some(hidden) = last_bytes.strip_prefix(whiteout::WHITEOUT_PREFIX.as_bytes()) {
        return unpack_whiteout(&parent, hidden, &name);
    }

    let owner = owner(entry.header(), &name)?;
    match kind {
        EntryType::Directory => {
            unpack_dir(&path, &owner, &name)?;
            // Creating children changes a directory's mtime: set it last.
            dir_times.insert(parts, owner.mtime);
            Ok(())
        }
        EntryType::Regular | EntryType::Continuous => unpack_file(entry, &path, &owner, &name),
        EntryType::Symlink => unpack_symlink(entry, &path, &owner, &name),
        EntryType::Link => unpack_hard_link(entry, dest, &parts, &path, &name),
        EntryType::Fifo => unpack_fifo(&path, &owner, &name),
        EntryType::Char | EntryType::Block => {
            bail!("{name}: device nodes are not allowed in a layer")
        }
        EntryType::GNUSparse => bail!("{name}: sparse files are not supported in a layer"),
        other => bail!(
            "{name}: unsupported entry type '{}' in a layer",
            other.as_byte().escape_ascii()
        ),
    }
}
// ANCHOR_END: unpack_entry

/// The components of a path from the tar, checked: relative, no `..`.
/// `None` for the root itself (`.`, `./`). `what` names it in errors.
fn layer_path(raw: &[u8], what: &str) -> Result<Option<Vec<OsString>>> {
    if raw.contains(&0) {
        bail!("{what}: NUL byte in layer path");
    }
    let mut parts = Vec::new();
    // `components` drops `.` and repeated or trailing `/`.
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => bail!("{what}: absolute path in layer"),
            Component::ParentDir => bail!("{what}: `..` in layer path"),
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_owned()),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts) })
}

/// Check, one by one, the directories an entry goes through, and return the
/// last one's path. Each must be a real directory: a symlink there would
/// send the write elsewhere, maybe outside `dest`. With `create`, missing
/// ones are made (mode 0755, owned by root), as Docker does.
fn enter_parents(dest: &Path, parents: &[OsString], name: &str, create: bool) -> Result<PathBuf> {
    let mut dir = dest.to_path_buf();
    let mut rel = PathBuf::new();
    for part in parents {
        dir.push(part);
        rel.push(part);
        // lstat(2), not stat(2): it describes the symlink, not its target.
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                bail!("{name}: goes through the symlink {}", rel.display())
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{name}: parent {} is not a directory", rel.display()),
            Err(error) if error.kind() == io::ErrorKind::NotFound && create => {
                make_dir(&dir, 0, 0, 0o755)
                    .with_context(|| format!("{name}: cannot create {}", rel.display()))?;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                bail!("{name}: {} does not exist", rel.display())
            }
            Err(error) => {
                return Err(error).with_context(|| format!("{name}: cannot stat {}", rel.display()))
            }
        }
    }
    Ok(dir)
}

fn owner(header: &Header, name: &str) -> Result<Owner> {
    let bad = || format!("{name}: bad tar header");
    let uid = header.uid().with_context(bad)?;
    let gid = header.gid().with_context(bad)?;
    let mtime = header.mtime().with_context(bad)?;
    if i64::try_from(mtime).is_err() {
        bail!("{name}: mtime {mtime} out of range");
    }
    Ok(Owner {
        uid: u32::try_from(uid).with_context(|| format!("{name}: uid {uid} out of range"))?,
        gid: u32::try_from(gid).with_context(|| format!("{name}: gid {gid} out of range"))?,
        mode: header.mode().with_context(bad)? & 0o7777,
        mtime,
    })
}

/// `.wh.NAME` in `parent`: NAME is deleted.
fn unpack_whiteout(parent: &Path, hidden: &[u8], name: &str) -> Result<()> {
    // `.wh..` or `.wh...` would "delete" `parent` or its parent.
    if matches!(hidden, b"" | b"." | b"..") {
        bail!("{name}: whiteout of an invalid name");
    }
    let path = parent.join(OsStr::from_bytes(hidden));
    // A whiteout later in the tar than NAME's own entry wins over it.
    remove_existing(&path).with_context(|| format!("{name}: cannot remove what it deletes"))?;
    whiteout::make_overlay_whiteout(&path)
        .with_context(|| format!("{name}: cannot create the whiteout (mknod c 0 0)"))
}

fn unpack_dir(path: &Path, owner: &Owner, name: &str) -> Result<()> {
    match fs::symlink_metadata(path) {
        // An existing directory stays, with what is in it.
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => fs::remove_file(path).with_context(|| format!("{name}: cannot replace"))?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("{name}: cannot stat")),
    }
    make_dir(path, owner.uid, owner.gid, owner.mode)
        .with_context(|| format!("{name}: cannot create the directory"))
}

/// mkdir(2) if missing, then set owner and mode through a file descriptor
/// opened with O_NOFOLLOW, so a symlink is never what gets changed.
fn make_dir(path: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(error),
        _ => {}
    }
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)?;
    set_owner_and_mode(&dir, uid, gid, mode)
}

fn unpack_file<R: Read>(
    entry: &mut tar::Entry<R>,
    path: &Path,
    owner: &Owner,
    name: &str,
) -> Result<()> {
    // Never open an existing path: it could be a symlink to anywhere.
    remove_existing(path).with_context(|| format!("{name}: cannot replace"))?;
    // O_CREAT|O_EXCL fails if anything (even a dangling symlink) is there;
    // O_NOFOLLOW says the same again. 0600 until the data is in: nobody
    // reads a half-written file.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("{name}: cannot create the file"))?;
    io::copy(entry, &mut file).with_context(|| format!("{name}: cannot write the file"))?;
    set_owner_and_mode(&file, owner.uid, owner.gid, owner.mode)
        .with_context(|| format!("{name}: cannot set owner and mode"))?;
    // Last: writing the data changed the mtime.
    file.set_times(file_times(owner.mtime))
        .with_context(|| format!("{name}: cannot set the mtime"))
}

fn unpack_symlink<R: Read>(
    entry: &tar::Entry<R>,
    path: &Path,
    owner: &Owner,
    name: &str,
) -> Result<()> {
    let target = match entry.link_name_bytes() {
        Some(target) if !target.is_empty() => target.into_owned(),
        _ => bail!("{name}: symlink without a target"),
    };
    remove_existing(path).with_context(|| format!("{name}: cannot replace"))?;
    // symlink(2) stores the target as it is: it may point anywhere, even
    // outside `dest`, since unpacking never follows it.
    std::os::unix::fs::symlink(OsStr::from_bytes(&target), path)
        .with_context(|| format!("{name}: cannot create the symlink"))?;
    // lchown(2): chown(2) would change the target's owner instead.
    lchown(path, Some(owner.uid), Some(owner.gid))
        .with_context(|| format!("{name}: cannot set the owner"))?;
    // A symlink's mode means nothing on Linux; its mtime does, for `ls`.
    set_times_nofollow(path, owner.mtime).with_context(|| format!("{name}: cannot set the mtime"))
}

/// A hard link: the target must already be a regular file of this layer,
/// reached without symlinks, or a link could make a second name inside
/// `dest` for any file of the host (`/etc/shadow`, say).
fn unpack_hard_link<R: Read>(
    entry: &tar::Entry<R>,
    dest: &Path,
    parts: &[OsString],
    path: &Path,
    name: &str,
) -> Result<()> {
    let raw = match entry.link_name_bytes() {
        Some(target) => target.into_owned(),
        None => bail!("{name}: hard link without a target"),
    };
    let shown = String::from_utf8_lossy(&raw);
    let what = format!("{name}: hard link to {shown}");
    let Some(target_parts) = layer_path(&raw, &what)? else {
        bail!("{what}: not a regular file");
    };
    if target_parts == parts {
        bail!("{what}: a link to itself");
    }
    let (last, parents) = target_parts
        .split_last()
        .expect("a layer path has a component");
    let target = enter_parents(dest, parents, &what, false)?.join(last);
    match fs::symlink_metadata(&target) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => bail!("{what}: not a regular file"),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            bail!("{what}: no such file in the layer")
        }
        Err(error) => return Err(error).with_context(|| format!("{what}: cannot stat")),
    }
    remove_existing(path).with_context(|| format!("{name}: cannot replace"))?;
    // link(2) (linkat without AT_SYMLINK_FOLLOW): a new name for the same
    // inode, which keeps its own owner, mode and times.
    fs::hard_link(&target, path).with_context(|| format!("{what}: cannot create the link"))
}

fn unpack_fifo(path: &Path, owner: &Owner, name: &str) -> Result<()> {
    remove_existing(path).with_context(|| format!("{name}: cannot replace"))?;
    // mkfifo(3) (mknod S_IFIFO): needs no privilege, unlike devices.
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("{name}: cannot create the FIFO"))?;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. The descriptor is only for setting owner, mode and mtime.
    let fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("{name}: cannot open the FIFO"))?;
    set_owner_and_mode(&fifo, owner.uid, owner.gid, owner.mode)
        .with_context(|| format!("{name}: cannot set owner and mode"))?;
    fifo.set_times(file_times(owner.mtime))
        .with_context(|| format!("{name}: cannot set the mtime"))
}

/// Owner first, then mode: chown(2) of a file clears its setuid and setgid
/// bits, so the other order would lose them.
fn set_owner_and_mode(file: &File, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    // fchown(2), fchmod(2): on the open file, whatever its path is now.
    fchown(file, Some(uid), Some(gid))?;
    file.set_permissions(Permissions::from_mode(mode))
}

/// Remove whatever is at `path`; a directory with all that is in it.
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        // `remove_dir_all` doesn't follow symlinks inside: it removes them.
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        // unlink(2) of a symlink removes the link, not its target.
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Set the directories' mtimes, once nothing will be created in them any
/// more. Deepest first, as tar does (setting a time changes no directory's
/// content, so any order would do at this point).
fn set_dir_times(dest: &Path, dir_times: DirTimes) -> Result<()> {
    let mut dirs: Vec<_> = dir_times.into_iter().collect();
    dirs.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
    for (parts, mtime) in dirs {
        // A later entry may have replaced the directory, or one of its
        // parents (even by a symlink): then it is not ours to touch.
        let Some(path) = real_dir(dest, &parts) else {
            continue;
        };
        set_times_nofollow(&path, mtime).with_context(|| {
            let name = parts.iter().collect::<PathBuf>();
            format!("{}: cannot set the mtime", name.display())
        })?;
    }
    Ok(())
}

/// `dest/parts...` if each component is a directory, not a symlink.
fn real_dir(dest: &Path, parts: &[OsString]) -> Option<PathBuf> {
    let mut path = dest.to_path_buf();
    for part in parts {
        path.push(part);
        if !fs::symlink_metadata(&path).ok()?.is_dir() {
            return None;
        }
    }
    Some(path)
}

/// utimensat(2) with AT_SYMLINK_NOFOLLOW: the times of `path` itself, even
/// if it is a symlink. Access time = modification time (a tar keeps one).
fn set_times_nofollow(path: &Path, mtime: u64) -> nix::Result<()> {
    let seconds = libc::time_t::try_from(mtime).unwrap_or(libc::time_t::MAX);
    let time = TimeSpec::new(seconds, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
}

fn file_times(mtime: u64) -> FileTimes {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    FileTimes::new().set_accessed(time).set_modified(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const EPOCH: u64 = 1_700_000_000;

    /// A directory under the system's temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(what: &str) -> Scratch {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("minibox-tarball-{}-{n}-{what}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.0.join(rel)
        }

        /// A fresh empty subdirectory.
        fn dir(&self, rel: &str) -> PathBuf {
            let dir = self.path(rel);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            dir
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write_file(path: &Path, data: &str, mtime: i64) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
        set_mtime(path, mtime);
    }

    fn set_mtime(path: &Path, mtime: i64) {
        let time = TimeSpec::new(mtime, 0);
        utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    fn layer_of(dir: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        write_layer(dir, &mut out, EPOCH).unwrap();
        out
    }

    /// Each entry of a tar: (path, type, link target).
    fn listing(tar: &[u8]) -> Vec<(String, EntryType, Option<String>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let link = entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned());
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                (path, entry.header().entry_type(), link)
            })
            .collect()
    }

    fn names(tar: &[u8]) -> Vec<String> {
        listing(tar).into_iter().map(|(name, _, _)| name).collect()
    }

    fn headers(tar: &[u8]) -> Vec<(String, Header)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                (path, entry.header().clone())
            })
            .collect()
    }

    /// A small tree with one of everything a layer holds, made in the given
    /// order of names (the order `readdir` sees them in can differ).
    fn sample_tree(root: &Path, names: &[&str], mtime: i64) {
        for name in names {
            match *name {
                "etc/passwd" => write_file(&root.join(name), "root:x:0:0::/root:/bin/sh\n", mtime),
                "bin/sh" => {
                    write_file(&root.join(name), "#!shell", mtime);
                    fs::set_permissions(root.join(name), Permissions::from_mode(0o4755)).unwrap();
                }
                "bin/sh-link" => fs::hard_link(root.join("bin/sh"), root.join(name)).unwrap(),
                "etc/motd" => {
                    fs::create_dir_all(root.join("etc")).unwrap();
                    symlink("../run/motd", root.join(name)).unwrap();
                }
                "run/fifo" => {
                    fs::create_dir_all(root.join("run")).unwrap();
                    nix::unistd::mkfifo(&root.join(name), Mode::from_bits_truncate(0o640)).unwrap();
                }
                other => panic!("no recipe for {other}"),
            }
        }
        for dir in ["etc", "bin", "run", "."] {
            set_mtime(&root.join(dir), mtime);
        }
        for name in ["etc/motd", "run/fifo", "bin/sh"] {
            set_mtime(&root.join(name), mtime);
        }
    }

    #[test]
    fn same_tree_gives_same_bytes() {
        let scratch = Scratch::new("same");
        let one = scratch.dir("one");
        let two = scratch.dir("two");
        let all = [
            "etc/passwd",
            "bin/sh",
            "bin/sh-link",
            "etc/motd",
            "run/fifo",
        ];
        sample_tree(&one, &all, EPOCH as i64 + 10);
        // Another order of creation, and other times, all after the epoch.
        let reversed = [
            "run/fifo",
            "etc/motd",
            "bin/sh",
            "bin/sh-link",
            "etc/passwd",
        ];
        sample_tree(&two, &reversed, EPOCH as i64 + 99_999);

        let first = layer_of(&one);
        assert_eq!(first, layer_of(&one), "two writes of one tree");
        assert_eq!(
            first,
            layer_of(&two),
            "two trees that differ only in mtimes"
        );
        // Finished: the archive ends with two zero blocks.
        assert_eq!(first.len() % 512, 0);
        assert!(first[first.len() - 1024..].iter().all(|b| *b == 0));
    }

    #[test]
    fn headers_hold_only_what_the_tree_says() {
        let scratch = Scratch::new("headers");
        let root = scratch.dir("root");
        write_file(&root.join("old"), "old", 1000);
        write_file(&root.join("new"), "new", EPOCH as i64 + 5);
        // chown first: it clears the setgid bit.
        lchown(root.join("new"), Some(1234), Some(5678)).unwrap();
        fs::set_permissions(root.join("new"), Permissions::from_mode(0o2751)).unwrap();

        let tar = layer_of(&root);
        let headers = headers(&tar);
        let (_, new) = &headers[0];
        let (_, old) = &headers[1];
        assert!(new.as_gnu().is_some(), "GNU headers");
        assert_eq!(new.mtime().unwrap(), EPOCH, "clamped to the epoch");
        assert_eq!(old.mtime().unwrap(), 1000, "older times stay");
        assert_eq!(new.mode().unwrap(), 0o2751);
        assert_eq!((new.uid().unwrap(), new.gid().unwrap()), (1234, 5678));
        assert_eq!(new.username_bytes(), Some(&b""[..]));
        assert_eq!(new.groupname_bytes(), Some(&b""[..]));
        assert_eq!(new.as_gnu().unwrap().atime, [0; 12]);
        assert_eq!(new.as_gnu().unwrap().ctime, [0; 12]);
    }

    #[test]
    fn entries_are_sorted_depth_first_with_dirs_first() {
        let scratch = Scratch::new("sorted");
        let root = scratch.dir("root");
        for file in ["b", "a/z", "a/c", "a.txt", "A", "a/m/x"] {
            write_file(&root.join(file), "", 1);
        }
        assert_eq!(
            names(&layer_of(&root)),
            ["A", "a/", "a/c", "a/m/", "a/m/x", "a/z", "a.txt", "b"]
        );
    }

    #[test]
    fn the_sample_tree_round_trips() {
        let scratch = Scratch::new("roundtrip");
        let root = scratch.dir("root");
        let all = [
            "etc/passwd",
            "bin/sh",
            "bin/sh-link",
            "etc/motd",
            "run/fifo",
        ];
        sample_tree(&root, &all, 1_000_000);
        lchown(root.join("etc/passwd"), Some(7), Some(8)).unwrap();
        lchown(root.join("etc/motd"), Some(9), Some(10)).unwrap();
        symlink("/", root.join("slash")).unwrap();
        symlink("a/.", root.join("dot")).unwrap();

        let tar = layer_of(&root);
        let listing = listing(&tar);
        let link = listing
            .iter()
            .find(|(name, ..)| name == "bin/sh-link")
            .unwrap();
        assert_eq!(
            (link.1, link.2.as_deref()),
            (EntryType::Link, Some("bin/sh"))
        );

        let dest = scratch.dir("dest");
        unpack_layer(&tar[..], &dest).unwrap();
        let meta = |rel: &str| fs::symlink_metadata(dest.join(rel)).unwrap();
        assert_eq!(
            fs::read_to_string(dest.join("etc/passwd")).unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
        assert_eq!((meta("etc/passwd").uid(), meta("etc/passwd").gid()), (7, 8));
        assert_eq!(meta("bin/sh").mode() & 0o7777, 0o4755, "setuid kept");
        assert_eq!(
            meta("bin/sh").ino(),
            meta("bin/sh-link").ino(),
            "a hard link"
        );
        assert_eq!(
            fs::read_link(dest.join("etc/motd")).unwrap(),
            Path::new("../run/motd")
        );
        assert_eq!(
            (meta("etc/motd").uid(), meta("etc/motd").mtime()),
            (9, 1_000_000)
        );
        assert_eq!(fs::read_link(dest.join("slash")).unwrap(), Path::new("/"));
        assert_eq!(fs::read_link(dest.join("dot")).unwrap(), Path::new("a/."));
        assert!(meta("run/fifo").file_type().is_fifo());
        assert_eq!(meta("run/fifo").mode() & 0o7777, 0o640);
        // Directory times survive the children created in them.
        assert_eq!(meta("etc").mtime(), 1_000_000);
        assert_eq!(meta("bin/sh").mtime(), 1_000_000);
        // And unpacking then writing again gives the same layer.
        assert_eq!(layer_of(&dest), tar);
    }

    #[test]
    fn long_names_round_trip() {
        let scratch = Scratch::new("long");
        let root = scratch.dir("root");
        let deep = format!("{}/{}/{}", "d".repeat(60), "e".repeat(60), "f".repeat(150));
        write_file(&root.join(&deep), "deep", 1);
        let far = format!("/{}/target", "t".repeat(120));
        symlink(&far, root.join("far")).unwrap();
        fs::hard_link(root.join(&deep), root.join("g".repeat(200))).unwrap();

        let tar = layer_of(&root);
        let names = names(&tar);
        assert!(names.contains(&deep));
        assert!(names.contains(&format!("{}/{}/", "d".repeat(60), "e".repeat(60))));

        let dest = scratch.dir("dest");
        unpack_layer(&tar[..], &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join(&deep)).unwrap(), "deep");
        assert_eq!(fs::read_link(dest.join("far")).unwrap(), Path::new(&far));
        let ino = |rel: &str| fs::metadata(dest.join(rel)).unwrap().ino();
        assert_eq!(ino(&deep), ino(&"g".repeat(200)));
    }

    #[test]
    fn whiteouts_become_oci_files_and_back() {
        let scratch = Scratch::new("whiteout");
        let root = scratch.dir("root");
        fs::create_dir(root.join("etc")).unwrap();
        whiteout::make_overlay_whiteout(&root.join("etc/gone")).unwrap();
        set_mtime(&root.join("etc/gone"), EPOCH as i64 + 1);

        let tar = layer_of(&root);
        let headers = headers(&tar);
        assert_eq!(headers.len(), 2);
        let (name, marker) = &headers[1];
        assert_eq!(name, "etc/.wh.gone");
        assert_eq!(marker.entry_type(), EntryType::Regular);
        assert_eq!(marker.size().unwrap(), 0);
        assert_eq!(marker.mode().unwrap(), MARKER_MODE);
        assert_eq!(marker.mtime().unwrap(), EPOCH);

        let dest = scratch.dir("dest");
        unpack_layer(&tar[..], &dest).unwrap();
        let meta = fs::symlink_metadata(dest.join("etc/gone")).unwrap();
        assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
        assert!(!dest.join("etc/.wh.gone").exists());
    }

    #[test]
    fn opaque_dirs_become_markers_and_back() {
        let scratch = Scratch::new("opaque");
        let root = scratch.dir("root");
        write_file(&root.join("d/-first"), "", 1);
        write_file(&root.join("d/z"), "", 1);
        whiteout::make_opaque(&root.join("d")).unwrap();

        let tar = layer_of(&root);
        assert_eq!(names(&tar), ["d/", "d/.wh..wh..opq", "d/-first", "d/z"]);

        let dest = scratch.dir("dest");
        unpack_layer(&tar[..], &dest).unwrap();
        assert!(whiteout::is_opaque_dir(&dest.join("d")).unwrap());
        assert!(!whiteout::is_opaque_dir(&dest).unwrap());
        assert!(!dest.join("d/.wh..wh..opq").exists());
        assert_eq!(layer_of(&dest), tar);
    }

    #[test]
    fn devices_are_refused_and_sockets_skipped() {
        let scratch = Scratch::new("devices");
        let root = scratch.dir("root");
        let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        write_file(&root.join("file"), "", 1);
        assert_eq!(names(&layer_of(&root)), ["file"]);

        let null = nix::sys::stat::makedev(1, 3);
        let flags = nix::sys::stat::SFlag::S_IFCHR;
        nix::sys::stat::mknod(
            &root.join("null"),
            flags,
            Mode::from_bits_truncate(0o666),
            null,
        )
        .unwrap();
        let error = write_layer(&root, Vec::new(), EPOCH).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "{}: device nodes cannot go into a layer",
                root.join("null").display()
            )
        );
    }

    #[test]
    fn files_named_like_whiteouts_are_refused() {
        let scratch = Scratch::new("reserved");
        let root = scratch.dir("root");
        write_file(&root.join(".wh.x"), "", 1);
        let error = write_layer(&root, Vec::new(), EPOCH).unwrap_err();
        assert!(
            format!("{error:#}").contains("reserved for whiteouts"),
            "{error:#}"
        );
    }

    // ---- Hostile tars, built by hand ------------------------------------

    /// A raw entry: the name goes into the header as bytes, unchecked (the
    /// tar crate's own setters refuse `..` and absolute paths).
    fn raw(tar: &mut Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1000);
        header.set_cksum();
        tar.append(&header, data).unwrap();
    }

    /// A raw entry: (name, type, link target, data).
    type Raw<'a> = (&'a str, EntryType, &'a str, &'a str);

    /// A tar of raw entries.
    fn hostile(entries: &[Raw]) -> Vec<u8> {
        let mut tar = Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            raw(&mut tar, name, *kind, link, data.as_bytes());
        }
        tar.into_inner().unwrap()
    }

    fn unpack_error(scratch: &Scratch, entries: &[Raw]) -> String {
        let dest = scratch.dir("dest");
        let error = unpack_layer(&hostile(entries)[..], &dest).unwrap_err();
        format!("{error:#}")
    }

    const FILE: EntryType = EntryType::Regular;

    #[test]
    fn absolute_paths_are_refused() {
        let scratch = Scratch::new("absolute");
        let target = scratch.path("abs-file");
        let name = target.to_str().unwrap();
        let error = unpack_error(&scratch, &[(name, FILE, "", "x")]);
        assert_eq!(error, format!("{name}: absolute path in layer"));
        assert!(!target.exists());
    }

    #[test]
    fn dot_dot_is_refused() {
        for name in ["../x", "a/../../x", "./../x", "a/b/../../../x"] {
            let scratch = Scratch::new("dotdot");
            let error = unpack_error(
                &scratch,
                &[("a/", EntryType::Directory, "", ""), (name, FILE, "", "x")],
            );
            assert_eq!(error, format!("{name}: `..` in layer path"));
            assert!(!scratch.path("x").exists());
        }
    }

    #[test]
    fn names_from_extension_records_are_checked_too() {
        let scratch = Scratch::new("extensions");
        // A pax record is "LENGTH key=value\n", LENGTH counting itself.
        let pax = ("PaxHeader", EntryType::XHeader, "", "13 path=../x\n");
        let error = unpack_error(&scratch, &[pax, ("innocent", FILE, "", "x")]);
        assert_eq!(error, "../x: `..` in layer path");
        let long = ("././@LongLink", EntryType::GNULongName, "", "../x\0");
        let error = unpack_error(&scratch, &[long, ("innocent", FILE, "", "x")]);
        assert_eq!(error, "../x: `..` in layer path");
        let pax = (
            "PaxHeader",
            EntryType::XHeader,
            "",
            "24 linkpath=/etc/shadow\n",
        );
        let error = unpack_error(&scratch, &[pax, ("h", EntryType::Link, "innocent", "")]);
        assert_eq!(error, "h: hard link to /etc/shadow: absolute path in layer");
        assert!(!scratch.path("x").exists());
    }

    #[test]
    fn nothing_is_written_through_a_symlink() {
        let scratch = Scratch::new("symlink");
        let outside = scratch.dir("outside");
        let evil = outside.to_str().unwrap();
        for victim in [
            "evil/file",
            "evil/sub/file",
            "evil/.wh.x",
            "evil/.wh..wh..opq",
        ] {
            let error = unpack_error(
                &scratch,
                &[
                    ("evil", EntryType::Symlink, evil, ""),
                    (victim, FILE, "", "pwned"),
                ],
            );
            assert_eq!(error, format!("{victim}: goes through the symlink evil"));
        }
        let error = unpack_error(
            &scratch,
            &[
                ("evil", EntryType::Symlink, evil, ""),
                ("evil/d/", EntryType::Directory, "", ""),
            ],
        );
        assert_eq!(error, "evil/d/: goes through the symlink evil");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing outside"
        );
        assert!(!whiteout::is_opaque_dir(&outside).unwrap());
    }

    #[test]
    fn a_file_replaces_a_symlink_instead_of_following_it() {
        let scratch = Scratch::new("replace");
        let outside = scratch.dir("outside");
        let victim = outside.join("victim");
        fs::write(&victim, "safe").unwrap();
        let dest = scratch.dir("dest");
        let tar = hostile(&[
            ("evil", EntryType::Symlink, victim.to_str().unwrap(), ""),
            ("evil", FILE, "", "pwned"),
        ]);
        unpack_layer(&tar[..], &dest).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "safe");
        assert_eq!(fs::read_to_string(dest.join("evil")).unwrap(), "pwned");
        assert!(fs::symlink_metadata(dest.join("evil")).unwrap().is_file());
    }

    #[test]
    fn hard_links_must_stay_inside() {
        let scratch = Scratch::new("hardlink");
        let link = EntryType::Link;
        let cases: [(&[Raw], &str); 6] = [
            (
                &[("h", link, "../../etc/passwd", "")],
                "h: hard link to ../../etc/passwd: `..` in layer path",
            ),
            (
                &[("h", link, "/etc/passwd", "")],
                "h: hard link to /etc/passwd: absolute path in layer",
            ),
            (
                &[
                    ("s", EntryType::Symlink, "/etc/passwd", ""),
                    ("h", link, "s", ""),
                ],
                "h: hard link to s: not a regular file",
            ),
            (
                &[
                    ("etc", EntryType::Symlink, "/etc", ""),
                    ("h", link, "etc/passwd", ""),
                ],
                "h: hard link to etc/passwd: goes through the symlink etc",
            ),
            (
                &[("h", link, "missing", "")],
                "h: hard link to missing: no such file in the layer",
            ),
            (
                &[("d/", EntryType::Directory, "", ""), ("h", link, "d", "")],
                "h: hard link to d: not a regular file",
            ),
        ];
        for (entries, message) in cases {
            assert_eq!(unpack_error(&scratch, entries), message);
        }
    }

    #[test]
    fn devices_and_odd_entries_are_refused() {
        let scratch = Scratch::new("odd");
        let cases = [
            (
                "null",
                EntryType::Char,
                "null: device nodes are not allowed in a layer",
            ),
            (
                "sda",
                EntryType::Block,
                "sda: device nodes are not allowed in a layer",
            ),
            (
                "vol",
                EntryType::new(b'V'),
                "vol: unsupported entry type 'V' in a layer",
            ),
            (".wh..", FILE, ".wh..: whiteout of an invalid name"),
            (".wh...", FILE, ".wh...: whiteout of an invalid name"),
            ("a/.wh.", FILE, "a/.wh.: whiteout of an invalid name"),
            (
                ".wh..wh.plnk",
                FILE,
                ".wh..wh.plnk: unknown whiteout marker",
            ),
        ];
        for (name, kind, message) in cases {
            assert_eq!(unpack_error(&scratch, &[(name, kind, "", "")]), message);
        }
        assert_eq!(
            unpack_error(&scratch, &[("f", FILE, "", "x"), ("f/g", FILE, "", "x")]),
            "f/g: parent f is not a directory"
        );
    }

    #[test]
    fn later_entries_win() {
        let scratch = Scratch::new("later");
        let dest = scratch.dir("dest");
        let dir = EntryType::Directory;
        let tar = hostile(&[
            ("x", FILE, "", "one"),
            ("x", FILE, "", "two"),
            ("d/", dir, "", ""),
            ("d/f", FILE, "", "in d"),
            ("d", FILE, "", "d is a file now"),
            ("f", FILE, "", "f"),
            ("f/", dir, "", ""),
            ("w/", dir, "", ""),
            ("w/inner", FILE, "", ""),
            (".wh.w", FILE, "", ""),
            ("./", dir, "", ""),
            (".", dir, "", ""),
        ]);
        unpack_layer(&tar[..], &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("x")).unwrap(), "two");
        assert_eq!(
            fs::read_to_string(dest.join("d")).unwrap(),
            "d is a file now"
        );
        assert!(fs::symlink_metadata(dest.join("f")).unwrap().is_dir());
        assert!(fs::symlink_metadata(dest.join("w"))
            .unwrap()
            .file_type()
            .is_char_device());
        // The directory times were set at the end, where still a directory.
        assert_eq!(fs::metadata(dest.join("f")).unwrap().mtime(), 1000);
    }

    #[test]
    fn missing_parents_are_made() {
        let scratch = Scratch::new("parents");
        let dest = scratch.dir("dest");
        unpack_layer(&hostile(&[("./a/b/c", FILE, "", "c")])[..], &dest).unwrap();
        let meta = fs::metadata(dest.join("a/b")).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (0o755, 0, 0)
        );
        assert_eq!(fs::read_to_string(dest.join("a/b/c")).unwrap(), "c");
    }
}
