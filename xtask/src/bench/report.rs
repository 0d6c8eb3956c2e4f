//! The results as the book shows them: a Markdown table, and a plot.

use super::{Ratio, Results};
use std::fmt::Write as _;

fn start_ms(results: &Results, prefix: &str) -> Option<f64> {
    let found = |exact: bool| {
        results
            .start
            .iter()
            .find(|s| {
                if exact {
                    s.name == prefix
                } else {
                    s.name.starts_with(prefix)
                }
            })
            .map(|s| s.median_ms)
    };
    found(true).or_else(|| found(false))
}

/// The comparisons, each measured side by side in this run, and the
/// targets the workshop holds minibox to.
pub fn ratios(results: &mut Results) {
    let mut out = Vec::new();
    let ratio = |name: &str, a: Option<f64>, b: Option<f64>, max: Option<f64>| {
        let (a, b) = (a?, b?);
        let value = a / b;
        Some(Ratio {
            name: name.to_string(),
            value,
            target: max.map(|m| format!("≤ {m:.1}")),
            met: max.map(|m| value <= m),
        })
    };
    let none = start_ms(results, "minibox --network none");
    let floor = start_ms(results, "unshare");
    // 1.1: step 06's defences (seccomp, capabilities, masked paths, a
    // cgroup of its own) cost work crun does too: its bundle carries the
    // same seccomp filter (seccomp.rs), docker's masked paths and a
    // capability set; except the cgroup and its device rules, which crun
    // skips here (--cgroup-manager=disabled on a hybrid host). Both are
    // timed in turns (stats::time_in_turns).
    out.extend(ratio(
        "minibox (none) / crun",
        none,
        start_ms(results, "crun"),
        Some(1.1),
    ));
    out.extend(ratio(
        "minibox (none) / unshare+chroot floor",
        none,
        floor,
        Some(2.0),
    ));
    out.extend(ratio(
        "minibox (none) / runc",
        none,
        start_ms(results, "runc"),
        None,
    ));
    out.extend(ratio(
        "crun / floor",
        start_ms(results, "crun"),
        floor,
        None,
    ));
    out.extend(ratio(
        "runc / floor",
        start_ms(results, "runc"),
        floor,
        None,
    ));
    out.extend(ratio(
        "minibox (none) with its state on tmpfs / crun",
        start_ms(results, "minibox --network none, state on tmpfs"),
        start_ms(results, "crun"),
        None,
    ));
    // 1.3: a veth, its addresses and routes are ~1.5 ms of netlink; the
    // rules, once in place, are only read (over netlink, no nft process).
    out.extend(ratio(
        "minibox bridge / none",
        start_ms(results, "minibox --network bridge (veth on a bridge)"),
        none,
        Some(1.3),
    ));
    out.extend(ratio(
        "minibox bridge -p / none",
        start_ms(results, "minibox --network bridge -p"),
        none,
        None,
    ));
    if let Some(nft) = &results.nft {
        out.push(Ratio {
            name: "nft processes per bridge run, the network's rules in place".into(),
            value: nft.bridge,
            target: Some("0".into()),
            met: Some(nft.bridge == 0.0),
        });
        out.push(Ratio {
            name: "nft processes per run -p (its own DNAT rules: one batch; checked and removed over netlink)".into(),
            value: nft.publish,
            target: Some("≤ 1".into()),
            met: Some(nft.publish <= 1.0),
        });
    }
    if let Some(images) = &results.images {
        let ms = images.cached_rebuild.median_ms;
        out.push(Ratio {
            name: "cached rebuild (ms) / 100 ms".into(),
            value: ms / 100.0,
            target: Some("≤ 1.0".into()),
            met: Some(ms < 100.0),
        });
    }
    if let Some(row) = results
        .density
        .iter()
        .filter(|r| r.runtime == "minibox")
        .max_by_key(|r| r.containers)
    {
        let mib = row.pss_kib_per_container / 1024.0;
        out.push(Ratio {
            name: format!(
                "minibox memory per idle container beyond the command (PSS, N={}) / 2 MiB",
                row.containers
            ),
            value: mib / 2.0,
            target: Some("≤ 1.0".into()),
            met: Some(mib < 2.0),
        });
    }
    if let Some(o) = &results.overlay {
        // Measured in turns on one lab: the overlay adds a VXLAN header
        // (50 bytes, an MTU of 1450), a UDP socket lookup and a second
        // veth hop per side; the targets say it must stay the same order
        // of cost as the bridge.
        let rtt = o.overlay.round_trip_us / o.bridge.round_trip_us;
        out.push(Ratio {
            name: "overlay / bridge UDP round trip".into(),
            value: rtt,
            target: Some("≤ 3.0".into()),
            met: Some(rtt <= 3.0),
        });
        let tcp = o.overlay.throughput_mib_s / o.bridge.throughput_mib_s;
        out.push(Ratio {
            name: format!("overlay / bridge TCP throughput ({} MiB)", o.overlay.mib),
            value: tcp,
            target: Some("≥ 0.5".into()),
            met: Some(tcp >= 0.5),
        });
    }
    if let Some(d) = &results.distribution {
        // Measured in turns against the same registry, the same blobs
        // both ways. skopeo copies a blob as it streams it; minibox
        // verifies it the same way, and a pull also unpacks every layer
        // into the store, which a copy into an OCI layout never does.
        for (way, [minibox, skopeo]) in [("push", &d.push), ("pull", &d.pull)] {
            let value = minibox.mb_s / skopeo.mb_s;
            out.push(Ratio {
                name: format!("minibox / skopeo {way} throughput ({:.0} MB image)", d.mb()),
                value,
                target: Some("≥ 0.5".into()),
                met: Some(value >= 0.5),
            });
        }
    }
    if let (Some(vm), Some(none)) = (&results.vm, none) {
        out.extend(ratio(
            "VM boot to power-off / minibox start",
            Some(vm.boot_to_poweroff.median_ms),
            Some(none),
            None,
        ));
    }
    results.ratios = out;
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let _ = writeln!(
        out,
        "Measured by `cargo xtask bench` on {}: Linux {}, {} CPUs, {} MiB of memory.\n",
        m.date, m.kernel, m.cpus, m.memory_mib
    );
    let _ = writeln!(
        out,
        "**Start latency** (the container's command is `true`):\n"
    );
    let _ = writeln!(
        out,
        "| | median | 10th–90th percentile | runs |\n|---|---:|---:|---:|"
    );
    for s in &r.start {
        let _ = writeln!(
            out,
            "| {} | {:.1} ms | {:.1}–{:.1} ms | {} |",
            s.name, s.median_ms, s.p10_ms, s.p90_ms, s.runs
        );
    }
    if let Some(vm) = &r.vm {
        let s = &vm.boot_to_poweroff;
        let _ = writeln!(
            out,
            "| a VM (qemu, {}): kernel, busybox init, power-off | {:.0} ms | {:.0}–{:.0} ms | {} |",
            vm.accelerator, s.median_ms, s.p10_ms, s.p90_ms, s.runs
        );
    }
    let _ = writeln!(
        out,
        "\n**Comparisons**, each measured side by side in this run:\n"
    );
    let _ = writeln!(out, "| comparison | measured | target |\n|---|---:|---|");
    for ratio in &r.ratios {
        let target = match (&ratio.target, ratio.met) {
            (Some(t), Some(true)) => format!("{t}: met"),
            (Some(t), Some(false)) => format!("{t}: **missed**"),
            _ => String::new(),
        };
        let _ = writeln!(out, "| {} | {:.2} | {target} |", ratio.name, ratio.value);
    }
    if !r.density.is_empty() {
        let _ = writeln!(out, "\n**Density**: N idle containers running `sleep`; memory per container, beyond the `sleep` itself:\n");
        let _ = writeln!(
            out,
            "| runtime | N | start all | helper processes each | RSS each | PSS each | MemAvailable drop each |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for d in &r.density {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} ms | {:.0} | {:.0} KiB | {:.0} KiB | {:.0} KiB |",
                d.runtime,
                d.containers,
                d.start_all_ms,
                d.helpers_per_container,
                d.rss_kib_per_container,
                d.pss_kib_per_container,
                d.system_kib_per_container
            );
        }
    }
    if let Some(images) = &r.images {
        let _ = writeln!(
            out,
            "\n**Images**: the blog post's Dockerfiles, `FROM base`:\n"
        );
        let _ = writeln!(out, "| Dockerfile | layers | bytes of layer tars | first build, empty store |\n|---|---:|---:|---:|");
        for b in &images.builds {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} ms |",
                b.name, b.layers, b.bytes, b.first_build_ms
            );
        }
        let c = &images.cached_rebuild;
        let _ = writeln!(
            out,
            "\nShared by both images: {} bytes. A fully cached rebuild of the seven-RUN file: {:.1} ms median ({:.1}–{:.1} ms, {} runs).",
            images.shared_bytes, c.median_ms, c.p10_ms, c.p90_ms, c.runs
        );
    }
    if let Some(o) = &r.overlay {
        let _ = writeln!(
            out,
            "\n**Across hosts**: two containers on one overlay network on two lab hosts (etcd: 3 members, up in {:.1} s), and two on one bridge, measured in turns:\n",
            o.lab_s
        );
        let _ = writeln!(
            out,
            "| pair | UDP round trip, median | 10th–90th percentile | round trips | TCP, one way | transfers |\n|---|---:|---:|---:|---:|---:|"
        );
        for p in [&o.overlay, &o.bridge] {
            let _ = writeln!(
                out,
                "| {} | {:.1} µs | {:.1}–{:.1} µs | {} | {:.0} MiB/s | {} × {} MiB |",
                p.name,
                p.round_trip_us,
                p.round_trip_p10_us,
                p.round_trip_p90_us,
                p.round_trips,
                p.throughput_mib_s,
                p.transfers,
                p.mib
            );
        }
    }
    if let Some(d) = &r.distribution {
        let _ = writeln!(
            out,
            "\n**Images over the wire**: an image of {} layers, {:.1} MB of layers and config (pseudo-random bytes, plain tars), between a registry in a lab and a local store or OCI layout, in turns; each push into an empty registry, each pull into an empty store or layout:\n",
            d.layers,
            d.mb()
        );
        let _ = writeln!(
            out,
            "| copy | median | throughput | runs |\n|---|---:|---:|---:|"
        );
        for rate in d.push.iter().chain(d.pull.iter()) {
            let _ = writeln!(
                out,
                "| {} | {:.2} s | {:.0} MB/s | {} |",
                rate.name, rate.median_s, rate.mb_s, rate.runs
            );
        }
    }
    if let Some(vm) = &r.vm {
        let _ = writeln!(
            out,
            "\n**The VM**: {} MiB of guest memory; qemu's peak resident set {:.0} MiB.",
            vm.guest_memory_mib, vm.peak_rss_mib
        );
    }
    if let Some(l) = &r.learner {
        let _ = writeln!(
            out,
            "\n**The learner's loop**: a cold build of the workspace (`cargo test --no-run`) {:.0} s; from a one-line edit in a written step 01 to its graded result (a rebuild and 14 checks) {:.1} s.",
            l.cold_build_s, l.edit_to_grade_s
        );
    }
    for note in &r.notes {
        let _ = writeln!(out, "\n> {note}");
    }
    out
}

/// Start latency and memory per container, on log scales: a VM is orders
/// of magnitude away from a container, and a linear axis would hide one or
/// the other.
pub fn svg(r: &Results) -> String {
    let mut bars: Vec<(String, f64, &str)> = r
        .start
        .iter()
        .map(|s| (s.name.clone(), s.median_ms, "ms"))
        .collect();
    if let Some(vm) = &r.vm {
        bars.push((
            format!("VM ({})", vm.accelerator.split(' ').next().unwrap_or("")),
            vm.boot_to_poweroff.median_ms,
            "ms",
        ));
    }
    let mut memory: Vec<(String, f64, &str)> = r
        .density
        .iter()
        .filter(|d| d.containers == r.density.iter().map(|d| d.containers).max().unwrap_or(0))
        .map(|d| {
            (
                format!("{} (N={}), PSS", d.runtime, d.containers),
                d.pss_kib_per_container / 1024.0,
                "MiB",
            )
        })
        .collect();
    if let Some(vm) = &r.vm {
        memory.push(("VM: qemu's peak RSS".into(), vm.peak_rss_mib, "MiB"));
    }
    let (left, width, row) = (330.0, 360.0, 22.0);
    let height = 90.0 + row * (bars.len() + memory.len()) as f64 + 40.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let mut y = 20.0;
    for (title, set, color) in [
        ("Start latency, median (log scale)", &bars, "#3b7dd8"),
        (
            "Memory per container beyond its command (log scale)",
            &memory,
            "#d8823b",
        ),
    ] {
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{y:.0}\" font-weight=\"bold\">{}</text>",
            xml(title)
        );
        y += 10.0;
        let max = set.iter().map(|b| b.1).fold(1.0_f64, f64::max);
        // The axis starts a little below the smallest bar, so it shows.
        let min = set
            .iter()
            .map(|b| b.1)
            .filter(|v| *v > 0.0)
            .fold(max, f64::min)
            .min(1.0)
            / 3.0;
        let scale = |v: f64| {
            let span = (max / min).log10().max(1.0);
            ((v.max(min) / min).log10() / span * width).max(1.0)
        };
        for (name, value, unit) in set.iter() {
            let w = scale(*value);
            let _ = writeln!(
                out,
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"14\" fill=\"{color}\"/><text x=\"{:.0}\" y=\"{:.0}\">{} {unit}</text>",
                left - 6.0,
                y + 12.0,
                xml(name),
                y + 1.0,
                left + w + 6.0,
                y + 12.0,
                if *value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") }
            );
            y += row;
        }
        y += 20.0;
    }
    out.push_str("</svg>\n");
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::distribution::{Distribution, Rate};
    use super::super::overlay::{Overlay, Pair};
    use super::super::{density::Row, stats::Sample, Machine, Results};
    use super::*;

    fn sample(name: &str, median: f64) -> Sample {
        Sample {
            name: name.into(),
            runs: 30,
            median_ms: median,
            p10_ms: median * 0.9,
            p90_ms: median * 1.2,
            min_ms: median * 0.8,
        }
    }

    fn results() -> Results {
        let mut r = Results {
            machine: Machine {
                kernel: "6.1.0".into(),
                cpus: 2,
                memory_mib: 4096,
                date: "2026-11-28".into(),
            },
            start: vec![
                sample("unshare + chroot (the floor)", 4.0),
                sample("minibox --network none", 9.0),
                sample("minibox --network none, state on tmpfs", 6.0),
                sample("crun run (same rootfs)", 7.5),
            ],
            density: vec![Row {
                runtime: "minibox".into(),
                containers: 200,
                start_all_ms: 2000.0,
                helpers_per_container: 2.0,
                rss_kib_per_container: 4600.0,
                pss_kib_per_container: 700.0,
                system_kib_per_container: 900.0,
            }],
            overlay: Some(Overlay {
                overlay: pair("overlay (host 1 ↔ host 2, VXLAN)", 12.0, 1500.0),
                bridge: pair("bridge (host 1, veths on minibox0)", 5.0, 2400.0),
                lab_s: 1.4,
            }),
            distribution: Some(Distribution {
                bytes: 50_001_234,
                layers: 5,
                push: [
                    rate("minibox push", 0.5),
                    rate("skopeo copy oci: → docker://", 0.4),
                ],
                pull: [
                    rate("minibox pull (into an empty store)", 1.25),
                    rate("skopeo copy docker:// → oci:", 0.5),
                ],
            }),
            ..Results::default()
        };
        ratios(&mut r);
        r
    }

    fn rate(name: &str, median_s: f64) -> Rate {
        Rate {
            name: name.into(),
            mb_s: 50.001234 / median_s,
            median_s,
            runs: 5,
        }
    }

    fn pair(name: &str, round_trip_us: f64, throughput_mib_s: f64) -> Pair {
        Pair {
            name: name.into(),
            round_trip_us,
            round_trip_p10_us: round_trip_us * 0.9,
            round_trip_p90_us: round_trip_us * 1.3,
            round_trips: 50,
            throughput_mib_s,
            transfers: 3,
            mib: 64,
        }
    }

    #[test]
    fn targets_are_judged_in_the_same_run() {
        let r = results();
        let get = |name: &str| {
            r.ratios
                .iter()
                .find(|x| x.name.starts_with(name))
                .unwrap()
                .clone()
        };
        let crun = get("minibox (none) / crun");
        assert_eq!(
            (format!("{:.2}", crun.value), crun.met),
            ("1.20".into(), Some(false))
        );
        let floor = get("minibox (none) / unshare");
        assert_eq!(
            (format!("{:.2}", floor.value), floor.met),
            ("2.25".into(), Some(false))
        );
        let tmpfs = get("minibox (none) with its state on tmpfs");
        assert_eq!(format!("{:.2}", tmpfs.value), "0.80");
        assert_eq!(get("minibox memory").met, Some(true));
        // Across hosts: a round trip 2.4 times the bridge's is within ≤ 3,
        // a throughput 0.625 times the bridge's within ≥ 0.5.
        let rtt = get("overlay / bridge UDP round trip");
        assert_eq!(
            (format!("{:.2}", rtt.value), rtt.met),
            ("2.40".into(), Some(true))
        );
        let tcp = get("overlay / bridge TCP throughput");
        assert_eq!(
            (format!("{:.3}", tcp.value), tcp.met),
            ("0.625".into(), Some(true))
        );
        // Push and pull: minibox's MB/s over skopeo's, each way.
        let push = get("minibox / skopeo push throughput (50 MB image)");
        assert_eq!(
            (format!("{:.2}", push.value), push.met),
            ("0.80".into(), Some(true))
        );
        let pull = get("minibox / skopeo pull throughput");
        assert_eq!(
            (format!("{:.2}", pull.value), pull.met),
            ("0.40".into(), Some(false))
        );
        // runc was not measured: no ratio is made up for it.
        assert!(r.ratios.iter().all(|x| !x.name.contains("runc")));
    }

    #[test]
    fn the_table_and_the_plot() {
        let r = results();
        insta::assert_snapshot!(markdown(&r));
        let plot = svg(&r);
        assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
        assert_eq!(plot.matches("<rect x=").count(), r.start.len() + 1);
    }
}
