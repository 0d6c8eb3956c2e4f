//! Start latency: from the command to its end, for a container whose
//! command is `true`, so what is measured is the runtime's own work.

use super::setup::Tools;
use super::stats::{check, time};
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
    samples.push(time("minibox --network none", 3, runs, || {
        check(&mut minibox("none"))
    })?);
    samples.push(time(
        "minibox --network bridge (veth on a bridge)",
        3,
        runs,
        || check(&mut minibox("bridge")),
    )?);
    // The same on a tmpfs, where fsync(2) returns at once: what minibox's
    // durable record writes cost (crun keeps its state in /run, a tmpfs,
    // and doesn't fsync). The mount is in the bench's own mount namespace.
    let fast = Scratch::new(&tools.out, "minibox-tmpfs")?;
    nix::mount::mount(
        Some("tmpfs"),
        &fast.0,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )?;
    let on_tmpfs = time("minibox --network none, state on tmpfs", 3, runs, || {
        check(
            Command::new(&tools.minibox)
                .arg("--root")
                .arg(&fast.0)
                .args(["run", "--rm", "--network", "none", "base", "true"]),
        )
    });
    let _ = nix::mount::umount2(&fast.0, nix::mount::MntFlags::MNT_DETACH);
    samples.push(on_tmpfs?);
    let mut n = 0;
    for (name, program) in [("crun", &tools.crun), ("runc", &tools.runc)] {
        let Some(program) = program else {
            results
                .notes
                .push(format!("{name} is not installed here: not measured"));
            continue;
        };
        let state = Scratch::new(&tools.out, name)?;
        let sample = time(&format!("{name} run (same rootfs)"), 3, runs, || {
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
        });
        match sample {
            Ok(sample) => samples.push(sample),
            Err(e) => results
                .notes
                .push(format!("{name} could not run a container here: {e:#}")),
        }
    }
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
