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
//! Run: `cargo bench -p otp-ratelimit --features redis --bench redis`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use otp_ratelimit::{LimitPolicy, RateLimiter, RedisConfig, RedisStore, Store};
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
        rt.block_on(RedisStore::connect(RedisConfig::new(
            vec![url.clone()],
            &b"bench-hash-key-0123456789abcdef"[..],
        )))
        .expect("connect to Redis"),
    );
    let keys: Arc<Vec<String>> =
        Arc::new((0..KEYS).map(|i| format!("user{i}@example.com")).collect());

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
