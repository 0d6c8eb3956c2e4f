//! Holding a process of the runtime still at a chosen moment.
//!
//! Some windows a container can attack last microseconds: `exec`'s child
//! between its fork and its `execve`, say. An exploit that races for them
//! wins sometimes; a check can't grade on "sometimes". So the grader makes
//! the window as long as it likes, from the host: it starts the runtime
//! under `ptrace(2)` (`PTRACE_TRACEME`), asks the kernel to stop the
//! runtime's first child in a container at its birth (`PTRACE_O_TRACEFORK`),
//! or just after its first `execve` (`PTRACE_O_TRACEEXEC`), then lets go of both,
//! leaving the child stopped (a pending `SIGSTOP`). Meanwhile the child is
//! exactly what the container would see at that moment; the check runs its
//! exploit against it, then sends `SIGCONT`.
//!
//! ptrace(2) is per *thread*: every call here must come from the thread
//! that started the runtime (the check's own).

use crate::{Fail, Outcome};
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// When to hold the runtime's first child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// At its call of `execve` (or `execveat`), before the kernel runs it:
    /// the last instant it is a copy of the runtime, everything done that
    /// the runtime does first. It stays traced by the grader (a process has
    /// one tracer: a check's own `ptrace` of it would say EPERM whatever
    /// the runtime did).
    ExecCall,
    /// Right after its first `execve` succeeded, before its first
    /// instruction; no longer traced.
    Exec,
}

/// A runtime whose first child is held stopped.
pub struct Held {
    runtime: Child,
    /// The held child, as the host sees it.
    pub pid: i32,
    at: At,
    readers: Vec<std::thread::JoinHandle<Vec<u8>>>,
    released: bool,
}

/// Start `command` (the runtime) and hold `at` its first child that is a
/// process of a container (in another PID namespace than the runtime: the
/// one the runtime joined, or made). Children it makes for itself (a
/// process that copies its output, say) go on untouched.
pub fn hold_first_child(mut command: Command, at: At) -> Result<Held, Fail> {
    use std::os::unix::process::CommandExt;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only ptrace(2), a plain system call.
    unsafe {
        command.pre_exec(|| ptrace::traceme().map_err(std::io::Error::from));
    }
    let mut runtime = command
        .spawn()
        .map_err(|e| Fail::new("could not start the runtime under ptrace").seen(e))?;
    let readers = [
        runtime
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        runtime
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut stream| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            bytes
        })
    })
    .collect();
    let pid = Pid::from_raw(runtime.id() as i32);
    let mut held = Held {
        runtime,
        pid: 0,
        at,
        readers,
        released: false,
    };
    let traced = || -> Result<i32, String> {
        // Stopped at its execve (TRACEME sends SIGTRAP then).
        expect_stop(pid)?;
        let options = ptrace::Options::PTRACE_O_TRACEFORK
            | ptrace::Options::PTRACE_O_TRACEEXEC
            | ptrace::Options::PTRACE_O_TRACESYSGOOD
            | ptrace::Options::PTRACE_O_EXITKILL;
        ptrace::setoptions(pid, options).map_err(|e| format!("PTRACE_SETOPTIONS: {e}"))?;
        ptrace::cont(pid, None).map_err(|e| format!("PTRACE_CONT: {e}"))?;
        let child = loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::PtraceEvent(_, _, event)) if event == libc::PTRACE_EVENT_FORK => {
                    let child = ptrace::getevent(pid).map_err(|e| format!("GETEVENTMSG: {e}"))?;
                    let child = Pid::from_raw(child as i32);
                    // The child starts traced, with a SIGSTOP of its own.
                    expect_stop(child)?;
                    if in_a_container(pid, child) {
                        break child;
                    }
                    // A helper of the runtime's (a copier, say): let it be.
                    ptrace::detach(child, None).map_err(|e| format!("PTRACE_DETACH: {e}"))?;
                    ptrace::cont(pid, None)
                }
                // Another execve of its own (nsenter becoming the runtime).
                Ok(WaitStatus::PtraceEvent(..)) => ptrace::cont(pid, None),
                // A signal for it: pass it on.
                Ok(WaitStatus::Stopped(_, signal)) => ptrace::cont(pid, Some(signal)),
                Ok(other) => {
                    return Err(format!(
                        "the runtime ended before it forked into a container: {other:?}"
                    ))
                }
                Err(e) => return Err(format!("waitpid: {e}")),
            }
            .map_err(|e| format!("PTRACE_CONT: {e}"))?;
        };
        // The runtime goes on (it waits for its child's exec report).
        ptrace::detach(pid, None).map_err(|e| format!("PTRACE_DETACH: {e}"))?;
        match at {
            At::Exec => {
                ptrace::cont(child, None).map_err(|e| format!("PTRACE_CONT: {e}"))?;
                loop {
                    match waitpid(child, Some(WaitPidFlag::__WALL)) {
                        Ok(WaitStatus::PtraceEvent(_, _, event))
                            if event == libc::PTRACE_EVENT_EXEC =>
                        {
                            break
                        }
                        Ok(WaitStatus::PtraceEvent(..)) => ptrace::cont(child, None),
                        Ok(WaitStatus::Stopped(_, signal)) => ptrace::cont(child, Some(signal)),
                        Ok(other) => {
                            return Err(format!("the child ended before its execve: {other:?}"))
                        }
                        Err(e) => return Err(format!("waitpid: {e}")),
                    }
                    .map_err(|e| format!("PTRACE_CONT: {e}"))?;
                }
                // Let go; it stops again at once, untraced: a SIGSTOP queued
                // now (PTRACE_DETACH's own signal is dropped in an event stop
                // such as the exec's).
                kill(child, Signal::SIGSTOP).map_err(|e| format!("kill SIGSTOP: {e}"))?;
                ptrace::detach(child, None).map_err(|e| format!("PTRACE_DETACH: {e}"))?;
            }
            At::ExecCall => {
                // From system call to system call (PTRACE_SYSCALL), until
                // the entry of execve or execveat.
                ptrace::syscall(child, None).map_err(|e| format!("PTRACE_SYSCALL: {e}"))?;
                loop {
                    match waitpid(child, Some(WaitPidFlag::__WALL)) {
                        Ok(WaitStatus::PtraceSyscall(_)) => {
                            if entering_exec(child)? {
                                break;
                            }
                            ptrace::syscall(child, None)
                        }
                        Ok(WaitStatus::PtraceEvent(..)) => ptrace::syscall(child, None),
                        Ok(WaitStatus::Stopped(_, signal)) => ptrace::syscall(child, Some(signal)),
                        Ok(other) => {
                            return Err(format!("the child ended before its execve: {other:?}"))
                        }
                        Err(e) => return Err(format!("waitpid: {e}")),
                    }
                    .map_err(|e| format!("PTRACE_SYSCALL: {e}"))?;
                }
            }
        }
        Ok(child.as_raw())
    };
    match traced() {
        Ok(child) => held.pid = child,
        Err(why) => {
            return Err(Fail::new("the grader could not hold the runtime's child still").seen(why))
        }
    }
    let stopped = crate::poll(Duration::from_secs(5), || held.is_stopped().then_some(()));
    crate::ensure(stopped.is_some(), || {
        Fail::new("the runtime's child should be stopped").seen(crate::procfs::describe(held.pid))
    })?;
    Ok(held)
}

/// At a system-call stop of `pid`: is it the entry of execve or execveat?
fn entering_exec(pid: Pid) -> Result<bool, String> {
    let mut info = std::mem::MaybeUninit::<libc::ptrace_syscall_info>::zeroed();
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: PTRACE_GET_SYSCALL_INFO (Linux 5.3) writes at most `size`
    // bytes into `info`; the address argument is that size.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            size as *mut libc::c_void,
            info.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(format!(
            "PTRACE_GET_SYSCALL_INFO: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: zeroed, then filled by the kernel.
    let info = unsafe { info.assume_init() };
    if info.op != libc::PTRACE_SYSCALL_INFO_ENTRY {
        return Ok(false);
    }
    // SAFETY: `entry` is the union's member at an entry stop.
    let nr = unsafe { info.u.entry.nr } as libc::c_long;
    Ok(nr == libc::SYS_execve || nr == libc::SYS_execveat)
}

/// Is `child` in another PID namespace than `parent`?
fn in_a_container(parent: Pid, child: Pid) -> bool {
    let ns = |pid: Pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    ns(child).is_some() && ns(child) != ns(parent)
}

fn expect_stop(pid: Pid) -> Result<(), String> {
    match waitpid(pid, Some(WaitPidFlag::__WALL)) {
        Ok(WaitStatus::Stopped(..)) | Ok(WaitStatus::PtraceEvent(..)) => Ok(()),
        other => Err(format!("expected pid {pid} to stop, saw {other:?}")),
    }
}

impl Held {
    /// Let the child go on, and wait (at most `timeout`) for the runtime:
    /// how it ended, and its stdout and stderr.
    pub fn release(mut self, timeout: Duration) -> Result<(ExitStatus, String), Fail> {
        self.released = true;
        let child = Pid::from_raw(self.pid);
        match self.at {
            // Detached at the system call's entry, it makes the call.
            At::ExecCall => ptrace::detach(child, None).map_err(|e| {
                Fail::new("the grader could not let go of the runtime's child").seen(e)
            })?,
            At::Exec => kill(child, Signal::SIGCONT).map_err(|e| {
                Fail::new("the grader could not continue the runtime's child").seen(e)
            })?,
        }
        let ended = crate::poll(timeout, || self.runtime.try_wait().ok().flatten());
        let Some(status) = ended else {
            let _ = self.runtime.kill();
            let _ = self.runtime.wait();
            return Err(Fail::new("the runtime did not end once its child went on"));
        };
        let mut text = Vec::new();
        for reader in self.readers.drain(..) {
            text.extend(reader.join().unwrap_or_default());
        }
        Ok((status, String::from_utf8_lossy(&text).into_owned()))
    }

    /// The held child's pid inside its PID namespace (the last of `NSpid`).
    pub fn pid_inside(&self) -> Result<i32, Fail> {
        crate::procfs::nspid(self.pid)
            .and_then(|all| all.last().copied())
            .ok_or_else(|| Fail::new("cannot read the held child's NSpid"))
    }

    /// Fail unless the held child is still stopped (a check's exploit must
    /// not have set it going).
    pub fn still_held(&self) -> Outcome {
        crate::ensure(self.is_stopped(), || {
            Fail::new("the runtime's child should still be held (stopped)")
                .seen(crate::procfs::describe(self.pid))
        })
    }

    /// Stopped ('T'), or in a ptrace stop ('t').
    fn is_stopped(&self) -> bool {
        crate::procfs::stat(self.pid).is_some_and(|s| matches!(s.state, 'T' | 't'))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.released {
            // Never pid 0 (not held yet): kill(0) is our whole process group.
            if self.pid > 0 {
                let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
            let _ = self.runtime.kill();
            let _ = self.runtime.wait();
        }
    }
}
