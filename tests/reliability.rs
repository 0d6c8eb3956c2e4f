//! The finished runtime under hostile input, concurrency and escape
//! attempts. Not graded: these hold the reference (`solution-08`) to what
//! the workshop promises, and run with `cargo test`.
//!
//! Every run is in a lab network namespace of its own, with a fresh
//! `--root`; nothing touches the host's network or state.

use grader::NetLab;
use libtest_mimic::{Arguments, Failed, Trial};

/// Step 04's containers with a life of their own (given code there).
#[path = "reliability/containers.rs"]
mod containers;

/// Step 05's bridge networks against a container, or a hand in the store.
#[path = "reliability/bridges.rs"]
mod bridges;

/// A check of given code, run with the grader's Ctx (see `containers`).
type GivenCheck = fn(&grader::Ctx) -> grader::Outcome;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const MINIBOX: &str = env!("CARGO_BIN_EXE_solution-08");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Inside a container this binary is the probe (see `probe_image`).
    if args.get(1).map(String::as_str) == Some("--probe") {
        grader::probe::main(&args[2..]);
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("reliability: needs root (containers, labs); not run");
        return;
    }
    let mut tests = vec![
        Trial::test("bad_input_is_one_line_125_and_changes_nothing", bad_input),
        Trial::test("a_container_sees_nothing_of_the_host", isolation),
        Trial::test("parallel_runs_share_state_without_harm", concurrency),
        Trial::test(
            "a_crash_at_any_stage_is_cleaned_by_the_next_command",
            crashes,
        ),
        Trial::test("no_container_types_into_the_callers_terminal", terminal),
        Trial::test("an_image_cannot_move_the_containers_proc", moved_proc),
        Trial::test("exec_i_ends_with_its_command", exec_i_ends),
        Trial::test(
            "a_contexts_dockerfile_is_a_file_of_the_context",
            hostile_dockerfile,
        ),
        Trial::test(
            "a_pid_host_container_leaves_no_process_behind",
            pid_host_leftovers,
        ),
        Trial::test(
            "damaged_records_are_skipped_listed_and_removable",
            damaged_records,
        ),
        Trial::test(
            "two_stores_in_one_namespace_share_no_address_or_subnet",
            two_stores,
        ),
        Trial::test(
            "a_published_port_is_refused_if_taken_and_held_while_running",
            held_ports,
        ),
        Trial::test(
            "nft_runs_only_to_add_rules_that_are_missing",
            nft_only_when_missing,
        ),
        Trial::test(
            "a_rogue_router_advertisement_is_refused",
            bridges::rogue_router_advertisement,
        ),
        Trial::test(
            "forged_source_addresses_are_dropped_at_the_bridge",
            bridges::forged_sources,
        ),
        Trial::test(
            "a_big_hosts_file_is_not_read_whole",
            bridges::a_big_hosts_file_is_not_read_whole,
        ),
        Trial::test(
            "tampered_network_records_reach_no_nft_script",
            bridges::tampered_network_records,
        ),
        Trial::test(
            "store_locks_are_not_followed_and_networks_is_private",
            bridges::store_links_and_modes,
        ),
    ];
    // Checks of step 04's given code, with the grader's Ctx and cleanup.
    let given: [(&str, GivenCheck); 10] = [
        (
            "detached_containers_keep_running",
            containers::detached_containers_keep_running,
        ),
        ("stop_then_kill", containers::stop_then_kill),
        (
            "logs_keep_what_was_printed",
            containers::logs_keep_what_was_printed,
        ),
        ("rm_leaves_nothing", containers::rm_leaves_nothing),
        ("names_are_unique", containers::names_are_unique),
        (
            "an_interactive_terminal",
            containers::an_interactive_terminal,
        ),
        ("it_needs_a_terminal", containers::it_needs_a_terminal),
        (
            "a_dead_monitor_is_noticed",
            containers::a_dead_monitor_is_noticed,
        ),
        (
            "bad_container_input_is_one_line",
            containers::bad_container_input_is_one_line,
        ),
        (
            "a_monitor_that_panics_says_why",
            containers::a_monitor_that_panics_says_why,
        ),
    ];
    for (name, check) in given {
        tests.push(Trial::test(name, move || {
            grader::run_unscored(grader::step!("reliability", grader::Needs::Root), check)
                .map_err(Failed::from)
        }));
    }
    libtest_mimic::run(&Arguments::from_args(), tests).exit();
}

/// A fresh state dir and a lab, for one test.
struct Lab {
    net: NetLab,
    root: PathBuf,
}

impl Lab {
    fn new(name: &str) -> Result<Lab, Failed> {
        let root =
            std::env::temp_dir().join(format!("minibox-reliability-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        Ok(Lab {
            net: NetLab::new().map_err(|f| f.to_string())?,
            root,
        })
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_at(&self.root, args)
    }

    /// minibox with the store at `root`, in this lab.
    fn run_at(&self, root: &Path, args: &[&str]) -> Output {
        let mut command = self
            .net
            .command(MINIBOX, &["--root", &root.to_string_lossy()]);
        command.args(args).stdin(std::process::Stdio::null());
        command.output().expect("run minibox")
    }

    /// The ids `ps` lists (with `-a`: stopped ones too).
    fn ids(&self, all: bool) -> Vec<String> {
        self.ids_at(&self.root, all)
    }

    fn ids_at(&self, root: &Path, all: bool) -> Vec<String> {
        let out = self.run_at(root, if all { &["ps", "-a"] } else { &["ps"] });
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    }

    fn ok(&self, args: &[&str]) -> Result<String, Failed> {
        self.ok_at(&self.root, args)
    }

    fn ok_at(&self, root: &Path, args: &[&str]) -> Result<String, Failed> {
        let out = self.run_at(root, args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("minibox {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into())
        }
    }

    /// Remove every container of the store at `root`, then the store.
    fn clear(&self, root: &Path) {
        // Containers first (their mounts are in their own namespaces).
        let ids = self.ids_at(root, true);
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.run_at(root, &args);
        }
        let _ = std::fs::remove_dir_all(root);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for root in [self.root.with_extension("b"), self.root.clone()] {
            if root.exists() {
                self.clear(&root);
            }
        }
    }
}

/// Every path under `dir` with its size: what "nothing changed" compares.
fn tree(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            if meta.is_dir() {
                pending.push(path.clone());
            }
            out.insert(path, if meta.is_file() { meta.len() } else { 0 });
        }
    }
    out
}

fn bad_input() -> Result<(), Failed> {
    let lab = Lab::new("bad-input")?;
    lab.ok(&["run", "--rm", "--network", "none", "base", "true"])?;
    lab.ok(&["network", "create", "lab"])?;
    let long = "a".repeat(300);
    let table: &[&[&str]] = &[
        &["run", "--name", "../x", "base", "true"],
        &["run", "--name", "", "base", "true"],
        &["run", "--name", "a/b", "base", "true"],
        &["run", "--hostname", "bad_host!", "base", "true"],
        &["run", "--hostname", &long, "base", "true"],
        &["run", "-p", "70000:80", "base", "true"],
        &["run", "-p", "a:b", "base", "true"],
        &["run", "-p", "80:0", "base", "true"],
        &["run", "-p", "80/udp", "base", "true"],
        &["run", "-p", ":80", "base", "true"],
        &["run", "-e", "=x", "base", "true"],
        &["run", "-w", "relative", "base", "true"],
        &["run", "--network", "nosuch", "base", "true"],
        &["run", "nosuch-image", "true"],
        &["network", "create", "--subnet", "10.0.0.0/33", "n1"],
        &["network", "create", "--subnet", "300.1.1.0/24", "n1"],
        &["network", "create", "--subnet", "abc", "n1"],
        &[
            "network",
            "create",
            "--subnet",
            "10.201.5.0/24",
            "--gateway",
            "10.9.9.9",
            "n1",
        ],
        &["network", "create", "bad!name"],
        &["network", "create", "lab.ipam"],
        &["network", "create", "lab"],
        &["network", "create", "bridge"],
        &["network", "rm", "nosuch"],
        &["build", "-t", "Bad!Name", "/nonexistent"],
        &["rm", "nosuch"],
        &["exec", "nosuch", "true"],
        &["inspect", "nosuch"],
    ];
    let before = tree(&lab.root);
    let mut problems = Vec::new();
    for args in table {
        let out = lab.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        if out.status.code() != Some(125) || lines.len() != 1 || !lines[0].starts_with("minibox: ")
        {
            problems.push(format!(
                "{args:?}: exit {:?}, stderr {err:?}",
                out.status.code()
            ));
        }
    }
    let after = tree(&lab.root);
    if before != after {
        let changed: Vec<_> = after
            .iter()
            .filter(|(p, s)| before.get(*p) != Some(s))
            .map(|(p, _)| p.display().to_string())
            .collect();
        problems.push(format!("the store changed: {changed:?}"));
    }
    let links = lab
        .net
        .sh("ip -o link show | wc -l")
        .map_err(|f| f.to_string())?;
    if problems.is_empty() {
        println!(
            "{} bad inputs: one line, exit 125, nothing written ({} links in the lab)",
            table.len(),
            links.trim()
        );
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The caller's terminal, as the finished runtime is usually started: its
/// controlling terminal, stdin and stdout. run, run -i, exec, exec -i and
/// a build's RUN each try to push keystrokes into it (TIOCSTI).
fn terminal() -> Result<(), Failed> {
    use grader::terminal::{self, Terminal, Wired, MARKER};
    let lab = Lab::new("terminal")?;
    probe_image(&lab)?;
    let root = lab.root.to_string_lossy().into_owned();
    let probe = ["grader-probe", "--probe", "tiocsti", MARKER];
    lab.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "typist",
        "probe",
        "sleep",
        "1000",
    ])?;
    let context = lab.root.join("typist-context");
    std::fs::create_dir_all(&context).map_err(|e| e.to_string())?;
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM probe\nRUN {}\n", serde_json::json!(probe)),
    )
    .map_err(|e| e.to_string())?;
    let context = context.to_string_lossy().into_owned();
    let none = ["--network", "none"];
    let tries: [(&str, Vec<&str>); 5] = [
        (
            "run",
            [&["run", "--rm"][..], &none, &["probe"], &probe].concat(),
        ),
        (
            "run -i",
            [&["run", "-i", "--rm"][..], &none, &["probe"], &probe].concat(),
        ),
        ("exec", [&["exec", "typist"][..], &probe].concat()),
        ("exec -i", [&["exec", "-i", "typist"][..], &probe].concat()),
        ("a build's RUN", vec!["build", "-t", "typed", &context]),
    ];
    for (what, args) in tries {
        let term = Terminal::new().map_err(|f| f.to_string())?;
        let command = lab
            .net
            .command(MINIBOX, &[&["--root", &root][..], &args].concat());
        let (status, said) = term
            .run(
                command,
                Wired::StdinAndStdout,
                std::time::Duration::from_secs(30),
            )
            .map_err(|f| f.to_string())?;
        if !status.success() {
            return Err(format!("{what}: {status}: {said}").into());
        }
        terminal::expect_blocked(&term, what, &said).map_err(|f| f.to_string())?;
    }
    terminal::control(std::time::Duration::from_secs(30)).map_err(|f| f.to_string())?;
    Ok(())
}

/// An image whose `/proc` is a link out of place (`../merged/p`, followed
/// from the host's side while the init mounts) would get a proc that the
/// masks miss, its `core_pattern` writable: every such run and RUN must
/// be refused before the container runs anything, and a normal one works.
fn moved_proc() -> Result<(), Failed> {
    let lab = Lab::new("moved-proc")?;
    probe_image(&lab)?;
    let context = lab.root.join("moved-proc");
    std::fs::create_dir_all(context.join("root/p")).map_err(|e| e.to_string())?;
    for (link, target) in [("proc", "../merged/p"), ("sys", "../merged/p")] {
        let dir = lab.root.join(format!("moved-{link}"));
        std::fs::create_dir_all(dir.join("root/p")).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(target, dir.join("root").join(link))
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("Dockerfile"), "FROM probe\nCOPY root/ /\n")
            .map_err(|e| e.to_string())?;
        let tag = format!("moved-{link}");
        lab.ok(&["build", "-t", &tag, &dir.to_string_lossy()])?;
        let out = lab.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            &tag,
            "grader-probe",
            "--probe",
            "proc-sys",
        ]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(125) || said.contains("reached") || err.lines().count() != 1 {
            return Err(format!(
                "an image with /{link} -> {target}: exit {:?}, {said} {err}",
                out.status.code()
            )
            .into());
        }
        let again = lab.root.join(format!("moved-{link}-run"));
        std::fs::create_dir_all(&again).map_err(|e| e.to_string())?;
        std::fs::write(
            again.join("Dockerfile"),
            format!("FROM {tag}\nRUN [\"grader-probe\", \"--probe\", \"proc-sys\"]\n"),
        )
        .map_err(|e| e.to_string())?;
        let built = lab.run(&["build", "-t", "x", &again.to_string_lossy()]);
        if built.status.success() || String::from_utf8_lossy(&built.stdout).contains("reached") {
            return Err(format!("a RUN in an image with /{link} -> {target} ran").into());
        }
    }
    lab.ok(&["run", "--rm", "--network", "none", "probe", "true"])?;
    Ok(())
}

/// `exec -i` of a command that reads none of its stdin ends when the
/// command does, however much is piped in (the copier must not hold the
/// command's end of the stdin pipe, or it writes into it for ever).
fn exec_i_ends() -> Result<(), Failed> {
    use std::io::Write;
    let lab = Lab::new("exec-i")?;
    lab.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "idle",
        "base",
        "sleep",
        "1000",
    ])?;
    let root = lab.root.to_string_lossy().into_owned();
    let mut child = lab
        .net
        .command(MINIBOX, &["--root", &root, "exec", "-i", "idle", "true"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().expect("piped");
    // Until the pipe breaks: the runtime stopped reading. Not joined: on a
    // failure, whatever holds the pipe may hold it for ever.
    std::thread::spawn(move || {
        let chunk = vec![0u8; 65536];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let ended = grader::poll(std::time::Duration::from_secs(30), || {
        child.try_wait().ok().flatten()
    });
    let _ = child.kill();
    let _ = child.wait();
    match ended {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("exec -i idle true: {status}").into()),
        None => Err("exec -i of a command that reads nothing never ended".into()),
    }
}

/// The context is somebody else's directory, and so is its `Dockerfile`:
/// a link to a host file must not be read (its lines would come back in
/// the parse errors), a FIFO must not hang the build, `/dev/zero` must not
/// fill its memory. Each build ends, fails with one line, and shows
/// nothing of the host file.
fn hostile_dockerfile() -> Result<(), Failed> {
    let lab = Lab::new("dockerfile")?;
    let secret = lab.root.join("secret");
    std::fs::write(&secret, "hostsecret-7d1f:x:0:0\n").map_err(|e| e.to_string())?;
    let context = lab.root.join("context");
    let dockerfile = context.join("Dockerfile");
    let root = lab.root.to_string_lossy().into_owned();
    let mut problems = Vec::new();
    type Plant = Box<dyn Fn(&Path) -> std::io::Result<()>>;
    let cases: Vec<(&str, Plant)> = vec![
        ("a link to a host file", {
            let secret = secret.clone();
            Box::new(move |at: &Path| std::os::unix::fs::symlink(&secret, at))
        }),
        (
            "a link through /proc/self/root",
            Box::new(move |at: &Path| {
                let depth = at.components().count();
                let up = "../".repeat(depth);
                let target = format!("{up}proc/self/root{}", secret_path(at));
                std::os::unix::fs::symlink(target, at)
            }),
        ),
        (
            "a FIFO",
            Box::new(|at: &Path| {
                nix::unistd::mkfifo(at, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .map_err(std::io::Error::from)
            }),
        ),
        (
            "a link to /dev/zero",
            Box::new(|at: &Path| std::os::unix::fs::symlink("/dev/zero", at)),
        ),
    ];
    for (what, plant) in cases {
        let _ = std::fs::remove_dir_all(&context);
        std::fs::create_dir_all(&context).map_err(|e| e.to_string())?;
        plant(&dockerfile).map_err(|e| format!("{what}: {e}"))?;
        let mut child = lab
            .net
            .command(
                MINIBOX,
                &[
                    "--root",
                    &root,
                    "build",
                    "-t",
                    "x",
                    &context.to_string_lossy(),
                ],
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let ended = grader::poll(std::time::Duration::from_secs(30), || {
            child.try_wait().ok().flatten()
        });
        if ended.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            problems.push(format!("Dockerfile as {what}: the build never ended"));
            continue;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            problems.push(format!("Dockerfile as {what}: the build succeeded"));
        }
        if text.contains("hostsecret") {
            problems.push(format!(
                "Dockerfile as {what}: the host file's line came back: {}",
                text.trim()
            ));
        }
        if out
            .stderr
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            != 1
        {
            problems.push(format!(
                "Dockerfile as {what}: not one line: {}",
                text.trim()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The secret's absolute path, beside the context's dir (`at` is
/// ROOT/context/Dockerfile, the secret ROOT/secret).
fn secret_path(at: &Path) -> String {
    let root = at.parent().and_then(Path::parent).unwrap_or(Path::new("/"));
    root.join("secret").to_string_lossy().into_owned()
}

/// `--pid host`: the container's init is not a PID namespace's init, and a
/// process it started in the background outlives it unless the runtime
/// ends the container's group. Both ways the container can end: by itself
/// (foreground run) and by `rm -f` (detached).
fn pid_host_leftovers() -> Result<(), Failed> {
    let lab = Lab::new("pid-host")?;
    // The shell waits until its background child is `sleep` (the exec
    // done), prints the host pid, and ends (or, detached, waits).
    let script = |tail: &str| {
        format!(
            "sleep 1000 & p=$!; c=; until [ \"$c\" = sleep ]; do read c < /proc/$p/comm; done; \
             echo $p > /tmp/pid; echo $p; {tail}"
        )
    };
    let left = |pid: i32| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        // A zombie has ended (its parent has yet to reap it).
        let state = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .next()?
            .to_string();
        (comm.trim() == "sleep" && state != "Z").then_some(state)
    };
    let mut problems = Vec::new();
    // Still there after the container's end: a problem, and ended here
    // (by its pid, a sleep this test started).
    let mut still_there = |pid: i32, after: &str| {
        if let Some(state) = left(pid) {
            problems.push(format!(
                "after {after}, the container's background sleep (pid {pid}) is still there, state {state}"
            ));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    };
    let out = lab.ok(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "--network",
        "none",
        "base",
        "sh",
        "-c",
        &script("true"),
    ])?;
    let Ok(pid) = out.trim().parse::<i32>() else {
        return Err(format!("the container printed {out:?}, not a pid").into());
    };
    still_there(pid, "`run --pid host` ended");
    lab.ok(&[
        "run",
        "-d",
        "--pid",
        "host",
        "--network",
        "none",
        "--name",
        "held",
        "base",
        "sh",
        "-c",
        &script("sleep 1000"),
    ])?;
    let pid = grader::poll(std::time::Duration::from_secs(30), || {
        let out = lab.run(&["exec", "held", "cat", "/tmp/pid"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<i32>()
            .ok()
    })
    .ok_or("the detached container never wrote its sleep's pid")?;
    if left(pid).is_none() {
        return Err(format!(
            "pid {pid} is not a running sleep before rm -f: the probe saw nothing"
        )
        .into());
    }
    lab.ok(&["rm", "-f", "held"])?;
    still_there(pid, "`rm -f`");
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// An image `probe` = base + this binary as /usr/bin/grader-probe, with
/// the libraries it needs.
fn probe_image(lab: &Lab) -> Result<(), Failed> {
    probe_image_at(lab, &lab.root)
}

fn probe_image_at(lab: &Lab, root: &Path) -> Result<(), Failed> {
    let context = root.join("probe-context");
    let files = context.join("files");
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    rootfs::add_program(&files, &me, "grader-probe").map_err(|e| format!("{e:#}"))?;
    std::fs::write(context.join("Dockerfile"), "FROM base\nCOPY files/ /\n")
        .map_err(|e| e.to_string())?;
    lab.ok_at(root, &["build", "-t", "probe", &context.to_string_lossy()])?;
    Ok(())
}

fn isolation() -> Result<(), Failed> {
    let lab = Lab::new("isolation")?;
    probe_image(&lab)?;
    let root = lab.root.to_string_lossy().into_owned();
    // A marker on the host, outside the image: a container must not reach it.
    let marker = lab.root.join("host-marker");
    std::fs::write(&marker, "host\n").map_err(|e| e.to_string())?;
    let script = format!(
        "echo pids: $(ls -d /proc/[0-9]* | wc -l); echo links: $(ls /sys/class/net); \
         echo store-mounts: $(while read -r a b c d point rest; do case \"$point\" in '{root}'*) echo x;; esac; done < /proc/self/mountinfo | grep -c x); \
         test -e '{root}' && echo store: visible || echo store: hidden; \
         echo init-args: $(tr '\\0' ' ' < /proc/1/cmdline); \
         grader-probe --probe escape '{}'",
        marker.display()
    );
    let out = lab.ok(&["run", "--rm", "probe", "sh", "-c", &script])?;
    let says = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or("(nothing)")
            .trim()
            .to_string()
    };
    let pids: u32 = says("pids").parse().unwrap_or(u32::MAX);
    let mut problems = Vec::new();
    if pids > 20 {
        problems.push(format!(
            "{pids} processes visible inside (expected only the container's few)"
        ));
    }
    if says("links") != "eth0 lo" {
        problems.push(format!(
            "interfaces inside: {} (expected eth0 lo)",
            says("links")
        ));
    }
    if says("store-mounts") != "0" || says("store") != "hidden" {
        problems.push(format!(
            "the image store is reachable: {} mounts, {}",
            says("store-mounts"),
            says("store")
        ));
    }
    // The init is a copy of the runtime: its command line (--root, the
    // runtime's path) is readable by everyone, dumpable or not.
    if says("init-args") != "minibox-init" {
        problems.push(format!(
            "/proc/1/cmdline shows {:?} (expected minibox-init, not the runtime's command line)",
            says("init-args")
        ));
    }
    for escape in ["proc1-root", "chroot-climb"] {
        if says(escape) != "blocked" {
            problems.push(format!("{escape}: {}", says(escape)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n(inside said:\n{out})", problems.join("\n")).into())
    }
}

fn concurrency() -> Result<(), Failed> {
    let lab = Lab::new("concurrency")?;
    lab.ok(&["run", "--rm", "--network", "none", "base", "true"])?;
    lab.ok(&["network", "create", "shared"])?;
    let context = lab.root.join("ctx");
    std::fs::create_dir_all(&context).map_err(|e| e.to_string())?;
    std::fs::write(
        context.join("Dockerfile"),
        "FROM base\nRUN echo hi > /greeting\n",
    )
    .map_err(|e| e.to_string())?;
    let lab = std::sync::Arc::new(lab);
    // 4 workers × 25: a detached container on the shared network, a run
    // that ends at once, a build of the same Dockerfile now and then, and a
    // network of its own made and removed.
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let lab = lab.clone();
            let context = context.clone();
            std::thread::spawn(move || -> Result<Vec<String>, String> {
                let mut ids = Vec::new();
                for i in 0..25 {
                    let id = lab
                        .ok(&["run", "-d", "--network", "shared", "base", "sleep", "300"])
                        .map_err(|e| format!("{e:?}"))?;
                    ids.push(id.trim().to_string());
                    lab.ok(&["run", "--rm", "--network", "none", "base", "true"])
                        .map_err(|e| format!("{e:?}"))?;
                    if i % 5 == 0 {
                        lab.ok(&["build", "-t", "same", &context.to_string_lossy()])
                            .map_err(|e| format!("{e:?}"))?;
                        let net = format!("w{w}n{i}");
                        lab.ok(&["network", "create", &net])
                            .map_err(|e| format!("{e:?}"))?;
                        lab.ok(&["network", "rm", &net])
                            .map_err(|e| format!("{e:?}"))?;
                    }
                }
                Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for worker in workers {
        ids.extend(worker.join().map_err(|_| "a worker panicked")??);
    }
    // Every container is there, with an address of its own.
    let inspect = lab.ok(&["network", "inspect", "shared"])?;
    let json: serde_json::Value = serde_json::from_str(&inspect).map_err(|e| e.to_string())?;
    let network = if json.is_array() {
        json[0].clone()
    } else {
        json
    };
    let containers = network["Containers"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut addresses: Vec<String> = containers
        .values()
        .filter_map(|c| c["IPv4Address"].as_str().map(String::from))
        .collect();
    let count = addresses.len();
    addresses.sort();
    addresses.dedup();
    let mut problems = Vec::new();
    if count != 100 || addresses.len() != 100 {
        problems.push(format!(
            "{count} containers on the network, {} distinct addresses (expected 100 and 100)",
            addresses.len()
        ));
    }
    // The image built four times at once is there, once.
    if let Err(e) = lab.ok(&["inspect", "same"]) {
        problems.push(format!("the image built in parallel is lost: {e:?}"));
    }
    let running = lab.ids(false).len();
    if running != 100 {
        problems.push(format!(
            "ps lists {running} running containers (expected 100)"
        ));
    }
    // Every stored layer is what its name says.
    for entry in std::fs::read_dir(lab.root.join("layers/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        use sha2::Digest;
        let tar = std::fs::read(entry.path().join("layer.tar")).unwrap_or_default();
        let hex = format!("{:x}", sha2::Sha256::digest(&tar));
        if entry.file_name().to_string_lossy() != hex {
            problems.push(format!(
                "layer {} holds a tar whose sha256 is {hex}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    lab.ok(&args)?;
    let left = lab.ok(&["network", "inspect", "shared"])?;
    if left.contains("IPv4Address") {
        problems.push("addresses still allocated after every container was removed".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The store holds what it says: every layer's tar hashes to its name, and
/// every image's layers are there.
fn store_problems(root: &Path) -> Vec<String> {
    use sha2::Digest;
    let mut problems = Vec::new();
    let layers = root.join("layers/sha256");
    for entry in std::fs::read_dir(&layers).into_iter().flatten().flatten() {
        let tar = std::fs::read(entry.path().join("layer.tar")).unwrap_or_default();
        let hex = format!("{:x}", sha2::Sha256::digest(&tar));
        if entry.file_name().to_string_lossy() != hex {
            problems.push(format!(
                "layer {} does not match its tar",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    for entry in std::fs::read_dir(root.join("images/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path()).unwrap_or_default())
                .unwrap_or_default();
        for diff_id in config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let hex = diff_id
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("sha256:");
            if !layers.join(hex).join("layer.tar").exists() {
                problems.push(format!(
                    "image {} names a missing layer {hex}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    problems
}

fn crashes() -> Result<(), Failed> {
    use std::os::unix::process::ExitStatusExt;
    let lab = Lab::new("crashes")?;
    lab.ok(&["run", "--rm", "base", "true"])?;
    let context = lab.root.join("ctx");
    std::fs::create_dir_all(&context).map_err(|e| e.to_string())?;
    std::fs::write(
        context.join("Dockerfile"),
        "FROM base\nRUN echo crash > /crash\n",
    )
    .map_err(|e| e.to_string())?;
    let ctx = context.to_string_lossy().into_owned();
    let cases: &[(&str, &[&str])] = &[
        ("run:recorded", &["run", "--rm", "base", "true"]),
        ("run:attached", &["run", "--rm", "base", "true"]),
        ("run:running", &["run", "--rm", "base", "sleep", "5"]),
        ("run:ended", &["run", "--rm", "base", "true"]),
        ("build:ran", &["build", "-t", "crashed", "CTX"]),
        ("build:layers", &["build", "-t", "crashed", "CTX"]),
        ("rm:stopped", &["rm", "-f", "victim"]),
        ("network:locked", &["network", "create", "crashnet"]),
    ];
    let mut problems = Vec::new();
    for (stage, args) in cases {
        // A RUN of its own for each build case: a cached step runs nothing.
        let fresh = lab.root.join("ctx-fresh");
        std::fs::create_dir_all(&fresh).map_err(|e| e.to_string())?;
        std::fs::write(
            fresh.join("Dockerfile"),
            format!("FROM base\nRUN echo {stage} > /crash\n"),
        )
        .map_err(|e| e.to_string())?;
        let fresh = fresh.to_string_lossy().into_owned();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "CTX" { fresh.as_str() } else { a })
            .collect();
        if *stage == "rm:stopped" {
            lab.ok(&["run", "-d", "--name", "victim", "base", "sleep", "300"])?;
        }
        let mut command = lab
            .net
            .command(MINIBOX, &["--root", &lab.root.to_string_lossy()]);
        let out = command
            .args(&args)
            .env("MINIBOX_FAULT", stage)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.signal() != Some(9) {
            problems.push(format!(
                "{stage}: the crash point was not reached ({})",
                out.status
            ));
            continue;
        }
        // The next commands see the crash, and clean it.
        let ids = lab.ids(true);
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f"];
            rm.extend(ids.iter().map(String::as_str));
            if let Err(e) = lab.ok(&rm) {
                problems.push(format!("{stage}: rm after the crash failed: {e:?}"));
            }
        }
        if let Err(e) = lab.ok(&["build", "-t", "after", &ctx]) {
            problems.push(format!("{stage}: a build after the crash failed: {e:?}"));
        }
        // The lock died with the crash, and the name was never half-taken.
        if *stage == "network:locked" {
            if let Err(e) = lab
                .ok(&["network", "create", "crashnet"])
                .and_then(|_| lab.ok(&["network", "rm", "crashnet"]))
            {
                problems.push(format!(
                    "{stage}: the network could not be made after the crash: {e:?}"
                ));
            }
        }
        let left: Vec<String> = std::fs::read_dir(lab.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !left.is_empty() {
            problems.push(format!("{stage}: container dirs left: {left:?}"));
        }
        for p in store_problems(&lab.root) {
            problems.push(format!("{stage}: {p}"));
        }
        // (netlink, not /sys: a sysfs shows the namespace that mounted it.)
        let links = lab
            .net
            .sh("ip -o link show | cut -d: -f2 | cut -d@ -f1")
            .map_err(|f| f.to_string())?;
        let extra: Vec<&str> = links
            .split_whitespace()
            .filter(|l| *l != "lo" && *l != "minibox0")
            .collect();
        if !extra.is_empty() {
            problems.push(format!("{stage}: links left in the lab: {extra:?}"));
        }
        let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if mounted.contains(&*lab.root.to_string_lossy()) {
            problems.push(format!(
                "{stage}: a mount under the store is left on the host"
            ));
        }
    }
    if problems.is_empty() {
        println!(
            "{} crashes injected; each cleaned by the next commands",
            cases.len()
        );
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// What a command printed on stderr is only one-line messages of ours:
/// the problems, if not.
fn stderr_problems(args: &[&str], out: &Output) -> Vec<String> {
    let mut problems = Vec::new();
    if out.status.code() == Some(101) {
        problems.push(format!("{args:?} panicked (exit 101)"));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = err.lines().find(|l| !l.starts_with("minibox: ")) {
        problems.push(format!("{args:?}: a stderr line not of ours: {line:?}"));
    }
    problems
}

fn damaged_records() -> Result<(), Failed> {
    use std::os::unix::fs::symlink;
    let lab = Lab::new("damaged")?;
    let id = lab
        .ok(&["run", "-d", "--name", "healthy", "base", "sleep", "300"])?
        .trim()
        .to_string();
    let containers = lab.root.join("containers");
    let record = std::fs::read_to_string(containers.join(&id).join("config.v1.json"))
        .map_err(|e| e.to_string())?;
    // Outside the store: a record that would pass if a link were followed.
    let outside = lab.root.with_extension("outside");
    let _ = std::fs::remove_dir_all(&outside);
    let err = |e: std::io::Error| e.to_string();
    let dir_of = |n: u8| format!("{:x}", n).repeat(64);
    let (link_file, link_dir) = (dir_of(6), dir_of(7));
    std::fs::create_dir_all(outside.join("dir")).map_err(err)?;
    std::fs::write(outside.join("record.json"), record.replace(&id, &link_file)).map_err(err)?;
    std::fs::write(
        outside.join("dir/config.v1.json"),
        record.replace(&id, &link_dir),
    )
    .map_err(err)?;
    let planted: Vec<(String, &str)> = vec![
        (dir_of(1), "{garbage"),
        (dir_of(2), "short id"),
        (dir_of(3), "another's id"),
        (dir_of(4), "empty"),
        (dir_of(5), "a directory"),
        (link_file.clone(), "a link to a file outside"),
        (link_dir.clone(), "its dir a link outside"),
    ];
    for (name, what) in &planted {
        let dir = containers.join(name);
        let file = dir.join("config.v1.json");
        let made = match *what {
            "its dir a link outside" => symlink(outside.join("dir"), &dir),
            _ => std::fs::create_dir_all(&dir),
        };
        made.map_err(err)?;
        match *what {
            "{garbage" => std::fs::write(&file, "{garbage\n"),
            "short id" => std::fs::write(&file, record.replace(&id, "abc")),
            "another's id" => std::fs::write(&file, &record),
            "empty" => std::fs::write(&file, ""),
            "a directory" => std::fs::create_dir(&file),
            "a link to a file outside" => symlink(outside.join("record.json"), &file),
            _ => Ok(()),
        }
        .map_err(err)?;
    }
    let short = |name: &str| name[..12].to_string();
    let mut problems = Vec::new();
    // Each command works for the healthy container, warns once per
    // damaged record in one line, and never panics.
    let commands: Vec<Vec<&str>> = vec![
        vec!["ps"],
        vec!["ps", "-a"],
        vec!["inspect", "-f", "{{.State.Status}}", "healthy"],
        vec!["logs", "healthy"],
        vec!["exec", "healthy", "echo", "exec-ok"],
        vec!["run", "--rm", "base", "echo", "run-ok"],
        vec!["stop", "-t", "1", "healthy"],
    ];
    let mut outputs = BTreeMap::new();
    for args in &commands {
        let out = lab.run(args);
        problems.extend(stderr_problems(args, &out));
        if !out.status.success() {
            problems.push(format!(
                "{args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        for (name, what) in &planted {
            let warned = err.lines().filter(|l| l.contains(&short(name))).count();
            if warned != 1 {
                problems.push(format!(
                    "{args:?}: {warned} warnings about the record that is {what} (expected 1)"
                ));
            }
        }
        outputs.insert(
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        );
    }
    let listed = &outputs["ps"];
    if !listed.contains(&short(&id)) || planted.iter().any(|(n, _)| listed.contains(&short(n))) {
        problems.push(format!("ps should list the healthy one only:\n{listed}"));
    }
    let all = &outputs["ps -a"];
    for (name, what) in &planted {
        let row = all.lines().find(|l| l.starts_with(&short(name)));
        if !row.is_some_and(|r| r.contains("Damaged")) {
            problems.push(format!(
                "ps -a has no Damaged row for the record that is {what}:\n{all}"
            ));
        }
    }
    for (command, expected) in [
        ("inspect -f {{.State.Status}} healthy", "running"),
        ("exec healthy echo exec-ok", "exec-ok"),
        ("run --rm base echo run-ok", "run-ok"),
    ] {
        if outputs[command].trim() != expected {
            problems.push(format!(
                "{command}: {:?} (expected {expected})",
                outputs[command]
            ));
        }
    }
    // Commands aimed at a damaged one: refused in one line, rm -f removes it.
    for (name, what) in &planted {
        let out = lab.run(&["logs", &short(name)]);
        let err = String::from_utf8_lossy(&out.stderr);
        let about: Vec<&str> = err.lines().filter(|l| l.contains(&short(name))).collect();
        if out.status.code() != Some(125) || about.len() != 1 || !about[0].contains("rm -f") {
            problems.push(format!(
                "logs of the record that is {what}: exit {:?}, {err:?}",
                out.status.code()
            ));
        }
        let args = ["rm", "-f", &short(name)];
        let out = lab.run(&args);
        problems.extend(stderr_problems(&args, &out));
        if !out.status.success() {
            problems.push(format!(
                "rm -f of the record that is {what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if std::fs::symlink_metadata(containers.join(name)).is_ok() {
            problems.push(format!("rm -f left the record that is {what}"));
        }
    }
    // Nothing outside the store was followed, or removed.
    for kept in ["record.json", "dir/config.v1.json"] {
        if !outside.join(kept).is_file() {
            problems.push(format!("{kept} outside the store is gone"));
        }
    }
    let _ = std::fs::remove_dir_all(&outside);
    let out = lab.run(&["ps", "-a"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.stderr.is_empty() || stdout.lines().count() != 2 || !stdout.contains("Exited") {
        problems.push(format!(
            "after the rm -f: ps -a {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    lab.ok(&["rm", "healthy"])?;
    if problems.is_empty() {
        println!(
            "{} damaged records: {} commands worked beside them, each warned once, each removed",
            planted.len(),
            commands.len()
        );
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// Two prefixes `A.B.C.D/N` overlap?
fn overlap(a: &str, b: &str) -> bool {
    let parse = |t: &str| -> Option<(u32, u32)> {
        let (address, length) = t.split_once('/')?;
        let address: std::net::Ipv4Addr = address.parse().ok()?;
        Some((u32::from(address), length.parse().ok()?))
    };
    let (Some((a, m)), Some((b, n))) = (parse(a), parse(b)) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - m.min(n)).unwrap_or(0);
    a & mask == b & mask
}

fn two_stores() -> Result<(), Failed> {
    let lab = Lab::new("two-stores")?;
    let a = lab.root.clone();
    let b = lab.root.with_extension("b");
    let _ = std::fs::remove_dir_all(&b);
    std::fs::create_dir_all(&b).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    // Each store: the probe image, a container on its default network and
    // one on a network of its own, both called `own`.
    let mut containers = Vec::new();
    for (store, root) in [("A", &a), ("B", &b)] {
        probe_image_at(&lab, root)?;
        lab.ok_at(root, &["network", "create", "own"])?;
        for network in ["bridge", "own"] {
            let name = format!("{store}-{network}");
            lab.ok_at(
                root,
                &[
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--network",
                    network,
                    "probe",
                    "sleep",
                    "300",
                ],
            )?;
            let settings = lab.ok_at(
                root,
                &[
                    "inspect",
                    "-f",
                    &format!("{{{{json .NetworkSettings.Networks.{network}}}}}"),
                    &name,
                ],
            )?;
            let settings: serde_json::Value =
                serde_json::from_str(&settings).map_err(|e| e.to_string())?;
            let inspect = lab.ok_at(root, &["network", "inspect", network])?;
            let inspect: serde_json::Value =
                serde_json::from_str(&inspect).map_err(|e| e.to_string())?;
            containers.push((
                root.clone(),
                name,
                settings["IPAddress"].as_str().unwrap_or("").to_string(),
                settings["Gateway"].as_str().unwrap_or("").to_string(),
                inspect[0]["Bridge"].as_str().unwrap_or("").to_string(),
                inspect[0]["Subnet"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    for (i, one) in containers.iter().enumerate() {
        for other in &containers[i + 1..] {
            if one.2 == other.2 {
                problems.push(format!("{} and {} both have {}", one.1, other.1, one.2));
            }
            if one.4 == other.4 || overlap(&one.5, &other.5) {
                problems.push(format!(
                    "{} and {} share a bridge or a subnet: {} {} / {} {}",
                    one.1, other.1, one.4, one.5, other.4, other.5
                ));
            }
        }
    }
    // The lab's routing table: one route per network, none overlapping.
    let routes = lab
        .net
        .sh("ip -4 -o route show")
        .map_err(|f| f.to_string())?;
    let prefixes: Vec<&str> = routes
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|p| p.contains('/'))
        .collect();
    for (i, one) in prefixes.iter().enumerate() {
        for other in &prefixes[i + 1..] {
            if overlap(one, other) {
                problems.push(format!("overlapping routes in the lab: {one} and {other}"));
            }
        }
    }
    if prefixes.len() != 4 {
        problems.push(format!(
            "{} routes in the lab (expected 4):\n{routes}",
            prefixes.len()
        ));
    }
    // A subnet the other store's network has is refused, in one line.
    let out = lab.run_at(
        &b,
        &["network", "create", "--subnet", &containers[1].5, "clash"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(125) || err.lines().count() != 1 || !err.contains("overlaps") {
        problems.push(format!(
            "B's network over A's subnet: exit {:?}, {err:?}",
            out.status.code()
        ));
    }
    // Each container reaches its own gateway: a server in the lab, on all
    // its addresses.
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut server = lab
        .net
        .command(&me.to_string_lossy(), &["--probe", "listen", "9300"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut ready = String::new();
    use std::io::BufRead;
    // Kept open while the server runs: it prints a line per client.
    let mut said = std::io::BufReader::new(server.stdout.take().expect("piped"));
    let _ = said.read_line(&mut ready);
    for (root, name, _, gateway, ..) in &containers {
        let said = lab
            .ok_at(
                root,
                &[
                    "exec",
                    name,
                    "grader-probe",
                    "--probe",
                    "connect",
                    gateway,
                    "9300",
                ],
            )
            .unwrap_or_else(|e| format!("{e:?}"));
        if !said.contains("connect: ok") {
            problems.push(format!("{name} can't reach its gateway {gateway}: {said}"));
        }
    }
    // Our own server, by its handle.
    let _ = server.kill();
    let _ = server.wait();
    drop(said);
    lab.clear(&b);
    // With B gone, its bridges are still B's: A's network rm takes its own.
    if let Err(e) = lab
        .ok(&["rm", "-f", "A-own"])
        .and_then(|_| lab.ok(&["network", "rm", "own"]))
    {
        problems.push(format!("A's network rm: {e:?}"));
    }
    if problems.is_empty() {
        let distinct: std::collections::BTreeSet<&String> =
            containers.iter().map(|c| &c.2).collect();
        println!(
            "two stores, one lab: {} containers, {} distinct addresses, {} routes, none overlapping",
            containers.len(),
            distinct.len(),
            prefixes.len()
        );
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// Bind TCP `0.0.0.0:PORT` in the lab (std sets SO_REUSEADDR, as most
/// servers do): a thread of ours enters the lab's network namespace
/// (setns(2) moves only the calling thread) and makes the socket there.
fn bind_in_lab(lab: &Lab, port: u16) -> std::io::Result<std::net::TcpListener> {
    let namespace = std::fs::File::open(lab.net.netns())?;
    std::thread::spawn(move || {
        nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)?;
        std::net::TcpListener::bind(("0.0.0.0", port))
    })
    .join()
    .expect("the binding thread")
}

/// Wait until `ps` lists `name` running (or give up after 30 s).
fn wait_running(lab: &Lab, name: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let out = lab.run(&["ps"]);
        if String::from_utf8_lossy(&out.stdout).contains(name) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn held_ports() -> Result<(), Failed> {
    let lab = Lab::new("ports")?;
    lab.ok(&["run", "--rm", "--network", "none", "base", "true"])?;
    let mut problems = Vec::new();
    let (taken, published) = (18181u16, 18182u16);
    // A service of the lab listens on `taken`: -p refuses it, making nothing.
    let service = bind_in_lab(&lab, taken).map_err(|e| e.to_string())?;
    let before = tree(&lab.root);
    let args = [
        "run",
        "-d",
        "-p",
        &format!("{taken}:80"),
        "base",
        "sleep",
        "300",
    ];
    let out = lab.run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(125)
        || err.lines().count() != 1
        || !err.contains(&taken.to_string())
    {
        problems.push(format!(
            "-p over a listening port: exit {:?}, {err:?}",
            out.status.code()
        ));
    }
    if tree(&lab.root) != before {
        problems.push("the refused run changed the store".to_string());
    }
    drop(service);
    // A detached container holds its port; a foreground run too.
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        &format!("{published}:80"),
        "base",
        "sleep",
        "300",
    ])?;
    match bind_in_lab(&lab, published) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        other => problems.push(format!(
            "bind of a published port while its container runs: {other:?} (expected EADDRINUSE)"
        )),
    }
    lab.ok(&["stop", "-t", "1", "pub"])?;
    if let Err(e) = bind_in_lab(&lab, published) {
        problems.push(format!(
            "after the container ended, its port is still taken: {e}"
        ));
    }
    let mut foreground = lab
        .net
        .command(MINIBOX, &["--root", &lab.root.to_string_lossy()])
        .args([
            "run",
            "--rm",
            "--name",
            "fg",
            "-p",
            &format!("{published}:80"),
            "base",
            "sleep",
            "300",
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    if !wait_running(&lab, "fg") {
        problems.push("the foreground run never showed as running".to_string());
    }
    match bind_in_lab(&lab, published) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        other => problems.push(format!(
            "bind of a port a foreground run publishes: {other:?} (expected EADDRINUSE)"
        )),
    }
    lab.ok(&["stop", "-t", "1", "fg"])?;
    // Our own child, by its handle: the run ends with its container.
    let _ = foreground.wait();
    if let Err(e) = bind_in_lab(&lab, published) {
        problems.push(format!(
            "after the foreground run ended, its port is still taken: {e}"
        ));
    }
    if problems.is_empty() {
        println!("a listening port refused; a published one held while its container ran (run -d and run), free after");
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// A stand-in `nft`, first on minibox's `PATH`: it counts its calls and
/// hands each to the real one. Removed with its directory.
struct NftCounter {
    dir: PathBuf,
}

impl NftCounter {
    fn new(real: &Path) -> Result<NftCounter, Failed> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("minibox-nft-counter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let counter = NftCounter { dir };
        let script = counter.dir.join("nft");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                counter.dir.join("calls").display(),
                real.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        Ok(counter)
    }

    /// The calls so far, one line each (nft's arguments).
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for NftCounter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Step 05 reads its rules over netfilter netlink: `nft` runs only to add
/// what is missing (one batch), never to look or to delete. A network's
/// first run adds its rules; the runs after it start no nft; a `-p` run
/// one, for its own DNAT rules; `rm` none, and the rules are gone.
fn nft_only_when_missing() -> Result<(), Failed> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(real) = std::env::split_paths(&path)
        .map(|dir| dir.join("nft"))
        .find(|nft| nft.is_file())
    else {
        println!("nft is not installed: nothing to count");
        return Ok(());
    };
    let lab = Lab::new("nft")?;
    let counter = NftCounter::new(&real)?;
    let mut dirs = vec![counter.dir.clone()];
    dirs.extend(std::env::split_paths(&path));
    let with_counter = std::env::join_paths(dirs).map_err(|e| e.to_string())?;
    let run = |args: &[&str]| -> Result<usize, Failed> {
        let before = counter.calls().len();
        let out = lab
            .net
            .command(MINIBOX, &["--root", &lab.root.to_string_lossy()])
            .env("PATH", &with_counter)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(
                format!("minibox {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        Ok(counter.calls().len() - before)
    };
    let mut problems = Vec::new();
    let mut expect = |what: &str, calls: usize, most: usize| {
        if calls > most {
            problems.push(format!(
                "{what}: {calls} nft processes, expected at most {most}"
            ));
        }
    };
    // The first run on the default bridge: the table, chains, set, the
    // network's rules: one batch.
    expect(
        "the network's first run",
        run(&["run", "--rm", "base", "true"])?,
        1,
    );
    expect("a second run", run(&["run", "--rm", "base", "true"])?, 0);
    expect(
        "run -d -p (its DNAT rules are new)",
        run(&[
            "run", "-d", "--name", "web", "-p", "18190:80", "base", "sleep", "300",
        ])?,
        1,
    );
    expect(
        "a run while another publishes a port",
        run(&["run", "--rm", "base", "true"])?,
        0,
    );
    expect(
        "rm -f of the publishing container",
        run(&["rm", "-f", "web"])?,
        0,
    );
    let rules = lab
        .net
        .sh("nft list table ip minibox")
        .map_err(|f| f.to_string())?;
    if rules.contains("ctr:") || rules.contains("dnat") {
        problems.push(format!("rm left the container's rules: {rules}"));
    }
    if !rules.contains("masquerade") {
        problems.push(format!("the network's rules should stay: {rules}"));
    }
    if problems.is_empty() {
        println!("nft calls: {:?}", counter.calls());
        Ok(())
    } else {
        problems.push(format!("nft calls: {:?}", counter.calls()));
        Err(problems.join("\n").into())
    }
}
