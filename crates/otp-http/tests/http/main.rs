//! Integration tests of `otp-http`, built as one test binary (one link
//! step). New tests go into one of these modules (or a new module declared
//! here), never into a new file directly under `tests/`: every file there
//! is a separate binary (kanidm's `DO_NOT_ADD_MORE_TESTS_HERE`).
//!
//! - [`support`]: the harness: a service over a real store with an
//!   `Outbox` delivery, the app exactly as `otp-server` builds it
//!   (in-process or bound on 127.0.0.1:0), requests and replies.
//! - [`routes`]: every route and every failure row of the SPEC §5 table.
//! - [`abuse`]: single use, the attempt budget and the abuse limits over
//!   HTTP (SPEC §3.3, §5, §6).
//! - [`allowed_identities`]: `ALLOWED_IDENTITIES` (SPEC §11) — a refused
//!   identity's request and verify answer as an allowed one's, no code sent.
//! - [`cors_docs`]: CORS, the OpenAPI document, the offline Swagger UI,
//!   mounting under a prefix.
//! - [`fast_lane`]: the forward-auth fast lane answers as the app does.
//! - [`forward_auth`]: `GET /api/v1/token/verify` with a bearer token or
//!   the `otp_session` cookie (SPEC §11).
//! - [`python_compat`]: the Python service's API tests, reproduced.
//! - [`redis_store`]: the API over a real Redis: outage and recovery, single
//!   use across requests and replicas.
//! - [`sessions`]: SPEC §10 over HTTP — refresh, logout, RFC 7009
//!   revoke, 50 concurrent refreshes over a real server.
//! - [`session_checks`]: the checklist's extra SPEC §10 cases — an
//!   expired refresh token, RFC 7009 hints and bodies, `SESSIONS=off`.
//! - [`transcript`]: captures the request/response pairs of `docs/api.md`
//!   (ignored by default; see the module).

mod abuse;
mod allowed_identities;
mod cors_docs;
mod fast_lane;
mod forward_auth;
mod gate;
mod python_compat;
mod redis_store;
mod routes;
mod session_checks;
mod sessions;
mod support;
mod transcript;
