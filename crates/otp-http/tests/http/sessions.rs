//! Sessions over HTTP (SPEC §10): the verify response's refresh token,
//! `POST /api/v1/token/refresh` (rotation, the same successor within the
//! grace, 50 concurrent refreshes over a real server), `POST
//! /api/v1/logout` (bearer or body, `all`), `POST /api/v1/token/revoke`
//! (JSON and form, 200 for anything), and the 401 bodies.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::support::{bearer, harness, obtain_code, post_json, send, verify_otp};

fn refresh_req(token: &str) -> TestRequest {
    post_json("/api/v1/token/refresh", json!({ "refresh_token": token }))
}

#[actix_web::test]
async fn verify_returns_a_refresh_token_that_rotates() {
    let h = harness();
    let app = h.app().await;
    let id = "rota@example.com";
    let code = obtain_code(&h, &app, id, id).await;
    let v = send(&app, verify_otp(id, &code)).await.json();
    let t0 = v["refresh_token"].as_str().unwrap().to_owned();
    assert!(t0.starts_with("ort1_"));
    assert_eq!(v["refresh_expires_in"], 604_800);
    // The refresh token is no bearer token.
    send(&app, bearer(&t0))
        .await
        .assert_error(401, "token_invalid", None);

    let r = send(&app, refresh_req(&t0)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    for key in [
        "success",
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
    ] {
        assert!(!body[key].is_null(), "{key}: {body}");
    }
    let t1 = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap();
    let claims = send(&app, bearer(access)).await.json();
    assert!(claims["claims"]["sid"].is_string(), "{claims}");
    // Again within the grace: the same successor.
    let again = send(&app, refresh_req(&t0)).await.json();
    assert_eq!(again["refresh_token"], Value::from(t1.clone()));
    assert_eq!(send(&app, refresh_req(&t1)).await.status, 200);
    // Two behind: reuse, the session is revoked.
    send(&app, refresh_req(&t0))
        .await
        .assert_error(401, "session_revoked", None);
}

#[actix_web::test]
async fn bad_refresh_requests_get_precise_errors() {
    let h = harness();
    let app = h.app().await;
    for bad in ["garbage", "ort1_AAAA", "a.b.c"] {
        let body = send(&app, refresh_req(bad))
            .await
            .assert_error(401, "token_invalid", None);
        assert!(body["detail"].is_string(), "{body}");
    }
    let r = send(&app, post_json("/api/v1/token/refresh", json!({}))).await;
    assert_eq!(r.status, 422);
    let r = send(
        &app,
        post_json("/api/v1/token/refresh", json!({"refresh_token": ""})),
    )
    .await;
    assert_eq!(r.status, 422);
}

#[actix_web::test]
async fn logout_by_bearer_or_body_and_everywhere() {
    let h = harness();
    let app = h.app().await;
    let id = "out@example.com";
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let code = obtain_code(&h, &app, id, id).await;
        sessions.push(send(&app, verify_otp(id, &code)).await.json());
    }
    let token = |i: usize, key: &str| sessions[i][key].as_str().unwrap().to_owned();
    // Bearer, no body.
    let r = send(
        &app,
        TestRequest::post().uri("/api/v1/logout").insert_header((
            "Authorization",
            format!("Bearer {}", token(0, "access_token")),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"success": true, "all": false}));
    send(&app, refresh_req(&token(0, "refresh_token")))
        .await
        .assert_error(401, "session_revoked", None);
    assert_eq!(
        send(&app, refresh_req(&token(1, "refresh_token")))
            .await
            .status,
        200
    );
    // A refresh token in the body, everywhere.
    let r = send(
        &app,
        post_json(
            "/api/v1/logout",
            json!({"refresh_token": token(2, "refresh_token"), "all": true}),
        ),
    )
    .await;
    assert_eq!(r.json(), json!({"success": true, "all": true}));
    send(&app, refresh_req(&token(2, "refresh_token")))
        .await
        .assert_error(401, "session_revoked", None);
    // Not an object (a struct would deserialize from an array): 422.
    for body in [
        json!([]),
        json!([null, true]),
        json!("x"),
        json!({"all": "yes"}),
    ] {
        let r = send(
            &app,
            post_json("/api/v1/logout", body.clone()).insert_header((
                "Authorization",
                format!("Bearer {}", token(1, "access_token")),
            )),
        )
        .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
    }
    // Nothing to identify the session with.
    send(&app, TestRequest::post().uri("/api/v1/logout"))
        .await
        .assert_error(401, "token_missing", None);
    send(
        &app,
        post_json("/api/v1/logout", json!({"refresh_token": "junk"})),
    )
    .await
    .assert_error(401, "token_invalid", None);
}

#[actix_web::test]
async fn revoke_takes_json_or_form_and_answers_200_for_anything() {
    let h = harness();
    let app = h.app().await;
    let id = "rfc7009@example.com";
    let code = obtain_code(&h, &app, id, id).await;
    let v = send(&app, verify_otp(id, &code)).await.json();
    let t0 = v["refresh_token"].as_str().unwrap().to_owned();
    for junk in ["junk", "ort1_AAAA"] {
        let r = send(
            &app,
            post_json(
                "/api/v1/token/revoke",
                json!({"token": junk, "token_type_hint": "refresh_token"}),
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = send(
        &app,
        TestRequest::post()
            .uri("/api/v1/token/revoke")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(format!("token={t0}&token_type_hint=refresh_token")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    send(&app, refresh_req(&t0))
        .await
        .assert_error(401, "session_revoked", None);
    for body in [json!({}), json!([]), json!(["junk"])] {
        let r = send(&app, post_json("/api/v1/token/revoke", body.clone())).await;
        assert_eq!(r.status, 422, "{body}");
    }
}

#[actix_web::test]
async fn fifty_concurrent_http_refreshes_of_one_token_get_one_successor() {
    let h = harness();
    let server = h.serve();
    let client = reqwest::Client::new();
    let id = "fifty@example.com";
    let r = client
        .post(server.url("/api/v1/otp/request"))
        .json(&json!({"identity": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let code = h.outbox.last_code(id);
    let v: Value = client
        .post(server.url("/api/v1/otp/verify"))
        .json(&json!({"identity": id, "otp": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t0 = v["refresh_token"].as_str().unwrap().to_owned();
    let calls = (0..50).map(|_| {
        let client = client.clone();
        let url = server.url("/api/v1/token/refresh");
        let t0 = t0.clone();
        async move {
            let r = client
                .post(url)
                .json(&json!({"refresh_token": t0}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            body["refresh_token"].as_str().unwrap().to_owned()
        }
    });
    let successors = futures_util::future::join_all(calls).await;
    assert!(successors.iter().all(|s| *s == successors[0]));
    let r = client
        .post(server.url("/api/v1/token/refresh"))
        .json(&json!({"refresh_token": successors[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the successor keeps working");
}
