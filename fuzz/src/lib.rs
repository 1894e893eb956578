//! # otp-fuzz
//!
//! The bodies of the cargo-fuzz targets of stateless-otp, kept in a library so
//! that the same functions run in two places:
//! - under libFuzzer (`cargo +nightly fuzz run <target>`, `fuzz_targets/*.rs`);
//! - on stable Rust in CI, where `crates/otp-server/tests/server/fuzz_corpus.rs`
//!   depends on this library (without its `libfuzzer` feature) and replays
//!   every committed corpus file (`fuzz/corpus/<target>/*`), asserting no panic.
//!
//! The configuration target uses otp-server's library (`otp_server::settings`).

pub mod targets;
