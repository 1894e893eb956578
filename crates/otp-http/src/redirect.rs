//! Where the web gate may send a browser after sign-in (SPEC §11): the `rd`
//! check, [`RedirectPolicy`], and the host patterns of `GATE_ALLOWED_HOSTS`,
//! [`HostPattern`].
//!
//! `rd` comes from the query string, so anyone can put anything in it; a
//! gate that followed it blindly would be an open redirect on the sign-in
//! domain, the best phishing bait there is. [`RedirectPolicy::allows`]
//! accepts `rd` if and only if **all** of these hold, and
//! [`RedirectPolicy::resolve`] falls back to `GATE_DEFAULT_REDIRECT`
//! otherwise:
//!
//! - at most [`MAX_REDIRECT_LEN`] bytes, every byte printable ASCII
//!   (`!`..=`~`): no white space, tab, CR/LF or other control character
//!   (browsers silently drop tabs and newlines inside URLs, which is how
//!   `java\tscript:` gets past naive filters), no backslash anywhere (browsers
//!   read `\` as `/`, so `https://app.example.com\@evil.com` means different
//!   hosts to different parsers), no raw non-ASCII (an IDN host must be
//!   written in its punycode form, `xn--…`);
//! - an absolute URL starting with `https://` (or `http://` when
//!   `require_https` is false, i.e. `--dev`); scheme-relative (`//evil.com`),
//!   relative (`/path`, `%2F%2Fevil.com`), `https:evil.com`, `javascript:`,
//!   `data:` and every other scheme are refused;
//! - no user info (`https://app.example.com@evil.com` has host `evil.com`);
//! - the authority as written is the host as the WHATWG URL parser (the one
//!   browsers use, here the `url` crate) reads it, compared without regard
//!   to ASCII case, optionally followed by `:` and the port in canonical
//!   digits: so percent-encoded hosts (`app%2Eexample.com`), numeric IPv4
//!   spellings (`0x7f.1`), a trailing dot and anything else the parser would
//!   rewrite are refused rather than reasoned about. Upper-case schemes and
//!   hosts are accepted: `HTTPS://APP.EXAMPLE.COM/` is the same URL to every
//!   browser, and still has to match a pattern;
//! - the host matches a [`HostPattern`]: an exact name, or `*.example.com`,
//!   which matches names **one or more labels** under `example.com`
//!   (`a.example.com`, `a.b.example.com`) and never `example.com` itself
//!   (list the apex when it is meant). That is the reach of a cookie with
//!   `Domain=example.com`, the scope the gate's session cookie can have.
//!
//! Any port is accepted on an allowed host: browsers send a host's cookies
//! to every port of it, so a service on another port of an allowed host
//! already sees the session cookie, and refusing to redirect there would
//! protect nothing.
//!
//! The URL returned by [`RedirectPolicy::resolve`] is `rd` exactly as
//! received (it passed the checks above, so it is a valid `Location`
//! header value), or the configured default.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use url::{Host, Url};

/// Longest `rd` accepted, in bytes. Longer ones fall back to the default:
/// real return addresses are far shorter, and a cap keeps the redirect
/// chain (renew → login → verify) within every proxy's header limits.
pub const MAX_REDIRECT_LEN: usize = 2048;

/// Why a host pattern is not valid. The message names the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host pattern '{pattern}': {reason}")]
pub struct HostPatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One entry of `GATE_ALLOWED_HOSTS`: an exact host (`app.example.com`,
/// `127.0.0.1`, `[::1]`) or `*.example.com`, any name one or more labels
/// under `example.com` (not `example.com` itself).
///
/// Names are stored lower-case, internationalized names in their punycode
/// form, so `App.Example.COM` and `bücher.example` are valid patterns.
///
/// ```
/// use otp_http::redirect::HostPattern;
///
/// let wildcard: HostPattern = "*.Example.com".parse().unwrap();
/// assert!(wildcard.matches("app.example.com"));
/// assert!(wildcard.matches("a.b.example.com"));
/// assert!(!wildcard.matches("example.com"));
/// assert!(!wildcard.matches("app.example.com.evil.test"));
/// assert_eq!(wildcard.to_string(), "*.example.com");
///
/// assert!("*.com".parse::<HostPattern>().is_err());
/// assert!("https://app.example.com".parse::<HostPattern>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    /// The exact host, or the domain under a `*.`.
    host: String,
    wildcard: bool,
}

impl HostPattern {
    /// Parses a comma and/or white-space separated list of patterns
    /// (`GATE_ALLOWED_HOSTS`); an empty list is an empty `Vec`.
    pub fn parse_list(list: &str) -> Result<Vec<HostPattern>, HostPatternError> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect()
    }

    /// Returns true if and only if `host` (lower case, as [`Url::host_str`]
    /// gives it) is this exact host, or for `*.example.com` ends in
    /// `.example.com` with at least one label before it.
    pub fn matches(&self, host: &str) -> bool {
        if !self.wildcard {
            return host == self.host;
        }
        host.strip_suffix(self.host.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty())
    }

    /// Returns true if and only if every host this pattern matches is
    /// `domain` or a name under it (how `check-config` tells whether a
    /// cookie with `Domain=domain` reaches it). `domain` is compared
    /// without regard to ASCII case. An IP address is within nothing but
    /// itself (no cookie domain covers `127.0.0.1` but `127.0.0.1`).
    pub fn is_within(&self, domain: &str) -> bool {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        self.host == domain
            || !self.is_ip_address()
                && self
                    .host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
    }

    /// Returns true if and only if this is an IPv4 or IPv6 address.
    pub fn is_ip_address(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok()
    }

    /// Returns true if and only if this is a `*.domain` pattern.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The exact host, or for `*.example.com` the domain `example.com`.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostPatternError {
            pattern: s.to_owned(),
            reason,
        };
        let (wildcard, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if name.is_empty() {
            return Err(err("empty host"));
        }
        if name.contains('*') {
            return Err(err("'*' is only allowed as a leading '*.' label"));
        }
        let bracketed = name.starts_with('[') && name.ends_with(']');
        if name
            .chars()
            .any(|c| "/\\@:%?#".contains(c) && !(bracketed && c == ':') || c.is_whitespace())
        {
            return Err(err(
                "a host name only: no scheme, port, path, user info or percent-encoding",
            ));
        }
        if name.ends_with('.') {
            return Err(err("the host must not end in a dot"));
        }
        let host = Host::parse(name).map_err(|_| err("not a valid host name"))?;
        let canonical = host.to_string();
        match host {
            Host::Domain(d) => {
                if wildcard && !d.contains('.') {
                    return Err(err(
                        "a wildcard needs a domain of at least two labels ('*.example.com', not '*.com')",
                    ));
                }
                Ok(HostPattern { host: d, wildcard })
            }
            _ if wildcard => Err(err("a wildcard applies to domain names, not IP addresses")),
            // The WHATWG parser reads `123` or `0x7f.1` as IPv4 addresses;
            // only the dotted-decimal spelling is taken as one.
            Host::Ipv4(_) if canonical != name => {
                Err(err("write an IPv4 address in dotted decimal"))
            }
            _ => Ok(HostPattern {
                host: canonical,
                wildcard: false,
            }),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)
    }
}

/// The `rd` rule of the web gate (see the [module docs](self)): allowed
/// hosts, https outside `--dev`, and the default redirect.
///
/// ```
/// use otp_http::redirect::{HostPattern, RedirectPolicy};
///
/// let policy = RedirectPolicy::new(
///     HostPattern::parse_list("app.example.com, *.apps.example.com").unwrap(),
///     true,
///     "https://app.example.com/".into(),
/// );
/// assert!(policy.allows("https://app.example.com/inbox?x=1"));
/// assert!(policy.allows("https://wiki.apps.example.com/"));
/// assert!(!policy.allows("http://app.example.com/"));        // https only
/// assert!(!policy.allows("//evil.example/"));                // scheme-relative
/// assert!(!policy.allows("https://app.example.com@evil.example/"));
/// assert_eq!(policy.resolve(Some("javascript:alert(1)")), "https://app.example.com/");
/// assert_eq!(policy.resolve(None), "https://app.example.com/");
/// assert_eq!(policy.resolve(Some("https://app.example.com/a")), "https://app.example.com/a");
/// ```
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    allowed_hosts: Vec<HostPattern>,
    require_https: bool,
    default_redirect: String,
}

impl RedirectPolicy {
    /// A policy allowing `allowed_hosts` (`GATE_ALLOWED_HOSTS`), https only
    /// when `require_https` (false only in `--dev`), falling back to
    /// `default_redirect` (`GATE_DEFAULT_REDIRECT`). The default is used as
    /// given; the binary's `check-config` refuses one this policy would not
    /// allow ([`RedirectPolicy::default_is_allowed`]).
    pub fn new(
        allowed_hosts: Vec<HostPattern>,
        require_https: bool,
        default_redirect: String,
    ) -> Self {
        RedirectPolicy {
            allowed_hosts,
            require_https,
            default_redirect,
        }
    }

    /// Returns true if and only if `rd` is a URL the gate may redirect to
    /// (every rule of the [module docs](self)).
    pub fn allows(&self, rd: &str) -> bool {
        self.allowed_host_of(rd)
            .is_some_and(|host| self.allowed_hosts.iter().any(|p| p.matches(&host)))
    }

    /// `rd` if [`RedirectPolicy::allows`] it, else the default redirect.
    pub fn resolve<'a>(&'a self, rd: Option<&'a str>) -> &'a str {
        match rd {
            Some(rd) if self.allows(rd) => rd,
            _ => &self.default_redirect,
        }
    }

    /// `GATE_DEFAULT_REDIRECT`.
    pub fn default_redirect(&self) -> &str {
        &self.default_redirect
    }

    /// Returns true if and only if the default redirect passes the same
    /// checks as an `rd` would.
    pub fn default_is_allowed(&self) -> bool {
        self.allows(&self.default_redirect)
    }

    /// The allowed host patterns, in configuration order.
    pub fn allowed_hosts(&self) -> &[HostPattern] {
        &self.allowed_hosts
    }

    /// Whether only https URLs are allowed (false in `--dev`).
    pub fn require_https(&self) -> bool {
        self.require_https
    }

    /// The host of `rd` if `rd` passes every rule but the host pattern.
    fn allowed_host_of(&self, rd: &str) -> Option<String> {
        if rd.len() > MAX_REDIRECT_LEN || !rd.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
            return None;
        }
        let url = Url::parse(rd).ok()?;
        let scheme = url.scheme();
        if !(scheme == "https" || scheme == "http" && !self.require_https) {
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        // The authority exactly as written: after "<scheme>://", up to the
        // path, query or fragment.
        let written = rd.get(..scheme.len() + 3)?;
        if !written.eq_ignore_ascii_case(&format!("{scheme}://")) {
            return None;
        }
        let rest = &rd[scheme.len() + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let (name, port) = match authority.get(host.len()..) {
            Some(port) if authority.is_char_boundary(host.len()) => {
                (&authority[..host.len()], port)
            }
            _ => return None,
        };
        if !name.eq_ignore_ascii_case(host) {
            return None;
        }
        let port_ok = match port.strip_prefix(':') {
            None => port.is_empty(),
            Some(digits) => url
                .port_or_known_default()
                .is_some_and(|p| p.to_string() == digits),
        };
        port_ok.then(|| host.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "https://app.example.com/";

    fn policy(require_https: bool) -> RedirectPolicy {
        RedirectPolicy::new(
            HostPattern::parse_list("app.example.com *.apps.example.com, 127.0.0.1 [::1]").unwrap(),
            require_https,
            DEFAULT.into(),
        )
    }

    #[test]
    fn allowed_absolute_https_urls_pass_unchanged() {
        let p = policy(true);
        for good in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/inbox?folder=a%2Fb&x=1#top",
            "https://app.example.com:8443/path",
            "https://app.example.com:443/path",
            "https://wiki.apps.example.com/page",
            "https://a.b.apps.example.com/",
            "HTTPS://APP.EXAMPLE.COM/Path",
            "https://App.Example.Com/",
            "https://127.0.0.1/x",
            "https://[::1]:9000/x",
        ] {
            assert!(p.allows(good), "{good}");
            assert_eq!(p.resolve(Some(good)), good);
        }
    }

    #[test]
    fn the_usual_open_redirect_tricks_fall_back_to_the_default() {
        let p = policy(false);
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_REDIRECT_LEN));
        for bad in [
            "",
            "/",
            "/inbox",
            "inbox",
            "//evil.com",
            "//evil.com/https://app.example.com/",
            "///evil.com",
            "https:evil.com",
            "https:/evil.com",
            "https:app.example.com",
            "https:/app.example.com/",
            "https:///app.example.com/",
            "\\\\evil.com",
            "/\\evil.com",
            "\\/evil.com",
            "https:\\\\evil.com",
            "https://app.example.com\\@evil.com",
            "https://evil.com\\@app.example.com",
            "https://evil.com\\.app.example.com",
            "https://app.example.com@evil.com",
            "https://app.example.com:pw@evil.com/",
            "https://user@app.example.com/",
            "https://:@app.example.com/",
            "https://app.example.com.evil.com/",
            "https://app.example.com.",
            "https://app.example.com./",
            "https://evilapp.example.com/",
            "https://apps.example.com/",
            "https://example.com/",
            "https://evil.com/?https://app.example.com/",
            "https://evil.com#app.example.com",
            "%2F%2Fevil.com",
            "%2f%2fevil.com/",
            "https:%2F%2Fevil.com",
            "https://app%2Eexample.com/",
            "https://app%2eexample.com/",
            "https://%61pp.example.com/",
            "https://app.example.com%2F@evil.com/",
            "https://app.example.com%40evil.com/",
            "https://app。example.com/",
            "https://app.exam\tple.com/",
            "https://app.example.com/\n",
            "\thttps://app.example.com/",
            " https://app.example.com/",
            "https://app.example.com/ x",
            "java\tscript:alert(1)",
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "javascript://app.example.com/%0Aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "ftp://app.example.com/",
            "wss://app.example.com/",
            "https://bücher.example/",
            "https://ａｐｐ.example.com/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://127.1/",
            "https://[0:0:0:0:0:0:0:1]/",
            "https://app.example.com:0443/",
            "https://app.example.com:/",
            "https://app.example.com:99999/",
            "HTTPS://EVIL.COM/",
            long.as_str(),
        ] {
            assert!(!p.allows(bad), "{bad:?} was allowed");
            assert_eq!(p.resolve(Some(bad)), DEFAULT, "{bad:?}");
        }
        assert_eq!(p.resolve(None), DEFAULT);
    }

    #[test]
    fn http_is_allowed_only_when_https_is_not_required() {
        assert!(!policy(true).allows("http://app.example.com/"));
        assert!(policy(false).allows("http://app.example.com/"));
        assert!(policy(false).allows("http://127.0.0.1:8080/x"));
        assert!(!policy(false).allows("http://evil.com/"));
    }

    #[test]
    fn a_url_at_the_length_cap_passes_and_one_byte_more_does_not() {
        let p = policy(true);
        let base = "https://app.example.com/";
        let at_cap = format!("{base}{}", "a".repeat(MAX_REDIRECT_LEN - base.len()));
        assert!(p.allows(&at_cap));
        assert!(!p.allows(&format!("{at_cap}a")));
    }

    #[test]
    fn an_idn_host_is_allowed_in_its_punycode_form() {
        let p = RedirectPolicy::new(
            HostPattern::parse_list("bücher.example").unwrap(),
            true,
            DEFAULT.into(),
        );
        assert!(p.allows("https://xn--bcher-kva.example/"));
        assert!(!p.allows("https://bücher.example/"));
    }

    #[test]
    fn host_patterns_refuse_what_is_not_a_host() {
        for bad in [
            "",
            "*",
            "*.",
            "*.com",
            "**.example.com",
            "a.*.example.com",
            "app*.example.com",
            "https://app.example.com",
            "app.example.com/",
            "app.example.com:8443",
            "user@app.example.com",
            "app%2Eexample.com",
            "app.example.com.",
            "app example.com",
            "*.127.0.0.1",
            "*.[::1]",
            "0x7f.1",
            "127.1",
            "[::1",
            "exa_mple.com\\",
        ] {
            let e = bad.parse::<HostPattern>().unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("host pattern '{bad}': ")),
                "{e}"
            );
        }
        let p: HostPattern = "App.Example.COM".parse().unwrap();
        assert_eq!(p.to_string(), "app.example.com");
        assert_eq!("[::1]".parse::<HostPattern>().unwrap().to_string(), "[::1]");
        assert!(HostPattern::parse_list(" , ").unwrap().is_empty());
    }

    #[test]
    fn is_within_tells_whether_a_cookie_domain_reaches_the_pattern() {
        let exact: HostPattern = "app.example.com".parse().unwrap();
        let wild: HostPattern = "*.apps.example.com".parse().unwrap();
        for p in [&exact, &wild] {
            assert!(p.is_within("example.com"));
            assert!(p.is_within(".Example.COM"));
            assert!(!p.is_within("ample.com"));
            assert!(!p.is_within("other.com"));
        }
        assert!(exact.is_within("app.example.com"));
        assert!(!exact.is_within("apps.example.com"));
        assert!(wild.is_within("apps.example.com"));
        assert!(!wild.is_within("x.apps.example.com"));
        let ip: HostPattern = "127.0.0.1".parse().unwrap();
        assert!(ip.is_within("127.0.0.1"));
        assert!(!ip.is_within("0.0.1") && !ip.is_within("1"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new(
            HostPattern::parse_list("app.example.com, *.apps.example.com").unwrap(),
            true,
            "https://app.example.com/".into(),
        )
    }

    /// One URL piece: `(text, is good)`, good 3 times in 4.
    fn piece(
        good: &'static [&'static str],
        bad: &'static [&'static str],
    ) -> impl Strategy<Value = (&'static str, bool)> {
        prop_oneof![
            3 => prop::sample::select(good).prop_map(|g| (g, true)),
            1 => prop::sample::select(bad).prop_map(|b| (b, false)),
        ]
    }

    proptest! {
        /// Whatever `rd` is, the answer is the default or an `rd` whose host,
        /// as a browser's URL parser reads it, is allowed: no input reaches
        /// a foreign host.
        #[test]
        fn resolve_never_leaves_the_allowed_hosts(rd in "\\PC{0,60}|(https?:)?[/\\\\]{0,3}[a-z.@%:2EF\\\\/]{0,40}") {
            let p = policy();
            let out = p.resolve(Some(&rd));
            let url = Url::parse(out).unwrap();
            prop_assert_eq!(url.scheme(), "https");
            prop_assert!(url.username().is_empty() && url.password().is_none());
            let host = url.host_str().unwrap();
            prop_assert!(host == "app.example.com" || host.ends_with(".apps.example.com"), "{}", host);
        }

        /// URLs assembled from the pieces open-redirect tricks are made of:
        /// accepted if and only if every piece is a good one, and whatever
        /// is accepted is, to a WHATWG parser, an https URL without user
        /// info on an allowed host. Each piece is good 3 times in 4, so
        /// about a quarter of the URLs are good ones.
        #[test]
        fn assembled_urls_pass_if_and_only_if_every_piece_is_good(
            scheme in piece(
                &["https://", "HTTPS://", "HtTpS://"],
                &["http://", "https:", "https:/", "https:///", "https:\\\\", "//", "\\\\",
                  "/\\", "javascript:", "data:", "", " https://", "\thttps://", "ht\ttps://"],
            ),
            userinfo in piece(&[""], &["user@", "app.example.com@", "evil.com\\@", ":@", "a:b@"]),
            host in piece(
                &["app.example.com", "APP.Example.COM", "x.apps.example.com", "a.b.apps.example.com"],
                &["evil.com", "apps.example.com", "app.example.com.evil.com", "app.example.com.",
                  "evilapp.example.com", "app%2Eexample.com", "%61pp.example.com",
                  "app\u{3002}example.com", "\u{ff41}pp.example.com", "app.exam\nple.com",
                  "127.0.0.1", "0x7f.1", "[::1]", ""],
            ),
            port in piece(&["", ":443", ":8443", ":1"], &[":0443", ":", ":99999", ":x"]),
            rest in "(/[!-\\[\\]-~]{0,30})?|\\?[a-z=&]{0,10}|#[a-z]{0,5}",
            trick in piece(&[""], &["\\", "\t", "\n", " ", "\u{e9}"]),
        ) {
            let rd = format!("{}{}{}{}{}{}", scheme.0, userinfo.0, host.0, port.0, rest, trick.0);
            let good = scheme.1 && userinfo.1 && host.1 && port.1 && trick.1;
            let p = policy();
            prop_assert_eq!(p.allows(&rd), good, "{:?}", rd);
            let out = p.resolve(Some(&rd));
            let url = Url::parse(out).unwrap();
            prop_assert_eq!(url.scheme(), "https");
            prop_assert!(url.username().is_empty() && url.password().is_none());
            let host = url.host_str().unwrap();
            prop_assert!(host == "app.example.com" || host.ends_with(".apps.example.com"), "{}", host);
        }

        /// Any path, query and fragment of printable ASCII (no backslash)
        /// under an allowed host passes unchanged.
        #[test]
        fn any_printable_path_on_an_allowed_host_passes(
            sub in "[a-z0-9]{1,10}",
            tail in "[!-\\[\\]-~]{0,80}",
        ) {
            let rd = format!("https://{sub}.apps.example.com/{tail}");
            let p = policy();
            prop_assert_eq!(p.resolve(Some(&rd)), rd.as_str());
        }
    }
}
