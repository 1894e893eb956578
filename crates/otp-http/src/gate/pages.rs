//! The gate's pages: askama templates compiled from `templates/gate/` (one
//! layout, one template per step, one style sheet) and the headers every
//! page is sent with.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

use super::GateConfig;

/// The one style sheet, compiled in.
pub(crate) const STYLESHEET: &str = include_str!("../../templates/gate/gate.css");

/// The strict CSP of every page: nothing but the gate's own style sheet,
/// never framed, no `<base>`, and forms only to the gate — and to where
/// its answers redirect: browsers apply `form-action` to the redirect
/// after a form post too, so the 303 of `POST {path}/verify` to an app on
/// another host needs that host listed (every `GATE_ALLOWED_HOSTS` entry,
/// any port, the page's scheme or https; and `GATE_DEFAULT_REDIRECT`'s
/// origin).
pub(crate) fn content_security_policy(gate: &GateConfig) -> String {
    let mut csp =
        String::from("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'");
    for host in gate.redirects.allowed_hosts() {
        csp.push(' ');
        if host.is_wildcard() {
            csp.push_str("*.");
        }
        csp.push_str(host.host());
        csp.push_str(":*");
    }
    if let Some(origin) = super::csrf::origin_of(gate.redirects.default_redirect()) {
        csp.push(' ');
        csp.push_str(&origin);
    }
    csp.push_str("; frame-ancestors 'none'; base-uri 'none'");
    csp
}

/// What every page's layout shows.
pub(crate) struct Page<'a> {
    /// `GATE_TITLE`.
    pub title: &'a str,
    /// `GATE_PATH`.
    pub path: &'a str,
    /// The form token bound to the `otp_csrf` cookie.
    pub csrf: String,
    /// The validated `rd` carried through the forms ("" for the default).
    pub rd: String,
    /// `?rd=<rd, encoded>` or "".
    pub rd_query: String,
    /// An informational line ("You are signed out.").
    pub notice: Option<&'static str>,
    /// An error that belongs to no field (429, delivery, store).
    pub form_error: Option<String>,
}

impl<'a> Page<'a> {
    pub(crate) fn new(gate: &'a GateConfig, csrf: String, rd: Option<&str>) -> Self {
        // Only a redirect the policy allows is carried on: every step
        // re-validates it anyway, but a page never echoes a foreign URL.
        let rd = rd.filter(|rd| gate.redirects.allows(rd)).unwrap_or("");
        let rd_query = if rd.is_empty() {
            String::new()
        } else {
            format!(
                "?{}",
                serde_urlencoded::to_string([("rd", rd)]).unwrap_or_default()
            )
        };
        Page {
            title: &gate.title,
            path: &gate.path,
            csrf,
            rd: rd.to_owned(),
            rd_query,
            notice: None,
            form_error: None,
        }
    }
}

/// `GET/POST {path}/login`: the identity form.
#[derive(Template)]
#[template(path = "gate/login.html")]
pub(crate) struct LoginPage<'a> {
    pub page: Page<'a>,
    /// What the user typed (shown again after an error).
    pub identity: String,
    /// The error of the identity field.
    pub field_error: Option<String>,
    /// The identity of a valid `otp_session` cookie: the page then says
    /// who is signed in, with a continue link and a sign-out link.
    pub signed_in_as: Option<String>,
    /// Where "Continue" leads: the validated `rd`, else
    /// `GATE_DEFAULT_REDIRECT`.
    pub continue_to: &'a str,
}

/// After `POST {path}/login`: the code form.
#[derive(Template)]
#[template(path = "gate/code.html")]
pub(crate) struct CodePage<'a> {
    pub page: Page<'a>,
    /// The normalized identity the code was sent to (or would have been).
    pub identity: String,
    /// Digits of a code (`OTP_DIGITS`).
    pub digits: u8,
    /// The HTML `pattern` of a code, from [`otp_core::CODE_PATTERN`].
    pub pattern: &'static str,
    /// The error of the code field.
    pub field_error: Option<String>,
}

/// `GET {path}/logout`: the sign-out button.
#[derive(Template)]
#[template(path = "gate/logout.html")]
pub(crate) struct LogoutPage<'a> {
    pub page: Page<'a>,
}

/// 403: a POST without a valid CSRF token or from another origin.
#[derive(Template)]
#[template(path = "gate/refused.html")]
pub(crate) struct RefusedPage<'a> {
    pub page: Page<'a>,
}

/// The HTML `pattern` attribute of a code: [`otp_core::CODE_PATTERN`]
/// without its anchors (HTML anchors the pattern itself).
pub(crate) fn code_pattern() -> &'static str {
    otp_core::CODE_PATTERN
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .unwrap_or(otp_core::CODE_PATTERN)
}

/// A response builder with the gate's security headers.
pub(crate) fn builder(gate: &GateConfig, status: StatusCode) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    res.insert_header((
        header::CONTENT_SECURITY_POLICY,
        content_security_policy(gate),
    ))
    .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
    .insert_header((
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    // Same-origin Referer only: our own form posts keep it (the CSRF
    // fallback when a browser sends no Origin), other sites never learn
    // the page's URL (its `rd`).
    .insert_header((
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ))
    .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    res
}

/// Renders `template` into `res` as the body.
pub(crate) fn render(mut res: HttpResponseBuilder, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => res.content_type("text/html; charset=utf-8").body(html),
        Err(e) => {
            tracing::error!(error = %e, "gate page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal server error.")
        }
    }
}

/// `GET {path}/static/gate.css`.
pub(crate) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(STYLESHEET)
}
