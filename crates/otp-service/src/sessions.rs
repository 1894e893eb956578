//! Sessions (SPEC §10): the refresh token a verify returns, refresh with
//! rotation and reuse detection, logout, sign out everywhere and RFC 7009
//! revocation. Each fact is an audit event ([`crate::audit`]); the `*_with`
//! variants take the transport's [`RequestContext`] so the event carries
//! the client network and the request id.
//!
//! The only state is the store's session record `{generation, rotated_at,
//! epoch}` and the identity's sign-out epoch (`otp_ratelimit::SessionStore`);
//! tokens are self-describing. A refresh is one store call (one Redis round
//! trip): [`SessionStore::session_rotate`](otp_ratelimit::SessionStore)
//! evaluates SPEC §10's rule atomically. The successor of a rotation is
//! derived from the session, the new generation and the rotation's
//! `issued_at` (the winner's clock, stored in the record with
//! `rotated_at`) alone, so every refresh answered within the grace gets
//! the same bytes, on any replica.
//!
//! Sessions fail closed: when the store cannot answer a refresh, logout or
//! revocation, the call fails with [`ServiceError::Unavailable`] (503)
//! whatever [`FailMode`](crate::FailMode) says. A verify with
//! `RATE_LIMIT_FAIL_MODE=open` while the store is down still signs the user
//! in, without a session (no refresh token, no `sid`), and warns.

use std::time::Duration;

use otp_core::{
    dangerous, is_refresh_token, unix_now, Identity, IssuedToken, RefreshClaims, SessionId,
    TokenError,
};
use otp_ratelimit::{Rotation, SessionRefresh, StoreError};
use serde_json::Map;

use crate::audit::{AuditEventKind, Fact};
use crate::error::ServiceError;
use crate::{OtpService, RequestContext};

/// Default idle lifetime of a refresh token (`REFRESH_TOKEN_TTL`): 7 days.
pub const DEFAULT_REFRESH_TOKEN_TTL_SECONDS: u64 = 7 * 86_400;
/// Default absolute lifetime of a session from `auth_time`
/// (`SESSION_MAX_LIFETIME`): 30 days.
pub const DEFAULT_SESSION_MAX_LIFETIME_SECONDS: u64 = 30 * 86_400;
/// Default grace in which the previous generation gets the same successor
/// again (`REFRESH_REUSE_GRACE_SECONDS`): 10 s.
pub const DEFAULT_REFRESH_REUSE_GRACE_SECONDS: u64 = 10;

/// Session settings (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Whether a verify creates a session and returns a refresh token
    /// (`SESSIONS=on|off`). Defaults to true.
    pub enabled: bool,
    /// Idle lifetime: a refresh token expires this long after it was
    /// issued, and the session record this long after its last rotation
    /// (`REFRESH_TOKEN_TTL`). Defaults to 7 days.
    pub refresh_ttl: Duration,
    /// Absolute lifetime from `auth_time` (`SESSION_MAX_LIFETIME`): no
    /// refresh token of the session is valid after it. Defaults to 30 days.
    pub max_lifetime: Duration,
    /// How long after a rotation the previous refresh token still gets the
    /// same successor (`REFRESH_REUSE_GRACE_SECONDS`). Defaults to 10 s.
    pub reuse_grace: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            enabled: true,
            refresh_ttl: Duration::from_secs(DEFAULT_REFRESH_TOKEN_TTL_SECONDS),
            max_lifetime: Duration::from_secs(DEFAULT_SESSION_MAX_LIFETIME_SECONDS),
            reuse_grace: Duration::from_secs(DEFAULT_REFRESH_REUSE_GRACE_SECONDS),
        }
    }
}

/// A refresh token as handed to a client. `Debug` redacts the token.
#[derive(Clone)]
pub struct IssuedRefresh {
    /// The refresh token (secret: never log it).
    pub token: String,
    /// Seconds until it expires (`refresh_expires_in`).
    pub expires_in: u64,
    /// Its session.
    pub sid: SessionId,
}

impl std::fmt::Debug for IssuedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefresh")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("sid", &self.sid)
            .finish()
    }
}

/// The answer of [`OtpService::refresh`]: a new access token and the
/// successor refresh token.
#[derive(Debug, Clone)]
pub struct RefreshOutcome {
    /// The access token (with `sid` and the session's `auth_time`).
    pub token: IssuedToken,
    /// The successor refresh token.
    pub refresh: IssuedRefresh,
}

/// What [`OtpService::logout`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    /// The token's own session.
    Session,
    /// Every session of the identity ("sign out everywhere").
    Everywhere,
}

impl OtpService {
    /// The session settings in force.
    pub fn sessions(&self) -> &SessionConfig {
        &self.sessions
    }

    /// A fresh session id for a verify, or `None` when sessions are off.
    pub(crate) fn new_session(&self) -> Result<Option<SessionId>, ServiceError> {
        if !self.sessions.enabled {
            return Ok(None);
        }
        SessionId::generate()
            .map(Some)
            .map_err(|e| ServiceError::Internal(format!("session id: {e}")))
    }

    /// Creates the record of `sid` on its own (a verify without use
    /// counters has no compare-and-set to create it with). `Ok(false)` when
    /// the store is down and the fail mode is open: no session then.
    pub(crate) async fn create_session(
        &self,
        identity: &str,
        sid: &SessionId,
    ) -> Result<bool, ServiceError> {
        let s = &self.sessions;
        match self
            .store
            .session_create(identity, &sid.to_string(), s.refresh_ttl, s.max_lifetime)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                // Without a record there is no session; failing open only
                // drops the refresh token, it never grants one unchecked.
                self.store_failed("session", e)?;
                Ok(false)
            }
        }
    }

    /// The first refresh token (generation 0) of the session a verify
    /// created.
    pub(crate) fn first_refresh(
        &self,
        identity: &str,
        sid: SessionId,
        now: u64,
    ) -> Result<IssuedRefresh, ServiceError> {
        self.refresh_token(identity, sid, 0, now, now)
    }

    /// The refresh token of generation `generation` issued at `iat` of a
    /// session begun at `auth_time`: `exp = min(iat + idle, auth_time +
    /// max)`. Deterministic.
    fn refresh_token(
        &self,
        identity: &str,
        sid: SessionId,
        generation: u64,
        iat: u64,
        auth_time: u64,
    ) -> Result<IssuedRefresh, ServiceError> {
        let s = &self.sessions;
        let exp = iat
            .saturating_add(s.refresh_ttl.as_secs())
            .min(auth_time.saturating_add(s.max_lifetime.as_secs()));
        let claims = RefreshClaims {
            sub: identity.to_owned(),
            sid,
            generation,
            iat,
            exp,
            auth_time,
        };
        let token = self
            .tokens
            .issue_refresh(&claims)
            .map_err(|e| ServiceError::Internal(format!("refresh token issue failed: {e}")))?;
        Ok(IssuedRefresh {
            token,
            expires_in: exp.saturating_sub(iat),
            sid,
        })
    }

    /// Exchanges a refresh token for a new access token and its successor
    /// (SPEC §10): the current generation rotates; one generation behind
    /// within the grace gets the same successor again; anything else is
    /// reuse and revokes the session (audit event `refresh_reuse`).
    ///
    /// Errors: [`ServiceError::TokenInvalid`], [`ServiceError::TokenExpired`]
    /// (idle or absolute lifetime), [`ServiceError::SessionRevoked`]
    /// (revoked, reused, signed out everywhere, or expired in the store),
    /// [`ServiceError::Unavailable`] when the store does not answer,
    /// whatever the fail mode.
    pub async fn refresh(&self, refresh_token: &str) -> Result<RefreshOutcome, ServiceError> {
        self.refresh_with(refresh_token, &RequestContext::default())
            .await
    }

    /// [`OtpService::refresh`] with the transport's context (client
    /// network and request id for the audit events).
    pub async fn refresh_with(
        &self,
        refresh_token: &str,
        ctx: &RequestContext,
    ) -> Result<RefreshOutcome, ServiceError> {
        self.refresh_in(refresh_token, ctx, unix_now()).await
    }

    /// [`OtpService::refresh`] at an explicit unix time.
    pub async fn refresh_at(
        &self,
        refresh_token: &str,
        now: u64,
    ) -> Result<RefreshOutcome, ServiceError> {
        self.refresh_in(refresh_token, &RequestContext::default(), now)
            .await
    }

    async fn refresh_in(
        &self,
        refresh_token: &str,
        ctx: &RequestContext,
        now: u64,
    ) -> Result<RefreshOutcome, ServiceError> {
        if !self.sessions.enabled {
            return Err(ServiceError::TokenInvalid("sessions_disabled"));
        }
        let claims = self.genuine_refresh(refresh_token)?;
        // An identity taken off the allowed identities keeps its access
        // token until `exp`, but its session renews no more.
        if !Identity::parse(&claims.sub).is_ok_and(|id| self.allowed_identities.allows(&id)) {
            return Err(ServiceError::SessionRevoked);
        }
        let leeway = self.tokens.config().leeway_seconds;
        let end = claims
            .auth_time
            .saturating_add(self.sessions.max_lifetime.as_secs());
        if now >= claims.exp.min(end).saturating_add(leeway) {
            return Err(ServiceError::TokenExpired);
        }
        let sid = claims.sid.to_string();
        // The record lives no longer than the session may.
        let left = Duration::from_secs(end.saturating_sub(now).max(1));
        let step = SessionRefresh {
            identity: &claims.sub,
            sid: &sid,
            generation: claims.generation,
            grace: self.sessions.reuse_grace,
            ttl: self.sessions.refresh_ttl.min(left),
            issued_at: now,
        };
        let rotation = match self.store.session_rotate(&step).await {
            Ok(r) => r,
            Err(e) => return Err(self.session_store_failed(e)),
        };
        let audit = |kind| self.audit(kind, &claims.sub, Some(&claims.sid), ctx);
        let (generation, iat) = match rotation {
            Rotation::Rotated {
                generation,
                issued_at,
                ..
            } => {
                audit(AuditEventKind::Refresh);
                (generation, issued_at)
            }
            Rotation::Grace {
                generation,
                issued_at,
                ..
            } => {
                audit(AuditEventKind::RefreshGrace);
                (generation, issued_at)
            }
            Rotation::Reused => {
                audit(AuditEventKind::RefreshReuse);
                return Err(ServiceError::SessionRevoked);
            }
            Rotation::SignedOut | Rotation::Missing => return Err(ServiceError::SessionRevoked),
        };
        let refresh =
            self.refresh_token(&claims.sub, claims.sid, generation, iat, claims.auth_time)?;
        let token = self
            .tokens
            .issue_for_session(&claims.sub, now, &claims.sid, claims.auth_time, Map::new())
            .map_err(|e| ServiceError::Internal(format!("token issue failed: {e}")))?;
        Ok(RefreshOutcome { token, refresh })
    }

    /// Ends the session of `token` — an access token (with `sid`) or a
    /// refresh token; a genuine but expired one is enough — or, with
    /// `everywhere`, every session of its identity. An access token without
    /// `sid` ends nothing unless `everywhere` is set. Access tokens already
    /// issued stay valid until their `exp` (they never touch the store).
    pub async fn logout(&self, token: &str, everywhere: bool) -> Result<LogoutScope, ServiceError> {
        self.logout_with(token, everywhere, &RequestContext::default())
            .await
    }

    /// [`OtpService::logout`] with the transport's context (client network
    /// and request id for the audit events).
    pub async fn logout_with(
        &self,
        token: &str,
        everywhere: bool,
        ctx: &RequestContext,
    ) -> Result<LogoutScope, ServiceError> {
        let (sub, sid) = self.genuine_any(token)?;
        if everywhere {
            if let Err(e) = self
                .store
                .sessions_revoke_all(&sub, self.sessions.max_lifetime)
                .await
            {
                return Err(self.session_store_failed(e));
            }
            self.audit(AuditEventKind::SignOutEverywhere, &sub, None, ctx);
            return Ok(LogoutScope::Everywhere);
        }
        if let Some(sid) = sid {
            if let Err(e) = self.store.session_revoke(&sub, &sid.to_string()).await {
                return Err(self.session_store_failed(e));
            }
            self.audit(AuditEventKind::Logout, &sub, Some(&sid), ctx);
        }
        Ok(LogoutScope::Session)
    }

    /// RFC 7009 revocation: a genuine refresh token (or an access token
    /// with `sid`) ends its session; anything else — invalid, foreign,
    /// already revoked — is accepted silently (RFC 7009 §2.2: 200 for an
    /// invalid token). `token_type_hint` is not needed: the two kinds are
    /// told apart by shape. Only a store that cannot answer fails
    /// ([`ServiceError::Unavailable`], RFC 7009 §2.2.1's 503).
    pub async fn revoke(&self, token: &str) -> Result<(), ServiceError> {
        self.revoke_with(token, &RequestContext::default()).await
    }

    /// [`OtpService::revoke`] with the transport's context (client network
    /// and request id for the audit event).
    pub async fn revoke_with(&self, token: &str, ctx: &RequestContext) -> Result<(), ServiceError> {
        let Ok((sub, Some(sid))) = self.genuine_any(token) else {
            return Ok(());
        };
        match self.store.session_revoke(&sub, &sid.to_string()).await {
            Ok(_) => {
                self.audit(AuditEventKind::Revoke, &sub, Some(&sid), ctx);
                Ok(())
            }
            Err(e) => Err(self.session_store_failed(e)),
        }
    }

    /// The claims of a genuine refresh token, expired or not.
    fn genuine_refresh(&self, token: &str) -> Result<RefreshClaims, ServiceError> {
        self.tokens
            .verify_refresh_allow_expired(token)
            .map_err(|e| ServiceError::TokenInvalid(e.check()))
    }

    /// `(sub, sid)` of a genuine refresh or access token, expired or not.
    fn genuine_any(&self, token: &str) -> Result<(String, Option<SessionId>), ServiceError> {
        if is_refresh_token(token) {
            let c = self.genuine_refresh(token)?;
            return Ok((c.sub, Some(c.sid)));
        }
        // Verified as of an instant inside its validity: every check but
        // the expiry (signature first, issuer, audience, nbf, iat).
        let invalid = |e: TokenError| ServiceError::TokenInvalid(e.check());
        let unverified = dangerous::decode_claims_unverified(token).map_err(invalid)?;
        let at = unix_now().min(unverified.exp.saturating_sub(1));
        let claims = self.tokens.verify(token, at).map_err(invalid)?;
        let sid = match claims.sid.as_deref() {
            Some(text) => {
                Some(SessionId::parse(text).ok_or(ServiceError::TokenInvalid("malformed_claims"))?)
            }
            None => None,
        };
        Ok((claims.sub, sid))
    }

    /// A store failure of a session step: counted, logged, always refused.
    fn session_store_failed(&self, err: StoreError) -> ServiceError {
        self.count_store_error("session");
        tracing::error!(error = %err, "store unavailable; refusing the session step (sessions fail closed)");
        ServiceError::Unavailable(err)
    }

    /// One audit event of a session fact, with `ctx`'s network and
    /// request id.
    fn audit(
        &self,
        kind: AuditEventKind,
        identity: &str,
        sid: Option<&SessionId>,
        ctx: &RequestContext,
    ) {
        let network = self.network(ctx);
        let fact = Fact {
            sid,
            ctx: Some(ctx),
            network: network.as_deref(),
            ..Fact::default()
        };
        self.auditor.emit(kind, identity, fact);
    }
}
