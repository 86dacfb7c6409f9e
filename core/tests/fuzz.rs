//! The bounded fuzz pass of the test suite, on stable Rust: every input of the committed
//! corpus (`fuzz/corpus/`, grown and minimised with cargo fuzz, see `fuzz/README.md`), then
//! a fixed number of mutations of them, through the same entry points the cargo-fuzz
//! targets use (`starling_core::fuzz`). Deterministic (a fixed seed), so a failure
//! reproduces; the input that failed is written to `target/fuzz-failure-*` and named.
//!
//! `STARLING_FUZZ_ITERATIONS` sets the number of mutations per target (default 200,000).

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// Pieces a mutation may insert: XML syntax and the names the parsers look for.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"</",
    b"'",
    b"\"",
    b"=",
    b"&amp;",
    b"&lt;",
    b"&#0;",
    b"&#x10FFFF;",
    b"<body>",
    b"</body>",
    b"<message xmlns='jabber:client'>",
    b"</message>",
    b" xmlns='urn:xmpp:omemo:2'",
    b" xmlns='eu.siacs.conversations.axolotl'",
    b" xmlns='http://jabber.org/protocol/pubsub#event'",
    b" xmlns='http://www.w3.org/2005/Atom'",
    b" xmlns='urn:xmpp:mam:2'",
    b" xmlns='urn:xmpp:carbons:2'",
    b" xmlns='urn:xmpp:forward:0'",
    b" from='alice@example.org'",
    b" from='room@conference.example.org/x'",
    b" type='chat'",
    b" type='groupchat'",
    b" type='error'",
    b" id=''",
    b" queryid='q1'",
    b" rid='4294967295'",
    b" sid='-1'",
    b" size='18446744073709551616'",
    b" width='99999999'",
    b"data:image/png;base64,",
    b"aesgcm://",
    b"https://",
    b"xmpp:",
    b"?OTR",
    b"\xff\xfe",
    b"\x00",
    b"\xe2\x80\xae",
];

fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.random_range(0..=out.len())
        };
        match rng.random_range(0..7) {
            0 if at < out.len() => out[at] ^= 1 << rng.random_range(0..8),
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                out.splice(at..at, t.iter().copied());
            }
            2 if at < out.len() => {
                let end = rng.random_range(at..=out.len().min(at + 64));
                out.drain(at..end);
            }
            3 if at < out.len() => {
                let end = rng.random_range(at..=out.len().min(at + 64));
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => out.truncate(at),
            5 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let end = rng.random_range(from..=other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => out.insert(at.min(out.len()), rng.random()),
        }
    }
    out.truncate(64 * 1024);
    out
}

fn run(target: &str, entry: fn(&[u8])) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "the {target} corpus is empty");
    let iterations: usize = std::env::var("STARLING_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut rng = StdRng::seed_from_u64(0x57a7_11a9);
    let inputs = seeds.iter().cloned().chain((0..iterations).map(|_| {
        let a = &seeds[rng.random_range(0..seeds.len())];
        let b = &seeds[rng.random_range(0..seeds.len())];
        mutate(&mut rng, a, b)
    }));
    for (n, input) in inputs.enumerate() {
        if std::panic::catch_unwind(|| entry(&input)).is_err() {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target")
                .join(format!("fuzz-failure-{target}-{n}"));
            let saved = std::fs::write(&path, &input).map(|()| path.display().to_string());
            panic!(
                "{target}: input {n} panicked; saved as {saved:?} (replay it with \
                 `cargo fuzz run {target} FILE` in core/)"
            );
        }
    }
    println!(
        "{target}: {} corpus inputs and {iterations} mutations",
        seeds.len()
    );
}

#[test]
fn stanzas() {
    run("stanza", starling_core::fuzz::stanza);
}

#[test]
fn omemo_bytes() {
    run("omemo_bytes", starling_core::fuzz::omemo_bytes);
}
