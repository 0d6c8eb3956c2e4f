//! Which shared libraries a program needs, by asking the loader (`ldd`).
//!
//! `ldd PROGRAM` makes the dynamic loader resolve every `DT_NEEDED` entry,
//! recursively, and print where it found each one:
//!
//! ```text
//!     linux-vdso.so.1 (0x00007ffd...)                      (in the kernel: no file)
//!     libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)
//!     /lib64/ld-linux-x86-64.so.2 (0x...)                  (the loader itself)
//! ```

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files (libraries and the loader) named in `ldd` output.
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The libraries `program` needs, as absolute paths.
pub fn needed(program: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(program)
        .output()
        .context("cannot run ldd (it comes with glibc's libc-bin)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("not found") {
        bail!(
            "{}: a library it needs is missing: {}",
            program.display(),
            text.trim()
        );
    }
    Ok(parse_ldd(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libraries_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn the_hosts_shell_needs_libc() {
        let libs = needed(Path::new("/bin/sh")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }
}
