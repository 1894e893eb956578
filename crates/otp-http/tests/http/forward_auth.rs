//! Forward auth (`GET /api/v1/token/verify`, SPEC §5, §11): the token a
//! request presents is its `Authorization: Bearer` token, else its
//! `otp_session` cookie (`routes::presented_token`, the one place that
//! decides); the answer is the same whichever carried it.

use crate::support::*;
use actix_web::test::TestRequest;
use otp_core::unix_now;
use serde_json::{Map, Value};

const ID: &str = "alice@example.com";
const OTHER: &str = "bob@example.com";

fn verify() -> TestRequest {
    TestRequest::get().uri("/api/v1/token/verify")
}

fn with_cookie(cookie: &str) -> TestRequest {
    verify().insert_header(("Cookie", cookie.to_owned()))
}

#[actix_web::test]
async fn session_cookie_is_accepted_without_an_authorization_header() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let by_bearer = send(&app, bearer(&token)).await;
    let r = send(&app, with_cookie(&format!("otp_session={token}"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-auth-subject"), Some(ID));
    assert_eq!(r.header("remote-user"), Some(ID));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json(), by_bearer.json(), "same answer as the bearer path");
    // among other cookies, in any position, quoted (RFC 6265 §4.1.1), and
    // spread over several Cookie headers (as HTTP/2 may send them)
    for cookie in [
        format!("theme=dark; otp_session={token}; lang=en"),
        format!("otp_session=\"{token}\""),
        format!("a=1;otp_session={token}"),
    ] {
        let r = send(&app, with_cookie(&cookie)).await;
        assert_eq!(r.status, 200, "{cookie}: {}", r.text());
    }
    let r = send(
        &app,
        verify()
            .append_header(("Cookie", "theme=dark"))
            .append_header(("Cookie", format!("otp_session={token}"))),
    )
    .await;
    assert_eq!(r.status, 200, "second Cookie header: {}", r.text());
}

#[actix_web::test]
async fn bearer_token_wins_over_the_session_cookie() {
    let h = harness();
    let app = h.app().await;
    let alice = login(&h, &app, ID).await;
    let bob = login(&h, &app, OTHER).await;
    let r = send(
        &app,
        bearer(&alice).insert_header(("Cookie", format!("otp_session={bob}"))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-auth-subject"), Some(ID));
    // a bad bearer token is not rescued by a good cookie
    let r = send(
        &app,
        bearer("garbage").insert_header(("Cookie", format!("otp_session={bob}"))),
    )
    .await;
    r.assert_error(401, "token_invalid", None);
    assert!(r.header("x-auth-subject").is_none());
    // a non-bearer Authorization header (the app's own Basic credentials)
    // does not hide the cookie
    let r = send(
        &app,
        verify()
            .insert_header(("Authorization", "Basic YWxpY2U6cHc="))
            .insert_header(("Cookie", format!("otp_session={bob}"))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-auth-subject"), Some(OTHER));
}

#[actix_web::test]
async fn other_cookies_are_ignored() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    // the refresh cookie, look-alike names and a token under another name
    // are no session cookie
    for cookie in [
        format!("otp_refresh={token}"),
        format!("otp_session_old={token}"),
        format!("xotp_session={token}"),
        format!("session={token}"),
        format!("OTP_SESSION={token}"),
    ] {
        let r = send(&app, with_cookie(&cookie)).await;
        r.assert_error(401, "token_missing", None);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="stateless-otp""#),
            "{cookie}"
        );
    }
}

#[actix_web::test]
async fn malformed_cookie_header_is_token_missing() {
    let h = harness();
    let app = h.app().await;
    for cookie in [
        "",
        ";;;",
        "otp_session",
        "otp_session=",
        "otp_session=\"\"",
        "otp_session= ; theme=dark",
        "=otp_session",
    ] {
        let r = send(&app, with_cookie(cookie)).await;
        r.assert_error(401, "token_missing", None);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{cookie:?}");
    }
    // a header with bytes outside visible ASCII is skipped whole
    let r = send(
        &app,
        verify().insert_header((
            "Cookie",
            actix_web::http::header::HeaderValue::from_bytes(b"otp_session=abc\xff").unwrap(),
        )),
    )
    .await;
    r.assert_error(401, "token_missing", None);
}

#[actix_web::test]
async fn bad_or_expired_session_cookie_is_401_like_a_bearer_token() {
    let h = harness();
    let app = h.app().await;
    let old = hs256_tokens()
        .issue(ID, unix_now() - 10_000, Map::new())
        .unwrap()
        .token;
    let r = send(&app, with_cookie(&format!("otp_session={old}"))).await;
    r.assert_error(401, "token_expired", Some("Token has expired."));
    let r = send(&app, with_cookie("otp_session=garbage")).await;
    let body: Value = r.assert_error(401, "token_invalid", None);
    assert!(body["message"].as_str().unwrap().contains("invalid"));
    assert!(r.header("x-auth-subject").is_none());
}

#[actix_web::test]
async fn openapi_documents_the_session_cookie_scheme_on_token_verify() {
    let h = harness();
    let app = h.app().await;
    let doc = send(&app, TestRequest::get().uri("/openapi.json"))
        .await
        .json();
    let scheme = &doc["components"]["securitySchemes"]["cookie"];
    assert_eq!(scheme["type"], "apiKey", "{scheme}");
    assert_eq!(scheme["in"], "cookie");
    assert_eq!(scheme["name"], "otp_session");
    let security = &doc["paths"]["/api/v1/token/verify"]["get"]["security"];
    assert_eq!(
        *security,
        serde_json::json!([{"bearer": []}, {"cookie": []}]),
        "either one suffices"
    );
}

#[actix_web::test]
async fn the_answer_is_the_claims_as_serializing_them_gives() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let verify = send(&app, bearer(&token)).await;
    assert_eq!(
        verify.header("content-type"),
        Some("application/json"),
        "{:?}",
        verify.headers
    );
    // byte for byte what the route answered before it echoed the payload:
    // `{"active":true,"claims":<serialized Claims>}`
    let claims = hs256_tokens().verify(&token, unix_now()).unwrap();
    assert_eq!(
        verify.text(),
        format!(
            r#"{{"active":true,"claims":{}}}"#,
            serde_json::to_string(&claims).unwrap()
        )
    );
    // and the same claims introspection reports
    let introspect = send(
        &app,
        post_json(
            "/api/v1/token/introspect",
            serde_json::json!({ "token": token }),
        ),
    )
    .await;
    assert_eq!(verify.json(), introspect.json());
}

#[actix_web::test]
async fn a_token_signed_elsewhere_is_answered_with_its_payload_as_signed() {
    let h = harness();
    let app = h.app().await;
    // as PyJWT would write it: its own member order and spacing, and a
    // fractional exp
    let exp = unix_now() + 600;
    let payload = format!(
        r#"{{"exp": {exp}.5, "sub": "{ID}", "iss": "stateless-otp", "aud": "api", "role": "admin"}}"#
    );
    let key = otp_core::SigningKey::hs256(JWT_SECRET).unwrap();
    let token = otp_core::dangerous::encode_raw(
        &key,
        br#"{"alg":"HS256","typ":"JWT"}"#,
        payload.as_bytes(),
    );
    let r = send(&app, bearer(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!(r#"{{"active":true,"claims":{payload}}}"#));
    assert_eq!(r.header("x-auth-subject"), Some(ID));
    assert_eq!(r.json()["claims"]["role"], "admin");
}

#[actix_web::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let h = harness();
    let app = h.app().await;
    // exp two seconds ahead (TOKEN_LEEWAY_SECONDS is 0)
    let tokens = hs256_tokens();
    let ttl = tokens.config().ttl_seconds;
    let now = unix_now();
    let issued = tokens.issue(ID, now + 2 - ttl, Map::new()).unwrap();
    assert_eq!(issued.claims.exp, now + 2);
    let t = issued.token;
    // verified, then answered again (from the cache) by both forward-auth
    // ways of presenting it
    for _ in 0..3 {
        assert_eq!(send(&app, bearer(&t)).await.status, 200);
        assert_eq!(
            send(&app, with_cookie(&format!("otp_session={t}")))
                .await
                .status,
            200
        );
    }
    while unix_now() < now + 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = send(&app, bearer(&t)).await;
    r.assert_error(401, "token_expired", Some("Token has expired."));
    let r = send(&app, with_cookie(&format!("otp_session={t}"))).await;
    r.assert_error(401, "token_expired", Some("Token has expired."));
}

#[actix_web::test]
async fn a_remembered_token_answers_exactly_as_the_first_time() {
    let h = harness();
    let app = h.app().await;
    let alice = login(&h, &app, ID).await;
    let bob = login(&h, &app, OTHER).await;
    let first = send(&app, bearer(&alice)).await;
    for _ in 0..3 {
        let again = send(&app, bearer(&alice)).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.text(), first.text());
        for name in [
            "x-auth-subject",
            "remote-user",
            "cache-control",
            "content-type",
        ] {
            assert_eq!(again.header(name), first.header(name), "{name}");
        }
        // another token is never answered with alice's entry
        let b = send(&app, bearer(&bob)).await;
        assert_eq!(b.header("x-auth-subject"), Some(OTHER));
        // nor is a token that differs in its signature
        let mut forged = alice.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        send(&app, bearer(&forged))
            .await
            .assert_error(401, "token_invalid", None);
    }
}
