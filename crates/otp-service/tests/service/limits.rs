//! The abuse limits of SPEC §6 as the service applies them: identity
//! variants share one budget, each limit trips exactly at its configured
//! value with a positive `Retry-After`, a correct code does not get past an
//! exhausted verify limit, and a successful verify clears the identity's
//! 10-minute verify budget (not the daily one).
//!
//! Every scenario runs on the memory store and on a real Redis.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{config, mid_window_now, redis_store, service_with, wrong_code, Outbox};
use otp_ratelimit::{LimitPolicy, MemoryStore, Store};
use otp_service::{
    LimitedOperation, OtpService, RequestContext, ServiceConfig, ServiceError, VerifyOptions,
};
use otp_testkit as testkit;

/// Runs `scenario` once per backend: `<name>_memory` and `<name>_redis`.
macro_rules! on_both_stores {
    ($scenario:ident, $memory:ident, $redis:ident) => {
        #[tokio::test]
        async fn $memory() {
            $scenario(Arc::new(MemoryStore::default())).await;
        }

        #[tokio::test]
        async fn $redis() {
            let Some(redis) = testkit::redis_or_skip(stringify!($redis)) else {
                return;
            };
            $scenario(Arc::new(redis_store(vec![redis.url()]).await)).await;
        }
    };
}

fn ip(s: &str) -> RequestContext {
    RequestContext::with_ip(s.parse::<IpAddr>().unwrap())
}

/// Asserts `r` is `RateLimited` by `limit` with sane figures.
fn assert_limited<T: std::fmt::Debug>(
    r: Result<T, ServiceError>,
    limit: &str,
    operation: LimitedOperation,
    max: u32,
    window_secs: u64,
) -> u64 {
    match r {
        Err(ServiceError::RateLimited {
            operation: op,
            limit: l,
            info,
            retry_after_secs,
        }) => {
            assert_eq!(l, limit);
            assert_eq!(op, operation);
            assert_eq!(info.limit, max);
            assert_eq!(info.remaining, 0);
            assert_eq!(info.window_secs, window_secs);
            assert!(
                retry_after_secs > 0 && retry_after_secs <= window_secs,
                "retry_after_secs {retry_after_secs} not in 1..={window_secs}"
            );
            retry_after_secs
        }
        other => panic!("expected RateLimited({limit}), got {other:?}"),
    }
}

fn assert_invalid_otp<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> u32 {
    match r {
        Err(ServiceError::InvalidOtp { rate_limit }) => rate_limit.remaining,
        other => panic!("expected InvalidOtp, got {other:?}"),
    }
}

fn service(c: ServiceConfig, store: Arc<dyn Store>) -> (OtpService, Arc<Outbox>) {
    let outbox = Outbox::new();
    (service_with(c, store, outbox.clone()), outbox)
}

async fn email_variants_share_one_budget(store: Arc<dyn Store>) {
    let mut c = config();
    c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 2, 600);
    c.limits.verify_per_identity = LimitPolicy::per_secs("verify_identity", 2, 600);
    let (service, outbox) = service(c, store);
    let ctx = RequestContext::default();
    let now = mid_window_now();

    let a = service
        .request_otp_at("Alice@Example.com", &ctx, now)
        .await
        .unwrap();
    assert_eq!(a.rate_limit.remaining, 1);
    let b = service
        .request_otp_at(" alice@example.COM ", &ctx, now)
        .await
        .unwrap();
    assert_eq!(b.rate_limit.remaining, 0);
    assert_limited(
        service.request_otp_at("ALICE@EXAMPLE.COM", &ctx, now).await,
        "request_identity",
        LimitedOperation::Request,
        2,
        600,
    );
    assert_eq!(outbox.codes("alice@example.com").len(), 2);

    let wrong = wrong_code(&outbox.last_code("alice@example.com"));
    assert_eq!(
        assert_invalid_otp(
            service
                .verify_otp_at("ALICE@example.com", &wrong, &ctx, VerifyOptions::new(), now)
                .await
        ),
        1
    );
    assert_eq!(
        assert_invalid_otp(
            service
                .verify_otp_at(
                    "\talice@EXAMPLE.com",
                    &wrong,
                    &ctx,
                    VerifyOptions::new(),
                    now
                )
                .await
        ),
        0
    );
    assert_limited(
        service
            .verify_otp_at("alice@example.com", &wrong, &ctx, VerifyOptions::new(), now)
            .await,
        "verify_identity",
        LimitedOperation::Verify,
        2,
        600,
    );

    // Phone formatting variants are one identity too.
    service
        .request_otp_at("+1 555 010 2030", &ctx, now)
        .await
        .unwrap();
    service
        .request_otp_at("+1 (555) 010-2030", &ctx, now)
        .await
        .unwrap();
    assert_limited(
        service.request_otp_at("+1.555.010.2030", &ctx, now).await,
        "request_identity",
        LimitedOperation::Request,
        2,
        600,
    );
    // Another identity has its own budget.
    service
        .request_otp_at("bob@example.com", &ctx, now)
        .await
        .unwrap();
}
on_both_stores!(
    email_variants_share_one_budget,
    case_and_formatting_variants_of_one_identity_share_one_budget_memory,
    case_and_formatting_variants_of_one_identity_share_one_budget_redis
);

async fn per_ip_request_limit(store: Arc<dyn Store>) {
    let mut c = config();
    c.limits.request_per_ip = LimitPolicy::per_secs("request_ip", 3, 600);
    let (service, _) = service(c, store);
    let now = mid_window_now();
    let ctx = ip("203.0.113.7");
    for i in 0..3 {
        service
            .request_otp_at(&format!("user{i}"), &ctx, now)
            .await
            .unwrap();
    }
    assert_limited(
        service.request_otp_at("user9", &ctx, now).await,
        "request_ip",
        LimitedOperation::Request,
        3,
        600,
    );
    // Another address, IPv6 included, and a caller without an address are not
    // affected.
    service
        .request_otp_at("user9", &ip("203.0.113.8"), now)
        .await
        .unwrap();
    service
        .request_otp_at("user9", &ip("2001:db8::1"), now)
        .await
        .unwrap();
    service
        .request_otp_at("user9", &RequestContext::default(), now)
        .await
        .unwrap();
    // The verify limits are separate budgets.
    assert_invalid_otp(
        service
            .verify_otp_at("user1", "000000", &ctx, VerifyOptions::new(), now)
            .await,
    );
}
on_both_stores!(
    per_ip_request_limit,
    per_ip_request_limit_trips_exactly_at_its_value_memory,
    per_ip_request_limit_trips_exactly_at_its_value_redis
);

async fn per_ip_verify_limit(store: Arc<dyn Store>) {
    let mut c = config();
    c.limits.verify_per_ip = LimitPolicy::per_secs("verify_ip", 3, 600);
    let (service, outbox) = service(c, store);
    let now = mid_window_now();
    let ctx = ip("198.51.100.20");
    for i in 0..3 {
        assert_invalid_otp(
            service
                .verify_otp_at(
                    &format!("v{i}@example.com"),
                    "000000",
                    &ctx,
                    VerifyOptions::new(),
                    now,
                )
                .await,
        );
    }
    // A fourth identity from the same address, even with its correct code.
    service
        .request_otp_at("v9@example.com", &RequestContext::default(), now)
        .await
        .unwrap();
    let code = outbox.last_code("v9@example.com");
    assert_limited(
        service
            .verify_otp_at("v9@example.com", &code, &ctx, VerifyOptions::new(), now)
            .await,
        "verify_ip",
        LimitedOperation::Verify,
        3,
        600,
    );
    // From another address it verifies.
    service
        .verify_otp_at(
            "v9@example.com",
            &code,
            &ip("198.51.100.21"),
            VerifyOptions::new(),
            now,
        )
        .await
        .unwrap();
}
on_both_stores!(
    per_ip_verify_limit,
    per_ip_verify_limit_trips_exactly_at_its_value_memory,
    per_ip_verify_limit_trips_exactly_at_its_value_redis
);

async fn daily_verify_limit(store: Arc<dyn Store>) {
    let mut c = config();
    c.limits.verify_daily = LimitPolicy::per_secs("verify_daily", 3, 86_400);
    let (service, outbox) = service(c, store);
    let ctx = RequestContext::default();
    let now = mid_window_now();
    let id = "day@example.com";
    // Three successful verifies: each clears the 10-minute budget, none the
    // daily one.
    for i in 0..3 {
        service.request_otp_at(id, &ctx, now + i).await.unwrap();
        let code = outbox.last_code(id);
        service
            .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now + i)
            .await
            .unwrap();
    }
    service.request_otp_at(id, &ctx, now + 5).await.unwrap();
    let code = outbox.last_code(id);
    assert_limited(
        service
            .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now + 5)
            .await,
        "verify_daily",
        LimitedOperation::Verify,
        3,
        86_400,
    );
    // Wrong codes count too: another identity trips after 3 wrong ones.
    for _ in 0..3 {
        assert_invalid_otp(
            service
                .verify_otp_at("night", "000000", &ctx, VerifyOptions::new(), now)
                .await,
        );
    }
    assert_limited(
        service
            .verify_otp_at("night", "000000", &ctx, VerifyOptions::new(), now)
            .await,
        "verify_daily",
        LimitedOperation::Verify,
        3,
        86_400,
    );
}
on_both_stores!(
    daily_verify_limit,
    daily_verify_limit_trips_exactly_at_its_value_and_survives_success_memory,
    daily_verify_limit_trips_exactly_at_its_value_and_survives_success_redis
);

async fn global_send_limit(store: Arc<dyn Store>) {
    let mut c = config();
    c.limits.global_send = LimitPolicy::per_secs("global_send", 3, 3600);
    let (service, outbox) = service(c, store);
    let now = mid_window_now();
    for i in 0..3 {
        service
            .request_otp_at(
                &format!("+4420794600{i:02}"),
                &ip(&format!("192.0.2.{i}")),
                now,
            )
            .await
            .unwrap();
    }
    // A new identity from a new address: only the global budget is spent.
    assert_limited(
        service
            .request_otp_at("+442079460099", &ip("192.0.2.99"), now)
            .await,
        "global_send",
        LimitedOperation::Request,
        3,
        3600,
    );
    assert_eq!(outbox.total(), 3, "nothing is sent past the global limit");
    let labels = otp_service::metrics::LimitLabels {
        limit: "global_send",
    };
    assert_eq!(
        service.metrics().rate_limited.get_or_create(&labels).get(),
        1
    );
}
on_both_stores!(
    global_send_limit,
    global_send_limit_trips_exactly_at_its_value_memory,
    global_send_limit_trips_exactly_at_its_value_redis
);

async fn correct_code_while_limited(store: Arc<dyn Store>) {
    let mut c = config();
    // A 2-second window so the test can wait it out.
    c.limits.verify_per_identity = LimitPolicy {
        name: "verify_identity",
        max: 3,
        window: Duration::from_secs(2),
    };
    let (service, outbox) = service(c, store);
    let ctx = RequestContext::default();
    let now = mid_window_now();
    let id = "limited@example.com";
    service.request_otp_at(id, &ctx, now).await.unwrap();
    let code = outbox.last_code(id);
    let wrong = wrong_code(&code);
    for left in [2, 1, 0] {
        assert_eq!(
            assert_invalid_otp(
                service
                    .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), now)
                    .await
            ),
            left
        );
    }
    let retry = assert_limited(
        service
            .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now)
            .await,
        "verify_identity",
        LimitedOperation::Verify,
        3,
        2,
    );
    // Denied attempts are not recorded and did not spend the code: after
    // Retry-After the same correct code verifies.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let ok = service
        .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    assert_eq!(ok.rate_limit.remaining, 3, "success restores the budget");
}
on_both_stores!(
    correct_code_while_limited,
    correct_code_while_verify_limit_is_exhausted_is_still_rate_limited_memory,
    correct_code_while_verify_limit_is_exhausted_is_still_rate_limited_redis
);

async fn success_clears_verify_budget(store: Arc<dyn Store>) {
    let mut c = config();
    c.limits.verify_per_identity = LimitPolicy::per_secs("verify_identity", 3, 600);
    let (service, outbox) = service(c, store);
    let ctx = RequestContext::default();
    let now = mid_window_now();
    let id = "clear@example.com";
    service.request_otp_at(id, &ctx, now).await.unwrap();
    let code = outbox.last_code(id);
    let wrong = wrong_code(&code);
    assert_invalid_otp(
        service
            .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), now)
            .await,
    );
    assert_invalid_otp(
        service
            .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), now)
            .await,
    );
    // Third attempt of 3: correct; the budget is cleared.
    service
        .verify_otp_at(id, &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    // Without the clear, the next attempt would be refused; with it, three
    // more attempts are allowed and the fourth is refused.
    for left in [2, 1, 0] {
        assert_eq!(
            assert_invalid_otp(
                service
                    .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), now)
                    .await
            ),
            left
        );
    }
    assert_limited(
        service
            .verify_otp_at(id, &wrong, &ctx, VerifyOptions::new(), now)
            .await,
        "verify_identity",
        LimitedOperation::Verify,
        3,
        600,
    );
}
on_both_stores!(
    success_clears_verify_budget,
    successful_verify_clears_the_identity_verify_budget_memory,
    successful_verify_clears_the_identity_verify_budget_redis
);
