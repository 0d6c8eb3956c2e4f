//! The outside tools that check what minibox's images look like to the
//! rest of the world: podman (builds, pushes, pulls and runs images),
//! skopeo (copies images between registries, OCI layouts, docker-archives
//! and podman's store) and umoci (unpacks an OCI layout).
//!
//! Each runs *hermetically*: nothing it reads or writes is the machine's.
//!
//! - its state (podman's image store, its run state, locks, temp files) is
//!   in a fresh temp dir: `--root`, `--runroot`, `--tmpdir`, the `vfs`
//!   storage driver (plain copies of files: no overlay mounts to leave
//!   behind), file locks instead of `/dev/shm/libpod_lock`;
//! - its configuration is files in that dir, named by `CONTAINERS_CONF`,
//!   `CONTAINERS_STORAGE_CONF`, `CONTAINERS_REGISTRIES_CONF`, and
//!   `--signature-policy`/`--policy` (accept anything: the images are the
//!   check's own); credentials are an empty `REGISTRY_AUTH_FILE`, and
//!   `HOME` and the XDG dirs point into the temp dir too, so neither
//!   `~/.docker/config.json` nor `/run/containers/0/auth.json` is read;
//! - root's podman and skopeo also keep a cache of blob locations in
//!   `/var/lib/containers/cache`, which no flag moves: each runs in a
//!   private mount namespace of its own in which the temp dir is bind-mounted
//!   over `/var/lib` (`unshare --mount` makes the namespace, and it vanishes
//!   with the last process in it: the machine's mounts never change);
//! - containers get a cgroup parent of their own (`--cgroup-parent`),
//!   removed when the [`Podman`] is dropped, and never a network: every
//!   `podman run` of the checks is `--network none` (podman would otherwise
//!   make a bridge and firewall rules on the machine);
//! - when given a lab (`nsenter --net=/proc/PID/ns/net`), the tool runs in
//!   the lab's network namespace, where the lab's registry is.
//!
//! ```text
//! nsenter --net=/proc/PID/ns/net -- \
//!   unshare --mount --propagation private -- sh -c 'mount --bind "$0" /var/lib && exec "$@"' DIR/var-lib \
//!   podman --root DIR/root --runroot DIR/run --tmpdir DIR/tmp --storage-driver vfs \
//!          --cgroup-manager cgroupfs --events-backend none push --tls-verify=false ...
//! ```

use crate::check::Fail;
use crate::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long one tool command may take before it is killed and fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// The directories on the PATH the tools are given.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A signature policy that accepts any image: the checks' images are their
/// own, and no policy of the machine's (which may reject unsigned images)
/// is read.
const POLICY: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

/// `program` (in `package`) is missing: one line, naming the fix.
fn missing(programs: &[(&str, &str)]) -> Option<String> {
    programs.iter().find_map(|(program, package)| {
        crate::which(program).is_none().then(|| {
            format!("`{program}` is not installed (apt-get install {package}, or .ci/install)")
        })
    })
}

/// A tool's private corner of the machine: config files, state, a temp
/// dir, and the dir mounted over `/var/lib` in its mount namespace.
struct Sandbox {
    dir: TempDir,
    /// `/proc/PID/ns/net` to run in, if any.
    netns: Option<String>,
    /// Output files of each command are numbered.
    runs: AtomicU32,
}

impl Sandbox {
    fn new(label: &str, netns: Option<&str>) -> Result<Sandbox, Fail> {
        let dir = TempDir::new(label);
        let sandbox = Sandbox {
            dir,
            netns: netns.map(str::to_string),
            runs: AtomicU32::new(0),
        };
        for sub in ["home", "tmp", "var-lib", "out", "run-user"] {
            std::fs::create_dir_all(sandbox.path(sub)).map_err(|e| {
                Fail::new(format!("the grader could not make a dir for {label}")).seen(e)
            })?;
        }
        sandbox.write("policy.json", POLICY)?;
        sandbox.write("auth.json", "{}\n")?;
        // Fully qualified names only: a short name is never looked up.
        sandbox.write("registries.conf", "unqualified-search-registries = []\n")?;
        Ok(sandbox)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, text: &str) -> Result<(), Fail> {
        std::fs::write(self.path(name), text).map_err(|e| {
            Fail::new(format!(
                "the grader could not write {}",
                self.path(name).display()
            ))
            .seen(e)
        })
    }

    /// `program args`, inside the lab (if any) and a private mount
    /// namespace with the sandbox over `/var/lib`, with only the sandbox's
    /// configuration in its environment.
    fn command(&self, program: &str, args: &[String]) -> Command {
        let mut command = match &self.netns {
            Some(netns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={netns}")).args(["--", "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        command
            .args(["--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", r#"mount --bind "$0" /var/lib && exec "$@""#])
            .arg(self.path("var-lib"))
            .arg(program)
            .args(args);
        command
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"))
            .env("XDG_RUNTIME_DIR", self.path("run-user"))
            .env("TMPDIR", self.path("tmp"))
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"));
        for (variable, file) in [
            ("CONTAINERS_CONF", "containers.conf"),
            ("CONTAINERS_STORAGE_CONF", "storage.conf"),
        ] {
            if self.path(file).exists() {
                command.env(variable, self.path(file));
            }
        }
        command
    }

    /// Run `program args` (see [`Sandbox::command`]) to its end, at most
    /// [`COMMAND_TIMEOUT`]: its stdout, or a Fail with the command line and
    /// the end of its stderr.
    fn output(&self, program: &str, args: &[String]) -> Result<String, Fail> {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let (out_path, err_path) = (
            self.path(&format!("out/{n}.stdout")),
            self.path(&format!("out/{n}.stderr")),
        );
        let shown = format!("{program} {}", args.join(" "));
        let cannot =
            |e: std::io::Error| Fail::new(format!("the grader could not run `{shown}`")).seen(e);
        // Files, not pipes: nothing has to read while the command runs.
        let stdout = std::fs::File::create(&out_path).map_err(cannot)?;
        let stderr = std::fs::File::create(&err_path).map_err(cannot)?;
        let mut child = self
            .command(program, args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(cannot)?;
        // nsenter, unshare and sh each exec the next: this pid is the tool.
        let status = crate::poll(COMMAND_TIMEOUT, || child.try_wait().ok().flatten());
        let read = |path: &Path| {
            String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
        };
        let (out, err) = (read(&out_path), read(&err_path));
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        let in_lab = if self.netns.is_some() {
            " (in the lab)"
        } else {
            ""
        };
        match status {
            Some(status) if status.success() => Ok(out),
            Some(status) => Err(Fail::new(format!("`{shown}`{in_lab} failed ({status})"))
                .seen(crate::registry::tail(&err, 20))),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Fail::new(format!(
                    "`{shown}`{in_lab} did not end within {} s, and was killed",
                    COMMAND_TIMEOUT.as_secs()
                ))
                .seen(crate::registry::tail(&err, 20)))
            }
        }
    }

    /// What a tool left behind: mounts under the sandbox (as the machine's
    /// mount namespace shows them) and processes whose command line names
    /// it (conmon, a container's monitor, names its bundle there).
    fn leftovers(&self) -> Vec<String> {
        let mine = self.dir.path().to_string_lossy().into_owned();
        let mut left: Vec<String> = crate::procfs::mountinfo(std::process::id() as i32)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.mount_point.starts_with(&mine))
            .map(|m| format!("mount {}", m.mount_point))
            .collect();
        left.extend(
            processes_naming(&mine)
                .into_iter()
                .map(|(pid, cmdline)| format!("process {pid}: {cmdline}")),
        );
        left
    }
}

/// Processes (other than ours) whose command line contains `text`.
fn processes_naming(text: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmdline
                .contains(text)
                .then(|| (pid, cmdline.trim().to_string()))
        })
        .collect()
}

impl Sandbox {
    /// Every command ran to its end (or was killed); a process still
    /// naming the sandbox was started by one of them (conmon outliving its
    /// container): end it, by pid, and say so.
    fn end_leftover_processes(&self) {
        let left = processes_naming(&self.dir.path().to_string_lossy());
        if !left.is_empty() {
            eprintln!(
                "grader: a tool left {} process(es) behind, ended now: {}",
                left.len(),
                left.iter()
                    .map(|(pid, c)| format!("{pid} ({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let pids: Vec<i32> = left.iter().map(|(pid, _)| *pid).collect();
            crate::kill_and_wait_reaped(&pids, Duration::from_secs(5));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.end_leftover_processes();
    }
}

/// A podman of the checks' own (see the module doc): its own image store
/// in a temp dir, optionally in a lab's network namespace.
pub struct Podman {
    sandbox: Sandbox,
    /// `/grader-podman-PID-N`: the cgroup its containers are made under.
    cgroup_parent: String,
    /// The OCI runtime: `crun` on a cgroup v2 machine, else `runc` (crun
    /// refuses a v1 or hybrid cgroup machine).
    runtime: &'static str,
}

impl Podman {
    /// Why podman can't run here, in one line; `None` if it can.
    pub fn unavailable() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("needs root (podman with a store of its own)".into());
        }
        if let Some(why) = missing(&[
            ("podman", "podman"),
            ("conmon", "conmon"),
            ("nsenter", "util-linux"),
            ("unshare", "util-linux"),
            ("mount", "mount"),
        ]) {
            return Some(why);
        }
        let runtime = runtime();
        missing(&[(runtime, runtime)])
    }

    /// A podman with an empty store; in the network namespace `netns`
    /// (`/proc/PID/ns/net`, say [`crate::registry::Registry::netns`]) if
    /// given, so it reaches the lab's registry.
    pub fn new(netns: Option<&str>) -> Result<Podman, Fail> {
        if let Some(why) = Podman::unavailable() {
            return Err(Fail::new(format!("podman can't run here: {why}")));
        }
        let sandbox = Sandbox::new("podman", netns)?;
        let name = sandbox
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "grader-podman".into());
        let podman = Podman {
            cgroup_parent: format!("/{name}"),
            runtime: runtime(),
            sandbox,
        };
        podman
            .sandbox
            .write("containers.conf", &podman.containers_conf())?;
        podman.sandbox.write(
            "storage.conf",
            &format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                podman.sandbox.arg("root"),
                podman.sandbox.arg("run")
            ),
        )?;
        Ok(podman)
    }

    /// The store as skopeo names it: `containers-storage:[vfs@ROOT+RUNROOT]`
    /// followed by an image name (`containers-storage:[...]localhost/app:1`).
    pub fn storage_ref(&self, image: &str) -> String {
        format!(
            "containers-storage:[vfs@{}+{}]{image}",
            self.sandbox.arg("root"),
            self.sandbox.arg("run")
        )
    }

    /// The temp dir all its state is in.
    pub fn dir(&self) -> &Path {
        self.sandbox.dir.path()
    }

    /// `podman ARGS` (after the global flags that keep it in its temp
    /// dir): its stdout. `pull`, `push`, `build`, `run`, `create` and
    /// `load` also get the sandbox's signature policy.
    pub fn run(&self, args: &[&str]) -> Result<String, Fail> {
        let mut all: Vec<String> = [
            "--root",
            &self.sandbox.arg("root"),
            "--runroot",
            &self.sandbox.arg("run"),
            "--tmpdir",
            &self.sandbox.arg("tmp"),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            "--runtime",
            self.runtime,
        ]
        .map(str::to_string)
        .to_vec();
        if let Some((verb, rest)) = args.split_first() {
            all.push(verb.to_string());
            if ["pull", "push", "build", "run", "create", "load"].contains(verb) {
                all.push(format!(
                    "--signature-policy={}",
                    self.sandbox.arg("policy.json")
                ));
            }
            all.extend(rest.iter().map(|a| a.to_string()));
        }
        self.sandbox.output("podman", &all)
    }

    /// `podman run --rm --network none IMAGE CMD...`: the container's
    /// stdout. Every container the checks run is made this way: with no
    /// network (podman's default would be a bridge and firewall rules on
    /// the machine), under the podman's own cgroup parent, removed when it
    /// ends. An empty `cmd` runs the image's own CMD.
    pub fn run_container(&self, image: &str, cmd: &[&str]) -> Result<String, Fail> {
        let parent = format!("--cgroup-parent={}", self.cgroup_parent);
        let mut args = vec!["run", "--rm", "--network", "none", &parent, image];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// Build `tag` from a Containerfile's text, in a fresh context dir
    /// holding `context_files` (name in the context, file to copy there):
    /// `podman build --network none -t TAG -f Containerfile CONTEXT`.
    /// RUN lines run in a container with no network. The image's id.
    ///
    /// ```text
    /// FROM scratch
    /// COPY busybox /bin/busybox
    /// RUN ["/bin/busybox", "sh", "-c", "echo hi > /greeting"]
    /// CMD ["/bin/busybox", "cat", "/greeting"]
    /// ```
    pub fn build(
        &self,
        tag: &str,
        containerfile: &str,
        context_files: &[(&str, &Path)],
    ) -> Result<String, Fail> {
        static CONTEXTS: AtomicU32 = AtomicU32::new(0);
        let context = self.sandbox.path(&format!(
            "context-{}",
            CONTEXTS.fetch_add(1, Ordering::Relaxed)
        ));
        let setup =
            |e: std::io::Error| Fail::new("the grader could not make a build context").seen(e);
        std::fs::create_dir_all(&context).map_err(setup)?;
        std::fs::write(context.join("Containerfile"), containerfile).map_err(setup)?;
        for (name, source) in context_files {
            let target = context.join(name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(setup)?;
            }
            std::fs::copy(source, &target).map_err(setup)?;
        }
        let context = context.to_string_lossy().into_owned();
        let file = format!("{context}/Containerfile");
        let out = self.run(&[
            "build",
            "--network",
            "none",
            "--layers",
            "-t",
            tag,
            "-f",
            &file,
            &context,
        ])?;
        Ok(out.lines().last().unwrap_or_default().trim().to_string())
    }

    /// Mounts and processes this podman left on the machine (see the
    /// module doc): empty when all is well.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = self.sandbox.leftovers();
        left.extend(
            cgroup_dirs(&self.cgroup_parent)
                .into_iter()
                .filter_map(|dir| {
                    let procs =
                        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                    (!procs.trim().is_empty())
                        .then(|| format!("cgroup {} holds {}", dir.display(), procs.trim()))
                }),
        );
        left
    }

    fn containers_conf(&self) -> String {
        let (nofile, nproc) = ulimits();
        format!(
            r#"[containers]
netns = "none"
log_driver = "k8s-file"
# Podman asks for nofile 1048576 and nproc 4194304; raising a limit
# above its hard limit needs CAP_SYS_RESOURCE, which a grader running in
# a container may lack. These are below what this machine allows.
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
# Locks as files in tmp_dir, not a segment in /dev/shm shared by every
# podman of the machine.
lock_type = "file"
runtime = "{runtime}"
tmp_dir = "{tmp}"
volume_path = "{root}/volumes"
static_dir = "{root}/libpod"

[network]
network_config_dir = "{net}"
"#,
            runtime = self.runtime,
            tmp = self.sandbox.arg("tmp"),
            root = self.sandbox.arg("root"),
            net = self.sandbox.arg("networks"),
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // The containers were `--rm` and have ended: their cgroups are
        // empty, and rmdir(2) removes an empty cgroup (deepest first). The
        // temp dir goes as the field drops.
        self.sandbox.end_leftover_processes();
        for dir in cgroup_dirs(&self.cgroup_parent) {
            remove_cgroup_tree(&dir);
        }
    }
}

/// The cgroup OCI runtime for this machine: crun needs the unified (v2)
/// hierarchy alone (`/sys/fs/cgroup/cgroup.controllers` exists); on a v1
/// or hybrid machine, runc.
fn runtime() -> &'static str {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if unified || crate::which("runc").is_none() {
        "crun"
    } else {
        "runc"
    }
}

/// (nofile, nproc) for containers: 1024 open files (docker's old default)
/// and 32768 processes, or this process's hard limits if lower.
fn ulimits() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    let hard = |r: Resource, want: u64| getrlimit(r).map(|(_, h)| h.min(want)).unwrap_or(want);
    (
        hard(Resource::RLIMIT_NOFILE, 1024),
        hard(Resource::RLIMIT_NPROC, 32768),
    )
}

/// `parent` in every cgroup hierarchy mounted under /sys/fs/cgroup (each
/// v1 controller's tree, and the v2 tree) where it exists.
fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let name = parent.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let mut found: Vec<PathBuf> = std::iter::once(root.join(name))
        .chain(
            std::fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join(name)),
        )
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// rmdir(2) a cgroup and the groups under it, deepest first (`find DIR
/// -depth -type d -exec rmdir {} +`); cgroup files are not removable and
/// vanish with their dir.
fn remove_cgroup_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// skopeo, hermetic as podman is (see the module doc).
pub struct Skopeo;

impl Skopeo {
    /// Why skopeo can't run here, in one line; `None` if it can.
    pub fn unavailable() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("needs root (a private mount namespace)".into());
        }
        missing(&[
            ("skopeo", "skopeo"),
            ("nsenter", "util-linux"),
            ("unshare", "util-linux"),
            ("mount", "mount"),
        ])
    }
}

/// `skopeo ARGS` in the lab `netns` if given: its stdout. Global flags
/// (`--policy`, `--tmpdir`) come first; say `--tls-verify=false` (inspect)
/// or `--src-tls-verify=false`/`--dest-tls-verify=false` (copy) for the
/// lab's plain-HTTP registry.
///
/// ```text
/// skopeo inspect --tls-verify=false docker://10.77.0.1:5000/app:1
/// skopeo copy --src-tls-verify=false docker://10.77.0.1:5000/app:1 oci:DIR:1
/// ```
pub fn skopeo(netns: Option<&str>, args: &[&str]) -> Result<String, Fail> {
    if let Some(why) = Skopeo::unavailable() {
        return Err(Fail::new(format!("skopeo can't run here: {why}")));
    }
    let sandbox = Sandbox::new("skopeo", netns)?;
    // A store of its own for `containers-storage:` names without a
    // `[driver@root+runroot]` of their own: never the machine's.
    sandbox.write(
        "storage.conf",
        &format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            sandbox.arg("root"),
            sandbox.arg("run")
        ),
    )?;
    let mut all = vec![
        "--policy".to_string(),
        sandbox.arg("policy.json"),
        "--tmpdir".to_string(),
        sandbox.arg("tmp"),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    sandbox.output("skopeo", &all)
}

/// umoci, which needs no network and keeps no state of its own.
pub struct Umoci;

impl Umoci {
    /// Why umoci can't run here, in one line; `None` if it can.
    pub fn unavailable() -> Option<String> {
        missing(&[("umoci", "umoci")])
    }
}

/// `umoci ARGS`: its stdout.
///
/// ```text
/// umoci unpack --image DIR:TAG BUNDLE     # BUNDLE/rootfs, BUNDLE/config.json
/// ```
pub fn umoci(args: &[&str]) -> Result<String, Fail> {
    if let Some(why) = Umoci::unavailable() {
        return Err(Fail::new(format!("umoci can't run here: {why}")));
    }
    let shown = format!("umoci {}", args.join(" "));
    let out = Command::new("umoci")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Fail::new(format!("the grader could not run `{shown}`")).seen(e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(
            Fail::new(format!("`{shown}` failed ({})", out.status)).seen(crate::registry::tail(
                &String::from_utf8_lossy(&out.stderr),
                20,
            )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_parents_are_found_in_every_hierarchy() {
        // Nothing is named like this: no dirs, and nothing to remove.
        assert!(cgroup_dirs("/grader-no-such-parent-0-0").is_empty());
    }

    #[test]
    fn a_missing_tool_is_one_line_naming_its_package() {
        assert_eq!(
            missing(&[("sh", "dash"), ("no-such-tool-0", "no-such-package")]).as_deref(),
            Some("`no-such-tool-0` is not installed (apt-get install no-such-package, or .ci/install)")
        );
        assert_eq!(missing(&[("sh", "dash")]), None);
    }

    #[test]
    fn containers_get_limits_this_machine_allows() {
        let (nofile, nproc) = ulimits();
        assert!((1..=1024).contains(&nofile));
        assert!((1..=32768).contains(&nproc));
    }
}
