//! Graded checks for step 06: lockdown.
//!
//! Compiled into `lesson-06` and `solution-06`. Each check runs real escape
//! programs (the grader's probe, built into this test binary and imported
//! as the image `probe`) inside containers of the runtime under test and
//! asserts that the kernel refused them; the limit checks run a fork loop
//! and an allocation and read the container's cgroup files from the host.
//! Every run is in a lab network namespace with a fresh `--root`; nothing
//! here writes to a host file, mounts on the host, or adds an interface.

use grader::exploits::{file_handle, open_device, DeviceSpec};
use grader::process::{Invocation, Output};
use grader::{ensure, expect_eq, Check, Ctx, Fail, Lab, Needs, Outcome, Requires, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

// Library-level checks: one of the learner's functions, called in a
// process of its own (see `grader::helper`), and what the kernel shows.
#[path = "06-lockdown/confinement.rs"]
mod confinement;
#[path = "06-lockdown/privileges.rs"]
mod privileges;

fn main() {
    grader::helper::dispatch(|kind, args| {
        if !(privileges::helper(kind, args) || confinement::helper(kind, args)) {
            grader::helper::die("helper", format!("no helper {kind:?}"));
        }
    });
    let check = |name, points, section, hint, more, shape, run| Check {
        name,
        points,
        section,
        hint,
        more,
        shape,
        requires: Requires::Nothing,
        run,
    };
    let mut checks = privileges::checks();
    checks.extend(confinement::checks());
    checks.extend(vec![
            check("inherited_fds_do_not_reach_the_container", 3, "file-descriptors",
                "The runtime's caller had a host directory open as fd 7: no fd >= 3 may be left open (but the exec report's pipe) in the init, nor in a command's child before it follows any path. run, exec and the init itself are tried.",
                "fds::close_all_but, called by the given policy.rs in the init (keeping its exec report's pipe) and first thing in each command's child (step 01's Lockdown::seal); close_range(2). `ls -l /proc/self/fd` in a container shows what is left.",
                "1. close_all_but(keep) closes every fd from 3 up but keep's. 2. the init calls it before it forks the command. 3. a command's child calls it right after the fork, before its chdir. 4. inside: /proc/self/fd lists 0, 1, 2 only.",
                inherited_fds_do_not_reach_the_container),
            check("shocker_is_blocked", 3, "capabilities",
                "open_by_handle_at through the /etc/hosts of a container on a bridge (a file of the store, bind-mounted) opened a host file: it needs CAP_DAC_READ_SEARCH, which docker's 14 don't have. The container's processes must hold docker's set only, the bounding set included; seccomp denies the call too, unless the container holds that capability.",
                "capabilities::drop_to (the five sets: capabilities(7)), called by policy::lock_down from before_init in the init; seccomp::denied guards open_by_handle_at with CAP_DAC_READ_SEARCH; capabilities::resolve gives it back with --cap-add DAC_READ_SEARCH.",
                "1. resolve(no flags) = docker's 14. 2. in the init, lock_down: drop_to(the 14), then the filter. 3. the probe's open_by_handle_at: EPERM. 4. --cap-add DAC_READ_SEARCH: the capability and the call come back, and the probe reads the marker.",
                shocker_is_blocked),
            check("capabilities_are_dockers_fourteen", 2, "capabilities",
                "CapEff, CapPrm and CapBnd of the command (and of an exec'd one, and of the init) must be docker's default set, 0x00000000a80425fb, with CapInh and CapAmb 0 and NoNewPrivs 1.",
                "capabilities::resolve (docker's DEFAULT), capabilities::drop_to, policy::lock_down and policy::before_init; an exec'd command gets them from the given exec path, which calls lock_down before its execve when applied() is false. /proc/PID/status; capsh --decode=a80425fb.",
                "1. the init: before_init -> lock_down -> drop_to(the 14): bounding first, then inheritable and ambient emptied, effective, permitted. 2. no_new_privs, the filter. 3. the command inherits all of it. 4. exec: lock_down in its child, with the init's set.",
                capabilities_are_dockers_fourteen),
            check("flags_open_the_lockdown_again", 2, "opting-out",
                "--cap-add adds to the default set and --cap-drop takes away (ALL means every one); --privileged gives every capability and no filter; --security-opt seccomp=unconfined keeps the capabilities but installs no filter.",
                "capabilities::resolve (docker's TweakCapabilities); policy::lock_down for a policy without filters (no_new_privs alone) and for --privileged (no no_new_privs); seccomp::filters for the set resolved (CAP_SYS_ADMIN gives back its calls).",
                "1. resolve(add, drop, privileged) -> the set. 2. the given cli builds the policy from it. 3. lock_down: drop_to(set); no_new_privs only if asked; the filters only if any. 4. --privileged: every capability, nothing else.",
                flags_open_the_lockdown_again),
            check("seccomp_denies_dockers_list", 2, "seccomp",
                "The command must run under the filters (Seccomp 2): io_uring_setup and socket(AF_VSOCK) answer EPERM, unshare is denied without CAP_SYS_ADMIN and given back with it, as docker's profile does.",
                "seccomp::denied (the list), seccomp::filters (the rules, a second filter for clone3), seccomp::install (no_new_privs, then each filter), called from policy::lock_down; seccomp(2), seccompiler.",
                "1. denied() lists io_uring_*, unshare (guard CAP_SYS_ADMIN), ... 2. filters(caps): EPERM for each listed call the caps don't give back, socket(AF_VSOCK), clone with namespace flags; ENOSYS for clone3. 3. install them in the init, last. 4. with CAP_SYS_ADMIN: no clone rules, no clone3 filter.",
                seccomp_denies_dockers_list),
            check("cgroup_release_agent_is_out_of_reach", 3, "seccomp",
                "mount -t cgroup (the release_agent escape, CVE-2022-0492) must fail with EPERM directly and from a new user namespace: no CAP_SYS_ADMIN, and seccomp denies unshare and mount.",
                "capabilities::drop_to (no CAP_SYS_ADMIN in docker's 14); seccomp::denied with mount and unshare guarded by CAP_SYS_ADMIN; seccomp::filters' clone rules for CLONE_NEWUSER.",
                "1. the container holds docker's 14: mount needs CAP_SYS_ADMIN -> EPERM. 2. the filter denies unshare (and clone with CLONE_NEWUSER): no user namespace to be root in. 3. --privileged: the mount works (the control).",
                cgroup_release_agent_is_out_of_reach),
            check("proc_is_masked_and_read_only", 3, "masked-and-read-only-paths",
                "In the init, inside the rootfs: /dev/null over each masked file and an empty read-only tmpfs over each masked directory; each read-only path bound onto itself and remounted read-only, as a bind (this container's mount only). With --privileged nothing is masked.",
                "masks::apply, masks::mask and masks::read_only (yours; policy.rs calls apply in the init, after the root switch, before the capabilities go); nix::mount::mount. `cat /proc/self/mountinfo` in a container lists the masks.",
                "1. apply: /proc and /sys are a proc and a sysfs. 2. mask each of MASKED (file: bind /dev/null; directory: ro tmpfs). 3. read_only each of READ_ONLY (rbind onto itself; remount bind,ro,nosuid,nodev,noexec). 4. inside: writing /proc/sys/kernel/core_pattern gives EROFS, /proc/kcore reads empty.",
                proc_is_masked_and_read_only),
            check("sys_stays_read_only", 2, "masked-and-read-only-paths",
                "/sys is mounted read-only (step 03); without CAP_SYS_ADMIN, and with mount denied by seccomp, mount -o remount,rw /sys must fail with EPERM.",
                "Step 03's mounts::mount_sys (MS_RDONLY); capabilities::drop_to takes CAP_SYS_ADMIN away, seccomp::install denies mount. mount(2) EPERM without CAP_SYS_ADMIN.",
                "1. /sys mounted read-only by step 03. 2. CAP_SYS_ADMIN dropped. 3. mount denied by the filter. 4. inside: mount -o remount,rw /sys gives EPERM.",
                sys_stays_read_only),
            check("keyrings_are_not_shared", 2, "seccomp",
                "The keyrings are not namespaced: the container's root reached host root's user keyring. Seccomp must deny keyctl, add_key and request_key with EPERM, whatever the capabilities (no capability guards them).",
                "seccomp::denied: keyctl, add_key, request_key with no guard (None); seccomp::filters turns each into a rule with no condition; keyctl(2), keyrings(7).",
                "1. denied() lists the three keyring calls, guard None. 2. filters(): every call always matches -> EPERM. 3. the probe's keyctl: EPERM; with seccomp=unconfined it reaches the kernel.",
                keyrings_are_not_shared),
            check("init_environment_is_clean", 2, "the-inits-environment",
                "The init is a copy of the runtime: its /proc/1/environ showed the caller's environment. Before the command starts, the init must zero its environment's strings and become non-dumpable (in before_init, before the lockdown); the command keeps only the image's ENV and -e.",
                "policy::before_init, the init's sequence: environ::wipe (given: the strings zeroed, PR_SET_DUMPABLE 0) and environ::retitle between the masks and fds::close_all_but, lock_down last; proc(5) on /proc/PID/environ.",
                "1. masks, cgroup namespace. 2. wipe the environment (zeros, non-dumpable). 3. retitle minibox-init. 4. close every fd but keep. 5. lock_down. 6. inside: /proc/1/environ can't be read, or reads zeros.",
                init_environment_is_clean),
            check("loopback_is_up_with_network_none", 1, "cgroups-and-limits",
                "--network none: the namespace's lo starts down; bring it up from the host side while the init waits (attach.rs ready: netlink set_up).",
                "The given attach.rs (ready): step 05's netlink set_up for lo's index, from the host side, before the gate opens. `ip link show lo` inside shows UP.",
                "1. the container's network namespace is made. 2. before the gate: set lo up in it. 3. inside: /sys/class/net/lo/flags has bit 0 (IFF_UP).",
                loopback_is_up_with_network_none),
            check("limits_are_in_the_kernel", 3, "cgroups-and-limits",
                "The container's init must be in groups of its own, one in the hierarchy that holds each controller, with the limits in their files, before the gate opens; inside, /proc/self/cgroup shows / (a cgroup namespace of its own); the groups go when the container ends.",
                "cgroups::Group::create (given: makes the directories and calls your set_limits), your Group::set_limits and Group::add (called by the given attach.rs with the init's pid), the init's unshare(CLONE_NEWCGROUP) (given), Group::end when the container ends. /proc/PID/cgroup lists an init's groups.",
                "1. run --memory --pids-limit --cpus: create the group with the limits. 2. set_limits writes memory, pids and cpu files where each controller is. 3. add(init's pid) writes it into each cgroup.procs. 4. the gate opens. 5. rm: the groups are removed.",
                limits_are_in_the_kernel),
            check("pids_limit_stops_a_fork_loop", 2, "cgroups-and-limits",
                "--pids-limit N: pids.max of the container's group; fork then fails with EAGAIN once N processes exist.",
                "Group::set_limits: pids.max in the pids hierarchy's directory; fork(2) answers EAGAIN once the group holds that many tasks.",
                "1. --pids-limit 20: pids.max = 20. 2. the init is added before the gate. 3. inside, the fork loop stops with EAGAIN before 20.",
                pids_limit_stops_a_fork_loop),
            check("memory_limit_ends_in_the_oom_killer", 2, "cgroups-and-limits",
                "--memory: memory.max (v2) or memory.limit_in_bytes (v1), no swap: an allocation past it is killed by the OOM killer (SIGKILL, exit 137).",
                "Group::set_limits: memory.max and memory.swap.max 0 (v2) or memory.limit_in_bytes and memory.memsw.limit_in_bytes (v1). The kernel's OOM killer sends SIGKILL inside the group.",
                "1. --memory 32m: the limit in the memory hierarchy's directory, no swap on top. 2. the init is added before the gate. 3. inside, an allocation of 96 MiB is killed: exit 137.",
                memory_limit_ends_in_the_oom_killer),
            check("exec_is_out_of_sight_until_its_execve", 3, "execs-open-window",
                "exec's child is a copy of the runtime until its execve, and a process of the container: it must be non-dumpable from before it joins (its /proc/PID/environ, fd/, exe and ptrace then need CAP_SYS_PTRACE), and hold no fd of the caller's by the time it runs anything of the container's.",
                "seal::seal, called first thing by the given cli.rs exec (before setns), prctl(2) PR_SET_DUMPABLE; fds::close_all_but in the child. ptrace(2) \"Ptrace access mode checking\".",
                "1. exec: seal() before it joins the container's namespaces. 2. its child (non-dumpable too: the flag is inherited) closes every fd but its exec report's. 3. its execve makes it dumpable again, the container's program by then.",
                exec_is_out_of_sight_until_its_execve),
            check("exec_cannot_start_outside_the_container", 2, "execs-open-window",
                "A working directory that is a link to /proc/self/fd/7 leads wherever fd 7 leads: the child must close every fd but its exec report's before it follows any path, and then refuse a working directory outside the root.",
                "fds::close_all_but, called first thing in exec's child by step 01's Lockdown::seal (policy.rs); fds::cwd_below_root (given) after the chdir. getcwd(2): \"(unreachable)\".",
                "1. exec's child: close_all_but(its exec report's pipe). 2. chdir to the working directory: /proc/self/fd/7 now leads nowhere: an error. 3. the runtime says so in one line, exit 125.",
                exec_cannot_start_outside_the_container),
            check("the_runtime_binary_is_out_of_reach", 3, "the-runtimes-own-binary",
                "A script whose interpreter is /proc/self/exe ran the runtime's binary inside the container. The container's programs must be exec'd through the tiny program, held in a memfd: a file in memory, written once, sealed against writing, growing, shrinking and unsealing.",
                "trampoline::sealed_copy (yours: memfd_create(2), write, fcntl(2) F_ADD_SEALS), used by the given trampoline::execve with execveat(2) AT_EMPTY_PATH. `ls -l /proc/PID/exe` of a held process shows /memfd:minibox-exec (deleted).",
                "1. sealed_copy(elf()): a memfd with the tiny program, sealed. 2. execve: execveat(fd, \"\", [PATH, ARGV0, ARGS], envp, AT_EMPTY_PATH). 3. the tiny program execs PATH: /proc/self/exe is the memfd until then, never the runtime.",
                the_runtime_binary_is_out_of_reach),
            check("bad_lockdown_input_is_one_line", 1, "the-exercise",
                "A bad --memory, --cpus, --pids-limit, --cap-add or --security-opt: one line, exit 125, no container made; a good run with the same flags then works.",
                "cgroups::parse_memory, parse_pids, parse_cpus (given), the capability names (capabilities.rs) and --security-opt, read by the given cli.rs before anything is made; an error is one line on stderr, exit 125.",
                "1. read every flag before making a container. 2. a bad one: one line naming it, exit 125. 3. nothing left in --root or in the cgroup trees. 4. the same flags, good, run.",
                bad_lockdown_input_is_one_line),
            check("device_nodes_are_out_of_reach", 3, "device-rules",
                "With CAP_MKNOD, root in the container made nodes for the host's devices and opened them. The container's group needs docker's device rules before the gate opens: a program the kernel runs at each mknod and open of a device (1 on a rule's match, 0 at the end), attached to the group's v2 directory.",
                "devices::program (yours), loaded and attached by the given devices::apply (bpf::load, bpf::attach; v1's devices.allow where no v2 program can be attached). `bpftool cgroup show /sys/fs/cgroup/unified/minibox/ID` lists it.",
                "1. the group is made. 2. apply: program(DEFAULT), loaded, attached to the v2 directory. 3. the init added, the gate opens. 4. inside: mknod works, open of a node for the host's disk: EPERM; /dev/null works.",
                device_nodes_are_out_of_reach),
    ]);
    grader::main(grader::step!("06-lockdown", Needs::Root), checks);
}

/// docker's 14 capabilities, as /proc/PID/status shows them.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// A lab (a network namespace of its own, shared by the check's runs) and
/// a store with the probe image, for one check.
fn probe_lab(ctx: &Ctx) -> Result<Lab<'_>, Fail> {
    let lab = Lab::new(ctx)?;
    lab.import_probe()?;
    Ok(lab)
}

/// What this step's checks do in a lab.
trait Lockdown {
    fn minibox_with_fd(&self, dir: &Path, args: &[&str]) -> Invocation;
    fn ok(&self, args: &[&str], why: &str) -> Result<Output, Fail>;
    fn probe(&self, flags: &[&str], experiment: &[&str]) -> Result<Answers, Fail>;
    fn start(&self, name: &str, flags: &[&str], command: &[&str]) -> Result<(), Fail>;
    fn detached(&self, name: &str, flags: &[&str], command: &[&str]) -> Result<i32, Fail>;
    fn log_when_done(&self, name: &str) -> Result<Answers, Fail>;
}

impl Lockdown for Lab<'_> {
    /// The runtime started with `dir` open as fd 7 (not close-on-exec), as
    /// a shell's `exec 7<DIR` leaves it to every program it starts.
    fn minibox_with_fd(&self, dir: &Path, args: &[&str]) -> Invocation {
        let binary = self.ctx.binary().to_string_lossy().into_owned();
        let root = self.root().to_string_lossy().into_owned();
        let dir = dir.to_string_lossy().into_owned();
        let mut full = vec![
            "-c",
            "exec 7< \"$0\"; exec \"$@\"",
            dir.as_str(),
            binary.as_str(),
            "--root",
            root.as_str(),
        ];
        full.extend_from_slice(args);
        self.place(self.ctx.minibox_at(Path::new("/bin/sh"), &full))
    }

    fn ok(&self, args: &[&str], why: &str) -> Result<Output, Fail> {
        let out = self.minibox(args).output()?;
        out.expect_code(0, why)?;
        Ok(out)
    }

    /// Run the probe's experiment in a container with `flags`; its answers.
    fn probe(&self, flags: &[&str], experiment: &[&str]) -> Result<Answers, Fail> {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend(["probe", "grader-probe", "--probe"]);
        args.extend_from_slice(experiment);
        let out = self.ok(&args, "the probe's container should run")?;
        Ok(Answers::of(&out))
    }

    /// Start a detached container running `command`.
    fn start(&self, name: &str, flags: &[&str], command: &[&str]) -> Result<(), Fail> {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend_from_slice(flags);
        args.push("probe");
        args.extend_from_slice(command);
        self.ok(&args, "a detached container should start")?;
        Ok(())
    }

    /// A detached container running `command`; the pid of its init.
    fn detached(&self, name: &str, flags: &[&str], command: &[&str]) -> Result<i32, Fail> {
        self.start(name, flags, command)?;
        init_pid(self, name)
    }

    /// The log of a detached container, once it has exited.
    fn log_when_done(&self, name: &str) -> Result<Answers, Fail> {
        let done = grader::poll(Duration::from_secs(10), || {
            let out = self.minibox(&["ps", "-a"]).output().ok()?;
            let line = out
                .stdout_text()
                .lines()
                .find(|l| l.contains(name))?
                .to_string();
            line.contains("Exited").then_some(())
        });
        ensure(done.is_some(), || {
            Fail::new(format!("the container {name} should exit"))
        })?;
        let out = self.ok(&["logs", name], "logs should work")?;
        Ok(Answers::of(&out))
    }
}

/// The probe's `key: value` lines.
struct Answers {
    shown: String,
    lines: BTreeMap<String, String>,
}

impl Answers {
    fn of(out: &Output) -> Answers {
        let lines = out
            .stdout_text()
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Answers {
            shown: out.stdout_text(),
            lines,
        }
    }

    fn get(&self, key: &str) -> String {
        self.lines
            .get(key)
            .cloned()
            .unwrap_or_else(|| "(not said)".into())
    }

    /// Fail if the experiment `key` got out.
    fn blocked(&self, key: &str, what: &str) -> Outcome {
        let seen = self.get(key);
        ensure(seen != "(not said)", || {
            Fail::new(format!(
                "the probe said nothing about `{key}`: did its container run to the end?"
            ))
            .expected(format!("{key}: blocked (an errno)"))
            .seen(if self.shown.trim().is_empty() {
                "no answer at all"
            } else {
                self.shown.trim()
            })
        })?;
        ensure(!seen.starts_with("reached"), || {
            Fail::new(format!("{what}: the escape worked"))
                .expected(format!("{key}: blocked (an errno)"))
                .seen(self.shown.trim())
        })
    }

    fn expect(&self, key: &str, expected: &str, what: &str) -> Outcome {
        let seen = self.get(key);
        ensure(seen == expected, || {
            Fail::new(what.to_string())
                .expected(format!("{key}: {expected}"))
                .seen(self.shown.trim())
        })
    }
}

/// A host directory holding a marker file, for an escape to look for.
fn marker(ctx: &Ctx) -> Result<(TempDir, PathBuf), Fail> {
    let dir = ctx.temp_dir();
    let path = dir.path().join("host-marker");
    std::fs::write(&path, "grader host marker\n")
        .map_err(|e| Fail::new("the grader could not write its marker").seen(e))?;
    Ok((dir, path))
}

fn inherited_fds_do_not_reach_the_container(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let (dir, marker) = marker(ctx)?;
    let marker_arg = marker.to_string_lossy().into_owned();
    let probe = [
        "probe",
        "grader-probe",
        "--probe",
        "fd-escape",
        marker_arg.as_str(),
    ];
    // run: the command, with the caller's fd 7.
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(probe);
    let out = lab.minibox_with_fd(dir.path(), &args).output()?;
    out.expect_code(0, "the probe's container should run")?;
    let answers = Answers::of(&out);
    answers.blocked(
        "fd-escape",
        "run: fchdir to an inherited fd, then `..`, reached the host's files",
    )?;
    ensure(answers.get("open-fds") == "0", || {
        Fail::new("the command should hold no fd >= 3 (nor see one of the init's)")
            .expected("open-fds: 0")
            .seen(answers.shown.trim())
    })?;
    // The init itself, read from the host: it is not dumpable, so the
    // probe's look through /proc/1/fd finds nothing either way. A detached
    // container started with the caller's fd 7; its init's fds.
    let args = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "fdbox",
        "probe",
        "sleep",
        "1000",
    ];
    let out = lab.minibox_with_fd(dir.path(), &args).output()?;
    out.expect_code(0, "a detached container should start")?;
    let init = init_pid(&lab, "fdbox")?;
    let held = fds_of(init);
    let leaked: Vec<&String> = held
        .iter()
        .filter(|(fd, link)| *fd >= 3 && !link.starts_with("pipe:"))
        .map(|(_, link)| link)
        .collect();
    ensure(leaked.is_empty(), || {
        Fail::new(format!(
            "the container's init (pid {init} on the host) should hold no fd >= 3 but pipes (its exec report's): a file or directory of the host's held there leads out of the rootfs (the caller's fd 7 was {})",
            dir.path().display()
        ))
        .expected("fds 0, 1, 2, and pipes only")
        .seen(
            held.iter()
                .map(|(fd, link)| format!("{fd} -> {link}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    // exec: the joining command, with the caller's fd 7.
    let mut args = vec!["exec", "fdbox", "grader-probe", "--probe", "fd-escape"];
    args.push(marker_arg.as_str());
    let out = lab.minibox_with_fd(dir.path(), &args).output()?;
    out.expect_code(0, "exec of the probe should run")?;
    Answers::of(&out).blocked(
        "fd-escape",
        "exec: an inherited fd reached the host's files",
    )
}

/// The host pid of a container's init, from `inspect`'s State.Pid.
fn init_pid(lab: &Lab, name: &str) -> Result<i32, Fail> {
    let text = lab
        .ok(&["inspect", name], "inspect should work")?
        .stdout_text();
    let all: Value =
        serde_json::from_str(&text).map_err(|e| Fail::new("inspect should print JSON").seen(e))?;
    let pid = all[0]["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    ensure(pid > 0, || {
        Fail::new("inspect should show State.Pid").seen(&all[0]["State"])
    })?;
    lab.ctx.track(pid);
    Ok(pid)
}

/// A process's fds and where each leads, read from the host's
/// /proc/PID/fd (root reads it even when the process is not dumpable).
fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    let link = std::fs::read_link(e.path()).ok()?;
                    Some((fd, link.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

fn shocker_is_blocked(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    // The marker on the same filesystem as the store (both under the
    // grader's temp dir): on a bridge network, the container's /etc/hosts
    // is a file of the store, bind-mounted, and its handle opens the
    // marker from there.
    let marker = lab.dir.path().join("shocker-marker");
    std::fs::write(&marker, "shocker marker 4217\n").map_err(|e| Fail::new("setup").seen(e))?;
    let handle = file_handle(&marker)
        .map_err(|e| Fail::new("the grader could not take its marker's file handle").seen(e))?;
    let shocker = |name: &str, flags: &[&str]| -> Result<Answers, Fail> {
        let mut args = vec!["run", "-d", "--network", "bridge", "--name", name];
        args.extend_from_slice(flags);
        args.extend([
            "probe",
            "grader-probe",
            "--probe",
            "shocker",
            &handle,
            "shocker marker 4217",
        ]);
        lab.ok(
            &args,
            "a detached container on the default bridge should start",
        )?;
        lab.log_when_done(name)
    };
    let answers = shocker("shocker", &[])?;
    answers.blocked(
        "shocker",
        "open_by_handle_at through a file bind-mounted from the host opened a host file",
    )?;
    answers.expect(
        "open_by_handle_at via /etc/hosts",
        "EPERM",
        "open_by_handle_at must be refused",
    )?;
    for fd in 0..3 {
        let seen = answers.get(&format!("open_by_handle_at via fd {fd}"));
        ensure(seen != "opened something else", || {
            Fail::new(format!(
                "the container's fd {fd} should be none of the host's files (a pipe)"
            ))
            .seen(answers.shown.trim())
        })?;
    }
    // The control: given back its capability (and so its system call), the
    // same program does get out. This is what step 05 allowed everyone.
    let control = shocker("shocker-control", &["--cap-add", "DAC_READ_SEARCH"])?;
    ensure(control.get("shocker").starts_with("reached"), || {
        Fail::new("with --cap-add DAC_READ_SEARCH the exploit should work (seccomp allows open_by_handle_at to a container that holds the capability)")
            .seen(control.shown.trim())
    })
}

fn status_of(pid: i32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| Some(l.strip_prefix(field)?.strip_prefix(':')?.trim().to_string()))
        .unwrap_or_default()
}

fn capabilities_are_dockers_fourteen(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&[], &["lockdown"])?;
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        answers.expect(
            field,
            DOCKER_CAPS,
            "the command should hold docker's 14 capabilities",
        )?;
    }
    answers.expect(
        "CapInh",
        "0000000000000000",
        "no inheritable capabilities (docker's default since CVE-2022-24769)",
    )?;
    answers.expect("CapAmb", "0000000000000000", "no ambient capabilities")?;
    answers.expect("NoNewPrivs", "1", "no_new_privs should be set")?;
    let init = lab.detached("capbox", &[], &["sleep", "1000"])?;
    expect_eq(
        "CapBnd of the container's init (/proc/PID/status)",
        DOCKER_CAPS.to_string(),
        status_of(init, "CapBnd"),
    )?;
    expect_eq(
        "CapEff of the container's init",
        DOCKER_CAPS.to_string(),
        status_of(init, "CapEff"),
    )?;
    let out = lab.ok(
        &["exec", "capbox", "grader-probe", "--probe", "lockdown"],
        "exec should run",
    )?;
    let exec = Answers::of(&out);
    exec.expect(
        "CapEff",
        DOCKER_CAPS,
        "an exec'd command should hold the container's capabilities",
    )?;
    exec.expect(
        "CapBnd",
        DOCKER_CAPS,
        "an exec'd command should hold the container's bounding set",
    )?;
    exec.expect("Seccomp", "2", "an exec'd command should be filtered too")
}

fn flags_open_the_lockdown_again(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let bits = |text: &str| u64::from_str_radix(text, 16).unwrap_or(0);
    let (sys_admin, net_raw) = (1u64 << 21, 1u64 << 13);
    let answers = lab.probe(
        &["--cap-add", "SYS_ADMIN", "--cap-drop", "net_raw"],
        &["lockdown"],
    )?;
    let eff = bits(&answers.get("CapEff"));
    ensure(eff == (bits(DOCKER_CAPS) | sys_admin) & !net_raw, || {
        Fail::new(
            "--cap-add SYS_ADMIN --cap-drop net_raw: the default set, plus SYS_ADMIN, less NET_RAW",
        )
        .expected(format!(
            "CapEff: {:016x}",
            (bits(DOCKER_CAPS) | sys_admin) & !net_raw
        ))
        .seen(answers.get("CapEff"))
    })?;
    let host_bounding = status_of(std::process::id() as i32, "CapBnd");
    let privileged = lab.probe(&["--privileged"], &["lockdown"])?;
    privileged.expect(
        "CapEff",
        &host_bounding,
        "--privileged: every capability the host has",
    )?;
    privileged.expect("Seccomp", "0", "--privileged: no seccomp filter")?;
    let unconfined = lab.probe(&["--security-opt", "seccomp=unconfined"], &["lockdown"])?;
    unconfined.expect(
        "Seccomp",
        "0",
        "--security-opt seccomp=unconfined: no filter",
    )?;
    unconfined.expect(
        "CapEff",
        DOCKER_CAPS,
        "--security-opt seccomp=unconfined keeps the default capabilities",
    )?;
    let none = lab.probe(&["--cap-drop", "ALL"], &["lockdown"])?;
    none.expect(
        "CapEff",
        "0000000000000000",
        "--cap-drop ALL: no capability",
    )?;
    // --cgroupns host: the host's cgroup namespace, not one of its own.
    let out = lab.ok(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroupns",
            "host",
            "probe",
            "readlink",
            "/proc/self/ns/cgroup",
        ],
        "a run with --cgroupns host should work",
    )?;
    let host = std::fs::read_link("/proc/self/ns/cgroup")
        .map(|l| l.display().to_string())
        .unwrap_or_default();
    expect_eq(
        "--cgroupns host: the container's /proc/self/ns/cgroup",
        host,
        out.stdout_text().trim().to_string(),
    )
}

fn seccomp_denies_dockers_list(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&[], &["lockdown"])?;
    answers.expect(
        "Seccomp",
        "2",
        "the command should run under a seccomp filter (Seccomp: 2)",
    )?;
    answers.expect(
        "io_uring",
        "EPERM",
        "io_uring_setup must be denied (docker's profile)",
    )?;
    answers.expect(
        "vsock",
        "EPERM",
        "socket(AF_VSOCK) must be denied: vsock has no network namespace",
    )?;
    // The control, where this kernel lets root make rings at all
    // (kernel.io_uring_disabled 0): without a filter, the same call does.
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|v| v.trim() != "0")
        .unwrap_or(false);
    let open = lab.probe(&["--security-opt", "seccomp=unconfined"], &["lockdown"])?;
    if !disabled {
        ensure(open.get("io_uring").starts_with("reached"), || {
            Fail::new("the control: with seccomp=unconfined, io_uring_setup should make a ring")
                .seen(open.shown.trim())
        })?;
    }
    // Without a filter the kernel itself answers: a socket where it has
    // vsock (a VM), an errno of its own (not the filter's EPERM) elsewhere.
    ensure(open.get("vsock") != "EPERM", || {
        Fail::new("the control: with seccomp=unconfined, socket(AF_VSOCK) should reach the kernel")
            .seen(open.shown.trim())
    })?;
    // The shell's own view: unshare(1) is denied even a namespace that
    // needs no privilege at all (docker's profile denies unshare whole).
    let out = lab
        .minibox(&[
            "run",
            "--rm",
            "--network",
            "none",
            "probe",
            "unshare",
            "--uts",
            "true",
        ])
        .output()?;
    ensure(out.code() != Some(0), || {
        Fail::new("unshare --uts in the container should be denied (seccomp: unshare without CAP_SYS_ADMIN)")
            .seen(out.summary())
    })?;
    let admin = lab.probe(&["--cap-add", "SYS_ADMIN"], &["cgroup-mount"])?;
    ensure(!admin.get("userns").starts_with("unshare"), || {
        Fail::new("--cap-add SYS_ADMIN should give unshare back, as docker's profile does")
            .seen(admin.shown.trim())
    })
}

fn cgroup_release_agent_is_out_of_reach(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&[], &["cgroup-mount"])?;
    answers.blocked(
        "direct",
        "mount -t cgroup in the container reached a release_agent",
    )?;
    answers.expect("direct", "EPERM", "mount -t cgroup must be refused")?;
    answers.blocked(
        "userns",
        "unshare -Urm, then mount -t cgroup, reached a release_agent",
    )?;
    answers.expect(
        "userns",
        "unshare: EPERM",
        "a new user namespace must be refused",
    )?;
    // The control, where the host has a cgroup v1 hierarchy to mount: with
    // --privileged the same program mounts it.
    let v1 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" - cgroup ") && (l.contains(",pids") || l.contains(",memory")));
    if v1 {
        let control = lab.probe(&["--privileged"], &["cgroup-mount"])?;
        // (Whether its release_agent is then in reach depends on the
        // group the mount is rooted at: --privileged is host root.)
        ensure(control.get("direct").contains("mounted"), || {
            Fail::new("with --privileged the cgroup mount should work (this host has cgroup v1)")
                .seen(control.shown.trim())
        })?;
    }
    Ok(())
}

fn proc_is_masked_and_read_only(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&[], &["proc-sys"])?;
    let writable = [
        "/proc/sys/kernel/core_pattern",
        "/proc/sysrq-trigger",
        "/proc/sys/vm/drop_caches",
    ];
    // (Only those this kernel has: a container can't show what isn't.)
    for path in writable.into_iter().filter(|p| Path::new(p).exists()) {
        answers.blocked(path, &format!("{path} was writable in the container"))?;
        answers.expect(path, "EROFS", &format!("{path} should be read-only"))?;
    }
    // The masked paths this host has (a container can't show what isn't).
    let masked: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/acpi",
        "/proc/interrupts",
        "/proc/scsi",
        "/proc/latency_stats",
        "/sys/firmware",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    // With --pid host too: the host's processes, its kernel's settings
    // just as read-only.
    let host = lab.probe(&["--pid", "host"], &["proc-sys"])?;
    for path in writable.into_iter().filter(|p| Path::new(p).exists()) {
        host.expect(
            path,
            "EROFS",
            &format!("--pid host: {path} should be read-only"),
        )?;
    }
    let control = lab.probe(&["--privileged"], &["proc-sys"])?;
    ensure(
        control
            .get("/proc/sys/kernel/core_pattern")
            .starts_with("reached"),
        || {
            Fail::new(
                "with --privileged, core_pattern should open for writing (nothing is written)",
            )
            .seen(control.shown.trim())
        },
    )?;
    let mut experiment = vec!["masked"];
    experiment.extend(&masked);
    let answers = lab.probe(&[], &experiment)?;
    for path in masked {
        answers.expect(
            path,
            "masked",
            &format!("{path} should be masked (/dev/null, or an empty tmpfs)"),
        )?;
    }
    Ok(())
}

fn sys_stays_read_only(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&[], &["sys-remount"])?;
    answers.expect(
        "remount",
        "EPERM",
        "mount -o remount,rw /sys must be refused",
    )?;
    answers.blocked("sys", "/sys became writable")?;
    let control = lab.probe(&["--privileged"], &["sys-remount"])?;
    control.expect(
        "remount",
        "ok",
        "with --privileged, /sys may be remounted (the container's own mount)",
    )
}

fn keyrings_are_not_shared(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&[], &["keyring"])?;
    answers.blocked("keyctl", "the container found host root's user keyring")?;
    answers.expect("keyctl", "EPERM", "keyctl must be denied")?;
    let control = lab.probe(&["--security-opt", "seccomp=unconfined"], &["keyring"])?;
    ensure(control.get("keyctl") != "EPERM", || {
        Fail::new("with seccomp=unconfined, keyctl should reach the kernel (docker denies it by filter, not by capability)")
            .seen(control.shown.trim())
    })
}

fn init_environment_is_clean(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let secret = format!("grader-secret-{}", std::process::id());
    let out = lab
        .minibox(&[
            "run",
            "--rm",
            "--network",
            "none",
            "probe",
            "grader-probe",
            "--probe",
            "environ",
            &secret,
        ])
        .env("GRADER_SECRET", &secret)
        .output()?;
    out.expect_code(0, "the probe's container should run")?;
    let answers = Answers::of(&out);
    answers.blocked(
        "proc1-environ",
        "/proc/1/environ showed the runtime caller's environment",
    )?;
    answers.blocked(
        "own-environ",
        "the command inherited the runtime caller's environment",
    )
}

fn loopback_is_up_with_network_none(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let out = lab.ok(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "probe",
            "cat",
            "/sys/class/net/lo/flags",
        ],
        "the container should run",
    )?;
    let flags =
        u32::from_str_radix(out.stdout_text().trim().trim_start_matches("0x"), 16).unwrap_or(0);
    ensure(flags & 1 == 1, || {
        Fail::new("lo should be up in --network none (IFF_UP in /sys/class/net/lo/flags)")
            .seen(out.stdout_text().trim())
    })
}

/// The directories of `pid`'s cgroups, by controller (`""` for v2).
fn groups_of(pid: i32) -> BTreeMap<String, PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found = BTreeMap::new();
    for line in std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
    {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let mount = mounts.lines().find_map(|m| {
            let (left, right) = m.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let options = right.nth(1)?;
            let fits = if controllers.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| options.split(',').any(|o| o == c))
            };
            fits.then(|| PathBuf::from(point))
        });
        if let Some(mount) = mount {
            found.insert(
                controllers.to_string(),
                mount.join(path.trim_start_matches('/')),
            );
        }
    }
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn limits_are_in_the_kernel(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let flags = ["--memory", "32m", "--pids-limit", "20", "--cpus", "0.5"];
    let init = lab.detached("limited", &flags, &["sleep", "1000"])?;
    let theirs = groups_of(init);
    let ours = groups_of(std::process::id() as i32);
    let find = |file: &str| theirs.values().map(|d| d.join(file)).find(|p| p.exists());
    let own: Vec<&PathBuf> = theirs
        .iter()
        .filter(|(k, d)| ours.get(*k) != Some(*d))
        .map(|(_, d)| d)
        .collect();
    ensure(!own.is_empty(), || {
        Fail::new("the container's init should be in a cgroup of its own")
            .seen(format!("{theirs:?}"))
    })?;
    let none = || format!("no such file in the init's groups: {theirs:?}");
    let pids = find("pids.max").map_or_else(none, |p| read(&p));
    expect_eq("pids.max of the container's group", "20".to_string(), pids)?;
    let memory = find("memory.max")
        .or_else(|| find("memory.limit_in_bytes"))
        .map_or_else(none, |p| read(&p));
    expect_eq(
        "memory.max (or memory.limit_in_bytes) of the container's group",
        (32u64 << 20).to_string(),
        memory,
    )?;
    let cpu = find("cpu.max")
        .map(|p| read(&p))
        .or_else(|| find("cpu.cfs_quota_us").map(|p| read(&p)));
    ensure(
        cpu.as_deref()
            .is_some_and(|c| c == "50000 100000" || c == "50000"),
        || {
            Fail::new("cpu.max (or cpu.cfs_quota_us) of the container's group: 0.5 CPU is 50000 per 100000 us").seen(format!("{cpu:?}"))
        },
    )?;
    let inside = lab
        .ok(
            &["exec", "limited", "cat", "/proc/self/cgroup"],
            "exec should run",
        )?
        .stdout_text();
    ensure(inside.lines().all(|l| l.ends_with(":/")), || {
        Fail::new("inside, /proc/self/cgroup should show / everywhere (a cgroup namespace rooted at the container's group)").seen(inside.trim())
    })?;
    lab.ok(&["rm", "-f", "limited"], "rm -f should work")?;
    let gone = grader::poll(Duration::from_secs(5), || {
        own.iter().all(|d| !d.exists()).then_some(())
    });
    ensure(gone.is_some(), || {
        Fail::new("the container's groups should be removed when it ends").seen(format!("{own:?}"))
    })
}

fn pids_limit_stops_a_fork_loop(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let answers = lab.probe(&["--pids-limit", "20"], &["fork-loop", "200"])?;
    let forked: u32 = answers.get("forked").parse().unwrap_or(999);
    ensure(forked < 20, || {
        Fail::new("--pids-limit 20: the fork loop should stop before 20 processes")
            .seen(answers.shown.trim())
    })?;
    answers.expect(
        "fork-error",
        "EAGAIN",
        "fork should fail with EAGAIN at pids.max",
    )?;
    let free = lab.probe(&[], &["fork-loop", "60"])?;
    expect_eq(
        "children forked without a limit",
        "60".to_string(),
        free.get("forked"),
    )
}

fn memory_limit_ends_in_the_oom_killer(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "32m",
        "probe",
        "grader-probe",
        "--probe",
        "allocate",
        "96",
    ];
    let out = lab.minibox(&args).output()?;
    out.expect_code(
        137,
        "96 MiB in a container of --memory 32m: killed by the OOM killer",
    )?;
    ensure(!out.stdout_text().contains("allocated"), || {
        Fail::new("the allocation should not finish").seen(out.stdout_text())
    })?;
    let free = lab.probe(&[], &["allocate", "96"])?;
    expect_eq(
        "without --memory, the same allocation",
        "96 MiB".to_string(),
        free.get("allocated"),
    )
}

fn bad_lockdown_input_is_one_line(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    for (flag, value, mentions) in [
        ("--memory", "lots", "--memory lots"),
        ("--memory", "1m", "minimum"),
        ("--cpus", "999", "--cpus 999"),
        ("--pids-limit", "many", "--pids-limit many"),
        ("--pids-limit", "1", "2 at least"),
        ("--pids-limit", "99999999", "--pids-limit 99999999"),
        ("--cap-add", "NOT_A_CAP", "no such capability"),
        ("--security-opt", "apparmor=unconfined", "--security-opt"),
        ("--security-opt", "seccomp:/x.json", "seccomp:/x.json"),
    ] {
        let out = lab
            .minibox(&[
                "run",
                "--rm",
                "--network",
                "none",
                flag,
                value,
                "probe",
                "true",
            ])
            .output()?;
        out.expect_code(125, &format!("{flag} {value} should be refused"))?;
        out.expect_one_error_line(mentions)?;
    }
    let ps = lab.ok(&["ps", "-a"], "ps -a should work")?.stdout_text();
    ensure(ps.lines().count() <= 1, || {
        Fail::new("refused runs should leave no container").seen(ps.trim())
    })?;
    lab.ok(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cpus",
            "1",
            "--cap-drop",
            "chown",
            "probe",
            "true",
        ],
        "a run with good limits should work",
    )?;
    Ok(())
}

/// A process of the container, the copy of the runtime that `exec` forks,
/// held still by the grader at its call of execve (capabilities dropped,
/// everything done that the runtime does first): what can a process of
/// the container take from it?
fn exec_window_seen_from(lab: &Lab, victim: &str, secret: &str) -> Result<Answers, Fail> {
    let (dir, _marker) = marker(lab.ctx)?;
    let held = grader::freeze::hold_first_child(
        lab.minibox_with_fd(dir.path(), &["exec", victim, "true"])
            .env("GRADER_SECRET", secret)
            .into_command(),
        grader::freeze::At::ExecCall,
    )?;
    let inside = held.pid_inside()?.to_string();
    let out = lab.ok(
        &[
            "exec",
            victim,
            "grader-probe",
            "--probe",
            "exec-window",
            &inside,
            secret,
        ],
        "a second exec, the watcher, should run",
    );
    held.still_held()?;
    let (status, said) = held.release(Duration::from_secs(10))?;
    ensure(status.success(), || {
        Fail::new("the held exec should finish once let go").seen(format!("{status}: {said}"))
    })?;
    Ok(Answers::of(&out?))
}

fn exec_is_out_of_sight_until_its_execve(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let secret = format!("grader-secret-{}", std::process::id());
    lab.detached("watched", &[], &["sleep", "1000"])?;
    let answers = exec_window_seen_from(&lab, "watched", &secret)?;
    // (Its ptrace can't be tried here: the grader is its tracer. The kernel
    // asks the same question for ptrace as for /proc/PID/environ.)
    for (key, what) in [
        (
            "environ",
            "/proc/PID/environ of exec's child showed the caller's environment",
        ),
        ("fds", "/proc/PID/fd of exec's child could be read"),
        (
            "exe",
            "/proc/PID/exe of exec's child (the runtime's binary) could be opened",
        ),
    ] {
        answers.blocked(key, what)?;
    }
    // The control: from a container holding CAP_SYS_PTRACE (--privileged)
    // the same watcher does read the child (the probe works), and even
    // there no fd of the caller's is left in it.
    lab.detached("open", &["--privileged"], &["sleep", "1000"])?;
    let control = exec_window_seen_from(&lab, "open", &secret)?;
    ensure(
        control.get("environ").starts_with("reached") && control.get("exe").starts_with("reached"),
        || {
            Fail::new("the control: with CAP_SYS_PTRACE (--privileged) the watcher should read the held child's environ and exe")
                .seen(control.shown.trim())
        },
    )?;
    control.blocked(
        "fd-dirs",
        "exec's child held a directory fd of the caller's (its fd 7): close them before joining",
    )
}

fn exec_cannot_start_outside_the_container(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let (dir, marker) = marker(ctx)?;
    let name = marker
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The container's working directory /wd, made a link to
    // /proc/self/fd/7 by the container itself (CVE-2024-21626's shape).
    lab.start("wd", &["-w", "/wd"], &["sleep", "1000"])?;
    lab.ok(
        &[
            "exec",
            "-w",
            "/",
            "wd",
            "sh",
            "-c",
            "rm -r /wd && ln -s /proc/self/fd/7 /wd",
        ],
        "exec should replace /wd with a link",
    )?;
    // The control: the link is a door, to wherever an fd 7 leads.
    let door = lab.ok(
        &[
            "exec",
            "-w",
            "/",
            "wd",
            "sh",
            "-c",
            "exec 7</etc; cd /wd && pwd -P && ls",
        ],
        "exec should follow the link through its own fd 7",
    )?;
    ensure(
        door.stdout_text().contains("hosts") || door.stdout_text().contains("passwd"),
        || {
            Fail::new("the control: with an fd 7 of its own, `cd /wd` should lead to /etc (the probe's door is real)")
            .seen(door.stdout_text())
        },
    )?;
    let out = lab
        .minibox_with_fd(
            dir.path(),
            &["exec", "wd", "grader-probe", "--probe", "cwd-escape", &name],
        )
        .output()?;
    let answers = Answers::of(&out);
    ensure(!answers.get("cwd-escape").starts_with("reached"), || {
        Fail::new("exec, called with a host directory as fd 7, started its command in that directory (through /wd -> /proc/self/fd/7) and read the host's file")
            .expected("the exec refused (its working directory leads nowhere), or started inside the container")
            .seen(format!("{}{}", answers.shown, out.stderr))
    })?;
    ensure(out.code() == Some(125), || {
        Fail::new(
            "the exec's working directory leads nowhere once fd 7 is closed: a runtime error, 125",
        )
        .seen(out.summary())
    })?;
    out.expect_one_error_line("/wd")
}

fn the_runtime_binary_is_out_of_reach(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    // An image whose /evil is a script run by /proc/self/exe: whatever
    // exec's it, its interpreter is what that process runs at that moment.
    // The interpreter's one argument runs the probe when that is the tiny
    // program (it execs its first argument), and is an unknown command
    // when it is the runtime's binary.
    let context = lab.dir.path().join("evil");
    let script = context.join("evil");
    std::fs::create_dir_all(&context).map_err(|e| Fail::new("setup").seen(e))?;
    std::fs::write(&script, "#!/proc/self/exe /usr/bin/grader-probe\n")
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|_| std::fs::write(context.join("Dockerfile"), "FROM probe\nCOPY evil /evil\n"))
        .map_err(|e| Fail::new("setup").seen(e))?;
    lab.ok(
        &["build", "-t", "evil", &context.to_string_lossy()],
        "the image with /evil should build",
    )?;
    let ran_the_runtime = |out: &Output| {
        out.stderr.contains("unrecognized subcommand") && out.stderr.contains("grader-probe")
    };
    let probe_ran = |out: &Output| out.stdout_text().contains("CapEff:");
    // run: the container's first program.
    let out = lab
        .minibox(&[
            "run",
            "--rm",
            "--network",
            "none",
            "evil",
            "/evil",
            "--probe",
            "lockdown",
        ])
        .output()?;
    ensure(!ran_the_runtime(&out), || {
        Fail::new("run: the container's first program is a script of /proc/self/exe; the runtime's own binary ran inside the container")
            .expected("the tiny program as interpreter (it runs the probe)")
            .seen(out.summary())
    })?;
    ensure(probe_ran(&out), || {
        Fail::new("run: the script /evil should run, its interpreter the tiny program (which runs the probe); it didn't run")
            .expected("the probe's answers (CapEff: ...)")
            .seen(out.summary())
    })?;
    // exec: held by the grader right after the child's first execve, the
    // process is the tiny program, from a sealed memfd.
    lab.ok(
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "exebox",
            "evil",
            "sleep",
            "1000",
        ],
        "a detached container of the image should start",
    )?;
    let held = grader::freeze::hold_first_child(
        lab.minibox(&["exec", "exebox", "/evil", "--probe", "lockdown"])
            .into_command(),
        grader::freeze::At::Exec,
    )?;
    let seen = sealed_exe(held.pid, ctx.binary());
    let (status, said) = held.release(Duration::from_secs(10))?;
    seen?;
    ensure(
        status.success() && said.contains("CapEff:") && !said.contains("unrecognized subcommand"),
        || {
            Fail::new(
                "exec: through the tiny program, the script's interpreter should run the probe",
            )
            .seen(format!("{status}: {said}"))
        },
    )?;
    // A build's RUN, the same.
    let again = lab.dir.path().join("evil-run");
    std::fs::create_dir_all(&again)
        .and_then(|_| {
            std::fs::write(
                again.join("Dockerfile"),
                "FROM evil\nRUN [\"/evil\", \"--probe\", \"lockdown\"]\n",
            )
        })
        .map_err(|e| Fail::new("setup").seen(e))?;
    let built = lab
        .minibox(&["build", "-t", "evil-run", &again.to_string_lossy()])
        .output()?;
    ensure(!ran_the_runtime(&built) && probe_ran(&built), || {
        Fail::new(
            "build: a RUN of the script ran the runtime's own binary inside the build's container",
        )
        .seen(built.summary())
    })?;
    // The control: --privileged containers start their programs from the
    // runtime's binary (their root is the host's anyway): there the same
    // script does reach it.
    let control = lab
        .minibox(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--privileged",
            "evil",
            "/evil",
            "--probe",
            "lockdown",
        ])
        .output()?;
    ensure(ran_the_runtime(&control), || {
        Fail::new("the control: with --privileged, /proc/self/exe as interpreter should run the runtime's binary (its usage error names grader-probe)")
            .seen(control.summary())
    })
}

/// What the kernel says of the held process's binary: a memfd, sealed
/// against every change, and not the runtime's binary.
fn sealed_exe(pid: i32, runtime: &Path) -> Outcome {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let link = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|l| l.display().to_string())
        .unwrap_or_default();
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).map_err(|e| {
        Fail::new("the grader could not open the held child's /proc/PID/exe").seen(e)
    })?;
    let (ours, theirs) = (
        std::fs::metadata(runtime).map(|m| (m.dev(), m.ino())).ok(),
        exe.metadata().map(|m| (m.dev(), m.ino())).ok(),
    );
    ensure(ours != theirs, || {
        Fail::new("exec's child ran its execve from the runtime's own binary: a script's /proc/self/exe is the host's minibox")
            .expected("/proc/PID/exe a memfd (the tiny program)")
            .seen(&link)
    })?;
    // SAFETY: F_GET_SEALS returns the seals as an int, or -1.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    ensure(seals >= 0 && seals & wanted == wanted, || {
        Fail::new("the tiny program's file must be sealed: no write, no growing, no shrinking, no more seals")
            .expected(format!("F_GET_SEALS with {wanted:#x} set"))
            .seen(format!("{link}: F_GET_SEALS {}", if seals < 0 { "failed (not a memfd)".to_string() } else { format!("{seals:#x}") }))
    })
}

/// The host's devices for a container to try: the disk that holds `file`,
/// a loop device, kvm, two virtual consoles, the console and the kernel's
/// log, each with what the host's own open of it gave (as root, here).
/// Those the host lacks, or can't open itself, are left out: nothing to
/// reach there.
fn host_devices(file: &Path) -> Vec<(DeviceSpec, String)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes: Vec<(String, PathBuf, &str)> = Vec::new();
    if let Ok(meta) = std::fs::metadata(file) {
        let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
        // The disk's node, by the name sysfs gives it (0:N: no disk, a
        // tmpfs or an overlay).
        let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
        let name = std::fs::read_to_string(uevent)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME=").map(String::from));
        if let Some(name) = name {
            nodes.push(("disk".into(), Path::new("/dev").join(name), "read"));
        }
    }
    for (name, path, how) in [
        ("loop", "/dev/loop0", "read"),
        ("kvm", "/dev/kvm", "kvm"),
        ("tty0", "/dev/tty0", "rdwr"),
        ("tty1", "/dev/tty1", "rdwr"),
        ("console", "/dev/console", "rdwr"),
        ("kmsg", "/dev/kmsg", "wronly"),
    ] {
        nodes.push((name.into(), PathBuf::from(path), how));
    }
    nodes
        .into_iter()
        .filter_map(|(name, path, how)| {
            let meta = std::fs::metadata(&path).ok()?;
            let kind = meta.file_type();
            let block = kind.is_block_device();
            if !block && !kind.is_char_device() {
                return None;
            }
            let host = open_device(&path, how);
            host.starts_with("reached").then(|| {
                let device = DeviceSpec {
                    name,
                    block,
                    major: libc::major(meta.rdev()).into(),
                    minor: libc::minor(meta.rdev()).into(),
                    how: how.to_string(),
                };
                (device, host)
            })
        })
        .collect()
}

fn device_nodes_are_out_of_reach(ctx: &Ctx) -> Outcome {
    let lab = probe_lab(ctx)?;
    let (_dir, marker) = marker(ctx)?;
    let devices = host_devices(&marker);
    ensure(!devices.is_empty(), || {
        Fail::new("the host should have a device to try (at least /dev/kmsg)")
    })?;
    let args: Vec<String> = devices.iter().map(|(d, _)| d.arg()).collect();
    let mut experiment = vec!["device-nodes"];
    experiment.extend(args.iter().map(String::as_str));
    let answers = lab.probe(&[], &experiment)?;
    for (device, _) in &devices {
        let name = &device.name;
        answers.expect(
            &format!("{name}-mknod"),
            "ok",
            "mknod of any device is allowed, as docker allows it (c *:* m, b *:* m): only opening it is not",
        )?;
        answers.blocked(
            name,
            &format!(
                "a node the container made for the host's {name} ({}) opened",
                device.arg()
            ),
        )?;
        answers.expect(
            name,
            "EPERM",
            &format!("opening the host's {name} should be refused by the device rules"),
        )?;
    }
    for name in ["null", "zero", "full", "urandom", "pts"] {
        let seen = answers.get(name);
        ensure(seen.starts_with("reached"), || {
            Fail::new(format!(
                "the container's own {name} should still work (docker's rules allow it)"
            ))
            .expected(format!("{name}: reached: ..."))
            .seen(answers.shown.trim())
        })?;
    }
    ensure(answers.get("tty") != "EPERM", || {
        Fail::new(
            "/dev/tty (5:0) should be allowed: without a terminal it answers ENXIO, not EPERM",
        )
        .seen(answers.shown.trim())
    })?;
    // The control: no device rules with --privileged, and the same nodes
    // reach the host's devices, as the host's own open does.
    let control = lab.probe(&["--privileged"], &experiment)?;
    for (device, host) in &devices {
        control.expect(
            &device.name,
            host,
            &format!("with --privileged (every device, as docker's) the node for {} should reach it as the host does", device.name),
        )?;
    }
    Ok(())
}
