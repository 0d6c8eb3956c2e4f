//! Library-level checks of step 06's privileges: the capability sets, the
//! seccomp filter, and the order the init applies them in. Each calls one
//! of the learner's functions in a helper process of its own (see
//! `grader::helper`), which may drop capabilities, install a filter or
//! unshare a private mount namespace without touching the grader, and
//! reports what the kernel shows afterwards (`/proc/self/status`,
//! `mountinfo`, the errno of a harmless call). Dangerous calls (reboot,
//! kexec, modules...) are never made: the deny list itself is inspected.

use caps::{CapSet, Capability, CapsHashSet};
use grader::helper::{die, errno_of, expect_said, said, say};
use grader::{ensure, Check, Ctx, Fail, Outcome, Requires};
use nix::errno::Errno;
use seccompiler::BpfProgram;
use step06::policy::Policy;
use step06::{capabilities, masks, policy, seccomp};

/// This module's checks, in the order the chapter meets them.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "drop_to_leaves_only_the_set",
            points: 2,
            section: "dropping-them-in-order",
            hint: "After drop_to(keep) the kernel shows keep, and nothing else, in CapEff, CapPrm and CapBnd, and 0 in CapInh and CapAmb, even when the caller had something inheritable and ambient, and even when keep lacks CAP_SETPCAP: the bounding set can only be cut while that capability is still effective.",
            more: "capabilities(7), prctl(2) PR_CAPBSET_DROP and PR_CAP_AMBIENT_CLEAR_ALL, capset(2). The caps crate: caps::read, caps::drop, caps::clear, caps::set with CapSet::Bounding, Ambient, Inheritable, Effective, Permitted; capabilities::supported() for the ones to consider. Errno::last() for an error without an errno.",
            shape: "1. bounding = read(bounding set). 2. for each cap of supported() not in keep but in bounding: drop it from the bounding set. 3. clear ambient. 4. clear inheritable. 5. set effective = keep. 6. set permitted = keep. 7. each error -> the last errno.",
            requires: Requires::Nothing,
            run: drop_to_leaves_only_the_set,
        },
        Check {
            name: "the_deny_list_has_dockers_calls",
            points: 1,
            section: "seccomp",
            hint: "denied() lists the calls docker's profile refuses, each with its number on this architecture and the capability that gives it back (None: no capability does): the keyrings, kexec and the module calls, syslog, open_by_handle_at, the mount and namespace calls and the new mount API, swap, bpf and perf_event_open, userfaultfd, io_uring, the clock, acct, reboot. None of these is ever called by the grader: the list is read.",
            more: "libc::SYS_<name> gives a call's number on the architecture being built; caps::Capability::CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYSLOG, CAP_DAC_READ_SEARCH, CAP_SYS_TIME, CAP_SYS_PACCT, CAP_SYS_BOOT, CAP_SYS_TTY_CONFIG, CAP_SYS_RAWIO. The chapter's table in the section Seccomp gives each family's reason and capability; #[cfg(target_arch = \"x86_64\")] for the calls only x86-64 has.",
            shape: "1. a list of (name, number, guard) for each family of the chapter's table. 2. the keyrings, kexec, userfaultfd, io_uring: guard None. 3. mounts, namespaces, the new mount API, swap, bpf, perf: CAP_SYS_ADMIN; modules CAP_SYS_MODULE; the clock CAP_SYS_TIME; ... 4. on x86-64 only, extend it with the I/O port and obsolete calls. 5. return it.",
            requires: Requires::Nothing,
            run: the_deny_list_has_dockers_calls,
        },
        Check {
            name: "the_filters_answer_as_dockers_profile",
            points: 2,
            section: "the-filter",
            hint: "Under filters(docker's 14), installed by the grader, harmless calls get EPERM: keyctl, add_key, io_uring_setup, userfaultfd, mount (of a tmpfs, in a private mount namespace), unshare, socket(AF_VSOCK) and clone with CLONE_NEWUSER, while socket(AF_INET) and a plain clone work; clone3 gets ENOSYS. With CAP_SYS_ADMIN added, mount, unshare, clone with CLONE_NEWUSER and clone3 work again; the keyrings, io_uring and userfaultfd stay denied.",
            more: "seccompiler: SeccompFilter::new(rules, mismatch action, match action, arch()), a BTreeMap from call number to Vec<SeccompRule> (an empty Vec: every call matches), SeccompRule::new(conditions), SeccompCondition::new(argument index, SeccompCmpArgLen, SeccompCmpOp::MaskedEq or Eq, value), SeccompAction::Allow and SeccompAction::Errno; a SeccompFilter turns into a BpfProgram with try_into(). libc::AF_VSOCK, libc::SYS_clone, libc::SYS_clone3, libc::EPERM, libc::ENOSYS.",
            shape: "1. rules = a map. 2. for each (name, nr, guard) of denied(): if guard is None or not in caps, rules[nr] = [] (always). 3. without CAP_SYS_ADMIN: rules[clone] = one rule per namespace flag: argument 0 masked by the flag equals the flag. 4. rules[socket] = [argument 0 equals AF_VSOCK]. 5. program 1 = filter(rules, allow on mismatch, EPERM on match). 6. without CAP_SYS_ADMIN: program 2 = filter({clone3: []}, allow, ENOSYS). 7. return the programs, compiled.",
            requires: Requires::Nothing,
            run: the_filters_answer_as_dockers_profile,
        },
        Check {
            name: "install_sets_no_new_privs_and_each_filter",
            points: 1,
            section: "seccomp",
            hint: "After install(filters) (here two small filters of the grader's, one answering EDOM to getpgid, the other ERANGE to getsid, in a process without CAP_SYS_ADMIN), the kernel shows NoNewPrivs 1 and Seccomp 2, and both filters answer.",
            more: "prctl(2) PR_SET_NO_NEW_PRIVS (libc::prctl, or nix::sys::prctl::set_no_new_privs), seccomp(2) SECCOMP_SET_MODE_FILTER: seccompiler::apply_filter installs one BpfProgram. Errno::last() for an error without an errno.",
            shape: "1. set no_new_privs; failure -> the errno. 2. for each filter, in order: install it; failure -> the errno. 3. Ok.",
            requires: Requires::Nothing,
            run: install_sets_no_new_privs_and_each_filter,
        },
        Check {
            name: "lock_down_applies_the_policy",
            points: 1,
            section: "the-order-inside-the-init",
            hint: "lock_down(policy) leaves the policy's capabilities in every set, no_new_privs only if the policy asks, the policy's filters (none for seccomp=unconfined or --privileged), and applied() true. Three policies are tried: docker's defaults with a filter of the grader's, the same without a filter, and --privileged's; and a fourth whose filter the kernel refuses: lock_down must return the error and leave applied() false.",
            more: "Your capabilities::drop_to and seccomp::install; prctl(2) PR_SET_NO_NEW_PRIVS for a policy with no_new_privs but no filter; the APPLIED flag (AtomicBool::store, Ordering). Each failure as (what was being done, errno).",
            shape: "1. drop_to(policy.capabilities), or (\"cannot drop capabilities\", errno). 2. if policy.no_new_privs: set it. 3. if policy.seccomp is not empty: install it. 4. APPLIED = true. 5. Ok.",
            requires: Requires::Nothing,
            run: lock_down_applies_the_policy,
        },
        Check {
            name: "before_init_runs_in_order",
            points: 2,
            section: "the-order-inside-the-init",
            hint: "before_init(keep), in a helper with a private mount namespace and docker's policy, must leave the masked and read-only paths mounted, a new cgroup namespace, an environment of zeros, a non-dumpable process titled minibox-init, only the fds of keep from 3 up, and the capabilities and filter applied. The masks and the unshare need CAP_SYS_ADMIN, which the lockdown removes (and its filter denies mount and unshare): a wrong order fails with EPERM. Under --privileged's policy nothing is masked and the cgroup namespace stays. It uses masks.rs and fds.rs too.",
            more: "masks::apply, nix::sched::unshare with CloneFlags::CLONE_NEWCGROUP, environ::wipe and environ::retitle (given), fds::close_all_but(keep), lock_down(policy); POLICY.get() holds the policy (None: nothing to do). Each failure as (what was being done, errno); an io::Error's raw_os_error gives its errno.",
            shape: "1. policy = POLICY.get(), or Ok. 2. if policy.masks: masks::apply()?. 3. if policy.cgroup_namespace: unshare a cgroup namespace. 4. wipe the environment. 5. retitle as \"minibox-init\". 6. close every fd but keep. 7. lock_down(policy), last.",
            requires: Requires::Nothing,
            run: before_init_runs_in_order,
        },
        Check {
            name: "resolve_takes_the_flags_as_docker_does",
            points: 2,
            section: "opting-out",
            hint: "resolve(add, drop, privileged) makes docker's set: the default 14, less what is dropped, plus what is added; --cap-drop ALL keeps only the added, --cap-add ALL everything but the dropped, ALL added beats ALL dropped, a name added beats the same dropped; --privileged gives all. Tried in a runtime whose own bounding set lacks SYS_BOOT and AUDIT_WRITE: adding SYS_BOOT is an error naming it, and no set may hold either.",
            more: "capabilities::supported() (this runtime's own), capabilities::parse for a name, capabilities::DEFAULT; CapsHashSet's difference, intersection, extend; anyhow::bail! for the refusal. Names compare to ALL with eq_ignore_ascii_case.",
            shape: "1. all = supported(). 2. added, dropped = the parsed names that are not ALL (an error -> return it). 3. an added name not in all -> error naming it. 4. privileged -> all. 5. ALL added -> all less dropped; else ALL dropped -> added; else DEFAULT less dropped, plus added. 6. return that set within all.",
            requires: Requires::Nothing,
            run: resolve_takes_the_flags_as_docker_does,
        },
    ]
}

/// The helpers of this module's checks (see `grader::helper`); `false`:
/// not one of them.
pub fn helper(kind: &str, args: &[String]) -> bool {
    let arg = args.first().map(String::as_str).unwrap_or_default();
    match kind {
        "privileges-resolve" => resolve_helper(),
        "privileges-drop-to" => drop_to_helper(arg),
        "privileges-filters" => filters_helper(arg),
        "privileges-install" => install_helper(),
        "privileges-lock-down" => lock_down_helper(arg),
        "privileges-before-init" => before_init_helper(arg),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------
// Capability sets, as masks and names.

fn mask_of(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |mask, cap| mask | cap.bitmask())
}

fn hex(mask: u64) -> String {
    format!("{mask:016x}")
}

/// `CHOWN,KILL,...`, by bit.
fn names(mask: u64) -> String {
    let mut known: Vec<Capability> = caps::all()
        .into_iter()
        .filter(|cap| mask & cap.bitmask() != 0)
        .collect();
    known.sort_by_key(|cap| cap.index());
    let list: Vec<String> = known
        .iter()
        .map(|cap| cap.to_string().trim_start_matches("CAP_").to_string())
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(",")
    }
}

fn docker_set() -> CapsHashSet {
    capabilities::DEFAULT.into_iter().collect()
}

fn bit(cap: Capability) -> u64 {
    cap.bitmask()
}

/// A capability mask the helper said, against the one expected: the
/// difference named.
fn expect_mask(what: &str, expected: u64, seen: &str) -> Outcome {
    let Ok(mask) = u64::from_str_radix(seen, 16) else {
        return Err(Fail::new(what.to_string())
            .expected(format!("{} ({})", hex(expected), names(expected)))
            .seen(seen));
    };
    ensure(mask == expected, || {
        Fail::new(what.to_string())
            .expected(format!("{} ({})", hex(expected), names(expected)))
            .seen(format!(
                "{seen}: missing {}; extra {}",
                names(expected & !mask),
                names(mask & !expected)
            ))
    })
}

/// A field of this process's `/proc/self/status` (empty: no such line).
fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| Some(l.strip_prefix(field)?.strip_prefix(':')?.trim().to_string()))
        .unwrap_or_default()
}

fn say_status(fields: &[&str]) {
    for field in fields {
        say(field, status(field));
    }
}

/// A filter of the grader's own: `nr` answers `errno`, the rest is allowed.
fn grader_filter(calls: &[libc::c_long], errno: i32) -> BpfProgram {
    let arch = std::env::consts::ARCH
        .try_into()
        .unwrap_or_else(|e| die("seccompiler's architecture", format!("{e:?}")));
    let rules = calls.iter().map(|nr| (*nr, Vec::new())).collect();
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(errno as u32),
        arch,
    )
    .unwrap_or_else(|e| die("the grader's filter", e));
    filter
        .try_into()
        .unwrap_or_else(|e: seccompiler::BackendError| die("the grader's filter", e))
}

/// `ok`, or the errno's name, of a raw system call's result.
fn raw(rc: libc::c_long) -> String {
    if rc < 0 {
        format!("{:?}", Errno::last())
    } else {
        "ok".into()
    }
}

/// In the helper: a mount namespace of its own, every mount private, so
/// that nothing mounted here is seen anywhere else.
fn private_mount_namespace() {
    use nix::mount::{mount, MsFlags};
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
        die("unshare(CLONE_NEWNS)", e);
    }
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        die("mount --make-rprivate /", e);
    }
}

// ---------------------------------------------------------------------
// drop_to

fn drop_to_helper(variant: &str) {
    use Capability::*;
    // Something inheritable and ambient first, as a runtime started by a
    // program that passes capabilities on would have.
    let inheritable: CapsHashSet = [CAP_CHOWN, CAP_NET_ADMIN].into_iter().collect();
    if let Err(e) = caps::set(None, CapSet::Inheritable, &inheritable) {
        die("capset inheritable", e);
    }
    if let Err(e) = caps::raise(None, CapSet::Ambient, CAP_NET_ADMIN) {
        die("PR_CAP_AMBIENT_RAISE", e);
    }
    let keep: CapsHashSet = match variant {
        "docker" => docker_set(),
        _ => [CAP_CHOWN, CAP_NET_RAW].into_iter().collect(),
    };
    say("result", errno_of(capabilities::drop_to(&keep)));
    say_status(&["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]);
}

fn drop_to_leaves_only_the_set(_: &Ctx) -> Outcome {
    let all = mask_of(&capabilities::supported());
    for (variant, keep, what) in [
        (
            "docker",
            mask_of(&docker_set()) & all,
            "drop_to(docker's 14)",
        ),
        (
            "small",
            bit(Capability::CAP_CHOWN) | bit(Capability::CAP_NET_RAW),
            "drop_to({CHOWN, NET_RAW}), a set without CAP_SETPCAP",
        ),
    ] {
        let text = grader::helper::run(what, "privileges-drop-to", &[variant])?;
        ensure(said(&text, "result") == "ok", || {
            Fail::new(format!(
                "{what}, in a process with every capability, should return Ok"
            ))
            .seen(format!(
                "{}; the sets were then:\n{}",
                said(&text, "result"),
                text.trim()
            ))
        })?;
        for field in ["CapEff", "CapPrm", "CapBnd"] {
            expect_mask(
                &format!("{what}: {field} in /proc/self/status"),
                keep,
                &said(&text, field),
            )?;
        }
        for field in ["CapInh", "CapAmb"] {
            expect_mask(
                &format!("{what}: {field}, after a caller that had CHOWN and NET_ADMIN inheritable and NET_ADMIN ambient"),
                0,
                &said(&text, field),
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// denied

/// What the list must hold: name, number, guard, why.
fn required() -> Vec<(&'static str, libc::c_long, Option<Capability>, &'static str)> {
    use Capability::*;
    let keys = "the keyrings are not namespaced";
    let kernel = "a new kernel, or code in the kernel";
    let mounts = "mounts and namespaces";
    let api = "the new mount API: mount by other calls";
    let time = "the machine's clock";
    vec![
        ("add_key", libc::SYS_add_key, None, keys),
        ("keyctl", libc::SYS_keyctl, None, keys),
        ("request_key", libc::SYS_request_key, None, keys),
        ("kexec_load", libc::SYS_kexec_load, None, kernel),
        ("kexec_file_load", libc::SYS_kexec_file_load, None, kernel),
        (
            "init_module",
            libc::SYS_init_module,
            Some(CAP_SYS_MODULE),
            kernel,
        ),
        (
            "finit_module",
            libc::SYS_finit_module,
            Some(CAP_SYS_MODULE),
            kernel,
        ),
        (
            "delete_module",
            libc::SYS_delete_module,
            Some(CAP_SYS_MODULE),
            kernel,
        ),
        (
            "syslog",
            libc::SYS_syslog,
            Some(CAP_SYSLOG),
            "the kernel's log",
        ),
        (
            "open_by_handle_at",
            libc::SYS_open_by_handle_at,
            Some(CAP_DAC_READ_SEARCH),
            "Shocker",
        ),
        ("mount", libc::SYS_mount, Some(CAP_SYS_ADMIN), mounts),
        ("umount2", libc::SYS_umount2, Some(CAP_SYS_ADMIN), mounts),
        (
            "pivot_root",
            libc::SYS_pivot_root,
            Some(CAP_SYS_ADMIN),
            mounts,
        ),
        ("unshare", libc::SYS_unshare, Some(CAP_SYS_ADMIN), mounts),
        ("setns", libc::SYS_setns, Some(CAP_SYS_ADMIN), mounts),
        ("fsopen", libc::SYS_fsopen, Some(CAP_SYS_ADMIN), api),
        ("fsconfig", libc::SYS_fsconfig, Some(CAP_SYS_ADMIN), api),
        ("fsmount", libc::SYS_fsmount, Some(CAP_SYS_ADMIN), api),
        ("fspick", libc::SYS_fspick, Some(CAP_SYS_ADMIN), api),
        ("move_mount", libc::SYS_move_mount, Some(CAP_SYS_ADMIN), api),
        ("open_tree", libc::SYS_open_tree, Some(CAP_SYS_ADMIN), api),
        ("swapon", libc::SYS_swapon, Some(CAP_SYS_ADMIN), "swap"),
        ("swapoff", libc::SYS_swapoff, Some(CAP_SYS_ADMIN), "swap"),
        ("bpf", libc::SYS_bpf, Some(CAP_SYS_ADMIN), "a large surface"),
        (
            "perf_event_open",
            libc::SYS_perf_event_open,
            Some(CAP_SYS_ADMIN),
            "a large surface",
        ),
        (
            "userfaultfd",
            libc::SYS_userfaultfd,
            None,
            "a tool for kernel exploits",
        ),
        (
            "io_uring_setup",
            libc::SYS_io_uring_setup,
            None,
            "io_uring: what it does, no filter sees",
        ),
        (
            "io_uring_enter",
            libc::SYS_io_uring_enter,
            None,
            "io_uring: what it does, no filter sees",
        ),
        (
            "io_uring_register",
            libc::SYS_io_uring_register,
            None,
            "io_uring: what it does, no filter sees",
        ),
        (
            "settimeofday",
            libc::SYS_settimeofday,
            Some(CAP_SYS_TIME),
            time,
        ),
        (
            "clock_settime",
            libc::SYS_clock_settime,
            Some(CAP_SYS_TIME),
            time,
        ),
        (
            "clock_adjtime",
            libc::SYS_clock_adjtime,
            Some(CAP_SYS_TIME),
            time,
        ),
        (
            "acct",
            libc::SYS_acct,
            Some(CAP_SYS_PACCT),
            "process accounting to a file",
        ),
        (
            "reboot",
            libc::SYS_reboot,
            Some(CAP_SYS_BOOT),
            "the machine's reboot",
        ),
    ]
}

/// Calls every container needs: never in the list.
fn needed() -> Vec<(&'static str, libc::c_long)> {
    vec![
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("openat", libc::SYS_openat),
        ("close", libc::SYS_close),
        ("execve", libc::SYS_execve),
        ("exit_group", libc::SYS_exit_group),
        ("mmap", libc::SYS_mmap),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("socket", libc::SYS_socket),
        ("wait4", libc::SYS_wait4),
        ("prctl", libc::SYS_prctl),
        ("capset", libc::SYS_capset),
    ]
}

fn guard_name(guard: Option<Capability>) -> String {
    guard.map_or("None".into(), |cap| format!("Some({cap:?})"))
}

fn the_deny_list_has_dockers_calls(_: &Ctx) -> Outcome {
    let list = grader::todo::call("seccomp::denied()", seccomp::denied)?;
    let listed: Vec<&str> = list.iter().map(|(name, _, _)| *name).collect();
    for (name, nr, guard, why) in required() {
        let Some((_, seen_nr, seen_guard)) = list.iter().find(|(n, _, _)| *n == name) else {
            return Err(Fail::new(format!("denied() should list {name} ({why})"))
                .expected(format!("(\"{name}\", {nr}, {})", guard_name(guard)))
                .seen(format!(
                    "{} calls listed: {}",
                    listed.len(),
                    listed.join(", ")
                )));
        };
        ensure(*seen_nr == nr, || {
            Fail::new(format!(
                "{name}'s number on this architecture (the kernel knows calls by number)"
            ))
            .expected(nr)
            .seen(seen_nr)
        })?;
        ensure(*seen_guard == guard, || {
            Fail::new(format!(
                "the capability that gives {name} back, as docker's profile has it"
            ))
            .expected(guard_name(guard))
            .seen(guard_name(*seen_guard))
        })?;
    }
    for (name, nr) in needed() {
        ensure(!list.iter().any(|(_, n, _)| *n == nr), || {
            let why = if name == "clone3" {
                "clone3 is answered ENOSYS by a filter of its own, not EPERM"
            } else {
                "every container needs it"
            };
            Fail::new(format!(
                "denied() must not list {name} (number {nr}): {why}"
            ))
            .seen(listed.join(", "))
        })?;
    }
    let mut numbers: Vec<libc::c_long> = list.iter().map(|(_, nr, _)| *nr).collect();
    numbers.sort_unstable();
    numbers.dedup();
    ensure(numbers.len() == list.len(), || {
        Fail::new("each call listed once (one number, one guard)").seen(listed.join(", "))
    })
}

// ---------------------------------------------------------------------
// filters

/// `clone(flags)` as a raw system call, like fork: the child leaves at once.
fn clone_raw(flags: libc::c_long) -> String {
    // SAFETY: clone(2) without a new stack is fork: the child runs on a
    // copy of this one and does nothing but _exit; single-threaded.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_long,
            0,
            0,
            0,
            0,
        )
    };
    reap(pid)
}

fn reap(pid: libc::c_long) -> String {
    if pid == 0 {
        // SAFETY: the child: leave without running anything of the parent's.
        unsafe { libc::_exit(0) };
    }
    let answer = raw(pid);
    if pid > 0 {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    }
    answer
}

/// `struct clone_args`, version 0 (64 bytes): linux/sched.h.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

fn clone3_plain() -> String {
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3(2) with no stack and no flags is fork; the child only
    // calls _exit. The struct outlives the call.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    reap(pid)
}

fn socket_of(family: libc::c_int) -> String {
    // SAFETY: socket(2) reads no memory of ours; the fd is closed at once.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
    if fd >= 0 {
        // SAFETY: the fd was just made, and is ours alone.
        unsafe { libc::close(fd) };
    }
    raw(fd as libc::c_long)
}

fn filters_helper(variant: &str) {
    // First a mount namespace of its own: the mount tried below, if the
    // filter lets it through, stays in it.
    private_mount_namespace();
    let mut caps = docker_set();
    if variant == "admin" {
        caps.insert(Capability::CAP_SYS_ADMIN);
    }
    let programs = match seccomp::filters(&caps) {
        Ok(programs) => programs,
        Err(e) => {
            say("filters", format!("error: {e:#}"));
            return;
        }
    };
    // The controls, before any filter: what this kernel itself answers
    // (a kernel without clone3, or with user namespaces turned off).
    say(
        "control_clone_newuser",
        clone_raw(libc::CLONE_NEWUSER as libc::c_long),
    );
    say("control_clone3", clone3_plain());
    // Installed by the grader, as the kernel takes them: this check is
    // about the rules, not about install().
    // SAFETY: prctl(2) PR_SET_NO_NEW_PRIVS reads no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        die("PR_SET_NO_NEW_PRIVS", Errno::last());
    }
    for (i, program) in programs.iter().enumerate() {
        if let Err(e) = seccompiler::apply_filter(program) {
            say("filters", format!("the kernel refused program {i}: {e}"));
            return;
        }
    }
    say("filters", "installed");
    // Each call with arguments the kernel itself refuses, where it can:
    // if the filter lets one through, nothing happens but an errno.
    // SAFETY (all below): system calls with invalid arguments or null
    // pointers the kernel checks; no memory of ours is written.
    say(
        "keyctl",
        raw(unsafe { libc::syscall(libc::SYS_keyctl, 9999, 0, 0, 0, 0) }),
    );
    say(
        "add_key",
        raw(unsafe {
            libc::syscall(
                libc::SYS_add_key,
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
                0,
                0,
            )
        }),
    );
    say(
        "io_uring_setup",
        raw(unsafe { libc::syscall(libc::SYS_io_uring_setup, 0, std::ptr::null::<u8>()) }),
    );
    say(
        "userfaultfd",
        raw(unsafe { libc::syscall(libc::SYS_userfaultfd, !0) }),
    );
    say(
        "mount",
        errno_of(nix::mount::mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )),
    );
    say(
        "unshare",
        errno_of(nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)),
    );
    say("socket_vsock", socket_of(libc::AF_VSOCK));
    say("socket_inet", socket_of(libc::AF_INET));
    say(
        "clone_newuser",
        clone_raw(libc::CLONE_NEWUSER as libc::c_long),
    );
    say("clone_plain", clone_raw(0));
    say("clone3", clone3_plain());
}

fn the_filters_answer_as_dockers_profile(_: &Ctx) -> Outcome {
    let denied = [
        ("keyctl", "EPERM"),
        ("add_key", "EPERM"),
        ("io_uring_setup", "EPERM"),
        ("userfaultfd", "EPERM"),
        ("socket_vsock", "EPERM"),
        ("socket_inet", "ok"),
        ("clone_plain", "ok"),
    ];
    let text = grader::helper::run("filters(docker's 14)", "privileges-filters", &["docker"])?;
    let mut want = vec![("filters", "installed")];
    want.extend(denied);
    want.extend([
        ("mount", "EPERM"),
        ("unshare", "EPERM"),
        ("clone_newuser", "EPERM"),
        ("clone3", "ENOSYS"),
    ]);
    expect_said(
        "under filters(docker's 14), each call's answer (ok: it went through)",
        &text,
        &want,
    )?;
    let text = grader::helper::run(
        "filters(docker's 14 and SYS_ADMIN)",
        "privileges-filters",
        &["admin"],
    )?;
    // Given back, these answer as the kernel did before any filter.
    let (newuser, clone3) = (
        said(&text, "control_clone_newuser"),
        said(&text, "control_clone3"),
    );
    let mut want = vec![("filters", "installed")];
    want.extend(denied);
    want.extend([
        ("mount", "ok"),
        ("unshare", "ok"),
        ("clone_newuser", newuser.as_str()),
        ("clone3", clone3.as_str()),
    ]);
    expect_said(
        "under filters(docker's 14 and SYS_ADMIN), each call's answer: CAP_SYS_ADMIN gives back what it guards",
        &text,
        &want,
    )
}

// ---------------------------------------------------------------------
// install

fn install_helper() {
    // As in a container: without CAP_SYS_ADMIN, a filter needs
    // no_new_privs first.
    if let Err(e) = caps::drop(None, CapSet::Effective, Capability::CAP_SYS_ADMIN) {
        die("drop CAP_SYS_ADMIN from the effective set", e);
    }
    let programs = [
        grader_filter(&[libc::SYS_getpgid], libc::EDOM),
        grader_filter(&[libc::SYS_getsid], libc::ERANGE),
    ];
    say("result", errno_of(seccomp::install(&programs)));
    say_status(&["NoNewPrivs", "Seccomp", "Seccomp_filters"]);
    // SAFETY: getpgid(2) and getsid(2) of this process read nothing of ours.
    say(
        "getpgid",
        raw(unsafe { libc::syscall(libc::SYS_getpgid, 0) }),
    );
    say("getsid", raw(unsafe { libc::syscall(libc::SYS_getsid, 0) }));
}

fn install_sets_no_new_privs_and_each_filter(_: &Ctx) -> Outcome {
    let text = grader::helper::run("install(two filters)", "privileges-install", &[])?;
    let mut want = vec![
        ("result", "ok"),
        ("NoNewPrivs", "1"),
        ("Seccomp", "2"),
        ("getpgid", "EDOM"),
        ("getsid", "ERANGE"),
    ];
    // (Seccomp_filters: Linux 5.9 and later.)
    if !said(&text, "Seccomp_filters").is_empty() {
        want.push(("Seccomp_filters", "2"));
    }
    expect_said(
        "after install of two filters (getpgid -> EDOM, getsid -> ERANGE), what /proc/self/status and the calls show",
        &text,
        &want,
    )
}

// ---------------------------------------------------------------------
// lock_down

fn lock_down_helper(variant: &str) {
    let mut policy = Policy::privileged();
    if variant != "privileged" {
        policy.capabilities = docker_set();
        policy.no_new_privs = true;
    }
    if variant == "confined" {
        policy.seccomp = vec![grader_filter(&[libc::SYS_getpgid], libc::EDOM)];
    }
    if variant == "broken" {
        // A program the kernel refuses (EINVAL): an opcode classic BPF
        // doesn't have. The install fails; nothing else is wrong.
        let bad = seccompiler::sock_filter {
            code: 0xffff,
            jt: 0,
            jf: 0,
            k: 0,
        };
        policy.seccomp = vec![vec![bad]];
    }
    let result = match policy::lock_down(&policy) {
        Ok(()) => "ok".to_string(),
        Err((what, errno)) => format!("{what}: {errno:?}"),
    };
    say("result", result);
    say_status(&["CapEff", "CapBnd", "CapInh", "NoNewPrivs", "Seccomp"]);
    // SAFETY: getpgid(2) reads nothing of ours.
    say(
        "getpgid",
        raw(unsafe { libc::syscall(libc::SYS_getpgid, 0) }),
    );
    say("applied", policy::applied());
}

fn lock_down_applies_the_policy(_: &Ctx) -> Outcome {
    let all = mask_of(&capabilities::supported());
    let docker = mask_of(&docker_set()) & all;
    for (variant, what, caps, no_new_privs, seccomp, getpgid) in [
        (
            "confined",
            "lock_down(docker's 14, no_new_privs, a filter answering EDOM to getpgid)",
            docker,
            "1",
            "2",
            "EDOM",
        ),
        (
            "unconfined",
            "lock_down(docker's 14, no_new_privs, no filter: seccomp=unconfined)",
            docker,
            "1",
            "0",
            "ok",
        ),
        (
            "privileged",
            "lock_down(every capability, no no_new_privs, no filter: --privileged)",
            all,
            "0",
            "0",
            "ok",
        ),
    ] {
        let text = grader::helper::run(what, "privileges-lock-down", &[variant])?;
        expect_said(&format!("{what}: the result"), &text, &[("result", "ok")])?;
        for field in ["CapEff", "CapBnd"] {
            expect_mask(&format!("{what}: {field}"), caps, &said(&text, field))?;
        }
        expect_said(
            &format!("{what}: what /proc/self/status and getpgid show, and applied()"),
            &text,
            &[
                ("CapInh", "0000000000000000"),
                ("NoNewPrivs", no_new_privs),
                ("Seccomp", seccomp),
                ("getpgid", getpgid),
                ("applied", "true"),
            ],
        )?;
    }
    // A policy whose filter the kernel refuses: an error, and applied()
    // stays false (a command's child would otherwise skip its lockdown).
    let what = "lock_down(docker's 14, no_new_privs, a filter the kernel refuses: EINVAL)";
    let text = grader::helper::run(what, "privileges-lock-down", &["broken"])?;
    let result = said(&text, "result");
    ensure(
        !result.is_empty() && result != "ok" && result != "(nothing)",
        || {
            Fail::new(format!(
                "{what} should return Err((what was being done, the errno))"
            ))
            .expected("result: an error")
            .seen(&result)
        },
    )?;
    expect_said(
        &format!("{what}: applied() afterwards"),
        &text,
        &[("applied", "false")],
    )
}

// ---------------------------------------------------------------------
// before_init

/// How many mounts `/proc/self/mountinfo` has at each of `paths`, and
/// whether the last of them is read-only.
fn mounts_at(paths: &[&str]) -> Vec<(usize, bool)> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    paths
        .iter()
        .map(|path| {
            let at: Vec<&str> = table
                .lines()
                .filter(|l| l.split(' ').nth(4) == Some(*path))
                .collect();
            let read_only = at.last().is_some_and(|l| {
                l.split(' ')
                    .nth(5)
                    .is_some_and(|o| o.split(',').any(|f| f == "ro"))
            });
            (at.len(), read_only)
        })
        .collect()
}

fn existing(paths: &[&'static str]) -> Vec<&'static str> {
    paths
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(p).exists())
        .collect()
}

fn before_init_helper(variant: &str) {
    private_mount_namespace();
    let masked = existing(&masks::MASKED);
    let read_only = existing(&masks::READ_ONLY);
    let masked_before = mounts_at(&masked);
    let read_only_before = mounts_at(&read_only);
    let cgroup = || std::fs::read_link("/proc/self/ns/cgroup").unwrap_or_default();
    let cgroup_before = cgroup();
    // Two descriptors from 3 up, as the init inherits them: 7 must go, 9
    // is one the init needs.
    let null = std::fs::File::open("/dev/null").unwrap_or_else(|e| die("open /dev/null", e));
    for fd in [7, 9] {
        // SAFETY: dup2(2) onto fds this process doesn't use; the copies
        // are not close-on-exec, as an inherited fd isn't.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) } != fd {
            die("dup2", Errno::last());
        }
    }
    drop(null);
    let mut lockdown = Policy::privileged();
    if variant == "confined" {
        lockdown.capabilities = docker_set();
        lockdown.no_new_privs = true;
        lockdown.masks = true;
        lockdown.cgroup_namespace = true;
        // The part of docker's filter that matters for the order.
        lockdown.seccomp = vec![grader_filter(
            &[libc::SYS_mount, libc::SYS_umount2, libc::SYS_unshare],
            libc::EPERM,
        )];
    }
    policy::install(lockdown);
    let result = match policy::before_init(&[9]) {
        Ok(()) => "ok".to_string(),
        Err((what, errno)) => format!("{what}: {errno:?}"),
    };
    say("result", result);
    let grew = |paths: &[&str], before: &[(usize, bool)], read_only: bool| -> String {
        let list: Vec<&str> = paths
            .iter()
            .zip(mounts_at(paths))
            .zip(before)
            .filter(|((_, (now, ro)), (then, _))| now > then && (!read_only || *ro))
            .map(|((path, _), _)| *path)
            .collect();
        if list.is_empty() {
            "none".into()
        } else {
            list.join(",")
        }
    };
    say("masked", grew(&masked, &masked_before, false));
    say("read_only", grew(&read_only, &read_only_before, true));
    say(
        "cgroupns",
        if cgroup() == cgroup_before {
            "the same"
        } else {
            "new"
        },
    );
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    let text = environ.iter().filter(|b| **b != 0).count();
    say(
        "environ",
        if text == 0 {
            "zeros".to_string()
        } else {
            format!("{text} bytes of text")
        },
    );
    say(
        "dumpable",
        nix::sys::prctl::get_dumpable().map_or("?".into(), |d| d.to_string()),
    );
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    say(
        "cmdline",
        String::from_utf8_lossy(&cmdline).trim_end_matches('\0'),
    );
    for fd in [7, 9] {
        // SAFETY: fcntl(2) F_GETFD only asks whether the fd is open.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        say(&format!("fd{fd}"), if open { "open" } else { "closed" });
    }
    say_status(&["CapEff", "NoNewPrivs", "Seccomp"]);
    say("applied", policy::applied());
}

fn before_init_runs_in_order(_: &Ctx) -> Outcome {
    let all = mask_of(&capabilities::supported());
    let docker = mask_of(&docker_set()) & all;
    let masked = existing(&masks::MASKED).join(",");
    let read_only = existing(&masks::READ_ONLY).join(",");
    let or_none = |list: &str| {
        if list.is_empty() {
            "none".to_string()
        } else {
            list.to_string()
        }
    };
    let (masked, read_only) = (or_none(&masked), or_none(&read_only));
    for (variant, what, caps, expected) in [
        (
            "confined",
            "before_init under docker's policy (masks, a cgroup namespace, docker's 14, a filter denying mount and unshare)",
            docker,
            [
                ("masked", masked.as_str()),
                ("read_only", read_only.as_str()),
                ("cgroupns", "new"),
                ("NoNewPrivs", "1"),
                ("Seccomp", "2"),
            ],
        ),
        (
            "privileged",
            "before_init under --privileged's policy",
            all,
            [
                ("masked", "none"),
                ("read_only", "none"),
                ("cgroupns", "the same"),
                ("NoNewPrivs", "0"),
                ("Seccomp", "0"),
            ],
        ),
    ] {
        let text = grader::helper::run(what, "privileges-before-init", &[variant])?;
        expect_said(&format!("{what}: the result"), &text, &[("result", "ok")])?;
        let mut want = expected.to_vec();
        want.extend([
            ("environ", "zeros"),
            ("dumpable", "false"),
            ("cmdline", "minibox-init"),
            ("fd7", "closed"),
            ("fd9", "open"),
            ("applied", "true"),
        ]);
        expect_said(&format!("{what}: what the kernel shows afterwards"), &text, &want)?;
        expect_mask(&format!("{what}: CapEff"), caps, &said(&text, "CapEff"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------
// resolve

/// (case, --cap-add, --cap-drop, --privileged)
const RESOLVE: &[(&str, &[&str], &[&str], bool)] = &[
    ("default", &[], &[], false),
    (
        "add_and_drop",
        &["SYS_ADMIN", "net_admin"],
        &["CHOWN"],
        false,
    ),
    ("prefixed", &["cap_sys_ptrace"], &[], false),
    ("only_added", &["NET_RAW"], &["ALL"], false),
    ("all_but", &["all"], &["SYS_ADMIN"], false),
    ("all_and_all", &["ALL"], &["ALL"], false),
    ("added_and_dropped", &["CHOWN"], &["CHOWN"], false),
    ("privileged", &[], &[], true),
    ("drop_one_it_lacks", &[], &["SYS_BOOT"], false),
    ("add_one_it_lacks", &["SYS_BOOT"], &[], false),
    ("bad_name", &[], &["NOT_A_CAP"], false),
];

fn resolve_helper() {
    // This runtime's own bounding set without two capabilities, as a
    // runtime started in a sandbox would have: SYS_BOOT (not one of
    // docker's 14) and AUDIT_WRITE (one of them).
    for cap in [Capability::CAP_SYS_BOOT, Capability::CAP_AUDIT_WRITE] {
        if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
            die("PR_CAPBSET_DROP", e);
        }
    }
    say("supported", hex(mask_of(&capabilities::supported())));
    for (case, add, drop, privileged) in RESOLVE {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        let drop: Vec<String> = drop.iter().map(|s| s.to_string()).collect();
        match capabilities::resolve(&add, &drop, *privileged) {
            Ok(set) => say(case, hex(mask_of(&set))),
            Err(e) => say(case, format!("error: {e}")),
        }
    }
}

fn resolve_takes_the_flags_as_docker_does(_: &Ctx) -> Outcome {
    use Capability::*;
    let text = grader::helper::run(
        "resolve, in a runtime without SYS_BOOT and AUDIT_WRITE",
        "privileges-resolve",
        &[],
    )?;
    let all = u64::from_str_radix(&said(&text, "supported"), 16)
        .map_err(|e| Fail::new("setup: the helper's supported()").seen(e))?;
    ensure(
        all & (bit(CAP_SYS_BOOT) | bit(CAP_AUDIT_WRITE)) == 0,
        || {
            Fail::new("setup: SYS_BOOT and AUDIT_WRITE out of the helper's bounding set")
                .seen(names(all))
        },
    )?;
    let docker = mask_of(&docker_set()) & all;
    for (case, add, drop, privileged) in RESOLVE {
        let what = format!(
            "resolve(add {add:?}, drop {drop:?}, privileged {privileged}) in a runtime whose own bounding set lacks SYS_BOOT and AUDIT_WRITE"
        );
        let seen = said(&text, case);
        let expected = match *case {
            "default" | "added_and_dropped" | "drop_one_it_lacks" => docker,
            "add_and_drop" => (docker | bit(CAP_SYS_ADMIN) | bit(CAP_NET_ADMIN)) & !bit(CAP_CHOWN),
            "prefixed" => docker | bit(CAP_SYS_PTRACE),
            "only_added" => bit(CAP_NET_RAW),
            "all_but" => all & !bit(CAP_SYS_ADMIN),
            "all_and_all" | "privileged" => all,
            refused => {
                let name = if refused == "bad_name" {
                    "NOT_A_CAP"
                } else {
                    "SYS_BOOT"
                };
                ensure(
                    seen.starts_with("error:") && seen.to_uppercase().contains(name),
                    || {
                        Fail::new(format!("{what}: an error that names {name}"))
                            .expected(format!("error: ... {name} ..."))
                            .seen(&seen)
                    },
                )?;
                continue;
            }
        };
        expect_mask(&what, expected, &seen)?;
    }
    Ok(())
}
