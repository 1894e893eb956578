//! Twilio backend (feature `twilio`): one form POST to the Messages
//! resource, `{api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! with HTTP Basic auth (account SID, auth token), over reqwest + rustls.
//!
//! 201 gives a receipt with the message SID. Twilio's error JSON
//! (`code`, `message`, `more_info`, `status`) becomes one warning log line and
//! the error detail; 4xx is permanent, 5xx and 429 transient.
//!
//! # Retries never send twice
//! An SMS cannot be recalled or de-duplicated by its recipient, so an attempt
//! is repeated only when Twilio cannot have accepted it: the connection was
//! never made, or Twilio refused it unprocessed (429, 408). Once the form
//! was written — a timeout waiting for the answer, a reset after sending, a
//! 5xx — the failure is returned after that one attempt.

use std::time::Duration;

use async_trait::async_trait;
use otp_core::IdentityKind;
use serde::Deserialize;

use crate::config::TwilioConfig;
use crate::error::{mask_code, ConfigError, DeliveryError, DeliveryErrorKind};
use crate::http::{http_client, status_kind, transport_error};
use crate::message::{DeliveryReceipt, OtpMessage};
use crate::template::TextTemplate;
use crate::Delivery;

const BACKEND: &str = "twilio";

/// Sends codes by SMS through Twilio.
pub struct TwilioDelivery {
    client: reqwest::Client,
    url: reqwest::Url,
    account_sid: String,
    auth_token: String,
    sender: Sender,
    body: TextTemplate,
}

#[derive(Debug, Clone)]
enum Sender {
    From(String),
    MessagingService(String),
}

impl std::fmt::Debug for TwilioDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioDelivery")
            .field("url", &self.url.as_str())
            .field("account_sid", &self.account_sid)
            .field("sender", &self.sender)
            .finish()
    }
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
    more_info: Option<String>,
    status: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct TwilioMessage {
    sid: Option<String>,
}

impl TwilioDelivery {
    /// Validates `config`; `timeout` bounds each HTTP request.
    pub fn new(config: &TwilioConfig, timeout: Duration) -> Result<Self, ConfigError> {
        let sid = config.account_sid.trim();
        if sid.is_empty() {
            return Err(ConfigError::new(
                "twilio.account_sid",
                "must be set to your Account SID (AC…)",
            ));
        }
        if !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(
                "twilio.account_sid",
                "must be letters and digits only (AC…)",
            ));
        }
        if config.auth_token.trim().is_empty() {
            return Err(ConfigError::new("twilio.auth_token", "must be set"));
        }
        let sender = sender(config)?;
        let base = config.api_base.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"))
            .map_err(|e| {
            ConfigError::new("twilio.api_base", format!("is not a valid URL ({e})"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "twilio.api_base",
                "must be an http:// or https:// URL",
            ));
        }
        let body = TextTemplate::parse(&config.body_template, "twilio.body_template", true, false)?;
        let client = http_client(timeout).map_err(|e| ConfigError::new("twilio.api_base", e))?;
        Ok(TwilioDelivery {
            client,
            url,
            account_sid: sid.to_owned(),
            auth_token: config.auth_token.trim().to_owned(),
            sender,
            body,
        })
    }

    /// Posts the form for `message`; a failure is retryable only when the
    /// connection was never made.
    async fn post(&self, message: &OtpMessage) -> Result<reqwest::Response, DeliveryError> {
        let body = zeroize::Zeroizing::new(self.body.render(message));
        let (sender_field, sender_value) = match &self.sender {
            Sender::From(f) => ("From", f.as_str()),
            Sender::MessagingService(s) => ("MessagingServiceSid", s.as_str()),
        };
        let form = [
            ("To", message.identity().as_str()),
            (sender_field, sender_value),
            ("Body", body.as_str()),
        ];
        self.client
            .post(self.url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                // Only a connection that was never made is safe to retry:
                // after that the form may have been written and accepted.
                let connect = e.is_connect();
                let err = transport_error(BACKEND, e);
                if connect {
                    err
                } else {
                    err.after_send()
                }
            })
    }
}

/// Who sends: `twilio.messaging_service_sid`, else `twilio.from_number`
/// (which may hold a Messaging Service SID too).
fn sender(config: &TwilioConfig) -> Result<Sender, ConfigError> {
    let service = config
        .messaging_service_sid
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let from = config
        .from_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    Ok(match (service, from) {
        (Some(mg), _) => {
            if !mg.starts_with("MG") {
                return Err(ConfigError::new(
                    "twilio.messaging_service_sid",
                    "must start with MG",
                ));
            }
            Sender::MessagingService(mg.to_owned())
        }
        (None, Some(f)) if f.starts_with("MG") => Sender::MessagingService(f.to_owned()),
        (None, Some(f)) => {
            if f.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    "twilio.from_number",
                    "must not contain control characters",
                ));
            }
            Sender::From(f.to_owned())
        }
        (None, None) => {
            return Err(ConfigError::new(
                "twilio.from_number",
                "must be set to a sender number (+1…) or a Messaging Service SID (MG…)",
            ))
        }
    })
}

impl TwilioDelivery {
    /// Looks the account up (`GET {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}.json`
    /// with Basic auth), sending nothing. Returns the account's status
    /// (`active`, `suspended`, …). A 401 or 403 names the credentials. For
    /// `otp-server probe`.
    pub async fn check_account(&self) -> Result<String, DeliveryError> {
        #[derive(Deserialize)]
        struct Account {
            status: Option<String>,
        }
        let url = self
            .url
            .join(&format!("../{}.json", self.account_sid))
            .map_err(|e| DeliveryError::new(BACKEND, DeliveryErrorKind::Other, e.to_string()))?;
        let response = self
            .client
            .get(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .send()
            .await
            .map_err(|e| transport_error(BACKEND, e))?;
        let status = response.status();
        if status.is_success() {
            let account: Account = response.json().await.map_err(|e| {
                DeliveryError::new(
                    BACKEND,
                    DeliveryErrorKind::Other,
                    format!("the account lookup answered no account JSON ({e})"),
                )
            })?;
            return Ok(account.status.unwrap_or_else(|| "unknown".into()));
        }
        let detail = match status.as_u16() {
            401 | 403 => format!(
                "HTTP {}: authentication failed; check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
                status.as_u16()
            ),
            404 => "HTTP 404: no such account; check TWILIO_ACCOUNT_SID".to_owned(),
            s => format!("HTTP {s} from the account lookup"),
        };
        Err(DeliveryError::new(BACKEND, status_kind(status), detail).with_status(status.as_u16()))
    }
}

#[async_trait]
impl Delivery for TwilioDelivery {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn supports(&self, kind: IdentityKind) -> bool {
        kind == IdentityKind::Phone
    }

    /// False: once the form was written Twilio may have sent the SMS, and an
    /// SMS cannot be taken back or de-duplicated by the recipient.
    fn retries_after_timeout(&self) -> bool {
        false
    }

    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        if message.kind() != IdentityKind::Phone {
            return Err(DeliveryError::new(
                BACKEND,
                DeliveryErrorKind::Recipient,
                format!("a {} identity cannot receive SMS", message.kind().as_str()),
            ));
        }
        let response = self.post(message).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(BACKEND, e).after_send())?;
        if status.is_success() {
            Ok(accepted(message, &bytes))
        } else {
            Err(refused(message, status, &bytes))
        }
    }
}

/// The receipt of a 2xx answer, with the message SID when Twilio gave one.
fn accepted(message: &OtpMessage, bytes: &[u8]) -> DeliveryReceipt {
    let sid = serde_json::from_slice::<TwilioMessage>(bytes)
        .ok()
        .and_then(|m| m.sid);
    tracing::debug!(
        backend = BACKEND,
        message_id = message.id(),
        sid = sid.as_deref().unwrap_or("-"),
        "Twilio accepted the message"
    );
    DeliveryReceipt {
        backend: BACKEND,
        provider_id: sid,
        attempts: 1,
    }
}

/// The error of any other answer: one warning line, Twilio's error (the
/// code masked) as its detail.
fn refused(message: &OtpMessage, status: reqwest::StatusCode, bytes: &[u8]) -> DeliveryError {
    let code = message.code().as_str();
    let kind = status_kind(status);
    let detail = match serde_json::from_slice::<TwilioError>(bytes) {
        Ok(err) => {
            let twilio_message = mask_code(err.message.as_deref().unwrap_or("no message"), code);
            let more_info = err.more_info.as_deref().unwrap_or("-");
            let twilio_code = err.code.unwrap_or_default();
            tracing::warn!(
                backend = BACKEND,
                message_id = message.id(),
                http_status = status.as_u16(),
                twilio_status = err.status.unwrap_or(status.as_u16()),
                twilio_code,
                twilio_message = ?twilio_message,
                more_info,
                transient = kind.is_transient(),
                "Twilio refused the message"
            );
            format!(
                "HTTP {}, Twilio error {twilio_code}: {twilio_message} ({more_info})",
                status.as_u16()
            )
        }
        Err(_) => {
            tracing::warn!(
                backend = BACKEND,
                message_id = message.id(),
                http_status = status.as_u16(),
                transient = kind.is_transient(),
                "Twilio refused the message (no Twilio error body)"
            );
            format!("HTTP {} without a Twilio error body", status.as_u16())
        }
    };
    let error = DeliveryError::new(BACKEND, kind, detail).with_status(status.as_u16());
    // A 5xx answers a request Twilio received in full: it may or may not
    // have been processed, so it is not retried. 429 and 408 say the
    // request was refused unprocessed; those stay retryable.
    if status.is_server_error() {
        error.after_send()
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TwilioConfig {
        TwilioConfig {
            account_sid: "AC123".into(),
            auth_token: "tok".into(),
            from_number: Some("+15005550006".into()),
            ..Default::default()
        }
    }

    #[test]
    fn validation_names_fields() {
        let t = Duration::from_secs(1);
        let e = TwilioDelivery::new(
            &TwilioConfig {
                account_sid: "".into(),
                ..config()
            },
            t,
        )
        .unwrap_err();
        assert_eq!(e.field, "twilio.account_sid");
        let e = TwilioDelivery::new(
            &TwilioConfig {
                auth_token: " ".into(),
                ..config()
            },
            t,
        )
        .unwrap_err();
        assert_eq!(e.field, "twilio.auth_token");
        let e = TwilioDelivery::new(
            &TwilioConfig {
                from_number: None,
                ..config()
            },
            t,
        )
        .unwrap_err();
        assert_eq!(e.field, "twilio.from_number");
        let e = TwilioDelivery::new(
            &TwilioConfig {
                api_base: "ftp://x".into(),
                ..config()
            },
            t,
        )
        .unwrap_err();
        assert_eq!(e.field, "twilio.api_base");
        let e = TwilioDelivery::new(
            &TwilioConfig {
                body_template: "hi".into(),
                ..config()
            },
            t,
        )
        .unwrap_err();
        assert_eq!(e.field, "twilio.body_template");
    }

    #[test]
    fn mg_sender_becomes_messaging_service() {
        let d = TwilioDelivery::new(
            &TwilioConfig {
                from_number: Some("MG42".into()),
                ..config()
            },
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(matches!(d.sender, Sender::MessagingService(ref s) if s == "MG42"));
        assert_eq!(
            d.url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
    }
}
