//! Refused session tokens change nothing (issue 14, "Bad input"): a
//! malformed, forged, foreign-key, expired or access token
//! presented to refresh, logout (also with `all`) or revoke leaves the
//! store exactly as it was — on a real Redis every key's bytes and expiry
//! time are compared before and after — and emits no audit event; the
//! genuine token then still rotates as the current generation (`refresh`,
//! not `refresh_grace`, so no refused try moved the record). Also: extra
//! claims may not pose as `sid`, `auth_time` or `gen` (named literally, not
//! read from the constant under test).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use otp_core::{SigningKey, TokenConfig, TokenKeys, TokenService};
use otp_ratelimit::{HashKey, MemoryStore, RedisConfig, RedisStore, Store};
use otp_service::{
    AuditEvent, AuditEventKind, AuditSink, OtpService, RequestContext, ServiceError, VerifyOptions,
};
use otp_testkit as testkit;
use serde_json::{json, Map};

use crate::harness::{config, mid_window_now, tokens, Outbox};

/// Keeps the kind of every audit event.
#[derive(Debug, Default)]
struct Kinds(Mutex<Vec<AuditEventKind>>);

impl AuditSink for Kinds {
    fn send(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event.kind);
    }
}

impl Kinds {
    fn take(&self) -> Vec<AuditEventKind> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn service_on(store: Arc<dyn Store>) -> (OtpService, Arc<Outbox>, Arc<Kinds>) {
    let outbox = Outbox::new();
    let kinds = Arc::new(Kinds::default());
    let service = OtpService::builder(config(), tokens())
        .store(store)
        .delivery(outbox.clone())
        .audit_sink(kinds.clone())
        .build();
    (service, outbox, kinds)
}

/// Signs `id` in and rotates once: (access token, current refresh token).
async fn session_at_generation_one(s: &OtpService, outbox: &Outbox, id: &str) -> (String, String) {
    let ctx = RequestContext::default();
    let now = mid_window_now();
    s.request_otp_at(id, &ctx, now).await.unwrap();
    let code = outbox.last_code(id);
    let v = s
        .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    let t0 = v.refresh.unwrap().token;
    let r = s.refresh(&t0).await.unwrap();
    (r.token.token, r.refresh.token)
}

/// Every refused variant of the current refresh token `t1`, tried on
/// refresh, logout (one and all) and revoke, with the error each gives.
async fn try_refused_tokens(s: &OtpService, t1: &str) {
    let claims = s.tokens().verify_refresh_allow_expired(t1).unwrap();
    let mut forged = t1.as_bytes().to_vec();
    let i = forged.len() - 3;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let other_key = TokenService::new(
        TokenKeys::single(SigningKey::hs256([7u8; 32]).unwrap()),
        TokenConfig::default(),
    )
    .unwrap()
    .issue_refresh(&claims)
    .unwrap();
    let mut old = claims.clone();
    old.iat -= 8 * 86_400;
    old.exp = old.iat + 60;
    let expired = s.tokens().issue_refresh(&old).unwrap();
    let truncated = &t1[..t1.len() - 1];
    for bad in [
        "",
        "garbage",
        "ort1_",
        truncated,
        forged.as_str(),
        other_key.as_str(),
    ] {
        assert!(
            matches!(s.refresh(bad).await, Err(ServiceError::TokenInvalid(_))),
            "refresh {bad:?}"
        );
        for all in [false, true] {
            assert!(
                matches!(s.logout(bad, all).await, Err(ServiceError::TokenInvalid(_))),
                "logout all={all} {bad:?}"
            );
        }
        s.revoke(bad).await.unwrap();
    }
    // Expired: the current generation as issued 8 days ago, and the
    // current token itself presented after its exp.
    let r = s.refresh(&expired).await;
    assert!(matches!(r, Err(ServiceError::TokenExpired)), "{r:?}");
    let r = s.refresh_at(t1, claims.exp + 3_600).await;
    assert!(matches!(r, Err(ServiceError::TokenExpired)), "{r:?}");
}

/// The genuine token still rotates as the current generation: `refresh`
/// first, then `refresh_grace` for the same token.
async fn still_current(s: &OtpService, kinds: &Kinds, t1: &str) {
    let t2 = s.refresh(t1).await.expect("the genuine token rotates");
    assert_ne!(t2.refresh.token, t1);
    assert_eq!(kinds.take(), vec![AuditEventKind::Refresh]);
    let again = s.refresh(t1).await.unwrap();
    assert_eq!(again.refresh.token, t2.refresh.token);
    assert_eq!(kinds.take(), vec![AuditEventKind::RefreshGrace]);
}

#[tokio::test]
async fn refused_session_tokens_change_nothing_in_the_memory_store() {
    let (s, outbox, kinds) = service_on(Arc::new(MemoryStore::default()));
    let (_access, t1) = session_at_generation_one(&s, &outbox, "same@example.com").await;
    kinds.take();
    try_refused_tokens(&s, &t1).await;
    assert_eq!(kinds.take(), vec![], "a refused token is no audit fact");
    still_current(&s, &kinds, &t1).await;
}

/// Every key with its `DUMP` bytes and absolute expiry (ms).
fn snapshot(redis: &testkit::RedisServer) -> BTreeMap<String, (String, String)> {
    let keys = redis.cli(&["--scan"]).unwrap();
    keys.lines()
        .filter(|k| !k.is_empty())
        .map(|k| {
            let dump = redis.cli(&["--no-raw", "DUMP", k]).unwrap();
            let at = redis.cli(&["PEXPIRETIME", k]).unwrap();
            (k.to_owned(), (dump, at))
        })
        .collect()
}

#[tokio::test]
async fn refused_session_tokens_leave_every_redis_key_unchanged() {
    let Some(redis) = testkit::started_redis_or_skip("refused_tokens_redis") else {
        return;
    };
    let mut c = RedisConfig::new(vec![redis.url()], HashKey::new(vec![9u8; 32]));
    c.key_prefix = "refused".to_owned();
    let store = RedisStore::connect(c).await.unwrap();
    let (s, outbox, kinds) = service_on(Arc::new(store));
    let (access, t1) = session_at_generation_one(&s, &outbox, "same@example.com").await;
    kinds.take();
    let before = snapshot(&redis);
    assert!(
        before.values().any(|(_, at)| at.trim() != "-1"),
        "the session record has an expiry: {before:?}"
    );
    try_refused_tokens(&s, &t1).await;
    // An access token is no refresh token, even a genuine one.
    assert!(matches!(
        s.refresh(&access).await,
        Err(ServiceError::TokenInvalid(_))
    ));
    assert_eq!(snapshot(&redis), before, "no key, value or expiry changed");
    assert_eq!(kinds.take(), vec![], "a refused token is no audit fact");
    still_current(&s, &kinds, &t1).await;
}

#[tokio::test]
async fn extra_claims_may_not_pose_as_sid_auth_time_or_gen() {
    let (s, outbox, _) = service_on(Arc::new(MemoryStore::default()));
    let id = "claims@example.com";
    let ctx = RequestContext::default();
    let now = mid_window_now();
    s.request_otp_at(id, &ctx, now).await.unwrap();
    let code = outbox.last_code(id);
    for name in ["sid", "auth_time", "gen"] {
        let mut m = Map::new();
        m.insert(name.to_owned(), json!("attacker"));
        let r = s
            .verify_otp_at(
                id,
                &code,
                &ctx,
                VerifyOptions::new().with_extra_claims(m),
                now,
            )
            .await;
        assert!(
            matches!(&r, Err(ServiceError::ReservedClaim(n)) if n == name),
            "{name}: {r:?}"
        );
    }
    // The refused calls spent nothing: the code still signs in, and the
    // session's own sid and auth_time are in the token.
    let v = s
        .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    let claims = s.verify_token(&v.token.token).unwrap();
    assert_eq!(
        claims.sid.as_deref(),
        Some(v.refresh.unwrap().sid.to_string().as_str())
    );
    assert_eq!(claims.auth_time, Some(now));
}
