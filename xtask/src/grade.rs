//! `verify` (for the workshop's maintainers and CI) and `grade` (for learners
//! and teachers): both run the steps' graded checks and read their reports.

use crate::cargo::{self, Graded};
use crate::steps;
use anyhow::{bail, Context};
use grader::report::{junit, Report};
use std::path::{Path, PathBuf};

/// `cargo xtask verify [STEP]`: every solution full marks; every starter
/// zero, with the list of any check that passes on a starter (a check that
/// cannot fail); every learner region graded (see [`crate::knockout`]);
/// the layout rule of a step with `src/given/`. `only`: that step alone.
pub fn verify(root: &Path, only: Option<&steps::Step>) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut copy = None;
    let mut timings = Vec::new();
    for step in steps::all(root)? {
        if only.is_some_and(|o| *o != step) {
            continue;
        }
        problems.extend(crate::lessons::layout_problems(root, &step)?);
        let solution = cargo::report(root, &step.solution())?;
        let lesson = cargo::report(root, &step.lesson())?;
        let todo_stops = lesson
            .checks
            .iter()
            .filter(|c| c.message.starts_with("not written yet"))
            .count();
        println!("step {}", step.id);
        println!(
            "  {:<12} {:>3}/{} points",
            solution.package, solution.score, solution.total
        );
        println!(
            "  {:<12} {:>3}/{} points ({} of {} checks stop at a todo!())",
            lesson.package,
            lesson.score,
            lesson.total,
            todo_stops,
            lesson.checks.len()
        );
        if let Some(error) = solution.error.as_ref().or(lesson.error.as_ref()) {
            problems.push(format!("{}: the checks could not run: {error}", step.id));
            continue;
        }
        for report in [&solution, &lesson] {
            for skipped in &report.skipped {
                problems.push(format!(
                    "{}: {} was not run on this machine ({}); verify needs a machine that runs every check",
                    report.package, skipped.check, skipped.reason
                ));
            }
        }
        if solution.checks.is_empty() {
            problems.push(format!("{}: no graded checks", step.id));
        }
        for check in solution.checks.iter().filter(|c| !c.passed) {
            let first = check.message.lines().next().unwrap_or_default();
            problems.push(format!(
                "{}: fails on the reference: {} ({first})",
                solution.package, check.check
            ));
        }
        for check in lesson.checks.iter().filter(|c| c.passed) {
            problems.push(format!(
                "{}: passes on the starter, so it can't tell written from unwritten: {}",
                lesson.package, check.check
            ));
        }
        if solution.checks.len() != lesson.checks.len() || solution.total != lesson.total {
            problems.push(format!(
                "{}: the starter and the reference ran different checks",
                step.id
            ));
        }
        // Every region graded: only worth asking of a reference that passes.
        let regions = crate::lessons::regions(root, &step)?;
        let lines: usize = regions.iter().map(|r| r.code_lines()).sum();
        println!(
            "  {} learner region(s), {lines} line(s) of code the learner writes",
            regions.len()
        );
        if !solution.full_marks() {
            continue;
        }
        if copy.is_none() {
            copy = Some(crate::knockout::Copy::sync(root)?);
        }
        let copy = copy.as_ref().expect("synced above");
        println!("  each region knocked out alone (the first failing check is enough):");
        let (found, took) = crate::knockout::check_step(root, copy, &step)?;
        println!(
            "  {} region(s) knocked out in {:.0} s",
            regions.len(),
            took.as_secs_f64()
        );
        timings.push(format!("{} {:.0} s", step.number, took.as_secs_f64()));
        problems.extend(found);
    }
    if !timings.is_empty() {
        println!("knock-outs per step: {}", timings.join(", "));
    }
    if problems.is_empty() {
        println!("verify: every solution has full marks, every starter zero, every learner region graded");
        Ok(())
    } else {
        bail!(
            "verify found {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
    }
}

#[derive(Debug, Default)]
pub struct Options {
    /// One step only; without reports, its score card as `cargo test -p
    /// lesson-NN` prints it.
    pub step: Option<crate::steps::Step>,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub classroom: Option<PathBuf>,
}

/// The version of the `grade --json` format (`classroom/grade.schema.json`).
pub const FORMAT_VERSION: u32 = 1;

/// `cargo xtask grade`: the learner's score on every step. Exits 0 whenever
/// grading ran, whatever the score; the score is in the output and reports.
pub fn grade(root: &Path, options: &Options) -> anyhow::Result<()> {
    // A report that can't be written is found out now, not after minutes
    // of grading.
    for path in [&options.json, &options.junit, &options.classroom]
        .into_iter()
        .flatten()
    {
        writable_file(path)?;
    }
    let reports_asked =
        options.json.is_some() || options.junit.is_some() || options.classroom.is_some();
    if let (Some(step), false) = (&options.step, reports_asked) {
        // The learner's own view: the checks' output and the score card.
        let status = crate::cargo::cargo()
            .current_dir(root)
            .args([
                "test",
                "--quiet",
                "--package",
                &step.lesson(),
                "--test",
                "grade",
            ])
            .status()
            .context("cannot run cargo")?;
        // Failing checks are a score, not an error of this command: the
        // card says which; the exit status says only whether all passed
        // (0), as `cargo test`'s does, for scripts and classroom runners.
        if !status.success() {
            std::process::exit(1);
        }
        return Ok(());
    }
    let mut reports: Vec<Report> = Vec::new();
    for step in steps::all(root)?
        .into_iter()
        .filter(|s| options.step.as_ref().is_none_or(|wanted| wanted == s))
    {
        let report = match cargo::grade(root, &step.lesson(), false)? {
            Graded::Report(report) => report,
            // Graded all the same: no points, and why, in the report.
            Graded::DoesNotCompile(error) => {
                failed(&step, root, format!("does not compile:\n{error}"))?
            }
            Graded::Crashed(tail) => failed(
                &step,
                root,
                format!("the checks ended without a score:\n{tail}"),
            )?,
        };
        print!("{}", line(&report));
        reports.push(report);
    }
    println!("{}", total_line(&reports));
    let mut failed = Vec::new();
    let writes = [
        (&options.json, json(&reports)? + "\n"),
        (&options.junit, junit(&reports)),
        (
            &options.classroom,
            serde_json::to_string_pretty(&classroom(&reports))? + "\n",
        ),
    ];
    // Each report on its own: one that fails doesn't stop the others.
    for (path, text) in writes {
        let Some(path) = path else { continue };
        match std::fs::write(path, text) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => failed.push(format!("{}: {e}", path.display())),
        }
    }
    if !failed.is_empty() {
        bail!("cannot write {}", failed.join("; "));
    }
    Ok(())
}

/// `path` can be created or overwritten: a file, in a directory that exists.
fn writable_file(path: &Path) -> anyhow::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// One step's line of the grade.
fn line(report: &Report) -> String {
    let note = match &report.error {
        Some(error) => {
            // `does not compile:` is followed by the compiler's first line.
            let mut lines = error.lines();
            let first = lines.next().unwrap_or_default();
            match lines.next() {
                Some(second) if first.ends_with(':') => format!("  ({first} {second})"),
                _ => format!("  ({first})"),
            }
        }
        None if !report.skipped.is_empty() => {
            format!(
                "  ({} check(s) not run on this machine)",
                report.skipped.len()
            )
        }
        None => String::new(),
    };
    format!(
        "  {:<10} {:<16} {:>3}/{}{note}\n",
        report.package, report.step, report.score, report.total
    )
}

fn total_line(reports: &[Report]) -> String {
    let score: u32 = reports.iter().map(|r| r.score).sum();
    let total: u32 = reports.iter().map(|r| r.total).sum();
    format!("total: {score}/{total} points")
}

/// What `grade` prints, step by step as it grades, then the total.
#[cfg(test)]
pub fn summary(reports: &[Report]) -> String {
    let mut out: String = reports.iter().map(line).collect();
    out.push_str(&total_line(reports));
    out.push('\n');
    out
}

/// A step whose checks could not run: zero points of its total, and why.
fn failed(step: &steps::Step, root: &Path, why: String) -> anyhow::Result<Report> {
    // The total: from a kept run of the step, else from the reference's
    // list of checks (which can't be listed when the whole workspace is
    // broken: then 0, and the reason says why).
    let kept = [step.lesson(), step.solution()]
        .iter()
        .find_map(|p| crate::status::last_run(root, p).map(|(r, _)| r.total));
    let total = kept
        .or_else(|| {
            let checks = cargo::catalog(root, &step.solution()).ok()?;
            Some(
                checks
                    .iter()
                    .filter_map(|c| c["points"].as_u64())
                    .sum::<u64>() as u32,
            )
        })
        .unwrap_or(0);
    let mut report = Report::new(&step.id, &step.lesson(), total, Vec::new());
    report.error = Some(why);
    Ok(report)
}

/// The `grade --json` document: `classroom/grade.schema.json` describes it.
pub fn json(reports: &[Report]) -> anyhow::Result<String> {
    let score: u32 = reports.iter().map(|r| r.score).sum();
    let total: u32 = reports.iter().map(|r| r.total).sum();
    // The fingerprint of the graded files is the tools' own business.
    let steps: Vec<Report> = reports
        .iter()
        .cloned()
        .map(|r| Report { sources: None, ..r })
        .collect();
    let json = serde_json::json!({
        "version": FORMAT_VERSION, "score": score, "total": total, "steps": steps,
    });
    Ok(serde_json::to_string_pretty(&json)?)
}

/// What GitHub Classroom's grading reporter reads (base64-encoded, from a
/// step output): one test per graded check, with its points as the score.
pub fn classroom(reports: &[Report]) -> serde_json::Value {
    let mut tests = Vec::new();
    for report in reports {
        if let Some(error) = &report.error {
            tests.push(serde_json::json!({
                "name": format!("{}: could not run", report.step),
                "status": "error",
                "score": 0,
                "message": error,
            }));
        }
        for check in &report.checks {
            tests.push(serde_json::json!({
                "name": format!("{} {}", report.step, check.check),
                "status": if check.passed { "pass" } else { "fail" },
                "score": if check.passed { check.points } else { 0 },
                "message": check.message.lines().next().unwrap_or_default(),
            }));
        }
        for skipped in &report.skipped {
            tests.push(serde_json::json!({
                "name": format!("{} {}", report.step, skipped.check),
                "status": "error",
                "score": 0,
                "message": format!("not run on this machine: {}", skipped.reason),
            }));
        }
    }
    let total: u32 = reports.iter().map(|r| r.total).sum();
    let status = if reports.iter().any(|r| r.error.is_some()) {
        "error"
    } else if reports.iter().all(Report::full_marks) {
        "pass"
    } else {
        "fail"
    };
    serde_json::json!({ "version": 1, "status": status, "max_score": total, "tests": tests })
}
