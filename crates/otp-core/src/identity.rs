//! Identities (SPEC §3.4): parsing and normalization of the name a user gives.
//!
//! The normalized form is what everything downstream uses: derivation, rate
//! limit keys, the token `sub` and delivery. Case or formatting variants of one
//! email or phone number normalize to the same string, so they cannot buy
//! extra attempts.

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
    #[error("invalid phone number: expected E.164, '+' followed by 8 to 15 digits")]
    InvalidPhone,
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
    /// most 320 characters and free of control characters. Then:
    /// - contains `@` → email: exactly one `@`, non-empty local part and
    ///   domain, no white space; lower-cased as a whole;
    /// - starts with `+` → phone: ` -().` separators removed, then `+` and
    ///   8..=15 ASCII digits;
    /// - otherwise an opaque id, case preserved.
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(IdentityError::Empty);
        }
        if trimmed.chars().count() > MAX_IDENTITY_CHARS {
            return Err(IdentityError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(IdentityError::ControlCharacter);
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
        Ok(Identity {
            normalized: s.to_lowercase(),
            kind: IdentityKind::Email,
        })
    }

    fn parse_phone(s: &str) -> Result<Self, IdentityError> {
        let digits: String = s[1..]
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
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
    }
}
