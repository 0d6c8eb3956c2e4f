//! Density: N idle containers (`sleep`), what they cost in memory and the
//! time to start them all, next to the same under crun.
//!
//! Memory is counted over the processes that appeared: their resident set
//! (RSS, which counts shared pages once per process) and their proportional
//! set (PSS, which splits shared pages among the processes sharing them),
//! minus the `sleep`s themselves ("beyond the command"); and as the drop
//! in the system's available memory.

use super::setup::Tools;
use super::stats::check;
use super::{meminfo, Results, Scratch};
use serde::Serialize;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub runtime: String,
    pub containers: usize,
    pub start_all_ms: f64,
    /// Processes per container that are not the command.
    pub helpers_per_container: f64,
    /// Beyond the command, per container.
    pub rss_kib_per_container: f64,
    pub pss_kib_per_container: f64,
    /// MemAvailable's drop, per container (kernel objects and page tables
    /// included; noisy).
    pub system_kib_per_container: f64,
}

pub fn measure(tools: &Tools, counts: &[usize], results: &mut Results) -> anyhow::Result<()> {
    for &n in counts {
        let state = Scratch::new(&tools.out, "density-minibox")?;
        let mut ids = Vec::new();
        let row = sample("minibox", "minibox-", n, || {
            let out = Command::new(&tools.minibox)
                .arg("--root")
                .arg(&state.0)
                .args(["run", "-d", "--network", "none", "base", "sleep", "1000000"])
                .stdin(std::process::Stdio::null())
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "run -d: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
            Ok(())
        })?;
        results.density.push(row);
        // (rm -f ends each container and waits for its monitor.)
        check(
            Command::new(&tools.minibox)
                .arg("--root")
                .arg(&state.0)
                .args(["rm", "-f"])
                .args(&ids),
        )?;
        if let Some(crun) = &tools.crun {
            let state = Scratch::new(&tools.out, "density-crun")?;
            let mut k = 0;
            let row = sample("crun", "crun", n, || {
                k += 1;
                // The container keeps crun's stdout and stderr: pipes
                // would never reach their end. /dev/null, and the status.
                let status = super::in_v1_view(&mut Command::new(crun))
                    .arg("--root")
                    .arg(&state.0)
                    .arg("--cgroup-manager=disabled")
                    .args(["run", "--detach", "--bundle"])
                    .arg(&tools.bundle_sleep)
                    .arg(format!("dense-{k}"))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()?;
                anyhow::ensure!(status.success(), "crun run --detach: {status}");
                Ok(())
            });
            for i in 1..=k {
                let _ = super::in_v1_view(&mut Command::new(crun))
                    .arg("--root")
                    .arg(&state.0)
                    .arg("--cgroup-manager=disabled")
                    .args(["delete", "--force", &format!("dense-{i}")])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            super::reap();
            match row {
                Ok(row) => results.density.push(row),
                Err(e) => results
                    .notes
                    .push(format!("crun could not start {n} containers: {e:#}")),
            }
        }
    }
    Ok(())
}

/// Start `n` containers with `start`, then count what appeared: processes
/// of the runtime (named `helper`...: minibox names its monitor and init
/// `minibox-monitor` and `minibox-init`). Anything else
/// the machine started meanwhile is not the containers' cost.
fn sample(
    runtime: &str,
    helper: &str,
    n: usize,
    mut start: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Row> {
    settle();
    let before = pids();
    let available = available_kib();
    let began = Instant::now();
    for _ in 0..n {
        start()?;
    }
    let start_all_ms = began.elapsed().as_secs_f64() * 1000.0;
    settle();
    let used = available.saturating_sub(available_kib());
    let new: Vec<i32> = pids().difference(&before).copied().collect();
    let (mut rss, mut pss, mut helpers) = (0u64, 0u64, 0usize);
    for pid in new {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        // The command itself, and the dead (a starter not yet reaped).
        let dead = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        if !comm.trim().starts_with(helper) || dead || status.is_empty() {
            continue;
        }
        helpers += 1;
        rss += meminfo(&status, "VmRSS").unwrap_or(0);
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        pss += meminfo(&rollup, "Pss").unwrap_or(0);
    }
    let per = |v: u64| v as f64 / n as f64;
    Ok(Row {
        runtime: runtime.to_string(),
        containers: n,
        start_all_ms,
        helpers_per_container: helpers as f64 / n as f64,
        rss_kib_per_container: per(rss),
        pss_kib_per_container: per(pss),
        system_kib_per_container: per(used),
    })
}

fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(500));
}

fn pids() -> BTreeSet<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| meminfo(&m, "MemAvailable"))
        .unwrap_or(0)
}
