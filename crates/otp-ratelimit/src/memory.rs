//! The in-process backend ([`MemoryStore`], `STORE_BACKEND=memory`).
//!
//! # Design (docs/store.md)
//!
//! - **One entry per subject.** Every limit window, use counter and failure
//!   count of one subject (an identity, a client network, `global`) lives in
//!   one map entry under the subject's 16-byte keyed hash (SipHash-2-4-128
//!   under a subkey of the [`HashKey`]); the string itself is never kept. A limit window inside the entry is named
//!   by a 64-bit tag of its policy name (and of its scope's keyed hash).
//! - **Sessions and sign-out epochs** (SPEC §10) are fixed-size records
//!   (28 and 12 bytes, no allocation each) in two more tables of the
//!   identity's shard, so one lock covers an identity's entry, sessions and
//!   epoch, and a session whose sign-in counters expired costs no entry
//!   (docs/store.md, "Memory layout").
//! - State lives in [`SHARDS`] independently locked hash maps chosen by the
//!   subject hash, so concurrent requests for different subjects rarely
//!   contend. A call that touches several subjects ([`Store::check_all`])
//!   locks their shards in ascending order (each once): one critical
//!   section, no deadlock. No lock is held across an `.await`.
//! - A limit window is the log of its allowed event times (milliseconds,
//!   oldest first; at most `max`), which gives the exact strict sliding
//!   window and exact `Retry-After` of the crate docs.
//! - Bounded memory: each entry knows when it becomes useless (its newest
//!   event leaves its window, its counters' TTL passes). A call on a shard
//!   drops such entries (and shrinks the table after a flood) if the
//!   shard's last sweep is older than the sweep interval (default 1 s)
//!   **and** the shard has grown by a quarter since: a sweep visits every
//!   item of one shard (a 64th of the store), so it costs at most four
//!   visits per item added, and a store that only grows is not re-scanned
//!   every second (issue 17). [`MemoryStore::sweep`] forces a sweep of every shard.
//! - **Hard ceiling** ([`MemoryStore::with_max_keys`], default
//!   [`DEFAULT_MAX_KEYS`]): at most that many subjects are tracked. A call
//!   that would create a subject past it first sweeps the next shards of a
//!   pass over every shard, up to 65 536 items a call (a pass starts at
//!   most once per sweep interval; idle entries go first), and, if still
//!   full,
//!   fails with [`StoreError::Full`] before recording anything. Sessions
//!   and epochs count as tracked items; a session created by the sign-in of
//!   a tracked subject and a sign-out everywhere are never refused. Calls on
//!   subjects already tracked always proceed, so a spray of invented
//!   identities never evicts a live code's counter, attempt budget or a
//!   tracked user's limits. [`MemoryStore::refusals`] counts the refusals; a
//!   warning is logged when the ceiling is first reached.
//!
//! Measured cost: see `benches/memory.rs` (bytes per tracked identity and ns
//! per check).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::hash::{HashKey, KeyHasher, SipKey};
use crate::{
    ceil_secs, check_sid, clear_on_identity, millis, Checked, CounterAdvance, CounterRead,
    Decision, FailureOutcome, LimitCheck, LimitPolicy, RateLimiter, Rotation, SessionRefresh,
    SessionStart, SessionStore, Store, StoreError, UseCounterStore,
};

/// Number of independently locked shards.
/// 64: more shards make one shard's sweep or table doubling (which the
/// call that triggers it pays) smaller, but cost RSS per item (smaller
/// tables fragment the heap: 256 shards measured +13 B per session, 1024
/// +15 B, over the 100 B bar; issue 17, docs/store.md).
pub const SHARDS: usize = 64;

/// Default interval between two sweeps of one shard.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Default ceiling on tracked subjects (`STORE_MEMORY_MAX_KEYS`): one
/// million, a few hundred MB at the measured bytes per identity
/// (`benches/memory.rs`), which a 1 GB VM holds beside the server.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

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
        // Bytes 8.. are not used by the table's own hash; SHARDS divides
        // 65 536.
        (usize::from(self.0[8]) | (usize::from(self.0[9]) << 8)) % SHARDS
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

type Map<K, V> = HashMap<K, V, BuildHasherDefault<PassThrough>>;

/// Marks a counter slot in [`Entry::words`] (word 1 of a record).
const SLOT: u32 = 1 << 31;
/// Words of a counter slot record.
const SLOT_WORDS: usize = 6;
/// Offsets are rebased before they pass this many ms (about 24.8 days).
const REBASE_AFTER_MS: u64 = 1 << 31;

/// Everything of one subject, in one allocation (docs/store.md, "Memory
/// layout"): `words` is a run of records, each starting with its key,
/// held with no spare capacity.
///
/// - a limit window: `[tag, len, expires, t₁ … t_len]` — `tag` names the
///   policy and scope, `tᵢ` are the allowed event times (oldest first, at
///   most `max`), `expires` = newest event + window;
/// - a counter slot: `[window, SLOT, counter, counter_expires, failures,
///   failures_expires]` — the use counter and failure count of (identity,
///   OTP window), each with its own expiry (like the two Redis keys they
///   mirror); a value past its expiry reads as 0.
///
/// Sessions and sign-out epochs are not in the entry: they live in the
/// shard's [`Sessions`] (fixed-size records, no allocation each).
///
/// Every time is a millisecond offset from `base` (u32: rebased, exactly,
/// before it could overflow). An expiry of 0 is "expired".
struct Entry {
    base: u64,
    words: Vec<u32>,
}

impl Entry {
    fn new(now: u64) -> Self {
        Entry {
            base: now,
            words: Vec::new(),
        }
    }

    fn off(&self, t: u64) -> u32 {
        u32::try_from(t.saturating_sub(self.base)).unwrap_or(u32::MAX)
    }

    fn abs(&self, off: u32) -> u64 {
        self.base.saturating_add(u64::from(off))
    }

    /// Records as `(start, len)`.
    fn records(words: &[u32]) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            let head = *words.get(i + 1)?;
            let len = match head {
                SLOT => SLOT_WORDS,
                _ => 3 + (head as usize),
            };
            let r = (i, len);
            i += len;
            Some(r)
        })
    }

    /// The record of `kind` (0 for a limit window, else its marker) with
    /// key `key`.
    fn find(words: &[u32], key: u32, kind: u32) -> Option<usize> {
        Self::records(words)
            .find(|&(i, _)| words[i] == key && Self::kind(words[i + 1]) == kind)
            .map(|(i, _)| i)
    }

    /// 0 for a limit window, else the record's marker.
    fn kind(head: u32) -> u32 {
        if head & SLOT == 0 {
            0
        } else {
            head
        }
    }

    /// The positions of the times (offsets from `base`) of the record at
    /// `i`: its expiries, and a window's events.
    fn times(words: &[u32], i: usize, len: usize) -> std::ops::Range<usize> {
        match words[i + 1] {
            SLOT => i + 3..i + 4,
            _ => i + 2..i + len,
        }
    }

    /// The expiry offset of the record at `i` (the latest of its parts).
    fn record_expiry(words: &[u32], i: usize) -> u32 {
        match words[i + 1] {
            SLOT => words[i + 3].max(words[i + 5]),
            _ => words[i + 2],
        }
    }

    /// Milliseconds (store clock) from which the entry holds nothing live.
    fn expires_at(&self) -> u64 {
        let w = &self.words;
        let max_off = Self::records(w)
            .map(|(i, _)| Self::record_expiry(w, i))
            .max()
            .unwrap_or(0);
        if max_off == 0 {
            0
        } else {
            self.abs(max_off)
        }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Runs `f` on the words as a `Vec` (rebasing first when due), then
    /// stores them back in an allocation of exactly their size.
    fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<u32>) -> R) -> R {
        // Grown by exactly what a write adds (`reserve_exact`), so the
        // steady state of a busy window (one event out, one in) allocates
        // nothing and an entry carries no spare capacity.
        let r = f(&mut self.words);
        if self.words.capacity() > 2 * self.words.len() + 8 {
            self.words.shrink_to_fit();
        }
        r
    }

    /// Rebases when offsets of `now` get close to overflowing; call before
    /// computing the offsets of a write.
    fn maybe_rebase(&mut self, now: u64) {
        if now.saturating_sub(self.base) >= REBASE_AFTER_MS {
            self.rebase(now);
        }
    }

    /// Moves `base` as far forward as every live time allows (expired
    /// records are dropped first), so offsets fit in u32 again.
    fn rebase(&mut self, now: u64) {
        self.prune(now);
        let mut min = self.off(now);
        let w = &mut self.words;
        for (i, len) in Self::records(w) {
            if w[i + 1] & SLOT == 0 {
                min = w[i + 3..i + len].iter().copied().fold(min, u32::min);
            }
        }
        for (i, len) in Self::records(&w.clone()) {
            let mut times: Vec<usize> = Self::times(w, i, len).collect();
            if w[i + 1] == SLOT {
                times.push(i + 5);
            }
            // Every live time and expiry is >= min (expiries > now >= min,
            // after the prune), so the shift is exact.
            for j in times {
                w[j] = w[j].saturating_sub(min);
            }
        }
        self.base = self.base.saturating_add(u64::from(min));
    }

    /// Trims the limit window `tag` to the events inside `window` ms (and
    /// at most `max` of them); returns how many remain and the oldest.
    fn window(&mut self, tag: u32, now: u64, window: u64, max: usize) -> (usize, Option<u64>) {
        let Some(i) = Self::find(&self.words, tag, 0) else {
            return (0, None);
        };
        let len = self.words[i + 1] as usize;
        let times = &self.words[i + 3..i + 3 + len];
        // t is in (now - window, now] if and only if now - t < window.
        let gone = times
            .iter()
            .take_while(|&&t| now.saturating_sub(self.abs(t)) >= window)
            .count();
        let drop = gone.max(len.saturating_sub(max));
        if drop > 0 {
            self.edit(|w| {
                w.drain(i + 3..i + 3 + drop);
                w[i + 1] = (len - drop) as u32;
            });
        }
        let len = len - drop;
        let oldest = (len > 0).then(|| self.abs(self.words[i + 3]));
        (len, oldest)
    }

    /// The words [`Entry::record`] adds to the limit window `tag`: one
    /// event, or a new window's head and event.
    fn words_to_record(&self, tag: u32) -> usize {
        match Self::find(&self.words, tag, 0) {
            Some(_) => 1,
            None => 4,
        }
    }

    /// Records an event at `now` in the limit window `tag`.
    fn record(&mut self, tag: u32, now: u64, window: u64) {
        self.maybe_rebase(now);
        let t = self.off(now);
        let exp = self.off(now.saturating_add(window)).max(1);
        self.edit(|w| match Self::find(w, tag, 0) {
            Some(i) => {
                let len = w[i + 1] as usize;
                w.reserve_exact(1);
                w.insert(i + 3 + len, t);
                w[i + 1] = (len + 1) as u32;
                w[i + 2] = exp;
            }
            None => {
                w.reserve_exact(4);
                w.extend_from_slice(&[tag, 1, exp, t]);
            }
        });
    }

    /// Drops the limit windows of `tags`.
    fn remove_windows(&mut self, tags: &[u32]) {
        self.edit(|w| loop {
            let found =
                Self::records(w).find(|&(i, _)| w[i + 1] & SLOT == 0 && tags.contains(&w[i]));
            match found {
                Some((i, len)) => drop(w.drain(i..i + len)),
                None => break,
            }
        });
    }

    fn slot_value(&self, window: u64, now: u64, at: usize) -> u32 {
        match Self::find(&self.words, slot_key(window), SLOT) {
            Some(i) if self.words[i + at + 1] != 0 && self.abs(self.words[i + at + 1]) > now => {
                self.words[i + at]
            }
            _ => 0,
        }
    }

    fn counter(&self, window: u64, now: u64) -> u32 {
        self.slot_value(window, now, 2)
    }

    fn failures(&self, window: u64, now: u64) -> u32 {
        self.slot_value(window, now, 4)
    }

    fn set_slot(&mut self, window: u64, now: u64, at: usize, value: u32, expires: u64) {
        let key = slot_key(window);
        self.maybe_rebase(now);
        let exp = if expires > now {
            self.off(expires).max(1)
        } else {
            0
        };
        self.edit(|w| {
            let i = match Self::find(w, key, SLOT) {
                Some(i) => i,
                None => {
                    w.reserve_exact(SLOT_WORDS);
                    w.extend_from_slice(&[key, SLOT, 0, 0, 0, 0]);
                    w.len() - SLOT_WORDS
                }
            };
            w[i + at] = value;
            w[i + at + 1] = exp;
        });
    }

    fn set_counter(&mut self, window: u64, now: u64, value: u32, expires: u64) {
        self.set_slot(window, now, 2, value, expires);
    }

    fn set_failures(&mut self, window: u64, now: u64, value: u32, expires: u64) {
        self.set_slot(window, now, 4, value, expires);
    }

    /// Drops what expired or was never written (a lost compare-and-set).
    fn prune(&mut self, now: u64) {
        let now_off = self.off(now);
        let live = |w: &[u32], i: usize| -> bool {
            let exp = Self::record_expiry(w, i);
            exp > now_off && exp != 0
        };
        if Self::records(&self.words).all(|(i, _)| live(&self.words, i)) {
            return;
        }
        let mut w = std::mem::take(&mut self.words);
        loop {
            let found = Self::records(&w).find(|&(i, _)| !live(&w, i));
            match found {
                Some((i, len)) => drop(w.drain(i..i + len)),
                None => break,
            }
        }
        w.shrink_to_fit();
        self.words = w;
    }
}

/// A session's key in its shard's [`Sessions`]: 96 bits of the keyed hash
/// of the identity's subject hash and the session id (two sessions share a
/// record with odds 2⁻⁹⁶ per pair).
#[derive(Clone, Copy, PartialEq, Eq)]
struct SKey([u32; 3]);

impl Hash for SKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a keyed hash: its first 64 bits feed the table directly.
        state.write_u64(u64::from(self.0[0]) | (u64::from(self.0[1]) << 32));
    }
}

/// A store time in ms as two u32 halves, so the records holding it stay
/// 4-byte aligned (no padding).
#[derive(Clone, Copy)]
struct Ms([u32; 2]);

impl Ms {
    fn new(t: u64) -> Self {
        Ms([(t >> 32) as u32, t as u32])
    }

    fn get(self) -> u64 {
        (u64::from(self.0[0]) << 32) | u64::from(self.0[1])
    }
}

/// A session record (SPEC §10), 28 bytes: 40 with its key in the table.
/// Times are absolute store ms, so it needs no rebasing however old it is.
#[derive(Clone, Copy)]
struct SessionRecord {
    generation: u32,
    /// The identity's sign-out epoch when the session was created.
    epoch: u32,
    /// The caller's unix seconds of the last rotation.
    issued_at: u32,
    rotated_at: Ms,
    expires: Ms,
}

/// The sign-out epoch of one identity, 12 bytes (28 with its key).
#[derive(Clone, Copy)]
struct EpochRecord {
    value: u32,
    expires: Ms,
}

/// The session records and sign-out epochs of one shard (docs/store.md,
/// "Memory layout"): fixed-size values in tables of their own, no
/// allocation per record. A session lives in the shard of its identity, so
/// the identity's lock covers its sessions, its epoch and its entry.
#[derive(Default)]
struct Sessions {
    records: Map<SKey, SessionRecord>,
    epochs: Map<HKey, EpochRecord>,
}

impl Sessions {
    /// Records held (each counts as one tracked item toward the ceiling).
    fn len(&self) -> usize {
        self.records.len() + self.epochs.len()
    }

    /// The identity's sign-out epoch (0 when absent or expired).
    fn epoch(&self, k: &HKey, now: u64) -> u32 {
        self.epochs
            .get(k)
            .filter(|e| e.expires.get() > now)
            .map_or(0, |e| e.value)
    }

    /// Advances the identity's epoch, kept until `expires`.
    fn advance_epoch(&mut self, k: HKey, now: u64, expires: u64) {
        let value = self.epoch(&k, now).wrapping_add(1);
        self.epochs.insert(
            k,
            EpochRecord {
                value,
                expires: Ms::new(expires),
            },
        );
    }

    /// The body of [`SessionStore::session_create`] (also run by a winning
    /// `advance_all`): a live epoch is kept at least `max_lifetime` longer.
    fn create(&mut self, k: &HKey, s: SKey, now: u64, start: &SessionStart<'_>) {
        let keep = now.saturating_add(millis(start.max_lifetime));
        if let Some(e) = self.epochs.get_mut(k) {
            let exp = e.expires.get();
            if exp > now && exp < keep {
                e.expires = Ms::new(keep);
            }
        }
        let record = SessionRecord {
            generation: 0,
            epoch: self.epoch(k, now),
            issued_at: 0,
            rotated_at: Ms::new(now),
            expires: Ms::new(now.saturating_add(millis(start.ttl))),
        };
        self.records.insert(s, record);
    }

    /// The live record of `s` (an expired one is dropped).
    fn live(&mut self, s: &SKey, now: u64) -> Option<SessionRecord> {
        let r = *self.records.get(s)?;
        if r.expires.get() > now {
            return Some(r);
        }
        self.records.remove(s);
        None
    }

    /// SPEC §10's rotation rule on the record of `s` of identity `k`.
    fn rotate(&mut self, k: &HKey, s: SKey, now: u64, r: &SessionRefresh<'_>) -> Rotation {
        let Some(state) = self.live(&s, now) else {
            return Rotation::Missing;
        };
        if state.epoch != self.epoch(k, now) {
            self.records.remove(&s);
            return Rotation::SignedOut;
        }
        let current = u64::from(state.generation);
        if r.generation == current {
            let next = SessionRecord {
                generation: state.generation.saturating_add(1),
                issued_at: u32::try_from(r.issued_at).unwrap_or(u32::MAX),
                rotated_at: Ms::new(now),
                expires: Ms::new(now.saturating_add(millis(r.ttl))),
                ..state
            };
            self.records.insert(s, next);
            return Rotation::Rotated {
                generation: u64::from(next.generation),
                rotated_at_ms: now,
                issued_at: u64::from(next.issued_at),
            };
        }
        let rotated_at = state.rotated_at.get();
        if r.generation.saturating_add(1) == current
            && now.saturating_sub(rotated_at) <= millis(r.grace)
        {
            return Rotation::Grace {
                generation: current,
                rotated_at_ms: rotated_at,
                issued_at: u64::from(state.issued_at),
            };
        }
        self.records.remove(&s);
        Rotation::Reused
    }

    /// Drops expired records; returns how many.
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.len();
        self.records.retain(|_, r| r.expires.get() > now);
        self.epochs.retain(|_, e| e.expires.get() > now);
        shrink_after_flood(&mut self.records);
        shrink_after_flood(&mut self.epochs);
        before - self.len()
    }
}

/// hashbrown never shrinks by itself; give memory back after a flood.
fn shrink_after_flood<K: Eq + Hash, V>(m: &mut Map<K, V>) {
    let cap = m.capacity();
    if cap > 64 && m.len() * 4 < cap {
        m.shrink_to(m.len() * 2);
    }
}

/// The key of the counter slot of OTP window `w` (windows of one identity
/// in range differ by a few units; 2³² apart they would share a slot).
fn slot_key(w: u64) -> u32 {
    (w & u64::from(u32::MAX)) as u32
}

struct Shard {
    map: Map<HKey, Entry>,
    sessions: Sessions,
    next_sweep: u64,
    /// Items held right after the last sweep.
    swept_len: usize,
}

impl Shard {
    fn new() -> Self {
        Shard {
            map: Map::default(),
            sessions: Sessions::default(),
            next_sweep: 0,
            swept_len: 0,
        }
    }

    /// Items held (entries, sessions, epochs).
    fn len(&self) -> usize {
        self.map.len() + self.sessions.len()
    }

    /// Drops expired entries if the last sweep is older than `interval` and
    /// the shard has grown by a quarter since (so a sweep, which visits
    /// every item of the shard, costs at most four visits per item added:
    /// amortized, like the table's own growth); returns how many were
    /// dropped.
    fn maybe_sweep(&mut self, now: u64, interval: u64) -> usize {
        if now >= self.next_sweep && self.len() > self.swept_len + self.swept_len / 4 {
            self.next_sweep = now.saturating_add(interval);
            self.sweep(now)
        } else {
            0
        }
    }

    /// Drops expired entries, sessions and epochs; returns how many.
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, v| v.expires_at() > now);
        shrink_after_flood(&mut self.map);
        let dropped = before - self.map.len() + self.sessions.sweep(now);
        self.swept_len = self.len();
        dropped
    }
}

/// Cache-line aligned so two shards' locks never share a line.
#[repr(align(64))]
struct Padded<T>(T);

/// Locks `m`, ignoring poisoning: every critical section leaves the maps
/// consistent (no user code runs under the lock), so a panic elsewhere must
/// not take the limiter down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The locked shards of one call, in ascending shard order.
struct Locked<'a>(Vec<(usize, MutexGuard<'a, Shard>)>);

impl Locked<'_> {
    fn shard(&mut self, k: &HKey) -> &mut Shard {
        let i = k.shard();
        let pos = self.0.partition_point(|(j, _)| *j < i);
        // Every key of the call was locked: `pos` names its shard.
        &mut self.0[pos].1
    }
}

/// The in-process [`Store`]: strict sliding-window limiter and use counters,
/// one self-evicting entry per subject in sharded maps, under a hard ceiling
/// of tracked subjects. Clone the `Arc` you put it in to share it; each
/// `MemoryStore` value is one independent set of budgets.
pub struct MemoryStore {
    /// The keyed hash of subjects, scopes and sessions (SipHash-2-4-128,
    /// keyed from the [`HashKey`]; see `hash.rs`).
    hasher: SipKey,
    clock: Arc<dyn Clock>,
    sweep_interval_ms: u64,
    shards: Box<[Padded<Mutex<Shard>>]>,
    max_keys: usize,
    tracked: AtomicUsize,
    refusals: AtomicU64,
    full_warned: AtomicBool,
    next_full_sweep: AtomicU64,
    /// The next shard of the ceiling's sweep pass (`None` while a call is
    /// sweeping: others refuse rather than wait).
    ceiling_cursor: Mutex<usize>,
    /// Items one call at the ceiling visits at most (beyond one shard).
    ceiling_budget: usize,
}

/// Items one call at the ceiling sweeps at most (plus the rest of the
/// shard it is in): about 4 ms of work, never a whole-store pass.
const CEILING_SWEEP_BUDGET: usize = 65_536;

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sweep_interval_ms", &self.sweep_interval_ms)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    /// A store with a random per-process hash key and the system clock.
    fn default() -> Self {
        MemoryStore::new(HashKey::random())
    }
}

/// A window of a check, resolved: subject hash, tag, window in ms.
struct Resolved {
    subject: HKey,
    tag: u32,
    window: u64,
}

/// 64-bit FNV-1a of `bytes` (policy names: public, short, fixed).
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl MemoryStore {
    /// A store hashing keys under `hash_key`, on the system clock, with the
    /// default ceiling [`DEFAULT_MAX_KEYS`].
    pub fn new(hash_key: impl Into<HashKey>) -> Self {
        MemoryStore {
            hasher: KeyHasher::new(&hash_key.into()).sip_key(),
            clock: Arc::new(SystemClock::new()),
            sweep_interval_ms: millis(DEFAULT_SWEEP_INTERVAL),
            shards: (0..SHARDS)
                .map(|_| Padded(Mutex::new(Shard::new())))
                .collect(),
            max_keys: DEFAULT_MAX_KEYS,
            tracked: AtomicUsize::new(0),
            refusals: AtomicU64::new(0),
            full_warned: AtomicBool::new(false),
            next_full_sweep: AtomicU64::new(0),
            ceiling_cursor: Mutex::new(0),
            ceiling_budget: CEILING_SWEEP_BUDGET,
        }
    }

    /// Replaces the clock (e.g. with an `Arc<ManualClock>` in tests). Use
    /// before the first operation: times already recorded were taken from the
    /// previous clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the minimum interval between two automatic sweeps of one shard
    /// (and between two full sweeps at the ceiling). Defaults to
    /// [`DEFAULT_SWEEP_INTERVAL`] (1 s).
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval_ms = millis(interval);
        self
    }

    /// Sets the ceiling on tracked subjects (`STORE_MEMORY_MAX_KEYS`; see
    /// the module docs for what happens at it). Defaults to
    /// [`DEFAULT_MAX_KEYS`]. 0 refuses every new subject.
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The ceiling on tracked subjects.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Number of items currently tracked toward the ceiling: subjects
    /// (identities, networks, `global`), session records and sign-out
    /// epochs, including expired ones not yet swept.
    pub fn tracked_keys(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Calls refused with [`StoreError::Full`] since the store was built.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Drops every expired entry in every shard now (the automatic sweep runs
    /// lazily per shard on insert).
    pub fn sweep(&self) {
        let now = self.now_ms();
        let mut dropped = 0;
        for s in self.shards.iter() {
            dropped += lock(&s.0).sweep(now);
        }
        self.untrack(dropped);
    }

    fn now_ms(&self) -> u64 {
        millis(self.clock.now())
    }

    fn subject_key(&self, subject: &str) -> HKey {
        HKey(self.hasher.hash(b"k", subject.as_bytes()))
    }

    /// 32 bits naming the limit window of `policy` (and `scope`) inside a
    /// subject's entry. Two windows of one subject share a tag with odds
    /// 2⁻³² per pair (they would then share one budget).
    fn tag(&self, policy: &LimitPolicy, scope: Option<&str>) -> u32 {
        let name = fnv64(policy.name.as_bytes());
        let t = match scope {
            None => name,
            Some(s) => {
                let mut first = [0u8; 8];
                first.copy_from_slice(&self.hasher.hash(b"s", s.as_bytes())[..8]);
                name.rotate_left(1) ^ u64::from_le_bytes(first)
            }
        };
        (t ^ (t >> 32)) as u32
    }

    /// Resolves `checks`, hashing each subject once: a verify names the
    /// identity three times and its counters once, one keyed hash serves
    /// them all. Returns the resolved checks and the subject hash of
    /// `read`'s identity.
    fn resolve(
        &self,
        checks: &[LimitCheck<'_>],
        read: Option<&str>,
    ) -> Result<(Vec<Resolved>, Option<HKey>), StoreError> {
        let mut resolved: Vec<Resolved> = Vec::with_capacity(checks.len());
        let known = |resolved: &[Resolved], subject: &str| {
            checks
                .iter()
                .zip(resolved)
                .find(|(c, _)| c.subject == subject)
                .map(|(_, r)| r.subject)
        };
        for c in checks {
            let subject = match known(&resolved, c.subject) {
                Some(k) => k,
                None => self.subject_key(c.subject),
            };
            resolved.push(Resolved {
                subject,
                tag: self.tag(c.policy, c.scope),
                window: validate(c.policy)?,
            });
        }
        let read_key = read.map(|id| match known(&resolved, id) {
            Some(k) => k,
            None => self.subject_key(id),
        });
        Ok((resolved, read_key))
    }

    /// Locks the shards of `keys` in ascending order, each once.
    fn lock_all(&self, keys: impl Iterator<Item = HKey>) -> Locked<'_> {
        let mut idx: Vec<usize> = keys.map(|k| k.shard()).collect();
        idx.sort_unstable();
        idx.dedup();
        Locked(
            idx.into_iter()
                .map(|i| (i, lock(&self.shards[i].0)))
                .collect(),
        )
    }

    /// Counts `n` items added without a ceiling check.
    fn track(&self, n: usize) {
        if n > 0 {
            self.tracked.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn untrack(&self, n: usize) {
        if n == 0 {
            return;
        }
        let left = self
            .tracked
            .fetch_sub(n, Ordering::Relaxed)
            .saturating_sub(n);
        if left < self.max_keys / 10 * 9 && self.full_warned.swap(false, Ordering::Relaxed) {
            tracing::info!(
                tracked = left,
                max_keys = self.max_keys,
                "memory store back under its ceiling"
            );
        }
    }

    /// Reserves room for `n` new subjects; false at the ceiling.
    fn admit(&self, n: usize) -> bool {
        self.tracked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                t.checked_add(n).filter(|&s| s <= self.max_keys)
            })
            .is_ok()
    }

    /// At the ceiling: sweeps the next shards of the pass, up to the
    /// budget of items; a pass over every shard starts at most once per
    /// sweep interval. True if this call swept (the caller retries once).
    fn full_sweep_due(&self, now: u64) -> bool {
        let mut cursor = match self.ceiling_cursor.try_lock() {
            Ok(c) => c,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        if *cursor == 0 {
            let due = self.next_full_sweep.load(Ordering::Relaxed);
            if now < due {
                return false;
            }
            self.next_full_sweep.store(
                now.saturating_add(self.sweep_interval_ms.max(1)),
                Ordering::Relaxed,
            );
        }
        let (mut visited, mut dropped) = (0, 0);
        while *cursor < SHARDS && visited < self.ceiling_budget {
            let mut shard = lock(&self.shards[*cursor].0);
            visited += shard.len();
            dropped += shard.sweep(now);
            *cursor += 1;
        }
        if *cursor == SHARDS {
            *cursor = 0;
        }
        drop(cursor);
        self.untrack(dropped);
        true
    }

    fn refuse(&self) -> StoreError {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        if !self.full_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_keys = self.max_keys,
                "memory store reached its ceiling of tracked subjects; refusing new subjects until idle ones expire (raise max_keys or use Redis)"
            );
        }
        StoreError::Full {
            max_keys: self.max_keys,
        }
    }

    /// Runs `f`, which returns `None` when it needs `n` new subjects the
    /// store has no room for; then sweeps (if due) and retries once.
    fn with_room<R>(&self, mut f: impl FnMut() -> Result<R, usize>) -> Result<R, StoreError> {
        match f() {
            Ok(r) => Ok(r),
            Err(_) if self.full_sweep_due(self.now_ms()) => f().map_err(|_| self.refuse()),
            Err(_) => Err(self.refuse()),
        }
    }

    /// The synchronous core of [`RateLimiter::check`].
    pub fn check_now(&self, policy: &LimitPolicy, key: &str) -> Result<Decision, StoreError> {
        let c = self.check_all_now(&[LimitCheck::new(policy, key)], None)?;
        c.decisions
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend("no decision for one check".into()))
    }

    /// The synchronous core of [`Store::check_all`].
    pub fn check_all_now(
        &self,
        checks: &[LimitCheck<'_>],
        read: Option<CounterRead<'_>>,
    ) -> Result<Checked, StoreError> {
        let (resolved, read_key) = self.resolve(checks, read.map(|r| r.identity))?;
        self.with_room(|| self.decide(checks, &resolved, read, read_key))
    }

    /// One attempt of [`MemoryStore::check_all_now`] under the locks of
    /// every subject; `Err(n)` when `n` new subjects do not fit.
    fn decide(
        &self,
        checks: &[LimitCheck<'_>],
        resolved: &[Resolved],
        read: Option<CounterRead<'_>>,
        read_key: Option<HKey>,
    ) -> Result<Checked, usize> {
        let mut locked = self.lock_all(resolved.iter().map(|r| r.subject).chain(read_key));
        // Read the clock under the locks so times enter each log in order.
        let now = self.now_ms();
        // Sweep before anything is looked up, so no entry this call reads
        // disappears under it.
        let swept: usize = locked
            .0
            .iter_mut()
            .map(|(_, s)| s.maybe_sweep(now, self.sweep_interval_ms))
            .sum();
        self.untrack(swept);
        let mut decisions = Vec::with_capacity(checks.len());
        for (c, r) in checks.iter().zip(resolved) {
            let max_len = usize::try_from(c.policy.max).unwrap_or(usize::MAX);
            // Forgets events that left the window; a policy re-configured
            // with a smaller max keeps the newest.
            let (count, oldest) = match locked.shard(&r.subject).map.get_mut(&r.subject) {
                Some(e) => e.window(r.tag, now, r.window, max_len),
                None => (0, None),
            };
            decisions.push(decision(c.policy, r.window, count, oldest, now));
        }
        let all = decisions.iter().all(|d| d.allowed);
        if all {
            let mut fresh: Vec<HKey> = Vec::new();
            // A counted attempt writes the read identity's entry too.
            let attempt_key = read_key.filter(|_| read.is_some_and(|r| r.attempt.is_some()));
            for k in resolved.iter().map(|r| r.subject).chain(attempt_key) {
                if !locked.shard(&k).map.contains_key(&k) && !fresh.contains(&k) {
                    fresh.push(k);
                }
            }
            if !fresh.is_empty() && !self.admit(fresh.len()) {
                return Err(fresh.len());
            }
            for (i, r) in resolved.iter().enumerate() {
                let e = locked
                    .shard(&r.subject)
                    .map
                    .entry(r.subject)
                    .or_insert_with(|| Entry::new(now));
                // The first check of a subject grows its entry by what all
                // of its checks add: one reallocation per subject, not one
                // per window (an entry has no spare capacity).
                if !resolved[..i].iter().any(|p| p.subject == r.subject) {
                    let add = resolved[i..]
                        .iter()
                        .filter(|q| q.subject == r.subject)
                        .map(|q| e.words_to_record(q.tag))
                        .sum();
                    e.words.reserve_exact(add);
                }
                e.record(r.tag, now, r.window);
            }
            for d in &mut decisions {
                d.remaining = d.remaining.saturating_sub(1);
            }
        }
        let (counters, failures) = match (read, read_key) {
            (Some(r), Some(k)) if all => {
                let entry = locked.shard(&k).map.get(&k);
                let counters = r
                    .windows
                    .iter()
                    .map(|&w| entry.map_or(0, |e| e.counter(w, now)))
                    .collect();
                let failures = r
                    .attempt
                    .map(|ttl| count_attempt(&mut locked, k, r.windows, ttl, now));
                (Some(counters), failures)
            }
            _ => (None, None),
        };
        Ok(Checked {
            decisions,
            counters,
            failures,
        })
    }

    /// The synchronous core of [`UseCounterStore::record_failures`].
    pub fn record_failures_now(
        &self,
        identity: &str,
        aimed: &[u64],
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<Vec<FailureOutcome>, StoreError> {
        if aimed.is_empty() {
            return Ok(Vec::new());
        }
        let ttl = millis(ttl);
        self.with_entry(identity, |e, _, _, now| {
            // The counter slots this call adds, in one reallocation.
            let new_slots = aimed
                .iter()
                .filter(|&&w| Entry::find(&e.words, slot_key(w), SLOT).is_none())
                .count();
            e.words.reserve_exact(new_slots * SLOT_WORDS);
            let mut out = Vec::with_capacity(aimed.len());
            for &w in aimed {
                let o = fail_once(e, now, w, windows, max_attempts, ttl);
                out.push(o);
                if o.exhausted {
                    // Every code of the range is new: fresh budgets, and
                    // this guess was never compared with them.
                    for &a in aimed {
                        e.set_failures(a, now, 0, 0);
                    }
                    break;
                }
            }
            // An exhausting guess leaves later windows unwritten: no spare
            // capacity is kept (a no-op otherwise).
            e.words.shrink_to_fit();
            out
        })
    }

    /// The synchronous core of [`RateLimiter::clear`].
    pub fn clear_now(&self, policy: &LimitPolicy, key: &str) {
        let k = self.subject_key(key);
        let tag = self.tag(policy, None);
        let mut shard = lock(&self.shards[k.shard()].0);
        let now = self.now_ms();
        let emptied = match shard.map.get_mut(&k) {
            Some(e) => {
                e.remove_windows(&[tag]);
                e.prune(now);
                e.is_empty()
            }
            None => false,
        };
        if emptied {
            shard.map.remove(&k);
            drop(shard);
            self.untrack(1);
        }
    }

    fn counters_now(&self, identity: &str, windows: &[u64]) -> Vec<u32> {
        let k = self.subject_key(identity);
        let shard = lock(&self.shards[k.shard()].0);
        let now = self.now_ms();
        let entry = shard.map.get(&k);
        windows
            .iter()
            .map(|&w| entry.map_or(0, |e| e.counter(w, now)))
            .collect()
    }

    /// Runs `f` on the entry of `identity` (created if needed, within the
    /// ceiling) and its shard's sessions, then drops what expired or was
    /// never written. Sessions `f` adds are counted without a ceiling check:
    /// they belong to a subject this call tracks.
    fn with_entry<R>(
        &self,
        identity: &str,
        f: impl FnMut(&mut Entry, &mut Sessions, &HKey, u64) -> R,
    ) -> Result<R, StoreError> {
        self.with_entry_of(self.subject_key(identity), f)
    }

    /// [`MemoryStore::with_entry`] on the subject whose hash is `k`.
    fn with_entry_of<R>(
        &self,
        k: HKey,
        mut f: impl FnMut(&mut Entry, &mut Sessions, &HKey, u64) -> R,
    ) -> Result<R, StoreError> {
        self.with_room(|| {
            let mut guard = lock(&self.shards[k.shard()].0);
            let now = self.now_ms();
            let swept = guard.maybe_sweep(now, self.sweep_interval_ms);
            if !guard.map.contains_key(&k) && !self.admit(1) {
                drop(guard);
                self.untrack(swept);
                return Err(1);
            }
            let shard = &mut *guard;
            let held = shard.sessions.len();
            let entry = shard.map.entry(k).or_insert_with(|| Entry::new(now));
            let r = f(entry, &mut shard.sessions, &k, now);
            entry.prune(now);
            let removed = if entry.is_empty() {
                shard.map.remove(&k);
                1
            } else {
                0
            };
            let held_now = shard.sessions.len();
            drop(guard);
            self.track(held_now.saturating_sub(held));
            self.untrack(swept + removed + held.saturating_sub(held_now));
            Ok(r)
        })
    }
}

/// [`CounterRead::attempt`] under the locks of a [`MemoryStore::decide`]
/// that allowed (and admitted the entry of `k`): one more failure on the
/// code of each window of `windows`, kept for `ttl`; the counts after it.
fn count_attempt(
    locked: &mut Locked<'_>,
    k: HKey,
    windows: &[u64],
    ttl: Duration,
    now: u64,
) -> Vec<u32> {
    let expires = now.saturating_add(millis(ttl));
    let e = locked
        .shard(&k)
        .map
        .entry(k)
        .or_insert_with(|| Entry::new(now));
    // The slots this attempt adds, in one reallocation.
    let new_slots = windows
        .iter()
        .filter(|&&w| Entry::find(&e.words, slot_key(w), SLOT).is_none())
        .count();
    e.words.reserve_exact(new_slots * SLOT_WORDS);
    windows
        .iter()
        .map(|&w| {
            let f = e.failures(w, now).saturating_add(1);
            e.set_failures(w, now, f, expires);
            f
        })
        .collect()
}

/// The decision of one window holding `count` events (oldest `oldest`).
/// `remaining` counts the event as if it were recorded only once the caller
/// records it (it subtracts one then).
fn decision(
    policy: &LimitPolicy,
    window: u64,
    count: usize,
    oldest: Option<u64>,
    now: u64,
) -> Decision {
    let max = policy.max;
    let window_secs = ceil_secs(policy.window);
    let count32 = u32::try_from(count).unwrap_or(u32::MAX);
    if count32 < max {
        return Decision {
            allowed: true,
            limit: max,
            remaining: max - count32,
            retry_after_secs: 0,
            window_secs,
        };
    }
    // Denied: the next event is allowed when the event that is `max`-th
    // newest leaves the window (the oldest, as the log holds at most max).
    let retry_ms = match oldest {
        Some(t) if max > 0 => t.saturating_add(window).saturating_sub(now),
        _ => window,
    };
    Decision {
        allowed: false,
        limit: max,
        remaining: 0,
        retry_after_secs: retry_ms.div_ceil(1000).max(1),
        window_secs,
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

    async fn record_failures(
        &self,
        identity: &str,
        aimed: &[u64],
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<Vec<FailureOutcome>, StoreError> {
        self.record_failures_now(identity, aimed, windows, max_attempts, ttl)
    }
}

/// One wrong code aimed at `window` (the body of
/// [`UseCounterStore::record_failures`], under the identity's lock).
fn fail_once(
    e: &mut Entry,
    now: u64,
    window: u64,
    windows: &[u64],
    max_attempts: u32,
    ttl_ms: u64,
) -> FailureOutcome {
    let max_attempts = max_attempts.max(1);
    let expires = now.saturating_add(ttl_ms);
    let failures = e.failures(window, now).saturating_add(1);
    if failures < max_attempts {
        e.set_failures(window, now, failures, expires);
        return FailureOutcome {
            failures,
            exhausted: false,
        };
    }
    e.set_failures(window, now, 0, 0);
    for &w in windows {
        let n = e.counter(w, now).saturating_add(1);
        e.set_counter(w, now, n, expires);
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

    async fn check_all(
        &self,
        checks: &[LimitCheck<'_>],
        read: Option<CounterRead<'_>>,
    ) -> Result<Checked, StoreError> {
        self.check_all_now(checks, read)
    }

    async fn advance_all(&self, a: &CounterAdvance<'_>) -> Result<bool, StoreError> {
        clear_on_identity(a)?;
        if let Some(s) = &a.session {
            check_sid(s.sid)?;
        }
        // One keyed hash of the identity serves its entry and its session.
        let k = self.subject_key(a.identity);
        let session = a.session.map(|s| (self.session_key(&k, s.sid), s));
        let ttl = millis(a.ttl);
        let tags: Vec<u32> = a
            .clear
            .iter()
            .map(|c| self.tag(c.policy, c.scope))
            .collect();
        self.with_entry_of(k, |e, sessions, k, now| {
            let expires = now.saturating_add(ttl);
            if e.counter(a.window, now) != a.from {
                return false;
            }
            e.set_counter(a.window, now, a.from.saturating_add(1), expires);
            for &w in a.void.iter().filter(|&&w| w != a.window) {
                let n = e.counter(w, now).saturating_add(1);
                e.set_counter(w, now, n, expires);
            }
            if a.reset_failures {
                for &w in std::iter::once(&a.window).chain(a.void) {
                    if e.failures(w, now) > 0 {
                        e.set_failures(w, now, 0, 0);
                    }
                }
            }
            e.remove_windows(&tags);
            if let Some((key, s)) = session {
                sessions.create(k, key, now, &s);
            }
            true
        })
    }
}

impl MemoryStore {
    /// The key of session `sid` of the identity whose subject hash is `k`.
    fn session_key(&self, k: &HKey, sid: &str) -> SKey {
        let mut buf = [0u8; 16 + crate::MAX_SESSION_ID_BYTES];
        buf[..16].copy_from_slice(&k.0);
        let n = sid.len().min(crate::MAX_SESSION_ID_BYTES);
        buf[16..16 + n].copy_from_slice(&sid.as_bytes()[..n]);
        let h = self.hasher.hash(b"i", &buf[..16 + n]);
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        SKey([word(0), word(4), word(8)])
    }

    /// Runs `f` on the sessions of `identity`'s shard (nothing is created
    /// for the identity), keeping the count of tracked items.
    fn with_sessions<R>(&self, k: &HKey, f: impl FnOnce(&mut Sessions, u64) -> R) -> R {
        let mut shard = lock(&self.shards[k.shard()].0);
        let now = self.now_ms();
        let held = shard.sessions.len();
        let r = f(&mut shard.sessions, now);
        let held_now = shard.sessions.len();
        drop(shard);
        self.track(held_now.saturating_sub(held));
        self.untrack(held.saturating_sub(held_now));
        r
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn session_create(
        &self,
        identity: &str,
        sid: &str,
        ttl: Duration,
        max_lifetime: Duration,
    ) -> Result<u64, StoreError> {
        check_sid(sid)?;
        let k = self.subject_key(identity);
        let key = self.session_key(&k, sid);
        let start = SessionStart {
            sid,
            ttl,
            max_lifetime,
        };
        self.with_room(|| {
            let mut guard = lock(&self.shards[k.shard()].0);
            let now = self.now_ms();
            let swept = guard.maybe_sweep(now, self.sweep_interval_ms);
            let shard = &mut *guard;
            // A new record needs room unless its identity is tracked (a
            // sign-in just wrote its counters or windows).
            let new = !shard.sessions.records.contains_key(&key);
            let has_entry = shard.map.contains_key(&k);
            if new && !has_entry && !self.admit(1) {
                drop(guard);
                self.untrack(swept);
                return Err(1);
            }
            shard.sessions.create(&k, key, now, &start);
            drop(guard);
            if new && has_entry {
                self.track(1);
            }
            self.untrack(swept);
            Ok(now)
        })
    }

    async fn session_rotate(&self, r: &SessionRefresh<'_>) -> Result<Rotation, StoreError> {
        check_sid(r.sid)?;
        let k = self.subject_key(r.identity);
        let key = self.session_key(&k, r.sid);
        Ok(self.with_sessions(&k, |s, now| s.rotate(&k, key, now, r)))
    }

    async fn session_revoke(&self, identity: &str, sid: &str) -> Result<bool, StoreError> {
        check_sid(sid)?;
        let k = self.subject_key(identity);
        let key = self.session_key(&k, sid);
        Ok(self.with_sessions(&k, |s, now| {
            let live = s.live(&key, now).is_some();
            s.records.remove(&key);
            live
        }))
    }

    /// Never refused at the ceiling: the caller has checked a genuine token
    /// of the identity, so its sessions are tracked; a sign-out everywhere
    /// must work when the store is full.
    async fn sessions_revoke_all(
        &self,
        identity: &str,
        max_lifetime: Duration,
    ) -> Result<(), StoreError> {
        let k = self.subject_key(identity);
        let max_lifetime = millis(max_lifetime);
        self.with_sessions(&k, |s, now| {
            s.advance_epoch(k, now, now.saturating_add(max_lifetime));
        });
        Ok(())
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

    // See: issue 17 (multi-second p99 after millions of sign-ins).
    #[test]
    fn subjects_spread_over_every_shard() {
        let (s, _) = store();
        let mut used = [false; SHARDS];
        for i in 0..50 * SHARDS {
            used[s.subject_key(&format!("user{i}")).shard()] = true;
        }
        let n = used.iter().filter(|&&u| u).count();
        assert_eq!(n, SHARDS, "only {n} of {SHARDS} shards used");
    }

    // See: issue 17 (at the ceiling one call swept the whole store).
    #[test]
    fn a_call_at_the_ceiling_sweeps_a_budget_of_items_not_the_whole_store() {
        let (mut s, clock) = store();
        s.max_keys = 2_000;
        s.ceiling_budget = 100;
        let p = LimitPolicy::per_secs("spray", 5, 1);
        for i in 0..2_000 {
            s.check_now(&p, &format!("old{i}")).unwrap();
        }
        assert_eq!(s.tracked_keys(), 2_000);
        // Every entry is idle now; the store is full.
        clock.advance(Duration::from_secs(5));
        s.check_now(&p, "new").unwrap();
        let left = s.tracked_keys();
        // A few shards' worth went (the budget, its last shard, the new
        // subject's own shard), not the 2 000 a whole-store pass drops.
        assert!(left > 2_000 - 400, "one call swept down to {left}");
        assert!(left < 2_000, "nothing was swept");
        // Calls at the ceiling continue the pass where it stopped.
        let mut i = 0;
        while *lock(&s.ceiling_cursor) != 0 && i < 10_000 {
            s.check_now(&p, &format!("new{i}")).unwrap();
            i += 1;
        }
        assert_eq!(*lock(&s.ceiling_cursor), 0, "the pass never completed");
    }

    // See: issue 17 (every shard re-swept its whole table every second).
    #[test]
    fn a_shard_sweeps_again_only_after_growing_by_a_quarter() {
        let mut shard = Shard::new();
        let add = |shard: &mut Shard, from: u8, n: u8| {
            for i in from..from + n {
                let mut e = Entry::new(0);
                e.record(1, 0, 1_000_000);
                shard.map.insert(HKey([i; 16]), e);
            }
        };
        add(&mut shard, 0, 100);
        // The first sweep is due; nothing expired.
        assert_eq!(shard.maybe_sweep(10, 1), 0);
        assert_eq!(shard.swept_len, 100);
        // An expired entry, and time is due, but the shard grew by 1 %:
        // no whole-table visit yet.
        let mut old = Entry::new(0);
        old.record(1, 0, 5);
        shard.map.insert(HKey([200; 16]), old);
        assert_eq!(shard.maybe_sweep(20, 1), 0);
        assert_eq!(shard.len(), 101);
        // Grown past a quarter: the sweep runs and drops the expired one.
        add(&mut shard, 100, 25);
        assert_eq!(shard.maybe_sweep(30, 1), 1);
        assert_eq!(shard.len(), 125);
        // Grown again, but the interval has not passed since.
        add(&mut shard, 125, 40);
        assert_eq!(shard.maybe_sweep(30, 1_000), 0);
    }

    #[test]
    fn entry_keeps_windows_and_slots_apart_and_exact() {
        let mut e = Entry::new(1_000);
        e.record(7, 1_000, 500);
        e.record(7, 1_200, 500);
        e.record(9, 1_300, 10_000);
        e.set_counter(42, 1_300, 3, 5_000);
        e.set_failures(42, 1_300, 2, 4_000);
        e.set_counter(43, 1_300, 1, 5_000);
        assert_eq!(e.window(7, 1_400, 500, 10), (2, Some(1_000)));
        // At 1 500 the event at 1 000 has left its 500 ms window.
        assert_eq!(e.window(7, 1_500, 500, 10), (1, Some(1_200)));
        assert_eq!(
            e.window(7, 1_500, 500, 0),
            (0, None),
            "a smaller max keeps the newest"
        );
        assert_eq!(e.window(9, 1_500, 10_000, 10), (1, Some(1_300)));
        assert_eq!((e.counter(42, 1_500), e.failures(42, 1_500)), (3, 2));
        assert_eq!((e.counter(43, 1_500), e.counter(44, 1_500)), (1, 0));
        assert_eq!(e.failures(42, 4_000), 0, "failures expired at 4 000");
        assert_eq!(e.counter(42, 4_000), 3);
        e.remove_windows(&[9]);
        assert_eq!(e.window(9, 1_500, 10_000, 10), (0, None));
        e.prune(5_000);
        assert!(e.is_empty(), "everything expired by 5 000");
    }

    #[test]
    fn entry_rebases_exactly_when_offsets_would_overflow() {
        let day = 86_400_000;
        let mut e = Entry::new(0);
        // Live for 60 days: one event a day in a 2-day window, a counter
        // rewritten every day.
        for d in 0..60u64 {
            let now = d * day + 17;
            e.record(5, now, 2 * day);
            e.set_counter(1, now, u32::try_from(d).unwrap(), now + day);
            assert_eq!(
                e.window(5, now, 2 * day, 100).1,
                Some(now.saturating_sub(day))
                    .filter(|_| d > 0)
                    .or(Some(now))
            );
            assert_eq!(e.counter(1, now + 1), u32::try_from(d).unwrap());
            assert_eq!(e.expires_at(), now + 2 * day);
        }
        assert!(e.base > 0, "rebased");
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

    #[tokio::test]
    async fn a_short_failure_ttl_never_shortens_the_counter() {
        let (s, c) = store();
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
    }

    #[tokio::test]
    async fn lost_compare_and_set_leaves_nothing_behind() {
        let (s, _) = store();
        assert!(!s
            .advance("a", 7, 3, Duration::from_secs(100))
            .await
            .unwrap());
        assert_eq!(s.tracked_keys(), 0);
    }

    #[tokio::test]
    async fn expired_counter_slots_read_as_zero() {
        let (s, c) = store();
        assert!(s.advance("a", 7, 0, Duration::from_secs(5)).await.unwrap());
        assert_eq!(s.counters("a", &[7]).await.unwrap(), vec![1]);
        c.advance(Duration::from_secs(5));
        assert_eq!(s.counters("a", &[7]).await.unwrap(), vec![0]);
        assert!(s.advance("a", 7, 0, Duration::from_secs(5)).await.unwrap());
    }
}
