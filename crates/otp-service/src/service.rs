//! The orchestration of request, verify and introspect.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otp_core::wire::TokenStatus;
use otp_core::OtpKeyRing;
use otp_core::{unix_now, Match, OtpEngine, OtpPolicy, VerifyError};
use otp_core::{Claims, IssuedToken, SessionId, TokenError, TokenService, REGISTERED_CLAIMS};
use otp_core::{Identity, IdentityKind, OtpCode, SecretBytes};
use otp_delivery::{ConsoleDelivery, Delivery, DeliveryError, DeliveryErrorKind, OtpMessage};
use otp_ratelimit::{
    Checked, CounterAdvance, CounterRead, Decision, LimitCheck, LimitPolicy, MemoryStore,
    SessionStart, Store, StoreError,
};
use serde_json::{Map, Value};

use crate::allowlist::{DeliveryPace, IdentityAllowlist};
use crate::audit::{AuditConfig, AuditEventKind, AuditSink, Auditor, Fact};
use crate::error::{LimitedOperation, ServiceError};
use crate::limits::{Limits, DEFAULT_MAX_ATTEMPTS};
use crate::metrics::{DeliveryLabels, LimitLabels, ServiceMetrics, StoreLabels};
use crate::network::{client_network, DEFAULT_IPV6_PREFIX};
use crate::sessions::{IssuedRefresh, SessionConfig};

/// What to do when the store (Redis) is unreachable (`RATE_LIMIT_FAIL_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Refuse with 503 `backend_unavailable`. The default: an outage must not
    /// switch brute-force protection off.
    #[default]
    Closed,
    /// Proceed as if every limit allowed the call and every use counter were
    /// 0. Single use cannot be enforced while the store is down: a code may
    /// then verify more than once within its validity. Each such call logs a
    /// warning.
    Open,
}

/// Typed configuration of the service (no environment reading here).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Digits, window, hash, drift and clock skew. Defaults to
    /// [`OtpPolicy::default`].
    pub policy: OtpPolicy,
    /// OTP keys: current + previous (verify only).
    pub keys: OtpKeyRing,
    /// The six limits of SPEC §6. Defaults to [`Limits::default`].
    pub limits: Limits,
    /// Wrong codes a sent code tolerates before every sent code of the
    /// identity is void (`OTP_MAX_ATTEMPTS`), counted over the code's whole
    /// validity, across window edges. Defaults to 5. 0 switches the budget
    /// off. Needs `single_use` (the budget voids codes by advancing the use
    /// counters).
    pub max_attempts: u32,
    /// Single-use codes via use counters (`OTP_SINGLE_USE`). Defaults to
    /// true; false reproduces the Python service (n is always 0).
    pub single_use: bool,
    /// Behaviour when the store is unreachable. Defaults to closed.
    pub fail_mode: FailMode,
    /// Verify attempts per identity per day from every network together:
    /// the ceiling above `limits.verify_daily`, which counts per identity
    /// *and client network* (SPEC §6), so a stranger on another network
    /// cannot lock a known user out for a day, while guessing from many
    /// networks stays bounded (NIST SP 800-63B: at most 100 consecutive
    /// failures). Not cleared by a successful verify. Defaults to
    /// [`DEFAULT_VERIFY_DAILY_CEILING`] per 86400 s, name
    /// `verify_daily_identity`.
    pub verify_daily_ceiling: LimitPolicy,
    /// Prefix length of the IPv6 network the per-IP limits count a client
    /// under (`RATE_IPV6_PREFIX`, see [`crate::client_network`]); IPv4
    /// counts per address. Defaults to [`DEFAULT_IPV6_PREFIX`] (64); the
    /// binary accepts [`crate::MIN_IPV6_PREFIX`]..=[`crate::MAX_IPV6_PREFIX`].
    pub ipv6_prefix: u8,
    /// Sessions and refresh tokens (SPEC §10). Defaults to
    /// [`SessionConfig::default`] (on, 7 days idle, 30 days absolute, 10 s
    /// grace).
    pub sessions: SessionConfig,
    /// Who may receive a code (`ALLOWED_IDENTITIES`, SPEC §11). A request
    /// for an identity the list refuses gets the same answer as any other,
    /// after about the time a delivery typically takes, and counts against
    /// the same limits, but nothing is derived or sent;
    /// a verify for it fails as a wrong code does; a refresh of its session
    /// is refused as a revoked session. Defaults to
    /// [`IdentityAllowlist::anyone`].
    pub allowed_identities: IdentityAllowlist,
    /// How audit events name the identity (SPEC §10). Defaults to a keyed
    /// pseudonym ([`AuditConfig::default`]).
    pub audit: AuditConfig,
}

/// The default of [`ServiceConfig::verify_daily_ceiling`]: verify attempts
/// per identity per day over every network
/// (`RATE_VERIFY_OTP_DAILY_IDENTITY_MAX`), NIST SP 800-63B's ceiling of 100
/// consecutive failures.
pub const DEFAULT_VERIFY_DAILY_CEILING: u32 = 100;

/// The default [`ServiceConfig::verify_daily_ceiling`] policy.
pub const fn default_verify_daily_ceiling() -> LimitPolicy {
    LimitPolicy::per_secs(
        "verify_daily_identity",
        DEFAULT_VERIFY_DAILY_CEILING,
        86_400,
    )
}

impl ServiceConfig {
    /// A configuration with the given policy and keys and every other field at
    /// its default.
    pub fn new(policy: OtpPolicy, keys: OtpKeyRing) -> Self {
        ServiceConfig {
            policy,
            keys,
            limits: Limits::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            single_use: true,
            fail_mode: FailMode::Closed,
            verify_daily_ceiling: default_verify_daily_ceiling(),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            sessions: SessionConfig::default(),
            allowed_identities: IdentityAllowlist::anyone(),
            audit: AuditConfig::default(),
        }
    }
}

/// Options of one [`OtpService::verify_otp`] call; `VerifyOptions::default()`
/// for none.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Extra claims for the token. A registered claim (`sub`, `exp`, …) is
    /// refused with [`ServiceError::ReservedClaim`] before anything is
    /// spent. Defaults to none.
    pub extra_claims: Map<String, Value>,
}

impl VerifyOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same options with `claims` as the extra claims.
    pub fn with_extra_claims(mut self, claims: Map<String, Value>) -> Self {
        self.extra_claims = claims;
        self
    }
}

/// Per-call context from the transport.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's IP address (after trusted-proxy resolution). `None`
    /// skips the per-IP limits (e.g. an embedded, non-network caller).
    pub client_ip: Option<IpAddr>,
    /// A second list the identity must also pass, for this call only: the
    /// web gate's `GATE_ALLOWED_IDENTITIES` (SPEC §11). An identity it
    /// refuses is treated exactly as one [`ServiceConfig::allowed_identities`]
    /// refuses (same answer, same limits, nothing sent; verify fails as a
    /// wrong code). Defaults to `None` (only the service's list applies).
    pub allowed_identities: Option<IdentityAllowlist>,
    /// The transport's request id, copied into audit events. Defaults to
    /// none.
    pub request_id: Option<String>,
}

impl RequestContext {
    /// A context for a client at `ip`.
    pub fn with_ip(ip: IpAddr) -> Self {
        RequestContext {
            client_ip: Some(ip),
            allowed_identities: None,
            request_id: None,
        }
    }

    /// The same context with `id` as the request id of its audit events.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The same context, with `list` as the call's second allowlist.
    pub fn with_allowed_identities(mut self, list: IdentityAllowlist) -> Self {
        self.allowed_identities = Some(list);
        self
    }
}

/// The figures of one limit, for `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitInfo {
    /// The limit's `max`.
    pub limit: u32,
    /// Events left in the window.
    pub remaining: u32,
    /// The limit's window in seconds.
    pub window_secs: u64,
}

impl From<Decision> for RateLimitInfo {
    fn from(d: Decision) -> Self {
        RateLimitInfo {
            limit: d.limit,
            remaining: d.remaining,
            window_secs: d.window_secs,
        }
    }
}

/// A code was derived and delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    /// The normalized identity.
    pub identity: Identity,
    /// Seconds the code stays valid.
    pub ttl_seconds: u64,
    /// Unix time at which it stops verifying.
    pub expires_at: u64,
    /// The identity's send budget.
    pub rate_limit: RateLimitInfo,
}

/// A code verified and a token was issued.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    /// The normalized identity (the token's `sub`).
    pub identity: Identity,
    /// The signed token and its claims (with `sid` and `auth_time` when a
    /// session was created).
    pub token: IssuedToken,
    /// The session's first refresh token; `None` when sessions are off (or
    /// the store was down with the fail mode open).
    pub refresh: Option<IssuedRefresh>,
    /// The identity's verify budget (restored after success).
    pub rate_limit: RateLimitInfo,
}

/// The OTP service. Cheap to share: wrap it in an `Arc`.
pub struct OtpService {
    engine: OtpEngine,
    pub(crate) tokens: TokenService,
    pub(crate) store: Arc<dyn Store>,
    delivery: Arc<dyn Delivery>,
    limits: Limits,
    max_attempts: u32,
    single_use: bool,
    fail_mode: FailMode,
    verify_daily_ceiling: LimitPolicy,
    ipv6_prefix: u8,
    pub(crate) metrics: Arc<ServiceMetrics>,
    pub(crate) sessions: SessionConfig,
    pub(crate) allowed_identities: IdentityAllowlist,
    /// How long a refused identity's request waits (typical delivery time).
    delivery_pace: DeliveryPace,
    /// Names, logs and forwards the audit events.
    pub(crate) auditor: Auditor,
}

impl std::fmt::Debug for OtpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpService")
            .field("engine", &self.engine)
            .field("store", &self.store.backend_name())
            .field("delivery", &self.delivery.name())
            .field("limits", &self.limits)
            .field("max_attempts", &self.max_attempts)
            .field("single_use", &self.single_use)
            .field("fail_mode", &self.fail_mode)
            .field("verify_daily_ceiling", &self.verify_daily_ceiling)
            .field("ipv6_prefix", &self.ipv6_prefix)
            .field("sessions", &self.sessions)
            .field("allowed_identities", &self.allowed_identities)
            .field("audit", &self.auditor.config())
            .finish_non_exhaustive()
    }
}

/// Builder for [`OtpService`]: the store defaults to an in-memory store and
/// delivery to the console.
pub struct OtpServiceBuilder {
    config: ServiceConfig,
    tokens: TokenService,
    store: Option<Arc<dyn Store>>,
    delivery: Option<Arc<dyn Delivery>>,
    metrics: Option<Arc<ServiceMetrics>>,
    audit_sink: Option<Arc<dyn AuditSink>>,
}

impl OtpServiceBuilder {
    /// Also hands every audit event to `sink` (e.g. an
    /// [`AuditWebhook`](crate::audit::AuditWebhook)). Defaults to none: the
    /// events go to the tracing target `audit` only.
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit_sink = Some(sink);
        self
    }

    /// Uses `store` for limits and use counters. Defaults to a [`MemoryStore`].
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `delivery` to send codes. Defaults to [`ConsoleDelivery`].
    pub fn delivery(mut self, delivery: Arc<dyn Delivery>) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Records into `metrics` (e.g. one registered with an HTTP registry).
    /// Defaults to a private instance.
    pub fn metrics(mut self, metrics: Arc<ServiceMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds the service, with every labelled series it can report created
    /// at 0 ([`ServiceMetrics::precreate`]): each limit's name, and the
    /// backend of each identity kind the delivery supports.
    pub fn build(self) -> OtpService {
        let c = self.config;
        let audit_key: SecretBytes = c.keys.derive_subkey("stateless-otp/audit-pseudonym/v1");
        let store: Arc<dyn Store> = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::default()));
        let metrics: Arc<ServiceMetrics> = self.metrics.unwrap_or_default();
        // The memory store always answers; a network store is 0 until its
        // first ping answers.
        metrics
            .store_up
            .set(i64::from(store.backend_name() == "memory"));
        let service = OtpService {
            auditor: Auditor::new(audit_key, c.audit, self.audit_sink),
            sessions: c.sessions,
            allowed_identities: c.allowed_identities,
            delivery_pace: DeliveryPace::default(),
            engine: OtpEngine::new(c.policy, c.keys),
            tokens: self.tokens,
            store,
            delivery: self
                .delivery
                .unwrap_or_else(|| Arc::new(ConsoleDelivery::new())),
            limits: c.limits,
            max_attempts: c.max_attempts,
            single_use: c.single_use,
            fail_mode: c.fail_mode,
            verify_daily_ceiling: c.verify_daily_ceiling,
            ipv6_prefix: c.ipv6_prefix,
            metrics,
        };
        let limits = service.limits.all().map(|p| p.name);
        let delivery = &service.delivery;
        let backends = [
            IdentityKind::Email,
            IdentityKind::Phone,
            IdentityKind::Opaque,
        ]
        .into_iter()
        .filter(|&kind| delivery.supports(kind))
        .map(|kind| delivery.name_for(kind));
        service.metrics.precreate(
            limits
                .into_iter()
                .chain([service.verify_daily_ceiling.name]),
            backends,
        );
        service
    }
}

impl OtpService {
    /// Starts a builder from typed configuration and the token service.
    pub fn builder(config: ServiceConfig, tokens: TokenService) -> OtpServiceBuilder {
        OtpServiceBuilder {
            config,
            tokens,
            store: None,
            delivery: None,
            metrics: None,
            audit_sink: None,
        }
    }

    /// The OTP engine (policy, keys).
    pub fn engine(&self) -> &OtpEngine {
        &self.engine
    }

    /// The token service (for the bearer hot path and JWKS).
    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// Who may receive a code ([`ServiceConfig::allowed_identities`]).
    pub fn allowed_identities(&self) -> &IdentityAllowlist {
        &self.allowed_identities
    }

    /// Whether `identity` passes the service's list and the call's own
    /// ([`RequestContext::allowed_identities`]).
    fn is_allowed(&self, identity: &Identity, ctx: &RequestContext) -> bool {
        self.allowed_identities.allows(identity)
            && ctx
                .allowed_identities
                .as_ref()
                .is_none_or(|list| list.allows(identity))
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The metrics this service records into.
    pub fn metrics(&self) -> &Arc<ServiceMetrics> {
        &self.metrics
    }

    /// The store's backend name (`memory`, `redis`).
    pub fn store_backend(&self) -> &'static str {
        self.store.backend_name()
    }

    /// The delivery backend's name.
    pub fn delivery_backend(&self) -> &'static str {
        self.delivery.name()
    }

    /// The backend that delivers to identities of `kind` (with
    /// `DELIVERY_BACKEND=auto`, the one it routes them to).
    pub fn delivery_backend_for(&self, kind: otp_core::IdentityKind) -> &'static str {
        self.delivery.name_for(kind)
    }

    /// Readiness (`/readyz`): the store answers now.
    ///
    /// With [`FailMode::Open`] the service keeps answering while the store is
    /// down, so it stays ready (a warning is logged): reporting not-ready
    /// would make an orchestrator pull every replica out of rotation, which
    /// defeats the choice of failing open. Use [`OtpService::store_ping`] for
    /// the store's own state.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        match self.store_ping().await {
            Ok(()) => Ok(()),
            Err(e) if self.fail_mode == FailMode::Open && e.is_unavailable() => {
                tracing::warn!(error = %e, "store unavailable; still ready because the fail mode is open");
                Ok(())
            }
            Err(e) => Err(ServiceError::Unavailable(e)),
        }
    }

    /// Pings the store, whatever the fail mode, and records the answer in
    /// the `otp_store_up` gauge (1 answered, 0 failed).
    pub async fn store_ping(&self) -> Result<(), StoreError> {
        let r = self.store.ping().await;
        self.metrics.store_up.set(i64::from(r.is_ok()));
        r
    }

    /// Counts a store error under `op`, one of [`StoreLabels::OPS`] (the
    /// series created at 0 by `build`).
    pub(crate) fn count_store_error(&self, op: &'static str) {
        debug_assert!(
            StoreLabels::OPS.contains(&op),
            "{op} is not in StoreLabels::OPS"
        );
        self.metrics
            .store_errors
            .get_or_create(&StoreLabels { op })
            .inc();
    }

    pub(crate) fn store_failed(
        &self,
        op: &'static str,
        err: StoreError,
    ) -> Result<(), ServiceError> {
        self.count_store_error(op);
        if let StoreError::Full { max_keys } = err {
            // Always refused: failing open here would switch the limits off
            // for every new identity while the store is full.
            // Counted, not logged per call: a spray at the ceiling must not
            // flood the log (the store warns once when it reaches it).
            self.metrics.store_full.inc();
            tracing::debug!(op, max_keys, "memory store full; refusing a new subject");
            return Err(ServiceError::Unavailable(err));
        }
        if err.is_unavailable() {
            self.metrics.store_up.set(0);
        }
        if err.is_unavailable() && self.fail_mode == FailMode::Open {
            tracing::warn!(op, error = %err, "store unavailable; proceeding because the fail mode is open");
            Ok(())
        } else {
            tracing::error!(op, error = %err, "store unavailable; refusing (fail closed)");
            Err(ServiceError::Unavailable(err))
        }
    }

    /// The limits of one request as one decision (SPEC §6): nothing is
    /// recorded unless every limit allows; when some deny, `RateLimited`
    /// names the one with the longest wait and carries that wait. With
    /// `read`, the counters come back too (one store call; one Redis round
    /// trip on standalone). `Ok(None)` when the store failed open.
    async fn decide(
        &self,
        checks: &[LimitCheck<'_>],
        read: Option<CounterRead<'_>>,
        operation: LimitedOperation,
        who: (&str, Fact<'_>),
    ) -> Result<Option<Checked>, ServiceError> {
        let checked = match self.store.check_all(checks, read).await {
            Ok(c) => c,
            Err(e) => {
                self.store_failed("limit", e)?;
                if read.is_some() {
                    // Failing open: the counter read failed with the same call.
                    self.count_store_error("counters");
                }
                return Ok(None);
            }
        };
        if checked.decisions.len() != checks.len() {
            return Err(ServiceError::Internal(
                "store returned the wrong number of limit decisions".into(),
            ));
        }
        if let Some(i) = checked.longest_denial() {
            for (c, d) in checks.iter().zip(&checked.decisions) {
                if !d.allowed {
                    self.metrics
                        .rate_limited
                        .get_or_create(&LimitLabels {
                            limit: c.policy.name,
                        })
                        .inc();
                }
            }
            let d = checked.decisions[i];
            let (identity, fact) = who;
            let fact = Fact {
                limit: Some(checks[i].policy.name),
                ..fact
            };
            self.auditor.emit(AuditEventKind::LimitHit, identity, fact);
            return Err(ServiceError::RateLimited {
                operation,
                limit: checks[i].policy.name,
                info: d.into(),
                retry_after_secs: d.retry_after_secs.max(1),
            });
        }
        match (&read, &checked.counters) {
            (Some(r), Some(c)) if c.len() == r.windows.len() => {}
            (None, None) => {}
            _ => {
                return Err(ServiceError::Internal(
                    "store returned the wrong number of counters".into(),
                ))
            }
        }
        Ok(Some(checked))
    }

    /// The network the per-IP limits count `ctx`'s client under.
    pub(crate) fn network(&self, ctx: &RequestContext) -> Option<String> {
        ctx.client_ip.map(|ip| client_network(ip, self.ipv6_prefix))
    }

    fn open_info(policy: &LimitPolicy) -> RateLimitInfo {
        RateLimitInfo {
            limit: policy.max,
            remaining: policy.max,
            window_secs: policy.window.as_secs(),
        }
    }

    fn counter_ttl(&self) -> Duration {
        Duration::from_secs(self.engine.counter_ttl_seconds())
    }

    /// Sends a code to `identity`.
    ///
    /// Order: normalize → can the delivery backend reach this kind of
    /// identity ([`Delivery::supports`]; if not, `DeliveryFailed` before any
    /// limit is spent) → per-IP limit → per-identity limit and use counter
    /// (one store call) → global limit → allowed identities → derive →
    /// deliver. Every limit that allowed the call has recorded it, also when
    /// a later step fails. An identity that
    /// [`ServiceConfig::allowed_identities`] refuses gets the same `Ok`
    /// answer as a delivered one (no enumeration), after the same limits
    /// and about the typical delivery time of its kind, and nothing is
    /// sent.
    #[tracing::instrument(name = "request_otp", skip_all, fields(kind))]
    pub async fn request_otp(
        &self,
        identity: &str,
        ctx: &RequestContext,
    ) -> Result<RequestOutcome, ServiceError> {
        self.request_otp_at(identity, ctx, unix_now()).await
    }

    /// [`OtpService::request_otp`] at an explicit unix time (tests, replays).
    pub async fn request_otp_at(
        &self,
        identity: &str,
        ctx: &RequestContext,
        now: u64,
    ) -> Result<RequestOutcome, ServiceError> {
        let identity = Identity::parse(identity)?;
        tracing::Span::current().record("kind", identity.kind().as_str());
        if !self.delivery.supports(identity.kind()) {
            // Nothing could be sent: refuse before spending any budget.
            let backend = self.delivery.name();
            tracing::warn!(
                backend,
                kind = identity.kind().as_str(),
                "delivery backend cannot reach this kind of identity"
            );
            return Err(ServiceError::DeliveryFailed(DeliveryError::new(
                backend,
                DeliveryErrorKind::Recipient,
                format!(
                    "the {backend} backend cannot deliver to {} identities",
                    identity.kind().as_str()
                ),
            )));
        }
        let l = &self.limits;
        let window = self.engine.window_at(now);
        let net = self.network(ctx);
        // Per-IP, per-identity and global limits as one decision, with the
        // use counter of the current window (one Redis round trip on
        // standalone; reserve-then-release on Cluster).
        let mut checks = Vec::with_capacity(3);
        if let Some(n) = &net {
            checks.push(LimitCheck::new(&l.request_per_ip, n));
        }
        checks.push(LimitCheck::new(&l.request_per_identity, identity.as_str()));
        checks.push(LimitCheck::new(&l.global_send, Limits::GLOBAL_KEY));
        let read = CounterRead {
            identity: identity.as_str(),
            windows: &[window],
            attempt: None,
        };
        let fact = Fact {
            ctx: Some(ctx),
            network: net.as_deref(),
            now: Some(now),
            ..Fact::default()
        };
        let checked = self
            .decide(
                &checks,
                Some(read),
                LimitedOperation::Request,
                (identity.as_str(), fact),
            )
            .await?;
        let per_identity = checked
            .as_ref()
            .and_then(|c| decision_of(&checks, c, &l.request_per_identity));
        let counters = checked.and_then(|c| c.counters).unwrap_or_else(|| vec![0]);
        let counter = counters.first().copied().unwrap_or(0);
        let ttl_seconds = self.engine.ttl_seconds(now);
        let expires_at = self.engine.expires_at(now);
        if self.is_allowed(&identity, ctx) {
            let code = self.engine.generate_for_window(&identity, window, counter);
            let message = OtpMessage::new(identity.clone(), code, ttl_seconds, expires_at);
            self.deliver(&message).await?;
            self.metrics.otp_requested.inc();
            self.auditor
                .emit(AuditEventKind::CodeSent, identity.as_str(), fact);
        } else {
            // SPEC §11: the caller cannot tell; only the operator's debug
            // log can (the kind, never the identity). Answered after the
            // time a delivery would typically have taken.
            tracing::debug!(
                kind = identity.kind().as_str(),
                "identity not among the allowed identities; nothing sent"
            );
            let pause = self.delivery_pace.typical(identity.kind());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(RequestOutcome {
            identity,
            ttl_seconds,
            expires_at,
            rate_limit: per_identity
                .map(RateLimitInfo::from)
                .unwrap_or_else(|| Self::open_info(&l.request_per_identity)),
        })
    }

    /// Hands `message` to delivery, counting the outcome and its latency
    /// under the backend that delivers to the identity's kind.
    async fn deliver(&self, message: &OtpMessage) -> Result<(), ServiceError> {
        let started = Instant::now();
        let result = self.delivery.deliver(message).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        let labels = DeliveryLabels {
            backend: self.delivery.name_for(message.kind()),
            outcome,
        };
        self.metrics.deliveries.get_or_create(&labels).inc();
        self.metrics
            .delivery_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            let backend = self.delivery.name();
            tracing::warn!(backend, error = %e, "OTP delivery failed");
            return Err(ServiceError::DeliveryFailed(e));
        }
        self.delivery_pace.record(message.kind(), started.elapsed());
        Ok(())
    }

    /// Verifies `code` for `identity` and issues a token.
    ///
    /// Order: normalize → code shape (422) → extra claims (a registered claim
    /// is `ReservedClaim`, before anything is spent) → one limit decision
    /// (per-IP network, identity, daily per identity and network, daily
    /// ceiling per identity) with the use counters of the candidate windows
    /// → constant-time match → on a match, compare-and-set of the matched
    /// counter (single use) which also voids every other code of the
    /// acceptance range and clears the identity's verify limit (the daily
    /// limits stay) → sign the token. A wrong code counts
    /// against the attempt budget of every code it may have hit. An identity
    /// that [`ServiceConfig::allowed_identities`] refuses fails exactly as a
    /// wrong code does, after the same limits and the same comparison.
    ///
    /// Runs in the span `verify_otp` with the identity's `kind`; an
    /// identity that does not parse is refused before the span opens
    /// (nothing is logged in between).
    pub async fn verify_otp(
        &self,
        identity: &str,
        code: &str,
        ctx: &RequestContext,
        options: VerifyOptions,
    ) -> Result<VerifyOutcome, ServiceError> {
        use tracing::Instrument;
        let identity = Identity::parse(identity)?;
        // The kind is known when the span opens: recording it afterwards
        // formatted the span's fields a second time (about 2 k
        // instructions a verify; issue 17).
        let span = tracing::info_span!("verify_otp", kind = identity.kind().as_str());
        self.verify_identity_at(identity, code, ctx, options, unix_now())
            .instrument(span)
            .await
    }

    /// [`OtpService::verify_otp`] at an explicit unix time (records the
    /// identity's kind in the current span, if it has a `kind` field).
    pub async fn verify_otp_at(
        &self,
        identity: &str,
        code: &str,
        ctx: &RequestContext,
        options: VerifyOptions,
        now: u64,
    ) -> Result<VerifyOutcome, ServiceError> {
        let identity = Identity::parse(identity)?;
        tracing::Span::current().record("kind", identity.kind().as_str());
        self.verify_identity_at(identity, code, ctx, options, now)
            .await
    }

    /// The body of [`OtpService::verify_otp_at`] for a parsed identity.
    async fn verify_identity_at(
        &self,
        identity: Identity,
        code: &str,
        ctx: &RequestContext,
        options: VerifyOptions,
        now: u64,
    ) -> Result<VerifyOutcome, ServiceError> {
        let code = OtpCode::parse(code).map_err(|_| ServiceError::InvalidCodeFormat)?;
        refuse_registered_claims(&options.extra_claims)?;
        let l = &self.limits;
        let id = identity.as_str();
        let net = self.network(ctx);
        let windows = self.engine.candidate_windows(now);
        let checks = self.verify_checks(id, net.as_deref());
        // With single use and a budget, the decision also counts this
        // attempt at every candidate code (one store step for a wrong code).
        let counting = self.single_use && self.max_attempts > 0;
        let read = CounterRead {
            identity: id,
            windows: windows.as_slice(),
            attempt: counting.then(|| self.counter_ttl()),
        };
        let fact = Fact {
            ctx: Some(ctx),
            network: net.as_deref(),
            now: Some(now),
            ..Fact::default()
        };
        let checked = self
            .decide(&checks, Some(read), LimitedOperation::Verify, (id, fact))
            .await?;
        let info = checked
            .as_ref()
            .and_then(|c| decision_of(&checks, c, &l.verify_per_identity))
            .map(RateLimitInfo::from)
            .unwrap_or_else(|| Self::open_info(&l.verify_per_identity));
        let (counters, counted) = checked.map_or((None, None), |c| (c.counters, c.failures));
        let counters = counters.unwrap_or_else(|| vec![0; windows.as_slice().len()]);
        let counted = counted.as_deref();
        // A count past the budget: guesses in flight before this one
        // (each counted its own attempt) used it up, and the one that
        // reached it voids the codes if it was wrong or resets the counts
        // if it was right. This one is not compared, and writes nothing:
        // voiding here could void a right code that reached the budget
        // before its compare-and-set (concurrent submissions of one code
        // must still yield one success).
        if counted.is_some_and(|f| f.iter().any(|&n| n > self.max_attempts)) {
            self.metrics.otp_failed.inc();
            self.auditor
                .emit(AuditEventKind::CodeWrong, identity.as_str(), fact);
            return Err(ServiceError::InvalidOtp { rate_limit: info });
        }
        let matched = match self.engine.verify(&identity, &code, now, &counters) {
            // Compared first, so a refused identity costs the same time.
            Ok(_) if !self.is_allowed(&identity, ctx) => {
                return Err(self
                    .wrong_code(&identity, windows.as_slice(), info, fact, counted)
                    .await);
            }
            Ok(m) => m,
            Err(VerifyError::Malformed { .. } | VerifyError::NoMatch) => {
                return Err(self
                    .wrong_code(&identity, windows.as_slice(), info, fact, counted)
                    .await);
            }
            Err(e) => {
                return Err(ServiceError::Internal(e.to_string()));
            }
        };
        let sid = self.new_session()?;
        let created = self
            .spend(
                id,
                &matched,
                windows.as_slice(),
                info,
                sid.as_ref(),
                counted.is_some(),
            )
            .await?;
        let session = match sid.filter(|_| created) {
            Some(s) => Some((s, self.first_refresh(id, s, now)?)),
            None => None,
        };
        let sid = session.as_ref().map(|(sid, _)| sid);
        self.auditor
            .emit(AuditEventKind::SignIn, id, Fact { sid, ..fact });
        let issued = match &session {
            Some((sid, _)) => {
                self.tokens
                    .issue_for_session(id, now, sid, now, options.extra_claims)
            }
            None => self.tokens.issue(id, now, options.extra_claims),
        };
        let token = issued.map_err(token_issue_error)?;
        self.metrics.otp_verified.inc();
        Ok(VerifyOutcome {
            identity,
            token,
            refresh: session.map(|(_, refresh)| refresh),
            rate_limit: RateLimitInfo {
                remaining: l.verify_per_identity.max,
                ..info
            },
        })
    }

    /// The limits of one verify, as one decision: per-IP network, identity,
    /// daily per identity and network, daily ceiling per identity.
    fn verify_checks<'a>(&'a self, id: &'a str, net: Option<&'a str>) -> Vec<LimitCheck<'a>> {
        let l = &self.limits;
        let mut checks = Vec::with_capacity(4);
        if let Some(n) = net {
            checks.push(LimitCheck::new(&l.verify_per_ip, n));
        }
        checks.push(LimitCheck::new(&l.verify_per_identity, id));
        let daily = LimitCheck::new(&l.verify_daily, id);
        checks.push(match net {
            Some(n) => daily.scoped(n),
            None => daily,
        });
        checks.push(LimitCheck::new(&self.verify_daily_ceiling, id));
        checks
    }

    /// Spends the `matched` code of `id`. With single use, one store call
    /// compares-and-sets its counter, voids every other code of `windows`
    /// and clears the verify limit (not the daily ones); a lost
    /// compare-and-set is a replay (`InvalidOtp` with `info`). Without,
    /// only the verify limit is cleared. With `session`, the winning step
    /// also creates that session (the same store call with single use, a
    /// second one without); `Ok(true)` if and only if it was created
    /// (false when the store failed open). With `counted` (the decision
    /// counted this attempt), the winning step also resets the failure
    /// counts of `windows`: the codes it voids are the ones they counted.
    async fn spend(
        &self,
        id: &str,
        matched: &Match,
        windows: &[u64],
        info: RateLimitInfo,
        session: Option<&SessionId>,
        counted: bool,
    ) -> Result<bool, ServiceError> {
        let verify_limit = &self.limits.verify_per_identity;
        if !self.single_use {
            if let Err(e) = self.store.clear(verify_limit, id).await {
                self.store_failed("clear", e)?;
            }
            return match session {
                Some(sid) => self.create_session(id, sid).await,
                None => Ok(false),
            };
        }
        let clear = [LimitCheck::new(verify_limit, id)];
        let sid = session.map(SessionId::to_string);
        let step = CounterAdvance {
            identity: id,
            window: matched.window,
            from: matched.counter,
            void: windows,
            ttl: self.counter_ttl(),
            clear: &clear,
            session: sid.as_deref().map(|sid| SessionStart {
                sid,
                ttl: self.sessions.refresh_ttl,
                max_lifetime: self.sessions.max_lifetime,
            }),
            reset_failures: counted,
        };
        match self.store.advance_all(&step).await {
            Ok(true) => Ok(session.is_some()),
            Ok(false) => {
                // Another submission of this code won the race: replay.
                self.metrics.otp_failed.inc();
                Err(ServiceError::InvalidOtp { rate_limit: info })
            }
            Err(e) => {
                self.store_failed("advance", e)?;
                // Failing open: the clear failed with the same call, and
                // no session was created.
                self.count_store_error("clear");
                Ok(false)
            }
        }
    }

    /// A wrong (or wrong-length) code: counts it against the attempt budget
    /// of every code it may have hit.
    ///
    /// A guess made at `now` is compared with the code of every candidate
    /// window (`w - drift ..= w`, and `w + 1` in the clock-skew period
    /// before it starts), so it counts under each of them: every code's
    /// whole acceptance period — the skew period before its window included
    /// — is counted under its own window, and no timing gives more than
    /// `max_attempts` wrong tries at one code (SPEC §3.3). Counting `w + 1`
    /// matters although no code of `w + 1` has been sent yet: its code for
    /// use counter 0 is already fixed, and is the one a request in `w + 1`
    /// will deliver. When one count reaches the budget, the use counters of
    /// all candidate windows advance and every code already sent is void.
    /// The price: guesses made while an old code was valid also count
    /// towards a code newly issued in the same window (until a sign-in or
    /// a used-up budget voids the codes and resets the counts).
    ///
    /// `counted` holds the failure counts when the decision already counted
    /// this attempt (`CounterRead::attempt`): then the store is written
    /// only when a count reached the budget (the codes are voided, a
    /// second step). Without (no counting store answer, e.g. failing open)
    /// the failure is recorded here, as one store call.
    async fn wrong_code(
        &self,
        identity: &Identity,
        windows: &[u64],
        info: RateLimitInfo,
        fact: Fact<'_>,
        counted: Option<&[u32]>,
    ) -> ServiceError {
        self.metrics.otp_failed.inc();
        self.auditor
            .emit(AuditEventKind::CodeWrong, identity.as_str(), fact);
        if self.single_use && self.max_attempts > 0 {
            let outcome = match counted {
                Some(f) if f.iter().any(|&n| n >= self.max_attempts) => self
                    .store
                    .void_codes(identity.as_str(), windows, self.counter_ttl())
                    .await
                    .map(|()| true),
                Some(_) => Ok(false),
                // Every window in range in one store call (one Redis round trip).
                None => self
                    .store
                    .record_failures(
                        identity.as_str(),
                        windows,
                        windows,
                        self.max_attempts,
                        self.counter_ttl(),
                    )
                    .await
                    .map(|outcomes| outcomes.iter().any(|o| o.exhausted)),
            };
            let exhausted = match outcome {
                Ok(exhausted) => exhausted,
                Err(e) => {
                    if let Err(err) = self.store_failed("failure", e) {
                        return err;
                    }
                    false
                }
            };
            if exhausted {
                tracing::info!(
                    kind = identity.kind().as_str(),
                    "attempt budget used up; codes already sent are void"
                );
                self.auditor
                    .emit(AuditEventKind::AttemptsExhausted, identity.as_str(), fact);
            }
        }
        ServiceError::InvalidOtp { rate_limit: info }
    }

    /// Verifies a token now (the bearer hot path; no store, no delivery).
    pub fn verify_token(&self, token: &str) -> Result<Claims, TokenError> {
        self.tokens.verify(token, unix_now())
    }

    /// Token introspection: `{active: true, claims}` for a valid token,
    /// `{active: false, claims: null}` for anything else.
    pub fn introspect(&self, token: &str) -> TokenStatus {
        match self.verify_token(token) {
            Ok(claims) => TokenStatus {
                active: true,
                claims: claims_map(&claims),
            },
            Err(_) => TokenStatus {
                active: false,
                claims: None,
            },
        }
    }
}

/// The decision of the check whose policy is `policy` (by name).
/// Refuses a registered claim (`sub`, `exp`, …) among `extra` before
/// anything is spent: checked only at signing time, the code would already
/// be used up (single use) and the verify budget cleared, with no token to
/// show for it.
fn refuse_registered_claims(extra: &Map<String, Value>) -> Result<(), ServiceError> {
    match extra
        .keys()
        .find(|k| REGISTERED_CLAIMS.contains(&k.as_str()))
    {
        Some(name) => Err(ServiceError::ReservedClaim(name.clone())),
        None => Ok(()),
    }
}

/// The service error of a failed token issue.
fn token_issue_error(e: TokenError) -> ServiceError {
    match e {
        TokenError::ReservedClaim(name) => ServiceError::ReservedClaim(name),
        other => ServiceError::Internal(format!("token issue failed: {other}")),
    }
}

fn decision_of(checks: &[LimitCheck<'_>], c: &Checked, policy: &LimitPolicy) -> Option<Decision> {
    checks
        .iter()
        .position(|k| k.policy.name == policy.name)
        .and_then(|i| c.decisions.get(i).copied())
}

/// Claims as a JSON object (for introspection bodies).
pub(crate) fn claims_map(claims: &Claims) -> Option<Map<String, Value>> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}
