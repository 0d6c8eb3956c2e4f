//! A terminal of the grader's own, standing in for the learner's.
//!
//! A pseudo-terminal whose slave side becomes the *controlling terminal* of
//! the runtime under test, the way a shell's terminal is the controlling
//! terminal of every program it starts (`setsid -c minibox ...`). An
//! escape that pushes keystrokes into the caller's terminal (the
//! `TIOCSTI` ioctl) puts them in this terminal's input queue, where a shell
//! would read them as its next command line. The grader only counts them
//! (`FIONREAD`): nobody reads them, nothing runs them, and they go away
//! with the terminal.

use crate::{Fail, Outcome};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// What the program under test gets of the terminal besides making it its
/// controlling terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wired {
    /// Only the controlling terminal (`/dev/tty`): stdin is `/dev/null`,
    /// stdout a pipe, as `minibox ... </dev/null >out 2>&1` leaves it.
    Nothing,
    /// stdin and stdout on the terminal, as an interactive shell starts a
    /// program; stderr stays a pipe the grader reads.
    StdinAndStdout,
}

/// A pty pair, the slave in raw mode (no echo, no line editing: every
/// byte pushed into it stays countable).
pub struct Terminal {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Terminal {
    pub fn new() -> Result<Terminal, Fail> {
        // openpty(3): /dev/ptmx and its /dev/pts/N.
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| Fail::new("the grader could not open a pseudo-terminal").seen(e))?;
        let mut raw = nix::sys::termios::tcgetattr(&pty.slave)
            .map_err(|e| Fail::new("the grader could not read its terminal's modes").seen(e))?;
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &raw)
            .map_err(|e| Fail::new("the grader could not set its terminal raw").seen(e))?;
        Ok(Terminal {
            master: pty.master,
            slave: pty.slave,
        })
    }

    /// Bytes waiting in the terminal's input queue: what a shell reading
    /// this terminal would take as typed (ioctl FIONREAD on the slave).
    pub fn pending_input(&self) -> Result<usize, Fail> {
        let mut count: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `count`.
        let rc = unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut count) };
        if rc != 0 {
            return Err(
                Fail::new("the grader could not ask its terminal (FIONREAD)")
                    .seen(std::io::Error::last_os_error()),
            );
        }
        Ok(count.max(0) as usize)
    }

    /// Expect nothing pushed into the terminal.
    pub fn expect_untouched(&self, what: &str, output: &str) -> Outcome {
        let pending = self.pending_input()?;
        crate::ensure(pending == 0, || {
            Fail::new(format!(
                "{what}: bytes were pushed into the caller's terminal (a shell would run them)"
            ))
            .expected("an empty input queue (FIONREAD 0)")
            .seen(format!(
                "{pending} bytes waiting to be read; the program said: {}",
                output.trim()
            ))
        })
    }

    /// Start `command` as a session leader whose controlling terminal is
    /// this one (`setsid`, then `ioctl(TIOCSCTTY)`), wired as `wired` says,
    /// wait at most `timeout` for it, and return how it ended and what it
    /// wrote to stderr (and to stdout, when that is a pipe).
    pub fn run(
        &self,
        mut command: Command,
        wired: Wired,
        timeout: Duration,
    ) -> Result<(ExitStatus, String), Fail> {
        use std::os::unix::process::CommandExt;
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| Fail::new("the grader could not dup its terminal").seen(e))
        };
        match wired {
            Wired::Nothing => {
                command.stdin(Stdio::null()).stdout(Stdio::piped());
            }
            Wired::StdinAndStdout => {
                command
                    .stdin(Stdio::from(dup(&self.slave)?))
                    .stdout(Stdio::from(dup(&self.slave)?));
            }
        }
        command.stderr(Stdio::piped());
        let slave = self.slave.as_raw_fd();
        // SAFETY: between fork and exec, only setsid(2) and ioctl(2): both
        // async-signal-safe, nothing allocates.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setsid()?;
                // TIOCSCTTY: this session leader's controlling terminal.
                if libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| Fail::new("the grader could not start the program").seen(e))?;
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            readers.push(std::thread::spawn(move || {
                let mut stream = stream;
                let mut text = Vec::new();
                let _ = stream.read_to_end(&mut text);
                text
            }));
        }
        let status = wait(&mut child, timeout)?;
        let mut text = Vec::new();
        for reader in readers {
            text.extend(reader.join().unwrap_or_default());
        }
        Ok((status, String::from_utf8_lossy(&text).into_owned()))
    }

    /// The master side, for a check that also reads what was written to
    /// the terminal.
    pub fn master(&self) -> &OwnedFd {
        &self.master
    }
}

fn wait(child: &mut Child, timeout: Duration) -> Result<ExitStatus, Fail> {
    let ended = crate::poll(timeout, || child.try_wait().ok().flatten());
    match ended {
        Some(status) => Ok(status),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Fail::new(format!(
                "the program did not end within {} s",
                timeout.as_secs()
            )))
        }
    }
}

/// The marker the probe pushes: no newline, nothing a shell would run.
pub const MARKER: &str = "grader-tiocsti";

/// The probe's `key: value` answers (the `tiocsti` experiment's, on stderr).
pub fn answers(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// After `what` ran the probe's `tiocsti` experiment under `terminal`:
/// the probe got nowhere, and the kernel agrees (nothing is waiting in the
/// terminal's input queue).
pub fn expect_blocked(terminal: &Terminal, what: &str, said: &str) -> Outcome {
    let found = answers(said);
    let verdict = found.get("tiocsti").map(String::as_str).unwrap_or("");
    crate::ensure(verdict == "blocked", || {
        Fail::new(format!(
            "{what}: the container pushed keystrokes into the caller's terminal"
        ))
        .expected("tiocsti: blocked (no /dev/tty, no terminal as fd 0, 1 or 2)")
        .seen(if said.trim().is_empty() {
            "the probe said nothing".to_string()
        } else {
            said.trim().to_string()
        })
    })?;
    terminal.expect_untouched(what, said)
}

/// The control: the same probe, run directly by the grader under a
/// terminal of its own, *does* push into it. A probe that could reach
/// nothing would prove nothing.
pub fn control(timeout: Duration) -> Outcome {
    let terminal = Terminal::new()?;
    let me = std::env::current_exe()
        .map_err(|e| Fail::new("cannot find the grader's own binary").seen(e))?;
    let mut command = Command::new(me);
    command.args(["--probe", "tiocsti", MARKER]);
    let (_, said) = terminal.run(command, Wired::StdinAndStdout, timeout)?;
    let pending = terminal.pending_input()?;
    crate::ensure(
        pending >= MARKER.len()
            && answers(&said)
                .get("tiocsti")
                .is_some_and(|v| v.starts_with("reached")),
        || {
            Fail::new("the control: the probe, run by the grader in a terminal of its own, should push keystrokes into it (TIOCSTI)")
                .expected(format!("tiocsti: reached, and {} bytes waiting in the terminal", MARKER.len()))
                .seen(format!("{pending} bytes waiting; the probe said: {}", said.trim()))
        },
    )
}
