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

use otp_ratelimit::{
    CounterAdvance, CounterRead, LimitCheck, LimitPolicy, ManualClock, Rotation, SessionRefresh,
    SessionStart, Store, StoreError,
};

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
    case!(record_failures_is_consecutive_record_failure_calls);
    case!(check_all_records_in_every_window_only_when_all_allow);
    case!(identity_limit_denial_spends_no_per_ip_budget);
    case!(per_ip_denial_costs_the_identity_nothing);
    case!(retry_after_is_the_longest_wait_among_the_denying_limits);
    case!(scoped_windows_are_separate_budgets_of_one_subject);
    case!(check_all_reads_counters_only_when_all_allow);
    case!(concurrent_decisions_across_subjects_never_exceed_either_limit);
    case!(advance_all_voids_every_window_and_clears_only_when_it_won);
    case!(check_all_counts_an_attempt_only_when_all_allow);
    case!(concurrent_counted_attempts_each_get_a_count_of_their_own);
    case!(a_winning_advance_resets_failure_counts_only_when_asked);
    case!(session_rotation_follows_the_rule_of_spec_10);
    case!(session_reuse_after_the_grace_revokes_the_session);
    case!(concurrent_rotations_of_one_generation_have_one_winner);
    case!(session_revoke_ends_one_session_only);
    case!(sign_out_everywhere_ends_sessions_created_before_it);
    case!(idle_session_expires_after_its_ttl);
    case!(session_ids_are_checked);
    case!(a_winning_advance_creates_its_session_in_the_same_step);
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
    // Window 99 at 1 (counted after its reset), 100 at 1: 100 reaches 2,
    // then 3 inside the batch exhausts and advances every counter; the
    // batch stops there (99 is not counted) and every aimed count resets.
    let o =
        h.a.record_failures(&id, &[99], &windows, 3, TTL)
            .await
            .unwrap();
    assert_eq!((o[0].failures, o[0].exhausted), (1, false));
    let o =
        h.a.record_failures(&id, &[100, 100, 99], &windows, 3, TTL)
            .await
            .unwrap();
    let got: Vec<_> = o.iter().map(|o| (o.failures, o.exhausted)).collect();
    assert_eq!(got, [(2, false), (3, true)]);
    assert_eq!(h.a.counters(&id, &windows).await.unwrap(), vec![2, 2, 2]);
    // After the exhaustion windows 100 and 99 start again from 0.
    for w in [100, 99] {
        let o = h.a.record_failure(&id, w, &windows, 3, TTL).await.unwrap();
        assert_eq!((o.failures, o.exhausted), (1, false), "window {w}");
    }
}

/// One decision: when any window denies, no window records the event; when
/// all allow, every one does (and plain `check` shares the budgets).
async fn check_all_records_in_every_window_only_when_all_allow(h: &Harness) {
    let short = LimitPolicy::per_secs("t_all_short", 3, 60);
    let daily = LimitPolicy::per_secs("t_all_daily", 2, 600);
    let k = h.identity("all");
    let checks = [LimitCheck::new(&short, &k), LimitCheck::new(&daily, &k)];
    assert!(h.a.check_all(&[], None).await.unwrap().decisions.is_empty());
    let c = h.a.check_all(&checks, None).await.unwrap();
    assert!(c.allowed(), "{c:?}");
    assert_eq!(
        c.decisions
            .iter()
            .map(|d| (d.limit, d.remaining, d.window_secs))
            .collect::<Vec<_>>(),
        [(3, 2, 60), (2, 1, 600)]
    );
    assert_eq!(c.counters, None, "no counters were asked for");
    // A plain check on the other handle spends the daily budget.
    assert!(h.b.check(&daily, &k).await.unwrap().allowed);
    // Daily denies: nothing recorded, short still has two events left.
    for _ in 0..3 {
        let c = h.b.check_all(&checks, None).await.unwrap();
        assert!(!c.allowed());
        assert!(c.decisions[0].allowed && !c.decisions[1].allowed, "{c:?}");
        assert_eq!(c.decisions[0].remaining, 2, "short would still allow 2");
        assert_eq!(c.longest_denial(), Some(1));
    }
    let d = h.a.check(&short, &k).await.unwrap();
    assert!(
        d.allowed && d.remaining == 1,
        "denials recorded nothing: {d:?}"
    );
}

/// Issue 13 item 1: a request the identity limit denies spends nothing of
/// the per-IP budget (another subject, another Cluster slot).
async fn identity_limit_denial_spends_no_per_ip_budget(h: &Harness) {
    let per_ip = LimitPolicy::per_secs("t_office_ip", 3, 600);
    let per_id = LimitPolicy::per_secs("t_office_id", 1, 600);
    let ip = format!("203.0.113.7-{}", h.nonce);
    let alice = h.identity("office-alice");
    let bob = h.identity("office-bob");
    let req = |who: &'static str| {
        let id = if who == "alice" { &alice } else { &bob };
        [LimitCheck::new(&per_ip, &ip), LimitCheck::new(&per_id, id)]
    };
    assert!(h
        .a
        .check_all(
            &req("alice"),
            Some(CounterRead {
                identity: &alice,
                windows: &[1],
                attempt: None,
            })
        )
        .await
        .unwrap()
        .allowed());
    // Alice hammers: every call is denied by her identity limit.
    for i in 0..10 {
        let s = if i % 2 == 0 { &h.a } else { &h.b };
        let c = s
            .check_all(
                &req("alice"),
                Some(CounterRead {
                    identity: &alice,
                    windows: &[1],
                    attempt: None,
                }),
            )
            .await
            .unwrap();
        assert!(!c.allowed());
        assert!(c.decisions[0].allowed && !c.decisions[1].allowed, "{c:?}");
        assert_eq!(c.counters, None);
    }
    // Her neighbour behind the same IP still has 2 of 3.
    let c =
        h.a.check_all(
            &req("bob"),
            Some(CounterRead {
                identity: &bob,
                windows: &[1],
                attempt: None,
            }),
        )
        .await
        .unwrap();
    assert!(c.allowed(), "{c:?}");
    assert_eq!(
        c.decisions[0].remaining, 1,
        "the IP saw alice once and bob once"
    );
    assert_eq!(c.counters, Some(vec![0]));
}

/// The converse: a per-IP denial records nothing for the identity.
async fn per_ip_denial_costs_the_identity_nothing(h: &Harness) {
    let per_ip = LimitPolicy::per_secs("t_ipden_ip", 1, 600);
    let per_id = LimitPolicy::per_secs("t_ipden_id", 2, 600);
    let ip = format!("198.51.100.1-{}", h.nonce);
    let other_ip = format!("198.51.100.2-{}", h.nonce);
    let id = h.identity("ipden");
    assert!(h.a.check(&per_ip, &ip).await.unwrap().allowed);
    for _ in 0..5 {
        let c =
            h.b.check_all(
                &[LimitCheck::new(&per_ip, &ip), LimitCheck::new(&per_id, &id)],
                None,
            )
            .await
            .unwrap();
        assert!(!c.decisions[0].allowed && c.decisions[1].allowed, "{c:?}");
        assert_eq!(
            c.decisions[1].remaining, 2,
            "nothing recorded for the identity"
        );
    }
    let c =
        h.a.check_all(
            &[
                LimitCheck::new(&per_ip, &other_ip),
                LimitCheck::new(&per_id, &id),
            ],
            None,
        )
        .await
        .unwrap();
    assert!(c.allowed(), "{c:?}");
    assert_eq!(c.decisions[1].remaining, 1);
}

/// Each denying limit reports its own wait; the decision's is the longest.
async fn retry_after_is_the_longest_wait_among_the_denying_limits(h: &Harness) {
    let short = LimitPolicy::per_secs("t_wait_short", 1, 5);
    let long = LimitPolicy::per_secs("t_wait_long", 1, 50);
    let ip = format!("192.0.2.99-{}", h.nonce);
    let id = h.identity("wait");
    let checks = [LimitCheck::new(&short, &ip), LimitCheck::new(&long, &id)];
    assert!(h.a.check_all(&checks, None).await.unwrap().allowed());
    let c = h.b.check_all(&checks, None).await.unwrap();
    assert!(!c.decisions[0].allowed && !c.decisions[1].allowed, "{c:?}");
    assert!((4..=5).contains(&c.decisions[0].retry_after_secs), "{c:?}");
    assert!(
        (49..=50).contains(&c.decisions[1].retry_after_secs),
        "{c:?}"
    );
    assert_eq!(c.longest_denial(), Some(1));
}

/// A scope is a separate window of the same policy inside one subject.
async fn scoped_windows_are_separate_budgets_of_one_subject(h: &Harness) {
    let daily = LimitPolicy::per_secs("t_scoped", 1, 600);
    let id = h.identity("scoped");
    let net_a = LimitCheck::new(&daily, &id).scoped("192.0.2.1");
    let net_b = LimitCheck::new(&daily, &id).scoped("2001:db8:1::/64");
    assert!(h.a.check_all(&[net_a], None).await.unwrap().allowed());
    assert!(!h.b.check_all(&[net_a], None).await.unwrap().allowed());
    assert!(h.a.check_all(&[net_b], None).await.unwrap().allowed());
    assert!(
        h.a.check(&daily, &id).await.unwrap().allowed,
        "unscoped is its own"
    );
}

/// Counters come back only when every window allowed.
async fn check_all_reads_counters_only_when_all_allow(h: &Harness) {
    let p = LimitPolicy::per_secs("t_read", 1, 600);
    let id = h.identity("read");
    let windows = [40, 41, 42];
    assert!(h.a.advance(&id, 41, 0, TTL).await.unwrap());
    assert!(h.a.advance(&id, 41, 1, TTL).await.unwrap());
    assert!(h.a.advance(&id, 42, 0, TTL).await.unwrap());
    let read = Some(CounterRead {
        identity: &id,
        windows: &windows,
        attempt: None,
    });
    let c =
        h.b.check_all(&[LimitCheck::new(&p, &id)], read)
            .await
            .unwrap();
    assert_eq!(c.counters, Some(vec![0, 2, 1]));
    let c =
        h.b.check_all(&[LimitCheck::new(&p, &id)], read)
            .await
            .unwrap();
    assert_eq!(c.counters, None, "denied");
    // No window: just the counters.
    let c = h.a.check_all(&[], read).await.unwrap();
    assert_eq!(c.counters, Some(vec![0, 2, 1]));
}

/// Concurrent decisions over two subjects: neither limit is exceeded and
/// no event is left behind by a denied call (reserve-then-release on
/// Cluster).
async fn concurrent_decisions_across_subjects_never_exceed_either_limit(h: &Harness) {
    let per_ip = LimitPolicy::per_secs("t_conc_ip", 30, 600);
    let per_id = LimitPolicy::per_secs("t_conc_id", 10, 600);
    let ip = format!("192.0.2.50-{}", h.nonce);
    let id = h.identity("conc");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { h.a.clone() } else { h.b.clone() };
        let (ip, id) = (ip.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            s.check_all(
                &[LimitCheck::new(&per_ip, &ip), LimitCheck::new(&per_id, &id)],
                None,
            )
            .await
            .unwrap()
            .allowed()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10, "the identity limit binds");
    // The IP saw exactly the 10 allowed events: 20 left.
    assert_eq!(h.a.check(&per_ip, &ip).await.unwrap().remaining, 19);
}

/// `advance_all`: a won compare-and-set advances every other window given
/// and clears the windows given; a lost one changes nothing.
async fn advance_all_voids_every_window_and_clears_only_when_it_won(h: &Harness) {
    let p = LimitPolicy::per_secs("t_adv_all", 3, 60);
    let id = h.identity("advance-all");
    for _ in 0..2 {
        assert!(h.a.check(&p, &id).await.unwrap().allowed);
    }
    let clear = [LimitCheck::new(&p, &id)];
    let mut a = CounterAdvance {
        identity: &id,
        window: 9,
        from: 5,
        void: &[8, 9, 10],
        ttl: TTL,
        clear: &clear,
        session: None,
        reset_failures: false,
    };
    assert!(
        !h.a.advance_all(&a).await.unwrap(),
        "the counter is 0, not 5"
    );
    assert_eq!(h.a.counters(&id, &[8, 9, 10]).await.unwrap(), vec![0, 0, 0]);
    assert_eq!(h.a.check(&p, &id).await.unwrap().remaining, 0);
    a.from = 0;
    assert!(h.b.advance_all(&a).await.unwrap());
    assert_eq!(
        h.a.counters(&id, &[8, 9, 10]).await.unwrap(),
        vec![1, 1, 1],
        "every code of the range is void; the matched one advanced once"
    );
    assert_eq!(h.a.check(&p, &id).await.unwrap().remaining, 2, "cleared");
    assert!(!h.a.advance_all(&a).await.unwrap(), "replay loses");
    // Clearing another subject's window is refused.
    let other = h.identity("advance-other");
    let bad = [LimitCheck::new(&p, &other)];
    a.clear = &bad;
    a.from = 1;
    assert!(h.a.advance_all(&a).await.is_err());
}

/// `CounterRead::attempt`: the decision counts one failure at every window
/// when (and only when) every limit allows, and says the counts; the counts
/// are the ones `record_failures` and `void_codes` work on.
async fn check_all_counts_an_attempt_only_when_all_allow(h: &Harness) {
    let p = LimitPolicy::per_secs("t_attempt", 2, 600);
    let id = h.identity("attempt");
    let windows = [60, 61, 62];
    assert!(h.a.advance(&id, 61, 0, TTL).await.unwrap());
    let read = CounterRead::new(&id, &windows).counting_attempt(TTL);
    let checks = [LimitCheck::new(&p, &id)];
    let c = h.a.check_all(&checks, Some(read)).await.unwrap();
    assert_eq!(c.counters, Some(vec![0, 1, 0]));
    assert_eq!(c.failures, Some(vec![1, 1, 1]));
    let c = h.b.check_all(&checks, Some(read)).await.unwrap();
    assert_eq!(
        c.failures,
        Some(vec![2, 2, 2]),
        "the other handle sees the count"
    );
    let c = h.a.check_all(&checks, Some(read)).await.unwrap();
    assert!(!c.allowed());
    assert_eq!(
        (c.counters, c.failures),
        (None, None),
        "a denial counts nothing"
    );
    // Without `attempt` nothing is counted and no counts are returned.
    let c =
        h.a.check_all(&[], Some(CounterRead::new(&id, &windows)))
            .await
            .unwrap();
    assert_eq!((c.counters, c.failures), (Some(vec![0, 1, 0]), None));
    // The counts are the failure counts of SPEC §3.3: one more wrong code
    // at window 60 is its third.
    let o =
        h.a.record_failure(&id, 60, &windows, 10, TTL)
            .await
            .unwrap();
    assert_eq!((o.failures, o.exhausted), (3, false));
    // Voiding: every counter advances, every count resets.
    h.b.void_codes(&id, &windows, TTL).await.unwrap();
    assert_eq!(h.a.counters(&id, &windows).await.unwrap(), vec![1, 2, 1]);
    let c = h.a.check_all(&[], Some(read)).await.unwrap();
    assert_eq!(
        c.failures,
        Some(vec![1, 1, 1]),
        "fresh budgets after the void"
    );
    h.a.void_codes(&id, &[], TTL).await.unwrap();
}

/// Concurrent verifies that count their attempt in the decision each get a
/// count of their own (1, 2, …, n): so none of them can be compared with a
/// code beyond its budget, whatever the timing.
async fn concurrent_counted_attempts_each_get_a_count_of_their_own(h: &Harness) {
    let id = h.identity("attempt-conc");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { h.a.clone() } else { h.b.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let read = CounterRead::new(&id, &[5, 6]).counting_attempt(TTL);
            s.check_all(&[], Some(read))
                .await
                .unwrap()
                .failures
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        let f = t.await.unwrap();
        assert_eq!(f[0], f[1], "both windows counted in the same step");
        seen.push(f[0]);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u32>>());
}

/// `CounterAdvance::reset_failures`: a winning advance resets the failure
/// counts of its window and of every voided window; without the flag, or
/// when the compare-and-set loses, the counts stay.
async fn a_winning_advance_resets_failure_counts_only_when_asked(h: &Harness) {
    let id = h.identity("attempt-reset");
    let windows = [70, 71];
    let read = CounterRead::new(&id, &windows).counting_attempt(TTL);
    for _ in 0..2 {
        h.a.check_all(&[], Some(read)).await.unwrap();
    }
    let mut a = CounterAdvance {
        identity: &id,
        window: 71,
        from: 0,
        void: &windows,
        ttl: TTL,
        clear: &[],
        session: None,
        reset_failures: false,
    };
    assert!(h.a.advance_all(&a).await.unwrap());
    let c = h.b.check_all(&[], Some(read)).await.unwrap();
    assert_eq!(c.failures, Some(vec![3, 3]), "kept without the flag");
    a.reset_failures = true;
    assert!(
        !h.b.advance_all(&a).await.unwrap(),
        "from 0 lost: counter is 1"
    );
    let c = h.a.check_all(&[], Some(read)).await.unwrap();
    assert_eq!(
        c.failures,
        Some(vec![4, 4]),
        "a lost advance resets nothing"
    );
    a.from = 1;
    assert!(h.b.advance_all(&a).await.unwrap());
    assert_eq!(h.a.counters(&id, &windows).await.unwrap(), vec![2, 2]);
    let c = h.a.check_all(&[], Some(read)).await.unwrap();
    assert_eq!(c.failures, Some(vec![1, 1]), "reset by the winning advance");
}

// ------------------------------------------------------------ sessions (SPEC §10)

const SESSION_TTL: Duration = Duration::from_secs(600);
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
const GRACE: Duration = Duration::from_secs(10);

fn refresh<'a>(id: &'a str, sid: &'a str, generation: u64) -> SessionRefresh<'a> {
    SessionRefresh {
        identity: id,
        sid,
        generation,
        grace: GRACE,
        ttl: SESSION_TTL,
        issued_at: 1_800_000_000 + generation,
    }
}

async fn create(h: &Harness, id: &str, sid: &str) -> u64 {
    h.a.session_create(id, sid, SESSION_TTL, MAX_LIFETIME)
        .await
        .unwrap()
}

async fn session_rotation_follows_the_rule_of_spec_10(h: &Harness) {
    let id = h.identity("sess-rule");
    let created = create(h, &id, "s1").await;
    assert!(created > 0);
    let Rotation::Rotated {
        generation: 1,
        rotated_at_ms: r1,
        issued_at: 1_800_000_000,
    } = h.a.session_rotate(&refresh(&id, "s1", 0)).await.unwrap()
    else {
        panic!("generation 0 is current and rotates to 1");
    };
    assert!(r1 >= created);
    // One behind within the grace, from the other replica: the same
    // rotation again, nothing changed.
    for _ in 0..3 {
        assert_eq!(
            h.b.session_rotate(&refresh(&id, "s1", 0)).await.unwrap(),
            Rotation::Grace {
                generation: 1,
                rotated_at_ms: r1,
                issued_at: 1_800_000_000,
            }
        );
    }
    let Rotation::Rotated { generation: 2, .. } =
        h.b.session_rotate(&refresh(&id, "s1", 1)).await.unwrap()
    else {
        panic!("generation 1 is current and rotates to 2");
    };
    // Two behind: reuse, even within the grace; the session is gone.
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "s1", 0)).await.unwrap(),
        Rotation::Reused
    );
    assert_eq!(
        h.b.session_rotate(&refresh(&id, "s1", 2)).await.unwrap(),
        Rotation::Missing
    );
    // A generation from the future is reuse too (forged cannot happen with
    // a MAC, but the rule is exact).
    create(h, &id, "s2").await;
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "s2", 5)).await.unwrap(),
        Rotation::Reused
    );
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "never", 0)).await.unwrap(),
        Rotation::Missing
    );
}

async fn session_reuse_after_the_grace_revokes_the_session(h: &Harness) {
    let id = h.identity("sess-grace");
    create(h, &id, "g1").await;
    let short = SessionRefresh {
        grace: Duration::from_millis(300),
        ..refresh(&id, "g1", 0)
    };
    let Rotation::Rotated { generation: 1, .. } = h.a.session_rotate(&short).await.unwrap() else {
        panic!("rotates");
    };
    h.pass(Duration::from_millis(400)).await;
    assert_eq!(h.b.session_rotate(&short).await.unwrap(), Rotation::Reused);
    // The live chain died with it (RFC 9700 §4.14.2).
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "g1", 1)).await.unwrap(),
        Rotation::Missing
    );
}

async fn concurrent_rotations_of_one_generation_have_one_winner(h: &Harness) {
    let id = h.identity("sess-race");
    create(h, &id, "race").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = if i % 2 == 0 { h.a.clone() } else { h.b.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            // Each caller offers its own issued_at; all get the winner's.
            let r = SessionRefresh {
                issued_at: 1_000 + i,
                ..refresh(&id, "race", 0)
            };
            s.session_rotate(&r).await
        }));
    }
    let mut rotated = Vec::new();
    let mut grace = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Rotation::Rotated {
                generation,
                rotated_at_ms,
                issued_at,
            } => rotated.push((generation, rotated_at_ms, issued_at)),
            Rotation::Grace {
                generation,
                rotated_at_ms,
                issued_at,
            } => grace.push((generation, rotated_at_ms, issued_at)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one compare-and-set winner");
    assert_eq!(grace.len(), 49);
    assert!(
        grace.iter().all(|g| *g == rotated[0]),
        "every loser sees the winner's rotation: {grace:?} vs {rotated:?}"
    );
}

async fn session_revoke_ends_one_session_only(h: &Harness) {
    let id = h.identity("sess-revoke");
    create(h, &id, "r1").await;
    create(h, &id, "r2").await;
    assert!(h.b.session_revoke(&id, "r1").await.unwrap());
    assert!(
        !h.a.session_revoke(&id, "r1").await.unwrap(),
        "already gone"
    );
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "r1", 0)).await.unwrap(),
        Rotation::Missing
    );
    assert!(matches!(
        h.a.session_rotate(&refresh(&id, "r2", 0)).await.unwrap(),
        Rotation::Rotated { generation: 1, .. }
    ));
    assert!(!h
        .a
        .session_revoke(&h.identity("nobody"), "r1")
        .await
        .unwrap());
}

async fn sign_out_everywhere_ends_sessions_created_before_it(h: &Harness) {
    let id = h.identity("sess-all");
    let other = h.identity("sess-all-other");
    create(h, &id, "a1").await;
    create(h, &id, "a2").await;
    create(h, &other, "o1").await;
    h.b.sessions_revoke_all(&id, MAX_LIFETIME).await.unwrap();
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "a1", 0)).await.unwrap(),
        Rotation::SignedOut
    );
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "a1", 0)).await.unwrap(),
        Rotation::Missing,
        "the record was deleted"
    );
    assert_eq!(
        h.b.session_rotate(&refresh(&id, "a2", 0)).await.unwrap(),
        Rotation::SignedOut
    );
    // Another identity is untouched; a session created afterwards lives.
    assert!(matches!(
        h.a.session_rotate(&refresh(&other, "o1", 0)).await.unwrap(),
        Rotation::Rotated { .. }
    ));
    create(h, &id, "a3").await;
    assert!(matches!(
        h.b.session_rotate(&refresh(&id, "a3", 0)).await.unwrap(),
        Rotation::Rotated { .. }
    ));
    // Twice in a row still ends the newer one.
    h.a.sessions_revoke_all(&id, MAX_LIFETIME).await.unwrap();
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "a3", 1)).await.unwrap(),
        Rotation::SignedOut
    );
}

async fn idle_session_expires_after_its_ttl(h: &Harness) {
    let id = h.identity("sess-idle");
    let ttl = Duration::from_millis(500);
    h.a.session_create(&id, "i1", ttl, MAX_LIFETIME)
        .await
        .unwrap();
    let short = SessionRefresh {
        ttl,
        ..refresh(&id, "i1", 0)
    };
    h.pass(Duration::from_millis(300)).await;
    // A rotation renews the idle TTL.
    assert!(matches!(
        h.a.session_rotate(&short).await.unwrap(),
        Rotation::Rotated { .. }
    ));
    h.pass(Duration::from_millis(300)).await;
    assert!(matches!(
        h.a.session_rotate(&SessionRefresh {
            generation: 1,
            ..short
        })
        .await
        .unwrap(),
        Rotation::Rotated { .. }
    ));
    h.pass(Duration::from_millis(700)).await;
    assert_eq!(
        h.b.session_rotate(&SessionRefresh {
            generation: 2,
            ..short
        })
        .await
        .unwrap(),
        Rotation::Missing
    );
}

async fn session_ids_are_checked(h: &Harness) {
    let id = h.identity("sess-sid");
    for bad in ["", "a:b", "a{b}", "x y", &"a".repeat(65)] {
        let r =
            h.a.session_create(&id, bad, SESSION_TTL, MAX_LIFETIME)
                .await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{bad:?}: {r:?}");
        let r = h.a.session_rotate(&refresh(&id, bad, 0)).await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{bad:?}");
    }
}

async fn a_winning_advance_creates_its_session_in_the_same_step(h: &Harness) {
    let id = h.identity("sess-advance");
    let step = |from| CounterAdvance {
        identity: &id,
        window: 3,
        from,
        void: &[2, 3],
        ttl: TTL,
        clear: &[],
        session: Some(SessionStart {
            sid: if from == 0 { "won" } else { "lost" },
            ttl: SESSION_TTL,
            max_lifetime: MAX_LIFETIME,
        }),
        reset_failures: false,
    };
    assert!(h.a.advance_all(&step(0)).await.unwrap());
    assert!(!h.b.advance_all(&step(5)).await.unwrap());
    assert!(matches!(
        h.b.session_rotate(&refresh(&id, "won", 0)).await.unwrap(),
        Rotation::Rotated { generation: 1, .. }
    ));
    assert_eq!(
        h.a.session_rotate(&refresh(&id, "lost", 0)).await.unwrap(),
        Rotation::Missing,
        "a lost compare-and-set creates nothing"
    );
    // Created after a sign-out everywhere, it carries the new epoch.
    h.a.sessions_revoke_all(&id, MAX_LIFETIME).await.unwrap();
    assert!(h.a.advance_all(&step(1)).await.unwrap());
    assert!(matches!(
        h.b.session_rotate(&refresh(&id, "lost", 0)).await.unwrap(),
        Rotation::Rotated { generation: 1, .. }
    ));
    assert_eq!(
        h.b.session_rotate(&refresh(&id, "won", 1)).await.unwrap(),
        Rotation::SignedOut
    );
}
