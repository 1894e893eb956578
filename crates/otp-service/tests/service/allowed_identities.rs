//! Who may sign in on the JSON API (`ALLOWED_IDENTITIES`, SPEC §11): a
//! refused identity gets the same answer as an allowed one and nothing is
//! sent, it counts against the same limits, its verify fails as a wrong
//! code does, its session stops renewing, and its answer takes about as
//! long as a delivery would have.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otp_delivery::{Delivery, DeliveryError, DeliveryReceipt, OtpMessage};

use crate::harness::{config, memory_service, mid_window_now, service_with, Outbox};
use otp_ratelimit::{LimitPolicy, MemoryStore, Store};
use otp_service::{
    IdentityAllowlist, LimitedOperation, RequestContext, ServiceConfig, ServiceError, VerifyOptions,
};

fn only(list: &str) -> ServiceConfig {
    let mut c = config();
    c.allowed_identities = IdentityAllowlist::parse(list).unwrap();
    c
}

fn ip() -> RequestContext {
    RequestContext::with_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
}

#[tokio::test]
async fn a_refused_identity_gets_the_answer_of_an_allowed_one_and_no_code() {
    let outbox = Outbox::new();
    let service = memory_service(only("*@example.com, +44*"), outbox.clone());
    let now = mid_window_now();
    let allowed = service
        .request_otp_at("Ann@Example.com", &ip(), now)
        .await
        .unwrap();
    let refused = service
        .request_otp_at(" Eve@Evil.test", &ip(), now)
        .await
        .unwrap();
    assert_eq!(outbox.count("ann@example.com"), 1);
    assert_eq!(outbox.count("eve@evil.test"), 0);
    assert_eq!(outbox.total(), 1);
    assert_eq!(refused.identity.as_str(), "eve@evil.test");
    assert_eq!(refused.ttl_seconds, allowed.ttl_seconds);
    assert_eq!(refused.expires_at, allowed.expires_at);
    assert_eq!(refused.rate_limit, allowed.rate_limit);
    // A second request: the refused identity's budget shrinks as an
    // allowed one's does, so the headers tell them apart no more than the body.
    let allowed = service.request_otp_at("ann@example.com", &ip(), now).await;
    let refused = service.request_otp_at("eve@evil.test", &ip(), now).await;
    assert_eq!(
        refused.unwrap().rate_limit,
        allowed.unwrap().rate_limit,
        "same remaining budget"
    );
    // Phone prefix and opaque ids.
    service
        .request_otp_at("+44 20 7946 0958", &ip(), now)
        .await
        .unwrap();
    service
        .request_otp_at("+1 415 555 0100", &ip(), now)
        .await
        .unwrap();
    service.request_otp_at("user-42", &ip(), now).await.unwrap();
    assert_eq!(outbox.count("+442079460958"), 1);
    assert_eq!(outbox.count("+14155550100"), 0);
    assert_eq!(outbox.count("user-42"), 0);
    assert_eq!(service.metrics().otp_requested.get(), 3, "only sends count");
}

#[tokio::test]
async fn refused_requests_count_toward_the_per_ip_and_per_identity_limits() {
    let mut c = only("ann@example.com");
    c.limits.request_per_ip = LimitPolicy::per_secs("request_ip", 2, 600);
    let outbox = Outbox::new();
    let service = memory_service(c, outbox.clone());
    service.request_otp("eve@evil.test", &ip()).await.unwrap();
    service
        .request_otp("mallory@evil.test", &ip())
        .await
        .unwrap();
    match service.request_otp("ann@example.com", &ip()).await {
        Err(ServiceError::RateLimited {
            operation: LimitedOperation::Request,
            limit: "request_ip",
            ..
        }) => {}
        other => panic!("expected the per-IP limit, got {other:?}"),
    }
    assert_eq!(outbox.total(), 0);

    // Per identity: a refused identity reaches its limit (429) exactly as
    // an allowed one would.
    let mut c = only("ann@example.com");
    c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 1, 600);
    let service = memory_service(c, Outbox::new());
    for who in ["eve@evil.test", "ann@example.com"] {
        service.request_otp(who, &ip()).await.unwrap();
        match service.request_otp(who, &ip()).await {
            Err(ServiceError::RateLimited {
                limit: "request_identity",
                ..
            }) => {}
            other => panic!("{who}: expected the per-identity limit, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn verify_for_a_refused_identity_fails_like_a_wrong_code_even_with_the_right_code() {
    // Two replicas on one store: `open` sent bob a code before `closed`,
    // configured without bob, sees it.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let outbox = Outbox::new();
    let open = service_with(config(), store.clone(), outbox.clone());
    let closed = service_with(only("ann@example.com"), store, outbox.clone());
    open.request_otp("bob@example.com", &ip()).await.unwrap();
    let code = outbox.last_code("bob@example.com");

    let refused = closed
        .verify_otp("bob@example.com", &code, &ip(), VerifyOptions::new())
        .await
        .unwrap_err();
    let wrong = closed
        .verify_otp("ann@example.com", "000000", &ip(), VerifyOptions::new())
        .await
        .unwrap_err();
    match (&refused, &wrong) {
        (
            ServiceError::InvalidOtp { rate_limit: r },
            ServiceError::InvalidOtp { rate_limit: w },
        ) => assert_eq!(r, w, "the same verify budget is reported"),
        other => panic!("expected two InvalidOtp, got {other:?}"),
    }
    assert_eq!(closed.metrics().otp_failed.get(), 2);
    // The refused verify did not spend the code: the replica that allows
    // bob still accepts it.
    let ok = open
        .verify_otp("bob@example.com", &code, &ip(), VerifyOptions::new())
        .await
        .unwrap();
    assert_eq!(ok.identity.as_str(), "bob@example.com");
}

#[tokio::test]
async fn verify_for_a_refused_identity_counts_toward_the_verify_limits() {
    let mut c = only("ann@example.com");
    c.limits.verify_per_identity = LimitPolicy::per_secs("verify_identity", 2, 600);
    let service = memory_service(c, Outbox::new());
    for _ in 0..2 {
        let e = service
            .verify_otp("eve@evil.test", "123456", &ip(), VerifyOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::InvalidOtp { .. }), "{e:?}");
    }
    match service
        .verify_otp("eve@evil.test", "123456", &ip(), VerifyOptions::new())
        .await
    {
        Err(ServiceError::RateLimited {
            operation: LimitedOperation::Verify,
            limit: "verify_identity",
            ..
        }) => {}
        other => panic!("expected the verify limit, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_stops_renewing_once_its_identity_is_no_longer_allowed() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let outbox = Outbox::new();
    let before = service_with(config(), store.clone(), outbox.clone());
    let after = service_with(only("*@example.com"), store, outbox.clone());
    let mut sessions = Vec::new();
    for who in ["bob@example.com", "eve@evil.test"] {
        before.request_otp(who, &ip()).await.unwrap();
        let v = before
            .verify_otp(who, &outbox.last_code(who), &ip(), VerifyOptions::new())
            .await
            .unwrap();
        sessions.push(v.refresh.unwrap().token);
    }
    let kept = after.refresh(&sessions[0]).await.unwrap();
    assert_eq!(kept.token.claims.sub, "bob@example.com");
    match after.refresh(&sessions[1]).await {
        Err(ServiceError::SessionRevoked) => {}
        other => panic!("expected session_revoked, got {other:?}"),
    }
    // The list is what refused it: the same token still renews where eve is
    // allowed.
    before.refresh(&sessions[1]).await.unwrap();
}

#[test]
fn the_default_configuration_allows_anyone() {
    assert!(config().allowed_identities.is_anyone());
}

/// A provider that takes `0` to accept a message (an SMTP relay, Twilio).
#[derive(Debug)]
struct Slow(Duration, Arc<Outbox>);

#[otp_service::async_trait]
impl Delivery for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    async fn deliver(&self, m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        tokio::time::sleep(self.0).await;
        self.1.deliver(m).await
    }
}

#[tokio::test]
async fn a_refused_identity_is_answered_after_about_a_delivery_time() {
    let outbox = Outbox::new();
    let slow = Arc::new(Slow(Duration::from_millis(300), outbox.clone()));
    let service = memory_service(only("*@example.com"), slow);
    let timed = |who: &'static str| {
        let service = &service;
        async move {
            let started = Instant::now();
            service.request_otp(who, &ip()).await.unwrap();
            started.elapsed()
        }
    };
    // Before any delivery there is nothing to imitate.
    assert!(timed("eve@evil.test").await < Duration::from_millis(200));
    let sent = timed("ann@example.com").await;
    assert!(sent >= Duration::from_millis(300), "{sent:?}");
    let refused = timed("mallory@evil.test").await;
    assert!(
        refused >= Duration::from_millis(250) && refused < Duration::from_millis(1000),
        "a refused email request took {refused:?} after a {sent:?} delivery"
    );
    assert_eq!(outbox.total(), 1);
    // The pace is per kind: no phone delivery has been timed yet.
    assert!(timed("+14155550100").await < Duration::from_millis(200));
}
