//! Token keys: HS256 secrets and Ed25519 key pairs, their key ids, key
//! generation, and the current-plus-previous key set ([`TokenKeys`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::b64::{decode_lenient, STRICT};
use super::error::TokenKeyError;
use super::jwks::Jwk;
use crate::SecretBytes;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Minimum length in bytes of a production HS256 secret (`JWT_SECRET`):
/// 32 bytes, the output size of SHA-256 (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Label HMAC-ed with an HS256 secret to derive its key id (see
/// [`SigningKey::hs256`]).
const HS256_KID_LABEL: &[u8] = b"stateless-otp/jwt-kid/v1";

/// Message signed by a token key to obtain the input keying material of its
/// refresh-token MAC key: an HMAC tag for HS256, a (deterministic) Ed25519
/// signature for EdDSA. It contains `/`, which no JWS signing input
/// (base64url and `.`) does, so no issued access token ever carries it.
const REFRESH_IKM_LABEL: &[u8] = b"stateless-otp/refresh-token-ikm/v1";

/// HKDF-SHA256 salt and info of the refresh-token MAC key.
const REFRESH_HKDF_SALT: &[u8] = b"stateless-otp/refresh-token/v1";
const REFRESH_HKDF_INFO: &[u8] = b"refresh-token mac key";

/// A JWS signature algorithm this library signs and verifies with.
///
/// Parsed case-sensitively from its JOSE name (`JWT_ALGORITHM`):
///
/// ```
/// use otp_core::Algorithm;
/// assert_eq!("EdDSA".parse::<Algorithm>().unwrap(), Algorithm::EdDsa);
/// assert_eq!(Algorithm::Hs256.as_str(), "HS256");
/// assert!("none".parse::<Algorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 and a shared secret (RFC 7518 §3.2). The default.
    Hs256,
    /// Ed25519 signatures (RFC 8037).
    EdDsa,
}

impl Algorithm {
    /// The JOSE `alg` name: `HS256` or `EdDSA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Exact match on a JOSE `alg` name; `none` and everything else is `None`.
    pub(crate) fn from_jose(alg: &str) -> Option<Self> {
        match alg {
            "HS256" => Some(Algorithm::Hs256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }

    /// Length in bytes of this algorithm's signature.
    pub(crate) fn signature_len(self) -> usize {
        match self {
            Algorithm::Hs256 => 32,
            Algorithm::EdDsa => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = TokenKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_jose(s).ok_or(TokenKeyError::InvalidConfig(
            "algorithm must be HS256 or EdDSA",
        ))
    }
}

/// A raw JWS signature (32 bytes for HS256, 64 for EdDSA), kept on the stack.
pub(crate) struct RawSignature {
    bytes: [u8; 64],
    len: usize,
}

impl AsRef<[u8]> for RawSignature {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The private half of the current token key: signs new tokens.
///
/// Cheap to clone (the HMAC state is a few hundred bytes; an Ed25519 key pair
/// is shared). `Debug` shows only the algorithm and key id.
#[derive(Clone)]
pub struct SigningKey {
    inner: SigningInner,
    kid: String,
    /// The refresh-token MAC key derived from this key (never published).
    refresh: HmacSha256,
}

#[derive(Clone)]
enum SigningInner {
    // Pre-keyed HMAC: cloning it skips re-hashing the key on every token.
    Hs256(HmacSha256),
    Ed25519 {
        pair: Arc<Ed25519KeyPair>,
        public: [u8; 32],
    },
}

impl SigningKey {
    /// An HS256 key from the UTF-8 bytes of `JWT_SECRET`, as the Python
    /// service used it. Refuses secrets shorter than
    /// [`MIN_HS256_SECRET_BYTES`] (production rule).
    ///
    /// The key id is derived from the secret — base64url of the first 12
    /// bytes of `HMAC-SHA256(secret, "stateless-otp/jwt-kid/v1")` — so every
    /// replica agrees on it and it reveals nothing a signed token does not.
    ///
    /// ```
    /// use otp_core::{Algorithm, SigningKey};
    /// let key = SigningKey::hs256("0123456789abcdef0123456789abcdef").unwrap();
    /// assert_eq!(key.algorithm(), Algorithm::Hs256);
    /// assert_eq!(key.kid().len(), 16);
    /// assert!(SigningKey::hs256("short").is_err());
    /// ```
    pub fn hs256(secret: impl AsRef<[u8]>) -> Result<Self, TokenKeyError> {
        let mac = hs256_mac(secret.as_ref(), MIN_HS256_SECRET_BYTES)?;
        let kid = hs256_kid(&mac);
        Ok(SigningKey::with_refresh_key(SigningInner::Hs256(mac), kid))
    }

    /// Like [`SigningKey::hs256`] but accepts any non-empty secret: for
    /// development, tests and verifying legacy tokens. Never use in production.
    pub fn hs256_insecure(secret: impl AsRef<[u8]>) -> Result<Self, TokenKeyError> {
        let mac = hs256_mac(secret.as_ref(), 1)?;
        let kid = hs256_kid(&mac);
        Ok(SigningKey::with_refresh_key(SigningInner::Hs256(mac), kid))
    }

    /// An Ed25519 key from a PKCS#8 private key (`JWT_ED25519_PRIVATE_KEY`)
    /// given as PEM (`-----BEGIN PRIVATE KEY-----`; literal `\n` sequences
    /// from environment variables are tolerated), as base64 of the DER
    /// (standard or URL-safe, padding optional), or as raw DER bytes.
    /// PKCS#8 v1 and v2 are both accepted. The key id is the RFC 7638 JWK
    /// thumbprint of the public key.
    ///
    /// ```
    /// use otp_core::{generate_ed25519_pkcs8, Algorithm, SigningKey};
    /// let der = generate_ed25519_pkcs8().unwrap();
    /// let key = SigningKey::ed25519_from_pkcs8(der.expose()).unwrap();
    /// assert_eq!(key.algorithm(), Algorithm::EdDsa);
    /// assert_eq!(key.kid().len(), 43);
    /// ```
    pub fn ed25519_from_pkcs8(key: impl AsRef<[u8]>) -> Result<Self, TokenKeyError> {
        let der = pkcs8_der(key.as_ref())?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| TokenKeyError::InvalidPkcs8)?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(SigningKey::with_refresh_key(
            SigningInner::Ed25519 {
                pair: Arc::new(pair),
                public,
            },
            ed25519_thumbprint(&public),
        ))
    }

    /// Completes a key with its refresh-token MAC key (see
    /// [`refresh_mac_key`]).
    fn with_refresh_key(inner: SigningInner, kid: String) -> Self {
        let refresh = refresh_mac_key(inner.sign(REFRESH_IKM_LABEL).as_ref());
        SigningKey {
            inner,
            kid,
            refresh,
        }
    }

    /// The refresh-token MAC key derived from this key.
    pub(crate) fn refresh_key(&self) -> &HmacSha256 {
        &self.refresh
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            SigningInner::Hs256(_) => Algorithm::Hs256,
            SigningInner::Ed25519 { .. } => Algorithm::EdDsa,
        }
    }

    /// The key id (`kid`) put in token headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The verifying half: the same HMAC key, or the Ed25519 public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let inner = match &self.inner {
            SigningInner::Hs256(mac) => VerifyingInner::Hs256(mac.clone()),
            SigningInner::Ed25519 { public, .. } => VerifyingInner::Ed25519(*public),
        };
        VerifyingKey {
            inner,
            kid: self.kid.clone(),
            refresh: Some(self.refresh.clone()),
        }
    }

    /// Signs a JWS signing input (`base64url(header) "." base64url(payload)`).
    pub(crate) fn sign(&self, message: &[u8]) -> RawSignature {
        self.inner.sign(message)
    }
}

impl SigningInner {
    fn sign(&self, message: &[u8]) -> RawSignature {
        let mut bytes = [0u8; 64];
        let len = match self {
            SigningInner::Hs256(mac) => {
                let tag = mac.clone().chain_update(message).finalize().into_bytes();
                bytes[..32].copy_from_slice(&tag);
                32
            }
            SigningInner::Ed25519 { pair, .. } => {
                bytes.copy_from_slice(pair.sign(message).as_ref());
                64
            }
        };
        RawSignature { bytes, len }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A key that verifies tokens only: a previous HS256 secret, an Ed25519
/// public key (from a previous private key, raw bytes, or a JWK).
#[derive(Clone)]
pub struct VerifyingKey {
    inner: VerifyingInner,
    kid: String,
    /// The refresh-token MAC key, when this key was built from secret
    /// material (an HS256 secret or an Ed25519 private key); `None` for a
    /// bare public key, which can verify access tokens only.
    refresh: Option<HmacSha256>,
}

#[derive(Clone)]
enum VerifyingInner {
    Hs256(HmacSha256),
    Ed25519([u8; 32]),
}

impl VerifyingKey {
    /// A verify-only HS256 key (`JWT_PREVIOUS_SECRETS` entry); same length
    /// rule and key id as [`SigningKey::hs256`].
    pub fn hs256(secret: impl AsRef<[u8]>) -> Result<Self, TokenKeyError> {
        Ok(SigningKey::hs256(secret)?.verifying_key())
    }

    /// Like [`VerifyingKey::hs256`] for any non-empty secret (legacy, tests).
    pub fn hs256_insecure(secret: impl AsRef<[u8]>) -> Result<Self, TokenKeyError> {
        Ok(SigningKey::hs256_insecure(secret)?.verifying_key())
    }

    /// The public half of an Ed25519 PKCS#8 private key (same encodings as
    /// [`SigningKey::ed25519_from_pkcs8`]).
    pub fn ed25519_from_pkcs8(key: impl AsRef<[u8]>) -> Result<Self, TokenKeyError> {
        Ok(SigningKey::ed25519_from_pkcs8(key)?.verifying_key())
    }

    /// An Ed25519 public key from its 32 raw bytes; the key id is its
    /// RFC 7638 thumbprint.
    pub fn ed25519_from_public(public: &[u8]) -> Result<Self, TokenKeyError> {
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| TokenKeyError::InvalidPublicKey)?;
        Ok(VerifyingKey {
            kid: ed25519_thumbprint(&public),
            inner: VerifyingInner::Ed25519(public),
            refresh: None,
        })
    }

    /// An Ed25519 public key from a JWK (`kty` `OKP`, `crv` `Ed25519`, `x`
    /// strict base64url of 32 bytes). The JWK's `kid` is kept; without one,
    /// the RFC 7638 thumbprint is used.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, TokenKeyError> {
        if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
            return Err(TokenKeyError::InvalidPublicKey);
        }
        let x = jwk.x.as_deref().ok_or(TokenKeyError::InvalidPublicKey)?;
        let raw = STRICT
            .decode(x)
            .map_err(|_| TokenKeyError::InvalidPublicKey)?;
        let mut key = VerifyingKey::ed25519_from_public(&raw)?;
        if let Some(kid) = &jwk.kid {
            key.kid.clone_from(kid);
        }
        Ok(key)
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            VerifyingInner::Hs256(_) => Algorithm::Hs256,
            VerifyingInner::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// The key id (`kid`) tokens name this key by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK of an Ed25519 key; `None` for HS256 (secrets are never
    /// published).
    pub fn to_jwk(&self) -> Option<Jwk> {
        match &self.inner {
            VerifyingInner::Hs256(_) => None,
            VerifyingInner::Ed25519(public) => Some(Jwk {
                kty: "OKP".to_owned(),
                crv: Some("Ed25519".to_owned()),
                x: Some(STRICT.encode(public)),
                kid: Some(self.kid.clone()),
                alg: Some("EdDSA".to_owned()),
                use_: Some("sig".to_owned()),
            }),
        }
    }

    /// The refresh-token MAC key derived from this key's secret material, if
    /// it had any.
    pub(crate) fn refresh_key(&self) -> Option<&HmacSha256> {
        self.refresh.as_ref()
    }

    /// Returns true if and only if `signature` is this key's valid signature
    /// of `message`. HMAC tags are compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            VerifyingInner::Hs256(mac) => mac
                .clone()
                .chain_update(message)
                .verify_slice(signature)
                .is_ok(),
            VerifyingInner::Ed25519(public) => UnparsedPublicKey::new(&ED25519, public)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The configured token keys: the current signing key plus previous keys
/// that still verify (rotation). All keys share one algorithm.
///
/// ```
/// use otp_core::{TokenKeyError, SigningKey, TokenKeys, VerifyingKey};
/// let current = SigningKey::hs256("a new secret that is 32+ bytes long!").unwrap();
/// let old = VerifyingKey::hs256("the old secret, also 32+ bytes long").unwrap();
/// let keys = TokenKeys::new(current, vec![old]).unwrap();
/// assert_eq!(keys.previous().len(), 1);
///
/// let ed = VerifyingKey::ed25519_from_public(&[7u8; 32]).unwrap();
/// let current = SigningKey::hs256("a new secret that is 32+ bytes long!").unwrap();
/// assert_eq!(TokenKeys::new(current, vec![ed]).unwrap_err(), TokenKeyError::MixedAlgorithms);
/// ```
#[derive(Clone, Debug)]
pub struct TokenKeys {
    current: SigningKey,
    previous: Vec<VerifyingKey>,
}

impl TokenKeys {
    /// Current key plus verify-only previous keys. Fails with
    /// [`TokenKeyError::MixedAlgorithms`] when a previous key's algorithm differs
    /// from the current one's. Previous keys equal to the current key (same
    /// key id) are dropped.
    pub fn new(current: SigningKey, previous: Vec<VerifyingKey>) -> Result<Self, TokenKeyError> {
        if previous
            .iter()
            .any(|k| k.algorithm() != current.algorithm())
        {
            return Err(TokenKeyError::MixedAlgorithms);
        }
        let mut kept: Vec<VerifyingKey> = Vec::with_capacity(previous.len());
        for key in previous {
            if key.kid != current.kid && !kept.iter().any(|k| k.kid == key.kid) {
                kept.push(key);
            }
        }
        Ok(TokenKeys {
            current,
            previous: kept,
        })
    }

    /// Only a current key, no rotation.
    pub fn single(current: SigningKey) -> Self {
        TokenKeys {
            current,
            previous: Vec::new(),
        }
    }

    /// The algorithm of every key in the set.
    pub fn algorithm(&self) -> Algorithm {
        self.current.algorithm()
    }

    /// The current (signing) key.
    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    /// The verify-only previous keys.
    pub fn previous(&self) -> &[VerifyingKey] {
        &self.previous
    }

    /// Current key's verifying half first, then the previous keys.
    pub(crate) fn verifying_keys(&self) -> Vec<VerifyingKey> {
        let mut keys = Vec::with_capacity(1 + self.previous.len());
        keys.push(self.current.verifying_key());
        keys.extend(self.previous.iter().cloned());
        keys
    }
}

/// A fresh Ed25519 private key as PKCS#8 v2 DER (for
/// `otp-server keygen ed25519`); see [`ed25519_pkcs8_pem`] to print it.
pub fn generate_ed25519_pkcs8() -> Result<SecretBytes, TokenKeyError> {
    let doc =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| TokenKeyError::Random)?;
    Ok(SecretBytes::new(doc.as_ref().to_vec()))
}

/// PEM text (`-----BEGIN PRIVATE KEY-----`, 64-column base64) of PKCS#8 DER.
///
/// ```
/// use otp_core::{ed25519_pkcs8_pem, generate_ed25519_pkcs8, SigningKey};
/// let der = generate_ed25519_pkcs8().unwrap();
/// let pem = ed25519_pkcs8_pem(der.expose());
/// assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
/// let a = SigningKey::ed25519_from_pkcs8(pem.as_bytes()).unwrap();
/// let b = SigningKey::ed25519_from_pkcs8(der.expose()).unwrap();
/// assert_eq!(a.kid(), b.kid());
/// ```
pub fn ed25519_pkcs8_pem(der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut pem = Zeroizing::new(String::with_capacity(b64.len() + 64));
    pem.push_str("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// A fresh HS256 secret for `JWT_SECRET` (for `otp-server keygen jwt`):
/// 32 random bytes as unpadded base64url, 43 characters (used as UTF-8
/// bytes, like any `JWT_SECRET`).
pub fn generate_hs256_secret() -> Result<Zeroizing<String>, TokenKeyError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| TokenKeyError::Random)?;
    Ok(Zeroizing::new(STRICT.encode(raw.as_ref())))
}

/// RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256 of
/// `{"crv":"Ed25519","kty":"OKP","x":"<x>"}`), members in lexicographic order.
pub(crate) fn ed25519_thumbprint(public: &[u8; 32]) -> String {
    let x = STRICT.encode(public);
    let mut hasher = Sha256::new();
    hasher.update(br#"{"crv":"Ed25519","kty":"OKP","x":""#);
    hasher.update(x.as_bytes());
    hasher.update(br#""}"#);
    STRICT.encode(hasher.finalize())
}

fn hs256_mac(secret: &[u8], min: usize) -> Result<HmacSha256, TokenKeyError> {
    if secret.is_empty() {
        return Err(TokenKeyError::EmptySecret);
    }
    if secret.len() < min {
        return Err(TokenKeyError::SecretTooShort {
            len: secret.len(),
            min,
        });
    }
    HmacSha256::new_from_slice(secret).map_err(|_| TokenKeyError::EmptySecret)
}

/// The refresh-token MAC key of a token key: HKDF-SHA256 (RFC 5869, ring)
/// over `ikm` (the key's output on [`REFRESH_IKM_LABEL`]), 32 bytes, used
/// as an HMAC-SHA256 key. Deterministic, so replicas sharing a key agree.
fn refresh_mac_key(ikm: &[u8]) -> HmacSha256 {
    use ring::hkdf::{Salt, HKDF_SHA256};
    let mut okm = Zeroizing::new([0u8; 32]);
    let filled = Salt::new(HKDF_SHA256, REFRESH_HKDF_SALT)
        .extract(ikm)
        .expand(&[REFRESH_HKDF_INFO], HKDF_SHA256)
        .and_then(|okm_state| okm_state.fill(okm.as_mut()));
    // Expanding 32 bytes (one SHA-256 block) never exceeds HKDF's 255-block
    // limit, so `filled` is always Ok; HMAC accepts any key length.
    debug_assert!(filled.is_ok());
    HmacSha256::new_from_slice(okm.as_ref())
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()))
}

fn hs256_kid(mac: &HmacSha256) -> String {
    let tag = mac
        .clone()
        .chain_update(HS256_KID_LABEL)
        .finalize()
        .into_bytes();
    STRICT.encode(&tag[..12])
}

/// PKCS#8 DER from PEM text, base64 text, or raw DER (tried in that order).
fn pkcs8_der(input: &[u8]) -> Result<Zeroizing<Vec<u8>>, TokenKeyError> {
    if let Ok(text) = std::str::from_utf8(input) {
        let text = text.trim();
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        if let Some(rest) = text.strip_prefix(BEGIN) {
            let end = rest.find(END).ok_or(TokenKeyError::InvalidKeyEncoding)?;
            let body = Zeroizing::new(rest[..end].replace("\\n", ""));
            return decode_lenient(&body)
                .map(Zeroizing::new)
                .ok_or(TokenKeyError::InvalidKeyEncoding);
        }
        if text.contains("-----BEGIN") {
            // An encrypted key, an EC/RSA key or a certificate: say so.
            return Err(TokenKeyError::InvalidPkcs8);
        }
        if let Some(der) = decode_lenient(&text.replace("\\n", "")) {
            return Ok(Zeroizing::new(der));
        }
    }
    if input.first() == Some(&0x30) {
        return Ok(Zeroizing::new(input.to_vec()));
    }
    Err(TokenKeyError::InvalidKeyEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_secret_length_rules() {
        assert_eq!(
            SigningKey::hs256([1u8; 31]).unwrap_err(),
            TokenKeyError::SecretTooShort { len: 31, min: 32 }
        );
        assert!(SigningKey::hs256([1u8; 32]).is_ok());
        assert!(SigningKey::hs256_insecure(b"x").is_ok());
        assert_eq!(
            SigningKey::hs256_insecure(b"").unwrap_err(),
            TokenKeyError::EmptySecret
        );
    }

    #[test]
    fn hs256_kid_is_deterministic_and_differs_per_secret() {
        let a = SigningKey::hs256([1u8; 32]).unwrap();
        let b = SigningKey::hs256([1u8; 32]).unwrap();
        let c = SigningKey::hs256([2u8; 32]).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_ne!(a.kid(), c.kid());
    }

    #[test]
    fn pkcs8_accepts_der_base64_pem_and_escaped_pem() {
        let der = generate_ed25519_pkcs8().unwrap();
        let kid = SigningKey::ed25519_from_pkcs8(der.expose())
            .unwrap()
            .kid()
            .to_owned();
        let std_b64 = base64::engine::general_purpose::STANDARD.encode(der.expose());
        let url_b64 = STRICT.encode(der.expose());
        let pem = ed25519_pkcs8_pem(der.expose());
        let escaped = pem.replace('\n', "\\n");
        for text in [&std_b64, &url_b64, &*pem, &escaped] {
            let key = SigningKey::ed25519_from_pkcs8(text.as_bytes()).unwrap();
            assert_eq!(key.kid(), kid);
        }
    }

    #[test]
    fn pkcs8_rejects_garbage_with_typed_errors() {
        assert_eq!(
            SigningKey::ed25519_from_pkcs8(b"not a key!").unwrap_err(),
            TokenKeyError::InvalidKeyEncoding
        );
        assert_eq!(
            SigningKey::ed25519_from_pkcs8(b"AAAA").unwrap_err(),
            TokenKeyError::InvalidPkcs8
        );
        assert_eq!(
            SigningKey::ed25519_from_pkcs8(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
            )
            .unwrap_err(),
            TokenKeyError::InvalidPkcs8
        );
    }

    #[test]
    fn generated_hs256_secret_is_accepted_in_production() {
        let secret = generate_hs256_secret().unwrap();
        assert_eq!(secret.len(), 43);
        assert!(SigningKey::hs256(secret.as_bytes()).is_ok());
    }
}
