//! Refresh tokens (SPEC §10): round trip and determinism, every byte
//! tampered, wrong and previous keys, strict parsing, expired vs invalid,
//! the HKDF derivation recomputed independently, access tokens with `sid`
//! and `auth_time`, and no JWT verifier (ours, PyJWT with the secret or the
//! JWKS) accepting a refresh token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use otp_core::{
    is_refresh_token, RefreshClaims, RefreshTokenError, SessionId, SigningKey, TokenConfig,
    TokenKeys, TokenService, VerifyingKey, MAX_REFRESH_TOKEN_BYTES, REFRESH_TOKEN_PREFIX,
};
use serde_json::{json, Map};
use sha2::Sha256;

use super::tokens::{ed_key, hs_service, pyjwt, NOW, SECRET};

fn claims() -> RefreshClaims {
    RefreshClaims {
        sub: "alice@example.com".into(),
        sid: SessionId::from_bytes([7; 16]),
        generation: 3,
        iat: NOW,
        exp: NOW + 604_800,
        auth_time: NOW - 100,
    }
}

fn body(token: &str) -> Vec<u8> {
    let encoded = token.strip_prefix(REFRESH_TOKEN_PREFIX).unwrap();
    URL_SAFE_NO_PAD.decode(encoded).unwrap()
}

fn token_of(body: &[u8]) -> String {
    format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(body))
}

#[test]
fn refresh_token_round_trips_and_is_deterministic() {
    for service in [
        hs_service(SECRET),
        TokenService::new(TokenKeys::single(ed_key()), TokenConfig::default()).unwrap(),
    ] {
        let token = service.issue_refresh(&claims()).unwrap();
        assert!(is_refresh_token(&token));
        assert_eq!(service.verify_refresh(&token, NOW).unwrap(), claims());
        assert_eq!(service.issue_refresh(&claims()).unwrap(), token);
        let mut next = claims();
        next.generation += 1;
        assert_ne!(service.issue_refresh(&next).unwrap(), token);
    }
}

#[test]
fn refresh_token_is_not_jws_shaped() {
    let service = hs_service(SECRET);
    let token = service.issue_refresh(&claims()).unwrap();
    assert!(token.starts_with("ort1_"), "{token}");
    assert!(!token.contains('.'), "{token}");
    let err = service.verify(&token, NOW).unwrap_err();
    assert!(!err.is_expired(), "{err:?}");
    assert_eq!(err.reason(), "token_invalid");
}

#[test]
fn tampering_any_byte_of_a_refresh_token_is_refused() {
    let service = hs_service(SECRET);
    let token = service.issue_refresh(&claims()).unwrap();
    let original = body(&token);
    for i in 0..original.len() {
        for bit in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[i] ^= bit;
            let err = service.verify_refresh(&token_of(&bytes), NOW).unwrap_err();
            let expected = if i == 0 {
                RefreshTokenError::UnsupportedVersion
            } else {
                RefreshTokenError::BadMac
            };
            assert_eq!(err, expected, "byte {i} bit {bit:#x}");
        }
    }
    // Every character of the text, replaced by another base64url one.
    for i in 0..token.len() {
        let mut chars: Vec<char> = token.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let changed: String = chars.into_iter().collect();
        assert!(service.verify_refresh(&changed, NOW).is_err(), "char {i}");
    }
    // Truncated or extended bodies.
    assert!(service
        .verify_refresh(&token_of(&original[..original.len() - 1]), NOW)
        .is_err());
    let mut longer = original.clone();
    longer.push(0);
    assert_eq!(
        service.verify_refresh(&token_of(&longer), NOW).unwrap_err(),
        RefreshTokenError::BadMac
    );
}

#[test]
fn refresh_token_parsing_is_strict() {
    let service = hs_service(SECRET);
    let token = service.issue_refresh(&claims()).unwrap();
    let encoded = token.strip_prefix(REFRESH_TOKEN_PREFIX).unwrap();
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode(body(&token));
    for bad in [
        format!("{token}="),
        format!("ort2_{encoded}"),
        format!("ORT1_{encoded}"),
        encoded.to_owned(),
        format!("ort1_{standard}"),
        format!("ort1_ {encoded}"),
        format!("{token}\n"),
        "ort1_".to_owned(),
        "ort1_AAAA".to_owned(),
        String::new(),
    ] {
        if bad == format!("ort1_{standard}") && standard == encoded {
            continue; // no '+' or '/' in this body
        }
        assert_eq!(
            service.verify_refresh(&bad, NOW).unwrap_err(),
            RefreshTokenError::Malformed,
            "{bad:?}"
        );
    }
    let huge = format!("ort1_{}", "A".repeat(MAX_REFRESH_TOKEN_BYTES));
    assert_eq!(
        service.verify_refresh(&huge, NOW).unwrap_err(),
        RefreshTokenError::TooLarge
    );
    let mut other = body(&token);
    other[0] = 2;
    assert_eq!(
        service.verify_refresh(&token_of(&other), NOW).unwrap_err(),
        RefreshTokenError::UnsupportedVersion
    );
}

#[test]
fn refresh_token_expiry_is_token_expired_and_future_iat_is_invalid() {
    let service = hs_service(SECRET);
    let c = claims();
    let token = service.issue_refresh(&c).unwrap();
    assert!(service.verify_refresh(&token, c.exp - 1).is_ok());
    let err = service.verify_refresh(&token, c.exp).unwrap_err();
    assert_eq!(err, RefreshTokenError::Expired);
    assert_eq!(err.reason(), "token_expired");
    // A genuine expired token still opens for logout.
    assert_eq!(
        service.verify_refresh_allow_expired(&token).unwrap(),
        claims()
    );
    assert_eq!(
        service.verify_refresh(&token, c.iat - 1).unwrap_err(),
        RefreshTokenError::IssuedInFuture
    );
    // Leeway applies to both ends.
    let lenient = TokenService::new(
        TokenKeys::single(SigningKey::hs256(SECRET).unwrap()),
        TokenConfig {
            leeway_seconds: 5,
            ..TokenConfig::default()
        },
    )
    .unwrap();
    assert!(lenient.verify_refresh(&token, c.exp + 4).is_ok());
    assert!(lenient.verify_refresh(&token, c.iat - 5).is_ok());
    assert!(lenient.verify_refresh(&token, c.exp + 5).is_err());
}

#[test]
fn refresh_tokens_of_another_key_are_refused() {
    let ours = hs_service(SECRET);
    let theirs = hs_service("another-secret-that-is-at-least-32-bytes");
    let token = theirs.issue_refresh(&claims()).unwrap();
    assert_eq!(
        ours.verify_refresh(&token, NOW).unwrap_err(),
        RefreshTokenError::BadMac
    );
    let ed = TokenService::new(TokenKeys::single(ed_key()), TokenConfig::default()).unwrap();
    let token = ed.issue_refresh(&claims()).unwrap();
    let other_ed = TokenService::new(TokenKeys::single(ed_key()), TokenConfig::default()).unwrap();
    assert_eq!(
        other_ed.verify_refresh(&token, NOW).unwrap_err(),
        RefreshTokenError::BadMac
    );
}

#[test]
fn previous_keys_verify_refresh_tokens_and_the_current_key_issues() {
    const OLD: &str = "the-old-secret-that-is-at-least-32-bytes";
    let old = hs_service(OLD);
    let rotated = TokenService::new(
        TokenKeys::new(
            SigningKey::hs256(SECRET).unwrap(),
            vec![VerifyingKey::hs256(OLD).unwrap()],
        )
        .unwrap(),
        TokenConfig::default(),
    )
    .unwrap();
    let before = old.issue_refresh(&claims()).unwrap();
    assert_eq!(rotated.verify_refresh(&before, NOW).unwrap(), claims());
    let after = rotated.issue_refresh(&claims()).unwrap();
    assert_ne!(after, before);
    assert!(old.verify_refresh(&after, NOW).is_err());
    assert!(hs_service(SECRET).verify_refresh(&after, NOW).is_ok());

    // EdDSA: a previous private key verifies; a bare public key (what a
    // JWKS carries) cannot, since nothing secret is derived from it.
    let old_key = ed_key();
    let old_ed =
        TokenService::new(TokenKeys::single(old_key.clone()), TokenConfig::default()).unwrap();
    let before = old_ed.issue_refresh(&claims()).unwrap();
    let with_private = TokenService::new(
        TokenKeys::new(ed_key(), vec![old_key.verifying_key()]).unwrap(),
        TokenConfig::default(),
    )
    .unwrap();
    assert!(with_private.verify_refresh(&before, NOW).is_ok());
    let public = old_ed.jwks().keys[0].x.clone().unwrap();
    let public =
        VerifyingKey::ed25519_from_public(&URL_SAFE_NO_PAD.decode(public).unwrap()).unwrap();
    let with_public = TokenService::new(
        TokenKeys::new(ed_key(), vec![public]).unwrap(),
        TokenConfig::default(),
    )
    .unwrap();
    assert_eq!(
        with_public.verify_refresh(&before, NOW).unwrap_err(),
        RefreshTokenError::BadMac
    );
}

/// The derivation, recomputed with `hmac` and `ring::hkdf` directly: the
/// wire format other replicas (and future versions) must keep reading.
#[test]
fn refresh_mac_key_is_hkdf_sha256_of_the_token_key() {
    let service = hs_service(SECRET);
    let token = service.issue_refresh(&claims()).unwrap();
    let bytes = body(&token);
    let (signed, tag) = bytes.split_at(bytes.len() - 32);

    let mut ikm = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    ikm.update(b"stateless-otp/refresh-token-ikm/v1");
    let ikm = ikm.finalize().into_bytes();
    let mut okm = [0u8; 32];
    ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"stateless-otp/refresh-token/v1")
        .extract(&ikm)
        .expand(&[b"refresh-token mac key"], ring::hkdf::HKDF_SHA256)
        .unwrap()
        .fill(&mut okm)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&okm).unwrap();
    mac.update(b"ort1_");
    mac.update(signed);
    assert_eq!(&mac.finalize().into_bytes()[..], tag);

    // The layout: version, sid, generation, iat, exp, auth_time, sub.
    assert_eq!(signed[0], 1);
    assert_eq!(&signed[1..17], &[7u8; 16]);
    assert_eq!(&signed[17..25], &3u64.to_be_bytes());
    assert_eq!(&signed[25..33], &NOW.to_be_bytes());
    assert_eq!(&signed[49..], b"alice@example.com");
    // The MAC key is not the JWT key: an HMAC under JWT_SECRET differs.
    let mut jwt_mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    jwt_mac.update(b"ort1_");
    jwt_mac.update(signed);
    assert_ne!(&jwt_mac.finalize().into_bytes()[..], tag);
}

#[test]
fn refresh_subject_must_be_present_and_bounded() {
    let service = hs_service(SECRET);
    for sub in [String::new(), "a".repeat(1281)] {
        let c = RefreshClaims { sub, ..claims() };
        assert_eq!(
            service.issue_refresh(&c).unwrap_err(),
            RefreshTokenError::InvalidSubject
        );
    }
    let c = RefreshClaims {
        sub: "a".repeat(1280),
        ..claims()
    };
    let token = service.issue_refresh(&c).unwrap();
    assert!(token.len() <= MAX_REFRESH_TOKEN_BYTES);
    assert_eq!(service.verify_refresh(&token, NOW).unwrap(), c);
}

#[test]
fn access_tokens_for_a_session_carry_sid_and_auth_time() {
    let service = hs_service(SECRET);
    let sid = SessionId::from_bytes([9; 16]);
    let issued = service
        .issue_for_session("alice", NOW, &sid, NOW - 60, Map::new())
        .unwrap();
    let claims = service.verify(&issued.token, NOW).unwrap();
    assert_eq!(claims.sid.as_deref(), Some(sid.to_string().as_str()));
    assert_eq!(claims.auth_time, Some(NOW - 60));
    assert_eq!(claims, issued.claims);
    // Without a session, neither claim appears.
    let plain = service.issue("alice", NOW, Map::new()).unwrap();
    let json = serde_json::to_value(&plain.claims).unwrap();
    assert!(json.get("sid").is_none() && json.get("auth_time").is_none());
    // Extra claims may not pose as them (nor as the generation).
    for name in ["sid", "auth_time", "gen"] {
        let mut extra = Map::new();
        extra.insert(name.into(), json!("x"));
        assert!(service
            .issue_for_session("alice", NOW, &sid, NOW, extra)
            .is_err());
    }
}

#[test]
fn pyjwt_refuses_refresh_tokens_with_the_secret_and_the_jwks() {
    let service = hs_service(SECRET);
    let token = service.issue_refresh(&claims()).unwrap();
    let Some(answer) = pyjwt(&json!({
        "op": "verify_hs256", "token": token, "secret": SECRET,
        "issuer": "stateless-otp", "audience": "api"
    })) else {
        return;
    };
    assert_eq!(answer, json!({"ok": false, "error": "DecodeError"}));

    let ed = TokenService::new(TokenKeys::single(ed_key()), TokenConfig::default()).unwrap();
    let token = ed.issue_refresh(&claims()).unwrap();
    let jwks = serde_json::to_value(ed.jwks()).unwrap();
    let Some(answer) = pyjwt(&json!({
        "op": "verify_eddsa", "token": token, "jwks": jwks,
        "issuer": "stateless-otp", "audience": "api"
    })) else {
        return;
    };
    assert_eq!(answer, json!({"ok": false, "error": "DecodeError"}));
    // The helper does accept the same service's access token.
    let access = ed.issue_now("alice", Map::new()).unwrap().token;
    let Some(answer) = pyjwt(&json!({
        "op": "verify_eddsa", "token": access, "jwks": jwks,
        "issuer": "stateless-otp", "audience": "api"
    })) else {
        return;
    };
    assert_eq!(answer["ok"], json!(true), "{answer}");
}
