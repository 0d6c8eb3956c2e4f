//! The seccomp filter minibox installs by default, as an OCI `seccomp`
//! section for crun and runc: a side-by-side start has both runtimes
//! build and install the same filter (docker hands its runtime a profile
//! on every `run`; a bare `crun spec` has none).
//!
//! The list is step 06's `seccomp::denied()` with docker's 14
//! capabilities, which hold none of the guarding ones: every call is
//! denied. `solution-06`'s unit tests check that the two lists agree.

use serde_json::{json, Value};

/// The calls denied outright (with `EPERM`).
pub const DENIED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "syslog",
    "open_by_handle_at",
    "name_to_handle_at",
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "swapon",
    "swapoff",
    "quotactl",
    "bpf",
    "perf_event_open",
    "fanotify_init",
    "lookup_dcookie",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "acct",
    "reboot",
    "vhangup",
    // x86-64 only; libseccomp skips a name the architecture lacks.
    "iopl",
    "ioperm",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
];

/// The OCI `linux.seccomp` section: allow by default; `DENIED` fail with
/// `EPERM`; `clone` with any namespace flag too; `clone3` with `ENOSYS`
/// (its flags are out of a filter's reach); `socket(AF_VSOCK)` with `EPERM`.
pub fn oci_section() -> Value {
    const EPERM: u32 = 1;
    const ENOSYS: u32 = 38;
    const AF_VSOCK: u64 = 40;
    // CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
    let namespace_flags: [u64; 7] = [
        0x0002_0000,
        0x0200_0000,
        0x0400_0000,
        0x0800_0000,
        0x1000_0000,
        0x2000_0000,
        0x4000_0000,
    ];
    let mut rules = vec![json!({
        "names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
    })];
    for flag in namespace_flags {
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    rules.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_EQ"}],
    }));
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_name_once() {
        let mut names = super::DENIED.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), super::DENIED.len());
    }
}
