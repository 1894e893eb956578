//! The log's writer: lines buffered in memory and written to stderr by one
//! background thread, in batches, without ever dropping a line.
//!
//! stderr is unbuffered, so writing every event straight to it costs one
//! `write(2)` on the request's thread per line — on the routes that write
//! an audit event (sign-in, wrong code, refresh, …) as much system time as
//! the request's own network I/O (docs/benchmarks.md). [`LogWriter`]
//! instead appends each line, whole, to a shared buffer; the thread wakes
//! when the buffer stops being empty, lets lines gather for at most
//! [`LINGER`], and writes them with one `write(2)`.
//!
//! Nothing is lost or reordered:
//! - a writer finding [`HIGH_WATER`] bytes already waiting blocks until the
//!   thread has taken them (back-pressure instead of dropping: audit events
//!   are security records);
//! - dropping the [`LogGuard`] (the end of `serve`, a fatal error on its
//!   way out) writes everything still buffered and joins the thread,
//!   however long stderr takes; lines logged after that go straight to
//!   stderr;
//! - [`LogWriter::install_panic_flush`] writes what is buffered before a
//!   panic's message.
//!
//! What a buffer cannot survive is the process dying without running any
//! code (SIGKILL, an abort outside a panic): at most the last [`LINGER`]
//! of lines is then missing. docs/operations.md ("Logs") says so.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The longest a line waits in the buffer before the thread writes it:
/// 5 ms.
pub const LINGER: Duration = Duration::from_millis(5);

/// Bytes waiting at which the thread writes at once and new lines block
/// until it has taken them: 256 KiB.
pub const HIGH_WATER: usize = 256 * 1024;

/// The buffered stderr writer of the log (a [`MakeWriter`] for
/// tracing-subscriber). Cheap to clone; every clone appends to the same
/// buffer.
#[derive(Clone, Debug)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer's thread running; dropping it writes every buffered
/// line and joins the thread.
#[derive(Debug)]
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// The thread waits here for lines (and for [`HIGH_WATER`] or close
    /// during the linger).
    lines: Condvar,
    /// Writers blocked by [`HIGH_WATER`] wait here for the thread to take
    /// the buffer.
    room: Condvar,
    /// Where batches go: stderr, or a test's sink.
    /// Locked while the state is still held (state, then output), so
    /// batches leave in the order their lines arrived.
    out: Mutex<Out>,
}

#[derive(Debug, Default)]
struct State {
    buf: Vec<u8>,
    closed: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

type Out = Box<dyn Write + Send>;

impl LogWriter {
    /// A writer to stderr and the guard of its thread.
    pub fn stderr() -> std::io::Result<(LogWriter, LogGuard)> {
        Self::to(Box::new(std::io::stderr()))
    }

    /// A writer to `out` (tests) and the guard of its thread.
    pub fn to(out: Out) -> std::io::Result<(LogWriter, LogGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            lines: Condvar::new(),
            room: Condvar::new(),
            out: Mutex::new(out),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || worker.run())?;
        Ok((
            LogWriter {
                shared: Arc::clone(&shared),
            },
            LogGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Chains a panic hook that first writes the buffered lines, so that
    /// they precede the panic's message (the previous hook prints it).
    pub fn install_panic_flush(&self) {
        let shared = Arc::clone(&self.shared);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_lock`: a panic inside our own critical section must not
            // deadlock the hook (there is none today: those sections only
            // move bytes).
            if let Ok(mut state) = shared.state.try_lock() {
                let batch = std::mem::take(&mut state.buf);
                let out = shared.out();
                drop(state);
                shared.room.notify_all();
                write_batch(out, &batch);
            }
            previous(info);
        }));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The sections under this lock only move bytes; a poisoned lock
        // still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line (or, once the guard is gone and the buffer
    /// drained, writes it at once).
    fn append(&self, line: &[u8]) {
        let mut state = self.lock();
        // Also after close: the thread drains the buffer before it ends.
        while state.buf.len() >= HIGH_WATER {
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed && state.buf.is_empty() {
            let out = self.out();
            drop(state);
            write_batch(out, line);
            return;
        }
        let was_empty = state.buf.is_empty();
        state.buf.extend_from_slice(line);
        let full = state.buf.len() >= HIGH_WATER;
        drop(state);
        // Only the empty → waiting and the → full transitions concern the
        // thread: one wake-up per batch, not per line.
        if was_empty || full {
            self.lines.notify_one();
        }
    }

    /// The thread: wait for lines, linger, take the buffer, write it.
    fn run(&self) {
        let mut spare = Vec::new();
        loop {
            let mut state = self.lock();
            while state.buf.is_empty() && !state.closed {
                state = self
                    .lines
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.buf.is_empty() {
                // Closed and drained.
                return;
            }
            let (mut state, _) = self
                .lines
                .wait_timeout_while(state, LINGER, |s| s.buf.len() < HIGH_WATER && !s.closed)
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut state.buf, &mut spare);
            let out = self.out();
            drop(state);
            self.room.notify_all();
            write_batch(out, &spare);
            spare.clear();
            // Keep a batch's worth of capacity, not a burst's.
            spare.shrink_to(HIGH_WATER);
        }
    }
}

fn write_batch(mut out: MutexGuard<'_, Out>, batch: &[u8]) {
    if batch.is_empty() {
        return;
    }
    // As with an unbuffered stderr, a log that cannot be written is not an
    // error of the request that logged.
    let _ = out.write_all(batch);
    let _ = out.flush();
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.lines.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            // The thread writes everything that was buffered before it
            // returns; a panic in it leaves the rest to be written here.
            if thread.join().is_err() {
                let mut state = self.shared.lock();
                let batch = std::mem::take(&mut state.buf);
                let out = self.shared.out();
                drop(state);
                self.shared.room.notify_all();
                write_batch(out, &batch);
            }
        }
    }
}

/// One event's writer: tracing-subscriber hands it each formatted line in
/// a single `write_all`.
#[derive(Debug)]
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.append(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.shared.append(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A sink that records each batch it was handed.
    #[derive(Clone, Default)]
    struct Batches(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Batches {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Batches {
        fn joined(&self) -> Vec<u8> {
            self.0.lock().unwrap().concat()
        }
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    fn line(writer: &LogWriter, text: &str) {
        writer.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_logged_together_are_written_in_one_batch_in_order() {
        let sink = Batches::default();
        let (writer, guard) = LogWriter::to(Box::new(sink.clone())).unwrap();
        let mut expected = String::new();
        for i in 0..100 {
            let text = format!("line {i}\n");
            line(&writer, &text);
            expected.push_str(&text);
        }
        drop(guard);
        assert_eq!(sink.joined(), expected.as_bytes());
        assert!(
            sink.count() <= 2,
            "100 lines within the linger: {} writes",
            sink.count()
        );
    }

    #[test]
    fn a_line_reaches_the_output_within_the_linger_without_a_flush() {
        let sink = Batches::default();
        let (writer, _guard) = LogWriter::to(Box::new(sink.clone())).unwrap();
        line(&writer, "one\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.joined() != b"one\n" {
            assert!(Instant::now() < deadline, "the line was not written");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A sink that blocks until released: stderr piped to a stalled reader.
    struct Stalled {
        inner: Batches,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_blocks_the_writer_instead_of_dropping_lines() {
        let sink = Batches::default();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let stalled = Stalled {
            inner: sink.clone(),
            gate: Arc::clone(&gate),
        };
        let (writer, guard) = LogWriter::to(Box::new(stalled)).unwrap();
        let chunk = "x".repeat(1023) + "\n";
        // Two buffers' worth while the output is stalled: the logging
        // thread must block, not drop.
        let total = 2 * HIGH_WATER / chunk.len() + 8;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let logging = {
            let writer = writer.clone();
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                for _ in 0..total {
                    line(&writer, &chunk);
                }
                done_tx.send(()).unwrap();
            })
        };
        assert!(
            done_rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the writer went on although nothing could be written"
        );
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer resumed once the output drained");
        logging.join().unwrap();
        drop(guard);
        assert_eq!(sink.joined(), chunk.repeat(total).as_bytes());
    }

    #[test]
    fn dropping_the_guard_writes_everything_and_later_lines_go_straight_out() {
        let sink = Batches::default();
        let (writer, guard) = LogWriter::to(Box::new(sink.clone())).unwrap();
        line(&writer, "before\n");
        drop(guard);
        assert_eq!(sink.joined(), b"before\n");
        line(&writer, "after\n");
        assert_eq!(sink.joined(), b"before\nafter\n");
    }

    #[test]
    fn tracing_events_arrive_whole_and_in_order() {
        let sink = Batches::default();
        let (writer, guard) = LogWriter::to(Box::new(sink.clone())).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..50 {
                tracing::info!(target: "audit", event = "refresh", n = i);
            }
        });
        drop(guard);
        let text = String::from_utf8(sink.joined()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 50);
        for (i, l) in lines.iter().enumerate() {
            assert!(l.ends_with(&format!("event=\"refresh\" n={i}")), "{l}");
        }
    }
}
