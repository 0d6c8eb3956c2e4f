//! Starters from solutions: one source of truth.
//!
//! Each `solutions/NN-name` is copied to `lessons/NN-name` with three changes:
//!
//! 1. every region between `// BEGIN SOLUTION` and `// END SOLUTION` becomes
//!    `todo!("lesson-NN: <the TODO line above it>");` — the `// TODO(lesson-NN):`
//!    comment and its hint lines stay, so the learner reads the goal;
//! 2. the package and binary `solution-NN` become `lesson-NN`;
//! 3. the starter's manifest quiets the lints that only point at the gaps
//!    (unused parameters, unreachable code after `todo!()`).

use crate::files::walk;
use crate::steps::{self, Step};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const BEGIN: &str = "// BEGIN SOLUTION";
const END: &str = "// END SOLUTION";

const LESSON_LINTS: &str = "
# Starter only (written by `cargo xtask lessons`): the parts you write are
# todo!() for now, so unused parameters and the code after each todo!() would
# warn. These lines also quiet your own unused variables and unreachable code:
# delete them once the step passes to see every warning.
[lints.rust]
unused = \"allow\"
unreachable_code = \"allow\"
";

/// The reference's unit tests call the parts the learner writes: in the
/// starter they would fail first, and `cargo test` would stop before the
/// graded checks, which are the ones that explain.
const LESSON_LIB: &str = "[lib]
# Starter only: the reference's unit tests would stop at your todo!()s before
# the graded checks run; the checks say what is missing, and how to fix it.
test = false
doctest = false
";

/// Turn a solution source file into its starter. Lines between
/// `// BEGIN REFERENCE ONLY` and `// END REFERENCE ONLY` (unit tests that
/// hold the reference to its own design, which the learner's may differ
/// from) are left out, the markers' lines included.
pub fn starter_source(text: &str, number: &str, file: &str) -> anyhow::Result<String> {
    cut_regions(
        &without_reference_only_source(text, file)?,
        number,
        file,
        |_| true,
    )
}

/// A source file without its `// BEGIN REFERENCE ONLY` .. `// END
/// REFERENCE ONLY` parts.
fn without_reference_only_source(text: &str, file: &str) -> anyhow::Result<String> {
    let mut kept = String::new();
    let mut open: Option<usize> = None;
    // Right after a part left out: the blank lines around it must not
    // become two in a row, nor one before a closing brace (rustfmt's form).
    let mut just_closed = false;
    for (index, line) in text.lines().enumerate() {
        match line.trim() {
            "// BEGIN REFERENCE ONLY" if open.is_none() => open = Some(index + 1),
            "// END REFERENCE ONLY" if open.is_some() => {
                open = None;
                just_closed = true;
            }
            "// BEGIN REFERENCE ONLY" | "// END REFERENCE ONLY" => {
                bail!("{file}:{}: reference-only markers out of order", index + 1)
            }
            _ if open.is_some() => {}
            trimmed => {
                let after_blank = kept.is_empty() || kept.ends_with("\n\n");
                if just_closed && trimmed.is_empty() && after_blank {
                    continue;
                }
                if just_closed && trimmed.starts_with('}') && kept.ends_with("\n\n") {
                    kept.pop();
                }
                just_closed = false;
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    if let Some(start) = open {
        bail!("{file}:{start}: `// BEGIN REFERENCE ONLY` is never closed");
    }
    Ok(kept)
}

/// The reference with only its `which`-th region (counted from 0, in the
/// file's order) put back to the starter's `todo!()`: what `verify` grades
/// to prove that region is graded. The same transformation as the starter's.
pub fn knock_out(text: &str, number: &str, file: &str, which: usize) -> anyhow::Result<String> {
    cut_regions(text, number, file, |index| index == which)
}

/// Replace the regions `cut(index)` picks by their `todo!()`; keep the
/// others as they are, markers and all.
fn cut_regions(
    text: &str,
    number: &str,
    file: &str,
    cut: impl Fn(usize) -> bool,
) -> anyhow::Result<String> {
    let tag = format!("// TODO(lesson-{number}):");
    let mut out = String::new();
    let mut in_region: Option<usize> = None;
    let mut last_todo: Option<String> = None;
    // The index of the next region, and whether the open one is cut.
    let mut next_region = 0;
    let mut cutting = false;
    for (index, line) in text.lines().enumerate() {
        let at = || format!("{file}:{}", index + 1);
        let trimmed = line.trim_start();
        if trimmed.starts_with(BEGIN) {
            if in_region.is_some() {
                bail!("{}: `{BEGIN}` inside another region", at());
            }
            let Some(todo) = last_todo.take() else {
                bail!(
                    "{}: `{BEGIN}` needs a `{tag} <goal>` comment right above it",
                    at()
                );
            };
            in_region = Some(index + 1);
            cutting = cut(next_region);
            next_region += 1;
            if !cutting {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            let indent = &line[..line.len() - trimmed.len()];
            // todo!'s message is a format string: braces are doubled.
            let message = format!("lesson-{number}: {todo}")
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('{', "{{")
                .replace('}', "}}");
            let call = format!("{indent}todo!(\"{message}\");");
            if call.chars().count() <= 100 {
                out.push_str(&call);
                out.push('\n');
            } else {
                // The shape rustfmt gives a call too long for one line, so
                // `cargo fmt --check` is happy with generated starters.
                out.push_str(&format!(
                    "{indent}todo!(\n{indent}    \"{message}\"\n{indent});\n"
                ));
            }
            continue;
        }
        if trimmed.starts_with(END) {
            if in_region.take().is_none() {
                bail!("{}: `{END}` without a `{BEGIN}`", at());
            }
            if !cutting {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if in_region.is_some() {
            if !cutting {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if let Some(goal) = trimmed.strip_prefix(&tag) {
            last_todo = Some(goal.trim().to_string());
        } else if trimmed.contains("TODO(lesson-") {
            bail!(
                "{}: a TODO for another step in step {number}: {trimmed}",
                at()
            );
        } else if !trimmed.starts_with("//") {
            // The TODO must be in the comment block right above the region.
            last_todo = None;
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(start) = in_region {
        bail!("{file}:{start}: `{BEGIN}` is never closed by `{END}`");
    }
    Ok(out)
}

/// Turn a solution manifest into the starter's. Lines between
/// `# BEGIN REFERENCE ONLY` and `# END REFERENCE ONLY` (tests that hold the
/// finished reference to more than the graded checks) are left out.
pub fn starter_manifest(text: &str, number: &str) -> String {
    let solution = format!("\"solution-{number}\"");
    let lesson = format!("\"lesson-{number}\"");
    let text = without_reference_only(text).trim_end().to_string() + "\n";
    let mut out = text
        .replace(&solution, &lesson)
        .replacen("[lib]\n", LESSON_LIB, 1);
    out.push_str(LESSON_LINTS);
    out
}

/// A manifest without its lines between `# BEGIN REFERENCE ONLY` and
/// `# END REFERENCE ONLY` (the markers' lines included).
pub fn without_reference_only(text: &str) -> String {
    let mut kept = String::new();
    let mut skipping = false;
    for line in text.lines() {
        match line.trim() {
            "# BEGIN REFERENCE ONLY" => skipping = true,
            "# END REFERENCE ONLY" => skipping = false,
            _ if skipping => {}
            _ => {
                kept.push_str(line);
                kept.push('\n');
            }
        }
    }
    kept
}

/// Every file of a step's starter, by path relative to the step directory.
fn render(root: &Path, step: &Step) -> anyhow::Result<BTreeMap<PathBuf, String>> {
    let source = step.solution_dir(root);
    let mut files = BTreeMap::new();
    let mut regions = 0;
    for path in walk(&source)? {
        let relative = path.strip_prefix(&source)?.to_path_buf();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let shown = format!("solutions/{}/{}", step.id, relative.display());
        let rendered = if relative == Path::new("Cargo.toml") {
            starter_manifest(&text, &step.number)
        } else if relative.extension().is_some_and(|e| e == "rs") {
            regions += text
                .lines()
                .filter(|l| l.trim_start().starts_with(BEGIN))
                .count();
            starter_source(&text, &step.number, &shown)?
        } else {
            text
        };
        files.insert(relative, rendered);
    }
    if regions == 0 {
        bail!(
            "solutions/{}: no `{BEGIN}` region: the starter would be the solution",
            step.id
        );
    }
    Ok(files)
}

/// Every file of a step's starter (relative path → text), as
/// `cargo xtask lessons` writes it.
pub fn starter(root: &Path, step: &Step) -> anyhow::Result<BTreeMap<PathBuf, String>> {
    render(root, step)
}

/// Whether the learner's lesson is still exactly its starter.
pub fn is_starter(root: &Path, step: &Step) -> anyhow::Result<bool> {
    let dir = step.lesson_dir(root);
    let files = render(root, step)?;
    let present = walk(&dir)?;
    Ok(present.len() == files.len()
        && files.iter().all(|(relative, text)| {
            std::fs::read_to_string(dir.join(relative)).ok().as_deref() == Some(text.as_str())
        }))
}

/// A `todo!()` still in a learner's lesson.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    /// `lessons/03-chroot/src/rootfs.rs:48`
    pub place: String,
    /// What to write: the TODO's goal.
    pub goal: String,
}

/// The `todo!()`s left in a step's lesson, file by file.
pub fn todos(root: &Path, step: &Step) -> anyhow::Result<Vec<Todo>> {
    let dir = step.lesson_dir(root);
    let marker = format!("\"lesson-{}: ", step.number);
    let mut found = Vec::new();
    for path in walk(&dir)? {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let Some(at) = line.find(&marker) else {
                continue;
            };
            // `todo!("...")` on one line, or rustfmt's `todo!(` above it.
            let call = if line.contains("todo!(") {
                index
            } else if index > 0 && lines[index - 1].trim_end().ends_with("todo!(") {
                index - 1
            } else {
                continue;
            };
            let goal = line[at + marker.len()..]
                .trim_end()
                .trim_end_matches(';')
                .trim_end_matches(')')
                .trim_end_matches('"')
                .replace("{{", "{")
                .replace("}}", "}")
                .replace("\\\"", "\"");
            found.push(Todo {
                place: format!(
                    "lessons/{}/{}:{}",
                    step.id,
                    path.strip_prefix(&dir)?.display(),
                    call + 1
                ),
                goal,
            });
        }
    }
    Ok(found)
}

/// A part of the reference that the starter leaves to the learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// `solutions/03-chroot/src/rootfs.rs:31`, the first line of the code.
    pub place: String,
    pub goal: String,
    /// The reference's code, as indented in its file.
    pub code: String,
    /// The file, relative to the step's directory: `src/rootfs.rs`.
    pub file: PathBuf,
    /// Which region of its file this is, counted from 0 ([`knock_out`]).
    pub index_in_file: usize,
    /// The line of `// BEGIN SOLUTION` (from 1) and of `// END SOLUTION`.
    pub begin: usize,
    pub end: usize,
    /// The function it sits in: `spawn`, `Supervisor::wait`.
    pub function: String,
}

impl Region {
    /// The lines the learner writes: neither blank nor comments.
    pub fn code_lines(&self) -> usize {
        count_code_lines(&self.code)
    }
}

/// Lines of Rust that are neither blank nor only a comment.
pub fn count_code_lines(code: &str) -> usize {
    code.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

/// The function whose body holds line `at` (from 0) of `lines`: the last
/// `fn NAME` above it, with `Type::` when that fn sits in an `impl Type`.
pub fn enclosing_function(lines: &[&str], at: usize) -> String {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let name_after = |line: &str, word: &str| -> Option<String> {
        let at = line.find(word)?;
        let name: String = line[at + word.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    };
    let Some((fn_at, name)) = (0..at.min(lines.len())).rev().find_map(|i| {
        let t = lines[i].trim_start();
        let is_fn = !t.starts_with("//")
            && (t.starts_with("fn ") || t.contains(" fn ") || t.starts_with("pub fn "));
        if is_fn {
            name_after(t, "fn ").map(|n| (i, n))
        } else {
            None
        }
    }) else {
        return String::new();
    };
    let depth = indent(lines[fn_at]);
    if depth == 0 {
        return name;
    }
    let owner = (0..fn_at).rev().find_map(|i| {
        let line = lines[i];
        let t = line.trim_start();
        if t.is_empty() || indent(line) >= depth {
            return None;
        }
        if !t.starts_with("impl") {
            return Some(None);
        }
        // `impl<T> Trait for Type<T> {` → `Type`; `impl Type {` → `Type`.
        let head = t.trim_end_matches('{').trim();
        let head = head.rsplit(" for ").next().unwrap_or(head);
        let head = head.strip_prefix("impl").unwrap_or(head);
        let head = if head.starts_with('<') {
            head.split_once("> ").map_or(head, |(_, rest)| rest)
        } else {
            head
        };
        let ty: String = head
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        Some((!ty.is_empty()).then_some(ty))
    });
    match owner.flatten() {
        Some(ty) => format!("{ty}::{name}"),
        None => name,
    }
}

/// Every region of a step's reference, in file order.
pub fn regions(root: &Path, step: &Step) -> anyhow::Result<Vec<Region>> {
    let source = step.solution_dir(root);
    let mut regions = Vec::new();
    for path in walk(&source)? {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let relative = path.strip_prefix(&source)?.to_path_buf();
        regions.extend(regions_of(&text, &step.id, &step.number, &relative));
    }
    Ok(regions)
}

/// The regions of one file of step `id`, `relative` to the step's directory.
pub fn regions_of(text: &str, id: &str, number: &str, relative: &Path) -> Vec<Region> {
    let tag = format!("// TODO(lesson-{number}):");
    let shown = format!("solutions/{id}/{}", relative.display());
    let lines: Vec<&str> = text.lines().collect();
    let mut regions = Vec::new();
    let mut goal = String::new();
    let mut open: Option<Region> = None;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(g) = trimmed.strip_prefix(&tag) {
            goal = g.trim().to_string();
        } else if trimmed.starts_with(BEGIN) {
            open = Some(Region {
                place: format!("{shown}:{}", index + 2),
                goal: std::mem::take(&mut goal),
                code: String::new(),
                file: relative.to_path_buf(),
                index_in_file: regions.len(),
                begin: index + 1,
                end: 0,
                function: enclosing_function(&lines, index),
            });
        } else if trimmed.starts_with(END) {
            if let Some(mut region) = open.take() {
                region.end = index + 1;
                regions.push(region);
            }
        } else if let Some(region) = open.as_mut() {
            region.code.push_str(line);
            region.code.push('\n');
        }
    }
    regions
}

/// Where a step keeps the code it gives: `src/given/`.
const GIVEN: &str = "src/given";

/// The layout rule of a step with a `src/given/` directory: given code is
/// visibly given. Files under `src/given/` hold no region; every other
/// source file (but `lib.rs` and `main.rs`) holds at least one. A step
/// without `src/given/` is not held to it.
pub fn layout_problems(root: &Path, step: &Step) -> anyhow::Result<Vec<String>> {
    let source = step.solution_dir(root);
    if !source.join(GIVEN).is_dir() {
        return Ok(Vec::new());
    }
    let mut problems = Vec::new();
    for path in walk(&source.join("src"))? {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&source)?;
        let text = std::fs::read_to_string(&path)?;
        let count = regions_of(&text, &step.id, &step.number, relative).len();
        let shown = format!("solutions/{}/{}", step.id, relative.display());
        let entry = relative
            .file_name()
            .is_some_and(|n| n == "lib.rs" || n == "main.rs")
            && relative.parent() == Some(Path::new("src"));
        if relative.starts_with(GIVEN) {
            if count > 0 {
                problems.push(format!(
                    "{shown}: {count} learner region(s) in given code; a file under {GIVEN}/ holds none (move the region's function to a file of the learner's)"
                ));
            }
        } else if count == 0 && !entry {
            problems.push(format!(
                "{shown}: no learner region; code the learner does not write lives under {GIVEN}/"
            ));
        }
    }
    Ok(problems)
}

/// `cargo xtask lessons`: write every starter.
pub fn generate(root: &Path) -> anyhow::Result<()> {
    for (step, count) in generate_quietly(root)? {
        println!(
            "lessons/{}: {count} files from solutions/{}",
            step.id, step.id
        );
    }
    Ok(())
}

/// Write every starter; say how many files each has.
pub fn generate_quietly(root: &Path) -> anyhow::Result<Vec<(Step, usize)>> {
    let mut written = Vec::new();
    for step in steps::all(root)? {
        let dir = step.lesson_dir(root);
        let files = render(root, &step)?;
        if dir.exists() {
            for stale in walk(&dir)? {
                if !files.contains_key(stale.strip_prefix(&dir)?) {
                    std::fs::remove_file(&stale)?;
                }
            }
        }
        for (relative, text) in &files {
            let path = dir.join(relative);
            std::fs::create_dir_all(path.parent().unwrap())?;
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text)?;
            }
        }
        written.push((step, files.len()));
    }
    Ok(written)
}

/// `cargo xtask lessons --check`: fail if any starter differs from what
/// `cargo xtask lessons` would write.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    let mut layout = Vec::new();
    for step in steps::all(root)? {
        layout.extend(layout_problems(root, &step)?);
        let dir = step.lesson_dir(root);
        let files = render(root, &step)?;
        for (relative, text) in &files {
            if std::fs::read_to_string(dir.join(relative)).ok().as_deref() != Some(text.as_str()) {
                stale.push(format!("lessons/{}/{}", step.id, relative.display()));
            }
        }
        if dir.exists() {
            for extra in walk(&dir)? {
                if !files.contains_key(extra.strip_prefix(&dir)?) {
                    stale.push(format!(
                        "lessons/{}/{} (not in the solution)",
                        step.id,
                        extra.strip_prefix(&dir)?.display()
                    ));
                }
            }
        }
    }
    if !layout.is_empty() {
        bail!(
            "given code must be visibly given (a step with src/given/):\n  {}",
            layout.join("\n  ")
        );
    }
    if stale.is_empty() {
        println!("lessons: every starter matches its solution");
        Ok(())
    } else {
        bail!(
            "these starters are stale; run `cargo xtask lessons` and commit the result:\n  {}",
            stale.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOLUTION: &str = r#"fn spawn() -> Pid {
    let x = 1;
    // TODO(lesson-01): fork, then "exec" the command
    // Hint: read fork's Safety section.
    // BEGIN SOLUTION
    match unsafe { fork() } {
        x => x,
    }
    // END SOLUTION
}
"#;

    #[test]
    fn a_region_becomes_todo_with_the_goal() {
        let starter = starter_source(SOLUTION, "01", "s.rs").unwrap();
        assert_eq!(
            starter,
            r#"fn spawn() -> Pid {
    let x = 1;
    // TODO(lesson-01): fork, then "exec" the command
    // Hint: read fork's Safety section.
    todo!("lesson-01: fork, then \"exec\" the command");
}
"#
        );
    }

    #[test]
    fn braces_in_the_goal_are_not_format_arguments() {
        let solution = "fn f() {\n    // TODO(lesson-04): open /proc/{pid}/ns\n    // BEGIN SOLUTION\n    x\n    // END SOLUTION\n}\n";
        let starter = starter_source(solution, "04", "s.rs").unwrap();
        assert!(starter.contains("todo!(\"lesson-04: open /proc/{{pid}}/ns\");"));
    }

    #[test]
    fn a_file_without_regions_is_copied() {
        let text = "fn main() {}\n// a comment\n";
        assert_eq!(starter_source(text, "01", "m.rs").unwrap(), text);
    }

    #[test]
    fn a_region_needs_its_todo_right_above() {
        let text = "// TODO(lesson-01): goal\nlet a = 1;\n// BEGIN SOLUTION\nx\n// END SOLUTION\n";
        let error = starter_source(text, "01", "s.rs").unwrap_err().to_string();
        assert!(error.contains("s.rs:3"), "{error}");
    }

    #[test]
    fn unbalanced_and_foreign_markers_are_errors() {
        let open = "// TODO(lesson-01): g\n// BEGIN SOLUTION\nx\n";
        assert!(starter_source(open, "01", "s.rs")
            .unwrap_err()
            .to_string()
            .contains("never closed"));
        let stray = "x\n// END SOLUTION\n";
        assert!(starter_source(stray, "01", "s.rs").is_err());
        let foreign = "// TODO(lesson-02): g\n// BEGIN SOLUTION\nx\n// END SOLUTION\n";
        assert!(starter_source(foreign, "01", "s.rs")
            .unwrap_err()
            .to_string()
            .contains("another step"));
    }

    #[test]
    fn reference_only_tests_stay_out_of_the_starter_source() {
        let text = "fn f() {}\n#[cfg(test)]\nmod tests {\n    // BEGIN REFERENCE ONLY\n    #[test]\n    fn shape() {}\n    // END REFERENCE ONLY\n    #[test]\n    fn any() {}\n}\n";
        let starter = starter_source(text, "06", "x.rs").unwrap();
        assert!(!starter.contains("shape") && !starter.contains("REFERENCE"));
        assert!(starter.contains("fn any()"));
        assert!(starter_source("// BEGIN REFERENCE ONLY\n", "06", "x.rs").is_err());
        // The blank lines around a part left out stay single, as rustfmt
        // wants them.
        let between = "mod t {\n    fn a() {}\n\n    // BEGIN REFERENCE ONLY\n    fn b() {}\n    // END REFERENCE ONLY\n\n    fn c() {}\n}\n";
        assert_eq!(
            without_reference_only_source(between, "x.rs").unwrap(),
            "mod t {\n    fn a() {}\n\n    fn c() {}\n}\n"
        );
        let last = "mod t {\n    fn a() {}\n\n    // BEGIN REFERENCE ONLY\n    fn b() {}\n    // END REFERENCE ONLY\n}\n";
        assert_eq!(
            without_reference_only_source(last, "x.rs").unwrap(),
            "mod t {\n    fn a() {}\n}\n"
        );
        let kept = knock_out(text, "06", "x.rs", 0).unwrap();
        assert!(kept.contains("fn shape()"), "the reference keeps them");
    }

    #[test]
    fn reference_only_parts_stay_out_of_the_starter() {
        let manifest = "[package]\nname = \"solution-05\"\n\n# BEGIN REFERENCE ONLY\n[[test]]\nname = \"reliability\"\n# END REFERENCE ONLY\n\n[dependencies]\n";
        let starter = starter_manifest(manifest, "05");
        assert!(!starter.contains("reliability"), "{starter}");
        assert!(starter.contains("[dependencies]"));
    }

    #[test]
    fn the_manifest_renames_only_this_step() {
        let manifest = "[package]\nname = \"solution-02\"\n[lib]\nname = \"step02\"\n[[bin]]\nname = \"solution-02\"\n[dependencies]\nsolution-01.workspace = true\n";
        let starter = starter_manifest(manifest, "02");
        assert!(starter.starts_with("[package]\nname = \"lesson-02\"\n[lib]\n"));
        assert!(starter.contains(
            "test = false\ndoctest = false\nname = \"step02\"\n[[bin]]\nname = \"lesson-02\"\n"
        ));
        assert!(starter.contains("solution-01.workspace = true"));
        assert!(starter.contains("[lints.rust]"));
    }
}

#[cfg(test)]
mod knock_out_tests {
    use super::*;

    const TWO: &str = "fn a() -> u32 {\n    // TODO(lesson-01): return one\n    // BEGIN SOLUTION\n    1\n    // END SOLUTION\n}\n\nimpl Pair {\n    pub fn b(&self) -> u32 {\n        // TODO(lesson-01): return two\n        // BEGIN SOLUTION\n        2\n        // END SOLUTION\n    }\n}\n";

    #[test]
    fn one_region_is_knocked_out_the_others_stay() {
        let first = knock_out(TWO, "01", "s.rs", 0).unwrap();
        assert!(
            first.contains("    todo!(\"lesson-01: return one\");\n"),
            "{first}"
        );
        assert!(
            first.contains("        // BEGIN SOLUTION\n        2\n        // END SOLUTION\n"),
            "{first}"
        );
        let second = knock_out(TWO, "01", "s.rs", 1).unwrap();
        assert!(
            second.contains("    // BEGIN SOLUTION\n    1\n    // END SOLUTION\n"),
            "{second}"
        );
        assert!(
            second.contains("        todo!(\"lesson-01: return two\");\n"),
            "{second}"
        );
        // Knocking out every region, one at a time, is the starter's change.
        let starter = starter_source(TWO, "01", "s.rs").unwrap();
        assert!(
            first.contains("todo!(\"lesson-01: return one\")")
                && starter.contains("todo!(\"lesson-01: return one\")")
        );
        // No such region: the reference unchanged.
        assert_eq!(knock_out(TWO, "01", "s.rs", 2).unwrap(), TWO);
    }

    #[test]
    fn regions_know_their_function_file_and_lines() {
        let regions = regions_of(TWO, "01-x", "01", Path::new("src/s.rs"));
        assert_eq!(regions.len(), 2);
        assert_eq!(
            (
                regions[0].function.as_str(),
                regions[0].begin,
                regions[0].end
            ),
            ("a", 3, 5)
        );
        assert_eq!(regions[1].function, "Pair::b");
        assert_eq!(regions[1].index_in_file, 1);
        assert_eq!(regions[1].place, "solutions/01-x/src/s.rs:12");
        assert_eq!(regions[1].code_lines(), 1);
    }

    #[test]
    fn code_lines_leave_out_comments_and_blanks() {
        assert_eq!(count_code_lines("    // why\n\n    let a = 1;\n    a\n"), 2);
    }

    #[test]
    fn trait_impls_name_their_type() {
        let text = "impl<T> Display for Wrapper<T> {\n    fn fmt(&self) {\n        x\n    }\n}\n";
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(enclosing_function(&lines, 2), "Wrapper::fmt");
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use crate::testing::Fixture;

    #[test]
    fn given_code_is_visibly_given_once_a_step_has_src_given() {
        let fx = Fixture::new();
        // No src/given/: not held to the rule.
        assert!(layout_problems(fx.root(), &fx.step("01"))
            .unwrap()
            .is_empty());
        fx.write("solutions/01-add/src/given/records.rs", "pub fn f() {}\n");
        fx.write(
            "solutions/01-add/src/given/leak.rs",
            "fn g() {\n    // TODO(lesson-01): g\n    // BEGIN SOLUTION\n    x\n    // END SOLUTION\n}\n",
        );
        let problems = layout_problems(fx.root(), &fx.step("01")).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        // `extra.rs` holds no region and is outside src/given/; lib.rs holds
        // one (and needn't); the given file with a region is named.
        assert!(
            problems[0].starts_with("solutions/01-add/src/extra.rs: no learner region"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with(
                "solutions/01-add/src/given/leak.rs: 1 learner region(s) in given code"
            ),
            "{problems:?}"
        );
        // lessons --check refuses it.
        let error = check(fx.root()).unwrap_err().to_string();
        assert!(
            error.contains("given code must be visibly given"),
            "{error}"
        );
    }
}
