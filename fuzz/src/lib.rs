//! # otp-fuzz
//!
//! The bodies of the cargo-fuzz targets of stateless-otp, kept in a library so
//! that the same functions run in two places:
//! - under libFuzzer (`cargo +nightly fuzz run <target>`, `fuzz_targets/*.rs`);
//! - on stable Rust in CI, where `crates/otp-server/tests/fuzz_corpus.rs`
//!   includes [`targets`] and replays every committed corpus file
//!   (`fuzz/corpus/<target>/*`), asserting no panic.
//!
//! The configuration target needs otp-server's settings module, which lives in
//! a binary crate; it is compiled in here by path (it only refers to
//! `crate::vars`, included beside it).

#[path = "../../crates/otp-server/src/settings.rs"]
#[allow(dead_code, missing_docs)]
mod settings;
#[path = "../../crates/otp-server/src/vars.rs"]
#[allow(dead_code, missing_docs)]
mod vars;

pub mod targets;
