//! Sessions against canned answers (wiremock): the refresh token kept with
//! the access token, one refresh on `token_expired` then one retry, one
//! refresh in flight for any number of concurrent callers, the typed
//! `session_revoked`, logout and sign-out everywhere. The real server's
//! rotation is exercised by otp-server's `sdk_e2e` module.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otp_client::{Error, OtpClient, StoredTokens, TokenStorage, UnauthorizedReason};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn refreshed(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({
            "success": true, "access_token": access, "token_type": "bearer",
            "expires_in": 900, "refresh_token": refresh, "refresh_expires_in": 604800
        }))
        // Long enough for every concurrent caller to be waiting.
        .set_delay(Duration::from_millis(300))
}

/// `/token/refresh` of `spent` answers the pair `(access, refresh)`, and
/// must be called exactly once.
async fn mount_refresh_once(server: &MockServer, spent: &str, access: &str, refresh: &str) {
    Mock::given(method("POST"))
        .and(path("/api/v1/token/refresh"))
        .and(body_json(json!({ "refresh_token": spent })))
        .respond_with(refreshed(access, refresh))
        .expect(1)
        .mount(server)
        .await;
}

/// Runs `call` on `n` clones of `client` at once; their results in order.
async fn concurrently<T, F, Fut>(client: &OtpClient, n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(OtpClient) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(call(client.clone()))).collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// `/token/verify`: 401 `token_expired` for `expired`, 200 for `valid`.
async fn mount_verify(server: &MockServer, expired: &str, valid: &str) {
    Mock::given(method("GET"))
        .and(path("/api/v1/token/verify"))
        .and(header(
            "authorization",
            format!("Bearer {expired}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "token_expired", "message": "Token has expired."})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/token/verify"))
        .and(header("authorization", format!("Bearer {valid}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"active": true, "claims": {"sub": "a@example.com"}})),
        )
        .mount(server)
        .await;
}

fn signed_in(server: &MockServer, access: &str, refresh: &str) -> OtpClient {
    OtpClient::builder(server.uri())
        .access_token(access)
        .refresh_token(refresh)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_concurrent_callers_with_an_expired_token_make_one_refresh_request() {
    let server = MockServer::start().await;
    mount_verify(&server, "old.access.token", "new.access.token").await;
    mount_refresh_once(&server, "ort1_first", "new.access.token", "ort1_second").await;
    let client = signed_in(&server, "old.access.token", "ort1_first");
    let results = concurrently(&client, 20, |c| async move { c.verify_bearer().await }).await;
    for result in results {
        let status = result.expect("refreshed and retried");
        assert!(status.active);
    }
    assert_eq!(
        client.tokens(),
        StoredTokens {
            access_token: Some("new.access.token".into()),
            refresh_token: Some("ort1_second".into()),
        }
    );
    // The mock's expect(1) is checked when the server drops.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refresh_calls_share_one_request_and_its_answer() {
    let server = MockServer::start().await;
    mount_refresh_once(&server, "ort1_first", "new.access.token", "ort1_second").await;
    let client = signed_in(&server, "old.access.token", "ort1_first");
    let results = concurrently(&client, 10, |c| async move { c.refresh().await }).await;
    for result in results {
        let fresh = result.expect("one refresh for all");
        assert_eq!(fresh.refresh_token, "ort1_second");
        assert_eq!(fresh.access_token, "new.access.token");
    }
    assert_eq!(client.refresh_token().as_deref(), Some("ort1_second"));
}

#[tokio::test]
async fn a_second_refresh_later_spends_the_successor() {
    let server = MockServer::start().await;
    mount_refresh_once(&server, "ort1_first", "a2", "ort1_second").await;
    mount_refresh_once(&server, "ort1_second", "a3", "ort1_third").await;
    let client = signed_in(&server, "a1", "ort1_first");
    assert_eq!(client.refresh().await.unwrap().access_token, "a2");
    assert_eq!(client.refresh().await.unwrap().access_token, "a3");
    assert_eq!(client.refresh_token().as_deref(), Some("ort1_third"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_session_is_a_typed_error_for_every_waiting_caller_and_forgets_the_tokens() {
    let server = MockServer::start().await;
    mount_verify(&server, "old.access.token", "never.issued").await;
    Mock::given(path("/api/v1/token/refresh"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "session_revoked", "message": "Session revoked."}))
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = signed_in(&server, "old.access.token", "ort1_stolen");
    let results = concurrently(&client, 5, |c| async move { c.verify_bearer().await }).await;
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::SessionRevoked { message } if message == "Session revoked."),
            "{err:?}"
        );
        assert_eq!((err.code(), err.status()), ("session_revoked", Some(401)));
    }
    assert!(client.tokens().is_empty(), "the dead session is forgotten");
    let err = client.refresh().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                reason: UnauthorizedReason::Missing,
                ..
            }
        ),
        "no token, no request: {err:?}"
    );
}

#[tokio::test]
async fn an_expired_token_without_a_refresh_token_is_returned_as_is() {
    let server = MockServer::start().await;
    mount_verify(&server, "old.access.token", "unused").await;
    Mock::given(path("/api/v1/token/refresh"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .access_token("old.access.token")
        .build()
        .unwrap();
    let err = client.verify_bearer().await.unwrap_err();
    assert_eq!(err.code(), "token_expired");
}

#[tokio::test]
async fn a_client_with_only_a_refresh_token_refreshes_before_its_first_call() {
    let server = MockServer::start().await;
    mount_verify(&server, "unused", "new.access.token").await;
    mount_refresh_once(&server, "ort1_kept", "new.access.token", "ort1_next").await;
    let client = OtpClient::builder(server.uri())
        .refresh_token("ort1_kept")
        .build()
        .unwrap();
    assert!(client.verify_bearer().await.unwrap().active);
    assert_eq!(client.refresh_token().as_deref(), Some("ort1_next"));
}

/// A storage that records every pair written to it.
#[derive(Default)]
struct Recording(Mutex<Vec<StoredTokens>>);

impl TokenStorage for Recording {
    fn load(&self) -> StoredTokens {
        self.0.lock().unwrap().last().cloned().unwrap_or_default()
    }
    fn save(&self, tokens: StoredTokens) {
        self.0.lock().unwrap().push(tokens);
    }
}

#[tokio::test]
async fn verify_keeps_both_tokens_in_the_pluggable_storage_and_logout_sends_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/otp/verify"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "message": "OTP verified successfully.",
            "access_token": "h.p.s", "token_type": "bearer", "expires_in": 900,
            "rate_limit_remaining": 9, "refresh_token": "ort1_r", "refresh_expires_in": 604800
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/logout"))
        .and(body_json(json!({"refresh_token": "ort1_r", "all": false})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "all": false})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let storage = Arc::new(Recording::default());
    let client = OtpClient::builder(server.uri())
        .shared_storage(storage.clone())
        .build()
        .unwrap();
    client.verify_otp("a@example.com", "123456").await.unwrap();
    let pair = StoredTokens {
        access_token: Some("h.p.s".into()),
        refresh_token: Some("ort1_r".into()),
    };
    assert_eq!(storage.load(), pair);
    let writes = storage.0.lock().unwrap().clone();
    assert_eq!(
        writes,
        vec![pair],
        "both tokens written together, in one save"
    );
    client.logout().await.unwrap();
    assert!(storage.load().is_empty());
    assert!(!format!("{:?}", storage.0.lock().unwrap()).contains("ort1_r"));
    // Nothing stored: a no-op without a request (the mock expects one).
    client.logout().await.unwrap();
}

#[tokio::test]
async fn logout_everywhere_with_only_an_access_token_sends_it_as_the_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/logout"))
        .and(header("authorization", "Bearer h.p.s"))
        .and(body_json(json!({"all": true})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "all": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = OtpClient::builder(server.uri())
        .access_token("h.p.s")
        .build()
        .unwrap();
    client.logout_everywhere().await.unwrap();
    assert!(client.tokens().is_empty());
    let err = client.logout_everywhere().await.unwrap_err();
    assert_eq!(err.code(), "token_missing", "nothing names the identity");
}

#[tokio::test]
async fn a_logout_the_server_cannot_confirm_still_signs_the_client_out() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/logout"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": "backend_unavailable", "message": "Service temporarily unavailable."}),
        ))
        .mount(&server)
        .await;
    let client = signed_in(&server, "h.p.s", "ort1_r");
    let err = client.logout().await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(client.tokens().is_empty());
}
