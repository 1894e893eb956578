//! `otp-server probe` and `otp-server send-test` (SPEC §12): what an
//! operator runs from a pod or host before (or instead of) sending traffic.
//!
//! - [`probe`] connects to every configured component and reports each in
//!   one [`Check`] line, sending nothing: Redis (`PING`, `SCRIPT LOAD` of
//!   the store's scripts, `CONFIG GET maxmemory-policy` = `noeviction`),
//!   SMTP (connect, TLS per `SMTP_TLS`, EHLO, AUTH when credentials are set;
//!   no mail), Twilio (account lookup) and, only when asked, the webhook (one
//!   signed `test` event). Secrets never appear in a line: Redis URLs lose
//!   their `user:password@`, webhook URLs their query.
//! - [`send_test`] sends one real code through the configured delivery and
//!   says where it went (backend, normalized identity); the code itself is
//!   printed only by the console backend, as always.

use std::time::Duration;

use otp_delivery::DeliveryConfig;
use otp_ratelimit::StoreConfig;
use otp_service::RequestContext;

use crate::settings::Settings;

/// The outcome of probing one component: one line of `otp-server probe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `redis`, `store`, `smtp`, `twilio`, `webhook`, `delivery`.
    pub component: &'static str,
    /// What was probed, without secrets (`redis://127.0.0.1:6379`, …).
    pub target: String,
    /// `Ok(what passed)` or `Err(why it failed)`.
    pub result: Result<String, String>,
}

impl Check {
    fn new(
        component: &'static str,
        target: impl Into<String>,
        result: Result<String, String>,
    ) -> Self {
        Check {
            component,
            target: target.into(),
            result,
        }
    }

    /// Whether the component passed.
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

impl std::fmt::Display for Check {
    /// `ok   redis    redis://127.0.0.1:6379: PING, …` or
    /// `FAIL smtp     mail.example.com:587 (starttls): …`, one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (status, text) = match &self.result {
            Ok(t) => ("ok  ", t),
            Err(t) => ("FAIL", t),
        };
        let text = text.replace(['\n', '\r'], " ");
        write!(f, "{status} {:<8} {}: {text}", self.component, self.target)
    }
}

/// Probes every component `settings` configures (the webhook only with
/// `webhook`), in order: store, then delivery.
pub async fn probe(settings: &Settings, webhook: bool) -> Vec<Check> {
    let mut checks = vec![probe_store(&settings.store).await];
    let timeout = settings.retry.timeout;
    match &settings.delivery {
        DeliveryConfig::Console | DeliveryConfig::None => checks.push(Check::new(
            "delivery",
            settings.delivery.backend().as_str(),
            Ok("nothing to connect to".into()),
        )),
        DeliveryConfig::Smtp(c) => checks.push(probe_smtp(c, timeout).await),
        DeliveryConfig::Twilio(c) => checks.push(probe_twilio(c, timeout).await),
        DeliveryConfig::Webhook(c) => checks.push(probe_webhook(c, timeout, webhook).await),
        DeliveryConfig::Auto {
            smtp,
            twilio,
            webhook: hook,
        } => {
            if let Some(c) = smtp {
                checks.push(probe_smtp(c, timeout).await);
            }
            if let Some(c) = twilio {
                checks.push(probe_twilio(c, timeout).await);
            }
            if let Some(c) = hook {
                checks.push(probe_webhook(c, timeout, webhook).await);
            }
        }
    }
    checks
}

async fn probe_store(config: &StoreConfig) -> Check {
    match config {
        StoreConfig::Memory { .. } => Check::new(
            "store",
            "memory",
            Ok("in process, nothing to connect to".into()),
        ),
        #[cfg(feature = "redis")]
        StoreConfig::Redis(c) => probe_redis(c).await,
        #[allow(unreachable_patterns)]
        _ => Check::new(
            "store",
            "?",
            Err("a store backend this build cannot probe".into()),
        ),
    }
}

#[cfg(feature = "redis")]
async fn probe_redis(config: &otp_ratelimit::RedisConfig) -> Check {
    use otp_ratelimit::{RedisStore, Store, StoreError};
    let target = config.redacted_urls().join(",");
    let result = async {
        let store = RedisStore::connect_lazy(config.clone()).map_err(|e| e.to_string())?;
        store.ping().await.map_err(|e| format!("PING failed: {e}"))?;
        let scripts = store
            .load_scripts()
            .await
            .map_err(|e| format!("SCRIPT LOAD failed: {e}"))?;
        let policy = match store.maxmemory_policy().await {
            Ok(Some(p)) if p == "noeviction" => "maxmemory-policy noeviction".to_owned(),
            Ok(Some(p)) => {
                return Err(format!(
                    "maxmemory-policy is {p}, must be noeviction: every key has a TTL, so a volatile-* or allkeys-* policy evicts live limit windows and use counters (a used code could verify again)"
                ))
            }
            Ok(None) => "maxmemory-policy could not be checked (CONFIG GET answered nothing); make sure it is noeviction".to_owned(),
            Err(StoreError::Backend(e)) => format!(
                "maxmemory-policy could not be checked (CONFIG is disabled or refused: {e}); make sure it is noeviction"
            ),
            Err(e) => return Err(format!("CONFIG GET failed: {e}")),
        };
        Ok(format!("PING ok, {scripts} scripts loaded, {policy}"))
    }
    .await;
    Check::new("redis", target, result)
}

#[cfg(feature = "smtp")]
async fn probe_smtp(config: &otp_delivery::SmtpConfig, timeout: Duration) -> Check {
    let auth = config.username.as_deref().is_some_and(|u| !u.is_empty());
    let target = format!("{}:{} ({})", config.host, config.port, config.tls.as_str());
    let result = async {
        let smtp = otp_delivery::SmtpDelivery::new(config, timeout).map_err(|e| e.to_string())?;
        smtp.test_connection().await.map_err(|e| e.to_string())?;
        Ok(match (config.tls, auth) {
            (otp_delivery::SmtpTls::None, false) => {
                "connected, EHLO ok (no TLS, no AUTH), no mail sent"
            }
            (otp_delivery::SmtpTls::None, true) => {
                "connected, EHLO ok, AUTH ok (no TLS), no mail sent"
            }
            (_, false) => "connected, TLS ok, EHLO ok (no AUTH configured), no mail sent",
            (_, true) => "connected, TLS ok, EHLO ok, AUTH ok, no mail sent",
        }
        .to_owned())
    }
    .await;
    Check::new("smtp", target, result)
}

#[cfg(not(feature = "smtp"))]
async fn probe_smtp(config: &otp_delivery::SmtpConfig, _timeout: Duration) -> Check {
    Check::new(
        "smtp",
        config.host.clone(),
        Err("this build has no smtp feature".into()),
    )
}

#[cfg(feature = "twilio")]
async fn probe_twilio(config: &otp_delivery::TwilioConfig, timeout: Duration) -> Check {
    let target = format!("{} account {}", config.api_base, config.account_sid);
    let result = async {
        let twilio =
            otp_delivery::TwilioDelivery::new(config, timeout).map_err(|e| e.to_string())?;
        let status = twilio.check_account().await.map_err(|e| e.to_string())?;
        if status == "active" {
            Ok("account lookup ok (active), no SMS sent".to_owned())
        } else {
            Err(format!("the account is {status}, not active"))
        }
    }
    .await;
    Check::new("twilio", target, result)
}

#[cfg(not(feature = "twilio"))]
async fn probe_twilio(config: &otp_delivery::TwilioConfig, _timeout: Duration) -> Check {
    Check::new(
        "twilio",
        config.api_base.clone(),
        Err("this build has no twilio feature".into()),
    )
}

#[cfg(feature = "webhook")]
async fn probe_webhook(
    config: &otp_delivery::WebhookConfig,
    timeout: Duration,
    send: bool,
) -> Check {
    let target = config
        .url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let result = async {
        let hook =
            otp_delivery::WebhookDelivery::new(config, timeout).map_err(|e| e.to_string())?;
        if !send {
            return Ok(
                "configuration valid; not contacted (add --webhook to send a signed test event)"
                    .to_owned(),
            );
        }
        let id = hook.send_test_event().await.map_err(|e| e.to_string())?;
        Ok(format!("signed test event {id} accepted"))
    }
    .await;
    Check::new("webhook", target, result)
}

#[cfg(not(feature = "webhook"))]
async fn probe_webhook(
    config: &otp_delivery::WebhookConfig,
    _timeout: Duration,
    _send: bool,
) -> Check {
    Check::new(
        "webhook",
        config.url.clone(),
        Err("this build has no webhook feature".into()),
    )
}

/// Sends one real code to `identity` through the configured delivery (the
/// same path as `POST /api/v1/otp/request`, limits included). Returns the
/// line saying where it went, or the one-line reason it failed.
pub async fn send_test(settings: &Settings, identity: &str) -> anyhow::Result<String> {
    let parts = crate::build(settings).await?;
    let service = parts.service;
    let outcome = service
        .request_otp(identity, &RequestContext::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let backend = service.delivery_backend_for(outcome.identity.kind());
    Ok(format!(
        "sent a code to {} ({}) via {backend}; valid for {} s",
        outcome.identity.as_str(),
        outcome.identity.kind().as_str(),
        outcome.ttl_seconds
    ))
}
