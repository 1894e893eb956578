//! Webhook backend (feature `webhook`): a JSON POST to `WEBHOOK_URL`,
//! signed per the Standard Webhooks specification so receivers verify it
//! with the official `standardwebhooks` libraries.
//!
//! Headers sent: `content-type: application/json`, `webhook-id` (the
//! message id, the same on every retry), `webhook-timestamp` (unix seconds
//! of the attempt), `webhook-signature: v1,<base64 HMAC-SHA256(key,
//! "{id}.{timestamp}.{body}")>`, plus `WEBHOOK_HEADERS`.
//!
//! [`WebhookPoster`] is that signed POST on its own (one attempt per call,
//! failures classified transient or permanent); the service's audit
//! webhook (`AUDIT_WEBHOOK_URL`) sends its events with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use otp_core::{IdentityKind, SecretBytes};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use crate::config::WebhookConfig;
use crate::error::{ConfigError, DeliveryError};
use crate::http::{http_client, status_kind, transport_error};
use crate::message::{DeliveryReceipt, OtpMessage};
use crate::template::{default_json_body, JsonTemplate};
use crate::Delivery;

const BACKEND: &str = "webhook";

/// Shortest accepted signing key, bytes (after base64 decoding).
pub const MIN_WEBHOOK_KEY_BYTES: usize = 16;

/// Headers a `WEBHOOK_HEADERS` entry may not set.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Standard Webhooks signer: HMAC-SHA256 with the key from a `whsec_…` secret.
#[derive(Clone)]
pub struct WebhookSigner {
    key: SecretBytes,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSigner([REDACTED])")
    }
}

impl WebhookSigner {
    /// Parses `WEBHOOK_SECRET`: `whsec_` then standard base64 (padding
    /// optional) of at least 16 bytes. The prefix may be omitted, as the
    /// official libraries allow.
    pub fn from_secret(secret: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "webhook.secret";
        let trimmed = secret.trim();
        if trimmed.is_empty() {
            return Err(ConfigError::new(
                VAR,
                "must be set (whsec_ followed by base64, e.g. from `otp-server keygen`)",
            ));
        }
        let b64 = trimmed.strip_prefix("whsec_").unwrap_or(trimmed);
        let engine = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let key = engine.decode(b64).map_err(|_| {
            ConfigError::new(VAR, "the part after whsec_ is not valid standard base64")
        })?;
        if key.len() < MIN_WEBHOOK_KEY_BYTES {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "the key must be at least {MIN_WEBHOOK_KEY_BYTES} bytes (it is {})",
                    key.len()
                ),
            ));
        }
        Ok(WebhookSigner {
            key: SecretBytes::new(key),
        })
    }

    /// The `webhook-signature` value for one delivery: `v1,<base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: u64, body: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.key.expose());
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// Signed Standard Webhooks POSTs to one URL: the transport shared by
/// [`WebhookDelivery`] and any other sender of signed events (the service's
/// audit webhook). One call is one attempt; the caller retries with the
/// same `webhook-id`.
#[derive(Clone)]
pub struct WebhookPoster {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    signer: WebhookSigner,
    backend: &'static str,
}

impl std::fmt::Debug for WebhookPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookPoster")
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookPoster {
    /// Validates `url` (http or https with a host) and `secret` (see
    /// [`WebhookSigner::from_secret`]); `timeout` bounds each request.
    /// Errors name `fields`: the URL's and the secret's (`webhook.url` and
    /// `webhook.secret` for the delivery backend); `backend` names the
    /// sender in errors and logs.
    pub fn new(
        fields: (&'static str, &'static str),
        backend: &'static str,
        url: &str,
        secret: &str,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let (url_field, secret_field) = fields;
        let raw = url.trim();
        if raw.is_empty() {
            return Err(ConfigError::new(
                url_field,
                "must be set to the receiver's URL",
            ));
        }
        let url = reqwest::Url::parse(raw)
            .map_err(|e| ConfigError::new(url_field, format!("is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::new(
                url_field,
                "must be an http:// or https:// URL with a host",
            ));
        }
        let signer = WebhookSigner::from_secret(secret).map_err(|e| ConfigError {
            field: secret_field,
            ..e
        })?;
        let client = http_client(timeout).map_err(|e| ConfigError::new(url_field, e))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(WebhookPoster {
            client,
            url,
            headers,
            signer,
            backend,
        })
    }

    /// POSTs `body` signed for (`id`, `timestamp`) once; a non-2xx answer
    /// is an error (transient for 5xx, 408, 429 and transport failures).
    pub async fn post(&self, id: &str, timestamp: u64, body: &str) -> Result<(), DeliveryError> {
        let signature = self.signer.sign(id, timestamp, body);
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| transport_error(self.backend, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let kind = status_kind(status);
        tracing::warn!(
            backend = self.backend,
            message_id = id,
            http_status = status.as_u16(),
            transient = kind.is_transient(),
            "webhook receiver refused the message"
        );
        Err(DeliveryError::new(
            self.backend,
            kind,
            format!("the receiver answered HTTP {status}"),
        )
        .with_status(status.as_u16()))
    }
}

/// Sends codes as signed JSON to a URL of yours.
pub struct WebhookDelivery {
    poster: WebhookPoster,
    template: Option<JsonTemplate>,
}

impl std::fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDelivery")
            .field("url", &self.poster.url.as_str())
            .field("headers", &self.poster.headers.keys().collect::<Vec<_>>())
            .field("templated", &self.template.is_some())
            .finish()
    }
}

impl WebhookDelivery {
    /// Validates `config` (URL, headers, secret, template); `timeout`
    /// bounds each HTTP request.
    pub fn new(config: &WebhookConfig, timeout: Duration) -> Result<Self, ConfigError> {
        let mut poster = WebhookPoster::new(
            ("webhook.url", "webhook.secret"),
            BACKEND,
            &config.url,
            &config.secret,
            timeout,
        )?;
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                ConfigError::new(
                    "webhook.headers",
                    format!("'{name}' is not a valid header name"),
                )
            })?;
            if RESERVED.contains(&header.as_str()) {
                return Err(ConfigError::new(
                    "webhook.headers",
                    format!("'{name}' is set by the webhook backend itself"),
                ));
            }
            let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                ConfigError::new(
                    "webhook.headers",
                    format!("the value of '{name}' is not a valid header value"),
                )
            })?;
            value.set_sensitive(true);
            poster.headers.append(header, value);
        }
        let template = match config.template.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => Some(JsonTemplate::parse(t)?),
            _ => None,
        };
        Ok(WebhookDelivery { poster, template })
    }

    /// The JSON body for `message` (the template's, or the default).
    pub fn body(&self, message: &OtpMessage) -> String {
        match &self.template {
            Some(t) => t.render(message),
            None => default_json_body(message),
        }
    }

    /// Sends one signed Standard Webhooks event of type `test` (no code, no
    /// identity): `{"type":"test","timestamp":…,"data":{"source":"otp-server"}}`,
    /// for `otp-server probe --webhook`. Returns the `webhook-id` sent.
    pub async fn send_test_event(&self) -> Result<String, DeliveryError> {
        let id = crate::message::new_message_id();
        let timestamp = unix_seconds();
        let body = format!(
            r#"{{"type":"test","timestamp":{timestamp},"data":{{"source":"otp-server"}}}}"#
        );
        self.poster.post(&id, timestamp, &body).await?;
        Ok(id)
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[async_trait]
impl Delivery for WebhookDelivery {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn supports(&self, _kind: IdentityKind) -> bool {
        true
    }

    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        let body = zeroize::Zeroizing::new(self.body(message));
        self.poster
            .post(message.id(), unix_seconds(), &body)
            .await?;
        Ok(DeliveryReceipt {
            backend: BACKEND,
            provider_id: Some(message.id().to_owned()),
            attempts: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // base64 of 24 bytes "0123456789abcdefghijklmn"
    const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u";

    #[test]
    fn secret_parsing() {
        assert!(WebhookSigner::from_secret(SECRET).is_ok());
        assert!(WebhookSigner::from_secret("MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u").is_ok());
        assert_eq!(
            WebhookSigner::from_secret("").unwrap_err().field,
            "webhook.secret"
        );
        assert!(WebhookSigner::from_secret("whsec_!!!").is_err());
        assert!(WebhookSigner::from_secret("whsec_c2hvcnQ=")
            .unwrap_err()
            .reason
            .contains("at least 16"));
    }

    #[test]
    fn signature_matches_a_known_value() {
        // Computed independently with Python's hmac/base64:
        // base64(hmac_sha256(b"0123456789abcdefghijklmn", b"msg_1.1700000000.{\"a\":1}"))
        let s =
            WebhookSigner::from_secret(SECRET)
                .unwrap()
                .sign("msg_1", 1_700_000_000, "{\"a\":1}");
        assert_eq!(s, KNOWN_SIGNATURE);
    }

    const KNOWN_SIGNATURE: &str = "v1,4ezmuBq3l8hTsGAKr/4Th11OaqFEh0xQLo+s2Ky0inM=";

    fn config() -> WebhookConfig {
        WebhookConfig {
            url: "http://127.0.0.1:9/hook".into(),
            secret: SECRET.into(),
            ..Default::default()
        }
    }

    #[test]
    fn construction_validates_url_headers_and_template() {
        let t = Duration::from_secs(1);
        assert_eq!(
            WebhookDelivery::new(
                &WebhookConfig {
                    url: "".into(),
                    ..config()
                },
                t
            )
            .unwrap_err()
            .field,
            "webhook.url"
        );
        assert_eq!(
            WebhookDelivery::new(
                &WebhookConfig {
                    url: "file:///x".into(),
                    ..config()
                },
                t
            )
            .unwrap_err()
            .field,
            "webhook.url"
        );
        let bad_header = WebhookConfig {
            headers: vec![("Bad Name".into(), "x".into())],
            ..config()
        };
        assert_eq!(
            WebhookDelivery::new(&bad_header, t).unwrap_err().field,
            "webhook.headers"
        );
        let reserved = WebhookConfig {
            headers: vec![("Webhook-Signature".into(), "x".into())],
            ..config()
        };
        assert_eq!(
            WebhookDelivery::new(&reserved, t).unwrap_err().field,
            "webhook.headers"
        );
        let crlf = WebhookConfig {
            headers: vec![("X-A".into(), "a\r\nX-B: b".into())],
            ..config()
        };
        assert_eq!(
            WebhookDelivery::new(&crlf, t).unwrap_err().field,
            "webhook.headers"
        );
        let tpl = WebhookConfig {
            template: Some("{\"x\": {otp}".into()),
            ..config()
        };
        assert_eq!(
            WebhookDelivery::new(&tpl, t).unwrap_err().field,
            "webhook.template"
        );
        assert!(WebhookDelivery::new(&config(), t).is_ok());
    }
}
