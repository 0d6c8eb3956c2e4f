//! The build context, read through file descriptors only.
//!
//! The context is somebody else's directory (a checkout that root builds),
//! and its owner can rename things in it *while* the build reads it. A path
//! string checked and then used is two lookups, and between them `sub` can
//! become a link to a host dir: `canonicalize("sub")` says "inside", then
//! `read_dir("sub")` lists the host's files. So nothing here is looked up
//! by a path twice:
//!
//! - the context is opened once, as a dir fd ([`Context::open`]);
//! - each COPY/ADD source is opened beneath that fd in one system call,
//!   `openat2(2)` with `RESOLVE_BENEATH` ([`open_beneath`]): the kernel
//!   follows links only while they stay beneath, and answers `EXDEV` to
//!   one that leaves;
//! - a dir's children are opened from the dir's own fd, by their bare
//!   names, with `O_NOFOLLOW` ([`child`]), and what each one is comes from
//!   `fstat(2)` of the fd opened, not from a path.
//!
//! An entry renamed meanwhile is copied as what it was when it was opened,
//! or the build stops with one line; nothing outside the context is read.

use anyhow::{bail, Context as _};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// How every source and child is opened: to be read; closed at exec, so
/// no fd of the context reaches a RUN's container; `O_NONBLOCK`, so that a
/// FIFO the owner put in place of a file can't hang the build (it opens at
/// once, and is refused as what it is); `O_NOCTTY`, so that a terminal
/// device never becomes the builder's controlling terminal.
pub const READ_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY);

/// Linux's own limit on links followed in one lookup (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// The build context, open.
pub struct Context {
    dir: OwnedFd,
}

/// A source or a dir's child, as it was when it was opened.
pub enum Entry {
    /// A dir, open to list its children.
    Dir(File),
    /// A regular file, open to be read.
    File(File),
    /// A link inside a copied dir: its target, copied as text, never
    /// followed.
    Link(PathBuf),
}

impl Context {
    /// Open the context dir once; every source is found from this fd.
    pub fn open(path: &Path) -> anyhow::Result<Context> {
        // open(2) with O_PATH | O_DIRECTORY: a handle on the dir itself,
        // good for *at() lookups beneath it, not for reading. Links in
        // `path` are followed: the path is the builder's choice, not the
        // context owner's. ENOENT / ENOTDIR: no such dir.
        let dir = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("build context {}", path.display()))?;
        Ok(Context { dir })
    }

    /// The context's own `Dockerfile`, read: a regular file beneath the
    /// context, at most [`DOCKERFILE_MAX`] bytes. The context's owner
    /// chose it, and `ln -s /etc/shadow Dockerfile` would have the builder
    /// (root) read a host file and echo its lines in the parse errors;
    /// a FIFO would hang the build, `/dev/zero` would fill its memory.
    /// docker reads it from the context too, links kept inside.
    pub fn dockerfile(&self) -> anyhow::Result<String> {
        // openat2(2) with RESOLVE_BENEATH: the name may be a link, as long
        // as it stays in the context. No openat2 (before 5.6): the bare
        // name, with O_NOFOLLOW (ELOOP for a link). Either way O_NONBLOCK:
        // a FIFO opens at once and is refused below, by what it is.
        let how = OpenHow::new()
            .flags(READ_FLAGS)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let opened = match openat2(self.dir.as_fd(), "Dockerfile", how) {
            Err(Errno::ENOSYS) => openat(
                self.dir.as_fd(),
                "Dockerfile",
                READ_FLAGS | OFlag::O_NOFOLLOW,
                Mode::empty(),
            ),
            other => other,
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => bail!("no Dockerfile in the build context (or give one with -f)"),
            Err(Errno::EXDEV | Errno::ELOOP) => {
                bail!("the context's Dockerfile is a link out of the build context")
            }
            Err(e) => bail!("cannot open the context's Dockerfile: {e}"),
        };
        read_dockerfile(File::from(fd), "the context's Dockerfile")
    }

    // ANCHOR: source
    /// The COPY/ADD source `source`, opened beneath the context: a dir or
    /// a regular file, or one line saying why not.
    pub fn source(&self, source: &str) -> anyhow::Result<Entry> {
        let mut tries = 0;
        let opened = loop {
            let opened = match open_beneath(self.dir.as_fd(), source) {
                // A kernel before 5.6 has no openat2: walk the path one
                // name at a time instead, with the same rules.
                Err(Errno::ENOSYS) => walk_beneath(self.dir.as_fd(), source),
                other => other,
            };
            // EAGAIN: a rename somewhere on this machine raced a `..` of
            // the path, and the kernel could not be sure it stayed
            // beneath; it asks to be asked again.
            tries += 1;
            if !matches!(opened, Err(Errno::EAGAIN)) || tries == 3 {
                break opened;
            }
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::EXDEV) => bail!(
                "{source}: outside the build context (COPY reads only the directory given to build)"
            ),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {
                bail!("{source}: not found in the build context")
            }
            Err(Errno::ELOOP) => {
                bail!("{source}: too many links in a row (or a /proc magic link) in the build context")
            }
            // ENXIO: a socket, which open(2) can't open.
            Err(Errno::ENXIO) => bail!("{source}: only files, dirs and links can be copied"),
            Err(Errno::EAGAIN) => {
                bail!("{source}: the build context kept changing while it was read")
            }
            Err(e) => bail!("{source}: cannot open it in the build context: {e}"),
        };
        Entry::opened(fd).with_context(|| source.to_string())
    }
    // ANCHOR_END: source
}

/// The largest Dockerfile read: far beyond any real one (they are a few
/// kB), small enough that a huge or endless file stops the build at once.
pub const DOCKERFILE_MAX: u64 = 1 << 20;

/// Read the Dockerfile open as `file`: a regular file (fstat of the fd,
/// not the name) of at most [`DOCKERFILE_MAX`] bytes, in UTF-8.
pub fn read_dockerfile(file: File, name: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        bail!("{name} is not a regular file");
    }
    // The size fstat says can grow while we read: read one byte past the
    // limit, never more.
    let mut bytes = Vec::new();
    file.take(DOCKERFILE_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > DOCKERFILE_MAX {
        bail!("{name} is larger than {} MiB", DOCKERFILE_MAX >> 20);
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))
}

pub use crate::beneath::open_beneath;

/// One step of a path: a name, or `..`.
enum Step {
    Name(OsString),
    Up,
}

/// The steps of `path`; `/` and `.` are no steps.
fn steps(path: &Path) -> Vec<Step> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(Step::Name(name.to_owned())),
            Component::ParentDir => Some(Step::Up),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

// ANCHOR: walk_beneath
/// [`open_beneath`] without openat2 (kernels before 5.6): one name at a
/// time, each opened with `O_NOFOLLOW` from the fd of the dir before it.
/// A link met on the way is read (`readlinkat`) and its target walked the
/// same way, from the dir that holds it: an absolute target is `EXDEV`, as
/// is a `..` above the context, and more than 40 links `ELOOP`. So links
/// that stay inside work as with openat2, and no lookup ever starts from
/// a path the context's owner could have changed.
fn walk_beneath(context: BorrowedFd<'_>, source: &str) -> nix::Result<OwnedFd> {
    let mut todo: VecDeque<Step> = steps(Path::new(source)).into();
    // The dirs walked into, below the context, deepest last: `..` is a pop.
    let mut dirs: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(step) = todo.pop_front() {
        let here = dirs.last().map_or(context, |dir| dir.as_fd());
        let name = match step {
            Step::Up => {
                dirs.pop().ok_or(Errno::EXDEV)?;
                continue;
            }
            Step::Name(name) => name,
        };
        let last = todo.is_empty();
        // openat(2) with O_NOFOLLOW: this name in this very dir, and never
        // through a link (ELOOP, or ENOTDIR with O_DIRECTORY, if it is
        // one). A dir on the way is opened O_PATH: only to look beneath.
        let flags = if last {
            READ_FLAGS
        } else {
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
        };
        match openat(
            here,
            name.as_os_str(),
            flags | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => dirs.push(fd),
            Err(refused @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                // readlinkat(2): the link's target as text; EINVAL if it
                // is no link (a file where a dir was wanted, or the name
                // swapped back meanwhile): then the open's error stands.
                let target = match readlinkat(here, name.as_os_str()) {
                    Ok(target) => PathBuf::from(target),
                    Err(Errno::EINVAL) => return Err(refused),
                    Err(e) => return Err(e),
                };
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                if target.has_root() {
                    return Err(Errno::EXDEV);
                }
                for step in steps(&target).into_iter().rev() {
                    todo.push_front(step);
                }
            }
            Err(e) => return Err(e),
        }
    }
    // The path ended on a dir (or was the context itself): open it to read.
    let here = dirs.last().map_or(context, |dir| dir.as_fd());
    openat(here, ".", READ_FLAGS, Mode::empty())
}
// ANCHOR_END: walk_beneath

impl Entry {
    /// What the fd just opened is, by fstat(2) of the fd itself: no path
    /// is looked up again.
    fn opened(fd: OwnedFd) -> anyhow::Result<Entry> {
        let file = File::from(fd);
        // fstat(2) on the open fd: the very inode opened, whatever the
        // name means by now.
        let kind = file.metadata()?.file_type();
        if kind.is_dir() {
            Ok(Entry::Dir(file))
        } else if kind.is_file() {
            Ok(Entry::File(file))
        } else {
            bail!("only files, dirs and links can be copied")
        }
    }
}

/// The names in the open dir `dir`, sorted (so the layer is the same on
/// every machine), without `.` and `..`.
pub fn children(dir: &File) -> anyhow::Result<Vec<OsString>> {
    use std::os::fd::IntoRawFd;
    use std::os::unix::ffi::OsStrExt;
    // openat(2) of "." from the dir's fd: a second open file of the same
    // dir, whose reading offset is its own.
    let listing = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?
    .into_raw_fd();
    // SAFETY: `listing` is an fd we own and hand over: fdopendir(3) keeps
    // it (closedir closes it), or fails and leaves it to us.
    let stream = unsafe { libc::fdopendir(listing) };
    if stream.is_null() {
        let error = std::io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the fd is still ours to close.
        unsafe { libc::close(listing) };
        return Err(error.into());
    }
    /// closedir(3) however the loop ends.
    struct Stream(*mut libc::DIR);
    impl Drop for Stream {
        fn drop(&mut self) {
            // SAFETY: the stream is open, and closed only here.
            unsafe { libc::closedir(self.0) };
        }
    }
    let stream = Stream(stream);
    let mut names = Vec::new();
    loop {
        // readdir(3) reads the entries with getdents64(2). It returns
        // NULL at the end *and* on an error, which only errno tells apart:
        // clear it first.
        Errno::clear();
        // SAFETY: the stream is open; the entry it returns is valid until
        // the next readdir on it, and is copied out before that.
        let entry = unsafe { libc::readdir(stream.0) };
        if entry.is_null() {
            match Errno::last() {
                Errno::UnknownErrno => break,
                error => return Err(error.into()),
            }
        }
        // SAFETY: d_name is a NUL-terminated name inside the entry.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    names.sort();
    Ok(names)
}

// ANCHOR: child
/// The entry `name` of the open dir `dir`: a link is read as a link, a
/// dir or a file is opened from `dir`'s fd, never through a link.
pub fn child(dir: &File, name: &OsStr) -> anyhow::Result<Entry> {
    // fstatat(2) with AT_SYMLINK_NOFOLLOW: what `name` is in this very dir
    // (a link itself, not its target). Only a first look: the open below
    // decides.
    let stat = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFLNK => match readlinkat(dir, name) {
            // readlinkat(2): the target as text, for the layer.
            Ok(target) => Ok(Entry::Link(target.into())),
            // EINVAL: not a link any more; renamed while we looked.
            Err(Errno::EINVAL) => bail!("changed while COPY read it (no longer a link)"),
            Err(e) => Err(e.into()),
        },
        SFlag::S_IFDIR | SFlag::S_IFREG => {
            // openat(2) with O_NOFOLLOW: if a link was swapped in since
            // the fstatat, ELOOP, never its target.
            match openat(dir, name, READ_FLAGS | OFlag::O_NOFOLLOW, Mode::empty()) {
                Ok(fd) => Entry::opened(fd),
                Err(Errno::ELOOP) => bail!("changed while COPY read it (now a link)"),
                Err(e) => Err(e.into()),
            }
        }
        _ => bail!("only files, dirs and links can be copied"),
    }
}
// ANCHOR_END: child

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    /// A context with files, dirs and links in and out, and a dir outside.
    fn fixture() -> (PathBuf, Context) {
        let top = std::env::temp_dir().join(format!(
            "minibox-context-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&top);
        let ctx = top.join("ctx");
        std::fs::create_dir_all(ctx.join("sub/deep")).unwrap();
        std::fs::create_dir_all(top.join("host")).unwrap();
        std::fs::write(ctx.join("sub/a"), "A").unwrap();
        std::fs::write(ctx.join("sub/deep/b"), "B").unwrap();
        std::fs::write(top.join("host/secret"), "S").unwrap();
        symlink("sub", ctx.join("in")).unwrap();
        symlink("../a", ctx.join("sub/deep/up")).unwrap();
        symlink("in/deep/up", ctx.join("chain")).unwrap();
        symlink("../host", ctx.join("out")).unwrap();
        symlink(top.join("ctx/sub"), ctx.join("absolute")).unwrap();
        symlink("loop", ctx.join("loop")).unwrap();
        std::os::unix::net::UnixListener::bind(ctx.join("socket")).unwrap();
        let context = Context::open(&ctx).unwrap();
        (top, context)
    }

    /// (dev, inode) of what was opened, or the error.
    fn what(opened: nix::Result<OwnedFd>) -> Result<(u64, u64), Errno> {
        opened.map(|fd| {
            let meta = File::from(fd).metadata().unwrap();
            (meta.dev(), meta.ino())
        })
    }

    #[test]
    fn the_walk_finds_what_openat2_finds() {
        let (top, context) = fixture();
        let dir = context.dir.as_fd();
        let cases = [
            ("sub/a", Ok(())),
            ("/sub/a", Ok(())),
            ("sub", Ok(())),
            ("", Ok(())),
            ("/", Ok(())),
            (".", Ok(())),
            ("in/a", Ok(())),
            ("in/deep/up", Ok(())),
            ("chain", Ok(())),
            ("sub/deep/../a", Ok(())),
            ("in/..", Ok(())),
            ("../ctx/sub/a", Err(Errno::EXDEV)),
            ("sub/../../host", Err(Errno::EXDEV)),
            ("out", Err(Errno::EXDEV)),
            ("out/secret", Err(Errno::EXDEV)),
            ("absolute", Err(Errno::EXDEV)),
            ("loop", Err(Errno::ELOOP)),
            ("missing", Err(Errno::ENOENT)),
            ("sub/a/b", Err(Errno::ENOTDIR)),
        ];
        for (source, expected) in cases {
            // EAGAIN: a rename anywhere on the machine (other tests run
            // beside this one) raced a `..`; the kernel asks to be asked
            // again, as `source` does.
            let kernel = loop {
                match open_beneath(dir, source) {
                    Err(Errno::EAGAIN) => continue,
                    opened => break what(opened),
                }
            };
            let walked = what(walk_beneath(dir, source));
            assert_eq!(kernel.map(|_| ()), expected, "openat2 of {source:?}");
            assert_eq!(walked, kernel, "the walk of {source:?}");
        }
        // A socket opens with neither; both say so alike.
        assert_eq!(
            what(walk_beneath(dir, "socket")),
            what(open_beneath(dir, "socket"))
        );
        std::fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn sources_and_children_are_what_was_opened() {
        let (top, context) = fixture();
        let message = |r: anyhow::Result<Entry>| format!("{:#}", r.err().unwrap());
        assert!(matches!(context.source("in"), Ok(Entry::Dir(_))));
        assert!(matches!(context.source("chain"), Ok(Entry::File(_))));
        assert!(message(context.source("out")).contains("outside the build context"));
        assert!(message(context.source("../x")).contains("outside the build context"));
        assert!(message(context.source("missing")).contains("not found"));
        assert!(message(context.source("socket")).contains("only files, dirs and links"));
        let Ok(Entry::Dir(sub)) = context.source("sub") else {
            panic!("sub is a dir")
        };
        assert_eq!(children(&sub).unwrap(), ["a", "deep"]);
        let Ok(Entry::Dir(deep)) = child(&sub, OsStr::new("deep")) else {
            panic!("deep is a dir")
        };
        let Ok(Entry::Link(up)) = child(&deep, OsStr::new("up")) else {
            panic!("up is a link, copied as one")
        };
        assert_eq!(up, Path::new("../a"));
        assert!(matches!(child(&deep, OsStr::new("b")), Ok(Entry::File(_))));
        // An open dir keeps meaning that dir when its name moves.
        std::fs::rename(top.join("ctx/sub"), top.join("ctx/moved")).unwrap();
        std::os::unix::fs::symlink(top.join("host"), top.join("ctx/sub")).unwrap();
        assert_eq!(children(&sub).unwrap(), ["a", "deep"]);
        std::fs::remove_dir_all(top).unwrap();
    }
}
