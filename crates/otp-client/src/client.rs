//! [`OtpClient`] and its [`ClientBuilder`]: one method per REST route of
//! SPEC §5, typed answers from [`otp_core::wire`], typed failures
//! ([`Error`]), an optional bounded retry ([`ClientRetryPolicy`]) and the
//! session's tokens kept in a [`TokenStorage`] after a successful
//! [`OtpClient::verify_otp`] (refresh and logout are in `session.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otp_core::wire::{
    HealthResponse, IntrospectRequest, OtpRequest, OtpRequestResponse, OtpVerifyRequest,
    OtpVerifyResponse, TokenStatus,
};
use otp_core::{Jwks, TokenConfig};
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::error::{Error, UnauthorizedReason};
use crate::offline::OfflineVerifier;
use crate::session::LastRefresh;
use crate::storage::{MemoryTokenStorage, StoredTokens, TokenStorage};

/// Default per-request timeout (whole request, connect included): 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `User-Agent`: `stateless-otp-rust/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("stateless-otp-rust/", env!("CARGO_PKG_VERSION"));

/// When and how often a failed call is repeated.
///
/// Only failures that cannot have had an effect on the server are retried:
/// a 503 (the server fails closed before doing anything when its store is
/// down) and a connection that could not be established. A timeout, a 429
/// or any other answer is returned at once. The wait is the server's
/// `Retry-After` when it sent one, else `base_delay` doubled per attempt,
/// and never more than `max_delay`. Waits use tokio's timer, so the runtime
/// must have time enabled (`#[tokio::main]` does).
///
/// ```
/// use std::time::Duration;
/// use otp_client::ClientRetryPolicy;
/// let policy = ClientRetryPolicy { max_retries: 3, ..ClientRetryPolicy::default() };
/// assert_eq!(policy.base_delay, Duration::from_millis(250));
/// assert_eq!(ClientRetryPolicy::none().max_retries, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRetryPolicy {
    /// Retries after the first attempt. Defaults to 2.
    pub max_retries: u32,
    /// Wait before the first retry when the server sent no `Retry-After`,
    /// doubled for each further retry. Defaults to 250 ms.
    pub base_delay: Duration,
    /// Longest single wait, whatever `Retry-After` asks for. Defaults to 5 s.
    pub max_delay: Duration,
}

impl Default for ClientRetryPolicy {
    fn default() -> Self {
        ClientRetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl ClientRetryPolicy {
    /// No retry: every failure is returned at once (the builder's default).
    pub fn none() -> Self {
        ClientRetryPolicy {
            max_retries: 0,
            ..ClientRetryPolicy::default()
        }
    }

    /// The wait before retry number `attempt` (0-based).
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(16)));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// Builds an [`OtpClient`]; start with [`OtpClient::builder`]. `Debug`
/// redacts the tokens.
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    timeout: Duration,
    user_agent: String,
    retry: ClientRetryPolicy,
    access_token: Option<String>,
    refresh_token: Option<String>,
    storage: Option<Arc<dyn TokenStorage>>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("custom_storage", &self.storage.is_some())
            .field("http", &self.http)
            .finish()
    }
}

impl ClientBuilder {
    /// Per-request timeout (connect, send and read the whole answer).
    /// Defaults to [`DEFAULT_TIMEOUT`]. Ignored with [`ClientBuilder::http_client`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header. Defaults to [`DEFAULT_USER_AGENT`].
    /// Ignored with [`ClientBuilder::http_client`].
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Retries 503 answers and failed connections (see [`ClientRetryPolicy`]).
    /// Defaults to [`ClientRetryPolicy::none`].
    pub fn retry(mut self, policy: ClientRetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Starts with this access token stored (e.g. one kept from an earlier
    /// session), replacing the storage's. Defaults to none (the storage's).
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    /// Starts with this refresh token stored (e.g. one kept from an earlier
    /// run), replacing the storage's: the first call that needs an access
    /// token refreshes. Defaults to none (the storage's).
    pub fn refresh_token(mut self, token: impl Into<String>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }

    /// Keeps the tokens in `storage` instead of in memory (see
    /// [`TokenStorage`]). Defaults to a new [`MemoryTokenStorage`].
    pub fn storage(mut self, storage: impl TokenStorage + 'static) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// [`ClientBuilder::storage`] with a storage shared with other code
    /// (e.g. several clients of one user).
    pub fn shared_storage(mut self, storage: Arc<dyn TokenStorage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Uses this reqwest client (own proxy, TLS roots, pool settings)
    /// instead of building one; then `timeout` and `user_agent` are the
    /// given client's.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client. Fails with [`Error::Config`] when the base URL is
    /// not an absolute `http`/`https` URL without query or fragment, or the
    /// user agent is not a valid header value.
    pub fn build(self) -> Result<OtpClient, Error> {
        let url = reqwest::Url::parse(self.base_url.trim())
            .map_err(|e| Error::Config(format!("base URL is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Config(
                "base URL must be an http:// or https:// URL with a host".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(
                "base URL must not have a query or a fragment".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config("base URL must not carry credentials".into()));
        }
        let base = api_root(url.as_str()).to_owned();
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .connect_timeout(self.timeout)
                .user_agent(
                    reqwest::header::HeaderValue::from_str(&self.user_agent)
                        .map_err(|_| Error::Config("user agent is not a valid header".into()))?,
                )
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
        };
        let storage = self
            .storage
            .unwrap_or_else(|| Arc::new(MemoryTokenStorage::new()));
        if self.access_token.is_some() || self.refresh_token.is_some() {
            let mut tokens = storage.load();
            if let Some(access) = self.access_token {
                tokens.access_token = Some(access);
            }
            if let Some(refresh) = self.refresh_token {
                tokens.refresh_token = Some(refresh);
            }
            storage.save(tokens);
        }
        Ok(OtpClient {
            inner: Arc::new(Inner {
                http,
                base,
                retry: self.retry,
                storage,
                refresh: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// The server root of a base URL: trailing slashes and one trailing
/// `/api/v1` (the form the Python service's SDKs were documented with,
/// `http://host:8000/api/v1`) removed, so both forms reach the same routes.
fn api_root(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/api/v1")
        .unwrap_or(url)
        .trim_end_matches('/')
}

/// An async client of a stateless-otp server.
///
/// Cheap to clone: clones share the connection pool, the token storage and
/// the refresh lock. Every method is safe to call from many tasks at once.
///
/// # Sessions
/// A successful [`verify_otp`](OtpClient::verify_otp) stores the access
/// token and the session's refresh token. Calls that send the stored access
/// token ([`verify_bearer`](OtpClient::verify_bearer)) refresh once when
/// the server answers `token_expired`, and retry once.
/// [`refresh`](OtpClient::refresh) rotates the pair explicitly;
/// [`logout`](OtpClient::logout) and
/// [`logout_everywhere`](OtpClient::logout_everywhere) end the session on
/// the server. One refresh is in flight at a time: concurrent callers wait
/// for it and share its outcome, so N tasks hitting an expired token make
/// one refresh request.
///
/// # Example: a full login
/// ```no_run
/// use otp_client::OtpClient;
///
/// # async fn run() -> Result<(), otp_client::Error> {
/// let client = OtpClient::new("http://127.0.0.1:8000")?;
/// let sent = client.request_otp("alice@example.com").await?;
/// println!("code valid for {} s", sent.ttl_seconds);
///
/// let code = "123456"; // what the user typed
/// client.verify_otp("alice@example.com", code).await?; // keeps the token
/// let me = client.verify_bearer().await?;
/// assert_eq!(me.claims.unwrap()["sub"], "alice@example.com");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OtpClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    base: String,
    retry: ClientRetryPolicy,
    pub(crate) storage: Arc<dyn TokenStorage>,
    /// Held while a refresh is in flight; remembers the last refresh so
    /// that callers that waited for it share its outcome.
    pub(crate) refresh: tokio::sync::Mutex<Option<LastRefresh>>,
}

impl std::fmt::Debug for OtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpClient")
            .field("base_url", &self.inner.base)
            .field("retry", &self.inner.retry)
            .field("tokens", &self.tokens())
            .finish()
    }
}

/// How one call may be retried.
#[derive(Clone, Copy)]
pub(crate) enum Method {
    Get,
    Post,
}

impl OtpClient {
    /// A builder for a server at `base_url` (e.g. `https://auth.example.com`
    /// or `https://example.com/auth` behind a path prefix). The URL may end
    /// in `/api/v1` and in slashes, as the Python service's SDKs were
    /// configured: `http://host:8000/api/v1/` and `http://host:8000` are the
    /// same server.
    ///
    /// ```
    /// use otp_client::OtpClient;
    /// let client = OtpClient::new("http://127.0.0.1:8000/api/v1/")?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8000");
    /// # Ok::<(), otp_client::Error>(())
    /// ```
    ///
    /// ```
    /// use std::time::Duration;
    /// use otp_client::{OtpClient, ClientRetryPolicy};
    /// let client = OtpClient::builder("https://auth.example.com/")
    ///     .timeout(Duration::from_secs(5))
    ///     .user_agent("my-app/1.0")
    ///     .retry(ClientRetryPolicy::default())
    ///     .build()?;
    /// assert_eq!(client.base_url(), "https://auth.example.com");
    /// # Ok::<(), otp_client::Error>(())
    /// ```
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            timeout: DEFAULT_TIMEOUT,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            retry: ClientRetryPolicy::none(),
            access_token: None,
            refresh_token: None,
            storage: None,
            http: None,
        }
    }

    /// A client with the default settings (see [`OtpClient::builder`]).
    pub fn new(base_url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url).build()
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The stored access token, if any (secret: never log it).
    pub fn access_token(&self) -> Option<String> {
        self.tokens().access_token
    }

    /// The stored refresh token, if any (secret: never log it).
    pub fn refresh_token(&self) -> Option<String> {
        self.tokens().refresh_token
    }

    /// Both stored tokens, read at once from the [`TokenStorage`].
    pub fn tokens(&self) -> StoredTokens {
        self.inner.storage.load()
    }

    /// Stores `token` as the access token (e.g. one kept from an earlier
    /// session); the refresh token is left as it is.
    pub fn set_access_token(&self, token: impl Into<String>) {
        let mut tokens = self.tokens();
        tokens.access_token = Some(token.into());
        self.inner.storage.save(tokens);
    }

    /// Replaces both stored tokens (e.g. a session kept from an earlier run).
    pub fn set_tokens(&self, tokens: StoredTokens) {
        self.inner.storage.save(tokens);
    }

    /// Forgets the stored access token, keeping the refresh token (the
    /// next call that needs an access token then fails with
    /// [`UnauthorizedReason::Missing`]; [`OtpClient::refresh`] gets a new one).
    pub fn clear_access_token(&self) {
        let mut tokens = self.tokens();
        tokens.access_token = None;
        self.inner.storage.save(tokens);
    }

    /// Forgets both stored tokens, locally only: the session stays alive on
    /// the server until it expires. [`OtpClient::logout`] ends it there too.
    pub fn clear_tokens(&self) {
        self.inner.storage.save(StoredTokens::default());
    }

    /// `POST /api/v1/otp/request`: asks the server to send a code to
    /// `identity` (email, E.164 phone number or user id).
    ///
    /// Fails with [`Error::RateLimited`] (429), [`Error::Validation`] (422,
    /// bad identity), [`Error::DeliveryFailed`] (502), [`Error::Unavailable`]
    /// (503) or [`Error::Transport`].
    ///
    /// ```no_run
    /// # async fn run(client: otp_client::OtpClient) -> Result<(), otp_client::Error> {
    /// let sent = client.request_otp("+15551234567").await?;
    /// println!("valid until {}; {} sends left", sent.expires_at, sent.rate_limit_remaining);
    /// # Ok(()) }
    /// ```
    pub async fn request_otp(&self, identity: &str) -> Result<OtpRequestResponse, Error> {
        let body = OtpRequest {
            identity: identity.to_owned(),
        };
        self.call(Method::Post, "/api/v1/otp/request", Some(&body), None)
            .await
    }

    /// `POST /api/v1/otp/verify`: checks `otp` for `identity` and, on
    /// success, stores the access token and the session's refresh token (see
    /// [`OtpClient::tokens`]; no refresh token with `SESSIONS=off`).
    ///
    /// Fails with [`Error::InvalidOtp`] (400: wrong, expired or replayed),
    /// [`Error::Validation`] (422: not 4–10 digits), [`Error::RateLimited`]
    /// (429), [`Error::Unavailable`] (503) or [`Error::Transport`]; on
    /// failure the stored tokens are left as they were.
    ///
    /// ```no_run
    /// use otp_client::Error;
    /// # async fn run(client: otp_client::OtpClient, typed: &str) -> Result<(), Error> {
    /// match client.verify_otp("alice@example.com", typed).await {
    ///     Ok(done) => println!("token valid for {} s", done.expires_in),
    ///     Err(Error::InvalidOtp { .. }) => println!("wrong or expired code"),
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn verify_otp(&self, identity: &str, otp: &str) -> Result<OtpVerifyResponse, Error> {
        let body = OtpVerifyRequest {
            identity: identity.to_owned(),
            otp: otp.to_owned(),
        };
        let verified: OtpVerifyResponse = self
            .call(Method::Post, "/api/v1/otp/verify", Some(&body), None)
            .await?;
        self.set_tokens(StoredTokens {
            access_token: Some(verified.access_token.clone()),
            refresh_token: verified.refresh_token.clone(),
        });
        Ok(verified)
    }

    /// `POST /api/v1/token/introspect`: whether `token` is valid now, and its
    /// claims. An invalid or expired token is not an error: it answers
    /// `{active: false, claims: None}`.
    pub async fn introspect_token(&self, token: &str) -> Result<TokenStatus, Error> {
        let body = IntrospectRequest {
            token: token.to_owned(),
        };
        self.call(Method::Post, "/api/v1/token/introspect", Some(&body), None)
            .await
    }

    /// `GET /api/v1/token/verify` with the stored access token as the
    /// bearer. On `token_expired` with a refresh token stored, refreshes
    /// once (see [`OtpClient::refresh`]) and retries once with the new
    /// token. Fails with [`Error::Unauthorized`] (reason
    /// [`UnauthorizedReason::Missing`] without a request when no token is
    /// stored) or, when the refresh is refused, [`Error::SessionRevoked`].
    ///
    /// ```no_run
    /// # async fn run(client: otp_client::OtpClient) -> Result<(), otp_client::Error> {
    /// // An hour later: the access token has expired, the session has not.
    /// let me = client.verify_bearer().await?; // refreshed and retried
    /// assert!(me.active);
    /// # Ok(()) }
    /// ```
    pub async fn verify_bearer(&self) -> Result<TokenStatus, Error> {
        self.with_access_token(|token| async move { self.verify_bearer_token(&token).await })
            .await
    }

    /// `GET /api/v1/token/verify` with `token` as the bearer: 200 with the
    /// claims, or [`Error::Unauthorized`] saying whether the token is
    /// missing, invalid or expired.
    ///
    /// An empty `token` fails locally, like a missing one.
    pub async fn verify_bearer_token(&self, token: &str) -> Result<TokenStatus, Error> {
        if token.trim().is_empty() {
            return Err(Error::Unauthorized {
                reason: UnauthorizedReason::Missing,
                message: "the bearer token is empty".into(),
            });
        }
        self.call::<(), _>(Method::Get, "/api/v1/token/verify", None, Some(token))
            .await
    }

    /// `GET /.well-known/jwks.json`: the server's public token keys (empty
    /// when it signs with HS256).
    pub async fn jwks(&self) -> Result<Jwks, Error> {
        self.call::<(), _>(Method::Get, "/.well-known/jwks.json", None, None)
            .await
    }

    /// `GET /health`: `{"status":"ok","service":"stateless-otp"}`.
    pub async fn health(&self) -> Result<HealthResponse, Error> {
        self.call::<(), _>(Method::Get, "/health", None, None).await
    }

    /// An [`OfflineVerifier`] that checks this server's EdDSA tokens locally
    /// against its JWKS (fetched on first use, cached). `config` holds the
    /// server's `TOKEN_ISSUER`, `TOKEN_AUDIENCE` and the leeway to allow.
    ///
    /// ```no_run
    /// use otp_client::OtpClient;
    /// use otp_core::TokenConfig;
    /// # async fn run(token: &str) -> Result<(), otp_client::Error> {
    /// let verifier = OtpClient::new("https://auth.example.com")?
    ///     .offline_verifier(TokenConfig::default());
    /// let claims = verifier.verify(token).await?;
    /// println!("signed in as {}", claims.sub);
    /// # Ok(()) }
    /// ```
    pub fn offline_verifier(&self, config: TokenConfig) -> OfflineVerifier {
        OfflineVerifier::new(self.clone(), config)
    }

    /// Sends one call, retrying per the [`ClientRetryPolicy`].
    pub(crate) async fn call<B, T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        bearer: Option<&str>,
    ) -> Result<T, Error>
    where
        B: serde::Serialize,
        T: DeserializeOwned,
    {
        let url = format!("{}{path}", self.inner.base);
        let policy = self.inner.retry;
        let mut attempt = 0;
        loop {
            let mut request = match method {
                Method::Get => self.inner.http.get(&url),
                Method::Post => self.inner.http.post(&url),
            }
            .header(ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            match send(request).await {
                Ok(value) => return Ok(value),
                Err(err) if attempt < policy.max_retries && is_retryable(&err) => {
                    tokio::time::sleep(policy.delay(attempt, err.retry_after())).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Returns true if and only if `err` cannot have had an effect on the
/// server: a 503 or a connection that was never established.
fn is_retryable(err: &Error) -> bool {
    match err {
        Error::Unavailable { .. } => true,
        Error::Transport(e) => e.is_connect(),
        _ => false,
    }
}

async fn send<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, Error> {
    let response = request.send().await.map_err(Error::Transport)?;
    let status = response.status().as_u16();
    let retry_after = parse_retry_after(response.headers(), SystemTime::now());
    let bytes = response.bytes().await.map_err(Error::Transport)?;
    if (200..300).contains(&status) {
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            status,
            message: format!("body is not the documented JSON: {e}"),
        })
    } else {
        Err(Error::from_response(status, &bytes, retry_after))
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a
/// date in the past is a zero wait.
fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("42"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(42)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&earlier).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let p = ClientRetryPolicy::default();
        assert_eq!(p.delay(0, None), Duration::from_millis(250));
        assert_eq!(p.delay(1, None), Duration::from_millis(500));
        assert_eq!(p.delay(10, None), Duration::from_secs(5));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        for bad in [
            "",
            "not a url",
            "ftp://example.com",
            "http://example.com/?q=1",
            "http://user:pw@example.com",
        ] {
            let err = OtpClient::new(bad).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
        }
        let c = OtpClient::new("http://127.0.0.1:8000/auth/").unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8000/auth");
        let err = OtpClient::builder("http://x")
            .user_agent("bad\nagent")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }

    #[test]
    fn debug_redacts_the_token() {
        let c = OtpClient::builder("http://127.0.0.1:1")
            .access_token("secret.token.value")
            .build()
            .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret.token.value"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
        c.clear_access_token();
        assert_eq!(c.access_token(), None);
    }
}
