//! Named limit policies and the six default limits of SPEC §6.

use std::time::Duration;

/// The default attempt budget per code (`OTP_MAX_ATTEMPTS`, SPEC §3.3): the
/// `max_attempts` argument of [`crate::UseCounterStore::record_failure`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

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

/// The six limits of SPEC §6. Configure each from its environment variables
/// (done by otp-server) or keep the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// OTP sends per identity (`RATE_REQUEST_OTP_MAX` / `RATE_REQUEST_OTP_WINDOW`).
    /// Defaults to 5 per 600 s, name `request_identity`.
    pub request_per_identity: LimitPolicy,
    /// Verify attempts per identity (`RATE_VERIFY_OTP_MAX` / `RATE_VERIFY_OTP_WINDOW`);
    /// cleared on a successful verify. Defaults to 10 per 600 s, name
    /// `verify_identity`.
    pub verify_per_identity: LimitPolicy,
    /// Verify attempts per identity per day (`RATE_VERIFY_OTP_DAILY_MAX`); not
    /// cleared on success. Defaults to 30 per 86400 s, name `verify_daily`.
    pub verify_daily: LimitPolicy,
    /// OTP sends per client IP (`RATE_REQUEST_OTP_PER_IP_MAX` / `_WINDOW`).
    /// Defaults to 20 per 600 s, name `request_ip`.
    pub request_per_ip: LimitPolicy,
    /// Verify attempts per client IP (`RATE_VERIFY_OTP_PER_IP_MAX` / `_WINDOW`).
    /// Defaults to 60 per 600 s, name `verify_ip`.
    pub verify_per_ip: LimitPolicy,
    /// OTP sends overall, a cost guard against SMS pumping
    /// (`RATE_GLOBAL_SEND_MAX` / `RATE_GLOBAL_SEND_WINDOW`); use one constant
    /// key such as [`Limits::GLOBAL_KEY`]. Defaults to 1000 per 3600 s, name
    /// `global_send`.
    pub global_send: LimitPolicy,
}

impl Limits {
    /// The key to check [`Limits::global_send`] under.
    pub const GLOBAL_KEY: &'static str = "global";

    /// All six policies, in declaration order.
    pub fn all(&self) -> [LimitPolicy; 6] {
        [
            self.request_per_identity,
            self.verify_per_identity,
            self.verify_daily,
            self.request_per_ip,
            self.verify_per_ip,
            self.global_send,
        ]
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_per_identity: LimitPolicy::per_secs("request_identity", 5, 600),
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 10, 600),
            verify_daily: LimitPolicy::per_secs("verify_daily", 30, 86_400),
            request_per_ip: LimitPolicy::per_secs("request_ip", 20, 600),
            verify_per_ip: LimitPolicy::per_secs("verify_ip", 60, 600),
            global_send: LimitPolicy::per_secs("global_send", 1000, 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_spec_table() {
        let l = Limits::default();
        let got: Vec<(u32, u64)> = l
            .all()
            .iter()
            .map(|p| (p.max, p.window.as_secs()))
            .collect();
        assert_eq!(
            got,
            vec![
                (5, 600),
                (10, 600),
                (30, 86_400),
                (20, 600),
                (60, 600),
                (1000, 3600)
            ]
        );
        let mut names: Vec<&str> = l.all().iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 6, "policy names must be distinct");
    }
}
