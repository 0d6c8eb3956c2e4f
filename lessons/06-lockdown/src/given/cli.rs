//! The command line of step 06, the finished runtime: step 05's commands,
//! locked down by default, with docker's flags to open them up again and to
//! set limits.

use crate::attach::{self, Lockdown};
use crate::cgroups::{self, Limits};
use crate::policy::{self, Policy};
use crate::{capabilities, procfs};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use step01::cli::{fail, parse};
use step04::cli::Manage;
use step05::cli::NetworkCommand;

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 06: lockdown)"
)]
pub struct Cli {
    /// Where images, layers, containers and networks live [env:
    /// MINIBOX_ROOT] [default: /var/lib/minibox]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container of IMAGE (`base` is built in).
    Run(Box<LockedRunArgs>),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    #[command(flatten)]
    Manage(Manage),
}

#[derive(Debug, Clone, Args)]
pub struct LockedRunArgs {
    #[command(flatten)]
    pub security: SecurityArgs,

    #[command(flatten)]
    pub run: step05::cli::RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// Give the container every capability, no seccomp filter, nothing
    /// masked: it can do to the host what root can.
    #[arg(long)]
    pub privileged: bool,

    /// Add a capability to docker's default set (NAME, CAP_NAME, or ALL).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability from the set (NAME, CAP_NAME, or ALL).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// seccomp=unconfined (no filter) or no-new-privileges (the default).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Memory limit: 64m, 1g, ... (the OOM killer ends the container past it).
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Most processes the container may have at once (-1: no limit).
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,

    /// CPUs the container may use, e.g. 0.5 (CFS bandwidth).
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
}

impl SecurityArgs {
    /// The limits, checked.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        Ok(Limits {
            memory: self
                .memory
                .as_deref()
                .map(cgroups::parse_memory)
                .transpose()?,
            pids: match &self.pids_limit {
                Some(text) => cgroups::parse_pids(text)?,
                None => None,
            },
            millicpus: self.cpus.as_deref().map(cgroups::parse_cpus).transpose()?,
        })
    }

    // ANCHOR: policy
    /// The policy, checked: docker's defaults, opened by the flags.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let mut seccomp = true;
        let mut no_new_privs = false;
        for option in &self.security_opt {
            // docker takes `key=value` and the older `key:value`.
            match option.replacen(':', "=", 1).as_str() {
                "seccomp=unconfined" => seccomp = false,
                "no-new-privileges" | "no-new-privileges=true" => no_new_privs = true,
                _ => bail!(
                    "--security-opt {option}: minibox knows seccomp=unconfined and no-new-privileges"
                ),
            }
        }
        let caps = capabilities::resolve(&self.cap_add, &self.cap_drop, self.privileged)?;
        let mut policy = if self.privileged {
            Policy::privileged()
        } else {
            Policy::confined(caps)?
        };
        if !seccomp {
            policy.seccomp.clear();
        }
        policy.no_new_privs |= no_new_privs;
        Ok(policy)
    }
    // ANCHOR_END: policy
}

// ANCHOR: run
fn run(
    root: &std::path::Path,
    store: &step04::store::Store,
    args: &LockedRunArgs,
) -> anyhow::Result<i32> {
    // Bad input fails before anything is made.
    let limits = args.security.limits()?;
    let mut policy = args.security.policy()?;
    // `--cgroupns host` keeps the host's cgroup namespace, as docker does.
    policy.cgroup_namespace = args.run.namespaces.cgroupns == step02::cli::NsMode::Private;
    policy::install(policy);
    let mut lockdown = Lockdown::new(limits, args.run.network == "none");
    if args.security.privileged {
        lockdown.devices = None; // every device, as docker's --privileged
    }
    step05::cli::run_with(root, store, &args.run, &mut lockdown)
}
// ANCHOR_END: run

// ANCHOR: exec
/// `exec`: the command joins the container's groups and namespaces, and
/// gets the container's capabilities and filter, as its init has them.
fn exec(store: &step04::store::Store, args: step04::cli::ExecArgs) -> anyhow::Result<i32> {
    // Out of the container's sight before anything else (seal.rs).
    crate::seal::seal().context("cannot make the exec non-dumpable (prctl)")?;
    // Its command line is readable even so (environ.rs): the command it
    // forks into the container would show the caller's.
    crate::environ::retitle("minibox exec").context("cannot hide the command line")?;
    let record = step04::state::Containers::new(store).find(&args.container)?;
    if record.is_running() {
        let pid = record.state.pid;
        let confined = procfs::status_field(pid, "Seccomp")? != "0";
        let no_new_privs = procfs::status_field(pid, "NoNewPrivs")? == "1";
        let caps = capabilities::of_process(pid)?;
        let mut policy = if confined {
            Policy::confined(caps)?
        } else {
            Policy {
                capabilities: caps,
                ..Policy::privileged()
            }
        };
        policy.no_new_privs = no_new_privs;
        // Only a container with every capability (--privileged) goes
        // without the tiny program: its root is the host's root anyway.
        policy.seal_exe = policy.capabilities != capabilities::supported();
        policy::install(policy);
        // Into its groups before joining its cgroup namespace: the command
        // counts against the container's limits.
        cgroups::of_process(pid)?
            .add(std::process::id() as i32)
            .context("cannot join the container's cgroup")?;
    }
    step04::cli::manage(store, Manage::Exec(args))
}
// ANCHOR_END: exec

/// Run one parsed command (step 07 hands it every command that is not
/// about an overlay network).
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let store = step04::cli::store(cli.root)?;
    let root = store.root().to_path_buf();
    step05::attach::sweep(&root)?;
    attach::sweep(&root)?;
    match cli.command {
        Command::Run(args) => run(&root, &store, &args),
        Command::Network(command) => step05::cli::network(&root, command),
        Command::Manage(Manage::Exec(args)) => exec(&store, args),
        Command::Manage(command) => {
            if matches!(command, Manage::Build { .. }) {
                // A build's RUN steps are containers too.
                policy::install(Policy::confined(capabilities::resolve(&[], &[], false)?)?);
                attach::for_builds();
            }
            let removed = match &command {
                Manage::Rm { containers, .. } => Some(step05::attach::ids_of(&root, containers)),
                _ => None,
            };
            let code = step04::cli::manage(&store, command);
            if let Some(ids) = removed {
                step05::attach::sweep(&root)?;
                step05::attach::delete_veths(&ids);
                attach::sweep(&root)?;
            }
            code
        }
    }
}

/// The runtime's entry point.
pub fn main() -> i32 {
    let cli: Cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    dispatch(cli).unwrap_or_else(|error| fail(&error))
}
