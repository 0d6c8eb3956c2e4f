//! A small workspace shaped like the workshop's, for the tools' own tests.
//!
//! Four steps, each a crate with a library `step`, a `todo!()` region or two,
//! and graded checks that call the library and write the grader's report
//! (the same JSON, from a few lines of std-only Rust, so the fixture
//! compiles in seconds). The lessons are generated from the solutions as in
//! the real workshop; a test then plays the learner.

use crate::steps::Step;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Fixture {
    root: PathBuf,
}

/// `(step id, the library's reference source, the checks)`; a check is
/// `(name, points, section, hint, a boolean expression over the library)`.
type StepSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, u32, &'static str, &'static str, &'static str)],
);

const STEPS: &[StepSpec] = &[
    (
        "01-add",
        "/// Adds.\npub fn add(a: u32, b: u32) -> u32 {\n    // TODO(lesson-01): return the sum of a and b\n    // BEGIN SOLUTION\n    a + b\n    // END SOLUTION\n}\n",
        &[
            ("adds_small_numbers", 2, "adding", "add the two numbers", "step::add(2, 3) == 5"),
            ("adds_zero", 1, "adding", "zero changes nothing", "step::add(7, 0) == 7"),
        ],
    ),
    (
        "02-pair",
        "pub fn double(a: i32) -> i32 {\n    // TODO(lesson-02): return twice a\n    // BEGIN SOLUTION\n    a * 2\n    // END SOLUTION\n}\n\npub fn negate(a: i32) -> i32 {\n    // TODO(lesson-02): return minus a\n    // BEGIN SOLUTION\n    -a\n    // END SOLUTION\n}\n",
        &[
            ("doubles", 2, "doubling", "multiply by two", "step::double(21) == 42"),
            ("negates", 3, "negating", "the sign flips: think of 0 - a", "step::negate(5) == -5"),
            ("negates_zero", 1, "negating", "minus zero is zero", "step::negate(0) == 0 && step::negate(-4) == 4"),
        ],
    ),
    (
        "03-greet",
        "pub fn greet(name: &str) -> String {\n    // TODO(lesson-03): say hello to {name}\n    // BEGIN SOLUTION\n    format!(\"hello, {name}\")\n    // END SOLUTION\n}\n",
        &[("greets", 4, "greeting", "format! it", "step::greet(\"box\") == \"hello, box\"")],
    ),
    (
        "04-square",
        "pub fn square(a: u64) -> u64 {\n    // TODO(lesson-04): return a times a\n    // BEGIN SOLUTION\n    a * a\n    // END SOLUTION\n}\n",
        &[("squares", 5, "squaring", "multiply a by itself", "step::square(9) == 81")],
    ),
];

/// The fixture's graded checks: what `tests/grader` does, in miniature.
const GRADE_MAIN: &str = r#"
fn json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let package = env!("CARGO_PKG_NAME");
    if std::env::args().any(|a| a == "--catalog") {
        let items: Vec<String> = CHECKS
            .iter()
            .map(|(name, points, section, hint, _)| {
                format!(
                    "{{\"check\":{},\"points\":{points},\"section\":{},\"book\":{},\"hint\":{}}}",
                    json(name), json(section), json(&format!("book/src/{STEP}.md#{section}")), json(hint)
                )
            })
            .collect();
        println!("[{}]", items.join(","));
        return;
    }
    std::panic::set_hook(Box::new(|_| {}));
    let (mut score, mut total, mut records) = (0, 0, Vec::new());
    for (name, points, section, hint, check) in CHECKS {
        total += points;
        let message = match std::panic::catch_unwind(check) {
            Ok(true) => String::new(),
            Ok(false) => format!("{name}: the result is wrong\nhint: {hint}\nbook: book/src/{STEP}.md#{section}"),
            Err(panic) => {
                let said = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let said = said.strip_prefix("not yet implemented: ").unwrap_or(&said).to_string();
                format!("not written yet: {said}\nhint: {hint}\nbook: book/src/{STEP}.md#{section}")
            }
        };
        let passed = message.is_empty();
        if passed {
            score += points;
        }
        println!("{} {name}", if passed { "ok  " } else { "FAIL" });
        records.push(format!(
            "{{\"step\":{},\"check\":{},\"points\":{points},\"passed\":{passed},\"message\":{},\"book\":{},\"hint\":{}}}",
            json(STEP), json(name), json(&message), json(&format!("book/src/{STEP}.md#{section}")), json(hint)
        ));
    }
    let report = format!(
        "{{\"step\":{},\"package\":{},\"score\":{score},\"total\":{total},\"error\":null,\"checks\":[{}],\"skipped\":[]}}\n",
        json(STEP), json(package), records.join(",")
    );
    if let Some(path) = std::env::var_os("MINIBOX_GRADE_JSON") {
        std::fs::write(path, &report).unwrap();
    }
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("grade");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join(format!("{package}.json")), &report).unwrap();
    if score < total {
        std::process::exit(101);
    }
}
"#;

impl Fixture {
    /// A fresh fixture workspace: solutions, generated lessons, checks.
    pub fn new() -> Fixture {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "xtask-fixture-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let fixture = Fixture { root };
        fixture.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"solutions/*\", \"lessons/*\"]\n\n[workspace.package]\nedition = \"2021\"\n",
        );
        for (id, source, checks) in STEPS {
            let number = &id[..2];
            fixture.write(
                &format!("solutions/{id}/Cargo.toml"),
                &format!(
                    "[package]\nname = \"solution-{number}\"\nversion = \"0.1.0\"\nedition.workspace = true\n\n[lib]\nname = \"step\"\npath = \"src/lib.rs\"\n\n[[test]]\nname = \"grade\"\npath = \"../../tests/{id}.rs\"\nharness = false\n"
                ),
            );
            fixture.write(
                &format!("solutions/{id}/src/lib.rs"),
                &format!("mod extra;\n\n{source}"),
            );
            fixture.write(
                &format!("solutions/{id}/src/extra.rs"),
                "// Nothing to write here.\n",
            );
            let table: Vec<String> = checks
                .iter()
                .map(|(name, points, section, hint, expr)| {
                    format!("    ({name:?}, {points}, {section:?}, {hint:?}, || {expr}),")
                })
                .collect();
            fixture.write(
                &format!("tests/{id}.rs"),
                &format!(
                    "const STEP: &str = {id:?};\n\n#[allow(clippy::type_complexity)]\nconst CHECKS: &[(&str, u32, &str, &str, fn() -> bool)] = &[\n{}\n];\n{GRADE_MAIN}",
                    table.join("\n")
                ),
            );
        }
        crate::lessons::generate_quietly(&fixture.root).expect("generate the fixture's lessons");
        fixture
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn step(&self, number: &str) -> Step {
        crate::steps::find(&self.root, number).expect("a fixture step")
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root.join(relative)).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
