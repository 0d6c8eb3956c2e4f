//! Containers with a life of their own, in the finished runtime: `run -d`
//! and its monitor, `stop`, `logs`, `rm`, names, `-it` on a terminal.
//!
//! Step 04 gives the learner this code (the monitor, the records, the pty
//! relay): these tests hold the reference to it, outside the step's score.
//! They run with the reliability tests, one lab and one store each.
//!
//! `run` joins the default bridge in the finished runtime; these tests are
//! about a container's life, not its network: `--network none`.

use grader::{ensure, expect_eq, Ctx, Fail, Lab, Outcome};
use std::time::Duration;

/// `run --network none ARGS...`, which must exit 0; returns its stdout.
fn run(lab: &Lab, args: &[&str]) -> Result<String, Fail> {
    let mut full = vec!["run", "--network", "none"];
    full.extend_from_slice(args);
    let out = lab.minibox(&full).output()?;
    out.expect_code(0, "the container's command should succeed")?;
    Ok(out.stdout_text())
}

/// `run -d --network none ARGS...`; the id it printed.
fn detached(lab: &Lab, args: &[&str]) -> Result<String, Fail> {
    let mut full = vec!["--network", "none"];
    full.extend_from_slice(args);
    lab.run_detached(&full)
}

pub fn detached_containers_keep_running(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    run(&lab, &["--rm", "base", "true"])?; // the base image, made once
    let started = std::time::Instant::now();
    let id = detached(&lab, &["--name", "sleeper", "base", "sleep", "1000"])?;
    let _cleanup = lab.removed(&id);
    let took = started.elapsed();
    // The command sleeps 1000 s: a `run -d` back within 10 s did not wait
    // for it (a bound for a loaded machine, not a speed test).
    ensure(took < Duration::from_secs(10), || {
        Fail::new("run -d should return at once, the container still running")
            .seen(format!("{took:?}"))
    })?;
    let ps = lab.minibox(&["ps"]).output()?;
    ps.expect_code(0, "ps should work")?;
    let listed = ps.stdout_text();
    ensure(
        listed.contains(&id[..12]) && listed.contains("sleeper"),
        || Fail::new("ps should list the running container (short id and name)").seen(&listed),
    )?;
    expect_eq(
        "inspect: State.Status",
        serde_json::json!("running"),
        lab.field("sleeper", "State.Status")?,
    )?;
    let pid = lab.field("sleeper", "State.Pid")?.as_i64().unwrap_or(0) as i32;
    ctx.track(pid);
    let me = std::process::id() as i32;
    let theirs = grader::procfs::namespace(pid, "pid");
    ensure(
        theirs.is_some() && theirs != grader::procfs::namespace(me, "pid"),
        || {
            Fail::new("State.Pid should be a live process in a PID namespace of its own (the kernel's /proc/PID/ns/pid)")
            .seen(format!("pid {pid}: {theirs:?}"))
        },
    )?;
    expect_eq(
        "State.Pid is the container's init: pid 1 in its namespace (NSpid in /proc/PID/status)",
        Some(1),
        grader::procfs::nspid(pid).and_then(|ids| ids.last().copied()),
    )?;
    expect_eq(
        "inspect: Config.Hostname is the short id (docker's default)",
        serde_json::json!(&id[..12]),
        lab.field("sleeper", "Config.Hostname")?,
    )
}

pub fn stop_then_kill(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let stubborn = detached(
        &lab,
        &[
            "--name",
            "stubborn",
            "base",
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    )?;
    let _a = lab.removed(&stubborn);
    let polite = detached(
        &lab,
        &[
            "--name",
            "polite",
            "base",
            "sh",
            "-c",
            "trap 'exit 42' TERM; while true; do sleep 0.1; done",
        ],
    )?;
    let _b = lab.removed(&polite);
    let started = std::time::Instant::now();
    let out = lab.minibox(&["stop", "-t", "1", "stubborn"]).output()?;
    out.expect_code(0, "stop should stop the container")?;
    let took = started.elapsed();
    ensure(
        // At least the second of -t 1; well before the container would
        // end by itself (never): SIGKILL came.
        took >= Duration::from_millis(900) && took < Duration::from_secs(20),
        || {
            Fail::new("stop -t 1 on a container that ignores SIGTERM: SIGKILL after about a second")
                .seen(format!("stop took {took:?}"))
        },
    )?;
    expect_eq(
        "ignored SIGTERM: status",
        serde_json::json!("exited"),
        lab.field("stubborn", "State.Status")?,
    )?;
    expect_eq(
        "ignored SIGTERM, then SIGKILL: exit code 128 + 9",
        serde_json::json!(137),
        lab.field("stubborn", "State.ExitCode")?,
    )?;
    let out = lab.minibox(&["stop", "-t", "5", "polite"]).output()?;
    out.expect_code(0, "stop should stop the container")?;
    expect_eq(
        "a command that handles SIGTERM: its own exit code",
        serde_json::json!(42),
        lab.field("polite", "State.ExitCode")?,
    )
}

pub fn logs_keep_what_was_printed(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let id = detached(
        &lab,
        &[
            "--name",
            "talker",
            "base",
            "sh",
            "-c",
            "echo one; echo two >&2; echo three; echo four >&2",
        ],
    )?;
    let _cleanup = lab.removed(&id);
    lab.wait_status("talker", "exited")?;
    let out = lab.minibox(&["logs", "talker"]).output()?;
    out.expect_code(0, "logs should work")?;
    expect_eq(
        "logs: stdout and stderr, in the order printed",
        "one\ntwo\nthree\nfour\n",
        out.stdout_text().as_str(),
    )
}

pub fn rm_leaves_nothing(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let id = detached(
        &lab,
        &[
            "--name",
            "doomed",
            "base",
            "sh",
            "-c",
            "echo data > /written; sleep 1000",
        ],
    )?;
    let pid = lab.field("doomed", "State.Pid")?.as_i64().unwrap_or(0) as i32;
    ctx.track(pid);
    ensure(lab.container_dirs().contains(&id), || {
        Fail::new("a running container has a dir under containers/, named by its id")
            .seen(lab.container_dirs().join(", "))
    })?;
    let out = lab.minibox(&["rm", "-f", "doomed"]).output()?;
    out.expect_code(0, "rm -f should remove a running container")?;
    ensure(lab.container_dirs().is_empty(), || {
        Fail::new("after rm, nothing of the container is left under containers/ (record, log, writable layer)")
            .seen(lab.container_dirs().join(", "))
    })?;
    let gone = grader::poll(Duration::from_secs(5), || {
        grader::procfs::stat(pid).is_none().then_some(())
    });
    ensure(gone.is_some(), || {
        Fail::new("after rm -f, the container's init is gone").seen(pid)
    })?;
    let mounted: Vec<String> = grader::procfs::mountinfo(std::process::id() as i32)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.contains(&id))
        .collect();
    ensure(mounted.is_empty(), || {
        Fail::new("no mount of the container may remain").seen(mounted.join(", "))
    })?;
    run(&lab, &["--rm", "base", "true"])?;
    ensure(lab.container_dirs().is_empty(), || {
        Fail::new("run --rm: the container is removed when it exits")
            .seen(lab.container_dirs().join(", "))
    })
}

pub fn names_are_unique(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    run(&lab, &["--rm", "base", "true"])?; // the base image, made once
    let args = [
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "twin",
        "base",
        "sleep",
        "1000",
    ];
    let first = lab.minibox(&args).spawn()?;
    let second = lab.minibox(&args).spawn()?;
    let outs = [
        first.wait(grader::process::TIMEOUT)?,
        second.wait(grader::process::TIMEOUT)?,
    ];
    let _cleanup = lab.removed("twin");
    let won: Vec<&grader::Output> = outs.iter().filter(|o| o.code() == Some(0)).collect();
    let lost: Vec<&grader::Output> = outs.iter().filter(|o| o.code() != Some(0)).collect();
    expect_eq(
        "of two parallel `run -d --name twin`, exactly one starts",
        1,
        won.len(),
    )?;
    lost[0].expect_code(125, "the other fails: the name is taken")?;
    lost[0].expect_one_error_line("already in use")?;
    let listed = lab.minibox(&["ps", "-a"]).output()?.stdout_text();
    expect_eq(
        "ps -a lists one container named twin",
        1,
        listed.lines().filter(|l| l.ends_with(" twin")).count(),
    )
}

/// The grader's side of a terminal: what the pty master has shown so far,
/// and how much of it the conversation has read. Every step waits for a
/// state of the screen (a prompt, the echo of a line, a command's output),
/// never for a time: on a loaded machine the shell may take seconds.
struct Screen {
    master: std::fs::File,
    shown: Vec<u8>,
    /// Where the unread part of `shown` begins.
    read: usize,
}

/// The upper bound of each wait (only reached when something is wrong).
const TERMINAL_WAIT: Duration = Duration::from_secs(30);

impl Screen {
    /// Wait until `wanted` appears after what was read; return the text
    /// before it and read past it.
    fn wait_for(&mut self, wanted: &str, what: &str) -> Result<String, Fail> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::io::Read;
        use std::os::fd::AsFd;
        let deadline = std::time::Instant::now() + TERMINAL_WAIT;
        loop {
            let unread = &self.shown[self.read..];
            if let Some(at) = unread
                .windows(wanted.len())
                .position(|w| w == wanted.as_bytes())
            {
                let before = String::from_utf8_lossy(&unread[..at]).into_owned();
                self.read += at + wanted.len();
                return Ok(before);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let gone = || {
                Fail::new(what.to_string())
                    .expected(format!("{wanted:?} on the terminal"))
                    .seen(format!(
                        "{:?}",
                        String::from_utf8_lossy(&self.shown[self.read..])
                    ))
            };
            if left.is_zero() {
                return Err(gone());
            }
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) == 0 {
                continue;
            }
            let mut chunk = [0u8; 4096];
            match (&self.master).read(&mut chunk) {
                // EIO: the last holder of the slave side has gone.
                Ok(0) | Err(_) => return Err(gone()),
                Ok(n) => self.shown.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn press(&mut self, bytes: &[u8]) -> Outcome {
        use std::io::Write;
        self.master
            .write_all(bytes)
            .map_err(|e| Fail::new("the grader could not write to its pty").seen(e))
    }

    /// Type `line` and Enter, and wait for the terminal's echo of it: what
    /// comes after is the command's own.
    fn type_line(&mut self, line: &str) -> Outcome {
        self.press(format!("{line}\r").as_bytes())?;
        self.wait_for(
            &format!("{line}\r\n"),
            &format!("`{line}` typed at the prompt should be echoed (the terminal's ECHO)"),
        )?;
        Ok(())
    }

    /// Type `command` at the prompt; what it prints before the next prompt.
    fn command(&mut self, command: &str) -> Result<String, Fail> {
        self.type_line(command)?;
        self.wait_for(
            PROMPT,
            &format!("after `{command}`, the shell's prompt should come back"),
        )
    }
}

/// The end of a root shell's prompt (`# `, or busybox's `/ # `).
const PROMPT: &str = "# ";

/// A command's output, as lines without the terminal's `\r`.
fn lines(text: &str) -> Vec<&str> {
    text.split('\n').map(|l| l.trim_end_matches('\r')).collect()
}

pub fn an_interactive_terminal(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    run(&lab, &["--rm", "base", "true"])?; // the base image, made once
    let pty = nix::pty::openpty(None, None)
        .map_err(|e| Fail::new("the grader could not open a pty").seen(e))?;
    let mut command = lab
        .minibox(&[
            "run",
            "--network",
            "none",
            "-it",
            "--rm",
            "--name",
            "shell",
            "base",
            "sh",
        ])
        .into_command();
    let slave = std::fs::File::from(pty.slave);
    let clone = |f: &std::fs::File| f.try_clone().map_err(|e| Fail::new("setup: dup").seen(e));
    command
        .stdin(clone(&slave)?)
        .stdout(clone(&slave)?)
        .stderr(clone(&slave)?);
    let mut child = command
        .spawn()
        .map_err(|e| Fail::new("could not start the runtime").seen(e))?;
    ctx.track(child.id() as i32);
    drop(slave);
    let mut screen = Screen {
        master: std::fs::File::from(pty.master),
        shown: Vec::new(),
        read: 0,
    };
    let result = (|| -> Outcome {
        // Nothing is typed before the shell asks: what a terminal receives
        // before the shell reads is echoed and edited differently.
        screen.wait_for(
            PROMPT,
            "run -it base sh: the shell's prompt should appear on the terminal",
        )?;
        let answer = screen.command("echo $((6 * 7))")?;
        ensure(lines(&answer).contains(&"42"), || {
            Fail::new("a command typed on the terminal runs in the container")
                .expected("the line 42 (the echo of the typed line is not counted)")
                .seen(format!("{answer:?}"))
        })?;
        // `sl''ept`: the shell prints `slept`, the echo of the typed line
        // shows the quotes: one can't be taken for the other.
        screen.type_line("sleep 100; echo sl''ept")?;
        // The Ctrl-C must come while the sleep runs (a process of that
        // name below the runtime), or it would go to the shell.
        let runtime = child.id() as i32;
        let sleeping = grader::poll(TERMINAL_WAIT, || {
            grader::procfs::descendants(runtime)
                .iter()
                .any(|p| p.comm == "sleep")
                .then_some(())
        });
        ensure(sleeping.is_some(), || {
            Fail::new("`sleep 100` typed on the terminal should run in the container")
        })?;
        screen.press(b"\x03")?;
        let interrupted = screen.wait_for(
            PROMPT,
            "Ctrl-C (0x03) interrupts the sleep, and the shell prompts again",
        )?;
        ensure(!lines(&interrupted).contains(&"slept"), || {
            Fail::new("Ctrl-C (0x03) interrupts the whole line: `echo sl''ept` after the sleep must not run")
                .seen(format!("{interrupted:?}"))
        })?;
        let after = screen.command("echo still-$((1 + 1))")?;
        ensure(lines(&after).contains(&"still-2"), || {
            Fail::new("after Ctrl-C, the shell (and the container) keep running")
                .expected("the line still-2")
                .seen(format!("{after:?}"))
        })?;
        screen.press(b"exit 3\r")?;
        let ended = grader::poll(TERMINAL_WAIT, || child.try_wait().ok().flatten());
        let code = ended.and_then(|s| s.code());
        expect_eq(
            "`exit 3` in the shell ends the container and the runtime with code 3",
            Some(3),
            code,
        )
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

pub fn it_needs_a_terminal(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    run(&lab, &["--rm", "base", "true"])?; // the base image, made once
    let _cleanup = lab.removed("no-tty");
    // stdin a pipe: not a terminal.
    let out = lab
        .minibox(&[
            "run",
            "--network",
            "none",
            "-it",
            "--name",
            "no-tty",
            "base",
            "sh",
            "-c",
            "echo ran",
        ])
        .stdin(b"echo typed\n")
        .output()?;
    out.expect_code(
        125,
        "run -it with stdin a pipe, not a terminal: a runtime error",
    )?;
    out.expect_one_error_line("the input device is not a TTY")?;
    expect_eq(
        "run -it without a terminal: docker's one line",
        "minibox: the input device is not a TTY",
        out.stderr.trim_end(),
    )?;
    ensure(out.stdout.is_empty(), || {
        Fail::new("run -it without a terminal must not run the command").seen(out.stdout_text())
    })?;
    let listed = lab.minibox(&["ps", "-a"]).output()?.stdout_text();
    ensure(
        listed.lines().nth(1).is_none() && lab.container_dirs().is_empty(),
        || {
            Fail::new(
                "run -it without a terminal fails before the container is made: `ps -a` lists none",
            )
            .seen(listed.trim_end())
        },
    )?;
    expect_eq(
        "-i alone (no -t) is for pipes: `run -i --rm base cat` copies its stdin",
        "piped\n",
        lab.minibox(&["run", "--network", "none", "-i", "--rm", "base", "cat"])
            .stdin(b"piped\n")
            .output()?
            .stdout_text()
            .as_str(),
    )
}

pub fn a_dead_monitor_is_noticed(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let id = detached(&lab, &["--name", "orphan", "base", "sleep", "1000"])?;
    let _cleanup = lab.removed(&id);
    let monitor = lab.field("orphan", "Monitor.Pid")?.as_i64().unwrap_or(0) as i32;
    let init = lab.field("orphan", "State.Pid")?.as_i64().unwrap_or(0) as i32;
    ctx.track(init);
    ensure(
        monitor > 0 && grader::procfs::stat(monitor).is_some(),
        || {
            Fail::new("inspect should name the container's monitor (Monitor.Pid), a live process")
                .seen(monitor)
        },
    )?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| Fail::new("the grader could not kill the monitor").seen(e))?;
    let gone = grader::poll(Duration::from_secs(5), || {
        grader::procfs::stat(init)
            .is_none_or(|s| s.state == 'Z')
            .then_some(())
    });
    ensure(gone.is_some(), || {
        Fail::new("the container's init dies with its monitor (PR_SET_PDEATHSIG)").seen(init)
    })?;
    let all = lab.minibox(&["ps", "-a"]).output()?.stdout_text();
    let line = all
        .lines()
        .find(|l| l.contains(&id[..12]))
        .unwrap_or("(not listed)")
        .to_string();
    ensure(line.contains("Exited"), || {
        Fail::new("ps -a shows a container whose monitor died as exited, not running").seen(&line)
    })?;
    let running = lab.minibox(&["ps"]).output()?.stdout_text();
    ensure(!running.contains(&id[..12]), || {
        Fail::new("ps (running ones) must not list it").seen(&running)
    })?;
    let out = lab.minibox(&["rm", "orphan"]).output()?;
    out.expect_code(0, "rm cleans a container whose monitor died")?;
    ensure(lab.container_dirs().is_empty(), || {
        Fail::new("after rm, nothing of it is left").seen(lab.container_dirs().join(", "))
    })
}

pub fn bad_container_input_is_one_line(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let id = detached(&lab, &["--name", "busy", "base", "sleep", "1000"])?;
    let _cleanup = lab.removed(&id);
    run(&lab, &["--name", "done", "base", "true"])?;
    // Containers until two ids share their first digit: an ambiguous prefix.
    let mut ids = vec![id.clone()];
    let mut prefix = None;
    for n in 0..17 {
        let name = format!("filler{n}");
        run(&lab, &["--name", &name, "base", "true"])?;
        ids.push(
            lab.field(&name, "Id")?
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        let firsts: Vec<char> = ids.iter().filter_map(|i| i.chars().next()).collect();
        if let Some(c) = firsts
            .iter()
            .find(|c| firsts.iter().filter(|d| d == c).count() > 1)
        {
            prefix = Some(c.to_string());
            break;
        }
    }
    let prefix =
        prefix.ok_or_else(|| Fail::new("the grader could not make two ids with one prefix"))?;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", "no-such-container"], "no-such-container"),
        (vec!["stop", "no-such-container"], "no-such-container"),
        (vec!["logs", "no-such-container"], "no-such-container"),
        (vec!["inspect", &prefix], "ambiguous"),
        (vec!["exec", "done", "true"], "not running"),
        (vec!["rm", "busy"], "running"),
    ];
    for (args, mentions) in cases {
        let out = lab.minibox(&args).output()?;
        out.expect_code(125, "bad input is a runtime error (125)")?;
        out.expect_one_error_line(mentions)?;
    }
    expect_eq(
        "rm without -f left the running container alone",
        serde_json::json!("running"),
        lab.field("busy", "State.Status")?,
    )
}

/// `run -d` whose monitor panics before the container starts (as a
/// `todo!()` of a later step would; here `MINIBOX_FAULT=panic:run:running`,
/// debug builds only): one error line that quotes the panic, so the grader
/// can say "not written yet", and no half-made container left.
pub fn a_monitor_that_panics_says_why(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    run(&lab, &["--rm", "base", "true"])?; // the base image, made once
    let out = lab
        .minibox(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "doomed",
            "base",
            "sleep",
            "1000",
        ])
        .env("MINIBOX_FAULT", "panic:run:running")
        .output()?;
    let _cleanup = lab.removed("doomed");
    out.expect_code(125, "run -d whose monitor panicked is a runtime error")?;
    out.expect_one_error_line("fault injected at run:running")?;
    let panic = grader::todo::find_panic(&out.stderr);
    ensure(
        panic
            .as_ref()
            .is_some_and(|p| p.message == "fault injected at run:running"),
        || {
            Fail::new("the error line quotes the panic with its place (panicked at FILE:LINE:COL: MESSAGE)")
                .seen(&out.stderr)
        },
    )?;
    let all = lab.minibox(&["ps", "-a"]).output()?.stdout_text();
    ensure(!all.contains("doomed"), || {
        Fail::new("the half-made container is removed, not left `created`").seen(&all)
    })?;
    ensure(lab.container_dirs().is_empty(), || {
        Fail::new("nothing of it is left under containers/").seen(lab.container_dirs().join(", "))
    })
}
