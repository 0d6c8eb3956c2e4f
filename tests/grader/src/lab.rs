//! A lab and a store of its own, for one check: where the runtime runs, and
//! the `--root` it keeps its images and containers in (a fresh temp dir).
//!
//! Two kinds of lab:
//!
//! - [`Lab::new`]: one network namespace (a [`NetLab`]) that every run of
//!   the check enters (`nsenter --net`), so that a bridge, a published port
//!   or a detached server made by one run is there for the next (steps 05
//!   and 06, the reference's own tests);
//! - [`Lab::apart`]: every run in namespaces of its own (net, mount, uts,
//!   ipc: see [`Invocation::in_lab`]), the host's mounts out of reach even
//!   of a runtime that mounts in the wrong place (step 04).
//!
//! Dropping the lab removes its containers (`rm -f`, their monitors end
//! them), then the cgroups a crashed runtime left for them, then the lab.

use crate::process::Invocation;
use crate::{ensure, Ctx, Fail, NetLab, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A store (`--root`) and a lab, for one check.
pub struct Lab<'a> {
    pub ctx: &'a Ctx,
    /// The lab's network namespace, shared by every run (`Lab::new`), or
    /// none (`Lab::apart`: each run has its own).
    net: Option<NetLab>,
    /// The check's temp dir: the store is `root/` in it; build contexts
    /// and other files of the check go beside it.
    pub dir: TempDir,
}

impl<'a> Lab<'a> {
    /// A lab whose runs all share one network namespace.
    pub fn new(ctx: &'a Ctx) -> Result<Self, Fail> {
        Ok(Lab {
            ctx,
            net: Some(NetLab::new()?),
            dir: ctx.temp_dir(),
        })
    }

    /// A lab whose every run is in namespaces of its own.
    pub fn apart(ctx: &'a Ctx) -> Self {
        Lab {
            ctx,
            net: None,
            dir: ctx.temp_dir(),
        }
    }

    /// The shared network namespace of a [`Lab::new`] lab.
    ///
    /// # Panics
    /// For a [`Lab::apart`] lab, which has none: a mistake in the check.
    pub fn net(&self) -> &NetLab {
        self.net
            .as_ref()
            .expect("a Lab::apart lab has no network namespace of its own: use Lab::new")
    }

    /// The store: `--root` of every run.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `minibox --root ROOT ARGS...`, in the lab.
    pub fn minibox(&self, args: &[&str]) -> Invocation {
        let root = self.root().to_string_lossy().into_owned();
        let mut full = vec!["--root", root.as_str()];
        full.extend_from_slice(args);
        self.place(self.ctx.minibox(&full))
    }

    /// Put `invocation` in the lab.
    pub fn place(&self, invocation: Invocation) -> Invocation {
        match &self.net {
            Some(net) => invocation.in_netns(&net.netns()),
            None => invocation.in_lab(),
        }
    }

    /// The image `probe`: the grader's rootfs with its probe
    /// (`/usr/bin/grader-probe`), imported.
    pub fn import_probe(&self) -> Result<(), Fail> {
        let tar = self.dir.path().join("probe.tar");
        self.ctx.rootfs()?.tar_to(&tar)?;
        self.minibox(&["import", &tar.to_string_lossy(), "probe"])
            .output()?
            .expect_code(0, "import of the probe image")
    }

    /// A build context holding a Dockerfile and `files`.
    pub fn context(
        &self,
        name: &str,
        dockerfile: &str,
        files: &[(&str, &str)],
    ) -> Result<PathBuf, Fail> {
        let dir = self.dir.path().join(name);
        write(&dir.join("Dockerfile"), dockerfile)?;
        for (path, text) in files {
            write(&dir.join(path), text)?;
        }
        Ok(dir)
    }

    /// `build -t TAG CONTEXT`, which must succeed; returns its stdout.
    pub fn build(&self, tag: &str, context: &Path) -> Result<String, Fail> {
        let out = self
            .minibox(&["build", "-t", tag, &context.to_string_lossy()])
            .output()?;
        out.expect_code(0, "the build should succeed")?;
        Ok(out.stdout_text())
    }

    /// `inspect NAME` (an image or a container), parsed: the first (only)
    /// element.
    pub fn inspect(&self, name: &str) -> Result<Value, Fail> {
        let out = self.minibox(&["inspect", name]).output()?;
        out.expect_code(0, "inspect should work")?;
        let all: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            Fail::new(format!("`inspect {name}` should print JSON"))
                .seen(format!("{e}: {}", out.stdout_text()))
        })?;
        all.get(0)
            .cloned()
            .ok_or_else(|| Fail::new("inspect should print a JSON array of one element").seen(all))
    }

    /// A field of `inspect NAME`, by path (`State.Pid`).
    pub fn field(&self, name: &str, path: &str) -> Result<Value, Fail> {
        let value = self.inspect(name)?;
        let mut here = &value;
        for part in path.split('.') {
            here = here.get(part).ok_or_else(|| {
                Fail::new(format!("inspect {name} should have {path}")).seen(value.to_string())
            })?;
        }
        Ok(here.clone())
    }

    /// The diff_ids, bottom first, as `inspect --format '{{json .RootFS.Layers}}'` prints them.
    pub fn layers(&self, image: &str) -> Result<Vec<String>, Fail> {
        let out = self
            .minibox(&["inspect", "--format", "{{json .RootFS.Layers}}", image])
            .output()?;
        out.expect_code(0, "inspect --format should work")?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            Fail::new(
                "`inspect --format '{{json .RootFS.Layers}}'` should print a JSON list of digests",
            )
            .seen(format!("{e}: {}", out.stdout_text()))
        })
    }

    pub fn image_id(&self, image: &str) -> Result<String, Fail> {
        let value = self.inspect(image)?;
        value["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Fail::new("inspect should show the image's Id").seen(value))
    }

    /// Where the store keeps a layer: `layers/sha256/<hex>`.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root()
            .join("layers/sha256")
            .join(diff_id.trim_start_matches("sha256:"))
    }

    /// `run ARGS...`, which must exit 0; returns its stdout.
    pub fn run(&self, image: &str, args: &[&str]) -> Result<String, Fail> {
        let mut full = vec!["run", image];
        full.extend_from_slice(args);
        let out = self.minibox(&full).output()?;
        out.expect_code(0, "the container's command should succeed")?;
        Ok(out.stdout_text())
    }

    /// `run -d ARGS...`, which must print the id; returns it.
    pub fn run_detached(&self, args: &[&str]) -> Result<String, Fail> {
        let mut full = vec!["run", "-d"];
        full.extend_from_slice(args);
        let out = self.minibox(&full).output()?;
        out.expect_code(0, "run -d should start the container")?;
        let id = out.stdout_text().trim().to_string();
        ensure(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            || Fail::new("run -d should print the container's id (64 hex digits)").seen(&id),
        )?;
        Ok(id)
    }

    /// Wait (at most 10 s) until `inspect CONTAINER` says `status`.
    pub fn wait_status(&self, container: &str, status: &str) -> Result<Value, Fail> {
        let found = crate::poll(Duration::from_secs(10), || {
            let value = self.inspect(container).ok()?;
            (value["State"]["Status"] == status).then_some(value)
        });
        found.ok_or_else(|| {
            Fail::new(format!("container {container} should become {status}")).seen(
                self.inspect(container)
                    .map(|v| v["State"].to_string())
                    .unwrap_or_default(),
            )
        })
    }

    /// The container dirs under `containers/` (named by id).
    pub fn container_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.root().join("containers"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `rm -f CONTAINER` when the guard is dropped, whatever happens to the
    /// check (best effort).
    pub fn removed(&self, container: &str) -> Removed<'_, 'a> {
        Removed(self, container.to_string())
    }
}

/// See [`Lab::removed`].
pub struct Removed<'l, 'a>(&'l Lab<'a>, String);

impl Drop for Removed<'_, '_> {
    fn drop(&mut self) {
        let _ = self.0.minibox(&["rm", "-f", &self.1]).output();
    }
}

impl Drop for Lab<'_> {
    fn drop(&mut self) {
        // Our containers first: their monitors end them, their mounts live
        // in their own namespaces; the lab's namespace goes after.
        let ids: Vec<String> = self
            .container_dirs()
            .into_iter()
            .filter(|id| id.len() == 64)
            .collect();
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            let _ = self.minibox(&["rm", "-f", id]).output();
        }
        // A runtime that stopped at a todo!() (or crashed) between making a
        // container's cgroup and removing it leaves the group: remove ours,
        // the empty `minibox/ID` groups of this lab's containers.
        for group in crate::cgroups::container_groups() {
            if group
                .file_name()
                .is_some_and(|id| ids.iter().any(|ours| id == ours.as_str()))
            {
                let _ = std::fs::remove_dir(group); // EBUSY if in use
            }
        }
    }
}

/// Write `text` to `path` (mode 0644), making its parent dirs.
pub fn write(path: &Path, text: &str) -> Result<(), Fail> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Fail::new("setup: mkdir").seen(e))?;
    }
    std::fs::write(path, text).map_err(|e| Fail::new("setup: write").seen(e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Fail::new("setup: chmod").seen(e))
}
