//! Shared harness of the otp-http integration tests.
//!
//! - [`Setup`] → [`Harness`]: an `OtpService` over a real store (memory, or a
//!   `RedisStore` on a real `redis-server`) with an [`Outbox`] delivery that
//!   records every code it was handed, per normalized identity, so a test
//!   types back exactly the code a user would have received.
//! - [`Harness::app`] builds the actix `App` exactly as `otp-server` does
//!   (`cors` when configured, `configure`, JSON 404 default service) and
//!   runs it in-process with `init_service`.
//! - [`Harness::serve`] binds a real `HttpServer` on 127.0.0.1:0 for tests
//!   that need true concurrency; [`Running`] stops it when dropped.
//! - [`send`] / [`Reply`]: one request, its status, headers and body.
//!
//! The deliveries ([`Outbox`], [`FailingDelivery`]) and the keys come from
//! `otp_testkit`.
#![allow(dead_code)] // not every module uses every helper

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::middleware::Condition;
use actix_web::test::{self, TestRequest};
use actix_web::web::{self, Bytes};
use actix_web::App;
use otp_core::OtpKeyRing;
use otp_core::OtpPolicy;
use otp_core::SecretBytes;
use otp_core::{generate_ed25519_pkcs8, SigningKey, TokenConfig, TokenKeys, TokenService};
use otp_delivery::Delivery;
use otp_http::{HttpConfig, HttpState};
use otp_ratelimit::{MemoryStore, Store};
use otp_service::Limits;
use otp_service::{IdentityAllowlist, OtpService, ServiceConfig};
use otp_testkit::keys::{HASH_KEY, OTP_KEY};
use serde_json::{json, Value};

/// The HS256 secret of every test harness (>= 32 bytes).
pub const JWT_SECRET: &[u8] = otp_testkit::keys::JWT_SECRET.as_bytes();

pub use otp_testkit::doubles::{FailingDelivery, Outbox};

/// What to build; every field has a test-friendly default.
pub struct Setup {
    /// OTP policy. Defaults to 6 digits, 300 s windows (the product default).
    pub policy: OtpPolicy,
    /// Limits. Defaults to the SPEC §6 defaults.
    pub limits: Limits,
    /// `OTP_MAX_ATTEMPTS`. Defaults to 5.
    pub max_attempts: u32,
    /// HTTP settings. Defaults to no proxies, no CORS.
    pub http: HttpConfig,
    /// Store. Defaults to a fresh `MemoryStore`.
    pub store: Option<Arc<dyn Store>>,
    /// Delivery. Defaults to the harness's [`Outbox`].
    pub delivery: Option<Arc<dyn Delivery>>,
    /// EdDSA tokens instead of HS256.
    pub eddsa: bool,
    /// `ALLOWED_IDENTITIES`. Defaults to anyone.
    pub allowed_identities: IdentityAllowlist,
    /// Sessions (`SESSIONS`, lifetimes). Defaults to on, the defaults.
    pub sessions: otp_service::SessionConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            policy: OtpPolicy::default(),
            limits: Limits::default(),
            max_attempts: 5,
            http: HttpConfig::default(),
            store: None,
            delivery: None,
            eddsa: false,
            allowed_identities: IdentityAllowlist::anyone(),
            sessions: otp_service::SessionConfig::default(),
        }
    }
}

/// The HS256 token service every harness uses (same key, same config).
pub fn hs256_tokens() -> TokenService {
    TokenService::new(
        TokenKeys::single(SigningKey::hs256(JWT_SECRET).unwrap()),
        TokenConfig::default(),
    )
    .unwrap()
}

impl Setup {
    /// Builds the service and the HTTP state.
    pub fn build(self) -> Harness {
        let keys = OtpKeyRing::new(SecretBytes::new(OTP_KEY.to_vec()), vec![]).unwrap();
        let tokens = if self.eddsa {
            let der = generate_ed25519_pkcs8().unwrap();
            TokenService::new(
                TokenKeys::single(SigningKey::ed25519_from_pkcs8(der.expose()).unwrap()),
                TokenConfig::default(),
            )
            .unwrap()
        } else {
            hs256_tokens()
        };
        let outbox = Arc::new(Outbox::default());
        let mut config = ServiceConfig::new(self.policy, keys);
        config.limits = self.limits;
        config.max_attempts = self.max_attempts;
        config.allowed_identities = self.allowed_identities;
        config.sessions = self.sessions;
        let service = OtpService::builder(config, tokens)
            .store(
                self.store
                    .unwrap_or_else(|| Arc::new(MemoryStore::new(HASH_KEY.to_vec()))),
            )
            .delivery(self.delivery.unwrap_or_else(|| outbox.clone()))
            .build();
        Harness {
            state: HttpState::new(Arc::new(service), self.http),
            outbox,
        }
    }
}

/// A built service + HTTP state, and the outbox its codes go to.
pub struct Harness {
    /// What `configure` mounts.
    pub state: HttpState,
    /// Codes delivered (when the default delivery is used).
    pub outbox: Arc<Outbox>,
}

/// A harness with every default.
pub fn harness() -> Harness {
    Setup::default().build()
}

/// The app `otp-server` builds: request ids and the access log, optional
/// CORS, the slow-body guard, the API, JSON 404.
macro_rules! server_app {
    ($state:expr) => {{
        let state: HttpState = $state;
        let cors = otp_http::cors(&state.config);
        App::new()
            .wrap(actix_web::middleware::from_fn(
                otp_http::body_deadline::guard,
            ))
            .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
            .wrap(actix_web::middleware::from_fn(otp_http::observe::observe))
            .configure(otp_http::configure(state))
            .default_service(web::to(otp_http::routes::not_found))
    }};
}

impl Harness {
    /// The in-process app (see the module docs).
    pub async fn app(
        &self,
    ) -> impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    > {
        test::init_service(server_app!(self.state.clone())).await
    }

    /// A real server on 127.0.0.1 (free port) with 4 workers.
    pub fn serve(&self) -> Running {
        let state = self.state.clone();
        run(actix_web::HttpServer::new(move || {
            server_app!(state.clone())
        }))
    }

    /// [`Harness::serve`] with the app wrapped in the forward-auth fast
    /// lane, exactly as `otp-server` serves it.
    pub fn serve_with_fast_lane(&self) -> Running {
        let state = self.state.clone();
        run(actix_web::HttpServer::new(move || {
            otp_http::fast_lane::FastLane::new(&state, server_app!(state.clone()))
        }))
    }
}

/// Binds `server` on 127.0.0.1:0 with 4 workers and runs it in the background.
fn run<F, I, S, B>(server: actix_web::HttpServer<F, I, S, B>) -> Running
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: actix_web::dev::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig>
        + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let server = server
        .workers(4)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Running { addr, handle }
}

impl Harness {}

/// A running real server; stopped (without waiting for the workers) on drop.
pub struct Running {
    /// Its address.
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl Running {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping is async; the runtime may be going away, so best effort.
        drop(actix_web::rt::spawn(
            async move { handle.stop(false).await },
        ));
    }
}

/// One response, fully read.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body text if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts an error reply: status, `error` code, exact `message` when
    /// given; returns the body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, message: Option<&str>) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        let body = self.json();
        assert_eq!(body["error"], code, "body: {body}");
        assert!(body["message"].is_string(), "body: {body}");
        if let Some(m) = message {
            assert_eq!(body["message"], m, "body: {body}");
        }
        if status == 422 {
            let details = body["details"].as_array();
            assert!(
                details.is_some_and(|d| !d.is_empty()),
                "422 must carry details: {body}"
            );
            // FastAPI's `detail`: one `{loc, msg, type}` per offending field.
            let detail = body["detail"].as_array().expect("422 detail is a list");
            assert_eq!(detail.len(), details.map_or(0, Vec::len), "body: {body}");
            for (d, ours) in detail.iter().zip(details.into_iter().flatten()) {
                assert_eq!(d["loc"], ours["loc"], "body: {body}");
                assert!(
                    d["msg"].is_string() && d["type"].is_string(),
                    "body: {body}"
                );
            }
        } else {
            // FastAPI's `detail` is the message as a string.
            assert_eq!(body["detail"], body["message"], "body: {body}");
            assert!(
                body.get("details").is_none(),
                "only 422 has details: {body}"
            );
        }
        body
    }
}

/// Sends `req` to the in-process `app`.
pub async fn send<S, B>(app: &S, req: TestRequest) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    Reply {
        status,
        headers,
        body,
    }
}

/// `POST path` with a JSON body.
pub fn post_json(path: &str, body: Value) -> TestRequest {
    TestRequest::post().uri(path).set_json(body)
}

/// `POST /api/v1/otp/request {identity}`.
pub fn request_otp(identity: &str) -> TestRequest {
    post_json("/api/v1/otp/request", json!({ "identity": identity }))
}

/// `POST /api/v1/otp/verify {identity, otp}`.
pub fn verify_otp(identity: &str, otp: &str) -> TestRequest {
    post_json(
        "/api/v1/otp/verify",
        json!({ "identity": identity, "otp": otp }),
    )
}

/// `GET /api/v1/token/verify` with `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> TestRequest {
    TestRequest::get()
        .uri("/api/v1/token/verify")
        .insert_header(("Authorization", format!("Bearer {token}")))
}

/// A code of the same length that is certainly not `code` (every digit
/// shifted by one).
pub fn wrong_code(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

/// Requests a code for `identity` and returns the delivered code.
pub async fn obtain_code<S, B>(h: &Harness, app: &S, identity: &str, normalized: &str) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = send(app, request_otp(identity)).await;
    assert_eq!(r.status, 200, "request failed: {}", r.text());
    h.outbox.last_code(normalized)
}

/// Logs in `identity` end to end and returns the access token.
pub async fn login<S, B>(h: &Harness, app: &S, identity: &str) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let code = obtain_code(h, app, identity, identity).await;
    let r = send(app, verify_otp(identity, &code)).await;
    assert_eq!(r.status, 200, "verify failed: {}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// The value of an un-labelled sample `name` in Prometheus text (0 if absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0.0)
}

/// The sum of all samples of `name{…}` whose labels contain `label`.
pub fn metric_with(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}
