//! A registry client: HTTP/1.1 over a TCP socket, one connection per
//! request, plain HTTP only.
//!
//! The distribution API (the OCI distribution spec, docker's "registry v2")
//! is ordinary HTTP: a GET of a manifest, a HEAD of a blob, a POST that
//! opens an upload, a PUT that closes it. This client does the HTTP and
//! nothing of the API: the paths, the statuses and the order are yours
//! (`pull.rs`, `push.rs`). The same request with curl:
//!
//! ```text
//! curl -si -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
//!     http://10.77.0.1:5000/v2/app/manifests/1
//! ```
//!
//! Every request has a deadline (`MINIBOX_REGISTRY_TIMEOUT` seconds, 30 by
//! default) for connecting and for each read and write: a registry that
//! accepts and never answers is an error, not a hang. With
//! `MINIBOX_DEBUG_HTTP=1` each request and its status go to stderr, one
//! line each: the sequence the book shows.
//!
//! No TLS: a registry on the internet needs HTTPS and a login, which this
//! runtime leaves to tools made for it (`skopeo copy` into a local
//! registry, then `minibox pull` from there).

use crate::progress::Progress;
use anyhow::{bail, Context};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// How long a connect, a read or a write may wait.
pub fn timeout() -> Duration {
    let seconds = std::env::var("MINIBOX_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

/// A registry at `HOST:PORT`, spoken to over plain HTTP.
#[derive(Clone)]
pub struct Registry {
    host: String,
    timeout: Duration,
    debug: bool,
    progress: Arc<Progress>,
}

/// What a request sends.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file, from where its cursor is.
    File(&'a mut File, u64),
}

/// A registry's answer. Read the body once, with [`Response::body`],
/// [`Response::bytes`] or [`Response::json`].
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    body: Box<dyn Read + Send>,
    what: String,
}

impl Registry {
    /// A client for the registry at `host` (`10.77.0.1:5000`). `insecure`
    /// must be given: HTTPS is not spoken here, and a registry reached over
    /// plain HTTP can be impersonated by anyone on the path (the digests
    /// still catch changed content, but not a changed tag).
    pub fn new(host: &str, insecure: bool, progress: Arc<Progress>) -> anyhow::Result<Registry> {
        let loopback = host.starts_with("localhost:") || host.starts_with("127.");
        if !insecure && !loopback {
            bail!("registry {host}: minibox speaks plain HTTP only; for a registry of your own lab add --tls-verify=false");
        }
        Ok(Registry {
            host: host.to_string(),
            timeout: timeout(),
            debug: std::env::var_os("MINIBOX_DEBUG_HTTP").is_some_and(|v| v != "0"),
            progress,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// One request. `target` is a path (`/v2/app/blobs/sha256:...`) or a
    /// URL the registry gave in a `Location` header (absolute, or a path
    /// with a query). `headers` are sent as given, plus Host,
    /// Content-Length and `Connection: close`.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> anyhow::Result<Response> {
        let path = self.path_of(target)?;
        let what = format!("{method} http://{}{}", self.host, short_query(&path));
        let addr = self
            .host
            .to_socket_addrs()
            .with_context(|| format!("registry {}: cannot resolve its address", self.host))?
            .next()
            .with_context(|| format!("registry {}: no address", self.host))?;
        // connect(2) with a deadline; then SO_RCVTIMEO/SO_SNDTIMEO so that
        // every read(2) and write(2) on the socket ends with EAGAIN instead
        // of waiting for ever on a peer that went quiet.
        let stream = TcpStream::connect_timeout(&addr, self.timeout)
            .with_context(|| format!("registry {}: cannot connect", self.host))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let _ = stream.set_nodelay(true);
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, &stream);
        let length = match &body {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, len) => *len,
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let sends_body = length > 0 || matches!(method, "PUT" | "POST" | "PATCH");
        if sends_body {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("User-Agent: minibox\r\nConnection: close\r\n\r\n");
        let sent = (|| -> std::io::Result<()> {
            writer.write_all(head.as_bytes())?;
            match body {
                Body::Empty => {}
                Body::Bytes(bytes) => writer.write_all(bytes)?,
                Body::File(file, len) => {
                    let label = digest_in(&path);
                    let mut reader = self.progress.reader(&label, "Pushing", len, file.take(len));
                    let copied = std::io::copy(&mut reader, &mut writer)?;
                    if copied != len {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the file ended after {copied} of {len} bytes"),
                        ));
                    }
                }
            }
            writer.flush()
        })();
        drop(writer);
        sent.map_err(|e| timed_out(e, self.timeout))
            .with_context(|| format!("{what}: sending"))?;
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let (status, headers) = read_head(&mut reader)
            .map_err(|e| timed_out(e, self.timeout))
            .with_context(|| format!("{what}: no answer"))?;
        if self.debug {
            eprintln!("http: {what} -> {status}");
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok());
        let chunked = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        });
        let timeout = self.timeout;
        let body: Box<dyn Read + Send> = if method == "HEAD" || status == 204 || status == 304 {
            Box::new(std::io::empty())
        } else if chunked {
            Box::new(Deadline(Chunked::new(reader), timeout))
        } else if let Some(length) = length {
            Box::new(Deadline(reader.take(length), timeout))
        } else {
            Box::new(Deadline(reader, timeout))
        };
        let body: Box<dyn Read + Send> = if method == "GET" && (200..300).contains(&status) {
            let label = digest_in(&path);
            if label.is_empty() {
                body
            } else {
                Box::new(
                    self.progress
                        .reader(&label, "Downloading", length.unwrap_or(0), body),
                )
            }
        } else {
            body
        };
        Ok(Response {
            status,
            headers,
            body,
            what,
        })
    }

    /// A `Location` (absolute URL of this registry, or a path) as a path
    /// with its query.
    fn path_of(&self, target: &str) -> anyhow::Result<String> {
        if target.starts_with('/') {
            return Ok(target.to_string());
        }
        let Some(rest) = target.strip_prefix("http://") else {
            bail!(
                "registry {}: cannot follow {target:?} (only plain-HTTP URLs of this registry)",
                self.host
            );
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host != self.host {
            bail!(
                "registry {}: it sent us to another host, {host}, which minibox does not follow",
                self.host
            );
        }
        Ok(format!("/{path}"))
    }
}

impl Response {
    /// A header's value (names are case-blind).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, to stream (a blob).
    pub fn body(self) -> Box<dyn Read + Send> {
        self.body
    }

    /// The whole body, refused past `limit` bytes (a manifest is small; a
    /// registry that sends without end must not fill the memory).
    pub fn bytes(self, limit: u64) -> anyhow::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let what = self.what.clone();
        self.body
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{what}: reading the answer"))?;
        if bytes.len() as u64 > limit {
            bail!("{what}: the answer is larger than {limit} bytes");
        }
        Ok(bytes)
    }

    /// This answer as an error: the request, the status, and the
    /// registry's own words (`{"errors":[{"code":..,"message":..}]}`).
    pub fn error(self, doing: &str) -> anyhow::Error {
        let status = self.status;
        let what = self.what.clone();
        let auth = self.header("www-authenticate").map(str::to_string);
        let text = self.bytes(64 * 1024).unwrap_or_default();
        let said = serde_json::from_slice::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                let e = v.get("errors")?.get(0)?.clone();
                Some(format!(
                    "{} {}",
                    e.get("code")?.as_str().unwrap_or(""),
                    e.get("message").and_then(|m| m.as_str()).unwrap_or("")
                ))
            })
            .unwrap_or_else(|| reason(status).to_string());
        if status == 401 {
            return anyhow::anyhow!(
                "{doing}: {what}: 401, the registry wants a login ({}); minibox does not log in",
                auth.unwrap_or_default()
            );
        }
        anyhow::anyhow!("{doing}: {what}: {status} {}", said.trim())
    }
}

/// The `sha256:...` a path names (a blob), for progress lines.
fn digest_in(target: &str) -> String {
    let path = target.split('?').next().unwrap_or(target);
    match path.rsplit_once("/blobs/") {
        Some((_, d)) if d.starts_with("sha256:") => d.to_string(),
        // An upload's closing PUT names the blob in its query.
        _ => target
            .split("digest=")
            .nth(1)
            .map(|d| d.split('&').next().unwrap_or(d).replace("%3A", ":"))
            .unwrap_or_default(),
    }
}

/// An upload URL's query is a long opaque state: show its start only.
fn short_query(path: &str) -> String {
    match path.split_once('?') {
        Some((p, q)) if q.len() > 40 => {
            let keep: String = q
                .split('&')
                .filter(|kv| !kv.starts_with("_state="))
                .collect::<Vec<_>>()
                .join("&");
            format!("{p}?{keep}")
        }
        _ => path.to_string(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed (is the registry read-only, or deletes off?)",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A read that timed out says so in words (the kernel says EAGAIN).
fn timed_out(e: std::io::Error, timeout: Duration) -> std::io::Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer in {} s (MINIBOX_REGISTRY_TIMEOUT)",
                timeout.as_secs()
            ),
        )
    } else {
        e
    }
}

/// The longest status, header or chunk-size line read: a server that
/// never ends a line must not fill the memory (real ones are well under
/// 1 KiB).
const LINE_LIMIT: u64 = 16 * 1024;

/// One line of the answer's framing, refused past [`LINE_LIMIT`] bytes.
fn head_line(reader: &mut impl BufRead, line: &mut String) -> std::io::Result<usize> {
    let n = reader.by_ref().take(LINE_LIMIT).read_line(line)?;
    if n as u64 == LINE_LIMIT && !line.ends_with('\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line of the answer longer than {LINE_LIMIT} bytes"),
        ));
    }
    Ok(n)
}

/// The status line and the headers.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if head_line(reader, &mut line)? == 0 {
        return Err(bad("the registry closed the connection without an answer"));
    }
    let mut parts = line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            code.parse().map_err(|_| bad("not HTTP"))?
        }
        _ => return Err(bad("the answer is not HTTP/1.x")),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        if head_line(reader, &mut line)? == 0 {
            return Err(bad("the answer ended inside its headers"));
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if headers.len() > 200 {
            return Err(bad("too many headers"));
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// A read timeout as a readable error, on the body too.
struct Deadline<R>(R, Duration);

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| timed_out(e, self.1))
    }
}

/// `Transfer-Encoding: chunked`: `<hex size>\r\n<bytes>\r\n` ... `0\r\n\r\n`.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            head_line(&mut self.inner, &mut line)?;
            if line.trim().is_empty() {
                // The CRLF after the previous chunk.
                line.clear();
                head_line(&mut self.inner, &mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a bad chunk size")
            })?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the answer ended inside a chunk",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        let wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let mut out = String::new();
        Chunked::new(&wire[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn endless_lines_are_refused() {
        let mut wire = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        wire.extend(std::iter::repeat_n(b'a', LINE_LIMIT as usize));
        // Well-formed but for its length: without the limit, a good head.
        wire.extend(b"\r\n\r\n");
        let err = read_head(&mut &wire[..]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // All zeros: without the limit, a valid (last) chunk size.
        let size = "0".repeat(LINE_LIMIT as usize);
        let mut out = Vec::new();
        assert!(Chunked::new(size.as_bytes()).read_to_end(&mut out).is_err());
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read_head(&mut &head[..]).unwrap().0, 200);
    }

    #[test]
    fn blob_digests_are_found_in_paths() {
        assert_eq!(digest_in("/v2/a/blobs/sha256:ab"), "sha256:ab");
        assert_eq!(
            digest_in("/v2/a/blobs/uploads/x?_state=y&digest=sha256%3Aab"),
            "sha256:ab"
        );
        assert_eq!(digest_in("/v2/a/manifests/1"), "");
    }
}
