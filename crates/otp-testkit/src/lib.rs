//! Test support of the stateless-otp workspace, shared by every crate's
//! integration tests (never published: `publish = false`, a path-only
//! dev-dependency, so `cargo package` strips it from the published crates).
//!
//! Tests run against real components on free loopback ports. A component
//! that is not installed makes its test print why and return (see
//! [`process::skip`]), unless `OTP_E2E_REQUIRE_ALL=1`, where that is a
//! failure. Every process started here runs in its own process group and is
//! killed with that whole group when its guard drops, also when the test
//! panics: nothing outlives the test.
//!
//! # Layout
//!
//! - [`process`]: skip-or-fail, free ports, temporary directories, process
//!   guards that kill the whole group, waiting for a port.
//! - [`redis`]: `redis-server` standalone ([`redis::RedisServer`], stop and
//!   restart on the same port) and a 3-master Cluster
//!   ([`redis::RedisCluster`]); `REDIS_URL` instead when it is set.
//! - [`sinks`]: the SMTP sink (aiosmtpd) and the Standard Webhooks receiver,
//!   Python scripts in `scripts/` that report their port.
//! - [`nginx`]: runs nginx in the foreground on a rendered configuration
//!   (after `nginx -t`).
//! - [`caddy`]: runs Caddy in the foreground on a rendered Caddyfile (after
//!   `caddy validate`; loopback only, no automatic HTTPS, no admin API).
//! - [`upstream`]: a sample application behind a proxy that records every
//!   request's headers (the web-gate tests: `X-Auth-Subject`, cookies).
//! - [`keys`]: the fixed OTP key, JWT secret and store hash key of the tests.
//! - `doubles` (feature `doubles`): `Outbox`, a `Delivery` that records every
//!   code per identity, and `FailingDelivery`.
//! - `logs` (feature `logs`): `capture_logs`, every tracing event as text.
//!
//! # Dependency direction
//!
//! Without features this crate uses `std` only and knows no workspace type,
//! so every crate (otp-ratelimit and otp-delivery included) can dev-depend on
//! it without a cycle: the Redis starters hand out a port and a URL, not a
//! store. The `doubles` feature depends on otp-core and otp-delivery; only
//! crates above otp-delivery (otp-service, otp-http, otp-server) enable it.
//! A crate below would otherwise compile a second copy of itself, whose
//! `Delivery` trait is a different trait.
//!
//! # Use
//!
//! ```toml
//! [dev-dependencies]
//! otp-testkit = { workspace = true, features = ["doubles"] }
//! ```
//!
//! ```no_run
//! # fn main() {
//! use otp_testkit::redis;
//! let Some(redis) = redis::redis_or_skip("my_test") else {
//!     return; // skipped, reason printed (or panicked under OTP_E2E_REQUIRE_ALL=1)
//! };
//! let url = redis.url(); // redis://127.0.0.1:<port>
//! # let _ = url;
//! # }
//! ```

pub mod caddy;
pub mod keys;
pub mod nginx;
pub mod process;
pub mod redis;
pub mod sinks;
pub mod upstream;

#[cfg(feature = "doubles")]
pub mod doubles;
#[cfg(feature = "logs")]
pub mod logs;

pub use process::{
    free_port, kill_process_group, on_path, process_group_members, require_all, skip, skip_without,
    ChildGuard, TempDir,
};
pub use redis::{
    cluster_or_skip, redis_or_skip, started_redis_or_skip, RedisCluster, RedisServer, RedisTarget,
};
