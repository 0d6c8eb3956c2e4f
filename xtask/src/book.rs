//! `cargo xtask book`: build the book with mdbook, then check it.
//!
//! - every relative link and image in the rendered HTML points at a file
//!   that exists, and every `#fragment` at an id in that file;
//! - every `{{#include}}` was resolved (none left in the output);
//! - no page holds a merge conflict's markers;
//! - every graded check's hint points at a section that exists;
//! - every generated number (`<!-- generated: NAME -->`) is up to date
//!   (`cargo xtask book --write` writes them; see [`crate::numbers`]).
//!
//! Links to other sites are listed, not fetched: CI has no network.

use crate::{cargo, steps};
use anyhow::{bail, Context};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn build_and_check(root: &Path) -> anyhow::Result<()> {
    let book = root.join("book");
    let output = Command::new("mdbook")
        .arg("build")
        .arg(&book)
        .output()
        .context("cannot run mdbook: install it with `cargo install --locked mdbook`")?;
    let log = String::from_utf8_lossy(&output.stderr);
    eprint!("{log}");
    if !output.status.success() {
        bail!("mdbook build failed");
    }
    // A warning is a page that renders wrong: an unclosed code fence, say,
    // which swallows the sections after it (and un-collapses a solution).
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    if !warnings.is_empty() {
        bail!(
            "mdbook warned; the book must build cleanly:\n  {}",
            warnings.join("\n  ")
        );
    }
    let out = book.join("book");
    let mut problems = includes(&book.join("src"))?;
    // The quoted numbers (checks, points, parts, lines) are the generated ones.
    problems.extend(crate::numbers::update(root, false)?);
    let mut external = BTreeSet::new();
    let mut ids: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
    let pages = html_files(&out)?;
    for page in &pages {
        let html = std::fs::read_to_string(page)?;
        let shown = page.strip_prefix(&out)?.display().to_string();
        if html.contains("{{#include") || html.contains("{{ #include") {
            problems.push(format!("{shown}: an {{{{#include}}}} was not resolved"));
        }
        for link in links(&html) {
            if link.starts_with("http://") || link.starts_with("https://") {
                external.insert(link);
                continue;
            }
            if link.starts_with("mailto:")
                || link.starts_with("javascript:")
                || link.starts_with("data:")
            {
                continue;
            }
            let (path, fragment) = link
                .split_once('#')
                .map_or((link.as_str(), None), |(p, f)| (p, Some(f)));
            let path = path.split('?').next().unwrap_or_default();
            let target = if path.is_empty() {
                page.clone()
            } else if let Some(from_root) = path.strip_prefix('/') {
                out.join(from_root) // site-absolute: the book is served at `/`
            } else {
                page.parent().unwrap().join(path)
            };
            let target = if target.is_dir() {
                target.join("index.html")
            } else {
                target
            };
            if !target.exists() {
                problems.push(format!("{shown}: broken link {link:?}"));
                continue;
            }
            if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
                let target_ids = ids_of(&mut ids, &target)?;
                if !target_ids.contains(fragment) {
                    problems.push(format!(
                        "{shown}: link {link:?}: no id {fragment:?} in that page"
                    ));
                }
            }
        }
    }
    for step in steps::all(root)? {
        let page = out.join(format!("{}.html", step.id));
        if !page.exists() {
            problems.push(format!(
                "the book has no chapter {}.md for step {}",
                step.id, step.id
            ));
            continue;
        }
        let page_ids = ids_of(&mut ids, &page)?.clone();
        // The grader's score card sends learners to this section for an
        // unwritten part.
        if !page_ids.contains("the-exercise") {
            problems.push(format!("{}.md has no section \"The exercise\"", step.id));
        }
        for check in cargo::catalog(root, &step.solution())? {
            let section = check["section"].as_str().unwrap_or_default();
            if !page_ids.contains(section) {
                problems.push(format!(
                    "check {} points at {}.md#{section}, which doesn't exist",
                    check["check"].as_str().unwrap_or_default(),
                    step.id
                ));
            }
        }
    }
    println!(
        "book: {} pages checked; {} links to other sites not fetched (no network in CI)",
        pages.len(),
        external.len()
    );
    if problems.is_empty() {
        println!("book: every link, include and check hint resolves");
        Ok(())
    } else {
        bail!(
            "the book has {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
    }
}

/// Every `{{#include FILE:ANCHOR}}` in the sources names a file that exists
/// and an anchor in it. (mdbook renders a missing anchor as an empty listing,
/// silently.)
fn includes(src: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(src)? {
        let page = entry?.path();
        if page.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&page)?;
        let shown = page
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // A merge left half done renders as text, silently.
        for (number, line) in text.lines().enumerate() {
            if ["<<<<<<< ", ">>>>>>> "].iter().any(|m| line.starts_with(m)) || line == "=======" {
                problems.push(format!(
                    "{shown}:{}: a merge conflict marker: {line:?}",
                    number + 1
                ));
            }
        }
        for include in include_targets(&text) {
            let (file, anchor) = include
                .split_once(':')
                .map_or((include.as_str(), None), |(f, a)| (f, Some(a)));
            let path = src.join(file);
            let Ok(source) = std::fs::read_to_string(&path) else {
                problems.push(format!("{shown}: includes {file}, which doesn't exist"));
                continue;
            };
            if let Some(anchor) =
                anchor.filter(|a| !a.chars().all(|c| c.is_ascii_digit() || c == ':'))
            {
                let start = format!("ANCHOR: {anchor}");
                let end = format!("ANCHOR_END: {anchor}");
                let has = |mark: &str| source.lines().any(|l| l.trim_end().ends_with(mark));
                if !has(&start) || !has(&end) {
                    problems.push(format!("{shown}: includes {file}:{anchor}, but that file has no `// ANCHOR: {anchor}` ... `// ANCHOR_END: {anchor}`"));
                }
            }
        }
    }
    Ok(problems)
}

/// The `FILE[:ANCHOR]` of every `{{#include ...}}` in a page.
pub fn include_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = markdown;
    while let Some(at) = rest.find("{{#include ") {
        rest = &rest[at + "{{#include ".len()..];
        if let Some(end) = rest.find("}}") {
            targets.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    targets
}

fn ids_of<'a>(
    cache: &'a mut HashMap<PathBuf, BTreeSet<String>>,
    page: &Path,
) -> anyhow::Result<&'a BTreeSet<String>> {
    if !cache.contains_key(page) {
        let html = std::fs::read_to_string(page)?;
        cache.insert(
            page.to_path_buf(),
            attribute_values(&html, "id").into_iter().collect(),
        );
    }
    Ok(&cache[page])
}

fn html_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut pages = crate::files::walk(dir)?;
    pages.retain(|path| path.extension().is_some_and(|e| e == "html"));
    Ok(pages)
}

/// The `href` and `src` values of a page. mdbook's own theme files (search,
/// print) are links too, and are checked the same way.
pub fn links(html: &str) -> Vec<String> {
    let mut found = attribute_values(html, "href");
    found.extend(attribute_values(html, "src"));
    found
}

/// Every value of ` NAME="..."` in `html` (double quotes, as mdbook writes).
pub fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    let mut values = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        if let Some(end) = rest.find('"') {
            values.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_and_ids() {
        let html = r#"<h2 id="exit-statuses"><a class="header" href="\#exit-statuses">x</a></h2>
            <img src="img/stack.svg"> <a href="02.html?x=1&amp;y=2#top">"#;
        assert_eq!(
            links(html),
            ["\\#exit-statuses", "02.html?x=1&y=2#top", "img/stack.svg"]
        );
        assert_eq!(attribute_values(html, "id"), ["exit-statuses"]);
    }

    #[test]
    fn finds_include_targets() {
        let md = "a\n```rust\n{{#include ../../x/src/a.rs:run}}\n```\n{{#include b.md}}\n";
        assert_eq!(include_targets(md), ["../../x/src/a.rs:run", "b.md"]);
    }

    #[test]
    fn data_attributes_are_not_ids() {
        assert!(attribute_values(r#"<p data-id="x">"#, "id").is_empty());
    }
}
