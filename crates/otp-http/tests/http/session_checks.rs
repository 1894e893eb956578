//! SPEC §10 over HTTP, the cases [`super::sessions`] leaves out (issue 14
//! checklist): an expired refresh token is 401 `token_expired` and spends
//! nothing; RFC 7009 revocation ignores `token_type_hint` (a wrong or
//! unknown hint still revokes, §2.1), answers 200 for an empty or garbage
//! form token and ends the session of an access token, and a body without
//! `token` is 422; `SESSIONS=off` removes `refresh_token`,
//! `refresh_expires_in`, `sid` and `auth_time`, and refresh answers
//! `token_invalid`; with Redis down and `RATE_LIMIT_FAIL_MODE=open` the
//! session routes still answer 503 `backend_unavailable` (fail closed) and
//! a verify signs in without a session; logout and revoke answer a body over
//! 16 KiB with the API's 413 JSON and one of another media type with 415.

use std::sync::Arc;
use std::time::Duration;

use actix_web::test::TestRequest;
use otp_core::{OtpKeyRing, OtpPolicy, SecretBytes};
use otp_http::{HttpConfig, HttpState};
use otp_ratelimit::{RedisConfig, RedisStore, Store};
use otp_service::{FailMode, OtpService, ServiceConfig};
use serde_json::{json, Value};

use crate::support::{
    bearer, hs256_tokens, obtain_code, post_json, send, verify_otp, Harness, Outbox, Setup,
};

fn refresh_req(token: &str) -> TestRequest {
    post_json("/api/v1/token/refresh", json!({ "refresh_token": token }))
}

fn revoke_form(body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/api/v1/token/revoke")
        .insert_header((
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        ))
        .set_payload(body.to_owned())
}

/// Signs `id` in over the API: the verify response.
async fn sign_in<S, B>(h: &Harness, app: &S, id: &str) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let code = obtain_code(h, app, id, id).await;
    let r = send(app, verify_otp(id, &code)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn field(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key}: {v}"))
        .to_owned()
}

#[actix_web::test]
async fn an_expired_refresh_token_is_401_token_expired_and_spends_nothing() {
    let h = Setup::default().build();
    let app = h.app().await;
    let v = sign_in(&h, &app, "expired@example.com").await;
    let t0 = field(&v, "refresh_token");
    // The same session and generation, issued 8 days ago by this server.
    let tokens = h.state.service.tokens();
    let mut old = tokens.verify_refresh_allow_expired(&t0).unwrap();
    old.iat -= 8 * 86_400;
    old.auth_time -= 8 * 86_400;
    old.exp = old.iat + 7 * 86_400;
    let expired = tokens.issue_refresh(&old).unwrap();
    let body = send(&app, refresh_req(&expired))
        .await
        .assert_error(401, "token_expired", None);
    assert!(body["detail"].is_string(), "{body}");
    // Nothing was spent: the current token rotates (a new successor, not
    // a grace answer), and the one after it too.
    let r = send(&app, refresh_req(&t0)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t1 = field(&r.json(), "refresh_token");
    assert_ne!(t1, t0);
    assert_eq!(send(&app, refresh_req(&t1)).await.status, 200);
}

#[actix_web::test]
async fn revoke_ignores_the_token_type_hint_and_answers_200_as_rfc_7009_says() {
    let h = Setup::default().build();
    let app = h.app().await;
    let id = "hint@example.com";
    // A wrong hint (RFC 7009 §2.1: the server extends its search) and an
    // unknown one both revoke the refresh token's session.
    for hint in ["access_token", "bogus_type"] {
        let v = sign_in(&h, &app, id).await;
        let t = field(&v, "refresh_token");
        let r = send(
            &app,
            revoke_form(&format!("token={t}&token_type_hint={hint}")),
        )
        .await;
        assert_eq!(r.status, 200, "{hint}: {}", r.text());
        assert!(r.body.is_empty(), "{hint}");
        send(&app, refresh_req(&t))
            .await
            .assert_error(401, "session_revoked", None);
    }
    // An access token (hinted as a refresh token) ends its session too.
    let v = sign_in(&h, &app, id).await;
    let r = send(
        &app,
        post_json(
            "/api/v1/token/revoke",
            json!({"token": field(&v, "access_token"), "token_type_hint": "refresh_token"}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    send(&app, refresh_req(&field(&v, "refresh_token")))
        .await
        .assert_error(401, "session_revoked", None);
    // …but the access token itself lives until its exp (store-free).
    assert_eq!(
        send(&app, bearer(&field(&v, "access_token"))).await.status,
        200
    );
    // Any token, even an empty or a garbage one: 200, and the live session
    // of this identity is untouched.
    let live = sign_in(&h, &app, id).await;
    for body in [
        "token=",
        "token=garbage",
        "token=ort1_AAAA&token_type_hint=x",
    ] {
        let r = send(&app, revoke_form(body)).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text());
    }
    assert_eq!(
        send(&app, refresh_req(&field(&live, "refresh_token")))
            .await
            .status,
        200
    );
    // No `token` parameter at all: 422 with the field named.
    for body in ["", "token_type_hint=refresh_token"] {
        let r = send(&app, revoke_form(body)).await;
        assert_eq!(r.status, 422, "{body:?}: {}", r.text());
        assert!(r.text().contains("token"), "{}", r.text());
    }
}

#[actix_web::test]
async fn sessions_off_removes_the_refresh_token_sid_and_auth_time() {
    let mut setup = Setup::default();
    setup.sessions.enabled = false;
    let h = setup.build();
    let app = h.app().await;
    let v = sign_in(&h, &app, "nosession@example.com").await;
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for absent in ["refresh_token", "refresh_expires_in"] {
        assert!(!keys.contains(&absent), "{absent} in {v}");
    }
    assert!(keys.contains(&"access_token"), "{v}");
    let claims = send(&app, bearer(&field(&v, "access_token"))).await.json();
    let claims = claims["claims"].as_object().unwrap();
    for absent in ["sid", "auth_time"] {
        assert!(!claims.contains_key(absent), "{absent} in {claims:?}");
    }
    assert!(claims.contains_key("sub"));
    // A refresh token from elsewhere is not accepted without sessions.
    send(&app, refresh_req("ort1_AAAA"))
        .await
        .assert_error(401, "token_invalid", None);
}

/// A harness over `store` whose service fails open (`RATE_LIMIT_FAIL_MODE=open`).
fn failing_open_on(store: Arc<dyn Store>) -> Harness {
    let keys = OtpKeyRing::new(
        SecretBytes::new(otp_testkit::keys::OTP_KEY.to_vec()),
        vec![],
    )
    .unwrap();
    let mut config = ServiceConfig::new(OtpPolicy::default(), keys);
    config.fail_mode = FailMode::Open;
    let outbox = Arc::new(Outbox::default());
    let service = OtpService::builder(config, hs256_tokens())
        .store(store)
        .delivery(outbox.clone())
        .build();
    Harness {
        state: HttpState::new(Arc::new(service), HttpConfig::default()),
        outbox,
    }
}

#[actix_web::test]
async fn session_routes_answer_503_with_redis_down_even_failing_open() {
    let Some(mut redis) = otp_testkit::started_redis_or_skip("session_routes_answer_503") else {
        return;
    };
    let mut c = RedisConfig::new(vec![redis.url()], vec![7u8; 32]);
    c.connect_timeout = Duration::from_millis(300);
    c.response_timeout = Duration::from_millis(300);
    let store = RedisStore::connect(c).await.unwrap();
    let h = failing_open_on(Arc::new(store));
    let app = h.app().await;
    let id = "outage@example.com";
    let v = sign_in(&h, &app, id).await;
    let (access, refresh) = (field(&v, "access_token"), field(&v, "refresh_token"));

    redis.stop();
    for (what, req) in [
        ("refresh", refresh_req(&refresh)),
        (
            "logout by bearer",
            TestRequest::post()
                .uri("/api/v1/logout")
                .insert_header(("Authorization", format!("Bearer {access}"))),
        ),
        (
            "logout everywhere",
            post_json(
                "/api/v1/logout",
                json!({"refresh_token": refresh, "all": true}),
            ),
        ),
        ("revoke", revoke_form(&format!("token={refresh}"))),
    ] {
        let r = send(&app, req).await;
        assert_eq!(r.status, 503, "{what}: {}", r.text());
        r.assert_error(503, "backend_unavailable", None);
    }
    // What never needs the store still answers: a garbage token at revoke
    // (nothing to look up) and the access token at forward auth.
    assert_eq!(send(&app, revoke_form("token=garbage")).await.status, 200);
    assert_eq!(send(&app, bearer(&access)).await.status, 200);
    // Failing open, a verify signs in without a session.
    let code = obtain_code(&h, &app, id, id).await;
    let w = send(&app, verify_otp(id, &code)).await;
    assert_eq!(w.status, 200, "{}", w.text());
    let w = w.json();
    assert!(w.get("refresh_token").is_none(), "{w}");
}

#[actix_web::test]
async fn logout_and_revoke_answer_oversized_or_non_json_bodies_with_the_api_errors() {
    let h = Setup::default().build();
    let app = h.app().await;
    let v = sign_in(&h, &app, "bodies@example.com").await;
    let big = format!("{{\"token\":\"{}\"}}", "a".repeat(20_000));
    let post = |path: &str, ct: &str, body: String| {
        TestRequest::post()
            .uri(path)
            .insert_header(("Content-Type", ct.to_owned()))
            .set_payload(body)
    };
    // Over 16 KiB: the API's 413 JSON, like every JSON route (not actix's
    // text/plain "payload reached size limit").
    for path in ["/api/v1/logout", "/api/v1/token/revoke"] {
        let r = send(&app, post(path, "application/json", big.clone())).await;
        r.assert_error(413, "payload_too_large", None);
    }
    let form = format!("token={}", "a".repeat(20_000));
    let r = send(
        &app,
        post(
            "/api/v1/token/revoke",
            "application/x-www-form-urlencoded",
            form,
        ),
    )
    .await;
    r.assert_error(413, "payload_too_large", None);
    // A body of another media type: 415, and nothing is revoked.
    let refresh = field(&v, "refresh_token");
    let r = send(
        &app,
        post(
            "/api/v1/logout",
            "text/plain",
            json!({ "refresh_token": refresh }).to_string(),
        ),
    )
    .await;
    r.assert_error(415, "unsupported_media_type", None);
    let r = send(
        &app,
        post(
            "/api/v1/token/revoke",
            "text/plain",
            format!("token={refresh}"),
        ),
    )
    .await;
    r.assert_error(415, "unsupported_media_type", None);
    let r = send(&app, refresh_req(&refresh)).await;
    assert_eq!(r.status, 200, "the session lives: {}", r.text());
    // A bearer logout needs no body and no content type; a JSON body with
    // `charset` is JSON.
    let r = send(
        &app,
        post(
            "/api/v1/logout",
            "application/json; charset=utf-8",
            json!({ "refresh_token": field(&r.json(), "refresh_token") }).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let w = sign_in(&h, &app, "bodies@example.com").await;
    let r = send(
        &app,
        TestRequest::post().uri("/api/v1/logout").insert_header((
            "Authorization",
            format!("Bearer {}", field(&w, "access_token")),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
