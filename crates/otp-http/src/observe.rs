//! Request ids and the access log (SPEC §12).
//!
//! - **`X-Request-Id`.** A request's own id is kept when it is sane (1 to
//!   [`MAX_REQUEST_ID_LEN`] characters of `A-Z a-z 0-9 - _ . : / + = @ ~`, as
//!   written by nginx's `$request_id`, Envoy, Traefik, UUIDs or base64);
//!   otherwise (absent, too long, other characters) one is made: 32 hex
//!   digits, a random per-process prefix and a counter. The id is returned on
//!   every response and is the `request_id` field of a tracing span around
//!   the request, so every log line written while serving it carries it
//!   (the JSON log format prints the span's fields; the pretty format prefixes
//!   `request{request_id=…}`). A rejected incoming value is never logged.
//! - **Access log** ([`HttpConfig::access_log`](crate::HttpConfig::access_log),
//!   `ACCESS_LOG=true`). One `info` line per request, target
//!   `otp_http::access`: `method`, `route` (the route template, never the
//!   raw path or query), `status` and `latency_ms`, inside the request span.
//!   Never an identity, a code or a token: none of them is in a route
//!   template, and bodies and headers are not logged.
//!
//! [`configure`](crate::configure) applies it to every route it mounts; an
//! application wraps its whole `App` with [`observe`] (the `otp-server`
//! binary does) so unknown paths and CORS answers get an id too. Applied
//! twice, the inner one steps aside.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use tracing::Instrument;

use crate::HttpState;

/// Longest incoming `X-Request-Id` that is kept (longer ones are replaced).
pub const MAX_REQUEST_ID_LEN: usize = 128;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Both sources (a checked incoming value, a made hex id) are ASCII.
        self.0.to_str().unwrap_or_default()
    }
}

/// Whether `value` is kept as the request id: 1 to [`MAX_REQUEST_ID_LEN`]
/// characters, each an ASCII letter or digit or one of `-_.:/+=@~`.
///
/// ```
/// use otp_http::observe::is_sane_request_id;
/// assert!(is_sane_request_id("7f1c0b6e-2f47-4a8e-9a39-3f4ad8d0c2a1"));
/// assert!(!is_sane_request_id(""));
/// assert!(!is_sane_request_id("a b"));
/// assert!(!is_sane_request_id(&"a".repeat(129)));
/// ```
pub fn is_sane_request_id(value: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@~".contains(&b))
}

fn incoming(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&X_REQUEST_ID);
    let value = values.next()?;
    // Two ids are no id: make one rather than pick.
    if values.next().is_some() {
        return None;
    }
    is_sane_request_id(value.to_str().ok()?).then(|| value.clone())
}

/// The id of a request with these headers: its own when sane, else a new
/// one (the one rule of [`observe`], also used by
/// [`fast_lane`](crate::fast_lane)).
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    incoming(headers).unwrap_or_else(generate)
}

/// A new id: a random per-process prefix and a counter, 32 hex digits.
fn generate() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        // std's randomly keyed hasher: random enough to keep ids of two
        // processes apart, without a dependency.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // One allocation: the hex text becomes the header value's buffer
    // (written without `format!`: this runs on every request).
    let mut id = String::with_capacity(32);
    otp_core::push_lower_hex(&mut id, &prefix.to_be_bytes());
    otp_core::push_lower_hex(&mut id, &n.to_be_bytes());
    HeaderValue::from_maybe_shared(Bytes::from(id))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Middleware: takes or makes the request id, runs the request inside a
/// span carrying it, returns it in `X-Request-Id` and writes the access log
/// line when [`HttpConfig::access_log`](crate::HttpConfig::access_log) is on
/// (see the module docs).
///
/// ```
/// use actix_web::{middleware::from_fn, App};
/// let _app = App::new().wrap(from_fn(otp_http::observe::observe));
/// ```
pub async fn observe<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let route = crate::http_metrics::route_of(req.path());
    let Some(observed) = Observed::begin(&req, route) else {
        return next.call(req).await;
    };
    let result = next.call(req).instrument(observed.span.clone()).await;
    observed.finish(result)
}

/// The span a request runs in, carrying its id (also the
/// [`fast_lane`](crate::fast_lane)'s). An `error`-level span, so that its
/// field reaches every line the filter lets through, also with
/// `RUST_LOG=warn`.
pub(crate) fn request_span(id: &RequestId) -> tracing::Span {
    tracing::error_span!("request", request_id = %id.as_str())
}

/// A request [`observe`] has taken on: its id, its span and what the
/// access log line needs. Split in two so that
/// [`layers`](crate::layers) can apply it with the other per-route layers
/// in one middleware.
pub(crate) struct Observed {
    started: Instant,
    id: HeaderValue,
    /// The span the rest of the request runs in.
    pub(crate) span: tracing::Span,
    access_log: bool,
    method: Method,
    route: &'static str,
}

impl Observed {
    /// Takes or makes `req`'s id and opens its span; `None` when an outer
    /// [`observe`] already did (applied twice, the inner one steps aside).
    pub(crate) fn begin(req: &ServiceRequest, route: &'static str) -> Option<Self> {
        if req.extensions().contains::<RequestId>() {
            return None;
        }
        let started = Instant::now();
        let id = request_id(req.headers());
        let request_id = RequestId(id.clone());
        let span = request_span(&request_id);
        req.extensions_mut().insert(request_id);
        let access_log = req
            .app_data::<web::Data<HttpState>>()
            .is_some_and(|s| s.config.access_log);
        Some(Observed {
            started,
            id,
            span,
            access_log,
            method: req.method().clone(),
            route,
        })
    }

    /// Writes the access log line (when on) and returns the id in
    /// `X-Request-Id`.
    pub(crate) fn finish<B>(
        self,
        result: Result<ServiceResponse<B>, actix_web::Error>,
    ) -> Result<ServiceResponse<B>, actix_web::Error> {
        if self.access_log {
            let status = match &result {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            tracing::info!(
                target: "otp_http::access",
                parent: &self.span,
                method = self.method.as_str(),
                route = self.route,
                status = status.as_u16(),
                latency_ms = self.started.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }
        // Handlers' errors arrive here as responses; an `Err` is an error of
        // a middleware further in, which actix turns into a response after
        // this one (so without the header: the request is no longer at
        // hand).
        let mut res = result?;
        res.headers_mut().insert(X_REQUEST_ID.clone(), self.id);
        Ok(res)
    }
}
