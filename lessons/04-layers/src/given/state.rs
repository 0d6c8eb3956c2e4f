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
//! A record that can't be used (not JSON, another container's, cut short,
//! a link pointing out of the store) is **damaged**: every command skips it
//! with one warning, `ps -a` lists it, `rm -f` removes it. One bad file
//! must never stop the other containers (docker's daemon, too, logs
//! "failed to load container" and carries on).
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
use std::ffi::OsStr;
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

    /// The first 12 characters of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        short(&self.id)
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
        self.dir_of(id).join(RECORD)
    }

    /// One writer at a time (flock is released if the holder dies).
    pub fn lock(&self) -> anyhow::Result<Lock> {
        let file = crate::store::lock_options()
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
    /// `--rm` asked for. What such a cut could leave, an empty file, is a
    /// damaged record, which `rm -f` removes. That saves about a
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

    /// A record as stored: `None` once removed (or not written yet), an
    /// error in one line if it is damaged.
    pub fn load(&self, id: &str) -> anyhow::Result<Option<Record>> {
        match self.read(OsStr::new(id)) {
            None => Ok(None),
            Some(Ok(record)) => Ok(Some(record)),
            Some(Err(damaged)) => Err(anyhow::anyhow!("{}", damaged.problem())),
        }
    }

    // ANCHOR: read
    /// The record in `containers/NAME/`, judged: `None` if there is none (a
    /// build's container, a run's before its record is written, a removed
    /// one), else the record or why it can't be used.
    pub fn read(&self, name: &OsStr) -> Option<Result<Record, Damaged>> {
        use nix::fcntl::{open, openat, OFlag};
        use nix::sys::stat::Mode;
        let damaged = |why: String| Some(Err(Damaged::new(name, why)));
        let plain = Path::new(name).components().count() == 1
            && !matches!(name.as_encoded_bytes(), b"." | b".." | b"");
        if !plain || name.as_encoded_bytes().contains(&b'/') {
            return damaged("not a container's directory name".to_string());
        }
        // open(2) the dir with O_NOFOLLOW|O_DIRECTORY, then openat(2) the
        // record in it with O_NOFOLLOW: a symbolic link in either place is
        // refused by the kernel (ELOOP, ENOTDIR), never followed out of the
        // store. O_NONBLOCK: a FIFO planted as the record can't hang us.
        let dir = match open(
            &self.dir.join(name),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => dir,
            Err(nix::errno::Errno::ENOENT) => return None,
            Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
                // Which of the two, lstat(2) says (it doesn't follow links).
                let link = fs::symlink_metadata(self.dir.join(name))
                    .is_ok_and(|m| m.file_type().is_symlink());
                return damaged(if link {
                    "its directory is a symbolic link, not followed".to_string()
                } else {
                    "not a directory".to_string()
                });
            }
            Err(errno) => return damaged(format!("cannot open its directory: {}", errno.desc())),
        };
        let file = match openat(
            &dir,
            RECORD,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(file) => File::from(file),
            Err(nix::errno::Errno::ENOENT) => return None,
            Err(nix::errno::Errno::ELOOP) => {
                return damaged(format!("{RECORD} is a symbolic link, not followed"))
            }
            Err(errno) => return damaged(format!("cannot open {RECORD}: {}", errno.desc())),
        };
        match file.metadata() {
            Ok(meta) if meta.is_dir() => return damaged(format!("{RECORD} is a directory")),
            Ok(meta) if !meta.is_file() => return damaged(format!("{RECORD} is not a file")),
            Ok(meta) if meta.len() > MAX_RECORD => {
                return damaged(format!("{RECORD} is {} bytes: too large", meta.len()))
            }
            Ok(_) => {}
            Err(e) => return damaged(format!("cannot read {RECORD}: {e}")),
        }
        let mut bytes = Vec::new();
        use std::io::Read;
        if let Err(e) = file.take(MAX_RECORD + 1).read_to_end(&mut bytes) {
            return damaged(format!("cannot read {RECORD}: {e}"));
        }
        Some(judge(name, &bytes).map_err(|why| Damaged::new(name, why)))
    }
    // ANCHOR_END: read

    /// Every container dir: the usable records, oldest first, with stale
    /// ones shown as exited; and the damaged ones, by name.
    pub fn scan(&self) -> anyhow::Result<(Vec<Record>, Vec<Damaged>)> {
        let mut records = Vec::new();
        let mut damaged = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // No container was ever made in this store.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((records, damaged)),
            Err(e) => return Err(e).context("cannot list the containers"),
        };
        for entry in entries {
            let name = entry.context("cannot list the containers")?.file_name();
            // `.removing-ID`: an `rm` at work (or killed; see
            // `container::sweep_abandoned`).
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            match self.read(&name) {
                None => {}
                Some(Ok(record)) => records.push(refresh(record)),
                Some(Err(bad)) => damaged.push(bad),
            }
        }
        records.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        damaged.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((records, damaged))
    }

    /// Every usable container, oldest first, with stale ones shown as
    /// exited. Each damaged one is warned about, once a command.
    pub fn all(&self) -> anyhow::Result<Vec<Record>> {
        let (records, damaged) = self.scan()?;
        damaged.iter().for_each(Damaged::warn);
        Ok(records)
    }

    /// A container by name, full id, or unique id prefix (as docker).
    pub fn find(&self, text: &str) -> anyhow::Result<Record> {
        self.lookup(text)?
            .with_context(|| format!("no such container: {text}"))
    }

    /// [`Containers::find`], with `None` when nothing matches (an error
    /// when several do, or when the one that does is damaged).
    pub fn lookup(&self, text: &str) -> anyhow::Result<Option<Record>> {
        match self.resolve(text)? {
            None => Ok(None),
            Some(Ok(record)) => Ok(Some(record)),
            Some(Err(damaged)) => Err(anyhow::anyhow!("{}", damaged.problem())),
        }
    }

    /// What `text` names, damaged containers included (by their dir's
    /// name or a unique prefix of it): `rm -f` removes those too.
    pub fn resolve(&self, text: &str) -> anyhow::Result<Option<Result<Record, Damaged>>> {
        let (all, damaged) = self.scan()?;
        let found = pick(&all, &damaged, text);
        // The others are warned about; the one asked for is the answer.
        let asked = match &found {
            Ok(Some(Err(bad))) => Some(bad.id.as_str()),
            _ => None,
        };
        for bad in damaged.iter().filter(|d| Some(d.id.as_str()) != asked) {
            bad.warn();
        }
        found
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
        self.remove_entry(OsStr::new(id))
    }

    /// Remove what `containers/NAME` is, whatever it is (a damaged
    /// container's may be a file, or a link: the link goes, never what it
    /// points to).
    pub fn remove_entry(&self, name: &OsStr) -> anyhow::Result<()> {
        let what = || format!("cannot remove container {}", short(&name.to_string_lossy()));
        let dir = self.dir.join(name);
        // Rename first (atomic): nobody lists a half-removed container.
        let mut doomed = std::ffi::OsString::from(".removing-");
        doomed.push(name);
        let doomed = self.dir.join(doomed);
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(what),
        }
        // lstat(2): a link is removed as a link (unlink), never followed.
        let is_dir = fs::symlink_metadata(&doomed).is_ok_and(|m| m.is_dir());
        if is_dir {
            fs::remove_dir_all(&doomed).with_context(what)
        } else {
            fs::remove_file(&doomed).with_context(what)
        }
    }
}

/// The container `text` names among `all` and `damaged`: a name or a full
/// id first, then a unique prefix of an id.
fn pick(
    all: &[Record],
    damaged: &[Damaged],
    text: &str,
) -> anyhow::Result<Option<Result<Record, Damaged>>> {
    let wanted = text.trim_start_matches('/');
    if let Some(record) = all
        .iter()
        .find(|r| r.short_name() == wanted || r.id == wanted)
    {
        return Ok(Some(Ok(record.clone())));
    }
    if let Some(bad) = damaged.iter().find(|d| d.id == text) {
        return Ok(Some(Err(bad.clone())));
    }
    let mut matches: Vec<Result<Record, Damaged>> = Vec::new();
    if !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        let healthy = all.iter().filter(|r| r.id.starts_with(wanted)).cloned();
        matches.extend(healthy.map(Ok));
        let bad = damaged.iter().filter(|d| d.id.starts_with(wanted)).cloned();
        matches.extend(bad.map(Err));
    }
    if matches.len() > 1 {
        bail!(
            "{text}: ambiguous, {} containers match: give more of the id",
            matches.len()
        );
    }
    Ok(matches.pop())
}

/// A container's record file, in its dir.
const RECORD: &str = "config.v1.json";

/// A record is a few kilobytes; anything past this is not one (and is not
/// read into memory).
const MAX_RECORD: u64 = 1 << 20;

/// A container dir whose record can't be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The dir's name (lossy, if it isn't UTF-8): `ps -a` shows it as the id.
    pub id: String,
    /// The dir's name as it is on disk, for `rm -f`.
    pub name: std::ffi::OsString,
    /// Why, in a few words.
    pub why: String,
}

impl Damaged {
    fn new(name: &OsStr, why: String) -> Damaged {
        Damaged {
            id: name.to_string_lossy().into_owned(),
            name: name.to_os_string(),
            why: why.replace(['\n', '\r'], " "),
        }
    }

    pub fn short_id(&self) -> &str {
        short(&self.id)
    }

    /// The error for a command that wanted this container.
    pub fn problem(&self) -> String {
        format!(
            "container {}: damaged record: {}; rm -f {} removes it",
            self.short_id(),
            self.why,
            self.short_id()
        )
    }

    /// One line on stderr, the first time this command meets it.
    pub fn warn(&self) {
        static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if !warned.contains(&self.id) {
            warned.push(self.id.clone());
            step01::cli::report(&format!(
                "warning: container {} skipped: damaged record: {}; rm -f {} removes it",
                self.short_id(),
                self.why,
                self.short_id()
            ));
        }
    }
}

// ANCHOR: judge
/// Is `bytes` a record the runtime can act on, for the dir `name`? Every
/// field a command uses is checked here, once, so that no command has to
/// distrust it later: a record that passes can't make one panic.
pub fn judge(name: &OsStr, bytes: &[u8]) -> Result<Record, String> {
    if bytes.is_empty() {
        // What a power cut leaves of a record written without fsync.
        return Err(format!("{RECORD} is empty"));
    }
    let record: Record = serde_json::from_slice(bytes)
        .map_err(|e| format!("{RECORD} is not a container's record: {e}"))?;
    if name.as_encoded_bytes() != record.id.as_bytes() {
        return Err(format!(
            "its Id {} is not its directory's name",
            quoted(&record.id)
        ));
    }
    if record.id.len() != 64
        || !record
            .id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(format!(
            "its Id {} is not 64 hex digits",
            quoted(&record.id)
        ));
    }
    let name_ok = record
        .name
        .strip_prefix('/')
        .is_some_and(|n| validate_name(n).is_ok());
    if !name_ok {
        return Err(format!(
            "its Name {} is not a container's name",
            quoted(&record.name)
        ));
    }
    if !matches!(
        record.state.status.as_str(),
        "created" | "running" | "exited"
    ) {
        return Err(format!(
            "its State.Status {} is none of created, running, exited",
            quoted(&record.state.status)
        ));
    }
    if record.state.pid < 0 || record.monitor.pid < 0 {
        return Err("a negative pid".to_string());
    }
    Ok(record)
}
// ANCHOR_END: judge

/// A field's value for a message: quoted, escaped, at most 20 characters.
fn quoted(text: &str) -> String {
    let cut = prefix(text, 20);
    if cut.len() < text.len() {
        format!("{:?}…", cut)
    } else {
        format!("{cut:?}")
    }
}

/// The first `n` characters of `text` (all of it if shorter), never cutting
/// a character in two (slicing a `str` by bytes there would panic).
pub fn prefix(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// docker's short id: the first 12 characters.
pub fn short(id: &str) -> &str {
    prefix(id, 12)
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

/// A record that passes [`judge`], for tests.
#[cfg(test)]
pub(crate) fn sample(id: &str) -> Record {
    Record {
        id: id.to_string(),
        name: "/web".to_string(),
        created: "2025-01-01T00:00:00Z".to_string(),
        state: State {
            status: "exited".to_string(),
            ..State::default()
        },
        config: Config {
            cmd: vec!["sleep".to_string(), "300".to_string()],
            image: "base".to_string(),
            ..Config::default()
        },
        ..Record::default()
    }
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
    fn records_round_trip_with_and_without_fsync_and_an_empty_one_is_damaged() {
        let root = scratch("records");
        let containers = Containers::new_at(&root);
        for (id, auto_remove) in [("a".repeat(64), false), ("b".repeat(64), true)] {
            fs::create_dir_all(containers.dir_of(&id)).unwrap();
            let mut record = sample(&id);
            record.host_config.auto_remove = auto_remove;
            containers.save(&record).unwrap();
            assert_eq!(containers.load(&id).unwrap(), Some(record));
        }
        // What a power cut may leave of a record written without fsync:
        // listed as damaged, so that `rm -f` can remove it.
        let cut = "c".repeat(64);
        fs::create_dir_all(containers.dir_of(&cut)).unwrap();
        fs::write(containers.record_path(&cut), b"").unwrap();
        let error = containers.load(&cut).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
        let (healthy, damaged) = containers.scan().unwrap();
        assert_eq!(healthy.len(), 2);
        assert_eq!(damaged.len(), 1);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn damaged_records_are_listed_never_followed_and_removable() {
        use std::os::unix::fs::symlink;
        let root = scratch("damaged");
        let containers = Containers::new_at(&root);
        let outside = root.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let good = "a".repeat(64);
        fs::create_dir_all(containers.dir_of(&good)).unwrap();
        containers.save(&sample(&good)).unwrap();
        let plant = |name: &str, make: &dyn Fn(&Path)| {
            let dir = containers.dir.join(name);
            make(&dir);
        };
        // A valid record outside the store, for the links to point at.
        let target = outside.join("record.json");
        fs::write(
            &target,
            serde_json::to_vec(&sample(&"e".repeat(64))).unwrap(),
        )
        .unwrap();
        type Plant<'a> = Box<dyn Fn(&Path) + 'a>;
        let cases: Vec<(String, Plant, &str)> = vec![
            (
                "b".repeat(64),
                Box::new(|d: &Path| {
                    fs::create_dir_all(d).unwrap();
                    fs::write(d.join(RECORD), b"{garbage").unwrap();
                }),
                "not a container's record",
            ),
            (
                "c".repeat(64),
                Box::new(|d: &Path| {
                    fs::create_dir_all(d).unwrap();
                    fs::write(d.join(RECORD), serde_json::to_vec(&sample("abc")).unwrap()).unwrap();
                }),
                "not its directory's name",
            ),
            (
                "d".repeat(64),
                Box::new(|d: &Path| {
                    fs::create_dir_all(d.join(RECORD)).unwrap();
                }),
                "is a directory",
            ),
            (
                "e".repeat(64),
                Box::new(|d: &Path| {
                    fs::create_dir_all(d).unwrap();
                    symlink(&target, d.join(RECORD)).unwrap();
                }),
                "symbolic link",
            ),
            (
                "f".repeat(64),
                Box::new(|d: &Path| {
                    symlink(&outside, d).unwrap();
                }),
                "symbolic link",
            ),
            (
                "0".repeat(64),
                Box::new(|d: &Path| {
                    fs::create_dir_all(d).unwrap();
                    nix::unistd::mkfifo(&d.join(RECORD), nix::sys::stat::Mode::S_IRWXU).unwrap();
                }),
                "not a file",
            ),
            (
                "junk".to_string(),
                Box::new(|d: &Path| {
                    fs::write(d, b"x").unwrap();
                }),
                "not a directory",
            ),
        ];
        for (name, make, _) in &cases {
            plant(name, make.as_ref());
        }
        let (healthy, damaged) = containers.scan().unwrap();
        assert_eq!(
            healthy.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            vec![good.clone()]
        );
        for (name, _, why) in &cases {
            let bad = damaged
                .iter()
                .find(|d| &d.id == name)
                .unwrap_or_else(|| panic!("{name} not listed"));
            assert!(bad.why.contains(why), "{name}: {}", bad.why);
            assert!(!bad.problem().contains('\n'));
        }
        // Looked up by a prefix, damaged ones are an error in one line for
        // everything but rm; the healthy one is still found.
        assert!(containers
            .lookup("bbbb")
            .unwrap_err()
            .to_string()
            .contains("rm -f bbbbbbbbbbbb"));
        assert_eq!(containers.find(&good[..5]).unwrap().id, good);
        for (name, _, _) in &cases {
            match containers.resolve(name).unwrap() {
                Some(Err(bad)) => containers.remove_entry(&bad.name).unwrap(),
                other => panic!("{name}: {other:?}"),
            }
        }
        let (healthy, damaged) = containers.scan().unwrap();
        assert_eq!((healthy.len(), damaged.len()), (1, 0));
        // What the links pointed at is untouched.
        assert!(target.exists() && outside.is_dir());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn shortening_never_cuts_a_character() {
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(&"a".repeat(64)), "a".repeat(12));
        assert_eq!(short("ééééééééééééééé"), "éééééééééééé");
        assert_eq!(prefix("", 3), "");
    }
}
