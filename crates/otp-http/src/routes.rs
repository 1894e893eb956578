//! Route handlers of SPEC §5.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use otp_core::wire::{
    messages, FieldError, HealthResponse, IntrospectRequest, LogoutRequest, LogoutResponse,
    OtpRequest, OtpRequestResponse, OtpVerifyRequest, OtpVerifyResponse, RefreshRequest,
    RefreshResponse, RevokeRequest, TokenStatus,
};
use otp_core::{unix_now, TokenError};
use otp_service::{RequestContext, ServiceError, VerifyOptions};
use serde_json::Value;

use crate::error::{with_rate_limit, ApiError, ErrorResponse};
use crate::json_out;
use crate::verified_cache::Answer;
use crate::HttpState;

/// One field a route reads from a JSON object body.
#[derive(Debug, Default)]
enum Field {
    /// Absent.
    #[default]
    Missing,
    /// A string.
    Str(String),
    /// Present with another type, `null` included (as FastAPI: a required
    /// `str` field given `null` is `string_type`, not `missing`).
    NotString,
}

impl Field {
    fn of(value: Value) -> Field {
        match value {
            Value::String(s) => Field::Str(s),
            _ => Field::NotString,
        }
    }
}

/// The names of the string fields one route reads.
pub trait FieldNames<const N: usize>: 'static {
    /// The field names, in the order the route wants them.
    const NAMES: [&'static str; N];
}

/// `identity` (POST /otp/request).
pub struct RequestFields;
impl FieldNames<1> for RequestFields {
    const NAMES: [&'static str; 1] = ["identity"];
}

/// `identity`, `otp` (POST /otp/verify).
pub struct VerifyFields;
impl FieldNames<2> for VerifyFields {
    const NAMES: [&'static str; 2] = ["identity", "otp"];
}

/// `refresh_token` (POST /token/refresh).
pub struct RefreshFields;
impl FieldNames<1> for RefreshFields {
    const NAMES: [&'static str; 1] = ["refresh_token"];
}

/// `token` (POST /token/introspect).
pub struct IntrospectFields;
impl FieldNames<1> for IntrospectFields {
    const NAMES: [&'static str; 1] = ["token"];
}

/// A JSON body read for the fields `M` names, without building the body's
/// map: every value (a wanted field's, an unknown field's, an array
/// element's) is still parsed as a [`serde_json::Value`], so the body is
/// accepted or refused exactly as `web::Json<Value>` would (same syntax,
/// UTF-8, number-range and depth checks, same error text), and the later
/// of two duplicate keys wins as in a `Value` map.
pub struct StringFields<M, const N: usize> {
    /// `None` when the body is valid JSON but not an object.
    fields: Option<[Field; N]>,
    names: std::marker::PhantomData<M>,
}

impl<'de, M: FieldNames<N>, const N: usize> serde::Deserialize<'de> for StringFields<M, N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BodyVisitor::<M, N>(std::marker::PhantomData))
    }
}

struct BodyVisitor<M, const N: usize>(std::marker::PhantomData<M>);

impl<M, const N: usize> BodyVisitor<M, N> {
    fn not_object<E>(self) -> Result<StringFields<M, N>, E> {
        Ok(StringFields {
            fields: None,
            names: std::marker::PhantomData,
        })
    }
}

impl<'de, M: FieldNames<N>, const N: usize> serde::de::Visitor<'de> for BodyVisitor<M, N> {
    type Value = StringFields<M, N>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        self.not_object()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        self.not_object()
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: [Field; N] = std::array::from_fn(|_| Field::Missing);
        while let Some(key) = map.next_key_seed(KeyIndex::<M, N>(std::marker::PhantomData))? {
            let value: Value = map.next_value()?;
            if let Some(slot) = key.and_then(|i| fields.get_mut(i)) {
                *slot = Field::of(value);
            }
        }
        Ok(StringFields {
            fields: Some(fields),
            names: std::marker::PhantomData,
        })
    }
}

/// A map key as the index of the wanted field it names (`None`: another
/// key), read without allocating when the key has no escapes.
struct KeyIndex<M, const N: usize>(std::marker::PhantomData<M>);

impl<'de, M: FieldNames<N>, const N: usize> serde::de::DeserializeSeed<'de> for KeyIndex<M, N> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, M: FieldNames<N>, const N: usize> serde::de::Visitor<'de> for KeyIndex<M, N> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(M::NAMES.iter().position(|n| *n == v))
    }
}

/// Reads the string fields of a JSON object body, collecting every missing
/// or mistyped field into one 422.
fn string_fields<M: FieldNames<N>, const N: usize>(
    body: &StringFields<M, N>,
) -> Result<[&str; N], ApiError> {
    let Some(fields) = &body.fields else {
        return Err(ApiError::field(
            &["body"],
            "expected a JSON object",
            "model_type",
        ));
    };
    let mut out = [""; N];
    let mut details = Vec::new();
    for ((slot, name), field) in out.iter_mut().zip(M::NAMES).zip(fields) {
        match field {
            Field::Str(s) => *slot = s.as_str(),
            Field::Missing => details.push(FieldError {
                loc: vec!["body".into(), name.into()],
                msg: "field required".into(),
                kind: "missing".into(),
            }),
            Field::NotString => details.push(FieldError {
                loc: vec!["body".into(), name.into()],
                msg: "must be a string".into(),
                kind: "string_type".into(),
            }),
        }
    }
    if details.is_empty() {
        Ok(out)
    } else {
        let fields: Vec<&str> = details
            .iter()
            .filter_map(|d| d.loc.last().map(String::as_str))
            .collect();
        Err(ApiError::Validation {
            message: format!("invalid or missing field(s): {}", fields.join(", ")),
            details,
        })
    }
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(crate) fn context(req: &HttpRequest, state: &HttpState) -> RequestContext {
    RequestContext {
        client_ip: crate::client_ip::client_ip(req, &state.config.trusted_proxies),
        allowed_identities: None,
        request_id: actix_web::HttpMessage::extensions(req)
            .get::<crate::observe::RequestId>()
            .map(|id| id.as_str().to_owned()),
    }
}

/// The responses of every route with a JSON body before it reaches the
/// handler (see [`crate::json_config`]): one declaration for each route's
/// OpenAPI entry.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // only its OpenAPI declaration is used
enum JsonBodyErrors {
    /// 408 `request_timeout`.
    #[response(
        status = 408,
        description = "The body did not arrive within the request timeout (`request_timeout`) of the head; the connection is closed"
    )]
    Timeout(ErrorResponse),
    /// 413.
    #[response(status = 413, description = "Body larger than 16 KiB")]
    TooLarge(ErrorResponse),
    /// 415.
    #[response(status = 415, description = "Body is not application/json")]
    NotJson(ErrorResponse),
}

/// The 503 of a route that needs the store.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "Store unavailable (`backend_unavailable`)",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying (1)"))
)]
#[allow(dead_code)] // only its OpenAPI declaration is used
struct StoreUnavailable(ErrorResponse);

/// Send a one-time code to an identity.
#[utoipa::path(
    post,
    path = "/api/v1/otp/request",
    tag = "otp",
    request_body = OtpRequest,
    responses(
        (status = 200, description = "OTP sent", body = OtpRequestResponse,
            headers(("X-RateLimit-Limit" = u32, description = "Requests allowed per window by the limit that applies"), ("X-RateLimit-Remaining" = u32, description = "Requests left in the current window"), ("X-RateLimit-Window" = u64, description = "Window length, seconds"))),
        JsonBodyErrors,
        (status = 422, description = "Malformed body or invalid identity", body = ErrorResponse),
        (status = 429, description = "Rate limit exceeded (`rate_limit_exceeded`)", body = ErrorResponse,
            headers(("Retry-After" = u64, description = "Seconds until a new attempt can succeed"), ("X-RateLimit-Limit" = u32, description = "Requests allowed per window by the limit that applies"), ("X-RateLimit-Remaining" = u32, description = "Requests left in the current window"), ("X-RateLimit-Window" = u64, description = "Window length, seconds"))),
        (status = 502, description = "Delivery failed (`delivery_failed`)", body = ErrorResponse),
        StoreUnavailable,
    )
)]
pub async fn request_otp(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: web::Json<StringFields<RequestFields, 1>>,
) -> Result<HttpResponse, ApiError> {
    let [identity] = string_fields(&body)?;
    let ctx = context(&req, &state);
    let out = state.service.request_otp(identity, &ctx).await?;
    let res = HttpResponse::Ok().json(OtpRequestResponse {
        success: true,
        message: messages::OTP_SENT.to_owned(),
        ttl_seconds: out.ttl_seconds,
        expires_at: out.expires_at,
        rate_limit_remaining: out.rate_limit.remaining,
    });
    Ok(with_rate_limit(res, &out.rate_limit))
}

/// Verify a code and receive an access token.
#[utoipa::path(
    post,
    path = "/api/v1/otp/verify",
    tag = "otp",
    request_body = OtpVerifyRequest,
    responses(
        (status = 200, description = "OTP verified; token issued", body = OtpVerifyResponse,
            headers(("X-RateLimit-Limit" = u32, description = "Requests allowed per window by the limit that applies"), ("X-RateLimit-Remaining" = u32, description = "Requests left in the current window"), ("X-RateLimit-Window" = u64, description = "Window length, seconds"),
                ("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Wrong, expired, replayed or wrong-length code (`otp_invalid`)", body = ErrorResponse,
            headers(("X-RateLimit-Limit" = u32, description = "Requests allowed per window by the limit that applies"), ("X-RateLimit-Remaining" = u32, description = "Requests left in the current window"), ("X-RateLimit-Window" = u64, description = "Window length, seconds"))),
        JsonBodyErrors,
        (status = 422, description = "Malformed body, identity, or otp not 4 to 10 digits", body = ErrorResponse),
        (status = 429, description = "Too many attempts (`rate_limit_exceeded`)", body = ErrorResponse,
            headers(("Retry-After" = u64, description = "Seconds until a new attempt can succeed"), ("X-RateLimit-Limit" = u32, description = "Requests allowed per window by the limit that applies"), ("X-RateLimit-Remaining" = u32, description = "Requests left in the current window"), ("X-RateLimit-Window" = u64, description = "Window length, seconds"))),
        StoreUnavailable,
    )
)]
pub async fn verify_otp(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: web::Json<StringFields<VerifyFields, 2>>,
) -> Result<HttpResponse, ApiError> {
    verify_otp_with(&state, &body, &context(&req, &state)).await
}

/// [`verify_otp`] once its body is read (also the
/// [`fast_lane`](crate::fast_lane)'s).
pub(crate) async fn verify_otp_with(
    state: &HttpState,
    body: &StringFields<VerifyFields, 2>,
    ctx: &RequestContext,
) -> Result<HttpResponse, ApiError> {
    let [identity, otp] = string_fields(body)?;
    let out = state
        .service
        .verify_otp(identity, otp, ctx, VerifyOptions::default())
        .await?;
    let res = json_ok(json_out::verify_answer(
        &out.token.token,
        out.token.expires_in,
        out.rate_limit.remaining,
        out.refresh
            .as_ref()
            .map(|r| (r.token.as_str(), r.expires_in)),
    ));
    Ok(no_store(with_rate_limit(res, &out.rate_limit)))
}

/// Exchange a refresh token for a new access token and its successor
/// (SPEC §10): the presented token is spent; presenting it again within
/// `REFRESH_REUSE_GRACE_SECONDS` returns the same successor, later it
/// revokes the session.
#[utoipa::path(
    post,
    path = "/api/v1/token/refresh",
    tag = "token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access token and the successor refresh token", body = RefreshResponse,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "`token_invalid`, `token_expired` or `session_revoked`", body = ErrorResponse),
        JsonBodyErrors,
        (status = 422, description = "Malformed body, or a missing or empty `refresh_token`", body = ErrorResponse),
        StoreUnavailable,
    )
)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: web::Json<StringFields<RefreshFields, 1>>,
) -> Result<HttpResponse, ApiError> {
    refresh_with(&state, &body, &context(&req, &state)).await
}

/// [`refresh`] once its body is read (also the
/// [`fast_lane`](crate::fast_lane)'s).
pub(crate) async fn refresh_with(
    state: &HttpState,
    body: &StringFields<RefreshFields, 1>,
    ctx: &RequestContext,
) -> Result<HttpResponse, ApiError> {
    let [token] = string_fields(body)?;
    if token.is_empty() {
        return Err(ApiError::field(
            &["body", "refresh_token"],
            "must not be empty",
            "string_too_short",
        ));
    }
    let out = state.service.refresh_with(token, ctx).await?;
    Ok(no_store(json_ok(json_out::refresh_answer(
        &out.token.token,
        out.token.expires_in,
        &out.refresh.token,
        out.refresh.expires_in,
    ))))
}

/// A 200 with `body` as its JSON (the token answers of crate::json_out:
/// written without the escape scan of the tokens).
fn json_ok(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body)
}

/// The raw body of logout and revoke (read under the route's 16 KiB
/// `PayloadConfig`), with the API's JSON errors instead of actix's text:
/// 413 over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES), 408 when it came
/// too slowly, 422 when it could not be read.
fn raw_body(
    state: &HttpState,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<web::Bytes, ApiError> {
    use actix_web::error::PayloadError;
    body.map_err(|e| match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(crate::MAX_BODY_BYTES),
        Some(p) if crate::body_deadline::is_timeout(p) => {
            ApiError::RequestTimeout(state.config.body_timeout.as_millis())
        }
        _ => ApiError::field(
            &["body"],
            format!("request body could not be read: {e}"),
            "body_invalid",
        ),
    })
}

/// True if and only if the request says its body is of media type `mime`
/// (parameters such as `charset` allowed).
fn has_media_type(req: &HttpRequest, mime: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime))
}

/// A small JSON object body (logout), or `None` when the body is empty.
fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::field(&["body"], e.to_string(), "json_invalid"))?;
    // A struct would also deserialize from an array: only objects pass.
    if !value.is_object() {
        return Err(ApiError::field(
            &["body"],
            "expected a JSON object",
            "model_type",
        ));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| ApiError::field(&["body"], e.to_string(), "value_error"))
}

/// End the session of a bearer access token or of `{refresh_token}`; with
/// `{"all": true}` every session of the identity. A genuine but expired
/// token is enough. Access tokens already issued stay valid until `exp`.
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    tag = "token",
    security((), ("bearer" = [])),
    request_body(content = Option<LogoutRequest>, description = "Optional with a bearer token"),
    responses(
        (status = 200, description = "The session (or every session) ended", body = LogoutResponse),
        (status = 401, description = "`token_missing` or `token_invalid`", body = ErrorResponse),
        JsonBodyErrors,
        (status = 422, description = "Malformed body", body = ErrorResponse),
        StoreUnavailable,
    )
)]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = raw_body(&state, body)?;
    // A body (it is optional) must be JSON, as on every JSON route.
    if !body.iter().all(u8::is_ascii_whitespace) && !has_media_type(&req, "application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let parsed: LogoutRequest = json_object(&body)?.unwrap_or_default();
    let token = match (&parsed.refresh_token, bearer(req.headers())) {
        (Some(t), _) => t.as_str(),
        (None, Some(t)) => t,
        (None, None) => return Err(ApiError::TokenMissing),
    };
    let scope = state
        .service
        .logout_with(token, parsed.all, &context(&req, &state))
        .await?;
    Ok(no_store(HttpResponse::Ok().json(LogoutResponse {
        success: true,
        all: scope == otp_service::LogoutScope::Everywhere,
    })))
}

/// RFC 7009 token revocation: `token` (and an optional `token_type_hint`)
/// as a JSON or an `application/x-www-form-urlencoded` body. 200 for any
/// token, valid or not; a genuine one ends its session.
#[utoipa::path(
    post,
    path = "/api/v1/token/revoke",
    tag = "token",
    request_body(content(
        (RevokeRequest = "application/json"),
        (RevokeRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)"),
        (status = 408, description = "The body did not arrive within the request timeout (`request_timeout`) of the head; the connection is closed", body = ErrorResponse),
        (status = 413, description = "Body larger than 16 KiB", body = ErrorResponse),
        (status = 415, description = "Body is neither application/json nor application/x-www-form-urlencoded", body = ErrorResponse),
        (status = 422, description = "Malformed body or no `token`", body = ErrorResponse),
        StoreUnavailable,
    )
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = raw_body(&state, body)?;
    let form = has_media_type(&req, "application/x-www-form-urlencoded");
    if !form && !has_media_type(&req, "application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let parsed: Option<RevokeRequest> = if form {
        serde_urlencoded::from_bytes(&body)
            .map(Some)
            .map_err(|e| ApiError::field(&["body"], e.to_string(), "value_error"))?
    } else {
        json_object(&body)?
    };
    let Some(parsed) = parsed else {
        return Err(ApiError::field(
            &["body", "token"],
            "Field required",
            "missing",
        ));
    };
    state
        .service
        .revoke_with(&parsed.token, &context(&req, &state))
        .await?;
    Ok(no_store(HttpResponse::Ok().finish()))
}

/// Check a token sent in the body.
#[utoipa::path(
    post,
    path = "/api/v1/token/introspect",
    tag = "token",
    request_body = IntrospectRequest,
    responses(
        (status = 200, description = "`{active:true, claims}` for a valid token, `{active:false, claims:null}` otherwise", body = TokenStatus),
        JsonBodyErrors,
        (status = 422, description = "Malformed body, or a missing or empty `token`", body = ErrorResponse),
    )
)]
pub async fn introspect(
    state: web::Data<HttpState>,
    body: web::Json<StringFields<IntrospectFields, 1>>,
) -> Result<HttpResponse, ApiError> {
    let [token] = string_fields(&body)?;
    // The Python service's model required a non-empty string (422), and an
    // empty token is a client bug rather than an inactive token.
    if token.is_empty() {
        return Err(ApiError::field(
            &["body", "token"],
            "must not be empty",
            "string_too_short",
        ));
    }
    Ok(no_store(
        HttpResponse::Ok().json(state.service.introspect(token)),
    ))
}

/// The bearer token of `req`, if any (`Authorization: Bearer <token>`, scheme
/// case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    // Same acceptance as `HeaderValue::to_str` (visible ASCII and tab: a
    // parsed header value never holds other control bytes), but checked a
    // word at a time instead of byte by byte: this runs on every forward-auth
    // request and a token is a few hundred bytes.
    let bytes = headers.get(header::AUTHORIZATION)?.as_bytes();
    if !bytes.is_ascii() {
        return None;
    }
    let value = std::str::from_utf8(bytes).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// The name of the session cookie holding the access token (SPEC §11).
pub(crate) use crate::gate::SESSION_COOKIE;

/// The access token a request presents, the one place that decides it
/// (SPEC §11): the `Authorization: Bearer` token first; else, when no bearer
/// token is sent, the `otp_session` cookie — with several, the one
/// [`gate::cookies::session_token`](crate::gate::cookies) picks (a planted
/// one never shadows the user's; valid ones of different subjects →
/// [`ApiError::AmbiguousSession`]). [`ApiError::TokenMissing`] when neither
/// is there.
///
/// A non-bearer `Authorization` header (e.g. the protected app's own `Basic`
/// credentials, which nginx forwards into its auth subrequest) does not hide
/// the cookie: it is not a token of ours.
pub(crate) fn presented_token<'r>(
    headers: &'r HeaderMap,
    tokens: &otp_core::TokenService,
) -> Result<&'r str, ApiError> {
    if let Some(token) = bearer(headers) {
        return Ok(token);
    }
    use crate::gate::cookies::{session_token, SessionCookie};
    session_token(headers, tokens).map_err(|e| match e {
        SessionCookie::Missing => ApiError::TokenMissing,
        SessionCookie::Ambiguous => ApiError::AmbiguousSession,
    })
}

/// The claims of the browser's valid `otp_session` access token (the
/// cookie [`presented_token`] would pick; no store), for the gate's
/// "signed in as" line.
pub(crate) fn session_claims(req: &HttpRequest, state: &HttpState) -> Option<otp_core::Claims> {
    let token = crate::gate::cookies::session_token(req.headers(), state.service.tokens()).ok()?;
    state.service.tokens().verify_now(token).ok()
}

/// Verify the presented access token — the bearer token, else the
/// `otp_session` cookie (SPEC §11) — on the forward-auth hot path: nginx
/// `auth_request`, Traefik ForwardAuth, Caddy forward_auth. Touches no store.
#[utoipa::path(
    get,
    path = "/api/v1/token/verify",
    tag = "token",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Valid token", body = TokenStatus,
            headers(("X-Auth-Subject" = String, description = "The token's `sub`"),
                ("Remote-User" = String, description = "The token's `sub`"),
                ("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "`token_missing`, `token_invalid` or `token_expired`", body = ErrorResponse,
            headers(("WWW-Authenticate" = String))),
    )
)]
pub async fn verify_bearer(
    req: HttpRequest,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let token = presented_token(req.headers(), state.service.tokens())?;
    Ok(verified(&state, token)?)
}

/// The forward-auth check of `token` (this route and the gate's
/// `/api/v1/auth/forward`): on success the 200 with `X-Auth-Subject` and
/// `Remote-User` carrying `sub`, `Cache-Control: no-store`, and the body
/// `{"active":true,"claims":<the token's payload>}` — the claims exactly as
/// signed (for tokens issued here, the bytes serializing them gives),
/// decoded straight into the response buffer instead of being serialized
/// again.
///
/// A token that passed is remembered with its answer for as long as it
/// verifies ([`crate::verified_cache`]: keyed by the whole token, checked
/// against `nbf`/`iat` and `exp` on every hit), so the proxy's next question
/// about it skips the signature and the JSON.
pub(crate) fn verified(state: &HttpState, token: &str) -> Result<HttpResponse, TokenError> {
    let answer = verified_answer(state, token)?;
    let mut res = HttpResponse::Ok().body(answer.body);
    *res.headers_mut() = answer.headers;
    Ok(res)
}

/// The answer [`verified`] sends for `token`: from the cache, else from a
/// full verification (whose success is then cached).
pub(crate) fn verified_answer(state: &HttpState, token: &str) -> Result<Answer, TokenError> {
    let now = unix_now();
    if let Some(answer) = state.verified.get(token, now) {
        return Ok(answer);
    }
    let mut body = Vec::with_capacity(ACTIVE_PREFIX.len() + token.len() + 1);
    body.extend_from_slice(ACTIVE_PREFIX);
    let tokens = state.service.tokens();
    let claims = tokens.verify_into(token, now, &mut body)?;
    body.push(b'}');
    let answer = Answer::new(body.into(), &claims.sub);
    // The claim checks of otp-core: valid while
    // max(nbf, iat) - leeway <= now < exp + leeway.
    let leeway = tokens.config().leeway_seconds;
    let from = claims.nbf.max(claims.iat).unwrap_or(0);
    state.verified.put(
        token,
        from.saturating_sub(leeway),
        claims.exp.saturating_add(leeway),
        answer.clone(),
    );
    Ok(answer)
}

/// What the forward-auth body starts with; the token's payload and `}` follow.
const ACTIVE_PREFIX: &[u8] = br#"{"active":true,"claims":"#;

/// Liveness and identity of the service (the Python service's body).
#[utoipa::path(get, path = "/health", tag = "ops",
    responses((status = 200, body = HealthResponse, example = json!({"status":"ok","service":"stateless-otp"}))))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok".into(),
        service: "stateless-otp".into(),
    })
}

/// Liveness probe: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness probe: this process can serve. The body names the store
/// backend and whether it answers now (`store_status` `ok` or
/// `unavailable`); a store outage is 503 only with
/// [`HttpConfig::readyz_requires_store`](crate::HttpConfig) (SPEC §5).
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "`{\"status\":\"ready\",\"store\":\"redis\",\"store_status\":\"ok\"}` (`store_status` is `unavailable` while the store does not answer)"),
        (status = 503, description = "Store unreachable and `readyz_requires_store` on (`backend_unavailable`)", body = ErrorResponse,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying (1)")))))]
pub async fn readyz(state: web::Data<HttpState>) -> Result<HttpResponse, ApiError> {
    let store_status = match state.service.store_ping().await {
        Ok(()) => "ok",
        Err(e) if state.config.readyz_requires_store => {
            return Err(ServiceError::Unavailable(e).into())
        }
        Err(e) => {
            tracing::debug!(error = %e, "store unavailable; still ready (readyz_requires_store is off)");
            "unavailable"
        }
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "store": state.service.store_backend(),
        "store_status": store_status,
    })))
}

/// Public keys for offline verification of EdDSA tokens (empty for HS256).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "token",
    responses((status = 200, description = "`{\"keys\":[…]}` (RFC 7517)")))]
pub async fn jwks(state: web::Data<HttpState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.jwks_json.clone())
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "OpenMetrics / Prometheus text exposition")))]
pub async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    let mut out = String::with_capacity(8192);
    if prometheus_client::encoding::text::encode(&mut out, &state.registry).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(out)
}

/// JSON 404 for unknown routes (mount as the app's default service).
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// JSON 405 for a known route with the wrong method.
pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// JSON 405 with `Allow: <allow>` (RFC 9110 §15.5.6), the default service
/// of every resource [`crate::configure`] mounts.
pub(crate) async fn method_not_allowed_for(allow: &'static str) -> HttpResponse {
    use actix_web::ResponseError;
    let mut res = ApiError::MethodNotAllowed.error_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_requires_a_token() {
        let r = TestRequest::default()
            .insert_header(("Authorization", "bearer abc.def.ghi"))
            .to_http_request();
        assert_eq!(bearer(r.headers()), Some("abc.def.ghi"));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert_eq!(bearer(r.headers()), None);
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer   "))
            .to_http_request();
        assert_eq!(bearer(r.headers()), None);
        assert_eq!(
            bearer(TestRequest::default().to_http_request().headers()),
            None
        );
    }

    #[test]
    fn field_errors_name_every_offending_field() {
        let v: StringFields<VerifyFields, 2> = serde_json::from_str(r#"{"identity": 5}"#).unwrap();
        let Err(ApiError::Validation { details, .. }) = string_fields(&v) else {
            panic!("expected a validation error");
        };
        assert_eq!(details.len(), 2);
        assert_eq!(details[0].loc, ["body", "identity"]);
        assert_eq!(details[0].kind, "string_type");
        assert_eq!(details[1].loc, ["body", "otp"]);
        assert_eq!(details[1].kind, "missing");
    }
}
