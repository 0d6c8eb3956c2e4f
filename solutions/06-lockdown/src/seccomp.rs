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
    // BEGIN SOLUTION
    use Capability::*;
    let mut list = vec![
        // The keyrings are not namespaced: the host's root keys.
        ("add_key", libc::SYS_add_key, None),
        ("keyctl", libc::SYS_keyctl, None),
        ("request_key", libc::SYS_request_key, None),
        // A new kernel, or kernel code.
        ("kexec_load", libc::SYS_kexec_load, None),
        ("kexec_file_load", libc::SYS_kexec_file_load, None),
        ("init_module", libc::SYS_init_module, Some(CAP_SYS_MODULE)),
        ("finit_module", libc::SYS_finit_module, Some(CAP_SYS_MODULE)),
        (
            "delete_module",
            libc::SYS_delete_module,
            Some(CAP_SYS_MODULE),
        ),
        // The kernel's log: addresses and the host's messages.
        ("syslog", libc::SYS_syslog, Some(CAP_SYSLOG)),
        // "Shocker": a file of the host, by handle, from any fd of its fs.
        (
            "open_by_handle_at",
            libc::SYS_open_by_handle_at,
            Some(CAP_DAC_READ_SEARCH),
        ),
        (
            "name_to_handle_at",
            libc::SYS_name_to_handle_at,
            Some(CAP_SYS_ADMIN),
        ),
        // Mounts, namespaces, and the new mount API.
        ("mount", libc::SYS_mount, Some(CAP_SYS_ADMIN)),
        ("umount2", libc::SYS_umount2, Some(CAP_SYS_ADMIN)),
        ("pivot_root", libc::SYS_pivot_root, Some(CAP_SYS_ADMIN)),
        ("unshare", libc::SYS_unshare, Some(CAP_SYS_ADMIN)),
        ("setns", libc::SYS_setns, Some(CAP_SYS_ADMIN)),
        ("fsopen", libc::SYS_fsopen, Some(CAP_SYS_ADMIN)),
        ("fsconfig", libc::SYS_fsconfig, Some(CAP_SYS_ADMIN)),
        ("fsmount", libc::SYS_fsmount, Some(CAP_SYS_ADMIN)),
        ("fspick", libc::SYS_fspick, Some(CAP_SYS_ADMIN)),
        ("move_mount", libc::SYS_move_mount, Some(CAP_SYS_ADMIN)),
        ("open_tree", libc::SYS_open_tree, Some(CAP_SYS_ADMIN)),
        ("swapon", libc::SYS_swapon, Some(CAP_SYS_ADMIN)),
        ("swapoff", libc::SYS_swapoff, Some(CAP_SYS_ADMIN)),
        ("quotactl", libc::SYS_quotactl, Some(CAP_SYS_ADMIN)),
        ("bpf", libc::SYS_bpf, Some(CAP_SYS_ADMIN)),
        (
            "perf_event_open",
            libc::SYS_perf_event_open,
            Some(CAP_SYS_ADMIN),
        ),
        (
            "fanotify_init",
            libc::SYS_fanotify_init,
            Some(CAP_SYS_ADMIN),
        ),
        (
            "lookup_dcookie",
            libc::SYS_lookup_dcookie,
            Some(CAP_SYS_ADMIN),
        ),
        // Page faults handled by the container: a tool for kernel exploits.
        ("userfaultfd", libc::SYS_userfaultfd, None),
        // io_uring: a second system-call interface, whose operations no
        // seccomp filter sees, and a source of kernel exploits; docker's
        // profile (since 2023) and Google's kernels refuse it.
        ("io_uring_setup", libc::SYS_io_uring_setup, None),
        ("io_uring_enter", libc::SYS_io_uring_enter, None),
        ("io_uring_register", libc::SYS_io_uring_register, None),
        // The machine's clock, accounting, reboot.
        ("settimeofday", libc::SYS_settimeofday, Some(CAP_SYS_TIME)),
        ("clock_settime", libc::SYS_clock_settime, Some(CAP_SYS_TIME)),
        ("clock_adjtime", libc::SYS_clock_adjtime, Some(CAP_SYS_TIME)),
        ("acct", libc::SYS_acct, Some(CAP_SYS_PACCT)),
        ("reboot", libc::SYS_reboot, Some(CAP_SYS_BOOT)),
        ("vhangup", libc::SYS_vhangup, Some(CAP_SYS_TTY_CONFIG)),
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        ("iopl", libc::SYS_iopl, Some(CAP_SYS_RAWIO)),
        ("ioperm", libc::SYS_ioperm, Some(CAP_SYS_RAWIO)),
        ("uselib", libc::SYS_uselib, None),
        ("ustat", libc::SYS_ustat, None),
        ("sysfs", libc::SYS_sysfs, None),
        ("_sysctl", libc::SYS__sysctl, None),
    ]);
    list
    // END SOLUTION
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
    // BEGIN SOLUTION
    use anyhow::Context;
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };
    use std::collections::BTreeMap;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr, guard) in denied() {
        if guard.is_none_or(|cap| !caps.contains(&cap)) {
            rules.insert(nr, Vec::new()); // no condition: every call matches
        }
    }
    let may_make_namespaces = caps.contains(&Capability::CAP_SYS_ADMIN);
    if !may_make_namespaces {
        // clone(flags, ...): denied if any namespace flag is set. Rules of
        // one call are OR'ed: one rule per flag.
        let mut clone = Vec::new();
        for flag in NAMESPACE_FLAGS {
            let flag = flag as u64;
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            clone.push(SeccompRule::new(vec![condition])?);
        }
        rules.insert(libc::SYS_clone, clone);
    }
    // socket(AF_VSOCK, ...): vsock, the channel between a VM and its host,
    // has no network namespaces: `--network none` would not hold on a VM.
    // docker's profile allows socket only for the other families.
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            libc::AF_VSOCK as u64,
        )?])?],
    );
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .context("cannot build the seccomp filter")?;
    let mut programs: Vec<BpfProgram> = vec![deny.try_into()?];
    if !may_make_namespaces {
        let clone3 = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch()?,
        )?;
        programs.push(clone3.try_into()?);
    }
    Ok(programs)
    // END SOLUTION
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
    // BEGIN SOLUTION
    // SAFETY: prctl(2) PR_SET_NO_NEW_PRIVS reads no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Errno::last());
    }
    for filter in filters {
        // seccomp(SECCOMP_SET_MODE_FILTER): the kernel copies the program;
        // EFAULT/EINVAL for a bad one, EACCES without no_new_privs.
        seccompiler::apply_filter(filter).map_err(|_| Errno::last())?;
    }
    Ok(())
    // END SOLUTION
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

    // BEGIN REFERENCE ONLY
    /// The bench gives crun and runc this filter as an OCI section
    /// (xtask/src/bench/seccomp.rs): the same names, or the comparison is
    /// not side by side. The reference's list only: the learner's weighs
    /// the x86-64 rows and five calls of its own.
    #[test]
    fn the_bench_gives_its_peers_this_filter() {
        let bench = include_str!("../../../xtask/src/bench/seccomp.rs");
        let list = bench
            .split_once("pub const DENIED: &[&str] = &[")
            .and_then(|(_, rest)| rest.split_once("];"))
            .map(|(list, _)| list)
            .expect("DENIED in xtask/src/bench/seccomp.rs");
        let mut theirs: Vec<&str> = list
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix("\","))
            .collect();
        if !cfg!(target_arch = "x86_64") {
            let x86_only = ["iopl", "ioperm", "uselib", "ustat", "sysfs", "_sysctl"];
            theirs.retain(|name| !x86_only.contains(name));
        }
        let mut ours: Vec<&str> = denied().iter().map(|(name, _, _)| *name).collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "xtask/src/bench/seccomp.rs's DENIED");
    }
    // END REFERENCE ONLY

    #[test]
    fn every_denied_call_is_listed_once() {
        let list = denied();
        let mut numbers: Vec<_> = list.iter().map(|(_, nr, _)| *nr).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), list.len());
    }
}
