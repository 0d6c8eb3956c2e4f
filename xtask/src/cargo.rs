//! Running cargo for the graded checks.

use anyhow::{bail, Context};
use grader::report::Report;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo that runs this xtask (the one the learner invoked).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// cargo, in the workspace at `root`, building into its target directory.
fn cargo_in(root: &Path) -> Command {
    let mut command = cargo();
    command
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir(root));
    command
}

/// The workspace's target directory: `CARGO_TARGET_DIR` for this
/// workspace, if set; `target/` in any other (a copy being graded, a test
/// fixture), so that two workspaces never share one.
pub fn target_dir(root: &Path) -> PathBuf {
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if own == Some(root) => root.join(dir),
        _ => root.join("target"),
    }
}

/// Where the grader keeps the last complete graded run of `package`.
pub fn last_run_path(root: &Path, package: &str) -> PathBuf {
    grader::last_run_path(&target_dir(root).join("tmp"), package)
}

/// What came of grading a package.
#[derive(Debug)]
pub enum Graded {
    /// The checks ran (or said why they can't run here: `report.error`).
    Report(Report),
    /// The package does not compile: the compiler's first error, as rustc
    /// renders it (a few lines, not the wall of text that follows).
    DoesNotCompile(String),
    /// The checks did not run and did not say why: the end of their output.
    Crashed(String),
}

/// Run the graded checks of `package`. The test run itself failing is
/// expected (a starter fails its checks); no report is not.
pub fn grade(root: &Path, package: &str, colour: bool) -> anyhow::Result<Graded> {
    // What is about to be graded (read before the build starts).
    let sources = sources(root, package);
    let graded = grade_in(root, &target_dir(root), package, colour, false)?;
    if let Graded::Report(report) = &graded {
        // Kept as the step's last run, with what it graded.
        if report.checks.len() + report.skipped.len() > 0 || report.error.is_some() {
            let mut kept = report.clone();
            kept.sources = sources;
            let _ = std::fs::write(
                last_run_path(root, package),
                serde_json::to_string_pretty(&kept)? + "\n",
            );
        }
    }
    Ok(graded)
}

/// Run the graded checks of `package` of the workspace in `dir`, building
/// into `target`; `fail_fast`: stop at the first failed check (the grader's
/// `MINIBOX_GRADE_FAIL_FAST`). Nothing is kept.
pub fn grade_in(
    dir: &Path,
    target: &Path,
    package: &str,
    colour: bool,
    fail_fast: bool,
) -> anyhow::Result<Graded> {
    let reports = target.join("grade");
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    let json = reports.join(format!("{package}.run.json"));
    let _ = std::fs::remove_file(&json);
    // JSON messages, so the compiler's first error can be told apart from
    // the checks' own output, which shares stdout.
    let format = if colour {
        "--message-format=json-diagnostic-rendered-ansi"
    } else {
        "--message-format=json"
    };
    let mut command = cargo();
    command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .args(["test", "--quiet", format, "--package", package])
        .args(["--test", "grade"])
        .env("MINIBOX_GRADE_JSON", &json);
    if fail_fast {
        command.env("MINIBOX_GRADE_FAIL_FAST", "1");
    } else {
        command.env_remove("MINIBOX_GRADE_FAIL_FAST");
    }
    let output = command.output().context("cannot run cargo")?;
    if let Ok(text) = std::fs::read_to_string(&json) {
        let _ = std::fs::remove_file(&json);
        let report: Report =
            serde_json::from_str(&text).with_context(|| format!("reading {}", json.display()))?;
        return Ok(Graded::Report(report));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(error) = first_compiler_error(&stdout) {
        return Ok(Graded::DoesNotCompile(error));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Ok(Graded::Crashed(tail.join("\n")))
}

/// The fingerprint of what grading `package` would grade now.
pub fn sources(root: &Path, package: &str) -> Option<String> {
    let (kind, number) = package.split_once('-')?;
    let base = if kind == "lesson" {
        "lessons"
    } else {
        "solutions"
    };
    let dir = std::fs::read_dir(root.join(base))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{number}-")))
        })?;
    let id = dir.file_name()?.to_string_lossy().into_owned();
    Some(grader::sources::fingerprint(
        &dir,
        &grader::sources::checks_file(&dir, &id),
    ))
}

/// Like [`grade`], for the maintainers' `verify`: anything but a report is
/// an error.
pub fn report(root: &Path, package: &str) -> anyhow::Result<Report> {
    match grade(root, package, false)? {
        Graded::Report(report) => Ok(report),
        Graded::DoesNotCompile(error) => {
            bail!("{package} does not compile:\n{error}")
        }
        Graded::Crashed(tail) => {
            bail!("`cargo test -p {package} --test grade` produced no report:\n{tail}")
        }
    }
}

/// The first error among cargo's JSON messages, as the compiler rendered
/// it. Warnings, and the closing "aborting due to N previous errors", are
/// left out.
pub fn first_compiler_error(cargo_stdout: &str) -> Option<String> {
    cargo_stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-message")
        .map(|m| m["message"].clone())
        .find(|m| {
            m["level"] == "error"
                && !m["message"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("aborting due to")
        })
        .and_then(|m| m["rendered"].as_str().map(|r| r.trim_end().to_string()))
}

/// The checks of `package` as the book should have them: name, points,
/// section, hint.
pub fn catalog(root: &Path, package: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let output = cargo_in(root)
        .args(["test", "--quiet", "--package", package, "--test", "grade"])
        .args(["--", "--catalog"])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_is_picked_out_of_cargo_messages() {
        let stdout = [
            r#"{"reason":"compiler-artifact","package_id":"x"}"#,
            r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused","rendered":"warning: unused\n"}}"#,
            "running 0 tests",
            r#"{"reason":"compiler-message","message":{"level":"error","message":"cannot find value `x`","rendered":"error[E0425]: cannot find value `x`\n --> src/lib.rs:2:5\n\n"}}"#,
            r#"{"reason":"compiler-message","message":{"level":"error","message":"mismatched types","rendered":"error[E0308]: mismatched types\n"}}"#,
            r#"{"reason":"compiler-message","message":{"level":"error","message":"aborting due to 2 previous errors","rendered":"error: aborting\n"}}"#,
        ]
        .join("\n");
        assert_eq!(
            first_compiler_error(&stdout).as_deref(),
            Some("error[E0425]: cannot find value `x`\n --> src/lib.rs:2:5")
        );
        assert_eq!(first_compiler_error("running 3 tests\n{not json"), None);
    }
}
