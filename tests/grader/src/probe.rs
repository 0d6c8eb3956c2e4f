//! The probe: the grader's own program, run *inside* a container.
//!
//! A step's graded test binary, started as `BINARY --probe WHAT ...`, does
//! one experiment and prints what the kernel answered, one `key: value` line
//! each, instead of running the checks. Checks copy it into a container's
//! root filesystem (with its libraries) and run it there with the runtime
//! under test: the container's view, asked directly.

use std::path::Path;

/// Run the probe `args` (after `--probe`) and exit.
pub fn main(args: &[String]) -> ! {
    let code = match args.first().map(String::as_str) {
        Some("escape") if args.len() == 2 => escape(&args[1]),
        Some("devices") => devices(),
        Some("write") => write(&args[1..]),
        Some("euid") => {
            say("euid", nix::unistd::geteuid());
            0
        }
        Some("setuid-copy") if args.len() == 3 => setuid_copy(&args[1], &args[2]),
        Some("chmod-stdout") => chmod_stdout(),
        Some("listen") if args.len() == 2 => listen(&args[1]),
        Some("connect") if args.len() == 3 => connect(&args[1], &args[2]),
        Some(name) => match crate::exploits::run(name, &args[1..])
            .or_else(|| crate::netattack::run(name, &args[1..]))
        {
            Some(code) => code,
            None => {
                eprintln!("probe: unknown experiment {args:?}");
                2
            }
        },
        None => {
            eprintln!("probe: unknown experiment {args:?}");
            2
        }
    };
    std::process::exit(code)
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{key}: {value}");
}

fn errno_name(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(raw) => format!("{:?}", nix::errno::Errno::from_raw(raw)),
        None => error.to_string(),
    }
}

/// Try to reach `marker`, a file outside the container, the ways a root
/// process would: through `/proc/1/root`, then the classic chroot escape.
fn escape(marker: &str) -> i32 {
    let relative = marker.trim_start_matches('/');
    let by_proc = Path::new("/proc/1/root").join(relative).exists();
    say("proc1-root", if by_proc { "reached" } else { "blocked" });
    // mkdir + chroot into it: our cwd is now *outside* our root, so `..`
    // is not stopped at the root. Climb, then make where we are the root.
    let _ = std::fs::create_dir_all("/tmp/.grader-escape");
    let chrooted = nix::unistd::chdir("/").and_then(|_| nix::unistd::chroot("/tmp/.grader-escape"));
    if let Err(errno) = chrooted {
        say("chroot-climb", format!("chroot failed: {errno:?}"));
        return 0;
    }
    for _ in 0..64 {
        let _ = nix::unistd::chdir("..");
    }
    let _ = nix::unistd::chroot(".");
    let by_climb = Path::new(marker).exists();
    say("chroot-climb", if by_climb { "reached" } else { "blocked" });
    0
}

/// The devices and /sys, as a program inside finds them.
fn devices() -> i32 {
    use std::io::{Read, Write};
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .and_then(|mut f| f.write_all(b"grader"));
    say(
        "dev-null-write",
        null.map_or_else(|e| errno_name(&e), |_| "ok".into()),
    );
    let mut zeros = [0xffu8; 64];
    let zero = std::fs::File::open("/dev/zero").and_then(|mut f| f.read_exact(&mut zeros));
    say(
        "dev-zero-read",
        match zero {
            Ok(()) if zeros.iter().all(|b| *b == 0) => "zeros".to_string(),
            Ok(()) => "not zeros".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => "EOF".to_string(),
            Err(e) => errno_name(&e),
        },
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .and_then(|mut f| f.write_all(b"x"));
    say(
        "dev-full-write",
        full.map_or_else(|e| errno_name(&e), |_| "ok".into()),
    );
    let mut random = [0u8; 16];
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random));
    say(
        "dev-urandom-read",
        urandom.map_or_else(|e| errno_name(&e), |_| "ok".into()),
    );
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let path = format!("/dev/{name}");
        say(
            &path,
            match std::fs::metadata(&path) {
                Ok(m) if m.file_type().is_char_device() => format!(
                    "c {}:{} {:o}",
                    nix::sys::stat::major(m.rdev()),
                    nix::sys::stat::minor(m.rdev()),
                    m.mode() & 0o7777
                ),
                Ok(_) => "not a character device".into(),
                Err(e) => errno_name(&e),
            },
        );
    }
    for dir in ["/dev/pts", "/dev/shm"] {
        say(
            dir,
            if Path::new(dir).is_dir() {
                "dir"
            } else {
                "missing"
            },
        );
    }
    let sys = std::fs::File::create("/sys/grader-probe");
    say(
        "sys-write",
        sys.map_or_else(|e| errno_name(&e), |_| "ok".into()),
    );
    0
}

/// Try to create each file in `paths`; say ok or the errno.
fn write(paths: &[String]) -> i32 {
    for path in paths {
        let made = std::fs::write(path, b"grader");
        say(path, made.map_or_else(|e| errno_name(&e), |_| "ok".into()));
    }
    0
}

/// Copy `from` to `to` and make the copy setuid root (mode 4755): what a
/// container's root can leave in its writable layer, on the host's disk.
fn setuid_copy(from: &str, to: &str) -> i32 {
    use std::os::unix::fs::PermissionsExt;
    let made = std::fs::copy(from, to)
        .and_then(|_| std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o4755)));
    say(
        "setuid-copy",
        made.map_or_else(|e| errno_name(&e), |_| "ok".into()),
    );
    0
}

/// Write some bytes to stdout, then `chmod 4755` whatever fd 1 is, through
/// `/proc/self/fd/1`: a host file handed to the container (a log) becomes a
/// setuid program; a pipe's mode means nothing. Says what fd 1 is.
fn chmod_stdout() -> i32 {
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let _ = std::io::stdout().write_all(b"\x7fELF, or so\n");
    let _ = std::io::stdout().flush();
    let kind = match std::fs::metadata("/proc/self/fd/1") {
        Ok(m) if m.file_type().is_fifo() => "a pipe",
        Ok(m) if m.is_file() => "a file",
        Ok(_) => "something else",
        Err(_) => "unknown",
    };
    let chmod =
        std::fs::set_permissions("/proc/self/fd/1", std::fs::Permissions::from_mode(0o4755));
    eprintln!("stdout: {kind}");
    eprintln!(
        "chmod: {}",
        chmod.map_or_else(|e| errno_name(&e), |_| "ok".into())
    );
    0
}

/// Serve one TCP connection on PORT: say "listening", then tell the client
/// who we are, and print who it was (the source address the packets had).
fn listen(port: &str) -> i32 {
    use std::io::Write;
    let listener = match std::net::TcpListener::bind(("0.0.0.0", port.parse::<u16>().unwrap_or(0)))
    {
        Ok(listener) => listener,
        Err(e) => {
            say("listen", errno_name(&e));
            return 1;
        }
    };
    say("listen", "ready");
    let _ = std::io::stdout().flush();
    let name = nix::unistd::gethostname()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Serve every client until killed: one line each.
    loop {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                let _ = writeln!(stream, "hello from {name}");
                say("peer", peer.ip());
                let _ = std::io::stdout().flush();
            }
            Err(e) => {
                say("peer", errno_name(&e));
                return 1;
            }
        }
    }
}

/// Connect to HOST:PORT (HOST an address, or a name from /etc/hosts, as a
/// libc resolver with `hosts: files` finds it) and print the first line.
fn connect(host: &str, port: &str) -> i32 {
    use std::io::BufRead;
    let address: Option<std::net::IpAddr> = host.parse().ok().or_else(|| {
        std::fs::read_to_string("/etc/hosts")
            .ok()?
            .lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                let ip = words.next()?;
                words.any(|w| w == host).then(|| ip.parse().ok()).flatten()
            })
    });
    let Some(address) = address else {
        say("connect", "unknown-host");
        return 0;
    };
    let target = std::net::SocketAddr::new(address, port.parse().unwrap_or(0));
    match std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(2)) {
        Ok(stream) => {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stream).read_line(&mut line);
            say("connect", format!("ok {}", line.trim()));
        }
        Err(e) => say("connect", errno_name(&e)),
    }
    0
}
