//! Just enough ELF to tell a static program from a dynamic one.
//!
//! A dynamically linked program names its loader (`/lib64/ld-linux-x86-64.so.2`)
//! in a `PT_INTERP` program header; the kernel starts the loader, which maps
//! the libraries. A static program has no `PT_INTERP`: it needs no other file.

const PT_INTERP: u32 = 3;

/// Whether `bytes` (the start of an ELF file) describe a program with no
/// loader. `None` if it isn't a 64-bit little-endian ELF file.
pub fn is_static(bytes: &[u8]) -> Option<bool> {
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
        return None; // not ELF, or not 64-bit little-endian
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    for index in 0..phnum {
        let at = phoff + index * phentsize;
        let kind = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        if kind == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with the given program header types.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 56 * types.len()];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, kind) in types.iter().enumerate() {
            bytes[64 + 56 * i..68 + 56 * i].copy_from_slice(&kind.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn a_loader_header_means_dynamic() {
        assert_eq!(is_static(&elf(&[6, 3, 1])), Some(false));
        assert_eq!(is_static(&elf(&[1, 1])), Some(true));
        assert_eq!(is_static(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn the_hosts_shell_is_dynamic() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(is_static(&sh), Some(false));
    }
}
