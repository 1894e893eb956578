//! Sessions on the client side (SPEC §10): [`OtpClient::refresh`],
//! [`OtpClient::logout`], [`OtpClient::logout_everywhere`], and the rule
//! that calls sending the stored access token refresh once on
//! `token_expired` and retry once.
//!
//! One refresh is in flight at a time per client (clones included): a
//! refresh holds `Inner::refresh`, and a caller that waited for it and
//! meant to spend the very refresh token it spent shares its outcome
//! instead of spending that token again. So N tasks meeting an expired
//! access token at once make exactly one `POST /api/v1/token/refresh`.

use std::future::Future;

use otp_core::wire::{LogoutRequest, LogoutResponse, RefreshRequest, RefreshResponse};

use crate::client::{Method, OtpClient};
use crate::error::{Error, UnauthorizedReason};
use crate::storage::StoredTokens;

/// The last refresh of a client: the token it spent and what came of it
/// (an answer, or a 401 that ended the session).
pub(crate) struct LastRefresh {
    spent: String,
    outcome: Result<RefreshResponse, Error>,
}

impl LastRefresh {
    /// The outcome again, for a caller that waited for this refresh.
    fn shared(&self) -> Result<RefreshResponse, Error> {
        match &self.outcome {
            Ok(response) => Ok(response.clone()),
            Err(err) => Err(err
                .clone_unauthorized()
                .unwrap_or_else(|| missing("refresh"))),
        }
    }
}

fn missing(what: &str) -> Error {
    Error::Unauthorized {
        reason: UnauthorizedReason::Missing,
        message: format!("no {what} token is stored; sign in with verify_otp first"),
    }
}

impl OtpClient {
    /// `POST /api/v1/token/refresh` with the stored refresh token: stores
    /// the new access token and the successor refresh token, and returns
    /// them. The refresh token presented is spent.
    ///
    /// Concurrent calls (from clones too) make one request: the others wait
    /// for it and get the same answer. Fails with [`Error::SessionRevoked`]
    /// (logged out, signed out everywhere, or revoked after a reuse) or
    /// [`Error::Unauthorized`] (`token_expired`: the session's lifetime is
    /// over; `token_invalid`), and then the stored tokens are forgotten;
    /// with [`UnauthorizedReason::Missing`] and no request when no refresh
    /// token is stored; [`Error::Unavailable`] (503) or
    /// [`Error::Transport`] leave the tokens as they were.
    ///
    /// ```no_run
    /// use otp_client::Error;
    /// # async fn run(client: otp_client::OtpClient) -> Result<(), Error> {
    /// match client.refresh().await {
    ///     Ok(fresh) => println!("new access token for {} s", fresh.expires_in),
    ///     Err(Error::SessionRevoked { .. }) => println!("signed out elsewhere: sign in again"),
    ///     Err(err) => return Err(err),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&self) -> Result<RefreshResponse, Error> {
        let seen = self.tokens();
        self.refresh_from(&seen).await
    }

    /// Refreshes, unless the refresh token in `seen` (what the caller saw
    /// before waiting) has been spent by another caller meanwhile: then
    /// that refresh's outcome is returned.
    async fn refresh_from(&self, seen: &StoredTokens) -> Result<RefreshResponse, Error> {
        let mut last = self.inner.refresh.lock().await;
        let now = self.tokens();
        if let (Some(meant), Some(previous)) = (&seen.refresh_token, last.as_ref()) {
            // Spent while we waited (the storage changed since we looked):
            // share that outcome. A stale pair restored into the storage
            // (unchanged since we looked) is sent, and the server judges it.
            if &previous.spent == meant && now != *seen {
                return previous.shared();
            }
        }
        let token = now.refresh_token.ok_or_else(|| missing("refresh"))?;
        let body = RefreshRequest {
            refresh_token: token.clone(),
        };
        let answer: Result<RefreshResponse, Error> = self
            .call(Method::Post, "/api/v1/token/refresh", Some(&body), None)
            .await;
        match answer {
            Ok(fresh) => {
                self.set_tokens(StoredTokens {
                    access_token: Some(fresh.access_token.clone()),
                    refresh_token: Some(fresh.refresh_token.clone()),
                });
                *last = Some(LastRefresh {
                    spent: token,
                    outcome: Ok(fresh.clone()),
                });
                Ok(fresh)
            }
            Err(err) => {
                // A 401 is final for this token: the session is over.
                if let Some(copy) = err.clone_unauthorized() {
                    if self.refresh_token().as_deref() == Some(token.as_str()) {
                        self.clear_tokens();
                    }
                    *last = Some(LastRefresh {
                        spent: token,
                        outcome: Err(copy),
                    });
                }
                Err(err)
            }
        }
    }

    /// Runs `call` with the stored access token. When the server answers
    /// `token_expired` and a refresh token is stored, refreshes once and
    /// runs `call` once more with the new token. With only a refresh token
    /// stored (a session kept from an earlier run), refreshes first.
    pub(crate) async fn with_access_token<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let seen = self.tokens();
        let can_refresh = seen.refresh_token.is_some();
        let token = match (&seen.access_token, can_refresh) {
            (Some(token), _) => token.clone(),
            (None, true) => return call(self.refresh_from(&seen).await?.access_token).await,
            (None, false) => return Err(missing("access")),
        };
        match call(token).await {
            Err(Error::Unauthorized {
                reason: UnauthorizedReason::Expired,
                ..
            }) if can_refresh => call(self.refresh_from(&seen).await?.access_token).await,
            other => other,
        }
    }

    /// `POST /api/v1/logout`: ends this session on the server and forgets
    /// the stored tokens. The refresh token identifies the session (an
    /// expired access token would do too: the server accepts a genuine
    /// expired token). Access tokens already issued stay valid until their
    /// `exp` wherever they are checked without the server's store.
    ///
    /// The tokens are forgotten first, whatever the answer: a log-out
    /// always signs this client out. An error says the server did not
    /// confirm (e.g. [`Error::Transport`]); the session then ends by itself
    /// after `REFRESH_TOKEN_TTL`. With no token stored this is a no-op.
    ///
    /// ```no_run
    /// # async fn run(client: otp_client::OtpClient) -> Result<(), otp_client::Error> {
    /// client.logout().await?;
    /// assert!(client.tokens().is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn logout(&self) -> Result<(), Error> {
        self.end_session(false).await
    }

    /// `POST /api/v1/logout` with `{"all": true}`: ends every session of
    /// the signed-in identity (every device), and forgets the stored tokens
    /// as [`OtpClient::logout`] does. Fails with
    /// [`UnauthorizedReason::Missing`] when no token is stored (nothing
    /// names the identity).
    pub async fn logout_everywhere(&self) -> Result<(), Error> {
        self.end_session(true).await
    }

    async fn end_session(&self, all: bool) -> Result<(), Error> {
        // A refresh in flight first: its successor is the token to end.
        let tokens = {
            let _refreshing = self.inner.refresh.lock().await;
            let tokens = self.tokens();
            self.clear_tokens();
            tokens
        };
        let (refresh_token, bearer) = match (tokens.refresh_token, tokens.access_token) {
            (Some(refresh), _) => (Some(refresh), None),
            (None, Some(access)) => (None, Some(access)),
            (None, None) if all => return Err(missing("access or refresh")),
            (None, None) => return Ok(()),
        };
        let body = LogoutRequest { refresh_token, all };
        let _: LogoutResponse = self
            .call(
                Method::Post,
                "/api/v1/logout",
                Some(&body),
                bearer.as_deref(),
            )
            .await?;
        Ok(())
    }
}
