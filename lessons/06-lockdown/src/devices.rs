//! Device rules: which devices a container may use.
//!
//! A device node is a file that *is* a driver: its type (`c`haracter or
//! `b`lock) and two numbers, the major (which driver) and the minor (which
//! of its devices), say which one; its name and its place say nothing. Root
//! with `CAP_MKNOD` (one of docker's 14) on a filesystem that allows device
//! nodes (the container's `/dev`, a tmpfs) can make a node for any device
//! of the host: `mknod /dev/disk b 254 0` is the host's disk, readable
//! whatever the container's root. File permissions don't stop root, and
//! capabilities don't tell one device from another. The kernel's *device
//! rules* do: each `mknod(2)` of a device and each open of a device node
//! is checked against the rules of the caller's cgroup first
//! (`devcgroup_check_permission`), and refused with `EPERM` if they say no.
//! A device opened before (the container's stdio) is not checked again.
//!
//! Two places hold rules, and the kernel asks both:
//!
//! - **v2**: a BPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`, attached
//!   to a cgroup2 directory, run at every access with the device and the
//!   access asked, answering allow or deny ([`program`], [`bpf`]). v2 has
//!   no files for this, only programs; shell: `bpftool cgroup show DIR`.
//! - **v1**: the `devices` controller's files: `echo a > devices.deny`, then
//!   `echo 'c 1:3 rwm' > devices.allow` for each rule; `devices.list`
//!   shows them ([`write_v1`]).
//!
//! The program runs for the task's v2 group even on a hybrid host, where
//! v1 holds the devices controller: one mechanism wherever a cgroup2
//! hierarchy is mounted, in the v2 group every container has anyway, so no
//! extra move into a v1 tree (each costs an RCU grace period). The v1 files
//! are the fallback: no cgroup2 mounted, or a kernel that refuses the
//! program. Where neither works the container does not start, as docker's
//! runc refuses to (it calls a missing v1 devices hierarchy "fatal for
//! security reasons", and fails when the v2 program can't be attached).

pub use crate::given::bpf;

use crate::cgroups::Group;
use anyhow::{bail, Context};
use bpf::Insn;
use std::path::Path;

/// A device's type, as the kernel's device rules know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

impl Kind {
    /// `BPF_DEVCG_DEV_BLOCK` (1) or `BPF_DEVCG_DEV_CHAR` (2), <linux/bpf.h>.
    pub fn bpf_type(self) -> i32 {
        match self {
            Kind::Block => 1,
            Kind::Char => 2,
        }
    }
}

/// The accesses, as bits: the kernel's `BPF_DEVCG_ACC_*`, v1's `m r w`.
pub const MKNOD: u32 = 1;
pub const READ: u32 = 2;
pub const WRITE: u32 = 4;
pub const ALL: u32 = MKNOD | READ | WRITE;

/// One allow rule: `c 1:3 rwm` in v1's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    /// `None`: any (`*`).
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// [`MKNOD`], [`READ`], [`WRITE`], or'ed.
    pub access: u32,
}

const fn char(major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
    Rule {
        kind: Kind::Char,
        major,
        minor,
        access,
    }
}

// ANCHOR: default
/// Docker's default rules (moby's `oci/defaults.go`, and what runc adds
/// to every container): everything else is denied.
pub const DEFAULT: [Rule; 11] = [
    // mknod of any device, char or block: a node nobody may open is
    // harmless, and package scripts make them.
    char(None, None, MKNOD),
    Rule {
        kind: Kind::Block,
        major: None,
        minor: None,
        access: MKNOD,
    },
    char(Some(1), Some(3), ALL),    // null
    char(Some(1), Some(5), ALL),    // zero
    char(Some(1), Some(7), ALL),    // full
    char(Some(1), Some(8), ALL),    // random
    char(Some(1), Some(9), ALL),    // urandom
    char(Some(5), Some(0), ALL),    // tty: the opener's own terminal
    char(Some(5), Some(2), ALL),    // ptmx: a new pseudo-terminal (of the container's devpts)
    char(Some(136), None, ALL),     // pts/N: the pseudo-terminals
    char(Some(10), Some(200), ALL), // net/tun (making an interface needs CAP_NET_ADMIN)
];
// ANCHOR_END: default
// Left out of docker's list: `c 5:1` (/dev/console). runc puts the
// container's terminal there with a bind mount, but a rule is about the
// number, and 5:1 opened is the *host's* console: root in a docker
// container can mknod it and write to it. minibox's containers have no
// /dev/console (their terminal is a pts), so 5:1 stays denied. moby denies
// fuse (10:229) by name, and so do these rules, by leaving it out.

/// As v1's `devices.allow` takes it: `c 136:* rwm`.
impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let kind = match self.kind {
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let access: String = [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
            .iter()
            .filter(|(bit, _)| self.access & bit != 0)
            .map(|(_, letter)| *letter)
            .collect();
        write!(
            f,
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }
}

// ANCHOR: program
/// The rules as a program for the kernel's device hook: it answers 1
/// (allow) when a rule allows the access asked, and 0 (deny) otherwise.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    // TODO(lesson-06): when this returns, the instructions are a program the kernel's verifier accepts for the device hook, and that answers, at each mknod or open of a device node by the group's processes, 1 (allowed) when one of `rules` has the device's type, its major (or any), its minor (or any), and every access asked among its own; else 0, which the caller gets as EPERM. Shell (v1's words for the same rules): `echo a > devices.deny; echo 'c 1:3 rwm' > devices.allow`
    // The kernel starts it with r1 pointing at its `struct
    // bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, where
    // access_type is (access << 16) | type: the type 1 for block, 2 for
    // char (BPF_DEVCG_DEV_*), the access a mask of the bits MKNOD, READ,
    // WRITE above (BPF_DEVCG_ACC_*; an open for reading and writing asks
    // both). The answer is what r0 holds at exit. The verifier (at load)
    // refuses a read outside those 12 bytes, a jump past the end, or an
    // exit with r0 never set; a jump skips the instructions it counts.
    // `bpftool prog dump xlated id N` shows a loaded program.
    todo!(
        "lesson-06: when this returns, the instructions are a program the kernel's verifier accepts for the device hook, and that answers, at each mknod or open of a device node by the group's processes, 1 (allowed) when one of `rules` has the device's type, its major (or any), its minor (or any), and every access asked among its own; else 0, which the caller gets as EPERM. Shell (v1's words for the same rules): `echo a > devices.deny; echo 'c 1:3 rwm' > devices.allow`"
    );
}
// ANCHOR_END: program

/// The v1 controller's files in the group's `dir`: everything denied,
/// then each rule allowed. A group may allow only what its parent allows.
pub fn write_v1(dir: &Path, rules: &[Rule]) -> anyhow::Result<()> {
    use std::io::Write;
    let open = |file: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(file))
            .with_context(|| format!("cannot open {}", dir.join(file).display()))
    };
    // `a`: all devices, all accesses; the group's list starts empty.
    open("devices.deny")?
        .write_all(b"a")
        .context("cannot write \"a\" to devices.deny")?;
    // One rule per write(2), all through one open file.
    let mut allow = open("devices.allow")?;
    for rule in rules {
        allow
            .write_all(rule.to_string().as_bytes())
            .with_context(|| format!("cannot write {:?} to devices.allow", rule.to_string()))?;
    }
    Ok(())
}

// ANCHOR: apply
/// Give the container's `group` (not yet holding any process) `rules`:
/// a program on its v2 directory where it has one; else, or if the kernel
/// runs no device programs, the v1 controller in a group of its own there.
/// Where neither is possible the container must not start: an error. A
/// program the verifier refuses is an error too, never a fallback.
pub fn apply(group: &mut Group, id: &str, rules: &[Rule]) -> anyhow::Result<()> {
    let refused = match group.v2_dir() {
        Some(dir) => match bpf::load(&program(rules)) {
            Ok(fd) => match bpf::attach(&dir, &fd) {
                Ok(()) => return Ok(()),
                Err(error) => Some(error),
            },
            // A program the verifier refused is a bug to show, not a
            // reason to fall back.
            Err(refusal @ bpf::Refusal::Verifier(_)) => return Err(refusal.into()),
            Err(refusal) => Some(refusal.into()),
        },
        None => None,
    };
    match group.add_v1(id, "devices")? {
        Some(dir) => write_v1(&dir, rules),
        None => match refused {
            Some(error) => Err(error.context(
                "no device rules for the container, and no v1 devices controller either",
            )),
            None => bail!(
                "no device rules for the container: this host has neither a cgroup2 hierarchy nor the v1 devices controller mounted"
            ),
        },
    }
}
// ANCHOR_END: apply

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_v1_writes_them() {
        let shown: Vec<String> = DEFAULT.iter().map(Rule::to_string).collect();
        assert_eq!(shown[0], "c *:* m");
        assert_eq!(shown[1], "b *:* m");
        assert_eq!(shown[2], "c 1:3 rwm");
        assert_eq!(shown[9], "c 136:* rwm");
    }

    /// What any program of rules must be: instructions, the last an exit.
    #[test]
    fn the_program_ends_with_an_exit() {
        let text: Vec<String> = program(&DEFAULT).iter().map(Insn::to_string).collect();
        assert_eq!(text.last().map(String::as_str), Some("exit"), "{text:#?}");
    }
}
