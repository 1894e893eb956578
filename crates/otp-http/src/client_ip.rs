//! Client IP resolution (SPEC §5): the peer address, or — when the peer is a
//! trusted proxy (`TRUSTED_PROXIES`) — the right-most `X-Forwarded-For` hop
//! that is not itself a trusted proxy.
//!
//! Only hops appended by trusted proxies are believed: everything to the left
//! of the first untrusted hop (walking from the right) may have been written
//! by the client and is ignored. If a hop cannot be parsed, the last trusted
//! address seen is used, so a garbled header can never choose the key.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client address for rate limiting; `None` only without a peer address
/// (e.g. a test request).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(resolve(
        peer,
        req.headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok()),
        trusted,
    ))
}

fn is_trusted(ip: &IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

/// Pure form of [`client_ip`]: `xff` yields the header values in order.
///
/// ```
/// use otp_http::client_ip::resolve;
/// let trusted = vec!["10.0.0.0/8".parse().unwrap()];
/// let peer = "10.0.0.2".parse().unwrap();
/// // behind a trusted proxy: the right-most untrusted hop; the left-most
/// // hop was written by the client and is ignored
/// let xff = ["203.0.113.66, 198.51.100.1"];
/// assert_eq!(resolve(peer, xff.into_iter(), &trusted).to_string(), "198.51.100.1");
/// // an untrusted peer is the client, whatever it sends
/// let peer = "192.0.2.9".parse().unwrap();
/// assert_eq!(resolve(peer, xff.into_iter(), &trusted).to_string(), "192.0.2.9");
/// ```
pub fn resolve<'a>(peer: IpAddr, xff: impl Iterator<Item = &'a str>, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(&peer, trusted) {
        return peer;
    }
    let hops: Vec<&str> = xff.flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut last_trusted = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return last_trusted;
        };
        if !is_trusted(&ip, trusted) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// Parses `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_header_says() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("203.0.113.7"), ["1.1.1.1"].into_iter(), &t),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_wins_and_spoofed_left_hops_are_ignored() {
        let t = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let got = resolve(
            ip("127.0.0.1"),
            ["6.6.6.6, 198.51.100.4", "10.1.2.3"].into_iter(),
            &t,
        );
        assert_eq!(got, ip("198.51.100.4"));
    }

    #[test]
    fn garbage_hop_falls_back_to_the_last_trusted_address() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("10.0.0.1"), ["1.2.3.4, nonsense"].into_iter(), &t),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), ["[2001:db8::1]:443"].into_iter(), &t),
            ip("2001:db8::1")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), std::iter::empty(), &t),
            ip("10.0.0.1")
        );
    }
}
