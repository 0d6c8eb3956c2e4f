//! Graded checks for step 05: bridge networking.
//!
//! Compiled into `lesson-05` and `solution-05`. Every check makes a lab of
//! its own, a network namespace that lasts the check (a NetLab), and runs
//! every command of the runtime inside it, with a fresh `--root`: the
//! bridges, veths, routes and nftables rules land in the lab and go with
//! it. Where egress is checked, a second namespace plays the outside world.
//! Containers run the grader's probe (imported as an image) to listen and
//! connect; the checks read links, addresses and routes from the kernel.
//! The checks that need nftables rules (ports, NAT, isolation, and those
//! that count or remove rules) need `nft` on PATH, and are skipped without
//! it; `runs_without_nftables` hides it from the runtime, to check what a
//! machine without nftables gets.

use grader::process::Invocation;
use grader::{ensure, expect_eq, Check, Ctx, Fail, Needs, NetLab, Outcome, Requires, TempDir};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn main() {
    grader::main(
        grader::step!("05-bridge-net", Needs::Root),
        vec![
            Check { name: "default_bridge_gives_eth0", points: 3, section: "bridges-and-veth-pairs",
                hint: "Create the veth pair with its peer born in the container's namespace as eth0 (IFLA_NET_NS_PID), put the host end on the bridge and up; inside, add the address with its prefix, bring eth0 and lo up, then the default route via the gateway.",
                more: "",
                shape: "",
                requires: Requires::Nothing, run: default_bridge_gives_eth0 },
            Check { name: "default_bridge_by_ip_only", points: 2, section: "names-on-user-defined-networks",
                hint: "Containers on the default bridge reach each other by address; their /etc/hosts holds only localhost and themselves.",
                more: "",
                shape: "",
                requires: Requires::Nothing, run: default_bridge_by_ip_only },
            Check { name: "user_networks_resolve_names", points: 3, section: "names-on-user-defined-networks",
                hint: "On a user-defined network every container's /etc/hosts (bound in from its state dir) lists every other container of that network, rewritten in place when one joins or leaves; another network's containers are dropped in the forward chain.",
                more: "",
                shape: "",
                requires: Requires::Nftables, run: user_networks_resolve_names },
            Check { name: "host_and_none", points: 2, section: "host-and-none",
                hint: "--network host: no CLONE_NEWNET, the host's namespace; --network none: a namespace of its own with only lo.",
                more: "",
                shape: "",
                requires: Requires::Nothing, run: host_and_none },
            Check { name: "published_port", points: 2, section: "publishing-ports",
                hint: "-p 8080:80 is a DNAT to the container's address and port, in prerouting and in output (for the host's own connections).",
                more: "",
                shape: "",
                requires: Requires::Nftables, run: published_port },
            Check { name: "egress_is_masqueraded", points: 2, section: "egress-and-nat",
                hint: "ip_forward on, and a masquerade rule for the network's subnet leaving by another interface than its bridge: the outside sees the host's address.",
                more: "",
                shape: "",
                requires: Requires::Nftables, run: egress_is_masqueraded },
            Check { name: "inspect_matches_the_kernel", points: 2, section: "what-inspect-shows",
                hint: "NetworkSettings.Networks.<name>: NetworkID, Gateway, IPAddress, IPPrefixLen and MacAddress, read from what the container really has.",
                more: "",
                shape: "",
                requires: Requires::Nothing, run: inspect_matches_the_kernel },
            Check { name: "parallel_runs_get_distinct_addresses", points: 3, section: "addresses-ipam",
                hint: "Allocate under the networks' lock and write the allocation whole; give addresses back when a container goes.",
                more: "",
                shape: "",
                requires: Requires::Nftables, run: parallel_runs_get_distinct_addresses },
            Check { name: "nothing_is_left", points: 2, section: "cleaning-up",
                hint: "rm gives the address back and removes the container's rules; network rm removes the bridge and its rules; a runtime killed mid-way is swept by the next command.",
                more: "",
                shape: "",
                requires: Requires::Nftables, run: nothing_is_left },
            Check { name: "bad_network_input_is_one_line", points: 2, section: "the-exercise",
                hint: "An unknown network, a bad or overlapping subnet, a network in use, a taken port, a duplicate name: one line, exit 125, nothing made.",
                more: "",
                shape: "",
                requires: Requires::Nftables, run: bad_network_input_is_one_line },
            Check { name: "runs_without_nftables", points: 2, section: "nftables",
                hint: "With no nft on PATH, a run on the default bridge still gets its eth0 (firewall.rs skips the rules, with one warning line); if it fails, look at the parts you write: hosts_file, plumb and configure_inside. -p is refused in one line, before anything is made.",
                more: "",
                shape: "",
                requires: Requires::Nothing, run: runs_without_nftables },
        ],
    );
}

/// A lab namespace and a store, for one check.
struct Lab<'a> {
    ctx: &'a Ctx,
    net: NetLab,
    dir: TempDir,
}

impl<'a> Lab<'a> {
    fn new(ctx: &'a Ctx) -> Result<Self, Fail> {
        Ok(Lab {
            ctx,
            net: NetLab::new()?,
            dir: ctx.temp_dir(),
        })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn minibox(&self, args: &[&str]) -> Invocation {
        let root = self.root().to_string_lossy().into_owned();
        let mut full = vec!["--root", root.as_str()];
        full.extend_from_slice(args);
        self.ctx.minibox(&full).in_netns(&self.net.netns())
    }

    /// [`Lab::minibox`] with `PATH` an empty directory: no `nft` to find.
    /// (`env` sets it for the runtime only: nsenter is found on the
    /// grader's own.)
    fn minibox_without_nft(&self, args: &[&str]) -> Result<Invocation, Fail> {
        let empty = self.dir.path().join("empty-path");
        std::fs::create_dir_all(&empty)
            .map_err(|e| Fail::new("the grader could not make an empty directory").seen(e))?;
        let env = ["/usr/bin/env", "/bin/env"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| Fail::new("the grader needs env (coreutils)"))?;
        let path = format!("PATH={}", empty.display());
        let binary = self.ctx.binary().to_string_lossy().into_owned();
        let root = self.root().to_string_lossy().into_owned();
        let mut full = vec![path.as_str(), binary.as_str(), "--root", root.as_str()];
        full.extend_from_slice(args);
        Ok(self
            .ctx
            .minibox_at(Path::new(env), &full)
            .in_netns(&self.net.netns()))
    }

    fn ok(&self, args: &[&str], why: &str) -> Result<String, Fail> {
        let out = self.minibox(args).output()?;
        out.expect_code(0, why)?;
        Ok(out.stdout_text())
    }

    /// An image holding the grader's probe (`/usr/bin/grader-probe`).
    fn probe_image(&self) -> Result<(), Fail> {
        let tar = self.dir.path().join("probe.tar");
        self.ctx.rootfs()?.tar_to(&tar)?;
        self.ok(
            &["import", &tar.to_string_lossy(), "probe"],
            "import of the probe image",
        )?;
        Ok(())
    }

    fn inspect(&self, name: &str) -> Result<Value, Fail> {
        let text = self.ok(&["inspect", name], "inspect should work")?;
        let all: Value = serde_json::from_str(&text)
            .map_err(|e| Fail::new("inspect should print JSON").seen(e))?;
        Ok(all[0].clone())
    }

    fn address_on(&self, container: &str, network: &str) -> Result<String, Fail> {
        let value = self.inspect(container)?;
        value["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Fail::new(format!(
                    "inspect {container}: NetworkSettings.Networks.{network}.IPAddress"
                ))
                .seen(value["NetworkSettings"].to_string())
            })
    }

    /// A detached server: the probe listening on `port`.
    fn server(&self, name: &str, extra: &[&str], port: &str) -> Result<(), Fail> {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend(["probe", "grader-probe", "--probe", "listen", port]);
        self.ok(&args, "a detached server should start")?;
        let log = grader::poll(Duration::from_secs(5), || {
            let out = self.minibox(&["logs", name]).output().ok()?;
            out.stdout_text().contains("listen: ready").then_some(())
        });
        ensure(log.is_some(), || {
            Fail::new(format!("the server {name} should listen"))
        })
    }

    /// A client container: the probe connecting; what it said.
    fn connect(&self, extra: &[&str], host: &str, port: &str) -> Result<String, Fail> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend(["probe", "grader-probe", "--probe", "connect", host, port]);
        let out = self.ok(&args, "the client container should run")?;
        Ok(out
            .lines()
            .find_map(|l| l.strip_prefix("connect: "))
            .unwrap_or("(nothing)")
            .to_string())
    }
}

impl Drop for Lab<'_> {
    fn drop(&mut self) {
        // Our containers: their monitors end them; the lab goes after.
        for entry in std::fs::read_dir(self.root().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.len() == 64 {
                let _ = self.minibox(&["rm", "-f", &id]).output();
            }
        }
    }
}

fn grader_exe() -> Result<String, Fail> {
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| Fail::new("the grader cannot find itself").seen(e))
}

fn in_subnet(address: &str, network: [u8; 2]) -> bool {
    address
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.octets()[..2] == network)
}

fn default_bridge_gives_eth0(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.ok(
        &["run", "-d", "--name", "up", "base", "sleep", "1000"],
        "run -d",
    )?;
    let on = lab.net.sh("ip -o link show master minibox0 up")?;
    ensure(on.lines().count() == 1 && on.contains("mbx"), || {
        Fail::new("while a container runs, its host-side veth is on minibox0, up").seen(&on)
    })?;
    lab.ok(&["rm", "-f", "up"], "rm -f")?;
    let out = lab.ok(
        &[
            "run",
            "--rm",
            "base",
            "sh",
            "-c",
            "ip -4 -o addr show dev eth0; ip route; ip -o link show lo",
        ],
        "a container on the default bridge should run",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    let address = lines
        .first()
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("(no eth0 address)");
    let (ip, prefix) = address.split_once('/').unwrap_or((address, ""));
    ensure(in_subnet(ip, [10, 200]) && prefix == "16", || {
        Fail::new("eth0 should have an address of the default network, 10.200.0.0/16")
            .seen(out.clone())
    })?;
    ensure(
        lines
            .iter()
            .any(|l| l.starts_with("default via 10.200.0.1 dev eth0")),
        || {
            Fail::new("the default route should go via the bridge's address, 10.200.0.1, on eth0")
                .seen(out.clone())
        },
    )?;
    ensure(
        lines
            .iter()
            .any(|l| l.contains(": lo:") && l.contains(",UP")),
        || Fail::new("lo should be up inside").seen(out.clone()),
    )?;
    let bridge = lab.net.sh("ip -o -4 addr show dev minibox0")?;
    ensure(bridge.contains("10.200.0.1/16"), || {
        Fail::new("the lab (the host) should have the bridge minibox0 with 10.200.0.1/16")
            .seen(bridge.clone())
    })?;
    // The kernel removes the pair when the container's network namespace
    // ends, a few milliseconds after its last process: waited for.
    let mut left = String::new();
    grader::poll(grader::process::TIMEOUT, || {
        left = lab.net.sh("ip -o link show master minibox0").ok()?;
        left.trim().is_empty().then_some(())
    });
    expect_eq(
        "after the container ended, no veth is left on the bridge",
        "",
        left.trim(),
    )
}

fn default_bridge_by_ip_only(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.probe_image()?;
    lab.server("srv", &[], "80")?;
    let ip = lab.address_on("srv", "bridge")?;
    let by_ip = lab.connect(&[], &ip, "80")?;
    ensure(by_ip.starts_with("ok hello from"), || {
        Fail::new("on the default bridge, a container reaches another by address").seen(&by_ip)
    })?;
    let by_name = lab.connect(&[], "srv", "80")?;
    expect_eq(
        "on the default bridge, names do not resolve (as docker's)",
        "unknown-host",
        by_name.as_str(),
    )
}

fn user_networks_resolve_names(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.probe_image()?;
    lab.ok(&["network", "create", "n1"], "network create")?;
    lab.ok(&["network", "create", "n2"], "network create")?;
    lab.server("srv", &["--network", "n1"], "80")?;
    let said = lab.connect(&["--network", "n1"], "srv", "80")?;
    ensure(said.starts_with("ok hello from"), || {
        Fail::new("on a user-defined network, a container reaches another by its name").seen(&said)
    })?;
    // One started after the first: the server learns its name too.
    lab.server("late", &["--network", "n1"], "81")?;
    let hosts = lab.ok(&["exec", "srv", "cat", "/etc/hosts"], "exec")?;
    ensure(
        hosts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("late")),
        || {
            Fail::new("a container started later is in the /etc/hosts of those already there")
                .seen(&hosts)
        },
    )?;
    let ip = lab.address_on("srv", "n1")?;
    ensure(
        hosts.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(ip.as_str()) && words.next() == Some("srv")
        }) && hosts
            .lines()
            .any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")),
        || {
            Fail::new("a container's /etc/hosts names localhost and the container itself (its address, its name)")
                .seen(&hosts)
        },
    )?;
    let id = lab.inspect("srv")?["Id"].as_str().unwrap_or("").to_string();
    let line = hosts
        .lines()
        .find(|l| l.starts_with(&format!("{ip}\t")))
        .unwrap_or("");
    ensure(
        line.split_whitespace().collect::<Vec<_>>()
            == [ip.as_str(), "srv", id.get(..12).unwrap_or("?")]
            && hosts.ends_with('\n'),
        || {
            Fail::new("its own line is ADDRESS<tab>NAME SHORTID, and each line ends in a newline")
                .seen(&hosts)
        },
    )?;
    lab.ok(&["rm", "-f", "late"], "rm -f")?;
    let hosts = lab.ok(&["exec", "srv", "cat", "/etc/hosts"], "exec")?;
    ensure(!hosts.contains("late"), || {
        Fail::new("a container removed leaves the /etc/hosts of the others").seen(&hosts)
    })?;
    let other = lab.connect(&["--network", "n2"], &ip, "80")?;
    ensure(!other.starts_with("ok"), || {
        Fail::new("a container of another network must not reach it").seen(&other)
    })?;
    let by_name = lab.connect(&["--network", "n2"], "srv", "80")?;
    expect_eq("nor know its name", "unknown-host", by_name.as_str())
}

fn host_and_none(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let lab_ns = grader::procfs::namespace(lab.net.pid, "net").unwrap_or_default();
    let bridged = lab.ok(
        &[
            "run",
            "--rm",
            "base",
            "sh",
            "-c",
            "readlink /proc/self/ns/net; ls /sys/class/net",
        ],
        "a container on the default bridge",
    )?;
    let mut lines = bridged.lines();
    let own = lines.next().unwrap_or("").to_string();
    let links: Vec<&str> = lines.collect();
    ensure(
        own != lab_ns && links.contains(&"eth0") && links.contains(&"lo"),
        || Fail::new("by default: a network namespace of its own, with eth0 and lo").seen(&bridged),
    )?;
    let inside = lab.ok(
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "base",
            "readlink",
            "/proc/self/ns/net",
        ],
        "--network host",
    )?;
    expect_eq(
        "--network host: the lab's (the host's) network namespace",
        lab_ns.as_str(),
        inside.trim(),
    )?;
    lab.ok(
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "quiet",
            "base",
            "sleep",
            "1000",
        ],
        "run -d --network none",
    )?;
    let shown = lab.ok(
        &[
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            "quiet",
        ],
        "inspect of a --network none container",
    )?;
    ensure(shown.contains("\"none\""), || {
        Fail::new("inspect shows the mode as the container's network, as docker does").seen(&shown)
    })?;
    lab.ok(&["rm", "-f", "quiet"], "rm -f")?;
    let links = lab.ok(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "base",
            "sh",
            "-c",
            "ls /sys/class/net",
        ],
        "--network none",
    )?;
    expect_eq("--network none: only lo", "lo", links.trim())
}

fn published_port(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.probe_image()?;
    lab.server("web", &["-p", "8080:80"], "80")?;
    let out = lab
        .net
        .command(
            &grader_exe()?,
            &["--probe", "connect", "10.200.0.1", "8080"],
        )
        .output()
        .map_err(|e| Fail::new("the grader could not run its client").seen(e))?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure(said.contains("connect: ok hello from"), || {
        Fail::new("a client in the lab connects to port 8080 of the host and talks to the server in the container").seen(said.trim())
    })
}

fn egress_is_masqueraded(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let outside = NetLab::new()?;
    lab.net.link_outside(&outside)?;
    lab.probe_image()?;
    let mut server = outside
        .command(&grader_exe()?, &["--probe", "listen", "9000"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Fail::new("the grader could not start the outside server").seen(e))?;
    ctx.track(server.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let out = server.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let _ready = rx.recv_timeout(Duration::from_secs(5));
    // A container publishing 9000: DNAT is for the host's own addresses
    // only, so a connection to port 9000 of another host is left alone.
    lab.server("pub", &["-p", "9000:80"], "80")?;
    let said = lab.connect(&[], "192.0.2.2", "9000")?;
    let peer = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    ensure(said.starts_with("ok"), || {
        Fail::new("a container reaches a server outside the host").seen(&said)
    })?;
    ensure(!peer.is_empty(), || {
        Fail::new("the outside server got no connection: a -p 9000 DNAT must match only the host's own addresses (fib daddr type local), not port 9000 of any host").seen(&said)
    })?;
    let nat = lab.net.sh("nft list chain ip minibox postrouting")?;
    ensure(
        nat.lines()
            .any(|l| l.contains("masquerade") && l.contains("oifname != \"minibox0\"")),
        || {
            Fail::new("the masquerade is for packets leaving by another interface than the bridge (oifname != \"minibox0\")").seen(&nat)
        },
    )?;
    expect_eq(
        "the outside sees the host's address, not the container's (masquerade)",
        "peer: 192.0.2.1",
        peer.as_str(),
    )
}

fn inspect_matches_the_kernel(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let net_id = lab
        .ok(&["network", "create", "testBridge"], "network create")?
        .trim()
        .to_string();
    lab.ok(
        &[
            "run",
            "-d",
            "--network",
            "testBridge",
            "--name",
            "testContainer",
            "base",
            "sleep",
            "1000",
        ],
        "run -d",
    )?;
    let value = lab.inspect("testContainer")?;
    let mine = &value["NetworkSettings"]["Networks"]["testBridge"];
    let kernel = lab.ok(
        &[
            "exec",
            "testContainer",
            "sh",
            "-c",
            "ip -4 -o addr show dev eth0; cat /sys/class/net/eth0/address; ip route",
        ],
        "exec",
    )?;
    let lines: Vec<&str> = kernel.lines().collect();
    let address = lines
        .first()
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("");
    let (ip, prefix) = address.split_once('/').unwrap_or(("", ""));
    expect_eq(
        "IPAddress is eth0's address",
        ip,
        mine["IPAddress"].as_str().unwrap_or(""),
    )?;
    expect_eq(
        "IPPrefixLen is eth0's prefix",
        prefix.parse::<u64>().ok(),
        mine["IPPrefixLen"].as_u64(),
    )?;
    expect_eq(
        "MacAddress is eth0's",
        lines.get(1).copied().unwrap_or(""),
        mine["MacAddress"].as_str().unwrap_or(""),
    )?;
    let gateway = mine["Gateway"].as_str().unwrap_or("").to_string();
    ensure(
        lines.iter().any(|l| {
            *l == format!("default via {gateway} dev eth0").as_str()
                || l.starts_with(&format!("default via {gateway} dev eth0 "))
        }),
        || Fail::new("Gateway is the default route's").seen(&kernel),
    )?;
    let network: Value =
        serde_json::from_str(&lab.ok(&["network", "inspect", "testBridge"], "network inspect")?)
            .unwrap_or_default();
    expect_eq(
        "NetworkID is network inspect's Id",
        network[0]["Id"].as_str().unwrap_or(""),
        mine["NetworkID"].as_str().unwrap_or(""),
    )?;
    expect_eq(
        "and network create printed it",
        net_id.as_str(),
        mine["NetworkID"].as_str().unwrap_or(""),
    )
}

fn parallel_runs_get_distinct_addresses(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.ok(
        &["network", "create", "--subnet", "10.210.0.0/24", "many"],
        "network create",
    )?;
    lab.ok(&["run", "--rm", "base", "true"], "the base image")?;
    let names: Vec<String> = (0..20).map(|n| format!("c{n}")).collect();
    let running: Vec<_> = names
        .iter()
        .map(|n| {
            lab.minibox(&[
                "run",
                "-d",
                "--network",
                "many",
                "--name",
                n,
                "base",
                "sleep",
                "1000",
            ])
            .spawn()
        })
        .collect::<Result<_, _>>()?;
    for run in running {
        run.wait(grader::process::TIMEOUT)?
            .expect_code(0, "each parallel run -d should start")?;
    }
    let rules = lab
        .net
        .sh("nft list ruleset | grep -Ec 'comment \"net:many[:\"]' || true")?;
    expect_eq(
        "20 parallel first runs: the network's 2 rules, once",
        "2",
        rules.trim(),
    )?;
    let mut addresses = Vec::new();
    for name in &names {
        addresses.push(lab.address_on(name, "many")?);
    }
    let mut unique = addresses.clone();
    unique.sort();
    unique.dedup();
    expect_eq("20 parallel runs: 20 distinct addresses", 20, unique.len())?;
    for address in &addresses {
        let out = lab
            .net
            .command(&grader_exe()?, &["--probe", "connect", address, "9"])
            .output()
            .map_err(|e| Fail::new("client").seen(e))?;
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure(said.contains("ECONNREFUSED"), || {
            Fail::new(format!(
                "{address} should answer from the lab (a refused connection proves it is there)"
            ))
            .seen(said.trim())
        })?;
    }
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    lab.ok(&args, "rm -f of them all")?;
    let network: Value =
        serde_json::from_str(&lab.ok(&["network", "inspect", "many"], "network inspect")?)
            .unwrap_or_default();
    expect_eq(
        "after rm, the network holds no container",
        Some(0),
        network[0]["Containers"].as_object().map(|c| c.len()),
    )?;
    // The allocation waits for the networks' lock: hold it, and a run on
    // the network must not allocate until it is let go.
    {
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lab.root().join("networks.lock"))
            .map_err(|e| Fail::new("lock").seen(e))?;
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Fail::new("lock").seen(e))?;
        let waiting = lab
            .minibox(&[
                "run",
                "-d",
                "--network",
                "many",
                "--name",
                "locked",
                "base",
                "sleep",
                "1000",
            ])
            .spawn()?;
        std::thread::sleep(Duration::from_millis(1500));
        let ipam =
            std::fs::read_to_string(lab.root().join("networks/many.ipam.json")).unwrap_or_default();
        drop(held);
        waiting
            .wait(grader::process::TIMEOUT)?
            .expect_code(0, "run -d, once the lock is free")?;
        ensure(!ipam.contains("locked"), || {
            Fail::new("an address is allocated only under the networks' lock (ROOT/networks.lock)")
                .seen(&ipam)
        })?;
        lab.ok(&["rm", "-f", "locked"], "rm -f")?;
    }
    lab.ok(
        &[
            "run",
            "-d",
            "--network",
            "many",
            "--name",
            "again",
            "base",
            "sleep",
            "1000",
        ],
        "run -d",
    )?;
    expect_eq(
        "the addresses are free again: the first one is given anew",
        "10.210.0.2",
        lab.address_on("again", "many")?.as_str(),
    )
}

fn nothing_is_left(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.ok(&["network", "create", "tmpnet"], "network create")?;
    lab.ok(
        &[
            "run",
            "-d",
            "--network",
            "tmpnet",
            "--name",
            "one",
            "-p",
            "8081:80",
            "base",
            "sleep",
            "1000",
        ],
        "run -d",
    )?;
    let pid = lab.inspect("one")?["State"]["Pid"].as_i64().unwrap_or(0);
    // Hold its network namespace: the kernel keeps the veth; rm must delete it.
    let held = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| Fail::new("the grader could not hold the container's netns").seen(e))?;
    lab.ok(&["rm", "-f", "one"], "rm -f")?;
    let veths = lab.net.sh("ip -o link show type veth")?;
    drop(held);
    expect_eq(
        "rm deletes the host-side veth (even if its netns lives on)",
        "",
        veths.trim(),
    )?;
    lab.ok(&["network", "rm", "tmpnet"], "network rm")?;
    // Read with netlink (ip), not /sys: the lab's /sys is still the host's.
    let links = lab.net.sh("ip -o link show | cut -d: -f2 | cut -d@ -f1")?;
    let ours: Vec<&str> = links.split_whitespace().filter(|l| *l != "lo").collect();
    expect_eq(
        "after rm and network rm: no veth or bridge of ours left in the lab",
        Vec::<&str>::new(),
        ours,
    )?;
    let rules = lab.net.sh("nft list ruleset | grep -c 'comment' || true")?;
    expect_eq("and no nftables rule of ours", "0", rules.trim())?;
    let set = lab
        .net
        .sh("nft list set ip minibox bridges 2>/dev/null || true")?;
    ensure(!set.contains("mbx-"), || {
        Fail::new("network rm takes its bridge out of the isolation set").seen(&set)
    })?;
    // SIGKILL of a foreground run, mid-way: the next command sweeps.
    lab.ok(&["network", "create", "killnet"], "network create")?;
    let mut running = lab
        .minibox(&[
            "run",
            "--network",
            "killnet",
            "--name",
            "victim",
            "base",
            "sh",
            "-c",
            "echo up; sleep 1000",
        ])
        .spawn()?;
    let runtime = running.pid();
    ctx.track_tree(runtime);
    expect_eq(
        "the container should start",
        "up",
        running.read_line(Duration::from_secs(10))?.as_str(),
    )?;
    running.signal(nix::sys::signal::Signal::SIGKILL)?;
    let _ = running.wait(Duration::from_secs(5));
    let listing = lab.ok(&["ps", "-a"], "ps after a SIGKILL")?;
    ensure(listing.contains("Exited"), || {
        Fail::new("the killed run's container shows as exited").seen(&listing)
    })?;
    let network: Value =
        serde_json::from_str(&lab.ok(&["network", "inspect", "killnet"], "network inspect")?)
            .unwrap_or_default();
    expect_eq(
        "its address was given back by the next command",
        Some(0),
        network[0]["Containers"].as_object().map(|c| c.len()),
    )?;
    let veths = lab.net.sh("ip -o link show type veth")?;
    expect_eq("and its veth is gone", "", veths.trim())
}

fn networks_state(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("networks"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    format!(
                        "{} {}",
                        e.file_name().to_string_lossy(),
                        std::fs::read_to_string(e.path()).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn bad_network_input_is_one_line(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    lab.ok(
        &["network", "create", "--subnet", "10.220.0.0/24", "used"],
        "network create",
    )?;
    lab.ok(
        &[
            "run",
            "-d",
            "--network",
            "used",
            "--name",
            "holder",
            "-p",
            "8090:80",
            "base",
            "sleep",
            "1000",
        ],
        "run -d",
    )?;
    let before = networks_state(&lab.root());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "--rm", "--network", "nowhere", "base", "true"],
            "nowhere",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.220.0.128/25",
                "overlap",
            ],
            "overlaps",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.220.1.7/24",
                "badsubnet",
            ],
            "subnet",
        ),
        (
            vec!["network", "create", "--subnet", "300.1.0.0/16", "badsubnet"],
            "subnet",
        ),
        (vec!["network", "rm", "used"], "in use"),
        (vec!["run", "--rm", "-p", "8090:80", "base", "true"], "8090"),
        (vec!["run", "--rm", "-p", "80", "base", "true"], "-p"),
        (vec!["network", "create", "used"], "already exists"),
    ];
    for (args, mentions) in cases {
        let out = lab.minibox(&args).output()?;
        out.expect_code(125, "bad input is a runtime error (125)")?;
        out.expect_one_error_line(mentions)?;
    }
    let after = networks_state(&lab.root());
    ensure(before == after, || {
        Fail::new("bad input must leave the networks as they were")
            .seen(format!("{before:?}\n{after:?}"))
    })
}

fn runs_without_nftables(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    // The base image first, with the usual PATH: making it copies host
    // programs, and asks ldd for their libraries. The runtime needs nothing
    // else from PATH (a container's own PATH comes from its image).
    lab.ok(
        &["run", "--rm", "--network", "none", "base", "true"],
        "the base image",
    )?;
    let out = lab
        .minibox_without_nft(&[
            "run", "--rm", "base", "ip", "-4", "-o", "addr", "show", "dev", "eth0",
        ])?
        .output()?;
    out.expect_code(
        0,
        "without nft on PATH, a container on the default bridge still runs",
    )?;
    let stdout = out.stdout_text();
    let address = stdout
        .split_whitespace()
        .nth(3)
        .unwrap_or("(no eth0 address)");
    let ip = address.split_once('/').map_or(address, |(ip, _)| ip);
    ensure(in_subnet(ip, [10, 200]), || {
        Fail::new("without nft, eth0 still has an address of the default network, 10.200.0.0/16")
            .seen(stdout.trim())
    })?;
    let lines: Vec<&str> = out.stderr.lines().collect();
    ensure(
        lines.len() == 1 && lines[0].starts_with("minibox: warning: ") && lines[0].contains("nft"),
        || {
            Fail::new("without nft, one warning line on stderr says what the containers go without")
                .expected("minibox: warning: nft not found on PATH: ... (install nftables)")
                .seen(if lines.is_empty() {
                    "nothing on stderr"
                } else {
                    out.stderr.trim_end()
                })
        },
    )?;
    let out = lab
        .minibox_without_nft(&["run", "--rm", "-p", "8080:80", "base", "true"])?
        .output()?;
    out.expect_code(125, "without nft, -p is refused (a runtime error, 125)")?;
    out.expect_one_error_line("nftables")?;
    let listing = lab.ok(&["ps", "-a"], "ps -a")?;
    expect_eq(
        "a refused -p leaves no container (ps -a lists only its header)",
        1,
        listing.lines().count(),
    )
}
