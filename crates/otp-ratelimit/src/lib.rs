//! # otp-ratelimit
//!
//! The abuse limits of SPEC §6 and the single-use counters of SPEC §3.3, behind
//! one object ([`Store`]) with two backends:
//!
//! - [`MemoryStore`] (`STORE_BACKEND=memory`, the default): one process, no I/O;
//!   sharded maps, bounded by eviction of idle keys.
//! - `RedisStore` (feature `redis`, `STORE_BACKEND=redis`): many replicas share
//!   limits and counters through Redis, standalone or Cluster; every operation
//!   is one round trip (one atomic Lua script or one plain command).
//!
//! # Semantics of a limit (strict sliding window)
//!
//! A [`LimitPolicy`] `max / window` allows an event at time `t` if and only if
//! fewer than `max` *allowed* events of the same key happened in the half-open
//! interval `(t - window, t]`. So no interval of length `window` ever contains
//! more than `max` allowed events, whatever their alignment (there is no fixed
//! bucket boundary to burst across). A denied event is not recorded: hammering
//! a limited key does not extend its lock-out. When an event is denied,
//! [`Decision::retry_after_secs`] is the exact wait until the next event would
//! be allowed (the oldest recorded event leaving the window), rounded up to
//! whole seconds, so a client that waits `Retry-After` seconds succeeds.
//!
//! # Use counters and the attempt budget (SPEC §3.3)
//!
//! [`UseCounterStore`] keeps one small counter per (identity, OTP window): the
//! use counter `n` from which codes are derived. A successful verify advances
//! it by compare-and-set ([`UseCounterStore::advance`]) so exactly one of any
//! number of concurrent submissions of one code wins, across replicas too.
//! [`UseCounterStore::record_failure`] counts wrong codes per (identity,
//! window); when the count reaches the budget it advances the counters of all
//! windows still in the acceptance range in the same atomic step, so every code
//! already sent is void.
//!
//! # Failure mode
//!
//! A backend that cannot answer returns [`StoreError::Unavailable`] quickly
//! (the Redis backend bounds every operation by its configured timeouts) and
//! never panics. Whether the service then fails closed (503) or open is the
//! caller's policy (otp-service, `RATE_LIMIT_FAIL_MODE`). The Redis backend
//! reconnects by itself once Redis answers again; [`Store::ping`] serves the
//! readiness probe.
//!
//! # Keys never hold identities
//!
//! Both backends store a keyed hash (HMAC-SHA256 under a [`HashKey`],
//! truncated to 128 bits) of every identity, IP or other key, never the raw
//! string; see `RedisStore` for the exact Redis key layout.
//!
//! # Operating it
//!
//! - **One process**: the memory backend. Limits and counters die with the
//!   process (a restart forgives every limit and makes codes of the current
//!   windows verifiable once more — acceptable for a single instance, not
//!   for several). Memory: about 150 bytes per tracked (key, policy) pair
//!   with one event (measured: `benches/memory.rs`), freed once the pair has
//!   been idle for its window; a day-long policy such as `verify_daily` keeps
//!   an identity for a day.
//! - **Several replicas**: Redis ≥ 5 (tested with 7.0), standalone or
//!   Cluster. Every replica must use the same hash key and key prefix, or
//!   they silently stop sharing budgets. Memory per key is bounded by its
//!   TTL; a limiter key holds at most `max` entries.
//! - **Redis down**: operations fail within `connect_timeout +
//!   response_timeout` (default 1 s) with [`StoreError::Unavailable`]; the
//!   service answers 503 `backend_unavailable` (or lets requests through
//!   with `RATE_LIMIT_FAIL_MODE=open`) and `/readyz` fails via
//!   [`Store::ping`]. Nothing needs restarting when Redis is back: the next
//!   operations reconnect.
//! - **Config errors** ([`StoreError::Config`]): an invalid `REDIS_URL`, a
//!   zero timeout, a policy window under 1 ms. Fix the configuration.
//!
//! # Layout
//! - [`policy`] — [`LimitPolicy`] and the six default limits ([`Limits`]).
//! - [`clock`] — injectable time for the memory backend.
//! - [`memory`] — [`MemoryStore`].
//! - `redis` (feature `redis`) — `RedisStore`, `RedisConfig`.
//! - `testkit` (feature `test-support`) — starts real `redis-server`
//!   processes for integration tests.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

pub mod clock;
mod hash;
pub mod memory;
pub mod policy;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "test-support")]
pub mod testkit;

pub use clock::{Clock, ManualClock, SystemClock};
pub use hash::HashKey;
pub use memory::MemoryStore;
pub use policy::{LimitPolicy, Limits, DEFAULT_MAX_ATTEMPTS};
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisStore, RedisTopology};

/// The outcome of one [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// True if and only if the event was allowed (and recorded).
    pub allowed: bool,
    /// The policy's `max` (for `X-RateLimit-Limit`).
    pub limit: u32,
    /// Events still allowed in the current window after this one (for
    /// `X-RateLimit-Remaining`); 0 when denied.
    pub remaining: u32,
    /// Whole seconds (rounded up) until the next event would be allowed; 0 when
    /// allowed (for `Retry-After`).
    pub retry_after_secs: u64,
    /// The policy's window in whole seconds, rounded up (for
    /// `X-RateLimit-Window`).
    pub window_secs: u64,
}

/// The outcome of one [`UseCounterStore::record_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Wrong codes counted for (identity, current window), including this one.
    /// When `exhausted` is true this equals the budget and the stored count
    /// has been reset to 0.
    pub failures: u32,
    /// True if and only if this failure used up the budget: the use counters
    /// of all given windows were advanced, voiding every code already sent.
    pub exhausted: bool,
}

/// Errors of a store. Messages never contain identities or secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend did not answer (connection refused or lost, timeout, Redis
    /// loading or failing over). Transient: the store recovers by itself.
    #[error("store backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something this crate does not understand (e.g. a
    /// foreign value under one of our keys, or a script error).
    #[error("store backend protocol error: {0}")]
    Backend(String),
    /// The store was configured or called with invalid values.
    #[error("invalid store configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// Returns true if and only if the error is [`StoreError::Unavailable`],
    /// i.e. the fail-open/fail-closed policy applies.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// A strict sliding-window rate limiter (see the crate docs for the exact
/// semantics).
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// One event for `key` under `policy`; recorded only if allowed.
    ///
    /// `key` is hashed before it is stored; the pair (`policy.name`, `key`)
    /// names one independent budget.
    async fn check(&self, policy: &LimitPolicy, key: &str) -> Result<Decision, StoreError>;

    /// Several policies on one `key`, in order, with exactly the semantics of
    /// calling [`RateLimiter::check`] for each in turn and stopping at the
    /// first denial: the answer holds one [`Decision`] per policy up to and
    /// including the first denied one (all of them when every policy
    /// allowed). A policy that allowed before a later one denied has recorded
    /// its event, as consecutive checks would have; the denying policy
    /// records nothing, and the policies after it are not consulted.
    ///
    /// The default runs the checks one after the other. The Redis backend
    /// runs them all in one atomic script (one round trip for all of them:
    /// the keys of one `key` share a Cluster hash tag).
    async fn check_many(
        &self,
        policies: &[&LimitPolicy],
        key: &str,
    ) -> Result<Vec<Decision>, StoreError> {
        let mut out = Vec::with_capacity(policies.len());
        for policy in policies {
            let d = self.check(policy, key).await?;
            out.push(d);
            if !d.allowed {
                break;
            }
        }
        Ok(out)
    }

    /// Forgets every recorded event of `key` under `policy` (e.g. the verify
    /// budget after a successful verify).
    async fn clear(&self, policy: &LimitPolicy, key: &str) -> Result<(), StoreError>;
}

/// Use counters and failure counts of SPEC §3.3.
#[async_trait::async_trait]
pub trait UseCounterStore: Send + Sync + 'static {
    /// Current use counters of (identity, w) for each w in `windows`, in the
    /// same order (0 when absent or expired). One round trip.
    async fn counters(&self, identity: &str, windows: &[u64]) -> Result<Vec<u32>, StoreError>;

    /// Compare-and-set: moves the counter of (identity, window) from `from` to
    /// `from + 1`. Returns `Ok(true)` if and only if this call did it (the
    /// counter was `from`). The counter is kept for `ttl` after the write.
    async fn advance(
        &self,
        identity: &str,
        window: u64,
        from: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// A wrong code for `identity` during `current_window`. Increments the
    /// failure count of (identity, current_window); when it reaches
    /// `max_attempts`, advances the use counters of all `windows` by one and
    /// resets the count, atomically. Counts and counters are kept for `ttl`.
    /// One round trip. `max_attempts` 0 is treated as 1.
    async fn record_failure(
        &self,
        identity: &str,
        current_window: u64,
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<FailureOutcome, StoreError>;

    /// [`UseCounterStore::record_failure`] for each window of `issued`, in
    /// order, with exactly the effect of consecutive calls (each with the
    /// same `windows`, `max_attempts` and `ttl`); one outcome per entry of
    /// `issued`. A wrong code counts against every window whose code it may
    /// have been meant for.
    ///
    /// The default makes the calls one after the other. The memory backend
    /// does them under one lock, the Redis backend in one atomic script
    /// (one round trip for all of them).
    async fn record_failures(
        &self,
        identity: &str,
        issued: &[u64],
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<Vec<FailureOutcome>, StoreError> {
        let mut out = Vec::with_capacity(issued.len());
        for &w in issued {
            out.push(
                self.record_failure(identity, w, windows, max_attempts, ttl)
                    .await?,
            );
        }
        Ok(out)
    }
}

/// One object holding both the limiter and the use counters; otp-service keeps
/// it as `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: RateLimiter + UseCounterStore {
    /// Readiness: `Ok(())` if and only if the backend answers now (always for
    /// memory). For `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A short backend name for logs and metrics: `"memory"` or `"redis"`.
    fn backend_name(&self) -> &'static str;

    /// [`RateLimiter::check_many`] of `policies` on `identity`, then, only
    /// when every policy allowed, [`UseCounterStore::counters`] of
    /// `identity` for `windows`: the two calls a verify makes back to back,
    /// with their semantics. The counters are `None` when a policy denied.
    ///
    /// The default makes the two calls. The Redis backend does both in one
    /// atomic script (the limiter logs and the counters of one identity share
    /// its hash tag): one round trip.
    async fn check_many_then_counters(
        &self,
        policies: &[&LimitPolicy],
        identity: &str,
        windows: &[u64],
    ) -> Result<(Vec<Decision>, Option<Vec<u32>>), StoreError> {
        let decisions = self.check_many(policies, identity).await?;
        if decisions.len() != policies.len() || decisions.iter().any(|d| !d.allowed) {
            return Ok((decisions, None));
        }
        let counters = self.counters(identity, windows).await?;
        Ok((decisions, Some(counters)))
    }

    /// [`UseCounterStore::advance`] of (identity, window) from `from`, then,
    /// only if this call won, [`RateLimiter::clear`] of `policy` on
    /// `identity`: the two calls of a successful verify, with their
    /// semantics. Returns whether this call won.
    ///
    /// The default makes the two calls. The Redis backend does both in one
    /// atomic script (same hash tag): one round trip.
    async fn advance_then_clear(
        &self,
        identity: &str,
        window: u64,
        from: u32,
        ttl: Duration,
        policy: &LimitPolicy,
    ) -> Result<bool, StoreError> {
        if !self.advance(identity, window, from, ttl).await? {
            return Ok(false);
        }
        self.clear(policy, identity).await?;
        Ok(true)
    }
}

/// Which backend to build (the typed form of `STORE_BACKEND`, `REDIS_URL`, …).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreConfig {
    /// [`MemoryStore`] with the given hash key.
    Memory {
        /// Key of the hash that replaces identities in the maps. Defaults to a
        /// random per-process key when `None`.
        hash_key: Option<HashKey>,
    },
    /// `RedisStore`.
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

impl Default for StoreConfig {
    /// Memory with a random per-process hash key.
    fn default() -> Self {
        StoreConfig::Memory { hash_key: None }
    }
}

/// Builds the store `config` names. For Redis this connects (bounded by the
/// configured timeouts) and fails with [`StoreError::Unavailable`] if Redis
/// does not answer.
pub async fn build_store(config: StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Memory { hash_key } => Ok(Arc::new(match hash_key {
            Some(k) => MemoryStore::new(k),
            None => MemoryStore::default(),
        })),
        #[cfg(feature = "redis")]
        StoreConfig::Redis(c) => Ok(Arc::new(RedisStore::connect(c).await?)),
    }
}

/// Whole seconds in `d`, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s
    }
}

/// Milliseconds in `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
