//! Integration tests of `otp-delivery`, built as one test binary (one link
//! step). New tests go into one of these modules (or a new module declared
//! here), never into a new file directly under `tests/`: every file there
//! is a separate binary (kanidm's `DO_NOT_ADD_MORE_TESTS_HERE`). Each
//! backend's module compiles only with its feature (`--all-features` runs
//! them all).
//!
//! - [`support`]: a fixed message, waiting for the sinks' files, a server
//!   that never answers; the real sinks come from `otp_testkit::sinks`.
//! - [`smtp`] (feature `smtp`): against a real SMTP server (aiosmtpd):
//!   plain, STARTTLS, implicit TLS, authentication, rejections, header
//!   injection.
//! - [`twilio`] (feature `twilio`): against wiremock playing Twilio's
//!   Messages API (the one mocked component).
//! - [`webhook`] (feature `webhook`): against a receiver that verifies with
//!   the official Standard Webhooks library.
//! - [`auto_and_logs`] (all three): `DELIVERY_BACKEND=auto` over the real
//!   backends with every tracing event captured; no code in any log line.

mod auto_and_logs;
mod smtp;
mod support;
mod twilio;
mod webhook;
