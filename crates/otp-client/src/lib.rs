//! # otp-client
//!
//! The async Rust SDK of stateless-otp (SPEC §1): a typed client of the
//! REST API (SPEC §5) over reqwest with rustls, and offline verification of
//! the server's EdDSA access tokens against its JWKS.
//!
//! # Layout
//! - [`OtpClient`] / [`ClientBuilder`]: one method per route —
//!   [`request_otp`](OtpClient::request_otp),
//!   [`verify_otp`](OtpClient::verify_otp) (keeps the access and refresh
//!   tokens), [`refresh`](OtpClient::refresh), [`logout`](OtpClient::logout),
//!   [`logout_everywhere`](OtpClient::logout_everywhere),
//!   [`introspect_token`](OtpClient::introspect_token),
//!   [`verify_bearer`](OtpClient::verify_bearer), [`jwks`](OtpClient::jwks),
//!   [`health`](OtpClient::health); optional bounded retry
//!   ([`ClientRetryPolicy`]).
//! - [`TokenStorage`] / [`MemoryTokenStorage`] / [`StoredTokens`]: where the
//!   session's tokens are kept (pluggable; memory by default). Calls that
//!   send the stored access token refresh once on `token_expired` and
//!   retry once; one refresh is in flight at a time.
//! - [`OfflineVerifier`]: verifies tokens locally with cached JWKS keys.
//! - [`Error`]: one variant per server error code, plus transport and
//!   decoding failures.
//! - [`wire`] and [`token`]: the request/response bodies and token types,
//!   re-exported from `otp-core` (the server uses the very same types).
//!
//! # Example
//! ```no_run
//! use otp_client::{Error, OtpClient};
//!
//! # async fn run() -> Result<(), Error> {
//! let client = OtpClient::new("http://127.0.0.1:8000")?;
//! client.request_otp("alice@example.com").await?;
//! match client.verify_otp("alice@example.com", "123456").await {
//!     Ok(_) => println!("signed in"),
//!     Err(Error::InvalidOtp { .. }) => println!("wrong code"),
//!     Err(Error::RateLimited { retry_after, .. }) => println!("wait {retry_after:?}"),
//!     Err(other) => return Err(other),
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod error;
mod offline;
mod session;
mod storage;

pub use client::{
    ClientBuilder, ClientRetryPolicy, OtpClient, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
};
pub use error::{Error, UnauthorizedReason};
pub use offline::{OfflineVerifier, DEFAULT_MAX_AGE, DEFAULT_MIN_REFETCH_INTERVAL};
pub use storage::{MemoryTokenStorage, StoredTokens, TokenStorage};

// The README's code blocks are compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The REST API's bodies and error codes (`otp_core::wire`).
pub use otp_core::wire;

/// Token types used by offline verification: [`token::Claims`],
/// [`token::TokenConfig`], [`token::TokenError`], [`token::Jwks`].
pub mod token {
    pub use otp_core::{Audience, Claims, Jwk, Jwks, TokenConfig, TokenError, TokenKeyError};
}
