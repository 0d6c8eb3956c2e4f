//! What a graded run graded: a fingerprint of a package's files and of its
//! checks, so the learner's tools know whether a kept run still describes
//! the code on disk.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `tests/NN-name.rs` of the package in `manifest_dir` (`lessons/NN-name`).
pub fn checks_file(manifest_dir: &Path, step: &str) -> PathBuf {
    manifest_dir.join("../../tests").join(format!("{step}.rs"))
}

/// sha256 over every file's path, kind and contents (sorted; `target/` and
/// hidden entries left out; links by their target, never followed), then
/// over the checks file. Equal fingerprints: the same code, graded the same.
pub fn fingerprint(dir: &Path, checks: &Path) -> String {
    let mut hash = Sha256::new();
    let mut entries = Vec::new();
    list(dir, Path::new(""), &mut entries);
    entries.sort();
    for (relative, path) in entries {
        hash.update(relative.as_os_str().as_encoded_bytes());
        hash.update([0]);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hash.update(b"link\0");
                if let Ok(target) = std::fs::read_link(&path) {
                    hash.update(target.as_os_str().as_encoded_bytes());
                }
            }
            _ => {
                hash.update(b"file\0");
                hash.update(std::fs::read(&path).unwrap_or_default());
            }
        }
        hash.update([0]);
    }
    hash.update(b"checks\0");
    hash.update(std::fs::read(checks).unwrap_or_default());
    format!("{:x}", hash.finalize())
}

fn list(dir: &Path, relative: &Path, out: &mut Vec<(PathBuf, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text == "target" || text.starts_with('.') {
            continue;
        }
        let (path, rel) = (entry.path(), relative.join(&name));
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => list(&path, &rel, out),
            Ok(_) => out.push((rel, path)),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_count_and_times_do_not() {
        let dir = std::env::temp_dir().join(format!("grader-sources-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "fn a() {}\n").unwrap();
        let checks = dir.join("checks.rs");
        std::fs::write(&checks, "// checks\n").unwrap();
        let first = fingerprint(&dir, &checks);
        // Build output and a rewrite with the same bytes change nothing.
        std::fs::write(dir.join("target/x"), "built").unwrap();
        std::fs::write(dir.join("src/lib.rs"), "fn a() {}\n").unwrap();
        assert_eq!(fingerprint(&dir, &checks), first);
        std::fs::write(dir.join("src/lib.rs"), "fn b() {}\n").unwrap();
        let second = fingerprint(&dir, &checks);
        assert_ne!(second, first);
        // A file moved away, or new checks, change it.
        std::fs::rename(dir.join("src/lib.rs"), dir.join("lib.rs")).unwrap();
        assert_ne!(fingerprint(&dir, &checks), second);
        let third = fingerprint(&dir, &checks);
        std::fs::write(&checks, "// new checks\n").unwrap();
        assert_ne!(fingerprint(&dir, &checks), third);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
