//! Library-level checks of step 06 (see the top of `06-lockdown.rs`):
//! the parts that confine a container (its fds, `exec`'s window, the tiny
//! program's file, the masked paths, its cgroup and device rules). Each
//! calls one of the learner's functions, in a helper process (see
//! `grader::helper`) or in the grader's own, and asks the kernel what it
//! left. A helper that mounts unshares a mount namespace first and mounts
//! on a tmpfs of its own; the cgroups are made by the check, under the
//! grader's own groups, and removed.

use grader::helper::{self, errno_of, expect_said, say};
use grader::{ensure, expect_eq, Check, Ctx, Fail, Outcome, Requires};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// This module's checks, in the order the chapter meets them.
pub fn checks() -> Vec<Check> {
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
    vec![
        check("close_all_but_keeps_only_its_list", 1, "file-descriptors",
            "A helper holds fds 3, 4, 7, 8, 100 and one near its limit, then asks to keep [100, 7, 2, 7, 3, 0]: afterwards /proc/self/fd must list 0, 1, 2 (never closed), 3, 7 and 100, nothing else. The list comes in any order, with repeats and fds below 3.",
            "close_range(2), which fds.rs's close_between helper wraps (with a slow way for kernels before 5.9); a Vec's sort_unstable and dedup; u32::MAX. `ls -l /proc/self/fd` shows what is open.",
            "1. kept = the fds >= 3 of keep, sorted, without repeats. 2. first = 3. 3. for each kept fd k (then u32::MAX as the end): if k > first, close [first, k - 1] (up to u32::MAX for the end). 4. first = k + 1. 5. Ok(()).",
            close_all_but_keeps_only_its_list),
        check("seal_makes_the_process_non_dumpable", 1, "execs-open-window",
            "After seal() the process must be non-dumpable (its /proc/PID files and ptrace then need CAP_SYS_PTRACE), a child it forks too, until that child's execve, which makes it dumpable again.",
            "seal::seal: prctl(2) PR_SET_DUMPABLE, through nix::sys::prctl::set_dumpable. PR_GET_DUMPABLE reads it back.",
            "1. set the dumpable flag to false. 2. return the kernel's answer.",
            seal_makes_the_process_non_dumpable),
        check("sealed_copy_can_never_change", 2, "the-runtimes-own-binary",
            "sealed_copy's fd must name a memfd (/memfd:NAME (deleted)) holding exactly the bytes, executable, close-on-exec, with the seals write, grow, shrink and seal (and exec where the kernel has it): a write then fails EPERM, and so does ftruncate. Where the kernel is older than 6.3 (the grader plays one: EINVAL for the exec flag and the exec seal), the same file, without the exec seal.",
            "memfd_create(2) and its flags (libc::memfd_create, libc::MFD_*), the \"File seals\" part of fcntl(2) (libc::fcntl, F_ADD_SEALS, the F_SEAL_* seals), nix::unistd::write (it may write fewer bytes than asked), OwnedFd::from_raw_fd, Errno::result.",
            "1. fd = memfd_create(name, close-on-exec + sealing allowed + exec); EINVAL -> the same without exec. 2. written = 0; while written < len: written += write(fd, bytes[written..]). 3. add the seals write, grow, shrink. 4. add the seal exec, ignoring its error. 5. add the seal seal. 6. return the fd.",
            sealed_copy_can_never_change),
        check("mask_hides_a_file_and_a_directory", 1, "masked-and-read-only-paths",
            "In a mount namespace of a helper's own: after mask(FILE) the file is the null device (reads empty), after mask(DIR) the directory is an empty read-only tmpfs (a new file: EROFS), and mask of a path that isn't there (ENOENT) is Ok, while a path below a file (ENOTDIR) is an error returned.",
            "std::fs::metadata and Metadata::is_dir (an io::Error's raw_os_error tells ENOENT from the rest); mount(2), a bind mount and a new tmpfs: nix::mount::mount and MsFlags.",
            "1. meta = metadata(path); ENOENT -> Ok, another error -> it. 2. a directory -> mount a new tmpfs on it, read-only. 3. else -> bind /dev/null onto it. 4. return the kernel's answer.",
            mask_hides_a_file_and_a_directory),
        check("read_only_is_a_bind_of_its_own", 1, "masked-and-read-only-paths",
            "In a mount namespace of a helper's own: after read_only(DIR) and read_only(FILE) both are mounts of their own, ro,nosuid,nodev,noexec, read as before, refuse writes (EROFS), and what was mounted below DIR is still there; the filesystem beside them stays writable (a remount without bind would have made it all read-only); a missing path is Ok.",
            "mount(2), its parts \"Creating a bind mount\" and \"Remounting an existing mount\"; nix::mount::mount and MsFlags; Path::exists. `findmnt -o TARGET,OPTIONS` shows each mount's flags.",
            "1. no such path -> Ok. 2. bind path onto itself, recursively. 3. remount that bind: read-only, nosuid, nodev, noexec. 4. return the first error.",
            read_only_is_a_bind_of_its_own),
        check("masks_apply_checks_proc_and_sys_first", 1, "masked-and-read-only-paths",
            "apply() must refuse (an error naming the path) when /proc or /sys is not a proc or sysfs (a tmpfs there: every masked path would be 'missing' and skipped); with a real proc and sysfs it masks every MASKED path the kernel has and makes every READ_ONLY one read-only.",
            "statfs(2): nix::sys::statfs::statfs, Statfs::filesystem_type, PROC_SUPER_MAGIC and SYSFS_MAGIC; your mask and read_only; MASKED and READ_ONLY; Result::map_err for the (message, errno) pair.",
            "1. for (/proc, proc's magic) and (/sys, sysfs's magic): statfs; not that magic -> Err((\"... refused\", an errno)). 2. mask each MASKED path; an error -> Err((\"cannot mask PATH\", errno)). 3. read_only each READ_ONLY path, the same. 4. Ok(()).",
            masks_apply_checks_proc_and_sys_first),
        check("device_program_follows_dockers_rules", 2, "device-rules",
            "The program of docker's rules, loaded and attached to a cgroup v2 group a helper then joins: mknod of any device works (c *:* m, b *:* m), opening null, urandom, tty, a pts or tun works, opening a block device (b 7:0, and b 1:3 and b 136:0, the numbers of allowed char rules: the type counts), the console (5:1) or fuse (10:229) is refused with EPERM.",
            "The given bpf.rs: Insn::load_u32, and, rsh, jne, mov, mov_reg, exit, registers R0 to R5. struct bpf_cgroup_dev_ctx (access_type, major, minor) and BPF_DEVCG_DEV_CHAR / BPF_DEVCG_DEV_BLOCK in include/uapi/linux/bpf.h; the kernel's Documentation/bpf/prog_cgroup_device (BPF_PROG_TYPE_CGROUP_DEVICE); Rule's kind, major, minor, access.",
            "1. r2 = type (the u32 at r1+0, & 0xffff), r3 = access (the same u32 >> 16), r4 = major (r1+4), r5 = minor (r1+8). 2. for each rule, a block: if r2 != type skip the block; if the rule lacks an access asked (r3 & !rule.access) skip; if major given and r4 != major skip; minor the same; r0 = 1; exit. 3. r0 = 0; exit. A jump's offset counts the instructions it skips.",
            device_program_follows_dockers_rules),
        check("device_program_checks_each_access", 1, "device-rules",
            "Rules that allow only some accesses: a rule with read only must refuse an open for writing (and mknod), one with mknod only must refuse an open, `b 7:* rm` must take any minor of 7 but not 8, and a block rule must not allow the char device of the same numbers.",
            "BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE in include/uapi/linux/bpf.h (the high 16 bits of access_type; an open for reading and writing asks both), and devices.rs's MKNOD, READ, WRITE; Insn::mov_reg, Insn::and, Insn::jne.",
            "1. per rule: r1 = r3 (the access asked). 2. r1 &= the bits the rule lacks (!rule.access). 3. if r1 != 0, skip the rule. 4. the type, major and minor tests as before.",
            device_program_checks_each_access),
        check("set_limits_writes_the_kernels_files", 2, "cgroups-and-limits",
            "set_limits(48 MiB, 37 pids, 0.25 CPU) on a group the grader made: the files of the hierarchy holding each controller must say so: memory.limit_in_bytes (and memory.memsw.limit_in_bytes) or memory.max (and memory.swap.max 0), pids.max, cpu.cfs_period_us (set to 50000 before the call) and cpu.cfs_quota_us or cpu.max. Then the same on a made-up v2 hierarchy (plain files), with and without memory.swap.max: a file the kernel doesn't have is not written.",
            "The given holder(all, controller) and Group::dir_in(hierarchy), Hierarchy::v2; cgroups.rs's write(dir, file, value) helper or std::fs::write; Path::exists for a file a kernel may lack. The kernel's Documentation/admin-guide/cgroup-v2.rst (memory, pids, cpu) and cgroup-v1/ (memory.rst, pids.rst, and scheduler/sched-bwc.rst for CFS bandwidth).",
            "for each limit asked: 1. the hierarchy holding its controller (none -> an error naming the flag). 2. its directory in the group. 3. v2: memory.max = bytes, memory.swap.max = 0 if present; pids.max; cpu.max = \"QUOTA 100000\". v1: memory.limit_in_bytes, memory.memsw.limit_in_bytes if present; pids.max; cpu.cfs_period_us = 100000, then cpu.cfs_quota_us = QUOTA. QUOTA = millicpus * 100 (microseconds per 100000).",
            set_limits_writes_the_kernels_files),
        check("end_kills_what_is_left_and_removes_the_group", 1, "cgroups-and-limits",
            "Group::end() must leave no process in any of the group's directories (SIGKILL each, wherever it is: one only in the v2 group, one only in the v1 ones, one in all) and then remove the directories.",
            "cgroup.kill (cgroup v2, Linux 5.14) and cgroup.procs in Documentation/admin-guide/cgroup-v2.rst; nix::sys::signal::kill, Signal::SIGKILL, nix::unistd::Pid; the given Group::remove (rmdir(2), again while EBUSY).",
            "for each dir: 1. cgroup.kill exists and writing \"1\" works -> next dir. 2. else, up to a bound: read cgroup.procs; empty -> next dir; SIGKILL each pid. then: 3. remove the directories.",
            end_kills_what_is_left_and_removes_the_group),
        check("add_puts_the_process_in_every_hierarchy", 1, "cgroups-and-limits",
            "Group::add(PID) must put the process in the group's directory of every hierarchy the group has one in: each cgroup.procs lists it afterwards, and /proc/PID/cgroup shows the group's paths.",
            "cgroup.procs (cgroups(7), \"Creating cgroups and moving processes\"); self.dirs; cgroups.rs's write(dir, file, value) helper or std::fs::write.",
            "1. for each dir of the group: write pid into dir/cgroup.procs; an error -> return it, naming the file. 2. Ok(()).",
            add_puts_the_process_in_every_hierarchy),
    ]
}

/// The helpers of this module's checks (see `grader::helper`); `false`:
/// not one of them.
pub fn helper(kind: &str, args: &[String]) -> bool {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match kind {
        "confine-fds" => helper_fds(),
        "confine-seal" => helper_seal(),
        "confine-dumpable" => say("dumpable", dumpable()),
        "confine-old-kernel" => helper_old_kernel(),
        "confine-sealed-copy" => helper_sealed_copy(),
        "confine-mask" => helper_mask(Path::new(&arg(0))),
        "confine-read-only" => helper_read_only(Path::new(&arg(0))),
        "confine-apply" => helper_apply(&arg(0)),
        "confine-devices" => helper_devices(Path::new(&arg(0)), &arg(1), Path::new(&arg(2))),
        _ => return false,
    }
    true
}

fn setup<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Fail {
    move |e| Fail::new(format!("setup: {what}")).seen(e)
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------
// File descriptors.

/// The fds this process holds, as /proc/self/fd lists them (the listing's
/// own fd, closed by then, left out).
fn open_fds() -> Vec<i32> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut open: Vec<i32> = listed
        .into_iter()
        // SAFETY: F_GETFD only asks whether the fd is open.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect();
    open.sort_unstable();
    open
}

fn list(fds: &[i32]) -> String {
    fds.iter()
        .map(|fd| fd.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn helper_fds() {
    use std::os::fd::IntoRawFd;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        helper::die("getrlimit", nix::errno::Errno::last());
    }
    let high = (limit.rlim_cur.min(1 << 20) as i32) - 1;
    // Whatever the helper inherited (a test runner's jobserver pipe, say)
    // goes first: the helper holds only the fds it makes.
    // SAFETY: close_range(2) of fds no Rust object of the helper owns.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let null = match std::fs::File::open("/dev/null") {
        Ok(file) => file.into_raw_fd(),
        Err(e) => helper::die("open /dev/null", e),
    };
    let wanted = [3, 4, 7, 8, 100, high];
    for fd in wanted {
        // SAFETY: dup2(2) onto fds nothing in this process uses.
        if fd != null && unsafe { libc::dup2(null, fd) } < 0 {
            helper::die("dup2", nix::errno::Errno::last());
        }
    }
    if !wanted.contains(&null) {
        // SAFETY: our own fd.
        unsafe { libc::close(null) };
    }
    say("before", list(&open_fds()));
    say("high", high);
    let result = step06::fds::close_all_but(&[100, 7, 2, 7, 3, 0]);
    let after = open_fds();
    say("result", errno_of(result));
    say("after", list(&after));
}

fn close_all_but_keeps_only_its_list(_ctx: &Ctx) -> Outcome {
    let text = helper::run(
        "fds::close_all_but(&[100, 7, 2, 7, 3, 0])",
        "confine-fds",
        &[],
    )?;
    let high = helper::said(&text, "high");
    let before = format!("0,1,2,3,4,7,8,100,{high}");
    ensure(helper::said(&text, "before") == before, || {
        Fail::new("setup: the helper's fds before the call")
            .expected(&before)
            .seen(helper::said(&text, "before"))
    })?;
    expect_said(
        &format!("a helper holding fds {before} calls close_all_but(&[100, 7, 2, 7, 3, 0]); its /proc/self/fd afterwards"),
        &text,
        &[("result", "ok"), ("after", "0,1,2,3,7,100")],
    )
}

// ---------------------------------------------------------------------
// exec's window.

/// PR_GET_DUMPABLE of this process.
fn dumpable() -> i32 {
    // SAFETY: prctl(2) PR_GET_DUMPABLE reads a flag of this process.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }
}

fn helper_seal() {
    if dumpable() != 1 {
        helper::die("the helper should start dumpable", dumpable());
    }
    say("result", errno_of(step06::seal::seal()));
    say("dumpable", dumpable());
    // A forked child, before any execve: its flag, through a pipe.
    let (read, write) = match nix::unistd::pipe() {
        Ok(ends) => ends,
        Err(e) => helper::die("pipe", e),
    };
    // SAFETY: this helper is single-threaded; the child only calls prctl,
    // write and _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let flag = [b'0' + dumpable() as u8];
            let _ = nix::unistd::write(&write, &flag);
            // SAFETY: leave at once, running nothing of the parent's.
            unsafe { libc::_exit(0) };
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(write);
            let mut flag = [0u8; 1];
            let n = nix::unistd::read(&read, &mut flag).unwrap_or(0);
            let _ = nix::sys::wait::waitpid(child, None);
            say(
                "forked-child",
                if n == 1 {
                    (flag[0] as char).to_string()
                } else {
                    "(said nothing)".into()
                },
            );
        }
        Err(e) => helper::die("fork", e),
    }
    // A child after its execve: this same binary, as another helper.
    let me = std::env::current_exe().unwrap_or_default();
    let out = std::process::Command::new(me)
        .env("GRADER_HELPER", "confine-dumpable")
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    say("after-execve", helper::said(&text, "dumpable"));
}

fn seal_makes_the_process_non_dumpable(_ctx: &Ctx) -> Outcome {
    let text = helper::run("seal::seal()", "confine-seal", &[])?;
    expect_said(
        "a helper calls seal(), then forks a child, then runs a program: PR_GET_DUMPABLE of the helper, of its forked child (before any execve), and of the program after its execve",
        &text,
        &[
            ("result", "ok"),
            ("dumpable", "0"),
            ("forked-child", "0"),
            ("after-execve", "1"),
        ],
    )
}

// ---------------------------------------------------------------------
// The tiny program's file.

/// Whether this kernel knows MFD_EXEC and F_SEAL_EXEC (Linux 6.3).
fn kernel_has_seal_exec() -> bool {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | libc::MFD_EXEC;
    // SAFETY: memfd_create(2) of a throwaway file, closed at once.
    let fd = unsafe { libc::memfd_create(c"grader-probe".as_ptr(), flags) };
    if fd >= 0 {
        // SAFETY: our own fd.
        unsafe { libc::close(fd) };
    }
    fd >= 0 || nix::errno::Errno::last() != nix::errno::Errno::EINVAL
}

/// sealed_copy's fd, as the kernel describes it: its seals, its bytes,
/// its flags, its name, what a write and ftruncate get, its mode.
fn helper_sealed_copy() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileExt, PermissionsExt};
    bounded();
    let bytes = pattern();
    let fd = match small_files(|| step06::trampoline::sealed_copy(&bytes)) {
        Ok(fd) => fd,
        Err(errno) => {
            say("result", format!("{errno:?}"));
            return;
        }
    };
    say("result", "ok");
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFD returns the fd's flags.
    let cloexec = unsafe { libc::fcntl(raw, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
    say("close-on-exec", if cloexec { "yes" } else { "no" });
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
        .map(|l| l.display().to_string())
        .unwrap_or_default();
    let is_memfd = link.starts_with("/memfd:") && link.ends_with(" (deleted)");
    say(
        "name",
        if is_memfd {
            "/memfd:NAME (deleted)".into()
        } else {
            link
        },
    );
    let (seals, same) = sealed(
        fd.try_clone().unwrap_or_else(|e| helper::die("dup", e)),
        &bytes,
    );
    say("seals", seals);
    say("bytes", same);
    let file = std::fs::File::from(fd);
    let errno = |r: std::io::Result<()>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.raw_os_error().map_or(e.to_string(), |n| {
            format!("{:?}", nix::errno::Errno::from_raw(n))
        }),
    };
    say("write", errno(file.write_at(b"x", 0).map(|_| ())));
    say("ftruncate smaller", errno(file.set_len(1)));
    say(
        "ftruncate larger",
        errno(file.set_len(bytes.len() as u64 + 4096)),
    );
    let mode = file.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
    say(
        "executable",
        if mode & 0o111 != 0 {
            "yes".into()
        } else {
            format!("no (mode {mode:o})")
        },
    );
}

/// A bound on a helper that calls sealed_copy: SIGPROF after 5 s of CPU
/// time (a write loop that never ends spins: a write of 0 bytes returns
/// at once), SIGALRM after 120 s in all (one that blocks). Either ends the
/// helper, without a core. CPU time, not the clock: a loaded machine slows
/// a correct sealed_copy (a few milliseconds of CPU) but never makes it
/// spend 5 s.
fn bounded() {
    let cpu = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        },
    };
    // SAFETY: setitimer(2) and alarm(2) arm this process's own timers;
    // their signals' default action ends it.
    unsafe {
        libc::setitimer(libc::ITIMER_PROF, &cpu, std::ptr::null_mut());
        libc::alarm(120);
    }
}

/// A helper ended by `bounded`'s timers: a failure that says so.
fn endless(what: &str) -> impl Fn(Fail) -> Fail + '_ {
    move |fail| {
        let seen = fail.seen.clone().unwrap_or_default();
        if ["SIGPROF", "signal: 27", "SIGALRM", "signal: 14"]
            .iter()
            .any(|s| seen.contains(s))
        {
            Fail::new(format!("{what} should return"))
                .expected("the fd, after a few milliseconds of CPU time")
                .seen("still running after 5 s of CPU time (or 120 s in all): the grader ended it. Does the write loop end once every byte is in? A write of 0 bytes returns 0, for ever")
        } else {
            fail
        }
    }
}

fn sealed_copy_can_never_change(_ctx: &Ctx) -> Outcome {
    let what = "sealed_copy(10000 bytes)";
    let text = helper::run(what, "confine-sealed-copy", &[]).map_err(endless(what))?;
    let result = helper::said(&text, "result");
    ensure(result == "ok", || {
        let why = if result == "EFBIG" {
            " (the grader stops a file at 1 MiB: does the write loop end?)"
        } else {
            ""
        };
        Fail::new(format!("{what} should return the file's fd")).seen(format!("{result}{why}"))
    })?;
    let mut seals = vec![
        "F_SEAL_WRITE",
        "F_SEAL_GROW",
        "F_SEAL_SHRINK",
        "F_SEAL_SEAL",
    ];
    if kernel_has_seal_exec() {
        seals.push("F_SEAL_EXEC");
    }
    let seals = seals.join(" ");
    expect_said(
        &format!("{what}, in a helper: what the kernel says of the fd it returned"),
        &text,
        &[
            ("seals", seals.as_str()),
            ("bytes", "the same"),
            ("close-on-exec", "yes"),
            ("name", "/memfd:NAME (deleted)"),
            ("write", "EPERM"),
            ("ftruncate smaller", "EPERM"),
            ("ftruncate larger", "EPERM"),
            ("executable", "yes"),
        ],
    )?;
    let what = "sealed_copy on a kernel before 6.3";
    let text = helper::run(what, "confine-old-kernel", &[]).map_err(endless(what))?;
    expect_said(
        "sealed_copy(10000 bytes) in a helper where, as on a kernel before 6.3, memfd_create with MFD_EXEC and the seal F_SEAL_EXEC are EINVAL (unknown flags): it must still make the file, sealed against writing, growing, shrinking and more seals",
        &text,
        &[
            ("result", "ok"),
            ("seals", "F_SEAL_WRITE F_SEAL_GROW F_SEAL_SHRINK F_SEAL_SEAL"),
            ("bytes", "the same"),
        ],
    )
}

/// A kernel before 6.3, as sealed_copy sees it: a seccomp filter answers
/// EINVAL to memfd_create with MFD_EXEC and to the seal F_SEAL_EXEC,
/// which such a kernel doesn't know.
fn helper_old_kernel() {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    use std::collections::BTreeMap;
    let filter = (|| -> Result<BpfProgram, Box<dyn std::error::Error>> {
        let exec = libc::MFD_EXEC as u64;
        let seal_exec = libc::F_SEAL_EXEC as u64;
        let rules = BTreeMap::from([
            (
                libc::SYS_memfd_create,
                vec![SeccompRule::new(vec![SeccompCondition::new(
                    1,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::MaskedEq(exec),
                    exec,
                )?])?],
            ),
            (
                libc::SYS_fcntl,
                vec![SeccompRule::new(vec![
                    SeccompCondition::new(
                        1,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::Eq,
                        libc::F_ADD_SEALS as u64,
                    )?,
                    SeccompCondition::new(
                        2,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::MaskedEq(seal_exec),
                        seal_exec,
                    )?,
                ])?],
            ),
        ]);
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EINVAL as u32),
            std::env::consts::ARCH.try_into()?,
        )?;
        Ok(filter.try_into()?)
    })();
    bounded();
    match filter.map(|f| seccompiler::apply_filter(&f).map_err(|e| e.to_string())) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => helper::die("install the old kernel's filter", e),
        Err(e) => helper::die("build the old kernel's filter", e),
    }
    let bytes = pattern();
    match small_files(|| step06::trampoline::sealed_copy(&bytes)) {
        Ok(fd) => {
            let (seals, same) = sealed(fd, &bytes);
            say("result", "ok");
            say("seals", seals);
            say("bytes", same);
        }
        Err(errno) => say("result", format!("{errno:?}")),
    }
}

/// The seals of `fd` by name, and whether it holds `bytes`.
fn sealed(fd: std::os::fd::OwnedFd, bytes: &[u8]) -> (String, String) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    // SAFETY: fcntl(2) F_GET_SEALS returns the seals as an int, or -1.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let names: Vec<&str> = SEALS
        .iter()
        .filter(|(_, bit)| seals >= 0 && seals & bit != 0)
        .map(|(name, _)| *name)
        .collect();
    let file = std::fs::File::from(fd);
    let mut back = vec![0u8; bytes.len() + 1];
    let read = file.read_at(&mut back, 0).unwrap_or(0);
    let same = if read == bytes.len() && back[..read] == *bytes {
        "the same".to_string()
    } else {
        format!("{read} bytes, not the same")
    };
    (names.join(" "), same)
}

const SEALS: [(&str, i32); 5] = [
    ("F_SEAL_WRITE", libc::F_SEAL_WRITE),
    ("F_SEAL_GROW", libc::F_SEAL_GROW),
    ("F_SEAL_SHRINK", libc::F_SEAL_SHRINK),
    ("F_SEAL_SEAL", libc::F_SEAL_SEAL),
    ("F_SEAL_EXEC", libc::F_SEAL_EXEC),
];

/// `f()` with files limited to 1 MiB (RLIMIT_FSIZE), SIGXFSZ ignored: a
/// write past the limit fails with EFBIG. A sealed_copy whose write loop
/// never ends would otherwise grow its memfd until the machine's memory is
/// gone. The limit is the process's: nothing else of the grader's writes a
/// file meanwhile (the checks run one at a time).
fn small_files<T>(f: impl FnOnce() -> T) -> T {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills `old`.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) } == 0;
    let small = libc::rlimit {
        rlim_cur: 1 << 20,
        rlim_max: old.rlim_max,
    };
    // SAFETY: setrlimit(2) and signal(2) change only this process's
    // limit and disposition, put back below.
    let handler = unsafe {
        if known {
            libc::setrlimit(libc::RLIMIT_FSIZE, &small);
        }
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN)
    };
    let result = f();
    // SAFETY: as above, the old values back.
    unsafe {
        if known {
            libc::setrlimit(libc::RLIMIT_FSIZE, &old);
        }
        libc::signal(libc::SIGXFSZ, handler);
    }
    result
}

/// The bytes the checks seal: 10000, more than a page.
fn pattern() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

// ---------------------------------------------------------------------
// Masked and read-only paths.

/// A mount namespace of the helper's own, / private in it: nothing it
/// mounts reaches the grader's namespace.
fn own_mount_ns(also: nix::sched::CloneFlags) {
    use nix::mount::{mount, MsFlags};
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | also) {
        helper::die("unshare --mount", e)
    }
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        helper::die("mount --make-rprivate /", e)
    }
}

/// A new filesystem of type `kind` on `target`, in the helper's namespace.
fn mount_new(kind: &str, target: &Path) {
    if let Err(e) = nix::mount::mount(
        Some(kind),
        target,
        Some(kind),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    ) {
        helper::die("mount a filesystem of the helper's own", e)
    }
}

/// The top mount at `point`: its type and its flags among ro, nosuid,
/// nodev, noexec (`-` for none of them).
fn mount_at(point: &Path) -> String {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let point = point.to_string_lossy();
    let line = text.lines().rev().find(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.get(4) == Some(&point.as_ref())
    });
    let Some(line) = line else {
        return "not a mount".into();
    };
    let fields: Vec<&str> = line.split(' ').collect();
    let options: Vec<&str> = fields.get(5).unwrap_or(&"").split(',').collect();
    let kind = line
        .split_once(" - ")
        .and_then(|(_, r)| r.split(' ').next())
        .unwrap_or("?");
    let flags: Vec<&str> = ["ro", "nosuid", "nodev", "noexec"]
        .into_iter()
        .filter(|f| options.contains(f))
        .collect();
    format!(
        "{kind} {}",
        if flags.is_empty() {
            "-".into()
        } else {
            flags.join(",")
        }
    )
}

fn io_errno<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.raw_os_error().map_or(e.to_string(), |n| {
            format!("{:?}", nix::errno::Errno::from_raw(n))
        }),
    }
}

/// What a path is now: a device's numbers, or what it holds.
fn node(path: &Path) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_char_device() => {
            format!("c {}:{}", libc::major(m.rdev()), libc::minor(m.rdev()))
        }
        Ok(m) if m.is_dir() => {
            let mut names: Vec<String> = std::fs::read_dir(path)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            format!("dir [{}]", names.join(","))
        }
        Ok(_) => format!(
            "file {:?}",
            std::fs::read_to_string(path).unwrap_or_default()
        ),
        Err(e) => io_errno::<()>(Err(e)),
    }
}

fn write_new(path: &Path) -> String {
    io_errno(std::fs::write(path, "new"))
}

fn open_for_writing(path: &Path) -> String {
    io_errno(std::fs::OpenOptions::new().write(true).open(path))
}

fn make(path: &Path, dir: bool, content: &str) {
    let made = if dir {
        std::fs::create_dir_all(path)
    } else {
        std::fs::write(path, content)
    };
    if let Err(e) = made {
        helper::die("make the helper's files", e)
    }
}

fn helper_mask(tmp: &Path) {
    own_mount_ns(nix::sched::CloneFlags::empty());
    mount_new("tmpfs", tmp);
    let (file, dir) = (tmp.join("secret"), tmp.join("secrets"));
    make(&file, false, "the host's secret");
    make(&dir, true, "");
    make(&dir.join("key"), false, "a key");
    let call = |p: &Path| errno_of(step06::masks::mask(&p.to_string_lossy()));
    say("file-result", call(&file));
    say("dir-result", call(&dir));
    say("missing-result", call(&tmp.join("not-here")));
    // Below a file: stat(2) says ENOTDIR, not ENOENT: an error to return.
    let plain = tmp.join("plain");
    make(&plain, false, "");
    say("below-a-file-result", call(&plain.join("x")));
    say("file", node(&file));
    say("dir", node(&dir));
    say("dir-mount", mount_at(&dir));
    say("dir-new-file", write_new(&dir.join("new")));
    say("beside", write_new(&tmp.join("beside")));
}

fn mask_hides_a_file_and_a_directory(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let text = helper::run("masks::mask", "confine-mask", &[&path_arg(tmp.path())])?;
    expect_said(
        "in a mount namespace of the helper's own, on a tmpfs holding the file `secret` and the directory `secrets` (with `key` in it): mask(secret), mask(secrets), mask(not-here) (ENOENT: Ok), mask(plain/x) below a file (ENOTDIR: an error, returned), then what each shows",
        &text,
        &[
            ("file-result", "ok"),
            ("dir-result", "ok"),
            ("missing-result", "ok"),
            ("below-a-file-result", "ENOTDIR"),
            ("file", "c 1:3"),
            ("dir", "dir []"),
            ("dir-mount", "tmpfs ro"),
            ("dir-new-file", "EROFS"),
            ("beside", "ok"),
        ],
    )
}

fn helper_read_only(tmp: &Path) {
    own_mount_ns(nix::sched::CloneFlags::empty());
    mount_new("tmpfs", tmp);
    let (dir, file) = (tmp.join("sys"), tmp.join("trigger"));
    make(&dir, true, "");
    make(&dir.join("setting"), false, "42");
    make(&dir.join("below"), true, "");
    mount_new("tmpfs", &dir.join("below"));
    make(&dir.join("below").join("inner"), false, "inner");
    make(&file, false, "t");
    let call = |p: &Path| errno_of(step06::masks::read_only(&p.to_string_lossy()));
    say("dir-result", call(&dir));
    say("file-result", call(&file));
    say("missing-result", call(&tmp.join("not-here")));
    // Below a file: stat(2) says ENOTDIR, not ENOENT: an error to return.
    let plain = tmp.join("plain");
    make(&plain, false, "");
    say("below-a-file-result", call(&plain.join("x")));
    say("dir-mount", mount_at(&dir));
    say("file-mount", mount_at(&file));
    say("dir-read", node(&dir.join("setting")));
    say("dir-write", open_for_writing(&dir.join("setting")));
    say("file-write", open_for_writing(&file));
    say("below", node(&dir.join("below").join("inner")));
    say("beside", write_new(&tmp.join("beside")));
}

fn read_only_is_a_bind_of_its_own(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let text = helper::run(
        "masks::read_only",
        "confine-read-only",
        &[&path_arg(tmp.path())],
    )?;
    expect_said(
        "in a mount namespace of the helper's own, on a tmpfs T holding the directory `sys` (its file `setting`, and a tmpfs mounted at sys/below) and the file `trigger`: read_only(T/sys), read_only(T/trigger), read_only(T/not-here), then what the kernel shows (mounts: type and flags)",
        &text,
        &[
            ("dir-result", "ok"),
            ("file-result", "ok"),
            ("missing-result", "ok"),
            ("dir-mount", "tmpfs ro,nosuid,nodev,noexec"),
            ("file-mount", "tmpfs ro,nosuid,nodev,noexec"),
            ("dir-read", "file \"42\""),
            ("dir-write", "EROFS"),
            ("file-write", "EROFS"),
            ("below", "file \"inner\""),
            ("beside", "ok"),
        ],
    )
}

/// Paths apply() is judged on, when the kernel has them.
const APPLIED: [(&str, &str); 6] = [
    ("/proc/kcore", "c 1:3"),
    ("/proc/timer_list", "c 1:3"),
    ("/proc/acpi", "dir []"),
    ("/sys/firmware", "dir []"),
    ("/proc/sys", "proc ro,nosuid,nodev,noexec"),
    ("/proc/sysrq-trigger", "proc ro,nosuid,nodev,noexec"),
];

fn helper_apply(mode: &str) {
    use nix::sched::CloneFlags;
    // A network namespace too, so that the sysfs mounted below is a new
    // one (sysfs is one per network namespace), and a proc of its own
    // (each proc mount is a filesystem of its own since Linux 5.8): what
    // apply does, whatever it does, stays in the helper's.
    own_mount_ns(CloneFlags::CLONE_NEWNET);
    mount_new("proc", Path::new("/proc"));
    mount_new("sysfs", Path::new("/sys"));
    match mode {
        "tmpfs-proc" => mount_new("tmpfs", Path::new("/proc")),
        "tmpfs-sys" => mount_new("tmpfs", Path::new("/sys")),
        _ => {}
    }
    let before: Vec<(&str, bool)> = APPLIED
        .iter()
        .map(|(p, _)| (*p, Path::new(p).exists()))
        .collect();
    let result = step06::masks::apply();
    say(
        "result",
        match &result {
            Ok(()) => "ok".to_string(),
            Err((what, errno)) => format!("{what}: {errno:?}"),
        },
    );
    for (path, there) in before {
        let seen = if !there {
            "absent".to_string()
        } else if path.starts_with("/proc/sys") {
            mount_at(Path::new(path))
        } else {
            node(Path::new(path))
        };
        say(path, seen);
    }
}

fn masks_apply_checks_proc_and_sys_first(_ctx: &Ctx) -> Outcome {
    for (mode, dir) in [("tmpfs-proc", "/proc"), ("tmpfs-sys", "/sys")] {
        let text = helper::run("masks::apply()", "confine-apply", &[mode])?;
        let result = helper::said(&text, "result");
        ensure(result != "ok" && result.contains(dir), || {
            Fail::new(format!("apply() with a tmpfs at {dir} (not a {} of its own): it must refuse, saying which, before masking anything", if dir == "/proc" { "proc" } else { "sysfs" }))
                .expected(format!("an error naming {dir}"))
                .seen(&result)
        })?;
    }
    let text = helper::run("masks::apply()", "confine-apply", &["real"])?;
    let mut expected = vec![("result", "ok")];
    for (path, shown) in APPLIED {
        // The helper's proc and sysfs show what this kernel has.
        expected.push((
            path,
            if Path::new(path).exists() {
                shown
            } else {
                "absent"
            },
        ));
    }
    expect_said(
        "apply() in a helper with a mount namespace, a proc and a sysfs of its own: the masked paths (files: the null device; directories: empty) and the read-only ones (the mount's type and flags)",
        &text,
        &expected,
    )
}

// ---------------------------------------------------------------------
// Device rules.

/// Where the grader's own cgroup v2 group is: the cgroup2 mount and the
/// path `/proc/self/cgroup` gives (`0::PATH`).
fn own_v2_group() -> Result<PathBuf, Fail> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = mounts
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2"))
                .then(|| PathBuf::from(left.split(' ').nth(4).unwrap_or("/")))
        })
        .ok_or_else(|| {
            Fail::new("setup: the device rules' checks need a cgroup2 hierarchy mounted")
        })?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_else(|| "/".into());
    Ok(mount.join(own.trim_start_matches('/')))
}

/// A v2 group of the check's own, under the grader's: removed when
/// dropped (the helper in it has exited by then; the kernel frees its
/// program with it).
struct CheckGroup(PathBuf);

impl CheckGroup {
    fn new(name: &str) -> Result<CheckGroup, Fail> {
        let dir = own_v2_group()?.join(format!("grader-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir)
            .map_err(|e| Fail::new(format!("setup: make the cgroup {}", dir.display())).seen(e))?;
        Ok(CheckGroup(dir))
    }
}

impl Drop for CheckGroup {
    fn drop(&mut self) {
        // Busy a moment after its last process has gone.
        grader::poll(Duration::from_secs(5), || {
            match std::fs::remove_dir(&self.0) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => None,
                _ => Some(()),
            }
        });
    }
}

use step06::devices::{Kind, Rule, ALL, MKNOD, READ, WRITE};

/// The custom rules: accesses that are subsets.
fn custom_rules() -> Vec<Rule> {
    let rule = |kind, major, minor, access| Rule {
        kind,
        major,
        minor,
        access,
    };
    vec![
        rule(Kind::Char, Some(1), Some(3), READ),
        rule(Kind::Char, Some(1), Some(5), READ | WRITE),
        rule(Kind::Block, Some(7), None, READ | MKNOD),
        rule(Kind::Char, Some(1), Some(7), MKNOD),
        rule(Kind::Char, Some(1), Some(9), ALL),
    ]
}

/// The tries: (name, block?, major, minor, how): `mknod`, `r`, `w`, `rw`.
type Try = (&'static str, bool, u32, u32, &'static str);

const DEFAULT_TRIES: [(Try, &str); 14] = [
    (("mknod c 1:3", false, 1, 3, "mknod"), "allowed"),
    (("mknod b 8:0", true, 8, 0, "mknod"), "allowed"),
    (("mknod c 10:229", false, 10, 229, "mknod"), "allowed"),
    (("open c 1:3 rw", false, 1, 3, "rw"), "allowed"),
    (("open c 1:9 r", false, 1, 9, "r"), "allowed"),
    (("open c 5:0 rw", false, 5, 0, "rw"), "allowed"),
    (("open c 136:4000 rw", false, 136, 4000, "rw"), "allowed"),
    (("open c 10:200 rw", false, 10, 200, "rw"), "allowed"),
    (("open b 7:0 r", true, 7, 0, "r"), "denied"),
    (("open c 5:1 rw", false, 5, 1, "rw"), "denied"),
    (("open c 10:229 rw", false, 10, 229, "rw"), "denied"),
    (("open c 1:2 r", false, 1, 2, "r"), "denied"),
    // Block nodes with the numbers of allowed char rules: a program
    // blind to the type would let them through.
    (("open b 1:3 rw", true, 1, 3, "rw"), "denied"),
    (("open b 136:0 rw", true, 136, 0, "rw"), "denied"),
];

const CUSTOM_TRIES: [(Try, &str); 14] = [
    (("open c 1:3 r", false, 1, 3, "r"), "allowed"),
    (("open c 1:3 w", false, 1, 3, "w"), "denied"),
    (("open c 1:3 rw", false, 1, 3, "rw"), "denied"),
    (("mknod c 1:3", false, 1, 3, "mknod"), "denied"),
    (("open c 1:5 rw", false, 1, 5, "rw"), "allowed"),
    (("mknod c 1:5", false, 1, 5, "mknod"), "denied"),
    (("open b 7:3 r", true, 7, 3, "r"), "allowed"),
    (("open b 7:3 w", true, 7, 3, "w"), "denied"),
    (("mknod b 7:3", true, 7, 3, "mknod"), "allowed"),
    (("mknod b 8:3", true, 8, 3, "mknod"), "denied"),
    (("mknod c 7:3", false, 7, 3, "mknod"), "denied"),
    (("mknod c 1:7", false, 1, 7, "mknod"), "allowed"),
    (("open c 1:7 r", false, 1, 7, "r"), "denied"),
    (("open c 1:9 rw", false, 1, 9, "rw"), "allowed"),
];

fn tries(set: &str) -> &'static [(Try, &'static str)] {
    if set == "default" {
        &DEFAULT_TRIES
    } else {
        &CUSTOM_TRIES
    }
}

/// A device node's file name in the helper's tmpfs.
fn node_name((_, block, major, minor, _): &Try) -> String {
    format!("{}-{major}-{minor}", if *block { "b" } else { "c" })
}

/// mknod(2) of a device node, mode 0666.
fn mknod(path: &Path, block: bool, major: u32, minor: u32) -> nix::Result<()> {
    use nix::sys::stat::{makedev, Mode, SFlag};
    let kind = if block {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFCHR
    };
    nix::sys::stat::mknod(
        path,
        kind,
        Mode::from_bits_truncate(0o666),
        makedev(major.into(), minor.into()),
    )
}

fn helper_devices(group: &Path, set: &str, tmp: &Path) {
    use nix::fcntl::OFlag;
    own_mount_ns(nix::sched::CloneFlags::empty());
    mount_new("tmpfs", tmp);
    // The nodes to open, made before the rules hold.
    let made = tmp.join("made");
    make(&made, true, "");
    for (tried, _) in tries(set) {
        let path = made.join(node_name(tried));
        if tried.4 != "mknod" && !path.exists() {
            if let Err(e) = mknod(&path, tried.1, tried.2, tried.3) {
                helper::die("mknod before the rules", e)
            }
        }
    }
    let rules = if set == "default" {
        step06::devices::DEFAULT.to_vec()
    } else {
        custom_rules()
    };
    let program = step06::devices::program(&rules);
    say("instructions", program.len());
    let loaded = match step06::bpf::load(&program) {
        Ok(fd) => fd,
        Err(refusal @ step06::bpf::Refusal::Verifier(_)) => {
            say("loaded", refusal);
            return;
        }
        Err(refusal) => helper::die("load a device program", refusal),
    };
    say("loaded", "yes");
    if let Err(e) = step06::bpf::attach(group, &loaded) {
        helper::die("attach the program", format!("{e:#}"))
    }
    if let Err(e) = std::fs::write(group.join("cgroup.procs"), std::process::id().to_string()) {
        helper::die("join the check's cgroup", e)
    }
    let fresh = tmp.join("fresh");
    make(&fresh, true, "");
    for (tried, _) in tries(set) {
        let (name, block, major, minor, how) = *tried;
        let result = if how == "mknod" {
            let path = fresh.join(node_name(tried));
            mknod(&path, block, major, minor)
        } else {
            let path = made.join(node_name(tried));
            let access = match how {
                "r" => OFlag::O_RDONLY,
                "w" => OFlag::O_WRONLY,
                _ => OFlag::O_RDWR,
            };
            // O_NOCTTY: a terminal opened here never becomes the
            // helper's; O_NONBLOCK: nothing waits for a device.
            let flags = access | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            nix::fcntl::open(&path, flags, nix::sys::stat::Mode::empty()).map(drop)
        };
        // EPERM: the device rules said no; anything else (the device
        // opened, or its driver answered ENXIO) got past them.
        let verdict = match result {
            Err(nix::errno::Errno::EPERM) => "denied".to_string(),
            _ => "allowed".to_string(),
        };
        say(name, verdict);
    }
}

fn devices_check(ctx: &Ctx, set: &str, what: &str) -> Outcome {
    let group = CheckGroup::new(&format!("devices-{set}"))?;
    let tmp = ctx.temp_dir();
    let text = helper::run(
        "devices::program",
        "confine-devices",
        &[&path_arg(&group.0), set, &path_arg(tmp.path())],
    )?;
    let loaded = helper::said(&text, "loaded");
    ensure(loaded == "yes", || {
        Fail::new(format!(
            "the program of {what} ({} instructions) should load",
            helper::said(&text, "instructions")
        ))
        .expected("the verifier accepts it")
        .seen(&loaded)
    })?;
    let expected: Vec<(&str, &str)> = tries(set)
        .iter()
        .map(|(tried, verdict)| (tried.0, *verdict))
        .collect();
    expect_said(
        &format!("the program of {what}, attached to a cgroup v2 group a helper then joins: its mknods (in a tmpfs of its own) and opens of nodes made before (denied: EPERM)"),
        &text,
        &expected,
    )
}

fn device_program_follows_dockers_rules(ctx: &Ctx) -> Outcome {
    devices_check(ctx, "default", "docker's rules (DEFAULT)")
}

fn device_program_checks_each_access(ctx: &Ctx) -> Outcome {
    devices_check(
        ctx,
        "custom",
        "the rules c 1:3 r, c 1:5 rw, b 7:* rm, c 1:7 m, c 1:9 rwm",
    )
}

// ---------------------------------------------------------------------
// Cgroups.

use step06::cgroups::{hierarchies, Group, Limits};

/// A group made with the given code (no limits): its v2 directory and one
/// in each v1 tree of memory, pids and cpu; removed, its processes
/// killed, when dropped.
struct LimitsGroup {
    group: Group,
    children: Vec<std::process::Child>,
}

impl LimitsGroup {
    fn new(name: &str) -> Result<LimitsGroup, Fail> {
        let id = format!("grader-{name}-{}", std::process::id());
        let group = Group::create(&id, &Limits::default())
            .map_err(|e| Fail::new("setup: make a group (Group::create)").seen(format!("{e:#}")))?;
        // Dropped on an error: removed.
        let mut made = LimitsGroup {
            group,
            children: Vec::new(),
        };
        for controller in ["memory", "pids", "cpu"] {
            made.group
                .add_v1(&id, controller)
                .map_err(|e| Fail::new("setup: a v1 group").seen(format!("{e:#}")))?;
        }
        Ok(made)
    }
}

impl Drop for LimitsGroup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.group.remove();
    }
}

fn read_file(path: &Path) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

fn set_limits_writes_the_kernels_files(ctx: &Ctx) -> Outcome {
    let made = LimitsGroup::new("limits")?;
    let all = hierarchies().map_err(|e| Fail::new("setup: hierarchies").seen(e))?;
    let limits = Limits {
        memory: Some(48 << 20),
        pids: Some(37),
        millicpus: Some(250),
    };
    // A v1 cpu group's period is 100000 already: another value first, so
    // a period never written shows.
    for dir in &made.group.dirs {
        let period = dir.join("cpu.cfs_period_us");
        if period.exists() {
            std::fs::write(&period, "50000").map_err(setup("write cpu.cfs_period_us"))?;
        }
    }
    grader::todo::call("Group::set_limits", || made.group.set_limits(&all, &limits))?.map_err(
        |e| {
            Fail::new("set_limits(48 MiB, 37 pids, 0.25 CPU) should return Ok")
                .seen(format!("{e:#}"))
        },
    )?;
    // Where each file is: the group's directory that has it.
    let find = |file: &str| {
        made.group
            .dirs
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
    };
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    let mut expect = |file: &str, value: &str| {
        if let Some(path) = find(file) {
            expected.push(format!("{file}: {value}"));
            seen.push(format!(
                "{file}: {}",
                read_file(&path).unwrap_or_else(|| "(unreadable)".into())
            ));
        }
    };
    let bytes = (48u64 << 20).to_string();
    if find("memory.limit_in_bytes").is_some() {
        expect("memory.limit_in_bytes", &bytes);
        expect("memory.memsw.limit_in_bytes", &bytes);
    } else {
        expect("memory.max", &bytes);
        expect("memory.swap.max", "0");
    }
    expect("pids.max", "37");
    if find("cpu.cfs_quota_us").is_some() {
        expect("cpu.cfs_period_us", "100000");
        expect("cpu.cfs_quota_us", "25000");
    } else {
        expect("cpu.max", "25000 100000");
    }
    ensure(expected.len() >= 3, || {
        Fail::new("setup: the group should have a memory, a pids and a cpu file")
            .seen(format!("{:?}", made.group.dirs))
    })?;
    expect_eq(
        "set_limits(48 MiB, 37 pids, 0.25 CPU) on a group the grader made: its files",
        expected.join("\n"),
        seen.join("\n"),
    )?;
    // Where v1 holds the controllers (a hybrid host), the v2 branch never
    // ran: a made-up v2 hierarchy too, plain files in a directory of the
    // check's, once with memory.swap.max (swap accounting), once without.
    for swap in [true, false] {
        made_up_v2(ctx, &limits, swap)?;
    }
    Ok(())
}

/// set_limits on a made-up cgroup v2 hierarchy holding memory, pids and
/// cpu: a directory of plain files with the kernel's defaults.
fn made_up_v2(ctx: &Ctx, limits: &Limits, swap: bool) -> Outcome {
    use step06::cgroups::Hierarchy;
    let tmp = ctx.temp_dir();
    let mount = tmp.path().join("cgroup2");
    let dir = mount.join("minibox").join("grader-made-up");
    std::fs::create_dir_all(&dir).map_err(setup("make the made-up group"))?;
    let mut files = vec![
        ("memory.max", "max"),
        ("pids.max", "max"),
        ("cpu.max", "max 100000"),
    ];
    if swap {
        files.push(("memory.swap.max", "max"));
    }
    for (file, value) in &files {
        std::fs::write(dir.join(file), format!("{value}\n"))
            .map_err(setup("write a made-up file"))?;
    }
    let all = vec![Hierarchy {
        mount: mount.clone(),
        v2: true,
        controllers: ["memory", "pids", "cpu"].map(String::from).to_vec(),
    }];
    let group = Group {
        dirs: vec![dir.clone()],
    };
    let what = format!(
        "set_limits(48 MiB, 37 pids, 0.25 CPU) on a made-up v2 hierarchy (its only one, holding memory, pids and cpu), {} memory.swap.max",
        if swap { "with" } else { "without" }
    );
    grader::todo::call("Group::set_limits", || group.set_limits(&all, limits))?
        .map_err(|e| Fail::new(format!("{what} should return Ok")).seen(format!("{e:#}")))?;
    let show = |file: &str| read_file(&dir.join(file)).unwrap_or_else(|| "(no such file)".into());
    let mut expected = vec![
        format!("memory.max: {}", 48u64 << 20),
        "pids.max: 37".to_string(),
        "cpu.max: 25000 100000".to_string(),
    ];
    expected.push(format!(
        "memory.swap.max: {}",
        if swap { "0" } else { "(no such file)" }
    ));
    let seen: Vec<String> = ["memory.max", "pids.max", "cpu.max", "memory.swap.max"]
        .iter()
        .map(|file| format!("{file}: {}", show(file)))
        .collect();
    expect_eq(
        &format!("{what}: its files"),
        expected.join("\n"),
        seen.join("\n"),
    )
}

fn add_puts_the_process_in_every_hierarchy(ctx: &Ctx) -> Outcome {
    let mut made = LimitsGroup::new("add")?;
    let child = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .map_err(setup("start sleep"))?;
    let pid = child.id() as i32;
    ctx.track(pid);
    made.children.push(child);
    grader::todo::call("Group::add", || made.group.add(pid))?
        .map_err(|e| Fail::new("Group::add(PID) should return Ok").seen(format!("{e:#}")))?;
    let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    for dir in &made.group.dirs {
        let procs = read_file(&dir.join("cgroup.procs")).unwrap_or_default();
        expected.push(format!("{}/cgroup.procs: lists {pid}", dir.display()));
        let listed = procs.lines().any(|l| l.trim() == pid.to_string());
        seen.push(format!(
            "{}/cgroup.procs: {}",
            dir.display(),
            if listed {
                format!("lists {pid}")
            } else {
                format!("[{}]", procs.lines().collect::<Vec<_>>().join(" "))
            }
        ));
    }
    expect_eq(
        &format!("Group::add(PID) for a sleep of the grader's: each of the group's cgroup.procs (its /proc/PID/cgroup:\n{})", ours.trim()),
        expected.join("\n"),
        seen.join("\n"),
    )
}

fn end_kills_what_is_left_and_removes_the_group(ctx: &Ctx) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let made = LimitsGroup::new("end")?;
    let v2 = made.group.v2_dir();
    let v1: Vec<&PathBuf> = made
        .group
        .dirs
        .iter()
        .filter(|d| Some(*d) != v2.as_ref())
        .collect();
    // Three sleeps: in every directory, in the v2 one only, in the v1 ones
    // only (those there are).
    let mut places: Vec<(&str, Vec<&PathBuf>)> = vec![("in all", made.group.dirs.iter().collect())];
    if let Some(v2) = &v2 {
        places.push(("in v2 only", vec![v2]));
    }
    if !v1.is_empty() {
        places.push(("in v1 only", v1.clone()));
    }
    let mut sleeps = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut moved = Ok(());
    for (name, dirs) in &places {
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .map_err(setup("start sleep"))?;
        let pid = child.id() as i32;
        ctx.track(pid);
        sleeps.push((*name, pid));
        let tx = tx.clone();
        // Reaped as soon as it ends: a zombie would keep its group busy.
        std::thread::spawn(move || {
            let _ = tx.send((pid, child.wait()));
        });
        for dir in dirs {
            if moved.is_ok() {
                moved = std::fs::write(dir.join("cgroup.procs"), pid.to_string())
                    .map_err(|e| format!("{}: {e}", dir.display()));
            }
        }
    }
    drop(tx);
    let called = if moved.is_ok() {
        grader::todo::call("Group::end", || made.group.end())
    } else {
        Ok(())
    };
    // Whatever happened, each sleep's end: by Group::end, or else by the
    // grader after a while.
    let mut ended = std::collections::BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while ended.len() < sleeps.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((pid, status)) => {
                ended.insert(pid, status.ok().and_then(|s| s.signal()));
            }
            Err(_) => break,
        }
    }
    let left_over: Vec<String> = made
        .group
        .dirs
        .iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    for (_, pid) in &sleeps {
        if !ended.contains_key(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    while ended.len() < sleeps.len() {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok((pid, _)) => {
                ended.insert(pid, Some(0));
            }
            Err(_) => break,
        }
    }
    moved.map_err(|e| Fail::new("setup: move the sleeps into the group").seen(e))?;
    called?;
    drop(made);
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    for (name, pid) in &sleeps {
        expected.push(format!("the sleep {name}: killed by SIGKILL"));
        seen.push(format!(
            "the sleep {name}: {}",
            match ended.get(pid) {
                Some(Some(9)) => "killed by SIGKILL".to_string(),
                Some(Some(0)) | None => "still running 3 s later".to_string(),
                Some(other) => format!("ended otherwise (signal {other:?})"),
            }
        ));
    }
    expected.push("directories left: none".into());
    seen.push(format!(
        "directories left: {}",
        if left_over.is_empty() {
            "none".to_string()
        } else {
            left_over.join(", ")
        }
    ));
    expect_eq(
        "Group::end() on a group holding three sleeps of the grader's",
        expected.join("\n"),
        seen.join("\n"),
    )
}
