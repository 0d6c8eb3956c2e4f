//! Without `-t`: the container's stdin, stdout and stderr are pipes, and the
//! runtime copies between them and its own.
//!
//! Steps 02 and 03 hand the command the runtime's own fds 0, 1 and 2. From
//! a shell those are the caller's *terminal*, and a terminal is a door: the
//! `TIOCSTI` ioctl on it pushes bytes into its input queue as if they were
//! typed, and the caller's shell runs them, as root, once the container
//! exits (a process that holds any fd of a terminal can, if it has
//! `CAP_SYS_ADMIN`; step 02's session of its own only closes `/dev/tty`).
//! Redirected, fd 1 may be a host file instead, which the container can
//! reopen, or `chmod 4755`, through `/proc/self/fd/1`. So no fd of the
//! caller's ever enters a container: the container gets the ends of three
//! pipes, the runtime keeps the other ends and copies (docker's shim does
//! the same with FIFOs):
//!
//! ```text
//!   the caller's fd 0 ──copy──> pipe ──> the container's fd 0   (-i; else closed: EOF)
//!   the caller's fd 1 <──copy── pipe <── the container's fd 1
//!   the caller's fd 2 <──copy── pipe <── the container's fd 2   (a detached one's: its log)
//! ```
//!
//! Shell, for the container's side: `CMD <&3 >&4 2>&5 3<&- 4>&- 5>&-`.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The container's ends: stdin's read end, stdout's and stderr's write ends.
#[derive(Debug)]
pub struct Inside {
    /// 0, 1, 2 of the container, in that order.
    ends: [OwnedFd; 3],
    /// The runtime's ends, which the child must not keep (their numbers:
    /// the child has a copy of each, made by the fork).
    theirs: Vec<RawFd>,
}

/// The runtime's ends.
#[derive(Debug)]
pub struct Outside {
    /// stdin's write end with `-i`; without, none: the container reads EOF.
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    /// None when stderr shares stdout's pipe.
    stderr: Option<OwnedFd>,
}

/// How the container's output is kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// stdout and stderr each a pipe of its own: to the runtime's stdout
    /// and stderr.
    Apart,
    /// One pipe for both (a detached container's log): what the container
    /// wrote stays in the order it wrote it, as in one file opened
    /// `O_APPEND`; two pipes read by one relay can't promise that.
    Together,
}

/// The pipes, with `-i` (`interactive`) a stdin the runtime feeds.
pub fn pipes(interactive: bool, streams: Streams) -> anyhow::Result<(Inside, Outside)> {
    use anyhow::Context;
    // pipe2(2) with O_CLOEXEC: no end leaks into any other program this
    // process starts; the child's dup2 onto 0, 1, 2 makes the copies it
    // keeps (dup2 clears the flag on the new fd).
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe (pipe2)");
    let (stdin_read, stdin_write) = pipe()?;
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = match streams {
        Streams::Apart => {
            let (read, write) = pipe()?;
            (Some(read), write)
        }
        Streams::Together => (None, stdout_write.try_clone()?),
    };
    // Without -i the write end closes now: the command's first read of its
    // stdin is end-of-file, as from /dev/null.
    let stdin = interactive.then_some(stdin_write);
    let mut theirs = vec![stdout_read.as_raw_fd()];
    theirs.extend(stderr_read.as_ref().map(|fd| fd.as_raw_fd()));
    theirs.extend(stdin.as_ref().map(|fd| fd.as_raw_fd()));
    Ok((
        Inside {
            ends: [stdin_read, stdout_write, stderr_write],
            theirs,
        },
        Outside {
            stdin,
            stdout: stdout_read,
            stderr: stderr_read,
        },
    ))
}

impl Inside {
    /// The raw fds: the container's three ends, then the runtime's.
    pub fn fds(&self) -> ([RawFd; 3], &[RawFd]) {
        (
            [
                self.ends[0].as_raw_fd(),
                self.ends[1].as_raw_fd(),
                self.ends[2].as_raw_fd(),
            ],
            &self.theirs,
        )
    }

    // ANCHOR: in_child
    /// In the child (the container's init, or `exec`'s command), before it
    /// runs anything of the container's: make the pipes its stdio.
    pub fn in_child(&self) -> Result<(), (String, Errno)> {
        let (ours, theirs) = self.fds();
        // TODO(lesson-04): when this returns, this process's fds 0, 1 and 2 are the container's ends of the three pipes (stdin reads, stdout and stderr write) and no fd of the caller's is among them; it holds none of the runtime's ends either. Shell: `CMD <&3 >&4 2>&5 4<&- ...`
        // Why the runtime's ends must go: the runtime closes stdin's write
        // end when its own input ends, and the command reads end-of-file
        // only once *every* write end is closed (the init never execs, so
        // close-on-exec doesn't close them for it). Report a failure as
        // (what failed, the errno).
        todo!(
            "lesson-04: when this returns, this process's fds 0, 1 and 2 are the container's ends of the three pipes (stdin reads, stdout and stderr write) and no fd of the caller's is among them; it holds none of the runtime's ends either. Shell: `CMD <&3 >&4 2>&5 4<&- ...`"
        );
    }
    // ANCHOR_END: in_child
}

/// Where the container's output goes.
pub enum Sink {
    /// The runtime's own fds (stdout, stderr): a foreground `run`, `exec`,
    /// a build's RUN.
    Fds(RawFd, RawFd),
    /// One file for both (a detached container's log).
    File(std::fs::File),
}

impl Sink {
    /// The runtime's own stdout and stderr.
    pub fn stdio() -> Sink {
        Sink::Fds(1, 2)
    }

    fn fd(&self, stream: usize) -> BorrowedFd<'_> {
        match self {
            // SAFETY: the runtime's own 1 and 2 stay open while it runs.
            Sink::Fds(out, err) => unsafe {
                BorrowedFd::borrow_raw(if stream == 1 { *out } else { *err })
            },
            Sink::File(file) => file.as_fd(),
        }
    }
}

/// The copying, until [`Relay::finish`].
pub struct Relay {
    copier: Copier,
    /// Closed to tell the copier that the container has ended.
    stop: OwnedFd,
}

enum Copier {
    Thread(std::thread::JoinHandle<()>),
    Process(nix::unistd::Pid),
}

impl Outside {
    /// Copy the container's output to `sink` (and, with `-i`, the runtime's
    /// stdin to the container) on a thread, until [`Relay::finish`]. Start
    /// it only once the container is cloned: the runtime must stay
    /// single-threaded until then (fork in a threaded process is unsafe).
    pub fn relay(self, sink: Sink) -> anyhow::Result<Relay> {
        let (stop_read, stop_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || copy(self, sink, stop_read))?;
        Ok(Relay {
            copier: Copier::Thread(thread),
            stop: stop_write,
        })
    }

    /// The same in a process of its own, forked now: for `exec`, which
    /// joins the container's PID namespace, after which the kernel refuses
    /// it a thread (clone(CLONE_THREAD) is EINVAL once `setns` has given
    /// the process's children another PID namespace than its own). Call it
    /// before joining, so the copier stays outside the container. From
    /// here on this process holds none of the runtime's ends: `inside`
    /// forgets them (their numbers may name other fds soon).
    pub fn relay_in_process(self, sink: Sink, inside: &mut Inside) -> anyhow::Result<Relay> {
        use anyhow::Context;
        let (stop_read, stop_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // fork(2): this process is still single-threaded.
        // SAFETY: no other thread exists, nothing is locked across the fork.
        match unsafe { nix::unistd::fork() }.context("cannot start the copier (fork)")? {
            nix::unistd::ForkResult::Child => {
                drop(stop_write);
                // The container's ends are not the copier's: held here, the
                // stdin pipe would never be broken for it (a command that
                // stops reading would leave it writing for ever).
                for fd in inside.fds().0 {
                    let _ = nix::unistd::close(fd);
                }
                copy(self, sink, stop_read);
                // _exit(2): the parent's atexit handlers and buffers are not ours.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                inside.theirs.clear();
                Ok(Relay {
                    copier: Copier::Process(child),
                    stop: stop_write,
                })
            }
        }
    }
}

impl Relay {
    /// The container has ended: copy what is left in the pipes, then stop.
    /// Not "until end-of-file": with `--pid host` a process it left behind
    /// may hold the pipes open for ever.
    pub fn finish(self) {
        drop(self.stop); // the copier sees the stop pipe's end-of-file
        match self.copier {
            Copier::Thread(thread) => {
                let _ = thread.join();
            }
            Copier::Process(pid) => {
                // waitpid(2); ECHILD if a supervisor's wait reaped it first.
                let _ = nix::sys::wait::waitpid(pid, None);
            }
        }
    }
}

/// The relay's loop: poll the container's stdout and stderr (and the
/// runtime's stdin with `-i`), copy what comes.
fn copy(outside: Outside, sink: Sink, stop: OwnedFd) {
    let Outside {
        mut stdin,
        stdout,
        stderr,
    } = outside;
    let mut open = [Some(stdout), stderr];
    let mut reading_stdin = stdin.is_some();
    let mut buffer = [0u8; 16384];
    let mut stopping = false;
    while open.iter().any(Option::is_some) {
        if stopping {
            // Everything the container wrote is in the pipes by now: take
            // it without waiting for more.
            for (index, end) in open.iter_mut().enumerate() {
                if let Some(fd) = end.take() {
                    let _ =
                        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                    while let Ok(n @ 1..) = nix::unistd::read(&fd, &mut buffer) {
                        if write_all(sink.fd(index + 1), &buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            break;
        }
        // SAFETY: fd 0 is the runtime's stdin, open while it runs.
        let own_stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let mut fds: Vec<PollFd> = Vec::with_capacity(4);
        let mut which: Vec<usize> = Vec::with_capacity(4);
        for (index, end) in open.iter().enumerate() {
            if let Some(fd) = end {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(index);
            }
        }
        fds.push(PollFd::new(stop.as_fd(), PollFlags::POLLIN));
        which.push(2);
        if reading_stdin {
            fds.push(PollFd::new(own_stdin, PollFlags::POLLIN));
            which.push(3);
        }
        // poll(2): sleep until one of them has bytes, or hung up.
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(fd, _)| {
                fd.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            })
            .map(|(_, index)| *index)
            .collect();
        drop(fds);
        for index in ready {
            match index {
                0 | 1 => {
                    let Some(fd) = &open[index] else { continue };
                    match nix::unistd::read(fd, &mut buffer) {
                        Ok(0) | Err(_) => open[index] = None, // every writer is gone
                        Ok(n) => {
                            // A sink that can't take more (`| head`): close
                            // the pipe, so the container's next write gets
                            // EPIPE, as in a shell pipeline.
                            if write_all(sink.fd(index + 1), &buffer[..n]).is_err() {
                                open[index] = None;
                            }
                        }
                    }
                }
                2 => stopping = true,
                _ => match nix::unistd::read(own_stdin, &mut buffer) {
                    Ok(0) | Err(_) => {
                        reading_stdin = false;
                        stdin = None; // closed: the command reads end-of-file
                    }
                    Ok(n) => {
                        let written = stdin.as_ref().map(|fd| write_all(fd.as_fd(), &buffer[..n]));
                        if !matches!(written, Some(Ok(()))) {
                            reading_stdin = false;
                            stdin = None;
                        }
                    }
                },
            }
        }
    }
}

fn write_all(fd: BorrowedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}
