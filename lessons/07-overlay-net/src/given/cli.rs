//! The command line of step 07, the finished runtime: step 06's commands
//! and flags, unchanged, plus dockerd's cluster flags and overlay networks.
//!
//! ```text
//! minibox --cluster-store etcd://10.99.0.1:2379,10.99.0.2:2379 --cluster-advertise 10.99.0.1 \
//!     network create -d overlay ov
//! minibox --cluster-store ... --cluster-advertise 10.99.0.1 run -d --name web --network ov IMAGE
//! ```
//!
//! Without `--cluster-store` (or `MINIBOX_CLUSTER_STORE`) nothing needs
//! etcd: every command is step 06's.

use crate::etcd::Etcd;
use crate::store::{self, OverlayNetwork};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use step01::cli::{fail, parse};
use step04::cli::Manage;
use step04::container::Both;
use step04::state::short;
use step05::cli::NetworkCommand as BridgeCommand;
use step06::cli::LockedRunArgs;

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 07: overlay networks)"
)]
pub struct Cli {
    /// Where images, layers, containers and networks live [env:
    /// MINIBOX_ROOT] [default: /var/lib/minibox]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// The cluster store, for overlay networks: etcd://HOST:PORT[,HOST:PORT...]
    /// [env: MINIBOX_CLUSTER_STORE]
    #[arg(long = "cluster-store", global = true, value_name = "URL")]
    pub cluster_store: Option<String>,

    /// This host's underlay IPv4 address, which the other hosts send its
    /// containers' traffic to [env: MINIBOX_CLUSTER_ADVERTISE]
    #[arg(long = "cluster-advertise", global = true, value_name = "ADDRESS")]
    pub cluster_advertise: Option<String>,

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

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network: a bridge on this host, or an overlay across hosts.
    Create {
        /// bridge (this host only) or overlay (every host of the cluster
        /// store).
        #[arg(
            short = 'd',
            long = "driver",
            default_value = "bridge",
            value_name = "DRIVER"
        )]
        driver: String,
        /// Its subnet (default: a free /24 of 10.201.0.0/16 for a bridge,
        /// of 10.0.0.0/8 for an overlay, as docker's pools).
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// The bridge's address (bridge networks only).
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
    /// Remove networks (none of their containers may remain, on any host).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The cluster flags, or their environment variables.
struct Cluster {
    etcd: Option<Etcd>,
    advertise: Option<String>,
}

impl Cluster {
    fn from(cli: &Cli) -> anyhow::Result<Cluster> {
        let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let url = cli
            .cluster_store
            .clone()
            .or_else(|| from_env("MINIBOX_CLUSTER_STORE"));
        Ok(Cluster {
            etcd: url.as_deref().map(Etcd::from_url).transpose()?,
            advertise: cli
                .cluster_advertise
                .clone()
                .or_else(|| from_env("MINIBOX_CLUSTER_ADVERTISE")),
        })
    }

    fn etcd(&self) -> anyhow::Result<&Etcd> {
        self.etcd.as_ref().context(
            "overlay networks need a cluster store: --cluster-store etcd://HOST:PORT (or MINIBOX_CLUSTER_STORE)",
        )
    }

    fn advertise(&self) -> anyhow::Result<Ipv4Addr> {
        let text = self.advertise.as_deref().context(
            "a container on an overlay network needs this host's underlay address: --cluster-advertise ADDRESS (or MINIBOX_CLUSTER_ADVERTISE)",
        )?;
        text.parse()
            .with_context(|| format!("--cluster-advertise {text}: not an IPv4 address"))
    }

    /// The overlay network `name`, if the store has one (and a store is
    /// given).
    fn overlay(&self, name: &str) -> anyhow::Result<Option<OverlayNetwork>> {
        let Some(etcd) = &self.etcd else {
            return Ok(None);
        };
        match etcd.get(&store::network_key(name))? {
            None => Ok(None),
            Some(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("the store's record of network {name} is damaged")
            })?)),
        }
    }
}

/// A network of this host's (step 05's; a damaged record too, which step
/// 05's commands deal with), or one of the names that are no network's
/// (host, none, bridge).
fn is_local(root: &Path, name: &str) -> anyhow::Result<bool> {
    Ok(matches!(name, "host" | "none" | step05::networks::DEFAULT)
        || !matches!(step05::networks::Networks::new(root)?.load(name), Ok(None)))
}

/// `run --network OVERLAY`: step 06's run, with an overlay attachment.
fn run_overlay(
    root: &Path,
    store: &step04::store::Store,
    cluster: &Cluster,
    network: OverlayNetwork,
    args: &LockedRunArgs,
) -> anyhow::Result<i32> {
    let advertise = cluster.advertise()?;
    let etcd = cluster.etcd()?.clone();
    if !args.run.publish.is_empty() {
        bail!("-p is not supported on an overlay network: it has no gateway to this host's ports");
    }
    step04::cli::check_options(&args.run.options, &args.run.namespaces)?;
    step04::cli::find_image(store, &args.run.image)?;
    let limits = args.security.limits()?;
    let mut policy = args.security.policy()?;
    policy.cgroup_namespace = args.run.namespaces.cgroupns == step02::cli::NsMode::Private;
    step06::policy::install(policy);
    let mut lockdown = step06::attach::Lockdown::new(limits, false);
    if args.security.privileged {
        lockdown.devices = None;
    }
    let mut overlay = crate::attach::Overlay::new(root, etcd, advertise, network);
    let name = overlay.network.name.clone();
    let network = step04::cli::Network {
        mode: &name,
        own_namespace: true,
        attach: &mut Both(&mut overlay, &mut lockdown),
    };
    step04::cli::run_container(
        store,
        &args.run.options,
        &args.run.namespaces,
        network,
        &args.run.image,
        &args.run.command,
    )
}

/// `network create -d overlay [--subnet CIDR] NAME`.
fn create_overlay(
    root: &Path,
    etcd: &Etcd,
    name: &str,
    subnet: Option<&str>,
) -> anyhow::Result<()> {
    step05::networks::validate_name(name)?;
    if is_local(root, name)? {
        bail!("network {name} already exists on this host (a bridge network)");
    }
    if etcd.get(&store::network_key(name))?.is_some() {
        bail!("network {name} already exists");
    }
    let subnet = match subnet {
        Some(text) => {
            let parsed = crate::subnet::Subnet::parse(text)?;
            anyhow::ensure!(
                parsed.prefix <= 29,
                "--subnet {text}: too small for containers (at most /29)"
            );
            let canonical = format!("{}/{}", parsed.nth(0), parsed.prefix);
            for other in overlays(etcd)? {
                if crate::subnet::Subnet::parse(&other.subnet)?.overlaps(&parsed) {
                    bail!(
                        "--subnet {canonical} overlaps network {} ({})",
                        other.name,
                        other.subnet
                    );
                }
            }
            if !claim(etcd, &store::subnet_key(&canonical), name)? {
                bail!("--subnet {canonical} is taken by another network");
            }
            canonical
        }
        None => default_subnet(etcd, name)?,
    };
    let vni = match crate::vni::allocate(etcd, name) {
        Ok(vni) => vni,
        Err(error) => {
            let _ = etcd.delete(&store::subnet_key(&subnet));
            return Err(error);
        }
    };
    let network = OverlayNetwork {
        name: name.to_string(),
        id: step04::container::random_id()?,
        created: step04::state::now(),
        driver: "overlay".to_string(),
        subnet: subnet.clone(),
        vni,
    };
    if !claim(
        etcd,
        &store::network_key(name),
        &serde_json::to_string(&network)?,
    )? {
        let _ = etcd.delete(&store::subnet_key(&subnet));
        let _ = etcd.delete(&store::vni_key(vni));
        bail!("network {name} already exists");
    }
    println!("{}", network.id);
    Ok(())
}

/// Create `key` = `value` if it is absent (one transaction); true if made.
fn claim(etcd: &Etcd, key: &str, value: &str) -> anyhow::Result<bool> {
    use crate::etcd::encode;
    let key = encode(key.as_bytes());
    let answer = etcd.txn(&serde_json::json!({
        "compare": [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
        "success": [{"request_put": {"key": key, "value": encode(value.as_bytes())}}],
    }))?;
    Ok(answer["succeeded"].as_bool().unwrap_or(false))
}

/// The first free /24 of docker's overlay pool: 10.0.0.0/24, 10.0.1.0/24...
fn default_subnet(etcd: &Etcd, name: &str) -> anyhow::Result<String> {
    let taken: Vec<crate::subnet::Subnet> = overlays(etcd)?
        .iter()
        .filter_map(|n| crate::subnet::Subnet::parse(&n.subnet).ok())
        .collect();
    for second in 0..=255u8 {
        for third in 0..=255u8 {
            let text = format!("10.{second}.{third}.0/24");
            let subnet = crate::subnet::Subnet::parse(&text)?;
            if taken.iter().any(|t| t.overlaps(&subnet)) {
                continue;
            }
            if claim(etcd, &store::subnet_key(&text), name)? {
                return Ok(text);
            }
        }
    }
    bail!("no free /24 left in 10.0.0.0/8 for an overlay network: give --subnet")
}

/// Every overlay network in the store.
fn overlays(etcd: &Etcd) -> anyhow::Result<Vec<OverlayNetwork>> {
    etcd.prefix(&store::networks_prefix())?
        .into_iter()
        .map(|kv| {
            serde_json::from_str(&kv.value)
                .with_context(|| format!("the store's {} is damaged", kv.key))
        })
        .collect()
}

/// `network inspect` of an overlay network: docker's fields.
fn inspect_overlay(etcd: &Etcd, network: &OverlayNetwork) -> anyhow::Result<serde_json::Value> {
    let prefix = crate::subnet::Subnet::parse(&network.subnet)?.prefix;
    let containers: serde_json::Map<String, serde_json::Value> =
        crate::endpoints::list(etcd, &network.name)?
            .into_iter()
            .map(|e| {
                (
                    e.id.clone(),
                    serde_json::json!({
                        "Name": e.name,
                        "IPv4Address": format!("{}/{prefix}", e.ip),
                        "MacAddress": e.mac,
                        "Host": e.host.to_string(),
                    }),
                )
            })
            .collect();
    Ok(serde_json::json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "global",
        "Driver": "overlay",
        "Subnet": network.subnet,
        "IPAM": { "Driver": "default", "Config": [{ "Subnet": network.subnet }] },
        "Options": { "com.docker.network.driver.overlay.vxlanid_list": network.vni.to_string() },
        "Containers": containers,
    }))
}

/// `network rm OVERLAY`: refused while any host has an endpoint on it.
fn rm_overlay(etcd: &Etcd, network: &OverlayNetwork) -> anyhow::Result<()> {
    let users = crate::endpoints::list(etcd, &network.name)?;
    if let Some(who) = users.first() {
        bail!(
            "network {} is in use by container {} on host {} ({} in all): remove them first",
            network.name,
            who.name,
            who.host,
            users.len()
        );
    }
    etcd.delete(&store::network_key(&network.name))?;
    etcd.delete(&store::vni_key(network.vni))?;
    etcd.delete(&store::subnet_key(&network.subnet))?;
    etcd.delete_prefix(&store::addresses_prefix(&network.name))?;
    Ok(())
}

fn network(
    root: &Path,
    cluster: &Cluster,
    command: NetworkCommand,
) -> anyhow::Result<Option<BridgeCommand>> {
    match command {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            name,
        } => match driver.as_str() {
            "bridge" => Ok(Some(BridgeCommand::Create {
                subnet,
                gateway,
                name,
            })),
            "overlay" => {
                let etcd = cluster.etcd()?;
                if gateway.is_some() {
                    bail!("--gateway: an overlay network has no gateway in minibox");
                }
                create_overlay(root, etcd, &name, subnet.as_deref())?;
                Ok(None)
            }
            other => bail!("-d {other}: minibox knows the drivers bridge and overlay"),
        },
        NetworkCommand::Ls => {
            let Some(etcd) = &cluster.etcd else {
                return Ok(Some(BridgeCommand::Ls));
            };
            let networks = step05::networks::Networks::new(root)?;
            networks.default_network()?;
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SUBNET", "SCOPE"]
                .map(String::from)
                .to_vec()];
            for n in networks.all()? {
                rows.push(vec![
                    short(&n.id).to_string(),
                    n.name,
                    n.driver,
                    n.subnet,
                    "local".into(),
                ]);
            }
            for n in overlays(etcd)? {
                rows.push(vec![
                    short(&n.id).to_string(),
                    n.name,
                    n.driver,
                    n.subnet,
                    "global".into(),
                ]);
            }
            print!("{}", step04::show::table(&rows));
            Ok(None)
        }
        NetworkCommand::Inspect { names } => {
            let mut overlay = Vec::new();
            for name in &names {
                if !is_local(root, name)? {
                    match cluster.overlay(name)? {
                        Some(network) => overlay.push(network),
                        None => bail!("no such network: {name}"),
                    }
                }
            }
            if overlay.is_empty() {
                return Ok(Some(BridgeCommand::Inspect { names }));
            }
            anyhow::ensure!(
                overlay.len() == names.len(),
                "inspect overlay networks and bridge networks apart"
            );
            let etcd = cluster.etcd()?;
            let all = overlay
                .iter()
                .map(|n| inspect_overlay(etcd, n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(None)
        }
        NetworkCommand::Rm { names } => {
            let mut bridges = Vec::new();
            for name in names {
                if is_local(root, &name)? {
                    bridges.push(name);
                    continue;
                }
                match cluster.overlay(&name)? {
                    Some(network) => {
                        rm_overlay(cluster.etcd()?, &network)?;
                        println!("{name}");
                    }
                    None => bridges.push(name),
                }
            }
            Ok((!bridges.is_empty()).then_some(BridgeCommand::Rm { names: bridges }))
        }
    }
}

/// Carry out a parsed command line (step 08 hands its other commands here).
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let cluster = Cluster::from(&cli)?;
    let store = step04::cli::store(cli.root.clone())?;
    let root = store.root().to_path_buf();
    crate::attach::sweep(&root);
    let step06 = |command| {
        step06::cli::dispatch(step06::cli::Cli {
            root: Some(root.clone()),
            command,
        })
    };
    match cli.command {
        Command::Run(args) => {
            if !is_local(&root, &args.run.network)? {
                if let Some(network) = cluster.overlay(&args.run.network)? {
                    return run_overlay(&root, &store, &cluster, network, &args);
                }
            }
            step06(step06::cli::Command::Run(args))
        }
        Command::Network(command) => match network(&root, &cluster, command)? {
            Some(bridge) => step06(step06::cli::Command::Network(bridge)),
            None => Ok(0),
        },
        Command::Manage(command) => step06(step06::cli::Command::Manage(command)),
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
