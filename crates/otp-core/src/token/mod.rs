//! JSON Web Tokens (SPEC §4): issue and verify HS256 and EdDSA (Ed25519)
//! tokens in JWS compact form, key rotation, and JWKS publication.
//!
//! The JWS code is our own, on `hmac`/`sha2` and `ring`, so that every
//! RFC 8725 rule is ours to enforce and the verify path stays
//! allocation-light (it runs on every request behind nginx `auth_request`).
//!
//! # Layout
//! - [`TokenService`]: the issuer and verifier of a server ([`TokenKeys`] +
//!   [`TokenConfig`]); publishes its public keys with [`TokenService::jwks`].
//! - [`JwksVerifier`]: verifies EdDSA tokens from a [`Jwks`] alone (clients).
//! - [`SigningKey`], [`VerifyingKey`], key generation: key material.
//! - [`Claims`]: the claims set; [`TokenError`]: which check failed.
//! - Refresh tokens (SPEC §10): [`TokenService::issue_refresh`] and
//!   [`TokenService::verify_refresh`] over [`RefreshClaims`] and
//!   [`SessionId`] — opaque `ort1_` strings MACed with keys derived by HKDF
//!   from the token keys, never JWS-shaped.
//! - [`dangerous`]: unverified decoding and raw JWS helpers.
//!
//! # Example
//! ```
//! use otp_core::{SigningKey, TokenConfig, TokenKeys, TokenService};
//! use serde_json::{json, Map};
//!
//! let key = SigningKey::hs256("a JWT_SECRET of at least 32 bytes!!")?;
//! let service = TokenService::new(TokenKeys::single(key), TokenConfig::default())?;
//!
//! let now = 1_800_000_000;
//! let mut extra = Map::new();
//! extra.insert("role".into(), json!("admin"));
//! let issued = service.issue("alice@example.com", now, extra)?;
//! assert_eq!(issued.expires_in, 900);
//!
//! let claims = service.verify(&issued.token, now + 10)?;
//! assert_eq!(claims.sub, "alice@example.com");
//! assert_eq!(claims.extra["role"], "admin");
//!
//! let err = service.verify(&issued.token, now + 900).unwrap_err();
//! assert!(err.is_expired());
//! assert_eq!(err.reason(), "token_expired");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod b64;
mod claims;
pub mod dangerous;
mod error;
mod jwks;
mod jws;
mod keys;
mod refresh;

pub use claims::{Audience, Claims, REGISTERED_CLAIMS};
pub use error::{TokenError, TokenKeyError};
pub use jwks::{Jwk, Jwks, JwksVerifier};
pub use keys::{
    ed25519_pkcs8_pem, generate_ed25519_pkcs8, generate_hs256_secret, Algorithm, SigningKey,
    TokenKeys, VerifyingKey, MIN_HS256_SECRET_BYTES,
};
pub use refresh::{
    is_refresh_token, RefreshClaims, RefreshTokenError, SessionId, MAX_REFRESH_SUBJECT_BYTES,
    MAX_REFRESH_TOKEN_BYTES, REFRESH_TOKEN_PREFIX,
};

use base64::Engine as _;
use serde_json::{Map, Value};

use b64::STRICT;
use jws::Validator;

/// Largest token accepted by verification: 8 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default `iss` (`TOKEN_ISSUER`).
pub const DEFAULT_ISSUER: &str = "stateless-otp";
/// Default `aud` (`TOKEN_AUDIENCE`).
pub const DEFAULT_AUDIENCE: &str = "api";
/// Default lifetime in seconds (`ACCESS_TOKEN_TTL`).
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 900;
/// Default clock leeway in seconds (`TOKEN_LEEWAY_SECONDS`).
pub const DEFAULT_TOKEN_LEEWAY_SECONDS: u64 = 0;

/// Issuer, audience, lifetime and leeway of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// `iss` put in tokens and required on verify (`TOKEN_ISSUER`).
    /// Must not be empty. Defaults to `stateless-otp`.
    pub issuer: String,
    /// `aud` put in tokens and required on verify (`TOKEN_AUDIENCE`).
    /// Must not be empty. Defaults to `api`.
    pub audience: String,
    /// Lifetime: `exp = iat + ttl_seconds` (`ACCESS_TOKEN_TTL`). Must be at
    /// least 1. Defaults to 900.
    pub ttl_seconds: u64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`
    /// (`TOKEN_LEEWAY_SECONDS`). Defaults to 0.
    pub leeway_seconds: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            ttl_seconds: DEFAULT_TOKEN_TTL_SECONDS,
            leeway_seconds: DEFAULT_TOKEN_LEEWAY_SECONDS,
        }
    }
}

impl TokenConfig {
    /// Checks the documented ranges.
    pub fn validate(&self) -> Result<(), TokenKeyError> {
        if self.issuer.is_empty() {
            return Err(TokenKeyError::InvalidConfig("issuer must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(TokenKeyError::InvalidConfig("audience must not be empty"));
        }
        if self.ttl_seconds == 0 {
            return Err(TokenKeyError::InvalidConfig(
                "ttl_seconds must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A freshly issued token. `Debug` redacts the token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The compact JWS (secret: never log it).
    pub token: String,
    /// The claims it carries.
    pub claims: Claims,
    /// Seconds until it expires (= [`TokenConfig::ttl_seconds`]).
    pub expires_in: u64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &crate::wire::Redacted)
            .field("claims", &self.claims)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Issues and verifies a server's tokens. Cheap to share (`Arc`) and
/// `Send + Sync`; all methods take `&self`.
///
/// # Verification rules
/// The algorithm comes from the configured keys, never from the token (`none`,
/// unknown algorithms and the other family are refused); `crit` is refused;
/// `typ` must be absent or `JWT`; a `kid` must name a configured key (a token
/// without `kid` is tried against every key, as the Python service's tokens
/// carry none); the signature is checked before the payload is even decoded;
/// then `iss` and `aud` must match, `exp` is required and must be in the
/// future, `nbf` and `iat` must not be (each with
/// [`TokenConfig::leeway_seconds`]). Tokens are at most [`MAX_TOKEN_BYTES`];
/// every segment is canonical unpadded base64url.
#[derive(Debug, Clone)]
pub struct TokenService {
    current: SigningKey,
    /// `base64url(header)` of issued tokens, computed once.
    header_b64: String,
    validator: Validator,
}

impl TokenService {
    /// A service for `keys` and `config` (checked with
    /// [`TokenConfig::validate`]). Issued headers are
    /// `{"alg":"HS256","typ":"JWT"}` — plus `kid` when previous keys are
    /// configured — or `{"alg":"EdDSA","typ":"JWT","kid":…}`.
    pub fn new(keys: TokenKeys, config: TokenConfig) -> Result<Self, TokenKeyError> {
        config.validate()?;
        let algorithm = keys.algorithm();
        let with_kid = algorithm == Algorithm::EdDsa || !keys.previous().is_empty();
        let kid = with_kid.then(|| keys.current().kid());
        let header_b64 = STRICT.encode(jws::header_json(algorithm, kid));
        Ok(TokenService {
            current: keys.current().clone(),
            header_b64,
            validator: Validator::new(algorithm, keys.verifying_keys(), config),
        })
    }

    /// The algorithm of every token this service issues and accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.validator.algorithm
    }

    /// The configuration in force.
    pub fn config(&self) -> &TokenConfig {
        &self.validator.config
    }

    /// Issues a token for `sub` (the normalized identity) at `now_unix`:
    /// `iss`, `aud`, `iat = nbf = now`, `exp = now + ttl`, a 128-bit random
    /// `jti`, `amr: ["otp"]`, plus `extra`. Fails with
    /// [`TokenError::ReservedClaim`] when `extra` names a registered claim
    /// ([`REGISTERED_CLAIMS`]) — registered claims are never overridden.
    pub fn issue(
        &self,
        sub: &str,
        now_unix: u64,
        extra: Map<String, Value>,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_claims(sub, now_unix, None, extra)
    }

    /// [`TokenService::issue`] for a session (SPEC §10): the token also
    /// carries `sid` (the session id) and `auth_time` (when the user signed
    /// in with a code, unix seconds).
    pub fn issue_for_session(
        &self,
        sub: &str,
        now_unix: u64,
        sid: &SessionId,
        auth_time: u64,
        extra: Map<String, Value>,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_claims(sub, now_unix, Some((sid, auth_time)), extra)
    }

    fn issue_claims(
        &self,
        sub: &str,
        now_unix: u64,
        session: Option<(&SessionId, u64)>,
        extra: Map<String, Value>,
    ) -> Result<IssuedToken, TokenError> {
        if let Some(name) = extra
            .keys()
            .find(|k| REGISTERED_CLAIMS.contains(&k.as_str()))
        {
            return Err(TokenError::ReservedClaim(name.clone()));
        }
        let mut jti = [0u8; 16];
        crate::fill_random_id(&mut jti).map_err(|_| TokenError::Random)?;
        let config = &self.validator.config;
        let claims = Claims {
            sub: sub.to_owned(),
            iss: config.issuer.clone(),
            aud: Audience::One(config.audience.clone()),
            iat: Some(now_unix),
            nbf: Some(now_unix),
            exp: now_unix.saturating_add(config.ttl_seconds),
            jti: Some(STRICT.encode(jti)),
            amr: vec!["otp".to_owned()],
            sid: session.map(|(sid, _)| sid.to_string()),
            auth_time: session.map(|(_, auth_time)| auth_time),
            extra,
        };
        // Serializing strings, integers and a Map<String, Value> cannot fail.
        // Our claims take ~230 bytes: one allocation instead of
        // `to_vec`'s 128 bytes grown twice.
        let mut payload = Vec::with_capacity(256);
        serde_json::to_writer(&mut payload, &claims).map_err(|_| TokenError::MalformedClaims)?;
        let sig_len = self.current.algorithm().signature_len();
        let mut token = String::with_capacity(
            self.header_b64.len() + 2 + payload.len().div_ceil(3) * 4 + sig_len.div_ceil(3) * 4,
        );
        token.push_str(&self.header_b64);
        token.push('.');
        STRICT.encode_string(&payload, &mut token);
        let signature = self.current.sign(token.as_bytes());
        token.push('.');
        STRICT.encode_string(signature, &mut token);
        Ok(IssuedToken {
            token,
            claims,
            expires_in: config.ttl_seconds,
        })
    }

    /// [`TokenService::issue`] at the system clock's current time.
    pub fn issue_now(
        &self,
        sub: &str,
        extra: Map<String, Value>,
    ) -> Result<IssuedToken, TokenError> {
        self.issue(sub, unix_now(), extra)
    }

    /// Verifies `token` at `now_unix` (seconds) against the current and
    /// previous keys: structure and size, header, signature, then `iss`,
    /// `aud`, `exp`, `nbf`, `iat` (the rules are in the [type docs](TokenService)).
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
        self.validator.verify(token, now_unix)
    }

    /// [`TokenService::verify`], also appending the token's payload — the
    /// claims as a JSON object exactly as they were signed — to `payload`
    /// when the token is valid (`payload` is left as it was otherwise). The
    /// forward-auth route answers with these bytes instead of serializing
    /// the claims again; for tokens issued here they are the bytes
    /// `serde_json::to_vec(&claims)` gives.
    pub fn verify_into(
        &self,
        token: &str,
        now_unix: u64,
        payload: &mut Vec<u8>,
    ) -> Result<Claims, TokenError> {
        self.validator.verify_into(token, now_unix, payload)
    }

    /// [`TokenService::verify`] at the system clock's current time.
    pub fn verify_now(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify(token, unix_now())
    }

    /// The public keys (current first, then previous) as a JWKS; empty for
    /// HS256.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .validator
                .keys
                .iter()
                .filter_map(VerifyingKey::to_jwk)
                .collect(),
        }
    }
}

/// Seconds since the Unix epoch by the system clock (0 if it is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
