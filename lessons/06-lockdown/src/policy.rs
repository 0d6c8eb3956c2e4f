//! The lockdown of one container, and where it is applied.
//!
//! Steps 01 and 03 each leave a hook for this step: one in the container's
//! init, once it is in its rootfs and before it starts the command; one in
//! the command's child, just before `execve`. The order inside matters:
//!
//! 1. (init) mask and make read-only the host's parts of `/proc`, `/sys`;
//!    make the cgroup namespace, now that the init is in its group: these
//!    need `CAP_SYS_ADMIN`, so they come first;
//! 2. (init) wipe the runtime's environment, close every inherited fd;
//! 3. drop capabilities (bounding set first);
//! 4. `no_new_privs`, then the seccomp filter: last, because it would deny
//!    the mounts above.
//!
//! The command, a child of the init, inherits 3 and 4; before its `execve`
//! it marks its own fds close-on-exec. An `exec`'d command has no init
//! above it: its hook does 3 and 4 itself, with the container's set.

use crate::{capabilities, environ, fds, masks, seccomp};
use caps::CapsHashSet;
use nix::errno::Errno;
use seccompiler::BpfProgram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// What a container is allowed.
#[derive(Debug, Clone)]
pub struct Policy {
    pub capabilities: CapsHashSet,
    /// Compiled before the fork; empty: `seccomp=unconfined`.
    pub seccomp: Vec<BpfProgram>,
    /// Docker's masked and read-only paths (not with `--privileged`).
    pub masks: bool,
    /// `no_new_privs` (not with `--privileged`).
    pub no_new_privs: bool,
    /// A new cgroup namespace, rooted at the container's own group.
    pub cgroup_namespace: bool,
}

impl Policy {
    /// Docker's defaults, with these capabilities.
    pub fn confined(capabilities: CapsHashSet) -> anyhow::Result<Policy> {
        Ok(Policy {
            seccomp: seccomp::filters(&capabilities)?,
            capabilities,
            masks: true,
            no_new_privs: true,
            cgroup_namespace: false,
        })
    }

    /// `--privileged`: every capability, no filter, nothing masked.
    pub fn privileged() -> Policy {
        Policy {
            capabilities: capabilities::supported(),
            seccomp: Vec::new(),
            masks: false,
            no_new_privs: false,
            cgroup_namespace: false,
        }
    }
}

static POLICY: OnceLock<Policy> = OnceLock::new();

/// Set in the process that applied the policy; its children (the command
/// under the init) inherit the flag along with what it stands for.
static APPLIED: AtomicBool = AtomicBool::new(false);

/// Apply `policy` to every container this process starts (or joins).
pub fn install(policy: Policy) {
    let _ = POLICY.set(policy);
    let _ = step03::init::BEFORE_INIT.set(before_init);
    let _ = step01::exec::BEFORE_EXEC.set(before_exec);
}

// ANCHOR: lock_down
/// Steps 3 and 4: capabilities, `no_new_privs`, seccomp.
fn lock_down(policy: &Policy) -> Result<(), (&'static str, Errno)> {
    capabilities::drop_to(&policy.capabilities)
        .map_err(|e| ("cannot drop capabilities (capset, PR_CAPBSET_DROP)", e))?;
    // With a filter, seccomp::install sets no_new_privs itself.
    if policy.no_new_privs && policy.seccomp.is_empty() {
        // SAFETY: prctl(2) PR_SET_NO_NEW_PRIVS reads no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(("cannot set no_new_privs (prctl)", Errno::last()));
        }
    }
    if !policy.seccomp.is_empty() {
        seccomp::install(&policy.seccomp)
            .map_err(|e| ("cannot install the seccomp filter (seccomp)", e))?;
    }
    APPLIED.store(true, Ordering::Relaxed);
    Ok(())
}
// ANCHOR_END: lock_down

// ANCHOR: before_init
/// In the container's init, inside its rootfs, before the command starts.
fn before_init(keep: &[std::os::fd::RawFd]) -> Result<(), (String, Errno)> {
    let Some(policy) = POLICY.get() else {
        return Ok(());
    };
    if policy.masks {
        masks::apply()?;
    }
    if policy.cgroup_namespace {
        // unshare(2) CLONE_NEWCGROUP: the cgroup namespace's root becomes
        // this process's groups, which the runtime made while we waited.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| ("cannot make the cgroup namespace (unshare)".to_string(), e))?;
    }
    environ::wipe().map_err(|e| ("cannot clean the init's environment".to_string(), e))?;
    fds::close_all_but(keep).map_err(|e| {
        (
            "cannot close inherited file descriptors (close_range)".to_string(),
            e,
        )
    })?;
    lock_down(policy).map_err(|(what, e)| (what.to_string(), e))
}
// ANCHOR_END: before_init

/// In the command's child, just before `execve`.
fn before_exec() -> Result<(), (&'static str, Errno)> {
    fds::mark_cloexec().map_err(|e| {
        (
            "cannot mark inherited file descriptors close-on-exec (close_range)",
            e,
        )
    })?;
    match POLICY.get() {
        Some(policy) if !APPLIED.load(Ordering::Relaxed) => lock_down(policy),
        _ => Ok(()),
    }
}
