//! Seccomp: the system calls a container may not make at all.
//!
//! Capabilities decide *who* may do a privileged thing; seccomp decides
//! which system calls reach the kernel at all. A seccomp filter is a small
//! BPF program the kernel runs on every system call of the process: it
//! sees the call's number and arguments and answers allow, or fail with an
//! errno. It is inherited by every child and can't be removed, only made
//! stricter; installing one needs `no_new_privs` (or `CAP_SYS_ADMIN`).
//!
//! Why both? Some calls are dangerous whatever the capabilities (the
//! keyrings, which are not namespaced: root in the container would read and
//! change host root's keys), some attack surface is better not reached at
//! all (`userfaultfd`, new namespaces with `unshare`, the new mount API),
//! and a capability given back with `--cap-add` should bring its calls
//! back too. So, like docker's default profile, the filter below denies a
//! call unless the container holds the capability that guards it.
//!
//! Like docker, `clone3` fails with `ENOSYS` rather than `EPERM`: its flags
//! are in memory a filter can't read, and `ENOSYS` makes glibc fall back to
//! `clone`, whose flags it can.
//!
//! Shell: `grep Seccomp /proc/self/status` (2 = a filter); docker's
//! profile: `docker run --security-opt seccomp=profile.json`.

use caps::{Capability, CapsHashSet};
use nix::errno::Errno;
use seccompiler::BpfProgram;

/// The flags of `clone` that make namespaces.
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

// ANCHOR: denied
/// System calls denied unless the container holds the capability (`None`:
/// denied always). From docker's default profile, the parts that matter.
pub fn denied() -> Vec<(&'static str, libc::c_long, Option<Capability>)> {
    // TODO(lesson-06): return the system calls a container must not make: each one's name, its number on this architecture (the kernel knows calls by number only), and the capability that gives it back to a container holding it (None: denied whatever it holds). The chapter's section Seccomp gives docker's reasons, family by family: the keyrings, a new kernel or kernel code, the kernel's log, files by handle, mounts and namespaces (the new mount API too), swap and quotas, bpf and perf events, userfaultfd, io_uring, the machine's clock, process accounting, reboot, the terminal hangup, and on x86-64 the I/O ports and four obsolete calls. Shell: docker's is `docker run --security-opt seccomp=profile.json`, the same list the other way round (what is allowed).
    // A call listed twice, or a number of another architecture, would
    // deny what you didn't mean: the numbers differ between x86-64 and
    // arm64, and some calls (iopl, _sysctl) exist only on one.
    todo!(
        "lesson-06: return the system calls a container must not make: each one's name, its number on this architecture (the kernel knows calls by number only), and the capability that gives it back to a container holding it (None: denied whatever it holds). The chapter's section Seccomp gives docker's reasons, family by family: the keyrings, a new kernel or kernel code, the kernel's log, files by handle, mounts and namespaces (the new mount API too), swap and quotas, bpf and perf events, userfaultfd, io_uring, the machine's clock, process accounting, reboot, the terminal hangup, and on x86-64 the I/O ports and four obsolete calls. Shell: docker's is `docker run --security-opt seccomp=profile.json`, the same list the other way round (what is allowed)."
    );
}
// ANCHOR_END: denied

fn arch() -> Result<seccompiler::TargetArch, seccompiler::BackendError> {
    std::env::consts::ARCH.try_into()
}

// ANCHOR: filters
/// The filters for a container holding `caps`, compiled to BPF before the
/// fork (compiling allocates; installing must not need to).
pub fn filters(caps: &CapsHashSet) -> anyhow::Result<Vec<BpfProgram>> {
    // TODO(lesson-06): return the programs to install, in order, for a container holding `caps`. Under them, each call of `denied()` whose capability is None or not in `caps` fails with EPERM, and every other call goes through, except: socket(2) for the family AF_VSOCK fails with EPERM (other families work); and without CAP_SYS_ADMIN in `caps`, clone(2) fails with EPERM when its flags hold any of NAMESPACE_FLAGS (a plain fork or thread works); and without CAP_SYS_ADMIN in `caps`, clone3(2) fails with ENOSYS whatever its arguments. Shell: `grep Seccomp /proc/self/status` says 2 once one is installed; `docker run --cap-add SYS_ADMIN` gives back the calls that capability guards.
    // Kernel facts: a filter sees a call's number and its six arguments as
    // raw values, never the memory they point to: clone3's flags are in a
    // struct, so it can't tell a thread from a new namespace; ENOSYS ("no
    // such call") makes the C library fall back to clone, whose flags it
    // can read. Conditions on one rule all hold together; several rules of
    // one call are alternatives. A filter is compiled for one architecture
    // (`arch()`), and it has one answer for the calls it matches: two
    // answers, two filters. Compile here, before the fork: it allocates.
    todo!(
        "lesson-06: return the programs to install, in order, for a container holding `caps`. Under them, each call of `denied()` whose capability is None or not in `caps` fails with EPERM, and every other call goes through, except: socket(2) for the family AF_VSOCK fails with EPERM (other families work); and without CAP_SYS_ADMIN in `caps`, clone(2) fails with EPERM when its flags hold any of NAMESPACE_FLAGS (a plain fork or thread works); and without CAP_SYS_ADMIN in `caps`, clone3(2) fails with ENOSYS whatever its arguments. Shell: `grep Seccomp /proc/self/status` says 2 once one is installed; `docker run --cap-add SYS_ADMIN` gives back the calls that capability guards."
    );
}
// ANCHOR_END: filters

// ANCHOR: install
/// Install `filters` in this process; every child inherits them.
pub fn install(filters: &[BpfProgram]) -> Result<(), Errno> {
    // TODO(lesson-06): when this returns, this process has no_new_privs set (from now on execve grants nothing: no setuid bit, no file capability) and runs under every program of `filters`, in their order; both are inherited by every child and kept across execve, and neither can ever be undone. The first failure is returned as the kernel's errno. Shell: `setpriv --no-new-privs CMD`; `grep -E 'NoNewPrivs|Seccomp' /proc/self/status` shows 1 and 2 afterwards.
    // Kernel facts: installing a filter needs no_new_privs, or
    // CAP_SYS_ADMIN (without either: EACCES); a filter once installed only
    // ever adds to those before it. Errors that carry no errno of their
    // own: `Errno::last()` is the last system call's. A library's call that
    // installs a filter may set no_new_privs itself, or may not: that it is
    // set when this returns is yours to make sure of.
    todo!(
        "lesson-06: when this returns, this process has no_new_privs set (from now on execve grants nothing: no setuid bit, no file capability) and runs under every program of `filters`, in their order; both are inherited by every child and kept across execve, and neither can ever be undone. The first failure is returned as the kernel's errno. Shell: `setpriv --no-new-privs CMD`; `grep -E 'NoNewPrivs|Seccomp' /proc/self/status` shows 1 and 2 afterwards."
    );
}
// ANCHOR_END: install

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_both_cap_sets() {
        let default: CapsHashSet = crate::capabilities::DEFAULT.into_iter().collect();
        assert_eq!(filters(&default).unwrap().len(), 2);
        let admin: CapsHashSet = [Capability::CAP_SYS_ADMIN].into_iter().collect();
        assert_eq!(filters(&admin).unwrap().len(), 1, "SYS_ADMIN may clone3");
    }

    #[test]
    fn every_denied_call_is_listed_once() {
        let list = denied();
        let mut numbers: Vec<_> = list.iter().map(|(_, nr, _)| *nr).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), list.len());
    }
}
