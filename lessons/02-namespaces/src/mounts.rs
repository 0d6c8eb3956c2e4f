//! Mounts inside the container's mount namespace.
//!
//! A new mount namespace starts as a copy of the host's mount table. Copying is
//! not isolating: every mount has a *propagation type*. systemd makes `/`
//! **shared** at boot, and a copy of a shared mount joins its peer group, so a
//! mount made inside the new namespace would appear on the host too (and the
//! other way round). Until the container's mounts are made private, mounting a
//! new `/proc` "inside" would replace the host's `/proc`: a classic way for a
//! container tutorial to break the machine it runs on.
//!
//! See it in `/proc/self/mountinfo`: a shared mount has `shared:N` among its
//! optional fields, a slave `master:N`, a private one neither.
//! Shell: `findmnt -o TARGET,PROPAGATION /`; `mount --make-rprivate /`.

use nix::mount::{mount, MsFlags};

// ANCHOR: make_private
/// Cut this mount namespace off from the host's mount events, both ways.
pub fn make_private() -> nix::Result<()> {
    // TODO(lesson-02): afterwards no mount of this mount namespace, / or any below it, passes mount and unmount events to the host's or takes them from it: /proc/self/mountinfo shows neither shared:N nor master:N on any line; nothing new is mounted
    // Kernel facts: a mount's propagation type is changed by mount(2)
    // with no source, no type and no data, and one propagation flag; a
    // second flag makes it apply to every mount below the target too. It
    // needs CAP_SYS_ADMIN in the user namespace owning this mount
    // namespace. Shell: `mount --make-rprivate /`.
    todo!(
        "lesson-02: afterwards no mount of this mount namespace, / or any below it, passes mount and unmount events to the host's or takes them from it: /proc/self/mountinfo shows neither shared:N nor master:N on any line; nothing new is mounted"
    );
}
// ANCHOR_END: make_private

// ANCHOR: mount_proc
/// Mount a new `/proc`, which shows the PID namespace of the process that
/// mounts it. Shell: `mount -t proc proc /proc`.
pub fn mount_proc() -> nix::Result<()> {
    // TODO(lesson-02): afterwards /proc is a new proc filesystem, mounted from here, on top of what was there, and no file under it can gain privileges through a set-uid bit, be a device node, or be executed (nosuid, nodev, noexec in its mountinfo line)
    // Kernel facts: proc shows the PID namespace of the process that
    // mounts it. The new mount lands in this mount namespace only, and
    // only because the mounts were made private first. Shell: `mount -t
    // proc -o nosuid,nodev,noexec proc /proc`.
    todo!(
        "lesson-02: afterwards /proc is a new proc filesystem, mounted from here, on top of what was there, and no file under it can gain privileges through a set-uid bit, be a device node, or be executed (nosuid, nodev, noexec in its mountinfo line)"
    );
}
// ANCHOR_END: mount_proc
