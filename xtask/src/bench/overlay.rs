//! Across hosts: what step 07's overlay costs a packet, next to step 05's
//! bridge, measured in the same run on the same lab.
//!
//! The lab is the checks' own (`grader::cluster::Cluster`): three "hosts",
//! each a network namespace with a cable to an underlay bridge, and an
//! etcd member on each. Two containers on one overlay network, on host 1
//! and host 2, and two containers on the default bridge of host 1:
//!
//! ```text
//!   host1: ov-a ──vxlan── underlay ──vxlan── host2: ov-b   (the overlay)
//!   host1: br-a ──veth── minibox0 ──veth── br-b             (the bridge)
//! ```
//!
//! The bench then enters each container's network namespace (setns(2) on
//! a thread of its own, `nsenter --net=/proc/PID/ns/net` in shell) to make
//! a socket there, and keeps the socket: it stays in that namespace. So
//! no program runs in the containers but `sleep`, and both pairs carry
//! exactly the same traffic: UDP round trips (one 8-byte datagram each
//! way, the median of many) and a fixed amount of TCP, one way.
//!
//! Everything lives in the lab's namespaces, which go with the cluster.

use super::setup::Tools;
use super::Scratch;
use anyhow::{bail, Context};
use grader::cluster::Cluster;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// One pair of containers: how fast a packet goes between them.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub name: String,
    /// The median UDP round trip, and the 10th–90th percentiles.
    pub round_trip_us: f64,
    pub round_trip_p10_us: f64,
    pub round_trip_p90_us: f64,
    pub round_trips: usize,
    /// TCP, one way: the median of `transfers` runs of `mib` MiB each.
    pub throughput_mib_s: f64,
    pub transfers: usize,
    pub mib: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overlay {
    pub overlay: Pair,
    pub bridge: Pair,
    /// How long the lab (3 hosts, etcd elected) took to come up.
    pub lab_s: f64,
}

/// The overlay and the bridge, measured in turns; `None` (with a note)
/// where there is no etcd or the lab cannot be made.
pub fn measure(tools: &Tools, quick: bool, notes: &mut Vec<String>) -> Option<Overlay> {
    if let Some(why) = Cluster::unavailable() {
        eprintln!("bench: overlay skipped: {why}");
        notes.push(format!("the overlay across hosts was not measured: {why}"));
        return None;
    }
    let started = Instant::now();
    match run(tools, quick) {
        Ok(overlay) => {
            eprintln!(
                "bench: across hosts took {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Some(overlay)
        }
        Err(e) => {
            eprintln!("bench: overlay not measured: {e:#}");
            notes.push(format!("the overlay across hosts was not measured: {e:#}"));
            None
        }
    }
}

fn run(tools: &Tools, quick: bool) -> anyhow::Result<Overlay> {
    let started = Instant::now();
    // On this thread, which lives as long as the bench: the members die
    // with the thread that started them (PR_SET_PDEATHSIG).
    let cluster = Cluster::start(3).map_err(|f| anyhow::anyhow!("the lab's etcd: {f}"))?;
    let lab_s = started.elapsed().as_secs_f64();
    let lab = Lab::new(tools, &cluster)?;
    let result = lab.pairs(quick);
    // Whatever happened: every container and the network removed, then
    // the cluster dropped (its members killed, its namespaces ended).
    lab.clean();
    let (overlay, bridge) = result?;
    Ok(Overlay {
        overlay,
        bridge,
        lab_s,
    })
}

/// The runtime on the lab's hosts, each with a store of its own.
struct Lab<'a> {
    tools: &'a Tools,
    cluster: &'a Cluster,
    roots: Vec<Scratch>,
    store: String,
}

impl<'a> Lab<'a> {
    fn new(tools: &'a Tools, cluster: &'a Cluster) -> anyhow::Result<Lab<'a>> {
        let roots = (0..2)
            .map(|i| Scratch::new(&tools.out, &format!("overlay-host{}", i + 1)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Lab {
            tools,
            cluster,
            roots,
            store: format!("etcd://{}", cluster.endpoints().join(",")),
        })
    }

    /// `nsenter --net=/proc/$H/ns/net minibox --root R --cluster-store S
    /// --cluster-advertise A ARGS` on host `i`.
    fn minibox(&self, i: usize, args: &[&str]) -> Command {
        let host = self.cluster.host(i);
        let mut command = host.net.command(&self.tools.minibox.to_string_lossy(), &[]);
        command
            .arg("--root")
            .arg(&self.roots[i].0)
            .args(["--cluster-store", &self.store])
            .args(["--cluster-advertise", &host.address])
            .args(args)
            .stdin(std::process::Stdio::null());
        command
    }

    fn ok(&self, i: usize, args: &[&str]) -> anyhow::Result<String> {
        let out = self.minibox(i, args).output()?;
        if !out.status.success() {
            bail!(
                "(host {}) minibox {}: {}",
                i + 1,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A detached `sleep` named `name` on `network`, host `i`: its
    /// init's pid and its address there.
    fn container(&self, i: usize, name: &str, network: &str) -> anyhow::Result<(i32, Ipv4Addr)> {
        self.ok(
            i,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                network,
                "base",
                "sleep",
                "1000000",
            ],
        )?;
        let value: serde_json::Value = serde_json::from_str(&self.ok(i, &["inspect", name])?)?;
        let pid = value[0]["State"]["Pid"].as_i64().unwrap_or(0) as i32;
        let address = value[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("inspect {name}: no address on {network}"))?;
        anyhow::ensure!(pid > 0, "inspect {name}: no pid");
        Ok((pid, address))
    }

    fn pairs(&self, quick: bool) -> anyhow::Result<(Pair, Pair)> {
        self.ok(0, &["network", "create", "-d", "overlay", "ov"])?;
        let overlay = Sockets::new(
            "overlay (host 1 ↔ host 2, VXLAN)",
            self.container(0, "ov-a", "ov")?,
            self.container(1, "ov-b", "ov")?,
        )?;
        let bridge = Sockets::new(
            "bridge (host 1, veths on minibox0)",
            self.container(0, "br-a", "bridge")?,
            self.container(0, "br-b", "bridge")?,
        )?;
        // The first datagram across hosts waits for the other host's
        // entries (its FDB and neighbour, written by a run or a sync): at
        // once, or within a tick. Bounded.
        for pair in [&overlay, &bridge] {
            let reached = grader::poll(Duration::from_secs(10), || pair.round_trip(0));
            anyhow::ensure!(
                reached.is_some(),
                "{}: no UDP round trip within 10 s",
                pair.name
            );
        }
        let (rounds, mib, transfers) = if quick { (50, 64, 3) } else { (500, 1024, 5) };
        let mut times = [Vec::new(), Vec::new()];
        // In turns, one of each per round: a busy moment falls on both.
        for sequence in 1..=rounds as u64 {
            for (k, pair) in [&overlay, &bridge].into_iter().enumerate() {
                if let Some(took) = pair.round_trip(sequence) {
                    times[k].push(took);
                }
            }
        }
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..transfers {
            for (k, pair) in [&overlay, &bridge].into_iter().enumerate() {
                rates[k].push(pair.throughput(mib)?);
            }
        }
        let [overlay_times, bridge_times] = times;
        let [overlay_rates, bridge_rates] = rates;
        Ok((
            summary(&overlay.name, overlay_times, rounds, overlay_rates, mib)?,
            summary(&bridge.name, bridge_times, rounds, bridge_rates, mib)?,
        ))
    }

    /// `rm -f` of every container, `network rm ov`: the lab must be empty
    /// of the runtime's work before its namespaces go.
    fn clean(&self) {
        for (i, names) in [(0, &["ov-a", "br-a", "br-b"][..]), (1, &["ov-b"][..])] {
            let _ = self.minibox(i, &["rm", "-f"]).args(names).output();
        }
        let _ = self.minibox(0, &["network", "rm", "ov"]).output();
        super::reap();
    }
}

fn summary(
    name: &str,
    mut times: Vec<Duration>,
    rounds: usize,
    mut rates: Vec<f64>,
    mib: usize,
) -> anyhow::Result<Pair> {
    // A lost datagram is a second's wait, not a sample: most must come back.
    anyhow::ensure!(
        times.len() * 10 >= rounds * 9,
        "{name}: only {} of {rounds} UDP round trips came back",
        times.len()
    );
    times.sort();
    let us = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    rates.sort_by(f64::total_cmp);
    Ok(Pair {
        name: name.to_string(),
        round_trip_us: us(0.5),
        round_trip_p10_us: us(0.1),
        round_trip_p90_us: us(0.9),
        round_trips: times.len(),
        throughput_mib_s: rates[rates.len() / 2],
        transfers: rates.len(),
        mib,
    })
}

/// Sockets in two containers' namespaces: UDP on each, a TCP listener on
/// the server's side.
struct Sockets {
    name: String,
    client_ns: i32,
    client_udp: UdpSocket,
    server_udp: UdpSocket,
    server: Ipv4Addr,
    client: Ipv4Addr,
    listener: TcpListener,
}

impl Sockets {
    fn new(
        name: &str,
        server: (i32, Ipv4Addr),
        client: (i32, Ipv4Addr),
    ) -> anyhow::Result<Sockets> {
        let (server_pid, server_ip) = server;
        let (client_pid, client_ip) = client;
        let (server_udp, listener) = in_netns(server_pid, move || {
            Ok((
                UdpSocket::bind((server_ip, 7007))?,
                TcpListener::bind((server_ip, 7008))?,
            ))
        })?;
        let client_udp = in_netns(client_pid, move || Ok(UdpSocket::bind((client_ip, 7007))?))?;
        let timeout = Some(Duration::from_secs(1));
        client_udp.set_read_timeout(timeout)?;
        server_udp.set_read_timeout(timeout)?;
        Ok(Sockets {
            name: name.to_string(),
            client_ns: client_pid,
            client_udp,
            server_udp,
            server: server_ip,
            client: client_ip,
            listener,
        })
    }

    /// One datagram there and back; `None` if either way got nothing
    /// within a second.
    fn round_trip(&self, sequence: u64) -> Option<Duration> {
        let message = sequence.to_be_bytes();
        let mut buffer = [0u8; 64];
        let started = Instant::now();
        self.client_udp
            .send_to(&message, (self.server, 7007))
            .ok()?;
        let from = loop {
            let (n, from) = self.server_udp.recv_from(&mut buffer).ok()?;
            if buffer[..n] == message {
                break from;
            }
        };
        self.server_udp.send_to(&message, from).ok()?;
        loop {
            let (n, _) = self.client_udp.recv_from(&mut buffer).ok()?;
            if buffer[..n] == message {
                return Some(started.elapsed());
            }
        }
    }

    /// `mib` MiB over a fresh TCP connection, client to server, timed from
    /// connect to the server's read of the last byte; in MiB/s.
    fn throughput(&self, mib: usize) -> anyhow::Result<f64> {
        let (server, client) = (self.server, self.client);
        let started = Instant::now();
        // connect(2) from the client's namespace (the socket is made there).
        let mut stream = in_netns(self.client_ns, move || {
            let stream = TcpStream::connect((server, 7008))?;
            Ok(stream)
        })?;
        let (mut accepted, from) = self.listener.accept()?;
        anyhow::ensure!(
            from.ip() == std::net::IpAddr::V4(client),
            "{}: a connection from {from}, not {client}",
            self.name
        );
        accepted.set_read_timeout(Some(Duration::from_secs(10)))?;
        let reader = std::thread::spawn(move || -> std::io::Result<u64> {
            let mut buffer = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                match accepted.read(&mut buffer)? {
                    0 => return Ok(total),
                    n => total += n as u64,
                }
            }
        });
        let chunk = vec![0x5au8; 1024 * 1024];
        for _ in 0..mib {
            stream.write_all(&chunk)?;
        }
        stream.shutdown(std::net::Shutdown::Write)?;
        let got = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
        let took = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            got == (mib * 1024 * 1024) as u64,
            "{}: {got} bytes arrived of {mib} MiB",
            self.name
        );
        Ok(mib as f64 / took)
    }
}

/// Run `make` on a thread that first joins the network namespace of
/// `pid` (setns(2) changes only the calling thread's): sockets it makes
/// stay in that namespace after the thread ends.
fn in_netns<T: Send + 'static>(
    pid: i32,
    make: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        // setns(2): fails if the container has ended (its /proc entry is
        // gone) or we lack CAP_SYS_ADMIN.
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .with_context(|| format!("/proc/{pid}/ns/net"))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("setns into {pid}'s network namespace"))?;
        make()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("a thread in {pid}'s namespace panicked"))?
}
