//! Service-level metrics (Prometheus / OpenMetrics), registered by the HTTP
//! layer next to its own request metrics and rendered at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label set naming one limit policy (`request_identity`, `verify_ip`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The policy name.
    pub limit: &'static str,
}

/// Label set of one delivery outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// Backend name (`console`, `smtp`, `twilio`, `webhook`, `none`); under
    /// `auto`, the backend the identity was routed to.
    pub backend: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// The two values of [`DeliveryLabels::outcome`].
pub const DELIVERY_OUTCOMES: [&str; 2] = ["ok", "error"];

/// Label set naming the store operation that failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// One of [`StoreLabels::OPS`].
    pub op: &'static str,
}

impl StoreLabels {
    /// Every operation the service counts store errors under: `limit`,
    /// `counters`, `advance`, `failure`, `clear`, `session` (SPEC §10).
    pub const OPS: [&'static str; 6] = [
        "limit", "counters", "advance", "failure", "clear", "session",
    ];
}

/// Label set of a dropped audit event (`otp_audit_dropped_total`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuditDropLabels {
    /// One of [`AuditDropLabels::REASONS`].
    pub reason: &'static str,
}

impl AuditDropLabels {
    /// Why an audit event did not reach the webhook: `queue_full` (the
    /// bounded queue was full: the new event was dropped) or
    /// `undeliverable` (its attempts were used up, or the receiver refused
    /// it with a 4xx).
    pub const REASONS: [&'static str; 2] = ["queue_full", "undeliverable"];
}

fn delivery_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// The counters and histograms `OtpService` updates.
#[derive(Debug)]
pub struct ServiceMetrics {
    /// OTPs derived and handed to delivery.
    pub otp_requested: Counter,
    /// Successful verifications (tokens issued).
    pub otp_verified: Counter,
    /// Failed verifications (wrong, expired, replayed code).
    pub otp_failed: Counter,
    /// Requests refused by a limit, by limit name.
    pub rate_limited: Family<LimitLabels, Counter>,
    /// Deliveries by backend and outcome.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Delivery latency by backend and outcome, seconds.
    pub delivery_seconds: Family<DeliveryLabels, Histogram, fn() -> Histogram>,
    /// Store errors (Redis unreachable, …), by operation.
    pub store_errors: Family<StoreLabels, Counter>,
    /// Calls refused because the memory store tracks its maximum number of
    /// subjects (`STORE_MEMORY_MAX_KEYS`); each is also a store error.
    pub store_full: Counter,
    /// 1 while the store answered its last ping, 0 after a failed ping or an
    /// unavailable store operation (`otp_store_up`; the memory store is
    /// always 1). Readiness checks and the server's background ping keep it
    /// current.
    pub store_up: Gauge,
    /// Audit events the webhook did not deliver, by reason
    /// (`otp_audit_dropped_total`; every event is in the log regardless).
    pub audit_dropped: Family<AuditDropLabels, Counter>,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics {
            otp_requested: Counter::default(),
            otp_verified: Counter::default(),
            otp_failed: Counter::default(),
            rate_limited: Family::default(),
            deliveries: Family::default(),
            delivery_seconds: Family::new_with_constructor(delivery_histogram),
            store_errors: Family::default(),
            store_full: Counter::default(),
            store_up: Gauge::default(),
            audit_dropped: Family::default(),
        }
    }
}

impl ServiceMetrics {
    /// Creates at 0 every labelled series the service can report, so that a
    /// scrape shows them from start-up and an `increase(…) > 0` alert sees
    /// the first event: `otp_rate_limited_total` for each of `limits`,
    /// `otp_deliveries_total` and `otp_delivery_duration_seconds` for each
    /// of `backends` × [`DELIVERY_OUTCOMES`], `otp_store_errors_total` for
    /// each of [`StoreLabels::OPS`], `otp_audit_dropped_total` for each of
    /// [`AuditDropLabels::REASONS`]. Called by
    /// [`OtpServiceBuilder::build`](crate::OtpServiceBuilder::build); an
    /// existing series keeps its value.
    pub fn precreate(
        &self,
        limits: impl IntoIterator<Item = &'static str>,
        backends: impl IntoIterator<Item = &'static str>,
    ) {
        for limit in limits {
            let _ = self.rate_limited.get_or_create(&LimitLabels { limit });
        }
        for backend in backends {
            for outcome in DELIVERY_OUTCOMES {
                let labels = DeliveryLabels { backend, outcome };
                let _ = self.deliveries.get_or_create(&labels);
                let _ = self.delivery_seconds.get_or_create(&labels);
            }
        }
        for op in StoreLabels::OPS {
            let _ = self.store_errors.get_or_create(&StoreLabels { op });
        }
        for reason in AuditDropLabels::REASONS {
            let _ = self
                .audit_dropped
                .get_or_create(&AuditDropLabels { reason });
        }
    }

    /// Registers every metric under `registry` (names prefixed `otp_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "otp_requested",
            "OTPs generated and handed to delivery",
            self.otp_requested.clone(),
        );
        registry.register(
            "otp_verified",
            "OTPs verified successfully (tokens issued)",
            self.otp_verified.clone(),
        );
        registry.register(
            "otp_failed",
            "OTP verifications that failed (wrong, expired or replayed code)",
            self.otp_failed.clone(),
        );
        registry.register(
            "otp_rate_limited",
            "Requests refused by a rate limit, by limit",
            self.rate_limited.clone(),
        );
        registry.register(
            "otp_deliveries",
            "OTP deliveries by backend and outcome",
            self.deliveries.clone(),
        );
        registry.register(
            "otp_delivery_duration_seconds",
            "OTP delivery latency by backend and outcome (including retries)",
            self.delivery_seconds.clone(),
        );
        registry.register(
            "otp_store_errors",
            "Errors of the limit / use-counter store, by operation",
            self.store_errors.clone(),
        );
        registry.register(
            "otp_store_full",
            "Calls refused because the memory store is at its ceiling of tracked subjects",
            self.store_full.clone(),
        );
        registry.register(
            "otp_store_up",
            "1 while the limit / use-counter store answers its pings, 0 while it does not",
            self.store_up.clone(),
        );
        registry.register(
            "otp_audit_dropped",
            "Audit events the audit webhook did not deliver (queue full, or undeliverable), by reason",
            self.audit_dropped.clone(),
        );
    }
}
