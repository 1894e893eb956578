//! JSON Web Key Sets (RFC 7517) of Ed25519 public keys (RFC 8037), as served
//! at `/.well-known/jwks.json`, and [`JwksVerifier`], which verifies tokens
//! offline from such a set alone.

use serde::{Deserialize, Serialize};

use super::b64::STRICT;
use super::claims::Claims;
use super::error::{TokenError, TokenKeyError};
use super::jws::Validator;
use super::keys::{ed25519_thumbprint, Algorithm, VerifyingKey};
use super::TokenConfig;

use base64::Engine as _;

/// One JSON Web Key. Only the members an Ed25519 public key uses are kept;
/// unknown members (e.g. an RSA key's `n`, `e`) are ignored when parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// Key type: `OKP` for Ed25519.
    pub kty: String,
    /// Curve: `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The public key, base64url (no padding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Key id: the RFC 7638 thumbprint for keys published here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm: `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use: `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The RFC 7638 thumbprint of an Ed25519 (`OKP`) key; `None` for other
    /// key types or a malformed `x`.
    ///
    /// ```
    /// use otp_core::Jwk;
    /// // RFC 8037 Appendix A.2 / A.3.
    /// let jwk: Jwk = serde_json::from_str(
    ///     r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    /// ).unwrap();
    /// assert_eq!(jwk.thumbprint().unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    /// ```
    pub fn thumbprint(&self) -> Option<String> {
        if self.kty != "OKP" || self.crv.as_deref() != Some("Ed25519") {
            return None;
        }
        let raw = STRICT.decode(self.x.as_deref()?).ok()?;
        let public: [u8; 32] = raw.try_into().ok()?;
        Some(ed25519_thumbprint(&public))
    }

    /// Returns true if and only if this is an Ed25519 key meant for
    /// signatures: `kty` `OKP`, `crv` `Ed25519`, and `alg`/`use` absent or
    /// `EdDSA`/`sig`.
    fn is_ed25519_signing_key(&self) -> bool {
        self.kty == "OKP"
            && self.crv.as_deref() == Some("Ed25519")
            && self.alg.as_deref().is_none_or(|a| a == "EdDSA")
            && self.use_.as_deref().is_none_or(|u| u == "sig")
    }
}

/// A JSON Web Key Set: `{"keys":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    /// The keys; empty when tokens are HS256.
    pub keys: Vec<Jwk>,
}

/// Verifies EdDSA tokens with the public keys of a JWKS only (offline
/// verification in `otp-client` and other services). Same checks as
/// [`TokenService::verify`](super::TokenService::verify).
///
/// ```
/// use otp_core::{generate_ed25519_pkcs8, JwksVerifier, SigningKey, TokenConfig,
///                       TokenKeys, TokenService};
/// let der = generate_ed25519_pkcs8().unwrap();
/// let key = SigningKey::ed25519_from_pkcs8(der.expose()).unwrap();
/// let service = TokenService::new(TokenKeys::single(key), TokenConfig::default()).unwrap();
/// let now = 1_800_000_000;
/// let issued = service.issue("alice@example.com", now, Default::default()).unwrap();
///
/// // Elsewhere: only the published JWKS (JSON) is known.
/// let jwks_json = serde_json::to_string(&service.jwks()).unwrap();
/// let verifier = JwksVerifier::new(&serde_json::from_str(&jwks_json).unwrap(),
///                                  TokenConfig::default()).unwrap();
/// assert_eq!(verifier.verify(&issued.token, now + 1).unwrap().sub, "alice@example.com");
/// assert!(verifier.verify(&issued.token, now + 900).unwrap_err().is_expired());
/// ```
#[derive(Debug, Clone)]
pub struct JwksVerifier {
    validator: Validator,
}

impl JwksVerifier {
    /// Builds a verifier from the Ed25519 signature keys of `jwks`; keys of
    /// other types or uses are skipped. Fails with [`TokenKeyError::NoUsableKeys`]
    /// when none remains and [`TokenKeyError::InvalidPublicKey`] when an Ed25519
    /// key's `x` is not 32 bytes of strict base64url. `config.ttl_seconds`
    /// is not used.
    pub fn new(jwks: &Jwks, config: TokenConfig) -> Result<Self, TokenKeyError> {
        config.validate()?;
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(jwks.keys.len());
        for jwk in jwks.keys.iter().filter(|j| j.is_ed25519_signing_key()) {
            let key = VerifyingKey::from_jwk(jwk)?;
            if !keys.iter().any(|k| k.kid() == key.kid()) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(TokenKeyError::NoUsableKeys);
        }
        Ok(JwksVerifier {
            validator: Validator::new(Algorithm::EdDsa, keys, config),
        })
    }

    /// Verifies `token` at `now_unix` (seconds): signature, then `iss`,
    /// `aud`, `exp`, `nbf`, `iat`.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
        self.validator.verify(token, now_unix)
    }

    /// [`JwksVerifier::verify`] at the system clock's current time.
    pub fn verify_now(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify(token, super::unix_now())
    }

    /// Returns true if and only if a key with id `kid` is known (a client
    /// may refetch the JWKS when a token names an unknown one).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.validator.keys.iter().any(|k| k.kid() == kid)
    }
}
