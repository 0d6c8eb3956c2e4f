//! The child's side of the fork: from a copy of the runtime to the command.
//!
//! After `fork` the child is still the runtime: same code, same memory, same
//! blocked signals, same working directory. `exec_child` turns it into the
//! command, in the order a container runtime must:
//!
//! 1. give the command a clean signal state (no handler, mask or ignore of
//!    ours survives `execve` unless we undo it);
//! 2. enter the working directory (`-w`);
//! 3. find the program on the container's `PATH`, not the runtime's;
//! 4. `execve`: the kernel replaces the program in this process. The pid,
//!    the parent and the open file descriptors (stdin/stdout/stderr) stay.
//!
//! If any step fails, the child tells the parent why through the
//! [`ExecReport`] pipe and exits; it never returns into the runtime's code.
//!
//! About allocation after `fork`: in a multi-threaded process, the child may
//! only make async-signal-safe calls until `execve`, because another thread may
//! have held the allocator's lock at the moment of the fork. minibox is
//! single-threaded up to here, so the `PathBuf`s below are safe. A runtime
//! inside an async executor or a test harness would have to prepare all of it
//! before forking.

use crate::spawn::{ExecReport, Stage};
use crate::RunSpec;
use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::sys::signal::{self, SigSet, SigmaskHow};
use nix::unistd::{chdir, execve};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A [`RunSpec`] turned into the C strings `execve` takes, before the fork.
#[derive(Debug)]
pub struct Prepared {
    /// The name the user typed, for error messages.
    pub name: String,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub workdir: Option<CString>,
    path: Option<String>,
}

impl Prepared {
    pub fn new(spec: &RunSpec) -> anyhow::Result<Self> {
        let Some(name) = spec.command.first() else {
            bail!("no command given: usage is `run [OPTIONS] -- CMD [ARGS...]`");
        };
        if name.is_empty() {
            bail!("the command name is empty");
        }
        let cstrings = |items: &[String], what: &str| -> anyhow::Result<Vec<CString>> {
            items
                .iter()
                .map(|s| CString::new(s.as_bytes()))
                .collect::<Result<_, _>>()
                .with_context(|| format!("{what} contains a NUL byte"))
        };
        let workdir = match &spec.workdir {
            Some(dir) => Some(
                CString::new(dir.as_os_str().as_bytes())
                    .context("the working directory contains a NUL byte")?,
            ),
            None => None,
        };
        Ok(Prepared {
            name: name.clone(),
            argv: cstrings(&spec.command, "an argument")?,
            envp: cstrings(&spec.env, "an environment variable")?,
            workdir,
            path: crate::env::lookup(&spec.env, "PATH").map(str::to_string),
        })
    }

    /// Find the program as `execvp` would, but on the *command's* `PATH`
    /// (glibc's `execvp` would search the runtime's own `PATH`). A name with a
    /// `/` is used as it is.
    pub fn find_program(&self) -> Result<CString, Errno> {
        if self.name.contains('/') {
            return Ok(self.argv[0].clone());
        }
        let search = self.path.as_deref().unwrap_or(crate::env::DEFAULT_PATH);
        search
            .split(':')
            .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(&self.name))
            .find(|candidate| is_executable_file(candidate))
            .and_then(|found: PathBuf| CString::new(found.into_os_string().as_bytes()).ok())
            .ok_or(Errno::ENOENT)
    }
}

fn is_executable_file(path: &Path) -> bool {
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Undo the runtime's signal setup so the command starts as if from a fresh
/// shell: every signal at its default action, nothing blocked.
fn reset_signals() {
    // Handlers are reset by execve anyway, but SIG_IGN survives it: a runtime
    // started under `nohup` (SIGHUP ignored), or any Rust program (SIGPIPE
    // ignored), would hand those to the command, which could never trap them.
    // All of 1..=SIGRTMAX, not only the classic 31: glibc's posix_spawn may
    // leave the real-time signals it keeps for itself (32, 33) ignored in the
    // programs it starts, and glibc's sigaction() refuses to touch them, so
    // this goes to the kernel directly.
    for signo in 1..=nix::libc::SIGRTMAX() {
        if signo == nix::libc::SIGKILL || signo == nix::libc::SIGSTOP {
            continue; // their actions can't be changed
        }
        // The kernel's struct sigaction (handler, flags, restorer, mask), all
        // zero: SIG_DFL, no flags, nothing blocked while it runs.
        let default_action = [0u64; 4];
        // SAFETY: rt_sigaction(2) reads `default_action` and changes no
        // memory of ours; installing SIG_DFL runs no code in signal context.
        // The last argument is the kernel's sigset size (64 signals = 8 bytes).
        unsafe {
            nix::libc::syscall(
                nix::libc::SYS_rt_sigaction,
                signo,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    // The mask, too, survives execve: the command must not inherit the
    // signals the supervisor blocked.
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Only when this process is in the process group of its session's leader
/// and has a terminal (a container of step 04 run with `-t`, whose init
/// made the terminal its own): move to a process group of its own and make
/// it the terminal's foreground group. Then Ctrl-C signals the command
/// alone, not the init as well (which would forward it a second time), and
/// a shell's job control works. Elsewhere (the runtime started from your
/// shell) nothing changes.
fn take_the_terminal() {
    use nix::unistd::{getpgrp, getpid, getsid, setpgid, tcsetpgrp, Pid};
    // SAFETY: fd 0 stays open for this whole call (no std handle: nothing
    // may allocate between fork and exec).
    let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
    let leads_session = getsid(None).is_ok_and(|sid| sid == getpgrp());
    if leads_session && nix::unistd::isatty(stdin).unwrap_or(false) {
        // From a background group, tcsetpgrp sends SIGTTOU (which stops
        // us) unless it is blocked: block it; reset_signals unblocks it.
        let mut ttou = nix::sys::signal::SigSet::empty();
        ttou.add(nix::sys::signal::Signal::SIGTTOU);
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&ttou),
            None,
        );
        // setpgid(2): a new group, led by this process.
        if setpgid(Pid::from_raw(0), Pid::from_raw(0)).is_ok() {
            // tcsetpgrp(3): the terminal's signals now go to that group.
            let _ = tcsetpgrp(stdin, getpid());
        }
    }
}

// ANCHOR: exec_child
/// In the child after `fork`: become the command. Never returns: either
/// `execve` replaces this program, or the child reports why not and exits.
pub fn exec_child(cmd: &Prepared, report: &ExecReport) -> ! {
    take_the_terminal();
    reset_signals();
    let lockdown = LOCKDOWN.get();
    if let Some(lockdown) = lockdown {
        // Before the first path is followed: a working directory of
        // `/proc/self/fd/7` goes wherever an inherited fd 7 leads.
        if let Err((what, errno)) = lockdown.seal(&report.fds()) {
            report.fail_setup(what, errno);
        }
    }
    if let Some(dir) = &cmd.workdir {
        // `-w`: chdir(2) here, in the child, so the runtime's own directory
        // stays put. Shell: `(cd DIR && exec CMD)`.
        if let Err(errno) = chdir(dir.as_c_str()) {
            report.fail(Stage::Chdir, errno);
        }
        if let Some(lockdown) = lockdown {
            if let Err((what, errno)) = lockdown.entered(dir) {
                report.fail_setup(&what, errno);
            }
        }
    }
    let program = match cmd.find_program() {
        Ok(program) => program,
        Err(errno) => report.fail(Stage::Lookup, errno),
    };
    match lockdown {
        Some(lockdown) => {
            if let Err((what, errno)) = lockdown.before_exec() {
                report.fail_setup(what, errno);
            }
            let errno = lockdown.execve(&program, &cmd.argv, &cmd.envp, report);
            report.fail(Stage::Exec, errno)
        }
        None => exec(&program, cmd, report),
    }
}
// ANCHOR_END: exec_child

/// What later steps do in the child, around its `execve` (step 06 locks
/// the container down here). Set once per process; unset, nothing is done
/// and the plain `execve` below runs.
pub static LOCKDOWN: std::sync::OnceLock<&'static dyn Lockdown> = std::sync::OnceLock::new();

/// The hooks of [`LOCKDOWN`], in the order the child calls them. Each
/// failure is (what failed, errno), reported through the exec report.
pub trait Lockdown: Sync + Send {
    /// First, before the child follows any path (its working directory, the
    /// program's): step 06 closes every fd but `keep` (the report pipe).
    fn seal(&self, keep: &[std::os::fd::RawFd]) -> Result<(), (&'static str, Errno)>;
    /// Right after `chdir(dir)`: step 06 checks where the child landed.
    fn entered(&self, dir: &CStr) -> Result<(), (String, Errno)>;
    /// Once the program is found, the last moment the runtime's code runs
    /// in the process: step 06 drops capabilities and installs seccomp.
    fn before_exec(&self) -> Result<(), (&'static str, Errno)>;
    /// The execve itself; returns only if it failed.
    fn execve(
        &self,
        program: &CStr,
        argv: &[CString],
        envp: &[CString],
        report: &ExecReport,
    ) -> Errno;
}

// ANCHOR: exec
fn exec(program: &CStr, cmd: &Prepared, report: &ExecReport) -> ! {
    // TODO(lesson-01): replace this process's program with the command: execve(program, argv, envp)
    // `nix::unistd::execve` returns only when it failed: its type is
    // `Result<Infallible, Errno>`, so `let Err(errno) = execve(...);` is the
    // whole match. Then tell the parent why with `report.fail(Stage::Exec, errno)`.
    todo!(
        "lesson-01: replace this process's program with the command: execve(program, argv, envp)"
    );
}
// ANCHOR_END: exec
