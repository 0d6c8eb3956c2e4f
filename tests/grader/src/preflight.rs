//! Can this machine run a step's checks at all? If not, say so once, with
//! the fix, instead of failing every check with the same error.

/// What a step's checks need from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any Linux: fork, exec, signals, /proc.
    Linux,
    /// Root (mounts, network namespaces on the host side).
    Root,
    /// Root, or unprivileged user namespaces, in which the runtime is root.
    RootOrUserns,
}

/// The facts about the machine that decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub linux: bool,
    pub root: bool,
    /// `Ok` if an unprivileged process may create a user namespace, else why not.
    pub userns: Result<(), String>,
}

impl Machine {
    /// Look at this machine.
    pub fn probe(needs: Needs) -> Machine {
        let linux = cfg!(target_os = "linux");
        let root = nix::unistd::geteuid().is_root();
        // Only try a user namespace when it could matter.
        let userns = if linux && !root && needs == Needs::RootOrUserns {
            probe_userns()
        } else {
            Ok(())
        };
        Machine {
            linux,
            root,
            userns,
        }
    }
}

/// Why the checks can't run, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub why: String,
    pub fix: String,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  fix: {}", self.why, self.fix)
    }
}

/// Decide whether `needs` is met on `machine`.
pub fn verdict(needs: Needs, machine: &Machine) -> Result<(), Blocked> {
    if !machine.linux {
        return Err(Blocked {
            why: "containers are made of Linux kernel features, and this is not Linux".into(),
            fix: "work inside a Linux VM (the book's Setup chapter shows how on macOS and Windows)"
                .into(),
        });
    }
    match needs {
        Needs::Linux => Ok(()),
        Needs::Root if machine.root => Ok(()),
        Needs::Root => Err(Blocked {
            why: "these checks need root".into(),
            fix: "run them as root (in your VM), or install sudo: the grader then runs its checks with sudo by itself (see the book: Setup)"
                .into(),
        }),
        Needs::RootOrUserns if machine.root => Ok(()),
        Needs::RootOrUserns => match &machine.userns {
            Ok(()) => Ok(()),
            Err(why) => Err(Blocked {
                why: format!("not root, and unprivileged user namespaces are not allowed: {why}"),
                fix: "run as root, or allow user namespaces (Debian: `sysctl kernel.unprivileged_userns_clone=1`; Ubuntu 24.04: `sysctl kernel.apparmor_restrict_unprivileged_userns=0`); `cargo xtask doctor` shows which applies"
                    .into(),
            }),
        },
    }
}

/// These checks need root and we are not: run this test binary again under
/// `sudo`, if sudo can ask for a password (a terminal) or needs none. Only the
/// already built test binary runs as root, so `target/` stays yours. Returns
/// only when it didn't (no sudo, no way to ask, or `MINIBOX_NO_SUDO` set).
pub fn rerun_with_sudo(package: &str) {
    use std::io::IsTerminal;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    if std::env::var_os("MINIBOX_NO_SUDO").is_some() {
        return;
    }
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let passwordless = || {
        Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(std::io::stdin().is_terminal() || passwordless()) {
        return;
    }
    eprintln!("{package}: these checks need root; running them with sudo (set MINIBOX_NO_SUDO=1 to refuse)");
    // exec(3) returns only on failure (no sudo): fall through to the message.
    let _ = Command::new("sudo")
        .arg("-E")
        .arg("--")
        .arg(me)
        .args(std::env::args_os().skip(1))
        .exec();
}

/// Whether this machine meets one check's requirement; `Err` says what it
/// lacks and how to allow it.
pub fn requirement(requires: crate::Requires) -> Result<(), String> {
    match requires {
        crate::Requires::Nothing => Ok(()),
        crate::Requires::UnprivilegedUserns => unprivileged_userns(),
        crate::Requires::Nftables => nftables(),
        crate::Requires::Etcd => match crate::cluster::Cluster::unavailable() {
            None => Ok(()),
            Some(why) => Err(format!("an etcd cluster of lab hosts can't start: {why}")),
        },
        crate::Requires::Registry => match crate::registry::Registry::unavailable() {
            None => Ok(()),
            Some(why) => Err(format!("a registry can't start in a lab: {why}")),
        },
        crate::Requires::Podman => match crate::tools::Podman::unavailable() {
            None => Ok(()),
            Some(why) => Err(format!("podman can't run: {why}")),
        },
        crate::Requires::Skopeo => match crate::tools::Skopeo::unavailable() {
            None => Ok(()),
            Some(why) => Err(format!("skopeo can't run: {why}")),
        },
        crate::Requires::Umoci => match crate::tools::Umoci::unavailable() {
            None => Ok(()),
            Some(why) => Err(format!("umoci can't run: {why}")),
        },
        // The first requirement missing is the one said.
        crate::Requires::All(all) => all.iter().try_for_each(|r| requirement(*r)),
    }
}

/// Is `nft` on this process's `PATH`, where the runtime (which inherits it)
/// looks for it?
pub fn nftables() -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join("nft").is_file()) {
        return Ok(());
    }
    let found = crate::which("nft");
    let fix = match found.as_deref().and_then(std::path::Path::parent) {
        Some(dir) => format!("it is in {}: add that to PATH", dir.display()),
        None => "install it with `apt-get install nftables` (or `.ci/install`)".to_string(),
    };
    Err(format!(
        "nft is not on PATH, and ports, egress NAT and isolation between networks are nftables rules; {fix}"
    ))
}

/// Can an unprivileged user create a user namespace, map itself and use it?
/// Asked the way a learner's machine would answer: util-linux's `unshare
/// --user --map-root-user --mount`, run as uid 65534 (when we are root).
pub fn unprivileged_userns() -> Result<(), String> {
    userns_probe().map_err(|said| {
        format!(
            "unprivileged user namespaces are not allowed ({said}); allow them with \
             `sysctl kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04) or \
             `sysctl kernel.unprivileged_userns_clone=1` (older Debian)"
        )
    })
}

/// [`unprivileged_userns`], with only what failed as the error.
pub fn userns_probe() -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut probe = std::process::Command::new("unshare");
    probe.args(["--user", "--map-root-user", "--mount", "true"]);
    if nix::unistd::geteuid().is_root() {
        // SAFETY: setgroups/setgid/setuid are plain system calls, safe
        // between fork and exec.
        unsafe {
            probe.pre_exec(|| {
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?;
                Ok(())
            });
        }
    }
    match probe.output() {
        // Without util-linux we can't tell: run the check and let it speak.
        Err(_) => Ok(()),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            Err(said
                .lines()
                .next()
                .unwrap_or("unshare -Urm failed")
                .trim()
                .to_string())
        }
    }
}

#[cfg(target_os = "linux")]
fn probe_userns() -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut probe = std::process::Command::new("true");
    // SAFETY: unshare(2) is a plain syscall, safe between fork and exec.
    // CLONE_NEWUSER fails with EPERM (sysctl, seccomp) or ENOSPC (max_user_namespaces = 0).
    unsafe {
        probe.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(std::io::Error::from)
        });
    }
    match probe.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("a test process exited with {status}")),
        Err(e) => Err(format!("unshare(CLONE_NEWUSER) failed: {e}")),
    }
}

#[cfg(not(target_os = "linux"))]
fn probe_userns() -> Result<(), String> {
    Err("not Linux".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(linux: bool, root: bool, userns: bool) -> Machine {
        Machine {
            linux,
            root,
            userns: if userns { Ok(()) } else { Err("EPERM".into()) },
        }
    }

    #[test]
    fn not_linux_blocks_everything() {
        for needs in [Needs::Linux, Needs::Root, Needs::RootOrUserns] {
            let blocked = verdict(needs, &machine(false, true, true)).unwrap_err();
            assert!(blocked.fix.contains("Linux VM"), "{blocked}");
        }
    }

    #[test]
    fn root_is_enough_for_everything() {
        for needs in [Needs::Linux, Needs::Root, Needs::RootOrUserns] {
            assert_eq!(verdict(needs, &machine(true, true, false)), Ok(()));
        }
    }

    #[test]
    fn user_namespaces_stand_in_for_root_only_where_allowed() {
        assert_eq!(
            verdict(Needs::RootOrUserns, &machine(true, false, true)),
            Ok(())
        );
        let blocked = verdict(Needs::RootOrUserns, &machine(true, false, false)).unwrap_err();
        assert!(blocked.why.contains("EPERM"));
        assert!(verdict(Needs::Root, &machine(true, false, true)).is_err());
    }

    #[test]
    fn plain_linux_needs_nothing_more() {
        assert_eq!(verdict(Needs::Linux, &machine(true, false, false)), Ok(()));
    }
}
