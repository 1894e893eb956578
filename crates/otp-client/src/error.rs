//! The SDK's error type: one [`Error`] enum whose variants are the server's
//! stable error codes (SPEC §5) plus the failures that happen on the client
//! side (transport, undecodable answers, offline token checks).
//!
//! Messages never contain a code, a token or a secret.

use std::time::Duration;

use otp_core::wire::{ErrorBody, ErrorCode, FieldError};
use otp_core::{TokenError, TokenKeyError};

/// Why a 401 was answered (`token_missing`, `token_invalid`, `token_expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnauthorizedReason {
    /// No bearer token was sent (`token_missing`).
    Missing,
    /// The token failed a check other than expiry (`token_invalid`).
    Invalid,
    /// The token has expired (`token_expired`). For the stored access
    /// token the client has already refreshed once and retried; from a
    /// refresh, the session's lifetime is over: sign in again.
    Expired,
}

impl UnauthorizedReason {
    /// The wire code: `token_missing`, `token_invalid` or `token_expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnauthorizedReason::Missing => "token_missing",
            UnauthorizedReason::Invalid => "token_invalid",
            UnauthorizedReason::Expired => "token_expired",
        }
    }
}

impl std::fmt::Display for UnauthorizedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything an [`OtpClient`](crate::OtpClient) call can fail with.
///
/// Server answers map by their stable `error` code; [`Error::code`] gives the
/// code back as a string (the same strings the JavaScript and Python SDKs
/// use, e.g. `network_error` for [`Error::Transport`]).
///
/// ```
/// use otp_client::Error;
/// fn explain(err: &Error) -> String {
///     match err {
///         Error::InvalidOtp { .. } => "wrong or expired code, try again".into(),
///         Error::RateLimited { retry_after: Some(d), .. } => format!("wait {} s", d.as_secs()),
///         other => other.to_string(),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 429 `rate_limit_exceeded`: too many sends or verification attempts.
    #[error("rate limited: {message}")]
    RateLimited {
        /// How long to wait, from `Retry-After` (`None` when absent).
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// 400 `otp_invalid`: wrong, expired, replayed or wrong-length code.
    #[error("invalid OTP: {message}")]
    InvalidOtp {
        /// The server's message (`"Invalid or expired OTP."`).
        message: String,
    },
    /// 502 `delivery_failed`: the server could not deliver the code.
    #[error("delivery failed: {message}")]
    DeliveryFailed {
        /// The server's message.
        message: String,
    },
    /// 401 from `GET /token/verify` or `POST /token/refresh`, or [`UnauthorizedReason::Missing`] when
    /// the token is empty or none is stored (then no request is sent and
    /// [`Error::status`] is `None`).
    #[error("unauthorized ({reason}): {message}")]
    Unauthorized {
        /// Which token check failed.
        reason: UnauthorizedReason,
        /// The server's message.
        message: String,
    },
    /// 401 `session_revoked` from `POST /api/v1/token/refresh`: the
    /// session is over (logged out, signed out everywhere, or revoked
    /// because a spent refresh token was presented again). The client has
    /// forgotten its tokens: sign in again.
    #[error("session revoked: {message}")]
    SessionRevoked {
        /// The server's message.
        message: String,
    },
    /// 422 `validation_error`: malformed input (bad identity, code not
    /// 4–10 digits, …).
    #[error("validation error: {message}")]
    Validation {
        /// The offending fields.
        details: Vec<FieldError>,
        /// The server's message.
        message: String,
    },
    /// 503 `backend_unavailable` (or any 503): the server's store is down.
    #[error("service unavailable: {message}")]
    Unavailable {
        /// How long to wait, from `Retry-After` (`None` when absent).
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// Any other error answer: 404, 405, 413, 415, 500, or a non-API error
    /// page (e.g. from a proxy in front of the server).
    #[error("HTTP {status}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The server's `error` code when the body was an API error body.
        code: Option<ErrorCode>,
        /// The server's message, or a description of the answer.
        message: String,
    },
    /// No answer: connection refused or reset, DNS failure, TLS failure or
    /// timeout ([`Error::is_timeout`]).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success status whose body is not the documented JSON.
    #[error("unexpected response (HTTP {status}): {message}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// What was wrong with the body.
        message: String,
    },
    /// Offline verification: the token failed a check (see
    /// [`TokenError::is_expired`]).
    #[error("token rejected: {0}")]
    Token(#[source] TokenError),
    /// Offline verification: the server's JWKS has no usable Ed25519 key
    /// (e.g. the server signs with HS256, whose key is never published).
    #[error("JWKS unusable: {0}")]
    Jwks(#[source] TokenKeyError),
    /// Offline verification: no keys are cached and the last JWKS fetch
    /// failed less than [`OfflineVerifier::min_refetch_interval`] ago, so no
    /// new fetch is made yet (a down server is not asked once per token).
    ///
    /// [`OfflineVerifier::min_refetch_interval`]: crate::OfflineVerifier::min_refetch_interval
    #[error("JWKS not loaded: the last fetch failed ({cause}); next attempt in {} ms", retry_after.as_millis())]
    JwksUnavailable {
        /// Time until the next fetch may be made.
        retry_after: Duration,
        /// Why the last fetch failed.
        cause: String,
    },
    /// The client could not be built (bad base URL, bad user agent, …).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// A stable snake_case code: the server's error code for API errors,
    /// `network_error`/`timeout` for transport failures, `invalid_response`,
    /// `token_invalid`/`token_expired` for offline checks, `jwks_unusable`,
    /// `invalid_config`, `http_error` for non-API error pages.
    pub fn code(&self) -> &'static str {
        match self {
            Error::RateLimited { .. } => ErrorCode::RateLimitExceeded.as_str(),
            Error::InvalidOtp { .. } => ErrorCode::OtpInvalid.as_str(),
            Error::DeliveryFailed { .. } => ErrorCode::DeliveryFailed.as_str(),
            Error::Unauthorized { reason, .. } => reason.as_str(),
            Error::SessionRevoked { .. } => ErrorCode::SessionRevoked.as_str(),
            Error::Validation { .. } => ErrorCode::ValidationError.as_str(),
            Error::Unavailable { .. } => ErrorCode::BackendUnavailable.as_str(),
            Error::Http { code: Some(c), .. } => c.as_str(),
            Error::Http { code: None, .. } => "http_error",
            Error::Transport(e) if e.is_timeout() => "timeout",
            Error::Transport(_) => "network_error",
            Error::Decode { .. } => "invalid_response",
            Error::Token(e) => e.reason(),
            Error::Jwks(_) => "jwks_unusable",
            Error::JwksUnavailable { .. } => "jwks_unavailable",
            Error::Config(_) => "invalid_config",
        }
    }

    /// The HTTP status of the answer, `None` when no answer was involved.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::RateLimited { .. } => Some(429),
            Error::InvalidOtp { .. } => Some(400),
            Error::DeliveryFailed { .. } => Some(502),
            Error::Unauthorized {
                reason: UnauthorizedReason::Missing,
                ..
            } => None,
            Error::Unauthorized { .. } | Error::SessionRevoked { .. } => Some(401),
            Error::Validation { .. } => Some(422),
            Error::Unavailable { .. } => Some(503),
            Error::Http { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
            Error::Token(_) | Error::Jwks(_) | Error::JwksUnavailable { .. } | Error::Config(_) => {
                None
            }
        }
    }

    /// Returns true if and only if this is a transport timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Transport(e) if e.is_timeout())
    }

    /// The wait the server asked for (`Retry-After`) on 429 and 503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } | Error::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A copy of a 401 answer (`Unauthorized`, `SessionRevoked`), which a
    /// refresh hands to the callers that waited for it; `None` for others.
    pub(crate) fn clone_unauthorized(&self) -> Option<Error> {
        match self {
            Error::Unauthorized { reason, message } => Some(Error::Unauthorized {
                reason: *reason,
                message: message.clone(),
            }),
            Error::SessionRevoked { message } => Some(Error::SessionRevoked {
                message: message.clone(),
            }),
            _ => None,
        }
    }

    /// Maps an error answer. `body` is the raw body; `retry_after` comes from
    /// the `Retry-After` header.
    pub(crate) fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        // Parse loosely first so that an error code this SDK version does not
        // know yet still yields the server's message.
        let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let typed: Option<ErrorBody> = value
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let message = value
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| describe_status(status));
        let raw_code = value
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|c| c.as_str());
        match (typed.as_ref().map(|b| b.error), status) {
            (Some(ErrorCode::RateLimitExceeded), _) | (None, 429) => Error::RateLimited {
                retry_after,
                message,
            },
            (Some(ErrorCode::OtpInvalid), _) => Error::InvalidOtp { message },
            (Some(ErrorCode::DeliveryFailed), _) => Error::DeliveryFailed { message },
            (Some(ErrorCode::TokenMissing), _) => Error::Unauthorized {
                reason: UnauthorizedReason::Missing,
                message,
            },
            (Some(ErrorCode::TokenExpired), _) => Error::Unauthorized {
                reason: UnauthorizedReason::Expired,
                message,
            },
            (Some(ErrorCode::TokenInvalid), _) => Error::Unauthorized {
                reason: UnauthorizedReason::Invalid,
                message,
            },
            (Some(ErrorCode::SessionRevoked), _) => Error::SessionRevoked { message },
            (None, 401) if raw_code.is_none() => Error::Unauthorized {
                reason: UnauthorizedReason::Invalid,
                message,
            },
            (Some(ErrorCode::ValidationError), _) => Error::Validation {
                details: typed.and_then(|b| b.details).unwrap_or_default(),
                message,
            },
            (Some(ErrorCode::BackendUnavailable), _) | (None, 503) => Error::Unavailable {
                retry_after,
                message,
            },
            (code, status) => Error::Http {
                status,
                code,
                message,
            },
        }
    }
}

fn describe_status(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("the server answered {status} {reason}"),
        None => format!("the server answered HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> Error {
        Error::from_response(status, body.as_bytes(), Some(Duration::from_secs(7)))
    }

    #[test]
    fn api_error_codes_map_to_variants() {
        assert!(matches!(
            map(429, r#"{"error":"rate_limit_exceeded","message":"m"}"#),
            Error::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 7
        ));
        assert!(matches!(
            map(400, r#"{"error":"otp_invalid","message":"Invalid or expired OTP."}"#),
            Error::InvalidOtp { message } if message == "Invalid or expired OTP."
        ));
        assert!(matches!(
            map(502, r#"{"error":"delivery_failed","message":"m"}"#),
            Error::DeliveryFailed { .. }
        ));
        let err = map(401, r#"{"error":"session_revoked","message":"m"}"#);
        assert!(matches!(&err, Error::SessionRevoked { message } if message == "m"));
        assert_eq!((err.code(), err.status()), ("session_revoked", Some(401)));
        for (code, reason) in [
            ("token_missing", UnauthorizedReason::Missing),
            ("token_invalid", UnauthorizedReason::Invalid),
            ("token_expired", UnauthorizedReason::Expired),
        ] {
            let err = map(401, &format!(r#"{{"error":"{code}","message":"m"}}"#));
            assert!(matches!(err, Error::Unauthorized { reason: r, .. } if r == reason));
            assert_eq!(err.code(), code);
        }
        let err = map(
            422,
            r#"{"error":"validation_error","message":"m","details":[{"loc":["body","identity"],"msg":"bad","type":"invalid"}]}"#,
        );
        match &err {
            Error::Validation { details, .. } => assert_eq!(details[0].loc[1], "identity"),
            other => panic!("expected Validation, got {other:?}"),
        }
        assert_eq!(err.status(), Some(422));
        assert!(matches!(
            map(503, r#"{"error":"backend_unavailable","message":"m"}"#),
            Error::Unavailable {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            map(413, r#"{"error":"payload_too_large","message":"m"}"#),
            Error::Http {
                status: 413,
                code: Some(ErrorCode::PayloadTooLarge),
                ..
            }
        ));
    }

    #[test]
    fn non_api_bodies_fall_back_on_the_status() {
        assert!(matches!(
            map(503, "<html>bad gateway</html>"),
            Error::Unavailable { .. }
        ));
        assert!(matches!(map(429, ""), Error::RateLimited { .. }));
        let err = map(502, "<html>proxy</html>");
        assert!(matches!(
            err,
            Error::Http {
                status: 502,
                code: None,
                ..
            }
        ));
        assert_eq!(err.code(), "http_error");
        assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
    }

    #[test]
    fn an_unknown_error_code_keeps_the_message() {
        let err = map(
            418,
            r#"{"error":"brand_new_code","message":"from the future"}"#,
        );
        assert!(
            matches!(&err, Error::Http { status: 418, code: None, message } if message == "from the future")
        );
    }
}
