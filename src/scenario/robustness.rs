//! Any input gives a lab or problems, never a panic: the inputs the fuzzer found
//! (tests/fixtures/fuzz), each with the exact problem it gives, and the built-in labs
//! mutated at random: 5,000 per `cargo test` (about 10 s in a debug build, where the
//! YAML parser is slow), KUBELAB_FUZZ_CASES=N for more.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use super::load::load_lab;
use super::source::{LabFolder, built_in};

/// The first problem loading `bytes` gives, as `kubelab lint` prints it, or "ok".
fn outcome(bytes: &[u8]) -> String {
    match load_lab(&LabFolder::unpack(bytes)) {
        Ok(_) => "ok".to_string(),
        Err(problems) => problems.first().map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// Each `NAME.lab` is a packed lab (see `LabFolder::unpack`) and `NAME.expected` the
/// first line loading it gives.
#[test]
fn every_fuzz_finding_gives_its_exact_outcome() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lab"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures in {}", root.display());
    let mut mismatches = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(case).unwrap();
        let expected = std::fs::read_to_string(case.with_extension("expected")).unwrap();
        let got = catch_unwind(|| outcome(&bytes)).unwrap_or_else(|_| "a panic".to_string());
        if got != expected.trim_end() {
            mismatches.push(format!(
                "{}\n  want: {}\n  got:  {got}",
                case.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The built-in labs packed as the fuzzer's inputs.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for suite in super::source::SUITES {
        for folder in built_in(suite).unwrap() {
            let LabFolder::BuiltIn { dir, .. } = folder else {
                continue;
            };
            let mut packed = Vec::new();
            let mut others = Vec::new();
            for file in dir.files() {
                let name = file.path().file_name().unwrap().to_string_lossy();
                if name == super::load::LAB_FILE {
                    packed.extend_from_slice(file.contents());
                } else {
                    others.extend_from_slice(format!("\0{name}\n").as_bytes());
                    others.extend_from_slice(file.contents());
                }
            }
            packed.extend(others);
            seeds.push(packed);
        }
    }
    seeds
}

/// A small deterministic generator (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    /// Case `n`'s generator: its number spread by splitmix64 (never a zero state).
    fn for_case(n: u64) -> Rng {
        let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What YAML, the packing and Tera are made of, so mutations reach deeper than
/// random bytes do.
const TOKENS: &[&str] = &[
    "\0",
    "\n",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    "---\n",
    "!!str ",
    "\"",
    "'",
    "|\n",
    "{{ ",
    " }}",
    "{% ",
    " %}",
    "{# ",
    "include \"x\"",
    "../",
    "/",
    "${NAMESPACE}",
    "$(cat /x)",
    "${token:t}",
    "\u{fffd}",
    "  ",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            2 if at < input.len() => {
                let end = (at + rng.below(64)).min(input.len());
                input.drain(at..end);
            }
            3 if at < input.len() => {
                // Repeat a piece, as nesting and long keys are made.
                let end = (at + 1 + rng.below(32)).min(input.len());
                let piece = input[at..end].to_vec();
                for _ in 0..=rng.below(8) {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let end = (from + rng.below(256)).min(other.len());
                input.splice(at..at, other[from..end].iter().copied());
            }
            _ => input.insert(at, rng.next() as u8),
        }
    }
}

#[test]
fn mutated_built_in_labs_give_a_lab_or_problems() {
    let cases: usize = std::env::var("KUBELAB_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let seeds = seeds();
    assert!(seeds.len() >= 12, "{} seeds", seeds.len());
    for case in 0..cases {
        let mut rng = Rng::for_case(case as u64);
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        if catch_unwind(AssertUnwindSafe(|| outcome(&input))).is_err() {
            let saved = std::env::temp_dir().join(format!("kubelab-fuzz-case-{case}.lab"));
            std::fs::write(&saved, &input).unwrap();
            panic!(
                "case {case} panicked; its input is in {} (add it to tests/fixtures/fuzz)",
                saved.display()
            );
        }
    }
}
