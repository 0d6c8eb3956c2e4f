//! The finished runtime under hostile input, concurrency and escape
//! attempts. Not graded: these hold the reference (`solution-06`) to what
//! the workshop promises, and run with `cargo test`.
//!
//! Every run is in a lab network namespace of its own, with a fresh
//! `--root`; nothing touches the host's network or state.

use grader::NetLab;
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const MINIBOX: &str = env!("CARGO_BIN_EXE_solution-06");

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
    let tests = vec![
        Trial::test("bad_input_is_one_line_125_and_changes_nothing", bad_input),
        Trial::test("a_container_sees_nothing_of_the_host", isolation),
        Trial::test("parallel_runs_share_state_without_harm", concurrency),
        Trial::test(
            "a_crash_at_any_stage_is_cleaned_by_the_next_command",
            crashes,
        ),
        Trial::test("no_container_types_into_the_callers_terminal", terminal),
    ];
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
        let mut command = self
            .net
            .command(MINIBOX, &["--root", &self.root.to_string_lossy()]);
        command.args(args).stdin(std::process::Stdio::null());
        command.output().expect("run minibox")
    }

    /// The ids `ps` lists (with `-a`: stopped ones too).
    fn ids(&self, all: bool) -> Vec<String> {
        let out = self.run(if all { &["ps", "-a"] } else { &["ps"] });
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    }

    fn ok(&self, args: &[&str]) -> Result<String, Failed> {
        let out = self.run(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("minibox {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into())
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Containers first (their mounts are in their own namespaces).
        let ids = self.ids(true);
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.run(&args);
        }
        let _ = std::fs::remove_dir_all(&self.root);
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
        &["network", "create", "lab"],
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

/// An image `probe` = base + this binary as /usr/bin/grader-probe, with
/// the libraries it needs.
fn probe_image(lab: &Lab) -> Result<(), Failed> {
    let context = lab.root.join("probe-context");
    let files = context.join("files");
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    rootfs::add_program(&files, &me, "grader-probe").map_err(|e| format!("{e:#}"))?;
    std::fs::write(context.join("Dockerfile"), "FROM base\nCOPY files/ /\n")
        .map_err(|e| e.to_string())?;
    lab.ok(&["build", "-t", "probe", &context.to_string_lossy()])?;
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
