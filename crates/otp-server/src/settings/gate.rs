//! The web gate concern (SPEC §11): `GATE`, `GATE_PATH`, `GATE_URL`,
//! `GATE_TITLE`, `GATE_COOKIE_DOMAIN`, `GATE_ALLOWED_IDENTITIES`,
//! `GATE_ALLOWED_HOSTS`, `GATE_DEFAULT_REDIRECT` into otp-http's
//! [`GateConfig`], and `ALLOWED_IDENTITIES` (the JSON API's list) into an
//! [`IdentityAllowlist`].
//!
//! With `GATE=on`, start-up (and so `check-config`) refuses, with one line
//! naming the variable:
//! - a missing `GATE_ALLOWED_IDENTITIES` (there is no default: `*` must be
//!   written to open the gate to anyone);
//! - outside `--dev`, a missing or non-https `GATE_URL` and a missing
//!   `GATE_DEFAULT_REDIRECT`. In `--dev`, `GATE_URL` defaults to
//!   `http://127.0.0.1:<port of BIND_ADDRESS>`, the default redirect to
//!   `GATE_URL/`, http is allowed and cookies are not `Secure`;
//! - allowed hosts the session cookie cannot reach: without
//!   `GATE_COOKIE_DOMAIN` the cookie is host-only, so every allowed host
//!   must be `GATE_URL`'s host (the same-host layout; also the default of
//!   `GATE_ALLOWED_HOSTS`); with `GATE_COOKIE_DOMAIN=example.com`,
//!   `GATE_URL`'s host and every allowed host must be `example.com` or a
//!   name under it;
//! - a default redirect that the allowed hosts do not allow.

use otp_http::gate::{GateConfig, DEFAULT_GATE_PATH, DEFAULT_GATE_TITLE};
use otp_http::redirect::{HostPattern, RedirectPolicy};
use otp_service::IdentityAllowlist;

use super::{err, Notes, RawSettings, SettingError};

/// Every `GATE_*` variable but `GATE` itself (a warning names those set
/// while the gate is off).
pub const GATE_VARIABLES: [&str; 7] = [
    "GATE_PATH",
    "GATE_URL",
    "GATE_TITLE",
    "GATE_COOKIE_DOMAIN",
    "GATE_ALLOWED_IDENTITIES",
    "GATE_ALLOWED_HOSTS",
    "GATE_DEFAULT_REDIRECT",
];

/// Longest `GATE_TITLE`, in characters.
pub const MAX_TITLE_CHARS: usize = 100;

/// First path segments the API already serves; `GATE_PATH` may not start
/// with one.
const RESERVED_SEGMENTS: [&str; 8] = [
    "api",
    "docs",
    "health",
    "healthz",
    "readyz",
    "metrics",
    ".well-known",
    "openapi.json",
];

/// `ALLOWED_IDENTITIES`: unset (or empty) allows anyone.
pub fn allowed_identities(raw: &RawSettings) -> Result<IdentityAllowlist, SettingError> {
    match raw.get("ALLOWED_IDENTITIES") {
        None => Ok(IdentityAllowlist::anyone()),
        Some(list) => identities("ALLOWED_IDENTITIES", list),
    }
}

fn identities(variable: &str, list: &str) -> Result<IdentityAllowlist, SettingError> {
    IdentityAllowlist::parse(list).map_err(|e| err(variable, e.to_string()))
}

/// Reads the gate concern: `None` with `GATE=off` (the default). `port` is
/// the listener's, for the `--dev` default of `GATE_URL`.
pub fn build(
    raw: &RawSettings,
    dev: bool,
    port: u16,
    notes: &mut Notes,
) -> Result<Option<GateConfig>, SettingError> {
    if !raw.flag("GATE")? {
        let set: Vec<&str> = GATE_VARIABLES
            .into_iter()
            .filter(|v| raw.get(v).is_some() && raw.source(v) != Some("default"))
            .collect();
        if !set.is_empty() {
            notes.warnings.push(format!(
                "{} set but GATE is off: the web gate is not served",
                set.join(", ")
            ));
        }
        return Ok(None);
    }
    let identities = match raw.get("GATE_ALLOWED_IDENTITIES") {
        Some(list) => identities("GATE_ALLOWED_IDENTITIES", list)?,
        None => {
            return Err(err(
                "GATE_ALLOWED_IDENTITIES",
                "must be set with GATE=on: who may sign in, e.g. '*@example.com', 'alice@example.com +44*', or '*' for anyone",
            ))
        }
    };
    if identities.is_anyone() {
        notes.warnings.push(
            "GATE_ALLOWED_IDENTITIES allows anyone (*): whoever can receive a code at any address or number can sign in to the protected applications"
                .to_owned(),
        );
    }
    let path = path(raw.get("GATE_PATH").unwrap_or(DEFAULT_GATE_PATH))?;
    let (public_url, gate_host) = public_url(raw, dev, port, notes)?;
    let cookie_domain = cookie_domain(raw, &gate_host)?;
    let allowed_hosts = match raw.get("GATE_ALLOWED_HOSTS") {
        Some(list) => {
            HostPattern::parse_list(list).map_err(|e| err("GATE_ALLOWED_HOSTS", e.to_string()))?
        }
        None => vec![gate_host.clone()],
    };
    if allowed_hosts.is_empty() {
        return Err(err("GATE_ALLOWED_HOSTS", "lists no host"));
    }
    check_cookie_reach(&allowed_hosts, &gate_host, cookie_domain.as_deref())?;
    let default_redirect = match raw.get("GATE_DEFAULT_REDIRECT") {
        Some(url) => url.to_owned(),
        None if dev => {
            notes
                .dev
                .push(format!("GATE_DEFAULT_REDIRECT defaults to {public_url}/"));
            format!("{public_url}/")
        }
        None => {
            return Err(err(
                "GATE_DEFAULT_REDIRECT",
                "must be set with GATE=on: where a sign-in without a valid rd lands, e.g. https://app.example.com/",
            ))
        }
    };
    let redirects = RedirectPolicy::new(allowed_hosts, !dev, default_redirect);
    if !redirects.default_is_allowed() {
        return Err(err(
            "GATE_DEFAULT_REDIRECT",
            format!(
                "'{}' is not an allowed redirect: it must be an absolute {} URL on a host of GATE_ALLOWED_HOSTS ({})",
                redirects.default_redirect(),
                if dev { "http(s)" } else { "https" },
                hosts_text(redirects.allowed_hosts()),
            ),
        ));
    }
    if dev {
        notes
            .dev
            .push("the gate's cookies are not Secure (http allowed)".to_owned());
    }
    if raw.get("TRUSTED_PROXIES").is_none() {
        notes.warnings.push(
            "GATE=on without TRUSTED_PROXIES: /api/v1/auth/forward ignores X-Forwarded-*, so after sign-in behind Traefik or Caddy every browser lands on GATE_DEFAULT_REDIRECT"
                .to_owned(),
        );
    }
    Ok(Some(GateConfig {
        path,
        public_url,
        title: title(raw.get("GATE_TITLE").unwrap_or(DEFAULT_GATE_TITLE))?,
        cookie_domain,
        secure_cookies: !dev,
        redirects,
        identities,
    }))
}

/// `GATE_PATH`: `/` and segments of letters, digits and `-._~`, no trailing
/// slash, not `/` alone, not under a route the API serves.
fn path(p: &str) -> Result<String, SettingError> {
    let bad = |reason: &str| err("GATE_PATH", format!("{reason}, got '{p}'"));
    let Some(rest) = p.strip_prefix('/') else {
        return Err(bad("expected a path starting with '/', like /auth"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if rest.is_empty()
        || segments.iter().any(|s| {
            s.is_empty()
                || *s == "."
                || *s == ".."
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
    {
        return Err(bad(
            "expected /segment[/segment…] of letters, digits and -._~ without a trailing slash, like /auth",
        ));
    }
    if RESERVED_SEGMENTS
        .iter()
        .any(|r| segments[0].eq_ignore_ascii_case(r))
    {
        return Err(bad(&format!(
            "/{} is served by the API; choose another path, like /auth",
            segments[0]
        )));
    }
    Ok(p.to_owned())
}

/// `GATE_URL` as an origin without a trailing slash, and its host.
fn public_url(
    raw: &RawSettings,
    dev: bool,
    port: u16,
    notes: &mut Notes,
) -> Result<(String, HostPattern), SettingError> {
    let given =
        match raw.get("GATE_URL") {
            Some(u) => u,
            None if dev => {
                let url = format!("http://127.0.0.1:{port}");
                notes.dev.push(format!("GATE_URL defaults to {url}"));
                return Ok((url, exact("127.0.0.1")));
            }
            None => return Err(err(
                "GATE_URL",
                "must be set with GATE=on: the gate's public origin, like https://auth.example.com",
            )),
        };
    let url = given.strip_suffix('/').unwrap_or(given);
    let expected = "expected the gate's public origin, scheme://host[:port] without a path, like https://auth.example.com";
    if url == "*" || !super::http::is_origin(url) {
        return Err(err("GATE_URL", format!("{expected}, got '{given}'")));
    }
    let (scheme, authority) = url.split_once("://").unwrap_or_default();
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && !dev {
        return Err(err(
            "GATE_URL",
            format!("must be https outside --dev (the cookies are Secure), got '{given}'"),
        ));
    }
    let host = match authority.rfind(':') {
        Some(i) if !authority.ends_with(']') => &authority[..i],
        _ => authority,
    };
    let pattern: HostPattern = host
        .parse()
        .map_err(|_| err("GATE_URL", format!("{expected}, got '{given}'")))?;
    let port = &authority[host.len()..];
    Ok((format!("{scheme}://{pattern}{port}"), pattern))
}

fn exact(host: &str) -> HostPattern {
    host.parse()
        .unwrap_or_else(|e| unreachable!("a fixed host: {e}"))
}

/// `GATE_COOKIE_DOMAIN` (a leading dot is dropped): a domain name of two
/// labels or more that `GATE_URL`'s host is or is under.
fn cookie_domain(
    raw: &RawSettings,
    gate_host: &HostPattern,
) -> Result<Option<String>, SettingError> {
    let Some(given) = raw.get("GATE_COOKIE_DOMAIN") else {
        return Ok(None);
    };
    let name = given.strip_prefix('.').unwrap_or(given);
    let domain = match name.parse::<HostPattern>() {
        Ok(p) if !p.is_wildcard() && p.host().contains('.') && !p.is_ip_address() => p,
        _ => {
            return Err(err(
                "GATE_COOKIE_DOMAIN",
                format!("expected a domain name like example.com, got '{given}'"),
            ))
        }
    };
    if !gate_host.is_within(domain.host()) {
        return Err(err(
            "GATE_COOKIE_DOMAIN",
            format!(
                "GATE_URL's host {gate_host} is not {domain} or under it, so browsers would refuse the cookie"
            ),
        ));
    }
    Ok(Some(domain.host().to_owned()))
}

/// Every allowed host must receive the session cookie: host-only, only
/// `gate_host` does; with a domain, names at or under it do.
fn check_cookie_reach(
    allowed: &[HostPattern],
    gate_host: &HostPattern,
    cookie_domain: Option<&str>,
) -> Result<(), SettingError> {
    let unreached = |p: &HostPattern| match cookie_domain {
        None => p != gate_host,
        Some(d) => !p.is_within(d),
    };
    let Some(p) = allowed.iter().find(|p| unreached(p)) else {
        return Ok(());
    };
    let why = match cookie_domain {
        None => format!(
            "without GATE_COOKIE_DOMAIN the session cookie is host-only ({gate_host}), so only GATE_URL's host can be allowed; set GATE_COOKIE_DOMAIN to a domain above both, or serve the app on {gate_host}"
        ),
        Some(d) => format!(
            "the session cookie (Domain={d}) reaches only {d} and names under it"
        ),
    };
    Err(err(
        "GATE_ALLOWED_HOSTS",
        format!("{p} cannot receive the session cookie: {why}"),
    ))
}

fn hosts_text(hosts: &[HostPattern]) -> String {
    hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GATE_TITLE`: at most [`MAX_TITLE_CHARS`] characters, no control
/// characters (it is shown on every page and in the `<title>`).
fn title(t: &str) -> Result<String, SettingError> {
    if t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
        return Err(err(
            "GATE_TITLE",
            format!("expected at most {MAX_TITLE_CHARS} characters without control characters"),
        ));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(vars: &[(&str, &str)]) -> RawSettings {
        let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        RawSettings::load(None, env).unwrap()
    }

    fn gate(vars: &[(&str, &str)], dev: bool) -> Result<Option<GateConfig>, SettingError> {
        build(&raw(vars), dev, 8000, &mut Notes::default())
    }

    fn line(vars: &[(&str, &str)], dev: bool) -> String {
        gate(vars, dev).unwrap_err().to_string()
    }

    const SAME_HOST: [(&str, &str); 4] = [
        ("GATE", "on"),
        ("GATE_URL", "https://app.example.com"),
        ("GATE_ALLOWED_IDENTITIES", "*@example.com"),
        ("GATE_DEFAULT_REDIRECT", "https://app.example.com/"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = SAME_HOST
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn the_gate_is_off_by_default_and_warns_about_gate_variables_set_anyway() {
        let mut notes = Notes::default();
        assert!(build(&raw(&[]), false, 8000, &mut notes).unwrap().is_none());
        assert!(notes.warnings.is_empty());
        let r = raw(&[("GATE_URL", "https://a.example.com"), ("GATE", "off")]);
        assert!(build(&r, false, 8000, &mut notes).unwrap().is_none());
        assert_eq!(
            notes.warnings,
            ["GATE_URL set but GATE is off: the web gate is not served"]
        );
    }

    #[test]
    fn the_same_host_layout_builds_with_its_defaults() {
        let g = gate(&SAME_HOST, false).unwrap().unwrap();
        assert_eq!(g.path, "/auth");
        assert_eq!(g.public_url, "https://app.example.com");
        assert_eq!(g.title, DEFAULT_GATE_TITLE);
        assert_eq!(g.cookie_domain, None);
        assert!(g.secure_cookies);
        assert!(g.redirects.require_https());
        assert_eq!(g.redirects.allowed_hosts(), &[exact("app.example.com")]);
        assert!(g.redirects.allows("https://app.example.com/x"));
        assert!(!g.redirects.allows("http://app.example.com/x"));
        assert!(!g.identities.is_anyone());
    }

    #[test]
    fn gate_on_without_its_required_variables_names_each() {
        assert!(line(&[("GATE", "on")], false)
            .starts_with("GATE_ALLOWED_IDENTITIES: must be set with GATE=on"));
        let no_url = [("GATE", "on"), ("GATE_ALLOWED_IDENTITIES", "*")];
        assert!(line(&no_url, false).starts_with("GATE_URL: must be set with GATE=on"));
        let no_default = [
            ("GATE", "on"),
            ("GATE_ALLOWED_IDENTITIES", "*"),
            ("GATE_URL", "https://app.example.com"),
        ];
        assert!(
            line(&no_default, false).starts_with("GATE_DEFAULT_REDIRECT: must be set with GATE=on")
        );
        assert_eq!(
            line(&[("GATE", "maybe")], false),
            "GATE: expected true or false, got 'maybe'"
        );
    }

    #[test]
    fn dev_defaults_the_url_and_redirect_to_loopback_http_without_secure_cookies() {
        let mut notes = Notes::default();
        let r = raw(&[("GATE", "on"), ("GATE_ALLOWED_IDENTITIES", "*")]);
        let g = build(&r, true, 9123, &mut notes).unwrap().unwrap();
        assert_eq!(g.public_url, "http://127.0.0.1:9123");
        assert_eq!(g.redirects.default_redirect(), "http://127.0.0.1:9123/");
        assert!(!g.secure_cookies);
        assert!(!g.redirects.require_https());
        assert!(g.redirects.allows("http://127.0.0.1:9123/app"));
        assert!(g.identities.is_anyone());
        assert!(
            notes
                .warnings
                .iter()
                .any(|w| w.starts_with("GATE_ALLOWED_IDENTITIES allows anyone (*)")),
            "{:?}",
            notes.warnings
        );
        assert!(
            notes
                .dev
                .iter()
                .any(|n| n.contains("GATE_URL defaults to http://127.0.0.1:9123")),
            "{:?}",
            notes.dev
        );
        assert!(
            notes.dev.iter().any(|n| n.contains("not Secure")),
            "{:?}",
            notes.dev
        );
    }

    #[test]
    fn bad_values_are_one_line_naming_the_variable() {
        for (var, value, start) in [
            ("GATE_URL", "http://app.example.com", "GATE_URL: must be https outside --dev"),
            ("GATE_URL", "https://app.example.com/auth", "GATE_URL: expected the gate's public origin"),
            ("GATE_URL", "app.example.com", "GATE_URL: expected the gate's public origin"),
            ("GATE_URL", "*", "GATE_URL: expected the gate's public origin"),
            ("GATE_URL", "https://user@app.example.com", "GATE_URL: expected the gate's public origin"),
            ("GATE_PATH", "auth", "GATE_PATH: expected a path starting with '/'"),
            ("GATE_PATH", "/", "GATE_PATH: expected /segment"),
            ("GATE_PATH", "/auth/", "GATE_PATH: expected /segment"),
            ("GATE_PATH", "/a//b", "GATE_PATH: expected /segment"),
            ("GATE_PATH", "/a/../b", "GATE_PATH: expected /segment"),
            ("GATE_PATH", "/a b", "GATE_PATH: expected /segment"),
            ("GATE_PATH", "/api", "GATE_PATH: /api is served by the API"),
            ("GATE_PATH", "/Docs/x", "GATE_PATH: /Docs is served by the API"),
            ("GATE_ALLOWED_IDENTITIES", "bob*@example.com", "GATE_ALLOWED_IDENTITIES: entry 'bob*@example.com': "),
            ("GATE_ALLOWED_HOSTS", "https://app.example.com", "GATE_ALLOWED_HOSTS: host pattern 'https://app.example.com': "),
            ("GATE_ALLOWED_HOSTS", ",", "GATE_ALLOWED_HOSTS: lists no host"),
            ("GATE_COOKIE_DOMAIN", "com", "GATE_COOKIE_DOMAIN: expected a domain name like example.com, got 'com'"),
            ("GATE_COOKIE_DOMAIN", "*.example.com", "GATE_COOKIE_DOMAIN: expected a domain name"),
            ("GATE_COOKIE_DOMAIN", "other.com", "GATE_COOKIE_DOMAIN: GATE_URL's host app.example.com is not other.com or under it"),
            ("GATE_DEFAULT_REDIRECT", "/home", "GATE_DEFAULT_REDIRECT: '/home' is not an allowed redirect"),
            ("GATE_DEFAULT_REDIRECT", "https://evil.example/", "GATE_DEFAULT_REDIRECT: 'https://evil.example/' is not an allowed redirect: it must be an absolute https URL on a host of GATE_ALLOWED_HOSTS (app.example.com)"),
            ("GATE_TITLE", "a\nb", "GATE_TITLE: expected at most 100 characters"),
        ] {
            let l = line(&with(&[(var, value)]), false);
            assert!(l.starts_with(start), "{var}={value}: {l}");
            assert!(!l.contains('\n'), "{l}");
        }
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        let e = gate(&with(&[("GATE_TITLE", long.leak())]), false).unwrap_err();
        assert_eq!(e.variable, "GATE_TITLE");
    }

    #[test]
    fn host_only_cookies_allow_only_the_gate_host() {
        let l = line(
            &with(&[("GATE_ALLOWED_HOSTS", "app.example.com, wiki.example.com")]),
            false,
        );
        assert_eq!(
            l,
            "GATE_ALLOWED_HOSTS: wiki.example.com cannot receive the session cookie: without GATE_COOKIE_DOMAIN the session cookie is host-only (app.example.com), so only GATE_URL's host can be allowed; set GATE_COOKIE_DOMAIN to a domain above both, or serve the app on app.example.com"
        );
        let l = line(&with(&[("GATE_ALLOWED_HOSTS", "*.example.com")]), false);
        assert!(
            l.starts_with("GATE_ALLOWED_HOSTS: *.example.com cannot receive"),
            "{l}"
        );
        gate(&with(&[("GATE_ALLOWED_HOSTS", "App.Example.com")]), false).unwrap();
    }

    #[test]
    fn a_cookie_domain_allows_the_hosts_under_it_and_nothing_else() {
        let cross = [
            ("GATE_URL", "https://auth.example.com/"),
            ("GATE_COOKIE_DOMAIN", ".Example.com"),
            (
                "GATE_ALLOWED_HOSTS",
                "example.com *.apps.example.com wiki.example.com",
            ),
            ("GATE_DEFAULT_REDIRECT", "https://wiki.example.com/"),
        ];
        let g = gate(&with(&cross), false).unwrap().unwrap();
        assert_eq!(g.public_url, "https://auth.example.com");
        assert_eq!(g.cookie_domain.as_deref(), Some("example.com"));
        assert!(g.redirects.allows("https://x.apps.example.com/"));
        assert!(
            !g.redirects.allows("https://auth.example.com/"),
            "not listed"
        );
        for outside in ["example.org", "*.ample.com", "notexample.com"] {
            let mut v = with(&cross);
            v.retain(|(k, _)| *k != "GATE_ALLOWED_HOSTS");
            v.push(("GATE_ALLOWED_HOSTS", outside));
            let l = line(&v, false);
            assert_eq!(
                l,
                format!("GATE_ALLOWED_HOSTS: {outside} cannot receive the session cookie: the session cookie (Domain=example.com) reaches only example.com and names under it")
            );
        }
    }

    #[test]
    fn allowed_identities_unset_is_anyone_and_bad_entries_name_the_variable() {
        assert!(allowed_identities(&raw(&[])).unwrap().is_anyone());
        assert!(allowed_identities(&raw(&[("ALLOWED_IDENTITIES", "  ")]))
            .unwrap()
            .is_anyone());
        let list = allowed_identities(&raw(&[("ALLOWED_IDENTITIES", "*@example.com")])).unwrap();
        assert!(!list.is_anyone());
        let e =
            allowed_identities(&raw(&[("ALLOWED_IDENTITIES", "*@example.com, +*")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ALLOWED_IDENTITIES: entry '+*': "),
            "{e}"
        );
    }
}
