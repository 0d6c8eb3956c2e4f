//! What the cluster store holds, and where: every key of minibox under one
//! prefix, `/minibox/v1/`, so that one `etcdctl del --prefix /minibox/v1/`
//! forgets it all and nothing else is touched.
//!
//! ```text
//! /minibox/v1/networks/NAME            {"name":..,"id":..,"driver":"overlay","subnet":..,"vni":256,..}
//! /minibox/v1/vni/256                  NAME             (who holds the VNI)
//! /minibox/v1/subnets/10.0.0.0-24      NAME             (who holds the subnet)
//! /minibox/v1/ipam/NAME/10.0.0.2       CONTAINER ID     (under the container's lease)
//! /minibox/v1/endpoints/NAME/ID        {"name":..,"id":..,"ip":..,"mac":..,"host":..} (lease)
//! ```

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Every key of minibox starts with this.
pub const PREFIX: &str = "/minibox/v1/";

/// How long a container's keys outlive its last keepalive (seconds): a
/// host that dies loses its endpoints at most this long after.
pub const LEASE_TTL: i64 = 10;

/// libnetwork's first overlay VNI (those below are left to other uses).
pub const FIRST_VNI: u32 = 256;
/// A VNI is 24 bits.
pub const LAST_VNI: u32 = (1 << 24) - 1;

/// The UDP port IANA gave VXLAN (the kernel's own default is Linux's
/// pre-standard 8472: say it).
pub const VXLAN_PORT: u16 = 4789;

/// VXLAN's outer headers: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 bytes.
pub const VXLAN_OVERHEAD: u32 = 50;

pub fn network_key(name: &str) -> String {
    format!("{PREFIX}networks/{name}")
}

pub fn networks_prefix() -> String {
    format!("{PREFIX}networks/")
}

pub fn vni_key(vni: u32) -> String {
    format!("{PREFIX}vni/{vni}")
}

/// A subnet's key: its slash is the only one a key would otherwise hold
/// that is not a level.
pub fn subnet_key(subnet: &str) -> String {
    format!("{PREFIX}subnets/{}", subnet.replace('/', "-"))
}

pub fn address_key(network: &str, address: Ipv4Addr) -> String {
    format!("{PREFIX}ipam/{network}/{address}")
}

pub fn addresses_prefix(network: &str) -> String {
    format!("{PREFIX}ipam/{network}/")
}

pub fn endpoint_key(network: &str, id: &str) -> String {
    format!("{PREFIX}endpoints/{network}/{id}")
}

pub fn endpoints_prefix(network: &str) -> String {
    format!("{PREFIX}endpoints/{network}/")
}

/// An overlay network, as the store holds it (one JSON value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayNetwork {
    pub name: String,
    pub id: String,
    pub created: String,
    /// Always "overlay".
    pub driver: String,
    /// `10.0.0.0/24`.
    pub subnet: String,
    /// The VXLAN Network Identifier, 24 bits, unique in the cluster.
    pub vni: u32,
}

impl OverlayNetwork {
    /// This network's bridge on every host: `ovbr` + the VNI (at most 12
    /// characters; interface names stop at 15).
    pub fn bridge(&self) -> String {
        format!("ovbr{}", self.vni)
    }

    /// This network's VXLAN device on every host: `ovx` + the VNI.
    pub fn vxlan(&self) -> String {
        format!("ovx{}", self.vni)
    }
}

/// A container on an overlay network, as every host sees it: who, where
/// in the overlay (address and MAC), and behind which host (its underlay
/// address, the VTEP that frames for the MAC are sent to).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub id: String,
    pub name: String,
    pub ip: Ipv4Addr,
    /// `02:42:0a:00:00:02`.
    pub mac: String,
    pub host: Ipv4Addr,
}

/// The MAC of overlay address `ip`, made as docker makes it: 02:42 (a
/// locally administered unicast prefix) and the address's four bytes. Each
/// host can then write another's entries knowing only its address.
pub fn mac_of(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// `02:42:0a:00:00:02` as its six bytes.
pub fn mac_bytes(text: &str) -> anyhow::Result<Vec<u8>> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("not a MAC address: {text}"))?;
    anyhow::ensure!(bytes.len() == 6, "not a MAC address: {text}");
    Ok(bytes)
}

/// Six bytes as `02:42:0a:00:00:02`.
pub fn mac_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
