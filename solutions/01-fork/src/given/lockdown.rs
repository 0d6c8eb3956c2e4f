//! What later steps do in the child around its `execve`: step 06 locks the
//! container down here. In step 01 nothing sets [`LOCKDOWN`], and the
//! child runs your [`crate::exec::exec_child`] path alone.

use crate::exec::Prepared;
use crate::spawn::{ExecReport, Stage};
use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use std::ffi::{CStr, CString};

/// Set once per process; unset, nothing is done and your plain path runs.
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

/// The child's way to the command with the hooks of `lockdown` around each
/// stage: the same stages as step 01's, in the same order, each failure
/// reported the same way.
pub fn exec_locked_down(cmd: &Prepared, report: &ExecReport, lockdown: &dyn Lockdown) -> ! {
    crate::given::child::default_actions();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Before the first path is followed: a working directory of
    // `/proc/self/fd/7` goes wherever an inherited fd 7 leads.
    if let Err((what, errno)) = lockdown.seal(&report.fds()) {
        report.fail_setup(what, errno);
    }
    if let Some(dir) = &cmd.workdir {
        if let Err(errno) = nix::unistd::chdir(dir.as_c_str()) {
            report.fail(Stage::Chdir, errno);
        }
        if let Err((what, errno)) = lockdown.entered(dir) {
            report.fail_setup(&what, errno);
        }
    }
    let program = match cmd.find_program() {
        Ok(program) => program,
        Err(errno) => report.fail(Stage::Lookup, errno),
    };
    if let Err((what, errno)) = lockdown.before_exec() {
        report.fail_setup(what, errno);
    }
    let errno = lockdown.execve(&program, &cmd.argv, &cmd.envp, report);
    report.fail(Stage::Exec, errno)
}
