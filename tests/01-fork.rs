//! Graded checks for step 01: a container is a process.
//!
//! Compiled into `lesson-01` (the learner's code) and `solution-01` (the
//! reference). Run: `cargo test -p lesson-01`; one check: add its name.
//! Each check starts the binary and asks the kernel (`/proc`) what happened.

use grader::procfs;
use grader::{
    ensure, expect_eq, kill_and_wait_reaped, poll, Check, Ctx, Fail, Needs, Outcome, Requires,
};
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);

fn main() {
    grader::main(
        grader::step!("01-fork", Needs::Linux),
        vec![
            Check {
                name: "command_is_a_child_process",
                points: 2,
                section: "fork-exec-wait",
                hint: "fork first, execve only in the child: the runtime must stay alive as the parent that waits.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: command_is_a_child_process,
            },
            Check {
                name: "output_passes_through",
                points: 2,
                section: "standard-streams-are-inherited",
                hint: "The child inherits the runtime's file descriptors 0, 1 and 2 across fork and execve; don't open, pipe or print anything of your own on them.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: output_passes_through,
            },
            Check {
                name: "stdin_passes_through",
                points: 2,
                section: "standard-streams-are-inherited",
                hint: "The command reads the runtime's stdin because fd 0 is inherited; nothing to copy by hand.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: stdin_passes_through,
            },
            Check {
                name: "exit_code_propagates",
                points: 2,
                section: "exit-statuses",
                hint: "waitpid gives a WaitStatus; WaitStatus::Exited carries the command's exit code. The runtime must exit with it.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: exit_code_propagates,
            },
            Check {
                name: "signal_death_is_128_plus_n",
                points: 2,
                section: "exit-statuses",
                hint: "A child killed by signal N ends as WaitStatus::Signaled; shells and docker report 128 + N (SIGKILL 9 -> 137).",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: signal_death_is_128_plus_n,
            },
            Check {
                name: "not_found_is_127",
                points: 1,
                section: "when-exec-fails",
                hint: "execve fails in the child; the child reports the errno through the exec report pipe and the parent exits 127 for ENOENT. Look the program up on the command's PATH (find_program), not the runtime's.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: not_found_is_127,
            },
            Check {
                name: "not_executable_is_126",
                points: 1,
                section: "when-exec-fails",
                hint: "execve of a file without the x bit fails with EACCES: report it with report.fail(Stage::Exec, errno), which the parent turns into 126.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: not_executable_is_126,
            },
            Check {
                name: "runtime_error_is_125",
                points: 1,
                section: "when-exec-fails",
                hint: "Errors of the runtime itself (bad flags, a missing -w directory) exit 125 with one line `minibox: what: why`.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: runtime_error_is_125,
            },
            Check {
                name: "env_and_workdir_take_effect",
                points: 2,
                section: "environment-and-working-directory",
                hint: "execve gets exactly the environment you pass it (cmd.envp), and the chdir happens in the child before execve.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: env_and_workdir_take_effect,
            },
            Check {
                name: "sigterm_reaches_the_command",
                points: 2,
                section: "signals",
                hint: "Block the signals before forking, collect them with sigwait in the wait loop, and kill(child, signal) for everything but SIGCHLD; never block in waitpid, or signals wait too.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: sigterm_reaches_the_command,
            },
            Check {
                name: "other_signals_reach_the_command",
                points: 2,
                section: "signals",
                hint: "Forward every signal in FORWARDED (HUP, INT, QUIT, TERM, USR1, USR2), not only SIGTERM.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: other_signals_reach_the_command,
            },
            Check {
                name: "signals_start_clean",
                points: 1,
                section: "signals",
                hint: "The child must call exec::exec_child, which resets every signal to SIG_DFL and unblocks them before execve; a mask or an ignore set in the runtime survives execve.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: signals_start_clean,
            },
            Check {
                name: "orphans_are_adopted_and_reaped",
                points: 2,
                section: "orphans-and-zombies",
                hint: "Be a child subreaper (prctl PR_SET_CHILD_SUBREAPER) and, on every SIGCHLD, waitpid(-1, WNOHANG) until nothing is left, not only for the command.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: orphans_are_adopted_and_reaped,
            },
            Check {
                name: "orphans_dying_together_are_all_reaped",
                points: 2,
                section: "orphans-and-zombies",
                hint: "Forty orphans killed at once send SIGCHLDs that coalesce into one pending signal: after each SIGCHLD, call waitpid(-1, WNOHANG) in a loop until it says StillAlive or ECHILD.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: orphans_dying_together_are_all_reaped,
            },
        ],
    );
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
