//! JWS compact serialization (RFC 7515 §7.1): splitting, the protected
//! header, signature checks, and the claim checks of RFC 8725 — the
//! allocation-light verification core shared by
//! [`TokenService`](super::TokenService) and [`JwksVerifier`](super::JwksVerifier).

use std::borrow::Cow;

use base64::DecodeSliceError;
use base64::Engine as _;
use serde::Deserialize;

use super::b64::{all_token_bytes, STRICT};
use super::claims::{Claims, RawClaims};
use super::error::TokenError;
use super::keys::{Algorithm, VerifyingKey};
use super::{TokenConfig, MAX_TOKEN_BYTES};

/// Largest decoded protected header accepted (ours is under 100 bytes).
const MAX_HEADER_BYTES: usize = 1024;

/// Decoded payloads up to this size are parsed from a stack buffer.
const SMALL_PAYLOAD_BYTES: usize = 768;

/// The protected header fields we look at; unknown members are ignored.
/// Strings borrow from the decoded header unless they contain escapes.
#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub(crate) alg: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) crit: bool,
}

/// `true` for any value, so that `crit` with any content (even `null`) counts.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The three segments of a token, still encoded.
pub(crate) struct Segments<'t> {
    pub(crate) header: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
    /// `header "." payload`: the bytes the signature covers.
    pub(crate) signing_input: &'t str,
}

/// Size cap, alphabet and segment count.
pub(crate) fn split(token: &str) -> Result<Segments<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    if !all_token_bytes(token.as_bytes()) {
        return Err(TokenError::Base64);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    // An empty signature is left to the signature check, so that an
    // `alg: none` token is reported as such.
    if header.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Segments {
        header,
        payload,
        signature,
        signing_input: &token[..header.len() + 1 + payload.len()],
    })
}

/// Decodes a header segment into `buf` and parses it (borrowing from `buf`).
pub(crate) fn parse_header<'b>(
    segment: &str,
    buf: &'b mut [u8; MAX_HEADER_BYTES],
) -> Result<Header<'b>, TokenError> {
    let len = match STRICT.decode_slice(segment, buf) {
        Ok(len) => len,
        Err(DecodeSliceError::DecodeError(_)) => return Err(TokenError::Base64),
        Err(DecodeSliceError::OutputSliceTooSmall) => return Err(TokenError::MalformedHeader),
    };
    let json = &buf[..len];
    // A struct would also deserialize from a JSON array: insist on an object.
    if json.first() != Some(&b'{') {
        return Err(TokenError::MalformedHeader);
    }
    let header: Header<'b> =
        serde_json::from_slice(json).map_err(|_| TokenError::MalformedHeader)?;
    if header.crit {
        return Err(TokenError::CriticalHeader);
    }
    if let Some(typ) = &header.typ {
        if !typ.eq_ignore_ascii_case("JWT") {
            return Err(TokenError::UnsupportedType);
        }
    }
    Ok(header)
}

/// Checks structure, header and signature; returns the (still encoded)
/// payload segment. The algorithm is `algorithm`, never the token's: the
/// header's `alg` must merely equal it. With a `kid`, only the key with that
/// id is tried (unknown → [`TokenError::UnknownKid`]); without one, every
/// key is tried (tokens of the Python service carry no `kid`).
///
/// `known` lists the encoded headers this verifier's own keys produce; a
/// token whose header segment equals one of them skips header decoding
/// (canonical base64url is one-to-one, so equal text means an equal,
/// already-validated header).
pub(crate) fn verify_signature<'t>(
    token: &'t str,
    algorithm: Algorithm,
    keys: &[VerifyingKey],
    match_kid: bool,
    known: &[KnownHeader],
) -> Result<&'t str, TokenError> {
    let seg = split(token)?;
    let chosen: Option<&VerifyingKey> = match known.iter().find(|h| h.segment == seg.header) {
        Some(hit) => hit.key.and_then(|i| keys.get(i)),
        None => {
            let mut buf = [0u8; MAX_HEADER_BYTES];
            let header = parse_header(seg.header, &mut buf)?;
            match Algorithm::from_jose(&header.alg) {
                None => return Err(TokenError::UnsupportedAlgorithm),
                Some(alg) if alg != algorithm => return Err(TokenError::AlgorithmMismatch),
                Some(_) => {}
            }
            match (&header.kid, match_kid) {
                (Some(kid), true) => Some(
                    keys.iter()
                        .find(|k| k.kid() == kid.as_ref())
                        .ok_or(TokenError::UnknownKid)?,
                ),
                _ => None,
            }
        }
    };
    let mut sig = [0u8; 64];
    let sig_len = match STRICT.decode_slice(seg.signature, &mut sig) {
        Ok(len) => len,
        Err(DecodeSliceError::DecodeError(_)) => return Err(TokenError::Base64),
        Err(DecodeSliceError::OutputSliceTooSmall) => return Err(TokenError::BadSignature),
    };
    if sig_len != algorithm.signature_len() {
        return Err(TokenError::BadSignature);
    }
    let message = seg.signing_input.as_bytes();
    let signature = &sig[..sig_len];
    let ok = match chosen {
        Some(key) => key.verify(message, signature),
        None => keys.iter().any(|k| k.verify(message, signature)),
    };
    if ok {
        Ok(seg.payload)
    } else {
        Err(TokenError::BadSignature)
    }
}

/// Decodes and parses a payload segment into claims with the required
/// claims present (no value checks).
pub(crate) fn decode_claims(payload: &str) -> Result<Claims, TokenError> {
    // Typical payloads (ours are ~200 bytes) decode on the stack; larger
    // ones (up to the 8 KiB token cap) on the heap.
    let mut small = [0u8; SMALL_PAYLOAD_BYTES];
    let heap;
    let json: &[u8] = match STRICT.decode_slice(payload, &mut small) {
        Ok(len) => &small[..len],
        Err(DecodeSliceError::DecodeError(_)) => return Err(TokenError::Base64),
        Err(DecodeSliceError::OutputSliceTooSmall) => {
            heap = STRICT.decode(payload).map_err(|_| TokenError::Base64)?;
            &heap
        }
    };
    let raw: RawClaims = serde_json::from_slice(json).map_err(|_| TokenError::MalformedClaims)?;
    raw.into_claims().map_err(TokenError::MissingClaim)
}

/// [`decode_claims`], keeping the decoded payload: it is appended to `out`
/// (left as it was on error), so a caller can answer with the claims exactly
/// as they were signed instead of serializing them again.
pub(crate) fn decode_claims_into(payload: &str, out: &mut Vec<u8>) -> Result<Claims, TokenError> {
    let start = out.len();
    let parsed = match STRICT.decode_vec(payload, out) {
        Ok(()) => serde_json::from_slice::<RawClaims>(&out[start..])
            .map_err(|_| TokenError::MalformedClaims)
            .and_then(|raw| raw.into_claims().map_err(TokenError::MissingClaim)),
        Err(_) => Err(TokenError::Base64),
    };
    if parsed.is_err() {
        out.truncate(start);
    }
    parsed
}

/// The JSON protected header this library writes: `alg`, `typ`, then `kid`
/// if given (JSON-escaped).
pub(crate) fn header_json(algorithm: Algorithm, kid: Option<&str>) -> String {
    let mut json = String::with_capacity(96);
    json.push_str(r#"{"alg":""#);
    json.push_str(algorithm.as_str());
    json.push_str(r#"","typ":"JWT""#);
    if let Some(kid) = kid {
        json.push_str(r#","kid":"#);
        json.push_str(&serde_json::Value::from(kid).to_string());
    }
    json.push('}');
    json
}

/// An encoded header that needs no parsing, and the key it names (`None`:
/// no `kid`, try every key).
#[derive(Clone, Debug)]
pub(crate) struct KnownHeader {
    segment: String,
    key: Option<usize>,
}

/// A key set with one algorithm plus the claim rules: the verification core.
#[derive(Clone, Debug)]
pub(crate) struct Validator {
    pub(crate) algorithm: Algorithm,
    pub(crate) keys: Vec<VerifyingKey>,
    pub(crate) config: TokenConfig,
    known: Vec<KnownHeader>,
}

impl Validator {
    /// A validator for `keys` (all of `algorithm`), precomputing the encoded
    /// headers of our own tokens: with each key's `kid`, and without `kid`.
    pub(crate) fn new(algorithm: Algorithm, keys: Vec<VerifyingKey>, config: TokenConfig) -> Self {
        let mut known: Vec<KnownHeader> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| KnownHeader {
                segment: STRICT.encode(header_json(algorithm, Some(k.kid()))),
                key: Some(i),
            })
            .collect();
        known.push(KnownHeader {
            segment: STRICT.encode(header_json(algorithm, None)),
            key: None,
        });
        Validator {
            algorithm,
            keys,
            config,
            known,
        }
    }

    /// Full verification: signature first, then claims. Claim checks run in
    /// the order iss, aud, exp, nbf, iat, so a token for another issuer or
    /// audience is "invalid" even when it is also expired.
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let payload = verify_signature(token, self.algorithm, &self.keys, true, &self.known)?;
        let claims = decode_claims(payload)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// [`Validator::verify`], appending the decoded payload to `out` on
    /// success (`out` is left as it was on error).
    pub(crate) fn verify_into(
        &self,
        token: &str,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<Claims, TokenError> {
        let payload = verify_signature(token, self.algorithm, &self.keys, true, &self.known)?;
        let start = out.len();
        let claims = decode_claims_into(payload, out)?;
        if let Err(e) = self.check_claims(&claims, now) {
            out.truncate(start);
            return Err(e);
        }
        Ok(claims)
    }

    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        let leeway = self.config.leeway_seconds;
        if claims.iss != self.config.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.aud.contains(&self.config.audience) {
            return Err(TokenError::WrongAudience);
        }
        // RFC 7519 §4.1.4: valid only while now < exp.
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        let later = now.saturating_add(leeway);
        if claims.nbf.is_some_and(|nbf| nbf > later) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat.is_some_and(|iat| iat > later) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{dangerous, SigningKey};

    fn validator(keys: &[&SigningKey]) -> Validator {
        let keys = keys.iter().map(|k| k.verifying_key()).collect();
        Validator::new(Algorithm::Hs256, keys, TokenConfig::default())
    }

    fn claims() -> Vec<u8> {
        br#"{"sub":"a","iss":"stateless-otp","aud":"api","exp":100}"#.to_vec()
    }

    #[test]
    fn known_header_fast_path_still_checks_the_named_key() {
        let a = SigningKey::hs256([1u8; 32]).unwrap();
        let b = SigningKey::hs256([2u8; 32]).unwrap();
        let v = validator(&[&a, &b]);
        let header_a = header_json(Algorithm::Hs256, Some(a.kid()));
        assert!(v
            .known
            .iter()
            .any(|h| h.segment == STRICT.encode(&header_a)));

        // Header naming `a`, signed by `a`: accepted; signed by `b`: refused
        // even though `b` is configured, because the kid pins the key.
        let good = dangerous::encode_raw(&a, header_a.as_bytes(), &claims());
        assert!(v.verify(&good, 1).is_ok());
        let swapped = dangerous::encode_raw(&b, header_a.as_bytes(), &claims());
        assert_eq!(v.verify(&swapped, 1), Err(TokenError::BadSignature));

        // The no-kid header tries every key.
        let no_kid = header_json(Algorithm::Hs256, None);
        let by_b = dangerous::encode_raw(&b, no_kid.as_bytes(), &claims());
        assert!(v.verify(&by_b, 1).is_ok());

        // A validator without `a` does not know its header: slow path, and
        // the kid is unknown.
        let only_b = validator(&[&b]);
        assert_eq!(only_b.verify(&good, 1), Err(TokenError::UnknownKid));
    }

    #[test]
    fn verify_into_appends_the_signed_payload_only_when_the_token_is_valid() {
        let a = SigningKey::hs256([1u8; 32]).unwrap();
        let v = validator(&[&a]);
        let header = header_json(Algorithm::Hs256, Some(a.kid()));
        // members in the signer's order and spacing, a fractional date: the
        // bytes come back as signed, while the claims are parsed as usual
        let payload = br#"{"exp": 100.5, "aud":"api","iss":"stateless-otp","sub":"a","x":[1]}"#;
        let token = dangerous::encode_raw(&a, header.as_bytes(), payload);
        let mut out = b"prefix:".to_vec();
        let claims = v.verify_into(&token, 1, &mut out).unwrap();
        assert_eq!(claims, v.verify(&token, 1).unwrap());
        assert_eq!(claims.exp, 100);
        assert_eq!(&out[..7], b"prefix:");
        assert_eq!(&out[7..], payload);
        // expired, bad signature, malformed claims: `out` is untouched
        for (bad, now) in [
            (token.clone(), 200),
            (
                dangerous::encode_raw(
                    &SigningKey::hs256([2u8; 32]).unwrap(),
                    header.as_bytes(),
                    payload,
                ),
                1,
            ),
            (
                dangerous::encode_raw(&a, header.as_bytes(), br#"{"sub":"a"}"#),
                1,
            ),
            (dangerous::encode_raw(&a, header.as_bytes(), b"[1]"), 1),
        ] {
            let mut out = b"prefix:".to_vec();
            assert!(v.verify_into(&bad, now, &mut out).is_err());
            assert_eq!(out, b"prefix:");
        }
    }

    #[test]
    fn issued_tokens_carry_the_bytes_their_claims_serialize_to() {
        use crate::token::{TokenKeys, TokenService};
        let service = TokenService::new(
            TokenKeys::single(SigningKey::hs256([3u8; 32]).unwrap()),
            TokenConfig::default(),
        )
        .unwrap();
        let mut extra = serde_json::Map::new();
        extra.insert("role".into(), "admin".into());
        extra.insert(
            "n".into(),
            serde_json::json!([1.5, "é\"", {"b": 1, "a": null}]),
        );
        let issued = service.issue("alice@example.com", 1_000, extra).unwrap();
        let mut out = Vec::new();
        let claims = service.verify_into(&issued.token, 1_001, &mut out).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(out, serde_json::to_vec(&claims).unwrap());
    }

    #[test]
    fn header_json_escapes_the_kid() {
        assert_eq!(
            header_json(Algorithm::EdDsa, Some("a\"b")),
            r#"{"alg":"EdDSA","typ":"JWT","kid":"a\"b"}"#
        );
    }
}
