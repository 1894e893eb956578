//! Sessions (SPEC §10): a verify returns a refresh token and a session
//! access token; refresh rotates, the previous token within the grace gets
//! the same successor (50 concurrent refreshes: identical bytes), reuse
//! after the grace revokes the session (seen by a second replica on the
//! same Redis), idle and absolute lifetimes, logout, sign out everywhere,
//! RFC 7009 revocation, and failing closed when the store is down.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{
    config, config_with_fail_mode, memory_service, mid_window_now, redis_store, redis_store_fast,
    service_with, Outbox,
};
use otp_core::unix_now;
use otp_ratelimit::Store;
use otp_service::{
    FailMode, LogoutScope, OtpService, RequestContext, ServiceConfig, ServiceError, VerifyOptions,
    VerifyOutcome,
};
use otp_testkit as testkit;

/// Requests a code for `id`, verifies it, and returns the outcome (with
/// its refresh token when sessions are on).
pub(crate) async fn sign_in(service: &OtpService, outbox: &Outbox, id: &str) -> VerifyOutcome {
    let ctx = RequestContext::default();
    let now = unix_now();
    service.request_otp_at(id, &ctx, now).await.unwrap();
    let code = outbox.last_code(id);
    service
        .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap()
}

fn refresh_of(v: &VerifyOutcome) -> String {
    v.refresh.as_ref().expect("a refresh token").token.clone()
}

#[tokio::test]
async fn verify_returns_a_refresh_token_and_a_session_access_token() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let v = sign_in(&service, &outbox, "sam@example.com").await;
    let refresh = v.refresh.clone().unwrap();
    assert_eq!(refresh.expires_in, 7 * 86_400);
    assert!(refresh.token.starts_with("ort1_"));
    assert!(
        !format!("{refresh:?}").contains(&refresh.token),
        "Debug redacts"
    );
    let claims = service.verify_token(&v.token.token).unwrap();
    assert_eq!(
        claims.sid.as_deref(),
        Some(refresh.sid.to_string().as_str())
    );
    assert!(claims.auth_time.is_some());
    let rc = service
        .tokens()
        .verify_refresh_allow_expired(&refresh.token)
        .unwrap();
    assert_eq!(rc.sub, "sam@example.com");
    assert_eq!(rc.sid, refresh.sid);
    assert_eq!(rc.generation, 0);
    assert_eq!(Some(rc.auth_time), claims.auth_time);
    // The refresh token is no access token.
    assert!(service.verify_token(&refresh.token).is_err());
    assert!(!service.introspect(&refresh.token).active);

    // SESSIONS=off: no refresh token, no sid.
    let mut off = config();
    off.sessions.enabled = false;
    let outbox = Outbox::new();
    let service = memory_service(off, outbox.clone());
    let v = sign_in(&service, &outbox, "sam@example.com").await;
    assert!(v.refresh.is_none());
    let claims = service.verify_token(&v.token.token).unwrap();
    assert!(claims.sid.is_none() && claims.auth_time.is_none());
}

async fn rotation_and_grace(a: &OtpService, b: &OtpService, outbox: &Outbox) {
    let v = sign_in(a, outbox, "rita@example.com").await;
    let t0 = refresh_of(&v);
    let r1 = a.refresh(&t0).await.unwrap();
    let t1 = r1.refresh.token.clone();
    assert_ne!(t1, t0);
    let claims = a.verify_token(&r1.token.token).unwrap();
    assert_eq!(
        claims.sid.as_deref(),
        Some(r1.refresh.sid.to_string().as_str())
    );
    assert_eq!(
        claims.auth_time,
        a.verify_token(&v.token.token).unwrap().auth_time
    );
    // The same old token again, within the grace, on the other replica:
    // byte-identical successor.
    let again = b.refresh(&t0).await.unwrap();
    assert_eq!(again.refresh.token, t1);
    let r2 = b.refresh(&t1).await.unwrap();
    assert_ne!(r2.refresh.token, t1);
    assert!(a.refresh(&r2.refresh.token).await.is_ok());
}

#[tokio::test]
async fn refresh_rotates_and_the_previous_token_in_grace_gets_the_same_successor() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    rotation_and_grace(&service, &service, &outbox).await;
    let Some(target) = testkit::redis_or_skip("refresh_rotates_on_redis") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(redis_store(vec![target.url()]).await);
    let outbox = Outbox::new();
    let a = service_with(config(), store.clone(), outbox.clone());
    let b = service_with(config(), store, outbox.clone());
    rotation_and_grace(&a, &b, &outbox).await;
}

async fn fifty_concurrent_refreshes(a: Arc<OtpService>, b: Arc<OtpService>, outbox: &Outbox) {
    let v = sign_in(&a, outbox, "conc@example.com").await;
    let t0 = refresh_of(&v);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let t0 = t0.clone();
        tasks.push(tokio::spawn(async move { s.refresh(&t0).await }));
    }
    let mut successors = Vec::new();
    for t in tasks {
        successors.push(
            t.await
                .unwrap()
                .expect("every refresh succeeds")
                .refresh
                .token,
        );
    }
    assert!(
        successors.iter().all(|s| *s == successors[0]),
        "byte-identical successors"
    );
    let next = a
        .refresh(&successors[0])
        .await
        .expect("the successor works");
    assert!(b.refresh(&next.refresh.token).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshes_of_one_token_get_one_successor() {
    let outbox = Outbox::new();
    let service = Arc::new(memory_service(config(), outbox.clone()));
    fifty_concurrent_refreshes(service.clone(), service, &outbox).await;
    if let Some(target) = testkit::redis_or_skip("fifty_concurrent_refreshes_redis") {
        let store: Arc<dyn Store> = Arc::new(redis_store(vec![target.url()]).await);
        let outbox = Outbox::new();
        let a = Arc::new(service_with(config(), store.clone(), outbox.clone()));
        let b = Arc::new(service_with(config(), store, outbox.clone()));
        fifty_concurrent_refreshes(a, b, &outbox).await;
    }
    if let Some(cluster) = testkit::cluster_or_skip("fifty_concurrent_refreshes_cluster") {
        let store: Arc<dyn Store> = Arc::new(redis_store(cluster.urls()).await);
        let outbox = Outbox::new();
        let a = Arc::new(service_with(config(), store.clone(), outbox.clone()));
        let b = Arc::new(service_with(config(), store, outbox.clone()));
        fifty_concurrent_refreshes(a, b, &outbox).await;
    }
}

fn short_grace() -> ServiceConfig {
    let mut c = config();
    c.sessions.reuse_grace = Duration::from_millis(500);
    c
}

#[tokio::test]
async fn reuse_after_the_grace_revokes_the_session_on_every_replica() {
    let Some(target) = testkit::redis_or_skip("reuse_after_the_grace_revokes") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(redis_store(vec![target.url()]).await);
    let outbox = Outbox::new();
    let a = service_with(short_grace(), store.clone(), outbox.clone());
    let b = service_with(short_grace(), store, outbox.clone());
    let v = sign_in(&a, &outbox, "reuse@example.com").await;
    let t0 = refresh_of(&v);
    let t1 = a.refresh(&t0).await.unwrap().refresh.token;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The stolen (or replayed) old token after the grace: reuse.
    assert!(matches!(
        b.refresh(&t0).await,
        Err(ServiceError::SessionRevoked)
    ));
    // The legitimate chain is dead too, on both replicas.
    assert!(matches!(
        a.refresh(&t1).await,
        Err(ServiceError::SessionRevoked)
    ));
    assert!(matches!(
        b.refresh(&t1).await,
        Err(ServiceError::SessionRevoked)
    ));
}

#[tokio::test]
async fn refresh_tokens_expire_idle_and_absolute() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let v = sign_in(&service, &outbox, "old@example.com").await;
    let t0 = refresh_of(&v);
    let iat = service
        .tokens()
        .verify_refresh_allow_expired(&t0)
        .unwrap()
        .iat;
    assert!(matches!(
        service.refresh_at(&t0, iat + 7 * 86_400).await,
        Err(ServiceError::TokenExpired)
    ));
    // Absolute: a session lives SESSION_MAX_LIFETIME from auth_time,
    // however often it rotates (the successor's exp is capped).
    let mut c = config();
    c.sessions.max_lifetime = Duration::from_secs(60);
    let outbox = Outbox::new();
    let service = memory_service(c, outbox.clone());
    let v = sign_in(&service, &outbox, "old@example.com").await;
    let r = service.refresh(&refresh_of(&v)).await.unwrap();
    assert!(r.refresh.expires_in <= 60, "{}", r.refresh.expires_in);
    let auth_time = service
        .tokens()
        .verify_refresh_allow_expired(&r.refresh.token)
        .unwrap()
        .auth_time;
    assert!(matches!(
        service.refresh_at(&r.refresh.token, auth_time + 60).await,
        Err(ServiceError::TokenExpired)
    ));
}

#[tokio::test]
async fn malformed_forged_and_access_tokens_are_token_invalid() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let v = sign_in(&service, &outbox, "forge@example.com").await;
    let t0 = refresh_of(&v);
    let mut forged = t0.clone().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for bad in [
        "",
        "garbage",
        "ort1_",
        forged.as_str(),
        v.token.token.as_str(),
    ] {
        assert!(
            matches!(
                service.refresh(bad).await,
                Err(ServiceError::TokenInvalid(_))
            ),
            "{bad:?}"
        );
    }
    // Nothing changed: the genuine token still rotates.
    assert!(service.refresh(&t0).await.is_ok());
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_ends_every_session() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let id = "leave@example.com";
    let one = sign_in(&service, &outbox, id).await;
    let two = sign_in(&service, &outbox, id).await;
    let three = sign_in(&service, &outbox, id).await;
    // With the access token: its session ends, the others live.
    assert_eq!(
        service.logout(&one.token.token, false).await.unwrap(),
        LogoutScope::Session
    );
    assert!(matches!(
        service.refresh(&refresh_of(&one)).await,
        Err(ServiceError::SessionRevoked)
    ));
    // With an expired but genuine refresh token of the session: accepted.
    let t2 = refresh_of(&two);
    let mut old = service.tokens().verify_refresh_allow_expired(&t2).unwrap();
    old.iat -= 86_400 * 8;
    old.exp = old.iat + 60;
    let expired = service.tokens().issue_refresh(&old).unwrap();
    assert!(matches!(
        service.refresh(&expired).await,
        Err(ServiceError::TokenExpired)
    ));
    assert!(service.logout(&expired, false).await.is_ok());
    assert!(matches!(
        service.refresh(&t2).await,
        Err(ServiceError::SessionRevoked)
    ));
    let t3 = service.refresh(&refresh_of(&three)).await.unwrap();
    // Sign out everywhere from a new session: every session ends.
    let four = sign_in(&service, &outbox, id).await;
    assert_eq!(
        service.logout(&four.token.token, true).await.unwrap(),
        LogoutScope::Everywhere
    );
    for t in [t3.refresh.token, refresh_of(&four)] {
        assert!(matches!(
            service.refresh(&t).await,
            Err(ServiceError::SessionRevoked)
        ));
    }
    // A later sign-in has a live session again.
    let five = sign_in(&service, &outbox, id).await;
    assert!(service.refresh(&refresh_of(&five)).await.is_ok());
    // Not genuine: 401, nothing changed.
    assert!(matches!(
        service.logout("garbage", true).await,
        Err(ServiceError::TokenInvalid(_))
    ));
    assert!(service.refresh(&refresh_of(&five)).await.is_ok());
}

#[tokio::test]
async fn an_expired_access_token_still_logs_out() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let id = "late@example.com";
    let ctx = RequestContext::default();
    // Signed in 20 minutes ago: the 15-minute access token has expired.
    let then = mid_window_now() - 900;
    service.request_otp_at(id, &ctx, then).await.unwrap();
    let code = outbox.last_code(id);
    let v = service
        .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), then)
        .await
        .unwrap();
    assert!(service
        .verify_token(&v.token.token)
        .unwrap_err()
        .is_expired());
    service.logout(&v.token.token, false).await.unwrap();
    assert!(matches!(
        service.refresh(&refresh_of(&v)).await,
        Err(ServiceError::SessionRevoked)
    ));
}

#[tokio::test]
async fn revoke_accepts_anything_and_ends_the_session_of_a_genuine_token() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    for junk in ["", "junk", "ort1_AAAA", "a.b.c"] {
        service.revoke(junk).await.unwrap();
    }
    let v = sign_in(&service, &outbox, "rev@example.com").await;
    let t0 = refresh_of(&v);
    service.revoke(&t0).await.unwrap();
    service.revoke(&t0).await.unwrap(); // twice: still fine
    assert!(matches!(
        service.refresh(&t0).await,
        Err(ServiceError::SessionRevoked)
    ));
    // An access token's session ends as well.
    let w = sign_in(&service, &outbox, "rev@example.com").await;
    service.revoke(&w.token.token).await.unwrap();
    assert!(matches!(
        service.refresh(&refresh_of(&w)).await,
        Err(ServiceError::SessionRevoked)
    ));
}

#[tokio::test]
async fn sessions_fail_closed_when_the_store_is_down_even_failing_open() {
    let Some(mut redis) = testkit::started_redis_or_skip("sessions_fail_closed") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(redis_store_fast(redis.url()).await);
    let outbox = Outbox::new();
    let service = service_with(config_with_fail_mode(FailMode::Open), store, outbox.clone());
    let v = sign_in(&service, &outbox, "down@example.com").await;
    let t0 = refresh_of(&v);
    redis.stop();
    assert!(matches!(
        service.refresh(&t0).await,
        Err(ServiceError::Unavailable(_))
    ));
    assert!(matches!(
        service.logout(&t0, false).await,
        Err(ServiceError::Unavailable(_))
    ));
    // Failing open, a verify still signs the user in, without a session.
    let ctx = RequestContext::default();
    let now = unix_now();
    service
        .request_otp_at("down@example.com", &ctx, now)
        .await
        .unwrap();
    let code = outbox.last_code("down@example.com");
    let w = service
        .verify_otp_at("down@example.com", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    assert!(w.refresh.is_none());
    assert!(service.verify_token(&w.token.token).unwrap().sid.is_none());
}
