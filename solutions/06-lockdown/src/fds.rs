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
//! Every process the runtime makes inside a container closes them before
//! anything else, by number (fd 3 up), not by what it thinks is open:
//!
//! - the container's init closes every fd >= 3 but the ones it still needs
//!   (its exec report pipe), before the command is forked;
//! - a command's child, `run`'s or `exec`'s, does the same first thing
//!   after the fork (step 01's `Lockdown::seal`), before it follows any
//!   path: its working directory may be `/proc/self/fd/7`, which leads
//!   wherever an fd 7 of the caller's leads (the exec report's pipe stays:
//!   it is close-on-exec, and `execve` itself closes it).
//!
//! `close_range(2)` (Linux 5.9) closes a whole range in one system call,
//! however many descriptors are open.

use nix::errno::Errno;
use std::os::fd::RawFd;

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
/// without close_range (before 5.9).
fn open_fds() -> Result<Vec<RawFd>, Errno> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::EBADF)?;
    let fds: Vec<RawFd> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= 3)
        .collect();
    Ok(fds)
}

/// Close every fd from `first` to `last`, whatever is open there.
fn close_between(first: u32, last: u32) -> Result<(), Errno> {
    match close_range(first, last, 0) {
        Err(Errno::ENOSYS) => {
            for open in open_fds()? {
                if open as u32 >= first && open as u32 <= last {
                    // SAFETY: close(2) of an fd no Rust object owns (see close_range).
                    unsafe { libc::close(open) };
                }
            }
            Ok(())
        }
        other => other,
    }
}

// ANCHOR: close_all_but
/// Close every fd >= 3 but those in `keep`.
pub fn close_all_but(keep: &[RawFd]) -> Result<(), Errno> {
    // TODO(lesson-06): when this returns, the process holds no fd from 3 up but those in `keep` (fds 0, 1 and 2 are left alone, and so is every fd in `keep`, in whatever order it comes), however many were open and wherever they lead. Shell: `exec 3<&- 4<&- ...` for every open one
    // Count on nothing about which fds are open: the caller's may be any
    // numbers. The kernel closes a whole range in one call.
    // BEGIN SOLUTION
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd >= 3)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    // The gaps between the kept fds: [3, k1-1], [k1+1, k2-1], ..., [kn+1, MAX].
    let mut first = 3u32;
    for fd in keep.iter().copied().chain([u32::MAX]) {
        if fd > first {
            let last = if fd == u32::MAX { u32::MAX } else { fd - 1 };
            close_between(first, last)?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: close_all_but

/// Is the working directory inside this process's root? A directory
/// reached through a descriptor opened outside (an fd inherited from the
/// caller, by way of `/proc/self/fd/N`) is not below the root, and `..`
/// from it climbs on to the host's `/`. runc checks this since
/// CVE-2024-21626, after closing the fds: a second lock on the same door.
/// The kernel's getcwd(2) says it: a directory it can't reach from the
/// root comes back as `(unreachable)/...`, not as a path.
pub fn cwd_below_root() -> bool {
    let mut path = [0u8; 4096];
    // SAFETY: getcwd(2) writes at most path.len() bytes into `path`. The
    // raw system call: a C library may hide the "(unreachable)" prefix, or
    // not.
    let length = unsafe { libc::syscall(libc::SYS_getcwd, path.as_mut_ptr(), path.len()) };
    length > 0 && path[0] == b'/'
}
