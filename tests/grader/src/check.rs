//! A check, and how it fails: in plain words, expected against seen.

use std::fmt::{self, Debug, Display};

/// One graded check of a step.
pub struct Check {
    /// Short, unique, `snake_case`: `cargo test -p lesson-01 -- NAME` runs it alone.
    pub name: &'static str,
    pub points: u32,
    /// The heading id in the step's book chapter that teaches what this checks.
    pub section: &'static str,
    /// Hints come in three levels, each asked for in turn (`cargo xtask
    /// hint STEP`, then `--more`, then `--shape`), never the code itself.
    ///
    /// Level 1, the concept: what must be true and why, in a sentence or
    /// two; the book section says the rest. Shown with every failure.
    pub hint: &'static str,
    /// Level 2: the system calls, kernel files, types and crate items the
    /// learner's code needs (names, not argument values). Empty: none yet.
    pub more: &'static str,
    /// Level 3: the shape of a solution, as numbered steps or pseudo-code
    /// (never Rust that compiles). Empty: none yet.
    pub shape: &'static str,
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
    /// `nft` (the package nftables) on `PATH`, which the runtime inherits:
    /// published ports, egress NAT and isolation between networks are its
    /// rules. Without it the runtime still runs containers on bridges.
    Nftables,
    /// `etcd` (the package etcd-server) and the tools a lab of hosts needs
    /// (see [`crate::cluster::Cluster::unavailable`]): step 07's overlay
    /// networks keep their state in an etcd cluster the check starts.
    Etcd,
    /// `docker-registry` (the distribution registry) and the tools a lab
    /// needs (see [`crate::registry::Registry::unavailable`]): step 08's
    /// push and pull checks run a real registry in a lab.
    Registry,
    /// podman with a runtime (crun or runc) and conmon (see
    /// [`crate::tools::Podman::unavailable`]): step 08 checks that podman
    /// pulls, loads and runs what minibox pushes and saves.
    Podman,
    /// skopeo (see [`crate::tools::Skopeo::unavailable`]): copies and
    /// inspects images in a registry, an OCI layout, a docker-archive.
    Skopeo,
    /// umoci (see [`crate::tools::Umoci::unavailable`]): unpacks an OCI
    /// layout minibox saved.
    Umoci,
    /// Every one of these (a check with a registry and podman, say).
    All(&'static [Requires]),
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
    /// The last lines of what the last command the check ran (before this
    /// failure) wrote to stderr, if it wrote anything: a check that fails on
    /// a command's output or exit code then shows why the command said it
    /// failed. Shown unless `seen` already holds it.
    pub stderr: Option<String>,
}

impl Fail {
    pub fn new(what: impl Into<String>) -> Self {
        Fail {
            what: what.into(),
            stderr: crate::process::last_stderr(),
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
        if let Some(stderr) = &self.stderr {
            let shown = [Some(&self.what), self.expected.as_ref(), self.seen.as_ref()]
                .into_iter()
                .flatten()
                .any(|text| text.contains(stderr.as_str()));
            if !shown {
                write!(f, "\n    stderr: {}", indent(stderr))?;
            }
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
    fn the_last_commands_stderr_is_shown_once() {
        let mut fail = Fail::new("exec: the hostname")
            .expected("inside")
            .seen("(nothing)");
        fail.stderr = Some("readlink: usage\nreadlink -f FILE".to_string());
        assert_eq!(
            fail.to_string(),
            "exec: the hostname\n  expected: inside\n      seen: (nothing)\n    stderr: readlink: usage\n            readlink -f FILE"
        );
        // `seen` already quotes it (an exit code and its stderr): not twice.
        fail.seen = Some("exit code 1, stderr: readlink: usage\nreadlink -f FILE".to_string());
        assert!(!fail.to_string().contains("    stderr:"), "{fail}");
    }

    #[test]
    fn ensure_passes_and_fails() {
        assert!(ensure(true, || Fail::new("never")).is_ok());
        assert_eq!(ensure(false, || Fail::new("no")).unwrap_err().what, "no");
    }
}
