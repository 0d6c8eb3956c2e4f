//! Running cargo for the graded checks.

use anyhow::{bail, Context};
use grader::report::Report;
use std::path::Path;
use std::process::Command;

/// The cargo that runs this xtask (the one the learner invoked).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Run the graded checks of `package` and return their report. The test run
/// itself failing is expected (a starter fails its checks); no report is not.
pub fn grade(root: &Path, package: &str) -> anyhow::Result<Report> {
    let dir = root.join("target").join("grade");
    std::fs::create_dir_all(&dir)?;
    let json = dir.join(format!("{package}.json"));
    let _ = std::fs::remove_file(&json);
    let output = cargo()
        .current_dir(root)
        .args(["test", "--quiet", "--package", package, "--test", "grade"])
        .env("MINIBOX_GRADE_JSON", &json)
        .output()
        .context("cannot run cargo")?;
    match std::fs::read_to_string(&json) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("reading {}", json.display()))
        }
        Err(_) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "`cargo test -p {package} --test grade` produced no report (does it compile?):\n{}",
                tail.join("\n")
            )
        }
    }
}

/// The checks of `package` as the book should have them: name and section.
pub fn catalog(root: &Path, package: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let output = cargo()
        .current_dir(root)
        .args([
            "test",
            "--quiet",
            "--package",
            package,
            "--test",
            "grade",
            "--",
            "--catalog",
        ])
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!(
            "listing the checks of {package} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let start = stdout.find('[').context("no catalog in the output")?;
    Ok(serde_json::from_str(&stdout[start..])?)
}
