//! The retrying sender: a per-attempt timeout and bounded retries with
//! exponential backoff for transient failures, wrapped around any backend.
//!
//! Everything here awaits (`tokio::time::timeout`, `tokio::time::sleep`);
//! nothing blocks the runtime.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use otp_core::IdentityKind;

use crate::error::{ConfigError, DeliveryError};
use crate::message::{DeliveryReceipt, OtpMessage};
use crate::Delivery;

/// Default per-attempt timeout, seconds (`DELIVERY_TIMEOUT_SECONDS`).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
/// Default number of attempts, first one included (`DELIVERY_MAX_ATTEMPTS`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default wait before the first retry, milliseconds (`DELIVERY_RETRY_BACKOFF_MS`).
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 250;
/// Longest per-attempt timeout accepted, seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 300;
/// Most attempts accepted.
pub const MAX_ATTEMPTS: u32 = 10;

/// How long one attempt may take and how often transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRetryPolicy {
    /// Per-attempt timeout (`DELIVERY_TIMEOUT_SECONDS`, whole seconds in the
    /// environment). Defaults to 10 s.
    pub timeout: Duration,
    /// Attempts in total, the first included, 1..=10
    /// (`DELIVERY_MAX_ATTEMPTS`). 1 disables retries. Defaults to 3.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further retry, with
    /// random jitter down to half of it (`DELIVERY_RETRY_BACKOFF_MS`).
    /// Defaults to 250 ms.
    pub initial_backoff: Duration,
    /// Ceiling of the wait between attempts. Defaults to 2 s.
    pub max_backoff: Duration,
}

impl Default for DeliveryRetryPolicy {
    fn default() -> Self {
        DeliveryRetryPolicy {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Duration::from_millis(DEFAULT_INITIAL_BACKOFF_MS),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl DeliveryRetryPolicy {
    /// Checks the bounds; errors name the field (`retry.timeout`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(MAX_TIMEOUT_SECONDS) {
            return Err(ConfigError::new(
                "retry.timeout",
                format!("must be between 1 and {MAX_TIMEOUT_SECONDS} seconds"),
            ));
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(ConfigError::new(
                "retry.max_attempts",
                format!("must be between 1 and {MAX_ATTEMPTS}"),
            ));
        }
        if self.initial_backoff > Duration::from_secs(60)
            || self.max_backoff > Duration::from_secs(60)
        {
            return Err(ConfigError::new(
                "retry.initial_backoff",
                "must be at most 60000 ms",
            ));
        }
        Ok(())
    }

    /// The longest a delivery can take under this policy: every attempt
    /// timing out plus every backoff at its ceiling.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.max_attempts.max(1);
        let mut total = self.timeout * attempts;
        let mut backoff = self.initial_backoff;
        for _ in 1..attempts {
            total += backoff.min(self.max_backoff);
            backoff = backoff.saturating_mul(2);
        }
        total
    }
}

/// Wraps a backend with [`DeliveryRetryPolicy`]: each attempt is bounded by the
/// timeout; transient failures (connect errors, timeouts, 5xx/429, SMTP 4xx)
/// are retried with backoff unless the backend marked them
/// [`after_send`](DeliveryError::after_send) or refuses
/// [retries after a timeout](Delivery::retries_after_timeout) (Twilio: a
/// request already written may have sent the SMS); permanent ones (4xx, SMTP
/// 5xx, bad recipient, TLS) are returned at once.
#[derive(Debug, Clone)]
pub struct RetryingDelivery {
    inner: Arc<dyn Delivery>,
    policy: DeliveryRetryPolicy,
}

impl RetryingDelivery {
    /// Wraps `inner`. The policy should have been [validated](DeliveryRetryPolicy::validate).
    pub fn new(inner: Arc<dyn Delivery>, policy: DeliveryRetryPolicy) -> Self {
        RetryingDelivery { inner, policy }
    }

    /// The policy in force.
    pub fn policy(&self) -> &DeliveryRetryPolicy {
        &self.policy
    }
}

#[async_trait]
impl Delivery for RetryingDelivery {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn name_for(&self, kind: IdentityKind) -> &'static str {
        self.inner.name_for(kind)
    }

    fn supports(&self, kind: IdentityKind) -> bool {
        self.inner.supports(kind)
    }

    fn retries_after_timeout(&self) -> bool {
        self.inner.retries_after_timeout()
    }

    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        let backend = self.inner.name();
        let max = self.policy.max_attempts.max(1);
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let outcome =
                tokio::time::timeout(self.policy.timeout, self.inner.deliver(message)).await;
            let error = match outcome {
                Ok(Ok(mut receipt)) => {
                    receipt.attempts = attempt;
                    tracing::debug!(
                        backend,
                        message_id = message.id(),
                        kind = message.kind().as_str(),
                        attempt,
                        "delivered"
                    );
                    return Ok(receipt);
                }
                Ok(Err(e)) => e,
                Err(_elapsed) => {
                    let e = DeliveryError::timeout(backend, self.policy.timeout);
                    if self.inner.retries_after_timeout() {
                        e
                    } else {
                        e.after_send()
                    }
                }
            };
            let error = error.with_attempts(attempt);
            if !error.is_retryable() || attempt >= max {
                tracing::warn!(backend, message_id = message.id(), kind = message.kind().as_str(), error = %error, "delivery failed");
                return Err(error);
            }
            let wait = jitter(backoff.min(self.policy.max_backoff));
            tracing::info!(
                backend,
                message_id = message.id(),
                attempt,
                retry_in_ms = wait.as_millis() as u64,
                error = %error,
                "transient delivery failure, retrying"
            );
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// A random duration in `[d/2, d]` so that many failing requests do not
/// retry in lock-step.
fn jitter(d: Duration) -> Duration {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    let frac = match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    };
    d.mul_f64(0.5 + 0.5 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DeliveryErrorKind;
    use otp_core::Identity;
    use otp_core::OtpCode;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Fails with the scripted kinds in order, then succeeds; counts calls.
    #[derive(Debug)]
    struct Scripted {
        script: Mutex<Vec<Option<DeliveryErrorKind>>>,
        calls: AtomicU32,
        hang: bool,
    }

    #[async_trait]
    impl Delivery for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        async fn deliver(&self, _m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            let next = {
                let mut s = self.script.lock().unwrap();
                if s.is_empty() {
                    None
                } else {
                    s.remove(0)
                }
            };
            match next {
                Some(kind) => Err(DeliveryError::new("scripted", kind, "scripted failure")),
                None => Ok(DeliveryReceipt {
                    backend: "scripted",
                    provider_id: None,
                    attempts: 1,
                }),
            }
        }
    }

    fn scripted(script: Vec<Option<DeliveryErrorKind>>, hang: bool) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(script),
            calls: AtomicU32::new(0),
            hang,
        })
    }

    fn message() -> OtpMessage {
        OtpMessage::new(
            Identity::parse("u1").unwrap(),
            OtpCode::parse("123456").unwrap(),
            300,
            0,
        )
    }

    fn policy(max_attempts: u32) -> DeliveryRetryPolicy {
        DeliveryRetryPolicy {
            timeout: Duration::from_millis(200),
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let inner = scripted(
            vec![
                Some(DeliveryErrorKind::Unavailable),
                Some(DeliveryErrorKind::Connect),
            ],
            false,
        );
        let d = RetryingDelivery::new(inner.clone(), policy(3));
        let r = d.deliver(&message()).await.unwrap();
        assert_eq!(r.attempts, 3);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let inner = scripted(vec![Some(DeliveryErrorKind::Rejected)], false);
        let d = RetryingDelivery::new(inner.clone(), policy(3));
        let e = d.deliver(&message()).await.unwrap_err();
        assert_eq!(e.kind(), DeliveryErrorKind::Rejected);
        assert_eq!(e.attempts(), 1);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let inner = scripted(vec![Some(DeliveryErrorKind::Unavailable); 5], false);
        let d = RetryingDelivery::new(inner.clone(), policy(2));
        let e = d.deliver(&message()).await.unwrap_err();
        assert_eq!(e.attempts(), 2);
        assert!(e.is_transient());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_is_cut_by_the_timeout() {
        let inner = scripted(vec![], true);
        let d = RetryingDelivery::new(inner.clone(), policy(3));
        let started = tokio::time::Instant::now();
        let e = d.deliver(&message()).await.unwrap_err();
        assert_eq!(e.kind(), DeliveryErrorKind::Timeout);
        assert_eq!(e.attempts(), 3);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() <= policy(3).worst_case());
    }

    #[test]
    fn policy_validation_names_fields() {
        assert!(DeliveryRetryPolicy::default().validate().is_ok());
        let e = DeliveryRetryPolicy {
            max_attempts: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "retry.max_attempts");
        let e = DeliveryRetryPolicy {
            timeout: Duration::ZERO,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "retry.timeout");
    }

    #[test]
    fn worst_case_adds_timeouts_and_backoffs() {
        assert_eq!(policy(3).worst_case(), Duration::from_millis(600 + 10 + 20));
    }
}
