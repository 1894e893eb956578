//! # otp-service
//!
//! [`OtpService`] orchestrates one OTP login: it normalizes the identity,
//! applies the abuse limits of SPEC §6, derives the code with the use counter
//! of SPEC §3.3, hands it to a delivery backend, verifies submitted codes
//! (single use, per-code attempt budget) and issues the JWT (SPEC §4).
//!
//! It holds no HTTP types and reads no environment: build it from typed
//! configuration ([`ServiceConfig`]), a store (`otp-ratelimit`) and a delivery
//! backend (`otp-delivery`). `otp-http` serves it over REST; a Rust program
//! can also embed it directly:
//!
//! ```
//! use std::sync::Arc;
//! use otp_core::engine::OtpPolicy;
//! use otp_core::keys::OtpKeyRing;
//! use otp_core::token::{SigningKey, TokenConfig, TokenKeys, TokenService};
//! use otp_core::SecretBytes;
//! use otp_delivery::{Delivery, DeliveryError, DeliveryReceipt, OtpMessage};
//! use otp_service::{OtpService, RequestContext, ServiceConfig};
//!
//! /// A delivery that keeps the last code, standing in for an email sender.
//! #[derive(Debug, Default)]
//! struct Outbox(std::sync::Mutex<Option<String>>);
//!
//! #[async_trait::async_trait]
//! impl Delivery for Outbox {
//!     fn name(&self) -> &'static str { "outbox" }
//!     async fn deliver(&self, m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
//!         *self.0.lock().unwrap() = Some(m.code().as_str().to_owned());
//!         Ok(DeliveryReceipt { backend: "outbox", provider_id: None, attempts: 1 })
//!     }
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     let keys = OtpKeyRing::new(SecretBytes::new(vec![7; 32]), vec![]).unwrap();
//!     let tokens = TokenService::new(
//!         TokenKeys::single(SigningKey::hs256(b"a-jwt-secret-of-at-least-32-bytes!!").unwrap()),
//!         TokenConfig::default(),
//!     )
//!     .unwrap();
//!     let outbox = Arc::new(Outbox::default());
//!     let service = OtpService::builder(ServiceConfig::new(OtpPolicy::default(), keys), tokens)
//!         .delivery(outbox.clone())
//!         .build();
//!
//!     let ctx = RequestContext::default();
//!     let sent = service.request_otp("Alice@Example.com", &ctx).await.unwrap();
//!     assert!(sent.ttl_seconds > 0);
//!
//!     let code = outbox.0.lock().unwrap().clone().unwrap();
//!     let verified = service.verify_otp("alice@example.com", &code, &ctx, None).await.unwrap();
//!     let claims = service.verify_token(&verified.token.token).unwrap();
//!     assert_eq!(claims.sub, "alice@example.com");
//!
//!     // single use: the same code never verifies twice
//!     assert!(service.verify_otp("alice@example.com", &code, &ctx, None).await.is_err());
//! }
//! ```
//!
//! # Layout
//! - [`OtpService`], [`ServiceConfig`], [`FailMode`]: the orchestration.
//! - [`ServiceError`]: typed failures (mapped to HTTP by `otp-http`).
//! - [`metrics`]: counters and histograms for `/metrics`.
#![deny(missing_docs)]

mod error;
pub mod metrics;
mod service;

pub use error::{LimitedOperation, ServiceError};
pub use service::{
    FailMode, OtpService, OtpServiceBuilder, RateLimitInfo, RequestContext, RequestOutcome,
    ServiceConfig, VerifyOutcome,
};
