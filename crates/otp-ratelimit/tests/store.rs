//! Integration tests of otp-ratelimit (one test binary).
//!
//! - the shared behaviour suite (`suite/mod.rs`) against memory, a real
//!   standalone `redis-server` and a real 3-master Redis Cluster;
//! - memory only: a property test against a naive model, eviction;
//! - Redis only: key hygiene (no raw identity, every key has a TTL), one
//!   `EVALSHA` per check, and recovery after Redis is killed and restarted.
//!
//! Redis tests skip (saying why) when `redis-server` is missing, and fail
//! instead when `OTP_E2E_REQUIRE_ALL=1`. `REDIS_URL` replaces the started
//! standalone server where the test does not need to stop it. The servers
//! come from `otp_testkit`.
//!
//! New tests go into a module of this binary (here or next to `suite/`),
//! never into a new file directly under `tests/`: every file there is a
//! separate binary (kanidm's `DO_NOT_ADD_MORE_TESTS_HERE`).

mod suite;

use std::sync::Arc;
use std::time::Duration;

use otp_ratelimit::{LimitPolicy, ManualClock, MemoryStore, Store, StoreError, UseCounterStore};

const HASH_KEY: &[u8] = b"test-hash-key-0123456789abcdef";

fn memory_with_clock() -> (Arc<MemoryStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let store = Arc::new(MemoryStore::new(HASH_KEY).with_clock(clock.clone()));
    (store, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_memory() {
    let (store, clock) = memory_with_clock();
    let h = suite::Harness {
        a: store.clone(),
        b: store,
        clock: Some(clock),
        nonce: suite::nonce(),
    };
    suite::run_all(&h, "memory").await;
}

#[test]
fn memory_evicts_idle_keys_after_their_window() {
    let (store, clock) = memory_with_clock();
    let short = LimitPolicy::per_secs("short", 5, 10);
    let long = LimitPolicy::per_secs("long", 5, 100);
    for i in 0..1000 {
        store.check_now(&short, &format!("user{i}")).unwrap();
    }
    for i in 0..10 {
        store.check_now(&long, &format!("user{i}")).unwrap();
    }
    // Tracked keys are subjects: user0..9 hold both windows in one entry.
    assert_eq!(store.tracked_keys(), 1000);
    clock.advance(Duration::from_secs(9));
    store.sweep();
    assert_eq!(store.tracked_keys(), 1000, "nothing idle yet");
    clock.advance(Duration::from_secs(1));
    store.sweep();
    assert_eq!(store.tracked_keys(), 10, "short-window keys idle past 10 s");
    clock.advance(Duration::from_secs(90));
    store.sweep();
    assert_eq!(store.tracked_keys(), 0);
}

#[test]
fn memory_sweeps_by_itself_when_new_keys_arrive() {
    let (store, clock) = memory_with_clock();
    let p = LimitPolicy::per_secs("flood", 1, 1);
    // A flood of distinct identities, one second at a time: the number of
    // tracked keys stays bounded by what one window (plus one sweep
    // interval) holds, without any explicit sweep call.
    let mut peak = 0;
    for round in 0..20 {
        for i in 0..2000 {
            store.check_now(&p, &format!("r{round}-u{i}")).unwrap();
        }
        peak = peak.max(store.tracked_keys());
        clock.advance(Duration::from_millis(1001));
    }
    assert!(peak <= 3 * 2000, "tracked keys grew to {peak}");
    assert!(peak >= 2000);
}

// See: issue 13 item 10 (the memory store has no ceiling).
#[tokio::test]
async fn memory_store_at_its_ceiling_refuses_only_new_subjects() {
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let store = MemoryStore::new(HASH_KEY)
        .with_clock(clock.clone())
        .with_max_keys(100);
    let p = LimitPolicy::per_secs("spray", 5, 60);
    // A tracked user with a live code: counter advanced, two wrong codes.
    assert!(store
        .advance("alice", 7, 0, Duration::from_secs(600))
        .await
        .unwrap());
    store
        .record_failures("alice", &[7], &[7], 5, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(store.check_now(&p, "alice").unwrap().allowed);
    // A spray of invented identities drives the store past its bound.
    let mut refused = 0;
    for i in 0..1000 {
        match store.check_now(&p, &format!("spray{i}")) {
            Ok(d) => assert!(d.allowed),
            Err(StoreError::Full { max_keys }) => {
                assert_eq!(max_keys, 100);
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(refused, 901, "99 new subjects fit beside alice");
    assert_eq!(store.tracked_keys(), 100);
    assert_eq!(store.refusals(), 901);
    // Every operation creating state for a new subject is refused, also a
    // counter or a failure count, and a refused call records nothing.
    assert!(matches!(
        store.advance("bob", 7, 0, Duration::from_secs(600)).await,
        Err(StoreError::Full { .. })
    ));
    assert!(matches!(
        store
            .record_failures("bob", &[7], &[7], 5, Duration::from_secs(600))
            .await,
        Err(StoreError::Full { .. })
    ));
    // The tracked user is served and nothing of her was forgotten.
    assert!(store.check_now(&p, "alice").unwrap().allowed);
    assert_eq!(store.counters("alice", &[7]).await.unwrap(), vec![1]);
    let o = store
        .record_failures("alice", &[7], &[7], 5, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(o[0].failures, 2, "her attempt budget survived the spray");
    // Once the spray's windows have passed, idle entries go first and new
    // subjects fit again; alice's live counter stays.
    clock.advance(Duration::from_secs(61));
    assert!(store.check_now(&p, "carol").unwrap().allowed);
    store.sweep();
    assert_eq!(store.tracked_keys(), 2, "alice and carol");
    assert_eq!(store.counters("alice", &[7]).await.unwrap(), vec![1]);
}

// See: issue 14 (session records never evicted while they matter).
#[tokio::test]
async fn memory_ceiling_never_evicts_a_live_session() {
    use otp_ratelimit::{Rotation, SessionRefresh, SessionStore};
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let store = MemoryStore::new(HASH_KEY)
        .with_clock(clock.clone())
        .with_max_keys(2)
        .with_sweep_interval(Duration::from_millis(1));
    let day = Duration::from_secs(86_400);
    store
        .session_create("alice", "s1", day, 30 * day)
        .await
        .unwrap();
    store.sessions_revoke_all("bob", 30 * day).await.unwrap();
    // Full: a spray of new identities is refused, sessions included.
    let p = LimitPolicy::per_secs("spray", 5, 60);
    for i in 0..100 {
        assert!(matches!(
            store.check_now(&p, &format!("spray{i}")),
            Err(StoreError::Full { .. })
        ));
    }
    assert!(matches!(
        store.session_create("carol", "s1", day, 30 * day).await,
        Err(StoreError::Full { .. })
    ));
    // Hours later, after many sweeps, alice's session and bob's epoch are
    // both still there (they are live), and the spray is still refused.
    for _ in 0..10 {
        clock.advance(Duration::from_secs(3600));
        store.sweep();
        assert!(store.check_now(&p, "spray").is_err());
    }
    assert_eq!(store.tracked_keys(), 2);
    let r = SessionRefresh {
        identity: "alice",
        sid: "s1",
        generation: 0,
        grace: Duration::from_secs(10),
        ttl: day,
        issued_at: 1_800_000_000,
    };
    assert!(matches!(
        store.session_rotate(&r).await.unwrap(),
        Rotation::Rotated { generation: 1, .. }
    ));
    // Past its idle TTL it is swept like anything else.
    clock.advance(day);
    store.sweep();
    assert_eq!(store.tracked_keys(), 1, "bob's epoch lives 30 days");
    assert_eq!(
        store
            .session_rotate(&SessionRefresh { generation: 1, ..r })
            .await
            .unwrap(),
        Rotation::Missing
    );
}

// See: issue 14 "Bad input" (session records and epochs are never evicted
// while they matter): at the ceiling a tracked user still signs in with a
// session, refreshes, logs out and signs out everywhere; only new subjects
// are refused.
#[tokio::test]
async fn a_full_memory_store_refuses_new_subjects_but_keeps_sessions_and_epochs_working() {
    use otp_ratelimit::{CounterAdvance, Rotation, SessionRefresh, SessionStart, SessionStore};
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let store = MemoryStore::new(HASH_KEY)
        .with_clock(clock.clone())
        .with_max_keys(3);
    let (day, ttl) = (Duration::from_secs(86_400), Duration::from_secs(900));
    let p = LimitPolicy::per_secs("verify", 10, 600);
    let sign_in = |identity: &'static str, sid: &'static str| CounterAdvance {
        identity,
        window: 7,
        from: 0,
        void: &[],
        ttl,
        clear: &[],
        session: Some(SessionStart {
            sid,
            ttl: day,
            max_lifetime: 30 * day,
        }),
        reset_failures: false,
    };
    let refresh = |sid, generation| SessionRefresh {
        identity: "alice",
        sid,
        generation,
        grace: Duration::from_secs(10),
        ttl: day,
        issued_at: 1_800_000_000,
    };
    // alice's verify window and a spray fill the store.
    assert!(store.check_now(&p, "alice").unwrap().allowed);
    for i in 0..2 {
        assert!(store.check_now(&p, &format!("spray{i}")).unwrap().allowed);
    }
    assert_eq!(store.tracked_keys(), 3);
    assert!(matches!(
        store.check_now(&p, "mallory"),
        Err(StoreError::Full { .. })
    ));
    // Full: alice's sign-in still creates her session (her subject is
    // tracked), and a second one on another device too.
    assert!(store.advance_all(&sign_in("alice", "phone")).await.unwrap());
    let second = CounterAdvance {
        window: 8,
        ..sign_in("alice", "laptop")
    };
    assert!(store.advance_all(&second).await.unwrap());
    assert_eq!(store.tracked_keys(), 5, "two sessions beyond the ceiling");
    // A new subject's sign-in or session is refused, and records nothing.
    assert!(matches!(
        store.advance_all(&sign_in("mallory", "m")).await,
        Err(StoreError::Full { .. })
    ));
    assert!(matches!(
        store.session_create("mallory", "m", day, 30 * day).await,
        Err(StoreError::Full { .. })
    ));
    // Hours later alice's counters and windows are gone (her entry swept),
    // the spray's windows are gone: her sessions stay and keep working.
    clock.advance(Duration::from_secs(3600));
    store.sweep();
    assert_eq!(store.tracked_keys(), 2, "only alice's two sessions");
    let Rotation::Rotated { generation: 1, .. } =
        store.session_rotate(&refresh("phone", 0)).await.unwrap()
    else {
        panic!("alice's phone session rotates");
    };
    // Fill the store again with new subjects: refreshes, logout and sign
    // out everywhere still work for alice.
    assert!(store.check_now(&p, "spray-late").unwrap().allowed);
    assert!(matches!(
        store.check_now(&p, "mallory"),
        Err(StoreError::Full { .. })
    ));
    assert!(matches!(
        store.session_rotate(&refresh("phone", 0)).await.unwrap(),
        Rotation::Grace { generation: 1, .. }
    ));
    assert!(store.session_revoke("alice", "phone").await.unwrap());
    assert_eq!(
        store.session_rotate(&refresh("phone", 1)).await.unwrap(),
        Rotation::Missing
    );
    store.sessions_revoke_all("alice", 30 * day).await.unwrap();
    assert_eq!(
        store.session_rotate(&refresh("laptop", 0)).await.unwrap(),
        Rotation::SignedOut,
        "sign out everywhere at the ceiling ended the laptop session"
    );
    // Her epoch outlives the day: a session made before it stays ended.
    clock.advance(day);
    store.sweep();
    assert_eq!(store.tracked_keys(), 1, "alice's epoch (30 days)");
}

#[tokio::test]
async fn memory_ceiling_zero_refuses_every_new_subject() {
    let store = MemoryStore::new(HASH_KEY).with_max_keys(0);
    let p = LimitPolicy::per_secs("none", 5, 60);
    assert!(matches!(
        store.check_now(&p, "a"),
        Err(StoreError::Full { max_keys: 0 })
    ));
    assert_eq!(store.tracked_keys(), 0);
}

#[tokio::test]
async fn memory_counters_expire_after_ttl() {
    let (store, clock) = memory_with_clock();
    assert!(store
        .advance("a", 1, 0, Duration::from_secs(30))
        .await
        .unwrap());
    let o = store
        .record_failure("b", 1, &[1], 5, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(!o.exhausted);
    assert_eq!(store.tracked_keys(), 2);
    clock.advance(Duration::from_secs(30));
    store.sweep();
    assert_eq!(store.tracked_keys(), 0);
    assert_eq!(store.counters("a", &[1]).await.unwrap(), vec![0]);
}

mod model {
    //! The memory limiter against a naive model: keep every allowed event
    //! forever and count those inside `(t - window, t]`.
    use super::*;
    use proptest::prelude::*;

    struct Naive {
        max: u32,
        window_ms: u64,
        events: Vec<(u8, u64)>,
    }

    impl Naive {
        /// (allowed, remaining, retry_after_secs)
        fn check(&mut self, key: u8, now: u64) -> (bool, u32, u64) {
            let mut inside: Vec<u64> = self
                .events
                .iter()
                .filter(|(k, t)| *k == key && now - *t < self.window_ms)
                .map(|(_, t)| *t)
                .collect();
            inside.sort_unstable();
            let n = inside.len() as u32;
            if n < self.max {
                self.events.push((key, now));
                (true, self.max - n - 1, 0)
            } else {
                // The wait until only max-1 events remain inside.
                let oldest = inside[inside.len() - self.max as usize];
                let wait = oldest + self.window_ms - now;
                (false, 0, wait.div_ceil(1000))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn memory_limiter_agrees_with_naive_model(
            max in 1u32..6,
            window_ms in 1u64..5000,
            steps in proptest::collection::vec((0u8..3, 0u64..1500), 1..200),
        ) {
            let (store, clock) = memory_with_clock();
            let start = clock_now_ms(&clock);
            let policy = LimitPolicy { name: "prop", max, window: Duration::from_millis(window_ms) };
            let mut naive = Naive { max, window_ms, events: Vec::new() };
            for (key, gap) in steps {
                clock.advance(Duration::from_millis(gap));
                let now = clock_now_ms(&clock) - start;
                let d = store.check_now(&policy, &format!("k{key}")).unwrap();
                let (allowed, remaining, retry) = naive.check(key, now);
                prop_assert_eq!(d.allowed, allowed, "t={} key={}", now, key);
                prop_assert_eq!(d.remaining, remaining);
                prop_assert_eq!(d.retry_after_secs, retry);
            }
        }
    }

    fn clock_now_ms(c: &ManualClock) -> u64 {
        use otp_ratelimit::Clock;
        c.now().as_millis() as u64
    }
}

#[cfg(feature = "redis")]
mod redis_backend {
    //! Standalone Redis and Redis Cluster.
    use super::*;
    use otp_ratelimit::{
        CounterRead, LimitCheck, RateLimiter, RedisConfig, RedisStore, RedisTopology, Store,
        StoreError,
    };
    use otp_testkit::{self as testkit, RedisCluster};

    async fn connect(urls: Vec<String>) -> RedisStore {
        let mut c = RedisConfig::new(urls, HASH_KEY);
        c.key_prefix = "otptest".into();
        RedisStore::connect(c).await.expect("connect to Redis")
    }

    /// Every key under `otptest:` on `url`, with its PTTL.
    async fn keys_with_ttl(url: &str) -> Vec<(String, i64)> {
        let client = redis::Client::open(url).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("otptest:*")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut out = Vec::new();
        for k in keys {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&k)
                .query_async(&mut con)
                .await
                .unwrap();
            out.push((k, ttl));
        }
        out
    }

    /// The one key of `server` matching `pattern` (`redis-cli --scan`).
    fn scanned_key(server: &testkit::RedisServer, pattern: &str) -> String {
        server
            .cli(&["--scan", "--pattern", pattern])
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The PTTL of `key` on `server`, ms.
    fn pttl(server: &testkit::RedisServer, key: &str) -> i64 {
        server.cli(&["PTTL", key]).unwrap().trim().parse().unwrap()
    }

    fn assert_key_hygiene(keys: &[(String, i64)], nonce: &str) {
        assert!(!keys.is_empty(), "the suite must have written keys");
        for (k, ttl) in keys {
            assert!(!k.contains(nonce), "raw identity in key {k}");
            assert!(!k.contains("example.com"), "raw identity in key {k}");
            assert!(*ttl > 0, "key {k} has no TTL ({ttl})");
            if k == "otptest:layout" {
                continue;
            }
            // otptest:v<layout>:{<32 hex>}:<kind>:<rest>
            let stem = format!("otptest:v{}:{{", otp_ratelimit::redis::KEY_LAYOUT_VERSION);
            let tag = k
                .strip_prefix(stem.as_str())
                .and_then(|r| r.split_once('}'))
                .map(|(t, _)| t)
                .unwrap_or_default();
            assert_eq!(tag.len(), 32, "hash tag in {k}");
            assert!(
                tag.bytes().all(|b| b.is_ascii_hexdigit()),
                "hash tag in {k}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn suite_redis_standalone() {
        let Some(target) = testkit::redis_or_skip("suite_redis_standalone") else {
            return;
        };
        let url = target.url();
        let h = suite::Harness {
            a: Arc::new(connect(vec![url.clone()]).await),
            b: Arc::new(connect(vec![url.clone()]).await),
            clock: None,
            nonce: suite::nonce(),
        };
        suite::run_all(&h, "redis").await;
        let keys = keys_with_ttl(&url).await;
        assert_key_hygiene(&keys, &h.nonce);
        assert!(
            keys.iter().any(|(k, _)| k.contains(":rl:t_shared")),
            "limiter keys present"
        );
        assert!(
            keys.iter().any(|(k, _)| k.contains("}:s:"))
                && keys.iter().any(|(k, _)| k.ends_with("}:e")),
            "session and epoch keys present"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn suite_redis_cluster() {
        let Some(mut cluster) = testkit::cluster_or_skip("suite_redis_cluster") else {
            return;
        };
        let a = connect(cluster.urls()).await;
        // The second replica knows only one seed node.
        let mut cfg = RedisConfig::new(vec![cluster.urls()[1].clone()], HASH_KEY);
        cfg.key_prefix = "otptest".into();
        cfg.topology = RedisTopology::Cluster;
        let b = RedisStore::connect(cfg)
            .await
            .expect("cluster via one seed");
        let h = suite::Harness {
            a: Arc::new(a),
            b: Arc::new(b),
            clock: None,
            nonce: suite::nonce(),
        };
        suite::run_all(&h, "redis-cluster").await;
        let mut all = Vec::new();
        let mut nodes_with_keys = 0;
        for url in cluster.urls() {
            let keys = keys_with_ttl(&url).await;
            if !keys.is_empty() {
                nodes_with_keys += 1;
            }
            all.extend(keys);
        }
        assert_key_hygiene(&all, &h.nonce);
        assert!(nodes_with_keys >= 2, "keys spread over the cluster's slots");
        cluster_survives_outage(&mut cluster, &h.a).await;
    }

    /// All masters killed → `Unavailable` (bounded); restarted on the same
    /// ports (they keep their `nodes-<port>.conf`) → the same store recovers.
    async fn cluster_survives_outage(cluster: &mut RedisCluster, store: &Arc<dyn Store>) {
        let p = LimitPolicy::per_secs("outage", 100, 60);
        assert!(store.check(&p, "k").await.unwrap().allowed);
        for n in cluster.nodes_mut() {
            n.stop();
        }
        let started = std::time::Instant::now();
        let r = store.check(&p, "k").await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        cluster.restart_all().expect("cluster restarts");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match store.check(&p, "k").await {
                Ok(d) => {
                    assert!(d.allowed);
                    break;
                }
                Err(e) => {
                    assert!(e.is_unavailable(), "{e}");
                    assert!(std::time::Instant::now() < deadline, "never recovered: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_evalsha_per_check_and_per_compare_and_set() {
        let Some(server) = testkit::started_redis_or_skip("one_evalsha_per_check") else {
            return;
        };
        let store = connect(vec![server.url()]).await;
        let p = LimitPolicy::per_secs("rt", 1000, 60);
        // Warm up: the first call may load the script.
        store.check(&p, "warm").await.unwrap();
        store
            .advance("warm", 1, 0, Duration::from_secs(60))
            .await
            .unwrap();
        let before = evalsha_calls(&server);
        for i in 0..100 {
            store.check(&p, &format!("user{i}")).await.unwrap();
        }
        let after_checks = evalsha_calls(&server);
        assert_eq!(after_checks - before, 100, "one EVALSHA per check");
        for i in 0..10 {
            store
                .advance("id", i, 0, Duration::from_secs(60))
                .await
                .unwrap();
        }
        let after_cas = evalsha_calls(&server);
        assert_eq!(after_cas - after_checks, 10, "one EVALSHA per CAS");
        // A verify's decision on standalone: per-IP, identity, daily per
        // network, daily ceiling and the counters: one script.
        let q = LimitPolicy::per_secs("rt_daily", 1000, 600);
        let windows = [10, 11, 12];
        let decide = |id: String| {
            let store = &store;
            let (p, q) = (&p, &q);
            async move {
                let checks = [
                    LimitCheck::new(p, "198.51.100.9"),
                    LimitCheck::new(p, &id),
                    LimitCheck::new(q, &id).scoped("198.51.100.9"),
                    LimitCheck::new(q, &id),
                ];
                let c = store
                    .check_all(
                        &checks,
                        Some(CounterRead {
                            identity: &id,
                            windows: &windows,
                            attempt: None,
                        }),
                    )
                    .await
                    .unwrap();
                assert!(c.allowed() && c.counters.is_some(), "{c:?}");
            }
        };
        decide("warm".into()).await;
        let before_many = evalsha_calls(&server);
        for i in 0..20 {
            decide(format!("many{i}")).await;
        }
        assert_eq!(
            evalsha_calls(&server) - before_many,
            20,
            "one EVALSHA per check_all on standalone, whatever its subjects"
        );
        store
            .record_failures("warm", &[10, 11], &windows, 1000, Duration::from_secs(60))
            .await
            .unwrap();
        let before_failures = evalsha_calls(&server);
        for i in 0..20 {
            let o = store
                .record_failures(
                    &format!("f{i}"),
                    &[10, 11],
                    &windows,
                    1000,
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            assert_eq!(o.len(), 2);
        }
        assert_eq!(
            evalsha_calls(&server) - before_failures,
            20,
            "one EVALSHA per record_failures, whatever the number of windows"
        );
    }

    /// Redis lost its script cache (`SCRIPT FLUSH`, as after a restart or a
    /// failover): the next call of each script answers `NOSCRIPT`, the store
    /// loads the script and retries once, and the caller sees only the
    /// result — on standalone and on every node of a Cluster.
    #[tokio::test]
    async fn a_flushed_script_cache_is_reloaded_and_the_call_retried() {
        async fn exercise(store: &RedisStore, id: &str) -> u32 {
            let p = LimitPolicy::per_secs("flush", 10, 60);
            let checks = [LimitCheck::new(&p, id)];
            let c = store
                .check_all(
                    &checks,
                    Some(CounterRead {
                        identity: id,
                        windows: &[1, 2],
                        attempt: None,
                    }),
                )
                .await
                .expect("decision after the flush");
            assert_eq!(c.counters, Some(vec![0, 0]));
            let o = store
                .record_failures(id, &[1], &[1, 2], 5, Duration::from_secs(60))
                .await
                .expect("failure after the flush");
            assert_eq!(o[0].failures, 1);
            assert!(store
                .advance(id, 1, 0, Duration::from_secs(60))
                .await
                .expect("advance after the flush"));
            c.decisions[0].remaining
        }
        if let Some(server) = testkit::started_redis_or_skip("a_flushed_script_cache") {
            let store = connect(vec![server.url()]).await;
            assert_eq!(exercise(&store, "flush-a").await, 9);
            server.cli(&["SCRIPT", "FLUSH"]).unwrap();
            server.cli(&["CONFIG", "RESETSTAT"]).unwrap();
            assert_eq!(exercise(&store, "flush-b").await, 9);
            assert_eq!(
                command_calls(&server, "script|load"),
                3,
                "each of the three scripts loaded again once"
            );
            assert_eq!(exercise(&store, "flush-c").await, 9);
            assert_eq!(command_calls(&server, "script|load"), 3, "and not again");
        }
        if let Some(cluster) = testkit::cluster_or_skip("a_flushed_script_cache_cluster") {
            let store = connect(cluster.urls()).await;
            assert_eq!(exercise(&store, "flush-a").await, 9);
            for node in cluster.nodes() {
                node.cli(&["SCRIPT", "FLUSH"]).unwrap();
            }
            assert_eq!(exercise(&store, "flush-b").await, 9);
            assert_eq!(exercise(&store, "flush-c").await, 9);
        }
    }

    /// The first ping Redis answers loads every script, so the first
    /// calls on a fresh Redis cost their one round trip (no `NOSCRIPT`,
    /// no `SCRIPT LOAD`, no retry); later pings load nothing; a ping that
    /// fails (Redis down) makes the next answered one load them again,
    /// which a restarted Redis (its cache empty) needs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_answered_ping_loads_the_scripts_and_again_after_an_outage() {
        let Some(mut server) = testkit::started_redis_or_skip("ping_loads_scripts") else {
            return;
        };
        let mut cfg = RedisConfig::new(vec![server.url()], HASH_KEY);
        cfg.key_prefix = "otptest".into();
        cfg.connect_timeout = Duration::from_millis(300);
        cfg.response_timeout = Duration::from_millis(300);
        let store = RedisStore::connect_lazy(cfg).unwrap();
        assert_eq!(command_calls(&server, "script|load"), 0);
        store.ping().await.unwrap();
        // The store's seven scripts, and the layout marker's, which the
        // new connection runs before anything else (NOSCRIPT, load, retry:
        // once per connection).
        assert_eq!(
            command_calls(&server, "script|load"),
            8,
            "every script loaded by the first ping"
        );
        server.cli(&["CONFIG", "RESETSTAT"]).unwrap();
        let p = LimitPolicy::per_secs("warm", 10, 60);
        let id = "warm-a";
        let c = store
            .check_all(
                &[LimitCheck::new(&p, id)],
                Some(CounterRead {
                    identity: id,
                    windows: &[1, 2],
                    attempt: None,
                }),
            )
            .await
            .unwrap();
        assert_eq!(c.counters, Some(vec![0, 0]));
        assert!(store
            .advance(id, 1, 0, Duration::from_secs(60))
            .await
            .unwrap());
        store.ping().await.unwrap();
        assert_eq!(
            command_calls(&server, "script|load"),
            0,
            "nothing loaded again"
        );
        assert_eq!(
            command_calls(&server, "evalsha"),
            2,
            "one call each, no retry"
        );
        let errors = server.cli(&["INFO", "errorstats"]).unwrap();
        assert!(!errors.contains("NOSCRIPT"), "{errors}");

        server.stop();
        assert!(store.ping().await.is_err());
        server.restart().expect("restart redis on the same port");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.ping().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "Redis never answered again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            command_calls(&server, "script|load"),
            8,
            "a restarted Redis gets every script from the first answered ping"
        );
    }

    /// The decision script sets absolute expiries (`PEXPIREAT`): a window's
    /// key lives its window from the newest event (rounded up to the next
    /// ms, never less), renewed by each recorded event, and a use state an
    /// attempt creates gets the attempt's TTL.
    #[tokio::test]
    async fn a_recorded_event_gives_its_window_key_the_window_as_ttl() {
        let Some(server) = testkit::started_redis_or_skip("window_key_ttl") else {
            return;
        };
        let store = connect(vec![server.url()]).await;
        let p = LimitPolicy::per_secs("wttl", 10, 60);
        let checks = [LimitCheck::new(&p, "wttl-id")];
        let key_of = |pattern: &str| scanned_key(&server, pattern);
        let pttl = |k: &str| pttl(&server, k);
        let read = CounterRead {
            identity: "wttl-id",
            windows: &[777],
            attempt: Some(Duration::from_secs(30)),
        };
        store.check_all(&checks, Some(read)).await.unwrap();
        let window = key_of("otptest:*:rl:wttl");
        let state = key_of("otptest:*:n:777");
        let first = pttl(&window);
        assert!(
            (55_000..=60_001).contains(&first),
            "window key PTTL {first}"
        );
        assert!(
            (25_000..=30_000).contains(&pttl(&state)),
            "{}",
            pttl(&state)
        );
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // One more event: the key lives the window again from it.
        store.check_all(&checks, None).await.unwrap();
        let renewed = pttl(&window);
        assert!(
            renewed > first - 1_000 && renewed <= 60_001,
            "the event renewed the window key's TTL: {first} then {renewed}"
        );
        assert_eq!(server.cli(&["ZCARD", &window]).unwrap().trim(), "2");
    }

    /// Layout 3 keeps a window's counter and wrong-code count in one key:
    /// counting an attempt with a TTL shorter than the counter's never
    /// shortens the counter's (a spent counter that expired early would
    /// make its code verify again), the count is the low part, and a count
    /// that reaches the base carries into the counter: the code is void.
    #[tokio::test]
    async fn an_attempt_never_shortens_a_counter_and_a_full_count_voids_the_code() {
        let Some(server) = testkit::started_redis_or_skip("an_attempt_never_shortens") else {
            return;
        };
        let store = connect(vec![server.url()]).await;
        let p = LimitPolicy::per_secs("ttl", 100, 60);
        let checks = [LimitCheck::new(&p, "ttl-id")];
        let window = 123_456_789;
        let long = Duration::from_secs(900);
        assert!(store.advance("ttl-id", window, 0, long).await.unwrap());
        let key = scanned_key(&server, &format!("otptest:*:n:{window}"));
        let pttl = |k: &str| pttl(&server, k);
        let counting = |ttl| CounterRead {
            identity: "ttl-id",
            windows: &[123_456_789],
            attempt: Some(ttl),
        };
        let c = store
            .check_all(&checks, Some(counting(Duration::from_secs(5))))
            .await
            .unwrap();
        assert_eq!((c.counters, c.failures), (Some(vec![1]), Some(vec![1])));
        assert!(
            pttl(&key) > 800_000,
            "the attempt kept the counter's TTL: {}",
            pttl(&key)
        );
        assert_eq!(server.cli(&["GET", &key]).unwrap().trim(), "1000001");
        // A state the attempt creates gets the attempt's TTL.
        let c = store
            .check_all(
                &checks,
                Some(CounterRead {
                    identity: "ttl-id",
                    windows: &[123_456_790],
                    attempt: Some(Duration::from_secs(5)),
                }),
            )
            .await
            .unwrap();
        assert_eq!((c.counters, c.failures), (Some(vec![0]), Some(vec![1])));
        let fresh = key.replace(":n:123456789", ":n:123456790");
        assert!((1..=5_000).contains(&pttl(&fresh)), "{}", pttl(&fresh));
        // A count at the base carries into the counter: the code is void.
        server
            .cli(&["SET", &key, "1999999", "PX", "900000"])
            .unwrap();
        let c = store
            .check_all(&checks, Some(counting(long)))
            .await
            .unwrap();
        assert_eq!((c.counters, c.failures), (Some(vec![2]), Some(vec![0])));
        assert_eq!(store.counters("ttl-id", &[window]).await.unwrap(), vec![2]);
        assert!(
            !store.advance("ttl-id", window, 1, long).await.unwrap(),
            "the voided code"
        );
    }

    /// A use-state key (counter and wrong-code count in one integer, layout
    /// 3) holding something other than a count (written by hand, or by
    /// another program sharing the prefix) is a backend error, never a
    /// count of 0 that would make a spent code verify again: read by the
    /// decision, counted as an attempt, counted as a failure, or advanced,
    /// and each time it stays as it was.
    #[tokio::test]
    async fn a_use_counter_that_is_not_a_count_is_a_backend_error() {
        let Some(server) = testkit::started_redis_or_skip("a_use_counter_that_is_not_a_count")
        else {
            return;
        };
        let store = connect(vec![server.url()]).await;
        let p = LimitPolicy::per_secs("nan", 10, 60);
        let window = 987_654_321;
        assert!(store
            .advance("nan-id", window, 0, Duration::from_secs(60))
            .await
            .unwrap());
        let read = |windows: &'static [u64]| CounterRead {
            identity: "nan-id",
            windows,
            attempt: None,
        };
        let checks = [LimitCheck::new(&p, "nan-id")];
        let c = store
            .check_all(&checks, Some(read(&[987_654_321, 987_654_322])))
            .await
            .unwrap();
        assert_eq!(
            c.counters,
            Some(vec![1, 0]),
            "the counter, then an absent one"
        );
        let keys = server
            .cli(&["--scan", "--pattern", &format!("otptest:*:n:{window}")])
            .unwrap();
        let key = keys
            .lines()
            .next()
            .expect("the counter key")
            .trim()
            .to_owned();
        // One wrong code counted: the low part of the state.
        let ttl = Duration::from_secs(60);
        let o = store
            .record_failures("nan-id", &[window], &[], 5, ttl)
            .await
            .unwrap();
        assert_eq!((o[0].failures, o[0].exhausted), (1, false));
        assert_eq!(server.cli(&["GET", &key]).unwrap().trim(), "1000001");
        let counting = CounterRead {
            identity: "nan-id",
            windows: &[987_654_321],
            attempt: Some(ttl),
        };
        for bad in ["one", "1.5", "-1"] {
            server.cli(&["SET", &key, bad]).unwrap();
            match store.check_all(&checks, Some(read(&[987_654_321]))).await {
                Err(StoreError::Backend(m)) => assert!(m.contains("not a count"), "{bad}: {m}"),
                other => panic!("{bad}: expected a backend error, got {other:?}"),
            }
            match store.advance("nan-id", window, 1, ttl).await {
                Err(StoreError::Backend(m)) => assert!(m.contains("not a count"), "{bad}: {m}"),
                other => panic!("{bad}: expected a backend error, got {other:?}"),
            }
            if bad != "-1" {
                // INCR refuses what is not an integer
                match store.check_all(&checks, Some(counting)).await {
                    Err(StoreError::Backend(m)) => assert!(m.contains("not an integer"), "{m}"),
                    other => panic!("{bad}: expected a backend error, got {other:?}"),
                }
                match store
                    .record_failures("nan-id", &[window], &[], 5, ttl)
                    .await
                {
                    Err(StoreError::Backend(m)) => assert!(m.contains("not an integer"), "{m}"),
                    other => panic!("{bad}: expected a backend error, got {other:?}"),
                }
            }
            assert_eq!(server.cli(&["GET", &key]).unwrap().trim(), bad);
        }
    }

    /// A replica of another key layout left its marker: connecting warns
    /// (one line) and works, and the marker names this layout afterwards.
    #[tokio::test]
    async fn a_foreign_key_layout_marker_warns_but_connects() {
        let Some(server) = testkit::started_redis_or_skip("a_foreign_key_layout_marker") else {
            return;
        };
        server.cli(&["SET", "otplayout:layout", "1"]).unwrap();
        let mut c = RedisConfig::new(vec![server.url()], HASH_KEY);
        c.key_prefix = "otplayout".into();
        let store = RedisStore::connect(c)
            .await
            .expect("connects despite the marker");
        store.ping().await.unwrap();
        let v = server.cli(&["GET", "otplayout:layout"]).unwrap();
        assert_eq!(
            v.trim(),
            otp_ratelimit::redis::KEY_LAYOUT_VERSION.to_string()
        );
        let ttl = pttl(&server, "otplayout:layout");
        assert!(ttl > 0, "the marker has a TTL too");
    }

    /// One refresh (a session rotation) is one EVALSHA, on standalone and
    /// on Cluster (session and epoch share the identity's slot), whatever
    /// its outcome.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_evalsha_per_refresh_on_standalone_and_cluster() {
        use otp_ratelimit::{Rotation, SessionRefresh, SessionStore};
        const DAY: Duration = Duration::from_secs(86_400);
        let refresh = |id: &'static str, generation| SessionRefresh {
            identity: id,
            sid: "sess",
            generation,
            grace: Duration::from_secs(10),
            ttl: DAY,
            issued_at: 1_800_000_000,
        };
        async fn rotations(
            store: &RedisStore,
            refresh: impl Fn(&'static str, u64) -> SessionRefresh<'static>,
        ) {
            for (i, id) in ["u0", "u1", "u2", "u3", "u4"].into_iter().enumerate() {
                store
                    .session_create(id, "sess", DAY, 30 * DAY)
                    .await
                    .unwrap();
                assert!(
                    matches!(
                        store.session_rotate(&refresh(id, 0)).await.unwrap(),
                        Rotation::Rotated { .. }
                    ),
                    "{i}"
                );
                assert!(matches!(
                    store.session_rotate(&refresh(id, 0)).await.unwrap(),
                    Rotation::Grace { .. }
                ));
            }
        }
        let cluster_evalsha =
            |cluster: &RedisCluster| -> u64 { cluster.nodes().iter().map(evalsha_calls).sum() };
        if let Some(server) = testkit::started_redis_or_skip("one_evalsha_per_refresh") {
            let store = connect(vec![server.url()]).await;
            // Warm up: the first calls load the scripts.
            rotations(&store, refresh).await;
            let before = evalsha_calls(&server);
            rotations(&store, refresh).await;
            // 5 creations + 10 rotations.
            assert_eq!(evalsha_calls(&server) - before, 15, "standalone");
        }
        if let Some(cluster) = testkit::cluster_or_skip("one_evalsha_per_refresh_cluster") {
            let store = connect(cluster.urls()).await;
            rotations(&store, refresh).await;
            let before = cluster_evalsha(&cluster);
            rotations(&store, refresh).await;
            assert_eq!(cluster_evalsha(&cluster) - before, 15, "cluster");
        }
    }

    fn evalsha_calls(server: &testkit::RedisServer) -> u64 {
        command_calls(server, "evalsha")
    }

    /// Calls of `command` (as `INFO commandstats` names it) since the
    /// server started or its statistics were reset.
    fn command_calls(server: &testkit::RedisServer, command: &str) -> u64 {
        let info = server.cli(&["INFO", "commandstats"]).unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unavailable_while_redis_is_down_then_recovers_by_itself() {
        let Some(mut server) = testkit::started_redis_or_skip("redis_outage") else {
            return;
        };
        let mut cfg = RedisConfig::new(vec![server.url()], HASH_KEY);
        cfg.connect_timeout = Duration::from_millis(300);
        cfg.response_timeout = Duration::from_millis(300);
        let store = RedisStore::connect(cfg).await.unwrap();
        let p = LimitPolicy::per_secs("outage", 100, 60);
        assert!(store.check(&p, "k").await.unwrap().allowed);

        server.stop();
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let r = store.check(&p, "k").await;
            assert!(
                matches!(r, Err(StoreError::Unavailable(_))),
                "expected Unavailable, got {r:?}"
            );
            // Bounded by connect + response timeout (plus scheduling slack).
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
            let r = store.advance("id", 1, 0, Duration::from_secs(60)).await;
            assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
            assert!(matches!(
                store.ping().await,
                Err(StoreError::Unavailable(_))
            ));
        }

        server.restart().expect("restart redis on the same port");
        // The same store object recovers by itself within a few attempts.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match store.check(&p, "k").await {
                Ok(d) => {
                    assert!(d.allowed);
                    break;
                }
                Err(e) => {
                    assert!(e.is_unavailable(), "{e}");
                    assert!(std::time::Instant::now() < deadline, "never recovered: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        store.ping().await.unwrap();
        assert!(store
            .advance("id", 1, 0, Duration::from_secs(60))
            .await
            .unwrap());
    }

    /// `connected_clients` of `server` (`redis-cli` itself counts one).
    fn connected_clients(server: &testkit::RedisServer) -> u64 {
        let info = server.cli(&["INFO", "clients"]).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO clients names connected_clients")
    }

    /// Waits (up to 5 s) until `server` has `n` clients; returns the last count.
    fn wait_for_clients(server: &testkit::RedisServer, n: u64) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let c = connected_clients(server);
            if c == n || std::time::Instant::now() > deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like actix workers: each thread runs a current-thread runtime of its
    /// own. Each gets its own connection (its commands never hop to another
    /// thread's connection task), and a thread keeps working after the
    /// runtime that connected the store is gone.
    #[test]
    fn each_thread_uses_a_connection_of_its_own() {
        let Some(server) = testkit::started_redis_or_skip("per_thread_connections") else {
            return;
        };
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        // Connected (and pinged) on a runtime that ends right away.
        let store = Arc::new(runtime().block_on(connect(vec![server.url()])));
        assert_eq!(
            wait_for_clients(&server, 1),
            1,
            "the ended runtime's connection closes (only redis-cli is left)"
        );
        let p = LimitPolicy::per_secs("threads", 100, 60);
        let both_working = Arc::new(std::sync::Barrier::new(3));
        let counted = Arc::new(std::sync::Barrier::new(3));
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let store = Arc::clone(&store);
                let (both_working, counted) = (Arc::clone(&both_working), Arc::clone(&counted));
                std::thread::spawn(move || {
                    let rt = runtime();
                    // No panic before the barriers: the others would wait forever.
                    let checks: Vec<_> = (0..3)
                        .map(|_| rt.block_on(store.check(&p, &format!("worker{i}"))))
                        .collect();
                    both_working.wait();
                    counted.wait();
                    checks
                })
            })
            .collect();
        both_working.wait();
        let clients = connected_clients(&server);
        counted.wait();
        for w in workers {
            for check in w.join().unwrap() {
                assert!(check.expect("a worker's check").allowed);
            }
        }
        assert_eq!(
            clients, 3,
            "one connection per worker thread, plus redis-cli"
        );
    }

    #[tokio::test]
    async fn connect_to_nothing_is_unavailable_quickly() {
        // A port nobody listens on: bind, learn the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let started = std::time::Instant::now();
        let r = RedisStore::connect(RedisConfig::new(
            vec![format!("redis://127.0.0.1:{port}")],
            HASH_KEY,
        ))
        .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
