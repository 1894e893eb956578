//! The stateless OTP engine (SPEC §3.1–§3.3).
//!
//! A code is derived, never stored:
//!
//! ```text
//! window  = floor(unix_seconds / window_seconds)
//! message = utf8(identity) || u64_be(window)                  (use counter n = 0)
//! message = utf8(identity) || u64_be(window) || u32_be(n)     (n >= 1)
//! digest  = HMAC-<alg>(secret_key, message)
//! offset  = digest[last] & 0x0f
//! value   = (digest[offset..offset+4] as u32 big-endian) & 0x7fff_ffff
//! code    = value mod 10^digits, left-padded with zeros
//! ```
//!
//! For n = 0 this is bit-for-bit the Python service's derivation.
//!
//! # Acceptance windows
//! A submitted code is checked against windows `w - drift ..= w`, and against
//! `w + 1` only when `now` is within `clock_skew_seconds` of that window's
//! start. Every candidate (window × key) is always computed and compared in
//! constant time, so timing does not tell which window matched.
//!
//! # Use counters
//! The engine is told the use counter `n` of each candidate window (a store
//! keeps them, see `otp-ratelimit`); codes are derived with that `n`. After a
//! successful verify the caller advances the counter of the matching window by
//! compare-and-set from [`Match::counter`], which makes every code single use.
//!
//! ```
//! use otp_core::{Identity, OtpCode, OtpEngine, OtpKeyRing, OtpPolicy, SecretBytes};
//!
//! let keys = OtpKeyRing::new(SecretBytes::new(b"0123456789abcdef0123456789abcdef".to_vec()), vec![]).unwrap();
//! let engine = OtpEngine::new(OtpPolicy::default(), keys);
//! let who = Identity::parse("alice@example.com").unwrap();
//! let now = 1_700_000_000;
//!
//! let code = engine.generate(&who, now, 0);
//! let windows = engine.candidate_windows(now);
//! let counters = vec![0; windows.len()];
//! // what a client submits is parsed once, by the one code parser
//! let submitted = OtpCode::parse(code.as_str()).unwrap();
//! let matched = engine.verify(&who, &submitted, now, &counters).unwrap();
//! assert_eq!(matched.window, engine.window_at(now));
//!
//! // once the counter has advanced, the same code no longer verifies
//! let advanced: Vec<u32> = windows.iter().map(|w| if *w == matched.window { 1 } else { 0 }).collect();
//! assert!(engine.verify(&who, &submitted, now, &advanced).is_err());
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::code::{Digits, OtpCode};
use crate::keys::OtpKeyRing;
use crate::policy::{HashAlgorithm, OtpPolicy, MAX_DRIFT};
use crate::{Identity, SecretBytes};

/// Which candidate a submitted code matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The window number the code belongs to.
    pub window: u64,
    /// The use counter it was derived with; advance from this value.
    pub counter: u32,
    /// Index of the key in the ring: 0 is the current key, 1.. previous keys.
    pub key_index: usize,
}

/// Why a code did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A code of another length than the policy's: rejected before any HMAC.
    #[error("code must be exactly {expected} digits")]
    Malformed {
        /// The policy's digit count.
        expected: Digits,
    },
    /// Well-formed, but matches no candidate (wrong, expired or already used).
    #[error("invalid or expired code")]
    NoMatch,
    /// `counters` did not have one entry per candidate window.
    #[error("expected {expected} use counters, got {actual}")]
    CounterCount {
        /// Number of candidate windows.
        expected: usize,
        /// Number of counters given.
        actual: usize,
    },
}

/// The windows a code may belong to at some instant, oldest first.
/// At most `MAX_DRIFT + 2` entries; held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CandidateWindows {
    windows: [u64; MAX_DRIFT as usize + 2],
    len: usize,
}

impl CandidateWindows {
    /// The windows as a slice, oldest first.
    pub fn as_slice(&self) -> &[u64] {
        &self.windows[..self.len]
    }
    /// Number of candidate windows.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Always false: the current window is always a candidate.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Iterates over the windows, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.as_slice().iter()
    }
}

impl fmt::Debug for CandidateWindows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// HMAC state already keyed, so each code costs one clone + one HMAC.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    fn new(alg: HashAlgorithm, key: &SecretBytes) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail;
        // the fallbacks exist only to avoid a panic path.
        match alg {
            HashAlgorithm::Sha1 => KeyedMac::Sha1(
                Hmac::new_from_slice(key.expose()).unwrap_or_else(|_| unreachable_mac()),
            ),
            HashAlgorithm::Sha256 => KeyedMac::Sha256(
                Hmac::new_from_slice(key.expose()).unwrap_or_else(|_| unreachable_mac()),
            ),
            HashAlgorithm::Sha512 => KeyedMac::Sha512(
                Hmac::new_from_slice(key.expose()).unwrap_or_else(|_| unreachable_mac()),
            ),
        }
    }

    /// Dynamic truncation of HMAC(key, parts...) (RFC 4226 §5.3).
    fn truncate(&self, parts: &[&[u8]]) -> u32 {
        fn run<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> u32 {
            let mut mac = mac.clone();
            for p in parts {
                mac.update(p);
            }
            dynamic_truncate(&mac.finalize().into_bytes())
        }
        match self {
            KeyedMac::Sha1(m) => run(m, parts),
            KeyedMac::Sha256(m) => run(m, parts),
            KeyedMac::Sha512(m) => run(m, parts),
        }
    }
}

fn unreachable_mac<M: Mac + hmac::digest::KeyInit>() -> M {
    // A zero-length key is accepted by every HMAC; this path is never taken.
    <M as hmac::digest::KeyInit>::new(&Default::default())
}

/// RFC 4226 dynamic truncation of a digest of at least 20 bytes.
pub(crate) fn dynamic_truncate(digest: &[u8]) -> u32 {
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    let mut word = [0u8; 4];
    if let Some(bytes) = digest.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    u32::from_be_bytes(word) & 0x7fff_ffff
}

/// Pre-computes a keyed HMAC for one-shot use by the standard HOTP/TOTP code.
pub(crate) fn hmac_truncate(alg: HashAlgorithm, key: &SecretBytes, parts: &[&[u8]]) -> u32 {
    KeyedMac::new(alg, key).truncate(parts)
}

/// The OTP engine: a policy and a key ring, with the HMAC keys pre-computed.
#[derive(Clone)]
pub struct OtpEngine {
    policy: OtpPolicy,
    keys: OtpKeyRing,
    macs: Vec<KeyedMac>,
}

impl fmt::Debug for OtpEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpEngine")
            .field("policy", &self.policy)
            .field("keys", &self.keys)
            .finish()
    }
}

/// Current unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OtpEngine {
    /// Builds an engine from a validated policy and key ring.
    pub fn new(policy: OtpPolicy, keys: OtpKeyRing) -> Self {
        let macs = keys
            .iter()
            .map(|k| KeyedMac::new(policy.algorithm(), k))
            .collect();
        OtpEngine { policy, keys, macs }
    }

    /// The policy in force.
    pub fn policy(&self) -> &OtpPolicy {
        &self.policy
    }

    /// The key ring in force.
    pub fn keys(&self) -> &OtpKeyRing {
        &self.keys
    }

    /// The window number of `unix_seconds`.
    pub fn window_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.policy.window_seconds()
    }

    /// Derives the code of `identity` for the window containing `unix_seconds`
    /// and use counter `counter`, with the current key.
    pub fn generate(&self, identity: &Identity, unix_seconds: u64, counter: u32) -> OtpCode {
        self.generate_for_window(identity, self.window_at(unix_seconds), counter)
    }

    /// [`OtpEngine::generate`] at the current system time.
    pub fn generate_now(&self, identity: &Identity, counter: u32) -> OtpCode {
        self.generate(identity, unix_now(), counter)
    }

    /// Derives the code of `identity` for window number `window`.
    pub fn generate_for_window(&self, identity: &Identity, window: u64, counter: u32) -> OtpCode {
        let value = self.derive(0, identity.as_str().as_bytes(), window, counter);
        OtpCode::from_value(value, self.policy.digits())
    }

    fn derive(&self, key_index: usize, identity: &[u8], window: u64, counter: u32) -> u32 {
        let Some(mac) = self.macs.get(key_index) else {
            return 0;
        };
        let w = window.to_be_bytes();
        if counter == 0 {
            mac.truncate(&[identity, &w])
        } else {
            mac.truncate(&[identity, &w, &counter.to_be_bytes()])
        }
    }

    /// The windows a code submitted at `unix_seconds` may belong to, oldest
    /// first: `w - drift ..= w` (never below 0), plus `w + 1` when `now` is
    /// within `clock_skew_seconds` of its start.
    pub fn candidate_windows(&self, unix_seconds: u64) -> CandidateWindows {
        let w = self.window_at(unix_seconds);
        let first = w.saturating_sub(u64::from(self.policy.drift_tolerance()));
        let mut out = CandidateWindows {
            windows: [0; MAX_DRIFT as usize + 2],
            len: 0,
        };
        for (slot, window) in out.windows.iter_mut().zip(first..=w) {
            *slot = window;
            out.len += 1;
        }
        let next_start = (w + 1).saturating_mul(self.policy.window_seconds());
        if next_start.saturating_sub(unix_seconds) <= self.policy.clock_skew_seconds() {
            if let Some(slot) = out.windows.get_mut(out.len) {
                *slot = w + 1;
                out.len += 1;
            }
        }
        out
    }

    /// Checks `code` for `identity` at `unix_seconds`.
    ///
    /// `code` comes from [`OtpCode::parse`] (the one parser of submitted
    /// input); a code of another length than the policy's is
    /// [`VerifyError::Malformed`] before any HMAC. `counters[i]` is the use counter of `candidate_windows(unix_seconds)[i]`.
    /// Every candidate (window × key) is computed and compared in constant
    /// time; the result says which one matched.
    pub fn verify(
        &self,
        identity: &Identity,
        code: &OtpCode,
        unix_seconds: u64,
        counters: &[u32],
    ) -> Result<Match, VerifyError> {
        if code.digits() != self.policy.digits() {
            return Err(VerifyError::Malformed {
                expected: self.policy.digits(),
            });
        }
        let windows = self.candidate_windows(unix_seconds);
        if counters.len() != windows.len() {
            return Err(VerifyError::CounterCount {
                expected: windows.len(),
                actual: counters.len(),
            });
        }
        let id = identity.as_str().as_bytes();
        let mut found = subtle::Choice::from(0);
        let mut found_window = 0u64;
        let mut found_counter = 0u32;
        let mut found_key = 0u64;
        for (key_index, _) in self.macs.iter().enumerate() {
            for (&window, &counter) in windows.iter().zip(counters) {
                let candidate = OtpCode::from_value(
                    self.derive(key_index, id, window, counter),
                    self.policy.digits(),
                );
                let hit = candidate.ct_eq(code);
                // Keep the first hit; later hits do not overwrite it.
                let take = hit & !found;
                found_window.conditional_assign(&window, take);
                found_counter.conditional_assign(&counter, take);
                found_key.conditional_assign(&(key_index as u64), take);
                found |= hit;
            }
        }
        if bool::from(found) {
            Ok(Match {
                window: found_window,
                counter: found_counter,
                key_index: usize::try_from(found_key).unwrap_or(0),
            })
        } else {
            Err(VerifyError::NoMatch)
        }
    }

    /// [`OtpEngine::verify`] at the current system time.
    pub fn verify_now(
        &self,
        identity: &Identity,
        code: &OtpCode,
        counters: &[u32],
    ) -> Result<Match, VerifyError> {
        self.verify(identity, code, unix_now(), counters)
    }

    /// True remaining acceptance time of a code issued at `unix_seconds`:
    /// seconds left in the current window + drift × window_seconds.
    pub fn ttl_seconds(&self, unix_seconds: u64) -> u64 {
        let w = self.policy.window_seconds();
        let left = w - unix_seconds % w;
        // Saturating: times and windows near u64::MAX must not overflow.
        left.saturating_add(u64::from(self.policy.drift_tolerance()).saturating_mul(w))
    }

    /// Unix time at which a code issued at `unix_seconds` stops verifying.
    pub fn expires_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds.saturating_add(self.ttl_seconds(unix_seconds))
    }

    /// How long a store must keep a use counter or failure count of the
    /// current window so that it outlives the window's acceptance range.
    pub fn counter_ttl_seconds(&self) -> u64 {
        (u64::from(self.policy.drift_tolerance()) + 2).saturating_mul(self.policy.window_seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(policy: OtpPolicy) -> OtpEngine {
        let keys = OtpKeyRing::new(SecretBytes::new(b"0123456789abcdef".to_vec()), vec![]).unwrap();
        OtpEngine::new(policy, keys)
    }

    fn id(s: &str) -> Identity {
        Identity::parse(s).unwrap()
    }

    fn zeros(e: &OtpEngine, t: u64) -> Vec<u32> {
        vec![0; e.candidate_windows(t).len()]
    }

    #[test]
    fn previous_window_passes_and_two_back_fails() {
        let e = engine(OtpPolicy::default());
        let who = id("user@example.com");
        let t = 1_000 * 300 + 100; // 100 s into window 1000
        let code_w = e.generate_for_window(&who, 1000, 0);
        let code_w1 = e.generate_for_window(&who, 999, 0);
        let code_w2 = e.generate_for_window(&who, 998, 0);
        assert!(e.verify(&who, &code_w, t, &zeros(&e, t)).is_ok());
        assert_eq!(
            e.verify(&who, &code_w1, t, &zeros(&e, t)).unwrap().window,
            999
        );
        assert_eq!(
            e.verify(&who, &code_w2, t, &zeros(&e, t)),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn next_window_only_near_its_start() {
        let e = engine(OtpPolicy::default());
        let who = id("user@example.com");
        let code_next = e.generate_for_window(&who, 1001, 0);
        let far = 1000 * 300 + 100; // 200 s before window 1001
        let near = 1001 * 300 - 30; // exactly clock_skew before
        let too_far = 1001 * 300 - 31;
        assert_eq!(
            e.verify(&who, &code_next, far, &zeros(&e, far)),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            e.verify(&who, &code_next, too_far, &zeros(&e, too_far)),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            e.verify(&who, &code_next, near, &zeros(&e, near))
                .unwrap()
                .window,
            1001
        );
    }

    #[test]
    fn no_underflow_near_time_zero() {
        let e = engine(OtpPolicy::default());
        let who = id("u");
        assert_eq!(e.candidate_windows(0).as_slice(), &[0]);
        assert_eq!(e.candidate_windows(299).as_slice(), &[0, 1]);
        let c = e.generate(&who, 5, 0);
        assert!(e.verify(&who, &c, 5, &zeros(&e, 5)).is_ok());
    }

    #[test]
    fn codes_of_another_length_are_rejected_before_hmac() {
        let e = engine(OtpPolicy::default());
        let who = id("u");
        for other in ["12345", "1234567", "0000", "1234567890"] {
            let code = OtpCode::parse(other).unwrap();
            assert_eq!(
                e.verify(&who, &code, 1000, &zeros(&e, 1000)),
                Err(VerifyError::Malformed {
                    expected: Digits::Six
                }),
                "{other:?}"
            );
        }
    }

    #[test]
    fn use_counter_changes_the_code_and_voids_the_old_one() {
        let e = engine(OtpPolicy::default());
        let who = id("alice@example.com");
        let t = 1_700_000_100;
        let c0 = e.generate(&who, t, 0);
        let c1 = e.generate(&who, t, 1);
        assert_ne!(c0, c1);
        let windows = e.candidate_windows(t);
        let w = e.window_at(t);
        let after: Vec<u32> = windows.iter().map(|x| u32::from(*x == w)).collect();
        assert_eq!(e.verify(&who, &c0, t, &after), Err(VerifyError::NoMatch));
        let m = e.verify(&who, &c1, t, &after).unwrap();
        assert_eq!((m.window, m.counter), (w, 1));
    }

    #[test]
    fn previous_keys_verify_but_do_not_sign() {
        let old = SecretBytes::new(b"old-key-old-key-old-key!".to_vec());
        let new = SecretBytes::new(b"new-key-new-key-new-key!".to_vec());
        let before = OtpEngine::new(
            OtpPolicy::default(),
            OtpKeyRing::new(old.clone(), vec![]).unwrap(),
        );
        let after = OtpEngine::new(
            OtpPolicy::default(),
            OtpKeyRing::new(new.clone(), vec![old]).unwrap(),
        );
        let who = id("bob@example.com");
        let t = 1_700_000_000;
        let sent = before.generate(&who, t, 0);
        let m = after.verify(&who, &sent, t, &zeros(&after, t)).unwrap();
        assert_eq!(m.key_index, 1);
        let fresh = after.generate(&who, t, 0);
        assert_eq!(
            after
                .verify(&who, &fresh, t, &zeros(&after, t))
                .unwrap()
                .key_index,
            0
        );
    }

    #[test]
    fn ttl_is_time_left_plus_drift() {
        let e = engine(OtpPolicy::default());
        assert_eq!(e.ttl_seconds(300 * 10), 600);
        assert_eq!(e.ttl_seconds(300 * 10 + 299), 301);
        assert_eq!(e.expires_at(3000 + 100), 3000 + 300 + 300);
        let no_drift = engine(OtpPolicy::builder().drift_tolerance(0).build().unwrap());
        assert_eq!(no_drift.ttl_seconds(3000 + 100), 200);
    }

    #[test]
    fn counter_count_mismatch_is_an_error_not_a_panic() {
        let e = engine(OtpPolicy::default());
        assert!(matches!(
            e.verify(&id("u"), &OtpCode::parse("123456").unwrap(), 1000, &[]),
            Err(VerifyError::CounterCount { .. })
        ));
    }

    /// Found by cargo-fuzz (`otp_verify`): times and windows near `u64::MAX`
    /// overflowed (a panic in debug builds, a wrapped `expires_at` in release).
    #[test]
    fn extreme_times_and_windows_saturate_instead_of_overflowing() {
        let e = engine(OtpPolicy::default());
        assert_eq!(e.expires_at(u64::MAX - 5), u64::MAX);
        assert!(e.ttl_seconds(u64::MAX) >= 300);
        let huge = OtpPolicy::builder()
            .window_seconds(u64::MAX / 2)
            .drift_tolerance(10)
            .build()
            .unwrap();
        let e = engine(huge);
        assert_eq!(e.ttl_seconds(0), u64::MAX);
        assert_eq!(e.counter_ttl_seconds(), u64::MAX);
        assert_eq!(e.expires_at(7), u64::MAX);
    }
}
