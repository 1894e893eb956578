//! Refresh tokens (SPEC §10): opaque, versioned, MACed session tokens.
//!
//! A refresh token is `ort1_` followed by one strict unpadded base64url
//! string of `version ‖ payload ‖ tag`. It has no `.` at all, so no JWT
//! library can even parse it as a JWS, let alone accept it as an access
//! token. The tag is HMAC-SHA256 under a key derived by HKDF-SHA256 from a
//! token key of the ring (the current key MACs, previous keys verify); the
//! derived keys are never published, not even for EdDSA (a JWKS carries
//! public keys only).
//!
//! Issuing is deterministic: the same [`RefreshClaims`] under the same key
//! give the same bytes. The service relies on it to hand out the *same*
//! successor to every concurrent refresh of one token (SPEC §10).
//!
//! # Binary layout (version 1)
//! | bytes | field |
//! |---|---|
//! | 1 | version, `1` |
//! | 16 | session id |
//! | 8 | generation, big-endian |
//! | 8 | `iat`, unix seconds, big-endian |
//! | 8 | `exp` |
//! | 8 | `auth_time` |
//! | 1..=[`MAX_REFRESH_SUBJECT_BYTES`] | `sub`, UTF-8 |
//! | 32 | HMAC-SHA256(key, `"ort1_"` ‖ everything before the tag) |

use std::fmt;

use base64::Engine as _;
use hmac::Mac;

use super::b64::STRICT;
use super::TokenService;

/// The prefix of every refresh token (format version 1).
pub const REFRESH_TOKEN_PREFIX: &str = "ort1_";

/// Largest refresh token accepted, in bytes (checked before decoding).
pub const MAX_REFRESH_TOKEN_BYTES: usize = 2048;

/// Largest `sub` a refresh token carries, in UTF-8 bytes.
pub const MAX_REFRESH_SUBJECT_BYTES: usize = 1280;

const VERSION: u8 = 1;
const TAG_BYTES: usize = 32;
/// version + sid + generation + iat + exp + auth_time.
const FIXED_BYTES: usize = 1 + SessionId::BYTES + 4 * 8;

/// A session id: 128 random bits, written as 22 characters of unpadded
/// base64url (the `sid` claim, the store's session key).
///
/// ```
/// use otp_core::SessionId;
/// let sid = SessionId::generate().unwrap();
/// let text = sid.to_string();
/// assert_eq!(text.len(), 22);
/// assert_eq!(SessionId::parse(&text), Some(sid));
/// assert_eq!(SessionId::parse("not a session id"), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; SessionId::BYTES]);

impl SessionId {
    /// Length of a session id in bytes.
    pub const BYTES: usize = 16;

    /// A fresh random session id from the operating system's generator
    /// ([`fill_random_id`](crate::fill_random_id)).
    pub fn generate() -> Result<Self, RefreshTokenError> {
        let mut bytes = [0u8; Self::BYTES];
        crate::fill_random_id(&mut bytes).map_err(|_| RefreshTokenError::Random)?;
        Ok(SessionId(bytes))
    }

    /// A session id from its raw bytes.
    pub fn from_bytes(bytes: [u8; Self::BYTES]) -> Self {
        SessionId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::BYTES] {
        &self.0
    }

    /// Parses the 22-character base64url form (strict: exactly one
    /// encoding per id); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 22 {
            return None;
        }
        let bytes = STRICT.decode(text).ok()?;
        bytes.try_into().ok().map(SessionId)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Encoded on the stack: `to_string` (the store key, the `sid`
        // claim, the audit event) allocates once, for its own result.
        let mut text = [0u8; 22];
        let len = STRICT
            .encode_slice(self.0, &mut text)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&text[..len]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// The claims of a refresh token.
///
/// `generation` counts the rotations of the session (0 for the token a
/// verify returns); `exp` is the idle expiry of this token (at most the
/// session's absolute end, which the service computes from `auth_time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshClaims {
    /// The normalized identity the session belongs to.
    pub sub: String,
    /// The session.
    pub sid: SessionId,
    /// The session generation this token was issued for.
    pub generation: u64,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expiry (unix seconds): valid while `now < exp` (plus leeway).
    pub exp: u64,
    /// When the user signed in with a code (unix seconds).
    pub auth_time: u64,
}

/// Why a refresh token could not be issued or verified.
///
/// [`RefreshTokenError::Expired`] maps to `token_expired`, every other
/// verification failure to `token_invalid` ([`RefreshTokenError::reason`]);
/// [`RefreshTokenError::check`] names the failed check for logs. Neither
/// contains token data.
///
/// ```
/// use otp_core::RefreshTokenError;
/// assert_eq!(RefreshTokenError::Expired.reason(), "token_expired");
/// assert_eq!(RefreshTokenError::BadMac.reason(), "token_invalid");
/// assert_eq!(RefreshTokenError::BadMac.check(), "bad_mac");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshTokenError {
    /// Longer than [`MAX_REFRESH_TOKEN_BYTES`].
    #[error("refresh token is larger than the limit")]
    TooLarge,
    /// Not `ort1_` + canonical unpadded base64url of a long enough body.
    #[error("refresh token is malformed")]
    Malformed,
    /// The body's version byte is not one this library reads.
    #[error("refresh token version is not supported")]
    UnsupportedVersion,
    /// The MAC does not verify under any key of the ring.
    #[error("refresh token MAC is invalid")]
    BadMac,
    /// `iat` is later than now (plus leeway).
    #[error("refresh token was issued in the future")]
    IssuedInFuture,
    /// `exp` (plus leeway) has passed.
    #[error("refresh token has expired")]
    Expired,
    /// Issuing only: `sub` is empty or longer than
    /// [`MAX_REFRESH_SUBJECT_BYTES`].
    #[error("refresh token subject is empty or too long")]
    InvalidSubject,
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

impl RefreshTokenError {
    /// Returns true if and only if the token failed only because it expired.
    pub fn is_expired(&self) -> bool {
        matches!(self, RefreshTokenError::Expired)
    }

    /// `token_expired` for [`RefreshTokenError::Expired`], `token_invalid`
    /// for everything else (the `error` of an HTTP 401).
    pub fn reason(&self) -> &'static str {
        super::error::reason(self.is_expired())
    }

    /// A short, stable, snake_case name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            RefreshTokenError::TooLarge => "too_large",
            RefreshTokenError::Malformed => "malformed",
            RefreshTokenError::UnsupportedVersion => "unsupported_version",
            RefreshTokenError::BadMac => "bad_mac",
            RefreshTokenError::IssuedInFuture => "issued_in_future",
            RefreshTokenError::Expired => "expired",
            RefreshTokenError::InvalidSubject => "invalid_subject",
            RefreshTokenError::Random => "random",
        }
    }
}

/// Returns true if and only if `token` has the shape of a refresh token
/// (its prefix): lets a caller that receives either kind (logout, RFC 7009
/// revocation) pick the verifier without trying both.
pub fn is_refresh_token(token: &str) -> bool {
    token.starts_with(REFRESH_TOKEN_PREFIX)
}

impl TokenService {
    /// Issues the refresh token of `claims` under the current key.
    /// Deterministic: equal claims give equal tokens.
    pub fn issue_refresh(&self, claims: &RefreshClaims) -> Result<String, RefreshTokenError> {
        let sub = claims.sub.as_bytes();
        if sub.is_empty() || sub.len() > MAX_REFRESH_SUBJECT_BYTES {
            return Err(RefreshTokenError::InvalidSubject);
        }
        let mut body = Vec::with_capacity(FIXED_BYTES + sub.len() + TAG_BYTES);
        body.push(VERSION);
        body.extend_from_slice(claims.sid.as_bytes());
        for n in [claims.generation, claims.iat, claims.exp, claims.auth_time] {
            body.extend_from_slice(&n.to_be_bytes());
        }
        body.extend_from_slice(sub);
        let tag = self
            .current
            .refresh_key()
            .clone()
            .chain_update(REFRESH_TOKEN_PREFIX.as_bytes())
            .chain_update(&body)
            .finalize()
            .into_bytes();
        body.extend_from_slice(&tag);
        let mut token = String::with_capacity(REFRESH_TOKEN_PREFIX.len() + body.len() * 4 / 3 + 4);
        token.push_str(REFRESH_TOKEN_PREFIX);
        STRICT.encode_string(&body, &mut token);
        Ok(token)
    }

    /// Verifies a refresh token at `now_unix`: size, prefix, strict
    /// base64url, version, the MAC under the current then each previous key
    /// (constant-time comparison), then `iat` not in the future and `exp`
    /// not passed (each with [`TokenConfig::leeway_seconds`](super::TokenConfig)).
    pub fn verify_refresh(
        &self,
        token: &str,
        now_unix: u64,
    ) -> Result<RefreshClaims, RefreshTokenError> {
        let claims = self.verify_refresh_allow_expired(token)?;
        let leeway = self.validator.config.leeway_seconds;
        if claims.iat > now_unix.saturating_add(leeway) {
            return Err(RefreshTokenError::IssuedInFuture);
        }
        if now_unix >= claims.exp.saturating_add(leeway) {
            return Err(RefreshTokenError::Expired);
        }
        Ok(claims)
    }

    /// Checks everything [`TokenService::verify_refresh`] checks except the
    /// times: a genuine but expired token passes. For logout and revocation
    /// only (an expired token is enough to end its session), never to grant
    /// anything.
    pub fn verify_refresh_allow_expired(
        &self,
        token: &str,
    ) -> Result<RefreshClaims, RefreshTokenError> {
        if token.len() > MAX_REFRESH_TOKEN_BYTES {
            return Err(RefreshTokenError::TooLarge);
        }
        let encoded = token
            .strip_prefix(REFRESH_TOKEN_PREFIX)
            .ok_or(RefreshTokenError::Malformed)?;
        // Decoded on the stack: at most 3/4 of the size cap.
        let mut decoded = [0u8; MAX_REFRESH_TOKEN_BYTES / 4 * 3];
        let len = STRICT
            .decode_slice(encoded, &mut decoded)
            .map_err(|_| RefreshTokenError::Malformed)?;
        let body = &decoded[..len];
        if body.len() < FIXED_BYTES + 1 + TAG_BYTES {
            return Err(RefreshTokenError::Malformed);
        }
        if body[0] != VERSION {
            return Err(RefreshTokenError::UnsupportedVersion);
        }
        let (signed, tag) = body.split_at(body.len() - TAG_BYTES);
        let genuine = self
            .validator
            .keys
            .iter()
            .filter_map(|key| key.refresh_key())
            .any(|mac| {
                mac.clone()
                    .chain_update(REFRESH_TOKEN_PREFIX.as_bytes())
                    .chain_update(signed)
                    .verify_slice(tag)
                    .is_ok()
            });
        if !genuine {
            return Err(RefreshTokenError::BadMac);
        }
        let mut sid = [0u8; SessionId::BYTES];
        sid.copy_from_slice(&signed[1..1 + SessionId::BYTES]);
        let number = |i: usize| {
            let at = 1 + SessionId::BYTES + 8 * i;
            let mut be = [0u8; 8];
            be.copy_from_slice(&signed[at..at + 8]);
            u64::from_be_bytes(be)
        };
        // Only this service MACs tokens, and it only MACs UTF-8 subjects.
        let sub = std::str::from_utf8(&signed[FIXED_BYTES..])
            .map_err(|_| RefreshTokenError::Malformed)?
            .to_owned();
        Ok(RefreshClaims {
            sub,
            sid: SessionId(sid),
            generation: number(0),
            iat: number(1),
            exp: number(2),
            auth_time: number(3),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_parse_only_their_canonical_form() {
        let sid = SessionId::from_bytes([0xff; 16]);
        let text = sid.to_string();
        assert_eq!(text, "_____________________w");
        assert_eq!(SessionId::parse(&text), Some(sid));
        // Non-zero trailing bits, wrong length, another alphabet.
        assert_eq!(SessionId::parse("_____________________x"), None);
        assert_eq!(SessionId::parse("_____________________"), None);
        assert_eq!(SessionId::parse("/////////////////////w"), None);
    }
}
