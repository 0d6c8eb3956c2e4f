//! The runtime's environment, out of the container's init.
//!
//! `/proc/PID/environ` shows the bytes a process was exec'd with, from its
//! own memory, and the container's init is a copy of the runtime: without
//! this, `cat /proc/1/environ` in the container prints the environment of
//! whoever ran `minibox run` (their tokens, `SSH_AUTH_SOCK`, `SUDO_USER`).
//! The command has its own, clean environment (the image's `ENV` and
//! `-e`), made before the fork.
//!
//! Two things close it: the init overwrites those bytes with zeros, and it
//! turns itself non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`), which makes its
//! `/proc/1/{environ,mem,fd}` readable only with `CAP_SYS_PTRACE`, which
//! the container doesn't have.
//!
//! `/proc/PID/cmdline` is the other half, and it is readable by everyone,
//! dumpable or not: the runtime's command line (its path on the host, the
//! store's `--root`, each `-v` host path and `-e` value) would be
//! `/proc/1/cmdline` in the container. [`retitle`] overwrites it too.

use nix::errno::Errno;

extern "C" {
    /// The C library's `char **environ`: the strings `/proc/PID/environ` reads.
    static mut environ: *const *mut libc::c_char;
}

// ANCHOR: wipe
/// In the container's init: zero the environment's bytes where the kernel
/// reads them, and make the process non-dumpable.
pub fn wipe() -> Result<(), Errno> {
    // SAFETY: single-threaded (the init, after clone); each entry of
    // `environ` is a NUL-terminated string owned by the C library, which we
    // overwrite within its own length. Nothing reads them afterwards: the
    // command's environment was copied before the fork.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let length = libc::strlen(*entry);
            std::ptr::write_bytes(*entry, 0, length);
            entry = entry.add(1);
        }
    }
    // prctl(2) PR_SET_DUMPABLE 0: /proc/PID files become root's and need
    // CAP_SYS_PTRACE to read (ptrace_may_access). Reset by the next execve.
    nix::sys::prctl::set_dumpable(false)
}
// ANCHOR_END: wipe

/// Overwrite this process's command line, where `/proc/PID/cmdline` reads
/// it, with `title` and zeros: what a container's `ps` shows of a process
/// that is the runtime's copy (its init, an exec before its execve). The
/// shell's nearest: none; `ps -o args` shows the result.
pub fn retitle(title: &str) -> std::io::Result<()> {
    // The kernel reads cmdline from the process's memory, between the
    // addresses fields 48 and 49 of /proc/self/stat give (arg_start,
    // arg_end, Linux 3.5): counted after the `)` that ends the name.
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else {
        return Err(std::io::Error::other(
            "no argument range in /proc/self/stat",
        ));
    };
    if start == 0 || end <= start {
        return Ok(()); // no arguments to hide
    }
    let length = end - start;
    let title = &title.as_bytes()[..title.len().min(length - 1)];
    // SAFETY: [start, end) is this process's own argv strings, which the
    // kernel put on its stack at execve: mapped, writable, ours. The bytes
    // written stay inside it and the last stays NUL (a non-NUL last byte
    // would make the kernel read on into the environment, as for
    // setproctitle). Rust's std::env::args reads the same bytes: nothing
    // calls it after this (the command line was parsed at the start).
    unsafe {
        let area = start as *mut u8;
        std::ptr::write_bytes(area, 0, length);
        std::ptr::copy_nonoverlapping(title.as_ptr(), area, title.len());
    }
    Ok(())
}
