//! The store concern: memory or Redis, and the key that hashes identities
//! in store keys.

use otp_core::{parse_otp_key, OtpKeyRing};
use otp_ratelimit::{HashKey, StoreConfig};

use super::{err, Notes, RawSettings, SettingError};
#[cfg(feature = "redis")]
use crate::vars::{self, Concern};

/// Reads the store concern; `keys` gives the default hash key.
pub fn build(
    raw: &RawSettings,
    keys: &OtpKeyRing,
    notes: &mut Notes,
) -> Result<StoreConfig, SettingError> {
    let hash_key = hash_key(raw, keys, notes)?;
    match raw
        .get("STORE_BACKEND")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("memory") => Ok(StoreConfig::Memory {
            hash_key: Some(hash_key),
            max_keys: raw.num("STORE_MEMORY_MAX_KEYS")?,
        }),
        Some("redis") => redis(raw, hash_key),
        Some(o) => Err(err(
            "STORE_BACKEND",
            format!("expected memory or redis, got '{o}'"),
        )),
    }
}

fn hash_key(
    raw: &RawSettings,
    keys: &OtpKeyRing,
    notes: &mut Notes,
) -> Result<HashKey, SettingError> {
    if let Some(k) = raw.get("STORE_HASH_KEY") {
        // As strong as an OTP key: at least MIN_OTP_KEY_BYTES.
        let key = parse_otp_key(k).map_err(|e| {
            err(
                "STORE_HASH_KEY",
                format!("{e} (expected base64 of at least 16 random bytes; create one with `otp-server keygen otp`)"),
            )
        })?;
        return Ok(HashKey::new(key.expose().to_vec()));
    }
    // Derived from the OLDEST key in the ring: adding the current key to
    // OTP_PREVIOUS_SECRET_KEYS during a rotation keeps the store namespace,
    // so use counters and limits survive the rotation (a new namespace would
    // let a code verified just before it verify once more). Removing the
    // previous key later changes it: pin STORE_HASH_KEY before that
    // (docs/operations.md, key rotation).
    let oldest = keys.previous().last().unwrap_or(keys.current()).clone();
    if keys.len() > 1 {
        notes.warnings.push(
            "STORE_HASH_KEY is not set while OTP_PREVIOUS_SECRET_KEYS is: store keys are \
             derived from the oldest OTP key, so removing it will reset use counters and \
             limits. Pin STORE_HASH_KEY before removing it (docs/operations.md)."
                .to_owned(),
        );
    }
    Ok(HashKey::new(
        OtpKeyRing::single_unchecked(oldest)
            .derive_subkey("stateless-otp store key hashing v1")
            .expose()
            .to_vec(),
    ))
}

#[cfg(feature = "redis")]
fn redis(raw: &RawSettings, hash_key: HashKey) -> Result<StoreConfig, SettingError> {
    use otp_ratelimit::{RedisConfig, RedisTopology};
    let urls = raw.get("REDIS_URL").ok_or_else(|| {
        err(
            "REDIS_URL",
            "must be set with STORE_BACKEND=redis (e.g. redis://127.0.0.1:6379)",
        )
    })?;
    let mut c = RedisConfig::from_url_list(urls, hash_key).map_err(|e| {
        err(
            "REDIS_URL",
            vars::fields_to_variables(&e.to_string(), Concern::Store),
        )
    })?;
    c.topology = match raw
        .get("REDIS_CLUSTER")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("auto") => RedisTopology::Auto,
        Some(v) => match super::raw::parse_bool(v) {
            Some(true) => RedisTopology::Cluster,
            Some(false) => RedisTopology::Standalone,
            None => {
                return Err(err(
                    "REDIS_CLUSTER",
                    format!("expected auto, true or false, got '{v}'"),
                ))
            }
        },
    };
    if let Some(p) = raw.get("REDIS_KEY_PREFIX") {
        c.key_prefix = p.to_owned();
    }
    let t = std::time::Duration::from_millis(raw.num("REDIS_TIMEOUT_MS")?);
    c.connect_timeout = t;
    c.response_timeout = t;
    Ok(StoreConfig::Redis(c))
}

#[cfg(not(feature = "redis"))]
fn redis(_raw: &RawSettings, _hash_key: HashKey) -> Result<StoreConfig, SettingError> {
    Err(err(
        "STORE_BACKEND",
        "redis support is not compiled into this binary (cargo feature `redis`)",
    ))
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::super::{RawSettings, Settings};

    const OTP_KEY: &str = "c3RhdGVsZXNzLW90cCB0ZXN0IGtleSAzMiBieXRlcyE";
    const JWT: &str = "stateless-otp-test-jwt-secret-of-32-bytes-at-least";

    fn store_error(redis_url: &str) -> String {
        let env = [
            ("OTP_SECRET_KEY", OTP_KEY),
            ("JWT_SECRET", JWT),
            ("STORE_BACKEND", "redis"),
            ("REDIS_URL", redis_url),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let raw = RawSettings::load(None, env.into_iter()).unwrap();
        match Settings::from_raw(&raw, true) {
            Ok(_) => panic!("REDIS_URL={redis_url:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// otp-ratelimit names its field (`store.redis.urls`); the binary's
    /// line names the variable, as it always did.
    #[test]
    fn a_redis_url_list_without_a_url_is_one_line_about_redis_url() {
        assert_eq!(
            store_error(" , "),
            "REDIS_URL: invalid store configuration: REDIS_URL lists no URL"
        );
        assert_eq!(
            store_error("http://x"),
            "REDIS_URL: invalid store configuration: invalid Redis URL \"http://x\""
        );
    }
}
