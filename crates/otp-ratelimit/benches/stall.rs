//! Worst-case latency of one memory-store call on a big store (issue 17).
//!
//! Signs in `STALL_N` (default 2 500 000) fresh identities the way a right
//! code verify does (`check_all_now` over the verify policies and the
//! client network, then `advance_all` with a session), then rotates each
//! session once (a refresh), on the system clock with the default sweep
//! interval, and times every call. Prints, per phase, the call count, p50,
//! p99, p99.9 and max in µs, and the slowest call's index. Nothing expires
//! during the run (the harness's case: fresh identities, 7-day sessions),
//! so any maintenance the store does is pure overhead on a request. The
//! ceiling is set to exactly what the run tracks, and one more subject's
//! call is timed (`ceiling_call`: the sweep a call at the ceiling pays).
//!
//! Run: `cargo bench -p otp-ratelimit --bench stall` (`STALL_N=…` to size,
//! `STALL_SWEEP_MS=…` for the sweep interval, default 1000).

use std::time::{Duration, Instant};

use otp_ratelimit::{
    CounterAdvance, CounterRead, LimitCheck, LimitPolicy, MemoryStore, SessionRefresh,
    SessionStart, SessionStore, Store,
};

/// Per-phase latencies in ns.
struct Phase {
    name: &'static str,
    ns: Vec<u64>,
}

impl Phase {
    fn new(name: &'static str, n: usize) -> Self {
        Phase {
            name,
            ns: Vec::with_capacity(n),
        }
    }

    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.ns
            .push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        r
    }

    fn report(&self) {
        let (slowest, &max) = self
            .ns
            .iter()
            .enumerate()
            .max_by_key(|(_, &v)| v)
            .unwrap_or((0, &0));
        let mut s = self.ns.clone();
        s.sort_unstable();
        let q = |p: f64| s.get(((s.len() as f64 * p) as usize).min(s.len().saturating_sub(1)));
        let us = |v: Option<&u64>| v.map_or(0.0, |&v| v as f64 / 1000.0);
        let over = s.iter().filter(|&&v| v > 1_000_000).count();
        println!(
            "stall {}: calls {} over_1ms {over} p50 {:.1} us p99 {:.1} us p99.9 {:.1} us max {:.1} us (call {})",
            self.name,
            s.len(),
            us(q(0.5)),
            us(q(0.99)),
            us(q(0.999)),
            max as f64 / 1000.0,
            slowest
        );
    }
}

fn main() {
    let n: usize = std::env::var("STALL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_500_000);
    let sweep_ms: u64 = std::env::var("STALL_SWEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let store = MemoryStore::new(&b"bench-hash-key-0123456789abcdef"[..])
        // Exactly full at the end: each identity, its session, the network.
        .with_max_keys(2 * n + 1)
        .with_sweep_interval(Duration::from_millis(sweep_ms));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let verify_identity = LimitPolicy::per_secs("verify_identity", 10_000_000, 1);
    let verify_daily = LimitPolicy::per_secs("verify_daily", 10_000_000, 86_400);
    let verify_ip = LimitPolicy::per_secs("verify_ip", 10_000_000, 1);
    let net = "127.0.0.0/24";
    let windows = [5_000_000u64, 5_000_001];
    let day = Duration::from_secs(86_400);
    let mut key = String::with_capacity(64);
    let mut sid = String::with_capacity(32);
    let mut check = Phase::new("verify_check", n);
    let mut advance = Phase::new("verify_advance", n);
    let mut rotate = Phase::new("refresh_rotate", n);
    let started = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            use std::fmt::Write;
            key.clear();
            let _ = write!(key, "user{i}@example.com");
            sid.clear();
            let _ = write!(sid, "sid{i:0>19}");
            let checks = [
                LimitCheck::new(&verify_ip, net),
                LimitCheck::new(&verify_identity, &key),
                LimitCheck::new(&verify_daily, &key).scoped(net),
            ];
            let read = CounterRead {
                identity: &key,
                windows: &windows,
                attempt: None,
            };
            let _ = check.time(|| store.check_all_now(&checks, Some(read)));
            let clear = [LimitCheck::new(&verify_identity, &key)];
            let a = CounterAdvance {
                identity: &key,
                window: windows[1],
                from: 0,
                void: &windows,
                ttl: Duration::from_secs(900),
                clear: &clear,
                session: Some(SessionStart {
                    sid: &sid,
                    ttl: 7 * day,
                    max_lifetime: 30 * day,
                }),
                reset_failures: false,
            };
            let t = Instant::now();
            let won = store.advance_all(&a).await;
            advance
                .ns
                .push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
            assert!(matches!(won, Ok(true)), "a fresh identity's sign-in wins");
        }
        for i in 0..n {
            use std::fmt::Write;
            key.clear();
            let _ = write!(key, "user{i}@example.com");
            sid.clear();
            let _ = write!(sid, "sid{i:0>19}");
            let r = SessionRefresh {
                identity: &key,
                sid: &sid,
                generation: 0,
                grace: Duration::from_secs(10),
                ttl: 7 * day,
                issued_at: 1_800_000_000,
            };
            let t = Instant::now();
            let _ = store.session_rotate(&r).await;
            rotate
                .ns
                .push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    });
    println!(
        "stall: {n} identities and sessions in {:.1} s, {} tracked",
        started.elapsed().as_secs_f64(),
        store.tracked_keys()
    );
    // One more subject at the ceiling: the call sweeps (nothing expired)
    // and is refused; what it pays is the ceiling's sweep.
    let t = Instant::now();
    let refused = store.check_now(&verify_identity, "one-more@example.com");
    println!(
        "stall ceiling_call: {:.2} ms (refused: {})",
        t.elapsed().as_secs_f64() * 1e3,
        refused.is_err()
    );
    let t = Instant::now();
    store.sweep();
    let full = t.elapsed();
    println!(
        "stall full_sweep: {:.1} ms for {} shards ({:.2} ms per shard, what one call pays when its shard's sweep is due)",
        full.as_secs_f64() * 1e3,
        otp_ratelimit::memory::SHARDS,
        full.as_secs_f64() * 1e3 / otp_ratelimit::memory::SHARDS as f64
    );
    check.report();
    advance.report();
    rotate.report();
}
