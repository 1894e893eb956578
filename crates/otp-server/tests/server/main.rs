//! Integration tests of `otp-server`, built as one test binary (one link
//! step for the whole crate). New tests go into one of these modules (or a
//! new module declared here), never into a new file directly under
//! `tests/`: every file there is a separate binary (kanidm's
//! `DO_NOT_ADD_MORE_TESTS_HERE`). Run one area with its module path, e.g.
//! `cargo test -p otp-server --test server sdk_e2e::`.
//!
//! Harness modules:
//! - [`support`]: runs the REAL binary (`CARGO_BIN_EXE_otp-server`) on a free
//!   loopback port, stops it with its process group; HTTP helpers.
//! - [`hostile`]: a webhook receiver that can be slow or fail, a listener
//!   that never answers, an async HTTP client (faults, logs, schemathesis).
//! - [`sdk_support`]: the code receiver and environment of the SDK suites.
//! - [`snippets`]: code that docs/ shows verbatim (run by `sdk_e2e`).
//!
//! Test modules:
//! - [`audit`]: every audit event kind from the real binary, to a Standard
//!   Webhooks receiver (official library), pseudonyms or identities, the
//!   bounded queue, and a trace-level log scan of a whole session flow.
//! - [`smoke`]: the binary starts, answers, and stops on SIGTERM.
//! - [`binary`]: the binary as an operator meets it: secrets, one line per
//!   invalid variable, `--dev`, `keygen`, `check-config`, layering, signals,
//!   `healthcheck`.
//! - [`replicas`]: two real binaries on one Redis (standalone and a
//!   3-master Cluster): rotation, reuse, logout and sign-out everywhere
//!   seen across replicas, 50 concurrent refreshes; a refresh token is
//!   never an access token (verify, introspect, PyJWT).
//! - [`connections`]: the connection layer (responses sent at the end of
//!   the worker's turn): pipelined, concurrent, a client that stops
//!   reading, large answers beside small ones, `Connection: close`.
//! - [`lane`]: the code and refresh `POST`s answered alike with the fast
//!   lane on (the default) and off (`ACCESS_LOG=true`).
//! - [`readme`]: the variable tables and commands in the docs are generated
//!   from `otp_server::vars` and cannot drift.
//! - [`logs`]: codes, tokens and secrets never reach the logs at
//!   `RUST_LOG=trace`.
//! - [`faults`]: Redis killed, SMTP refused or hanging, slow webhooks,
//!   slowloris, a million identities through the memory limiter.
//! - [`schemathesis`]: schema fuzzing of the served OpenAPI document.
//! - [`fuzz_corpus`]: the committed cargo-fuzz corpora replayed on stable.
//! - [`probe`]: `otp-server probe` against real Redis, SMTP (aiosmtpd) and
//!   webhook receivers and a wiremock Twilio; `otp-server send-test`.
//! - [`deploy`]: `deploy/` run for real (nginx, replicas, Redis) and the
//!   manifests checked offline.
//! - [`sdk_e2e`]: the Rust, JavaScript and Python SDKs against the real
//!   binary.
//! - [`gate_settings`]: the `GATE_*` and `ALLOWED_IDENTITIES` settings:
//!   one-line refusals, cookie reach, `--dev` defaults, pages served.
//! - [`gate_e2e`]: the web gate in headless Chromium behind real nginx and
//!   real Caddy running the deploy/ files, axe-core on its pages, the
//!   screenshots of docs/gate/, the Traefik files and the headers Traefik
//!   sends, the compose demo.

mod audit;
mod binary;
mod connections;
mod deploy;
mod faults;
mod fuzz_corpus;
mod gate_e2e;
mod gate_settings;
mod hostile;
mod lane;
mod logs;
mod probe;
mod readme;
mod replicas;
mod schemathesis;
mod sdk_e2e;
mod sdk_support;
mod smoke;
mod snippets;
mod support;
