//! Repeated runs, and what to report of them: the median and the spread.

use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub name: String,
    pub runs: usize,
    pub median_ms: f64,
    /// The 10th and 90th percentiles: the spread without the outliers.
    pub p10_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
}

impl Sample {
    pub fn of(name: &str, mut times: Vec<Duration>) -> Sample {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
        Sample {
            name: name.to_string(),
            runs: times.len(),
            median_ms: at(0.5),
            p10_ms: at(0.1),
            p90_ms: at(0.9),
            min_ms: ms(times[0]),
        }
    }
}

/// Time `once` `runs` times after `warmup` untimed runs. Each run must
/// succeed: a failed run would be a fast lie.
pub fn time(
    name: &str,
    warmup: usize,
    runs: usize,
    mut once: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Sample> {
    for _ in 0..warmup {
        once()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        once()?;
        times.push(start.elapsed());
    }
    Ok(Sample::of(name, times))
}

/// A thing to time, by name.
pub type Timed<'a> = (String, Box<dyn FnMut() -> anyhow::Result<()> + 'a>);

/// Time several things *in turns*: one run of each, then the next round
/// (starting one further along), so that whatever the machine does meanwhile (another job, the disk
/// catching up, a cgroup move's grace period) falls on all of them alike,
/// and their ratio means something even on a busy machine. One whose
/// warm-up fails is left out, and comes back as `Err` with why.
pub fn time_in_turns(
    warmup: usize,
    runs: usize,
    mut timed: Vec<Timed<'_>>,
) -> Vec<Result<Sample, (String, anyhow::Error)>> {
    let mut failed = Vec::new();
    let mut kept = Vec::new();
    for (name, mut once) in timed.drain(..) {
        match (0..warmup).try_for_each(|_| once()) {
            Ok(()) => kept.push((name, once, Vec::with_capacity(runs))),
            Err(e) => failed.push((name, e)),
        }
    }
    let mut broken = Vec::new();
    let count = kept.len();
    for round in 0..runs {
        // Each round starts with the next one: a run that leaves the
        // machine busy (runc's cgroup moves leave a grace period behind)
        // is followed by each of the others equally often.
        for step in 0..count {
            let index = (round + step) % count;
            let (_, once, times) = &mut kept[index];
            if broken.iter().any(|(i, _)| *i == index) {
                continue;
            }
            let start = Instant::now();
            match once() {
                Ok(()) => times.push(start.elapsed()),
                Err(e) => broken.push((index, e)),
            }
        }
    }
    let mut out = Vec::new();
    for (index, (name, _, times)) in kept.into_iter().enumerate() {
        match broken.iter().position(|(i, _)| *i == index) {
            Some(at) => {
                let (_, e) = broken.remove(at);
                out.push(Err((name, e)));
            }
            None => out.push(Ok(Sample::of(&name, times))),
        }
    }
    out.extend(failed.into_iter().map(Err));
    out
}

/// Run a command to its end; fail with its stderr unless it succeeds.
pub fn check(command: &mut std::process::Command) -> anyhow::Result<()> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("{command:?}: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed ({}): {}",
        command,
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let ms = |n| Duration::from_millis(n);
        let s = Sample::of("x", (1..=11).rev().map(ms).collect());
        assert_eq!(
            (s.median_ms, s.p10_ms, s.p90_ms, s.min_ms),
            (6.0, 2.0, 10.0, 1.0)
        );
    }
}
