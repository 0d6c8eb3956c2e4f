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
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::{read, write, Gid, Uid};
use std::os::fd::OwnedFd;
use step01::exec::Prepared;
use step01::spawn::{self, errno_of, ExecReport};
use step01::status::{exit_code, RUNTIME_ERROR};
use step01::supervise::Supervisor;

/// A one-shot gate: the child waits at it until the runtime has finished the
/// outside half of the set-up (the user namespace maps).
pub struct Gate {
    read: OwnedFd,
    write: OwnedFd,
}

impl Gate {
    pub fn new() -> anyhow::Result<Self> {
        use anyhow::Context;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("cannot create the start gate (pipe2)")?;
        Ok(Gate { read, write })
    }

    /// In the runtime: let the child go on.
    pub fn open(self) {
        let Gate {
            read,
            write: writer,
        } = self;
        drop(read);
        let _ = write(&writer, b"go");
    }

    /// In the child: wait until the runtime opens the gate. `false` if the
    /// runtime went away instead (its end closed without a word).
    pub fn wait(self) -> bool {
        let Gate {
            read: reader,
            write,
        } = self;
        drop(write); // or we would hold the pipe open ourselves
        let mut byte = [0u8; 2];
        loop {
            match read(&reader, &mut byte) {
                Ok(n) => return n > 0,
                Err(Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }
}

// ANCHOR: container_init
/// The child's whole life: set up from inside, then be PID 1 until the
/// command ends. Never returns.
pub fn container_init(spec: &ContainerSpec, cmd: &Prepared, report: ExecReport, gate: Gate) -> ! {
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
}
// ANCHOR_END: container_init

pub fn exit(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process without running the runtime's exit
    // handlers, which belong to the parent's copy of the program.
    unsafe { nix::libc::_exit(code) }
}

// ANCHOR: die_with_parent
/// If the runtime dies (even of SIGKILL), the container must not live on
/// without its supervisor.
pub fn die_with_parent() -> nix::Result<()> {
    // TODO(lesson-02): ask the kernel to send this process SIGKILL when its parent (the runtime) dies: prctl(PR_SET_PDEATHSIG, SIGKILL)
    // nix: `nix::sys::prctl::set_pdeathsig`. As PID 1, this process takes the
    // whole PID namespace with it when it dies.
    // BEGIN SOLUTION
    // prctl(2) PR_SET_PDEATHSIG: the signal comes when the parent *thread*
    // exits (minibox has one). If the runtime died before this line, the gate
    // below notices: its pipe closes with no word.
    prctl::set_pdeathsig(Signal::SIGKILL)
    // END SOLUTION
}
// ANCHOR_END: die_with_parent

/// After the maps are written: take uid and gid 0 inside. A process that
/// created a user namespace keeps its old ids, which may not be mapped (root
/// outside, say, when root inside is 100000 outside).
pub fn become_root(spec: &ContainerSpec) -> nix::Result<()> {
    let root_gid = Gid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)?;
    if spec.user_mapping.is_some_and(|m| m.privileged) {
        // Drop the host's supplementary groups; unprivileged writers had
        // to deny setgroups, so there it is not possible (nor needed).
        nix::unistd::setgroups(&[])?;
    }
    let root = Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root)
}

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

// ANCHOR: set_hostname
pub fn set_hostname(name: &str) -> nix::Result<()> {
    // TODO(lesson-02): set the host name of this UTS namespace: sethostname(name)
    // BEGIN SOLUTION
    // sethostname(2) changes the name of the caller's UTS namespace only; the
    // host keeps its own. Shell: `unshare --uts sh -c 'hostname box; hostname'`.
    nix::unistd::sethostname(name)
    // END SOLUTION
}
// ANCHOR_END: set_hostname

// ANCHOR: run_as_init
/// Be PID 1: run the command as a child and supervise it; return the code
/// to exit with.
pub fn run_as_init(cmd: &Prepared, report: ExecReport) -> i32 {
    // TODO(lesson-02): be PID 1: Supervisor::start(), spawn::spawn(cmd, &report), drop the report (your copy of the pipe), then return exit_code of supervisor.wait(child)
    // All of it is step 01's, already written: this init is a runtime too.
    // If something fails, report it with `report.fail_setup(what, errno)`
    // before the drop (`errno_of(&error)` finds the Errno in step 01's
    // anyhow errors), or return RUNTIME_ERROR after it.
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
