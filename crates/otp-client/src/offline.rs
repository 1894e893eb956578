//! [`OfflineVerifier`]: verifies the server's EdDSA access tokens locally,
//! with the public keys of its JWKS (`/.well-known/jwks.json`), so that a
//! resource server needs no round trip per request.
//!
//! Keys are fetched on first use and cached. The set is fetched again when a
//! token names a key id the cache does not know (key rotation) — at most
//! once per [`OfflineVerifier::min_refetch_interval`], so a flood of tokens
//! with made-up `kid`s cannot turn into a flood of JWKS requests — and when
//! the cache is older than [`OfflineVerifier::max_age`] (retired keys
//! disappear). If such a refresh fails, the cached keys stay in use. While
//! no keys could be fetched yet, a failed fetch is retried at most once per
//! `min_refetch_interval` too: until then verification fails fast with
//! [`Error::JwksUnavailable`] instead of asking the server again.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use otp_core::{dangerous, Claims, JwksVerifier, TokenConfig};

use crate::client::OtpClient;
use crate::error::Error;

/// Default [`OfflineVerifier::min_refetch_interval`]: 30 s.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default [`OfflineVerifier::max_age`]: 1 hour.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// Verifies access tokens offline against a server's JWKS. Create it with
/// [`OtpClient::offline_verifier`]; cheap to clone (clones share the key
/// cache).
///
/// Keys are fetched on first use and cached. They are fetched again when a
/// token names a key id the cache does not know (key rotation) — at most
/// once per [`OfflineVerifier::min_refetch_interval`], so tokens with
/// made-up `kid`s cannot cause a flood of JWKS requests — and when the
/// cache is older than [`OfflineVerifier::max_age`]. If such a refresh
/// fails, the cached keys stay in use for the key ids they know.
///
/// The checks are those of the server ([`JwksVerifier`]): EdDSA only,
/// signature first, then `iss`, `aud`, `exp`, `nbf`, `iat`.
#[derive(Debug, Clone)]
pub struct OfflineVerifier {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    client: OtpClient,
    config: TokenConfig,
    min_refetch_interval: Duration,
    max_age: Duration,
    cache: RwLock<Cache>,
    /// Serializes fetches: concurrent misses make one request.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Cache {
    verifier: Option<Arc<JwksVerifier>>,
    /// When the keys in `verifier` were fetched.
    fetched_at: Option<Instant>,
    /// When a fetch was last tried (successful or not).
    attempted_at: Option<Instant>,
    /// Successful fetches so far.
    fetches: u64,
    /// Why the last fetch failed, while it is the latest attempt.
    last_failure: Option<String>,
}

/// What [`OfflineVerifier::cached`] decided.
enum Lookup {
    /// Use these keys.
    Use(Arc<JwksVerifier>),
    /// Fetch the JWKS now.
    Fetch,
    /// No keys, and the last fetch failed too recently to try again.
    Wait(Error),
}

impl OfflineVerifier {
    /// A verifier for `client`'s server; `config` holds the expected issuer,
    /// audience and leeway (`ttl_seconds` is unused).
    pub fn new(client: OtpClient, config: TokenConfig) -> Self {
        Self::with_intervals(
            client,
            config,
            DEFAULT_MIN_REFETCH_INTERVAL,
            DEFAULT_MAX_AGE,
        )
    }

    /// [`OfflineVerifier::new`] with a minimum interval between two fetches
    /// triggered by unknown key ids, and a maximum age of the cached keys.
    pub fn with_intervals(
        client: OtpClient,
        config: TokenConfig,
        min_refetch_interval: Duration,
        max_age: Duration,
    ) -> Self {
        OfflineVerifier {
            shared: Arc::new(Shared {
                client,
                config,
                min_refetch_interval,
                max_age,
                cache: RwLock::new(Cache::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Least time between two JWKS fetches: for unknown key ids, for an
    /// expired cache, and for retrying a failed fetch while no keys are
    /// cached.
    /// Defaults to [`DEFAULT_MIN_REFETCH_INTERVAL`].
    pub fn min_refetch_interval(&self) -> Duration {
        self.shared.min_refetch_interval
    }

    /// Age after which cached keys are refreshed. Defaults to
    /// [`DEFAULT_MAX_AGE`].
    pub fn max_age(&self) -> Duration {
        self.shared.max_age
    }

    /// How many times the JWKS has been fetched successfully.
    pub fn fetch_count(&self) -> u64 {
        self.read().fetches
    }

    /// Verifies `token` now (system clock). Fails with [`Error::Token`]
    /// (which check failed; `is_expired()` for an expired token),
    /// [`Error::Jwks`] when the server publishes no Ed25519 key (HS256), or
    /// the fetch's error when the keys cannot be loaded. Until keys have been
    /// fetched once, a failed fetch is retried at most once per
    /// [`OfflineVerifier::min_refetch_interval`]; calls in between fail with
    /// [`Error::JwksUnavailable`] without a request.
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.verify_at(token, now).await
    }

    /// [`OfflineVerifier::verify`] at `now_unix` (seconds since the epoch).
    pub async fn verify_at(&self, token: &str, now_unix: u64) -> Result<Claims, Error> {
        // The header is read unverified only to pick keys; the signature and
        // every claim are checked by `JwksVerifier::verify`.
        let kid = dangerous::decode_header(token).map_err(Error::Token)?.kid;
        let verifier = self.keys_for(kid.as_deref()).await?;
        verifier.verify(token, now_unix).map_err(Error::Token)
    }

    /// Forgets the cached keys: the next verification fetches them.
    pub fn invalidate(&self) {
        let mut cache = self.shared.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.verifier = None;
        cache.fetched_at = None;
        cache.attempted_at = None;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.shared.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the cached keys may be used for a token naming `kid`, a fetch
    /// is due, or (no keys, a recent failed fetch) the caller must wait.
    /// Every fetch, successful or not, is at least `min_refetch_interval`
    /// after the previous attempt (the first one, and the first after
    /// [`OfflineVerifier::invalidate`], are immediate).
    fn cached(&self, kid: Option<&str>) -> Lookup {
        let cache = self.read();
        let since_attempt = cache.attempted_at.map(|t| t.elapsed());
        let may_fetch = since_attempt.is_none_or(|e| e >= self.shared.min_refetch_interval);
        let Some(verifier) = cache.verifier.clone() else {
            if may_fetch {
                return Lookup::Fetch;
            }
            return Lookup::Wait(Error::JwksUnavailable {
                retry_after: self
                    .shared
                    .min_refetch_interval
                    .saturating_sub(since_attempt.unwrap_or_default()),
                cause: cache.last_failure.clone().unwrap_or_default(),
            });
        };
        let stale = cache
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.shared.max_age);
        let unknown = kid.is_some_and(|k| !verifier.has_kid(k));
        if (stale || unknown) && may_fetch {
            Lookup::Fetch
        } else {
            Lookup::Use(verifier)
        }
    }

    async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<JwksVerifier>, Error> {
        match self.cached(kid) {
            Lookup::Use(verifier) => return Ok(verifier),
            Lookup::Wait(err) => return Err(err),
            Lookup::Fetch => {}
        }
        let _fetching = self.shared.fetching.lock().await;
        // Another task may have fetched (or failed to) while this one waited.
        match self.cached(kid) {
            Lookup::Use(verifier) => return Ok(verifier),
            Lookup::Wait(err) => return Err(err),
            Lookup::Fetch => {}
        }
        let fetched = self.shared.client.jwks().await.and_then(|jwks| {
            JwksVerifier::new(&jwks, self.shared.config.clone()).map_err(Error::Jwks)
        });
        let mut cache = self.shared.cache.write().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        cache.attempted_at = Some(now);
        match fetched {
            Ok(verifier) => {
                let verifier = Arc::new(verifier);
                cache.verifier = Some(verifier.clone());
                cache.fetched_at = Some(now);
                cache.fetches += 1;
                cache.last_failure = None;
                Ok(verifier)
            }
            // A failed refresh keeps the keys we have when they can serve
            // this token; an unknown kid reports why the refresh failed.
            Err(err) => {
                cache.last_failure = Some(err.to_string());
                match &cache.verifier {
                    Some(v) if kid.is_none_or(|k| v.has_kid(k)) => Ok(v.clone()),
                    _ => Err(err),
                }
            }
        }
    }
}
