//! Images over the wire: step 08's `push` and `pull` against `skopeo copy`
//! of the same image between the same registry and a local form, timed in
//! turns in one run.
//!
//! The registry is the checks' own (`grader::registry::Registry`): the
//! distribution registry in a lab network namespace, on 10.77.0.1:5000,
//! storing into a temp dir. Every client reaches it from inside the lab
//! (`nsenter --net=/proc/PID/ns/net`), nothing runs on the host's network.
//!
//! ```text
//! push:  minibox --root R push --tls-verify=false 10.77.0.1:5000/push/minibox:1
//!        skopeo copy --preserve-digests --dest-tls-verify=false \
//!               oci:LAYOUT:1 docker://10.77.0.1:5000/push/skopeo:1
//! pull:  minibox --root EMPTY pull --tls-verify=false 10.77.0.1:5000/pull/image:1
//!        skopeo copy --preserve-digests --src-tls-verify=false \
//!               --dest-oci-accept-uncompressed-layers \
//!               docker://10.77.0.1:5000/pull/image:1 oci:EMPTY-DIR:1
//! ```
//!
//! The image is layers of pseudo-random bytes (`COPY` of files made here,
//! `FROM scratch`: no container runs), which no compressor shrinks, saved
//! with `minibox save --format oci` for skopeo: both move the same blobs,
//! byte for byte. minibox sends layers as plain tars; skopeo would gzip
//! them for a registry and for an OCI layout, which `--preserve-digests`
//! and `--dest-oci-accept-uncompressed-layers` turn off (checked: the
//! manifest skopeo pushed names minibox's layer digests).
//!
//! Nothing may be "already there": each push goes to a registry started
//! for it (empty storage; a registry answers HEAD for a blob of another
//! repository with 404, but may skip storing bytes it has), and minibox
//! forgets where it pushed before (its mount hints, `ROOT/distribution/`,
//! else it would mount the blobs from the last repository instead of
//! sending them). Each pull goes into an empty store or an empty layout.

use super::setup::Tools;
use super::Scratch;
use anyhow::{bail, Context};
use grader::registry::Registry;
use grader::tools::{skopeo, Skopeo};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One tool moving the image one way: the median of its runs.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub name: String,
    pub mb_s: f64,
    pub median_s: f64,
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// The bytes each copy moves: the layers and the config (MB = 10^6).
    pub bytes: u64,
    pub layers: usize,
    /// minibox then skopeo, each way.
    pub push: [Rate; 2],
    pub pull: [Rate; 2],
}

impl Distribution {
    pub fn mb(&self) -> f64 {
        self.bytes as f64 / 1e6
    }
}

/// Push and pull, measured in turns; `None` (with a note) where there is
/// no registry or skopeo, or a copy fails.
pub fn measure(tools: &Tools, quick: bool, notes: &mut Vec<String>) -> Option<Distribution> {
    if let Some(why) = Registry::unavailable().or_else(Skopeo::unavailable) {
        eprintln!("bench: push and pull skipped: {why}");
        notes.push(format!(
            "push and pull against skopeo were not measured: {why}"
        ));
        return None;
    }
    let started = Instant::now();
    match run(tools, quick) {
        Ok(distribution) => {
            eprintln!(
                "bench: push and pull took {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Some(distribution)
        }
        Err(e) => {
            eprintln!("bench: push and pull not measured: {e:#}");
            notes.push(format!(
                "push and pull against skopeo were not measured: {e:#}"
            ));
            None
        }
    }
}

/// The image's name in the source store.
const IMAGE: &str = "bench/blob:1";

fn run(tools: &Tools, quick: bool) -> anyhow::Result<Distribution> {
    // Quick: 16 MB in 2 layers, 3 rounds; else 50 MB in 5 layers, 5 rounds.
    let (layers, layer_mb, rounds) = if quick { (2, 8, 3) } else { (5, 10, 5) };
    let scratch = Scratch::new(&tools.out, "distribution")?;
    let source = scratch.0.join("source");
    let layout = scratch.0.join("layout");
    build_image(tools, &scratch.0, &source, layers, layer_mb)?;
    ok(minibox(tools, &source, None).args([
        "save",
        "--format",
        "oci",
        "-o",
        &layout.to_string_lossy(),
        IMAGE,
    ]))?;
    let (bytes, digests) = blobs_of(&layout)?;
    let oci = format!("oci:{}:1", layout.display());

    // Push: a registry of its own for every copy.
    let mut push = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for step in 0..2 {
            // In turns, each going first every other round.
            let which = (round + step) % 2;
            let registry =
                Registry::start().map_err(|f| anyhow::anyhow!("the lab's registry: {f}"))?;
            let netns = registry.netns();
            let took = if which == 0 {
                let name = format!("{}/push/minibox:1", registry.address());
                ok(minibox(tools, &source, None).args(["tag", IMAGE, &name]))?;
                let _ = std::fs::remove_dir_all(source.join("distribution"));
                timed(|| {
                    ok(minibox(tools, &source, Some(&netns)).args([
                        "push",
                        "--tls-verify=false",
                        &name,
                    ]))
                })?
            } else {
                let target = format!("docker://{}/push/skopeo:1", registry.address());
                let took = timed(|| {
                    skopeo(
                        Some(&netns),
                        &[
                            "copy",
                            "--quiet",
                            "--preserve-digests",
                            "--dest-tls-verify=false",
                            &oci,
                            &target,
                        ],
                    )
                    .map(drop)
                    .map_err(|f| anyhow::anyhow!("{f}"))
                })?;
                if round == 0 {
                    same_layers(&registry, "push/skopeo", &digests)?;
                }
                took
            };
            push[which].push(took);
        }
    }

    // Pull: one registry holding the image, each copy into an empty place.
    let registry = Registry::start().map_err(|f| anyhow::anyhow!("the lab's registry: {f}"))?;
    let netns = registry.netns();
    let name = format!("{}/pull/image:1", registry.address());
    ok(minibox(tools, &source, None).args(["tag", IMAGE, &name]))?;
    ok(minibox(tools, &source, Some(&netns)).args(["push", "--tls-verify=false", &name]))?;
    same_layers(&registry, "pull/image", &digests)?;
    let mut pull = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for step in 0..2 {
            let which = (round + step) % 2;
            let into = scratch.0.join(format!("pulled-{round}-{which}"));
            let took = if which == 0 {
                std::fs::create_dir_all(&into)?;
                timed(|| {
                    ok(minibox(tools, &into, Some(&netns)).args([
                        "pull",
                        "--tls-verify=false",
                        &name,
                    ]))
                })?
            } else {
                let target = format!("oci:{}:1", into.display());
                timed(|| {
                    skopeo(
                        Some(&netns),
                        &[
                            "copy",
                            "--quiet",
                            "--preserve-digests",
                            "--src-tls-verify=false",
                            "--dest-oci-accept-uncompressed-layers",
                            &format!("docker://{name}"),
                            &target,
                        ],
                    )
                    .map(drop)
                    .map_err(|f| anyhow::anyhow!("{f}"))
                })?
            };
            if which == 1 {
                // The layout skopeo wrote holds the very blobs pushed.
                let (got, _) = blobs_of(&into)?;
                anyhow::ensure!(
                    got == bytes,
                    "skopeo's layout holds {got} bytes of layers and config, not {bytes}"
                );
            }
            let _ = std::fs::remove_dir_all(&into);
            pull[which].push(took);
        }
    }
    let rate = |name: &str, times: Vec<Duration>| {
        let mut times = times;
        times.sort();
        let median = times[times.len() / 2].as_secs_f64();
        Rate {
            name: name.to_string(),
            mb_s: bytes as f64 / 1e6 / median,
            median_s: median,
            runs: times.len(),
        }
    };
    let [mb_push, sk_push] = push;
    let [mb_pull, sk_pull] = pull;
    Ok(Distribution {
        bytes,
        layers,
        push: [
            rate("minibox push", mb_push),
            rate("skopeo copy oci: → docker://", sk_push),
        ],
        pull: [
            rate("minibox pull (into an empty store)", mb_pull),
            rate("skopeo copy docker:// → oci:", sk_pull),
        ],
    })
}

/// `minibox --root ROOT`, in the lab `netns` when given.
fn minibox(tools: &Tools, root: &Path, netns: Option<&str>) -> Command {
    let mut command = match netns {
        Some(netns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={netns}"))
                .arg("--")
                .arg(&tools.minibox);
            c
        }
        None => Command::new(&tools.minibox),
    };
    command.arg("--root").arg(root);
    command
}

/// Run to its end; its stderr if it fails. Output is not kept: a pull's
/// progress lines are not the bench's.
fn ok(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("{command:?}"))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn timed(once: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    once()?;
    Ok(started.elapsed())
}

/// `layers` files of `mb` MB of pseudo-random bytes, each its own layer:
///
/// ```text
/// FROM scratch
/// COPY layer-0 /data/layer-0
/// COPY layer-1 /data/layer-1
/// ```
fn build_image(
    tools: &Tools,
    scratch: &Path,
    root: &Path,
    layers: usize,
    mb: usize,
) -> anyhow::Result<()> {
    let context = scratch.join("context");
    std::fs::create_dir_all(&context)?;
    let mut dockerfile = String::from("FROM scratch\n");
    // xorshift64: fast, and as far from compressible as gzip can tell.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..layers {
        let mut bytes = Vec::with_capacity(mb * 1_000_000);
        while bytes.len() < mb * 1_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        std::fs::write(context.join(format!("layer-{i}")), &bytes)?;
        dockerfile.push_str(&format!("COPY layer-{i} /data/layer-{i}\n"));
    }
    std::fs::write(context.join("Dockerfile"), dockerfile)?;
    ok(minibox(tools, root, None).args(["build", "-t", IMAGE, &context.to_string_lossy()]))
}

/// The bytes of an OCI layout's one image that a copy moves (its layers
/// and config), and its layers' digests.
fn blobs_of(layout: &Path) -> anyhow::Result<(u64, Vec<String>)> {
    let read = |path: PathBuf| -> anyhow::Result<serde_json::Value> {
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_slice(&text)?)
    };
    let index = read(layout.join("index.json"))?;
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .context("an index.json naming no manifest")?;
    let manifest = read(blob_path(layout, digest))?;
    let layers = manifest["layers"]
        .as_array()
        .context("a manifest with no layers")?;
    let size = |d: &serde_json::Value| d["size"].as_u64().unwrap_or(0);
    let bytes = layers.iter().map(size).sum::<u64>() + size(&manifest["config"]);
    let digests = layers
        .iter()
        .filter_map(|l| l["digest"].as_str().map(str::to_string))
        .collect();
    Ok((bytes, digests))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The manifest the registry holds under `repo:1` names exactly `digests`
/// as its layers: the copy moved minibox's blobs, not recompressed ones.
fn same_layers(registry: &Registry, repo: &str, digests: &[String]) -> anyhow::Result<()> {
    let (status, body) = registry
        .get(&format!("/v2/{repo}/manifests/1"))
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    anyhow::ensure!(status == 200, "GET the manifest of {repo}:1: {status}");
    let manifest: serde_json::Value = serde_json::from_slice(&body)?;
    let got: Vec<&str> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str())
        .collect();
    anyhow::ensure!(
        got == digests,
        "{repo}:1 names layers {got:?}, not the image's {digests:?}: the copy changed them"
    );
    Ok(())
}
