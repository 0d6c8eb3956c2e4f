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
        match std::fs::read(dir.join(relative)) {
            Ok(bytes) if bytes == text.as_bytes() => {}
            Ok(_) => plan.changed.push(relative.clone()),
            Err(_) => plan.missing.push(relative.clone()),
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
            bail!(
                "not resetting lessons/{} without asking: run it again with --yes (your version is backed up first)",
                step.id
            );
        }
        print!(
            "Reset it? Your version is kept in {} first. [y/N] ",
            shown(root, backup)
        );
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
        Outcome::Reset { backup } => {
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
    Reset { backup: PathBuf },
}

/// Reset `step`'s lesson if `confirm(plan, backup dir)` says so.
pub fn reset(
    root: &Path,
    step: &Step,
    confirm: impl FnOnce(&Plan, &Path) -> anyhow::Result<bool>,
) -> anyhow::Result<Outcome> {
    let dir = step.lesson_dir(root);
    let starter = lessons::starter(root, step)?;
    let plan = plan(&dir, &starter)?;
    if plan.is_empty() {
        return Ok(Outcome::AlreadyStarter);
    }
    let backup = backup_dir(root, step);
    if !confirm(&plan, &backup)? {
        return Ok(Outcome::Declined);
    }
    if dir.exists() {
        copy_tree(&dir, &backup)
            .and_then(|()| same_tree(&dir, &backup))
            .with_context(|| {
                format!(
                    "backing up lessons/{} to {} failed, so nothing was reset",
                    step.id,
                    shown(root, &backup)
                )
            })?;
    }
    for relative in &plan.added {
        std::fs::remove_file(dir.join(relative))?;
        remove_empty_parents(&dir, relative);
    }
    for (relative, text) in &starter {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
        std::fs::write(&path, text)?;
    }
    Ok(Outcome::Reset { backup })
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
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {}", source.display()))?;
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
        if kind.is_dir() {
            if entry.file_name() != "target" {
                same_tree(&a, &b)?;
            }
        } else if kind.is_symlink() {
            if std::fs::read_link(&a)? != std::fs::read_link(&b)? {
                bail!("{} differs in the backup", b.display());
            }
        } else if std::fs::read(&a)? != std::fs::read(&b)? {
            bail!("{} differs in the backup", b.display());
        }
    }
    Ok(())
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
        let Outcome::Reset { backup } = outcome else {
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
            backup: backup.to_path_buf(),
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
}
