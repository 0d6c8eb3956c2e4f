//! The command line of step 04: `run IMAGE`, and the image commands
//! (`build`, `import`, `images`, `inspect`, `history`, `rmi`), named and
//! shaped as docker's.

use crate::builder::{self, BuildOptions, RunFailed};
use crate::image::{rfc3339, History, ImageConfig, Reference, RootFs};
use crate::state::Containers;
use crate::store::{Store, DEFAULT_ROOT};
use crate::{base, container, exec, lifecycle, monitor, show};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use step01::cli::{fail, parse};

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 04: images and layers)"
)]
pub struct Cli {
    /// Where images, layers and containers live [env: MINIBOX_ROOT]
    /// [default: /var/lib/minibox]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container of IMAGE (`base` is built in).
    Run(RunArgs),
    #[command(flatten)]
    Manage(Manage),
}

/// Every command but `run`: images and containers (step 05 keeps them as
/// they are and brings its own `run`).
#[derive(Debug, Subcommand)]
pub enum Manage {
    /// List containers (running ones; all with -a).
    Ps {
        /// Show all containers, also the exited ones.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Print what a detached container wrote (stdout and stderr).
    Logs {
        /// Keep printing until the container exits.
        #[arg(short = 'f', long)]
        follow: bool,
        container: String,
    },
    /// Stop containers: SIGTERM, then SIGKILL after a grace period.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECS")]
        time: u64,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Send a signal to containers (default: KILL).
    Kill {
        #[arg(
            short = 's',
            long = "signal",
            default_value = "KILL",
            value_name = "SIGNAL"
        )]
        signal: String,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Remove containers: their state, log and writable layer.
    Rm {
        /// Kill a running container first.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Build an image from a Dockerfile.
    Build(BuildArgs),
    /// Make a one-layer image of a (plain, uncompressed) tar of a root filesystem.
    Import {
        /// The tar file.
        tarball: PathBuf,
        /// NAME[:TAG] for the image.
        name: String,
    },
    /// List images, with their shared and unique sizes.
    Images,
    /// Show a container's or an image's details as JSON.
    Inspect {
        /// A Go-template-like format: {{.Id}}, {{json .RootFS.Layers}}.
        #[arg(short = 'f', long, value_name = "TEMPLATE")]
        format: Option<String>,
        #[arg(required = true, value_name = "NAME")]
        images: Vec<String>,
    },
    /// Show how an image was made, one line per instruction.
    History {
        /// Don't shorten ids and commands.
        #[arg(long)]
        no_trunc: bool,
        image: String,
    },
    /// Remove images (and the layers no other image uses).
    Rmi {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
}

/// `run`'s own flags, shared with step 05's `run`.
#[derive(Debug, Clone, Args)]
pub struct ContainerOptions {
    /// Run in the background: print the container's id and return.
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// A name for the container (default: a random one).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,

    /// Keep stdin open for the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Give the command a terminal (a pseudo-terminal).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Set an environment variable (KEY=VALUE), or copy KEY from yours.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Working directory of the command (default: the image's WORKDIR).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Mount the container's / read-only (/tmp stays writable).
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: ContainerOptions,

    #[command(flatten)]
    pub namespaces: step02::cli::NamespaceArgs,

    #[command(flatten)]
    pub network: step02::cli::NetworkArgs,

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

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Keep stdin open for the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Set an environment variable (KEY=VALUE), or copy KEY from yours.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Working directory of the command, inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// The container: name, id, or a unique prefix of the id.
    pub container: String,

    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// NAME[:TAG] of the image.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]", required = true)]
    pub tag: String,

    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The network for RUN: none, or the host's.
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pub network: step02::cli::NetworkMode,

    /// The build context: the directory COPY and ADD read from.
    pub context: PathBuf,
}

/// The store at `--root`, `$MINIBOX_ROOT`, or the default.
pub fn store(root: Option<PathBuf>) -> anyhow::Result<Store> {
    let root = root
        .or_else(|| std::env::var_os("MINIBOX_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    Store::open(&root)
}

/// An image by name or id; `base` is made on first use.
pub fn find_image(store: &Store, text: &str) -> anyhow::Result<crate::digest::Digest> {
    match store.resolve(text)? {
        Some(id) => Ok(id),
        None if base::is_base(text) => base::ensure(store),
        None => bail!("no such image: {text}"),
    }
}

// ANCHOR: run
fn run(store: &Store, args: &RunArgs) -> anyhow::Result<i32> {
    let own_network = args.network.network == step02::cli::NetworkMode::None;
    let mode = if own_network { "none" } else { "host" };
    let network = Network {
        mode,
        own_namespace: own_network,
        attach: &mut container::Nothing,
    };
    run_container(
        store,
        &args.options,
        &args.namespaces,
        network,
        &args.image,
        &args.command,
    )
}

/// How a container is networked: step 04 knows `none` and `host`; step 05
/// attaches bridges.
pub struct Network<'a> {
    /// What `inspect` shows as `HostConfig.NetworkMode`.
    pub mode: &'a str,
    /// A network namespace of its own (every mode but `host`).
    pub own_namespace: bool,
    pub attach: &'a mut dyn container::Attach,
}

/// `run` for this step and the next: the image, its config, the container.
/// The container's options, checked before anything is made: a run with
/// a bad name, hostname, environment or working dir must leave nothing
/// behind (not even a later step's default network).
pub fn check_options(
    args: &ContainerOptions,
    namespaces: &step02::cli::NamespaceArgs,
) -> anyhow::Result<()> {
    if let Some(name) = &args.name {
        crate::state::validate_name(name)?;
    }
    if let Some(hostname) = &namespaces.hostname {
        step02::hostname::validate(hostname)?;
    }
    step01::env::build(&args.env, |key| std::env::var(key).ok())?;
    if let Some(dir) = args.workdir.as_ref().filter(|d| !d.is_absolute()) {
        bail!(
            "-w {}: the working dir must be an absolute path",
            dir.display()
        );
    }
    // -it relays *your* terminal to the container's: from a pipe or a file
    // there is none, so fail at once, as docker does. Detached (-itd), the
    // container's terminal needs nothing from yours.
    if args.interactive && args.tty && !args.detach && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    Ok(())
}

pub fn run_container(
    store: &Store,
    args: &ContainerOptions,
    namespaces: &step02::cli::NamespaceArgs,
    network: Network,
    image_text: &str,
    command: &[String],
) -> anyhow::Result<i32> {
    let pin = store.pin()?;
    let id = find_image(store, image_text)?;
    let image = store.image(&id)?;
    let overrides = step01::env::build(&args.env, |key| std::env::var(key).ok())?;
    if let Some(dir) = &args.workdir {
        if !dir.is_absolute() {
            bail!(
                "-w {}: the working dir must be an absolute path",
                dir.display()
            );
        }
    }
    let workdir = args.workdir.clone().or_else(|| {
        (!image.config.working_dir.is_empty()).then(|| PathBuf::from(&image.config.working_dir))
    });
    let process = step01::RunSpec {
        command: container::command_line(&image, command)?,
        env: container::environment(&image, &overrides),
        workdir,
    };
    if !image.config.user.is_empty() && !["root", "0", "0:0"].contains(&image.config.user.as_str())
    {
        bail!(
            "USER {}: running as another user is not supported yet",
            image.config.user
        );
    }
    let spec = namespaces.spec(process, network.own_namespace)?;
    let plan = monitor::Plan {
        store,
        image_name: image_text,
        image_id: id.as_str(),
        image: &image,
        spec,
        read_only: args.read_only,
        network_mode: network.mode,
        hostname_given: namespaces.hostname.is_some(),
        pin: Some(pin),
        attach: network.attach,
    };
    let lifecycle = monitor::Lifecycle {
        detach: args.detach,
        name: args.name.clone(),
        auto_remove: args.rm,
        interactive: args.interactive,
        tty: args.tty,
    };
    monitor::run(plan, &lifecycle)
}
// ANCHOR_END: run

fn build(store: &Store, args: &BuildArgs) -> anyhow::Result<i32> {
    let options = BuildOptions {
        tag: Reference::parse(&args.tag)?,
        file: args.file.clone(),
        context: args.context.clone(),
        network: args.network,
        epoch: builder::epoch_from_env()?,
    };
    let mut out = std::io::stdout().lock();
    match builder::build(store, &options, &mut out) {
        Ok(_) => Ok(0),
        // The RUN's command failed: its output said why; exit 1 as docker.
        Err(error) if error.chain().any(|e| e.is::<RunFailed>()) => {
            step01::cli::report(&format!("{error:#}"));
            Ok(1)
        }
        Err(error) => Err(error),
    }
}

/// `import`: docker's, for a plain tar. The tar becomes the one layer as it
/// is: its digest is the image's only diff_id.
fn import(store: &Store, tarball: &PathBuf, name: &str) -> anyhow::Result<i32> {
    use std::io::Read;
    let reference = Reference::parse(name)?;
    let mut magic = [0u8; 2];
    let mut file = std::fs::File::open(tarball)
        .with_context(|| format!("cannot open {}", tarball.display()))?;
    if file.metadata()?.is_dir() {
        bail!(
            "{} is a directory: import takes a tar file",
            tarball.display()
        );
    }
    let _ = file.read(&mut magic)?;
    if magic == [0x1f, 0x8b] {
        bail!(
            "{}: compressed (gzip); import takes a plain tar: gunzip it first",
            tarball.display()
        );
    }
    let empty = tar::Archive::new(std::fs::File::open(tarball)?)
        .entries()
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if empty {
        bail!(
            "{}: an empty tar, with no file to import",
            tarball.display()
        );
    }
    let staging = store.temp_dir("import")?;
    let copy = staging.path().join("layer.tar");
    std::fs::copy(tarball, &copy).with_context(|| format!("cannot read {}", tarball.display()))?;
    let diff_id = store
        .add_layer(&copy)
        .with_context(|| format!("cannot import {}", tarball.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let config = ImageConfig {
        created: rfc3339(now),
        architecture: base::architecture().to_string(),
        os: "linux".to_string(),
        rootfs: RootFs {
            diff_ids: vec![diff_id],
            ..RootFs::default()
        },
        history: vec![History {
            created: rfc3339(now),
            created_by: format!("minibox import {}", tarball.display()),
            comment: "Imported from a tarball".to_string(),
            empty_layer: false,
        }],
        ..ImageConfig::default()
    };
    let id = store.put_image(&config)?;
    store.tag(&reference, &id)?;
    println!("{id}");
    Ok(0)
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Run(args) = &cli.command {
        check_options(&args.options, &args.namespaces)?;
    }
    let store = store(cli.root)?;
    match cli.command {
        Command::Run(args) => run(&store, &args),
        Command::Manage(command) => manage(&store, command),
    }
}

/// Every command but `run`.
pub fn manage(store: &Store, command: Manage) -> anyhow::Result<i32> {
    let store = store.clone();
    match command {
        Manage::Build(args) => build(&store, &args),
        Manage::Import { tarball, name } => import(&store, &tarball, &name),
        Manage::Images => {
            print!("{}", show::images(&store)?);
            Ok(0)
        }
        Manage::Inspect { format, images } => {
            let containers = Containers::new(&store);
            let mut all = Vec::new();
            for text in &images {
                // A container first (docker does the same), then an image.
                match containers.lookup(text)? {
                    Some(record) => all.push(serde_json::to_value(&record)?),
                    None => {
                        let id = find_image(&store, text)
                            .map_err(|_| anyhow::anyhow!("no such container or image: {text}"))?;
                        all.push(show::inspect(&store, &id)?)
                    }
                }
            }
            match format {
                Some(template) => {
                    for value in &all {
                        println!("{}", show::format(&template, value)?);
                    }
                }
                None => println!("{}", serde_json::to_string_pretty(&all)?),
            }
            Ok(0)
        }
        Manage::History { no_trunc, image } => {
            print!(
                "{}",
                show::history(&store, &find_image(&store, &image)?, no_trunc)?
            );
            Ok(0)
        }
        Manage::Ps { all } => {
            print!("{}", lifecycle::ps(&Containers::new(&store), all)?);
            Ok(0)
        }
        Manage::Exec(args) => {
            let record = Containers::new(&store).find(&args.container)?;
            let env = step01::env::build(&args.env, |key| std::env::var(key).ok())?;
            exec::exec(&record, args.command, env, args.workdir, args.interactive)
        }
        Manage::Logs { follow, container } => {
            lifecycle::logs(&Containers::new(&store), &container, follow)?;
            Ok(0)
        }
        Manage::Stop { time, containers } => {
            for text in &containers {
                lifecycle::stop(&Containers::new(&store), text, time)?;
                println!("{text}");
            }
            Ok(0)
        }
        Manage::Kill { signal, containers } => {
            for text in &containers {
                lifecycle::kill_container(&Containers::new(&store), text, &signal)?;
                println!("{text}");
            }
            Ok(0)
        }
        Manage::Rm { force, containers } => {
            for text in &containers {
                lifecycle::rm(&Containers::new(&store), text, force)?;
                println!("{text}");
            }
            Ok(0)
        }
        Manage::Rmi { images } => {
            // All or nothing for the names: check them all first.
            for text in &images {
                if store.resolve(text)?.is_none() {
                    bail!("no such image: {text}");
                }
            }
            for text in &images {
                for line in store.remove(text)? {
                    println!("{line}");
                }
            }
            Ok(0)
        }
    }
}

/// The runtime's entry point for this step.
pub fn main() -> i32 {
    let cli: Cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    dispatch(cli).unwrap_or_else(|error| fail(&error))
}
