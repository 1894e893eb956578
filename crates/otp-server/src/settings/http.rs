//! The HTTP concern: trusted proxies, CORS origins, the body timeout, the
//! access log and what `/readyz` requires.

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
    if let Some(o) = cors_origins.iter().find(|o| !is_origin(o)) {
        return Err(err(
            "CORS_ORIGINS",
            format!("expected origins like https://app.example.com or *, got '{o}'"),
        ));
    }
    // Fields otp-http adds later keep their defaults until a variable sets them.
    #[allow(clippy::needless_update)]
    Ok(HttpConfig {
        trusted_proxies,
        cors_origins,
        // the body gets the same time after the head as the head has (SPEC §8)
        body_timeout: std::time::Duration::from_millis(raw.num("CLIENT_REQUEST_TIMEOUT_MS")?),
        access_log: raw.flag("ACCESS_LOG")?,
        readyz_requires_store: raw.flag("READYZ_REQUIRES_STORE")?,
        ..HttpConfig::default()
    })
}

/// `*`, or an origin as browsers send it: `http(s)://host[:port]`, no path
/// (not even `/`), query, fragment or user info. Whatever passes is also a
/// URI actix-cors accepts, so `check-config` fails on every origin `serve`
/// would fail on, with this line instead of an actix message.
pub fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, rest)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => ("v6", rest),
            _ => return false,
        },
        None => match authority.split_once(':') {
            Some((h, _)) => (h, &authority[h.len()..]),
            None => (authority, ""),
        },
    };
    let host_ok = host == "v6"
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(p) => !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0),
    };
    host_ok && port_ok && actix_web::http::Uri::try_from(origin).is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_origin;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for ok in [
            "*",
            "https://app.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]:8443",
            "https://xn--bcher-kva.example",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "https://",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://exa mple.com",
            "https://user@app.example.com",
            "https://app.example.com:0",
            "https://app.example.com:99999",
            "https://app.example.com:",
            "https://[::1",
            "https://[nothex]:1",
            "https://app.example.com?x=1",
            "ftp://app.example.com",
            "https://app.example.com\u{0}",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
