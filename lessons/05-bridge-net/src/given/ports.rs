//! Holding a published port: a socket bound to it, never listening.
//!
//! `-p 8080:80` is a DNAT rule (see [`crate::firewall`]): the kernel
//! rewrites packets for port 8080 before any socket sees them. Nothing in
//! that stops a program of the host from binding 8080 too, before or after:
//! it would listen, and never be reached (or, once the rule is gone, be
//! reached by the container's clients). docker's answer is `docker-proxy`,
//! a process per port that listens on it for the container's life (and
//! copies bytes, for the cases the rule can't handle).
//!
//! minibox holds the port more cheaply: `bind(2)` a TCP socket to
//! `0.0.0.0:PORT`, and keep it open in the container's monitor until the
//! container ends. A bound socket owns its port in the namespace's port
//! table as a listening one does, but `listen(2)` is never called: no
//! connection is ever queued on it, and the DNAT sends every packet past
//! it to the container.
//!
//! - **Before anything is made**, the bind says whether the port is free:
//!   `EADDRINUSE` if any socket of this network namespace has it bound or
//!   listens on it, on any address. `ss -ltn 'sport = :8080'` shows the
//!   listeners, but no tool lists a socket that is only bound (`ss` and
//!   `/proc/net/tcp` walk the listening and connected ones): ours is
//!   invisible there, and a bind is the one true test.
//! - **Without `SO_REUSEADDR`**: the kernel lets two sockets share a port
//!   only if both ask for it and neither listens. Ours never asks, so no
//!   one else can bind the port while we hold it, with the option or
//!   without.
//! - The socket is `SOCK_CLOEXEC`: the container's init, forked from the
//!   monitor, drops it at `execve`; the container never sees it.

use anyhow::bail;
use nix::libc;
use std::os::fd::{FromRawFd, OwnedFd};

// ANCHOR: hold
/// Bind a TCP socket to `0.0.0.0:PORT` for each published host port, or
/// say which one is taken. The sockets hold the ports until dropped.
pub fn hold(ports: &[(u16, u16)]) -> anyhow::Result<Vec<OwnedFd>> {
    let mut held = Vec::new();
    for (host, inside) in ports {
        // socket(2): an IPv4 TCP socket. CLOEXEC: no exec'd program keeps it.
        // SAFETY: plain syscall; its result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: `fd` is a new socket that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: host.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::UNSPECIFIED).to_be(),
            },
            sin_zero: [0; 8],
        };
        // bind(2) to 0.0.0.0:HOST: it claims the port on every address of
        // this namespace, or fails with EADDRINUSE if anything has it.
        // SAFETY: `address` is a valid sockaddr_in and its size is given.
        let bound = unsafe {
            libc::bind(
                fd,
                (&address as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EADDRINUSE) {
                bail!(
                    "-p {host}:{inside}: port {host} is already in use in this network namespace (ss -ltn 'sport = :{host}')"
                );
            }
            bail!("-p {host}:{inside}: cannot bind port {host}: {error}");
        }
        held.push(socket);
    }
    Ok(held)
}
// ANCHOR_END: hold

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_refuses_other_binds_and_is_free_once_dropped() {
        // In a network namespace of this test's thread alone (unshare(2)
        // moves only the calling thread): the host's ports are not touched.
        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            println!("needs root (a network namespace of its own): not run");
            return;
        }
        // A port the kernel picks, free now: bind, note it, close.
        let probe = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let held = hold(&[(port, 80)]).unwrap();
        // std's TcpListener sets SO_REUSEADDR, as most servers do.
        let other = std::net::TcpListener::bind(("0.0.0.0", port));
        assert_eq!(
            other.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        let again = hold(&[(port, 80)]).unwrap_err().to_string();
        assert!(
            again.contains("already in use") && !again.contains('\n'),
            "{again}"
        );
        drop(held);
        assert!(std::net::TcpListener::bind(("0.0.0.0", port)).is_ok());
    }
}
