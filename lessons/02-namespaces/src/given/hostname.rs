//! The container's host name, in its own UTS namespace.

use anyhow::bail;

/// Check `name` before anything is created: a DNS name of letters, digits,
/// `-` and `.`, labels of 1 to 63 characters that don't start or end with
/// `-`, and at most 63 characters in all (the kernel takes up to 64 bytes).
pub fn validate(name: &str) -> anyhow::Result<()> {
    let good_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 63 || !name.split('.').all(good_label) {
        bail!(
            "invalid hostname {name:?}: use letters, digits, '-' and '.', \
             at most 63 characters, no '-' at either end of a part"
        );
    }
    Ok(())
}

/// A name for a container that wasn't given one: 12 random hex digits, as
/// docker names a container's host after the start of its id.
pub fn random_name() -> String {
    let mut bytes = [0u8; 6];
    // getrandom(2) via /dev/urandom; a fixed name if even that fails.
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        return "minibox".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["box", "web-1", "a.b.c", "x"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "-x",
            "x-",
            "bad_name",
            "a..b",
            "sp ace",
            long.as_str(),
            "ünï",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert_eq!(random_name().len(), 12);
    }
}
