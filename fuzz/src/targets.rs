//! The fuzz target bodies. Each takes arbitrary bytes, must never panic, and
//! asserts the invariants that make a "no panic" run meaningful (a parse that
//! succeeds gives a value that satisfies the documented rules).
//!
//! `crates/otp-server/tests/server/fuzz_corpus.rs` calls the same functions on the
//! committed corpora.

use otp_core::wire::{IntrospectRequest, OtpRequest, OtpVerifyRequest};
use otp_core::{
    dangerous, Audience, SigningKey, TokenConfig, TokenKeys, TokenService, VerifyingKey,
    MAX_TOKEN_BYTES,
};
use otp_core::{decode_base64_key, parse_otp_key, OtpKeyRing};
use otp_core::{Digits, Identity, OtpCode, SecretBytes};
use otp_core::{HashAlgorithm, OtpEngine, OtpPolicy};
use std::sync::OnceLock;

/// A fixed "now" for token checks: 2023-11-14T22:13:20Z.
pub const NOW: u64 = 1_700_000_000;

/// A fixed Ed25519 PKCS#8 v1 key (RFC 8410 §10.3 example private key).
const ED25519_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
-----END PRIVATE KEY-----\n";

const HS256_SECRET: &[u8] = b"fuzz-jwt-secret-fuzz-jwt-secret-fuzz-jwt";
const HS256_PREVIOUS: &[u8] = b"fuzz-previous-secret-fuzz-previous-secret";

struct TokenFixtures {
    hs: TokenService,
    hs_key: SigningKey,
    ed: TokenService,
    ed_key: SigningKey,
}

fn fixtures() -> &'static TokenFixtures {
    static F: OnceLock<TokenFixtures> = OnceLock::new();
    F.get_or_init(|| {
        let config = TokenConfig::default();
        let hs_key = SigningKey::hs256(HS256_SECRET).expect("hs256 key");
        let previous = VerifyingKey::hs256(HS256_PREVIOUS).expect("previous hs256 key");
        let hs = TokenService::new(
            TokenKeys::new(hs_key.clone(), vec![previous]).expect("hs256 key set"),
            config.clone(),
        )
        .expect("hs256 service");
        let ed_key = SigningKey::ed25519_from_pkcs8(ED25519_PKCS8_PEM).expect("ed25519 key");
        let ed = TokenService::new(TokenKeys::single(ed_key.clone()), config).expect("ed service");
        TokenFixtures {
            hs,
            hs_key,
            ed,
            ed_key,
        }
    })
}

/// Splits `data` at the first `0xff` byte (or returns all of it and nothing).
fn split_ff(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// `TokenService::verify` (HS256 with a previous key, and EdDSA).
///
/// First byte selects the mode:
/// - `0`/`1`: the rest is a compact token given to the HS256 / EdDSA service;
/// - `2`/`3`: the rest is `header_json 0xff payload_json`, signed with the
///   service's own key (so the fuzzer reaches the header and claim checks
///   behind the signature), then verified by HS256 / EdDSA;
/// - `4`: the HS256-signed token is given to the EdDSA service and the EdDSA
///   one to the HS256 service (algorithm confusion: must always fail).
///
/// The time is `NOW` or, when the input has 8 more bytes after the mode byte
/// for modes 2..=4, taken from the start of the payload's length-prefixed
/// trailer; any success must satisfy iss/aud/exp/nbf/iat at that time.
pub fn token_verify(data: &[u8]) {
    let f = fixtures();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 | 1 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            let svc = if mode % 5 == 0 { &f.hs } else { &f.ed };
            let result = svc.verify(token, NOW);
            if let Ok(claims) = result {
                check_claims(&claims, NOW, svc.config());
                assert!(token.len() <= MAX_TOKEN_BYTES, "oversized token accepted");
            }
            // Never panics on decode-only helpers either.
            let _ = dangerous::decode_header(token);
            let _ = dangerous::decode_claims_unverified(token);
        }
        2 | 3 => {
            let (header, payload) = split_ff(rest);
            let (svc, key) = if mode % 5 == 2 {
                (&f.hs, &f.hs_key)
            } else {
                (&f.ed, &f.ed_key)
            };
            let token = dangerous::encode_raw(key, header, payload);
            if let Ok(claims) = svc.verify(&token, NOW) {
                check_claims(&claims, NOW, svc.config());
                // The header must name the service's algorithm.
                let h = dangerous::decode_header(&token).expect("accepted token has a header");
                assert_eq!(h.alg, svc.algorithm().as_str(), "alg not from the key");
            }
        }
        _ => {
            let (header, payload) = split_ff(rest);
            let hs_token = dangerous::encode_raw(&f.hs_key, header, payload);
            let ed_token = dangerous::encode_raw(&f.ed_key, header, payload);
            assert!(
                f.ed.verify(&hs_token, NOW).is_err(),
                "EdDSA service accepted an HS256-signed token"
            );
            assert!(
                f.hs.verify(&ed_token, NOW).is_err(),
                "HS256 service accepted an EdDSA-signed token"
            );
        }
    }
}

fn check_claims(c: &otp_core::Claims, now: u64, config: &TokenConfig) {
    assert_eq!(c.iss, config.issuer, "wrong iss accepted");
    assert!(c.aud.contains(&config.audience), "wrong aud accepted");
    let leeway = config.leeway_seconds;
    assert!(c.exp.saturating_add(leeway) > now, "expired token accepted");
    if let Some(nbf) = c.nbf {
        assert!(nbf <= now.saturating_add(leeway), "future nbf accepted");
    }
    if let Some(iat) = c.iat {
        assert!(iat <= now.saturating_add(leeway), "future iat accepted");
    }
    let _ = matches!(c.aud, Audience::One(_) | Audience::Many(_));
}

/// `Identity::parse`: a success is trimmed, ≤ 320 characters, free of
/// control characters, and a fixed point (parsing the normalized form gives
/// it back, so variants cannot buy extra rate-limit keys).
pub fn identity_parse(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(id) = Identity::parse(raw) else {
        return;
    };
    let s = id.as_str();
    assert!(!s.is_empty());
    assert!(s.chars().count() <= 320, "identity longer than 320 chars");
    assert!(!s.chars().any(char::is_control), "control char kept");
    assert_eq!(s, s.trim(), "white space kept");
    let again = Identity::parse(s).expect("a normalized identity parses again");
    assert_eq!(again.as_str(), s, "normalization is not idempotent");
    assert_eq!(again.kind(), id.kind());
}

/// OTP keys (`parse_otp_key`, `decode_base64_key`, `OtpKeyRing::from_base64`)
/// and Ed25519 PKCS#8 keys (PEM, base64 DER or raw DER) for signing and for
/// verification.
pub fn key_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(k) = decode_base64_key(text) {
            // Round trip through the canonical encoding.
            let enc = otp_core::encode_key(&k);
            let back = decode_base64_key(&enc).expect("encoded key decodes");
            assert_eq!(back.expose(), k.expose());
        }
        if let Ok(k) = parse_otp_key(text) {
            assert!(k.expose().len() >= 16, "short OTP key accepted");
        }
        let (current, previous) = text.split_once('\n').unwrap_or((text, ""));
        if let Ok(ring) = OtpKeyRing::from_base64(current, previous) {
            assert!(!ring.is_empty());
        }
    }
    if let Ok(key) = SigningKey::ed25519_from_pkcs8(data) {
        assert_eq!(key.kid().len(), 43, "RFC 7638 thumbprint is 43 chars");
        let v = key.verifying_key();
        let _ = v.to_jwk();
    }
    let _ = VerifyingKey::ed25519_from_public(data);
    let _ = SecretBytes::from(data.to_vec());
}

/// `OtpEngine::verify` with a policy, identity, code string, time and
/// counters taken from the input. A code generated for the same identity,
/// time and counter must verify.
pub fn otp_verify(data: &[u8]) {
    if data.len() < 12 {
        return;
    }
    let digits = 4 + data[0] % 7; // 4..=10
    let window = match data[1] {
        // Huge windows (a library caller may pass any u64 >= 30).
        250..=255 => u64::MAX >> (data[1] - 250),
        x => 30 + u64::from(x) * 7,
    };
    let drift = u32::from(data[2] % 11);
    let alg = match data[3] % 3 {
        0 => HashAlgorithm::Sha1,
        1 => HashAlgorithm::Sha256,
        _ => HashAlgorithm::Sha512,
    };
    let skew = u64::from(data[4]) % window;
    let Ok(digits_count) = Digits::try_from(digits) else {
        return;
    };
    let Ok(policy) = OtpPolicy::builder()
        .digits(digits_count)
        .window_seconds(window)
        .algorithm(alg)
        .drift_tolerance(drift)
        .clock_skew_seconds(skew)
        .build()
    else {
        return;
    };
    let now = match data[5] % 4 {
        0 => u64_at(data, 6) % (1 << 40),
        1 => u64::MAX - u64_at(data, 6) % 1024,
        2 => u64_at(data, 6) % 1024,
        _ => u64_at(data, 6),
    };
    let rest = &data[12.min(data.len())..];
    let (id_bytes, code_bytes) = split_ff(rest);
    let Ok(id_text) = std::str::from_utf8(id_bytes) else {
        return;
    };
    let Ok(identity) = Identity::parse(id_text) else {
        return;
    };
    let keys = OtpKeyRing::single_unchecked(SecretBytes::from(b"fuzz-otp-key-0123456789".to_vec()));
    let engine = OtpEngine::new(policy, keys);
    let windows = engine.candidate_windows(now);
    assert!(!windows.is_empty() && windows.len() <= drift as usize + 2);
    let counter = u32::from(data[11] % 3);
    let counters = vec![counter; windows.len()];
    if let Some(code) = std::str::from_utf8(code_bytes)
        .ok()
        .and_then(|c| OtpCode::parse(c).ok())
    {
        let _ = engine.verify(&identity, &code, now, &counters);
        // A wrong number of counters is an error, not a panic.
        let _ = engine.verify(&identity, &code, now, &counters[1..]);
    }
    let code = engine.generate(&identity, now, counter);
    assert_eq!(code.as_str().len(), usize::from(digits));
    let m = engine
        .verify(&identity, &code, now, &counters)
        .expect("a fresh code verifies");
    assert_eq!(m.counter, counter);
    let ttl = engine.ttl_seconds(now);
    assert!(ttl >= 1);
    assert!(engine.expires_at(now) >= now);
    let _ = engine.counter_ttl_seconds();
}

/// otp-server's configuration: `toml 0x00 env` where env is `KEY=VALUE`
/// lines; the TOML goes through the `config` crate from a file, the env
/// layer on top, then `Settings::from_raw` (the validation `serve` runs).
/// Must answer with a value or one `SettingError`, never panic.
pub fn config_parse(data: &[u8]) {
    use otp_server::settings::{RawSettings, Settings};
    let (toml, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let dev = data.first().is_some_and(|b| b & 1 == 1);
    let env_text = String::from_utf8_lossy(env);
    let env_vars: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        // `<SECRET>_FILE` would read files of the fuzzing machine: the
        // target stays hermetic (settings::raw's tests cover those).
        .filter(|(k, _)| !k.to_ascii_uppercase().ends_with("_FILE"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let path = if toml.is_empty() {
        None
    } else {
        let p = std::env::temp_dir().join(format!("otp-fuzz-config-{}.toml", std::process::id()));
        if std::fs::write(&p, toml).is_err() {
            return;
        }
        Some(p)
    };
    let raw = RawSettings::load(path.as_deref(), env_vars.into_iter());
    if let Ok(raw) = raw {
        if let Err(e) = Settings::from_raw(&raw, dev) {
            // One line naming the variable.
            let line = e.to_string();
            assert!(!line.is_empty());
        }
        let _ = raw.redacted();
    }
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

/// The JSON bodies of the REST API: `serde_json` into the `otp_core::wire`
/// request types, then the identity and code checks the service applies.
pub fn wire_json(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<OtpRequest>(data) {
        let _ = Identity::parse(&r.identity);
    }
    if let Ok(r) = serde_json::from_slice::<OtpVerifyRequest>(data) {
        if let Ok(id) = Identity::parse(&r.identity) {
            if let Ok(code) = OtpCode::parse(&r.otp) {
                let keys = OtpKeyRing::single_unchecked(SecretBytes::from(
                    b"fuzz-otp-key-0123456789".to_vec(),
                ));
                let engine = OtpEngine::new(OtpPolicy::default(), keys);
                let n = engine.candidate_windows(NOW).len();
                let _ = engine.verify(&id, &code, NOW, &vec![0; n]);
            }
        }
    }
    if let Ok(r) = serde_json::from_slice::<IntrospectRequest>(data) {
        let _ = fixtures().hs.verify(&r.token, NOW);
        let _ = fixtures().ed.verify(&r.token, NOW);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        // The 422 details path the HTTP layer builds from serde errors.
        let _ = serde_json::from_value::<OtpVerifyRequest>(v).map_err(|e| e.to_string());
    }
}
