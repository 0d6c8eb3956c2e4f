//! `cargo xtask doctor`: is this machine ready for the workshop?
//!
//! Looks at the kernel and the machine the way the steps will use them, and
//! says, line by line, ok / warn / fail and the command that fixes it. It
//! tries things for real, but only where nothing can leak: the overlay mount
//! and the bridge are made inside a throwaway mount or network namespace of
//! a child process (`unshare`), which the kernel tears down when it exits.
//! The host's own mounts and interfaces are never touched.

use crate::style::Style;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the machine says.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `uname -r`, `uname -m`.
    pub kernel: String,
    pub arch: String,
    pub root: bool,
    pub sudo: bool,
    /// Whether an unprivileged process may create and use a user namespace.
    pub userns: Result<(), String>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+).
    pub apparmor_restrict: Option<String>,
    /// `kernel.unprivileged_userns_clone` (Debian's older kernels).
    pub userns_clone: Option<String>,
    /// An overlayfs mounted in a throwaway mount namespace.
    pub overlay: Result<(), String>,
    /// Where containers' state goes, and whether it is on overlayfs.
    pub state_on_overlay: Vec<PathBuf>,
    pub cgroup: Cgroups,
    /// `shared`, `private` or `slave`: how `/` propagates mounts.
    pub root_propagation: String,
    /// A bridge and a veth pair made in a throwaway network namespace.
    pub links: Result<(), String>,
    pub nft: Option<String>,
    pub iptables: Option<String>,
    /// Programs the checks and this doctor use: (program, found).
    pub tools: Vec<(&'static str, bool)>,
    /// docker, podman, lxc, ... when we run inside a container.
    pub container: Option<String>,
    /// The kernel's release string says WSL.
    pub wsl: Option<u8>,
    pub rustc: Option<String>,
    /// `etcd --version`'s version, if etcd is installed (optional: only
    /// step 07's overlay checks run it, three members in a lab).
    pub etcd: Option<String>,
    /// Step 08's outside tools: (program, Debian package, its version if
    /// installed). Optional too: the checks that need one are skipped
    /// without it.
    pub exchange: Vec<(&'static str, &'static str, Option<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cgroups {
    V2,
    Hybrid,
    V1,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Clone)]
pub struct Line {
    pub level: Level,
    pub topic: &'static str,
    pub said: String,
    pub fix: Option<String>,
}

fn line(level: Level, topic: &'static str, said: impl Into<String>, fix: Option<&str>) -> Line {
    Line {
        level,
        topic,
        said: said.into(),
        fix: fix.map(str::to_string),
    }
}

/// The verdict on each fact.
pub fn verdicts(f: &Facts) -> Vec<Line> {
    use Level::*;
    let mut lines = Vec::new();
    let version = kernel_version(&f.kernel);
    lines.push(match version {
        Some(v) if v >= (5, 11) => line(Ok, "kernel", format!("Linux {} ({})", f.kernel, f.arch), None),
        Some(v) if v >= (4, 18) => line(
            Warn,
            "kernel",
            format!("Linux {}: older than 5.11, so overlayfs can't be mounted inside a user namespace; the steps work as root", f.kernel),
            Some("upgrade the kernel, or use a VM with a current distribution (book: Setup)"),
        ),
        _ => line(
            Fail,
            "kernel",
            format!("Linux {}: too old for the namespaces and mounts the steps use", f.kernel),
            Some("use a VM with a current distribution (book: Setup)"),
        ),
    });
    if let Some(generation) = f.wsl {
        lines.push(if generation == 1 {
            line(Fail, "WSL", "WSL 1 translates Linux calls and has no Linux kernel: no namespaces, no overlayfs", Some("wsl --set-version <distro> 2   (in Windows; WSL 2 runs a real kernel)"))
        } else {
            line(Warn, "WSL", "WSL 2: a real Linux kernel in a VM; the steps work, and the VM chapter measures WSL's VM, not your machine", None)
        });
    }
    if let Some(kind) = &f.container {
        let probes_pass = f.overlay.is_ok() && f.links.is_ok() && f.state_on_overlay.is_empty();
        lines.push(if probes_pass {
            line(
                Warn,
                "container",
                format!("running inside a container ({kind}); the probes below pass in it, so the steps can run, but the VM chapter's figures describe the container's host"),
                None,
            )
        } else {
            line(
                Warn,
                "container",
                format!("running inside a container ({kind}): namespaces and mounts need it privileged, and its / is often overlayfs (see the FAIL lines)"),
                Some("work in a Linux VM instead (book: Setup), or run the container with --privileged and a volume for TMPDIR"),
            )
        });
    }
    lines.push(if f.root {
        line(Ok, "privileges", "root: every step can run", None)
    } else if f.sudo {
        line(
            Ok,
            "privileges",
            "not root; the checks of steps 02-06 run themselves with sudo",
            None,
        )
    } else {
        line(
            Warn,
            "privileges",
            "not root, and no sudo: step 01 works, the checks of steps 02-06 need root",
            Some("work as root in your VM, or install sudo"),
        )
    });
    lines.push(match &f.userns {
        Result::Ok(()) => line(Ok, "user ns", "unprivileged user namespaces are allowed", None),
        Err(why) => {
            let fix = if f.apparmor_restrict.as_deref() == Some("1") {
                "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0   (Ubuntu 24.04's AppArmor default)"
            } else if f.userns_clone.as_deref() == Some("0") {
                "sudo sysctl -w kernel.unprivileged_userns_clone=1   (older Debian)"
            } else {
                "sudo sysctl -w user.max_user_namespaces=15000"
            };
            line(Warn, "user ns", format!("unprivileged user namespaces are not allowed ({why}); one check of step 02 is skipped"), Some(fix))
        }
    });
    lines.push(match &f.overlay {
        Result::Ok(()) => line(
            Ok,
            "overlayfs",
            "an overlay mounts (tried in a throwaway mount namespace)",
            None,
        ),
        Err(why) => line(
            Fail,
            "overlayfs",
            format!("an overlay does not mount (step 04 needs it): {why}"),
            Some("sudo modprobe overlay   (or a kernel with CONFIG_OVERLAY_FS)"),
        ),
    });
    lines.push(if f.state_on_overlay.is_empty() {
        line(
            Ok,
            "state dirs",
            "the temp dir and /var/lib are not on overlayfs",
            None,
        )
    } else {
        let places: Vec<String> = f
            .state_on_overlay
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        line(
            Fail,
            "state dirs",
            format!(
                "{} on overlayfs: an overlay's upper dir can't be on overlayfs (as inside docker)",
                places.join(" and ")
            ),
            Some("export TMPDIR=/some/volume, and pass --root /some/volume/minibox to the runtime"),
        )
    });
    lines.push(match f.cgroup {
        Cgroups::V2 => line(Ok, "cgroups", "v2 (unified)", None),
        Cgroups::Hybrid | Cgroups::V1 => line(
            Warn,
            "cgroups",
            format!(
                "{}: step 06 puts its limits in v1 where v1 holds the controller, so its checks pass; real runtimes want v2",
                if f.cgroup == Cgroups::Hybrid {
                    "hybrid (v1 in charge, v2 mounted beside it)"
                } else {
                    "v1"
                }
            ),
            Some("boot with systemd.unified_cgroup_hierarchy=1 (most distributions since 2021 do)"),
        ),
        Cgroups::Unknown => line(
            Warn,
            "cgroups",
            "no cgroup file system at /sys/fs/cgroup",
            None,
        ),
    });
    lines.push(line(
        Ok,
        "propagation",
        match f.root_propagation.as_str() {
            "shared" => "/ is shared (systemd's default): a container must make its copy private first; step 02 shows why".to_string(),
            other => format!("/ is {other}: mounts do not spread from it; step 02 still makes the container's copy private"),
        },
        None,
    ));
    lines.push(match &f.links {
        Result::Ok(()) => line(
            Ok,
            "bridge+veth",
            "a bridge and a veth pair can be made (tried in a throwaway network namespace)",
            None,
        ),
        Err(why) => line(
            Fail,
            "bridge+veth",
            format!("can't make a bridge or a veth pair (step 05 needs both): {why}"),
            Some("sudo modprobe bridge veth   (or a kernel with CONFIG_BRIDGE and CONFIG_VETH)"),
        ),
    });
    lines.push(match (&f.nft, &f.iptables) {
        (Some(nft), _) => line(Ok, "nftables", nft.clone(), None),
        (None, Some(ipt)) => line(
            Fail,
            "nftables",
            format!("no nft (only {ipt}); step 05 writes its port and NAT rules with nft"),
            Some("sudo apt-get install nftables"),
        ),
        (None, None) => line(
            Fail,
            "nftables",
            "no nft and no iptables; step 05 writes its port and NAT rules with nft",
            Some("sudo apt-get install nftables"),
        ),
    });
    let missing: Vec<&str> = f
        .tools
        .iter()
        .filter(|(_, found)| !found)
        .map(|(t, _)| *t)
        .collect();
    lines.push(if missing.is_empty() {
        let all: Vec<&str> = f.tools.iter().map(|(t, _)| *t).collect();
        line(Ok, "programs", format!("{} found", all.join(", ")), None)
    } else {
        line(
            Fail,
            "programs",
            format!("missing: {} (the checks run them)", missing.join(", ")),
            Some("sudo apt-get install iproute2 util-linux procps   (Debian, Ubuntu)"),
        )
    });
    lines.push(match &f.rustc {
        Some(version) => line(Ok, "rust", version.clone(), None),
        None => line(
            Fail,
            "rust",
            "no rustc",
            Some("curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"),
        ),
    });
    lines
}

/// `6.18.0-1-amd64` → (6, 18).
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub fn render(lines: &[Line], style: Style) -> String {
    let mut out = String::from("minibox doctor: is this machine ready for the workshop?\n\n");
    for l in lines {
        let mark = match l.level {
            Level::Ok => style.green("ok  "),
            Level::Warn => style.yellow("warn"),
            Level::Fail => style.red("FAIL"),
        };
        let _ = writeln!(out, "  {mark}  {:<12} {}", l.topic, l.said);
        if let Some(fix) = &l.fix {
            let _ = writeln!(out, "  {:<4}  {:<12} fix: {fix}", "", "");
        }
    }
    let count = |level| lines.iter().filter(|l| l.level == level).count();
    let (warns, fails) = (count(Level::Warn), count(Level::Fail));
    let verdict = if fails > 0 {
        style.red("not ready: fix the FAIL lines first")
    } else if warns > 0 {
        style.green("ready; read the warnings, they say what differs here")
    } else {
        style.green("ready")
    };
    let _ = writeln!(out, "\n{warns} warning(s), {fails} failure(s): {verdict}");
    out
}

/// The one line about etcd: optional, since only the overlay checks of
/// step 07 need it, and they are skipped (not failed) without it.
pub fn etcd_line(etcd: &Option<String>) -> String {
    match etcd {
        Some(version) => format!(
            "optional: etcd {version} (step 07's overlay checks run a 3-member cluster of it in a lab)"
        ),
        None => "optional: etcd is not installed: the overlay checks of step 07 will be skipped; apt-get install etcd-server".to_string(),
    }
}

/// The one line about step 08's tools (the registry the checks start in a
/// lab, and podman, skopeo and umoci, which read what minibox writes):
/// optional, like etcd.
pub fn exchange_line(tools: &[(&'static str, &'static str, Option<String>)]) -> String {
    let missing: Vec<&(&str, &str, Option<String>)> =
        tools.iter().filter(|(_, _, v)| v.is_none()).collect();
    if missing.is_empty() {
        let found: Vec<String> = tools
            .iter()
            .map(|(program, _, v)| format!("{program} {}", v.as_deref().unwrap_or_default()))
            .collect();
        return format!(
            "optional: {} (step 08's checks exchange images with them, in a lab)",
            found.join(", ")
        );
    }
    let names: Vec<&str> = missing.iter().map(|(program, ..)| *program).collect();
    let packages: Vec<&str> = missing.iter().map(|(_, package, _)| *package).collect();
    format!(
        "optional: {} not installed: the checks of step 08 that need {} will be skipped; apt-get install {}",
        names.join(", "),
        if names.len() == 1 { "it" } else { "them" },
        packages.join(" ")
    )
}

pub fn run(style: Style) -> anyhow::Result<bool> {
    let facts = Facts::probe();
    let lines = verdicts(&facts);
    print!("{}", render(&lines, style));
    println!("{}", etcd_line(&facts.etcd));
    println!("{}", exchange_line(&facts.exchange));
    // For teachers and maintainers only: learners never need it.
    match crate::mutants::installed() {
        Some(version) => println!("optional: {version} (cargo xtask mutants STEP)"),
        None => println!(
            "optional: cargo-mutants is not installed; only `cargo xtask mutants STEP` (for teachers) needs it: {}",
            crate::mutants::INSTALL
        ),
    }
    Ok(lines.iter().all(|l| l.level != Level::Fail))
}

impl Facts {
    /// Ask this machine.
    pub fn probe() -> Facts {
        let uname = nix::sys::utsname::uname().ok();
        let text = |s: Option<&std::ffi::OsStr>| {
            s.map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let root = nix::unistd::geteuid().is_root();
        Facts {
            kernel: text(uname.as_ref().map(|u| u.release())),
            arch: text(uname.as_ref().map(|u| u.machine())),
            root,
            sudo: !root && found("sudo"),
            userns: grader::preflight::userns_probe(),
            apparmor_restrict: sysctl("kernel/apparmor_restrict_unprivileged_userns"),
            userns_clone: sysctl("kernel/unprivileged_userns_clone"),
            overlay: try_overlay(root),
            state_on_overlay: [std::env::temp_dir(), PathBuf::from("/var/lib")]
                .into_iter()
                .filter(|p| on_overlay(p))
                .collect(),
            cgroup: cgroups(),
            root_propagation: root_propagation(),
            links: try_links(root),
            // Looked for in the sbin directories too: a user's PATH on
            // Debian has none of them.
            nft: grader::which("nft")
                .and_then(|p| version_of(&p.to_string_lossy(), &["--version"])),
            iptables: grader::which("iptables")
                .and_then(|p| version_of(&p.to_string_lossy(), &["--version"])),
            tools: ["unshare", "ip", "mount", "ps"]
                .into_iter()
                .map(|t| (t, found(t)))
                .collect(),
            container: container(),
            wsl: wsl(),
            rustc: version_of(
                &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
                &["--version"],
            ),
            etcd: etcd_version(),
            exchange: [
                ("docker-registry", "docker-registry"),
                ("podman", "podman"),
                ("skopeo", "skopeo"),
                ("umoci", "umoci"),
            ]
            .into_iter()
            .map(|(program, package)| (program, package, tool_version(program)))
            .collect(),
        }
    }
}

/// `etcd --version` says `etcd Version: 3.4.23` first: the version.
fn etcd_version() -> Option<String> {
    let path = grader::which("etcd")?;
    let first = version_of(&path.to_string_lossy(), &["--version"])?;
    Some(
        first
            .strip_prefix("etcd Version:")
            .unwrap_or(&first)
            .trim()
            .to_string(),
    )
}

/// `TOOL --version`'s last word (`podman version 4.3.1`, `docker-registry
/// github.com/docker/distribution 2.8.2+ds1`): the version, if installed.
fn tool_version(program: &str) -> Option<String> {
    let path = grader::which(program)?;
    let first = version_of(&path.to_string_lossy(), &["--version"])?;
    Some(first.split_whitespace().last().unwrap_or("?").to_string())
}

fn sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/proc/sys").join(name))
        .ok()
        .map(|v| v.trim().to_string())
}

fn found(program: &str) -> bool {
    grader::which(program).is_some()
}

fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or_default().trim().to_string())
}

/// `unshare` with a user namespace first when we are not root, so the
/// probe has the privileges a rootless container would have.
fn unshare(root: bool, namespaces: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    if !root {
        command.args(["--user", "--map-root-user"]);
    }
    command.args(namespaces);
    command
}

fn failure(out: std::io::Result<std::process::Output>, what: &str) -> Result<(), String> {
    match out {
        Err(e) => Err(format!("can't run {what}: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .next()
            .unwrap_or("failed")
            .trim()
            .to_string()),
    }
}

/// `unshare --mount sh -c 'mount -t overlay ...'` in a temp dir: the mount
/// lives in the child's private mount namespace and ends with it.
fn try_overlay(root: bool) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("minibox-doctor-{}", std::process::id()));
    // create_dir, not create_dir_all: a TMPDIR that does not exist is
    // reported, not made.
    let made = std::fs::create_dir(&dir).and_then(|()| {
        ["lower", "upper", "work", "merged"]
            .iter()
            .try_for_each(|d| std::fs::create_dir(dir.join(d)))
            .and_then(|()| std::fs::write(dir.join("lower/probe"), "lower\n"))
    });
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "can't make a temp dir in {}: {e}",
            std::env::temp_dir().display()
        ));
    }
    // Rootless overlays keep their whiteouts in user.* xattrs (kernel 5.11+).
    let extra = if root { "" } else { ",userxattr" };
    let script = format!(
        "mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work{extra} merged && test -f merged/probe"
    );
    let out = unshare(root, &["--mount", "--propagation", "private"])
        .args(["sh", "-c", &script])
        .current_dir(&dir)
        .output();
    let result = failure(out, "unshare");
    remove_probe_dir(&dir);
    result
}

/// The overlay leaves `work/work` with mode 000, which even its owner
/// can't enter without root: open it up, then remove everything.
fn remove_probe_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let inner = dir.join("work/work");
    if inner.exists() {
        let _ = std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700));
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `unshare --net ip link add ...`: a bridge, then a veth pair, each in a
/// network namespace that exists only while `ip` runs.
fn try_links(root: bool) -> Result<(), String> {
    for args in [
        &["link", "add", "mbx-doctor", "type", "bridge"][..],
        &[
            "link", "add", "mbx-doc0", "type", "veth", "peer", "name", "mbx-doc1",
        ][..],
    ] {
        let out = unshare(root, &["--net"]).arg("ip").args(args).output();
        failure(out, "unshare").map_err(|why| format!("ip {}: {why}", args.join(" ")))?;
    }
    Ok(())
}

fn on_overlay(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

fn cgroups() -> Cgroups {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    match statfs("/sys/fs/cgroup").map(|s| s.filesystem_type()) {
        Ok(t) if t == CGROUP2_SUPER_MAGIC => Cgroups::V2,
        Ok(t) if t == TMPFS_MAGIC => {
            if Path::new("/sys/fs/cgroup/unified").exists() {
                Cgroups::Hybrid
            } else {
                Cgroups::V1
            }
        }
        _ => Cgroups::Unknown,
    }
}

/// The optional fields of `/`'s line in mountinfo: `shared:N`, `master:N`.
fn root_propagation() -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(fields) = info
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        // The last mount on / is the one in force.
        .rfind(|f| f.get(4) == Some(&"/"))
    else {
        return "unknown".into();
    };
    let optional = fields.iter().skip(6).take_while(|f| **f != "-");
    let mut kind = "private";
    for field in optional {
        if field.starts_with("shared:") {
            kind = "shared";
        } else if field.starts_with("master:") && kind == "private" {
            kind = "slave";
        }
    }
    kind.into()
}

fn container() -> Option<String> {
    if Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman".into());
    }
    // systemd-nspawn, lxc and others set $container for their init.
    let environ = std::fs::read("/proc/1/environ").unwrap_or_default();
    environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"container="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn wsl() -> Option<u8> {
    let release = sysctl("kernel/osrelease").unwrap_or_default();
    if release.contains("WSL2") || release.contains("microsoft-standard") {
        Some(2)
    } else if release.contains("Microsoft") {
        Some(1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian VM, as root: everything there.
    fn debian_vm() -> Facts {
        Facts {
            kernel: "6.1.0-28-amd64".into(),
            arch: "x86_64".into(),
            root: true,
            sudo: false,
            userns: Ok(()),
            apparmor_restrict: None,
            userns_clone: Some("1".into()),
            overlay: Ok(()),
            state_on_overlay: vec![],
            cgroup: Cgroups::V2,
            root_propagation: "shared".into(),
            links: Ok(()),
            nft: Some("nftables v1.0.6 (Lester Gooch #5)".into()),
            iptables: None,
            tools: vec![
                ("unshare", true),
                ("ip", true),
                ("mount", true),
                ("ps", true),
            ],
            container: None,
            wsl: None,
            rustc: Some("rustc 1.85.0 (4d91de4e4 2025-02-17)".into()),
            etcd: Some("3.4.23".into()),
            exchange: vec![
                (
                    "docker-registry",
                    "docker-registry",
                    Some("2.8.2+ds1".into()),
                ),
                ("podman", "podman", Some("4.3.1".into())),
                ("skopeo", "skopeo", Some("1.9.3".into())),
                ("umoci", "umoci", None),
            ],
        }
    }

    #[test]
    fn a_debian_vm_is_ready() {
        let lines = verdicts(&debian_vm());
        assert!(lines.iter().all(|l| l.level == Level::Ok), "{lines:?}");
        insta::assert_snapshot!(render(&lines, Style::plain()));
    }

    #[test]
    fn ubuntu_24_04_as_a_user_is_told_about_apparmor() {
        let mut f = debian_vm();
        f.kernel = "6.8.0-49-generic".into();
        f.root = false;
        f.sudo = true;
        f.userns = Err("unshare: write failed /proc/self/uid_map: Operation not permitted".into());
        f.apparmor_restrict = Some("1".into());
        f.userns_clone = Some("1".into());
        f.cgroup = Cgroups::V2;
        f.nft = None;
        f.iptables = Some("iptables v1.8.10 (nf_tables)".into());
        insta::assert_snapshot!(render(&verdicts(&f), Style::plain()));
    }

    #[test]
    fn inside_docker_the_overlay_and_links_fail_with_a_way_out() {
        let mut f = debian_vm();
        f.container = Some("docker".into());
        f.state_on_overlay = vec![PathBuf::from("/tmp"), PathBuf::from("/var/lib")];
        f.overlay = Err("mount: merged: permission denied.".into());
        f.links = Err(
            "ip link add mbx-doctor type bridge: unshare: unshare failed: Operation not permitted"
                .into(),
        );
        f.cgroup = Cgroups::Hybrid;
        f.tools = vec![
            ("unshare", true),
            ("ip", false),
            ("mount", true),
            ("ps", false),
        ];
        let text = render(&verdicts(&f), Style::plain());
        assert!(text.contains("not ready"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn wsl_1_has_no_kernel_and_old_kernels_are_flagged() {
        let mut f = debian_vm();
        f.kernel = "4.4.0-19041-Microsoft".into();
        f.wsl = Some(1);
        let lines = verdicts(&f);
        let level = |topic| lines.iter().find(|l| l.topic == topic).unwrap().level;
        assert_eq!(level("WSL"), Level::Fail);
        assert_eq!(level("kernel"), Level::Fail);
        f.kernel = "5.10.0-30-amd64".into();
        f.wsl = Some(2);
        let lines = verdicts(&f);
        let level = |topic| lines.iter().find(|l| l.topic == topic).unwrap().level;
        assert_eq!(level("WSL"), Level::Warn);
        assert_eq!(level("kernel"), Level::Warn);
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(
            kernel_version("5.15.167.4-microsoft-standard-WSL2"),
            Some((5, 15))
        );
        assert_eq!(kernel_version("junk"), None);
    }

    #[test]
    fn etcd_is_optional_and_says_how_to_get_it() {
        let f = debian_vm();
        assert_eq!(
            etcd_line(&f.etcd),
            "optional: etcd 3.4.23 (step 07's overlay checks run a 3-member cluster of it in a lab)"
        );
        let missing = etcd_line(&None);
        assert!(missing.contains("not installed"), "{missing}");
        assert!(missing.contains("step 07 will be skipped"), "{missing}");
        assert!(
            missing.ends_with("apt-get install etcd-server"),
            "{missing}"
        );
        assert_eq!(missing.lines().count(), 1);
    }

    #[test]
    fn step_08_tools_are_optional_and_say_how_to_get_them() {
        let mut f = debian_vm();
        let missing = exchange_line(&f.exchange);
        assert_eq!(
            missing,
            "optional: umoci not installed: the checks of step 08 that need it will be skipped; apt-get install umoci"
        );
        f.exchange[3].2 = Some("0.4.7".into());
        assert_eq!(
            exchange_line(&f.exchange),
            "optional: docker-registry 2.8.2+ds1, podman 4.3.1, skopeo 1.9.3, umoci 0.4.7 (step 08's checks exchange images with them, in a lab)"
        );
        f.exchange[0].2 = None;
        f.exchange[1].2 = None;
        assert!(exchange_line(&f.exchange)
            .ends_with("need them will be skipped; apt-get install docker-registry podman"));
    }

    #[test]
    fn colour_only_when_asked() {
        let lines = verdicts(&debian_vm());
        assert!(!render(&lines, Style::plain()).contains('\x1b'));
    }
}
