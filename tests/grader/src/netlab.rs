//! A lab that lasts a whole check: a network namespace kept alive by a
//! holder process, which every run of the check enters (`nsenter --net`).
//! Step 05's bridges, veths, routes and nftables rules are made in it and
//! vanish with it; the machine's own network is never touched.

use crate::check::Fail;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A network namespace with `lo` up, alive until dropped.
pub struct NetLab {
    holder: Child,
    pub pid: i32,
}

impl NetLab {
    pub fn new() -> Result<NetLab, Fail> {
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep 1000000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Fail::new("the grader could not start a lab (unshare --net)").seen(e))?;
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            return Err(Fail::new("the grader could not set up a lab network namespace (needs util-linux and iproute2: .ci/install)"));
        }
        let pid = holder.id() as i32;
        Ok(NetLab { holder, pid })
    }

    /// The lab's namespace, for [`crate::process::Invocation::in_netns`].
    pub fn netns(&self) -> String {
        format!("/proc/{}/ns/net", self.pid)
    }

    /// Run a host program in the lab; its stdout.
    pub fn sh(&self, script: &str) -> Result<String, Fail> {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.netns()))
            .args(["--", "sh", "-c", script])
            .output()
            .map_err(|e| Fail::new("the grader could not run in its lab").seen(e))?;
        if !out.status.success() {
            return Err(
                Fail::new(format!("the grader's lab command failed: {script}"))
                    .seen(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A command in the lab, not started yet (a client or a server).
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns()))
            .arg("--")
            .arg(program)
            .args(args);
        command
    }

    /// A TCP socket listening on `addr` (`10.77.0.2:0`: any free port)
    /// *inside* the lab, for a server the grader runs itself (see
    /// [`crate::fake_server`]): `nsenter --net=LAB nc -l ADDR PORT`, as a
    /// socket the grader's threads can accept on.
    ///
    /// A socket belongs for its whole life to the network namespace of the
    /// thread that created it, and setns(2) moves only the calling thread.
    /// So a short-lived thread enters the lab, binds, and hands the socket
    /// back; the grader's own threads never change namespace.
    pub fn listen(&self, addr: &str) -> Result<TcpListener, Fail> {
        let address = socket_address(addr)?;
        in_netns(Path::new(&self.netns()), || TcpListener::bind(address)).map_err(|e| {
            Fail::new(format!("the grader could not listen on {addr} in its lab")).seen(e)
        })
    }

    /// A TCP connection to `addr`, made inside the lab (`nsenter --net=LAB
    /// curl ...`, for one socket), given up after `timeout`.
    pub fn connect(&self, addr: &str, timeout: Duration) -> Result<TcpStream, Fail> {
        connect_in(&self.netns(), addr, timeout)
    }

    /// Link this lab to `outside` (another NetLab playing the internet):
    /// a veth pair, 192.0.2.1/24 here and 192.0.2.2/24 there (TEST-NET-1),
    /// and this lab's default route through it.
    pub fn link_outside(&self, outside: &NetLab) -> Result<(), Fail> {
        self.sh(&format!(
            "ip link add uplink type veth peer name wan0 netns {} && ip addr add 192.0.2.1/24 dev uplink && ip link set uplink up && ip route add default via 192.0.2.2",
            outside.pid
        ))?;
        outside.sh("ip addr add 192.0.2.2/24 dev wan0 && ip link set wan0 up")?;
        Ok(())
    }
}

/// `host:port` as one socket address.
fn socket_address(addr: &str) -> Result<SocketAddr, Fail> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
        .ok_or_else(|| Fail::new(format!("`{addr}` is not an address (host:port)")))
}

/// A TCP connection to `addr` from the network namespace `netns`
/// (`/proc/PID/ns/net`), bounded by `timeout`: an address nobody answers
/// would otherwise wait out the kernel's minutes of SYN retries.
pub fn connect_in(netns: &str, addr: &str, timeout: Duration) -> Result<TcpStream, Fail> {
    let address = socket_address(addr)?;
    in_netns(Path::new(netns), || {
        TcpStream::connect_timeout(&address, timeout)
    })
    .map_err(|e| Fail::new(format!("the grader could not connect to {addr} in its lab")).seen(e))
}

/// Run `make` (which creates a socket) on a fresh thread that has entered
/// the network namespace `netns` first; the socket it returns stays in that
/// namespace wherever it is used afterwards. Entering a namespace with
/// setns(2) needs CAP_SYS_ADMIN, and the thread ends right after, so no
/// other code of the grader ever runs in the lab.
pub fn in_netns<T: Send>(
    netns: &Path,
    make: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let lab = std::fs::File::open(netns)?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                nix::sched::setns(&lab, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                make()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the thread in the lab panicked")))
    })
}

impl Drop for NetLab {
    fn drop(&mut self) {
        // Our own holder, by its pid: the namespace goes with it.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
