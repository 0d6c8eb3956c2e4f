//! What the container finds mounted: `/proc`, `/dev`, `/sys`, `/tmp`.
//!
//! An image holds only empty directories for these: the kernel provides
//! their contents. They are mounted on the rootfs *before* entering it, while
//! the host's `/dev` and `/sys` are still in reach, on top of the rootfs bind
//! (so `pivot_root` carries them along); `given/layout.rs` says where, and in
//! what order. `--read-only` is here too.
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
//! Every mount flag is a mount's own: `nosuid` (setuid and setgid bits
//! ignored), `nodev` (device nodes can't be opened), `noexec` (nothing runs
//! from it), `ro`. `/proc/self/mountinfo` shows them in its sixth field,
//! and the filesystem's own options after the ` - `.
//!
//! A real runtime also *masks* parts of `/proc` and `/sys` that would tell or
//! change too much about the host (`/proc/kcore`, `/proc/sysrq-trigger`,
//! `/sys/firmware`, ...) by mounting empty files or tmpfs over them; see the
//! book's "What real runtimes add".

use nix::errno::Errno;
use nix::fcntl::{open, OFlag, AT_FDCWD};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fchmodat, makedev, mknod, FchmodatFlags, Mode, SFlag};
use nix::unistd::mkdir;
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

// ANCHOR: mount_proc
/// The container's `/proc`, at `target` in the rootfs (not entered yet).
pub fn mount_proc(target: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards `target` is a procfs mount of the container's own, showing the processes of this process's PID namespace (the container's, or with --pid host the host's), with nothing mounted below it, and from which no setuid program, device node or program at all can be used; in a user namespace that doesn't own this PID namespace, where the kernel refuses a new proc, it shows the host's /proc instead. Shell: `mount -t proc -o nosuid,nodev,noexec proc ROOTFS/proc`, else `mount --rbind /proc ROOTFS/proc`
    // Why not always `mount --rbind /proc`? It brings along every mount
    // below the host's /proc: binfmt_misc's `register`, writable, is a
    // program the host's kernel runs for the next file of a format you
    // name. A new proc mount shows the PID namespace of the process that
    // mounts it. Inside a user namespace that doesn't own the host's PID
    // namespace the kernel refuses it (EPERM): there, and only there, bind
    // the host's, whose mounts are then locked (the kernel refuses to bind
    // a mount without the locked mounts below it: EINVAL) and owned by the
    // host's root.
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

// ANCHOR: make_devices
/// Create the [`DEVICES`] in `dev`.
pub fn make_devices(dev: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards each of DEVICES is in `dev` under its name: a character device with its major and minor numbers that everyone may read and write (0666, whatever this process's umask), or, in a user namespace, where the kernel refuses to make device nodes, the host's own /dev/NAME shown at that name
    // A device node is a file that *is* a driver, named by two numbers.
    // Making one applies the umask to its mode, as every file creation
    // does. In a user namespace making one fails with EPERM (a node would
    // be a way around the host's permissions): there, make an empty file
    // and show the host's node on it, as runc does for rootless containers.
    // Shell: `mknod -m 666 DEV/null c 1 3`; in a user namespace `touch
    // DEV/null; mount --bind /dev/null DEV/null`.
    // BEGIN SOLUTION
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        let all = Mode::from_bits_truncate(0o666);
        // mknod(2) with S_IFCHR: a file that *is* the driver (major, minor).
        match mknod(&path, SFlag::S_IFCHR, all, makedev(major, minor)) {
            // chmod(2): the umask took bits away.
            Ok(()) => fchmodat(AT_FDCWD, &path, all, FchmodatFlags::FollowSymlink)?,
            Err(Errno::EPERM) => {
                // open(2) with O_CREAT: an empty file to mount on.
                drop(open(&path, OFlag::O_CREAT | OFlag::O_CLOEXEC, all)?);
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

// ANCHOR: mount_dev
/// The container's `/dev`, at `dev` in the rootfs (not entered yet).
pub fn mount_dev(dev: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards `dev` is a tmpfs of its own (mode 0755, 64 MiB, access times kept strictly, no setuid program) holding the DEVICES, a directory `pts` with a devpts instance of the container's own (not the host's terminals; its ptmx usable by everyone, new terminals 0620; no setuid program, no program at all) and a directory `shm` with a tmpfs for POSIX shared memory (mode 1777, 64 MiB; no setuid program, device node or program)
    // A tmpfs lives in memory and starts empty; its `mode` and `size`
    // options are the filesystem's. devpts with `newinstance` starts a set
    // of terminals apart from the host's; its `ptmxmode` is the mode of its
    // `ptmx` (opened to get a new terminal) and `mode` that of each new
    // terminal. The `strictatime` flag keeps every access time, as docker's
    // /dev has. Shell: `mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs DEV`,
    // the devices, `mkdir DEV/pts DEV/shm`, `mount -t devpts -o
    // nosuid,noexec,newinstance,ptmxmode=0666,mode=0620 devpts DEV/pts`,
    // `mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm DEV/shm`.
    // BEGIN SOLUTION
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    make_devices(dev)?;
    let pts = dev.join("pts");
    let shm = dev.join("shm");
    for dir in [&pts, &shm] {
        mkdir(dir, Mode::from_bits_truncate(0o755))?;
    }
    // A devpts of the container's own: its terminals are not the host's.
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    // END SOLUTION
}
// ANCHOR_END: mount_dev

// ANCHOR: mount_sys
/// The container's `/sys`, at `sys` in the rootfs (not entered yet).
pub fn mount_sys(sys: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards `sys` shows the kernel's sysfs read-only, with no setuid program, device node or program usable from it; in a user namespace that doesn't own its network namespace (--userns --network host), where the kernel refuses a new sysfs, it shows the host's /sys, with everything mounted below it, read-only and with the same restrictions
    // A new sysfs shows the devices of the mounting process's network
    // namespace. A bind mount takes no flags of its own when it is made
    // (MS_RDONLY and the others are ignored along with MS_BIND): they are
    // set by remounting the bind, which changes that mount alone. Shell:
    // `mount -t sysfs -o ro,nosuid,nodev,noexec sysfs SYS`, else `mount
    // --rbind /sys SYS; mount -o remount,bind,ro,nosuid,nodev,noexec SYS`.
    // BEGIN SOLUTION
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some("sysfs"), sys, Some("sysfs"), flags, None::<&str>) {
        Err(Errno::EPERM) => {
            mount(
                Some("/sys"),
                sys,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            // The bind's own flags, set by remounting it.
            mount(
                None::<&str>,
                sys,
                None::<&str>,
                MsFlags::MS_REMOUNT
                    | MsFlags::MS_BIND
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
        }
        other => other,
    }
    // END SOLUTION
}
// ANCHOR_END: mount_sys

// ANCHOR: mount_tmp
/// The container's `/tmp`, at `tmp` in the rootfs (not entered yet).
pub fn mount_tmp(tmp: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards `tmp` is a tmpfs of the container's own that everyone may write in while each can remove only their own files (mode 1777), and where no setuid program or device node can be used
    // It stays writable when / is made read-only: a mount of its own.
    // Shell: `mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs TMP`.
    // BEGIN SOLUTION
    mount(
        Some("tmpfs"),
        tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    // END SOLUTION
}
// ANCHOR_END: mount_tmp

// ANCHOR: read_only_root
/// `--read-only`: the container can't change its image. (`/tmp`, `/dev`,
/// `/dev/shm` are mounts of their own and stay writable.)
pub fn read_only_root() -> nix::Result<()> {
    // TODO(lesson-03): afterwards the mount at this process's / is read-only (a write there fails with EROFS), while its filesystem stays writable through every other mount of it (the host's own, for one) and the mounts below / (/tmp, /dev) stay as they were
    // A remount changes flags. Alone, it changes the filesystem's (its
    // superblock's), for every mount of it, the host's too; as a remount
    // of a bind, only this one mount's. Shell: `mount -o remount,bind,ro /`.
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
