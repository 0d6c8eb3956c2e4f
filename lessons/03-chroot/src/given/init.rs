//! Inside the container: step 02's init, with a root filesystem of its own.

use crate::{rootfs, Spec};
use step01::exec::Prepared;
use step01::spawn::ExecReport;
use step01::status::RUNTIME_ERROR;
use step02::init::{
    become_root, die_with_parent, exit, new_session, run_as_init, set_hostname, Gate,
};

/// The child's whole life: set up from inside (now with the rootfs), then be
/// PID 1 until the command ends. Never returns.
pub fn container_init(spec: &Spec, cmd: &Prepared, report: ExecReport, gate: Gate) -> ! {
    container_init_with(spec, cmd, report, gate, || Ok(()))
}

// ANCHOR: container_init
/// [`container_init`], with `make_rootfs` run once the mounts are private and
/// before the rootfs is entered: step 04 mounts the image's layers there.
pub fn container_init_with(
    spec: &Spec,
    cmd: &Prepared,
    report: ExecReport,
    gate: Gate,
    make_rootfs: impl FnOnce() -> Result<(), (String, nix::Error)>,
) -> ! {
    let container = &spec.container;
    if let Err(errno) = die_with_parent() {
        report.fail_setup(
            "cannot tie the container to the runtime (prctl PR_SET_PDEATHSIG)",
            errno,
        );
    }
    if !gate.wait() {
        exit(RUNTIME_ERROR);
    }
    if let Err(errno) = new_session() {
        report.fail_setup("cannot leave the caller's terminal (setsid)", errno);
    }
    if container.namespaces.user {
        if let Err(errno) = become_root(container) {
            report.fail_setup(
                "cannot become root in the user namespace (setresgid, setgroups, setresuid)",
                errno,
            );
        }
    }
    // Step 02: nothing mounted from here on may reach the host.
    if let Err(errno) = step02::mounts::make_private() {
        report.fail_setup(
            "cannot make the container's mounts private (mount / MS_REC|MS_PRIVATE)",
            errno,
        );
    }
    if let Err((what, errno)) = make_rootfs() {
        report.fail_setup(&what, errno);
    }
    // The root switch: the rootfs, its mounts, entered, read-only or not.
    if let Err((what, errno)) = rootfs::switch_root(spec) {
        report.fail_setup(&what, errno);
    }
    if container.namespaces.uts {
        if let Err(errno) = set_hostname(&container.hostname) {
            report.fail_setup("cannot set the container's hostname (sethostname)", errno);
        }
    }
    let _ = nix::sys::prctl::set_name(c"minibox-init");
    if let Some(lock_down) = BEFORE_INIT.get() {
        if let Err((what, errno)) = lock_down(&report.fds()) {
            report.fail_setup(&what, errno);
        }
    }
    exit(run_as_init(cmd, report))
}
// ANCHOR_END: container_init

/// What later steps do in the container's init once it is inside its
/// rootfs, just before it starts the command: step 06 masks parts of
/// `/proc` and `/sys`, drops capabilities and installs seccomp here. Set
/// once per process; unset, nothing is done.
pub static BEFORE_INIT: std::sync::OnceLock<BeforeInit> = std::sync::OnceLock::new();

/// A [`BEFORE_INIT`] hook, given the descriptors init still needs (the
/// exec report's pipe): `Err((what failed, errno))` stops the container.
pub type BeforeInit = fn(&[std::os::fd::RawFd]) -> Result<(), (String, nix::Error)>;
