//! `cargo xtask reset STEP [--yes]`: put a step's starter back.
//!
//! Never loses a learner's work: the whole lesson directory is copied to
//! `.backups/NN-name-<UTC time>/` and the copy is read back and compared
//! before a single file of the lesson is touched.

use crate::lessons;
use crate::steps::{self, Step};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// How the learner's lesson differs from its starter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files whose text differs from the starter's.
    pub changed: Vec<PathBuf>,
    /// Files the learner added (removed by the reset).
    pub added: Vec<PathBuf>,
    /// Starter files the learner deleted (written again).
    pub missing: Vec<PathBuf>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.missing.is_empty()
    }
}

pub fn plan(dir: &Path, starter: &BTreeMap<PathBuf, String>) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let present: Vec<PathBuf> = if dir.exists() {
        crate::files::walk(dir)?
            .into_iter()
            .map(|p| p.strip_prefix(dir).map(Path::to_path_buf))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    for (relative, text) in starter {
        let path = dir.join(relative);
        // lstat: a link where the starter has a file is a change, whatever
        // it points at.
        match std::fs::symlink_metadata(&path) {
            Err(_) => plan.missing.push(relative.clone()),
            Ok(meta) if meta.is_file() && same_bytes(&path, text.as_bytes()) => {}
            Ok(_) => plan.changed.push(relative.clone()),
        }
    }
    plan.added = present
        .into_iter()
        .filter(|p| !starter.contains_key(p))
        .collect();
    Ok(plan)
}

pub fn run(root: &Path, step: &str, yes: bool) -> anyhow::Result<()> {
    let step = steps::find(root, step).map_err(crate::usage)?;
    let interactive = std::io::stdin().is_terminal();
    let outcome = reset(root, &step, |plan, backup| {
        println!("lessons/{} differs from its starter:", step.id);
        print!("{}", describe(plan));
        if yes {
            return Ok(true);
        }
        if !interactive {
            return Err(crate::usage(anyhow::anyhow!(
                "not resetting lessons/{} without asking: run it again with --yes (your version is backed up first)",
                step.id
            )));
        }
        match backup {
            Some(backup) => print!(
                "Reset it? Your version is kept in {} first. [y/N] ",
                shown(root, backup)
            ),
            None => print!("Write its starter? [y/N] "),
        }
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
    })?;
    print!("{}", told(root, &step, &outcome));
    if outcome == Outcome::Declined {
        std::process::exit(1);
    }
    Ok(())
}

/// The files that differ from the starter, one per line.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    for (files, what) in [
        (&plan.changed, "changed  {}"),
        (&plan.added, "yours    {} (removed)"),
        (&plan.missing, "missing  {} (written again)"),
    ] {
        for file in files {
            out.push_str("  ");
            out.push_str(&what.replace("{}", &file.display().to_string()));
            out.push('\n');
        }
    }
    out
}

/// What a reset did, for the learner.
pub fn told(root: &Path, step: &Step, outcome: &Outcome) -> String {
    match outcome {
        Outcome::AlreadyStarter => {
            format!(
                "lessons/{} is its starter already: nothing to do\n",
                step.id
            )
        }
        Outcome::Declined => "nothing changed\n".to_string(),
        Outcome::Reset { backup: None } => {
            format!(
                "lessons/{}: its starter is written (there was nothing to back up).\n",
                step.id
            )
        }
        Outcome::Reset {
            backup: Some(backup),
        } => {
            let backup = shown(root, backup);
            format!(
                "lessons/{id}: back to its starter.\n  your version: {backup}/\n  to bring it back: cp -a {backup}/. lessons/{id}/\n",
                id = step.id
            )
        }
    }
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    AlreadyStarter,
    Declined,
    /// `backup` is `None` when there was no lesson to back up.
    Reset {
        backup: Option<PathBuf>,
    },
}

/// Reset `step`'s lesson if `confirm(plan, backup dir)` says so.
///
/// Nothing is ever written or deleted through a symbolic link: a link in
/// the lesson is backed up as a link and removed as a link.
pub fn reset(
    root: &Path,
    step: &Step,
    confirm: impl FnOnce(&Plan, Option<&Path>) -> anyhow::Result<bool>,
) -> anyhow::Result<Outcome> {
    let dir = step.lesson_dir(root);
    let exists = match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => bail!(
            "lessons/{} is not a directory (a link or a file): move it away, then reset again",
            step.id
        ),
        Err(_) => false,
    };
    let starter = lessons::starter(root, step)?;
    let plan = plan(&dir, &starter)?;
    if plan.is_empty() {
        return Ok(Outcome::AlreadyStarter);
    }
    if exists {
        if let Some(special) = special_file(&dir)? {
            bail!(
                "{} is not a file, a directory or a link (a pipe, a socket or a device), which a backup can't hold: move it out of lessons/{}, then reset again",
                shown(root, &special),
                step.id
            );
        }
    }
    let backup = exists.then(|| backup_dir(root, step));
    if !confirm(&plan, backup.as_deref())? {
        return Ok(Outcome::Declined);
    }
    if let Some(backup) = &backup {
        let copied = copy_tree(&dir, backup).and_then(|()| same_tree(&dir, backup));
        if let Err(error) = copied {
            // Only what we just made: a partial copy is no backup.
            let _ = std::fs::remove_dir_all(backup);
            return Err(error.context(format!(
                "backing up lessons/{} to {} failed, so nothing was reset",
                step.id,
                shown(root, backup)
            )));
        }
    }
    apply(&dir, &plan, &starter).map_err(|error| match &backup {
        Some(backup) => error.context(format!(
            "resetting lessons/{id} stopped halfway; your version is whole in {b}/ (cp -a {b}/. lessons/{id}/ brings it back)",
            id = step.id,
            b = shown(root, backup)
        )),
        None => error.context(format!("resetting lessons/{} failed", step.id)),
    })?;
    Ok(Outcome::Reset { backup })
}

/// Make the lesson its starter: remove the learner's extra files, write
/// every starter file as a regular file in real directories.
fn apply(dir: &Path, plan: &Plan, starter: &BTreeMap<PathBuf, String>) -> anyhow::Result<()> {
    // Check first what can be checked, so a reset rarely stops halfway.
    for relative in plan.added.iter().chain(plan.changed.iter()) {
        writable(dir.join(relative).parent().unwrap_or(dir))?;
    }
    for relative in &plan.added {
        // A leaf of `walk`: a file or a link, never followed; its parents
        // are real directories of the lesson.
        let path = dir.join(relative);
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        remove_empty_parents(dir, relative);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (relative, text) in starter {
        let path = dir.join(relative);
        real_parents(dir, relative)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
            Ok(meta) if !meta.is_file() => std::fs::remove_file(&path),
            _ => Ok(()),
        }
        .with_context(|| format!("removing {}", path.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Whether this process may change `dir`'s entries (by the permission
/// bits; an immutable file still fails later, with its name).
fn writable(dir: &Path) -> anyhow::Result<()> {
    // access(2) with W_OK answers for our real uid, as the writes will.
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .with_context(|| format!("{} is not writable", dir.display()))
}

/// Every directory between `dir` and `relative`'s file is a real directory:
/// a link or a file in the way (the learner's, backed up) is removed.
fn real_parents(dir: &Path, relative: &Path) -> anyhow::Result<()> {
    let mut path = dir.to_path_buf();
    for part in relative.parent().into_iter().flat_map(Path::components) {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => std::fs::remove_file(&path)
                .with_context(|| format!("removing {}", path.display()))?,
            Err(_) => {}
        }
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    Ok(())
}

/// The first entry below `dir` (hidden ones too, not `target/`) that is
/// neither a file, a directory nor a link.
fn special_file(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != "target" {
                if let Some(found) = special_file(&entry.path())? {
                    return Ok(Some(found));
                }
            }
        } else if !kind.is_file() && !kind.is_symlink() {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// `.backups/03-chroot-20261127-233012/`, made unique with a suffix.
fn backup_dir(root: &Path, step: &Step) -> PathBuf {
    let base = root.join(".backups").join(format!(
        "{}-{}",
        step.id,
        utc_stamp(std::time::SystemTime::now())
    ));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// `YYYYmmdd-HHMMSS` in UTC: step 04's RFC 3339 time, without separators.
fn utc_stamp(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    step04::image::rfc3339(secs)
        .replace(['-', ':', 'Z'], "")
        .replace('T', "-")
}

/// Copy every file of `from` (hidden ones too; not `target/`) into a new
/// directory `to`. Symbolic links are copied as links.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&source, &target)?;
            }
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {}", source.display()))?;
        } else {
            bail!("{} is not a file, a directory or a link", source.display());
        }
    }
    Ok(())
}

/// Every file of `original` is in `copy`, byte for byte.
fn same_tree(original: &Path, copy: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(original)? {
        let entry = entry?;
        let (a, b) = (entry.path(), copy.join(entry.file_name()));
        let kind = entry.file_type()?;
        let same = if kind.is_dir() {
            if entry.file_name() != "target" {
                same_tree(&a, &b)?;
            }
            true
        } else if kind.is_symlink() {
            std::fs::read_link(&a)? == std::fs::read_link(&b)?
        } else {
            same_files(&a, &b)?
        };
        if !same {
            bail!("{} differs in the backup", b.display());
        }
    }
    Ok(())
}

/// Two files, compared a block at a time (a learner's core dump can be
/// larger than the memory of their VM).
fn same_files(a: &Path, b: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let (mut a, mut b) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// The file at `path` holds exactly `text`.
fn same_bytes(path: &Path, text: &[u8]) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == text.len() as u64)
        && std::fs::read(path).is_ok_and(|bytes| bytes == text)
}

fn remove_empty_parents(dir: &Path, relative: &Path) {
    let mut parent = relative.parent();
    while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
        if std::fs::remove_dir(dir.join(p)).is_err() {
            break;
        }
        parent = p.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    #[test]
    fn the_stamp_is_utc() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(utc_stamp(at(0)), "19700101-000000");
        assert_eq!(utc_stamp(at(1_795_822_097)), "20261127-232817");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229-000000");
    }

    #[test]
    fn edits_are_backed_up_byte_for_byte_before_the_starter_returns() {
        let fx = Fixture::new();
        let step = fx.step("01");
        let lesson = step.lesson_dir(fx.root());
        let edited = "pub fn add(a: u32, b: u32) -> u32 {\n    a + b // mine\n}\n";
        std::fs::write(lesson.join("src/lib.rs"), edited).unwrap();
        std::fs::write(lesson.join("src/notes.rs"), "// my notes\n").unwrap();
        std::fs::write(lesson.join(".my-scratch"), "hidden, but mine\n").unwrap();
        std::fs::remove_file(lesson.join("src/extra.rs")).unwrap();
        let mut seen = None;
        let outcome = reset(fx.root(), &step, |plan, _| {
            seen = Some(format!("{plan:?}"));
            Ok(true)
        })
        .unwrap();
        let Outcome::Reset {
            backup: Some(backup),
        } = outcome
        else {
            panic!("not reset: {outcome:?}")
        };
        assert_eq!(
            seen.unwrap(),
            r#"Plan { changed: ["src/lib.rs"], added: ["src/notes.rs"], missing: ["src/extra.rs"] }"#
        );
        let shown_plan = describe(&Plan {
            changed: vec!["src/lib.rs".into()],
            added: vec!["src/notes.rs".into()],
            missing: vec!["src/extra.rs".into()],
        });
        let stamp = backup
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(step.id.as_str(), "");
        insta::assert_snapshot!(format!(
            "{shown_plan}{}",
            told(fx.root(), &step, &outcome_copy(&backup))
        )
        .replace(&stamp, "-TIME"));
        assert!(backup.starts_with(fx.root().join(".backups")));
        assert_eq!(
            std::fs::read_to_string(backup.join("src/lib.rs")).unwrap(),
            edited
        );
        assert_eq!(
            std::fs::read_to_string(backup.join("src/notes.rs")).unwrap(),
            "// my notes\n"
        );
        assert_eq!(
            std::fs::read_to_string(backup.join(".my-scratch")).unwrap(),
            "hidden, but mine\n"
        );
        // The lesson is its starter again; hidden files of the learner stay.
        assert!(crate::lessons::is_starter(fx.root(), &step).unwrap());
        assert!(lesson.join(".my-scratch").exists());
        // A second reset has nothing to do and makes no second backup.
        let again = reset(fx.root(), &step, |_, _| panic!("must not ask")).unwrap();
        assert_eq!(again, Outcome::AlreadyStarter);
        assert_eq!(
            std::fs::read_dir(fx.root().join(".backups"))
                .unwrap()
                .count(),
            1
        );
    }

    fn outcome_copy(backup: &Path) -> Outcome {
        Outcome::Reset {
            backup: Some(backup.to_path_buf()),
        }
    }

    #[test]
    fn declining_changes_nothing() {
        let fx = Fixture::new();
        let step = fx.step("01");
        let file = step.lesson_dir(fx.root()).join("src/lib.rs");
        std::fs::write(&file, "// work in progress\n").unwrap();
        let outcome = reset(fx.root(), &step, |_, _| Ok(false)).unwrap();
        assert_eq!(outcome, Outcome::Declined);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "// work in progress\n"
        );
        assert!(!fx.root().join(".backups").exists());
    }

    #[test]
    fn no_backup_no_reset() {
        let fx = Fixture::new();
        let step = fx.step("01");
        let file = step.lesson_dir(fx.root()).join("src/lib.rs");
        std::fs::write(&file, "// work in progress\n").unwrap();
        // A file where the backups go: the backup can't be made.
        std::fs::write(fx.root().join(".backups"), "in the way").unwrap();
        let error = reset(fx.root(), &step, |_, _| Ok(true)).unwrap_err();
        assert!(
            format!("{error:#}").contains("nothing was reset"),
            "{error:#}"
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "// work in progress\n"
        );
    }

    /// A place outside the workspace that must come through untouched.
    struct Outside(PathBuf);

    impl Outside {
        fn new(name: &str) -> Outside {
            let dir =
                std::env::temp_dir().join(format!("xtask-outside-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            std::fs::write(dir.join("precious.txt"), "precious\n").unwrap();
            std::fs::write(dir.join("sub/deep.txt"), "deep\n").unwrap();
            Outside(dir)
        }

        fn intact(&self) {
            assert_eq!(
                std::fs::read_to_string(self.0.join("precious.txt")).unwrap(),
                "precious\n"
            );
            assert_eq!(
                std::fs::read_to_string(self.0.join("sub/deep.txt")).unwrap(),
                "deep\n"
            );
        }
    }

    impl Drop for Outside {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn links_are_backed_up_and_removed_as_links_never_followed() {
        let fx = Fixture::new();
        let step = fx.step("01");
        let lesson = step.lesson_dir(fx.root());
        let outside = Outside::new("links");
        // A link to a directory outside, a loop, and the learner's lib.rs
        // kept outside behind a link.
        std::os::unix::fs::symlink(&outside.0, lesson.join("ext")).unwrap();
        std::os::unix::fs::symlink(".", lesson.join("loop")).unwrap();
        let mine = outside.0.join("my-lib.rs");
        std::fs::write(&mine, "// MY WORK\n").unwrap();
        std::fs::remove_file(lesson.join("src/lib.rs")).unwrap();
        std::os::unix::fs::symlink(&mine, lesson.join("src/lib.rs")).unwrap();
        // And `src` of another kind: the starter's extra.rs lives in it.
        let outcome = reset(fx.root(), &step, |plan, _| {
            assert_eq!(plan.changed, [PathBuf::from("src/lib.rs")]);
            assert_eq!(plan.added, [PathBuf::from("ext"), PathBuf::from("loop")]);
            Ok(true)
        })
        .unwrap();
        outside.intact();
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "// MY WORK\n");
        assert!(crate::lessons::is_starter(fx.root(), &step).unwrap());
        assert!(std::fs::symlink_metadata(lesson.join("src/lib.rs"))
            .unwrap()
            .is_file());
        let Outcome::Reset {
            backup: Some(backup),
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!(std::fs::read_link(backup.join("ext")).unwrap(), outside.0);
        assert_eq!(std::fs::read_link(backup.join("src/lib.rs")).unwrap(), mine);
    }

    #[test]
    fn a_linked_source_dir_is_replaced_not_written_through() {
        let fx = Fixture::new();
        let step = fx.step("01");
        let lesson = step.lesson_dir(fx.root());
        let outside = Outside::new("srcdir");
        std::fs::remove_dir_all(lesson.join("src")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("sub"), lesson.join("src")).unwrap();
        reset(fx.root(), &step, |_, _| Ok(true)).unwrap();
        outside.intact();
        assert_eq!(std::fs::read_dir(outside.0.join("sub")).unwrap().count(), 1);
        assert!(crate::lessons::is_starter(fx.root(), &step).unwrap());
    }

    #[test]
    fn a_pipe_in_the_lesson_is_refused_before_anything() {
        let fx = Fixture::new();
        let step = fx.step("01");
        let lesson = step.lesson_dir(fx.root());
        std::fs::write(lesson.join("src/lib.rs"), "// mine\n").unwrap();
        nix::unistd::mkfifo(&lesson.join("src/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = reset(fx.root(), &step, |_, _| panic!("must not ask")).unwrap_err();
        assert!(
            format!("{error:#}").contains("src/pipe is not a file"),
            "{error:#}"
        );
        assert_eq!(
            std::fs::read_to_string(lesson.join("src/lib.rs")).unwrap(),
            "// mine\n"
        );
        assert!(!fx.root().join(".backups").exists());
    }

    #[test]
    fn a_missing_lesson_is_written_with_no_backup_claimed() {
        let fx = Fixture::new();
        let step = fx.step("01");
        std::fs::remove_dir_all(step.lesson_dir(fx.root())).unwrap();
        let outcome = reset(fx.root(), &step, |_, backup| {
            assert!(backup.is_none());
            Ok(true)
        })
        .unwrap();
        assert_eq!(outcome, Outcome::Reset { backup: None });
        assert!(told(fx.root(), &step, &outcome).contains("nothing to back up"));
        assert!(crate::lessons::is_starter(fx.root(), &step).unwrap());
    }
}
