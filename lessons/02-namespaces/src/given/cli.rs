//! The command line of step 02: step 01's `run` plus namespace flags, named
//! as docker names them.

use crate::namespaces::Namespaces;
use crate::{hostname, userns, ContainerSpec};
use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};
use step01::cli::{fail, parse};

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 02: namespaces)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in new namespaces, under a small init.
    Run(ContainerArgs),
}

/// `--network`: the network namespace. (Bridges come in step 05.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkMode {
    /// A new network namespace with only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
}

/// `--pid`, `--ipc`, `--uts`, `--cgroupns`: a new namespace, or the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NsMode {
    Private,
    Host,
}

/// The namespace flags, on their own so that later steps (whose `run` takes
/// an image instead of `-- CMD`) reuse them.
#[derive(Debug, Clone, Args)]
pub struct NamespaceArgs {
    /// The container's host name (default: 12 random hex digits).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    #[arg(long, value_enum, default_value = "private", value_name = "MODE")]
    pub pid: NsMode,

    #[arg(long, value_enum, default_value = "private", value_name = "MODE")]
    pub ipc: NsMode,

    #[arg(long, value_enum, default_value = "private", value_name = "MODE")]
    pub uts: NsMode,

    #[arg(long, value_enum, default_value = "private", value_name = "MODE")]
    pub cgroupns: NsMode,

    /// Add a user namespace: root inside, your own uid outside (as root: an
    /// unprivileged range from 100000).
    #[arg(long)]
    pub userns: bool,
}

/// `--network`, on its own: step 05 replaces it with networks by name.
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pub network: NetworkMode,
}

#[derive(Debug, Clone, Args)]
pub struct ContainerArgs {
    #[command(flatten)]
    pub namespaces: NamespaceArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    #[command(flatten)]
    pub process: step01::cli::RunArgs,
}

impl ContainerArgs {
    /// Check everything and build the spec; nothing is created yet.
    pub fn spec(&self) -> anyhow::Result<ContainerSpec> {
        let own_network = self.network.network == NetworkMode::None;
        self.namespaces.spec(self.process.spec()?, own_network)
    }
}

impl NamespaceArgs {
    /// Check the flags and build the spec of a container running `process`,
    /// with a network namespace of its own or the host's; nothing is
    /// created yet.
    pub fn spec(
        &self,
        process: step01::RunSpec,
        own_network: bool,
    ) -> anyhow::Result<ContainerSpec> {
        let namespaces = Namespaces {
            user: self.userns,
            pid: self.pid == NsMode::Private,
            uts: self.uts == NsMode::Private,
            ipc: self.ipc == NsMode::Private,
            net: own_network,
            cgroup: self.cgroupns == NsMode::Private,
        };
        if let Some(name) = &self.hostname {
            if !namespaces.uts {
                bail!("--hostname needs the container's own UTS namespace, not --uts host");
            }
            hostname::validate(name)?;
        }
        let user_mapping = self
            .userns
            .then(|| userns::mapping_for(nix::unistd::getuid(), nix::unistd::getgid()));
        Ok(ContainerSpec {
            process,
            namespaces,
            hostname: self.hostname.clone().unwrap_or_else(hostname::random_name),
            user_mapping,
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
