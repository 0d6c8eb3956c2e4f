//! Where the container's mounts go, and in what order.
//!
//! An image holds only empty directories for the kernel's filesystems:
//! [`container_mounts`] checks each is a real directory of the image (or
//! makes it), then mounts `/proc`, `/dev`, `/sys` and `/tmp` on it with the
//! functions of [`crate::mounts`], and adds the usual links in `/dev`.

use crate::mounts::{mount_dev, mount_proc, mount_sys, mount_tmp};
use crate::Failed;
use nix::errno::Errno;
use std::os::unix::fs::symlink;
use std::path::Path;

fn at(what: &str) -> impl Fn(Errno) -> Failed + '_ {
    move |errno| (what.to_string(), errno)
}

fn io_errno(error: std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(nix::libc::EIO))
}

/// Mount everything the container needs under `root`, before entering it.
/// `tmp`: a tmpfs on `/tmp` (step 04 leaves an image's `/tmp` alone, as
/// docker does, unless `/` is read-only).
pub fn container_mounts(root: &Path, tmp: bool) -> Result<(), Failed> {
    let dirs: &[&str] = if tmp {
        &["proc", "dev", "sys", "tmp"]
    } else {
        &["proc", "dev", "sys"]
    };
    for dir in dirs {
        mount_point(root, dir)?;
    }
    mount_proc(&root.join("proc")).map_err(at("cannot mount /proc"))?;
    mount_dev(&root.join("dev")).map_err(at("cannot mount /dev"))?;
    dev_links(&root.join("dev"))?;
    mount_sys(&root.join("sys")).map_err(at("cannot mount /sys"))?;
    if tmp {
        mount_tmp(&root.join("tmp")).map_err(at("cannot mount a tmpfs on /tmp"))?;
    }
    Ok(())
}

/// `ROOT/NAME`, a directory of the rootfs itself, to mount on. An image may
/// lack it: make it (runc does too). An image may also make it a symbolic
/// link, and the mounts come *before* the rootfs is entered, when a link
/// is followed from the host's side: `/proc -> ../merged/p` would put the
/// container's proc at `/p` and leave `/proc` missing, so that step 06's
/// masks find nothing to cover. Anything but a real directory is refused
/// (runc refuses a proc mount anywhere but on `/proc` itself).
fn mount_point(root: &Path, name: &str) -> Result<(), Failed> {
    let path = root.join(name);
    // lstat(2): the link itself, never what it points at.
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err((
            format!("the image's /{name} is not a directory (a symbolic link?): refused"),
            Errno::ENOTDIR,
        )),
        // mkdir(2) of the name itself: no link followed.
        Err(_) => std::fs::create_dir(&path)
            .map_err(|e| (format!("cannot create /{name} in the rootfs"), io_errno(e))),
    }
}

/// The usual links in the container's `/dev`: programs open `/dev/stdin`,
/// `/dev/fd/3`, `/dev/ptmx`.
fn dev_links(dev: &Path) -> Result<(), Failed> {
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        symlink(target, dev.join(link))
            .map_err(|e| (format!("cannot link /dev/{link}"), io_errno(e)))?;
    }
    Ok(())
}
