//! Seeing VXLAN on the wire: an `AF_PACKET` socket on an underlay device,
//! inside its namespace, that decodes what it sees (what `tcpdump -ni ub
//! udp port 4789` would print, without tcpdump).
//!
//! A VXLAN packet is an Ethernet frame of the overlay wrapped in UDP over
//! the underlay's IPv4 (RFC 7348):
//!
//! ```text
//! outer Ethernet  14 bytes  underlay MACs, type 0x0800
//! outer IPv4      20 bytes  VTEP to VTEP (192.168.50.1 -> 192.168.50.2)
//! outer UDP        8 bytes  source port: a hash of the inner flow; dst 4789
//! VXLAN            8 bytes  flags 0x08 ("I": the VNI is valid), 3 reserved,
//!                           VNI (24 bits, big endian), 1 reserved
//! inner Ethernet  14 bytes  the containers' MACs  <- the overlay's frame
//! inner IPv4 ...            10.0.0.2 -> 10.0.0.3
//! ```
//!
//! 14 + 20 + 8 + 8 = 50 bytes more per frame. An MTU counts the IP packet
//! a device may send, not its Ethernet header; the underlay's IP packet
//! holds outer IPv4 (20) + UDP (8) + VXLAN (8) + the overlay's Ethernet
//! header (14) + the overlay's IP packet, and must fit in the underlay's
//! 1500: the overlay's MTU is 1500 - 50 = 1450 (the kernel gives a VXLAN
//! device on a 1500 underlay exactly that). A container left at 1500 sends
//! packets the VTEP cannot fit, and large packets vanish silently.

use crate::Fail;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The VXLAN header's flags byte when the VNI is valid (the "I" bit).
pub const VXLAN_FLAG_VNI: u8 = 0x08;
/// The bytes VXLAN adds in front of an overlay frame on an IPv4 underlay.
pub const VXLAN_OVERHEAD: usize = ETHERNET + IPV4 + UDP + VXLAN;
const ETHERNET: usize = 14;
const IPV4: usize = 20;
const UDP: usize = 8;
const VXLAN: usize = 8;

/// One VXLAN packet seen on the underlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanPacket {
    /// The VTEPs: the underlay addresses of the sending and receiving hosts.
    pub outer_src: Ipv4Addr,
    pub outer_dst: Ipv4Addr,
    pub udp_port: u16,
    pub vni: u32,
    pub inner_src_mac: String,
    pub inner_dst_mac: String,
    /// The inner frame's EtherType: 0x0800 IPv4, 0x0806 ARP.
    pub inner_type: u16,
    /// The inner IPv4 addresses (for IPv4 frames).
    pub inner_src: Option<Ipv4Addr>,
    pub inner_dst: Option<Ipv4Addr>,
}

impl std::fmt::Display for VxlanPacket {
    /// As `tcpdump -n` prints it, on one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} > {}.{}: VXLAN vni {}: {} > {} type {:#06x}",
            self.outer_src,
            self.outer_dst,
            self.udp_port,
            self.vni,
            self.inner_src_mac,
            self.inner_dst_mac,
            self.inner_type
        )?;
        if let (Some(src), Some(dst)) = (self.inner_src, self.inner_dst) {
            write!(f, " IP {src} > {dst}")?;
        }
        Ok(())
    }
}

/// Decode `frame` (from its Ethernet header on) as a VXLAN packet to UDP
/// `port`; None for anything else.
pub fn decode(frame: &[u8], port: u16) -> Option<VxlanPacket> {
    let be16 = |at: usize| Some(u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?));
    let v4 = |at: usize| -> Option<Ipv4Addr> {
        let b: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    };
    // Outer Ethernet: the type at 12 must be IPv4.
    if be16(12)? != 0x0800 {
        return None;
    }
    let ip = ETHERNET;
    let version_ihl = *frame.get(ip)?;
    // IHL counts 32-bit words; 5 without options.
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < IPV4 || *frame.get(ip + 9)? != 17 {
        return None; // not IPv4, or not UDP (protocol 17)
    }
    let udp = ip + ihl;
    if be16(udp + 2)? != port {
        return None;
    }
    let vxlan = udp + UDP;
    if *frame.get(vxlan)? & VXLAN_FLAG_VNI == 0 {
        return None;
    }
    // The VNI: bytes 4, 5, 6 of the VXLAN header, big endian.
    let vni = frame.get(vxlan + 4..vxlan + 7)?;
    let vni = u32::from(vni[0]) << 16 | u32::from(vni[1]) << 8 | u32::from(vni[2]);
    let inner = vxlan + VXLAN;
    let inner_type = be16(inner + 12)?;
    let (inner_src, inner_dst) = if inner_type == 0x0800 {
        (v4(inner + ETHERNET + 12), v4(inner + ETHERNET + 16))
    } else {
        (None, None)
    };
    Some(VxlanPacket {
        outer_src: v4(ip + 12)?,
        outer_dst: v4(ip + 16)?,
        udp_port: port,
        vni,
        inner_dst_mac: super::mac(frame.get(inner..inner + 6)?),
        inner_src_mac: super::mac(frame.get(inner + 6..inner + 12)?),
        inner_type,
        inner_src,
        inner_dst,
    })
}

/// A packet socket on one device of a namespace, keeping the VXLAN packets
/// to one UDP port it has seen.
pub struct Capture {
    socket: OwnedFd,
    port: u16,
    /// Every VXLAN packet decoded so far, oldest first.
    pub seen: Vec<VxlanPacket>,
}

impl Capture {
    /// Start capturing on `device` in the namespace at `netns`: from now
    /// on, every frame it sends or receives is queued for us (up to the
    /// socket's receive buffer).
    pub fn open(netns: &str, device: &str, port: u16) -> Result<Capture, Fail> {
        let fail = |what: &str, e: anyhow::Error| {
            Fail::new(format!("the grader cannot capture on {device}: {what}"))
                .seen(format!("{e:#}"))
        };
        let socket = super::rtnl::in_netns(netns, || {
            let name = std::ffi::CString::new(device)?;
            // if_nametoindex(3) asks this thread's namespace: 0 if absent.
            // SAFETY: a NUL-terminated string we own.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if index == 0 {
                anyhow::bail!("no device {device} in {netns}");
            }
            packet_socket(index)
        })
        .map_err(|e| fail("an AF_PACKET socket", e))?;
        Ok(Capture {
            socket,
            port,
            seen: Vec::new(),
        })
    }

    /// Wait (at most `timeout`) for a VXLAN packet for which `wanted` is
    /// true; every packet read on the way is kept in [`Capture::seen`].
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&VxlanPacket) -> bool,
    ) -> Option<VxlanPacket> {
        if let Some(found) = self.seen.iter().find(|p| wanted(p)) {
            return Some(found.clone());
        }
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            // poll(2): sleep until a frame is queued or the time is up;
            // EINTR only, on a signal (then we poll again).
            // SAFETY: one pollfd we own, its length given.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, left.as_millis() as i32) };
            if ready > 0 {
                // recv(2) of one frame, not blocking: poll said one is there.
                // SAFETY: the buffer is ours and its length is given.
                let n = unsafe {
                    libc::recv(
                        self.socket.as_raw_fd(),
                        buffer.as_mut_ptr().cast(),
                        buffer.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    if let Some(packet) = decode(&buffer[..n as usize], self.port) {
                        self.seen.push(packet.clone());
                        if wanted(&packet) {
                            return Some(packet);
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// What was seen, one packet a line, for a failure message.
    pub fn shown(&self) -> String {
        if self.seen.is_empty() {
            return format!("no VXLAN packet to UDP port {}", self.port);
        }
        self.seen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `socket(AF_PACKET, SOCK_RAW, 0)` bound to the device `index` for every
/// protocol: whole frames, Ethernet header included, both directions.
fn packet_socket(index: u32) -> anyhow::Result<OwnedFd> {
    let all = (libc::ETH_P_ALL as u16).to_be();
    // Protocol 0 at first: the socket receives nothing until bind() names
    // a protocol and a device, so no frame of another device slips in.
    // SAFETY: plain socket(2); a negative return is checked. EPERM
    // without CAP_NET_RAW.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_ll is valid; we fill the fields bind
    // reads (family, protocol, ifindex).
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = all;
    address.sll_ifindex = index as i32;
    // bind(2) to one device: ENODEV if it went away meanwhile.
    // SAFETY: the address is a sockaddr_ll of the length given.
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if bound < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VXLAN packet as the kernel sends it, byte by byte.
    fn packet(vni: u32, port: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend([0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00]); // outer Ethernet
        p.extend([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0]); // IPv4, UDP
        p.extend([192, 168, 50, 1, 192, 168, 50, 2]);
        p.extend([0xc3, 0x50]); // source port
        p.extend(port.to_be_bytes());
        p.extend([0, 0, 0, 0]); // UDP length, checksum
        p.extend([VXLAN_FLAG_VNI, 0, 0, 0]);
        p.extend(&vni.to_be_bytes()[1..]);
        p.push(0);
        p.extend([0x02, 0x42, 10, 0, 0, 3, 0x02, 0x42, 10, 0, 0, 2, 0x08, 0x00]); // inner Ethernet
        p.extend([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0]);
        p.extend([10, 0, 0, 2, 10, 0, 0, 3]);
        p
    }

    #[test]
    fn the_outer_headers_are_fifty_bytes() {
        assert_eq!(VXLAN_OVERHEAD, 50);
        assert_eq!(1500 - VXLAN_OVERHEAD, 1450);
    }

    #[test]
    fn a_vxlan_packet_decodes_to_its_vni_and_inner_addresses() {
        let seen = decode(&packet(42, 4789), 4789).expect("a VXLAN packet");
        assert_eq!(seen.vni, 42);
        assert_eq!(seen.outer_src, Ipv4Addr::new(192, 168, 50, 1));
        assert_eq!(seen.inner_src_mac, "02:42:0a:00:00:02");
        assert_eq!(seen.inner_dst_mac, "02:42:0a:00:00:03");
        assert_eq!(seen.inner_src, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(seen.inner_dst, Some(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(decode(&packet(0xabcdef, 4789), 4789).unwrap().vni, 0xabcdef);
    }

    #[test]
    fn other_ports_and_cut_frames_are_not_vxlan() {
        assert_eq!(decode(&packet(42, 8472), 4789), None);
        let whole = packet(42, 4789);
        for cut in 0..ETHERNET + IPV4 + UDP + VXLAN + 14 {
            assert_eq!(decode(&whole[..cut], 4789), None, "cut at {cut}");
        }
        let mut no_flag = whole.clone();
        no_flag[ETHERNET + IPV4 + UDP] = 0;
        assert_eq!(decode(&no_flag, 4789), None);
    }
}
