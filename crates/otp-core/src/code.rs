//! The one code concept of the workspace: how many digits a code has
//! ([`Digits`]) and the code itself ([`OtpCode`]).
//!
//! Every rule about the shape of a code lives here, once:
//! - [`Digits`] is the digit count, 4..=10 (SPEC §3.1). Its value is the
//!   modulus `10^digits` (kanidm's `TotpDigits`), so a bad digit count cannot
//!   be represented and the derivation needs no run-time check.
//! - [`OtpCode::parse`] is the parser for submitted input: 4 to 10 ASCII
//!   digits ([`CODE_RULE`]), nothing else — no white space, no Unicode digits.
//!   The engine, HOTP/TOTP, the service's 422 check, the HTTP error text and
//!   the OpenAPI pattern ([`CODE_PATTERN`]) all use it or its constants.
//! - [`OtpCode`] holds at most 10 digits inline (no allocation), is wiped on
//!   drop, compares in constant time, is redacted in `Debug` and has no
//!   `Display`. Delivery backends receive the same type.
//!
//! ```
//! use otp_core::{Digits, OtpCode};
//!
//! let code = OtpCode::parse("012345").unwrap();
//! assert_eq!(code.digits(), Digits::Six);
//! assert_eq!(code.as_str(), "012345");
//! assert_eq!(format!("{code:?}"), "OtpCode([REDACTED; 6 digits])");
//!
//! for bad in ["123", "12345678901", "12 345", "１２３４５６", "-1234", ""] {
//!     assert!(OtpCode::parse(bad).is_err(), "{bad:?}");
//! }
//! assert_eq!(Digits::Eight.modulus(), 100_000_000);
//! assert_eq!(Digits::try_from(11u8).ok(), None);
//! ```

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

/// Fewest digits a code may have.
pub const MIN_DIGITS: u8 = 4;
/// Most digits a code may have.
pub const MAX_DIGITS: u8 = 10;

/// The rule [`OtpCode::parse`] applies, as the API words it in a 422
/// (`"otp: must be 4 to 10 ASCII digits"`).
pub const CODE_RULE: &str = "must be 4 to 10 ASCII digits";

/// The OpenAPI / JSON Schema `pattern` of a submitted code: the same rule as
/// [`OtpCode::parse`].
pub const CODE_PATTERN: &str = "^[0-9]{4,10}$";

/// How many digits a code has, 4..=10. The discriminant is the modulus
/// `10^digits`, so `Digits::Six as u64 == 1_000_000`.
///
/// Build one from a number with [`Digits::new`] or `TryFrom<u8>`; values
/// outside 4..=10 are refused there and cannot exist afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u64)]
pub enum Digits {
    /// 4 digits.
    Four = 10_000,
    /// 5 digits.
    Five = 100_000,
    /// 6 digits. The default.
    #[default]
    Six = 1_000_000,
    /// 7 digits.
    Seven = 10_000_000,
    /// 8 digits.
    Eight = 100_000_000,
    /// 9 digits.
    Nine = 1_000_000_000,
    /// 10 digits.
    Ten = 10_000_000_000,
}

impl Digits {
    /// Every digit count, shortest first.
    pub const ALL: [Digits; 7] = [
        Digits::Four,
        Digits::Five,
        Digits::Six,
        Digits::Seven,
        Digits::Eight,
        Digits::Nine,
        Digits::Ten,
    ];

    /// The digit count `count`, or `None` outside 4..=10.
    ///
    /// ```
    /// use otp_core::Digits;
    /// assert_eq!(Digits::new(6), Some(Digits::Six));
    /// assert_eq!(Digits::new(3), None);
    /// ```
    pub const fn new(count: u8) -> Option<Digits> {
        Some(match count {
            4 => Digits::Four,
            5 => Digits::Five,
            6 => Digits::Six,
            7 => Digits::Seven,
            8 => Digits::Eight,
            9 => Digits::Nine,
            10 => Digits::Ten,
            _ => return None,
        })
    }

    /// The number of digits, 4..=10.
    pub const fn count(self) -> u8 {
        match self {
            Digits::Four => 4,
            Digits::Five => 5,
            Digits::Six => 6,
            Digits::Seven => 7,
            Digits::Eight => 8,
            Digits::Nine => 9,
            Digits::Ten => 10,
        }
    }

    /// `10^digits`: a derived value is reduced modulo this.
    pub const fn modulus(self) -> u64 {
        self as u64
    }
}

impl TryFrom<u8> for Digits {
    type Error = crate::PolicyError;

    /// Refuses counts outside 4..=10 with [`PolicyError::Digits`](crate::PolicyError::Digits).
    fn try_from(count: u8) -> Result<Self, Self::Error> {
        Digits::new(count).ok_or(crate::PolicyError::Digits(count))
    }
}

impl From<Digits> for u8 {
    fn from(d: Digits) -> u8 {
        d.count()
    }
}

impl fmt::Display for Digits {
    /// The count, e.g. `6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.count())
    }
}

/// A submitted value that is not a code: not 4 to 10 ASCII digits.
/// Its message is [`CODE_RULE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", CODE_RULE)]
pub struct CodeError;

/// A one-time code: 4 to 10 ASCII digits, held inline (no allocation), wiped
/// on drop, compared in constant time, redacted in `Debug`, without
/// `Display`. Never log [`OtpCode::as_str`].
#[derive(Clone)]
pub struct OtpCode {
    buf: [u8; MAX_DIGITS as usize],
    digits: Digits,
}

impl OtpCode {
    /// Parses submitted input: exactly 4 to 10 ASCII digits (`0`–`9`), no
    /// white space, signs or non-ASCII digits. The one parser for codes in
    /// the workspace.
    pub fn parse(input: &str) -> Result<OtpCode, CodeError> {
        let bytes = input.as_bytes();
        let digits = u8::try_from(bytes.len())
            .ok()
            .and_then(Digits::new)
            .ok_or(CodeError)?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(CodeError);
        }
        let mut buf = [b'0'; MAX_DIGITS as usize];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(OtpCode { buf, digits })
    }

    /// The code of a derived `value`: `value mod 10^digits`, left-padded with
    /// zeros.
    pub(crate) fn from_value(value: u32, digits: Digits) -> Self {
        let mut buf = [b'0'; MAX_DIGITS as usize];
        let mut v = u64::from(value) % digits.modulus();
        for slot in buf[..usize::from(digits.count())].iter_mut().rev() {
            // `v % 10` is < 10, so the cast cannot truncate.
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        OtpCode { buf, digits }
    }

    /// How many digits the code has.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// The code as text. Keep the borrow short and never log it.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written into `buf`.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The code's ASCII digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.digits.count())]
    }
}

impl FromStr for OtpCode {
    type Err = CodeError;

    /// Same as [`OtpCode::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OtpCode::parse(s)
    }
}

impl ConstantTimeEq for OtpCode {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Lengths are not secret (the policy fixes them); the digits are.
        self.as_bytes().ct_eq(other.as_bytes())
    }
}

impl PartialEq for OtpCode {
    /// Constant-time in the digits.
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.ct_eq(other))
    }
}

impl Eq for OtpCode {}

impl Drop for OtpCode {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OtpCode([REDACTED; {} digits])", self.digits.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exactly_four_to_ten_ascii_digits() {
        for n in 0..=12usize {
            let input = "7".repeat(n);
            assert_eq!(
                OtpCode::parse(&input).is_ok(),
                (4..=10).contains(&n),
                "{n} digits"
            );
        }
        assert_eq!(OtpCode::parse("0000").unwrap().as_str(), "0000");
    }

    #[test]
    fn parse_refuses_everything_but_ascii_digits() {
        for bad in [
            "12a456",
            "12345 ",
            " 123456",
            "+123456",
            "-12345",
            "١٢٣٤٥٦",
            "１２３４５６",
            "12\u{200b}3456",
            "123.45",
            "",
        ] {
            assert_eq!(OtpCode::parse(bad), Err(CodeError), "{bad:?}");
        }
    }

    #[test]
    fn digits_value_is_the_modulus_and_counts_round_trip() {
        for d in Digits::ALL {
            assert_eq!(d.modulus(), 10u64.pow(u32::from(d.count())));
            assert_eq!(Digits::new(d.count()), Some(d));
            assert_eq!(Digits::try_from(d.count()), Ok(d));
        }
        for bad in [0u8, 3, 11, 255] {
            assert_eq!(Digits::try_from(bad), Err(crate::PolicyError::Digits(bad)));
        }
        assert_eq!(Digits::default(), Digits::Six);
    }

    #[test]
    fn derived_codes_are_zero_padded_and_redacted() {
        assert_eq!(OtpCode::from_value(42, Digits::Six).as_str(), "000042");
        assert_eq!(
            OtpCode::from_value(2_147_483_647, Digits::Ten).as_str(),
            "2147483647"
        );
        assert_eq!(
            format!("{:?}", OtpCode::from_value(42, Digits::Six)),
            "OtpCode([REDACTED; 6 digits])"
        );
    }

    #[test]
    fn pattern_and_rule_name_the_parsers_bounds() {
        assert_eq!(
            CODE_PATTERN,
            format!("^[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}$")
        );
        assert!(CODE_RULE.contains(&format!("{MIN_DIGITS} to {MAX_DIGITS}")));
        assert_eq!(Digits::ALL.first().map(|d| d.count()), Some(MIN_DIGITS));
        assert_eq!(Digits::ALL.last().map(|d| d.count()), Some(MAX_DIGITS));
    }

    #[test]
    fn equal_codes_compare_equal_and_different_lengths_do_not() {
        let a = OtpCode::parse("123456").unwrap();
        assert_eq!(a, OtpCode::parse("123456").unwrap());
        assert_ne!(a, OtpCode::parse("123457").unwrap());
        assert_ne!(a, OtpCode::parse("1234560").unwrap());
    }
}
