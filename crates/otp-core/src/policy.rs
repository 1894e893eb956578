//! The OTP policy: digit count, window, hash, drift and clock skew (SPEC
//! §3.1–§3.2), validated once by [`OtpPolicyBuilder::build`].
//!
//! ```
//! use otp_core::{Digits, HashAlgorithm, OtpPolicy, PolicyError};
//!
//! let policy = OtpPolicy::builder()
//!     .digits(Digits::Eight)
//!     .window_seconds(60)
//!     .algorithm(HashAlgorithm::Sha512)
//!     .drift_tolerance(2)
//!     .clock_skew_seconds(10)
//!     .build()
//!     .unwrap();
//! assert_eq!(policy.digits(), Digits::Eight);
//!
//! // Every field not set keeps its documented default.
//! assert_eq!(OtpPolicy::builder().build(), Ok(OtpPolicy::default()));
//!
//! // Values that cannot work are refused by `build`.
//! assert_eq!(
//!     OtpPolicy::builder().window_seconds(10).build(),
//!     Err(PolicyError::Window(10))
//! );
//! // An existing policy is changed through its builder.
//! let longer = policy.to_builder().window_seconds(120).build().unwrap();
//! assert_eq!((longer.digits(), longer.window_seconds()), (Digits::Eight, 120));
//! ```

use crate::code::{Digits, MAX_DIGITS, MIN_DIGITS};

/// Shortest window allowed, in seconds.
pub const MIN_WINDOW_SECONDS: u64 = 30;
/// Most drift windows allowed (keeps the candidate set, and so verify cost, small).
pub const MAX_DRIFT: u32 = 10;
/// Default window length, in seconds.
pub const DEFAULT_WINDOW_SECONDS: u64 = 300;
/// Default drift tolerance, in windows.
pub const DEFAULT_DRIFT_TOLERANCE: u32 = 1;
/// Default clock skew, in seconds.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 30;

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// HMAC-SHA-1 (RFC 4226's original).
    Sha1,
    /// HMAC-SHA-256. The default.
    #[default]
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Parses `sha1`, `sha256` or `sha512` (case-insensitive, `-` allowed: `SHA-256`).
    ///
    /// ```
    /// use otp_core::HashAlgorithm;
    /// assert_eq!(HashAlgorithm::parse("SHA-512"), Some(HashAlgorithm::Sha512));
    /// assert_eq!(HashAlgorithm::parse("md5"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Some(HashAlgorithm::Sha1),
            "sha256" => Some(HashAlgorithm::Sha256),
            "sha512" => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    /// `sha1`, `sha256` or `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }
}

/// Why a policy value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Digits outside 4..=10 (from [`Digits::try_from`]).
    #[error("digits must be between {MIN_DIGITS} and {MAX_DIGITS}, got {0}")]
    Digits(u8),
    /// Window shorter than 30 seconds.
    #[error("window_seconds must be at least {MIN_WINDOW_SECONDS}, got {0}")]
    Window(u64),
    /// Drift larger than [`MAX_DRIFT`].
    #[error("drift_tolerance must be at most {MAX_DRIFT}, got {0}")]
    Drift(u32),
    /// Clock skew not smaller than the window.
    #[error("clock_skew_seconds must be smaller than window_seconds ({window}), got {skew}")]
    ClockSkew {
        /// The configured skew.
        skew: u64,
        /// The configured window.
        window: u64,
    },
}

/// The validated OTP policy. Build one with [`OtpPolicy::builder`] or take
/// [`OtpPolicy::default`]; change one with [`OtpPolicy::to_builder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    digits: Digits,
    window_seconds: u64,
    algorithm: HashAlgorithm,
    drift_tolerance: u32,
    clock_skew_seconds: u64,
}

impl Default for OtpPolicy {
    /// 6 digits, 300 s windows, HMAC-SHA-256, drift 1, clock skew 30 s.
    fn default() -> Self {
        OtpPolicy {
            digits: Digits::Six,
            window_seconds: DEFAULT_WINDOW_SECONDS,
            algorithm: HashAlgorithm::Sha256,
            drift_tolerance: DEFAULT_DRIFT_TOLERANCE,
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
        }
    }
}

impl OtpPolicy {
    /// A builder holding the defaults of [`OtpPolicy::default`].
    pub fn builder() -> OtpPolicyBuilder {
        OtpPolicy::default().to_builder()
    }

    /// A builder holding this policy's values, to change some of them.
    pub fn to_builder(self) -> OtpPolicyBuilder {
        OtpPolicyBuilder { policy: self }
    }

    /// Code length. Defaults to 6.
    pub fn digits(&self) -> Digits {
        self.digits
    }
    /// Window length in seconds. Defaults to 300.
    pub fn window_seconds(&self) -> u64 {
        self.window_seconds
    }
    /// HMAC hash. Defaults to SHA-256.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }
    /// Past windows still accepted. Defaults to 1.
    pub fn drift_tolerance(&self) -> u32 {
        self.drift_tolerance
    }
    /// How close to the next window's start `now` must be for that window to
    /// be accepted. Defaults to 30.
    pub fn clock_skew_seconds(&self) -> u64 {
        self.clock_skew_seconds
    }
}

/// Builds an [`OtpPolicy`]; every setter is optional and [`build`](Self::build)
/// validates the combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "call .build() to get the policy"]
pub struct OtpPolicyBuilder {
    policy: OtpPolicy,
}

impl OtpPolicyBuilder {
    /// Code length. Defaults to [`Digits::Six`].
    pub fn digits(mut self, digits: Digits) -> Self {
        self.policy.digits = digits;
        self
    }
    /// Window length in seconds, at least [`MIN_WINDOW_SECONDS`]. Defaults to 300.
    pub fn window_seconds(mut self, window_seconds: u64) -> Self {
        self.policy.window_seconds = window_seconds;
        self
    }
    /// HMAC hash. Defaults to SHA-256.
    pub fn algorithm(mut self, algorithm: HashAlgorithm) -> Self {
        self.policy.algorithm = algorithm;
        self
    }
    /// Past windows still accepted, at most [`MAX_DRIFT`]. Defaults to 1.
    pub fn drift_tolerance(mut self, drift: u32) -> Self {
        self.policy.drift_tolerance = drift;
        self
    }
    /// How close to the next window's start `now` must be for that window to
    /// be accepted; smaller than the window. Defaults to 30.
    pub fn clock_skew_seconds(mut self, skew: u64) -> Self {
        self.policy.clock_skew_seconds = skew;
        self
    }

    /// Validates and returns the policy: window ≥ [`MIN_WINDOW_SECONDS`],
    /// drift ≤ [`MAX_DRIFT`], clock skew < window.
    pub fn build(self) -> Result<OtpPolicy, PolicyError> {
        let p = self.policy;
        if p.window_seconds < MIN_WINDOW_SECONDS {
            return Err(PolicyError::Window(p.window_seconds));
        }
        if p.drift_tolerance > MAX_DRIFT {
            return Err(PolicyError::Drift(p.drift_tolerance));
        }
        if p.clock_skew_seconds >= p.window_seconds {
            return Err(PolicyError::ClockSkew {
                skew: p.clock_skew_seconds,
                window: p.window_seconds,
            });
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates_window_drift_and_skew() {
        let b = OtpPolicy::builder;
        assert!(b().digits(Digits::Four).build().is_ok());
        assert!(b().digits(Digits::Ten).build().is_ok());
        assert_eq!(b().window_seconds(29).build(), Err(PolicyError::Window(29)));
        assert!(b()
            .clock_skew_seconds(29)
            .window_seconds(30)
            .build()
            .is_ok());
        assert_eq!(
            b().window_seconds(30).build(),
            Err(PolicyError::ClockSkew {
                skew: 30,
                window: 30
            }),
            "skew 30 must be below the window"
        );
        assert_eq!(b().drift_tolerance(11).build(), Err(PolicyError::Drift(11)));
        assert!(b().drift_tolerance(MAX_DRIFT).build().is_ok());
    }

    #[test]
    fn builder_defaults_are_the_documented_defaults() {
        let p = OtpPolicy::builder().build().unwrap();
        assert_eq!(p, OtpPolicy::default());
        assert_eq!(
            (
                p.digits().count(),
                p.window_seconds(),
                p.algorithm(),
                p.drift_tolerance(),
                p.clock_skew_seconds()
            ),
            (6, 300, HashAlgorithm::Sha256, 1, 30)
        );
    }
}
