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
    /// Missed mutants that no check can catch: see [`is_equivalent`].
    pub equivalent: Vec<String>,
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
            equivalent: Vec::new(),
        }
    }

    /// Moves the missed mutants that are equivalent (see
    /// [`is_equivalent`]) out of `missed`, reading the sources under `root`.
    pub fn set_apart_equivalent(&mut self, root: &Path) {
        let (equivalent, missed) =
            std::mem::take(&mut self.missed)
                .into_iter()
                .partition(|mutant| {
                    mutant_location(mutant)
                        .and_then(|(path, line, column)| {
                            let text = std::fs::read_to_string(root.join(path)).ok()?;
                            Some(is_equivalent(mutant, &text, line, column))
                        })
                        .unwrap_or(false)
                });
        self.equivalent = equivalent;
        self.missed = missed;
    }

    /// Caught (a timeout is caught too: the checks did not pass) out of
    /// the viable mutants, in percent; none viable: none.
    pub fn kill_rate(&self) -> Option<f64> {
        let killed = self.caught.len() + self.timeout.len();
        // Equivalent mutants are left out: they are the same program.
        let viable = killed + self.missed.len();
        (viable > 0).then(|| 100.0 * killed as f64 / viable as f64)
    }

    pub fn render(&self, step: &Step) -> String {
        let mut out = format!(
            "step {}: {} caught, {} missed, {} unviable, {} timed out, {} equivalent",
            step.id,
            self.caught.len(),
            self.missed.len(),
            self.unviable.len(),
            self.timeout.len(),
            self.equivalent.len()
        );
        match self.kill_rate() {
            Some(rate) => out.push_str(&format!("; kill rate {rate:.0}%\n")),
            None => out.push_str("; no viable mutant\n"),
        }
        if !self.equivalent.is_empty() {
            out.push_str(
                "equivalent, left out of the rate (`|` to `^` between two flag constants: distinct bits, the same number):\n",
            );
            for mutant in &self.equivalent {
                out.push_str(&format!("  {mutant}\n"));
            }
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

/// `path:line:column` of a cargo-mutants mutant name
/// (`src/a.rs:68:26: replace | with ^ in add_veth`).
fn mutant_location(mutant: &str) -> Option<(&str, usize, usize)> {
    let (location, _) = mutant.split_once(": ")?;
    let mut parts = location.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, column))
}

/// Whether a mutant is the same program as the original, so that no check
/// could ever catch it. One kind is recognised, and only where it is
/// certain: `|` replaced by `^` between two constants named in capitals
/// (`NLM_F_CREATE | NLM_F_EXCL`, `MsFlags::MS_NOSUID | MsFlags::MS_NODEV`),
/// each the operand on its own (nothing binds tighter beside it). Flags are
/// distinct bits, and on distinct bits `a ^ b == a | b`. Anything else
/// stays a survivor for a person to judge.
pub fn is_equivalent(mutant: &str, source: &str, line: usize, column: usize) -> bool {
    if !mutant.contains(": replace | with ^ ") {
        return false;
    }
    let lines: Vec<&str> = source.lines().collect();
    let Some(text) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return false;
    };
    // cargo-mutants' columns count characters from 1.
    let chars: Vec<char> = text.chars().collect();
    if chars.get(column.wrapping_sub(1)) != Some(&'|') {
        return false;
    }
    let mut before: String = chars[..column - 1].iter().collect();
    if before.trim().is_empty() {
        // rustfmt puts a long chain's `|` first on its line.
        before = line
            .checked_sub(2)
            .and_then(|i| lines.get(i))
            .map(|l| l.to_string())
            .unwrap_or_default();
    }
    let after: String = chars[column..].iter().collect();
    let path_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let before = before.trim_end();
    let left_start = before.len()
        - before
            .chars()
            .rev()
            .take_while(|c| path_char(*c))
            .map(char::len_utf8)
            .sum::<usize>();
    let (left_context, left) = before.split_at(left_start);
    let after = after.trim_start();
    let right_len = after.chars().take_while(|c| path_char(*c)).count();
    let (right, right_context) = after.split_at(right_len);
    let constant = |name: &str| {
        let last = name.rsplit("::").next().unwrap_or("");
        last.starts_with(|c: char| c.is_ascii_uppercase())
            && last
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    let alone_before = matches!(
        left_context.trim_end().chars().last(),
        None | Some('(' | ',' | '=' | '|' | '{')
    );
    let alone_after = matches!(
        right_context.trim_start().chars().next(),
        None | Some(')' | ',' | ';' | '|' | '}')
    );
    constant(left) && constant(right) && alone_before && alone_after
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
    let mut outcome = Outcome::read(&out.join("mutants.out"));
    outcome.set_apart_equivalent(root);
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
            equivalent: vec!["e".into(); 3],
        };
        assert_eq!(outcome.kill_rate(), Some(90.0));
        let step = Step {
            id: "01-fork".into(),
            number: "01".into(),
        };
        let text = outcome.render(&step);
        assert!(
            text.starts_with(
                "step 01-fork: 8 caught, 1 missed, 5 unviable, 1 timed out, 3 equivalent; kill rate 90%\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("  m\n"), "{text}");
        assert_eq!(Outcome::default().kill_rate(), None);
    }

    #[test]
    fn only_xor_between_flag_constants_is_equivalent() {
        let src = "fn f() {\n    send(m, NLM_F_CREATE | NLM_F_EXCL)?;\n    let m = MsFlags::MS_NOSUID\n        | MsFlags::MS_NODEV;\n    let x = mode | S_IFCHR;\n    let y = A + B | C;\n    let z = A | b();\n}\n";
        let xor = |line, column| {
            is_equivalent(
                &format!("src/a.rs:{line}:{column}: replace | with ^ in f"),
                src,
                line,
                column,
            )
        };
        assert!(xor(2, 26));
        assert!(xor(4, 9));
        assert!(!xor(5, 18), "a variable may hold the bit already");
        assert!(!xor(6, 19), "`+` binds tighter: the operand is A + B");
        assert!(!xor(7, 15), "a call is no constant");
        assert!(!xor(2, 25), "the column must be the `|`");
        assert!(!is_equivalent(
            "src/a.rs:2:26: replace | with & in f",
            src,
            2,
            26
        ));
        assert_eq!(
            mutant_location("solutions/x/src/a.rs:68:26: replace | with ^ in add_veth"),
            Some(("solutions/x/src/a.rs", 68, 26))
        );
    }
}
