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
//! Everything below comes from `otp_service` alone (one dependency line):
//!
//! ```
//! use std::sync::Arc;
//! use otp_service::{
//!     async_trait, Delivery, DeliveryError, DeliveryReceipt, OtpKeyRing, OtpMessage, OtpPolicy,
//!     OtpService, RequestContext, SecretBytes, ServiceConfig, SigningKey, TokenConfig, TokenKeys,
//!     TokenService, VerifyOptions,
//! };
//!
//! /// A delivery that keeps the last code, standing in for an email sender.
//! #[derive(Debug, Default)]
//! struct Outbox(std::sync::Mutex<Option<String>>);
//!
//! #[async_trait]
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
//!     let verified = service
//!         .verify_otp("alice@example.com", &code, &ctx, VerifyOptions::default())
//!         .await
//!         .unwrap();
//!     let claims = service.verify_token(&verified.token.token).unwrap();
//!     assert_eq!(claims.sub, "alice@example.com");
//!
//!     // single use: the same code never verifies twice
//!     let again = service.verify_otp("alice@example.com", &code, &ctx, VerifyOptions::new());
//!     assert!(again.await.is_err());
//! }
//! ```
//!
//! # Layout
//! - [`OtpService`], [`ServiceConfig`], [`FailMode`]: the orchestration.
//! - [`IdentityAllowlist`]: who may sign in (`ALLOWED_IDENTITIES`, SPEC §11).
//! - [`ServiceError`]: typed failures (mapped to HTTP by `otp-http`).
//! - [`metrics`]: counters and histograms for `/metrics`.
//! - [`client_network`]: the network a client IP is counted under.
//! - Sessions (SPEC §10): [`SessionConfig`], [`OtpService::refresh`],
//!   [`OtpService::logout`], [`OtpService::revoke`].
//! - [`audit`]: one event per security fact (code sent, sign-in, wrong
//!   code, attempt budget used up, limit hit, refresh, reuse, logout, sign
//!   out everywhere, revoke) on the tracing target `audit`, and to an
//!   [`AuditSink`] such as the signed webhook.
//!
//! # Where the rules live
//!
//! The store (`otp-ratelimit`) offers primitives on subjects (docs/store.md);
//! this crate decides what they mean: which limits a request checks and
//! under which subject (identity, client network, `global`), that they are
//! one decision, the attempt budget and which windows a guess counts
//! against, and what a successful verify voids and clears.
#![deny(missing_docs)]

mod allowlist;
pub mod audit;
mod error;
mod limits;
pub mod metrics;
mod network;
mod service;
mod sessions;

pub use allowlist::{AllowlistError, IdentityAllowlist};
pub use audit::{AuditConfig, AuditEvent, AuditEventKind, AuditSink};
pub use error::{LimitedOperation, ServiceError};
pub use limits::{Limits, DEFAULT_MAX_ATTEMPTS};
pub use network::{client_network, DEFAULT_IPV6_PREFIX, MAX_IPV6_PREFIX, MIN_IPV6_PREFIX};
pub use service::{
    default_verify_daily_ceiling, FailMode, OtpService, OtpServiceBuilder, RateLimitInfo,
    RequestContext, RequestOutcome, ServiceConfig, VerifyOptions, VerifyOutcome,
    DEFAULT_VERIFY_DAILY_CEILING,
};
pub use sessions::{
    IssuedRefresh, LogoutScope, RefreshOutcome, SessionConfig, DEFAULT_REFRESH_REUSE_GRACE_SECONDS,
    DEFAULT_REFRESH_TOKEN_TTL_SECONDS, DEFAULT_SESSION_MAX_LIFETIME_SECONDS,
};

// What an embedder needs, so that `otp-service` is its one dependency line.
pub use async_trait::async_trait;
pub use otp_core::OtpKeyRing;
pub use otp_core::OtpPolicy;
pub use otp_core::{Claims, IssuedToken, SigningKey, TokenConfig, TokenKeys, TokenService};
pub use otp_core::{Identity, SecretBytes};
pub use otp_delivery::{Delivery, DeliveryError, DeliveryErrorKind, DeliveryReceipt, OtpMessage};
#[cfg(feature = "redis")]
pub use otp_ratelimit::RedisConfig;
pub use otp_ratelimit::{
    build_store, HashKey, LimitPolicy, MemoryStore, Store, StoreConfig, StoreError,
};
/// The crates underneath, for what the flat re-exports above leave out.
pub use {otp_core, otp_delivery, otp_ratelimit};
