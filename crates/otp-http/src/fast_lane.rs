//! The fast lane (SPEC §9, §11): forward auth's common case — a valid
//! token's `GET /api/v1/token/verify` and `GET /api/v1/auth/forward` — and
//! the JSON `POST`s of `/api/v1/otp/verify` and `/api/v1/token/refresh`,
//! answered before the actix-web `App`.
//!
//! A proxy asks about the same few tokens for every request a signed-in
//! browser makes, so the token check is the route whose throughput sets
//! what the service can protect; the code check and the refresh are the
//! two POST routes every sign-in and every session pays. Measured on this
//! project's 2-core machine (docs/benchmarks.md), the `App` path of a
//! request — actix-web's request/response wrappers and routing, the
//! extractors, and the middlewares every route gets (the request-id span,
//! the metrics, the body deadline) — costs more per request than a cached
//! token check itself, and about a fifth of a wrong code's user CPU;
//! actix-http under it answers a fixed response at nginx's rate.
//! [`FastLane`] wraps the `App` at the actix-http level and answers these
//! cases itself, exactly as the `App` would.
//!
//! - **Forward auth:** a `GET` of one of the two paths, with no body,
//!   presenting a token (the bearer header, else the `otp_session`
//!   cookie: the same `presented_token` rule as the routes) that verifies
//!   (from the verified-token cache or in full). The same status, headers
//!   (`X-Auth-Subject`, `Remote-User`, `Cache-Control: no-store`,
//!   `Content-Type`, the `X-Request-Id` of [`observe`](crate::observe)) and
//!   body. A missing, invalid or expired token goes to the `App` (which
//!   answers the 401, or the gate's redirect, and pays the verification
//!   once more — a refused token is the rare case).
//! - **The two POSTs:** `Content-Type` exactly `application/json`, a
//!   `Content-Length` within the routes' 16 KiB, no `Transfer-Encoding`,
//!   `Expect` or `Content-Encoding`. The lane reads the body under the
//!   [body deadline](crate::body_deadline) (a stalled body is answered 408
//!   and its connection closed), parses it as the JSON extractor does
//!   (`serde_json::from_slice`, its errors mapped by the same function), and
//!   runs the route's own handler inside the request's span (the
//!   `request{request_id=…}` of [`observe`](crate::observe)), so every
//!   answer — success, 400, 401, 422, 429, 503 — and every log line is the
//!   `App`'s. Any other content type, framing, method or path goes to the
//!   `App`.
//!
//! Both record the same `http_requests_total` and
//! `http_request_duration_seconds` samples as the `App`. The lane stays
//! off — every request goes to the `App` — when the
//! [access log](crate::HttpConfig::access_log) or
//! [CORS](crate::HttpConfig::cors_origins) is on, since both add to every
//! answer.
//!
//! It bypasses the `App`'s middleware for the answers it gives, so wrap
//! only an `App` that adds nothing else to these four routes, as
//! `otp-server` does:
//!
//! ```no_run
//! # fn demo(state: otp_http::HttpState) -> std::io::Result<()> {
//! use actix_web::{App, HttpServer};
//!
//! let server = HttpServer::new(move || {
//!     otp_http::fast_lane::FastLane::new(
//!         &state,
//!         App::new().configure(otp_http::configure(state.clone())),
//!     )
//! })
//! .bind(("127.0.0.1", 8080))?;
//! # let _ = server; Ok(())
//! # }
//! ```

use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_http::body::{BoxBody, MessageBody};
use actix_http::{Method, Request, Response, StatusCode};
use actix_service::{IntoServiceFactory, Service, ServiceFactory};
use actix_web::http::header;
use futures_core::future::LocalBoxFuture;
use futures_util::future::{Either, MapOk, TryFutureExt};

use actix_web::error::JsonPayloadError;
use actix_web::web::{Bytes, BytesMut};
use futures_core::Stream;

use crate::body_deadline;
use crate::http_metrics::{route_of, RouteMetrics};
use crate::observe::{request_id, RequestId, X_REQUEST_ID};
use crate::HttpState;

/// The token check of `GET /api/v1/token/verify`.
const VERIFY: &str = "/api/v1/token/verify";
/// The gate's forward-auth route, whose success answer is the same.
const FORWARD: &str = "/api/v1/auth/forward";

/// `POST /api/v1/otp/verify`.
const OTP_VERIFY: &str = "/api/v1/otp/verify";
/// `POST /api/v1/token/refresh`.
const REFRESH: &str = "/api/v1/token/refresh";

/// What the lane needs per worker.
struct Lane {
    state: HttpState,
    verify: RouteMetrics,
    forward: RouteMetrics,
    otp_verify: RouteMetrics,
    refresh: RouteMetrics,
}

/// A POST route of the lane.
#[derive(Clone, Copy)]
enum Post {
    OtpVerify,
    Refresh,
}

impl Lane {
    /// The route of `req` if it is the lane's POST case (see the module
    /// docs): a `POST` of one of the two paths with a body of a known
    /// length the routes accept, nothing asked of the body's transfer, and
    /// `Content-Type` exactly `application/json`.
    fn post_case(&self, req: &Request) -> Option<Post> {
        let head = req.head();
        if head.method != Method::POST {
            return None;
        }
        let route = match head.uri.path() {
            OTP_VERIFY => Post::OtpVerify,
            REFRESH => Post::Refresh,
            _ => return None,
        };
        let headers = head.headers();
        // chunked bodies, `Expect: 100-continue`, compressed bodies (the
        // JSON extractor would decompress them) and `Upgrade: websocket`
        // (actix-http then frames the body until the connection ends,
        // whatever its `Content-Length`) are the App's
        if [
            header::TRANSFER_ENCODING,
            header::EXPECT,
            header::CONTENT_ENCODING,
            header::UPGRADE,
        ]
        .iter()
        .any(|h| headers.contains_key(h))
        {
            return None;
        }
        if headers.get(header::CONTENT_TYPE)?.as_bytes() != b"application/json" {
            return None;
        }
        let len = headers.get(header::CONTENT_LENGTH)?.to_str().ok()?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: usize = len.parse().ok()?;
        (len <= crate::MAX_BODY_BYTES).then_some(route)
    }

    /// What the `App` answers a [`Lane::post_case`] request: the body read
    /// under the body deadline, the route's handler inside the request's
    /// span, the request id and the route's metrics.
    async fn post(self: Rc<Self>, mut req: Request, route: Post) -> Response<BoxBody> {
        use tracing::Instrument;
        let started = Instant::now();
        let config = &self.state.config;
        let headers = req.head().headers();
        let id = request_id(headers);
        let request_id = RequestId(id.clone());
        // the span of `observe`, made there (so under its target too)
        let span = crate::observe::request_span(&request_id);
        let ctx = otp_service::RequestContext {
            client_ip: crate::client_ip::client_ip_of(
                req.peer_addr(),
                headers,
                &config.trusted_proxies,
            ),
            allowed_identities: None,
            request_id: Some(request_id.as_str().to_owned()),
        };
        // Nothing holds the payload past the answer (as `body_deadline::hold`
        // does for the App): the lane reads every body to its end, or answers
        // the 408, which closes the connection.
        let mut body = body_deadline::begin_payload(req.take_payload(), config.body_timeout)
            .map(|(stream, _)| stream);
        let answer = async {
            let bytes = match &mut body {
                Some(stream) => read_body(stream).await,
                None => Ok(Bytes::new()),
            };
            let path = req.head().uri.path();
            let json_error = |e| {
                // the line actix-web's JSON extractor logs for every body it
                // refuses (through the `log` bridge, under its module)
                tracing::debug!(
                    target: "actix_web::types::json",
                    "Failed to deserialize Json from payload. Request path: {path}"
                );
                crate::error::json_error(e, crate::MAX_BODY_BYTES, config.body_timeout)
            };
            let answer = match (route, bytes) {
                (_, Err(e)) => Err(json_error(e)),
                (Post::OtpVerify, Ok(b)) => match serde_json::from_slice(&b) {
                    Ok(fields) => crate::routes::verify_otp_with(&self.state, &fields, &ctx).await,
                    Err(e) => Err(json_error(JsonPayloadError::Deserialize(e))),
                },
                (Post::Refresh, Ok(b)) => match serde_json::from_slice(&b) {
                    Ok(fields) => crate::routes::refresh_with(&self.state, &fields, &ctx).await,
                    Err(e) => Err(json_error(JsonPayloadError::Deserialize(e))),
                },
            };
            answer.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
        }
        .instrument(span)
        .await;
        let metrics = match route {
            Post::OtpVerify => &self.otp_verify,
            Post::Refresh => &self.refresh,
        };
        metrics.record(answer.status().as_u16(), started);
        let mut res = Response::<BoxBody>::from(answer);
        res.headers_mut().insert(X_REQUEST_ID.clone(), id);
        res
    }
}

/// The whole body, read as the JSON extractor reads it, up to its limit
/// (a lane body's `Content-Length` is within it, and actix-http delivers
/// no more than that; checked all the same).
async fn read_body(stream: &mut body_deadline::DeadlineStream) -> Result<Bytes, JsonPayloadError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await {
        let chunk = chunk.map_err(JsonPayloadError::Payload)?;
        if out.len() + chunk.len() > crate::MAX_BODY_BYTES {
            return Err(JsonPayloadError::Overflow {
                limit: crate::MAX_BODY_BYTES,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

impl Lane {
    /// The answer for `req` if it is the lane's case (see the module docs).
    fn answer(&self, req: &Request) -> Option<Response<BoxBody>> {
        let head = req.head();
        if head.method != Method::GET {
            return None;
        }
        let metrics = match head.uri.path() {
            VERIFY => &self.verify,
            FORWARD => &self.forward,
            _ => return None,
        };
        let started = Instant::now();
        let headers = head.headers();
        if headers.contains_key(header::CONTENT_LENGTH)
            || headers.contains_key(header::TRANSFER_ENCODING)
        {
            return None;
        }
        let token = crate::routes::presented_token(headers, self.state.service.tokens()).ok()?;
        let answer = crate::routes::verified_answer(&self.state, token).ok()?;
        let mut res = Response::with_body(StatusCode::OK, BoxBody::new(answer.body));
        let out = res.headers_mut();
        *out = answer.headers;
        out.insert(X_REQUEST_ID.clone(), request_id(headers));
        metrics.record(200, started);
        Some(res)
    }
}

/// An actix-http service factory answering forward auth's common case and
/// the two POST routes before the wrapped `App` (see the module docs).
/// Build one per worker, inside the `HttpServer::new` closure.
pub struct FastLane<S, B> {
    lane: Option<Rc<Lane>>,
    inner: S,
    _body: PhantomData<fn() -> B>,
}

impl<S, B> FastLane<S, B> {
    /// Wraps `app` (an actix-web `App`, or any service factory of
    /// actix-http requests); the lane is off when `state`'s access log or
    /// CORS is on.
    pub fn new<I>(state: &HttpState, app: I) -> Self
    where
        I: IntoServiceFactory<S, Request>,
        S: ServiceFactory<Request>,
    {
        let on = !state.config.access_log && state.config.cors_origins.is_empty();
        FastLane {
            lane: on.then(|| {
                Rc::new(Lane {
                    state: state.clone(),
                    verify: RouteMetrics::of(&state.http_metrics, VERIFY),
                    forward: RouteMetrics::of(&state.http_metrics, FORWARD),
                    otp_verify: RouteMetrics::of(&state.http_metrics, route_of(OTP_VERIFY)),
                    refresh: RouteMetrics::of(&state.http_metrics, route_of(REFRESH)),
                })
            }),
            inner: app.into_factory(),
            _body: PhantomData,
        }
    }
}

impl<S, B> ServiceFactory<Request> for FastLane<S, B>
where
    S: ServiceFactory<Request>,
    S::Response: Into<Response<B>>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Config = S::Config;
    type Service = FastLaneService<S::Service, B>;
    type InitError = S::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, cfg: S::Config) -> Self::Future {
        let lane = self.lane.clone();
        let inner = self.inner.new_service(cfg);
        Box::pin(async move {
            Ok(FastLaneService {
                lane,
                inner: inner.await?,
                _body: PhantomData,
            })
        })
    }
}

/// The service [`FastLane`] builds.
pub struct FastLaneService<S, B> {
    lane: Option<Rc<Lane>>,
    inner: S,
    _body: PhantomData<fn() -> B>,
}

/// A response of the wrapped service, its body boxed.
type Boxed<R> = fn(R) -> Response<BoxBody>;

fn boxed<R: Into<Response<B>>, B: MessageBody + 'static>(res: R) -> Response<BoxBody> {
    res.into().map_into_boxed_body()
}

impl<S, B> Service<Request> for FastLaneService<S, B>
where
    S: Service<Request>,
    S::Response: Into<Response<B>>,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = Either<
        Either<
            Ready<Result<Self::Response, S::Error>>,
            LocalBoxFuture<'static, Result<Self::Response, S::Error>>,
        >,
        MapOk<S::Future, Boxed<S::Response>>,
    >;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&self, req: Request) -> Self::Future {
        if let Some(lane) = &self.lane {
            if let Some(res) = lane.answer(&req) {
                return Either::Left(Either::Left(ready(Ok(res))));
            }
            if let Some(route) = lane.post_case(&req) {
                let lane = lane.clone();
                return Either::Left(Either::Right(Box::pin(async move {
                    Ok(lane.post(req, route).await)
                })));
            }
        }
        Either::Right(
            self.inner
                .call(req)
                .map_ok(boxed::<S::Response, B> as Boxed<S::Response>),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::test::TestRequest;
    use otp_core::TokenService;
    use otp_core::{OtpKeyRing, OtpPolicy, SecretBytes, SigningKey, TokenConfig, TokenKeys};
    use otp_service::{OtpService, ServiceConfig};
    use serde_json::Map;

    use super::*;
    use crate::HttpConfig;

    fn tokens(secret: &[u8]) -> TokenService {
        let key = SigningKey::hs256(secret).unwrap();
        TokenService::new(TokenKeys::single(key), TokenConfig::default()).unwrap()
    }

    fn lane(config: HttpConfig) -> (FastLane<impl ServiceFactory<Request>, BoxBody>, HttpState) {
        let keys = OtpKeyRing::new(SecretBytes::new(vec![7; 32]), vec![]).unwrap();
        let service = OtpService::builder(
            ServiceConfig::new(OtpPolicy::default(), keys),
            tokens(b"a-jwt-secret-of-at-least-32-bytes!!"),
        )
        .build();
        let state = HttpState::new(Arc::new(service), config);
        (FastLane::new(&state, actix_web::App::new()), state)
    }

    fn answered<S>(lane: &FastLane<S, BoxBody>, req: TestRequest) -> Option<u16> {
        let lane = lane.lane.as_ref().expect("the lane is on");
        lane.answer(&req.to_request())
            .map(|res| res.status().as_u16())
    }

    fn token(state: &HttpState, ttl_ago: u64) -> String {
        let now = otp_core::unix_now() - ttl_ago;
        state
            .service
            .tokens()
            .issue("alice@example.com", now, Map::new())
            .unwrap()
            .token
    }

    #[test]
    fn the_lane_answers_a_get_of_either_route_with_a_valid_token() {
        let (lane, state) = lane(HttpConfig::default());
        let t = token(&state, 0);
        for path in [VERIFY, FORWARD, "/api/v1/token/verify?x=1"] {
            let bearer = TestRequest::get()
                .uri(path)
                .insert_header(("Authorization", format!("Bearer {t}")));
            assert_eq!(answered(&lane, bearer), Some(200), "{path}");
            let cookie = TestRequest::get()
                .uri(path)
                .insert_header(("Cookie", format!("a=1; otp_session={t}")));
            assert_eq!(answered(&lane, cookie), Some(200), "{path}");
        }
    }

    #[test]
    fn everything_else_goes_to_the_app() {
        let (lane, state) = lane(HttpConfig::default());
        let t = token(&state, 0);
        let auth = ("Authorization", format!("Bearer {t}"));
        let other = tokens(b"another-jwt-secret-of-32-bytes-or-more")
            .issue("alice@example.com", otp_core::unix_now(), Map::new())
            .unwrap()
            .token;
        let cases = [
            ("no token", TestRequest::get().uri(VERIFY)),
            (
                "HEAD",
                TestRequest::default()
                    .method(Method::HEAD)
                    .uri(FORWARD)
                    .insert_header(auth.clone()),
            ),
            (
                "POST",
                TestRequest::post().uri(VERIFY).insert_header(auth.clone()),
            ),
            (
                "another path",
                TestRequest::get()
                    .uri("/api/v1/token/verify/")
                    .insert_header(auth.clone()),
            ),
            (
                "a prefix",
                TestRequest::get()
                    .uri("/x/api/v1/token/verify")
                    .insert_header(auth.clone()),
            ),
            (
                "a body",
                TestRequest::get()
                    .uri(VERIFY)
                    .insert_header(auth.clone())
                    .set_payload("x"),
            ),
            (
                "chunked",
                TestRequest::get()
                    .uri(VERIFY)
                    .insert_header(auth.clone())
                    .insert_header(("Transfer-Encoding", "chunked")),
            ),
            (
                "expired",
                TestRequest::get()
                    .uri(VERIFY)
                    .insert_header(("Authorization", format!("Bearer {}", token(&state, 3600)))),
            ),
            (
                "another key",
                TestRequest::get()
                    .uri(VERIFY)
                    .insert_header(("Authorization", format!("Bearer {other}"))),
            ),
            (
                "tampered",
                TestRequest::get()
                    .uri(VERIFY)
                    .insert_header(("Authorization", format!("Bearer {t}x"))),
            ),
            (
                "basic",
                TestRequest::get()
                    .uri(VERIFY)
                    .insert_header(("Authorization", "Basic YTpi")),
            ),
        ];
        for (what, req) in cases {
            assert_eq!(answered(&lane, req), None, "{what}");
        }
        // a refused token is never remembered: the valid one still passes
        let ok = TestRequest::get().uri(VERIFY).insert_header(auth);
        assert_eq!(answered(&lane, ok), Some(200));
    }

    #[test]
    fn the_lane_takes_a_json_post_of_the_code_and_refresh_routes_and_nothing_else() {
        let (lane, _) = lane(HttpConfig::default());
        let lane = lane.lane.as_ref().expect("the lane is on");
        let post = |path: &str| {
            TestRequest::post()
                .uri(path)
                .insert_header(("Content-Type", "application/json"))
                .set_payload(r#"{"refresh_token":"x"}"#)
        };
        let taken = |req: TestRequest| lane.post_case(&req.to_request());
        assert!(matches!(taken(post(OTP_VERIFY)), Some(Post::OtpVerify)));
        assert!(matches!(taken(post(REFRESH)), Some(Post::Refresh)));
        assert!(taken(post("/api/v1/otp/verify?x=1")).is_some());
        let big = "x".repeat(crate::MAX_BODY_BYTES + 1);
        let cases = [
            ("GET", post(OTP_VERIFY).method(Method::GET)),
            ("another route", post("/api/v1/otp/request")),
            ("a trailing slash", post("/api/v1/token/refresh/")),
            (
                "a charset",
                post(REFRESH).insert_header(("Content-Type", "application/json; charset=utf-8")),
            ),
            (
                "text/plain",
                post(REFRESH).insert_header(("Content-Type", "text/plain")),
            ),
            (
                "chunked",
                post(REFRESH).insert_header(("Transfer-Encoding", "chunked")),
            ),
            (
                "Expect",
                post(REFRESH).insert_header(("Expect", "100-continue")),
            ),
            (
                "gzip",
                post(REFRESH).insert_header(("Content-Encoding", "gzip")),
            ),
            (
                "a WebSocket upgrade",
                post(REFRESH).insert_header(("Upgrade", "websocket")),
            ),
            ("too long", post(REFRESH).set_payload(big)),
            (
                "a signed length",
                post(REFRESH).insert_header(("Content-Length", "+21")),
            ),
            (
                "no content type",
                TestRequest::post().uri(REFRESH).set_payload("{}"),
            ),
        ];
        for (what, req) in cases {
            assert!(taken(req).is_none(), "{what}");
        }
    }

    #[test]
    fn the_lane_is_off_with_the_access_log_or_cors() {
        let (l, _) = lane(HttpConfig {
            access_log: true,
            ..HttpConfig::default()
        });
        assert!(l.lane.is_none());
        let (l, _) = lane(HttpConfig {
            cors_origins: vec!["https://app.example.com".into()],
            ..HttpConfig::default()
        });
        assert!(l.lane.is_none());
    }
}
