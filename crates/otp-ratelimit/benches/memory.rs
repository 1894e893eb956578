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
//! 2. Criterion: ns per check of an existing key (keyed hash of the key, shard
//!    lock, log update), on 1 thread and on 2 threads at once.
//! 3. Bytes per session (SPEC §9: bar 100 B): the RSS growth over 10⁶
//!    sessions, each created the way a sign-in creates it and rotated once,
//!    printed as `bytes_per_session …`: `alone` (a session whose identity
//!    holds nothing else, its state for most of its life), `added_to_a_sign_in`
//!    (a sign-in with a session minus one without) and `sign_out_epoch` (one
//!    sign-out everywhere per identity); measured before the criterion
//!    runs, so `-- --bytes-only` prints it too.
//!
//! Run: `cargo bench -p otp-ratelimit --bench memory`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use otp_ratelimit::{
    CounterAdvance, CounterRead, LimitCheck, LimitPolicy, MemoryStore, Rotation, SessionRefresh,
    SessionStart, SessionStore, Store,
};

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
            attempt: None,
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

/// What each of the `IDENTITIES` identities does in
/// [`bytes_per_session`].
#[derive(Clone, Copy, PartialEq)]
enum SessionRun {
    /// A sign-in's compare-and-set with its session (the call a verify
    /// makes, `advance_all` with `session`), then one rotation.
    SignIn,
    /// The same compare-and-set without a session: subtracted from
    /// `SignIn`, it gives what the session adds to a sign-in.
    SignInWithout,
    /// `session_create` and one rotation on an identity that holds nothing
    /// else: the state of a session once the sign-in's counters expired
    /// (after 15 minutes of a 7-day session).
    Alone,
    /// A sign-out everywhere (`sessions_revoke_all`): the epoch record.
    Epoch,
}

/// RSS growth per identity after `IDENTITIES` identities each did `run`.
fn bytes_per_session(run: SessionRun) -> Option<f64> {
    let store = MemoryStore::new(&b"bench-hash-key-0123456789abcdef"[..]).with_max_keys(usize::MAX);
    let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
    let windows = [5_000_000u64, 5_000_001];
    let day = Duration::from_secs(86_400);
    let start = SessionStart {
        sid: "",
        ttl: 7 * day,
        max_lifetime: 30 * day,
    };
    let mut key = String::with_capacity(64);
    let mut sid = String::with_capacity(32);
    let before = rss_bytes()?;
    rt.block_on(async {
        for i in 0..IDENTITIES {
            use std::fmt::Write;
            key.clear();
            let _ = write!(key, "user{i}@example.com");
            // 22 characters like a base64url SessionId of 16 bytes.
            sid.clear();
            let _ = write!(sid, "sid{i:0>19}");
            let session = SessionStart { sid: &sid, ..start };
            match run {
                SessionRun::SignIn | SessionRun::SignInWithout => {
                    let a = CounterAdvance {
                        identity: &key,
                        window: windows[1],
                        from: 0,
                        void: &windows,
                        ttl: Duration::from_secs(900),
                        clear: &[],
                        session: (run == SessionRun::SignIn).then_some(session),
                        reset_failures: false,
                    };
                    assert!(store.advance_all(&a).await.unwrap_or(false));
                }
                SessionRun::Alone => {
                    let _ = store
                        .session_create(&key, &sid, start.ttl, start.max_lifetime)
                        .await;
                }
                SessionRun::Epoch => {
                    let _ = store.sessions_revoke_all(&key, start.max_lifetime).await;
                }
            }
            if matches!(run, SessionRun::SignIn | SessionRun::Alone) {
                let r = SessionRefresh {
                    identity: &key,
                    sid: &sid,
                    generation: 0,
                    grace: Duration::from_secs(10),
                    ttl: start.ttl,
                    issued_at: 1_800_000_000,
                };
                let rotated = store.session_rotate(&r).await;
                assert!(matches!(rotated, Ok(Rotation::Rotated { .. })));
            }
        }
    });
    let after = rss_bytes()?;
    black_box(&store);
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
            "session_sign_in" => bytes_per_session(SessionRun::SignIn),
            "session_sign_in_without" => bytes_per_session(SessionRun::SignInWithout),
            "session_alone" => bytes_per_session(SessionRun::Alone),
            "epoch" => bytes_per_session(SessionRun::Epoch),
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
    let figure = |what| {
        measure_in_child(what)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (with, without) = (figure("session_sign_in"), figure("session_sign_in_without"));
    println!(
        "bytes_per_session alone={:.1} added_to_a_sign_in={:.1} (sign_in_with={with:.1} \
         sign_in_without={without:.1}) sign_out_epoch={:.1} \
         (RSS delta over {IDENTITIES} sessions, one rotation each; bar: 100 B)",
        figure("session_alone"),
        with - without,
        figure("epoch"),
    );
    if std::env::args().any(|a| a == "--bytes-only") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    checks(&mut c);
    c.final_summary();
}
