//! Graded checks for step 03: a root filesystem of its own.
//!
//! Compiled into `lesson-03` and `solution-03`. The first checks call one
//! of the learner's functions in a child of the grader, in a mount
//! namespace of that child's own, and ask the kernel what it left. The
//! others run the runtime: each gets a fresh
//! copy of the workshop's root filesystem, with the grader's probe in it
//! (`/usr/bin/grader-probe`, the test binary itself), and runs the runtime
//! in a lab (see step 02's checks): what a container leaks lands in the lab,
//! never on the machine.

use grader::procfs;
use grader::{ensure, expect_eq, Check, Ctx, Fail, Needs, Outcome, Requires};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);

fn main() {
    if let Ok(spec) = std::env::var(HELPER) {
        run_helper(&spec);
    }
    grader::main(
        grader::step!("03-chroot", Needs::Root),
        vec![
            Check {
                name: "the_rootfs_becomes_a_mount_point",
                points: 1,
                section: "pivot_root",
                hint: "pivot_root wants the new root to be a mount point: the rootfs directory shown onto itself by a bind mount, recursive so that what is mounted below it comes along.",
                more: "rootfs::make_mount_point: mount(2) through nix::mount::mount with source and target the same path, no filesystem type, MsFlags::MS_BIND and MsFlags::MS_REC, no data.",
                shape: "1. mount(source = rootfs, target = rootfs, no type, bind + recursive, no data). 2. return the kernel's result as it is.",
                requires: Requires::Nothing,
                run: the_rootfs_becomes_a_mount_point,
            },
            Check {
                name: "chroot_changes_only_the_root",
                points: 1,
                section: "chroot-and-why-it-isnt-enough",
                hint: "chroot changes where / is for this process, and nothing else: not even the working directory, which must then be moved into the new /. The grader's climb must still escape: that is what --chroot demonstrates.",
                more: "rootfs::chroot_into: nix::unistd::chroot, then nix::unistd::chdir.",
                shape: "1. chroot(rootfs). 2. chdir(\"/\"), now the rootfs. 3. return the first error, if any.",
                requires: Requires::Nothing,
                run: chroot_changes_only_the_root,
            },
            Check {
                name: "pivot_leaves_no_way_back",
                points: 2,
                section: "pivot_root",
                hint: "After pivot_root the old root sits on top of the new one (with \".\" for both): unmount it lazily, with everything below it, then stand in the new /. If it stays mounted, the climb out of a nested chroot reaches the host.",
                more: "rootfs::pivot_into: nix::unistd::chdir, nix::unistd::pivot_root, nix::mount::umount2 with MntFlags::MNT_DETACH. pivot_root(2) on EINVAL: the new root is not a mount point, or a mount is shared.",
                shape: "1. chdir(rootfs). 2. pivot_root(new = \".\", put_old = \".\"). 3. umount2(\".\", detach): the old root goes. 4. chdir(\"/\").",
                requires: Requires::Nothing,
                run: pivot_leaves_no_way_back,
            },
            Check {
                name: "proc_is_a_new_instance",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "A proc mount of its own (it shows the mounter's PID namespace), with nothing below it, where no setuid bit, device node or program counts; only where the kernel refuses one (EPERM, in a user namespace that doesn't own the PID namespace), the host's /proc bound recursively.",
                more: "mounts::mount_proc: nix::mount::mount with source \"proc\", fstype \"proc\", MsFlags::MS_NOSUID | MS_NODEV | MS_NOEXEC; on Err(Errno::EPERM) a mount of \"/proc\" with MS_BIND | MS_REC and no type. proc(5).",
                shape: "1. mount(\"proc\", target, type \"proc\", nosuid + nodev + noexec). 2. EPERM -> mount(\"/proc\", target, no type, bind + recursive). 3. any other result as it is.",
                requires: Requires::Nothing,
                run: proc_is_a_new_instance,
            },
            Check {
                name: "devices_are_made_as_the_kernel_numbers_them",
                points: 1,
                section: "what-the-container-finds-mounted",
                hint: "Each device node is a character device with its major and minor numbers, mode 666 whatever the umask; where mknod is refused (EPERM, in a user namespace) an empty file with the host's node bound onto it.",
                more: "mounts::make_devices: nix::sys::stat::mknod with SFlag::S_IFCHR, Mode, makedev(major, minor); then fchmodat (or std::fs::set_permissions) to 0o666. On EPERM: nix::fcntl::open with O_CREAT, then nix::mount::mount of /dev/NAME with MsFlags::MS_BIND.",
                shape: "for each (name, major, minor) of DEVICES: 1. path = dev/name. 2. mknod(path, char device, 0666, makedev). 3. ok -> chmod 0666. 4. EPERM -> create an empty file at path; bind /dev/name onto it. 5. another error -> return it.",
                requires: Requires::Nothing,
                run: devices_are_made_as_the_kernel_numbers_them,
            },
            Check {
                name: "dev_is_a_tmpfs_with_pts_and_shm",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "/dev is a small tmpfs of its own (nosuid, mode 755, 64 MiB) with the device nodes, a devpts instance of its own at pts (newinstance, ptmxmode 0666, mode 0620, nosuid, noexec) and a tmpfs at shm (nosuid, nodev, noexec, mode 1777, 64 MiB).",
                more: "mounts::mount_dev: nix::mount::mount with fstype \"tmpfs\" and data \"mode=755,size=65536k\" (MS_NOSUID | MS_STRICTATIME), your make_devices, nix::unistd::mkdir, fstype \"devpts\" with data \"newinstance,ptmxmode=0666,mode=0620\", fstype \"tmpfs\" with data \"mode=1777,size=65536k\". tmpfs(5), devpts in the kernel's Documentation/filesystems/devpts.rst.",
                shape: "1. mount a tmpfs on dev (nosuid, strictatime; mode=755,size=65536k). 2. make the devices. 3. mkdir dev/pts and dev/shm. 4. mount devpts on pts (nosuid, noexec; newinstance,ptmxmode=0666,mode=0620). 5. mount a tmpfs on shm (nosuid, nodev, noexec; mode=1777,size=65536k).",
                requires: Requires::Nothing,
                run: dev_is_a_tmpfs_with_pts_and_shm,
            },
            Check {
                name: "sys_is_read_only",
                points: 1,
                section: "what-the-container-finds-mounted",
                hint: "A sysfs, read-only, nosuid, nodev, noexec; where a new sysfs is refused (EPERM: a user namespace that doesn't own its network namespace) the host's /sys bound recursively and then remounted with those flags, since a bind takes none of its own when it is made.",
                more: "mounts::mount_sys: nix::mount::mount with fstype \"sysfs\" and MsFlags::MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC; on EPERM a mount of \"/sys\" with MS_BIND | MS_REC, then mount(None, sys, None, the same flags | MS_REMOUNT | MS_BIND, None).",
                shape: "1. flags = read-only + nosuid + nodev + noexec. 2. mount(\"sysfs\", sys, type \"sysfs\", flags). 3. EPERM -> bind /sys on sys recursively; remount that bind with flags. 4. other results as they are.",
                requires: Requires::Nothing,
                run: sys_is_read_only,
            },
            Check {
                name: "tmp_is_a_tmpfs_for_everyone",
                points: 1,
                section: "what-the-container-finds-mounted",
                hint: "/tmp is a tmpfs of its own, mode 1777 (everyone writes, each removes only their own files), nosuid and nodev.",
                more: "mounts::mount_tmp: nix::mount::mount with fstype \"tmpfs\", MsFlags::MS_NOSUID | MS_NODEV, data \"mode=1777\".",
                shape: "1. mount(\"tmpfs\", tmp, type \"tmpfs\", nosuid + nodev, \"mode=1777\"). 2. return the kernel's result.",
                requires: Requires::Nothing,
                run: tmp_is_a_tmpfs_for_everyone,
            },
            Check {
                name: "read_only_is_this_mounts_alone",
                points: 1,
                section: "what-the-container-finds-mounted",
                hint: "--read-only remounts the mount at / read-only as a bind: that mount's flag only. A remount without it makes the filesystem itself read-only, for every mount of it, the host's too.",
                more: "mounts::read_only_root: nix::mount::mount(None, \"/\", None, MsFlags::MS_REMOUNT | MS_BIND | MS_RDONLY, None). mount(2), \"Remounting an existing mount\".",
                shape: "1. remount \"/\" with remount + bind + read-only, no source, type or data. 2. return the kernel's result.",
                requires: Requires::Nothing,
                run: read_only_is_this_mounts_alone,
            },
            Check {
                name: "ls_shows_the_rootfs",
                points: 2,
                section: "pivot_root",
                hint: "After the root switch the container's / is the rootfs. If the runtime says `cannot enter the rootfs: invalid argument`, the mounts are still shared or the rootfs isn't a mount point yet; `device or resource busy`: the old root is unmounted without MNT_DETACH.",
                more: "rootfs::switch_root, called by the given init once the mounts are private: make_mount_point, layout::container_mounts (given), pivot_into or chroot_into by spec.enter, read_only_root with spec.read_only.",
                shape: "1. the rootfs a mount point. 2. the container's mounts on it. 3. enter it as spec.enter says. 4. read-only if asked. Each failure: (what was being done, errno).",
                requires: Requires::Nothing,
                run: ls_shows_the_rootfs,
            },
            Check {
                name: "mounts_are_the_containers_own",
                points: 3,
                section: "pivot_root",
                hint: "Inside, /proc/self/mountinfo lists the rootfs as the only mount at /, then /proc, /dev, /sys, /tmp and below: the mounts went onto the rootfs's own mount before pivot_root, and the old root, with everything of the host's, was unmounted.",
                more: "rootfs::switch_root: make_mount_point before layout::container_mounts, both before pivot_into; pivot_into's umount2(\".\", MntFlags::MNT_DETACH).",
                shape: "1. bind the rootfs onto itself. 2. mount /proc /dev /sys /tmp on it. 3. pivot into it; detach the old root. 4. `cat /proc/self/mountinfo` inside: /, /proc..., /dev..., /sys..., /tmp only.",
                requires: Requires::Nothing,
                run: mounts_are_the_containers_own,
            },
            Check {
                name: "mount_options_inside",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "Each mount's flags as the container sees them: / read-only as a mount with --read-only (its filesystem still rw), /proc and /dev/shm nosuid,nodev,noexec, /dev nosuid, /dev/pts nosuid,noexec, /sys ro,nosuid,nodev,noexec, /tmp nosuid,nodev.",
                more: "The MsFlags of each mount in mounts.rs (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC) and read_only_root's MS_REMOUNT | MS_BIND | MS_RDONLY; proc(5) on mountinfo's fields.",
                shape: "1. each mount with the flags of the table in the chapter. 2. --read-only: remount / as a bind, read-only, once inside. 3. check with `cat /proc/self/mountinfo` in a container.",
                requires: Requires::Nothing,
                run: mount_options_inside,
            },
            Check {
                name: "chroot_escape_is_demonstrated",
                points: 2,
                section: "the-chroot-escape",
                hint: "--chroot enters with plain chroot (and a chdir into it): a root process inside can then escape, which is the point of the demonstration.",
                more: "rootfs::switch_root picks rootfs::chroot_into for Enter::Chroot; the probe's climb is nix::unistd::chroot and chdir(\"..\").",
                shape: "1. --chroot: spec.enter is Enter::Chroot. 2. switch_root calls chroot_into instead of pivot_into. 3. the probe: mkdir x; chroot x; cd .. 64 times; chroot .: the host.",
                requires: Requires::Nothing,
                run: chroot_escape_is_demonstrated,
            },
            Check {
                name: "pivot_root_contains_the_escape",
                points: 3,
                section: "pivot_root",
                hint: "Under pivot_root the old root must be unmounted (MNT_DETACH): if it stays mounted anywhere, climbing `..` out of a chroot reaches the host; /proc/1/root must lead only to the rootfs.",
                more: "rootfs::pivot_into: nix::mount::umount2(\".\", MntFlags::MNT_DETACH) right after pivot_root(\".\", \".\").",
                shape: "1. pivot_root(\".\", \".\"). 2. umount2(\".\", detach). 3. chdir(\"/\"). 4. the probe's climb and /proc/1/root find no marker of the host.",
                requires: Requires::Nothing,
                run: pivot_root_contains_the_escape,
            },
            Check {
                name: "proc_dev_sys_inside",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "/proc of the container's PID namespace; /dev a tmpfs with null, zero, full, random, urandom, tty (mknod, or a bind of the host's node in a user namespace); /sys read-only.",
                more: "mounts::mount_proc, mounts::mount_dev with make_devices, mounts::mount_sys, called by the given layout::container_mounts from your switch_root.",
                shape: "1. switch_root mounts before it enters. 2. inside: `ls /proc` lists 1 and 2, the devices work, writing /sys fails with EROFS.",
                requires: Requires::Nothing,
                run: proc_dev_sys_inside,
            },
            Check {
                name: "pid_host_gets_a_proc_of_its_own",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "With --pid host the container still gets a proc mount of its own (mount -t proc shows the PID namespace of whoever mounts it): a recursive bind of the host's /proc would bring every mount below it, binfmt_misc's writable register among them.",
                more: "mounts::mount_proc: a new proc first (fstype \"proc\"); MS_BIND | MS_REC of /proc only on EPERM.",
                shape: "1. mount a new proc, whatever the PID namespace. 2. only if the kernel says EPERM, bind the host's.",
                requires: Requires::Nothing,
                run: pid_host_gets_a_proc_of_its_own,
            },
            Check {
                name: "read_only_root",
                points: 2,
                section: "what-the-container-finds-mounted",
                hint: "--read-only: once inside, / is remounted read-only as a bind; /tmp is a tmpfs of its own and stays writable; without --read-only, / is writable.",
                more: "rootfs::switch_root calls mounts::read_only_root after pivot_into or chroot_into, only when spec.read_only.",
                shape: "1. enter the rootfs. 2. if spec.read_only: read_only_root(). 3. a write to / gives EROFS, to /tmp works.",
                requires: Requires::Nothing,
                run: read_only_root,
            },
            Check {
                name: "nothing_leaks",
                points: 2,
                section: "pivot_root",
                hint: "Every mount is made inside the container's private mount namespace, so it goes away with it, even when the runtime is killed.",
                more: "rootfs::switch_root runs in the container's init after step02::mounts::make_private (given): mount(2) there never propagates to the host.",
                shape: "1. the mounts are made by the container's init only. 2. after its mounts are made private. 3. nothing to unmount by hand: the namespace ends with its last process.",
                requires: Requires::Nothing,
                run: nothing_leaks,
            },
            Check {
                name: "bad_input_is_one_line",
                points: 1,
                section: "the-exercise",
                hint: "A missing rootfs or one that is a file: 125 and one line, before anything is created (given); a command the rootfs lacks: 127, which needs your root switch to work.",
                more: "cli::RootfsArgs::spec (given) checks the rootfs; rootfs::switch_root must succeed for the command to be looked up in the image.",
                shape: "1. the root switch works (`true` runs). 2. a missing command inside: 127, one line.",
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

// ---------------------------------------------------------------------
// Library-level checks: one of the learner's functions, called by a child
// of the grader in a mount namespace of that child's own, and what the
// kernel shows afterwards. Nothing of it reaches the machine: the mounts
// go with the child.

const HELPER: &str = "GRADE03_HELPER";

/// Run the helper `kind` with `args` (paths); its `key=value` lines.
fn helper(what: &str, kind: &str, args: &[&Path]) -> Result<String, Fail> {
    let mut spec = vec![kind.to_string()];
    spec.extend(args.iter().map(|p| p.to_string_lossy().into_owned()));
    let me = std::env::current_exe().map_err(setup("current_exe"))?;
    let out = std::process::Command::new(me)
        .env(HELPER, spec.join("\n"))
        .output()
        .map_err(setup("run the helper"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(todo) = stderr
        .lines()
        .find_map(|l| l.split("not yet implemented: ").nth(1))
    {
        return Err(
            Fail::new(format!("{what} should return")).seen(format!("not written yet: {todo}"))
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(panic) = stderr.lines().find(|l| l.contains("panicked")) {
        return Err(Fail::new(format!("{what} should return"))
            .seen(format!("it panicked: {panic}; it said: {}", text.trim())));
    }
    if let Some(error) = text.lines().find_map(|l| l.strip_prefix("setup=")) {
        return Err(Fail::new(format!("setup of {what}")).seen(error));
    }
    Ok(text)
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Fail + '_ {
    move |e| Fail::new(format!("setup: {what}")).seen(e)
}

/// The value of `key=` in a helper's answer.
fn said(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("(nothing)")
        .to_string()
}

/// Compare some keys of a helper's answer with what they should be.
fn expect_said(what: &str, text: &str, expected: &[(&str, &str)]) -> Outcome {
    let keys: Vec<&str> = expected.iter().map(|(k, _)| *k).collect();
    let want: Vec<String> = expected.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let seen: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}={}", said(text, k)))
        .collect();
    expect_eq(what, want.join("\n"), seen.join("\n"))
}

/// One line of mountinfo, with the options the checks look at.
struct Line {
    id: String,
    parent: String,
    root: String,
    point: String,
    options: Vec<String>,
    fs_type: String,
    super_options: Vec<String>,
}

fn mount_lines(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let f: Vec<&str> = before.split(' ').collect();
            let a: Vec<&str> = after.split(' ').collect();
            Some(Line {
                id: f.first()?.to_string(),
                parent: f.get(1)?.to_string(),
                root: f.get(3)?.to_string(),
                point: f.get(4)?.to_string(),
                options: f.get(5)?.split(',').map(str::to_string).collect(),
                fs_type: a.first()?.to_string(),
                super_options: a
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The flags of a mount the checks care about, in a fixed order:
/// `ro` or `rw`, then whichever of nosuid, nodev, noexec it has.
fn flags(options: &[String]) -> String {
    let mut out = vec![if options.iter().any(|o| o == "ro") {
        "ro"
    } else {
        "rw"
    }];
    for flag in ["nosuid", "nodev", "noexec"] {
        if options.iter().any(|o| o == flag) {
            out.push(flag);
        }
    }
    out.join(",")
}

/// In a child of the grader (single-threaded, at the start of main).
fn run_helper(spec: &str) -> ! {
    let args: Vec<&str> = spec.split('\n').collect();
    let p = |i: usize| PathBuf::from(args.get(i).copied().unwrap_or(""));
    match args.first().copied() {
        Some("bind") => helper_bind(&p(1)),
        Some("chroot") => helper_chroot(&p(1), &p(2)),
        Some("pivot") => helper_pivot(&p(1), &p(2)),
        Some("proc") => helper_proc(&p(1), args.get(2) == Some(&"user")),
        Some("devices") => helper_devices(&p(1), args.get(2) == Some(&"user")),
        Some("dev") => helper_dev(&p(1)),
        Some("sys") => helper_sys(&p(1), args.get(2) == Some(&"user")),
        Some("tmp") => helper_tmp(&p(1)),
        Some("readonly") => helper_read_only(&p(1), &p(2)),
        _ => println!("setup=unknown helper {spec:?}"),
    }
    std::process::exit(0)
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

fn result(r: nix::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(errno) => format!("{errno:?}"),
    }
}

fn io_result<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e
            .raw_os_error()
            .map(|n| format!("{:?}", nix::errno::Errno::from_raw(n)))
            .unwrap_or_else(|| e.to_string()),
    }
}

/// Stop the helper with a setup error (not the learner's).
fn die(what: &str, e: impl std::fmt::Display) -> ! {
    say("setup", format!("{what}: {e}"));
    std::process::exit(0)
}

/// A mount namespace of the helper's own, / private in it: nothing it
/// mounts reaches the grader's namespace.
fn own_mount_ns() {
    use nix::mount::{mount, MsFlags};
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
        die("unshare --mount", e)
    }
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        die("mount --make-rprivate /", e)
    }
}

/// A user namespace (with a mount namespace it owns), as a rootless
/// container's init is in: the mounts made before are locked.
fn own_user_ns() {
    use nix::sched::CloneFlags;
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        die("unshare --user --mount", e)
    }
}

fn tmpfs(target: &Path, label: &str) {
    use nix::mount::{mount, MsFlags};
    if let Err(e) = mount(
        Some(label),
        target,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    ) {
        die(&format!("mount a tmpfs on {}", target.display()), e)
    }
}

fn mountinfo_now() -> Vec<Line> {
    mount_lines(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The topmost mount at `point`.
fn mount_at<'a>(lines: &'a [Line], point: &Path) -> Option<&'a Line> {
    let point = point.to_string_lossy();
    lines.iter().rev().find(|l| l.point == point)
}

fn say_mount(prefix: &str, lines: &[Line], point: &Path) {
    match mount_at(lines, point) {
        Some(line) => {
            say(&format!("{prefix}type"), &line.fs_type);
            say(&format!("{prefix}flags"), flags(&line.options));
        }
        None => {
            say(&format!("{prefix}type"), "not a mount point");
            say(&format!("{prefix}flags"), "(none)");
        }
    }
}

fn names(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(",")
}

/// The classic escape, from wherever the helper's root now is: a nested
/// chroot, then `..` until the top, then `chroot .`. Is `marker` (a path of
/// the host's) then there?
fn climb(marker: &Path) -> &'static str {
    use nix::unistd::{chdir, chroot};
    let _ = std::fs::create_dir("/grader-nested");
    if chroot("/grader-nested").is_err() {
        return "blocked (no nested chroot)";
    }
    for _ in 0..64 {
        let _ = chdir("..");
    }
    if chroot(".").is_err() {
        return "blocked";
    }
    if marker.exists() {
        "reached"
    } else {
        "blocked"
    }
}

fn node(path: &Path) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_char_device() => {
            let rdev = m.rdev();
            format!(
                "c {}:{} {:o}",
                nix::sys::stat::major(rdev),
                nix::sys::stat::minor(rdev),
                m.mode() & 0o7777
            )
        }
        Ok(m) if m.is_dir() => format!("dir {:o}", m.mode() & 0o7777),
        Ok(_) => "not a device".into(),
        Err(e) => io_result::<()>(Err(e)),
    }
}

fn helper_bind(dir: &Path) {
    own_mount_ns();
    let sub = dir.join("sub");
    tmpfs(&sub, "grader-sub");
    if let Err(e) = std::fs::write(sub.join("inner"), "sub") {
        die("write sub/inner", e)
    }
    say("result", result(step03::rootfs::make_mount_point(dir)));
    let lines = mountinfo_now();
    let at_dir = mount_at(&lines, dir);
    let text = dir.to_string_lossy();
    say(
        "bound",
        match at_dir {
            Some(l) if l.root != "/" && text.ends_with(&l.root) => {
                "a bind of the dir itself".into()
            }
            Some(l) => format!("a mount of {} {}", l.fs_type, l.root),
            None => "not a mount point".into(),
        },
    );
    let carried = match (at_dir, mount_at(&lines, &sub)) {
        (Some(top), Some(s)) if s.parent == top.id => "yes",
        _ => "no",
    };
    say("sub-carried", carried);
    say(
        "file",
        std::fs::read_to_string(dir.join("file")).unwrap_or_default(),
    );
    say(
        "inner",
        std::fs::read_to_string(sub.join("inner")).unwrap_or_default(),
    );
}

fn helper_chroot(dir: &Path, marker: &Path) {
    say("result", result(step03::rootfs::chroot_into(dir)));
    say(
        "cwd",
        std::env::current_dir().map_or("(none)".into(), |d| d.display().to_string()),
    );
    say("ls-cwd", names(Path::new(".")));
    say("ls-root", names(Path::new("/")));
    say("climb", climb(marker));
}

fn helper_pivot(dir: &Path, marker: &Path) {
    use nix::mount::{mount, MsFlags};
    own_mount_ns();
    tmpfs(dir, "grader-new-root");
    for made in [
        std::fs::create_dir(dir.join("proc")),
        std::fs::write(dir.join("file"), "in the new root"),
    ] {
        if let Err(e) = made {
            die("fill the new root", e)
        }
    }
    say("result", result(step03::rootfs::pivot_into(dir)));
    say(
        "cwd",
        std::env::current_dir().map_or("(none)".into(), |d| d.display().to_string()),
    );
    say("ls-root", names(Path::new("/")));
    let proc = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::empty(),
        None::<&str>,
    );
    if proc.is_ok() {
        let lines = mountinfo_now();
        say("roots", lines.iter().filter(|l| l.point == "/").count());
        let others: Vec<&str> = lines
            .iter()
            .map(|l| l.point.as_str())
            .filter(|p| *p != "/" && *p != "/proc")
            .collect();
        say(
            "others",
            if others.is_empty() {
                "none".into()
            } else {
                others.join(",")
            },
        );
    }
    say("climb", climb(marker));
}

fn helper_proc(dir: &Path, user: bool) {
    own_mount_ns();
    // binfmt_misc's place, with a writable `register` (a tmpfs stands in).
    let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
    if binfmt.is_dir() {
        tmpfs(binfmt, "grader-lab");
        if let Err(e) = std::fs::write(binfmt.join("register"), "") {
            die("write binfmt_misc/register", e)
        }
    }
    if user {
        own_user_ns();
    }
    let target = dir.join("proc");
    say("result", result(step03::mounts::mount_proc(&target)));
    let lines = mountinfo_now();
    say_mount("", &lines, &target);
    let below = format!("{}/", target.display());
    say(
        "below",
        lines.iter().filter(|l| l.point.starts_with(&below)).count(),
    );
    let me = std::process::id();
    say(
        "own-pid",
        if target.join(me.to_string()).is_dir() {
            "listed"
        } else {
            "missing"
        },
    );
    say(
        "register",
        if target.join("sys/fs/binfmt_misc/register").exists() {
            "there"
        } else {
            "absent"
        },
    );
}

fn helper_devices(dir: &Path, user: bool) {
    own_mount_ns();
    if user {
        own_user_ns();
    }
    // A umask that takes bits away, as a learner's shell's may.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    say("result", result(step03::mounts::make_devices(dir)));
    for (name, ..) in step03::mounts::DEVICES {
        say(name, node(&dir.join(name)));
    }
    let below = format!("{}/", dir.display());
    let bound = mountinfo_now()
        .iter()
        .filter(|l| l.point.starts_with(&below))
        .count();
    say("bound", bound);
    say(
        "null-write",
        io_result(
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("null")),
        ),
    );
}

fn helper_dev(dev: &Path) {
    use std::os::unix::fs::MetadataExt;
    own_mount_ns();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    say("result", result(step03::mounts::mount_dev(dev)));
    let lines = mountinfo_now();
    say_mount("dev-", &lines, dev);
    let pick = |point: &Path, keys: &[&str]| -> String {
        let Some(line) = mount_at(&lines, point) else {
            return "(not mounted)".into();
        };
        let mut found: Vec<&str> = line
            .super_options
            .iter()
            .map(String::as_str)
            .filter(|o| keys.iter().any(|k| o.starts_with(&format!("{k}="))))
            .collect();
        found.sort();
        found.join(",")
    };
    say("dev-options", pick(dev, &["mode", "size"]));
    say("dev-mode", node(dev));
    for (name, ..) in step03::mounts::DEVICES {
        say(name, node(&dev.join(name)));
    }
    let pts = dev.join("pts");
    say_mount("pts-", &lines, &pts);
    say("pts-options", pick(&pts, &["mode", "ptmxmode"]));
    let host_pts = std::fs::metadata("/dev/pts").map(|m| m.dev()).ok();
    let own = std::fs::metadata(&pts).map(|m| m.dev()).ok();
    say(
        "pts-instance",
        if own.is_some() && own != host_pts {
            "its own"
        } else {
            "the host's"
        },
    );
    let shm = dev.join("shm");
    say_mount("shm-", &lines, &shm);
    say("shm-options", pick(&shm, &["size"]));
    say("shm-mode", node(&shm));
}

fn helper_sys(dir: &Path, user: bool) {
    own_mount_ns();
    if user {
        // Something mounted below the host's /sys, as there always is
        // (/sys/fs/cgroup ...): locked with it in the user namespace.
        tmpfs(Path::new("/sys/fs"), "grader-lab");
        own_user_ns();
    }
    let target = dir.join("sys");
    say("result", result(step03::mounts::mount_sys(&target)));
    let lines = mountinfo_now();
    say_mount("", &lines, &target);
    say(
        "write",
        io_result(std::fs::write(target.join("grader-file"), "x")),
    );
    let below = format!("{}/", target.display());
    say(
        "below",
        if lines.iter().any(|l| l.point.starts_with(&below)) {
            "mounts"
        } else {
            "nothing"
        },
    );
}

fn helper_tmp(dir: &Path) {
    own_mount_ns();
    let target = dir.join("tmp");
    say("result", result(step03::mounts::mount_tmp(&target)));
    say_mount("", &mountinfo_now(), &target);
    say("mode", node(&target));
}

fn helper_read_only(dir: &Path, other: &Path) {
    use nix::mount::{mount, MsFlags};
    own_mount_ns();
    tmpfs(dir, "grader-image");
    // The same filesystem seen at a second place (as the host sees an
    // image), and a mount below the future / (as /tmp is).
    if let Err(e) = mount(
        Some(dir),
        other,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        die("mount --bind", e)
    }
    if let Err(e) = std::fs::create_dir(dir.join("tmp")) {
        die("mkdir tmp", e)
    }
    tmpfs(&dir.join("tmp"), "grader-tmp");
    // Opened now: read after the chroot, it still names the mounts by
    // their paths from here.
    let mountinfo = std::fs::File::open("/proc/self/mountinfo");
    let other_dir = std::fs::File::open(other);
    let (Ok(mut mountinfo), Ok(other_dir)) = (mountinfo, other_dir) else {
        die("open mountinfo and the second place", "failed")
    };
    if let Err(e) = nix::unistd::chroot(dir).and_then(|()| nix::unistd::chdir("/")) {
        die("chroot", e)
    }
    say("result", result(step03::mounts::read_only_root()));
    say(
        "write-root",
        io_result(std::fs::write("/made-in-root", "x")),
    );
    say(
        "write-tmp",
        io_result(std::fs::write("/tmp/made-in-tmp", "x")),
    );
    let at_other = nix::fcntl::openat(
        &other_dir,
        "made-elsewhere",
        nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    );
    say("write-elsewhere", result(at_other.map(drop)));
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut mountinfo, &mut text);
    let lines = mount_lines(&text);
    match mount_at(&lines, dir) {
        Some(line) => {
            say("mount", flags(&line.options));
            say(
                "filesystem",
                if line.super_options.iter().any(|o| o == "ro") {
                    "ro"
                } else {
                    "rw"
                },
            );
        }
        None => say("mount", "(not found)"),
    }
}

fn the_rootfs_becomes_a_mount_point(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("image");
    std::fs::create_dir_all(dir.join("sub")).map_err(setup("mkdir"))?;
    std::fs::write(dir.join("file"), "here").map_err(setup("write"))?;
    let text = helper("make_mount_point", "bind", &[&dir])?;
    expect_said(
        "in a mount namespace of the grader's, with a tmpfs on DIR/sub: after make_mount_point(DIR), DIR is a mount of itself, with the tmpfs below it, showing the same files",
        &text,
        &[
            ("result", "ok"),
            ("bound", "a bind of the dir itself"),
            ("sub-carried", "yes"),
            ("file", "here"),
            ("inner", "sub"),
        ],
    )
}

/// A host file outside `dir`, for the climbs to look for.
fn marker_outside(tmp: &Path) -> Result<PathBuf, Fail> {
    let marker = tmp.join("marker-of-the-host");
    std::fs::write(&marker, "the host").map_err(setup("write the marker"))?;
    Ok(marker)
}

fn chroot_changes_only_the_root(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("image");
    std::fs::create_dir_all(dir.join("etc")).map_err(setup("mkdir"))?;
    std::fs::write(dir.join("file"), "").map_err(setup("write"))?;
    let marker = marker_outside(tmp.path())?;
    let text = helper("chroot_into", "chroot", &[&dir, &marker])?;
    expect_said(
        "a child of the grader calls chroot_into(DIR): its / and its working directory are DIR; then, as root, the classic climb out of a nested chroot reaches the host (chroot alone is escapable: that is the demonstration)",
        &text,
        &[
            ("result", "ok"),
            ("cwd", "/"),
            ("ls-cwd", "etc,file"),
            ("ls-root", "etc,file"),
            ("climb", "reached"),
        ],
    )
}

fn pivot_leaves_no_way_back(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("new-root");
    std::fs::create_dir_all(&dir).map_err(setup("mkdir"))?;
    let marker = marker_outside(tmp.path())?;
    let text = helper("pivot_into", "pivot", &[&dir, &marker])?;
    expect_said(
        "in a mount namespace of the grader's, with a tmpfs on DIR holding `file` and `proc`: after pivot_into(DIR), the working directory is /, / is that tmpfs and the only mount at / (a proc mounted afterwards aside, no mount of the old root left), and the climb out of a nested chroot finds no way to the host",
        &text,
        &[
            ("result", "ok"),
            ("cwd", "/"),
            ("ls-root", "file,proc"),
            ("roots", "1"),
            ("others", "none"),
            ("climb", "blocked"),
        ],
    )
}

fn proc_is_a_new_instance(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("image");
    std::fs::create_dir_all(dir.join("proc")).map_err(setup("mkdir"))?;
    let text = helper("mount_proc", "proc", &[&dir])?;
    expect_said(
        "in a mount namespace of the grader's whose /proc has a tmpfs below it (binfmt_misc's place, holding `register`): after mount_proc(DIR/proc), a proc mount with nosuid, nodev and noexec, nothing below it, listing the caller's own pid",
        &text,
        &[
            ("result", "ok"),
            ("type", "proc"),
            ("flags", "rw,nosuid,nodev,noexec"),
            ("below", "0"),
            ("own-pid", "listed"),
            ("register", "absent"),
        ],
    )?;
    let text = helper("mount_proc", "proc", &[&dir, Path::new("user")])?;
    expect_said(
        "the same in a user namespace that doesn't own the PID namespace (a new proc is refused there: EPERM): mount_proc still succeeds, and DIR/proc shows the host's processes, its locked mounts along",
        &text,
        &[("result", "ok"), ("type", "proc"), ("own-pid", "listed")],
    )
}

fn devices_are_made_as_the_kernel_numbers_them(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("dev");
    std::fs::create_dir_all(&dir).map_err(setup("mkdir"))?;
    let text = helper("make_devices", "devices", &[&dir])?;
    expect_said(
        "after make_devices(DIR) with a umask of 077: each node in DIR, as `ls -l` would say it (type, major:minor, mode)",
        &text,
        &[
            ("result", "ok"),
            ("null", "c 1:3 666"),
            ("zero", "c 1:5 666"),
            ("full", "c 1:7 666"),
            ("random", "c 1:8 666"),
            ("urandom", "c 1:9 666"),
            ("tty", "c 5:0 666"),
            ("null-write", "ok"),
        ],
    )?;
    let dir = tmp.path().join("dev-in-userns");
    std::fs::create_dir_all(&dir).map_err(setup("mkdir"))?;
    let text = helper("make_devices", "devices", &[&dir, Path::new("user")])?;
    expect_said(
        "make_devices(DIR) in a user namespace (mknod is refused there: EPERM): each of the six names shows the host's node (a bind mount on an empty file), and /dev/null takes writes",
        &text,
        &[
            ("result", "ok"),
            ("null", "c 1:3 666"),
            ("zero", "c 1:5 666"),
            ("bound", "6"),
            ("null-write", "ok"),
        ],
    )
}

fn dev_is_a_tmpfs_with_pts_and_shm(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dev = tmp.path().join("dev");
    std::fs::create_dir_all(&dev).map_err(setup("mkdir"))?;
    let text = helper("mount_dev", "dev", &[&dev])?;
    expect_said(
        "in a mount namespace of the grader's, after mount_dev(DIR): the mounts at DIR, DIR/pts and DIR/shm as mountinfo shows them (type, flags, the filesystem's options), the nodes, and the modes",
        &text,
        &[
            ("result", "ok"),
            ("dev-type", "tmpfs"),
            ("dev-flags", "rw,nosuid"),
            ("dev-options", "mode=755,size=65536k"),
            ("dev-mode", "dir 755"),
            ("null", "c 1:3 666"),
            ("tty", "c 5:0 666"),
            ("pts-type", "devpts"),
            ("pts-flags", "rw,nosuid,noexec"),
            ("pts-options", "mode=620,ptmxmode=666"),
            ("pts-instance", "its own"),
            ("shm-type", "tmpfs"),
            ("shm-flags", "rw,nosuid,nodev,noexec"),
            ("shm-options", "size=65536k"),
            ("shm-mode", "dir 1777"),
        ],
    )
}

fn sys_is_read_only(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("image");
    std::fs::create_dir_all(dir.join("sys")).map_err(setup("mkdir"))?;
    let text = helper("mount_sys", "sys", &[&dir])?;
    expect_said(
        "in a mount namespace of the grader's, after mount_sys(DIR/sys): a sysfs, read-only, nosuid, nodev, noexec",
        &text,
        &[
            ("result", "ok"),
            ("type", "sysfs"),
            ("flags", "ro,nosuid,nodev,noexec"),
            ("write", "EROFS"),
            ("below", "nothing"),
        ],
    )?;
    let text = helper("mount_sys", "sys", &[&dir, Path::new("user")])?;
    expect_said(
        "mount_sys(DIR/sys) in a user namespace that doesn't own its network namespace (a new sysfs is refused there: EPERM): the host's /sys with the mounts below it, read-only, nosuid, nodev, noexec",
        &text,
        &[
            ("result", "ok"),
            ("type", "sysfs"),
            ("flags", "ro,nosuid,nodev,noexec"),
            ("write", "EROFS"),
            ("below", "mounts"),
        ],
    )
}

fn tmp_is_a_tmpfs_for_everyone(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("image");
    std::fs::create_dir_all(dir.join("tmp")).map_err(setup("mkdir"))?;
    let text = helper("mount_tmp", "tmp", &[&dir])?;
    expect_said(
        "in a mount namespace of the grader's, after mount_tmp(DIR/tmp): a tmpfs, nosuid and nodev, mode 1777",
        &text,
        &[
            ("result", "ok"),
            ("type", "tmpfs"),
            ("flags", "rw,nosuid,nodev"),
            ("mode", "dir 1777"),
        ],
    )
}

fn read_only_is_this_mounts_alone(ctx: &Ctx) -> Outcome {
    let tmp = ctx.temp_dir();
    let dir = tmp.path().join("image");
    let other = tmp.path().join("elsewhere");
    for d in [&dir, &other] {
        std::fs::create_dir_all(d).map_err(setup("mkdir"))?;
    }
    let text = helper("read_only_root", "readonly", &[&dir, &other])?;
    expect_said(
        "a child of the grader, chrooted in a tmpfs (also bind-mounted elsewhere, with a tmpfs on its /tmp), calls read_only_root(): / is read-only as a mount, its filesystem stays writable through the other mount, /tmp stays writable",
        &text,
        &[
            ("result", "ok"),
            ("write-root", "EROFS"),
            ("write-tmp", "ok"),
            ("write-elsewhere", "ok"),
            ("mount", "ro"),
            ("filesystem", "rw"),
        ],
    )
}

fn mount_options_inside(ctx: &Ctx) -> Outcome {
    let rootfs = ctx.rootfs()?;
    let out = ctx
        .minibox(&[
            "run",
            "--rootfs",
            &rootfs.arg(),
            "--read-only",
            "--",
            "cat",
            "/proc/self/mountinfo",
        ])
        .in_lab()
        .output()?;
    out.expect_code(0, "reading /proc/self/mountinfo inside should work")?;
    let lines = mount_lines(&out.stdout_text());
    let seen = |point: &str| -> String {
        lines
            .iter()
            .rev()
            .find(|l| l.point == point)
            .map_or("(not mounted)".into(), |l| {
                format!("{point} {}", flags(&l.options))
            })
    };
    let points = ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/tmp"];
    let expected = [
        "/ ro",
        "/proc rw,nosuid,nodev,noexec",
        "/dev rw,nosuid",
        "/dev/pts rw,nosuid,noexec",
        "/dev/shm rw,nosuid,nodev,noexec",
        "/sys ro,nosuid,nodev,noexec",
        "/tmp rw,nosuid,nodev",
    ];
    expect_eq(
        "with --read-only, each mount's flags as /proc/self/mountinfo shows them inside",
        expected.join("\n"),
        points.map(seen).join("\n"),
    )?;
    let root = lines.iter().rev().find(|l| l.point == "/");
    let filesystem_ro = root.is_some_and(|l| l.super_options.iter().any(|o| o == "ro"));
    ensure(!filesystem_ro, || {
        Fail::new("--read-only must make the container's / mount read-only, not the filesystem beneath it (the host's disk)")
            .expected("the / line's filesystem options (after ` - `) with rw")
            .seen("ro: a remount without MS_BIND")
    })
}
