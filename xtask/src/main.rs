//! `cargo xtask <task>`: the workshop's own tooling, for learners, teachers
//! and the workshop's maintainers. One entry point: `cargo xtask`.

mod bench;
mod book;
mod cargo;
mod doctor;
mod files;
mod grade;
mod hint;
mod knockout;
mod leaks;
mod lessons;
mod mutants;
mod numbers;
mod progress;
mod reset;
#[cfg(test)]
mod schema;
mod solution;
mod status;
mod steps;
mod style;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod watch;

use anyhow::{bail, Context};
use std::path::PathBuf;
use style::Style;

const USAGE: &str = "usage: cargo xtask <task>

for learners:
  doctor                           check this machine before you start
  progress [--cached]              every step's score, and the next thing to do
  hint STEP [CHECK] [--more | --shape]
                                   the hint for the step's first failing check (or CHECK):
                                   the concept; --more: the calls and types; --shape: the steps
  watch [STEP] [--poll]            grade the step you edit each time you save
  reset STEP [--yes]               put a step's starter back (your version is backed up first)
  solution STEP [--force]          the reference for a step, once your code passes

for teachers:
  grade [STEP] [--json FILE] [--junit FILE] [--classroom FILE]
                                   grade every step, with reports for classroom tools

for the workshop's maintainers:
  lessons [--check]                generate lessons/ from solutions/ (--check: fail if stale)
  verify [STEP]                    every solution full marks, every starter zero, every learner
                                   region graded (each knocked out alone fails a check), nothing leaked
  mutants STEP                     cargo-mutants over the step's learner regions, against its
                                   graded checks: caught, missed, the kill rate, the survivors
  leaks save|check FILE            the host's mounts, links, routes, rules, containers, temp dirs:
                                   save them, or fail with what changed since
  book [--write]                   build the book (mdbook) and check its links and generated
                                   numbers (--write: write the numbers from the checks and regions)
  bench [--quick] [--book]         measure minibox against crun, runc, the kernel's floor and a VM
                                   (as root; --book writes the results into the book)
  rootfs DIR [--busybox | --host-programs]
                                   build a small root filesystem in DIR, offline

STEP is a step's number (3, 03), its name (03-chroot) or its package (lesson-03).";

/// A mistake in how the task was asked for: exit code 2, as for usage
/// errors elsewhere.
#[derive(Debug)]
struct Usage(anyhow::Error);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Usage {}

/// Mark `error` as a usage error.
pub fn usage(error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Usage(error))
}

fn main() {
    if let Err(error) = run(std::env::args().skip(1).collect()) {
        let code = if error.downcast_ref::<Usage>().is_some() {
            2
        } else {
            1
        };
        eprintln!("xtask: {error:#}");
        std::process::exit(code);
    }
}

/// Split `args` into flags (from `known`) and the rest, in order.
fn flags<'a>(args: &'a [String], known: &[&str]) -> anyhow::Result<(Vec<&'a str>, Vec<&'a str>)> {
    let (mut set, mut rest) = (Vec::new(), Vec::new());
    for arg in args {
        if known.contains(&arg.as_str()) {
            set.push(arg.as_str());
        } else if arg.starts_with('-') {
            return Err(usage(anyhow::anyhow!(
                "unknown option {arg:?} (`cargo xtask help` lists the tasks and their options)"
            )));
        } else {
            rest.push(arg.as_str());
        }
    }
    Ok((set, rest))
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let root = workspace_root();
    let (task, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(t, r)| (t.as_str(), r));
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let style = Style::detect();
    let wrong = |shape: &str| Err(usage(anyhow::anyhow!("usage: cargo xtask {shape}")));
    match task {
        "doctor" => {
            expect_no_args(rest)?;
            if !doctor::run(style)? {
                std::process::exit(1);
            }
            Ok(())
        }
        "progress" => {
            let (set, rest) = flags(rest, &["--cached"])?;
            if !rest.is_empty() {
                return wrong("progress [--cached]");
            }
            let mode = if set.is_empty() {
                status::Mode::Regrade
            } else {
                status::Mode::Cached
            };
            progress::run(&root, mode, style)
        }
        "hint" => {
            let (set, rest) = flags(rest, &["--more", "--shape"])?;
            let level = if set.contains(&"--shape") {
                hint::Level::Shape
            } else if set.contains(&"--more") {
                hint::Level::More
            } else {
                hint::Level::Concept
            };
            match rest[..] {
                [step] => hint::run(&root, step, None, level, style),
                [step, check] => hint::run(&root, step, Some(check), level, style),
                _ => wrong("hint STEP [CHECK] [--more | --shape]"),
            }
        }
        "watch" => {
            let (set, rest) = flags(rest, &["--poll"])?;
            match rest[..] {
                [] => watch::run(&root, None, !set.is_empty(), style),
                [step] => watch::run(&root, Some(step), !set.is_empty(), style),
                _ => wrong("watch [STEP] [--poll]"),
            }
        }
        "reset" => match flags(rest, &["--yes", "-y"])? {
            (set, rest) if rest.len() == 1 => reset::run(&root, rest[0], !set.is_empty()),
            _ => wrong("reset STEP [--yes]"),
        },
        "solution" => match flags(rest, &["--force"])? {
            (set, rest) if rest.len() == 1 => solution::run(&root, rest[0], !set.is_empty(), style),
            _ => wrong("solution STEP [--force]"),
        },
        "lessons" => match rest {
            [] => lessons::generate(&root),
            [flag] if flag == "--check" => lessons::check(&root),
            _ => wrong("lessons [--check]"),
        },
        "verify" => {
            let only = match rest {
                [] => None,
                [step] => Some(steps::find(&root, step).map_err(usage)?),
                _ => return wrong("verify [STEP]"),
            };
            // The leak guard: the host before, and after.
            let before = leaks::Host::snapshot();
            let verified = grade::verify(&root, only.as_ref());
            let clean = leaks::check(&before, "verify");
            verified.and(clean)
        }
        "mutants" => match rest {
            [step] => mutants::run(&root, step),
            _ => wrong("mutants STEP"),
        },
        "leaks" => match rest {
            [verb, file] if verb == "save" => {
                leaks::Host::snapshot().save(std::path::Path::new(file))
            }
            [verb, file] if verb == "check" => {
                leaks::check(&leaks::Host::load(std::path::Path::new(file))?, "this run")
            }
            _ => wrong("leaks save|check FILE"),
        },
        "grade" => {
            let mut options = grade::Options::default();
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                let mut value = || {
                    it.next()
                        .filter(|v| !v.is_empty() && !v.starts_with('-'))
                        .map(PathBuf::from)
                        .with_context(|| format!("{arg} needs a file name"))
                        .map_err(usage)
                };
                match arg.as_str() {
                    "--json" => options.json = Some(value()?),
                    "--junit" => options.junit = Some(value()?),
                    "--classroom" => options.classroom = Some(value()?),
                    step if !step.starts_with('-') && options.step.is_none() => {
                        options.step = Some(steps::find(&root, step).map_err(usage)?)
                    }
                    other => {
                        return Err(usage(anyhow::anyhow!(
                            "unknown option {other:?}: cargo xtask grade [STEP] [--json FILE] [--junit FILE] [--classroom FILE]"
                        )))
                    }
                }
            }
            grade::grade(&root, &options)
        }
        "book" => match rest {
            [] => book::build_and_check(&root),
            [flag] if flag == "--write" => numbers::write(&root),
            _ => wrong("book [--write]"),
        },
        "bench" => {
            let (set, rest) = flags(rest, &["--quick", "--book"])?;
            if !rest.is_empty() {
                return wrong("bench [--quick] [--book]");
            }
            bench::run(
                &root,
                &bench::Options {
                    quick: set.contains(&"--quick"),
                    book: set.contains(&"--book"),
                },
            )
        }
        "rootfs" => {
            let (dir, source) = match rest {
                [dir] => (dir, rootfs::Source::Auto),
                [dir, flag] if flag == "--busybox" => (dir, rootfs::Source::Busybox),
                [dir, flag] if flag == "--host-programs" => (dir, rootfs::Source::HostPrograms),
                _ => return wrong("rootfs DIR [--busybox | --host-programs]"),
            };
            let built = rootfs::build(std::path::Path::new(dir), source)?;
            println!(
                "{dir}: a root filesystem from {}, with {}",
                built.source,
                built.programs.join(" ")
            );
            Ok(())
        }
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(usage(anyhow::anyhow!(
            "unknown task {other:?} (`cargo xtask help` lists the tasks)"
        ))),
    }
}

fn expect_no_args(rest: &[String]) -> anyhow::Result<()> {
    match rest {
        [] => Ok(()),
        _ => bail!(Usage(anyhow::anyhow!(
            "unexpected arguments: {}",
            rest.join(" ")
        ))),
    }
}

/// The workspace root: xtask's manifest dir is `<root>/xtask`.
/// `MINIBOX_WORKSPACE` names another copy (a teacher grading a learner's).
fn workspace_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("MINIBOX_WORKSPACE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
