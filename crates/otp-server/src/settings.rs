//! Configuration: raw values layered from defaults < TOML file < environment
//! < CLI flags (the `config` crate), then validated into the typed
//! configurations of the library crates. Any invalid value stops start-up
//! with one line naming the variable and what it accepts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use ipnet::IpNet;
use otp_core::engine::{HashAlgorithm, OtpPolicy};
use otp_core::keys::{decode_base64_key, generate_key, parse_otp_key, OtpKeyRing};
use otp_core::token::{
    generate_ed25519_pkcs8, generate_hs256_secret, Algorithm, SigningKey, TokenConfig, TokenKeys,
    VerifyingKey,
};
use otp_core::Digits;
use otp_delivery::{
    BackendKind, DeliveryConfig, RetryPolicy, SmtpConfig, SmtpTls, TwilioConfig, WebhookConfig,
};
use otp_http::HttpConfig;
use otp_ratelimit::{HashKey, LimitPolicy, Limits, StoreConfig};
use otp_service::{FailMode, ServiceConfig};

use crate::vars::{self, VARS};

/// A configuration error: one line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct SettingError {
    /// The variable at fault.
    pub variable: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

fn err(variable: &str, reason: impl Into<String>) -> SettingError {
    SettingError {
        variable: variable.to_owned(),
        reason: reason.into(),
    }
}

/// Raw settings: the effective text value of every known variable.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, String>,
    /// Where each value came from (`default`, `file`, `env`, `flag`).
    sources: BTreeMap<&'static str, &'static str>,
}

impl RawSettings {
    /// Layers the sources. `file` is the optional TOML file (keys are the
    /// variable names, upper or lower case); `env` is the process environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, SettingError> {
        let mut raw = RawSettings::default();
        for v in VARS {
            if let Some(d) = v.default {
                raw.values.insert(v.name, d.to_owned());
                raw.sources.insert(v.name, "default");
            }
        }
        if let Some(path) = file {
            let cfg = config::Config::builder()
                .add_source(config::File::from(path).format(config::FileFormat::Toml))
                .build()
                .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
            let table: BTreeMap<String, config::Value> = cfg
                .try_deserialize()
                .map_err(|e| err("--config", format!("{}: {e}", path.display())))?;
            for (key, value) in table {
                let name = canonical(&key).ok_or_else(|| {
                    err(
                        "--config",
                        format!("unknown setting '{key}' in {}", path.display()),
                    )
                })?;
                // Lists (TRUSTED_PROXIES, CORS_ORIGINS, previous keys…) may be
                // TOML arrays; they mean the same as the comma-separated form.
                let text = match value.kind {
                    config::ValueKind::Array(items) => items
                        .into_iter()
                        .map(config::Value::into_string)
                        .collect::<Result<Vec<_>, _>>()
                        .map(|v| v.join(",")),
                    _ => value.into_string(),
                }
                .map_err(|e| {
                    err(
                        name,
                        format!(
                            "in {}: expected a string, number, boolean or list of them ({e})",
                            path.display()
                        ),
                    )
                })?;
                raw.set(name, text, "file");
            }
        }
        for (key, value) in env {
            if let Some(name) = canonical(&key) {
                if key.eq_ignore_ascii_case(name) || vars::ALIASES.iter().any(|(a, _)| a == &key) {
                    raw.set(name, value, "env");
                }
            }
        }
        Ok(raw)
    }

    /// Sets a value (CLI flags call this last).
    pub fn set(&mut self, name: &'static str, value: String, source: &'static str) {
        self.values.insert(name, value);
        self.sources.insert(name, source);
    }

    /// The value of `name`; empty strings count as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Every known variable with its effective value (secrets redacted) and
    /// source, for `check-config`.
    pub fn redacted(&self) -> Vec<(&'static str, String, &'static str)> {
        VARS.iter()
            .map(|v| {
                let value = match self.get(v.name) {
                    None => "(unset)".to_owned(),
                    Some(_) if v.secret => "<redacted>".to_owned(),
                    Some(x) => x.to_owned(),
                };
                (
                    v.name,
                    value,
                    self.sources.get(v.name).copied().unwrap_or("-"),
                )
            })
            .collect()
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>, SettingError> {
        match self.get(name) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| err(name, format!("expected {what}, got '{s}'"))),
        }
    }

    fn num<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, SettingError> {
        let what = format!("an integer between {min} and {max}");
        let v = self.parse::<T>(name, &what)?.unwrap_or(default);
        if v < min || v > max {
            return Err(err(name, format!("expected {what}, got {v}")));
        }
        Ok(v)
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, SettingError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(err(name, format!("expected true or false, got '{other}'"))),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn canonical(key: &str) -> Option<&'static str> {
    if let Some((_, to)) = vars::ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(key))
    {
        return vars::find(to).map(|v| v.name);
    }
    vars::find(key).map(|v| v.name)
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Server-level settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address.
    pub bind: SocketAddr,
    /// actix workers.
    pub workers: usize,
    /// Graceful-shutdown bound.
    pub shutdown_timeout: Duration,
    /// Request-head timeout (slowloris guard).
    pub client_request_timeout: Duration,
    /// Keep-alive idle timeout.
    pub keep_alive: Duration,
    /// Connections per worker.
    pub max_connections: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// tracing filter.
    pub rust_log: String,
    /// How long start-up keeps retrying an unreachable Redis.
    pub store_wait: Duration,
}

/// Everything validated, ready to build the service.
pub struct Settings {
    /// Server settings.
    pub server: ServerSettings,
    /// OTP service configuration.
    pub service: ServiceConfig,
    /// Token keys and configuration.
    pub token_keys: TokenKeys,
    /// Token configuration.
    pub token_config: TokenConfig,
    /// Store backend.
    pub store: StoreConfig,
    /// Delivery backend.
    pub delivery: DeliveryConfig,
    /// Delivery retry policy.
    pub retry: RetryPolicy,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Things `--dev` generated or relaxed, for the start-up warning.
    pub dev_notes: Vec<String>,
    /// Valid but risky choices, logged as warnings at start-up.
    pub warnings: Vec<String>,
}

fn limit(
    raw: &RawSettings,
    name: &'static str,
    max_var: &str,
    window_var: Option<&str>,
    default: LimitPolicy,
) -> Result<LimitPolicy, SettingError> {
    let max = raw.num(max_var, default.max, 1u32, 10_000_000)?;
    let window = match window_var {
        Some(w) => raw.num(w, default.window.as_secs(), 1u64, 31_536_000)?,
        None => default.window.as_secs(),
    };
    Ok(LimitPolicy::per_secs(name, max, window))
}

fn b64_any(value: &str) -> Option<Vec<u8>> {
    decode_base64_key(value).ok().map(|s| s.expose().to_vec())
}

/// Parses an Ed25519 PKCS#8 key given as PEM or base64 DER.
fn ed25519_der(name: &str, value: &str) -> Result<Vec<u8>, SettingError> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") {
        let body: String = value
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        return base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| err(name, format!("PEM body is not base64: {e}")));
    }
    b64_any(value).ok_or_else(|| err(name, "expected PKCS#8 as PEM or base64 DER"))
}

impl Settings {
    /// Validates `raw`. `dev` generates missing secrets (with notes for the
    /// warning) and relaxes the production key-length rules.
    pub fn from_raw(raw: &RawSettings, dev: bool) -> Result<Settings, SettingError> {
        let mut dev_notes = Vec::new();
        let mut warnings = Vec::new();

        // --- server
        let bind: SocketAddr = raw
            .parse("BIND_ADDRESS", "an address like 127.0.0.1:8000")?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let server = ServerSettings {
            bind,
            workers: raw.num("WORKERS", cores, 1, 1024)?,
            shutdown_timeout: Duration::from_secs(raw.num(
                "SHUTDOWN_TIMEOUT_SECONDS",
                10,
                0,
                3600,
            )?),
            client_request_timeout: Duration::from_millis(raw.num(
                "CLIENT_REQUEST_TIMEOUT_MS",
                5000,
                100,
                600_000,
            )?),
            keep_alive: Duration::from_secs(raw.num("KEEP_ALIVE_SECONDS", 15, 0, 3600)?),
            max_connections: raw.num("MAX_CONNECTIONS", 25_000, 1, 1_000_000)?,
            log_format: match raw
                .get("LOG_FORMAT")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("pretty") => LogFormat::Pretty,
                Some("json") => LogFormat::Json,
                Some(o) => {
                    return Err(err(
                        "LOG_FORMAT",
                        format!("expected pretty or json, got '{o}'"),
                    ))
                }
            },
            rust_log: {
                let filter = raw.get("RUST_LOG").unwrap_or("info");
                tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
                    err(
                        "RUST_LOG",
                        format!(
                            "expected a tracing filter like info or info,otp_service=debug ({e})"
                        ),
                    )
                })?;
                filter.to_owned()
            },
            store_wait: Duration::from_secs(raw.num(
                "REDIS_STARTUP_WAIT_SECONDS",
                30u64,
                0,
                3600,
            )?),
        };
        if dev && !bind.ip().is_loopback() {
            dev_notes.push(format!(
                "listening on {bind}, reachable from other machines, with development settings"
            ));
        }

        // --- OTP engine and keys
        let algorithm = match raw.get("OTP_ALGORITHM") {
            None => HashAlgorithm::Sha256,
            Some(s) => HashAlgorithm::parse(s).ok_or_else(|| {
                err(
                    "OTP_ALGORITHM",
                    format!("expected sha1, sha256 or sha512, got '{s}'"),
                )
            })?,
        };
        let digits = raw.num("OTP_DIGITS", 6u8, 4, 10)?;
        let window = raw.num("OTP_WINDOW_SECONDS", 300u64, 30, 86_400)?;
        let drift = raw.num("OTP_DRIFT_TOLERANCE", 1u32, 0, 10)?;
        let skew = raw.num(
            "OTP_CLOCK_SKEW_SECONDS",
            30u64.min(window - 1),
            0,
            window - 1,
        )?;
        let digits = Digits::try_from(digits).map_err(|e| err("OTP_DIGITS", e.to_string()))?;
        let policy = OtpPolicy::builder()
            .digits(digits)
            .window_seconds(window)
            .algorithm(algorithm)
            .drift_tolerance(drift)
            .clock_skew_seconds(skew)
            .build()
            .map_err(|e| err("OTP_WINDOW_SECONDS", e.to_string()))?;

        let keys = match raw.get("OTP_SECRET_KEY") {
            Some(k) => {
                // Each variable is checked on its own so the error names the
                // one at fault (and never echoes a key).
                let current = parse_otp_key(k).map_err(|e| {
                    err(
                        "OTP_SECRET_KEY",
                        format!("{e} (expected base64 of at least 16 random bytes; create one with `otp-server keygen otp`)"),
                    )
                })?;
                let previous = raw
                    .list("OTP_PREVIOUS_SECRET_KEYS")
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        parse_otp_key(p).map_err(|e| {
                            err(
                                "OTP_PREVIOUS_SECRET_KEYS",
                                format!("entry {}: {e} (expected comma-separated base64 keys of at least 16 bytes)", i + 1),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                OtpKeyRing::new(current, previous)
                    .map_err(|e| err("OTP_PREVIOUS_SECRET_KEYS", e.to_string()))?
            }
            None if dev => {
                dev_notes.push("OTP_SECRET_KEY generated for this process only: what it signs dies with the process".into());
                OtpKeyRing::new(
                    generate_key(32).map_err(|e| err("OTP_SECRET_KEY", e.to_string()))?,
                    vec![],
                )
                .map_err(|e| err("OTP_SECRET_KEY", e.to_string()))?
            }
            None => return Err(missing_secrets(raw)),
        };

        // --- tokens
        let token_config = TokenConfig {
            issuer: raw
                .get("TOKEN_ISSUER")
                .unwrap_or("stateless-otp")
                .to_owned(),
            audience: raw.get("TOKEN_AUDIENCE").unwrap_or("api").to_owned(),
            ttl_seconds: raw.num("ACCESS_TOKEN_TTL", 900u64, 1, 31_536_000)?,
            leeway_seconds: raw.num("TOKEN_LEEWAY_SECONDS", 0u64, 0, 3600)?,
        };
        let token_keys = match raw
            .get("JWT_ALGORITHM")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("hs256") => {
                let current = match raw.get("JWT_SECRET") {
                    Some(s) if dev => SigningKey::hs256_insecure(s),
                    Some(s) => SigningKey::hs256(s),
                    None if dev => {
                        dev_notes.push("JWT_SECRET generated for this process only: what it signs dies with the process".into());
                        let s = generate_hs256_secret()
                            .map_err(|e| err("JWT_SECRET", e.to_string()))?;
                        SigningKey::hs256(s.as_bytes())
                    }
                    None => return Err(missing_secrets(raw)),
                }
                .map_err(|e| err("JWT_SECRET", e.to_string()))?;
                let previous = raw
                    .list("JWT_PREVIOUS_SECRETS")
                    .iter()
                    .map(|s| {
                        if dev {
                            VerifyingKey::hs256_insecure(s)
                        } else {
                            VerifyingKey::hs256(s)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err("JWT_PREVIOUS_SECRETS", e.to_string()))?;
                TokenKeys::new(current, previous)
                    .map_err(|e| err("JWT_PREVIOUS_SECRETS", e.to_string()))?
            }
            Some("eddsa" | "ed25519") => {
                let current = match raw.get("JWT_ED25519_PRIVATE_KEY") {
                    Some(k) => SigningKey::ed25519_from_pkcs8(ed25519_der("JWT_ED25519_PRIVATE_KEY", k)?),
                    None if dev => {
                        dev_notes.push("JWT_ED25519_PRIVATE_KEY generated for this process only: what it signs dies with the process".into());
                        let der = generate_ed25519_pkcs8().map_err(|e| err("JWT_ED25519_PRIVATE_KEY", e.to_string()))?;
                        SigningKey::ed25519_from_pkcs8(der.expose())
                    }
                    None => {
                        return Err(err(
                            "JWT_ED25519_PRIVATE_KEY",
                            "must be set with JWT_ALGORITHM=EdDSA (create one with `otp-server keygen ed25519`)",
                        ))
                    }
                }
                .map_err(|e| err("JWT_ED25519_PRIVATE_KEY", e.to_string()))?;
                let previous = raw
                    .list("JWT_ED25519_PREVIOUS_KEYS")
                    .iter()
                    .map(|k| {
                        let bytes = ed25519_der("JWT_ED25519_PREVIOUS_KEYS", k)?;
                        if bytes.len() == 32 {
                            VerifyingKey::ed25519_from_public(&bytes)
                        } else {
                            VerifyingKey::ed25519_from_pkcs8(&bytes)
                        }
                        .map_err(|e| err("JWT_ED25519_PREVIOUS_KEYS", e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                TokenKeys::new(current, previous)
                    .map_err(|e| err("JWT_ED25519_PREVIOUS_KEYS", e.to_string()))?
            }
            Some(o) => {
                return Err(err(
                    "JWT_ALGORITHM",
                    format!("expected HS256 or EdDSA, got '{o}'"),
                ))
            }
        };
        let _: Algorithm = token_keys.algorithm();

        // --- limits
        let d = Limits::default();
        let limits = Limits {
            request_per_identity: limit(
                raw,
                d.request_per_identity.name,
                "RATE_REQUEST_OTP_MAX",
                Some("RATE_REQUEST_OTP_WINDOW"),
                d.request_per_identity,
            )?,
            verify_per_identity: limit(
                raw,
                d.verify_per_identity.name,
                "RATE_VERIFY_OTP_MAX",
                Some("RATE_VERIFY_OTP_WINDOW"),
                d.verify_per_identity,
            )?,
            verify_daily: limit(
                raw,
                d.verify_daily.name,
                "RATE_VERIFY_OTP_DAILY_MAX",
                None,
                d.verify_daily,
            )?,
            request_per_ip: limit(
                raw,
                d.request_per_ip.name,
                "RATE_REQUEST_OTP_PER_IP_MAX",
                Some("RATE_REQUEST_OTP_PER_IP_WINDOW"),
                d.request_per_ip,
            )?,
            verify_per_ip: limit(
                raw,
                d.verify_per_ip.name,
                "RATE_VERIFY_OTP_PER_IP_MAX",
                Some("RATE_VERIFY_OTP_PER_IP_WINDOW"),
                d.verify_per_ip,
            )?,
            global_send: limit(
                raw,
                d.global_send.name,
                "RATE_GLOBAL_SEND_MAX",
                Some("RATE_GLOBAL_SEND_WINDOW"),
                d.global_send,
            )?,
        };
        let fail_mode = match raw
            .get("RATE_LIMIT_FAIL_MODE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("closed") => FailMode::Closed,
            Some("open") => FailMode::Open,
            Some(o) => {
                return Err(err(
                    "RATE_LIMIT_FAIL_MODE",
                    format!("expected closed or open, got '{o}'"),
                ))
            }
        };

        // --- store
        let hash_key = match raw.get("STORE_HASH_KEY") {
            Some(k) => HashKey::new(
                decode_base64_key(k)
                    .map_err(|e| err("STORE_HASH_KEY", e.to_string()))?
                    .expose()
                    .to_vec(),
            ),
            // Derived from the OLDEST key in the ring: adding the current key
            // to OTP_PREVIOUS_SECRET_KEYS during a rotation keeps the store
            // namespace, so use counters and limits survive the rotation (a
            // new namespace would let a code verified just before it verify
            // once more). Removing the previous key later changes it: pin
            // STORE_HASH_KEY before that (docs/operations.md, key rotation).
            None => {
                let oldest = keys.previous().last().unwrap_or(keys.current()).clone();
                if keys.len() > 1 {
                    warnings.push(
                        "STORE_HASH_KEY is not set while OTP_PREVIOUS_SECRET_KEYS is: store keys are \
                         derived from the oldest OTP key, so removing it will reset use counters and \
                         limits. Pin STORE_HASH_KEY before removing it (docs/operations.md)."
                            .to_owned(),
                    );
                }
                HashKey::new(
                    OtpKeyRing::single_unchecked(oldest)
                        .derive_subkey("stateless-otp store key hashing v1")
                        .expose()
                        .to_vec(),
                )
            }
        };
        let store = match raw
            .get("STORE_BACKEND")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("memory") => StoreConfig::Memory {
                hash_key: Some(hash_key),
            },
            Some("redis") => redis_config(raw, hash_key)?,
            Some(o) => {
                return Err(err(
                    "STORE_BACKEND",
                    format!("expected memory or redis, got '{o}'"),
                ))
            }
        };

        let mut service = ServiceConfig::new(policy, keys);
        service.limits = limits;
        service.max_attempts = raw.num("OTP_MAX_ATTEMPTS", 5u32, 0, 1000)?;
        service.single_use = raw.flag("OTP_SINGLE_USE", true)?;
        service.fail_mode = fail_mode;

        // --- delivery
        let (delivery, retry) = delivery_config(raw)?;

        // --- http
        let trusted_proxies = raw
            .list("TRUSTED_PROXIES")
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        err(
                            "TRUSTED_PROXIES",
                            format!("expected CIDRs like 10.0.0.0/8, got '{s}'"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cors_origins = raw.list("CORS_ORIGINS");
        for o in &cors_origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(err(
                    "CORS_ORIGINS",
                    format!("expected origins like https://app.example.com or *, got '{o}'"),
                ));
            }
        }

        Ok(Settings {
            server,
            service,
            token_keys,
            token_config,
            store,
            delivery,
            retry,
            http: HttpConfig {
                trusted_proxies,
                cors_origins,
            },
            dev_notes,
            warnings,
        })
    }
}

fn missing_secrets(raw: &RawSettings) -> SettingError {
    let mut missing = Vec::new();
    if raw.get("OTP_SECRET_KEY").is_none() {
        missing.push("OTP_SECRET_KEY");
    }
    if raw.get("JWT_SECRET").is_none() {
        missing.push("JWT_SECRET");
    }
    err(
        &missing.join(", "),
        "not set: set them (create values with `otp-server keygen otp` and `otp-server keygen jwt`), or run with --dev for ephemeral development secrets",
    )
}

#[cfg(feature = "redis")]
fn redis_config(raw: &RawSettings, hash_key: HashKey) -> Result<StoreConfig, SettingError> {
    use otp_ratelimit::{RedisConfig, RedisTopology};
    let urls = raw.get("REDIS_URL").ok_or_else(|| {
        err(
            "REDIS_URL",
            "must be set with STORE_BACKEND=redis (e.g. redis://127.0.0.1:6379)",
        )
    })?;
    let mut c =
        RedisConfig::from_url_list(urls, hash_key).map_err(|e| err("REDIS_URL", e.to_string()))?;
    c.topology = match raw
        .get("REDIS_CLUSTER")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("auto") => RedisTopology::Auto,
        Some("1" | "true" | "yes") => RedisTopology::Cluster,
        Some("0" | "false" | "no") => RedisTopology::Standalone,
        Some(o) => {
            return Err(err(
                "REDIS_CLUSTER",
                format!("expected auto, true or false, got '{o}'"),
            ))
        }
    };
    if let Some(p) = raw.get("REDIS_KEY_PREFIX") {
        c.key_prefix = p.to_owned();
    }
    let t = Duration::from_millis(raw.num("REDIS_TIMEOUT_MS", 500u64, 10, 60_000)?);
    c.connect_timeout = t;
    c.response_timeout = t;
    Ok(StoreConfig::Redis(c))
}

#[cfg(not(feature = "redis"))]
fn redis_config(_raw: &RawSettings, _hash_key: HashKey) -> Result<StoreConfig, SettingError> {
    Err(err(
        "STORE_BACKEND",
        "redis support is not compiled into this binary (cargo feature `redis`)",
    ))
}

fn delivery_config(raw: &RawSettings) -> Result<(DeliveryConfig, RetryPolicy), SettingError> {
    let de = |e: otp_delivery::ConfigError| err(e.variable, e.reason);
    let backend =
        BackendKind::parse(raw.get("DELIVERY_BACKEND").unwrap_or("console")).map_err(de)?;
    let retry = RetryPolicy {
        timeout: Duration::from_secs(raw.num("DELIVERY_TIMEOUT_SECONDS", 10u64, 1, 300)?),
        max_attempts: raw.num("DELIVERY_MAX_ATTEMPTS", 3u32, 1, 10)?,
        initial_backoff: Duration::from_millis(raw.num(
            "DELIVERY_RETRY_BACKOFF_MS",
            250u64,
            0,
            60_000,
        )?),
        ..RetryPolicy::default()
    };
    let smtp = || -> Result<Option<SmtpConfig>, SettingError> {
        let Some(host) = raw.get("SMTP_HOST") else {
            return Ok(None);
        };
        let d = SmtpConfig::default();
        Ok(Some(SmtpConfig {
            host: host.to_owned(),
            port: raw.num("SMTP_PORT", d.port, 1, 65_535)?,
            username: raw.get("SMTP_USERNAME").map(str::to_owned),
            password: raw.get("SMTP_PASSWORD").map(str::to_owned),
            from: raw
                .get("SMTP_FROM")
                .ok_or_else(|| {
                    err(
                        "SMTP_FROM",
                        "must be set with SMTP delivery (e.g. no-reply@example.com)",
                    )
                })?
                .to_owned(),
            tls: SmtpTls::resolve(raw.get("SMTP_TLS"), raw.get("SMTP_USE_TLS")).map_err(de)?,
            ca_file: raw.get("SMTP_CA_FILE").map(Into::into),
            subject_template: raw
                .get("SMTP_SUBJECT_TEMPLATE")
                .map(str::to_owned)
                .unwrap_or(d.subject_template),
            body_template: raw
                .get("SMTP_BODY_TEMPLATE")
                .map(str::to_owned)
                .unwrap_or(d.body_template),
            html_template: raw
                .get("SMTP_HTML_TEMPLATE")
                .map(str::to_owned)
                .or(d.html_template),
        }))
    };
    let twilio = || -> Result<Option<TwilioConfig>, SettingError> {
        let Some(sid) = raw.get("TWILIO_ACCOUNT_SID") else {
            return Ok(None);
        };
        let d = TwilioConfig::default();
        Ok(Some(TwilioConfig {
            account_sid: sid.to_owned(),
            auth_token: raw
                .get("TWILIO_AUTH_TOKEN")
                .ok_or_else(|| err("TWILIO_AUTH_TOKEN", "must be set with Twilio delivery"))?
                .to_owned(),
            from_number: raw.get("TWILIO_FROM_NUMBER").map(str::to_owned),
            messaging_service_sid: raw.get("TWILIO_MESSAGING_SERVICE_SID").map(str::to_owned),
            api_base: raw
                .get("TWILIO_API_BASE")
                .map(str::to_owned)
                .unwrap_or(d.api_base),
            body_template: raw
                .get("TWILIO_BODY_TEMPLATE")
                .map(str::to_owned)
                .unwrap_or(d.body_template),
        }))
    };
    let webhook = || -> Result<Option<WebhookConfig>, SettingError> {
        let Some(url) = raw.get("WEBHOOK_URL") else {
            return Ok(None);
        };
        Ok(Some(WebhookConfig {
            url: url.to_owned(),
            headers: otp_delivery::parse_webhook_headers(raw.get("WEBHOOK_HEADERS").unwrap_or(""))
                .map_err(de)?,
            secret: raw
                .get("WEBHOOK_SECRET")
                .ok_or_else(|| {
                    err(
                        "WEBHOOK_SECRET",
                        "must be set with webhook delivery (whsec_<base64>)",
                    )
                })?
                .to_owned(),
            template: raw.get("WEBHOOK_TEMPLATE").map(str::to_owned),
        }))
    };
    let need =
        |name: &str, what: &str| err(name, format!("must be set with DELIVERY_BACKEND={what}"));
    let config = match backend {
        BackendKind::Console => DeliveryConfig::Console,
        BackendKind::None => DeliveryConfig::None,
        BackendKind::Smtp => {
            DeliveryConfig::Smtp(smtp()?.ok_or_else(|| need("SMTP_HOST", "smtp"))?)
        }
        BackendKind::Twilio => {
            DeliveryConfig::Twilio(twilio()?.ok_or_else(|| need("TWILIO_ACCOUNT_SID", "twilio"))?)
        }
        BackendKind::Webhook => {
            DeliveryConfig::Webhook(webhook()?.ok_or_else(|| need("WEBHOOK_URL", "webhook"))?)
        }
        BackendKind::Auto => DeliveryConfig::Auto {
            smtp: smtp()?,
            twilio: twilio()?,
            webhook: webhook()?,
        },
        #[allow(unreachable_patterns)]
        other => {
            return Err(err(
                "DELIVERY_BACKEND",
                format!("unsupported backend {other:?}"),
            ))
        }
    };
    Ok((config, retry))
}
