//! The web gate (SPEC §11): sign-in pages, session cookies, CSRF, renewal
//! and forward auth for any web application behind nginx `auth_request`,
//! Traefik ForwardAuth or Caddy `forward_auth`.
//!
//! With a [`GateConfig`] in [`HttpState::gate`](crate::HttpState) (set by
//! [`HttpState::with_gate`](crate::HttpState::with_gate), `GATE=on`),
//! [`crate::configure`] also mounts, under [`GateConfig::path`]:
//!
//! | route | what |
//! |---|---|
//! | `GET {path}/login?rd=` | the identity form |
//! | `POST {path}/login` | sends a code (same `OtpService` and limits as the API), shows the code form |
//! | `POST {path}/verify` | checks the code, sets `otp_session` and `otp_refresh`, 303 to `rd` |
//! | `GET {path}/renew?rd=` | rotates the refresh cookie, sets both cookies, 303 to `rd` (or to the login page) |
//! | `GET {path}/logout` | a sign-out button; `POST` ends the session, clears the cookies, 303 to login |
//! | `GET {path}/static/gate.css` | the one style sheet |
//!
//! `HEAD` on the `GET` pages answers as `GET` without a body, except
//! `HEAD {path}/renew`: 200 with no body and no cookies, the store untouched
//! (a link checker or preview must not rotate a session).
//!
//! `GET /api/v1/auth/forward` ([`forward`]) is mounted always: the bearer
//! or `otp_session` check for Traefik and Caddy, which with the gate on
//! sends a browser that asks for HTML to the renew URL (302).
//!
//! Every page is server-rendered by askama from `templates/gate/`, loads
//! nothing but its own style sheet, works without JavaScript and is sent
//! with a strict `Content-Security-Policy`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: same-origin` and `Cache-Control: no-store`.
//!
//! # Layout
//! - [`GateConfig`]: the typed `GATE_*` settings.
//! - [`cookies`]: the three cookies, their scopes and the `Cookie` reader.
//! - `csrf`: the signed double submit and the `Origin`/`Referer` check.
//! - `pages`: the templates and the security headers.
//! - `handlers`: login, verify, renew, logout.
//! - [`forward`]: `GET /api/v1/auth/forward`.

use std::sync::Arc;

use actix_web::web;
use otp_service::IdentityAllowlist;

use crate::redirect::RedirectPolicy;

pub mod cookies;
mod csrf;
pub mod forward;
mod handlers;
mod pages;

pub use cookies::{cookie_value, CSRF_COOKIE, REFRESH_COOKIE, SESSION_COOKIE};
pub use csrf::CSRF_KEY_LABEL;

/// The default of [`GateConfig::path`] (`GATE_PATH`).
pub const DEFAULT_GATE_PATH: &str = "/auth";
/// The default of [`GateConfig::title`] (`GATE_TITLE`).
pub const DEFAULT_GATE_TITLE: &str = "Sign in";

/// The gate's settings (`GATE=on`; SPEC §11). The binary builds it from
/// the `GATE_*` variables; libraries never read the environment.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Where the pages live (`GATE_PATH`), without a trailing slash.
    /// Defaults to [`DEFAULT_GATE_PATH`] (`/auth`).
    pub path: String,
    /// The gate's public origin (`GATE_URL`), e.g.
    /// `https://auth.example.com`, no path: the renew URL of forward auth
    /// and the only origin a form POST is accepted from.
    pub public_url: String,
    /// The site's name on every page (`GATE_TITLE`). Defaults to
    /// [`DEFAULT_GATE_TITLE`].
    pub title: String,
    /// `Domain` of the `otp_session` cookie (`GATE_COOKIE_DOMAIN`);
    /// `None` keeps it host-only. `otp_refresh` and `otp_csrf` are always
    /// host-only. Defaults to `None`.
    pub cookie_domain: Option<String>,
    /// Whether the cookies are `Secure`; false only with `--dev`. Defaults
    /// to true.
    pub secure_cookies: bool,
    /// Where `rd` may point (`GATE_ALLOWED_HOSTS`, https unless `--dev`,
    /// `GATE_DEFAULT_REDIRECT`).
    pub redirects: RedirectPolicy,
    /// Who may receive a code through the pages
    /// (`GATE_ALLOWED_IDENTITIES`, required with `GATE=on`).
    pub identities: IdentityAllowlist,
}

impl GateConfig {
    /// `{path}{route}`, e.g. `/auth/login`.
    fn route(&self, route: &str) -> String {
        format!("{}{route}", self.path)
    }
}

/// Mounts the gate pages of `gate` (see the [module docs](self)).
pub(crate) fn register(
    cfg: &mut web::ServiceConfig,
    gate: &Arc<GateConfig>,
    metrics: &Arc<crate::http_metrics::HttpMetrics>,
) {
    let resource = |route: &str, allow: &'static str| {
        let path = gate.route(route);
        web::resource(path.clone())
            .app_data(web::PayloadConfig::new(handlers::MAX_FORM_BYTES))
            .wrap(crate::layers::RouteLayers::new(metrics, &path))
            .default_service(web::to(move || {
                crate::routes::method_not_allowed_for(allow)
            }))
    };
    // HEAD is GET without a body (RFC 9110 §9.3.2; the server drops the
    // body), except on renew, where it must not spend the refresh token.
    cfg.service(
        resource("/login", "GET, HEAD, POST")
            .route(web::get().to(handlers::login_page))
            .route(web::head().to(handlers::login_page))
            .route(web::post().to(handlers::login_submit)),
    )
    .service(resource("/verify", "POST").route(web::post().to(handlers::verify_submit)))
    .service(
        resource("/renew", "GET, HEAD")
            .route(web::get().to(handlers::renew))
            .route(web::head().to(handlers::renew_head)),
    )
    .service(
        resource("/logout", "GET, HEAD, POST")
            .route(web::get().to(handlers::logout_page))
            .route(web::head().to(handlers::logout_page))
            .route(web::post().to(handlers::logout_submit)),
    )
    .service(
        resource("/static/gate.css", "GET, HEAD")
            .route(web::get().to(pages::stylesheet))
            .route(web::head().to(pages::stylesheet)),
    );
}
