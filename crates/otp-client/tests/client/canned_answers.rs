//! otp-client against canned HTTP answers (wiremock): request shapes, error
//! mapping from real status/header/body combinations, the bounded retry, and
//! the JWKS cache of the offline verifier. The same SDK against the REAL
//! server is tested in `crates/otp-server/tests/server/sdk_e2e.rs`.

use std::time::{Duration, Instant};

use otp_client::token::TokenConfig;
use otp_client::{ClientRetryPolicy, Error, OtpClient, UnauthorizedReason};
use otp_core::{generate_ed25519_pkcs8, SigningKey, TokenKeys, TokenService};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn err_body(code: &str, message: &str) -> serde_json::Value {
    json!({"error": code, "message": message})
}

#[tokio::test]
async fn verify_otp_sends_the_documented_body_and_keeps_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/otp/verify"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"identity": "a@example.com", "otp": "123456"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "message": "OTP verified successfully.",
            "access_token": "h.p.s", "token_type": "bearer", "expires_in": 900,
            "rate_limit_remaining": 9
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/token/verify"))
        .and(header("authorization", "Bearer h.p.s"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"active": true, "claims": {"sub": "a@example.com"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = OtpClient::new(server.uri()).unwrap();
    let err = client.verify_bearer().await.unwrap_err();
    assert!(matches!(
        err,
        Error::Unauthorized {
            reason: UnauthorizedReason::Missing,
            ..
        }
    ));
    let err = client.verify_bearer_token(" ").await.unwrap_err();
    assert_eq!(err.code(), "token_missing");
    assert_eq!(err.status(), None, "no request was sent");
    let verified = client.verify_otp("a@example.com", "123456").await.unwrap();
    assert_eq!(verified.expires_in, 900);
    assert_eq!(client.access_token().as_deref(), Some("h.p.s"));
    let me = client.verify_bearer().await.unwrap();
    assert_eq!(me.claims.unwrap()["sub"], "a@example.com");
}

#[tokio::test]
async fn a_failed_verify_keeps_the_previous_token() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/otp/verify"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(err_body("otp_invalid", "Invalid or expired OTP.")),
        )
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .access_token("old.token.here")
        .build()
        .unwrap();
    let err = client
        .verify_otp("a@example.com", "000000")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOtp { .. }), "{err:?}");
    assert_eq!(err.status(), Some(400));
    assert_eq!(client.access_token().as_deref(), Some("old.token.here"));
}

#[tokio::test]
async fn a_429_carries_retry_after_and_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/otp/request"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "37")
                .set_body_json(err_body("rate_limit_exceeded", "Too many OTP requests.")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .retry(ClientRetryPolicy::default())
        .build()
        .unwrap();
    let err = client.request_otp("a@example.com").await.unwrap_err();
    match err {
        Error::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(37)))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_503_is_retried_up_to_the_bound_honouring_retry_after() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/otp/request"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "1")
                .set_body_json(err_body("backend_unavailable", "store down")),
        )
        .expect(3)
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .retry(ClientRetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(300),
        })
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.request_otp("a@example.com").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    // Two waits of Retry-After (1 s) capped at max_delay (300 ms).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_503_then_success_returns_the_success() {
    let server = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/health"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "ok", "service": "stateless-otp"})),
        )
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .retry(ClientRetryPolicy {
            base_delay: Duration::from_millis(1),
            ..ClientRetryPolicy::default()
        })
        .build()
        .unwrap();
    assert_eq!(client.health().await.unwrap().status, "ok");
    // Without retry the first 503 is the answer.
    let server2 = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server2)
        .await;
    let err = OtpClient::new(server2.uri())
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unavailable {
            retry_after: None,
            ..
        }
    ));
}

#[tokio::test]
async fn refused_connections_are_transport_errors_after_bounded_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = OtpClient::builder(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(2))
        .retry(ClientRetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        })
        .build()
        .unwrap();
    let err = client.request_otp("a@example.com").await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(err.code(), "network_error");
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn a_timeout_is_a_transport_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.health().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.code(), "timeout");
}

#[tokio::test]
async fn a_success_with_a_foreign_body_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/token/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
        .mount(&server)
        .await;
    let err = OtpClient::new(server.uri())
        .unwrap()
        .introspect_token("x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
}

#[tokio::test]
async fn the_user_agent_is_sent() {
    let server = MockServer::start().await;
    Mock::given(path("/health"))
        .and(header("user-agent", "my-app/1.0"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "ok", "service": "stateless-otp"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .user_agent("my-app/1.0")
        .build()
        .unwrap();
    client.health().await.unwrap();
}

fn eddsa_service() -> TokenService {
    let der = generate_ed25519_pkcs8().unwrap();
    let key = SigningKey::ed25519_from_pkcs8(der.expose()).unwrap();
    TokenService::new(TokenKeys::single(key), TokenConfig::default()).unwrap()
}

async fn serve_jwks(server: &MockServer, service: &TokenService) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(service.jwks()))
        .mount(server)
        .await;
}

async fn jwks_requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn offline_verification_fetches_once_and_refetches_on_a_new_kid() {
    let server = MockServer::start().await;
    let first = eddsa_service();
    serve_jwks(&server, &first).await;
    let client = OtpClient::new(server.uri()).unwrap();
    let verifier = otp_client::OfflineVerifier::with_intervals(
        client,
        TokenConfig::default(),
        Duration::from_millis(300),
        Duration::from_secs(3600),
    );
    for _ in 0..5 {
        let t = first
            .issue_now("a@example.com", Default::default())
            .unwrap();
        assert_eq!(
            verifier.verify(&t.token).await.unwrap().sub,
            "a@example.com"
        );
    }
    assert_eq!(jwks_requests(&server).await, 1, "keys are cached");
    let expired = first
        .issue("a@example.com", 1_800_000_000, Default::default())
        .unwrap();
    let err = verifier
        .verify_at(&expired.token, 1_800_000_000 + 901)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Token(e) if e.is_expired()), "{err:?}");
    assert_eq!(err.code(), "token_expired");

    // The server rotates its key: the first token with the new kid refetches.
    let second = eddsa_service();
    serve_jwks(&server, &second).await; // resets the request log
    tokio::time::sleep(Duration::from_millis(350)).await;
    let t = second
        .issue_now("b@example.com", Default::default())
        .unwrap();
    assert_eq!(
        verifier.verify(&t.token).await.unwrap().sub,
        "b@example.com"
    );
    assert_eq!(verifier.fetch_count(), 2);

    // Made-up kids refetch at most once per interval: none right after the
    // rotation's fetch, then one for ten tokens.
    let stranger = eddsa_service();
    let t = stranger
        .issue_now("c@example.com", Default::default())
        .unwrap();
    let err = verifier.verify(&t.token).await.unwrap_err();
    assert!(
        matches!(err, Error::Token(ref e) if e.check() == "unknown_kid"),
        "{err:?}"
    );
    assert_eq!(
        jwks_requests(&server).await,
        1,
        "too soon after the last fetch"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..10 {
        let err = verifier.verify(&t.token).await.unwrap_err();
        assert!(matches!(err, Error::Token(_)), "{err:?}");
    }
    assert_eq!(
        jwks_requests(&server).await,
        2,
        "one fetch for ten unknown-kid tokens"
    );
}

#[tokio::test]
async fn offline_verification_rejects_forgeries_and_hs256_servers() {
    let server = MockServer::start().await;
    let service = eddsa_service();
    serve_jwks(&server, &service).await;
    let verifier = OtpClient::new(server.uri())
        .unwrap()
        .offline_verifier(TokenConfig::default());
    let t = service
        .issue_now("a@example.com", Default::default())
        .unwrap();
    let mut forged = t.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(Error::Token(_))
    ));
    assert!(matches!(
        verifier.verify("garbage").await,
        Err(Error::Token(_))
    ));
    let other_aud = otp_client::OfflineVerifier::new(
        OtpClient::new(server.uri()).unwrap(),
        TokenConfig {
            audience: "billing".into(),
            ..TokenConfig::default()
        },
    );
    assert!(matches!(
        other_aud.verify(&t.token).await,
        Err(Error::Token(_))
    ));

    // An HS256 server publishes no keys: offline verification is impossible.
    let hs = MockServer::start().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": []})))
        .mount(&hs)
        .await;
    let verifier = OtpClient::new(hs.uri())
        .unwrap()
        .offline_verifier(TokenConfig::default());
    let err = verifier.verify(&t.token).await.unwrap_err();
    assert!(matches!(err, Error::Jwks(_)), "{err:?}");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_cached_keys() {
    let server = MockServer::start().await;
    let service = eddsa_service();
    serve_jwks(&server, &service).await;
    let verifier = otp_client::OfflineVerifier::with_intervals(
        OtpClient::new(server.uri()).unwrap(),
        TokenConfig::default(),
        Duration::ZERO,
        Duration::from_millis(100),
    );
    let t = service
        .issue_now("a@example.com", Default::default())
        .unwrap();
    verifier.verify(&t.token).await.unwrap();
    server.reset().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        verifier.verify(&t.token).await.unwrap().sub,
        "a@example.com"
    );
    assert!(jwks_requests(&server).await >= 1, "a refresh was tried");
}

// See: issue 13 item 9. While no keys are cached, a failing JWKS endpoint
// is asked at most once per `min_refetch_interval`, not once per token.
#[tokio::test]
async fn offline_verifier_without_keys_refetches_at_most_once_per_interval() {
    let server = MockServer::start().await;
    Mock::given(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let service = eddsa_service();
    let t = service
        .issue_now("a@example.com", Default::default())
        .unwrap();
    let verifier = otp_client::OfflineVerifier::with_intervals(
        OtpClient::new(server.uri()).unwrap(),
        TokenConfig::default(),
        Duration::from_millis(400),
        Duration::from_secs(3600),
    );
    let first = verifier.verify(&t.token).await.unwrap_err();
    assert!(matches!(first, Error::Unavailable { .. }), "{first:?}");
    for _ in 0..50 {
        let err = verifier.verify(&t.token).await.unwrap_err();
        match err {
            Error::JwksUnavailable {
                retry_after,
                ref cause,
            } => {
                assert!(retry_after <= Duration::from_millis(400), "{err}");
                assert!(cause.contains("unavailable"), "{err}");
            }
            other => panic!("expected JwksUnavailable, got {other:?}"),
        }
    }
    assert_eq!(jwks_requests(&server).await, 1, "one fetch per interval");

    // After the interval one more fetch is made; once it succeeds the keys
    // are used without further requests.
    tokio::time::sleep(Duration::from_millis(450)).await;
    serve_jwks(&server, &service).await;
    assert_eq!(
        verifier.verify(&t.token).await.unwrap().sub,
        "a@example.com"
    );
    for _ in 0..20 {
        verifier.verify(&t.token).await.unwrap();
    }
    assert_eq!(jwks_requests(&server).await, 1);
    assert_eq!(verifier.fetch_count(), 1);
}

// See: issue 13 item 8. The Python service's SDKs were documented with
// `http://host:8000/api/v1`; that base URL (with or without a trailing
// slash) reaches the same routes as the bare server root.
#[tokio::test]
async fn base_url_with_or_without_api_v1_reaches_the_same_routes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/otp/request"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "message": "OTP sent successfully.", "ttl_seconds": 300,
            "expires_at": 1_800_000_300u64, "rate_limit_remaining": 4
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "ok", "service": "stateless-otp"
        })))
        .mount(&server)
        .await;
    let root = server.uri();
    for base in [
        root.clone(),
        format!("{root}/"),
        format!("{root}/api/v1"),
        format!("{root}/api/v1/"),
        format!("{root}/api/v1//"),
    ] {
        let client = OtpClient::new(base.clone()).unwrap();
        assert_eq!(client.base_url(), root, "{base}");
        let sent = client.request_otp("a@example.com").await.unwrap();
        assert_eq!(sent.ttl_seconds, 300, "{base}");
        client.health().await.unwrap();
    }
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(paths.len(), 10);
    assert!(
        paths
            .iter()
            .all(|p| p == "/api/v1/otp/request" || p == "/health"),
        "{paths:?}"
    );
    // A path prefix in front of /api/v1 is kept.
    let prefixed = OtpClient::new(format!("{root}/auth/api/v1")).unwrap();
    assert_eq!(prefixed.base_url(), format!("{root}/auth"));
}

// See: issue 13 item 9.
#[test]
fn builder_and_client_debug_print_no_token() {
    let token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLXNlY3JldA";
    let builder = OtpClient::builder("http://127.0.0.1:1").access_token(token);
    let printed = format!("{builder:?}");
    assert!(
        !printed.contains(token) && printed.contains("[REDACTED]"),
        "{printed}"
    );
    let client = builder.build().unwrap();
    let printed = format!("{client:?}");
    assert!(
        !printed.contains(token) && printed.contains("[REDACTED]"),
        "{printed}"
    );
}
