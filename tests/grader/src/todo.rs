//! Recognise a program that stopped at a learner's `todo!()`.
//!
//! Rust's default panic message is
//!
//! ```text
//! thread 'main' panicked at src/spawn.rs:12:5:
//! not yet implemented: lesson-01: fork; in the child ...
//! ```
//!
//! The grader turns that into "not written yet: lesson-01: fork; ..." so a
//! learner sees the next thing to write rather than a stack of failures.

/// A panic found in a program's stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// `src/spawn.rs:12:5`.
    pub location: String,
    pub message: String,
}

impl Panic {
    /// The `todo!()` message, if this panic is an unwritten part.
    pub fn todo(&self) -> Option<&str> {
        self.message
            .strip_prefix("not yet implemented")
            .map(|rest| rest.trim_start_matches(':').trim())
    }
}

/// The first panic in `stderr`, if any.
pub fn find_panic(stderr: &str) -> Option<Panic> {
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        // `thread 'main' panicked at ...`, or since Rust 1.88 with the
        // thread id: `thread 'main' (4242) panicked at ...`.
        const MARK: &str = " panicked at ";
        let Some(at) = line.find(MARK) else {
            continue;
        };
        if !line.starts_with("thread '") {
            continue;
        }
        let location = line[at + MARK.len()..].trim_end_matches(':');
        let message = lines.next().unwrap_or("").trim().to_string();
        return Some(Panic {
            location: location.to_string(),
            message,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_todo_panic() {
        let err = "thread 'main' panicked at src/spawn.rs:12:5:\n\
                   not yet implemented: lesson-01: fork, then exec\n\
                   note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let p = find_panic(err).unwrap();
        assert_eq!(p.location, "src/spawn.rs:12:5");
        assert_eq!(p.todo(), Some("lesson-01: fork, then exec"));
    }

    #[test]
    fn finds_a_panic_with_a_thread_id() {
        let err = "thread 'main' (7349) panicked at src/status.rs:30:5:\nnot yet implemented: lesson-01: map\n";
        let p = find_panic(err).unwrap();
        assert_eq!(p.location, "src/status.rs:30:5");
        assert_eq!(p.todo(), Some("lesson-01: map"));
    }

    #[test]
    fn an_ordinary_panic_is_not_a_todo() {
        let p =
            find_panic("thread 'main' panicked at src/a.rs:1:1:\nindex out of bounds\n").unwrap();
        assert_eq!(p.todo(), None);
        assert_eq!(p.message, "index out of bounds");
    }

    #[test]
    fn no_panic_in_plain_errors() {
        assert_eq!(find_panic("minibox: exec: \"x\": not found\n"), None);
    }
}
