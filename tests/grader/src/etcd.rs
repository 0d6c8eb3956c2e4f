//! A small blocking client for etcd's v3 JSON gateway: what the overlay
//! checks need to look at (and clean up) the cluster store, with no crate
//! beyond serde_json.
//!
//! etcd speaks gRPC; every member also answers the same calls as JSON over
//! plain HTTP/1.1 on its client port (grpc-gateway; under `/v3/` since
//! 3.4, `/v3beta/` in 3.3). A call is a POST of one JSON object to
//! `/v3/<service>/<method>`; keys and values are
//! bytes, so they travel base64-encoded, and 64-bit numbers (revisions,
//! lease ids) come back as JSON *strings*. A field equal to its zero value
//! (0, false, empty) is left out of the answer altogether.
//!
//! ```text
//! curl -s http://10.99.0.1:2379/v3/kv/put -d '{"key":"Zm9v","value":"YmFy"}'
//! curl -s http://10.99.0.1:2379/v3/kv/range -d '{"key":"Zm9v"}'
//! # {"header":{...,"revision":"2"},"kvs":[{"key":"Zm9v","create_revision":"2",
//! #   "mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}
//! ```
//!
//! The client always dials from inside a lab's network namespace (given as
//! `/proc/PID/ns/net`), never from the grader's own: the lab's addresses
//! (10.99.0.0/24) mean nothing to the machine, whose default route would
//! carry such a connection out to whatever network it is on. A socket
//! belongs for its whole life to the namespace of the thread that made it,
//! so a short-lived thread enters the lab (setns), connects, and hands the
//! connected socket back; the grader's threads never change namespace.
//!
//! The client is given every member's address and tries them in turn, so a
//! dead member (nothing listens: the connection is refused) is skipped. A
//! member that *answered* is believed, error or not: a write sent to one
//! member and not answered in time may still have been applied, and sending
//! it again elsewhere could apply it twice (a "create if absent" would then
//! report a loss it had in fact won). Reads and plain puts, which are safe to
//! repeat, also move on after a timeout.

use crate::check::Fail;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A client for one etcd cluster: the members' client addresses, and the
/// lab namespace it dials from.
#[derive(Debug, Clone)]
pub struct Etcd {
    /// `/proc/PID/ns/net` of a lab namespace from which the members are
    /// reachable.
    netns: PathBuf,
    /// `10.99.0.1:2379`, in the order they are tried.
    endpoints: Vec<String>,
    /// For connecting, and for each read or write on the connection.
    timeout: Duration,
}

/// One key and its value (as text: the checks keep text in etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// The lease the key is attached to (0: none).
    pub lease: i64,
}

/// What `/v3/maintenance/status` says of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub member_id: u64,
    /// The member it follows (0: it knows of no leader).
    pub leader: u64,
    pub version: String,
}

/// May a call be sent to the next member after one did not answer in time?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, and writes whose second run changes nothing more.
    Safe,
    /// Only when the member could not even be reached (see the module doc).
    OnlyUnsent,
}

impl Etcd {
    /// A client for these members (`host:port`; an `http://` prefix is
    /// allowed), dialing from the network namespace `netns`
    /// (`/proc/PID/ns/net`), with a 5 s timeout per connection step.
    pub fn new<S: AsRef<str>>(netns: impl Into<PathBuf>, endpoints: &[S]) -> Etcd {
        Etcd {
            netns: netns.into(),
            endpoints: endpoints
                .iter()
                .map(|e| {
                    let e = e.as_ref();
                    e.strip_prefix("http://").unwrap_or(e).to_string()
                })
                .collect(),
            timeout: Duration::from_secs(5),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Etcd {
        self.timeout = timeout;
        self
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// `etcdctl put KEY VALUE`; the store's revision after it.
    pub fn put(&self, key: &str, value: &str) -> Result<i64, Fail> {
        self.put_with_lease(key, value, 0)
    }

    /// `etcdctl put --lease=ID KEY VALUE`: the key goes when the lease does.
    pub fn put_with_lease(&self, key: &str, value: &str, lease: i64) -> Result<i64, Fail> {
        let mut body = json!({"key": encode(key.as_bytes()), "value": encode(value.as_bytes())});
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        let answer = self.call("/v3/kv/put", &body, Repeat::Safe)?;
        Ok(number(&answer["header"]["revision"]))
    }

    /// `etcdctl get KEY`: its value, if the key exists.
    pub fn get(&self, key: &str) -> Result<Option<String>, Fail> {
        let body = json!({"key": encode(key.as_bytes())});
        let answer = self.call("/v3/kv/range", &body, Repeat::Safe)?;
        Ok(key_values(&answer)?.into_iter().next().map(|kv| kv.value))
    }

    /// `etcdctl get --prefix PREFIX`: every key that starts with it, sorted
    /// by key.
    pub fn prefix(&self, prefix: &str) -> Result<Vec<KeyValue>, Fail> {
        let body = json!({
            "key": encode(prefix.as_bytes()),
            "range_end": encode(&range_end(prefix.as_bytes())),
        });
        let answer = self.call("/v3/kv/range", &body, Repeat::Safe)?;
        key_values(&answer)
    }

    /// `etcdctl del --prefix PREFIX`: how many keys were deleted.
    pub fn delete_prefix(&self, prefix: &str) -> Result<i64, Fail> {
        let body = json!({
            "key": encode(prefix.as_bytes()),
            "range_end": encode(&range_end(prefix.as_bytes())),
        });
        let answer = self.call("/v3/kv/deleterange", &body, Repeat::Safe)?;
        Ok(number(&answer["deleted"]))
    }

    /// Put `key` only if it does not exist yet; true if this call made it.
    ///
    /// One transaction, decided by the leader in the log's order, so of many
    /// clients racing for the same key exactly one wins. A key that never
    /// existed (or was deleted) has create_revision 0:
    ///
    /// ```text
    /// etcdctl txn <<'EOF'
    /// create("KEY") = "0"
    ///
    /// put KEY VALUE
    ///
    ///
    /// EOF
    /// ```
    pub fn create_if_absent(&self, key: &str, value: &str) -> Result<bool, Fail> {
        let key = encode(key.as_bytes());
        let body = json!({
            "compare": [{
                "key": key,
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            }],
            "success": [{"request_put": {"key": key, "value": encode(value.as_bytes())}}],
        });
        let answer = self.call("/v3/kv/txn", &body, Repeat::OnlyUnsent)?;
        // `succeeded` is left out when false (proto3 JSON).
        Ok(answer["succeeded"].as_bool().unwrap_or(false))
    }

    /// `etcdctl lease grant TTL`: a lease that ends `ttl` seconds after the
    /// last keepalive; its id.
    pub fn grant_lease(&self, ttl: i64) -> Result<i64, Fail> {
        let answer = self.call(
            "/v3/lease/grant",
            &json!({"TTL": ttl.to_string()}),
            Repeat::OnlyUnsent,
        )?;
        let id = number(&answer["ID"]);
        if id == 0 {
            return Err(Fail::new("etcd granted no lease").seen(answer));
        }
        Ok(id)
    }

    /// `etcdctl lease keep-alive --once ID`: the lease's new TTL in seconds,
    /// or `None` if it has already expired (or was revoked).
    pub fn keepalive(&self, lease: i64) -> Result<Option<i64>, Fail> {
        // A gRPC *stream*: the gateway answers each JSON object of the
        // request body with `{"result": {...}}`, and ends when the body does.
        let answer = self.call(
            "/v3/lease/keepalive",
            &json!({"ID": lease.to_string()}),
            Repeat::Safe,
        )?;
        let ttl = number(&answer["result"]["TTL"]);
        Ok((ttl > 0).then_some(ttl))
    }

    /// `etcdctl lease revoke ID`: the lease ends now, and every key attached
    /// to it is deleted with it (one revision).
    pub fn revoke(&self, lease: i64) -> Result<(), Fail> {
        self.call(
            "/v3/lease/revoke",
            &json!({"ID": lease.to_string()}),
            Repeat::Safe,
        )
        .map(drop)
    }

    /// `etcdctl endpoint status` of the first member that answers: who it
    /// is, and which member it believes leads.
    pub fn status(&self) -> Result<Status, Fail> {
        let answer = self.call("/v3/maintenance/status", &json!({}), Repeat::Safe)?;
        Ok(Status {
            member_id: unsigned(&answer["header"]["member_id"]),
            leader: unsigned(&answer["leader"]),
            version: answer["version"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// POST `body` to `path` of each member in turn, until one answers 200
    /// with JSON. Every attempt's outcome goes into the error.
    fn call(&self, path: &str, body: &Value, repeat: Repeat) -> Result<Value, Fail> {
        let body = body.to_string();
        let mut tried = Vec::new();
        for endpoint in &self.endpoints {
            match post(&self.netns, endpoint, path, &body, self.timeout) {
                Ok(answer) => return answer_json(endpoint, path, answer),
                Err(Trouble::Unsent(why)) => tried.push(format!("{endpoint}: {why}")),
                Err(Trouble::Unanswered(why)) => {
                    tried.push(format!("{endpoint}: {why}"));
                    if repeat == Repeat::OnlyUnsent {
                        return Err(Fail::new(format!(
                            "etcd did not answer POST {path} in time (not sent to another member: it may have been applied)"
                        ))
                        .seen(tried.join("\n")));
                    }
                }
            }
        }
        Err(
            Fail::new(format!("no etcd member answered POST {path}")).seen(if tried.is_empty() {
                "no endpoints were given".to_string()
            } else {
                tried.join("\n")
            }),
        )
    }
}

/// A 200 answer's JSON, or an error that says who answered what.
fn answer_json(endpoint: &str, path: &str, (status, body): (u16, String)) -> Result<Value, Fail> {
    let parsed: Result<Value, _> = serde_json::from_str(&body);
    match (status, parsed) {
        (200, Ok(value)) if value.get("error").is_none() => Ok(value),
        (200, Ok(value)) if value["error"].is_object() => {
            // A stream's error arrives inside a 200: {"error": {"message": ..}}.
            Err(Fail::new(format!("etcd at {endpoint} refused POST {path}"))
                .seen(value["error"].to_string()))
        }
        (200, Ok(value)) => Ok(value),
        (200, Err(e)) => Err(Fail::new(format!(
            "etcd at {endpoint} answered POST {path} with no JSON ({e})"
        ))
        .seen(body.trim())),
        (status, _) => Err(Fail::new(format!("etcd at {endpoint} refused POST {path}"))
            .seen(format!("HTTP {status}: {}", body.trim()))),
    }
}

/// How a request failed to get an answer.
#[derive(Debug)]
enum Trouble {
    /// Nothing reached the member (refused, unreachable, connect timeout).
    Unsent(String),
    /// The request may have arrived; no (whole) answer came back.
    Unanswered(String),
}

/// One HTTP/1.1 POST on a fresh connection (`Connection: close`, so the
/// answer ends when the member closes it): the status and the body.
///
/// ```text
/// POST /v3/kv/range HTTP/1.1
/// Host: 10.99.0.1:2379
/// Content-Type: application/json
/// Content-Length: 16
/// Connection: close
///
/// {"key":"Zm9v"}
/// ```
fn post(
    netns: &Path,
    endpoint: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), Trouble> {
    let address: SocketAddr = endpoint
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Trouble::Unsent(format!("`{endpoint}` is not an address")))?;
    let mut stream = connect_in(netns, address, timeout)?;
    let unanswered = |what: &str, e: std::io::Error| Trouble::Unanswered(format!("{what}: {e}"));
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| unanswered("set timeout", e))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| unanswered("send", e))?;
    let mut raw = Vec::new();
    // Read until the member closes the connection; a read that times out
    // (SO_RCVTIMEO: EAGAIN) ends the wait.
    stream
        .read_to_end(&mut raw)
        .map_err(|e| unanswered(&format!("read ({} bytes so far)", raw.len()), e))?;
    parse_response(&raw).map_err(Trouble::Unanswered)
}

/// A TCP connection to `address`, made inside the network namespace
/// `netns`: `nsenter --net=NETNS curl ...`, for one socket.
fn connect_in(netns: &Path, address: SocketAddr, timeout: Duration) -> Result<TcpStream, Trouble> {
    let lab = std::fs::File::open(netns).map_err(|e| {
        Trouble::Unsent(format!(
            "cannot open the lab's namespace {}: {e}",
            netns.display()
        ))
    })?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // setns(2) on this thread only (a network namespace is per
                // thread): it needs CAP_SYS_ADMIN, and the thread ends right
                // after, so no other code of the grader runs in the lab.
                nix::sched::setns(&lab, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Trouble::Unsent(format!("setns into the lab: {e}")))?;
                // connect(2) with a bound: an unreachable address would
                // otherwise wait out the kernel's minutes of SYN retries.
                TcpStream::connect_timeout(&address, timeout)
                    .map_err(|e| Trouble::Unsent(format!("connect: {e}")))
            })
            .join()
            .unwrap_or_else(|_| Err(Trouble::Unsent("the connecting thread panicked".into())))
    })
}

/// An HTTP/1.1 answer: status line, headers, then the body, either
/// `Content-Length` bytes, chunked (`Transfer-Encoding: chunked`: hex size,
/// CRLF, bytes, CRLF, ..., a 0-size chunk), or everything up to the close.
fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let (status, bytes) = parse_http(raw)?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// [`parse_response`], with the body as bytes (a registry's blobs are not
/// text).
pub(crate) fn parse_http(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let text_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete HTTP header in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..text_end]);
    let mut body = &raw[text_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let bytes = if chunked {
        let mut out = Vec::new();
        loop {
            let line_end = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a chunk size line is cut off")?;
            let size_text = String::from_utf8_lossy(&body[..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("not a chunk size: {size_text:?}"))?;
            body = &body[line_end + 2..];
            if size == 0 {
                break;
            }
            if body.len() < size {
                return Err(format!("a chunk of {size} bytes is cut off"));
            }
            out.extend_from_slice(&body[..size]);
            body = body.get(size + 2..).unwrap_or_default();
        }
        out
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.get(..length)
            .ok_or_else(|| format!("the body is cut off: {} of {length} bytes", body.len()))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, bytes))
}

/// The `kvs` of a range answer, decoded.
fn key_values(answer: &Value) -> Result<Vec<KeyValue>, Fail> {
    let Some(kvs) = answer.get("kvs") else {
        return Ok(Vec::new()); // no key: the field is left out
    };
    let bad = || Fail::new("etcd's range answer is not base64 keys and values").seen(answer);
    kvs.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|kv| {
            let text = |field: &str| {
                let raw = kv[field].as_str().unwrap_or_default();
                decode(raw).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            };
            Ok(KeyValue {
                key: text("key").ok_or_else(bad)?,
                value: text("value").ok_or_else(bad)?,
                lease: number(&kv["lease"]),
            })
        })
        .collect()
}

/// The end of the range of every key starting with `prefix`: the prefix
/// with its last byte plus one (`/a/` → `/a0`), as `etcdctl --prefix`
/// computes it. An empty prefix (or all 0xff) means "to the end": `\0`.
pub fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A 64-bit number of an answer: a JSON string ("42") or number; 0 when
/// left out.
fn number(value: &Value) -> i64 {
    match value {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// Member ids are unsigned and use all 64 bits.
fn unsigned(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (RFC 4648 §4), as etcd's gateway wants
/// bytes: every 3 bytes become 4 characters of 6 bits each.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of standard base64 (padding optional); `None` if it is not.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    // Leftover bits must be padding zeros, and a lone 6-bit tail is no byte.
    (count < 6 && bits & ((1 << count) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_rfc_4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), Some(all));
        assert_eq!(decode("Zm9v!"), None);
        assert_eq!(decode("Z"), None, "6 bits are no byte");
    }

    #[test]
    fn a_prefix_range_ends_after_its_last_byte() {
        assert_eq!(range_end(b"/net/"), b"/net0");
        assert_eq!(range_end(b"a\xff"), b"b");
        assert_eq!(range_end(b""), b"\0");
    }

    #[test]
    fn http_answers_parse_with_length_chunks_or_close() {
        let plain =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Ok((200, "{}".to_string())));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok((200, "{\"a\":1}".to_string())));
        let closed = b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"error\":\"no leader\"}";
        assert_eq!(
            parse_response(closed),
            Ok((503, "{\"error\":\"no leader\"}".to_string()))
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Le").is_err());
    }

    #[test]
    fn errors_say_who_answered_what() {
        let fail = answer_json(
            "10.99.0.2:2379",
            "/v3/kv/put",
            (
                400,
                "{\"error\":\"etcdserver: key is not provided\",\"code\":3}".into(),
            ),
        )
        .unwrap_err();
        assert!(fail.what.contains("10.99.0.2:2379"), "{fail}");
        assert!(fail
            .seen
            .unwrap()
            .contains("HTTP 400: {\"error\":\"etcdserver: key"));
    }
}
