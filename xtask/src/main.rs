//! `cargo xtask <task>`: the workshop's own tooling.
//!
//! - `lessons [--check]`: generate the starters in `lessons/` from the
//!   reference solutions (or check that they are up to date);
//! - `verify`: every reference solution gets full marks, every starter zero;
//! - `grade [--json FILE] [--junit FILE]`: grade the learner's lessons;
//! - `book`: build the book and check its links;
//! - `rootfs DIR [--busybox | --host-programs]`: build a small root
//!   filesystem, offline, from a static busybox or the host's programs.

mod book;
mod cargo;
mod files;
mod grade;
mod lessons;
mod steps;

use anyhow::{bail, Context};
use std::path::PathBuf;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  lessons [--check]                generate lessons/ from solutions/ (--check: fail if stale)
  verify                           every solution full marks, every starter zero
  grade [--json FILE] [--junit FILE]  grade every lesson, with reports for classroom tools
  book                             build the book (mdbook) and check its links
  rootfs DIR [--busybox | --host-programs]
                                   build a small root filesystem in DIR, offline";

fn main() {
    if let Err(error) = run(std::env::args().skip(1).collect()) {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let root = workspace_root();
    let (task, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(t, r)| (t.as_str(), r));
    match task {
        "lessons" => match rest {
            [] => lessons::generate(&root),
            [flag] if flag == "--check" => lessons::check(&root),
            _ => bail!("usage: cargo xtask lessons [--check]"),
        },
        "verify" => {
            expect_no_args(rest)?;
            grade::verify(&root)
        }
        "grade" => {
            let mut options = grade::Options::default();
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                let mut value = || {
                    it.next()
                        .map(PathBuf::from)
                        .context(format!("{arg} needs a file name"))
                };
                match arg.as_str() {
                    "--json" => options.json = Some(value()?),
                    "--junit" => options.junit = Some(value()?),
                    other => bail!("unknown option {other:?}\n{USAGE}"),
                }
            }
            grade::grade(&root, &options)
        }
        "book" => {
            expect_no_args(rest)?;
            book::build_and_check(&root)
        }
        "rootfs" => {
            let (dir, source) = match rest {
                [dir] => (dir, rootfs::Source::Auto),
                [dir, flag] if flag == "--busybox" => (dir, rootfs::Source::Busybox),
                [dir, flag] if flag == "--host-programs" => (dir, rootfs::Source::HostPrograms),
                _ => bail!("usage: cargo xtask rootfs DIR [--busybox | --host-programs]"),
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
        other => bail!("unknown task {other:?}\n{USAGE}"),
    }
}

fn expect_no_args(rest: &[String]) -> anyhow::Result<()> {
    match rest {
        [] => Ok(()),
        _ => bail!("unexpected arguments: {}", rest.join(" ")),
    }
}

/// The workspace root: xtask's manifest dir is `<root>/xtask`.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
