//! # otp-core
//!
//! The bottom crate of stateless-otp: everything that needs no async runtime.
//!
//! # Layout
//! - [`code`]: the digit count ([`Digits`]) and the one zeroizing code type
//!   ([`OtpCode`]) with the one parser of submitted codes.
//! - [`policy`]: the validated [`OtpPolicy`] and its builder.
//! - [`identity`]: parsing and normalization of identities (SPEC §3.4).
//! - [`secret`] and [`keys`]: secret types that zeroize and redact, base64 key
//!   parsing, key generation and the OTP key ring (SPEC §3.5).
//! - [`engine`]: the stateless, seed-compatible OTP derivation with acceptance
//!   windows and use counters (SPEC §3.1–§3.3).
//! - [`hotp`]: standard RFC 4226 HOTP / RFC 6238 TOTP and `otpauth://` URIs.
//! - [`token`]: JWT issue and verify (HS256, EdDSA), key sets, JWKS (SPEC §4).
//! - [`wire`]: the serde request/response bodies and error codes of the REST
//!   API (SPEC §5), shared by `otp-http` and `otp-client`.
//!
//! This crate never depends on tokio, actix, reqwest or Redis.
#![deny(missing_docs)]

pub mod code;
pub mod engine;
pub mod hotp;
pub mod identity;
pub mod keys;
pub mod policy;
pub mod secret;
pub mod token;
pub mod wire;

pub use code::{CodeError, Digits, OtpCode, CODE_PATTERN, CODE_RULE, MAX_DIGITS, MIN_DIGITS};
pub use engine::{OtpEngine, VerifyError};
pub use hotp::{hotp, StandardOtpError, Totp, TotpConfig};
pub use identity::{Identity, IdentityError, IdentityKind};
pub use keys::OtpKeyRing;
pub use policy::{HashAlgorithm, OtpPolicy, OtpPolicyBuilder, PolicyError};
pub use secret::SecretBytes;
