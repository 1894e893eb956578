//! `DELIVERY_BACKEND=auto`: picks the backend by identity kind.

use std::sync::Arc;

use async_trait::async_trait;
use otp_core::IdentityKind;

use crate::error::DeliveryError;
use crate::message::{DeliveryReceipt, OtpMessage};
use crate::Delivery;

/// Routes email identities to SMTP, phone identities to Twilio and opaque
/// ids to the webhook. All three are required at construction, so no kind
/// meets a missing backend at run time.
#[derive(Debug, Clone)]
pub struct AutoRouter {
    email: Arc<dyn Delivery>,
    phone: Arc<dyn Delivery>,
    opaque: Arc<dyn Delivery>,
}

impl AutoRouter {
    /// Routes by kind to the three given backends (usually already wrapped
    /// in [`RetryingDelivery`](crate::RetryingDelivery)).
    pub fn new(
        email: Arc<dyn Delivery>,
        phone: Arc<dyn Delivery>,
        opaque: Arc<dyn Delivery>,
    ) -> Self {
        AutoRouter {
            email,
            phone,
            opaque,
        }
    }

    /// The backend that handles `kind`.
    pub fn route(&self, kind: IdentityKind) -> &Arc<dyn Delivery> {
        match kind {
            IdentityKind::Email => &self.email,
            IdentityKind::Phone => &self.phone,
            IdentityKind::Opaque => &self.opaque,
        }
    }
}

#[async_trait]
impl Delivery for AutoRouter {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn name_for(&self, kind: IdentityKind) -> &'static str {
        self.route(kind).name_for(kind)
    }

    fn supports(&self, kind: IdentityKind) -> bool {
        self.route(kind).supports(kind)
    }

    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        self.route(message.kind()).deliver(message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::Identity;
    use otp_core::OtpCode;

    #[derive(Debug)]
    struct Named(&'static str);

    #[async_trait]
    impl Delivery for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        async fn deliver(&self, _m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
            Ok(DeliveryReceipt {
                backend: self.0,
                provider_id: None,
                attempts: 1,
            })
        }
    }

    #[tokio::test]
    async fn routes_by_kind() {
        let r = AutoRouter::new(
            Arc::new(Named("smtp")),
            Arc::new(Named("twilio")),
            Arc::new(Named("webhook")),
        );
        for (id, want) in [
            ("a@b.example", "smtp"),
            ("+14155550100", "twilio"),
            ("user-7", "webhook"),
        ] {
            let m = OtpMessage::new(
                Identity::parse(id).unwrap(),
                OtpCode::parse("1234").unwrap(),
                60,
                0,
            );
            assert_eq!(r.deliver(&m).await.unwrap().backend, want, "{id}");
        }
    }

    #[test]
    fn metrics_name_the_backend_each_kind_is_routed_to() {
        use crate::{DeliveryRetryPolicy, RetryingDelivery};
        let retrying = |name| {
            Arc::new(RetryingDelivery::new(
                Arc::new(Named(name)),
                DeliveryRetryPolicy::default(),
            ))
        };
        let r = RetryingDelivery::new(
            Arc::new(AutoRouter::new(
                retrying("smtp"),
                retrying("twilio"),
                retrying("webhook"),
            )),
            DeliveryRetryPolicy::default(),
        );
        assert_eq!(r.name(), "auto");
        assert_eq!(r.name_for(IdentityKind::Email), "smtp");
        assert_eq!(r.name_for(IdentityKind::Phone), "twilio");
        assert_eq!(r.name_for(IdentityKind::Opaque), "webhook");
        assert_eq!(Named("console").name_for(IdentityKind::Email), "console");
    }
}
