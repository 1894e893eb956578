//! The gate's cookies (SPEC §11): `otp_session` (the access token,
//! `Path=/`, `Domain` only with `GATE_COOKIE_DOMAIN`), `otp_refresh` (the
//! refresh token, `Path=<GATE_PATH>`, always host-only) and `otp_csrf` (the
//! CSRF secret, `Path=<GATE_PATH>`, host-only). All `HttpOnly`,
//! `SameSite=Lax`, `Secure` unless `--dev`.
//!
//! Values are base64url or JWT text (no `;`, `,`, space or quote), so they
//! go into `Set-Cookie` as they are.

use actix_web::http::header::{self, HeaderValue};
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
pub fn cookie_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .find_map(|v| header_cookie_value(v.as_bytes(), name))
}

/// [`cookie_value`] in one `Cookie` header value. On the forward-auth hot
/// path: the header is checked to be ASCII a word at a time
/// (`HeaderValue::to_str` checks byte by byte) and the separators are found
/// with `str::split_once` (a `memchr`); the token is most of the header.
fn header_cookie_value<'h>(header: &'h [u8], name: &str) -> Option<&'h str> {
    if !header.is_ascii() {
        return None;
    }
    let mut rest = std::str::from_utf8(header).ok()?;
    while !rest.is_empty() {
        let (pair, tail) = rest.split_once(';').unwrap_or((rest, ""));
        rest = tail;
        let Some((pair_name, value)) = pair.split_once('=') else {
            continue;
        };
        if pair_name.trim_ascii() != name {
            continue;
        }
        let value = value.trim_ascii();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if !value.is_empty() {
            return Some(value);
        }
    }
    None
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
}
