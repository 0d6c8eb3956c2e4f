//! Graded checks for step 08: images out of the store and in (OCI image
//! layout, docker-archive, a registry).
//!
//! Compiled into `lesson-08` and `solution-08`. The first checks grade one
//! exercise each: the grader calls the learner's function itself, on a
//! store it filled with the runtime's own `build`, and reads the result
//! with its own code (sha256 of every blob file, the JSON by hand). Then
//! the registry exercises against a real distribution registry (Debian's
//! docker-registry), started by the check in a lab network namespace of its
//! own, every request seen through a recording relay of the grader's. Then
//! the runtime as a whole against the real tools (umoci, skopeo, podman,
//! the registry), each skipped with one line where it is missing.

use grader::fake_server::FakeServer;
use grader::process::{Invocation, Output};
use grader::registry::Registry;
use grader::todo::{call, call_in_netns};
use grader::tools::{skopeo, umoci, Podman};
use grader::{ensure, expect_eq, Check, Ctx, Fail, Lab, Needs, Outcome, Requires};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use step04::digest::Digest;
use step04::store::Store;
use step08::blobs::{BlobSource, Compression};
use step08::http::Registry as Client;
use step08::progress::Progress;
use step08::pull::Repository;

const NEEDS_REGISTRY: Requires = Requires::All(&[Requires::Registry, Requires::Skopeo]);
const REGISTRY_AND_PODMAN: Requires = Requires::All(&[Requires::Registry, Requires::Podman]);

fn main() {
    grader::main(
        grader::step!("08-distribution", Needs::Root),
        vec![
            // One exercise each: the grader calls the function itself.
            Check { name: "manifest_describes_the_image", points: 3, section: "descriptors-and-the-manifest",
                hint: "manifest::manifest describes an image by its blobs: the config (its digest is the image id, its size the config's bytes as stored) and one uncompressed layer tar per diff_id, bottom first, each with its media type, digest and size; schemaVersion 2 and the manifest's own media type.",
                more: "oci_spec::image::{ImageManifestBuilder, Descriptor::new, MediaType::{ImageManifest, ImageConfig, ImageLayer}}; Store::image_bytes, Store::image (rootfs.diff_ids), Store::layer_tar, std::fs::metadata(..).len(); blobs::oci_digest.",
                shape: "1. the config's bytes (their length) and the parsed config\n2. for each diff_id: a layer descriptor (tar media type, the layer tar's size, the diff_id)\n3. a builder: schema 2, media type, config descriptor, layers; build",
                requires: Requires::Nothing, run: manifest_describes_the_image },
            Check { name: "blobs_are_verified_as_they_stream", points: 4, section: "a-blob-is-trusted-by-its-digest",
                hint: "verify::copy_verified passes the bytes on while it hashes them, and says Ok only when there were exactly the promised number and they hash to the promised digest; a stream longer than promised is refused without reading it to its end; every refusal names the digest expected, and bytes that hash wrong the digest that came too.",
                more: "sha2::Sha256 (new, update, finalize); step04::digest::Digest::from_sha256; Read::take(size + 1) bounds the read; Write::write_all; blobs::digest_of(expected), expected.size(); io::ErrorKind::Interrupted is no error.",
                shape: "1. the digest wanted, the size promised\n2. loop: read into a buffer from a reader limited to size + 1 bytes; more than size so far: error\n3.   hash the bytes, write them on\n4. at the end: fewer than size: error; the hash differs: error naming both\n5. Ok(bytes copied)",
                requires: Requires::Nothing, run: blobs_are_verified_as_they_stream },
            Check { name: "layers_have_two_digests", points: 3, section: "a-layer-has-two-digests",
                hint: "layers::import takes a layer blob as the layer the config names: a gzip'd blob is decompressed, the tar inside must hash to the diff_id, and only then does it enter the store; a tar that hashes to something else leaves nothing behind; zstd is one line.",
                more: "flate2::read::GzDecoder; Store::temp_dir (staging, removed on drop), Store::has_layer, Store::add_layer (moves the tar in); step04::digest::diff_id; blobs::Compression.",
                shape: "1. the store has diff_id: done\n2. a staging dir; decompress (or copy) the blob into a tar file there\n3. hash the tar: not diff_id: error naming both\n4. add_layer(the tar)",
                requires: Requires::Nothing, run: layers_have_two_digests },
            Check { name: "layout_is_written_for_every_reader", points: 4, section: "the-oci-image-layout",
                hint: "layout::write makes an OCI image layout: oci-layout (1.0.0), blobs/sha256/<hex> whose bytes hash to their names (configs, manifests, layer tars, each once however many images share it), and index.json listing one manifest descriptor per image, with the tag and the whole name as annotations.",
                more: "manifest::manifest; serde_json::to_vec of the manifest (its digest is of those bytes); Descriptor::new(MediaType::ImageManifest, ..) and set_annotations; ImageIndexBuilder (schema_version 2, manifests), OciLayoutBuilder; Store::image_bytes, Store::layer_tar, std::fs::copy; layout::REF_NAME, layout::IMAGE_NAME.",
                shape: "1. mkdir blobs/sha256\n2. per image: its manifest; write config, layer tars and the manifest's JSON under blobs/sha256/<hex> (skip a file that is there)\n3.   a descriptor of the manifest, annotated with the tag and NAME:TAG when named\n4. index.json with the descriptors; oci-layout",
                requires: Requires::Nothing, run: layout_is_written_for_every_reader },
            Check { name: "layout_is_read_and_checked", points: 4, section: "the-oci-image-layout",
                hint: "layout::read follows index.json to every image manifest (through a nested index too), trusting no blob it has not verified against its descriptor, and names each image from its annotations; a directory that is not a layout, an index naming nothing, or a manifest blob that was changed is refused.",
                more: "oci_spec::image::{OciLayout::from_file, ImageIndex::from_file/from_reader, ImageManifest::from_reader}; blobs::LayoutBlobs(dir).open(descriptor) with verify::copy_verified into a Vec; blobs::is_index / is_manifest on descriptor.media_type().to_string(); descriptor.annotations().",
                shape: "1. oci-layout: version 1.0.0, or an error\n2. a stack of descriptors from index.json's manifests\n3. pop one: read its blob verified; an index: push its entries of this platform (or of none), last first, so they pop in its order; a manifest: parse, name it, keep it\n4. nothing found: an error",
                requires: Requires::Nothing, run: layout_is_read_and_checked },
            Check { name: "fetch_takes_an_image_top_down", points: 4, section: "fetching-top-down",
                hint: "fetch::image verifies the config first, then each layer blob it does not have yet, each taken in as the diff_id at its position; the config is stored byte for byte (its digest is the image id); a count mismatch or a bad blob makes no image.",
                more: "BlobSource::open(descriptor); verify::copy_verified into a Vec (config) or a staging file (layers); serde_json::from_slice::<step04::image::ImageConfig>; Store::has_layer, Store::temp_dir, Store::pin; blobs::compression(descriptor.media_type()); layers::import; Store::put_image_bytes.",
                shape: "1. the config: open, copy verified into memory, parse; its diff_ids count = the manifest's layers\n2. for each (layer descriptor, diff_id): in the store: skip; else open, copy verified into a staging file, layers::import\n3. put_image_bytes(the config's bytes)",
                requires: Requires::Nothing, run: fetch_takes_an_image_top_down },
            Check { name: "pull_resolves_tags_and_indexes", points: 4, section: "pulling-a-sequence-of-gets",
                hint: "pull::resolve asks the registry for the manifest of a tag with an Accept of every manifest and index type, hashes the exact bytes that came, follows an index to this platform's manifest by digest, and refuses bytes that do not hash to the digest asked for or to the Docker-Content-Digest the registry claims; Repository::open GETs a blob.",
                more: "Registry::request(\"GET\", \"/v2/NAME/manifests/REF\", &[(\"Accept\", blobs::ACCEPT_MANIFESTS)], Body::Empty); Response::header(\"content-type\"), header(\"docker-content-digest\"), bytes(blobs::DOCUMENT_LIMIT), error(..); blobs::is_index, blobs::platform; ImageIndex::from_reader, ImageManifest::from_reader; step04::digest::of_bytes.",
                shape: "1. GET the manifest by the reference: 404: not found; other non-200: the registry's error\n2. hash the bytes; by digest: must equal; a Docker-Content-Digest: must equal\n3. an index: pick this platform's entry, GET again by its digest\n4. parse the manifest; return it and its digest",
                requires: NEEDS_REGISTRY, run: pull_resolves_tags_and_indexes },
            Check { name: "push_uploads_mounts_and_skips", points: 5, section: "pushing-blobs-then-the-manifest",
                hint: "push::push_blob checks with HEAD, mounts from another repository when it knows one, else opens an upload (POST, 202, Location), sends the blob in one PUT ?digest= or, above the chunk size, in PATCHes with Content-Range, and closes it with PUT ?digest=; push::push sends every blob, then the manifest under the tag.",
                more: "Registry::request with \"HEAD\", \"POST\" (…/blobs/uploads/ or ?mount=DIGEST&from=REPO), \"PATCH\" (headers Content-Type application/octet-stream, Content-Range START-END, Body::File(&mut file, len)), \"PUT\"; Response::header(\"location\"); File::seek; push::chunk_size; manifest::manifest; Store::image_bytes, Store::temp_dir.",
                shape: "push_blob: 1. HEAD: 200: Exists 2. POST (with mount): 201: Mounted; 202: Location 3. small: PUT Location+digest with the file; large: per chunk PATCH Location with its range, the next Location from the answer; then PUT Location+digest 4. 201: Uploaded\npush: 1. the manifest 2. push_blob each layer (its tar), then the config (staged to a file) 3. PUT the manifest JSON under the tag 4. its digest",
                requires: Requires::Registry, run: push_uploads_mounts_and_skips },
            // The runtime as a whole, with the tools of the rest of the world.
            Check { name: "umoci_and_skopeo_read_a_saved_layout", points: 4, section: "what-minibox-does",
                hint: "save --format oci writes a layout that umoci unpacks (it checks every digest and diff_id) to the image's files, whiteouts applied, and that skopeo inspects and copies, listing the layers minibox's inspect lists.",
                more: "The whole of layout::write, manifest::manifest; the layer tars are the store's own, byte for byte.",
                shape: "1. build a three-layer image (a file added, one removed, one changed) 2. save --format oci 3. umoci unpack: the files as a container sees them 4. skopeo inspect: the same layers; skopeo copy to another layout: works",
                requires: Requires::All(&[Requires::Umoci, Requires::Skopeo]), run: umoci_and_skopeo_read_a_saved_layout },
            Check { name: "podman_runs_a_saved_archive", points: 4, section: "what-minibox-does",
                hint: "save (the docker format) writes an archive podman loads with the same diff_ids as minibox's inspect, and runs: its CMD prints what it printed under minibox.",
                more: "layout::write and manifest::manifest again: podman reads the OCI index and docker's manifest.json the given code adds.",
                shape: "1. build an image with a CMD 2. save -o FILE 3. podman load -i FILE 4. podman image inspect: RootFS.Layers = minibox's 5. podman run --rm: the CMD's output",
                requires: Requires::Podman, run: podman_runs_a_saved_archive },
            Check { name: "podman_archives_load_into_minibox", points: 4, section: "what-minibox-does",
                hint: "load takes podman's own archives, docker-archive (layers as <diff_id>.tar, links) and oci-archive: the same image id and diff_ids as podman's, and the image runs.",
                more: "layout::read (oci-archive), fetch::image, verify::copy_verified and layers::import (both forms).",
                shape: "1. podman build a three-layer image 2. podman save, both formats 3. minibox load each: id and layers = podman's 4. run it: its CMD's output",
                requires: Requires::Podman, run: podman_archives_load_into_minibox },
            Check { name: "push_then_podman_and_skopeo_pull", points: 5, section: "what-minibox-does",
                hint: "An image minibox pushes is what skopeo inspects and podman pulls: the same layers and image id, and it runs under podman.",
                more: "push::push (blobs then the manifest), push::push_blob, manifest::manifest.",
                shape: "1. build, tag HOST:PORT/NAME:TAG, push 2. skopeo inspect docker://: its layers 3. podman pull: RootFS.Layers and Id = minibox's 4. podman run: the CMD's output",
                requires: REGISTRY_AND_PODMAN, run: push_then_podman_and_skopeo_pull },
            Check { name: "pull_what_podman_pushed", points: 5, section: "what-minibox-does",
                hint: "An image podman builds and pushes (gzip'd layers) pulls into minibox with podman's image id and diff_ids, each layer verified twice (the gzip blob, the tar inside), and runs; a second pull fetches no layer again.",
                more: "pull::resolve, Repository::open, fetch::image, layers::import with Compression::Gzip.",
                shape: "1. podman build, push to the lab's registry 2. minibox pull: id and layers = podman's 3. run: the CMD's output 4. pull again: no blob GET",
                requires: REGISTRY_AND_PODMAN, run: pull_what_podman_pushed },
            Check { name: "tampered_blob_is_refused", points: 4, section: "a-blob-is-trusted-by-its-digest",
                hint: "A registry that serves a layer whose bytes differ from its digest gets a refusal in one line naming the digest, and the store is left as it was: no image, no layer, nothing in staging. The same pull of the unchanged blob works.",
                more: "verify::copy_verified on each layer in fetch::image; nothing reaches the store before the check.",
                shape: "1. push an image 2. change one byte of its layer in the registry's storage 3. pull into a fresh store: exit 125, one line, store empty 4. restore the byte: the pull works",
                requires: Requires::Registry, run: tampered_blob_is_refused },
            Check { name: "the_layering_experiment_travels", points: 4, section: "the-experiment-through-a-registry",
                hint: "The blog's two Dockerfiles, built by minibox, pushed, pulled by podman: 8 and 3 layers, the first two shared, and podman sees exactly minibox's diff_ids; the second push mounts or skips the shared layers instead of sending them again.",
                more: "push::push_blob's HEAD (Exists) within a repository and mount (Mounted) across repositories.",
                shape: "1. build origin and optimized 2. push both (two repositories) 3. podman pull both: layers = minibox's, 8 and 3, first two equal 4. the second push sent no shared layer's bytes",
                requires: REGISTRY_AND_PODMAN, run: the_layering_experiment_travels },
            Check { name: "bad_input_is_one_line", points: 4, section: "when-it-goes-wrong",
                hint: "A truncated archive, a layout whose manifest names a missing blob, a registry that answers 500, one that never answers, and a name that is no reference: each is one line and exit status 125, and the store holds no new image, layer or staging file.",
                more: "Errors returned with `?`, never unwrap; verify::copy_verified's size check; the given client's timeout (MINIBOX_REGISTRY_TIMEOUT); Store::temp_dir guards removed on drop.",
                shape: "1. each bad input in turn 2. exit 125, one line on stderr, naming what was wrong 3. the store as it was",
                requires: Requires::Registry, run: bad_input_is_one_line },
        ],
    );
}

// --- Helpers ---------------------------------------------------------------

fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::parse(&format!("sha256:{}", sha256_hex(bytes))).expect("a digest")
}

fn setup(e: impl std::fmt::Display) -> Fail {
    Fail::new("the grader could not set up the check").seen(e)
}

fn read(path: &Path) -> Result<Vec<u8>, Fail> {
    std::fs::read(path).map_err(|e| Fail::new(format!("cannot read {}", path.display())).seen(e))
}

/// Lists every path under bin, etc, greeting and hello.txt, one per line,
/// as `find bin etc greeting hello.txt` would; symbolic links are listed,
/// never followed.
const WALK: &str = r#"cd / && walk() { for f in "$@"; do [ -e "$f" ] || [ -L "$f" ] || continue; echo "$f"; if [ -d "$f" ] && [ ! -L "$f" ]; then walk "$f"/* "$f"/.[!.]* "$f"/..?*; fi; done; }; walk bin etc greeting hello.txt"#;

/// A store the runtime built three layers into (`app:1`, FROM base, a
/// file added, one removed, one changed), and its image id.
const APP: &str = "FROM base\nCOPY hello.txt /hello.txt\nRUN rm /etc/motd 2>/dev/null; echo changed > /etc/hostname.lab\nRUN echo made-by-minibox > /greeting\nCMD [\"cat\", \"/greeting\"]\n";

fn app_image(lab: &Lab, tag: &str) -> Result<Digest, Fail> {
    let context = lab.context(
        &format!("ctx-{}", tag.replace([':', '/'], "-")),
        APP,
        &[("hello.txt", "hello\n")],
    )?;
    lab.build(tag, &context)?;
    Digest::parse(&lab.image_id(tag)?).map_err(setup)
}

fn store_of(lab: &Lab) -> Result<Store, Fail> {
    Store::open(&lab.root()).map_err(setup)
}

fn layers_of(store: &Store, id: &Digest) -> Result<Vec<Digest>, Fail> {
    Ok(store.image(id).map_err(setup)?.rootfs.diff_ids)
}

/// Everything under `dir` (relative paths), for "nothing was left".
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                if p.is_dir() && !p.is_symlink() {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The store's images, layers and staging files: what a failed command
/// must leave unchanged.
fn store_state(root: &Path) -> Vec<String> {
    let mut state = Vec::new();
    for dir in ["images/sha256", "layers/sha256", "tmp"] {
        for f in files_under(&root.join(dir)) {
            if !f.contains('/') {
                state.push(format!("{dir}/{f}"));
            }
        }
    }
    state
}

/// A client of the learner's given HTTP code, quiet.
fn client(address: &str) -> Result<Client, Fail> {
    Client::new(address, true, Arc::new(Progress::shown(false))).map_err(setup)
}

/// `minibox --root ROOT ARGS` in the registry's lab.
fn mb(lab: &Lab, registry: &Registry, args: &[&str]) -> Invocation {
    let root = lab.root().to_string_lossy().into_owned();
    let mut full = vec!["--root", root.as_str()];
    full.extend_from_slice(args);
    lab.ctx.minibox(&full).in_netns(&registry.netns())
}

/// A minibox command that must succeed; its stdout.
fn ok(invocation: Invocation, why: &str) -> Result<String, Fail> {
    let out = invocation.output()?;
    out.expect_code(0, why)?;
    Ok(out.stdout_text())
}

/// The image's diff_ids as minibox's `inspect` prints them.
fn minibox_layers(lab: &Lab, image: &str) -> Result<Vec<String>, Fail> {
    lab.layers(image)
}

fn json_strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// --- A relay that records what a client asks a registry ---------------------

/// One request through the relay: `POST /v2/app/blobs/uploads/` and the
/// status the registry answered; the request's headers as sent.
#[derive(Debug, Clone)]
struct Seen {
    /// Which connection it was, in the order accepted (the order the
    /// client asked in; the relay may finish them in another).
    order: usize,
    line: String,
    headers: String,
    status: u16,
}

/// A relay between the learner's client and the registry, in the lab:
/// every request passes through unchanged, and its first line, headers and
/// answer's status are kept. The registry builds its Location URLs from the
/// Host the client sent, so uploads keep going through the relay.
struct Relay {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections accepted so far; `seen` catches up when each ends.
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    _acceptor: std::thread::JoinHandle<()>,
}

impl Relay {
    fn start(registry: &Registry) -> Result<Relay, Fail> {
        Relay::with(registry, false)
    }

    /// A relay whose answers to manifest PUTs carry a Docker-Content-Digest
    /// of zeros: a registry that stored something else than was sent.
    fn lying(registry: &Registry) -> Result<Relay, Fail> {
        Relay::with(registry, true)
    }

    fn with(registry: &Registry, lie: bool) -> Result<Relay, Fail> {
        let listener = registry.lab().listen("10.77.0.9:0")?;
        let address = listener.local_addr().map_err(setup)?.to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let upstream = registry.address().to_string();
        let netns = registry.netns();
        let log = seen.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let acceptor = std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let order = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(server) = grader::netlab::connect_in(
                    &netns,
                    &upstream,
                    std::time::Duration::from_secs(10),
                ) else {
                    break;
                };
                let log = log.clone();
                std::thread::spawn(move || relay(order, client, server, log, lie));
            }
        });
        Ok(Relay {
            address,
            seen,
            accepted,
            _acceptor: acceptor,
        })
    }

    /// Every request so far, once each connection accepted has ended (the
    /// client may return before the relay's side of it closes).
    fn seen(&self) -> Vec<Seen> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            let accepted = self.accepted.load(std::sync::atomic::Ordering::SeqCst);
            if seen.len() >= accepted || std::time::Instant::now() > deadline {
                let mut seen = seen;
                seen.sort_by_key(|s| s.order);
                return seen;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn clear(&self) {
        let _ = self.seen();
        self.seen.lock().unwrap().clear();
        self.accepted.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

fn relay(
    order: usize,
    client: std::net::TcpStream,
    server: std::net::TcpStream,
    log: Arc<Mutex<Vec<Seen>>>,
    lie: bool,
) {
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Client -> registry, keeping the head of the request.
    let up = std::thread::spawn(move || {
        let mut head = Vec::new();
        let mut buf = [0u8; 16384];
        let mut head_done = false;
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !head_done {
                head.extend_from_slice(&buf[..n]);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    head.truncate(end);
                    head_done = true;
                }
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(std::net::Shutdown::Write);
        String::from_utf8_lossy(&head).into_owned()
    });
    // Registry -> client, keeping the status.
    let mut s_read = server;
    let mut c_write = client;
    let mut first = Vec::new();
    let mut buf = [0u8; 16384];
    // A lying relay holds the answer's head until it is whole, to rewrite it.
    let mut held: Option<Vec<u8>> = lie.then(Vec::new);
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if first.len() < 64 {
            first.extend_from_slice(&buf[..n.min(64)]);
        }
        if let Some(head) = held.as_mut() {
            head.extend_from_slice(&buf[..n]);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let mut answer =
                lie_about_manifest(&String::from_utf8_lossy(&head[..end])).into_bytes();
            answer.extend_from_slice(&head[end..]);
            held = None;
            if c_write.write_all(&answer).is_err() {
                break;
            }
            continue;
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if let Some(head) = held {
        let _ = c_write.write_all(&head);
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let head = up.join().unwrap_or_default();
    let status = String::from_utf8_lossy(&first)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    log.lock().unwrap().push(Seen {
        order,
        line: line
            .rsplit_once(' ')
            .map(|(l, _)| l)
            .unwrap_or(line)
            .to_string(),
        headers: headers.to_string(),
        status,
    });
}

/// The head of an answer to a manifest PUT (201, Location .../manifests/),
/// its Docker-Content-Digest replaced by zeros; any other head as it is.
fn lie_about_manifest(head: &str) -> String {
    let is_manifest = head.starts_with("HTTP/1.1 201")
        && head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("location:") && l.contains("/manifests/"));
    if !is_manifest {
        return head.to_string();
    }
    head.split("\r\n")
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("docker-content-digest:") {
                format!("Docker-Content-Digest: sha256:{}", "0".repeat(64))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The requests as `METHOD PATH -> STATUS`, upload state tokens cut.
fn requests(seen: &[Seen]) -> String {
    seen.iter()
        .map(|s| {
            let line = match s.line.split_once('?') {
                Some((path, query)) => {
                    let kept: Vec<&str> = query
                        .split('&')
                        .filter(|kv| !kv.starts_with("_state="))
                        .collect();
                    if kept.is_empty() {
                        path.to_string()
                    } else {
                        format!("{path}?{}", kept.join("&"))
                    }
                }
                None => s.line.clone(),
            };
            format!("{line} -> {}", s.status)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// --- One exercise each -------------------------------------------------------

fn manifest_describes_the_image(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let id = app_image(&lab, "app:1")?;
    let store = store_of(&lab)?;
    let manifest = call("manifest::manifest", || {
        step08::manifest::manifest(&store, &id)
    })?
    .map_err(|e| {
        Fail::new("manifest::manifest of a stored image should succeed").seen(format!("{e:#}"))
    })?;
    let seen = serde_json::to_value(&manifest).map_err(setup)?;
    let config = read(
        &lab.root()
            .join("images/sha256")
            .join(format!("{}.json", id.hex())),
    )?;
    let mut layers = Vec::new();
    for diff_id in layers_of(&store, &id)? {
        let tar = read(&lab.layer_dir(diff_id.as_str()).join("layer.tar"))?;
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{}", sha256_hex(&tar)),
            "size": tar.len(),
        }));
    }
    let expected = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": id.as_str(),
            "size": config.len(),
        },
        "layers": layers,
    });
    expect_eq(
        "the manifest of app:1 (config: the stored config's digest and size; layers bottom first: each layer.tar's sha256 and size, uncompressed)",
        serde_json::to_string_pretty(&expected).unwrap_or_default(),
        serde_json::to_string_pretty(&seen).unwrap_or_default(),
    )?;
    // A config stored as it came from elsewhere (load, pull): spaces and a
    // field minibox does not know. Its size is its bytes', not those of
    // minibox's own way of writing a config.
    let tar = layer_tar("imported.txt", "from elsewhere\n");
    let staged = lab.dir.path().join("imported.tar");
    std::fs::write(&staged, &tar).map_err(setup)?;
    let diff_id = store.add_layer(&staged).map_err(setup)?;
    let foreign = format!(
        "{{ \"architecture\": \"amd64\", \"os\": \"linux\", \"x-elsewhere\": true,\n  \"rootfs\": {{ \"type\": \"layers\", \"diff_ids\": [\"{diff_id}\"] }} }}"
    );
    let foreign_id = store.put_image_bytes(foreign.as_bytes()).map_err(setup)?;
    let got = call("manifest::manifest", || {
        step08::manifest::manifest(&store, &foreign_id)
    })?
    .map_err(|e| {
        Fail::new("manifest::manifest of an image taken in from elsewhere").seen(format!("{e:#}"))
    })?;
    expect_eq(
        "the config descriptor of an image whose config came from elsewhere: its digest and the size of its bytes as stored",
        format!("{foreign_id} {}", foreign.len()),
        format!("{} {}", got.config().digest(), got.config().size()),
    )?;
    let missing = Digest::parse(&format!("sha256:{}", "0".repeat(64))).map_err(setup)?;
    let got = call("manifest::manifest", || {
        step08::manifest::manifest(&store, &missing)
    })?;
    ensure(got.is_err(), || {
        Fail::new("the manifest of an image the store lacks is an error").seen(format!("{got:?}"))
    })
}

/// A reader that yields `total` bytes of a pattern and counts what was
/// asked of it (a sender that may never stop).
struct Endless {
    given: Arc<Mutex<u64>>,
    limit: u64,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut given = self.given.lock().unwrap();
        if *given >= self.limit {
            return Ok(0);
        }
        let n = buf.len().min((self.limit - *given) as usize);
        buf[..n].fill(b'x');
        *given += n as u64;
        Ok(n)
    }
}

/// Gives its bytes a few at a time, with an EINTR between.
struct Choppy {
    bytes: Vec<u8>,
    at: usize,
    interrupt: bool,
}

impl Read for Choppy {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
        }
        let n = buf.len().min(7).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Gives its bytes, then fails once with EIO, then says end of file: a
/// reader that retries every error would see the whole blob.
struct Failing {
    bytes: Vec<u8>,
    at: usize,
    failed: bool,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.bytes.len() {
            let n = buf.len().min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        if !self.failed {
            self.failed = true;
            return Err(std::io::Error::from_raw_os_error(libc_eio()));
        }
        Ok(0)
    }
}

/// EIO, the errno of a failed read.
fn libc_eio() -> i32 {
    nix::errno::Errno::EIO as i32
}

fn descriptor(bytes: &[u8], size: u64) -> Descriptor {
    Descriptor::new(
        MediaType::ImageLayer,
        size,
        step08::blobs::oci_digest(&digest_of(bytes)),
    )
}

fn blobs_are_verified_as_they_stream(_ctx: &Ctx) -> Outcome {
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let good = descriptor(&blob, blob.len() as u64);
    // The blob as promised, through a reader that is interrupted.
    let mut out = Vec::new();
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(
            Choppy {
                bytes: blob.clone(),
                at: 0,
                interrupt: false,
            },
            &mut out,
            &good,
        )
    })?;
    let copied = got.map_err(|e| {
        Fail::new(
            "a blob whose bytes are the promised ones (read with EINTR between reads) is accepted",
        )
        .seen(format!("{e:#}"))
    })?;
    expect_eq("bytes copied", blob.len() as u64, copied)?;
    ensure(out == blob, || {
        Fail::new("`to` holds exactly the blob's bytes")
            .seen(format!("{} bytes, equal: false", out.len()))
    })?;
    // One byte changed.
    let mut tampered = blob.clone();
    tampered[1000] ^= 1;
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(&tampered[..], &mut Vec::new(), &good)
    })?;
    let why = match got {
        Ok(n) => {
            return Err(
                Fail::new("a blob with one byte changed is refused").seen(format!("Ok({n})"))
            )
        }
        Err(e) => format!("{e:#}"),
    };
    ensure(why.contains(&good.digest().to_string()), || {
        Fail::new("the refusal names the digest expected")
            .expected(good.digest().to_string())
            .seen(&why)
    })?;
    ensure(why.contains(&digest_of(&tampered).to_string()), || {
        Fail::new("the refusal names the digest that came")
            .expected(digest_of(&tampered).to_string())
            .seen(&why)
    })?;
    // Shorter than promised (a truncated download: a prefix hashes otherwise, but say why).
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(&blob[..150_000], &mut Vec::new(), &good)
    })?;
    ensure(got.is_err(), || {
        Fail::new("a blob that ends early is refused").seen(format!("{got:?}"))
    })?;
    // A shorter stream whose digest is right but the size promised is larger.
    let promised_more = descriptor(&blob, blob.len() as u64 + 1);
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(&blob[..], &mut Vec::new(), &promised_more)
    })?;
    ensure(got.is_err(), || {
        Fail::new("the right digest but fewer bytes than the descriptor's size is refused")
            .seen(format!("{got:?}"))
    })?;
    let promised_less = descriptor(&blob, blob.len() as u64 - 1);
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(&blob[..], &mut Vec::new(), &promised_less)
    })?;
    ensure(got.is_err(), || {
        Fail::new("more bytes than the descriptor's size is refused").seen(format!("{got:?}"))
    })?;
    // The promised blob, then more: the first `size` bytes hash right, but
    // a sender that goes on is not the blob.
    let mut longer = blob.clone();
    longer.extend_from_slice(b"and then some");
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(&longer[..], &mut Vec::new(), &good)
    })?;
    ensure(got.is_err(), || {
        Fail::new(
            "the whole blob followed by more bytes is refused (the sender did not send the blob)",
        )
        .seen(format!("{got:?}"))
    })?;
    // A read that fails (not EINTR) is an error, not a reason to read on.
    let failing = Failing {
        bytes: blob.clone(),
        at: 0,
        failed: false,
    };
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(failing, &mut Vec::new(), &good)
    })?;
    ensure(got.is_err(), || {
        Fail::new("a read error (EIO) while the blob streams in is an error")
            .seen(format!("{got:?}"))
    })?;
    // An endless sender: refused after little more than the size.
    let given = Arc::new(Mutex::new(0u64));
    let small = descriptor(b"tiny", 4);
    let endless = Endless {
        given: given.clone(),
        limit: 1 << 30,
    };
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(endless, &mut std::io::sink(), &small)
    })?;
    let read_from_it = *given.lock().unwrap();
    ensure(got.is_err() && read_from_it <= 1 << 20, || {
        Fail::new("a sender that never stops is refused once it passed the promised size, not read to its end")
            .expected("an error after reading about 4 bytes (at most a buffer more)")
            .seen(format!("{} after reading {read_from_it} bytes", if got.is_err() { "an error" } else { "Ok" }))
    })?;
    // Only sha256 is spoken: a sha512 descriptor is an error, not a pass.
    let odd: Descriptor = serde_json::from_value(json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": format!("sha512:{}", "ab".repeat(64)),
        "size": 4,
    }))
    .map_err(setup)?;
    let got = call("verify::copy_verified", || {
        step08::verify::copy_verified(&b"tiny"[..], &mut Vec::new(), &odd)
    })?;
    ensure(got.is_err(), || {
        Fail::new("a descriptor with a digest that is not sha256 is refused")
            .seen(format!("{got:?}"))
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in memory");
    gz.finish().expect("in memory")
}

/// A layer tar with one file.
fn layer_tar(name: &str, content: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, name, content.as_bytes())
        .expect("in memory");
    builder.into_inner().expect("in memory")
}

fn layers_have_two_digests(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let store = Store::open(&dir.path().join("root")).map_err(setup)?;
    let tar = layer_tar("two-digests.txt", "inside the gzip\n");
    let diff_id = digest_of(&tar);
    let blob = dir.path().join("blob.gz");
    std::fs::write(&blob, gzip(&tar)).map_err(setup)?;
    let got = call("layers::import", || {
        step08::layers::import(&store, &blob, Compression::Gzip, &diff_id)
    })?;
    got.map_err(|e| {
        Fail::new("a gzip'd layer whose tar hashes to the diff_id is taken in")
            .seen(format!("{e:#}"))
    })?;
    let stored = store.layer_tar(&diff_id);
    ensure(std::fs::read(&stored).ok() == Some(tar.clone()), || {
        Fail::new("the store holds the uncompressed tar as the layer diff_id")
            .expected(format!(
                "{} with the tar's {} bytes",
                stored.display(),
                tar.len()
            ))
            .seen(format!(
                "{:?} bytes",
                std::fs::metadata(&stored).map(|m| m.len()).ok()
            ))
    })?;
    ensure(
        store.layer_diff(&diff_id).join("two-digests.txt").is_file(),
        || Fail::new("the layer is unpacked, as every stored layer (Store::add_layer)"),
    )?;
    expect_eq(
        "the store's staging area (ROOT/tmp) once a layer is taken in: empty (a staging dir goes when its guard is dropped)",
        Vec::<String>::new(),
        entries_of(&dir.path().join("root/tmp")),
    )?;
    // Uncompressed, as it is.
    let tar2 = layer_tar("plain.txt", "no gzip\n");
    let diff2 = digest_of(&tar2);
    let blob2 = dir.path().join("blob.tar");
    std::fs::write(&blob2, &tar2).map_err(setup)?;
    call("layers::import", || {
        step08::layers::import(&store, &blob2, Compression::None, &diff2)
    })?
    .map_err(|e| Fail::new("an uncompressed layer is taken in as it is").seen(format!("{e:#}")))?;
    ensure(
        std::fs::read(store.layer_tar(&diff2)).ok() == Some(tar2),
        || Fail::new("the uncompressed layer's tar is stored byte for byte"),
    )?;
    // A diff_id the tar does not hash to.
    let before = store_state(&dir.path().join("root"));
    let tar3 = layer_tar("liar.txt", "not what the config says\n");
    let blob3 = dir.path().join("blob3.gz");
    std::fs::write(&blob3, gzip(&tar3)).map_err(setup)?;
    let claimed = digest_of(b"some other tar");
    let got = call("layers::import", || {
        step08::layers::import(&store, &blob3, Compression::Gzip, &claimed)
    })?;
    let why = match got {
        Ok(()) => {
            return Err(
                Fail::new("a layer whose tar does not hash to the diff_id is refused")
                    .seen("Ok(())"),
            )
        }
        Err(e) => format!("{e:#}"),
    };
    ensure(
        why.contains(claimed.as_str()) || why.contains(digest_of(&tar3).as_str()),
        || {
            Fail::new(
                "the refusal names a digest (the diff_id expected, or what the tar hashes to)",
            )
            .seen(&why)
        },
    )?;
    expect_eq(
        "the store after the refusal: as before (no layer, nothing left in tmp/)",
        before.join("\n"),
        store_state(&dir.path().join("root")).join("\n"),
    )?;
    // Already there: not read at all (the blob may even be gone).
    let gone = dir.path().join("no-such-blob");
    call("layers::import", || {
        step08::layers::import(&store, &gone, Compression::Gzip, &diff_id)
    })?
    .map_err(|e| {
        Fail::new(
            "a layer the store has already is not fetched again (the same diff_id is the same tar)",
        )
        .seen(format!("{e:#}"))
    })?;
    // zstd: one line, nothing stored.
    let tar4 = layer_tar("z.txt", "z\n");
    let diff4 = digest_of(&tar4);
    let blob4 = dir.path().join("blob.zst");
    std::fs::write(&blob4, &tar4).map_err(setup)?;
    let got = call("layers::import", || {
        step08::layers::import(&store, &blob4, Compression::Zstd, &diff4)
    })?;
    ensure(got.is_err() && !store.has_layer(&diff4), || {
        Fail::new("a zstd layer is refused (minibox has no zstd), and nothing is stored")
            .seen(format!("{got:?}"))
    })?;
    // Not gzip at all, though said so.
    let got = call("layers::import", || {
        step08::layers::import(&store, &blob4, Compression::Gzip, &diff4)
    })?;
    ensure(got.is_err() && !store.has_layer(&diff4), || {
        Fail::new("a blob said to be gzip that is not is refused, and nothing is stored")
            .seen(format!("{got:?}"))
    })
}

/// The names in a directory, sorted; none when it does not exist.
fn entries_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A file layout::write must have written.
fn written(dir: &Path, name: &str, what: &str) -> Result<Vec<u8>, Fail> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| {
        Fail::new(format!(
            "layout::write writes {name} in the layout ({what})"
        ))
        .expected(format!("a file {}", path.display()))
        .seen(e)
    })
}

/// Check a layout on disk the way a reader that trusts nothing does.
fn check_layout(dir: &Path) -> Result<Value, Fail> {
    let layout: Value = serde_json::from_slice(&written(
        dir,
        "oci-layout",
        "{\"imageLayoutVersion\":\"1.0.0\"}: what makes the directory a layout",
    )?)
    .map_err(|e| Fail::new("oci-layout is JSON").seen(e))?;
    expect_eq("oci-layout", json!({"imageLayoutVersion": "1.0.0"}), layout)?;
    for name in files_under(&dir.join("blobs/sha256")) {
        let bytes = read(&dir.join("blobs/sha256").join(&name))?;
        expect_eq(
            &format!("the sha256 of blobs/sha256/{name} (a blob is named by its digest)"),
            name.clone(),
            sha256_hex(&bytes),
        )?;
    }
    serde_json::from_slice(&written(
        dir,
        "index.json",
        "the descriptors of the images' manifests",
    )?)
    .map_err(|e| Fail::new("index.json is JSON").seen(e))
}

fn layout_is_written_for_every_reader(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let id = app_image(&lab, "app:1")?;
    // A second image sharing every layer but the last: FROM app:1 + one.
    let context = lab.context("ctx-two", "FROM app:1\nRUN echo two > /two\n", &[])?;
    lab.build("two:2", &context)?;
    let two = Digest::parse(&lab.image_id("two:2")?).map_err(setup)?;
    let store = store_of(&lab)?;
    let out = lab.dir.path().join("layout");
    std::fs::create_dir(&out).map_err(setup)?;
    let named = vec![
        step08::layout::Named {
            id: id.clone(),
            name: Some(step04::image::Reference::parse("app:1").map_err(setup)?),
        },
        step08::layout::Named {
            id: two.clone(),
            name: Some(step04::image::Reference::parse("two:2").map_err(setup)?),
        },
        step08::layout::Named {
            id: id.clone(),
            name: None,
        },
    ];
    call("layout::write", || {
        step08::layout::write(&store, &out, &named)
    })?
    .map_err(|e| {
        Fail::new("layout::write of two stored images should succeed").seen(format!("{e:#}"))
    })?;
    let index = check_layout(&out)?;
    expect_eq(
        "index.json's schemaVersion",
        json!(2),
        index["schemaVersion"].clone(),
    )?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    expect_eq(
        "index.json: one manifest descriptor per image asked for (app:1, two:2, app:1 by id)",
        3,
        manifests.len(),
    )?;
    let names: Vec<Value> = manifests
        .iter()
        .map(|m| m["annotations"]["io.containerd.image.name"].clone())
        .collect();
    expect_eq(
        "index.json's entries in the order the images were asked for, by their whole name (io.containerd.image.name; none for the image saved by id)",
        vec![json!("app:1"), json!("two:2"), Value::Null],
        names,
    )?;
    let mut all_blobs = BTreeSet::new();
    for (entry, (image, name)) in
        manifests
            .iter()
            .zip([(&id, Some("app:1")), (&two, Some("two:2")), (&id, None)])
    {
        expect_eq(
            "an index entry's mediaType",
            json!("application/vnd.oci.image.manifest.v1+json"),
            entry["mediaType"].clone(),
        )?;
        let digest = entry["digest"].as_str().unwrap_or("").to_string();
        let bytes = read(
            &out.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )?;
        expect_eq(
            &format!("the size of manifest {digest}"),
            json!(bytes.len()),
            entry["size"].clone(),
        )?;
        let manifest: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Fail::new("a manifest blob is JSON").seen(e))?;
        expect_eq(
            "the manifest's config digest is the image id",
            json!(image.as_str()),
            manifest["config"]["digest"].clone(),
        )?;
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str().map(str::to_string))
            .collect();
        let diff_ids: Vec<String> = layers_of(&store, image)?
            .iter()
            .map(|d| d.to_string())
            .collect();
        expect_eq(
            "the manifest's layers are the image's diff_ids (uncompressed tars)",
            diff_ids,
            layers.clone(),
        )?;
        all_blobs.extend(layers);
        all_blobs.insert(image.to_string());
        all_blobs.insert(digest.clone());
        let notes = entry.get("annotations").cloned().unwrap_or(Value::Null);
        match name {
            Some(name) => {
                let tag = name.split(':').nth(1).unwrap_or("");
                let full = name.to_string();
                expect_eq(
                    &format!("{name}'s index entry: the tag as org.opencontainers.image.ref.name"),
                    json!(tag),
                    notes["org.opencontainers.image.ref.name"].clone(),
                )?;
                expect_eq(
                    &format!("{name}'s index entry: the whole name as io.containerd.image.name"),
                    json!(full),
                    notes["io.containerd.image.name"].clone(),
                )?;
            }
            None => ensure(
                notes.get("org.opencontainers.image.ref.name").is_none(),
                || Fail::new("an image saved by id has no name in the index").seen(&notes),
            )?,
        }
    }
    let on_disk: BTreeSet<String> = files_under(&out.join("blobs/sha256"))
        .into_iter()
        .map(|h| format!("sha256:{h}"))
        .collect();
    expect_eq("blobs/sha256 holds each image's config, manifest and layers, each once (shared layers too), and nothing else", all_blobs, on_disk)?;
    for diff_id in layers_of(&store, &id)? {
        let ours = read(&store.layer_tar(&diff_id))?;
        let theirs = read(&out.join("blobs/sha256").join(diff_id.hex()))?;
        ensure(ours == theirs, || {
            Fail::new(format!(
                "layer {diff_id} in the layout is the store's tar, byte for byte"
            ))
        })?;
    }
    Ok(())
}

/// A layout the grader writes itself: images of the grader's own making.
struct GraderLayout {
    dir: PathBuf,
    /// (manifest digest, config digest, layer digests) per image.
    images: Vec<(String, String, Vec<String>)>,
}

fn put_blob(dir: &Path, bytes: &[u8]) -> Result<String, Fail> {
    let hex = sha256_hex(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(setup)?;
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).map_err(setup)?;
    Ok(format!("sha256:{hex}"))
}

fn grader_image(
    dir: &Path,
    files: &[(&str, &str)],
    gzipped: bool,
) -> Result<(Value, String, String, Vec<String>), Fail> {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (name, content) in files {
        let tar = layer_tar(name, content);
        diff_ids.push(format!("sha256:{}", sha256_hex(&tar)));
        let (blob, media) = if gzipped {
            (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (tar, "application/vnd.oci.image.layer.v1.tar")
        };
        let digest = put_blob(dir, &blob)?;
        layers.push((
            json!({"mediaType": media, "digest": digest, "size": blob.len()}),
            digest,
        ));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["cat", "/x"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "x-grader-field": "kept byte for byte",
    }))
    .map_err(setup)?;
    let config_digest = put_blob(dir, &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
    }))
    .map_err(setup)?;
    let digest = put_blob(dir, &manifest)?;
    let entry = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": manifest.len()});
    Ok((
        entry,
        digest,
        config_digest,
        layers.into_iter().map(|(_, d)| d).collect(),
    ))
}

fn grader_layout(dir: &Path) -> Result<GraderLayout, Fail> {
    let (mut first, d1, c1, l1) = grader_image(dir, &[("a.txt", "a\n"), ("b.txt", "b\n")], true)?;
    first["annotations"] = json!({"org.opencontainers.image.ref.name": "1", "io.containerd.image.name": "lab/first:1"});
    let (mut second, d2, c2, l2) = grader_image(dir, &[("c.txt", "c\n")], false)?;
    // The second behind a nested index (as skopeo copy --all writes), with
    // an image of another platform before it.
    second["platform"] = json!({"architecture": host_arch(), "os": "linux"});
    let (mut decoy, ..) = grader_image(dir, &[("decoy.txt", "another platform's\n")], false)?;
    decoy["platform"] = json!({"architecture": other_arch(), "os": "linux"});
    let nested = nested_index(dir, &[decoy, second], "lab/second:2")?;
    write_index(dir, &[first, nested])?;
    Ok(GraderLayout {
        dir: dir.to_path_buf(),
        images: vec![(d1, c1, l1), (d2, c2, l2)],
    })
}

/// Put an index of `entries` into the layout at `dir` as a blob, and
/// return its descriptor, named `ref_name` (as skopeo copy --all writes).
fn nested_index(dir: &Path, entries: &[Value], ref_name: &str) -> Result<Value, Fail> {
    let nested = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})).map_err(setup)?;
    let digest = put_blob(dir, &nested)?;
    Ok(
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": nested.len(),
         "annotations": {"org.opencontainers.image.ref.name": ref_name}}),
    )
}

/// Make `dir` a layout whose index.json lists `entries`.
fn write_index(dir: &Path, entries: &[Value]) -> Result<(), Fail> {
    let index = json!({"schemaVersion": 2, "manifests": entries});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).map_err(setup)?,
    )
    .map_err(setup)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(setup)
}

/// An architecture that is not this machine's.
fn other_arch() -> &'static str {
    if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
}

/// This machine's architecture as images name it (Go's GOARCH).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        arch => arch,
    }
}

fn read_layout(dir: &Path) -> Result<anyhow::Result<Vec<step08::layout::Found>>, Fail> {
    let dir = dir.to_path_buf();
    call("layout::read", move || step08::layout::read(&dir))
}

fn layout_is_read_and_checked(ctx: &Ctx) -> Outcome {
    let temp = ctx.temp_dir();
    let layout = grader_layout(&temp.path().join("good"))?;
    let found = read_layout(&layout.dir)?
        .map_err(|e| Fail::new("layout::read of a valid layout (one image, and one behind a nested index) should succeed").seen(format!("{e:#}")))?;
    expect_eq(
        "how many images layout::read finds (the first; of the nested index, only this platform's entry)",
        2,
        found.len(),
    )?;
    let seen: Vec<(Option<String>, String, String, Vec<String>)> = found
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                f.digest.to_string(),
                f.manifest.config().digest().to_string(),
                f.manifest
                    .layers()
                    .iter()
                    .map(|l| l.digest().to_string())
                    .collect(),
            )
        })
        .collect();
    let expected = vec![
        (
            Some("lab/first:1".to_string()),
            layout.images[0].0.clone(),
            layout.images[0].1.clone(),
            layout.images[0].2.clone(),
        ),
        (
            Some("lab/second:2".to_string()),
            layout.images[1].0.clone(),
            layout.images[1].1.clone(),
            layout.images[1].2.clone(),
        ),
    ];
    expect_eq(
        "the images found, in the index's order (the nested index: its entry of this platform, named as the index): (name from io.containerd.image.name, else a whole NAME:TAG ref.name; manifest digest; config; layers)",
        format!("{expected:#?}"),
        format!("{seen:#?}"),
    )?;
    // Only a tag as ref.name: no name.
    let tag_only = temp.path().join("tag-only");
    let (mut entry, ..) = grader_image(&tag_only, &[("t.txt", "t\n")], false)?;
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    // Whole names in ref.name, as skopeo writes `oci:DIR:NAME:TAG`.
    let (mut solo, ..) = grader_image(&tag_only, &[("s.txt", "s\n")], false)?;
    solo["annotations"] = json!({"org.opencontainers.image.ref.name": "solo:3"});
    let (mut pathy, ..) = grader_image(&tag_only, &[("p.txt", "p\n")], false)?;
    pathy["annotations"] = json!({"org.opencontainers.image.ref.name": "lab/pathy"});
    write_index(&tag_only, &[entry, solo, pathy])?;
    let found = read_layout(&tag_only)?.map_err(|e| {
        Fail::new("layout::read of a layout whose ref.name is a tag").seen(format!("{e:#}"))
    })?;
    expect_eq(
        "the name of an image whose only annotation is the tag `latest` (no repository: none)",
        None::<String>,
        found.first().and_then(|f| f.name.clone()),
    )?;
    expect_eq(
        "the names of images whose ref.name is a whole name (`solo:3`, `lab/pathy`)",
        vec![Some("solo:3".to_string()), Some("lab/pathy".to_string())],
        found
            .iter()
            .skip(1)
            .map(|f| f.name.clone())
            .collect::<Vec<_>>(),
    )?;
    // A nested index of three: another platform's image, one that names no
    // platform (for every platform, as containerd takes it), this one's.
    let any = temp.path().join("any-platform");
    let (mut decoy, ..) = grader_image(&any, &[("d.txt", "d\n")], false)?;
    decoy["platform"] = json!({"architecture": other_arch(), "os": "linux"});
    let (plain, d_plain, ..) = grader_image(&any, &[("n.txt", "n\n")], false)?;
    let (mut mine, d_mine, ..) = grader_image(&any, &[("o.txt", "o\n")], false)?;
    mine["platform"] = json!({"architecture": host_arch(), "os": "linux"});
    let nested = nested_index(&any, &[decoy, plain, mine], "lab/multi:3")?;
    write_index(&any, &[nested])?;
    let found = read_layout(&any)?.map_err(|e| {
        Fail::new("layout::read of a nested index with an entry of no platform")
            .seen(format!("{e:#}"))
    })?;
    expect_eq(
        "the manifests found behind a nested index of [another platform's, no platform's, this platform's]: the last two, in the index's order",
        vec![d_plain, d_mine],
        found.iter().map(|f| f.digest.to_string()).collect::<Vec<_>>(),
    )?;
    // A changed manifest blob: refused.
    let tampered = temp.path().join("tampered");
    let copy = grader_layout(&tampered)?;
    let path = tampered
        .join("blobs/sha256")
        .join(copy.images[0].0.trim_start_matches("sha256:"));
    let mut bytes = read(&path)?;
    let at = bytes.iter().position(|&b| b == b'2').unwrap_or(0);
    bytes[at] = b'3';
    std::fs::write(&path, bytes).map_err(setup)?;
    let got = read_layout(&tampered)?;
    ensure(got.is_err(), || {
        Fail::new(
            "a layout whose manifest blob no longer hashes to its descriptor's digest is refused",
        )
        .seen("Ok")
    })?;
    // No oci-layout; a wrong version; an index naming nothing.
    let bare = temp.path().join("bare");
    grader_layout(&bare)?;
    std::fs::remove_file(bare.join("oci-layout")).map_err(setup)?;
    ensure(read_layout(&bare)?.is_err(), || {
        Fail::new("a directory without an oci-layout file is not a layout: refused").seen("Ok")
    })?;
    std::fs::write(
        bare.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .map_err(setup)?;
    ensure(read_layout(&bare)?.is_err(), || {
        Fail::new("an oci-layout of version 2.0.0 is refused (only 1.0.0 is known)").seen("Ok")
    })?;
    let empty = temp.path().join("empty");
    std::fs::create_dir_all(&empty).map_err(setup)?;
    write_index(&empty, &[])?;
    ensure(read_layout(&empty)?.is_err(), || {
        Fail::new("an index that names no image is refused").seen("Ok")
    })
}

/// Blobs from memory, counting what was opened.
struct Counted {
    blobs: BTreeMap<String, Vec<u8>>,
    opened: Mutex<Vec<String>>,
}

impl BlobSource for Counted {
    fn open(&self, descriptor: &Descriptor) -> anyhow::Result<Box<dyn Read + '_>> {
        let digest = descriptor.digest().to_string();
        self.opened.lock().unwrap().push(digest.clone());
        let bytes = self
            .blobs
            .get(&digest)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no blob {digest}"))?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }
}

fn fetch_takes_an_image_top_down(ctx: &Ctx) -> Outcome {
    let temp = ctx.temp_dir();
    let dir = temp.path().join("blobs");
    let (_, manifest_digest, config_digest, layers) =
        grader_image(&dir, &[("one.txt", "1\n"), ("two.txt", "2\n")], true)?;
    let mut blobs = BTreeMap::new();
    for name in files_under(&dir.join("blobs/sha256")) {
        blobs.insert(
            format!("sha256:{name}"),
            read(&dir.join("blobs/sha256").join(&name))?,
        );
    }
    let manifest_bytes = blobs[&manifest_digest].clone();
    let manifest = ImageManifest::from_reader(&manifest_bytes[..]).map_err(setup)?;
    let root = temp.path().join("root");
    let store = Store::open(&root).map_err(setup)?;
    let source = Counted {
        blobs: blobs.clone(),
        opened: Mutex::new(Vec::new()),
    };
    let id = call("fetch::image", || {
        step08::fetch::image(&store, &source, &manifest)
    })?
    .map_err(|e| Fail::new("fetch::image of a good image should succeed").seen(format!("{e:#}")))?;
    expect_eq(
        "the image id: the digest of the config's bytes",
        config_digest.clone(),
        id.to_string(),
    )?;
    let stored = read(
        &root
            .join("images/sha256")
            .join(format!("{}.json", id.hex())),
    )?;
    ensure(stored == blobs[&config_digest], || {
        Fail::new("the config is stored byte for byte (a field minibox does not know, x-grader-field, is kept)")
            .seen(String::from_utf8_lossy(&stored).into_owned())
    })?;
    let config: Value = serde_json::from_slice(&stored).map_err(setup)?;
    for (i, diff_id) in json_strings(&config["rootfs"]["diff_ids"])
        .iter()
        .enumerate()
    {
        let d = Digest::parse(diff_id).map_err(setup)?;
        ensure(store.has_layer(&d), || {
            Fail::new(format!("layer {i} ({diff_id}) is in the store"))
        })?;
    }
    ensure(
        source.opened.lock().unwrap().first() == Some(&config_digest),
        || {
            Fail::new("the config is fetched (and verified) first")
                .seen(format!("{:?}", source.opened.lock().unwrap()))
        },
    )?;
    // Again, from another manifest naming the same layers: nothing fetched
    // but the config.
    let again = Counted {
        blobs: blobs.clone(),
        opened: Mutex::new(Vec::new()),
    };
    call("fetch::image", || {
        step08::fetch::image(&store, &again, &manifest)
    })?
    .map_err(|e| Fail::new("fetch::image of an image the store has").seen(format!("{e:#}")))?;
    let opened = again.opened.lock().unwrap().clone();
    ensure(opened.iter().all(|d| !layers.contains(d)), || {
        Fail::new("layers the store has are not fetched again").seen(format!("opened {opened:?}"))
    })?;
    // A tampered layer: an error, and no image (into a fresh store).
    let root2 = temp.path().join("root2");
    let store2 = Store::open(&root2).map_err(setup)?;
    let mut bad = blobs.clone();
    if let Some(layer) = bad.get_mut(&layers[1]) {
        let n = layer.len();
        layer[n / 2] ^= 0x40;
    }
    let source = Counted {
        blobs: bad,
        opened: Mutex::new(Vec::new()),
    };
    let got = call("fetch::image", || {
        step08::fetch::image(&store2, &source, &manifest)
    })?;
    ensure(got.is_err(), || {
        Fail::new("an image with a tampered layer blob is refused").seen(format!("{got:?}"))
    })?;
    ensure(files_under(&root2.join("images/sha256")).is_empty(), || {
        Fail::new("after a refused fetch, the store has no image")
            .seen(format!("{:?}", files_under(&root2.join("images/sha256"))))
    })?;
    ensure(files_under(&root2.join("tmp")).is_empty(), || {
        Fail::new("after a refused fetch, nothing is left in the store's tmp/")
            .seen(format!("{:?}", files_under(&root2.join("tmp"))))
    })?;
    // A tampered config: refused before any layer is opened.
    let mut bad = blobs.clone();
    if let Some(c) = bad.get_mut(&config_digest) {
        c[5] ^= 1;
    }
    let source = Counted {
        blobs: bad,
        opened: Mutex::new(Vec::new()),
    };
    let got = call("fetch::image", || {
        step08::fetch::image(&store2, &source, &manifest)
    })?;
    let opened = source.opened.lock().unwrap().clone();
    ensure(got.is_err() && opened.len() == 1, || {
        Fail::new("a config that does not hash to its digest is refused before anything it lists is fetched").seen(format!("{} after opening {opened:?}", if got.is_err() { "an error" } else { "Ok" }))
    })?;
    // One layer fewer in the manifest than diff_ids in the config.
    let mut short: Value = serde_json::from_slice(&manifest_bytes).map_err(setup)?;
    short["layers"].as_array_mut().map(|l| l.pop());
    let short: ImageManifest = serde_json::from_value(short).map_err(setup)?;
    let source = Counted {
        blobs: blobs.clone(),
        opened: Mutex::new(Vec::new()),
    };
    let got = call("fetch::image", || {
        step08::fetch::image(&store2, &source, &short)
    })?;
    ensure(got.is_err(), || {
        Fail::new("a manifest with fewer layers than its config's diff_ids is refused")
            .seen(format!("{got:?}"))
    })?;
    ensure(files_under(&root2.join("images/sha256")).is_empty(), || {
        Fail::new("no image after the refusals")
    })?;
    // The same short manifest against the store that has every layer: the
    // count still decides, not what happens to be stored.
    let got = call("fetch::image", || {
        step08::fetch::image(&store, &source, &short)
    })?;
    ensure(got.is_err(), || {
        Fail::new("a manifest with fewer layers than its config's diff_ids is refused, even when the store has every layer")
            .seen(format!("{got:?}"))
    })?;
    // One layer more than the config lists.
    let mut long: Value = serde_json::from_slice(&manifest_bytes).map_err(setup)?;
    let extra = long["layers"][0].clone();
    if let Some(layers) = long["layers"].as_array_mut() {
        layers.push(extra);
    }
    let long: ImageManifest = serde_json::from_value(long).map_err(setup)?;
    let got = call("fetch::image", || {
        step08::fetch::image(&store, &source, &long)
    })?;
    ensure(got.is_err(), || {
        Fail::new("a manifest with more layers than its config's diff_ids is refused")
            .seen(format!("{got:?}"))
    })?;
    // A layer blob with bytes after its gzip stream: the tar inside is
    // still the diff_id, but the blob is not the one described.
    let root3 = temp.path().join("root3");
    let store3 = Store::open(&root3).map_err(setup)?;
    let mut padded = blobs.clone();
    if let Some(layer) = padded.get_mut(&layers[0]) {
        layer.extend_from_slice(b"trailing bytes no descriptor promised");
    }
    let source = Counted {
        blobs: padded,
        opened: Mutex::new(Vec::new()),
    };
    let got = call("fetch::image", || {
        step08::fetch::image(&store3, &source, &manifest)
    })?;
    let why = got
        .as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    ensure(got.is_err() && why.contains(&layers[0]), || {
        Fail::new("a layer blob longer than its descriptor says is refused, naming the blob's digest (each layer blob is verified against its descriptor, not only its tar against the diff_id)")
            .expected(format!("an error naming {}", layers[0]))
            .seen(if got.is_ok() { "Ok".to_string() } else { why.clone() })
    })?;
    ensure(files_under(&root3.join("images/sha256")).is_empty(), || {
        Fail::new("no image after the refusal")
    })
}

// --- Registry exercises ------------------------------------------------------

fn start_registry() -> Result<Registry, Fail> {
    Registry::start()
}

/// Put a grader-made layout's image into the registry with skopeo (a tool
/// of the rest of the world, not the learner's code).
fn skopeo_copy(registry: &Registry, from: &str, to: &str, extra: &[&str]) -> Result<(), Fail> {
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(from);
    let dest = format!("docker://{}/{to}", registry.address());
    args.push(&dest);
    skopeo(Some(&registry.netns()), &args).map(drop)
}

fn pull_resolves_tags_and_indexes(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let temp = ctx.temp_dir();
    let layout = grader_layout(&temp.path().join("layout"))?;
    let dir = layout.dir.to_string_lossy().into_owned();
    skopeo_copy(&registry, &format!("oci:{dir}:1"), "lab/first:1", &[])?;
    // skopeo keeps the manifest as it is (no compression change).
    let relay = Relay::start(&registry)?;
    let address = relay.address.clone();
    let netns = registry.netns();
    let resolved = call_in_netns("pull::resolve", Some(netns.clone()), move || {
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        let repo = Repository {
            registry: &c,
            name: "lab/first".into(),
        };
        step08::pull::resolve(&repo, "1")
    })?
    .map_err(|e| {
        Fail::new("pull::resolve of a tag the registry has should succeed").seen(format!("{e:#}"))
    })?;
    let (status, stored) =
        registry.get(&format!("/v2/lab/first/manifests/{}", layout.images[0].0))?;
    expect_eq("the registry has the grader's manifest", 200, status)?;
    expect_eq(
        "the digest resolve returns: the sha256 of the manifest bytes the registry sent",
        format!("sha256:{}", sha256_hex(&stored)),
        resolved.1.to_string(),
    )?;
    expect_eq(
        "the manifest's config",
        layout.images[0].1.clone(),
        resolved.0.config().digest().to_string(),
    )?;
    let seen = relay.seen();
    let first = seen.first().cloned();
    ensure(
        first.as_ref().is_some_and(|s| {
            s.line == "GET /v2/lab/first/manifests/1" && {
                let h = s.headers.to_ascii_lowercase();
                h.contains("accept:")
                    && h.contains("application/vnd.oci.image.manifest.v1+json")
                    && h.contains("application/vnd.oci.image.index.v1+json")
                    && h.contains("application/vnd.docker.distribution.manifest.v2+json")
            }
        }),
        || {
            Fail::new("the first request asks for the tag's manifest in every form minibox reads")
                .expected("GET /v2/lab/first/manifests/1 with an Accept header naming application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json and application/vnd.docker.distribution.manifest.v2+json")
                .seen(match &first {
                    Some(s) => format!("{}, headers:\n{}", s.line, s.headers),
                    None => "no request".to_string(),
                })
        },
    )?;
    // An index: skopeo copy --all of the nested one, under tag 2.
    relay.clear();
    skopeo_copy(
        &registry,
        &format!("oci:{dir}:lab/second:2"),
        "lab/second:2",
        &["--all"],
    )?;
    let address = relay.address.clone();
    let got = call_in_netns("pull::resolve", Some(netns.clone()), move || {
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        step08::pull::resolve(
            &Repository {
                registry: &c,
                name: "lab/second".into(),
            },
            "2",
        )
    })?;
    let (manifest, digest) = got.map_err(|e| Fail::new("pull::resolve of a tag that names an index (skopeo copy --all) should follow it to this platform's manifest").seen(format!("{e:#}")))?;
    expect_eq(
        "the manifest behind the index: the grader's second image's config",
        layout.images[1].1.clone(),
        manifest.config().digest().to_string(),
    )?;
    // skopeo may write the manifests anew: the registry's index says
    // which digest this platform's has there.
    let (_, index) = registry.get("/v2/lab/second/manifests/2")?;
    let index: Value = serde_json::from_slice(&index).map_err(setup)?;
    let ours = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["platform"]["architecture"] == json!(host_arch()))
        .and_then(|m| m["digest"].as_str())
        .unwrap_or("")
        .to_string();
    expect_eq(
        "the digest of the manifest behind the index (as the registry's index names it)",
        ours.clone(),
        digest.to_string(),
    )?;
    let lines = requests(&relay.seen());
    ensure(
        lines.contains(&format!("GET /v2/lab/second/manifests/{ours} -> 200")),
        || Fail::new("the platform's manifest is fetched by its digest").seen(&lines),
    )?;
    // Not there: 404, an error that says so.
    let address = relay.address.clone();
    let got = call_in_netns("pull::resolve", Some(netns.clone()), move || {
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        step08::pull::resolve(
            &Repository {
                registry: &c,
                name: "lab/first".into(),
            },
            "nope",
        )
    })?;
    let why = got.err().map(|e| format!("{e:#}")).unwrap_or_default();
    ensure(why.contains("not found") && why.contains("nope"), || {
        Fail::new(
            "a tag the registry lacks (404) is an error saying \"not found\" and naming the tag",
        )
        .seen(&why)
    })?;
    // A registry that lies: a Docker-Content-Digest its bytes don't have,
    // and other bytes for a manifest asked for by digest. The same server
    // telling the truth (tag `true`) is the control.
    let liar = Liar::start(&registry)?;
    for (reference, what) in [
        ("1", "a manifest whose Docker-Content-Digest header differs from the hash of its bytes is refused"),
        (liar.asked_digest.as_str(), "a manifest asked for by digest whose bytes hash to something else is refused"),
        ("big", "a manifest larger than the document limit (blobs::DOCUMENT_LIMIT) is refused, however true its digest: a registry must not fill the memory"),
        ("true", "the control: the same manifest with a true Docker-Content-Digest is taken"),
    ] {
        let address = liar.address.clone();
        let reference = reference.to_string();
        let got = call_in_netns("pull::resolve", Some(netns.clone()), move || {
            let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
            step08::pull::resolve(&Repository { registry: &c, name: "lab/liar".into() }, &reference)
        })?;
        let control = reference_is_control(what);
        ensure(got.is_ok() == control, || {
            Fail::new(what).seen(match &got {
                Ok((_, d)) => format!("Ok, digest {d}"),
                Err(e) => format!("{e:#}"),
            })
        })?;
    }
    drop(liar);
    // A registry that fails: an error with its status and its words.
    let fake = FakeServer::answering_500(registry.lab())?;
    let address = fake.address().to_string();
    let got = call_in_netns("pull::resolve", Some(netns.clone()), move || {
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        step08::pull::resolve(
            &Repository {
                registry: &c,
                name: "lab/first".into(),
            },
            "1",
        )
    })?;
    let why = got.err().map(|e| format!("{e:#}")).unwrap_or_default();
    ensure(why.contains("500"), || {
        Fail::new("a registry that answers 500 gives an error with its status and words").seen(&why)
    })?;
    // Repository::open: a blob by GET.
    let address = relay.address.clone();
    let layer = layout.images[0].2[0].clone();
    let expected = read(
        &layout
            .dir
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )?;
    let want = layer.clone();
    let got = call_in_netns(
        "Repository::open",
        Some(netns),
        move || -> anyhow::Result<Vec<u8>> {
            let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
            let repo = Repository {
                registry: &c,
                name: "lab/first".into(),
            };
            let d = Descriptor::new(
                MediaType::ImageLayerGzip,
                0,
                want.parse::<oci_spec::image::Digest>()?,
            );
            let mut body = Vec::new();
            repo.open(&d)?.read_to_end(&mut body)?;
            let missing = Descriptor::new(
                MediaType::ImageLayerGzip,
                0,
                format!("sha256:{}", "0".repeat(64)).parse::<oci_spec::image::Digest>()?,
            );
            if repo.open(&missing).is_ok() {
                anyhow::bail!("a blob the registry lacks opened without an error");
            }
            Ok(body)
        },
    )?;
    let body = got.map_err(|e| {
        Fail::new("Repository::open GETs a blob (and a missing one is an error)")
            .seen(format!("{e:#}"))
    })?;
    ensure(body == expected, || {
        Fail::new("Repository::open gives the blob's bytes as the registry sent them")
            .seen(format!("{} bytes", body.len()))
    })
}

fn push_uploads_mounts_and_skips(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let relay = Relay::start(&registry)?;
    let temp = ctx.temp_dir();
    // Blobs of the grader's: a small one, a big one.
    let small: Vec<u8> = b"a small blob\n".to_vec();
    let big: Vec<u8> = (0..250_000u32).map(|i| (i % 253) as u8).collect();
    let small_path = temp.path().join("small");
    let big_path = temp.path().join("big");
    std::fs::write(&small_path, &small).map_err(setup)?;
    std::fs::write(&big_path, &big).map_err(setup)?;
    let push = |repo: &str,
                bytes: &[u8],
                path: &Path,
                from: Option<&str>,
                chunk: u64|
     -> Result<anyhow::Result<step08::push::Sent>, Fail> {
        let address = relay.address.clone();
        let repo = repo.to_string();
        let d = descriptor(bytes, bytes.len() as u64);
        let path = path.to_path_buf();
        let from = from.map(str::to_string);
        call_in_netns("push::push_blob", Some(registry.netns()), move || {
            // SAFETY of set_var: the grader's other threads read no
            // environment while this runs (the checks run one at a time).
            std::env::set_var("MINIBOX_PUSH_CHUNK", chunk.to_string());
            let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
            let r = step08::push::push_blob(
                &Repository {
                    registry: &c,
                    name: repo,
                },
                &d,
                &path,
                from.as_deref(),
            );
            std::env::remove_var("MINIBOX_PUSH_CHUNK");
            r
        })
    };
    use step08::push::Sent;
    // Monolithic.
    let sent = push("lab/a", &small, &small_path, None, 1 << 20)?.map_err(|e| {
        Fail::new("push_blob of a new small blob should succeed").seen(format!("{e:#}"))
    })?;
    let lines = requests(&relay.seen());
    expect_eq(
        "what push_blob says of a blob it uploaded",
        Sent::Uploaded,
        sent,
    )?;
    let d_small = format!("sha256:{}", sha256_hex(&small));
    let want = format!(
        "HEAD /v2/lab/a/blobs/{d_small} -> 404\nPOST /v2/lab/a/blobs/uploads/ -> 202\nPUT /v2/lab/a/blobs/uploads/UUID?digest={d_small} -> 201"
    );
    expect_eq(
        "the requests of a monolithic upload (as the registry saw them)",
        want,
        uuid_cut(&lines),
    )?;
    let (status, body) = registry.get(&format!("/v2/lab/a/blobs/{d_small}"))?;
    ensure(status == 200 && body == small, || {
        Fail::new("the registry serves the blob uploaded")
            .seen(format!("{status}, {} bytes", body.len()))
    })?;
    // Again: HEAD finds it.
    relay.clear();
    let sent = push("lab/a", &small, &small_path, None, 1 << 20)?
        .map_err(|e| Fail::new("push_blob of a blob the repository has").seen(format!("{e:#}")))?;
    expect_eq("push_blob of a blob the repository has", Sent::Exists, sent)?;
    expect_eq(
        "its only request",
        format!("HEAD /v2/lab/a/blobs/{d_small} -> 200"),
        requests(&relay.seen()),
    )?;
    // Mounted into another repository.
    relay.clear();
    let sent = push("lab/b", &small, &small_path, Some("lab/a"), 1 << 20)?.map_err(|e| {
        Fail::new("push_blob with a repository to mount from").seen(format!("{e:#}"))
    })?;
    expect_eq(
        "push_blob of a blob another repository has (mount_from)",
        Sent::Mounted,
        sent,
    )?;
    expect_eq(
        "the requests of a mount: no bytes sent",
        format!("HEAD /v2/lab/b/blobs/{d_small} -> 404\nPOST /v2/lab/b/blobs/uploads/?mount={d_small}&from=lab/a -> 201"),
        requests(&relay.seen()),
    )?;
    // A mount the registry can't do (the repository named has no such
    // blob): it answers with a fresh upload (202), and the bytes go.
    relay.clear();
    let sent = push("lab/c", &small, &small_path, Some("lab/nowhere"), 1 << 20)?.map_err(|e| {
        Fail::new("push_blob with a mount the registry answers with an upload (202)")
            .seen(format!("{e:#}"))
    })?;
    expect_eq(
        "push_blob of a blob whose mount the registry declined (202: an upload instead)",
        Sent::Uploaded,
        sent,
    )?;
    expect_eq(
        "the requests of a declined mount: the upload it opened, then the PUT",
        format!("HEAD /v2/lab/c/blobs/{d_small} -> 404\nPOST /v2/lab/c/blobs/uploads/?mount={d_small}&from=lab/nowhere -> 202\nPUT /v2/lab/c/blobs/uploads/UUID?digest={d_small} -> 201"),
        uuid_cut(&requests(&relay.seen())),
    )?;
    // Chunked: 250 000 bytes in chunks of 100 000 (the last one short).
    relay.clear();
    let d_big = format!("sha256:{}", sha256_hex(&big));
    let sent = push("lab/a", &big, &big_path, None, 100_000)?.map_err(|e| {
        Fail::new("push_blob of a blob larger than the chunk size").seen(format!("{e:#}"))
    })?;
    expect_eq(
        "what push_blob says of a chunked upload",
        Sent::Uploaded,
        sent,
    )?;
    let seen = relay.seen();
    expect_eq(
        "the requests of a chunked upload: PATCH per chunk of chunk_size(), then PUT ?digest= with no body",
        format!("HEAD /v2/lab/a/blobs/{d_big} -> 404\nPOST /v2/lab/a/blobs/uploads/ -> 202\nPATCH /v2/lab/a/blobs/uploads/UUID -> 202\nPATCH /v2/lab/a/blobs/uploads/UUID -> 202\nPATCH /v2/lab/a/blobs/uploads/UUID -> 202\nPUT /v2/lab/a/blobs/uploads/UUID?digest={d_big} -> 201"),
        uuid_cut(&requests(&seen)),
    )?;
    let ranges: Vec<String> = seen
        .iter()
        .filter(|s| s.line.starts_with("PATCH"))
        .filter_map(|s| {
            s.headers
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-range:"))
                .map(|l| {
                    l.split_once(':')
                        .map(|(_, v)| v.trim().to_string())
                        .unwrap_or_default()
                })
        })
        .collect();
    expect_eq(
        "the PATCHes' Content-Range headers",
        vec![
            "0-99999".to_string(),
            "100000-199999".into(),
            "200000-249999".into(),
        ],
        ranges,
    )?;
    let (status, body) = registry.get(&format!("/v2/lab/a/blobs/{d_big}"))?;
    ensure(status == 200 && body == big, || {
        Fail::new("the registry serves the chunked blob whole")
            .seen(format!("{status}, {} bytes", body.len()))
    })?;
    // Exactly the chunk size: still one PUT.
    relay.clear();
    push("lab/d", &small, &small_path, None, small.len() as u64)?.map_err(|e| {
        Fail::new("push_blob of a blob exactly the chunk size").seen(format!("{e:#}"))
    })?;
    expect_eq(
        "the requests of a blob exactly the chunk size: one PUT (PATCHes are for blobs above it)",
        format!("HEAD /v2/lab/d/blobs/{d_small} -> 404\nPOST /v2/lab/d/blobs/uploads/ -> 202\nPUT /v2/lab/d/blobs/uploads/UUID?digest={d_small} -> 201"),
        uuid_cut(&requests(&relay.seen())),
    )?;
    // A blob whose bytes are not its digest: the registry refuses, and so
    // must push_blob (an error, not Uploaded).
    let wrong = descriptor(b"other bytes", small.len() as u64);
    let address = relay.address.clone();
    let p = small_path.clone();
    let got = call_in_netns("push::push_blob", Some(registry.netns()), move || {
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        step08::push::push_blob(
            &Repository {
                registry: &c,
                name: "lab/a".into(),
            },
            &wrong,
            &p,
            None,
        )
    })?;
    ensure(got.is_err(), || {
        Fail::new("when the registry refuses the closing PUT (400: the digest does not match), push_blob is an error").seen(format!("{got:?}"))
    })?;
    // A whole image: the runtime's store.
    let lab = Lab::apart(ctx);
    let id = app_image(&lab, "app:1")?;
    let store = store_of(&lab)?;
    relay.clear();
    let address = relay.address.clone();
    let id2 = id.clone();
    let root = lab.root();
    let got = call_in_netns("push::push", Some(registry.netns()), move || {
        let store = Store::open(&root)?;
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        step08::push::push(
            &store,
            &Repository {
                registry: &c,
                name: "lab/app".into(),
            },
            "1",
            &id2,
            &|_| None,
        )
    })?;
    let digest = got.map_err(|e| {
        Fail::new("push::push of a stored image should succeed").seen(format!("{e:#}"))
    })?;
    let (status, manifest) = registry.get("/v2/lab/app/manifests/1")?;
    expect_eq("the registry has the manifest under the tag", 200, status)?;
    expect_eq(
        "push returns the sha256 of the manifest the registry holds",
        format!("sha256:{}", sha256_hex(&manifest)),
        digest.to_string(),
    )?;
    let manifest: Value = serde_json::from_slice(&manifest).map_err(setup)?;
    expect_eq(
        "the pushed manifest's config is the image id",
        json!(id.as_str()),
        manifest["config"]["digest"].clone(),
    )?;
    let diff_ids: Vec<String> = layers_of(&store, &id)?
        .iter()
        .map(|d| d.to_string())
        .collect();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str().map(str::to_string))
        .collect();
    expect_eq("the pushed manifest's layers", diff_ids, layers)?;
    let lines = requests(&relay.seen());
    let last = relay
        .seen()
        .last()
        .map(|s| (s.line.clone(), s.headers.to_ascii_lowercase()));
    ensure(
        last.as_ref().is_some_and(|(l, h)| {
            l == "PUT /v2/lab/app/manifests/1"
                && h.contains("content-type: application/vnd.oci.image.manifest.v1+json")
        }),
        || {
            Fail::new(
                "the manifest goes last, PUT under the tag with its media type as Content-Type",
            )
            .seen(&lines)
        },
    )?;
    // The same push, through a relay whose answer to the manifest's PUT
    // claims another digest: the registry did not take what was sent.
    let liar = Relay::lying(&registry)?;
    let address = liar.address.clone();
    let root = lab.root();
    let got = call_in_netns("push::push", Some(registry.netns()), move || {
        let store = Store::open(&root)?;
        let c = client(&address).map_err(|f| anyhow::anyhow!(f.what))?;
        step08::push::push(
            &store,
            &Repository {
                registry: &c,
                name: "lab/app".into(),
            },
            "2",
            &id,
            &|_| None,
        )
    })?;
    ensure(got.is_err(), || {
        Fail::new("a push whose manifest the registry answers with another Docker-Content-Digest (here sha256:000…) is an error")
            .seen(format!("{got:?}"))
    })
}

fn reference_is_control(what: &str) -> bool {
    what.starts_with("the control")
}

/// A registry of the grader's that lies about one manifest (see
/// `pull_resolves_tags_and_indexes`).
struct Liar {
    address: String,
    /// The digest of the manifest it serves under tag 1; asked for by this
    /// digest it sends other bytes.
    asked_digest: String,
    _server: std::thread::JoinHandle<()>,
}

impl Liar {
    fn start(registry: &Registry) -> Result<Liar, Fail> {
        let listener = registry.lab().listen("10.77.0.8:0")?;
        let address = listener.local_addr().map_err(setup)?.to_string();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "1".repeat(64)), "size": 2},
            "layers": [],
        }))
        .map_err(setup)?;
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        let mut other = manifest.clone();
        other.push(b' ');
        // The same manifest padded past the document limit with spaces
        // (still valid JSON), under its true digest: only the size is wrong.
        let mut big = manifest.clone();
        big.resize(step08::blobs::DOCUMENT_LIMIT as usize + 4096, b' ');
        let big_digest = format!("sha256:{}", sha256_hex(&big));
        let asked = digest.clone();
        let server = std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let (claimed, body): (String, &[u8]) =
                    if line.contains(&format!("/manifests/{asked}")) {
                        (String::new(), &other)
                    } else if line.contains("/manifests/1 ") {
                        (format!("sha256:{}", "0".repeat(64)), &manifest)
                    } else if line.contains("/manifests/true ") {
                        (asked.clone(), &manifest)
                    } else if line.contains("/manifests/big ") {
                        (big_digest.clone(), &big)
                    } else {
                        let _ = conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                        continue;
                    };
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                if !claimed.is_empty() {
                    answer.push_str(&format!("Docker-Content-Digest: {claimed}\r\n"));
                }
                answer.push_str("\r\n");
                let _ = conn.write_all(answer.as_bytes());
                let _ = conn.write_all(body);
            }
        });
        Ok(Liar {
            address,
            asked_digest: digest,
            _server: server,
        })
    }
}

/// Upload ids (UUIDs) as `UUID`.
fn uuid_cut(lines: &str) -> String {
    lines
        .lines()
        .map(|l| {
            let Some(at) = l.find("/uploads/") else {
                return l.to_string();
            };
            let rest = &l[at + 9..];
            let end = rest.find(['?', ' ']).unwrap_or(rest.len());
            if end == 0 {
                l.to_string()
            } else {
                format!("{}UUID{}", &l[..at + 9], &rest[end..])
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// --- The runtime with the rest of the world -----------------------------------

/// The files of a root filesystem: path -> sha256 (files) or "dir" / "->target".
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for rel in files_under(root) {
        let p = root.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let what = if meta.file_type().is_symlink() {
            format!(
                "->{}",
                std::fs::read_link(&p)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default()
            )
        } else if meta.is_dir() {
            "dir".to_string()
        } else if meta.is_file() {
            sha256_hex(&std::fs::read(&p).unwrap_or_default())
        } else {
            "special".to_string()
        };
        out.insert(rel, what);
    }
    out
}

fn umoci_and_skopeo_read_a_saved_layout(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    app_image(&lab, "app:1")?;
    let out = lab.dir.path().join("app-oci");
    let saved = lab
        .minibox(&[
            "save",
            "--format",
            "oci",
            "-o",
            &out.to_string_lossy(),
            "app:1",
        ])
        .output()?;
    saved.expect_code(0, "save --format oci -o DIR app:1")?;
    let bundle = lab.dir.path().join("bundle");
    umoci(&[
        "unpack",
        "--image",
        &format!("{}:1", out.display()),
        &bundle.to_string_lossy(),
    ])?;
    let rootfs = bundle.join("rootfs");
    let greeting = std::fs::read_to_string(rootfs.join("greeting")).unwrap_or_default();
    expect_eq(
        "/greeting in umoci's rootfs (the top layer's file)",
        "made-by-minibox\n",
        greeting.as_str(),
    )?;
    expect_eq(
        "/hello.txt in umoci's rootfs (the COPY layer's)",
        "hello\n",
        std::fs::read_to_string(rootfs.join("hello.txt"))
            .unwrap_or_default()
            .as_str(),
    )?;
    // The rootfs umoci made equals what the container sees: the same files
    // as the image's layers stacked (the container's view, through the
    // runtime's own overlay), compared by listing inside a container.
    let listed = lab.run(
        "app:1",
        &[
            "sh", "-c",
            // A walk in the shell itself: an image of the host's programs
            // has no `find`, and every image has `sh` with `[`.
            WALK,
        ],
    )?;
    // The runtime writes these three into every container; they are not
    // the image's.
    let made = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];
    let ours: BTreeSet<String> = listed
        .lines()
        .filter(|l| !made.contains(l))
        .map(str::to_string)
        .collect();
    let theirs: BTreeSet<String> = tree(&rootfs)
        .into_keys()
        .filter(|p| {
            ["bin", "etc", "greeting", "hello.txt"]
                .iter()
                .any(|t| p == t || p.starts_with(&format!("{t}/")))
                && !made.contains(&p.as_str())
        })
        .collect();
    expect_eq("the files umoci unpacked (bin, etc, greeting, hello.txt) = the files a container of app:1 sees there", ours, theirs)?;
    let inspected = skopeo(None, &["inspect", &format!("oci:{}:1", out.display())])?;
    let inspected: Value = serde_json::from_str(&inspected)
        .map_err(|e| Fail::new("skopeo inspect prints JSON").seen(e))?;
    expect_eq(
        "skopeo inspect oci:DIR:1 .Layers = minibox inspect's RootFS.Layers",
        minibox_layers(&lab, "app:1")?,
        json_strings(&inspected["Layers"]),
    )?;
    let copy = lab.dir.path().join("copied");
    skopeo(
        None,
        &[
            "copy",
            &format!("oci:{}:1", out.display()),
            &format!("oci:{}:again", copy.display()),
        ],
    )?;
    ensure(copy.join("index.json").is_file(), || {
        Fail::new("skopeo copy of the saved layout to another layout works")
    })
}

fn podman_runs_a_saved_archive(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    app_image(&lab, "app:1")?;
    let archive = lab.dir.path().join("app.tar");
    lab.minibox(&["save", "-o", &archive.to_string_lossy(), "app:1"])
        .output()?
        .expect_code(0, "save -o FILE app:1")?;
    let podman = Podman::new(None)?;
    let loaded = podman.run(&["load", "-i", &archive.to_string_lossy()])?;
    ensure(loaded.contains("app:1"), || {
        Fail::new("podman load names the image app:1").seen(&loaded)
    })?;
    let layers = podman.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "app:1",
    ])?;
    let layers: Value = serde_json::from_str(layers.trim())
        .map_err(|e| Fail::new("podman image inspect prints JSON").seen(e))?;
    expect_eq(
        "podman's RootFS.Layers of the loaded archive = minibox inspect's",
        minibox_layers(&lab, "app:1")?,
        json_strings(&layers),
    )?;
    let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", "app:1"])?;
    expect_eq(
        "podman's image id = minibox's (the config went byte for byte)",
        lab.image_id("app:1")?
            .trim_start_matches("sha256:")
            .to_string(),
        id.trim().to_string(),
    )?;
    let said = podman.run_container("app:1", &[])?;
    expect_eq(
        "podman run --rm app:1: its CMD's output",
        "made-by-minibox\n",
        said.as_str(),
    )
}

/// The podman image of these checks: three layers, a CMD.
const PODMAN_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN echo made-by-podman > /greeting\nCMD [\"/bin/cat\", \"/greeting\"]\n";

fn busybox() -> Result<PathBuf, Fail> {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join("busybox");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Fail::new(
        "this check builds a podman image of busybox: install busybox-static (.ci/install)",
    ))
}

fn podman_archives_load_into_minibox(ctx: &Ctx) -> Outcome {
    let lab = Lab::new(ctx)?;
    let podman = Podman::new(None)?;
    let bb = busybox()?;
    let pid = podman.build("lab/podapp:1", PODMAN_APP, &[("busybox", bb.as_path())])?;
    let podman_layers: Value = serde_json::from_str(
        podman
            .run(&[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                "lab/podapp:1",
            ])?
            .trim(),
    )
    .map_err(setup)?;
    for (format, file) in [
        ("docker-archive", "pod-docker.tar"),
        ("oci-archive", "pod-oci.tar"),
    ] {
        let path = lab.dir.path().join(file);
        podman.run(&[
            "save",
            "--format",
            format,
            "-o",
            &path.to_string_lossy(),
            "lab/podapp:1",
        ])?;
        let root = lab.dir.path().join(format!("root-{format}"));
        let out = lab
            .ctx
            .minibox(&[
                "--root",
                &root.to_string_lossy(),
                "load",
                "-i",
                &path.to_string_lossy(),
            ])
            .in_netns(&lab.net().netns())
            .output()?;
        out.expect_code(0, &format!("minibox load -i of podman's {format}"))?;
        // podman names its images localhost/NAME in both forms.
        let id = "localhost/lab/podapp:1".to_string();
        ensure(
            out.stdout_text()
                .contains("Loaded image: localhost/lab/podapp:1"),
            || {
                Fail::new(format!("load of podman's {format} says the name it loaded"))
                    .expected("Loaded image: localhost/lab/podapp:1")
                    .seen(out.stdout_text())
            },
        )?;
        let inspect = lab
            .ctx
            .minibox(&[
                "--root",
                &root.to_string_lossy(),
                "inspect",
                "-f",
                "{{.Id}} {{json .RootFS.Layers}}",
                &id,
            ])
            .output()?;
        inspect.expect_code(0, &format!("inspect of the image loaded from {format}"))?;
        let text = inspect.stdout_text();
        let (seen_id, seen_layers) = text.split_once(' ').unwrap_or((&text, "[]"));
        expect_eq(
            &format!("the image id after loading podman's {format} = podman's"),
            format!("sha256:{}", pid.trim().trim_start_matches("sha256:")),
            seen_id.trim().to_string(),
        )?;
        let seen_layers: Value = serde_json::from_str(seen_layers.trim()).map_err(setup)?;
        expect_eq(
            &format!("RootFS.Layers after loading podman's {format} = podman's"),
            json_strings(&podman_layers),
            json_strings(&seen_layers),
        )?;
        let run = lab
            .ctx
            .minibox(&[
                "--root",
                &root.to_string_lossy(),
                "run",
                "--rm",
                "--network",
                "none",
                &id,
            ])
            .in_netns(&lab.net().netns())
            .output()?;
        run.expect_code(0, "run of the loaded image")?;
        expect_eq(
            "minibox run of podman's image: its CMD's output",
            "made-by-podman\n",
            run.stdout_text().as_str(),
        )?;
    }
    Ok(())
}

fn push_then_podman_and_skopeo_pull(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let lab = Lab::apart(ctx);
    app_image(&lab, "app:1")?;
    let name = format!("{}/lab/app:1", registry.address());
    ok(
        mb(&lab, &registry, &["tag", "app:1", &name]),
        "tag app:1 HOST:PORT/lab/app:1",
    )?;
    let pushed = mb(&lab, &registry, &["push", "--tls-verify=false", &name]).output()?;
    pushed.expect_code(0, "push --tls-verify=false HOST:PORT/lab/app:1")?;
    let ours = minibox_layers(&lab, "app:1")?;
    if grader::tools::Skopeo::unavailable().is_none() {
        let inspected = skopeo(
            Some(&registry.netns()),
            &["inspect", "--tls-verify=false", &format!("docker://{name}")],
        )?;
        let inspected: Value = serde_json::from_str(&inspected).map_err(setup)?;
        expect_eq(
            "skopeo inspect docker://HOST:PORT/lab/app:1 .Layers = minibox's",
            ours.clone(),
            json_strings(&inspected["Layers"]),
        )?;
    }
    let podman = Podman::new(Some(&registry.netns()))?;
    podman.run(&["pull", "--tls-verify=false", &name])?;
    let layers: Value = serde_json::from_str(
        podman
            .run(&[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                &name,
            ])?
            .trim(),
    )
    .map_err(setup)?;
    expect_eq(
        "podman's RootFS.Layers of the pulled image = minibox's",
        ours,
        json_strings(&layers),
    )?;
    let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", &name])?;
    expect_eq(
        "podman's image id = minibox's",
        lab.image_id("app:1")?
            .trim_start_matches("sha256:")
            .to_string(),
        id.trim().to_string(),
    )?;
    expect_eq(
        "podman run of the pulled image: its CMD's output",
        "made-by-minibox\n",
        podman.run_container(&name, &[])?.as_str(),
    )
}

fn pull_what_podman_pushed(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let podman = Podman::new(Some(&registry.netns()))?;
    let bb = busybox()?;
    let pid = podman.build("lab/podapp:1", PODMAN_APP, &[("busybox", bb.as_path())])?;
    let name = format!("{}/lab/podapp:1", registry.address());
    podman.run(&[
        "push",
        "--tls-verify=false",
        "lab/podapp:1",
        &format!("docker://{name}"),
    ])?;
    let podman_layers: Value = serde_json::from_str(
        podman
            .run(&[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                "lab/podapp:1",
            ])?
            .trim(),
    )
    .map_err(setup)?;
    // What the registry holds: gzip'd layers (two digests each).
    let (_, manifest) = registry.get("/v2/lab/podapp/manifests/1")?;
    let manifest: Value = serde_json::from_slice(&manifest).map_err(setup)?;
    let gz = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|l| l["mediaType"].as_str().unwrap_or("").contains("gzip"));
    ensure(gz, || {
        Fail::new("the grader expected podman to push gzip'd layers").seen(&manifest)
    })?;
    let lab = Lab::apart(ctx);
    let pulled = mb(&lab, &registry, &["pull", "--tls-verify=false", &name]).output()?;
    pulled.expect_code(0, "pull --tls-verify=false HOST:PORT/lab/podapp:1")?;
    let inspect = ok(
        mb(
            &lab,
            &registry,
            &["inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", &name],
        ),
        "inspect of the pulled image",
    )?;
    let (seen_id, seen_layers) = inspect.split_once(' ').unwrap_or((&inspect, "[]"));
    expect_eq(
        "the pulled image's id = podman's",
        format!("sha256:{}", pid.trim().trim_start_matches("sha256:")),
        seen_id.trim().to_string(),
    )?;
    let seen_layers: Value = serde_json::from_str(seen_layers.trim()).map_err(setup)?;
    expect_eq(
        "the pulled image's RootFS.Layers (the tars inside the gzip) = podman's",
        json_strings(&podman_layers),
        json_strings(&seen_layers),
    )?;
    let (_, manifest_bytes) = registry.get("/v2/lab/podapp/manifests/1")?;
    let repo_digests = ok(
        mb(
            &lab,
            &registry,
            &["inspect", "-f", "{{json .RepoDigests}}", &name],
        ),
        "inspect",
    )?;
    let want = format!(
        "{}/lab/podapp@sha256:{}",
        registry.address(),
        sha256_hex(&manifest_bytes)
    );
    ensure(repo_digests.contains(&want), || {
        Fail::new("inspect's RepoDigests names the manifest pulled, NAME@DIGEST, as docker's does")
            .expected(&want)
            .seen(&repo_digests)
    })?;
    let said = lab.run(&name, &[])?;
    expect_eq(
        "run of the pulled image: its CMD's output",
        "made-by-podman\n",
        said.as_str(),
    )?;
    // Again: every layer is there; no blob but the config is fetched.
    let again = mb(&lab, &registry, &["pull", "--tls-verify=false", &name])
        .env("MINIBOX_DEBUG_HTTP", "1")
        .output()?;
    again.expect_code(0, "a second pull")?;
    let stderr = again.stderr.clone();
    let layer_gets = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str())
        .filter(|d| {
            stderr.contains(&format!(
                "GET http://{}/v2/lab/podapp/blobs/{d}",
                registry.address()
            ))
        })
        .count();
    ensure(layer_gets == 0, || {
        Fail::new("a second pull fetches no layer the store has").seen(&stderr)
    })
}

fn tampered_blob_is_refused(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let lab = Lab::apart(ctx);
    app_image(&lab, "app:1")?;
    let name = format!("{}/lab/app:1", registry.address());
    ok(mb(&lab, &registry, &["tag", "app:1", &name]), "tag")?;
    ok(
        mb(&lab, &registry, &["push", "--tls-verify=false", &name]),
        "push",
    )?;
    let layers = minibox_layers(&lab, "app:1")?;
    let top = layers.last().cloned().unwrap_or_default();
    let file = registry.blob_file(&top);
    let original = read(&file)?;
    let mut changed = original.clone();
    let at = changed.len() / 2;
    changed[at] ^= 0x20;
    std::fs::write(&file, &changed).map_err(setup)?;
    let fresh = Lab::apart(ctx);
    let before = store_state(&fresh.root());
    let out = mb(&fresh, &registry, &["pull", "--tls-verify=false", &name]).output()?;
    ensure(out.code() == Some(125), || {
        Fail::new(
            "a pull of an image whose layer was changed in the registry fails with exit status 125",
        )
        .seen(out.describe())
    })?;
    out.expect_one_error_line(&top)?;
    let after = store_state(&fresh.root());
    ensure(
        after.iter().all(|f| before.contains(f) || f == "tmp"),
        || {
            Fail::new("the store after the refused pull: no image, no layer, nothing in tmp/")
                .seen(format!("{after:?}"))
        },
    )?;
    // Control: the unchanged blob pulls.
    std::fs::write(&file, &original).map_err(setup)?;
    let out = mb(&fresh, &registry, &["pull", "--tls-verify=false", &name]).output()?;
    out.expect_code(
        0,
        "the same pull once the blob is restored (so the refusal was the tampering's)",
    )?;
    expect_eq(
        "the restored pull's layers",
        layers,
        minibox_layers(&fresh, &name)?,
    )
}

const ORIGIN: &str = include_str!("fixtures/blog/origin.Dockerfile");
const OPTIMIZED: &str = include_str!("fixtures/blog/optimized.Dockerfile");

fn the_layering_experiment_travels(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let lab = Lab::apart(ctx);
    let origin = lab.context("origin", ORIGIN, &[])?;
    let optimized = lab.context("optimized", OPTIMIZED, &[])?;
    lab.build("origin", &origin)?;
    lab.build("optimized", &optimized)?;
    let a = minibox_layers(&lab, "origin")?;
    let b = minibox_layers(&lab, "optimized")?;
    let podman = Podman::new(Some(&registry.netns()))?;
    let mut pulled = Vec::new();
    let mut pushes = Vec::new();
    for image in ["origin", "optimized"] {
        let name = format!("{}/blog/{image}:1", registry.address());
        ok(mb(&lab, &registry, &["tag", image, &name]), "tag")?;
        let out = mb(&lab, &registry, &["push", "--tls-verify=false", &name])
            .env("MINIBOX_DEBUG_HTTP", "1")
            .output()?;
        out.expect_code(0, &format!("push of {image}"))?;
        pushes.push(out.stderr.clone());
        podman.run(&["pull", "--tls-verify=false", &name])?;
        let layers: Value = serde_json::from_str(
            podman
                .run(&[
                    "image",
                    "inspect",
                    "--format",
                    "{{json .RootFS.Layers}}",
                    &name,
                ])?
                .trim(),
        )
        .map_err(setup)?;
        pulled.push(json_strings(&layers));
    }
    expect_eq(
        "podman's layers of blog/origin = minibox's",
        a.clone(),
        pulled[0].clone(),
    )?;
    expect_eq(
        "podman's layers of blog/optimized = minibox's",
        b.clone(),
        pulled[1].clone(),
    )?;
    expect_eq("layers of origin (FROM + seven RUN)", 8, pulled[0].len())?;
    expect_eq("layers of optimized (FROM + two RUN)", 3, pulled[1].len())?;
    expect_eq(
        "the first two layers, shared",
        &pulled[0][..2],
        &pulled[1][..2],
    )?;
    // The second push sent none of the shared layers' bytes.
    let second = &pushes[1];
    for shared in &a[..2] {
        // An upload of it would end in `PUT <upload>?digest=<it>`.
        let uploaded = second
            .lines()
            .any(|l| l.starts_with("http: PUT") && l.contains(&format!("digest={shared}")));
        ensure(!uploaded, || {
            Fail::new(format!("the push of optimized sends no bytes of the shared layer {shared} (mounted from blog/origin, or already there)")).seen(second)
        })?;
    }
    Ok(())
}

fn bad_input_is_one_line(ctx: &Ctx) -> Outcome {
    let registry = start_registry()?;
    let lab = Lab::apart(ctx);
    app_image(&lab, "app:1")?;
    let good = lab.dir.path().join("app.tar");
    ok(
        lab.minibox(&["save", "-o", &good.to_string_lossy(), "app:1"]),
        "save",
    )?;
    let layout = lab.dir.path().join("app-oci");
    ok(
        lab.minibox(&[
            "save",
            "--format",
            "oci",
            "-o",
            &layout.to_string_lossy(),
            "app:1",
        ]),
        "save --format oci",
    )?;
    let fresh = Lab::apart(ctx);
    ok(fresh.minibox(&["images"]), "images")?;
    let before = store_state(&fresh.root());
    let expect_refused = |out: Output, what: &str, mentions: &str| -> Outcome {
        ensure(out.code() == Some(125), || {
            Fail::new(format!("{what}: exit status 125")).seen(out.describe())
        })?;
        out.expect_one_error_line(mentions)?;
        let after = store_state(&fresh.root());
        ensure(after == before, || {
            Fail::new(format!(
                "{what}: the store as it was (no image, layer or staging file)"
            ))
            .expected(format!("{before:?}"))
            .seen(format!("{after:?}"))
        })
    };
    // A truncated archive.
    let bytes = read(&good)?;
    let truncated = lab.dir.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).map_err(setup)?;
    expect_refused(
        fresh
            .minibox(&["load", "-i", &truncated.to_string_lossy()])
            .output()?,
        "load of a truncated archive",
        "truncated.tar",
    )?;
    // A manifest naming a missing blob.
    let index: Value = serde_json::from_slice(&read(&layout.join("index.json"))?).map_err(setup)?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let manifest: Value = serde_json::from_slice(&read(
        &layout
            .join("blobs/sha256")
            .join(manifest_digest.trim_start_matches("sha256:")),
    )?)
    .map_err(setup)?;
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap_or("")
        .to_string();
    std::fs::remove_file(
        layout
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .map_err(setup)?;
    expect_refused(
        fresh
            .minibox(&["load", "-i", &layout.to_string_lossy()])
            .output()?,
        "load of a layout whose manifest names a missing blob",
        &layer,
    )?;
    // A registry that answers 500.
    let fake = FakeServer::answering_500(registry.lab())?;
    expect_refused(
        mb(
            &fresh,
            &registry,
            &[
                "pull",
                "--tls-verify=false",
                &format!("{}/app:1", fake.address()),
            ],
        )
        .output()?,
        "pull from a registry that answers 500",
        "500",
    )?;
    // A registry that never answers: the client's timeout.
    let hanging = FakeServer::hanging(registry.lab())?;
    let out = mb(
        &fresh,
        &registry,
        &[
            "pull",
            "--tls-verify=false",
            &format!("{}/app:1", hanging.address()),
        ],
    )
    .env("MINIBOX_REGISTRY_TIMEOUT", "2")
    .output()?;
    expect_refused(
        out,
        "pull from a registry that never answers (MINIBOX_REGISTRY_TIMEOUT=2)",
        "no answer",
    )?;
    // Not a reference.
    expect_refused(
        fresh
            .minibox(&["pull", "--tls-verify=false", "Not A/Reference"])
            .output()?,
        "pull of a name that is not a reference",
        "Not A/Reference",
    )?;
    Ok(())
}
