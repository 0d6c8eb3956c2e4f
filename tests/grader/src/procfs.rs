//! What the kernel says about processes, read from `/proc`. Checks trust this,
//! not what the program under test prints about itself.

use std::fs;
use std::path::PathBuf;

/// The fields of `/proc/PID/stat` the checks use (see proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The executable's name, at most 15 bytes.
    pub comm: String,
    /// R running, S sleeping, Z zombie (dead, not yet reaped), ...
    pub state: char,
    pub ppid: i32,
    /// Start time in clock ticks after boot: with the pid, it names a process
    /// uniquely (pids are reused, start times are not).
    pub start_time: u64,
}

/// Parse the text of `/proc/PID/stat`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // comm is in parentheses and may itself contain spaces and parentheses:
    // split at the *last* ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(Stat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        start_time: rest.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/stat`, or `None` if there is no such process (any more).
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process whose parent is `ppid`, zombies included.
pub fn children_of(ppid: i32) -> Vec<Stat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<Stat> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .filter(|s| s.ppid == ppid)
        .collect();
    children.sort_by_key(|s| s.pid);
    children
}

/// The program a process runs (`/proc/PID/exe`).
pub fn exe(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// A process's working directory (`/proc/PID/cwd`).
pub fn cwd(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// The environment a process was started with (`/proc/PID/environ`), as
/// `KEY=VALUE` strings in order.
pub fn environ(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect(),
    )
}

/// A short description of a process for messages: `pid 42 (sleep)`, with
/// what a learner can't guess from the name.
pub fn describe(pid: i32) -> String {
    if pid == std::process::id() as i32 {
        return format!(
            "pid {pid} (the grader itself, which adopts whatever the runtime leaves behind)"
        );
    }
    match stat(pid) {
        Some(s) if s.state == 'Z' => format!("pid {pid} ({}, already exited)", s.comm),
        Some(s) => format!("pid {pid} ({})", s.comm),
        None => format!("pid {pid} (gone)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_comm_with_spaces_and_parentheses() {
        let line =
            "4242 (my (odd) prog) Z 17 4242 4242 0 -1 4194564 99 0 0 0 0 0 0 0 20 0 1 0 123456 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(s.state, 'Z');
        assert_eq!(s.ppid, 17);
        assert_eq!(s.start_time, 123456);
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert_eq!(s.pid, me);
        assert_eq!(s.ppid, nix::unistd::getppid().as_raw());
        assert!(environ(me).unwrap().iter().any(|v| v.contains('=')));
    }
}
