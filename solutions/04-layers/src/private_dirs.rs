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
    // BEGIN SOLUTION
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let me = nix::unistd::geteuid().as_raw();
    // mkdir(2) with mode 0700 (the umask only takes bits away), or check
    // what is there; the parents of `root` are made as usual.
    let mine = |path: &Path, make_parents: bool| -> anyhow::Result<fs::Metadata> {
        if make_parents {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)?;
            }
        }
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(path) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e.into());
            }
        }
        // lstat(2): a link where a store directory should be is not one.
        let meta = fs::symlink_metadata(path)?;
        let meta = if meta.file_type().is_symlink() && make_parents {
            fs::metadata(path)? // `--root` itself may be a link the user made
        } else {
            meta
        };
        if !meta.is_dir() {
            bail!("{} is not a directory", path.display());
        }
        if meta.uid() != me {
            bail!(
                "{} belongs to uid {}, not to you (uid {me}): a store must be its owner's alone",
                path.display(),
                meta.uid()
            );
        }
        Ok(meta)
    };
    mine(root, true)?;
    for dir in dirs {
        let path = root.join(dir);
        mine(&path, false)?;
        // chmod(2): rwx for the owner, nothing for anyone else, whatever
        // it was (a store made open before is closed again).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
    // END SOLUTION
}
// ANCHOR_END: private_dirs
