//! Running the binary under test: with a timeout, with its output captured,
//! and never left behind.

use crate::check::Fail;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one run may take before the grader calls it hung.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Every stderr the binary wrote during one check, kept so the harness can
/// say "not written yet" when it died on a `todo!()`.
pub type StderrLog = Arc<Mutex<Vec<String>>>;

/// How many lines of a command's stderr a failure shows: its last ones,
/// where a program says why it gave up.
pub const STDERR_LINES: usize = 4;

thread_local! {
    /// The tail of the stderr of the last command this thread ran (a check
    /// runs on one thread), for [`Fail::new`] to show.
    static LAST_STDERR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Remember `stderr` as the last command's (nothing, if it wrote nothing).
pub(crate) fn note_stderr(stderr: &str) {
    let tail = tail(stderr);
    LAST_STDERR.with(|last| *last.borrow_mut() = (!tail.is_empty()).then_some(tail));
}

/// The tail of the last command's stderr, if it wrote any.
pub(crate) fn last_stderr() -> Option<String> {
    LAST_STDERR.with(|last| last.borrow().clone())
}

/// The last [`STDERR_LINES`] lines of `stderr` that are not blank, trimmed
/// at the end; `…` first when lines were left out.
pub fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect();
    let kept = &lines[lines.len().saturating_sub(STDERR_LINES)..];
    let mut text = kept.join("\n");
    if kept.len() < lines.len() {
        text.insert_str(0, "…\n");
    }
    text
}

/// A command line for the binary under test, not started yet.
pub struct Invocation {
    binary: String,
    args: Vec<String>,
    shown: String,
    stdin: Option<Vec<u8>>,
    log: StderrLog,
    env: Vec<(OsString, Option<OsString>)>,
    ignored: Vec<Signal>,
    lab: bool,
    netns: Option<String>,
    user: Option<(u32, u32)>,
}

/// The set-up of a lab, run by `sh` inside the lab's fresh namespaces before
/// it becomes the runtime: things a container must *not* see.
const LAB_SCRIPT: &str = r#"
fail() { echo "grader lab: cannot $1 (the grader needs iproute2 and util-linux: run .ci/install)" >&2; exit 99; }
ip link add grader-lab0 type veth peer name grader-lab1 || fail "create a veth pair in the lab's network namespace"
ipcmk -M 4096 >/dev/null || fail "create a SysV shared memory segment in the lab's IPC namespace"
hostname grader-lab || fail "set the lab's hostname"
if [ -n "$GRADER_LAB_PROC_SUBMOUNT" ]; then
    mount -t tmpfs grader-lab /proc/sys/fs/binfmt_misc && : > /proc/sys/fs/binfmt_misc/register \
        || fail "mount a tmpfs on /proc/sys/fs/binfmt_misc in the lab's mount namespace"
fi
exec "$@"
"#;

impl Invocation {
    pub(crate) fn new(binary: &str, args: &[&str], log: StderrLog) -> Self {
        Invocation {
            binary: binary.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            shown: format!("minibox {}", shell_words(args)),
            stdin: None,
            log,
            env: Vec::new(),
            ignored: Vec::new(),
            lab: false,
            netns: None,
            user: None,
        }
    }

    /// How failure messages show this command, when the program run is not
    /// the runtime itself (`env PATH=... minibox ...` shows as
    /// `PATH=... minibox ...`).
    pub fn shown_as(mut self, shown: impl Into<String>) -> Self {
        self.shown = shown.into();
        self
    }

    /// Set an environment variable of the runtime itself.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().into(), Some(value.as_ref().into())));
        self
    }

    /// Make sure the runtime does *not* have this variable, whatever the
    /// grader's own environment holds.
    pub fn env_remove_for_test(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().into(), None));
        self
    }

    /// Start the runtime with `signal` ignored, as `nohup` starts a program
    /// with SIGHUP ignored. An ignored signal stays ignored across execve.
    pub fn ignore_signal(mut self, signal: Signal) -> Self {
        self.ignored.push(signal);
        self
    }

    /// Run the runtime inside a *lab*: fresh mount (with `/` made shared, as
    /// systemd makes it), UTS, IPC and network namespaces, holding a veth pair
    /// `grader-lab0`/`grader-lab1`, a SysV shared memory segment and the host
    /// name `grader-lab`. The lab stands in for the host: whatever the
    /// runtime leaks lands in the lab (where the check sees it), never on the
    /// real host. Its namespaces are the runtime's own: `/proc/<runtime>/ns/*`.
    /// Needs root.
    pub fn in_lab(mut self) -> Self {
        self.lab = true;
        self
    }

    /// In the lab, a mount below `/proc`, as a host with binfmt_misc has
    /// one: a tmpfs on `/proc/sys/fs/binfmt_misc` holding a writable file
    /// `register`. Only in the lab's own mount namespace. Implies `in_lab`.
    pub fn with_proc_submount(mut self) -> Self {
        self.lab = true;
        self.env
            .push(("GRADER_LAB_PROC_SUBMOUNT".into(), Some("1".into())));
        self
    }

    /// Run the runtime as this uid and gid, with no supplementary groups (an
    /// unprivileged caller). Needs root.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        self.user = Some((uid, gid));
        self
    }

    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = if let Some(netns) = &self.netns {
            // nsenter(1) --net: run in a network namespace a check keeps
            // alive (a NetLab), so that several runs share one lab.
            let mut command = Command::new("nsenter");
            command
                .arg(format!("--net={netns}"))
                .arg("--")
                .arg(&self.binary);
            command
        } else if self.lab {
            let mut command = Command::new("sh");
            command.args(["-c", LAB_SCRIPT, "sh", &self.binary]);
            command
        } else {
            Command::new(&self.binary)
        };
        command.args(&self.args);
        // A panic's message, without a backtrace to read past.
        command.env("RUST_BACKTRACE", "0");
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let (ignored, lab, user) = (self.ignored.clone(), self.lab, self.user);
        // SAFETY: between fork and exec in the grader's threaded process, only
        // plain system calls run here (sigaction, unshare, mount, setgroups,
        // setgid, setuid): all async-signal-safe, and nothing allocates.
        unsafe {
            command.pre_exec(move || {
                use nix::mount::{mount, MsFlags};
                use nix::sched::{unshare, CloneFlags};
                for &signal in &ignored {
                    nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn)?;
                }
                if lab {
                    unshare(
                        CloneFlags::CLONE_NEWNS
                            | CloneFlags::CLONE_NEWUTS
                            | CloneFlags::CLONE_NEWIPC
                            | CloneFlags::CLONE_NEWNET,
                    )?;
                    // First cut the lab off from the host's mounts, then make
                    // it shared within itself: a runtime that forgets to make
                    // its own mounts private leaks into the lab, visibly.
                    let none = None::<&str>;
                    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
                    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SHARED, none)?;
                }
                if let Some((uid, gid)) = user {
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))?;
                    nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
                }
                Ok(())
            });
        }
        command
    }

    /// The command line as a `Command`, lab and all, for a check that needs
    /// stdio of its own (a terminal). The check must wait for it itself.
    pub fn into_command(self) -> Command {
        self.command()
    }

    /// Run in the network namespace at `path` (`/proc/PID/ns/net` of a
    /// [`crate::NetLab`]), shared by every run of the check.
    pub fn in_netns(mut self, path: &str) -> Self {
        self.netns = Some(path.to_string());
        self
    }

    /// Feed these bytes to its stdin, then close it (for [`Invocation::output`]).
    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Run to the end (at most [`TIMEOUT`]) and collect what it did.
    pub fn output(self) -> Result<Output, Fail> {
        let input = self.stdin.clone().unwrap_or_default();
        let mut running = self.spawn()?;
        let mut stdin = running.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(&input); // EPIPE when it never reads
            }
        });
        let output = running.wait(TIMEOUT);
        let _ = writer.join();
        output
    }

    /// Start it with stdin, stdout and stderr as pipes, and return at once.
    pub fn spawn(self) -> Result<Running, Fail> {
        let mut command = self.command();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| Fail::new(format!("could not start `{}`", self.shown)).seen(e))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line_tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        // stderr is read as it comes, into a buffer we can look at any time:
        // a process the command left behind may keep the pipe open long
        // after the runtime has exited (and printed its panic).
        let stderr_seen: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (err_tx, stderr_closed) = mpsc::channel::<()>();
        let sink = stderr_seen.clone();
        std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            let _ = err_tx.send(());
        });
        Ok(Running {
            stdin: child.stdin.take(),
            child,
            shown: self.shown,
            lines,
            stdout_seen: Vec::new(),
            stderr_seen,
            stderr_closed,
            log: self.log,
            finished: false,
        })
    }
}

/// The binary under test, running.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `minibox run -- ...`, for messages.
    pub shown: String,
    lines: Receiver<Vec<u8>>,
    stdout_seen: Vec<u8>,
    stderr_seen: Arc<Mutex<Vec<u8>>>,
    stderr_closed: Receiver<()>,
    log: StderrLog,
    finished: bool,
}

impl Running {
    /// The runtime's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line of its stdout, without the newline.
    pub fn read_line(&mut self, timeout: Duration) -> Result<String, Fail> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.stdout_seen.extend_from_slice(&line);
                Ok(String::from_utf8_lossy(&line)
                    .trim_end_matches('\n')
                    .to_string())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Fail::new(format!(
                "`{}` printed no line within {} s",
                self.shown,
                timeout.as_secs_f32()
            ))
            .seen(self.exit_so_far())),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: the runtime (and everything it started) is gone.
                let _ = poll_exit(&mut self.child, Duration::from_millis(500));
                Err(Fail::new(format!(
                    "`{}` closed its stdout without printing a line",
                    self.shown
                ))
                .seen(self.exit_so_far()))
            }
        }
    }

    /// `Some("it ended: exit code 101, stderr: ...")` if the runtime has
    /// already exited (without reaping it: `wait` still works after).
    pub fn ended(&mut self) -> Option<String> {
        matches!(self.child.try_wait(), Ok(Some(_))).then(|| self.exit_so_far())
    }

    /// "it ended: exit code 101, stderr: ..." or "it is still running".
    fn exit_so_far(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let _ = self.stderr_closed.recv_timeout(Duration::from_millis(300));
                with_stderr(
                    format!("it ended: {}", describe_status(status)),
                    &self.stderr_so_far(),
                )
            }
            _ => with_stderr("it is still running".to_string(), &self.stderr_so_far()),
        }
    }

    /// Close its stdin (a `cat` inside then sees end-of-file).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Send `signal` to the runtime (only ever to this pid, which we started).
    pub fn signal(&self, signal: Signal) -> Result<(), Fail> {
        kill(Pid::from_raw(self.pid()), signal)
            .map_err(|e| Fail::new(format!("could not send {signal} to the runtime")).seen(e))
    }

    /// Wait for it to end (at most `timeout`; then it is killed and the check
    /// fails) and collect its output.
    pub fn wait(mut self, timeout: Duration) -> Result<Output, Fail> {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    self.stop();
                    return Err(Fail::new(format!(
                        "`{}` did not finish within {} s (the grader stopped it)",
                        self.shown,
                        timeout.as_secs_f32()
                    )));
                }
                Err(e) => return Err(Fail::new("could not wait for the runtime").seen(e)),
            }
        };
        self.finished = true;
        // A background process of the command may hold stdout open after the
        // runtime is gone: take what is there, don't wait for it to close.
        let mut stdout = std::mem::take(&mut self.stdout_seen);
        let grace = Instant::now() + Duration::from_millis(500);
        while let Ok(line) = self
            .lines
            .recv_timeout(grace.saturating_duration_since(Instant::now()))
        {
            stdout.extend_from_slice(&line);
        }
        let stderr = self.collect_stderr();
        Ok(Output {
            shown: self.shown.clone(),
            status,
            stdout,
            stderr,
        })
    }

    /// What it wrote to stderr: everything, once the pipe has closed or a
    /// short grace has passed after the runtime's exit.
    fn collect_stderr(&mut self) -> String {
        let _ = self.stderr_closed.recv_timeout(Duration::from_millis(300));
        let stderr = self.stderr_so_far();
        self.log.lock().unwrap().push(stderr.clone());
        note_stderr(&stderr);
        stderr
    }

    fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr_seen.lock().unwrap()).into_owned()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finished = true;
        self.collect_stderr();
    }
}

impl Drop for Running {
    /// A check that fails half-way must not leave the runtime running.
    fn drop(&mut self) {
        if !self.finished {
            self.stop();
        }
    }
}

/// Wait a little for `child` to end, without reaping it for good.
fn poll_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    crate::poll(timeout, || child.try_wait().ok().flatten())
}

/// How a run of the binary under test ended, and what it printed.
#[derive(Debug)]
pub struct Output {
    pub shown: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// Its exit code, or `None` if a signal killed it.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The lines of stdout that are numbers (pids, say), sorted.
    pub fn numbers(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = self
            .stdout_text()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        numbers.sort();
        numbers
    }

    /// "exit code 7" or "killed by signal 15 (SIGTERM)".
    pub fn describe(&self) -> String {
        describe_status(self.status)
    }

    /// Fail unless it exited with `code`.
    pub fn expect_code(&self, code: i32, why: &str) -> Result<(), Fail> {
        if self.code() == Some(code) {
            return Ok(());
        }
        Err(Fail::new(format!("`{}`: {why}", self.shown))
            .expected(format!("exit code {code}"))
            .seen(self.summary()))
    }

    /// The exit and the first lines of stderr, for "seen:".
    pub fn summary(&self) -> String {
        with_stderr(self.describe(), &self.stderr)
    }

    /// Fail unless stderr is exactly one line in minibox's error form,
    /// mentioning `mentions`.
    pub fn expect_one_error_line(&self, mentions: &str) -> Result<(), Fail> {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let good =
            lines.len() == 1 && lines[0].starts_with("minibox: ") && lines[0].contains(mentions);
        if good {
            return Ok(());
        }
        Err(Fail::new(format!(
            "`{}` should explain itself in one line on stderr",
            self.shown
        ))
        .expected(format!(
            "one line: minibox: <what failed: ...{mentions}...>: <why>"
        ))
        .seen(if self.stderr.is_empty() {
            "nothing on stderr".to_string()
        } else {
            format!("{} line(s):\n{}", lines.len(), tail(&self.stderr))
        }))
    }
}

/// `what`, followed by the last lines of `stderr` if there are any.
fn with_stderr(mut what: String, stderr: &str) -> String {
    let tail = tail(stderr);
    if !tail.is_empty() {
        what.push_str(&format!(", stderr: {tail}"));
    }
    what
}

/// "exit code 7" or "killed by signal 15 (SIGTERM)".
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(101), _) => "exit code 101 (a Rust panic)".to_string(),
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(name) => format!("killed by signal {sig} ({name})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => "ended in an unknown way".to_string(),
    }
}

/// Quote arguments the way a shell would need them, for messages.
pub fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_shows_the_last_lines_of_stderr() {
        assert_eq!(tail("\none\n\n  two  \n\n"), "one\n  two");
        assert_eq!(tail("1\n2\n3\n4\n5\n6\n"), "…\n3\n4\n5\n6");
        assert_eq!(tail(" \n"), "");
        note_stderr("warning\nminibox: cannot run: no such image\n");
        assert_eq!(
            Fail::new("the run failed").stderr.as_deref(),
            Some("warning\nminibox: cannot run: no such image")
        );
        note_stderr("");
        assert_eq!(Fail::new("a later, quiet run").stderr, None);
    }

    #[test]
    fn shell_words_quotes_what_needs_it() {
        assert_eq!(
            shell_words(&["run", "--", "sh", "-c", "exit 7", "it's"]),
            r#"run -- sh -c 'exit 7' 'it'\''s'"#
        );
    }
}
