//! A small root filesystem, built offline, from what the machine already has.
//!
//! An image is just a directory of files: programs, the libraries they load,
//! a few files in `/etc`, and empty directories for the kernel's filesystems
//! (`/proc`, `/sys`, `/dev`) to be mounted on. This crate assembles one:
//!
//! - from a **static busybox** when the host has one (`busybox-static` on
//!   Debian): one file that is `sh`, `ls`, `ps`, `mount`, ... depending on the
//!   name it is called by;
//! - otherwise from the **host's own programs**, each with the shared
//!   libraries and the loader that `ldd` says it needs.
//!
//! `MINIBOX_ROOTFS_SOURCE=host` or `=busybox` forces one of the two
//! wherever [`Source::Auto`] is asked for (the graded checks, the base
//! image of step 04, `cargo xtask rootfs DIR`), so that both can be tested
//! on one machine.
//!
//! Shell equivalent of the second way, for one program:
//!
//! ```text
//! mkdir -p root/usr/bin && cp /bin/ls root/usr/bin/
//! ldd /bin/ls | grep -o '/[^ ]*' | xargs -I{} cp --parents {} root/
//! ```
//!
//! Modern distributions merge `/usr`: `/bin`, `/sbin`, `/lib` and `/lib64`
//! are links into `/usr`. The image gets the same links, or a program asking
//! for `/bin/sh` or `/lib64/ld-linux-x86-64.so.2` would find nothing.

pub mod elf;
pub mod libs;

use anyhow::{bail, Context};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The programs every minibox image has, when the host has them. The first
/// three are required.
pub const PROGRAMS: &[&str] = &[
    "sh", "ls", "cat", "echo", "env", "true", "false", "id", "hostname", "ps", "mount", "umount",
    "sleep", "touch", "mkdir", "rm", "mv", "cp", "ln", "grep", "head", "tail", "wc", "uname",
    "readlink", "stat", "tr", "ip",
];

/// Where the programs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// What [`SOURCE_VAR`] asks for (`host` or `busybox`); when it is unset,
    /// a static busybox if the host has one, else the host's programs.
    Auto,
    /// A static busybox; an error if the host has none.
    Busybox,
    /// The host's own programs and their libraries.
    HostPrograms,
}

const NO_BUSYBOX: &str =
    "no static busybox on this machine (Debian: apt-get install busybox-static)";

/// The environment variable that forces the source [`Source::Auto`]
/// stands for: `host` or `busybox`. Unset (or empty): the automatic choice.
pub const SOURCE_VAR: &str = "MINIBOX_ROOTFS_SOURCE";

impl Source {
    /// The source a value of [`SOURCE_VAR`] asks for: `None` (unset or
    /// empty) is [`Source::Auto`].
    pub fn from_setting(value: Option<&str>) -> anyhow::Result<Source> {
        match value.map(str::trim) {
            None | Some("") => Ok(Source::Auto),
            Some("host") => Ok(Source::HostPrograms),
            Some("busybox") => Ok(Source::Busybox),
            Some(other) => bail!("{SOURCE_VAR}={other}: expected `host` or `busybox`, or unset"),
        }
    }

    /// The source that will be used: [`Source::Auto`] made concrete, from
    /// [`SOURCE_VAR`] first, then by looking for a static busybox.
    pub fn resolve(self) -> anyhow::Result<Source> {
        if self != Source::Auto {
            return Ok(self);
        }
        let setting = std::env::var(SOURCE_VAR).ok();
        match Source::from_setting(setting.as_deref())? {
            Source::Busybox if static_busybox().is_none() => {
                bail!("{SOURCE_VAR}=busybox: {NO_BUSYBOX}")
            }
            Source::Auto if static_busybox().is_some() => Ok(Source::Busybox),
            Source::Auto => Ok(Source::HostPrograms),
            forced => Ok(forced),
        }
    }
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// `busybox` or `host programs`.
    pub source: &'static str,
    /// The programs in `/usr/bin`.
    pub programs: Vec<String>,
}

/// The name of the file (in the image's `/etc`) that says how it was made.
pub const MARKER: &str = "etc/minibox-rootfs";

/// A static busybox on this host, if there is one.
pub fn static_busybox() -> Option<PathBuf> {
    [
        "/bin/busybox",
        "/usr/bin/busybox",
        "/usr/sbin/busybox",
        "/sbin/busybox",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|path| fs::read(path).ok().and_then(|bytes| elf::is_static(&bytes)) == Some(true))
}

/// Build an image into `dest`, which must not exist yet.
pub fn build(dest: &Path, source: Source) -> anyhow::Result<Built> {
    if dest.exists() {
        bail!("{} already exists: choose a new directory", dest.display());
    }
    let busybox = match source.resolve()? {
        Source::Busybox => Some(static_busybox().context(NO_BUSYBOX)?),
        _ => None,
    };
    skeleton(dest)?;
    let built = match busybox {
        Some(busybox) => from_busybox(dest, &busybox)?,
        None => from_host(dest)?,
    };
    fs::write(
        dest.join(MARKER),
        format!("a minibox root filesystem, from {}\n", built.source),
    )?;
    Ok(built)
}

/// The directories and links every image has.
fn skeleton(dest: &Path) -> anyhow::Result<()> {
    for dir in [
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib64",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
    ] {
        fs::create_dir_all(dest.join(dir))
            .with_context(|| format!("cannot create {}", dest.join(dir).display()))?;
    }
    // Relative links, so they point inside the image wherever it is mounted.
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        symlink(target, dest.join(link))?;
    }
    fs::set_permissions(dest.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(dest.join("root"), fs::Permissions::from_mode(0o700))?;
    fs::write(
        dest.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(dest.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

fn from_busybox(dest: &Path, busybox: &Path) -> anyhow::Result<Built> {
    copy_file(busybox, &dest.join("usr/bin/busybox"), 0o755)?;
    // busybox looks at the name it was called by (argv[0]) to know which
    // program to be: one link per program.
    for program in PROGRAMS {
        symlink("busybox", dest.join("usr/bin").join(program))?;
    }
    Ok(Built {
        source: "busybox",
        programs: PROGRAMS.iter().map(|p| p.to_string()).collect(),
    })
}

fn from_host(dest: &Path) -> anyhow::Result<Built> {
    let mut programs = Vec::new();
    for program in PROGRAMS {
        let Some(path) = find_on_path(program) else {
            if ["sh", "ls", "cat"].contains(program) {
                bail!(
                    "the host has no `{program}`: a root filesystem needs at least sh, ls and cat"
                );
            }
            continue;
        };
        copy_file(&path, &dest.join("usr/bin").join(program), 0o755)?;
        for library in libs::needed(&path)? {
            copy_into(dest, &library)?;
        }
        programs.push(program.to_string());
    }
    Ok(Built {
        source: "host programs",
        programs,
    })
}

/// Add the host program at `path` to the image as `/usr/bin/NAME`, with the
/// libraries it needs.
pub fn add_program(dest: &Path, path: &Path, name: &str) -> anyhow::Result<()> {
    copy_file(path, &dest.join("usr/bin").join(name), 0o755)?;
    for library in libs::needed(path)? {
        copy_into(dest, &library)?;
    }
    Ok(())
}

/// A host program on the usual `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// Copy the host file at absolute `path` to the same path inside `dest`
/// (following the image's own `/lib` -> `usr/lib` links on the way).
fn copy_into(dest: &Path, path: &Path) -> anyhow::Result<()> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        bail!("refusing the odd library path {}", path.display());
    }
    let target = dest.join(relative);
    if target.exists() {
        return Ok(());
    }
    copy_file(path, &target, 0o755)
}

/// Copy the *content* of `from` (following links) to `to`.
fn copy_file(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The image for `source`, built once under `cache` and reused: safe when
/// several test processes ask at the same time (a lock, and a build in a
/// temporary directory renamed into place when complete).
pub fn cached(cache: &Path, source: Source) -> anyhow::Result<PathBuf> {
    // Named by the source actually used, so that installing busybox, or
    // setting MINIBOX_ROOTFS_SOURCE, never reuses an image of the other kind.
    let source = source.resolve()?;
    let name = match source {
        Source::Busybox => "rootfs-busybox",
        _ => "rootfs-host",
    };
    let ready = cache.join(name);
    if ready.join(MARKER).exists() {
        return Ok(ready);
    }
    fs::create_dir_all(cache)?;
    let lock = fs::File::create(cache.join(format!(".{name}.lock")))?;
    // flock(2): one builder at a time; the others wait, then find it built.
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .context("cannot lock the rootfs cache")?;
    if ready.join(MARKER).exists() {
        return Ok(ready);
    }
    let building = cache.join(format!(".{name}.building-{}", std::process::id()));
    let _ = fs::remove_dir_all(&building);
    let _ = fs::remove_dir_all(&ready); // a half-made one from a killed build
    build(&building, source)?;
    fs::rename(&building, &ready)?;
    Ok(ready)
}
