//! The reference's own tests of writing and unpacking layer tars.

use crate::layer_tar::{write_layer, MARKER_MODE};
use crate::unpack::unpack_layer;
use crate::whiteout;
use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::fs::{self, Permissions};
use std::os::unix::fs::{lchown, PermissionsExt};
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tar::{Builder, EntryType, Header};

const EPOCH: u64 = 1_700_000_000;

/// A directory under the system's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("minibox-tarball-{}-{n}-{what}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// A fresh empty subdirectory.
    fn dir(&self, rel: &str) -> PathBuf {
        let dir = self.path(rel);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write_file(path: &Path, data: &str, mtime: i64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    set_mtime(path, mtime);
}

fn set_mtime(path: &Path, mtime: i64) {
    let time = TimeSpec::new(mtime, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

fn layer_of(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    write_layer(dir, &mut out, EPOCH).unwrap();
    out
}

/// Each entry of a tar: (path, type, link target).
fn listing(tar: &[u8]) -> Vec<(String, EntryType, Option<String>)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            (path, entry.header().entry_type(), link)
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    listing(tar).into_iter().map(|(name, _, _)| name).collect()
}

fn headers(tar: &[u8]) -> Vec<(String, Header)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            (path, entry.header().clone())
        })
        .collect()
}

/// A small tree with one of everything a layer holds, made in the given
/// order of names (the order `readdir` sees them in can differ).
fn sample_tree(root: &Path, names: &[&str], mtime: i64) {
    for name in names {
        match *name {
            "etc/passwd" => write_file(&root.join(name), "root:x:0:0::/root:/bin/sh\n", mtime),
            "bin/sh" => {
                write_file(&root.join(name), "#!shell", mtime);
                fs::set_permissions(root.join(name), Permissions::from_mode(0o4755)).unwrap();
            }
            "bin/sh-link" => fs::hard_link(root.join("bin/sh"), root.join(name)).unwrap(),
            "etc/motd" => {
                fs::create_dir_all(root.join("etc")).unwrap();
                symlink("../run/motd", root.join(name)).unwrap();
            }
            "run/fifo" => {
                fs::create_dir_all(root.join("run")).unwrap();
                nix::unistd::mkfifo(&root.join(name), Mode::from_bits_truncate(0o640)).unwrap();
            }
            other => panic!("no recipe for {other}"),
        }
    }
    for dir in ["etc", "bin", "run", "."] {
        set_mtime(&root.join(dir), mtime);
    }
    for name in ["etc/motd", "run/fifo", "bin/sh"] {
        set_mtime(&root.join(name), mtime);
    }
}

#[test]
fn same_tree_gives_same_bytes() {
    let scratch = Scratch::new("same");
    let one = scratch.dir("one");
    let two = scratch.dir("two");
    let all = [
        "etc/passwd",
        "bin/sh",
        "bin/sh-link",
        "etc/motd",
        "run/fifo",
    ];
    sample_tree(&one, &all, EPOCH as i64 + 10);
    // Another order of creation, and other times, all after the epoch.
    let reversed = [
        "run/fifo",
        "etc/motd",
        "bin/sh",
        "bin/sh-link",
        "etc/passwd",
    ];
    sample_tree(&two, &reversed, EPOCH as i64 + 99_999);

    let first = layer_of(&one);
    assert_eq!(first, layer_of(&one), "two writes of one tree");
    assert_eq!(
        first,
        layer_of(&two),
        "two trees that differ only in mtimes"
    );
    // Finished: the archive ends with two zero blocks.
    assert_eq!(first.len() % 512, 0);
    assert!(first[first.len() - 1024..].iter().all(|b| *b == 0));
}

#[test]
fn headers_hold_only_what_the_tree_says() {
    let scratch = Scratch::new("headers");
    let root = scratch.dir("root");
    write_file(&root.join("old"), "old", 1000);
    write_file(&root.join("new"), "new", EPOCH as i64 + 5);
    // chown first: it clears the setgid bit.
    lchown(root.join("new"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(root.join("new"), Permissions::from_mode(0o2751)).unwrap();

    let tar = layer_of(&root);
    let headers = headers(&tar);
    let (_, new) = &headers[0];
    let (_, old) = &headers[1];
    assert!(new.as_gnu().is_some(), "GNU headers");
    assert_eq!(new.mtime().unwrap(), EPOCH, "clamped to the epoch");
    assert_eq!(old.mtime().unwrap(), 1000, "older times stay");
    assert_eq!(new.mode().unwrap(), 0o2751);
    assert_eq!((new.uid().unwrap(), new.gid().unwrap()), (1234, 5678));
    assert_eq!(new.username_bytes(), Some(&b""[..]));
    assert_eq!(new.groupname_bytes(), Some(&b""[..]));
    assert_eq!(new.as_gnu().unwrap().atime, [0; 12]);
    assert_eq!(new.as_gnu().unwrap().ctime, [0; 12]);
}

#[test]
fn entries_are_sorted_depth_first_with_dirs_first() {
    let scratch = Scratch::new("sorted");
    let root = scratch.dir("root");
    for file in ["b", "a/z", "a/c", "a.txt", "A", "a/m/x"] {
        write_file(&root.join(file), "", 1);
    }
    assert_eq!(
        names(&layer_of(&root)),
        ["A", "a/", "a/c", "a/m/", "a/m/x", "a/z", "a.txt", "b"]
    );
}

#[test]
fn the_sample_tree_round_trips() {
    let scratch = Scratch::new("roundtrip");
    let root = scratch.dir("root");
    let all = [
        "etc/passwd",
        "bin/sh",
        "bin/sh-link",
        "etc/motd",
        "run/fifo",
    ];
    sample_tree(&root, &all, 1_000_000);
    lchown(root.join("etc/passwd"), Some(7), Some(8)).unwrap();
    lchown(root.join("etc/motd"), Some(9), Some(10)).unwrap();
    symlink("/", root.join("slash")).unwrap();
    symlink("a/.", root.join("dot")).unwrap();

    let tar = layer_of(&root);
    let listing = listing(&tar);
    let link = listing
        .iter()
        .find(|(name, ..)| name == "bin/sh-link")
        .unwrap();
    assert_eq!(
        (link.1, link.2.as_deref()),
        (EntryType::Link, Some("bin/sh"))
    );

    let dest = scratch.dir("dest");
    unpack_layer(&tar[..], &dest).unwrap();
    let meta = |rel: &str| fs::symlink_metadata(dest.join(rel)).unwrap();
    assert_eq!(
        fs::read_to_string(dest.join("etc/passwd")).unwrap(),
        "root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!((meta("etc/passwd").uid(), meta("etc/passwd").gid()), (7, 8));
    assert_eq!(meta("bin/sh").mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(
        meta("bin/sh").ino(),
        meta("bin/sh-link").ino(),
        "a hard link"
    );
    assert_eq!(
        fs::read_link(dest.join("etc/motd")).unwrap(),
        Path::new("../run/motd")
    );
    assert_eq!(
        (meta("etc/motd").uid(), meta("etc/motd").mtime()),
        (9, 1_000_000)
    );
    assert_eq!(fs::read_link(dest.join("slash")).unwrap(), Path::new("/"));
    assert_eq!(fs::read_link(dest.join("dot")).unwrap(), Path::new("a/."));
    assert!(meta("run/fifo").file_type().is_fifo());
    assert_eq!(meta("run/fifo").mode() & 0o7777, 0o640);
    // Directory times survive the children created in them.
    assert_eq!(meta("etc").mtime(), 1_000_000);
    assert_eq!(meta("bin/sh").mtime(), 1_000_000);
    // And unpacking then writing again gives the same layer.
    assert_eq!(layer_of(&dest), tar);
}

#[test]
fn long_names_round_trip() {
    let scratch = Scratch::new("long");
    let root = scratch.dir("root");
    let deep = format!("{}/{}/{}", "d".repeat(60), "e".repeat(60), "f".repeat(150));
    write_file(&root.join(&deep), "deep", 1);
    let far = format!("/{}/target", "t".repeat(120));
    symlink(&far, root.join("far")).unwrap();
    fs::hard_link(root.join(&deep), root.join("g".repeat(200))).unwrap();

    let tar = layer_of(&root);
    let names = names(&tar);
    assert!(names.contains(&deep));
    assert!(names.contains(&format!("{}/{}/", "d".repeat(60), "e".repeat(60))));

    let dest = scratch.dir("dest");
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(fs::read_to_string(dest.join(&deep)).unwrap(), "deep");
    assert_eq!(fs::read_link(dest.join("far")).unwrap(), Path::new(&far));
    let ino = |rel: &str| fs::metadata(dest.join(rel)).unwrap().ino();
    assert_eq!(ino(&deep), ino(&"g".repeat(200)));
}

#[test]
fn whiteouts_become_oci_files_and_back() {
    let scratch = Scratch::new("whiteout");
    let root = scratch.dir("root");
    fs::create_dir(root.join("etc")).unwrap();
    whiteout::make_overlay_whiteout(&root.join("etc/gone")).unwrap();
    set_mtime(&root.join("etc/gone"), EPOCH as i64 + 1);

    let tar = layer_of(&root);
    let headers = headers(&tar);
    assert_eq!(headers.len(), 2);
    let (name, marker) = &headers[1];
    assert_eq!(name, "etc/.wh.gone");
    assert_eq!(marker.entry_type(), EntryType::Regular);
    assert_eq!(marker.size().unwrap(), 0);
    assert_eq!(marker.mode().unwrap(), MARKER_MODE);
    assert_eq!(marker.mtime().unwrap(), EPOCH);

    let dest = scratch.dir("dest");
    unpack_layer(&tar[..], &dest).unwrap();
    let meta = fs::symlink_metadata(dest.join("etc/gone")).unwrap();
    assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
    assert!(!dest.join("etc/.wh.gone").exists());
}

#[test]
fn opaque_dirs_become_markers_and_back() {
    let scratch = Scratch::new("opaque");
    let root = scratch.dir("root");
    write_file(&root.join("d/-first"), "", 1);
    write_file(&root.join("d/z"), "", 1);
    whiteout::make_opaque(&root.join("d")).unwrap();

    let tar = layer_of(&root);
    assert_eq!(names(&tar), ["d/", "d/.wh..wh..opq", "d/-first", "d/z"]);

    let dest = scratch.dir("dest");
    unpack_layer(&tar[..], &dest).unwrap();
    assert!(whiteout::is_opaque_dir(&dest.join("d")).unwrap());
    assert!(!whiteout::is_opaque_dir(&dest).unwrap());
    assert!(!dest.join("d/.wh..wh..opq").exists());
    assert_eq!(layer_of(&dest), tar);
}

#[test]
fn devices_are_refused_and_sockets_skipped() {
    let scratch = Scratch::new("devices");
    let root = scratch.dir("root");
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    write_file(&root.join("file"), "", 1);
    assert_eq!(names(&layer_of(&root)), ["file"]);

    let null = nix::sys::stat::makedev(1, 3);
    let flags = nix::sys::stat::SFlag::S_IFCHR;
    nix::sys::stat::mknod(
        &root.join("null"),
        flags,
        Mode::from_bits_truncate(0o666),
        null,
    )
    .unwrap();
    let error = write_layer(&root, Vec::new(), EPOCH).unwrap_err();
    assert_names(&format!("{error:#}"), "null");
}

#[test]
fn files_named_like_whiteouts_are_refused() {
    let scratch = Scratch::new("reserved");
    let root = scratch.dir("root");
    write_file(&root.join(".wh.x"), "", 1);
    let error = write_layer(&root, Vec::new(), EPOCH).unwrap_err();
    assert_names(&format!("{error:#}"), ".wh.x");
}

// ---- Hostile tars, built by hand ------------------------------------

/// A raw entry: the name goes into the header as bytes, unchecked (the
/// tar crate's own setters refuse `..` and absolute paths).
fn raw(tar: &mut Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1000);
    header.set_cksum();
    tar.append(&header, data).unwrap();
}

/// A raw entry: (name, type, link target, data).
type Raw<'a> = (&'a str, EntryType, &'a str, &'a str);

/// A tar of raw entries.
fn hostile(entries: &[Raw]) -> Vec<u8> {
    let mut tar = Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw(&mut tar, name, *kind, link, data.as_bytes());
    }
    tar.into_inner().unwrap()
}

/// Unpack a tar of raw entries into a fresh `dest`, which must fail: the
/// error, with its causes. The wording is yours; see [`assert_names`].
fn unpack_error(scratch: &Scratch, entries: &[Raw]) -> String {
    let dest = scratch.dir("dest");
    let Err(error) = unpack_layer(&hostile(entries)[..], &dest) else {
        panic!("unpacking {:?} should fail", names_of(entries));
    };
    format!("{error:#}")
}

fn names_of<'a>(entries: &[Raw<'a>]) -> Vec<&'a str> {
    entries.iter().map(|(name, ..)| *name).collect()
}

/// What the contract asks of an error: that it names the entry (any
/// wording will do).
#[track_caller]
fn assert_names(error: &str, name: &str) {
    assert!(
        error.contains(name),
        "the error should name the entry {name:?}; it says: {error}"
    );
}

/// Nothing is left at `rel` below the last `dest`.
#[track_caller]
fn assert_absent(scratch: &Scratch, rel: &str) {
    let path = scratch.path("dest").join(rel);
    assert!(
        fs::symlink_metadata(&path).is_err(),
        "{rel} should not have been made"
    );
}

const FILE: EntryType = EntryType::Regular;

#[test]
fn absolute_paths_are_refused() {
    let scratch = Scratch::new("absolute");
    let target = scratch.path("abs-file");
    let name = target.to_str().unwrap();
    let error = unpack_error(&scratch, &[(name, FILE, "", "x")]);
    assert_names(&error, name);
    assert!(!target.exists(), "{name} was written");
}

#[test]
fn dot_dot_is_refused() {
    // `a/../x` would stay inside, but a `..` anywhere is refused.
    for name in ["../x", "a/../../x", "./../x", "a/b/../../../x", "a/../x"] {
        let scratch = Scratch::new("dotdot");
        let error = unpack_error(
            &scratch,
            &[("a/", EntryType::Directory, "", ""), (name, FILE, "", "x")],
        );
        assert_names(&error, name);
        assert!(!scratch.path("x").exists(), "{name} was written");
        assert_absent(&scratch, "x");
    }
}

#[test]
fn names_from_extension_records_are_checked_too() {
    let scratch = Scratch::new("extensions");
    // A pax record is "LENGTH key=value\n", LENGTH counting itself.
    let pax = ("PaxHeader", EntryType::XHeader, "", "13 path=../x\n");
    let error = unpack_error(&scratch, &[pax, ("innocent", FILE, "", "x")]);
    assert_names(&error, "../x");
    let long = ("././@LongLink", EntryType::GNULongName, "", "../x\0");
    let error = unpack_error(&scratch, &[long, ("innocent", FILE, "", "x")]);
    assert_names(&error, "../x");
    let pax = (
        "PaxHeader",
        EntryType::XHeader,
        "",
        "24 linkpath=/etc/shadow\n",
    );
    let error = unpack_error(&scratch, &[pax, ("hlink", EntryType::Link, "innocent", "")]);
    assert_names(&error, "hlink");
    assert_absent(&scratch, "hlink");
    assert!(!scratch.path("x").exists(), "../x was written");
}

#[test]
fn nothing_is_written_through_a_symlink() {
    let scratch = Scratch::new("symlink");
    let outside = scratch.dir("outside");
    let evil = outside.to_str().unwrap();
    for victim in [
        "evil/file",
        "evil/sub/file",
        "evil/.wh.x",
        "evil/.wh..wh..opq",
    ] {
        let error = unpack_error(
            &scratch,
            &[
                ("evil", EntryType::Symlink, evil, ""),
                (victim, FILE, "", "pwned"),
            ],
        );
        assert_names(&error, victim);
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{victim} wrote outside"
        );
    }
    let error = unpack_error(
        &scratch,
        &[
            ("evil", EntryType::Symlink, evil, ""),
            ("evil/d/", EntryType::Directory, "", ""),
        ],
    );
    assert_names(&error, "evil/d");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing outside"
    );
    assert!(!whiteout::is_opaque_dir(&outside).unwrap());
}

#[test]
fn a_file_replaces_a_symlink_instead_of_following_it() {
    let scratch = Scratch::new("replace");
    let outside = scratch.dir("outside");
    let victim = outside.join("victim");
    fs::write(&victim, "safe").unwrap();
    let dest = scratch.dir("dest");
    let tar = hostile(&[
        ("evil", EntryType::Symlink, victim.to_str().unwrap(), ""),
        ("evil", FILE, "", "pwned"),
    ]);
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "safe");
    assert_eq!(fs::read_to_string(dest.join("evil")).unwrap(), "pwned");
    assert!(fs::symlink_metadata(dest.join("evil")).unwrap().is_file());
}

#[test]
fn hard_links_must_stay_inside() {
    let scratch = Scratch::new("hardlink");
    let link = EntryType::Link;
    let cases: [&[Raw]; 8] = [
        &[("hlink", link, "../../etc/passwd", "")],
        &[("hlink", link, "/etc/passwd", "")],
        &[("f", FILE, "", "x"), ("hlink", link, "a/../f", "")],
        &[
            ("s", EntryType::Symlink, "/etc/passwd", ""),
            ("hlink", link, "s", ""),
        ],
        &[
            ("etc", EntryType::Symlink, "/etc", ""),
            ("hlink", link, "etc/passwd", ""),
        ],
        &[("hlink", link, "missing", "")],
        &[
            ("d/", EntryType::Directory, "", ""),
            ("hlink", link, "d", ""),
        ],
        &[("hlink", link, "hlink", "")],
    ];
    for entries in cases {
        assert_names(&unpack_error(&scratch, entries), "hlink");
        assert_absent(&scratch, "hlink");
    }
}

#[test]
fn devices_and_odd_entries_are_refused() {
    let scratch = Scratch::new("odd");
    let cases = [
        ("null", EntryType::Char),
        ("sda", EntryType::Block),
        ("vol", EntryType::new(b'V')),
        (".wh..", FILE),
        (".wh...", FILE),
        ("a/.wh.", FILE),
        (".wh..wh.plnk", FILE),
    ];
    for (name, kind) in cases {
        assert_names(&unpack_error(&scratch, &[(name, kind, "", "")]), name);
    }
    let error = unpack_error(&scratch, &[("f", FILE, "", "x"), ("f/g", FILE, "", "x")]);
    assert_names(&error, "f/g");
    assert!(
        fs::symlink_metadata(scratch.path("dest/f"))
            .unwrap()
            .is_file(),
        "f/g changed f"
    );
}

#[test]
fn later_entries_win() {
    let scratch = Scratch::new("later");
    let dest = scratch.dir("dest");
    let dir = EntryType::Directory;
    let tar = hostile(&[
        ("x", FILE, "", "one"),
        ("x", FILE, "", "two"),
        ("d/", dir, "", ""),
        ("d/f", FILE, "", "in d"),
        ("d", FILE, "", "d is a file now"),
        ("f", FILE, "", "f"),
        ("f/", dir, "", ""),
        ("w/", dir, "", ""),
        ("w/inner", FILE, "", ""),
        (".wh.w", FILE, "", ""),
        ("./", dir, "", ""),
        (".", dir, "", ""),
    ]);
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(fs::read_to_string(dest.join("x")).unwrap(), "two");
    assert_eq!(
        fs::read_to_string(dest.join("d")).unwrap(),
        "d is a file now"
    );
    assert!(fs::symlink_metadata(dest.join("f")).unwrap().is_dir());
    assert!(fs::symlink_metadata(dest.join("w"))
        .unwrap()
        .file_type()
        .is_char_device());
    // The directory times were set at the end, where still a directory.
    assert_eq!(fs::metadata(dest.join("f")).unwrap().mtime(), 1000);
}

#[test]
fn missing_parents_are_made() {
    let scratch = Scratch::new("parents");
    let dest = scratch.dir("dest");
    unpack_layer(&hostile(&[("./a/b/c", FILE, "", "c")])[..], &dest).unwrap();
    let meta = fs::metadata(dest.join("a/b")).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o755, 0, 0)
    );
    assert_eq!(fs::read_to_string(dest.join("a/b/c")).unwrap(), "c");
}
