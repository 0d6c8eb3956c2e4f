//! What the runtime remembers of each container, without a daemon.
//!
//! docker keeps its containers' state in a daemon's memory; minibox has no
//! daemon, so each container's state is a file, `ROOT/containers/<id>/
//! config.v1.json` (docker keeps the like in `config.v2.json`), next to its writable layer
//! and its log. Every command reads the files; whoever changes one holds the
//! containers' lock (`flock(2)` on `ROOT/containers.lock`) and writes it
//! whole, to a temp file renamed into place: a reader sees the old record or
//! the new one, never half of each.
//!
//! A record says "running" from the moment the command started until the
//! container's monitor (the runtime process that waits for it) writes its
//! exit code. If the monitor was killed (SIGKILL, a reboot), nobody will: so
//! a "running" record whose monitor is gone (no such pid, or a pid reused by
//! another process, told apart by its start time) is shown as exited.

use crate::store::Store;
use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// A container, with docker's field names where docker has the field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    /// docker shows names with a leading `/`; so does `inspect` here.
    pub name: String,
    /// The image's id, as docker's `.Image` (the name as given is in
    /// `Config.Image`).
    pub image: String,
    pub created: String,
    /// The program and its arguments.
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub config: Config,
    pub host_config: HostConfig,
    pub log_path: String,
    /// The container's networks (step 05), as docker shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_settings: Option<serde_json::Value>,
    /// Which process watches the container (not in docker: it has a daemon).
    pub monitor: Monitor,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// created, running, exited.
    pub status: String,
    pub running: bool,
    /// The container's init as the host sees it; 0 when not running.
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub hostname: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub image: String,
    pub working_dir: String,
    pub tty: bool,
    pub open_stdin: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub auto_remove: bool,
    pub network_mode: String,
    pub readonly_rootfs: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Monitor {
    pub pid: i32,
    /// Field 22 of /proc/PID/stat: with the pid, names one process for good.
    pub start_time: u64,
    /// The same for the container's init (so `stop` never signals a stranger).
    pub init_start_time: u64,
}

impl Record {
    /// The name without docker's leading `/`.
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    pub fn is_running(&self) -> bool {
        self.state.status == "running"
    }
}

/// The containers under a store's root.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// The containers' lock, held until dropped.
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl Containers {
    pub fn new(store: &Store) -> Containers {
        Containers::new_at(store.root())
    }

    /// The containers of the store at `root`.
    pub fn new_at(root: &Path) -> Containers {
        Containers {
            dir: root.join("containers"),
        }
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir_of(id).join("config.v1.json")
    }

    /// One writer at a time (flock is released if the holder dies).
    pub fn lock(&self) -> anyhow::Result<Lock> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.with_file_name("containers.lock"))
            .context("cannot open the containers' lock")?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .context("cannot lock the containers")?;
        Ok(Lock(lock))
    }

    // ANCHOR: save
    /// Write a record whole: temp file, fsync, rename. The fsync is left
    /// out for a `--rm` container: its record is meant to go with it, and
    /// after a power cut (the one thing fsync guards against; readers see
    /// the page cache either way) the container is gone, which is what
    /// `--rm` asked for. What such a cut could leave, an empty file, reads
    /// as no record (see [`Containers::load`]). That saves about a
    /// millisecond a write on a disk, twice a run.
    pub fn save(&self, record: &Record) -> anyhow::Result<()> {
        let path = self.record_path(&record.id);
        let temp = path.with_extension("json.tmp");
        let mut bytes = serde_json::to_vec_pretty(record)?;
        bytes.push(b'\n');
        {
            use std::io::Write;
            // 0600: the record holds the container's environment (-e
            // DB_PASSWORD=...), for root's eyes only, like docker's.
            let mut file = {
                use std::os::unix::fs::OpenOptionsExt;
                File::options()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&temp)
            }
            .with_context(|| format!("cannot write the state of {}", record.short_id()))?;
            file.write_all(&bytes)?;
            if !record.host_config.auto_remove {
                file.sync_all()?;
            }
        }
        fs::rename(&temp, &path)
            .with_context(|| format!("cannot write the state of {}", record.short_id()))
    }
    // ANCHOR_END: save

    /// A record as stored (`None` once removed).
    /// An empty file is a record a power cut caught before its data was on
    /// disk (written without fsync, see [`Containers::save`]): none.
    pub fn load(&self, id: &str) -> anyhow::Result<Option<Record>> {
        match fs::read(self.record_path(id)) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the state of container {} is damaged",
                    &id[..12.min(id.len())]
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("cannot read a container's state"),
        }
    }

    /// Every container, oldest first, with stale ones shown as exited.
    pub fn all(&self) -> anyhow::Result<Vec<Record>> {
        let mut records = Vec::new();
        for entry in fs::read_dir(&self.dir).context("cannot list the containers")? {
            let id = entry?.file_name().to_string_lossy().into_owned();
            if let Some(record) = self.load(&id)? {
                records.push(refresh(record));
            }
        }
        records.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        Ok(records)
    }

    /// A container by name, full id, or unique id prefix (as docker).
    pub fn find(&self, text: &str) -> anyhow::Result<Record> {
        self.lookup(text)?
            .with_context(|| format!("no such container: {text}"))
    }

    /// [`Containers::find`], with `None` when nothing matches (an error
    /// only when several do).
    pub fn lookup(&self, text: &str) -> anyhow::Result<Option<Record>> {
        let all = self.all()?;
        let wanted = text.trim_start_matches('/');
        if let Some(record) = all
            .iter()
            .find(|r| r.short_name() == wanted || r.id == wanted)
        {
            return Ok(Some(record.clone()));
        }
        let matches: Vec<&Record> =
            if !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
                all.iter().filter(|r| r.id.starts_with(wanted)).collect()
            } else {
                Vec::new()
            };
        match matches.as_slice() {
            [one] => Ok(Some((*one).clone())),
            [] => Ok(None),
            _ => bail!(
                "{text}: ambiguous, {} containers match: give more of the id",
                matches.len()
            ),
        }
    }

    /// Is this name taken? (Call with the lock held.)
    pub fn name_in_use(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .all()?
            .into_iter()
            .find(|r| r.short_name() == name)
            .map(|r| r.id))
    }

    /// Remove a container's dir: record, log and writable layer.
    pub fn remove(&self, id: &str) -> anyhow::Result<()> {
        let dir = self.dir_of(id);
        // Rename first (atomic): nobody lists a half-removed container.
        let doomed = self.dir.join(format!(".removing-{id}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed)
                .with_context(|| format!("cannot remove container {}", &id[..12])),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove container {}", &id[..12])),
        }
    }
}

// ANCHOR: stale
/// The start time of a live process (field 22 of `/proc/PID/stat`); `None`
/// for no such process, or a zombie (dead, only not reaped yet).
pub fn start_time(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Is this the same process that was recorded, and alive?
pub fn alive(pid: i32, started: u64) -> bool {
    pid > 0 && start_time(pid) == Some(started)
}

/// A "running" record whose monitor is gone can't be running: nothing
/// waits for it (and its init died with the monitor: PR_SET_PDEATHSIG).
pub fn refresh(mut record: Record) -> Record {
    let watched =
        record.is_running() || (record.state.status == "created" && record.monitor.pid > 0);
    if watched && !alive(record.monitor.pid, record.monitor.start_time) {
        record.state.status = "exited".to_string();
        record.state.running = false;
        record.state.pid = 0;
        record.state.exit_code = 255;
        record.state.error =
            "the container's monitor died (killed, or the machine restarted)".to_string();
    }
    record
}
// ANCHOR_END: stale

/// Now, as RFC 3339.
pub fn now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::image::rfc3339(seconds)
}

/// A docker-like name when none is given: an adjective and a noun.
pub fn random_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nimble", "proud", "quiet", "sharp", "tender", "witty",
    ];
    const NOUNS: [&str; 16] = [
        "bell", "curie", "darwin", "euler", "gauss", "hopper", "knuth", "lovelace", "noether",
        "pascal", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak",
    ];
    let byte = |i: usize| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap_or(0) as usize;
    format!(
        "{}_{}_{}",
        ADJECTIVES[byte(0) % 16],
        NOUNS[byte(1) % 16],
        &id[4..8]
    )
}

/// Check a `--name` as docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    check_name("container", name, 128)
}

/// docker's rule for the names of things (containers, networks):
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most `longest` bytes.
pub fn check_name(what: &str, name: &str, longest: usize) -> anyhow::Result<()> {
    let ok = name.len() <= longest
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        bail!("invalid {what} name {name:?}: use letters, digits and _ . -, starting with a letter or digit");
    }
    Ok(())
}

/// The log file of a container.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("container.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("minibox-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_round_trip_with_and_without_fsync_and_an_empty_one_is_none() {
        let root = scratch("records");
        let containers = Containers::new_at(&root);
        for (id, auto_remove) in [("a".repeat(64), false), ("b".repeat(64), true)] {
            fs::create_dir_all(containers.dir_of(&id)).unwrap();
            let mut record = Record {
                id: id.clone(),
                ..Record::default()
            };
            record.host_config.auto_remove = auto_remove;
            containers.save(&record).unwrap();
            assert_eq!(containers.load(&id).unwrap(), Some(record));
        }
        // What a power cut may leave of a record written without fsync.
        let cut = "c".repeat(64);
        fs::create_dir_all(containers.dir_of(&cut)).unwrap();
        fs::write(containers.record_path(&cut), b"").unwrap();
        assert_eq!(containers.load(&cut).unwrap(), None);
        let _ = fs::remove_dir_all(&root);
    }
}
