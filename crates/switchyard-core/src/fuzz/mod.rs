//! A small mutation fuzzer that runs on stable Rust inside `cargo test`, for
//! the parsers that read untrusted bytes before anything else: the PROXY
//! protocol header and the TLS ClientHello peek (no nightly, no cargo-fuzz,
//! no coverage instrumentation).
//!
//! Each target is a `#[test]` in [`targets`]. It loads its committed corpus
//! from `crates/switchyard-core/fuzz-corpus/<target>/` (real headers and
//! hellos, and inputs that once failed), checks every entry as is, then for a
//! time budget mutates entries ([`mutate`]) and checks the results. A check
//! asserts properties, not answers: no panic, bounds on what is consumed,
//! the same answer whether the bytes arrive at once or as growing prefixes
//! split at random points, and round trips through the encoder.
//!
//! Without coverage feedback, the runner keeps (in memory) each input that
//! produces an *outcome class* not seen before (an error reason, a kind of
//! header, which TLVs it has), so later mutations start from inputs that
//! already reach deep into the parser.
//!
//! * `SWITCHYARD_FUZZ_SECONDS`: the budget per target (default 2, so a plain
//!   `cargo test` stays fast; `npm run fuzz` gives 30).
//! * `SWITCHYARD_FUZZ_SEED`: the PRNG seed (printed at the start) to replay a run.
//! * `SWITCHYARD_FUZZ_SAVE=1`: also write the new-class inputs into the
//!   corpus directory (to review and commit).
//!
//! On a failure the runner prints the input as hex, writes it to
//! `<target dir>/fuzz-failures/<target>-<hash>.bin` and fails the test. Copy
//! that file into the corpus to reproduce it on every run and keep it as a
//! regression test.

mod mutate;
mod targets;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// xorshift64*: tiny, fast, and good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift would stay at 0).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// A fuzz target: what to feed and how to judge it.
pub struct Target {
    /// The corpus directory's name and the failure files' prefix.
    pub name: &'static str,
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// Tokens the mutator splices in (signatures, keywords, record headers).
    pub dictionary: &'static [&'static [u8]],
    /// Checks one input: its outcome class, or what property failed.
    pub check: fn(&[u8], &mut Rng) -> Result<String, String>,
}

/// Most inputs kept in memory (the corpus plus the new-class inputs).
const MAX_CORPUS: usize = 4096;

fn env_flag(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus").join(name)
}

fn load_corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).expect("corpus file")).collect();
    assert!(!corpus.is_empty(), "fuzz corpus {} is empty", dir.display());
    corpus
}

fn hash(input: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(input)
}

/// Reports a failing input (hex on stderr, a file under the target dir) and fails the test.
fn fail(target: &Target, input: &[u8], why: &str, seed: u64) -> ! {
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("fuzz-failures");
    let file = dir.join(format!("{}-{:016x}.bin", target.name, hash(input)));
    let saved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&file, input));
    eprintln!("fuzz {}: FAILED (seed {seed}): {why}\ninput ({} bytes): {hex}", target.name, input.len());
    match saved {
        Ok(()) => panic!("fuzz {}: {why}; input saved to {}", target.name, file.display()),
        Err(e) => panic!("fuzz {}: {why}; could not save the input to {}: {e}", target.name, file.display()),
    }
}

/// Runs `input` through the target's check, turning a panic into a failure.
fn run_one(target: &Target, input: &[u8], rng: &mut Rng) -> Result<String, String> {
    match catch_unwind(AssertUnwindSafe(|| (target.check)(input, rng))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
            Err(format!("panicked: {}", msg.unwrap_or_default()))
        }
    }
}

/// Fuzzes `target` for the configured time budget; panics on the first failure.
pub fn run(target: &Target) {
    let seconds: f64 =
        env_flag("SWITCHYARD_FUZZ_SECONDS").map_or(2.0, |s| s.parse().expect("SWITCHYARD_FUZZ_SECONDS: a number of seconds"));
    let seed: u64 = env_flag("SWITCHYARD_FUZZ_SEED").map_or_else(
        || SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
        |s| s.parse().expect("SWITCHYARD_FUZZ_SEED: a number"),
    );
    let save = env_flag("SWITCHYARD_FUZZ_SAVE").is_some_and(|v| v == "1");
    let mut rng = Rng::new(seed);
    let mut corpus = load_corpus(target.name);
    let seeds = corpus.len();
    let mut classes = HashSet::new();
    // The committed corpus must pass as is (it holds the regressions).
    for input in &corpus {
        match run_one(target, input, &mut rng) {
            Ok(class) => {
                classes.insert(class);
            }
            Err(why) => fail(target, input, &why, seed),
        }
    }
    let started = Instant::now();
    let budget = Duration::from_secs_f64(seconds);
    let mut iterations: u64 = 0;
    while !iterations.is_multiple_of(64) || started.elapsed() < budget {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate::mutate(base, &corpus, target.dictionary, target.max_len, &mut rng);
        iterations += 1;
        let class = match run_one(target, &input, &mut rng) {
            Err(why) => fail(target, &input, &why, seed),
            Ok(class) => class,
        };
        if corpus.len() < MAX_CORPUS && classes.insert(class) {
            if save {
                let file = corpus_dir(target.name).join(format!("found-{:016x}.bin", hash(&input)));
                std::fs::write(&file, &input).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
            corpus.push(input);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {}: {iterations} inputs in {secs:.1} s ({:.0}/s), seed {seed}, {} outcome classes, corpus {seeds} + {} found",
        target.name,
        iterations as f64 / secs,
        classes.len(),
        corpus.len() - seeds
    );
}
