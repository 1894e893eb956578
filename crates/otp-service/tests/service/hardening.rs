//! Issue 13 items 1, 2, 3, 10 and 11 as the service applies them, on the
//! memory store, a real standalone Redis and a real 3-master Redis Cluster
//! (where the per-IP and global keys live in other slots than the identity's
//! and the decision is reserve-then-release):
//!
//! - the limits of one request are one decision (nothing recorded unless
//!   every limit allows; `Retry-After` = the longest wait among the denials);
//! - per-IP limits count IPv6 clients per /64 and IPv4-mapped IPv6 as IPv4;
//! - the daily verify limit counts per identity and network, under a
//!   per-identity ceiling;
//! - the attempt budget holds at the clock-skew edge (an explicit `now`
//!   sweeps every second of the skew period) and a sign-in voids every
//!   outstanding code;
//! - round trips per verify (`INFO commandstats`).
//!
//! Each backend runs every scenario in one test (one Cluster start); the
//! scenario names are printed, and each uses its own store (a fresh memory
//! store or a fresh Redis key prefix).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::harness::{config, redis_store, service_with, wrong_code, Outbox};
use otp_core::unix_now;
use otp_ratelimit::{CounterRead, LimitPolicy, MemoryStore, Store, StoreError};
use otp_service::{
    FailMode, OtpService, RequestContext, ServiceConfig, ServiceError, VerifyOptions,
};
use otp_testkit as testkit;

type StoreFactory = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Store>>>>>;

fn ip(s: &str) -> RequestContext {
    RequestContext::with_ip(s.parse::<IpAddr>().unwrap())
}

/// The start of an OTP window (300 s) well in the past, so every instant a
/// scenario uses is in the past too.
fn window_start() -> u64 {
    (unix_now() / 300) * 300 - 3000
}

fn limited_by<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> (&'static str, u64) {
    match r {
        Err(ServiceError::RateLimited {
            limit,
            retry_after_secs,
            ..
        }) => (limit, retry_after_secs),
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

fn is_invalid_otp<T>(r: &Result<T, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::InvalidOtp { .. }))
}

async fn build(
    stores: &StoreFactory,
    edit: impl FnOnce(&mut ServiceConfig),
) -> (OtpService, Arc<Outbox>) {
    let mut c = config();
    edit(&mut c);
    let outbox = Outbox::new();
    (service_with(c, stores().await, outbox.clone()), outbox)
}

/// Runs every scenario against stores made by `stores`.
async fn run_all(stores: StoreFactory, backend: &str) {
    macro_rules! scenario {
        ($f:ident) => {
            eprintln!("[{backend}] {}", stringify!($f));
            $f(&stores).await;
        };
    }
    scenario!(identity_limit_denial_spends_no_per_ip_budget);
    scenario!(per_ip_denial_costs_the_identity_nothing);
    scenario!(retry_after_is_the_longest_wait_among_the_limits_that_denied);
    scenario!(ipv6_clients_share_one_per_ip_budget_per_64);
    scenario!(ipv4_mapped_ipv6_counts_as_its_ipv4_address);
    scenario!(a_stranger_on_another_network_cannot_lock_a_known_user_out_for_a_day);
    scenario!(the_per_identity_daily_ceiling_binds_across_networks);
    scenario!(no_timing_in_the_skew_period_gives_more_than_the_budget_of_wrong_tries);
    scenario!(a_sign_in_voids_every_outstanding_code_of_the_identity);
    scenario!(a_guess_counted_beyond_the_budget_is_not_compared);
    scenario!(a_sign_in_gives_the_next_code_a_full_budget);
}

// See: issue 13 item 1 (one user locks out a whole office).
async fn identity_limit_denial_spends_no_per_ip_budget(stores: &StoreFactory) {
    let (service, outbox) = build(stores, |c| {
        c.limits.request_per_ip = LimitPolicy::per_secs("request_ip", 3, 600);
        c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 1, 600);
        c.limits.verify_per_ip = LimitPolicy::per_secs("verify_ip", 3, 600);
        c.limits.verify_per_identity = LimitPolicy::per_secs("verify_identity", 1, 600);
    })
    .await;
    let office = ip("203.0.113.10");
    let now = window_start() + 100;
    // 25 "resend" clicks for one address: one send, 24 denials by its own
    // limit that cost the office nothing.
    service.request_otp_at("alice", &office, now).await.unwrap();
    for _ in 0..24 {
        let (limit, _) = limited_by(service.request_otp_at("alice", &office, now).await);
        assert_eq!(limit, "request_identity");
    }
    for who in ["bob", "carol"] {
        service.request_otp_at(who, &office, now).await.unwrap();
    }
    let (limit, _) = limited_by(service.request_otp_at("dave", &office, now).await);
    assert_eq!(limit, "request_ip", "the office used exactly its 3 sends");
    assert_eq!(outbox.total(), 3);
    // The same for verifies.
    let wrong = wrong_code(&outbox.last_code("alice"));
    assert!(is_invalid_otp(
        &service
            .verify_otp_at("alice", &wrong, &office, VerifyOptions::new(), now)
            .await
    ));
    for _ in 0..24 {
        let r = service
            .verify_otp_at("alice", &wrong, &office, VerifyOptions::new(), now)
            .await;
        assert_eq!(limited_by(r).0, "verify_identity");
    }
    for who in ["bob", "carol"] {
        let wrong = wrong_code(&outbox.last_code(who));
        let r = service
            .verify_otp_at(who, &wrong, &office, VerifyOptions::new(), now)
            .await;
        assert!(is_invalid_otp(&r), "{who}: {r:?}");
    }
    let r = service
        .verify_otp_at("dave", "123456", &office, VerifyOptions::new(), now)
        .await;
    assert_eq!(limited_by(r).0, "verify_ip");
}

async fn per_ip_denial_costs_the_identity_nothing(stores: &StoreFactory) {
    let (service, _outbox) = build(stores, |c| {
        c.limits.request_per_ip = LimitPolicy::per_secs("request_ip", 1, 600);
        c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 2, 600);
    })
    .await;
    let now = window_start() + 100;
    let busy = ip("198.51.100.1");
    service.request_otp_at("other", &busy, now).await.unwrap();
    for _ in 0..5 {
        let (limit, _) = limited_by(service.request_otp_at("erin", &busy, now).await);
        assert_eq!(limit, "request_ip");
    }
    let sent = service
        .request_otp_at("erin", &ip("198.51.100.2"), now)
        .await
        .unwrap();
    assert_eq!(
        sent.rate_limit.remaining, 1,
        "the per-IP denials recorded nothing for erin"
    );
}

async fn retry_after_is_the_longest_wait_among_the_limits_that_denied(stores: &StoreFactory) {
    let (service, _outbox) = build(stores, |c| {
        c.limits.request_per_ip = LimitPolicy::per_secs("request_ip", 1, 60);
        c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 1, 600);
    })
    .await;
    let now = window_start() + 100;
    let here = ip("192.0.2.77");
    service.request_otp_at("frank", &here, now).await.unwrap();
    let (limit, retry) = limited_by(service.request_otp_at("frank", &here, now).await);
    assert_eq!(limit, "request_identity", "the longer of the two waits");
    assert!((590..=600).contains(&retry), "Retry-After {retry}");
}

// See: issue 13 item 2 (per-IP limits are per address string).
async fn ipv6_clients_share_one_per_ip_budget_per_64(stores: &StoreFactory) {
    let (service, _outbox) = build(stores, |c| {
        c.limits.request_per_ip = LimitPolicy::per_secs("request_ip", 2, 600);
    })
    .await;
    let now = window_start() + 100;
    for (i, addr) in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"]
        .iter()
        .enumerate()
    {
        service
            .request_otp_at(&format!("v6-{i}"), &ip(addr), now)
            .await
            .unwrap();
    }
    let (limit, _) = limited_by(
        service
            .request_otp_at("v6-x", &ip("2001:db8:1:2:abcd::9"), now)
            .await,
    );
    assert_eq!(limit, "request_ip", "a third address of the same /64");
    service
        .request_otp_at("v6-y", &ip("2001:db8:1:3::1"), now)
        .await
        .expect("another /64 has its own budget");
}

async fn ipv4_mapped_ipv6_counts_as_its_ipv4_address(stores: &StoreFactory) {
    let (service, _outbox) = build(stores, |c| {
        c.limits.verify_per_ip = LimitPolicy::per_secs("verify_ip", 2, 600);
    })
    .await;
    let now = window_start() + 100;
    for ctx in [ip("192.0.2.44"), ip("::ffff:192.0.2.44")] {
        let r = service
            .verify_otp_at("grace", "000000", &ctx, VerifyOptions::new(), now)
            .await;
        assert!(is_invalid_otp(&r) || r.is_ok(), "{r:?}");
    }
    let r = service
        .verify_otp_at(
            "grace",
            "000000",
            &ip("::ffff:192.0.2.44"),
            VerifyOptions::new(),
            now,
        )
        .await;
    assert_eq!(limited_by(r).0, "verify_ip");
}

// See: issue 13 item 11 (a stranger can lock a known user out for a day).
async fn a_stranger_on_another_network_cannot_lock_a_known_user_out_for_a_day(
    stores: &StoreFactory,
) {
    let (service, outbox) = build(stores, |c| {
        c.limits.verify_daily = LimitPolicy::per_secs("verify_daily", 3, 86_400);
    })
    .await;
    let now = window_start() + 100;
    let stranger = ip("198.51.100.66");
    for _ in 0..3 {
        let r = service
            .verify_otp_at("heidi", "000000", &stranger, VerifyOptions::new(), now)
            .await;
        assert!(is_invalid_otp(&r) || r.is_ok(), "{r:?}");
    }
    let r = service
        .verify_otp_at("heidi", "000000", &stranger, VerifyOptions::new(), now)
        .await;
    assert_eq!(
        limited_by(r).0,
        "verify_daily",
        "the stranger's network is done"
    );
    // Heidi, from her own network, signs in.
    let home = ip("2001:db8:77::5");
    service
        .request_otp_at("heidi", &home, now + 1)
        .await
        .unwrap();
    let code = outbox.last_code("heidi");
    service
        .verify_otp_at("heidi", &code, &home, VerifyOptions::new(), now + 1)
        .await
        .expect("a stranger's failures elsewhere do not lock heidi out");
}

async fn the_per_identity_daily_ceiling_binds_across_networks(stores: &StoreFactory) {
    let (service, _outbox) = build(stores, |c| {
        c.limits.verify_daily = LimitPolicy::per_secs("verify_daily", 3, 86_400);
        c.verify_daily_ceiling = LimitPolicy::per_secs("verify_daily_identity", 7, 86_400);
    })
    .await;
    let now = window_start() + 100;
    // Guesses from many networks: 7 in total get through, then nobody.
    let mut through = 0;
    for n in 0..5 {
        let net = ip(&format!("198.51.100.{}", 100 + n));
        for _ in 0..3 {
            match service
                .verify_otp_at("ivan", "000000", &net, VerifyOptions::new(), now)
                .await
            {
                Err(ServiceError::InvalidOtp { .. }) => through += 1,
                Err(ServiceError::RateLimited { limit, .. }) => {
                    assert_eq!(limit, "verify_daily_identity");
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(through, 7);
    let r = service
        .verify_otp_at(
            "ivan",
            "000000",
            &ip("203.0.113.200"),
            VerifyOptions::new(),
            now,
        )
        .await;
    assert_eq!(limited_by(r).0, "verify_daily_identity");
}

// See: issue 13 item 3 (the attempt budget leaks at the clock-skew edge).
//
// Code C of window w (use counter 0) is accepted from `start(w) - skew` to
// the end of `w + 1` (drift 1). `p` wrong guesses at one second before w
// starts, then C requested in w, then `q` more wrong guesses in `w + 1`
// (when `w - 1`, which the early guesses also counted against, has left the
// range): C must verify if and only if the wrong guesses it was compared
// with number under 5 — for every second of the skew period (the early
// guesses count) and a few instants before it (they do not), and every p.
// Before the fix the skew-period guesses did not count toward C: 4 + 4 = 8
// wrong tries at one code.
async fn no_timing_in_the_skew_period_gives_more_than_the_budget_of_wrong_tries(
    stores: &StoreFactory,
) {
    const MAX: u32 = 5;
    let (service, outbox) = build(stores, |_| {}).await;
    let start = window_start() + 300;
    let next = start + 300;
    let ctx = RequestContext::default();
    let mut case = 0u32;
    for before in (1..=30u64).chain([31, 60, 299]) {
        let counted = before <= 30;
        for p in 1..MAX {
            for q_extra in [0u32, 1] {
                case += 1;
                let id = format!("skew-{case}@example.com");
                for _ in 0..p {
                    let r = service
                        .verify_otp_at(&id, "000000", &ctx, VerifyOptions::new(), start - before)
                        .await;
                    assert!(is_invalid_otp(&r) || r.is_ok(), "{r:?}");
                }
                service.request_otp_at(&id, &ctx, start + 1).await.unwrap();
                let code = outbox.last_code(&id);
                let wrong = wrong_code(&code);
                // The further wrong tries the budget allows, plus q_extra.
                let left = if counted { MAX - 1 - p } else { MAX - 1 };
                let q = left + q_extra;
                for i in 0..q {
                    let t = next + 2 + u64::from(i);
                    let r = service
                        .verify_otp_at(&id, &wrong, &ctx, VerifyOptions::new(), t)
                        .await;
                    assert!(is_invalid_otp(&r), "{r:?}");
                }
                let r = service
                    .verify_otp_at(&id, &code, &ctx, VerifyOptions::new(), next + 20)
                    .await;
                let wrong_tries = if counted { p + q } else { q };
                assert_eq!(
                    r.is_ok(),
                    wrong_tries < MAX,
                    "{before} s before the window, {p} early guesses, {q} later: {r:?}"
                );
            }
        }
    }
}

// See: issue 13 item 3 (a second token from an old code).
async fn a_sign_in_voids_every_outstanding_code_of_the_identity(stores: &StoreFactory) {
    let (service, outbox) = build(stores, |_| {}).await;
    let ctx = RequestContext::default();
    let start = window_start() + 300;
    for use_newer in [true, false] {
        let id = format!("judy-{use_newer}");
        service
            .request_otp_at(&id, &ctx, start - 100)
            .await
            .unwrap();
        let older = outbox.last_code(&id);
        service.request_otp_at(&id, &ctx, start + 10).await.unwrap();
        let newer = outbox.last_code(&id);
        assert_ne!(older, newer);
        let (first, second) = if use_newer {
            (&newer, &older)
        } else {
            (&older, &newer)
        };
        service
            .verify_otp_at(&id, first, &ctx, VerifyOptions::new(), start + 20)
            .await
            .unwrap();
        let r = service
            .verify_otp_at(&id, second, &ctx, VerifyOptions::new(), start + 21)
            .await;
        assert!(
            is_invalid_otp(&r),
            "the other code is void after a sign-in: {r:?}"
        );
    }
}

/// Each verify counts its attempt in the limit decision, before the code
/// is compared (SPEC §3.3; docs/store.md): guesses in flight at once each
/// get a count of their own, and one whose count is past the budget is
/// refused without a comparison and writes nothing (the guess that reached
/// the budget voids the codes if it was wrong). Five attempts counted here
/// stand for five concurrent guesses whose outcome is not known yet.
async fn a_guess_counted_beyond_the_budget_is_not_compared(stores: &StoreFactory) {
    let store = stores().await;
    let outbox = Outbox::new();
    let service = service_with(config(), store.clone(), outbox.clone());
    let ctx = RequestContext::default();
    let now = window_start() + 100;
    let w = now / 300;
    service.request_otp_at("mia", &ctx, now).await.unwrap();
    let code = outbox.last_code("mia");
    let windows = [w - 1, w];
    let ttl = std::time::Duration::from_secs(900);
    let read = CounterRead::new("mia", &windows).counting_attempt(ttl);
    for n in 1..=5 {
        let c = store.check_all(&[], Some(read)).await.unwrap();
        assert_eq!(c.failures, Some(vec![n, n]));
    }
    let r = service
        .verify_otp_at("mia", &code, &ctx, VerifyOptions::new(), now + 1)
        .await;
    assert!(is_invalid_otp(&r), "the sixth try is not compared: {r:?}");
    assert_eq!(
        store.counters("mia", &windows).await.unwrap(),
        vec![0, 0],
        "and voids nothing"
    );
    // The fifth guess was wrong: it voids the codes. A new request sends a
    // new code, with a full budget.
    store.void_codes("mia", &windows, ttl).await.unwrap();
    service.request_otp_at("mia", &ctx, now + 2).await.unwrap();
    let fresh = outbox.last_code("mia");
    assert_ne!(fresh, code);
    for _ in 0..4 {
        let r = service
            .verify_otp_at(
                "mia",
                &wrong_code(&fresh),
                &ctx,
                VerifyOptions::new(),
                now + 3,
            )
            .await;
        assert!(is_invalid_otp(&r));
    }
    service
        .verify_otp_at("mia", &fresh, &ctx, VerifyOptions::new(), now + 3)
        .await
        .unwrap();
}

/// A sign-in voids every code and resets the attempt counts: the next code
/// of the same window gets the whole budget (5), not what the wrong codes
/// before the sign-in left of it.
async fn a_sign_in_gives_the_next_code_a_full_budget(stores: &StoreFactory) {
    let (service, outbox) = build(stores, |_| {}).await;
    let ctx = RequestContext::default();
    let now = window_start() + 100;
    for round in 0..2 {
        service
            .request_otp_at("nora", &ctx, now + round)
            .await
            .unwrap();
        let code = outbox.last_code("nora");
        for _ in 0..4 {
            let r = service
                .verify_otp_at(
                    "nora",
                    &wrong_code(&code),
                    &ctx,
                    VerifyOptions::new(),
                    now + round,
                )
                .await;
            assert!(is_invalid_otp(&r));
        }
        service
            .verify_otp_at("nora", &code, &ctx, VerifyOptions::new(), now + round)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the fifth try is the right code: {e:?}"));
    }
}

#[tokio::test]
async fn hardening_memory() {
    let stores: StoreFactory =
        Box::new(|| Box::pin(async { Arc::new(MemoryStore::default()) as Arc<dyn Store> }));
    run_all(stores, "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_redis_standalone() {
    let Some(redis) = testkit::redis_or_skip("hardening_redis_standalone") else {
        return;
    };
    let url = redis.url();
    let stores: StoreFactory = Box::new(move || {
        let url = url.clone();
        Box::pin(async move { Arc::new(redis_store(vec![url]).await) as Arc<dyn Store> })
    });
    run_all(stores, "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_redis_cluster() {
    let Some(cluster) = testkit::cluster_or_skip("hardening_redis_cluster") else {
        return;
    };
    let urls = cluster.urls();
    let stores: StoreFactory = Box::new(move || {
        let urls = urls.clone();
        Box::pin(async move { Arc::new(redis_store(urls).await) as Arc<dyn Store> })
    });
    run_all(stores, "cluster").await;
    // Round trips: a verify is the decision (with the per-IP window
    // reserved first in its own slot) and the failure record.
    let store = Arc::new(redis_store(cluster.urls()).await);
    let service = service_with(config(), store, Outbox::new());
    let ctx = ip("192.0.2.200");
    let now = window_start() + 100;
    let evalsha = || -> u64 { cluster.nodes().iter().map(evalsha_calls).sum() };
    // Every script loaded once (the first call of each answers NOSCRIPT):
    // wrong codes up to the budget, whose last voids.
    for _ in 0..5 {
        let _ = service
            .verify_otp_at("warm", "000000", &ctx, VerifyOptions::new(), now)
            .await;
    }
    let before = evalsha();
    for i in 0..10 {
        let r = service
            .verify_otp_at(&format!("rt{i}"), "000000", &ctx, VerifyOptions::new(), now)
            .await;
        assert!(is_invalid_otp(&r) || r.is_ok(), "{r:?}");
    }
    let per_verify = (evalsha() - before) as f64 / 10.0;
    eprintln!("Redis Cluster: {per_verify} EVALSHA per wrong-code verify with a client IP");
    assert_eq!(
        per_verify, 2.0,
        "reserve per-IP, identity decision (the attempt counted in it)"
    );
}

/// Issue 17 / SPEC §9: a verify costs at most 2 Redis round trips on
/// standalone, with the per-IP limit folded into the identity's script: a
/// wrong code 1 (its attempt is counted in the decision), a right code 2,
/// a wrong code that uses up the budget 2 (decision, void); a request 1.
#[tokio::test]
async fn a_verify_costs_two_redis_round_trips_on_standalone() {
    let Some(server) = testkit::started_redis_or_skip("a_verify_costs_two_redis_round_trips")
    else {
        return;
    };
    let store = Arc::new(redis_store(vec![server.url()]).await);
    let outbox = Outbox::new();
    let service = service_with(config(), store, outbox.clone());
    let ctx = ip("192.0.2.201");
    let now = window_start() + 100;
    service.request_otp_at("warm", &ctx, now).await.unwrap();
    let code = outbox.last_code("warm");
    service
        .verify_otp_at("warm", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    // Every script loaded once (the first call of each answers NOSCRIPT):
    // wrong codes up to the budget, whose last voids.
    for _ in 0..5 {
        let _ = service
            .verify_otp_at("warm", "000000", &ctx, VerifyOptions::new(), now)
            .await;
    }
    // Commands a script runs are counted too, so only scripts are counted:
    // these paths send no plain command (redis.rs).
    let calls = || {
        let info = server.cli(&["INFO", "commandstats"]).unwrap();
        stat_calls(&info, "evalsha") + stat_calls(&info, "eval")
    };
    let before = calls();
    service.request_otp_at("kate", &ctx, now).await.unwrap();
    let after_request = calls();
    assert_eq!(after_request - before, 1, "request: one decision script");
    let code = outbox.last_code("kate");
    let r = service
        .verify_otp_at("kate", &wrong_code(&code), &ctx, VerifyOptions::new(), now)
        .await;
    assert!(is_invalid_otp(&r));
    let after_wrong = calls();
    assert_eq!(
        after_wrong - after_request,
        1,
        "wrong code: the decision, which counted the attempt"
    );
    service
        .verify_otp_at("kate", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    let after_right = calls();
    assert_eq!(
        after_right - after_wrong,
        2,
        "right code: decision + advance"
    );
    // The budget (5 in `config()`): four wrong codes cost one script each,
    // the fifth also voids the codes.
    service.request_otp_at("lena", &ctx, now).await.unwrap();
    let code = outbox.last_code("lena");
    let mut per_try = Vec::new();
    for _ in 0..5 {
        let before = calls();
        let r = service
            .verify_otp_at("lena", &wrong_code(&code), &ctx, VerifyOptions::new(), now)
            .await;
        assert!(is_invalid_otp(&r));
        per_try.push(calls() - before);
    }
    assert_eq!(per_try, [1, 1, 1, 1, 2], "the fifth wrong code voids");
    let r = service
        .verify_otp_at("lena", &code, &ctx, VerifyOptions::new(), now)
        .await;
    assert!(is_invalid_otp(&r), "the code sent before is void: {r:?}");
}

// See: issue 13 item 10 (the memory store has no ceiling).
#[tokio::test]
async fn a_full_memory_store_refuses_new_identities_with_503_even_failing_open() {
    let store = Arc::new(MemoryStore::default().with_max_keys(20));
    let outbox = Outbox::new();
    let mut c = config();
    c.fail_mode = FailMode::Open;
    let service = service_with(c, store.clone(), outbox.clone());
    let ctx = RequestContext::default();
    let now = window_start() + 100;
    service.request_otp_at("tracked", &ctx, now).await.unwrap();
    let code = outbox.last_code("tracked");
    let mut refused = 0;
    for i in 0..100 {
        match service
            .verify_otp_at(
                &format!("spray{i}"),
                "000000",
                &ctx,
                VerifyOptions::new(),
                now,
            )
            .await
        {
            Err(ServiceError::InvalidOtp { .. }) => {}
            Err(ServiceError::Unavailable(StoreError::Full { max_keys: 20 })) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    // `global` and `tracked` hold two of the 20 subjects.
    assert_eq!(refused, 82);
    assert_eq!(service.metrics().store_full.get(), 82);
    assert_eq!(store.refusals(), 82);
    // The tracked user's code still verifies.
    service
        .verify_otp_at("tracked", &code, &ctx, VerifyOptions::new(), now)
        .await
        .expect("a spray never pushes a tracked user out");
}

fn stat_calls(info: &str, cmd: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn evalsha_calls(server: &testkit::RedisServer) -> u64 {
    stat_calls(&server.cli(&["INFO", "commandstats"]).unwrap(), "evalsha")
}
