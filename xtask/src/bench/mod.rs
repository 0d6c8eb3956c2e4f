//! `cargo xtask bench`: the numbers behind the book's "VM or container?"
//! chapter, measured on this machine, with every comparison made side by
//! side in the same run and reported as a ratio.
//!
//! 1. start latency: minibox, crun and runc on the same root filesystem,
//!    and `unshare … chroot` as the floor of what the kernel costs;
//! 2. density: N idle containers, their memory and the time to start them;
//! 3. images: the blog post's two Dockerfiles, from empty and cached;
//! 4. a VM: a kernel and a busybox initramfs booted by qemu to its first
//!    command and powered off;
//! 5. across hosts: a UDP round trip and TCP throughput between two
//!    containers on an overlay network on two lab hosts (etcd in the
//!    lab), against the same pair on one bridge;
//! 6. images over the wire: minibox's push and pull of a ~50 MB image
//!    against `skopeo copy` of it, with a registry in a lab;
//! 7. the learner's loop: a cold build, and an edit to its graded result.
//!
//! Everything runs in a network namespace of its own (made first thing),
//! so the bridge, the veths and the nftables table of the bridge runs live
//! and die there; state goes to temp dirs. Nothing is left on the host.

mod density;
mod distribution;
mod images;
mod learner;
mod overlay;
mod report;
mod seccomp;
mod setup;
mod start;
mod stats;
mod vm;

use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer runs, smaller N, no cold build: a smoke test of the bench.
    pub quick: bool,
    /// Also write the results into the book (`book/src/bench/`).
    pub book: bool,
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub start: Vec<stats::Sample>,
    pub ratios: Vec<Ratio>,
    /// nft processes per bridge run.
    pub nft: Option<start::NftExecs>,
    pub density: Vec<density::Row>,
    pub images: Option<images::Images>,
    pub vm: Option<vm::Vm>,
    pub learner: Option<learner::Loop>,
    /// Across hosts: the overlay against the bridge.
    pub overlay: Option<overlay::Overlay>,
    /// Push and pull: minibox against skopeo.
    pub distribution: Option<distribution::Distribution>,
    /// What was skipped, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
    pub memory_mib: u64,
    pub date: String,
}

/// A comparison measured in this run: `a / b`, and the target if any.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
    pub target: Option<String>,
    pub met: Option<bool>,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "the bench starts containers, crun and runc: run it as root"
    );
    let out = crate::cargo::target_dir(root).join("bench");
    std::fs::create_dir_all(&out)?;
    // Downloads first, while we still share the host's network.
    let tools = setup::prepare(root, &out)?;
    let mut results = Results {
        machine: Machine::here(),
        ..Results::default()
    };
    isolate(&mut results.notes)?;
    // The quick form's medians decide CI's ratios too: 5 runs each let one
    // slow round swing bridge/none from 1.04 to 1.43 between two runs of
    // the same commit. 15 cost about a second more (a round of all the
    // runtimes takes under 100 ms).
    let runs = if options.quick { 15 } else { 30 };
    eprintln!("bench: start latency ({runs} runs each, after 3 warm-ups)");
    start::measure(&tools, runs, &mut results)?;
    let counts: &[usize] = if options.quick { &[10] } else { &[10, 50, 200] };
    eprintln!("bench: density ({counts:?} idle containers)");
    density::measure(&tools, counts, &mut results)?;
    eprintln!("bench: images (the blog post's two Dockerfiles)");
    results.images = Some(images::measure(&tools, if options.quick { 5 } else { 15 })?);
    eprintln!("bench: a VM, booted by qemu");
    results.vm = vm::measure(&tools, &out, &mut results.notes);
    eprintln!("bench: across hosts (an overlay on a lab of 3 hosts with etcd, and a bridge)");
    results.overlay = overlay::measure(&tools, options.quick, &mut results.notes);
    eprintln!("bench: push and pull (minibox and skopeo, a registry in a lab)");
    results.distribution = distribution::measure(&tools, options.quick, &mut results.notes);
    if options.quick {
        results
            .notes
            .push("the learner's loop was not measured (--quick)".into());
    } else {
        eprintln!("bench: the learner's loop (a cold build of the workspace, then an edit)");
        results.learner = Some(learner::measure(root, &out)?);
    }
    report::ratios(&mut results);
    let markdown = report::markdown(&results);
    let svg = report::svg(&results);
    std::fs::write(out.join("results.md"), &markdown)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    std::fs::write(out.join("results.svg"), &svg)?;
    print!("{markdown}");
    eprintln!("bench: wrote {}/results.{{md,json,svg}}", shown(root, &out));
    if options.book {
        let book = root.join("book/src/bench");
        std::fs::create_dir_all(&book)?;
        std::fs::write(book.join("results.md"), &markdown)?;
        std::fs::write(
            book.join("results.json"),
            serde_json::to_string_pretty(&results)? + "\n",
        )?;
        std::fs::write(book.join("results.svg"), &svg)?;
        eprintln!("bench: and into book/src/bench/");
    }
    Ok(())
}

/// Namespaces of the bench's own, for everything it starts: a network
/// namespace, so every bridge, veth and nftables rule of the runs lives
/// and dies there; and a mount namespace, private, in which a hybrid
/// cgroup host (v1 in charge, a v2 hierarchy with a controller beside it)
/// looks like plain v1, because crun refuses to start containers on the
/// former. Called while this process has one thread, as unshare(2) of a
/// mount namespace requires.
fn isolate(notes: &mut Vec<String>) -> anyhow::Result<()> {
    use nix::mount::{umount2, MntFlags};
    use nix::sched::{unshare, CloneFlags};
    // Containers started detached (crun run -d, minibox's monitors) come
    // back to us when their starter exits, not to the host's init: we
    // reap them, and nothing outlives the bench unseen.
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
        .context("unshare(CLONE_NEWNET | CLONE_NEWNS) for the bench's own namespaces")?;
    // Private first (step 02's own call): an unmount in a shared mount
    // would reach the host.
    step02::mounts::make_private().context("making the bench's mounts private")?;
    let unified = Path::new("/sys/fs/cgroup/unified");
    let controllers =
        std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    if !controllers.trim().is_empty() {
        // minibox runs as it would on this host: in the bench's mount
        // namespace, the v2 tree in sight (its groups and device rules go
        // there). crun and runc get a second mount namespace, a copy with
        // the v2 tree hidden: they are started in it (`in_v1_view`).
        let full = std::fs::File::open("/proc/self/ns/mnt")?;
        unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) for crun's view")?;
        umount2(unified, MntFlags::MNT_DETACH)
            .context("hiding the cgroup v2 hierarchy from crun")?;
        let v1_view = std::fs::File::open("/proc/self/ns/mnt")?;
        nix::sched::setns(&full, CloneFlags::CLONE_NEWNS)
            .context("back to the bench's mount namespace")?;
        let _ = V1_VIEW.set(v1_view);
        notes.push(format!(
            "this host mixes cgroup v1 and v2 ({} on v2), which crun refuses: crun and runc ran in a mount namespace where the v2 hierarchy is hidden, crun with --cgroup-manager=disabled (no cgroups: no limits, no device rules); runc creates v1 cgroups, which is part of its time. minibox ran as on this host: a v2 group for each container, born there (clone3 CLONE_INTO_CGROUP), with docker's device rules as a BPF program.",
            controllers.trim()
        ));
    }
    Ok(())
}

/// The mount namespace crun and runc run in on a hybrid host (the v2 tree
/// hidden), when there is one.
static V1_VIEW: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Start `command` in crun's and runc's view of the machine.
pub fn in_v1_view(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    if let Some(view) = V1_VIEW.get() {
        let fd = view.as_raw_fd();
        // SAFETY: only setns(2) between fork and exec, a plain system call.
        unsafe {
            command.pre_exec(move || {
                let view = std::os::fd::BorrowedFd::borrow_raw(fd);
                nix::sched::setns(view, nix::sched::CloneFlags::CLONE_NEWNS)?;
                Ok(())
            });
        }
    }
    command
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

impl Machine {
    fn here() -> Machine {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| meminfo(&m, "MemTotal"))
            .unwrap_or(0)
            / 1024;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Machine {
            kernel,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            date: step04::image::rfc3339(secs)[..10].to_string(),
        }
    }
}

/// Reap every child that has ended (containers adopted as a subreaper).
pub fn reap() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// A field of /proc/meminfo, in KiB.
pub fn meminfo(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{field}:")))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A fresh directory under the bench's output, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(out: &Path, name: &str) -> anyhow::Result<Scratch> {
        let dir = out.join("scratch").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
