//! Injectable time for the memory backend.
//!
//! The memory backend only needs a monotonic measure of elapsed time; the
//! Redis backend takes time from the Redis server (`TIME` inside its scripts)
//! and ignores any [`Clock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: time elapsed since an arbitrary fixed origin.
pub trait Clock: Send + Sync + 'static {
    /// Time since this clock's origin. Must never decrease.
    fn now(&self) -> Duration;
}

/// The real monotonic clock ([`Instant`]), origin at construction.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for tests (nanosecond resolution).
/// Share it as `Arc<ManualClock>` and pass a clone to
/// [`crate::MemoryStore::with_clock`]; then [`ManualClock::advance`] lets
/// windows pass instantly and makes every `Retry-After` exact.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Duration) -> Self {
        ManualClock {
            nanos: AtomicU64::new(u64::try_from(start.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(add))
            });
    }

    /// Sets the clock to `t`; ignored if `t` is earlier than the current
    /// reading (a [`Clock`] never goes backwards).
    pub fn set(&self, t: Duration) {
        let t = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(t, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = ManualClock::new(Duration::from_secs(10));
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), Duration::from_millis(11_500));
        c.set(Duration::from_secs(1));
        assert_eq!(c.now(), Duration::from_millis(11_500));
        c.set(Duration::from_secs(20));
        assert_eq!(c.now(), Duration::from_secs(20));
    }
}
