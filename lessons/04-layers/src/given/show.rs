//! What `images`, `history` and `inspect` print.

use crate::digest::{self, Digest};
use crate::store::Store;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A size as docker prints it: decimal units, three significant digits
/// (`0B`, `950kB`, `4.52MB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let text = if unit == 0 || value >= 99.95 {
        format!("{value:.0}")
    } else if value >= 9.995 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

/// Left-aligned columns, three spaces apart, as docker's tables.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count() + 3;
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ANCHOR: images
/// `images`: every tag, with the image's size split as `docker system df -v`
/// does: SHARED SIZE is in layers other images use too, UNIQUE SIZE only here.
pub fn images(store: &Store) -> anyhow::Result<String> {
    let repos = store.repositories()?;
    let mut users: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut configs = BTreeMap::new();
    for id in store.images()? {
        let config = store.image(&id)?;
        let layers: std::collections::BTreeSet<_> =
            config.rootfs.diff_ids.iter().cloned().collect();
        for layer in layers {
            *users.entry(layer).or_default() += 1;
        }
        configs.insert(id, config);
    }
    let mut rows = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
    ]
    .map(String::from)
    .to_vec()];
    // Tagged images, then the untagged ones (a tag moved on by a rebuild)
    // as `<none>`, as docker lists them: they still hold their layers.
    let tagged: std::collections::BTreeSet<&Digest> = repos.values().collect();
    let dangling: Vec<(String, Digest)> = configs
        .keys()
        .filter(|id| !tagged.contains(id))
        .map(|id| ("<none>:<none>".to_string(), id.clone()))
        .collect();
    for (name, id) in repos
        .iter()
        .map(|(n, i)| (n.clone(), i.clone()))
        .chain(dangling)
    {
        let (name, id) = (&name, &id);
        let Some(config) = configs.get(id) else {
            continue;
        };
        let (repository, tag) = name.rsplit_once(':').unwrap_or((name, ""));
        let (mut shared, mut unique) = (0, 0);
        for layer in config
            .rootfs
            .diff_ids
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
        {
            let bytes = store.layer_size(layer)?;
            if users.get(layer).copied().unwrap_or(0) > 1 {
                shared += bytes;
            } else {
                unique += bytes;
            }
        }
        rows.push(vec![
            repository.to_string(),
            tag.to_string(),
            id.short().to_string(),
            config.created.clone(),
            size(shared + unique),
            size(shared),
            size(unique),
        ]);
    }
    Ok(table(&rows))
}
// ANCHOR_END: images

/// `history`: one line per instruction, newest first; layers with their
/// size and digest, the rest marked as empty layers.
pub fn history(store: &Store, id: &Digest, no_trunc: bool) -> anyhow::Result<String> {
    let config = store.image(id)?;
    let mut layers = config.rootfs.diff_ids.iter();
    let mut rows = Vec::new();
    for entry in &config.history {
        let (bytes, layer) = if entry.empty_layer {
            ("0B".to_string(), "(empty layer)".to_string())
        } else {
            let layer = layers
                .next()
                .context("the history names more layers than the image has")?;
            (
                size(store.layer_size(layer)?),
                shorten(layer.as_str(), no_trunc, 19),
            )
        };
        let created_by = shorten(&entry.created_by, no_trunc, 45);
        rows.push(vec![
            String::new(),
            entry.created.clone(),
            created_by,
            bytes,
            layer,
        ]);
    }
    rows.reverse();
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = if i == 0 {
            shorten(id.as_str(), no_trunc, 19)
        } else {
            "<missing>".to_string()
        };
    }
    rows.insert(
        0,
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "LAYER"]
            .map(String::from)
            .to_vec(),
    );
    Ok(table(&rows))
}

fn shorten(text: &str, no_trunc: bool, width: usize) -> String {
    if no_trunc || text.chars().count() <= width {
        return text.to_string();
    }
    if let Some(hex) = text.strip_prefix("sha256:") {
        return crate::state::short(hex).to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

// ANCHOR: inspect
/// `inspect`: the image as docker shows it (its field names), plus the
/// chain id of every layer stack (`ChainIDs`, bottom first).
pub fn inspect(store: &Store, id: &Digest) -> anyhow::Result<Value> {
    let config = store.image(id)?;
    let mut bytes = 0;
    for layer in &config.rootfs.diff_ids {
        bytes += store.layer_size(layer)?;
    }
    let lower: Vec<String> = config
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .map(|d| store.layer_diff(d).display().to_string())
        .collect();
    Ok(json!({
        "Id": id,
        "RepoTags": store.tags_of(id)?,
        "RepoDigests": store.repo_digests_of(id),
        "Created": config.created,
        "Config": config.config,
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": bytes,
        "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": lower.join(":") } },
        "RootFS": { "Type": config.rootfs.kind, "Layers": config.rootfs.diff_ids },
        "ChainIDs": digest::chain_ids(&config.rootfs.diff_ids),
    }))
}
// ANCHOR_END: inspect

/// `--format`: docker's Go templates, the two forms people use:
/// `{{.Field.Sub}}` (strings as they are) and `{{json .Field.Sub}}`
/// (JSON, indented as the blog post shows it).
pub fn format(template: &str, value: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            bail!("template {template:?}: unclosed {{{{");
        };
        let action = rest[start + 2..start + end].trim();
        let (as_json, path) = match action.strip_prefix("json ") {
            Some(path) => (true, path.trim()),
            None => (false, action),
        };
        let Some(path) = path.strip_prefix('.') else {
            bail!(
                "template {template:?}: only {{{{.Field}}}} and {{{{json .Field}}}} are supported"
            );
        };
        let mut field = value;
        if !path.is_empty() {
            for name in path.split('.') {
                field = field
                    .get(name)
                    .with_context(|| format!("template: no field {name:?} in .{path}"))?;
            }
        }
        match (as_json, field) {
            (false, Value::String(s)) => out.push_str(s),
            (false, other) => write!(out, "{other}")?,
            (true, other) => out.push_str(&serde_json::to_string_pretty(other)?),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1000), "1kB");
        assert_eq!(size(4_520_000), "4.52MB");
        assert_eq!(size(527_000_000), "527MB");
        assert_eq!(size(12_340_000), "12.3MB");
    }

    #[test]
    fn templates_pick_fields() {
        let value = json!({"RootFS": {"Layers": ["a", "b"]}, "Id": "x"});
        assert_eq!(format("{{.Id}}", &value).unwrap(), "x");
        assert_eq!(
            format("{{json .RootFS.Layers}}", &value).unwrap(),
            "[\n  \"a\",\n  \"b\"\n]"
        );
        assert!(format("{{.Nope}}", &value).is_err());
        assert!(format("{{range .}}", &value).is_err());
    }
}
