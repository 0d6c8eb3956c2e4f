//! The command line of step 08, the finished runtime: step 07's commands
//! and flags, unchanged, plus images in and out of the store.
//!
//! ```text
//! minibox save -o app.tar app:1                 docker-archive (+ OCI layout) in a tar
//! minibox save --format oci -o app-oci app:1    an OCI image layout, a directory
//! minibox load -i app.tar                       either, or a podman/skopeo one
//! minibox tag app:1 10.77.0.1:5000/app:1
//! minibox push --tls-verify=false 10.77.0.1:5000/app:1
//! minibox pull --tls-verify=false 10.77.0.1:5000/app:1
//! ```

use crate::blobs::{BlobSource, LayoutBlobs};
use crate::http::Registry;
use crate::layout::{Found, Named};
use crate::progress::Progress;
use crate::pull::Repository;
use crate::reference::Remote;
use crate::sources::Sources;
use anyhow::{bail, Context};
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use oci_spec::image::Descriptor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use step01::cli::{fail, parse};
use step04::digest::Digest;
use step04::image::Reference;
use step04::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 08: images in and out)"
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

    /// This host's underlay IPv4 address [env: MINIBOX_CLUSTER_ADVERTISE]
    #[arg(long = "cluster-advertise", global = true, value_name = "ADDRESS")]
    pub cluster_advertise: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// docker-archive: a tar with docker's manifest.json (and an OCI layout)
    Docker,
    /// an OCI image layout: a directory
    Oci,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save images to a tar (docker-archive) or a directory (OCI image layout).
    Save {
        /// Where to write: a file (docker), a new or empty directory (oci).
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "docker")]
        format: Format,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Load images from a docker-archive, an OCI archive or an OCI layout directory.
    Load {
        #[arg(short = 'i', long = "input", value_name = "PATH")]
        input: PathBuf,
    },
    /// Give an image another name: TARGET refers to SOURCE's image.
    Tag { source: String, target: String },
    /// Pull an image from a registry: HOST:PORT/NAME[:TAG|@DIGEST].
    Pull {
        /// false: speak plain HTTP to this registry (a lab's own).
        #[arg(long = "tls-verify", action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
        tls_verify: bool,
        reference: String,
    },
    /// Push an image to a registry: its name is HOST:PORT/NAME[:TAG].
    Push {
        /// false: speak plain HTTP to this registry (a lab's own).
        #[arg(long = "tls-verify", action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
        tls_verify: bool,
        reference: String,
    },
    #[command(flatten)]
    Step07(step07::cli::Command),
}

/// `save`: the images by name (each name an entry) or by id (no name).
fn save(store: &Store, output: &Path, format: Format, images: &[String]) -> anyhow::Result<()> {
    let mut named = Vec::new();
    for text in images {
        let id = step04::cli::find_image(store, text)?;
        let name = Reference::parse(text).ok().filter(|r| {
            store
                .repositories()
                .ok()
                .and_then(|m| m.get(&r.to_string()).cloned())
                == Some(id.clone())
        });
        named.push(Named { id, name });
    }
    match format {
        Format::Oci => {
            if output.exists()
                && std::fs::read_dir(output)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                bail!("{}: exists and is not an empty directory", output.display());
            }
            let partial = PathBuf::from(format!("{}.partial", output.display()));
            let _ = std::fs::remove_dir_all(&partial);
            let result = crate::layout::write(store, &partial, &named);
            if let Err(e) = result {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
            let _ = std::fs::remove_dir(output);
            std::fs::rename(&partial, output)
                .with_context(|| format!("cannot write {}", output.display()))?;
        }
        Format::Docker => {
            if output.is_dir() {
                bail!(
                    "{}: a directory; the docker format is a file (or use --format oci)",
                    output.display()
                );
            }
            let staging = store.temp_dir("save")?;
            crate::layout::write(store, staging.path(), &named)?;
            let mut images: Vec<(oci_spec::image::ImageManifest, Vec<String>)> = Vec::new();
            let mut seen: Vec<Digest> = Vec::new();
            for image in &named {
                let names: Vec<String> = image.name.iter().map(|n| n.to_string()).collect();
                if let Some(i) = seen.iter().position(|id| *id == image.id) {
                    images[i].1.extend(names);
                } else {
                    seen.push(image.id.clone());
                    images.push((crate::manifest::manifest(store, &image.id)?, names));
                }
            }
            crate::archive::add_docker_manifest(staging.path(), &images)?;
            crate::archive::tar_dir(staging.path(), output)?;
        }
    }
    Ok(())
}

/// `load`: every image of the input, with its names. Prints docker's lines.
fn load(store: &Store, input: &Path) -> anyhow::Result<()> {
    let staging;
    let dir = if input.is_dir() {
        input.to_path_buf()
    } else {
        staging = store.temp_dir("load")?;
        crate::archive::untar(input, staging.path())?;
        staging.path().to_path_buf()
    };
    let mut loaded: Vec<(Digest, Vec<String>)> = Vec::new();
    if dir.join("oci-layout").exists() {
        let found: Vec<Found> = crate::layout::read(&dir)?;
        for image in found {
            let id = crate::fetch::image(store, &LayoutBlobs(&dir), &image.manifest)?;
            loaded.push((id, image.name.into_iter().collect()));
        }
    } else if dir.join("manifest.json").exists() {
        let (images, blobs) = crate::archive::docker_images(&dir)?;
        for (manifest, names) in images {
            let id = crate::fetch::image(store, &blobs, &manifest)?;
            loaded.push((id, names));
        }
    } else {
        bail!("{}: neither an OCI image layout (oci-layout, index.json) nor a docker-archive (manifest.json)", input.display());
    }
    // Names last, all checked first: a bad name leaves no name half-set.
    let mut tags = Vec::new();
    for (id, names) in &loaded {
        for name in names {
            let name = name.strip_prefix("docker.io/library/").unwrap_or(name);
            tags.push((
                Reference::parse(name)
                    .with_context(|| format!("the archive names an image {name:?}"))?,
                id.clone(),
            ));
        }
    }
    for (reference, id) in &tags {
        store.tag(reference, id)?;
        println!("Loaded image: {reference}");
    }
    for (id, names) in &loaded {
        if names.is_empty() {
            println!("Loaded image ID: {id}");
        }
    }
    Ok(())
}

fn registry(remote: &Remote, tls_verify: bool) -> anyhow::Result<Registry> {
    Registry::new(&remote.registry, !tls_verify, Arc::new(Progress::new()))
}

/// `pull`: prints what docker prints.
fn pull(store: &Store, text: &str, tls_verify: bool) -> anyhow::Result<()> {
    let remote = Remote::parse(text)?;
    let registry = registry(&remote, tls_verify)?;
    let repo = Repository {
        registry: &registry,
        name: remote.repository.clone(),
    };
    println!("{}: Pulling from {}", remote.reference(), remote.repository);
    // What the name meant before: docker says "Image is up to date" when
    // the pull changed nothing, "Downloaded newer image" otherwise.
    let before = match remote.digest {
        None => store.resolve(&remote.local().to_string())?,
        Some(_) => None,
    };
    let (manifest, digest) = crate::pull::resolve(&repo, &remote.reference())?;
    let fetched = Opened::new(&repo);
    let id = crate::fetch::image(store, &fetched, &manifest)?;
    // Each layer's end state, as docker prints it (on a terminal only): a
    // layer the store had was never asked for.
    for layer in manifest.layers() {
        let digest = layer.digest().to_string();
        let status = if fetched.asked(&digest) {
            "Pull complete"
        } else {
            "Already exists"
        };
        registry.progress().status(&digest, status);
    }
    let mut sources = Sources::of(store, &remote.registry);
    let blobs: Vec<String> = manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    let _ = sources.remember(store, &remote.repository, &blobs);
    let pinned = format!("{}@{digest}", remote.local().name);
    let up_to_date = match remote.digest {
        None => before.as_ref() == Some(&id),
        Some(_) => store.repo_digests_of(&id).contains(&pinned),
    };
    if remote.digest.is_none() {
        store.tag(&remote.local(), &id)?;
    }
    store.add_repo_digest(&remote.local().name, &digest, &id)?;
    println!("Digest: {digest}");
    if up_to_date {
        println!("Status: Image is up to date for {remote}");
    } else {
        println!("Status: Downloaded newer image for {remote}");
    }
    println!("{remote}");
    Ok(())
}

/// A blob source that remembers which blobs were asked of it.
struct Opened<'a> {
    inner: &'a dyn BlobSource,
    asked: std::cell::RefCell<Vec<String>>,
}

impl<'a> Opened<'a> {
    fn new(inner: &'a dyn BlobSource) -> Opened<'a> {
        Opened {
            inner,
            asked: Default::default(),
        }
    }

    fn asked(&self, digest: &str) -> bool {
        self.asked.borrow().iter().any(|d| d == digest)
    }
}

impl BlobSource for Opened<'_> {
    fn open(&self, descriptor: &Descriptor) -> anyhow::Result<Box<dyn std::io::Read + '_>> {
        self.asked
            .borrow_mut()
            .push(descriptor.digest().to_string());
        self.inner.open(descriptor)
    }
}

/// `push`: the image named HOST:PORT/NAME:TAG in the store.
fn push(store: &Store, text: &str, tls_verify: bool) -> anyhow::Result<()> {
    let remote = Remote::parse(text)?;
    if remote.digest.is_some() {
        bail!("{text}: push a NAME:TAG, not a digest");
    }
    let id = store
        .resolve(&remote.local().to_string())?
        .with_context(|| {
            format!(
                "no such image: {} (tag an image with this name first: minibox tag IMAGE {})",
                remote.local(),
                remote.local()
            )
        })?;
    let registry = registry(&remote, tls_verify)?;
    let repo = Repository {
        registry: &registry,
        name: remote.repository.clone(),
    };
    println!(
        "The push refers to repository [{}/{}]",
        remote.registry, remote.repository
    );
    let mut sources = Sources::of(store, &remote.registry);
    let digest = crate::push::push(store, &repo, &remote.tag, &id, &|blob| {
        sources.repo_of(blob, &remote.repository)
    })?;
    let manifest = crate::manifest::manifest(store, &id)?;
    let mut blobs: Vec<String> = manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    blobs.push(id.to_string());
    let _ = sources.remember(store, &remote.repository, &blobs);
    store.add_repo_digest(&remote.local().name, &digest, &id)?;
    let size = serde_json::to_vec(&manifest)?.len();
    println!("{}: digest: {digest} size: {size}", remote.tag);
    Ok(())
}

/// Carry out a parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let command = match cli.command {
        Command::Step07(command) => {
            return step07::cli::dispatch(step07::cli::Cli {
                root: cli.root,
                cluster_store: cli.cluster_store,
                cluster_advertise: cli.cluster_advertise,
                command,
            })
        }
        other => other,
    };
    let store = step04::cli::store(cli.root)?;
    // A failed load or pull may have taken layers in before it failed:
    // with no image naming them they go again (nothing half-made).
    let sweep = |result: anyhow::Result<()>| {
        if result.is_err() {
            let _ = store.sweep_layers();
        }
        result
    };
    match command {
        Command::Save {
            output,
            format,
            images,
        } => save(&store, &output, format, &images)?,
        Command::Load { input } => sweep(load(&store, &input))?,
        Command::Tag { source, target } => {
            let id = step04::cli::find_image(&store, &source)?;
            store.tag(&Reference::parse(&target)?, &id)?;
        }
        Command::Pull {
            tls_verify,
            reference,
        } => sweep(pull(&store, &reference, tls_verify))?,
        Command::Push {
            tls_verify,
            reference,
        } => push(&store, &reference, tls_verify)?,
        Command::Step07(_) => unreachable!("handed to step 07 above"),
    }
    Ok(0)
}

/// The runtime's entry point.
pub fn main() -> i32 {
    let cli: Cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    dispatch(cli).unwrap_or_else(|error| fail(&error))
}
