//! The one behaviour suite every backend must pass (memory, standalone Redis,
//! Redis Cluster). `tests/store.rs` builds a [`Harness`] per backend and calls
//! [`run_all`].
//!
//! Time: with a [`ManualClock`] (memory) the harness moves the clock and the
//! assertions are exact to the millisecond; against Redis (server time) it
//! sleeps for real, and the same assertions hold because a few milliseconds
//! of work between steps can only shrink a remaining wait, which the
//! round-up to whole seconds absorbs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use otp_ratelimit::{LimitPolicy, ManualClock, Store};

/// Two handles on one backend plus a way to let time pass.
pub struct Harness {
    /// The store under test.
    pub a: Arc<dyn Store>,
    /// A second handle on the same data: for Redis a separately connected
    /// store (another replica); for memory the same object.
    pub b: Arc<dyn Store>,
    /// The manual clock of a memory store, if any.
    pub clock: Option<Arc<ManualClock>>,
    /// Makes keys unique per run (an external `REDIS_URL` may be shared).
    pub nonce: String,
}

impl Harness {
    async fn pass(&self, d: Duration) {
        match &self.clock {
            Some(c) => c.advance(d),
            None => tokio::time::sleep(d).await,
        }
    }

    /// A unique identity for this run; contains `@example.com` so that
    /// tests can look for it in Redis keys.
    pub fn identity(&self, tag: &str) -> String {
        format!("{tag}-{}@example.com", self.nonce)
    }
}

/// A nonce from the clock and a counter.
pub fn nonce() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{t:x}{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

const TTL: Duration = Duration::from_secs(120);

/// Runs every case in order, naming each on stderr.
pub async fn run_all(h: &Harness, backend: &str) {
    macro_rules! case {
        ($f:ident) => {
            eprintln!("[{backend}] {}", stringify!($f));
            $f(h).await;
        };
    }
    case!(limit_exact_at_boundary);
    case!(retry_after_exact);
    case!(keys_and_policies_independent);
    case!(clear_restores_budget);
    case!(two_handles_share_one_budget);
    case!(denied_events_are_not_recorded);
    case!(concurrent_checks_never_exceed_max);
    case!(concurrent_compare_and_set_has_one_winner);
    case!(counters_read_in_order_with_zero_for_absent);
    case!(record_failure_exhausts_and_advances_all_windows);
    case!(zero_max_denies);
    case!(check_many_is_consecutive_checks_stopping_at_the_first_denial);
    case!(record_failures_is_consecutive_record_failure_calls);
    case!(check_many_then_counters_reads_counters_only_when_all_allowed);
    case!(advance_then_clear_clears_only_when_it_won);
}

async fn limit_exact_at_boundary(h: &Harness) {
    let p = LimitPolicy::per_secs("t_boundary", 3, 2);
    let k = h.identity("boundary");
    for expected_remaining in [2, 1, 0] {
        let d = h.a.check(&p, &k).await.unwrap();
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.remaining, expected_remaining);
        assert_eq!((d.limit, d.window_secs, d.retry_after_secs), (3, 2, 0));
    }
    let d = h.a.check(&p, &k).await.unwrap();
    assert!(!d.allowed, "the 4th event in the window must be denied");
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after_secs, 2);
    if let Some(c) = &h.clock {
        // Exactness to the millisecond: still denied 1 ms before the window
        // has passed, allowed exactly when it has.
        c.advance(Duration::from_millis(1999));
        let d = h.a.check(&p, &k).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 1);
        c.advance(Duration::from_millis(1));
    } else {
        h.pass(Duration::from_millis(2050)).await;
    }
    let d = h.a.check(&p, &k).await.unwrap();
    assert!(d.allowed, "the window has passed: {d:?}");
    assert_eq!(d.remaining, 2, "the three old events left the window");
}

async fn retry_after_exact(h: &Harness) {
    let p = LimitPolicy::per_secs("t_retry", 2, 3);
    let k = h.identity("retry");
    assert!(h.a.check(&p, &k).await.unwrap().allowed); // e1 at 0
    h.pass(Duration::from_secs(1)).await;
    assert!(h.a.check(&p, &k).await.unwrap().allowed); // e2 at 1
    h.pass(Duration::from_millis(500)).await;
    let d = h.a.check(&p, &k).await.unwrap(); // at 1.5: e1 leaves at 3
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, 2, "1.5 s rounded up");
    h.pass(Duration::from_millis(1500)).await;
    let d = h.a.check(&p, &k).await.unwrap(); // at 3: e1 left; e3 at 3
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.remaining, 0);
    let d = h.a.check(&p, &k).await.unwrap(); // e2 (at 1) leaves at 4
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, 1);
}

async fn keys_and_policies_independent(h: &Harness) {
    let p = LimitPolicy::per_secs("t_indep", 1, 60);
    let q = LimitPolicy::per_secs("t_indep_other", 1, 60);
    let a = h.identity("indep-a");
    let b = h.identity("indep-b");
    assert!(h.a.check(&p, &a).await.unwrap().allowed);
    assert!(!h.a.check(&p, &a).await.unwrap().allowed);
    assert!(h.a.check(&p, &b).await.unwrap().allowed, "other key");
    assert!(h.a.check(&q, &a).await.unwrap().allowed, "other policy");
}

async fn clear_restores_budget(h: &Harness) {
    let p = LimitPolicy::per_secs("t_clear", 2, 600);
    let k = h.identity("clear");
    assert!(h.a.check(&p, &k).await.unwrap().allowed);
    assert!(h.a.check(&p, &k).await.unwrap().allowed);
    assert!(!h.a.check(&p, &k).await.unwrap().allowed);
    h.a.clear(&p, &k).await.unwrap();
    let d = h.a.check(&p, &k).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    // Clearing a key never seen is fine.
    h.a.clear(&p, &h.identity("never-seen")).await.unwrap();
}

async fn two_handles_share_one_budget(h: &Harness) {
    let p = LimitPolicy::per_secs("t_shared", 4, 600);
    let k = h.identity("shared");
    for i in 0..4 {
        let s = if i % 2 == 0 { &h.a } else { &h.b };
        assert!(s.check(&p, &k).await.unwrap().allowed);
    }
    assert!(!h.a.check(&p, &k).await.unwrap().allowed);
    assert!(!h.b.check(&p, &k).await.unwrap().allowed);
    // Use counters are shared too.
    let id = h.identity("shared-counter");
    assert!(h.a.advance(&id, 5, 0, TTL).await.unwrap());
    assert!(!h.b.advance(&id, 5, 0, TTL).await.unwrap());
    assert_eq!(h.b.counters(&id, &[5]).await.unwrap(), vec![1]);
}

async fn denied_events_are_not_recorded(h: &Harness) {
    let p = LimitPolicy::per_secs("t_denied", 1, 2);
    let k = h.identity("denied");
    assert!(h.a.check(&p, &k).await.unwrap().allowed);
    // Hammering while limited must not push the lock-out further.
    for _ in 0..3 {
        h.pass(Duration::from_millis(500)).await;
        assert!(!h.a.check(&p, &k).await.unwrap().allowed);
    }
    h.pass(Duration::from_millis(550)).await;
    assert!(h.a.check(&p, &k).await.unwrap().allowed);
}

async fn concurrent_checks_never_exceed_max(h: &Harness) {
    let p = LimitPolicy::per_secs("t_concurrent", 37, 600);
    let k = h.identity("concurrent");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let s = if i % 2 == 0 { h.a.clone() } else { h.b.clone() };
        let k = k.clone();
        tasks.push(tokio::spawn(async move { s.check(&p, &k).await }));
    }
    let mut allowed = 0;
    let mut remaining_seen = Vec::new();
    for t in tasks {
        let d = t.await.unwrap().unwrap();
        if d.allowed {
            allowed += 1;
            remaining_seen.push(d.remaining);
        } else {
            assert!(d.retry_after_secs > 0 && d.retry_after_secs <= 600, "{d:?}");
        }
    }
    assert_eq!(allowed, 37, "exactly max of 100 concurrent events allowed");
    remaining_seen.sort_unstable();
    assert_eq!(
        remaining_seen,
        (0..37).collect::<Vec<u32>>(),
        "each allowed event saw a distinct remaining count"
    );
}

async fn concurrent_compare_and_set_has_one_winner(h: &Harness) {
    let id = h.identity("cas");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = if i % 2 == 0 { h.a.clone() } else { h.b.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(
            async move { s.advance(&id, 42, 0, TTL).await },
        ));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one compare-and-set from 0 must win");
    assert_eq!(h.a.counters(&id, &[42]).await.unwrap(), vec![1]);
    assert!(!h.a.advance(&id, 42, 0, TTL).await.unwrap(), "replay");
    assert!(h.a.advance(&id, 42, 1, TTL).await.unwrap(), "next use");
    assert_eq!(h.a.counters(&id, &[42]).await.unwrap(), vec![2]);
}

async fn counters_read_in_order_with_zero_for_absent(h: &Harness) {
    let id = h.identity("order");
    assert!(h.a.advance(&id, 11, 0, TTL).await.unwrap());
    assert!(h.a.advance(&id, 11, 1, TTL).await.unwrap());
    assert!(h.a.advance(&id, 13, 0, TTL).await.unwrap());
    assert_eq!(
        h.a.counters(&id, &[10, 11, 12, 13]).await.unwrap(),
        vec![0, 2, 0, 1]
    );
    assert_eq!(h.a.counters(&id, &[]).await.unwrap(), Vec::<u32>::new());
    // Another identity's counters are separate.
    assert_eq!(
        h.a.counters(&h.identity("order-other"), &[11])
            .await
            .unwrap(),
        vec![0]
    );
}

async fn record_failure_exhausts_and_advances_all_windows(h: &Harness) {
    let id = h.identity("failures");
    let windows = [99, 100, 101];
    assert!(h.a.advance(&id, 100, 0, TTL).await.unwrap()); // n=1 at w=100
    for i in 1..3 {
        let o =
            h.a.record_failure(&id, 100, &windows, 3, TTL)
                .await
                .unwrap();
        assert_eq!((o.failures, o.exhausted), (i, false));
    }
    assert_eq!(h.a.counters(&id, &windows).await.unwrap(), vec![0, 1, 0]);
    let o =
        h.b.record_failure(&id, 100, &windows, 3, TTL)
            .await
            .unwrap();
    assert_eq!((o.failures, o.exhausted), (3, true));
    assert_eq!(
        h.a.counters(&id, &windows).await.unwrap(),
        vec![1, 2, 1],
        "every window in the acceptance range advanced"
    );
    // The count was reset: a new code gets a fresh budget.
    let o =
        h.a.record_failure(&id, 100, &windows, 3, TTL)
            .await
            .unwrap();
    assert_eq!((o.failures, o.exhausted), (1, false));
    // Failure counts are per window.
    let o =
        h.a.record_failure(&id, 101, &windows, 3, TTL)
            .await
            .unwrap();
    assert_eq!((o.failures, o.exhausted), (1, false));
    // A budget of 1 exhausts at once.
    let id2 = h.identity("failures-one");
    let o = h.a.record_failure(&id2, 7, &[7], 1, TTL).await.unwrap();
    assert!(o.exhausted);
    assert_eq!(h.a.counters(&id2, &[7]).await.unwrap(), vec![1]);
}

async fn zero_max_denies(h: &Harness) {
    let p = LimitPolicy::per_secs("t_zero", 0, 30);
    let d = h.a.check(&p, &h.identity("zero")).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, 30);
}

/// `check_many` = `check` per policy in order, stopping at the first denial:
/// earlier allowed policies keep their event, the denying one and the ones
/// after it record nothing; and it shares budgets with plain `check`.
async fn check_many_is_consecutive_checks_stopping_at_the_first_denial(h: &Harness) {
    let short = LimitPolicy::per_secs("t_many_short", 3, 60);
    let daily = LimitPolicy::per_secs("t_many_daily", 2, 600);
    let after = LimitPolicy::per_secs("t_many_after", 5, 60);
    let k = h.identity("many");
    let all = [&short, &daily, &after];
    assert!(h.a.check_many(&[], &k).await.unwrap().is_empty());
    let ds = h.a.check_many(&all, &k).await.unwrap();
    assert_eq!(ds.len(), 3, "{ds:?}");
    assert!(ds.iter().all(|d| d.allowed), "{ds:?}");
    assert_eq!(
        ds.iter()
            .map(|d| (d.limit, d.remaining, d.window_secs))
            .collect::<Vec<_>>(),
        [(3, 2, 60), (2, 1, 600), (5, 4, 60)]
    );
    // A plain check on the other handle spends the same budget.
    assert!(h.b.check(&daily, &k).await.unwrap().allowed);
    // `short` allows (its 2nd event, recorded), `daily` denies, `after` is
    // not consulted.
    let ds = h.b.check_many(&all, &k).await.unwrap();
    assert_eq!(ds.len(), 2, "{ds:?}");
    assert!(ds[0].allowed && ds[0].remaining == 1, "{ds:?}");
    assert!(!ds[1].allowed, "{ds:?}");
    assert_eq!((ds[1].limit, ds[1].remaining), (2, 0));
    assert!((1..=600).contains(&ds[1].retry_after_secs), "{ds:?}");
    // The denied `daily` event was not recorded, `after` untouched, `short`
    // recorded twice: it has one event left.
    assert_eq!(h.a.check(&after, &k).await.unwrap().remaining, 3);
    let d = h.a.check(&short, &k).await.unwrap();
    assert!(d.allowed && d.remaining == 0, "{d:?}");
    // Now the first policy denies: one decision, nothing recorded anywhere.
    let ds = h.a.check_many(&all, &k).await.unwrap();
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert!(!ds[0].allowed);
    assert_eq!(h.a.check(&after, &k).await.unwrap().remaining, 2);
    // One policy behaves exactly as `check`.
    let ds = h.a.check_many(&[&after], &k).await.unwrap();
    assert_eq!(ds.len(), 1);
    assert!(ds[0].allowed && ds[0].remaining == 1, "{ds:?}");
}

/// `record_failures` has the effect of one `record_failure` per issued window,
/// in order, including an exhaustion in the middle of the batch.
async fn record_failures_is_consecutive_record_failure_calls(h: &Harness) {
    let id = h.identity("failures-batch");
    let windows = [99, 100, 101];
    assert!(h
        .a
        .record_failures(&id, &[], &windows, 3, TTL)
        .await
        .unwrap()
        .is_empty());
    let o =
        h.a.record_failures(&id, &[99, 100], &windows, 3, TTL)
            .await
            .unwrap();
    let got: Vec<_> = o.iter().map(|o| (o.failures, o.exhausted)).collect();
    assert_eq!(got, [(1, false), (1, false)]);
    // Window 99 reaches 2, then a plain call on the other handle makes it 3
    // (exhausted: every counter advances, its count resets).
    let o =
        h.b.record_failures(&id, &[99], &windows, 3, TTL)
            .await
            .unwrap();
    assert_eq!((o[0].failures, o[0].exhausted), (2, false));
    let o = h.b.record_failure(&id, 99, &windows, 3, TTL).await.unwrap();
    assert!(o.exhausted);
    assert_eq!(h.a.counters(&id, &windows).await.unwrap(), vec![1, 1, 1]);
    // Window 100 (at 1) then 99 (reset, at 0): 100 reaches 2, then 3 inside
    // the batch exhausts and advances every counter; 99 counts from the
    // reset; a duplicate window counts twice, as two calls would.
    let o =
        h.a.record_failures(&id, &[100, 100, 99], &windows, 3, TTL)
            .await
            .unwrap();
    let got: Vec<_> = o.iter().map(|o| (o.failures, o.exhausted)).collect();
    assert_eq!(got, [(2, false), (3, true), (1, false)]);
    assert_eq!(h.a.counters(&id, &windows).await.unwrap(), vec![2, 2, 2]);
    // After the exhaustion window 100 starts again from 0.
    let o =
        h.a.record_failure(&id, 100, &windows, 3, TTL)
            .await
            .unwrap();
    assert_eq!((o.failures, o.exhausted), (1, false));
}

/// `check_many_then_counters` = `check_many`, then `counters` when every
/// policy allowed.
async fn check_many_then_counters_reads_counters_only_when_all_allowed(h: &Harness) {
    let short = LimitPolicy::per_secs("t_mc_short", 5, 60);
    let daily = LimitPolicy::per_secs("t_mc_daily", 1, 600);
    let id = h.identity("many-counters");
    let windows = [40, 41, 42];
    assert!(h.a.advance(&id, 41, 0, TTL).await.unwrap());
    assert!(h.a.advance(&id, 41, 1, TTL).await.unwrap());
    assert!(h.a.advance(&id, 42, 0, TTL).await.unwrap());
    let (ds, counters) =
        h.b.check_many_then_counters(&[&short, &daily], &id, &windows)
            .await
            .unwrap();
    assert_eq!(ds.len(), 2);
    assert!(ds.iter().all(|d| d.allowed), "{ds:?}");
    assert_eq!((ds[0].remaining, ds[1].remaining), (4, 0));
    assert_eq!(counters, Some(vec![0, 2, 1]));
    // `daily` denies now: no counters, `short` recorded its event.
    let (ds, counters) =
        h.a.check_many_then_counters(&[&short, &daily], &id, &windows)
            .await
            .unwrap();
    assert_eq!(ds.len(), 2);
    assert!(ds[0].allowed && !ds[1].allowed, "{ds:?}");
    assert_eq!(counters, None);
    assert_eq!(h.a.check(&short, &id).await.unwrap().remaining, 2);
    // No policy: just the counters.
    let (ds, counters) = h.a.check_many_then_counters(&[], &id, &[41]).await.unwrap();
    assert!(ds.is_empty());
    assert_eq!(counters, Some(vec![2]));
}

/// `advance_then_clear` = `advance`, then `clear` only if the CAS won.
async fn advance_then_clear_clears_only_when_it_won(h: &Harness) {
    let p = LimitPolicy::per_secs("t_adv_clear", 3, 60);
    let id = h.identity("advance-clear");
    for _ in 0..2 {
        assert!(h.a.check(&p, &id).await.unwrap().allowed);
    }
    // A lost CAS (the counter is 0, not 5) clears nothing.
    assert!(!h.a.advance_then_clear(&id, 9, 5, TTL, &p).await.unwrap());
    assert_eq!(h.a.counters(&id, &[9]).await.unwrap(), vec![0]);
    assert_eq!(h.a.check(&p, &id).await.unwrap().remaining, 0);
    // A won CAS advances and clears the budget.
    assert!(h.b.advance_then_clear(&id, 9, 0, TTL, &p).await.unwrap());
    assert_eq!(h.a.counters(&id, &[9]).await.unwrap(), vec![1]);
    assert_eq!(h.a.check(&p, &id).await.unwrap().remaining, 2);
    // Replaying the same `from` loses.
    assert!(!h.a.advance_then_clear(&id, 9, 0, TTL, &p).await.unwrap());
    assert_eq!(h.a.check(&p, &id).await.unwrap().remaining, 1);
}
