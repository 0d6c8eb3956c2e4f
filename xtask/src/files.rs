//! Files of the workspace.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Every file below `dir`, sorted, leaving out build output (`target`) and
/// hidden files and directories. A symbolic link is listed as itself and
/// never followed: a link in a learner's lesson may point anywhere.
pub fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name == "target" || name.starts_with('.') {
                continue;
            }
            // The entry's own type (lstat), not its target's.
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
