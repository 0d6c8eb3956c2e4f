//! A check, and how it fails: in plain words, expected against seen.

use std::fmt::{self, Debug, Display};

/// One graded check of a step.
pub struct Check {
    /// Short, unique, `snake_case`: `cargo test -p lesson-01 -- NAME` runs it alone.
    pub name: &'static str,
    pub points: u32,
    /// The heading id in the step's book chapter that teaches what this checks.
    pub section: &'static str,
    /// What to look at when it fails; one or two sentences.
    pub hint: &'static str,
    /// What this check needs of the machine beyond what its step needs.
    pub requires: Requires,
    pub run: fn(&crate::Ctx) -> Outcome,
}

/// A machine fact one check needs beyond its step's [`crate::Needs`]. Where
/// it is missing the check is not run (libtest's "ignored"), and the score
/// card says why and how to allow it, instead of failing the learner for the
/// machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requires {
    Nothing,
    /// An unprivileged process may create a user namespace and map itself
    /// (Ubuntu 24.04's AppArmor default and old Debian's sysctl forbid it).
    UnprivilegedUserns,
}

/// What a check returns.
pub type Outcome = Result<(), Fail>;

/// Why a check failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fail {
    /// What went wrong, as a sentence.
    pub what: String,
    pub expected: Option<String>,
    pub seen: Option<String>,
}

impl Fail {
    pub fn new(what: impl Into<String>) -> Self {
        Fail {
            what: what.into(),
            ..Fail::default()
        }
    }

    pub fn expected(mut self, expected: impl Display) -> Self {
        self.expected = Some(expected.to_string());
        self
    }

    pub fn seen(mut self, seen: impl Display) -> Self {
        self.seen = Some(seen.to_string());
        self
    }
}

impl Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(expected) = &self.expected {
            write!(f, "\n  expected: {}", indent(expected))?;
        }
        if let Some(seen) = &self.seen {
            write!(f, "\n      seen: {}", indent(seen))?;
        }
        Ok(())
    }
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n            ")
}

/// Fail with `what` unless `expected == seen`.
pub fn expect_eq<T: PartialEq + Debug>(what: &str, expected: T, seen: T) -> Outcome {
    if expected == seen {
        Ok(())
    } else {
        Err(Fail::new(what)
            .expected(format!("{expected:?}"))
            .seen(format!("{seen:?}")))
    }
}

/// Fail with `fail()` unless `condition` holds.
pub fn ensure(condition: bool, fail: impl FnOnce() -> Fail) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_expected_then_seen() {
        let fail = expect_eq("the exit code should be the command's", 7, 101).unwrap_err();
        assert_eq!(
            fail.to_string(),
            "the exit code should be the command's\n  expected: 7\n      seen: 101"
        );
    }

    #[test]
    fn ensure_passes_and_fails() {
        assert!(ensure(true, || Fail::new("never")).is_ok());
        assert_eq!(ensure(false, || Fail::new("no")).unwrap_err().what, "no");
    }
}
