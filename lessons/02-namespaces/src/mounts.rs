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
    // TODO(lesson-02): remount / and everything under it as private: mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)
    // With `None` for the source, type and data, nix wants their types spelled
    // out: `None::<&str>`.
    todo!(
        "lesson-02: remount / and everything under it as private: mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL)"
    );
}
// ANCHOR_END: make_private

// ANCHOR: mount_proc
/// Mount a new `/proc`, which shows the PID namespace of the process that
/// mounts it. Shell: `mount -t proc proc /proc`.
pub fn mount_proc() -> nix::Result<()> {
    // TODO(lesson-02): mount a new proc filesystem on /proc: mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)
    // It lands on top of the host's /proc, in this mount namespace only, and
    // only because the mounts were made private first.
    todo!(
        "lesson-02: mount a new proc filesystem on /proc: mount(\"proc\", \"/proc\", \"proc\", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)"
    );
}
// ANCHOR_END: mount_proc
