//! Opening a COPY source beneath the build context, whatever the context's
//! owner does meanwhile.
//!
//! The build context is the one directory a Dockerfile may read from, and
//! it belongs to whoever runs the build: they can rename and relink in it
//! while the build, as root, reads. See [`crate::context`] for the walk
//! that uses this.

use std::os::fd::{BorrowedFd, OwnedFd};

// ANCHOR: open_beneath
/// Open `source`, as COPY or ADD writes it (relative to the context; a
/// leading `/` is the context's own top, as in docker), beneath the dir
/// `context`, opened as the rest of the walk in [`crate::context`] opens
/// what it reads. Links are followed only while they stay
/// beneath `context`. Errors are the kernel's: `EXDEV` for a way out,
/// `ENOENT` for nothing there, `ENOSYS` where there is no openat2.
pub fn open_beneath(context: BorrowedFd<'_>, source: &str) -> nix::Result<OwnedFd> {
    // TODO(lesson-04): open `source` beneath `context` in one system call that confines the whole lookup, links included: following a link is fine while it stays beneath the context, leaving it (by `..`, an absolute link, or a /proc magic link) must fail; a leading / means the context's top, an empty path the context itself
    // Why one call: the context's owner can rename while you build. A path
    // you checked (canonicalize, starts_with) and then open is looked up
    // twice, and `sub` can be a dir the first time and a link to /root the
    // second. Only a lookup the kernel confines as it goes is safe.
    // openat2(2) (Linux 5.6) takes resolve flags for that. There is no
    // shell command for it; watch the builder make it:
    // strace -f -e trace=openat2 minibox build -t x DIR
    // Open it as crate::context opens what it reads, and return the
    // kernel's errors as they are: the caller explains them, and walks the
    // path itself where the kernel has no openat2 (ENOSYS).
    todo!(
        "lesson-04: open `source` beneath `context` in one system call that confines the whole lookup, links included: following a link is fine while it stays beneath the context, leaving it (by `..`, an absolute link, or a /proc magic link) must fail; a leading / means the context's top, an empty path the context itself"
    );
}
// ANCHOR_END: open_beneath
