//! Start latency: from the command to its end, for a container whose
//! command is `true`, so what is measured is the runtime's own work.

use super::setup::Tools;
use super::stats::{check, time, time_in_turns, Timed};
use super::{Results, Scratch};
use std::process::Command;

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
    let minibox = |network: &str| {
        let mut command = Command::new(&tools.minibox);
        command.arg("--root").arg(&state.0).args([
            "run",
            "--rm",
            "--network",
            network,
            "base",
            "true",
        ]);
        command
    };
    // The first run builds the image `base`: part of the warm-up.
    check(&mut minibox("none"))?;
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
            Box::new(|| check(&mut minibox("none"))),
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
    let mut peers = peers.into_iter();
    samples.extend(peers.next()); // minibox --network none
    samples.push(time(
        "minibox --network bridge (veth on a bridge)",
        3,
        runs,
        || check(&mut minibox("bridge")),
    )?);
    samples.extend(peers);
    results.start = samples;
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
