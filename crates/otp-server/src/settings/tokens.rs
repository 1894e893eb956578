//! The tokens concern: the claims configuration (`TOKEN_*`,
//! `ACCESS_TOKEN_TTL`) and the signing keys of the chosen algorithm.

use base64::Engine as _;
use otp_core::decode_base64_key;
use otp_core::{
    generate_ed25519_pkcs8, generate_hs256_secret, SigningKey, TokenConfig, TokenKeys, VerifyingKey,
};

use super::{err, missing_secrets, Notes, RawSettings, SettingError};

/// Token claims configuration and keys.
pub struct TokenSettings {
    /// Issuer, audience, lifetime, leeway.
    pub config: TokenConfig,
    /// Current and previous keys.
    pub keys: TokenKeys,
}

/// Reads the tokens concern.
pub fn build(
    raw: &RawSettings,
    dev: bool,
    notes: &mut Notes,
) -> Result<TokenSettings, SettingError> {
    let d = TokenConfig::default();
    let config = TokenConfig {
        issuer: raw.string("TOKEN_ISSUER").unwrap_or(d.issuer),
        audience: raw.string("TOKEN_AUDIENCE").unwrap_or(d.audience),
        ttl_seconds: raw.num("ACCESS_TOKEN_TTL")?,
        leeway_seconds: raw.num("TOKEN_LEEWAY_SECONDS")?,
    };
    let keys = match raw
        .get("JWT_ALGORITHM")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("hs256") => hs256(raw, dev, notes)?,
        Some("eddsa" | "ed25519") => eddsa(raw, dev, notes)?,
        Some(o) => {
            return Err(err(
                "JWT_ALGORITHM",
                format!("expected HS256 or EdDSA, got '{o}'"),
            ))
        }
    };
    Ok(TokenSettings { config, keys })
}

fn hs256(raw: &RawSettings, dev: bool, notes: &mut Notes) -> Result<TokenKeys, SettingError> {
    let current = match raw.get("JWT_SECRET") {
        // --dev relaxes the minimum length.
        Some(s) if dev => SigningKey::hs256_insecure(s),
        Some(s) => SigningKey::hs256(s),
        None if dev => {
            notes.dev.push(
                "JWT_SECRET generated for this process only: what it signs dies with the process"
                    .into(),
            );
            let s = generate_hs256_secret().map_err(|e| err("JWT_SECRET", e.to_string()))?;
            SigningKey::hs256(s.as_bytes())
        }
        None => return Err(missing_secrets(raw)),
    }
    .map_err(|e| err("JWT_SECRET", e.to_string()))?;
    let previous = raw
        .list("JWT_PREVIOUS_SECRETS")
        .iter()
        .map(|s| {
            if dev {
                VerifyingKey::hs256_insecure(s)
            } else {
                VerifyingKey::hs256(s)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("JWT_PREVIOUS_SECRETS", e.to_string()))?;
    TokenKeys::new(current, previous).map_err(|e| err("JWT_PREVIOUS_SECRETS", e.to_string()))
}

fn eddsa(raw: &RawSettings, dev: bool, notes: &mut Notes) -> Result<TokenKeys, SettingError> {
    const KEY: &str = "JWT_ED25519_PRIVATE_KEY";
    let current = match raw.get(KEY) {
        Some(k) => SigningKey::ed25519_from_pkcs8(ed25519_der(KEY, k)?),
        None if dev => {
            notes.dev.push(format!(
                "{KEY} generated for this process only: what it signs dies with the process"
            ));
            let der = generate_ed25519_pkcs8().map_err(|e| err(KEY, e.to_string()))?;
            SigningKey::ed25519_from_pkcs8(der.expose())
        }
        None => return Err(err(
            KEY,
            "must be set with JWT_ALGORITHM=EdDSA (create one with `otp-server keygen ed25519`)",
        )),
    }
    .map_err(|e| err(KEY, e.to_string()))?;
    const PREVIOUS: &str = "JWT_ED25519_PREVIOUS_KEYS";
    let previous = raw
        .list(PREVIOUS)
        .iter()
        .map(|k| {
            let bytes = ed25519_der(PREVIOUS, k)?;
            if bytes.len() == 32 {
                VerifyingKey::ed25519_from_public(&bytes)
            } else {
                VerifyingKey::ed25519_from_pkcs8(&bytes)
            }
            .map_err(|e| err(PREVIOUS, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    TokenKeys::new(current, previous).map_err(|e| err(PREVIOUS, e.to_string()))
}

/// Parses an Ed25519 PKCS#8 key given as PEM or base64 DER.
fn ed25519_der(name: &str, value: &str) -> Result<Vec<u8>, SettingError> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") {
        let body: String = value
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        return base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| err(name, format!("PEM body is not base64: {e}")));
    }
    decode_base64_key(value)
        .ok()
        .map(|s| s.expose().to_vec())
        .ok_or_else(|| err(name, "expected PKCS#8 as PEM or base64 DER"))
}
