//! Typed configuration per backend and [`build_delivery`], which validates
//! it all and returns the `Arc<dyn Delivery>` the service holds.
//!
//! These are plain structs: this crate never reads the environment nor
//! parses variables. The binary reads the variables named in each field's
//! docs, fills the structs and calls [`build_delivery`] at start-up; every
//! [`ConfigError`] names the field to fix (`smtp.host`), which the binary
//! maps back to its variable.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::ConfigError;
use crate::local::{ConsoleDelivery, NoopDelivery};
use crate::retry::{DeliveryRetryPolicy, RetryingDelivery};
use crate::router::AutoRouter;
use crate::Delivery;

/// Which backend `DELIVERY_BACKEND` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// `console` (default): print codes to stdout, development only.
    #[default]
    Console,
    /// `none`: deliver nothing, benchmarks and tests only.
    None,
    /// `smtp`: email.
    Smtp,
    /// `twilio`: SMS.
    Twilio,
    /// `webhook`: signed JSON POST.
    Webhook,
    /// `auto`: email → SMTP, phone → Twilio, opaque → webhook.
    Auto,
}

impl BackendKind {
    /// The canonical value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::None => "none",
            Self::Smtp => "smtp",
            Self::Twilio => "twilio",
            Self::Webhook => "webhook",
            Self::Auto => "auto",
        }
    }
}

/// How the SMTP connection is secured (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// `starttls` (default): plain connect, then STARTTLS, which is required
    /// (a server that does not offer it fails). Usually port 587.
    #[default]
    StartTls,
    /// `tls`: TLS from the first byte ("SMTPS", implicit TLS). Usually port 465.
    Tls,
    /// `none`: no encryption at all. Only for a relay on localhost or a
    /// private network you trust.
    None,
}

impl SmtpTls {
    /// The canonical `SMTP_TLS` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }
}

/// Default `SMTP_PORT`.
pub const DEFAULT_SMTP_PORT: u16 = 587;
/// Default `SMTP_SUBJECT_TEMPLATE`.
pub const DEFAULT_SMTP_SUBJECT: &str = "Your verification code";
/// Default `SMTP_BODY_TEMPLATE`.
pub const DEFAULT_SMTP_BODY: &str = "Your verification code is {otp}\n\nIt is valid for {minutes} minutes. If you did not ask for it, you can ignore this email.\n";
/// Default `TWILIO_API_BASE`.
pub const DEFAULT_TWILIO_API_BASE: &str = "https://api.twilio.com";
/// Default `TWILIO_BODY_TEMPLATE`.
pub const DEFAULT_TWILIO_BODY: &str =
    "Your verification code is {otp}. It expires in {minutes} minutes.";

/// SMTP settings (feature `smtp`).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `SMTP_HOST`, *required*: the relay's host name (also the name its
    /// TLS certificate must carry).
    pub host: String,
    /// `SMTP_PORT`. Defaults to 587.
    pub port: u16,
    /// `SMTP_USERNAME`; `None` or empty: no authentication.
    pub username: Option<String>,
    /// `SMTP_PASSWORD`; required when a username is set.
    pub password: Option<String>,
    /// `SMTP_FROM`, *required*: `no-reply@example.com` or
    /// `Example <no-reply@example.com>`.
    pub from: String,
    /// `SMTP_TLS` (or the older `SMTP_USE_TLS`). Defaults to `starttls`.
    pub tls: SmtpTls,
    /// `SMTP_CA_FILE`: a PEM file of extra trusted CA certificates, for a
    /// private relay. Defaults to none (the Mozilla roots only).
    pub ca_file: Option<PathBuf>,
    /// `SMTP_SUBJECT_TEMPLATE`: one line, `{otp}` and `{minutes}` allowed.
    /// Defaults to [`DEFAULT_SMTP_SUBJECT`].
    pub subject_template: String,
    /// `SMTP_BODY_TEMPLATE`: the plain-text part, must contain `{otp}`.
    /// Defaults to [`DEFAULT_SMTP_BODY`].
    pub body_template: String,
    /// `SMTP_HTML_TEMPLATE`: the HTML part, must contain `{otp}`; values are
    /// HTML-escaped. Defaults to the text part, escaped, in a minimal page.
    pub html_template: Option<String>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: DEFAULT_SMTP_PORT,
            username: None,
            password: None,
            from: String::new(),
            tls: SmtpTls::default(),
            ca_file: None,
            subject_template: DEFAULT_SMTP_SUBJECT.to_owned(),
            body_template: DEFAULT_SMTP_BODY.to_owned(),
            html_template: None,
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("from", &self.from)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("subject_template", &self.subject_template)
            .field("body_template", &self.body_template)
            .field("html_template", &self.html_template)
            .finish()
    }
}

/// Twilio Programmable Messaging settings (feature `twilio`).
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `TWILIO_ACCOUNT_SID`, *required* (`AC…`).
    pub account_sid: String,
    /// `TWILIO_AUTH_TOKEN`, *required*.
    pub auth_token: String,
    /// `TWILIO_FROM_NUMBER`: the sender, an E.164 number (`+15017122661`),
    /// or a Messaging Service SID (`MG…`), sent as `MessagingServiceSid`.
    /// Required unless `messaging_service_sid` is set.
    pub from_number: Option<String>,
    /// `TWILIO_MESSAGING_SERVICE_SID` (`MG…`): when set it is used instead
    /// of `from_number`.
    pub messaging_service_sid: Option<String>,
    /// `TWILIO_API_BASE`. Defaults to `https://api.twilio.com`.
    pub api_base: String,
    /// `TWILIO_BODY_TEMPLATE`: the SMS text, must contain `{otp}`;
    /// `{minutes}` allowed. Defaults to [`DEFAULT_TWILIO_BODY`].
    pub body_template: String,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            account_sid: String::new(),
            auth_token: String::new(),
            from_number: None,
            messaging_service_sid: None,
            api_base: DEFAULT_TWILIO_API_BASE.to_owned(),
            body_template: DEFAULT_TWILIO_BODY.to_owned(),
        }
    }
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[REDACTED]")
            .field("from_number", &self.from_number)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("api_base", &self.api_base)
            .field("body_template", &self.body_template)
            .finish()
    }
}

/// Webhook settings (feature `webhook`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebhookConfig {
    /// `WEBHOOK_URL`, *required*: `http://` or `https://`.
    pub url: String,
    /// `WEBHOOK_HEADERS`: extra request headers as (name, value) pairs.
    /// Defaults to none.
    pub headers: Vec<(String, String)>,
    /// `WEBHOOK_SECRET`, *required*: `whsec_` followed by base64 of at
    /// least 16 bytes (the Standard Webhooks format).
    pub secret: String,
    /// `WEBHOOK_TEMPLATE`: a JSON payload template (see
    /// [`JsonTemplate`](crate::JsonTemplate)). Defaults to
    /// `{"identity","otp","ttl_seconds","expires_at"}`.
    pub template: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("headers", &names)
            .field("secret", &"[REDACTED]")
            .field("template", &self.template)
            .finish()
    }
}

/// The delivery configuration: one variant per `DELIVERY_BACKEND` value.
// Built once at start-up and read once: the size of `Auto` costs nothing,
// and boxing would make the binary's code clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeliveryConfig {
    /// `console`: [`ConsoleDelivery`].
    #[default]
    Console,
    /// `none`: [`NoopDelivery`] (benchmarks and tests only).
    None,
    /// `smtp`.
    Smtp(SmtpConfig),
    /// `twilio`.
    Twilio(TwilioConfig),
    /// `webhook`.
    Webhook(WebhookConfig),
    /// `auto`: routes by identity kind. All three must be `Some`; a missing
    /// one is a start-up error naming its first required field (see
    /// docs/delivery.md for the reasoning).
    Auto {
        /// For email identities.
        smtp: Option<SmtpConfig>,
        /// For phone identities.
        twilio: Option<TwilioConfig>,
        /// For opaque identities.
        webhook: Option<WebhookConfig>,
    },
}

impl DeliveryConfig {
    /// The `DELIVERY_BACKEND` this config stands for.
    pub fn backend(&self) -> BackendKind {
        match self {
            Self::Console => BackendKind::Console,
            Self::None => BackendKind::None,
            Self::Smtp(_) => BackendKind::Smtp,
            Self::Twilio(_) => BackendKind::Twilio,
            Self::Webhook(_) => BackendKind::Webhook,
            Self::Auto { .. } => BackendKind::Auto,
        }
    }
}

/// Validates `config` and `retry` and builds the delivery the service holds.
///
/// Network backends are wrapped in [`RetryingDelivery`] with `retry`. Can be
/// called before the tokio runtime starts (nothing is spawned or connected
/// here). Errors name the field to fix, e.g. `smtp.host`.
pub fn build_delivery(
    config: &DeliveryConfig,
    retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    match config {
        DeliveryConfig::Console => Ok(Arc::new(ConsoleDelivery::new())),
        DeliveryConfig::None => Ok(Arc::new(NoopDelivery)),
        DeliveryConfig::Smtp(c) => {
            retry.validate()?;
            wrap(build_smtp(c, retry)?, retry)
        }
        DeliveryConfig::Twilio(c) => {
            retry.validate()?;
            wrap(build_twilio(c, retry)?, retry)
        }
        DeliveryConfig::Webhook(c) => {
            retry.validate()?;
            wrap(build_webhook(c, retry)?, retry)
        }
        DeliveryConfig::Auto {
            smtp,
            twilio,
            webhook,
        } => {
            retry.validate()?;
            let smtp = smtp.as_ref().ok_or_else(|| {
                ConfigError::new(
                    "smtp.host",
                    "must be set with delivery.backend=auto (email identities go to SMTP)",
                )
            })?;
            let twilio = twilio.as_ref().ok_or_else(|| {
                ConfigError::new(
                    "twilio.account_sid",
                    "must be set with delivery.backend=auto (phone identities go to Twilio)",
                )
            })?;
            let webhook = webhook.as_ref().ok_or_else(|| {
                ConfigError::new(
                    "webhook.url",
                    "must be set with delivery.backend=auto (other identities go to the webhook)",
                )
            })?;
            let smtp = wrap(build_smtp(smtp, retry)?, retry)?;
            let twilio = wrap(build_twilio(twilio, retry)?, retry)?;
            let webhook = wrap(build_webhook(webhook, retry)?, retry)?;
            Ok(Arc::new(AutoRouter::new(smtp, twilio, webhook)))
        }
    }
}

fn wrap(
    inner: Arc<dyn Delivery>,
    retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Ok(Arc::new(RetryingDelivery::new(inner, *retry)))
}

#[cfg(feature = "smtp")]
fn build_smtp(
    c: &SmtpConfig,
    retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Ok(Arc::new(crate::smtp::SmtpDelivery::new(c, retry.timeout)?))
}

#[cfg(not(feature = "smtp"))]
fn build_smtp(
    _c: &SmtpConfig,
    _retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Err(not_compiled("smtp"))
}

#[cfg(feature = "twilio")]
fn build_twilio(
    c: &TwilioConfig,
    retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Ok(Arc::new(crate::twilio::TwilioDelivery::new(
        c,
        retry.timeout,
    )?))
}

#[cfg(not(feature = "twilio"))]
fn build_twilio(
    _c: &TwilioConfig,
    _retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Err(not_compiled("twilio"))
}

#[cfg(feature = "webhook")]
fn build_webhook(
    c: &WebhookConfig,
    retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Ok(Arc::new(crate::webhook::WebhookDelivery::new(
        c,
        retry.timeout,
    )?))
}

#[cfg(not(feature = "webhook"))]
fn build_webhook(
    _c: &WebhookConfig,
    _retry: &DeliveryRetryPolicy,
) -> Result<Arc<dyn Delivery>, ConfigError> {
    Err(not_compiled("webhook"))
}

#[allow(dead_code)] // unused when every backend feature is on
fn not_compiled(feature: &str) -> ConfigError {
    ConfigError::new(
        "delivery.backend",
        format!("{feature} support is not compiled into this binary (cargo feature otp-delivery/{feature})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let s = SmtpConfig {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        let t = TwilioConfig {
            auth_token: "tok-secret".into(),
            ..Default::default()
        };
        assert!(!format!("{t:?}").contains("tok-secret"));
        let w = WebhookConfig {
            secret: "whsec_c2VjcmV0".into(),
            headers: vec![("Authorization".into(), "Bearer xyz".into())],
            ..Default::default()
        };
        let d = format!("{w:?}");
        assert!(!d.contains("c2VjcmV0") && !d.contains("xyz"), "{d}");
    }

    #[test]
    fn console_and_none_build_without_checks() {
        assert_eq!(
            build_delivery(&DeliveryConfig::Console, &DeliveryRetryPolicy::default())
                .unwrap()
                .name(),
            "console"
        );
        assert_eq!(
            build_delivery(&DeliveryConfig::None, &DeliveryRetryPolicy::default())
                .unwrap()
                .name(),
            "none"
        );
    }

    #[test]
    fn auto_without_a_backend_fails_at_build() {
        let e = build_delivery(
            &DeliveryConfig::Auto {
                smtp: None,
                twilio: None,
                webhook: None,
            },
            &DeliveryRetryPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "smtp.host");
    }
}
