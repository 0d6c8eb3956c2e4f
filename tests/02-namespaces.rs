//! Graded checks for step 02: namespaces and PID 1.
//!
//! Compiled into `lesson-02` and `solution-02`. Most checks run the runtime
//! in a *lab* (see `Invocation::in_lab`): fresh namespaces that stand in for
//! the host, with `/` shared, a veth pair, a SysV segment and the host name
//! `grader-lab`. "The host" below means the lab: the runtime's own
//! namespaces. Whatever a runtime leaks lands there, where the check sees it,
//! and never on the machine itself.

use grader::procfs;
use grader::{ensure, expect_eq, poll, Check, Ctx, Fail, Needs, Outcome, Requires, Running};
use nix::sys::signal::Signal;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);
const KINDS: [&str; 6] = ["uts", "pid", "mnt", "ipc", "net", "cgroup"];

fn main() {
    grader::main(
        grader::step!("02-namespaces", Needs::Root),
        vec![
            Check {
                name: "namespaces_are_new",
                points: 3,
                section: "clone-and-the-namespace-flags",
                hint: "clone_flags must hold CLONE_NEWNS always, and CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWCGROUP (and CLONE_NEWUSER) for each namespace the spec asks for.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: namespaces_are_new,
            },
            Check {
                name: "host_modes_share_namespaces",
                points: 1,
                section: "clone-and-the-namespace-flags",
                hint: "A namespace the spec doesn't ask for (--network host, --pid host, ...) gets no CLONE_NEW* flag: the child stays in the host's.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: host_modes_share_namespaces,
            },
            Check {
                name: "hostname_is_the_containers_own",
                points: 2,
                section: "the-host-name",
                hint: "sethostname(name) in the child, after clone with CLONE_NEWUTS: it renames only the container's UTS namespace.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: hostname_is_the_containers_own,
            },
            Check {
                name: "pid_namespace_shows_only_the_container",
                points: 2,
                section: "a-proc-of-its-own",
                hint: "With CLONE_NEWPID the child is PID 1 and the command PID 2; mount a new proc on /proc inside, or /proc (and ps) still show the host's processes.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: pid_namespace_shows_only_the_container,
            },
            Check {
                name: "mounts_stay_inside",
                points: 3,
                section: "mount-propagation",
                hint: "Before mounting anything inside, remount / with MS_REC | MS_PRIVATE: a copy of a shared mount propagates every new mount back to the host.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: mounts_stay_inside,
            },
            Check {
                name: "network_has_only_lo",
                points: 1,
                section: "the-seven-namespaces",
                hint: "CLONE_NEWNET gives the container a network namespace of its own, which starts with only a loopback interface.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: network_has_only_lo,
            },
            Check {
                name: "ipc_objects_stay_outside",
                points: 1,
                section: "the-seven-namespaces",
                hint: "CLONE_NEWIPC: System V IPC objects of the host must not be visible inside.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: ipc_objects_stay_outside,
            },
            Check {
                name: "userns_root_is_not_root_outside",
                points: 2,
                section: "user-namespaces",
                hint: "write_maps writes gid_map then uid_map from outside, before the gate opens; the child then takes uid 0 inside, which the host sees as the mapped uid.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: userns_root_is_not_root_outside,
            },
            Check {
                name: "userns_for_an_unprivileged_caller",
                points: 2,
                section: "user-namespaces",
                hint: "An unprivileged writer must write \"deny\" to /proc/PID/setgroups before gid_map, and may map only its own uid and gid.",
                more: "",
                shape: "",
                requires: Requires::UnprivilegedUserns,
                run: userns_for_an_unprivileged_caller,
            },
            Check {
                name: "init_reaps_orphans",
                points: 2,
                section: "pid-1",
                hint: "In a PID namespace every orphan goes to PID 1, the init: it must reap with step 01's Supervisor (waitpid(-1) until drained).",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: init_reaps_orphans,
            },
            Check {
                name: "sigterm_reaches_the_command",
                points: 2,
                section: "pid-1",
                hint: "The runtime forwards to the init, the init forwards to the command: run_as_init must use step 01's Supervisor. And drop the report after spawning, or the runtime waits for its end-of-file forever.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: sigterm_reaches_the_command,
            },
            Check {
                name: "sigkill_of_the_runtime_ends_the_container",
                points: 2,
                section: "pid-1",
                hint: "prctl(PR_SET_PDEATHSIG, SIGKILL) in the child: when the runtime dies, the init dies, and with PID 1 the kernel ends every process of the PID namespace.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: sigkill_of_the_runtime_ends_the_container,
            },
            Check {
                name: "the_container_ends_with_its_command",
                points: 1,
                section: "pid-1",
                hint: "When the command exits, the init exits with its code; as PID 1 its exit makes the kernel end every other process of the namespace. Don't wait for the other children.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: the_container_ends_with_its_command,
            },
            Check {
                name: "the_callers_terminal_is_out_of_reach",
                points: 2,
                section: "the-callers-terminal",
                hint: "The init must not stay in the caller's session: a session's processes can open its controlling terminal as /dev/tty and type into it (TIOCSTI). Lead a session of your own first thing in the init.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: the_callers_terminal_is_out_of_reach,
            },
            Check {
                name: "bad_input_is_one_line",
                points: 1,
                section: "the-host-name",
                hint: "Check the flags before creating anything: an invalid host name or network mode is `minibox: ...` on one line and exit 125; a valid 63-character name works; a command not found inside still reaches the runtime's exec report (127).",
                more: "",
                shape: "",
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
