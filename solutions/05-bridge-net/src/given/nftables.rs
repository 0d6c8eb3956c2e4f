//! What nftables holds, asked of the kernel itself: `nft list table` without
//! the `nft` process.
//!
//! `nft` is a front end, like `ip`: it compiles its language into messages
//! on one socket type, `socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)`,
//! and so can we. Reading is simple: a *dump* request (`NLM_F_DUMP`) of
//! the rules of a table, and the kernel answers with one message per rule
//! (its chain, its handle, its expressions, its comment), then `NLMSG_DONE`.
//! Each message is a `nlmsghdr`, a 4-byte `nfgenmsg` (the address family:
//! `ip` is `NFPROTO_IPV4`), then attributes (`NFTA_RULE_*`, from
//! `<linux/netfilter/nf_tables.h>`). `nft --debug=netlink list table ip
//! minibox` shows the same exchange.
//!
//! Why not run `nft`: each run costs a process and, when it changed
//! something, the wait for an RCU grace period when its socket closes
//! (the kernel frees the old rules only once no packet can still see
//! them): 15–20 ms. A dump changes nothing and waits for nothing. So
//! minibox asks here first, and runs `nft -f -` only for what is missing
//! (adding a rule means compiling nft's language: that stays nft's job).
//!
//! Deleting is simple too, and done here: `NFT_MSG_DELRULE` names the
//! table, the chain and the rule's handle, and every change goes in a
//! *batch* (`NFNL_MSG_BATCH_BEGIN` ... `NFNL_MSG_BATCH_END`), which the
//! kernel applies whole or not at all, like one `nft -f` file.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;

// From <linux/netlink.h>, <linux/netfilter/nfnetlink.h> and
// <linux/netfilter/nf_tables.h>.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFPROTO_IPV4: u8 = 2;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLA_F_NESTED: u16 = 0x8000;
/// NFTA_TABLE_NAME, NFTA_CHAIN_TABLE/NAME, NFTA_SET_TABLE/NAME.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
/// libnftnl's user data: type-length-value, `NFTNL_UDATA_RULE_COMMENT`
/// is the rule's `comment "..."`.
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;

/// A table as the kernel holds it.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub chains: Vec<String>,
    pub sets: Vec<String>,
    pub rules: Vec<Rule>,
}

/// One rule: where it is, its handle, its comment, and its expressions as
/// the kernel keeps them (nested attributes).
#[derive(Debug, Clone)]
pub struct Rule {
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
    expressions: Vec<u8>,
}

impl Rule {
    /// Does the rule compare an interface name (or any string) with
    /// `name`? nft stores `iifname "minibox0"` as a compare with the bytes
    /// `minibox0\0`.
    pub fn mentions(&self, name: &str) -> bool {
        let mut needle = name.as_bytes().to_vec();
        needle.push(0);
        self.expressions
            .windows(needle.len())
            .any(|window| window == needle.as_slice())
    }

    /// The TCP/UDP destination port the rule matches (`tcp dport N`): a
    /// `payload` expression loading 2 bytes at offset 2 of the transport
    /// header, then a `cmp eq` with the port, big-endian.
    pub fn dport(&self) -> Option<u16> {
        let mut loads_dport = false;
        for (_, element) in attributes(&self.expressions) {
            let mut name = "";
            let mut data: &[u8] = &[];
            for (kind, value) in attributes(element) {
                match kind {
                    NFTA_EXPR_NAME => name = text(value),
                    NFTA_EXPR_DATA => data = value,
                    _ => {}
                }
            }
            match name {
                "payload" => {
                    let field = |wanted| {
                        attributes(data)
                            .find(|(kind, _)| *kind == wanted)
                            .and_then(|(_, v)| Some(u32::from_be_bytes(v.try_into().ok()?)))
                    };
                    loads_dport = field(NFTA_PAYLOAD_BASE) == Some(NFT_PAYLOAD_TRANSPORT_HEADER)
                        && field(NFTA_PAYLOAD_OFFSET) == Some(2)
                        && field(NFTA_PAYLOAD_LEN) == Some(2);
                }
                "cmp" if loads_dport => {
                    let mut equal = false;
                    let mut port = None;
                    for (kind, value) in attributes(data) {
                        match kind {
                            NFTA_CMP_OP => {
                                equal = value.try_into().ok().map(u32::from_be_bytes)
                                    == Some(NFT_CMP_EQ)
                            }
                            NFTA_CMP_DATA => {
                                port = attributes(value)
                                    .find(|(kind, _)| *kind == NFTA_DATA_VALUE)
                                    .and_then(|(_, v)| v.try_into().ok())
                                    .map(u16::from_be_bytes)
                            }
                            _ => {}
                        }
                    }
                    if equal {
                        return port;
                    }
                    loads_dport = false;
                }
                _ => loads_dport = false,
            }
        }
        None
    }

    /// Does the rule hold an expression named `name` (`nat`, `masq`, ...)?
    pub fn has(&self, name: &str) -> bool {
        attributes(&self.expressions).any(|(_, element)| {
            attributes(element).any(|(kind, value)| kind == NFTA_EXPR_NAME && text(value) == name)
        })
    }
}

/// A netfilter-netlink socket, in this process's network namespace.
pub struct Nfnetlink {
    socket: Socket,
    sequence: u32,
}

impl Nfnetlink {
    pub fn open() -> io::Result<Nfnetlink> {
        // socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER):
        // fails with EPROTONOSUPPORT when the kernel has no nfnetlink (then
        // it has no nftables rules either: the callers treat it so).
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        // bind(2) with port 0: the kernel picks our port id, which it
        // writes into its answers.
        socket.bind_auto()?;
        // connect(2) to the kernel (port 0), so send(2) needs no address.
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Nfnetlink {
            socket,
            sequence: 0,
        })
    }

    /// The table `ip NAME` (its chains, sets and rules), `None` if there is
    /// none: `nft list table ip NAME`.
    pub fn table(&mut self, name: &str) -> io::Result<Option<Table>> {
        // One dump per kind. A dump may be filtered by table on the
        // kernel's side (rules, sets), or not (tables, chains): filtered
        // here too, either way.
        let tables = self.dump(NFT_MSG_GETTABLE, &[])?;
        if !tables
            .iter()
            .any(|m| string(m, NFTA_TABLE_NAME) == Some(name))
        {
            return Ok(None);
        }
        let by_table = attribute(NFTA_RULE_TABLE, &cstring(name));
        let chains = self
            .dump(
                NFT_MSG_GETCHAIN,
                &attribute(NFTA_CHAIN_TABLE, &cstring(name)),
            )?
            .iter()
            .filter(|m| string(m, NFTA_CHAIN_TABLE) == Some(name))
            .filter_map(|m| string(m, NFTA_CHAIN_NAME).map(String::from))
            .collect();
        let sets = self
            .dump(NFT_MSG_GETSET, &attribute(NFTA_SET_TABLE, &cstring(name)))?
            .iter()
            .filter(|m| string(m, NFTA_SET_TABLE) == Some(name))
            .filter_map(|m| string(m, NFTA_SET_NAME).map(String::from))
            .collect();
        let rules = self
            .dump(NFT_MSG_GETRULE, &by_table)?
            .iter()
            .filter(|m| string(m, NFTA_RULE_TABLE) == Some(name))
            .filter_map(|m| {
                Some(Rule {
                    chain: string(m, NFTA_RULE_CHAIN)?.to_string(),
                    handle: u64::from_be_bytes(find(m, NFTA_RULE_HANDLE)?.try_into().ok()?),
                    comment: find(m, NFTA_RULE_USERDATA).and_then(comment),
                    expressions: find(m, NFTA_RULE_EXPRESSIONS).unwrap_or(&[]).to_vec(),
                })
            })
            .collect();
        Ok(Some(Table {
            chains,
            sets,
            rules,
        }))
    }

    /// The elements of a set of interface names (`type ifname`): `nft list
    /// set ip TABLE SET`. The set must exist (ENOENT otherwise).
    pub fn names_in(&mut self, table: &str, set: &str) -> io::Result<Vec<String>> {
        let mut request = attribute(NFTA_SET_ELEM_LIST_TABLE, &cstring(table));
        request.extend(attribute(NFTA_SET_ELEM_LIST_SET, &cstring(set)));
        let mut names = Vec::new();
        for message in self.dump(NFT_MSG_GETSETELEM, &request)? {
            let Some(list) = find(&message, NFTA_SET_ELEM_LIST_ELEMENTS) else {
                continue;
            };
            for (_, element) in attributes(list) {
                let key = attributes(element)
                    .find(|(kind, _)| *kind == NFTA_SET_ELEM_KEY)
                    .and_then(|(_, key)| attributes(key).find(|(k, _)| *k == NFTA_DATA_VALUE));
                if let Some((_, value)) = key {
                    names.push(text(value).to_string());
                }
            }
        }
        Ok(names)
    }

    /// Delete rules (chain, handle) and interface names from sets (set,
    /// name) of table `ip TABLE`, in one batch: all or none. `nft delete
    /// rule ip TABLE CHAIN handle N` and `nft delete element ip TABLE SET {
    /// NAME }`, in one `nft -f` file.
    pub fn delete(
        &mut self,
        table: &str,
        rules: &[(String, u64)],
        names: &[(String, String)],
    ) -> io::Result<()> {
        if rules.is_empty() && names.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        let mut acked = Vec::new();
        // The batch's bounds carry the subsystem in nfgenmsg's res_id.
        batch.extend(self.message(NFNL_MSG_BATCH_BEGIN, 0, 0, NFNL_SUBSYS_NFTABLES, &[]));
        for (chain, handle) in rules {
            let mut attrs = attribute(NFTA_RULE_TABLE, &cstring(table));
            attrs.extend(attribute(NFTA_RULE_CHAIN, &cstring(chain)));
            attrs.extend(attribute(NFTA_RULE_HANDLE, &handle.to_be_bytes()));
            batch.extend(self.message(
                NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELRULE,
                NLM_F_ACK,
                NFPROTO_IPV4,
                0,
                &attrs,
            ));
            acked.push(self.sequence);
        }
        for (set, name) in names {
            // An interface name in a set is its bytes padded with zeros to
            // IFNAMSIZ (16), the set's key length.
            let mut key = name.as_bytes().to_vec();
            key.resize(16, 0);
            let value = attribute(NFTA_DATA_VALUE, &key);
            let element = nested(NFTA_SET_ELEM_KEY, &value);
            let list = nested(NFTA_LIST_ELEM, &element);
            let mut attrs = attribute(NFTA_SET_ELEM_LIST_TABLE, &cstring(table));
            attrs.extend(attribute(NFTA_SET_ELEM_LIST_SET, &cstring(set)));
            attrs.extend(nested(NFTA_SET_ELEM_LIST_ELEMENTS, &list));
            batch.extend(self.message(
                NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELSETELEM,
                NLM_F_ACK,
                NFPROTO_IPV4,
                0,
                &attrs,
            ));
            acked.push(self.sequence);
        }
        batch.extend(self.message(NFNL_MSG_BATCH_END, 0, 0, NFNL_SUBSYS_NFTABLES, &[]));
        // send(2) of the whole batch in one datagram: the kernel takes it
        // as one transaction. Fails with EPERM without CAP_NET_ADMIN.
        self.socket.send(&batch, 0)?;
        // One answer per message sent with NLM_F_ACK: 0, or its errno
        // (ENOENT: the rule is gone already; then none of the batch was
        // applied, and the caller reads again).
        let mut first_error = None;
        while !acked.is_empty() {
            for (kind, sequence, body) in self.receive()? {
                if kind == NLMSG_ERROR {
                    acked.retain(|s| *s != sequence);
                    let code = error_code(&body);
                    if code != 0 && first_error.is_none() {
                        first_error = Some(io::Error::from_raw_os_error(-code));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A dump request, and every message of its answer (their attributes,
    /// after the nfgenmsg).
    fn dump(&mut self, command: u16, attrs: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let request = self.message(
            NFNL_SUBSYS_NFTABLES << 8 | command,
            NLM_F_DUMP,
            NFPROTO_IPV4,
            0,
            attrs,
        );
        let sequence = self.sequence;
        // send(2): the kernel answers in the same call's context, into our
        // socket's receive queue; a dump larger than the queue continues
        // as we read.
        self.socket.send(&request, 0)?;
        let mut out = Vec::new();
        loop {
            for (kind, got, body) in self.receive()? {
                if got != sequence {
                    continue; // an answer to something earlier
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = error_code(&body);
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    _ if body.len() >= 4 => out.push(body[4..].to_vec()),
                    _ => {}
                }
            }
        }
    }

    /// One datagram's messages: (type, sequence number, body after the
    /// header). recv(2) blocks until the kernel has answered; it fails with
    /// ENOBUFS if the kernel dropped answers for lack of room.
    fn receive(&mut self) -> io::Result<Vec<(u16, u32, Vec<u8>)>> {
        let (bytes, _) = self.socket.recv_from_full()?;
        let mut messages = Vec::new();
        let mut at = 0;
        while at + 16 <= bytes.len() {
            let length =
                u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes(bytes[at + 4..at + 6].try_into().expect("2 bytes"));
            let sequence = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
            if length < 16 || at + length > bytes.len() {
                break;
            }
            messages.push((kind, sequence, bytes[at + 16..at + length].to_vec()));
            at += align(length);
        }
        Ok(messages)
    }

    /// nlmsghdr + nfgenmsg + attributes.
    fn message(&mut self, kind: u16, flags: u16, family: u8, res_id: u16, attrs: &[u8]) -> Vec<u8> {
        self.sequence += 1;
        let length = 16 + 4 + attrs.len();
        let mut out = Vec::with_capacity(length);
        out.extend((length as u32).to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.extend((NLM_F_REQUEST | flags).to_ne_bytes());
        out.extend(self.sequence.to_ne_bytes());
        out.extend(0u32.to_ne_bytes()); // port id: the kernel fills ours in
        out.push(family);
        out.push(0); // NFNETLINK_V0
        out.extend(res_id.to_be_bytes());
        out.extend(attrs);
        out
    }
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

/// One attribute: length, type, value, padded to 4 bytes.
fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(align(4 + value.len()));
    out.extend(((4 + value.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(value);
    out.resize(align(out.len()), 0);
    out
}

fn nested(kind: u16, inner: &[u8]) -> Vec<u8> {
    attribute(kind | NLA_F_NESTED, inner)
}

fn cstring(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// The attributes in `bytes`: (type without its flags, value).
fn attributes(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + 4 > bytes.len() {
            return None;
        }
        let length = u16::from_ne_bytes([bytes[at], bytes[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[at + 2], bytes[at + 3]]) & 0x3fff;
        if length < 4 || at + length > bytes.len() {
            return None;
        }
        let value = &bytes[at + 4..at + length];
        at += align(length);
        Some((kind, value))
    })
}

fn find(message: &[u8], kind: u16) -> Option<&[u8]> {
    attributes(message)
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| v)
}

/// A NUL-terminated string attribute.
fn text(value: &[u8]) -> &str {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    std::str::from_utf8(&value[..end]).unwrap_or("")
}

fn string(message: &[u8], kind: u16) -> Option<&str> {
    find(message, kind).map(text)
}

/// The comment in a rule's user data (type-length-value records).
fn comment(userdata: &[u8]) -> Option<String> {
    let mut at = 0;
    while at + 2 <= userdata.len() {
        let (kind, length) = (userdata[at], userdata[at + 1] as usize);
        let value = userdata.get(at + 2..at + 2 + length)?;
        if kind == NFTNL_UDATA_RULE_COMMENT {
            return Some(text(value).to_string());
        }
        at += 2 + length;
    }
    None
}

/// nlmsgerr's error: a negative errno, or 0 for an acknowledgement.
fn error_code(body: &[u8]) -> i32 {
    body.get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(-nix::libc::EIO, i32::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_from_user_data() {
        // nft's own encoding of `comment "net:bridge:masq"`.
        let mut data = vec![NFTNL_UDATA_RULE_COMMENT, 16];
        data.extend(b"net:bridge:masq\0");
        assert_eq!(comment(&data).as_deref(), Some("net:bridge:masq"));
        assert_eq!(comment(&[1, 2, 0, 0]), None);
    }

    #[test]
    fn attributes_round_trip() {
        let mut bytes = attribute(NFTA_RULE_TABLE, &cstring("minibox"));
        bytes.extend(nested(NFTA_RULE_EXPRESSIONS, &attribute(1, b"x")));
        let found: Vec<(u16, Vec<u8>)> = attributes(&bytes).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(found[0], (NFTA_RULE_TABLE, b"minibox\0".to_vec()));
        assert_eq!(found[1].0, NFTA_RULE_EXPRESSIONS);
        assert_eq!(string(&bytes, NFTA_RULE_TABLE), Some("minibox"));
    }
}
