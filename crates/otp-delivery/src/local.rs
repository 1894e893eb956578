//! Backends without network I/O: [`ConsoleDelivery`] (development: prints
//! the code) and [`NoopDelivery`] (benchmarks and tests: does nothing).

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{DeliveryError, DeliveryErrorKind};
use crate::message::{DeliveryReceipt, OtpMessage};
use crate::Delivery;

/// Development backend (`DELIVERY_BACKEND=console`, the default): prints the
/// identity, the code and its validity as a readable block to stdout.
///
/// Printing the code is its whole purpose and the only place in the system
/// where a code is printed. It goes to stdout with `write!`, never through
/// `tracing`, so log pipelines never see it. Do not use it in production.
pub struct ConsoleDelivery {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for ConsoleDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleDelivery")
    }
}

impl Default for ConsoleDelivery {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleDelivery {
    /// Prints to the process's stdout.
    pub fn new() -> Self {
        Self::with_writer(Box::new(std::io::stdout()))
    }

    /// Prints to `out` instead (tests, or a terminal other than stdout).
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        ConsoleDelivery {
            out: Mutex::new(out),
        }
    }

    /// The block printed for `message`.
    pub fn render(message: &OtpMessage) -> String {
        let line = "=".repeat(56);
        format!(
            "{line}\n  One-time code (console delivery, development only)\n  identity   : {} ({})\n  code       : {}\n  valid for  : {} minute{} ({} s)\n  expires at : {} (unix {})\n{line}\n",
            message.identity().as_str(),
            message.kind().as_str(),
            message.code().as_str(),
            message.minutes(),
            if message.minutes() == 1 { "" } else { "s" },
            message.ttl_seconds(),
            message.expires_at_rfc3339(),
            message.expires_at(),
        )
    }
}

#[async_trait]
impl Delivery for ConsoleDelivery {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn deliver(&self, message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        let block = Self::render(message);
        // A few hundred bytes to a terminal or pipe; the lock is never held
        // across an await.
        let result = match self.out.lock() {
            Ok(mut out) => out.write_all(block.as_bytes()).and_then(|()| out.flush()),
            Err(_) => Err(std::io::Error::other("console writer lock poisoned")),
        };
        result.map_err(|e| {
            DeliveryError::new(
                "console",
                DeliveryErrorKind::Other,
                format!("writing to stdout: {e}"),
            )
        })?;
        Ok(DeliveryReceipt {
            backend: "console",
            provider_id: None,
            attempts: 1,
        })
    }
}

/// Does nothing and succeeds (`DELIVERY_BACKEND=none`). For load tests and
/// benchmarks only: with it, nobody ever receives a code.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopDelivery;

#[async_trait]
impl Delivery for NoopDelivery {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn deliver(&self, _message: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        Ok(DeliveryReceipt {
            backend: "none",
            provider_id: None,
            attempts: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::Identity;
    use otp_core::OtpCode;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn console_prints_identity_code_and_validity() {
        let buf = Buf::default();
        let d = ConsoleDelivery::with_writer(Box::new(buf.clone()));
        let m = OtpMessage::new(
            Identity::parse("Alice@Example.com").unwrap(),
            OtpCode::parse("135790").unwrap(),
            300,
            1_800_000_000,
        );
        let r = d.deliver(&m).await.unwrap();
        assert_eq!(r.backend, "console");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("alice@example.com (email)"), "{text}");
        assert!(text.contains("code       : 135790"), "{text}");
        assert!(text.contains("valid for  : 5 minutes (300 s)"), "{text}");
        assert!(
            text.contains("2027-01-15T08:00:00Z (unix 1800000000)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn noop_succeeds_without_output() {
        let m = OtpMessage::new(
            Identity::parse("u").unwrap(),
            OtpCode::parse("1234").unwrap(),
            1,
            1,
        );
        assert_eq!(NoopDelivery.deliver(&m).await.unwrap().backend, "none");
    }
}
