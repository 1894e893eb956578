//! Client IP resolution (SPEC §5): the peer address, or — when the peer is a
//! trusted proxy (`TRUSTED_PROXIES`) — the right-most `X-Forwarded-For` hop
//! that is not itself a trusted proxy.
//!
//! Only hops appended by trusted proxies are believed: everything to the left
//! of the first untrusted hop (walking from the right) may have been written
//! by the client and is ignored. If a hop cannot be parsed, the last trusted
//! address seen is used, so a garbled header can never choose the key.
//!
//! Every address is canonical: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
//! what a socket bound to `[::]` reports for an IPv4 peer) is its IPv4
//! address, as a peer, as an `X-Forwarded-For` hop and when matched against
//! `TRUSTED_PROXIES` (so `10.0.0.0/8` matches the peer `::ffff:10.0.0.2`, and
//! a mapped entry like `::ffff:10.0.0.0/104` matches `10.0.0.2`). The limits
//! downstream (otp-service) see one address per IPv4 client, never two.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client address for rate limiting; `None` only without a peer address
/// (e.g. a test request).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    client_ip_of(req.peer_addr(), req.headers(), trusted)
}

/// [`client_ip`] from a request's peer and headers (the
/// [`fast_lane`](crate::fast_lane)'s, which has no `HttpRequest`).
pub(crate) fn client_ip_of(
    peer: Option<std::net::SocketAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    Some(resolve(
        peer?.ip(),
        headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok()),
        trusted,
    ))
}

/// Returns true if and only if the request's peer is in `trusted`
/// (`TRUSTED_PROXIES`): only then are its `X-Forwarded-*` headers believed.
pub fn is_trusted_peer(req: &HttpRequest, trusted: &[IpNet]) -> bool {
    req.peer_addr()
        .is_some_and(|peer| is_trusted(&canonical(peer.ip()), trusted))
}

/// `ip` in canonical form: an IPv4-mapped IPv6 address becomes its IPv4
/// address; every other address is unchanged.
///
/// ```
/// use otp_http::client_ip::canonical;
/// assert_eq!(canonical("::ffff:192.0.2.7".parse().unwrap()).to_string(), "192.0.2.7");
/// assert_eq!(canonical("2001:db8::1".parse().unwrap()).to_string(), "2001:db8::1");
/// ```
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Whether the canonical address `ip` is in one of the `trusted` networks,
/// written either as IPv4 or as IPv4-mapped IPv6.
fn is_trusted(ip: &IpAddr, trusted: &[IpNet]) -> bool {
    let mapped = match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(_) => None,
    };
    trusted
        .iter()
        .any(|net| net.contains(ip) || mapped.is_some_and(|m| net.contains(&m)))
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
    let peer = canonical(peer);
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

/// Parses `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`,
/// in canonical form ([`canonical`]).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|sa| sa.ip()))
        .ok()?;
    Some(canonical(ip))
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

    // See: issue 13 item 2 (`::ffff:a.b.c.d` was not `a.b.c.d`).
    #[test]
    fn a_v4_mapped_peer_is_its_ipv4_address() {
        assert_eq!(
            resolve(ip("::ffff:203.0.113.7"), std::iter::empty(), &[]),
            ip("203.0.113.7")
        );
        // real IPv6 peers stay as they are
        assert_eq!(
            resolve(ip("2001:db8::7"), std::iter::empty(), &[]),
            ip("2001:db8::7")
        );
    }

    // See: issue 13 item 2 (TRUSTED_PROXIES did not match IPv4 proxies seen
    // as v4-mapped peers when bound to `[::]`).
    #[test]
    fn an_ipv4_trusted_proxy_matches_when_seen_as_a_v4_mapped_peer() {
        let t = nets(&["10.0.0.0/8"]);
        let got = resolve(ip("::ffff:10.0.0.2"), ["198.51.100.4"].into_iter(), &t);
        assert_eq!(got, ip("198.51.100.4"));
        // and a trusted hop written v4-mapped is skipped like its IPv4 form
        let got = resolve(
            ip("10.0.0.2"),
            ["198.51.100.4, ::ffff:10.9.9.9"].into_iter(),
            &t,
        );
        assert_eq!(got, ip("198.51.100.4"));
    }

    #[test]
    fn a_v4_mapped_trusted_entry_matches_the_plain_ipv4_peer() {
        let t = nets(&["::ffff:10.0.0.0/104"]);
        let got = resolve(ip("10.0.0.2"), ["198.51.100.4"].into_iter(), &t);
        assert_eq!(got, ip("198.51.100.4"));
        let got = resolve(ip("::ffff:10.0.0.2"), ["198.51.100.4"].into_iter(), &t);
        assert_eq!(got, ip("198.51.100.4"));
    }

    #[test]
    fn v4_mapped_forwarded_hops_are_their_ipv4_address() {
        let t = nets(&["10.0.0.0/8"]);
        for hop in ["::ffff:198.51.100.4", "[::ffff:198.51.100.4]:443"] {
            assert_eq!(
                resolve(ip("10.0.0.2"), [hop].into_iter(), &t),
                ip("198.51.100.4"),
                "{hop}"
            );
        }
        // when a garbled hop stops the walk, the fallback is canonical too
        assert_eq!(
            resolve(ip("::ffff:10.0.0.2"), ["nonsense"].into_iter(), &t),
            ip("10.0.0.2")
        );
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
