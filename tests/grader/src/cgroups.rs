//! Containers' cgroups, as the cgroup file systems show them: step 06 makes
//! each container a group `minibox/ID` (in the v2 tree, and under the
//! caller's group in v1 trees) and removes it when the container ends; the
//! `minibox` parents stay, as docker's `/docker` does.

use std::path::{Path, PathBuf};

/// Every `minibox/ID` group under `/sys/fs/cgroup` (four levels deep at
/// most: a v1 tree, then the caller's own group).
pub fn container_groups() -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name() == "minibox" {
                for group in std::fs::read_dir(entry.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if group.file_type().is_ok_and(|t| t.is_dir()) {
                        found.push(group.path());
                    }
                }
            } else if depth < 4 {
                walk(&entry.path(), depth + 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 0, &mut found);
    found.sort();
    found
}
