//! The server concern: listener, workers, timeouts, logs, the Redis start-up
//! wait. These are the binary's own settings, so their defaults live here.

use std::net::SocketAddr;
use std::time::Duration;

use super::{err, RawSettings, SettingError};

/// Default listen address.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8000,
));
/// Most worker threads.
pub const MAX_WORKERS: u64 = 1024;
/// Default graceful-shutdown bound, seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u64 = 10;
/// Default request-head timeout, milliseconds.
pub const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS: u64 = 5000;
/// Default keep-alive idle timeout, seconds.
pub const DEFAULT_KEEP_ALIVE_SECONDS: u64 = 15;
/// Default connections per worker.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 25_000;
/// Default Redis start-up wait, seconds.
pub const DEFAULT_STORE_WAIT_SECONDS: u64 = 30;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Server-level settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address.
    pub bind: SocketAddr,
    /// actix workers.
    pub workers: usize,
    /// Graceful-shutdown bound.
    pub shutdown_timeout: Duration,
    /// Request-head timeout (slowloris guard).
    pub client_request_timeout: Duration,
    /// Keep-alive idle timeout.
    pub keep_alive: Duration,
    /// Connections per worker.
    pub max_connections: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// tracing filter.
    pub rust_log: String,
    /// How long start-up keeps retrying an unreachable Redis.
    pub store_wait: Duration,
}

/// `WORKERS` when unset: one worker per core but one, and at least one.
/// The core left over serves the kernel's network work and whatever shares
/// the host (the proxy, Redis): on a 2-core host, one worker answered
/// 17–35 % more forward-auth and verify requests than two, with a lower
/// p99 (docs/benchmarks.md, "Worker count").
pub fn default_workers(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

/// Reads the server concern.
pub fn build(raw: &RawSettings) -> Result<ServerSettings, SettingError> {
    let bind: SocketAddr = raw
        .parse("BIND_ADDRESS", "an address like 127.0.0.1:8000")?
        .unwrap_or(DEFAULT_BIND);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let log_format = raw
        .choice(
            "LOG_FORMAT",
            &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
            "pretty or json",
        )?
        .unwrap_or(LogFormat::Pretty);
    let rust_log = raw.get("RUST_LOG").unwrap_or("info");
    tracing_subscriber::EnvFilter::try_new(rust_log).map_err(|e| {
        err(
            "RUST_LOG",
            format!("expected a tracing filter like info or info,otp_service=debug ({e})"),
        )
    })?;
    Ok(ServerSettings {
        bind,
        workers: raw
            .num_opt("WORKERS")?
            .unwrap_or_else(|| default_workers(cores)),
        shutdown_timeout: Duration::from_secs(raw.num("SHUTDOWN_TIMEOUT_SECONDS")?),
        client_request_timeout: Duration::from_millis(raw.num("CLIENT_REQUEST_TIMEOUT_MS")?),
        keep_alive: Duration::from_secs(raw.num("KEEP_ALIVE_SECONDS")?),
        max_connections: raw.num("MAX_CONNECTIONS")?,
        log_format,
        rust_log: rust_log.to_owned(),
        store_wait: Duration::from_secs(raw.num("REDIS_STARTUP_WAIT_SECONDS")?),
    })
}
