//! Layer tars, read back into a directory without ever writing outside it.
//!
//! Unpacking runs as root, and later on tars that come from elsewhere. A
//! hostile tar can name `../../etc/passwd` or `/etc/passwd`, or first make
//! a symlink `evil -> /etc` and then write `evil/passwd`, or a hard link to
//! a host file. Every entry is checked, and no path is ever followed
//! through a symlink while writing. OCI's `.wh.` markers become overlayfs
//! whiteouts again (see [`crate::whiteout`]), so the unpacked layer can be
//! stacked. Shell, minus the checks and the whiteouts:
//!
//! ```text
//! mkdir diff && tar -C diff --numeric-owner -xpf layer.tar
//! ```

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{fchown, lchown, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::{EntryType, Header};

use crate::whiteout;

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
    // TODO(lesson-04): return the components of the tar path `raw`, or refuse it: an absolute path, a `..` anywhere, or a NUL byte is an error (naming `what`); `.` components and repeated or trailing slashes count for nothing; the root itself (`.`, `./`) is None
    // A hostile tar names `../../etc/passwd` or `/etc/passwd`: both must be
    // refused before anything is written. Shell: GNU tar strips a leading
    // `/` and refuses `..` ("Member name contains '..'").
    // BEGIN SOLUTION
    use std::path::Component;
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
    // END SOLUTION
}

/// Check, one by one, the directories an entry goes through, and return the
/// last one's path. Each must be a real directory: a symlink there would
/// send the write elsewhere, maybe outside `dest`. With `create`, missing
/// ones are made (mode 0755, owned by root), as Docker does.
fn enter_parents(dest: &Path, parents: &[OsString], name: &str, create: bool) -> Result<PathBuf> {
    // TODO(lesson-04): return `dest` joined with `parents`, once each of them is checked one by one to be a real directory inside `dest`: a symlink there (even one to a directory, even one that stays inside) or any other non-directory is an error (naming `name`); a missing one is made (mode 0755, owned by root) when `create`, and is an error otherwise
    // A tar can first make `evil -> /etc` and then write `evil/passwd`: the
    // second entry goes through a link it made itself. Check each parent
    // with lstat(2), which describes a link, not its target. Shell: GNU tar
    // first extracts a link that points out (absolute, or with `..`) as an
    // empty placeholder file, and makes the link only at the end, so
    // `evil/passwd` fails with "Not a directory".
    // BEGIN SOLUTION
    let mut dir = dest.to_path_buf();
    let mut rel = PathBuf::new();
    for part in parents {
        dir.push(part);
        rel.push(part);
        // lstat(2), not stat(2): it describes a symlink, not its target,
        // and a symlink is no directory, even when its target is one.
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "{name}: goes through {}, which is no real directory",
                rel.display()
            ),
            Err(error) if error.kind() == io::ErrorKind::NotFound && create => {
                make_dir(&dir, 0, 0, 0o755)
                    .with_context(|| format!("{name}: cannot create {}", rel.display()))?;
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("{name}: cannot enter {}", rel.display()))
            }
        }
    }
    Ok(dir)
    // END SOLUTION
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
    // TODO(lesson-04): when this returns, the OCI marker `.wh.NAME` (NAME is `hidden`) in `parent` has become what overlayfs understands: whatever this layer had at `parent/NAME` is gone, and an overlayfs whiteout stands there instead; a marker that would name `parent` itself or its parent (empty NAME, `.` or `..`) is refused
    // A whiteout later in the tar than NAME's own entry wins over it.
    // Shell: `rm -rf PARENT/NAME; mknod PARENT/NAME c 0 0`.
    // BEGIN SOLUTION
    // `.wh..` or `.wh...` would "delete" `parent` or its parent.
    if matches!(hidden, b"" | b"." | b"..") {
        bail!("{name}: whiteout of an invalid name");
    }
    let path = parent.join(OsStr::from_bytes(hidden));
    // A whiteout later in the tar than NAME's own entry wins over it.
    remove_existing(&path).with_context(|| format!("{name}: cannot remove what it deletes"))?;
    whiteout::make_overlay_whiteout(&path)
        .with_context(|| format!("{name}: cannot create the whiteout (mknod c 0 0)"))
    // END SOLUTION
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
    // TODO(lesson-04): when this returns, `path` is a new regular file with the entry's data, owner, permission bits (setuid and setgid kept) and mtime; whatever stood at `path` before (a file, a directory, a symlink to anywhere) was removed, never opened or followed, and nobody could read the file before its data and mode were in
    // An earlier entry can have left a symlink `path -> /etc/shadow`: opening
    // it for writing would write the host's file. Create it so that the
    // kernel fails if anything is there, even a dangling link. chown(2)
    // clears setuid and setgid bits: mind the order. Shell: `rm -f PATH;
    // install -m MODE -o UID -g GID /dev/stdin PATH`.
    // BEGIN SOLUTION
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
    // END SOLUTION
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
///
/// `dest` is the layer's dir; `parts` the entry's own path in the layer,
/// as [`layer_path`] returned it (its components, checked); `path` where
/// the link goes (`dest` joined with `parts`, its parents already
/// entered); `name` the entry's name as the tar has it, for errors.
fn unpack_hard_link<R: Read>(
    entry: &tar::Entry<R>,
    dest: &Path,
    parts: &[OsString],
    path: &Path,
    name: &str,
) -> Result<()> {
    // TODO(lesson-04): when this returns, `path` is a second name of the regular file that the entry's link target names in this layer; the target is checked like any entry path (no absolute path, no `..`), must be reached without symlinks, must already exist in `dest` as a regular file and must not be the entry itself; anything else is an error naming `name`
    // A hard link to `/etc/shadow`, or through a link pointing out, would
    // give the layer a name for a file of the host. link(2) does not follow
    // a symlink that is the target, but it does follow one among the
    // target's parents. Shell: `ln TARGET PATH`.
    // BEGIN SOLUTION
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
    // lstat(2): a symlink named as the target is no regular file either.
    let meta = fs::symlink_metadata(&target)
        .with_context(|| format!("{what}: no such file in the layer"))?;
    if !meta.is_file() {
        bail!("{what}: not a regular file");
    }
    remove_existing(path).with_context(|| format!("{name}: cannot replace"))?;
    // link(2) (linkat without AT_SYMLINK_FOLLOW): a new name for the same
    // inode, which keeps its own owner, mode and times.
    fs::hard_link(&target, path).with_context(|| format!("{what}: cannot create the link"))
    // END SOLUTION
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
