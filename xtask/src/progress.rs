//! `cargo xtask progress`: one screen with every step, its score, and the
//! next thing to do.

use crate::status::{self, Mode, State, Status};
use crate::style::Style;
use std::fmt::Write as _;
use std::path::Path;

pub fn run(root: &Path, mode: Mode, style: Style) -> anyhow::Result<()> {
    let statuses = status::all(root, mode, &mut |step| {
        eprintln!(
            "grading step {} (changed since it was last graded) ...",
            step.id
        );
    })?;
    print!("{}", render(&statuses, style));
    Ok(())
}

/// The screen, for these statuses.
pub fn render(statuses: &[Status], style: Style) -> String {
    let mut out = String::new();
    let score: u32 = statuses.iter().map(|s| s.points().0).sum();
    let total: u32 = statuses.iter().filter_map(|s| s.points().1).sum();
    let unknown = statuses.iter().any(|s| s.points().1.is_none());
    let _ = writeln!(
        out,
        "{}{:>40}",
        style.bold("minibox: your progress"),
        format!("{score}/{total}{} points", if unknown { "+?" } else { "" })
    );
    out.push('\n');
    for status in statuses {
        let (score, total) = status.points();
        let points = match total {
            Some(total) => format!("{score:>3}/{total:<3}"),
            None => "  ?/?  ".to_string(),
        };
        let bar = style.bar(score, total.unwrap_or(0), 10);
        let _ = writeln!(
            out,
            "  {:<16} {bar} {points} {}",
            status.step.id,
            state_words(status, style)
        );
    }
    out.push('\n');
    out.push_str(&next(statuses, style));
    out
}

/// A few words on where the step stands.
fn state_words(status: &Status, style: Style) -> String {
    if !status.started && !matches!(status.state, State::Graded(ref r) if r.error.is_some()) {
        return format!("not started ({} todo!() to write)", status.todos.len());
    }
    match &status.state {
        State::NotStarted => "not started".to_string(),
        State::Missing => style.red("missing"),
        State::Graded(report) if report.error.is_some() => {
            style.yellow("can't run on this machine")
        }
        State::Graded(report) if report.full_marks() => style.green("done"),
        State::Graded(report) => {
            let failing = report.checks.iter().filter(|c| !c.passed).count();
            let mut words = format!("{failing} of {} checks to go", report.checks.len());
            if !report.skipped.is_empty() {
                words.push_str(&format!(", {} not run here", report.skipped.len()));
            }
            words
        }
        State::Changed(Some(report)) => format!(
            "changed since graded ({}/{} then)",
            report.score, report.total
        ),
        State::Changed(None) => "changed, not graded yet".to_string(),
        State::DoesNotCompile(_) => style.red("does not compile"),
        State::Crashed(_) => style.red("the checks did not finish"),
    }
}

/// The step to work on: of those begun and unfinished, the one changed
/// last (the one being edited); or else the first not started.
pub fn current(statuses: &[Status]) -> Option<&Status> {
    statuses
        .iter()
        .filter(|s| s.started && !s.done())
        .max_by_key(|s| s.changed)
        .or_else(|| statuses.iter().find(|s| !s.done()))
}

/// What to do next, in a few lines.
fn next(statuses: &[Status], style: Style) -> String {
    let mut out = String::new();
    let Some(status) = current(statuses) else {
        let _ = writeln!(
            out,
            "{} every step passes. The book's last chapters say what real runtimes add.",
            style.green("all done:")
        );
        return out;
    };
    let step = &status.step;
    let test = format!("cargo test -p {}", step.lesson());
    match &status.state {
        // Untouched: the chapter first. (Once its starter was graded, the
        // first failing check names the todo!() to write, below.)
        State::NotStarted => start(&mut out, status, style),
        State::Graded(_)
            if !status.started
                && status
                    .first_failing()
                    .is_none_or(|c| !c.message.starts_with("not written yet")) =>
        {
            start(&mut out, status, style)
        }
        State::Graded(report) if report.error.is_some() => {
            let why = report.error.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "{} step {}'s checks can't run on this machine:",
                style.bold("next:"),
                step.id
            );
            for line in why.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out, "  see: cargo xtask doctor");
        }
        State::Graded(_) => {
            let Some(check) = status.first_failing() else {
                // Everything that ran passed; some checks were not run here.
                let _ = writeln!(
                    out,
                    "{} step {}: every check that ran passes; the others need this machine to allow more (cargo xtask doctor)",
                    style.bold("next:"),
                    step.id
                );
                return out;
            };
            let _ = writeln!(
                out,
                "{} step {}, check {} ({})",
                style.bold("next:"),
                step.id,
                style.bold(&check.check),
                crate::style::points(check.points)
            );
            status::advise(&mut out, check, style);
            let _ = writeln!(
                out,
                "  then: {test}   (or `cargo xtask watch` to re-grade on every save)"
            );
        }
        State::Missing => {
            let _ = writeln!(
                out,
                "{} lessons/{} is gone: `cargo xtask reset {}` writes its starter again",
                style.bold("next:"),
                step.id,
                step.number
            );
        }
        State::Changed(_) => {
            let _ = writeln!(
                out,
                "{} step {} changed since it was last graded: {test}",
                style.bold("next:"),
                step.id
            );
        }
        State::DoesNotCompile(error) => {
            let _ = writeln!(
                out,
                "{} step {} does not compile. The compiler's first error:",
                style.bold("next:"),
                step.id
            );
            for line in error.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out, "  fix it, then: {test}");
        }
        State::Crashed(tail) => {
            let _ = writeln!(
                out,
                "{} step {}: the checks ended without a score. The end of their output:",
                style.bold("next:"),
                step.id
            );
            for line in tail.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out, "  run them yourself to see all of it: {test}");
        }
    }
    out
}

/// How to begin a step.
fn start(out: &mut String, status: &Status, style: Style) {
    let step = &status.step;
    let test = format!("cargo test -p {}", step.lesson());
    let chapter = format!("book/src/{}.md", step.id);

    let _ = writeln!(out, "{} start step {}", style.bold("next:"), step.id);
    let _ = writeln!(out, "  read: {chapter}");
    if !status.todos.is_empty() {
        let _ = writeln!(
            out,
            "  your code: {} todo!() in lessons/{}/src/, in the order {chapter}#the-exercise lists them",
            status.todos.len(),
            step.id,
        );
    }
    let _ = writeln!(
        out,
        "  then: {test}   (its first failing check names the todo!() to write first)"
    );
}
