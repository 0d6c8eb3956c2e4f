//! Build images for real and run programs inside them.

use rootfs::{build, cached, static_busybox, Source, MARKER};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rootfs-test-{label}-{}", std::process::id()))
}

/// Run `sh -c script` with `root` as `/` (chroot: enough to prove the image
/// is complete; containers do more). Needs root.
fn run_inside(root: &Path, script: &str) -> String {
    let root = root.to_path_buf();
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    // SAFETY: chroot(2) and chdir(2) are plain system calls, safe between
    // fork and exec; the path was made into a C string before the fork.
    let c_root = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).unwrap();
    unsafe {
        command.pre_exec(move || {
            nix::unistd::chroot(c_root.as_c_str())?;
            nix::unistd::chdir("/")?;
            Ok(())
        });
    }
    let out = command.output().expect("run a shell inside the image");
    assert!(
        out.status.success(),
        "inside {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_image(root: &Path) {
    assert!(root.join(MARKER).is_file());
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the image was built but not entered");
        return;
    }
    // `echo $(ls /)`: the shell joins the names with spaces, no `tr` needed.
    let out = run_inside(
        root,
        "echo $(ls /); id -u; cat /etc/minibox-rootfs; echo hi | cat",
    );
    let mut lines = out.lines();
    let top = lines.next().unwrap();
    for dir in ["bin", "dev", "etc", "lib", "proc", "sys", "tmp", "usr"] {
        assert!(
            top.split_whitespace().any(|d| d == dir),
            "no /{dir} in `ls /`: {top}"
        );
    }
    assert_eq!(lines.next(), Some("0"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("a minibox root filesystem, from "));
    assert_eq!(lines.next(), Some("hi"));
}

#[test]
fn an_image_of_host_programs_runs_them() {
    let dest = temp("host");
    let built = build(&dest, Source::HostPrograms).unwrap();
    assert_eq!(built.source, "host programs");
    for required in ["sh", "ls", "cat"] {
        assert!(built.programs.iter().any(|p| p == required));
    }
    check_image(&dest);
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn an_image_of_busybox_runs_it_where_the_host_has_one() {
    let Some(busybox) = static_busybox() else {
        eprintln!("no static busybox on this host: `Source::Busybox` is an error here");
        let dest = temp("no-busybox");
        let error = build(&dest, Source::Busybox).unwrap_err().to_string();
        assert!(error.contains("busybox-static"), "{error}");
        assert!(!dest.exists(), "a failed build must leave nothing");
        return;
    };
    let dest = temp("busybox");
    let built = build(&dest, Source::Busybox).unwrap();
    assert_eq!(built.source, "busybox");
    assert!(
        dest.join("usr/bin/busybox").is_file(),
        "{}",
        busybox.display()
    );
    check_image(&dest);
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn an_existing_directory_is_refused() {
    let dest = temp("exists");
    std::fs::create_dir_all(&dest).unwrap();
    assert!(build(&dest, Source::HostPrograms)
        .unwrap_err()
        .to_string()
        .contains("already exists"));
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn the_cache_builds_once_for_parallel_callers() {
    let cache = temp("cache");
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| cached(&cache, Source::HostPrograms).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    assert!(paths[0].join(MARKER).is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("building"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "a temporary build directory was left behind"
    );
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn the_setting_names_a_source() {
    for (value, source) in [
        (None, Source::Auto),
        (Some(""), Source::Auto),
        (Some("host"), Source::HostPrograms),
        (Some("busybox"), Source::Busybox),
    ] {
        assert_eq!(Source::from_setting(value).unwrap(), source, "{value:?}");
    }
    let error = Source::from_setting(Some("alpine"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("MINIBOX_ROOTFS_SOURCE=alpine: "),
        "{error}"
    );
    // A source asked for by name is never overridden by the variable.
    assert_eq!(
        Source::HostPrograms.resolve().unwrap(),
        Source::HostPrograms
    );
}
