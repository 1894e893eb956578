//! Integration tests of `otp-core`, built as one test binary (one link
//! step). New tests go into one of these modules (or a new module declared
//! here), never into a new file directly under `tests/`: every file there
//! is a separate binary (kanidm's `DO_NOT_ADD_MORE_TESTS_HERE`). Fixtures
//! stay in `tests/data/` and `tests/interop/`.
//!
//! - [`vectors`]: known-answer vectors (RFC 4226 App. D, RFC 6238 App. B,
//!   the Python-compatibility vectors of SPEC §3.1).
//! - [`engine_props`]: property tests of the engine (round trips, changed
//!   digits, the acceptance window of SPEC §3.2).
//! - [`tokens`]: `otp_core::token` (SPEC §4): RFC 7515 / 8037 vectors, the
//!   RFC 8725 rejections, rotation and JWKS, interop with PyJWT.
//! - [`refresh`]: refresh tokens (SPEC §10): round trip, tampering, key
//!   rotation, strict parsing, the HKDF derivation pinned independently,
//!   and no JWT verifier (ours, PyJWT) accepting one.

mod engine_props;
mod refresh;
mod tokens;
mod vectors;
