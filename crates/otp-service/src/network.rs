//! Client networks: the subject of the per-IP limits (SPEC §6).
//!
//! One person or one office holds one IPv4 address but a whole IPv6 /64
//! (and often a /56 or /48), so keying per-IP limits by the address string
//! gives an IPv6 client 2⁶⁴ budgets. The limits are keyed by network
//! instead: an IPv4 address as itself, an IPv6 address by its first
//! `ipv6_prefix` bits (default [`DEFAULT_IPV6_PREFIX`], 64), and an
//! IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
//! bound to `[::]` reports for IPv4 peers) as the IPv4 address it carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The default IPv6 prefix length of a client network (`RATE_IPV6_PREFIX`).
pub const DEFAULT_IPV6_PREFIX: u8 = 64;
/// The shortest accepted IPv6 prefix: coarser would put unrelated providers'
/// customers in one budget.
pub const MIN_IPV6_PREFIX: u8 = 32;
/// The longest accepted IPv6 prefix (one address per budget).
pub const MAX_IPV6_PREFIX: u8 = 128;

/// The network `ip` is counted under: `a.b.c.d` for IPv4 and IPv4-mapped
/// IPv6, `<network>/<prefix>` for IPv6 (e.g. `2001:db8:1:2::/64`).
/// `ipv6_prefix` above 128 counts as 128.
pub fn client_network(ip: IpAddr, ipv6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => ipv4_string(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ipv4_string(v4),
            None => {
                let prefix = ipv6_prefix.min(MAX_IPV6_PREFIX);
                let mask = u128::MAX.checked_shl(u32::from(128 - prefix)).unwrap_or(0);
                let net = Ipv6Addr::from(u128::from(v6) & mask);
                format!("{net}/{prefix}")
            }
        },
    }
}

/// `v4` in dotted decimal, the same text as its `Display`, written digit by
/// digit into one allocation (every verify and request formats its
/// client's network; `Display` goes through the formatting machinery and a
/// growing buffer: issue 17).
fn ipv4_string(v4: Ipv4Addr) -> String {
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str, prefix: u8) -> String {
        client_network(s.parse().unwrap(), prefix)
    }

    #[test]
    fn ipv4_text_is_its_display_for_every_octet() {
        for o in 0..=255u8 {
            for v4 in [
                Ipv4Addr::new(o, 0, 255, 9),
                Ipv4Addr::new(10, o, 100, 99),
                Ipv4Addr::new(1, 2, o, 3),
                Ipv4Addr::new(255, 255, 255, o),
            ] {
                assert_eq!(ipv4_string(v4), v4.to_string());
            }
        }
    }

    #[test]
    fn ipv4_is_keyed_per_address() {
        assert_eq!(net("192.0.2.7", 64), "192.0.2.7");
        assert_ne!(net("192.0.2.7", 64), net("192.0.2.8", 64));
    }

    #[test]
    fn ipv6_is_keyed_per_prefix() {
        assert_eq!(net("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(
            net("2001:db8:1:2:ffff:ffff:ffff:ffff", 64),
            "2001:db8:1:2::/64"
        );
        assert_ne!(net("2001:db8:1:2::1", 64), net("2001:db8:1:3::1", 64));
        assert_eq!(net("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(net("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(net("2001:db8::1", 200), "2001:db8::1/128");
        assert_eq!(net("2001:db8::1", 0), "::/0");
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_its_ipv4_address() {
        assert_eq!(net("::ffff:192.0.2.7", 64), "192.0.2.7");
        // IPv4-compatible (deprecated) addresses are plain IPv6.
        assert_eq!(net("::192.0.2.7", 64), "::/64");
    }
}
