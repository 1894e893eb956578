//! The one strict base64url engine used for every JWS segment (RFC 7515 §2:
//! unpadded base64url), plus a lenient decoder for configured key text.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// Unpadded base64url that refuses padding, the standard alphabet and
/// non-zero trailing bits, so each byte string has exactly one accepted
/// encoding (a flipped character can never decode to the same bytes).
pub(crate) const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Returns true if and only if every byte of `token` may appear in a JWS
/// compact token (the base64url alphabet or the `.` separator).
///
/// Branch-free per byte and without early exit, so the compiler vectorizes
/// it: this runs over the whole token on every verification.
#[inline]
pub(crate) fn all_token_bytes(token: &[u8]) -> bool {
    token.iter().fold(true, |ok, &b| {
        let upper = b.wrapping_sub(b'A') < 26;
        let lower = b.wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        ok & (upper | lower | digit | (b == b'-') | (b == b'_') | (b == b'.'))
    })
}

/// Decodes operator-supplied key text: standard or URL-safe alphabet,
/// padding optional, ASCII white space ignored. Not for token segments.
pub(crate) fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let alphabet = if compact.contains(['-', '_']) {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    let engine = GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(compact.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_rejects_padding_trailing_bits_and_standard_alphabet() {
        assert_eq!(STRICT.decode("YQ").unwrap(), b"a");
        assert!(STRICT.decode("YQ==").is_err());
        assert!(STRICT.decode("YR").is_err(), "trailing bits must be zero");
        assert!(STRICT.decode("-_8").is_ok());
        assert!(STRICT.decode("+/8").is_err());
    }

    #[test]
    fn token_alphabet_is_base64url_and_dot() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-_.".contains(&b);
            assert_eq!(all_token_bytes(&[b'a', b, b'.']), expected, "{b}");
        }
        assert!(all_token_bytes(b""));
    }

    #[test]
    fn lenient_accepts_both_alphabets_and_optional_padding() {
        assert_eq!(decode_lenient("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_lenient("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_lenient(" YW Jj\n").unwrap(), b"abc");
        assert!(decode_lenient("!!").is_none());
    }
}
