//! A lab that lasts a whole check: a network namespace kept alive by a
//! holder process, which every run of the check enters (`nsenter --net`).
//! Step 05's bridges, veths, routes and nftables rules are made in it and
//! vanish with it; the machine's own network is never touched.

use crate::check::Fail;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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

impl Drop for NetLab {
    fn drop(&mut self) {
        // Our own holder, by its pid: the namespace goes with it.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
