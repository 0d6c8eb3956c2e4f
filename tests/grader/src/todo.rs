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

/// The first panic in `stderr`, if any: Rust's own report, or else one a
/// runtime passed on in its one error line.
pub fn find_panic(stderr: &str) -> Option<Panic> {
    find_rust_panic(stderr).or_else(|| find_reported_panic(stderr))
}

/// A panic a runtime reported in one line, `... panicked at FILE:LINE:COL:
/// MESSAGE`: a `run -d` whose monitor panicked (its stderr is the
/// container's log, so the runtime quotes it).
fn find_reported_panic(stderr: &str) -> Option<Panic> {
    const MARK: &str = "panicked at ";
    stderr.lines().find_map(|line| {
        let rest = &line[line.find(MARK)? + MARK.len()..];
        let (location, message) = rest.split_once(": ")?;
        let mut parts = location.rsplitn(3, ':');
        let numbers = [parts.next()?, parts.next()?];
        let file = parts.next()?;
        let is_place = !file.is_empty()
            && numbers
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        is_place.then(|| Panic {
            location: location.to_string(),
            message: message.trim().to_string(),
        })
    })
}

fn find_rust_panic(stderr: &str) -> Option<Panic> {
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

/// What a panic said (a `todo!()`: "not yet implemented: lesson-05: ...").
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".to_string())
}

/// A `todo!()` of the learner's, reached in the grader's own process, is
/// said once in the check's failure ("not written yet: ..."): no panic
/// message and backtrace on stderr for it. Any other panic is printed as
/// usual.
pub fn quiet_todo_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let usual = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_text(info.payload()).starts_with("not yet implemented") {
                usual(info);
            }
        }));
    });
}

/// Call the step's library in the grader's own process: a panic (a
/// `todo!()` left in it) fails the check, saying "not written yet" for a
/// `todo!()` and "it panicked" for anything else.
pub fn call<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, crate::Fail> {
    quiet_todo_panics();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic_text(panic.as_ref());
        let seen = match message.strip_prefix("not yet implemented: ") {
            Some(todo) => format!("not written yet: {todo}"),
            None => format!("it panicked: {message}"),
        };
        crate::Fail::new(format!("{what} should return")).seen(seen)
    })
}

/// [`call`] on a thread of its own, which first enters the network
/// namespace `netns` (a lab's `/proc/PID/ns/net`), if given: setns(2)
/// moves only the calling thread, so the grader's other threads stay in
/// their own namespace; threads the learner's code starts from there are
/// in the lab too (a new thread copies its creator's namespaces).
pub fn call_in_netns<T: Send + 'static>(
    what: &str,
    netns: Option<String>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::Fail> {
    quiet_todo_panics();
    let joined = std::thread::spawn(move || {
        if let Some(path) = netns {
            let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
        }
        Ok::<T, String>(work())
    })
    .join();
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(why)) => Err(crate::Fail::new("the grader could not enter its lab").seen(why)),
        Err(payload) => {
            let message = panic_text(payload.as_ref());
            let seen = match message.strip_prefix("not yet implemented: ") {
                Some(todo) => format!("not written yet: {todo}"),
                None => format!("it panicked: {message}"),
            };
            Err(crate::Fail::new(format!("{what} should return")).seen(seen))
        }
    }
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
    fn finds_a_panic_a_runtime_reported_in_one_line() {
        let err = "minibox: the monitor ended before the container started: panicked at lessons/05-bridge-net/src/ipam.rs:40:5: not yet implemented: lesson-05: pick an address\n";
        let p = find_panic(err).unwrap();
        assert_eq!(p.location, "lessons/05-bridge-net/src/ipam.rs:40:5");
        assert_eq!(p.todo(), Some("lesson-05: pick an address"));
        let real = "minibox: the monitor ended before the container started: panicked at solutions/04-layers/src/given/fault.rs:20:9: fault injected at run:running\n";
        assert_eq!(
            find_panic(real).map(|p| p.message),
            Some("fault injected at run:running".to_string())
        );
        assert_eq!(find_panic("minibox: it panicked at noon: no place\n"), None);
    }

    #[test]
    fn no_panic_in_plain_errors() {
        assert_eq!(find_panic("minibox: exec: \"x\": not found\n"), None);
    }
}
