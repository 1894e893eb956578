//! Shared harness of the otp-service integration tests: service builders, a
//! fixed clock instant in the middle of an OTP window, and Redis stores on
//! real `redis-server` processes. The deliveries (`Outbox`, which records
//! the code that was really delivered, and `FailingDelivery`), the fixed
//! keys and the Redis starters come from `otp_testkit`.

use std::sync::Arc;
use std::time::Duration;

use otp_core::OtpKeyRing;
use otp_core::SecretBytes;
use otp_core::{unix_now, OtpPolicy};
use otp_core::{SigningKey, TokenConfig, TokenKeys, TokenService};
use otp_delivery::Delivery;
use otp_ratelimit::{HashKey, LimitPolicy, MemoryStore, RedisConfig, RedisStore, Store};
use otp_service::Limits;
use otp_service::{FailMode, OtpService, ServiceConfig};

pub use otp_testkit::doubles::{FailingDelivery, Outbox};
use otp_testkit::keys::HASH_KEY;
/// The JWT secret of every test service (checked absent from logs) and the
/// OTP key bytes (32 × `Z`).
pub use otp_testkit::keys::{JWT_SECRET, OTP_KEY};

/// The token service every test uses (HS256, default issuer/audience).
pub fn tokens() -> TokenService {
    TokenService::new(
        TokenKeys::single(SigningKey::hs256(JWT_SECRET.as_bytes()).unwrap()),
        TokenConfig::default(),
    )
    .unwrap()
}

/// A configuration with the default policy (6 digits, 300 s, drift 1) and
/// limits large enough never to interfere unless a test lowers them.
pub fn config() -> ServiceConfig {
    let keys = OtpKeyRing::new(SecretBytes::new(OTP_KEY.to_vec()), vec![]).unwrap();
    let mut c = ServiceConfig::new(OtpPolicy::default(), keys);
    c.limits = roomy_limits();
    c
}

/// The default policy names with maxima that no test reaches by accident.
pub fn roomy_limits() -> Limits {
    Limits {
        request_per_identity: LimitPolicy::per_secs("request_identity", 1000, 600),
        verify_per_identity: LimitPolicy::per_secs("verify_identity", 1000, 600),
        verify_daily: LimitPolicy::per_secs("verify_daily", 1000, 86_400),
        request_per_ip: LimitPolicy::per_secs("request_ip", 1000, 600),
        verify_per_ip: LimitPolicy::per_secs("verify_ip", 1000, 600),
        global_send: LimitPolicy::per_secs("global_send", 1000, 3600),
    }
}

/// A service over `store` delivering into `outbox`.
pub fn service_with(
    config: ServiceConfig,
    store: Arc<dyn Store>,
    outbox: Arc<dyn Delivery>,
) -> OtpService {
    OtpService::builder(config, tokens())
        .store(store)
        .delivery(outbox)
        .build()
}

/// A service over a fresh memory store delivering into `outbox`.
pub fn memory_service(config: ServiceConfig, outbox: Arc<dyn Delivery>) -> OtpService {
    service_with(config, Arc::new(MemoryStore::default()), outbox)
}

/// An instant in the middle of the previous 300 s window: never in the
/// future (tokens issued at it verify now), 150 s from any window edge (the
/// candidate windows are exactly the previous two), so tests that count per
/// window cannot straddle a boundary.
pub fn mid_window_now() -> u64 {
    (unix_now() / 300) * 300 - 150
}

/// A Redis store on `urls` (one URL: standalone; several: Cluster), under a
/// key prefix unique to this call (so a shared `REDIS_URL` is safe).
pub async fn redis_store(urls: Vec<String>) -> RedisStore {
    let mut c = RedisConfig::new(urls, HashKey::new(HASH_KEY.to_vec()));
    c.key_prefix = unique_prefix();
    RedisStore::connect(c)
        .await
        .expect("connect to the test Redis")
}

/// A Redis store with short timeouts (outage tests).
pub async fn redis_store_fast(url: String) -> RedisStore {
    let mut c = RedisConfig::new(vec![url], HashKey::new(HASH_KEY.to_vec()));
    c.key_prefix = unique_prefix();
    c.connect_timeout = Duration::from_millis(300);
    c.response_timeout = Duration::from_millis(300);
    RedisStore::connect(c)
        .await
        .expect("connect to the test Redis")
}

fn unique_prefix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "otp-svc-test-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// `config()` with the given fail mode.
pub fn config_with_fail_mode(mode: FailMode) -> ServiceConfig {
    let mut c = config();
    c.fail_mode = mode;
    c
}

/// A wrong code of the same length as `code`: every digit changed.
pub fn wrong_code(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}
