//! A real image registry for the checks of step 08: the distribution
//! registry (Debian's docker-registry, the program behind Docker Hub's API),
//! started inside a lab network namespace of its own and stopped with it.
//!
//! It speaks the distribution API v2 over plain HTTP (no TLS, no auth) on
//! [`ADDRESS`], an address that exists only in the lab, and keeps its blobs
//! and manifests as plain files in a fresh temp dir:
//!
//! ```text
//! unshare --net sh -c 'ip link set lo up; ip addr add 10.77.0.1/24 dev lo;
//!                      exec docker-registry serve config.yml'
//! nsenter --net=/proc/PID/ns/net curl -s http://10.77.0.1:5000/v2/    # {}
//! ```
//!
//! Clients reach it from the same lab: [`Registry::get`] (the grader's own
//! tiny HTTP client), `nsenter --net=...` for podman, skopeo and minibox
//! (see [`crate::tools`]).

use crate::check::Fail;
use crate::netlab::NetLab;
use crate::TempDir;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Where the registry listens, inside its lab.
pub const ADDRESS: &str = "10.77.0.1:5000";

/// The lab's subnet, put on the lab's loopback link: with a /24 there the
/// kernel treats every address of 10.77.0.0/24 as local (`ip route show
/// table local`: `local 10.77.0.0/24 dev lo`), so the registry and the
/// grader's fake servers can each bind one without a link of their own
/// (some kernels have no `dummy` module).
pub const SUBNET: &str = "10.77.0.1/24";

/// How long the registry may take to answer `GET /v2/` after it starts.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a manifest GET accepts: OCI first, then Docker's schema 2, and the
/// lists of both (a multi-platform image). Without an Accept header the
/// registry would convert a schema 2 manifest to the old schema 1.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Give `lab` the subnet [`SUBNET`] on its loopback link (again is fine).
///
/// ```text
/// ip addr replace 10.77.0.1/24 dev lo
/// ```
pub fn add_subnet(lab: &NetLab) -> Result<(), Fail> {
    lab.sh(&format!("ip addr replace {SUBNET} dev lo"))
        .map(drop)
}

/// A running registry in a lab of its own; stopped and removed when
/// dropped.
pub struct Registry {
    /// `nsenter` exec'd into `docker-registry`: one process, this pid.
    server: Child,
    lab: NetLab,
    dir: TempDir,
}

impl Registry {
    /// Why a registry can't run here, in one line; `None` if it can.
    pub fn unavailable() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("needs root (a lab network namespace)".into());
        }
        for (program, package) in [
            ("docker-registry", "docker-registry"),
            ("nsenter", "util-linux"),
            ("unshare", "util-linux"),
            ("ip", "iproute2"),
        ] {
            if crate::which(program).is_none() {
                return Some(format!(
                    "`{program}` is not installed (apt-get install {package}, or .ci/install)"
                ));
            }
        }
        None
    }

    /// A fresh registry: empty storage, its own lab, answering `GET /v2/`
    /// with 200 (waited for, at most [`START_TIMEOUT`]).
    pub fn start() -> Result<Registry, Fail> {
        if let Some(why) = Registry::unavailable() {
            return Err(Fail::new(format!("a registry can't start here: {why}")));
        }
        let dir = TempDir::new("registry");
        let lab = NetLab::new()?;
        add_subnet(&lab)?;
        let storage = dir.path().join("storage");
        let config = dir.path().join("config.yml");
        let log_path = dir.path().join("registry.log");
        let setup = |what: &'static str| {
            move |e: std::io::Error| Fail::new(format!("the grader could not {what}")).seen(e)
        };
        std::fs::create_dir_all(&storage).map_err(setup("make the registry's storage dir"))?;
        std::fs::write(&config, config_yaml(&storage.to_string_lossy()))
            .map_err(setup("write the registry's config"))?;
        let log = std::fs::File::create(&log_path).map_err(setup("create the registry's log"))?;
        let log2 = log
            .try_clone()
            .map_err(setup("create the registry's log"))?;
        let server = lab
            .command("docker-registry", &["serve", &config.to_string_lossy()])
            // REGISTRY_* variables override the config file's settings:
            // none of the grader's environment may reach the registry.
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(setup("start docker-registry"))?;
        let mut registry = Registry { server, lab, dir };
        let started = Instant::now();
        let mut last = String::from("nothing yet");
        let up = crate::poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = registry.server.try_wait() {
                last = format!("docker-registry exited ({status}) before it answered");
                return Some(false);
            }
            match registry.request("/v2/", Duration::from_secs(1)) {
                Ok((200, _)) => Some(true),
                Ok((status, body)) => {
                    last = format!(
                        "GET /v2/ answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    None
                }
                Err(fail) => {
                    last = fail.seen.unwrap_or(fail.what);
                    None
                }
            }
        });
        if up != Some(true) {
            return Err(Fail::new(format!(
                "the registry did not answer GET http://{ADDRESS}/v2/ with 200 within {:.1} s",
                started.elapsed().as_secs_f64()
            ))
            .expected("HTTP 200 {}")
            .seen(format!("{last}\nits log ends:\n{}", registry.log_tail(15))));
        }
        Ok(registry)
    }

    /// `10.77.0.1:5000`: image names on it are `10.77.0.1:5000/NAME:TAG`.
    pub fn address(&self) -> &str {
        ADDRESS
    }

    /// The lab's network namespace, `/proc/PID/ns/net`: a client run with
    /// `nsenter --net=THIS` reaches the registry.
    pub fn netns(&self) -> String {
        self.lab.netns()
    }

    pub fn lab(&self) -> &NetLab {
        &self.lab
    }

    /// The registry's process and the lab's holder.
    pub fn pids(&self) -> Vec<i32> {
        vec![self.server.id() as i32, self.lab.pid]
    }

    /// Where the registry keeps the bytes of blob `digest`
    /// (`sha256:HEX`, or just HEX): a check may change them (same length,
    /// other bytes) to see that a client verifies what it downloads. The
    /// registry serves a blob from this file as it is, without checking.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(hex.get(..2).unwrap_or(hex))
            .join(hex)
            .join("data")
    }

    /// `GET http://10.77.0.1:5000PATH` from inside the lab, accepting
    /// every manifest type ([`MANIFEST_ACCEPT`]): the status and the body.
    ///
    /// ```text
    /// curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json, ...' \
    ///      http://10.77.0.1:5000/v2/app/manifests/1
    /// ```
    pub fn get(&self, path: &str) -> Result<(u16, Vec<u8>), Fail> {
        self.request(path, Duration::from_secs(10))
    }

    /// The registry's log (its own log lines and an access log line per
    /// request): the last `lines` of it.
    pub fn log_tail(&self, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        tail(&text, lines)
    }

    fn request(&self, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), Fail> {
        let failed = |what: &str, e: std::io::Error| {
            Fail::new(format!("GET http://{ADDRESS}{path} failed")).seen(format!("{what}: {e}"))
        };
        let mut stream = self.lab.connect(ADDRESS, timeout)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| failed("set timeouts", e))?;
        // One request per connection: `Connection: close` makes the answer
        // end where the registry closes it.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {ADDRESS}\r\nAccept: {MANIFEST_ACCEPT}\r\nUser-Agent: minibox-grader\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| failed("send", e))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| failed(&format!("read ({} bytes so far)", raw.len()), e))?;
        crate::etcd::parse_http(&raw).map_err(|why| {
            Fail::new(format!("GET http://{ADDRESS}{path}: not an HTTP answer")).seen(why)
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own registry, by its pid; then the lab (its holder) and the
        // temp dir go as the fields drop.
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The registry's configuration: plain HTTP on the lab address, files in
/// `storage`, deletes allowed (a check may delete a manifest), nothing
/// from the machine's /etc/docker/registry.
fn config_yaml(storage: &str) -> String {
    format!(
        "version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {ADDRESS}
  # Fixed, so the registry does not warn about a random one: it signs
  # upload state between requests, and there is only this one registry.
  secret: minibox-lab-registry
health:
  storagedriver:
    enabled: false
"
    )
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_in_the_lab_and_the_temp_dir() {
        let yaml = config_yaml("/tmp/grader-registry-1-0/storage");
        assert!(yaml.contains("rootdirectory: /tmp/grader-registry-1-0/storage"));
        assert!(yaml.contains("addr: 10.77.0.1:5000"));
        assert!(yaml.contains("delete:\n    enabled: true"));
        assert!(!yaml.contains("/var/lib"), "{yaml}");
    }

    #[test]
    fn tails_are_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }
}
