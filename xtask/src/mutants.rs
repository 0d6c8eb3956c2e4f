//! `cargo xtask mutants STEP`: how many small mistakes in the learner's
//! regions the step's graded checks catch.
//!
//! cargo-mutants changes the reference one small way at a time (`+=` to
//! `*=`, `&&` to `||`, a comparison flipped, a function body replaced by
//! `Ok(())` or a default value), builds it and runs the step's graded
//! checks: a mutant the checks fail on is *caught*, one they pass is
//! *missed* (the learner could have made that mistake for full marks),
//! one that does not compile is *unviable*. Only the learner's regions are
//! mutated: cargo-mutants' `--in-diff` takes a diff, and the one given here
//! "adds" exactly the regions' lines to the reference.
//!
//! It runs in the copy of the workspace `verify` knocks regions out in
//! (see [`crate::knockout`]), in place (the copy is its own), one mutant at
//! a time: the checks of steps 02 on make namespaces, mounts and network
//! labs as root, and share the target directory.

use crate::knockout::{self, Copy};
use crate::lessons::{self, Region};
use crate::steps::{self, Step};
use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;

/// A unified diff that adds each region's lines (between the markers) to
/// its file, paths relative to the workspace.
pub fn regions_diff(id: &str, regions: &[Region]) -> String {
    let mut out = String::new();
    let mut current: Option<&Path> = None;
    let mut added_before = 0;
    for region in regions {
        if current != Some(region.file.as_path()) {
            let path = format!("solutions/{id}/{}", region.file.display());
            out.push_str(&format!("--- a/{path}\n+++ b/{path}\n"));
            current = Some(region.file.as_path());
            added_before = 0;
        }
        let lines: Vec<&str> = region.code.lines().collect();
        if lines.is_empty() {
            continue;
        }
        // The code starts on the line after `// BEGIN SOLUTION`.
        let first = region.begin + 1;
        let old_start = first - 1 - added_before;
        out.push_str(&format!("@@ -{old_start},0 +{first},{} @@\n", lines.len()));
        for line in &lines {
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
        added_before += lines.len();
    }
    out
}

/// What cargo-mutants found, from its `mutants.out` directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub caught: Vec<String>,
    pub missed: Vec<String>,
    pub unviable: Vec<String>,
    pub timeout: Vec<String>,
}

impl Outcome {
    pub fn read(dir: &Path) -> Outcome {
        let lines = |name: &str| -> Vec<String> {
            std::fs::read_to_string(dir.join(name))
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        };
        Outcome {
            caught: lines("caught.txt"),
            missed: lines("missed.txt"),
            unviable: lines("unviable.txt"),
            timeout: lines("timeout.txt"),
        }
    }

    /// Caught (a timeout is caught too: the checks did not pass) out of
    /// the viable mutants, in percent; none viable: none.
    pub fn kill_rate(&self) -> Option<f64> {
        let killed = self.caught.len() + self.timeout.len();
        let viable = killed + self.missed.len();
        (viable > 0).then(|| 100.0 * killed as f64 / viable as f64)
    }

    pub fn render(&self, step: &Step) -> String {
        let mut out = format!(
            "step {}: {} caught, {} missed, {} unviable, {} timed out",
            step.id,
            self.caught.len(),
            self.missed.len(),
            self.unviable.len(),
            self.timeout.len()
        );
        match self.kill_rate() {
            Some(rate) => out.push_str(&format!("; kill rate {rate:.0}%\n")),
            None => out.push_str("; no viable mutant\n"),
        }
        if !self.missed.is_empty() {
            out.push_str("surviving mutants (the checks pass with these mistakes):\n");
            for missed in &self.missed {
                out.push_str(&format!("  {missed}\n"));
            }
        }
        out
    }
}

/// Whether cargo-mutants is installed, and its version.
pub fn installed() -> Option<String> {
    let output = crate::cargo::cargo()
        .args(["mutants", "--version"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

pub const INSTALL: &str = "cargo install cargo-mutants --locked";

pub fn run(root: &Path, wanted: &str) -> anyhow::Result<()> {
    let step = steps::find(root, wanted).map_err(crate::usage)?;
    if installed().is_none() {
        bail!("cargo-mutants is not installed: {INSTALL}");
    }
    let regions = lessons::regions(root, &step)?;
    if regions.is_empty() {
        bail!("step {} has no learner region to mutate", step.id);
    }
    let copy = Copy::sync(root)?;
    copy.restore(root, &step)?;
    let work = copy.target.join("verify");
    let diff = work.join(format!("regions-{}.diff", step.number));
    std::fs::write(&diff, regions_diff(&step.id, &regions))?;
    let out = work.join(format!("mutants-{}", step.number));
    let _ = std::fs::remove_dir_all(out.join("mutants.out"));
    std::fs::create_dir_all(&out)?;
    println!(
        "mutants of step {}'s {} learner region(s), against its graded checks (one at a time) ...",
        step.id,
        regions.len()
    );
    let status = cargo_mutants(&copy, &step)
        .arg("--in-diff")
        .arg(&diff)
        .arg("--output")
        .arg(&out)
        .args(["--", "--test", "grade"])
        .status()
        .context("cannot run cargo mutants")?;
    let outcome = Outcome::read(&out.join("mutants.out"));
    // Exit codes: 0 all caught, 2 some missed, 3 some timed out; others:
    // the baseline failed, or cargo-mutants itself did.
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        bail!(
            "cargo mutants failed ({status}); its log: {}",
            out.join("mutants.out").join("log").display()
        );
    }
    println!("\n{}", outcome.render(&step));
    Ok(())
}

/// cargo-mutants over the copy's `verify-NN`, in fail-fast mode (the test
/// arguments, `-- --test grade`, come last).
fn cargo_mutants(copy: &Copy, step: &Step) -> Command {
    let mut command = crate::cargo::cargo();
    command
        .arg("mutants")
        .arg("--dir")
        .arg(&copy.dir)
        .args(["--package", &knockout::package(&step.number)])
        .args(["--in-place", "--test-workspace", "false"])
        .env("CARGO_TARGET_DIR", &copy.target)
        .env("MINIBOX_GRADE_FAIL_FAST", "1");
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_adds_exactly_the_regions_lines() {
        let text = "fn a() {\n    // TODO(lesson-01): one\n    // BEGIN SOLUTION\n    x();\n    y()\n    // END SOLUTION\n}\nfn b() {\n    // TODO(lesson-01): two\n    // BEGIN SOLUTION\n    z\n    // END SOLUTION\n}\n";
        let regions = lessons::regions_of(text, "01-fork", "01", Path::new("src/a.rs"));
        assert_eq!(
            regions_diff("01-fork", &regions),
            "--- a/solutions/01-fork/src/a.rs\n+++ b/solutions/01-fork/src/a.rs\n@@ -3,0 +4,2 @@\n+    x();\n+    y()\n@@ -8,0 +11,1 @@\n+    z\n"
        );
    }

    #[test]
    fn the_kill_rate_counts_viable_mutants() {
        let outcome = Outcome {
            caught: vec!["a".into(); 8],
            missed: vec!["m".into()],
            unviable: vec!["u".into(); 5],
            timeout: vec!["t".into()],
        };
        assert_eq!(outcome.kill_rate(), Some(90.0));
        let step = Step {
            id: "01-fork".into(),
            number: "01".into(),
        };
        let text = outcome.render(&step);
        assert!(
            text.starts_with(
                "step 01-fork: 8 caught, 1 missed, 5 unviable, 1 timed out; kill rate 90%\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("  m\n"), "{text}");
        assert_eq!(Outcome::default().kill_rate(), None);
    }
}
