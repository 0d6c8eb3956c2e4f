//! Images: the blog post's two Dockerfiles (seven RUN lines, then the same
//! work in two), built into an empty store, then again from the cache.

use super::setup::Tools;
use super::stats::{check, time, Sample};
use super::Scratch;
use anyhow::Context;
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const ORIGIN: &str = include_str!("../../../tests/fixtures/blog/origin.Dockerfile");
const OPTIMIZED: &str = include_str!("../../../tests/fixtures/blog/optimized.Dockerfile");

#[derive(Debug, Serialize)]
pub struct Images {
    pub builds: Vec<Build>,
    /// Bytes of the layer tars both images share (the base, and the first
    /// RUN: same parent, same instruction, same layer).
    pub shared_bytes: u64,
    /// A fully cached rebuild of the seven-RUN file.
    pub cached_rebuild: Sample,
}

#[derive(Debug, Serialize)]
pub struct Build {
    pub name: String,
    pub layers: usize,
    pub bytes: u64,
    /// Into an empty store (the first includes making `base`).
    pub first_build_ms: f64,
}

pub fn measure(tools: &Tools, runs: usize) -> anyhow::Result<Images> {
    let state = Scratch::new(&tools.out, "images")?;
    let minibox = |args: &[&str]| {
        let mut command = Command::new(&tools.minibox);
        command.arg("--root").arg(&state.0).args(args);
        command
    };
    let mut builds = Vec::new();
    let mut layer_sets = Vec::new();
    for (name, text) in [("origin", ORIGIN), ("optimized", OPTIMIZED)] {
        let context = state.0.join(format!("context-{name}"));
        std::fs::create_dir_all(&context)?;
        std::fs::write(context.join("Dockerfile"), text)?;
        let began = Instant::now();
        check(&mut minibox(&[
            "build",
            "-t",
            name,
            &context.to_string_lossy(),
        ]))?;
        let first_build_ms = began.elapsed().as_secs_f64() * 1000.0;
        let layers = layers(minibox(&[
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            name,
        ]))?;
        let bytes = layers.iter().map(|l| tar_bytes(&state.0, l)).sum();
        builds.push(Build {
            name: name.to_string(),
            layers: layers.len(),
            bytes,
            first_build_ms,
        });
        layer_sets.push(layers);
    }
    let shared_bytes = layer_sets[0]
        .iter()
        .filter(|l| layer_sets[1].contains(l))
        .map(|l| tar_bytes(&state.0, l))
        .sum();
    let context = state.0.join("context-origin");
    let cached_rebuild = time("cached rebuild, seven RUN lines", 2, runs, || {
        check(&mut minibox(&[
            "build",
            "-t",
            "origin",
            &context.to_string_lossy(),
        ]))
    })?;
    Ok(Images {
        builds,
        shared_bytes,
        cached_rebuild,
    })
}

/// The diff_ids `inspect --format '{{json .RootFS.Layers}}'` prints.
fn layers(mut command: Command) -> anyhow::Result<Vec<String>> {
    let out = command.output().context("inspect")?;
    anyhow::ensure!(
        out.status.success(),
        "inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("inspect's layer list")
}

/// The size of a layer's tar in the store.
fn tar_bytes(root: &Path, diff_id: &str) -> u64 {
    let hex = diff_id.trim_start_matches("sha256:");
    std::fs::metadata(root.join("layers/sha256").join(hex).join("layer.tar"))
        .map(|m| m.len())
        .unwrap_or(0)
}
