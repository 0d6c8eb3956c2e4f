//! Given: BPF instructions, and the two bpf(2) calls that load a device
//! program and attach it to a cgroup.
//!
//! An eBPF program is an array of 8-byte instructions for a small virtual
//! machine with eleven 64-bit registers: `r1` holds the program's argument
//! when it starts, `r0` its answer at `exit`. The kernel checks it at load
//! (the *verifier*: every path ends, no read outside what it was given),
//! then compiles it to machine code. Shell: `bpftool prog load FILE.o
//! /sys/fs/bpf/NAME type cgroup/dev`, then `bpftool cgroup attach
//! /sys/fs/cgroup/GROUP device pinned /sys/fs/bpf/NAME multi`.

use anyhow::Context;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// A register: `R0` the answer, `R1` the argument (a pointer to the
/// device and the access asked), `R2`..`R5` free for the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);

/// `struct bpf_insn` of `<linux/bpf.h>`: an opcode, the destination and
/// source registers (4 bits each), a signed jump offset, an immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

// The opcodes used here: class | operation | source (K: the immediate,
// X: a register). From <linux/bpf_common.h> and <linux/bpf.h>.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const ALU64_AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const ALU64_RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        // The two 4-bit register fields are C bit-fields: `dst_reg` first,
        // which is the low nibble on little-endian machines.
        let regs = if cfg!(target_endian = "little") {
            dst.0 | (src.0 << 4)
        } else {
            (dst.0 << 4) | src.0
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + offset)`: 4 bytes of what `src` points at.
    pub fn load_u32(dst: Reg, src: Reg, offset: i16) -> Insn {
        Insn::new(LDX_MEM_W, dst, src, offset, 0)
    }

    /// `dst = value`.
    pub fn mov(dst: Reg, value: i32) -> Insn {
        Insn::new(ALU64_MOV_K, dst, R0, 0, value)
    }

    /// `dst = src`.
    pub fn mov_reg(dst: Reg, src: Reg) -> Insn {
        Insn::new(ALU64_MOV_X, dst, src, 0, 0)
    }

    /// `dst &= mask`.
    pub fn and(dst: Reg, mask: i32) -> Insn {
        Insn::new(ALU64_AND_K, dst, R0, 0, mask)
    }

    /// `dst >>= bits`.
    pub fn rsh(dst: Reg, bits: i32) -> Insn {
        Insn::new(ALU64_RSH_K, dst, R0, 0, bits)
    }

    /// `if dst != value goto +skip`: when they differ, the `skip`
    /// instructions after this one are jumped over.
    pub fn jne(dst: Reg, value: i32, skip: i16) -> Insn {
        Insn::new(JMP_JNE_K, dst, R0, skip, value)
    }

    /// `exit`: the program ends, answering what `r0` holds.
    pub fn exit() -> Insn {
        Insn::new(JMP_EXIT, R0, R0, 0, 0)
    }

    fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }
}

/// As `bpftool prog dump xlated` shows it.
impl std::fmt::Display for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (dst, src, off, imm) = (self.dst(), self.src(), self.off, self.imm);
        match self.code {
            LDX_MEM_W => write!(f, "r{dst} = *(u32 *)(r{src} {off:+})"),
            ALU64_MOV_K => write!(f, "r{dst} = {imm}"),
            ALU64_MOV_X => write!(f, "r{dst} = r{src}"),
            ALU64_AND_K => write!(f, "r{dst} &= {imm}"),
            ALU64_RSH_K => write!(f, "r{dst} >>= {imm}"),
            JMP_JNE_K => write!(f, "if r{dst} != {imm:#x} goto pc+{off}"),
            JMP_EXIT => write!(f, "exit"),
            code => write!(f, "(opcode {code:#04x})"),
        }
    }
}

// From <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The start of `union bpf_attr` as BPF_PROG_LOAD reads it. The kernel
/// takes a shorter attr than its own and reads the rest as zeros.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// bpf(2): `command` with `attr`; a new fd, or 0, or the errno.
fn bpf<T>(command: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: bpf(2) reads (and, for the verifier's log, writes) at most
    // size_of::<T>() bytes of `attr`, and the buffers its fields point at,
    // which the callers keep alive and sized as they say. Nothing else of
    // ours is touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Why a program was not loaded.
#[derive(Debug)]
pub enum Refusal {
    /// The verifier refused this program: the line of its log that says
    /// why. A bug in the program, not in the kernel.
    Verifier(String),
    /// The kernel refused before verifying anything: it runs no device
    /// programs (no `CONFIG_CGROUP_BPF`), or the caller may not load one.
    Kernel(std::io::Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Verifier(why) => write!(f, "the kernel's verifier refused the device program: {why}"),
            Refusal::Kernel(error) => write!(f, "the kernel refused to load a device program (bpf BPF_PROG_LOAD; a kernel without CONFIG_CGROUP_BPF?): {error}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Load `program` as a device program: the kernel verifies it, and gives
/// back an fd that holds it.
pub fn load(program: &[Insn]) -> Result<OwnedFd, Refusal> {
    // The license decides only whether the kernel's GPL-only helpers may be
    // called; this program calls no helper at all.
    let license = c"MIT OR Apache-2.0";
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoad::default()
    };
    // The name `bpftool prog` shows (at most 15 bytes).
    attr.prog_name[..11].copy_from_slice(b"minibox_dev");
    // bpf(BPF_PROG_LOAD): EINVAL for a program type this kernel doesn't
    // have (no CONFIG_CGROUP_BPF) or a malformed program, EACCES for one
    // the verifier refuses, EPERM without CAP_BPF/CAP_SYS_ADMIN.
    let error = match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a new fd, ours alone.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(error) => error,
    };
    // Again, with the verifier's log: a program it looked at and refused
    // leaves its reason there; a kernel that refused earlier, nothing.
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    let _ = bpf(BPF_PROG_LOAD, &mut attr);
    let text = String::from_utf8_lossy(&log);
    let why = text
        .trim_end_matches('\0')
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with("processed"));
    match why {
        Some(why) => Err(Refusal::Verifier(why.trim().to_string())),
        None => Err(Refusal::Kernel(error)),
    }
}

/// Attach the loaded `program` to the cgroup (v2) directory `group`: from
/// now on it decides every device access of the group's processes, and of
/// its descendants. It stays until the group is removed (rmdir), which
/// detaches and frees it: the fds may be closed at once.
pub fn attach(group: &Path, program: &OwnedFd) -> anyhow::Result<()> {
    let dir =
        std::fs::File::open(group).with_context(|| format!("cannot open {}", group.display()))?;
    let mut attr = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        // MULTI: the programs of the groups above (systemd's, say) still
        // run too, and a device must pass them all.
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // bpf(BPF_PROG_ATTACH): EPERM if a group above has a program that
    // forbids any below it.
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(|_| ())
        .with_context(|| {
            format!(
                "the kernel refused to attach the device program to {} (bpf BPF_PROG_ATTACH)",
                group.display()
            )
        })
}
