//! The message handed to a backend ([`OtpMessage`], carrying the workspace's
//! one zeroizing [`OtpCode`] from `otp-core`) and what a successful delivery
//! returns ([`DeliveryReceipt`]).
//!
//! The code is digits only ([`OtpCode::parse`] and the engine guarantee it),
//! which is what makes it safe to place in a mail header, a form field or a
//! JSON string without further escaping.

use std::fmt;

use otp_core::{Identity, IdentityKind, OtpCode};

/// One code to deliver: who gets it, the code, and how long it is valid.
///
/// Every message carries a random [`id`](OtpMessage::id) made at
/// construction. Retries of the same message keep it, so the webhook backend
/// sends the same `webhook-id` on every attempt and receivers can
/// de-duplicate.
#[derive(Clone)]
pub struct OtpMessage {
    identity: Identity,
    code: OtpCode,
    ttl_seconds: u64,
    expires_at: u64,
    id: String,
}

impl OtpMessage {
    /// Builds a message. `ttl_seconds` is the remaining validity the client
    /// is told; `expires_at` the same instant as unix seconds (time is an
    /// argument: the caller's clock decides).
    pub fn new(identity: Identity, code: OtpCode, ttl_seconds: u64, expires_at: u64) -> Self {
        OtpMessage {
            identity,
            code,
            ttl_seconds,
            expires_at,
            id: new_message_id(),
        }
    }

    /// The normalized recipient.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The recipient's kind (email, phone, opaque).
    pub fn kind(&self) -> IdentityKind {
        self.identity.kind()
    }

    /// The code. Never log it.
    pub fn code(&self) -> &OtpCode {
        &self.code
    }

    /// Remaining validity in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// Remaining validity in whole minutes, rounded up, at least 1 (what
    /// `{minutes}` in templates stands for).
    pub fn minutes(&self) -> u64 {
        self.ttl_seconds.div_ceil(60).max(1)
    }

    /// Expiry instant, unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Expiry instant as RFC 3339 UTC (`2026-11-27T12:00:00Z`).
    pub fn expires_at_rfc3339(&self) -> String {
        rfc3339_utc(self.expires_at)
    }

    /// The message id (`msg_` and 32 hex digits), stable across retries.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for OtpMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpMessage")
            .field("id", &self.id)
            .field("identity", &self.identity)
            .field("code", &self.code)
            .field("ttl_seconds", &self.ttl_seconds)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Proof of a successful delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The backend that delivered (`console`, `none`, `smtp`, `twilio`, `webhook`).
    pub backend: &'static str,
    /// The provider's id when it returns one: Twilio's message SID, the SMTP
    /// server's reply text, the webhook id sent.
    pub provider_id: Option<String>,
    /// Attempts it took (1 when the first attempt succeeded).
    pub attempts: u32,
}

/// A fresh message id, `msg_` and 32 hex digits of randomness: the
/// `webhook-id` of a Standard Webhooks message (the same on every retry).
pub fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS generator only fails when the OS has no entropy source at
    // all; a time-and-counter id is still unique within the process then.
    if otp_core::fill_random_id(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    otp_core::push_lower_hex(&mut id, &bytes);
    id
}

/// Formats unix seconds as RFC 3339 UTC, e.g. `1970-01-01T00:00:00Z`.
pub fn rfc3339_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ttl: u64) -> OtpMessage {
        OtpMessage::new(
            Identity::parse("a@example.com").unwrap(),
            OtpCode::parse("424242").unwrap(),
            ttl,
            1_800_000_000,
        )
    }

    #[test]
    fn message_debug_redacts_the_code() {
        let m = msg(300);
        let dbg = format!("{m:?}");
        assert!(!dbg.contains("424242"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
        assert!(dbg.contains("a@example.com"));
    }

    #[test]
    fn minutes_round_up_and_are_at_least_one() {
        assert_eq!(msg(0).minutes(), 1);
        assert_eq!(msg(59).minutes(), 1);
        assert_eq!(msg(60).minutes(), 1);
        assert_eq!(msg(61).minutes(), 2);
        assert_eq!(msg(300).minutes(), 5);
    }

    #[test]
    fn message_ids_are_unique_and_well_formed() {
        let a = msg(1);
        let b = msg(1);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 36);
        assert!(a.id().starts_with("msg_"));
        assert!(a.id()[4..]
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        // clones (retries) keep the id
        assert_eq!(a.clone().id(), a.id());
    }

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
