//! What step 06 attaches to a container, beside its network: its cgroup,
//! with its device rules, and with `--network none` a loopback that is up.

use crate::cgroups::{Group, Limits};
use crate::devices::{self, Rule};
use std::path::Path;

/// The container's groups, recorded in its state directory so that `rm`
/// and the sweep of a crashed monitor find them again; only when it has
/// v1 groups (limits, or the v1 device rules), which are under the caller's
/// own group: its v2 group is always `V2/minibox/ID`, found without a file
/// (one file fewer to write and remove per container).
const GROUP_FILE: &str = "cgroups.json";

pub struct Lockdown {
    pub limits: Limits,
    /// `--network none`: the namespace has only `lo`, and the kernel makes
    /// it down; docker brings it up, so `127.0.0.1` works.
    pub loopback: bool,
    /// The device rules; `None`: every device (`--privileged`).
    pub devices: Option<&'static [Rule]>,
    /// Record the group in the container's state directory (not for a
    /// build's containers, which have no record for the sweep to read).
    record: bool,
    group: Option<Group>,
    /// The group's v2 directory, open: the init is born there (step 02's
    /// `clone_into`).
    v2: Option<std::os::fd::OwnedFd>,
    dir: Option<std::path::PathBuf>,
}

impl Lockdown {
    /// Docker's device rules, `limits`, and `lo` up if `loopback`.
    pub fn new(limits: Limits, loopback: bool) -> Lockdown {
        Lockdown {
            limits,
            loopback,
            devices: Some(&devices::DEFAULT),
            record: true,
            group: None,
            v2: None,
            dir: None,
        }
    }
}

/// A build's `RUN` steps are containers too: each gets a group of its own
/// with docker's device rules (step 04 asks for it through this hook).
pub fn for_builds() {
    let _ = step04::container::BUILD_ATTACH.set(|| {
        Box::new(Lockdown {
            record: false,
            ..Lockdown::new(Limits::default(), false)
        })
    });
}

impl step04::container::Attach for Lockdown {
    // ANCHOR: created
    fn created(&mut self, id: &str, _name: &str, dir: &Path) -> anyhow::Result<()> {
        let mut group = Group::create(id, &self.limits)?;
        // The rules are in place before any process is in the group.
        if let Some(rules) = self.devices {
            if let Err(error) = devices::apply(&mut group, id, rules) {
                group.remove();
                return Err(error);
            }
        }
        let v2 = group.v2_dir();
        if self.record && group.dirs.iter().any(|dir| Some(dir) != v2.as_ref()) {
            let dirs: Vec<String> = group.dirs.iter().map(|d| d.display().to_string()).collect();
            if let Err(error) = std::fs::write(dir.join(GROUP_FILE), serde_json::to_string(&dirs)?)
            {
                group.remove();
                return Err(error.into());
            }
            self.dir = Some(dir.to_path_buf());
        }
        // open(2) O_PATH of the v2 directory: what clone3 takes to start
        // the init in it.
        self.v2 = v2.and_then(|dir| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(dir)
                .ok()
                .map(std::os::fd::OwnedFd::from)
        });
        self.group = Some(group);
        Ok(())
    }
    // ANCHOR_END: created

    fn cgroup(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.v2.as_ref().map(|fd| fd.as_raw_fd())
    }

    // ANCHOR: ready
    fn ready(&mut self, pid: nix::unistd::Pid) -> anyhow::Result<Option<serde_json::Value>> {
        // The init waits at the gate: in its group before it runs anything.
        // Born in the v2 one already, where the kernel could (/proc/PID/
        // cgroup says): writing it there again would cost the move's wait
        // for nothing.
        if let Some(group) = &self.group {
            let mut missing = group.clone();
            if let Some(v2) = group.v2_dir() {
                if in_v2_group(pid.as_raw(), &v2) {
                    missing.dirs.retain(|dir| *dir != v2);
                }
            }
            missing.add(pid.as_raw())?;
        }
        if self.loopback {
            // `ip link set lo up`, in the container's network namespace.
            let mut netlink = step05::netlink::Netlink::open_in(pid.as_raw())?;
            let lo = netlink.index("lo")?;
            step05::plumbing::set_up(&mut netlink, lo, None)?;
        }
        Ok(None)
    }
    // ANCHOR_END: ready

    fn finished(&mut self, _id: &str) {
        if let Some(group) = self.group.take() {
            group.end();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(GROUP_FILE));
        }
    }
}

/// Is `pid` in the cgroup2 group at `dir` (its `0::PATH` line)?
fn in_v2_group(pid: i32, dir: &Path) -> bool {
    let Ok(all) = crate::cgroups::hierarchies() else {
        return false;
    };
    let Some(v2) = all.iter().find(|h| h.v2) else {
        return false;
    };
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .is_some_and(|path| v2.mount.join(path.trim_start_matches('/')) == dir)
}

/// The groups of containers whose monitor died without removing them
/// (killed with SIGKILL): removed once the container is not running; and
/// the empty groups of runtimes killed before they recorded theirs.
pub fn sweep(root: &Path) -> anyhow::Result<()> {
    crate::cgroups::sweep_orphans(std::time::Duration::from_secs(30));
    let containers = step04::state::Containers::new_at(root);
    let Ok(entries) = std::fs::read_dir(root.join("containers")) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file = entry.path().join(GROUP_FILE);
        let recorded = std::fs::read_to_string(&file).ok();
        let v2 = entry
            .file_name()
            .to_str()
            .and_then(Group::v2_dir_of)
            .filter(|dir| dir.is_dir());
        if recorded.is_none() && v2.is_none() {
            continue;
        }
        let alive = match containers.read(&entry.file_name()) {
            // No record: a build's container (it has none; its group is
            // `sweep_orphans`'s once empty), or a record lost after the
            // groups were written down.
            None if recorded.is_none() => continue,
            None => false,
            Some(Ok(record)) => {
                let record = step04::state::refresh(record);
                record.is_running() || record.state.status == "created"
            }
            // A damaged record can't say: its groups are left to
            // `cgroups::sweep_orphans`, which removes them once empty.
            Some(Err(_)) => continue,
        };
        if !alive {
            let mut dirs: Vec<std::path::PathBuf> = recorded
                .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect();
            dirs.extend(v2.filter(|dir| !dirs.contains(dir)));
            // Only a container's own groups, `.../minibox/ID`, whatever the
            // file says: ending a group kills every process in it.
            let ours = |dir: &std::path::PathBuf| {
                dir.file_name()
                    .is_some_and(|name| name == entry.file_name())
                    && dir
                        .parent()
                        .and_then(|p| p.file_name())
                        .is_some_and(|name| name == "minibox")
            };
            Group {
                dirs: dirs.into_iter().filter(ours).collect(),
            }
            .end();
            let _ = std::fs::remove_file(&file);
        }
    }
    Ok(())
}
