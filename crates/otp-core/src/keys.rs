//! OTP secret keys (SPEC §3.5): base64 parsing, generation and the key ring.
//!
//! `OTP_SECRET_KEY` is base64 — URL-safe or standard alphabet, padding
//! optional — of at least [`MIN_OTP_KEY_BYTES`] random bytes. Keys named in
//! `OTP_PREVIOUS_SECRET_KEYS` verify codes but never sign new ones, so a key
//! rotation does not break codes already sent.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

use crate::SecretBytes;

/// Shortest OTP secret accepted, in bytes (SPEC §3.1).
pub const MIN_OTP_KEY_BYTES: usize = 16;

/// Length of keys made by [`generate_key`] for `otp-server keygen`.
pub const GENERATED_KEY_BYTES: usize = 32;

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpKeyError {
    /// The value is empty (after trimming white space).
    #[error("key is empty")]
    Empty,
    /// The value is not base64 in either alphabet.
    #[error("key is not valid base64 (standard or URL-safe, padding optional): {0}")]
    InvalidBase64(String),
    /// The decoded key is shorter than the minimum.
    #[error("key is too short: {actual} bytes, at least {min} required")]
    TooShort {
        /// Decoded length.
        actual: usize,
        /// Minimum length.
        min: usize,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes a base64 key in either alphabet, with or without padding.
///
/// Does not check the length; see [`parse_otp_key`] for that.
///
/// ```
/// use otp_core::decode_base64_key;
/// assert_eq!(decode_base64_key("-_8").unwrap().expose(), &[0xfb, 0xff]);
/// assert_eq!(decode_base64_key("+/8=").unwrap().expose(), &[0xfb, 0xff]);
/// ```
pub fn decode_base64_key(value: &str) -> Result<SecretBytes, OtpKeyError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(OtpKeyError::Empty);
    }
    let has_url = value.contains(['-', '_']);
    let has_std = value.contains(['+', '/']);
    if has_url && has_std {
        return Err(OtpKeyError::InvalidBase64(
            "mixes the standard ('+', '/') and URL-safe ('-', '_') alphabets".into(),
        ));
    }
    let engine = if has_std {
        &STANDARD_LENIENT
    } else {
        &URL_SAFE_LENIENT
    };
    engine
        .decode(value)
        .map(SecretBytes::new)
        .map_err(|e| OtpKeyError::InvalidBase64(e.to_string()))
}

/// Parses an OTP secret key: base64 of at least [`MIN_OTP_KEY_BYTES`] bytes.
///
/// ```
/// use otp_core::{parse_otp_key, OtpKeyError};
/// let key = parse_otp_key("c3RhdGVsZXNzLW90cCB0ZXN0IGtleSEh").unwrap();
/// assert_eq!(key.len(), 24);
/// assert!(matches!(parse_otp_key("c2hvcnQ"), Err(OtpKeyError::TooShort { actual: 5, min: 16 })));
/// ```
pub fn parse_otp_key(value: &str) -> Result<SecretBytes, OtpKeyError> {
    let key = decode_base64_key(value)?;
    check_len(&key)?;
    Ok(key)
}

fn check_len(key: &SecretBytes) -> Result<(), OtpKeyError> {
    if key.len() < MIN_OTP_KEY_BYTES {
        return Err(OtpKeyError::TooShort {
            actual: key.len(),
            min: MIN_OTP_KEY_BYTES,
        });
    }
    Ok(())
}

/// Fills `len` bytes from the operating system's secure random generator.
///
/// ```
/// let a = otp_core::generate_key(32).unwrap();
/// let b = otp_core::generate_key(32).unwrap();
/// assert_eq!(a.len(), 32);
/// assert_ne!(a, b);
/// ```
pub fn generate_key(len: usize) -> Result<SecretBytes, OtpKeyError> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| OtpKeyError::Random)?;
    Ok(SecretBytes::new(bytes))
}

/// Encodes key bytes as URL-safe base64 without padding (the form `keygen` prints).
pub fn encode_key(key: &SecretBytes) -> String {
    URL_SAFE_NO_PAD.encode(key.expose())
}

/// The OTP keys in force: one current key (derives and verifies) and any
/// number of previous keys (verify only).
///
/// ```
/// use otp_core::{generate_key, OtpKeyRing};
/// let ring = OtpKeyRing::new(generate_key(32).unwrap(), vec![generate_key(16).unwrap()]).unwrap();
/// assert_eq!(ring.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct OtpKeyRing {
    current: SecretBytes,
    previous: Vec<SecretBytes>,
}

impl OtpKeyRing {
    /// Builds a ring; every key must be at least [`MIN_OTP_KEY_BYTES`] long.
    pub fn new(current: SecretBytes, previous: Vec<SecretBytes>) -> Result<Self, OtpKeyError> {
        check_len(&current)?;
        for key in &previous {
            check_len(key)?;
        }
        Ok(OtpKeyRing { current, previous })
    }

    /// A ring of one key, with no length check. For development and tests
    /// only: production configuration must go through [`OtpKeyRing::new`].
    pub fn single_unchecked(current: SecretBytes) -> Self {
        OtpKeyRing {
            current,
            previous: Vec::new(),
        }
    }

    /// Parses `OTP_SECRET_KEY` and the comma-separated `OTP_PREVIOUS_SECRET_KEYS`.
    ///
    /// Empty entries in the previous list are ignored.
    pub fn from_base64(current: &str, previous: &str) -> Result<Self, OtpKeyError> {
        let current = parse_otp_key(current)?;
        let previous = previous
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_otp_key)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OtpKeyRing { current, previous })
    }

    /// A 32-byte key for another purpose, derived from the current key as
    /// HMAC-SHA256(current, `label`). Replicas sharing `OTP_SECRET_KEY` derive
    /// the same subkey (e.g. for hashing identities in store keys).
    ///
    /// ```
    /// use otp_core::OtpKeyRing;
    /// use otp_core::SecretBytes;
    /// let ring = OtpKeyRing::new(SecretBytes::new(vec![1; 32]), vec![]).unwrap();
    /// assert_eq!(ring.derive_subkey("a"), ring.derive_subkey("a"));
    /// assert_ne!(ring.derive_subkey("a"), ring.derive_subkey("b"));
    /// ```
    pub fn derive_subkey(&self, label: &str) -> SecretBytes {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.current.expose())
            .unwrap_or_else(|_| {
                <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new(&Default::default())
            });
        mac.update(label.as_bytes());
        SecretBytes::new(mac.finalize().into_bytes().to_vec())
    }

    /// The key that derives new codes.
    pub fn current(&self) -> &SecretBytes {
        &self.current
    }

    /// Keys accepted for verification only, newest first.
    pub fn previous(&self) -> &[SecretBytes] {
        &self.previous
    }

    /// All keys, current first.
    pub fn iter(&self) -> impl Iterator<Item = &SecretBytes> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }

    /// Number of keys (current + previous).
    pub fn len(&self) -> usize {
        1 + self.previous.len()
    }

    /// Always false: a ring has a current key.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_alphabets_with_and_without_padding_decode_alike() {
        let bytes: Vec<u8> = (0u8..=40).map(|b| b.wrapping_mul(37)).collect();
        let std_pad = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url_nopad = URL_SAFE_NO_PAD.encode(&bytes);
        let url_pad = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
        let std_nopad = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        for s in [std_pad, url_nopad, url_pad, std_nopad] {
            assert_eq!(decode_base64_key(&s).unwrap().expose(), &bytes[..], "{s}");
        }
    }

    #[test]
    fn bad_base64_says_what_is_wrong() {
        assert_eq!(decode_base64_key("  "), Err(OtpKeyError::Empty));
        assert!(matches!(
            decode_base64_key("abc$def"),
            Err(OtpKeyError::InvalidBase64(_))
        ));
        assert!(
            matches!(decode_base64_key("ab+c-d"), Err(OtpKeyError::InvalidBase64(m)) if m.contains("mixes"))
        );
    }

    #[test]
    fn short_keys_are_refused_everywhere() {
        let short = URL_SAFE_NO_PAD.encode([7u8; 15]);
        let ok = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert!(matches!(
            parse_otp_key(&short),
            Err(OtpKeyError::TooShort { actual: 15, .. })
        ));
        assert!(parse_otp_key(&ok).is_ok());
        assert!(OtpKeyRing::from_base64(&ok, &format!("{ok}, {short}")).is_err());
        let ring = OtpKeyRing::from_base64(&ok, &format!(" {ok} ,,")).unwrap();
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let ring = OtpKeyRing::new(SecretBytes::new(vec![0x41; 16]), vec![]).unwrap();
        let dbg = format!("{ring:?}");
        assert!(!dbg.contains("65") && !dbg.contains("AAAA"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn generated_key_round_trips_through_encoding() {
        let k = generate_key(GENERATED_KEY_BYTES).unwrap();
        assert_eq!(parse_otp_key(&encode_key(&k)).unwrap(), k);
    }
}
