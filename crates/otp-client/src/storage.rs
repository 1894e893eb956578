//! Where an [`OtpClient`](crate::OtpClient) keeps its tokens between calls:
//! the [`TokenStorage`] trait (one pair of tokens, read and written whole)
//! and its default, [`MemoryTokenStorage`].
//!
//! The access token and the refresh token of a session live in the same
//! storage and are always written together, so a reader never sees a new
//! access token with a spent refresh token. A storage that persists (a file,
//! the OS keychain) lets a program stay signed in across restarts.

use std::fmt;
use std::sync::RwLock;

/// The tokens of one session, as kept by a [`TokenStorage`]. `Debug`
/// redacts both (they are secrets: never log them).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredTokens {
    /// The access token (a JWT), if any.
    pub access_token: Option<String>,
    /// The refresh token (`ort1_…`), if any (none with `SESSIONS=off`).
    pub refresh_token: Option<String>,
}

impl StoredTokens {
    /// Returns true if and only if neither token is stored.
    pub fn is_empty(&self) -> bool {
        self.access_token.is_none() && self.refresh_token.is_none()
    }
}

impl fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |t: &Option<String>| t.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("StoredTokens")
            .field("access_token", &redact(&self.access_token))
            .field("refresh_token", &redact(&self.refresh_token))
            .finish()
    }
}

/// Pluggable token storage: give one to
/// [`ClientBuilder::storage`](crate::ClientBuilder::storage) to keep the
/// session somewhere else than in memory (a file, a keychain, a database
/// row per user).
///
/// `load` and `save` are called often (every call that needs a token) and
/// must not block for long; the client serialises refreshes itself, so a
/// storage needs no locking beyond making each call atomic.
///
/// ```
/// use std::sync::Mutex;
/// use otp_client::{OtpClient, StoredTokens, TokenStorage};
///
/// /// Keeps the session in a file-like place (here: a Mutex).
/// #[derive(Default)]
/// struct MyStorage(Mutex<StoredTokens>);
///
/// impl TokenStorage for MyStorage {
///     fn load(&self) -> StoredTokens {
///         self.0.lock().unwrap().clone()
///     }
///     fn save(&self, tokens: StoredTokens) {
///         *self.0.lock().unwrap() = tokens;
///     }
/// }
///
/// let client = OtpClient::builder("http://127.0.0.1:8000")
///     .storage(MyStorage::default())
///     .refresh_token("ort1_kept_from_last_run")
///     .build()?;
/// assert_eq!(client.refresh_token().as_deref(), Some("ort1_kept_from_last_run"));
/// # Ok::<(), otp_client::Error>(())
/// ```
pub trait TokenStorage: Send + Sync {
    /// The stored tokens (both `None` when signed out).
    fn load(&self) -> StoredTokens;
    /// Replaces the stored tokens with `tokens` (both `None`: signed out).
    fn save(&self, tokens: StoredTokens);
}

/// Keeps the tokens in memory for as long as the client lives (the
/// default storage).
#[derive(Default)]
pub struct MemoryTokenStorage {
    tokens: RwLock<StoredTokens>,
}

impl MemoryTokenStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryTokenStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MemoryTokenStorage")
            .field(&self.load())
            .finish()
    }
}

impl TokenStorage for MemoryTokenStorage {
    fn load(&self) -> StoredTokens {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn save(&self, tokens: StoredTokens) {
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = tokens;
    }
}
