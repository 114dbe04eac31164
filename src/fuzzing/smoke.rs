//! The stable-Rust smoke fuzz run by `cargo test`: every target over its checked-in corpus
//! (`tests/fuzz/corpus/<target>/`, regression inputs included), then a fixed number of
//! mutations drawn from a seeded generator, so a run is the same on every machine and stays
//! within a couple of seconds. The real, open-ended fuzzing is `scripts/fuzz.sh`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;

use super::TARGETS;

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Byte strings that tend to matter to these parsers.
const TOKENS: &[&[u8]] = &[
    b"%",
    b"%FF",
    b"%00",
    b"&",
    b"=",
    b"+",
    b"/",
    b"//",
    b"..",
    b".",
    b"-",
    b"?",
    b"\0",
    b"\xff",
    b"\xe4\xb8",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e400",
    b"99999999999999999999",
    b"9223372036854775808",
    b"0.01",
    b"50000.00",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"'; DROP TABLE payments; --",
    b"<script>",
    b"\xc0\x80",
    b"\xed\xa0\x80",
];

const MAX_LEN: usize = 4096;

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                let start = at.min(end);
                input.drain(start..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 if !input.is_empty() => {
                let start = rng.below(input.len());
                let end = (start + 1 + rng.below(32)).min(input.len());
                let chunk = input[start..end].to_vec();
                input.splice(at..at, chunk);
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                let n = rng.below(8);
                input.splice(at..at, (0..n).map(|_| rng.next() as u8));
            }
        }
    }
    input.truncate(MAX_LEN);
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| std::fs::read(path).expect("corpus file"))
        .collect()
}

/// Runs `target` on `input`; a panic is re-raised with the input shown so it can be kept.
fn run_one(name: &str, target: fn(&[u8]), input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(input))) {
        eprintln!(
            "fuzz target {name} panicked on {} bytes: {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        );
        resume_unwind(panic);
    }
}

/// Mutations per target: the signing targets do RSA work per input, so they get fewer.
fn budget(name: &str) -> usize {
    match name {
        "wechat_notify" | "alipay_notify" => 300,
        "config" => 1500,
        _ => 4000,
    }
}

fn smoke(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a known target");
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "the corpus of {name} is empty");
    for seed in &seeds {
        run_one(name, target, seed);
    }
    let mut rng = Rng(0x7A68_6966_7500 ^ name.len() as u64);
    for _ in 0..budget(name) {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        run_one(name, target, &input);
    }
}

#[test]
fn every_target_has_a_corpus_and_a_smoke_test() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "route",
            "query_form",
            "amount",
            "wechat_notify",
            "alipay_notify",
            "config"
        ]
    );
    for name in names {
        assert!(!corpus(name).is_empty(), "{name}");
    }
}

#[test]
fn route_parsing_survives_its_corpus_and_mutations() {
    smoke("route");
}

#[test]
fn query_and_form_parsing_survive_their_corpus_and_mutations() {
    smoke("query_form");
}

#[test]
fn amount_parsing_survives_its_corpus_and_mutations() {
    smoke("amount");
}

#[test]
fn wechat_notifications_survive_their_corpus_and_mutations() {
    smoke("wechat_notify");
}

#[test]
fn alipay_notifications_survive_their_corpus_and_mutations() {
    smoke("alipay_notify");
}

#[test]
fn config_loading_survives_its_corpus_and_mutations() {
    smoke("config");
}
