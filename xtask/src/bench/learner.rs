//! The learner's loop: how long the first build takes on this machine, and
//! how long from saving a one-line edit in a lesson to its graded result.
//! Measured on a copy of the workspace with a target dir of its own, so
//! the real one is neither cleaned nor raced.

use super::Scratch;
use anyhow::Context;
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct Loop {
    /// `cargo test --no-run` from nothing: every dependency, every step.
    pub cold_build_s: f64,
    /// An edit to a written lessons/01-fork, then `cargo test -p
    /// lesson-01`: the rebuild of one crate, and its 14 checks run.
    pub edit_to_grade_s: f64,
}

pub fn measure(root: &Path, out: &Path) -> anyhow::Result<Loop> {
    let copy = Scratch::new(out, "learner")?;
    for part in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "lessons",
        "solutions",
        "tests",
        "xtask",
    ] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(root.join(part))
            .arg(&copy.0)
            .status()
            .context("cp")?;
        anyhow::ensure!(status.success(), "copying {part} for the learner's loop");
    }
    let cargo = |args: &[&str]| {
        let mut command = crate::cargo::cargo();
        command
            .current_dir(&copy.0)
            .env("CARGO_TARGET_DIR", copy.0.join("target"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let began = Instant::now();
    let built = cargo(&["test", "--no-run", "--quiet"]).status()?;
    anyhow::ensure!(built.success(), "the cold build failed");
    let cold_build_s = began.elapsed().as_secs_f64();
    // A learner who has written step 01: the reference's code in the
    // lesson, so every check runs to its end instead of stopping at a
    // todo!(). Then once untimed (lesson-01 is not a default member).
    let (from, to) = (
        copy.0.join("solutions/01-fork/src"),
        copy.0.join("lessons/01-fork/src"),
    );
    // `cp -a from/. to/`: the reference has subdirectories (its given
    // modules), which a file-by-file copy refuses.
    let status = Command::new("cp")
        .arg("-a")
        .arg(from.join("."))
        .arg(&to)
        .status()
        .context("cp")?;
    anyhow::ensure!(
        status.success(),
        "copying step 01's reference into the lesson"
    );
    let _ = cargo(&["test", "--quiet", "-p", "lesson-01", "--test", "grade"]).status()?;
    let file = copy.0.join("lessons/01-fork/src/status.rs");
    let mut text = std::fs::read_to_string(&file)?;
    text.push_str("// an edit\n");
    std::fs::write(&file, text)?;
    let began = Instant::now();
    let graded = cargo(&["test", "--quiet", "-p", "lesson-01", "--test", "grade"]).status()?;
    anyhow::ensure!(
        graded.success(),
        "step 01, written, did not pass in the copy"
    );
    Ok(Loop {
        cold_build_s,
        edit_to_grade_s: began.elapsed().as_secs_f64(),
    })
}
