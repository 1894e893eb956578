//! # otp-delivery
//!
//! Gets a one-time code to its owner (SPEC §7). The service holds an
//! `Arc<dyn` [`Delivery`]`>` built once at start-up by [`build_delivery`]
//! from a typed [`DeliveryConfig`]; this crate never reads the environment.
//!
//! # Layout
//! - [`Delivery`]: the async trait every backend implements; an
//!   [`OtpMessage`] in (identity, the zeroizing [`otp_core::OtpCode`], ttl, expiry), a
//!   [`DeliveryReceipt`] or a classified [`DeliveryError`] out.
//! - [`RetryingDelivery`] and [`DeliveryRetryPolicy`]: per-attempt timeout and
//!   bounded retries with backoff for transient failures.
//! - Backends: [`ConsoleDelivery`] (development), [`NoopDelivery`]
//!   (benchmarks), `SmtpDelivery` (feature `smtp`), `TwilioDelivery`
//!   (feature `twilio`), `WebhookDelivery` (feature `webhook`), and
//!   [`AutoRouter`] for `DELIVERY_BACKEND=auto`.
//! - [`config`]: one plain struct per backend; each field's docs name the
//!   environment variable the binary reads for it.
//! - [`TextTemplate`] and [`JsonTemplate`]: the message templates.
//!
//! # Secrets
//! The code is printed by the console backend only. Network backends never
//! put it in a log line or an error; provider answers that echo it are
//! masked. `OtpCode`'s `Debug` is redacted and it has no `Display`.

pub mod config;
mod error;
#[cfg(any(feature = "twilio", feature = "webhook"))]
mod http;
mod local;
mod message;
mod retry;
mod router;
#[cfg(feature = "smtp")]
mod smtp;
mod template;
#[cfg(feature = "twilio")]
mod twilio;
#[cfg(feature = "webhook")]
mod webhook;

use async_trait::async_trait;
use otp_core::IdentityKind;

pub use config::{
    build_delivery, BackendKind, DeliveryConfig, SmtpConfig, SmtpTls, TwilioConfig, WebhookConfig,
};
pub use error::{ConfigError, DeliveryError, DeliveryErrorKind};
pub use local::{ConsoleDelivery, NoopDelivery};
pub use message::{new_message_id, rfc3339_utc, DeliveryReceipt, OtpMessage};
pub use retry::{
    DeliveryRetryPolicy, RetryingDelivery, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS, MAX_ATTEMPTS, MAX_TIMEOUT_SECONDS,
};
pub use router::AutoRouter;
#[cfg(feature = "smtp")]
pub use smtp::SmtpDelivery;
pub use template::{html_escape, JsonTemplate, TextTemplate};
#[cfg(feature = "twilio")]
pub use twilio::TwilioDelivery;
#[cfg(feature = "webhook")]
pub use webhook::{WebhookDelivery, WebhookPoster, WebhookSigner, MIN_WEBHOOK_KEY_BYTES};

/// A way to get a code to its owner.
///
/// Implementations make one attempt per call and classify failures
/// ([`DeliveryError::is_transient`]); [`RetryingDelivery`] adds the timeout
/// and the retries. `deliver` must never block the async runtime.
#[async_trait]
pub trait Delivery: Send + Sync + std::fmt::Debug {
    /// A short stable name for logs and metrics (`console`, `smtp`, …).
    fn name(&self) -> &'static str;

    /// The name of the backend that delivers to identities of `kind`, for
    /// the `backend` label of the delivery metrics. Defaults to
    /// [`Delivery::name`]; a delivery that routes by kind ([`AutoRouter`])
    /// names the backend it routes `kind` to.
    fn name_for(&self, kind: IdentityKind) -> &'static str {
        let _ = kind;
        self.name()
    }

    /// Returns true if and only if this delivery can reach identities of
    /// `kind` (SMTP: email only; Twilio: phone only). Lets the service
    /// refuse an unsuitable identity before issuing a code. Defaults to all.
    fn supports(&self, kind: IdentityKind) -> bool {
        let _ = kind;
        true
    }

    /// Returns true if and only if an attempt that did not finish within the
    /// timeout may be repeated without risk of delivering twice.
    /// [`RetryingDelivery`] asks before retrying such an attempt. Defaults to
    /// true; Twilio answers false (a request already written may have been
    /// accepted, and an SMS cannot be de-duplicated), the webhook true (every
    /// retry carries the same `webhook-id`, so receivers de-duplicate).
    fn retries_after_timeout(&self) -> bool {
        true
    }

    /// Delivers `message` once.
    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError>;
}
