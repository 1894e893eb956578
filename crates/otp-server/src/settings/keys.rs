//! The OTP keys concern: `OTP_SECRET_KEY` and the previous keys of a
//! rotation. Each variable is checked on its own so the error names the one
//! at fault, and never echoes a key.

use otp_core::{generate_key, parse_otp_key, OtpKeyRing, GENERATED_KEY_BYTES};

use super::{err, missing_secrets, Notes, RawSettings, SettingError};

/// Reads the OTP keys; `--dev` generates a missing current key.
pub fn build(raw: &RawSettings, dev: bool, notes: &mut Notes) -> Result<OtpKeyRing, SettingError> {
    let Some(k) = raw.get("OTP_SECRET_KEY") else {
        if !dev {
            return Err(missing_secrets(raw));
        }
        notes.dev.push(
            "OTP_SECRET_KEY generated for this process only: what it signs dies with the process"
                .into(),
        );
        let key =
            generate_key(GENERATED_KEY_BYTES).map_err(|e| err("OTP_SECRET_KEY", e.to_string()))?;
        return OtpKeyRing::new(key, vec![]).map_err(|e| err("OTP_SECRET_KEY", e.to_string()));
    };
    let current = parse_otp_key(k).map_err(|e| {
        err(
            "OTP_SECRET_KEY",
            format!("{e} (expected base64 of at least 16 random bytes; create one with `otp-server keygen otp`)"),
        )
    })?;
    let previous = raw
        .list("OTP_PREVIOUS_SECRET_KEYS")
        .iter()
        .enumerate()
        .map(|(i, p)| {
            parse_otp_key(p).map_err(|e| {
                err(
                    "OTP_PREVIOUS_SECRET_KEYS",
                    format!(
                        "entry {}: {e} (expected comma-separated base64 keys of at least 16 bytes)",
                        i + 1
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    OtpKeyRing::new(current, previous).map_err(|e| err("OTP_PREVIOUS_SECRET_KEYS", e.to_string()))
}
