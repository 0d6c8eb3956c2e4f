//! A reference to an image in a registry, as docker and podman spell it:
//!
//! ```text
//! 10.77.0.1:5000/team/app:1.0        registry 10.77.0.1:5000, repository team/app, tag 1.0
//! localhost:5000/app@sha256:3f2a...  by digest: this manifest and no other
//! ```
//!
//! The first component names the registry when it has a `.` or a `:PORT`,
//! or is `localhost` (docker's rule); without one docker means Docker Hub,
//! which needs HTTPS and a login that minibox does not do.

use anyhow::{bail, Context};
use step04::digest::Digest;
use step04::image::Reference;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `HOST:PORT`
    pub registry: String,
    /// `team/app`
    pub repository: String,
    pub tag: String,
    /// Set for `NAME@sha256:...`.
    pub digest: Option<Digest>,
}

impl Remote {
    pub fn parse(text: &str) -> anyhow::Result<Remote> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(Digest::parse(digest).with_context(|| format!("{text:?}: not a reference"))?),
            ),
            None => (text, None),
        };
        let local = Reference::parse(name).with_context(|| format!("{text:?}: not a reference"))?;
        let Some((first, repository)) = local.name.split_once('/') else {
            bail!("{text:?}: no registry in the name; write HOST:PORT/NAME[:TAG] (minibox does not reach Docker Hub)");
        };
        if !(first.contains('.') || first.contains(':') || first == "localhost") {
            bail!("{text:?}: no registry in the name; write HOST:PORT/NAME[:TAG] (minibox does not reach Docker Hub)");
        }
        Ok(Remote {
            registry: first.to_string(),
            repository: repository.to_string(),
            tag: local.tag,
            digest,
        })
    }

    /// What the URL names: the digest if one was given, else the tag.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => d.to_string(),
            None => self.tag.clone(),
        }
    }

    /// The name the image has in the store: `HOST:PORT/REPO:TAG`.
    pub fn local(&self) -> Reference {
        Reference {
            name: format!("{}/{}", self.registry, self.repository),
            tag: self.tag.clone(),
        }
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{}/{}@{d}", self.registry, self.repository),
            None => write!(f, "{}/{}:{}", self.registry, self.repository, self.tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references() {
        let r = Remote::parse("10.77.0.1:5000/team/app:1.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("10.77.0.1:5000", "team/app", "1.0")
        );
        assert_eq!(r.local().to_string(), "10.77.0.1:5000/team/app:1.0");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Remote::parse(&format!("localhost:5000/app@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        for bad in [
            "app",
            "team/app",
            "10.77.0.1:5000/App",
            "h:5000/a@sha256:xyz",
            "",
            "h:5000/",
        ] {
            assert!(Remote::parse(bad).is_err(), "{bad}");
        }
    }
}
