//! The delivery concern: the backend (`DELIVERY_BACKEND`), retries, and each
//! backend's variables. The parsing of the backend name, the two SMTP TLS
//! variables and `WEBHOOK_HEADERS` lives here, not in otp-delivery, whose
//! errors name fields (`smtp.host`) that [`map_error`] turns back into
//! variables.

use std::time::Duration;

use otp_delivery::{
    BackendKind, ConfigError, DeliveryConfig, DeliveryRetryPolicy, SmtpConfig, SmtpTls,
    TwilioConfig, WebhookConfig,
};

use super::raw::parse_bool;
use super::{err, Notes, RawSettings, SettingError};
use crate::vars::{self, Concern};

/// Turns a library error about a field into the one line about its variable.
pub fn map_error(e: &ConfigError) -> SettingError {
    let variable = vars::for_field(e.field, Concern::Delivery).map_or(e.field, |v| v.name);
    err(
        variable,
        vars::fields_to_variables(&e.reason, Concern::Delivery),
    )
}

const NOT_SET: &str = "not set: choose smtp, twilio, webhook or auto (docs/delivery.md); \
console prints every code to the log, so it must be chosen explicitly (DELIVERY_BACKEND=console) \
or come with --dev";

/// The warning of every start with console delivery outside `--dev`.
pub const CONSOLE_WARNING: &str = "DELIVERY_BACKEND=console: every code is printed to stdout, \
i.e. into the log; anyone who reads the log can sign in as anyone. Use it for development \
and tests only";

/// Parses a `DELIVERY_BACKEND` value (case-insensitive).
pub fn backend_kind(value: &str) -> Result<BackendKind, SettingError> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "console" => BackendKind::Console,
        "none" => BackendKind::None,
        "smtp" => BackendKind::Smtp,
        "twilio" => BackendKind::Twilio,
        "webhook" => BackendKind::Webhook,
        "auto" => BackendKind::Auto,
        _ => {
            return Err(err(
                "DELIVERY_BACKEND",
                "must be one of console, smtp, twilio, webhook, auto, none",
            ))
        }
    })
}

/// Reads the delivery concern. Outside `--dev` the backend must be chosen:
/// console delivery prints every code to the log, so it is never a silent
/// default in production, and choosing it warns at every start.
pub fn build(
    raw: &RawSettings,
    dev: bool,
    notes: &mut Notes,
) -> Result<(DeliveryConfig, DeliveryRetryPolicy), SettingError> {
    let backend = match raw.get("DELIVERY_BACKEND") {
        Some(v) => backend_kind(v)?,
        None if dev => BackendKind::Console,
        None => return Err(err("DELIVERY_BACKEND", NOT_SET)),
    };
    if backend == BackendKind::Console && !dev {
        notes.warnings.push(CONSOLE_WARNING.to_owned());
    }
    let retry = DeliveryRetryPolicy {
        timeout: Duration::from_secs(raw.num("DELIVERY_TIMEOUT_SECONDS")?),
        max_attempts: raw.num("DELIVERY_MAX_ATTEMPTS")?,
        initial_backoff: Duration::from_millis(raw.num("DELIVERY_RETRY_BACKOFF_MS")?),
        ..DeliveryRetryPolicy::default()
    };
    let need =
        |name: &str, what: &str| err(name, format!("must be set with DELIVERY_BACKEND={what}"));
    let config = match backend {
        BackendKind::Console => DeliveryConfig::Console,
        BackendKind::None => DeliveryConfig::None,
        BackendKind::Smtp => {
            DeliveryConfig::Smtp(smtp(raw)?.ok_or_else(|| need("SMTP_HOST", "smtp"))?)
        }
        BackendKind::Twilio => DeliveryConfig::Twilio(
            twilio(raw)?.ok_or_else(|| need("TWILIO_ACCOUNT_SID", "twilio"))?,
        ),
        BackendKind::Webhook => {
            DeliveryConfig::Webhook(webhook(raw)?.ok_or_else(|| need("WEBHOOK_URL", "webhook"))?)
        }
        BackendKind::Auto => DeliveryConfig::Auto {
            smtp: smtp(raw)?,
            twilio: twilio(raw)?,
            webhook: webhook(raw)?,
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

/// `SMTP_TLS` when set (not just defaulted), else the older `SMTP_USE_TLS`
/// (`true` = starttls, `false` = none), else the default.
fn smtp_tls(raw: &RawSettings) -> Result<SmtpTls, SettingError> {
    let explicit = raw.source("SMTP_TLS").is_some_and(|s| s != "default");
    if let (false, Some(v)) = (explicit, raw.get("SMTP_USE_TLS")) {
        return match parse_bool(&v.to_ascii_lowercase()) {
            Some(true) => Ok(SmtpTls::StartTls),
            Some(false) => Ok(SmtpTls::None),
            None => Err(err("SMTP_USE_TLS", "must be true or false")),
        };
    }
    match raw.get("SMTP_TLS").map(str::to_ascii_lowercase).as_deref() {
        None => Ok(SmtpTls::default()),
        Some("starttls") => Ok(SmtpTls::StartTls),
        Some("tls") => Ok(SmtpTls::Tls),
        Some("none") => Ok(SmtpTls::None),
        Some(_) => Err(err("SMTP_TLS", "must be one of starttls, tls, none")),
    }
}

fn smtp(raw: &RawSettings) -> Result<Option<SmtpConfig>, SettingError> {
    let Some(host) = raw.string("SMTP_HOST") else {
        return Ok(None);
    };
    let d = SmtpConfig::default();
    let from = raw.string("SMTP_FROM").ok_or_else(|| {
        err(
            "SMTP_FROM",
            "must be set with SMTP delivery (e.g. no-reply@example.com)",
        )
    })?;
    Ok(Some(SmtpConfig {
        host,
        port: raw.num("SMTP_PORT")?,
        username: raw.string("SMTP_USERNAME"),
        password: raw.string("SMTP_PASSWORD"),
        from,
        tls: smtp_tls(raw)?,
        ca_file: raw.get("SMTP_CA_FILE").map(Into::into),
        subject_template: raw
            .string("SMTP_SUBJECT_TEMPLATE")
            .unwrap_or(d.subject_template),
        body_template: raw.string("SMTP_BODY_TEMPLATE").unwrap_or(d.body_template),
        html_template: raw.string("SMTP_HTML_TEMPLATE").or(d.html_template),
    }))
}

fn twilio(raw: &RawSettings) -> Result<Option<TwilioConfig>, SettingError> {
    let Some(account_sid) = raw.string("TWILIO_ACCOUNT_SID") else {
        return Ok(None);
    };
    let d = TwilioConfig::default();
    let auth_token = raw
        .string("TWILIO_AUTH_TOKEN")
        .ok_or_else(|| err("TWILIO_AUTH_TOKEN", "must be set with Twilio delivery"))?;
    Ok(Some(TwilioConfig {
        account_sid,
        auth_token,
        from_number: raw.string("TWILIO_FROM_NUMBER"),
        messaging_service_sid: raw.string("TWILIO_MESSAGING_SERVICE_SID"),
        api_base: raw.string("TWILIO_API_BASE").unwrap_or(d.api_base),
        body_template: raw
            .string("TWILIO_BODY_TEMPLATE")
            .unwrap_or(d.body_template),
    }))
}

fn webhook(raw: &RawSettings) -> Result<Option<WebhookConfig>, SettingError> {
    let Some(url) = raw.string("WEBHOOK_URL") else {
        return Ok(None);
    };
    let secret = raw.string("WEBHOOK_SECRET").ok_or_else(|| {
        err(
            "WEBHOOK_SECRET",
            "must be set with webhook delivery (whsec_<base64>)",
        )
    })?;
    Ok(Some(WebhookConfig {
        url,
        headers: webhook_headers(raw.get("WEBHOOK_HEADERS").unwrap_or(""))?,
        secret,
        template: raw.string("WEBHOOK_TEMPLATE"),
    }))
}

/// Parses `WEBHOOK_HEADERS`. Two forms are accepted:
/// - a JSON object of strings: `{"Authorization": "Bearer abc", "X-Env": "prod"}`;
/// - `Name: value` pairs separated by newlines or commas:
///   `Authorization: Bearer abc, X-Env: prod` (values cannot contain a
///   comma in this form; use the JSON form for that).
///
/// Empty input gives no headers. Names and values are checked when the
/// webhook backend is built.
pub fn webhook_headers(value: &str) -> Result<Vec<(String, String)>, SettingError> {
    const VAR: &str = "WEBHOOK_HEADERS";
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if trimmed.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(trimmed)
            .map_err(|e| err(VAR, format!("is not a JSON object ({e})")))?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                _ => Err(err(VAR, format!("the value of {k} must be a JSON string"))),
            })
            .collect();
    }
    trimmed
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once(':').ok_or_else(|| {
                err(
                    VAR,
                    "expected 'Name: value' pairs separated by commas or newlines",
                )
            })?;
            let name = name.trim();
            if name.is_empty() {
                return Err(err(VAR, "a header name is empty"));
            }
            Ok((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_backend_is_an_error_outside_dev_and_console_warns() {
        let mut notes = Notes::default();
        let e = build(&raw(&[]), false, &mut notes).unwrap_err();
        assert_eq!(e.variable, "DELIVERY_BACKEND");
        let (c, _) = build(&raw(&[]), true, &mut notes).unwrap();
        assert_eq!(c, DeliveryConfig::Console);
        assert!(notes.warnings.is_empty(), "--dev: the dev box says it");
        let (c, _) = build(&raw(&[("DELIVERY_BACKEND", "console")]), false, &mut notes).unwrap();
        assert_eq!(c, DeliveryConfig::Console);
        assert_eq!(notes.warnings, [CONSOLE_WARNING]);
    }

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        RawSettings::load(None, env).unwrap()
    }

    #[test]
    fn backend_names_parse_case_insensitively_and_unknown_ones_name_the_variable() {
        assert_eq!(backend_kind("SMTP").unwrap(), BackendKind::Smtp);
        assert_eq!(backend_kind("none").unwrap(), BackendKind::None);
        assert_eq!(
            backend_kind("sms").unwrap_err().variable,
            "DELIVERY_BACKEND"
        );
    }

    #[test]
    fn smtp_tls_wins_when_set_and_the_legacy_flag_applies_otherwise() {
        let tls = |pairs: &[(&str, &str)]| smtp_tls(&raw(pairs));
        assert_eq!(tls(&[]).unwrap(), SmtpTls::StartTls);
        assert_eq!(tls(&[("SMTP_TLS", "TLS")]).unwrap(), SmtpTls::Tls);
        assert_eq!(tls(&[("SMTP_USE_TLS", "false")]).unwrap(), SmtpTls::None);
        assert_eq!(tls(&[("SMTP_USE_TLS", "on")]).unwrap(), SmtpTls::StartTls);
        assert_eq!(
            tls(&[("SMTP_TLS", "tls"), ("SMTP_USE_TLS", "false")]).unwrap(),
            SmtpTls::Tls
        );
        assert_eq!(
            tls(&[("SMTP_TLS", "ssl")]).unwrap_err().variable,
            "SMTP_TLS"
        );
        assert_eq!(
            tls(&[("SMTP_USE_TLS", "maybe")]).unwrap_err().variable,
            "SMTP_USE_TLS"
        );
    }

    #[test]
    fn webhook_headers_accept_both_forms() {
        let h = webhook_headers("Authorization: Bearer a:b, X-Env: prod\nX-Other:1").unwrap();
        assert_eq!(
            h,
            vec![
                ("Authorization".into(), "Bearer a:b".into()),
                ("X-Env".into(), "prod".into()),
                ("X-Other".into(), "1".into())
            ]
        );
        let h = webhook_headers(r#"{"Accept": "a, b", "X-Env": "prod"}"#).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h.contains(&("Accept".into(), "a, b".into())));
        assert!(webhook_headers("").unwrap().is_empty());
        assert_eq!(
            webhook_headers("novalue").unwrap_err().variable,
            "WEBHOOK_HEADERS"
        );
        assert!(webhook_headers(r#"{"a": 1}"#).is_err());
        assert!(webhook_headers(": x").is_err());
    }

    #[test]
    fn library_field_errors_become_variable_lines() {
        let e = ConfigError::new("smtp.password", "must be set when smtp.username is set");
        assert_eq!(
            map_error(&e).to_string(),
            "SMTP_PASSWORD: must be set when SMTP_USERNAME is set"
        );
        let e = ConfigError::new(
            "smtp.host",
            "must be set with delivery.backend=auto (email identities go to SMTP)",
        );
        assert_eq!(
            map_error(&e).to_string(),
            "SMTP_HOST: must be set with DELIVERY_BACKEND=auto (email identities go to SMTP)"
        );
    }
}
