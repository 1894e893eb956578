//! Every route and every failure row of the SPEC §5 table, in-process:
//! status, body fields (`error`, `message`, `details` on 422) and headers.

use std::sync::Arc;

use crate::support::*;
use actix_web::test::TestRequest;
use otp_core::unix_now;
use otp_core::{SigningKey, TokenConfig, TokenKeys, TokenService};
use otp_http::HttpConfig;
use otp_ratelimit::LimitPolicy;
use otp_service::Limits;
use serde_json::{json, Map, Value};

const ID: &str = "alice@example.com";

// ---------------------------------------------------------------- request

#[actix_web::test]
async fn request_ok_returns_python_fields_and_rate_limit_headers() {
    let h = harness();
    let app = h.app().await;
    let before = unix_now();
    let r = send(&app, request_otp(ID)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["success"], true);
    assert_eq!(b["message"], "OTP sent successfully.");
    let ttl = b["ttl_seconds"].as_u64().unwrap();
    // rest of the 300 s window + one drift window
    assert!((300..=600).contains(&ttl), "ttl {ttl}");
    let expires_at = b["expires_at"].as_u64().unwrap();
    assert!(expires_at >= before + ttl && expires_at <= unix_now() + ttl + 1);
    assert_eq!(b["rate_limit_remaining"], 4);
    assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("4"));
    assert_eq!(r.header("x-ratelimit-window"), Some("600"));
    assert_eq!(h.outbox.count(ID), 1);
    assert_eq!(h.outbox.last_code(ID).len(), 6);
}

#[actix_web::test]
async fn request_validation_failures_are_422_with_details() {
    let h = harness();
    let app = h.app().await;
    let cases: Vec<(&str, TestRequest, &str)> = vec![
        (
            "missing identity",
            post_json("/api/v1/otp/request", json!({})),
            "identity",
        ),
        (
            "null identity",
            post_json("/api/v1/otp/request", json!({"identity": null})),
            "identity",
        ),
        ("empty identity", request_otp(""), "identity"),
        ("blank identity", request_otp("   "), "identity"),
        (
            "email with two @",
            request_otp("a@b@example.com"),
            "identity",
        ),
        ("email without domain", request_otp("alice@"), "identity"),
        ("bad phone", request_otp("+12"), "identity"),
        ("control character", request_otp("bob\u{7}"), "identity"),
        ("321 characters", request_otp(&"a".repeat(321)), "identity"),
        (
            "identity not a string",
            post_json("/api/v1/otp/request", json!({"identity": 42})),
            "identity",
        ),
        (
            "JSON array body",
            post_json("/api/v1/otp/request", json!([{"identity": ID}])),
            "body",
        ),
        (
            "non-JSON body",
            TestRequest::post()
                .uri("/api/v1/otp/request")
                .insert_header(("content-type", "application/json"))
                .set_payload("identity=alice"),
            "body",
        ),
        (
            "truncated JSON",
            TestRequest::post()
                .uri("/api/v1/otp/request")
                .insert_header(("content-type", "application/json"))
                .set_payload(r#"{"identity": "al"#),
            "body",
        ),
        (
            "empty body",
            TestRequest::post()
                .uri("/api/v1/otp/request")
                .insert_header(("content-type", "application/json")),
            "body",
        ),
    ];
    for (name, req, field) in cases {
        let r = send(&app, req).await;
        assert_eq!(r.status, 422, "{name}: {}", r.text());
        let b = r.assert_error(422, "validation_error", None);
        let loc = b["details"][0]["loc"].as_array().unwrap();
        assert_eq!(loc.last().unwrap(), field, "{name}: {b}");
        assert_eq!(loc[0], "body", "{name}: {b}");
    }
    assert_eq!(h.outbox.count(ID), 0, "nothing may be sent on a 422");
}

#[actix_web::test]
async fn unknown_fields_are_ignored() {
    let h = harness();
    let app = h.app().await;
    let r = send(
        &app,
        post_json(
            "/api/v1/otp/request",
            json!({"identity": ID, "channel": "sms", "extra": {"a": 1}}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[actix_web::test]
async fn request_body_over_16_kib_is_413() {
    let h = harness();
    let app = h.app().await;
    let big = format!(r#"{{"identity":"{ID}","pad":"{}"}}"#, "x".repeat(17 * 1024));
    let r = send(
        &app,
        TestRequest::post()
            .uri("/api/v1/otp/request")
            .insert_header(("content-type", "application/json"))
            .set_payload(big),
    )
    .await;
    r.assert_error(413, "payload_too_large", None);
    // just under the limit is fine
    let ok = format!(r#"{{"identity":"{ID}","pad":"{}"}}"#, "x".repeat(15 * 1024));
    let r = send(
        &app,
        TestRequest::post()
            .uri("/api/v1/otp/request")
            .insert_header(("content-type", "application/json"))
            .set_payload(ok),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[actix_web::test]
async fn non_json_content_types_are_415() {
    let h = harness();
    let app = h.app().await;
    for path in [
        "/api/v1/otp/request",
        "/api/v1/otp/verify",
        "/api/v1/token/introspect",
    ] {
        let r = send(
            &app,
            TestRequest::post()
                .uri(path)
                .insert_header(("content-type", "text/plain"))
                .set_payload(format!(r#"{{"identity":"{ID}"}}"#)),
        )
        .await;
        r.assert_error(415, "unsupported_media_type", None);
        let r = send(
            &app,
            TestRequest::post()
                .uri(path)
                .set_payload(format!(r#"{{"identity":"{ID}"}}"#)),
        )
        .await;
        r.assert_error(415, "unsupported_media_type", None);
    }
}

#[actix_web::test]
async fn request_over_the_identity_limit_is_429_with_retry_after() {
    let h = Setup {
        limits: Limits {
            request_per_identity: LimitPolicy::per_secs("request_identity", 2, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    for remaining in ["1", "0"] {
        let r = send(&app, request_otp(ID)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
    }
    let r = send(&app, request_otp(ID)).await;
    r.assert_error(
        429,
        "rate_limit_exceeded",
        Some("Too many OTP requests. Please wait before requesting again."),
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-window"), Some("600"));
    assert_eq!(h.outbox.count(ID), 2, "a refused request sends nothing");
}

#[actix_web::test]
async fn failing_delivery_is_502_delivery_failed() {
    let h = Setup {
        delivery: Some(Arc::new(FailingDelivery::Unreachable)),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let r = send(&app, request_otp(ID)).await;
    r.assert_error(
        502,
        "delivery_failed",
        Some("Failed to deliver OTP. Please try again."),
    );
    assert!(
        !r.text().contains("connection refused"),
        "no internals leak"
    );
}

// ---------------------------------------------------------------- verify

#[actix_web::test]
async fn verify_ok_returns_a_bearer_token_with_no_store() {
    let h = harness();
    let app = h.app().await;
    let code = obtain_code(&h, &app, "Alice@Example.com", ID).await;
    let r = send(&app, verify_otp(" ALICE@example.com ", &code)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["success"], true);
    assert_eq!(b["message"], "OTP verified successfully.");
    assert_eq!(b["token_type"], "bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["rate_limit_remaining"], 10);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
    assert_eq!(r.header("x-ratelimit-window"), Some("600"));
    let claims = hs256_tokens()
        .verify(b["access_token"].as_str().unwrap(), unix_now())
        .unwrap();
    assert_eq!(claims.sub, ID);
    assert_eq!(claims.amr, ["otp"]);
}

#[actix_web::test]
async fn wrong_replayed_and_wrong_length_codes_are_400_otp_invalid() {
    let h = harness();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for (name, otp) in [
        ("wrong", wrong_code(&code)),
        ("8 digits for a 6-digit policy", format!("{code}00")),
        ("4 digits for a 6-digit policy", code[..4].to_owned()),
    ] {
        let r = send(&app, verify_otp(ID, &otp)).await;
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        r.assert_error(400, "otp_invalid", Some("Invalid or expired OTP."));
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"), "{name}");
        assert!(r.header("x-ratelimit-remaining").is_some(), "{name}");
        assert!(r.header("retry-after").is_none(), "{name}");
    }
    let r = send(&app, verify_otp(ID, &code)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&app, verify_otp(ID, &code)).await;
    r.assert_error(400, "otp_invalid", Some("Invalid or expired OTP."));
}

#[actix_web::test]
async fn badly_shaped_codes_and_bodies_are_422() {
    let h = harness();
    let app = h.app().await;
    let cases: Vec<(&str, TestRequest, &str)> = vec![
        ("non-digit", verify_otp(ID, "12a456"), "otp"),
        ("3 digits", verify_otp(ID, "123"), "otp"),
        ("11 digits", verify_otp(ID, "12345678901"), "otp"),
        ("empty otp", verify_otp(ID, ""), "otp"),
        ("unicode digits", verify_otp(ID, "١٢٣٤٥٦"), "otp"),
        (
            "missing otp",
            post_json("/api/v1/otp/verify", json!({"identity": ID})),
            "otp",
        ),
        (
            "otp as number",
            post_json("/api/v1/otp/verify", json!({"identity": ID, "otp": 123456})),
            "otp",
        ),
        ("empty identity", verify_otp("", "123456"), "identity"),
        (
            "JSON array",
            post_json("/api/v1/otp/verify", json!([])),
            "body",
        ),
    ];
    for (name, req, field) in cases {
        let r = send(&app, req).await;
        assert_eq!(r.status, 422, "{name}: {}", r.text());
        let b = r.assert_error(422, "validation_error", None);
        let loc = b["details"][0]["loc"].as_array().unwrap();
        assert_eq!(loc.last().unwrap(), field, "{name}: {b}");
    }
    // both fields missing: both named
    let r = send(&app, post_json("/api/v1/otp/verify", json!({"x": 1}))).await;
    let b = r.assert_error(422, "validation_error", None);
    assert_eq!(b["details"].as_array().unwrap().len(), 2, "{b}");
}

#[actix_web::test]
async fn verify_over_the_limit_is_429_with_the_python_message() {
    let h = Setup {
        limits: Limits {
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 2, 600),
            ..Limits::default()
        },
        max_attempts: 0,
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..2 {
        let r = send(&app, verify_otp(ID, &wrong_code(&code))).await;
        assert_eq!(r.status, 400);
    }
    let r = send(&app, verify_otp(ID, &wrong_code(&code))).await;
    r.assert_error(
        429,
        "rate_limit_exceeded",
        Some("Too many verification attempts. Please request a new OTP."),
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry));
    assert_eq!(r.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
}

// ---------------------------------------------------------------- tokens

#[actix_web::test]
async fn introspect_reports_active_claims_or_inactive_null() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let r = send(
        &app,
        post_json("/api/v1/token/introspect", json!({ "token": token })),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = r.json();
    assert_eq!(b["active"], true);
    assert_eq!(b["claims"]["sub"], ID);
    assert_eq!(b["claims"]["iss"], "stateless-otp");
    assert_eq!(b["claims"]["aud"], "api");
    assert_eq!(b["claims"]["amr"], json!(["otp"]));
    for k in ["iat", "nbf", "exp", "jti"] {
        assert!(!b["claims"][k].is_null(), "claim {k} missing: {b}");
    }
    // (an empty token is a 422 since issue 13 item 8:
    // introspecting_an_empty_token_is_422_like_the_python_service)
    for garbage in ["garbage", " ", "a.b.c", &format!("{token}x")] {
        let r = send(
            &app,
            post_json("/api/v1/token/introspect", json!({ "token": garbage })),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"active": false, "claims": null}));
    }
}

#[actix_web::test]
async fn introspect_without_token_is_422() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, post_json("/api/v1/token/introspect", json!({}))).await;
    let b = r.assert_error(422, "validation_error", None);
    assert_eq!(b["details"][0]["loc"], json!(["body", "token"]));
    let r = send(
        &app,
        post_json("/api/v1/token/introspect", json!({"token": 1})),
    )
    .await;
    r.assert_error(422, "validation_error", None);
}

#[actix_web::test]
async fn bearer_verify_ok_sets_subject_headers_and_no_store() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let r = send(&app, bearer(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-auth-subject"), Some(ID));
    assert_eq!(r.header("remote-user"), Some(ID));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = r.json();
    assert_eq!(b["active"], true);
    assert_eq!(b["claims"]["sub"], ID);
    // the scheme is case-insensitive (RFC 7235)
    let r = send(
        &app,
        TestRequest::get()
            .uri("/api/v1/token/verify")
            .insert_header(("Authorization", format!("bearer {token}"))),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[actix_web::test]
async fn bearer_without_token_is_401_token_missing_without_error_code() {
    let h = harness();
    let app = h.app().await;
    let cases = [
        ("no header", TestRequest::get().uri("/api/v1/token/verify")),
        (
            "Basic scheme",
            TestRequest::get()
                .uri("/api/v1/token/verify")
                .insert_header(("Authorization", "Basic YWxpY2U6cHc=")),
        ),
        (
            "empty bearer",
            TestRequest::get()
                .uri("/api/v1/token/verify")
                .insert_header(("Authorization", "Bearer ")),
        ),
    ];
    for (name, req) in cases {
        let r = send(&app, req).await;
        assert_eq!(r.status, 401, "{name}");
        r.assert_error(401, "token_missing", None);
        let www = r.header("www-authenticate").unwrap();
        assert_eq!(www, r#"Bearer realm="stateless-otp""#, "{name}");
        assert!(!www.contains("error="), "RFC 6750 §3.1: {name}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
}

#[actix_web::test]
async fn bad_tokens_are_401_invalid_token() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    // tamper with the payload: flip one character of the middle segment
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut p = parts[1].clone().into_bytes();
    p[5] = if p[5] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(p).unwrap();
    let tampered = parts.join(".");
    let other_key = TokenService::new(
        TokenKeys::single(SigningKey::hs256(b"another-secret-of-at-least-32-bytes!!!").unwrap()),
        TokenConfig::default(),
    )
    .unwrap()
    .issue(ID, unix_now(), Map::new())
    .unwrap()
    .token;
    for (name, t) in [
        ("garbage", "garbage".to_owned()),
        ("tampered", tampered),
        ("wrong key", other_key),
    ] {
        let r = send(&app, bearer(&t)).await;
        assert_eq!(r.status, 401, "{name}: {}", r.text());
        r.assert_error(401, "token_invalid", None);
        let www = r.header("www-authenticate").unwrap();
        assert!(www.starts_with("Bearer"), "{name}: {www}");
        assert!(www.contains(r#"error="invalid_token""#), "{name}: {www}");
        assert!(r.header("x-auth-subject").is_none());
    }
}

#[actix_web::test]
async fn expired_token_is_401_token_expired() {
    let h = harness();
    let app = h.app().await;
    let old = hs256_tokens()
        .issue(ID, unix_now() - 10_000, Map::new())
        .unwrap()
        .token;
    let r = send(&app, bearer(&old)).await;
    r.assert_error(401, "token_expired", Some("Token has expired."));
    let www = r.header("www-authenticate").unwrap();
    assert!(www.starts_with("Bearer"), "{www}");
    assert!(www.contains(r#"error="invalid_token""#), "{www}");
    // and introspection calls it inactive
    let r = send(
        &app,
        post_json("/api/v1/token/introspect", json!({ "token": old })),
    )
    .await;
    assert_eq!(r.json(), json!({"active": false, "claims": null}));
}

// ---------------------------------------------------------------- ops

#[actix_web::test]
async fn health_body_is_exactly_the_python_one() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/health")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"status":"ok","service":"stateless-otp"}"#);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
}

#[actix_web::test]
async fn healthz_and_readyz_answer_with_the_memory_store() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/healthz")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = send(&app, TestRequest::get().uri("/readyz")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"status": "ready", "store": "memory", "store_status": "ok"})
    );
}

#[actix_web::test]
async fn probes_answer_head_for_container_health_checks() {
    let h = harness();
    let app = h.app().await;
    for path in ["/health", "/healthz", "/readyz"] {
        let r = send(
            &app,
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(path),
        )
        .await;
        assert_eq!(r.status, 200, "HEAD {path}");
    }
}

#[actix_web::test]
async fn metrics_count_requests_and_otp_outcomes() {
    let h = harness();
    let app = h.app().await;
    let scrape = || TestRequest::get().uri("/metrics");
    let before = send(&app, scrape()).await;
    assert_eq!(before.status, 200);
    assert!(
        before
            .header("content-type")
            .unwrap()
            .contains("text/plain")
            || before
                .header("content-type")
                .unwrap()
                .contains("openmetrics")
    );
    let before = before.text();
    login(&h, &app, ID).await;
    send(&app, verify_otp(ID, "000000")).await;
    let after = send(&app, scrape()).await.text();
    for name in [
        "http_requests_total",
        "otp_requested_total",
        "otp_verified_total",
    ] {
        assert!(after.contains(name), "{name} missing:\n{after}");
    }
    assert_eq!(
        metric(&after, "otp_requested_total"),
        metric(&before, "otp_requested_total") + 1.0
    );
    assert_eq!(
        metric(&after, "otp_verified_total"),
        metric(&before, "otp_verified_total") + 1.0
    );
    assert_eq!(
        metric(&after, "otp_failed_total"),
        metric(&before, "otp_failed_total") + 1.0
    );
    let ok_verify = r#"route="/api/v1/otp/verify",status="200""#;
    assert_eq!(
        metric_with(&after, "http_requests_total", ok_verify),
        metric_with(&before, "http_requests_total", ok_verify) + 1.0
    );
    let bad_verify = r#"route="/api/v1/otp/verify",status="400""#;
    assert_eq!(metric_with(&after, "http_requests_total", bad_verify), 1.0);
    assert!(after.contains("http_request_duration_seconds"), "{after}");
}

#[actix_web::test]
async fn jwks_is_empty_for_hs256_and_one_okp_key_for_eddsa() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/.well-known/jwks.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"keys": []}));

    let h = Setup {
        eddsa: true,
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/.well-known/jwks.json")).await;
    assert_eq!(r.status, 200);
    let b = r.json();
    let keys = b["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{b}");
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(keys[0]["x"].is_string());
    assert!(keys[0].get("d").is_none(), "never the private key");
    // a token issued by this server verifies offline against the JWKS
    let token = login(&h, &app, ID).await;
    let jwks: otp_core::Jwks = serde_json::from_value(b.clone()).unwrap();
    let verifier = otp_core::JwksVerifier::new(&jwks, TokenConfig::default()).unwrap();
    assert_eq!(verifier.verify(&token, unix_now()).unwrap().sub, ID);
    let header: Value =
        serde_json::from_slice(&base64_url_decode(token.split('.').next().unwrap())).unwrap();
    assert_eq!(header["kid"], keys[0]["kid"]);
    assert_eq!(header["alg"], "EdDSA");
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[actix_web::test]
async fn unknown_path_is_json_404_and_wrong_method_is_json_405() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/api/v1/nope")).await;
    r.assert_error(404, "not_found", None);
    for (method, path, allow) in [
        ("GET", "/api/v1/otp/request", "POST"),
        ("PUT", "/api/v1/otp/verify", "POST"),
        ("GET", "/api/v1/token/introspect", "POST"),
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/api/v1/token/verify", "GET"),
        ("POST", "/metrics", "GET"),
    ] {
        let r = send(
            &app,
            TestRequest::default()
                .method(method.parse().unwrap())
                .uri(path),
        )
        .await;
        r.assert_error(405, "method_not_allowed", None);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    let r = send(&app, TestRequest::get().uri("/docs/nope.js")).await;
    r.assert_error(404, "not_found", None);
}

#[actix_web::test]
async fn http_config_default_has_no_proxies_and_no_cors() {
    let c = HttpConfig::default();
    assert!(c.trusted_proxies.is_empty());
    assert!(c.cors_origins.is_empty());
    assert!(otp_http::cors(&c).is_none());
}

#[actix_web::test]
async fn json_content_types_with_parameters_or_json_suffix_are_accepted() {
    let h = harness();
    let app = h.app().await;
    for ctype in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ] {
        let r = send(
            &app,
            TestRequest::post()
                .uri("/api/v1/otp/request")
                .insert_header(("content-type", ctype))
                .set_payload(format!(r#"{{"identity":"{ID}"}}"#)),
        )
        .await;
        assert_eq!(r.status, 200, "{ctype}: {}", r.text());
    }
}

#[actix_web::test]
async fn a_non_ascii_subject_is_passed_on_as_utf8_bytes() {
    let h = harness();
    let app = h.app().await;
    let id = "José-Ünïcode";
    let code = obtain_code(&h, &app, id, id).await;
    let r = send(&app, verify_otp(id, &code)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = send(&app, bearer(&token)).await;
    assert_eq!(r.status, 200);
    for name in ["x-auth-subject", "remote-user"] {
        assert_eq!(
            r.headers.get(name).unwrap().as_bytes(),
            id.as_bytes(),
            "{name}"
        );
    }
}

#[actix_web::test]
async fn debug_output_of_the_state_holds_no_secret() {
    let h = harness();
    let dbg = format!("{:?}", h.state);
    let secret = std::str::from_utf8(JWT_SECRET).unwrap();
    assert!(!dbg.contains(secret), "{dbg}");
    assert!(!dbg.contains("90, 90, 90"), "OTP key bytes leak: {dbg}");
    assert!(!dbg.contains("5a5a5a"), "OTP key bytes leak: {dbg}");
}

#[actix_web::test]
async fn a_chunked_body_over_16_kib_is_413_on_a_real_server() {
    use std::io::{Read, Write};
    let h = harness();
    let server = h.serve();
    let addr = server.addr;
    let head = actix_web::rt::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let body = format!(r#"{{"identity":"{ID}","pad":"{}"}}"#, "x".repeat(17 * 1024));
        let req = format!(
            "POST /api/v1/otp/request HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        // The server may answer and close before reading everything.
        let _ = s.write_all(req.as_bytes());
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains(r#""error":"payload_too_large""#), "{head}");
    assert_eq!(h.outbox.count(ID), 0);
}

/// Sends `head_and_body` on a fresh connection to `addr`, then reads until
/// the server closes it (or 10 s pass). Returns what was read and how long
/// the server took to close the connection (`None`: still open).
pub(crate) async fn raw_exchange(
    addr: std::net::SocketAddr,
    head_and_body: String,
) -> (String, Option<std::time::Duration>) {
    use std::io::{Read, Write};
    actix_web::rt::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let started = std::time::Instant::now();
        s.write_all(head_and_body.as_bytes()).unwrap();
        let mut out = Vec::new();
        let closed = match s.read_to_end(&mut out) {
            Ok(_) => Some(started.elapsed()),
            // a reset after the answer is a close too
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(started.elapsed()),
            Err(_) => None,
        };
        (String::from_utf8_lossy(&out).into_owned(), closed)
    })
    .await
    .unwrap()
}

/// What a stalled body under [`quick_body_timeout`] gets: the 408 JSON
/// error with `Connection: close`, and the connection closed after the
/// 300 ms (within 3 s).
pub(crate) fn assert_cut_off_at_the_deadline(out: &str, closed: Option<std::time::Duration>) {
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains(r#""error":"request_timeout""#), "{out}");
    assert!(out.contains(r#""detail":"#), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
    let closed = closed.expect("the server must close the connection");
    assert!(
        closed >= std::time::Duration::from_millis(250)
            && closed < std::time::Duration::from_secs(3),
        "closed after {closed:?} (body timeout 300 ms)"
    );
}

pub(crate) fn quick_body_timeout() -> Harness {
    Setup {
        http: HttpConfig {
            body_timeout: std::time::Duration::from_millis(300),
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build()
}

// See: issue 13 item 5 (a client that sent headers and one byte of body was
// never cut off).
#[actix_web::test]
async fn a_slow_body_is_answered_408_and_its_connection_closed() {
    let h = quick_body_timeout();
    let server = h.serve();
    let head = "POST /api/v1/otp/request HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let (out, closed) = raw_exchange(server.addr, head.to_owned()).await;
    assert_cut_off_at_the_deadline(&out, closed);
    // chunked, stalled after the first chunk
    let head = "POST /api/v1/otp/verify HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n";
    let (out, closed) = raw_exchange(server.addr, head.to_owned()).await;
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(
        closed.is_some_and(|c| c < std::time::Duration::from_secs(3)),
        "{closed:?}"
    );
    assert_eq!(h.outbox.count(ID), 0);
}

// See: issue 13 item 5. Routes that never read a body (404, 405, probes)
// answer at once; actix would then drain a chunked body for as long as the
// client trickles it, with no timer.
#[actix_web::test]
async fn a_stalled_body_on_a_route_that_does_not_read_it_does_not_hold_the_connection() {
    let h = quick_body_timeout();
    let server = h.serve();
    for (path, status) in [
        ("/no/such/route", "404"),
        ("/health", "405"),
        ("/api/v1/token/verify", "405"),
    ] {
        for framing in [
            "Content-Length: 100\r\n\r\nx",
            "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n",
        ] {
            let req = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n{framing}");
            let (out, closed) = raw_exchange(server.addr, req).await;
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status}")),
                "{path} {framing:?}: {out}"
            );
            assert!(
                closed.is_some_and(|c| c < std::time::Duration::from_secs(3)),
                "{path} {framing:?}: still open ({closed:?})"
            );
        }
    }
}

/// POSTs each `(path, JSON body)` in turn on one connection to `addr`,
/// each body in two parts 100 ms apart, and returns the answers read.
pub(crate) async fn bodies_in_two_parts(
    addr: std::net::SocketAddr,
    requests: Vec<(&'static str, String)>,
) -> Vec<String> {
    use std::io::{Read, Write};
    actix_web::rt::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut answers = Vec::new();
        for (path, body) in requests {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            let (a, b) = body.split_at(5);
            s.write_all(a.as_bytes()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            s.write_all(b.as_bytes()).unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        answers
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_body_that_arrives_in_time_keeps_the_connection_alive() {
    let h = quick_body_timeout();
    let server = h.serve();
    // the body in two parts, well within the 300 ms
    let body = format!(r#"{{"identity":"{ID}"}}"#);
    let answers = bodies_in_two_parts(
        server.addr,
        vec![
            ("/api/v1/otp/request", body.clone()),
            ("/api/v1/otp/request", body),
        ],
    )
    .await;
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        assert!(!a.to_ascii_lowercase().contains("connection: close"), "{a}");
    }
}

// ------------------------------------------------ request ids, access log

fn is_made_request_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

// See: issue 16 (observability: `X-Request-Id` accepted or generated,
// returned on every response).
#[actix_web::test]
async fn every_response_carries_a_request_id_made_when_the_request_has_none() {
    let h = harness();
    let app = h.app().await;
    let mut seen = std::collections::BTreeSet::new();
    for req in [
        TestRequest::get().uri("/health"),
        TestRequest::get().uri("/health"),
        TestRequest::get().uri("/no/such/route"),
        TestRequest::get().uri("/api/v1/otp/request"),
        post_json("/api/v1/otp/request", json!({})),
        TestRequest::get().uri("/api/v1/token/verify"),
        TestRequest::get().uri("/metrics"),
    ] {
        let r = send(&app, req).await;
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on a {} answer", r.status))
            .to_owned();
        assert!(is_made_request_id(&id), "{id}");
        assert!(seen.insert(id), "request ids repeat");
    }
}

#[actix_web::test]
async fn a_sane_request_id_is_kept_and_anything_else_replaced() {
    let h = harness();
    let app = h.app().await;
    let with = |id: &str| {
        TestRequest::get()
            .uri("/health")
            .insert_header(("X-Request-Id", id.to_owned()))
    };
    for kept in [
        "7f1c0b6e-2f47-4a8e-9a39-3f4ad8d0c2a1",
        "0123456789abcdef0123456789abcdef",
        "Root=1-5759e988-bd862e3fe1be46a9/x_y.z:9+@~",
        &"a".repeat(128),
    ] {
        let r = send(&app, with(kept)).await;
        assert_eq!(r.header("x-request-id"), Some(kept));
    }
    for replaced in [
        "",
        "two words",
        "<script>",
        "id\"quote",
        "ümlaut",
        &"a".repeat(129),
    ] {
        let r = send(&app, with(replaced)).await;
        let id = r.header("x-request-id").unwrap();
        assert!(is_made_request_id(id), "{replaced:?} gave {id}");
    }
    // two ids: neither is picked
    let r = send(
        &app,
        TestRequest::get()
            .uri("/health")
            .append_header(("X-Request-Id", "one"))
            .append_header(("X-Request-Id", "two")),
    )
    .await;
    assert!(is_made_request_id(r.header("x-request-id").unwrap()));
}

// See: issue 16 (the request id in every log line of that request; an
// access log with method, route, status and latency, never an identity or
// a token).
#[actix_web::test]
async fn the_request_id_is_in_every_log_line_of_its_request_and_the_access_log_names_no_identity_or_token(
) {
    let h = Setup {
        delivery: Some(std::sync::Arc::new(FailingDelivery::Unreachable)),
        http: HttpConfig {
            access_log: true,
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let (_guard, logs) = otp_testkit::logs::capture_logs();
    let identity = "victim.person@example.com";
    // a failing delivery: otp-service logs a warning inside the request
    let r = send(
        &app,
        request_otp(identity).insert_header(("X-Request-Id", "req-delivery-1")),
    )
    .await;
    assert_eq!(r.status, 502);
    // a bearer token and a wrong code: neither may reach the log
    let token = hs256_tokens()
        .issue_now(identity, serde_json::Map::new())
        .unwrap()
        .token;
    let r = send(
        &app,
        bearer(&token).insert_header(("X-Request-Id", "req-bearer-2")),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &app,
        verify_otp(identity, "909090").insert_header(("X-Request-Id", "req-verify-3")),
    )
    .await;
    assert_eq!(r.status, 400);
    let text = logs.text();
    let lines: Vec<&str> = text.lines().collect();
    for id in ["req-delivery-1", "req-bearer-2", "req-verify-3"] {
        let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(id)).collect();
        assert!(
            mine.iter().any(|l| l.contains("otp_http::access")),
            "no access line for {id}:\n{text}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("OTP delivery failed")),
        "the service's warning is missing:\n{text}"
    );
    for line in &lines {
        assert!(
            line.contains("request_id=req-"),
            "a line without its request id: {line}"
        );
        assert!(!line.contains(identity), "identity in the log: {line}");
        assert!(!line.contains(&token), "token in the log: {line}");
        assert!(!line.contains("909090"), "code in the log: {line}");
    }
    let access: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("otp_http::access"))
        .collect();
    assert_eq!(access.len(), 3, "{text}");
    let delivery = access
        .iter()
        .find(|l| l.contains("req-delivery-1"))
        .unwrap();
    for field in [
        "method=\"POST\"",
        "route=\"/api/v1/otp/request\"",
        "status=502",
        "latency_ms=",
    ] {
        assert!(delivery.contains(field), "{field} missing: {delivery}");
    }
}

#[actix_web::test]
async fn the_access_log_is_off_unless_configured() {
    let h = harness();
    let app = h.app().await;
    let (_guard, logs) = otp_testkit::logs::capture_logs();
    assert_eq!(
        send(&app, TestRequest::get().uri("/health")).await.status,
        200
    );
    assert!(!logs.text().contains("otp_http::access"), "{}", logs.text());
}

// See: issue 16 (`increase() > 0` alerts missed the first event: every
// counter's label sets exist from start-up at 0; `otp_build_info`).
#[actix_web::test]
async fn http_counters_exist_at_zero_from_start_up_beside_the_build_info() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/metrics")).await;
    let text = r.text();
    for (route, status) in [
        ("/api/v1/otp/request", 200),
        ("/api/v1/otp/request", 429),
        ("/api/v1/otp/request", 502),
        ("/api/v1/otp/request", 503),
        ("/api/v1/otp/verify", 400),
        ("/api/v1/otp/verify", 429),
        ("/api/v1/token/verify", 401),
        ("/api/v1/token/introspect", 422),
        ("/readyz", 503),
        ("/health", 200),
    ] {
        let sample = format!("http_requests_total{{route=\"{route}\",status=\"{status}\"}} 0");
        assert!(text.contains(&sample), "{sample} missing:\n{text}");
    }
    assert!(
        text.contains("http_request_duration_seconds_count{route=\"/api/v1/token/verify\"} 0"),
        "{text}"
    );
    let build = format!(
        "otp_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build), "{build} missing:\n{text}");
}
