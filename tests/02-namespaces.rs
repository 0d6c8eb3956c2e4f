//! Graded checks for step 02: namespaces and PID 1.
//!
//! Compiled into `lesson-02` and `solution-02`. Most checks run the runtime
//! in a *lab* (see `Invocation::in_lab`): fresh namespaces that stand in for
//! the host, with `/` shared, a veth pair, a SysV segment and the host name
//! `grader-lab`. "The host" below means the lab: the runtime's own
//! namespaces. Whatever a runtime leaks lands there, where the check sees it,
//! and never on the machine itself.

use grader::procfs;
use grader::todo::{call, panic_text};
use grader::{ensure, expect_eq, poll, Check, Ctx, Fail, Needs, Outcome, Requires, Running};
use nix::sys::signal::Signal;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);
const KINDS: [&str; 6] = ["uts", "pid", "mnt", "ipc", "net", "cgroup"];

fn main() {
    if let Ok(which) = std::env::var(HELPER) {
        run_helper(&which);
    }
    grader::main(
        grader::step!("02-namespaces", Needs::Root),
        vec![
            // One learner function each: the grader calls it itself.
            Check {
                name: "clone_flags_for_each_namespace",
                points: 2,
                section: "clone-and-the-namespace-flags",
                hint: "clone_flags asks for a new namespace of each kind the spec wants and of no other, and always for a new mount namespace (the init's /proc must never land in the host's mount table).",
                more: "nix::sched::CloneFlags: CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWCGROUP; `|=` (or insert) adds a flag; the Namespaces struct has one bool per kind.",
                shape: "1. flags = the mount namespace's flag\n2. for each kind the spec has a bool for: if it is true, add that kind's flag\n3. return flags",
                requires: Requires::Nothing,
                run: clone_flags_for_each_namespace,
            },
            Check {
                name: "clone_makes_a_child_in_new_namespaces",
                points: 2,
                section: "clone-and-the-namespace-flags",
                hint: "clone_child is fork() with namespace flags: two processes return from it, the parent with the child's pid, the child with Child, already PID 1 of its new PID namespace and inside every other new namespace; the parent waits for it as for a fork's child (its exit signal is SIGCHLD).",
                more: "clone(2) through nix::libc::syscall(nix::libc::SYS_clone, flags, then stack, parent tid, child tid, tls pointers, all 0 here): the low byte of its flags is the exit signal (CloneFlags::bits, CloneFlags::from_bits_retain, union); or clone3(2), nix::libc::SYS_clone3 with a pointer to struct clone_args (eight u64 at least: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) and its size, which docker's seccomp profile refuses (ENOSYS); nix::errno::Errno::result turns -1 into the errno; Pid::from_raw. unsafe: it returns twice.",

                shape: "1. the clone arguments: the flags, the exit signal SIGCHLD, everything else 0 (no stack: the child goes on on a copy of ours)\n2. the system call; -1: return the errno\n3. 0: return Child\n4. anything else: return Parent(that pid)",
                requires: Requires::Nothing,
                run: clone_makes_a_child_in_new_namespaces,
            },
            Check {
                name: "launch_writes_the_maps_from_outside",
                points: 2,
                section: "user-namespaces",
                hint: "launch clones the child with the spec's flags; the child only returns Child, while the runtime, outside, gives the child's user namespace its maps (the child can't: a map is written from the parent user namespace). A map the kernel refuses is an error, and then the child is killed and reaped, not left behind.",
                more: "your clone_flags; namespaces::clone_into (given: a birth in the cgroup when given one, else your clone_child through clone_process); your userns::write_maps; nix::sys::signal::kill with Signal::SIGKILL, nix::sys::wait::waitpid (a killed child not waited for stays a zombie).",
                shape: "1. flags from the spec's namespaces\n2. clone (into the cgroup if given); in the child: return Child at once\n3. in the runtime: if the spec has a user mapping, write the maps for the child\n4.   on an error: kill the child, wait for it, return the error\n5. return Parent(child)",
                requires: Requires::Nothing,
                run: launch_writes_the_maps_from_outside,
            },
            Check {
                name: "maps_are_written_once_each",
                points: 2,
                section: "user-namespaces",
                hint: "write_maps writes a process's gid_map and uid_map from outside, one range each, once; an unprivileged mapping denies setgroups first (the kernel refuses its gid_map otherwise), a privileged one leaves setgroups allowed; a map the kernel refuses is an error.",
                more: "/proc/PID/setgroups, /proc/PID/gid_map, /proc/PID/uid_map; std::fs::write (one write(2) for a short text); IdRange::line gives the text; UserMapping::privileged; anyhow::Context to name the file in the error.",
                shape: "1. if the mapping is not privileged: write deny to the process's setgroups\n2. write the gid range's line to its gid_map\n3. write the uid range's line to its uid_map\n4. each write's error returned, naming what failed",
                requires: Requires::Nothing,
                run: maps_are_written_once_each,
            },
            Check {
                name: "propagation_is_cut_everywhere",
                points: 2,
                section: "mount-propagation",
                hint: "make_private leaves no mount of the namespace, / or any mount below it, shared with (or slave to) another: no shared:N or master:N in /proc/self/mountinfo, and nothing new mounted.",
                more: "mount(2) through nix::mount::mount with None for the source, the type and the data (spelled None::<&str>), target /; nix::mount::MsFlags: MS_PRIVATE (the propagation type), MS_REC (every mount below too).",
                shape: "1. one mount call: no source, target /, no type, the private and recursive flags, no data\n2. return its result",
                requires: Requires::Nothing,
                run: propagation_is_cut_everywhere,
            },
            Check {
                name: "a_fresh_proc_for_the_pid_namespace",
                points: 2,
                section: "a-proc-of-its-own",
                hint: "mount_proc mounts a new proc filesystem on /proc; it lists the PID namespace of the process that mounts it, and nothing in it may be set-uid, a device or executable (nosuid, nodev, noexec).",
                more: "nix::mount::mount with source proc, target /proc, filesystem type proc, no data; MsFlags::MS_NOSUID, MS_NODEV, MS_NOEXEC; mountinfo's field 6 shows a mount's options.",
                shape: "1. one mount call: source proc, target /proc, type proc, the three flags together, no data\n2. return its result",
                requires: Requires::Nothing,
                run: a_fresh_proc_for_the_pid_namespace,
            },
            Check {
                name: "pid1_duties_with_step_01s_parts",
                points: 2,
                section: "pid-1",
                hint: "run_as_init is PID 1's duties: start the command as its child, let the runtime see the exec (close your copy of the report), forward the signals it gets to the command, reap every child the kernel gives it, and return the command's exit code.",
                more: "step 01's parts: step01::supervise::Supervisor::start (blocks the signals; do it before the command starts) and Supervisor::wait (sigwait, kill to forward, waitpid(-1) to reap); step01::spawn::spawn(cmd, &report); drop(report); ExecReport::fail_setup and step01::spawn::errno_of for a failure before the command runs; step01::status::exit_code, RUNTIME_ERROR.",
                shape: "1. start the supervisor (failure: report it through the exec report)\n2. spawn the command (failure: report it)\n3. drop the report\n4. wait for the command with the supervisor\n5. its status: return its exit code; an error: return RUNTIME_ERROR",
                requires: Requires::Nothing,
                run: pid1_duties_with_step_01s_parts,
            },
            Check {
                name: "the_init_dies_with_its_parent",
                points: 1,
                section: "pid-1",
                hint: "die_with_parent asks the kernel for SIGKILL the moment the parent ends: the container's init must never outlive its runtime.",
                more: "prctl(2) PR_SET_PDEATHSIG: nix::sys::prctl::set_pdeathsig; nix::sys::signal::Signal.",
                shape: "1. one prctl call asking for SIGKILL at the parent's death\n2. return its result",
                requires: Requires::Nothing,
                run: the_init_dies_with_its_parent,
            },
            Check {
                name: "a_session_of_its_own",
                points: 1,
                section: "the-callers-terminal",
                hint: "new_session makes the caller the leader of a new session, which has no controlling terminal: /dev/tty then answers ENXIO.",
                more: "setsid(2): nix::unistd::setsid (it returns the new session's id; the function returns nothing); getsid(2) shows a process's session.",
                shape: "1. one setsid call\n2. its error returned, its value dropped",
                requires: Requires::Nothing,
                run: a_session_of_its_own,
            },
            // The runtime as a whole.
            Check {
                name: "namespaces_are_new",
                points: 3,
                section: "clone-and-the-namespace-flags",
                hint: "clone_flags must hold CLONE_NEWNS always, and CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWCGROUP (and CLONE_NEWUSER) for each namespace the spec asks for.",
                more: "Your clone_flags, clone_child and launch, then container_init up to the command: clone3(2)/clone(2) with CLONE_NEW* flags; /proc/PID/ns/KIND links compare namespaces.",
                shape: "1. launch: flags from the spec, clone, the child returns Child\n2. container_init runs in the child, in its new namespaces, and starts the command\n3. the command inherits every namespace of the init",
                requires: Requires::Nothing,
                run: namespaces_are_new,
            },
            Check {
                name: "host_modes_share_namespaces",
                points: 1,
                section: "clone-and-the-namespace-flags",
                hint: "A namespace the spec doesn't ask for (--network host, --pid host, ...) gets no CLONE_NEW* flag: the child stays in the host's.",
                more: "Your clone_flags: a false in the spec's Namespaces adds no flag; CLONE_NEWNS is added whatever the spec says.",
                shape: "1. run with --network/--pid/--ipc/--uts/--cgroupns host: those bools are false\n2. no CLONE_NEW* for them, CLONE_NEWNS still there\n3. container_init skips /proc and the host name when their namespaces are the host's",
                requires: Requires::Nothing,
                run: host_modes_share_namespaces,
            },
            Check {
                name: "hostname_is_the_containers_own",
                points: 2,
                section: "the-host-name",
                hint: "sethostname(name) in the child, after clone with CLONE_NEWUTS: it renames only the container's UTS namespace.",
                more: "container_init, when the spec's UTS namespace is new: the given set_hostname (sethostname(2)) with spec.hostname, after the gate and before the command; the spec's name is random when --hostname is not given (given cli).",
                shape: "1. clone with CLONE_NEWUTS (your clone_flags)\n2. in container_init, if the UTS namespace is new: set the host name to the spec's, a failure reported through the exec report\n3. then be PID 1",
                requires: Requires::Nothing,
                run: hostname_is_the_containers_own,
            },
            Check {
                name: "pid_namespace_shows_only_the_container",
                points: 2,
                section: "a-proc-of-its-own",
                hint: "With CLONE_NEWPID the child is PID 1 and the command PID 2; mount a new proc on /proc inside, or /proc (and ps) still show the host's processes.",
                more: "CLONE_NEWPID in clone_flags; your mount_proc in container_init, after make_private, when the PID namespace is new; run_as_init's spawn makes the command PID 2 (step 01's spawn::spawn).",
                shape: "1. the child is PID 1 of its new PID namespace (clone with CLONE_NEWPID)\n2. container_init: make the mounts private, then mount the new /proc (only with a new PID namespace)\n3. run_as_init: the command is its child, PID 2",
                requires: Requires::Nothing,
                run: pid_namespace_shows_only_the_container,
            },
            Check {
                name: "mounts_stay_inside",
                points: 3,
                section: "mount-propagation",
                hint: "Before mounting anything inside, remount / with MS_REC | MS_PRIVATE: a copy of a shared mount propagates every new mount back to the host.",
                more: "Your make_private (mount(2), MS_REC | MS_PRIVATE on /) first in container_init's mounts, before mount_proc; /proc/PID/mountinfo's optional fields show shared:N.",
                shape: "1. in container_init, after the gate (and after becoming root in a user namespace): make the mounts private\n2. only then mount /proc\n3. the command's own mounts (a tmpfs) then stay in the container",
                requires: Requires::Nothing,
                run: mounts_stay_inside,
            },
            Check {
                name: "network_has_only_lo",
                points: 1,
                section: "the-seven-namespaces",
                hint: "CLONE_NEWNET gives the container a network namespace of its own, which starts with only a loopback interface.",
                more: "CloneFlags::CLONE_NEWNET in your clone_flags when the spec's net is true (--network none, the default here); /proc/PID/net/dev lists a namespace's interfaces.",
                shape: "1. spec.namespaces.net true: add CLONE_NEWNET\n2. false (--network host): add nothing, the child shares the host's",
                requires: Requires::Nothing,
                run: network_has_only_lo,
            },
            Check {
                name: "ipc_objects_stay_outside",
                points: 1,
                section: "the-seven-namespaces",
                hint: "CLONE_NEWIPC: System V IPC objects of the host must not be visible inside.",
                more: "CloneFlags::CLONE_NEWIPC in your clone_flags when the spec's ipc is true; /proc/sysvipc/shm lists the segments of a process's IPC namespace.",
                shape: "1. spec.namespaces.ipc true: add CLONE_NEWIPC\n2. --ipc host: add nothing",
                requires: Requires::Nothing,
                run: ipc_objects_stay_outside,
            },
            Check {
                name: "userns_root_is_not_root_outside",
                points: 2,
                section: "user-namespaces",
                hint: "write_maps writes gid_map then uid_map from outside, before the gate opens; the child then takes uid 0 inside, which the host sees as the mapped uid.",
                more: "CLONE_NEWUSER in clone_flags; your launch writes the maps (your write_maps) before the gate opens; container_init becomes root inside (the given become_root: setresgid, setgroups, setresuid) after the gate and before anything else that needs rights there.",
                shape: "1. launch: clone with CLONE_NEWUSER; in the runtime, write the maps before returning\n2. container_init: wait at the gate, then (user namespace) become root\n3. then the mounts, /proc, the host name, the command",
                requires: Requires::Nothing,
                run: userns_root_is_not_root_outside,
            },
            Check {
                name: "userns_for_an_unprivileged_caller",
                points: 2,
                section: "user-namespaces",
                hint: "An unprivileged writer must write \"deny\" to /proc/PID/setgroups before gid_map, and may map only its own uid and gid.",
                more: "Your write_maps: for an unprivileged mapping, /proc/PID/setgroups gets deny before /proc/PID/gid_map; the given mapping_for maps the caller's own uid and gid, count 1.",
                shape: "1. the mapping isn't privileged: deny setgroups\n2. then gid_map\n3. then uid_map\n4. container_init: become root after the gate",
                requires: Requires::UnprivilegedUserns,
                run: userns_for_an_unprivileged_caller,
            },
            Check {
                name: "init_reaps_orphans",
                points: 2,
                section: "pid-1",
                hint: "In a PID namespace every orphan goes to PID 1, the init: it must reap with step 01's Supervisor (waitpid(-1) until drained).",
                more: "Your run_as_init with step 01's parts: step01::supervise::Supervisor::start (blocks the signals) and Supervisor::wait (reaps every child, waitpid(-1), until the one it waits for ends); step01::spawn::spawn starts the command.",
                shape: "1. start step 01's supervisor\n2. spawn the command (a failure: report it through the exec report)\n3. drop your copy of the exec report\n4. wait for the command with the supervisor, which reaps the others meanwhile\n5. return the exit code of its status",
                requires: Requires::Nothing,
                run: init_reaps_orphans,
            },
            Check {
                name: "sigterm_reaches_the_command",
                points: 2,
                section: "pid-1",
                hint: "The runtime forwards to the init, the init forwards to the command: run_as_init must use step 01's Supervisor. And drop the report after spawning, or the runtime waits for its end-of-file forever.",
                more: "step 01's Supervisor in run_as_init (sigwait on the blocked signals, kill(child, signal)); drop(report) after spawn::spawn: the runtime's ExecReport::wait_for_exec waits for end-of-file on the pipe before it forwards anything.",
                shape: "1. supervisor first (signals blocked), then spawn the command\n2. drop the report\n3. supervisor.wait(child): it forwards SIGTERM to the command\n4. exit code from its status",
                requires: Requires::Nothing,
                run: sigterm_reaches_the_command,
            },
            Check {
                name: "sigkill_of_the_runtime_ends_the_container",
                points: 2,
                section: "pid-1",
                hint: "prctl(PR_SET_PDEATHSIG, SIGKILL) in the child: when the runtime dies, the init dies, and with PID 1 the kernel ends every process of the PID namespace.",
                more: "Your die_with_parent: prctl(2) PR_SET_PDEATHSIG, nix::sys::prctl::set_pdeathsig with Signal::SIGKILL; in container_init, before the gate's wait (the gate's pipe tells a runtime that died before it).",
                shape: "1. die_with_parent: ask for SIGKILL at the parent's death\n2. container_init: that first, then wait at the gate (false: exit RUNTIME_ERROR)\n3. as PID 1, the init's death ends every process of its PID namespace",
                requires: Requires::Nothing,
                run: sigkill_of_the_runtime_ends_the_container,
            },
            Check {
                name: "the_container_ends_with_its_command",
                points: 1,
                section: "pid-1",
                hint: "When the command exits, the init exits with its code; as PID 1 its exit makes the kernel end every other process of the namespace. Don't wait for the other children.",
                more: "run_as_init returns step01::status::exit_code of the command's WaitStatus; container_init exits with it (the given exit, _exit(2)); the kernel ends the PID namespace with its PID 1.",
                shape: "1. run_as_init: wait for the command only, not for the others\n2. its status to an exit code\n3. container_init: exit with that code at once",
                requires: Requires::Nothing,
                run: the_container_ends_with_its_command,
            },
            Check {
                name: "the_callers_terminal_is_out_of_reach",
                points: 2,
                section: "the-callers-terminal",
                hint: "The init must not stay in the caller's session: a session's processes can open its controlling terminal as /dev/tty and type into it (TIOCSTI). Lead a session of your own first thing in the init.",
                more: "Your new_session: setsid(2), nix::unistd::setsid; called in container_init after the gate and before anything starts; /proc/self/stat field 6 (session) and 7 (tty_nr).",
                shape: "1. new_session: one setsid, its error returned\n2. container_init: call it after the gate, before the mounts and the command\n3. the command inherits the session, and no controlling terminal",
                requires: Requires::Nothing,
                run: the_callers_terminal_is_out_of_reach,
            },
            Check {
                name: "bad_input_is_one_line",
                points: 1,
                section: "the-host-name",
                hint: "Check the flags before creating anything: an invalid host name or network mode is `minibox: ...` on one line and exit 125; a valid 63-character name works; a command not found inside still reaches the runtime's exec report (127).",
                more: "Input is checked by the given cli before anything is made; a valid run goes through your launch and container_init: a 63-character host name is set in its UTS namespace, and a command not found is reported by step 01's spawn through the exec report (127).",
                shape: "1. the given cli refuses bad input (exit 125, one line)\n2. launch and container_init run a good one: the host name set, the command spawned\n3. a failing exec reaches the runtime through the exec report: keep the report until the command is spawned",
                requires: Requires::Nothing,
                run: bad_input_is_one_line,
            },
        ],
    );
}

/// Start `minibox ARGS` in a lab, wait for `cat` to run inside, and return
/// the runtime and the command's host pid.
fn cat_in_lab(ctx: &Ctx, args: &[&str]) -> Result<(Running, i32), Fail> {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--", "cat"]);
    let mut running = ctx.minibox(&full).in_lab().spawn()?;
    match ctx.process_running(running.pid(), "cat") {
        Ok(command) => Ok((running, command)),
        Err(fail) => Err(match running.ended() {
            Some(ended) => Fail::new(format!("{} (the runtime: {ended})", fail.what)),
            None => fail,
        }),
    }
}

fn finish(mut running: Running) -> Outcome {
    running.close_stdin();
    running.wait(SOON)?.expect_code(
        0,
        "the command (cat) ended normally, so the runtime should exit 0",
    )
}

fn ns(pid: i32, kind: &str) -> String {
    procfs::namespace(pid, kind).unwrap_or_else(|| "(unreadable)".into())
}

fn namespaces_are_new(ctx: &Ctx) -> Outcome {
    let (running, command) = cat_in_lab(ctx, &[])?;
    let runtime = running.pid();
    let shared: Vec<String> = KINDS
        .iter()
        .filter(|kind| ns(command, kind) == ns(runtime, kind))
        .map(|kind| format!("{kind} ({})", ns(command, kind)))
        .collect();
    ensure(shared.is_empty(), || {
        Fail::new("each of the container's namespaces should be new, not the host's")
            .expected(format!(
                "/proc/{command}/ns/KIND differs from /proc/{runtime}/ns/KIND for {}",
                KINDS.join(", ")
            ))
            .seen(format!("shared with the host: {}", shared.join(", ")))
    })?;
    expect_eq(
        "without --userns the container stays in the host's user namespace",
        ns(runtime, "user"),
        ns(command, "user"),
    )?;
    finish(running)
}

fn host_modes_share_namespaces(ctx: &Ctx) -> Outcome {
    let args = [
        "--network",
        "host",
        "--pid",
        "host",
        "--ipc",
        "host",
        "--uts",
        "host",
        "--cgroupns",
        "host",
    ];
    let (running, command) = cat_in_lab(ctx, &args)?;
    let runtime = running.pid();
    let new: Vec<&str> = ["uts", "pid", "ipc", "net", "cgroup"]
        .into_iter()
        .filter(|kind| ns(command, kind) != ns(runtime, kind))
        .collect();
    ensure(new.is_empty(), || {
        Fail::new(
            "with --network/--pid/--ipc/--uts/--cgroupns host, those namespaces are the host's",
        )
        .seen(format!("new anyway: {}", new.join(", ")))
    })?;
    ensure(ns(command, "mnt") != ns(runtime, "mnt"), || {
        Fail::new("the mount namespace is always new (minibox mounts a /proc for the container)")
            .seen(ns(command, "mnt"))
    })?;
    finish(running)
}

fn hostname_is_the_containers_own(ctx: &Ctx) -> Outcome {
    let script = "cat /proc/sys/kernel/hostname; exec cat";
    let mut running = ctx
        .minibox(&["run", "--hostname", "box", "--", "sh", "-c", script])
        .in_lab()
        .spawn()?;
    let inside = running.read_line(SOON)?;
    expect_eq(
        "`--hostname box`: the host name inside",
        "box",
        inside.as_str(),
    )?;
    ctx.process_running(running.pid(), "cat")?;
    let host = ctx.host_in_namespaces_of(
        running.pid(),
        &["uts"],
        &["cat", "/proc/sys/kernel/hostname"],
    )?;
    expect_eq(
        "the host's name must not change (sethostname in the container's own UTS namespace)",
        "grader-lab",
        host.trim(),
    )?;
    finish(running)?;
    let out = ctx
        .minibox(&["run", "--", "cat", "/proc/sys/kernel/hostname"])
        .in_lab()
        .output()?;
    out.expect_code(0, "reading the host name inside should work")?;
    let name = out.stdout_text();
    ensure(
        !name.trim().is_empty() && name.trim() != "grader-lab",
        || {
            Fail::new("without --hostname the container gets a name of its own, not the host's")
                .seen(name.trim())
        },
    )
}

fn pid_namespace_shows_only_the_container(ctx: &Ctx) -> Outcome {
    let out = ctx
        .minibox(&["run", "--", "sh", "-c", "echo $$ $PPID; exec ls /proc"])
        .in_lab()
        .output()?;
    out.expect_code(0, "listing /proc inside should work")?;
    let text = out.stdout_text();
    let mut lines = text.lines();
    expect_eq(
        "the command should be PID 2, child of the init (PID 1)",
        "2 1",
        lines.next().unwrap_or_default(),
    )?;
    let mut pids: Vec<u32> = lines.filter_map(|l| l.trim().parse().ok()).collect();
    pids.sort();
    expect_eq(
        "/proc inside should list only the container's processes (a new proc, mounted inside)",
        vec![1, 2],
        pids,
    )?;
    if grader::which("ps").is_some() {
        let out = ctx
            .minibox(&["run", "--", "ps", "-eo", "pid="])
            .in_lab()
            .output()?;
        let pids = out.numbers();
        expect_eq(
            "`ps -e` inside should show the init and itself only",
            vec![1, 2],
            pids,
        )?;
    }
    let (running, command) = cat_in_lab(ctx, &[])?;
    let init = procfs::stat(command).map(|s| s.ppid).unwrap_or(0);
    expect_eq(
        "the kernel's view (NSpid in /proc/PID/status): the command is PID 2 in its namespace",
        Some(2),
        procfs::nspid(command).and_then(|p| p.last().copied()),
    )?;
    expect_eq(
        "the kernel's view: the command's parent is PID 1 of the container",
        Some(1),
        procfs::nspid(init).and_then(|p| p.last().copied()),
    )?;
    finish(running)
}

fn mounts_stay_inside(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let target = dir.path().to_string_lossy().into_owned();
    let tag = format!("grader-tmpfs-{}", std::process::id());
    let script = format!("mount -t tmpfs {tag} {target} && echo mounted; exec cat");
    let mut running = ctx
        .minibox(&["run", "--", "sh", "-c", &script])
        .in_lab()
        .spawn()?;
    let runtime = running.pid();
    let line = running.read_line(SOON)?;
    expect_eq(
        "mounting a tmpfs inside should work",
        "mounted",
        line.as_str(),
    )?;
    let command = ctx.process_running(runtime, "cat")?;
    let inside = procfs::mountinfo(command).unwrap_or_default();
    ensure(inside.iter().any(|m| m.source == tag), || {
        Fail::new("the tmpfs should be in the container's mount table")
            .seen(format!("/proc/{command}/mountinfo has no {tag}"))
    })?;
    if let Some(root) = inside.iter().find(|m| m.mount_point == "/") {
        ensure(!root.is_shared(), || {
            Fail::new("/ inside must not be shared with the host: remount it MS_REC | MS_PRIVATE")
                .expected("no shared:N among the optional fields of / in /proc/PID/mountinfo")
                .seen(format!("/ has {}", root.optional.join(" ")))
        })?;
    }
    let host = procfs::mountinfo(runtime).unwrap_or_default();
    ensure(!host.iter().any(|m| m.source == tag), || {
        Fail::new(
            "a mount made inside the container appeared on the host: mount propagation was not cut",
        )
        .expected(format!("no {tag} in the host's mount table"))
        .seen(format!(
            "{tag} at {target} in /proc/{runtime}/mountinfo (the lab's)"
        ))
    })?;
    let procs = host.iter().filter(|m| m.mount_point == "/proc").count();
    ensure(procs == 1, || {
        Fail::new("the container's /proc landed on the host's /proc (here the lab's, standing in for the host): is / made private recursively (MS_REC), and before /proc is mounted?")
            .expected("1 mount at /proc in the host's mount table")
            .seen(format!("{procs}"))
    })?;
    finish(running)?;
    let mine = procfs::mountinfo(std::process::id() as i32).unwrap_or_default();
    ensure(!mine.iter().any(|m| m.source == tag), || {
        Fail::new("the container's tmpfs is on the grader's own mount table").seen(&tag)
    })
}

/// The interfaces in a process's network namespace (`/proc/PID/net/dev`).
fn interfaces(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect()
}

fn network_has_only_lo(ctx: &Ctx) -> Outcome {
    let (running, command) = cat_in_lab(ctx, &["--network", "host"])?;
    let host = interfaces(command);
    finish(running)?;
    ensure(host.iter().any(|i| i == "grader-lab0"), || {
        Fail::new("the lab (the host here) should have grader-lab0; with --network host the command sees it")
            .seen(host.join(", "))
    })?;
    let (running, command) = cat_in_lab(ctx, &[])?;
    let inside = interfaces(command);
    expect_eq(
        "the container's network namespace should have only lo (/proc/PID/net/dev)",
        vec!["lo".to_string()],
        inside,
    )?;
    finish(running)
}

fn shm_segments(out: &grader::Output) -> usize {
    out.stdout_text()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn ipc_objects_stay_outside(ctx: &Ctx) -> Outcome {
    let read = ["--", "cat", "/proc/sysvipc/shm"];
    let host = ctx
        .minibox(&[&["run", "--ipc", "host"][..], &read].concat())
        .in_lab()
        .output()?;
    host.expect_code(0, "reading /proc/sysvipc/shm should work")?;
    ensure(shm_segments(&host) >= 1, || {
        Fail::new("with --ipc host the lab's shared memory segment should be visible")
            .seen(host.stdout_text())
    })?;
    let inside = ctx
        .minibox(&[&["run"][..], &read].concat())
        .in_lab()
        .output()?;
    inside.expect_code(0, "reading /proc/sysvipc/shm should work")?;
    expect_eq(
        "the host's SysV shared memory segment must not be visible inside (/proc/sysvipc/shm)",
        0,
        shm_segments(&inside),
    )
}

/// The first line of a uid_map/gid_map as numbers.
fn map_line(pid: i32, file: &str) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn userns_root_is_not_root_outside(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .map_err(|e| Fail::new("setup").seen(e))?;
    let file = dir.path().join("made-inside");
    let script = format!("id -u; id -g; touch {}; exec cat", file.display());
    let mut running = ctx
        .minibox(&["run", "--userns", "--", "sh", "-c", &script])
        .spawn()?;
    let runtime = running.pid();
    expect_eq(
        "`id -u` inside a user namespace should say 0 (root)",
        "0",
        running.read_line(SOON)?.as_str(),
    )?;
    expect_eq(
        "`id -g` inside should say 0 too (setresgid after the maps)",
        "0",
        running.read_line(SOON)?.as_str(),
    )?;
    let command = ctx.process_running(runtime, "cat")?;
    ensure(ns(command, "user") != ns(runtime, "user"), || {
        Fail::new("--userns: the container's user namespace should be new")
            .seen(ns(command, "user"))
    })?;
    let map = map_line(command, "uid_map");
    ensure(map.len() == 3 && map[0] == 0 && map[1] != 0, || {
        Fail::new("root inside must map to an unprivileged uid outside")
            .expected("/proc/PID/uid_map: 0 <a uid that isn't 0> <count>")
            .seen(format!("{map:?}"))
    })?;
    let gmap = map_line(command, "gid_map");
    ensure(gmap.len() == 3 && gmap[0] == 0 && gmap[1] != 0, || {
        Fail::new("group root inside must map to an unprivileged gid outside")
            .expected("/proc/PID/gid_map: 0 <a gid that isn't 0> <count>")
            .seen(format!("{gmap:?}"))
    })?;
    let owner = poll(SOON, || {
        std::fs::metadata(&file).ok().map(|m| (m.uid(), m.gid()))
    });
    expect_eq(
        "a file made by root inside belongs, on the host, to the uid and gid root maps to",
        Some((map[1], gmap[1])),
        owner,
    )?;
    finish(running)
}

fn userns_for_an_unprivileged_caller(ctx: &Ctx) -> Outcome {
    // A copy of the binary in a temp dir, so an unprivileged user can run it
    // wherever the workshop is checked out.
    let dir = ctx.temp_dir();
    let binary = dir.path().join("minibox");
    // cp(1), not std::fs::copy: our own writable descriptor of the copy would
    // be inherited by processes other check threads fork at that moment, and
    // exec of a file open for writing fails with ETXTBSY.
    let copied = std::process::Command::new("cp")
        .arg(ctx.binary())
        .arg(&binary)
        .status()
        .is_ok_and(|s| s.success());
    ensure(copied, || {
        Fail::new("setup: cannot copy the binary to a temp dir")
    })?;
    // A uid and a gid that differ, so a map that mixes them up shows.
    let (uid, gid) = (65534, 65533);
    let mut running = ctx
        .minibox_at(
            &binary,
            &["run", "--userns", "--", "sh", "-c", "id -u; exec cat"],
        )
        .run_as(uid, gid)
        .spawn()?;
    let line = running.read_line(SOON)?;
    expect_eq(
        "an unprivileged caller is root inside its user namespace",
        "0",
        line.as_str(),
    )?;
    let command = ctx.process_running(running.pid(), "cat")?;
    expect_eq(
        "uid_map for caller uid 65534: its own uid, once",
        vec![0, uid, 1],
        map_line(command, "uid_map"),
    )?;
    expect_eq(
        "gid_map for caller gid 65533: its own gid, once",
        vec![0, gid, 1],
        map_line(command, "gid_map"),
    )?;
    let setgroups =
        std::fs::read_to_string(format!("/proc/{command}/setgroups")).unwrap_or_default();
    expect_eq(
        "an unprivileged writer must deny setgroups first",
        "deny",
        setgroups.trim(),
    )?;
    finish(running)
}

/// The host pid of the process below `root` whose pid in its own namespace is `inner`.
fn host_pid_of(root: i32, inner: i32) -> Option<i32> {
    procfs::descendants(root)
        .into_iter()
        .find(|p| procfs::nspid(p.pid).and_then(|n| n.last().copied()) == Some(inner))
        .map(|p| p.pid)
}

fn init_reaps_orphans(ctx: &Ctx) -> Outcome {
    let count = 20;
    let script = format!(
        "(i=0; while [ $i -lt {count} ]; do sleep 1000 & echo $!; i=$((i+1)); done); exec cat"
    );
    let mut running = ctx
        .minibox(&["run", "--", "sh", "-c", &script])
        .in_lab()
        .spawn()?;
    let runtime = running.pid();
    let mut orphans = Vec::new();
    for _ in 0..count {
        let inner: i32 = running
            .read_line(SOON)?
            .trim()
            .parse()
            .map_err(|_| Fail::new("the command should print pids"))?;
        let pid = poll(SOON, || host_pid_of(runtime, inner))
            .ok_or_else(|| Fail::new(format!("no process with pid {inner} in the container")))?;
        ctx.track(pid);
        orphans.push(pid);
    }
    let init = procfs::children_of(runtime)
        .first()
        .map(|s| s.pid)
        .unwrap_or(0);
    let adopted = poll(SOON, || {
        orphans
            .iter()
            .all(|&p| procfs::stat(p).is_some_and(|s| s.ppid == init))
            .then_some(())
    });
    ensure(adopted.is_some(), || {
        Fail::new("orphans in a PID namespace go to its PID 1, the init")
            .expected(format!("parent {init} (the init)"))
            .seen(
                orphans
                    .iter()
                    .filter_map(|&p| procfs::stat(p))
                    .map(|s| format!("pid {} has parent {}", s.pid, procfs::describe(s.ppid)))
                    .next()
                    .unwrap_or_default(),
            )
    })?;
    let left = grader::kill_and_wait_reaped(&orphans, SOON);
    ensure(left.is_empty(), || {
        let zombies = left.iter().filter(|s| s.state == 'Z').count();
        Fail::new("PID 1 must reap the orphans it adopts: they are left zombies (state Z)")
            .expected(format!(
                "all {count} gone within {} s of being killed",
                SOON.as_secs()
            ))
            .seen(format!("{zombies} zombies of the init"))
    })?;
    finish(running)
}

fn sigterm_reaches_the_command(ctx: &Ctx) -> Outcome {
    let script =
        "(sleep 0.05 &); sleep 0.2; trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done";
    let mut running = ctx
        .minibox(&["run", "--", "sh", "-c", script])
        .in_lab()
        .spawn()?;
    expect_eq(
        "the command should start",
        "ready",
        running.read_line(SOON)?.as_str(),
    )?;
    ctx.track_tree(running.pid());
    running.signal(Signal::SIGTERM)?;
    let out = running.wait(SOON).map_err(|fail| Fail {
        what: format!("SIGTERM was sent to the runtime, but {} (is it forwarded, by the runtime and then by the init?)", fail.what),
        ..fail
    })?;
    out.expect_code(
        42,
        "SIGTERM to the runtime should reach the command through the init; its trap exits 42",
    )
}

fn sigkill_of_the_runtime_ends_the_container(ctx: &Ctx) -> Outcome {
    // The container ignores SIGTERM: only SIGKILL is sure to end it.
    let script = "trap '' TERM; sleep 1000 & echo ready; exec sleep 1000";
    let mut running = ctx
        .minibox(&["run", "--", "sh", "-c", script])
        .in_lab()
        .spawn()?;
    let runtime = running.pid();
    expect_eq(
        "the command should start",
        "ready",
        running.read_line(SOON)?.as_str(),
    )?;
    poll(SOON, || {
        (procfs::descendants(runtime)
            .iter()
            .filter(|p| p.comm == "sleep")
            .count()
            >= 2)
            .then_some(())
    });
    let container = procfs::descendants(runtime);
    ctx.track_tree(runtime);
    running.signal(Signal::SIGKILL)?;
    let _ = running.wait(SOON);
    let alive = |p: &procfs::Stat| {
        procfs::stat(p.pid).is_some_and(|now| now.start_time == p.start_time && now.state != 'Z')
    };
    let ended = poll(SOON, || (!container.iter().any(alive)).then_some(()));
    ensure(ended.is_some(), || {
        let left: Vec<String> = container
            .iter()
            .filter(|p| alive(p))
            .map(|p| procfs::describe(p.pid))
            .collect();
        Fail::new("after SIGKILL of the runtime no process of the container may live on")
            .expected("the init gets SIGKILL when its parent dies (PR_SET_PDEATHSIG), and the PID namespace ends with it")
            .seen(format!("still alive: {}", left.join(", ")))
    })
}

fn the_container_ends_with_its_command(ctx: &Ctx) -> Outcome {
    // The command leaves a sleep in the background, then exits once the
    // grader has found that sleep (when its stdin closes).
    let script = "sleep 1000 & echo $!; read line; exit 3";
    let mut running = ctx
        .minibox(&["run", "--", "sh", "-c", script])
        .in_lab()
        .spawn()?;
    let runtime = running.pid();
    let inner: i32 = running
        .read_line(SOON)?
        .trim()
        .parse()
        .map_err(|_| Fail::new("the command should print the sleep's pid"))?;
    let background = poll(SOON, || host_pid_of(runtime, inner).and_then(procfs::stat))
        .ok_or_else(|| Fail::new(format!("no process with pid {inner} in the container")))?;
    ctx.track(background.pid);
    running.close_stdin();
    let out = running.wait(SOON)?;
    out.expect_code(
        3,
        "the container's exit code is its command's, even with a process left in the background",
    )?;
    let gone = poll(SOON, || {
        procfs::stat(background.pid)
            .is_none_or(|now| now.start_time != background.start_time || now.state == 'Z')
            .then_some(())
    });
    ensure(gone.is_some(), || {
        Fail::new("when the command ends, the container ends: its other processes must not live on")
            .expected("the init exits with the command, and the kernel ends the rest of its PID namespace")
            .seen(format!("still alive: {}", procfs::describe(background.pid)))
    })
}

fn the_callers_terminal_is_out_of_reach(ctx: &Ctx) -> Outcome {
    use grader::terminal::{self, Terminal, Wired, MARKER};
    // The caller's terminal is the runtime's controlling terminal, as a
    // shell's is; its stdio are /dev/null and pipes (`</dev/null >out
    // 2>&1`): the only way in is /dev/tty.
    let probe = std::env::current_exe()
        .map_err(|e| Fail::new("cannot find the grader's own binary").seen(e))?;
    let probe = probe.to_string_lossy().into_owned();
    let terminal = Terminal::new()?;
    let command = ctx
        .minibox(&["run", "--", &probe, "--probe", "tiocsti", MARKER])
        .in_lab()
        .into_command();
    let (status, said) = terminal.run(command, Wired::Nothing, SOON)?;
    ensure(status.success(), || {
        Fail::new("the probe's container should run and exit 0")
            .seen(format!("{status}: {}", said.trim()))
    })?;
    terminal::expect_blocked(&terminal, "run", &said)?;
    let found = terminal::answers(&said);
    let field = |key: &str| found.get(key).cloned().unwrap_or_default();
    expect_eq(
        "opening /dev/tty in the container (the errno: no controlling terminal)",
        "ENXIO".to_string(),
        field("dev-tty"),
    )?;
    expect_eq(
        "the controlling terminal of the container's command (field 7 of /proc/self/stat, 0: none)",
        "0".to_string(),
        field("tty_nr"),
    )?;
    expect_eq(
        "the session of the container's command (field 6 of /proc/self/stat): the init's, PID 1",
        "1".to_string(),
        field("session"),
    )?;
    terminal::control(SOON)
}

fn bad_input_is_one_line(ctx: &Ctx) -> Outcome {
    let longest = "a".repeat(63);
    let out = ctx
        .minibox(&[
            "run",
            "--hostname",
            &longest,
            "--",
            "cat",
            "/proc/sys/kernel/hostname",
        ])
        .in_lab()
        .output()?;
    out.expect_code(0, "a 63-character host name is valid")?;
    expect_eq(
        "the 63-character host name inside",
        longest.as_str(),
        out.stdout_text().trim(),
    )?;
    let out = ctx
        .minibox(&["run", "--", "grader-no-such-command"])
        .in_lab()
        .output()?;
    out.expect_code(
        127,
        "a command not found inside is 127, reported from inside through the exec report",
    )?;
    out.expect_one_error_line("grader-no-such-command")?;
    let too_long = "a".repeat(64);
    for (args, mentions) in [
        (vec!["--hostname", "bad_name"], "bad_name"),
        (vec!["--hostname", too_long.as_str()], "hostname"),
        (vec!["--hostname", "box-"], "box-"),
        (vec!["--network", "bridge2"], "bridge2"),
        (vec!["--hostname", "box", "--uts", "host"], "hostname"),
    ] {
        let mut full = vec!["run"];
        full.extend(args);
        full.extend(["--", "true"]);
        let out = ctx.minibox(&full).in_lab().output()?;
        out.expect_code(125, "bad input is a runtime error: 125")?;
        out.expect_one_error_line(mentions)?;
    }
    Ok(())
}

// ---- library checks: the learner's functions, called one at a time ----
//
// Each calls one function of the step's library, in the grader's own
// process or in a helper (the grader's binary again, single-threaded, in a
// mount namespace of its own), and asks the kernel what came of it.

/// The variable that makes the grader's binary a helper, and which one.
const HELPER: &str = "GRADE02_HELPER";

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Fail + '_ {
    move |e| Fail::new(format!("setup: {what}")).seen(e)
}

/// Run the helper `which`; its `key=value` lines. A `todo` line (the
/// learner's function not written) or a `setup` line fails the check.
fn helper(which: &str, what: &str) -> Result<std::collections::BTreeMap<String, String>, Fail> {
    let me = std::env::current_exe().map_err(setup("current_exe"))?;
    let out = std::process::Command::new(me)
        .env(HELPER, which)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(setup("run the helper"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut found = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            found
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    if let Some(todo) = found.get("todo") {
        return Err(
            Fail::new(format!("{what} should return")).seen(format!("not written yet: {todo}"))
        );
    }
    if let Some(panic) = found.get("panic") {
        return Err(
            Fail::new(format!("{what} should return")).seen(format!("it panicked: {panic}"))
        );
    }
    if let Some(problem) = found.get("setup") {
        return Err(Fail::new("setup: the grader's helper failed").seen(problem));
    }
    Ok(found)
}

/// In the helper: the learner's function, a panic said on stdout.
fn helper_call<T>(f: impl FnOnce() -> T) -> T {
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(panic) => {
            let text = panic_text(panic.as_ref());
            match text.strip_prefix("not yet implemented: ") {
                Some(todo) => println!("todo={todo}"),
                None => println!("panic={}", text.replace('\n', " ")),
            }
            std::process::exit(0)
        }
    }
}

fn helper_setup<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| {
        println!("setup={what}: {e}");
        std::process::exit(0)
    })
}

/// The grader's binary as a helper: single-threaded, at the start of main.
fn run_helper(which: &str) -> ! {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    // Every helper works in a mount namespace of its own, cut off from the
    // machine's before anything else.
    helper_setup("unshare", unshare(CloneFlags::CLONE_NEWNS));
    let remount = |flags: MsFlags| mount(None::<&str>, "/", None::<&str>, flags, None::<&str>);
    helper_setup(
        "make / private",
        remount(MsFlags::MS_REC | MsFlags::MS_PRIVATE),
    );
    match which {
        "clone" => clone_helper(),
        "launch" => launch_helper(),
        "private" => {
            // Shared mounts, as systemd makes them, in this namespace alone.
            helper_setup(
                "make / shared",
                remount(MsFlags::MS_REC | MsFlags::MS_SHARED),
            );
            let before = mountinfo_lines();
            let result = helper_call(step02::mounts::make_private);
            println!("result={result:?}");
            let after = mountinfo_lines();
            println!("mounts={}", (after.len() == before.len()) as u8);
            let propagating: Vec<String> = after
                .iter()
                .filter(|l| l.contains(" shared:") || l.contains(" master:"))
                .map(|l| l.split(' ').nth(4).unwrap_or("?").to_string())
                .collect();
            println!("propagating={}", propagating.join(" "));
            std::process::exit(0)
        }
        "proc" => proc_helper(),
        "init" => init_helper(),
        "pdeathsig" => pdeathsig_helper(),
        "session" => session_helper(),
        _ => {
            println!("setup=no helper {which}");
            std::process::exit(0)
        }
    }
}

fn mountinfo_lines() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// In a new PID namespace: the learner's mount_proc, then what /proc shows.
fn proc_helper() -> ! {
    use nix::sched::{unshare, CloneFlags};
    use nix::unistd::{fork, ForkResult};
    helper_setup("unshare pid", unshare(CloneFlags::CLONE_NEWPID));
    // SAFETY: the helper is single-threaded.
    match helper_setup("fork", unsafe { fork() }) {
        ForkResult::Parent { child } => {
            let _ = nix::sys::wait::waitpid(child, None);
            std::process::exit(0)
        }
        ForkResult::Child => {}
    }
    let result = helper_call(step02::mounts::mount_proc);
    println!("result={result:?}");
    if let Some(line) = mountinfo_lines()
        .into_iter()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some("/proc"))
    {
        let fields: Vec<&str> = line.split(' ').collect();
        let after = line.split(" - ").nth(1).unwrap_or("");
        println!("fstype={}", after.split(' ').next().unwrap_or(""));
        println!("options={}", fields.get(5).unwrap_or(&""));
    }
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort();
    println!(
        "pids={}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::process::exit(0)
}

/// The learner's clone_child with a new UTS and PID namespace: who is who.
fn clone_helper() -> ! {
    use step02::namespaces::Cloned;
    let flags = nix::sched::CloneFlags::CLONE_NEWUTS | nix::sched::CloneFlags::CLONE_NEWPID;
    let own_uts = ns(std::process::id() as i32, "uts");
    let cloned = helper_call(|| step02::namespaces::clone_child(flags));
    match cloned {
        Ok(Cloned::Child) => {
            let me = std::process::id();
            let uts = std::fs::read_link("/proc/thread-self/ns/uts")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!("child_pid={me}");
            println!("child_uts_new={}", (uts != own_uts) as u8);
            std::process::exit(7)
        }
        Ok(Cloned::Parent(child)) => {
            let status = nix::sys::wait::waitpid(child, None);
            println!("parent_wait={status:?}");
            let expected = nix::sys::wait::WaitStatus::Exited(child, 7);
            println!("parent_status={}", (status == Ok(expected)) as u8);
            std::process::exit(0)
        }
        Err(errno) => {
            println!("result=Err({errno})");
            std::process::exit(0)
        }
    }
}

/// The learner's launch, twice: with maps that work, and with maps the
/// kernel refuses.
fn launch_helper() -> ! {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use step02::namespaces::Cloned;
    use step02::userns::{IdRange, UserMapping};
    let mut spec = step02::ContainerSpec {
        process: step01::RunSpec {
            command: vec!["true".into()],
            env: Vec::new(),
            workdir: None,
        },
        namespaces: step02::namespaces::Namespaces {
            user: true,
            ..step02::namespaces::Namespaces::DOCKER_DEFAULTS
        },
        hostname: "box".into(),
        user_mapping: Some(UserMapping {
            uids: IdRange {
                inside: 0,
                outside: 100_000,
                count: 65_536,
            },
            gids: IdRange {
                inside: 0,
                outside: 200_000,
                count: 65_536,
            },
            privileged: true,
        }),
    };
    let (read, write) = helper_setup("pipe", nix::unistd::pipe());
    match helper_call(|| step02::launch::launch(&spec, None)) {
        Ok(Cloned::Child) => {
            drop(write);
            // Wait for the parent's word (or its end), as at a gate.
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&read, &mut byte);
            std::process::exit(9)
        }
        Ok(Cloned::Parent(child)) => {
            drop(read);
            let pid = child.as_raw();
            let me = std::process::id() as i32;
            let map = |file: &str| map_line(pid, file);
            println!("uid_map={:?}", map("uid_map"));
            println!("gid_map={:?}", map("gid_map"));
            for kind in ["user", "pid", "uts", "ipc", "net", "cgroup", "mnt"] {
                println!("new_{kind}={}", (ns(pid, kind) != ns(me, kind)) as u8);
            }
            drop(write);
            println!(
                "status={:?}",
                waitpid(child, None).map(|s| s == WaitStatus::Exited(child, 9))
            );
        }
        Err(error) => {
            println!("result=Err({})", format!("{error:#}").replace('\n', " "));
            std::process::exit(0)
        }
    }
    // Maps the kernel refuses (a count of 0): an error, and no child left.
    if let Some(mapping) = spec.user_mapping.as_mut() {
        mapping.uids.count = 0;
        mapping.gids.count = 0;
    }
    // The child waits, as at a gate, for a word that never comes: only a
    // kill ends it (and the helper's alarm, if nothing does).
    let (read, write) = helper_setup("pipe", nix::unistd::pipe());
    let _ = nix::unistd::alarm::set(5);
    match helper_call(|| step02::launch::launch(&spec, None)) {
        Ok(Cloned::Child) => {
            drop(write);
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&read, &mut byte);
            std::process::exit(0)
        }
        Ok(Cloned::Parent(child)) => {
            println!("refused=Ok");
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
        }
        Err(_) => println!("refused=Err"),
    }
    nix::unistd::alarm::cancel();
    drop((read, write));
    // A child killed a moment ago may not be dead yet.
    let mut status = waitpid(None, Some(WaitPidFlag::WNOHANG));
    for _ in 0..20 {
        if status != Ok(WaitStatus::StillAlive) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        status = waitpid(None, Some(WaitPidFlag::WNOHANG));
    }
    let left = match status {
        Err(nix::errno::Errno::ECHILD) => "none".to_string(),
        Ok(WaitStatus::StillAlive) => "a running child".to_string(),
        other => format!("a child not reaped ({other:?})"),
    };
    println!("left={left}");
    std::process::exit(0)
}

fn clone_flags_for_each_namespace(_ctx: &Ctx) -> Outcome {
    use nix::sched::CloneFlags as F;
    use step02::namespaces::Namespaces;
    let none = Namespaces {
        user: false,
        pid: false,
        uts: false,
        ipc: false,
        net: false,
        cgroup: false,
    };
    let mut cases = vec![
        ("no namespace asked for".to_string(), none, F::CLONE_NEWNS),
        (
            "docker's defaults".to_string(),
            Namespaces::DOCKER_DEFAULTS,
            F::CLONE_NEWNS
                | F::CLONE_NEWPID
                | F::CLONE_NEWUTS
                | F::CLONE_NEWIPC
                | F::CLONE_NEWNET
                | F::CLONE_NEWCGROUP,
        ),
    ];
    let one = |set: fn(&mut Namespaces)| {
        let mut ns = none;
        set(&mut ns);
        ns
    };
    for (name, ns, flag) in [
        ("user", one(|n| n.user = true), F::CLONE_NEWUSER),
        ("pid", one(|n| n.pid = true), F::CLONE_NEWPID),
        ("uts", one(|n| n.uts = true), F::CLONE_NEWUTS),
        ("ipc", one(|n| n.ipc = true), F::CLONE_NEWIPC),
        ("net", one(|n| n.net = true), F::CLONE_NEWNET),
        ("cgroup", one(|n| n.cgroup = true), F::CLONE_NEWCGROUP),
    ] {
        cases.push((format!("only {name}"), ns, F::CLONE_NEWNS | flag));
    }
    let all = Namespaces {
        user: true,
        ..Namespaces::DOCKER_DEFAULTS
    };
    cases.push((
        "every kind, with user".to_string(),
        all,
        F::CLONE_NEWNS
            | F::CLONE_NEWUSER
            | F::CLONE_NEWPID
            | F::CLONE_NEWUTS
            | F::CLONE_NEWIPC
            | F::CLONE_NEWNET
            | F::CLONE_NEWCGROUP,
    ));
    for (what, ns, expected) in cases {
        let seen = call("clone_flags", || step02::namespaces::clone_flags(&ns))?;
        expect_eq(&format!("clone_flags, {what}"), expected, seen)?;
    }
    Ok(())
}

fn clone_makes_a_child_in_new_namespaces(_ctx: &Ctx) -> Outcome {
    let found = helper("clone", "clone_child")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    if let Some(error) = found.get("result") {
        return Err(Fail::new(
            "clone_child with CLONE_NEWUTS | CLONE_NEWPID, as root, should make a child",
        )
        .seen(error));
    }
    expect_eq(
        "the child's pid as it sees itself: PID 1 of its new PID namespace",
        "1".to_string(),
        get("child_pid"),
    )?;
    expect_eq(
        "the child is in a new UTS namespace (/proc/thread-self/ns/uts differs from the parent's)",
        "1".to_string(),
        get("child_uts_new"),
    )?;
    ensure(get("parent_status") == "1", || {
        Fail::new("the parent gets the child's pid and waits for it like a fork()'s: waitpid(pid) sees it exit 7 (the parent is told by SIGCHLD)")
            .seen(format!("waitpid said {}", get("parent_wait")))
    })
}

fn launch_writes_the_maps_from_outside(_ctx: &Ctx) -> Outcome {
    let found = helper("launch", "launch")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    if let Some(error) = found.get("result") {
        return Err(Fail::new(
            "launch of a spec with a user namespace and maps, as root, should make a child",
        )
        .seen(error));
    }
    let new: Vec<&str> = ["user", "pid", "uts", "ipc", "net", "cgroup", "mnt"]
        .into_iter()
        .filter(|kind| get(&format!("new_{kind}")) == "1")
        .collect();
    expect_eq(
        "the child's new namespaces (docker's defaults, a user namespace, and mnt)",
        vec!["user", "pid", "uts", "ipc", "net", "cgroup", "mnt"],
        new,
    )?;
    expect_eq(
        "the child's uid_map when launch returns in the runtime",
        "[0, 100000, 65536]".to_string(),
        get("uid_map"),
    )?;
    expect_eq(
        "the child's gid_map when launch returns in the runtime",
        "[0, 200000, 65536]".to_string(),
        get("gid_map"),
    )?;
    expect_eq(
        "the child got Child back, and did nothing else (it exits 9 when the helper lets it go)",
        "Ok(true)".to_string(),
        get("status"),
    )?;
    expect_eq(
        "maps the kernel refuses (a count of 0): launch returns the error",
        "Err".to_string(),
        found.get("refused").cloned().unwrap_or_else(|| {
            "(no return within 5 s: is the child, waiting at its gate, waited for before it is killed?)".into()
        }),
    )?;
    expect_eq(
        "after a refused map, no child is left (killed and reaped: waitpid(-1) says ECHILD)",
        "none".to_string(),
        get("left"),
    )
}

/// A child of the grader in a new user namespace, waiting; its pid.
fn in_new_userns(ctx: &Ctx) -> Result<std::process::Child, Fail> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("sleep");
    command.arg("60").stdin(std::process::Stdio::null());
    // SAFETY: between fork and exec only unshare(2), a plain system call.
    unsafe {
        command.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(setup("sleep in a new user namespace"))?;
    ctx.track(child.id() as i32);
    Ok(child)
}

fn maps_are_written_once_each(ctx: &Ctx) -> Outcome {
    use step02::userns::{IdRange, UserMapping};
    let range = |outside, count| IdRange {
        inside: 0,
        outside,
        count,
    };
    for (privileged, uids, gids, setgroups) in [
        (
            true,
            range(100_000, 65_536),
            range(200_000, 65_536),
            "allow",
        ),
        (false, range(65_534, 1), range(65_533, 1), "deny"),
    ] {
        let mut child = in_new_userns(ctx)?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let mapping = UserMapping {
            uids,
            gids,
            privileged,
        };
        let result = call("write_maps", || step02::userns::write_maps(pid, &mapping));
        let seen = |file: &str| map_line(pid.as_raw(), file);
        let groups = std::fs::read_to_string(format!("/proc/{pid}/setgroups")).unwrap_or_default();
        let again = result
            .as_ref()
            .ok()
            .map(|_| call("write_maps", || step02::userns::write_maps(pid, &mapping)));
        let (uid_map, gid_map) = (seen("uid_map"), seen("gid_map"));
        let _ = child.kill();
        let _ = child.wait();
        let what = if privileged {
            "privileged"
        } else {
            "unprivileged"
        };
        result?.map_err(|e| {
            Fail::new(format!(
                "write_maps ({what} mapping) into a fresh user namespace should work"
            ))
            .seen(format!("{e:#}"))
        })?;
        expect_eq(
            &format!("/proc/PID/uid_map after write_maps ({what})"),
            vec![0, uids.outside, uids.count],
            uid_map,
        )?;
        expect_eq(
            &format!("/proc/PID/gid_map after write_maps ({what})"),
            vec![0, gids.outside, gids.count],
            gid_map,
        )?;
        expect_eq(
            &format!("/proc/PID/setgroups after write_maps ({what})"),
            setgroups,
            groups.trim(),
        )?;
        if let Some(again) = again {
            ensure(again?.is_err(), || {
                Fail::new("write_maps a second time on the same process: the kernel refuses, and that is an error")
            })?;
        }
    }
    Ok(())
}

fn propagation_is_cut_everywhere(_ctx: &Ctx) -> Outcome {
    let found = helper("private", "make_private")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    expect_eq(
        "make_private in a mount namespace whose mounts are all shared",
        "Ok(())".to_string(),
        get("result"),
    )?;
    expect_eq(
        "mounts that still propagate (shared:N or master:N in /proc/self/mountinfo), / and every mount below it",
        String::new(),
        get("propagating"),
    )?;
    expect_eq(
        "make_private mounts nothing new (as many lines in mountinfo as before)",
        "1".to_string(),
        get("mounts"),
    )
}

fn a_fresh_proc_for_the_pid_namespace(_ctx: &Ctx) -> Outcome {
    let found = helper("proc", "mount_proc")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    expect_eq(
        "mount_proc as PID 1 of a new PID namespace, in a private mount namespace",
        "Ok(())".to_string(),
        get("result"),
    )?;
    expect_eq(
        "the filesystem type of the top mount at /proc (mountinfo)",
        "proc".to_string(),
        get("fstype"),
    )?;
    let options = get("options");
    let missing: Vec<&str> = ["nosuid", "nodev", "noexec"]
        .into_iter()
        .filter(|o| !options.split(',').any(|x| x == *o))
        .collect();
    ensure(missing.is_empty(), || {
        Fail::new("the new /proc allows what no /proc needs: set-uid programs, device nodes or executables")
            .expected("nosuid, nodev and noexec among its mount options (field 6 of its mountinfo line)")
            .seen(format!("{options} (missing {})", missing.join(", ")))
    })?;
    expect_eq(
        "the pids /proc lists: only the PID namespace of the process that mounted it (itself, PID 1)",
        "1".to_string(),
        get("pids"),
    )
}

/// A pending-signal mask's bit for `signal`, as /proc/PID/status shows it.
fn catches(pid: i32, signal: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// The learner's run_as_init in a child of the helper (a subreaper, as PID
/// 1 would be), the helper as the runtime: exec seen, orphans reaped,
/// SIGTERM forwarded, the command's code returned.
fn init_helper() -> ! {
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, ForkResult};
    // The command catches SIGTERM, leaves an orphan that ends soon, and
    // ends by itself within 5 s whatever happens.
    let script = "trap 'exit 42' TERM; (sleep 0.05 &); i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 5";
    let spec = step01::RunSpec {
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        workdir: None,
    };
    let prepared = helper_setup("prepare the command", step01::exec::Prepared::new(&spec));
    let report = helper_setup("the exec report", step01::spawn::ExecReport::new());
    // SAFETY: the helper is single-threaded.
    let child = match helper_setup("fork", unsafe { fork() }) {
        ForkResult::Child => {
            let _ = nix::sys::prctl::set_child_subreaper(true);
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let code = helper_call(|| step02::init::run_as_init(&prepared, report));
            std::process::exit(code)
        }
        ForkResult::Parent { child } => child,
    };
    // No end-of-file within 5 s: the init kept its copy of the report.
    let _ = nix::unistd::alarm::set(5);
    let exec = report.wait_for_exec(child, &prepared);
    nix::unistd::alarm::cancel();
    println!("exec={}", exec.is_ok() as u8);
    let command = grader::poll(SOON, || {
        procfs::children_of(child.as_raw())
            .into_iter()
            .find(|p| catches(p.pid, Signal::SIGTERM as i32))
    });
    println!("command={}", command.is_some() as u8);
    std::thread::sleep(Duration::from_millis(300));
    let zombies = procfs::children_of(child.as_raw())
        .iter()
        .filter(|p| p.state == 'Z')
        .count();
    println!("zombies={zombies}");
    let _ = kill(child, Signal::SIGTERM);
    println!(
        "status={:?}",
        waitpid(child, None).map(|s| format!("{s:?}").replace(&child.to_string(), "INIT"))
    );
    std::process::exit(0)
}

/// The learner's die_with_parent in a grandchild of the helper; its parent
/// then exits: how the grandchild ends (the helper, a subreaper, reaps it).
fn pdeathsig_helper() -> ! {
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, ForkResult};
    helper_setup("subreaper", nix::sys::prctl::set_child_subreaper(true));
    let (read, write) = helper_setup("pipe", nix::unistd::pipe());
    // SAFETY: the helper is single-threaded; so is its child.
    match helper_setup("fork", unsafe { fork() }) {
        ForkResult::Child => match helper_setup("fork", unsafe { fork() }) {
            ForkResult::Child => {
                drop(read);
                let result = helper_call(step02::init::die_with_parent);
                println!("result={result:?}");
                let _ = nix::unistd::write(&write, b"x");
                std::thread::sleep(Duration::from_secs(3));
                std::process::exit(0)
            }
            ForkResult::Parent { .. } => {
                drop(write);
                let mut byte = [0u8; 1];
                let _ = nix::unistd::read(&read, &mut byte);
                // SAFETY: ends this process at once, its child left behind.
                unsafe { nix::libc::_exit(0) }
            }
        },
        ForkResult::Parent { child } => {
            drop((read, write));
            let _ = waitpid(child, None);
            let orphan = waitpid(None, None);
            println!(
                "orphan={}",
                match orphan {
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) =>
                        format!("killed by {signal}"),
                    other => format!("{other:?}"),
                }
            );
            std::process::exit(0)
        }
    }
}

/// The learner's new_session in a child of the helper: whose session.
fn session_helper() -> ! {
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, getpid, getsid, ForkResult};
    // SAFETY: the helper is single-threaded.
    match helper_setup("fork", unsafe { fork() }) {
        ForkResult::Child => {
            let result = helper_call(step02::init::new_session);
            println!("result={result:?}");
            println!("leader={}", (getsid(None) == Ok(getpid())) as u8);
            let tty = match std::fs::File::open("/dev/tty") {
                Ok(_) => "opened".to_string(),
                Err(e) => format!(
                    "{:?}",
                    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
                ),
            };
            println!("tty={tty}");
            std::process::exit(0)
        }
        ForkResult::Parent { child } => {
            let _ = waitpid(child, None);
            std::process::exit(0)
        }
    }
}

fn pid1_duties_with_step_01s_parts(_ctx: &Ctx) -> Outcome {
    let found = helper("init", "run_as_init")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    expect_eq(
        "the runtime's wait_for_exec sees the command start within 5 s (end-of-file once every copy of the report's write end is closed, the init's too)",
        "1".to_string(),
        found.get("exec").cloned().unwrap_or_else(|| "(no end-of-file: the helper timed out)".into()),
    )?;
    expect_eq(
        "the command runs as the init's child (and catches SIGTERM)",
        "1".to_string(),
        get("command"),
    )?;
    expect_eq(
        "zombies among the init's children: the orphan it adopted must be reaped",
        "0".to_string(),
        get("zombies"),
    )?;
    expect_eq(
        "SIGTERM to the init reaches the command, whose trap exits 42; the init returns that code",
        "Ok(\"Exited(Pid(INIT), 42)\")".to_string(),
        get("status"),
    )
}

fn the_init_dies_with_its_parent(_ctx: &Ctx) -> Outcome {
    let found = helper("pdeathsig", "die_with_parent")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    expect_eq(
        "die_with_parent's result",
        "Ok(())".to_string(),
        get("result"),
    )?;
    expect_eq(
        "how a process that called die_with_parent ends when its parent exits",
        "killed by SIGKILL".to_string(),
        get("orphan"),
    )
}

fn a_session_of_its_own(_ctx: &Ctx) -> Outcome {
    let found = helper("session", "new_session")?;
    let get = |key: &str| found.get(key).cloned().unwrap_or_default();
    expect_eq("new_session's result", "Ok(())".to_string(), get("result"))?;
    expect_eq(
        "the caller leads its own session afterwards (getsid(0) is its pid)",
        "1".to_string(),
        get("leader"),
    )?;
    expect_eq(
        "opening /dev/tty afterwards: no controlling terminal",
        "ENXIO".to_string(),
        get("tty"),
    )
}
