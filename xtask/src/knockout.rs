//! Every learner region is graded: the proof `cargo xtask verify` gives.
//!
//! For each `// BEGIN SOLUTION` region of a step, the reference is built
//! with that region alone put back to the starter's `todo!()` (the same
//! transformation as `cargo xtask lessons`), and the step's graded checks
//! run against it: at least one must fail. A region every check passes
//! without is code the score does not see.
//!
//! The knock-outs are built in a copy of the workspace under
//! `target/verify/workspace`, sharing the workspace's target directory, so
//! that the dependencies are built once and each knock-out rebuilds only
//! the step's own crate. In the copy every `solution-NN` package is named
//! `verify-NN`: its binary (`target/debug/verify-NN`) never takes the place
//! of the reference's. The grader runs in fail-fast mode: the first failed
//! check is the answer, the rest need not run.
//!
//! `cargo xtask mutants` works in the same copy.

use crate::cargo::{self, Graded};
use crate::files::walk;
use crate::lessons::{self, Region};
use crate::steps::{self, Step};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the copy holds of the workspace: what the steps' builds read (the
/// references' unit tests include a file of the tools': `xtask/` is copied,
/// not a member).
const COPIED: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "solutions",
    "tests",
    "xtask",
];

/// The copy of the workspace the knock-outs are built in.
pub struct Copy {
    pub dir: PathBuf,
    /// The workspace's own target directory, shared.
    pub target: PathBuf,
}

/// The name of step `number`'s reference package in the copy.
pub fn package(number: &str) -> String {
    format!("verify-{number}")
}

impl Copy {
    /// Bring the copy up to date with the workspace at `root`: files that
    /// differ are written, files that are gone removed, the others left
    /// alone (their times too, so cargo rebuilds nothing for them).
    pub fn sync(root: &Path) -> anyhow::Result<Copy> {
        let target = cargo::target_dir(root);
        let dir = target.join("verify").join("workspace");
        let steps = steps::all(root)?;
        let mut wanted = Vec::new();
        for entry in COPIED {
            let path = root.join(entry);
            if path.is_dir() {
                // `walk` leaves hidden names out; `.cargo` is listed by hand.
                let files = if entry.starts_with('.') {
                    std::fs::read_dir(&path)?
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect()
                } else {
                    walk(&path)?
                };
                wanted.extend(files);
            } else if path.is_file() {
                wanted.push(path);
            }
        }
        let mut kept = std::collections::BTreeSet::new();
        for file in &wanted {
            let relative = file.strip_prefix(root)?.to_path_buf();
            let text = std::fs::read(file)?;
            let mut text = rename(&relative, text, &steps);
            if relative == Path::new("Cargo.toml") {
                // The members the copy leaves out (lessons, tools) are left
                // out of its workspace too.
                let members: Vec<&str> = ["solutions/*", "tests/grader", "tests/rootfs"]
                    .into_iter()
                    .filter(|m| m.ends_with('*') || root.join(m).is_dir())
                    .collect();
                text = copy_manifest(&String::from_utf8_lossy(&text), &members).into_bytes();
            }
            write_if_changed(&dir.join(&relative), &text)?;
            kept.insert(relative);
        }
        if dir.exists() {
            for file in walk(&dir)? {
                let relative = file.strip_prefix(&dir)?;
                if !kept.contains(relative) {
                    std::fs::remove_file(&file)?;
                }
            }
        }
        Ok(Copy { dir, target })
    }

    /// Put one file of step `step` (relative to its directory) to `text`.
    pub fn put(&self, step: &Step, relative: &Path, text: &str) -> anyhow::Result<()> {
        let path = self.dir.join("solutions").join(&step.id).join(relative);
        write_if_changed(&path, text.as_bytes())
    }

    /// Put every file of step `step` back to the reference's.
    pub fn restore(&self, root: &Path, step: &Step) -> anyhow::Result<()> {
        let source = step.solution_dir(root);
        for file in walk(&source)? {
            if file.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&file)?;
                self.put(step, file.strip_prefix(&source)?, &text)?;
            }
        }
        Ok(())
    }

    /// Grade step `step` of the copy, stopping at the first failed check.
    pub fn grade(&self, step: &Step) -> anyhow::Result<Graded> {
        cargo::grade_in(&self.dir, &self.target, &package(&step.number), false, true)
    }
}

/// A file of the copy: the steps' packages renamed (see the module's text).
fn rename(relative: &Path, text: Vec<u8>, steps: &[Step]) -> Vec<u8> {
    let is_manifest = relative
        .file_name()
        .is_some_and(|n| n == "Cargo.toml" || n == "Cargo.lock");
    if !is_manifest {
        return text;
    }
    let mut text = String::from_utf8_lossy(&text).into_owned();
    // The reference's extra tests (`# BEGIN REFERENCE ONLY`) are no graded
    // checks: left out, as in the starters.
    if text.contains("# BEGIN REFERENCE ONLY") {
        text = crate::lessons::without_reference_only(&text);
    }
    for step in steps {
        // Packages, binaries, dependency keys (`solution-01.workspace =
        // true`; a key that differs from its package would rename the
        // library), the lock's entries. `solutions/01-fork` is no match.
        text = text.replace(&step.solution(), &package(&step.number));
    }
    // The shared path packages get names of their own too. Cargo hashes a
    // path package by its path *within* the workspace, so the copy's
    // `grader` and the workspace's would share one fingerprint in the
    // shared target dir, and an edit of the workspace's grader could be
    // taken for fresh after a verify. Dependents keep calling it `grader`.
    for shared in SHARED {
        let renamed = format!("verify-{shared}");
        text = text
            .replace(
                &format!("{shared} = {{ path = "),
                &format!("{shared} = {{ package = \"{renamed}\", path = "),
            )
            .replace(
                &format!("name = \"{shared}\""),
                &format!("name = \"{renamed}\""),
            )
            .replace(&format!(" \"{shared}\",\n"), &format!(" \"{renamed}\",\n"));
    }
    text.into_bytes()
}

/// The workspace's path packages besides the steps (see [`rename`]).
const SHARED: [&str; 2] = ["grader", "rootfs"];

/// The copy's workspace manifest: `members` only (the references and the
/// grader).
pub fn copy_manifest(manifest: &str, members: &[&str]) -> String {
    let listed: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
    let mut out = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("members =") {
            out.push_str(&format!("members = [{}]\n", listed.join(", ")));
        } else if trimmed.starts_with("default-members =") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn write_if_changed(path: &Path, text: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// What came of grading the reference without one region.
#[derive(Debug)]
pub enum Verdict {
    /// A check failed: the region is graded (the first failing check).
    Graded(String),
    /// Every check passed: the region is not graded.
    NotGraded,
    /// The checks could not tell (no build, no report, a skipped check).
    Unknown(String),
}

/// Read a knock-out's grading.
pub fn verdict(graded: &Graded) -> Verdict {
    match graded {
        Graded::Report(report) => {
            if let Some(error) = &report.error {
                return Verdict::Unknown(format!("the checks could not run: {error}"));
            }
            if let Some(failed) = report.checks.iter().find(|c| !c.passed) {
                return Verdict::Graded(failed.check.clone());
            }
            if let Some(skipped) = report.skipped.first() {
                return Verdict::Unknown(format!(
                    "{} was not run on this machine ({})",
                    skipped.check, skipped.reason
                ));
            }
            Verdict::NotGraded
        }
        Graded::DoesNotCompile(error) => Verdict::Unknown(format!(
            "the reference does not compile without it (does a binding of the region outlive END SOLUTION?):\n{error}"
        )),
        Graded::Crashed(tail) => Verdict::Unknown(format!("the checks ended without a report:\n{tail}")),
    }
}

/// The line `verify` fails with for a region no check grades.
pub fn not_graded(step: &Step, region: &Region) -> String {
    format!(
        "step {}: the region at {} (TODO: {}) is not graded: every check passes without it",
        step.number, region.place, region.goal
    )
}

/// Knock out each region of `step` in turn; the problems found, and how
/// long it took.
pub fn check_step(
    root: &Path,
    copy: &Copy,
    step: &Step,
) -> anyhow::Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let regions = lessons::regions(root, step)?;
    let mut problems = Vec::new();
    copy.restore(root, step)?;
    for region in &regions {
        let source = step.solution_dir(root).join(&region.file);
        let text = std::fs::read_to_string(&source)?;
        let shown = format!("solutions/{}/{}", step.id, region.file.display());
        let knocked = lessons::knock_out(&text, &step.number, &shown, region.index_in_file)?;
        copy.put(step, &region.file, &knocked)?;
        let one = Instant::now();
        let graded = copy.grade(step)?;
        copy.put(step, &region.file, &text)?;
        let seconds = one.elapsed().as_secs_f64();
        match verdict(&graded) {
            Verdict::Graded(check) => println!(
                "    {:<44} {seconds:>5.1} s  graded: {check} fails without it",
                format!("{} {}", region.place, region.function)
            ),
            Verdict::NotGraded => {
                println!(
                    "    {:<44} {seconds:>5.1} s  NOT GRADED",
                    format!("{} {}", region.place, region.function)
                );
                problems.push(not_graded(step, region));
            }
            Verdict::Unknown(why) => {
                println!(
                    "    {:<44} {seconds:>5.1} s  unknown",
                    format!("{} {}", region.place, region.function)
                );
                problems.push(format!(
                    "step {}: the region at {} (TODO: {}) could not be checked: {why}",
                    step.number, region.place, region.goal
                ));
            }
        }
    }
    Ok((problems, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<Step> {
        ["01-fork", "02-namespaces"]
            .iter()
            .map(|id| Step {
                id: id.to_string(),
                number: id[..2].to_string(),
            })
            .collect()
    }

    #[test]
    fn the_copy_renames_the_references_but_not_their_paths() {
        let manifest = "[package]\nname = \"solution-02\"\n[[bin]]\nname = \"solution-02\"\n[dependencies]\nsolution-01.workspace = true\n";
        let renamed = String::from_utf8(rename(
            Path::new("solutions/02-namespaces/Cargo.toml"),
            manifest.into(),
            &steps(),
        ))
        .unwrap();
        assert_eq!(renamed, "[package]\nname = \"verify-02\"\n[[bin]]\nname = \"verify-02\"\n[dependencies]\nverify-01.workspace = true\n");
        let root = "[workspace]\nmembers = [\"solutions/*\", \"lessons/*\", \"xtask\"]\ndefault-members = [\"xtask\"]\n[workspace.dependencies]\nsolution-01 = { path = \"solutions/01-fork\" }\n";
        let renamed =
            String::from_utf8(rename(Path::new("Cargo.toml"), root.into(), &steps())).unwrap();
        assert_eq!(
            copy_manifest(&renamed, &["solutions/*", "tests/grader", "tests/rootfs"]),
            "[workspace]\nmembers = [\"solutions/*\", \"tests/grader\", \"tests/rootfs\"]\n[workspace.dependencies]\nverify-01 = { path = \"solutions/01-fork\" }\n"
        );
        // The shared path packages are renamed, their dependents' key kept.
        let shared = "[workspace.dependencies]\ngrader = { path = \"tests/grader\" }\n";
        let renamed =
            String::from_utf8(rename(Path::new("Cargo.toml"), shared.into(), &steps())).unwrap();
        assert_eq!(
            renamed,
            "[workspace.dependencies]\ngrader = { package = \"verify-grader\", path = \"tests/grader\" }\n"
        );
        let lock = "[[package]]\nname = \"grader\"\ndependencies = [\n \"rootfs\",\n]\n";
        let renamed =
            String::from_utf8(rename(Path::new("Cargo.lock"), lock.into(), &steps())).unwrap();
        assert_eq!(
            renamed,
            "[[package]]\nname = \"verify-grader\"\ndependencies = [\n \"verify-rootfs\",\n]\n"
        );
        // Sources are copied as they are.
        let code = b"// solution-01\n".to_vec();
        assert_eq!(
            rename(
                Path::new("solutions/01-fork/src/a.rs"),
                code.clone(),
                &steps()
            ),
            code
        );
    }

    /// The whole proof on the fixture workspace: real builds in the copy.
    #[test]
    fn knock_outs_on_a_fixture_workspace() {
        let fx = crate::testing::Fixture::new();
        // A region no check looks at: step 02 gains a part nobody grades.
        let lib = fx.read("solutions/02-pair/src/lib.rs");
        fx.write(
            "solutions/02-pair/src/lib.rs",
            &format!("{lib}\npub fn unused() -> u8 {{\n    // TODO(lesson-02): return seven\n    // BEGIN SOLUTION\n    7\n    // END SOLUTION\n}}\n"),
        );
        let copy = Copy::sync(fx.root()).unwrap();
        assert!(copy.dir.join("solutions/02-pair/Cargo.toml").is_file());
        let manifest =
            std::fs::read_to_string(copy.dir.join("solutions/01-add/Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"verify-01\""), "{manifest}");
        let (problems, _) = check_step(fx.root(), &copy, &fx.step("01")).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let (problems, _) = check_step(fx.root(), &copy, &fx.step("02")).unwrap();
        assert_eq!(
            problems,
            ["step 02: the region at solutions/02-pair/src/lib.rs:20 (TODO: return seven) is not graded: every check passes without it"]
        );
        // The copy is the reference again afterwards.
        assert_eq!(
            std::fs::read_to_string(copy.dir.join("solutions/02-pair/src/lib.rs")).unwrap(),
            fx.read("solutions/02-pair/src/lib.rs")
        );
    }

    #[test]
    fn a_region_is_graded_when_a_check_fails() {
        use grader::report::{Record, Report};
        let record = |check: &str, passed| Record {
            step: "01-fork".into(),
            check: check.into(),
            points: 1,
            passed,
            message: String::new(),
            book: String::new(),
            hint: String::new(),
            more: String::new(),
            shape: String::new(),
        };
        let report = Report::new(
            "01-fork",
            "verify-01",
            2,
            vec![record("a", true), record("b", false)],
        );
        assert!(matches!(verdict(&Graded::Report(report)), Verdict::Graded(c) if c == "b"));
        let report = Report::new(
            "01-fork",
            "verify-01",
            2,
            vec![record("a", true), record("b", true)],
        );
        assert!(matches!(
            verdict(&Graded::Report(report)),
            Verdict::NotGraded
        ));
        assert!(matches!(
            verdict(&Graded::DoesNotCompile("e".into())),
            Verdict::Unknown(_)
        ));
        let step = &steps()[0];
        let region = &lessons::regions_of("fn a() {\n    // TODO(lesson-01): g\n    // BEGIN SOLUTION\n    x\n    // END SOLUTION\n}\n", "01-fork", "01", Path::new("src/a.rs"))[0];
        assert_eq!(
            not_graded(step, region),
            "step 01: the region at solutions/01-fork/src/a.rs:4 (TODO: g) is not graded: every check passes without it"
        );
    }
}
