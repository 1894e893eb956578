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

/// One capture at a time per process: two thread-local subscribers
/// registered and dropped concurrently race in tracing's interest cache and
/// global level hint, and a capture could then miss every event.
static CAPTURING: Mutex<()> = Mutex::new(());

/// Keeps a capture going (see [`capture_logs`]); the next capture of the
/// process starts once it drops.
pub struct CaptureGuard {
    _subscriber: tracing::subscriber::DefaultGuard,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Captures every tracing event (TRACE and up, all targets, no colours) on
/// this thread until the returned guard drops. Captures of parallel tests
/// take turns.
pub fn capture_logs() -> (CaptureGuard, Logs) {
    let turn = CAPTURING.lock().unwrap_or_else(PoisonError::into_inner);
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let subscriber = tracing::subscriber::set_default(subscriber);
    // A callsite first hit on another thread while this subscriber was being
    // registered can keep a cached "never" interest: recompute them all.
    tracing::callsite::rebuild_interest_cache();
    (
        CaptureGuard {
            _subscriber: subscriber,
            _turn: turn,
        },
        logs,
    )
}
