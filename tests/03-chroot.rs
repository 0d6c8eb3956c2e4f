//! Graded checks for step 03: a root filesystem of its own.
//!
//! Compiled into `lesson-03` and `solution-03`. Each check gets a fresh
//! copy of the workshop's root filesystem, with the grader's probe in it
//! (`/usr/bin/grader-probe`, the test binary itself), and runs the runtime
//! in a lab (see step 02's checks): what a container leaks lands in the lab,
//! never on the machine.

use grader::procfs;
use grader::{ensure, expect_eq, Check, Ctx, Fail, Needs, Outcome, Requires};
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);

fn main() {
    grader::main(
        grader::step!("03-chroot", Needs::Root),
        vec![
            Check {
                name: "ls_shows_the_rootfs",
                points: 2,
                section: "pivot_root",
                hint: "After pivot_root (or chroot) the container's / is the rootfs. If the runtime says `cannot enter the rootfs: invalid argument`, the mounts are still shared (step 02's make_private first); `device or resource busy`: the rootfs isn't a mount point (bind it onto itself) or umount2 lacks MNT_DETACH.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: ls_shows_the_rootfs,
            },
            Check {
                name: "mounts_are_the_containers_own",
                points: 3,
                section: "pivot_root",
                hint: "Bind the rootfs onto itself, mount /proc /dev /sys /tmp on it, pivot_root(\".\", \".\") from inside it, then umount2(\".\", MNT_DETACH): the host's mounts must be gone from /proc/self/mountinfo.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: mounts_are_the_containers_own,
            },
            Check {
                name: "chroot_escape_is_demonstrated",
                points: 2,
                section: "the-chroot-escape",
                hint: "--chroot: chroot(rootfs) then chdir(\"/\"). A root process inside can then escape, which is the point of the demonstration.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: chroot_escape_is_demonstrated,
            },
            Check {
                name: "pivot_root_contains_the_escape",
                points: 3,
                section: "pivot_root",
                hint: "Under pivot_root the old root must be unmounted (MNT_DETACH): if it stays mounted anywhere, climbing `..` out of a chroot reaches the host.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: pivot_root_contains_the_escape,
            },
            Check {
                name: "proc_dev_sys_inside",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "/proc of the container's PID namespace; /dev a tmpfs with null, zero, full, random, urandom, tty (mknod, or a bind of the host's node in a user namespace); /sys read-only.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: proc_dev_sys_inside,
            },
            Check {
                name: "pid_host_gets_a_proc_of_its_own",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "With --pid host the container still gets a proc mount of its own (mount -t proc shows the PID namespace of whoever mounts it): a recursive bind of the host's /proc would bring every mount below it, binfmt_misc's writable register among them.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: pid_host_gets_a_proc_of_its_own,
            },
            Check {
                name: "read_only_root",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "--read-only: after entering, remount / with MS_REMOUNT | MS_BIND | MS_RDONLY (without MS_BIND it would make the whole filesystem read-only, the host's too); /tmp is a tmpfs of its own and stays writable.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: read_only_root,
            },
            Check {
                name: "nothing_leaks",
                points: 2,
                section: "pivot_root",
                hint: "Every mount is made inside the container's private mount namespace, so it goes away with it, even when the runtime is killed.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: nothing_leaks,
            },
            Check {
                name: "bad_input_is_one_line",
                points: 1,
                section: "the-exercise",
                hint: "A missing rootfs or one that is a file: 125 and one line, before anything is created; a command the rootfs lacks: 127.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: bad_input_is_one_line,
            },
        ],
    );
}

/// The top-level entries of an image, sorted.
fn image_entries(rootfs: &std::path::Path) -> Result<Vec<String>, Fail> {
    let mut names: Vec<String> = std::fs::read_dir(rootfs)
        .map_err(|e| Fail::new("cannot list the rootfs").seen(e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// The names an `ls -a` printed, without `.` and `..`, sorted.
fn listed(out: &grader::Output) -> Vec<String> {
    let mut names: Vec<String> = out
        .stdout_text()
        .lines()
        .map(str::to_string)
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

/// `key: value` lines of a probe's output.
fn probe_says(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(": ")))
        .unwrap_or("(nothing)")
        .to_string()
}

fn ls_shows_the_rootfs(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let out = ctx
        .minibox(&["run", "--rootfs", &rootfs.arg(), "--", "ls", "-a", "/"])
        .in_lab()
        .output()?;
    out.expect_code(0, "`ls -a /` inside should work")?;
    let inside = listed(&out);
    let image = image_entries(rootfs.path())?;
    expect_eq(
        "`ls -a /` inside should list exactly the rootfs (no old root left behind)",
        image,
        inside,
    )?;
    let marker = rootfs.outside().join("marker-outside-the-rootfs");
    std::fs::write(&marker, "outside").map_err(|e| Fail::new("setup").seen(e))?;
    let path = marker.to_string_lossy().into_owned();
    let out = ctx
        .minibox(&["run", "--rootfs", &rootfs.arg(), "--", "cat", &path])
        .in_lab()
        .output()?;
    ensure(out.code() == Some(1) && out.stdout.is_empty(), || {
        Fail::new("a file outside the rootfs must be unreachable by its host path")
            .expected(format!("`cat {path}` fails (exit 1)"))
            .seen(format!("{}; stdout: {}", out.describe(), out.stdout_text()))
    })
}

fn mounts_are_the_containers_own(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let out = ctx
        .minibox(&[
            "run",
            "--rootfs",
            &rootfs.arg(),
            "--",
            "cat",
            "/proc/self/mountinfo",
        ])
        .in_lab()
        .output()?;
    out.expect_code(0, "reading /proc/self/mountinfo inside should work")?;
    let mounts = procfs::parse_mountinfo(&out.stdout_text());
    let roots = mounts.iter().filter(|m| m.mount_point == "/").count();
    ensure(roots == 1, || {
        Fail::new("the old root is still mounted on / (umount2(\".\", MNT_DETACH) missing after pivot_root?)")
            .expected("one mount at /")
            .seen(format!("{roots}"))
    })?;
    let root = mounts
        .iter()
        .find(|m| m.mount_point == "/")
        .ok_or_else(|| Fail::new("no / in the container's mountinfo").seen(out.stdout_text()))?;
    let image = rootfs.path().to_string_lossy().into_owned();
    ensure(
        image.ends_with(&root.root) || root.root.ends_with("rootfs"),
        || {
            Fail::new("the container's / should be the rootfs (a bind mount of it)")
                .expected(format!("the / line's root field ends with {image}"))
                .seen(format!("root field {}", root.root))
        },
    )?;
    let own = |point: &str| {
        point == "/"
            || ["/proc", "/dev", "/sys", "/tmp"]
                .iter()
                .any(|p| point == *p || point.starts_with(&format!("{p}/")))
    };
    let foreign: Vec<&str> = mounts
        .iter()
        .map(|m| m.mount_point.as_str())
        .filter(|p| !own(p))
        .collect();
    ensure(foreign.is_empty(), || {
        Fail::new("no mount of the host's tree may remain inside (the old root must be unmounted)")
            .expected("mount points /, /proc..., /dev..., /sys..., /tmp only")
            .seen(
                foreign
                    .iter()
                    .take(8)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
    })?;
    for needed in ["/proc", "/dev", "/sys", "/tmp", "/dev/pts", "/dev/shm"] {
        ensure(mounts.iter().any(|m| m.mount_point == needed), || {
            Fail::new(format!("{needed} should be mounted in the container")).seen(
                mounts
                    .iter()
                    .map(|m| m.mount_point.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    }
    Ok(())
}

fn escape_probe(ctx: &Ctx, extra: &[&str]) -> Result<String, Fail> {
    let rootfs = ctx.rootfs()?;
    let marker = rootfs.outside().join("escape-marker");
    std::fs::write(&marker, "the host").map_err(|e| Fail::new("setup").seen(e))?;
    let marker = marker.to_string_lossy().into_owned();
    let mut args = vec!["run", "--rootfs"];
    let arg = rootfs.arg();
    args.push(&arg);
    args.extend_from_slice(extra);
    args.extend(["--", "/usr/bin/grader-probe", "--probe", "escape", &marker]);
    let out = ctx.minibox(&args).in_lab().output()?;
    out.expect_code(0, "the probe should run inside")?;
    Ok(out.stdout_text())
}

fn chroot_escape_is_demonstrated(ctx: &Ctx) -> Outcome {
    // First: chroot alone must land the command *in* its new root.
    let rootfs = ctx.rootfs()?;
    let out = ctx
        .minibox(&[
            "run",
            "--chroot",
            "--rootfs",
            &rootfs.arg(),
            "--",
            "ls",
            "-a",
        ])
        .in_lab()
        .output()?;
    out.expect_code(
        0,
        "`ls -a` (of the working directory) under --chroot should work",
    )?;
    let cwd = listed(&out);
    let image = image_entries(rootfs.path())?;
    expect_eq(
        "under --chroot the working directory must be the new / (chroot, then chdir(\"/\"))",
        image,
        cwd,
    )?;
    let said = escape_probe(ctx, &["--chroot"])?;
    expect_eq(
        "under --chroot, a root process climbing out of a nested chroot reaches the host (the demonstration)",
        "reached",
        probe_says(&said, "chroot-climb").as_str(),
    )
}

fn pivot_root_contains_the_escape(ctx: &Ctx) -> Outcome {
    let said = escape_probe(ctx, &[])?;
    for route in ["chroot-climb", "proc1-root"] {
        expect_eq(
            &format!("under pivot_root the escape by {route} must find no way to the host"),
            "blocked",
            probe_says(&said, route).as_str(),
        )?;
    }
    Ok(())
}

fn proc_dev_sys_inside(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let out = ctx
        .minibox(&[
            "run",
            "--rootfs",
            &rootfs.arg(),
            "--",
            "/usr/bin/grader-probe",
            "--probe",
            "devices",
        ])
        .in_lab()
        .output()?;
    out.expect_code(0, "the probe should run inside")?;
    let said = out.stdout_text();
    for (key, expected, what) in [
        ("dev-null-write", "ok", "/dev/null takes writes"),
        ("dev-zero-read", "zeros", "/dev/zero reads zeros"),
        (
            "dev-full-write",
            "ENOSPC",
            "/dev/full says the disk is full",
        ),
        ("dev-urandom-read", "ok", "/dev/urandom reads"),
        (
            "/dev/null",
            "c 1:3 666",
            "/dev/null is char device 1:3, mode 666",
        ),
        (
            "/dev/zero",
            "c 1:5 666",
            "/dev/zero is char device 1:5, mode 666",
        ),
        (
            "/dev/full",
            "c 1:7 666",
            "/dev/full is char device 1:7, mode 666",
        ),
        (
            "/dev/random",
            "c 1:8 666",
            "/dev/random is char device 1:8, mode 666",
        ),
        (
            "/dev/urandom",
            "c 1:9 666",
            "/dev/urandom is char device 1:9, mode 666",
        ),
        (
            "/dev/tty",
            "c 5:0 666",
            "/dev/tty is char device 5:0, mode 666",
        ),
        ("/dev/pts", "dir", "/dev/pts exists"),
        ("/dev/shm", "dir", "/dev/shm exists"),
        ("sys-write", "EROFS", "/sys is read-only"),
    ] {
        expect_eq(
            &format!("inside the container, {what}"),
            expected,
            probe_says(&said, key).as_str(),
        )?;
    }
    let out = ctx
        .minibox(&["run", "--rootfs", &rootfs.arg(), "--", "ls", "/proc"])
        .in_lab()
        .output()?;
    let pids = out.numbers();
    expect_eq(
        "/proc inside shows the container's PID namespace",
        vec![1, 2],
        pids,
    )
}

fn pid_host_gets_a_proc_of_its_own(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    // The lab has a mount below its /proc (binfmt_misc's place), holding a
    // writable `register`: on a real host, a file whose every write tells
    // the host's kernel which program to run for a format.
    let look = "ls /proc/sys/fs/binfmt_misc; echo pids: $(ls -d /proc/[0-9]* | wc -l)";
    let out = ctx
        .minibox(&[
            "run",
            "--rootfs",
            &rootfs.arg(),
            "--pid",
            "host",
            "--",
            "sh",
            "-c",
            look,
        ])
        .with_proc_submount()
        .output()?;
    out.expect_code(0, "a container with --pid host should run")?;
    let said = out.stdout_text();
    ensure(!said.contains("register"), || {
        Fail::new("--pid host: the container's /proc carried the host's mounts below it (binfmt_misc's register, writable)")
            .expected("a proc mount of its own: nothing mounted below it")
            .seen(said.trim())
    })?;
    let pids: u32 = probe_says(&said, "pids").parse().unwrap_or(0);
    ensure(pids > 2, || {
        Fail::new("--pid host: /proc inside should show the host's processes (a proc mounted in the host's PID namespace)")
            .seen(said.trim())
    })?;
    // The control: a recursive bind of such a /proc does carry it along
    // (in a mount namespace of the grader's own, private: `unshare -m`).
    let seen = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg("mount -t tmpfs grader-lab /proc/sys/fs/binfmt_misc && : > /proc/sys/fs/binfmt_misc/register && mount --rbind /proc /mnt && ls /mnt/sys/fs/binfmt_misc")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    ensure(seen.contains("register"), || {
        Fail::new("the control: `mount --rbind /proc` in a mount namespace with binfmt_misc's place mounted should carry it along")
            .seen(seen.trim())
    })
}

fn read_only_root(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let write = [
        "--",
        "/usr/bin/grader-probe",
        "--probe",
        "write",
        "/made-in-root",
        "/tmp/made-in-tmp",
    ];
    let arg = rootfs.arg();
    let plain = ctx
        .minibox(&[&["run", "--rootfs", &arg][..], &write].concat())
        .in_lab()
        .output()?;
    expect_eq(
        "without --read-only, / is writable",
        "ok",
        probe_says(&plain.stdout_text(), "/made-in-root").as_str(),
    )?;
    let out = ctx
        .minibox(&[&["run", "--rootfs", &arg, "--read-only"][..], &write].concat())
        .in_lab()
        .output()?;
    out.expect_code(0, "the probe should run inside")?;
    let said = out.stdout_text();
    expect_eq(
        "--read-only: writing to / fails with EROFS",
        "EROFS",
        probe_says(&said, "/made-in-root").as_str(),
    )?;
    expect_eq(
        "--read-only: /tmp stays writable",
        "ok",
        probe_says(&said, "/tmp/made-in-tmp").as_str(),
    )
}

fn mounted_under(pid: i32, dir: &str) -> Vec<String> {
    procfs::mountinfo(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn nothing_leaks(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let dir = rootfs.outside().to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let mut running = ctx
        .minibox(&[
            "run",
            "--rootfs",
            &rootfs.arg(),
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 1000",
        ])
        .in_lab()
        .spawn()?;
    let runtime = running.pid();
    expect_eq(
        "the command should start",
        "ready",
        running.read_line(SOON)?.as_str(),
    )?;
    let in_lab = mounted_under(runtime, &dir);
    ensure(in_lab.is_empty(), || {
        Fail::new("the container's mounts leaked into the host's mount table (here the lab's)")
            .seen(in_lab.join(", "))
    })?;
    ctx.track_tree(runtime);
    running.signal(nix::sys::signal::Signal::SIGKILL)?;
    let _ = running.wait(SOON);
    let left = mounted_under(me, &dir);
    ensure(left.is_empty(), || {
        Fail::new("after SIGKILL of the runtime, mounts under the rootfs remain on the host")
            .seen(left.join(", "))
    })
}

fn bad_input_is_one_line(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let arg = rootfs.arg();
    ctx.minibox(&["run", "--rootfs", &arg, "--", "true"])
        .in_lab()
        .output()?
        .expect_code(0, "a good rootfs runs `true`")?;
    let missing = rootfs
        .outside()
        .join("no-such-rootfs")
        .to_string_lossy()
        .into_owned();
    let file = rootfs
        .path()
        .join("etc/passwd")
        .to_string_lossy()
        .into_owned();
    for (args, code, mentions) in [
        (
            vec!["--rootfs", missing.as_str(), "--", "true"],
            125,
            "no-such-rootfs",
        ),
        (vec!["--rootfs", file.as_str(), "--", "true"], 125, "passwd"),
        (
            vec!["--rootfs", arg.as_str(), "--", "grader-not-in-the-image"],
            127,
            "grader-not-in-the-image",
        ),
    ] {
        let mut full = vec!["run"];
        full.extend(args);
        let out = ctx.minibox(&full).in_lab().output()?;
        out.expect_code(code, "bad input: docker's exit code")?;
        out.expect_one_error_line(mentions)?;
    }
    Ok(())
}
