//! The runtime's own binary, out of the container's reach.
//!
//! The process that `execve`s a container's program is a copy of the
//! runtime until that very moment. If the program is a script whose first
//! line is `#!/proc/self/exe`, the kernel looks the interpreter up *in that
//! process*, where `/proc/self/exe` is the runtime's binary on the host: the
//! host's minibox then runs inside the container, as the container's root,
//! with arguments the image chose. A process of the container can open
//! its `/proc/PID/exe` (`O_PATH`), hold it, and once no process runs the
//! binary any more (after an upgrade, say), open it again for writing
//! through `/proc/self/fd/N`: the next `minibox` the host's root starts is
//! the attacker's program. That is CVE-2019-5736, found in runc.
//!
//! The cure: the process never `execve`s the container's program while it
//! is the runtime. It first becomes a tiny program of its own, 56 bytes
//! of machine code in a minimal ELF file (176 bytes in all), held in a
//! *sealed memfd*: an in-memory file that nobody, root included, can ever
//! write, grow, shrink or unseal. The tiny program's one job is the real `execve`. From then
//! on `/proc/self/exe` is `/memfd:minibox-exec (deleted)`, which leads to
//! nothing of the host's. runc did the same (`runc-dmz`, a small C program
//! copied into a sealed memfd for every process it starts in a container);
//! it now seals its own binary behind a read-only overlay mount instead,
//! which is possible because Go's runc re-executes itself anyway.
//!
//! The tiny program takes `argv = [PATH, ARGV0, ARGS...]`, runs
//! `execve(PATH, [ARGV0, ARGS...], envp)`, and if that fails exits 127
//! (`ENOENT`) or 126 (anything else), docker's codes. It holds nothing of
//! the runtime's: no fd but the container's stdio (the exec report's pipe
//! closed at the first `execve`, close-on-exec), since the container can
//! open its `/proc/PID/fd/N` (it is dumpable again) and could hold a pipe
//! of the runtime's open for ever. So the runtime checks beforehand what
//! would make that `execve` fail, to say why in one line ([`preflight`]).
//! With fewer than two arguments it only exits 127: run as a script's
//! interpreter, it could otherwise exec itself for ever.

use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};

/// The tiny program's machine code for x86-64 (`as` Intel syntax):
///
/// ```text
///   mov rcx, [rsp]; cmp rcx, 2; jl out127   argc < 2: out
///   mov rdi, [rsp+8]                        PATH = argv[0]
///   lea rsi, [rsp+16]                       &argv[1]
///   lea rdx, [rsp+rcx*8+16]                 envp, after argv's NULL
///   mov eax, 59; syscall                    execve; returns only on failure
///   cmp eax, -2; je out127                  -ENOENT: not found
///   mov edi, 126; jmp out
/// out127:
///   mov edi, 127
/// out:
///   mov eax, 231; syscall                   exit_group
/// ```
#[cfg(target_arch = "x86_64")]
const CODE: &[u8] = &[
    0x48, 0x8b, 0x0c, 0x24, 0x48, 0x83, 0xf9, 0x02, 0x7c, 0x22, 0x48, 0x8b, 0x7c, 0x24, 0x08, 0x48,
    0x8d, 0x74, 0x24, 0x10, 0x48, 0x8d, 0x54, 0xcc, 0x10, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0x83, 0xf8, 0xfe, 0x74, 0x07, 0xbf, 0x7e, 0x00, 0x00, 0x00, 0xeb, 0x05, 0xbf, 0x7f, 0x00, 0x00,
    0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
];
/// EM_X86_64.
#[cfg(target_arch = "x86_64")]
const MACHINE: u16 = 62;

/// The same for 64-bit Arm (`svc #0` calls: execve 221, exit_group 94):
///
/// ```text
///   ldr x9, [sp]; cmp x9, #2; b.lt out127
///   ldr x0, [sp, #8]; add x1, sp, #16
///   add x2, sp, x9, lsl #3; add x2, x2, #16
///   mov x8, #221; svc #0
///   cmn x0, #2; b.eq out127
///   mov x0, #126; b out
/// out127:
///   mov x0, #127
/// out:
///   mov x8, #94; svc #0
/// ```
#[cfg(target_arch = "aarch64")]
const CODE: &[u8] = &[
    0xe9, 0x03, 0x40, 0xf9, 0x3f, 0x09, 0x00, 0xf1, 0x6b, 0x01, 0x00, 0x54, 0xe0, 0x07, 0x40, 0xf9,
    0xe1, 0x43, 0x00, 0x91, 0xe2, 0x6f, 0x29, 0x8b, 0x42, 0x40, 0x00, 0x91, 0xa8, 0x1b, 0x80, 0xd2,
    0x01, 0x00, 0x00, 0xd4, 0x1f, 0x08, 0x00, 0xb1, 0x60, 0x00, 0x00, 0x54, 0xc0, 0x0f, 0x80, 0xd2,
    0x02, 0x00, 0x00, 0x14, 0xe0, 0x0f, 0x80, 0xd2, 0xc8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
];
/// EM_AARCH64.
#[cfg(target_arch = "aarch64")]
const MACHINE: u16 = 183;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const CODE: &[u8] = &[];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const MACHINE: u16 = 0;

/// Where the kernel maps the file: the classic base of a static program.
const BASE: u64 = 0x40_0000;
/// An ELF header (64 bytes) and one program header (56 bytes).
const HEADERS: usize = 64 + 56;

// ANCHOR: elf
/// The smallest ELF file that runs [`CODE`]: an ELF header saying "a
/// 64-bit little-endian executable for this machine, start at ENTRY", and
/// one program header saying "map this whole file at BASE, readable and
/// executable". No sections, no C library, no dynamic loader: the kernel
/// maps it and jumps to the code. `readelf -h -l` shows both headers.
pub fn elf() -> Vec<u8> {
    let size = (HEADERS + CODE.len()) as u64;
    let mut file = Vec::with_capacity(size as usize);
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, System V, padding.
    file.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    file.extend_from_slice(&MACHINE.to_le_bytes()); // e_machine
    file.extend_from_slice(&1u32.to_le_bytes()); // e_version
    file.extend_from_slice(&(BASE + HEADERS as u64).to_le_bytes()); // e_entry: the code
    file.extend_from_slice(&64u64.to_le_bytes()); // e_phoff: right after this header
    file.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    file.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    file.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    file.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    file.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    file.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
                                     // The program header: PT_LOAD, PF_R | PF_X, the whole file at BASE.
    file.extend_from_slice(&1u32.to_le_bytes()); // p_type
    file.extend_from_slice(&5u32.to_le_bytes()); // p_flags
    file.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    file.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    file.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    file.extend_from_slice(&size.to_le_bytes()); // p_filesz
    file.extend_from_slice(&size.to_le_bytes()); // p_memsz
    file.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    file.extend_from_slice(CODE);
    file
}
// ANCHOR_END: elf

// ANCHOR: sealed_copy
/// `bytes` as an in-memory file that can never change again, open
/// close-on-exec: what the tiny program is run from.
pub fn sealed_copy(bytes: &[u8]) -> Result<OwnedFd, Errno> {
    // TODO(lesson-06): when this returns, the fd names a file that lives in memory only (no path on any filesystem), holds exactly `bytes`, may be executed, and that nobody, root included, can ever write, grow, shrink or unseal; the fd closes at execve. Shell: none; `ls -l /proc/PID/exe` of a process run from it shows `/memfd:NAME (deleted)`
    // Seals are the kernel's promise about a file, kept for its life; only
    // a file made to allow them takes any. Kernels before 6.3 don't know the flag that asks for an
    // executable memfd (EINVAL): theirs are executable anyway. Where
    // `vm.memfd_noexec` is 2, none may be executed at all (EACCES): return
    // the errno, and the run fails saying so.
    // BEGIN SOLUTION
    use std::os::fd::FromRawFd;
    let name = c"minibox-exec";
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create(2) reads the NUL-terminated name; it returns
        // a new fd or -1.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        // SAFETY: a fresh fd, owned by nobody else.
        Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    // MFD_EXEC (Linux 6.3): executable, whatever vm.memfd_noexec prefers.
    let fd = match create(libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | libc::MFD_EXEC) {
        Err(Errno::EINVAL) => create(libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)?,
        other => other?,
    };
    let mut written = 0;
    while written < bytes.len() {
        // write(2) into the memfd, like any file.
        written += nix::unistd::write(&fd, &bytes[written..])?;
    }
    // F_ADD_SEALS: no write, no growing, no shrinking, and no more
    // changes to the seals themselves. The kernel refuses F_SEAL_WRITE
    // while the file is mapped writable anywhere: it isn't.
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK;
    // SAFETY: fcntl(2) F_ADD_SEALS takes an int argument.
    Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    // F_SEAL_EXEC (6.3): its mode bits can't change either; older kernels
    // say EINVAL, and have no way to make it non-executable later anyway
    // short of chmod, which F_SEAL_SEAL doesn't stop there: fine either way.
    // SAFETY: as above.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC) };
    // SAFETY: as above.
    Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SEAL) })?;
    Ok(fd)
    // END SOLUTION
}
// ANCHOR_END: sealed_copy

// ANCHOR: execve
/// `execve(program, argv, envp)` by way of the tiny program. Returns only
/// if it failed before the tiny program ran.
pub fn execve(program: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
    if MACHINE == 0 {
        return Errno::ENOEXEC; // no tiny program for this machine
    }
    if let Err(errno) = preflight(program) {
        return errno;
    }
    let trampoline = match sealed_copy(&elf()) {
        Ok(fd) => fd,
        Err(errno) => return errno,
    };
    // [PATH, ARGV0, ARGS..., NULL] and [ENV..., NULL], as C pointers.
    let mut args: Vec<*const libc::c_char> = Vec::with_capacity(argv.len() + 2);
    args.push(program.as_ptr());
    args.extend(argv.iter().map(|a| a.as_ptr()));
    args.push(std::ptr::null());
    let mut env: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    env.push(std::ptr::null());
    // SAFETY: execveat(2) with AT_EMPTY_PATH runs the file `trampoline`
    // names; every pointer is a NUL-terminated string that lives until the
    // call, and both arrays end with NULL. It returns only on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            trampoline.as_raw_fd(),
            c"".as_ptr(),
            args.as_ptr(),
            env.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}
// ANCHOR_END: execve

/// What would make the program's `execve` fail, asked beforehand, so that
/// the failure is said in one line (the tiny program can only exit 126 or
/// 127): a file that isn't there, isn't a regular file or can't be
/// executed; an ELF program whose interpreter (its `PT_INTERP`, the dynamic
/// loader) the image lacks, or a script whose `#!` interpreter it lacks:
/// the kernel says `ENOENT` for both, the most puzzling "no such file" of
/// all. Other formats are left to the kernel (binfmt_misc may know them).
pub fn preflight(program: &CStr) -> Result<(), Errno> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(program.to_bytes()));
    let errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let mut file = std::fs::File::open(path).map_err(errno)?;
    if !file.metadata().map_err(errno)?.is_file() {
        return Err(Errno::EACCES);
    }
    // access(2) X_OK: an execute bit, on a mount that allows execution.
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)?;
    let mut head = vec![0u8; 4096];
    let n = file.read(&mut head).map_err(errno)?;
    head.truncate(n);
    let interpreter = if head.starts_with(b"#!") {
        let line = head[2..].split(|b| *b == b'\n').next().unwrap_or_default();
        line.split(|b| *b == b' ' || *b == b'\t')
            .find(|word| !word.is_empty())
            .map(|word| word.to_vec())
    } else if head.starts_with(b"\x7fELF") {
        elf_interpreter(&mut file, &head)
    } else {
        None
    };
    match interpreter {
        Some(name) if !std::path::Path::new(std::ffi::OsStr::from_bytes(&name)).exists() => {
            Err(Errno::ENOENT)
        }
        _ => Ok(()),
    }
}

/// The `PT_INTERP` path of an ELF file (32 or 64 bits, little or big
/// endian), if it has one.
fn elf_interpreter(file: &mut std::fs::File, head: &[u8]) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let wide = *head.get(4)? == 2; // ELFCLASS64
    let little = *head.get(5)? == 1; // ELFDATA2LSB
    let number = |bytes: &[u8]| -> u64 {
        let mut value = 0u64;
        for (i, byte) in bytes.iter().enumerate() {
            let shift = if little { i } else { bytes.len() - 1 - i };
            value |= u64::from(*byte) << (8 * shift);
        }
        value
    };
    let (phoff, phentsize, phnum) = if wide {
        (
            number(head.get(32..40)?),
            number(head.get(54..56)?),
            number(head.get(56..58)?),
        )
    } else {
        (
            number(head.get(28..32)?),
            number(head.get(42..44)?),
            number(head.get(44..46)?),
        )
    };
    for index in 0..phnum.min(64) {
        let mut entry = vec![0u8; phentsize.min(64) as usize];
        file.read_exact_at(&mut entry, phoff + index * phentsize)
            .ok()?;
        if number(entry.get(0..4)?) != 3 {
            continue; // not PT_INTERP
        }
        let (offset, size) = if wide {
            (number(entry.get(8..16)?), number(entry.get(32..40)?))
        } else {
            (number(entry.get(4..8)?), number(entry.get(16..20)?))
        };
        let mut path = vec![0u8; size.min(4096) as usize];
        file.read_exact_at(&mut path, offset).ok()?;
        while path.last() == Some(&0) {
            path.pop();
        }
        return Some(path);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_sees_a_missing_interpreter() {
        assert_eq!(preflight(c"/bin/sh"), Ok(()));
        assert_eq!(preflight(c"/nonexistent"), Err(Errno::ENOENT));
        let dir = std::env::temp_dir().join(format!("tramp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, "data\n").unwrap();
        let c = std::ffi::CString::new(plain.to_str().unwrap()).unwrap();
        assert_eq!(preflight(&c), Err(Errno::EACCES), "no execute bit");
        let script = dir.join("s");
        std::fs::write(&script, "#!/nonexistent/sh -e\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = std::ffi::CString::new(script.to_str().unwrap()).unwrap();
        assert_eq!(preflight(&c), Err(Errno::ENOENT));
        // An ELF file of ours with an interpreter that isn't there.
        let mut elf = std::fs::read("/bin/sh").unwrap();
        let at = elf
            .windows(10)
            .position(|w| w == b"/lib64/ld-")
            .unwrap_or(0);
        if at > 0 {
            elf[at + 1] = b'X';
            let broken = dir.join("broken");
            std::fs::write(&broken, elf).unwrap();
            std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
            let c = std::ffi::CString::new(broken.to_str().unwrap()).unwrap();
            assert_eq!(preflight(&c), Err(Errno::ENOENT));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_copy_is_sealed_and_the_elf_has_its_headers() {
        let fd = sealed_copy(&elf()).unwrap();
        // SAFETY: F_GET_SEALS returns the seals as an int.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        let wanted =
            libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        assert_eq!(seals & wanted, wanted);
        assert_eq!(nix::unistd::write(&fd, b"x"), Err(Errno::EPERM));
        let file = elf();
        assert_eq!(&file[..4], b"\x7fELF");
        assert_eq!(file.len(), HEADERS + CODE.len());
    }
}
