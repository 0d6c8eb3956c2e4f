//! The built-in base image, `base`: something real for `FROM` and `run` to
//! start from without a registry.
//!
//! Its one layer is the offline root filesystem of step 03 (a static
//! busybox, or the host's own programs with their libraries:
//! `MINIBOX_ROOTFS_SOURCE=busybox` or `=host` picks one), plus a
//! pretend `apt` (`base/apt`) so that the Dockerfiles of the layering
//! experiment run as written: `RUN apt update && apt upgrade -y`,
//! `RUN apt install vim -y`. It is made on first use, in every store.

use crate::digest::Digest;
use crate::image::{rfc3339, History, ImageConfig, Reference, RootFs, RunConfig};
use crate::store::Store;
use anyhow::Context;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// `FROM base` or `run base ...`.
pub const NAME: &str = "base";

/// The time every file of the base image carries: the Unix epoch, so the
/// base layer has the same digest every time it is made on this machine.
pub const EPOCH: u64 = 0;

const APT: &str = include_str!("base/apt");

/// The environment docker's official images set.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Is this reference the built-in image?
pub fn is_base(text: &str) -> bool {
    Reference::parse(text).is_ok_and(|r| r.name == NAME && r.tag == "latest")
}

/// The base image's id, making it first if this store has none.
pub fn ensure(store: &Store) -> anyhow::Result<Digest> {
    let reference = Reference::parse(NAME)?;
    if let Some(id) = store.repositories()?.get(&reference.to_string()) {
        return Ok(id.clone());
    }
    let staging = store.temp_dir("base")?;
    let dir = staging.path().join("rootfs");
    let built = rootfs::build(&dir, rootfs::Source::Auto).context("cannot make the base image")?;
    add_package_manager(&dir)?;
    let tar = staging.path().join("layer.tar");
    let file = fs::File::create(&tar)?;
    crate::layer_tar::write_layer(&dir, std::io::BufWriter::new(file), EPOCH)?;
    no_whiteouts(&tar)?;
    let diff_id = store.add_layer(&tar)?;
    let created = rfc3339(EPOCH);
    let config = ImageConfig {
        created: created.clone(),
        architecture: architecture().to_string(),
        os: "linux".to_string(),
        config: RunConfig {
            env: vec![format!("PATH={PATH}")],
            cmd: Some(vec!["/bin/sh".to_string()]),
            ..RunConfig::default()
        },
        rootfs: RootFs {
            diff_ids: vec![diff_id],
            ..RootFs::default()
        },
        history: vec![History {
            created,
            created_by: format!(
                "minibox base: {} programs from {}",
                built.programs.len(),
                built.source
            ),
            comment: "built offline on this machine".to_string(),
            empty_layer: false,
        }],
    };
    let id = store.put_image(&config)?;
    store.tag(&reference, &id)?;
    Ok(id)
}

/// A whole rootfs deletes nothing: a `.wh.` entry in its tar means the
/// whiteout test took an ordinary file for one. Say so here, where it is
/// plain, rather than let every container fail to find `/bin/sh`.
fn no_whiteouts(tar: &std::path::Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(fs::File::open(tar)?);
    for entry in archive.entries()? {
        let entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.starts_with(".wh."))
        {
            anyhow::bail!(
                "the base image's layer came out with a whiteout ({name}): a whiteout is only a character device 0/0 (whiteout::is_overlay_whiteout)"
            );
        }
    }
    Ok(())
}

/// The pretend apt, and the dpkg status file it keeps.
fn add_package_manager(dir: &std::path::Path) -> anyhow::Result<()> {
    let apt = dir.join("usr/bin/apt");
    fs::write(&apt, APT)?;
    fs::set_permissions(&apt, fs::Permissions::from_mode(0o755))?;
    fs::create_dir_all(dir.join("var/lib/dpkg"))?;
    fs::create_dir_all(dir.join("var/lib/apt/lists"))?;
    let mut status = String::new();
    for package in ["base-files", "busybox", "libc6", "dash", "coreutils"] {
        status.push_str(&format!(
            "Package: {package}\nStatus: install ok installed\nVersion: 1-minibox\n\n"
        ));
    }
    fs::write(dir.join("var/lib/dpkg/status"), status)?;
    fs::write(
        dir.join("etc/os-release"),
        "PRETTY_NAME=\"minibox base\"\nID=minibox\n",
    )?;
    Ok(())
}

/// The architecture as the OCI spec spells it (Go's names).
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
