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
use nix::mount::{mount, MsFlags};
use std::path::Path;

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
    // TODO(lesson-06): if `path` is a directory, mount a tmpfs on it read-only (mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)); else bind-mount /dev/null onto it (mount("/dev/null", path, NULL, MS_BIND, NULL)); a missing path (ENOENT) is not an error
    todo!(
        "lesson-06: if `path` is a directory, mount a tmpfs on it read-only (mount(\"tmpfs\", path, \"tmpfs\", MS_RDONLY, NULL)); else bind-mount /dev/null onto it (mount(\"/dev/null\", path, NULL, MS_BIND, NULL)); a missing path (ENOENT) is not an error"
    );
}
// ANCHOR_END: mask

// ANCHOR: read_only
/// Make `path` read-only, for this container only.
pub fn read_only(path: &str) -> Result<(), Errno> {
    // TODO(lesson-06): bind-mount `path` onto itself (MS_BIND | MS_REC), then remount that bind read-only (MS_REMOUNT | MS_BIND | MS_RDONLY, plus /proc's MS_NOSUID | MS_NODEV | MS_NOEXEC); a missing path (ENOENT) is not an error
    // The first mount makes a mount of its own at `path`; the remount
    // changes only that mount's flags, not /proc's, nor the host's.
    todo!(
        "lesson-06: bind-mount `path` onto itself (MS_BIND | MS_REC), then remount that bind read-only (MS_REMOUNT | MS_BIND | MS_RDONLY, plus /proc's MS_NOSUID | MS_NODEV | MS_NOEXEC); a missing path (ENOENT) is not an error"
    );
}
// ANCHOR_END: read_only

/// All of them, in the container's init (inside its rootfs).
pub fn apply() -> Result<(), (String, Errno)> {
    // A mask skips a path the kernel lacks: that must not be because /proc
    // or /sys isn't there at all (statfs(2): the filesystem's magic).
    for (dir, magic) in [
        ("/proc", nix::sys::statfs::PROC_SUPER_MAGIC),
        ("/sys", nix::sys::statfs::SYSFS_MAGIC),
    ] {
        let kind = nix::sys::statfs::statfs(dir).map(|s| s.filesystem_type());
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
}
