//! `cargo xtask hint STEP [CHECK] [--more | --shape]`: the hint for one
//! failing check at a time: the first, or the one named.
//!
//! Hints come in levels, so a learner takes only as much help as they need:
//! the concept and the book section first; `--more` names the system calls,
//! types and crate items; `--shape` gives the steps of a solution in words
//! or pseudo-code. No level shows the code: `cargo xtask solution` does,
//! once the step passes.

use crate::status::{self, Mode, State, Status};
use crate::steps;
use crate::style::Style;
use anyhow::bail;
use grader::report::Record;
use std::fmt::Write as _;
use std::path::Path;

/// How much help to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Concept,
    More,
    Shape,
}

pub fn run(
    root: &Path,
    step: &str,
    check: Option<&str>,
    level: Level,
    style: Style,
) -> anyhow::Result<()> {
    let step = steps::find(root, step).map_err(crate::usage)?;
    let status = status::of(root, step, Mode::RegradeStarters, &mut |step| {
        eprintln!("grading step {} first ...", step.id);
    })?;
    print!("{}", render(&status, check, level, style)?);
    Ok(())
}

/// The hint for `check`, or for the first failing check.
pub fn render(
    status: &Status,
    check: Option<&str>,
    level: Level,
    style: Style,
) -> anyhow::Result<String> {
    let step = &status.step;
    let mut out = String::new();
    let report = match &status.state {
        State::Graded(report) if report.error.is_none() => report,
        State::Graded(report) => bail!(
            "step {}'s checks can't run on this machine: {}",
            step.id,
            report.error.as_deref().unwrap_or_default()
        ),
        State::DoesNotCompile(error) => {
            let _ = writeln!(
                out,
                "step {} does not compile yet; the hints are for its checks. The compiler's first error:\n",
                step.id
            );
            out.push_str(error);
            out.push('\n');
            return Ok(out);
        }
        State::Crashed(tail) => bail!(
            "step {}: the checks ended without a score:\n{tail}",
            step.id
        ),
        State::Missing => bail!(
            "lessons/{} is gone: `cargo xtask reset {}` writes its starter again",
            step.id,
            step.number
        ),
        State::NotStarted | State::Changed(_) => {
            bail!(
                "step {} has not been graded: cargo test -p {}",
                step.id,
                step.lesson()
            )
        }
    };
    let failing: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    let record = match check {
        Some(name) => {
            // Like `cargo test`'s filter: a part of a name will do, if it
            // names one check.
            let exact = report.checks.iter().find(|c| c.check == name);
            let matching: Vec<_> = report
                .checks
                .iter()
                .filter(|c| c.check.contains(name))
                .collect();
            match (exact, matching.as_slice()) {
                (Some(record), _) | (None, &[record]) => record,
                (None, []) => {
                    let names: Vec<&str> = report.checks.iter().map(|c| c.check.as_str()).collect();
                    return Err(crate::usage(anyhow::anyhow!(
                        "step {} has no check matching {name:?}; its checks are: {}",
                        step.id,
                        names.join(", ")
                    )));
                }
                (None, several) => {
                    let names: Vec<&str> = several.iter().map(|c| c.check.as_str()).collect();
                    return Err(crate::usage(anyhow::anyhow!(
                        "{name:?} matches {} checks of step {}: {}; say which",
                        names.len(),
                        step.id,
                        names.join(", ")
                    )));
                }
            }
        }
        None => match failing.first() {
            Some(record) => record,
            None => {
                let _ = writeln!(
                    out,
                    "{} every check of step {} passes; nothing to hint.",
                    style.green("done:"),
                    step.id
                );
                return Ok(out);
            }
        },
    };
    let position = report
        .checks
        .iter()
        .position(|c| c.check == record.check)
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "step {}, check {} of {}: {} ({})",
        step.id,
        position + 1,
        report.checks.len(),
        style.bold(&record.check),
        crate::style::points(record.points)
    );
    if record.passed {
        let _ = writeln!(out, "  {} it passes.", style.green("ok:"));
        if !record.hint.is_empty() {
            let _ = writeln!(out, "  {} {}", style.bold("hint:"), record.hint);
        }
        let _ = writeln!(out, "  read: {}", record.book);
    } else {
        status::advise(&mut out, record, style);
    }
    levels(&mut out, record, level, step.number.as_str(), style);
    let others: Vec<&str> = failing
        .iter()
        .map(|c| c.check.as_str())
        .filter(|name| *name != record.check)
        .collect();
    if let Some(first) = others.first() {
        let mut names = others
            .iter()
            .take(4)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if others.len() > 4 {
            names.push_str(&format!(" and {} more", others.len() - 4));
        }
        let _ = writeln!(
            out,
            "\n{} other failing check(s): {names}\n  the next hint: cargo xtask hint {} {first}",
            others.len(),
            step.number
        );
    }
    Ok(out)
}

/// The second and third levels, as asked for; or how to ask for them.
fn levels(out: &mut String, record: &Record, level: Level, number: &str, style: Style) {
    let asked = [
        (Level::More, "--more", "the calls and types", &record.more),
        (Level::Shape, "--shape", "the steps", &record.shape),
    ];
    for (wanted, flag, what, text) in asked {
        if level >= wanted {
            if text.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} none written for this check yet ({what}); the book section has them",
                    style.bold(&format!("{flag}:"))
                );
            } else {
                // Lines after the first line up under it.
                let indent = " ".repeat(flag.len() + 4);
                let text = text.replace('\n', &format!("\n{indent}"));
                let _ = writeln!(out, "  {} {text}", style.bold(&format!("{flag}:")));
            }
        } else if !text.is_empty() {
            let _ = writeln!(
                out,
                "  {} cargo xtask hint {number} {} {flag}",
                style.dim(&format!("stuck? {what}:")),
                record.check
            );
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(more: &str, shape: &str) -> Record {
        Record {
            step: "02-namespaces".into(),
            check: "mounts_stay_inside".into(),
            points: 2,
            passed: false,
            message: "a mount leaked\nhint: make / private".into(),
            book: "book/src/02-namespaces.md#mount-propagation".into(),
            hint: "make / private".into(),
            more: more.into(),
            shape: shape.into(),
        }
    }

    fn shown(record: &Record, level: Level) -> String {
        let mut out = String::new();
        levels(&mut out, record, level, "02", Style::plain());
        out
    }

    #[test]
    fn the_concept_offers_the_next_level_only() {
        let out = shown(
            &record("mount(2), MS_REC | MS_PRIVATE", "1. remount /"),
            Level::Concept,
        );
        assert_eq!(
            out,
            "  stuck? the calls and types: cargo xtask hint 02 mounts_stay_inside --more\n"
        );
    }

    #[test]
    fn more_shows_the_calls_and_offers_the_shape() {
        let out = shown(
            &record("mount(2), MS_REC | MS_PRIVATE", "1. remount /"),
            Level::More,
        );
        assert!(
            out.starts_with("  --more: mount(2), MS_REC | MS_PRIVATE\n"),
            "{out}"
        );
        assert!(
            out.ends_with("stuck? the steps: cargo xtask hint 02 mounts_stay_inside --shape\n"),
            "{out}"
        );
        assert!(!out.contains("1. remount /"), "{out}");
    }

    #[test]
    fn shape_shows_every_level() {
        let out = shown(
            &record("mount(2)", "1. remount /\n2. mount proc"),
            Level::Shape,
        );
        assert_eq!(
            out,
            "  --more: mount(2)\n  --shape: 1. remount /\n           2. mount proc\n"
        );
    }

    #[test]
    fn a_level_not_written_says_so() {
        let out = shown(&record("", ""), Level::Shape);
        assert!(
            out.contains("--more: none written for this check yet (the calls and types)"),
            "{out}"
        );
        assert!(out.contains("--shape: none written"), "{out}");
        // Nothing to offer at the first level when nothing is written.
        assert_eq!(shown(&record("", ""), Level::Concept), "");
    }
}
