//! The command line of step 05, the finished runtime: step 04's commands,
//! `run --network NAME -p H:C`, and `network create|ls|inspect|rm`.

use crate::attach::{self, Bridge};
use crate::firewall;
use crate::networks::{Networks, DEFAULT};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use step01::cli::{fail, parse};
use step04::cli::{ContainerOptions, Manage};
use step04::container::Both;
use step04::state::short;

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 05: networks)"
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
    Run(RunArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    #[command(flatten)]
    Manage(Manage),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: ContainerOptions,

    #[command(flatten)]
    pub namespaces: step02::cli::NamespaceArgs,

    /// bridge (the default network), a network's name, host, or none.
    #[arg(long, default_value = DEFAULT, value_name = "NETWORK")]
    pub network: String,

    /// Publish a container's port on the host: HOSTPORT:CONTAINERPORT[/tcp].
    #[arg(short = 'p', long = "publish", value_name = "H:C")]
    pub publish: Vec<String>,

    /// The image: NAME[:TAG] or an id (prefix).
    pub image: String,

    /// The command (default: the image's ENTRYPOINT and CMD).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create {
        /// Its subnet, e.g. 10.210.0.0/24 (default: a free /24 of 10.201.0.0/16).
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// The bridge's address (default: the subnet's first).
        #[arg(long, value_name = "IP")]
        gateway: Option<String>,
        name: String,
    },
    /// List networks.
    Ls,
    /// Show networks as JSON, with their containers.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (none of their containers may remain).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `run`: a container on its network.
fn run(
    root: &std::path::Path,
    store: &step04::store::Store,
    args: &RunArgs,
) -> anyhow::Result<i32> {
    run_with(root, store, args, &mut step04::container::Nothing)
}

// ANCHOR: run
/// [`run`], with `extra` attached to the container after its network (step
/// 06: its cgroup).
pub fn run_with(
    root: &std::path::Path,
    store: &step04::store::Store,
    args: &RunArgs,
    extra: &mut dyn step04::container::Attach,
) -> anyhow::Result<i32> {
    // Bad input fails before anything is made, the default network included.
    step04::cli::check_options(&args.options, &args.namespaces)?;
    step04::cli::find_image(store, &args.image)?;
    let mut ports = Vec::new();
    for text in &args.publish {
        ports.push(firewall::parse_port(text)?);
    }
    let mut held = Vec::new();
    if !matches!(args.network.as_str(), "host" | "none") {
        // (-p is ignored with host and none.) Another container's port,
        // then anything's: the sockets hold the ports from now on.
        firewall::check_free(&ports)?;
        held = crate::ports::hold(&ports)?;
    }
    match args.network.as_str() {
        "host" | "none" => {
            if !ports.is_empty() {
                step01::cli::report(&format!(
                    "warning: -p is ignored with --network {}",
                    args.network
                ));
            }
            let mode = if args.network == "host" {
                "host"
            } else {
                "none"
            };
            let network = step04::cli::Network {
                mode,
                own_namespace: args.network == "none",
                attach: &mut Both(&mut attach::Mode(mode), extra),
            };
            step04::cli::run_container(
                store,
                &args.options,
                &args.namespaces,
                network,
                &args.image,
                &args.command,
            )
        }
        name => {
            let networks = Networks::new(root)?;
            let network = if name == DEFAULT {
                networks.default_network()?
            } else {
                networks.load(name)?.with_context(|| {
                    format!("network {name} not found: create it first (network create {name})")
                })?
            };
            let mut bridge = Bridge::new(root, network, ports);
            bridge.held = held;
            let network = step04::cli::Network {
                mode: name,
                own_namespace: true,
                attach: &mut Both(&mut bridge, extra),
            };
            step04::cli::run_container(
                store,
                &args.options,
                &args.namespaces,
                network,
                &args.image,
                &args.command,
            )
        }
    }
}
// ANCHOR_END: run

/// `network create|ls|inspect|rm`.
pub fn network(root: &std::path::Path, command: NetworkCommand) -> anyhow::Result<i32> {
    let networks = Networks::new(root)?;
    match command {
        NetworkCommand::Create {
            subnet,
            gateway,
            name,
        } => {
            let network = networks.create(&name, subnet.as_deref(), gateway.as_deref())?;
            println!("{}", network.id);
        }
        NetworkCommand::Ls => {
            networks.default_network()?;
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SUBNET"]
                .map(String::from)
                .to_vec()];
            for n in networks.all()? {
                rows.push(vec![short(&n.id).to_string(), n.name, n.driver, n.subnet]);
            }
            print!("{}", step04::show::table(&rows));
        }
        NetworkCommand::Inspect { names } => {
            let mut all = Vec::new();
            for name in &names {
                if name == DEFAULT {
                    networks.default_network()?;
                }
                let network = networks
                    .load(name)?
                    .with_context(|| format!("no such network: {name}"))?;
                let containers: serde_json::Map<String, serde_json::Value> = networks
                    .allocations(name)?
                    .into_iter()
                    .map(|(address, who)| {
                        let subnet = crate::subnet::Subnet::parse(&network.subnet).map(|s| s.prefix).unwrap_or(0);
                        (who.id.clone(), serde_json::json!({ "Name": who.name, "IPv4Address": format!("{address}/{subnet}") }))
                    })
                    .collect();
                let mut value = serde_json::to_value(&network)?;
                value["Containers"] = serde_json::Value::Object(containers);
                all.push(value);
            }
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        NetworkCommand::Rm { names } => {
            for name in &names {
                if name == DEFAULT {
                    bail!("the default network {DEFAULT} can't be removed");
                }
                let network = match networks.load(name) {
                    Ok(network) => network.with_context(|| format!("no such network: {name}"))?,
                    // A damaged record: its files go, nothing it names is
                    // touched.
                    Err(error) => {
                        if !networks.remove_damaged(name)? {
                            return Err(error);
                        }
                        println!("{name}");
                        continue;
                    }
                };
                let users = networks.allocations(name)?;
                if let Some(who) = users.values().next() {
                    bail!(
                        "network {name} is in use by container {} ({} in all): remove them first",
                        who.name,
                        users.len()
                    );
                }
                // Only our own bridge, and its rules: a bridge of that name
                // may be another store's network's.
                let mut netlink = crate::netlink::Netlink::open()?;
                match crate::networks::bridge_of(&network, &mut netlink)? {
                    crate::networks::Bridge::Ours(index) => {
                        netlink.delete(index)?;
                        firewall::remove_network(name, &network.bridge)?;
                    }
                    crate::networks::Bridge::Missing => {
                        firewall::remove_network(name, &network.bridge)?;
                    }
                    crate::networks::Bridge::Foreign(_) => {}
                }
                networks.remove(name)?;
                println!("{name}");
            }
        }
    }
    Ok(0)
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let store = step04::cli::store(cli.root)?;
    let root = store.root().to_path_buf();
    attach::sweep(&root)?;
    match cli.command {
        Command::Run(args) => run(&root, &store, &args),
        Command::Network(command) => network(&root, command),
        Command::Manage(command) => {
            let removed = match &command {
                Manage::Rm { containers, .. } => Some(attach::ids_of(&root, containers)),
                _ => None,
            };
            let code = step04::cli::manage(&store, command);
            if let Some(ids) = removed {
                attach::sweep(&root)?;
                attach::delete_veths(&ids);
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
