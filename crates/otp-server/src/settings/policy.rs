//! The OTP policy concern: code length, window, hash, drift, clock skew,
//! single use and the attempt budget. Defaults and ranges are the table's
//! (`OtpPolicy::default()`, `MIN_DIGITS`…); this builder only reads them.

use otp_core::{Digits, HashAlgorithm, OtpPolicy};

use super::{err, RawSettings, SettingError};

/// The warning of every start with `OTP_SINGLE_USE=false`.
pub const SINGLE_USE_OFF_WARNING: &str = "OTP_SINGLE_USE=false: a code verifies any number of \
times within its window, and the attempt budget (OTP_MAX_ATTEMPTS) is off too, since it works \
by using codes up: wrong guesses are bounded only by the RATE_VERIFY_* limits";

/// The policy part of the service configuration.
#[derive(Debug, Clone, Copy)]
pub struct PolicySettings {
    /// Digits, window, hash, drift, skew.
    pub policy: OtpPolicy,
    /// `OTP_SINGLE_USE`.
    pub single_use: bool,
    /// `OTP_MAX_ATTEMPTS`.
    pub max_attempts: u32,
}

/// Reads the OTP policy concern.
pub fn build(raw: &RawSettings) -> Result<PolicySettings, SettingError> {
    let algorithm = match raw.get("OTP_ALGORITHM") {
        None => HashAlgorithm::default(),
        Some(s) => HashAlgorithm::parse(s).ok_or_else(|| {
            err(
                "OTP_ALGORITHM",
                format!("expected sha1, sha256 or sha512, got '{s}'"),
            )
        })?,
    };
    let digits: u8 = raw.num("OTP_DIGITS")?;
    let digits = Digits::try_from(digits).map_err(|e| err("OTP_DIGITS", e.to_string()))?;
    let window: u64 = raw.num("OTP_WINDOW_SECONDS")?;
    let drift = raw.num("OTP_DRIFT_TOLERANCE")?;
    // The skew's range depends on the window: below it.
    let default_skew = OtpPolicy::default().clock_skew_seconds().min(window - 1);
    let skew = raw
        .num_in("OTP_CLOCK_SKEW_SECONDS", 0, window - 1)?
        .unwrap_or(default_skew);
    let policy = OtpPolicy::builder()
        .digits(digits)
        .window_seconds(window)
        .algorithm(algorithm)
        .drift_tolerance(drift)
        .clock_skew_seconds(skew)
        .build()
        .map_err(|e| err("OTP_WINDOW_SECONDS", e.to_string()))?;
    Ok(PolicySettings {
        policy,
        single_use: raw.flag("OTP_SINGLE_USE")?,
        max_attempts: raw.num("OTP_MAX_ATTEMPTS")?,
    })
}
