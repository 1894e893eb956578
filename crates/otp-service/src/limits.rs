//! The six limits of SPEC §6 and the attempt budget's default (SPEC §3.3):
//! the OTP rules built on the store's primitives. Which subject each limit
//! is keyed by, and that a request's limits are one decision, is in
//! `service.rs`.

use otp_ratelimit::LimitPolicy;

/// The default attempt budget per code (`OTP_MAX_ATTEMPTS`, SPEC §3.3).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The six limits of SPEC §6. Configure each from its environment variables
/// (done by otp-server) or keep the defaults. The daily verify limit counts
/// per identity and client network; its per-identity ceiling is
/// [`crate::ServiceConfig::verify_daily_ceiling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// OTP sends per identity (`RATE_REQUEST_OTP_MAX` / `RATE_REQUEST_OTP_WINDOW`).
    /// Defaults to 5 per 600 s, name `request_identity`.
    pub request_per_identity: LimitPolicy,
    /// Verify attempts per identity (`RATE_VERIFY_OTP_MAX` / `RATE_VERIFY_OTP_WINDOW`);
    /// cleared on a successful verify. Defaults to 10 per 600 s, name
    /// `verify_identity`.
    pub verify_per_identity: LimitPolicy,
    /// Verify attempts per identity and client network per day
    /// (`RATE_VERIFY_OTP_DAILY_MAX`); not cleared on success. Defaults to 30 per 86400 s, name `verify_daily`.
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
