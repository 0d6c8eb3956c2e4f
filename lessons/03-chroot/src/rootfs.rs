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
//!   What runc, crun and youki do. Shell: `pivot_root NEW PUT_OLD` in
//!   util-linux.
//!
//! `pivot_root` asks that the new root be a *mount point* (not just a
//! directory), and that it and its parent not be shared mounts (step 02 made
//! everything private). Bind-mounting the rootfs onto itself makes it one.

use crate::{layout, mounts, Enter, Failed, Spec};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, pivot_root};
use std::path::Path;

// ANCHOR: switch_root
/// The whole root switch, in the container's init (its mounts private
/// already): afterwards the process is inside `spec.rootfs`.
pub fn switch_root(spec: &Spec) -> Result<(), Failed> {
    // TODO(lesson-03): afterwards this process is inside spec.rootfs, entered the way spec.enter says, with / as its current directory, the container's /proc, /dev, /sys (and /tmp when spec.tmpfs_tmp) mounted in it, and / read-only when spec.read_only; the first step that fails stops the switch and is returned as what was being done and the kernel's errno
    // The mounts go on the rootfs *before* entering it, while the host's
    // /dev and /sys are still in reach, and on top of the rootfs's own
    // mount, so that pivot_root carries them along: `given/layout.rs`
    // makes them all, in order, with your functions of mounts.rs. Only once
    // inside is / the rootfs's mount. Shell: `mount --rbind R R`, the
    // mounts, `cd R; pivot_root . .; umount -l .; cd /` (or `chroot R`),
    // then with --read-only `mount -o remount,bind,ro /`.
    todo!(
        "lesson-03: afterwards this process is inside spec.rootfs, entered the way spec.enter says, with / as its current directory, the container's /proc, /dev, /sys (and /tmp when spec.tmpfs_tmp) mounted in it, and / read-only when spec.read_only; the first step that fails stops the switch and is returned as what was being done and the kernel's errno"
    );
}
// ANCHOR_END: switch_root

// ANCHOR: make_mount_point
/// Make the rootfs directory a mount point of its own.
pub fn make_mount_point(rootfs: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards `rootfs` is a mount point of its own, showing the same files as before, every mount below it included
    // pivot_root refuses a new root that is not a mount point (EINVAL); the
    // container's /proc, /dev, /sys and /tmp are then mounted on top of
    // this one. A bind mount shows a directory that is already in the tree
    // at another place (or at the same one); a recursive bind brings the
    // mounts below it along. Shell: `mount --rbind ROOTFS ROOTFS`.
    todo!(
        "lesson-03: afterwards `rootfs` is a mount point of its own, showing the same files as before, every mount below it included"
    );
}
// ANCHOR_END: make_mount_point

// ANCHOR: chroot_into
/// `--chroot`: the lesson's first attempt, kept to show why it isn't enough.
pub fn chroot_into(rootfs: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards this process resolves / as `rootfs`, and its current directory is that new /; nothing else changes (the mount table stays as it is)
    // chroot(2) changes where / is for this process and its children, and
    // nothing else: not even the current directory, which may then lie
    // outside the new root. Shell: `chroot ROOTFS` (the command does the
    // `cd /` itself).
    todo!(
        "lesson-03: afterwards this process resolves / as `rootfs`, and its current directory is that new /; nothing else changes (the mount table stays as it is)"
    );
}
// ANCHOR_END: chroot_into

// ANCHOR: pivot_into
/// The default: make the rootfs the root mount, and drop the host's.
pub fn pivot_into(rootfs: &Path) -> nix::Result<()> {
    // TODO(lesson-03): afterwards `rootfs` (a mount point) is the root mount of this mount namespace, / for every process in it, this process's current directory is /, and the old root is unmounted with everything below it, so that no path leads to the host's files any more; the image needs no directory for the old root
    // pivot_root(NEW, PUT_OLD) makes the mount at NEW the root mount and
    // moves the old root onto PUT_OLD, which must be at or below NEW; with
    // PUT_OLD the same as NEW, the old root ends up stacked on top of the
    // new one, at the same place (runc's way). A lazy unmount (MNT_DETACH)
    // takes a mount away with every mount below it, even while in use.
    // Relative paths start at the current directory. Shell (util-linux):
    // `cd ROOTFS; pivot_root . .; umount -l .; cd /`.
    todo!(
        "lesson-03: afterwards `rootfs` (a mount point) is the root mount of this mount namespace, / for every process in it, this process's current directory is /, and the old root is unmounted with everything below it, so that no path leads to the host's files any more; the image needs no directory for the old root"
    );
}
// ANCHOR_END: pivot_into
