//! `cargo xtask solution STEP [--force]`: the reference code of each part a
//! step leaves to the learner, once the learner's own code passes.
//!
//! It is not an exam: `--force` shows it anyway. But reading the answer
//! first turns the exercise into copying, and the checks into a formality.

use crate::cargo::{self, Graded};
use crate::lessons;
use crate::status::{self, Mode, State};
use crate::steps;
use crate::style::Style;
use std::fmt::Write as _;
use std::path::Path;

pub fn run(root: &Path, step: &str, force: bool, style: Style) -> anyhow::Result<()> {
    let step = steps::find(root, step).map_err(crate::usage)?;
    if !force {
        let mut status = status::of(root, step.clone(), Mode::Regrade, &mut |step| {
            eprintln!("grading step {} first ...", step.id);
        })?;
        // A failing grade may be one unlucky run (a loaded machine): grade
        // once more before refusing.
        if matches!(&status.state, State::Graded(report) if !report.full_marks()) {
            eprintln!(
                "step {} failed its last grading; grading it once more ...",
                step.id
            );
            if let Graded::Report(report) = cargo::grade(root, &step.lesson(), false)? {
                status.state = State::Graded(report);
            }
        }
        if !status.done() {
            anyhow::bail!("{}", refusal(&step, &status.state));
        }
    }
    print!(
        "{}",
        render(&step.id, &lessons::regions(root, &step)?, style)
    );
    Ok(())
}

/// Why the reference stays closed: the score, and the failing check.
pub fn refusal(step: &steps::Step, state: &State) -> String {
    let score = match state {
        State::Graded(report) => {
            let failing: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.check.as_str())
                .collect();
            let named = match failing.as_slice() {
                [] => String::new(),
                [one] => format!("; failing: {one}"),
                [first, rest @ ..] => format!("; failing: {first} and {} more", rest.len()),
            };
            format!(" ({}/{} points{named})", report.score, report.total)
        }
        _ => String::new(),
    };
    format!(
        "step {} does not pass yet{score}, so its solution stays closed (stuck? `cargo xtask hint {}`; to see it anyway: `cargo xtask solution {} --force`)",
        step.id, step.number, step.number
    )
}

pub fn render(id: &str, regions: &[lessons::Region], style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "step {id}: the reference for each todo!() ({} parts)",
        regions.len()
    );
    for region in regions {
        let _ = writeln!(out, "\n{} {}", style.bold("//"), style.bold(&region.goal));
        let _ = writeln!(out, "{}", style.dim(&format!("// {}", region.place)));
        out.push_str(&dedent(&region.code));
    }
    out
}

/// The code without the indentation all its lines share.
fn dedent(code: &str) -> String {
    let indent = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    code.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .fold(String::new(), |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        })
}
