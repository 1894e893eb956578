//! # otp-ratelimit
//!
//! The store of stateless-otp: strict sliding-window limits, use counters and
//! failure counts, offered as **primitives on subjects** behind one object
//! ([`Store`]) with two backends (design: docs/store.md). The OTP rules built
//! on them — which six limits exist and what each is keyed by, the attempt
//! budget, the order of a verify — are otp-service's.
//!
//! - [`MemoryStore`] (`STORE_BACKEND=memory`, the default): one process, no
//!   I/O; one entry per subject in sharded maps, bounded by eviction of idle
//!   entries and a hard ceiling.
//! - `RedisStore` (feature `redis`, `STORE_BACKEND=redis`): many replicas share
//!   limits and counters through Redis, standalone or Cluster; every operation
//!   is one atomic Lua script or one plain command (a multi-subject decision
//!   on Cluster: one per subject, reserve-then-release).
//!
//! A *subject* is whose state it is: an identity, a client network, or a
//! constant such as `global`. Everything of one subject is stored together
//! (one memory entry, one Redis Cluster slot).
//!
//! # Primitives
//!
//! - [`Store::check_all`]: one decision over several limit windows, possibly
//!   of several subjects — recorded in all of them if and only if every one
//!   allows; optionally with the use counters of one identity.
//! - [`Store::advance_all`]: compare-and-set of one use counter; if it won,
//!   other counters advance (voiding their codes) and limit windows clear.
//! - [`UseCounterStore::record_failures`]: failure counts that advance every
//!   counter of a range when one reaches the budget.
//! - plain [`RateLimiter::check`], [`RateLimiter::clear`],
//!   [`UseCounterStore::counters`], [`Store::advance`].
//! - sessions ([`SessionStore`], SPEC §10): create, rotate by SPEC §10's
//!   rule together with the identity's sign-out epoch, revoke one, revoke
//!   all — each one atomic step in the identity's subject.
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
//! # Use counters (SPEC §3.3)
//!
//! One small counter per (identity, OTP window): the use counter `n` from
//! which codes are derived. A successful verify advances it by
//! compare-and-set ([`Store::advance_all`]) so exactly one of any number of
//! concurrent submissions of one code wins, across replicas too.
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
//! Both backends store a 128-bit keyed hash under a [`HashKey`] of every
//! identity, IP or other key, never the raw string: HMAC-SHA256 truncated
//! to 128 bits for Redis (see `RedisStore` for the exact key layout),
//! SipHash-2-4-128 under a subkey derived from the hash key for memory
//! (its names never leave the process; docs/store.md, "Memory layout").
//!
//! # Operating it
//!
//! - **One process**: the memory backend. Limits and counters die with the
//!   process (a restart forgives every limit and makes codes of the current
//!   windows verifiable once more — acceptable for a single instance, not
//!   for several). Memory: one entry per subject; about 170 bytes per
//!   identity after a wrong-code verify with every policy it touches
//!   (measured: `benches/memory.rs`), freed once everything in it expired;
//!   a day-long policy such as `verify_daily` keeps an identity for a day.
//!   Sessions and sign-out epochs are fixed-size records beside the
//!   entries (about 87 and 62 bytes). At most `max_keys` items
//!   (`STORE_MEMORY_MAX_KEYS`: subjects, sessions, epochs): past it, only
//!   calls that would track a new subject fail ([`StoreError::Full`]).
//! - **Several replicas**: Redis ≥ 5 (tested with 7.0), standalone or
//!   Cluster. Every replica must use the same hash key and key prefix, or
//!   they silently stop sharing budgets; the key layout carries a version
//!   (a replica warns when another layout shares its prefix). Memory per key is bounded by its
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
//! - [`policy`] — [`LimitPolicy`] (the six OTP limits are otp-service's).
//! - [`clock`] — injectable time for the memory backend.
//! - [`memory`] — [`MemoryStore`].
//! - `redis` (feature `redis`) — `RedisStore`, `RedisConfig`.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

pub mod clock;
mod hash;
pub mod memory;
pub mod policy;
#[cfg(feature = "redis")]
pub mod redis;

pub use clock::{Clock, ManualClock, SystemClock};
pub use hash::HashKey;
pub use memory::{MemoryStore, DEFAULT_MAX_KEYS};
pub use policy::LimitPolicy;
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisStore, RedisTopology};

/// The outcome of one limit window in a [`RateLimiter::check`] or a
/// [`Store::check_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// True if and only if this limit allows the event. The event is
    /// recorded only when every limit of the same decision allows it.
    pub allowed: bool,
    /// The policy's `max` (for `X-RateLimit-Limit`).
    pub limit: u32,
    /// Events still allowed in the current window after this call (for
    /// `X-RateLimit-Remaining`); 0 when denied.
    pub remaining: u32,
    /// Whole seconds (rounded up) until the next event would be allowed by
    /// this limit; 0 when it allows (for `Retry-After`).
    pub retry_after_secs: u64,
    /// The policy's window in whole seconds, rounded up (for
    /// `X-RateLimit-Window`).
    pub window_secs: u64,
}

/// One limit window of a [`Store::check_all`] decision: `policy` on
/// `subject`, optionally narrowed by `scope`.
///
/// The subject is the unit of storage (docs/store.md): every window of one
/// subject lives in one memory entry and one Redis Cluster slot. A scope
/// names a separate window of the same policy inside the subject's entry,
/// e.g. the daily verify limit of an identity per client network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitCheck<'a> {
    /// The limit.
    pub policy: &'a LimitPolicy,
    /// Whose budget: an identity, a client network or a constant such as
    /// `global`. Hashed before it is stored.
    pub subject: &'a str,
    /// A separate window of `policy` within `subject`. Hashed before it is
    /// stored. Defaults to none.
    pub scope: Option<&'a str>,
}

impl<'a> LimitCheck<'a> {
    /// `policy` on `subject`, unscoped.
    pub fn new(policy: &'a LimitPolicy, subject: &'a str) -> Self {
        LimitCheck {
            policy,
            subject,
            scope: None,
        }
    }

    /// The same window narrowed to `scope`.
    pub fn scoped(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }
}

/// The use counters a [`Store::check_all`] reads when every limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRead<'a> {
    /// The identity whose counters are read. On Redis Cluster its subject is
    /// the *home* group of the decision (the others are reserved, then
    /// released if needed).
    pub identity: &'a str,
    /// The OTP windows, in the order the counters are returned.
    pub windows: &'a [u64],
    /// Counts this verify as an attempt at the code of every window, in the
    /// same step, before its outcome is known: when every limit allows, the
    /// failure count of each window goes up by one (kept for this long) and
    /// [`Checked::failures`] holds the counts after it. Nothing else happens
    /// at the budget here: the caller compares the code, and a wrong one
    /// that reached the budget voids the codes
    /// ([`UseCounterStore::void_codes`]) while a right one resets the counts
    /// in its [`Store::advance_all`] ([`CounterAdvance::reset_failures`]).
    /// So a wrong code costs one step, and concurrent guesses each see a
    /// count of their own: none is compared beyond the budget (SPEC §3.3;
    /// docs/store.md). Defaults to none (only the counters are read).
    pub attempt: Option<Duration>,
}

impl<'a> CounterRead<'a> {
    /// A read of the counters of `windows` of `identity`, counting no
    /// attempt.
    pub fn new(identity: &'a str, windows: &'a [u64]) -> Self {
        CounterRead {
            identity,
            windows,
            attempt: None,
        }
    }

    /// The same read, also counting an attempt whose failure counts are
    /// kept for `ttl` ([`CounterRead::attempt`]).
    pub fn counting_attempt(mut self, ttl: Duration) -> Self {
        self.attempt = Some(ttl);
        self
    }
}

/// The answer of [`Store::check_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// One decision per check, in the order of the checks.
    pub decisions: Vec<Decision>,
    /// The counters of the [`CounterRead`], in its order, if and only if
    /// one was asked for and every limit allowed.
    pub counters: Option<Vec<u32>>,
    /// The failure counts of the [`CounterRead`]'s windows, in its order,
    /// this attempt included, if and only if it counted an attempt
    /// ([`CounterRead::attempt`]) and every limit allowed.
    pub failures: Option<Vec<u32>>,
}

impl Checked {
    /// True if and only if every limit allowed (and the event was recorded
    /// in all of them).
    pub fn allowed(&self) -> bool {
        self.decisions.iter().all(|d| d.allowed)
    }

    /// The index of the denying decision with the longest wait (the
    /// `Retry-After` of the whole decision), or `None` when all allowed.
    /// Among equal waits, the first.
    pub fn longest_denial(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, d) in self.decisions.iter().enumerate() {
            if !d.allowed
                && best.is_none_or(|b| d.retry_after_secs > self.decisions[b].retry_after_secs)
            {
                best = Some(i);
            }
        }
        best
    }
}

/// A successful verify's counter step ([`Store::advance_all`]).
#[derive(Debug, Clone, Copy)]
pub struct CounterAdvance<'a> {
    /// The identity.
    pub identity: &'a str,
    /// The OTP window whose code matched.
    pub window: u64,
    /// Its use counter when it matched: the compare-and-set's expected value.
    pub from: u32,
    /// Other windows whose counters advance by one when the compare-and-set
    /// wins (every code of the identity still in the acceptance range is
    /// void). `window` itself may be listed; it advances once.
    pub void: &'a [u64],
    /// How long the written counters are kept.
    pub ttl: Duration,
    /// Limit windows of `identity` emptied when the compare-and-set wins
    /// (e.g. the verify limit). Each must have `identity` as its subject.
    pub clear: &'a [LimitCheck<'a>],
    /// A session of `identity` created when the compare-and-set wins, in
    /// the same step (so a sign-in with a session costs no extra round
    /// trip): [`SessionStore::session_create`]'s effect. Defaults to none.
    pub session: Option<SessionStart<'a>>,
    /// When the compare-and-set wins, the failure counts of `window` and of
    /// every window of `void` reset to 0: the attempt the verify counted
    /// ([`CounterRead::attempt`]) and every wrong guess before it were
    /// aimed at codes this step voids, and the codes issued after a
    /// sign-in start with a full budget. Defaults to false.
    pub reset_failures: bool,
}

/// A session created by a winning [`Store::advance_all`].
#[derive(Debug, Clone, Copy)]
pub struct SessionStart<'a> {
    /// The session id (see [`SessionRefresh::sid`]).
    pub sid: &'a str,
    /// Idle lifetime of the record.
    pub ttl: Duration,
    /// The session's absolute lifetime (keeps a live epoch that long).
    pub max_lifetime: Duration,
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

/// A refresh presented to [`SessionStore::session_rotate`].
#[derive(Debug, Clone, Copy)]
pub struct SessionRefresh<'a> {
    /// The identity the session belongs to (its subject holds the record).
    pub identity: &'a str,
    /// The session id (at most [`MAX_SESSION_ID_BYTES`] of `A-Z a-z 0-9 - _`).
    pub sid: &'a str,
    /// The generation of the presented refresh token.
    pub generation: u64,
    /// How long after a rotation the previous generation still gets the
    /// same successor (`REFRESH_REUSE_GRACE_SECONDS`).
    pub grace: Duration,
    /// Idle lifetime of the record, renewed by a rotation
    /// (`REFRESH_TOKEN_TTL`).
    pub ttl: Duration,
    /// The caller's unix time in seconds: stored by a rotation as the
    /// successor's `iat` and returned to every caller answered with that
    /// rotation (the store's own clock is not unix time for memory).
    pub issued_at: u64,
}

/// The answer of [`SessionStore::session_rotate`] (SPEC §10's rule,
/// evaluated atomically with the identity's sign-out epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The presented generation was the current one: this call moved the
    /// record to `generation` (presented + 1) at `rotated_at_ms` (store
    /// time) and renewed its TTL.
    Rotated {
        /// The new current generation.
        generation: u64,
        /// When this rotation happened (store clock, ms).
        rotated_at_ms: u64,
        /// The [`SessionRefresh::issued_at`] of this rotation.
        issued_at: u64,
    },
    /// The presented generation is one behind and the rotation to the
    /// current one happened within the grace: nothing changed; the caller
    /// answers with the successor of that rotation (same `generation` and
    /// `rotated_at_ms`, so the same bytes).
    Grace {
        /// The current generation.
        generation: u64,
        /// When the record rotated to it (store clock, ms).
        rotated_at_ms: u64,
        /// The `issued_at` stored by that rotation.
        issued_at: u64,
    },
    /// Any other generation, or one behind after the grace: reuse. The
    /// record was deleted by this call (the session is revoked).
    Reused,
    /// The session was created before the identity's last sign-out
    /// everywhere ([`SessionStore::sessions_revoke_all`]); the record was
    /// deleted by this call.
    SignedOut,
    /// No record: revoked, reused, expired, or never created.
    Missing,
}

/// Longest session id the stores accept, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 64;

/// Session records and sign-out epochs (SPEC §10, docs/store.md): one small
/// record `{generation, rotated_at, epoch}` per session and one sign-out
/// epoch per identity, both under the identity's lock (memory: fixed-size
/// records in the identity's shard, beside its entry; Redis: its Cluster
/// slot), so every call is one atomic step (one script, one round trip). A
/// live session is never evicted by the memory store's ceiling, and a
/// sign-in or sign-out everywhere of a tracked identity is never refused by
/// it.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Creates the record of session `sid` of `identity`: generation 0,
    /// `rotated_at` = now, the identity's current sign-out epoch, kept for
    /// `ttl`; the epoch (if any) is kept at least `max_lifetime` from now
    /// so it outlives every session it may have to end. Returns the
    /// creation time (store clock, ms: Redis server time since the Unix
    /// epoch, the memory store's monotonic clock). Overwrites a record
    /// of the same id.
    async fn session_create(
        &self,
        identity: &str,
        sid: &str,
        ttl: Duration,
        max_lifetime: Duration,
    ) -> Result<u64, StoreError>;

    /// SPEC §10's rotation rule, atomically with the sign-out epoch:
    /// current generation → compare-and-set to the next one; one behind
    /// within `grace` of the rotation → [`Rotation::Grace`]; anything else
    /// → the record is deleted ([`Rotation::Reused`]); an epoch newer than
    /// the record's → deleted ([`Rotation::SignedOut`]).
    async fn session_rotate(&self, r: &SessionRefresh<'_>) -> Result<Rotation, StoreError>;

    /// Deletes the record of `sid` (logout, revocation). Returns whether
    /// one existed.
    async fn session_revoke(&self, identity: &str, sid: &str) -> Result<bool, StoreError>;

    /// Sign out everywhere: advances the identity's epoch, so every session
    /// created before now refuses its next refresh. The epoch is kept for
    /// `max_lifetime` (no session outlives it). The memory store never
    /// refuses it at its ceiling (callers check a genuine token of the
    /// identity first, so this is not a way to invent subjects).
    async fn sessions_revoke_all(
        &self,
        identity: &str,
        max_lifetime: Duration,
    ) -> Result<(), StoreError>;
}

/// An error unless `sid` is a session id the stores accept.
pub(crate) fn check_sid(sid: &str) -> Result<(), StoreError> {
    let ok = !sid.is_empty()
        && sid.len() <= MAX_SESSION_ID_BYTES
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(
            "a session id is 1 to 64 characters of A-Z a-z 0-9 - _".into(),
        ))
    }
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
    /// The memory store tracks its maximum number of subjects
    /// ([`MemoryStore::with_max_keys`]) and the call would have created
    /// state for one more; nothing was recorded. Subjects already tracked
    /// are still served. Not [`StoreError::is_unavailable`]: failing open
    /// on it would switch the limits off for every new subject.
    #[error("memory store full: {max_keys} subjects tracked; refusing a new one")]
    Full {
        /// The configured ceiling.
        max_keys: usize,
    },
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
    /// One event for `key` under `policy`; recorded only if allowed. The
    /// same as a [`Store::check_all`] of one unscoped check.
    ///
    /// `key` is hashed before it is stored; the pair (`policy.name`, `key`)
    /// names one independent budget.
    async fn check(&self, policy: &LimitPolicy, key: &str) -> Result<Decision, StoreError>;

    /// Forgets every recorded event of `key` under `policy` (unscoped).
    async fn clear(&self, policy: &LimitPolicy, key: &str) -> Result<(), StoreError>;
}

/// Use counters and failure counts of SPEC §3.3.
#[async_trait::async_trait]
pub trait UseCounterStore: Send + Sync + 'static {
    /// Current use counters of (identity, w) for each w in `windows`, in the
    /// same order (0 when absent or expired). One round trip.
    async fn counters(&self, identity: &str, windows: &[u64]) -> Result<Vec<u32>, StoreError>;

    /// A wrong code for `identity`, aimed at the code of each window of
    /// `aimed`, in order: increments the failure count of (identity, w) for
    /// each w; when one reaches `max_attempts`, the use counters of all
    /// `windows` advance by one (every code of the range is void), the
    /// failure counts of every window of `aimed` reset to 0 (the new codes
    /// start with a fresh budget) and the remaining windows are not counted
    /// (the guess was never compared with the new codes). Counts and
    /// counters are kept for `ttl`. One outcome per counted window (all of
    /// `aimed`, or up to and including the exhausting one); one atomic step
    /// (one round trip). `max_attempts` 0 is treated as 1.
    async fn record_failures(
        &self,
        identity: &str,
        aimed: &[u64],
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<Vec<FailureOutcome>, StoreError>;

    /// Voids every code of `windows`: their use counters advance by one and
    /// their failure counts reset to 0, in one atomic step. For a wrong code
    /// whose attempt, counted by [`Store::check_all`]
    /// ([`CounterRead::attempt`]), reached the budget. Provided: a
    /// [`UseCounterStore::record_failures`] with a budget of one, which
    /// exhausts at the first window.
    async fn void_codes(
        &self,
        identity: &str,
        windows: &[u64],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if windows.is_empty() {
            return Ok(());
        }
        let out = self
            .record_failures(identity, windows, windows, 1, ttl)
            .await?;
        if out.iter().any(|o| o.exhausted) {
            Ok(())
        } else {
            Err(StoreError::Backend(
                "a budget of one did not exhaust: the codes were not voided".into(),
            ))
        }
    }

    /// [`UseCounterStore::record_failures`] for one window.
    async fn record_failure(
        &self,
        identity: &str,
        current_window: u64,
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<FailureOutcome, StoreError> {
        let out = self
            .record_failures(identity, &[current_window], windows, max_attempts, ttl)
            .await?;
        out.first()
            .copied()
            .ok_or_else(|| StoreError::Backend("the failure step answered no outcome".into()))
    }
}

/// One object holding both the limiter and the use counters; otp-service keeps
/// it as `Arc<dyn Store>`. The primitives are designed in docs/store.md.
#[async_trait::async_trait]
pub trait Store: RateLimiter + UseCounterStore + SessionStore {
    /// Readiness: `Ok(())` if and only if the backend answers now (always for
    /// memory). For `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A short backend name for logs and metrics: `"memory"` or `"redis"`.
    fn backend_name(&self) -> &'static str;

    /// One decision over several limit windows, possibly of different
    /// subjects: at one instant every window is evaluated; if and only if
    /// every one allows, the event is recorded in all of them and the
    /// counters of `read` (if any) are read, and its attempt (if any)
    /// counted ([`CounterRead::attempt`]). A denial records nothing in
    /// any window. Each (policy, subject, scope) should appear once.
    ///
    /// Memory: one critical section. Redis standalone: one script (one
    /// round trip). Redis Cluster: the subjects other than `read`'s identity
    /// are reserved first (one script each, events tagged with this call)
    /// and released if a later group denies (reserve-then-release, SPEC §6).
    async fn check_all(
        &self,
        checks: &[LimitCheck<'_>],
        read: Option<CounterRead<'_>>,
    ) -> Result<Checked, StoreError>;

    /// The counter step of a successful verify, atomically: compare-and-set
    /// of `a.window` from `a.from`; only if it won, every counter of
    /// `a.void` advances, the windows of `a.clear` are emptied, the failure
    /// counts reset (with `a.reset_failures`) and the session of
    /// `a.session` (if any) is created. Returns
    /// whether this call won. One round trip on Redis (every key is in the
    /// identity's slot).
    async fn advance_all(&self, a: &CounterAdvance<'_>) -> Result<bool, StoreError>;

    /// Compare-and-set: moves the counter of (identity, window) from `from` to
    /// `from + 1`. Returns `Ok(true)` if and only if this call did it (the
    /// counter was `from`). The counter is kept for `ttl` after the write.
    /// An [`Store::advance_all`] that voids and clears nothing else.
    async fn advance(
        &self,
        identity: &str,
        window: u64,
        from: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.advance_all(&CounterAdvance {
            identity,
            window,
            from,
            void: &[],
            ttl,
            clear: &[],
            session: None,
            reset_failures: false,
        })
        .await
    }
}

/// An error unless every check of `clear` has `identity` as its subject.
pub(crate) fn clear_on_identity(a: &CounterAdvance<'_>) -> Result<(), StoreError> {
    if a.clear.iter().all(|c| c.subject == a.identity) {
        Ok(())
    } else {
        Err(StoreError::Config(
            "advance_all clears only windows of the advanced identity".into(),
        ))
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
        /// Ceiling on tracked subjects ([`MemoryStore::with_max_keys`]).
        /// Defaults to [`DEFAULT_MAX_KEYS`].
        max_keys: usize,
    },
    /// `RedisStore`.
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

impl Default for StoreConfig {
    /// Memory with a random per-process hash key.
    fn default() -> Self {
        StoreConfig::Memory {
            hash_key: None,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Builds the store `config` names without any I/O: Redis connects on its
/// first operation and keeps trying on each one while it does not answer
/// ([`RedisStore::connect_lazy`]). Fails only with [`StoreError::Config`].
/// For a server that must start during a Redis outage.
pub fn build_store_lazy(config: StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        #[cfg(feature = "redis")]
        StoreConfig::Redis(c) => Ok(Arc::new(RedisStore::connect_lazy(c)?)),
        StoreConfig::Memory { hash_key, max_keys } => Ok(memory_store(hash_key, max_keys)),
    }
}

fn memory_store(hash_key: Option<HashKey>, max_keys: usize) -> Arc<dyn Store> {
    Arc::new(
        match hash_key {
            Some(k) => MemoryStore::new(k),
            None => MemoryStore::default(),
        }
        .with_max_keys(max_keys),
    )
}

/// Builds the store `config` names. For Redis this connects (bounded by the
/// configured timeouts) and fails with [`StoreError::Unavailable`] if Redis
/// does not answer.
pub async fn build_store(config: StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Memory { hash_key, max_keys } => Ok(memory_store(hash_key, max_keys)),
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
