//! The runtime's side of a container's birth: which process does what.
//!
//! One `clone` makes the child, inside its new namespaces. From then on
//! there are two processes running this code, and each has its part:
//!
//! - the **child** can't give its own user namespace its maps: the kernel
//!   takes a map only from a process with the right capabilities in the
//!   *parent* user namespace, so it waits at a gate (a pipe) until the
//!   runtime has written them, then goes on as the container's init;
//! - the **runtime**, outside, writes the maps into `/proc/CHILD/` while
//!   the child waits, and only then opens the gate.
//!
//! Shell: `unshare --user sh -c 'echo $$; sleep 100'` in one terminal, and
//! `echo '0 1000 1' > /proc/PID/uid_map` from another: the outside half.

use crate::namespaces::{clone_flags, clone_into, Cloned};
use crate::userns::write_maps;
use crate::ContainerSpec;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;

// ANCHOR: launch
/// Make the container's first process, in the namespaces `spec` asks for
/// (born in the cgroup2 group open as `cgroup`, where the kernel can).
///
/// In the child: `Ok(Cloned::Child)`, nothing else done (it goes on to
/// wait at the gate). In the runtime: `Ok(Cloned::Parent(pid))` once the
/// child's user namespace, if `spec` asks for one, has its maps; or an
/// error, and then no child is left: neither running nor a zombie.
pub fn launch(spec: &ContainerSpec, cgroup: Option<std::os::fd::RawFd>) -> anyhow::Result<Cloned> {
    // TODO(lesson-02): afterwards, in the runtime: a child exists in new namespaces of the kinds `spec.namespaces` asks for, and when `spec.user_mapping` is set its user namespace has its uid and gid maps, written from this side; if they can't be written, the child is gone (killed and reaped) and the error is returned; in the child: `Child`, with nothing else done
    // The child is stopped at a gate the caller opens later: it can't go
    // on before the maps exist. A child killed and never waited for is a
    // zombie. Shell: `kill -KILL PID; wait PID`.
    todo!(
        "lesson-02: afterwards, in the runtime: a child exists in new namespaces of the kinds `spec.namespaces` asks for, and when `spec.user_mapping` is set its user namespace has its uid and gid maps, written from this side; if they can't be written, the child is gone (killed and reaped) and the error is returned; in the child: `Child`, with nothing else done"
    );
}
// ANCHOR_END: launch
