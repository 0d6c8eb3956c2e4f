//! Graded checks for step 07: overlay networks across hosts (VXLAN), etcd
//! as the cluster store.
//!
//! Compiled into `lesson-07` and `solution-07`. Every check that needs the
//! store starts a real etcd cluster in a lab of its own (grader::cluster:
//! an underlay bridge and "hosts", network namespaces with an etcd member
//! each on 10.99.0.i), and is skipped with one line where etcd is missing.
//! The first checks grade one exercise each: the grader calls the
//! learner's function itself (the plan on values; the VXLAN device and its
//! entries with a netlink socket of a lab, read back over rtnetlink; the
//! VNI, IPAM and endpoint writes against the cluster, read back with the
//! grader's own etcd client). Then the runtime as a whole: three hosts,
//! each running the runtime inside its namespace with its own `--root`,
//! containers of the probe image on an overlay network across them, the
//! underlay captured. After each of those, nothing may be left: no link in
//! the hosts but their own, no key of the project's in the store.

use grader::cluster::Cluster;
use grader::process::{Invocation, Output};

use grader::{ensure, expect_eq, Check, Ctx, Fail, Needs, NetLab, Outcome, Requires};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use step07::plan::{Entries, Fdb, Neighbour, Plan};
use step07::store::{self, Endpoint};

/// The project's keys in the store all start with this.
const PREFIX: &str = "/minibox/v1/";

fn main() {
    grader::main(
        grader::step!("07-overlay-net", Needs::Root),
        vec![
            // One exercise each: the grader calls the function itself.
            Check { name: "plan_adds_the_missing_and_deletes_the_stale", points: 4, section: "the-sync",
                hint: "plan::plan compares what the VXLAN device holds with what the store says: every endpoint on another host needs an FDB entry (its MAC -> its host) and a neighbour entry (its IP -> its MAC); endpoints of this host need none; whatever else the device holds goes. Each list sorted, no duplicates.",
                more: "std::collections::BTreeSet (sorted, no duplicates; difference); the Fdb and Neighbour structs derive Ord; Iterator::filter on endpoint.host != me.",
                shape: "1. wanted FDB = {(mac, host)} and wanted neighbours = {(ip, mac)} of the endpoints whose host is not me\n2. held = the local entries, as sets\n3. add = wanted - held, delete = held - wanted, for each kind\n4. collect each into a Vec (sorted by the set)",
                requires: Requires::Nothing, run: plan_adds_the_missing_and_deletes_the_stale },
            Check { name: "vxlan_device_as_asked", points: 4, section: "by-hand-two-hosts-one-overlay",
                hint: "vxlan::add_vxlan sends one RTM_NEWLINK that makes a VXLAN link: the VNI, UDP port 4789, the local underlay address on its device, learning off, proxy on, the MTU, a port of the bridge; an existing name is an error.",
                more: "netlink_packet_route::link::{LinkMessage, LinkAttribute::{IfName, Mtu, Controller, LinkInfo}, LinkInfo::{Kind, Data}, InfoKind::Vxlan, InfoData::Vxlan, InfoVxlan::{Id, Port, Local, Link, Learning, Proxy}}; never InfoVxlan::Gbp (a flag written with no value: Gbp(false) turns it on); NLM_F_CREATE | NLM_F_EXCL; Netlink::request.",
                shape: "1. an empty link message; attributes: the name, the MTU, the controller (bridge index)\n2. link info: kind vxlan, data [id, port 4789, local, link (underlay index), learning false, proxy true]\n3. request(new link, create | exclusive), the name in the error's context",
                requires: Requires::Nothing, run: vxlan_device_as_asked },
            Check { name: "fdb_and_neighbour_entries", points: 4, section: "who-is-where",
                hint: "entries::fdb writes (or deletes) a permanent entry of the VXLAN device's own forwarding table, MAC -> VTEP, made or moved to that VTEP; entries::neighbour writes (or deletes) a permanent IPv4 neighbour entry IP -> MAC on the device.",
                more: "netlink_packet_route::neighbour::{NeighbourMessage, NeighbourAttribute::{LinkLayerAddress, Destination}, NeighbourAddress::Inet, NeighbourFlags::Own (NTF_SELF), NeighbourState::{Other, Permanent}}; AddressFamily::Bridge for the FDB, Inet for the neighbour; RouteNetlinkMessage::{NewNeighbour, DelNeighbour}; NLM_F_CREATE | NLM_F_REPLACE for both; store::mac_bytes; entries::NUD_NOARP | NUD_PERMANENT as Other(bits).",
                shape: "fdb: 1. a neighbour message: family bridge, ifindex the device, state Other(noarp | permanent), flags own\n2. attributes: link-layer address (the MAC's bytes), destination (the VTEP)\n3. Add: new neighbour with create | replace; Delete: del neighbour\nneighbour: 1. family inet, ifindex, state permanent 2. destination = the IP, link-layer address = the MAC 3. Add: new neighbour, create | replace; Delete: del neighbour",
                requires: Requires::Nothing, run: fdb_and_neighbour_entries },
            Check { name: "vni_is_allocated_once", points: 3, section: "compare-and-swap-allocation-across-hosts",
                hint: "vni::allocate gives the lowest VNI from 256 whose key did not exist, by one etcd transaction per candidate (create if absent), so that creators on every host at once never share one.",
                more: "Etcd::txn with a JSON body: compare [{key, target CREATE, result EQUAL, create_revision \"0\"}], success [{request_put: {key, value}}]; etcd::encode for keys and values (base64); the answer's \"succeeded\" is left out when false; store::vni_key, FIRST_VNI, LAST_VNI.",
                shape: "1. for vni from FIRST_VNI to LAST_VNI:\n2.   txn: if the key's create revision is 0, put key = name\n3.   succeeded: return vni\n4. none left: an error",
                requires: Requires::Etcd, run: vni_is_allocated_once },
            Check { name: "addresses_are_unique_cluster_wide", points: 5, section: "compare-and-swap-allocation-across-hosts",
                hint: "ipam::allocate takes the lowest free address of the subnet (from .2, never the broadcast) by a create-if-absent transaction on its key, holding the container's id under its lease; 30 allocations from three hosts at once get 30 addresses. ipam::release deletes the key only if it holds that id, in one transaction.",
                more: "Etcd::txn (compare create_revision = \"0\", success request_put with \"lease\" as a decimal string); for release compare {target VALUE, result EQUAL, value} and success request_delete_range {key}; Subnet::parse, nth, size; store::address_key; etcd::encode.",
                shape: "allocate: 1. parse the subnet 2. for n from 2 to size-2: key = address_key(name, nth(n)); txn create-if-absent put key = id with the lease; succeeded: return the address 3. none: an error naming the network\nrelease: 1. txn: if the key's value is the id, delete the key",
                requires: Requires::Etcd, run: addresses_are_unique_cluster_wide },
            Check { name: "endpoint_lives_with_its_lease", points: 3, section: "leases-who-is-still-there",
                hint: "endpoints::register puts the endpoint, as JSON, at its key under the container's lease: when the lease ends (revoked, or not kept alive) the key is gone. endpoints::list reads every endpoint of a network back.",
                more: "Etcd::put_with_lease, Etcd::prefix; serde_json::to_string and from_str (Endpoint is Serialize and Deserialize); store::endpoint_key, store::endpoints_prefix.",
                shape: "register: 1. key = endpoint_key(network, id) 2. put_with_lease(key, json, lease)\nlist: 1. prefix(endpoints_prefix(network)) 2. parse each value, an error naming the key if it is not an endpoint",
                requires: Requires::Etcd, run: endpoint_lives_with_its_lease },
            // The runtime as a whole, three hosts, on top of the given code.
            Check { name: "containers_reach_across_hosts", points: 5, section: "what-minibox-does",
                hint: "Containers on hosts A and C of one overlay network reach each other by address and by name: each host has the network's bridge and VXLAN device, and FDB and neighbour entries for the other host's containers; every host's network ls and inspect show the overlay and its VNI.",
                more: "The whole path: vni::allocate (network create), ipam::allocate and endpoints::register (run), vxlan::add_vxlan (the first local container), plan::plan and entries::fdb / entries::neighbour (the sync), endpoints::list (names in /etc/hosts).",
                shape: "1. network create -d overlay on A 2. ls and inspect on A, B and C: overlay, global, its VNI 3. a server on A, one on C 4. a client on C reaches A's by name and address, one on A reaches C's 5. B, with no container, has no VXLAN device",
                requires: Requires::Etcd, run: containers_reach_across_hosts },
            Check { name: "underlay_carries_the_vni", points: 4, section: "packets-on-the-underlay",
                hint: "What crosses the underlay between A and C is UDP to port 4789 with the network's VNI in its VXLAN header, and inside, the containers' own addresses.",
                more: "vxlan::add_vxlan: InfoVxlan::Port(4789) (the kernel's own default is 8472), InfoVxlan::Id(the network's VNI), InfoVxlan::Local(the advertised address); entries::fdb sends frames for a MAC to its host's address.",
                shape: "1. a server on A, a capture on A's cable to the underlay 2. a client on C connects 3. a packet C -> A to UDP 4789, VNI = the network's, inner C's address -> A's",
                requires: Requires::Etcd, run: underlay_carries_the_vni },
            Check { name: "mtu_1450_and_no_learning", points: 2, section: "the-50-bytes-and-mtu-1450",
                hint: "The VXLAN device rides on the underlay's 1500 minus the 50 bytes of outer headers: MTU 1450, learning off, proxy on; the container's eth0 has 1450 too, so a full-size packet fits.",
                more: "InfoVxlan::Learning(false), InfoVxlan::Proxy(true), LinkAttribute::Mtu(spec.mtu) in vxlan::add_vxlan.",
                shape: "1. a container on A 2. its eth0's MTU: 1450 3. A's VXLAN device: VNI, port 4789, local A, on eth0, MTU 1450, nolearning, proxy, a port of the network's bridge",
                requires: Requires::Etcd, run: mtu_1450_and_no_learning },
            Check { name: "overlay_networks_are_isolated", points: 3, section: "vxlan-a-frame-in-a-datagram",
                hint: "Two overlay networks have two VNIs: a container of one reaches nothing of the other, by address or by name, even across the same hosts.",
                more: "vni::allocate gives each network its own VNI; the sync writes each network's entries on its own device only (plan::plan is per network).",
                shape: "1. ov1 and ov2, different VNIs 2. a server on ov1 on A 3. a client on ov2 on C: its address unreachable, its name unknown 4. a client on ov1 on C: reached",
                requires: Requires::Etcd, run: overlay_networks_are_isolated },
            Check { name: "parallel_runs_get_distinct_addresses", points: 4, section: "compare-and-swap-allocation-across-hosts",
                hint: "10 runs at once on each of three hosts: 30 distinct addresses, every one held in the store by its container, and all given back when the containers go.",
                more: "ipam::allocate's create-if-absent transaction decides races between hosts; ipam::release and the lease give the addresses back.",
                shape: "1. 3 x 10 parallel run -d 2. 30 distinct addresses in inspect, 30 keys under ipam/NETWORK/ 3. rm -f all: no address key left",
                requires: Requires::Etcd, run: parallel_runs_get_distinct_addresses },
            Check { name: "gone_containers_vanish_everywhere", points: 5, section: "leases-who-is-still-there",
                hint: "A stopped container's endpoint, address and entries go at once from every host; a container whose monitor is killed (SIGKILL: no cleanup ran) goes when its lease expires, and the other hosts drop its entries and its name at their next sync.",
                more: "endpoints::register with the lease (so the key expires), plan::plan deleting what no endpoint wants, entries::fdb and entries::neighbour with Change::Delete.",
                shape: "1. containers on A, B and C 2. C holds entries for A's and B's 3. stop B: its entries leave A and C, its name their /etc/hosts 4. SIGKILL A's monitor: within the lease's TTL plus a tick, C holds nothing of A's",
                requires: Requires::Etcd, run: gone_containers_vanish_everywhere },
            Check { name: "store_down_is_one_line", points: 3, section: "when-the-store-is-down",
                hint: "With the store unreachable, run --network OVERLAY fails in one line with exit status 125, within seconds, and leaves nothing: no container, no link, no key.",
                more: "The given client times out in 2 s per member; your ipam::allocate, vni::allocate and endpoints functions must return the client's error (?), never retry it for ever.",
                shape: "1. an overlay network 2. run with --cluster-store pointing nowhere: exit 125, one line, in seconds 3. no container dir, no link, the store holds only the network",
                requires: Requires::Etcd, run: store_down_is_one_line },
            Check { name: "works_with_a_member_down", points: 3, section: "measured-writes-elections-members-down",
                hint: "With one of three etcd members killed the other two still make a majority: network create, run and reaching across hosts still work (the client tries the members in turn).",
                more: "Your transactions go through Etcd::txn, which skips a member that refuses the connection.",
                shape: "1. kill the leading member, wait for a new leader 2. network create, a server on A, a client on C by name: reached",
                requires: Requires::Etcd, run: works_with_a_member_down },
        ],
    );
}

// --- One exercise each -------------------------------------------------

fn endpoint(id: &str, ip: [u8; 4], host: [u8; 4]) -> Endpoint {
    let ip = Ipv4Addr::from(ip);
    Endpoint {
        network: "ov".into(),
        id: id.into(),
        name: format!("n-{id}"),
        ip,
        mac: store::mac_of(ip),
        host: Ipv4Addr::from(host),
    }
}

fn fdb(mac: &str, vtep: [u8; 4]) -> Fdb {
    Fdb {
        mac: mac.into(),
        vtep: Ipv4Addr::from(vtep),
    }
}

fn neighbour(ip: [u8; 4], mac: &str) -> Neighbour {
    Neighbour {
        ip: Ipv4Addr::from(ip),
        mac: mac.into(),
    }
}

fn plan_adds_the_missing_and_deletes_the_stale(_ctx: &Ctx) -> Outcome {
    let me = Ipv4Addr::new(10, 99, 0, 1);
    let a = endpoint("a", [10, 0, 0, 2], [10, 99, 0, 1]); // this host's
    let b = endpoint("b", [10, 0, 0, 3], [10, 99, 0, 2]);
    let c = endpoint("c", [10, 0, 0, 4], [10, 99, 0, 3]);
    let d = endpoint("d", [10, 0, 0, 5], [10, 99, 0, 3]);
    // Held: b's entries (right), d's MAC behind the wrong host, a stale
    // neighbour of an address nobody has, and nothing of c's.
    let held = Entries {
        fdb: vec![
            fdb(&b.mac, [10, 99, 0, 2]),
            fdb(&d.mac, [10, 99, 0, 2]),
            fdb("02:42:0a:00:00:63", [10, 99, 0, 2]),
        ],
        neighbours: vec![
            neighbour([10, 0, 0, 3], &b.mac),
            neighbour([10, 0, 0, 99], "02:42:0a:00:00:63"),
            neighbour([10, 0, 0, 5], &d.mac),
        ],
    };
    let endpoints = vec![d.clone(), c.clone(), a.clone(), b.clone(), c.clone()];
    let got = grader::todo::call("plan::plan(held, endpoints, me)", || {
        step07::plan::plan(&held, &endpoints, me)
    })?;
    let expected = Plan {
        add_fdb: vec![fdb(&c.mac, [10, 99, 0, 3]), fdb(&d.mac, [10, 99, 0, 3])],
        delete_fdb: vec![
            fdb(&d.mac, [10, 99, 0, 2]),
            fdb("02:42:0a:00:00:63", [10, 99, 0, 2]),
        ],
        add_neighbours: vec![neighbour([10, 0, 0, 4], &c.mac)],
        delete_neighbours: vec![neighbour([10, 0, 0, 99], "02:42:0a:00:00:63")],
    };
    let mut expected_sorted = expected.clone();
    expected_sorted.add_fdb.sort();
    expected_sorted.delete_fdb.sort();
    ensure(got == expected_sorted, || {
        Fail::new("the plan for a host holding b's entries, d's MAC behind the wrong host and a stale address, with a (here), b, c and d (c twice) in the store")
            .expected(format!("{expected_sorted:#?}"))
            .seen(format!("{got:#?}"))
    })?;
    // Nothing to do when the device holds exactly what it should.
    let right = Entries {
        fdb: vec![fdb(&b.mac, [10, 99, 0, 2])],
        neighbours: vec![neighbour([10, 0, 0, 3], &b.mac)],
    };
    let bare = vec![a.clone(), b.clone()];
    let got = grader::todo::call("plan::plan", || step07::plan::plan(&right, &bare, me))?;
    ensure(got.is_empty(), || {
        Fail::new("a device holding exactly the other hosts' entries needs no change")
            .seen(format!("{got:#?}"))
    })?;
    // Alone on the network: everything held goes.
    let got = grader::todo::call("plan::plan", || {
        step07::plan::plan(&right, std::slice::from_ref(&a), me)
    })?;
    expect_eq(
        "with only this host's endpoint left, every entry is deleted",
        (right.fdb.clone(), right.neighbours.clone(), 0, 0),
        (
            got.delete_fdb.clone(),
            got.delete_neighbours.clone(),
            got.add_fdb.len(),
            got.add_neighbours.len(),
        ),
    )
}

/// Run `work` on a thread of its own, in the namespace `netns` if given.
fn on_thread<T: Send + 'static>(
    what: &str,
    netns: Option<String>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fail> {
    grader::todo::call_in_netns(what, netns, work)
}

/// A lab with an underlay device `ul0` (10.98.0.1/24, up; one end of a
/// veth pair) and a bridge `obr`.
fn vxlan_lab() -> Result<NetLab, Fail> {
    let lab = NetLab::new()?;
    lab.sh(
        "ip link add ul0 type veth peer name ul1 && ip addr add 10.98.0.1/24 dev ul0 \
         && ip link set ul1 up && ip link set ul0 up \
         && ip link add obr type bridge && ip link set obr up",
    )?;
    Ok(lab)
}

/// The learner's `add_vxlan` with a netlink socket of the lab.
fn add_vxlan_in(lab: &NetLab, name: &str, vni: u32) -> Result<Result<(), String>, Fail> {
    let name = name.to_string();
    on_thread("vxlan::add_vxlan", Some(lab.netns()), move || {
        let mut netlink = step07::netlink::Netlink::open().map_err(|e| format!("{e:#}"))?;
        let underlay = netlink.index("ul0").map_err(|e| format!("{e:#}"))?;
        let bridge = netlink.index("obr").map_err(|e| format!("{e:#}"))?;
        step07::vxlan::add_vxlan(
            &mut netlink,
            &step07::vxlan::VxlanSpec {
                name,
                vni,
                local: Ipv4Addr::new(10, 98, 0, 1),
                underlay,
                bridge,
                mtu: 1450,
            },
        )
        .map_err(|e| format!("{e:#}"))
    })
}

fn vxlan_device_as_asked(_ctx: &Ctx) -> Outcome {
    let lab = vxlan_lab()?;
    if let Err(why) = add_vxlan_in(&lab, "ovxcheck", 4242)? {
        return Err(Fail::new("add_vxlan(ovxcheck, vni 4242, local 10.98.0.1 on ul0, bridge obr, mtu 1450) should succeed").seen(why));
    }
    let all = grader::overlay::vxlans(&lab.netns())?;
    let expected = grader::overlay::Vxlan {
        name: "ovxcheck".into(),
        index: all.first().map_or(0, |v| v.index),
        vni: 4242,
        port: 4789,
        learning: false,
        proxy: true,
        local: Some(Ipv4Addr::new(10, 98, 0, 1)),
        device: Some("ul0".into()),
        mtu: 1450,
        master: Some("obr".into()),
    };
    ensure(all.len() == 1 && all[0] == expected, || {
        Fail::new("one VXLAN link, as `ip -d link show type vxlan` would describe it")
            .expected(format!("{expected:?}"))
            .seen(format!("{all:?}"))
    })?;
    let gbp = lab.sh("ip -d link show ovxcheck")?;
    ensure(!gbp.contains(" gbp"), || {
        Fail::new("no Group Based Policy extension on the device (InfoVxlan::Gbp is a flag: any value turns it on)").seen(gbp.trim())
    })?;
    // The same name again: refused, and still one device.
    let again = add_vxlan_in(&lab, "ovxcheck", 4243)?;
    ensure(again.is_err(), || {
        Fail::new("a second add_vxlan with a name that exists should fail (NLM_F_EXCL)")
    })?;
    let all = grader::overlay::vxlans(&lab.netns())?;
    expect_eq(
        "after the refused second call, the first device is unchanged",
        vec![(String::from("ovxcheck"), 4242)],
        all.iter().map(|v| (v.name.clone(), v.vni)).collect(),
    )
}

/// `bridge fdb show dev ovxe`, the bridge's own entry for the port's MAC
/// (`master obr permanent`, made by the kernel when ovxe joined obr) labelled
/// as not graded.
fn bridge_fdb_show(lab: &NetLab) -> Result<String, Fail> {
    Ok(lab
        .sh("bridge fdb show dev ovxe")?
        .lines()
        .map(|l| {
            if l.contains(" master ") {
                format!("{l}   (the bridge's own, ignored)")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// A learner's request, given a socket and the VXLAN device's index.
type Request = Box<dyn FnOnce(&mut step07::netlink::Netlink, u32) -> anyhow::Result<()> + Send>;

fn fdb_and_neighbour_entries(_ctx: &Ctx) -> Outcome {
    let lab = vxlan_lab()?;
    // A device made by `ip`: the entries alone are graded here.
    lab.sh(
        "ip link add ovxe type vxlan id 77 dstport 4789 local 10.98.0.1 dev ul0 nolearning proxy \
         && ip link set ovxe master obr && ip link set ovxe up",
    )?;
    let mac = "02:42:0a:00:00:07";
    let ip = Ipv4Addr::new(10, 0, 0, 7);
    let (h2, h3) = (Ipv4Addr::new(10, 98, 0, 2), Ipv4Addr::new(10, 98, 0, 3));
    let call = |what: &'static str, f: Request| -> Result<(), Fail> {
        let done = on_thread(what, Some(lab.netns()), move || {
            let mut netlink = step07::netlink::Netlink::open().map_err(|e| format!("{e:#}"))?;
            let index = netlink.index("ovxe").map_err(|e| format!("{e:#}"))?;
            f(&mut netlink, index).map_err(|e| format!("{e:#}"))
        })?;
        done.map_err(|why| Fail::new(format!("{what} should succeed")).seen(why))
    };
    use step07::entries::Change;
    let mac2 = "02:42:0a:00:00:09";
    call(
        "entries::fdb(Add, ovxe, 02:42:0a:00:00:07, 10.98.0.2)",
        Box::new(move |n, i| step07::entries::fdb(n, Change::Add, i, mac, h2)),
    )?;
    call(
        "entries::fdb(Add, ovxe, 02:42:0a:00:00:09, 10.98.0.2)",
        Box::new(move |n, i| step07::entries::fdb(n, Change::Add, i, mac2, h2)),
    )?;
    call(
        "entries::neighbour(Add, ovxe, 10.0.0.7, 02:42:0a:00:00:07)",
        Box::new(move |n, i| step07::entries::neighbour(n, Change::Add, i, ip, mac)),
    )?;
    let own = |netns: &str| -> Result<Vec<(String, Option<std::net::IpAddr>, bool)>, Fail> {
        let mut v: Vec<_> = grader::overlay::fdb(netns, "ovxe")?
            .into_iter()
            .filter(|e| e.own)
            .map(|e| (e.mac, e.dst, e.permanent))
            .collect();
        v.sort();
        Ok(v)
    };
    let shown = bridge_fdb_show(&lab)?;
    let expected = vec![
        (mac.to_string(), Some(h2.into()), true),
        (mac2.to_string(), Some(h2.into()), true),
    ];
    let seen = own(&lab.netns())?;
    ensure(seen == expected, || {
        Fail::new("the device's own table holds both MACs behind 10.98.0.2, permanent (bridge fdb show dev ovxe)")
            .expected(format!("{mac} dst {h2} self permanent\n{mac2} dst {h2} self permanent"))
            .seen(shown.trim())
    })?;
    // The container moved: the same MAC, another VTEP.
    call(
        "entries::fdb(Add, ovxe, 02:42:0a:00:00:07, 10.98.0.3) over an existing entry",
        Box::new(move |n, i| step07::entries::fdb(n, Change::Add, i, mac, h3)),
    )?;
    let shown = bridge_fdb_show(&lab)?;
    let expected = vec![
        (mac.to_string(), Some(h3.into()), true),
        (mac2.to_string(), Some(h2.into()), true),
    ];
    ensure(own(&lab.netns())? == expected, || {
        Fail::new("adding a MAC that has an entry moves it to the new VTEP (NLM_F_REPLACE)")
            .expected(format!(
                "{mac} dst {h3} self permanent\n{mac2} dst {h2} self permanent"
            ))
            .seen(shown.trim())
    })?;
    let neighbours = grader::overlay::neighbours(&lab.netns(), "ovxe")?;
    let want = vec![grader::overlay::Neighbour {
        ip: ip.into(),
        mac: Some(mac.into()),
        state: "PERMANENT".into(),
    }];
    ensure(neighbours == want, || {
        Fail::new("one permanent neighbour entry on the device (ip neigh show dev ovxe)")
            .expected(format!("{ip} lladdr {mac} PERMANENT"))
            .seen(format!("{neighbours:?}"))
    })?;
    // Replace: the same IP with another MAC overwrites it.
    let other = "02:42:0a:00:00:08";
    call(
        "entries::neighbour(Add, ovxe, 10.0.0.7, 02:42:0a:00:00:08) over an existing entry",
        Box::new(move |n, i| step07::entries::neighbour(n, Change::Add, i, ip, other)),
    )?;
    let neighbours = grader::overlay::neighbours(&lab.netns(), "ovxe")?;
    ensure(
        neighbours.len() == 1 && neighbours[0].mac.as_deref() == Some(other),
        || {
            Fail::new("adding an IP that has an entry overwrites its MAC (NLM_F_REPLACE)")
                .seen(format!("{neighbours:?}"))
        },
    )?;
    // Delete: one MAC's entry, then the neighbour.
    call(
        "entries::fdb(Delete, ovxe, 02:42:0a:00:00:07, 10.98.0.3)",
        Box::new(move |n, i| step07::entries::fdb(n, Change::Delete, i, mac, h3)),
    )?;
    call(
        "entries::neighbour(Delete, ovxe, 10.0.0.7, ...)",
        Box::new(move |n, i| step07::entries::neighbour(n, Change::Delete, i, ip, other)),
    )?;
    let seen = own(&lab.netns())?;
    expect_eq(
        "after deleting 02:42:0a:00:00:07's entry, only the other MAC's is left",
        vec![(mac2.to_string(), Some(h2.into()), true)],
        seen,
    )?;
    let neighbours = grader::overlay::neighbours(&lab.netns(), "ovxe")?;
    ensure(neighbours.is_empty(), || {
        Fail::new("after deleting it, the device has no neighbour entry")
            .seen(format!("{neighbours:?}"))
    })
}

/// The solution's client for `cluster`, as host `i` dials it.
fn runtime_etcd(cluster: &Cluster, i: usize) -> step07::etcd::Etcd {
    let mut endpoints = cluster.endpoints();
    endpoints.rotate_left(i);
    step07::etcd::Etcd::new(&endpoints)
}

fn start_cluster(n: usize) -> Result<Cluster, Fail> {
    Cluster::start(n)
}

/// Call `f` with the runtime's etcd client, from host `i`'s namespace.
fn with_store<T: Send + 'static>(
    cluster: &Cluster,
    i: usize,
    what: &str,
    f: impl FnOnce(&step07::etcd::Etcd) -> anyhow::Result<T> + Send + 'static,
) -> Result<Result<T, String>, Fail> {
    let etcd = runtime_etcd(cluster, i);
    on_thread(what, Some(cluster.host(i).net.netns()), move || {
        f(&etcd).map_err(|e| format!("{e:#}"))
    })
}

fn vni_is_allocated_once(_ctx: &Ctx) -> Outcome {
    let cluster = start_cluster(3)?;
    let grader = cluster.client_on(0);
    // Racing creators: three hosts, four networks each, all at once (a
    // barrier lines the threads up). A get-then-put gives two of them one
    // VNI; a create-if-absent transaction can't.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let mut threads = Vec::new();
    for i in 0..3 {
        let etcd = runtime_etcd(&cluster, i);
        let netns = cluster.host(i).net.netns();
        let barrier = barrier.clone();
        threads.push(std::thread::spawn(move || {
            on_thread("vni::allocate", Some(netns), move || {
                barrier.wait();
                (0..4)
                    .map(|k| {
                        let name = format!("race-{i}-{k}");
                        step07::vni::allocate(&etcd, &name)
                            .map(|v| (v, name))
                            .map_err(|e| format!("{e:#}"))
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
        }));
    }
    let mut raced = Vec::new();
    for thread in threads {
        let got = thread
            .join()
            .map_err(|_| Fail::new("a grader thread panicked"))??;
        raced.extend(got.map_err(|why| {
            Fail::new("vni::allocate on three hosts at once should succeed").seen(why)
        })?);
    }
    raced.sort();
    let vnis: BTreeSet<u32> = raced.iter().map(|(v, _)| *v).collect();
    ensure(vnis.len() == 12, || {
        Fail::new("12 networks created at once from three hosts get 12 distinct VNIs")
            .expected("12 distinct VNIs")
            .seen(format!("{} distinct: {raced:?}", vnis.len()))
    })?;
    expect_eq(
        "they are the lowest 12 from 256",
        (256..268).collect::<BTreeSet<u32>>(),
        vnis,
    )?;
    let held: Vec<(String, String)> = grader
        .prefix(&format!("{PREFIX}vni/"))?
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let want: Vec<(String, String)> = raced
        .iter()
        .map(|(v, n)| (store::vni_key(*v), n.clone()))
        .collect();
    expect_eq(
        "each VNI's key names the network that was given it",
        want,
        held,
    )?;
    grader.delete_prefix(PREFIX)?;
    // One after another: the lowest free, holes filled.
    let allocate = |name: &'static str| -> Result<u32, Fail> {
        with_store(&cluster, 0, "vni::allocate", move |e| {
            step07::vni::allocate(e, name)
        })?
        .map_err(|why| Fail::new(format!("vni::allocate({name}) should succeed")).seen(why))
    };
    expect_eq(
        "the first network's VNI (libnetwork's first)",
        256,
        allocate("net-a")?,
    )?;
    expect_eq("the second network's VNI", 257, allocate("net-b")?)?;
    grader.put(&store::vni_key(258), "someone")?;
    expect_eq(
        "the next VNI when 258 is held already",
        259,
        allocate("net-c")?,
    )?;
    grader.delete_prefix(&store::vni_key(256))?;
    expect_eq(
        "the lowest free VNI again, once 256 is free",
        256,
        allocate("net-d")?,
    )?;
    let held: Vec<(String, String)> = grader
        .prefix(&format!("{PREFIX}vni/"))?
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let want: Vec<(String, String)> = [
        (256, "net-d"),
        (257, "net-b"),
        (258, "someone"),
        (259, "net-c"),
    ]
    .iter()
    .map(|(v, n)| (store::vni_key(*v), n.to_string()))
    .collect();
    expect_eq("the VNI keys and who holds them", want, held)?;
    grader.delete_prefix(PREFIX)?;
    Ok(())
}

fn overlay_record(name: &str, subnet: &str) -> store::OverlayNetwork {
    store::OverlayNetwork {
        name: name.into(),
        id: "0".repeat(64),
        created: String::new(),
        driver: "overlay".into(),
        subnet: subnet.into(),
        vni: 300,
    }
}

fn addresses_are_unique_cluster_wide(_ctx: &Ctx) -> Outcome {
    let cluster = start_cluster(3)?;
    let network = overlay_record("ipam-net", "10.0.9.0/24");
    let mut leases = Vec::new();
    for i in 0..3 {
        leases.push(cluster.client_on(i).grant_lease(60)?);
    }
    // Three hosts, ten allocations each, all at once.
    let mut threads = Vec::new();
    let started = Instant::now();
    for (i, lease) in leases.iter().copied().enumerate() {
        let etcd = runtime_etcd(&cluster, i);
        let netns = cluster.host(i).net.netns();
        let network = network.clone();
        threads.push(std::thread::spawn(move || {
            on_thread("ipam::allocate", Some(netns), move || {
                (0..10)
                    .map(|k| {
                        let id = format!("c{i}-{k}");
                        step07::ipam::allocate(&etcd, &network, &id, lease)
                            .map(|a| (a, id))
                            .map_err(|e| format!("{e:#}"))
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
        }));
    }
    let mut all = Vec::new();
    for thread in threads {
        let got = thread
            .join()
            .map_err(|_| Fail::new("a grader thread panicked"))??;
        all.extend(got.map_err(|why| {
            Fail::new("ipam::allocate on three hosts at once should succeed").seen(why)
        })?);
    }
    let elapsed = started.elapsed();
    let addresses: BTreeSet<Ipv4Addr> = all.iter().map(|(a, _)| *a).collect();
    ensure(addresses.len() == 30, || {
        Fail::new("30 allocations from three hosts at once get 30 distinct addresses")
            .seen(format!("{} distinct: {all:?}", addresses.len()))
    })?;
    let want: BTreeSet<Ipv4Addr> = (2..32).map(|n| Ipv4Addr::new(10, 0, 9, n)).collect();
    expect_eq(
        "they are the lowest 30 of the subnet from .2",
        want,
        addresses.clone(),
    )?;
    let grader = cluster.client_on(1);
    let keys = grader.prefix(&store::addresses_prefix(&network.name))?;
    for (address, id) in &all {
        let key = store::address_key(&network.name, *address);
        let kv = keys.iter().find(|kv| kv.key == key);
        let i: usize = id[1..2].parse().unwrap_or(0);
        ensure(
            kv.is_some_and(|kv| kv.value == *id && kv.lease == leases[i]),
            || {
                Fail::new(format!("{key} holds the container's id under its lease"))
                    .expected(format!("{id} (lease {})", leases[i]))
                    .seen(format!("{kv:?}"))
            },
        )?;
    }
    // Release: only by the holder.
    let first = Ipv4Addr::new(10, 0, 9, 2);
    let holder = all
        .iter()
        .find(|(a, _)| *a == first)
        .map(|(_, id)| id.clone())
        .unwrap_or_default();
    let name = network.name.clone();
    with_store(&cluster, 2, "ipam::release", move |e| {
        step07::ipam::release(e, &name, first, "someone-else")
    })?
    .map_err(|why| {
        Fail::new("ipam::release by a container that does not hold the address should return Ok")
            .seen(why)
    })?;
    let key = store::address_key(&network.name, first);
    let after = grader.prefix(&key)?.into_iter().find(|kv| kv.key == key);
    let holder_lease = all
        .iter()
        .find(|(a, _)| *a == first)
        .and_then(|(_, id)| id[1..2].parse::<usize>().ok())
        .map(|i| leases[i])
        .unwrap_or_default();
    ensure(
        after
            .as_ref()
            .is_some_and(|kv| kv.value == holder && kv.lease == holder_lease),
        || {
            Fail::new("a release by another id (someone-else) leaves the holder's address alone")
                .expected(format!("{key} = {holder} (lease {holder_lease})"))
                .seen(match &after {
                    Some(kv) => format!("{key} = {} (lease {})", kv.value, kv.lease),
                    None => format!("{key} is gone"),
                })
        },
    )?;
    let name = network.name.clone();
    let id = holder.clone();
    with_store(&cluster, 2, "ipam::release", move |e| {
        step07::ipam::release(e, &name, first, &id)
    })?
    .map_err(|why| Fail::new("ipam::release by the holder should succeed").seen(why))?;
    ensure(
        grader
            .get(&store::address_key(&network.name, first))?
            .is_none(),
        || {
            Fail::new(format!(
                "after its holder's release, {} is gone",
                store::address_key(&network.name, first)
            ))
        },
    )?;
    // The lowest again, and a full network is an error.
    let small = overlay_record("small-net", "10.0.8.0/29");
    let lease = leases[0];
    let net = network.clone();
    let got = with_store(&cluster, 0, "ipam::allocate", move |e| {
        let again = step07::ipam::allocate(e, &net, "again", lease)?;
        let mut small_got = Vec::new();
        for k in 0..6 {
            small_got.push(
                step07::ipam::allocate(e, &small, &format!("s{k}"), lease)
                    .map_err(|e| format!("{e:#}")),
            );
        }
        Ok((again, small_got))
    })?
    .map_err(|why| Fail::new("ipam::allocate should succeed").seen(why))?;
    expect_eq("the freed lowest address is given again", first, got.0)?;
    let small_ok: Vec<String> = got
        .1
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|a| a.to_string()))
        .collect();
    expect_eq(
        "a /29 has five addresses for containers (.2 to .6), then allocate fails",
        (
            vec!["10.0.8.2", "10.0.8.3", "10.0.8.4", "10.0.8.5", "10.0.8.6"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            true,
        ),
        (small_ok, got.1.last().is_some_and(|r| r.is_err())),
    )?;
    eprintln!("ipam: 30 allocations from 3 hosts in {elapsed:?}");
    grader.delete_prefix(PREFIX)?;
    Ok(())
}

fn endpoint_lives_with_its_lease(_ctx: &Ctx) -> Outcome {
    let cluster = start_cluster(1)?;
    let grader = cluster.client_on(0);
    let lease = grader.grant_lease(60)?;
    let mut ep = endpoint("abc123", [10, 0, 0, 2], [10, 99, 0, 1]);
    ep.network = "ep-net".into();
    let other = Endpoint {
        id: "def456".into(),
        ..ep.clone()
    };
    let (one, two) = (ep.clone(), other.clone());
    let other_lease = grader.grant_lease(60)?;
    with_store(&cluster, 0, "endpoints::register", move |e| {
        step07::endpoints::register(e, &one, lease)?;
        step07::endpoints::register(e, &two, other_lease)
    })?
    .map_err(|why| Fail::new("endpoints::register should succeed").seen(why))?;
    let key = store::endpoint_key("ep-net", "abc123");
    let kvs = grader.prefix(&key)?;
    let kv = kvs.iter().find(|kv| kv.key == key);
    let parsed: Option<Endpoint> = kv.and_then(|kv| serde_json::from_str(&kv.value).ok());
    ensure(
        kv.is_some_and(|kv| kv.lease == lease) && parsed.as_ref() == Some(&ep),
        || {
            Fail::new(format!("{key} holds the endpoint as JSON, under the lease"))
                .expected(format!(
                    "{} (lease {lease})",
                    serde_json::to_string(&ep).unwrap_or_default()
                ))
                .seen(format!("{kv:?}"))
        },
    )?;
    let listed = with_store(&cluster, 0, "endpoints::list", |e| {
        step07::endpoints::list(e, "ep-net")
    })?
    .map_err(|why| Fail::new("endpoints::list should succeed").seen(why))?;
    expect_eq(
        "endpoints::list gives both, by id",
        vec![ep.clone(), other.clone()],
        listed,
    )?;
    grader.revoke(lease)?;
    let listed = with_store(&cluster, 0, "endpoints::list", |e| {
        step07::endpoints::list(e, "ep-net")
    })?
    .map_err(|why| Fail::new("endpoints::list should succeed").seen(why))?;
    expect_eq(
        "once its lease is revoked, the endpoint is gone",
        vec![other],
        listed,
    )?;
    grader.put(&store::endpoint_key("ep-net", "zzz"), "not json")?;
    let bad = with_store(&cluster, 0, "endpoints::list", |e| {
        step07::endpoints::list(e, "ep-net")
    })?;
    ensure(bad.as_ref().is_err_and(|why| why.contains("zzz")), || {
        Fail::new("a value that is not an endpoint is an error naming its key")
            .seen(format!("{bad:?}"))
    })?;
    grader.delete_prefix(PREFIX)?;
    Ok(())
}

// --- The runtime, on three hosts ----------------------------------------

/// Three hosts with etcd, each with its own store (`--root`) and the probe
/// image: the runtime runs in each host's namespace.
struct Hosts<'a> {
    ctx: &'a Ctx,
    cluster: Cluster,
    roots: Vec<PathBuf>,
    _dirs: Vec<grader::TempDir>,
    /// The `--cluster-store` of every run.
    store: String,
}

impl<'a> Hosts<'a> {
    fn start(ctx: &'a Ctx) -> Result<Hosts<'a>, Fail> {
        let cluster = start_cluster(3)?;
        let store = format!("etcd://{}", cluster.endpoints().join(","));
        let mut dirs = Vec::new();
        let mut roots = Vec::new();
        for _ in 0..3 {
            let dir = ctx.temp_dir();
            roots.push(dir.path().join("root"));
            dirs.push(dir);
        }
        let hosts = Hosts {
            ctx,
            cluster,
            roots,
            _dirs: dirs,
            store,
        };
        let tar = hosts._dirs[0].path().join("probe.tar");
        ctx.rootfs()?.tar_to(&tar)?;
        for i in 0..3 {
            hosts.ok(
                i,
                &["import", &tar.to_string_lossy(), "probe"],
                "import of the probe image",
            )?;
        }
        Ok(hosts)
    }

    fn address(&self, i: usize) -> String {
        self.cluster.host(i).address.clone()
    }

    /// `minibox --root ROOT_i --cluster-store ... --cluster-advertise ADDR_i ARGS`
    /// in host `i`.
    fn minibox(&self, i: usize, args: &[&str]) -> Invocation {
        self.minibox_with(i, &self.store, args)
    }

    fn minibox_with(&self, i: usize, store: &str, args: &[&str]) -> Invocation {
        let root = self.roots[i].to_string_lossy().into_owned();
        let address = self.address(i);
        let mut full = vec![
            "--root",
            root.as_str(),
            "--cluster-store",
            store,
            "--cluster-advertise",
            address.as_str(),
        ];
        full.extend_from_slice(args);
        self.ctx
            .minibox(&full)
            .in_netns(&self.cluster.host(i).net.netns())
            .shown_as(format!("(host {}) minibox {}", i + 1, args.join(" ")))
    }

    fn ok(&self, i: usize, args: &[&str], why: &str) -> Result<String, Fail> {
        let out = self.minibox(i, args).output()?;
        out.expect_code(0, why)?;
        Ok(out.stdout_text())
    }

    fn server(&self, i: usize, name: &str, network: &str) -> Result<(), Fail> {
        self.ok(
            i,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                network,
                "probe",
                "grader-probe",
                "--probe",
                "listen",
                "80",
            ],
            "a detached server on the overlay should start",
        )?;
        let log = grader::poll(Duration::from_secs(5), || {
            let out = self.minibox(i, &["logs", name]).output().ok()?;
            out.stdout_text().contains("listen: ready").then_some(())
        });
        ensure(log.is_some(), || {
            Fail::new(format!("the server {name} should listen"))
        })
    }

    /// A client container on host `i`: what the probe's connect said.
    fn connect(&self, i: usize, network: &str, to: &str) -> Result<String, Fail> {
        let out = self.ok(
            i,
            &[
                "run",
                "--rm",
                "--network",
                network,
                "probe",
                "grader-probe",
                "--probe",
                "connect",
                to,
                "80",
            ],
            "the client container should run",
        )?;
        Ok(out
            .lines()
            .find_map(|l| l.strip_prefix("connect: "))
            .unwrap_or("(nothing)")
            .to_string())
    }

    fn inspect(&self, i: usize, what: &[&str]) -> Result<serde_json::Value, Fail> {
        let mut args = vec!["inspect"];
        args.extend_from_slice(what);
        let out = self.minibox(i, &args).output()?;
        out.expect_code(0, "inspect should work")?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            Fail::new("inspect should print JSON").seen(format!("{e}: {}", out.stdout_text()))
        })
    }

    fn address_of(&self, i: usize, container: &str, network: &str) -> Result<String, Fail> {
        let value = self.inspect(i, &[container])?;
        value[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Fail::new(format!(
                    "inspect {container}: NetworkSettings.Networks.{network}.IPAddress"
                ))
                .seen(value[0]["NetworkSettings"].to_string())
            })
    }

    fn netns(&self, i: usize) -> String {
        self.cluster.host(i).net.netns()
    }

    /// The links of host `i` that are not its own (lo, eth0).
    fn extra_links(&self, i: usize) -> Result<Vec<String>, Fail> {
        let shown = self.cluster.sh(i, "ip -o link show")?;
        Ok(shown
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            // minibox0 is step 05's default bridge (docker's docker0),
            // which `network ls` makes on first use: the host's, not the
            // overlay's.
            .filter(|n| !["lo", "eth0", "minibox0"].contains(&n.as_str()))
            .collect())
    }

    /// The end of an end-to-end check: every container removed, every
    /// network removed, and then nothing left: no link in a host but its
    /// own, no key of the project's in the store.
    fn finish(&self, networks: &[&str], strict: bool) -> Outcome {
        for i in 0..3 {
            let ids: Vec<String> = std::fs::read_dir(self.roots[i].join("containers"))
                .map(|d| {
                    d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                        .filter(|n| n.len() == 64)
                        .collect()
                })
                .unwrap_or_default();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                self.minibox(i, &args)
                    .output()?
                    .expect_code(0, "rm -f of every container")?;
            }
        }
        for network in networks {
            let out = self.minibox(0, &["network", "rm", network]).output()?;
            if strict {
                out.expect_code(0, "network rm, once no host has a container on it")?;
            }
        }
        for i in 0..3 {
            let extra = self.extra_links(i)?;
            ensure(extra.is_empty(), || {
                Fail::new(format!(
                    "after every container and network is removed, host {} has only lo, eth0 (and the default bridge)",
                    i + 1
                ))
                .seen(format!("{extra:?}"))
            })?;
        }
        let keys: Vec<String> = self
            .cluster
            .client_on(0)
            .prefix(PREFIX)?
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        ensure(keys.is_empty(), || {
            Fail::new(format!("after every container and network is removed, the store holds nothing under {PREFIX}"))
                .seen(keys.join("\n"))
        })
    }

    /// The VNI of overlay network `name`, from inspect on host `i`.
    fn vni(&self, i: usize, name: &str) -> Result<u32, Fail> {
        let value = self.inspect_network(i, name)?;
        value["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Fail::new(format!("network inspect {name}: Options.com.docker.network.driver.overlay.vxlanid_list, the VNI"))
                    .seen(value.to_string())
            })
    }

    fn inspect_network(&self, i: usize, name: &str) -> Result<serde_json::Value, Fail> {
        let out = self.minibox(i, &["network", "inspect", name]).output()?;
        out.expect_code(0, "network inspect should work")?;
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            Fail::new("network inspect should print JSON")
                .seen(format!("{e}: {}", out.stdout_text()))
        })?;
        Ok(all[0].clone())
    }

    /// A failure `what`, with what host 3 held for the VNIs `vnis` (its
    /// FDB and neighbour entries on their devices) and the endpoints the
    /// store held.
    fn isolation_state(&self, vnis: &[u32], what: &str) -> Fail {
        let mut seen = String::new();
        for vni in vnis {
            let dev = format!("ovx{vni}");
            let fdb = grader::overlay::fdb(&self.netns(2), &dev)
                .map(|v| {
                    v.iter()
                        .map(|e| {
                            format!(
                                "{} dst {:?} own {} permanent {}",
                                e.mac, e.dst, e.own, e.permanent
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_else(|e| format!("{e:?}"));
            let neigh = grader::overlay::neighbours(&self.netns(2), &dev)
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|e| format!("{e:?}"));
            seen.push_str(&format!(
                "host 3 {dev} fdb: {fdb}\nhost 3 {dev} neigh: {neigh}\n"
            ));
        }
        let endpoints = self
            .cluster
            .client_on(2)
            .prefix(&format!("{PREFIX}endpoints/"))
            .map(|kv| {
                kv.into_iter()
                    .map(|kv| format!("{} = {}", kv.key, kv.value))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|e| format!("{e:?}"));
        seen.push_str(&format!("endpoints in etcd:\n{endpoints}"));
        Fail::new(what).seen(seen)
    }

    /// The neighbour entries (IP, MAC) of host `i`'s VXLAN devices.
    fn remote_neighbours(&self, i: usize) -> Result<Vec<(String, String)>, Fail> {
        let mut out = Vec::new();
        for vxlan in grader::overlay::vxlans(&self.netns(i))? {
            for n in grader::overlay::neighbours(&self.netns(i), &vxlan.name)? {
                out.push((n.ip.to_string(), n.mac.unwrap_or_default()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The permanent FDB entries (MAC, VTEP) of host `i`'s VXLAN devices.
    fn remote_entries(&self, i: usize) -> Result<Vec<(String, String)>, Fail> {
        let mut out = Vec::new();
        for vxlan in grader::overlay::vxlans(&self.netns(i))? {
            for e in grader::overlay::fdb(&self.netns(i), &vxlan.name)? {
                if e.own && e.permanent {
                    out.push((e.mac, e.dst.map(|d| d.to_string()).unwrap_or_default()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// An end-to-end check on three fresh hosts: `body`, then (whatever it
/// did) every container and the `networks` removed, and nothing left.
fn e2e(ctx: &Ctx, networks: &[&str], body: fn(&mut Hosts) -> Outcome) -> Outcome {
    let mut hosts = Hosts::start(ctx)?;
    let outcome = body(&mut hosts);
    let clean = hosts.finish(networks, outcome.is_ok());
    outcome.and(clean)
}

fn reached(said: &str) -> bool {
    said.starts_with("ok hello from")
}

fn containers_reach_across_hosts(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], containers_reach_across_hosts_on)
}

fn containers_reach_across_hosts_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay",
    )?;
    let vni = hosts.vni(0, "ov")?;
    for i in 0..3 {
        let ls = hosts.ok(i, &["network", "ls"], "network ls")?;
        ensure(
            ls.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.get(1) == Some(&"ov") && w.get(2) == Some(&"overlay")
            }),
            || {
                Fail::new(format!(
                    "network ls on host {} lists ov with the driver overlay",
                    i + 1
                ))
                .seen(&ls)
            },
        )?;
        let value = hosts.inspect_network(i, "ov")?;
        ensure(
            value["Driver"] == "overlay"
                && value["Scope"] == "global"
                && hosts.vni(i, "ov")? == vni,
            || {
                Fail::new(format!(
                    "network inspect ov on host {} says driver overlay, scope global, the same VNI",
                    i + 1
                ))
                .seen(value.to_string())
            },
        )?;
    }
    hosts.server(0, "alpha", "ov")?;
    hosts.server(2, "gamma", "ov")?;
    let alpha = hosts.address_of(0, "alpha", "ov")?;
    let gamma = hosts.address_of(2, "gamma", "ov")?;
    // Reached once C's sync has A's entries: at once (the run syncs) or
    // within a tick.
    let started = Instant::now();
    let by_name = grader::poll(Duration::from_secs(10), || {
        let said = hosts.connect(2, "ov", "alpha").ok()?;
        reached(&said).then_some(said)
    });
    let first = started.elapsed();
    ensure(by_name.is_some(), || {
        Fail::new("a container on host 3 reaches alpha (on host 1) by name over the overlay").seen(
            hosts
                .connect(2, "ov", "alpha")
                .unwrap_or_else(|f| f.to_string()),
        )
    })?;
    let said = hosts.connect(2, "ov", &alpha)?;
    ensure(reached(&said), || {
        Fail::new(format!(
            "a container on host 3 reaches alpha by its address {alpha}"
        ))
        .seen(&said)
    })?;
    let said = hosts.connect(0, "ov", "gamma")?;
    ensure(reached(&said), || {
        Fail::new("a container on host 1 reaches gamma (on host 3) by name").seen(&said)
    })?;
    let said = hosts.connect(0, "ov", &gamma)?;
    ensure(reached(&said), || {
        Fail::new(format!(
            "a container on host 1 reaches gamma by its address {gamma}"
        ))
        .seen(&said)
    })?;
    let hosts_file = hosts.ok(2, &["exec", "gamma", "cat", "/etc/hosts"], "exec")?;
    ensure(
        hosts_file.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(alpha.as_str()) && w.next() == Some("alpha")
        }),
        || Fail::new("gamma's /etc/hosts names alpha, on another host").seen(&hosts_file),
    )?;
    let vxlans = grader::overlay::vxlans(&hosts.netns(1))?;
    ensure(vxlans.is_empty(), || {
        Fail::new("host 2, with no container on ov, has no VXLAN device for it")
            .seen(format!("{vxlans:?}"))
    })?;
    // network rm is refused while a host has an endpoint.
    let out = hosts.minibox(1, &["network", "rm", "ov"]).output()?;
    out.expect_code(
        125,
        "network rm of a network with containers on other hosts should fail",
    )?;
    out.expect_one_error_line("ov")?;
    // Datagrams between the two containers' namespaces, 20 round trips.
    let alpha_ip: Ipv4Addr = alpha.parse().map_err(|_| Fail::new("an IPv4 address"))?;
    let gamma_ip: Ipv4Addr = gamma.parse().map_err(|_| Fail::new("an IPv4 address"))?;
    let server = udp_in_container(hosts, 0, "alpha", alpha_ip)?;
    let client = udp_in_container(hosts, 2, "gamma", gamma_ip)?;
    let mut samples = Vec::new();
    for sequence in 0..20 {
        if let Some(took) = round_trip(&client, &server, sequence) {
            samples.push(took);
        }
    }
    ensure(samples.len() >= 15, || {
        Fail::new(format!(
            "UDP datagrams between gamma ({gamma}) and alpha ({alpha}) go both ways"
        ))
        .seen(format!("{} of 20 round trips", samples.len()))
    })?;
    samples.sort();
    eprintln!(
        "overlay: first connection across hosts after {first:?}; UDP round trip host 3 <-> host 1, median {:?}",
        samples[samples.len() / 2]
    );
    Ok(())
}

/// A UDP socket bound to `address:7007` in the network namespace of
/// container `name` on host `i` (its init's `/proc/PID/ns/net`).
fn udp_in_container(
    hosts: &Hosts,
    i: usize,
    name: &str,
    address: Ipv4Addr,
) -> Result<std::net::UdpSocket, Fail> {
    let value = hosts.inspect(i, &[name])?;
    let pid = value[0]["State"]["Pid"].as_i64().unwrap_or(0);
    let socket = on_thread("bind", Some(format!("/proc/{pid}/ns/net")), move || {
        std::net::UdpSocket::bind((address, 7007)).map_err(|e| e.to_string())
    })?;
    socket
        .map_err(|e| Fail::new(format!("the grader cannot bind {address}:7007 in {name}")).seen(e))
}

/// One datagram from `client` to `server` and back: the time it took, or
/// None if either way got nothing within a second.
fn round_trip(
    client: &std::net::UdpSocket,
    server: &std::net::UdpSocket,
    sequence: u64,
) -> Option<Duration> {
    let message = sequence.to_be_bytes();
    let timeout = Some(Duration::from_secs(1));
    client.set_read_timeout(timeout).ok()?;
    server.set_read_timeout(timeout).ok()?;
    let started = Instant::now();
    client.send_to(&message, server.local_addr().ok()?).ok()?;
    let mut buffer = [0u8; 64];
    let from = loop {
        let (n, from) = server.recv_from(&mut buffer).ok()?;
        if buffer[..n] == message {
            break from;
        }
    };
    server.send_to(&message, from).ok()?;
    loop {
        let (n, _) = client.recv_from(&mut buffer).ok()?;
        if buffer[..n] == message {
            return Some(started.elapsed());
        }
    }
}

fn underlay_carries_the_vni(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], underlay_carries_the_vni_on)
}

fn underlay_carries_the_vni_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay",
    )?;
    let vni = hosts.vni(0, "ov")?;
    hosts.server(0, "alpha", "ov")?;
    let alpha: Ipv4Addr = hosts
        .address_of(0, "alpha", "ov")?
        .parse()
        .map_err(|_| Fail::new("an IPv4 address"))?;
    let mut capture =
        grader::overlay::Capture::open(&hosts.cluster.underlay().netns(), "ul-h1", 4789)?;
    let said = hosts.connect(2, "ov", "alpha")?;
    ensure(reached(&said), || {
        Fail::new("a container on host 3 reaches alpha").seen(&said)
    })?;
    let (a, c): (Ipv4Addr, Ipv4Addr) = (
        hosts.address(0).parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        hosts.address(2).parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
    );
    let found = capture.wait_for(Duration::from_secs(5), |p| {
        p.outer_src == c
            && p.outer_dst == a
            && p.udp_port == 4789
            && p.vni == vni
            && p.inner_dst == Some(alpha)
    });
    ensure(found.is_some(), || {
        Fail::new(format!("on the underlay, a VXLAN packet {c} -> {a}:4789 with VNI {vni}, carrying a packet to {alpha}"))
            .seen(capture.shown())
    })?;
    let inner_src = found.and_then(|p| p.inner_src);
    ensure(
        inner_src.is_some_and(|s| s != c && s.octets()[..3] == alpha.octets()[..3]),
        || {
            Fail::new("inside it, the client container's own overlay address (not its host's)")
                .seen(format!("{inner_src:?}"))
        },
    )?;
    Ok(())
}

fn mtu_1450_and_no_learning(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], mtu_1450_and_no_learning_on)
}

fn mtu_1450_and_no_learning_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay",
    )?;
    let vni = hosts.vni(0, "ov")?;
    hosts.server(0, "alpha", "ov")?;
    let mtu = hosts.ok(
        0,
        &["exec", "alpha", "cat", "/sys/class/net/eth0/mtu"],
        "exec",
    )?;
    expect_eq(
        "the container's eth0 MTU (the underlay's 1500 - 50)",
        "1450",
        mtu.trim(),
    )?;
    let vxlans = grader::overlay::vxlans(&hosts.netns(0))?;
    ensure(
        vxlans.len() == 1
            && vxlans[0].vni == vni
            && vxlans[0].port == 4789
            && !vxlans[0].learning
            && vxlans[0].proxy
            && vxlans[0].local == hosts.address(0).parse().ok()
            && vxlans[0].device.as_deref() == Some("eth0")
            && vxlans[0].mtu == 1450
            && vxlans[0].master.is_some(),
        || {
            Fail::new("host 1 has one VXLAN device for ov: its VNI, port 4789, nolearning, proxy, local 10.99.0.1 on eth0, MTU 1450, a port of a bridge")
                .seen(format!("{vxlans:?}"))
        },
    )?;
    Ok(())
}

fn overlay_networks_are_isolated(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov1", "ov2"], overlay_networks_are_isolated_on)
}

fn overlay_networks_are_isolated_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov1"],
        "network create -d overlay",
    )?;
    hosts.ok(
        1,
        &["network", "create", "-d", "overlay", "ov2"],
        "network create -d overlay (from another host)",
    )?;
    let (v1, v2) = (hosts.vni(2, "ov1")?, hosts.vni(2, "ov2")?);
    ensure(v1 != v2, || {
        Fail::new("two overlay networks have two VNIs").seen(format!("{v1} and {v2}"))
    })?;
    hosts.server(0, "alpha", "ov1")?;
    let alpha = hosts.address_of(0, "alpha", "ov1")?;
    // The clients live on host 3 before they probe: a `run --rm` client
    // would race host 1's tick (its reply has nowhere to go until host 1
    // holds the client's entries) against the probe's 2 s connect.
    hosts.server(2, "gamma", "ov1")?;
    hosts.server(2, "delta", "ov2")?;
    let gamma = hosts.address_of(2, "gamma", "ov1")?;
    let mac = |a: &str| a.parse().map(store::mac_of).unwrap_or_default();
    let (alpha_mac, gamma_mac) = (mac(&alpha), mac(&gamma));
    // Wait for the states the probe needs: host 3 sends alpha's frames to
    // host 1 and host 1 sends gamma's to host 3, both with their ARP entry.
    let ready = grader::poll(Duration::from_secs(10), || {
        let on1 = hosts.remote_entries(0).ok()?;
        let on3 = hosts.remote_entries(2).ok()?;
        let n1 = grader::overlay::neighbours(&hosts.netns(0), &format!("ovx{v1}")).ok()?;
        let n3 = grader::overlay::neighbours(&hosts.netns(2), &format!("ovx{v1}")).ok()?;
        (on1.contains(&(gamma_mac.clone(), hosts.address(2)))
            && on3.contains(&(alpha_mac.clone(), hosts.address(0)))
            && n1.iter().any(|n| n.ip.to_string() == gamma)
            && n3.iter().any(|n| n.ip.to_string() == alpha))
        .then_some(())
    });
    let why = |what: &str| hosts.isolation_state(&[v1, v2], what);
    ensure(ready.is_some(), || {
        why("within 10 s, host 1 holds gamma's FDB and neighbour entries (behind host 3) and host 3 alpha's (behind host 1)")
    })?;
    let probe = |to: &str, container: &str| -> Result<String, Fail> {
        let out = hosts.ok(
            2,
            &[
                "exec",
                container,
                "grader-probe",
                "--probe",
                "connect",
                to,
                "80",
            ],
            "exec of the probe in a container on host 3",
        )?;
        Ok(out
            .lines()
            .find_map(|l| l.strip_prefix("connect: "))
            .unwrap_or("(nothing)")
            .to_string())
    };
    let said = probe("alpha", "gamma")?;
    ensure(reached(&said), || {
        why("a container of ov1 on host 3 reaches alpha").seen(&said)
    })?;
    let said = probe(&alpha, "delta")?;
    ensure(!reached(&said), || {
        why(&format!(
            "a container of ov2 must not reach alpha of ov1 by its address {alpha}"
        ))
        .seen(&said)
    })?;
    let said = probe("alpha", "delta")?;
    expect_eq("nor know its name", "unknown-host", said.as_str())?;
    Ok(())
}

fn parallel_runs_get_distinct_addresses(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], parallel_runs_get_distinct_addresses_on)
}

fn parallel_runs_get_distinct_addresses_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay",
    )?;
    let started = Instant::now();
    let outputs: Vec<Result<Output, Fail>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..30)
            .map(|k| {
                let hosts = &hosts;
                scope.spawn(move || {
                    hosts
                        .minibox(
                            k % 3,
                            &[
                                "run",
                                "-d",
                                "--network",
                                "ov",
                                "probe",
                                "grader-probe",
                                "--probe",
                                "listen",
                                "80",
                            ],
                        )
                        .output()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Fail::new("a thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut ids = [Vec::new(), Vec::new(), Vec::new()];
    for (k, out) in outputs.into_iter().enumerate() {
        let out = out?;
        out.expect_code(0, "each of 30 parallel run -d should start its container")?;
        ids[k % 3].push(out.stdout_text().trim().to_string());
    }
    let mut addresses = BTreeSet::new();
    for (i, list) in ids.iter().enumerate() {
        let mut args: Vec<&str> = list.iter().map(String::as_str).collect();
        args.insert(0, "inspect");
        let out = hosts.minibox(i, &args).output()?;
        out.expect_code(0, "inspect")?;
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for c in all.as_array().cloned().unwrap_or_default() {
            if let Some(a) = c["NetworkSettings"]["Networks"]["ov"]["IPAddress"].as_str() {
                addresses.insert(a.to_string());
            }
        }
    }
    ensure(addresses.len() == 30, || {
        Fail::new("30 runs at once on three hosts: 30 distinct addresses")
            .seen(format!("{} distinct: {addresses:?}", addresses.len()))
    })?;
    let held = hosts
        .cluster
        .client_on(1)
        .prefix(&store::addresses_prefix("ov"))?;
    expect_eq("the store holds 30 address keys of ov", 30, held.len())?;
    eprintln!("overlay: 30 parallel runs on 3 hosts in {elapsed:?}");
    Ok(())
}

fn gone_containers_vanish_everywhere(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], gone_containers_vanish_everywhere_on)
}

fn gone_containers_vanish_everywhere_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay",
    )?;
    hosts.server(0, "alpha", "ov")?;
    hosts.server(1, "beta", "ov")?;
    hosts.server(2, "gamma", "ov")?;
    let alpha_ip = hosts.address_of(0, "alpha", "ov")?;
    let beta_ip = hosts.address_of(1, "beta", "ov")?;
    let alpha_mac = store::mac_of(alpha_ip.parse().map_err(|_| Fail::new("an address"))?);
    let beta_mac = store::mac_of(beta_ip.parse().map_err(|_| Fail::new("an address"))?);
    let mut neighbours = vec![
        (alpha_ip.clone(), alpha_mac.clone()),
        (beta_ip.clone(), beta_mac.clone()),
    ];
    neighbours.sort();
    let both = vec![
        (alpha_mac.clone(), hosts.address(0)),
        (beta_mac.clone(), hosts.address(1)),
    ];
    let mut sorted = both.clone();
    sorted.sort();
    let seen = grader::poll(Duration::from_secs(5), || {
        let e = hosts.remote_entries(2).ok()?;
        let n = hosts.remote_neighbours(2).ok()?;
        (e == sorted && n == neighbours).then_some(e)
    });
    ensure(seen.is_some(), || {
        Fail::new("host 3 holds FDB entries for alpha (behind host 1) and beta (behind host 2), their neighbour entries, and no more")
            .expected(format!("fdb {sorted:?}\nneigh {neighbours:?}"))
            .seen(format!(
                "fdb {:?}\nneigh {:?}",
                hosts.remote_entries(2),
                hosts.remote_neighbours(2)
            ))
    })?;
    // Stop: at once (a tick) from every host.
    hosts.ok(1, &["stop", "-t", "1", "beta"], "stop")?;
    let stopped = Instant::now();
    for i in [0usize, 2] {
        let gone = grader::poll(Duration::from_secs(5), || {
            let e = hosts.remote_entries(i).ok()?;
            let names = hosts
                .ok(
                    i,
                    &[
                        "exec",
                        if i == 0 { "alpha" } else { "gamma" },
                        "cat",
                        "/etc/hosts",
                    ],
                    "exec",
                )
                .ok()?;
            let n = hosts.remote_neighbours(i).ok()?;
            (!e.iter().any(|(m, _)| *m == beta_mac)
                && !n.iter().any(|(ip, _)| *ip == beta_ip)
                && !names.contains("beta"))
            .then_some(())
        });
        ensure(gone.is_some(), || {
            Fail::new(format!("after stop beta, host {} holds no FDB or neighbour entry of beta's and its container's /etc/hosts no name", i + 1))
                .seen(format!(
                    "fdb {:?}\nneigh {:?}",
                    hosts.remote_entries(i),
                    hosts.remote_neighbours(i)
                ))
        })?;
    }
    let after_stop = stopped.elapsed();
    // SIGKILL of alpha's monitor: no cleanup runs; the lease expires.
    let monitor = hosts.inspect(0, &["alpha"])?;
    let pid = monitor_pid(hosts, 0, monitor[0]["Id"].as_str().unwrap_or_default())?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| Fail::new("the grader could not kill alpha's monitor").seen(e))?;
    let killed = Instant::now();
    let bound = Duration::from_secs(store::LEASE_TTL as u64 + 10);
    let gone = grader::poll(bound, || {
        let e = hosts.remote_entries(2).ok()?;
        let n = hosts.remote_neighbours(2).ok()?;
        (!e.iter().any(|(m, _)| *m == alpha_mac) && !n.iter().any(|(ip, _)| *ip == alpha_ip))
            .then_some(())
    });
    ensure(gone.is_some(), || {
        Fail::new(format!("within the lease's TTL ({} s) and a sync after alpha's monitor was killed, host 3 holds no FDB or neighbour entry of alpha's", store::LEASE_TTL))
            .seen(format!(
                "fdb {:?}\nneigh {:?}",
                hosts.remote_entries(2),
                hosts.remote_neighbours(2)
            ))
    })?;
    let after_kill = killed.elapsed();
    let keys: Vec<String> = hosts
        .cluster
        .client_on(2)
        .prefix(&store::endpoints_prefix("ov"))?
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    ensure(keys.len() == 1, || {
        Fail::new("only gamma's endpoint is left in the store").seen(keys.join("\n"))
    })?;
    eprintln!("overlay: entries gone {after_stop:?} after stop, {after_kill:?} after SIGKILL (lease {} s)", store::LEASE_TTL);
    Ok(())
}

/// The monitor of container `id` on host `i`: its record's `Monitor.Pid`
/// (`ROOT/containers/ID/config.v1.json`, step 04's record).
fn monitor_pid(hosts: &Hosts, i: usize, id: &str) -> Result<i32, Fail> {
    let dir = hosts.roots[i].join("containers").join(id);
    for file in ["config.v1.json"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                for path in [&["Monitor", "Pid"][..], &["monitor", "pid"][..]] {
                    let mut v = &value;
                    for k in path {
                        v = &v[*k];
                    }
                    if let Some(pid) = v.as_i64().filter(|p| *p > 0) {
                        return Ok(pid as i32);
                    }
                }
            }
        }
    }
    Err(
        Fail::new("the grader cannot find the container's monitor in its record")
            .seen(dir.display()),
    )
}

fn store_down_is_one_line(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], store_down_is_one_line_on)
}

fn store_down_is_one_line_on(hosts: &mut Hosts) -> Outcome {
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay",
    )?;
    let before: Vec<(String, String)> = hosts
        .cluster
        .client_on(0)
        .prefix(PREFIX)?
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    // Nobody answers at 10.99.0.250 (no such host), nor on port 1 of a
    // host (refused at once).
    let started = Instant::now();
    let nowhere = "etcd://10.99.0.250:2379,10.99.0.1:1";
    let out = hosts
        .minibox_with(
            1,
            nowhere,
            &["run", "--name", "lost", "--network", "ov", "probe", "true"],
        )
        .output()?;
    let took = started.elapsed();
    out.expect_code(
        125,
        "run --network OVERLAY with the store unreachable should fail",
    )?;
    out.expect_one_error_line("cluster store")?;
    ensure(took < Duration::from_secs(10), || {
        Fail::new("it fails within seconds (short timeouts per member)").seen(format!("{took:?}"))
    })?;
    let dirs = std::fs::read_dir(hosts.roots[1].join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    expect_eq("no container is left on host 2", 0, dirs)?;
    let extra = hosts.extra_links(1)?;
    ensure(extra.is_empty(), || {
        Fail::new("no link is left on host 2").seen(format!("{extra:?}"))
    })?;
    let after: Vec<(String, String)> = hosts
        .cluster
        .client_on(0)
        .prefix(PREFIX)?
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    expect_eq(
        "the store holds what it held before (the network only)",
        before,
        after,
    )?;
    // And the store back: the same run works.
    let said = hosts.ok(
        1,
        &["run", "--rm", "--network", "ov", "probe", "true"],
        "the same run with the store reachable",
    )?;
    let _ = said;
    eprintln!("overlay: store unreachable, run failed in {took:?}");
    Ok(())
}

fn works_with_a_member_down(ctx: &Ctx) -> Outcome {
    e2e(ctx, &["ov"], works_with_a_member_down_on)
}

fn works_with_a_member_down_on(hosts: &mut Hosts) -> Outcome {
    // The leader itself: the other two elect another (a second or two),
    // then every call works again, whichever member it is sent to first.
    let leader = hosts.cluster.leader()?;
    hosts.cluster.kill_member(leader)?;
    hosts.cluster.wait_for_leader(Duration::from_secs(30))?;
    hosts.ok(
        0,
        &["network", "create", "-d", "overlay", "ov"],
        "network create -d overlay with one member of three down",
    )?;
    hosts.server(0, "alpha", "ov")?;
    let said = grader::poll(Duration::from_secs(10), || {
        let said = hosts.connect(2, "ov", "alpha").ok()?;
        reached(&said).then_some(said)
    });
    ensure(said.is_some(), || {
        Fail::new("with a member down, a container on host 3 reaches alpha by name")
    })?;
    Ok(())
}
