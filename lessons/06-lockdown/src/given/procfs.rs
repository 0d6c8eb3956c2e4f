//! What the kernel says about a process, read from `/proc`.

use anyhow::Context;

/// A field of `/proc/PID/status`: `CapBnd`, `NoNewPrivs`, `Seccomp`, ...
pub fn status_field(pid: i32, field: &str) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_string())
        .with_context(|| format!("{path} has no {field} (a kernel too old?)"))
}
