//! The overlay read side ([`grader::overlay`]) against a real VXLAN
//! testbed ([`testbed`]): two hosts, a container on each, VNI 42 with
//! learning off; then a second VNI on the same underlay. Needs root (it
//! makes network namespaces); skips with one line otherwise.

mod testbed;

use grader::overlay::{self, Capture, FdbEntry, Neighbour, Vxlan};
use grader::{ensure, expect_eq, Fail};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use testbed::{Container, Host, VXLAN_PORT};

/// How long a round trip that should work may take (the first one waits
/// for ARP), and how long one that should fail is given to prove it.
const WORKS: Duration = Duration::from_secs(3);
const FAILS: Duration = Duration::from_millis(1500);
/// Round trips timed per path, for the medians.
const SAMPLES: u64 = 50;

#[test]
fn a_vxlan_overlay_carries_only_what_its_entries_allow() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: the VXLAN testbed needs root (network namespaces, VXLAN links)");
        return;
    }
    let host_links = host_link_names();
    let mut ends = Vec::new();
    let result = scenario(&mut ends);
    // Whatever happened: the namespaces go (their holders, our own
    // children, are killed by pid), then nothing of the testbed may be
    // left anywhere.
    let inodes: Vec<u64> = ends.iter().map(|(_, inode)| *inode).collect();
    let pids: Vec<i32> = ends.iter().map(|(pid, _)| *pid).collect();
    if let Err(fail) = result {
        panic!("{fail}");
    }
    let left = grader::poll(Duration::from_secs(5), || {
        let alive: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|pid| grader::procfs::stat(*pid).is_some())
            .collect();
        alive.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "the testbed's namespace holders should be gone"
    );
    let held = namespaces_held(&inodes);
    assert!(
        held.is_empty(),
        "no process should still be in a testbed namespace; seen: {held:?}"
    );
    assert_eq!(
        host_link_names(),
        host_links,
        "the machine's own links should be unchanged"
    );
}

/// The whole scenario; `ends` gets (holder pid, namespace inode) of every
/// namespace made, for the checks after they are dropped.
fn scenario(ends: &mut Vec<(i32, u64)>) -> Result<(), Fail> {
    let started = Instant::now();
    let (a, b) = testbed::hosts()?;
    for host in [&a, &b] {
        testbed::add_bridge(host, "br0")?;
    }
    let ca = testbed::container(&a, "br0", "veth-a", Ipv4Addr::new(10, 0, 0, 2))?;
    let cb = testbed::container(&b, "br0", "veth-b", Ipv4Addr::new(10, 0, 0, 3))?;
    for net in [&a.net, &b.net, &ca.net, &cb.net] {
        ends.push((net.pid, inode(&net.netns())));
    }
    for host in [&a, &b] {
        if let Err(fail) = testbed::add_vxlan(host, "vx0", 42, "br0") {
            if fail.to_string().contains("Operation not supported") {
                println!("skipped: this kernel has no VXLAN (modprobe vxlan)");
                return Ok(());
            }
            return Err(fail);
        }
    }
    let plumbed = started.elapsed();

    // The read side sees the devices as made.
    let vx0 = |host: &Host, device: &str| Vxlan {
        name: "vx0".into(),
        index: 0,
        vni: 42,
        port: VXLAN_PORT,
        learning: false,
        proxy: true,
        local: Some(host.address),
        device: Some(device.into()),
        mtu: 1450,
        master: Some("br0".into()),
    };
    expect_vxlans(&a, vec![vx0(&a, "ua")])?;
    expect_vxlans(&b, vec![vx0(&b, "ub")])?;

    let server = testbed::udp_in(&cb.net.netns(), cb.address, 7)?;
    let client = testbed::udp_in(&ca.net.netns(), ca.address, 0)?;
    let mut sequence = 0;
    let mut trip = |size, timeout| {
        sequence += 1;
        testbed::round_trip(&client, &server, sequence, size, timeout)
    };

    // 1. Forwarding entries alone: the containers' ARP requests reach the
    //    VXLAN device, which answers them (proxy) only from its neighbour
    //    table and, learning off, has no default destination to send them
    //    across to. Nothing gets through.
    let writing = Instant::now();
    fdb_both("vx0", &a, &ca, &b, &cb)?;
    let mut entries = writing.elapsed();
    ensure(trip(8, FAILS).is_none(), || {
        Fail::new("without neighbour entries the containers cannot resolve each other")
            .expected("no round trip 10.0.0.2 -> 10.0.0.3")
            .seen("a round trip")
    })?;

    // 2. Neighbour entries too: the round trip works.
    let writing = Instant::now();
    testbed::neigh_replace(&a, "vx0", cb.address, &cb.mac)?;
    testbed::neigh_replace(&b, "vx0", ca.address, &ca.mac)?;
    entries += writing.elapsed();
    let mut capture = Capture::open(&b.netns(), &b.underlay, VXLAN_PORT)?;
    let first = trip(8, WORKS);
    ensure(first.is_some(), || {
        Fail::new("with FDB and neighbour entries on both hosts, 10.0.0.2 should reach 10.0.0.3")
            .expected("a UDP round trip through the overlay")
            .seen("nothing back")
    })?;

    // The underlay carried it: UDP 4789, VNI 42, the containers' MACs and
    // addresses inside.
    let (ca_mac, cb_mac) = (ca.mac.clone(), cb.mac.clone());
    let seen = capture.wait_for(Duration::from_secs(2), |p| {
        p.vni == 42
            && p.outer_src == a.address
            && p.outer_dst == b.address
            && p.inner_src_mac == ca_mac
            && p.inner_dst_mac == cb_mac
            && p.inner_src == Some(ca.address)
            && p.inner_dst == Some(cb.address)
    });
    ensure(seen.is_some(), || {
        Fail::new("the underlay should carry the overlay's packet")
            .expected("192.168.50.1 > 192.168.50.2.4789: VXLAN vni 42: 02:42:0a:00:00:02 > 02:42:0a:00:00:03 IP 10.0.0.2 > 10.0.0.3")
            .seen(capture.shown())
    })?;

    // The read side lists exactly the entries written.
    expect_entries(&a, "vx0", "br0", &[&cb], b.address)?;
    expect_entries(&b, "vx0", "br0", &[&ca], a.address)?;

    // 3. Control: the forwarding entry gone from host A, nothing goes from
    //    a to b (the ARP entry is there; the frame has nowhere to go).
    testbed::fdb_del(&a, "vx0", &cb.mac, b.address)?;
    ensure(trip(8, FAILS).is_none(), || {
        Fail::new("without host A's FDB entry for b, a's packets should go nowhere")
            .expected("no round trip")
            .seen("a round trip")
    })?;
    testbed::fdb_append(&a, "vx0", &cb.mac, b.address)?;
    ensure(trip(8, WORKS).is_some(), || {
        Fail::new("with the FDB entry back, the round trip should work again")
            .expected("a round trip")
            .seen("none")
    })?;

    // Timings: the overlay against the underlay alone.
    let overlay: Vec<Duration> = (0..SAMPLES).filter_map(|_| trip(8, WORKS)).collect();
    let under_server = testbed::udp_in(&b.netns(), b.address, 7)?;
    let under_client = testbed::udp_in(&a.netns(), a.address, 0)?;
    let underlay: Vec<Duration> = (0..SAMPLES)
        .filter_map(|i| testbed::round_trip(&under_client, &under_server, i, 8, WORKS))
        .collect();
    ensure(
        overlay.len() as u64 == SAMPLES && underlay.len() as u64 == SAMPLES,
        || {
            Fail::new("every timed round trip should work")
                .expected(format!("{SAMPLES} and {SAMPLES}"))
                .seen(format!("{} and {}", overlay.len(), underlay.len()))
        },
    )?;
    println!(
        "testbed: 4 namespaces, their links and vx0 in {plumbed:?}; 4 entries written in {entries:?}; \
         first round trip (ARP retried after the control) {:?}; UDP round trip median over {SAMPLES}: overlay {:?}, underlay {:?}",
        first.unwrap_or_default(),
        testbed::median(overlay),
        testbed::median(underlay)
    );

    // 4. The MTU. A full packet of 1450 bytes crosses. A container left
    //    at 1500 sends a packet of 1500 as one frame; the bridge cannot
    //    hand it to vx0 (MTU 1450: no room for VXLAN's 50 bytes) and drops
    //    it, with no ICMP error (a bridge is layer 2): it vanishes. Back at
    //    1450, the container's kernel fragments the same datagram to fit.
    const IP_UDP: usize = 20 + 8;
    ensure(trip(1450 - IP_UDP, WORKS).is_some(), || {
        Fail::new("a packet of the overlay's full MTU (1450) should cross")
            .expected("a round trip of 1422 bytes of UDP payload")
            .seen("none")
    })?;
    set_mtu(&a, &ca, 1500)?;
    ensure(trip(1500 - IP_UDP, FAILS).is_none(), || {
        Fail::new("a 1500-byte packet cannot fit in VXLAN on a 1500 underlay")
            .expected("no round trip from a container at MTU 1500")
            .seen("a round trip")
    })?;
    set_mtu(&a, &ca, 1450)?;
    ensure(trip(1500 - IP_UDP, WORKS).is_some(), || {
        Fail::new("at MTU 1450 the same datagram should cross, in fragments")
            .expected("a round trip")
            .seen("none")
    })?;

    let _vni43 = second_vni(&a, &b, &cb, ends)?;

    // Everything removed, links first (over netlink), then the namespaces.
    for host in [&a, &b] {
        for link in ["vx0", "vx1", "br0", "br1"] {
            testbed::delete_link(host, link)?;
        }
    }
    for (host, veth) in [
        (&a, "veth-a"),
        (&b, "veth-b"),
        (&a, "veth-a43"),
        (&b, "veth-b43"),
    ] {
        testbed::delete_link(host, veth)?;
    }
    testbed::delete_link(&a, "ua")?;
    for host in [&a, &b] {
        let mut rtnl = host.rtnl()?;
        let names: Vec<String> = rtnl
            .names()
            .map_err(|e| Fail::new("cannot list links").seen(e))?
            .into_values()
            .collect();
        expect_eq(
            "a host should have only lo left",
            vec!["lo".to_string()],
            names,
        )?;
    }
    Ok(())
}

/// A second network, VNI 43 (br1, vx1), on the same hosts and underlay:
/// its own pair of containers talk; and a packet of VNI 43 sent to b
/// (VNI 42), with entries that point it right at b's MAC and host, reaches
/// host B but never b: a VXLAN device takes only its own VNI. Returns
/// VNI 43's containers, alive until the scenario has removed every link
/// (a namespace that dies takes its veth's peer along, but later).
fn second_vni(
    a: &Host,
    b: &Host,
    cb: &Container,
    ends: &mut Vec<(i32, u64)>,
) -> Result<(Container, Container), Fail> {
    for host in [a, b] {
        testbed::add_bridge(host, "br1")?;
        testbed::add_vxlan(host, "vx1", 43, "br1")?;
    }
    let c4 = testbed::container(a, "br1", "veth-a43", Ipv4Addr::new(10, 0, 0, 4))?;
    let c5 = testbed::container(b, "br1", "veth-b43", Ipv4Addr::new(10, 0, 0, 5))?;
    for net in [&c4.net, &c5.net] {
        ends.push((net.pid, inode(&net.netns())));
    }
    let vnis: Vec<(String, u32)> = overlay::vxlans(&a.netns())?
        .into_iter()
        .map(|v| (v.name, v.vni))
        .collect();
    expect_eq(
        "host A should have two VXLAN devices",
        vec![("vx0".to_string(), 42), ("vx1".to_string(), 43)],
        vnis,
    )?;
    fdb_both("vx1", a, &c4, b, &c5)?;
    testbed::neigh_replace(a, "vx1", c5.address, &c5.mac)?;
    testbed::neigh_replace(b, "vx1", c4.address, &c4.mac)?;

    let mut capture = Capture::open(&b.netns(), &b.underlay, VXLAN_PORT)?;
    let server = testbed::udp_in(&c5.net.netns(), c5.address, 7)?;
    let client = testbed::udp_in(&c4.net.netns(), c4.address, 0)?;
    let first = testbed::round_trip(&client, &server, 1, 8, WORKS);
    ensure(first.is_some(), || {
        Fail::new("VNI 43's containers should reach each other")
            .expected("a round trip 10.0.0.4 -> 10.0.0.5")
            .seen("none")
    })?;
    println!(
        "testbed: first round trip on a fresh network (ARP answered by vx1's proxy) {:?}",
        first.unwrap_or_default()
    );
    let c5_address = c5.address;
    ensure(
        capture
            .wait_for(Duration::from_secs(2), |p| {
                p.vni == 43 && p.inner_dst == Some(c5_address)
            })
            .is_some(),
        || Fail::new("VNI 43's traffic should cross the underlay as VNI 43").seen(capture.shown()),
    )?;

    // Entries on vx1 that send b's MAC and address to host B.
    testbed::fdb_append(a, "vx1", &cb.mac, b.address)?;
    testbed::neigh_replace(a, "vx1", cb.address, &cb.mac)?;
    expect_entries(a, "vx1", "br1", &[&c5, cb], b.address)?;
    expect_entries(b, "vx1", "br1", &[&c4], a.address)?;
    let b_server = testbed::udp_in(&cb.net.netns(), cb.address, 9)?;
    ensure(
        testbed::round_trip(&client, &b_server, 2, 8, FAILS).is_none(),
        || {
            Fail::new("a container of VNI 43 should not reach one of VNI 42")
                .expected("no round trip 10.0.0.4 -> 10.0.0.3")
                .seen("a round trip")
        },
    )?;
    let cb_address = cb.address;
    ensure(
        capture
            .wait_for(Duration::from_secs(1), |p| {
                p.vni == 43 && p.inner_dst == Some(cb_address)
            })
            .is_some(),
        || {
            Fail::new("the isolated packet should have reached host B, as VNI 43")
                .seen(capture.shown())
        },
    )?;
    Ok((c4, c5))
}

/// `ip link set dev eth0 mtu MTU` in the container and on its bridge port.
fn set_mtu(host: &Host, container: &Container, mtu: u32) -> Result<(), Fail> {
    // The veth's receiving end drops frames above its own MTU too.
    host.net.sh(&format!("ip link set dev veth-a mtu {mtu}"))?;
    container
        .net
        .sh(&format!("ip link set dev eth0 mtu {mtu}"))?;
    Ok(())
}

/// Each host's VXLAN device: the other container's MAC is behind the other
/// host (`bridge fdb append MAC dev vxN dst OTHER-HOST`).
fn fdb_both(dev: &str, a: &Host, ca: &Container, b: &Host, cb: &Container) -> Result<(), Fail> {
    testbed::fdb_append(a, dev, &cb.mac, b.address)?;
    testbed::fdb_append(b, dev, &ca.mac, a.address)
}

/// The read side's VXLAN devices of `host`, the index aside.
fn expect_vxlans(host: &Host, mut expected: Vec<Vxlan>) -> Result<(), Fail> {
    let seen = overlay::vxlans(&host.netns())?;
    for (e, s) in expected.iter_mut().zip(&seen) {
        e.index = s.index;
    }
    expect_eq(
        "the VXLAN devices as the read side lists them",
        expected,
        seen,
    )
}

/// On `dev` of `host` (a VXLAN device on `bridge`): exactly the forwarding
/// entries with a VTEP written for `remotes` (each one's MAC behind
/// `vtep`, self, permanent), every other entry the bridge's (the device's
/// own MAC, and what the bridge learned came in through it); and exactly
/// the neighbour entries written for them, permanent.
fn expect_entries(
    host: &Host,
    dev: &str,
    bridge: &str,
    remotes: &[&Container],
    vtep: Ipv4Addr,
) -> Result<(), Fail> {
    let fdb = overlay::fdb(&host.netns(), dev)?;
    let mut with_dst: Vec<FdbEntry> = fdb.iter().filter(|e| e.dst.is_some()).cloned().collect();
    with_dst.sort_by(|x, y| x.mac.cmp(&y.mac));
    let mut written: Vec<FdbEntry> = remotes
        .iter()
        .map(|remote| FdbEntry {
            mac: remote.mac.clone(),
            dst: Some(IpAddr::V4(vtep)),
            own: true,
            master: None,
            permanent: true,
            vni: None,
        })
        .collect();
    written.sort_by(|x, y| x.mac.cmp(&y.mac));
    expect_eq(
        &format!("bridge fdb show dev {dev}: the entries with a dst"),
        written,
        with_dst,
    )?;
    ensure(
        fdb.iter()
            .all(|e| e.dst.is_some() || e.master.as_deref() == Some(bridge)),
        || {
            Fail::new(format!(
                "bridge fdb show dev {dev}: every other entry should be {bridge}'s (master)"
            ))
            .seen(format!("{fdb:?}"))
        },
    )?;
    let mut neighbours = overlay::neighbours(&host.netns(), dev)?;
    neighbours.sort_by_key(|n| n.ip);
    let mut written: Vec<Neighbour> = remotes
        .iter()
        .map(|remote| Neighbour {
            ip: IpAddr::V4(remote.address),
            mac: Some(remote.mac.clone()),
            state: "PERMANENT".into(),
        })
        .collect();
    written.sort_by_key(|n| n.ip);
    expect_eq(&format!("ip neigh show dev {dev}"), written, neighbours)
}

/// The inode of a network namespace: its identity while anything holds it.
fn inode(netns: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(netns).map(|m| m.ino()).unwrap_or(0)
}

/// The processes whose network namespace is one of `inodes`, and the
/// bind mounts in /run/netns that are.
fn namespaces_held(inodes: &[u64]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut held = Vec::new();
    let proc_entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let netns_entries = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten();
    for entry in proc_entries {
        let path = entry.path().join("ns/net");
        if let Ok(m) = std::fs::metadata(&path) {
            if inodes.contains(&m.ino()) {
                held.push(path.display().to_string());
            }
        }
    }
    for entry in netns_entries {
        if let Ok(m) = std::fs::metadata(entry.path()) {
            if inodes.contains(&m.ino()) {
                held.push(entry.path().display().to_string());
            }
        }
    }
    held
}

/// The names of the links of the grader's own namespace (read only).
fn host_link_names() -> Vec<String> {
    let mut rtnl = overlay::Rtnl::open_in("/proc/self/ns/net").expect("rtnetlink here");
    rtnl.names().expect("our own links").into_values().collect()
}
