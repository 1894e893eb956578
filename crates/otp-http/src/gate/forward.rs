//! `GET /api/v1/auth/forward` (SPEC §11): the forward-auth check for
//! Traefik ForwardAuth and Caddy `forward_auth`.
//!
//! The same check as `GET /api/v1/token/verify` — the bearer token, else
//! the `otp_session` cookie ([`crate::routes::presented_token`]), verified
//! without touching the store — answered the same way on success (200,
//! `X-Auth-Subject`, `Remote-User`). On failure, a `GET` or `HEAD` whose
//! `Accept` asks for HTML, with the gate on, gets 302 to
//! `{GATE_URL}{GATE_PATH}/renew?rd=<original URL>`; the original URL is
//! built from `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! `X-Forwarded-Uri`, believed only from a peer in `TRUSTED_PROXIES`
//! (otherwise the renew URL has no `rd` and the gate's default redirect
//! applies). Everything else — API calls, form posts, a browser's
//! `fetch` — gets the 401 JSON of `/token/verify`, so it is never bounced
//! into a page.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use super::GateConfig;
use crate::{ApiError, HttpState};

/// Whether a failed check should be answered with a redirect: a GET or
/// HEAD (the method the proxy reports, else the subrequest's own) whose
/// `Accept` includes `text/html`.
fn wants_page(req: &HttpRequest, trusted: bool) -> bool {
    let method = trusted
        .then(|| forwarded(req, "x-forwarded-method"))
        .flatten()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .unwrap_or_else(|| req.method().clone());
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(accepts_html)
}

/// Whether one `Accept` element is `text/html` with a non-zero weight
/// (`text/html;q=0` says "not HTML", RFC 9110 §12.4.2). `*/*` and
/// `text/*` do not count: a browser's page load names `text/html`.
fn accepts_html(media: &str) -> bool {
    let mut parts = media.split(';');
    let is_html = parts
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"));
    is_html
        && !parts.any(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().map_or(true, |q| q <= 0.0)
            })
        })
}

/// One `X-Forwarded-*` header as text.
fn forwarded<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The URL the browser asked for, from a trusted proxy's headers.
fn original_url(req: &HttpRequest) -> Option<String> {
    let proto = forwarded(req, "x-forwarded-proto")?;
    let host = forwarded(req, "x-forwarded-host")?;
    let uri = forwarded(req, "x-forwarded-uri").unwrap_or("/");
    // A proxy may list several values ("https, http"): the first is the
    // client's.
    let proto = proto.split(',').next()?.trim();
    let host = host.split(',').next()?.trim();
    if !proto.eq_ignore_ascii_case("https") && !proto.eq_ignore_ascii_case("http") {
        return None;
    }
    let uri = if uri.starts_with('/') { uri } else { "/" };
    Some(format!("{}://{host}{uri}", proto.to_ascii_lowercase()))
}

/// `{GATE_URL}{GATE_PATH}/renew[?rd=…]`.
pub(crate) fn renew_url(gate: &GateConfig, rd: Option<&str>) -> String {
    let base = format!("{}{}", gate.public_url, gate.route("/renew"));
    match rd {
        Some(rd) => format!(
            "{base}?{}",
            serde_urlencoded::to_string([("rd", rd)]).unwrap_or_default()
        ),
        None => base,
    }
}

/// Check the bearer token or the `otp_session` cookie (forward auth for
/// Traefik ForwardAuth and Caddy `forward_auth`). Touches no store.
#[utoipa::path(
    get,
    path = "/api/v1/auth/forward",
    tag = "token",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Valid token", body = otp_core::wire::TokenStatus,
            headers(("X-Auth-Subject" = String, description = "The token's `sub`"),
                ("Remote-User" = String, description = "The token's `sub`"),
                ("Cache-Control" = String, description = "no-store"))),
        (status = 302, description = "No valid token, the gate is on and a GET/HEAD asks for HTML: to `{GATE_URL}{GATE_PATH}/renew?rd=<original URL>`",
            headers(("Location" = String))),
        (status = 401, description = "`token_missing`, `token_invalid` or `token_expired` (anything but a browser's page load)", body = crate::ErrorResponse,
            headers(("WWW-Authenticate" = String))),
    )
)]
pub async fn forward(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let err = match crate::routes::presented_token(req.headers(), state.service.tokens()) {
        Ok(token) => match crate::routes::verified(&state, token) {
            Ok(res) => return res,
            Err(e) => ApiError::Token(e),
        },
        Err(e) => e,
    };
    if let Some(gate) = &state.gate {
        let trusted = crate::client_ip::is_trusted_peer(&req, &state.config.trusted_proxies);
        if wants_page(&req, trusted) {
            let rd = trusted.then(|| original_url(&req)).flatten();
            let location = renew_url(gate, rd.as_deref());
            if let Ok(location) = HeaderValue::try_from(location) {
                return HttpResponse::Found()
                    .insert_header((header::LOCATION, location))
                    .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                    .finish();
            }
        }
    }
    actix_web::ResponseError::error_response(&err)
}
