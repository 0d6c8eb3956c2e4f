//! Property tests of the parsers that read what users, images and the disk
//! hand us: layer tars, Dockerfiles and containers' records. Thousands of generated inputs, built
//! from the pieces attacks are made of, with one property each.
//!
//! A seeded xorshift generator rather than a property-testing crate: the
//! inputs are reproducible from the seed in a failure message, and every
//! learner's first build stays free of a framework they never call.

#![cfg(test)]

use std::path::Path;

/// xorshift64*: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A ustar header written by hand: the `tar` crate refuses to write the
/// hostile names this test needs (`..`, absolute paths), as a good writer
/// should.
fn header(name: &str, kind: u8, size: usize, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, value: &[u8]| {
        let n = value.len().min(len);
        h[at..at + n].copy_from_slice(&value[..n]);
    };
    put(&mut h, 0, 100, name.as_bytes());
    put(&mut h, 100, 8, b"0000755\0");
    put(&mut h, 108, 8, b"0000000\0");
    put(&mut h, 116, 8, b"0000000\0");
    put(&mut h, 124, 12, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, 12, b"00000000000\0");
    h[156] = kind;
    put(&mut h, 157, 100, link.as_bytes());
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 329, 8, b"0000000\0");
    put(&mut h, 337, 8, b"0000000\0");
    // The checksum: the header's bytes summed with the field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    h
}

const PARTS: &[&str] = &[
    "..",
    ".",
    "a",
    "b",
    "etc",
    "passwd",
    ".wh.a",
    ".wh..wh..opq",
    "",
    "dir",
    "x y",
    "é",
];
const TARGETS: &[&str] = &[
    "/etc/passwd",
    "../../outside/sentinel",
    "..",
    "/",
    "a",
    "../outside",
    "dir/../../..",
    "",
];

fn hostile_tar(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let depth = 1 + rng.below(4);
        let mut name: Vec<String> = (0..depth).map(|_| rng.pick(PARTS).to_string()).collect();
        match rng.below(8) {
            0 => name.insert(0, String::new()), // absolute: "/a/b"
            1 => name.push("z".repeat(90)),     // near the name field's end
            _ => {}
        }
        let name = name.join("/");
        // file, dir, symlink, hardlink, char device, fifo, bad type.
        let kind = [b'0', b'5', b'2', b'1', b'3', b'6', b'x'][rng.below(7)];
        let (size, link) = match kind {
            b'0' => (rng.below(40), ""),
            b'1' | b'2' => (0, rng.pick(TARGETS)),
            _ => (0, ""),
        };
        out.extend_from_slice(&header(&name, kind, size, link));
        let mut data = vec![b'd'; size];
        data.resize(size.div_ceil(512) * 512, 0);
        out.extend_from_slice(&data);
    }
    if rng.below(10) == 0 {
        // A header that claims more data than there is.
        out.extend_from_slice(&header("short", b'0', 4096, ""));
        out.extend_from_slice(&[b'd'; 100]);
    } else {
        out.extend_from_slice(&[0u8; 1024]);
    }
    out
}

/// Every entry below `dir` with its kind and contents (links by target).
fn fingerprint(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                pending.push(path.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else {
                format!("{:?}", std::fs::read(&path).unwrap_or_default())
            };
            out.push((path.display().to_string(), what));
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_layer_tars_never_reach_outside_the_layer() {
    let base = std::env::temp_dir().join(format!("minibox-fuzz-tar-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("sentinel"), "untouched\n").unwrap();
    let before = fingerprint(&outside);
    let (mut refused, mut unpacked) = (0, 0);
    for seed in 1..=2000u64 {
        let mut rng = Rng(seed);
        let tar = hostile_tar(&mut rng);
        let dest = base.join("layer");
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).unwrap();
        match crate::unpack::unpack_layer(&tar[..], &dest) {
            Ok(()) => unpacked += 1,
            Err(e) => {
                refused += 1;
                let text = format!("{e:#}");
                assert!(
                    !text.contains('\n'),
                    "seed {seed}: a multi-line error: {text}"
                );
            }
        }
        assert_eq!(
            fingerprint(&outside),
            before,
            "seed {seed} reached outside the layer"
        );
        assert!(
            !base.join("etc").exists() && !Path::new("/outside").exists(),
            "seed {seed} wrote next to the layer"
        );
    }
    std::fs::remove_dir_all(&base).unwrap();
    println!("2000 hostile tars: {refused} refused, {unpacked} unpacked inside the layer");
    // Both kinds happened: the generator is not trivially refused.
    assert!(
        refused > 100 && unpacked > 100,
        "refused {refused}, unpacked {unpacked}"
    );
}

/// Keywords the parser refuses or mangles, besides the ones it builds
/// (`dockerfile::SUPPORTED`).
const OTHER_KEYWORDS: &[&str] = &["ARG", "EXPOSE", "from", "HEALTHCHECK", "", "#", "\\"];
const ARGS: &[&str] = &[
    "base",
    "scratch",
    "echo hi",
    "[\"sh\", \"-c\"]",
    "[\"unclosed",
    "a=b",
    "a",
    "=",
    "\"",
    "\\",
    "../x /",
    "/a /b /c/",
    "é ü",
    "$HOME",
    "a b=c",
    "[]",
    "{}",
    "\t",
    "-- --",
];

const VALID: &[&str] = &[
    "RUN echo hi",
    "RUN apt install vim -y",
    "ENV a=b c=d",
    "ENV key value",
    "WORKDIR /srv",
    "CMD [\"sh\", \"-c\", \"echo hi\"]",
    "ENTRYPOINT echo",
    "COPY a /b",
    "ADD layer.tar /",
    "LABEL maintainer=learner",
    "USER root",
    "# a comment",
    "",
];

#[test]
fn dockerfiles_of_random_pieces_parse_or_fail_in_one_line() {
    let (mut ok, mut refused) = (0, 0);
    let keywords: Vec<&str> = crate::dockerfile::SUPPORTED
        .iter()
        .chain(OTHER_KEYWORDS)
        .copied()
        .collect();
    for seed in 1..=5000u64 {
        let mut rng = Rng(seed);
        let mut text = String::new();
        // Half the files start well (FROM, then valid lines), so the
        // parser's accepting paths are walked as much as its refusals.
        if rng.below(2) == 0 {
            text.push_str("FROM base\n");
            for _ in 0..rng.below(6) {
                text.push_str(rng.pick(VALID));
                text.push('\n');
            }
        }
        for _ in 0..rng.below(3) {
            text.push_str(rng.pick(&keywords));
            for _ in 0..rng.below(4) {
                text.push(' ');
                text.push_str(rng.pick(ARGS));
            }
            text.push_str(["\n", "\\\n", "\r\n", " \n", ""][rng.below(5)]);
        }
        // The parser must answer, never panic.
        let parsed = std::panic::catch_unwind(|| crate::dockerfile::parse(&text));
        let parsed =
            parsed.unwrap_or_else(|_| panic!("seed {seed}: the parser panicked on {text:?}"));
        match parsed {
            Ok(_) => ok += 1,
            Err(e) => {
                refused += 1;
                let message = format!("{e:#}");
                assert!(!message.contains('\n'), "seed {seed}: {message:?}");
            }
        }
    }
    println!("5000 Dockerfiles: {ok} parsed, {refused} refused in one line");
    assert!(ok > 500 && refused > 500, "ok {ok}, refused {refused}");
}

/// Values a damaged or foreign record might hold in any field.
const HOSTILE: &[&str] = &[
    "\"abc\"",
    "\"\"",
    "\"ééééééééééééééé\"",
    "\"/../x\"",
    "\"running\"",
    "\"created\"",
    "\"/web\"",
    "-1",
    "0",
    "4294967296",
    "1e400",
    "null",
    "true",
    "[]",
    "[\"sh\", \"-c\"]",
    "{}",
    "{\"Pid\": -5}",
    "\"\\u0000\\n\"",
];

/// Bytes JSON is made of, for mutations.
const JSON_BYTES: &[u8] = b"{}[]\":,0123456789abcdef-.eE \\n\xff\xc3";

/// One record-like input for the dir `name`.
fn hostile_record(rng: &mut Rng, id: &str) -> Vec<u8> {
    let valid = serde_json::to_vec_pretty(&crate::state::sample(id)).unwrap();
    match rng.below(4) {
        // Anything at all.
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        // A valid record with bytes flipped, dropped, added, or cut short.
        1 => {
            let mut bytes = valid;
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len().max(1));
                match rng.below(4) {
                    0 if !bytes.is_empty() => bytes[at] = JSON_BYTES[rng.below(JSON_BYTES.len())],
                    1 if !bytes.is_empty() => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, JSON_BYTES[rng.below(JSON_BYTES.len())]),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        }
        // A valid record with fields given hostile values, or removed.
        _ => {
            let mut value: serde_json::Value = serde_json::from_slice(&valid).unwrap();
            for _ in 0..1 + rng.below(3) {
                let paths: &[&[&str]] = &[
                    &["Id"],
                    &["Name"],
                    &["Created"],
                    &["State", "Status"],
                    &["State", "Pid"],
                    &["State", "ExitCode"],
                    &["Config", "Cmd"],
                    &["Config", "Image"],
                    &["Monitor", "Pid"],
                    &["Monitor", "StartTime"],
                    &["LogPath"],
                    &["NetworkSettings"],
                ];
                let path = paths[rng.below(paths.len())];
                let (last, parents) = path.split_last().unwrap();
                let mut field = &mut value;
                for part in parents {
                    field = &mut field[*part];
                }
                if rng.below(5) == 0 {
                    if let Some(object) = field.as_object_mut() {
                        object.remove(*last);
                    }
                } else {
                    let text = rng.pick(HOSTILE);
                    field[*last] = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
                }
            }
            serde_json::to_vec(&value).unwrap()
        }
    }
}

#[test]
fn records_of_any_bytes_load_or_are_damaged_in_one_line() {
    use std::ffi::OsStr;
    let base = std::env::temp_dir().join(format!("minibox-fuzz-records-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let containers = crate::state::Containers::new_at(&base);
    let (mut healthy, mut damaged) = (0, 0);
    for seed in 1..=5000u64 {
        let mut rng = Rng(seed);
        let id: String = (0..32)
            .map(|_| format!("{:02x}", rng.next() as u8))
            .collect();
        // Mostly the dir the record names; now and then another name.
        let dir = match rng.below(8) {
            0 => rng.pick(&["abc", "éééééééééééééé", "x y", "0"]).to_string(),
            1 => "f".repeat(64),
            _ => id.clone(),
        };
        let bytes = hostile_record(&mut rng, &id);
        let judged = std::panic::catch_unwind(|| {
            let verdict = crate::state::judge(OsStr::new(&dir), &bytes);
            // What the commands do with a record that passed.
            if let Ok(record) = &verdict {
                let _ = crate::lifecycle::row(record);
                let _ = crate::state::refresh(record.clone());
            }
            verdict
        });
        let judged = judged.unwrap_or_else(|_| {
            panic!(
                "seed {seed}: judging panicked on {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        match judged {
            Ok(record) => {
                healthy += 1;
                assert_eq!(
                    record.id, dir,
                    "seed {seed}: a record of another dir passed"
                );
                assert_eq!(record.short_id().len(), 12, "seed {seed}");
            }
            Err(why) => {
                damaged += 1;
                assert!(!why.contains('\n'), "seed {seed}: {why:?}");
            }
        }
        // Now and then the whole way: the file on disk, read back by a scan.
        if seed % 50 == 0 {
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(base.join("containers").join(&dir)).unwrap();
            std::fs::write(
                base.join("containers").join(&dir).join("config.v1.json"),
                &bytes,
            )
            .unwrap();
            let (records, bad) = containers.scan().unwrap();
            assert_eq!(records.len() + bad.len(), 1, "seed {seed}");
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    println!("5000 records: {healthy} usable, {damaged} damaged, none panicked");
    assert!(
        healthy > 100 && damaged > 1000,
        "healthy {healthy}, damaged {damaged}"
    );
}
