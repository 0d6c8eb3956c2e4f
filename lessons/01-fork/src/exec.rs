//! The child's side of the fork: from a copy of the runtime to the command.
//!
//! After `fork` the child is still the runtime: same code, same memory, same
//! blocked signals, same working directory, same open files. It becomes the
//! command with `execve(2)`: the kernel replaces the program in this process;
//! the pid, the parent and the open file descriptors (stdin, stdout,
//! stderr) stay. Whatever fails on the way, the child tells the parent
//! through the exec report ([`ExecReport`]) and ends there: it never
//! returns into the runtime's code.
//!
//! Given, in [`crate::given::child`]: [`Prepared`] (argv, envp and the
//! working directory as C strings, made before the fork, and the `PATH`
//! search on the command's own `PATH`), the reset of every signal's action,
//! and the terminal's hand-over for step 04's `-t`.

pub use crate::given::child::Prepared;
pub use crate::given::lockdown::{Lockdown, LOCKDOWN};

use crate::given::child::{default_actions, take_the_terminal};
use crate::spawn::{ExecReport, Stage};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{chdir, execve};

// ANCHOR: exec_child
/// In the child after `fork`: become the command. Never returns: either
/// `execve` replaces this program, or the child reports why not and exits.
pub fn exec_child(cmd: &Prepared, report: &ExecReport) -> ! {
    take_the_terminal();
    if let Some(lockdown) = LOCKDOWN.get() {
        crate::given::lockdown::exec_locked_down(cmd, report, *lockdown)
    }
    // TODO(lesson-01): become the command: it starts with every signal at its default action and none blocked, in `cmd.workdir` when one is given, running the program found on the command's own PATH with exactly `cmd.argv` and `cmd.envp`; any stage that fails is reported to the parent with its stage and errno
    // Kernel facts: a blocked mask and SIG_IGN survive execve (handlers
    // don't); the runtime blocked signals before the fork, and a Rust
    // program ignores SIGPIPE. `default_actions` (given) resets the
    // actions; the mask is yours. A directory change here moves only the
    // child. execve returns only when it failed, with the errno that says
    // why (ENOENT, EACCES, ENOEXEC...). The report ends the child for you.
    // Shell: `(cd DIR && exec env -i K=V... PROGRAM ARGS...)`.
    todo!(
        "lesson-01: become the command: it starts with every signal at its default action and none blocked, in `cmd.workdir` when one is given, running the program found on the command's own PATH with exactly `cmd.argv` and `cmd.envp`; any stage that fails is reported to the parent with its stage and errno"
    );
}
// ANCHOR_END: exec_child
