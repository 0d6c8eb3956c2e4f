//! What step 06 attaches to a container, beside its network: its cgroup,
//! and with `--network none` a loopback that is up.

use crate::cgroups::{Group, Limits};
use std::path::Path;

/// The container's group, recorded in its state directory so that `rm`
/// and the sweep of a crashed monitor find it again.
const GROUP_FILE: &str = "cgroups.json";

pub struct Lockdown {
    pub limits: Limits,
    /// `--network none`: the namespace has only `lo`, and the kernel makes
    /// it down; docker brings it up, so `127.0.0.1` works.
    pub loopback: bool,
    group: Option<Group>,
    dir: Option<std::path::PathBuf>,
}

impl Lockdown {
    pub fn new(limits: Limits, loopback: bool) -> Lockdown {
        Lockdown {
            limits,
            loopback,
            group: None,
            dir: None,
        }
    }
}

impl step04::container::Attach for Lockdown {
    fn created(&mut self, id: &str, _name: &str, dir: &Path) -> anyhow::Result<()> {
        let group = Group::create(id, &self.limits)?;
        let dirs: Vec<String> = group.dirs.iter().map(|d| d.display().to_string()).collect();
        std::fs::write(dir.join(GROUP_FILE), serde_json::to_string(&dirs)?)?;
        self.group = Some(group);
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    // ANCHOR: ready
    fn ready(&mut self, pid: nix::unistd::Pid) -> anyhow::Result<Option<serde_json::Value>> {
        // The init waits at the gate: in its group before it runs anything.
        if let Some(group) = &self.group {
            group.add(pid.as_raw())?;
        }
        if self.loopback {
            // `ip link set lo up`, in the container's network namespace.
            let mut netlink = step05::netlink::Netlink::open_in(pid.as_raw())?;
            let lo = netlink.index("lo")?;
            netlink.set_up(lo, None)?;
        }
        Ok(None)
    }
    // ANCHOR_END: ready

    fn finished(&mut self, _id: &str) {
        if let Some(group) = self.group.take() {
            group.remove();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(GROUP_FILE));
        }
    }
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
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let alive = match containers.read(&entry.file_name()) {
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
            let dirs: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
            Group {
                dirs: dirs.into_iter().map(Into::into).collect(),
            }
            .remove();
            let _ = std::fs::remove_file(&file);
        }
    }
    Ok(())
}
