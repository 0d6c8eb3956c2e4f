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

/// Every descendant of `pid` (children, their children, ...), parents first.
pub fn descendants(pid: i32) -> Vec<Stat> {
    let mut found = Vec::new();
    let mut pending = vec![pid];
    while let Some(parent) = pending.pop() {
        for child in children_of(parent) {
            pending.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// The namespace `kind` (`pid`, `net`, `mnt`, ...) of a process, as the
/// kernel names it in `/proc/PID/ns/KIND`: `net:[4026531840]`. Two processes
/// are in the same namespace exactly when these are equal.
pub fn namespace(pid: i32, kind: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
}

/// A process's pid in each PID namespace it is in, outermost first (the
/// `NSpid:` line of `/proc/PID/status`): `[31337, 2]` is pid 31337 on the
/// host and pid 2 in its container.
pub fn nspid(pid: i32) -> Option<Vec<i32>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().map(|n| n.parse().ok()).collect()
}

/// One line of `/proc/PID/mountinfo` (see proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of its filesystem this mount shows (a bind mount of
    /// `/srv/img` shows `/srv/img`; a whole filesystem shows `/`).
    pub root: String,
    pub mount_point: String,
    /// `shared:N`, `master:N`, ...: how mount events propagate. None of them
    /// means private.
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
}

impl Mount {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("shared:"))
    }
}

/// Parse the text of a `mountinfo` file.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            Some(Mount {
                root: fields.get(3)?.to_string(),
                mount_point: fields.get(4)?.to_string(),
                optional: fields.get(6..)?.iter().map(|f| f.to_string()).collect(),
                fs_type: after.next()?.to_string(),
                source: after.next()?.to_string(),
            })
        })
        .collect()
}

/// The mount table of a process's mount namespace, as it sees it.
pub fn mountinfo(pid: i32) -> Option<Vec<Mount>> {
    Some(parse_mountinfo(
        &fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?,
    ))
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
    fn parses_mountinfo_with_and_without_propagation() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    98 22 0:45 / /tmp/x rw - tmpfs grader-tmpfs rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].mount_point, "/");
        assert!(mounts[0].is_shared());
        assert_eq!(
            (mounts[1].fs_type.as_str(), mounts[1].source.as_str()),
            ("tmpfs", "grader-tmpfs")
        );
        assert!(!mounts[1].is_shared());
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert_eq!(s.pid, me);
        assert_eq!(s.ppid, nix::unistd::getppid().as_raw());
        assert!(environ(me).unwrap().iter().any(|v| v.contains('=')));
        assert_eq!(nspid(me).unwrap().first(), Some(&me));
        assert!(namespace(me, "net").unwrap().starts_with("net:["));
        assert!(mountinfo(me).unwrap().iter().any(|m| m.mount_point == "/"));
    }
}
