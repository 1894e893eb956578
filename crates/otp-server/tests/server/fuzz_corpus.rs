//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/*`) on
//! stable Rust: every file goes through the same function its fuzz target
//! calls (`otp_fuzz::targets`, the fuzz crate's library), and none may
//! panic. This keeps every input the fuzzer found interesting — including the
//! ones that once crashed — as a regression test without nightly or
//! cargo-fuzz. See docs/security.md ("Coverage-guided fuzzing").

use otp_fuzz::targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `f` on every file of the target's corpus; fails listing the files
/// that panicked. An empty or missing corpus is a failure too (they are
/// committed).
fn replay(target: &str, f: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "corpus {} is empty", dir.display());
    let mut failures = Vec::new();
    for path in &entries {
        let data = std::fs::read(path).expect("read corpus file");
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} corpus inputs panicked: {failures:?}",
        failures.len(),
        entries.len()
    );
    eprintln!("{target}: replayed {} inputs, no panic", entries.len());
}

#[test]
fn corpus_token_verify() {
    replay("token_verify", targets::token_verify);
}

#[test]
fn corpus_identity_parse() {
    replay("identity_parse", targets::identity_parse);
}

#[test]
fn corpus_key_parse() {
    replay("key_parse", targets::key_parse);
}

#[test]
fn corpus_otp_verify() {
    replay("otp_verify", targets::otp_verify);
}

#[test]
fn corpus_config_parse() {
    replay("config_parse", targets::config_parse);
}

#[test]
fn corpus_wire_json() {
    replay("wire_json", targets::wire_json);
}
