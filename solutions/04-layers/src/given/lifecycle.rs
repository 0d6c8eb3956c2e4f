//! `ps`, `inspect`, `logs`, `stop`, `kill`, `rm`: a container's life, from
//! its record and the kernel.

use crate::state::{self, Containers, Record};
use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `ps [-a]`: running containers, or all of them; with `-a`, damaged
/// ones too, one row each (their dir's name as the id). Each damaged one
/// is also warned about on stderr.
pub fn ps(containers: &Containers, all: bool) -> anyhow::Result<String> {
    let mut rows = vec![vec![
        "CONTAINER ID".to_string(),
        "IMAGE".to_string(),
        "COMMAND".to_string(),
        "CREATED".to_string(),
        "STATUS".to_string(),
        "NAMES".to_string(),
    ]];
    let (records, damaged) = containers.scan()?;
    for record in records.iter().filter(|r| all || r.is_running()) {
        rows.push(row(record));
    }
    for bad in &damaged {
        bad.warn();
        if all {
            let unknown = String::new();
            rows.push(vec![
                bad.short_id().to_string(),
                unknown.clone(),
                unknown.clone(),
                unknown.clone(),
                "Damaged".to_string(),
                unknown,
            ]);
        }
    }
    Ok(crate::show::table(&rows))
}

/// A container's row in `ps`.
pub fn row(record: &Record) -> Vec<String> {
    let command = format!("\"{}\"", record.config.cmd.join(" "));
    let command = if command.chars().count() > 22 {
        format!("{}…\"", command.chars().take(20).collect::<String>())
    } else {
        command
    };
    let status = match record.state.status.as_str() {
        "running" => format!("Up since {}", record.state.started_at),
        "exited" => format!("Exited ({})", record.state.exit_code),
        other => other.to_string(),
    };
    vec![
        record.short_id().to_string(),
        record.config.image.clone(),
        command,
        record.created.clone(),
        status,
        record.short_name().to_string(),
    ]
}

/// Is the container's init still the process recorded?
fn init_alive(record: &Record) -> bool {
    state::alive(record.state.pid, record.monitor.init_start_time)
}

/// Signal the container's init, if it is still the recorded process.
fn signal(record: &Record, signal: Signal) -> anyhow::Result<()> {
    if !record.is_running() || !init_alive(record) {
        bail!("container {} is not running", record.short_name());
    }
    // kill(2) to the init (PID 1 inside): it forwards TERM, INT, HUP, QUIT,
    // USR1 and USR2 to the command (step 01's supervisor); KILL it can't
    // catch, and its death ends every process of the container.
    kill(Pid::from_raw(record.state.pid), signal)
        .with_context(|| format!("cannot signal container {}", record.short_name()))
}

/// Wait until the monitor has written the end (or is gone).
fn wait_exited(containers: &Containers, id: &str, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        match containers.load(id)?.map(state::refresh) {
            None => return Ok(true),
            Some(record) if !record.is_running() => return Ok(true),
            Some(_) if Instant::now() >= deadline => return Ok(false),
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

// ANCHOR: stop
/// `stop -t SECS`: SIGTERM, then SIGKILL if it is still running after SECS.
pub fn stop(containers: &Containers, text: &str, seconds: u64) -> anyhow::Result<()> {
    let record = containers.find(text)?;
    if !record.is_running() {
        return Ok(()); // docker: stopping a stopped container is fine.
    }
    signal(&record, Signal::SIGTERM)?;
    if wait_exited(containers, &record.id, Duration::from_secs(seconds))? {
        return Ok(());
    }
    let _ = signal(&record, Signal::SIGKILL);
    if !wait_exited(containers, &record.id, Duration::from_secs(10))? {
        bail!("container {} did not stop", record.short_name());
    }
    Ok(())
}
// ANCHOR_END: stop

/// `kill -s SIG`.
pub fn kill_container(containers: &Containers, text: &str, name: &str) -> anyhow::Result<()> {
    let record = containers.find(text)?;
    let upper = name.to_ascii_uppercase();
    let wanted = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    let sig = match name.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => wanted.parse::<Signal>().ok(),
    }
    .with_context(|| {
        format!("invalid signal {name:?}: give a name (TERM, KILL, HUP...) or a number")
    })?;
    signal(&record, sig)
}

/// `rm [-f]`: remove a container's record, log and writable layer. A
/// damaged one only with `-f`: its record can't say whether it runs.
pub fn rm(containers: &Containers, text: &str, force: bool) -> anyhow::Result<()> {
    let record = match containers.resolve(text)? {
        None => bail!("no such container: {text}"),
        Some(Ok(record)) => record,
        Some(Err(damaged)) if force => {
            let _lock = containers.lock()?;
            return containers.remove_entry(&damaged.name);
        }
        Some(Err(damaged)) => bail!("{}", damaged.problem()),
    };
    if record.is_running() {
        if !force {
            bail!(
                "container {} is running: stop it first, or use rm -f",
                record.short_name()
            );
        }
        let _ = signal(&record, Signal::SIGKILL);
        if !wait_exited(containers, &record.id, Duration::from_secs(10))? {
            bail!("container {} did not stop", record.short_name());
        }
    }
    crate::fault::point("rm:stopped");
    let _lock = containers.lock()?;
    containers.remove(&record.id)
}

/// `logs [-f]`: what the detached container printed (stdout and stderr, in
/// order: both went to one file).
pub fn logs(containers: &Containers, text: &str, follow: bool) -> anyhow::Result<()> {
    let record = containers.find(text)?;
    // The log in the container's own dir, whatever path the record names.
    let path = state::log_path(&containers.dir_of(&record.id));
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context("cannot read the container's log"),
    };
    let mut out = std::io::stdout().lock();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        file.read_to_end(&mut buffer)?;
        out.write_all(&buffer)?;
        out.flush()?;
        if !follow {
            return Ok(());
        }
        let now = containers.load(&record.id)?.map(state::refresh);
        if !now.is_some_and(|r| r.is_running()) {
            // One last read: what was written before the end.
            buffer.clear();
            file.read_to_end(&mut buffer)?;
            out.write_all(&buffer)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
