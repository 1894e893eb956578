//! Integration tests of `otp-service`, built as one test binary (one link
//! step on small CI machines). Every test drives the public API only and
//! reads the code that was really delivered (a capturing `Delivery`), never
//! re-derives it.
//!
//! New tests go into one of these modules (or a new module declared here),
//! never into a new file directly under `tests/`: every file there is a
//! separate binary (kanidm's `DO_NOT_ADD_MORE_TESTS_HERE`).
//!
//! - [`harness`]: service builders, a fixed instant in mid-window, Redis
//!   stores on real `redis-server` processes (skipped with a message when it
//!   is absent; a failure under `OTP_E2E_REQUIRE_ALL=1`); the deliveries
//!   (`Outbox`, `FailingDelivery`) and keys come from `otp_testkit`.
//! - [`round_trip`]: request → code → verify → token, extra claims, input
//!   validation, delivery failures.
//! - [`single_use`]: replays, fresh codes, concurrent verifies (memory,
//!   Redis, Redis Cluster), the Python-compatible mode, the attempt budget,
//!   key rotation.
//! - [`limits`]: the six limits of SPEC §6, on memory and on Redis.
//! - [`hardening`]: issue 13's limit points (one decision, network keys,
//!   the daily limit per network, the attempt budget at the skew edge, the
//!   memory ceiling, round trips) on memory, Redis and Redis Cluster.
//! - [`store_outage`]: Redis killed and restarted; fail closed and open.
//! - [`metrics`]: the Prometheus text of the service metrics.
//! - [`sessions`]: SPEC §10 — refresh tokens, rotation with the grace and
//!   reuse rule (50 concurrent refreshes; a second replica on one Redis),
//!   lifetimes, logout, sign out everywhere, RFC 7009, failing closed.
//! - [`session_round_trips`]: a warm refresh, logout, revoke and sign out
//!   everywhere are each one client command (refresh: a script), counted with
//!   `MONITOR` on standalone and on every master of a 3-master Cluster.
//! - [`allowed_identities`]: `ALLOWED_IDENTITIES` (SPEC §11) — refused
//!   identities get the same answers, no code, the same limits.
//! - [`audit`]: audit events through an `AuditSink` — the request
//!   context's network (pseudonym) and request id, `sid`, identities only
//!   when asked, `sign_in` with sessions off.
//! - [`refused_tokens`]: malformed, forged, foreign-key, expired and
//!   access tokens at refresh/logout/revoke change nothing in the store
//!   (every Redis key compared) and emit no audit event; extra claims may
//!   not pose as `sid`, `auth_time` or `gen`.
//! - [`no_secrets_in_logs`]: codes, tokens, secrets and identities never
//!   reach a log line.

mod allowed_identities;
mod audit;
mod hardening;
mod harness;
mod limits;
mod metrics;
mod no_secrets_in_logs;
mod refused_tokens;
mod round_trip;
mod session_round_trips;
mod sessions;
mod single_use;
mod store_outage;
