//! Typed errors of the token module: [`TokenError`] for issuing and verifying
//! tokens, [`TokenKeyError`] for building keys and configuration.

/// Why a token could not be issued or verified.
///
/// [`TokenError::Expired`] is the only variant a client can cure by signing
/// in again; every other variant names the check that failed. Use
/// [`TokenError::reason`] for the body of an HTTP 401 and
/// [`TokenError::check`] for logs and metrics (neither contains token data).
///
/// ```
/// use otp_core::TokenError;
/// assert!(TokenError::Expired.is_expired());
/// assert_eq!(TokenError::Expired.reason(), "token_expired");
/// assert_eq!(TokenError::BadSignature.reason(), "token_invalid");
/// assert_eq!(TokenError::MissingClaim("exp").check(), "missing_claim");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token's `exp` (plus leeway) has passed.
    #[error("token has expired")]
    Expired,
    /// The token is longer than [`MAX_TOKEN_BYTES`](super::MAX_TOKEN_BYTES).
    #[error("token is larger than the 8 KiB limit")]
    TooLarge,
    /// Not a JWS compact serialization: not exactly three `.`-separated
    /// segments, or an empty header segment.
    #[error("token is not a three-segment JWS compact serialization")]
    Malformed,
    /// A segment is not canonical unpadded base64url (padding, `+` or `/`,
    /// non-zero trailing bits, a character outside the alphabet).
    #[error("token segment is not canonical unpadded base64url")]
    Base64,
    /// The protected header is not a JSON object with a string `alg`, or is
    /// too large.
    #[error("token header is not valid")]
    MalformedHeader,
    /// The header names `none` or an algorithm this library does not
    /// implement.
    #[error("token algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The header names a supported algorithm that is not the one of the
    /// configured keys (e.g. HS256 presented to an EdDSA verifier).
    #[error("token algorithm does not match the configured key")]
    AlgorithmMismatch,
    /// The header has a `crit` parameter (no extension is understood).
    #[error("token header has unsupported critical parameters")]
    CriticalHeader,
    /// The header's `typ` is present and is not `JWT`.
    #[error("token type is not JWT")]
    UnsupportedType,
    /// The header's `kid` names no configured key.
    #[error("token key id is unknown")]
    UnknownKid,
    /// The signature does not verify with any candidate key.
    #[error("token signature is invalid")]
    BadSignature,
    /// The payload is not a JSON object of well-typed claims (after the
    /// signature verified).
    #[error("token claims are malformed")]
    MalformedClaims,
    /// A required claim (`exp`, `sub`, `iss` or `aud`) is absent.
    #[error("token has no `{0}` claim")]
    MissingClaim(&'static str),
    /// `nbf` is later than now (plus leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is later than now (plus leeway).
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("token issuer does not match")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token audience does not match")]
    WrongAudience,
    /// Issuing only: an extra claim tried to set a registered claim.
    #[error("extra claim `{0}` would override a registered claim")]
    ReservedClaim(String),
    /// Issuing only: the system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

impl TokenError {
    /// Returns true if and only if the token failed only because it expired.
    pub fn is_expired(&self) -> bool {
        matches!(self, TokenError::Expired)
    }

    /// The stable reason for an HTTP 401 body: `token_expired` for
    /// [`TokenError::Expired`], `token_invalid` for everything else.
    pub fn reason(&self) -> &'static str {
        reason(self.is_expired())
    }

    /// A short, stable, snake_case name of the failed check (for logs and
    /// metric labels; never contains token data).
    pub fn check(&self) -> &'static str {
        match self {
            TokenError::Expired => "expired",
            TokenError::TooLarge => "too_large",
            TokenError::Malformed => "malformed",
            TokenError::Base64 => "base64",
            TokenError::MalformedHeader => "malformed_header",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::AlgorithmMismatch => "algorithm_mismatch",
            TokenError::CriticalHeader => "critical_header",
            TokenError::UnsupportedType => "unsupported_type",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::MalformedClaims => "malformed_claims",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::ReservedClaim(_) => "reserved_claim",
            TokenError::Random => "random",
        }
    }
}

/// The `error` of an HTTP 401 for a token that failed: `token_expired`
/// only when expiry was the one failure (access and refresh tokens alike).
pub(crate) fn reason(expired: bool) -> &'static str {
    if expired {
        "token_expired"
    } else {
        "token_invalid"
    }
}

/// Why a key, key set or token configuration could not be built.
///
/// Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenKeyError {
    /// An HS256 secret is shorter than the production minimum
    /// ([`MIN_HS256_SECRET_BYTES`](super::MIN_HS256_SECRET_BYTES)).
    #[error("HS256 secret is {len} bytes; at least {min} are required")]
    SecretTooShort {
        /// Length of the rejected secret in bytes.
        len: usize,
        /// The required minimum.
        min: usize,
    },
    /// An HS256 secret is empty.
    #[error("HS256 secret is empty")]
    EmptySecret,
    /// The private key text is neither PEM nor base64 of DER.
    #[error("private key is neither PEM (BEGIN PRIVATE KEY) nor base64 of PKCS#8 DER")]
    InvalidKeyEncoding,
    /// The DER is not an Ed25519 PKCS#8 (v1 or v2) private key.
    #[error("private key is not an Ed25519 PKCS#8 (v1 or v2) key")]
    InvalidPkcs8,
    /// An Ed25519 public key is not 32 bytes of canonical base64url.
    #[error("Ed25519 public key is invalid")]
    InvalidPublicKey,
    /// The current and previous keys are not of one algorithm family.
    #[error("current and previous token keys must use the same algorithm")]
    MixedAlgorithms,
    /// A JWKS contains no Ed25519 signature key.
    #[error("JWKS contains no usable Ed25519 signature key")]
    NoUsableKeys,
    /// A configuration value is out of range (the message names it).
    #[error("invalid token configuration: {0}")]
    InvalidConfig(&'static str),
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}
