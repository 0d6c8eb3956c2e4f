//! The union mount: many read-only layers and one writable one, seen as a
//! single directory tree.
//!
//! overlayfs (in the kernel since 3.18) stacks directories: `lowerdir` is a
//! colon-separated list of read-only dirs, **top first**; `upperdir` takes
//! every write; `workdir` is the kernel's scratch space for making those
//! writes atomic (an empty dir on the same filesystem as `upperdir`). What a
//! process sees in the mount point: for each path, the topmost layer that
//! has it.
//!
//! - Reading a lower file reads it in place: no copy, so a hundred
//!   containers of one image share one copy on disk and in the page cache.
//! - Writing a lower file first *copies it up* whole into `upperdir`.
//! - Deleting a lower file leaves a *whiteout* in `upperdir` (a character
//!   device 0/0) that hides it; deleting a dir and making it again leaves an
//!   *opaque* dir (xattr `trusted.overlay.opaque=y`) that hides all below.
//!
//! So after a container ran, `upperdir` holds exactly what it changed: the
//! next layer. Shell:
//!
//! ```text
//! mount -t overlay overlay \
//!   -o lowerdir=L2:L1:L0,upperdir=U,workdir=W,redirect_dir=off MERGED
//! ```
//!
//! A container that is removed when it ends (`run --rm`, a build's `RUN`)
//! adds `volatile` (Linux 5.10): overlayfs then skips every sync of the
//! upper filesystem, the one at unmount included. Without it, the end of
//! each container flushed the disk's cache (`sync_filesystem` of the upper
//! filesystem, from the mount namespace's teardown). podman does the same
//! for its `--rm` containers.

use std::path::{Path, PathBuf};

/// The dirs of one overlay mount.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The image's layer dirs, **top layer first** (as `lowerdir` wants).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The container is removed when it ends: its writes need not survive
    /// a crash, and the mount may skip syncing them.
    pub volatile: bool,
}

impl Overlay {
    // ANCHOR: options
    /// The mount's option string (`-o` in the shell form).
    pub fn options(&self) -> String {
        // TODO(lesson-04): return the overlayfs option text that stacks self.lower (already top first) read-only under the writable self.upper, with self.work as the kernel's scratch dir; renaming a lower dir must copy it up rather than leave a redirect xattr behind (no layer tar can carry one); and only when self.volatile, the mount never syncs the upper filesystem
        // Options are `key=value` pairs separated by commas; several lower
        // dirs are separated by colons, topmost first. See the kernel's
        // Documentation/filesystems/overlayfs.rst ("redirect_dir", "volatile").
        // (Paths with ':' or ',' would need escaping; the store's never have
        // them.) Shell: `mount -t overlay overlay -o OPTIONS MERGED`.
        // BEGIN SOLUTION
        let lower: Vec<String> = self
            .lower
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        );
        if self.volatile {
            options.push_str(",volatile");
        }
        options
        // END SOLUTION
    }
    // ANCHOR_END: options

    // ANCHOR: mount
    /// Mount the layers on `target`. Call it in the container's own, private
    /// mount namespace: the mount then vanishes with the container.
    pub fn mount(&self, target: &Path) -> nix::Result<()> {
        // TODO(lesson-04): when this returns Ok, `target` shows the union of the layers as self.options() describes it (an overlayfs, listed in /proc/self/mountinfo with those options), or the kernel's error is returned as it is
        // The source of an overlay mount is only a label shown in mountinfo.
        // Shell: `mount -t overlay overlay -o "$(OPTIONS)" TARGET`.
        // BEGIN SOLUTION
        use nix::mount::{mount, MsFlags};
        // mount(2) with filesystem type "overlay": the kernel checks every
        // dir in the options; a missing one, an upper dir on overlayfs (as
        // inside docker) or options over a page (4096 bytes) give EINVAL.
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(self.options().as_str()),
        )
        // END SOLUTION
    }
    // ANCHOR_END: mount
}
