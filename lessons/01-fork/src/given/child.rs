//! The child's given pieces: everything `execve` needs, made before the
//! fork, and the parts of a clean start that take raw system calls.
//!
//! About allocation after `fork`: in a multi-threaded process, the child may
//! only make async-signal-safe calls until `execve`, because another thread may
//! have held the allocator's lock at the moment of the fork. minibox is
//! single-threaded up to here, so the `PathBuf`s of [`Prepared::find_program`]
//! are safe. A runtime inside an async executor or a test harness would have
//! to prepare all of it before forking.

use crate::RunSpec;
use anyhow::{bail, Context};
use nix::errno::Errno;
use std::ffi::CString;
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
    /// `/` is used as it is. `Err(ENOENT)`: on no directory of that `PATH`.
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

/// Every signal's action back to its default (SIG_DFL), as a fresh shell
/// would start a program. The mask (which signals are blocked) is left as
/// it is.
///
/// Handlers are reset by execve anyway, but SIG_IGN survives it: a runtime
/// started under `nohup` (SIGHUP ignored), or any Rust program (SIGPIPE
/// ignored), would hand those to the command, which could never trap them.
/// All of 1..=SIGRTMAX, not only the classic 31: glibc's posix_spawn may
/// leave the real-time signals it keeps for itself (32, 33) ignored in the
/// programs it starts, and glibc's sigaction() refuses to touch them, so
/// this goes to the kernel directly.
pub fn default_actions() {
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
}

/// Only when this process is in the process group of its session's leader
/// and has a terminal (a container of step 04 run with `-t`, whose init
/// made the terminal its own): move to a process group of its own and make
/// it the terminal's foreground group. Then Ctrl-C signals the command
/// alone, not the init as well (which would forward it a second time), and
/// a shell's job control works. Elsewhere (the runtime started from your
/// shell) nothing changes. It may leave SIGTTOU blocked: unblock every
/// signal after it.
pub fn take_the_terminal() {
    use nix::unistd::{getpgrp, getpid, getsid, setpgid, tcsetpgrp, Pid};
    // SAFETY: fd 0 stays open for this whole call (no std handle: nothing
    // may allocate between fork and exec).
    let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
    let leads_session = getsid(None).is_ok_and(|sid| sid == getpgrp());
    if leads_session && nix::unistd::isatty(stdin).unwrap_or(false) {
        // From a background group, tcsetpgrp sends SIGTTOU (which stops
        // us) unless it is blocked: block it; the caller unblocks it.
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
