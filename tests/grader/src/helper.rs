//! Library-level checks that must run in a process of their own: the
//! grader's test binary started again with one variable set, which calls
//! one of the learner's functions at the start of `main` (single-threaded,
//! so it may drop capabilities, install a seccomp filter or unshare a mount
//! namespace without touching the grader) and prints what the kernel shows
//! afterwards as `key=value` lines.
//!
//! The grader side: [`run`], then [`said`] or [`expect_said`]. The helper
//! side: [`dispatch`] first thing in `main`, then [`say`], [`errno_of`],
//! [`die`] for a setup error that is not the learner's.

use crate::{expect_eq, Fail, Outcome};

/// The variable that carries the helper's spec (`KIND\nARG\nARG...`).
const VARIABLE: &str = "GRADER_HELPER";

/// In `main`, before anything else: if this process is a helper, run
/// `helper(kind, args)` and exit; else return.
pub fn dispatch(helper: impl FnOnce(&str, &[String])) {
    let Ok(spec) = std::env::var(VARIABLE) else {
        return;
    };
    let mut parts = spec.split('\n').map(str::to_string);
    let kind = parts.next().unwrap_or_default();
    let args: Vec<String> = parts.collect();
    helper(&kind, &args);
    std::process::exit(0)
}

/// Run the helper `kind` with `args`; its `key=value` lines. A `todo!()`
/// the helper met is "not written yet", another panic "it panicked", a
/// `setup=` line the grader's own failure.
pub fn run(what: &str, kind: &str, args: &[&str]) -> Result<String, Fail> {
    let mut spec = vec![kind];
    spec.extend_from_slice(args);
    let me =
        std::env::current_exe().map_err(|e| Fail::new("setup: the grader's own binary").seen(e))?;
    let out = std::process::Command::new(me)
        .env(VARIABLE, spec.join("\n"))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Fail::new("setup: run the helper").seen(e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(panic) = crate::todo::find_panic(&stderr) {
        let seen = match panic.todo() {
            Some(todo) => format!("not written yet: {todo}"),
            None => format!("it panicked: {}; it said: {}", panic.message, text.trim()),
        };
        return Err(Fail::new(format!("{what} should return")).seen(seen));
    }
    if let Some(error) = text.lines().find_map(|l| l.strip_prefix("setup=")) {
        return Err(Fail::new(format!("setup of {what}")).seen(error));
    }
    if !out.status.success() {
        return Err(Fail::new(format!("{what} should return")).seen(format!(
            "the helper process ended with {}; it said: {} {}",
            out.status,
            text.trim(),
            stderr.trim()
        )));
    }
    Ok(text)
}

/// The value of `key=` in a helper's answer, `(nothing)` if it never said.
pub fn said(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("(nothing)")
        .to_string()
}

/// Compare some keys of a helper's answer with what they should be.
pub fn expect_said(what: &str, text: &str, expected: &[(&str, &str)]) -> Outcome {
    let want: Vec<String> = expected.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let seen: Vec<String> = expected
        .iter()
        .map(|(k, _)| format!("{k}={}", said(text, k)))
        .collect();
    expect_eq(what, want.join("\n"), seen.join("\n"))
}

/// In the helper: one answer.
pub fn say(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

/// In the helper: `ok`, or the errno's name (`EPERM`).
pub fn errno_of<T>(result: Result<T, nix::errno::Errno>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(errno) => format!("{errno:?}"),
    }
}

/// In the helper: stop with a setup error (the grader's, not the learner's).
pub fn die(what: &str, e: impl std::fmt::Display) -> ! {
    say("setup", format!("{what}: {e}"));
    std::process::exit(0)
}
