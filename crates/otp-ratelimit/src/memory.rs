//! The in-process backend ([`MemoryStore`], `STORE_BACKEND=memory`).
//!
//! # Design
//!
//! - Every key (limiter key per policy, identity for counters) is replaced by
//!   its 16-byte keyed hash ([`HashKey`]); the string itself is never kept.
//! - State lives in [`SHARDS`] independently locked hash maps per kind, chosen
//!   by the hash, so concurrent requests for different keys rarely contend and
//!   there is no global lock on the hot path. A lock is held only for a few
//!   hundred nanoseconds and never across an `.await`.
//! - A limiter entry is the log of its allowed event times (milliseconds,
//!   oldest first; at most `max`, grown on demand), which gives the exact
//!   strict sliding window and exact `Retry-After` of the crate docs.
//! - Bounded memory: each entry knows when it becomes useless (its newest
//!   event leaves the window, or its counters' TTL passes). Before a shard
//!   inserts, it drops such entries if its last sweep is older than the sweep
//!   interval (default 1 s), and shrinks its table after a flood. So the
//!   number of tracked keys is at most the keys active within the longest
//!   window plus one sweep interval, whatever the number of distinct
//!   identities seen. [`MemoryStore::sweep`] forces a sweep of every shard.
//!
//! Measured cost: see `benches/memory.rs` (bytes per tracked identity and ns
//! per check).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::hash::{HashKey, KeyHasher};
use crate::{
    ceil_secs, millis, Decision, FailureOutcome, LimitPolicy, RateLimiter, Store, StoreError,
    UseCounterStore,
};

/// Number of independently locked shards per map.
pub const SHARDS: usize = 64;

/// Default interval between two sweeps of one shard.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A 16-byte keyed hash used as map key. Its `Hash` feeds only its first
/// eight bytes to the map's pass-through hasher: the bytes are already a
/// uniformly distributed keyed hash, so hashing them again would waste time.
#[derive(Clone, Copy, PartialEq, Eq)]
struct HKey([u8; 16]);

impl Hash for HKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

impl HKey {
    fn shard(&self) -> usize {
        // Bytes 8.. are not used by the table's own hash; SHARDS divides 256.
        usize::from(self.0[8]) % SHARDS
    }
}

/// Pass-through hasher for [`HKey`].
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than HKey is hashed; stay correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map<V> = HashMap<HKey, V, BuildHasherDefault<PassThrough>>;

/// An entry that knows when it becomes useless.
trait Expiring {
    /// Milliseconds (store clock) from which the entry may be dropped.
    fn expires_at(&self) -> u64;
}

struct Shard<V> {
    map: Map<V>,
    next_sweep: u64,
}

impl<V: Expiring> Shard<V> {
    /// Drops expired entries if the last sweep is older than `interval`.
    fn maybe_sweep(&mut self, now: u64, interval: u64) {
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now.saturating_add(interval);
        }
    }

    fn sweep(&mut self, now: u64) {
        self.map.retain(|_, v| v.expires_at() > now);
        // hashbrown never shrinks by itself; give memory back after a flood.
        let cap = self.map.capacity();
        if cap > 64 && self.map.len() * 4 < cap {
            self.map.shrink_to(self.map.len() * 2);
        }
    }
}

/// Cache-line aligned so two shards' locks never share a line.
#[repr(align(64))]
struct Padded<T>(T);

struct Shards<V>(Box<[Padded<Mutex<Shard<V>>>]>);

impl<V: Expiring> Shards<V> {
    fn new() -> Self {
        Shards(
            (0..SHARDS)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        map: Map::default(),
                        next_sweep: 0,
                    }))
                })
                .collect(),
        )
    }

    fn lock(&self, k: &HKey) -> MutexGuard<'_, Shard<V>> {
        lock(&self.0[k.shard()].0)
    }

    fn len(&self) -> usize {
        self.0.iter().map(|s| lock(&s.0).map.len()).sum()
    }

    fn sweep(&self, now: u64) {
        for s in self.0.iter() {
            lock(&s.0).sweep(now);
        }
    }
}

/// Locks `m`, ignoring poisoning: every critical section leaves the maps
/// consistent (no user code runs under the lock), so a panic elsewhere must
/// not take the limiter down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The allowed-event log of one (policy, key).
struct EventLog {
    /// Allowed event times in ms, oldest first, all within the window at the
    /// time of the last check; never more than `max`.
    times: VecDeque<u64>,
    /// Newest event + window: the log is empty from then on.
    expires_at: u64,
}

impl Expiring for EventLog {
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// One (identity, OTP window) slot: the use counter and the failure count,
/// each with its own expiry (like the two Redis keys they mirror). A value
/// past its expiry reads as 0.
#[derive(Clone, Copy)]
struct Slot {
    window: u64,
    counter: u32,
    counter_expires: u64,
    failures: u32,
    failures_expires: u64,
}

impl Slot {
    fn counter(&self, now: u64) -> u32 {
        if self.counter_expires > now {
            self.counter
        } else {
            0
        }
    }

    fn failures(&self, now: u64) -> u32 {
        if self.failures_expires > now {
            self.failures
        } else {
            0
        }
    }

    fn set_counter(&mut self, value: u32, expires: u64) {
        self.counter = value;
        self.counter_expires = expires;
    }

    fn set_failures(&mut self, value: u32, expires: u64) {
        self.failures = value;
        self.failures_expires = expires;
    }

    fn expires_at(&self) -> u64 {
        self.counter_expires.max(self.failures_expires)
    }
}

/// All live slots of one identity (a handful: the acceptance range).
struct IdentitySlots {
    slots: Vec<Slot>,
}

impl Expiring for IdentitySlots {
    fn expires_at(&self) -> u64 {
        self.slots.iter().map(Slot::expires_at).max().unwrap_or(0)
    }
}

impl IdentitySlots {
    /// The slot of `window`, if any (possibly expired).
    fn get(&self, window: u64) -> Option<&Slot> {
        self.slots.iter().find(|s| s.window == window)
    }

    /// The slot of `window`, created (zeroed, expired) if absent.
    fn get_mut(&mut self, window: u64) -> &mut Slot {
        let i = match self.slots.iter().position(|s| s.window == window) {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    window,
                    counter: 0,
                    counter_expires: 0,
                    failures: 0,
                    failures_expires: 0,
                });
                self.slots.len() - 1
            }
        };
        &mut self.slots[i]
    }
}

/// The in-process [`Store`]: strict sliding-window limiter and use counters
/// in sharded, self-evicting maps. Clone the `Arc` you put it in to share it;
/// each `MemoryStore` value is one independent set of budgets.
pub struct MemoryStore {
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    sweep_interval_ms: u64,
    logs: Shards<EventLog>,
    counters: Shards<IdentitySlots>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sweep_interval_ms", &self.sweep_interval_ms)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    /// A store with a random per-process hash key and the system clock.
    fn default() -> Self {
        MemoryStore::new(HashKey::random())
    }
}

impl MemoryStore {
    /// A store hashing keys under `hash_key`, on the system clock.
    pub fn new(hash_key: impl Into<HashKey>) -> Self {
        MemoryStore {
            hasher: KeyHasher::new(&hash_key.into()),
            clock: Arc::new(SystemClock::new()),
            sweep_interval_ms: millis(DEFAULT_SWEEP_INTERVAL),
            logs: Shards::new(),
            counters: Shards::new(),
        }
    }

    /// Replaces the clock (e.g. with an `Arc<ManualClock>` in tests). Use
    /// before the first operation: times already recorded were taken from the
    /// previous clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the minimum interval between two automatic sweeps of one shard.
    /// Defaults to [`DEFAULT_SWEEP_INTERVAL`] (1 s).
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval_ms = millis(interval);
        self
    }

    /// Number of keys currently tracked (limiter logs plus identities with
    /// counters), including expired ones not yet swept.
    pub fn tracked_keys(&self) -> usize {
        self.logs.len() + self.counters.len()
    }

    /// Drops every expired entry in every shard now (the automatic sweep runs
    /// lazily per shard on insert).
    pub fn sweep(&self) {
        let now = self.now_ms();
        self.logs.sweep(now);
        self.counters.sweep(now);
    }

    fn now_ms(&self) -> u64 {
        millis(self.clock.now())
    }

    fn limiter_key(&self, policy: &LimitPolicy, key: &str) -> HKey {
        HKey(self.hasher.hash(policy.name.as_bytes(), key.as_bytes()))
    }

    fn identity_key(&self, identity: &str) -> HKey {
        // Policy names are `[a-z0-9_]`, so this domain cannot collide with one.
        HKey(self.hasher.hash(b"use-counter:", identity.as_bytes()))
    }

    /// The synchronous core of [`RateLimiter::check`].
    pub fn check_now(&self, policy: &LimitPolicy, key: &str) -> Result<Decision, StoreError> {
        let window = validate(policy)?;
        let k = self.limiter_key(policy, key);
        let window_secs = ceil_secs(policy.window);
        let max = policy.max;
        let deny = |retry_ms: u64| Decision {
            allowed: false,
            limit: max,
            remaining: 0,
            retry_after_secs: retry_ms.div_ceil(1000).max(1),
            window_secs,
        };
        let mut shard = self.logs.lock(&k);
        // Read the clock under the lock so times enter each log in order.
        let now = self.now_ms();
        if max == 0 {
            return Ok(deny(window));
        }
        let allow = |in_window: usize| Decision {
            allowed: true,
            limit: max,
            remaining: max.saturating_sub(u32::try_from(in_window).unwrap_or(u32::MAX)),
            retry_after_secs: 0,
            window_secs,
        };
        if let Some(log) = shard.map.get_mut(&k) {
            // Forget events that left the window: t is in (now - window, now]
            // if and only if now - t < window.
            while log
                .times
                .front()
                .is_some_and(|&t| now.saturating_sub(t) >= window)
            {
                log.times.pop_front();
            }
            let max_len = usize::try_from(max).unwrap_or(usize::MAX);
            // A policy re-configured with a smaller max keeps the newest.
            while log.times.len() > max_len {
                log.times.pop_front();
            }
            if log.times.len() < max_len {
                log.times.push_back(now);
                log.expires_at = now.saturating_add(window);
                return Ok(allow(log.times.len()));
            }
            let oldest = log.times.front().copied().unwrap_or(now);
            return Ok(deny(oldest.saturating_add(window).saturating_sub(now)));
        }
        shard.maybe_sweep(now, self.sweep_interval_ms);
        let mut times = VecDeque::with_capacity(1);
        times.push_back(now);
        shard.map.insert(
            k,
            EventLog {
                times,
                expires_at: now.saturating_add(window),
            },
        );
        Ok(allow(1))
    }

    /// The synchronous core of [`RateLimiter::clear`].
    pub fn clear_now(&self, policy: &LimitPolicy, key: &str) {
        let k = self.limiter_key(policy, key);
        self.logs.lock(&k).map.remove(&k);
    }

    fn counters_now(&self, identity: &str, windows: &[u64]) -> Vec<u32> {
        let k = self.identity_key(identity);
        let shard = self.counters.lock(&k);
        let now = self.now_ms();
        let entry = shard.map.get(&k);
        windows
            .iter()
            .map(|&w| entry.and_then(|e| e.get(w)).map_or(0, |s| s.counter(now)))
            .collect()
    }

    /// Runs `f` on the slots of `identity`, creating them if needed.
    fn with_slots<R>(&self, identity: &str, f: impl FnOnce(&mut IdentitySlots, u64) -> R) -> R {
        let k = self.identity_key(identity);
        let mut shard = self.counters.lock(&k);
        let now = self.now_ms();
        if !shard.map.contains_key(&k) {
            shard.maybe_sweep(now, self.sweep_interval_ms);
        }
        let entry = shard
            .map
            .entry(k)
            .or_insert_with(|| IdentitySlots { slots: Vec::new() });
        let r = f(entry, now);
        // Drop what expired or was never written (a lost compare-and-set).
        entry.slots.retain(|s| s.expires_at() > now);
        if entry.slots.is_empty() {
            shard.map.remove(&k);
        }
        r
    }
}

/// The window in ms, or a typed error for a window under 1 ms.
fn validate(policy: &LimitPolicy) -> Result<u64, StoreError> {
    let w = millis(policy.window);
    if w == 0 {
        return Err(StoreError::Config(format!(
            "limit policy {:?} has a window under 1 ms",
            policy.name
        )));
    }
    Ok(w)
}

#[async_trait::async_trait]
impl RateLimiter for MemoryStore {
    async fn check(&self, policy: &LimitPolicy, key: &str) -> Result<Decision, StoreError> {
        self.check_now(policy, key)
    }

    async fn clear(&self, policy: &LimitPolicy, key: &str) -> Result<(), StoreError> {
        self.clear_now(policy, key);
        Ok(())
    }
}

#[async_trait::async_trait]
impl UseCounterStore for MemoryStore {
    async fn counters(&self, identity: &str, windows: &[u64]) -> Result<Vec<u32>, StoreError> {
        Ok(self.counters_now(identity, windows))
    }

    async fn advance(
        &self,
        identity: &str,
        window: u64,
        from: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl = millis(ttl);
        Ok(self.with_slots(identity, |e, now| {
            let s = e.get_mut(window);
            let won = s.counter(now) == from;
            if won {
                s.set_counter(from.saturating_add(1), now.saturating_add(ttl));
            }
            won
        }))
    }

    async fn record_failure(
        &self,
        identity: &str,
        current_window: u64,
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<FailureOutcome, StoreError> {
        let ttl = millis(ttl);
        Ok(self.with_slots(identity, |e, now| {
            fail_once(e, now, current_window, windows, max_attempts, ttl)
        }))
    }

    async fn record_failures(
        &self,
        identity: &str,
        issued: &[u64],
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<Vec<FailureOutcome>, StoreError> {
        let ttl = millis(ttl);
        Ok(self.with_slots(identity, |e, now| {
            issued
                .iter()
                .map(|&w| fail_once(e, now, w, windows, max_attempts, ttl))
                .collect()
        }))
    }
}

/// One wrong code for `current_window` (the body of
/// [`UseCounterStore::record_failure`], under the identity's lock).
fn fail_once(
    e: &mut IdentitySlots,
    now: u64,
    current_window: u64,
    windows: &[u64],
    max_attempts: u32,
    ttl_ms: u64,
) -> FailureOutcome {
    let max_attempts = max_attempts.max(1);
    let expires = now.saturating_add(ttl_ms);
    let s = e.get_mut(current_window);
    let failures = s.failures(now).saturating_add(1);
    if failures < max_attempts {
        s.set_failures(failures, expires);
        return FailureOutcome {
            failures,
            exhausted: false,
        };
    }
    s.set_failures(0, 0);
    for &w in windows {
        let s = e.get_mut(w);
        let n = s.counter(now).saturating_add(1);
        s.set_counter(n, expires);
    }
    FailureOutcome {
        failures,
        exhausted: true,
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn store() -> (MemoryStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1000)));
        let s = MemoryStore::new(&b"test-key-0123456789"[..]).with_clock(clock.clone());
        (s, clock)
    }

    #[test]
    fn zero_max_denies_with_full_window_retry() {
        let (s, _) = store();
        let p = LimitPolicy::per_secs("zero", 0, 60);
        let d = s.check_now(&p, "k").unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 60);
        assert_eq!(s.tracked_keys(), 0);
    }

    #[test]
    fn sub_millisecond_window_is_a_config_error() {
        let (s, _) = store();
        let p = LimitPolicy {
            name: "tiny",
            max: 1,
            window: Duration::from_micros(10),
        };
        assert!(matches!(s.check_now(&p, "k"), Err(StoreError::Config(_))));
    }

    #[test]
    fn smaller_max_after_reconfiguration_keeps_newest() {
        let (s, c) = store();
        let big = LimitPolicy::per_secs("p", 5, 10);
        for _ in 0..5 {
            assert!(s.check_now(&big, "k").unwrap().allowed);
            c.advance(Duration::from_secs(1));
        }
        let small = LimitPolicy::per_secs("p", 2, 10);
        let d = s.check_now(&small, "k").unwrap();
        assert!(!d.allowed);
        // Newest two events were at +3 s and +4 s; now is +5 s.
        assert_eq!(d.retry_after_secs, 8);
    }

    #[test]
    fn a_short_failure_ttl_never_shortens_the_counter() {
        let (s, c) = store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(s
                .advance("a", 7, 0, Duration::from_secs(100))
                .await
                .unwrap());
            let o = s
                .record_failure("a", 7, &[7], 5, Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(o.failures, 1);
            c.advance(Duration::from_secs(2));
            s.sweep();
            assert_eq!(s.counters("a", &[7]).await.unwrap(), vec![1]);
            // The failure count expired on its own.
            let o = s
                .record_failure("a", 7, &[7], 5, Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(o.failures, 1);
        });
    }

    #[test]
    fn lost_compare_and_set_leaves_nothing_behind() {
        let (s, _) = store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(!s
                .advance("a", 7, 3, Duration::from_secs(100))
                .await
                .unwrap());
        });
        assert_eq!(s.tracked_keys(), 0);
    }

    #[test]
    fn expired_counter_slots_read_as_zero() {
        let (s, c) = store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(s.advance("a", 7, 0, Duration::from_secs(5)).await.unwrap());
            assert_eq!(s.counters("a", &[7]).await.unwrap(), vec![1]);
            c.advance(Duration::from_secs(5));
            assert_eq!(s.counters("a", &[7]).await.unwrap(), vec![0]);
            assert!(s.advance("a", 7, 0, Duration::from_secs(5)).await.unwrap());
        });
    }
}
