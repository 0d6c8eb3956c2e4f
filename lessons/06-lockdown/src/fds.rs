//! File descriptors: what a container must not inherit.
//!
//! A process keeps its open files across `fork` and `execve`. Whatever the
//! runtime's caller had open (fd 3 and up: a directory, a socket, a log)
//! reaches the container's init and its command unless the runtime closes
//! it. One inherited directory fd is enough to leave the rootfs:
//! `fchdir(fd)` puts the process in the host's tree, where `..` climbs to
//! the host's `/` (CVE-2024-21626, runc's leaked cgroup fd, was exactly
//! this). Shell, to see it: `exec 3</; minibox run base ls -l /proc/self/fd`.
//!
//! Two places close them:
//!
//! - the container's init, which never execs: it closes every fd >= 3 but
//!   the ones it still needs (its report pipe);
//! - the command, just before `execve`: every fd >= 3 is marked
//!   close-on-exec, so the kernel closes them in the same `execve` that
//!   closes the report pipe (which must stay open until then to report a
//!   failed exec).
//!
//! `close_range(2)` (Linux 5.9; `CLOSE_RANGE_CLOEXEC` 5.11) does either in
//! one system call, however many descriptors are open.

use nix::errno::Errno;
use std::os::fd::RawFd;

/// `CLOSE_RANGE_CLOEXEC` from `<linux/close_range.h>`: mark, don't close.
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// close_range(first, last, flags), the raw system call.
fn close_range(first: u32, last: u32, flags: u32) -> Result<(), Errno> {
    // SAFETY: close_range(2) touches only this process's fd table; no Rust
    // object of ours owns the fds it closes (std's stdio is 0..=2, and the
    // callers keep every fd they still use out of the range).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// The open fds >= 3, from `/proc/self/fd`: the slow way, for kernels
/// without close_range (before 5.9/5.11).
fn open_fds() -> Result<Vec<RawFd>, Errno> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::EBADF)?;
    let fds: Vec<RawFd> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= 3)
        .collect();
    Ok(fds)
}

// ANCHOR: mark_cloexec
/// In the command, just before `execve`: every fd >= 3 closes at exec.
pub fn mark_cloexec() -> Result<(), Errno> {
    // TODO(lesson-06): mark every fd from 3 up close-on-exec in one call: close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC) (the helper above wraps the raw syscall)
    // Not a plain close: the exec report pipe (an fd >= 3) must stay open
    // until execve itself closes it. On ENOSYS or EINVAL (an older kernel)
    // fall back to fcntl(fd, F_SETFD, FD_CLOEXEC) on each of open_fds().
    todo!(
        "lesson-06: mark every fd from 3 up close-on-exec in one call: close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC) (the helper above wraps the raw syscall)"
    );
}
// ANCHOR_END: mark_cloexec

// ANCHOR: close_all_but
/// In the container's init (which never execs): close every fd >= 3 but
/// `keep`.
pub fn close_all_but(keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd >= 3)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    // The gaps between the kept fds: [3, k1-1], [k1+1, k2-1], ..., [kn+1, MAX].
    let mut first = 3u32;
    for fd in keep.iter().copied().chain([u32::MAX]) {
        if fd > first {
            let last = if fd == u32::MAX { u32::MAX } else { fd - 1 };
            if let Err(errno) = close_range(first, last, 0) {
                if errno != Errno::ENOSYS {
                    return Err(errno);
                }
                for open in open_fds()? {
                    if open as u32 >= first && open as u32 <= last {
                        // SAFETY: close(2) of an fd no Rust object owns (see close_range).
                        unsafe { libc::close(open) };
                    }
                }
            }
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}
// ANCHOR_END: close_all_but
