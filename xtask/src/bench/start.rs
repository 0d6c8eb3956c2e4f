//! Start latency: from the command to its end, for a container whose
//! command is `true`, so what is measured is the runtime's own work.

use super::setup::Tools;
use super::stats::{check, time, time_in_turns, Timed};
use super::{Results, Scratch};
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How many `nft` processes minibox started per run on a bridge, counted
/// by a stand-in `nft` first on its `PATH` that notes each call and hands
/// it to the real one.
#[derive(Debug, Clone, Serialize)]
pub struct NftExecs {
    /// `run --rm` on the default bridge, its network's rules in place.
    pub bridge: f64,
    /// `run --rm -p`: its own DNAT rules are new, so at most one batch.
    pub publish: f64,
    pub runs: usize,
}

/// A directory with a stand-in `nft` that counts its calls (one line each
/// in `nft.calls` beside it) and execs the real `nft`; `None` without nft.
fn nft_counter(out: &Path) -> anyhow::Result<Option<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(real) = std::env::split_paths(&path)
        .map(|dir| dir.join("nft"))
        .find(|nft| nft.is_file())
    else {
        return Ok(None);
    };
    let dir = out.join("nft-counter");
    std::fs::create_dir_all(&dir)?;
    let calls = dir.join("nft.calls");
    std::fs::write(&calls, "")?;
    let script = dir.join("nft");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            real.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(Some(dir))
}

fn calls(counter: &Path) -> usize {
    std::fs::read_to_string(counter.join("nft.calls"))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

pub fn measure(tools: &Tools, runs: usize, results: &mut Results) -> anyhow::Result<()> {
    let mut samples = Vec::new();
    // The floor: the namespaces and the chroot, nothing else
    // (util-linux's unshare forks once, then execs chroot, then true).
    let floor = Command::new("unshare")
        .args([
            "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "chroot",
        ])
        .arg(&tools.rootfs)
        .arg("true")
        .get_args()
        .map(|a| a.to_os_string())
        .collect::<Vec<_>>();
    samples.push(time("fork+exec of true (no container)", 3, runs, || {
        check(&mut Command::new(tools.rootfs.join("bin/true")))
    })?);
    samples.push(time("unshare + chroot (the floor)", 3, runs, || {
        check(Command::new("unshare").args(&floor))
    })?);
    let state = Scratch::new(&tools.out, "minibox")?;
    let counter = nft_counter(&tools.out)?;
    let minibox = |network: &str| {
        let mut command = Command::new(&tools.minibox);
        if let Some(dir) = &counter {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![dir.clone()];
            dirs.extend(std::env::split_paths(&path));
            command.env(
                "PATH",
                std::env::join_paths(dirs).expect("paths without ':'"),
            );
        }
        command
            .arg("--root")
            .arg(&state.0)
            .args(["run", "--rm", "--network", network]);
        command
    };
    // The nft calls of each timed bridge run (the warm-ups' come first:
    // the network's first run adds its rules).
    let bridge_calls = RefCell::new(Vec::new());
    let publish_calls = RefCell::new(Vec::new());
    let counted = |list: &RefCell<Vec<usize>>, command: &mut Command| {
        let before = counter.as_deref().map(calls);
        check(command)?;
        if let (Some(before), Some(dir)) = (before, &counter) {
            list.borrow_mut().push(calls(dir) - before);
        }
        Ok(())
    };
    // The first run builds the image `base`: part of the warm-up.
    check(minibox("none").args(["base", "true"]))?;
    // The same on a tmpfs, where fsync(2) returns at once and a removed
    // dir frees no disk block: what minibox's records and dirs cost on
    // this disk (crun keeps its state in /run, a tmpfs, and doesn't
    // fsync). The mount is in the bench's own mount namespace.
    let fast = Scratch::new(&tools.out, "minibox-tmpfs")?;
    nix::mount::mount(
        Some("tmpfs"),
        &fast.0,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )?;
    // minibox and its peers in turns (stats::time_in_turns): their ratio
    // is the target, and a machine that slows down for a while must slow
    // them all.
    let mut states = Vec::new();
    for (name, program) in [("crun", &tools.crun), ("runc", &tools.runc)] {
        match program {
            Some(program) => states.push((name, program, Scratch::new(&tools.out, name)?)),
            None => results
                .notes
                .push(format!("{name} is not installed here: not measured")),
        }
    }
    let mut timed: Vec<Timed> = vec![
        (
            "minibox --network none".to_string(),
            Box::new(|| check(minibox("none").args(["base", "true"]))),
        ),
        // The bridge and none in the same turns: their ratio is a target
        // (step 05's plumbing and rules must cost little beside the
        // container itself).
        (
            "minibox --network bridge (veth on a bridge)".to_string(),
            Box::new(|| counted(&bridge_calls, minibox("bridge").args(["base", "true"]))),
        ),
        (
            "minibox --network bridge -p 18080:80".to_string(),
            Box::new(|| {
                counted(
                    &publish_calls,
                    minibox("bridge").args(["-p", "18080:80", "base", "true"]),
                )
            }),
        ),
        (
            "minibox --network none, state on tmpfs".to_string(),
            Box::new(|| {
                check(
                    Command::new(&tools.minibox)
                        .arg("--root")
                        .arg(&fast.0)
                        .args(["run", "--rm", "--network", "none", "base", "true"]),
                )
            }),
        ),
    ];
    for (name, program, state) in &states {
        let mut n = 0;
        timed.push((
            format!("{name} run (same rootfs)"),
            Box::new(move || {
                n += 1;
                check(
                    super::in_v1_view(&mut Command::new(program))
                        .arg("--root")
                        .arg(&state.0)
                        .args(cgroups(name))
                        .args(["run", "--bundle"])
                        .arg(&tools.bundle_true)
                        .arg(format!("bench-{n}")),
                )
            }),
        ));
    }
    if !states.is_empty() {
        results.notes.push(
            "crun and runc ran with minibox's seccomp filter in their bundle, and the starts of minibox and of its peers were timed in turns, one of each per round".into(),
        );
    }
    let measured = time_in_turns(3, runs, timed);
    let _ = nix::mount::umount2(&fast.0, nix::mount::MntFlags::MNT_DETACH);
    let mut peers = Vec::new();
    for sample in measured {
        match sample {
            Ok(sample) => peers.push(sample),
            Err((name, e)) if name.starts_with("minibox") => {
                return Err(e.context(format!("{name}: a run failed")))
            }
            Err((name, e)) => results
                .notes
                .push(format!("{name} could not run a container here: {e:#}")),
        }
    }
    samples.extend(peers);
    results.start = samples;
    if counter.is_some() {
        // Past the warm-ups: the network's rules are in place.
        let per_run = |list: &RefCell<Vec<usize>>| {
            let list = list.borrow();
            let timed = &list[list.len().saturating_sub(runs)..];
            timed.iter().sum::<usize>() as f64 / timed.len().max(1) as f64
        };
        results.nft = Some(NftExecs {
            bridge: per_run(&bridge_calls),
            publish: per_run(&publish_calls),
            runs,
        });
    } else {
        results
            .notes
            .push("nft is not installed here: the bridge runs had no rules to add".into());
    }
    Ok(())
}

/// crun without cgroups, as minibox; runc has no such switch.
fn cgroups(runtime: &str) -> &'static [&'static str] {
    if runtime == "crun" {
        &["--cgroup-manager=disabled"]
    } else {
        &[]
    }
}
