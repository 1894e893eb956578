//! The pretty log line's parts that tracing-subscriber formats with more
//! work than the line needs, rewritten to write the same bytes:
//!
//! - [`PlainFields`], the field formatter of `LOG_FORMAT=pretty` without
//!   colours: what `DefaultFields` writes when ANSI colours are off.
//!   `DefaultFields` wraps every field name and every `=` in a colour
//!   style even when colours are off (two styled strings and a nested
//!   `write!` per field: the largest single cost of an audit event's log
//!   line, whose seven fields, plus the request span's id, are formatted on
//!   every sign-in, wrong code and refresh; docs/benchmarks.md).
//!   [`PlainFields`] writes `name=` directly and a string value's quotes
//!   directly when it needs no escaping; every other case — the `message`
//!   field (whose ANSI sanitizing stays tracing-subscriber's), `r#` names,
//!   errors, strings that need escapes — is handed to `DefaultFields`' own
//!   visitor, so the bytes are the same (test
//!   `plain_fields_write_what_default_fields_write`).
//! - [`PlainLine`], the pretty line around them without colours: what
//!   the default (`Full`) event format writes with colours off, without
//!   its colour-style calls around the level, span names, braces, colons
//!   and target (test
//!   `plain_line_writes_what_the_full_format_writes_without_colours`).
//! - [`UtcMicros`], the timestamp of every line (pretty and JSON): what
//!   tracing-subscriber's `SystemTime` timer writes
//!   (`2026-12-01T20:50:06.123456Z`), with the date and time of day
//!   formatted once per second per thread instead of seven padded
//!   integers per line.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// `DefaultFields`' output without colours, cheaper. Only for a writer
/// without ANSI colours (with colours, names are italic and `=` dimmed:
/// use `DefaultFields` then).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Whether `DefaultFields` writes this field as `name=value` with
    /// unstyled name: not the message, not a raw identifier, not log
    /// metadata.
    fn is_plain(name: &str) -> bool {
        name != "message" && !name.starts_with("r#") && !name.starts_with("log.")
    }

    /// `DefaultFields`' separator and `name=`.
    fn name(&mut self, name: &str) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(name)?;
        self.writer.write_char('=')
    }

    /// One field: nothing after an error or for log metadata (already
    /// shown by the event formatter); `name=` and `value` for a plain name
    /// when `plain`; otherwise `DefaultFields`' own visitor (`delegate`).
    fn field(
        &mut self,
        field: &Field,
        plain: bool,
        delegate: impl FnOnce(&mut DefaultVisitor<'_>),
        value: impl FnOnce(&mut Writer<'_>) -> fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        if !plain || !Self::is_plain(name) {
            return self.delegate(delegate);
        }
        self.result = self.name(name).and_then(|()| value(&mut self.writer));
    }

    /// One field through `DefaultFields`' own visitor.
    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut inner = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut inner);
        self.result = inner.finish();
        self.is_empty = false;
    }
}

/// Returns true if and only if `<str as Debug>` writes `s` unchanged
/// between its quotes: printable ASCII other than `"` and `\`.
///
/// Branch-free per byte and without early exit, so the compiler
/// vectorizes it (an audit event checks four 22–32 byte values).
fn needs_no_escape(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| {
        ok & (b.wrapping_sub(0x20) < 0x5f) & (b != b'"') & (b != b'\\')
    })
}

/// `n` in decimal, as `{:?}` writes an integer.
fn write_decimal(w: &mut Writer<'_>, negative: bool, mut n: u64) -> fmt::Result {
    let mut digits = [0u8; 21];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` < 10: the cast cannot truncate.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        digits[at] = b'-';
    }
    // ASCII digits and a sign.
    w.write_str(std::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let plain = needs_no_escape(value);
        self.field(
            field,
            plain,
            |v| v.record_str(field, value),
            |w| {
                w.write_char('"')?;
                w.write_str(value)?;
                w.write_char('"')
            },
        );
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(
            field,
            true,
            |v| v.record_debug(field, &value),
            |w| write_decimal(w, false, value),
        );
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(
            field,
            true,
            |v| v.record_debug(field, &value),
            |w| write_decimal(w, value < 0, value.unsigned_abs()),
        );
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(
            field,
            true,
            |v| v.record_bool(field, value),
            |w| w.write_str(if value { "true" } else { "false" }),
        );
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, false, |v| v.record_error(field, value), |_| Ok(()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(
            field,
            true,
            |v| v.record_debug(field, value),
            |w| write!(w, "{value:?}"),
        );
    }
}

/// The lines' timestamp: UTC, microseconds, as tracing-subscriber's
/// `SystemTime` timer writes it (`2026-12-01T20:50:06.123456Z`).
#[derive(Debug, Default, Clone, Copy)]
pub struct UtcMicros;

/// Unix seconds of 10000-01-01: from there (and before 1970)
/// tracing-subscriber's own formatting is used.
const YEAR_10000: u64 = 253_402_300_800;

thread_local! {
    /// The last second formatted on this thread and its
    /// `YYYY-MM-DDTHH:MM:SS`.
    static LAST_SECOND: std::cell::RefCell<(u64, String)> =
        const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

impl UtcMicros {
    /// `time` formatted, or `None` outside 1970..10000.
    fn write_at(w: &mut impl fmt::Write, time: std::time::SystemTime) -> Option<fmt::Result> {
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        let secs = since.as_secs();
        if secs >= YEAR_10000 {
            return None;
        }
        let mut micros = [b'0'; 6];
        let mut n = since.subsec_micros();
        for digit in micros.iter_mut().rev() {
            // `n % 10` < 10: the cast cannot truncate.
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        // Six ASCII digits.
        let micros = std::str::from_utf8(&micros).unwrap_or("000000");
        Some(LAST_SECOND.with(|last| {
            let mut last = last.borrow_mut();
            if last.0 != secs {
                let full = otp_delivery::rfc3339_utc(secs);
                // `YYYY-MM-DDTHH:MM:SSZ` for years below 10000.
                last.1 = full.trim_end_matches('Z').to_owned();
                last.0 = secs;
            }
            w.write_str(&last.1)?;
            w.write_char('.')?;
            w.write_str(micros)?;
            w.write_char('Z')
        }))
    }
}

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match Self::write_at(w, std::time::SystemTime::now()) {
            Some(result) => result,
            None => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// The pretty line without colours: what tracing-subscriber's default
/// (`Full`) event format writes when ANSI colours are off — timestamp,
/// level, the span scope (`name{fields}:` from the root), target, fields —
/// without the colour-style calls around each part. Generic over the
/// timer so that tests compare it with a fixed one.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainLine<T = UtcMicros> {
    timer: T,
}

impl<T> PlainLine<T> {
    /// The line format with `timer`'s timestamps.
    pub fn with_timer(timer: T) -> Self {
        PlainLine { timer }
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Records of the `log` crate carry their own level and target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(match *meta.level() {
            Level::TRACE => "TRACE",
            Level::DEBUG => "DEBUG",
            Level::INFO => " INFO",
            Level::WARN => " WARN",
            Level::ERROR => "ERROR",
        })?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::DefaultFields;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer \"failure\"")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner cause")]
    struct Inner;

    /// Every kind of field the server logs, and the escapes around them.
    fn events() {
        let span = tracing::info_span!("request", request_id = %"8c02-ab", n = 3u64);
        let _entered = span.enter();
        tracing::info!(
            target: "audit",
            event = "refresh",
            id = %"msg_5ad1",
            time = 1_796_149_031u64,
            subject = %"f2b8",
            sid = Some("_O9X939Fu1V_wKyLVyxJ7A"),
            network = None::<&str>,
            request_id = "8c02",
            limit = Some("verify_per_ip"),
        );
        tracing::info!(
            quoted = "a \"b\" \\ c",
            tab = "x\ty",
            unicode = "é ☃",
            empty = ""
        );
        tracing::warn!(backend = "smtp", error = %Outer(Inner), "OTP delivery failed");
        let err = Outer(Inner);
        tracing::error!(
            error = &err as &(dyn std::error::Error + 'static),
            "with sources"
        );
        tracing::info!(r#type = "raw", flag = true, neg = -5i64, f = 1.5f64, dbg = ?vec!["a"]);
        tracing::info!(
            zero = 0u64,
            max = u64::MAX,
            min = i64::MIN,
            off = false,
            r#raw_n = 7u64,
            ctl = "bell\x07",
            del = "x\x7f",
            tilde = "~ !"
        );
        tracing::info!("message only: \x1b[31m escaped {}", 7);
        tracing::info!(message = "message as a field", after = 1);
        let inner = tracing::info_span!("inner");
        let _inner = inner.enter();
        tracing::info!(kind = "email");
    }

    fn render<N>(fields: N) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || out.clone())
            .fmt_fields(fields)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plain_fields_write_what_default_fields_write() {
        let default = render(DefaultFields::new());
        let plain = render(PlainFields);
        assert_eq!(plain, default);
        // the comparison covered what it should
        assert!(default.contains(r#"request{request_id=8c02-ab n=3}: audit: event="refresh" id=msg_5ad1 time=1796149031 subject=f2b8 sid="_O9X939Fu1V_wKyLVyxJ7A" request_id="8c02" limit="verify_per_ip""#), "{default}");
        assert!(
            default.contains(r#"quoted="a \"b\" \\ c" tab="x\ty""#),
            "{default}"
        );
        assert!(default.contains("error.sources="), "{default}");
        assert!(default.contains("\\x1b[31m"), "{default}");
        assert!(
            default.contains(
                "zero=0 max=18446744073709551615 min=-9223372036854775808 off=false raw_n=7 "
            ),
            "{default}"
        );
    }
    fn at(unix: u64, micros: u32) -> String {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(unix, micros * 1000 + 999);
        let mut out = String::new();
        UtcMicros::write_at(&mut out, t).unwrap().unwrap();
        out
    }

    #[test]
    fn utc_micros_writes_rfc3339_with_microseconds_like_tracing_subscriber() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_796_149_031, 123_456), "2026-12-01T18:17:11.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        // the same second twice (cached), then the next
        assert_eq!(at(1_796_149_031, 5), "2026-12-01T18:17:11.000005Z");
        assert_eq!(at(1_796_149_032, 5), "2026-12-01T18:17:12.000005Z");
        let far = std::time::UNIX_EPOCH + std::time::Duration::from_secs(YEAR_10000);
        assert!(UtcMicros::write_at(&mut String::new(), far).is_none());

        // The same shape as tracing-subscriber's timer, read back to back.
        let render = |timer: &dyn FormatTime| {
            let mut s = String::new();
            timer.format_time(&mut Writer::new(&mut s)).unwrap();
            s
        };
        let ours = render(&UtcMicros);
        let theirs = render(&tracing_subscriber::fmt::time::SystemTime);
        assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
        let shape = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_ascii_digit() { '0' } else { c })
                .collect()
        };
        assert_eq!(shape(&ours), shape(&theirs));
        assert_eq!(
            ours[..10],
            theirs[..10],
            "same day (unless run at midnight)"
        );
    }
    /// A timer that always writes the same text, so that two formatters'
    /// lines can be compared byte for byte.
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-01T20:50:06.123456Z")
        }
    }

    fn more_events() {
        events();
        tracing::trace!(target: "otp_http::access", route = "/healthz", "request");
        tracing::debug!(a = 1);
        let outer = tracing::debug_span!("outer", x = "y");
        let _o = outer.enter();
        let empty = tracing::info_span!("no_fields");
        let _e = empty.enter();
        tracing::warn!("{}", "nested spans");
    }

    #[test]
    fn plain_line_writes_what_the_full_format_writes_without_colours() {
        let render = |plain: bool| {
            let buf = Buf::default();
            let out = buf.clone();
            let builder = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || out.clone());
            if plain {
                let s = builder
                    .fmt_fields(PlainFields)
                    .event_format(PlainLine::with_timer(Fixed))
                    .finish();
                tracing::subscriber::with_default(s, more_events);
            } else {
                let s = builder.with_timer(Fixed).finish();
                tracing::subscriber::with_default(s, more_events);
            }
            let bytes = buf.0.lock().unwrap().clone();
            String::from_utf8(bytes).unwrap()
        };
        let full = render(false);
        let plain = render(true);
        assert_eq!(plain, full);
        assert!(full.contains("2026-12-01T20:50:06.123456Z  WARN outer{x=\"y\"}:no_fields: otp_server::log_format::tests: nested spans"), "{full}");
        assert!(
            full.contains("TRACE otp_http::access: request route=\"/healthz\""),
            "{full}"
        );
        assert!(full.contains(" INFO request{request_id=8c02-ab n=3}:inner: otp_server::log_format::tests: kind=\"email\""), "{full}");
        assert_eq!(full.lines().count(), 12, "{full}");
    }
}
