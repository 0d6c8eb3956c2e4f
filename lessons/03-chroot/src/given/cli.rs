//! The command line of step 03: step 02's `run` plus `--rootfs`,
//! `--chroot` and `--read-only` (docker's flag).

use crate::{Enter, Spec};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use step01::cli::{fail, parse};

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 03: a root filesystem)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in new namespaces, with DIR as its root filesystem.
    Run(RootfsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RootfsArgs {
    /// The directory to use as the container's / (`cargo xtask rootfs DIR`
    /// builds one).
    #[arg(long, value_name = "DIR", required = true)]
    pub rootfs: PathBuf,

    /// Enter the rootfs with plain chroot instead of pivot_root (escapable:
    /// for the lesson only).
    #[arg(long)]
    pub chroot: bool,

    /// Mount the container's / read-only (/tmp stays writable).
    #[arg(long)]
    pub read_only: bool,

    #[command(flatten)]
    pub container: step02::cli::ContainerArgs,
}

impl RootfsArgs {
    /// Check everything and build the spec; nothing is created yet.
    pub fn spec(&self) -> anyhow::Result<Spec> {
        let shown = self.rootfs.display();
        let meta = match std::fs::metadata(&self.rootfs) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("rootfs {shown}: no such directory")
            }
            Err(e) => return Err(e).with_context(|| format!("rootfs {shown}")),
        };
        if !meta.is_dir() {
            bail!("rootfs {shown} is not a directory");
        }
        let rootfs = self
            .rootfs
            .canonicalize()
            .with_context(|| format!("rootfs {shown}"))?;
        if rootfs == std::path::Path::new("/") {
            bail!("rootfs {shown} is the host's own /: give the container a directory of its own");
        }
        Ok(Spec {
            container: self.container.spec()?,
            rootfs,
            enter: if self.chroot {
                Enter::Chroot
            } else {
                Enter::Pivot
            },
            read_only: self.read_only,
            tmpfs_tmp: true,
        })
    }
}

/// The runtime's entry point for this step.
pub fn main() -> i32 {
    let cli: Cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Run(args) => args.spec().and_then(|spec| crate::run(&spec)),
    };
    result.unwrap_or_else(|error| fail(&error))
}
