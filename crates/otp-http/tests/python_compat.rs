//! The Python service's 12 API tests, reproduced over HTTP against this
//! implementation (same paths, bodies, status codes and fields, SPEC §5):
//! health; request valid / missing identity / empty identity; verify valid /
//! invalid / non-numeric / short; introspect valid / garbage; bearer valid /
//! missing.

mod support;

use actix_web::test::TestRequest;
use serde_json::json;
use support::*;

const ID: &str = "test@example.com";

#[actix_web::test]
async fn test_health() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/health")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"status": "ok", "service": "stateless-otp"})
    );
}

#[actix_web::test]
async fn test_request_otp_valid() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, request_otp(ID)).await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["success"], true);
    assert_eq!(b["message"], "OTP sent successfully.");
    assert!(b["ttl_seconds"].as_u64().unwrap() > 0);
    assert!(b["rate_limit_remaining"].is_u64());
}

#[actix_web::test]
async fn test_request_otp_missing_identity() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, post_json("/api/v1/otp/request", json!({}))).await;
    assert_eq!(r.status, 422);
}

#[actix_web::test]
async fn test_request_otp_empty_identity() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, request_otp("")).await;
    assert_eq!(r.status, 422);
}

#[actix_web::test]
async fn test_verify_otp_valid() {
    let h = harness();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    let r = send(&app, verify_otp(ID, &code)).await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["success"], true);
    assert_eq!(b["message"], "OTP verified successfully.");
    assert!(!b["access_token"].as_str().unwrap().is_empty());
    assert_eq!(b["token_type"], "bearer");
    assert!(b["expires_in"].as_u64().unwrap() > 0);
}

#[actix_web::test]
async fn test_verify_otp_invalid() {
    let h = harness();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    let r = send(&app, verify_otp(ID, &wrong_code(&code))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Invalid or expired OTP.");
}

#[actix_web::test]
async fn test_verify_otp_non_numeric() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, verify_otp(ID, "abcdef")).await;
    assert_eq!(r.status, 422);
}

#[actix_web::test]
async fn test_verify_otp_short() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, verify_otp(ID, "123")).await;
    assert_eq!(r.status, 422);
}

#[actix_web::test]
async fn test_introspect_valid() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let r = send(
        &app,
        post_json("/api/v1/token/introspect", json!({ "token": token })),
    )
    .await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["active"], true);
    assert_eq!(b["claims"]["sub"], ID);
}

#[actix_web::test]
async fn test_introspect_garbage() {
    let h = harness();
    let app = h.app().await;
    let r = send(
        &app,
        post_json(
            "/api/v1/token/introspect",
            json!({"token": "not.a.valid.token"}),
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["active"], false);
    assert!(b["claims"].is_null());
}

#[actix_web::test]
async fn test_bearer_verify_valid() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let r = send(&app, bearer(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-auth-subject"), Some(ID));
    assert_eq!(r.json()["active"], true);
}

#[actix_web::test]
async fn test_bearer_verify_missing() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/api/v1/token/verify")).await;
    assert_eq!(r.status, 401);
}
