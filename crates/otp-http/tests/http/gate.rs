//! The web gate of SPEC §11 over HTTP (issue 15): the pages and their
//! attributes, the cookies and their scopes, CSRF (signed double submit and
//! the Origin/Referer rule), renew, logout, and `/api/v1/auth/forward`.
//!
//! [`Browser`] keeps the cookies a browser would (by name; the scopes are
//! asserted on the `Set-Cookie` lines themselves) and sends the `Origin`
//! a browser sends with a form post.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use otp_http::gate::GateConfig;
use otp_http::redirect::RedirectPolicy;
use otp_http::HttpConfig;
use otp_ratelimit::LimitPolicy;
use otp_service::{IdentityAllowlist, Limits};

use crate::support::{
    harness, obtain_code, send, wrong_code, FailingDelivery, Harness, Reply, Setup,
};

mod hostile;

/// The gate's public origin in these tests.
const GATE_URL: &str = "https://auth.example.com";
/// The app the gate protects.
const APP: &str = "https://app.example.com/wiki/page?x=1";

fn gate_config() -> GateConfig {
    GateConfig {
        path: "/auth".into(),
        public_url: GATE_URL.into(),
        title: "Example Corp".into(),
        cookie_domain: None,
        secure_cookies: true,
        redirects: RedirectPolicy::new(
            vec!["app.example.com".parse().unwrap()],
            true,
            "https://app.example.com/".into(),
        ),
        identities: IdentityAllowlist::parse("*@example.com").unwrap(),
    }
}

fn gated(setup: Setup, gate: GateConfig) -> Harness {
    let mut h = setup.build();
    h.state = h.state.clone().with_gate(gate);
    h
}

/// The gate over a service with `limits`.
fn gate_with_limits(limits: Limits) -> Harness {
    gated(
        Setup {
            limits,
            ..Setup::default()
        },
        gate_config(),
    )
}

/// The gate behind a proxy at 10.0.0.0/8 (`TRUSTED_PROXIES`).
fn behind_proxy() -> Harness {
    gated(
        Setup {
            http: HttpConfig {
                trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
                ..HttpConfig::default()
            },
            ..Setup::default()
        },
        gate_config(),
    )
}

fn gate_harness() -> Harness {
    gated(Setup::default(), gate_config())
}

/// A cookie jar and the headers a browser adds.
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn with_cookies(&self, req: TestRequest) -> TestRequest {
        if self.cookies.is_empty() {
            req
        } else {
            req.insert_header(("Cookie", self.cookie_header()))
        }
    }

    /// Keeps the cookies of `r` (a `Max-Age=0` deletes).
    fn keep(&mut self, r: &Reply) {
        for line in r.headers.get_all("set-cookie") {
            let line = line.to_str().unwrap();
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn get<S, B>(&mut self, app: &S, uri: &str) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let r = send(app, self.with_cookies(TestRequest::get().uri(uri))).await;
        self.keep(&r);
        r
    }

    async fn post<S, B>(&mut self, app: &S, uri: &str, form: &[(&str, &str)]) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let req = TestRequest::post()
            .uri(uri)
            .insert_header(("Origin", GATE_URL))
            .set_form(form);
        self.send(app, req).await
    }

    /// Sends `req` with the jar's cookies and keeps the answer's.
    async fn send<S, B>(&mut self, app: &S, req: TestRequest) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let r = send(app, self.with_cookies(req)).await;
        self.keep(&r);
        r
    }

    /// The login page's CSRF token (the jar keeps its cookie).
    async fn csrf<S, B>(&mut self, app: &S) -> String
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let r = self.get(app, "/auth/login").await;
        assert_eq!(r.status, 200, "{}", r.text());
        field(&r.text(), "csrf")
    }

    /// Login page → code page for `identity`; returns the code page.
    async fn ask_code<S, B>(&mut self, app: &S, identity: &str) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let csrf = self.csrf(app).await;
        self.post(
            app,
            "/auth/login",
            &[("csrf", &csrf), ("rd", APP), ("identity", identity)],
        )
        .await
    }

    /// Code page → verify with `code`; returns the verify answer.
    async fn enter_code<S, B>(&mut self, app: &S, code_page: &Reply, code: &str) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let html = code_page.text();
        let (csrf, identity) = (field(&html, "csrf"), field(&html, "identity"));
        self.post(
            app,
            "/auth/verify",
            &[
                ("csrf", &csrf),
                ("rd", APP),
                ("identity", &identity),
                ("otp", code),
            ],
        )
        .await
    }

    /// Posts the code form of `code_page_html` (for alice@example.com)
    /// with `rd` and `code`.
    async fn verify<S, B>(&mut self, app: &S, code_page_html: &str, rd: &str, code: &str) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        self.post(
            app,
            "/auth/verify",
            &[
                ("csrf", &field(code_page_html, "csrf")),
                ("rd", rd),
                ("identity", "alice@example.com"),
                ("otp", code),
            ],
        )
        .await
    }

    /// Signs `identity` (normalized) in through the pages; returns the
    /// verify answer (303 to the app).
    async fn sign_in<S, B>(&mut self, h: &Harness, app: &S, identity: &str) -> Reply
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let page = self.ask_code(app, identity).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let done = self
            .enter_code(app, &page, &h.outbox.last_code(identity))
            .await;
        assert_eq!(done.status, 303, "{}", done.text());
        done
    }
}

/// The value of the hidden field `name` in `html`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&#38;", "&").replace("&amp;", "&")
}

/// The `Set-Cookie` line of `name` in `r`.
fn set_cookie<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap())
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie {name}: {:?}", r.headers))
}

#[actix_web::test]
async fn gate_sign_in_flow_sets_both_cookies_and_forward_auth_accepts_the_session_cookie() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let login = b
        .get(&app, &format!("/auth/login?rd={}", urlencode(APP)))
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let html = login.text();
    assert!(html.contains("Example Corp"), "{html}");
    let csrf = field(&html, "csrf");
    assert_eq!(field(&html, "rd"), APP);
    let code_page = b
        .post(
            &app,
            "/auth/login",
            &[
                ("csrf", &csrf),
                ("rd", APP),
                ("identity", "Alice@Example.com"),
            ],
        )
        .await;
    assert_eq!(code_page.status, 200, "{}", code_page.text());
    let html = code_page.text();
    assert!(html.contains(r#"autocomplete="one-time-code""#), "{html}");
    let code = h.outbox.last_code("alice@example.com");
    let csrf = field(&html, "csrf");
    let done = b
        .post(
            &app,
            "/auth/verify",
            &[
                ("csrf", &csrf),
                ("rd", APP),
                ("identity", "alice@example.com"),
                ("otp", &code),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(done.header("location"), Some(APP));
    let session = set_cookie(&done, "otp_session");
    assert!(session.contains("; Path=/;"), "{session}");
    assert!(!session.contains("Domain"), "{session}");
    let refresh = set_cookie(&done, "otp_refresh");
    assert!(refresh.contains("; Path=/auth;"), "{refresh}");
    for line in [session, refresh] {
        assert!(
            line.contains("HttpOnly") && line.contains("Secure") && line.contains("SameSite=Lax"),
            "{line}"
        );
    }
    let forward = send(
        &app,
        TestRequest::get()
            .uri("/api/v1/auth/forward")
            .insert_header((
                "Cookie",
                format!("otp_session={}", b.cookies["otp_session"]),
            )),
    )
    .await;
    assert_eq!(forward.status, 200, "{}", forward.text());
    assert_eq!(forward.header("x-auth-subject"), Some("alice@example.com"));
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}

/// `GET /api/v1/auth/forward` with `headers`, from `peer`.
fn forward_req(headers: &[(&str, &str)]) -> TestRequest {
    let mut req = TestRequest::get()
        .uri("/api/v1/auth/forward")
        .peer_addr("192.0.2.9:40000".parse().unwrap());
    for (n, v) in headers {
        req = req.insert_header((*n, *v));
    }
    req
}

#[actix_web::test]
async fn gate_login_page_has_labels_autocomplete_csp_and_a_scoped_csrf_cookie() {
    let h = gate_harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/auth/login")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'self'; img-src 'self'; \
             form-action 'self' app.example.com:* https://app.example.com; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    for needle in [
        r#"<html lang="en">"#,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#,
        r#"<label for="identity">"#,
        r#"id="identity" name="identity""#,
        r#"autocomplete="username""#,
        r#"aria-describedby="identity-hint""#,
        r#"<form method="post" action="/auth/login""#,
        r#"<link rel="stylesheet" href="/auth/static/gate.css">"#,
        "Example Corp",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    // No script, no external asset.
    assert!(!html.contains("<script"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let csrf = set_cookie(&r, "otp_csrf");
    assert!(csrf.contains("; Path=/auth;"), "{csrf}");
    assert!(!csrf.contains("Domain"), "{csrf}");
    assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax") && csrf.contains("Secure"));
    let css = send(&app, TestRequest::get().uri("/auth/static/gate.css")).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.text().contains("@media"), "responsive rules");
}

#[actix_web::test]
async fn gate_code_page_asks_for_a_numeric_one_time_code() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let page = b.ask_code(&app, "alice@example.com").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    for needle in [
        r#"<label for="otp">Code</label>"#,
        r#"autocomplete="one-time-code""#,
        r#"inputmode="numeric""#,
        r#"pattern="[0-9]{4,10}""#,
        r#"<form method="post" action="/auth/verify""#,
        "6 digits",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    assert_eq!(field(&html, "identity"), "alice@example.com");
    assert_eq!(field(&html, "rd"), APP);
}

#[actix_web::test]
async fn gate_logout_get_only_shows_a_button_and_post_clears_both_cookies() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    let refresh = b.cookies["otp_refresh"].clone();
    let page = b.get(&app, "/auth/logout").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains(r#"<form method="post" action="/auth/logout">"#),
        "{html}"
    );
    assert!(html.contains(r#"<button type="submit""#), "{html}");
    assert!(b.cookies.contains_key("otp_session") && b.cookies.contains_key("otp_refresh"));
    let csrf = field(&html, "csrf");
    let out = b.post(&app, "/auth/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.text());
    assert_eq!(out.header("location"), Some("/auth/login?signed_out=1"));
    let session = set_cookie(&out, "otp_session");
    assert!(
        session.contains("Max-Age=0") && session.contains("; Path=/;"),
        "{session}"
    );
    let cleared = set_cookie(&out, "otp_refresh");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("; Path=/auth;"),
        "{cleared}"
    );
    assert!(!b.cookies.contains_key("otp_session") && !b.cookies.contains_key("otp_refresh"));
    // The session ended server-side: the old refresh token renews nothing.
    let renew = send(
        &app,
        TestRequest::get()
            .uri("/auth/renew")
            .insert_header(("Cookie", format!("otp_refresh={refresh}"))),
    )
    .await;
    assert_eq!(renew.status, 303);
    assert_eq!(renew.header("location"), Some("/auth/login"));
    let signed_out = b.get(&app, "/auth/login?signed_out=1").await;
    assert!(signed_out.text().contains("You are signed out."));
}

#[actix_web::test]
async fn gate_renew_rotates_the_refresh_cookie_and_sets_both() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    let old_refresh = b.cookies["otp_refresh"].clone();
    let r = b
        .get(&app, &format!("/auth/renew?rd={}", urlencode(APP)))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(APP));
    assert!(set_cookie(&r, "otp_session").contains("; Path=/;"));
    assert!(set_cookie(&r, "otp_refresh").contains("; Path=/auth;"));
    assert_ne!(
        b.cookies["otp_refresh"], old_refresh,
        "the refresh token rotates"
    );
    let forward = send(
        &app,
        forward_req(&[(
            "Cookie",
            &format!("otp_session={}", b.cookies["otp_session"]),
        )]),
    )
    .await;
    assert_eq!(forward.status, 200);
    assert_eq!(forward.header("x-auth-subject"), Some("alice@example.com"));
    // A foreign rd after renew falls back to the default redirect.
    let r = b
        .get(&app, "/auth/renew?rd=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("https://app.example.com/"));
}

#[actix_web::test]
async fn gate_renew_without_a_usable_refresh_cookie_goes_to_the_login_page_with_rd() {
    let h = gate_harness();
    let app = h.app().await;
    let r = send(
        &app,
        TestRequest::get().uri(&format!("/auth/renew?rd={}", urlencode(APP))),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/auth/login?rd={}", urlencode(APP)).as_str())
    );
    let r = send(
        &app,
        TestRequest::get()
            .uri("/auth/renew?rd=https%3A%2F%2Fevil.example%2F")
            .insert_header(("Cookie", "otp_refresh=not-a-token")),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/auth/login"),
        "a foreign rd is dropped"
    );
    assert!(
        set_cookie(&r, "otp_refresh").contains("Max-Age=0"),
        "the dead cookie is cleared"
    );
    // The login page carries the validated rd into its form.
    let mut b = Browser::default();
    let page = b
        .get(&app, &format!("/auth/login?rd={}", urlencode(APP)))
        .await;
    assert_eq!(field(&page.text(), "rd"), APP);
    let page = b.get(&app, "/auth/login?rd=javascript%3Aalert(1)").await;
    assert_eq!(field(&page.text(), "rd"), "");
}

#[actix_web::test]
async fn gate_cookie_domain_scopes_only_the_session_cookie() {
    let h = gated(
        Setup::default(),
        GateConfig {
            cookie_domain: Some("example.com".into()),
            secure_cookies: false,
            ..gate_config()
        },
    );
    let app = h.app().await;
    let mut b = Browser::default();
    let done = b.sign_in(&h, &app, "alice@example.com").await;
    let session = set_cookie(&done, "otp_session");
    assert!(session.contains("; Domain=example.com"), "{session}");
    assert!(!session.contains("Secure"), "dev: {session}");
    let refresh = set_cookie(&done, "otp_refresh");
    assert!(
        !refresh.contains("Domain"),
        "otp_refresh is always host-only: {refresh}"
    );
}

#[actix_web::test]
async fn gate_verify_with_a_foreign_rd_lands_on_the_default_redirect() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let page = b.ask_code(&app, "alice@example.com").await;
    let html = page.text();
    let code = h.outbox.last_code("alice@example.com");
    for rd in [
        "//evil.example/",
        "https://app.example.com@evil.example/",
        "https:evil.example",
    ] {
        let done = b.verify(&app, &html, rd, &code).await;
        if done.status == 303 {
            assert_eq!(
                done.header("location"),
                Some("https://app.example.com/"),
                "{rd}"
            );
        } else {
            // The code is single use: later attempts fail, but never redirect.
            assert_eq!(done.status, 400, "{rd}: {}", done.text());
        }
    }
}

#[actix_web::test]
async fn gate_csrf_missing_foreign_or_unbound_token_is_refused_and_nothing_is_sent() {
    let h = gate_harness();
    let app = h.app().await;
    let mut mine = Browser::default();
    let my_token = mine.csrf(&app).await;
    let mut other = Browser::default();
    let other_token = other.csrf(&app).await;
    let login = |token: Option<&str>| {
        let mut form = vec![("identity", "alice@example.com"), ("rd", APP)];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        TestRequest::post()
            .uri("/auth/login")
            .insert_header(("Origin", GATE_URL))
            .set_form(form)
    };
    // Missing: the right cookie, no field.
    let r = mine.send(&app, login(None)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("nothing was done"), "{}", r.text());
    // Foreign: my cookie, another browser's token.
    let r = mine.send(&app, login(Some(&other_token))).await;
    assert_eq!(r.status, 403);
    // Unbound: a genuine token without any cookie.
    let r = send(&app, login(Some(&my_token))).await;
    assert_eq!(r.status, 403);
    // Garbage.
    let r = mine.send(&app, login(Some("AAAA"))).await;
    assert_eq!(r.status, 403);
    assert_eq!(h.outbox.total(), 0, "no code sent for a refused post");
    // The verify and logout forms are guarded the same way.
    let r = mine
        .send(
            &app,
            TestRequest::post()
                .uri("/auth/verify")
                .insert_header(("Origin", GATE_URL))
                .set_form([("identity", "alice@example.com"), ("otp", "123456")]),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.headers.get("set-cookie").is_none(),
        "no cookie on a refused verify"
    );
    let r = mine
        .send(
            &app,
            TestRequest::post()
                .uri("/auth/logout")
                .insert_header(("Origin", GATE_URL))
                .set_form([("csrf", other_token.as_str())]),
        )
        .await;
    assert_eq!(r.status, 403);
    // And the right pair passes.
    let r = mine.send(&app, login(Some(&my_token))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.outbox.total(), 1);
}

#[actix_web::test]
async fn gate_post_needs_the_gate_origin_or_else_its_referer() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let token = b.csrf(&app).await;
    let form = [("csrf", token.as_str()), ("identity", "alice@example.com")];
    let post = |headers: &[(&str, &str)]| {
        let mut req = TestRequest::post().uri("/auth/login").set_form(form);
        for (n, v) in headers {
            req = req.insert_header((*n, *v));
        }
        req
    };
    for refused in [
        &[][..],
        &[("Origin", "https://evil.example")],
        &[("Origin", "null")],
        &[("Origin", "http://auth.example.com")],
        &[("Referer", "https://evil.example/auth/login")],
        &[
            ("Origin", "https://evil.example"),
            ("Referer", "https://auth.example.com/auth/login"),
        ],
    ] {
        let r = b.send(&app, post(refused)).await;
        assert_eq!(r.status, 403, "{refused:?}");
    }
    assert_eq!(h.outbox.total(), 0);
    let r = b
        .send(
            &app,
            post(&[("Referer", "https://auth.example.com/auth/login?rd=x")]),
        )
        .await;
    assert_eq!(r.status, 200, "Referer without Origin: {}", r.text());
    assert_eq!(h.outbox.total(), 1);
}

#[actix_web::test]
async fn gate_wrong_code_is_shown_on_its_field_in_the_section_5_words() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let page = b.ask_code(&app, "alice@example.com").await;
    let code = h.outbox.last_code("alice@example.com");
    let r = b.enter_code(&app, &page, &wrong_code(&code)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let html = r.text();
    for needle in [
        r#"<p class="error" id="otp-error">Invalid or expired OTP.</p>"#,
        r#"aria-invalid="true" aria-describedby="otp-error otp-hint""#,
        "autofocus",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    assert!(r
        .headers
        .get_all("set-cookie")
        .all(|c| !c.to_str().unwrap().starts_with("otp_session")));
    // A code of the wrong shape: 422, the code rule, on the field.
    let r = b.enter_code(&app, &page, "12ab").await;
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("The code must be 4 to 10 ASCII digits."),
        "{}",
        r.text()
    );
    // The right code still works afterwards.
    let r = b.enter_code(&app, &page, &code).await;
    assert_eq!(r.status, 303, "{}", r.text());
}

#[actix_web::test]
async fn gate_invalid_identity_is_shown_on_the_identity_field() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let r = b.ask_code(&app, "not an address@").await;
    assert_eq!(r.status, 422, "{}", r.text());
    let html = r.text();
    assert!(html.contains(r#"id="identity-error""#), "{html}");
    assert!(
        html.contains(r#"aria-invalid="true" aria-describedby="identity-error identity-hint""#),
        "{html}"
    );
    assert_eq!(h.outbox.total(), 0);
}

#[actix_web::test]
async fn gate_too_many_requests_show_the_wait_and_share_the_api_budget() {
    let h = gate_with_limits(Limits {
        request_per_identity: LimitPolicy::per_secs("request_identity", 1, 600),
        ..Limits::default()
    });
    let app = h.app().await;
    // One code through the JSON API spends the identity's budget ...
    obtain_code(&h, &app, "alice@example.com", "alice@example.com").await;
    // ... so the page is refused by the same limit.
    let mut b = Browser::default();
    let r = b.ask_code(&app, "alice@example.com").await;
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((590..=600).contains(&wait), "{wait}");
    let html = r.text();
    assert!(
        html.contains("Too many OTP requests. Please wait before requesting again. You can try again in 10 minutes."),
        "{html}"
    );
    assert!(html.contains(r#"role="alert""#), "{html}");
    assert_eq!(h.outbox.total(), 1);
}

#[actix_web::test]
async fn gate_too_many_verifications_show_the_wait() {
    let h = gate_with_limits(Limits {
        verify_per_identity: LimitPolicy::per_secs("verify_identity", 1, 600),
        ..Limits::default()
    });
    let app = h.app().await;
    let mut b = Browser::default();
    let page = b.ask_code(&app, "alice@example.com").await;
    let code = h.outbox.last_code("alice@example.com");
    assert_eq!(
        b.enter_code(&app, &page, &wrong_code(&code)).await.status,
        400
    );
    let r = b.enter_code(&app, &page, &code).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r
        .text()
        .contains("Too many verification attempts. Please request a new OTP."));
}

#[actix_web::test]
async fn gate_delivery_failure_is_shown_on_the_page() {
    let h = gated(
        Setup {
            delivery: Some(Arc::new(FailingDelivery::Unreachable)),
            ..Setup::default()
        },
        gate_config(),
    );
    let app = h.app().await;
    let mut b = Browser::default();
    let r = b.ask_code(&app, "alice@example.com").await;
    assert_eq!(r.status, 502, "{}", r.text());
    let html = r.text();
    assert!(
        html.contains("Failed to deliver OTP. Please try again."),
        "{html}"
    );
    // The identity is kept in the form, to try again.
    assert!(html.contains(r#"value="alice@example.com""#), "{html}");
}

#[actix_web::test]
async fn gate_refused_identity_sees_the_same_code_page_and_gets_no_code() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let allowed = b.ask_code(&app, "alice@example.com").await;
    let refused = b.ask_code(&app, "mallory@elsewhere.example").await;
    assert_eq!(refused.status, allowed.status);
    let normalize = |r: &Reply, id: &str| {
        r.text()
            .replace(id, "IDENTITY")
            .replace(&field(&r.text(), "csrf"), "TOKEN")
    };
    assert_eq!(
        normalize(&refused, "mallory@elsewhere.example"),
        normalize(&allowed, "alice@example.com")
    );
    let names = |r: &Reply| {
        let mut n: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&refused), names(&allowed));
    assert_eq!(h.outbox.count("mallory@elsewhere.example"), 0);
    assert_eq!(h.outbox.total(), 1);
    // Any code then fails as a wrong one.
    let r = b.enter_code(&app, &refused, "123456").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Invalid or expired OTP."));
}

#[actix_web::test]
async fn gate_forward_redirects_only_get_and_head_that_ask_for_html() {
    let h = gate_harness();
    let app = h.app().await;
    let html = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";
    let r = send(&app, forward_req(&[("Accept", html)])).await;
    assert_eq!(r.status, 302);
    // From an untrusted peer the X-Forwarded-* headers are not believed:
    // the renew URL carries no rd (the gate's default applies).
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/auth/renew")
    );
    let head = send(
        &app,
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/api/v1/auth/forward")
            .insert_header(("Accept", "text/html")),
    )
    .await;
    assert_eq!(head.status, 302);
    for headers in [
        &[("Accept", "application/json")][..],
        &[],
        &[("Accept", "*/*")],
    ] {
        let r = send(&app, forward_req(headers)).await;
        r.assert_error(401, "token_missing", None);
        assert!(r.header("www-authenticate").is_some());
    }
    let r = send(
        &app,
        forward_req(&[
            ("Accept", html),
            ("Cookie", "otp_session=forged.token.here"),
        ]),
    )
    .await;
    assert_eq!(r.status, 302, "an invalid cookie renews too");
    let post = send(
        &app,
        TestRequest::post()
            .uri("/api/v1/auth/forward")
            .insert_header(("Accept", html)),
    )
    .await;
    assert_eq!(post.status, 405);
}

#[actix_web::test]
async fn gate_forward_builds_rd_from_x_forwarded_headers_of_trusted_proxies_only() {
    let h = behind_proxy();
    let app = h.app().await;
    let forwarded = [
        ("Accept", "text/html"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-Uri", "/wiki/page?x=1"),
    ];
    let from = |peer: &str, extra: &[(&str, &str)]| {
        let mut req = forward_req(&forwarded).peer_addr(peer.parse().unwrap());
        for (n, v) in extra {
            req = req.insert_header((*n, *v));
        }
        req
    };
    let r = send(&app, from("10.0.0.2:5555", &[])).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("https://auth.example.com/auth/renew?rd={}", urlencode(APP)).as_str())
    );
    let r = send(&app, from("192.0.2.9:5555", &[])).await;
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/auth/renew")
    );
    // A trusted proxy reporting a form post (Traefik and Caddy send GET
    // with X-Forwarded-Method): 401, never a page.
    let r = send(
        &app,
        from("10.0.0.2:5555", &[("X-Forwarded-Method", "POST")]),
    )
    .await;
    r.assert_error(401, "token_missing", None);
}

#[actix_web::test]
async fn gate_off_forward_answers_401_even_to_a_browser() {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, forward_req(&[("Accept", "text/html")])).await;
    r.assert_error(401, "token_missing", None);
    let r = send(&app, TestRequest::get().uri("/auth/login")).await;
    assert_eq!(r.status, 404, "no pages with the gate off");
}

#[actix_web::test]
async fn gate_forward_accepts_a_bearer_token_and_rejects_an_expired_cookie_with_401_for_api_calls()
{
    let h = gate_harness();
    let app = h.app().await;
    let token = crate::support::login(&h, &app, "alice@example.com").await;
    let r = send(
        &app,
        forward_req(&[("Authorization", &format!("Bearer {token}"))]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("remote-user"), Some("alice@example.com"));
    let r = send(
        &app,
        forward_req(&[("Cookie", "otp_session=forged.token.here")]),
    )
    .await;
    r.assert_error(401, "token_invalid", None);
}

#[actix_web::test]
async fn gate_refused_identity_counts_against_the_same_limits() {
    let h = gate_with_limits(Limits {
        request_per_identity: LimitPolicy::per_secs("request_identity", 1, 600),
        ..Limits::default()
    });
    let app = h.app().await;
    let mut b = Browser::default();
    for identity in ["alice@example.com", "mallory@elsewhere.example"] {
        assert_eq!(b.ask_code(&app, identity).await.status, 200);
        // The second request is refused alike: a 429 tells nobody whether
        // the identity may sign in.
        let again = b.ask_code(&app, identity).await;
        assert_eq!(again.status, 429, "{identity}: {}", again.text());
    }
    assert_eq!(h.outbox.total(), 1);
}

#[actix_web::test]
async fn gate_renew_refuses_a_session_whose_identity_is_no_longer_allowed() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    // The operator narrows GATE_ALLOWED_IDENTITIES (same service, same store).
    let narrowed = h.state.clone().with_gate(GateConfig {
        identities: IdentityAllowlist::parse("bob@example.com").unwrap(),
        ..gate_config()
    });
    let app = actix_web::test::init_service(
        actix_web::App::new().configure(otp_http::configure(narrowed)),
    )
    .await;
    let r = b
        .get(&app, &format!("/auth/renew?rd={}", urlencode(APP)))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/auth/login?rd={}", urlencode(APP)).as_str())
    );
    assert!(
        !b.cookies.contains_key("otp_refresh"),
        "the refresh cookie is cleared"
    );
}

#[actix_web::test]
async fn gate_pages_have_their_own_metric_labels_from_the_start() {
    let h = gate_harness();
    let app = h.app().await;
    let metrics = |app| async move {
        let r = send(app, TestRequest::get().uri("/metrics")).await;
        r.text()
    };
    let label = r#"route="{gate}/login",status="200""#;
    let before = metrics(&app).await;
    assert!(
        before.contains(r#"route="{gate}/verify",status="429""#),
        "{before}"
    );
    assert_eq!(
        crate::support::metric_with(&before, "http_requests_total", label),
        0.0
    );
    send(&app, TestRequest::get().uri("/auth/login")).await;
    let after = metrics(&app).await;
    assert_eq!(
        crate::support::metric_with(&after, "http_requests_total", label),
        1.0
    );
}

#[actix_web::test]
async fn gate_store_outage_shows_a_503_page_and_logout_keeps_the_cookies() {
    let Some(mut redis) = otp_testkit::started_redis_or_skip("gate_store_outage_shows_a_503_page")
    else {
        return;
    };
    let store = otp_ratelimit::RedisStore::connect(otp_ratelimit::RedisConfig::new(
        vec![redis.url()],
        vec![7u8; 32],
    ))
    .await
    .expect("connect to the test redis-server");
    let h = gated(
        Setup {
            store: Some(Arc::new(store)),
            ..Setup::default()
        },
        gate_config(),
    );
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    redis.stop();
    let unavailable = "Service temporarily unavailable. Please try again shortly.";
    let r = b.ask_code(&app, "alice@example.com").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains(unavailable), "{}", r.text());
    let r = b
        .get(&app, &format!("/auth/renew?rd={}", urlencode(APP)))
        .await;
    assert_eq!(
        r.status, 503,
        "renew cannot tell a dead session from a down store"
    );
    assert!(r.text().contains(unavailable));
    assert!(
        b.cookies.contains_key("otp_refresh"),
        "the refresh cookie is kept"
    );
    let page = b.get(&app, "/auth/logout").await;
    let csrf = field(&page.text(), "csrf");
    let r = b.post(&app, "/auth/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains(unavailable));
    assert!(
        b.cookies.contains_key("otp_session") && b.cookies.contains_key("otp_refresh"),
        "an unended session keeps its cookies, so signing out can be retried"
    );
    // Forward auth needs no store.
    let cookie = format!("otp_session={}", b.cookies["otp_session"]);
    let r = send(&app, forward_req(&[("Cookie", &cookie)])).await;
    assert_eq!(r.status, 200);
}

#[actix_web::test]
async fn gate_identity_must_pass_allowed_identities_too() {
    let h = gated(
        Setup {
            allowed_identities: IdentityAllowlist::parse("alice@example.com").unwrap(),
            ..Setup::default()
        },
        gate_config(),
    );
    let app = h.app().await;
    let mut b = Browser::default();
    // In GATE_ALLOWED_IDENTITIES (*@example.com) but not in ALLOWED_IDENTITIES.
    let page = b.ask_code(&app, "bob@example.com").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(h.outbox.total(), 0);
    b.sign_in(&h, &app, "alice@example.com").await;
    assert_eq!(h.outbox.total(), 1);
}

#[actix_web::test]
async fn gate_with_sessions_off_sets_only_the_access_cookie_and_renew_asks_to_sign_in() {
    let h = gated(
        Setup {
            sessions: otp_service::SessionConfig {
                enabled: false,
                ..otp_service::SessionConfig::default()
            },
            ..Setup::default()
        },
        gate_config(),
    );
    let app = h.app().await;
    let mut b = Browser::default();
    let done = b.sign_in(&h, &app, "alice@example.com").await;
    assert!(
        set_cookie(&done, "otp_session").contains("Max-Age=900"),
        "the token's lifetime"
    );
    assert!(!b.cookies.contains_key("otp_refresh"));
    let r = b.get(&app, "/auth/renew").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/auth/login"));
}

#[actix_web::test]
async fn gate_pages_escape_what_the_user_typed() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    // A valid opaque identity (refused by *@example.com): shown escaped.
    let typed = r#"<script>alert("x")</script>"#;
    let page = b.ask_code(&app, typed).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    // An invalid one, echoed into the form: escaped too.
    let page = b.ask_code(&app, r#"a"><img src=x>@"#).await;
    assert_eq!(page.status, 422, "{}", page.text());
    assert!(!page.text().contains("<img"), "{}", page.text());
    assert_eq!(h.outbox.total(), 0);
}
