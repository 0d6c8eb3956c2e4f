//! Which repository of a registry a blob is known to be in, so that a
//! push to another repository of it can *mount* the blob (one POST, no
//! bytes) instead of uploading it again, as docker's distribution metadata
//! does.
//!
//! ```text
//! ROOT/distribution/10.77.0.1:5000.json   {"sha256:e4e9...": "team/app", ...}
//! ```
//!
//! A hint, not a fact: the registry may have deleted the blob since, and
//! then answers the mount with a fresh upload.

use std::collections::BTreeMap;
use std::path::PathBuf;
use step04::digest::Digest;
use step04::store::Store;

pub struct Sources {
    path: PathBuf,
    known: BTreeMap<String, String>,
}

impl Sources {
    /// The record for `registry` (empty if none, or if damaged: it is only
    /// a hint).
    pub fn of(store: &Store, registry: &str) -> Sources {
        let path = store
            .root()
            .join("distribution")
            .join(format!("{registry}.json"));
        let known = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Sources { path, known }
    }

    /// A repository other than `not` that had `blob`.
    pub fn repo_of(&self, blob: &Digest, not: &str) -> Option<String> {
        self.known
            .get(blob.as_str())
            .filter(|r| r.as_str() != not)
            .cloned()
    }

    /// Remember that `repo` has `blobs`.
    pub fn remember(&mut self, store: &Store, repo: &str, blobs: &[String]) -> anyhow::Result<()> {
        for blob in blobs {
            self.known.insert(blob.clone(), repo.to_string());
        }
        let dir = self.path.parent().expect("a file in distribution/");
        std::fs::create_dir_all(dir)?;
        let _lock = store.lock()?;
        store.write_atomic(&self.path, &serde_json::to_vec_pretty(&self.known)?)
    }
}
