//! A VM for comparison: Debian's kernel and an initramfs holding a static
//! busybox whose init prints a line and powers off, booted by qemu. The
//! time is from qemu's start to its exit (firmware, kernel, init, the first
//! command, power-off); the memory is qemu's peak resident set.
//!
//! KVM is probed first with a timeout: on some machines /dev/kvm exists and
//! a guest hangs (nested virtualisation without support, say). Then the
//! CPU is emulated (TCG), and the figure says so.

use super::setup::Tools;
use super::stats::Sample;
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the init prints once it runs: the VM's "first command".
const READY: &str = "MINIBOX-VM-READY";

#[derive(Debug, Serialize)]
pub struct Vm {
    /// `kvm` or `tcg (emulated: no working KVM here)`.
    pub accelerator: String,
    pub boot_to_poweroff: Sample,
    pub peak_rss_mib: f64,
    pub guest_memory_mib: u32,
}

/// Published figures, shown (and marked as such) where no VM runs here.
pub const PUBLISHED: &str = "Firecracker, a VM monitor built for small fast guests, reports starting a guest to user space in about 125 ms with under 5 MiB of memory overhead per VM (Agache et al., Firecracker: Lightweight Virtualization for Serverless Applications, NSDI 2020); a general-purpose VM with a distribution's kernel and init takes seconds.";

pub fn measure(tools: &Tools, out: &Path, notes: &mut Vec<String>) -> Option<Vm> {
    let (Some(qemu), Some(kernel), Some(busybox)) = (&tools.qemu, &tools.kernel, &tools.busybox)
    else {
        notes.push(format!(
            "no VM was booted here (qemu, a kernel or busybox missing); published: {PUBLISHED}"
        ));
        return None;
    };
    let initrd = out.join("vm/init.cpio");
    if let Err(e) = std::fs::read(busybox).and_then(|b| std::fs::write(&initrd, initramfs(&b))) {
        notes.push(format!("no initramfs: {e}"));
        return None;
    }
    let boot = |accel: &str, limit: Duration| -> Option<(Duration, f64)> {
        let began = Instant::now();
        let mut child = Command::new(qemu)
            .args([
                "-accel",
                accel,
                "-m",
                "128",
                "-nodefaults",
                "-nographic",
                "-no-reboot",
                "-serial",
                "stdio",
            ])
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 quiet loglevel=0 panic=-1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // Read the console on a thread; wait here with a deadline.
        let stdout = child.stdout.take()?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut { stdout }, &mut text);
            text
        });
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if began.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    // Ours, by pid: a hung guest.
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = child.wait();
                    let _ = reader.join();
                    return None;
                }
            }
        }
        let elapsed = began.elapsed();
        let console = reader.join().unwrap_or_default();
        console
            .contains(READY)
            .then_some((elapsed, peak_rss_of_children()))
    };
    let kvm_works =
        Path::new("/dev/kvm").exists() && boot("kvm", Duration::from_secs(10)).is_some();
    let (accel, label, limit) = if kvm_works {
        ("kvm", "kvm".to_string(), Duration::from_secs(10))
    } else {
        notes.push("KVM did not boot the guest within 10 s here (or there is no /dev/kvm): the VM ran emulated (TCG), which is several times slower than KVM".into());
        (
            "tcg",
            "tcg (emulated: no working KVM here)".to_string(),
            Duration::from_secs(60),
        )
    };
    let mut times = Vec::new();
    let mut peak: f64 = 0.0;
    for _ in 0..3 {
        match boot(accel, limit) {
            Some((t, rss)) => {
                times.push(t);
                peak = peak.max(rss);
            }
            None => {
                notes.push(format!(
                    "the VM did not boot with {accel}; published: {PUBLISHED}"
                ));
                return None;
            }
        }
    }
    Some(Vm {
        accelerator: label,
        boot_to_poweroff: Sample::of("qemu: boot, first command, power-off", times),
        peak_rss_mib: peak,
        guest_memory_mib: 128,
    })
}

/// The largest resident set of any child we waited for (getrusage).
fn peak_rss_of_children() -> f64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss() as f64 / 1024.0)
        .unwrap_or(0.0)
}

/// A newc cpio archive: /bin/busybox and an /init script that prints the
/// marker and powers the machine off.
fn initramfs(busybox: &[u8]) -> Vec<u8> {
    let init = format!("#!/bin/busybox sh\n/bin/busybox echo {READY}\n/bin/busybox poweroff -f\n");
    let mut out = Vec::new();
    let mut ino = 0;
    let mut entry = |name: &str, mode: u32, data: &[u8]| {
        ino += 1;
        let name = format!("{name}\0");
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32,
            0,
        ];
        out.extend_from_slice(b"070701");
        for field in fields {
            out.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    entry("bin", 0o40755, b"");
    entry("dev", 0o40755, b"");
    entry("bin/busybox", 0o100755, busybox);
    entry("init", 0o100755, init.as_bytes());
    entry("TRAILER!!!", 0, b"");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initramfs_is_newc_with_busybox_and_init() {
        let archive = initramfs(b"BUSYBOX");
        assert!(archive.starts_with(b"070701"));
        assert_eq!(archive.len() % 4, 0);
        let text = String::from_utf8_lossy(&archive);
        for name in [
            "bin\0",
            "bin/busybox\0",
            "init\0",
            "TRAILER!!!\0",
            "BUSYBOX",
        ] {
            assert!(text.contains(name), "{name:?} missing");
        }
        assert!(text.contains(&format!("echo {READY}")));
    }
}
