//! Wire types of the REST API (SPEC §5): request and response bodies and the
//! stable error codes, defined once and shared by `otp-http` (server) and
//! `otp-client` (SDK). Serde only: no HTTP types here.
//!
//! Field names and messages are those of the Python service this product
//! replaces; fields may be added, never removed or renamed.
//!
//! ```
//! use otp_core::wire::{ErrorBody, ErrorCode};
//! let body = ErrorBody::new(ErrorCode::OtpInvalid, "Invalid or expired OTP.");
//! assert_eq!(
//!     serde_json::to_string(&body).unwrap(),
//!     r#"{"error":"otp_invalid","message":"Invalid or expired OTP."}"#
//! );
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stands in for a secret (a code, a token) in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Human messages the Python service sent, kept word for word.
pub mod messages {
    /// 200 of `POST /otp/request`.
    pub const OTP_SENT: &str = "OTP sent successfully.";
    /// 200 of `POST /otp/verify`.
    pub const OTP_VERIFIED: &str = "OTP verified successfully.";
    /// 400 `otp_invalid`.
    pub const OTP_INVALID: &str = "Invalid or expired OTP.";
    /// 429 on `POST /otp/request`.
    pub const TOO_MANY_REQUESTS: &str =
        "Too many OTP requests. Please wait before requesting again.";
    /// 429 on `POST /otp/verify`.
    pub const TOO_MANY_VERIFICATIONS: &str =
        "Too many verification attempts. Please request a new OTP.";
    /// 502 `delivery_failed`.
    pub const DELIVERY_FAILED: &str = "Failed to deliver OTP. Please try again.";
}

/// `POST /api/v1/otp/request` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpRequest {
    /// Email address, E.164 phone number (`+…`) or opaque user id: at most
    /// 320 characters once surrounding white space is trimmed (so the raw
    /// string may be longer, and the schema states no `maxLength`).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "alice@example.com", min_length = 1)
    )]
    pub identity: String,
}

/// `POST /api/v1/otp/request` 200 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpRequestResponse {
    /// Always `true` on 200.
    pub success: bool,
    /// `"OTP sent successfully."`
    pub message: String,
    /// Seconds the code stays valid (rest of the window + drift windows).
    pub ttl_seconds: u64,
    /// Unix time (seconds) at which the code stops verifying.
    pub expires_at: u64,
    /// Requests left for this identity in the current rate-limit window.
    pub rate_limit_remaining: u32,
}

/// `POST /api/v1/otp/verify` body. `Debug` redacts the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpVerifyRequest {
    /// The identity the code was sent to (at most 320 characters once
    /// surrounding white space is trimmed; no `maxLength` on the raw string).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "alice@example.com", min_length = 1)
    )]
    pub identity: String,
    /// The code, 4 to 10 ASCII digits ([`OtpCode::parse`](crate::OtpCode::parse)).
    #[cfg_attr(feature = "openapi", schema(schema_with = otp_code_schema))]
    pub otp: String,
}

/// The OpenAPI schema of a submitted code: the pattern is [`CODE_PATTERN`],
/// the rule of [`OtpCode::parse`](crate::OtpCode::parse), so the two cannot
/// drift apart.
///
/// [`CODE_PATTERN`]: crate::CODE_PATTERN
#[cfg(feature = "openapi")]
fn otp_code_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The code, 4 to 10 ASCII digits."))
        .examples(["123456"])
        .pattern(Some(crate::CODE_PATTERN))
        .min_length(Some(usize::from(crate::MIN_DIGITS)))
        .max_length(Some(usize::from(crate::MAX_DIGITS)))
        .build()
}

/// `POST /api/v1/otp/verify` 200 response. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpVerifyResponse {
    /// Always `true` on 200.
    pub success: bool,
    /// `"OTP verified successfully."`
    pub message: String,
    /// The signed JWT.
    pub access_token: String,
    /// Always `"bearer"`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Verification attempts left for this identity in the current window.
    pub rate_limit_remaining: u32,
    /// The session's refresh token (SPEC §10); absent with `SESSIONS=off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires; absent with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}

/// `POST /api/v1/token/refresh` body. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    /// The refresh token (`ort1_…`).
    pub refresh_token: String,
}

/// `POST /api/v1/token/refresh` 200 response. `Debug` redacts the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshResponse {
    /// Always `true` on 200.
    pub success: bool,
    /// A new access token of the session.
    pub access_token: String,
    /// Always `"bearer"`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The successor refresh token (the one presented is spent).
    pub refresh_token: String,
    /// Seconds until the successor expires.
    pub refresh_expires_in: u64,
}

/// `POST /api/v1/logout` body (optional with a bearer token). `Debug`
/// redacts the token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogoutRequest {
    /// A refresh token of the session, instead of a bearer access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// `true`: end every session of the identity ("sign out everywhere").
    #[serde(default)]
    pub all: bool,
}

/// `POST /api/v1/logout` 200 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogoutResponse {
    /// Always `true` on 200.
    pub success: bool,
    /// Whether every session of the identity ended.
    pub all: bool,
}

/// `POST /api/v1/token/revoke` body (RFC 7009; JSON or form). `Debug`
/// redacts the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeRequest {
    /// The token to revoke: a refresh or an access token.
    pub token: String,
    /// `refresh_token` or `access_token` (optional; the kinds are told
    /// apart by shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

/// `POST /api/v1/token/introspect` body. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntrospectRequest {
    /// The token to check.
    pub token: String,
}

/// Response of `POST /api/v1/token/introspect` (200) and
/// `GET /api/v1/token/verify` (200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenStatus {
    /// Whether the token is valid now.
    pub active: bool,
    /// The token's claims when active, `null` otherwise.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `GET /health` body (the Python service's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// `"ok"`.
    pub status: String,
    /// `"stateless-otp"`.
    pub service: String,
}

/// Stable machine-readable error codes, for the SDKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 422: malformed JSON, missing or invalid fields.
    ValidationError,
    /// 400: wrong, expired, replayed or wrong-length code.
    OtpInvalid,
    /// 429: a rate limit tripped; see `Retry-After`.
    RateLimitExceeded,
    /// 502: the delivery backend failed.
    DeliveryFailed,
    /// 503: the shared store (Redis) is unreachable.
    BackendUnavailable,
    /// 401: no bearer token.
    TokenMissing,
    /// 401: the token failed a check other than expiry.
    TokenInvalid,
    /// 401: the token has expired.
    TokenExpired,
    /// 401: the refresh token's session is over (logged out, revoked,
    /// signed out everywhere, or reused).
    SessionRevoked,
    /// 408: the request body did not arrive in time (slow client).
    RequestTimeout,
    /// 413: body larger than 16 KiB.
    PayloadTooLarge,
    /// 415: body not `application/json`.
    UnsupportedMediaType,
    /// 404: no such route.
    NotFound,
    /// 405: method not allowed on this route.
    MethodNotAllowed,
    /// 500: unexpected server error (never for client mistakes).
    InternalError,
}

impl ErrorCode {
    /// The snake_case code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::OtpInvalid => "otp_invalid",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::DeliveryFailed => "delivery_failed",
            ErrorCode::BackendUnavailable => "backend_unavailable",
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::SessionRevoked => "session_revoked",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// The HTTP status the server answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ValidationError => 422,
            ErrorCode::OtpInvalid => 400,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::DeliveryFailed => 502,
            ErrorCode::BackendUnavailable => 503,
            ErrorCode::TokenMissing
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::SessionRevoked => 401,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InternalError => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One offending field of a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Path of the field, e.g. `["body", "identity"]` (FastAPI's `loc`).
    pub loc: Vec<String>,
    /// What is wrong with it.
    pub msg: String,
    /// A short machine-readable kind, e.g. `missing`, `invalid`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Every error body: `{"error", "message"}`, plus `details` on 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable error code.
    pub error: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Offending fields (422 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

impl ErrorBody {
    /// An error body without details.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error,
            message: message.into(),
            details: None,
        }
    }

    /// A 422 body with field details.
    pub fn validation(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        ErrorBody {
            error: ErrorCode::ValidationError,
            message: message.into(),
            details: Some(details),
        }
    }
}

impl fmt::Debug for OtpVerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpVerifyRequest")
            .field("identity", &self.identity)
            .field("otp", &Redacted)
            .finish()
    }
}

impl fmt::Debug for OtpVerifyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpVerifyResponse")
            .field("success", &self.success)
            .field("message", &self.message)
            .field("access_token", &Redacted)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("rate_limit_remaining", &self.rate_limit_remaining)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| Redacted),
            )
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &Redacted)
            .finish()
    }
}

impl fmt::Debug for RefreshResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshResponse")
            .field("success", &self.success)
            .field("access_token", &Redacted)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &Redacted)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

impl fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| Redacted),
            )
            .field("all", &self.all)
            .finish()
    }
}

impl fmt::Debug for RevokeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevokeRequest")
            .field("token", &Redacted)
            .field("token_type_hint", &self.token_type_hint)
            .finish()
    }
}

impl fmt::Debug for IntrospectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectRequest")
            .field("token", &Redacted)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 13 item 9.
    #[test]
    fn debug_of_bodies_with_a_code_or_token_prints_neither() {
        let code = "918273";
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let printed = [
            format!(
                "{:?}",
                OtpVerifyRequest {
                    identity: "a@example.com".into(),
                    otp: code.into()
                }
            ),
            format!(
                "{:?}",
                OtpVerifyResponse {
                    success: true,
                    message: messages::OTP_VERIFIED.into(),
                    access_token: token.into(),
                    token_type: "bearer".into(),
                    expires_in: 900,
                    rate_limit_remaining: 4,
                    refresh_token: Some(format!("ort1_{token}")),
                    refresh_expires_in: Some(604_800),
                }
            ),
            format!(
                "{:?}",
                IntrospectRequest {
                    token: token.into()
                }
            ),
            format!(
                "{:#?}",
                IntrospectRequest {
                    token: token.into()
                }
            ),
        ];
        for p in &printed {
            assert!(!p.contains(code) && !p.contains(token), "{p}");
            assert!(p.contains("[REDACTED]"), "{p}");
        }
        assert!(printed[0].contains("a@example.com"), "{}", printed[0]);
        assert!(printed[1].contains("expires_in: 900"), "{}", printed[1]);
    }

    #[test]
    fn error_codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::ValidationError,
            ErrorCode::OtpInvalid,
            ErrorCode::RateLimitExceeded,
            ErrorCode::DeliveryFailed,
            ErrorCode::BackendUnavailable,
            ErrorCode::TokenMissing,
            ErrorCode::TokenInvalid,
            ErrorCode::TokenExpired,
            ErrorCode::RequestTimeout,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::InternalError,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    // See: schemathesis ST201 — an identity padded with white space past 320
    // characters is valid once trimmed (SPEC §3.4 trims first), so the schema
    // must not give the raw string a maxLength the server does not enforce.
    #[cfg(feature = "openapi")]
    #[test]
    fn identity_schema_claims_no_raw_length_the_parser_does_not_enforce() {
        use utoipa::PartialSchema;
        let padded = format!("  {}  ", "a".repeat(crate::MAX_IDENTITY_CHARS));
        assert!(crate::Identity::parse(&padded).is_ok());
        for schema in [OtpRequest::schema(), OtpVerifyRequest::schema()] {
            let schema = serde_json::to_value(schema).unwrap();
            let identity = &schema["properties"]["identity"];
            assert_eq!(identity["minLength"], 1, "{schema}");
            assert!(identity.get("maxLength").is_none(), "{schema}");
        }
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn openapi_code_pattern_is_the_parsers_rule() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(OtpVerifyRequest::schema()).unwrap();
        let otp = &schema["properties"]["otp"];
        assert_eq!(otp["pattern"], crate::CODE_PATTERN, "{schema}");
        assert_eq!(otp["type"], "string");
        assert_eq!(otp["minLength"], 4);
        assert_eq!(otp["maxLength"], 10);
        assert!(otp["description"].as_str().unwrap().contains("4 to 10"));
    }

    #[test]
    fn unknown_fields_are_ignored_and_details_are_optional() {
        let r: OtpVerifyRequest =
            serde_json::from_str(r#"{"identity":"a","otp":"123456","extra":1}"#).unwrap();
        assert_eq!(r.otp, "123456");
        let e: ErrorBody =
            serde_json::from_str(r#"{"error":"otp_invalid","message":"m"}"#).unwrap();
        assert!(e.details.is_none());
        let v = serde_json::to_value(ErrorBody::validation(
            "bad",
            vec![FieldError {
                loc: vec!["body".into(), "identity".into()],
                msg: "missing".into(),
                kind: "missing".into(),
            }],
        ))
        .unwrap();
        assert_eq!(v["details"][0]["loc"][1], "identity");
        assert_eq!(v["details"][0]["type"], "missing");
    }
}
