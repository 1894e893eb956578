//! Standard one-time passwords: RFC 4226 HOTP, RFC 6238 TOTP and
//! `otpauth://` provisioning URIs, so `otp-core` is useful alone as an OTP
//! library for authenticator apps.
//!
//! ```
//! use otp_core::{Digits, HashAlgorithm, OtpCode, SecretBytes, Totp, TotpConfig};
//!
//! // RFC 6238 Appendix B, SHA-1, T = 59 s
//! let totp = Totp::new(SecretBytes::new(b"12345678901234567890".to_vec()),
//!     TotpConfig { digits: Digits::Eight, period: 30, algorithm: HashAlgorithm::Sha1 }).unwrap();
//! assert_eq!(totp.generate(59).as_str(), "94287082");
//! // what a user types is parsed by the one code parser
//! let typed = OtpCode::parse("94287082").unwrap();
//! assert!(totp.verify(&typed, 59 + 30, 1));
//!
//! let uri = totp.otpauth_uri("Example Co", "alice@example.com");
//! assert!(uri.starts_with("otpauth://totp/Example%20Co:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
//! ```

use subtle::ConstantTimeEq;

use crate::code::{Digits, OtpCode};
use crate::engine::hmac_truncate;
use crate::policy::HashAlgorithm;
use crate::SecretBytes;

/// Why a HOTP/TOTP configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StandardOtpError {
    /// Fewer than 6 digits (RFC 4226 requires at least 6).
    #[error("digits must be between 6 and 10, got {0}")]
    Digits(Digits),
    /// Period of zero seconds.
    #[error("period must be at least 1 second")]
    Period,
}

fn check_digits(digits: Digits) -> Result<(), StandardOtpError> {
    if digits >= Digits::Six {
        Ok(())
    } else {
        Err(StandardOtpError::Digits(digits))
    }
}

/// RFC 4226 HOTP value of `counter`, zero-padded to `digits` digits (6..=10).
///
/// ```
/// use otp_core::{hotp, Digits, HashAlgorithm};
/// // RFC 4226 Appendix D, count 0
/// let code = hotp(b"12345678901234567890", 0, Digits::Six, HashAlgorithm::Sha1).unwrap();
/// assert_eq!(code.as_str(), "755224");
/// assert!(hotp(b"12345678901234567890", 0, Digits::Four, HashAlgorithm::Sha1).is_err());
/// ```
pub fn hotp(
    secret: &[u8],
    counter: u64,
    digits: Digits,
    algorithm: HashAlgorithm,
) -> Result<OtpCode, StandardOtpError> {
    check_digits(digits)?;
    let key = SecretBytes::from(secret);
    let value = hmac_truncate(algorithm, &key, &[&counter.to_be_bytes()]);
    Ok(OtpCode::from_value(value, digits))
}

/// TOTP parameters. `Default` is the authenticator-app convention: 6 digits,
/// 30 s, SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpConfig {
    /// Code length, 6..=10. Defaults to 6.
    pub digits: Digits,
    /// Time step in seconds. Defaults to 30.
    pub period: u64,
    /// HMAC hash. Defaults to SHA-1 (what most authenticator apps assume).
    pub algorithm: HashAlgorithm,
}

impl Default for TotpConfig {
    fn default() -> Self {
        TotpConfig {
            digits: Digits::Six,
            period: 30,
            algorithm: HashAlgorithm::Sha1,
        }
    }
}

/// An RFC 6238 TOTP generator/verifier for one shared secret.
#[derive(Debug, Clone)]
pub struct Totp {
    secret: SecretBytes,
    config: TotpConfig,
}

impl Totp {
    /// Validates the configuration (digits 6..=10, period ≥ 1).
    pub fn new(secret: SecretBytes, config: TotpConfig) -> Result<Self, StandardOtpError> {
        check_digits(config.digits)?;
        if config.period == 0 {
            return Err(StandardOtpError::Period);
        }
        Ok(Totp { secret, config })
    }

    /// The configuration.
    pub fn config(&self) -> &TotpConfig {
        &self.config
    }

    /// The time step counter of `unix_seconds` (T0 = 0).
    pub fn step(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.config.period
    }

    /// The code for the step containing `unix_seconds`.
    pub fn generate(&self, unix_seconds: u64) -> OtpCode {
        self.generate_step(self.step(unix_seconds))
    }

    /// The code for step `step`.
    pub fn generate_step(&self, step: u64) -> OtpCode {
        let value = hmac_truncate(self.config.algorithm, &self.secret, &[&step.to_be_bytes()]);
        OtpCode::from_value(value, self.config.digits)
    }

    /// True if and only if `code` is the code of a step within `skew_steps`
    /// of the step containing `unix_seconds` (each side). A code of another
    /// length never verifies. All candidates are computed and compared in
    /// constant time.
    pub fn verify(&self, code: &OtpCode, unix_seconds: u64, skew_steps: u64) -> bool {
        if code.digits() != self.config.digits {
            return false;
        }
        let step = self.step(unix_seconds);
        let mut ok = subtle::Choice::from(0);
        for s in step.saturating_sub(skew_steps)..=step.saturating_add(skew_steps) {
            ok |= self.generate_step(s).ct_eq(code);
        }
        bool::from(ok)
    }

    /// An `otpauth://totp/…` provisioning URI (the Key Uri Format read by
    /// authenticator apps), with the secret in unpadded base32.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let alg = match self.config.algorithm {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha512 => "SHA512",
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            percent_encode(issuer),
            percent_encode(account),
            base32_encode(self.secret.expose()),
            percent_encode(issuer),
            alg,
            self.config.digits,
            self.config.period
        )
    }
}

/// RFC 4648 base32 (upper case, no padding), as authenticator apps expect.
///
/// ```
/// assert_eq!(otp_core::base32_encode(b"foobar"), "MZXW6YTBOI");
/// ```
pub fn base32_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(input.as_bytes()), expected);
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let s = SecretBytes::new(vec![1; 20]);
        assert_eq!(
            Totp::new(
                s.clone(),
                TotpConfig {
                    digits: Digits::Five,
                    ..Default::default()
                }
            )
            .err(),
            Some(StandardOtpError::Digits(Digits::Five))
        );
        assert_eq!(
            Totp::new(
                s,
                TotpConfig {
                    period: 0,
                    ..Default::default()
                }
            )
            .err(),
            Some(StandardOtpError::Period)
        );
        assert!(hotp(b"k", 0, Digits::Four, HashAlgorithm::Sha1).is_err());
    }

    #[test]
    fn verify_rejects_outside_skew_and_other_lengths() {
        let t = Totp::new(
            SecretBytes::new(b"12345678901234567890".to_vec()),
            TotpConfig::default(),
        )
        .unwrap();
        let code = t.generate(1_000_000);
        assert!(t.verify(&code, 1_000_000, 0));
        assert!(t.verify(&code, 1_000_000 + 30, 1));
        assert!(!t.verify(&code, 1_000_000 + 60, 1));
        let seven = OtpCode::parse(&format!("{}0", code.as_str())).unwrap();
        assert!(!t.verify(&seven, 1_000_000, 1));
        assert!(!t.verify(&OtpCode::parse("12345").unwrap(), 1_000_000, 1));
    }

    #[test]
    fn uri_escapes_label_and_names_parameters() {
        let t = Totp::new(
            SecretBytes::new(b"12345678901234567890".to_vec()),
            TotpConfig {
                digits: Digits::Eight,
                period: 60,
                algorithm: HashAlgorithm::Sha256,
            },
        )
        .unwrap();
        let uri = t.otpauth_uri("ACME & Co", "bob+1@x.io");
        assert_eq!(uri, "otpauth://totp/ACME%20%26%20Co:bob%2B1%40x.io?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20%26%20Co&algorithm=SHA256&digits=8&period=60");
    }
}
