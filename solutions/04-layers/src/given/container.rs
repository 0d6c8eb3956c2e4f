//! A container of an image: its own writable layer on top of the image's,
//! mounted as its root filesystem.
//!
//! The runtime makes three empty dirs under `ROOT/containers/<id>/`:
//! `upper` (the container's writable layer), `work` (overlayfs's scratch)
//! and `merged` (the mount point). Inside the new mount namespace, once
//! mounts are private (step 02), the child mounts the overlay on `merged`;
//! step 03 then pivots into it. The mount lives and dies with the
//! container's mount namespace: nothing to unmount on the host, ever.

use crate::image::ImageConfig;
use crate::overlay::Overlay;
use crate::store::Store;
use anyhow::{bail, Context};
use nix::errno::Errno;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// A container's dirs. A build's containers are removed (writable layer
/// and all) when dropped; `run`'s stay until `rm`.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    dir: PathBuf,
    ephemeral: bool,
    /// Removed when it ends (a build's, `run --rm`): its overlay is
    /// mounted `volatile`, with no sync of its writes.
    pub removed_at_end: bool,
    /// A build's container holds an flock on `owner.lock` for its life:
    /// a dir whose lock is free belongs to a build that was killed.
    _owner: Option<nix::fcntl::Flock<fs::File>>,
}

/// What a build's container holds locked while it lives.
const OWNER_LOCK: &str = "owner.lock";

impl Container {
    /// Make the dirs of a new container in the store, removed on drop.
    pub fn create(store: &Store) -> anyhow::Result<Container> {
        let mut container = Container::create_kept(store, &random_id()?)?;
        container.ephemeral = true;
        container.removed_at_end = true;
        let lock = fs::File::create(container.dir.join(OWNER_LOCK))?;
        // flock(2) LOCK_EX: released by the kernel when this process dies,
        // however it dies; `sweep_abandoned` tests it with LOCK_NB.
        let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)?;
        container._owner = Some(held);
        Ok(container)
    }

    /// Make the dirs of a container that outlives this process.
    pub fn create_kept(store: &Store, id: &str) -> anyhow::Result<Container> {
        let dir = store.root().join("containers").join(id);
        for sub in ["upper", "work", "merged"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        Ok(Container {
            id: id.to_string(),
            dir,
            ephemeral: false,
            removed_at_end: false,
            _owner: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The container's writable layer: after it ran, exactly what it changed.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// The overlay of an image's layers (top first) and this container's.
    pub fn overlay(&self, store: &Store, image: &ImageConfig) -> anyhow::Result<Overlay> {
        if image.rootfs.diff_ids.is_empty() {
            bail!(
                "the image has no layers: nothing to run (FROM scratch needs a COPY or ADD first)"
            );
        }
        let mut lower: Vec<PathBuf> = Vec::new();
        for diff_id in image.rootfs.diff_ids.iter().rev() {
            if !store.has_layer(diff_id) {
                bail!("layer {diff_id} of the image is missing from the store");
            }
            let dir = store.layer_diff(diff_id);
            // One layer twice in a stack (two RUNs that changed nothing
            // both make the empty layer): overlayfs refuses a dir it
            // already has (ELOOP). Its topmost place is enough: the same
            // files there shadow the lower copy entirely. (Snapshotters key
            // stacks by chain_id, which differs at each place, and never
            // meet this.)
            if !lower.contains(&dir) {
                lower.push(dir);
            }
        }
        Ok(Overlay {
            lower,
            upper: self.upper(),
            work: self.dir.join("work"),
            volatile: self.removed_at_end,
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // The overlay went with the container's mount namespace; what is
        // left are plain dirs (and whiteouts, which are plain device nodes).
        if self.ephemeral {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Remove what killed builds and removals left under `containers/`: a
/// build's container whose owner lock is free (its build is dead), and a
/// `.removing-` dir an `rm` didn't finish. A `run`'s container has a
/// record, and is `rm`'s business, not this.
pub fn sweep_abandoned(store: &Store) {
    let dir = store.root().join("containers");
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let abandoned = if name.starts_with(".removing-") {
            // An rm may be deleting it right now: only an old one is left
            // over from an rm that was killed.
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60))
        } else if path.join(OWNER_LOCK).exists() {
            // LOCK_NB: taken only if no living build holds it.
            fs::File::open(path.join(OWNER_LOCK)).is_ok_and(|f| {
                nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
            })
        } else {
            false
        };
        if abandoned {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// 64 hex digits from the kernel's random pool, as docker's ids.
pub fn random_id() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What a container of `image` runs: docker's rules for ENTRYPOINT and CMD.
/// Arguments given to `run` replace CMD; a shell-form ENTRYPOINT (`/bin/sh
/// -c ...`) ignores CMD and arguments alike.
pub fn command_line(image: &ImageConfig, args: &[String]) -> anyhow::Result<Vec<String>> {
    let cmd = if args.is_empty() {
        image.config.cmd.clone().unwrap_or_default()
    } else {
        args.to_vec()
    };
    let argv = match &image.config.entrypoint {
        Some(entry) if entry.len() >= 2 && entry[0] == "/bin/sh" && entry[1] == "-c" => {
            entry.clone()
        }
        Some(entry) => entry.iter().cloned().chain(cmd).collect(),
        None => cmd,
    };
    if argv.is_empty() {
        bail!("no command: give one after the image, or set CMD in the image");
    }
    Ok(argv)
}

/// The container's environment: the image's, then `-e` on top.
pub fn environment(image: &ImageConfig, overrides: &[String]) -> Vec<String> {
    let mut env = image.config.env.clone();
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        env.retain(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) != key);
        env.push(entry.clone());
    }
    env
}

/// In the child, before step 03 enters the rootfs: mount the layers, and
/// make the working dir if the image lacks it (docker does too).
pub fn make_rootfs(
    overlay: &Overlay,
    merged: &Path,
    workdir: Option<&Path>,
) -> Result<(), (String, Errno)> {
    let mounted = match overlay.mount(merged) {
        // EINVAL for `volatile`: a kernel before 5.10 doesn't know it; the
        // mount is only slower without it.
        Err(Errno::EINVAL) if overlay.volatile => Overlay {
            volatile: false,
            ..overlay.clone()
        }
        .mount(merged),
        other => other,
    };
    mounted.map_err(|errno| {
        let hint = if errno == Errno::EINVAL {
            " — is the store on overlayfs (inside a container)? put --root on another filesystem"
        } else {
            ""
        };
        (
            format!("cannot mount the image's layers (mount -t overlay){hint}"),
            errno,
        )
    })?;
    if let Some(dir) = workdir {
        make_dirs_inside(merged, dir).map_err(|errno| {
            (
                format!("cannot create the working dir {}", dir.display()),
                errno,
            )
        })?;
    }
    Ok(())
}

/// `mkdir -p ROOT/DIR`, refusing to follow a symbolic link: we are not in
/// the rootfs yet, so an image's link to `/etc` would lead to the host's.
fn make_dirs_inside(root: &Path, dir: &Path) -> Result<(), Errno> {
    let mut path = root.to_path_buf();
    for part in dir.components() {
        match part {
            Component::Normal(name) => path.push(name),
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir | Component::Prefix(_) => return Err(Errno::EINVAL),
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(meta) if meta.file_type().is_symlink() => return Err(Errno::ELOOP),
            Ok(_) => return Err(Errno::ENOTDIR),
            Err(_) => {
                // mkdir(2) on the overlay: the new dir lands in the upper layer.
                nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o755))?
            }
        }
    }
    Ok(())
}

/// What a later step attaches to a container: step 05, its network.
pub trait Attach {
    /// The container exists (its id, name, and state dir): before it runs.
    fn created(&mut self, _id: &str, _name: &str, _dir: &Path) -> anyhow::Result<()> {
        Ok(())
    }

    /// Files to bind-mount into the rootfs before entering it: (the host's
    /// file, the absolute path in the container). Step 05: `/etc/hosts`.
    fn binds(&self) -> Vec<(PathBuf, PathBuf)> {
        Vec::new()
    }

    /// The container's namespaces exist and nothing in it runs yet (its
    /// init waits at the gate): `pid` is the init, as the host sees it.
    /// Returns what `inspect` shows as the container's `NetworkSettings`.
    fn ready(&mut self, _pid: nix::unistd::Pid) -> anyhow::Result<Option<serde_json::Value>> {
        Ok(None)
    }

    /// The container has exited (or is being removed): undo what `ready` made.
    fn finished(&mut self, _id: &str) {}

    /// A cgroup2 group's directory (an open fd) to start the container's
    /// init in, where the kernel can: step 06's.
    fn cgroup(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// Two attachments, the first one's settings shown (step 06: a network,
/// then a cgroup). Each hook runs on both; `finished` in reverse order.
pub struct Both<'a>(pub &'a mut dyn Attach, pub &'a mut dyn Attach);

impl Attach for Both<'_> {
    fn created(&mut self, id: &str, name: &str, dir: &Path) -> anyhow::Result<()> {
        self.0.created(id, name, dir)?;
        self.1.created(id, name, dir)
    }

    fn binds(&self) -> Vec<(PathBuf, PathBuf)> {
        let mut binds = self.0.binds();
        binds.extend(self.1.binds());
        binds
    }

    fn ready(&mut self, pid: nix::unistd::Pid) -> anyhow::Result<Option<serde_json::Value>> {
        let first = self.0.ready(pid)?;
        let second = self.1.ready(pid)?;
        Ok(first.or(second))
    }

    fn finished(&mut self, id: &str) {
        self.1.finished(id);
        self.0.finished(id);
    }

    fn cgroup(&self) -> Option<std::os::fd::RawFd> {
        self.0.cgroup().or(self.1.cgroup())
    }
}

/// Nothing attached (step 04's own containers).
pub struct Nothing;

impl Attach for Nothing {}

/// What a later step attaches to each of a build's containers (step 06: a
/// cgroup with device rules); nothing unless it is set.
pub static BUILD_ATTACH: std::sync::OnceLock<fn() -> Box<dyn Attach>> = std::sync::OnceLock::new();

/// Start a container of `image` and wait for it; returns its exit code.
/// `stdio` sets up the command's terminal or stdin in the child; `attach`
/// adds what later steps bring; `started` hears the container's pid once
/// its command runs.
#[allow(clippy::too_many_arguments)]
pub fn run_in(
    container: &Container,
    store: &Store,
    image: &ImageConfig,
    spec: step02::ContainerSpec,
    read_only: bool,
    stdio: &crate::tty::Stdio,
    attach: &mut dyn Attach,
    started: impl FnOnce(nix::unistd::Pid, Option<serde_json::Value>) -> anyhow::Result<()>,
) -> anyhow::Result<i32> {
    if spec.namespaces.user {
        bail!("--userns with image layers is not supported yet: overlayfs in a user namespace needs its own whiteout format (userxattr)");
    }
    let overlay = container.overlay(store, image)?;
    // The working dir to make, with the image's links resolved inside the
    // image (`-w /bin` is /usr/bin): the child makes it before entering
    // the rootfs, and refuses to follow any link then.
    let workdir = spec
        .process
        .workdir
        .as_ref()
        .map(|dir| crate::image_fs::resolve(&overlay.lower, dir));
    let spec = step03::Spec {
        container: spec,
        rootfs: container.merged(),
        enter: step03::Enter::Pivot,
        read_only,
        tmpfs_tmp: read_only,
    };
    let merged = container.merged();
    let binds = attach.binds();
    let settings = std::cell::RefCell::new(None);
    step02::start_with(
        &spec.container,
        attach.cgroup(),
        |cmd, report, gate| {
            step03::init::container_init_with(&spec, cmd, report, gate, || {
                stdio.in_child()?;
                make_rootfs(&overlay, &merged, workdir.as_deref())?;
                bind_files(&merged, &binds)
            })
        },
        |pid| {
            *settings.borrow_mut() = attach.ready(pid)?;
            Ok(())
        },
        |pid| started(pid, settings.borrow_mut().take()),
    )
}

/// In the child, before entering the rootfs: bind each host file onto its
/// place in the container (made, empty, in the upper layer if the image
/// lacks it). Shell: `mount --bind FILE ROOTFS/etc/hosts`.
fn bind_files(merged: &Path, binds: &[(PathBuf, PathBuf)]) -> Result<(), (String, Errno)> {
    for (file, inside) in binds {
        let fail = |errno| {
            (
                format!("cannot bind {} into the container", inside.display()),
                errno,
            )
        };
        if let Some(parent) = inside.parent() {
            make_dirs_inside(merged, parent).map_err(fail)?;
        }
        let target = merged.join(inside.strip_prefix("/").unwrap_or(inside));
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(fail(Errno::EEXIST)),
            Err(_) => {
                fs::File::create(&target)
                    .map_err(|e| fail(Errno::from_raw(e.raw_os_error().unwrap_or(5))))?;
            }
        }
        // mount(2) MS_BIND: the same file at a second place; writes to it
        // from outside show inside at once.
        nix::mount::mount(
            Some(file.as_path()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(fail)?;
    }
    Ok(())
}

/// A build's container: run it to the end; its writable layer is kept
/// until the returned container is dropped.
pub fn run(
    store: &Store,
    image: &ImageConfig,
    spec: step02::ContainerSpec,
    read_only: bool,
) -> anyhow::Result<(i32, Container)> {
    let container = Container::create(store)?;
    // The RUN's output is the build's: pipes, copied to our stdout and
    // stderr (never our fds themselves: they may be a terminal).
    let (inside, outside) = crate::pipes::pipes(false, crate::pipes::Streams::Apart)?;
    let stdio = crate::tty::Stdio::Pipes(inside);
    let mut outside = Some(outside);
    let mut copying = None;
    let mut attach = BUILD_ATTACH
        .get()
        .map_or_else(|| Box::new(Nothing) as Box<dyn Attach>, |make| make());
    attach.created(&container.id, "", container.dir())?;
    let code = run_in(
        &container,
        store,
        image,
        spec,
        read_only,
        &stdio,
        attach.as_mut(),
        |_, _| {
            if let Some(outside) = outside.take() {
                copying = Some(outside.relay(crate::pipes::Sink::stdio())?);
            }
            Ok(())
        },
    );
    drop(stdio);
    if let Some(copying) = copying {
        copying.finish();
    }
    attach.finished(&container.id);
    Ok((code?, container))
}
