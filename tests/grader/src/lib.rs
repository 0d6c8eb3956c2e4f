//! The grading harness of the minibox workshop.
//!
//! A step's graded checks live in `tests/NN-name.rs`, compiled into both the
//! learner's package (`lesson-NN`) and the reference (`solution-NN`):
//!
//! ```text
//! fn main() {
//!     grader::main(grader::step!("01-fork", Needs::Linux), vec![Check { .. }, ..]);
//! }
//! ```
//!
//! Each check runs the step's binary, looks at what the kernel reports, and
//! passes or fails with expected-vs-seen in plain words. On top of
//! libtest-mimic, so `cargo test` filtering, `--list` and the closing line
//! work as usual. Extra flags (after `--`), or the matching environment
//! variables:
//!
//! - `--grade-json FILE` (`MINIBOX_GRADE_JSON`): a JSON [`report::Report`];
//! - `--grade-junit FILE` (`MINIBOX_GRADE_JUNIT`): JUnit XML;
//! - `--catalog`: print the checks (name, points, book section) as JSON;
//! - `--fail-fast` (`MINIBOX_GRADE_FAIL_FAST=1`): stop at the first failed
//!   check; the checks not yet started are not run (the tools' `verify` and
//!   `mutants` only ask whether *some* check fails, and a failing check is
//!   usually the slowest kind).

pub mod cgroups;
pub mod check;
pub mod cluster;
pub mod etcd;
pub mod exploits;
pub mod fake_server;
pub mod freeze;
pub mod helper;
pub mod lab;
pub mod netattack;
pub mod netlab;
pub mod overlay;
pub mod preflight;
pub mod probe;
pub mod process;
pub mod procfs;
pub mod registry;
pub mod report;
pub mod sources;
pub mod terminal;
pub mod todo;
pub mod tools;

pub use check::{ensure, expect_eq, Check, Fail, Outcome, Requires};
pub use lab::Lab;
pub use netlab::NetLab;
pub use preflight::Needs;
pub use process::{Output, Running};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use process::{Invocation, StderrLog};
use report::{Record, Report};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The step under test.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// `01-fork`: the chapter `book/src/01-fork.md` and the test file name.
    pub id: &'static str,
    /// `lesson-01` or `solution-01`.
    pub package: &'static str,
    /// The path of the binary under test.
    pub binary: &'static str,
    pub needs: Needs,
    /// Where the grader may keep fixtures between runs (cargo's
    /// `CARGO_TARGET_TMPDIR`).
    pub cache: &'static str,
    /// The package's directory: `lessons/01-fork` or `solutions/01-fork`.
    pub manifest_dir: &'static str,
}

/// The [`Step`] of the package this test file is compiled into.
#[macro_export]
macro_rules! step {
    ($id:literal, $needs:expr) => {
        $crate::Step {
            id: $id,
            package: env!("CARGO_PKG_NAME"),
            binary: env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))),
            needs: $needs,
            cache: env!("CARGO_TARGET_TMPDIR"),
            manifest_dir: env!("CARGO_MANIFEST_DIR"),
        }
    };
}

/// What a check works with: the binary under test, and cleanup.
pub struct Ctx {
    step: Step,
    log: StderrLog,
    tracked: Mutex<Vec<procfs::Stat>>,
    /// Every temp dir the check made: removed again at its end, whatever
    /// ended it (see [`Ctx::cleanup`]).
    temp_dirs: Mutex<Vec<PathBuf>>,
}

impl Ctx {
    fn new(step: Step) -> Self {
        Ctx {
            step,
            log: Arc::default(),
            tracked: Mutex::default(),
            temp_dirs: Mutex::default(),
        }
    }

    /// The binary under test with these arguments (`minibox ARGS...`).
    pub fn minibox(&self, args: &[&str]) -> Invocation {
        Invocation::new(self.step.binary, args, self.log.clone())
    }

    /// The path of the binary under test.
    pub fn binary(&self) -> &Path {
        Path::new(self.step.binary)
    }

    /// A process the check caused to exist (a command inside the runtime):
    /// it is killed when the check ends, if it is still the same process.
    pub fn track(&self, pid: i32) {
        if let Some(stat) = procfs::stat(pid) {
            self.tracked.lock().unwrap().push(stat);
        }
    }

    /// Wait (at most 5 s) until a process running `program` appears below
    /// `root` (its child, grandchild, ...); track it, and return its pid.
    /// Gives up early when `root` has ended.
    pub fn process_running(&self, root: i32, program: &str) -> Result<i32, Fail> {
        let expected = which(program)
            .ok_or_else(|| Fail::new(format!("`{program}` is not on this machine")))?;
        let found = poll(std::time::Duration::from_secs(5), || {
            let process = procfs::descendants(root).into_iter().find(|p| {
                p.state != 'Z' && procfs::exe(p.pid).as_deref() == Some(expected.as_path())
            });
            // A runtime that already ended (a zombie until the grader waits
            // for it) will not start anything any more: stop looking.
            let ended = procfs::stat(root).is_none_or(|s| s.state == 'Z');
            match process {
                Some(process) => Some(Some(process.pid)),
                None if ended => Some(None),
                None => None,
            }
        });
        match found.flatten() {
            Some(pid) => {
                self.track(pid);
                Ok(pid)
            }
            None => {
                let below: Vec<String> = procfs::descendants(root)
                    .iter()
                    .map(|p| procfs::describe(p.pid))
                    .collect();
                Err(Fail::new(format!(
                    "the runtime (pid {root}) should be running {program} below it"
                ))
                .expected(format!(
                    "a process whose /proc/PID/exe is {}",
                    expected.display()
                ))
                .seen(if below.is_empty() {
                    format!(
                        "nothing below it; the runtime is {}",
                        procfs::describe(root)
                    )
                } else {
                    format!("below it: {}", below.join(", "))
                }))
            }
        }
    }

    /// Track every process below `root` (see [`Ctx::track`]).
    pub fn track_tree(&self, root: i32) {
        for process in procfs::descendants(root) {
            self.track(process.pid);
        }
    }

    /// Run a host program inside namespaces of process `pid` (like `nsenter
    /// --target PID --uts ...`) and return its stdout. `kinds` are names in
    /// `/proc/PID/ns`.
    pub fn host_in_namespaces_of(
        &self,
        pid: i32,
        kinds: &[&str],
        argv: &[&str],
    ) -> Result<String, Fail> {
        use std::os::unix::process::CommandExt;
        let mut files = Vec::new();
        for kind in kinds {
            let path = format!("/proc/{pid}/ns/{kind}");
            files.push(
                std::fs::File::open(&path)
                    .map_err(|e| Fail::new(format!("cannot open {path}")).seen(e))?,
            );
        }
        let mut command = std::process::Command::new(argv[0]);
        command.args(&argv[1..]);
        // SAFETY: setns(2) is a plain system call, safe between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for file in &files {
                    nix::sched::setns(file, nix::sched::CloneFlags::empty())?;
                }
                Ok(())
            });
        }
        let out = command.output().map_err(|e| {
            Fail::new(format!(
                "cannot run {argv:?} in the namespaces of pid {pid}"
            ))
            .seen(e)
        })?;
        process::note_stderr(&String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The binary under test, at another path (a copy, say).
    pub fn minibox_at(&self, binary: &Path, args: &[&str]) -> Invocation {
        Invocation::new(&binary.to_string_lossy(), args, self.log.clone())
    }

    /// A fresh copy of the workshop's root filesystem (`cargo xtask rootfs`;
    /// `MINIBOX_ROOTFS_SOURCE` picks busybox or the host's programs), with
    /// the grader's probe in it as `/usr/bin/grader-probe`. Each check gets
    /// its own: what a container writes stays in it.
    pub fn rootfs(&self) -> Result<Rootfs, Fail> {
        let setup = |what: &str| {
            let what = what.to_string();
            move |e: anyhow::Error| {
                Fail::new(format!("the grader could not {what}")).seen(format!("{e:#}"))
            }
        };
        let cache = Path::new(self.step.cache).join("grader-rootfs");
        let image = rootfs::cached(&cache, rootfs::Source::Auto)
            .map_err(setup("build its root filesystem"))?;
        let dir = self.temp_dir();
        let path = dir.path().join("rootfs");
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&image)
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ensure(copied, || {
            Fail::new("the grader could not copy its root filesystem")
        })?;
        let me = std::env::current_exe()
            .map_err(|e| Fail::new("cannot find the grader's own binary").seen(e))?;
        rootfs::add_program(&path, &me, "grader-probe")
            .map_err(setup("put its probe in the root filesystem"))?;
        Ok(Rootfs { dir, path })
    }

    /// A fresh empty directory, removed when dropped, and again when the
    /// check ends if something had written into it meanwhile.
    pub fn temp_dir(&self) -> TempDir {
        let dir = TempDir::new(self.step.id);
        self.temp_dirs
            .lock()
            .unwrap()
            .push(dir.path().to_path_buf());
        dir
    }

    /// The end of a check, however it ended (passed, failed, panicked):
    /// the processes it caused are killed, then its temp dirs removed.
    fn cleanup(&self) {
        let mut killed = Vec::new();
        for old in self.tracked.lock().unwrap().drain(..) {
            // Same pid *and* same start time: never signal a stranger that
            // happens to have reused the pid.
            if procfs::stat(old.pid).is_some_and(|now| now.start_time == old.start_time) {
                let _ = kill(Pid::from_raw(old.pid), Signal::SIGKILL);
                killed.push(old);
            }
        }
        // Dead first: a container's monitor still writing its record into
        // the store would make the dir non-empty again as it is removed.
        poll(std::time::Duration::from_secs(5), || {
            killed
                .iter()
                .all(|old| {
                    procfs::stat(old.pid)
                        .is_none_or(|now| now.start_time != old.start_time || now.state == 'Z')
                })
                .then_some(())
        });
        for dir in self.temp_dirs.lock().unwrap().drain(..) {
            // A dying monitor may still remove or write its container's
            // files for a moment: try again until the dir is gone.
            poll(std::time::Duration::from_secs(2), || {
                remove_unless_mounted(&dir).then_some(())
            });
        }
    }

    /// The first panic of the binary under test during this check.
    fn panic(&self) -> Option<todo::Panic> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find_map(|e| todo::find_panic(e))
    }
}

/// Ask `probe` every few milliseconds until it answers `Some`, for at most
/// `timeout`. For facts the kernel will report "soon" (a process adopted, a
/// zombie reaped), without sleeping a fixed, hopeful time.
pub fn poll<T>(timeout: std::time::Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// SIGKILL every process in `pids` (processes a check caused, never others)
/// at once, then wait up to `timeout` for all of them to be *reaped*: gone
/// from `/proc`, not merely dead. Returns the ones still there (zombies
/// nobody waited for, typically).
pub fn kill_and_wait_reaped(pids: &[i32], timeout: std::time::Duration) -> Vec<procfs::Stat> {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    poll(timeout, || {
        pids.iter()
            .all(|&pid| procfs::stat(pid).is_none())
            .then_some(())
    });
    pids.iter().filter_map(|&pid| procfs::stat(pid)).collect()
}

/// The path of a host program, looked up on the usual `PATH`, with symlinks
/// resolved (as `/proc/PID/exe` shows it).
pub fn which(program: &str) -> Option<PathBuf> {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
        .and_then(|path| path.canonicalize().ok())
}

/// A root filesystem for one check (see [`Ctx::rootfs`]).
pub struct Rootfs {
    dir: TempDir,
    path: PathBuf,
}

impl Rootfs {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rootfs path as a command-line argument.
    pub fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// A directory next to the rootfs (outside it), for markers.
    pub fn outside(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs as a tar at `path`, for `minibox import` (steps 05, 06:
    /// the image `probe`, with the grader's probe in it).
    pub fn tar_to(&self, path: &Path) -> Result<(), Fail> {
        let file = std::fs::File::create(path)
            .map_err(|e| Fail::new("the grader could not create its rootfs tar").seen(e))?;
        let mut builder = tar::Builder::new(file);
        builder.follow_symlinks(false);
        builder
            .append_dir_all(".", &self.path)
            .and_then(|_| builder.finish())
            .map_err(|e| Fail::new("the grader could not tar its rootfs").seen(e))
    }
}

/// A temporary directory for one check.
pub struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("grader-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_unless_mounted(&self.0);
    }
}

/// The temp dirs of graders that are gone: a run killed before its cleanup
/// could run (a timeout's SIGKILL, Ctrl-C) leaves its dirs behind; the next
/// run removes them. Only dirs named as [`TempDir`] names them
/// (`grader-LABEL-PID-N`) whose PID is no live process, never through a
/// mount. A grader still running (another step, another checkout) keeps
/// its own; pids are this pid namespace's, so graders that share the temp
/// dir from another pid namespace must not share it with this one.
fn sweep_stale_temp_dirs(tmp: &Path) {
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("grader-") else {
            continue;
        };
        let mut fields = rest.rsplitn(3, '-');
        let (Some(n), Some(pid), Some(_label)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(n) || !digits(pid) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if Path::new("/proc").join(pid).exists() {
            continue; // its grader still runs (or the pid was reused: leave it)
        }
        remove_unless_mounted(&entry.path());
    }
}

/// Remove `dir` and all it holds, unless something is mounted in it; true
/// when it is gone (or was never there, or is left for a mount: nothing
/// more to try).
///
/// Never delete through a mount: a runtime that leaked a bind of the
/// host's /dev or /sys into this directory would have us delete the host's
/// files. Leave it, and say so.
fn remove_unless_mounted(dir: &Path) -> bool {
    if std::fs::symlink_metadata(dir).is_err() {
        return true;
    }
    let mine = dir.to_string_lossy().into_owned();
    let inside = format!("{}/", mine.trim_end_matches('/'));
    let mounted: Vec<String> = procfs::mountinfo(std::process::id() as i32)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|point| *point == mine || point.starts_with(&inside))
        .collect();
    if !mounted.is_empty() {
        eprintln!(
            "grader: not removing {mine}: something is still mounted in it ({})",
            mounted.join(", ")
        );
        return true;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::symlink_metadata(dir).is_err()
}

/// Where the book teaches `section` of `step`.
pub fn book_link(step: &Step, section: &str) -> String {
    format!("book/src/{}.md#{section}", step.id)
}

/// The failure text a learner reads: the unwritten part first if the binary
/// stopped at a `todo!()`, then expected/seen, then the hint and the book.
pub fn explain(step: &Step, check: &Check, fail: &Fail, panic: Option<&todo::Panic>) -> String {
    let mut text = String::new();
    match panic {
        Some(p) if p.todo().is_some() => {
            text.push_str(&format!(
                "not written yet: {}\n  (the program stopped at the todo!() in {})\n",
                p.todo().unwrap_or_default(),
                p.location
            ));
        }
        Some(p) => text.push_str(&format!(
            "the program panicked at {}: {}\n",
            p.location, p.message
        )),
        None => {}
    }
    text.push_str(&fail.to_string());
    text.push_str(&format!(
        "\nhint: {}\nbook: {}",
        check.hint,
        book_link(step, check.section)
    ));
    text
}

/// Run one check and record its result.
fn run_check(step: Step, check: &Check) -> Record {
    // Nothing of the previous check on this thread is this one's stderr.
    process::note_stderr("");
    let ctx = Ctx::new(step);
    let outcome = run_guarded(&ctx, check.run);
    let message = match &outcome {
        Ok(()) => String::new(),
        Err(fail) => explain(&step, check, fail, ctx.panic().as_ref()),
    };
    Record {
        step: step.id.to_string(),
        check: check.name.to_string(),
        points: check.points,
        passed: outcome.is_ok(),
        message,
        book: book_link(&step, check.section),
        hint: check.hint.to_string(),
        more: check.more.to_string(),
        shape: check.shape.to_string(),
    }
}

/// Run `check` with `ctx`, then clean up after it, even when it panicked
/// (a panic is the check's failure, with its message).
fn run_guarded(ctx: &Ctx, check: fn(&Ctx) -> Outcome) -> Outcome {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(ctx)))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string());
            Err(Fail::new("the check itself panicked").seen(message))
        });
    ctx.cleanup();
    outcome
}

/// Run one check of the reference's own tests (not graded: no score, no
/// record), with the same [`Ctx`] and cleanup as a graded one; its failure
/// as text, for libtest-mimic.
pub fn run_unscored(step: Step, check: fn(&Ctx) -> Outcome) -> Result<(), String> {
    let ctx = Ctx::new(step);
    run_guarded(&ctx, check).map_err(|fail| {
        let mut text = fail.to_string();
        if let Some(panic) = ctx.panic() {
            text = format!(
                "the program panicked at {}: {}\n{text}",
                panic.location, panic.message
            );
        }
        text
    })
}

/// Our own flags, taken out before libtest-mimic sees the rest.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extra {
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    catalog: bool,
    fail_fast: bool,
}

fn split_args(args: impl IntoIterator<Item = String>) -> (Extra, Vec<String>) {
    let mut extra = Extra {
        json: std::env::var_os("MINIBOX_GRADE_JSON").map(PathBuf::from),
        junit: std::env::var_os("MINIBOX_GRADE_JUNIT").map(PathBuf::from),
        catalog: false,
        fail_fast: std::env::var_os("MINIBOX_GRADE_FAIL_FAST")
            .is_some_and(|v| !v.is_empty() && v != "0"),
    };
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--grade-json" => extra.json = args.next().map(PathBuf::from),
            "--grade-junit" => extra.junit = args.next().map(PathBuf::from),
            "--catalog" => extra.catalog = true,
            "--fail-fast" => extra.fail_fast = true,
            _ => rest.push(arg),
        }
    }
    (extra, rest)
}

/// Grade `checks` with libtest-mimic `arguments`; return the report and
/// libtest-mimic's conclusion.
pub fn grade(
    step: Step,
    checks: Vec<Check>,
    arguments: &libtest_mimic::Arguments,
) -> (Report, libtest_mimic::Conclusion) {
    grade_on(step, checks, arguments, preflight::requirement, false)
}

/// The words a check that fail-fast mode did not run fails with.
pub const NOT_RUN_AFTER_A_FAILURE: &str =
    "not run: an earlier check failed, and this run stops at the first failure (--fail-fast)";

/// [`grade`], with `probe` telling whether the machine meets a [`Requires`],
/// and `fail_fast`: once a check has failed, the checks not yet started are
/// not run (and not recorded: the report is then incomplete, and not kept as
/// the step's last run).
fn grade_on(
    step: Step,
    checks: Vec<Check>,
    arguments: &libtest_mimic::Arguments,
    probe: impl Fn(Requires) -> Result<(), String>,
    fail_fast: bool,
) -> (Report, libtest_mimic::Conclusion) {
    let total = checks.iter().map(|c| c.points).sum();
    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let failed_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checks: Vec<Arc<Check>> = checks.into_iter().map(Arc::new).collect();
    // Checks whose machine requirement is missing: not run, with the reason.
    let mut probes = std::collections::HashMap::new();
    let mut unrunnable = Vec::new();
    for check in &checks {
        let verdict = probes
            .entry(check.requires)
            .or_insert_with(|| probe(check.requires))
            .clone();
        if let Err(reason) = verdict {
            unrunnable.push((check.name, check.points, reason));
        }
    }
    let trials = checks
        .iter()
        .map(|check| {
            let ignored = unrunnable.iter().any(|(name, ..)| *name == check.name);
            let (name, kind) = (check.name, format!("{} pt", check.points));
            let (check, records) = (check.clone(), records.clone());
            let failed_once = failed_once.clone();
            libtest_mimic::Trial::test(name, move || {
                if fail_fast && failed_once.load(Ordering::SeqCst) {
                    return Err(NOT_RUN_AFTER_A_FAILURE.into());
                }
                let record = run_check(step, &check);
                let result = if record.passed {
                    Ok(())
                } else {
                    failed_once.store(true, Ordering::SeqCst);
                    Err(record.message.clone().into())
                };
                records.lock().unwrap().push(record);
                result
            })
            .with_kind(kind)
            .with_ignored_flag(ignored)
        })
        .collect();
    let conclusion = libtest_mimic::run(arguments, trials);
    // Records in the order the checks are declared, not the order they ended.
    let mut ran = std::mem::take(&mut *records.lock().unwrap());
    ran.sort_by_key(|r| checks.iter().position(|c| c.name == r.check));
    let mut report = Report::new(step.id, step.package, total, ran);
    // (`--include-ignored` runs them anyway; then they have a record.)
    report.skipped = unrunnable
        .into_iter()
        .filter(|(name, ..)| !report.checks.iter().any(|r| r.check == *name))
        .map(|(check, points, reason)| report::Skipped {
            check: check.to_string(),
            points,
            reason,
        })
        .collect();
    (report, conclusion)
}

/// The entry point of a step's graded test file. Never returns.
pub fn main(step: Step, checks: Vec<Check>) -> ! {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--probe") {
        probe::main(&args[2..]);
    }
    let (extra, rest) = split_args(args);
    if extra.catalog {
        let catalog: Vec<_> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "check": c.name, "points": c.points, "section": c.section,
                    "book": book_link(&step, c.section), "hint": c.hint,
                    "more": c.more, "shape": c.shape,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&catalog).unwrap());
        std::process::exit(0);
    }
    let arguments = libtest_mimic::Arguments::from_iter(rest);
    if arguments.list {
        let (_, conclusion) = grade(step, checks, &arguments);
        conclusion.exit();
    }
    let total: u32 = checks.iter().map(|c| c.points).sum();
    let count = checks.len();
    let machine = preflight::Machine::probe(step.needs);
    if let Err(blocked) = preflight::verdict(step.needs, &machine) {
        if step.needs == Needs::Root && machine.linux && !machine.root {
            preflight::rerun_with_sudo(step.package); // returns only if it can't
        }
        eprintln!(
            "\n{}: the checks of step {} can't run on this machine.\n  why: {blocked}\n",
            step.package, step.id
        );
        let mut report = Report::new(step.id, step.package, total, Vec::new());
        report.error = Some(blocked.to_string());
        write_reports(&extra, &report);
        remember(&step, &report);
        std::process::exit(101);
    }
    leaks::become_reaper();
    sweep_stale_temp_dirs(&std::env::temp_dir());
    let (report, conclusion) = grade_on(
        step,
        checks,
        &arguments,
        preflight::requirement,
        extra.fail_fast,
    );
    let leaked = leaks::end_leftovers();
    let not_run = count - report.checks.len() - report.skipped.len();
    let card = report.score_card(not_run);
    if extra.fail_fast {
        print!(
            "{}",
            card.replace(
                "not run: filtered out",
                "not run: --fail-fast stopped at the first failure"
            )
        );
    } else {
        print!("{card}");
    }
    write_reports(&extra, &report);
    if not_run == 0 {
        remember(&step, &report);
    }
    if !leaked.is_empty() {
        eprintln!(
            "\nleak: the program under test left {} process(es) behind, which the grader ended: {}",
            leaked.len(),
            leaked.join(", ")
        );
        std::process::exit(101);
    }
    conclusion.exit()
}

/// Where the last complete graded run of a package is kept:
/// `<target>/grade/<package>.json`. `cargo xtask progress` and `hint` read
/// it, so a learner's own `cargo test -p lesson-NN` counts, and nothing is
/// graded twice.
pub fn last_run_path(target_tmp: &Path, package: &str) -> PathBuf {
    let target = target_tmp.parent().unwrap_or(target_tmp);
    target.join("grade").join(format!("{package}.json"))
}

/// Keep a complete run (every check ran or was skipped for the machine) as
/// the step's last graded run. A filtered run is not kept: mixed with older
/// results it would describe code that never existed as a whole.
fn remember(step: &Step, report: &Report) {
    let path = last_run_path(Path::new(step.cache), step.package);
    let mut report = report.clone();
    // What the run graded: so a later look can tell whether it still
    // describes the files (times can't: `cp -a` and `git stash` keep or
    // change them regardless of the contents).
    report.sources = Some(sources::fingerprint(
        Path::new(step.manifest_dir),
        &sources::checks_file(Path::new(step.manifest_dir), step.id),
    ));
    let json = serde_json::to_string_pretty(&report).expect("serialize report") + "\n";
    // Best effort: the score card has already been printed.
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .and_then(|()| std::fs::write(&path, json));
}

fn write_reports(extra: &Extra, report: &Report) {
    if let Some(path) = &extra.json {
        let json = serde_json::to_string_pretty(report).expect("serialize report");
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("grader: cannot write {}: {e}", path.display());
        }
    }
    if let Some(path) = &extra.junit {
        if let Err(e) = std::fs::write(path, report::junit(std::slice::from_ref(report))) {
            eprintln!("grader: cannot write {}: {e}", path.display());
        }
    }
}

/// The grader's own leak guard: the grader makes itself a child subreaper, so
/// any process the binary under test leaves behind comes back to it instead
/// of vanishing under the host's init. At the end, whatever is left is a leak.
mod leaks {
    use super::procfs;
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::waitpid;
    use nix::unistd::Pid;

    pub fn become_reaper() {
        // prctl(PR_SET_CHILD_SUBREAPER): orphans of our descendants come to us.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }

    /// End and reap our leftover children; describe the ones that were
    /// still running (zombies were already dead: just reap them).
    pub fn end_leftovers() -> Vec<String> {
        let me = std::process::id() as i32;
        let mut leaked = Vec::new();
        for child in procfs::children_of(me) {
            if child.state != 'Z' {
                leaked.push(format!("pid {} ({})", child.pid, child.comm));
                let _ = kill(Pid::from_raw(child.pid), Signal::SIGKILL);
            }
            let _ = waitpid(Pid::from_raw(child.pid), None);
        }
        leaked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Step {
        Step {
            id: "00-selftest",
            package: "lesson-00",
            binary: "/bin/sh",
            needs: Needs::Linux,
            cache: "/tmp",
            manifest_dir: "/nonexistent",
        }
    }

    /// Arguments for a grading run inside a unit test: its output goes to a
    /// log file, so its own "test result: FAILED" lines don't mix with ours.
    fn quiet_args() -> libtest_mimic::Arguments {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let log =
            std::env::temp_dir().join(format!("grader-selftest-{}-{n}.log", std::process::id()));
        libtest_mimic::Arguments {
            test_threads: Some(1),
            quiet: true,
            logfile: Some(log.to_string_lossy().into_owned()),
            ..Default::default()
        }
    }

    fn grade_quietly(
        checks: Vec<Check>,
        args: libtest_mimic::Arguments,
    ) -> (Report, libtest_mimic::Conclusion) {
        let result = grade(step(), checks, &args);
        let _ = std::fs::remove_file(args.logfile.unwrap());
        result
    }

    fn passing(_: &Ctx) -> Outcome {
        Ok(())
    }

    fn failing(_: &Ctx) -> Outcome {
        expect_eq("the exit code should be the command's", 7, 101)
    }

    fn check(name: &'static str, points: u32, run: fn(&Ctx) -> Outcome) -> Check {
        Check {
            name,
            points,
            section: "exit-statuses",
            hint: "look at WaitStatus",
            more: "",
            shape: "",
            requires: Requires::Nothing,
            run,
        }
    }

    #[test]
    fn a_failing_check_is_reported_as_failed() {
        let (report, conclusion) = grade_quietly(
            vec![check("passes", 1, passing), check("fails", 2, failing)],
            quiet_args(),
        );
        assert_eq!((conclusion.num_passed, conclusion.num_failed), (1, 1));
        assert!(conclusion.has_failed());
        assert_eq!((report.score, report.total), (1, 3));
        let failed = &report.checks[1];
        assert_eq!((failed.check.as_str(), failed.passed), ("fails", false));
        assert!(failed.message.contains("expected: 7"), "{}", failed.message);
        assert!(failed
            .message
            .contains("book: book/src/00-selftest.md#exit-statuses"));
    }

    #[test]
    fn a_check_the_machine_cant_run_is_skipped_not_failed() {
        let mut needy = check("needs_userns", 2, failing);
        needy.requires = Requires::UnprivilegedUserns;
        let args = quiet_args();
        let machine = |requires: Requires| match requires {
            Requires::Nothing => Ok(()),
            Requires::UnprivilegedUserns => Err("forbidden here".to_string()),
            Requires::Nftables
            | Requires::Etcd
            | Requires::Registry
            | Requires::Podman
            | Requires::Skopeo
            | Requires::Umoci
            | Requires::All(_) => Ok(()),
        };
        let (report, conclusion) = grade_on(
            step(),
            vec![check("passes", 1, passing), needy],
            &args,
            machine,
            false,
        );
        let _ = std::fs::remove_file(args.logfile.unwrap());
        assert_eq!((conclusion.num_failed, conclusion.num_ignored), (0, 1));
        assert_eq!((report.score, report.total), (1, 3));
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].reason, "forbidden here");
        assert!(!report.full_marks(), "a skipped check is not full marks");
        assert!(report
            .score_card(0)
            .contains("skip 0/2 needs_userns: not run on this machine: forbidden here"));
    }

    #[test]
    fn a_real_run_that_fails_is_a_failure() {
        fn exits_3(ctx: &Ctx) -> Outcome {
            ctx.minibox(&["-c", "exit 3"])
                .output()?
                .expect_code(0, "should succeed")
        }
        let (report, conclusion) = grade_quietly(vec![check("sh", 1, exits_3)], quiet_args());
        assert_eq!(conclusion.num_failed, 1);
        assert!(
            report.checks[0].message.contains("seen: exit code 3"),
            "{:?}",
            report.checks[0]
        );
    }

    #[test]
    fn a_check_failing_on_output_shows_the_commands_stderr() {
        fn wrong_output(ctx: &Ctx) -> Outcome {
            let out = ctx
                .minibox(&["-c", "echo partial; echo 'readlink: extra operand' >&2"])
                .output()?;
            out.expect_code(0, "should succeed")?;
            expect_eq("the output", "whole\n", out.stdout_text().as_str())
        }
        fn wrong_code(ctx: &Ctx) -> Outcome {
            ctx.minibox(&["-c", "echo 'sh: no such file' >&2; exit 2"])
                .output()?
                .expect_code(0, "should succeed")
        }
        let (report, _) = grade_quietly(
            vec![
                check("output", 1, wrong_output),
                check("code", 1, wrong_code),
            ],
            quiet_args(),
        );
        let message = &report.checks[0].message;
        assert!(
            message.contains("      seen: \"partial\\n\"\n    stderr: readlink: extra operand\n"),
            "{message}"
        );
        // Said once: the exit code's `seen` already holds it.
        let message = &report.checks[1].message;
        assert!(
            message.contains("seen: exit code 2, stderr: sh: no such file"),
            "{message}"
        );
        assert!(!message.contains("\n    stderr:"), "{message}");
    }

    #[test]
    fn a_todo_panic_reads_as_not_written_yet() {
        fn dies_on_todo(ctx: &Ctx) -> Outcome {
            let out = ctx
                .minibox(&[
                    "-c",
                    "printf \"thread 'main' panicked at src/a.rs:3:5:\\nnot yet implemented: lesson-00: write me\\n\" >&2; exit 101",
                ])
                .output()?;
            out.expect_code(0, "should succeed")
        }
        let (report, _) = grade_quietly(vec![check("todo", 1, dies_on_todo)], quiet_args());
        let message = &report.checks[0].message;
        assert!(
            message.starts_with("not written yet: lesson-00: write me\n  (the program stopped at the todo!() in src/a.rs:3:5)"),
            "{message}"
        );
    }

    #[test]
    fn a_todo_a_detached_run_reported_reads_as_not_written_yet() {
        fn monitor_died_on_todo(ctx: &Ctx) -> Outcome {
            let out = ctx
                .minibox(&[
                    "-c",
                    "echo 'minibox: the monitor ended before the container started: panicked at src/b.rs:7:9: not yet implemented: lesson-05: attach' >&2; exit 125",
                ])
                .output()?;
            out.expect_code(0, "should succeed")
        }
        let (report, _) = grade_quietly(vec![check("todo", 1, monitor_died_on_todo)], quiet_args());
        let message = &report.checks[0].message;
        assert!(
            message.starts_with("not written yet: lesson-05: attach\n  (the program stopped at the todo!() in src/b.rs:7:9)"),
            "{message}"
        );
    }

    #[test]
    fn fail_fast_stops_at_the_first_failure() {
        let mut args = quiet_args();
        args.test_threads = Some(1);
        let log = args.logfile.clone().unwrap();
        let checks = vec![
            check("passes", 1, passing),
            check("fails", 2, failing),
            check("never_run", 4, passing),
        ];
        let (report, conclusion) = grade_on(step(), checks, &args, |_| Ok(()), true);
        let _ = std::fs::remove_file(log);
        // Run in order on one thread: the third is not run, and not recorded.
        assert_eq!(report.checks.len(), 2, "{:?}", report.checks);
        assert_eq!((report.score, report.total), (1, 7));
        assert!(conclusion.has_failed());
        assert!(report.score_card(1).contains("1 check(s) not run"));
        // Without it, every check runs.
        let args = quiet_args();
        let checks = vec![check("fails", 2, failing), check("passes", 1, passing)];
        let (report, _) = grade_on(step(), checks, &args, |_| Ok(()), false);
        let _ = std::fs::remove_file(args.logfile.unwrap());
        assert_eq!(report.checks.len(), 2);
    }

    #[test]
    fn a_filter_runs_only_matching_checks() {
        let mut args = quiet_args();
        args.filter = Some("fails".into());
        args.exact = true;
        let (report, conclusion) = grade_quietly(
            vec![check("passes", 1, passing), check("fails", 2, failing)],
            args,
        );
        assert_eq!(conclusion.num_filtered_out, 1);
        assert_eq!(report.checks.len(), 1);
        assert!(report.score_card(1).contains("1 check(s) not run"));
    }

    #[test]
    fn our_flags_are_taken_out_of_the_test_arguments() {
        let args = [
            "prog",
            "--grade-json",
            "out.json",
            "exit",
            "--catalog",
            "--fail-fast",
            "--exact",
        ];
        let (extra, rest) = split_args(args.iter().map(|s| s.to_string()));
        assert_eq!(extra.json, Some(PathBuf::from("out.json")));
        assert!(extra.catalog && extra.fail_fast);
        assert_eq!(rest, ["prog", "exit", "--exact"]);
    }

    #[test]
    fn a_panicking_check_still_ends_its_processes_and_removes_its_temp_dirs() {
        static SLEEPER: Mutex<Option<std::process::Child>> = Mutex::new(None);
        static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
        fn panics(ctx: &Ctx) -> Outcome {
            let dir = ctx.temp_dir();
            std::fs::create_dir_all(dir.path().join("root/containers")).unwrap();
            *DIR.lock().unwrap() = Some(dir.path().to_path_buf());
            // A temp dir the check let go of (as `mem::forget`, or a
            // process killed mid-way, would): only the ctx can remove it.
            std::mem::forget(dir);
            let sleeper = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            ctx.track(sleeper.id() as i32);
            *SLEEPER.lock().unwrap() = Some(sleeper);
            panic!("the check's own bug");
        }
        let result = run_unscored(step(), panics);
        assert!(
            result
                .as_ref()
                .is_err_and(|e| e.contains("the check's own bug")),
            "{result:?}"
        );
        let dir = DIR.lock().unwrap().clone().unwrap();
        assert!(!dir.exists(), "{} is left", dir.display());
        let mut sleeper = SLEEPER.lock().unwrap().take().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(sleeper.wait().unwrap().signal(), Some(9));
    }

    #[test]
    fn temp_dirs_of_a_grader_that_is_gone_are_swept() {
        let tmp = std::env::temp_dir().join(format!("grader-sweep-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        // A pid that is no process: past the kernel's pid_max.
        let dead = "grader-05-bridge-net-4194305-3";
        let alive = format!("grader-05-bridge-net-{}-0", std::process::id());
        for dir in [dead, alive.as_str(), "grader-notes", "grader-x-12-file"] {
            std::fs::create_dir_all(tmp.join(dir).join("root")).unwrap();
        }
        sweep_stale_temp_dirs(&tmp);
        let mut left: Vec<String> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let _ = std::fs::remove_dir_all(&tmp);
        let mut expected = vec![alive, "grader-notes".into(), "grader-x-12-file".into()];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn tracked_processes_are_ended_with_the_check() {
        let ctx = Ctx::new(step());
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        ctx.track(sleeper.id() as i32);
        ctx.cleanup();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(sleeper.wait().unwrap().signal(), Some(9));
    }
}
