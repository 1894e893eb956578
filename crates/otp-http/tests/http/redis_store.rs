//! The API over a real Redis (`redis-server` started per test by
//! `otp_testkit`): 503 `backend_unavailable` while Redis is down
//! and recovery without rebuilding the app, single use across concurrent
//! requests and across two replicas sharing one Redis.
//!
//! Skipped (with a message) when `redis-server` is missing, unless
//! `OTP_E2E_REQUIRE_ALL=1`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use actix_web::test::TestRequest;
use otp_core::OtpPolicy;
use otp_ratelimit::{LimitPolicy, RedisConfig, RedisStore, Store};
use otp_service::Limits;
use otp_testkit::started_redis_or_skip;
use serde_json::json;

const ID: &str = "erin@example.com";

async fn redis_store(url: String) -> Arc<dyn Store> {
    Arc::new(
        RedisStore::connect(RedisConfig::new(vec![url], vec![7u8; 32]))
            .await
            .expect("connect to the test redis-server"),
    )
}

fn long_windows() -> OtpPolicy {
    OtpPolicy::builder().window_seconds(3600).build().unwrap()
}

#[actix_web::test]
async fn redis_outage_is_503_and_the_same_app_recovers_when_redis_returns() {
    let Some(mut redis) = started_redis_or_skip("redis_outage_is_503") else {
        return;
    };
    let h = Setup {
        store: Some(redis_store(redis.url()).await),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/readyz")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ready", "store": "redis"}));
    let token = login(&h, &app, ID).await;

    redis.stop();
    let r = send(&app, request_otp(ID)).await;
    r.assert_error(503, "backend_unavailable", None);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = send(&app, verify_otp(ID, "123456")).await;
    r.assert_error(503, "backend_unavailable", None);
    let r = send(&app, TestRequest::get().uri("/readyz")).await;
    r.assert_error(503, "backend_unavailable", None);
    // liveness and the token routes never touch Redis
    assert_eq!(
        send(&app, TestRequest::get().uri("/healthz")).await.status,
        200
    );
    assert_eq!(
        send(&app, TestRequest::get().uri("/health")).await.status,
        200
    );
    let r = send(&app, bearer(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(
        &app,
        post_json("/api/v1/token/introspect", json!({ "token": token })),
    )
    .await;
    assert_eq!(r.json()["active"], true);
    // the outage shows in /metrics
    let m = send(&app, TestRequest::get().uri("/metrics")).await.text();
    assert!(
        metric_with(&m, "otp_store_errors_total", "op=") >= 2.0,
        "{m}"
    );

    redis.restart().expect("restart redis-server");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = send(&app, TestRequest::get().uri("/readyz")).await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {} 15 s after Redis returned",
            r.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let code = obtain_code(&h, &app, ID, ID).await;
    assert_eq!(send(&app, verify_otp(ID, &code)).await.status, 200);
}

#[actix_web::test]
async fn sixteen_simultaneous_verifies_with_redis_yield_exactly_one_200() {
    let Some(redis) = started_redis_or_skip("sixteen_simultaneous_verifies_with_redis") else {
        return;
    };
    let h = Setup {
        policy: long_windows(),
        limits: Limits {
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 100, 600),
            ..Limits::default()
        },
        store: Some(redis_store(redis.url()).await),
        ..Setup::default()
    }
    .build();
    let server = h.serve();
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/api/v1/otp/request"))
        .json(&json!({ "identity": ID }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json!({ "identity": ID, "otp": h.outbox.last_code(ID) });
    let attempts = (0..16).map(|_| {
        client
            .post(server.url("/api/v1/otp/verify"))
            .json(&body)
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 400).count(),
        15,
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn two_replicas_on_one_redis_share_single_use_and_limits() {
    let Some(redis) = started_redis_or_skip("two_replicas_on_one_redis") else {
        return;
    };
    let limits = Limits {
        request_per_identity: LimitPolicy::per_secs("request_identity", 2, 600),
        ..Limits::default()
    };
    let a = Setup {
        policy: long_windows(),
        limits,
        store: Some(redis_store(redis.url()).await),
        ..Setup::default()
    }
    .build();
    let b = Setup {
        policy: long_windows(),
        limits,
        store: Some(redis_store(redis.url()).await),
        ..Setup::default()
    }
    .build();
    let (app_a, app_b) = (a.app().await, b.app().await);
    let code = obtain_code(&a, &app_a, ID, ID).await;
    assert_eq!(send(&app_b, verify_otp(ID, &code)).await.status, 200);
    let r = send(&app_a, verify_otp(ID, &code)).await;
    r.assert_error(400, "otp_invalid", Some("Invalid or expired OTP."));
    // the send budget is shared too: one left after A's request, then none
    assert_eq!(send(&app_b, request_otp(ID)).await.status, 200);
    let r = send(&app_a, request_otp(ID)).await;
    r.assert_error(429, "rate_limit_exceeded", None);
    assert!(r.header("retry-after").is_some());
}
