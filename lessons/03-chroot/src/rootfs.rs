//! Entering the container's root filesystem: `chroot`, then `pivot_root`.
//!
//! A root filesystem (an image) is a directory holding everything the
//! container runs: programs, libraries, `/etc`. Making it the container's `/`
//! can be done two ways:
//!
//! - **`chroot(2)`** changes one thing: where *this process* resolves `/`.
//!   The host's whole mount tree is still there in the mount namespace, only
//!   out of sight; and `chroot` doesn't move the current directory. A root
//!   process can escape: `mkdir x; chroot x` leaves it *outside* its new
//!   root, from where `..` climbs up to the real `/`, and `chroot .` there
//!   undoes everything. Shell: `chroot DIR CMD`.
//! - **`pivot_root(2)`** changes the root *mount* of the mount namespace:
//!   the rootfs becomes `/` for everyone in it, the old root moves aside, and
//!   once that is unmounted there is no path left to the host's files at all.
//!   What runc, crun and youki do. Shell: `pivot_root . old` in util-linux.
//!
//! `pivot_root` asks that the new root be a *mount point* (not just a
//! directory), and that it and its parent not be shared mounts (step 02 made
//! everything private). Bind-mounting the rootfs onto itself makes it one.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, pivot_root};
use std::path::Path;

// ANCHOR: make_mount_point
/// Make the rootfs directory a mount point of its own: bind it onto itself.
/// Shell: `mount --rbind DIR DIR`.
pub fn make_mount_point(rootfs: &Path) -> nix::Result<()> {
    // TODO(lesson-03): bind-mount the rootfs onto itself, recursively: mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)
    // pivot_root refuses a new root that is not a mount point; the container's
    // /proc, /dev, /sys and /tmp are then mounted on top of this bind.
    todo!(
        "lesson-03: bind-mount the rootfs onto itself, recursively: mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)"
    );
}
// ANCHOR_END: make_mount_point

// ANCHOR: chroot_into
/// `--chroot`: the lesson's first attempt, kept to show why it isn't enough.
pub fn chroot_into(rootfs: &Path) -> nix::Result<()> {
    // TODO(lesson-03): make the rootfs this process's / with chroot(rootfs), then chdir("/") into it
    // Without the chdir, the current directory stays outside the new root.
    todo!(
        "lesson-03: make the rootfs this process's / with chroot(rootfs), then chdir(\"/\") into it"
    );
}
// ANCHOR_END: chroot_into

// ANCHOR: pivot_into
/// The default: make the rootfs the root mount, and drop the host's.
pub fn pivot_into(rootfs: &Path) -> nix::Result<()> {
    // TODO(lesson-03): chdir(rootfs); pivot_root(".", "."); umount2(".", MNT_DETACH); chdir("/")
    // pivot_root(".", ".") stacks the old root on top of the new one, at the
    // same place: unmounting "." then takes the old root away, and nothing of
    // the host stays reachable. (This form, from runc, needs no directory
    // for the old root inside the image.)
    todo!(
        "lesson-03: chdir(rootfs); pivot_root(\".\", \".\"); umount2(\".\", MNT_DETACH); chdir(\"/\")"
    );
}
// ANCHOR_END: pivot_into
