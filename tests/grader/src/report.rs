//! The results of a grading run: a score card for people, JSON and JUnit for
//! classroom tools.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `01-fork`.
    pub step: String,
    pub check: String,
    /// Points this check is worth.
    pub points: u32,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub message: String,
    /// Where the book teaches it: `book/src/01-fork.md#exit-statuses`.
    pub book: String,
    /// The check's hint: what to look at when it fails.
    #[serde(default)]
    pub hint: String,
    /// The second level: syscalls, types and crate items (`hint --more`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub more: String,
    /// The third level: the shape of a solution (`hint --shape`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub shape: String,
}

/// The results of one step's grading run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub step: String,
    /// `lesson-01` or `solution-01`.
    pub package: String,
    /// Points earned.
    pub score: u32,
    /// Points of every check of the step, run or not.
    pub total: u32,
    /// Set when the checks could not run on this machine at all.
    pub error: Option<String>,
    /// One record per check that ran.
    pub checks: Vec<Record>,
    /// Checks this machine can't run (a missing [`crate::Requires`]).
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// The [`crate::sources::fingerprint`] of the files graded, in the
    /// last-run copy the tools keep (`target/grade/`); not in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<String>,
}

/// A check not run because the machine lacks something it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub check: String,
    pub points: u32,
    /// What the machine lacks, and how to allow it.
    pub reason: String,
}

impl Report {
    pub fn new(step: &str, package: &str, total: u32, checks: Vec<Record>) -> Self {
        let score = checks.iter().filter(|r| r.passed).map(|r| r.points).sum();
        Report {
            step: step.to_string(),
            package: package.to_string(),
            score,
            total,
            error: None,
            checks,
            skipped: Vec::new(),
            sources: None,
        }
    }

    /// Every check ran and passed.
    pub fn full_marks(&self) -> bool {
        self.error.is_none() && self.skipped.is_empty() && self.score == self.total
    }

    /// For people: one line per check, the total, and what to do next.
    pub fn score_card(&self, not_run: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{}: {}/{} points",
            self.package, self.score, self.total
        );
        for record in &self.checks {
            let mark = if record.passed { "ok  " } else { "FAIL" };
            let earned = if record.passed { record.points } else { 0 };
            let _ = writeln!(out, "  {mark} {earned}/{} {}", record.points, record.check);
        }
        for skipped in &self.skipped {
            let _ = writeln!(
                out,
                "  skip 0/{} {}: not run on this machine: {}",
                skipped.points, skipped.check, skipped.reason
            );
        }
        if not_run > 0 {
            let _ = writeln!(out, "  ({not_run} check(s) not run: filtered out)");
        }
        if let Some(next) = self.checks.iter().find(|r| !r.passed) {
            let mut lines = next.message.lines();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(out, "next: {} — {first}", next.check);
            if first.starts_with("not written yet") {
                // The unwritten part, not the check, is what to work on: its
                // place in the code, and the chapter's list of the parts.
                let chapter = next.book.split('#').next().unwrap_or_default();
                if let Some(place) = lines.next().and_then(|l| {
                    l.trim()
                        .strip_prefix("(the program stopped at the todo!() in ")
                }) {
                    let _ = writeln!(
                        out,
                        "      write the todo!() at {}",
                        place.trim_end_matches(')')
                    );
                }
                let _ = writeln!(out, "      read {chapter}#the-exercise");
            } else {
                let _ = writeln!(out, "      read {}", next.book);
            }
        } else if !self.checks.is_empty() && not_run == 0 && !self.skipped.is_empty() {
            // Not done: part of the step was never tried here.
            let points: u32 = self.skipped.iter().map(|s| s.points).sum();
            let _ = writeln!(
                out,
                "every check that ran passes; {points} point(s) of step {} were not run on this machine (see the skip lines): the step is finished once they run and pass",
                self.step
            );
        } else if !self.checks.is_empty() && not_run == 0 {
            let _ = writeln!(out, "all checks pass: step {} is done", self.step);
        }
        out
    }
}

/// Reports as JUnit XML (one `<testsuite>` per step), for CI systems and
/// classroom autograders.
pub fn junit(reports: &[Report]) -> String {
    let tests: usize = reports.iter().map(|r| r.checks.len()).sum();
    let failures: usize = reports
        .iter()
        .map(|r| r.checks.iter().filter(|c| !c.passed).count())
        .sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"minibox\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for report in reports {
        let failed = report.checks.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\">",
            xml(&report.package),
            report.checks.len()
        );
        if let Some(error) = &report.error {
            let _ = writeln!(out, "    <system-err>{}</system-err>", xml(error));
        }
        for check in &report.checks {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&report.package),
                xml(&check.check)
            );
            if check.passed {
                out.push_str("/>\n");
            } else {
                let first = check.message.lines().next().unwrap_or_default();
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(first),
                    xml(&check.message)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .fold(String::new(), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_with_skipped_checks_is_not_called_done() {
        let mut report = sample();
        report.checks.retain(|r| r.passed);
        assert!(report.score_card(0).contains("is done"));
        report.skipped.push(Skipped {
            check: "needs_etcd".into(),
            points: 3,
            reason: "`etcd` is not installed".into(),
        });
        let card = report.score_card(0);
        assert!(!card.contains("is done"), "{card}");
        assert!(
            card.contains("3 point(s) of step 01-fork were not run"),
            "{card}"
        );
    }

    fn sample() -> Report {
        let record = |check: &str, points, passed, message: &str| Record {
            step: "01-fork".into(),
            check: check.into(),
            points,
            passed,
            message: message.into(),
            book: "book/src/01-fork.md#exit-statuses".into(),
            hint: "look at WaitStatus::Signaled".into(),
            more: String::new(),
            shape: String::new(),
        };
        Report::new(
            "01-fork",
            "lesson-01",
            5,
            vec![
                record("exit_code_propagates", 2, true, ""),
                record(
                    "signal_death_is_128_plus_n",
                    3,
                    false,
                    "a command killed by <SIGKILL> & \"co\"\n  expected: 137",
                ),
            ],
        )
    }

    #[test]
    fn score_counts_only_passed_points() {
        let report = sample();
        assert_eq!(report.score, 2);
        assert!(!report.full_marks());
    }

    #[test]
    fn score_card() {
        insta::assert_snapshot!(sample().score_card(0));
    }

    #[test]
    fn an_unwritten_part_is_the_next_thing_to_do() {
        let mut report = sample();
        report.checks[1].message = "not written yet: lesson-01: fork\n  (the program stopped at the todo!() in lessons/01-fork/src/spawn.rs:120:5)\nthe runtime should ...".into();
        let card = report.score_card(0);
        assert!(
            card.contains("next: signal_death_is_128_plus_n — not written yet: lesson-01: fork\n"),
            "{card}"
        );
        assert!(
            card.contains("      write the todo!() at lessons/01-fork/src/spawn.rs:120:5\n"),
            "{card}"
        );
        assert!(
            card.contains("      read book/src/01-fork.md#the-exercise\n"),
            "{card}"
        );
    }

    #[test]
    fn json_report() {
        insta::assert_json_snapshot!(sample());
    }

    #[test]
    fn junit_report() {
        insta::assert_snapshot!(junit(&[sample()]));
    }
}
