//! Integration tests of `otp-client`, built as one test binary (one link
//! step). New tests go into one of these modules (or a new module declared
//! here), never into a new file directly under `tests/`: every file there
//! is a separate binary (kanidm's `DO_NOT_ADD_MORE_TESTS_HERE`).
//!
//! - [`canned_answers`]: the client against canned HTTP answers
//!   (wiremock): request shapes, error mapping, the bounded retry, the JWKS
//!   cache of the offline verifier.
//! - [`sessions`]: refresh and logout against canned answers: one refresh
//!   on `token_expired` then one retry, one refresh in flight for N
//!   concurrent callers, `session_revoked`, the pluggable storage.
//! - [`readme`]: the README shows `examples/login.rs` verbatim.
//!
//! The same SDK against the real server is tested by otp-server's
//! `sdk_e2e` module.

mod canned_answers;
mod readme;
mod sessions;
