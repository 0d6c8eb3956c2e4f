//! What the bench needs: the finished runtime built for release, crun,
//! runc and qemu from the distribution where they are missing, one root
//! filesystem for everyone, OCI bundles of it, and a kernel and a static
//! busybox for the VM (downloaded as packages, unpacked here, never
//! installed on the host).

use super::stats::check;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tools {
    /// `solution-08` (the finished runtime), release build.
    pub minibox: PathBuf,
    pub crun: Option<PathBuf>,
    pub runc: Option<PathBuf>,
    pub qemu: Option<PathBuf>,
    /// The root filesystem of the OCI bundles and of the floor.
    pub rootfs: PathBuf,
    /// OCI bundles running `true`, and `sleep` for the density runs.
    pub bundle_true: PathBuf,
    pub bundle_sleep: PathBuf,
    /// The VM's kernel and static busybox, when they could be fetched.
    pub kernel: Option<PathBuf>,
    pub busybox: Option<PathBuf>,
    pub out: PathBuf,
}

pub fn prepare(root: &Path, out: &Path) -> anyhow::Result<Tools> {
    eprintln!("bench: building the runtime (release)");
    let target = crate::cargo::target_dir(root);
    check(
        crate::cargo::cargo()
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--release", "--quiet", "--package", "solution-08"]),
    )?;
    let minibox = target.join("release/solution-08");
    install_missing(&[
        ("crun", "crun"),
        ("runc", "runc"),
        ("qemu-system-x86_64", "qemu-system-x86"),
    ]);
    let rootfs = out.join("rootfs");
    if !rootfs.join("bin").exists() {
        let _ = std::fs::remove_dir_all(&rootfs);
        rootfs::build(&rootfs, rootfs::Source::Auto).context("building the root filesystem")?;
    }
    let crun = grader::which("crun");
    let runc = grader::which("runc");
    let spec = crun.as_ref().or(runc.as_ref());
    let (bundle_true, bundle_sleep) = (out.join("bundle-true"), out.join("bundle-sleep"));
    if let Some(spec) = spec {
        bundle(spec, &bundle_true, &rootfs, &["true"])?;
        bundle(spec, &bundle_sleep, &rootfs, &["sleep", "1000000"])?;
    }
    let (kernel, busybox) = vm_assets(&out.join("vm"));
    Ok(Tools {
        minibox,
        crun,
        runc,
        qemu: grader::which("qemu-system-x86_64"),
        rootfs,
        bundle_true,
        bundle_sleep,
        kernel,
        busybox,
        out: out.to_path_buf(),
    })
}

/// `apt-get install` what is missing, as the project's set-up does for
/// the checks; without apt (or the network) the comparisons that need a
/// program are skipped, with a note.
fn install_missing(programs: &[(&str, &str)]) {
    let missing: Vec<&str> = programs
        .iter()
        .filter(|(program, _)| grader::which(program).is_none())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() || grader::which("apt-get").is_none() {
        return;
    }
    eprintln!("bench: installing {} (apt-get)", missing.join(" "));
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status();
}

/// An OCI bundle: the runtime's default spec (`crun spec`), with our
/// command, no terminal, the shared root filesystem, read-only, and
/// minibox's seccomp filter.
fn bundle(runtime: &Path, dir: &Path, rootfs: &Path, args: &[&str]) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    check(Command::new(runtime).arg("spec").current_dir(dir))?;
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(args);
    spec["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
    spec["root"]["readonly"] = true.into();
    // minibox's default filter: the same work on both sides (seccomp.rs).
    spec["linux"]["seccomp"] = super::seccomp::oci_section();
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)?;
    Ok(())
}

/// Debian's kernel and static busybox, fetched as packages (`apt-get
/// download`) and unpacked into `dir`: nothing is installed.
fn vm_assets(dir: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let fetch = || -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let find_kernel = || -> Option<PathBuf> {
            std::fs::read_dir(dir.join("unpacked/boot"))
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
                })
        };
        let busybox = dir.join("unpacked/bin/busybox");
        if find_kernel().is_none() || !busybox.exists() {
            // linux-image-amd64 is a metapackage: its dependency is the image.
            let depends = Command::new("apt-cache")
                .args(["depends", "linux-image-amd64"])
                .output()?;
            let text = String::from_utf8_lossy(&depends.stdout);
            let Some(image) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
            else {
                bail!("apt-cache knows no linux-image-amd64");
            };
            check(
                Command::new("apt-get")
                    .args([
                        "download",
                        "-qq",
                        &format!("linux-image-{image}"),
                        "busybox-static",
                    ])
                    .current_dir(dir),
            )?;
            for deb in std::fs::read_dir(dir)?.flatten().map(|e| e.path()) {
                if deb.extension().is_some_and(|e| e == "deb") {
                    check(
                        Command::new("dpkg-deb")
                            .arg("-x")
                            .arg(&deb)
                            .arg(dir.join("unpacked")),
                    )?;
                    std::fs::remove_file(&deb)?;
                }
            }
        }
        Ok((
            find_kernel().context("no vmlinuz in the kernel package")?,
            busybox,
        ))
    };
    match fetch() {
        Ok((kernel, busybox)) => (Some(kernel), Some(busybox)),
        Err(e) => {
            eprintln!("bench: no kernel for the VM: {e:#}");
            (None, None)
        }
    }
}
