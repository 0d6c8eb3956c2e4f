//! The steps of the workshop, as found on disk: `solutions/NN-name`.

use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `01-fork`
    pub id: String,
    /// `01`
    pub number: String,
}

impl Step {
    pub fn solution(&self) -> String {
        format!("solution-{}", self.number)
    }

    pub fn lesson(&self) -> String {
        format!("lesson-{}", self.number)
    }

    pub fn solution_dir(&self, root: &Path) -> PathBuf {
        root.join("solutions").join(&self.id)
    }

    pub fn lesson_dir(&self, root: &Path) -> PathBuf {
        root.join("lessons").join(&self.id)
    }
}

/// Every step, in order.
pub fn all(root: &Path) -> anyhow::Result<Vec<Step>> {
    let dir = root.join("solutions");
    let mut steps = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let id = entry?.file_name().to_string_lossy().into_owned();
        if let Some((number, _)) = id.split_once('-') {
            if number.len() == 2 && number.chars().all(|c| c.is_ascii_digit()) {
                steps.push(Step {
                    number: number.to_string(),
                    id,
                });
            }
        }
    }
    steps.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(steps)
}

/// The step a learner means by `3`, `03`, `03-chroot` or `lesson-03`.
pub fn find(root: &Path, wanted: &str) -> anyhow::Result<Step> {
    let steps = all(root)?;
    // What tab completion gives: `lessons/03-chroot/`.
    let trimmed = wanted.trim_end_matches('/');
    let trimmed = trimmed
        .strip_prefix("lessons/")
        .or_else(|| trimmed.strip_prefix("solutions/"))
        .unwrap_or(trimmed);
    let key = trimmed
        .strip_prefix("lesson-")
        .or_else(|| trimmed.strip_prefix("solution-"))
        .unwrap_or(trimmed);
    let number = match key.parse::<u32>() {
        Ok(n) if key.len() <= 2 => format!("{n:02}"),
        _ => String::new(),
    };
    steps
        .iter()
        .find(|s| s.id == key || s.number == number)
        .cloned()
        .with_context(|| {
            let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
            let shown: String = wanted.chars().take(40).collect();
            format!("no step {shown:?}; the steps are {}", ids.join(", "))
        })
}

/// The file of a step's graded checks: `tests/03-chroot.rs`.
pub fn checks_file(root: &Path, step: &Step) -> PathBuf {
    root.join("tests").join(format!("{}.rs", step.id))
}
