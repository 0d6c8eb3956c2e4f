//! Registries that misbehave on purpose, for the checks that a client
//! fails well: one line, soon, instead of a hang or a panic.
//!
//! Each is a listening socket inside a lab (see [`NetLab::listen`]) served
//! by grader threads: [`FakeServer::answering_500`] answers every request
//! with `500 Internal Server Error`; [`FakeServer::hanging`] accepts the
//! connection, reads the request, and never answers (a registry behind a
//! stuck proxy: only the client's own timeout ends the wait). Both stop
//! when dropped.

use crate::check::Fail;
use crate::netlab::NetLab;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The 500 server's address: any port of 10.77.0.2.
const ADDRESS_500: &str = "10.77.0.2:0";
/// The hanging server's address: any port of 10.77.0.3.
const ADDRESS_HANGING: &str = "10.77.0.3:0";

/// The body of the 500: what distribution itself says on an internal
/// error (`{"errors":[{"code":..., "message":...}]}`).
const BODY_500: &str = r#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"the grader's registry fails on purpose"}]}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Answer500,
    Hang,
}

/// A fake registry in a lab; stopped when dropped.
pub struct FakeServer {
    address: String,
    listener: Arc<TcpListener>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    requests: AtomicUsize,
    /// Every accepted connection (to shut down on drop) and its thread.
    connections: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

impl FakeServer {
    /// A server on `10.77.0.2:PORT` in `lab` that answers every request
    /// with HTTP 500 and a distribution error body, then closes.
    pub fn answering_500(lab: &NetLab) -> Result<FakeServer, Fail> {
        FakeServer::start(lab, ADDRESS_500, Behaviour::Answer500)
    }

    /// A server on `10.77.0.3:PORT` in `lab` that accepts, reads the
    /// request, and never answers: the connection stays open, silent,
    /// until the client gives up (or the server is dropped).
    pub fn hanging(lab: &NetLab) -> Result<FakeServer, Fail> {
        FakeServer::start(lab, ADDRESS_HANGING, Behaviour::Hang)
    }

    /// `10.77.0.2:41234`: where to point a client, from inside the lab.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How many whole requests (request line and headers) have arrived.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    fn start(lab: &NetLab, address: &str, behaviour: Behaviour) -> Result<FakeServer, Fail> {
        crate::registry::add_subnet(lab)?;
        let listener = Arc::new(lab.listen(address)?);
        let bound = listener
            .local_addr()
            .map_err(|e| Fail::new("the grader's fake server has no address").seen(e))?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let (listener, shared) = (listener.clone(), shared.clone());
            std::thread::spawn(move || accept_loop(&listener, &shared, behaviour))
        };
        Ok(FakeServer {
            address: bound.to_string(),
            listener,
            shared,
            acceptor: Some(acceptor),
        })
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, behaviour: Behaviour) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            continue; // a client that reset before accept(2) took it
        };
        let Ok(ours) = stream.try_clone() else {
            continue;
        };
        let shared_too = shared.clone();
        let thread = std::thread::spawn(move || serve(stream, &shared_too, behaviour));
        shared.connections.lock().unwrap().push((ours, thread));
    }
}

/// One connection: read the request's head, then answer or stay silent.
fn serve(mut stream: TcpStream, shared: &Shared, behaviour: Behaviour) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return, // the client left (or we were stopped)
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    match behaviour {
        Behaviour::Answer500 => {
            let answer = format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json; charset=utf-8\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY_500}",
                BODY_500.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.shutdown(Shutdown::Both);
        }
        Behaviour::Hang => {
            // Read (and drop) whatever else comes, never answering, until
            // the client closes or the server is dropped (shutdown(2) makes
            // this read return 0).
            while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // shutdown(2) on a listening socket wakes a thread blocked in
        // accept(2) on it (Linux: EINVAL); the loop then sees `stop`.
        // SAFETY: a plain syscall on a descriptor we still own.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *self.shared.connections.lock().unwrap());
        for (stream, thread) in connections {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }
}
