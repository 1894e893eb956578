//! Error types: [`DeliveryError`] for a failed delivery (classified transient
//! or permanent), [`ConfigError`] for a configuration that cannot work (it
//! names the configuration field to fix).
//!
//! None of them ever holds an OTP code or a request body: the network
//! backends build their details from status codes, provider error codes and
//! the provider's own error message (with the code masked if it echoes it).

use std::fmt;
use std::time::Duration;

/// What went wrong in a delivery, and so whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryErrorKind {
    /// No connection could be made (refused, DNS, reset). Transient.
    Connect,
    /// The attempt did not finish within `DELIVERY_TIMEOUT_SECONDS`. Transient.
    Timeout,
    /// The provider answered with a temporary failure (HTTP 5xx, 408, 429;
    /// SMTP 4xx). Transient.
    Unavailable,
    /// The provider refused the message (HTTP 4xx; SMTP 5xx). Permanent.
    Rejected,
    /// The identity cannot be delivered to by this backend (not an email for
    /// SMTP, not a phone number for Twilio, an invalid mailbox). Permanent.
    Recipient,
    /// TLS could not be established (no TLS offered, certificate not
    /// trusted). A configuration problem, so permanent.
    Tls,
    /// Anything else (malformed provider answer, local I/O). Permanent.
    Other,
}

impl DeliveryErrorKind {
    /// Returns true if and only if retrying the same message may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Connect | Self::Timeout | Self::Unavailable)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::Unavailable => "temporarily unavailable",
            Self::Rejected => "rejected",
            Self::Recipient => "recipient not deliverable",
            Self::Tls => "TLS failed",
            Self::Other => "failed",
        }
    }
}

/// A failed delivery. Maps to HTTP 502 `delivery_failed` in otp-http.
///
/// `Display` reads like
/// `twilio delivery rejected (permanent, 1 attempt): HTTP 400, Twilio error 21211: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    backend: &'static str,
    kind: DeliveryErrorKind,
    detail: String,
    status: Option<u16>,
    attempts: u32,
    retryable: bool,
}

impl DeliveryError {
    /// A new error from `backend` (after one attempt).
    pub fn new(backend: &'static str, kind: DeliveryErrorKind, detail: impl Into<String>) -> Self {
        DeliveryError {
            backend,
            kind,
            detail: detail.into(),
            status: None,
            attempts: 1,
            retryable: kind.is_transient(),
        }
    }

    /// Marks a failure that happened after the request was fully sent (a
    /// timeout waiting for the answer, a 5xx): the provider may have accepted
    /// it, so [`RetryingDelivery`](crate::RetryingDelivery) does not retry it
    /// even though it is transient — a retry could deliver the code twice.
    pub fn after_send(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// A timeout after `after`.
    pub fn timeout(backend: &'static str, after: Duration) -> Self {
        Self::new(
            backend,
            DeliveryErrorKind::Timeout,
            format!("no answer within {} ms", after.as_millis()),
        )
    }

    /// Attaches the provider's status (HTTP status or SMTP reply code).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records how many attempts were made before giving up.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The backend that failed.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The classification.
    pub fn kind(&self) -> DeliveryErrorKind {
        self.kind
    }

    /// Returns true if and only if retrying may succeed (see [`DeliveryErrorKind::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// Returns true if and only if the failure is transient and retrying
    /// cannot deliver the message twice (not marked [`after_send`](Self::after_send)).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The provider's status code, when it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Attempts made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Human-readable detail (never contains the code).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} delivery {} ({}, {} attempt{}): {}",
            self.backend,
            self.kind.as_str(),
            if self.is_transient() {
                "transient"
            } else {
                "permanent"
            },
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.detail
        )
    }
}

impl std::error::Error for DeliveryError {}

/// A delivery configuration that cannot work. Raised at start-up by
/// [`build_delivery`](crate::build_delivery); `field` is the configuration
/// field to fix, as `<backend>.<field>` (`smtp.host`, `retry.timeout`,
/// `webhook.secret`) or `delivery.backend`. This crate never names
/// environment variables: the binary maps each field to its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// The field, e.g. `smtp.host` ([`SmtpConfig::host`](crate::SmtpConfig::host)).
    pub field: &'static str,
    /// What is wrong with it (never contains a secret value); other fields
    /// it mentions are written the same way.
    pub reason: String,
}

impl ConfigError {
    /// A new error about `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }
}

/// Replaces every occurrence of `code` in `text` by `[REDACTED]`: used on
/// text a provider sends back, in case it echoes the message.
#[cfg(any(feature = "smtp", feature = "twilio", test))]
pub(crate) fn mask_code(text: &str, code: &str) -> String {
    if code.is_empty() {
        return text.to_owned();
    }
    text.replace(code, "[REDACTED]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_backend_class_and_attempts() {
        let e =
            DeliveryError::new("twilio", DeliveryErrorKind::Rejected, "HTTP 400").with_status(400);
        assert_eq!(
            e.to_string(),
            "twilio delivery rejected (permanent, 1 attempt): HTTP 400"
        );
        let e = DeliveryError::timeout("smtp", Duration::from_millis(250)).with_attempts(3);
        assert_eq!(
            e.to_string(),
            "smtp delivery timed out (transient, 3 attempts): no answer within 250 ms"
        );
    }

    #[test]
    fn classification() {
        assert!(DeliveryErrorKind::Connect.is_transient());
        assert!(DeliveryErrorKind::Timeout.is_transient());
        assert!(DeliveryErrorKind::Unavailable.is_transient());
        assert!(!DeliveryErrorKind::Rejected.is_transient());
        assert!(!DeliveryErrorKind::Recipient.is_transient());
        assert!(!DeliveryErrorKind::Tls.is_transient());
    }

    #[test]
    fn config_error_names_the_field() {
        let e = ConfigError::new("smtp.host", "must be set for the smtp backend");
        assert_eq!(e.to_string(), "smtp.host: must be set for the smtp backend");
    }

    #[test]
    fn mask_code_masks_every_occurrence() {
        assert_eq!(
            mask_code("a 123456 b 123456", "123456"),
            "a [REDACTED] b [REDACTED]"
        );
    }
}
