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
//! is the runtime. It first becomes a tiny program of its own, about a
//! hundred bytes of machine code in a minimal ELF file, held in a *sealed memfd*: an
//! in-memory file that nobody, root included, can ever write, grow, shrink
//! or unseal. The tiny program's one job is the real `execve`. From then
//! on `/proc/self/exe` is `/memfd:minibox-exec (deleted)`, which leads to
//! nothing of the host's. runc did the same (`runc-dmz`, a small C program
//! copied into a sealed memfd for every process it starts in a container);
//! it now seals its own binary behind a read-only overlay mount instead,
//! which is possible because Go's runc re-executes itself anyway.
//!
//! The tiny program takes `argv = [PATH, ARGV0, ARGS...]` and runs
//! `execve(PATH, [ARGV0, ARGS...], envp)`. The runtime gives it the exec
//! report's pipe (step 01) as fd 3, without close-on-exec: it marks fd 3
//! close-on-exec itself, so the final `execve` closes it (the runtime reads
//! end-of-file: started), and if that `execve` fails it writes the report
//! step 01 expects, `[3 (exec), errno]`, and exits 127. With fewer than two
//! arguments it only exits 127: run as a script's interpreter, it could
//! otherwise exec itself for ever.

use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The tiny program's machine code for x86-64 (`as` Intel syntax):
///
/// ```text
///   mov edi, 3; mov esi, 2; mov edx, 1     fcntl(3, F_SETFD, FD_CLOEXEC)
///   mov eax, 72; syscall
///   mov rcx, [rsp]; cmp rcx, 2; jl out     argc < 2: out
///   mov rdi, [rsp+8]                        PATH = argv[0]
///   lea rsi, [rsp+16]                       &argv[1]
///   lea rdx, [rsp+rcx*8+16]                 envp, after argv's NULL
///   mov eax, 59; syscall                    execve; returns only on failure
///   neg eax; shl rax, 32; or rax, 3; push rax   [3u32, errno i32] on the stack
///   mov edi, 3; mov rsi, rsp; mov edx, 8    write(3, report, 8)
///   mov eax, 1; syscall
/// out:
///   mov edi, 127; mov eax, 231; syscall     exit_group(127)
/// ```
#[cfg(target_arch = "x86_64")]
const CODE: &[u8] = &[
    0xbf, 0x03, 0x00, 0x00, 0x00, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00, 0xb8,
    0x48, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x0c, 0x24, 0x48, 0x83, 0xf9, 0x02, 0x7c, 0x35,
    0x48, 0x8b, 0x7c, 0x24, 0x08, 0x48, 0x8d, 0x74, 0x24, 0x10, 0x48, 0x8d, 0x54, 0xcc, 0x10, 0xb8,
    0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xf7, 0xd8, 0x48, 0xc1, 0xe0, 0x20, 0x48, 0x83, 0xc8, 0x03,
    0x50, 0xbf, 0x03, 0x00, 0x00, 0x00, 0x48, 0x89, 0xe6, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8, 0x01,
    0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f,
    0x05,
];
/// EM_X86_64.
#[cfg(target_arch = "x86_64")]
const MACHINE: u16 = 62;

/// The same for 64-bit Arm (the `svc #0` calls: fcntl 25, execve 221,
/// write 64, exit_group 94):
///
/// ```text
///   mov x0, #3; mov x1, #2; mov x2, #1; mov x8, #25; svc #0
///   ldr x9, [sp]; cmp x9, #2; b.lt out
///   ldr x0, [sp, #8]; add x1, sp, #16
///   add x2, sp, x9, lsl #3; add x2, x2, #16
///   mov x8, #221; svc #0
///   neg w0, w0; lsl x0, x0, #32; orr x0, x0, #3; str x0, [sp, #-16]!
///   mov x1, sp; mov x0, #3; mov x2, #8; mov x8, #64; svc #0
/// out:
///   mov x0, #127; mov x8, #94; svc #0
/// ```
#[cfg(target_arch = "aarch64")]
const CODE: &[u8] = &[
    0x60, 0x00, 0x80, 0xd2, 0x41, 0x00, 0x80, 0xd2, 0x22, 0x00, 0x80, 0xd2, 0x28, 0x03, 0x80, 0xd2,
    0x01, 0x00, 0x00, 0xd4, 0xe9, 0x03, 0x40, 0xf9, 0x3f, 0x09, 0x00, 0xf1, 0x0b, 0x02, 0x00, 0x54,
    0xe0, 0x07, 0x40, 0xf9, 0xe1, 0x43, 0x00, 0x91, 0xe2, 0x6f, 0x29, 0x8b, 0x42, 0x40, 0x00, 0x91,
    0xa8, 0x1b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xe0, 0x03, 0x00, 0x4b, 0x00, 0x7c, 0x60, 0xd3,
    0x00, 0x04, 0x40, 0xb2, 0xe0, 0x0f, 0x1f, 0xf8, 0xe1, 0x03, 0x00, 0x91, 0x60, 0x00, 0x80, 0xd2,
    0x02, 0x01, 0x80, 0xd2, 0x08, 0x08, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xe0, 0x0f, 0x80, 0xd2,
    0xc8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
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
    // The seals are the kernel's promise, asked with fcntl and kept for the
    // file's life. Kernels before 6.3 don't know the flag that asks for an
    // executable memfd (EINVAL): theirs are executable anyway. Where
    // `vm.memfd_noexec` is 2, none may be executed at all (EACCES): return
    // the errno, and the run fails saying so.
    todo!(
        "lesson-06: when this returns, the fd names a file that lives in memory only (no path on any filesystem), holds exactly `bytes`, may be executed, and that nobody, root included, can ever write, grow, shrink or unseal; the fd closes at execve. Shell: none; `ls -l /proc/PID/exe` of a process run from it shows `/memfd:NAME (deleted)`"
    );
}
// ANCHOR_END: sealed_copy

// ANCHOR: execve
/// `execve(program, argv, envp)` by way of the tiny program, with the exec
/// report's write end `report`. Returns only if it failed.
pub fn execve(program: &CStr, argv: &[CString], envp: &[CString], report: RawFd) -> Errno {
    if MACHINE == 0 {
        return Errno::ENOEXEC; // no tiny program for this machine
    }
    // The report's pipe as fd 3, open across the first execve: the tiny
    // program reports through it. First, so the memfd below can't be 3.
    let moved = if report == 3 {
        // SAFETY: fcntl(F_SETFD) changes only fd 3's flags.
        unsafe { libc::fcntl(3, libc::F_SETFD, 0) }
    } else {
        // SAFETY: dup3(2) onto fd 3, without O_CLOEXEC; what fd 3 was is
        // closed (after step 06's seal, only the report's read end can be).
        unsafe { libc::dup3(report, 3, 0) }
    };
    if let Err(errno) = Errno::result(moved) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
