//! The shared backend ([`RedisStore`], `STORE_BACKEND=redis`): standalone
//! Redis or Redis Cluster, for many replicas sharing limits and use counters.
//!
//! # Round trips and atomicity
//!
//! Every operation is exactly one command on the wire: a limiter check (or
//! several checks of one key, [`RateLimiter::check_many`]), a
//! compare-and-set and a failure count (or several,
//! [`UseCounterStore::record_failures`]) are each one Lua script run with
//! `EVALSHA` (atomic on the server); reading counters is one `MGET`; clearing
//! is one `DEL`. The combined operations of one identity
//! ([`Store::check_many_then_counters`], [`Store::advance_then_clear`]) are
//! one script each too: their keys share the identity's hash tag. A verify
//! thus costs 3 round trips (per-IP check; identity limits + counters;
//! failure records, or compare-and-set + clear). Only when Redis has lost its script cache (restart, failover,
//! `SCRIPT FLUSH`) does the first call after it answer `NOSCRIPT` and the
//! client sends `SCRIPT LOAD` and retries, once.
//!
//! # Time
//!
//! Scripts read the time from the Redis server (`redis.call('TIME')`), never
//! from the replica calling them, so replicas with skewed clocks agree on one
//! timeline. Redis ≥ 5 replicates script effects, not scripts, so this is
//! safe with replication (Redis 7 does nothing else).
//!
//! # Key layout
//!
//! With `key_prefix` `otp` (the default) and `H` = the first 16 bytes of
//! `HMAC-SHA256(hash_key, "k" 0x00 <key>)` as 32 lowercase hex digits:
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `otp:{H}:rl:<policy>` | sorted set | allowed events (score = server time in µs) | the policy window, renewed on each allowed event |
//! | `otp:{H}:n:<window>` | string (integer) | use counter of (identity, OTP window) | the `ttl` of the last write |
//! | `otp:{H}:f:<window>` | string (integer) | wrong codes in (identity, OTP window) | the `ttl` of the last failure |
//!
//! `<key>` is the identity, the client IP or `global`, as given by the
//! caller. The `{H}` hash tag puts every key of one identity in one Cluster
//! slot, so each script touches one slot; the raw identity never reaches
//! Redis; every key has a TTL, so Redis memory stays bounded without any
//! cleanup job. All replicas must share `hash_key` and `key_prefix`.
//!
//! # Failures
//!
//! Every operation is bounded by `connect_timeout + response_timeout` in
//! total; when Redis does not answer in time, or refuses connections, the
//! operation returns [`StoreError::Unavailable`] (never panics, never
//! hangs). The connection (standalone: `redis::aio::ConnectionManager`;
//! Cluster: the cluster-async connection) re-connects by itself on the next
//! operations after Redis comes back; the store never needs recreating.
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

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, FromRedisValue, RedisError, Script};

use crate::hash::{HashKey, KeyHasher};
use crate::{
    ceil_secs, millis, Decision, FailureOutcome, LimitPolicy, RateLimiter, Store, StoreError,
    UseCounterStore,
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

    /// Checks the URLs and the topology without connecting.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.urls.is_empty() {
            return Err(StoreError::Config("REDIS_URL lists no URL".into()));
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
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Sliding-window check. KEYS[1] = log; ARGV = max, window in ms.
/// Returns {allowed, remaining, retry_after_us}.
const CHECK_LUA: &str = r"
local key = KEYS[1]
local max = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < max then
  redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. ':' .. count)
  redis.call('PEXPIRE', key, ARGV[2])
  return {1, max - count - 1, 0}
end
local retry = window
if count > 0 then
  local e = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
  if e[2] then retry = tonumber(e[2]) + window - now end
end
return {0, 0, retry}
";

/// Several sliding-window checks of one key stem, in order, at one server
/// time, stopping at the first denial (what consecutive CHECK_LUA calls
/// would do, atomically). KEYS[i] = log of policy i; ARGV[2i-1], ARGV[2i] =
/// its max and window in ms. Returns {allowed, remaining, retry_after_us}
/// per consulted policy, flattened.
const CHECK_MANY_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local max = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i]) * 1000
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < max then
    redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. ':' .. count)
    redis.call('PEXPIRE', key, ARGV[2 * i])
    out[#out + 1] = 1
    out[#out + 1] = max - count - 1
    out[#out + 1] = 0
  else
    local retry = window
    if count > 0 then
      local e = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
      if e[2] then retry = tonumber(e[2]) + window - now end
    end
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = retry
    return out
  end
end
return out
";

/// CHECK_MANY_LUA on the first ARGV[1] keys, then, if every policy allowed,
/// the use counters KEYS[ARGV[1]+1..] (0 when absent, -1 for a value that is
/// not a number). ARGV = policy count, then max and window in ms per policy.
/// Returns {allowed, remaining, retry_after_us} per consulted policy, then
/// the counters, flattened.
const CHECK_THEN_COUNTERS_LUA: &str = r"
local p = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, p do
  local key = KEYS[i]
  local max = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1]) * 1000
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < max then
    redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. ':' .. count)
    redis.call('PEXPIRE', key, ARGV[2 * i + 1])
    out[#out + 1] = 1
    out[#out + 1] = max - count - 1
    out[#out + 1] = 0
  else
    local retry = window
    if count > 0 then
      local e = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
      if e[2] then retry = tonumber(e[2]) + window - now end
    end
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = retry
    return out
  end
end
for i = p + 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    out[#out + 1] = tonumber(v) or -1
  else
    out[#out + 1] = 0
  end
end
return out
";

/// Compare-and-set. KEYS[1] = counter; ARGV = from, ttl in ms.
const ADVANCE_LUA: &str = r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], v + 1, 'PX', ARGV[2])
  return 1
end
return 0
";

/// ADVANCE_LUA on KEYS[1], then, if it won, DEL of the limiter log KEYS[2].
const ADVANCE_THEN_CLEAR_LUA: &str = r"
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], v + 1, 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
";

/// Failure count. KEYS[1] = failures, KEYS[2..] = counters; ARGV = max, ttl ms.
/// Returns {failures, exhausted}.
const FAILURE_LUA: &str = r"
local f = redis.call('INCR', KEYS[1])
if f < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {f, 0}
end
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return {f, 1}
";

/// Several failure counts of one identity, in order (what consecutive
/// FAILURE_LUA calls would do, atomically). KEYS[1..m] = failure keys,
/// KEYS[m+1..] = counters; ARGV = max, ttl ms, m. Returns {failures,
/// exhausted} per failure key, flattened.
const FAILURES_LUA: &str = r"
local max = tonumber(ARGV[1])
local m = tonumber(ARGV[3])
local out = {}
for j = 1, m do
  local f = redis.call('INCR', KEYS[j])
  if f < max then
    redis.call('PEXPIRE', KEYS[j], ARGV[2])
    out[#out + 1] = f
    out[#out + 1] = 0
  else
    redis.call('DEL', KEYS[j])
    for i = m + 1, #KEYS do
      redis.call('INCR', KEYS[i])
      redis.call('PEXPIRE', KEYS[i], ARGV[2])
    end
    out[#out + 1] = f
    out[#out + 1] = 1
  end
end
return out
";

/// The Redis [`Store`] (see the module docs for semantics, key layout and
/// failure behaviour). Cheap to share behind an `Arc`; all methods take
/// `&self` and run concurrently over one multiplexed connection.
pub struct RedisStore {
    conn: Conn,
    hasher: KeyHasher,
    prefix: String,
    op_timeout: Duration,
    check: Script,
    check_many: Script,
    check_then_counters: Script,
    advance: Script,
    advance_then_clear: Script,
    failure: Script,
    failures: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (bounded by the configured timeouts) and checks that Redis
    /// answers. Fails with [`StoreError::Config`] for invalid URLs and
    /// [`StoreError::Unavailable`] when Redis does not answer.
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let op_timeout = config.connect_timeout + config.response_timeout;
        let conn = if config.is_cluster() {
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
            let c = bounded(op_timeout, client.get_async_connection()).await?;
            Conn::Cluster(c)
        } else {
            let url = config.urls.first().map(String::as_str).unwrap_or_default();
            let client = redis::Client::open(url)
                .map_err(|e| StoreError::Config(format!("Redis client: {e}")))?;
            // No retry loop inside one reconnection: while Redis is down each
            // operation fails fast and the next one starts a fresh attempt,
            // so the store recovers as soon as Redis answers again (the
            // default backoff would sleep for seconds between attempts).
            let mc = ConnectionManagerConfig::new()
                .set_connection_timeout(config.connect_timeout)
                .set_response_timeout(config.response_timeout)
                .set_number_of_retries(0);
            let c = bounded(op_timeout, ConnectionManager::new_with_config(client, mc)).await?;
            Conn::Single(c)
        };
        let store = RedisStore {
            conn,
            hasher: KeyHasher::new(&config.hash_key),
            prefix: config.key_prefix.clone(),
            op_timeout,
            check: Script::new(CHECK_LUA),
            check_many: Script::new(CHECK_MANY_LUA),
            check_then_counters: Script::new(CHECK_THEN_COUNTERS_LUA),
            advance: Script::new(ADVANCE_LUA),
            advance_then_clear: Script::new(ADVANCE_THEN_CLEAR_LUA),
            failure: Script::new(FAILURE_LUA),
            failures: Script::new(FAILURES_LUA),
        };
        store.ping().await?;
        tracing::info!(
            cluster = config.is_cluster(),
            nodes = config.urls.len(),
            prefix = %store.prefix,
            "connected to Redis"
        );
        Ok(store)
    }

    /// The hash-tagged key stem `<prefix>:{<H>}` of `key`.
    fn stem(&self, key: &str) -> String {
        format!(
            "{}:{{{}}}",
            self.prefix,
            self.hasher.hash_hex(b"k", key.as_bytes())
        )
    }

    /// Runs `script` with `keys` and `args` (one EVALSHA), bounded in time.
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[u64],
    ) -> Result<T, StoreError> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(*a);
        }
        match self.conn.clone() {
            Conn::Single(mut c) => bounded(self.op_timeout, inv.invoke_async(&mut c)).await,
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
        match self.conn.clone() {
            Conn::Single(c) => bounded(self.op_timeout, go(cmd, c)).await,
            Conn::Cluster(c) => bounded(self.op_timeout, go(cmd, c)).await,
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
        let window_ms = window_ms(policy)?;
        let k = format!("{}:rl:{}", self.stem(key), policy.name);
        let (allowed, remaining, retry_us): (i64, i64, i64) = self
            .eval(&self.check, &[k], &[u64::from(policy.max), window_ms])
            .await?;
        Ok(decision(policy, allowed, remaining, retry_us))
    }

    async fn check_many(
        &self,
        policies: &[&LimitPolicy],
        key: &str,
    ) -> Result<Vec<Decision>, StoreError> {
        match policies {
            [] => return Ok(Vec::new()),
            [one] => return Ok(vec![self.check(one, key).await?]),
            _ => {}
        }
        let stem = self.stem(key);
        let mut keys = Vec::with_capacity(policies.len());
        let mut args = Vec::with_capacity(2 * policies.len());
        for p in policies {
            args.push(u64::from(p.max));
            args.push(window_ms(p)?);
            keys.push(format!("{stem}:rl:{}", p.name));
        }
        let flat: Vec<i64> = self.eval(&self.check_many, &keys, &args).await?;
        if flat.is_empty() || !flat.len().is_multiple_of(3) || flat.len() / 3 > policies.len() {
            return Err(StoreError::Backend(format!(
                "the check script answered {} values for {} policies",
                flat.len(),
                policies.len()
            )));
        }
        Ok(flat
            .chunks_exact(3)
            .zip(policies)
            .map(|(c, p)| decision(p, c[0], c[1], c[2]))
            .collect())
    }

    async fn clear(&self, policy: &LimitPolicy, key: &str) -> Result<(), StoreError> {
        let k = format!("{}:rl:{}", self.stem(key), policy.name);
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
        let stem = self.stem(identity);
        let mut cmd = redis::cmd("MGET");
        for w in windows {
            cmd.arg(format!("{stem}:n:{w}"));
        }
        let vals: Vec<Option<u32>> = self.query(&cmd).await?;
        if vals.len() != windows.len() {
            return Err(StoreError::Backend(format!(
                "MGET answered {} values for {} keys",
                vals.len(),
                windows.len()
            )));
        }
        Ok(vals.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn advance(
        &self,
        identity: &str,
        window: u64,
        from: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let k = format!("{}:n:{window}", self.stem(identity));
        let won: i64 = self
            .eval(&self.advance, &[k], &[u64::from(from), millis(ttl).max(1)])
            .await?;
        Ok(won == 1)
    }

    async fn record_failure(
        &self,
        identity: &str,
        current_window: u64,
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<FailureOutcome, StoreError> {
        let stem = self.stem(identity);
        let mut keys = Vec::with_capacity(windows.len() + 1);
        keys.push(format!("{stem}:f:{current_window}"));
        keys.extend(windows.iter().map(|w| format!("{stem}:n:{w}")));
        let (failures, exhausted): (i64, i64) = self
            .eval(
                &self.failure,
                &keys,
                &[u64::from(max_attempts.max(1)), millis(ttl).max(1)],
            )
            .await?;
        Ok(failure_outcome(failures, exhausted))
    }

    async fn record_failures(
        &self,
        identity: &str,
        issued: &[u64],
        windows: &[u64],
        max_attempts: u32,
        ttl: Duration,
    ) -> Result<Vec<FailureOutcome>, StoreError> {
        match issued {
            [] => return Ok(Vec::new()),
            [one] => {
                return Ok(vec![
                    self.record_failure(identity, *one, windows, max_attempts, ttl)
                        .await?,
                ])
            }
            _ => {}
        }
        let stem = self.stem(identity);
        let mut keys = Vec::with_capacity(issued.len() + windows.len());
        keys.extend(issued.iter().map(|w| format!("{stem}:f:{w}")));
        keys.extend(windows.iter().map(|w| format!("{stem}:n:{w}")));
        let flat: Vec<i64> = self
            .eval(
                &self.failures,
                &keys,
                &[
                    u64::from(max_attempts.max(1)),
                    millis(ttl).max(1),
                    issued.len() as u64,
                ],
            )
            .await?;
        if flat.len() != 2 * issued.len() {
            return Err(StoreError::Backend(format!(
                "the failure script answered {} values for {} windows",
                flat.len(),
                issued.len()
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
    async fn ping(&self) -> Result<(), StoreError> {
        // Cluster: routed to every node, so readiness means all are up.
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn check_many_then_counters(
        &self,
        policies: &[&LimitPolicy],
        identity: &str,
        windows: &[u64],
    ) -> Result<(Vec<Decision>, Option<Vec<u32>>), StoreError> {
        let stem = self.stem(identity);
        let mut keys = Vec::with_capacity(policies.len() + windows.len());
        let mut args = Vec::with_capacity(1 + 2 * policies.len());
        args.push(policies.len() as u64);
        for p in policies {
            args.push(u64::from(p.max));
            args.push(window_ms(p)?);
            keys.push(format!("{stem}:rl:{}", p.name));
        }
        keys.extend(windows.iter().map(|w| format!("{stem}:n:{w}")));
        let flat: Vec<i64> = self.eval(&self.check_then_counters, &keys, &args).await?;
        let bad = || {
            StoreError::Backend(format!(
                "the check-and-counters script answered {} values for {} policies and {} windows",
                flat.len(),
                policies.len(),
                windows.len()
            ))
        };
        let mut decisions = Vec::with_capacity(policies.len());
        let mut rest = flat.as_slice();
        for p in policies {
            let [allowed, remaining, retry_us, tail @ ..] = rest else {
                return Err(bad());
            };
            rest = tail;
            let d = decision(p, *allowed, *remaining, *retry_us);
            decisions.push(d);
            if !d.allowed {
                return if rest.is_empty() {
                    Ok((decisions, None))
                } else {
                    Err(bad())
                };
            }
        }
        if rest.len() != windows.len() {
            return Err(bad());
        }
        let counters = rest
            .iter()
            .map(|&v| {
                u32::try_from(v).map_err(|_| {
                    StoreError::Backend("a use counter holds a value that is not a count".into())
                })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        Ok((decisions, Some(counters)))
    }

    async fn advance_then_clear(
        &self,
        identity: &str,
        window: u64,
        from: u32,
        ttl: Duration,
        policy: &LimitPolicy,
    ) -> Result<bool, StoreError> {
        let stem = self.stem(identity);
        let keys = [
            format!("{stem}:n:{window}"),
            format!("{stem}:rl:{}", policy.name),
        ];
        let won: i64 = self
            .eval(
                &self.advance_then_clear,
                &keys,
                &[u64::from(from), millis(ttl).max(1)],
            )
            .await?;
        Ok(won == 1)
    }

    fn backend_name(&self) -> &'static str {
        "redis"
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
    fn debug_redacts_passwords() {
        let c = RedisConfig::new(vec!["redis://user:hunter2@db:6379".into()], &b"k"[..]);
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("***@db:6379"), "{s}");
    }
}
