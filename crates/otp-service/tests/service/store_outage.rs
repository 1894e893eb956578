//! Redis outages (SPEC §6): with a real `redis-server` that the test kills,
//! fail closed answers `Unavailable` and readiness fails; fail open lets
//! request and verify proceed; after Redis restarts on the same port the
//! same service (not rebuilt) recovers by itself within a few seconds.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{config_with_fail_mode, redis_store_fast, service_with, Outbox};
use otp_ratelimit::LimitPolicy;
use otp_service::metrics::StoreLabels;
use otp_service::{
    FailMode, LimitedOperation, OtpService, RequestContext, ServiceError, VerifyOptions,
};
use otp_testkit as testkit;

/// Every call while Redis is down must come back quickly (bounded by the
/// store's timeouts), never hang.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("a call while Redis is down must not hang")
}

async fn round_trip(service: &OtpService, outbox: &Outbox, id: &str) {
    let ctx = RequestContext::default();
    service.request_otp(id, &ctx).await.unwrap();
    let code = outbox.last_code(id);
    let v = service
        .verify_otp(id, &code, &ctx, VerifyOptions::new())
        .await
        .unwrap();
    service.verify_token(&v.token.token).unwrap();
    // Single use holds (the store is the real one again).
    assert!(matches!(
        service
            .verify_otp(id, &code, &ctx, VerifyOptions::new())
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
}

/// Polls `service.ready()` until it succeeds; the time it took.
async fn wait_ready(service: &OtpService, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if service.ready().await.is_ok() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the service did not recover within {within:?} after Redis restarted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_with_unavailable_while_redis_is_down_and_recovers_after_restart() {
    let Some(mut redis) = testkit::started_redis_or_skip(
        "fail_closed_refuses_with_unavailable_while_redis_is_down_and_recovers_after_restart",
    ) else {
        return;
    };
    let outbox = Outbox::new();
    let store = Arc::new(redis_store_fast(redis.url()).await);
    let service = service_with(
        config_with_fail_mode(FailMode::Closed),
        store,
        outbox.clone(),
    );
    let ctx = RequestContext::default();
    service.ready().await.unwrap();
    round_trip(&service, &outbox, "closed@example.com").await;
    service
        .request_otp("closed@example.com", &ctx)
        .await
        .unwrap();
    let pending = outbox.last_code("closed@example.com");
    let delivered_before = outbox.total();

    redis.stop();

    for _ in 0..3 {
        match bounded(service.request_otp("closed@example.com", &ctx)).await {
            Err(ServiceError::Unavailable(e)) => assert!(e.is_unavailable(), "{e}"),
            other => panic!("request while down: expected Unavailable, got {other:?}"),
        }
        match bounded(service.verify_otp(
            "closed@example.com",
            &pending,
            &ctx,
            VerifyOptions::new(),
        ))
        .await
        {
            Err(ServiceError::Unavailable(_)) => {}
            other => panic!("verify while down: expected Unavailable, got {other:?}"),
        }
        match bounded(service.ready()).await {
            Err(ServiceError::Unavailable(_)) => {}
            other => panic!("ready while down: expected Unavailable, got {other:?}"),
        }
    }
    assert_eq!(
        outbox.total(),
        delivered_before,
        "nothing is sent while closed"
    );
    let limit_errors = service
        .metrics()
        .store_errors
        .get_or_create(&StoreLabels { op: "limit" })
        .get();
    assert_eq!(
        limit_errors, 6,
        "each refused request and verify counts one store error"
    );

    redis
        .restart()
        .expect("restart redis-server on the same port");
    let took = wait_ready(&service, Duration::from_secs(5)).await;
    eprintln!("fail closed: ready again {took:?} after the restart");
    // Requests work again without rebuilding the service. (The restarted
    // Redis is empty: the pending code's counter is 0 again, as it was.)
    round_trip(&service, &outbox, "closed@example.com").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_lets_request_and_verify_proceed_while_redis_is_down_and_recovers() {
    let Some(mut redis) = testkit::started_redis_or_skip(
        "fail_open_lets_request_and_verify_proceed_while_redis_is_down_and_recovers",
    ) else {
        return;
    };
    let outbox = Outbox::new();
    let store = Arc::new(redis_store_fast(redis.url()).await);
    let mut c = config_with_fail_mode(FailMode::Open);
    c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 2, 600);
    let service = service_with(c, store, outbox.clone());
    let ctx = RequestContext::default();
    round_trip(&service, &outbox, "open@example.com").await;

    redis.stop();

    assert!(
        bounded(service.store_ping()).await.is_err(),
        "the store ping reports the outage"
    );
    assert!(
        bounded(service.ready()).await.is_ok(),
        "failing open, the service stays ready (an orchestrator must not pull every replica)"
    );
    // Limits are not enforced while down (that is what "open" means): more
    // requests than the limit of 2 go through.
    for _ in 0..3 {
        let sent = bounded(service.request_otp("open@example.com", &ctx))
            .await
            .unwrap();
        assert_eq!(sent.rate_limit.limit, 2);
    }
    let code = outbox.last_code("open@example.com");
    let v = bounded(service.verify_otp("open@example.com", &code, &ctx, VerifyOptions::new()))
        .await
        .unwrap();
    assert_eq!(
        service.verify_token(&v.token.token).unwrap().sub,
        "open@example.com"
    );
    // A wrong code is still wrong.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(
        bounded(service.verify_otp("open@example.com", wrong, &ctx, VerifyOptions::new())).await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    let m = service.metrics();
    for op in ["limit", "counters", "advance", "clear", "failure"] {
        assert!(
            m.store_errors.get_or_create(&StoreLabels { op }).get() > 0,
            "store error of {op} counted"
        );
    }

    redis
        .restart()
        .expect("restart redis-server on the same port");
    let started = Instant::now();
    while service.store_ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "store did not recover within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    eprintln!("fail open: store answers again {took:?} after the restart");
    // The store is in force again: the limit of 2 trips on the third request.
    service.request_otp("back@example.com", &ctx).await.unwrap();
    service.request_otp("back@example.com", &ctx).await.unwrap();
    match service.request_otp("back@example.com", &ctx).await {
        Err(ServiceError::RateLimited {
            limit: "request_identity",
            operation: LimitedOperation::Request,
            ..
        }) => {}
        other => panic!("expected the limit to be enforced again, got {other:?}"),
    }
    let code = outbox.last_code("back@example.com");
    service
        .verify_otp("back@example.com", &code, &ctx, VerifyOptions::new())
        .await
        .unwrap();
    assert!(matches!(
        service
            .verify_otp("back@example.com", &code, &ctx, VerifyOptions::new())
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
}
