//! Single use, the per-code attempt budget and the abuse limits (SPEC §3.3,
//! §5, §6), exercised over HTTP with the memory store: replays, concurrent
//! submissions on a real server, identity variants, per-IP limits behind
//! trusted and untrusted proxies, daily and global limits.

use std::net::SocketAddr;

use crate::support::*;
use actix_web::test::TestRequest;
use otp_core::OtpPolicy;
use otp_http::HttpConfig;
use otp_ratelimit::LimitPolicy;
use otp_service::Limits;

const ID: &str = "carol@example.com";
const VERIFY_MSG: &str = "Too many verification attempts. Please request a new OTP.";
const REQUEST_MSG: &str = "Too many OTP requests. Please wait before requesting again.";

/// One-hour OTP windows, so no test crosses a window boundary mid-way.
fn long_windows() -> OtpPolicy {
    OtpPolicy::builder().window_seconds(3600).build().unwrap()
}

fn peer(ip: &str) -> SocketAddr {
    format!("{ip}:40000").parse().unwrap()
}

#[track_caller]
fn assert_retry_after(r: &Reply, max: u64) {
    let v: u64 = r
        .header("retry-after")
        .expect("429 carries Retry-After")
        .parse()
        .unwrap();
    assert!((1..=max).contains(&v), "Retry-After {v}");
}

// ------------------------------------------------------------ single use

#[actix_web::test]
async fn replay_is_400_and_a_new_request_gives_a_fresh_code_that_verifies() {
    let h = Setup {
        policy: long_windows(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let first = obtain_code(&h, &app, ID, ID).await;
    assert_eq!(send(&app, verify_otp(ID, &first)).await.status, 200);
    let r = send(&app, verify_otp(ID, &first)).await;
    r.assert_error(400, "otp_invalid", Some("Invalid or expired OTP."));

    let second = obtain_code(&h, &app, ID, ID).await;
    assert_ne!(first, second, "same window, but the use counter moved on");
    assert_eq!(send(&app, verify_otp(ID, &second)).await.status, 200);
    assert_eq!(send(&app, verify_otp(ID, &second)).await.status, 400);
    assert_eq!(send(&app, verify_otp(ID, &first)).await.status, 400);
}

#[actix_web::test]
async fn requesting_again_before_verifying_resends_the_same_code() {
    // Within one window and before any verify, the use counter has not
    // moved: a resend delivers the same code, and it verifies once.
    let h = Setup {
        policy: long_windows(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let a = obtain_code(&h, &app, ID, ID).await;
    let b = obtain_code(&h, &app, ID, ID).await;
    assert_eq!(a, b);
    assert_eq!(send(&app, verify_otp(ID, &a)).await.status, 200);
    assert_eq!(send(&app, verify_otp(ID, &b)).await.status, 400);
}

#[actix_web::test]
async fn sixteen_simultaneous_verifies_of_one_code_yield_exactly_one_200() {
    let h = Setup {
        policy: long_windows(),
        limits: Limits {
            // room for all 16, so every loser is a replay (400), not a 429
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 100, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let server = h.serve();
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/api/v1/otp/request"))
        .json(&serde_json::json!({ "identity": ID }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let code = h.outbox.last_code(ID);
    let body = serde_json::json!({ "identity": ID, "otp": code });
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

// ------------------------------------------------------- attempt budget

#[actix_web::test]
async fn after_max_attempts_wrong_codes_the_delivered_code_is_void() {
    let h = Setup {
        policy: long_windows(),
        max_attempts: 3,
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..3 {
        let r = send(&app, verify_otp(ID, &wrong_code(&code))).await;
        assert_eq!(r.status, 400);
    }
    let r = send(&app, verify_otp(ID, &code)).await;
    r.assert_error(400, "otp_invalid", Some("Invalid or expired OTP."));
    let fresh = obtain_code(&h, &app, ID, ID).await;
    assert_ne!(fresh, code);
    assert_eq!(send(&app, verify_otp(ID, &fresh)).await.status, 200);
}

#[actix_web::test]
async fn fewer_wrong_codes_than_the_budget_leave_the_code_valid() {
    let h = Setup {
        policy: long_windows(),
        max_attempts: 3,
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..2 {
        assert_eq!(
            send(&app, verify_otp(ID, &wrong_code(&code))).await.status,
            400
        );
    }
    assert_eq!(send(&app, verify_otp(ID, &code)).await.status, 200);
}

#[actix_web::test]
async fn default_budget_is_five_wrong_codes() {
    let h = Setup {
        policy: long_windows(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..5 {
        send(&app, verify_otp(ID, &wrong_code(&code))).await;
    }
    assert_eq!(send(&app, verify_otp(ID, &code)).await.status, 400);
}

// ------------------------------------------------------------ limits

#[actix_web::test]
async fn case_and_format_variants_of_one_identity_share_one_budget() {
    let h = Setup {
        limits: Limits {
            request_per_identity: LimitPolicy::per_secs("request_identity", 3, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    for v in [
        "Dave@Example.com",
        "dave@example.com",
        "  DAVE@EXAMPLE.COM ",
    ] {
        assert_eq!(send(&app, request_otp(v)).await.status, 200, "{v}");
    }
    let r = send(&app, request_otp("dAvE@eXample.Com")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
    assert_retry_after(&r, 600);
    assert_eq!(h.outbox.count("dave@example.com"), 3);

    for v in ["+1 (555) 123-4567", "+15551234567", "+1.555.123.4567"] {
        assert_eq!(send(&app, request_otp(v)).await.status, 200, "{v}");
    }
    let r = send(&app, request_otp("+1-555-123-4567")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
    assert_eq!(h.outbox.count("+15551234567"), 3);
}

#[actix_web::test]
async fn verify_attempts_of_variants_share_one_budget() {
    let h = Setup {
        limits: Limits {
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 2, 600),
            ..Limits::default()
        },
        max_attempts: 0,
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    let wrong = wrong_code(&code);
    assert_eq!(
        send(&app, verify_otp("Carol@Example.com", &wrong))
            .await
            .status,
        400
    );
    assert_eq!(
        send(&app, verify_otp(" CAROL@example.com", &wrong))
            .await
            .status,
        400
    );
    let r = send(&app, verify_otp("carol@EXAMPLE.com", &wrong)).await;
    r.assert_error(429, "rate_limit_exceeded", Some(VERIFY_MSG));
}

#[actix_web::test]
async fn per_ip_request_limit_trips_for_one_peer_only() {
    let h = Setup {
        limits: Limits {
            request_per_ip: LimitPolicy::per_secs("request_ip", 2, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let from = |ip: &str, id: &str| request_otp(id).peer_addr(peer(ip));
    assert_eq!(send(&app, from("203.0.113.5", "u1")).await.status, 200);
    assert_eq!(send(&app, from("203.0.113.5", "u2")).await.status, 200);
    let r = send(&app, from("203.0.113.5", "u3")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
    assert_retry_after(&r, 600);
    assert_eq!(r.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(send(&app, from("203.0.113.6", "u3")).await.status, 200);
    assert_eq!(h.outbox.count("u3"), 1);
}

#[actix_web::test]
async fn per_ip_verify_limit_trips() {
    let h = Setup {
        limits: Limits {
            verify_per_ip: LimitPolicy::per_secs("verify_ip", 2, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let ip = peer("198.51.100.77");
    for id in ["v1", "v2"] {
        let r = send(&app, verify_otp(id, "123456").peer_addr(ip)).await;
        assert_eq!(r.status, 400, "{id}");
    }
    let r = send(&app, verify_otp("v3", "123456").peer_addr(ip)).await;
    r.assert_error(429, "rate_limit_exceeded", Some(VERIFY_MSG));
    assert_retry_after(&r, 600);
}

/// A harness allowing one OTP request per client IP per 600 s, trusting the
/// `trusted` proxies.
fn one_request_per_ip(trusted: &[&str]) -> Harness {
    Setup {
        limits: Limits {
            request_per_ip: LimitPolicy::per_secs("request_ip", 1, 600),
            ..Limits::default()
        },
        http: HttpConfig {
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build()
}

#[actix_web::test]
async fn a_trusted_proxys_forwarded_for_names_the_client() {
    let h = one_request_per_ip(&["10.0.0.0/8"]);
    let app = h.app().await;
    let via_proxy = |xff: &str, id: &str| {
        request_otp(id)
            .peer_addr(peer("10.0.0.2"))
            .insert_header(("X-Forwarded-For", xff.to_owned()))
    };
    // two clients behind one proxy: separate budgets
    assert_eq!(
        send(&app, via_proxy("198.51.100.1", "p1")).await.status,
        200
    );
    assert_eq!(
        send(&app, via_proxy("198.51.100.2", "p2")).await.status,
        200
    );
    // the first client again, also through a second trusted hop
    let r = send(&app, via_proxy("198.51.100.1, 10.9.9.9", "p3")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
    // a client-written left-most hop does not buy a new budget
    let r = send(&app, via_proxy("6.6.6.6, 198.51.100.2", "p4")).await;
    assert_eq!(r.status, 429, "{}", r.text());
    // without a header the proxy itself is the client
    assert_eq!(
        send(&app, request_otp("p5").peer_addr(peer("10.0.0.2")))
            .await
            .status,
        200
    );
}

// See: issue 13 item 2 (`::ffff:a.b.c.d` had its own per-IP budget).
#[actix_web::test]
async fn a_v4_mapped_peer_shares_the_per_ip_budget_of_its_ipv4_address() {
    let h = one_request_per_ip(&[]);
    let app = h.app().await;
    let from = |ip: &str, id: &str| request_otp(id).peer_addr(ip.parse().unwrap());
    assert_eq!(
        send(&app, from("203.0.113.5:40000", "m1")).await.status,
        200
    );
    // the same client seen through a dual-stack socket bound to [::]
    let r = send(&app, from("[::ffff:203.0.113.5]:40001", "m2")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
}

// See: issue 13 item 2 (TRUSTED_PROXIES did not match IPv4 proxies seen as
// v4-mapped peers when bound to `[::]`).
#[actix_web::test]
async fn an_ipv4_trusted_proxy_seen_as_a_v4_mapped_peer_is_trusted() {
    let h = one_request_per_ip(&["10.0.0.0/8"]);
    let app = h.app().await;
    let via_proxy = |xff: &str, id: &str| {
        request_otp(id)
            .peer_addr("[::ffff:10.0.0.2]:40000".parse().unwrap())
            .insert_header(("X-Forwarded-For", xff.to_owned()))
    };
    // two clients behind the proxy: two budgets (the proxy is trusted)
    assert_eq!(
        send(&app, via_proxy("198.51.100.1", "t1")).await.status,
        200
    );
    assert_eq!(
        send(&app, via_proxy("198.51.100.2", "t2")).await.status,
        200
    );
    // a client's hop written v4-mapped is the same client
    let r = send(&app, via_proxy("::ffff:198.51.100.1", "t3")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
}

#[actix_web::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let h = one_request_per_ip(&["10.0.0.0/8"]);
    let app = h.app().await;
    let spoof = |xff: &str, id: &str| {
        request_otp(id)
            .peer_addr(peer("203.0.113.9"))
            .insert_header(("X-Forwarded-For", xff.to_owned()))
    };
    assert_eq!(send(&app, spoof("198.51.100.1", "s1")).await.status, 200);
    let r = send(&app, spoof("198.51.100.2", "s2")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
}

#[actix_web::test]
async fn the_daily_verify_limit_trips_at_its_configured_value() {
    let h = Setup {
        limits: Limits {
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 100, 600),
            verify_daily: LimitPolicy::per_secs("verify_daily", 3, 86_400),
            ..Limits::default()
        },
        max_attempts: 0,
        policy: long_windows(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..3 {
        assert_eq!(
            send(&app, verify_otp(ID, &wrong_code(&code))).await.status,
            400
        );
    }
    let r = send(&app, verify_otp(ID, &code)).await;
    r.assert_error(429, "rate_limit_exceeded", Some(VERIFY_MSG));
    assert_retry_after(&r, 86_400);
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(r.header("x-ratelimit-window"), Some("86400"));
}

#[actix_web::test]
async fn the_global_send_limit_trips_at_its_configured_value() {
    let h = Setup {
        limits: Limits {
            global_send: LimitPolicy::per_secs("global_send", 2, 3600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    assert_eq!(send(&app, request_otp("g1")).await.status, 200);
    assert_eq!(send(&app, request_otp("g2")).await.status, 200);
    let r = send(&app, request_otp("g3")).await;
    r.assert_error(429, "rate_limit_exceeded", Some(REQUEST_MSG));
    assert_retry_after(&r, 3600);
    assert_eq!(h.outbox.count("g3"), 0);
}

#[actix_web::test]
async fn a_correct_code_while_limited_is_still_429() {
    let h = Setup {
        limits: Limits {
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 2, 600),
            ..Limits::default()
        },
        max_attempts: 0,
        policy: long_windows(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..2 {
        send(&app, verify_otp(ID, &wrong_code(&code))).await;
    }
    let r = send(&app, verify_otp(ID, &code)).await;
    r.assert_error(429, "rate_limit_exceeded", Some(VERIFY_MSG));
    assert_retry_after(&r, 600);
    assert!(!r.text().contains("access_token"));
}

#[actix_web::test]
async fn a_successful_verify_restores_the_identity_verify_budget() {
    let h = Setup {
        limits: Limits {
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 3, 600),
            ..Limits::default()
        },
        max_attempts: 0,
        policy: long_windows(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let code = obtain_code(&h, &app, ID, ID).await;
    for _ in 0..2 {
        send(&app, verify_otp(ID, &wrong_code(&code))).await;
    }
    let r = send(&app, verify_otp(ID, &code)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rate_limit_remaining"], 3);
    for _ in 0..3 {
        assert_eq!(send(&app, verify_otp(ID, "000000")).await.status, 400);
    }
    assert_eq!(send(&app, verify_otp(ID, "000000")).await.status, 429);
}

#[actix_web::test]
async fn requests_without_a_peer_address_skip_only_the_per_ip_limits() {
    // An in-process TestRequest has no peer: the identity limit still holds.
    let h = Setup {
        limits: Limits {
            request_per_ip: LimitPolicy::per_secs("request_ip", 1, 600),
            request_per_identity: LimitPolicy::per_secs("request_identity", 2, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let req = || {
        TestRequest::post()
            .uri("/api/v1/otp/request")
            .set_json(serde_json::json!({"identity": "n1"}))
    };
    assert_eq!(send(&app, req()).await.status, 200);
    assert_eq!(send(&app, req()).await.status, 200);
    assert_eq!(send(&app, req()).await.status, 429);
}
