//! The store's directories, its owner's alone.
//!
//! The layers hold setuid-root files, the containers' writable layers
//! whatever a container's root made (a setuid copy of a shell, say), their
//! records the environment each got from `-e`. docker's
//! `/var/lib/docker/{overlay2,containers}` are 0710 and 0700 for the same
//! reasons.

use anyhow::bail;
use std::fs;
use std::path::Path;

// ANCHOR: private_dirs
/// `root` (made when missing), and each of `dirs` in it, private to this
/// process's user.
pub fn private_dirs(root: &Path, dirs: &[&str]) -> anyhow::Result<()> {
    // TODO(lesson-04): when this returns, `root` is a directory of this process's user (made 0700 if it was missing) and each of `dirs` in it is a directory that no other user can list, enter, or reach anything below (0700), however it was found: stores made before may be open. A `root` that belongs to another user is refused (its owner could swap what is in it under us), and so is one that is not a directory. Shell: `install -d -m 0700 ROOT ROOT/layers ...`
    // A path is only as private as the directories it passes through,
    // whatever the modes of the files at its end. `root` itself may be a
    // directory of the user's with other things in it: leave its mode be.
    todo!(
        "lesson-04: when this returns, `root` is a directory of this process's user (made 0700 if it was missing) and each of `dirs` in it is a directory that no other user can list, enter, or reach anything below (0700), however it was found: stores made before may be open. A `root` that belongs to another user is refused (its owner could swap what is in it under us), and so is one that is not a directory. Shell: `install -d -m 0700 ROOT ROOT/layers ...`"
    );
}
// ANCHOR_END: private_dirs
