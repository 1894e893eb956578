//! Named limit policies: a strict sliding window with a stable name. Which
//! limits exist (the six of SPEC §6) and what they are keyed by is
//! otp-service's (`otp_service::Limits`).

use std::time::Duration;

/// One strict sliding-window limit: at most `max` allowed events per key in
/// any interval of length `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Stable short name; part of the storage key, so two policies with
    /// different names never share a budget. Use `[a-z0-9_]` only.
    pub name: &'static str,
    /// Events allowed per window. 0 denies every event.
    pub max: u32,
    /// Length of the sliding window (millisecond precision; must be at least
    /// 1 ms).
    pub window: Duration,
}

impl LimitPolicy {
    /// A policy named `name` allowing `max` events per `window_secs` seconds.
    pub const fn per_secs(name: &'static str, max: u32, window_secs: u64) -> Self {
        LimitPolicy {
            name,
            max,
            window: Duration::from_secs(window_secs),
        }
    }
}
