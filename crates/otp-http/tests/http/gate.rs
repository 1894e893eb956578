//! The web gate of SPEC §11 over HTTP (issue 15): the pages and their
//! attributes, the cookies and their scopes, CSRF (signed double submit and
//! the Origin/Referer rule), renew, logout, and `/api/v1/auth/forward`.
//!
//! [`Browser`] keeps the cookies a browser would (by name; the scopes are
//! asserted on the `Set-Cookie` lines themselves) and sends the `Origin`
//! a browser sends with a form post.

use std::collections::BTreeMap;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use otp_http::gate::GateConfig;
use otp_http::redirect::RedirectPolicy;
use otp_service::IdentityAllowlist;

use crate::support::{send, Harness, Reply, Setup};

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
        let r = send(app, self.with_cookies(req)).await;
        self.keep(&r);
        r
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
