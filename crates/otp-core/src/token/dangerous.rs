//! Foot-guns: decoding without verification, and low-level JWS signing and
//! signature-only checks. Nothing here checks `exp`, `iss` or `aud`; never
//! use these results to authorize a request. Use
//! [`TokenService::verify`](super::TokenService::verify) or
//! [`JwksVerifier::verify`](super::JwksVerifier::verify) instead.

use base64::Engine as _;

use super::b64::STRICT;
use super::claims::Claims;
use super::error::TokenError;
use super::jws::{decode_claims, parse_header, split, verify_signature as verify_core};
use super::keys::{SigningKey, VerifyingKey};

/// The protected header of a token, NOT verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedHeader {
    /// The `alg` the token claims (may be anything, including `none`).
    pub alg: String,
    /// The `kid`, if any.
    pub kid: Option<String>,
    /// The `typ`, if any (only absent or `JWT` get this far).
    pub typ: Option<String>,
}

/// Decodes the header without verifying anything else (e.g. to read `kid`
/// and refresh a JWKS). Structure, size and base64 are still checked
/// strictly; a `crit` header or a `typ` other than `JWT` is an error.
pub fn decode_header(token: &str) -> Result<UnverifiedHeader, TokenError> {
    let seg = split(token)?;
    let mut buf = [0u8; 1024];
    let header = parse_header(seg.header, &mut buf)?;
    Ok(UnverifiedHeader {
        alg: header.alg.into_owned(),
        kid: header.kid.map(|k| k.into_owned()),
        typ: header.typ.map(|t| t.into_owned()),
    })
}

/// Decodes the claims WITHOUT checking the signature or any claim value
/// (`sub`, `iss`, `aud` and `exp` must be present).
pub fn decode_claims_unverified(token: &str) -> Result<Claims, TokenError> {
    decode_claims(split(token)?.payload)
}

/// Checks only structure, header and signature against one key (the
/// header's `alg` must be the key's; its `kid`, if any, is ignored) and
/// returns the decoded payload bytes, which need not be JSON. For test
/// vectors and non-JWT JWS uses; no claim is checked.
///
/// ```
/// use otp_core::{dangerous, SigningKey};
/// let key = SigningKey::hs256_insecure(b"k").unwrap();
/// let jws = dangerous::encode_raw(&key, br#"{"alg":"HS256"}"#, b"hello");
/// assert_eq!(dangerous::verify_signature(&jws, &key.verifying_key()).unwrap(), b"hello");
/// ```
pub fn verify_signature(token: &str, key: &VerifyingKey) -> Result<Vec<u8>, TokenError> {
    let payload = verify_core(
        token,
        key.algorithm(),
        std::slice::from_ref(key),
        false,
        &[],
    )?;
    STRICT.decode(payload).map_err(|_| TokenError::Base64)
}

/// Signs an arbitrary protected header and payload with `key` and returns
/// the compact JWS. The header is used as given: nothing makes its `alg`
/// agree with the key (tests use that to build hostile tokens).
pub fn encode_raw(key: &SigningKey, header_json: &[u8], payload: &[u8]) -> String {
    let mut token = STRICT.encode(header_json);
    token.push('.');
    STRICT.encode_string(payload, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    STRICT.encode_string(signature, &mut token);
    token
}
