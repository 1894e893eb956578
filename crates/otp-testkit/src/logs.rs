//! Log capture (feature `logs`): every tracing event emitted on the current
//! thread while the guard lives, as plain text, so a test can assert what
//! reached the logs and what never did (codes, tokens, secrets).

use std::sync::{Arc, Mutex, PoisonError};

/// The text written by the capturing subscriber (see [`capture_logs`]).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every tracing event (TRACE and up, all targets, no colours) on
/// this thread until the returned guard drops.
pub fn capture_logs() -> (tracing::subscriber::DefaultGuard, Logs) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Parallel tests each set a thread-local subscriber (or none): a
    // callsite first hit on another thread while this one was being
    // registered can keep a cached "never" interest and skip it.
    // Recompute every callsite's interest now that it is registered.
    tracing::callsite::rebuild_interest_cache();
    (guard, logs)
}
