//! Integration tests of the token API of otp-core (SPEC §4): RFC 7515 / RFC 8037
//! vectors, one test per RFC 8725 rejection, rotation and JWKS, property
//! tests, and interop with PyJWT (python3 + `jwt` + `cryptography`).
//!
//! Hostile tokens are signed here with the `hmac` crate directly (or with
//! `dangerous::encode_raw` for Ed25519), independent of the issuing code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use otp_core::{
    dangerous, generate_ed25519_pkcs8, Audience, Jwk, Jwks, JwksVerifier, SigningKey, TokenConfig,
    TokenError, TokenKeyError, TokenKeys, TokenService, VerifyingKey, MAX_TOKEN_BYTES,
    REGISTERED_CLAIMS,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sha2::Sha256;

pub(crate) const SECRET: &str = "test-secret-that-is-at-least-32-bytes!";
pub(crate) const NOW: u64 = 1_800_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn hs_service(secret: &str) -> TokenService {
    let key = SigningKey::hs256(secret).unwrap();
    TokenService::new(TokenKeys::single(key), TokenConfig::default()).unwrap()
}

pub(crate) fn ed_key() -> SigningKey {
    SigningKey::ed25519_from_pkcs8(generate_ed25519_pkcs8().unwrap().expose()).unwrap()
}

fn ed_service() -> TokenService {
    TokenService::new(TokenKeys::single(ed_key()), TokenConfig::default()).unwrap()
}

/// HS256 JWS over arbitrary header and payload JSON, signed with `key`
/// by the `hmac` crate (not by otp-core).
fn sign_hs(key: &[u8], header: &Value, payload: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    sign_hs_input(key, &input)
}

fn sign_hs_input(key: &[u8], input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

fn hs_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

/// Claims as this service issues them at `NOW`.
fn good_claims() -> Value {
    json!({
        "sub": "alice@example.com", "iss": "stateless-otp", "aud": "api",
        "iat": NOW, "nbf": NOW, "exp": NOW + 900, "jti": "abc", "amr": ["otp"]
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn decode_json(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

// ---------------------------------------------------------------- vectors

fn vector(name: &str) -> Value {
    let path = format!("{}/tests/data/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn verify_hs256_rfc7515_appendix_a1() {
    let v = vector("rfc7515_a1_hs256.json");
    let k = URL_SAFE_NO_PAD
        .decode(v["jwk"]["k"].as_str().unwrap())
        .unwrap();
    let key = VerifyingKey::hs256(&k).unwrap();
    let token = v["token"].as_str().unwrap();

    let payload = dangerous::verify_signature(token, &key).unwrap();
    assert_eq!(payload, v["payload"].as_str().unwrap().as_bytes());
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["exp"], v["exp"]);

    // Through the full verifier (issuer "joe", before exp) the signature
    // passes and the claim checks then stop at the vector's missing `aud`.
    let signing = SigningKey::hs256(&k).unwrap();
    let config = TokenConfig {
        issuer: "joe".into(),
        ..TokenConfig::default()
    };
    let service = TokenService::new(TokenKeys::single(signing), config).unwrap();
    let exp = v["exp"].as_u64().unwrap();
    assert_eq!(
        service.verify(token, exp - 1),
        Err(TokenError::MissingClaim("aud"))
    );

    // One wrong key bit and the vector fails.
    let mut bad = k.clone();
    bad[0] ^= 1;
    assert_eq!(
        dangerous::verify_signature(token, &VerifyingKey::hs256(&bad).unwrap()),
        Err(TokenError::BadSignature)
    );
}

fn rfc8037_pkcs8_v1() -> Vec<u8> {
    let v = vector("rfc8037_ed25519.json");
    let prefix = v["pkcs8_v1_prefix_hex"].as_str().unwrap();
    let mut der: Vec<u8> = (0..prefix.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&prefix[i..i + 2], 16).unwrap())
        .collect();
    der.extend(URL_SAFE_NO_PAD.decode(v["d"].as_str().unwrap()).unwrap());
    der
}

#[test]
fn rfc8037_a4_ed25519_example_verifies_and_is_reproduced() {
    let v = vector("rfc8037_ed25519.json");
    let token = v["token"].as_str().unwrap();

    // Verify with the A.2 public key, given as a JWK.
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "OKP", "crv": "Ed25519", "x": v["x"]
    }))
    .unwrap();
    let public = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(public.kid(), v["thumbprint"].as_str().unwrap());
    let payload = dangerous::verify_signature(token, &public).unwrap();
    assert_eq!(payload, v["payload"].as_str().unwrap().as_bytes());

    // Sign with the A.1 private key wrapped in PKCS#8 v1: Ed25519 is
    // deterministic, so the JWS must be byte for byte the RFC's.
    let signing = SigningKey::ed25519_from_pkcs8(rfc8037_pkcs8_v1()).unwrap();
    let ours = dangerous::encode_raw(
        &signing,
        v["header"].as_str().unwrap().as_bytes(),
        v["payload"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(ours, token);
}

#[test]
fn rfc8037_a3_thumbprint_is_the_kid() {
    let v = vector("rfc8037_ed25519.json");
    let thumbprint = v["thumbprint"].as_str().unwrap();
    let signing = SigningKey::ed25519_from_pkcs8(rfc8037_pkcs8_v1()).unwrap();
    assert_eq!(signing.kid(), thumbprint);
    let jwk = signing.verifying_key().to_jwk().unwrap();
    assert_eq!(jwk.x.as_deref(), v["x"].as_str());
    assert_eq!(jwk.thumbprint().as_deref(), Some(thumbprint));
}

#[test]
fn pkcs8_v1_and_v2_are_both_accepted() {
    // v1: the RFC 8037 seed in the fixed 16-byte prefix; v2: ring's output,
    // which also embeds the public key.
    let v1 = SigningKey::ed25519_from_pkcs8(rfc8037_pkcs8_v1()).unwrap();
    let v2_der = generate_ed25519_pkcs8().unwrap();
    assert_ne!(v2_der.expose().len(), rfc8037_pkcs8_v1().len());
    let v2 = SigningKey::ed25519_from_pkcs8(v2_der.expose()).unwrap();
    assert_ne!(v1.kid(), v2.kid());
}

// ---------------------------------------------------------------- issuing

#[test]
fn hs256_header_and_claims_are_as_specified() {
    let service = hs_service(SECRET);
    let mut extra = Map::new();
    extra.insert("role".into(), json!("admin"));
    let issued = service.issue("alice@example.com", NOW, extra).unwrap();
    let seg = segments(&issued.token);
    assert_eq!(seg.len(), 3);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&seg[0]).unwrap(),
        br#"{"alg":"HS256","typ":"JWT"}"#
    );
    let payload = decode_json(&seg[1]);
    let jti = payload["jti"].as_str().unwrap().to_owned();
    assert_eq!(URL_SAFE_NO_PAD.decode(&jti).unwrap().len(), 16);
    assert_eq!(
        payload,
        json!({
            "sub": "alice@example.com", "iss": "stateless-otp", "aud": "api",
            "iat": NOW, "nbf": NOW, "exp": NOW + 900, "jti": jti, "amr": ["otp"],
            "role": "admin"
        })
    );
    assert_eq!(issued.expires_in, 900);
    assert_eq!(issued.claims.exp, NOW + 900);
    assert_eq!(service.verify(&issued.token, NOW).unwrap(), issued.claims);
}

#[test]
fn jti_differs_between_tokens() {
    let service = hs_service(SECRET);
    let a = service.issue("a", NOW, Map::new()).unwrap();
    let b = service.issue("a", NOW, Map::new()).unwrap();
    assert_ne!(a.claims.jti, b.claims.jti);
    assert_ne!(a.token, b.token);
}

#[test]
fn eddsa_header_carries_the_thumbprint_kid() {
    let key = ed_key();
    let kid = key.kid().to_owned();
    let service = TokenService::new(TokenKeys::single(key), TokenConfig::default()).unwrap();
    let issued = service.issue("bob", NOW, Map::new()).unwrap();
    let header = decode_json(&segments(&issued.token)[0]);
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}));
    assert_eq!(service.verify(&issued.token, NOW + 1).unwrap().sub, "bob");
}

#[test]
fn extra_claims_may_not_override_registered_claims() {
    let service = hs_service(SECRET);
    for name in REGISTERED_CLAIMS {
        let mut extra = Map::new();
        extra.insert(name.to_owned(), json!("override"));
        extra.insert("fine".to_owned(), json!(1));
        assert_eq!(
            service.issue("alice", NOW, extra).unwrap_err(),
            TokenError::ReservedClaim(name.to_owned()),
            "{name}"
        );
    }
}

#[test]
fn config_out_of_range_is_refused() {
    let key = SigningKey::hs256(SECRET).unwrap();
    for config in [
        TokenConfig {
            ttl_seconds: 0,
            ..TokenConfig::default()
        },
        TokenConfig {
            issuer: String::new(),
            ..TokenConfig::default()
        },
        TokenConfig {
            audience: String::new(),
            ..TokenConfig::default()
        },
    ] {
        assert!(matches!(
            TokenService::new(TokenKeys::single(key.clone()), config),
            Err(TokenKeyError::InvalidConfig(_))
        ));
    }
}

#[test]
fn production_hs256_secret_must_be_32_bytes() {
    assert_eq!(
        SigningKey::hs256("x".repeat(31)).unwrap_err(),
        TokenKeyError::SecretTooShort { len: 31, min: 32 }
    );
    assert!(SigningKey::hs256("x".repeat(32)).is_ok());
    assert!(SigningKey::hs256_insecure("short").is_ok());
}

// ------------------------------------------------------------- rejections

#[test]
fn rejects_alg_none() {
    let service = hs_service(SECRET);
    let payload = b64(good_claims().to_string().as_bytes());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        let unsigned = format!("{header}.{payload}.");
        assert_eq!(
            service.verify(&unsigned, NOW),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
        // Even with a valid HMAC over the input, `none` is refused.
        let signed = sign_hs_input(SECRET.as_bytes(), &format!("{header}.{payload}"));
        assert_eq!(
            service.verify(&signed, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn rejects_unknown_algorithms() {
    let service = hs_service(SECRET);
    for alg in ["HS384", "HS512", "RS256", "ES256", "hs256", ""] {
        let token = sign_hs(
            SECRET.as_bytes(),
            &json!({"alg": alg, "typ": "JWT"}),
            &good_claims(),
        );
        assert_eq!(
            service.verify(&token, NOW),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn rejects_hs256_token_when_keys_are_ed25519() {
    let service = ed_service();
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &good_claims());
    assert_eq!(
        service.verify(&token, NOW),
        Err(TokenError::AlgorithmMismatch)
    );
}

#[test]
fn rejects_eddsa_token_when_keys_are_hs256() {
    let ed = ed_service();
    let issued = ed.issue("alice@example.com", NOW, Map::new()).unwrap();
    let hs = hs_service(SECRET);
    assert_eq!(
        hs.verify(&issued.token, NOW),
        Err(TokenError::AlgorithmMismatch)
    );
    // Also when the EdDSA token carries no kid.
    let key = ed_key();
    let raw = dangerous::encode_raw(
        &key,
        br#"{"alg":"EdDSA"}"#,
        good_claims().to_string().as_bytes(),
    );
    assert_eq!(hs.verify(&raw, NOW), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn rejects_hs256_signed_with_the_ed25519_public_key() {
    // The classic confusion attack: the public key is public, so an HS256
    // verifier that took its key from the token's `alg` would accept this.
    let service = ed_service();
    let jwk = service.jwks().keys[0].clone();
    let x = jwk.x.clone().unwrap();
    let raw_public = URL_SAFE_NO_PAD.decode(&x).unwrap();
    let jwk_json = serde_json::to_vec(&jwk).unwrap();
    for key in [raw_public.as_slice(), x.as_bytes(), jwk_json.as_slice()] {
        for header in [
            hs_header(),
            json!({"alg": "HS256", "typ": "JWT", "kid": jwk.kid}),
        ] {
            let token = sign_hs(key, &header, &good_claims());
            assert_eq!(
                service.verify(&token, NOW),
                Err(TokenError::AlgorithmMismatch)
            );
        }
    }
}

#[test]
fn rejects_unknown_kid() {
    // HS256 with rotation keys configured.
    let keys = TokenKeys::new(
        SigningKey::hs256(SECRET).unwrap(),
        vec![VerifyingKey::hs256("previous-secret-also-at-least-32-bytes").unwrap()],
    )
    .unwrap();
    let service = TokenService::new(keys, TokenConfig::default()).unwrap();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "no-such-key"});
    let token = sign_hs(SECRET.as_bytes(), &header, &good_claims());
    assert_eq!(service.verify(&token, NOW), Err(TokenError::UnknownKid));

    // EdDSA: a token signed by another key pair.
    let service = ed_service();
    let other = TokenService::new(TokenKeys::single(ed_key()), TokenConfig::default()).unwrap();
    let token = other.issue("alice", NOW, Map::new()).unwrap().token;
    assert_eq!(service.verify(&token, NOW), Err(TokenError::UnknownKid));
}

#[test]
fn rejects_kid_of_one_key_with_signature_of_another() {
    let previous = "previous-secret-also-at-least-32-bytes";
    let prev_kid = VerifyingKey::hs256(previous).unwrap().kid().to_owned();
    let keys = TokenKeys::new(
        SigningKey::hs256(SECRET).unwrap(),
        vec![VerifyingKey::hs256(previous).unwrap()],
    )
    .unwrap();
    let service = TokenService::new(keys, TokenConfig::default()).unwrap();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": prev_kid});
    let token = sign_hs(SECRET.as_bytes(), &header, &good_claims());
    assert_eq!(service.verify(&token, NOW), Err(TokenError::BadSignature));
    let token = sign_hs(previous.as_bytes(), &header, &good_claims());
    assert!(service.verify(&token, NOW).is_ok());
}

#[test]
fn rejects_tampered_header() {
    let service = hs_service(SECRET);
    let token = service.issue("alice", NOW, Map::new()).unwrap().token;
    let seg = segments(&token);
    let header = b64(br#"{"alg":"HS256","typ":"JWT","x":1}"#);
    let tampered = format!("{header}.{}.{}", seg[1], seg[2]);
    assert_eq!(
        service.verify(&tampered, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn rejects_tampered_payload() {
    for service in [hs_service(SECRET), ed_service()] {
        let token = service.issue("alice", NOW, Map::new()).unwrap().token;
        let seg = segments(&token);
        let mut payload = decode_json(&seg[1]);
        payload["sub"] = json!("mallory");
        let tampered = format!(
            "{}.{}.{}",
            seg[0],
            b64(payload.to_string().as_bytes()),
            seg[2]
        );
        assert_eq!(
            service.verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }
}

#[test]
fn rejects_tampered_signature() {
    for service in [hs_service(SECRET), ed_service()] {
        let token = service.issue("alice", NOW, Map::new()).unwrap().token;
        let seg = segments(&token);
        let mut sig = URL_SAFE_NO_PAD.decode(&seg[2]).unwrap();
        sig[5] ^= 0x01;
        let tampered = format!("{}.{}.{}", seg[0], seg[1], b64(&sig));
        assert_eq!(
            service.verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
        // A truncated or empty signature too.
        sig.pop();
        let short = format!("{}.{}.{}", seg[0], seg[1], b64(&sig));
        assert_eq!(service.verify(&short, NOW), Err(TokenError::BadSignature));
        let empty = format!("{}.{}.", seg[0], seg[1]);
        assert_eq!(service.verify(&empty, NOW), Err(TokenError::BadSignature));
    }
}

#[test]
fn rejects_expired_token() {
    let service = hs_service(SECRET);
    let issued = service.issue("alice", NOW, Map::new()).unwrap();
    assert!(service.verify(&issued.token, NOW + 899).is_ok());
    let err = service.verify(&issued.token, NOW + 900).unwrap_err();
    assert_eq!(err, TokenError::Expired);
    assert!(err.is_expired());
    assert_eq!(err.reason(), "token_expired");
}

#[test]
fn rejects_nbf_in_the_future() {
    let service = hs_service(SECRET);
    let claims = with(good_claims(), "nbf", json!(NOW + 1));
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &claims);
    assert_eq!(service.verify(&token, NOW), Err(TokenError::NotYetValid));
    assert!(service.verify(&token, NOW + 1).is_ok());
}

#[test]
fn rejects_iat_in_the_future() {
    let service = hs_service(SECRET);
    let claims = with(good_claims(), "iat", json!(NOW + 1));
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &claims);
    assert_eq!(service.verify(&token, NOW), Err(TokenError::IssuedInFuture));
    assert!(service.verify(&token, NOW + 1).is_ok());
}

#[test]
fn rejects_wrong_issuer() {
    let service = hs_service(SECRET);
    for iss in [json!("someone-else"), json!("Stateless-OTP"), json!("")] {
        let token = sign_hs(
            SECRET.as_bytes(),
            &hs_header(),
            &with(good_claims(), "iss", iss),
        );
        assert_eq!(service.verify(&token, NOW), Err(TokenError::WrongIssuer));
    }
    let token = sign_hs(
        SECRET.as_bytes(),
        &hs_header(),
        &without(good_claims(), "iss"),
    );
    assert_eq!(
        service.verify(&token, NOW),
        Err(TokenError::MissingClaim("iss"))
    );
}

#[test]
fn rejects_wrong_audience_string() {
    let service = hs_service(SECRET);
    let token = sign_hs(
        SECRET.as_bytes(),
        &hs_header(),
        &with(good_claims(), "aud", json!("admin")),
    );
    assert_eq!(service.verify(&token, NOW), Err(TokenError::WrongAudience));
    let token = sign_hs(
        SECRET.as_bytes(),
        &hs_header(),
        &without(good_claims(), "aud"),
    );
    assert_eq!(
        service.verify(&token, NOW),
        Err(TokenError::MissingClaim("aud"))
    );
}

#[test]
fn rejects_wrong_audience_array_and_accepts_a_matching_one() {
    let service = hs_service(SECRET);
    for aud in [json!(["admin", "web"]), json!([])] {
        let token = sign_hs(
            SECRET.as_bytes(),
            &hs_header(),
            &with(good_claims(), "aud", aud),
        );
        assert_eq!(service.verify(&token, NOW), Err(TokenError::WrongAudience));
    }
    let token = sign_hs(
        SECRET.as_bytes(),
        &hs_header(),
        &with(good_claims(), "aud", json!(["web", "api"])),
    );
    let claims = service.verify(&token, NOW).unwrap();
    assert_eq!(claims.aud, Audience::Many(vec!["web".into(), "api".into()]));
}

#[test]
fn rejects_missing_exp() {
    let service = hs_service(SECRET);
    let token = sign_hs(
        SECRET.as_bytes(),
        &hs_header(),
        &without(good_claims(), "exp"),
    );
    let err = service.verify(&token, NOW).unwrap_err();
    assert_eq!(err, TokenError::MissingClaim("exp"));
    assert_eq!(err.reason(), "token_invalid");
}

#[test]
fn rejects_missing_sub_and_mistyped_claims() {
    let service = hs_service(SECRET);
    let token = sign_hs(
        SECRET.as_bytes(),
        &hs_header(),
        &without(good_claims(), "sub"),
    );
    assert_eq!(
        service.verify(&token, NOW),
        Err(TokenError::MissingClaim("sub"))
    );
    for (name, value) in [
        ("exp", json!("soon")),
        ("exp", json!(-5)),
        ("sub", json!(42)),
        ("amr", json!("otp")),
        ("aud", json!(7)),
    ] {
        let token = sign_hs(
            SECRET.as_bytes(),
            &hs_header(),
            &with(good_claims(), name, value),
        );
        assert_eq!(
            service.verify(&token, NOW),
            Err(TokenError::MalformedClaims),
            "{name}"
        );
    }
}

#[test]
fn rejects_duplicate_claims_and_non_object_payloads() {
    let service = hs_service(SECRET);
    let header = b64(hs_header().to_string().as_bytes());
    let dup = r#"{"sub":"alice","sub":"admin","iss":"stateless-otp","aud":"api","exp":1800000900}"#;
    for payload in [dup, "[1,2]", "null", "not json", ""] {
        let token = sign_hs_input(
            SECRET.as_bytes(),
            &format!("{header}.{}", b64(payload.as_bytes())),
        );
        assert_eq!(
            service.verify(&token, NOW),
            Err(TokenError::MalformedClaims),
            "{payload}"
        );
    }
}

#[test]
fn rejects_crit_header_and_foreign_typ() {
    let service = hs_service(SECRET);
    let crit = json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"], "exp": 1});
    let token = sign_hs(SECRET.as_bytes(), &crit, &good_claims());
    assert_eq!(service.verify(&token, NOW), Err(TokenError::CriticalHeader));
    let typ = json!({"alg": "HS256", "typ": "secevent+jwt"});
    let token = sign_hs(SECRET.as_bytes(), &typ, &good_claims());
    assert_eq!(
        service.verify(&token, NOW),
        Err(TokenError::UnsupportedType)
    );
    // Absent or lower-case typ is fine.
    for header in [
        json!({"alg": "HS256"}),
        json!({"alg": "HS256", "typ": "jwt"}),
    ] {
        let token = sign_hs(SECRET.as_bytes(), &header, &good_claims());
        assert!(service.verify(&token, NOW).is_ok());
    }
}

#[test]
fn rejects_malformed_headers() {
    let service = hs_service(SECRET);
    for header in [
        r#"["HS256"]"#,
        r#"{"typ":"JWT"}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":256}"#,
        "garbage",
    ] {
        let token = sign_hs_input(
            SECRET.as_bytes(),
            &format!(
                "{}.{}",
                b64(header.as_bytes()),
                b64(good_claims().to_string().as_bytes())
            ),
        );
        assert_eq!(
            service.verify(&token, NOW),
            Err(TokenError::MalformedHeader),
            "{header}"
        );
    }
}

#[test]
fn rejects_oversized_token() {
    let service = hs_service(SECRET);
    // Grow one extra claim until the token is exactly at the cap: accepted;
    // one byte more (a longer claim) is refused before any parsing.
    let base = service.issue("alice", NOW, Map::new()).unwrap().token.len();
    let mut size = MAX_TOKEN_BYTES - base;
    let token = loop {
        let mut extra = Map::new();
        extra.insert("pad".into(), json!("x".repeat(size)));
        let token = service.issue("alice", NOW, extra).unwrap().token;
        if token.len() <= MAX_TOKEN_BYTES {
            break token;
        }
        size -= 1;
    };
    assert!(token.len() > MAX_TOKEN_BYTES - 4, "{}", token.len());
    assert!(service.verify(&token, NOW).is_ok());

    let mut extra = Map::new();
    extra.insert("pad".into(), json!("x".repeat(size + 4)));
    let big = service.issue("alice", NOW, extra).unwrap().token;
    assert!(big.len() > MAX_TOKEN_BYTES);
    assert_eq!(service.verify(&big, NOW), Err(TokenError::TooLarge));
    assert_eq!(
        service.verify(&"a".repeat(1 << 20), NOW),
        Err(TokenError::TooLarge)
    );
}

#[test]
fn rejects_padded_base64() {
    let service = hs_service(SECRET);
    let token = service.issue("alice", NOW, Map::new()).unwrap().token;
    let seg = segments(&token);
    // 32-byte HMAC → 43 chars, canonical padding would add one '='.
    let padded_sig = format!("{}.{}.{}=", seg[0], seg[1], seg[2]);
    assert_eq!(service.verify(&padded_sig, NOW), Err(TokenError::Base64));
    // The header {"alg":"HS256","typ":"JWT"} is 27 bytes → 36 chars, a
    // padded payload or header needs '=' too.
    let padded_payload = format!("{}.{}==.{}", seg[0], seg[1], seg[2]);
    assert_eq!(
        service.verify(&padded_payload, NOW),
        Err(TokenError::Base64)
    );
    let padded_header = format!("{}=.{}.{}", seg[0], seg[1], seg[2]);
    assert_eq!(service.verify(&padded_header, NOW), Err(TokenError::Base64));
}

#[test]
fn rejects_base64_with_nonzero_trailing_bits() {
    let service = hs_service(SECRET);
    let token = service.issue("alice", NOW, Map::new()).unwrap().token;
    let seg = segments(&token);
    // 43 chars carry 258 bits for 256: the last char's low 2 bits are unused.
    // Setting them changes the text but not the decoded bytes under a lax
    // decoder; the strict one refuses it.
    let sig = &seg[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    assert_eq!(idx & 0b11, 0, "canonical encoding has zero trailing bits");
    let sloppy = alphabet.as_bytes()[idx | 0b01] as char;
    let tampered = format!("{}.{}.{}{}", seg[0], seg[1], &sig[..sig.len() - 1], sloppy);
    let lax = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    assert_eq!(
        lax.decode(tampered.split('.').nth(2).unwrap()).unwrap(),
        URL_SAFE_NO_PAD.decode(sig).unwrap()
    );
    assert_eq!(service.verify(&tampered, NOW), Err(TokenError::Base64));
}

#[test]
fn rejects_standard_base64_alphabet() {
    let service = hs_service(SECRET);
    // Keep issuing until the signature has a '-' or '_' (each token's jti
    // changes it); rewrite it in the standard alphabet.
    for _ in 0..64 {
        let token = service.issue("alice", NOW, Map::new()).unwrap().token;
        if token.contains(['-', '_']) {
            let standard = token.replace('-', "+").replace('_', "/");
            assert_eq!(service.verify(&standard, NOW), Err(TokenError::Base64));
            return;
        }
    }
    panic!("no token with '-' or '_' in 64 tries");
}

#[test]
fn rejects_wrong_segment_count() {
    let service = hs_service(SECRET);
    let token = service.issue("alice", NOW, Map::new()).unwrap().token;
    let seg = segments(&token);
    for bad in [
        seg[0].clone(),
        format!("{}.{}", seg[0], seg[1]),
        format!("{token}.{}", seg[2]),
        format!("{token}."),
        format!(".{}.{}", seg[1], seg[2]),
        String::new(),
        "..".to_owned(),
    ] {
        assert_eq!(
            service.verify(&bad, NOW),
            Err(TokenError::Malformed),
            "{bad}"
        );
    }
    assert_eq!(service.verify("a b.c.d", NOW), Err(TokenError::Base64));
}

#[test]
fn leeway_is_honoured() {
    let key = SigningKey::hs256(SECRET).unwrap();
    let config = TokenConfig {
        leeway_seconds: 30,
        ..TokenConfig::default()
    };
    let service = TokenService::new(TokenKeys::single(key), config).unwrap();
    let claims = good_claims(); // exp = NOW + 900
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &claims);
    assert!(service.verify(&token, NOW + 929).is_ok());
    assert_eq!(service.verify(&token, NOW + 930), Err(TokenError::Expired));

    let future = with(
        with(good_claims(), "nbf", json!(NOW + 30)),
        "iat",
        json!(NOW + 30),
    );
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &future);
    assert!(service.verify(&token, NOW).is_ok());
    let nbf = with(good_claims(), "nbf", json!(NOW + 31));
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &nbf);
    assert_eq!(service.verify(&token, NOW), Err(TokenError::NotYetValid));
    let iat = with(good_claims(), "iat", json!(NOW + 31));
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &iat);
    assert_eq!(service.verify(&token, NOW), Err(TokenError::IssuedInFuture));

    // Without leeway the same tokens are refused.
    let strict = hs_service(SECRET);
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &future);
    assert_eq!(strict.verify(&token, NOW), Err(TokenError::NotYetValid));
}

#[test]
fn issuer_and_audience_are_checked_before_expiry() {
    let service = hs_service(SECRET);
    let claims = with(good_claims(), "aud", json!("other"));
    let token = sign_hs(SECRET.as_bytes(), &hs_header(), &claims);
    assert_eq!(
        service.verify(&token, NOW + 10_000),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn every_error_has_a_stable_reason() {
    let errors = [
        TokenError::TooLarge,
        TokenError::Malformed,
        TokenError::Base64,
        TokenError::MalformedHeader,
        TokenError::UnsupportedAlgorithm,
        TokenError::AlgorithmMismatch,
        TokenError::CriticalHeader,
        TokenError::UnsupportedType,
        TokenError::UnknownKid,
        TokenError::BadSignature,
        TokenError::MalformedClaims,
        TokenError::MissingClaim("exp"),
        TokenError::NotYetValid,
        TokenError::IssuedInFuture,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
    ];
    let mut checks = std::collections::HashSet::new();
    for e in errors {
        assert!(!e.is_expired());
        assert_eq!(e.reason(), "token_invalid");
        assert!(
            checks.insert(e.check()),
            "duplicate check name {}",
            e.check()
        );
    }
    assert_eq!(TokenError::Expired.reason(), "token_expired");
}

// ------------------------------------------------------ rotation and JWKS

#[test]
fn hs256_rotation_previous_secrets_verify_only() {
    let old = "old-secret-that-is-at-least-32-bytes-long";
    let old_service = hs_service(old);
    let old_token = old_service.issue("alice", NOW, Map::new()).unwrap().token;
    // Issued without rotation: no kid in the header.
    assert!(decode_json(&segments(&old_token)[0]).get("kid").is_none());

    let keys = TokenKeys::new(
        SigningKey::hs256(SECRET).unwrap(),
        vec![VerifyingKey::hs256(old).unwrap()],
    )
    .unwrap();
    let service = TokenService::new(keys, TokenConfig::default()).unwrap();
    assert!(service.verify(&old_token, NOW).is_ok());

    let new_token = service.issue("alice", NOW, Map::new()).unwrap().token;
    let header = decode_json(&segments(&new_token)[0]);
    assert_eq!(
        header["kid"].as_str(),
        Some(SigningKey::hs256(SECRET).unwrap().kid())
    );
    assert!(service.verify(&new_token, NOW).is_ok());
    // The old-only service never accepts the new key's tokens: it does not
    // know their kid, and without the kid the signature does not match.
    assert_eq!(
        old_service.verify(&new_token, NOW),
        Err(TokenError::UnknownKid)
    );
    let seg = segments(&new_token);
    let input = format!("{}.{}", b64(hs_header().to_string().as_bytes()), seg[1]);
    let no_kid = sign_hs_input(SECRET.as_bytes(), &input);
    assert!(service.verify(&no_kid, NOW).is_ok());
    assert_eq!(
        old_service.verify(&no_kid, NOW),
        Err(TokenError::BadSignature)
    );
    // HS256 secrets are never published.
    assert_eq!(
        serde_json::to_string(&service.jwks()).unwrap(),
        r#"{"keys":[]}"#
    );
}

#[test]
fn token_without_kid_verifies_against_current_and_previous_keys() {
    let old = "old-secret-that-is-at-least-32-bytes-long";
    let keys = TokenKeys::new(
        SigningKey::hs256(SECRET).unwrap(),
        vec![VerifyingKey::hs256(old).unwrap()],
    )
    .unwrap();
    let service = TokenService::new(keys, TokenConfig::default()).unwrap();
    for secret in [SECRET, old] {
        let token = sign_hs(secret.as_bytes(), &hs_header(), &good_claims());
        assert!(service.verify(&token, NOW).is_ok(), "{secret}");
    }
    let token = sign_hs(
        b"a-third-secret-nobody-configured!!!!",
        &hs_header(),
        &good_claims(),
    );
    assert_eq!(service.verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn mixing_algorithm_families_is_a_config_error() {
    let ed_public = ed_key().verifying_key();
    assert_eq!(
        TokenKeys::new(SigningKey::hs256(SECRET).unwrap(), vec![ed_public]).unwrap_err(),
        TokenKeyError::MixedAlgorithms
    );
    assert_eq!(
        TokenKeys::new(ed_key(), vec![VerifyingKey::hs256(SECRET).unwrap()]).unwrap_err(),
        TokenKeyError::MixedAlgorithms
    );
}

#[test]
fn eddsa_rotation_and_jwks() {
    let old_key = ed_key();
    let old_service =
        TokenService::new(TokenKeys::single(old_key.clone()), TokenConfig::default()).unwrap();
    let old_token = old_service.issue("alice", NOW, Map::new()).unwrap().token;

    let current = ed_key();
    let keys = TokenKeys::new(current.clone(), vec![old_key.verifying_key()]).unwrap();
    let service = TokenService::new(keys, TokenConfig::default()).unwrap();
    assert!(service.verify(&old_token, NOW).is_ok());

    let jwks = serde_json::to_value(service.jwks()).unwrap();
    let pub_x = |k: &SigningKey| k.verifying_key().to_jwk().unwrap().x.unwrap();
    assert_eq!(
        jwks,
        json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": pub_x(&current), "kid": current.kid(),
             "alg": "EdDSA", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": pub_x(&old_key), "kid": old_key.kid(),
             "alg": "EdDSA", "use": "sig"}
        ]})
    );
    // The JWKS alone verifies both generations of tokens.
    let parsed: Jwks = serde_json::from_value(jwks).unwrap();
    let verifier = JwksVerifier::new(&parsed, TokenConfig::default()).unwrap();
    let new_token = service.issue("bob", NOW, Map::new()).unwrap().token;
    assert_eq!(verifier.verify(&new_token, NOW).unwrap().sub, "bob");
    assert_eq!(verifier.verify(&old_token, NOW).unwrap().sub, "alice");
    assert!(verifier.has_kid(current.kid()));
}

#[test]
fn jwks_verifier_applies_the_same_rules() {
    let service = ed_service();
    let verifier = JwksVerifier::new(&service.jwks(), TokenConfig::default()).unwrap();
    let issued = service.issue("alice", NOW, Map::new()).unwrap();
    assert_eq!(verifier.verify(&issued.token, NOW).unwrap(), issued.claims);
    assert_eq!(
        verifier.verify(&issued.token, NOW + 900),
        Err(TokenError::Expired)
    );
    let other_aud = TokenConfig {
        audience: "billing".into(),
        ..TokenConfig::default()
    };
    let strict = JwksVerifier::new(&service.jwks(), other_aud).unwrap();
    assert_eq!(
        strict.verify(&issued.token, NOW),
        Err(TokenError::WrongAudience)
    );
    let hs = sign_hs(SECRET.as_bytes(), &hs_header(), &good_claims());
    assert_eq!(
        verifier.verify(&hs, NOW),
        Err(TokenError::AlgorithmMismatch)
    );
    let x = service.jwks().keys[0].x.clone().unwrap();
    let confusion = sign_hs(x.as_bytes(), &hs_header(), &good_claims());
    assert_eq!(
        verifier.verify(&confusion, NOW),
        Err(TokenError::AlgorithmMismatch)
    );
}

#[test]
fn jwks_verifier_skips_foreign_keys_and_refuses_empty_sets() {
    assert_eq!(
        JwksVerifier::new(&Jwks::default(), TokenConfig::default()).unwrap_err(),
        TokenKeyError::NoUsableKeys
    );
    let service = ed_service();
    let mut jwks: Jwks = serde_json::from_value(json!({"keys": [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
        {"kty": "OKP", "crv": "X25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "use": "enc"}
    ]}))
    .unwrap();
    assert_eq!(
        JwksVerifier::new(&jwks, TokenConfig::default()).unwrap_err(),
        TokenKeyError::NoUsableKeys
    );
    jwks.keys.extend(service.jwks().keys);
    let verifier = JwksVerifier::new(&jwks, TokenConfig::default()).unwrap();
    let token = service.issue("alice", NOW, Map::new()).unwrap().token;
    assert!(verifier.verify(&token, NOW).is_ok());

    let bad: Jwks = serde_json::from_value(json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR"}
    ]}))
    .unwrap();
    assert_eq!(
        JwksVerifier::new(&bad, TokenConfig::default()).unwrap_err(),
        TokenKeyError::InvalidPublicKey
    );
}

#[test]
fn dangerous_decoders_read_without_verifying() {
    let service = ed_service();
    let issued = service.issue("alice", NOW, Map::new()).unwrap();
    let header = dangerous::decode_header(&issued.token).unwrap();
    assert_eq!(header.alg, "EdDSA");
    assert_eq!(
        header.kid.as_deref(),
        Some(service.jwks().keys[0].kid.as_deref().unwrap())
    );
    // Another key's token still decodes: nothing was verified.
    let other = ed_service().issue("mallory", NOW, Map::new()).unwrap();
    assert_eq!(
        dangerous::decode_claims_unverified(&other.token)
            .unwrap()
            .sub,
        "mallory"
    );
    assert_eq!(
        service.verify(&other.token, NOW),
        Err(TokenError::UnknownKid)
    );
}

// --------------------------------------------------------------- properties

fn extra_claims() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    let value = leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::Array)
    });
    prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_:/.-]{0,15}", value, 0..6).prop_map(|m| {
        m.into_iter()
            .filter(|(k, _)| !REGISTERED_CLAIMS.contains(&k.as_str()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn issue_verify_round_trip(sub in any::<String>(), extra in extra_claims(), eddsa in any::<bool>()) {
        let service = if eddsa { ed_service() } else { hs_service(SECRET) };
        let issued = service.issue(&sub, NOW, extra.clone()).unwrap();
        let claims = service.verify(&issued.token, NOW).unwrap();
        prop_assert_eq!(&claims, &issued.claims);
        prop_assert_eq!(&claims.sub, &sub);
        prop_assert_eq!(&claims.extra, &extra);
    }

    #[test]
    fn any_single_changed_byte_fails(index in any::<prop::sample::Index>(),
                                     replacement in "[A-Za-z0-9_.=+/ -]",
                                     eddsa in any::<bool>()) {
        let service = if eddsa { ed_service() } else { hs_service(SECRET) };
        let token = service.issue("alice@example.com", NOW, Map::new()).unwrap().token;
        let mut bytes = token.clone().into_bytes();
        let i = index.index(bytes.len());
        let r = replacement.as_bytes()[0];
        prop_assume!(bytes[i] != r);
        bytes[i] = r;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(service.verify(&changed, NOW).is_err());
    }

    #[test]
    fn arbitrary_input_is_rejected_without_panic(input in ".{0,300}") {
        let service = hs_service(SECRET);
        prop_assert!(service.verify(&input, NOW).is_err());
    }

    #[test]
    fn arbitrary_three_segment_tokens_are_rejected(h in "[A-Za-z0-9_-]{0,60}",
                                                   p in "[A-Za-z0-9_-]{0,60}",
                                                   s in "[A-Za-z0-9_-]{0,90}") {
        let service = ed_service();
        let token = format!("{h}.{p}.{s}");
        prop_assert!(service.verify(&token, NOW).is_err());
    }
}

// ------------------------------------------------------------ PyJWT interop

/// Runs the PyJWT helper with one JSON request; `None` (after saying why)
/// when python3 with `jwt` and `cryptography` is missing, unless
/// `OTP_E2E_REQUIRE_ALL=1`, which turns the absence into a failure.
pub(crate) fn pyjwt(request: &Value) -> Option<Value> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let available = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !available {
        let why = "python3 with PyJWT and cryptography is not available";
        if std::env::var("OTP_E2E_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{why} (OTP_E2E_REQUIRE_ALL=1): pip install pyjwt cryptography");
        }
        eprintln!("skipping PyJWT interop: {why}");
        return None;
    }
    let script = format!(
        "{}/tests/interop/pyjwt_interop.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pyjwt helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("helper answers JSON"))
}

#[test]
fn pyjwt_verifies_our_hs256_tokens() {
    let service = hs_service(SECRET);
    let mut extra = Map::new();
    extra.insert("role".into(), json!("admin"));
    let issued = service.issue_now("alice@example.com", extra).unwrap();
    let Some(answer) = pyjwt(&json!({
        "op": "verify_hs256", "token": issued.token, "secret": SECRET,
        "issuer": "stateless-otp", "audience": "api"
    })) else {
        return;
    };
    assert_eq!(answer["ok"], json!(true), "{answer}");
    assert_eq!(
        answer["claims"],
        serde_json::to_value(&issued.claims).unwrap()
    );

    // The helper really checks: a wrong secret or audience fails there.
    let Some(answer) = pyjwt(&json!({
        "op": "verify_hs256", "token": issued.token, "secret": "another-secret-of-32-bytes-or-more",
        "issuer": "stateless-otp", "audience": "api"
    })) else {
        return;
    };
    assert_eq!(
        answer,
        json!({"ok": false, "error": "InvalidSignatureError"})
    );
    let Some(answer) = pyjwt(&json!({
        "op": "verify_hs256", "token": issued.token, "secret": SECRET,
        "issuer": "stateless-otp", "audience": "billing"
    })) else {
        return;
    };
    assert_eq!(
        answer,
        json!({"ok": false, "error": "InvalidAudienceError"})
    );
}

#[test]
fn pyjwt_verifies_our_eddsa_tokens_from_our_jwks() {
    let old = ed_key();
    let keys = TokenKeys::new(ed_key(), vec![old.verifying_key()]).unwrap();
    let service = TokenService::new(keys, TokenConfig::default()).unwrap();
    let old_service = TokenService::new(TokenKeys::single(old), TokenConfig::default()).unwrap();
    let jwks = serde_json::to_value(service.jwks()).unwrap();
    for issuer in [&service, &old_service] {
        let issued = issuer.issue_now("+15551234567", Map::new()).unwrap();
        let Some(answer) = pyjwt(&json!({
            "op": "verify_eddsa", "token": issued.token, "jwks": jwks,
            "issuer": "stateless-otp", "audience": "api"
        })) else {
            return;
        };
        assert_eq!(answer["ok"], json!(true), "{answer}");
        assert_eq!(
            answer["claims"],
            serde_json::to_value(&issued.claims).unwrap()
        );
    }
    // A tampered payload fails there too.
    let token = service.issue_now("alice", Map::new()).unwrap().token;
    let seg = segments(&token);
    let mut payload = decode_json(&seg[1]);
    payload["sub"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        seg[0],
        b64(payload.to_string().as_bytes()),
        seg[2]
    );
    let Some(answer) = pyjwt(&json!({
        "op": "verify_eddsa", "token": tampered, "jwks": jwks,
        "issuer": "stateless-otp", "audience": "api"
    })) else {
        return;
    };
    assert_eq!(
        answer,
        json!({"ok": false, "error": "InvalidSignatureError"})
    );
}

#[test]
fn python_service_tokens_verify_here() {
    // The Python service: jwt.encode({sub, iat, exp, iss, aud}, JWT_SECRET,
    // algorithm="HS256"), TOKEN_ISSUER / TOKEN_AUDIENCE as configured here.
    let Some(answer) = pyjwt(&json!({
        "op": "issue_legacy", "secret": SECRET, "sub": "alice@example.com",
        "issuer": "stateless-otp", "audience": "api", "ttl": 900
    })) else {
        return;
    };
    let token = answer["token"].as_str().unwrap();
    let header = decode_json(&segments(token)[0]);
    assert!(header.get("kid").is_none());

    let service = hs_service(SECRET);
    let claims = service.verify_now(token).unwrap();
    assert_eq!(claims.sub, "alice@example.com");
    assert_eq!(claims.iss, "stateless-otp");
    assert_eq!(claims.exp - claims.iat.unwrap(), 900);
    assert_eq!(claims.nbf, None);
    assert!(claims.amr.is_empty());

    // No kid: it also verifies when its secret is now a previous one.
    let keys = TokenKeys::new(
        SigningKey::hs256("the-rotated-in-secret-of-32-bytes-plus").unwrap(),
        vec![VerifyingKey::hs256(SECRET).unwrap()],
    )
    .unwrap();
    let rotated = TokenService::new(keys, TokenConfig::default()).unwrap();
    assert_eq!(rotated.verify_now(token).unwrap(), claims);
    // And another secret refuses it.
    assert_eq!(
        hs_service("some-other-secret-of-at-least-32-bytes").verify_now(token),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn services_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<TokenService>();
    assert_send_sync::<JwksVerifier>();
    assert_send_sync::<SigningKey>();
    assert_send_sync::<VerifyingKey>();

    let service = std::sync::Arc::new(ed_service());
    let token = service.issue("alice", NOW, Map::new()).unwrap().token;
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (service, token) = (service.clone(), token.clone());
            std::thread::spawn(move || service.verify(&token, NOW).unwrap().sub)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "alice");
    }
}

#[test]
fn debug_output_never_shows_key_material() {
    let key = SigningKey::hs256(SECRET).unwrap();
    let service =
        TokenService::new(TokenKeys::single(key.clone()), TokenConfig::default()).unwrap();
    for text in [
        format!("{key:?}"),
        format!("{service:?}"),
        format!("{:?}", key.verifying_key()),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains(key.kid()), "{text}");
    }
}

// See: issue 13 item 9.
#[test]
fn issued_token_debug_prints_no_token() {
    let service = TokenService::new(
        TokenKeys::single(SigningKey::hs256("a JWT_SECRET of at least 32 bytes!!").unwrap()),
        TokenConfig::default(),
    )
    .unwrap();
    let issued = service
        .issue("alice@example.com", 1_800_000_000, Default::default())
        .unwrap();
    let printed = format!("{issued:?}");
    assert!(!printed.contains(&issued.token), "{printed}");
    for segment in issued.token.split('.') {
        assert!(!printed.contains(segment), "{printed}");
    }
    assert!(printed.contains("[REDACTED]") && printed.contains("alice@example.com"));
}
