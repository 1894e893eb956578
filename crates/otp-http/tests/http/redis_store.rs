//! The API over a real Redis (`redis-server` started per test by
//! `otp_testkit`): 503 `backend_unavailable` on the OTP routes while Redis
//! is down, `/readyz` still 200 with `store_status: unavailable` (503 with
//! `READYZ_REQUIRES_STORE`), a store built while Redis is down serving once
//! it starts, recovery without rebuilding the app, single use across
//! concurrent requests and across two replicas sharing one Redis.
//!
//! Skipped (with a message) when `redis-server` is missing, unless
//! `OTP_E2E_REQUIRE_ALL=1`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use actix_web::test::TestRequest;
use otp_core::OtpPolicy;
use otp_http::HttpConfig;
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

/// Polls `/readyz` until its `store_status` is `want` (at most 15 s).
async fn await_store_status<S, B>(app: &S, want: &str)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = send(app, TestRequest::get().uri("/readyz")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        if r.json()["store_status"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz store_status still {} after 15 s",
            r.json()["store_status"]
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn redis_outage_keeps_readyz_200_with_store_status_unavailable_while_the_otp_routes_503() {
    let Some(mut redis) = started_redis_or_skip("redis_outage_keeps_readyz_200") else {
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
    assert_eq!(
        r.json(),
        json!({"status": "ready", "store": "redis", "store_status": "ok"})
    );
    let m = send(&app, TestRequest::get().uri("/metrics")).await.text();
    assert!(m.contains("\notp_store_up 1\n"), "{m}");
    let token = login(&h, &app, ID).await;

    redis.stop();
    let r = send(&app, request_otp(ID)).await;
    r.assert_error(503, "backend_unavailable", None);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = send(&app, verify_otp(ID, "123456")).await;
    r.assert_error(503, "backend_unavailable", None);
    // readiness is about this process: the replica stays in rotation
    let r = send(&app, TestRequest::get().uri("/readyz")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": "ready", "store": "redis", "store_status": "unavailable"})
    );
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
    assert!(m.contains("\notp_store_up 0\n"), "{m}");

    redis.restart().expect("restart redis-server");
    await_store_status(&app, "ok").await;
    let m = send(&app, TestRequest::get().uri("/metrics")).await.text();
    assert!(m.contains("\notp_store_up 1\n"), "{m}");
    let code = obtain_code(&h, &app, ID, ID).await;
    assert_eq!(send(&app, verify_otp(ID, &code)).await.status, 200);
}

#[actix_web::test]
async fn readyz_requires_store_answers_503_while_redis_is_down() {
    let Some(mut redis) = started_redis_or_skip("readyz_requires_store") else {
        return;
    };
    let h = Setup {
        http: HttpConfig {
            readyz_requires_store: true,
            ..HttpConfig::default()
        },
        store: Some(redis_store(redis.url()).await),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    await_store_status(&app, "ok").await;
    redis.stop();
    let r = send(&app, TestRequest::get().uri("/readyz")).await;
    r.assert_error(503, "backend_unavailable", None);
    assert_eq!(r.header("retry-after"), Some("1"));
    redis.restart().expect("restart redis-server");
    let deadline = Instant::now() + Duration::from_secs(15);
    while send(&app, TestRequest::get().uri("/readyz")).await.status != 200 {
        assert!(Instant::now() < deadline, "/readyz still 503 after 15 s");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn a_store_built_while_redis_is_down_serves_once_redis_starts() {
    let Some(mut redis) = started_redis_or_skip("a_store_built_while_redis_is_down") else {
        return;
    };
    redis.stop();
    let store = RedisStore::connect_lazy(RedisConfig::new(vec![redis.url()], vec![7u8; 32]))
        .expect("a lazy store needs no Redis");
    let h = Setup {
        store: Some(Arc::new(store)),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let m = send(&app, TestRequest::get().uri("/metrics")).await.text();
    assert!(m.contains("\notp_store_up 0\n"), "{m}");
    await_store_status(&app, "unavailable").await;
    send(&app, request_otp(ID))
        .await
        .assert_error(503, "backend_unavailable", None);

    redis.restart().expect("start redis-server");
    await_store_status(&app, "ok").await;
    let code = obtain_code(&h, &app, ID, ID).await;
    assert_eq!(send(&app, verify_otp(ID, &code)).await.status, 200);
    // the first connection wrote the layout marker
    assert_eq!(
        redis.cli(&["GET", "otp:layout"]).unwrap().trim(),
        otp_ratelimit::redis::KEY_LAYOUT_VERSION.to_string()
    );
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
