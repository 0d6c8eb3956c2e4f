//! An image is a config (JSON) plus its layers.
//!
//! The config follows the OCI image spec's `application/vnd.oci.image.config.v1+json`
//! (the same JSON docker stores): what to run (`config`), which layers make
//! the filesystem (`rootfs.diff_ids`, bottom first) and how the image was
//! made (`history`, one entry per Dockerfile instruction; those that made no
//! layer say `empty_layer`). The image id is the digest of these bytes.
//!
//! Hand-written serde types with the spec's field names keep this readable
//! and the build light; only the fields minibox uses are here, and unknown
//! fields of an imported config are not kept.

use crate::digest::{self, Digest};
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The image config. Field order is the serialization order, and a
/// `BTreeMap` keeps labels sorted: the same image gives the same bytes,
/// hence the same id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    // An imported config (load, pull) may leave out what the OCI spec calls
    // optional: read as empty, as docker does.
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

/// What a container of the image runs, and how (docker's capitalized names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(rename = "Env", default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(rename = "Labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of the image's making.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub created: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// The config's bytes as stored; the image id is their digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an image config always serializes")
    }

    pub fn id(&self) -> Digest {
        digest::of_bytes(&self.to_bytes())
    }

    /// The value of `KEY` in the image's environment.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.config
            .env
            .iter()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// Set `KEY=VALUE`, replacing an earlier value in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .config
            .env
            .iter_mut()
            .find(|kv| kv.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(slot) => *slot = entry,
            None => self.config.env.push(entry),
        }
    }

    /// The environment as (key, value) pairs, for `${VAR}` expansion.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// `[HOST[:PORT]/]NAME[:TAG]`, as docker spells an image reference. A
/// registry's host is part of the name (`10.77.0.1:5000/app:1` names an
/// image of that registry, as docker keeps it); step 08 splits it off.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub name: String,
    pub tag: String,
}

impl Reference {
    /// Parse `[HOST[:PORT]/]NAME[:TAG]`; the tag defaults to `latest`. Names
    /// are docker's: lower-case letters, digits and `._-/` separators; a
    /// first component with a `:PORT` (or a `.`) is a registry's host; tags
    /// up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
    pub fn parse(text: &str) -> anyhow::Result<Reference> {
        let (name, tag) = match text.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (text, "latest"),
        };
        // A port is allowed in the host only: `HOST:PORT/` before the path.
        let (host, path) = match name.split_once('/') {
            Some((host, path)) if host.contains(':') => (Some(host), path),
            _ => (None, name),
        };
        let host_ok = host.is_none_or(|host| {
            let (h, port) = host.split_once(':').unwrap_or((host, ""));
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                && !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
        });
        let name_ok = host_ok
            && !path.is_empty()
            && name.len() <= 255
            && path
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/'))
            && path.as_bytes()[0].is_ascii_alphanumeric()
            && path.as_bytes()[path.len() - 1].is_ascii_alphanumeric();
        if !name_ok {
            bail!("invalid image name {text:?}: use lower-case letters, digits and . _ - /, starting and ending with a letter or digit");
        }
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && !tag.starts_with(['.', '-']);
        if !tag_ok {
            bail!("invalid tag in {text:?}: up to 128 letters, digits, _ . -");
        }
        Ok(Reference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// An RFC 3339 time in UTC, to the second, from Unix seconds
/// (`1970-01-01T00:00:00Z`). Days to a civil date as in Howard Hinnant's
/// well-known algorithm.
pub fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_default_to_latest() {
        let r = Reference::parse("app").unwrap();
        assert_eq!(r.to_string(), "app:latest");
        let r = Reference::parse("my/app:1.0").unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("my/app", "1.0"));
        let r = Reference::parse("10.77.0.1:5000/my/app:1").unwrap();
        assert_eq!(r.name, "10.77.0.1:5000/my/app");
        assert_eq!(
            Reference::parse("localhost:5000/app").unwrap().tag,
            "latest"
        );
        for bad in [
            "", "App", "a:", ":x", "a b", "-a", "a:-x", "a/", "h:/a", "h:x/a", ":5000/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn the_id_changes_with_the_layers() {
        let mut config = ImageConfig::default();
        let before = config.id();
        config.rootfs.diff_ids.push(digest::of_bytes(b"layer"));
        assert_ne!(before, config.id());
        config.set_env("PATH", "/bin");
        config.set_env("PATH", "/usr/bin");
        assert_eq!(config.config.env, ["PATH=/usr/bin"]);
        assert_eq!(config.env_var("PATH"), Some("/usr/bin"));
    }
}
