//! Graded checks for step 05: bridge networking.
//!
//! Compiled into `lesson-05` and `solution-05`. Every check makes a lab of
//! its own, a network namespace that lasts the check (a NetLab), and runs
//! every command of the runtime inside it, with a fresh `--root`: the
//! bridges, veths, routes and nftables rules land in the lab and go with
//! it. Where egress is checked, a second namespace plays the outside world.
//! Containers run the grader's probe (imported as an image) to listen and
//! connect; the checks read links, addresses and routes from the kernel.
//! The first checks grade one exercise each: the grader calls the
//! learner's function itself (IPAM on a scratch store, the rtnetlink
//! requests with a socket of a lab, the rule texts loaded into a lab's own
//! table) and asks the kernel, nft or the files what came of it. The
//! checks whose points are nftables rules (the rule texts, ports, NAT) need
//! `nft` on PATH and are skipped without it; the others leave out only
//! their parts that need it (isolation, counting rules); and
//! `runs_without_nftables` hides it from the runtime, to check what a
//! machine without nftables gets.

use grader::process::Invocation;
use grader::todo::{panic_text, quiet_todo_panics};
use grader::{ensure, expect_eq, Check, Ctx, Fail, Lab, Needs, NetLab, Outcome, Requires};
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST};
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

fn main() {
    grader::main(
        grader::step!("05-bridge-net", Needs::Root),
        vec![
            // One exercise each: the grader calls the function itself.
            Check { name: "addresses_are_unique_under_a_lock", points: 3, section: "addresses-ipam",
                hint: "ipam::allocate gives the lowest free address of the subnet (never the network address, the broadcast or the gateway) and records it, all under the networks' lock: runs that start together must never share an address, and a full network is an error that changes nothing.",
                more: "Networks::lock (flock(2) on ROOT/networks.lock, held until the guard is dropped), Networks::allocations and Networks::save_allocations (a BTreeMap<Ipv4Addr, Allocation>, written whole: temp file + rename(2)); Subnet::parse, Subnet::nth, Subnet::size; the network's gateway is a string to parse into an Ipv4Addr; anyhow::bail! for a full network.",
                shape: "1. take the lock (keep the guard alive to the end)\n2. read the network's allocations\n3. parse the subnet and the gateway\n4. for n from 1 to size-2: the first nth(n) that is not the gateway and not a key of the map; none: fail naming the network\n5. insert address -> who, save the map whole, return the address",
                requires: Requires::Nothing, run: addresses_are_unique_under_a_lock },
            Check { name: "addresses_are_given_back", points: 2, section: "addresses-ipam",
                hint: "ipam::release frees every address a container has, on every network, under the same lock as allocate, and leaves everyone else's; a container with none is not an error.",
                more: "Networks::lock, Networks::all (every network record), Networks::allocations, BTreeMap::retain, Networks::save_allocations; an Allocation's id is the container's.",
                shape: "1. take the lock\n2. for each network: read its allocations, keep those whose id is not the container's\n3. if something went, save the map whole\n4. Ok",
                requires: Requires::Nothing, run: addresses_are_given_back },
            Check { name: "veth_peer_is_born_inside", points: 3, section: "rtnetlink-what-ip-says-to-the-kernel",
                hint: "plumbing::add_veth sends one RTM_NEWLINK that makes a veth pair: one end named here, the peer named and born in the network namespace of another process (IFLA_NET_NS_PID), never on the host; an existing name is an error.",
                more: "netlink_packet_route::link::{LinkMessage, LinkAttribute::IfName, LinkAttribute::NetNsPid, LinkAttribute::LinkInfo, LinkInfo::Kind, LinkInfo::Data, InfoKind::Veth, InfoData::Veth, InfoVeth::Peer}; RouteNetlinkMessage::NewLink; netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL}; Netlink::request sends it and waits for the ACK. Netlink::add_bridge is a worked example.",
                shape: "1. peer = an empty link message with attributes: its name, the pid's namespace\n2. message = an empty link message with attributes: the name, link info [kind veth, data veth peer(peer)]\n3. request(new link(message), create | exclusive), with the name in the error's context",
                requires: Requires::Nothing, run: veth_peer_is_born_inside },
            Check { name: "link_joins_a_bridge_and_goes_up", points: 2, section: "rtnetlink-what-ip-says-to-the-kernel",
                hint: "plumbing::set_up sends one RTM_SETLINK for an existing link, by index: it comes up (IFF_UP) and, when a bridge is given, becomes its port (IFLA_MASTER).",
                more: "LinkMessage's header: index, flags, change_mask (LinkFlags::Up); LinkAttribute::Controller(bridge index) is IFLA_MASTER; RouteNetlinkMessage::SetLink; no NLM_F_CREATE for a change.",
                shape: "1. an empty link message; header: index, flags = up, change mask = up\n2. if a master is given: push the controller attribute with its index\n3. request(set link(message), no extra flags)",
                requires: Requires::Nothing, run: link_joins_a_bridge_and_goes_up },
            Check { name: "address_on_a_link", points: 2, section: "rtnetlink-what-ip-says-to-the-kernel",
                hint: "plumbing::add_address sends one RTM_NEWADDR: the link gets ADDRESS/PREFIX (and the kernel adds the route to its subnet); the same address twice is an error.",
                more: "netlink_packet_route::address::{AddressMessage, AddressAttribute::Local, AddressAttribute::Address}; header: family (AddressFamily::Inet), prefix_len, index; RouteNetlinkMessage::NewAddress with NLM_F_CREATE | NLM_F_EXCL.",
                shape: "1. an empty address message; header: family inet, prefix length, link index\n2. attributes: local = the address, address = the address\n3. request(new address(message), create | exclusive), the address in the error's context",
                requires: Requires::Nothing, run: address_on_a_link },
            Check { name: "default_route_via_the_gateway", points: 2, section: "rtnetlink-what-ip-says-to-the-kernel",
                hint: "plumbing::add_default_route sends one RTM_NEWROUTE: in the main table, every destination (prefix length 0) goes via the gateway out of the link; the kernel refuses a gateway no link reaches, and that error is the function's.",
                more: "netlink_packet_route::route::{RouteMessage, RouteHeader::RT_TABLE_MAIN, RouteProtocol::Boot, RouteScope::Universe, RouteType::Unicast, RouteAttribute::Gateway, RouteAttribute::Oif, RouteAddress::Inet}; header.address_family = AddressFamily::Inet; RouteNetlinkMessage::NewRoute with NLM_F_CREATE | NLM_F_EXCL.",
                shape: "1. an empty route message; header: family inet, table main, protocol boot, scope universe, type unicast (destination prefix length stays 0)\n2. attributes: gateway, output link index\n3. request(new route(message), create | exclusive)",
                requires: Requires::Nothing, run: default_route_via_the_gateway },
            Check { name: "hosts_file_names_everyone", points: 2, section: "names-on-user-defined-networks",
                hint: "hosts::hosts_file is the whole /etc/hosts: localhost first, then the container itself, then every other container given, one line each: ADDRESS<tab>NAME SHORTID, each ending in a newline.",
                more: "String, format!, push_str; step04::state::short gives an id's first 12 characters; Ipv4Addr displays as a.b.c.d.",
                shape: "1. text = the localhost line\n2. a line for (address, me)\n3. for each (address, other): a line for it\n4. return text",
                requires: Requires::Nothing, run: hosts_file_names_everyone },
            Check { name: "egress_rule_masquerades", points: 2, section: "egress-and-nat",
                hint: "rules::masquerade is one postrouting rule: packets from the network's subnet that leave by another interface than its bridge are masqueraded; its comment is its key, net:NAME:BRIDGE:masq.",
                more: "nftables matches: ip saddr PREFIX, oifname != \"NAME\" (names are quoted strings), the masquerade statement, comment \"TEXT\" last; the Rule struct: chain and text (the text as `nft add rule ip minibox CHAIN TEXT` takes it).",
                shape: "1. chain: postrouting\n2. text: match the source subnet, match an output interface other than the bridge, masquerade, comment with the key",
                requires: Requires::Nftables, run: egress_rule_masquerades },
            Check { name: "isolation_rule_drops", points: 2, section: "isolation-between-networks",
                hint: "rules::isolation is one forward rule: what comes in by this network's bridge and would go out by another network's bridge (a member of the set @bridges) is dropped; key net:NAME:BRIDGE:isolate.",
                more: "nftables matches: iifname \"NAME\", oifname != \"NAME\", oifname @bridges (a set lookup), the drop verdict, comment \"TEXT\".",
                shape: "1. chain: forward\n2. text: match the input interface = the bridge, output interface != the bridge, output interface in @bridges, drop, comment with the key",
                requires: Requires::Nftables, run: isolation_rule_drops },
            Check { name: "published_port_rules_dnat", points: 2, section: "publishing-ports",
                hint: "rules::published_port is two rules, one in prerouting (from elsewhere) and one in output (from the host itself): TCP to port HOST of one of the host's own addresses goes to ADDRESS:INSIDE; keys ctr:ID:dnat:HOST:CHAIN.",
                more: "nftables: fib daddr type local (the destination is one of this host's addresses), tcp dport N, dnat to A.B.C.D:PORT, comment \"TEXT\"; one Rule per chain.",
                shape: "1. for chain in [prerouting, output]:\n2.   text: destination is local, tcp destination port = host, dnat to address:inside, comment ctr:ID:dnat:HOST:CHAIN\n3. collect the two rules",
                requires: Requires::Nftables, run: published_port_rules_dnat },
            // The runtime as a whole, on top of the given code.
            Check { name: "default_bridge_gives_eth0", points: 3, section: "bridges-and-veth-pairs",
                hint: "A container on the default network gets eth0 with an address of 10.200.0.0/16, lo up and a default route via the bridge: plumbing::plumb makes its veth and puts the host end on the bridge, plumbing::configure_inside sets it up from inside.",
                more: "plumb: your add_veth (peer eth0, the container's pid), Netlink::index of the host end, your set_up with the bridge. configure_inside: Netlink::index of eth0 and lo, your add_address, set_up and add_default_route, in an order the kernel accepts (ENETUNREACH: the route came before the address or the link was down).",
                shape: "plumb: 1. the veth pair, peer eth0 in the pid's namespace 2. the host end's index 3. host end up, on the bridge\nconfigure_inside: 1. eth0's index 2. its address 3. eth0 up 4. lo up 5. the default route via the gateway on eth0",
                requires: Requires::Nothing, run: default_bridge_gives_eth0 },
            Check { name: "default_bridge_by_ip_only", points: 2, section: "names-on-user-defined-networks",
                hint: "Containers on the default bridge reach each other by address; their /etc/hosts holds only localhost and themselves.",
                more: "The whole path: ipam::allocate, plumbing::plumb and configure_inside, hosts::hosts_file (called with no others on the default network).",
                shape: "1. run a server, read its address from inspect 2. a client connects to it by address: ok 3. by name: unknown host",
                requires: Requires::Nothing, run: default_bridge_by_ip_only },
            Check { name: "user_networks_resolve_names", points: 3, section: "names-on-user-defined-networks",
                hint: "On a user-defined network every container's /etc/hosts lists every other container of that network, rewritten in place when one joins or leaves; with nftables, another network's containers are dropped in the forward chain.",
                more: "hosts::hosts_file (the text), called for each container of the network by the given refresh; rules::isolation for the other network.",
                shape: "1. a server on n1 2. a client on n1 connects by name 3. a later container's name appears in the server's /etc/hosts, and goes when it is removed 4. a client on n2 reaches neither the address nor the name",
                requires: Requires::Nothing, run: user_networks_resolve_names },
            Check { name: "host_and_none", points: 2, section: "host-and-none",
                hint: "--network host: no CLONE_NEWNET, the host's namespace; --network none: a namespace of its own with only lo. A container on the default bridge has a namespace of its own with eth0 and lo.",
                more: "The bridge part runs your plumbing (plumb, configure_inside) and ipam::allocate; host and none are given.",
                shape: "1. on the bridge: its own netns, eth0 and lo 2. --network host: the lab's netns 3. --network none: only lo",
                requires: Requires::Nothing, run: host_and_none },
            Check { name: "published_port", points: 2, section: "publishing-ports",
                hint: "-p 8080:80 is a DNAT to the container's address and port, in prerouting and in output (for the host's own connections).",
                more: "rules::published_port's two rules, applied by the given firewall; the container's address comes from ipam::allocate.",
                shape: "1. a server in a container with -p 8080:80 2. a client in the lab connects to 10.200.0.1:8080 and talks to it",
                requires: Requires::Nftables, run: published_port },
            Check { name: "egress_is_masqueraded", points: 2, section: "egress-and-nat",
                hint: "ip_forward on, and a masquerade rule for the network's subnet leaving by another interface than its bridge: the outside sees the host's address; a published port's DNAT matches only the host's own addresses.",
                more: "rules::masquerade, and fib daddr type local in rules::published_port.",
                shape: "1. an outside server, a container publishing port 9000 2. the container connects to the outside's port 9000 3. the outside sees the lab's address",
                requires: Requires::Nftables, run: egress_is_masqueraded },
            Check { name: "inspect_matches_the_kernel", points: 2, section: "what-inspect-shows",
                hint: "NetworkSettings.Networks.<name>: NetworkID, Gateway, IPAddress, IPPrefixLen and MacAddress, read from what the container really has.",
                more: "The address from ipam::allocate must be the one configure_inside gives eth0, with the subnet's prefix length, and the route via the network's gateway.",
                shape: "1. a container on a user network 2. inspect's values 3. the kernel's (ip addr, /sys/class/net/eth0/address, ip route) inside: equal",
                requires: Requires::Nothing, run: inspect_matches_the_kernel },
            Check { name: "parallel_runs_get_distinct_addresses", points: 3, section: "addresses-ipam",
                hint: "20 runs at once on one network: 20 distinct addresses, each really on its container's eth0; all of them free again after rm, and the first given anew.",
                more: "ipam::allocate and ipam::release under Networks::lock; with nftables, the network's rules are added once (the given firewall, your rules' keys).",
                shape: "1. 20 parallel run -d 2. 20 distinct addresses, each answering in the lab 3. rm -f all: the network holds none 4. a run while the lock is held waits 5. the next run gets the first address",
                requires: Requires::Nothing, run: parallel_runs_get_distinct_addresses },
            Check { name: "nothing_is_left", points: 2, section: "cleaning-up",
                hint: "rm gives the address back and removes the container's veth and rules; network rm removes the bridge and its rules; a runtime killed mid-way is swept by the next command.",
                more: "ipam::release frees the address; the rules are found by their keys' prefixes (ctr:ID:, net:NAME:BRIDGE:), so every rule text must end in its key.",
                shape: "1. run with -p, hold its netns, rm: no veth left 2. network rm: no link, rule or set element left 3. SIGKILL a run: the next command frees its address and veth",
                requires: Requires::Nothing, run: nothing_is_left },
            Check { name: "bad_network_input_is_one_line", points: 2, section: "the-exercise",
                hint: "An unknown network, a bad or overlapping subnet, a network in use, a taken port, a duplicate name: one line, exit 125, nothing made.",
                more: "The given CLI checks the input; a port already published is found by its rule's key (ctr:ID:dnat:HOST:prerouting), so rules::published_port's keys matter.",
                shape: "1. a network in use, a container publishing 8090 2. each bad command: exit 125, one line naming the problem 3. the networks' files unchanged",
                requires: Requires::Nothing, run: bad_network_input_is_one_line },
            Check { name: "runs_without_nftables", points: 2, section: "nftables",
                hint: "With no nft on PATH, a run on the default bridge still gets its eth0 (the rules are skipped, with one warning line); -p is refused in one line, before anything is made.",
                more: "Your parts on this path: ipam::allocate, plumbing (plumb, configure_inside and the requests), hosts::hosts_file; the firewall's skipping is given.",
                shape: "1. run with PATH empty: exit 0, eth0 in 10.200.0.0/16, one warning line 2. -p without nft: exit 125, one line, no container left",
                requires: Requires::Nothing, run: runs_without_nftables },
        ],
    );
}

/// What this step's checks do in the grader's lab (`Lab::new`: a lab
/// network namespace shared by the check's runs, and a store).
trait Bridge {
    fn minibox_without_nft(&self, args: &[&str]) -> Result<Invocation, Fail>;
    fn ok(&self, args: &[&str], why: &str) -> Result<String, Fail>;
    fn probe_image(&self) -> Result<(), Fail>;
    fn address_on(&self, container: &str, network: &str) -> Result<String, Fail>;
    fn server(&self, name: &str, extra: &[&str], port: &str) -> Result<(), Fail>;
    fn connect(&self, extra: &[&str], host: &str, port: &str) -> Result<String, Fail>;
}

impl Bridge for Lab<'_> {
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
        let shown = format!("PATH=(an empty dir) minibox {}", args.join(" "));
        Ok(self.place(self.ctx.minibox_at(Path::new(env), &full).shown_as(shown)))
    }

    fn ok(&self, args: &[&str], why: &str) -> Result<String, Fail> {
        let out = self.minibox(args).output()?;
        out.expect_code(0, why)?;
        Ok(out.stdout_text())
    }

    /// An image holding the grader's probe (`/usr/bin/grader-probe`).
    fn probe_image(&self) -> Result<(), Fail> {
        self.import_probe()
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
    let on = lab.net().sh("ip -o link show master minibox0 up")?;
    if !(on.lines().count() == 1 && on.contains("mbx")) {
        // What there is instead: every veth and bridge of the lab.
        let links = lab
            .net()
            .sh("ip -o link show type veth; ip -o link show type bridge")?;
        return Err(
            Fail::new("while a container runs, its host-side veth is on minibox0, up (ip -o link show master minibox0 up)")
                .expected("one mbx... link, master minibox0, state UP")
                .seen(format!(
                    "{}; the lab's veths and bridges:\n{}",
                    if on.trim().is_empty() { "none" } else { on.trim() },
                    links.trim()
                )),
        );
    }
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
    let bridge = lab.net().sh("ip -o -4 addr show dev minibox0")?;
    ensure(bridge.contains("10.200.0.1/16"), || {
        Fail::new("the lab (the host) should have the bridge minibox0 with 10.200.0.1/16")
            .seen(bridge.clone())
    })?;
    // The kernel removes the pair when the container's network namespace
    // ends, a few milliseconds after its last process: waited for.
    let mut left = String::new();
    grader::poll(grader::process::TIMEOUT, || {
        left = lab.net().sh("ip -o link show master minibox0").ok()?;
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
    if nft_here() {
        // Isolation is an nftables rule: without nft, networks are joined
        // by the host's routing (the runtime warns of it).
        let other = lab.connect(&["--network", "n2"], &ip, "80")?;
        ensure(!other.starts_with("ok"), || {
            Fail::new("a container of another network must not reach it").seen(&other)
        })?;
    }
    let by_name = lab.connect(&["--network", "n2"], "srv", "80")?;
    expect_eq("nor know its name", "unknown-host", by_name.as_str())
}

fn host_and_none(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let lab_ns = grader::procfs::namespace(lab.net().pid, "net").unwrap_or_default();
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
        .net()
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
    lab.net().link_outside(&outside)?;
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
    let nat = lab.net().sh("nft list chain ip minibox postrouting")?;
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
    if nft_here() {
        let rules = lab
            .net()
            .sh("nft list ruleset | grep -c 'comment \"net:many:' || true")?;
        expect_eq(
            "20 parallel first runs: the network's 3 rules (masq, isolate, sources), once",
            "3",
            rules.trim(),
        )?;
    }
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
            .net()
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
    let nft = nft_here();
    let mut args = vec!["run", "-d", "--network", "tmpnet", "--name", "one"];
    if nft {
        args.extend(["-p", "8081:80"]);
    }
    args.extend(["base", "sleep", "1000"]);
    lab.ok(&args, "run -d")?;
    let pid = lab.inspect("one")?["State"]["Pid"].as_i64().unwrap_or(0);
    // Hold its network namespace: the kernel keeps the veth; rm must delete it.
    let held = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| Fail::new("the grader could not hold the container's netns").seen(e))?;
    lab.ok(&["rm", "-f", "one"], "rm -f")?;
    let veths = lab.net().sh("ip -o link show type veth")?;
    drop(held);
    expect_eq(
        "rm deletes the host-side veth (even if its netns lives on)",
        "",
        veths.trim(),
    )?;
    lab.ok(&["network", "rm", "tmpnet"], "network rm")?;
    // Read with netlink (ip), not /sys: the lab's /sys is still the host's.
    let links = lab
        .net()
        .sh("ip -o link show | cut -d: -f2 | cut -d@ -f1")?;
    let ours: Vec<&str> = links.split_whitespace().filter(|l| *l != "lo").collect();
    expect_eq(
        "after rm and network rm: no veth or bridge of ours left in the lab",
        Vec::<&str>::new(),
        ours,
    )?;
    if nft {
        let rules = lab
            .net()
            .sh("nft list ruleset | grep -c 'comment' || true")?;
        expect_eq("and no nftables rule of ours", "0", rules.trim())?;
        let set = lab
            .net()
            .sh("nft list set ip minibox bridges 2>/dev/null || true")?;
        ensure(!set.contains("mbx-"), || {
            Fail::new("network rm takes its bridge out of the isolation set").seen(&set)
        })?;
    }
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
    let veths = lab.net().sh("ip -o link show type veth")?;
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
    let nft = nft_here();
    let mut args = vec!["run", "-d", "--network", "used", "--name", "holder"];
    if nft {
        args.extend(["-p", "8090:80"]);
    }
    args.extend(["base", "sleep", "1000"]);
    lab.ok(&args, "run -d")?;
    let before = networks_state(&lab.root());
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
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
        (vec!["run", "--rm", "-p", "80", "base", "true"], "-p"),
        (vec!["network", "create", "used"], "already exists"),
    ];
    if nft {
        // A port another container publishes (without nft, -p is refused
        // for that alone: runs_without_nftables checks it).
        cases.push((vec!["run", "--rm", "-p", "8090:80", "base", "true"], "8090"));
    }
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

// ---------------------------------------------------------------------------
// Checks of one exercise each: the grader calls the learner's function
// itself (on a thread of its own, in a lab's network namespace where it
// makes links), then asks the kernel, nft or the files what it did.

/// Whether the runtime and the grader find `nft` (parts of a check that
/// need its rules are left out without it; the rules' own checks are
/// skipped).
fn nft_here() -> bool {
    grader::preflight::nftables().is_ok()
}

/// A Fail for a learner function that panicked.
fn panicked(what: &str, text: String) -> Fail {
    match text.strip_prefix("not yet implemented") {
        Some(rest) => Fail::new(format!(
            "{what}: not written yet: {}",
            rest.trim_start_matches(':').trim()
        )),
        None => Fail::new(format!("{what} panicked")).seen(text),
    }
}

/// Run `work` (the learner's code) on a thread of its own, in the network
/// namespace at `netns` when given (setns(2) moves only the calling
/// thread, and the thread ends with the work): its result, or a Fail if
/// it panicked.
fn on_thread<T: Send + 'static>(
    what: &str,
    netns: Option<String>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fail> {
    quiet_todo_panics();
    let joined = std::thread::spawn(move || {
        if let Some(path) = netns {
            let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
        }
        Ok::<T, String>(work())
    })
    .join();
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(why)) => Err(Fail::new("the grader could not enter its lab").seen(why)),
        Err(payload) => Err(panicked(what, panic_text(payload.as_ref()))),
    }
}

/// A netlink socket in the lab, for the learner's requests.
fn lab_socket() -> Result<step05::netlink::Netlink, String> {
    step05::netlink::Netlink::open().map_err(|e| format!("{e:#}"))
}

/// Run the learner's `request` with a socket of the lab `net`, after
/// looking up the indexes of `names` there.
fn in_lab_with<T: Send + 'static>(
    net: &NetLab,
    what: &str,
    names: &[&str],
    request: impl FnOnce(&mut step05::netlink::Netlink, &[u32]) -> anyhow::Result<T> + Send + 'static,
) -> Result<Result<T, String>, Fail> {
    Ok(in_lab_sent(net, what, names, request)?.0)
}

/// [`in_lab_with`], and the requests the function sent (type and flags).
fn in_lab_sent<T: Send + 'static>(
    net: &NetLab,
    what: &str,
    names: &[&str],
    request: impl FnOnce(&mut step05::netlink::Netlink, &[u32]) -> anyhow::Result<T> + Send + 'static,
) -> Result<(Result<T, String>, Vec<step05::netlink::Sent>), Fail> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let setup = on_thread(what, Some(net.netns()), move || {
        let mut netlink = lab_socket()?;
        let mut indexes = Vec::new();
        for name in &names {
            indexes.push(netlink.index(name).map_err(|e| format!("{e:#}"))?);
        }
        Ok::<_, String>((netlink, indexes))
    })?;
    let (mut netlink, indexes) = match setup {
        Ok(found) => found,
        Err(why) => return Err(Fail::new("the grader could not look at its lab").seen(why)),
    };
    // The socket stays in the lab's namespace, wherever it is used from.
    on_thread(what, None, move || {
        let before = netlink.sent().len();
        let result = request(&mut netlink, &indexes).map_err(|e| format!("{e:#}"));
        (result, netlink.sent()[before..].to_vec())
    })
}

// Message types of <linux/rtnetlink.h>, as the kernel numbers them.
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

/// A message type's name, as `strace` prints it.
fn type_name(message_type: u16) -> String {
    match message_type {
        RTM_NEWLINK => "RTM_NEWLINK".to_string(),
        RTM_NEWADDR => "RTM_NEWADDR".to_string(),
        RTM_NEWROUTE => "RTM_NEWROUTE".to_string(),
        other => format!("message type {other}"),
    }
}

/// Names of a request's header flags, as `strace` prints them.
fn flag_names(flags: u16) -> String {
    let known = [
        (NLM_F_REQUEST, "NLM_F_REQUEST"),
        (NLM_F_ACK, "NLM_F_ACK"),
        (NLM_F_REPLACE, "NLM_F_REPLACE"),
        (NLM_F_EXCL, "NLM_F_EXCL"),
        (NLM_F_CREATE, "NLM_F_CREATE"),
    ];
    let mut names: Vec<String> = known
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| name.to_string())
        .collect();
    let rest = known.iter().fold(flags, |left, (bit, _)| left & !bit);
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join("|")
}

/// The function sent exactly one request of `message_type` (`name`), and
/// its flags are `flags` (beside REQUEST and ACK): what `shell` sends.
fn sent_as(
    sent: &[step05::netlink::Sent],
    message_type: u16,
    name: &str,
    flags: u16,
    shell: &str,
) -> Outcome {
    let wanted = flags | NLM_F_REQUEST | NLM_F_ACK;
    let seen: Vec<String> = sent
        .iter()
        .map(|s| format!("{} {}", type_name(s.message_type), flag_names(s.flags)))
        .collect();
    let ours: Vec<_> = sent
        .iter()
        .filter(|s| s.message_type == message_type)
        .collect();
    ensure(ours.len() == 1 && ours[0].flags == wanted, || {
        Fail::new(format!(
            "one {name} request, with the flags `{shell}` sends (strace -e trace=sendmsg {shell} ...)"
        ))
        .expected(format!("{name} {}", flag_names(wanted)))
        .seen(if seen.is_empty() { "no request".to_string() } else { seen.join("; ") })
    })
}

/// `ip -o link show NAME` in a lab, or "" when there is none.
fn link_line(net: &NetLab, name: &str) -> Result<String, Fail> {
    Ok(net
        .sh(&format!(
            "ip -d -o link show dev {name} 2>/dev/null || true"
        ))?
        .trim()
        .to_string())
}

/// The flags of an `ip -o link` line: `<BROADCAST,MULTICAST,UP,LOWER_UP>`.
fn link_flags(line: &str) -> Vec<String> {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(flags, _)| flags.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn veth_peer_is_born_inside(_ctx: &Ctx) -> Outcome {
    let host = NetLab::new()?;
    let container = NetLab::new()?;
    let pid = container.pid;
    let (made, sent) = in_lab_sent(&host, "plumbing::add_veth", &[], move |netlink, _| {
        step05::plumbing::add_veth(netlink, "mbxcheck0", "eth0", pid)
    })?;
    if let Err(why) = made {
        return Err(Fail::new(
            "add_veth(host end \"mbxcheck0\", peer \"eth0\", the pid of a process in another network namespace) should succeed",
        )
        .seen(why));
    }
    let here = link_line(&host, "mbxcheck0")?;
    ensure(here.contains("veth"), || {
        Fail::new(
            "the host end is a veth, in the socket's namespace (ip -d link show dev mbxcheck0)",
        )
        .expected("mbxcheck0@ifN: ... veth ...")
        .seen(if here.is_empty() {
            "no such link"
        } else {
            here.as_str()
        })
    })?;
    let there = link_line(&container, "eth0")?;
    ensure(there.contains("veth"), || {
        Fail::new("the peer, eth0, is a veth in the namespace of the given pid (ip -d link show dev eth0 there)")
            .seen(if there.is_empty() { "no eth0 there" } else { there.as_str() })
    })?;
    let stray = link_line(&host, "eth0")?;
    ensure(stray.is_empty(), || {
        Fail::new("the peer is born in the other namespace: no eth0 in the socket's own")
            .seen(&stray)
    })?;
    // The two are each other's peer: mbxcheck0@ifN, where N is eth0's index there.
    let index = there.split(':').next().unwrap_or("").trim().to_string();
    ensure(here.contains(&format!("mbxcheck0@if{index}:")), || {
        Fail::new("mbxcheck0 and eth0 are the two ends of one pair (mbxcheck0@ifN, N being eth0's index in the other namespace)")
            .expected(format!("mbxcheck0@if{index}: ..."))
            .seen(&here)
    })?;
    let again = in_lab_with(&host, "plumbing::add_veth", &[], move |netlink, _| {
        step05::plumbing::add_veth(netlink, "mbxcheck0", "eth1", pid)
    })?;
    ensure(again.is_err(), || {
        Fail::new("a second add_veth with a name that exists fails (ip link add: File exists)")
            .seen("it succeeded")
    })?;
    let extra = link_line(&container, "eth1")?;
    ensure(extra.is_empty(), || {
        Fail::new("a failed add_veth makes nothing").seen(&extra)
    })?;
    sent_as(
        &sent,
        RTM_NEWLINK,
        "RTM_NEWLINK",
        NLM_F_CREATE | NLM_F_EXCL,
        "ip link add",
    )
}

fn link_joins_a_bridge_and_goes_up(_ctx: &Ctx) -> Outcome {
    let lab = NetLab::new()?;
    lab.sh("ip link add brcheck type bridge && ip link add vcheck0 type veth peer name vcheck1")?;
    let done = in_lab_with(
        &lab,
        "plumbing::set_up",
        &["vcheck0", "brcheck", "vcheck1"],
        |netlink, index| {
            step05::plumbing::set_up(netlink, index[0], Some(index[1]))?;
            step05::plumbing::set_up(netlink, index[1], None)?;
            step05::plumbing::set_up(netlink, index[2], None)
        },
    )?;
    if let Err(why) = done {
        return Err(Fail::new(
            "set_up of an existing link, with a bridge and without, should succeed",
        )
        .seen(why));
    }
    let port = link_line(&lab, "vcheck0")?;
    ensure(
        port.contains("master brcheck") && link_flags(&port).contains(&"UP".to_string()),
        || {
            Fail::new(
                "set_up(the link, Some(the bridge)): the link is a port of the bridge, and up",
            )
            .expected("vcheck0@vcheck1: <...,UP,...> ... master brcheck ...")
            .seen(&port)
        },
    )?;
    let bridge = link_line(&lab, "brcheck")?;
    ensure(link_flags(&bridge).contains(&"UP".to_string()), || {
        Fail::new("set_up(the bridge, None): the bridge is up").seen(&bridge)
    })?;
    let other = link_line(&lab, "vcheck1")?;
    ensure(
        link_flags(&other).contains(&"UP".to_string()) && !other.contains("master"),
        || Fail::new("set_up(a link, None): the link is up and joins no bridge").seen(&other),
    )
}

fn address_on_a_link(_ctx: &Ctx) -> Outcome {
    let lab = NetLab::new()?;
    lab.sh("ip link add acheck0 type veth peer name acheck1 && ip link set acheck1 up && ip link set acheck0 up")?;
    let (done, sent) = in_lab_sent(
        &lab,
        "plumbing::add_address",
        &["acheck0"],
        |netlink, index| step05::plumbing::add_address(netlink, index[0], "10.77.3.5".parse()?, 22),
    )?;
    if let Err(why) = done {
        return Err(Fail::new("add_address(a link, 10.77.3.5, 22) should succeed").seen(why));
    }
    let shown = lab.sh("ip -4 -o addr show dev acheck0")?;
    let words: Vec<&str> = shown.split_whitespace().collect();
    ensure(words.get(3) == Some(&"10.77.3.5/22"), || {
        Fail::new(
            "the link has the address with its prefix length (ip -4 -o addr show dev acheck0)",
        )
        .expected("... inet 10.77.3.5/22 brd 10.77.3.255 ...")
        .seen(shown.trim())
    })?;
    let routes = lab.sh("ip -4 route show dev acheck0")?;
    ensure(routes.contains("10.77.0.0/22"), || {
        Fail::new("and so the kernel routes its subnet on the link (ip route show dev acheck0)")
            .expected("10.77.0.0/22 proto kernel scope link src 10.77.3.5")
            .seen(routes.trim())
    })?;
    let again = in_lab_with(
        &lab,
        "plumbing::add_address",
        &["acheck0"],
        |netlink, index| step05::plumbing::add_address(netlink, index[0], "10.77.3.5".parse()?, 22),
    )?;
    ensure(again.is_err(), || {
        Fail::new("adding the same address again fails (ip addr add: File exists)")
            .seen("it succeeded")
    })?;
    // IPv4 forgives a missing NLM_F_CREATE or NLM_F_EXCL here (an address
    // that exists is EEXIST anyway); the request still says what it means.
    sent_as(
        &sent,
        RTM_NEWADDR,
        "RTM_NEWADDR",
        NLM_F_CREATE | NLM_F_EXCL,
        "ip address add",
    )
}

fn default_route_via_the_gateway(_ctx: &Ctx) -> Outcome {
    let lab = NetLab::new()?;
    lab.sh("ip link add rcheck0 type veth peer name rcheck1 && ip addr add 10.78.0.2/24 dev rcheck0 && ip link set rcheck1 up && ip link set rcheck0 up")?;
    let (done, sent) = in_lab_sent(
        &lab,
        "plumbing::add_default_route",
        &["rcheck0"],
        |netlink, index| {
            step05::plumbing::add_default_route(netlink, index[0], "10.78.0.1".parse()?)
        },
    )?;
    if let Err(why) = done {
        return Err(Fail::new(
            "add_default_route(a link with 10.78.0.2/24, 10.78.0.1) should succeed",
        )
        .seen(why));
    }
    let routes = lab.sh("ip -4 route show table main default")?;
    ensure(
        routes.trim() == "default via 10.78.0.1 dev rcheck0"
            || routes
                .trim()
                .starts_with("default via 10.78.0.1 dev rcheck0 "),
        || {
            Fail::new("the main table has a default route via the gateway, out of the link (ip route show default)")
                .expected("default via 10.78.0.1 dev rcheck0")
                .seen(if routes.trim().is_empty() { "no default route" } else { routes.trim() })
        },
    )?;
    let unreachable = in_lab_with(
        &lab,
        "plumbing::add_default_route",
        &["rcheck0"],
        |netlink, index| {
            step05::plumbing::add_default_route(netlink, index[0], "10.79.0.1".parse()?)
        },
    )?;
    ensure(unreachable.is_err(), || {
        Fail::new("a second default route, or one via a gateway no link reaches, is refused by the kernel: its error is add_default_route's")
            .seen("it succeeded")
    })?;
    sent_as(
        &sent,
        RTM_NEWROUTE,
        "RTM_NEWROUTE",
        NLM_F_CREATE | NLM_F_EXCL,
        "ip route add",
    )
}

/// A network record and its (empty) allocations under `root`, as
/// `network create` would leave them.
fn ipam_network(
    root: &Path,
    name: &str,
    subnet: &str,
    gateway: &str,
) -> Result<step05::networks::Network, Fail> {
    let network = step05::networks::Network {
        name: name.to_string(),
        id: format!("{name:0>64}"),
        created: "2026-01-01T00:00:00Z".to_string(),
        driver: "bridge".to_string(),
        subnet: subnet.to_string(),
        gateway: gateway.to_string(),
        bridge: format!("br-{name}"),
    };
    let dir = root.join("networks");
    std::fs::create_dir_all(&dir)
        .and_then(|_| {
            std::fs::write(
                dir.join(format!("{name}.json")),
                serde_json::to_vec(&network).unwrap_or_default(),
            )
        })
        .map_err(|e| Fail::new("the grader could not write a network record").seen(e))?;
    Ok(network)
}

fn who(name: &str) -> step05::networks::Allocation {
    step05::networks::Allocation {
        id: format!("{name:x>64}"),
        name: name.to_string(),
    }
}

fn allocations(root: &Path, network: &str) -> Result<Vec<(String, String)>, Fail> {
    let networks = step05::networks::Networks::new(root)
        .map_err(|e| Fail::new("the grader could not open the networks").seen(format!("{e:#}")))?;
    let all = networks.allocations(network).map_err(|e| {
        Fail::new(format!("{network}.ipam.json should be readable")).seen(format!("{e:#}"))
    })?;
    Ok(all
        .into_iter()
        .map(|(a, w)| (a.to_string(), w.name))
        .collect())
}

/// Hold `ROOT/networks.lock` as another run would.
fn hold_lock(root: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, Fail> {
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("networks.lock"))
        .map_err(|e| Fail::new("the grader could not open the lock").seen(e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Fail::new("the grader could not take the lock").seen(e))
}

fn addresses_are_unique_under_a_lock(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let root = dir.path().join("root");
    // A /27: 32 addresses; .0 names the network, .31 is the broadcast, and
    // the gateway is .9 (not the usual .1): 29 are free.
    let network = ipam_network(&root, "ipam", "10.9.0.0/27", "10.9.0.9")?;
    // While another run holds the lock, nothing is allocated.
    let held = hold_lock(&root)?;
    let (tx, rx) = std::sync::mpsc::channel();
    quiet_todo_panics();
    let waiting = {
        let (root, network) = (root.clone(), network.clone());
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let networks = step05::networks::Networks::new(&root)?;
                step05::ipam::allocate(&networks, &network, who("first"))
            }));
            let _ = tx.send(());
            result
        })
    };
    let early = rx.recv_timeout(Duration::from_millis(500)).is_ok();
    let during = allocations(&root, "ipam")?;
    drop(held);
    let first = match waiting.join().unwrap_or_else(Err) {
        Ok(Ok(address)) => address.to_string(),
        Ok(Err(e)) => {
            return Err(
                Fail::new("allocate on an empty network should succeed").seen(format!("{e:#}"))
            )
        }
        Err(payload) => return Err(panicked("ipam::allocate", panic_text(payload.as_ref()))),
    };
    ensure(!early && during.is_empty(), || {
        Fail::new("allocate waits for the networks' lock (ROOT/networks.lock) held by another run")
            .expected("no allocation until the lock is let go")
            .seen(format!(
                "returned early: {early}; allocations meanwhile: {during:?}"
            ))
    })?;
    expect_eq(
        "the first address is the lowest that is neither the network's (10.9.0.0) nor the gateway (10.9.0.9)",
        "10.9.0.1",
        first.as_str(),
    )?;
    // 30 at once for the 28 left: 28 distinct addresses, 2 refusals.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(30));
    let threads: Vec<_> = (0..30)
        .map(|n| {
            let (root, network, barrier) = (root.clone(), network.clone(), barrier.clone());
            std::thread::spawn(move || {
                let networks =
                    step05::networks::Networks::new(&root).map_err(|e| format!("{e:#}"))?;
                barrier.wait();
                step05::ipam::allocate(&networks, &network, who(&format!("p{n}")))
                    .map(|a| (n, a.to_string()))
                    .map_err(|e| format!("{e:#}"))
            })
        })
        .collect();
    let mut given = vec![("first".to_string(), first)];
    let mut refused = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(Ok((n, address))) => given.push((format!("p{n}"), address)),
            Ok(Err(why)) => refused.push(why),
            Err(payload) => return Err(panicked("ipam::allocate", panic_text(payload.as_ref()))),
        }
    }
    let mut addresses: Vec<String> = given.iter().map(|(_, a)| a.clone()).collect();
    addresses.sort_by_key(|a| a.parse::<std::net::Ipv4Addr>().ok());
    let expected: Vec<String> = (1..31)
        .filter(|n| *n != 9)
        .map(|n| format!("10.9.0.{n}"))
        .collect();
    if addresses != expected {
        // The failures are half the story: show them beside the addresses.
        let mut failures: Vec<&String> = refused.iter().collect();
        failures.dedup();
        return Err(Fail::new(
            "30 parallel allocations on the 28 addresses left: each free address once (never the network, the gateway or the broadcast)",
        )
        .expected(format!("{expected:?}"))
        .seen(format!(
            "{addresses:?}; {} allocation(s) failed: {failures:?}",
            refused.len()
        )));
    }
    ensure(
        refused.len() == 2 && refused.iter().all(|r| r.contains("ipam")),
        || {
            Fail::new("the 2 allocations too many fail, saying which network is full")
                .seen(format!("{refused:?}"))
        },
    )?;
    let mut recorded = allocations(&root, "ipam")?;
    recorded.sort();
    let mut expected: Vec<(String, String)> =
        given.iter().map(|(w, a)| (a.clone(), w.clone())).collect();
    expected.sort();
    expect_eq(
        "ipam.json records every address with who has it, and nothing for the refused",
        expected,
        recorded,
    )
}

fn addresses_are_given_back(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let root = dir.path().join("root");
    ipam_network(&root, "a", "10.9.1.0/24", "10.9.1.1")?;
    ipam_network(&root, "b", "10.9.2.0/24", "10.9.2.1")?;
    let networks = step05::networks::Networks::new(&root)
        .map_err(|e| Fail::new("networks").seen(format!("{e:#}")))?;
    let save = |name: &str, entries: &[(&str, &str)]| {
        let map = entries
            .iter()
            .map(|(address, name)| (address.parse().expect("an address"), who(name)))
            .collect();
        networks
            .save_allocations(name, &map)
            .map_err(|e| Fail::new("the grader could not write allocations").seen(format!("{e:#}")))
    };
    save(
        "a",
        &[
            ("10.9.1.2", "gone"),
            ("10.9.1.3", "stays"),
            ("10.9.1.4", "gone"),
        ],
    )?;
    save("b", &[("10.9.2.2", "gone"), ("10.9.2.3", "other")])?;
    let held = hold_lock(&root)?;
    quiet_todo_panics();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = {
        let root = root.clone();
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let networks = step05::networks::Networks::new(&root)?;
                step05::ipam::release(&networks, &who("gone").id)
            }));
            let _ = tx.send(());
            result
        })
    };
    let early = rx.recv_timeout(Duration::from_millis(500)).is_ok();
    let during = allocations(&root, "a")?.len() + allocations(&root, "b")?.len();
    drop(held);
    match waiting.join().unwrap_or_else(Err) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Fail::new("release should succeed").seen(format!("{e:#}"))),
        Err(payload) => return Err(panicked("ipam::release", panic_text(payload.as_ref()))),
    }
    ensure(!early && during == 5, || {
        Fail::new("release waits for the networks' lock (ROOT/networks.lock) held by another run")
            .seen(format!(
                "returned early: {early}; allocations meanwhile: {during} of 5"
            ))
    })?;
    let pair = |a: &str, w: &str| (a.to_string(), w.to_string());
    expect_eq(
        "release(a container): its addresses on network a are free, the others' kept",
        vec![pair("10.9.1.3", "stays")],
        allocations(&root, "a")?,
    )?;
    expect_eq(
        "and on every other network too",
        vec![pair("10.9.2.3", "other")],
        allocations(&root, "b")?,
    )?;
    let nobody = on_thread("ipam::release", None, {
        let root = root.clone();
        move || {
            let networks = step05::networks::Networks::new(&root)?;
            step05::ipam::release(&networks, &who("nobody").id)
        }
    })?;
    ensure(nobody.is_ok(), || {
        Fail::new("releasing a container that has no address is not an error")
            .seen(format!("{:#}", nobody.as_ref().expect_err("an error")))
    })?;
    expect_eq(
        "and changes nothing",
        vec![pair("10.9.1.3", "stays")],
        allocations(&root, "a")?,
    )
}

fn hosts_file_names_everyone(_ctx: &Ctx) -> Outcome {
    let me = step05::networks::Allocation {
        id: "3f2a9c1d0e4b5a6978877665544332211000ffeeddccbbaa9988776655443322".to_string(),
        name: "web".to_string(),
    };
    let others = vec![
        (
            "10.201.0.7".parse().expect("an address"),
            step05::networks::Allocation {
                id: "81b0c7e4aa00112233445566778899aabbccddeeff00112233445566778899aa".to_string(),
                name: "db".to_string(),
            },
        ),
        (
            "10.201.0.3".parse().expect("an address"),
            step05::networks::Allocation {
                id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string(),
                name: "cache".to_string(),
            },
        ),
    ];
    let (alone, all) = on_thread("hosts::hosts_file", None, move || {
        let address = "10.201.0.2".parse().expect("an address");
        (
            step05::hosts::hosts_file(&me, address, &[]),
            step05::hosts::hosts_file(&me, address, &others),
        )
    })?;
    expect_eq(
        "hosts_file(web at 10.201.0.2, no others): localhost, then itself by name and short id",
        "127.0.0.1\tlocalhost\n10.201.0.2\tweb 3f2a9c1d0e4b\n",
        alone.as_str(),
    )?;
    expect_eq(
        "hosts_file(web, with db and cache): and then each other container, in the order given",
        "127.0.0.1\tlocalhost\n10.201.0.2\tweb 3f2a9c1d0e4b\n10.201.0.7\tdb 81b0c7e4aa00\n10.201.0.3\tcache 0123456789ab\n",
        all.as_str(),
    )
}

/// The table every rule goes into, as the runtime declares it.
const TABLE: &str = "table ip minibox {
    set bridges { type ifname; }
    chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
    chain output { type nat hook output priority -100; policy accept; }
    chain postrouting { type nat hook postrouting priority srcnat; policy accept; }
    chain forward { type filter hook forward priority filter; policy accept; }
}
";

/// Load `rules` into a table `ip minibox` of a fresh lab's own, and list
/// what nft made of each chain they went in: (chain, listed rule lines).
fn load_rules(
    what: &str,
    rules: &[step05::rules::Rule],
) -> Result<Vec<(String, Vec<String>)>, Fail> {
    let lab = NetLab::new()?;
    let mut script = TABLE.to_string();
    for rule in rules {
        script.push_str(&format!(
            "add rule ip minibox {} {}\n",
            rule.chain, rule.text
        ));
    }
    let mut child = lab
        .command("nft", &["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Fail::new("the grader could not run nft in its lab").seen(e))?;
    {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Fail::new("nft").seen(e))?;
    if !out.status.success() {
        return Err(Fail::new(format!("nft refuses the rules of {what}"))
            .expected("rules nft -f takes")
            .seen(format!(
                "{}{}",
                script.lines().skip(7).collect::<Vec<_>>().join("\n"),
                format_args!("\n{}", String::from_utf8_lossy(&out.stderr).trim())
            )));
    }
    let mut chains: Vec<String> = rules.iter().map(|r| r.chain.clone()).collect();
    chains.sort();
    chains.dedup();
    let mut listed = Vec::new();
    for chain in chains {
        let text = lab.sh(&format!("nft list chain ip minibox {chain}"))?;
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.contains("comment \"")
                    || !(l.is_empty()
                        || l.starts_with("table")
                        || l.starts_with("chain")
                        || l.starts_with("type ")
                        || *l == "}")
            })
            .map(str::to_string)
            .collect();
        listed.push((chain, lines));
    }
    Ok(listed)
}

/// The one rule listed in `chain` with `comment "KEY"`, else a Fail.
fn listed_rule(listed: &[(String, Vec<String>)], chain: &str, key: &str) -> Result<String, Fail> {
    let lines: Vec<&String> = listed
        .iter()
        .filter(|(c, _)| c == chain)
        .flat_map(|(_, lines)| lines)
        .collect();
    let with: Vec<&&String> = lines
        .iter()
        .filter(|l| l.ends_with(&format!("comment \"{key}\"")))
        .collect();
    ensure(with.len() == 1 && lines.len() == 1, || {
        Fail::new(format!(
            "one rule in chain {chain}, ending in comment \"{key}\""
        ))
        .seen(format!("{listed:?}"))
    })?;
    Ok(with[0].to_string())
}

fn learner_rules<T: Send + 'static>(
    what: &str,
    make: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fail> {
    on_thread(what, None, make)
}

fn egress_rule_masquerades(_ctx: &Ctx) -> Outcome {
    let rule = learner_rules("rules::masquerade", || {
        step05::rules::masquerade("web", "10.201.3.0/24", "mbx-0a1b2c3d4e5")
    })?;
    let listed = load_rules("masquerade", std::slice::from_ref(&rule))?;
    let line = listed_rule(&listed, "postrouting", "net:web:mbx-0a1b2c3d4e5:masq")?;
    for part in [
        "ip saddr 10.201.3.0/24",
        "oifname != \"mbx-0a1b2c3d4e5\"",
        "masquerade",
    ] {
        ensure(line.contains(part), || {
            Fail::new(format!(
                "the egress rule of network web (10.201.3.0/24 on mbx-0a1b2c3d4e5) matches {part}"
            ))
            .expected("matches: source address in the subnet; output interface not the bridge. Verdict: masquerade")
            .seen(&line)
        })?;
    }
    Ok(())
}

fn isolation_rule_drops(_ctx: &Ctx) -> Outcome {
    let rule = learner_rules("rules::isolation", || {
        step05::rules::isolation("web", "mbx-0a1b2c3d4e5")
    })?;
    let listed = load_rules("isolation", std::slice::from_ref(&rule))?;
    let line = listed_rule(&listed, "forward", "net:web:mbx-0a1b2c3d4e5:isolate")?;
    for part in [
        "iifname \"mbx-0a1b2c3d4e5\"",
        "oifname != \"mbx-0a1b2c3d4e5\"",
        "oifname @bridges",
        "drop",
    ] {
        ensure(line.contains(part), || {
            Fail::new(format!(
                "the isolation rule of network web (on mbx-0a1b2c3d4e5) matches {part}"
            ))
            .expected(
                "matches: input interface the bridge; output interface not the bridge, and in the set @bridges. Verdict: drop",
            )
            .seen(&line)
        })?;
    }
    ensure(!line.contains("accept"), || {
        Fail::new("the isolation rule drops, never accepts").seen(&line)
    })
}

fn published_port_rules_dnat(_ctx: &Ctx) -> Outcome {
    let id = "3f2a9c1d0e4b5a6978877665544332211000ffeeddccbbaa9988776655443322";
    let rules = learner_rules("rules::published_port", move || {
        step05::rules::published_port(id, "10.200.0.9".parse().expect("an address"), 8080, 80)
    })?;
    let chains: Vec<&str> = rules.iter().map(|r| r.chain.as_str()).collect();
    ensure(
        rules.len() == 2 && chains.contains(&"prerouting") && chains.contains(&"output"),
        || {
            Fail::new("-p 8080:80 is two rules: one for chain prerouting, one for chain output")
                .seen(format!("{chains:?}"))
        },
    )?;
    let listed = load_rules("published_port", &rules)?;
    for chain in ["prerouting", "output"] {
        let line = listed_rule(&listed, chain, &format!("ctr:{id}:dnat:8080:{chain}"))?;
        for part in [
            "fib daddr type local",
            "dport 8080",
            "dnat to 10.200.0.9:80",
        ] {
            ensure(line.contains(part) && line.contains("tcp"), || {
                Fail::new(format!("the {chain} rule of -p 8080:80 (container at 10.200.0.9) matches tcp and {part}"))
                    .expected("matches: destination one of the host's own addresses (fib); TCP to port 8080. Verdict: DNAT to 10.200.0.9:80")
                    .seen(&line)
            })?;
        }
    }
    Ok(())
}
