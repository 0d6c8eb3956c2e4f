//! The image-exchange lab against the real tools: a registry in a lab
//! ([`grader::registry`]), podman, skopeo and umoci run hermetically
//! ([`grader::tools`]), and the fake registries that fail on purpose
//! ([`grader::fake_server`]). Each part is skipped with one line when the
//! machine lacks what it needs.

use grader::fake_server::FakeServer;
use grader::netlab::NetLab;
use grader::registry::Registry;
use grader::tools::{self, Podman, Skopeo, Umoci};
use grader::{ensure, expect_eq, Fail};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Two layers (the COPY and the RUN) and a CMD.
const CONTAINERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo hello-from-layer-two > /greeting"]
CMD ["/bin/busybox", "cat", "/greeting"]
"#;
const GREETING: &str = "hello-from-layer-two\n";

fn skip(part: &str, why: Option<String>) -> bool {
    match why {
        Some(why) => {
            println!("skipped {part}: {why}");
            true
        }
        None => false,
    }
}

#[test]
fn an_image_travels_through_the_lab_registry() {
    if skip("the registry round trip", Registry::unavailable())
        || skip("the registry round trip", Podman::unavailable())
        || skip("the registry round trip", Skopeo::unavailable())
    {
        return;
    }
    let Some(busybox) = rootfs::static_busybox() else {
        println!("skipped the registry round trip: no static busybox (apt-get install busybox-static, or .ci/install)");
        return;
    };
    let mut left_behind = Vec::new();
    if let Err(fail) = round_trip(&busybox, &mut left_behind) {
        panic!("{fail}");
    }
    // Everything was dropped: nothing of it may remain on the machine.
    for path in &left_behind {
        assert!(!path.exists(), "{} should be gone", path.display());
    }
    let own_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !own_mounts.contains("grader-podman-") && !own_mounts.contains("grader-skopeo-"),
        "no tool's mount may be left: {own_mounts}"
    );
}

fn round_trip(busybox: &Path, left_behind: &mut Vec<PathBuf>) -> Result<(), Fail> {
    let started = Instant::now();
    let registry = Registry::start()?;
    eprintln!("Registry::start: {:.2} s", started.elapsed().as_secs_f64());
    let netns = registry.netns();
    let address = registry.address().to_string();
    let builder = Podman::new(Some(&netns))?;
    left_behind.push(builder.dir().to_path_buf());

    let started = Instant::now();
    let id = builder.build("localhost/app:1", CONTAINERFILE, &[("busybox", busybox)])?;
    eprintln!(
        "podman build (2 layers, no cache): {:.2} s, image {id}",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    builder.run(&[
        "push",
        "--tls-verify=false",
        "localhost/app:1",
        &format!("docker://{address}/app:1"),
    ])?;
    let pushed = started.elapsed();

    // What the registry holds, seen by skopeo and by the grader's client.
    let inspect = tools::skopeo(
        Some(&netns),
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{address}/app:1"),
        ],
    )?;
    let inspect: serde_json::Value = serde_json::from_str(&inspect)
        .map_err(|e| Fail::new("skopeo inspect printed no JSON").seen(e))?;
    expect_eq(
        "skopeo inspect: the image's layers",
        2,
        inspect["Layers"].as_array().map_or(0, Vec::len),
    )?;
    let (status, body) = registry.get("/v2/app/manifests/1")?;
    expect_eq("GET /v2/app/manifests/1", 200, status)?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Fail::new("the manifest is not JSON").seen(e))?;
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    expect_eq("the manifest's layers", 2, layers.len())?;
    for layer in &layers {
        let digest = layer["digest"].as_str().unwrap_or_default();
        let size = std::fs::metadata(registry.blob_file(digest)).map(|m| m.len());
        expect_eq(
            &format!("the size of blob {digest} in the registry's storage"),
            layer["size"].as_u64(),
            size.ok(),
        )?;
    }
    let (status, _) = registry.get("/v2/app/manifests/no-such-tag")?;
    expect_eq("GET of a tag that does not exist", 404, status)?;

    // skopeo from podman's store straight to the registry.
    tools::skopeo(
        Some(&netns),
        &[
            "copy",
            "--dest-tls-verify=false",
            &builder.storage_ref("localhost/app:1"),
            &format!("docker://{address}/app:2"),
        ],
    )?;

    // A second podman, with an empty store, pulls and runs it.
    let puller = Podman::new(Some(&netns))?;
    left_behind.push(puller.dir().to_path_buf());
    let started = Instant::now();
    puller.run(&["pull", "--tls-verify=false", &format!("{address}/app:1")])?;
    let pulled = started.elapsed();
    eprintln!(
        "push + pull round trip: {:.2} s (push {:.2} s, pull {:.2} s)",
        (pushed + pulled).as_secs_f64(),
        pushed.as_secs_f64(),
        pulled.as_secs_f64()
    );
    let started = Instant::now();
    let said = puller.run_container(&format!("{address}/app:1"), &[])?;
    eprintln!(
        "podman run --rm --network none: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    expect_eq("the pulled image's CMD says", GREETING, &said)?;
    let said = puller.run_container(
        &format!("{address}/app:1"),
        &["/bin/busybox", "sh", "-c", "ls /sys/class/net"],
    )?;
    expect_eq(
        "the container's network links (--network none)",
        "lo\n",
        &said,
    )?;

    // umoci unpacks the OCI layout skopeo makes of it.
    if !skip("the umoci unpack", Umoci::unavailable()) {
        let layout = builder.dir().join("layout");
        let bundle = builder.dir().join("bundle");
        tools::skopeo(
            Some(&netns),
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{address}/app:1"),
                &format!("oci:{}:1", layout.display()),
            ],
        )?;
        tools::umoci(&[
            "unpack",
            "--image",
            &format!("{}:1", layout.display()),
            &bundle.to_string_lossy(),
        ])?;
        let greeting = std::fs::read_to_string(bundle.join("rootfs/greeting")).unwrap_or_default();
        expect_eq("umoci's unpacked /greeting", GREETING, &greeting)?;
        ensure(bundle.join("rootfs/bin/busybox").is_file(), || {
            Fail::new("umoci's unpacked rootfs has no /bin/busybox")
        })?;
    }

    // A blob changed in the registry's storage (same length): a client
    // that checks digests refuses it.
    let first = layers[0]["digest"].as_str().unwrap_or_default().to_string();
    let blob = registry.blob_file(&first);
    let mut bytes = std::fs::read(&blob).map_err(|e| Fail::new("read the blob").seen(e))?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).map_err(|e| Fail::new("write the blob").seen(e))?;
    let refused = tools::skopeo(
        Some(&netns),
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{address}/app:1"),
            &format!("oci:{}:2", builder.dir().join("tampered").display()),
        ],
    );
    let why = refused.err().map(|f| f.to_string()).unwrap_or_default();
    ensure(why.to_lowercase().contains("digest did not match"), || {
        Fail::new("skopeo should refuse a blob whose bytes do not match its digest").seen(
            if why.is_empty() {
                "it copied it".to_string()
            } else {
                why.clone()
            },
        )
    })?;

    for podman in [&builder, &puller] {
        let left = podman.leftovers();
        ensure(left.is_empty(), || {
            Fail::new("podman should leave no mount, process or busy cgroup").seen(left.join("\n"))
        })?;
    }
    let cgroups: Vec<PathBuf> = [&builder, &puller]
        .iter()
        .flat_map(|p| {
            let name = p.dir().file_name().unwrap().to_owned();
            std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(move |e| e.path().join(&name))
        })
        .collect();
    left_behind.extend(cgroups);
    let pids = registry.pids();
    drop((builder, puller, registry));
    let alive: Vec<i32> = pids
        .into_iter()
        .filter(|pid| grader::procfs::stat(*pid).is_some())
        .collect();
    expect_eq(
        "the registry's processes after drop",
        Vec::<i32>::new(),
        alive,
    )
}

#[test]
fn a_registry_that_fails_answers_500_and_one_that_hangs_never_answers() {
    if skip(
        "the fake registries",
        (!nix::unistd::geteuid().is_root()).then(|| "needs root (a lab network namespace)".into()),
    ) {
        return;
    }
    let lab = NetLab::new().unwrap_or_else(|f| panic!("{f}"));
    let failing = FakeServer::answering_500(&lab).unwrap_or_else(|f| panic!("{f}"));
    let hanging = FakeServer::hanging(&lab).unwrap_or_else(|f| panic!("{f}"));
    assert!(
        failing.address().starts_with("10.77.0.2:"),
        "{}",
        failing.address()
    );
    assert!(
        hanging.address().starts_with("10.77.0.3:"),
        "{}",
        hanging.address()
    );

    let request = |address: &str| {
        let mut stream = lab
            .connect(address, Duration::from_secs(5))
            .unwrap_or_else(|f| panic!("{f}"));
        let get = format!("GET /v2/app/manifests/1 HTTP/1.1\r\nHost: {address}\r\n\r\n");
        stream.write_all(get.as_bytes()).unwrap();
        stream
    };
    let mut stream = request(failing.address());
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("fails on purpose\"}]}"), "{answer}");
    assert_eq!(failing.requests(), 1);

    let mut stream = request(hanging.address());
    let heard = grader::poll(Duration::from_secs(5), || {
        (hanging.requests() == 1).then_some(())
    });
    assert!(
        heard.is_some(),
        "the hanging server should read the request"
    );
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let silent = stream.read(&mut byte);
    assert!(
        matches!(&silent, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the hanging server should say nothing: {silent:?}"
    );
    // Dropped, it lets go: the client sees the connection end.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    drop(hanging);
    assert_eq!(stream.read(&mut byte).unwrap_or(0), 0);
    drop(failing);
    // Nothing listens any more.
    assert!(lab
        .connect(&format!("10.77.0.2:{}", 1), Duration::from_secs(2))
        .is_err());
}

#[test]
fn a_started_registry_logs_where_it_listens() {
    // Only the message's shape: a real start is above.
    if skip("the registry's log", Registry::unavailable()) {
        return;
    }
    let registry = Registry::start().unwrap_or_else(|f| panic!("{f}"));
    assert!(
        registry
            .log_tail(50)
            .contains("listening on 10.77.0.1:5000"),
        "{}",
        registry.log_tail(50)
    );
}
