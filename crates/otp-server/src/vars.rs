//! Every configuration variable the binary reads, in one table: name,
//! concern, default, accepted range, whether it is secret, the library field
//! it fills and what it means. Everything else is generated from it:
//!
//! - the defaults layered under the TOML file and the environment
//!   ([`RawSettings::load`](crate::settings::RawSettings::load));
//! - the ranges the per-concern builders in [`settings`](crate::settings)
//!   check (`RawSettings::num`);
//! - the variable tables: `otp-server env` (one table), `otp-server env
//!   --grouped` (one per concern), the README's copy and docs/operations.md's
//!   copy, which `tests/server/readme.rs` compares byte for byte (run it with
//!   `UPDATE_VAR_TABLES=1` to rewrite both files);
//! - the field → variable mapping that turns a library's error ("smtp.host:
//!   must be set…") into the binary's one line ("SMTP_HOST: must be set…").
//!
//! Defaults are functions over the libraries' own `Default`s and constants
//! (`OtpPolicy::default()`, `Limits::default()`, `DEFAULT_SMTP_PORT`, …),
//! so a library default changes the table with it; a test checks that a
//! configuration of defaults only builds exactly the libraries' `Default`s.
//! To add a variable: add a row here, read it in its concern's builder, run
//! the readme test with `UPDATE_VAR_TABLES=1`.

use otp_core::{OtpPolicy, MAX_DIGITS, MIN_DIGITS};
use otp_core::{TokenConfig, DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use otp_core::{MAX_DRIFT, MIN_WINDOW_SECONDS};
use otp_delivery::config::{DEFAULT_SMTP_PORT, DEFAULT_SMTP_SUBJECT, DEFAULT_TWILIO_API_BASE};
use otp_delivery::{
    DeliveryRetryPolicy, MAX_ATTEMPTS as MAX_DELIVERY_ATTEMPTS, MAX_TIMEOUT_SECONDS,
};
use otp_service::Limits;

use crate::settings::server as srv;

/// The concern a variable belongs to; one builder in
/// [`settings`](crate::settings) reads the variables of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// Listener, workers, timeouts, logs.
    Server,
    /// CORS and trusted proxies.
    Http,
    /// Code length, window, algorithm, single use, attempt budget.
    OtpPolicy,
    /// The OTP keys.
    Keys,
    /// Token algorithm, keys and claims.
    Tokens,
    /// The abuse limits.
    Limits,
    /// Memory or Redis.
    Store,
    /// Delivery backends and retries.
    Delivery,
    /// Who may sign in and the web gate (SPEC §11).
    Gate,
    /// Audit events and the audit webhook.
    Audit,
}

impl Concern {
    /// Every concern, in table order.
    pub const ALL: [Concern; 10] = [
        Concern::Server,
        Concern::Http,
        Concern::OtpPolicy,
        Concern::Keys,
        Concern::Tokens,
        Concern::Limits,
        Concern::Store,
        Concern::Delivery,
        Concern::Gate,
        Concern::Audit,
    ];

    /// Heading of this concern's table in docs/operations.md.
    pub fn title(self) -> &'static str {
        match self {
            Concern::Server => "Server",
            Concern::Http => "HTTP",
            Concern::OtpPolicy => "OTP policy",
            Concern::Keys => "OTP keys",
            Concern::Tokens => "Tokens",
            Concern::Limits => "Limits",
            Concern::Store => "Store",
            Concern::Delivery => "Delivery",
            Concern::Gate => "Who may sign in and the web gate",
            Concern::Audit => "Audit",
        }
    }
}

/// One configuration variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Environment variable name (the TOML file uses the same name in any case).
    pub name: &'static str,
    /// The builder that reads it.
    pub concern: Concern,
    /// The default value, as text, computed from the library's default
    /// (`None` = unset unless set; required where `doc` says so).
    pub default: Option<fn() -> String>,
    /// Inclusive range of an integer variable.
    pub range: Option<(u64, u64)>,
    /// Redacted by `check-config`, never logged, never trimmed, and
    /// also readable from a file named by `<NAME>_FILE`.
    pub secret: bool,
    /// The library configuration field it fills, as library errors name
    /// it (`smtp.host`); the binary maps it back to `name`.
    pub field: Option<&'static str>,
    /// One-line meaning.
    pub doc: &'static str,
}

impl Var {
    const fn new(concern: Concern, name: &'static str, doc: &'static str) -> Var {
        Var {
            name,
            concern,
            default: None,
            range: None,
            secret: false,
            field: None,
            doc,
        }
    }
    const fn or(mut self, default: fn() -> String) -> Var {
        self.default = Some(default);
        self
    }
    const fn range(mut self, min: u64, max: u64) -> Var {
        self.range = Some((min, max));
        self
    }
    const fn secret(mut self) -> Var {
        self.secret = true;
        self
    }
    const fn field(mut self, field: &'static str) -> Var {
        self.field = Some(field);
        self
    }

    /// The default as text, if any.
    pub fn default_text(&self) -> Option<String> {
        self.default.map(|f| f())
    }
}

use Concern as C;

fn t(s: &str) -> String {
    s.to_owned()
}

/// All variables, in the order `check-config` and `otp-server env` print them.
pub const VARS: &[Var] = &[
    // server
    Var::new(C::Server, "BIND_ADDRESS", "Listen address (the --bind flag wins).").or(|| srv::DEFAULT_BIND.to_string()),
    Var::new(C::Server, "WORKERS", "actix worker threads; defaults to the number of CPU cores minus one (at least 1: one on a 2-core host).").range(1, srv::MAX_WORKERS),
    Var::new(C::Server, "SHUTDOWN_TIMEOUT_SECONDS", "On SIGTERM/SIGINT, how long in-flight requests may finish.").or(|| srv::DEFAULT_SHUTDOWN_TIMEOUT_SECONDS.to_string()).range(0, 3600),
    Var::new(C::Server, "CLIENT_REQUEST_TIMEOUT_MS", "A client must send its request head within this time, then its body within this time again (slowloris guard: a slower body gets 408 and its connection is closed).").or(|| srv::DEFAULT_CLIENT_REQUEST_TIMEOUT_MS.to_string()).range(100, 600_000),
    Var::new(C::Server, "KEEP_ALIVE_SECONDS", "Idle keep-alive connections are closed after this time.").or(|| srv::DEFAULT_KEEP_ALIVE_SECONDS.to_string()).range(0, 3600),
    Var::new(C::Server, "MAX_CONNECTIONS", "Concurrent connections per worker.").or(|| srv::DEFAULT_MAX_CONNECTIONS.to_string()).range(1, 1_000_000),
    Var::new(C::Server, "LOG_FORMAT", "pretty or json.").or(|| t("pretty")),
    Var::new(C::Server, "RUST_LOG", "tracing filter (e.g. info,otp_service=debug).").or(|| t("info")),
    Var::new(C::Server, "REDIS_STARTUP_WAIT_SECONDS", "At start-up, wait this long for Redis to answer before serving without it (requests that need it answer 503; it connects in the background); 0 = do not wait.").or(|| srv::DEFAULT_STORE_WAIT_SECONDS.to_string()).range(0, 3600),
    // http
    Var::new(C::Http, "CORS_ORIGINS", "Comma-separated allowed origins as browsers send them, scheme://host[:port] without a path or trailing slash; * = any origin without credentials; unset = CORS off. While set, the fast lane is off (forward auth, code checks and refreshes go through the whole App: every answer passes the CORS layer)."),
    Var::new(C::Http, "TRUSTED_PROXIES", "Comma-separated CIDRs whose X-Forwarded-For hops are believed."),
    Var::new(C::Http, "ACCESS_LOG", "One info line per request (target otp_http::access): method, route template, status, latency_ms and the request id; never an identity, code or token. On, the fast lane is off (forward auth, code checks and refreshes go through the whole App: every request gets its line).").or(|| otp_http::HttpConfig::default().access_log.to_string()),
    Var::new(C::Http, "READYZ_REQUIRES_STORE", "`/readyz` answers 503 while the store (Redis) does not answer. Off: readiness is about this process, a Redis outage keeps every replica in rotation (token verification needs no store) and shows as `store_status: unavailable` and `otp_store_up 0`.").or(|| otp_http::HttpConfig::default().readyz_requires_store.to_string()),
    // OTP policy
    Var::new(C::OtpPolicy, "OTP_DIGITS", "Code length (OTP_LENGTH is accepted as an alias).").or(|| OtpPolicy::default().digits().count().to_string()).range(MIN_DIGITS as u64, MAX_DIGITS as u64),
    Var::new(C::OtpPolicy, "OTP_WINDOW_SECONDS", "Time window of one code.").or(|| OtpPolicy::default().window_seconds().to_string()).range(MIN_WINDOW_SECONDS, 86_400),
    Var::new(C::OtpPolicy, "OTP_ALGORITHM", "HMAC hash: sha1, sha256 or sha512.").or(|| OtpPolicy::default().algorithm().as_str().to_owned()),
    Var::new(C::OtpPolicy, "OTP_DRIFT_TOLERANCE", "Past windows still accepted.").or(|| OtpPolicy::default().drift_tolerance().to_string()).range(0, MAX_DRIFT as u64),
    Var::new(C::OtpPolicy, "OTP_CLOCK_SKEW_SECONDS", "Accept the next window this close to its start; below the window.").or(|| OtpPolicy::default().clock_skew_seconds().to_string()),
    Var::new(C::OtpPolicy, "OTP_SINGLE_USE", "Codes verify once (use counters); false = the Python service's behaviour.").or(|| t("true")),
    Var::new(C::OtpPolicy, "OTP_MAX_ATTEMPTS", "Wrong codes per identity and window before every sent code is void; 0 = off.").or(|| otp_service::DEFAULT_MAX_ATTEMPTS.to_string()).range(0, 1000),
    // keys
    Var::new(C::Keys, "OTP_SECRET_KEY", "base64 (standard or URL-safe) of >= 16 random bytes. Required unless --dev.").secret(),
    Var::new(C::Keys, "OTP_PREVIOUS_SECRET_KEYS", "Comma-separated previous OTP keys: verify only (rotation).").secret(),
    // tokens
    Var::new(C::Tokens, "JWT_ALGORITHM", "HS256 or EdDSA.").or(|| t("HS256")),
    Var::new(C::Tokens, "JWT_SECRET", "HS256 key (UTF-8 bytes), >= 32 bytes. Required for HS256 unless --dev.").secret(),
    Var::new(C::Tokens, "JWT_PREVIOUS_SECRETS", "Comma-separated previous HS256 secrets: verify only.").secret(),
    Var::new(C::Tokens, "JWT_ED25519_PRIVATE_KEY", "EdDSA signing key: PKCS#8, base64 DER or PEM. Required for EdDSA unless --dev.").secret(),
    Var::new(C::Tokens, "JWT_ED25519_PREVIOUS_KEYS", "Comma-separated previous Ed25519 keys (PKCS#8 base64 DER, or base64url 32-byte public keys): verify only, published in the JWKS.").secret(),
    Var::new(C::Tokens, "TOKEN_ISSUER", "iss of issued tokens, required on verify.").or(|| t(DEFAULT_ISSUER)).field("issuer"),
    Var::new(C::Tokens, "TOKEN_AUDIENCE", "aud of issued tokens, required on verify.").or(|| t(DEFAULT_AUDIENCE)).field("audience"),
    Var::new(C::Tokens, "ACCESS_TOKEN_TTL", "Token lifetime in seconds.").or(|| TokenConfig::default().ttl_seconds.to_string()).range(1, 31_536_000).field("ttl_seconds"),
    Var::new(C::Tokens, "TOKEN_LEEWAY_SECONDS", "Clock leeway on exp/nbf/iat.").or(|| TokenConfig::default().leeway_seconds.to_string()).range(0, 3600),
    Var::new(C::Tokens, "SESSIONS", "on: a verify also returns a refresh token and starts a session (SPEC §10); off: access tokens only.").or(|| t("on")),
    Var::new(C::Tokens, "REFRESH_TOKEN_TTL", "Idle lifetime of a refresh token and its session record, seconds (renewed by each refresh).").or(|| otp_service::DEFAULT_REFRESH_TOKEN_TTL_SECONDS.to_string()).range(1, 31_536_000),
    Var::new(C::Tokens, "SESSION_MAX_LIFETIME", "Absolute lifetime of a session from sign-in, seconds; no refresh extends it.").or(|| otp_service::DEFAULT_SESSION_MAX_LIFETIME_SECONDS.to_string()).range(1, 31_536_000),
    Var::new(C::Tokens, "REFRESH_REUSE_GRACE_SECONDS", "After a refresh, the previous refresh token gets the same successor for this long; later it counts as reuse and revokes the session.").or(|| otp_service::DEFAULT_REFRESH_REUSE_GRACE_SECONDS.to_string()).range(0, 300),
    // limits
    Var::new(C::Limits, "RATE_REQUEST_OTP_MAX", "OTP sends per identity per window.").or(|| Limits::default().request_per_identity.max.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_REQUEST_OTP_WINDOW", "Window of RATE_REQUEST_OTP_MAX, seconds.").or(|| Limits::default().request_per_identity.window.as_secs().to_string()).range(1, MAX_LIMIT_WINDOW),
    Var::new(C::Limits, "RATE_VERIFY_OTP_MAX", "Verify attempts per identity per window (cleared on success).").or(|| Limits::default().verify_per_identity.max.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_VERIFY_OTP_WINDOW", "Window of RATE_VERIFY_OTP_MAX, seconds.").or(|| Limits::default().verify_per_identity.window.as_secs().to_string()).range(1, MAX_LIMIT_WINDOW),
    Var::new(C::Limits, "RATE_VERIFY_OTP_DAILY_MAX", "Verify attempts per identity and client network per 86400 s.").or(|| Limits::default().verify_daily.max.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_VERIFY_OTP_DAILY_IDENTITY_MAX", "Verify attempts per identity per 86400 s from every network together (the ceiling above RATE_VERIFY_OTP_DAILY_MAX).").or(|| otp_service::DEFAULT_VERIFY_DAILY_CEILING.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_IPV6_PREFIX", "Per-IP limits count an IPv6 client by this prefix length (IPv4 per address, IPv4-mapped IPv6 as IPv4).").or(|| otp_service::DEFAULT_IPV6_PREFIX.to_string()).range(otp_service::MIN_IPV6_PREFIX as u64, otp_service::MAX_IPV6_PREFIX as u64),
    Var::new(C::Limits, "RATE_REQUEST_OTP_PER_IP_MAX", "OTP sends per client IP per window.").or(|| Limits::default().request_per_ip.max.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_REQUEST_OTP_PER_IP_WINDOW", "Window of RATE_REQUEST_OTP_PER_IP_MAX, seconds.").or(|| Limits::default().request_per_ip.window.as_secs().to_string()).range(1, MAX_LIMIT_WINDOW),
    Var::new(C::Limits, "RATE_VERIFY_OTP_PER_IP_MAX", "Verify attempts per client IP per window.").or(|| Limits::default().verify_per_ip.max.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_VERIFY_OTP_PER_IP_WINDOW", "Window of RATE_VERIFY_OTP_PER_IP_MAX, seconds.").or(|| Limits::default().verify_per_ip.window.as_secs().to_string()).range(1, MAX_LIMIT_WINDOW),
    Var::new(C::Limits, "RATE_GLOBAL_SEND_MAX", "OTP sends overall per window (SMS-pumping cost guard).").or(|| Limits::default().global_send.max.to_string()).range(1, MAX_LIMIT),
    Var::new(C::Limits, "RATE_GLOBAL_SEND_WINDOW", "Window of RATE_GLOBAL_SEND_MAX, seconds.").or(|| Limits::default().global_send.window.as_secs().to_string()).range(1, MAX_LIMIT_WINDOW),
    Var::new(C::Limits, "RATE_LIMIT_FAIL_MODE", "closed (503 when the store is down) or open (proceed, with a warning).").or(|| t("closed")),
    // store
    Var::new(C::Store, "STORE_BACKEND", "memory (one process) or redis (shared by replicas).").or(|| t("memory")),
    Var::new(C::Store, "REDIS_URL", "redis://host:port (standalone) or several comma-separated node URLs (Cluster). Required with STORE_BACKEND=redis.").secret().field("store.redis.urls"),
    Var::new(C::Store, "REDIS_CLUSTER", "auto (several URLs = Cluster), true or false.").or(|| t("auto")),
    Var::new(C::Store, "REDIS_KEY_PREFIX", "Prefix of every Redis key.").or(redis_key_prefix),
    Var::new(C::Store, "REDIS_TIMEOUT_MS", "Redis connect and response timeout, milliseconds.").or(redis_timeout_ms).range(10, 60_000),
    Var::new(C::Store, "STORE_MEMORY_MAX_KEYS", "Memory store: most items tracked at once (subjects: identities, client networks; plus session records and sign-out epochs); past it, requests that would track a new subject get 503, and tracked users are still served, sign in with a session and sign out.").or(|| otp_ratelimit::DEFAULT_MAX_KEYS.to_string()).range(1, 1_000_000_000),
    Var::new(C::Store, "STORE_HASH_KEY", "base64 of >= 16 random bytes hashing identities in store keys (e.g. from `otp-server keygen otp`); shared by all replicas. Default: derived from the oldest OTP key; pin it before retiring a rotated OTP key.").secret(),
    // delivery
    Var::new(C::Delivery, "DELIVERY_BACKEND", "smtp, twilio, webhook, auto, console or none (benchmarks only). Required outside --dev (which defaults to console); console prints every code to the log and warns at each start.").field("delivery.backend"),
    Var::new(C::Delivery, "DELIVERY_TIMEOUT_SECONDS", "Per-attempt delivery timeout.").or(|| DeliveryRetryPolicy::default().timeout.as_secs().to_string()).range(1, MAX_TIMEOUT_SECONDS).field("retry.timeout"),
    Var::new(C::Delivery, "DELIVERY_MAX_ATTEMPTS", "Attempts per delivery (retries on connect errors, timeouts and 5xx).").or(|| DeliveryRetryPolicy::default().max_attempts.to_string()).range(1, MAX_DELIVERY_ATTEMPTS as u64).field("retry.max_attempts"),
    Var::new(C::Delivery, "DELIVERY_RETRY_BACKOFF_MS", "First retry backoff, doubled per attempt (max 2 s), with jitter.").or(|| DeliveryRetryPolicy::default().initial_backoff.as_millis().to_string()).range(0, 60_000).field("retry.initial_backoff"),
    Var::new(C::Delivery, "SMTP_HOST", "SMTP relay host. Required with DELIVERY_BACKEND=smtp.").field("smtp.host"),
    Var::new(C::Delivery, "SMTP_PORT", "SMTP port.").or(|| DEFAULT_SMTP_PORT.to_string()).range(1, 65_535).field("smtp.port"),
    Var::new(C::Delivery, "SMTP_USERNAME", "SMTP user.").field("smtp.username"),
    Var::new(C::Delivery, "SMTP_PASSWORD", "SMTP password.").secret().field("smtp.password"),
    Var::new(C::Delivery, "SMTP_FROM", "From address. Required with SMTP.").field("smtp.from"),
    Var::new(C::Delivery, "SMTP_TLS", "starttls, tls or none.").or(|| otp_delivery::SmtpTls::default().as_str().to_owned()).field("smtp.tls"),
    Var::new(C::Delivery, "SMTP_USE_TLS", "Legacy: true = starttls, false = none (SMTP_TLS wins when set).").field("smtp.use_tls"),
    Var::new(C::Delivery, "SMTP_CA_FILE", "PEM file of extra CA certificates (private relays).").field("smtp.ca_file"),
    Var::new(C::Delivery, "SMTP_SUBJECT_TEMPLATE", "Subject; {otp} and {minutes} are replaced.").or(|| t(DEFAULT_SMTP_SUBJECT)).field("smtp.subject_template"),
    Var::new(C::Delivery, "SMTP_BODY_TEMPLATE", "Plain-text body template ({otp}, {minutes}).").field("smtp.body_template"),
    Var::new(C::Delivery, "SMTP_HTML_TEMPLATE", "HTML body template ({otp}, {minutes}; values HTML-escaped).").field("smtp.html_template"),
    Var::new(C::Delivery, "TWILIO_ACCOUNT_SID", "Twilio account SID. Required with twilio.").field("twilio.account_sid"),
    Var::new(C::Delivery, "TWILIO_AUTH_TOKEN", "Twilio auth token.").secret().field("twilio.auth_token"),
    Var::new(C::Delivery, "TWILIO_FROM_NUMBER", "Sender number, or a Messaging Service SID (MG…).").field("twilio.from_number"),
    Var::new(C::Delivery, "TWILIO_MESSAGING_SERVICE_SID", "Messaging Service SID (instead of a from number).").field("twilio.messaging_service_sid"),
    Var::new(C::Delivery, "TWILIO_API_BASE", "Twilio API base URL (tests point it at a mock).").or(|| t(DEFAULT_TWILIO_API_BASE)).field("twilio.api_base"),
    Var::new(C::Delivery, "TWILIO_BODY_TEMPLATE", "SMS text template ({otp}, {minutes}).").field("twilio.body_template"),
    Var::new(C::Delivery, "WEBHOOK_URL", "Receiver URL. Required with webhook.").field("webhook.url"),
    Var::new(C::Delivery, "WEBHOOK_HEADERS", "Extra headers: 'Name: value' pairs separated by commas/newlines, or a JSON object.").secret().field("webhook.headers"),
    Var::new(C::Delivery, "WEBHOOK_SECRET", "Standard Webhooks signing secret, whsec_<base64>.").secret().field("webhook.secret"),
    Var::new(C::Delivery, "WEBHOOK_TEMPLATE", "JSON body template; placeholders are JSON-escaped values.").field("webhook.template"),
    // who may sign in, the web gate (SPEC §11)
    Var::new(C::Gate, "ALLOWED_IDENTITIES", "Who may receive a code through the JSON API: entries separated by commas or spaces, each an identity (normalized), *@domain (that domain only), a phone prefix like +44*, or *; unset = anyone. A refused identity gets the usual answer and no code (docs/security.md)."),
    Var::new(C::Gate, "GATE", "on: serve the sign-in pages and session cookies of the web gate (docs/gate.md); off: the API only.").or(|| t("off")),
    Var::new(C::Gate, "GATE_PATH", "Where the gate's pages live (login, verify, renew, logout), no trailing slash.").or(|| t(otp_http::gate::DEFAULT_GATE_PATH)),
    Var::new(C::Gate, "GATE_URL", "The gate's public origin, https://host[:port] without a path: the renew URL of forward auth and the only origin form posts are accepted from. Required with GATE=on unless --dev (then http://127.0.0.1:<port>)."),
    Var::new(C::Gate, "GATE_TITLE", "The site's name on every gate page, at most 100 characters.").or(|| t(otp_http::gate::DEFAULT_GATE_TITLE)),
    Var::new(C::Gate, "GATE_COOKIE_DOMAIN", "Domain of the otp_session cookie (e.g. example.com for apps on its subdomains); unset = host-only. otp_refresh is always host-only."),
    Var::new(C::Gate, "GATE_ALLOWED_IDENTITIES", "Who may sign in through the gate, in the ALLOWED_IDENTITIES syntax. Required with GATE=on (* for anyone)."),
    Var::new(C::Gate, "GATE_ALLOWED_HOSTS", "Hosts rd may send a browser to after sign-in: exact names or *.example.com (one or more labels under it, not the apex); https unless --dev. Each must receive the session cookie (GATE_URL's host, or under GATE_COOKIE_DOMAIN). Unset = GATE_URL's host."),
    Var::new(C::Gate, "GATE_DEFAULT_REDIRECT", "Where a sign-in without an allowed rd lands; must itself be allowed. Required with GATE=on unless --dev (then GATE_URL/)."),
    // audit (SPEC §10; docs/audit.md)
    Var::new(C::Audit, "AUDIT_INCLUDE_IDENTITY", "Audit events name the identity and the client network themselves; false = keyed pseudonyms (stable across replicas, meaningless without OTP_SECRET_KEY).").or(|| t("false")),
    Var::new(C::Audit, "AUDIT_WEBHOOK_URL", "Also POST every audit event to this URL, signed per Standard Webhooks (queued, retried; never slows a request); unset = log only.").field("audit_webhook.url"),
    Var::new(C::Audit, "AUDIT_WEBHOOK_SECRET", "Standard Webhooks signing secret of the audit webhook, whsec_<base64> (>= 16 bytes). Required with AUDIT_WEBHOOK_URL.").secret().field("audit_webhook.secret"),
    Var::new(C::Audit, "AUDIT_WEBHOOK_QUEUE_SIZE", "Audit events waiting for the webhook at most; when full, new events are dropped (otp_audit_dropped_total, one warning; the log keeps them).").or(|| otp_service::audit::DEFAULT_AUDIT_QUEUE_SIZE.to_string()).range(1, 1_000_000),
];

#[cfg(feature = "redis")]
fn redis_key_prefix() -> String {
    t(otp_ratelimit::redis::DEFAULT_KEY_PREFIX)
}
#[cfg(not(feature = "redis"))]
fn redis_key_prefix() -> String {
    t("otp")
}
#[cfg(feature = "redis")]
fn redis_timeout_ms() -> String {
    otp_ratelimit::redis::DEFAULT_RESPONSE_TIMEOUT
        .as_millis()
        .to_string()
}
#[cfg(not(feature = "redis"))]
fn redis_timeout_ms() -> String {
    t("500")
}

/// Largest `max` of a limit.
pub const MAX_LIMIT: u64 = 10_000_000;
/// Longest window of a limit, seconds (a year).
pub const MAX_LIMIT_WINDOW: u64 = 31_536_000;

/// Aliases accepted for compatibility: (alias, canonical name).
pub const ALIASES: &[(&str, &str)] = &[("OTP_LENGTH", "OTP_DIGITS")];

/// The variable named `name` (any case), if any.
pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}

/// The variable a library field of `concern` fills, if any.
pub fn for_field(field: &str, concern: Concern) -> Option<&'static Var> {
    VARS.iter()
        .find(|v| v.field == Some(field) && v.concern == concern)
}

/// Rewrites a library message about the fields of `concern` into one
/// about variables:
/// `smtp.password: must be set when smtp.username is set` becomes
/// `SMTP_PASSWORD: must be set when SMTP_USERNAME is set`.
pub fn fields_to_variables(text: &str, concern: Concern) -> String {
    let mut fields: Vec<&Var> = VARS
        .iter()
        .filter(|v| v.field.is_some() && v.concern == concern)
        .collect();
    // Longest first, so `smtp.use_tls` is not read as `smtp.tls`-like prefixes.
    fields.sort_by_key(|v| std::cmp::Reverse(v.field.map_or(0, str::len)));
    let mut out = text.to_owned();
    for v in fields {
        if let Some(f) = v.field {
            out = replace_word(&out, f, v.name);
        }
    }
    out
}

/// Replaces `word` where it is not part of a longer identifier.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_ident)
            || after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// The `Meaning` cell: the doc, then the range of an integer.
fn meaning(v: &Var) -> String {
    let mut m = v.doc.to_owned();
    if let Some((min, max)) = v.range {
        m.push_str(&format!(" Range {min}–{max}."));
    }
    if v.secret {
        m.push_str(&format!(
            " Secret: redacted, used byte for byte; or from a file, `{}_FILE`.",
            v.name
        ));
    }
    m.replace('|', "\\|")
}

fn table<'a>(vars: impl Iterator<Item = &'a Var>) -> String {
    let mut out = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for v in vars {
        let default = v
            .default_text()
            .map(|d| format!("`{d}`"))
            .unwrap_or_else(|| "—".to_owned());
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            v.name,
            default,
            meaning(v)
        ));
        if v.secret {
            out.push_str(&format!(
                "| `{0}_FILE` | — | A file holding {0} (Docker/Kubernetes secret, systemd \
                 credential); exactly one trailing newline is dropped. Not together with {0}. |\n",
                v.name
            ));
        }
    }
    out
}

/// The Markdown table of every variable (`otp-server env`, the README's copy).
pub fn markdown_table() -> String {
    table(VARS.iter())
}

/// One `### <concern>` heading and table per concern (`otp-server env
/// --grouped`, docs/operations.md's copy).
pub fn markdown_grouped() -> String {
    let mut out = String::new();
    for c in Concern::ALL {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("### {}\n\n", c.title()));
        out.push_str(&table(VARS.iter().filter(|v| v.concern == c)));
    }
    out
}
