//! The numbers the book quotes, generated: checks, points and totals from
//! the grader's catalogue (`--catalog` of each step's graded checks), the
//! learner's parts and code lines from the regions. Each sits between
//!
//! ```text
//! <!-- generated: NAME -->
//! ...
//! <!-- end generated -->
//! ```
//!
//! `cargo xtask book --write` writes them; `cargo xtask book` (in CI) fails
//! when one is stale, so a check or a region added without the book
//! following fails CI.

use crate::lessons::{self, Region};
use crate::steps::{self, Step};
use anyhow::bail;
use std::collections::BTreeMap;
use std::path::Path;

const START: &str = "<!-- generated: ";
const END: &str = "<!-- end generated -->";

/// One step's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub step: Step,
    pub checks: usize,
    pub points: u64,
    pub regions: Vec<Region>,
    /// Each graded check's name and points, in the grader's order.
    pub catalog: Vec<(String, u64)>,
}

impl Figures {
    pub fn code_lines(&self) -> usize {
        self.regions.iter().map(Region::code_lines).sum()
    }
}

/// Every step's figures (builds each reference's graded checks to list them).
pub fn figures(root: &Path) -> anyhow::Result<Vec<Figures>> {
    let mut all = Vec::new();
    for step in steps::all(root)? {
        let catalog: Vec<(String, u64)> = crate::cargo::catalog(root, &step.solution())?
            .iter()
            .map(|c| {
                (
                    c["check"].as_str().unwrap_or_default().to_string(),
                    c["points"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        all.push(Figures {
            checks: catalog.len(),
            points: catalog.iter().map(|(_, p)| p).sum(),
            regions: lessons::regions(root, &step)?,
            catalog,
            step,
        });
    }
    Ok(all)
}

/// The teacher's guide's table of totals.
pub fn totals(figures: &[Figures]) -> String {
    let mut out = String::from(
        "| step | checks | points | parts to write | lines the learner writes |\n|------|--------|--------|----------------|--------------------------|\n",
    );
    for f in figures {
        out.push_str(&format!(
            "| [{}]({}.md) | {} | {} | {} | {} |\n",
            f.step.number,
            f.step.id,
            f.checks,
            f.points,
            f.regions.len(),
            f.code_lines()
        ));
    }
    let sum = |get: &dyn Fn(&Figures) -> u64| figures.iter().map(get).sum::<u64>();
    out.push_str(&format!(
        "| all | **{}** | **{}** | **{}** | **{}** |\n",
        sum(&|f| f.checks as u64),
        sum(&|f| f.points),
        sum(&|f| f.regions.len() as u64),
        sum(&|f| f.code_lines() as u64)
    ));
    out
}

/// A chapter's "What you write": one row per region, in file order.
pub fn what_you_write(figures: &Figures) -> String {
    let mut out = format!(
        "What you write: {} part(s), {} line(s) of code in the reference.\n\n| file | function | what must be true afterwards |\n|------|----------|------------------------------|\n",
        figures.regions.len(),
        figures.code_lines()
    );
    for region in &figures.regions {
        let goal = table_cell(&region.goal);
        out.push_str(&format!(
            "| `{}` | `{}` | {goal} |\n",
            region.file.display(),
            region.function
        ));
    }
    out
}

/// A chapter's "How it is graded" headline: how many checks, how many
/// points.
pub fn checks_line(figures: &Figures) -> String {
    format!(
        "**{} checks, {} points.**\n",
        figures.checks, figures.points
    )
}

/// Where a chapter's table of checks (rows `| `name` | points | ... |`)
/// disagrees with the grader's catalogue: a check missing, one the grader
/// doesn't have, or other points.
pub fn table_problems(page: &str, figures: &Figures) -> Vec<String> {
    let mut listed: BTreeMap<String, u64> = BTreeMap::new();
    let known: BTreeMap<&str, u64> = figures
        .catalog
        .iter()
        .map(|(n, p)| (n.as_str(), *p))
        .collect();
    let mut problems = Vec::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| `name` | 3 | what |` splits into ["", "`name`", "3", ...].
        let (Some(name), Some(points)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        let Ok(points) = points.parse::<u64>() else {
            continue;
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        match known.get(name) {
            None => problems.push(format!(
                "lists the check `{name}`, which step {} does not have",
                figures.step.number
            )),
            Some(p) if *p != points => problems.push(format!(
                "gives `{name}` {points} point(s); the grader gives {p}"
            )),
            Some(_) => {}
        }
        listed.insert(name.to_string(), points);
    }
    for (name, _) in &figures.catalog {
        if !listed.contains_key(name) {
            problems.push(format!("does not list the check `{name}`"));
        }
    }
    problems
}

/// Text for a Markdown table's cell: `|` escaped, and `<` `>` outside code
/// spans too (`<previous chain_id>` is no HTML tag).
pub fn table_cell(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '|' => out.push_str("\\|"),
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Every generated block by name.
pub fn blocks(figures: &[Figures]) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    blocks.insert("totals".to_string(), totals(figures));
    for f in figures {
        blocks.insert(
            format!("what-you-write-{}", f.step.number),
            what_you_write(f),
        );
        blocks.insert(format!("checks-{}", f.step.number), checks_line(f));
    }
    blocks
}

/// `page` with each generated block filled in from `blocks`; the names of
/// blocks it has that `blocks` doesn't know.
pub fn fill(page: &str, blocks: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut unknown = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find(START) {
        let after = &rest[at + START.len()..];
        let Some(close) = after.find("-->") else {
            break;
        };
        let name = after[..close].trim().to_string();
        let head_end = at + START.len() + close + "-->".len();
        let Some(end) = rest[head_end..].find(END) else {
            unknown.push(format!("{name} (no `{END}`)"));
            break;
        };
        out.push_str(&rest[..head_end]);
        match blocks.get(&name) {
            Some(text) => {
                out.push('\n');
                out.push_str(text);
            }
            None => {
                unknown.push(name);
                out.push_str(&rest[head_end..head_end + end]);
            }
        }
        out.push_str(END);
        rest = &rest[head_end + end + END.len()..];
    }
    out.push_str(rest);
    (out, unknown)
}

/// Fill in (`write`) or check every page's generated blocks; the problems.
pub fn update(root: &Path, write: bool) -> anyhow::Result<Vec<String>> {
    let figures = figures(root)?;
    let blocks = blocks(&figures);
    let src = root.join("book").join("src");
    let mut problems = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut pages: Vec<_> = std::fs::read_dir(&src)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for page in pages {
        let text = std::fs::read_to_string(&page)?;
        let name = page
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some(f) = figures.iter().find(|f| name == format!("{}.md", f.step.id)) {
            for problem in table_problems(&text, f) {
                problems.push(format!("{name}: its table of checks {problem}"));
            }
        }
        let (filled, unknown) = fill(&text, &blocks);
        for block in blocks.keys() {
            if text.contains(&format!("{START}{block} -->")) {
                used.insert(block.clone());
            }
        }
        for block in unknown {
            problems.push(format!("{name}: no generator for the block {block:?}"));
        }
        if filled != text {
            if write {
                std::fs::write(&page, filled)?;
                println!("book: wrote the generated numbers of {name}");
            } else {
                problems.push(format!(
                    "{name}: generated numbers are stale (a check, its points or a region changed): run `cargo xtask book --write`"
                ));
            }
        }
    }
    for block in blocks.keys().filter(|b| !used.contains(*b)) {
        problems.push(format!(
            "no page has the block `{START}{block} -->` ... `{END}`"
        ));
    }
    Ok(problems)
}

/// `cargo xtask book --write`.
pub fn write(root: &Path) -> anyhow::Result<()> {
    let problems = update(root, true)?;
    if !problems.is_empty() {
        bail!("{}", problems.join("\n  "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Vec<Figures> {
        let text = "fn a() {\n    // TODO(lesson-01): a | b holds\n    // BEGIN SOLUTION\n    x();\n    y()\n    // END SOLUTION\n}\n";
        let step = Step {
            id: "01-fork".into(),
            number: "01".into(),
        };
        vec![Figures {
            regions: lessons::regions_of(text, "01-fork", "01", Path::new("src/a.rs")),
            step,
            checks: 3,
            points: 7,
            catalog: vec![("a_b".into(), 3), ("c".into(), 4), ("d".into(), 0)],
        }]
    }

    #[test]
    fn a_stale_block_is_rewritten_and_others_kept() {
        let blocks = blocks(&figures());
        let page =
            "# Guide\n\n<!-- generated: totals -->\n| step | 5 |\n<!-- end generated -->\n\ntext\n";
        let (filled, unknown) = fill(page, &blocks);
        assert!(unknown.is_empty());
        assert!(filled.contains("| [01](01-fork.md) | 3 | 7 | 1 | 2 |\n| all | **3** | **7** | **1** | **2** |\n<!-- end generated -->\n\ntext\n"), "{filled}");
        assert!(!filled.contains("| step | 5 |"));
        // Filled once, it is up to date: filling again changes nothing.
        assert_eq!(fill(&filled, &blocks).0, filled);
    }

    #[test]
    fn what_you_write_lists_each_region() {
        let text = what_you_write(&figures()[0]);
        assert!(
            text.starts_with("What you write: 1 part(s), 2 line(s)"),
            "{text}"
        );
        assert!(
            text.contains("| `src/a.rs` | `a` | a \\| b holds |"),
            "{text}"
        );
    }

    #[test]
    fn cells_escape_html_outside_code() {
        assert_eq!(
            table_cell("of_bytes(<previous> a|b) `Vec<u8>`"),
            "of_bytes(&lt;previous&gt; a\\|b) `Vec<u8>`"
        );
    }

    #[test]
    fn a_table_of_checks_must_match_the_catalogue() {
        let f = &figures()[0];
        let good = "| check | points | what |\n|---|---|---|\n| `a_b` | 3 | x |\n| `c` | 4 | y |\n| `d` | 0 | z |\n";
        assert!(
            table_problems(good, f).is_empty(),
            "{:?}",
            table_problems(good, f)
        );
        let bad = "| `a_b` | 2 | x |\n| `e` | 1 | y |\n| `d` | 0 | z |\n";
        assert_eq!(
            table_problems(bad, f),
            [
                "gives `a_b` 2 point(s); the grader gives 3",
                "lists the check `e`, which step 01 does not have",
                "does not list the check `c`",
            ]
        );
    }

    #[test]
    fn an_unknown_block_is_named() {
        let page = "<!-- generated: nope -->\nold\n<!-- end generated -->\n";
        let (filled, unknown) = fill(page, &blocks(&figures()));
        assert_eq!(unknown, ["nope"]);
        assert_eq!(filled, page);
    }
}
