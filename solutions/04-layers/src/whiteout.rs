//! Deletions in a layer: overlayfs's whiteouts and the OCI layer format's.
//!
//! A layer is a list of *changes* to the layers below it, and a change can
//! be a deletion. Two formats say "deleted" in two different ways:
//!
//! - **overlayfs**, in its upper directory, marks a file removed from a lower
//!   layer with a *whiteout*: a character device with device number 0/0
//!   (`c--------- 0,0 NAME` in `ls -l`). A directory that was removed and made
//!   again, so that nothing from below shows through it, is an *opaque*
//!   directory: it carries the extended attribute `trusted.overlay.opaque`
//!   with the value `y`.
//! - **OCI layer tars** (the image-spec's layer format, which Docker uses
//!   too) mark the deletion of `NAME` with an empty regular file `.wh.NAME` in
//!   the same directory, and an opaque directory `DIR` with an empty file
//!   `DIR/.wh..wh..opq`.
//!
//! Why two formats? The kernel only understands its own: a `.wh.NAME` file
//! in an upper dir is just a file called `.wh.NAME`. And a tar is a poor
//! carrier for the kernel's: creating a device node needs privilege, tools
//! often skip or refuse device nodes, `trusted.*` attributes are readable by
//! root only, and a tar has no standard place for extended attributes. Plain
//! empty files with a reserved name survive every tar tool on every system,
//! so that is what OCI chose. Writing a layer therefore turns overlayfs's
//! markers into OCI's (see `layer_tar::write_layer`), and unpacking a layer
//! turns them back (see `unpack::unpack_layer`), so that the unpacked layer
//! can be stacked by overlayfs again.

use std::ffi::{CString, OsStr, OsString};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// In a layer tar, `.wh.NAME` says "NAME was deleted".
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// In a layer tar, `DIR/.wh..wh..opq` says "hide everything below DIR".
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// On an overlayfs upper directory, this attribute = `y` makes it opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

// ANCHOR: is_overlay_whiteout
/// Is this upper-dir entry an overlayfs whiteout (char device 0/0)? `meta`
/// comes from `symlink_metadata`.
pub fn is_overlay_whiteout(meta: &Metadata) -> bool {
    // TODO(lesson-04): say whether `meta` (from lstat) describes an overlayfs whiteout, and nothing else: a real device node, a file, a dir or a FIFO is no whiteout
    // Shell: `stat -c '%F %t:%T' NAME`; `ls -l` shows a whiteout as
    // `c--------- 0,0 NAME`. The file type and the device number are both
    // in the metadata.
    // BEGIN SOLUTION
    // Device 0/0 is no real device: overlayfs reserves it for "deleted".
    // Shell: `stat -c '%F %t:%T' NAME` prints `character special file 0:0`.
    meta.file_type().is_char_device() && meta.rdev() == 0
    // END SOLUTION
}
// ANCHOR_END: is_overlay_whiteout

// ANCHOR: is_opaque_dir
/// Does this upper-dir directory carry the opaque xattr = `y`?
///
/// A missing attribute, or a filesystem without extended attributes, means
/// "not opaque"; any other failure is an error.
pub fn is_opaque_dir(dir: &Path) -> io::Result<bool> {
    // Shell: `getfattr -n trusted.overlay.opaque DIR` (as root: ordinary
    // users can't even see `trusted.*` attributes).
    let path = c_path(dir)?;
    let name = c_string(OPAQUE_XATTR)?;
    // A little room: a longer value (which fails with ERANGE) is no `y`.
    let mut value = [0u8; 8];
    // SAFETY: both strings are NUL-terminated and live across the call, and
    // the kernel writes at most `value.len()` bytes into `value`.
    // lgetxattr(2), not getxattr(2): a symlink's target is never looked at.
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            // ENODATA: no such attribute. ENOTSUP: no xattrs on this
            // filesystem at all. ERANGE: a value longer than `y`.
            Some(libc::ENODATA | libc::ENOTSUP | libc::ERANGE) => Ok(false),
            _ => Err(error),
        };
    }
    // Only `y` means opaque (newer kernels also write `x`, which means
    // "look for whiteouts in here", not "hide what is below").
    Ok(&value[..len as usize] == b"y")
}
// ANCHOR_END: is_opaque_dir

/// The OCI name for a whiteout of `name`: `.wh.` + `name`.
pub fn oci_whiteout_name(name: &OsStr) -> OsString {
    let mut whiteout = OsString::from(WHITEOUT_PREFIX);
    whiteout.push(name);
    whiteout
}

// ANCHOR: make_overlay_whiteout
/// Make an overlayfs whiteout at `path`: what unpacking `.wh.NAME` leaves.
pub fn make_overlay_whiteout(path: &Path) -> nix::Result<()> {
    // TODO(lesson-04): when this returns Ok, `path` is an overlayfs whiteout like the ones the kernel makes itself (no permission bits); an existing file at `path` is the kernel's error (EEXIST), left to the caller
    // Shell: `mknod NAME c 0 0 && chmod 000 NAME`. Making a device node
    // needs CAP_MKNOD.
    // BEGIN SOLUTION
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    // mknod(2) of a character device needs CAP_MKNOD (root has it); it fails
    // with EEXIST if something is already at `path`: the caller removes it.
    // Mode 0 is what overlayfs itself gives its whiteouts.
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
    // END SOLUTION
}
// ANCHOR_END: make_overlay_whiteout

// ANCHOR: make_opaque
/// Mark a directory opaque for overlayfs: what unpacking `.wh..wh..opq`
/// leaves.
pub fn make_opaque(dir: &Path) -> io::Result<()> {
    // Shell: `setfattr -n trusted.overlay.opaque -v y DIR`.
    let path = c_path(dir)?;
    let name = c_string(OPAQUE_XATTR)?;
    let value = b"y";
    // SAFETY: both strings are NUL-terminated and live across the call, and
    // the kernel reads exactly `value.len()` bytes from `value`.
    // lsetxattr(2) never follows a symlink. Setting a `trusted.*` attribute
    // needs CAP_SYS_ADMIN (EPERM otherwise), and tmpfs only has them since
    // Linux 6.6 (ENOTSUP on some filesystems).
    let result = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
// ANCHOR_END: make_opaque

/// A path as the C string system calls take (a NUL byte in it is an error).
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn c_string(text: &str) -> io::Result<CString> {
    c_path(Path::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "minibox-whiteout-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn whiteout_is_char_device_0_0() {
        let dir = scratch("wh");
        let path = dir.join("gone");
        make_overlay_whiteout(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(is_overlay_whiteout(&meta));
        assert_eq!(meta.mode() & 0o7777, 0);
        // A regular file, or /dev/null (1/3), is no whiteout.
        std::fs::write(dir.join("file"), b"").unwrap();
        assert!(!is_overlay_whiteout(
            &std::fs::symlink_metadata(dir.join("file")).unwrap()
        ));
        assert!(!is_overlay_whiteout(
            &std::fs::symlink_metadata("/dev/null").unwrap()
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn opaque_round_trips() {
        let dir = scratch("opq");
        assert!(!is_opaque_dir(&dir).unwrap());
        make_opaque(&dir).unwrap();
        assert!(is_opaque_dir(&dir).unwrap());
        assert_eq!(oci_whiteout_name(OsStr::new("x")), OsString::from(".wh.x"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
