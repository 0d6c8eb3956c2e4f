//! What the container finds mounted: `/proc`, `/dev`, `/sys`, `/tmp`.
//!
//! An image holds only empty directories for these: the kernel provides
//! their contents. They are mounted on the rootfs *before* entering it, while
//! the host's `/dev` and `/sys` are still in reach, on top of the rootfs bind
//! (so `pivot_root` carries them along).
//!
//! | path       | what                                   | shell |
//! |------------|----------------------------------------|-------|
//! | `/proc`    | proc of the container's PID namespace  | `mount -t proc proc /proc` |
//! | `/dev`     | a tmpfs with a few device nodes        | `mount -t tmpfs tmpfs /dev; mknod /dev/null c 1 3` |
//! | `/dev/pts` | a new devpts instance (terminals)      | `mount -t devpts -o newinstance devpts /dev/pts` |
//! | `/dev/shm` | a tmpfs for POSIX shared memory        | `mount -t tmpfs shm /dev/shm` |
//! | `/sys`     | sysfs, read-only                       | `mount -t sysfs -o ro sysfs /sys` |
//! | `/tmp`     | a tmpfs, writable even with a read-only `/` | `mount -t tmpfs tmpfs /tmp` |
//!
//! A real runtime also *masks* parts of `/proc` and `/sys` that would tell or
//! change too much about the host (`/proc/kcore`, `/proc/sysrq-trigger`,
//! `/sys/firmware`, ...) by mounting empty files or tmpfs over them; see the
//! book's "What real runtimes add".

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// The device nodes every container gets: name, major, minor.
pub const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A failed mount: what was being done, and the kernel's answer.
pub type Failed = (String, Errno);

fn at(what: &str) -> impl Fn(Errno) -> Failed + '_ {
    move |errno| (what.to_string(), errno)
}

fn io_errno(error: std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(nix::libc::EIO))
}

/// Mount everything the container needs under `root`, before entering it.
/// `tmp`: a tmpfs on `/tmp` (step 04 leaves an image's `/tmp` alone, as
/// docker does, unless `/` is read-only).
pub fn container_mounts(root: &Path, tmp: bool) -> Result<(), Failed> {
    let dirs: &[&str] = if tmp {
        &["proc", "dev", "sys", "tmp"]
    } else {
        &["proc", "dev", "sys"]
    };
    for dir in dirs {
        mount_point(root, dir)?;
    }
    mount_proc(&root.join("proc")).map_err(at("cannot mount /proc"))?;
    mount_dev(&root.join("dev"))?;
    mount_sys(&root.join("sys"))?;
    if !tmp {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &root.join("tmp"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(at("cannot mount a tmpfs on /tmp"))
}

/// `ROOT/NAME`, a directory of the rootfs itself, to mount on. An image may
/// lack it: make it (runc does too). An image may also make it a symbolic
/// link, and the mounts come *before* the rootfs is entered, when a link
/// is followed from the host's side: `/proc -> ../merged/p` would put the
/// container's proc at `/p` and leave `/proc` missing, so that step 06's
/// masks find nothing to cover. Anything but a real directory is refused
/// (runc refuses a proc mount anywhere but on `/proc` itself).
fn mount_point(root: &Path, name: &str) -> Result<(), Failed> {
    let path = root.join(name);
    // lstat(2): the link itself, never what it points at.
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err((
            format!("the image's /{name} is not a directory (a symbolic link?): refused"),
            Errno::ENOTDIR,
        )),
        // mkdir(2) of the name itself: no link followed.
        Err(_) => std::fs::create_dir(&path)
            .map_err(|e| (format!("cannot create /{name} in the rootfs"), io_errno(e))),
    }
}

// ANCHOR: mount_proc
/// The container's `/proc`, at `target` in the rootfs (not entered yet).
pub fn mount_proc(target: &Path) -> nix::Result<()> {
    // TODO(lesson-03): when this returns, `target` is a procfs mount of the container's own, showing the processes of this process's PID namespace (the container's, or with --pid host the host's), with nothing mounted below it, and from which no setuid program, device node or program at all can be used. Shell: `mount -t proc -o nosuid,nodev,noexec proc ROOTFS/proc`
    // Why not `mount --rbind /proc` for --pid host? It brings along every
    // mount below the host's /proc: binfmt_misc's `register`, writable, is
    // a program the host's kernel runs for the next file of a format you
    // name. A new proc mount shows the PID namespace of the process that
    // mounts it. Inside a user namespace that doesn't own the host's PID
    // namespace the kernel refuses (EPERM): there, and only there, bind the
    // host's (whose mounts are then locked, and owned by the host's root).
    // BEGIN SOLUTION
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // mount(2) of type proc: a new instance, for this PID namespace.
    match mount(Some("proc"), target, Some("proc"), safe, None::<&str>) {
        Err(Errno::EPERM) => mount(
            Some("/proc"),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        other => other,
    }
    // END SOLUTION
}
// ANCHOR_END: mount_proc

fn mount_dev(dev: &Path) -> Result<(), Failed> {
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(at("cannot mount a tmpfs on /dev"))?;
    make_devices(dev).map_err(at("cannot create the device nodes in /dev"))?;
    let pts = dev.join("pts");
    let shm = dev.join("shm");
    for dir in [&pts, &shm] {
        std::fs::create_dir(dir)
            .map_err(|e| ("cannot create a directory in /dev".to_string(), io_errno(e)))?;
    }
    // A devpts of the container's own: its terminals are not the host's.
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(at("cannot mount /dev/pts"))?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(at("cannot mount /dev/shm"))?;
    // The usual links: programs open /dev/stdin, /dev/fd/3, /dev/ptmx.
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        symlink(target, dev.join(link))
            .map_err(|e| (format!("cannot link /dev/{link}"), io_errno(e)))?;
    }
    Ok(())
}

// ANCHOR: make_devices
/// Create the [`DEVICES`] in `dev`.
pub fn make_devices(dev: &Path) -> nix::Result<()> {
    // TODO(lesson-03): create each of DEVICES in `dev` as a character device: mknod(path, S_IFCHR, 0666, makedev(major, minor)), then chmod it 0666 (mknod applies the umask)
    // In a user namespace mknod fails with EPERM (a device node would be a way
    // around the host's permissions): there, create an empty file instead and
    // bind-mount the host's /dev/NAME onto it.
    // BEGIN SOLUTION
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        // mknod(2) with S_IFCHR: a file that *is* the driver (major, minor).
        match mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        ) {
            Ok(()) => std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
                .map_err(io_errno)?,
            Err(Errno::EPERM) => {
                std::fs::File::create(&path).map_err(io_errno)?;
                let host = Path::new("/dev").join(name);
                mount(
                    Some(&host),
                    &path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
            }
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: make_devices

fn mount_sys(sys: &Path) -> Result<(), Failed> {
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some("sysfs"), sys, Some("sysfs"), flags, None::<&str>) {
        Ok(()) => Ok(()),
        // In a user namespace that doesn't own its network namespace
        // (--userns --network host), sysfs may not be mounted: show the
        // host's, read-only, instead.
        Err(Errno::EPERM) => {
            mount(
                Some("/sys"),
                sys,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(at("cannot bind the host's /sys"))?;
            mount(
                None::<&str>,
                sys,
                None::<&str>,
                flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(at("cannot make /sys read-only"))
        }
        Err(errno) => Err(("cannot mount /sys".to_string(), errno)),
    }
}

// ANCHOR: read_only_root
/// `--read-only`: the container can't change its image. (`/tmp`, `/dev`,
/// `/dev/shm` are mounts of their own and stay writable.)
pub fn read_only_root() -> nix::Result<()> {
    // TODO(lesson-03): remount / read-only: mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)
    // MS_BIND with MS_REMOUNT changes only this mount's flags, not the
    // filesystem's (the host keeps writing to the same disk).
    // BEGIN SOLUTION
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    // END SOLUTION
}
// ANCHOR_END: read_only_root
