//! # Step 02: namespaces
//!
//! The command now runs inside new namespaces (docker's defaults: PID, mount,
//! UTS, IPC, network, cgroup; a user namespace with `--userns`), as PID 2
//! under the runtime's small init.
//!
//! The path of `minibox run -- CMD`, on top of step 01:
//!
//! 1. [`cli`] reads the flags; [`hostname::validate`] and friends refuse bad
//!    input before anything exists;
//! 2. step 01's supervisor blocks signals; [`launch::launch`] starts a child
//!    in the new namespaces ([`namespaces::clone_flags`],
//!    [`namespaces::clone_child`]) and, outside, gives its user namespace
//!    its maps ([`userns::write_maps`]); then the runtime opens the gate;
//! 3. inside, [`init::container_init`] makes the mounts private
//!    ([`mounts`]), mounts `/proc`, sets the host name, and runs the command
//!    as PID 2 ([`init::run_as_init`]);
//! 4. outside, step 01's exec report and supervisor wait for it all.
//!
//! What the learner writes: [`namespaces`], [`launch`], [`userns`],
//! [`mounts`], [`init`]. Everything else is given, under `src/given/`
//! (re-exported here, so the paths stay `step02::cli`, `step02::hostname`).

mod given;
pub mod init;
pub mod launch;
pub mod mounts;
pub mod namespaces;
pub mod userns;

pub use given::{cli, hostname};

use namespaces::{Cloned, Namespaces};
use step01::exec::Prepared;
use step01::spawn::ExecReport;
use step01::supervise::Supervisor;
use userns::UserMapping;

/// Everything `run` needs to start a container, checked.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The command, its environment and working directory (step 01).
    pub process: step01::RunSpec,
    pub namespaces: Namespaces,
    /// The UTS name, when the container has its own UTS namespace.
    pub hostname: String,
    /// With a user namespace: how its ids map to the host's.
    pub user_mapping: Option<UserMapping>,
}

// ANCHOR: run
/// Run a container; return the code the runtime should exit with.
pub fn run(spec: &ContainerSpec) -> anyhow::Result<i32> {
    start(spec, |cmd, report, gate| {
        init::container_init(spec, cmd, report, gate)
    })
}

/// The runtime's side of a container, with `inside` as the child's whole
/// life (later steps bring their own; it never returns).
pub fn start(
    spec: &ContainerSpec,
    inside: impl FnOnce(&Prepared, ExecReport, init::Gate) -> std::convert::Infallible,
) -> anyhow::Result<i32> {
    start_with(spec, None, inside, |_| Ok(()), |_| Ok(()))
}

/// [`start`], with two hooks, each given the container's pid (its init, as
/// the host sees it): `ready` while the child still waits at the gate, its
/// namespaces made but nothing run yet (step 05 plugs in its network);
/// `started` once the command runs (step 04 records it). An error from
/// either ends the container. `cgroup`: the directory (open) of a cgroup2
/// group to start the child in, where the kernel can (step 06's).
pub fn start_with(
    spec: &ContainerSpec,
    cgroup: Option<std::os::fd::RawFd>,
    inside: impl FnOnce(&Prepared, ExecReport, init::Gate) -> std::convert::Infallible,
    ready: impl FnOnce(nix::unistd::Pid) -> anyhow::Result<()>,
    started: impl FnOnce(nix::unistd::Pid) -> anyhow::Result<()>,
) -> anyhow::Result<i32> {
    let prepared = Prepared::new(&spec.process)?;
    let supervisor = Supervisor::start()?;
    let report = ExecReport::new()?;
    let gate = init::Gate::new()?;
    let child = match launch::launch(spec, cgroup).map_err(|error| {
        let flags = namespaces::clone_flags(&spec.namespaces);
        if spec.namespaces.user && !flags.contains(nix::sched::CloneFlags::CLONE_NEWUSER) {
            error.context(
                "--userns asks for a user namespace, but the clone flags have no CLONE_NEWUSER",
            )
        } else {
            error
        }
    })? {
        // `inside` never returns: `Infallible` has no value to return.
        #[allow(unreachable_code)]
        Cloned::Child => match inside(&prepared, report, gate) {},
        Cloned::Parent(child) => child,
    };
    if let Err(error) = ready(child) {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(error);
    }
    gate.open();
    report.wait_for_exec(child, &prepared)?;
    if let Err(error) = started(child) {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = supervisor.wait(child);
        return Err(error);
    }
    let status = supervisor.wait(child)?;
    Ok(step01::status::exit_code(status))
}
// ANCHOR_END: run
