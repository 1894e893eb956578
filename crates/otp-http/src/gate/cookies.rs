//! The gate's cookies (SPEC §11): `otp_session` (the access token,
//! `Path=/`, `Domain` only with `GATE_COOKIE_DOMAIN`), `otp_refresh` (the
//! refresh token, `Path=<GATE_PATH>`, always host-only) and `otp_csrf` (the
//! CSRF secret, `Path=<GATE_PATH>`, host-only). All `HttpOnly`,
//! `SameSite=Lax`, `Secure` unless `--dev`.
//!
//! Values are base64url or JWT text (no `;`, `,`, space or quote), so they
//! go into `Set-Cookie` as they are.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponseBuilder};

use super::GateConfig;

/// The access-token cookie, read by forward auth.
pub const SESSION_COOKIE: &str = "otp_session";
/// The refresh-token cookie, sent only to the gate's own path.
pub const REFRESH_COOKIE: &str = "otp_refresh";
/// The CSRF secret the forms are bound to.
pub const CSRF_COOKIE: &str = "otp_csrf";

/// The value of the first non-empty cookie called `name` in the request's
/// `Cookie` header(s) (RFC 6265 §5.4: `name=value` pairs separated by `;`;
/// HTTP/2 may split them over several headers), without allocating. A
/// header that is not visible ASCII is skipped whole; a pair without `=` is
/// not a cookie. A value in double quotes (RFC 6265 §4.1.1) is unquoted.
pub fn cookie_value<'a>(req: &'a HttpRequest, name: &'a str) -> Option<&'a str> {
    cookie_values(req.headers(), name).next()
}

/// Most `otp_session` cookies [`session_token`] looks at; a request with
/// more is refused (no one signs in with a cookie bomb).
const MAX_SESSION_COOKIES: usize = 8;

/// The access token of the `otp_session` cookie(s) forward auth checks
/// (SPEC §11), or why there is none to check.
///
/// One cookie (every honest browser): that one, at the cost of
/// [`cookie_value`] plus a scan of the rest of the header. Several — a
/// sibling subdomain can plant `otp_session` with `Domain=` the parent
/// and a longer `Path`, which browsers send first — are all verified
/// (signature and expiry, no store): a planted invalid one does not shadow
/// a valid one (the first valid one is used), and valid ones naming
/// different subjects are refused as ambiguous ([`Ambiguous`]) rather than
/// guessing which is the user's. With none valid, the first is returned
/// (its error is the answer).
pub(crate) fn session_token<'a>(
    headers: &'a HeaderMap,
    tokens: &otp_core::TokenService,
) -> Result<&'a str, SessionCookie> {
    let mut all = cookie_values(headers, SESSION_COOKIE);
    let first = all.next().ok_or(SessionCookie::Missing)?;
    let Some(second) = all.next() else {
        return Ok(first);
    };
    let mut chosen: Option<(&str, String)> = None;
    for (n, token) in [first, second].into_iter().chain(all).enumerate() {
        if n == MAX_SESSION_COOKIES {
            return Err(SessionCookie::Ambiguous);
        }
        let Ok(claims) = tokens.verify_now(token) else {
            continue;
        };
        match &chosen {
            None => chosen = Some((token, claims.sub)),
            Some((_, sub)) if *sub == claims.sub => {}
            Some(_) => return Err(SessionCookie::Ambiguous),
        }
    }
    Ok(chosen.map_or(first, |(token, _)| token))
}

/// Why [`session_token`] has no token to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionCookie {
    /// No non-empty `otp_session` cookie.
    Missing,
    /// Several, and the valid ones name different subjects (or too many).
    Ambiguous,
}

/// Every non-empty value of the cookies called `name`, in header order.
pub(crate) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .flat_map(move |v| HeaderCookies::new(v.as_bytes(), name))
}

/// The values of one cookie name in one `Cookie` header value.
struct HeaderCookies<'h, 'n> {
    rest: &'h str,
    name: &'n str,
}

impl<'h, 'n> HeaderCookies<'h, 'n> {
    /// On the forward-auth hot path: the header is checked to be ASCII a
    /// word at a time (`HeaderValue::to_str` checks byte by byte) and the
    /// separators are found with `str::split_once` (a `memchr`); the token
    /// is most of the header.
    fn new(header: &'h [u8], name: &'n str) -> Self {
        let rest = if header.is_ascii() {
            std::str::from_utf8(header).unwrap_or_default()
        } else {
            ""
        };
        HeaderCookies { rest, name }
    }
}

impl<'h> Iterator for HeaderCookies<'h, '_> {
    type Item = &'h str;

    fn next(&mut self) -> Option<&'h str> {
        while !self.rest.is_empty() {
            let (pair, tail) = self.rest.split_once(';').unwrap_or((self.rest, ""));
            self.rest = tail;
            if let Some(value) = pair_value(pair, self.name) {
                return Some(value);
            }
        }
        None
    }
}

/// The value of `pair` (`name=value`) when it is a non-empty cookie
/// called `name` (unquoted).
fn pair_value<'h>(pair: &'h str, name: &str) -> Option<&'h str> {
    let (pair_name, value) = pair.split_once('=')?;
    if pair_name.trim_ascii() != name {
        return None;
    }
    let value = value.trim_ascii();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty()).then_some(value)
}

/// Which cookie a `Set-Cookie` line is for: its name and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Jar {
    /// `otp_session`: `Path=/`, the configured domain.
    Session,
    /// `otp_refresh`: the gate path, host-only.
    Refresh,
    /// `otp_csrf`: the gate path, host-only.
    Csrf,
}

impl Jar {
    fn name(self) -> &'static str {
        match self {
            Jar::Session => SESSION_COOKIE,
            Jar::Refresh => REFRESH_COOKIE,
            Jar::Csrf => CSRF_COOKIE,
        }
    }
}

/// One `Set-Cookie` value: `value` for `max_age` seconds (`None`: a
/// session cookie, gone when the browser closes).
pub(crate) fn set_cookie(gate: &GateConfig, jar: Jar, value: &str, max_age: Option<u64>) -> String {
    let mut line = format!("{}={value}; Path=", jar.name());
    match jar {
        Jar::Session => line.push('/'),
        Jar::Refresh | Jar::Csrf => line.push_str(gate_path(gate)),
    }
    if let (Jar::Session, Some(domain)) = (jar, &gate.cookie_domain) {
        line.push_str("; Domain=");
        line.push_str(domain);
    }
    if let Some(age) = max_age {
        line.push_str(&format!("; Max-Age={age}"));
    }
    line.push_str("; HttpOnly; SameSite=Lax");
    if gate.secure_cookies {
        line.push_str("; Secure");
    }
    line
}

/// The `Set-Cookie` value that deletes `jar` (same name, `Path` and
/// `Domain` as when it was set, or the browser keeps it).
pub(crate) fn clear_cookie(gate: &GateConfig, jar: Jar) -> String {
    let mut line = set_cookie(gate, jar, "", Some(0));
    line.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    line
}

/// The gate path as a cookie `Path` (`/` for a gate mounted at the root).
fn gate_path(gate: &GateConfig) -> &str {
    if gate.path.is_empty() {
        "/"
    } else {
        &gate.path
    }
}

/// Appends one `Set-Cookie` header (several may be sent).
pub(crate) fn append(res: &mut HttpResponseBuilder, line: String) {
    if let Ok(v) = HeaderValue::try_from(line) {
        res.append_header((header::SET_COOKIE, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn cookie_value_finds_the_named_cookie_among_several_headers() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "a=1; otp_sessionx=no"))
            .append_header((header::COOKIE, "otp_session=tok.en; b=2"))
            .to_http_request();
        assert_eq!(cookie_value(&req, SESSION_COOKIE), Some("tok.en"));
        assert_eq!(cookie_value(&req, "b"), Some("2"));
        assert_eq!(cookie_value(&req, REFRESH_COOKIE), None);
        let empty = TestRequest::default()
            .insert_header((header::COOKIE, "otp_session="))
            .to_http_request();
        assert_eq!(cookie_value(&empty, SESSION_COOKIE), None);
    }

    #[test]
    fn cookie_values_lists_every_non_empty_one_in_header_order() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "x=1; otp_session=; otp_session= d.e.f ;y=2"))
            .append_header((header::COOKIE, "otp_session=\"g.h.i\"; otp_sessionx=s"))
            .append_header((header::COOKIE, "otp_session=caf\u{e9}"))
            .to_http_request();
        let all: Vec<_> = cookie_values(req.headers(), SESSION_COOKIE).collect();
        assert_eq!(
            all,
            ["d.e.f", "g.h.i"],
            "a non-ASCII header is skipped whole"
        );
        assert_eq!(cookie_value(&req, SESSION_COOKIE), Some("d.e.f"));
    }
}
