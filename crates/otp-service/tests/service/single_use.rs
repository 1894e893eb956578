//! Single use (SPEC §3.3): replays fail, a new request in the same window
//! gets a fresh code, concurrent submissions of one code yield exactly one
//! success (memory store, real standalone Redis, real Redis Cluster), the
//! Python-compatible mode without use counters, and the per-code attempt
//! budget.

use std::sync::Arc;

use crate::harness::{
    config, memory_service, mid_window_now, redis_store, service_with, wrong_code, Outbox,
};
use otp_ratelimit::{MemoryStore, Store};
use otp_service::{OtpService, RequestContext, ServiceError, VerifyOptions};
use otp_testkit as testkit;

#[tokio::test]
async fn replayed_code_is_invalid_otp() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    service
        .request_otp_at("ann@example.com", &ctx, now)
        .await
        .unwrap();
    let code = outbox.last_code("ann@example.com");
    service
        .verify_otp_at("ann@example.com", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    for later in [now, now + 1, now + 100] {
        match service
            .verify_otp_at("ann@example.com", &code, &ctx, VerifyOptions::new(), later)
            .await
        {
            Err(ServiceError::InvalidOtp { .. }) => {}
            other => panic!(
                "replay at +{}: expected InvalidOtp, got {other:?}",
                later - now
            ),
        }
    }
    assert_eq!(service.metrics().otp_verified.get(), 1);
}

async fn new_request_in_same_window_yields_a_different_code_that_verifies(
    service: &OtpService,
    outbox: &Outbox,
) {
    let ctx = RequestContext::default();
    let now = mid_window_now();
    let id = "ben@example.com";
    service.request_otp_at(id, &ctx, now).await.unwrap();
    let first = outbox.last_code(id);
    // Asking again before using it re-sends the same code (nothing was used).
    service.request_otp_at(id, &ctx, now + 1).await.unwrap();
    assert_eq!(outbox.last_code(id), first);
    service
        .verify_otp_at(id, &first, &ctx, VerifyOptions::new(), now + 2)
        .await
        .unwrap();

    // Same window, after the first code was used: a fresh code.
    service.request_otp_at(id, &ctx, now + 3).await.unwrap();
    let second = outbox.last_code(id);
    assert_ne!(second, first, "a used code must never be sent again");
    assert!(matches!(
        service
            .verify_otp_at(id, &first, &ctx, VerifyOptions::new(), now + 4)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    service
        .verify_otp_at(id, &second, &ctx, VerifyOptions::new(), now + 5)
        .await
        .unwrap();

    // And a third one.
    service.request_otp_at(id, &ctx, now + 6).await.unwrap();
    let third = outbox.last_code(id);
    assert!(third != first && third != second);
    service
        .verify_otp_at(id, &third, &ctx, VerifyOptions::new(), now + 7)
        .await
        .unwrap();
    assert!(matches!(
        service
            .verify_otp_at(id, &second, &ctx, VerifyOptions::new(), now + 8)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
}

#[tokio::test]
async fn new_request_after_use_in_the_same_window_yields_a_fresh_code_memory() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    new_request_in_same_window_yields_a_different_code_that_verifies(&service, &outbox).await;
}

#[tokio::test]
async fn new_request_after_use_in_the_same_window_yields_a_fresh_code_redis() {
    let Some(redis) = testkit::redis_or_skip(
        "new_request_after_use_in_the_same_window_yields_a_fresh_code_redis",
    ) else {
        return;
    };
    let outbox = Outbox::new();
    let store = Arc::new(redis_store(vec![redis.url()]).await);
    let service = service_with(config(), store, outbox.clone());
    new_request_in_same_window_yields_a_different_code_that_verifies(&service, &outbox).await;
}

/// 16 tasks submit the same delivered code at once on a multi-thread
/// runtime; exactly one gets a token, every other one `InvalidOtp`.
async fn sixteen_concurrent_verifies_yield_exactly_one_success(store: Arc<dyn Store>) {
    let outbox = Outbox::new();
    let service = Arc::new(service_with(config(), store, outbox.clone()));
    let ctx = RequestContext::default();
    let now = mid_window_now();
    for round in 0..3 {
        let id = format!("racer{round}@example.com");
        service.request_otp_at(&id, &ctx, now).await.unwrap();
        let code = outbox.last_code(&id);
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (service, barrier, id, code) =
                (service.clone(), barrier.clone(), id.clone(), code.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                service
                    .verify_otp_at(
                        &id,
                        &code,
                        &RequestContext::default(),
                        VerifyOptions::new(),
                        now,
                    )
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v.identity.as_str(), id);
                    ok += 1;
                }
                Err(ServiceError::InvalidOtp { .. }) => {}
                Err(other) => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            ok, 1,
            "round {round}: exactly one of 16 submissions may win"
        );
    }
    assert_eq!(service.metrics().otp_verified.get(), 3);
    assert_eq!(service.metrics().otp_failed.get(), 3 * 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_verifies_of_one_code_yield_exactly_one_ok_memory() {
    sixteen_concurrent_verifies_yield_exactly_one_success(Arc::new(MemoryStore::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_verifies_of_one_code_yield_exactly_one_ok_redis_standalone() {
    let Some(redis) = testkit::redis_or_skip(
        "sixteen_concurrent_verifies_of_one_code_yield_exactly_one_ok_redis_standalone",
    ) else {
        return;
    };
    let store = Arc::new(redis_store(vec![redis.url()]).await);
    sixteen_concurrent_verifies_yield_exactly_one_success(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_verifies_of_one_code_yield_exactly_one_ok_redis_cluster() {
    let Some(cluster) = testkit::cluster_or_skip(
        "sixteen_concurrent_verifies_of_one_code_yield_exactly_one_ok_redis_cluster",
    ) else {
        return;
    };
    let store = Arc::new(redis_store(cluster.urls()).await);
    sixteen_concurrent_verifies_yield_exactly_one_success(store).await;
}

#[tokio::test]
async fn without_single_use_the_same_code_verifies_twice_like_the_python_service() {
    let outbox = Outbox::new();
    let mut c = config();
    c.single_use = false;
    let service = memory_service(c, outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    service.request_otp_at("kim", &ctx, now).await.unwrap();
    let code = outbox.last_code("kim");
    let a = service
        .verify_otp_at("kim", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    let b = service
        .verify_otp_at("kim", &code, &ctx, VerifyOptions::new(), now + 1)
        .await
        .unwrap();
    assert_ne!(
        a.token.claims.jti, b.token.claims.jti,
        "two distinct tokens"
    );
    // n is always 0: a second request in the same window re-sends the code.
    service.request_otp_at("kim", &ctx, now + 2).await.unwrap();
    assert_eq!(outbox.last_code("kim"), code);
    service
        .verify_otp_at("kim", &code, &ctx, VerifyOptions::new(), now + 3)
        .await
        .unwrap();
}

async fn attempt_budget_voids_the_sent_code(service: &OtpService, outbox: &Outbox) {
    let ctx = RequestContext::default();
    let now = mid_window_now();
    let id = "lou@example.com";
    service.request_otp_at(id, &ctx, now).await.unwrap();
    let code = outbox.last_code(id);
    let wrong = wrong_code(&code);
    for i in 0..5 {
        match service
            .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), now + i)
            .await
        {
            Err(ServiceError::InvalidOtp { .. }) => {}
            other => panic!("wrong code #{}: expected InvalidOtp, got {other:?}", i + 1),
        }
    }
    // The budget of 5 is used up: the real code no longer verifies.
    assert!(matches!(
        service
            .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now + 10)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    // A newly requested code (same window) does.
    service.request_otp_at(id, &ctx, now + 11).await.unwrap();
    let fresh = outbox.last_code(id);
    assert_ne!(fresh, code);
    service
        .verify_otp_at(id, &fresh, &ctx, VerifyOptions::new(), now + 12)
        .await
        .unwrap();
}

#[tokio::test]
async fn five_wrong_codes_void_the_delivered_code_and_a_new_one_verifies_memory() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    attempt_budget_voids_the_sent_code(&service, &outbox).await;
}

#[tokio::test]
async fn five_wrong_codes_void_the_delivered_code_and_a_new_one_verifies_redis() {
    let Some(redis) = testkit::redis_or_skip(
        "five_wrong_codes_void_the_delivered_code_and_a_new_one_verifies_redis",
    ) else {
        return;
    };
    let outbox = Outbox::new();
    let store = Arc::new(redis_store(vec![redis.url()]).await);
    let service = service_with(config(), store, outbox.clone());
    attempt_budget_voids_the_sent_code(&service, &outbox).await;
}

#[tokio::test]
async fn four_wrong_codes_leave_the_delivered_code_valid() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    service.request_otp_at("max", &ctx, now).await.unwrap();
    let code = outbox.last_code("max");
    let wrong = wrong_code(&code);
    for i in 0..4 {
        assert!(service
            .verify_otp_at("max", &wrong, &ctx, VerifyOptions::new(), now + i)
            .await
            .is_err());
    }
    service
        .verify_otp_at("max", &code, &ctx, VerifyOptions::new(), now + 5)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_code_from_the_previous_window_still_verifies_within_drift() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    let sent = service
        .request_otp_at("ned", &ctx, now - 300)
        .await
        .unwrap();
    let code = outbox.last_code("ned");
    // One window later, still inside expires_at.
    assert!(now < sent.expires_at);
    service
        .verify_otp_at("ned", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    // Two windows later it has expired.
    service
        .request_otp_at("ned", &ctx, now - 600)
        .await
        .unwrap();
    let old = outbox.last_code("ned");
    assert!(matches!(
        service
            .verify_otp_at("ned", &old, &ctx, VerifyOptions::new(), now)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
}

/// A code stays valid for its own window and the next (drift 1); wrong
/// guesses on both sides of the window edge add up to one budget of 5, so
/// splitting them (3 + 2, or 4 + 4) does not buy more tries.
async fn attempt_budget_spans_the_window_edge(service: &OtpService, outbox: &Outbox) {
    let ctx = RequestContext::default();
    let issued = mid_window_now() - 300; // mid of an earlier window
    let id = "edge@example.com";
    service.request_otp_at(id, &ctx, issued).await.unwrap();
    let code = outbox.last_code(id);
    let wrong = wrong_code(&code);
    for t in [issued, issued + 60, issued + 120] {
        assert!(matches!(
            service
                .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), t)
                .await,
            Err(ServiceError::InvalidOtp { .. })
        ));
    }
    // The next window: the code is still inside its validity.
    let next = issued + 300;
    for t in [next, next + 1] {
        assert!(matches!(
            service
                .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), t)
                .await,
            Err(ServiceError::InvalidOtp { .. })
        ));
    }
    // Five wrong tries in total: the code is void.
    assert!(matches!(
        service
            .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), next + 2)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    // A newly requested code verifies.
    service.request_otp_at(id, &ctx, next + 3).await.unwrap();
    let fresh = outbox.last_code(id);
    assert_ne!(fresh, code);
    assert!(service
        .verify_otp_at(
            id,
            &wrong_code(&fresh),
            &ctx,
            VerifyOptions::new(),
            next + 4
        )
        .await
        .is_err());
    service
        .verify_otp_at(id, &fresh, &ctx, VerifyOptions::new(), next + 5)
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_codes_on_both_sides_of_a_window_edge_share_one_budget_of_five_memory() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    attempt_budget_spans_the_window_edge(&service, &outbox).await;
}

#[tokio::test]
async fn wrong_codes_on_both_sides_of_a_window_edge_share_one_budget_of_five_redis() {
    let Some(redis) = testkit::redis_or_skip(
        "wrong_codes_on_both_sides_of_a_window_edge_share_one_budget_of_five_redis",
    ) else {
        return;
    };
    let outbox = Outbox::new();
    let store = Arc::new(redis_store(vec![redis.url()]).await);
    let service = service_with(config(), store, outbox.clone());
    attempt_budget_spans_the_window_edge(&service, &outbox).await;
}

#[tokio::test]
async fn codes_sent_before_an_otp_key_rotation_still_verify_once_with_the_previous_key() {
    use otp_core::OtpKeyRing;
    use otp_core::SecretBytes;

    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let outbox = Outbox::new();
    let old_key = SecretBytes::new(vec![1; 32]);
    let new_key = SecretBytes::new(vec![2; 32]);
    let with_keys = |ring: OtpKeyRing| {
        let mut c = config();
        c.keys = ring;
        service_with(c, store.clone(), outbox.clone())
    };
    let before = with_keys(OtpKeyRing::new(old_key.clone(), vec![]).unwrap());
    let after = with_keys(OtpKeyRing::new(new_key.clone(), vec![old_key]).unwrap());
    let new_only = with_keys(OtpKeyRing::new(new_key, vec![]).unwrap());
    let ctx = RequestContext::default();
    let now = mid_window_now();

    before.request_otp_at("rot", &ctx, now).await.unwrap();
    let old_code = outbox.last_code("rot");
    // Without the previous key the old code is wrong...
    assert!(matches!(
        new_only
            .verify_otp_at("rot", &old_code, &ctx, VerifyOptions::new(), now)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    // ...with it, it verifies, once.
    after
        .verify_otp_at("rot", &old_code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    assert!(matches!(
        after
            .verify_otp_at("rot", &old_code, &ctx, VerifyOptions::new(), now)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    // New codes come from the new key.
    after.request_otp_at("rot", &ctx, now + 1).await.unwrap();
    let new_code = outbox.last_code("rot");
    new_only
        .verify_otp_at("rot", &new_code, &ctx, VerifyOptions::new(), now + 2)
        .await
        .unwrap();
}
