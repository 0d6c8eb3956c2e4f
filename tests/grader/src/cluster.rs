//! A lab of several "hosts" and a real etcd cluster on them: where the
//! overlay checks (step 07) will run containers of one network across
//! machines.
//!
//! Every host is a network namespace of its own (a [`NetLab`]); an
//! "underlay" namespace holds the switch between them, a bridge, and each
//! host has a veth cable plugged into it, with an address on one underlay
//! subnet that exists only in the lab:
//!
//! ```text
//!   host1 (10.99.0.1)   host2 (10.99.0.2)   host3 (10.99.0.3)
//!        eth0                eth0                eth0
//!         |                   |                   |
//!       ul-h1 ------------- ul-h2 ------------- ul-h3
//!                     ul-br (bridge, underlay namespace)
//! ```
//!
//! In shell, for host 1 (`$U`, `$H1`: the namespaces' holder pids):
//!
//! ```text
//! nsenter --net=/proc/$U/ns/net ip link add ul-br type bridge
//! nsenter --net=/proc/$U/ns/net ip link add ul-h1 type veth peer name eth0 netns $H1
//! nsenter --net=/proc/$U/ns/net ip link set ul-h1 master ul-br up
//! nsenter --net=/proc/$H1/ns/net ip addr add 10.99.0.1/24 dev eth0
//! nsenter --net=/proc/$H1/ns/net ip link set eth0 up
//! ```
//!
//! Each host then runs one etcd member, started inside its namespace, so
//! the only addresses it can listen on are the host's own: its underlay
//! address and its loopback, never the machine's. The members find each
//! other through `--initial-cluster` (all of them, by peer URL) and elect a
//! leader by Raft: a majority (2 of 3) must be up for anything to be
//! written.
//!
//! The grader talks to the cluster as a host would: [`Cluster::client_on`]
//! gives an [`Etcd`] client that dials from host `i`'s namespace and tries
//! its own member first. Nothing of the lab is reachable from the machine's
//! own namespace, and nothing is tried from there.
//!
//! Dropping the cluster kills its etcd members (its own pids), waits for
//! them, then ends the namespaces (their holders): the veths, the bridge
//! and the addresses go with them, and the members' data dirs with the
//! temp dir.

use crate::check::Fail;
use crate::etcd::Etcd;
use crate::{NetLab, TempDir};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The underlay subnet (/24): host `i` (from 0) is `10.99.0.{i+1}`.
pub const UNDERLAY: &str = "10.99.0";
/// etcd's registered ports: clients (the gateway), and peers (Raft).
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
/// How long a cluster may take to elect its first leader: 0.3 to 3 s on a
/// busy 2-core machine (the first election waits out a randomized election
/// timeout, 1 to 2 s by default, unless a member's ticks run out early),
/// and many times that with a cargo build beside it.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One host of the lab: a network namespace with a cable to the underlay.
pub struct Host {
    pub net: NetLab,
    /// `host1`: also its etcd member's name.
    pub name: String,
    /// Its underlay address, `10.99.0.1`.
    pub address: String,
}

/// One etcd member, started by us.
struct Member {
    /// `None` once killed and waited for.
    child: Option<Child>,
    log: PathBuf,
}

/// The hosts, their underlay, and one etcd member on each.
pub struct Cluster {
    /// Ended first (by [`Drop`]), while their namespaces still exist.
    members: Vec<Member>,
    hosts: Vec<Host>,
    underlay: NetLab,
    /// The members' data dirs and logs.
    dir: TempDir,
    /// `--initial-cluster-token`: unique to this cluster, so members of two
    /// labs could never join each other's cluster.
    token: String,
}

impl Cluster {
    /// Why a cluster can't be started on this machine, if it can't: for
    /// checks to skip with one line instead of failing.
    pub fn unavailable() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("needs root (network namespaces, veths, a bridge)".into());
        }
        for (program, package) in [
            ("etcd", "etcd-server"),
            ("nsenter", "util-linux"),
            ("ip", "iproute2"),
        ] {
            if crate::which(program).is_none() {
                return Some(format!(
                    "`{program}` is not installed (apt-get install {package}, or .ci/install)"
                ));
            }
        }
        None
    }

    /// `n` hosts on an underlay, an etcd member on each, and a leader
    /// elected (at most [`START_TIMEOUT`]).
    pub fn start(n: usize) -> Result<Cluster, Fail> {
        Cluster::start_with(n, &[])
    }

    /// [`Cluster::start`], with more flags for every etcd member (say
    /// `--election-timeout 2000 --heartbeat-interval 200` for a slow
    /// machine).
    pub fn start_with(n: usize, extra: &[&str]) -> Result<Cluster, Fail> {
        assert!((1..=250).contains(&n), "a lab has 1 to 250 hosts");
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = TempDir::new("cluster");
        let underlay = NetLab::new()?;
        let mut cluster = Cluster {
            members: Vec::new(),
            hosts: Vec::new(),
            underlay,
            dir,
            token: format!(
                "minibox-lab-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        };
        // From here on, any `?` drops `cluster`, which removes what exists.
        cluster
            .underlay
            .sh("ip link add ul-br type bridge && ip link set ul-br up")?;
        for i in 0..n {
            cluster.add_host(i)?;
        }
        for i in 0..n {
            cluster.start_member(i, extra)?;
        }
        cluster.wait_for_leader(START_TIMEOUT)?;
        Ok(cluster)
    }

    /// Host `i`: a namespace, a veth from it to the underlay bridge, its
    /// address, and the link up.
    fn add_host(&mut self, i: usize) -> Result<(), Fail> {
        let net = NetLab::new()?;
        let (name, address) = (format!("host{}", i + 1), format!("{UNDERLAY}.{}", i + 1));
        // Made in the underlay namespace, one end moved at once into the
        // host's (`netns PID`): neither end ever exists in the machine's.
        self.underlay.sh(&format!(
            "ip link add ul-h{n} type veth peer name eth0 netns {pid} && ip link set ul-h{n} master ul-br && ip link set ul-h{n} up",
            n = i + 1,
            pid = net.pid
        ))?;
        net.sh(&format!(
            "ip addr add {address}/24 dev eth0 && ip link set eth0 up"
        ))?;
        self.hosts.push(Host { net, name, address });
        Ok(())
    }

    /// etcd on host `i`, listening on its underlay address only:
    ///
    /// ```text
    /// nsenter --net=/proc/$H1/ns/net etcd --name host1 --data-dir DIR/host1 \
    ///   --listen-client-urls http://10.99.0.1:2379 --advertise-client-urls http://10.99.0.1:2379 \
    ///   --listen-peer-urls http://10.99.0.1:2380 --initial-advertise-peer-urls http://10.99.0.1:2380 \
    ///   --initial-cluster host1=http://10.99.0.1:2380,host2=http://10.99.0.2:2380,... \
    ///   --initial-cluster-state new --initial-cluster-token TOKEN
    /// ```
    fn start_member(&mut self, i: usize, extra: &[&str]) -> Result<(), Fail> {
        let host = &self.hosts[i];
        let initial: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("{}=http://{}:{PEER_PORT}", h.name, h.address))
            .collect();
        let client = format!("http://{}:{CLIENT_PORT}", host.address);
        let peer = format!("http://{}:{PEER_PORT}", host.address);
        let data = self.dir.path().join(&host.name);
        let log = self.dir.path().join(format!("{}.log", host.name));
        let file = std::fs::File::create(&log)
            .map_err(|e| Fail::new("the grader could not create an etcd log file").seen(e))?;
        let err = file
            .try_clone()
            .map_err(|e| Fail::new("the grader could not dup an etcd log file").seen(e))?;
        let mut command = host.net.command("etcd", &[]);
        command
            .args(["--name", &host.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--logger", "zap"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        // etcd reads ETCD_NAME, ETCD_DATA_DIR, ... from its environment,
        // over its defaults: none of the machine's may reach a lab member.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(key);
            }
        }
        // Upstream etcd 3.4 refuses to start on an architecture it does not
        // list (arm64 among them: a VM on an Apple laptop) unless this names
        // it, in Go's words; Debian's build only warns.
        match std::env::consts::ARCH {
            "x86_64" => {}
            "aarch64" => {
                command.env("ETCD_UNSUPPORTED_ARCH", "arm64");
            }
            other => {
                command.env("ETCD_UNSUPPORTED_ARCH", other);
            }
        }
        // SAFETY: prctl(2) is a plain system call, safe between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // PR_SET_PDEATHSIG: if the grader dies without its Drop (a
                // timeout's SIGKILL), the kernel kills the member too,
                // instead of leaving it serving in an orphaned namespace. It
                // survives exec (nsenter execs etcd); it fires when the
                // *thread* that started it ends, so a cluster must not
                // outlive the thread that started it.
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                Ok(())
            });
        }
        // nsenter without --fork execs etcd in place: the child's pid is
        // etcd's.
        let child = command.spawn().map_err(|e| {
            Fail::new(format!("the grader could not start etcd on {}", host.name)).seen(e)
        })?;
        self.members.push(Member {
            child: Some(child),
            log,
        });
        Ok(())
    }

    /// Wait (polling, at most `timeout`) until every running member answers
    /// and all name the same leader; on failure, what each one said, and
    /// the end of its log.
    pub fn wait_for_leader(&mut self, timeout: Duration) -> Result<u64, Fail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut said = Vec::new();
            let mut leaders = Vec::new();
            for i in 0..self.members.len() {
                let Some(child) = self.members[i].child.as_mut() else {
                    continue; // killed on purpose
                };
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Fail::new(format!(
                        "etcd on {} ended while the cluster was starting",
                        self.hosts[i].name
                    ))
                    .seen(format!(
                        "{}; its log ends with:\n{}",
                        crate::process::describe_status(status),
                        self.log_tail(i, 8)
                    )));
                }
                let answer = Etcd::new(self.hosts[i].net.netns(), &[self.endpoint(i)])
                    .with_timeout(Duration::from_secs(2))
                    .status();
                match &answer {
                    Ok(status) if status.leader != 0 => leaders.push(status.leader),
                    Ok(status) => said.push((i, format!("no leader yet: {status:?}"))),
                    Err(fail) => said.push((i, fail.to_string())),
                }
            }
            let agreed = leaders.windows(2).all(|w| w[0] == w[1]);
            if said.is_empty() && agreed && !leaders.is_empty() {
                return Ok(leaders[0]);
            }
            if Instant::now() >= deadline {
                let text: Vec<String> = said
                    .iter()
                    .map(|(i, what)| {
                        format!(
                            "{} ({}): {what}\n  its log ends with:\n{}",
                            self.hosts[*i].name,
                            self.endpoint(*i),
                            self.log_tail(*i, 6)
                        )
                    })
                    .collect();
                return Err(Fail::new(format!(
                    "the etcd cluster should elect a leader within {} s",
                    timeout.as_secs()
                ))
                .expected("every member answering /v3/maintenance/status, naming one leader")
                .seen(if text.is_empty() {
                    format!("members name different leaders: {leaders:?}")
                } else {
                    text.join("\n")
                }));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the member that leads now (by asking each running
    /// member who it is and whom it follows).
    pub fn leader(&self) -> Result<usize, Fail> {
        let mut ids = Vec::new();
        let mut leader = None;
        for i in 0..self.len() {
            if self.member_pid(i).is_none() {
                continue;
            }
            let status = Etcd::new(self.hosts[i].net.netns(), &[self.endpoint(i)]).status()?;
            ids.push((i, status.member_id));
            leader = leader.or((status.leader != 0).then_some(status.leader));
        }
        ids.iter()
            .find(|(_, id)| Some(*id) == leader)
            .map(|(i, _)| *i)
            .ok_or_else(|| {
                Fail::new("no running etcd member of the lab leads").seen(format!(
                    "members (index, id): {ids:?}; leader named: {leader:?}"
                ))
            })
    }

    /// How many hosts (and members) the lab has.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// The underlay namespace (its bridge `ul-br` sees every packet between
    /// hosts: where a capture listens).
    pub fn underlay(&self) -> &NetLab {
        &self.underlay
    }

    /// Run a shell script in host `i`'s namespace; its stdout.
    pub fn sh(&self, i: usize, script: &str) -> Result<String, Fail> {
        self.hosts[i].net.sh(script)
    }

    /// Member `i`'s client address, `10.99.0.1:2379`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("{}:{CLIENT_PORT}", self.hosts[i].address)
    }

    /// Every member's client address, killed ones included (a client skips
    /// them: nothing listens there any more).
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.endpoint(i)).collect()
    }

    /// A client for the cluster as host `i` sees it: dialing from host
    /// `i`'s namespace, trying its own member first, then the others in
    /// turn (threads that should talk to different members use different
    /// hosts).
    pub fn client_on(&self, i: usize) -> Etcd {
        let mut endpoints = self.endpoints();
        endpoints.rotate_left(i);
        Etcd::new(self.hosts[i].net.netns(), &endpoints)
    }

    /// Member `i`'s pid, while it runs.
    pub fn member_pid(&self, i: usize) -> Option<i32> {
        self.members[i].child.as_ref().map(|c| c.id() as i32)
    }

    /// The pids the lab consists of: namespace holders and running members.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = vec![self.underlay.pid];
        pids.extend(self.hosts.iter().map(|h| h.net.pid));
        pids.extend((0..self.members.len()).filter_map(|i| self.member_pid(i)));
        pids
    }

    /// The lab's network namespaces, as `/proc/PID/ns/net` names them
    /// (`net:[4026532514]`).
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.underlay.pid)
            .chain(self.hosts.iter().map(|h| h.net.pid))
            .filter_map(|pid| crate::procfs::namespace(pid, "net"))
            .collect()
    }

    /// The cluster's token, on every member's command line.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The members' data dirs and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Kill member `i` (SIGKILL, by its pid: a crash, no goodbye to its
    /// peers) and wait for it. Its host and address stay.
    pub fn kill_member(&mut self, i: usize) -> Result<(), Fail> {
        let Some(mut child) = self.members[i].child.take() else {
            return Err(Fail::new(format!(
                "etcd on {} was already killed",
                self.hosts[i].name
            )));
        };
        // Child::kill is kill(pid, SIGKILL) on our own child; wait reaps it.
        let _ = child.kill();
        child.wait().map_err(|e| {
            Fail::new(format!("could not wait for etcd on {}", self.hosts[i].name)).seen(e)
        })?;
        Ok(())
    }

    /// What member `i`'s log (its stderr and stdout) says: its error lines
    /// (zap's `"level":"error"`/`"fatal"`, or a flag error before its
    /// usage text), then its last `lines` non-blank lines.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        let errors: Vec<&str> = all
            .iter()
            .filter(|l| {
                l.contains(r#""level":"error""#)
                    || l.contains(r#""level":"fatal""#)
                    || l.contains(r#""level":"panic""#)
                    || l.starts_with("flag provided but not defined")
                    || l.starts_with("invalid value")
            })
            .filter(|l| !tail.contains(l))
            .take(3)
            .copied()
            .collect();
        let mut shown = errors;
        if !shown.is_empty() {
            shown.push("...");
        }
        shown.extend_from_slice(tail);
        shown.join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Our own members, by pid: SIGKILL, then reap each. Their sockets
        // close with them, and the namespaces can go.
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Then the fields drop in order: the hosts' and the underlay's
        // holders (their namespaces, and every veth, bridge and address in
        // them, go with the last process inside), then the temp dir.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::sync::Mutex;

    /// One cluster at a time: three etcd members per test already keep a
    /// 2-core machine busy, and parallel elections would only time out.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// A cluster of 3 and the turn to use it: the cluster drops first.
    struct Turn {
        cluster: Cluster,
        _turn: std::sync::MutexGuard<'static, ()>,
    }

    impl std::ops::Deref for Turn {
        type Target = Cluster;
        fn deref(&self) -> &Cluster {
            &self.cluster
        }
    }

    impl std::ops::DerefMut for Turn {
        fn deref_mut(&mut self) -> &mut Cluster {
            &mut self.cluster
        }
    }

    /// A cluster of 3, or `None` with one line on stderr (written past
    /// libtest's capture, so it shows) saying why the test is skipped.
    fn three(test: &str) -> Option<Turn> {
        if let Some(why) = Cluster::unavailable() {
            let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let cluster = Cluster::start(3).unwrap_or_else(|fail| panic!("{fail}"));
        let _ = writeln!(
            std::io::stderr(),
            "{test}: a 3-member cluster started in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Some(Turn {
            cluster,
            _turn: turn,
        })
    }

    /// The names of the links in the grader's own network namespace (the
    /// machine's), from /proc/self/net/dev: nothing to run, nothing changed.
    fn own_links() -> BTreeSet<String> {
        std::fs::read_to_string("/proc/self/net/dev")
            .unwrap_or_default()
            .lines()
            .skip(2)
            .filter_map(|l| Some(l.split(':').next()?.trim().to_string()))
            .collect()
    }

    /// Every process of the machine: (pid, its net namespace, its command line).
    fn processes() -> Vec<(i32, Option<String>, String)> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default();
                (pid, crate::procfs::namespace(pid, "net"), cmdline)
            })
            .collect()
    }

    #[test]
    fn a_cluster_comes_up_on_lab_addresses_and_leaves_nothing() {
        let links_before = own_links();
        let Some(turn) = three("a_cluster_comes_up_on_lab_addresses_and_leaves_nothing") else {
            return;
        };
        let cluster = &turn.cluster;
        let mine = crate::procfs::namespace(std::process::id() as i32, "net");
        let leader = cluster.client_on(0).status().unwrap();
        assert_ne!(leader.leader, 0, "a leader: {leader:?}");
        assert!(leader.version.starts_with("3."), "{leader:?}");
        for i in 0..3 {
            let pid = cluster.member_pid(i).unwrap();
            // The member runs in host i's namespace, not the machine's.
            let theirs = crate::procfs::namespace(pid, "net");
            assert_eq!(
                theirs,
                crate::procfs::namespace(cluster.host(i).net.pid, "net"),
                "etcd on host{} should be in that host's namespace",
                i + 1
            );
            assert_ne!(theirs, mine, "etcd must not run in the machine's namespace");
            // `ss -Htlnp` in the host: etcd's listening sockets, all on the
            // host's underlay address (none on 0.0.0.0, none on lo).
            let ss = cluster.sh(i, "ss -Htlnp").unwrap();
            let listening: Vec<&str> = ss
                .lines()
                .filter(|l| l.contains(&format!("pid={pid},")))
                .filter_map(|l| l.split_whitespace().nth(3))
                .collect();
            let address = &cluster.host(i).address;
            let expected: BTreeSet<String> = [CLIENT_PORT, PEER_PORT]
                .iter()
                .map(|port| format!("{address}:{port}"))
                .collect();
            let seen: BTreeSet<String> = listening.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                seen,
                expected,
                "etcd's listening sockets on host{}:\n{ss}",
                i + 1
            );
        }
        let pids = cluster.pids();
        let namespaces = cluster.namespaces();
        let token = cluster.token().to_string();
        let dir = cluster.dir().to_path_buf();
        assert_eq!(
            (pids.len(), namespaces.len()),
            (7, 4),
            "4 holders and 3 members"
        );
        drop(turn);

        let left: Vec<String> = processes()
            .into_iter()
            .filter(|(pid, net, cmdline)| {
                pids.contains(pid)
                    || net.as_ref().is_some_and(|n| namespaces.contains(n))
                    || cmdline.contains(&token)
            })
            .map(|(pid, _, cmdline)| format!("{pid}: {cmdline}"))
            .collect();
        assert!(left.is_empty(), "processes of the lab are left: {left:?}");
        assert!(!dir.exists(), "{} is left", dir.display());
        let new: Vec<String> = own_links().difference(&links_before).cloned().collect();
        assert!(
            new.is_empty(),
            "links appeared in the machine's namespace: {new:?}"
        );
    }

    /// The holders and members of this process's clusters, and their
    /// temp dirs.
    fn labs_of_this_process() -> Vec<String> {
        let me = std::process::id();
        let mut found: Vec<String> = processes()
            .into_iter()
            .filter(|(pid, _, cmdline)| {
                cmdline.contains(&format!("minibox-lab-{me}-"))
                    || (crate::procfs::stat(*pid).is_some_and(|s| s.ppid == me as i32)
                        && cmdline.contains("sleep 1000000"))
            })
            .map(|(pid, _, cmdline)| format!("{pid}: {cmdline}"))
            .collect();
        let dirs = std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten();
        found.extend(dirs.flatten().filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("grader-cluster-{me}-"))
                .then_some(name)
        }));
        found
    }

    #[test]
    fn a_member_that_cannot_start_is_named_and_nothing_is_left() {
        let test = "a_member_that_cannot_start_is_named_and_nothing_is_left";
        if let Some(why) = Cluster::unavailable() {
            let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
            return;
        }
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let links_before = own_links();
        // A flag etcd does not know: every member exits at once.
        let fail = match Cluster::start_with(3, &["--no-such-flag"]) {
            Ok(_) => panic!("etcd should refuse --no-such-flag"),
            Err(fail) => fail,
        };
        assert!(
            fail.what.contains("etcd on host") && fail.what.contains("ended"),
            "{fail}"
        );
        let seen = fail.seen.clone().unwrap_or_default();
        assert!(seen.contains("no-such-flag"), "its log tail: {fail}");
        let left = labs_of_this_process();
        assert!(left.is_empty(), "left after a failed start: {left:?}");
        let new: Vec<String> = own_links().difference(&links_before).cloned().collect();
        assert!(
            new.is_empty(),
            "links appeared in the machine's namespace: {new:?}"
        );
    }

    #[test]
    fn create_if_absent_has_one_winner_per_key() {
        let Some(cluster) = three("create_if_absent_has_one_winner_per_key") else {
            return;
        };
        let started = Instant::now();
        // 30 racers on 10 keys, three per key, each thread starting at a
        // different member: every txn is forwarded to the leader and
        // ordered in its log, so exactly one per key sees create_revision 0.
        let start = std::sync::Arc::new(std::sync::Barrier::new(30));
        let racers: Vec<_> = (0..30)
            .map(|n| {
                let client = cluster.client_on(n % 3);
                let key = format!("/race/{}", n % 10);
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait(); // all at once
                    let won = client.create_if_absent(&key, &format!("racer{n}"));
                    (key, n, won)
                })
            })
            .collect();
        let mut winners: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for racer in racers {
            let (key, n, won) = racer.join().unwrap();
            winners.entry(key.clone()).or_default();
            if won.unwrap_or_else(|fail| panic!("racer {n} on {key}: {fail}")) {
                winners.get_mut(&key).unwrap().push(n);
            }
        }
        let client = cluster.client_on(0);
        for (key, won) in &winners {
            assert_eq!(
                won.len(),
                1,
                "{key}: winners {won:?} (expected exactly one)"
            );
            // And the stored value is the winner's.
            assert_eq!(client.get(key).unwrap(), Some(format!("racer{}", won[0])));
        }
        assert_eq!(winners.len(), 10);
        let race = client.prefix("/race/").unwrap();
        assert_eq!(race.len(), 10, "{race:?}");
        assert_eq!(client.delete_prefix("/race/").unwrap(), 10);
        assert_eq!(client.prefix("/race/").unwrap(), vec![]);
        let _ = writeln!(
            std::io::stderr(),
            "30 racing txns decided in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }

    #[test]
    fn a_key_goes_with_its_lease() {
        let Some(cluster) = three("a_key_goes_with_its_lease") else {
            return;
        };
        let client = cluster.client_on(1);
        // Revoked: the key is deleted in the same revision.
        let lease = client.grant_lease(2).unwrap();
        client
            .put_with_lease("/lease/revoked", "here", lease)
            .unwrap();
        let kvs = client.prefix("/lease/").unwrap();
        assert_eq!(kvs.len(), 1);
        assert_eq!((kvs[0].value.as_str(), kvs[0].lease), ("here", lease));
        assert!(client.keepalive(lease).unwrap().is_some());
        client.revoke(lease).unwrap();
        assert_eq!(client.get("/lease/revoked").unwrap(), None);
        assert_eq!(client.keepalive(lease).unwrap(), None, "a revoked lease");

        // Kept alive: a keepalive every 500 ms holds the key past its TTL
        // (`etcdctl lease keep-alive ID`, what a registered endpoint does).
        let lease = client.grant_lease(2).unwrap();
        client
            .put_with_lease("/lease/expiring", "here", lease)
            .unwrap();
        let granted = Instant::now();
        while granted.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(500));
            let ttl = client.keepalive(lease).unwrap();
            assert!(
                ttl.is_some_and(|t| t >= 1),
                "keepalive answered TTL {ttl:?}"
            );
        }
        assert_eq!(
            client.get("/lease/expiring").unwrap().as_deref(),
            Some("here"),
            "a kept-alive lease's key, 3 s after a 2 s lease was granted"
        );

        // Expired: no keepalive for its TTL (2 s), and the leader ends it.
        // etcd checks leases every 500 ms, and may extend a lease by an
        // election timeout after a leader change: poll, bounded.
        let started = Instant::now();
        let gone = crate::poll(Duration::from_secs(20), || {
            client.get("/lease/expiring").ok()?.is_none().then_some(())
        });
        assert!(
            gone.is_some(),
            "the key of a 2 s lease should vanish without keepalive"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500),
            "gone after only {took:?}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "a 2 s lease's key vanished {:.2} s after its last keepalive",
            took.as_secs_f64()
        );
    }

    #[test]
    fn a_dead_member_is_skipped() {
        let Some(mut cluster) = three("a_dead_member_is_skipped") else {
            return;
        };
        // Kill the leader (the hardest case: the others must elect a new
        // one), and talk from its host, whose client tries it first.
        let dead = cluster.leader().unwrap();
        cluster.kill_member(dead).unwrap();
        assert_eq!(cluster.member_pid(dead), None);
        // A put sent while there is no leader is dropped by Raft, and the
        // member holds the request until its own timeout (7 s): a client
        // timeout of 2 s moves on to the next member sooner.
        let client = cluster.client_on(dead).with_timeout(Duration::from_secs(2));
        assert_eq!(client.endpoints()[0], cluster.endpoint(dead));
        // Two of three are a majority: once a new leader is elected (after
        // an election timeout without heartbeats, 1 s by default), writes
        // go through the living members.
        let killed = Instant::now();
        let mut last = None;
        let written = crate::poll(Duration::from_secs(30), || {
            match client.put("/alive", "yes") {
                Ok(_) => Some(()),
                Err(fail) => {
                    last = Some(fail);
                    std::thread::sleep(Duration::from_millis(100));
                    None
                }
            }
        });
        assert!(written.is_some(), "put after the leader died: {last:?}");
        let _ = writeln!(
            std::io::stderr(),
            "a put went through {:.2} s after the leader (host{}) was killed",
            killed.elapsed().as_secs_f64(),
            dead + 1
        );
        let new = cluster.leader().unwrap();
        assert_ne!(new, dead);
        assert_eq!(client.get("/alive").unwrap().as_deref(), Some("yes"));
        // The dead one alone: refused, and the error names it.
        let fail = Etcd::new(cluster.host(new).net.netns(), &[cluster.endpoint(dead)])
            .get("/alive")
            .unwrap_err();
        let seen = fail.seen.clone().unwrap_or_default();
        assert!(
            seen.contains(&cluster.endpoint(dead)) && seen.contains("connect"),
            "{fail}"
        );
    }
}
