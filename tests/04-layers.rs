//! Graded checks for step 04: images made of shared, content-addressed layers.
//!
//! Compiled into `lesson-04` and `solution-04`. Every check has a store of
//! its own (`--root`, a fresh temp dir) and runs the runtime in a lab (see
//! step 02's checks). The checks believe nothing the runtime prints about
//! digests: they hash the stored tars themselves, list the tars' entries,
//! and walk the unpacked layer dirs.

use grader::lab::write;
use grader::{ensure, expect_eq, Check, Ctx, Fail, Lab, Needs, Outcome, Requires};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn main() {
    grader::main(
        grader::step!("04-layers", Needs::Root),
        vec![
            Check {
                name: "layer_digests_are_honest",
                points: 3,
                section: "naming-layers-by-their-content",
                hint: "A diff_id is sha256 of the whole uncompressed layer tar, written `sha256:<64 hex>`; the store keeps it under layers/sha256/<hex>; chain_id(n) = sha256(\"<chain_id(n-1)> <diff_id(n)>\").",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: layer_digests_are_honest,
            },
            Check {
                name: "the_layering_experiment",
                points: 4,
                section: "the-layering-experiment",
                hint: "Each RUN, COPY and ADD adds exactly one layer on top of FROM's: seven RUN lines give 8 layers, two give 3. Identical steps on an identical parent give an identical tar, hence the same diff_id. A file several layers changed reads as the topmost copy: lowerdir lists the layers top first.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: the_layering_experiment,
            },
            Check {
                name: "only_run_copy_add_make_layers",
                points: 2,
                section: "an-image-is-a-stack-of-layers",
                hint: "LABEL, ENV, WORKDIR, CMD, ENTRYPOINT and USER only change the config (history entry with empty_layer: true); RUN, COPY and ADD each add one diff_id. A container of the image then starts in WORKDIR with ENV set and runs CMD.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: only_run_copy_add_make_layers,
            },
            Check {
                name: "the_build_cache",
                points: 3,
                section: "the-build-cache",
                hint: "A step's cache key covers its parent's key, its instruction, and for COPY/ADD the digest of the files copied; a change at step k changes every key from k on.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: the_build_cache,
            },
            Check {
                name: "builds_are_reproducible",
                points: 2,
                section: "reproducible-layers",
                hint: "Same tree, same tar bytes: entries sorted, numeric owners, mtimes clamped to the epoch, no atime/ctime, one header format. Then the same Dockerfile gives the same diff_ids and image id in any empty store.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: builds_are_reproducible,
            },
            Check {
                name: "copy_on_write",
                points: 3,
                section: "overlayfs-many-layers-one-tree",
                hint: "Mount overlay with lowerdir = the image's layers, top first, and upperdir/workdir of the container's own: writes and deletions land in the upper dir, never in a layer. A container removed when it ends adds volatile.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: copy_on_write,
            },
            Check {
                name: "deletions_become_whiteouts",
                points: 3,
                section: "whiteouts-deleting-what-a-lower-layer-has",
                hint: "In the upper dir a deleted file is a char device 0/0 and a re-created dir has trusted.overlay.opaque=y; in the layer tar they are `.wh.NAME` and `DIR/.wh..wh..opq`. Unpacking turns them back.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: deletions_become_whiteouts,
            },
            Check {
                name: "layers_are_stored_once",
                points: 2,
                section: "naming-layers-by-their-content",
                hint: "Name each layer by its diff_id and add it only when that name is not in the store yet; rmi removes only the layers no image uses any more.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: layers_are_stored_once,
            },
            Check {
                name: "outputs_match_the_snapshots",
                points: 1,
                section: "the-exercise",
                hint: "images, history and inspect of a FROM scratch image are the same on every machine (its digests too): compare with tests/snapshots/.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: outputs_match_the_snapshots,
            },
            Check {
                name: "copy_stays_in_the_layer",
                points: 2,
                section: "copy-safely",
                hint: "COPY stages files in an empty dir: check every parent with lstat, remove what stands where an entry goes, create files with O_EXCL|O_NOFOLLOW, set modes on the open fd; resolve the destination's links inside the image, not on the host. A layer that appears twice in a stack goes in lowerdir once, at its topmost place.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: copy_stays_in_the_layer,
            },
            Check {
                name: "copy_cannot_be_raced_out_of_the_context",
                points: 3,
                section: "copy-safely",
                hint: "A path checked, then opened, can be renamed in between: open each COPY source from a descriptor of the context dir, with openat2(2) and RESOLVE_BENEATH, so that links are followed only while they stay beneath it (EXDEV otherwise), and read what you opened, not the path again.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: copy_cannot_be_raced_out_of_the_context,
            },
            Check {
                name: "exec_joins_the_namespaces",
                points: 3,
                section: "exec-joining-a-running-container",
                hint: "Open /proc/PID/ns/{user,ipc,uts,net,pid,cgroup,mnt} of the container's init first, then setns each (user first, mnt last, skipping those you already share), then fork: only children enter a PID namespace.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: exec_joins_the_namespaces,
            },
            Check {
                name: "the_callers_terminal_is_out_of_reach",
                points: 3,
                section: "pipes-never-your-terminal",
                hint: "Without -t the container's fds 0, 1 and 2 must be pipes whose other ends the runtime holds and copies, never the runtime's own fds: from a shell those are your terminal, and a process holding a terminal can type into it (TIOCSTI). run, run -i, exec, exec -i and a build's RUN are tried.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: the_callers_terminal_is_out_of_reach,
            },
            Check {
                name: "the_store_is_roots_alone",
                points: 3,
                section: "the-store",
                hint: "The store's layers, containers, images, cache and tmp dirs must be 0700 (their owner's alone): under them are setuid-root files in layers and writable layers, and records with the -e environment. A store made open before is closed again when opened; a root of another user's is refused. The log is the runtime's file, written from a pipe: the container never holds it.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: the_store_is_roots_alone,
            },
            Check {
                name: "bad_input_is_one_line",
                points: 2,
                section: "the-exercise",
                hint: "Each bad input gives one line and exit 125 before anything is stored: an unknown instruction (with its line number), COPY from outside the context, a missing base image, tars with absolute paths, `..`, or a file written through a symlink that points outside.",
                more: "",
                shape: "",
                requires: Requires::Nothing,
                run: bad_input_is_one_line,
            },
        ],
    );
}

// ---- a store of one's own ----

fn sha256_of_file(path: &Path) -> Result<String, Fail> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fail::new(format!("cannot read {}", path.display())).seen(e))?;
    Ok(format!("sha256:{:x}", Sha256::digest(&bytes)))
}

fn sha256_text(text: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(text.as_bytes()))
}

/// The entries of a tar: name -> (type letter, size).
fn tar_entries(path: &Path) -> Result<BTreeMap<String, (char, u64)>, Fail> {
    let file = std::fs::File::open(path)
        .map_err(|e| Fail::new(format!("cannot open {}", path.display())).seen(e))?;
    let mut archive = tar::Archive::new(file);
    let mut out = BTreeMap::new();
    let bad =
        |e: std::io::Error| Fail::new(format!("{} is not a readable tar", path.display())).seen(e);
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type().as_byte() as char;
        out.insert(name, (kind, entry.header().size().unwrap_or(0)));
    }
    Ok(out)
}

/// The entry names of a tar, in the order they are written.
fn tar_names(path: &Path) -> Result<Vec<(String, tar::Header)>, Fail> {
    let file = std::fs::File::open(path)
        .map_err(|e| Fail::new(format!("cannot open {}", path.display())).seen(e))?;
    let mut archive = tar::Archive::new(file);
    let bad =
        |e: std::io::Error| Fail::new(format!("{} is not a readable tar", path.display())).seen(e);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        out.push((
            String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            entry.header().clone(),
        ));
    }
    Ok(out)
}

/// Every path under `dir` with what it is and a hash of its content: a
/// fingerprint that changes if any byte, mode or owner changes.
fn fingerprint(dir: &Path) -> Result<BTreeMap<String, String>, Fail> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Fail::new(format!("cannot stat {}", path.display())).seen(e))?;
        let what = if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| Fail::new("readdir").seen(e))? {
                stack.push(entry.map_err(|e| Fail::new("readdir").seen(e))?.path());
            }
            "dir".to_string()
        } else if meta.is_file() {
            sha256_of_file(&path)?
        } else if meta.file_type().is_symlink() {
            format!(
                "-> {}",
                std::fs::read_link(&path).unwrap_or_default().display()
            )
        } else if meta.file_type().is_char_device() {
            format!("char {}", meta.rdev())
        } else {
            "other".to_string()
        };
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.insert(
            name,
            format!("{what} {:o} {}:{}", meta.mode(), meta.uid(), meta.gid()),
        );
    }
    Ok(out)
}

/// Lines that say `--> CACHED` in a build's output, by step number.
fn cached_steps(output: &str) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("STEP ") {
            step = rest
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.starts_with("--> CACHED") {
            cached.push(step);
        }
    }
    cached
}

// ---- the checks ----

fn layer_digests_are_honest(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "honest",
        "FROM base\nCOPY hello.txt /hello.txt\nRUN echo built > /built && ln /built /built-link\n",
        &[("hello.txt", "hello\n")],
    )?;
    lab.build("honest", &context)?;
    let layers = lab.layers("honest")?;
    expect_eq(
        "FROM base + COPY + RUN: the number of layers",
        3,
        layers.len(),
    )?;
    for diff_id in &layers {
        let tar = lab.layer_dir(diff_id).join("layer.tar");
        ensure(tar.is_file(), || {
            Fail::new("each layer's tar should be in the store under layers/sha256/<hex of its diff_id>/layer.tar")
                .seen(format!("no {}", tar.display()))
        })?;
        expect_eq(
            "the diff_id should be the sha256 of the layer tar (recomputed here)",
            diff_id.clone(),
            sha256_of_file(&tar)?,
        )?;
    }
    // The image id is the digest of the config file, which lists the layers.
    let id = lab.image_id("honest")?;
    let config_path = lab
        .root()
        .join("images/sha256")
        .join(format!("{}.json", id.trim_start_matches("sha256:")));
    expect_eq(
        "the image id should be the sha256 of its config file",
        id.clone(),
        sha256_of_file(&config_path)?,
    )?;
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap_or_default())
        .map_err(|e| Fail::new("the image config should be JSON").seen(e))?;
    expect_eq(
        "the config's rootfs.diff_ids should be the layers, bottom first",
        serde_json::json!(layers),
        config["rootfs"]["diff_ids"].clone(),
    )?;
    // chain_id, recomputed from the spec's definition.
    let mut chain: Vec<String> = Vec::new();
    for diff_id in &layers {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => sha256_text(&format!("{below} {diff_id}")),
        };
        chain.push(next);
    }
    let shown = lab.inspect("honest")?;
    expect_eq(
        "inspect's ChainIDs should follow the OCI definition",
        serde_json::json!(chain),
        shown["ChainIDs"].clone(),
    )?;
    // What the COPY layer holds, seen in its tar.
    let entries = tar_entries(&lab.layer_dir(&layers[1]).join("layer.tar"))?;
    expect_eq(
        "the COPY layer's tar should hold exactly the copied file",
        vec!["hello.txt".to_string()],
        entries.keys().cloned().collect::<Vec<_>>(),
    )?;
    let base = tar_entries(&lab.layer_dir(&layers[0]).join("layer.tar"))?;
    expect_eq(
        "the base layer keeps /bin as what it is on disk: a symlink (tar type 2), not a copy of its target",
        Some('2'),
        base.get("bin").map(|(kind, _)| *kind),
    )?;
    let run = tar_entries(&lab.layer_dir(&layers[2]).join("layer.tar"))?;
    let mut kinds: Vec<char> = ["built", "built-link"]
        .iter()
        .filter_map(|name| run.get(*name).map(|(kind, _)| *kind))
        .collect();
    kinds.sort();
    expect_eq(
        "`ln /built /built-link`: the layer holds one file and one hard link to it (tar types 0 and 1)",
        vec!['0', '1'],
        kinds,
    )?;
    expect_eq(
        "in a container, /built and /built-link are one inode (2 links)",
        "2\n",
        lab.run("honest", &["stat", "-c", "%h", "/built-link"])?
            .as_str(),
    )
}

// The blog post's two Dockerfiles, as written (`cargo xtask bench` builds
// them too).
const ORIGIN: &str = include_str!("fixtures/blog/origin.Dockerfile");

const OPTIMIZED: &str = include_str!("fixtures/blog/optimized.Dockerfile");

fn image_size(lab: &Lab, layers: &[String]) -> Result<u64, Fail> {
    let mut total = 0;
    for layer in layers {
        for (_, (kind, size)) in tar_entries(&lab.layer_dir(layer).join("layer.tar"))? {
            if kind == '0' {
                total += size;
            }
        }
    }
    Ok(total)
}

fn the_layering_experiment(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let origin = lab.context("origin", ORIGIN, &[])?;
    let optimized = lab.context("optimized", OPTIMIZED, &[])?;
    lab.build("origin", &origin)?;
    lab.build("optimized", &optimized)?;
    let a = lab.layers("origin")?;
    let b = lab.layers("optimized")?;
    expect_eq("FROM + seven RUN lines: layers", 8, a.len())?;
    expect_eq("FROM + two RUN lines: layers", 3, b.len())?;
    expect_eq(
        "both images start with the same two layers (base, then the same RUN on the same parent)",
        &a[..2],
        &b[..2],
    )?;
    let base = lab.layers("base")?;
    expect_eq("the first layer is the base image's", &base[..], &a[..1])?;
    ensure(a[2..].iter().all(|l| !b.contains(l)), || {
        Fail::new("the install layers differ between the two images")
            .seen(format!("{a:?} vs {b:?}"))
    })?;
    // Each apt install rewrote dpkg's status file: seven copies weigh more.
    let (big, small) = (image_size(&lab, &a)?, image_size(&lab, &b)?);
    ensure(big > small, || {
        Fail::new("the seven-layer image holds more bytes (a copy of /var/lib/dpkg/status in every layer)")
            .expected(format!("more than {small} bytes"))
            .seen(format!("{big} bytes"))
    })?;
    let out = lab.run(
        "origin",
        &[
            "sh",
            "-c",
            "ls /usr/share/cmake /usr/share/vim; grep -c '^Package:' /var/lib/dpkg/status",
        ],
    )?;
    expect_eq(
        "a container of the result sees every layer's files, and of a file several layers changed, the topmost copy (dpkg's status after all seven installs: lowerdir lists the layers top first)",
        "/usr/share/cmake:\ncmake.data\n\n/usr/share/vim:\nvim.data\n12\n",
        out.as_str(),
    )
}

fn only_run_copy_add_make_layers(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    // A tar for ADD to extract.
    let dir = lab.dir.path().join("config");
    std::fs::create_dir_all(&dir).map_err(|e| Fail::new("setup").seen(e))?;
    let tar_path = dir.join("bundle.tar");
    {
        let file = std::fs::File::create(&tar_path).map_err(|e| Fail::new("setup").seen(e))?;
        let mut builder = tar::Builder::new(file);
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_uid(1234);
        header.set_gid(5678);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, "from-tar.txt", &b"untar\n"[..])
            .and_then(|_| builder.finish())
            .map_err(|e| Fail::new("setup: tar").seen(e))?;
    }
    let steps = [
        (
            "LABEL org.opencontainers.image.authors=\"org@example.com\"",
            false,
        ),
        ("ENV GREETING=hello", false),
        ("WORKDIR /app", false),
        (
            "CMD [\"sh\", \"-c\", \"pwd; echo $GREETING; cat /app/note.txt /app/from-tar.txt /app/ran.txt\"]",
            false,
        ),
        ("COPY note.txt note.txt", true),
        ("ADD bundle.tar /app/", true),
        ("RUN pwd > ran.txt && echo $GREETING >> ran.txt", true),
    ];
    let dockerfile: String = std::iter::once("FROM base".to_string())
        .chain(steps.iter().map(|(s, _)| s.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let context = lab.context("config", &dockerfile, &[("note.txt", "noted\n")])?;
    lab.build("configured", &context)?;
    let layers = lab.layers("configured")?;
    expect_eq(
        "layers: base + COPY + ADD + RUN (LABEL, ENV, WORKDIR and CMD add none)",
        4,
        layers.len(),
    )?;
    let value = lab.inspect("configured")?;
    let config_path = lab.root().join("images/sha256").join(format!(
        "{}.json",
        value["Id"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
    ));
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap_or_default())
        .map_err(|e| Fail::new("the image config should be JSON").seen(e))?;
    let history = config["history"].as_array().cloned().unwrap_or_default();
    let mine = &history[history.len().saturating_sub(steps.len())..];
    expect_eq(
        "one history entry per instruction after FROM",
        steps.len(),
        mine.len(),
    )?;
    for ((text, makes_layer), entry) in steps.iter().zip(mine) {
        let empty = entry["empty_layer"].as_bool().unwrap_or(false);
        expect_eq(
            &format!("history of `{text}`: empty_layer"),
            !makes_layer,
            empty,
        )?;
    }
    expect_eq(
        "LABEL sets Config.Labels",
        "org@example.com",
        value["Config"]["Labels"]["org.opencontainers.image.authors"]
            .as_str()
            .unwrap_or("(none)"),
    )?;
    let out = lab.run("configured", &[])?;
    expect_eq(
        "a container runs CMD, in WORKDIR, with ENV set, and sees COPY's and ADD's files (COPY's relative dest and RUN in WORKDIR with ENV)",
        "/app\nhello\nnoted\nuntar\n/app\nhello\n",
        out.as_str(),
    )?;
    expect_eq(
        "ADD keeps the numeric owner of a tar's entry (uid 1234, gid 5678) through every layer tar",
        "1234:5678\n",
        lab.run("configured", &["stat", "-c", "%u:%g", "/app/from-tar.txt"])?
            .as_str(),
    )
}

fn the_build_cache(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let dockerfile = "FROM base\nRUN echo one > /one\nCOPY data.txt /data.txt\nRUN echo three > /three\nCMD [\"cat\", \"/data.txt\"]\n";
    let context = lab.context("cache", dockerfile, &[("data.txt", "v1\n")])?;
    let first = lab.build("cached", &context)?;
    expect_eq(
        "a first build uses no cache",
        Vec::<usize>::new(),
        cached_steps(&first),
    )?;
    let id = lab.image_id("cached")?;
    let again = lab.build("cached", &context)?;
    expect_eq(
        "an unchanged rebuild: every RUN/COPY step prints `--> CACHED`",
        vec![2, 3, 4],
        cached_steps(&again),
    )?;
    expect_eq(
        "an unchanged rebuild gives the same image id",
        id.clone(),
        lab.image_id("cached")?,
    )?;
    // Change step 4: steps 2 and 3 stay cached.
    write(
        &context.join("Dockerfile"),
        &dockerfile.replace("echo three", "echo THREE"),
    )?;
    let changed = lab.build("cached", &context)?;
    expect_eq(
        "after changing step 4, steps before it are cached and step 4 runs again",
        vec![2, 3],
        cached_steps(&changed),
    )?;
    ensure(lab.image_id("cached")? != id, || {
        Fail::new("a changed step gives a new image id")
    })?;
    // Change the COPY source: step 3 and everything after it rebuild.
    write(&context.join("data.txt"), "v2\n")?;
    let copied = lab.build("cached", &context)?;
    expect_eq(
        "after changing the file COPY reads, only step 2 is cached",
        vec![2],
        cached_steps(&copied),
    )?;
    expect_eq(
        "the new file is in the image",
        "v2\n",
        lab.run("cached", &[])?.as_str(),
    )?;
    // Config steps are part of the key too: a RUN after a changed ENV runs again.
    let env_file = "FROM base\nENV V=1\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n";
    let env_context = lab.context("cache-env", env_file, &[])?;
    lab.build("env", &env_context)?;
    write(
        &env_context.join("Dockerfile"),
        &env_file.replace("V=1", "V=2"),
    )?;
    let rebuilt = lab.build("env", &env_context)?;
    expect_eq(
        "after changing ENV, the RUN below it is not cached",
        Vec::<usize>::new(),
        cached_steps(&rebuilt),
    )?;
    expect_eq(
        "the RUN saw the new ENV",
        "2\n",
        lab.run("env", &[])?.as_str(),
    )
}

fn builds_are_reproducible(ctx: &Ctx) -> Outcome {
    let dockerfile = "FROM base\nRUN mkdir -p /srv/app && echo made > /srv/app/made && rm /etc/os-release\nCOPY src /srv/app/src\nENV MODE=prod\n";
    let mut seen = Vec::new();
    for name in ["first", "second"] {
        let lab = Lab::apart(ctx);
        let context = lab.context(
            name,
            dockerfile,
            &[
                ("src/main.txt", "fn main\n"),
                ("src/lib/util.txt", "util\n"),
            ],
        )?;
        lab.build("repro", &context)?;
        seen.push((lab.layers("repro")?, lab.image_id("repro")?));
    }
    expect_eq(
        "the same Dockerfile in two empty stores: the same diff_ids",
        &seen[0].0,
        &seen[1].0,
    )?;
    expect_eq(
        "the same Dockerfile in two empty stores: the same image id",
        &seen[0].1,
        &seen[1].1,
    )?;
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "third",
        dockerfile,
        &[
            ("src/main.txt", "fn main\n"),
            ("src/lib/util.txt", "util\n"),
        ],
    )?;
    lab.build("repro", &context)?;
    for layer in lab.layers("repro")? {
        let entries = tar_names(&lab.layer_dir(&layer).join("layer.tar"))?;
        for (name, header) in &entries {
            ensure(
                header.username_bytes().unwrap_or_default().is_empty()
                    && header.groupname_bytes().unwrap_or_default().is_empty(),
                || {
                    Fail::new("layer tars carry numeric owners only: no user or group names")
                        .seen(name)
                },
            )?;
        }
        let names: Vec<String> = entries.into_iter().map(|(n, _)| n).collect();
        if names.iter().any(|n| n.contains(".wh.")) {
            continue;
        }
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| {
            a.trim_end_matches('/')
                .split('/')
                .cmp(b.trim_end_matches('/').split('/'))
        });
        expect_eq(
            &format!("layer {layer}: entries sorted by path, each dir before what it holds"),
            &sorted,
            &names,
        )?;
    }
    Ok(())
}

fn copy_on_write(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context("cow", "FROM base\nRUN echo original > /etc/motd\n", &[])?;
    lab.build("cow", &context)?;
    let layers = lab.layers("cow")?;
    let mut before = Vec::new();
    for layer in &layers {
        let dir = lab.layer_dir(layer);
        before.push((
            sha256_of_file(&dir.join("layer.tar"))?,
            fingerprint(&dir.join("diff"))?,
        ));
    }
    let script = "echo changed >> /etc/motd; rm /usr/bin/apt; echo new > /new-file; \
                  cat /etc/motd; ls /usr/bin/apt 2>/dev/null || echo apt-gone; \
                  grep ' / / ' /proc/self/mountinfo";
    let out = lab.run("--rm", &["cow", "sh", "-c", script])?;
    let lines: Vec<&str> = out.lines().collect();
    expect_eq(
        "inside, the container sees its own writes and deletions",
        vec!["original", "changed", "apt-gone"],
        lines.iter().take(3).copied().collect::<Vec<_>>(),
    )?;
    let root_line = lines.get(3).copied().unwrap_or("(no / in mountinfo)");
    ensure(root_line.contains(" - overlay "), || {
        Fail::new("the container's / should be an overlay mount (filesystem type overlay in /proc/self/mountinfo)")
            .seen(root_line)
    })?;
    // The kernel shows `volatile` (5.10) or `fsync=volatile` (6.x).
    ensure(root_line.contains("volatile"), || {
        Fail::new("a `run --rm` container is removed when it ends: its overlay should be mounted with volatile (no sync of its writes)")
            .seen(root_line)
    })?;
    for (layer, (tar, tree)) in layers.iter().zip(&before) {
        let dir = lab.layer_dir(layer);
        expect_eq(
            &format!("layer {layer}: its tar is byte-identical after a container wrote"),
            tar.clone(),
            sha256_of_file(&dir.join("layer.tar"))?,
        )?;
        expect_eq(
            &format!("layer {layer}: its unpacked dir is unchanged after a container wrote"),
            tree,
            &fingerprint(&dir.join("diff"))?,
        )?;
    }
    let second = lab.run(
        "--rm",
        &[
            "cow",
            "sh",
            "-c",
            "cat /etc/motd; ls /usr/bin/apt; ls /new-file 2>/dev/null || echo no-new-file",
        ],
    )?;
    expect_eq(
        "a second container of the image sees none of the first one's changes",
        "original\n/usr/bin/apt\nno-new-file\n",
        second.as_str(),
    )?;
    let left: Vec<String> = std::fs::read_dir(lab.root().join("containers"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    ensure(left.is_empty(), || {
        Fail::new("after `run --rm` ends, its writable layer is removed (containers/ is empty)")
            .seen(left.join(", "))
    })?;
    // A container that is kept: its writes are synced like any others.
    let kept = lab.run("cow", &["sh", "-c", "grep ' / / ' /proc/self/mountinfo"])?;
    ensure(!kept.contains("volatile"), || {
        Fail::new("a container run without --rm is kept, with its writable layer: its overlay must not be volatile")
            .seen(kept.trim())
    })
}

fn deletions_become_whiteouts(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "whiteouts",
        "FROM base\nRUN rm /usr/bin/apt\nRUN rm -r /etc && mkdir /etc && echo only > /etc/only\n",
        &[],
    )?;
    lab.build("deleted", &context)?;
    let layers = lab.layers("deleted")?;
    expect_eq("FROM + two RUN lines: layers", 3, layers.len())?;
    let removed = tar_entries(&lab.layer_dir(&layers[1]).join("layer.tar"))?;
    ensure(removed.contains_key("usr/bin/.wh.apt"), || {
        Fail::new("`RUN rm /usr/bin/apt` should make a layer holding the whiteout usr/bin/.wh.apt")
            .seen(format!("entries: {:?}", removed.keys().collect::<Vec<_>>()))
    })?;
    ensure(!removed.contains_key("usr/bin/apt"), || {
        Fail::new("the layer must not hold the deleted file itself (a char device 0/0 is overlayfs's, not the tar's)")
            .seen(format!("entries: {:?}", removed.keys().collect::<Vec<_>>()))
    })?;
    let unpacked = lab.layer_dir(&layers[1]).join("diff/usr/bin/apt");
    let meta = std::fs::symlink_metadata(&unpacked).ok();
    ensure(
        meta.as_ref().is_some_and(|m| {
            m.file_type().is_char_device() && m.rdev() == 0 && m.mode() & 0o7777 == 0
        }),
        || {
            Fail::new("unpacked for overlayfs, the whiteout .wh.apt should be a char device 0/0, mode 0000, named apt (mknod with S_IFCHR and mode 0, device 0)")
                .seen(match &meta {
                    Some(m) => format!(
                        "{}: {} {}/{} mode {:04o}",
                        unpacked.display(),
                        if m.file_type().is_char_device() { "char device" } else if m.is_file() { "regular file" } else { "not a char device" },
                        nix::sys::stat::major(m.rdev()),
                        nix::sys::stat::minor(m.rdev()),
                        m.mode() & 0o7777
                    ),
                    None => format!("{}: missing", unpacked.display()),
                })
        },
    )?;
    let opaque = tar_entries(&lab.layer_dir(&layers[2]).join("layer.tar"))?;
    for needed in ["etc/", "etc/.wh..wh..opq", "etc/only"] {
        ensure(opaque.contains_key(needed), || {
            Fail::new("`rm -r /etc && mkdir /etc` should make an opaque dir: etc/, etc/.wh..wh..opq, then the new file")
                .expected(needed)
                .seen(format!("entries: {:?}", opaque.keys().collect::<Vec<_>>()))
        })?;
    }
    let out = lab.run(
        "deleted",
        &[
            "sh",
            "-c",
            "ls /etc; ls /usr/bin/apt 2>/dev/null || echo apt-gone",
        ],
    )?;
    expect_eq(
        "a container of the image: /etc holds only the new file, apt is gone",
        "only\napt-gone\n",
        out.as_str(),
    )?;
    // A real char device (1/3) is no whiteout: refused, or kept as a device.
    let dev = lab.context("device", "FROM base\nRUN cp -a /dev/null /devnull\n", &[])?;
    let out = lab
        .minibox(&["build", "-t", "device", &dev.to_string_lossy()])
        .output()?;
    if out.code() == Some(0) {
        let layers = lab.layers("device")?;
        let entries = tar_entries(&lab.layer_dir(&layers[1]).join("layer.tar"))?;
        ensure(!entries.contains_key(".wh.devnull"), || {
            Fail::new("a copy of /dev/null (char 1/3) is a device, not a deletion: no .wh.devnull")
                .seen(format!("{:?}", entries.keys().collect::<Vec<_>>()))
        })?;
    }
    // With redirect_dir on, a renamed lower dir is only an xattr in the upper dir: its files would be lost.
    let moved = lab.context(
        "moved",
        "FROM base\nRUN mv /var/lib/dpkg /var/lib/dpkg-moved\n",
        &[],
    )?;
    lab.build("moved", &moved)?;
    expect_eq(
        "a dir renamed by RUN keeps its files in the image (overlay mounted with redirect_dir=off)",
        "/var/lib/dpkg-moved/status\n",
        lab.run("moved", &["ls", "/var/lib/dpkg-moved/status"])?
            .as_str(),
    )
}

fn layer_tars(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("layers/sha256"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("layer.tar").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn layers_are_stored_once(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let one = lab.context("one", "FROM base\nRUN echo one > /one\n", &[])?;
    let two = lab.context("two", "FROM base\nRUN echo two > /two\n", &[])?;
    lab.build("one", &one)?;
    lab.build("two", &two)?;
    let (a, b) = (lab.layers("one")?, lab.layers("two")?);
    expect_eq("both images start with the base layer", &a[0], &b[0])?;
    let mut stored = layer_tars(&lab.root());
    stored.sort();
    let mut expected: Vec<String> = [&a[0], &a[1], &b[1]]
        .iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    expected.sort();
    expect_eq(
        "the store holds each layer once: base, one, two (counted in layers/sha256)",
        expected,
        stored,
    )?;
    let out = lab.minibox(&["rmi", "one"]).output()?;
    out.expect_code(0, "rmi should remove the image")?;
    let mut left = layer_tars(&lab.root());
    left.sort();
    let mut expected: Vec<String> = [&b[0], &b[1]]
        .iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    expected.sort();
    expect_eq(
        "after `rmi one`: its own layer is gone, the shared base layer stays",
        expected,
        left,
    )?;
    expect_eq(
        "the other image still runs",
        "two\n",
        lab.run("two", &["cat", "/two"])?.as_str(),
    )?;
    // Another instruction that makes the same bytes: the same layer, not written again.
    let tar = lab.layer_dir(&b[1]).join("layer.tar");
    let inode = std::fs::metadata(&tar).map(|m| m.ino()).ok();
    let twin = lab.context("twin", "FROM base\nRUN echo two >/two\n", &[])?;
    lab.build("twin", &twin)?;
    expect_eq(
        "a different RUN that writes the same file gives the same diff_id",
        &b,
        &lab.layers("twin")?,
    )?;
    expect_eq(
        "a layer already in the store is kept as it is (same inode of its layer.tar)",
        inode,
        std::fs::metadata(&tar).map(|m| m.ino()).ok(),
    )?;
    // The cache never points at a layer rmi removed.
    lab.build("one", &one)?;
    expect_eq(
        "`one`, built again after rmi",
        "one\n",
        lab.run("one", &["cat", "/one"])?.as_str(),
    )
}

/// Replace what differs between runs and machines: the store's path, and
/// the architecture (in the config, so in the image id too).
fn redact(text: &str, lab: &Lab, id: &str) -> String {
    let root = lab.root().canonicalize().unwrap_or_else(|_| lab.root());
    let arch = format!(
        "\"{}\"",
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")
    );
    text.replace(&root.to_string_lossy().into_owned(), "[ROOT]")
        .replace(id, "[IMAGE ID]")
        .replace(&id[7..19], "[IMAGE ID]")
        .replace(&arch, "\"[ARCH]\"")
}

fn outputs_match_the_snapshots(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "snap",
        "FROM scratch\nLABEL org.opencontainers.image.title=\"hello\"\nCOPY hello.txt /srv/\nENV GREETING=hi\nCOPY conf /etc/hello\nCMD [\"/srv/hello.txt\"]\n",
        &[("hello.txt", "hello, layers\n"), ("conf/a.conf", "a=1\n"), ("conf/b.conf", "b=2\n")],
    )?;
    let conf = context.join("conf");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Fail::new("setup").seen(e))?;
    lab.build("hello:1.0", &context)?;
    let id = lab.image_id("hello:1.0")?;
    ensure(id.len() == 71, || {
        Fail::new("inspect should show a sha256 image id").seen(&id)
    })?;
    let mut shown = Vec::new();
    for (name, args) in [
        ("images", vec!["images"]),
        ("history", vec!["history", "hello:1.0"]),
        ("inspect", vec!["inspect", "hello:1.0"]),
    ] {
        let out = lab.minibox(&args).output()?;
        out.expect_code(0, &format!("`{name}` should work"))?;
        shown.push((name, redact(&out.stdout_text(), &lab, &id)));
    }
    let mut differ = Vec::new();
    for (name, text) in &shown {
        // insta panics on a difference (and writes a .snap.new beside the
        // snapshot): catch it, so that every output is compared.
        let compared = std::panic::catch_unwind(|| {
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/snapshots"
            ));
            settings.set_prepend_module_to_snapshot(false);
            settings.bind(|| insta::assert_snapshot!(format!("04-layers-{name}"), text));
        });
        if compared.is_err() {
            differ.push(format!("`{name}`:\n{text}"));
        }
    }
    ensure(differ.is_empty(), || {
        Fail::new("images / history / inspect differ from tests/snapshots/04-layers-*.snap: `diff tests/snapshots/04-layers-inspect.snap{,.new}` (and -images, -history) shows what differs")
            .seen(differ.join("\n"))
    })
}

/// What the store holds, to prove bad input changed nothing.
fn store_state(root: &Path) -> Result<BTreeMap<String, String>, Fail> {
    let mut state = BTreeMap::new();
    for dir in ["layers/sha256", "images/sha256", "cache"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                state.insert(
                    format!("{dir}/{}", entry.file_name().to_string_lossy()),
                    String::new(),
                );
            }
        }
    }
    let repos = std::fs::read_to_string(root.join("repositories.json")).unwrap_or_default();
    state.insert("repositories.json".to_string(), repos);
    Ok(state)
}

/// A tar entry written raw: name, type, and the data or link target.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str);

/// A tar whose entry names are written raw (the tar crate refuses to
/// write `..` or absolute names, which is the point of these).
fn hostile_tar(path: &Path, entries: &[RawEntry]) -> Result<(), Fail> {
    let mut bytes = Vec::new();
    for (name, kind, target_or_data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            target_or_data.as_bytes()
        } else {
            header.as_old_mut().linkname[..target_or_data.len()]
                .copy_from_slice(target_or_data.as_bytes());
            b""
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    }
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(path, bytes).map_err(|e| Fail::new("setup: write a tar").seen(e))
}

fn bad_input_is_one_line(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let good = lab.context("good", "FROM base\nRUN echo fine > /fine\n", &[])?;
    lab.build("good", &good)?;
    let outside = lab.dir.path().join("outside");
    std::fs::create_dir_all(&outside).map_err(|e| Fail::new("setup").seen(e))?;
    let before = store_state(&lab.root())?;
    let unknown = lab.context("unknown", "FROM base\nRUN true\nFROBNICATE now\n", &[])?;
    let escape = lab.context("escape", "FROM base\nCOPY ../outside /x\n", &[])?;
    let missing = lab.context("missing", "FROM no-such-image:1\nRUN true\n", &[])?;
    let reserved = lab.context("reserved", "FROM base\nRUN touch /.wh.evil\n", &[])?;
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                unknown.display().to_string(),
            ],
            "line 3",
        ),
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                escape.display().to_string(),
            ],
            "outside",
        ),
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                missing.display().to_string(),
            ],
            "no-such-image",
        ),
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                reserved.display().to_string(),
            ],
            ".wh.",
        ),
    ];
    let victim = outside.join("pwned");
    let link_target = outside.display().to_string();
    let tars: [(&str, Vec<RawEntry>, &str); 4] = [
        (
            "absolute.tar",
            vec![("/etc/minibox-pwned", tar::EntryType::Regular, "x")],
            "absolute",
        ),
        (
            "dotdot.tar",
            vec![("a/../../pwned", tar::EntryType::Regular, "x")],
            "..",
        ),
        (
            "symlink.tar",
            vec![
                ("evil", tar::EntryType::Symlink, link_target.as_str()),
                ("evil/pwned", tar::EntryType::Regular, "x"),
            ],
            "evil",
        ),
        (
            "hardlink.tar",
            vec![("passwd", tar::EntryType::Link, "../../../../etc/passwd")],
            "passwd",
        ),
    ];
    for (name, entries, mentions) in &tars {
        let path = lab.dir.path().join(name);
        hostile_tar(&path, entries)?;
        cases.push((
            vec![
                "import".into(),
                path.display().to_string(),
                "hostile".into(),
            ],
            mentions,
        ));
    }
    for (args, mentions) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lab.minibox(&args).output()?;
        out.expect_code(125, "bad input is a runtime error (125)")?;
        out.expect_one_error_line(mentions)?;
    }
    ensure(
        !victim.exists() && !Path::new("/etc/minibox-pwned").exists(),
        || Fail::new("a hostile tar wrote outside the store").seen(victim.display()),
    )?;
    expect_eq(
        "bad input leaves the store as it was (layers, images, cache, names)",
        before,
        store_state(&lab.root())?,
    )
}

// ---- containers with a life of their own ----

fn exec_joins_the_namespaces(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let id = lab.run_detached(&[
        "--name",
        "target",
        "--hostname",
        "inside",
        "base",
        "sleep",
        "1000",
    ])?;
    let _cleanup = lab.removed(&id);
    let pid = lab.field("target", "State.Pid")?.as_i64().unwrap_or(0) as i32;
    ctx.track(pid);
    // One file per readlink: busybox's takes only one (GNU's takes many).
    let script =
        "hostname; for ns in mnt net uts pid; do readlink /proc/self/ns/$ns; done; ps -o comm=";
    let out = lab
        .minibox(&["exec", "target", "sh", "-c", script])
        .output()?;
    out.expect_code(0, "exec should run the command in the container")?;
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    expect_eq(
        "exec: the container's host name",
        Some("inside"),
        lines.first().copied(),
    )?;
    for (i, kind) in ["mnt", "net", "uts", "pid"].iter().enumerate() {
        let expected = grader::procfs::namespace(pid, kind);
        expect_eq(
            &format!("exec: the same {kind} namespace as the container's init (inode)"),
            expected.as_deref(),
            lines.get(i + 1).copied(),
        )?;
    }
    let processes: Vec<&str> = lines.iter().skip(5).copied().collect();
    ensure(
        processes.contains(&"sleep") && processes.contains(&"minibox-init"),
        || {
            Fail::new(
                "exec: ps sees the container's processes (its init and the sleep), and only those",
            )
            .seen(processes.join(", "))
        },
    )?;
    ensure(processes.len() <= 5, || {
        Fail::new("exec: ps inside must not see the host's processes").seen(processes.join(", "))
    })
}

fn copy_stays_in_the_layer(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    // A hostile context: d1 holds links to files outside; later sources
    // would be written through them if COPY followed links in its stage.
    let victim = lab.dir.path().join("victim");
    write(&victim.join("file"), "SAFE\n")?;
    std::fs::set_permissions(victim.join("file"), std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Fail::new("setup: chmod").seen(e))?;
    let context = lab.context(
        "hostile",
        "FROM base\nCOPY d1 s/evil d2 /x/\nCOPY s/evil /bin/\nRUN true\nRUN true\nWORKDIR /bin\n",
        &[("s/evil", "PWNED\n"), ("d2/sub/new", "PWNED2\n")],
    )?;
    std::fs::create_dir_all(context.join("d1")).map_err(|e| Fail::new("setup").seen(e))?;
    std::os::unix::fs::symlink(victim.join("file"), context.join("d1/evil"))
        .and_then(|_| std::os::unix::fs::symlink(&victim, context.join("d1/sub")))
        .map_err(|e| Fail::new("setup: symlink").seen(e))?;
    lab.build("hostile", &context)?;
    expect_eq(
        "a file outside the context, behind a link in it, is never written by COPY",
        "SAFE\n",
        std::fs::read_to_string(victim.join("file"))
            .unwrap_or_default()
            .as_str(),
    )?;
    let mode = std::fs::metadata(victim.join("file"))
        .map(|m| m.mode() & 0o777)
        .unwrap_or(0);
    expect_eq("nor are its permissions changed (0600)", 0o600, mode)?;
    ensure(!victim.join("new").exists(), || {
        Fail::new("COPY must not create files through a link to a dir outside")
            .seen(victim.join("new").display())
    })?;
    let out = lab.run(
        "--rm",
        &[
            "hostile",
            "sh",
            "-c",
            "readlink /bin; cat /x/evil /usr/bin/evil /x/sub/new; pwd",
        ],
    )?;
    expect_eq(
        "in the image: later sources replace earlier links; COPY into /bin/ follows the image's link to /usr/bin; two empty RUN layers stack; WORKDIR /bin is /usr/bin",
        "usr/bin\nPWNED\nPWNED\nPWNED2\n/usr/bin\n",
        out.as_str(),
    )
}

fn the_callers_terminal_is_out_of_reach(ctx: &Ctx) -> Outcome {
    use grader::terminal::{self, Terminal, Wired, MARKER};
    let lab = Lab::apart(ctx);
    lab.import_probe()?;
    let probe = ["grader-probe", "--probe", "tiocsti", MARKER];
    let _cleanup = lab.removed("typist");
    lab.run_detached(&["--name", "typist", "probe", "sleep", "1000"])?;
    let context = lab.context(
        "typist",
        &format!("FROM probe\nRUN {}\n", serde_json::json!(probe)),
        &[],
    )?;
    let context = context.to_string_lossy().into_owned();
    let tries: [(&str, Vec<&str>); 5] = [
        ("run", [&["run", "--rm", "probe"][..], &probe].concat()),
        (
            "run -i",
            [&["run", "-i", "--rm", "probe"][..], &probe].concat(),
        ),
        ("exec", [&["exec", "typist"][..], &probe].concat()),
        ("exec -i", [&["exec", "-i", "typist"][..], &probe].concat()),
        ("a build's RUN", vec!["build", "-t", "typed", &context]),
    ];
    for (what, args) in tries {
        // The caller's terminal: the runtime's controlling terminal, its
        // stdin and its stdout, as an interactive shell starts it.
        let terminal = Terminal::new()?;
        let command = lab.minibox(&args).into_command();
        let (status, said) =
            terminal.run(command, Wired::StdinAndStdout, Duration::from_secs(20))?;
        ensure(status.success(), || {
            Fail::new(format!("{what}: the probe should run and exit 0"))
                .seen(format!("{status}: {}", said.trim()))
        })?;
        terminal::expect_blocked(&terminal, what, &said)?;
        let found = terminal::answers(&said);
        for fd in 0..3 {
            let seen = found.get(&format!("fd {fd}")).cloned().unwrap_or_default();
            ensure(seen == "not a terminal", || {
                Fail::new(format!(
                    "{what}: the container's fd {fd} should be a pipe, not the caller's terminal"
                ))
                .expected(format!("fd {fd}: not a terminal"))
                .seen(said.trim())
            })?;
        }
    }
    terminal::control(Duration::from_secs(20))
}

/// Run `argv` on the host as uid and gid 65534 (nobody), no groups: another
/// local user of the machine. Its stdout, or why it could not start.
fn as_nobody(argv: &[&str]) -> String {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(argv[0]);
    command.args(&argv[1..]).stdin(std::process::Stdio::null());
    // SAFETY: between fork and exec only setgroups, setgid and setuid:
    // plain system calls, nothing allocated.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?;
            Ok(())
        });
    }
    match command.output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("{}: {e}", argv[0]),
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).map_or(0, |m| m.mode() & 0o7777)
}

fn the_store_is_roots_alone(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    lab.import_probe()?;
    let secret = format!("grader-password-{}", std::process::id());
    let _left = lab.removed("leaver");
    let _logged = lab.removed("logger");
    // A container's root leaves a setuid-root program in its writable
    // layer (on the host's disk), and its record keeps its -e.
    lab.minibox(&[
        "run",
        "--name",
        "leaver",
        "-e",
        &format!("DB_PASSWORD={secret}"),
        "probe",
        "grader-probe",
        "--probe",
        "setuid-copy",
        "/usr/bin/grader-probe",
        "/x",
    ])
    .output()?
    .expect_code(0, "the container should run")?;
    let id = lab
        .field("leaver", "Id")?
        .as_str()
        .unwrap_or_default()
        .to_string();
    let dir = lab.root().join("containers").join(&id);
    let (record, planted) = (dir.join("config.v1.json"), dir.join("upper/x"));
    ensure(mode_of(&planted) == 0o4755, || {
        Fail::new("setup: the container should have left a setuid copy in its writable layer")
            .seen(format!("{:o} at {}", mode_of(&planted), planted.display()))
    })?;
    // A detached container chmods its stdout, 4755, through /proc/self/fd/1.
    let logger = lab.run_detached(&[
        "--name",
        "logger",
        "probe",
        "grader-probe",
        "--probe",
        "chmod-stdout",
    ])?;
    lab.wait_status("logger", "exited")?;
    let log = lab
        .root()
        .join("containers")
        .join(&logger)
        .join("container.log");
    // What the kernel says: modes.
    let octal = |path: &Path| format!("{:o}", mode_of(path) & 0o777);
    expect_eq(
        "the mode of --root (its owner's alone)",
        "700".to_string(),
        octal(&lab.root()),
    )?;
    expect_eq(
        "the mode of a container's record",
        "600".to_string(),
        octal(&record),
    )?;
    ensure(mode_of(&log) & 0o7111 == 0, || {
        Fail::new("the container made its log a setuid program (chmod 4755 /proc/self/fd/1): it held the log itself")
            .expected("the log written by the runtime, from a pipe: mode 0600")
            .seen(format!("mode {:o}", mode_of(&log)))
    })?;
    let record_path = record.to_string_lossy().into_owned();
    let planted_path = planted.to_string_lossy().into_owned();
    let try_all = || {
        (
            as_nobody(&["cat", &record_path]),
            as_nobody(&[&planted_path, "--probe", "euid"]),
        )
    };
    let (read, ran) = try_all();
    ensure(!read.contains(&secret), || {
        Fail::new("another user (nobody) read a container's record, with its -e DB_PASSWORD")
            .seen(read.trim())
    })?;
    ensure(!ran.contains("euid: 0"), || {
        Fail::new("another user (nobody) ran the setuid-root program a container left in its writable layer: root on the host")
            .seen(ran.trim())
    })?;
    // The control: the store opened to everyone (as a store made 0755
    // was), the same two doors open...
    let opened = std::process::Command::new("chmod")
        .args(["-R", "go+rX"])
        .arg(lab.root())
        .status()
        .is_ok_and(|s| s.success());
    ensure(opened, || {
        Fail::new("the grader could not chmod the store for the control")
    })?;
    let (read, ran) = try_all();
    ensure(read.contains(&secret), || {
        Fail::new("the control: with the store open to all, nobody should read the record (the probe works)")
            .seen(read.trim())
    })?;
    let nosuid = nix::sys::statvfs::statvfs(&lab.root())
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));
    ensure(nosuid || ran.contains("euid: 0"), || {
        Fail::new("the control: with the store open to all, nobody running the planted setuid program should get euid 0")
            .seen(ran.trim())
    })?;
    // ... and the next command closes it again.
    lab.minibox(&["ps", "-a"])
        .output()?
        .expect_code(0, "ps on the opened store")?;
    expect_eq(
        "the mode of the store's containers after the next command (a store open to others is closed again)",
        "700".to_string(),
        octal(&lab.root().join("containers")),
    )?;
    // The log's control: the same probe, its stdout a file of the grader's,
    // does turn that file into a setuid program.
    let file = lab.dir.path().join("a-log");
    let me = std::env::current_exe().map_err(|e| Fail::new("cannot find the grader").seen(e))?;
    let out = std::fs::File::create(&file).map_err(|e| Fail::new("setup").seen(e))?;
    let _ = std::process::Command::new(me)
        .args(["--probe", "chmod-stdout"])
        .stdout(out)
        .status();
    ensure(mode_of(&file) & 0o4000 != 0, || {
        Fail::new("the control: chmod through /proc/self/fd/1 should reach a file held as stdout")
            .seen(format!("mode {:o}", mode_of(&file)))
    })?;
    // A store of another user's is refused.
    let theirs = lab.dir.path().join("theirs");
    std::fs::create_dir(&theirs).map_err(|e| Fail::new("setup").seen(e))?;
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534))
        .map_err(|e| Fail::new("setup").seen(e))?;
    let out = ctx
        .minibox(&["--root", &theirs.to_string_lossy(), "images"])
        .in_lab()
        .output()?;
    out.expect_code(
        125,
        "a --root that belongs to another user should be refused",
    )?;
    out.expect_one_error_line("uid 65534")
}

/// The race below runs builds until this many succeeded (each one a
/// chance for a leak) and one failed; it gives up after `RACE_GIVE_UP`
/// builds if none failed (the swap was never seen), or after `RACE_MAX`.
const RACE_SUCCESSES: usize = 30;
const RACE_GIVE_UP: usize = 60;
const RACE_MAX: usize = 150;

/// Every layer tar in the store not read yet: does one hold `secrets`?
/// Returns the first that does, and the secret found.
fn leaked_layer(
    root: &Path,
    read: &mut std::collections::BTreeSet<String>,
    secrets: &[&str],
) -> Result<Option<(String, String)>, Fail> {
    for hex in layer_tars(root) {
        if !read.insert(hex.clone()) {
            continue; // a layer's name is its content's hash: read once
        }
        let tar = root.join("layers/sha256").join(&hex).join("layer.tar");
        let bytes = std::fs::read(&tar)
            .map_err(|e| Fail::new(format!("cannot read {}", tar.display())).seen(e))?;
        for secret in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                return Ok(Some((hex, secret.to_string())));
            }
        }
    }
    Ok(None)
}

fn copy_cannot_be_raced_out_of_the_context(ctx: &Ctx) -> Outcome {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let lab = Lab::apart(ctx);
    // The host's side: a dir outside the context, with a secret in it.
    let host = lab.dir.path().join("host");
    let secret = format!("HOST-SECRET-{}", std::process::id());
    write(&host.join("host-secret.txt"), &secret)?;
    let context = lab.context(
        "raced",
        "FROM base\nCOPY sub /x/\n",
        &[
            ("sub/a", "A\n"),
            ("sub/b", "B\n"),
            ("Dockerfile.in", "FROM base\nCOPY in/a /y/\n"),
            ("Dockerfile.out", "FROM base\nCOPY sublink /y/\n"),
        ],
    )?;
    // `in` stays inside the context; `sublink` leads out of it.
    std::os::unix::fs::symlink("sub", context.join("in"))
        .and_then(|_| std::os::unix::fs::symlink(&host, context.join("sublink")))
        .map_err(|e| Fail::new("setup: symlink").seen(e))?;
    let secrets = [secret.as_str(), "host-secret.txt"];
    let mut read = std::collections::BTreeSet::new();
    let context_arg = context.to_string_lossy().into_owned();
    let build_with = |file: &str| {
        let file = context.join(file).to_string_lossy().into_owned();
        lab.minibox(&["build", "-t", "raced", "-f", &file, &context_arg])
            .output()
    };

    // Still: a link that stays inside is followed, one that leaves is refused.
    build_with("Dockerfile.in")?.expect_code(
        0,
        "COPY in/a, through a link to sub inside the context, should work",
    )?;
    let layers = lab.layers("raced")?;
    let copied = layers.last().map(|l| lab.layer_dir(l).join("layer.tar"));
    let entries = tar_entries(&copied.unwrap_or_default())?;
    expect_eq(
        "COPY in/a /y/ (in -> sub): the layer holds sub/a as y/a",
        Some(&('0', 2)),
        entries.get("y/a"),
    )?;
    let out = build_with("Dockerfile.out")?;
    out.expect_code(
        125,
        "COPY sublink (a link to a dir outside the context) is refused",
    )?;
    out.expect_one_error_line("outside")?;

    // The race: `sub` and `sublink` swap places over and over while COPY
    // reads `sub`.
    let stop = AtomicBool::new(false);
    let exchanges = AtomicUsize::new(0);
    let (sub, sublink) = (context.join("sub"), context.join("sublink"));
    std::thread::scope(|scope| {
        // The swapper stops when this scope is left, however it is left.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop_swapper = StopOnDrop(&stop);
        let swapper = scope.spawn(|| {
            use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
            while !stop.load(Ordering::SeqCst) {
                // renameat2(RENAME_EXCHANGE): both names stay, their
                // inodes trade places in one step.
                renameat2(
                    AT_FDCWD,
                    &sub,
                    AT_FDCWD,
                    &sublink,
                    RenameFlags::RENAME_EXCHANGE,
                )?;
                exchanges.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), nix::Error>(())
        });
        let (mut builds, mut failed) = (0, 0);
        loop {
            let done = failed >= 1 && builds - failed >= RACE_SUCCESSES;
            let no_swap_seen = failed == 0 && builds >= RACE_GIVE_UP;
            if done || no_swap_seen || builds >= RACE_MAX || swapper.is_finished() {
                break;
            }
            let out = build_with("Dockerfile")?;
            builds += 1;
            if let Some((layer, found)) = leaked_layer(&lab.root(), &mut read, &secrets)? {
                return Err(Fail::new(format!(
                    "build {builds} of `COPY sub /x/`, `sub` being swapped with a link to a dir outside the context: no layer may hold a file from outside"
                ))
                .expected("COPY reads only what is beneath the context")
                .seen(format!(
                    "layers/sha256/{layer}/layer.tar holds `{found}` ({failed} of the {builds} builds failed, `{}`)",
                    out.summary()
                )));
            }
            if out.code() == Some(125) {
                out.expect_one_error_line("sub")?;
                failed += 1;
                continue;
            }
            out.expect_code(0, "COPY sub, while sub is swapped with a link out: the build succeeds with sub's own files, or fails with one line")?;
            let layers = lab.layers("raced")?;
            let copied = layers.last().map(|l| lab.layer_dir(l).join("layer.tar"));
            let entries: Vec<String> = tar_entries(&copied.unwrap_or_default())?
                .into_iter()
                .filter(|(_, (kind, _))| *kind != '5')
                .map(|(name, (kind, size))| match kind {
                    '0' => format!("{name}: a file of {size} bytes"),
                    '2' => format!("{name}: a symlink"),
                    other => format!("{name}: tar type {other}"),
                })
                .collect();
            expect_eq(
                &format!("build {builds}, `sub` being swapped, succeeded: then it copied sub's own files"),
                vec![
                    "x/a: a file of 2 bytes".to_string(),
                    "x/b: a file of 2 bytes".to_string(),
                ],
                entries,
            )?;
        }
        drop(stop_swapper);
        let swapped = match swapper.join() {
            Ok(Ok(())) => exchanges.load(Ordering::Relaxed),
            Ok(Err(e)) => {
                return Err(
                    Fail::new("setup: renameat2(RENAME_EXCHANGE) of sub and sublink").seen(e),
                )
            }
            Err(_) => return Err(Fail::new("setup: the swapper thread panicked")),
        };
        ensure(swapped > 0 && failed > 0, || {
            Fail::new(
                "the swapper never hit the window: the race proves nothing unless some builds met the link (and failed)",
            )
            .expected("at least one of the builds fails with one line saying sub is outside the context")
            .seen(format!("{builds} builds, {failed} failed; the swapper exchanged sub and sublink {swapped} times"))
        })?;
        ensure(builds - failed >= RACE_SUCCESSES, || {
            Fail::new("COPY of a real dir must still work while the context changes")
                .expected(format!("{RACE_SUCCESSES} builds succeed with sub's own files, the link met by about half of them"))
                .seen(format!("{failed} of the {builds} builds failed"))
        })
    })
}
