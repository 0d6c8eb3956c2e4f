//! `cargo xtask watch [STEP] [--poll]`: grade the step you are editing each
//! time you save.
//!
//! Changes come from the kernel's inotify (through the `notify` crate): no
//! polling, no delay. Where inotify can't be used (its watch limit reached,
//! a network file system), or with `--poll`, the lessons' files are
//! compared once a second instead.

use crate::cargo::{self, Graded};
use crate::files::walk;
use crate::status::{self, Mode};
use crate::steps::{self, Step};
use crate::style::Style;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// Editors write a file in several steps; grade once they are done.
const QUIET: Duration = Duration::from_millis(300);

pub fn run(root: &Path, pinned: Option<&str>, poll: bool, style: Style) -> anyhow::Result<()> {
    let pinned = pinned
        .map(|s| steps::find(root, s).map_err(crate::usage))
        .transpose()?;
    let lessons = root.join("lessons");
    let mut changes: Box<dyn Changes> = if poll {
        Box::new(Poller::new(&lessons)?)
    } else {
        match Inotify::new(&lessons) {
            Ok(watcher) => Box::new(watcher),
            Err(error) => {
                eprintln!("watch: can't use inotify ({error:#}); checking for changes every second instead");
                Box::new(Poller::new(&lessons)?)
            }
        }
    };
    // Start with the step named, or the first without full marks.
    let mut current = match &pinned {
        Some(step) => Some(step.clone()),
        None => {
            let statuses = status::all(root, Mode::Cached, &mut |_| {})?;
            first_unfinished(&statuses).map(|s| s.step.clone())
        }
    };
    if let Some(step) = &current {
        grade(root, step, style)?;
    }
    waiting(current.as_ref());
    loop {
        let changed = changes.wait()?;
        let Some(step) = pinned.clone().or_else(|| {
            changed
                .iter()
                .rev()
                .find_map(|path| step_of(root, path).and_then(|n| steps::find(root, &n).ok()))
        }) else {
            continue;
        };
        if !changed
            .iter()
            .any(|p| step_of(root, p).as_deref() == Some(&step.number))
        {
            continue;
        }
        current = Some(step.clone());
        grade(root, &step, style)?;
        waiting(current.as_ref());
    }
}

/// The first step whose last known grade is not full marks (never graded
/// counts as not full marks).
pub fn first_unfinished(statuses: &[status::Status]) -> Option<&status::Status> {
    statuses.iter().find(|s| {
        !matches!(&s.state, status::State::Graded(r) | status::State::Changed(Some(r)) if r.full_marks())
    })
}

fn waiting(step: Option<&Step>) {
    match step {
        Some(step) => eprintln!(
            "\nwatching lessons/ (grading step {} on save; Ctrl-C to stop)",
            step.id
        ),
        None => eprintln!("\nwatching lessons/ (Ctrl-C to stop)"),
    }
}

/// Grade `step` and show its score card, or the compiler's first error.
fn grade(root: &Path, step: &Step, style: Style) -> anyhow::Result<()> {
    if style.colour() {
        // Clear the terminal: each result replaces the last.
        print!("\x1b[2J\x1b[H");
    }
    println!("grading step {} ...", step.id);
    let graded = cargo::grade(root, &step.lesson(), style.colour())?;
    print!("{}", result(step, &graded));
    Ok(())
}

/// What a grading run says, as `watch` shows it.
pub fn result(step: &Step, graded: &Graded) -> String {
    match graded {
        Graded::Report(report) => {
            let mut out = report.score_card(0);
            // The score card names the next todo!() or section; add the
            // check's hint where it is what to act on.
            if let Some(check) = report.checks.iter().find(|c| !c.passed) {
                if !check.hint.is_empty() && !check.message.starts_with("not written yet") {
                    out.push_str(&format!("      hint: {}\n", check.hint));
                }
            }
            out
        }
        Graded::DoesNotCompile(error) => format!(
            "step {} does not compile. The compiler's first error:\n\n{error}\n",
            step.id
        ),
        Graded::Crashed(tail) => {
            format!("the checks ended without a score; the end of their output:\n{tail}\n")
        }
    }
}

/// The step number of a path under `lessons/NN-name/`, unless the path is
/// build output, hidden, or an editor's temporary file.
pub fn step_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root.join("lessons")).ok()?;
    let mut parts = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy());
    let dir = parts.next()?;
    let rest: Vec<_> = parts.collect();
    let name = rest.last()?;
    let noise = rest.iter().any(|p| p == "target" || p.starts_with('.'))
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913"; // vim's "can I write here?" probe
                           // Only what the build reads: Rust sources and the manifest (a notes
                           // file, or a directory's own event, changes no grade).
    let code = name.ends_with(".rs") || name == "Cargo.toml";
    let number = dir.split_once('-')?.0;
    (code && !noise && number.len() == 2).then(|| number.to_string())
}

/// A source of file changes.
trait Changes {
    /// Block until something changed; the paths that did.
    fn wait(&mut self) -> anyhow::Result<Vec<PathBuf>>;
}

struct Inotify {
    // Kept alive: dropping it ends the watch.
    _watcher: notify::RecommendedWatcher,
    events: mpsc::Receiver<notify::Result<notify::Event>>,
}

impl Inotify {
    fn new(dir: &Path) -> anyhow::Result<Inotify> {
        use notify::Watcher;
        let (tx, events) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx)?;
        watcher.watch(dir, notify::RecursiveMode::Recursive)?;
        Ok(Inotify {
            _watcher: watcher,
            events,
        })
    }
}

impl Changes for Inotify {
    fn wait(&mut self) -> anyhow::Result<Vec<PathBuf>> {
        use notify::EventKind::{Access, Other};
        // Building and grading open and read the files: not changes.
        fn changed(event: notify::Result<notify::Event>) -> anyhow::Result<Vec<PathBuf>> {
            let event = event?;
            Ok(match event.kind {
                Access(_) | Other => Vec::new(),
                _ => event.paths,
            })
        }
        let mut paths = Vec::new();
        // Until something changed...
        while paths.is_empty() {
            paths = changed(self.events.recv()?)?;
        }
        // ...and then until the editor is quiet.
        while let Ok(event) = self.events.recv_timeout(QUIET) {
            paths.extend(changed(event)?);
        }
        Ok(paths)
    }
}

/// Compares modification times and sizes once a second.
struct Poller {
    dir: PathBuf,
    seen: BTreeMap<PathBuf, (SystemTime, u64)>,
    every: Duration,
}

impl Poller {
    fn new(dir: &Path) -> anyhow::Result<Poller> {
        Ok(Poller {
            dir: dir.to_path_buf(),
            seen: snapshot(dir)?,
            every: Duration::from_secs(1),
        })
    }
}

fn snapshot(dir: &Path) -> anyhow::Result<BTreeMap<PathBuf, (SystemTime, u64)>> {
    Ok(walk(dir)?
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, (meta.modified().ok()?, meta.len())))
        })
        .collect())
}

impl Changes for Poller {
    fn wait(&mut self) -> anyhow::Result<Vec<PathBuf>> {
        loop {
            std::thread::sleep(self.every);
            let now = snapshot(&self.dir)?;
            let mut changed: Vec<PathBuf> = now
                .iter()
                .filter(|(path, stamp)| self.seen.get(*path) != Some(stamp))
                .map(|(path, _)| path.clone())
                .collect();
            changed.extend(self.seen.keys().filter(|p| !now.contains_key(*p)).cloned());
            self.seen = now;
            if !changed.is_empty() {
                return Ok(changed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_in_a_lesson_name_its_step_and_noise_does_not() {
        let root = Path::new("/w");
        let step = |p: &str| step_of(root, Path::new(p));
        assert_eq!(
            step("/w/lessons/03-chroot/src/rootfs.rs").as_deref(),
            Some("03")
        );
        assert_eq!(
            step("/w/lessons/03-chroot/Cargo.toml").as_deref(),
            Some("03")
        );
        assert_eq!(step("/w/lessons/03-chroot/src/.rootfs.rs.swp"), None);
        assert_eq!(step("/w/lessons/03-chroot/src/rootfs.rs~"), None);
        assert_eq!(step("/w/lessons/03-chroot/src/4913"), None);
        assert_eq!(step("/w/lessons/03-chroot/target/debug/x"), None);
        assert_eq!(step("/w/solutions/03-chroot/src/rootfs.rs"), None);
        assert_eq!(step("/w/lessons/03-chroot"), None);
        assert_eq!(step("/w/lessons/03-chroot/src"), None);
        assert_eq!(step("/w/lessons/03-chroot/notes.txt"), None);
    }

    fn changes_are_seen(mut source: impl Changes, dir: &Path) {
        let file = dir.join("01-add/src/lib.rs");
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                std::fs::write(&file, "// saved\n").unwrap();
            })
        };
        let changed = source.wait().unwrap();
        writer.join().unwrap();
        assert!(changed.contains(&file), "{changed:?}");
    }

    #[test]
    fn inotify_and_polling_both_see_a_save() {
        let fx = crate::testing::Fixture::new();
        let lessons = fx.root().join("lessons");
        changes_are_seen(Inotify::new(&lessons).unwrap(), &lessons);
        let mut poller = Poller::new(&lessons).unwrap();
        poller.every = Duration::from_millis(50);
        changes_are_seen(poller, &lessons);
    }
}
