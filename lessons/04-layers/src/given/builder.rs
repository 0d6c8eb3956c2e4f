//! `build`: a Dockerfile, one instruction at a time, into an image.
//!
//! The image so far is a config. Instructions that only describe how to run
//! (ENV, WORKDIR, CMD, ENTRYPOINT, LABEL, USER) change the config and add an
//! `empty_layer` line to its history. RUN, COPY and ADD change files, so each
//! makes one layer:
//!
//! - **RUN** starts a container of the image so far (steps 02 and 03, no
//!   network unless `--network host`); when it exits, its writable layer
//!   (the overlay's upper dir) *is* the diff: [`crate::commit`] writes it as
//!   a tar, deletions as OCI whiteouts, and stores it.
//! - **COPY** / **ADD** stage the files from the build context in an empty
//!   dir laid out like the image (`/app/...`), and that dir is the diff.
//!
//! **Cache.** Each step has a key: the digest of the previous step's key, the
//! instruction and, for COPY/ADD, the digest of the files copied (the first
//! key is the base image's id). A key seen before, whose layer is still in
//! the store, gives that layer at once: `CACHED`. Change step k and every
//! key from k on changes, which is why the order of instructions matters.

use crate::cache_key::cache_key;
use crate::commit::{commit_layer, record_step};
use crate::container;
use crate::context::{Context as BuildContext, Entry};
use crate::digest::{self, Digest};
use crate::dockerfile::{self, Instruction, Kind};
use crate::image::{rfc3339, ImageConfig, Reference};
use crate::layer_tar::write_layer;
use crate::staging::Stage;
use crate::store::{Staging, Store};
use crate::{base, image_fs};
use anyhow::{bail, Context};
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// What `build` was asked.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub tag: Reference,
    /// The Dockerfile `-f` named; `None`: the context's own `Dockerfile`.
    pub file: Option<PathBuf>,
    /// The build context: the only files COPY and ADD may read.
    pub context: PathBuf,
    /// RUN's network: none (the default) or the host's.
    pub network: step02::cli::NetworkMode,
    /// Clamp every file time to this (SOURCE_DATE_EPOCH, or 0).
    pub epoch: u64,
}

/// A RUN whose command failed: `build` exits with 1, as docker's does.
#[derive(Debug)]
pub struct RunFailed(pub String);

impl std::fmt::Display for RunFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunFailed {}

/// The epoch for reproducible builds: `SOURCE_DATE_EPOCH` (the
/// reproducible-builds.org convention), else the Unix epoch.
pub fn epoch_from_env() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => text
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={text}: not a number of seconds")),
        _ => Ok(0),
    }
}

/// The Dockerfile the caller named with `-f`: links followed (the path is
/// the caller's choice, as the context's path is), but only a regular
/// file, and only so much of it.
fn read_named_dockerfile(path: &Path) -> anyhow::Result<String> {
    // O_NONBLOCK: a FIFO named by mistake opens at once and is refused.
    let fd = nix::fcntl::open(
        path,
        crate::context::READ_FLAGS,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("cannot read the Dockerfile {}", path.display()))?;
    crate::context::read_dockerfile(fd.into(), &format!("the Dockerfile {}", path.display()))
}

// ANCHOR: build
/// Build the image; print docker-like progress to `out`; return its id.
pub fn build(store: &Store, options: &BuildOptions, out: &mut dyn Write) -> anyhow::Result<Digest> {
    // Until the image is stored, its new layers belong to no image: keep
    // `rmi`'s garbage collection away from them.
    let _pin = store.pin()?;
    // What a killed build left behind goes first.
    container::sweep_abandoned(store);
    // Opened once: the Dockerfile and every COPY and ADD read beneath it.
    let context = BuildContext::open(&options.context)?;
    let text = match &options.file {
        None => context.dockerfile()?,
        Some(path) => read_named_dockerfile(path)?,
    };
    let instructions = dockerfile::parse(&text)?;
    let total = instructions.len();
    let (mut image, mut key) = (ImageConfig::default(), None::<Digest>);
    for (index, step) in instructions.iter().enumerate() {
        writeln!(out, "STEP {}/{total}: {}", index + 1, step.text)?;
        out.flush()?;
        if let Kind::From { image: from } = &step.kind {
            let (id, config) =
                from_image(store, from).with_context(|| format!("line {}", step.line))?;
            image = config;
            key = Some(id);
            continue;
        }
        let parent = key.as_ref().expect("the parser puts FROM first");
        let made = apply(store, options, &context, &mut image, parent, step, out)
            .with_context(|| format!("line {}: {}", step.line, step.text))?;
        key = Some(made);
    }
    image.created = rfc3339(options.epoch);
    crate::fault::point("build:layers");
    let id = store.put_image(&image)?;
    store.tag(&options.tag, &id)?;
    writeln!(out, "COMMIT {}", options.tag)?;
    writeln!(out, "Successfully tagged {}", options.tag)?;
    writeln!(out, "{id}")?;
    Ok(id)
}
// ANCHOR_END: build

/// The image FROM names, and its id (the first cache key). `base` is made
/// on first use; `scratch` is docker's empty image, never stored.
fn from_image(store: &Store, name: &str) -> anyhow::Result<(Digest, ImageConfig)> {
    if name == "scratch" {
        let empty = ImageConfig {
            architecture: base::architecture().to_string(),
            os: "linux".to_string(),
            created: rfc3339(0),
            ..ImageConfig::default()
        };
        return Ok((empty.id(), empty));
    }
    let id = match store.resolve(name)? {
        Some(id) => id,
        None if base::is_base(name) => base::ensure(store)?,
        None => bail!("base image {name} not found: import it first, or use FROM base (built in)"),
    };
    Ok((id.clone(), store.image(&id)?))
}

/// One instruction after FROM; returns the step's cache key.
fn apply(
    store: &Store,
    options: &BuildOptions,
    context: &BuildContext,
    image: &mut ImageConfig,
    parent: &Digest,
    step: &Instruction,
    out: &mut dyn Write,
) -> anyhow::Result<Digest> {
    let env = image.env_pairs();
    let expand = |word: &str| dockerfile::expand(word, &env);
    let mut copied = None;
    let staged_layer = match &step.kind {
        Kind::Copy { sources, dest } | Kind::Add { sources, dest } => {
            let extract = matches!(step.kind, Kind::Add { .. });
            let sources: Vec<String> = sources
                .iter()
                .map(|s| expand(s))
                .collect::<Result<_, _>>()?;
            let dest = expand(dest)?;
            let (staging, digest) = stage_copy(
                store,
                context,
                image,
                &sources,
                &dest,
                extract,
                options.epoch,
            )?;
            copied = Some(digest);
            Some(staging)
        }
        _ => None,
    };
    let key = cache_key(parent, &step.text, copied.as_ref(), options.epoch);
    if !step.kind.makes_layer() {
        configure(image, &step.kind, &expand)?;
        record_step(image, &step.text, None, options.epoch);
        return Ok(key);
    }
    let layer = match store.cached(&key) {
        Some(layer) => {
            writeln!(out, "--> CACHED {}", layer.short())?;
            layer
        }
        None => {
            let layer = match (staged_layer, &step.kind) {
                (Some(staging), _) => {
                    commit_layer(store, &staging.path().join("layer"), options.epoch)?
                }
                (None, Kind::Run(command)) => run_step(store, options, image, command.argv())?,
                _ => unreachable!("only RUN, COPY and ADD make layers"),
            };
            store.remember(&key, &layer)?;
            writeln!(
                out,
                "--> {} ({})",
                layer.short(),
                crate::show::size(store.layer_size(&layer)?)
            )?;
            layer
        }
    };
    record_step(image, &step.text, Some(layer), options.epoch);
    Ok(key)
}

/// The config-only instructions.
fn configure(
    image: &mut ImageConfig,
    kind: &Kind,
    expand: &dyn Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    match kind {
        Kind::Env(pairs) => {
            // Every value sees the environment from before this ENV, as
            // docker's: `ENV A=1 B=$A` takes the old A.
            let values: Vec<String> = pairs
                .iter()
                .map(|(_, v)| expand(v))
                .collect::<Result<_, _>>()?;
            for ((key, _), value) in pairs.iter().zip(values) {
                image.set_env(key, &value);
            }
        }
        Kind::Label(pairs) => {
            for (key, value) in pairs {
                image.config.labels.insert(expand(key)?, expand(value)?);
            }
        }
        Kind::Workdir(dir) => {
            let dir = expand(dir)?;
            image.config.working_dir = resolve_in_image(&image.config.working_dir, &dir)
                .display()
                .to_string();
        }
        Kind::Cmd(command) => image.config.cmd = Some(command.argv()),
        Kind::Entrypoint(command) => {
            image.config.entrypoint = Some(command.argv());
            // docker: setting ENTRYPOINT resets a CMD inherited from the base.
            image.config.cmd = None;
        }
        Kind::User(user) => image.config.user = expand(user)?,
        Kind::From { .. } | Kind::Run(_) | Kind::Copy { .. } | Kind::Add { .. } => {
            unreachable!("handled by the caller")
        }
    }
    Ok(())
}

/// `dir` against the current WORKDIR, as an absolute path in the image.
fn resolve_in_image(workdir: &str, dir: &str) -> PathBuf {
    let base = if workdir.is_empty() { "/" } else { workdir };
    let mut path = PathBuf::from("/");
    for part in Path::new(base).join(dir).components() {
        match part {
            Component::Normal(name) => path.push(name),
            Component::ParentDir => {
                path.pop();
            }
            _ => {}
        }
    }
    path
}

/// RUN: a container of the image so far; its writable layer is the layer.
fn run_step(
    store: &Store,
    options: &BuildOptions,
    image: &ImageConfig,
    argv: Vec<String>,
) -> anyhow::Result<Digest> {
    if !image.config.user.is_empty() && !["root", "0", "0:0"].contains(&image.config.user.as_str())
    {
        bail!(
            "USER {}: running as another user is not supported yet (RUN runs as root)",
            image.config.user
        );
    }
    let workdir = match image.config.working_dir.as_str() {
        "" => None,
        dir => Some(PathBuf::from(dir)),
    };
    let process = step01::RunSpec {
        command: argv,
        env: image.config.env.clone(),
        workdir,
    };
    let namespaces = step02::cli::NamespaceArgs {
        hostname: None,
        pid: step02::cli::NsMode::Private,
        ipc: step02::cli::NsMode::Private,
        uts: step02::cli::NsMode::Private,
        cgroupns: step02::cli::NsMode::Private,
        userns: false,
    };
    let own_network = options.network == step02::cli::NetworkMode::None;
    let spec = namespaces.spec(process, own_network)?;
    let (code, container) = match container::run(store, image, spec, false) {
        Ok(ran) => ran,
        // The command could not start (not found, not executable): the
        // RUN failed, as docker says, with exit 1.
        Err(error) if error.downcast_ref::<step01::status::Failure>().is_some() => {
            return Err(RunFailed(format!("{error:#}")).into());
        }
        Err(error) => return Err(error),
    };
    if code != 0 {
        return Err(RunFailed(format!("the command exited with code {code}")).into());
    }
    crate::fault::point("build:ran");
    let layer = commit_layer(store, &container.upper(), options.epoch)?;
    drop(container);
    Ok(layer)
}

// ANCHOR: stage_copy
/// COPY / ADD: lay the sources out as the layer will hold them, write that
/// as a tar; returns the staging dir (its `layer.tar` is the layer) and
/// the tar's digest, which the cache key includes.
fn stage_copy(
    store: &Store,
    context: &BuildContext,
    image: &ImageConfig,
    sources: &[String],
    dest: &str,
    extract_tars: bool,
    epoch: u64,
) -> anyhow::Result<(Staging, Digest)> {
    let layers = image_fs::layers_of(store, image);
    // Where dest really is in the image: links followed inside it
    // (`COPY x /bin/` lands in /usr/bin, and /bin stays a link).
    let target = image_fs::resolve(&layers, &resolve_in_image(&image.config.working_dir, dest));
    let dest_is_dir = dest.ends_with('/')
        || dest.ends_with("/.")
        || dest == "."
        || sources.len() > 1
        || image_fs::lookup(&layers, &target).is_some_and(|(_, meta)| meta.is_dir());
    let staging = store.temp_dir("copy")?;
    let root = staging.path().join("layer");
    fs::create_dir(&root)?;
    let stage = Stage {
        root: root.clone(),
        layers: &layers,
    };
    for source in sources {
        if source.is_empty() {
            bail!("a source is empty (a variable that expands to nothing?)");
        }
        // Opened beneath the context, links in it followed only while
        // they stay inside; from here on, only this fd is read.
        let opened = context.source(source)?;
        match opened {
            // A dir's *contents* go to dest, as docker does.
            Entry::Dir(_) => stage.copy(opened, source, &target)?,
            Entry::File(tar) if extract_tars && is_tar(&tar)? => stage
                .extract(tar, &target)
                .with_context(|| format!("cannot extract {source}"))?,
            // Named as the Dockerfile names it (a link's name, not its
            // target's), as docker does.
            _ if dest_is_dir => {
                let name = Path::new(source).file_name().unwrap_or_default();
                stage.copy(opened, source, &target.join(name))?
            }
            _ => stage.copy(opened, source, &target)?,
        }
    }
    let tar = staging.path().join("layer.tar");
    let file = fs::File::create(&tar)?;
    write_layer(&root, std::io::BufWriter::new(file), epoch)?;
    let (digest, _) = digest::diff_id(fs::File::open(&tar)?)?;
    Ok((staging, digest))
}
// ANCHOR_END: stage_copy

/// Does the open `file` start like a tar? Read with pread(2), at offset
/// 0, so the file's own offset stays at 0 for the extraction.
fn is_tar(file: &fs::File) -> anyhow::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; 512];
    let mut read = 0;
    while read < header.len() {
        match file.read_at(&mut header[read..], read as u64)? {
            0 => break,
            n => read += n,
        }
    }
    // POSIX and GNU tars say "ustar" at offset 257 of the first header.
    Ok(read == 512 && &header[257..262] == b"ustar")
}
