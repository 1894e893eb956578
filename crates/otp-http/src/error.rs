//! The one HTTP error type: maps domain errors to status codes, the
//! `{"error","message","detail"}` body (SPEC §5) and the headers that go with
//! them (`Retry-After`, `X-RateLimit-*`, `WWW-Authenticate`).
//!
//! `detail` is what the Python (FastAPI) service sent, so clients that read
//! `resp.json()["detail"]` keep working: the message as a string, or on 422
//! FastAPI's list of `{loc, msg, type}` with FastAPI's own `type` and `msg`
//! texts (see [`fastapi_detail`]). FastAPI's `input` and `ctx` members are
//! left out: they would echo the submitted identity or code back.

use std::time::Duration;

use actix_web::error::JsonPayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use otp_core::wire::{messages, ErrorBody, ErrorCode, FieldError};
use otp_core::TokenError;
use otp_service::{LimitedOperation, RateLimitInfo, ServiceError};
use serde::Serialize;

/// FastAPI's `detail`: a string, or on 422 a list of `{loc, msg, type}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Detail {
    /// Every status but 422: the same text as `message`.
    Message(String),
    /// 422: one entry per offending field, in FastAPI's words.
    Fields(Vec<FieldError>),
}

/// Every error body on the wire (SPEC §5): `error`, `message`, `details` on
/// 422, and FastAPI's `detail`.
///
/// The shared wire type `otp_core::wire::ErrorBody` (which the Rust client
/// reads) plus `detail`; the OpenAPI document calls this schema `ErrorBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct ErrorResponse {
    /// Stable error code.
    pub error: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Offending fields (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
    /// The Python service's FastAPI-style `detail`: `message` as a string, or
    /// on 422 the list of `{loc, msg, type}` FastAPI gives.
    pub detail: Detail,
}

impl From<ErrorBody> for ErrorResponse {
    fn from(body: ErrorBody) -> Self {
        let detail = match &body.details {
            Some(details) => Detail::Fields(fastapi_detail(details)),
            None => Detail::Message(body.message.clone()),
        };
        ErrorResponse {
            error: body.error,
            message: body.message,
            details: body.details,
            detail,
        }
    }
}

/// FastAPI's (pydantic 2's) entries for our field errors: the same `loc`,
/// with the `type` and `msg` FastAPI sends for the same mistake (observed
/// with FastAPI 0.165 / pydantic 2.13: a missing field is `missing` "Field
/// required", a number where a string belongs is `string_type` "Input should
/// be a valid string", …). Kinds FastAPI has no word for keep ours.
pub fn fastapi_detail(details: &[FieldError]) -> Vec<FieldError> {
    details
        .iter()
        .map(|d| {
            let (kind, msg) = match d.kind.as_str() {
                "missing" => ("missing", "Field required".to_owned()),
                "string_type" => ("string_type", "Input should be a valid string".to_owned()),
                "string_too_short" => (
                    "string_too_short",
                    "String should have at least 1 character".to_owned(),
                ),
                "json_invalid" => ("json_invalid", "JSON decode error".to_owned()),
                "model_type" => (
                    "model_attributes_type",
                    "Input should be a valid dictionary or object to extract fields from"
                        .to_owned(),
                ),
                "value_error" => ("value_error", format!("Value error, {}", d.msg)),
                other => (other, d.msg.clone()),
            };
            FieldError {
                loc: d.loc.clone(),
                msg,
                kind: kind.to_owned(),
            }
        })
        .collect()
}

/// An error answered by the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A failure of the OTP service.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The body is malformed or misses fields (422 with `details`).
    #[error("{message}")]
    Validation {
        /// Summary.
        message: String,
        /// The offending fields.
        details: Vec<FieldError>,
    },
    /// The body did not arrive within `HttpConfig::body_timeout` (408).
    #[error("the request body did not arrive within {0} ms")]
    RequestTimeout(u128),
    /// Body over the 16 KiB limit (413).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Body not `application/json` (415).
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// No bearer token (401 `token_missing`).
    #[error("missing bearer token")]
    TokenMissing,
    /// The bearer token failed verification (401).
    #[error("{0}")]
    Token(#[from] TokenError),
    /// Several `otp_session` cookies whose valid tokens name different
    /// subjects, or more than 8 (a planted cookie; SPEC §11): 401
    /// `token_invalid`.
    #[error("ambiguous otp_session cookies: several of different subjects, or too many")]
    AmbiguousSession,
    /// No such route (404).
    #[error("not found")]
    NotFound,
    /// Route exists, method does not (405).
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl ApiError {
    /// A 422 for one field.
    pub fn field(loc: &[&str], msg: impl Into<String>, kind: &str) -> Self {
        let msg = msg.into();
        ApiError::Validation {
            message: format!("{}: {}", loc.last().copied().unwrap_or("body"), msg),
            details: vec![FieldError {
                loc: loc.iter().map(|s| (*s).to_owned()).collect(),
                msg,
                kind: kind.to_owned(),
            }],
        }
    }

    /// The stable error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Service(e) => match e {
                ServiceError::InvalidIdentity(_)
                | ServiceError::InvalidCodeFormat
                | ServiceError::ReservedClaim(_) => ErrorCode::ValidationError,
                ServiceError::InvalidOtp { .. } => ErrorCode::OtpInvalid,
                ServiceError::RateLimited { .. } => ErrorCode::RateLimitExceeded,
                ServiceError::DeliveryFailed(_) => ErrorCode::DeliveryFailed,
                ServiceError::Unavailable(_) => ErrorCode::BackendUnavailable,
                ServiceError::TokenInvalid(_) => ErrorCode::TokenInvalid,
                ServiceError::TokenExpired => ErrorCode::TokenExpired,
                ServiceError::SessionRevoked => ErrorCode::SessionRevoked,
                _ => ErrorCode::InternalError,
            },
            ApiError::Validation { .. } => ErrorCode::ValidationError,
            ApiError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::TokenMissing => ErrorCode::TokenMissing,
            ApiError::Token(e) if e.is_expired() => ErrorCode::TokenExpired,
            ApiError::Token(_) | ApiError::AmbiguousSession => ErrorCode::TokenInvalid,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
        }
    }

    /// The body this error is answered with.
    pub fn body(&self) -> ErrorResponse {
        self.core_body().into()
    }

    fn core_body(&self) -> ErrorBody {
        let code = self.code();
        match self {
            ApiError::Validation { message, details } => {
                ErrorBody::validation(message.clone(), details.clone())
            }
            ApiError::Service(ServiceError::InvalidIdentity(e)) => ErrorBody::validation(
                format!("identity: {e}"),
                vec![FieldError {
                    loc: vec!["body".into(), "identity".into()],
                    msg: e.to_string(),
                    kind: "value_error".into(),
                }],
            ),
            ApiError::Service(ServiceError::InvalidCodeFormat) => ErrorBody::validation(
                format!("otp: {}", otp_core::CODE_RULE),
                vec![FieldError {
                    loc: vec!["body".into(), "otp".into()],
                    msg: otp_core::CODE_RULE.into(),
                    kind: "value_error".into(),
                }],
            ),
            ApiError::Service(ServiceError::InvalidOtp { .. }) => {
                ErrorBody::new(code, messages::OTP_INVALID)
            }
            ApiError::Service(ServiceError::RateLimited { operation, .. }) => ErrorBody::new(
                code,
                match operation {
                    LimitedOperation::Request => messages::TOO_MANY_REQUESTS,
                    LimitedOperation::Verify => messages::TOO_MANY_VERIFICATIONS,
                },
            ),
            ApiError::Service(ServiceError::DeliveryFailed(_)) => {
                ErrorBody::new(code, messages::DELIVERY_FAILED)
            }
            ApiError::Service(ServiceError::Unavailable(_)) => ErrorBody::new(
                code,
                "Service temporarily unavailable. Please try again shortly.",
            ),
            ApiError::Service(ServiceError::ReservedClaim(name)) => {
                ErrorBody::new(code, format!("extra claim {name:?} is reserved"))
            }
            ApiError::Service(ServiceError::TokenInvalid(check)) => {
                ErrorBody::new(code, format!("Token is invalid: {check}."))
            }
            ApiError::Service(ServiceError::TokenExpired) => {
                ErrorBody::new(code, "Token has expired.")
            }
            ApiError::Service(ServiceError::SessionRevoked) => ErrorBody::new(
                code,
                "The session has ended (logged out, revoked or reused); sign in again.",
            ),
            // Internal details stay in the log, never in the body.
            ApiError::Service(_) => ErrorBody::new(code, "Internal server error."),
            ApiError::Token(e) if e.is_expired() => ErrorBody::new(code, "Token has expired."),
            ApiError::Token(e) => ErrorBody::new(code, format!("Token is invalid: {}.", e.check())),
            ApiError::TokenMissing => ErrorBody::new(
                code,
                "Missing bearer token: send 'Authorization: Bearer <token>'.",
            ),
            other => ErrorBody::new(code, other.to_string()),
        }
    }
}

fn rate_limit_headers(res: &mut HttpResponse, info: &RateLimitInfo) {
    let h = res.headers_mut();
    h.insert(
        header::HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(info.limit),
    );
    h.insert(
        header::HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(info.remaining),
    );
    h.insert(
        header::HeaderName::from_static("x-ratelimit-window"),
        HeaderValue::from(info.window_secs),
    );
}

/// Adds `X-RateLimit-Limit`, `-Remaining` and `-Window` to a success response.
pub(crate) fn with_rate_limit(mut res: HttpResponse, info: &RateLimitInfo) -> HttpResponse {
    rate_limit_headers(&mut res, info);
    res
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            match self {
                ApiError::Service(
                    ServiceError::Unavailable(_) | ServiceError::DeliveryFailed(_),
                ) => {}
                other => tracing::error!(error = %other, "internal error"),
            }
        }
        let mut res = HttpResponse::build(status).json(self.body());
        match self {
            ApiError::Service(ServiceError::RateLimited {
                info,
                retry_after_secs,
                ..
            }) => {
                rate_limit_headers(&mut res, info);
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Service(ServiceError::InvalidOtp { rate_limit }) => {
                rate_limit_headers(&mut res, rate_limit);
            }
            ApiError::Service(ServiceError::Unavailable(_)) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TokenMissing => {
                // RFC 6750 §3.1: no error code when no credentials were sent.
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"stateless-otp\""),
                );
            }
            ApiError::Token(e) => {
                let value = if e.is_expired() {
                    "Bearer realm=\"stateless-otp\", error=\"invalid_token\", error_description=\"the token has expired\"".to_owned()
                } else {
                    format!(
                        "Bearer realm=\"stateless-otp\", error=\"invalid_token\", error_description=\"{}\"",
                        e.check()
                    )
                };
                if let Ok(v) = HeaderValue::from_str(&value) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::AmbiguousSession => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"stateless-otp\", error=\"invalid_token\", error_description=\"ambiguous session cookies\"",
                    ),
                );
            }
            _ => {}
        }
        if matches!(self, ApiError::RequestTimeout(_)) {
            // The rest of the body is never read: the connection ends here.
            res.head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        if matches!(
            self,
            ApiError::Token(_) | ApiError::TokenMissing | ApiError::AmbiguousSession
        ) {
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        res
    }
}

/// Turns actix's JSON extractor errors into 408 / 413 / 415 / 422.
pub(crate) fn json_error(err: JsonPayloadError, limit: usize, body_timeout: Duration) -> ApiError {
    match err {
        JsonPayloadError::Payload(e) if crate::body_deadline::is_timeout(&e) => {
            ApiError::RequestTimeout(body_timeout.as_millis())
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(limit)
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        // FastAPI answers an empty body with `missing` at `["body"]`.
        JsonPayloadError::Deserialize(e) if e.is_eof() && e.line() == 1 && e.column() == 0 => {
            ApiError::field(&["body"], "request body is empty", "missing")
        }
        JsonPayloadError::Deserialize(e) => ApiError::Validation {
            message: format!("request body is not valid JSON: {e}"),
            details: vec![FieldError {
                loc: vec!["body".into()],
                msg: e.to_string(),
                kind: "json_invalid".into(),
            }],
        },
        other => ApiError::Validation {
            message: format!("request body could not be read: {other}"),
            details: vec![FieldError {
                loc: vec!["body".into()],
                msg: other.to_string(),
                kind: "body_invalid".into(),
            }],
        },
    }
}
