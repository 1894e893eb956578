//! The gate's page handlers: login, verify, renew, logout (SPEC §11). They
//! call the same [`OtpService`](otp_service::OtpService) methods with the
//! same [`RequestContext`](otp_service::RequestContext) as the JSON API, so
//! every limit of SPEC §6 applies to the pages too.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use otp_core::wire::messages;
use otp_core::{Identity, SecretBytes};
use otp_service::{LimitedOperation, ServiceError, VerifyOptions};
use serde::Deserialize;

use super::cookies::{self, cookie_value, Jar, CSRF_COOKIE, REFRESH_COOKIE, SESSION_COOKIE};
use super::csrf::{self, CSRF_KEY_LABEL};
use super::pages::{self, CodePage, LoginPage, LogoutPage, Page, RefusedPage};
use super::GateConfig;
use crate::HttpState;

/// Largest accepted form body; a larger one is 413.
pub(crate) const MAX_FORM_BYTES: usize = 8 * 1024;

/// Lifetime of the `otp_csrf` cookie: long enough to fill in a form after
/// a coffee break, renewed by every page that shows a form.
const CSRF_MAX_AGE_SECONDS: u64 = 3600;

/// The fields any gate form may send (unknown ones are ignored).
#[derive(Debug, Default, Deserialize)]
struct Form {
    csrf: Option<String>,
    rd: Option<String>,
    identity: Option<String>,
    otp: Option<String>,
    everywhere: Option<String>,
}

/// The query of `GET` pages.
#[derive(Debug, Default, Deserialize)]
struct Query {
    rd: Option<String>,
    signed_out: Option<String>,
}

fn query(req: &HttpRequest) -> Query {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

/// A form body that does not parse (bad encoding, a repeated field) is
/// treated as empty: without its CSRF token it is then refused.
fn form(body: &[u8]) -> Form {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// A form body, or the answer when it could not be read: 413 (the
/// API's JSON error) over [`MAX_FORM_BYTES`], else actix's own (408 when
/// the body is too slow, 400 when it is cut short).
fn form_body(body: Result<web::Bytes, actix_web::Error>) -> Result<web::Bytes, Box<HttpResponse>> {
    body.map_err(|e| {
        use actix_web::error::PayloadError;
        Box::new(match e.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => actix_web::ResponseError::error_response(
                &crate::ApiError::PayloadTooLarge(MAX_FORM_BYTES),
            ),
            _ => e.error_response(),
        })
    })
}

/// The gate of a request (the routes are mounted only with one).
fn gate_of(state: &HttpState) -> Option<&Arc<GateConfig>> {
    state.gate.as_ref()
}

/// The response when the gate is off (the routes are not even mounted
/// then; kept for an embedder that mounts them by hand).
fn gate_off() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

/// The CSRF key: derived from the OTP key, so every replica agrees.
fn csrf_key(state: &HttpState) -> SecretBytes {
    state.service.engine().keys().derive_subkey(CSRF_KEY_LABEL)
}

/// The browser's CSRF secret: its `otp_csrf` cookie when well formed,
/// else a new one.
struct CsrfSecret {
    secret: String,
}

impl CsrfSecret {
    fn of(req: &HttpRequest) -> Self {
        let secret = cookie_value(req, CSRF_COOKIE)
            .filter(|s| csrf::is_secret(s))
            .map_or_else(csrf::new_secret, str::to_owned);
        CsrfSecret { secret }
    }

    /// The page's form token; sets (or refreshes) the cookie on `res`.
    fn token(&self, state: &HttpState, gate: &GateConfig, res: &mut HttpResponseBuilder) -> String {
        cookies::append(
            res,
            cookies::set_cookie(gate, Jar::Csrf, &self.secret, Some(CSRF_MAX_AGE_SECONDS)),
        );
        csrf::token_for(&csrf_key(state), &self.secret)
    }
}

/// Refuses a POST without a valid CSRF token or from another origin: the
/// 403 page, and nothing was done.
fn guard(
    req: &HttpRequest,
    state: &HttpState,
    gate: &GateConfig,
    form: &Form,
) -> Option<HttpResponse> {
    let checked = csrf::check_origin(req, &gate.public_url).and_then(|()| {
        csrf::check_token(
            &csrf_key(state),
            cookie_value(req, CSRF_COOKIE),
            form.csrf.as_deref(),
        )
    });
    let refusal = checked.err()?;
    tracing::info!(reason = refusal.as_str(), "gate: form post refused");
    let page = Page::new(gate, String::new(), form.rd.as_deref());
    Some(pages::render(
        pages::builder(gate, StatusCode::FORBIDDEN),
        &RefusedPage { page },
    ))
}

/// The service context of a page request: the client IP as the API
/// resolves it, and the gate's identity list as the call's second
/// allowlist.
fn gate_context(
    req: &HttpRequest,
    state: &HttpState,
    gate: &GateConfig,
) -> otp_service::RequestContext {
    crate::routes::context(req, state).with_allowed_identities(gate.identities.clone())
}

/// How a service failure shows on a page.
struct Shown {
    status: StatusCode,
    message: String,
    /// Whether it belongs to the field (identity or code) or the form.
    field: bool,
    retry_after: Option<u64>,
}

/// "in 42 seconds", "in 3 minutes".
fn wait_words(secs: u64) -> String {
    match secs {
        0 | 1 => "in a second".to_owned(),
        2..=119 => format!("in {secs} seconds"),
        _ => format!("in {} minutes", secs.div_ceil(60)),
    }
}

/// The §5 words of a service failure.
fn shown(e: &ServiceError) -> Shown {
    let form = |status, message: String, retry_after| Shown {
        status,
        message,
        field: false,
        retry_after,
    };
    match e {
        ServiceError::InvalidIdentity(err) => Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("This is not a valid e-mail address or phone number ({err})."),
            field: true,
            retry_after: None,
        },
        ServiceError::InvalidCodeFormat => Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("The code {}.", otp_core::CODE_RULE),
            field: true,
            retry_after: None,
        },
        ServiceError::InvalidOtp { .. } => Shown {
            status: StatusCode::BAD_REQUEST,
            message: messages::OTP_INVALID.to_owned(),
            field: true,
            retry_after: None,
        },
        ServiceError::RateLimited {
            operation,
            retry_after_secs,
            ..
        } => {
            let words = match operation {
                LimitedOperation::Request => messages::TOO_MANY_REQUESTS,
                LimitedOperation::Verify => messages::TOO_MANY_VERIFICATIONS,
            };
            form(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{words} You can try again {}.",
                    wait_words(*retry_after_secs)
                ),
                Some(*retry_after_secs),
            )
        }
        ServiceError::DeliveryFailed(_) => form(
            StatusCode::BAD_GATEWAY,
            messages::DELIVERY_FAILED.to_owned(),
            None,
        ),
        ServiceError::Unavailable(_) => form(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable. Please try again shortly.".to_owned(),
            Some(1),
        ),
        _ => form(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error.".to_owned(),
            None,
        ),
    }
}

/// A page builder for `shown`, with `Retry-After` when it has a wait.
fn error_builder(gate: &GateConfig, shown: &Shown) -> HttpResponseBuilder {
    let mut res = pages::builder(gate, shown.status);
    if let Some(secs) = shown.retry_after {
        res.insert_header((header::RETRY_AFTER, secs.max(1)));
    }
    res
}

/// What the page builders of one request share.
struct Pager<'a> {
    req: &'a HttpRequest,
    state: &'a HttpState,
    gate: &'a GateConfig,
    rd: Option<&'a str>,
}

/// `error` split into (field error, form error).
fn split(error: Option<&Shown>) -> (Option<String>, Option<String>) {
    match error {
        Some(e) if e.field => (Some(e.message.clone()), None),
        Some(e) => (None, Some(e.message.clone())),
        None => (None, None),
    }
}

impl Pager<'_> {
    /// The layout's data, with a CSRF token bound to the cookie set on `res`.
    fn page(&self, res: &mut HttpResponseBuilder) -> Page<'_> {
        let token = CsrfSecret::of(self.req).token(self.state, self.gate, res);
        Page::new(self.gate, token, self.rd)
    }

    /// The identity form.
    fn login(
        &self,
        mut res: HttpResponseBuilder,
        identity: String,
        error: Option<&Shown>,
        notice: Option<&'static str>,
    ) -> HttpResponse {
        let mut page = self.page(&mut res);
        page.notice = notice;
        let (field_error, form_error) = split(error);
        page.form_error = form_error;
        let login = LoginPage {
            page,
            identity,
            field_error,
            signed_in_as: None,
            continue_to: self.gate.redirects.resolve(self.rd),
        };
        pages::render(res, &login)
    }

    /// The code form for `identity`.
    fn code(
        &self,
        mut res: HttpResponseBuilder,
        identity: &Identity,
        error: Option<&Shown>,
    ) -> HttpResponse {
        let mut page = self.page(&mut res);
        let (field_error, form_error) = split(error);
        page.form_error = form_error;
        let code = CodePage {
            page,
            identity: identity.as_str().to_owned(),
            digits: self.state.service.engine().policy().digits().count(),
            pattern: pages::code_pattern(),
            field_error,
        };
        pages::render(res, &code)
    }
}

/// `GET {path}/login?rd=`: the identity form.
pub(crate) async fn login_page(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let Some(gate) = gate_of(&state) else {
        return gate_off();
    };
    let q = query(&req);
    let notice = q.signed_out.is_some().then_some("You are signed out.");
    let pager = Pager {
        req: &req,
        state: &state,
        gate,
        rd: q.rd.as_deref(),
    };
    let mut res = pages::builder(gate, StatusCode::OK);
    let mut page = pager.page(&mut res);
    page.notice = notice;
    let login = LoginPage {
        page,
        identity: String::new(),
        field_error: None,
        signed_in_as: signed_in_as(&req, &state, gate),
        continue_to: gate.redirects.resolve(q.rd.as_deref()),
    };
    pages::render(res, &login)
}

/// Who the browser's `otp_session` cookie signs in, when it holds a valid
/// access token of an identity the gate still allows (checked like forward
/// auth: signature and expiry, no store). With several `otp_session`
/// cookies (a sibling subdomain may toss one), only one that every other
/// valid one agrees with counts.
fn signed_in_as(req: &HttpRequest, state: &HttpState, gate: &GateConfig) -> Option<String> {
    let claims = crate::routes::session_claims(req, state)?;
    Identity::parse(&claims.sub)
        .is_ok_and(|id| gate.identities.allows(&id))
        .then_some(claims.sub)
}

/// A form post with an identity: refused (403) unless the CSRF guard
/// passes; the login page again (422) when the identity is malformed.
fn identity_form(
    req: &HttpRequest,
    state: &HttpState,
    body: &[u8],
) -> Result<(Arc<GateConfig>, Form, Identity), Box<HttpResponse>> {
    let gate = gate_of(state).ok_or_else(|| Box::new(gate_off()))?;
    let form = form(body);
    if let Some(refused) = guard(req, state, gate, &form) {
        return Err(Box::new(refused));
    }
    let raw = form.identity.as_deref().unwrap_or_default();
    match Identity::parse(raw) {
        Ok(identity) => Ok((gate.clone(), form, identity)),
        Err(e) => {
            let shown = shown(&ServiceError::InvalidIdentity(e));
            let pager = Pager {
                req,
                state,
                gate,
                rd: form.rd.as_deref(),
            };
            let page = pager.login(
                error_builder(gate, &shown),
                raw.to_owned(),
                Some(&shown),
                None,
            );
            Err(Box::new(page))
        }
    }
}

/// `POST {path}/login`: sends a code when the identity may sign in, and
/// shows the code form either way (no enumeration).
pub(crate) async fn login_submit(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let body = match form_body(body) {
        Ok(body) => body,
        Err(res) => return *res,
    };
    let (gate, form, identity) = match identity_form(&req, &state, &body) {
        Ok(accepted) => accepted,
        Err(page) => return *page,
    };
    let pager = Pager {
        req: &req,
        state: &state,
        gate: &gate,
        rd: form.rd.as_deref(),
    };
    // A refused identity (GATE_ALLOWED_IDENTITIES) goes through the same
    // limits and gets the same answer, and nothing is sent (the service's
    // refusal path, as for ALLOWED_IDENTITIES).
    let ctx = gate_context(&req, &state, &gate);
    match state.service.request_otp(identity.as_str(), &ctx).await {
        Ok(_) => pager.code(pages::builder(&gate, StatusCode::OK), &identity, None),
        Err(e) => {
            let shown = shown(&e);
            let identity = identity.into_string();
            pager.login(error_builder(&gate, &shown), identity, Some(&shown), None)
        }
    }
}

/// A 303 to `location` with the gate's headers.
fn see_other(gate: &GateConfig, location: &str) -> HttpResponseBuilder {
    let mut res = pages::builder(gate, StatusCode::SEE_OTHER);
    if let Ok(v) = HeaderValue::try_from(location) {
        res.insert_header((header::LOCATION, v));
    }
    res
}

/// Sets `otp_session` (and `otp_refresh` when sessions are on) on `res`.
fn set_session(
    gate: &GateConfig,
    res: &mut HttpResponseBuilder,
    access: &otp_core::IssuedToken,
    refresh: Option<&otp_service::IssuedRefresh>,
) {
    cookies::append(
        res,
        cookies::set_cookie(gate, Jar::Session, &access.token, Some(access.expires_in)),
    );
    if let Some(refresh) = refresh {
        cookies::append(
            res,
            cookies::set_cookie(gate, Jar::Refresh, &refresh.token, Some(refresh.expires_in)),
        );
    }
}

/// `POST {path}/verify`: checks the code; on success sets both cookies and
/// answers 303 to the validated `rd`.
pub(crate) async fn verify_submit(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let body = match form_body(body) {
        Ok(body) => body,
        Err(res) => return *res,
    };
    let (gate, form, identity) = match identity_form(&req, &state, &body) {
        Ok(accepted) => accepted,
        Err(page) => return *page,
    };
    let rd = form.rd.as_deref();
    let otp = form.otp.as_deref().unwrap_or_default().trim();
    // A refused identity fails as a wrong code, after the same limits and
    // comparison (no code was sent, so a guess must never sign it in).
    let ctx = gate_context(&req, &state, &gate);
    let result = state
        .service
        .verify_otp(identity.as_str(), otp, &ctx, VerifyOptions::default())
        .await;
    match result {
        Ok(out) => {
            let mut res = see_other(&gate, gate.redirects.resolve(rd));
            set_session(&gate, &mut res, &out.token, out.refresh.as_ref());
            res.finish()
        }
        Err(e) => {
            let shown = shown(&e);
            let pager = Pager {
                req: &req,
                state: &state,
                gate: &gate,
                rd,
            };
            pager.code(error_builder(&gate, &shown), &identity, Some(&shown))
        }
    }
}

/// `{path}/login` with `rd` (and `extra` query pairs).
fn login_url(gate: &GateConfig, rd: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = extra.to_vec();
    if let Some(rd) = rd.filter(|rd| gate.redirects.allows(rd)) {
        pairs.push(("rd", rd));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        gate.route("/login")
    } else {
        format!("{}?{query}", gate.route("/login"))
    }
}

/// `GET {path}/renew?rd=`: a new access token from the refresh cookie (the
/// refresh token rotates), both cookies set, 303 to `rd`; without a usable
/// refresh cookie, 303 to the login page with `rd`.
pub(crate) async fn renew(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let Some(gate) = gate_of(&state) else {
        return gate_off();
    };
    let q = query(&req);
    let rd = q.rd.as_deref();
    let Some(token) = cookie_value(&req, REFRESH_COOKIE) else {
        return see_other(gate, &login_url(gate, rd, &[])).finish();
    };
    let ctx = crate::routes::context(&req, &state);
    let refreshed = state
        .service
        .refresh_with(token, &ctx)
        .await
        .and_then(|out| {
            // Someone removed from GATE_ALLOWED_IDENTITIES stops renewing.
            let allowed =
                Identity::parse(&out.token.claims.sub).is_ok_and(|id| gate.identities.allows(&id));
            if allowed {
                Ok(out)
            } else {
                Err(ServiceError::SessionRevoked)
            }
        });
    match refreshed {
        Ok(out) => {
            let mut res = see_other(gate, gate.redirects.resolve(rd));
            set_session(gate, &mut res, &out.token, Some(&out.refresh));
            res.finish()
        }
        Err(e @ ServiceError::Unavailable(_)) | Err(e @ ServiceError::Internal(_)) => {
            let shown = shown(&e);
            let pager = Pager {
                req: &req,
                state: &state,
                gate,
                rd,
            };
            pager.login(
                error_builder(gate, &shown),
                String::new(),
                Some(&shown),
                None,
            )
        }
        Err(e) => {
            tracing::debug!(error = %e, "gate: renew refused; back to sign-in");
            // The refresh cookie is dead: drop it, and the stale access
            // cookie with it.
            let mut res = see_other(gate, &login_url(gate, rd, &[]));
            cookies::append(&mut res, cookies::clear_cookie(gate, Jar::Refresh));
            cookies::append(&mut res, cookies::clear_cookie(gate, Jar::Session));
            res.finish()
        }
    }
}

/// `HEAD {path}/renew`: 200 without a body or cookies, the store
/// untouched. A `HEAD` (a link checker, a preview fetcher, a prefetch)
/// must not rotate the refresh token the way the `GET` does; it learns
/// only that the route exists.
pub(crate) async fn renew_head(state: web::Data<HttpState>) -> HttpResponse {
    match gate_of(&state) {
        Some(gate) => pages::builder(gate, StatusCode::OK).finish(),
        None => gate_off(),
    }
}

/// `GET {path}/logout`: a sign-out button (a GET never signs out: a link
/// or an image on another site cannot end the session).
pub(crate) async fn logout_page(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let Some(gate) = gate_of(&state) else {
        return gate_off();
    };
    let q = query(&req);
    let mut res = pages::builder(gate, StatusCode::OK);
    let token = CsrfSecret::of(&req).token(&state, gate, &mut res);
    let page = Page::new(gate, token, q.rd.as_deref());
    pages::render(res, &LogoutPage { page })
}

/// `POST {path}/logout`: ends the session server-side (from the refresh
/// cookie, else the access cookie; with `everywhere=on` every session of
/// the identity), clears both cookies and answers 303 to the login page.
pub(crate) async fn logout_submit(
    req: HttpRequest,
    state: web::Data<HttpState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let Some(gate) = gate_of(&state) else {
        return gate_off();
    };
    let body = match form_body(body) {
        Ok(body) => body,
        Err(res) => return *res,
    };
    let form = form(&body);
    if let Some(refused) = guard(&req, &state, gate, &form) {
        return refused;
    }
    let everywhere = form.everywhere.as_deref() == Some("on");
    let token = cookie_value(&req, REFRESH_COOKIE).or_else(|| cookie_value(&req, SESSION_COOKIE));
    if let Some(token) = token {
        let ctx = crate::routes::context(&req, &state);
        match state.service.logout_with(token, everywhere, &ctx).await {
            Ok(_) => {}
            Err(e @ ServiceError::Unavailable(_)) => {
                // Keep the cookies: the session could not be ended, and
                // the user must be able to try again.
                let shown = shown(&e);
                let mut res = error_builder(gate, &shown);
                let csrf = CsrfSecret::of(&req).token(&state, gate, &mut res);
                let mut page = Page::new(gate, csrf, form.rd.as_deref());
                page.form_error = Some(shown.message);
                return pages::render(res, &LogoutPage { page });
            }
            // Invalid or foreign cookies: nothing to end server-side.
            Err(e) => tracing::debug!(error = %e, "gate: logout token not genuine"),
        }
    }
    let mut res = see_other(
        gate,
        &login_url(gate, form.rd.as_deref(), &[("signed_out", "1")]),
    );
    cookies::append(&mut res, cookies::clear_cookie(gate, Jar::Session));
    cookies::append(&mut res, cookies::clear_cookie(gate, Jar::Refresh));
    res.finish()
}
