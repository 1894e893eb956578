//! SMTP backend (feature `smtp`): lettre's async transport on tokio with
//! rustls (ring). One multipart/alternative message (plain text + HTML) per
//! code, to the email identity.
//!
//! Header injection is impossible by construction: the recipient must parse
//! as a lettre [`Address`] (no CR/LF, no commas, no display-name tricks), the
//! subject template is rejected at start-up if it holds a control character,
//! and the only values placed in it are digits.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use otp_core::IdentityKind;
use tokio::sync::OnceCell;

use crate::config::{SmtpConfig, SmtpTls};
use crate::error::{mask_code, ConfigError, DeliveryError, DeliveryErrorKind};
use crate::message::{DeliveryReceipt, OtpMessage};
use crate::template::TextTemplate;
use crate::Delivery;

const BACKEND: &str = "smtp";

/// Sends codes by email. Build it with [`SmtpDelivery::new`] (or through
/// [`build_delivery`](crate::build_delivery), which adds retries).
pub struct SmtpDelivery {
    host: String,
    port: u16,
    tls_mode: SmtpTls,
    tls: Tls,
    credentials: Option<Credentials>,
    timeout: Duration,
    from: Mailbox,
    subject: TextTemplate,
    text: TextTemplate,
    html: Option<TextTemplate>,
    // lettre's pooled transport spawns its cleanup task on creation, which
    // needs a running tokio runtime; it is therefore made on first use so
    // that configuration can be validated before the runtime starts.
    transport: OnceCell<AsyncSmtpTransport<Tokio1Executor>>,
}

impl std::fmt::Debug for SmtpDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpDelivery")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls_mode)
            .field("authenticated", &self.credentials.is_some())
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl SmtpDelivery {
    /// Validates `config` and prepares the transport. `timeout` bounds each
    /// SMTP command (the retrying wrapper bounds the whole attempt too).
    /// Reads `smtp.ca_file` once, here, at start-up.
    pub fn new(config: &SmtpConfig, timeout: Duration) -> Result<Self, ConfigError> {
        let host = relay_host(config)?;
        let from = sender(&config.from)?;
        let credentials = credentials(config)?;
        if credentials.is_some() && config.tls == SmtpTls::None {
            tracing::warn!(
                backend = BACKEND,
                "smtp.tls=none with smtp.username set: the password crosses the network in clear text"
            );
        }
        let tls = tls(config, host)?;
        let subject = TextTemplate::parse(
            &config.subject_template,
            "smtp.subject_template",
            false,
            true,
        )?;
        let text = TextTemplate::parse(&config.body_template, "smtp.body_template", true, false)?;
        let html = match &config.html_template {
            Some(t) => Some(TextTemplate::parse(t, "smtp.html_template", true, false)?),
            None => None,
        };
        Ok(SmtpDelivery {
            host: host.to_owned(),
            port: config.port,
            tls_mode: config.tls,
            tls,
            credentials,
            timeout,
            from,
            subject,
            text,
            html,
            transport: OnceCell::new(),
        })
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
                .port(self.port)
                .tls(self.tls.clone())
                .timeout(Some(self.timeout));
        if let Some(c) = &self.credentials {
            builder = builder.credentials(c.clone());
        }
        builder.build()
    }

    /// Builds the email for `message` (public for tests and previews).
    pub fn build_message(&self, message: &OtpMessage) -> Result<Message, DeliveryError> {
        if message.kind() != IdentityKind::Email {
            return Err(DeliveryError::new(
                BACKEND,
                DeliveryErrorKind::Recipient,
                format!(
                    "a {} identity cannot receive email",
                    message.kind().as_str()
                ),
            ));
        }
        let address: Address = message.identity().as_str().parse().map_err(|e| {
            DeliveryError::new(
                BACKEND,
                DeliveryErrorKind::Recipient,
                format!("the identity is not a deliverable email address ({e})"),
            )
        })?;
        let text = self.text.render(message);
        let html = match &self.html {
            Some(t) => t.render_html(message),
            None => text_to_html(&text),
        };
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, address))
            .subject(self.subject.render(message))
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| {
                DeliveryError::new(
                    BACKEND,
                    DeliveryErrorKind::Other,
                    format!("building the email: {e}"),
                )
            })
    }

    /// Connects, secures the connection per `SMTP_TLS`, sends EHLO and
    /// authenticates when credentials are set; sends no mail (lettre's
    /// `test_connection`). For `otp-server probe`.
    pub async fn test_connection(&self) -> Result<(), DeliveryError> {
        let transport = self
            .transport
            .get_or_init(|| async { self.transport() })
            .await;
        match transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeliveryError::new(
                BACKEND,
                DeliveryErrorKind::Other,
                format!(
                    "{}:{}: the connection did not answer NOOP",
                    self.host, self.port
                ),
            )),
            Err(e) => Err(self.classify(&e, "")),
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error, code: &str) -> DeliveryError {
        let text = mask_code(&e.to_string(), code);
        let status = e.status().map(u16::from);
        let kind = if e.is_transient() {
            DeliveryErrorKind::Unavailable
        } else if e.is_permanent() {
            DeliveryErrorKind::Rejected
        } else if e.is_timeout() {
            DeliveryErrorKind::Timeout
        } else if e.is_tls() {
            DeliveryErrorKind::Tls
        } else if self.tls_mode != SmtpTls::None && looks_like_tls_failure(&text) {
            // rustls failures reach us wrapped as connection errors.
            DeliveryErrorKind::Tls
        } else if e.is_client() || e.is_response() {
            DeliveryErrorKind::Other
        } else {
            DeliveryErrorKind::Connect
        };
        let detail = match kind {
            DeliveryErrorKind::Tls => format!(
                "TLS with {}:{} failed (smtp.tls={}; is the port right for this mode?): {text}",
                self.host,
                self.port,
                self.tls_mode.as_str()
            ),
            _ => format!("{}:{}: {text}", self.host, self.port),
        };
        let err = DeliveryError::new(BACKEND, kind, detail);
        match status {
            Some(s) => err.with_status(s),
            None => err,
        }
    }
}

/// The relay's host name, trimmed, once `smtp.host` and `smtp.port` are set.
fn relay_host(config: &SmtpConfig) -> Result<&str, ConfigError> {
    let host = config.host.trim();
    if host.is_empty() {
        return Err(ConfigError::new(
            "smtp.host",
            "must be set to the SMTP relay's host name",
        ));
    }
    if config.port == 0 {
        return Err(ConfigError::new(
            "smtp.port",
            "must be a port number 1-65535",
        ));
    }
    Ok(host)
}

/// The `smtp.from` mailbox.
fn sender(from: &str) -> Result<Mailbox, ConfigError> {
    let from = from.trim();
    if from.is_empty() {
        return Err(ConfigError::new(
            "smtp.from",
            "must be set to the sender address, e.g. 'Example <no-reply@example.com>'",
        ));
    }
    from.parse()
        .map_err(|e| ConfigError::new("smtp.from", format!("is not a valid mailbox ({e})")))
}

/// The login, if any: `smtp.username` and `smtp.password` come together.
fn credentials(config: &SmtpConfig) -> Result<Option<Credentials>, ConfigError> {
    match (&config.username, &config.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::new(u.clone(), p.clone()))),
        (Some(u), None) if !u.is_empty() => Err(ConfigError::new(
            "smtp.password",
            "must be set when smtp.username is set",
        )),
        (None, Some(p)) if !p.is_empty() => Err(ConfigError::new(
            "smtp.username",
            "must be set when smtp.password is set",
        )),
        _ => Ok(None),
    }
}

/// lettre's TLS settings for `smtp.tls`, trusting `smtp.ca_file` as well
/// when it is set; the certificate must carry `host`.
fn tls(config: &SmtpConfig, host: &str) -> Result<Tls, ConfigError> {
    let mode = config.tls;
    if mode == SmtpTls::None {
        return Ok(Tls::None);
    }
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = &config.ca_file {
        builder = builder.add_root_certificate(ca_certificate(path)?);
    }
    let params = builder
        .build_rustls()
        .map_err(|e| ConfigError::new("smtp.ca_file", format!("TLS setup failed ({e})")))?;
    Ok(if mode == SmtpTls::Tls {
        Tls::Wrapper(params)
    } else {
        Tls::Required(params)
    })
}

/// Reads the PEM file `smtp.ca_file` names.
fn ca_certificate(path: &Path) -> Result<Certificate, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError::new(
            "smtp.ca_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::new(
            "smtp.ca_file",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Certificate::from_pem(&pem).map_err(|e| {
        ConfigError::new(
            "smtp.ca_file",
            format!("{} is not valid PEM ({e})", path.display()),
        )
    })
}

fn looks_like_tls_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "tls",
        "certificate",
        "invalid message",
        "corrupt",
        "handshake",
        "alert",
        "starttls",
    ]
    .iter()
    .any(|needle| t.contains(needle))
}

/// The default HTML part: the rendered text, escaped, in a small document.
fn text_to_html(text: &str) -> String {
    let body = crate::template::html_escape(text).replace('\n', "<br>\n");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body style=\"font-family: sans-serif\">\n<p>{body}</p>\n</body></html>\n"
    )
}

#[async_trait]
impl Delivery for SmtpDelivery {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn supports(&self, kind: IdentityKind) -> bool {
        kind == IdentityKind::Email
    }

    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        let email = self.build_message(message)?;
        let transport = self
            .transport
            .get_or_init(|| async { self.transport() })
            .await;
        let code = message.code().as_str();
        match transport.send(email).await {
            Ok(response) => Ok(DeliveryReceipt {
                backend: BACKEND,
                provider_id: Some(mask_code(
                    &response.message().collect::<Vec<_>>().join(" "),
                    code,
                )),
                attempts: 1,
            }),
            Err(e) => Err(self.classify(&e, code)),
        }
    }
}
