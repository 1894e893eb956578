//! Redis backend benchmarks over loopback.
//!
//! Starts its own `redis-server` on a free 127.0.0.1 port (killed at the
//! end), or uses `REDIS_URL` when set, then:
//!
//! 1. Round trips: runs 1000 limiter checks and 1000 compare-and-sets and
//!    reads `INFO commandstats` before and after; prints the calls per
//!    operation of every command that moved: `evalsha=1.000` and, besides
//!    it, only the commands the script itself runs inside the server.
//! 2. Criterion `redis_check/concurrency_1`: time of one check awaited
//!    alone (the round-trip latency; checks/s = 1e9 / ns).
//! 3. Criterion `redis_check/concurrency_64`: 64 tasks issue checks at once
//!    over the one multiplexed connection; the reported time is wall time
//!    divided by the checks done (checks/s = 1e9 / ns).
//!
//! 4. Sign-ins (printed first, `-- --verify-only` stops after it): 20 000
//!    right-code verifies of fresh identities with the store calls the
//!    service makes (`check_all` over the per-IP window, the identity's
//!    verify window, its daily window for the network and its daily
//!    ceiling with two counters read; then `advance_all` voiding both
//!    windows, clearing the verify window and creating a session), 64 at
//!    once over the one connection. Prints EVALSHA per verify, the Redis
//!    server's CPU per verify (`INFO cpu`, user + sys), the time Redis spent
//!    inside the scripts per verify (`INFO commandstats` usec of evalsha)
//!    and the commands the scripts ran per verify.
//!
//! Run: `cargo bench -p otp-ratelimit --features redis --bench redis`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use otp_ratelimit::{
    CounterAdvance, CounterRead, LimitCheck, LimitPolicy, RateLimiter, RedisConfig, RedisStore,
    SessionStart, Store,
};
use otp_testkit::{self as testkit, RedisTarget};

/// Always allows (max far above the rate); the 1 s window keeps every log
/// short, so each check removes the events that left the window and adds
/// one: the steady state of a busy key.
const POLICY: LimitPolicy = LimitPolicy::per_secs("bench", 1_000_000, 1);
const KEYS: usize = 1024;

/// Calls per command name from `INFO commandstats` (Redis counts the
/// commands a script calls as well as the script's `EVALSHA`).
async fn command_calls(url: &str) -> BTreeMap<String, u64> {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for INFO");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut con)
        .await
        .expect("INFO commandstats");
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(name) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        let calls: u64 = rest
            .strip_prefix("calls=")
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        out.insert(name.to_owned(), calls);
    }
    out
}

/// A field of `INFO <section>` as a number (0 when absent).
async fn info_field(url: &str, section: &str, field: &str) -> f64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for INFO");
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut con)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Redis server CPU (user + sys) so far, in µs.
async fn redis_cpu_us(url: &str) -> f64 {
    (info_field(url, "cpu", "used_cpu_user").await + info_field(url, "cpu", "used_cpu_sys").await)
        * 1e6
}

/// µs Redis spent inside EVALSHA so far (`INFO commandstats`).
async fn evalsha_usec(url: &str) -> f64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for INFO");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut con)
        .await
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .and_then(|r| r.split(',').find_map(|f| f.strip_prefix("usec=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const SIGN_INS: u64 = 20_000;

/// One right-code verify of `identity` with the store calls of the service
/// (module docs, 4).
async fn sign_in(store: &RedisStore, identity: &str, sid: &str) {
    let per_ip = LimitPolicy::per_secs("verify_ip", 10_000_000, 1);
    let verify = LimitPolicy::per_secs("verify_identity", 10, 600);
    let daily = LimitPolicy::per_secs("verify_daily", 30, 86_400);
    let ceiling = LimitPolicy::per_secs("verify_daily_identity", 100, 86_400);
    let net = "192.0.2.1";
    let windows = [5_000_000u64, 5_000_001];
    let checks = [
        LimitCheck::new(&per_ip, net),
        LimitCheck::new(&verify, identity),
        LimitCheck::new(&daily, identity).scoped(net),
        LimitCheck::new(&ceiling, identity),
    ];
    let read = CounterRead {
        identity,
        windows: &windows,
        attempt: None,
    };
    let c = store
        .check_all(&checks, Some(read))
        .await
        .expect("check_all");
    assert!(c.allowed(), "a fresh identity is allowed");
    let clear = [LimitCheck::new(&verify, identity)];
    let day = Duration::from_secs(86_400);
    let a = CounterAdvance {
        identity,
        window: windows[1],
        from: 0,
        void: &windows,
        ttl: Duration::from_secs(900),
        clear: &clear,
        session: Some(SessionStart {
            sid,
            ttl: 7 * day,
            max_lifetime: 30 * day,
        }),
        reset_failures: false,
    };
    assert!(store.advance_all(&a).await.expect("advance_all"));
}

/// Module docs, 4.
async fn sign_ins(store: &Arc<RedisStore>, url: &str) {
    let run = format!("{:x}", std::process::id());
    sign_in(store, &format!("warm-{run}"), "warm").await;
    let (c0, cpu0, us0) = (
        command_calls(url).await,
        redis_cpu_us(url).await,
        evalsha_usec(url).await,
    );
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(64);
    for t in 0..64u64 {
        let store = store.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = t;
            while n < SIGN_INS {
                let sid = format!("sid{n:0>19}");
                sign_in(&store, &format!("user{n}-{run}@example.com"), &sid).await;
                n += 64;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let wall = start.elapsed();
    let (c1, cpu1, us1) = (
        command_calls(url).await,
        redis_cpu_us(url).await,
        evalsha_usec(url).await,
    );
    let n = SIGN_INS as f64;
    println!(
        "sign-in verify: {:.0} verifies/s (64 at once, one connection); redis cpu {:.1} us/verify; \
         inside scripts {:.1} us/verify\ncommands per verify: {}",
        n / wall.as_secs_f64(),
        (cpu1 - cpu0) / n,
        (us1 - us0) / n,
        per_op(&c0, &c1, SIGN_INS),
    );
}

/// "name=calls/op" for every command whose count moved, except the INFO
/// probe itself.
fn per_op(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, ops: u64) -> String {
    after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .filter_map(|(name, &n)| {
            let d = n - before.get(name).copied().unwrap_or(0);
            (d > 0).then(|| format!("{name}={:.3}", d as f64 / ops as f64))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let Some(target) = testkit::redis_or_skip("redis bench") else {
        return;
    };
    let url = match &target {
        RedisTarget::Started(s) => s.url(),
        RedisTarget::External(u) => u.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = Arc::new(
        rt.block_on(RedisStore::connect(RedisConfig {
            // Room for a slow server (e.g. redis-server under callgrind).
            response_timeout: Duration::from_secs(60),
            ..RedisConfig::new(vec![url.clone()], &b"bench-hash-key-0123456789abcdef"[..])
        }))
        .expect("connect to Redis"),
    );
    let keys: Arc<Vec<String>> =
        Arc::new((0..KEYS).map(|i| format!("user{i}@example.com")).collect());

    rt.block_on(sign_ins(&store, &url));
    if std::env::args().any(|a| a == "--verify-only") {
        drop(target);
        return;
    }
    rt.block_on(async {
        // Warm-up loads the scripts (SCRIPT LOAD after NOSCRIPT).
        store.check(&POLICY, "warm").await.expect("check");
        store
            .advance("warm", 1, 0, Duration::from_secs(60))
            .await
            .expect("advance");
        let c0 = command_calls(&url).await;
        for i in 0..1000 {
            store.check(&POLICY, &keys[i % KEYS]).await.expect("check");
        }
        let c1 = command_calls(&url).await;
        for i in 0..1000u64 {
            store
                .advance("cas-bench", i, 0, Duration::from_secs(60))
                .await
                .expect("advance");
        }
        let c2 = command_calls(&url).await;
        // Only EVALSHA arrives from the client; the other names are the
        // commands the script runs inside the server.
        println!(
            "commands per check: {}\ncommands per compare-and-set: {}\n\
             (INFO commandstats deltas over 1000 operations each; only evalsha is a \
             client round trip, the rest run inside the script)",
            per_op(&c0, &c1, 1000),
            per_op(&c1, &c2, 1000),
        );
    });

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("redis_check");
    g.bench_function("concurrency_1", |b| {
        let mut i = 0usize;
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    i = (i + 1) % KEYS;
                    let _ = store.check(&POLICY, &keys[i]).await.expect("check");
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("concurrency_64", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let per_task = iters.div_ceil(64);
                let mut tasks = Vec::with_capacity(64);
                for t in 0..64u64 {
                    let store = store.clone();
                    let keys = keys.clone();
                    tasks.push(tokio::spawn(async move {
                        for n in 0..per_task {
                            let k = &keys[((t * per_task + n) as usize) % KEYS];
                            let _ = store.check(&POLICY, k).await.expect("check");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("task");
                }
                // Normalise to the `iters` checks criterion asked for.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_task * 64) as f64)
            })
        })
    });
    g.finish();
    c.final_summary();
    drop(target);
}
