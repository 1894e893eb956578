//! Audit events (SPEC §10): one structured event per security-relevant
//! fact, on the tracing target `audit` and, optionally, to an
//! [`AuditSink`] such as the signed webhook ([`AuditWebhook`], feature
//! `webhook`).
//!
//! # Layout
//! - [`AuditEventKind`]: the facts, named as in docs/audit.md (`code_sent`,
//!   `sign_in`, `code_wrong`, `attempts_exhausted`, `limit_hit`, `refresh`,
//!   `refresh_grace`, `refresh_reuse`, `logout`, `sign_out_everywhere`,
//!   `revoke`).
//! - [`AuditEvent`]: one event, its JSON ([`AuditEvent::to_json`]) and its
//!   Standard Webhooks payload ([`AuditEvent::webhook_body`]).
//! - [`AuditConfig`]: pseudonym or identity (`AUDIT_INCLUDE_IDENTITY`).
//! - [`AuditSink`]: where events go besides the log; must never block.
//! - [`AuditWebhook`] (feature `webhook`): a bounded queue and one
//!   background task POSTing each event signed per Standard Webhooks,
//!   retried with the same `webhook-id`; a full queue drops the new event
//!   (counted in `otp_audit_dropped_total{reason="queue_full"}`, one
//!   warning), so delivery never slows or fails a request.
//!
//! # What an event holds
//! The fact, its time (unix seconds), the subject — a keyed pseudonym of
//! the identity (128 bits of HMAC-SHA256 under a key derived from the OTP
//! key: stable across replicas and restarts, meaningless without the key),
//! or the identity itself with [`AuditConfig::include_identity`] — the
//! session id when there is one, the client network the per-IP limits count
//! the caller under (an IPv4 address, an IPv6 /64 by default; like the
//! identity, a keyed pseudonym unless [`AuditConfig::include_identity`],
//! so events from one network still correlate) and the request id when
//! the transport passed them, and the limit's name for `limit_hit`. Never
//! a code, a token or a secret: nothing here receives one.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use otp_core::SecretBytes;
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::service::RequestContext;

/// One security-relevant fact (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditEventKind {
    /// A code was derived and handed to delivery successfully.
    CodeSent,
    /// A code verified and a token was issued (with `sid` when a session
    /// began).
    SignIn,
    /// A submitted code was wrong (or replayed, or expired).
    CodeWrong,
    /// The wrong codes used up the attempt budget: every code already sent
    /// is void.
    AttemptsExhausted,
    /// A limit refused a request to send or verify (`limit` names it).
    LimitHit,
    /// A refresh token rotated.
    Refresh,
    /// The previous refresh token, within the grace, got the same
    /// successor again.
    RefreshGrace,
    /// A refresh token was reused outside the grace: the session is
    /// revoked.
    RefreshReuse,
    /// One session ended by `POST /api/v1/logout`.
    Logout,
    /// Every session of the identity ended (`{"all": true}`).
    SignOutEverywhere,
    /// One session ended by RFC 7009 revocation.
    Revoke,
}

impl AuditEventKind {
    /// Every kind, in documentation order.
    pub const ALL: [AuditEventKind; 11] = [
        AuditEventKind::CodeSent,
        AuditEventKind::SignIn,
        AuditEventKind::CodeWrong,
        AuditEventKind::AttemptsExhausted,
        AuditEventKind::LimitHit,
        AuditEventKind::Refresh,
        AuditEventKind::RefreshGrace,
        AuditEventKind::RefreshReuse,
        AuditEventKind::Logout,
        AuditEventKind::SignOutEverywhere,
        AuditEventKind::Revoke,
    ];

    /// The event's name (`sign_in`, …): the `event` field, and the
    /// webhook's `type` after `audit.`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEventKind::CodeSent => "code_sent",
            AuditEventKind::SignIn => "sign_in",
            AuditEventKind::CodeWrong => "code_wrong",
            AuditEventKind::AttemptsExhausted => "attempts_exhausted",
            AuditEventKind::LimitHit => "limit_hit",
            AuditEventKind::Refresh => "refresh",
            AuditEventKind::RefreshGrace => "refresh_grace",
            AuditEventKind::RefreshReuse => "refresh_reuse",
            AuditEventKind::Logout => "logout",
            AuditEventKind::SignOutEverywhere => "sign_out_everywhere",
            AuditEventKind::Revoke => "revoke",
        }
    }
}

/// How events name the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditConfig {
    /// Put the normalized identity itself in `subject`, and the client
    /// network itself in `network`, instead of their pseudonyms
    /// (`AUDIT_INCLUDE_IDENTITY`). Defaults to false.
    pub include_identity: bool,
}

/// One audit event. Holds no code and no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// A unique id (`msg_` and 32 hex digits): the `webhook-id` on every
    /// delivery attempt, so receivers de-duplicate retries.
    pub id: String,
    /// The fact.
    pub kind: AuditEventKind,
    /// When it happened, unix seconds.
    pub time: u64,
    /// The identity's pseudonym, or the identity with
    /// [`AuditConfig::include_identity`].
    pub subject: String,
    /// The session, when the fact concerns one.
    pub sid: Option<String>,
    /// The client network (SPEC §6's per-IP subject) when known: its
    /// pseudonym, or the network with [`AuditConfig::include_identity`].
    pub network: Option<String>,
    /// The request id of the HTTP request when known.
    pub request_id: Option<String>,
    /// The limit that refused (`limit_hit` only).
    pub limit: Option<&'static str>,
}

impl AuditEvent {
    /// The event as a JSON object: `id`, `event`, `time`, `subject`, and
    /// `sid`, `network`, `request_id`, `limit` when known.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("event".into(), self.kind.as_str().into());
        m.insert("time".into(), self.time.into());
        m.insert("subject".into(), self.subject.clone().into());
        let optional = [
            ("sid", self.sid.as_deref()),
            ("network", self.network.as_deref()),
            ("request_id", self.request_id.as_deref()),
            ("limit", self.limit),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                m.insert(name.into(), v.into());
            }
        }
        m
    }

    /// The Standard Webhooks payload: `{"type": "audit.<event>",
    /// "timestamp": "<RFC 3339>", "data": <to_json>}`.
    pub fn webhook_body(&self) -> String {
        let mut m = Map::new();
        m.insert(
            "type".into(),
            format!("audit.{}", self.kind.as_str()).into(),
        );
        m.insert(
            "timestamp".into(),
            otp_delivery::rfc3339_utc(self.time).into(),
        );
        m.insert("data".into(), Value::Object(self.to_json()));
        Value::Object(m).to_string()
    }
}

/// Where audit events go besides the log. `send` is called on the request
/// path: it must return at once (queue, never wait for I/O).
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Takes one event.
    fn send(&self, event: AuditEvent);
}

/// The fact-to-event step the service calls: names the subject, stamps
/// the event, logs it on target `audit` and hands it to the sink.
pub(crate) struct Auditor {
    /// HMAC-SHA256 keyed once with the pseudonym key: each pseudonym
    /// clones this state instead of hashing the key's pads again.
    mac: Option<Hmac<Sha256>>,
    /// The last client network and its pseudonym: consecutive events
    /// from one network (a single office, a NAT, a test) skip the HMAC.
    last_network: std::sync::Mutex<Option<(String, String)>>,
    config: AuditConfig,
    sink: Option<Arc<dyn AuditSink>>,
}

/// What the service knows about one fact beyond its kind and identity.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fact<'a> {
    pub sid: Option<&'a otp_core::SessionId>,
    pub ctx: Option<&'a RequestContext>,
    pub network: Option<&'a str>,
    pub limit: Option<&'static str>,
    pub now: Option<u64>,
}

impl Auditor {
    pub(crate) fn new(
        key: SecretBytes,
        config: AuditConfig,
        sink: Option<Arc<dyn AuditSink>>,
    ) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).ok();
        Auditor {
            mac,
            last_network: std::sync::Mutex::new(None),
            config,
            sink,
        }
    }

    pub(crate) fn config(&self) -> AuditConfig {
        self.config
    }

    /// Emits one event of `kind` about `identity`.
    pub(crate) fn emit(&self, kind: AuditEventKind, identity: &str, fact: Fact<'_>) {
        let (subject, network) = if self.config.include_identity {
            (identity.to_owned(), fact.network.map(str::to_owned))
        } else {
            // A separate domain, so a network never shares an identity's
            // pseudonym.
            let network = fact.network.map(|n| self.network_pseudonym(n));
            (self.pseudonym(identity), network)
        };
        let event = AuditEvent {
            id: otp_delivery::new_message_id(),
            kind,
            time: fact.now.unwrap_or_else(otp_core::unix_now),
            subject,
            sid: fact.sid.map(ToString::to_string),
            network,
            request_id: fact.ctx.and_then(|c| c.request_id.clone()),
            limit: fact.limit,
        };
        tracing::info!(
            target: "audit",
            event = kind.as_str(),
            id = %event.id,
            time = event.time,
            subject = %event.subject,
            sid = event.sid.as_deref(),
            network = event.network.as_deref(),
            request_id = event.request_id.as_deref(),
            limit = event.limit,
        );
        if let Some(sink) = &self.sink {
            sink.send(event);
        }
    }

    /// 128 bits of HMAC-SHA256 of the identity under a key derived from the
    /// OTP key (`audit-pseudonym/v1`), hex.
    pub(crate) fn pseudonym(&self, identity: &str) -> String {
        self.keyed_hex(&[identity.as_bytes()])
    }

    /// The network's pseudonym: the identity's HMAC in the domain
    /// `network:`, remembered for the next event from the same network.
    fn network_pseudonym(&self, network: &str) -> String {
        if let Ok(last) = self.last_network.lock() {
            if let Some((n, pseudonym)) = last.as_ref() {
                if n == network {
                    return pseudonym.clone();
                }
            }
        }
        let pseudonym = self.keyed_hex(&[b"network:", network.as_bytes()]);
        if let Ok(mut last) = self.last_network.lock() {
            *last = Some((network.to_owned(), pseudonym.clone()));
        }
        pseudonym
    }

    /// The first 128 bits of HMAC-SHA256 of `parts` (concatenated), as 32
    /// lowercase hex digits.
    fn keyed_hex(&self, parts: &[&[u8]]) -> String {
        let Some(mut mac) = self.mac.clone() else {
            return String::new();
        };
        for part in parts {
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        otp_core::push_lower_hex(&mut out, &tag[..16]);
        out
    }
}

/// Default capacity of the audit webhook's queue
/// (`AUDIT_WEBHOOK_QUEUE_SIZE`): 10 000 events.
pub const DEFAULT_AUDIT_QUEUE_SIZE: usize = 10_000;

#[cfg(feature = "webhook")]
pub use webhook::{AuditWebhook, AuditWebhookConfig};

#[cfg(feature = "webhook")]
mod webhook {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use otp_delivery::WebhookPoster;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use tokio::sync::mpsc;

    use super::{AuditEvent, AuditSink, DEFAULT_AUDIT_QUEUE_SIZE};
    use crate::metrics::AuditDropLabels;

    /// Queue and retry settings of [`AuditWebhook`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AuditWebhookConfig {
        /// Events waiting for delivery at most; a new event finding the
        /// queue full is dropped (`AUDIT_WEBHOOK_QUEUE_SIZE`). Defaults to
        /// [`DEFAULT_AUDIT_QUEUE_SIZE`].
        pub queue_size: usize,
        /// Attempts per event, the first included; only transient failures
        /// (connect errors, timeouts, 5xx, 408, 429) are retried. Defaults
        /// to 5.
        pub max_attempts: u32,
        /// Wait before the first retry, doubled for each further one.
        /// Defaults to 500 ms.
        pub initial_backoff: Duration,
        /// Ceiling of the wait between attempts. Defaults to 30 s.
        pub max_backoff: Duration,
    }

    impl Default for AuditWebhookConfig {
        fn default() -> Self {
            AuditWebhookConfig {
                queue_size: DEFAULT_AUDIT_QUEUE_SIZE,
                max_attempts: 5,
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(30),
            }
        }
    }

    /// Audit events POSTed to a URL, signed per Standard Webhooks, from one
    /// background task behind a bounded queue: [`AuditSink::send`] never
    /// waits. Events are delivered in order, one at a time; an event whose
    /// attempts are used up (or that a 4xx refuses) is dropped and counted
    /// under `reason="undeliverable"`. Events still queued when the process
    /// stops are lost (the log keeps every event).
    pub struct AuditWebhook {
        tx: mpsc::Sender<AuditEvent>,
        dropped: Family<AuditDropLabels, Counter>,
        warned: AtomicBool,
    }

    impl std::fmt::Debug for AuditWebhook {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("AuditWebhook")
                .field("capacity", &self.tx.max_capacity())
                .finish_non_exhaustive()
        }
    }

    impl AuditWebhook {
        /// Starts the background task on the current Tokio runtime (call
        /// it from inside one). `dropped` is the service's
        /// `otp_audit_dropped_total` ([`crate::metrics::ServiceMetrics::audit_dropped`]).
        pub fn start(
            poster: WebhookPoster,
            config: AuditWebhookConfig,
            dropped: Family<AuditDropLabels, Counter>,
        ) -> Self {
            let (tx, rx) = mpsc::channel(config.queue_size.max(1));
            tokio::spawn(deliver_all(poster, config, rx, dropped.clone()));
            AuditWebhook {
                tx,
                dropped,
                warned: AtomicBool::new(false),
            }
        }
    }

    impl AuditSink for AuditWebhook {
        fn send(&self, event: AuditEvent) {
            if self.tx.try_send(event).is_ok() {
                return;
            }
            self.dropped
                .get_or_create(&AuditDropLabels {
                    reason: "queue_full",
                })
                .inc();
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    capacity = self.tx.max_capacity(),
                    "audit webhook queue full: dropping new audit events (counted in otp_audit_dropped_total; the log still has them)"
                );
            }
        }
    }

    /// Delivers queued events until every sender is gone.
    async fn deliver_all(
        poster: WebhookPoster,
        config: AuditWebhookConfig,
        mut rx: mpsc::Receiver<AuditEvent>,
        dropped: Family<AuditDropLabels, Counter>,
    ) {
        while let Some(event) = rx.recv().await {
            let body = event.webhook_body();
            let mut backoff = config.initial_backoff;
            let attempts = config.max_attempts.max(1);
            for attempt in 1..=attempts {
                let Err(e) = poster.post(&event.id, otp_core::unix_now(), &body).await else {
                    break;
                };
                if e.is_transient() && attempt < attempts {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2).min(config.max_backoff);
                    continue;
                }
                dropped
                    .get_or_create(&AuditDropLabels {
                        reason: "undeliverable",
                    })
                    .inc();
                tracing::warn!(
                    message_id = %event.id,
                    event = event.kind.as_str(),
                    attempts = attempt,
                    error = %e,
                    "audit webhook: event not delivered; dropped"
                );
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            id: "msg_1".into(),
            kind: AuditEventKind::LimitHit,
            time: 1_800_000_000,
            subject: "ab".into(),
            sid: None,
            network: Some("192.0.2.7".into()),
            request_id: None,
            limit: Some("verify_ip"),
        }
    }

    #[test]
    fn event_names_are_distinct_snake_case() {
        let mut names: Vec<&str> = AuditEventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditEventKind::ALL.len());
    }

    #[test]
    fn json_leaves_out_unknown_fields_and_the_webhook_body_wraps_it() {
        let json = Value::Object(event().to_json());
        let want: Value = serde_json::from_str(
            r#"{"event":"limit_hit","id":"msg_1","limit":"verify_ip","network":"192.0.2.7","subject":"ab","time":1800000000}"#,
        )
        .unwrap();
        assert_eq!(json, want);
        let body: Value = serde_json::from_str(&event().webhook_body()).unwrap();
        assert_eq!(body["type"], "audit.limit_hit");
        assert_eq!(body["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(body["data"]["limit"], "verify_ip");
    }

    #[test]
    fn pseudonym_is_keyed_and_stable() {
        let a = Auditor::new(SecretBytes::new(vec![1; 32]), AuditConfig::default(), None);
        let b = Auditor::new(SecretBytes::new(vec![2; 32]), AuditConfig::default(), None);
        assert_eq!(a.pseudonym("a@example.com"), a.pseudonym("a@example.com"));
        assert_ne!(a.pseudonym("a@example.com"), b.pseudonym("a@example.com"));
        assert_ne!(a.pseudonym("a@example.com"), a.pseudonym("b@example.com"));
        assert_eq!(a.pseudonym("a@example.com").len(), 32);
    }

    #[test]
    fn pseudonyms_match_a_fresh_hmac_of_the_identity_and_of_the_network_domain() {
        let key = [7u8; 32];
        let a = Auditor::new(SecretBytes::new(key.to_vec()), AuditConfig::default(), None);
        let fresh = |input: &str| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            mac.update(input.as_bytes());
            let tag = mac.finalize().into_bytes();
            tag[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(a.pseudonym("a@example.com"), fresh("a@example.com"));
        assert_eq!(a.pseudonym("a@example.com"), fresh("a@example.com"));
        // The remembered network pseudonym is the one for that network,
        // whatever came before.
        for network in ["192.0.2.7", "192.0.2.7", "2001:db8::/64", "192.0.2.7"] {
            assert_eq!(
                a.network_pseudonym(network),
                fresh(&format!("network:{network}"))
            );
        }
    }
}
