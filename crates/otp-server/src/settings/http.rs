//! The HTTP concern: trusted proxies, CORS origins and the body timeout.

use ipnet::IpNet;
use otp_http::HttpConfig;

use super::{err, RawSettings, SettingError};

/// Reads the HTTP concern.
pub fn build(raw: &RawSettings) -> Result<HttpConfig, SettingError> {
    let trusted_proxies = raw
        .list("TRUSTED_PROXIES")
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    err(
                        "TRUSTED_PROXIES",
                        format!("expected CIDRs like 10.0.0.0/8, got '{s}'"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cors_origins = raw.list("CORS_ORIGINS");
    for o in &cors_origins {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            return Err(err(
                "CORS_ORIGINS",
                format!("expected origins like https://app.example.com or *, got '{o}'"),
            ));
        }
    }
    // Fields otp-http adds later keep their defaults until a variable sets them.
    #[allow(clippy::needless_update)]
    Ok(HttpConfig {
        trusted_proxies,
        cors_origins,
        // the body gets the same time after the head as the head has (SPEC §8)
        body_timeout: std::time::Duration::from_millis(raw.num("CLIENT_REQUEST_TIMEOUT_MS")?),
        ..HttpConfig::default()
    })
}
