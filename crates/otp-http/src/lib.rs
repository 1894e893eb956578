//! # otp-http
//!
//! The REST API of stateless-otp on actix-web (SPEC §5): every route, the
//! mapping of domain errors to `{"error","message","detail"}` bodies and status codes,
//! rate-limit headers, client-IP resolution behind trusted proxies, CORS,
//! Prometheus metrics, the OpenAPI 3.1 document and a Swagger UI served from
//! the binary.
//!
//! Mount it in any actix `App`, under any prefix, with [`configure`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpServer};
//! use otp_core::OtpPolicy;
//! use otp_core::{generate_key, OtpKeyRing};
//! use otp_core::{SigningKey, TokenConfig, TokenKeys, TokenService};
//! use otp_http::{HttpConfig, HttpState};
//! use otp_service::{OtpService, ServiceConfig};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let keys = OtpKeyRing::new(generate_key(32).unwrap(), vec![]).unwrap();
//!     let tokens = TokenService::new(
//!         TokenKeys::single(SigningKey::hs256(b"a-jwt-secret-of-at-least-32-bytes!!").unwrap()),
//!         TokenConfig::default(),
//!     )
//!     .unwrap();
//!     let service = OtpService::builder(ServiceConfig::new(OtpPolicy::default(), keys), tokens).build();
//!     let state = HttpState::new(Arc::new(service), HttpConfig::default());
//!     HttpServer::new(move || {
//!         App::new()
//!             // your own routes …
//!             .route("/", web::get().to(|| async { "my app" }))
//!             // … and the OTP API under /auth (e.g. /auth/api/v1/otp/request)
//!             .service(web::scope("/auth").configure(otp_http::configure(state.clone())))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! # Layout
//! - [`configure`], [`HttpState`], [`HttpConfig`], [`cors`]: mounting.
//! - [`ApiError`]: the single `ResponseError` type; [`ErrorResponse`]: its body.
//! - [`routes`]: the handlers; [`docs`]: OpenAPI and Swagger UI.
//! - [`client_ip`]: `TRUSTED_PROXIES` / `X-Forwarded-For` resolution.
//! - [`body_deadline`]: the slow-body guard (408, connection closed).
//! - [`http_metrics`]: request counters and latency histograms, build info.
//! - [`observe`]: `X-Request-Id` and the access log.
//! - [`fast_lane`]: forward auth's common case, and the JSON POSTs of the
//!   code check and the refresh, answered before the `App`.
//! - [`gate`]: the web gate of SPEC §11 (sign-in pages, session cookies,
//!   renewal, `/api/v1/auth/forward`).
//! - [`redirect`]: the web gate's `rd` check (`GATE_ALLOWED_HOSTS`).
//! - `verified_cache` (private): the bounded cache of recently verified
//!   access tokens behind the forward-auth routes.
#![deny(missing_docs)]

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::web::{self, Bytes};
use ipnet::IpNet;
use otp_service::OtpService;
use prometheus_client::registry::Registry;
use utoipa::OpenApi;

pub mod body_deadline;
pub mod client_ip;
pub mod docs;
mod error;
pub mod fast_lane;
pub mod gate;
pub mod http_metrics;
mod json_out;
mod layers;
pub mod observe;
pub mod redirect;
pub mod routes;
mod verified_cache;

pub use error::{fastapi_detail, ApiError, Detail, ErrorResponse};
pub use http_metrics::HttpMetrics;

/// Largest accepted JSON body (SPEC §5): larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// HTTP-level settings (the typed form of `TRUSTED_PROXIES`, `CORS_ORIGINS`,
/// `CLIENT_REQUEST_TIMEOUT_MS`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Proxies whose `X-Forwarded-For` hops are believed (`TRUSTED_PROXIES`).
    /// Defaults to none: the peer address is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Origins allowed by CORS (`CORS_ORIGINS`); empty switches CORS off, `*`
    /// allows any origin without credentials. Defaults to empty.
    pub cors_origins: Vec<String>,
    /// How long after its head a request's body may take to arrive; a slower
    /// body is answered 408 and its connection closed
    /// ([`body_deadline`]). Defaults to [`body_deadline::DEFAULT_BODY_TIMEOUT`]
    /// (5 s).
    pub body_timeout: std::time::Duration,
    /// Writes one access-log line per request (`ACCESS_LOG`): method, route
    /// template, status and latency, never an identity or token
    /// ([`observe`]). Defaults to off.
    pub access_log: bool,
    /// `/readyz` answers 503 while the store does not answer
    /// (`READYZ_REQUIRES_STORE`). Defaults to off: readiness is about this
    /// process, so a Redis outage keeps every replica in rotation (the
    /// bearer check needs no store) and shows in the body's `store_status`
    /// and the `otp_store_up` gauge instead (SPEC §5).
    pub readyz_requires_store: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            body_timeout: body_deadline::DEFAULT_BODY_TIMEOUT,
            access_log: false,
            readyz_requires_store: false,
        }
    }
}

/// Everything the handlers share; cheap to clone (one `Arc` each).
#[derive(Clone)]
pub struct HttpState {
    /// The OTP service.
    pub service: Arc<OtpService>,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
    /// Registry rendered at `/metrics` (service + HTTP metrics).
    pub registry: Arc<Registry>,
    /// HTTP request metrics.
    pub http_metrics: Arc<HttpMetrics>,
    /// `/.well-known/jwks.json` body, rendered once.
    pub jwks_json: Bytes,
    /// `/openapi.json` body, rendered once.
    pub openapi_json: Bytes,
    /// The web gate (SPEC §11); `None` with `GATE=off`, the default.
    pub gate: Option<Arc<gate::GateConfig>>,
    /// Recently verified access tokens of the forward-auth routes.
    pub(crate) verified: Arc<verified_cache::VerifiedCache>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("service", &self.service)
            .field("config", &self.config)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// Builds the shared state: registers the service's and the HTTP
    /// metrics, renders the JWKS and the OpenAPI document once.
    pub fn new(service: Arc<OtpService>, config: HttpConfig) -> Self {
        let mut registry = Registry::default();
        service.metrics().register(&mut registry);
        let http_metrics = Arc::new(HttpMetrics::default());
        http_metrics.register(&mut registry);
        let openapi = docs::ApiDoc::openapi();
        // Every documented (route, status) exists at 0 from the start, so
        // `increase(…) > 0` alerts see the first event.
        http_metrics.precreate(openapi.paths.paths.iter().flat_map(|(path, item)| {
            [
                &item.get,
                &item.post,
                &item.put,
                &item.delete,
                &item.head,
                &item.patch,
            ]
            .into_iter()
            .flatten()
            .flat_map(move |op| {
                op.responses
                    .responses
                    .keys()
                    .filter_map(move |status| Some((path.as_str(), status.parse().ok()?)))
            })
        }));
        let jwks_json = serde_json::to_vec(&service.tokens().jwks())
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from_static(b"{\"keys\":[]}"));
        let openapi_json = openapi.to_json().map(Bytes::from).unwrap_or_default();
        HttpState {
            service,
            config: Arc::new(config),
            registry: Arc::new(registry),
            http_metrics,
            jwks_json,
            openapi_json,
            gate: None,
            verified: Arc::default(),
        }
    }

    /// The same state with the web gate on (`GATE=on`): [`configure`] then
    /// also mounts the pages of [`gate`].
    pub fn with_gate(mut self, gate: gate::GateConfig) -> Self {
        self.http_metrics.precreate_gate();
        self.gate = Some(Arc::new(gate));
        self
    }
}

/// The JSON extractor settings: 16 KiB limit (413), `application/json`
/// required (415), malformed JSON → 422, a body slower than
/// [`HttpConfig::body_timeout`] → 408.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .error_handler(|err, req| {
            let body_timeout = req
                .app_data::<web::Data<HttpState>>()
                .map_or(body_deadline::DEFAULT_BODY_TIMEOUT, |s| {
                    s.config.body_timeout
                });
            error::json_error(err, MAX_BODY_BYTES, body_timeout).into()
        })
}

/// Registers every route of SPEC §5 on an actix `ServiceConfig`. Returns a
/// closure so it can be called once per worker (`HttpServer::new`).
///
/// Routes are registered one by one (no catch-all scope), so they coexist
/// with the embedding application's routes. Unknown paths are left to the
/// application; the `otp-server` binary mounts [`routes::not_found`] as its
/// default service.
pub fn configure(state: HttpState) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        let json = json_config();
        // A known path with another method gets a JSON 405 naming the
        // allowed method in `Allow` (RFC 9110 §15.5.6).
        let resource = |path: &'static str, allow: &'static str| {
            web::resource(path)
                .wrap(layers::RouteLayers::new(&state.http_metrics, path))
                .default_service(web::to(move || routes::method_not_allowed_for(allow)))
        };
        let get = |path: &'static str| resource(path, "GET");
        let post = |path: &'static str| resource(path, "POST");
        // Probes (and `curl -I`) may send HEAD; actix sends no body for it.
        let probe = |path: &'static str| resource(path, "GET, HEAD");
        cfg.app_data(web::Data::new(state.clone()))
            .service(
                post("/api/v1/otp/request")
                    .app_data(json.clone())
                    .route(web::post().to(routes::request_otp)),
            )
            .service(
                post("/api/v1/otp/verify")
                    .app_data(json.clone())
                    .route(web::post().to(routes::verify_otp)),
            )
            .service(
                post("/api/v1/token/refresh")
                    .app_data(json.clone())
                    .route(web::post().to(routes::refresh)),
            )
            .service(
                post("/api/v1/logout")
                    .app_data(web::PayloadConfig::new(16 * 1024))
                    .route(web::post().to(routes::logout)),
            )
            .service(
                post("/api/v1/token/revoke")
                    .app_data(web::PayloadConfig::new(16 * 1024))
                    .route(web::post().to(routes::revoke)),
            )
            .service(
                post("/api/v1/token/introspect")
                    .app_data(json.clone())
                    .route(web::post().to(routes::introspect)),
            )
            .service(get("/api/v1/token/verify").route(web::get().to(routes::verify_bearer)))
            .service(
                resource("/api/v1/auth/forward", "GET, HEAD")
                    .route(web::get().to(gate::forward::forward))
                    .route(web::head().to(gate::forward::forward)),
            )
            .service(
                probe("/health")
                    .route(web::get().to(routes::health))
                    .route(web::head().to(routes::health)),
            )
            .service(
                probe("/healthz")
                    .route(web::get().to(routes::healthz))
                    .route(web::head().to(routes::healthz)),
            )
            .service(
                probe("/readyz")
                    .route(web::get().to(routes::readyz))
                    .route(web::head().to(routes::readyz)),
            )
            .service(get("/metrics").route(web::get().to(routes::metrics)))
            .service(get("/.well-known/jwks.json").route(web::get().to(routes::jwks)))
            .service(get("/openapi.json").route(web::get().to(docs::openapi_json)))
            .service(get("/docs").route(web::get().to(docs::index)))
            .service(get("/docs/").route(web::get().to(docs::index)))
            .service(get("/docs/{file}").route(web::get().to(docs::asset)));
        if let Some(gate) = &state.gate {
            gate::register(cfg, gate, &state.http_metrics);
        }
    }
}

/// CORS per SPEC §5: `None` when no origin is configured (CORS off); `*`
/// allows any origin without credentials; a list allows exactly those
/// origins, with credentials.
///
/// Wrap the whole `App` with it, as `otp-server` does:
///
/// ```
/// use actix_web::middleware::Condition;
/// use otp_http::HttpConfig;
///
/// let off = HttpConfig::default();
/// assert!(otp_http::cors(&off).is_none());
/// let on = HttpConfig {
///     cors_origins: vec!["https://app.example.com".into()],
///     ..HttpConfig::default()
/// };
/// let cors = otp_http::cors(&on);
/// let _app = actix_web::App::new().wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()));
/// ```
pub fn cors(config: &HttpConfig) -> Option<Cors> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let base = Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .expose_headers([
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-window",
            "retry-after",
            "x-request-id",
        ])
        .max_age(600);
    if config.cors_origins.iter().any(|o| o == "*") {
        // Never `*` together with credentials.
        return Some(base.allow_any_origin().send_wildcard());
    }
    let mut cors = base.supports_credentials();
    for origin in &config.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    Some(cors)
}
