//! Configuration: raw values layered from defaults < TOML file < environment
//! < CLI flags ([`RawSettings`]), then validated into the typed
//! configurations of the library crates by one builder per concern:
//! [`server`], [`http`], [`policy`], [`keys`], [`tokens`], [`limits`],
//! [`sessions`], [`store`], [`delivery`] and [`gate`]. Defaults and ranges come from the variable
//! table ([`crate::vars`]), which takes them from the libraries. Any
//! invalid value stops start-up with one line naming the variable and what
//! it accepts.

pub mod audit;
pub mod delivery;
pub mod gate;
pub mod http;
pub mod keys;
pub mod limits;
pub mod policy;
pub mod raw;
pub mod server;
pub mod sessions;
pub mod store;
pub mod tokens;

use otp_core::{TokenConfig, TokenKeys};
use otp_delivery::{DeliveryConfig, DeliveryRetryPolicy};
use otp_http::gate::GateConfig;
use otp_http::HttpConfig;
use otp_ratelimit::StoreConfig;
use otp_service::ServiceConfig;

pub use raw::RawSettings;
pub use server::{LogFormat, ServerSettings};

/// A configuration error: one line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct SettingError {
    /// The variable at fault.
    pub variable: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

pub(crate) fn err(variable: &str, reason: impl Into<String>) -> SettingError {
    SettingError {
        variable: variable.to_owned(),
        reason: reason.into(),
    }
}

/// What the builders note besides their result.
#[derive(Debug, Default)]
pub struct Notes {
    /// Things `--dev` generated or relaxed, for the start-up warning.
    pub dev: Vec<String>,
    /// Valid but risky choices, logged as warnings at start-up.
    pub warnings: Vec<String>,
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
    pub retry: DeliveryRetryPolicy,
    /// HTTP settings.
    pub http: HttpConfig,
    /// The web gate; `None` with `GATE=off`.
    pub gate: Option<GateConfig>,
    /// The signed audit webhook, when `AUDIT_WEBHOOK_URL` is set.
    pub audit_webhook: Option<audit::AuditWebhookSettings>,
    /// Things `--dev` generated or relaxed, for the start-up warning.
    pub dev_notes: Vec<String>,
    /// Valid but risky choices, logged as warnings at start-up.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Validates `raw`. `dev` generates missing secrets (with notes for the
    /// warning) and relaxes the production key-length rules.
    pub fn from_raw(raw: &RawSettings, dev: bool) -> Result<Settings, SettingError> {
        let mut notes = Notes::default();
        let server = server::build(raw)?;
        if dev && !server.bind.ip().is_loopback() {
            notes.dev.push(format!(
                "listening on {}, reachable from other machines, with development settings",
                server.bind
            ));
        }
        let policy = policy::build(raw)?;
        if !policy.single_use {
            notes
                .warnings
                .push(policy::SINGLE_USE_OFF_WARNING.to_owned());
        }
        let keys = keys::build(raw, dev, &mut notes)?;
        let tokens = tokens::build(raw, dev, &mut notes)?;
        let (limits, fail_mode) = limits::build(raw)?;
        let store = store::build(raw, &keys, &mut notes)?;
        let mut service = ServiceConfig::new(policy.policy, keys);
        service.limits = limits;
        service.max_attempts = policy.max_attempts;
        service.single_use = policy.single_use;
        service.fail_mode = fail_mode;
        (service.verify_daily_ceiling, service.ipv6_prefix) = limits::network(raw)?;
        service.sessions = sessions::build(raw, &mut notes)?;
        service.allowed_identities = gate::allowed_identities(raw)?;
        let gate = gate::build(raw, dev, server.bind.port(), &mut notes)?;
        let (audit_config, audit_webhook) = audit::build(raw)?;
        service.audit = audit_config;
        let (delivery, retry) = delivery::build(raw, dev, &mut notes)?;
        Ok(Settings {
            server,
            service,
            token_keys: tokens.keys,
            token_config: tokens.config,
            store,
            delivery,
            retry,
            http: http::build(raw)?,
            gate,
            audit_webhook,
            dev_notes: notes.dev,
            warnings: notes.warnings,
        })
    }
}

/// A token configuration error of otp-core ("issuer must not be empty")
/// as the binary's line ("token configuration: TOKEN_ISSUER must not be empty").
pub fn token_error(e: &impl std::fmt::Display) -> SettingError {
    err(
        "token configuration",
        crate::vars::fields_to_variables(&e.to_string(), crate::vars::Concern::Tokens),
    )
}

/// The error when secrets are missing outside `--dev`: names each one.
pub(crate) fn missing_secrets(raw: &RawSettings) -> SettingError {
    let missing: Vec<&str> = ["OTP_SECRET_KEY", "JWT_SECRET"]
        .into_iter()
        .filter(|name| raw.get(name).is_none())
        .collect();
    err(
        &missing.join(", "),
        "not set: set them (create values with `otp-server keygen otp` and `otp-server keygen jwt`), or run with --dev for ephemeral development secrets",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vars::VARS;
    use otp_core::OtpPolicy;
    use otp_service::Limits;

    const OTP_KEY: &str = "c3RhdGVsZXNzLW90cCB0ZXN0IGtleSAzMiBieXRlcyE";
    const JWT: &str = "stateless-otp-test-jwt-secret-of-32-bytes-at-least";

    /// Secrets set, everything else at its default. `--dev` so that
    /// `DELIVERY_BACKEND` may stay unset (its default there is console,
    /// `DeliveryConfig::default()`); `--dev` changes no other default.
    fn defaults_only() -> Settings {
        let env = [("OTP_SECRET_KEY", OTP_KEY), ("JWT_SECRET", JWT)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let raw = RawSettings::load(None, env.into_iter()).unwrap();
        let s = Settings::from_raw(&raw, true).unwrap();
        assert!(s.dev_notes.is_empty(), "{:?}", s.dev_notes);
        s
    }

    #[test]
    fn documented_defaults_equal_the_libraries_defaults() {
        let s = defaults_only();
        let p = s.service.policy;
        let d = OtpPolicy::default();
        assert_eq!(p, d);
        assert_eq!(s.service.limits, Limits::default());
        assert_eq!(s.service.max_attempts, otp_service::DEFAULT_MAX_ATTEMPTS);
        let lib = ServiceConfig::new(d, s.service.keys.clone());
        assert_eq!(s.service.single_use, lib.single_use);
        assert_eq!(s.service.fail_mode, lib.fail_mode);
        assert_eq!(s.service.verify_daily_ceiling, lib.verify_daily_ceiling);
        assert_eq!(s.service.ipv6_prefix, lib.ipv6_prefix);
        assert_eq!(s.service.sessions, lib.sessions);
        assert!(s.service.allowed_identities.is_anyone() && lib.allowed_identities.is_anyone());
        assert!(s.gate.is_none(), "GATE defaults to off");
        assert_eq!(s.service.audit, lib.audit);
        assert!(s.audit_webhook.is_none());
        assert_eq!(s.token_config, TokenConfig::default());
        assert_eq!(s.retry, DeliveryRetryPolicy::default());
        assert_eq!(s.delivery, DeliveryConfig::default());
        assert!(matches!(
            s.store,
            StoreConfig::Memory { max_keys, .. } if max_keys == otp_ratelimit::DEFAULT_MAX_KEYS
        ));
        assert_eq!(s.server.bind, server::DEFAULT_BIND);
        assert!(s.http.trusted_proxies.is_empty() && s.http.cors_origins.is_empty());
    }

    #[test]
    fn every_table_default_is_accepted_and_every_integer_has_a_range() {
        for v in VARS {
            if let (Some(d), Some((min, max))) = (v.default_text(), v.range) {
                let n: u64 = d
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: default {d}", v.name));
                assert!(
                    (min..=max).contains(&n),
                    "{}: {d} outside {min}..={max}",
                    v.name
                );
            }
        }
        // Each numeric variable the builders read with `num` has a range.
        for name in [
            "OTP_DIGITS",
            "WORKERS",
            "SMTP_PORT",
            "REDIS_TIMEOUT_MS",
            "RATE_GLOBAL_SEND_WINDOW",
        ] {
            assert!(
                crate::vars::find(name).and_then(|v| v.range).is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn every_field_maps_to_one_variable() {
        let mut seen = std::collections::HashSet::new();
        for v in VARS.iter().filter_map(|v| v.field) {
            assert!(seen.insert(v), "field {v} twice");
        }
    }
}
