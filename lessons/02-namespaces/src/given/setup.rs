//! The init's small parts: the gate it waits at, its exit, becoming root
//! in a user namespace, the host name.

use crate::ContainerSpec;
use nix::errno::Errno;
use nix::unistd::{read, write, Gid, Uid};
use std::os::fd::OwnedFd;

/// A one-shot gate: the child waits at it until the runtime has finished the
/// outside half of the set-up (the user namespace maps).
pub struct Gate {
    read: OwnedFd,
    write: OwnedFd,
}

impl Gate {
    pub fn new() -> anyhow::Result<Self> {
        use anyhow::Context;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("cannot create the start gate (pipe2)")?;
        Ok(Gate { read, write })
    }

    /// In the runtime: let the child go on.
    pub fn open(self) {
        let Gate {
            read,
            write: writer,
        } = self;
        drop(read);
        let _ = write(&writer, b"go");
    }

    /// In the child: wait until the runtime opens the gate. `false` if the
    /// runtime went away instead (its end closed without a word).
    pub fn wait(self) -> bool {
        let Gate {
            read: reader,
            write,
        } = self;
        drop(write); // or we would hold the pipe open ourselves
        let mut byte = [0u8; 2];
        loop {
            match read(&reader, &mut byte) {
                Ok(n) => return n > 0,
                Err(Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// End this process with `code`, now.
pub fn exit(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process without running the runtime's exit
    // handlers, which belong to the parent's copy of the program.
    unsafe { nix::libc::_exit(code) }
}

/// After the maps are written: take uid and gid 0 inside. A process that
/// created a user namespace keeps its old ids, which may not be mapped (root
/// outside, say, when root inside is 100000 outside).
pub fn become_root(spec: &ContainerSpec) -> nix::Result<()> {
    let root_gid = Gid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)?;
    if spec.user_mapping.is_some_and(|m| m.privileged) {
        // Drop the host's supplementary groups; unprivileged writers had
        // to deny setgroups, so there it is not possible (nor needed).
        nix::unistd::setgroups(&[])?;
    }
    let root = Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root)
}

// ANCHOR: set_hostname
/// Name the caller's UTS namespace: sethostname(2) changes the name of the
/// caller's UTS namespace only; in a new one, the host keeps its own.
/// Shell: `unshare --uts sh -c 'hostname box; hostname'`.
pub fn set_hostname(name: &str) -> nix::Result<()> {
    nix::unistd::sethostname(name)
}
// ANCHOR_END: set_hostname
