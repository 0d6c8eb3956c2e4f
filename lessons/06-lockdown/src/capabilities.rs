//! Capabilities: root, cut down to what an application needs.
//!
//! The kernel does not check "is this uid 0?" for privileged work; it checks
//! one of about 40 capabilities (capabilities(7)): `CAP_SYS_ADMIN` to mount,
//! `CAP_DAC_READ_SEARCH` to open a file by handle, `CAP_SYS_MODULE` to load
//! a kernel module... Root in a container is root on the host: the same uid,
//! and (without a user namespace) the same capabilities over the host's
//! kernel. Docker keeps 14 of them, enough for what programs in images do
//! (change owners, bind port 80, `ping`, `chroot`) and none that reach past
//! the container.
//!
//! Each process has five sets: *bounding* (the most it can ever get back,
//! even by exec'ing a setuid or file-capability program), *permitted*,
//! *effective* (what the kernel checks), *inheritable* and *ambient* (what
//! survives an exec). The bounding set must be cut first: dropping from it
//! needs `CAP_SETPCAP`, which may itself be dropped from the effective set
//! afterwards. Shell: `capsh --drop=cap_sys_admin -- -c CMD`, or
//! `setpriv --bounding-set -all,+chown,... CMD`; see them with
//! `grep Cap /proc/self/status` and `capsh --decode=HEX`.

use anyhow::{bail, Context};
use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;

/// Docker's default capabilities (moby's `oci/caps/defaults.go`).
pub const DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// `sys_admin`, `SYS_ADMIN` or `CAP_SYS_ADMIN`, as docker takes them.
pub fn parse(flag: &str, name: &str) -> anyhow::Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse::<Capability>().ok().with_context(|| {
        format!(
            "{flag} {name}: no such capability (the names are in capabilities(7), e.g. NET_ADMIN)"
        )
    })
}

/// The capabilities the runtime itself may hold: those this kernel knows
/// (a newer `caps` may know more) that are in the runtime's own bounding set
/// (a runtime started inside a container, or under a sandbox, has fewer).
/// Asked once (two prctl calls per capability), in the runtime before it
/// forks: the container's processes inherit the answer.
pub fn supported() -> CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED
        .get_or_init(|| {
            let known = caps::runtime::thread_all_supported();
            match caps::read(None, CapSet::Bounding) {
                Ok(bounding) => known.intersection(&bounding).copied().collect(),
                Err(_) => known,
            }
        })
        .clone()
}

// ANCHOR: resolve
/// The set a container gets, as docker's `TweakCapabilities` makes it from
/// `--cap-add`, `--cap-drop` and `--privileged`.
pub fn resolve(add: &[String], drop: &[String], privileged: bool) -> anyhow::Result<CapsHashSet> {
    // TODO(lesson-06): return the capabilities a container gets. With `privileged`: every one this runtime has (`supported()`). Else, if `add` names ALL: every one it has but those `drop` names; else, if `drop` names ALL: exactly those `add` names; else docker's DEFAULT less those `drop` names, plus those `add` names (a name both added and dropped stays). Names are taken as `parse` takes them (`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN`; ALL in any case); a bad name is its error. A name added that this runtime doesn't have is refused with an error that names it: no container here could hold it. The set returned never holds a capability this runtime doesn't have. Shell: `docker run --cap-add NET_ADMIN --cap-drop CHOWN`, `--cap-drop ALL --cap-add NET_RAW`.
    // The runtime's own bounding set is the most any process it starts can
    // ever hold: a runtime run inside a container or a sandbox has fewer
    // than the kernel knows.
    todo!(
        "lesson-06: return the capabilities a container gets. With `privileged`: every one this runtime has (`supported()`). Else, if `add` names ALL: every one it has but those `drop` names; else, if `drop` names ALL: exactly those `add` names; else docker's DEFAULT less those `drop` names, plus those `add` names (a name both added and dropped stays). Names are taken as `parse` takes them (`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN`; ALL in any case); a bad name is its error. A name added that this runtime doesn't have is refused with an error that names it: no container here could hold it. The set returned never holds a capability this runtime doesn't have. Shell: `docker run --cap-add NET_ADMIN --cap-drop CHOWN`, `--cap-drop ALL --cap-add NET_RAW`."
    );
}
// ANCHOR_END: resolve

// ANCHOR: drop_to
/// In this process (the container's init, or an `exec`'d command): keep
/// `keep` and nothing else, in every set.
pub fn drop_to(keep: &CapsHashSet) -> Result<(), Errno> {
    // TODO(lesson-06): when this returns, this process holds exactly `keep` in its effective and permitted sets, its bounding set holds nothing outside `keep` (so no execve, setuid program or file capability can ever bring another back, to it or to anything it starts), and its inheritable and ambient sets are empty. Shell: `setpriv --bounding-set -all,+chown,... --inh-caps -all --ambient-caps -all CMD`; `grep Cap /proc/self/status` shows the five sets, `capsh --decode=HEX` names them.
    // Kernel facts: dropping from the bounding set needs CAP_SETPCAP in the
    // effective set, which `keep` may not hold; at every capset(2) the
    // effective set must stay within the permitted one, and the permitted
    // set can only shrink; the bounding set can only shrink, one
    // capability at a time; `supported()` lists the capabilities this
    // kernel knows and this runtime holds. Errors that carry no errno of
    // their own: `Errno::last()` is the last system call's.
    todo!(
        "lesson-06: when this returns, this process holds exactly `keep` in its effective and permitted sets, its bounding set holds nothing outside `keep` (so no execve, setuid program or file capability can ever bring another back, to it or to anything it starts), and its inheritable and ambient sets are empty. Shell: `setpriv --bounding-set -all,+chown,... --inh-caps -all --ambient-caps -all CMD`; `grep Cap /proc/self/status` shows the five sets, `capsh --decode=HEX` names them."
    );
}
// ANCHOR_END: drop_to

/// The bounding set of process `pid`, as the kernel reports it (`CapBnd:`
/// in `/proc/PID/status`): `exec` gives its command the container's set.
pub fn of_process(pid: i32) -> anyhow::Result<CapsHashSet> {
    let hex = crate::procfs::status_field(pid, "CapBnd")?;
    let Ok(mask) = u64::from_str_radix(&hex, 16) else {
        bail!("/proc/{pid}/status: CapBnd {hex:?} is not a hex mask");
    };
    Ok(supported()
        .into_iter()
        .filter(|cap| mask & cap.bitmask() != 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_as_docker_takes_them() {
        for name in ["net_admin", "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN"] {
            assert_eq!(parse("--cap-add", name).unwrap(), Capability::CAP_NET_ADMIN);
        }
        let error = parse("--cap-add", "NET_ADMINN").unwrap_err().to_string();
        assert!(
            error.starts_with("--cap-add NET_ADMINN: no such capability"),
            "{error}"
        );
    }

    #[test]
    fn the_default_is_dockers_fourteen() {
        let set = resolve(&[], &[], false).unwrap();
        assert_eq!(set.len(), 14);
        assert!(!set.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!set.contains(&Capability::CAP_DAC_READ_SEARCH));
    }

    #[test]
    fn add_and_drop_work_as_in_docker() {
        let set = resolve(&["SYS_ADMIN".into()], &["CHOWN".into()], false).unwrap();
        assert!(set.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!set.contains(&Capability::CAP_CHOWN));
        let only = resolve(&["NET_RAW".into()], &["ALL".into()], false).unwrap();
        assert_eq!(only, CapsHashSet::from([Capability::CAP_NET_RAW]));
        let most = resolve(&["ALL".into()], &["SYS_ADMIN".into()], false).unwrap();
        assert_eq!(most.len(), supported().len() - 1);
        // As docker: ALL added beats ALL dropped; a name added beats the
        // same name dropped.
        let every = resolve(&["ALL".into()], &["ALL".into()], false).unwrap();
        assert_eq!(every, supported());
        let kept = resolve(&["CHOWN".into()], &["CHOWN".into()], false).unwrap();
        assert!(kept.contains(&Capability::CAP_CHOWN));
    }
}
