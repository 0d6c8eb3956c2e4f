//! `run`: a container with a life of its own, watched by a monitor.
//!
//! Whoever waits for a container's init holds its exit status: only a
//! parent can `waitpid(2)` a child. docker's daemon (through containerd's
//! shim) is that parent; minibox has no daemon, so each container gets its
//! own small parent, the **monitor**: the runtime process that clones it.
//!
//! - `run` (attached): the runtime itself is the monitor. It writes the
//!   record ("running", the pid), waits, writes the exit code.
//! - `run -d`: the runtime forks first. The child calls `setsid(2)` (no
//!   terminal, so no SIGHUP when yours closes), points stdout and stderr at
//!   the container's log file, and becomes the monitor; the parent waits only
//!   until the container's command runs, prints the id and exits. The
//!   monitor lives as long as the container.
//!
//! The container's init is tied to its monitor (PR_SET_PDEATHSIG): kill the
//! monitor and the container goes too; its record, left "running", is shown
//! as exited (see [`crate::state`]).

use crate::container::{self, Container};
use crate::image::ImageConfig;
use crate::pipes;
use crate::state::{self, Containers, Record};
use crate::store::Store;
use crate::tty::{self, Stdio};
use anyhow::{bail, Context};
use nix::unistd::{fork, ForkResult, Pid};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

/// `run`'s own flags (the rest are step 02's and step 03's).
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub detach: bool,
    pub name: Option<String>,
    pub auto_remove: bool,
    pub interactive: bool,
    pub tty: bool,
}

/// What is being run.
pub struct Plan<'a> {
    pub store: &'a Store,
    pub image_name: &'a str,
    pub image_id: &'a str,
    pub image: &'a ImageConfig,
    pub spec: step02::ContainerSpec,
    pub read_only: bool,
    pub network_mode: &'a str,
    /// `--hostname` was given; else the host name is the short id, as docker's.
    pub hostname_given: bool,
    /// Holds the image's layers until the container's record names it.
    pub pin: Option<crate::store::Pin>,
    /// What a later step attaches (step 05: the network).
    pub attach: &'a mut dyn container::Attach,
}

// ANCHOR: run
/// Create the container, run it (attached or detached); return the exit
/// code for the runtime.
pub fn run(mut plan: Plan, options: &Lifecycle) -> anyhow::Result<i32> {
    let containers = Containers::new(plan.store);
    let id = container::random_id()?;
    if !plan.hostname_given {
        plan.spec.hostname = state::short(&id).to_string();
    }
    let name = match &options.name {
        Some(name) => {
            state::validate_name(name)?;
            name.clone()
        }
        None => state::random_name(&id),
    };
    // Reserve the name and make the dirs under the lock: of two `run
    // --name x` at once, exactly one finds the name free.
    let (container, mut record) = {
        let _lock = containers.lock()?;
        if let Some(owner) = containers.name_in_use(&name)? {
            bail!(
                "the container name {name:?} is already in use by container {}: remove it (rm) or choose another name",
                state::short(&owner)
            );
        }
        let mut container = Container::create_kept(plan.store, &id)?;
        container.removed_at_end = options.auto_remove;
        let record = new_record(&plan, options, &id, &name, container.dir());
        containers.save(&record)?;
        (container, record)
    };
    // From here the record names the image: rmi refuses it.
    drop(plan.pin.take());
    crate::fault::point("run:recorded");
    if let Err(error) = plan.attach.created(&id, &name, container.dir()) {
        let _ = containers.remove(&id);
        return Err(error);
    }
    crate::fault::point("run:attached");
    if options.detach {
        detached(plan, options, container, record)
    } else {
        let code = monitor(
            &mut plan,
            options,
            &container,
            &mut record,
            |_| Ok(()),
            false,
        );
        crate::fault::point("run:ended");
        plan.attach.finished(&record.id);
        finish(&containers, &mut record, &code, options.auto_remove);
        code
    }
}
// ANCHOR_END: run

fn new_record(
    plan: &Plan,
    options: &Lifecycle,
    id: &str,
    name: &str,
    dir: &std::path::Path,
) -> Record {
    let process = &plan.spec.process;
    Record {
        id: id.to_string(),
        name: format!("/{name}"),
        image: plan.image_id.to_string(),
        created: state::now(),
        path: process.command.first().cloned().unwrap_or_default(),
        args: process.command.iter().skip(1).cloned().collect(),
        state: state::State {
            status: "created".to_string(),
            ..state::State::default()
        },
        config: state::Config {
            hostname: plan.spec.hostname.clone(),
            env: process.env.clone(),
            cmd: process.command.clone(),
            image: plan.image_name.to_string(),
            working_dir: process
                .workdir
                .as_ref()
                .map_or(String::new(), |d| d.display().to_string()),
            tty: options.tty,
            open_stdin: options.interactive,
        },
        host_config: state::HostConfig {
            auto_remove: options.auto_remove,
            network_mode: plan.network_mode.to_string(),
            readonly_rootfs: plan.read_only,
        },
        log_path: state::log_path(dir).display().to_string(),
        // In the foreground the runtime is the monitor: on record from the
        // start, which spares `monitor` a second durable write (an fsync,
        // about a millisecond on a disk). A detached run's monitor is a
        // forked child, which records itself.
        monitor: if options.detach {
            state::Monitor::default()
        } else {
            let me = std::process::id() as i32;
            state::Monitor {
                pid: me,
                start_time: state::start_time(me).unwrap_or(0),
                ..state::Monitor::default()
            }
        },
        network_settings: None,
    }
}

/// Be the container's monitor: run it, keeping its record; returns its
/// exit code. `started` hears once the command runs.
fn monitor(
    plan: &mut Plan,
    options: &Lifecycle,
    container: &Container,
    record: &mut Record,
    started: impl FnOnce(&Record) -> anyhow::Result<()>,
    to_log: bool,
) -> anyhow::Result<i32> {
    let containers = Containers::new(plan.store);
    let me = std::process::id() as i32;
    if record.monitor.pid != me {
        record.monitor.pid = me;
        record.monitor.start_time = state::start_time(me).unwrap_or(0);
        // Who watches it, on record before it starts: if we die before the
        // command runs, the record is known stale rather than "created" for
        // ever.
        let _lock = containers.lock()?;
        containers.save(record)?;
    }
    // Never the caller's own fds: a terminal of the container's own with
    // -t, else pipes, copied to ours (detached: ours are the log).
    let (stdio, master, mut outside) = if options.tty {
        let (master, slave) = tty::open_pty()?;
        let raw = master.as_raw_fd();
        (Stdio::Terminal { master: raw, slave }, Some(master), None)
    } else {
        let streams = if to_log {
            pipes::Streams::Together
        } else {
            pipes::Streams::Apart
        };
        let (inside, outside) = pipes::pipes(options.interactive && !to_log, streams)?;
        (Stdio::Pipes(inside), None, Some(outside))
    };
    let _raw = (options.tty && !to_log).then(tty::RawMode::enter);
    let mut relay = None;
    let mut copying = None;
    let mut master = master;
    let spec = plan.spec.clone();
    let code = container::run_in(
        container,
        plan.store,
        plan.image,
        spec,
        plan.read_only,
        &stdio,
        plan.attach,
        |pid: Pid, settings| {
            record.network_settings = settings;
            record.state = state::State {
                status: "running".to_string(),
                running: true,
                pid: pid.as_raw(),
                started_at: state::now(),
                ..state::State::default()
            };
            record.monitor.init_start_time = state::start_time(pid.as_raw()).unwrap_or(0);
            {
                let _lock = containers.lock()?;
                containers.save(record)?;
            }
            crate::fault::point("run:running");
            // Copy the terminal's bytes, or the pipes', on a thread (the
            // runtime was single-threaded until the clone).
            if let Some(master) = master.take() {
                let out: Box<dyn Write + Send> = Box::new(std::io::stdout());
                relay = Some(tty::relay(master, options.interactive && !to_log, out));
            }
            if let Some(outside) = outside.take() {
                copying = Some(outside.relay(pipes::Sink::stdio())?);
            }
            started(record)
        },
    );
    // Our copy of the slave (and of the container's pipe ends) must close,
    // or the master would never hang up.
    drop(stdio);
    if let Some(relay) = relay {
        let _ = relay.join();
    }
    if let Some(copying) = copying {
        copying.finish();
    }
    code
}

/// Write the end into the record, and remove the container with `--rm`.
fn finish(containers: &Containers, record: &mut Record, code: &anyhow::Result<i32>, remove: bool) {
    let Ok(_lock) = containers.lock() else {
        return;
    };
    record.state.status = "exited".to_string();
    record.state.running = false;
    record.state.pid = 0;
    record.state.finished_at = state::now();
    match code {
        Ok(code) => record.state.exit_code = *code,
        Err(error) => {
            record.state.exit_code = error
                .downcast_ref::<step01::status::Failure>()
                .map_or(step01::status::RUNTIME_ERROR, |f| f.code);
            record.state.error = format!("{error:#}");
        }
    }
    if remove {
        let _ = containers.remove(&record.id);
    } else if containers.load(&record.id).ok().flatten().is_some() {
        // Still there (not removed by `rm -f` meanwhile): record the end.
        let _ = containers.save(record);
    }
}

/// `run -d`: fork a monitor; return once the command runs (or failed).
fn detached(
    mut plan: Plan,
    options: &Lifecycle,
    container: Container,
    mut record: Record,
) -> anyhow::Result<i32> {
    let containers = Containers::new(plan.store);
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    std::io::stdout().flush()?;
    // fork(2): the runtime is single-threaded here, so the child may do
    // anything the parent could.
    // SAFETY: no other thread exists, nothing is locked across the fork.
    match unsafe { fork() }.context("cannot start the container's monitor (fork)")? {
        ForkResult::Child => {
            drop(read_end);
            let code = be_monitor(&mut plan, options, &container, &mut record, write_end);
            plan.attach.finished(&record.id);
            finish(&containers, &mut record, &code, options.auto_remove);
            // _exit(2): no destructors of the parent's state, no atexit.
            unsafe { nix::libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            // One read(2): the monitor says "ok" or "CODE why" in one write.
            // Not to end-of-file: the container's init holds a copy of the
            // write end for as long as it lives.
            let mut buffer = [0u8; 4096];
            let n = std::fs::File::from(read_end).read(&mut buffer).unwrap_or(0);
            let said = String::from_utf8_lossy(&buffer[..n]).into_owned();
            match said.strip_prefix("ok") {
                Some(_) => {
                    println!("{}", record.id);
                    Ok(0)
                }
                None => {
                    let why = said.trim();
                    if why.is_empty() {
                        return Err(monitor_died(child, &containers, &record, plan.attach));
                    }
                    let code = why
                        .split_once(' ')
                        .and_then(|(c, _)| c.parse::<i32>().ok())
                        .unwrap_or(step01::status::RUNTIME_ERROR);
                    let message = why.split_once(' ').map_or(why, |(_, m)| m);
                    Err(step01::status::Failure::new(code, message.to_string()).into())
                }
            }
        }
    }
}

/// `run -d`'s monitor ended without a word, before the container started:
/// it panicked (a part of a later step not written yet, say: its stderr is the
/// container's log) or was killed. Say why in the one error line, and
/// remove the container it left half-made ("created" for ever otherwise).
fn monitor_died(
    monitor: Pid,
    containers: &Containers,
    record: &Record,
    attach: &mut dyn container::Attach,
) -> anyhow::Error {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    // Its end of the pipe is closed: it has exited, or is exiting. Reap
    // it, waiting a little at most.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let status = loop {
        match waitpid(monitor, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other,
        }
    };
    let mut why = "the monitor ended before the container started".to_string();
    if let Some(words) = last_words(std::path::Path::new(&record.log_path)) {
        why = format!("{why}: {words}");
    } else if let Ok(WaitStatus::Signaled(_, signal, _)) = status {
        why = format!("{why}: killed by {signal}");
    }
    attach.finished(&record.id);
    if let Ok(_lock) = containers.lock() {
        let _ = containers.remove(&record.id);
    }
    step01::status::Failure::new(step01::status::RUNTIME_ERROR, why).into()
}

/// What a dead monitor last wrote to the container's log, in one line: a
/// panic as `panicked at FILE:LINE:COL: MESSAGE` (Rust writes it on two
/// lines), else the last line that is not Rust's backtrace note.
fn last_words(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    // `thread 'main' panicked at src/x.rs:3:5:`, or since Rust 1.88
    // `thread 'main' (4242) panicked at ...`; the message on the next line.
    const MARK: &str = " panicked at ";
    if let Some(at) = lines
        .iter()
        .rposition(|line| line.starts_with("thread '") && line.contains(MARK))
    {
        let line = lines[at];
        let place = line[line.find(MARK)? + MARK.len()..].trim_end_matches(':');
        let message = lines.get(at + 1).copied().unwrap_or("");
        return Some(format!("panicked at {place}: {message}"));
    }
    lines
        .iter()
        .rev()
        .find(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
        .map(|line| line.to_string())
}

/// The monitor's side of `run -d`.
fn be_monitor(
    plan: &mut Plan,
    options: &Lifecycle,
    container: &Container,
    record: &mut Record,
    report: OwnedFd,
) -> anyhow::Result<i32> {
    let mut report = Some(std::fs::File::from(report));
    let setup = (|| -> anyhow::Result<()> {
        // setsid(2): a session of our own, away from the user's terminal.
        nix::unistd::setsid()?;
        // The log is the monitor's file (0600), filled from the container's
        // pipes; the container never holds it (see pipes.rs).
        let log = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&record.log_path)
        }
        .context("cannot open the container's log")?;
        let null = std::fs::File::open("/dev/null")?;
        for (from, fd) in [
            (null.as_raw_fd(), 0),
            (log.as_raw_fd(), 1),
            (log.as_raw_fd(), 2),
        ] {
            // dup2(2) onto our own stdio: let go of the caller's terminal or
            // pipes (whoever waits for their end must not wait for us).
            // SAFETY: dup2 between fds we own.
            nix::errno::Errno::result(unsafe { nix::libc::dup2(from, fd) })?;
        }
        let _ = nix::sys::prctl::set_name(c"minibox-monitor");
        Ok(())
    })();
    if let Err(error) = setup {
        if let Some(mut report) = report.take() {
            let _ = report.write_all(format!("125 {error:#}").as_bytes());
        }
        return Err(error);
    }
    let code = monitor(
        plan,
        options,
        container,
        record,
        |_| {
            if let Some(mut report) = report.take() {
                report.write_all(b"ok")?;
            }
            Ok(())
        },
        true,
    );
    if let (Err(error), Some(mut report)) = (&code, report.take()) {
        let status = error
            .downcast_ref::<step01::status::Failure>()
            .map_or(step01::status::RUNTIME_ERROR, |f| f.code);
        let _ = report.write_all(format!("{status} {error:#}").as_bytes());
    }
    code
}
