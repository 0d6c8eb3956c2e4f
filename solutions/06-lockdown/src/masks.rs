//! Masked and read-only paths: the parts of `/proc` and `/sys` that are the
//! host's, not the container's.
//!
//! `/proc` of a PID namespace shows the container's processes, but most of
//! the rest of it is the one kernel's: `/proc/kcore` (its memory),
//! `/proc/keys`, `/proc/timer_list`, `/proc/sched_debug` (what every process
//! on the machine does), and `/proc/sys`, the kernel's settings. Writing
//! `/proc/sys/kernel/core_pattern` is a classic escape: a pattern starting
//! with `|` names a program the *host's* kernel runs, as host root, for the
//! next crash on the machine. `/proc/sysrq-trigger` reboots it.
//!
//! Docker does two things, and so does minibox, in the container's init
//! once it is in its rootfs:
//!
//! - **masked**: a file gets `/dev/null` bind-mounted over it, a directory
//!   an empty read-only tmpfs: reads find nothing;
//!   `mount --bind /dev/null /proc/kcore`;
//! - **read-only**: bind-mounted onto itself, then remounted read-only:
//!   reads work, writes fail with `EROFS`;
//!   `mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys`.
//!
//! Neither could stop a process with `CAP_SYS_ADMIN`, which could unmount
//! them: that capability is dropped right after, and seccomp denies
//! `mount` and `umount2` as well. `/sys` is mounted read-only by step 03.

use nix::errno::Errno;

/// Docker's masked paths (moby's `oci/defaults.go`).
pub const MASKED: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

// ANCHOR: mask
/// Hide `path`: `/dev/null` over a file, an empty read-only tmpfs over a
/// directory. A path this kernel doesn't have is left alone.
pub fn mask(path: &str) -> Result<(), Errno> {
    // TODO(lesson-06): when this returns, reading `path` finds nothing: a file reads empty (it is the null device now: `stat` shows c 1:3), a directory lists empty and refuses new files (EROFS); it is a mount of this mount namespace only, the files underneath untouched, and a path this kernel doesn't have (ENOENT) is no error (Ok, nothing done), while any other errno from looking it up is returned. Shell: `mount --bind /dev/null /proc/kcore`; `mount -t tmpfs -o ro tmpfs /proc/acpi`
    // A mount can hide a file as well as a directory, but only with a
    // file: the kernel refuses to put a directory over a file, or a file
    // over a directory (ENOTDIR).
    // BEGIN SOLUTION
    use nix::mount::{mount, MsFlags};
    // stat(2): a file or a directory? ENOENT: not on this kernel (e.g.
    // /proc/timer_stats); any other error is one.
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    };
    if meta.is_dir() {
        // mount(2) of a new tmpfs, read-only: an empty directory.
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        // mount(2) MS_BIND: the null device's inode shown at `path`.
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
    // END SOLUTION
}
// ANCHOR_END: mask

// ANCHOR: read_only
/// Make `path` read-only, for this container only.
pub fn read_only(path: &str) -> Result<(), Errno> {
    // TODO(lesson-06): when this returns, `path` (a file or a directory, with whatever is mounted below it) reads as before but refuses every write (EROFS), and runs no program, honours no setuid bit and opens no device node; only this mount namespace's view changes, not the filesystem underneath (the host's /proc stays writable), and a path this kernel doesn't have is no error. Shell: `mount --rbind P P; mount -o remount,bind,ro,nosuid,nodev,noexec P`
    // A bind mount is made with the flags of its source: its own flags
    // change only by remounting that bind. A remount that doesn't say
    // "bind" changes the filesystem itself, for every mount of it, the
    // host's too.
    // BEGIN SOLUTION
    use nix::mount::{mount, MsFlags};
    if !std::path::Path::new(path).exists() {
        return Ok(());
    }
    // mount(2): a bind of `path` onto itself, with what is mounted below.
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    // mount(2) MS_REMOUNT | MS_BIND: that bind's own flags, nothing else.
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
    // END SOLUTION
}
// ANCHOR_END: read_only

// ANCHOR: apply
/// All of them, in the container's init (inside its rootfs). The error:
/// what was being done (naming the path), and the kernel's errno.
pub fn apply() -> Result<(), (String, Errno)> {
    // TODO(lesson-06): when this returns Ok, each path of MASKED this kernel has is masked and each of READ_ONLY read-only, in this mount namespace; when /proc or /sys is not a proc or sysfs of its own (nothing mounted there, or something else), it refuses before changing anything: a masked path missing there would otherwise be skipped as "not on this kernel". Shell: `stat -f -c %T /proc` says proc; then `mount --bind /dev/null /proc/kcore` ... for each
    // Every filesystem says what it is by a magic number, whatever path
    // of it you ask about (proc's is 0x9fa0, sysfs's 0x62656572).
    // BEGIN SOLUTION
    use nix::sys::statfs::{statfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    // statfs(2): the filesystem under the path, by its magic.
    for (dir, magic) in [("/proc", PROC_SUPER_MAGIC), ("/sys", SYSFS_MAGIC)] {
        let kind = statfs(dir).map(|s| s.filesystem_type());
        if kind != Ok(magic) {
            return Err((
                format!("{dir} is not the container's own: refused"),
                Errno::ENOTDIR,
            ));
        }
    }
    for path in MASKED {
        mask(path).map_err(|errno| (format!("cannot mask {path}"), errno))?;
    }
    for path in READ_ONLY {
        read_only(path).map_err(|errno| (format!("cannot make {path} read-only"), errno))?;
    }
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: apply
