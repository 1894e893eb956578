//! Identities (SPEC §3.4): parsing and normalization of the name a user gives.
//!
//! The normalized form is what everything downstream uses: derivation, rate
//! limit keys, the token `sub` and delivery. Case or formatting variants of one
//! email or phone number normalize to the same string, so they cannot buy
//! extra attempts.
//!
//! # Look-alikes and deliverability (SPEC §3.4, amended)
//! Unicode format characters (category Cf: zero-width spaces and joiners,
//! the soft hyphen, bidi controls, the BOM, tag characters) are refused in
//! every kind of identity: they are invisible, so `bob\u{200b}@example.com`
//! would otherwise be a second budget for the mailbox of `bob@example.com`.
//!
//! An email is refused unless the SMTP backend can deliver it as written:
//! - the local part is an RFC 5322 dot-atom of ASCII characters (letters,
//!   digits and ``!#$%&'*+-/=?^_`{|}~``, single dots between them), at most
//!   64 bytes. Quoted local parts (`"bob"@example.com`, the same mailbox as
//!   `bob@example.com`) and non-ASCII local parts (which need SMTPUTF8 from
//!   every relay on the way) are refused;
//! - the domain is dot-separated labels of letters, digits and hyphens (no
//!   label starting or ending with `-`, 1 to 63 bytes each, 253 in all);
//!   IP literals (`[192.0.2.1]`, and an all-digit last label such as
//!   `192.0.2.1`) and a trailing dot (`example.com.`) are refused;
//! - an internationalized domain is stored in one canonical form, its ASCII
//!   (punycode) form after UTS #46 mapping, lower case: `bücher.example`,
//!   `BÜCHER.example` and `xn--bcher-kva.example` are one identity.
//!
//! A phone number must be E.164 as Twilio takes it: `+`, a first digit 1–9,
//! 8 to 15 digits in all.

use std::fmt;

/// Longest identity accepted, in characters, after trimming.
pub const MAX_IDENTITY_CHARS: usize = 320;

/// What kind of identity a string names, decided by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// Contains `@`: an email address, lower-cased as a whole.
    Email,
    /// Starts with `+`: an E.164 phone number (`+` then 8..=15 digits).
    Phone,
    /// Anything else: an opaque user id, case preserved.
    Opaque,
}

impl IdentityKind {
    /// A stable lower-case name (`email`, `phone`, `opaque`) for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::Phone => "phone",
            IdentityKind::Opaque => "opaque",
        }
    }
}

/// Why a string is not a valid identity. Every variant maps to HTTP 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Empty, or only white space.
    #[error("identity must not be empty")]
    Empty,
    /// Longer than [`MAX_IDENTITY_CHARS`] after trimming.
    #[error("identity must be at most {MAX_IDENTITY_CHARS} characters")]
    TooLong,
    /// Contains a control character (including NUL, CR, LF, TAB inside).
    #[error("identity must not contain control characters")]
    ControlCharacter,
    /// Looks like an email (contains `@`) but is not a valid one.
    #[error("invalid email address: {0}")]
    InvalidEmail(&'static str),
    /// Starts with `+` but is not an E.164 number.
    #[error(
        "invalid phone number: expected E.164, '+' followed by 8 to 15 digits, the first not 0"
    )]
    InvalidPhone,
    /// Contains a Unicode format character (category Cf: zero-width, soft
    /// hyphen, bidi control, …), invisible when displayed.
    #[error("identity must not contain invisible format characters (zero-width, soft hyphen, bidi controls)")]
    FormatCharacter,
}

/// A validated, normalized identity.
///
/// ```
/// use otp_core::{Identity, IdentityKind};
///
/// let id = Identity::parse("  Alice@Example.COM ").unwrap();
/// assert_eq!(id.as_str(), "alice@example.com");
/// assert_eq!(id.kind(), IdentityKind::Email);
///
/// let phone = Identity::parse("+1 (415) 555-0100").unwrap();
/// assert_eq!(phone.as_str(), "+14155550100");
///
/// assert!(Identity::parse("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    normalized: String,
    kind: IdentityKind,
}

impl Identity {
    /// Parses and normalizes `raw` per SPEC §3.4.
    ///
    /// Surrounding white space is trimmed; the result must be non-empty, at
    /// most 320 characters and free of control and format (Cf) characters.
    /// Then:
    /// - contains `@` → email: exactly one `@`, an unquoted ASCII dot-atom
    ///   local part, a domain of letter/digit/hyphen labels (IDN to its
    ///   punycode form) that is no IP literal and has no trailing dot;
    ///   lower-cased as a whole (see the [module docs](self));
    /// - starts with `+` → phone: ` -().` separators removed, then `+` and
    ///   8..=15 ASCII digits, the first not `0`;
    /// - otherwise an opaque id, case preserved.
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(IdentityError::Empty);
        }
        // ASCII (nearly every identity) is one char per byte, its control
        // characters are exactly the ASCII ones and it holds no format
        // character (all are above U+00AC): the same checks without
        // decoding UTF-8 three times (issue 17).
        let ascii = trimmed.is_ascii();
        let chars = if ascii {
            trimmed.len()
        } else {
            trimmed.chars().count()
        };
        if chars > MAX_IDENTITY_CHARS {
            return Err(IdentityError::TooLong);
        }
        let control = if ascii {
            trimmed.bytes().any(|b| b.is_ascii_control())
        } else {
            trimmed.chars().any(char::is_control)
        };
        if control {
            return Err(IdentityError::ControlCharacter);
        }
        if !ascii && trimmed.chars().any(is_format_character) {
            return Err(IdentityError::FormatCharacter);
        }
        if trimmed.contains('@') {
            return Self::parse_email(trimmed);
        }
        if trimmed.starts_with('+') {
            return Self::parse_phone(trimmed);
        }
        Ok(Identity {
            normalized: trimmed.to_owned(),
            kind: IdentityKind::Opaque,
        })
    }

    fn parse_email(s: &str) -> Result<Self, IdentityError> {
        let mut parts = s.split('@');
        let local = parts.next().unwrap_or_default();
        let domain = parts.next().unwrap_or_default();
        if parts.next().is_some() {
            return Err(IdentityError::InvalidEmail("exactly one '@' is allowed"));
        }
        if local.is_empty() {
            return Err(IdentityError::InvalidEmail("the local part is empty"));
        }
        if domain.is_empty() {
            return Err(IdentityError::InvalidEmail("the domain is empty"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(IdentityError::InvalidEmail("white space is not allowed"));
        }
        let local = normalize_local_part(local)?;
        let domain = normalize_domain(domain)?;
        Ok(Identity {
            normalized: format!("{local}@{domain}"),
            kind: IdentityKind::Email,
        })
    }

    fn parse_phone(s: &str) -> Result<Self, IdentityError> {
        let digits: String = s[1..]
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        if !(8..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(IdentityError::InvalidPhone);
        }
        let mut normalized = String::with_capacity(digits.len() + 1);
        normalized.push('+');
        normalized.push_str(&digits);
        Ok(Identity {
            normalized,
            kind: IdentityKind::Phone,
        })
    }

    /// The normalized identity string.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The kind this identity was recognised as.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// Consumes the identity, returning the normalized string.
    pub fn into_string(self) -> String {
        self.normalized
    }
}

/// Longest local part of an email address, in bytes (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_PART_BYTES: usize = 64;
/// Longest domain, in bytes, without a trailing dot (RFC 1035 §2.3.4).
const MAX_DOMAIN_BYTES: usize = 253;
/// Longest domain label, in bytes (RFC 1035 §2.3.4).
const MAX_LABEL_BYTES: usize = 63;

/// The Unicode format characters (general category Cf, Unicode 15.1), as
/// inclusive ranges.
const FORMAT_CHARACTERS: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Returns true if and only if `c` is a Unicode format character (Cf).
fn is_format_character(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_CHARACTERS
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// RFC 5322 `atext`, ASCII only.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// The local part, lower-cased, if it is an unquoted ASCII dot-atom.
fn normalize_local_part(local: &str) -> Result<String, IdentityError> {
    if local.starts_with('"') || local.ends_with('"') {
        return Err(IdentityError::InvalidEmail(
            "quoted local parts are not accepted",
        ));
    }
    if !local.is_ascii() {
        return Err(IdentityError::InvalidEmail("the local part must be ASCII"));
    }
    if local.len() > MAX_LOCAL_PART_BYTES {
        return Err(IdentityError::InvalidEmail(
            "the local part is longer than 64 characters",
        ));
    }
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
    {
        return Err(IdentityError::InvalidEmail(
            "the local part must be letters, digits and !#$%&'*+-/=?^_`{|}~ with single dots between them",
        ));
    }
    Ok(local.to_ascii_lowercase())
}

/// The domain in its canonical form (UTS #46 to ASCII, lower case), if it is
/// dot-separated letter/digit/hyphen labels, not an IP literal, no trailing dot.
fn normalize_domain(domain: &str) -> Result<String, IdentityError> {
    if domain.starts_with('[') || domain.ends_with(']') {
        return Err(IdentityError::InvalidEmail(
            "IP-literal domains are not accepted",
        ));
    }
    // Checked before and after mapping: UTS #46 maps U+3002 and other full
    // stops to '.'.
    if domain.ends_with('.') {
        return Err(IdentityError::InvalidEmail(
            "the domain must not end in a dot",
        ));
    }
    let ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| IdentityError::InvalidEmail("the domain is not a valid domain name"))?
        .to_ascii_lowercase();
    if ascii.ends_with('.') {
        return Err(IdentityError::InvalidEmail(
            "the domain must not end in a dot",
        ));
    }
    if ascii.is_empty() || ascii.len() > MAX_DOMAIN_BYTES {
        return Err(IdentityError::InvalidEmail(
            "the domain must be 1 to 253 characters",
        ));
    }
    let label_ok = |label: &str| {
        (1..=MAX_LABEL_BYTES).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !ascii.split('.').all(label_ok) {
        return Err(IdentityError::InvalidEmail(
            "the domain must be dot-separated labels of letters, digits and hyphens",
        ));
    }
    // No top-level domain is all digits; such a domain is an IPv4 address
    // written without brackets.
    let last = ascii.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentityError::InvalidEmail(
            "IP-literal domains are not accepted",
        ));
    }
    Ok(ascii)
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("kind", &self.kind)
            .field("normalized", &self.normalized)
            .finish()
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.normalized
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identity::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let id = Identity::parse("  Bob.Smith@Example.ORG\t").unwrap();
        assert_eq!(id.as_str(), "bob.smith@example.org");
        assert_eq!(id.kind(), IdentityKind::Email);
    }

    #[test]
    fn email_variants_share_one_identity() {
        let a = Identity::parse("USER@example.com").unwrap();
        let b = Identity::parse(" user@EXAMPLE.com ").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn email_rejections() {
        assert!(matches!(
            Identity::parse("a@b@c"),
            Err(IdentityError::InvalidEmail(_))
        ));
        assert!(matches!(
            Identity::parse("@example.com"),
            Err(IdentityError::InvalidEmail(_))
        ));
        assert!(matches!(
            Identity::parse("user@"),
            Err(IdentityError::InvalidEmail(_))
        ));
        assert!(matches!(
            Identity::parse("us er@example.com"),
            Err(IdentityError::InvalidEmail(_))
        ));
    }

    #[test]
    fn phone_separators_are_removed() {
        let id = Identity::parse("+44 (20) 7946-0958").unwrap();
        assert_eq!(id.as_str(), "+442079460958");
        assert_eq!(id.kind(), IdentityKind::Phone);
        assert_eq!(
            Identity::parse("+1.415.555.0100").unwrap().as_str(),
            "+14155550100"
        );
    }

    #[test]
    fn phone_rejections() {
        assert_eq!(
            Identity::parse("+1234567"),
            Err(IdentityError::InvalidPhone)
        );
        assert_eq!(
            Identity::parse("+1234567890123456"),
            Err(IdentityError::InvalidPhone)
        );
        assert_eq!(
            Identity::parse("+1415abc0100"),
            Err(IdentityError::InvalidPhone)
        );
        assert_eq!(Identity::parse("+"), Err(IdentityError::InvalidPhone));
        assert!(Identity::parse("+12345678").is_ok());
        assert!(Identity::parse("+123456789012345").is_ok());
    }

    #[test]
    fn opaque_keeps_case_and_digits_only_ids() {
        let id = Identity::parse(" User-42 ").unwrap();
        assert_eq!(id.as_str(), "User-42");
        assert_eq!(id.kind(), IdentityKind::Opaque);
        assert_eq!(
            Identity::parse("12345").unwrap().kind(),
            IdentityKind::Opaque
        );
    }

    #[test]
    fn empty_long_and_control_are_rejected() {
        assert_eq!(Identity::parse("   "), Err(IdentityError::Empty));
        assert_eq!(
            Identity::parse(&"a".repeat(321)),
            Err(IdentityError::TooLong)
        );
        assert!(Identity::parse(&"a".repeat(320)).is_ok());
        assert_eq!(
            Identity::parse("a\u{0}b"),
            Err(IdentityError::ControlCharacter)
        );
        assert_eq!(
            Identity::parse("a\nb"),
            Err(IdentityError::ControlCharacter)
        );
        // multi-byte characters count as characters, not bytes
        assert!(Identity::parse(&"é".repeat(320)).is_ok());
        assert_eq!(
            Identity::parse(&"é".repeat(321)),
            Err(IdentityError::TooLong)
        );
        // DEL (the ASCII path) and a C1 control (the Unicode path).
        assert_eq!(
            Identity::parse("a\u{7f}b"),
            Err(IdentityError::ControlCharacter)
        );
        assert_eq!(
            Identity::parse("é\u{85}b"),
            Err(IdentityError::ControlCharacter)
        );
    }

    // See: issue 13 item 4 (SPEC §3.4 amended).
    #[test]
    fn format_characters_are_refused_in_every_kind() {
        for cf in [
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{00ad}',
            '\u{202e}',
            '\u{2066}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            for raw in [
                format!("bob{cf}@example.com"),
                format!("bob@exa{cf}mple.com"),
                format!("+1415{cf}5550100"),
                format!("user{cf}42"),
                format!("{cf}user42"),
            ] {
                assert_eq!(
                    Identity::parse(&raw),
                    Err(IdentityError::FormatCharacter),
                    "{raw:?}"
                );
            }
        }
    }

    #[test]
    fn quoted_local_parts_are_refused() {
        for raw in [
            "\"bob\"@example.com",
            "\"b o b\"@example.com",
            "\"\"@example.com",
            "a\"b@example.com",
            "bob\"@example.com",
        ] {
            assert!(
                matches!(Identity::parse(raw), Err(IdentityError::InvalidEmail(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn ip_literal_domains_and_trailing_dots_are_refused() {
        for raw in [
            "bob@[192.0.2.1]",
            "bob@[IPv6:2001:db8::1]",
            "bob@192.0.2.1",
            "bob@123",
            "bob@example.com.",
            "bob@example.com\u{3002}",
            "bob@example..com",
            "bob@.example.com",
            "bob@-example.com",
            "bob@example-.com",
            "bob@exa_mple.com",
            "bob@exa!mple.com",
            "bob@example.com:25",
        ] {
            assert!(
                matches!(Identity::parse(raw), Err(IdentityError::InvalidEmail(_))),
                "{raw:?}"
            );
        }
        let long_label = format!("bob@{}.com", "a".repeat(64));
        assert!(Identity::parse(&long_label).is_err());
        assert!(Identity::parse(&format!("bob@{}.com", "a".repeat(63))).is_ok());
    }

    #[test]
    fn local_parts_are_ascii_dot_atoms_of_at_most_64_bytes() {
        for ok in [
            "a.b.c@example.com",
            "o'brien+tag@example.com",
            "x!#$%&'*+-/=?^_`{|}~@example.com",
        ] {
            assert!(Identity::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            ".bob@example.com",
            "bob.@example.com",
            "b..ob@example.com",
            "bøb@example.com",
            "b(o)b@example.com",
            "b,ob@example.com",
            "b\\ob@example.com",
        ] {
            assert!(
                matches!(Identity::parse(bad), Err(IdentityError::InvalidEmail(_))),
                "{bad:?}"
            );
        }
        assert!(Identity::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
        assert!(Identity::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn internationalized_domains_have_one_canonical_form() {
        let forms = [
            "bob@bücher.example",
            "BOB@BÜCHER.example",
            "bob@xn--bcher-kva.example",
            "bob@XN--BCHER-KVA.EXAMPLE",
        ];
        for raw in forms {
            assert_eq!(
                Identity::parse(raw).unwrap().as_str(),
                "bob@xn--bcher-kva.example",
                "{raw:?}"
            );
        }
        // full-width letters map to their ASCII forms under UTS #46
        assert_eq!(
            Identity::parse("bob@ｅｘａｍｐｌｅ.com").unwrap().as_str(),
            "bob@example.com"
        );
    }

    #[test]
    fn phone_numbers_starting_with_zero_are_not_e164() {
        assert_eq!(
            Identity::parse("+0123456789"),
            Err(IdentityError::InvalidPhone)
        );
        assert!(Identity::parse("+10123456789").is_ok());
    }
}
