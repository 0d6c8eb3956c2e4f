//! Content addresses: a layer is named by the SHA-256 of its bytes.
//!
//! The OCI image spec names things by *digest*, `sha256:` followed by 64 hex
//! digits of the SHA-256 of their bytes. Three digests matter here:
//!
//! - **diff_id**: the digest of a layer's *uncompressed* tar. The image
//!   config lists them in `rootfs.diff_ids`, bottom layer first. Two images
//!   whose first layer is the same tar share it: same bytes, same name, kept
//!   once. Shell: `sha256sum layer.tar`.
//! - **chain_id**: the digest of a *stack* of layers, so that "layer B on top
//!   of layer A" has a name of its own. `chain(L0) = diff_id(L0)`, and
//!   `chain(L0..Ln) = sha256(chain(L0..Ln-1) + " " + diff_id(Ln))`.
//!   Snapshotters (containerd, docker's overlay2) key an unpacked stack by it.
//! - **image id**: the digest of the image config JSON itself, which holds
//!   the diff_ids, so changing any layer changes the id.
//!
//! (A registry adds a fourth, the digest of the *compressed* blob in the
//! manifest; minibox keeps no registry format, so it has none.)

use anyhow::{bail, Context};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::Read;

/// `sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The algorithm this workshop uses, as the spec spells it.
    pub const ALGORITHM: &'static str = "sha256";

    /// From the 32 bytes of a SHA-256.
    pub fn from_sha256(bytes: &[u8]) -> Digest {
        let mut text = String::with_capacity(7 + 64);
        text.push_str("sha256:");
        for byte in bytes {
            text.push_str(&format!("{byte:02x}"));
        }
        Digest(text)
    }

    /// Check and take a `sha256:...` string.
    pub fn parse(text: &str) -> anyhow::Result<Digest> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            bail!("{text}: not a sha256 digest");
        };
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            bail!("{text}: a sha256 digest has 64 lower-case hex digits");
        }
        Ok(Digest(text.to_string()))
    }

    /// The 64 hex digits, as used for names in the store.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The first 12 hex digits, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The digest of some bytes in memory (image configs, cache keys).
pub fn of_bytes(bytes: &[u8]) -> Digest {
    Digest::from_sha256(&Sha256::digest(bytes))
}

// ANCHOR: diff_id
/// The diff_id of a layer: the SHA-256 of its uncompressed tar, read to the
/// end. Returns the digest and the number of bytes read.
pub fn diff_id(mut tar: impl Read) -> anyhow::Result<(Digest, u64)> {
    // TODO(lesson-04): return the layer's diff_id, the sha256 of every byte `tar` gives until its end, as a Digest, and how many bytes that was; a read error is an error (a read interrupted by a signal is no error: try again), and the memory used stays small however large the layer is
    // Shell: `sha256sum layer.tar` and `stat -c %s layer.tar`. A layer is
    // hundreds of megabytes: never hold it whole in memory.
    // BEGIN SOLUTION
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match tar.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read the layer"),
        };
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((Digest::from_sha256(&hasher.finalize()), total))
    // END SOLUTION
}
// ANCHOR_END: diff_id

// ANCHOR: chain_ids
/// The chain_id of every prefix of a layer stack, bottom first:
/// `chain[0] = diff_ids[0]`, `chain[n] = sha256(chain[n-1] + " " + diff_ids[n])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    // TODO(lesson-04): return the OCI chain_id of each prefix of the stack, bottom first, as the image spec defines it: the chain_id of the bottom layer alone is its diff_id; the chain_id of a stack is the sha256 of the text of the chain_id below it, one space, and the text of its top diff_id (digests as text always carry their `sha256:`)
    // Why: a diff_id names a layer's content alone; a chain_id names a layer
    // on top of exactly these layers, which is what a snapshot of the stack
    // is. Shell: `printf 'sha256:%s sha256:%s' $C $D | sha256sum`.
    // BEGIN SOLUTION
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => of_bytes(format!("{below} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
    // END SOLUTION
}
// ANCHOR_END: chain_ids

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_nothing_is_the_well_known_one() {
        let (digest, n) = diff_id(&b""[..]).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            digest.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(digest, of_bytes(b""));
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = of_bytes(b"a");
        let b = of_bytes(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], of_bytes(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn parse_refuses_what_is_not_a_digest() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:00").is_err());
        let d = of_bytes(b"x");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.short().len(), 12);
    }
}
