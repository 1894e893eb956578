//! The limits concern: the six limits of SPEC §6 and the fail mode. Each
//! limit's name comes from `Limits::default()`, its defaults from the table.

use otp_ratelimit::LimitPolicy;
use otp_service::FailMode;
use otp_service::Limits;

use super::{RawSettings, SettingError};

/// `(max variable, window variable)` of one limit; the daily limit's window
/// is fixed.
fn limit(
    raw: &RawSettings,
    default: LimitPolicy,
    max_var: &str,
    window_var: Option<&str>,
) -> Result<LimitPolicy, SettingError> {
    let max = raw.num(max_var)?;
    let window = match window_var {
        Some(w) => raw.num(w)?,
        None => default.window.as_secs(),
    };
    Ok(LimitPolicy::per_secs(default.name, max, window))
}

/// The per-identity daily verify ceiling (`RATE_VERIFY_OTP_DAILY_IDENTITY_MAX`)
/// and the IPv6 prefix of a client network (`RATE_IPV6_PREFIX`).
pub fn network(raw: &RawSettings) -> Result<(LimitPolicy, u8), SettingError> {
    let d = otp_service::default_verify_daily_ceiling();
    let ceiling = limit(raw, d, "RATE_VERIFY_OTP_DAILY_IDENTITY_MAX", None)?;
    Ok((ceiling, raw.num("RATE_IPV6_PREFIX")?))
}

/// Reads the limits concern.
pub fn build(raw: &RawSettings) -> Result<(Limits, FailMode), SettingError> {
    let d = Limits::default();
    let limits = Limits {
        request_per_identity: limit(
            raw,
            d.request_per_identity,
            "RATE_REQUEST_OTP_MAX",
            Some("RATE_REQUEST_OTP_WINDOW"),
        )?,
        verify_per_identity: limit(
            raw,
            d.verify_per_identity,
            "RATE_VERIFY_OTP_MAX",
            Some("RATE_VERIFY_OTP_WINDOW"),
        )?,
        verify_daily: limit(raw, d.verify_daily, "RATE_VERIFY_OTP_DAILY_MAX", None)?,
        request_per_ip: limit(
            raw,
            d.request_per_ip,
            "RATE_REQUEST_OTP_PER_IP_MAX",
            Some("RATE_REQUEST_OTP_PER_IP_WINDOW"),
        )?,
        verify_per_ip: limit(
            raw,
            d.verify_per_ip,
            "RATE_VERIFY_OTP_PER_IP_MAX",
            Some("RATE_VERIFY_OTP_PER_IP_WINDOW"),
        )?,
        global_send: limit(
            raw,
            d.global_send,
            "RATE_GLOBAL_SEND_MAX",
            Some("RATE_GLOBAL_SEND_WINDOW"),
        )?,
    };
    let fail_mode = raw
        .choice(
            "RATE_LIMIT_FAIL_MODE",
            &[("closed", FailMode::Closed), ("open", FailMode::Open)],
            "closed or open",
        )?
        .unwrap_or(FailMode::Closed);
    Ok((limits, fail_mode))
}
