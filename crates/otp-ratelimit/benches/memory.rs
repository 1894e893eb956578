//! Memory backend benchmarks.
//!
//! 1. Bytes per tracked identity: the resident-set growth (`VmRSS` of
//!    `/proc/self/status`, Linux) while 1 000 000 distinct identities each
//!    record one event, divided by 1 000 000. Measured first, in a fresh
//!    process, for one policy (`request_identity`, 5/600 s) and for the three
//!    per-identity policies together, each in a child process of its own;
//!    printed as `bytes_per_identity …`; and for what one wrong-code
//!    verify stores (every policy a verify touches, SPEC §9: bar 200 B).
//!    `-- --bytes-only` stops after these figures.
//!    RSS counts what the allocator really took from the OS (table slack,
//!    allocator headers and all), so it is an upper bound of the live bytes.
//! 2. Criterion: ns per check of an existing key (HMAC of the key, shard
//!    lock, log update), on 1 thread and on 2 threads at once.
//!
//! Run: `cargo bench -p otp-ratelimit --bench memory`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use otp_ratelimit::{CounterRead, LimitCheck, LimitPolicy, MemoryStore};

const IDENTITIES: usize = 1_000_000;

/// The default policies of SPEC §6 a verify and a request touch (the
/// `Limits` of otp-service, which this crate does not depend on).
struct DefaultLimits {
    request_per_identity: LimitPolicy,
    verify_per_identity: LimitPolicy,
    verify_daily: LimitPolicy,
    verify_per_ip: LimitPolicy,
}

impl DefaultLimits {
    fn new() -> Self {
        DefaultLimits {
            request_per_identity: LimitPolicy::per_secs("request_identity", 5, 600),
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 10, 600),
            verify_daily: LimitPolicy::per_secs("verify_daily", 30, 86_400),
            verify_per_ip: LimitPolicy::per_secs("verify_ip", 60, 600),
        }
    }
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// RSS growth per identity after `IDENTITIES` identities checked under
/// every policy in `policies`.
fn bytes_per_identity(policies: &[LimitPolicy]) -> Option<f64> {
    let store = MemoryStore::new(&b"bench-hash-key-0123456789abcdef"[..]).with_max_keys(usize::MAX);
    let mut key = String::with_capacity(64);
    let before = rss_bytes()?;
    for i in 0..IDENTITIES {
        key.clear();
        use std::fmt::Write;
        let _ = write!(key, "user{i}@example.com");
        for p in policies {
            let _ = black_box(store.check_now(p, &key));
        }
    }
    let after = rss_bytes()?;
    assert!(store.tracked_keys() == IDENTITIES, "one entry per identity");
    Some(after.saturating_sub(before) as f64 / IDENTITIES as f64)
}

/// RSS growth per identity after `IDENTITIES` identities each made one
/// wrong-code verify with the store calls the service makes (SPEC §9:
/// "counting every policy a verify touches"): one decision over the
/// per-IP window (one shared client network), the identity's verify
/// window, its daily window for that network and its daily ceiling, with
/// the counters of two candidate windows; then the failure counts of both
/// windows.
fn bytes_per_verifying_identity() -> Option<f64> {
    let l = DefaultLimits::new();
    let ceiling = LimitPolicy::per_secs("verify_daily_identity", 100, 86_400);
    let store = MemoryStore::new(&b"bench-hash-key-0123456789abcdef"[..]).with_max_keys(usize::MAX);
    let net = "192.0.2.1";
    let windows = [5_000_000u64, 5_000_001];
    let ttl = Duration::from_secs(900);
    let mut key = String::with_capacity(64);
    let before = rss_bytes()?;
    for i in 0..IDENTITIES {
        key.clear();
        use std::fmt::Write;
        let _ = write!(key, "user{i}@example.com");
        let checks = [
            LimitCheck::new(&l.verify_per_ip, net),
            LimitCheck::new(&l.verify_per_identity, &key),
            LimitCheck::new(&l.verify_daily, &key).scoped(net),
            LimitCheck::new(&ceiling, &key),
        ];
        let read = CounterRead {
            identity: &key,
            windows: &windows,
        };
        let _ = black_box(store.check_all_now(&checks, Some(read)));
        let _ = black_box(store.record_failures_now(&key, &windows, &windows, 5, ttl));
    }
    let after = rss_bytes()?;
    assert!(
        store.tracked_keys() == IDENTITIES + 1,
        "one entry per identity"
    );
    Some(after.saturating_sub(before) as f64 / IDENTITIES as f64)
}

fn checks(c: &mut Criterion) {
    let store = Arc::new(MemoryStore::new(&b"bench-hash-key-0123456789abcdef"[..]));
    // Keys rotate over 1024 identities: each key comes back every ~1024
    // checks, well inside the 1 ms window, so every check drops the oldest
    // event and records a new one (the steady state of a busy key).
    let policy = LimitPolicy {
        name: "bench",
        max: 1_000_000,
        window: Duration::from_millis(1),
    };
    let keys: Vec<String> = (0..1024).map(|i| format!("user{i}@example.com")).collect();

    let mut g = c.benchmark_group("memory_check");
    g.bench_function("1_thread", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(store.check_now(&policy, &keys[i]))
        })
    });
    // Each iteration is one check on each of 2 threads at once (different
    // keys): time per iteration = wall time for 2 checks.
    g.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2usize {
                    let store = &store;
                    let keys = &keys;
                    let policy = &policy;
                    s.spawn(move || {
                        for n in 0..iters as usize {
                            let i = (n * 2 + t) & 1023;
                            let _ = black_box(store.check_now(policy, &keys[i]));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

/// Environment variable under which the bench re-runs itself to measure
/// one configuration in a fresh process (freed memory from one measurement
/// must not hide the growth of the next).
const MEASURE_ENV: &str = "OTP_BENCH_MEASURE_POLICIES";

fn measure_in_child(what: &str) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .env(MEASURE_ENV, what)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let l = DefaultLimits::new();
    if let Ok(n) = std::env::var(MEASURE_ENV) {
        let b = match n.as_str() {
            "verify" => bytes_per_verifying_identity(),
            "3" => bytes_per_identity(&[
                l.request_per_identity,
                l.verify_per_identity,
                l.verify_daily,
            ]),
            _ => bytes_per_identity(&[l.request_per_identity]),
        };
        match b {
            Some(b) => println!("{b:.1}"),
            None => println!("unavailable (no /proc/self/status)"),
        }
        return;
    }
    println!(
        "bytes_per_identity one_policy={} three_identity_policies={} wrong_code_verify={} \
         (RSS delta over {IDENTITIES} identities; bar: 200 B for a verify)",
        measure_in_child("1").unwrap_or_default(),
        measure_in_child("3").unwrap_or_default(),
        measure_in_child("verify").unwrap_or_default(),
    );
    if std::env::args().any(|a| a == "--bytes-only") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    checks(&mut c);
    c.final_summary();
}
