//! # otp-core
//!
//! The bottom crate of stateless-otp: everything that needs no async runtime.
//! Its main types live at the crate root (`otp_core::OtpEngine`,
//! `otp_core::TokenService`, …); the modules behind them are private, except
//! [`wire`] (the REST bodies, a namespace of their own) and [`dangerous`]
//! (unverified token decoding, named so that every use stands out).
//!
//! # Layout
//! - Codes: [`Digits`] (4..=10, its value is the modulus) and the one
//!   zeroizing [`OtpCode`], with [`OtpCode::parse`], the one parser of
//!   submitted codes.
//! - Policy and engine: [`OtpPolicy`] (built by [`OtpPolicy::builder`]) and
//!   [`OtpEngine`], the stateless, seed-compatible derivation with acceptance
//!   windows and use counters (SPEC §3.1–§3.3).
//! - Identities: [`Identity::parse`], parsing and normalization (SPEC §3.4).
//! - Secrets and keys: [`SecretBytes`] (zeroizes and redacts), base64 key
//!   parsing ([`parse_otp_key`]), key generation and the [`OtpKeyRing`]
//!   (SPEC §3.5).
//! - Standard OTP: RFC 4226 [`hotp`], RFC 6238 [`Totp`] and `otpauth://` URIs.
//! - Tokens: [`TokenService`] issues and verifies JWTs (HS256, EdDSA),
//!   [`TokenKeys`], [`Jwks`] and [`JwksVerifier`] for offline verification
//!   (SPEC §4); refresh tokens ([`TokenService::issue_refresh`],
//!   [`RefreshClaims`], [`SessionId`], SPEC §10).
//! - Identifiers: [`fill_random_id`], the OS generator's bytes for token,
//!   session and event ids, fetched in blocks (one system call per
//!   [`ID_POOL_BYTES`]).
//! - [`wire`]: the serde request/response bodies and error codes of the REST
//!   API (SPEC §5), shared by `otp-http` and `otp-client`.
//!
//! ```
//! use otp_core::{Identity, OtpCode, OtpEngine, OtpKeyRing, OtpPolicy, SecretBytes};
//!
//! let keys = OtpKeyRing::new(SecretBytes::new(vec![7; 32]), vec![])?;
//! let engine = OtpEngine::new(OtpPolicy::default(), keys);
//! let who = Identity::parse("Alice@Example.com")?;
//! let sent = engine.generate(&who, 1_700_000_000, 0);
//!
//! let typed = OtpCode::parse(sent.as_str())?;
//! let counters = vec![0; engine.candidate_windows(1_700_000_000).len()];
//! assert!(engine.verify(&who, &typed, 1_700_000_000, &counters).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This crate never depends on tokio, actix, reqwest or Redis.
#![deny(missing_docs)]

mod code;
mod engine;
mod hex;
mod hotp;
mod identity;
mod ids;
mod keys;
mod policy;
mod secret;
mod token;
pub mod wire;

pub use code::{CodeError, Digits, OtpCode, CODE_PATTERN, CODE_RULE, MAX_DIGITS, MIN_DIGITS};
pub use engine::{unix_now, CandidateWindows, Match, OtpEngine, VerifyError};
pub use hex::push_lower_hex;
pub use hotp::{base32_encode, hotp, StandardOtpError, Totp, TotpConfig};
pub use identity::{Identity, IdentityError, IdentityKind, MAX_IDENTITY_CHARS};
pub use ids::{fill_random_id, RandomUnavailable, ID_POOL_BYTES};
pub use keys::{
    decode_base64_key, encode_key, generate_key, parse_otp_key, OtpKeyError, OtpKeyRing,
    GENERATED_KEY_BYTES, MIN_OTP_KEY_BYTES,
};
pub use policy::{
    HashAlgorithm, OtpPolicy, OtpPolicyBuilder, PolicyError, DEFAULT_CLOCK_SKEW_SECONDS,
    DEFAULT_DRIFT_TOLERANCE, DEFAULT_WINDOW_SECONDS, MAX_DRIFT, MIN_WINDOW_SECONDS,
};
pub use secret::SecretBytes;
pub use token::{
    dangerous, ed25519_pkcs8_pem, generate_ed25519_pkcs8, generate_hs256_secret, is_refresh_token,
    Algorithm, Audience, Claims, IssuedToken, Jwk, Jwks, JwksVerifier, RefreshClaims,
    RefreshTokenError, SessionId, SigningKey, TokenConfig, TokenError, TokenKeyError, TokenKeys,
    TokenService, VerifyingKey, DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_TOKEN_LEEWAY_SECONDS,
    DEFAULT_TOKEN_TTL_SECONDS, MAX_REFRESH_SUBJECT_BYTES, MAX_REFRESH_TOKEN_BYTES, MAX_TOKEN_BYTES,
    MIN_HS256_SECRET_BYTES, REFRESH_TOKEN_PREFIX, REGISTERED_CLAIMS,
};
