//! The lockdown of one container, and where it is applied.
//!
//! Steps 01 and 03 each leave hooks for this step: one in the container's
//! init, once it is in its rootfs and before it starts the command; three
//! in a command's child (`run`'s and `exec`'s), around its `execve`. The
//! order inside matters:
//!
//! 1. (init) mask and make read-only the host's parts of `/proc`, `/sys`;
//!    make the cgroup namespace, now that the init is in its group: these
//!    need `CAP_SYS_ADMIN`, so they come first;
//! 2. (init) wipe the runtime's environment, close every inherited fd;
//! 3. drop capabilities (bounding set first);
//! 4. `no_new_privs`, then the seccomp filter: last, because it would deny
//!    the mounts above.
//!
//! The command, a child of the init, inherits 3 and 4. In its child, before
//! it follows any path, every fd but the exec report's pipe is closed; just
//! before `execve` an `exec`'d command (which has no init above it) does 3
//! and 4 itself, with the container's set; and the `execve` goes through a
//! sealed copy of a tiny program ([`crate::trampoline`]), so the runtime's
//! binary is never what `/proc/self/exe` names when the container's program
//! starts.

use crate::{capabilities, environ, fds, masks, seccomp, trampoline};
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
    /// Start the container's programs through a sealed copy of a tiny
    /// program, never from the runtime's binary (not with `--privileged`:
    /// such a container can overwrite the host's binaries anyway, its
    /// root is the host's root).
    pub seal_exe: bool,
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
            seal_exe: true,
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
            seal_exe: false,
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
    let _ = step01::exec::LOCKDOWN.set(&InTheChild);
}

/// Whether this process applied a policy (or is the child of one that did).
pub fn applied() -> bool {
    APPLIED.load(Ordering::Relaxed)
}

// ANCHOR: lock_down
/// Steps 3 and 4: capabilities, `no_new_privs`, seccomp.
pub fn lock_down(policy: &Policy) -> Result<(), (&'static str, Errno)> {
    // TODO(lesson-06): when this returns Ok, this process holds exactly policy.capabilities (every set, the bounding one included), has no_new_privs set if policy.no_new_privs, runs under every filter of policy.seccomp (none: no filter at all, and then no_new_privs only as asked), and `applied()` says true, so a command's child that inherits all this doesn't do it again. A failure is returned as what was being done and the kernel's errno, and leaves `applied()` false. Shell: `setpriv --bounding-set ... --no-new-privs CMD` under a seccomp profile.
    // Kernel facts: dropping capabilities needs CAP_SETPCAP and capset(2),
    // which a filter could deny; installing a filter needs no_new_privs
    // (or CAP_SYS_ADMIN, about to go). Your `capabilities` and `seccomp`
    // modules have the pieces.
    // BEGIN SOLUTION
    capabilities::drop_to(&policy.capabilities)
        .map_err(|e| ("cannot drop capabilities (capset, PR_CAPBSET_DROP)", e))?;
    if policy.no_new_privs {
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
    // END SOLUTION
}
// ANCHOR_END: lock_down

// ANCHOR: before_init
/// In the container's init, inside its rootfs, before the command starts:
/// the hook step 03's init calls, with the descriptors it still needs.
pub fn before_init(keep: &[std::os::fd::RawFd]) -> Result<(), (String, Errno)> {
    let Some(policy) = POLICY.get() else {
        return Ok(());
    };
    // TODO(lesson-06): when this returns Ok, this process (the container's init, which never execs) has: docker's masked and read-only paths in place if policy.masks; a cgroup namespace of its own, rooted at the groups it is in now, if policy.cgroup_namespace; an environment whose bytes are all zeros where /proc/self/environ reads them, and is not dumpable; `minibox-init` as its command line; no fd from 3 up but those of `keep`; and `lock_down(policy)` applied. The first failure stops it, returned as what was being done and the kernel's errno. Shell: `mount --bind /dev/null /proc/kcore ...; unshare -C; exec env -i setpriv ... CMD`.
    // Kernel facts: mount(2) and unshare(2) need CAP_SYS_ADMIN, and the
    // filter denies them: whatever mounts or unshares comes before the
    // lockdown. close_all_but needs the list of fds to keep, and nothing
    // after it may open one that stays. The pieces are in `masks`, `fds`,
    // `environ` (given) and `lock_down` above.
    // BEGIN SOLUTION
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
    environ::retitle("minibox-init").map_err(|e| {
        (
            "cannot hide the runtime's command line (/proc/self/stat)".to_string(),
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    fds::close_all_but(keep).map_err(|e| {
        (
            "cannot close inherited file descriptors (close_range)".to_string(),
            e,
        )
    })?;
    lock_down(policy).map_err(|(what, e)| (what.to_string(), e))
    // END SOLUTION
}
// ANCHOR_END: before_init

/// Step 01's hooks in a command's child.
struct InTheChild;

impl step01::exec::Lockdown for InTheChild {
    fn seal(&self, keep: &[std::os::fd::RawFd]) -> Result<(), (&'static str, Errno)> {
        fds::close_all_but(keep)
            .map_err(|e| ("cannot close inherited file descriptors (close_range)", e))
    }

    fn entered(&self, dir: &std::ffi::CStr) -> Result<(), (String, Errno)> {
        if fds::cwd_below_root() {
            return Ok(());
        }
        Err((
            format!("the working directory {dir:?} leads outside the container's root: refused"),
            Errno::EPERM,
        ))
    }

    fn before_exec(&self) -> Result<(), (&'static str, Errno)> {
        match POLICY.get() {
            Some(policy) if !applied() => lock_down(policy),
            _ => Ok(()),
        }
    }

    fn execve(
        &self,
        program: &std::ffi::CStr,
        argv: &[std::ffi::CString],
        envp: &[std::ffi::CString],
        _report: &step01::spawn::ExecReport,
    ) -> Errno {
        if POLICY.get().is_some_and(|p| p.seal_exe) {
            return trampoline::execve(program, argv, envp);
        }
        // execve(2), as step 01's: --privileged, or no policy at all.
        match nix::unistd::execve(program, argv, envp) {
            Err(errno) => errno,
            Ok(never) => match never {},
        }
    }
}
