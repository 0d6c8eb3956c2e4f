//! Step 05's bridge networks (given code there) against what a container
//! on them, or a hand in the store, can try: a rogue router advertisement,
//! forged source addresses, a huge `/etc/hosts`, network names and records
//! that would turn into nft commands or share a file, links where the
//! store's lock files are. The network attacks run from inside a
//! container, with the probe; each has a control that opens the door again
//! in the lab and shows the same probe then gets through.

use super::{probe_image, Lab, MINIBOX};
use libtest_mimic::Failed;
use std::process::Command;

/// A shell of one side's network namespace: its script's stdout.
type Shell<'a> = &'a dyn Fn(&str) -> Result<String, Failed>;

/// A script in the network namespace at `netns` (a container's).
fn in_netns(netns: &str, script: &str) -> Result<String, Failed> {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["--", "sh", "-c", script])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{script}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A field of `network inspect NAME`.
fn network_field(lab: &Lab, name: &str, field: &str) -> Result<String, Failed> {
    let inspect = lab.ok(&["network", "inspect", name])?;
    let json: serde_json::Value = serde_json::from_str(&inspect).map_err(|e| e.to_string())?;
    Ok(json[0][field].as_str().unwrap_or_default().to_string())
}

/// IPv6 packets that reached `dev` (its `Ip6InReceives`, counted before
/// the kernel decides whether to take them), `None` without IPv6.
fn ipv6_received(shell: Shell, dev: &str) -> Option<u64> {
    let text = shell(&format!("cat /proc/net/dev_snmp6/{dev}")).ok()?;
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("Ip6InReceives"))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// What an accepted advertisement leaves on `dev`: an address of
/// 2001:db8:bad::/64, or a route the kernel learned from it (`proto ra`).
fn advertised(shell: Shell, dev: &str) -> Option<String> {
    let seen = shell(&format!(
        "ip -6 addr show dev {dev}; ip -6 route show dev {dev}"
    ))
    .ok()?;
    (seen.contains("2001:db8:bad") || seen.contains("proto ra")).then_some(seen)
}

/// CVE-2020-13401 (docker's): a container says "I am the router" to all
/// nodes of its network. Neither the host's bridge nor another container
/// may take it. As the runtime leaves things, the advertisements arrive
/// (each side's IPv6 counters count them) and leave nothing; the control
/// turns IPv6 and accept_ra back on for both, and the same probe then
/// gets its prefix and default route on both.
pub fn rogue_router_advertisement() -> Result<(), Failed> {
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        println!("no IPv6 in this kernel: no advertisement to refuse");
        return Ok(());
    }
    let lab = Lab::new("rogue-ra")?;
    probe_image(&lab)?;
    lab.ok(&["network", "create", "ra"])?;
    for name in ["attacker", "victim"] {
        lab.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "ra",
            "probe",
            "sleep",
            "300",
        ])?;
    }
    let bridge = network_field(&lab, "ra", "Bridge")?;
    let pid = lab.ok(&["inspect", "-f", "{{.State.Pid}}", "victim"])?;
    let victim_netns = format!("/proc/{}/ns/net", pid.trim());
    let host = |script: &str| lab.net.sh(script).map_err(|f| Failed::from(f.to_string()));
    let victim = |script: &str| in_netns(&victim_netns, script);
    let sides: [(&str, Shell, &str); 2] = [
        ("the host's bridge", &host, bridge.as_str()),
        ("another container", &victim, "eth0"),
    ];
    let attack = || -> Result<String, Failed> {
        lab.ok(&["exec", "attacker", "grader-probe", "--probe", "ra", "eth0"])
    };
    let mut problems = Vec::new();
    // As the runtime made them: the frames arrive, and are refused.
    let before: Vec<u64> = sides
        .iter()
        .map(|(_, shell, dev)| ipv6_received(*shell, dev).unwrap_or(0))
        .collect();
    let said = attack()?;
    if !said.contains("ra-packet: sent 3") {
        return Err(format!("the probe could not send its advertisements: {said}").into());
    }
    for ((what, shell, dev), before) in sides.iter().zip(&before) {
        let arrived = grader::poll(std::time::Duration::from_secs(30), || {
            ipv6_received(*shell, dev).filter(|n| *n >= before + 3)
        });
        if arrived.is_none() {
            problems.push(format!(
                "{what} ({dev}) never counted the 3 advertisements: nothing was tested"
            ));
        } else if let Some(seen) = advertised(*shell, dev) {
            problems.push(format!(
                "{what} ({dev}) took the rogue advertisement:\n{seen}"
            ));
        }
    }
    // The control: the doors the runtime closed, open again.
    host(&format!(
        "echo 0 > /proc/sys/net/ipv6/conf/{bridge}/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/{bridge}/accept_ra"
    ))?;
    victim(
        "echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/eth0/accept_ra",
    )?;
    attack()?;
    for (what, shell, dev) in &sides {
        let taken = grader::poll(std::time::Duration::from_secs(30), || {
            advertised(*shell, dev)
        });
        if taken.is_none() {
            problems.push(format!(
                "control: with IPv6 and accept_ra on again, {what} ({dev}) did not take the advertisement: the probe shows nothing"
            ));
        }
    }
    if problems.is_empty() {
        println!(
            "a rogue router advertisement ({}) reached the bridge and a container, and was refused; taken by both once the control opened the door",
            said.lines()
                .find(|l| l.starts_with("ra-inet6"))
                .unwrap_or("ra-inet6: ?")
        );
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// A listener in a lab (`udp-listen PORT`), started: its output, once it
/// has seen `genuine` (or given up).
struct Listener {
    child: std::process::Child,
}

impl Listener {
    fn start(mut command: Command, port: u16) -> Result<Listener, Failed> {
        use std::io::BufRead;
        let mut child = command
            .args(["--probe", "udp-listen", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut ready = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let _ = stdout.read_line(&mut ready);
        child.stdout = Some(stdout.into_inner());
        let listener = Listener { child };
        if !ready.contains("ready") {
            return Err(format!("the listener on {port} did not start: {ready:?}").into());
        }
        Ok(listener)
    }

    /// The sources of what arrived before `genuine`, and whether it came.
    fn heard(mut self) -> Result<(Vec<String>, bool), Failed> {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut text);
        }
        let mut forged = Vec::new();
        let mut genuine = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("got ") {
                if rest.ends_with(" genuine") {
                    genuine = true;
                } else {
                    forged.push(rest.to_string());
                }
            }
        }
        Ok((forged, genuine))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forged source addresses: a container on network `n1` sends UDP to its
/// gateway (the host) as 8.8.8.8 and as an address of network `n2`, and to
/// a machine beyond the host (a second lab linked to the first, the LAN)
/// as 8.8.8.8, where it would arrive un-NATed. Each time a datagram from
/// the container's own address follows on the same path: once it has
/// come, the forged ones before it were delivered or dropped, no waiting.
/// Three rounds: as the runtime leaves things, with the lab's reverse-path
/// filter loose for every interface (`all.rp_filter=2`, as systemd sets
/// it: the nft rule must hold by itself); without the nft rule and with
/// `all.rp_filter=0` (the bridge's own strict filter must hold by itself);
/// the control, with the bridge's filter off too, where the forged
/// datagrams arrive.
pub fn forged_sources() -> Result<(), Failed> {
    let lab = Lab::new("forged")?;
    let outside = grader::NetLab::new().map_err(|f| f.to_string())?;
    lab.net.link_outside(&outside).map_err(|f| f.to_string())?;
    outside
        .sh("echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/wan0/rp_filter")
        .map_err(|f| f.to_string())?;
    probe_image(&lab)?;
    lab.ok(&["network", "create", "n1"])?;
    lab.ok(&["network", "create", "n2"])?;
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "forger",
        "--network",
        "n1",
        "probe",
        "sleep",
        "300",
    ])?;
    let bridge = network_field(&lab, "n1", "Bridge")?;
    let gateway = network_field(&lab, "n1", "Gateway")?;
    // An address of the other network (its first container's).
    let other = network_field(&lab, "n2", "Gateway")?
        .parse::<std::net::Ipv4Addr>()
        .map(|g| std::net::Ipv4Addr::from(u32::from(g) + 1).to_string())
        .map_err(|e| e.to_string())?;
    let nft = lab.net.sh("command -v nft").is_ok();
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let me = me.to_string_lossy().into_owned();
    let sysctl = |path: &str, value: &str| {
        lab.net
            .sh(&format!(
                "echo {value} > /proc/sys/net/ipv4/conf/{path}/rp_filter"
            ))
            .map_err(|f| Failed::from(f.to_string()))
    };
    // One round: what arrived at the host and beyond it.
    let round = |what: &str| -> Result<(Vec<String>, Vec<String>), Failed> {
        let host = Listener::start(lab.net.command(&me, &[]), 9400)?;
        let beyond = Listener::start(outside.command(&me, &[]), 9401)?;
        for (dst, port, sources) in [
            (gateway.as_str(), "9400", vec!["8.8.8.8", other.as_str()]),
            ("192.0.2.2", "9401", vec!["8.8.8.8"]),
        ] {
            let mut args = vec![
                "exec",
                "forger",
                "grader-probe",
                "--probe",
                "spoof",
                dst,
                port,
            ];
            args.extend(sources);
            let said = lab.ok(&args)?;
            if said
                .lines()
                .any(|l| l.starts_with("forged") && !l.ends_with("sent"))
            {
                return Err(format!("{what}: the probe could not send: {said}").into());
            }
        }
        let (at_host, came) = host.heard()?;
        let (beyond_host, came_beyond) = beyond.heard()?;
        if !came || !came_beyond {
            return Err(format!(
                "{what}: the container's genuine datagram never came (host: {came}, beyond: {came_beyond}): nothing was tested"
            )
            .into());
        }
        Ok((at_host, beyond_host))
    };
    let mut problems = Vec::new();
    let mut report = |what: &str, (host, beyond): (Vec<String>, Vec<String>)| {
        if !host.is_empty() || !beyond.is_empty() {
            problems.push(format!(
                "{what}: forged datagrams arrived: at the host {host:?}, beyond it {beyond:?}"
            ));
        }
    };
    if nft {
        sysctl("all", "2")?;
        report("as shipped, all.rp_filter=2", round("as shipped")?);
    }
    if nft {
        // The rule's handle, then its deletion: the lab's table, ours.
        lab.net
            .sh(&format!(
                "nft -a list table ip minibox | awk '/chain [a-z]+ {{/ {{c=$2}} /iifname \"{bridge}\"/ && /saddr !=/ {{print c, $NF}}' \
                 | while read c h; do nft delete rule ip minibox \"$c\" handle \"$h\"; done"
            ))
            .map_err(|f| f.to_string())?;
    }
    sysctl("all", "0")?;
    report(
        "without the nft rule, the bridge's rp_filter alone",
        round("rp_filter alone")?,
    );
    sysctl(&bridge, "0")?;
    let (host, beyond) = round("control")?;
    if !host.iter().any(|h| h.starts_with("8.8.8.8"))
        || !host.iter().any(|h| h.starts_with(&other))
        || !beyond.iter().any(|h| h.starts_with("8.8.8.8"))
    {
        problems.push(format!(
            "control: with every filter off, the forged datagrams should arrive; host heard {host:?}, beyond {beyond:?}: the probe shows nothing"
        ));
    }
    if problems.is_empty() {
        println!(
            "forged sources (8.8.8.8, {other}) dropped at the bridge {}; the control heard {} at the host and {} beyond",
            if nft { "by the nft rule and by rp_filter, each alone" } else { "by rp_filter (no nft)" },
            host.len(),
            beyond.len()
        );
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The peak RSS (KiB) of one `minibox ARGS` in the lab, its own and its
/// reaped children's: wait4(2)'s rusage of that very process.
fn peak_rss(lab: &Lab, args: &[&str]) -> Result<i64, Failed> {
    let child = lab
        .net
        .command(MINIBOX, &["--root", &lab.root.to_string_lossy()])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: wait4 on our own child, into a zeroed rusage we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if waited < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("minibox {args:?}: status {status:#x}").into());
    }
    Ok(usage.ru_maxrss)
}

/// A container's `/etc/hosts` is its own to write: 32 MiB of it must not
/// become 32 MiB of the runtime's memory when the next container on its
/// network has the names files refreshed.
pub fn a_big_hosts_file_is_not_read_whole() -> Result<(), Failed> {
    let lab = Lab::new("big-hosts")?;
    lab.ok(&["network", "create", "names"])?;
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "big",
        "--network",
        "names",
        "base",
        "sleep",
        "300",
    ])?;
    let run = ["run", "--rm", "--network", "names", "base", "true"];
    let before = peak_rss(&lab, &run)?;
    lab.ok(&[
        "exec",
        "big",
        "sh",
        "-c",
        "head -c 33554432 /dev/zero >> /etc/hosts",
    ])?;
    let after = peak_rss(&lab, &run)?;
    let hosts = std::fs::read_to_string(
        lab.root
            .join("containers")
            .join(lab.ok(&["inspect", "-f", "{{.Id}}", "big"])?.trim())
            .join("hosts"),
    )
    .unwrap_or_default();
    let mut problems = Vec::new();
    if after > before + 8 * 1024 {
        problems.push(format!(
            "a run beside a 32 MiB /etc/hosts peaked at {after} KiB (before: {before} KiB)"
        ));
    }
    if hosts.len() > 4096 || !hosts.contains("big") {
        problems.push(format!(
            "the big hosts file was not rewritten: {} bytes",
            hosts.len()
        ));
    }
    if problems.is_empty() {
        println!("peak RSS of a run: {before} KiB, beside a 32 MiB /etc/hosts {after} KiB");
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// A network record changed by hand (a name or a bridge that would close
/// nft's quotes): refused where it is used, skipped with one warning where
/// networks are listed, removable; nothing of it reaches nft. And a name
/// that would share a file with another network's addresses is refused.
pub fn tampered_network_records() -> Result<(), Failed> {
    let lab = Lab::new("tampered")?;
    lab.ok(&["network", "create", "good"])?;
    let dir = lab.root.join("networks");
    let record = std::fs::read_to_string(dir.join("good.json")).map_err(|e| e.to_string())?;
    let mut json: serde_json::Value = serde_json::from_str(&record).map_err(|e| e.to_string())?;
    json["Subnet"] = "10.201.77.0/24".into();
    json["Gateway"] = "10.201.77.1".into();
    json["Id"] = "e".repeat(64).into();
    json["Bridge"] = "mbx-eeeeeeeeeee".into();
    let mut by_name = json.clone();
    by_name["Name"] = "evil\" ; add table ip pwned ; #".into();
    let mut by_bridge = json.clone();
    by_bridge["Name"] = "evil2".into();
    by_bridge["Bridge"] = "x\" } ; add table ip pwned ; #".into();
    for (file, value) in [("evil.json", &by_name), ("evil2.json", &by_bridge)] {
        std::fs::write(dir.join(file), value.to_string()).map_err(|e| e.to_string())?;
    }
    let mut problems = Vec::new();
    for network in ["evil", "evil2"] {
        let out = lab.run(&["run", "--rm", "--network", network, "base", "true"]);
        let err = String::from_utf8_lossy(&out.stderr);
        // A warning per damaged record (the sweep lists them all), then
        // the refusal.
        let refused = err.lines().last().unwrap_or_default();
        if out.status.code() != Some(125)
            || err.lines().any(|l| !l.starts_with("minibox: "))
            || !refused.starts_with(&format!("minibox: network {network}: "))
        {
            problems.push(format!(
                "run --network {network} (a tampered record): exit {:?}, {err:?}",
                out.status.code()
            ));
        }
    }
    let out = lab.run(&["network", "ls"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        || !listed.contains("good")
        || listed.contains("evil")
        || err.lines().count() != 2
        || err.lines().any(|l| !l.starts_with("minibox: "))
    {
        problems.push(format!(
            "network ls beside two tampered records: exit {:?}, {listed:?}, {err:?}",
            out.status.code()
        ));
    }
    if let Err(e) = lab.ok(&["run", "--rm", "--network", "good", "base", "true"]) {
        problems.push(format!("a run on the good network: {e:?}"));
    }
    if let Ok(tables) = lab.net.sh("nft list tables 2>/dev/null || true") {
        if tables.contains("pwned") {
            problems.push(format!("a record's text became nft commands: {tables}"));
        }
    }
    for network in ["evil", "evil2"] {
        if let Err(e) = lab.ok(&["network", "rm", network]) {
            problems.push(format!("network rm of a tampered record: {e:?}"));
        }
    }
    // NAME.ipam beside NAME: refused either way round, in one line.
    lab.ok(&["network", "create", "n3"])?;
    let out = lab.run(&["network", "create", "n3.ipam"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(125) || err.lines().count() != 1 {
        problems.push(format!(
            "network create n3.ipam beside n3: exit {:?}, {err:?}",
            out.status.code()
        ));
    }
    for args in [
        &["network", "ls"][..],
        &["ps"],
        &["network", "inspect", "n3"],
    ] {
        if let Err(e) = lab.ok(args) {
            problems.push(format!("{args:?} after n3.ipam: {e:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The store's lock files are opened without following links (a link
/// there would have root create or open a file where the link points), and
/// `networks/` is private as the store's other dirs.
pub fn store_links_and_modes() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new("store-links")?;
    lab.ok(&["run", "--rm", "base", "true"])?;
    let mut problems = Vec::new();
    let mode = std::fs::metadata(lab.root.join("networks"))
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0);
    if mode != 0o700 {
        problems.push(format!("networks/ is {mode:o} (expected 700)"));
    }
    let outside = lab.root.with_extension("outside");
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
    for lock in ["store.lock", "gc.lock", "containers.lock", "networks.lock"] {
        let path = lab.root.join(lock);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(outside.join(lock), &path).map_err(|e| e.to_string())?;
        for args in [
            &["run", "--rm", "base", "true"][..],
            &["network", "create", "x"],
            &["network", "rm", "x"],
        ] {
            let out = lab.run(args);
            let err = String::from_utf8_lossy(&out.stderr);
            if err.lines().any(|l| !l.starts_with("minibox: ")) {
                problems.push(format!("{args:?} with {lock} a link: {err:?}"));
            }
        }
        if outside.join(lock).exists() {
            problems.push(format!(
                "{lock} as a link: the runtime made the file it points to"
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&outside);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}
