//! Every configuration variable the binary reads: name, default, whether it
//! is secret, and what it means. The README's variable table is checked
//! against this list by a test (`tests/readme.rs`), so the two cannot drift.

/// One configuration variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Environment variable name (the TOML file uses the same name in lower case).
    pub name: &'static str,
    /// Default value, as text (`None` = unset / required where noted).
    pub default: Option<&'static str>,
    /// Redacted by `check-config` and never logged.
    pub secret: bool,
    /// One-line meaning.
    pub doc: &'static str,
}

const fn var(name: &'static str, default: Option<&'static str>, doc: &'static str) -> Var {
    Var {
        name,
        default,
        secret: false,
        doc,
    }
}

const fn secret(name: &'static str, doc: &'static str) -> Var {
    Var {
        name,
        default: None,
        secret: true,
        doc,
    }
}

/// All variables, in the order `check-config` prints them.
pub const VARS: &[Var] = &[
    // server
    var("BIND_ADDRESS", Some("127.0.0.1:8000"), "Listen address (the --bind flag wins)."),
    var("WORKERS", None, "actix worker threads; defaults to the number of CPU cores."),
    var("SHUTDOWN_TIMEOUT_SECONDS", Some("10"), "On SIGTERM/SIGINT, how long in-flight requests may finish."),
    var("CLIENT_REQUEST_TIMEOUT_MS", Some("5000"), "A client must send its request head within this time (slowloris guard)."),
    var("KEEP_ALIVE_SECONDS", Some("15"), "Idle keep-alive connections are closed after this time."),
    var("MAX_CONNECTIONS", Some("25000"), "Concurrent connections per worker."),
    var("LOG_FORMAT", Some("pretty"), "pretty or json."),
    var("RUST_LOG", Some("info"), "tracing filter (e.g. info,otp_service=debug)."),
    var("CORS_ORIGINS", None, "Comma-separated allowed origins; * = any origin without credentials; unset = CORS off."),
    var("TRUSTED_PROXIES", None, "Comma-separated CIDRs whose X-Forwarded-For hops are believed."),
    // OTP engine
    secret("OTP_SECRET_KEY", "base64 (standard or URL-safe) of >= 16 random bytes. Required unless --dev."),
    secret("OTP_PREVIOUS_SECRET_KEYS", "Comma-separated previous OTP keys: verify only (rotation)."),
    var("OTP_DIGITS", Some("6"), "Code length, 4..=10 (OTP_LENGTH is accepted as an alias)."),
    var("OTP_WINDOW_SECONDS", Some("300"), "Time window of one code, >= 30."),
    var("OTP_ALGORITHM", Some("sha256"), "HMAC hash: sha1, sha256 or sha512."),
    var("OTP_DRIFT_TOLERANCE", Some("1"), "Past windows still accepted, 0..=10."),
    var("OTP_CLOCK_SKEW_SECONDS", Some("30"), "Accept the next window this close to its start; below the window."),
    var("OTP_SINGLE_USE", Some("true"), "Codes verify once (use counters); false = the Python service's behaviour."),
    var("OTP_MAX_ATTEMPTS", Some("5"), "Wrong codes per identity and window before every sent code is void; 0 = off."),
    // tokens
    var("JWT_ALGORITHM", Some("HS256"), "HS256 or EdDSA."),
    secret("JWT_SECRET", "HS256 key (UTF-8 bytes), >= 32 bytes. Required for HS256 unless --dev."),
    secret("JWT_PREVIOUS_SECRETS", "Comma-separated previous HS256 secrets: verify only."),
    secret("JWT_ED25519_PRIVATE_KEY", "EdDSA signing key: PKCS#8, base64 DER or PEM. Required for EdDSA unless --dev."),
    secret("JWT_ED25519_PREVIOUS_KEYS", "Comma-separated previous Ed25519 keys (PKCS#8 base64 DER, or base64url 32-byte public keys): verify only, published in the JWKS."),
    var("TOKEN_ISSUER", Some("stateless-otp"), "iss of issued tokens, required on verify."),
    var("TOKEN_AUDIENCE", Some("api"), "aud of issued tokens, required on verify."),
    var("ACCESS_TOKEN_TTL", Some("900"), "Token lifetime in seconds."),
    var("TOKEN_LEEWAY_SECONDS", Some("0"), "Clock leeway on exp/nbf/iat."),
    // limits and store
    var("RATE_REQUEST_OTP_MAX", Some("5"), "OTP sends per identity per window."),
    var("RATE_REQUEST_OTP_WINDOW", Some("600"), "Window of RATE_REQUEST_OTP_MAX, seconds."),
    var("RATE_VERIFY_OTP_MAX", Some("10"), "Verify attempts per identity per window (cleared on success)."),
    var("RATE_VERIFY_OTP_WINDOW", Some("600"), "Window of RATE_VERIFY_OTP_MAX, seconds."),
    var("RATE_VERIFY_OTP_DAILY_MAX", Some("30"), "Verify attempts per identity per 86400 s."),
    var("RATE_REQUEST_OTP_PER_IP_MAX", Some("20"), "OTP sends per client IP per window."),
    var("RATE_REQUEST_OTP_PER_IP_WINDOW", Some("600"), "Window of RATE_REQUEST_OTP_PER_IP_MAX, seconds."),
    var("RATE_VERIFY_OTP_PER_IP_MAX", Some("60"), "Verify attempts per client IP per window."),
    var("RATE_VERIFY_OTP_PER_IP_WINDOW", Some("600"), "Window of RATE_VERIFY_OTP_PER_IP_MAX, seconds."),
    var("RATE_GLOBAL_SEND_MAX", Some("1000"), "OTP sends overall per window (SMS-pumping cost guard)."),
    var("RATE_GLOBAL_SEND_WINDOW", Some("3600"), "Window of RATE_GLOBAL_SEND_MAX, seconds."),
    var("RATE_LIMIT_FAIL_MODE", Some("closed"), "closed (503 when the store is down) or open (proceed, with a warning)."),
    var("STORE_BACKEND", Some("memory"), "memory (one process) or redis (shared by replicas)."),
    secret("REDIS_URL", "redis://host:port (standalone) or several comma-separated node URLs (Cluster). Required with STORE_BACKEND=redis."),
    var("REDIS_CLUSTER", Some("auto"), "auto (several URLs = Cluster), true or false."),
    var("REDIS_KEY_PREFIX", Some("otp"), "Prefix of every Redis key."),
    var("REDIS_TIMEOUT_MS", Some("500"), "Redis connect and response timeout, milliseconds."),
    var("REDIS_STARTUP_WAIT_SECONDS", Some("30"), "At start-up, keep retrying an unreachable Redis this long before giving up; 0 = fail at once."),
    secret("STORE_HASH_KEY", "base64 key hashing identities in store keys (e.g. from `otp-server keygen otp`); shared by all replicas. Default: derived from the oldest OTP key; pin it before retiring a rotated OTP key."),
    // delivery
    var("DELIVERY_BACKEND", Some("console"), "console, smtp, twilio, webhook, auto or none (benchmarks only)."),
    var("DELIVERY_TIMEOUT_SECONDS", Some("10"), "Per-attempt delivery timeout."),
    var("DELIVERY_MAX_ATTEMPTS", Some("3"), "Attempts per delivery (retries on connect errors, timeouts and 5xx)."),
    var("DELIVERY_RETRY_BACKOFF_MS", Some("250"), "First retry backoff, doubled per attempt (max 2 s), with jitter."),
    var("SMTP_HOST", None, "SMTP relay host. Required with DELIVERY_BACKEND=smtp."),
    var("SMTP_PORT", Some("587"), "SMTP port."),
    var("SMTP_USERNAME", None, "SMTP user."),
    secret("SMTP_PASSWORD", "SMTP password."),
    var("SMTP_FROM", None, "From address. Required with SMTP."),
    var("SMTP_TLS", Some("starttls"), "starttls, tls or none."),
    var("SMTP_USE_TLS", None, "Legacy: true = starttls, false = none (SMTP_TLS wins)."),
    var("SMTP_CA_FILE", None, "PEM file of extra CA certificates (private relays)."),
    var("SMTP_SUBJECT_TEMPLATE", Some("Your verification code"), "Subject; {otp} and {minutes} are replaced."),
    var("SMTP_BODY_TEMPLATE", None, "Plain-text body template ({otp}, {minutes})."),
    var("SMTP_HTML_TEMPLATE", None, "HTML body template ({otp}, {minutes}; values HTML-escaped)."),
    var("TWILIO_ACCOUNT_SID", None, "Twilio account SID. Required with twilio."),
    secret("TWILIO_AUTH_TOKEN", "Twilio auth token."),
    var("TWILIO_FROM_NUMBER", None, "Sender number, or a Messaging Service SID (MG…)."),
    var("TWILIO_MESSAGING_SERVICE_SID", None, "Messaging Service SID (instead of a from number)."),
    var("TWILIO_API_BASE", Some("https://api.twilio.com"), "Twilio API base URL (tests point it at a mock)."),
    var("TWILIO_BODY_TEMPLATE", None, "SMS text template ({otp}, {minutes})."),
    var("WEBHOOK_URL", None, "Receiver URL. Required with webhook."),
    secret("WEBHOOK_HEADERS", "Extra headers: 'Name: value' pairs separated by commas/newlines, or a JSON object."),
    secret("WEBHOOK_SECRET", "Standard Webhooks signing secret, whsec_<base64>."),
    var("WEBHOOK_TEMPLATE", None, "JSON body template; placeholders are JSON-escaped values."),
];

/// Aliases accepted for compatibility: (alias, canonical name).
pub const ALIASES: &[(&str, &str)] = &[("OTP_LENGTH", "OTP_DIGITS")];

/// The variable named `name`, if any.
pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}
