//! The audit concern (SPEC §10): `AUDIT_INCLUDE_IDENTITY`, and the signed
//! audit webhook `AUDIT_WEBHOOK_URL`, `AUDIT_WEBHOOK_SECRET` (Standard
//! Webhooks `whsec_…`, like `WEBHOOK_SECRET`) and
//! `AUDIT_WEBHOOK_QUEUE_SIZE`. The URL and secret are checked here, by
//! the same constructor `serve` uses, so `check-config` fails on them too.

use otp_service::AuditConfig;

use super::{err, RawSettings, SettingError};

/// The audit webhook's settings, validated.
#[derive(Debug, Clone)]
pub struct AuditWebhookSettings {
    /// The receiver (`AUDIT_WEBHOOK_URL`).
    pub url: String,
    /// The signing secret (`AUDIT_WEBHOOK_SECRET`; secret).
    pub secret: String,
    /// Events waiting at most (`AUDIT_WEBHOOK_QUEUE_SIZE`).
    pub queue_size: usize,
}

/// How long one audit webhook POST may take.
pub const AUDIT_WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the audit concern: the event settings, and the webhook when
/// `AUDIT_WEBHOOK_URL` is set (then `AUDIT_WEBHOOK_SECRET` is required).
pub fn build(
    raw: &RawSettings,
) -> Result<(AuditConfig, Option<AuditWebhookSettings>), SettingError> {
    let config = AuditConfig {
        include_identity: raw.flag("AUDIT_INCLUDE_IDENTITY")?,
    };
    let queue_size: usize = raw.num("AUDIT_WEBHOOK_QUEUE_SIZE")?;
    let url = raw.get("AUDIT_WEBHOOK_URL").map(str::trim).unwrap_or("");
    let secret = raw.get("AUDIT_WEBHOOK_SECRET").unwrap_or("");
    if url.is_empty() {
        if !secret.is_empty() {
            return Err(err(
                "AUDIT_WEBHOOK_SECRET",
                "is set but AUDIT_WEBHOOK_URL is not (set both, or neither)",
            ));
        }
        return Ok((config, None));
    }
    let webhook = AuditWebhookSettings {
        url: url.to_owned(),
        secret: secret.to_owned(),
        queue_size,
    };
    poster(&webhook)?;
    Ok((config, Some(webhook)))
}

/// The signed POSTer of `webhook`; errors name `AUDIT_WEBHOOK_URL` or
/// `AUDIT_WEBHOOK_SECRET`.
#[cfg(feature = "webhook")]
pub fn poster(webhook: &AuditWebhookSettings) -> Result<otp_delivery::WebhookPoster, SettingError> {
    otp_delivery::WebhookPoster::new(
        ("audit_webhook.url", "audit_webhook.secret"),
        "audit_webhook",
        &webhook.url,
        &webhook.secret,
        AUDIT_WEBHOOK_TIMEOUT,
    )
    .map_err(|e| {
        let var = if e.field == "audit_webhook.url" {
            "AUDIT_WEBHOOK_URL"
        } else {
            "AUDIT_WEBHOOK_SECRET"
        };
        err(
            var,
            e.reason.replace("webhook.secret", "AUDIT_WEBHOOK_SECRET"),
        )
    })
}

/// Without the `webhook` feature there is no audit webhook.
#[cfg(not(feature = "webhook"))]
pub fn poster(_webhook: &AuditWebhookSettings) -> Result<(), SettingError> {
    Err(err(
        "AUDIT_WEBHOOK_URL",
        "this build has no webhook support (feature `webhook`)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(vars: &[(&str, &str)]) -> RawSettings {
        let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        RawSettings::load(None, env).unwrap()
    }

    const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u";

    #[test]
    fn audit_settings_parse_and_bad_values_name_the_variable() {
        let (c, w) = build(&raw(&[])).unwrap();
        assert_eq!(c, AuditConfig::default());
        assert!(w.is_none());
        let (c, w) = build(&raw(&[
            ("AUDIT_INCLUDE_IDENTITY", "true"),
            ("AUDIT_WEBHOOK_URL", "https://audit.example/hook"),
            ("AUDIT_WEBHOOK_SECRET", SECRET),
            ("AUDIT_WEBHOOK_QUEUE_SIZE", "5"),
        ]))
        .unwrap();
        assert!(c.include_identity);
        let w = w.unwrap();
        assert_eq!(
            (w.url.as_str(), w.queue_size),
            ("https://audit.example/hook", 5)
        );
        for (vars, var) in [
            (
                &[("AUDIT_INCLUDE_IDENTITY", "maybe")][..],
                "AUDIT_INCLUDE_IDENTITY",
            ),
            (
                &[("AUDIT_WEBHOOK_SECRET", SECRET)][..],
                "AUDIT_WEBHOOK_SECRET",
            ),
            (
                &[("AUDIT_WEBHOOK_URL", "https://a.example/")][..],
                "AUDIT_WEBHOOK_SECRET",
            ),
            (
                &[
                    ("AUDIT_WEBHOOK_URL", "ftp://a.example/"),
                    ("AUDIT_WEBHOOK_SECRET", SECRET),
                ][..],
                "AUDIT_WEBHOOK_URL",
            ),
            (
                &[
                    ("AUDIT_WEBHOOK_URL", "https://a.example/"),
                    ("AUDIT_WEBHOOK_SECRET", "whsec_c2hvcnQ="),
                ][..],
                "AUDIT_WEBHOOK_SECRET",
            ),
            (
                &[("AUDIT_WEBHOOK_QUEUE_SIZE", "0")][..],
                "AUDIT_WEBHOOK_QUEUE_SIZE",
            ),
        ] {
            let e = build(&raw(vars)).unwrap_err();
            assert_eq!(e.variable, var, "{vars:?}: {e:?}");
        }
    }
}
