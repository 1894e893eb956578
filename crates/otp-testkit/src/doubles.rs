//! Delivery doubles (feature `doubles`) for the tests of otp-service,
//! otp-http and otp-server: [`Outbox`] records the code a user would have
//! received, so a test types back exactly that code instead of re-deriving
//! it; [`FailingDelivery`] is a provider that is down or says no.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use otp_delivery::{Delivery, DeliveryError, DeliveryErrorKind, DeliveryReceipt, OtpMessage};

/// A delivery that records every code it is handed, per normalized
/// identity. Its name (in logs and metrics) is `outbox`.
#[derive(Debug, Default)]
pub struct Outbox {
    sent: Mutex<HashMap<String, Vec<String>>>,
}

impl Outbox {
    /// A fresh, shareable outbox.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last code delivered to `identity` (normalized form); panics when
    /// none was.
    pub fn last_code(&self, identity: &str) -> String {
        self.sent()
            .get(identity)
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| panic!("no code was delivered to {identity:?}"))
    }

    /// Every code delivered to `identity`, oldest first.
    pub fn codes(&self, identity: &str) -> Vec<String> {
        self.sent().get(identity).cloned().unwrap_or_default()
    }

    /// How many codes were delivered to `identity`.
    pub fn count(&self, identity: &str) -> usize {
        self.sent().get(identity).map_or(0, Vec::len)
    }

    /// Deliveries made in total, to any identity.
    pub fn total(&self) -> usize {
        self.sent().values().map(Vec::len).sum()
    }
}

#[async_trait::async_trait]
impl Delivery for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    async fn deliver(&self, m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        self.sent()
            .entry(m.identity().as_str().to_owned())
            .or_default()
            .push(m.code().as_str().to_owned());
        Ok(DeliveryReceipt {
            backend: "outbox",
            provider_id: None,
            attempts: 1,
        })
    }
}

/// A delivery that fails every attempt. Its name is `failing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailingDelivery {
    /// The provider is down: [`DeliveryErrorKind::Connect`], "connection
    /// refused" (transient).
    Unreachable,
    /// The provider refuses: [`DeliveryErrorKind::Rejected`] with status
    /// 400, "provider said no" (permanent).
    Rejected,
}

#[async_trait::async_trait]
impl Delivery for FailingDelivery {
    fn name(&self) -> &'static str {
        "failing"
    }

    async fn deliver(&self, _m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        Err(match self {
            FailingDelivery::Unreachable => {
                DeliveryError::new("failing", DeliveryErrorKind::Connect, "connection refused")
            }
            FailingDelivery::Rejected => {
                DeliveryError::new("failing", DeliveryErrorKind::Rejected, "provider said no")
                    .with_status(400)
            }
        })
    }
}
