//! Looking at an image's files without mounting it: the layers' dirs read
//! top first, as overlayfs reads them.
//!
//! For a path, the topmost layer that has it wins; a whiteout in a layer
//! hides it in all below, and so does an opaque dir above it. The builder
//! asks this before it writes: is `COPY`'s destination a dir in the image?
//! Does `WORKDIR` go through a symbolic link (`/bin -> usr/bin`)? Links are
//! followed *inside the image*, as if chrooted: `/etc` in a link means the
//! image's `/etc`, never the host's.

use crate::whiteout;
use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};

/// What the image has at an absolute `path` (links not followed): the
/// file in the topmost layer that has it, with its metadata.
pub fn lookup(layers: &[PathBuf], path: &Path) -> Option<(PathBuf, Metadata)> {
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        let top = layers.first()?;
        return std::fs::symlink_metadata(top)
            .ok()
            .map(|m| (top.clone(), m));
    }
    'layers: for layer in layers {
        let mut here = layer.clone();
        for (i, part) in parts.iter().enumerate() {
            let parent = here.clone();
            here.push(part);
            match std::fs::symlink_metadata(&here) {
                Err(_) => {
                    // Not in this layer. An opaque parent hides the layers
                    // below; else look lower.
                    if i > 0 && whiteout::is_opaque_dir(&parent).unwrap_or(false) {
                        return None;
                    }
                    continue 'layers;
                }
                Ok(meta) if whiteout::is_overlay_whiteout(&meta) => return None,
                Ok(meta) if i + 1 == parts.len() => return Some((here, meta)),
                Ok(meta) if meta.is_dir() => continue,
                // A file or a link where a dir should be: nothing below it.
                Ok(_) => return None,
            }
        }
    }
    None
}

/// `path` with every symbolic link resolved inside the image (at most 40,
/// as the kernel's own limit). Missing parts are kept as they are.
pub fn resolve(layers: &[PathBuf], path: &Path) -> PathBuf {
    let mut done = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == Path::new("..") {
            done.pop();
            continue;
        }
        let candidate = done.join(&part);
        match lookup(layers, &candidate) {
            Some((file, meta)) if meta.file_type().is_symlink() && links < 40 => {
                links += 1;
                let Ok(target) = std::fs::read_link(&file) else {
                    done = candidate;
                    continue;
                };
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(name) => todo.push(PathBuf::from(name)),
                        Component::ParentDir => todo.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => done = candidate,
        }
    }
    done
}

/// The layers of an image in a store, top first.
pub fn layers_of(store: &crate::store::Store, image: &crate::image::ImageConfig) -> Vec<PathBuf> {
    image
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .map(|d| store.layer_diff(d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_resolve_inside_the_image_and_top_layers_win() {
        let base = std::env::temp_dir().join(format!("image-fs-{}", std::process::id()));
        let (bottom, top) = (base.join("bottom"), base.join("top"));
        std::fs::create_dir_all(bottom.join("usr/bin")).unwrap();
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        symlink("usr/bin", bottom.join("bin")).unwrap();
        symlink("/etc", bottom.join("conf")).unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(top.join("etc/only-top"), "x").unwrap();
        let layers = vec![top.clone(), bottom.clone()];
        assert_eq!(
            resolve(&layers, Path::new("/bin/sh")),
            Path::new("/usr/bin/sh")
        );
        assert_eq!(resolve(&layers, Path::new("/conf/x")), Path::new("/etc/x"));
        assert_eq!(
            resolve(&layers, Path::new("/usr/../bin")),
            Path::new("/usr/bin")
        );
        assert!(lookup(&layers, Path::new("/etc/only-top")).is_some());
        assert!(lookup(&layers, Path::new("/usr/bin")).unwrap().1.is_dir());
        assert!(lookup(&layers, Path::new("/nope")).is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
