//! Graded checks for step 01: a container is a process.
//!
//! Compiled into `lesson-01` (the learner's code) and `solution-01` (the
//! reference). Run: `cargo test -p lesson-01`; one check: add its name.
//!
//! The first five grade one part each: the exit-code mappings are called
//! directly; the exec report and the supervisor are called in a process of
//! their own (this test binary started again with `--library NAME`, which is
//! single-threaded, as a fork needs), and the kernel (`/proc`) is asked what
//! came of them. The others start the runtime as a separate program and ask
//! the kernel what happened.

use grader::procfs;
use grader::todo::call;
use grader::{
    ensure, expect_eq, kill_and_wait_reaped, poll, Check, Ctx, Fail, Needs, Outcome, Requires,
};
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--library") {
        library::main(args.get(2).map_or("", String::as_str));
    }
    grader::main(
        grader::step!("01-fork", Needs::Linux),
        vec![
            // One part each: the grader calls the learner's function itself.
            Check {
                name: "exit_status_maps_like_a_shell",
                points: 2,
                section: "exit-statuses",
                hint: "status::exit_code folds how a child ended into one number, as a shell's `$?`: the child's own code when it exited, 128 + N when signal N killed it, the runtime's error (125) for anything else.",
                more: "nix::sys::wait::WaitStatus: Exited(pid, code), Signaled(pid, signal, core_dumped), and the others (Stopped, Continued, StillAlive ...); a nix Signal converts to its number with `as i32`; RUNTIME_ERROR is 125.",
                shape: "1. match the status\n2. exited with code: the code\n3. killed by signal: 128 + the signal's number\n4. anything else: the runtime error",
                requires: Requires::Nothing,
                run: exit_status_maps_like_a_shell,
            },
            Check {
                name: "exec_failure_picks_docker_code",
                points: 2,
                section: "exit-statuses",
                hint: "status::exec_failure_code: 127 when there is no such program (not on the PATH, or execve said ENOENT), 126 when the program exists but can't be executed (any other errno of execve), 125 when the runtime's own preparation failed (the working directory, a set-up step).",
                more: "spawn::Stage: Chdir, Lookup, Exec, Setup; nix::errno::Errno::ENOENT; the constants NOT_FOUND (127), CANNOT_EXECUTE (126), RUNTIME_ERROR (125) in status.rs; a match with a guard (`Stage::Exec if ...`).",
                shape: "1. match the stage\n2. the lookup: not found\n3. the exec, errno ENOENT: not found\n4. the exec, any other errno: cannot execute\n5. the working directory or a set-up step: the runtime's error",
                requires: Requires::Nothing,
                run: exec_failure_picks_docker_code,
            },
            Check {
                name: "exec_report_reaches_the_parent",
                points: 3,
                section: "when-exec-fails",
                hint: "The exec report is a pipe both of whose ends close by themselves at execve: the parent drops its write end and reads to end-of-file; nothing read means the exec happened (return at once, the child still running and not reaped), a report means it failed: reap the child, and return the report's Failure. The child writes its report in one write and leaves with _exit, running none of the runtime's code.",
                more: "nix::unistd::pipe2 with nix::fcntl::OFlag::O_CLOEXEC; nix::unistd::write; nix::libc::_exit (not std::process::exit, which flushes the copy of the parent's stdout buffer); drop(the write end); std::fs::File::from(OwnedFd) and Read::read_to_end; nix::sys::wait::waitpid(child, None); Message::encode, Message::decode, Message::failure and wire::garbled (given).",
                shape: "new: 1. a pipe, close-on-exec from its creation 2. keep both ends\nsend: 1. write the encoded message once 2. _exit\nwait_for_exec: 1. take the two ends apart, close the write end 2. read everything until end-of-file 3. nothing: Ok 4. else reap the child 5. decode: the message's failure as the error, or the garbled error",
                requires: Requires::Nothing,
                run: exec_report_reaches_the_parent,
            },
            Check {
                name: "supervisor_adopts_and_blocks",
                points: 2,
                section: "signals",
                hint: "Supervisor::start makes the process a child subreaper and blocks SIGCHLD and every FORWARDED signal (blocked, not ignored: they wait as pending for sigwait), and keeps that set for the wait loop.",
                more: "nix::sys::prctl::set_child_subreaper; nix::sys::signal::{SigSet, Signal, sigprocmask, SigmaskHow::SIG_BLOCK}; SigSet::empty and SigSet::add; the FORWARDED array; Supervisor { signals }.",
                shape: "1. become the subreaper of orphans\n2. a set: SIGCHLD and every forwarded signal\n3. block the set\n4. return a Supervisor holding the set",
                requires: Requires::Nothing,
                run: supervisor_adopts_and_blocks,
            },
            Check {
                name: "wait_forwards_and_reaps",
                points: 3,
                section: "orphans-and-zombies",
                hint: "Supervisor::wait loops on sigwait: a forwarded signal goes to the child with kill; a SIGCHLD means reaping every dead child (waitpid on any child, without blocking, again and again) until none is left; the child's own end is the return value. Never block in waitpid: signals wait then.",
                more: "SigSet::wait (sigwait(3)); nix::sys::signal::kill (ESRCH: the child is already gone); nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) (None is -1, any child): Ok(WaitStatus::StillAlive) or Err(Errno::ECHILD) when none is left to reap for now, EINTR to retry; WaitStatus::pid.",
                shape: "1. loop: take a signal with sigwait\n2. not SIGCHLD: forward it to the child, back to 1\n3. SIGCHLD: loop: reap one child without blocking\n4.   none left: back to 1\n5.   it is the child: return its status\n6.   an orphan: reap the next",
                requires: Requires::Nothing,
                run: wait_forwards_and_reaps,
            },
            // The runtime as a whole: `run`, and every part.
            Check {
                name: "command_is_a_child_process",
                points: 2,
                section: "fork-exec-wait",
                hint: "fork first, execve only in the child: the runtime must stay alive as the parent that waits.",
                more: "spawn::spawn (nix::unistd::fork, ForkResult::Child / Parent { child }), exec::exec_child in the child, and run putting the parts in order.",
                shape: "run: 1. prepare the command 2. start the supervisor 3. the exec report 4. fork 5. wait for the exec 6. wait for the child 7. its exit code",
                requires: Requires::Nothing,
                run: command_is_a_child_process,
            },
            Check {
                name: "output_passes_through",
                points: 2,
                section: "standard-streams-are-inherited",
                hint: "The child inherits the runtime's file descriptors 0, 1 and 2 across fork and execve; don't open, pipe or print anything of your own on them.",
                more: "Nothing to write for it: fork and execve keep fds 0, 1, 2. What breaks it: printing in the runtime on success, or a child that flushes the parent's buffered output (std::process::exit instead of _exit).",
                shape: "1. run a command that writes binary bytes to stdout and a line to stderr\n2. the runtime's stdout and stderr are exactly those",
                requires: Requires::Nothing,
                run: output_passes_through,
            },
            Check {
                name: "stdin_passes_through",
                points: 2,
                section: "standard-streams-are-inherited",
                hint: "The command reads the runtime's stdin because fd 0 is inherited; nothing to copy by hand.",
                more: "fd 0 survives fork and execve; the runtime must not read it itself.",
                shape: "1. run cat with two lines on stdin\n2. cat echoes them and exits 0",
                requires: Requires::Nothing,
                run: stdin_passes_through,
            },
            Check {
                name: "exit_code_propagates",
                points: 2,
                section: "exit-statuses",
                hint: "The wait loop's status of the child, through status::exit_code, is what run returns and the runtime exits with.",
                more: "Supervisor::wait returns the child's WaitStatus; status::exit_code; run returns Ok(code), which the given cli::main hands to std::process::exit.",
                shape: "1. `sh -c 'exit N'` for N in 0, 1, 7, 255\n2. the runtime exits N",
                requires: Requires::Nothing,
                run: exit_code_propagates,
            },
            Check {
                name: "signal_death_is_128_plus_n",
                points: 2,
                section: "exit-statuses",
                hint: "A child killed by signal N ends as WaitStatus::Signaled; shells and docker report 128 + N (SIGKILL 9 -> 137).",
                more: "status::exit_code's Signaled arm, fed by Supervisor::wait's status of the child (not an orphan's).",
                shape: "1. `sh -c 'kill -SIG $$'` for KILL, TERM, INT\n2. the runtime exits 137, 143, 130",
                requires: Requires::Nothing,
                run: signal_death_is_128_plus_n,
            },
            Check {
                name: "not_found_is_127",
                points: 1,
                section: "when-exec-fails",
                hint: "A program on no directory of the command's PATH, or a path execve says ENOENT to: the child reports it, the parent exits 127 with one line. Look the program up on the command's PATH (Prepared::find_program), not the runtime's.",
                more: "Prepared::find_program (Err(ENOENT): Stage::Lookup), execve's errno (Stage::Exec), ExecReport::fail in the child, wait_for_exec's Failure in the parent, status::exec_failure_code; the given cli prints the error's one line and exits with its code.",
                shape: "1. in the child: find the program; none: report the lookup's failure\n2. execve; it returned: report the exec's failure\n3. in the parent: the report becomes the error, 127",
                requires: Requires::Nothing,
                run: not_found_is_127,
            },
            Check {
                name: "not_executable_is_126",
                points: 1,
                section: "when-exec-fails",
                hint: "execve of a file without the x bit fails with EACCES: the child reports it at the exec stage, the parent turns it into 126, and the script never runs.",
                more: "nix::unistd::execve returns Result<Infallible, Errno>: `let Err(errno) = execve(...);`; ExecReport::fail(Stage::Exec, errno); status::exec_failure_code.",
                shape: "1. execve the program found\n2. it returned: report the exec stage and its errno\n3. the parent exits 126 with one line naming the file",
                requires: Requires::Nothing,
                run: not_executable_is_126,
            },
            Check {
                name: "runtime_error_is_125",
                points: 1,
                section: "when-exec-fails",
                hint: "Errors of the runtime itself (bad flags, a missing -w directory) exit 125 with one line `minibox: what: why`; a -w that fails is the child's chdir, reported through the exec report.",
                more: "nix::unistd::chdir in the child, ExecReport::fail(Stage::Chdir, errno), status::exec_failure_code; the flags are the given cli's.",
                shape: "1. in the child, with a working directory: chdir; it failed: report the chdir stage\n2. the parent exits 125 with one line naming the directory",
                requires: Requires::Nothing,
                run: runtime_error_is_125,
            },
            Check {
                name: "env_and_workdir_take_effect",
                points: 2,
                section: "environment-and-working-directory",
                hint: "execve gets exactly the environment prepared for it (cmd.envp, built by the given env rule), and the chdir happens in the child before execve, never in the runtime.",
                more: "nix::unistd::execve(program, &cmd.argv, &cmd.envp); nix::unistd::chdir(cmd.workdir) in exec_child.",
                shape: "1. in the child: chdir to the working directory, if any\n2. execve with the prepared argv and envp\n3. the runtime's own directory and environment stay",
                requires: Requires::Nothing,
                run: env_and_workdir_take_effect,
            },
            Check {
                name: "sigterm_reaches_the_command",
                points: 2,
                section: "signals",
                hint: "Block the signals before forking, collect them with sigwait in the wait loop, and kill(child, signal) for everything but SIGCHLD; never block in waitpid, or signals wait too.",
                more: "Supervisor::start before spawn in run (the mask is inherited, and a signal between fork and the loop stays pending); SigSet::wait; nix::sys::signal::kill.",
                shape: "1. run: start the supervisor before the fork\n2. wait: sigwait; SIGTERM: kill(child, SIGTERM)\n3. the child's trap exits 42: its SIGCHLD, reap, return",
                requires: Requires::Nothing,
                run: sigterm_reaches_the_command,
            },
            Check {
                name: "other_signals_reach_the_command",
                points: 2,
                section: "signals",
                hint: "Forward every signal in FORWARDED (HUP, INT, QUIT, TERM, USR1, USR2), not only SIGTERM.",
                more: "The FORWARDED array in supervise.rs: block all of it in Supervisor::start, forward whichever sigwait returns.",
                shape: "1. block SIGCHLD and each of FORWARDED\n2. forward any signal sigwait returns that is not SIGCHLD",
                requires: Requires::Nothing,
                run: other_signals_reach_the_command,
            },
            Check {
                name: "signals_start_clean",
                points: 1,
                section: "signals",
                hint: "The mask and ignored signals survive execve: in the child, before execve, every signal back to its default action and none blocked.",
                more: "given::child::default_actions (every action to SIG_DFL, by the raw system call); nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).",
                shape: "1. in the child, first: default actions for every signal\n2. the mask: empty\n3. then the working directory and the exec",
                requires: Requires::Nothing,
                run: signals_start_clean,
            },
            Check {
                name: "orphans_are_adopted_and_reaped",
                points: 2,
                section: "orphans-and-zombies",
                hint: "Be a child subreaper before the fork and, on every SIGCHLD, reap any child (waitpid on -1, WNOHANG), not only the command.",
                more: "nix::sys::prctl::set_child_subreaper(true) in Supervisor::start; waitpid(None, Some(WaitPidFlag::WNOHANG)) in Supervisor::wait.",
                shape: "1. start: subreaper\n2. wait, on SIGCHLD: reap without blocking; an orphan's status: reap on",
                requires: Requires::Nothing,
                run: orphans_are_adopted_and_reaped,
            },
            Check {
                name: "orphans_dying_together_are_all_reaped",
                points: 2,
                section: "orphans-and-zombies",
                hint: "Forty orphans killed at once send SIGCHLDs that coalesce into one pending signal: after each SIGCHLD, reap in a loop until nothing is left.",
                more: "waitpid(None, Some(WaitPidFlag::WNOHANG)) until Ok(WaitStatus::StillAlive) or Err(Errno::ECHILD); each Ok(status) is one dead child.",
                shape: "1. on SIGCHLD: loop\n2.   reap one without blocking\n3.   none left: back to sigwait\n4.   the child: return; an orphan: loop",
                requires: Requires::Nothing,
                run: orphans_dying_together_are_all_reaped,
            },
        ],
    );
}

fn exit_status_maps_like_a_shell(_ctx: &Ctx) -> Outcome {
    use nix::sys::wait::WaitStatus;
    use nix::unistd::Pid;
    let pid = Pid::from_raw(4242);
    let cases = [
        (WaitStatus::Exited(pid, 0), 0, "exited 0"),
        (WaitStatus::Exited(pid, 3), 3, "exited 3"),
        (WaitStatus::Exited(pid, 255), 255, "exited 255"),
        (
            WaitStatus::Signaled(pid, Signal::SIGKILL, false),
            137,
            "killed by SIGKILL (9)",
        ),
        (
            WaitStatus::Signaled(pid, Signal::SIGTERM, false),
            143,
            "killed by SIGTERM (15)",
        ),
        (
            WaitStatus::Signaled(pid, Signal::SIGSEGV, true),
            139,
            "killed by SIGSEGV (11), core dumped",
        ),
        (
            WaitStatus::Stopped(pid, Signal::SIGSTOP),
            125,
            "stopped (not an end: the runtime lost track)",
        ),
        (
            WaitStatus::StillAlive,
            125,
            "still alive (not an end: the runtime lost track)",
        ),
    ];
    for (status, code, how) in cases {
        let seen = call("status::exit_code", || step01::status::exit_code(status))?;
        expect_eq(&format!("status::exit_code for a child {how}"), code, seen)?;
    }
    Ok(())
}

fn exec_failure_picks_docker_code(_ctx: &Ctx) -> Outcome {
    use nix::errno::Errno;
    use step01::spawn::Stage;
    let cases = [
        (
            Stage::Lookup,
            Errno::ENOENT,
            127,
            "not on the command's PATH",
        ),
        (
            Stage::Exec,
            Errno::ENOENT,
            127,
            "execve said ENOENT (a path to nothing)",
        ),
        (
            Stage::Exec,
            Errno::EACCES,
            126,
            "execve said EACCES (no x bit)",
        ),
        (
            Stage::Exec,
            Errno::ENOEXEC,
            126,
            "execve said ENOEXEC (not a program)",
        ),
        (
            Stage::Exec,
            Errno::ETXTBSY,
            126,
            "execve said ETXTBSY (open for writing)",
        ),
        (
            Stage::Chdir,
            Errno::ENOENT,
            125,
            "the -w directory doesn't exist",
        ),
        (
            Stage::Chdir,
            Errno::EACCES,
            125,
            "the -w directory can't be entered",
        ),
        (Stage::Setup, Errno::EPERM, 125, "a set-up step said EPERM"),
    ];
    for (stage, errno, code, how) in cases {
        let seen = call("status::exec_failure_code", || {
            step01::status::exec_failure_code(stage, errno)
        })?;
        expect_eq(
            &format!("status::exec_failure_code({stage:?}, {errno:?}): {how}"),
            code,
            seen,
        )?;
    }
    Ok(())
}

/// This test binary again, as `--library NAME`: a process of its own.
fn library(ctx: &Ctx, name: &str) -> Result<grader::process::Invocation, Fail> {
    let me = std::env::current_exe()
        .map_err(|e| Fail::new("the grader cannot find its own binary").seen(e))?;
    Ok(ctx.minibox_at(&me, &["--library", name]))
}

/// A line of the helper's stdout that says what it saw: `FAIL ...`.
fn helper_verdict(out: &grader::process::Output, what: &str) -> Outcome {
    let text = out.stdout_text();
    if let Some(line) = text.lines().find(|l| l.starts_with("FAIL ")) {
        let mut parts = line["FAIL ".len()..].splitn(2, " | seen: ");
        let what = parts.next().unwrap_or_default().to_string();
        let mut fail = Fail::new(what);
        if let Some(seen) = parts.next() {
            fail = fail.seen(seen);
        }
        return Err(fail);
    }
    if out.code() != Some(0) {
        let seen = grader::process::tail(&out.stderr);
        let seen = match seen.split("not yet implemented: ").nth(1) {
            Some(todo) => format!("not written yet: {}", todo.lines().next().unwrap_or("")),
            None => format!("{} {seen}", out.summary()),
        };
        return Err(Fail::new(format!("{what} should return")).seen(seen));
    }
    Ok(())
}

fn exec_report_reaches_the_parent(ctx: &Ctx) -> Outcome {
    let out = library(ctx, "exec-report")?.output()?;
    helper_verdict(&out, "ExecReport::new, its fail and wait_for_exec")?;
    let text = out.stdout_text();
    let pending = text.matches("pending-output").count();
    ensure(pending == 1, || {
        Fail::new("a child that reports a failure must leave without flushing the copy of the parent's stdout buffer (output unflushed at the fork came out twice)")
            .expected("`pending-output` once")
            .seen(format!("{pending} times"))
    })?;
    ensure(text.contains("done"), || {
        Fail::new("the exec report's checks should all have run").seen(&text)
    })
}

fn supervisor_adopts_and_blocks(ctx: &Ctx) -> Outcome {
    let out = library(ctx, "start")?.output()?;
    helper_verdict(&out, "Supervisor::start")?;
    ensure(out.stdout_text().contains("done"), || {
        Fail::new("Supervisor::start's checks should all have run").seen(out.stdout_text())
    })
}

fn wait_forwards_and_reaps(ctx: &Ctx) -> Outcome {
    let mut running = library(ctx, "wait")?.spawn()?;
    let helper = running.pid();
    let line = running.read_line(SOON)?;
    let mut words = line.split_whitespace();
    if words.next() != Some("ready") {
        return Err(Fail::new("Supervisor::start and a child should have started").seen(&line));
    }
    let numbers: Vec<i32> = words.filter_map(|w| w.parse().ok()).collect();
    let (command, orphans) = numbers
        .split_first()
        .ok_or_else(|| Fail::new("the grader's helper said nothing").seen(&line))?;
    ctx.track(*command);
    for &pid in orphans {
        ctx.track(pid);
    }
    let adopted = poll(SOON, || {
        orphans
            .iter()
            .all(|&pid| procfs::stat(pid).is_some_and(|s| s.ppid == helper))
            .then_some(())
    });
    ensure(adopted.is_some(), || {
        Fail::new("after Supervisor::start, orphans of the child should be the supervisor's (a child subreaper)")
            .seen(running.ended().unwrap_or_else(|| "an orphan has another parent".into()))
    })?;
    let left = kill_and_wait_reaped(orphans, SOON);
    ensure(left.is_empty(), || {
        Fail::new(format!(
            "Supervisor::wait should reap every child that dies, orphans included: {} of {} dead orphans are still in /proc",
            left.len(),
            orphans.len()
        ))
        .seen(running.ended().unwrap_or_else(|| "the wait loop is still running".into()))
    })?;
    running.signal(Signal::SIGTERM)?;
    let out = running.wait(SOON).map_err(|fail| Fail {
        what: format!(
            "SIGTERM was sent to the supervisor, but {} (was it forwarded to the child?)",
            fail.what
        ),
        ..fail
    })?;
    helper_verdict(&out, "Supervisor::wait")?;
    let text = out.stdout_text();
    let status = text
        .lines()
        .find_map(|l| l.strip_prefix("status "))
        .unwrap_or("none");
    expect_eq(
        "Supervisor::wait should return the child's own end: its trap of the forwarded SIGTERM exits 42",
        format!("Exited(Pid({command}), 42)"),
        status.to_string(),
    )
}

/// The library's parts, run in a process of their own (single-threaded, so
/// it may fork), for the checks above. Each prints `FAIL what | seen: ...`
/// at its first surprise, or `done`.
mod library {
    use nix::errno::Errno;
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use nix::unistd::{fork, ForkResult, Pid};
    use std::ffi::CString;
    use std::io::Write;
    use std::time::Duration;
    use step01::spawn::{ExecReport, Stage};

    pub fn main(name: &str) -> ! {
        let result = match name {
            "exec-report" => exec_report(),
            "start" => start(),
            "wait" => wait(),
            other => Err(format!("no such part: {other}")),
        };
        let mut out = std::io::stdout().lock();
        let _ = match result {
            Ok(()) => writeln!(out, "done"),
            Err(why) => writeln!(out, "FAIL {why}"),
        };
        let _ = out.flush();
        std::process::exit(0);
    }

    fn fail(what: &str, seen: impl std::fmt::Debug) -> String {
        format!("{what} | seen: {seen:?}")
    }

    fn prepared(name: &str) -> step01::exec::Prepared {
        step01::exec::Prepared::new(&step01::RunSpec {
            command: vec![name.to_string()],
            ..Default::default()
        })
        .expect("a command")
    }

    /// In a child: unblock every signal, then exec `sh -c script`.
    fn exec_sh(script: &str) -> ! {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        let sh = CString::new("/bin/sh").unwrap();
        let args = [
            sh.clone(),
            CString::new("-c").unwrap(),
            CString::new(script).unwrap(),
        ];
        let _ = nix::unistd::execv(&sh, &args);
        unsafe { nix::libc::_exit(99) }
    }

    /// Fork; the child runs `child`.
    fn forked(child: impl FnOnce()) -> Result<Pid, String> {
        // SAFETY: this helper process is single-threaded.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                child();
                // SAFETY: ends the child; `child` never returns.
                unsafe { nix::libc::_exit(98) }
            }
            Ok(ForkResult::Parent { child }) => Ok(child),
            Err(errno) => Err(fail("the grader's helper cannot fork", errno)),
        }
    }

    fn exec_report() -> Result<(), String> {
        // 1. Both ends close-on-exec.
        let report = ExecReport::new().map_err(|e| fail("ExecReport::new should succeed", e))?;
        for fd in report.fds() {
            let flags = nix::fcntl::fcntl(
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_GETFD,
            )
            .map_err(|e| fail("the report's fds should be open", e))?;
            if flags & nix::libc::FD_CLOEXEC == 0 {
                return Err(fail(
                    "both ends of the exec report must be close-on-exec (the kernel closes them at a successful execve)",
                    format!("fd {fd} without FD_CLOEXEC"),
                ));
            }
        }
        // 2. A child that execs: Ok once it has exec'd, while it still runs,
        // and not reaped. The child waits at a gate (states, not time): it
        // says it is there, the grader opens the gate, and the moment
        // wait_for_exec returns its thread reads /proc/CHILD/exe. The kernel
        // switches a process's exe before it closes its close-on-exec fds,
        // so a wait_for_exec that returns at EOF always sees the new program;
        // one that returns before the exec sees the grader's own.
        use std::os::fd::AsRawFd;
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| fail("the grader's helper cannot make a pipe", e))
        };
        let ((gate_r, gate_w), (ready_r, ready_w)) = (pipe()?, pipe()?);
        let (gate, ready) = (gate_r.as_raw_fd(), ready_w.as_raw_fd());
        let child = forked(move || {
            // SAFETY: fds the parent made before the fork, open in this child.
            let _ = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(ready) }, b"r");
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(
                unsafe { std::os::fd::BorrowedFd::borrow_raw(gate) },
                &mut byte,
            );
            exec_sh("exec sleep 1000")
        })?;
        drop((gate_r, ready_w));
        let mut byte = [0u8; 1];
        let _ = nix::unistd::read(&ready_r, &mut byte);
        let (tx, rx) = std::sync::mpsc::channel();
        let own = std::fs::read_link("/proc/self/exe").ok();
        let (result, exe) = std::thread::scope(|scope| {
            scope.spawn(move || {
                let result = report.wait_for_exec(child, &prepared("sleep"));
                let exe = std::fs::read_link(format!("/proc/{child}/exe")).ok();
                let _ = tx.send((result.map_err(|e| format!("{e:#}")), exe));
            });
            let _ = nix::unistd::write(&gate_w, b"g");
            // A guard against a wait_for_exec that waits for the command's
            // end (sleep 1000): it is not a timing assertion.
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(got) => got,
                Err(_) => {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    (
                        Err("did not return in 60 s while the command ran".to_string()),
                        None,
                    )
                }
            }
        });
        let alive = waitpid(child, Some(WaitPidFlag::WNOHANG));
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(child, None);
        if let Err(e) = result {
            return Err(fail(
                "wait_for_exec should return Ok for a child whose execve succeeded, as soon as it has (not when the command ends)",
                e,
            ));
        }
        if exe.is_none() || exe == own {
            return Err(fail(
                "wait_for_exec should return only once the child has exec'd: /proc/CHILD/exe, read as it returned, is no longer the grader's own program",
                format!("{exe:?}"),
            ));
        }
        if alive != Ok(WaitStatus::StillAlive) {
            return Err(fail(
                "after a successful exec, the command must still be running and not reaped: its status is the wait loop's",
                alive,
            ));
        }
        // 3. A child that fails at each stage: the report's Failure, the child reaped.
        let cases: [(Stage, Errno, &str, i32, &str); 4] = [
            (
                Stage::Exec,
                Errno::EACCES,
                "",
                126,
                "exec: \"a-command\": permission denied",
            ),
            (
                Stage::Exec,
                Errno::ENOENT,
                "",
                127,
                "exec: \"a-command\": no such file or directory",
            ),
            (
                Stage::Lookup,
                Errno::ENOENT,
                "",
                127,
                "executable file not found in $PATH",
            ),
            (
                Stage::Setup,
                Errno::EPERM,
                "cannot do the set-up",
                125,
                "cannot do the set-up: operation not permitted",
            ),
        ];
        for (n, (stage, errno, what, code, message)) in cases.into_iter().enumerate() {
            let report =
                ExecReport::new().map_err(|e| fail("ExecReport::new should succeed", e))?;
            if n == 0 {
                // Output the parent has not flushed yet: the child has a copy.
                print!("pending-output ");
            }
            let child = forked(|| {
                std::thread::sleep(Duration::from_millis(50));
                if stage == Stage::Setup {
                    report.fail_setup(what, errno)
                } else {
                    report.fail(stage, errno)
                }
            })?;
            let result = report.wait_for_exec(child, &prepared("a-command"));
            let reaped = waitpid(child, Some(WaitPidFlag::WNOHANG));
            if n == 0 {
                println!();
            }
            let error = match result {
                Ok(()) => {
                    return Err(fail(
                        &format!("wait_for_exec should return the error a child reports ({stage:?}, {errno:?})"),
                        "Ok(())",
                    ))
                }
                Err(error) => error,
            };
            let seen_code = step01::status::error_code(&error);
            if seen_code != code || !format!("{error:#}").contains(message) {
                return Err(fail(
                    &format!("wait_for_exec should return the report's Failure for {stage:?} {errno:?}: code {code}, `{message}`"),
                    format!("code {seen_code}, `{error:#}`"),
                ));
            }
            if reaped != Err(Errno::ECHILD) {
                return Err(fail(
                    "a child that reported a failure must be reaped by wait_for_exec (no zombie left)",
                    reaped,
                ));
            }
        }
        // 4. Bytes that are no report: a runtime error, the child reaped.
        let report = ExecReport::new().map_err(|e| fail("ExecReport::new should succeed", e))?;
        let [_, write_end] = report.fds();
        let child = forked(|| {
            // SAFETY: the write end is open in this child.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(write_end) };
            let _ = nix::unistd::write(fd, b"xyz");
            unsafe { nix::libc::_exit(0) }
        })?;
        let result = report.wait_for_exec(child, &prepared("a-command"));
        let reaped = waitpid(child, Some(WaitPidFlag::WNOHANG));
        match result {
            Err(error) if step01::status::error_code(&error) == 125 => {}
            other => {
                return Err(fail(
                    "three bytes that are no report should be a runtime error (125)",
                    other.map_err(|e| format!("{e:#}")),
                ))
            }
        }
        if reaped != Err(Errno::ECHILD) {
            return Err(fail(
                "a child that sent a garbled report must be reaped too",
                reaped,
            ));
        }
        Ok(())
    }

    /// The signals `Supervisor::start` must block: SIGCHLD and FORWARDED.
    fn blocked_mask() -> Result<u64, String> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| fail("cannot read /proc/self/status", e))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .ok_or_else(|| fail("no SigBlk in /proc/self/status", ""))
    }

    fn start() -> Result<(), String> {
        let before = blocked_mask()?;
        if before != 0 {
            return Err(fail("the helper should start with nothing blocked", before));
        }
        let _supervisor = step01::supervise::Supervisor::start()
            .map_err(|e| fail("Supervisor::start should succeed", format!("{e:#}")))?;
        let mut subreaper: nix::libc::c_int = 0;
        // SAFETY: PR_GET_CHILD_SUBREAPER writes one int where we point.
        unsafe {
            nix::libc::prctl(
                nix::libc::PR_GET_CHILD_SUBREAPER,
                &mut subreaper as *mut nix::libc::c_int,
            );
        }
        if subreaper != 1 {
            return Err(fail(
                "after Supervisor::start the process should be a child subreaper (prctl PR_GET_CHILD_SUBREAPER says 1)",
                subreaper,
            ));
        }
        let mask = blocked_mask()?;
        let mut wanted = vec![nix::sys::signal::Signal::SIGCHLD];
        wanted.extend(step01::supervise::FORWARDED);
        for signal in wanted {
            if mask & (1 << (signal as i32 - 1)) == 0 {
                return Err(fail(
                    &format!("after Supervisor::start, {signal} should be blocked (SigBlk in /proc/PID/status)"),
                    format!("SigBlk: {mask:016x}"),
                ));
            }
        }
        let ignored = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigIgn:").map(|m| m.trim().to_string()))
            })
            .and_then(|m| u64::from_str_radix(&m, 16).ok())
            .unwrap_or(0);
        let chld = 1u64 << (nix::libc::SIGCHLD - 1);
        if ignored & chld != 0 {
            return Err(fail(
                "SIGCHLD must be blocked, not ignored: an ignored SIGCHLD makes the kernel reap children itself, and their statuses are lost",
                format!("SigIgn: {ignored:016x}"),
            ));
        }
        Ok(())
    }

    fn wait() -> Result<(), String> {
        let supervisor = step01::supervise::Supervisor::start()
            .map_err(|e| fail("Supervisor::start should succeed", format!("{e:#}")))?;
        // The child leaves three orphans, one of which dies at once, then
        // waits for SIGTERM; its pid and the orphans' go to the grader.
        let child = forked(|| {
            exec_sh(
                "(sleep 0.05 &); o=$( (for i in 1 2 3; do sleep 1000 >/dev/null 2>&1 & echo $!; done) ); \
                 sleep 0.2; trap 'exit 42' TERM; echo ready $$ $o; while :; do sleep 0.05; done",
            )
        })?;
        let status = supervisor
            .wait(child)
            .map_err(|e| fail("Supervisor::wait should succeed", format!("{e:#}")))?;
        println!("status {status:?}");
        Ok(())
    }
}

fn output_passes_through(ctx: &Ctx) -> Outcome {
    // Bytes that are not text (a NUL, 0xff), no final newline, and enough of
    // them (256 KiB) that a runtime copying through a small buffer would show.
    let script =
        r#"printf 'out\000\377 no newline'; head -c 262144 /dev/zero; printf 'err line\n' >&2"#;
    let out = ctx.minibox(&["run", "--", "sh", "-c", script]).output()?;
    out.expect_code(0, "the command succeeded, so the runtime should too")?;
    let mut expected = b"out\0\xff no newline".to_vec();
    expected.extend(std::iter::repeat_n(0u8, 262144));
    ensure(out.stdout == expected, || {
        Fail::new("stdout should be exactly the command's stdout, byte for byte")
            .expected(format!(
                "{} bytes starting {:?}",
                expected.len(),
                "out\\0\\xff no newline"
            ))
            .seen(format!(
                "{} bytes starting {:?}",
                out.stdout.len(),
                String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(24)])
            ))
    })?;
    expect_eq(
        "stderr should be exactly the command's stderr (the runtime adds nothing on success)",
        "err line\n",
        out.stderr.as_str(),
    )
}

fn stdin_passes_through(ctx: &Ctx) -> Outcome {
    let input = "a line for cat\nand a second one\n";
    let out = ctx
        .minibox(&["run", "--", "cat"])
        .stdin(input.as_bytes())
        .output()?;
    out.expect_code(0, "cat ends with 0 at end of input")?;
    expect_eq(
        "`cat` inside should echo the runtime's stdin",
        input.to_string(),
        out.stdout_text(),
    )
}

fn exit_code_propagates(ctx: &Ctx) -> Outcome {
    for code in [0, 1, 7, 255] {
        let script = format!("exit {code}");
        let out = ctx.minibox(&["run", "--", "sh", "-c", &script]).output()?;
        out.expect_code(
            code,
            "the runtime should exit with the command's own exit code",
        )?;
    }
    Ok(())
}

fn signal_death_is_128_plus_n(ctx: &Ctx) -> Outcome {
    for (signal, code) in [("KILL", 137), ("TERM", 143), ("INT", 130)] {
        let script = format!("kill -{signal} $$");
        let out = ctx.minibox(&["run", "--", "sh", "-c", &script]).output()?;
        out.expect_code(
            code,
            &format!("a command killed by SIG{signal} should give 128 + its number"),
        )?;
    }
    Ok(())
}

fn not_found_is_127(ctx: &Ctx) -> Outcome {
    let out = ctx
        .minibox(&["run", "--", "no-such-command-minibox"])
        .output()?;
    out.expect_code(
        127,
        "a command that doesn't exist is exit code 127, as in a shell",
    )?;
    out.expect_one_error_line("no-such-command-minibox")?;
    ensure(out.stdout.is_empty(), || {
        Fail::new("nothing should reach stdout").seen(out.stdout_text())
    })?;
    // A path that doesn't exist: execve's ENOENT is "not found" too.
    let out = ctx
        .minibox(&["run", "--", "/no/such/dir/program"])
        .output()?;
    out.expect_code(
        127,
        "a path to nothing is exit code 127 (execve said ENOENT)",
    )?;
    out.expect_one_error_line("/no/such/dir/program")?;
    // The command is looked up on *its* PATH, not the runtime's.
    let out = ctx
        .minibox(&["run", "-e", "PATH=/nonexistent", "--", "true"])
        .output()?;
    out.expect_code(
        127,
        "with -e PATH=/nonexistent, `true` is on no directory of the command's PATH",
    )?;
    ctx.minibox(&["run", "--", "true"])
        .env("PATH", "/nonexistent")
        .output()?
        .expect_code(
            0,
            "the runtime's own PATH doesn't matter: `true` is on the command's default PATH",
        )
}

fn not_executable_is_126(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho should not run\n")
        .map_err(|e| Fail::new("setup").seen(e))?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Fail::new("setup").seen(e))?;
    let path = script.to_string_lossy().into_owned();
    let out = ctx.minibox(&["run", "--", &path]).output()?;
    out.expect_code(
        126,
        "a file without the x bit can't be executed: exit code 126",
    )?;
    out.expect_one_error_line("not-executable.sh")?;
    ensure(out.stdout.is_empty(), || {
        Fail::new("the script must not have run").seen(out.stdout_text())
    })
}

fn runtime_error_is_125(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let missing = dir.path().join("no-such-dir");
    let missing = missing.to_string_lossy().into_owned();
    let out = ctx
        .minibox(&["run", "-w", &missing, "--", "true"])
        .output()?;
    out.expect_code(
        125,
        "a working directory that doesn't exist is the runtime's error: 125",
    )?;
    out.expect_one_error_line("no-such-dir")?;

    let out = ctx
        .minibox(&["run", "--no-such-flag", "--", "true"])
        .output()?;
    out.expect_code(125, "an unknown flag is a runtime error: 125, as docker")?;
    out.expect_one_error_line("--no-such-flag")?;

    let out = ctx.minibox(&["run"]).output()?;
    out.expect_code(125, "`run` without a command is a runtime error: 125")?;
    out.expect_one_error_line("")
}

fn command_is_a_child_process(ctx: &Ctx) -> Outcome {
    let mut running = ctx.minibox(&["run", "--", "cat"]).spawn()?;
    let runtime = running.pid();
    let child = ctx.process_running(runtime, "cat")?;
    ensure(child != runtime, || {
        Fail::new("the command must run in a new process")
    })?;
    let runtime_exe = procfs::exe(runtime);
    let binary = ctx.binary().canonicalize().ok();
    ensure(runtime_exe == binary, || {
        Fail::new("the runtime must stay itself while the command runs (fork, then exec only in the child)")
            .expected(format!("/proc/{runtime}/exe = {:?}", binary))
            .seen(format!("/proc/{runtime}/exe = {:?}", runtime_exe))
    })?;
    let stat = procfs::stat(child).ok_or_else(|| Fail::new("the child vanished"))?;
    expect_eq(
        "the command's parent (PPid in /proc/PID/stat) should be the runtime",
        runtime,
        stat.ppid,
    )?;
    running.close_stdin();
    running
        .wait(SOON)?
        .expect_code(0, "cat exits 0 at end of input")
}

/// Start a command that traps `signal` with `exit code`, send `signal` to the
/// runtime, and expect the runtime to end with `code`.
fn forwards(ctx: &Ctx, signal: Signal, code: i32) -> Outcome {
    let name = signal.as_str().trim_start_matches("SIG");
    // First an orphan that dies at once: a runtime that blocks in waitpid
    // after reaping it would no longer see the signals it must forward.
    let script = format!(
        "(sleep 0.05 &); sleep 0.2; trap 'exit {code}' {name}; echo ready $$; while :; do sleep 0.05; done"
    );
    let mut running = ctx.minibox(&["run", "--", "sh", "-c", &script]).spawn()?;
    let line = running.read_line(SOON)?;
    let command: i32 = line
        .strip_prefix("ready ")
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(|| Fail::new("the command should print `ready PID`").seen(&line))?;
    ctx.track(command);
    running.signal(signal)?;
    let out = running.wait(SOON).map_err(|fail| Fail {
        what: format!(
            "{signal} was sent to the runtime, but {} (was it forwarded? is the wait loop stuck in a blocking waitpid?)",
            fail.what
        ),
        ..fail
    })?;
    if out.code().is_none() {
        return Err(Fail::new(format!(
            "the runtime died of {signal} itself instead of passing it to the command"
        ))
        .expected(format!("exit code {code}, from the command's trap"))
        .seen(out.summary()));
    }
    if out.code() != Some(code) && procfs::stat(command).is_none() {
        return Err(Fail::new(format!(
            "the command got {signal} and its trap exited {code}, but the runtime reported another exit code"
        ))
        .expected(format!("exit code {code}"))
        .seen(out.summary()));
    }
    out.expect_code(
        code,
        &format!("{signal} sent to the runtime should reach the command, whose trap exits {code}"),
    )
}

fn sigterm_reaches_the_command(ctx: &Ctx) -> Outcome {
    forwards(ctx, Signal::SIGTERM, 42)
}

fn other_signals_reach_the_command(ctx: &Ctx) -> Outcome {
    forwards(ctx, Signal::SIGINT, 43)?;
    forwards(ctx, Signal::SIGHUP, 44)?;
    forwards(ctx, Signal::SIGQUIT, 45)?;
    forwards(ctx, Signal::SIGUSR1, 46)?;
    forwards(ctx, Signal::SIGUSR2, 47)
}

fn signals_start_clean(ctx: &Ctx) -> Outcome {
    // Start the runtime as `nohup` would, with SIGHUP ignored; Rust programs
    // (the runtime) also ignore SIGPIPE. The command must have neither.
    let mut running = ctx
        .minibox(&["run", "--", "cat"])
        .ignore_signal(Signal::SIGHUP)
        .spawn()?;
    let child = ctx.process_running(running.pid(), "cat")?;
    let status = std::fs::read_to_string(format!("/proc/{child}/status"))
        .map_err(|e| Fail::new("cannot read the command's /proc/PID/status").seen(e))?;
    for (field, what) in [
        (
            "SigBlk",
            "blocked (the runtime's sigprocmask must be undone in the child)",
        ),
        (
            "SigIgn",
            "ignored (SIG_IGN survives execve: reset every signal to SIG_DFL in the child)",
        ),
    ] {
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(str::trim)
            .unwrap_or("?");
        ensure(mask.chars().all(|c| c == '0'), || {
            Fail::new(format!("the command should start with no signal {what}"))
                .expected(format!("{field}: 0000000000000000 in /proc/PID/status"))
                .seen(format!("{field}: {mask} ({})", signal_names(mask)))
        })?;
    }
    running.close_stdin();
    running
        .wait(SOON)?
        .expect_code(0, "cat exits 0 at end of input")
}

/// The names of the signals in a `/proc/PID/status` mask (hex, bit N-1 = signal N).
fn signal_names(mask: &str) -> String {
    let Ok(bits) = u64::from_str_radix(mask, 16) else {
        return "unreadable".into();
    };
    (1..=64)
        .filter(|n| bits & (1 << (n - 1)) != 0)
        .map(|n| Signal::try_from(n).map_or(n.to_string(), |s| s.as_str().to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_and_workdir_take_effect(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let workdir = dir
        .path()
        .canonicalize()
        .map_err(|e| Fail::new("setup").seen(e))?;
    let workdir_arg = workdir.to_string_lossy().into_owned();
    let mut running = ctx
        .minibox(&[
            "run",
            "-e",
            "GREETING=hello world",
            "-e",
            "FROM_HOST",
            "-e",
            "NOT_SET_ANYWHERE",
            "-e",
            "HOME=/home/learner",
            "-w",
            &workdir_arg,
            "--",
            "cat",
        ])
        .env("FROM_HOST", "copied")
        .env("SECRET_OF_THE_HOST", "must not leak")
        .env_remove_for_test("NOT_SET_ANYWHERE")
        .spawn()?;
    let runtime = running.pid();
    let child = ctx.process_running(runtime, "cat")?;
    let environ = procfs::environ(child)
        .ok_or_else(|| Fail::new("cannot read the command's /proc/PID/environ"))?;
    let shown = shorten(&environ);
    let count = |key: &str| {
        environ
            .iter()
            .filter(|v| v.starts_with(&format!("{key}=")))
            .count()
    };
    let has = |var: &str| environ.iter().any(|v| v == var);
    for (var, why) in [
        ("GREETING=hello world", "-e KEY=VALUE sets KEY"),
        (
            "FROM_HOST=copied",
            "-e KEY copies KEY from the runtime's environment",
        ),
        (
            "HOME=/home/learner",
            "-e HOME=... replaces the default HOME",
        ),
        (
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "the command gets docker's default PATH when none is given",
        ),
    ] {
        ensure(has(var), || {
            Fail::new(format!(
                "{why}: the command's environment (/proc/PID/environ) should hold {var}"
            ))
            .seen(&shown)
        })?;
    }
    ensure(count("HOME") == 1, || {
        Fail::new("-e HOME=... replaces HOME: the environment should hold one HOME, not two")
            .seen(&shown)
    })?;
    for (key, why) in [
        (
            "SECRET_OF_THE_HOST",
            "the runtime's own environment must not leak into the command",
        ),
        (
            "NOT_SET_ANYWHERE",
            "-e KEY for a KEY the runtime doesn't have leaves it unset",
        ),
    ] {
        ensure(count(key) == 0, || Fail::new(why).seen(&shown))?;
    }
    expect_eq(
        "-w DIR should be the command's working directory (/proc/PID/cwd)",
        Some(workdir),
        procfs::cwd(child),
    )?;
    let own = std::env::current_dir().ok();
    expect_eq(
        "the runtime's own working directory should not move (chdir in the child, not the parent)",
        own,
        procfs::cwd(runtime),
    )?;
    running.close_stdin();
    running
        .wait(SOON)?
        .expect_code(0, "cat exits 0 at end of input")
}

/// An environment for a message: at most a dozen lines.
fn shorten(environ: &[String]) -> String {
    let mut shown: Vec<String> = environ.iter().take(12).cloned().collect();
    if environ.len() > 12 {
        shown.push(format!("... and {} more", environ.len() - 12));
    }
    shown.join("\n")
}

fn orphans_are_adopted_and_reaped(ctx: &Ctx) -> Outcome {
    orphans(ctx, 1)
}

fn orphans_dying_together_are_all_reaped(ctx: &Ctx) -> Outcome {
    orphans(ctx, 40)
}

/// The command leaves `count` sleeping orphans and runs on. They must be
/// adopted by the runtime; the grader then kills them all at once, and every
/// one must be reaped, although their SIGCHLDs arrive as one.
fn orphans(ctx: &Ctx, count: usize) -> Outcome {
    // The subshell starts the sleeps in the background, prints their pids
    // and exits at once: they are orphans, while the command (cat) runs on.
    let script = format!(
        "(i=0; while [ $i -lt {count} ]; do sleep 1000 & echo $!; i=$((i+1)); done); exec cat"
    );
    let mut running = ctx.minibox(&["run", "--", "sh", "-c", &script]).spawn()?;
    let runtime = running.pid();
    let mut orphans = Vec::new();
    for _ in 0..count {
        let line = running.read_line(SOON)?;
        let pid: i32 = line
            .trim()
            .parse()
            .map_err(|_| Fail::new("the command should print the orphans' pids").seen(&line))?;
        ctx.track(pid);
        orphans.push(pid);
    }
    let adopted = poll(SOON, || {
        orphans
            .iter()
            .all(|&pid| procfs::stat(pid).is_some_and(|s| s.ppid == runtime))
            .then_some(())
    });
    ensure(adopted.is_some(), || {
        let stray = orphans
            .iter()
            .find_map(|&pid| procfs::stat(pid).filter(|s| s.ppid != runtime))
            .map(|s| format!("pid {} has parent {}", s.pid, procfs::describe(s.ppid)))
            .unwrap_or_else(|| "an orphan is gone".into());
        let runtime_state = running
            .ended()
            .unwrap_or_else(|| "it is still running".into());
        Fail::new("orphans of the command should be adopted by the runtime (a child subreaper), not by the host's init")
            .expected(format!("every orphan's parent (PPid in /proc/PID/stat) is {runtime}, the runtime"))
            .seen(format!("{stray}; the runtime: {runtime_state}"))
    })?;
    // End them (they are ours), all at once: their SIGCHLDs coalesce.
    let left = kill_and_wait_reaped(&orphans, SOON);
    ensure(left.is_empty(), || {
        let zombies = left
            .iter()
            .filter(|s| s.state == 'Z' && s.ppid == runtime)
            .count();
        let what = match running.ended() {
            Some(ended) => format!("the runtime ended before reaping them ({ended})"),
            None if count > 1 => format!(
                "{zombies} of {count} dead orphans are zombies (state Z) of the runtime: one SIGCHLD can stand for many dead children"
            ),
            None => format!("pid {} is a zombie (state Z) of the runtime", orphans[0]),
        };
        Fail::new(format!(
            "dead orphans should be reaped (waited for) by the runtime, not left zombies: {what}"
        ))
        .expected(format!(
            "all {count} gone from /proc within {} s of being killed",
            SOON.as_secs()
        ))
        .seen(format!("{} still in /proc", left.len()))
    })?;
    running.close_stdin();
    running
        .wait(SOON)?
        .expect_code(0, "cat exits 0 at end of input")
}
