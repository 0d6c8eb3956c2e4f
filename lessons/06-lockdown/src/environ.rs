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
