//! Inside the container: the runtime's small init, PID 1.
//!
//! The process `clone` makes is a copy of the runtime, already inside the new
//! namespaces. It finishes the set-up that can only be done from inside (the
//! mounts, the host name), then stays as the container's PID 1 while the
//! command runs as its child, PID 2, like `docker run --init` (tini).
//!
//! Why not make the command PID 1 itself? The kernel treats PID 1 of a
//! namespace specially:
//!
//! - it receives no signal it hasn't installed a handler for: a program that
//!   relies on SIGTERM's or SIGINT's default action (most do) can't be stopped
//!   with Ctrl-C or `docker stop` when it runs as PID 1;
//! - every orphan in the namespace is re-parented to it, and a program that
//!   doesn't expect children never reaps them: zombies pile up;
//! - when it exits, the kernel kills every other process in the namespace.
//!
//! minibox's init does all three right with step 01's supervisor: it blocks
//! the signals and forwards them, reaps every child, and exits with the
//! command's status, which takes the rest of the container with it.

use crate::{mounts, ContainerSpec};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use step01::exec::Prepared;
use step01::spawn::{self, errno_of, ExecReport};
use step01::status::{exit_code, RUNTIME_ERROR};
use step01::supervise::Supervisor;

pub use crate::given::setup::{become_root, exit, set_hostname, Gate};

// ANCHOR: container_init
/// The child's whole life: set up from inside, then be PID 1 until the
/// command ends. Never returns.
pub fn container_init(spec: &ContainerSpec, cmd: &Prepared, report: ExecReport, gate: Gate) -> ! {
    // TODO(lesson-02): when the command runs as PID 2: this process dies whenever the runtime does (even if the runtime died before this line), it has passed the gate only once the runtime opened it (the runtime gone instead: exit RUNTIME_ERROR, nothing reported), it leads a session of its own, it is root inside when `spec` has a user namespace, no mount it makes reaches the host, /proc is new when the PID namespace is, the host name is `spec.hostname` when the UTS namespace is new; any step that fails ends the container through the exec report, saying what failed; and this process exits with what being PID 1 returned
    // Kernel facts: the order matters. A parent-death signal asked for
    // after the parent died never comes (the gate's pipe closes then:
    // `wait` says so). Until the runtime wrote the maps, this process has
    // no ids in its user namespace, nor rights there. A mount made before
    // the mounts are private lands on the host too. /proc shows the PID
    // namespace of whoever mounts it. `ps` shows a process by its comm,
    // the runtime's name until changed: make it "minibox-init" (at most
    // 15 bytes).
    // BEGIN SOLUTION
    if let Err(errno) = die_with_parent() {
        report.fail_setup(
            "cannot tie the container to the runtime (prctl PR_SET_PDEATHSIG)",
            errno,
        );
    }
    if !gate.wait() {
        exit(RUNTIME_ERROR); // the runtime is gone or gave up: nothing to report to
    }
    if let Err(errno) = new_session() {
        report.fail_setup("cannot leave the caller's terminal (setsid)", errno);
    }
    if spec.namespaces.user {
        if let Err(errno) = become_root(spec) {
            report.fail_setup(
                "cannot become root in the user namespace (setresuid)",
                errno,
            );
        }
    }
    if let Err(errno) = mounts::make_private() {
        report.fail_setup(
            "cannot make the container's mounts private (mount / MS_REC|MS_PRIVATE)",
            errno,
        );
    }
    if spec.namespaces.pid {
        if let Err(errno) = mounts::mount_proc() {
            report.fail_setup("cannot mount /proc for the container", errno);
        }
    }
    if spec.namespaces.uts {
        if let Err(errno) = set_hostname(&spec.hostname) {
            report.fail_setup("cannot set the container's hostname (sethostname)", errno);
        }
    }
    // Name this process in `ps`: it is a copy of the runtime, and "minibox-init"
    // says what it does there. (comm is at most 15 bytes.)
    let _ = prctl::set_name(c"minibox-init");
    exit(run_as_init(cmd, report))
    // END SOLUTION
}
// ANCHOR_END: container_init

// ANCHOR: die_with_parent
/// If the runtime dies (even of SIGKILL), the container must not live on
/// without its supervisor.
pub fn die_with_parent() -> nix::Result<()> {
    // TODO(lesson-02): afterwards the kernel sends this process SIGKILL the moment its parent (the runtime) ends, however it ends
    // Kernel facts: a process can ask for a signal at its parent's death;
    // as PID 1, this process takes its whole PID namespace with it when it
    // dies. The request is not inherited by children, and is cleared by a
    // set-uid exec. Shell: `setpriv --pdeathsig KILL CMD`.
    // BEGIN SOLUTION
    // prctl(2) PR_SET_PDEATHSIG: the signal comes when the parent *thread*
    // exits (minibox has one). If the runtime died before this line, the gate
    // below notices: its pipe closes with no word.
    prctl::set_pdeathsig(Signal::SIGKILL)
    // END SOLUTION
}
// ANCHOR_END: die_with_parent

// ANCHOR: new_session
/// Leave the caller's terminal: the container's processes must not be able
/// to type into it.
///
/// A terminal belongs to one *session* (the processes a login or a terminal
/// window started), and is that session's *controlling terminal*: every
/// process of the session can open it as `/dev/tty`, whatever its fds 0 to
/// 2 are, and the kernel's `TIOCSTI` ioctl pushes bytes into its input
/// queue as if they were typed. The shell that reads the terminal next runs
/// them, as its user: root, who ran `minibox run`. The init is a clone of
/// the runtime, so it starts in the caller's session.
pub fn new_session() -> nix::Result<()> {
    // TODO(lesson-02): when this returns, the init leads a session of its own, which has no controlling terminal: /dev/tty opens nothing (ENXIO) for it and everything it starts. Shell: `setsid CMD`
    // The calling process must not lead a process group already (the
    // kernel refuses, EPERM): a clone of the runtime doesn't.
    // BEGIN SOLUTION
    // setsid(2): a new session and a new process group, both led by this
    // process, with no controlling terminal until one is made ours with
    // TIOCSCTTY (step 04's `-t` does that, with a terminal of its own).
    nix::unistd::setsid().map(drop)
    // END SOLUTION
}
// ANCHOR_END: new_session

// ANCHOR: run_as_init
/// Be PID 1: run the command as a child and supervise it; return the code
/// to exit with.
pub fn run_as_init(cmd: &Prepared, report: ExecReport) -> i32 {
    // TODO(lesson-02): afterwards the command has run as this process's child and ended; meanwhile every signal the runtime forwards here reached it, and every orphan the kernel re-parented here was reaped; the return value is the runtime's exit code for the command's status; a failure before the command starts is reported through `report`, later ones return RUNTIME_ERROR
    // Kernel facts: PID 1 gets no signal whose action is the default, so
    // only signals it takes itself are delivered; orphans of the PID
    // namespace become its children; when it exits the kernel kills the
    // rest of the namespace, so don't wait for them. The runtime sees the
    // exec only when every copy of the report's write end is closed: this
    // process's copy too. All of it is in step 01, already written: this
    // init is a runtime too. Shell: `tini -- CMD`.
    // BEGIN SOLUTION
    let supervisor = match Supervisor::start() {
        Ok(supervisor) => supervisor,
        Err(error) => report.fail_setup("cannot set up the container's init", errno_of(&error)),
    };
    let child = match spawn::spawn(cmd, &report) {
        Ok(child) => child,
        Err(error) => report.fail_setup("cannot start the command (fork)", errno_of(&error)),
    };
    // Our copy of the report pipe must close, or the runtime would wait for
    // its end-of-file forever: from now on only the command's exec closes it.
    drop(report);
    match supervisor.wait(child) {
        Ok(status) => exit_code(status),
        Err(_) => RUNTIME_ERROR,
    }
    // END SOLUTION
}
// ANCHOR_END: run_as_init
