//! The shared backend ([`RedisStore`], `STORE_BACKEND=redis`): standalone
//! Redis or Redis Cluster, for many replicas sharing limits and use counters.
//!
//! # Round trips and atomicity
//!
//! Every operation is one Lua script run with `EVALSHA` (atomic on the
//! server) or one plain command: [`Store::check_all`] (every limit window of
//! a decision, and the use counters a verify needs), the counter step of a
//! successful verify ([`Store::advance_all`]), the failure counts of a wrong
//! code ([`UseCounterStore::record_failures`]), each session step
//! ([`SessionStore`]: create, rotate, revoke all — a refresh is **one round
//! trip**, standalone and Cluster, as the session and the epoch share the
//! identity's slot); reading counters is one `MGET`, clearing one `DEL`,
//! revoking a session one `DEL`.
//!
//! On standalone Redis one `check_all` script receives every key of the
//! decision, whatever its subjects: a wrong-code verify costs **1 round
//! trip** (decision + counters + the attempt counted,
//! [`CounterRead::attempt`](crate::CounterRead::attempt)), a right code 2
//! (then the advance), a wrong code at the budget 2 (then the void). On Cluster the keys of other
//! subjects (the client network, `global`) live in other slots, so
//! `check_all` reserves them first (one script per subject, events tagged
//! with the call), then runs the identity's script, and removes the
//! reserved events (`ZREM` by tag) if any group denied — reserve-then-release
//! (SPEC §6; docs/store.md). A verify then costs one round trip more (2 for
//! a wrong code, 3 for a right one), plus one release when the identity's
//! limits deny.
//!
//! [`Store::ping`] loads every script when Redis first answers it (and
//! again after a ping failed; `otp-server` pings at start and in the
//! background). Only when Redis has lost its script cache without a ping
//! noticing (a restart or failover between two pings, `SCRIPT FLUSH`), or
//! on a Cluster node the ping's load did not reach, does the first call
//! answer `NOSCRIPT`; the client then sends `SCRIPT LOAD` and retries,
//! once. The scripts are assembled from
//! shared fragments (`INT`, `NOW`, `WINDOW`, `BUMP`, `CREATE_SESSION`), never
//! copied.
//!
//! # Connections
//!
//! Each thread that uses the store gets its own multiplexed connection,
//! opened by the first operation on that thread: with `otp-server`, one
//! per actix worker (and one for the main thread's start-up ping). A
//! multiplexed connection's reader and writer run as a task of the runtime
//! that opened it, so a command is written and its reply read on the
//! thread that awaits it: no wake-up of another thread per round trip (a
//! connection shared by every worker cost 2.9 context switches per verify,
//! docs/store.md), and no connection tied to a runtime that has ended.
//!
//! # Time
//!
//! Scripts read the time from the Redis server (`redis.call('TIME')`), never
//! from the replica calling them, so replicas with skewed clocks agree on one
//! timeline. Redis ≥ 5 replicates script effects, not scripts, so this is
//! safe with replication (Redis 7 does nothing else).
//!
//! # Key layout (version [`KEY_LAYOUT_VERSION`])
//!
//! With `key_prefix` `otp` (the default), `H` = the first 16 bytes of
//! `HMAC-SHA256(hash_key, "k" 0x00 <subject>)` and `S` = the same of the
//! scope under domain `"s"`, both as 32 lowercase hex digits:
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `otp:v3:{H}:rl:<policy>` | sorted set | allowed events (member = call tag, score = server time in µs) | the policy window, renewed on each allowed event |
//! | `otp:v3:{H}:rl:<policy>:S` | sorted set | the same for a scoped window | the same |
//! | `otp:v3:{H}:n:<window>` | string (integer) | use state of (identity, OTP window): `counter × 1 000 000 + wrong codes counted since the counter last moved` | set by the write that created it; every counter advance sets it again (an attempt never shortens it) |
//! | `otp:v3:{H}:s:<sid>` | hash `{g, r, e, i}` | session generation, `rotated_at` (server ms), sign-out epoch at creation, the caller's `issued_at` of the last rotation | the session's idle TTL, renewed on rotation |
//! | `otp:v3:{H}:e` | string (integer) | sign-out epoch of the identity | the session maximum lifetime, extended by each session created |
//! | `otp:layout` | string | layout version of the last replica that connected | 30 days, renewed at each connect |
//!
//! The subject is the identity, the client network or `global`, as given
//! by the caller. The `{H}` hash tag puts every key of one subject in one
//! Cluster slot; the raw subject never reaches Redis; every key has a TTL,
//! so Redis memory stays bounded without any cleanup job. All replicas must
//! share `hash_key` and `key_prefix`. The version in every key means a
//! replica of another layout never reads these keys; at connect a replica
//! warns when `otp:layout` names another version (a rolling upgrade: the
//! two layouts keep separate budgets until the old replicas are gone). One
//! helper (`KeyLayout`) builds every key.
//!
//! # Failures
//!
//! Every operation is bounded by `connect_timeout + response_timeout` in
//! total; when Redis does not answer in time, or refuses connections, the
//! operation returns [`StoreError::Unavailable`] (never panics, never
//! hangs). The store never needs recreating: on standalone, an operation
//! that finds its thread's connection closed or refused fails, and the next
//! operation on that thread opens a new connection (a thread that saw the
//! outage serves its first request after Redis comes back); the Cluster
//! connection re-connects to its nodes by itself.
//! [`RedisStore::connect_lazy`] builds the store without connecting: the
//! first operation opens the connection (and writes the layout marker), and
//! while Redis has never answered each operation tries again, so a process
//! started during an outage needs no restart (that first operation may take
//! up to twice the bound: the connection, then the command).
//!
//! # Topology
//!
//! [`RedisConfig::urls`] lists one or more `redis://` (or `rediss://`) URLs.
//! With [`RedisTopology::Auto`] (the default), one URL means a standalone
//! server (or a proxy / Sentinel-managed address) and several URLs mean seed
//! nodes of one Redis Cluster; [`RedisTopology::Cluster`] forces Cluster mode
//! with a single seed URL. [`RedisConfig::from_url_list`] parses the
//! comma-separated form used for `REDIS_URL`.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ErrorKind, FromRedisValue, RedisError, Script};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::hash::{HashKey, KeyHasher};
use crate::{
    ceil_secs, check_sid, clear_on_identity, millis, Checked, CounterAdvance, CounterRead,
    Decision, FailureOutcome, LimitCheck, LimitPolicy, RateLimiter, Rotation, SessionRefresh,
    SessionStore, Store, StoreError, UseCounterStore,
};

/// Default per-attempt connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default per-command response timeout.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "otp";

/// Standalone or Cluster (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedisTopology {
    /// One URL: standalone; several: Cluster seed nodes.
    #[default]
    Auto,
    /// A single server (exactly one URL).
    Standalone,
    /// A Redis Cluster; the URLs are seed nodes (one is enough, more survive
    /// a seed being down at start-up).
    Cluster,
}

/// Configuration of [`RedisStore`].
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` URLs (`rediss://` for TLS).
    /// Required, at least one.
    pub urls: Vec<String>,
    /// How to read `urls`. Defaults to [`RedisTopology::Auto`].
    pub topology: RedisTopology,
    /// Prefix of every key, so several deployments can share one Redis.
    /// Defaults to `otp`.
    pub key_prefix: String,
    /// Key of the HMAC that replaces identities in key names; the same on
    /// every replica. Required (otp-server derives it from its secrets).
    pub hash_key: HashKey,
    /// Timeout of one connection attempt. Defaults to 500 ms.
    pub connect_timeout: Duration,
    /// Timeout of one command's response. Defaults to 500 ms.
    pub response_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry passwords: print only what is safe.
        f.debug_struct("RedisConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("topology", &self.topology)
            .field("key_prefix", &self.key_prefix)
            .field("hash_key", &self.hash_key)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// `url` with any `user:password@` part replaced by `***@`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl RedisConfig {
    /// A config for `urls` with every other field at its default.
    pub fn new(urls: Vec<String>, hash_key: impl Into<HashKey>) -> Self {
        RedisConfig {
            urls,
            topology: RedisTopology::Auto,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            hash_key: hash_key.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }

    /// A config from a comma-separated URL list (the `REDIS_URL` form:
    /// `redis://a:6379` or `redis://a:7000,redis://b:7001,redis://c:7002`).
    pub fn from_url_list(list: &str, hash_key: impl Into<HashKey>) -> Result<Self, StoreError> {
        let urls: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let c = RedisConfig::new(urls, hash_key);
        c.validate()?;
        Ok(c)
    }

    /// The URLs with any `user:password@` part replaced by `***@`, for logs
    /// and `otp-server probe`.
    pub fn redacted_urls(&self) -> Vec<String> {
        self.urls.iter().map(|u| redact_url(u)).collect()
    }

    /// Checks the URLs and the topology without connecting.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.urls.is_empty() {
            return Err(StoreError::Config("store.redis.urls lists no URL".into()));
        }
        if self.topology == RedisTopology::Standalone && self.urls.len() > 1 {
            return Err(StoreError::Config(
                "standalone Redis takes exactly one URL".into(),
            ));
        }
        for u in &self.urls {
            redis::parse_redis_url(u).ok_or_else(|| {
                StoreError::Config(format!("invalid Redis URL {:?}", redact_url(u)))
            })?;
        }
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err(StoreError::Config("Redis timeouts must be positive".into()));
        }
        Ok(())
    }

    fn is_cluster(&self) -> bool {
        match self.topology {
            RedisTopology::Auto => self.urls.len() > 1,
            RedisTopology::Standalone => false,
            RedisTopology::Cluster => true,
        }
    }
}

// One `Conn` lives per store and is cloned per operation (a few `Arc`
// increments); boxing the large variant would add an allocation per clone.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Conn {
    /// A standalone connection, and whether an operation found it closed.
    Single(MultiplexedConnection, Arc<AtomicBool>),
    /// The cluster-async connection, which re-connects to its nodes itself.
    Cluster(ClusterConnection),
}

impl Conn {
    /// An operation found this connection closed: its thread opens a new one.
    fn is_closed(&self) -> bool {
        matches!(self, Conn::Single(_, closed) if closed.load(Ordering::Relaxed))
    }
}

/// Runs `op` on a standalone connection; a closed or refused connection is
/// marked `closed`, so the next operation on its thread opens a new one
/// instead of failing on it too.
async fn watched<T>(
    closed: &AtomicBool,
    op: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    let r = op.await;
    if let Err(e) = &r {
        if e.is_connection_dropped() || e.is_connection_refusal() || e.is_unrecoverable_error() {
            closed.store(true, Ordering::Relaxed);
        }
    }
    r
}

/// One thread's connection: opened by its first operation, replaced once
/// an operation found it closed (module docs, "Connections").
type Slot = std::cell::RefCell<Arc<tokio::sync::OnceCell<Conn>>>;

/// What opens a connection: built without I/O, used by the first
/// operation of each thread (and again by each one until Redis answered).
enum Opener {
    Single(redis::Client, AsyncConnectionConfig),
    Cluster(redis::cluster::ClusterClient),
}

/// The layout version in every key (module docs).
pub const KEY_LAYOUT_VERSION: u32 = 3;

/// The use state of (identity, OTP window) is one integer, `counter ×
/// USE_STATE_BASE + wrong codes counted since the counter last moved`, so
/// a verify counts its attempt and reads the counter with one `INCR`, and
/// advancing the counter with its count reset is one `SET` (no second key
/// to delete). A count that reached the base would carry into the counter:
/// that voids the code, the safe side.
const USE_STATE_BASE: u64 = 1_000_000;

/// TTL of the `<prefix>:layout` marker, renewed at each connect.
const LAYOUT_MARKER_TTL: Duration = Duration::from_secs(30 * 86_400);

/// Fragment: `int(n)`, the decimal string of an integer. Every computed
/// number a script hands to `redis.call` goes through `int`: Redis formats
/// a Lua number argument with `%.17g`, whose floating-point printing was
/// about a tenth of Redis's CPU per verify (callgrind); `%d` is exact for
/// every integer below 2⁵³.
const INT: &str = r"
local function int(n) return string.format('%d', n) end
";

/// Fragment: `now`, the server time in µs.
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
";

/// Fragment: `window_state(key, max, window_us, now)` trims a strict
/// sliding window and returns `count, retry_us` (retry 0 when count < max).
/// A missing key costs one `ZCARD` (no trim to do); an existing one is
/// trimmed and its count lowered by what the trim removed.
const WINDOW: &str = r"
local function window_state(key, max, window_us, now)
  local count = redis.call('ZCARD', key)
  if count > 0 then
    count = count - redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window_us))
  end
  if count < max then return count, 0 end
  local retry = window_us
  if count > 0 and max > 0 then
    local e = redis.call('ZRANGE', key, int(count - max), int(count - max), 'WITHSCORES')
    if e[2] then retry = tonumber(e[2]) + window_us - now end
  end
  return count, retry
end
";

/// Fragment: `bump(key, ttl_ms)` advances a counter by one.
const BUMP: &str = r"
local function bump(key, ttl_ms)
  redis.call('INCR', key)
  redis.call('PEXPIRE', key, ttl_ms)
end
";

/// Fragment: the use state of (identity, OTP window), one integer per key
/// ([`USE_STATE_BASE`]): `use_state(key)` reads it (0 when missing; an
/// error reply when it is not a count); `set_next(key, v, reset, ttl_ms)`
/// writes the state `v` (read before) with its counter moved by one,
/// keeping the wrong-code count or (with `reset`) setting it to zero;
/// `advance_use(key, reset, ttl_ms)` reads the state first. Needs `INT`
/// and `B`, the base, which [`use_state_fragment`] puts in front of it.
const USE_STATE: &str = r"
local function use_state(key)
  local v = tonumber(redis.call('GET', key) or '0')
  if not v or v < 0 or v ~= math.floor(v) then
    error('a use counter holds a value that is not a count')
  end
  return v
end
local function set_next(key, v, reset, ttl_ms)
  if reset then v = v - v % B end
  redis.call('SET', key, int(v + B), 'PX', ttl_ms)
end
local function advance_use(key, reset, ttl_ms)
  set_next(key, use_state(key), reset, ttl_ms)
end
";

/// [`USE_STATE`] after `local B = <USE_STATE_BASE>`: the base is written
/// once, in Rust.
fn use_state_fragment() -> String {
    format!("local B = {USE_STATE_BASE}\n{USE_STATE}")
}

/// One decision. KEYS = n window keys, then the use-state keys of the
/// counters read. ARGV[1] = the numbers packed as little-endian doubles
/// ([`pack`]): record (1, or 0 to evaluate only), f (1 to count an attempt,
/// [`CounterRead::attempt`]), n, then max and window in ms per window, then
/// (when f = 1) the TTL in ms of a use state the attempt creates;
/// ARGV[2] = the call's tag. Returns one string: per window the packed
/// pair (count of events in the window before this call, retry_us when it
/// denies, else 0), then, when every window allows, `,<counter>` per
/// use-state key (`0` when missing) and, with f = 1, `,<failures>` per key
/// after the attempt was counted (one `INCR`: the count is the state's low
/// part, [`USE_STATE_BASE`]). The attempt sets the TTL only of a state it
/// creates, so it never shortens a counter's.
///
/// Expiries are set with `PEXPIREAT` at the script's `now` plus the TTL
/// (a window's rounded up to the next ms, so its key never goes before its
/// newest event leaves the window): a relative `PEXPIRE` makes Redis rewrite the
/// command into a `PEXPIREAT` with a new argument object for propagation,
/// 0.2–0.4 µs more per call (a Lua loop timed by `INFO commandstats`,
/// docs/benchmarks.md), and a wrong code sets up to six expiries.
///
/// Numbers travel packed (`struct`) both ways: `tonumber` of an argument
/// and a reply table of integers were most of the script's own cost
/// (callgrind of redis-server), each argument of EVALSHA costs Redis about
/// as much as a cheap command, and one string reply parses faster in the
/// client than an array.
const CHECK_ALL_BODY: &str = r"
local spec = ARGV[1]
local record, f, n, pos = struct.unpack('<ddd', spec)
local now_ms = math.floor(now / 1000)
local all = true
local reply = ''
for i = 1, n do
  local max, window_ms
  max, window_ms, pos = struct.unpack('<dd', spec, pos)
  local count, retry = window_state(KEYS[i], max, window_ms * 1000, now)
  if count >= max then all = false end
  reply = reply .. struct.pack('<dd', count, retry)
end
if all then
  if record == 1 then
    local at = int(now)
    local tag = ARGV[2]
    pos = 25
    for i = 1, n do
      local _, window_ms
      _, window_ms, pos = struct.unpack('<dd', spec, pos)
      redis.call('ZADD', KEYS[i], at, tag)
      redis.call('PEXPIREAT', KEYS[i], int(now_ms + 1 + window_ms))
    end
  end
  local counts = ''
  local created_at
  if f == 1 then created_at = int(now_ms + struct.unpack('<d', spec, 25 + 16 * n)) end
  for i = n + 1, #KEYS do
    local v
    if f == 1 then
      v = redis.call('INCR', KEYS[i])
      if v == 1 then redis.call('PEXPIREAT', KEYS[i], created_at) end
      counts = counts .. ',' .. int(v % B)
    else
      v = use_state(KEYS[i])
    end
    reply = reply .. ',' .. int(math.floor(v / B))
  end
  reply = reply .. counts
end
return reply
";

/// Release of reserved events: ZREM of the tag ARGV[1] from every key.
const RELEASE: &str = r"
for i = 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 1
";

/// Compare-and-set. KEYS[1] = the use state of the window that matched;
/// KEYS[2 .. 1 + v] = use states to advance too when it won; then the
/// windows to delete when it won (cleared); with a session the last two
/// keys are its session and epoch keys. ARGV[1] = from, v, the session flag
/// and the reset flag packed ([`pack`]); ARGV[2] = ttl in ms; with a
/// session, ARGV[3] = session ttl ms, ARGV[4] = max lifetime ms. With the
/// reset flag every advanced state's wrong-code count goes to zero. Returns
/// 1 if and only if it won. Reads the time (in `create_session`) only with
/// a session.
const ADVANCE_BODY: &str = r"
local from, v, session, reset = struct.unpack('<dddd', ARGV[1])
local c = use_state(KEYS[1])
if math.floor(c / B) ~= from then return 0 end
reset = reset == 1
set_next(KEYS[1], c, reset, ARGV[2])
local last = #KEYS
if session == 1 then last = #KEYS - 2 end
for i = 2, 1 + v do advance_use(KEYS[i], reset, ARGV[2]) end
for i = 2 + v, last do redis.call('DEL', KEYS[i]) end
if session == 1 then create_session(KEYS[#KEYS - 1], KEYS[#KEYS], ARGV[3], ARGV[4]) end
return 1
";

/// Failure counts of one identity, in order, stopping at an exhaustion
/// (which sets every aimed state's count to zero and advances the counters).
/// KEYS[1..m] = the use states aimed at, KEYS[m+1..] = the use states whose
/// counters an exhaustion advances; ARGV[1] = max and m packed ([`pack`]),
/// ARGV[2] = ttl ms (of a state it creates, and of every state an
/// exhaustion writes). Returns the packed pairs (failures, exhausted) of
/// every counted state.
const FAILURES_BODY: &str = r"
local max, m = struct.unpack('<dd', ARGV[1])
local ttl = ARGV[2]
local reply = ''
for j = 1, m do
  local v = redis.call('INCR', KEYS[j])
  if v == 1 then redis.call('PEXPIRE', KEYS[j], ttl) end
  local f = v % B
  if f < max then
    reply = reply .. struct.pack('<dd', f, 0)
  else
    for i = 1, m do
      local s = use_state(KEYS[i])
      redis.call('SET', KEYS[i], int(s - s % B), 'PX', ttl)
    end
    for i = m + 1, #KEYS do advance_use(KEYS[i], false, ttl) end
    return reply .. struct.pack('<dd', f, 1)
  end
end
return reply
";

/// Fragment: `create_session(session_key, epoch_key, ttl_ms, max_ms)`
/// writes a generation-0 record with the identity's epoch (every field of
/// the record, so nothing of an earlier record of that id survives), keeps a live
/// epoch for the max lifetime, and returns the server time in ms (the
/// record's `rotated_at`). Reads the time itself (`TIME`, in ms: the same
/// as `NOW` divided by 1000, rounded down); needs `INT`.
const CREATE_SESSION: &str = r"
local function create_session(skey, ekey, ttl_ms, max_ms)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local e = redis.call('GET', ekey)
  if e then redis.call('PEXPIRE', ekey, max_ms) end
  redis.call('HSET', skey, 'g', '0', 'r', int(ms), 'e', e or '0', 'i', '0')
  redis.call('PEXPIRE', skey, ttl_ms)
  return ms
end
";

/// Session creation. KEYS = session, epoch; ARGV = ttl ms, max lifetime
/// ms. Returns the server time in ms.
const SESSION_CREATE_BODY: &str = r"
return create_session(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
";

/// SPEC §10's rotation rule. KEYS = session, epoch; ARGV = presented
/// generation, grace ms, ttl ms, issued_at. Returns {0} missing, {1, g, r,
/// i} rotated, {2, g, r, i} grace, {3} reused (deleted), {4} signed out
/// (deleted).
const SESSION_ROTATE_BODY: &str = r"
local ms = math.floor(now / 1000)
local rec = redis.call('HMGET', KEYS[1], 'g', 'r', 'e')
local g = tonumber(rec[1])
local r = tonumber(rec[2])
if not g or not r then return {0} end
local e = tonumber(rec[3]) or 0
if e ~= tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('DEL', KEYS[1])
  return {4}
end
local p = tonumber(ARGV[1])
if p == g then
  redis.call('HSET', KEYS[1], 'g', int(g + 1), 'r', int(ms), 'i', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, g + 1, ms, tonumber(ARGV[4])}
end
if p + 1 == g and ms - r <= tonumber(ARGV[2]) then
  return {2, g, r, tonumber(redis.call('HGET', KEYS[1], 'i') or '0')}
end
redis.call('DEL', KEYS[1])
return {3}
";

/// The layout marker: KEYS[1]; ARGV = this version, TTL in ms. Returns the
/// version found before (this one when absent).
const LAYOUT: &str = r"
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return v or ARGV[1]
";

/// A script made of `fragments`, in order.
fn script(fragments: &[&str]) -> Script {
    Script::new(&fragments.concat())
}

/// Integers packed for a script's `struct.unpack('<d…')`: little-endian
/// doubles, exact for every value used here (all below 2⁵³).
fn pack(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * values.len());
    for &v in values {
        // Exact: every packed value (counts, ms, flags) is below 2⁵³.
        #[allow(clippy::cast_precision_loss)]
        out.extend_from_slice(&(v as f64).to_le_bytes());
    }
    out
}

/// The integers of a script's `struct.pack('<d…')` reply; `None` when the
/// length is not a whole number of doubles or a value is not an integer.
fn unpack(bytes: &[u8]) -> Option<Vec<i64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    bytes
        .chunks_exact(8)
        .map(|c| {
            let v = f64::from_le_bytes(c.try_into().ok()?);
            // Scripts pack integers below 2⁵³ only: exact both ways.
            #[allow(clippy::cast_possible_truncation)]
            let i = v as i64;
            #[allow(clippy::cast_precision_loss)]
            (v.is_finite() && i as f64 == v).then_some(i)
        })
        .collect()
}

/// The `,<counter>` list that ends a decision reply; `None` when it is not
/// one, `Some(Err)` when a counter is not a count.
fn counter_list(tail: &[u8]) -> Option<Result<Vec<u32>, StoreError>> {
    let text = std::str::from_utf8(tail.strip_prefix(b",")?).ok()?;
    Some(
        text.split(',')
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    StoreError::Backend("a use counter holds a value that is not a count".into())
                })
            })
            .collect(),
    )
}

/// The one place that names keys (module docs, "Key layout").
struct KeyLayout {
    prefix: String,
    hasher: KeyHasher,
}

impl KeyLayout {
    /// `<prefix>:v<V>:{<H>}`: the hash-tagged stem of every key of `subject`.
    /// Every key is built in one buffer of its length with `push_str`, not
    /// with `format!` (about 5 % of otp-server's instructions per
    /// Redis-backed wrong-code verify, callgrind; docs/benchmarks.md).
    fn stem(&self, subject: &str) -> String {
        // `:v<V>:{`, 32 hex digits, `}`.
        let mut s = String::with_capacity(self.prefix.len() + 48);
        s.push_str(&self.prefix);
        s.push_str(":v");
        s.push_str(itoa::Buffer::new().format(KEY_LAYOUT_VERSION));
        s.push_str(":{");
        self.hasher.push_hash_hex(&mut s, b"k", subject.as_bytes());
        s.push('}');
        s
    }

    fn limit(&self, c: &LimitCheck<'_>) -> String {
        self.limit_in(&self.stem(c.subject), c)
    }

    /// The key of `c`, whose subject's stem is `stem`:
    /// `<stem>:rl:<policy>` or, scoped, `<stem>:rl:<policy>:<S>`.
    fn limit_in(&self, stem: &str, c: &LimitCheck<'_>) -> String {
        let mut s = String::with_capacity(stem.len() + 4 + c.policy.name.len() + 33);
        s.push_str(stem);
        s.push_str(":rl:");
        s.push_str(c.policy.name);
        if let Some(scope) = c.scope {
            s.push(':');
            self.hasher.push_hash_hex(&mut s, b"s", scope.as_bytes());
        }
        s
    }

    /// `<stem>:n:<window>`: the use state (counter and wrong-code count).
    fn counter(stem: &str, window: u64) -> String {
        joined(&[stem, ":n:", itoa::Buffer::new().format(window)])
    }

    /// `<stem>:s:<sid>`.
    fn session(stem: &str, sid: &str) -> String {
        joined(&[stem, ":s:", sid])
    }

    /// `<stem>:e`.
    fn epoch(stem: &str) -> String {
        joined(&[stem, ":e"])
    }

    fn marker(&self) -> String {
        joined(&[&self.prefix, ":layout"])
    }
}

/// `parts` in one string allocated at its length.
fn joined(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// The Redis [`Store`] (see the module docs for semantics, key layout and
/// failure behaviour). Cheap to share behind an `Arc`; all methods take
/// `&self` and run concurrently, over one multiplexed connection per thread.
pub struct RedisStore {
    opener: Opener,
    /// The connection of each thread that used the store (module docs,
    /// "Connections").
    conn: thread_local::ThreadLocal<Slot>,
    nodes: usize,
    cluster: bool,
    keys: KeyLayout,
    op_timeout: Duration,
    tag_seed: u64,
    tag_seq: AtomicU64,
    check_all: Script,
    release: Script,
    advance: Script,
    failures: Script,
    session_create: Script,
    session_rotate: Script,
    epoch_bump: Script,
    /// Set when a [`Store::ping`] that Redis answered has loaded every
    /// script ([`RedisStore::load_scripts`]); cleared by a ping that fails,
    /// so the first ping after an outage loads them again.
    scripts_loaded: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix)
            .field("cluster", &self.cluster)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// A check resolved for one script: its key, max and window in ms.
struct Window<'a> {
    check: &'a LimitCheck<'a>,
    /// The key; its first `stem_len` bytes are the subject's stem.
    key: String,
    stem_len: usize,
    window_ms: u64,
}

/// What one decision script answered: the decisions in the order of its
/// windows, then, when every window allowed, the counters and the failure
/// counts of its [`CounterRead`] (the latter when it counted an attempt).
type Group = (Vec<Decision>, Option<Vec<u32>>, Option<Vec<u32>>);

/// What the reserve step of a Cluster check recorded.
#[derive(Default)]
struct Reserved {
    /// The keys of each reserved group (one subject each), for release.
    keys: Vec<Vec<String>>,
    /// The checks whose windows were reserved.
    indices: Vec<usize>,
    /// Some window denied.
    denied: bool,
}

/// Windows reserved before a later denial report the event as recorded; it
/// was released, so give it back in `remaining`.
fn given_back(decisions: Vec<Decision>, reserved: &[usize]) -> Vec<Decision> {
    decisions
        .into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            if reserved.contains(&i) {
                d.remaining = d.remaining.saturating_add(1).min(d.limit);
            }
            d
        })
        .collect()
}

impl RedisStore {
    /// Connects (bounded by the configured timeouts) and checks that Redis
    /// answers. Fails with [`StoreError::Config`] for invalid URLs and
    /// [`StoreError::Unavailable`] when Redis does not answer.
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        let store = RedisStore::connect_lazy(config)?;
        store.ping().await?;
        Ok(store)
    }

    /// Builds the store without connecting: only [`StoreError::Config`]
    /// (invalid URLs, timeouts) is checked now. The first operation opens
    /// the connection; while Redis does not answer, every operation
    /// (including [`Store::ping`]) fails with [`StoreError::Unavailable`]
    /// within `connect_timeout + response_timeout` and the next one tries
    /// again, so a process started during a Redis outage serves as soon as
    /// Redis answers, without a restart.
    pub fn connect_lazy(config: RedisConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let op_timeout = config.connect_timeout + config.response_timeout;
        let use_state = use_state_fragment();
        let opener = if config.is_cluster() {
            let client = redis::cluster::ClusterClientBuilder::new(config.urls.clone())
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                // Retries cover MOVED/ASK redirects and a node failing over;
                // the whole operation stays bounded by `op_timeout`.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .map_err(|e| StoreError::Config(format!("Redis Cluster client: {e}")))?;
            Opener::Cluster(client)
        } else {
            let url = config.urls.first().map(String::as_str).unwrap_or_default();
            let client = redis::Client::open(url)
                .map_err(|e| StoreError::Config(format!("Redis client: {e}")))?;
            // No retry loop inside one connection attempt: while Redis is
            // down each operation fails fast and the next one starts a fresh
            // attempt, so the store recovers as soon as Redis answers again.
            let ac = AsyncConnectionConfig::new()
                .set_connection_timeout(config.connect_timeout)
                .set_response_timeout(config.response_timeout);
            Opener::Single(client, ac)
        };
        Ok(RedisStore {
            opener,
            conn: thread_local::ThreadLocal::new(),
            nodes: config.urls.len(),
            cluster: config.is_cluster(),
            keys: KeyLayout {
                prefix: config.key_prefix.clone(),
                hasher: KeyHasher::new(&config.hash_key),
            },
            op_timeout,
            tag_seed: {
                use std::hash::{BuildHasher, Hasher};
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish()
            },
            tag_seq: AtomicU64::new(0),
            check_all: script(&[INT, NOW, WINDOW, &use_state, CHECK_ALL_BODY]),
            release: script(&[RELEASE]),
            advance: script(&[INT, &use_state, CREATE_SESSION, ADVANCE_BODY]),
            failures: script(&[INT, &use_state, FAILURES_BODY]),
            session_create: script(&[INT, CREATE_SESSION, SESSION_CREATE_BODY]),
            session_rotate: script(&[INT, NOW, SESSION_ROTATE_BODY]),
            epoch_bump: script(&[BUMP, "bump(KEYS[1], ARGV[1])\nreturn 1\n"]),
            scripts_loaded: AtomicBool::new(false),
        })
    }

    /// This thread's connection, opened by the first call on this thread
    /// that finds Redis answering (callers arriving meanwhile wait for it,
    /// each for at most `op_timeout`).
    async fn conn(&self) -> Result<Conn, StoreError> {
        let cell = {
            let mut slot = self.conn.get_or_default().borrow_mut();
            if slot.get().is_some_and(Conn::is_closed) {
                *slot = Arc::default();
            }
            Arc::clone(&slot)
        };
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        // The opening future is boxed: redis-rs's connect makes it about
        // 4 KB, it is awaited once per thread, and unboxed it would sit in
        // every operation's future, which the `Store` trait's boxing copies
        // whole (docs/benchmarks.md).
        let open = || Box::pin(self.open());
        match tokio::time::timeout(self.op_timeout, cell.get_or_try_init(open)).await {
            Ok(r) => r.cloned(),
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer within {} ms",
                self.op_timeout.as_millis()
            ))),
        }
    }

    /// Opens the connection and writes the layout marker.
    async fn open(&self) -> Result<Conn, StoreError> {
        let conn = match &self.opener {
            Opener::Single(client, ac) => Conn::Single(
                bounded(
                    self.op_timeout,
                    client.get_multiplexed_async_connection_with_config(ac),
                )
                .await?,
                Arc::default(),
            ),
            Opener::Cluster(client) => {
                Conn::Cluster(bounded(self.op_timeout, client.get_async_connection()).await?)
            }
        };
        self.check_layout(&conn).await?;
        tracing::info!(
            cluster = self.cluster,
            nodes = self.nodes,
            prefix = %self.keys.prefix,
            layout = KEY_LAYOUT_VERSION,
            "connected to Redis"
        );
        Ok(conn)
    }

    /// Writes the layout marker; warns when it named another version.
    async fn check_layout(&self, conn: &Conn) -> Result<(), StoreError> {
        let found: String = self
            .eval_on(
                conn.clone(),
                &script(&[LAYOUT]),
                &[self.keys.marker()],
                &[u64::from(KEY_LAYOUT_VERSION), millis(LAYOUT_MARKER_TTL)],
                None,
            )
            .await?;
        if found != KEY_LAYOUT_VERSION.to_string() {
            tracing::warn!(
                found = %found,
                this = KEY_LAYOUT_VERSION,
                "replicas of another Redis key layout share this prefix: they keep separate limits and counters until every replica runs this version"
            );
        }
        Ok(())
    }

    /// Loads every script of the store into Redis' script cache (`SCRIPT
    /// LOAD`; on Cluster, on the node the client picks), so a script error
    /// or a server that refuses scripts shows before traffic does (`otp-server
    /// probe`). Returns the number of scripts loaded.
    pub async fn load_scripts(&self) -> Result<usize, StoreError> {
        let scripts = [
            &self.check_all,
            &self.release,
            &self.advance,
            &self.failures,
            &self.session_create,
            &self.session_rotate,
            &self.epoch_bump,
        ];
        for s in scripts {
            let sha: String = match self.conn().await? {
                Conn::Single(mut c, closed) => {
                    let inv = s.prepare_invoke();
                    bounded(self.op_timeout, watched(&closed, inv.load_async(&mut c))).await?
                }
                Conn::Cluster(mut c) => {
                    bounded(self.op_timeout, s.prepare_invoke().load_async(&mut c)).await?
                }
            };
            if sha != s.get_hash() {
                return Err(StoreError::Backend(format!(
                    "SCRIPT LOAD answered {sha}, expected {}",
                    s.get_hash()
                )));
            }
        }
        Ok(scripts.len())
    }

    /// Redis' `maxmemory-policy` (`CONFIG GET`). `Ok(None)` when the
    /// server answered without it; a server where `CONFIG` is renamed or
    /// refused answers [`StoreError::Backend`].
    pub async fn maxmemory_policy(&self) -> Result<Option<String>, StoreError> {
        let got: std::collections::HashMap<String, String> = self
            .query(redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"))
            .await?;
        Ok(got.get("maxmemory-policy").cloned())
    }

    /// A tag unique to one call (the member of its events).
    fn call_tag(&self) -> String {
        let n = self.tag_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:x}", self.tag_seed)
    }

    /// Runs `script` with `keys`, the numeric `args` and an optional last
    /// string argument (one EVALSHA), bounded in time.
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[u64],
        last: Option<&str>,
    ) -> Result<T, StoreError> {
        let conn = self.conn().await?;
        self.eval_on(conn, script, keys, args, last).await
    }

    /// [`RedisStore::eval`] on `conn`.
    async fn eval_on<T: FromRedisValue>(
        &self,
        conn: Conn,
        script: &Script,
        keys: &[String],
        args: &[u64],
        last: Option<&str>,
    ) -> Result<T, StoreError> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(*a);
        }
        if let Some(l) = last {
            inv.arg(l);
        }
        self.invoke(conn, &inv).await
    }

    /// Runs `script` with `keys` and the byte-string `args` (one EVALSHA),
    /// bounded in time.
    async fn eval_bytes<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let conn = self.conn().await?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(*a);
        }
        self.invoke(conn, &inv).await
    }

    /// One prepared invocation on `conn`, bounded in time.
    async fn invoke<T: FromRedisValue>(
        &self,
        conn: Conn,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        match conn {
            Conn::Single(mut c, closed) => {
                bounded(self.op_timeout, watched(&closed, inv.invoke_async(&mut c))).await
            }
            Conn::Cluster(mut c) => bounded(self.op_timeout, inv.invoke_async(&mut c)).await,
        }
    }

    /// Runs one plain command, bounded in time.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        async fn go<T: FromRedisValue, C: ConnectionLike>(
            cmd: &redis::Cmd,
            mut c: C,
        ) -> redis::RedisResult<T> {
            cmd.query_async(&mut c).await
        }
        match self.conn().await? {
            Conn::Single(c, closed) => bounded(self.op_timeout, watched(&closed, go(cmd, c))).await,
            Conn::Cluster(c) => bounded(self.op_timeout, go(cmd, c)).await,
        }
    }

    /// One CHECK_ALL script over `windows` (and the counters of `read`):
    /// the decisions in the order of `windows`, and the counters when
    /// every window allowed.
    async fn decide_group(
        &self,
        windows: &[&Window<'_>],
        read: Option<CounterRead<'_>>,
        record: bool,
        tag: &str,
    ) -> Result<Group, StoreError> {
        let mut keys: Vec<String> = windows.iter().map(|w| w.key.clone()).collect();
        let n_counters = read.map_or(0, |r| r.windows.len());
        let n_failures = read
            .filter(|r| r.attempt.is_some())
            .map_or(0, |r| r.windows.len());
        let mut spec = Vec::with_capacity(4 + 2 * windows.len());
        spec.push(u64::from(record));
        spec.push(u64::from(n_failures > 0));
        spec.push(windows.len() as u64);
        for w in windows {
            spec.push(u64::from(w.check.policy.max));
            spec.push(w.window_ms);
        }
        if let Some(r) = read {
            // The identity's stem from one of its windows (no second hash).
            let stem = windows
                .iter()
                .find(|w| w.check.subject == r.identity)
                .and_then(|w| w.key.get(..w.stem_len))
                .map_or_else(|| self.keys.stem(r.identity), str::to_owned);
            keys.extend(r.windows.iter().map(|&w| KeyLayout::counter(&stem, w)));
            if let Some(t) = r.attempt {
                spec.push(millis(t).max(1));
            }
        }
        let spec = pack(&spec);
        let reply: Vec<u8> = self
            .eval_bytes(&self.check_all, &keys, &[&spec, tag.as_bytes()])
            .await?;
        let bad = || {
            StoreError::Backend(format!(
                "the decision script answered {} bytes for {} windows, {n_counters} counters \
                 and {n_failures} failure counts",
                reply.len(),
                windows.len(),
            ))
        };
        let n = 16 * windows.len();
        let (head, tail) = (
            reply.get(..n).ok_or_else(bad)?,
            &reply[n.min(reply.len())..],
        );
        let states = unpack(head).ok_or_else(bad)?;
        let all = states
            .chunks_exact(2)
            .zip(windows)
            .all(|(c, w)| c[0] < i64::from(w.check.policy.max));
        let recorded = i64::from(all && record);
        let decisions: Vec<Decision> = states
            .chunks_exact(2)
            .zip(windows)
            .map(|(c, w)| {
                let max = i64::from(w.check.policy.max);
                if c[0] < max {
                    decision(w.check.policy, 1, max - c[0] - recorded, 0)
                } else {
                    decision(w.check.policy, 0, 0, c[1])
                }
            })
            .collect();
        if !all || read.is_none() {
            return if tail.is_empty() {
                Ok((decisions, None, None))
            } else {
                Err(bad())
            };
        }
        let mut counters = counter_list(tail).ok_or_else(bad)??;
        if counters.len() != n_counters + n_failures {
            return Err(bad());
        }
        let failures = (n_failures > 0).then(|| counters.split_off(n_counters));
        Ok((decisions, Some(counters), failures))
    }

    /// Removes the events of `tag` from the reserved `groups` (best effort:
    /// a failure leaks one event per key until its window passes).
    async fn release(&self, groups: &[Vec<String>], tag: &str) {
        for keys in groups {
            if let Err(e) = self.eval::<i64>(&self.release, keys, &[], Some(tag)).await {
                tracing::warn!(error = %e, "could not release a reserved limit event; it expires with its window");
            }
        }
    }

    /// The window of each check, in order: its key in the keyed hash of its
    /// subject (one hash per subject, however many windows name it).
    fn windows_of<'a>(&self, checks: &'a [LimitCheck<'a>]) -> Result<Vec<Window<'a>>, StoreError> {
        let mut stems: Vec<(&str, String)> = Vec::with_capacity(2);
        let mut windows = Vec::with_capacity(checks.len());
        for c in checks {
            if !stems.iter().any(|(s, _)| *s == c.subject) {
                stems.push((c.subject, self.keys.stem(c.subject)));
            }
            let stem = stems
                .iter()
                .find(|(s, _)| *s == c.subject)
                .map(|(_, st)| st.as_str())
                .unwrap_or_default();
            windows.push(Window {
                check: c,
                key: self.keys.limit_in(stem, c),
                stem_len: stem.len(),
                window_ms: window_ms(c.policy)?,
            });
        }
        Ok(windows)
    }

    /// [`Store::check_all`] on Cluster (SPEC §6, reserve-then-release):
    /// reserve the other subjects' windows, then decide the home subject's
    /// (the identity whose counters `read` names, else the first check's
    /// subject) with the counter read, then release if anything denied.
    async fn check_all_cluster(
        &self,
        checks: &[LimitCheck<'_>],
        windows: &[Window<'_>],
        read: Option<CounterRead<'_>>,
        tag: &str,
    ) -> Result<Checked, StoreError> {
        let home = read
            .map(|r| r.identity)
            .or_else(|| checks.first().map(|c| c.subject));
        let mut decisions: Vec<Option<Decision>> = vec![None; checks.len()];
        let reserved = self
            .reserve_others(checks, windows, home, tag, &mut decisions)
            .await?;
        let mut denied = reserved.denied;
        let home_idx: Vec<usize> = (0..checks.len())
            .filter(|&i| Some(checks[i].subject) == home)
            .collect();
        let group: Vec<&Window<'_>> = home_idx.iter().map(|&i| &windows[i]).collect();
        let home_read = if denied { None } else { read };
        let (ds, counters, failures) = self
            .decide_or_release(&group, home_read, !denied, tag, &reserved.keys)
            .await?;
        denied |= !ds.iter().all(|d| d.allowed);
        for (&i, d) in home_idx.iter().zip(ds) {
            decisions[i] = Some(d);
        }
        if denied {
            self.release(&reserved.keys, tag).await;
        }
        let decisions = decisions
            .into_iter()
            .map(|d| d.ok_or_else(|| StoreError::Backend("a window got no decision".into())))
            .collect::<Result<Vec<_>, _>>()?;
        if !denied {
            return Ok(Checked {
                decisions,
                counters,
                failures,
            });
        }
        Ok(Checked {
            decisions: given_back(decisions, &reserved.indices),
            counters: None,
            failures: None,
        })
    }

    /// The first step of [`RedisStore::check_all_cluster`]: decides the
    /// windows of every subject but `home`, one script per subject in order
    /// of first appearance, recording (reserving) in them until one denies
    /// and only deciding after that. Fills `decisions`; on an error,
    /// releases what it reserved.
    async fn reserve_others(
        &self,
        checks: &[LimitCheck<'_>],
        windows: &[Window<'_>],
        home: Option<&str>,
        tag: &str,
        decisions: &mut [Option<Decision>],
    ) -> Result<Reserved, StoreError> {
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, c) in checks.iter().enumerate() {
            if Some(c.subject) == home {
                continue;
            }
            match groups.iter_mut().find(|(s, _)| *s == c.subject) {
                Some((_, v)) => v.push(i),
                None => groups.push((c.subject, vec![i])),
            }
        }
        let mut reserved = Reserved::default();
        for (_, idx) in &groups {
            let group: Vec<&Window<'_>> = idx.iter().map(|&i| &windows[i]).collect();
            let (ds, _, _) = self
                .decide_or_release(&group, None, !reserved.denied, tag, &reserved.keys)
                .await?;
            let ok = ds.iter().all(|d| d.allowed);
            if ok && !reserved.denied {
                reserved
                    .keys
                    .push(group.iter().map(|w| w.key.clone()).collect());
                reserved.indices.extend(idx.iter().copied());
            }
            reserved.denied |= !ok;
            for (&i, d) in idx.iter().zip(ds) {
                decisions[i] = Some(d);
            }
        }
        Ok(reserved)
    }

    /// [`RedisStore::decide_group`]; on an error, first releases the
    /// `reserved` groups.
    async fn decide_or_release(
        &self,
        group: &[&Window<'_>],
        read: Option<CounterRead<'_>>,
        record: bool,
        tag: &str,
        reserved: &[Vec<String>],
    ) -> Result<Group, StoreError> {
        match self.decide_group(group, read, record, tag).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.release(reserved, tag).await;
                Err(e)
            }
        }
    }
}

/// Awaits `fut` for at most `limit`, mapping every failure to a [`StoreError`].
async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    let r = match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => map_err(&e),
        Err(_) => StoreError::Unavailable(format!(
            "Redis did not answer within {} ms",
            limit.as_millis()
        )),
    };
    // The caller (otp-service) logs the failure with its fail-mode decision;
    // this is the detail for `RUST_LOG=otp_ratelimit=debug`.
    tracing::debug!(error = %r, "Redis operation failed");
    Err(r)
}

fn map_err(e: &RedisError) -> StoreError {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
                | ErrorKind::Moved
                | ErrorKind::Ask
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::AuthenticationFailed
        );
    if transient {
        StoreError::Unavailable(format!("Redis: {e}"))
    } else {
        StoreError::Backend(format!("Redis: {e}"))
    }
}

/// The window of `policy` in ms; a window under 1 ms is a config error.
fn window_ms(policy: &LimitPolicy) -> Result<u64, StoreError> {
    match millis(policy.window) {
        0 => Err(StoreError::Config(format!(
            "limit policy {:?} has a window under 1 ms",
            policy.name
        ))),
        ms => Ok(ms),
    }
}

/// A [`Decision`] from a check script's `{allowed, remaining, retry_us}`.
fn decision(policy: &LimitPolicy, allowed: i64, remaining: i64, retry_us: i64) -> Decision {
    let allowed = allowed == 1;
    let retry_after_secs = if allowed {
        0
    } else {
        u64::try_from(retry_us)
            .unwrap_or(0)
            .div_ceil(1_000_000)
            .max(1)
    };
    Decision {
        allowed,
        limit: policy.max,
        remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
        retry_after_secs,
        window_secs: ceil_secs(policy.window),
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisStore {
    async fn check(&self, policy: &LimitPolicy, key: &str) -> Result<Decision, StoreError> {
        let c = self
            .check_all(&[LimitCheck::new(policy, key)], None)
            .await?;
        c.decisions
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend("no decision for one check".into()))
    }

    async fn clear(&self, policy: &LimitPolicy, key: &str) -> Result<(), StoreError> {
        let k = self.keys.limit(&LimitCheck::new(policy, key));
        let _: i64 = self.query(redis::cmd("DEL").arg(k)).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl UseCounterStore for RedisStore {
    async fn counters(&self, identity: &str, windows: &[u64]) -> Result<Vec<u32>, StoreError> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let stem = self.keys.stem(identity);
        let mut cmd = redis::cmd("MGET");
        for &w in windows {
            cmd.arg(KeyLayout::counter(&stem, w));
        }
        let vals: Vec<Option<u64>> = self.query(&cmd).await?;
        if vals.len() != windows.len() {
            return Err(StoreError::Backend(format!(
                "MGET answered {} values for {} keys",
                vals.len(),
                windows.len()
            )));
        }
        Ok(vals
            .into_iter()
            .map(|v| u32::try_from(v.unwrap_or_default() / USE_STATE_BASE).unwrap_or(u32::MAX))
            .collect())
    }

    async fn record_failures(
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
        let stem = self.keys.stem(identity);
        let mut keys = Vec::with_capacity(aimed.len() + windows.len());
        keys.extend(aimed.iter().map(|&w| KeyLayout::counter(&stem, w)));
        keys.extend(windows.iter().map(|&w| KeyLayout::counter(&stem, w)));
        let ttl = millis(ttl).max(1).to_string();
        let spec = pack(&[u64::from(max_attempts.max(1)), aimed.len() as u64]);
        let reply: Vec<u8> = self
            .eval_bytes(&self.failures, &keys, &[&spec, ttl.as_bytes()])
            .await?;
        let flat = unpack(&reply).unwrap_or_default();
        if flat.is_empty() || !flat.len().is_multiple_of(2) || flat.len() > 2 * aimed.len() {
            return Err(StoreError::Backend(format!(
                "the failure script answered {} bytes for {} windows",
                reply.len(),
                aimed.len()
            )));
        }
        Ok(flat
            .chunks_exact(2)
            .map(|c| failure_outcome(c[0], c[1]))
            .collect())
    }
}

fn failure_outcome(failures: i64, exhausted: i64) -> FailureOutcome {
    FailureOutcome {
        failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
        exhausted: exhausted == 1,
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    /// `PING` (on Cluster, routed to every node, so readiness means all
    /// are up). The first ping Redis answers, and the first after one that
    /// failed, also loads every script, so that the first calls after a
    /// start (or after an outage that restarted Redis) find them cached
    /// instead of answering `NOSCRIPT` and costing two more round trips
    /// each; on Cluster they are loaded on the node the client picks (the
    /// others still load on first use). A failed load is no failed ping:
    /// the next ping tries again, and a call meeting `NOSCRIPT` still
    /// loads and retries (module docs).
    async fn ping(&self) -> Result<(), StoreError> {
        let answered: Result<String, StoreError> = self.query(&redis::cmd("PING")).await;
        if let Err(e) = answered {
            self.scripts_loaded.store(false, Ordering::Relaxed);
            return Err(e);
        }
        if !self.scripts_loaded.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.load_scripts().await {
                self.scripts_loaded.store(false, Ordering::Relaxed);
                tracing::debug!(error = %e, "Redis scripts not loaded ahead of use");
            }
        }
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }

    async fn check_all(
        &self,
        checks: &[LimitCheck<'_>],
        read: Option<CounterRead<'_>>,
    ) -> Result<Checked, StoreError> {
        let windows = self.windows_of(checks)?;
        let tag = self.call_tag();
        if self.cluster {
            // Boxed: the larger future (three scripts), which would
            // otherwise make every standalone call's future its size.
            return Box::pin(self.check_all_cluster(checks, &windows, read, &tag)).await;
        }
        // Standalone: one script for every key, whatever the subjects.
        let all: Vec<&Window<'_>> = windows.iter().collect();
        let (decisions, counters, failures) = self.decide_group(&all, read, true, &tag).await?;
        Ok(Checked {
            decisions,
            counters,
            failures,
        })
    }

    async fn advance_all(&self, a: &CounterAdvance<'_>) -> Result<bool, StoreError> {
        clear_on_identity(a)?;
        let stem = self.keys.stem(a.identity);
        let void: Vec<u64> = a.void.iter().copied().filter(|&w| w != a.window).collect();
        let mut keys = Vec::with_capacity(1 + void.len() + a.clear.len() + 2);
        keys.push(KeyLayout::counter(&stem, a.window));
        keys.extend(void.iter().map(|&w| KeyLayout::counter(&stem, w)));
        // `clear_on_identity`: every cleared window is the identity's.
        keys.extend(a.clear.iter().map(|c| self.keys.limit_in(&stem, c)));
        let mut args: Vec<Vec<u8>> = vec![
            pack(&[
                u64::from(a.from),
                void.len() as u64,
                u64::from(a.session.is_some()),
                u64::from(a.reset_failures),
            ]),
            millis(a.ttl).max(1).to_string().into_bytes(),
        ];
        if let Some(s) = &a.session {
            check_sid(s.sid)?;
            keys.push(KeyLayout::session(&stem, s.sid));
            keys.push(KeyLayout::epoch(&stem));
            args.push(millis(s.ttl).max(1).to_string().into_bytes());
            args.push(millis(s.max_lifetime).max(1).to_string().into_bytes());
        }
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let won: i64 = self.eval_bytes(&self.advance, &keys, &args).await?;
        Ok(won == 1)
    }
}

impl RedisStore {
    /// The session and epoch keys of `sid` of `identity` (one slot).
    fn session_keys(&self, identity: &str, sid: &str) -> Result<[String; 2], StoreError> {
        check_sid(sid)?;
        let stem = self.keys.stem(identity);
        Ok([KeyLayout::session(&stem, sid), KeyLayout::epoch(&stem)])
    }
}

/// A non-negative script integer as u64.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn session_create(
        &self,
        identity: &str,
        sid: &str,
        ttl: Duration,
        max_lifetime: Duration,
    ) -> Result<u64, StoreError> {
        let keys = self.session_keys(identity, sid)?;
        let ms: i64 = self
            .eval(
                &self.session_create,
                &keys,
                &[millis(ttl).max(1), millis(max_lifetime).max(1)],
                None,
            )
            .await?;
        Ok(unsigned(ms))
    }

    async fn session_rotate(&self, r: &SessionRefresh<'_>) -> Result<Rotation, StoreError> {
        let keys = self.session_keys(r.identity, r.sid)?;
        let out: Vec<i64> = self
            .eval(
                &self.session_rotate,
                &keys,
                &[
                    r.generation,
                    millis(r.grace),
                    millis(r.ttl).max(1),
                    r.issued_at,
                ],
                None,
            )
            .await?;
        Ok(match out.as_slice() {
            [0] => Rotation::Missing,
            [1, g, t, i] => Rotation::Rotated {
                generation: unsigned(*g),
                rotated_at_ms: unsigned(*t),
                issued_at: unsigned(*i),
            },
            [2, g, t, i] => Rotation::Grace {
                generation: unsigned(*g),
                rotated_at_ms: unsigned(*t),
                issued_at: unsigned(*i),
            },
            [3] => Rotation::Reused,
            [4] => Rotation::SignedOut,
            _ => {
                return Err(StoreError::Backend(
                    "the session script answered an unknown outcome".into(),
                ))
            }
        })
    }

    async fn session_revoke(&self, identity: &str, sid: &str) -> Result<bool, StoreError> {
        let [session, _] = self.session_keys(identity, sid)?;
        let n: i64 = self.query(redis::cmd("DEL").arg(&session)).await?;
        Ok(n > 0)
    }

    async fn sessions_revoke_all(
        &self,
        identity: &str,
        max_lifetime: Duration,
    ) -> Result<(), StoreError> {
        let epoch = KeyLayout::epoch(&self.keys.stem(identity));
        let _: i64 = self
            .eval(
                &self.epoch_bump,
                &[epoch],
                &[millis(max_lifetime).max(1)],
                None,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_list_parses_and_selects_topology() {
        let c = RedisConfig::from_url_list("redis://127.0.0.1:6379", &b"k"[..]).unwrap();
        assert!(!c.is_cluster());
        let c = RedisConfig::from_url_list(
            " redis://127.0.0.1:7000, redis://127.0.0.1:7001 ,",
            &b"k"[..],
        )
        .unwrap();
        assert_eq!(c.urls.len(), 2);
        assert!(c.is_cluster());
        assert!(matches!(
            RedisConfig::from_url_list("", &b"k"[..]),
            Err(StoreError::Config(_))
        ));
        assert!(matches!(
            RedisConfig::from_url_list("http://nope", &b"k"[..]),
            Err(StoreError::Config(_))
        ));
    }

    #[test]
    fn packed_integers_round_trip_and_malformed_replies_are_refused() {
        let v = [0, 1, 10_000_000, 86_400_000, (1 << 53) - 1];
        let packed = pack(&v);
        assert_eq!(packed.len(), 8 * v.len());
        assert_eq!(
            unpack(&packed),
            Some(v.iter().map(|&x| x as i64).collect::<Vec<_>>())
        );
        assert_eq!(unpack(&packed[..7]), None, "not whole doubles");
        assert_eq!(unpack(&0.5f64.to_le_bytes()), None, "not an integer");
        assert_eq!(unpack(&f64::NAN.to_le_bytes()), None);
        assert_eq!(unpack(&[]), Some(vec![]));
    }

    #[test]
    fn counter_lists_parse_and_refuse_what_is_not_a_count() {
        assert!(matches!(counter_list(b",3,0"), Some(Ok(v)) if v == vec![3, 0]));
        assert!(matches!(
            counter_list(b",x"),
            Some(Err(StoreError::Backend(_)))
        ));
        assert!(matches!(
            counter_list(b",-1"),
            Some(Err(StoreError::Backend(_)))
        ));
        assert!(counter_list(b"3").is_none(), "no leading comma");
    }

    /// The key names are the documented layout (module docs, "Key
    /// layout"), byte for byte: the buffers built with `push_str` give what
    /// `format!` gave.
    #[test]
    fn key_names_follow_the_documented_layout() {
        let keys = KeyLayout {
            prefix: "otp".into(),
            hasher: KeyHasher::new(&HashKey::from(&b"layout-key"[..])),
        };
        let h = keys.hasher.hash_hex(b"k", b"alice@example.com");
        let stem = keys.stem("alice@example.com");
        assert_eq!(stem, format!("otp:v{KEY_LAYOUT_VERSION}:{{{h}}}"));
        assert_eq!(stem.len(), 41);
        let p = LimitPolicy::per_secs("verify_daily", 30, 86_400);
        let c = LimitCheck::new(&p, "alice@example.com");
        assert_eq!(keys.limit(&c), format!("{stem}:rl:verify_daily"));
        let scoped = c.scoped("198.51.100.0/24");
        let sh = keys.hasher.hash_hex(b"s", b"198.51.100.0/24");
        assert_eq!(
            keys.limit_in(&stem, &scoped),
            format!("{stem}:rl:verify_daily:{sh}")
        );
        assert_eq!(KeyLayout::counter(&stem, 0), format!("{stem}:n:0"));
        assert_eq!(
            KeyLayout::counter(&stem, u64::MAX),
            format!("{stem}:n:{}", u64::MAX)
        );
        assert_eq!(KeyLayout::session(&stem, "abc"), format!("{stem}:s:abc"));
        assert_eq!(KeyLayout::epoch(&stem), format!("{stem}:e"));
        assert_eq!(keys.marker(), "otp:layout");
    }

    #[test]
    fn debug_redacts_passwords() {
        let c = RedisConfig::new(vec!["redis://user:hunter2@db:6379".into()], &b"k"[..]);
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("***@db:6379"), "{s}");
    }
}
