//! Typed outcomes of the service's failures. The HTTP crate maps each variant
//! to a status code and body; nothing here knows about HTTP.

use otp_core::IdentityError;

use crate::RateLimitInfo;

/// Which operation a limit guarded, for the right human message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedOperation {
    /// `request_otp`.
    Request,
    /// `verify_otp`.
    Verify,
}

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The identity is empty, too long or malformed (HTTP 422).
    #[error("invalid identity: {0}")]
    InvalidIdentity(#[from] IdentityError),
    /// The submitted code is not 4..=10 ASCII digits, the rule of
    /// [`OtpCode::parse`](otp_core::OtpCode::parse) (HTTP 422).
    #[error("otp {}", otp_core::CODE_RULE)]
    InvalidCodeFormat,
    /// Wrong, expired, replayed or wrong-length code (HTTP 400).
    #[error("invalid or expired OTP")]
    InvalidOtp {
        /// The identity's verify budget after this attempt.
        rate_limit: RateLimitInfo,
    },
    /// A limit refused the call (HTTP 429 with `Retry-After`).
    #[error("rate limit {limit} exceeded; retry after {retry_after_secs} s")]
    RateLimited {
        /// The operation that was refused.
        operation: LimitedOperation,
        /// The policy name that tripped.
        limit: &'static str,
        /// The tripped limit's figures (remaining is 0).
        info: RateLimitInfo,
        /// Seconds until the next attempt would be allowed.
        retry_after_secs: u64,
    },
    /// The delivery backend failed (HTTP 502).
    #[error("delivery failed: {0}")]
    DeliveryFailed(#[source] otp_delivery::DeliveryError),
    /// The store is unreachable and the fail mode is closed (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] otp_ratelimit::StoreError),
    /// Caller-supplied extra claims tried to set a registered claim
    /// (`sub`, `exp`, …); registered claims are never overridden.
    #[error("extra claim {0:?} would override a registered claim")]
    ReservedClaim(String),
    /// A refresh, access or logout token is not genuine: malformed, forged,
    /// of another key (HTTP 401 `token_invalid`). The field names the failed
    /// check (for logs; never token data).
    #[error("token is invalid: {0}")]
    TokenInvalid(&'static str),
    /// A genuine refresh token past its idle or absolute lifetime (HTTP 401
    /// `token_expired`).
    #[error("token has expired")]
    TokenExpired,
    /// The session of a genuine refresh token is over: logged out, revoked,
    /// signed out everywhere, expired in the store, or just revoked because
    /// the token was reused (HTTP 401 `session_revoked`).
    #[error("session has been revoked")]
    SessionRevoked,
    /// An unexpected internal failure, e.g. the token could not be signed
    /// (HTTP 500). Never caused by client input.
    #[error("internal error: {0}")]
    Internal(String),
}
