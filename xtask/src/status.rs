//! Where a learner stands on each step, from the last graded runs.
//!
//! Grading is the slow part (a build and a run of every check), so a step is
//! graded again only when its files changed since its last complete graded
//! run. A learner's own `cargo test -p lesson-NN` counts: the grader keeps
//! every complete run in `target/grade/<package>.json`. A step whose files
//! are still the starter's is "not started" without running anything.

use crate::cargo::{self, Graded};
use crate::files::walk;
use crate::lessons;
use crate::steps::{self, Step};
use grader::report::{Record, Report};
use std::path::Path;
use std::time::SystemTime;

/// Grade the changed steps, or show only what is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Grade steps changed since their last run; a starter is "not started"
    /// without grading it.
    Regrade,
    /// Like `Regrade`, and grade an untouched starter too: its first failing
    /// check names the first `todo!()` to write.
    RegradeStarters,
    /// Grade nothing.
    Cached,
}

/// One step, as far as the learner got.
#[derive(Debug)]
pub struct Status {
    pub step: Step,
    pub state: State,
    /// Points of the step, when known (from any graded run of it, lesson or
    /// reference, or from the reference's list of checks).
    pub total: Option<u32>,
    /// When the learner last changed the step's files.
    pub changed: Option<SystemTime>,
    /// The learner changed the lesson: it is no longer its starter.
    pub started: bool,
    /// The `todo!()`s left in the lesson.
    pub todos: Vec<lessons::Todo>,
}

#[derive(Debug)]
pub enum State {
    /// The lesson is still its starter, and was not graded as such.
    NotStarted,
    /// `lessons/NN-name` is gone (or is not a directory).
    Missing,
    /// Graded (now, or before and nothing changed since).
    Graded(Report),
    /// Changed since its last graded run, and not graded again (`Cached`).
    Changed(Option<Report>),
    DoesNotCompile(String),
    /// The checks ended without a report: the end of their output.
    Crashed(String),
}

impl Status {
    /// (score, total), where known.
    pub fn points(&self) -> (u32, Option<u32>) {
        match &self.state {
            State::Graded(r) | State::Changed(Some(r)) => (r.score, Some(r.total)),
            _ => (0, self.total),
        }
    }

    pub fn done(&self) -> bool {
        matches!(&self.state, State::Graded(r) if r.full_marks())
    }

    /// The first check that failed, in the order the step declares them.
    pub fn first_failing(&self) -> Option<&Record> {
        match &self.state {
            State::Graded(r) => r.checks.iter().find(|c| !c.passed),
            _ => None,
        }
    }
}

/// What a failed check said, without its hint and book lines (they are
/// shown on their own).
pub fn what_failed(record: &Record) -> String {
    let message = record.message.as_str();
    let end = message.rfind("\nhint: ").unwrap_or(message.len());
    message[..end].trim_end().to_string()
}

/// A failed check, told the way that helps: when the program stopped at a
/// `todo!()`, that `todo!()` is the thing to do, and the check's own hint
/// is for later.
pub fn advise(out: &mut String, record: &Record, style: crate::style::Style) {
    use std::fmt::Write as _;
    let failed = what_failed(record);
    if failed.starts_with("not written yet") {
        for line in failed.lines().take(2) {
            let _ = writeln!(out, "  {line}");
        }
        let chapter = record.book.split('#').next().unwrap_or_default();
        let _ = writeln!(out, "  {} {chapter}#the-exercise", style.bold("read:"));
        if !record.hint.is_empty() {
            let _ = writeln!(
                out,
                "  {} {}",
                style.dim("after that, this check's hint:"),
                style.dim(&record.hint)
            );
        }
    } else {
        for line in failed.lines() {
            let _ = writeln!(out, "  {line}");
        }
        if !record.hint.is_empty() {
            let _ = writeln!(out, "  {} {}", style.bold("hint:"), record.hint);
        }
        let _ = writeln!(out, "  {} {}", style.bold("read:"), record.book);
    }
}

/// Every step's status, grading the ones that changed (in `Regrade` mode).
/// `before_grading` is told which step is about to be graded (it takes a
/// while; the learner should know why they wait).
pub fn all(
    root: &Path,
    mode: Mode,
    before_grading: &mut dyn FnMut(&Step),
) -> anyhow::Result<Vec<Status>> {
    steps::all(root)?
        .into_iter()
        .map(|step| of(root, step, mode, before_grading))
        .collect()
}

/// One step's status.
pub fn of(
    root: &Path,
    step: Step,
    mode: Mode,
    before_grading: &mut dyn FnMut(&Step),
) -> anyhow::Result<Status> {
    let lesson = step.lesson_dir(root);
    if !std::fs::symlink_metadata(&lesson).is_ok_and(|m| m.is_dir()) {
        return Ok(Status {
            total: last_run(root, &step.solution()).map(|(r, _)| r.total),
            step,
            state: State::Missing,
            changed: None,
            started: true,
            todos: Vec::new(),
        });
    }
    let last = last_run(root, &step.lesson());
    let changed = newest_change(root, &step);
    // Fresh: the kept run graded exactly the files there are now.
    let now = cargo::sources(root, &step.lesson());
    let fresh = last
        .as_ref()
        .is_some_and(|(r, _)| r.sources.is_some() && r.sources == now);
    let started = !lessons::is_starter(root, &step)?;
    let total = last
        .as_ref()
        .map(|(r, _)| r.total)
        .or_else(|| last_run(root, &step.solution()).map(|(r, _)| r.total));
    let broken = broken(root, &step.lesson())
        .filter(|(graded, _)| now.as_ref() == Some(graded))
        .map(|(_, error)| error);
    let state = match last {
        Some((report, _)) if fresh => State::Graded(report),
        _ if broken.is_some() => State::DoesNotCompile(broken.unwrap_or_default()),
        last => {
            if mode != Mode::RegradeStarters && !started {
                State::NotStarted
            } else if mode == Mode::Cached {
                State::Changed(last.map(|(r, _)| r))
            } else {
                before_grading(&step);
                match cargo::grade(root, &step.lesson(), false)? {
                    Graded::Report(report) => State::Graded(report),
                    Graded::DoesNotCompile(error) => {
                        // Kept like a graded run: no build again until a
                        // change. First line: what failed to compile.
                        let kept = format!("{}\n{error}", now.as_deref().unwrap_or_default());
                        let _ = std::fs::write(broken_path(root, &step.lesson()), kept);
                        State::DoesNotCompile(error)
                    }
                    Graded::Crashed(tail) => State::Crashed(tail),
                }
            }
        }
    };
    let total = match (&state, total) {
        (State::Graded(report), _) => Some(report.total),
        (_, Some(total)) => Some(total),
        // The checks' points, from the reference's list, without running them.
        (_, None) if mode != Mode::Cached => {
            cargo::catalog(root, &step.solution()).ok().map(|checks| {
                checks
                    .iter()
                    .filter_map(|c| c["points"].as_u64())
                    .sum::<u64>() as u32
            })
        }
        (_, None) => None,
    };
    Ok(Status {
        todos: lessons::todos(root, &step)?,
        step,
        state,
        total,
        changed,
        started,
    })
}

/// The last complete graded run of `package`, and when it was written; a
/// report that doesn't add up (edited, or from another version) is none.
pub fn last_run(root: &Path, package: &str) -> Option<(Report, SystemTime)> {
    let path = cargo::last_run_path(root, package);
    let when = std::fs::metadata(&path).ok()?.modified().ok()?;
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    let earned: u64 = report
        .checks
        .iter()
        .filter(|c| c.passed)
        .map(|c| u64::from(c.points))
        .sum();
    let listed: u64 = report
        .checks
        .iter()
        .map(|c| u64::from(c.points))
        .sum::<u64>()
        + report
            .skipped
            .iter()
            .map(|c| u64::from(c.points))
            .sum::<u64>();
    let consistent = u64::from(report.score) == earned
        && (report.error.is_some() || listed == u64::from(report.total));
    consistent.then_some((report, when))
}

fn broken_path(root: &Path, package: &str) -> std::path::PathBuf {
    cargo::last_run_path(root, package).with_extension("compile-error.txt")
}

/// The fingerprint of what failed to compile when `package` last did, and
/// the compiler's first error.
fn broken(root: &Path, package: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(broken_path(root, package)).ok()?;
    let (sources, error) = text.split_once('\n')?;
    Some((sources.to_string(), error.to_string()))
}

/// When the learner last changed the step: its lesson's files, or its
/// checks.
fn newest_change(root: &Path, step: &Step) -> Option<SystemTime> {
    let mut files = walk(&step.lesson_dir(root)).unwrap_or_default();
    files.push(steps::checks_file(root, step));
    files
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(f).ok()?.modified().ok())
        .max()
}
