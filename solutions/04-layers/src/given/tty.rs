//! `-t`: a terminal of the container's own.
//!
//! **Without `-t`** the container's stdin, stdout and stderr are pipes,
//! which the runtime copies to and from its own (or, detached, into the
//! container's log): see [`crate::pipes`]. No fd of the caller's reaches
//! the container.
//!
//! **With `-t`** the command gets a terminal of its own: a *pseudo-terminal*
//! (pty), a pair of character devices made by `openpty(3)`. What is written
//! to the *master* side arrives on the *slave* side as if typed, through the
//! kernel's line discipline: that is what turns Ctrl-C (byte 0x03) into a
//! SIGINT for the terminal's foreground process group, echoes what is typed
//! and lets a shell do job control. The container's init leads a session of
//! its own (step 02) and makes the slave that session's *controlling
//! terminal* with `ioctl(TIOCSCTTY)`; the command inherits the session and
//! the terminal. The runtime keeps the master and copies bytes both ways
//! between it and the user's terminal, which it puts in *raw* mode so that
//! Ctrl-C travels as a byte to the container's terminal instead of
//! signalling the runtime. Shell: `script -q -c CMD /dev/null` does the same
//! dance.

use nix::errno::Errno;
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::setsid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// What the container's command gets as stdin, stdout and stderr.
#[derive(Debug)]
pub enum Stdio {
    /// Three pipes; the runtime keeps their other ends (without `-t`).
    Pipes(crate::pipes::Inside),
    /// All three on the slave side of a pty, as the controlling terminal.
    Terminal { master: RawFd, slave: OwnedFd },
}

impl Stdio {
    // ANCHOR: in_child
    /// In the container's init, before anything else: set up fds 0, 1, 2.
    /// (Right after the clone: fine only because the runtime is still
    /// single-threaded then; the error path allocates its message.)
    pub fn in_child(&self) -> Result<(), (String, Errno)> {
        let fail = |what: &str| {
            let what = what.to_string();
            move |errno| (what.clone(), errno)
        };
        match self {
            Stdio::Pipes(pipes) => pipes.in_child(),
            Stdio::Terminal { master, slave } => {
                // The master is the runtime's end: the container must not
                // hold it, or the runtime would never see the pty hang up.
                let _ = nix::unistd::close(*master);
                // setsid(2): a new session, so a terminal can be ours (the
                // init leads one already: step 02).
                if nix::unistd::getsid(None) != Ok(nix::unistd::getpid()) {
                    setsid().map_err(fail("cannot start a session for the terminal (setsid)"))?;
                }
                // ioctl(TIOCSCTTY): make the slave this session's controlling
                // terminal; Ctrl-C then signals its foreground group.
                // SAFETY: a plain ioctl on a valid fd, with an int argument.
                let made = unsafe { nix::libc::ioctl(slave.as_raw_fd(), nix::libc::TIOCSCTTY, 0) };
                Errno::result(made).map_err(fail(
                    "cannot make the pty the controlling terminal (TIOCSCTTY)",
                ))?;
                for fd in 0..3 {
                    dup2_to(slave.as_raw_fd(), fd)
                        .map_err(fail("cannot connect the pty (dup2)"))?;
                }
                Ok(())
            }
        }
    }
    // ANCHOR_END: in_child
}

fn dup2_to(from: RawFd, to: RawFd) -> nix::Result<()> {
    // SAFETY: dup2 on raw fds we own for the child's whole life; the
    // target (0, 1, 2) is replaced atomically.
    Errno::result(unsafe { nix::libc::dup2(from, to) }).map(drop)
}

/// A new pty, sized like the user's terminal when there is one.
pub fn open_pty() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    use anyhow::Context;
    let stdin = std::io::stdin();
    let size = winsize_of(stdin.as_fd());
    // openpty(3): /dev/ptmx for the master, its /dev/pts/N for the slave.
    let pty = nix::pty::openpty(size.as_ref(), None).context("cannot open a pseudo-terminal")?;
    // The command must inherit neither the master nor the slave's extra
    // fd (it gets the slave as 0, 1, 2, which dup2 makes without the flag):
    // close-on-exec on both.
    for fd in [pty.master.as_fd(), pty.slave.as_fd()] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    Ok((pty.master, pty.slave))
}

fn winsize_of(fd: BorrowedFd) -> Option<nix::pty::Winsize> {
    let mut size = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one Winsize into the struct we pass.
    let got = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut size) };
    (got == 0 && size.ws_row > 0).then_some(size)
}

/// The user's terminal in raw mode until dropped (then as it was).
pub struct RawMode(Option<Termios>);

impl RawMode {
    // ANCHOR: raw_mode
    /// Raw mode on stdin, if stdin is a terminal.
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        // cfmakeraw(3): no echo, no line editing, no signals from keys:
        // every byte goes to the container's terminal as typed.
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode(None);
        }
        RawMode(Some(saved))
    }
    // ANCHOR_END: raw_mode
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Copy the pty's output to `out`, and (with `input`) stdin to the pty,
/// until the container's side hangs up. Runs on a thread of its own, started
/// only after the container is cloned (the runtime stays single-threaded
/// until then).
pub fn relay(
    master: OwnedFd,
    input: bool,
    mut out: Box<dyn Write + Send>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut master_file = std::fs::File::from(master);
        let stdin = std::io::stdin();
        let mut reading_stdin = input;
        let mut buffer = [0u8; 8192];
        loop {
            let master_fd = master_file.as_fd();
            let stdin_fd = stdin.as_fd();
            let mut fds = vec![PollFd::new(master_fd, PollFlags::POLLIN)];
            if reading_stdin {
                fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
            let master_ready = fds[0].revents().unwrap_or(PollFlags::empty());
            let stdin_ready = fds
                .get(1)
                .and_then(|f| f.revents())
                .unwrap_or(PollFlags::empty());
            drop(fds);
            if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            {
                // read(2) on the master: EIO once every slave fd is closed,
                // that is, once the container is gone.
                match master_file.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out
                            .write_all(&buffer[..n])
                            .and_then(|_| out.flush())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            if stdin_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                // read(2) on fd 0 itself, not through std's buffered stdin:
                // poll(2) knows nothing of bytes sitting in a user buffer.
                match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                    Ok(0) | Err(_) => reading_stdin = false,
                    Ok(n) => {
                        if master_file.write_all(&buffer[..n]).is_err() {
                            reading_stdin = false;
                        }
                    }
                }
            }
        }
    })
}
