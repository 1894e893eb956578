//! The gate read by a hostile client (issue 15, the second read): HEAD on
//! the pages, focus on form errors, the signed-in login page, redirects
//! through every step, planted and swapped cookies, CSRF with tossed
//! cookies, forward auth's `Accept` and `X-Forwarded-*` tricks, and
//! malformed bodies — each a regression test of what was found.

use actix_web::http::Method;
use actix_web::test::TestRequest;
use otp_http::gate::GateConfig;
use otp_ratelimit::LimitPolicy;
use otp_service::Limits;

use super::{
    behind_proxy, field, forward_req, gate_config, gate_harness, gate_with_limits, gated,
    set_cookie, urlencode, Browser, APP, GATE_URL,
};
use crate::support::{obtain_code, send, Reply, Setup};

fn head(uri: &str) -> TestRequest {
    TestRequest::default().method(Method::HEAD).uri(uri)
}

fn forward_with_cookie(cookie: &str) -> TestRequest {
    forward_req(&[("Cookie", cookie)])
}

/// The `rd` of a forward-auth 302, decoded (`None` without one).
fn renew_rd(r: &Reply) -> Option<String> {
    let location = r.header("location").expect("a Location");
    let (base, query) = location.split_once('?').unwrap_or((location, ""));
    assert_eq!(base, format!("{GATE_URL}/auth/renew"), "{location}");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    pairs.into_iter().find(|(k, _)| k == "rd").map(|(_, v)| v)
}

#[actix_web::test]
async fn gate_head_on_the_get_pages_answers_like_get() {
    let h = gate_harness();
    let app = h.app().await;
    for uri in ["/auth/login", "/auth/logout", "/auth/static/gate.css"] {
        let get = send(&app, TestRequest::get().uri(uri)).await;
        let r = send(&app, head(uri)).await;
        assert_eq!(r.status, 200, "HEAD {uri}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            get.header("content-type"),
            "HEAD {uri}"
        );
        assert_eq!(r.header("cache-control"), get.header("cache-control"));
        let allow = send(&app, TestRequest::put().uri(uri)).await;
        assert_eq!(allow.status, 405);
        assert!(allow.header("allow").unwrap().contains("HEAD"), "{uri}");
    }
    let r = send(&app, head("/auth/verify")).await;
    assert_eq!(r.status, 405, "verify is POST only");
}

#[actix_web::test]
async fn gate_head_renew_spends_nothing_and_sets_no_cookie() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    let refresh = b.cookies["otp_refresh"].clone();
    let uri = format!("/auth/renew?rd={}", urlencode(APP));
    let r = b.send(&app, head(&uri)).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert!(r.headers.get("set-cookie").is_none(), "{:?}", r.headers);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(b.cookies["otp_refresh"], refresh);
    // The refresh token was not spent: the GET renews with it (a spent one
    // would be a reuse and end the session).
    let r = b.get(&app, &uri).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(APP));
    assert_ne!(b.cookies["otp_refresh"], refresh);
}

/// The element carrying `autofocus` in `html` (its opening tag).
fn focused(html: &str) -> Vec<&str> {
    html.match_indices(" autofocus")
        .map(|(i, _)| {
            let start = html[..i].rfind('<').unwrap();
            let end = i + html[i..].find('>').unwrap() + 1;
            &html[start..end]
        })
        .collect()
}

#[actix_web::test]
async fn gate_form_error_takes_the_focus() {
    let h = gate_with_limits(Limits {
        request_per_identity: LimitPolicy::per_secs("request_identity", 1, 600),
        ..Limits::default()
    });
    let app = h.app().await;
    let mut b = Browser::default();
    let page = b.get(&app, "/auth/login").await;
    let html = page.text();
    let tags = focused(&html);
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert!(tags[0].contains(r#"id="identity""#), "{tags:?}");
    obtain_code(&h, &app, "alice@example.com", "alice@example.com").await;
    let r = b.ask_code(&app, "alice@example.com").await;
    assert_eq!(r.status, 429);
    let html = r.text();
    let tags = focused(&html);
    assert_eq!(tags.len(), 1, "one element has the focus: {tags:?}");
    assert!(
        tags[0].contains(r#"role="alert""#) && tags[0].contains(r#"tabindex="-1""#),
        "{tags:?}"
    );
    // The alert comes before the form, so focus order reads it first.
    assert!(html.find("form-error").unwrap() < html.find("<form").unwrap());
    // A field error keeps the focus on its field.
    let r = b.ask_code(&app, "not an address@").await;
    assert_eq!(r.status, 422);
    let html = r.text();
    let tags = focused(&html);
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert!(tags[0].contains(r#"aria-invalid="true""#), "{tags:?}");
}

#[actix_web::test]
async fn gate_login_page_says_who_is_signed_in_with_continue_and_sign_out() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let before = b.get(&app, "/auth/login").await.text();
    assert!(!before.contains("signed in as"), "{before}");
    b.sign_in(&h, &app, "alice@example.com").await;
    let r = b
        .get(&app, &format!("/auth/login?rd={}", urlencode(APP)))
        .await;
    let html = r.text();
    assert!(
        html.contains("You are signed in as <strong>alice@example.com</strong>."),
        "{html}"
    );
    let escaped = APP.replace('&', "&#38;");
    assert!(
        html.contains(&format!(r#"<a href="{escaped}" autofocus>Continue</a>"#))
            || html.contains(&format!(
                r#"<a href="{}" autofocus>Continue</a>"#,
                APP.replace('&', "&amp;")
            )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            r#"href="/auth/logout?rd={}""#,
            urlencode(APP).replace('&', "&#38;")
        )) || html.contains(r#"href="/auth/logout?rd="#),
        "{html}"
    );
    // A foreign rd continues to the default redirect, never to it.
    let html = b
        .get(&app, "/auth/login?rd=https%3A%2F%2Fevil.example%2F")
        .await
        .text();
    assert!(
        html.contains(r#"<a href="https://app.example.com/" autofocus>Continue</a>"#),
        "{html}"
    );
    assert!(!html.contains("evil.example"), "{html}");
    // A forged or foreign cookie signs no one in.
    let mut forged = Browser::default();
    forged
        .cookies
        .insert("otp_session".into(), "forged.token.here".into());
    let html = forged.get(&app, "/auth/login").await.text();
    assert!(!html.contains("signed in as"), "{html}");
    // After sign-out the line is gone.
    let csrf = field(&b.get(&app, "/auth/logout").await.text(), "csrf");
    assert_eq!(
        b.post(&app, "/auth/logout", &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    let html = b.get(&app, "/auth/login").await.text();
    assert!(!html.contains("signed in as"), "{html}");
}

#[actix_web::test]
async fn gate_login_page_does_not_greet_an_identity_the_gate_no_longer_allows() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    let stricter = GateConfig {
        identities: otp_service::IdentityAllowlist::parse("bob@example.com").unwrap(),
        ..gate_config()
    };
    let h2 = crate::support::Harness {
        state: h.state.clone().with_gate(stricter),
        outbox: h.outbox.clone(),
    };
    let app2 = h2.app().await;
    let html = b.get(&app2, "/auth/login").await.text();
    assert!(!html.contains("signed in as"), "{html}");
}

#[actix_web::test]
async fn gate_planted_session_cookie_never_shadows_the_users() {
    let h = gate_harness();
    let app = h.app().await;
    let mut alice = Browser::default();
    alice.sign_in(&h, &app, "alice@example.com").await;
    let a = alice.cookies["otp_session"].clone();
    let mut mallory = Browser::default();
    mallory.sign_in(&h, &app, "mallory@example.com").await;
    let m = mallory.cookies["otp_session"].clone();
    for route in ["/api/v1/auth/forward", "/api/v1/token/verify"] {
        let check = |cookie: String| {
            TestRequest::get()
                .uri(route)
                .insert_header(("Cookie", cookie))
        };
        // A planted invalid cookie first (longer Path: browsers send it
        // first) does not hide the user's valid one.
        let r = send(
            &app,
            check(format!("otp_session=planted.bad.token; otp_session={a}")),
        )
        .await;
        assert_eq!(r.status, 200, "{route}: {}", r.text());
        assert_eq!(r.header("x-auth-subject"), Some("alice@example.com"));
        // The same token twice is one subject.
        let r = send(&app, check(format!("otp_session={a}; otp_session={a}"))).await;
        assert_eq!(r.status, 200, "{route}");
        // A planted valid cookie of another identity: ambiguous, refused,
        // whichever comes first.
        for cookie in [
            format!("otp_session={m}; otp_session={a}"),
            format!("otp_session={a}; x=1; otp_session={m}"),
        ] {
            let r = send(&app, check(cookie)).await;
            r.assert_error(401, "token_invalid", None);
            assert!(r.header("x-auth-subject").is_none());
            assert!(r
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_token"));
        }
        // A cookie bomb of many otp_session cookies is refused.
        let bomb = std::iter::repeat_n(format!("otp_session={a}"), 9)
            .collect::<Vec<_>>()
            .join("; ");
        let r = send(&app, check(bomb)).await;
        r.assert_error(401, "token_invalid", None);
        // Only invalid ones: the first one's error.
        let r = send(&app, check("otp_session=a.b.c; otp_session=d.e.f".into())).await;
        r.assert_error(401, "token_invalid", None);
    }
    // A browser page load with an ambiguous pair goes to renew, not in.
    let r = send(
        &app,
        forward_req(&[
            ("Accept", "text/html"),
            ("Cookie", &format!("otp_session={m}; otp_session={a}")),
        ]),
    )
    .await;
    assert_eq!(r.status, 302);
}

#[actix_web::test]
async fn gate_refresh_token_in_the_session_cookie_and_access_token_in_the_refresh_cookie_fail() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    let (access, refresh) = (
        b.cookies["otp_session"].clone(),
        b.cookies["otp_refresh"].clone(),
    );
    let r = send(&app, forward_with_cookie(&format!("otp_session={refresh}"))).await;
    r.assert_error(401, "token_invalid", None);
    let r = send(
        &app,
        TestRequest::get()
            .uri("/api/v1/token/verify")
            .insert_header(("Cookie", format!("otp_session={refresh}"))),
    )
    .await;
    r.assert_error(401, "token_invalid", None);
    // otp_refresh holding the access token: no renewal, back to sign-in,
    // the cookies cleared.
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/auth/renew?rd={}", urlencode(APP)))
            .insert_header(("Cookie", format!("otp_refresh={access}"))),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/auth/login?rd={}", urlencode(APP)).as_str())
    );
    assert!(set_cookie(&r, "otp_refresh").contains("Max-Age=0"));
    assert!(set_cookie(&r, "otp_session").contains("Max-Age=0"));
    // The real refresh cookie still works (the swap spent nothing).
    let r = b
        .get(&app, &format!("/auth/renew?rd={}", urlencode(APP)))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some(APP));
}

#[actix_web::test]
async fn gate_forward_weighs_accept_and_refuses_other_methods() {
    let h = gate_harness();
    let app = h.app().await;
    for (accept, page) in [
        ("text/html;q=0", false),
        ("text/html; q=0.0, application/json", false),
        ("application/json, text/html;q=0.000", false),
        ("text/html;q=nonsense", false),
        ("*/*", false),
        ("text/*", false),
        ("TEXT/HTML; Q=0.5", true),
        ("application/json;q=0.9, text/html", true),
    ] {
        let r = send(&app, forward_req(&[("Accept", accept)])).await;
        if page {
            assert_eq!(r.status, 302, "{accept}");
        } else {
            r.assert_error(401, "token_missing", None);
        }
    }
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        let r = send(
            &app,
            forward_req(&[("Accept", "text/html")]).method(method.clone()),
        )
        .await;
        assert_eq!(r.status, 405, "{method}");
        assert!(r.header("location").is_none(), "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[actix_web::test]
async fn gate_forward_location_is_always_the_gate_renew_url_with_an_encoded_rd() {
    let h = behind_proxy();
    let app = h.app().await;
    let from_proxy = |proto: &str, host: &str, uri: &str| {
        forward_req(&[
            ("Accept", "text/html"),
            ("X-Forwarded-Proto", proto),
            ("X-Forwarded-Host", host),
            ("X-Forwarded-Uri", uri),
        ])
        .peer_addr("10.0.0.2:5555".parse().unwrap())
    };
    let cases = [
        (
            "https",
            "app.example.com",
            "//evil.example/x",
            Some("https://app.example.com//evil.example/x"),
        ),
        (
            "https",
            "app.example.com",
            "evil.example/x",
            Some("https://app.example.com/"),
        ),
        (
            "https",
            "app.example.com",
            "/a?b=1&c=%0d%0a#frag",
            Some("https://app.example.com/a?b=1&c=%0d%0a#frag"),
        ),
        ("https", "evil.example", "/", Some("https://evil.example/")),
        (
            "https",
            "app.example.com@evil.example",
            "/",
            Some("https://app.example.com@evil.example/"),
        ),
        ("javascript", "app.example.com", "/", None),
        (
            "https, http",
            "app.example.com, evil.example",
            "/p",
            Some("https://app.example.com/p"),
        ),
    ];
    for (proto, host, uri, rd) in cases {
        let r = send(&app, from_proxy(proto, host, uri)).await;
        assert_eq!(r.status, 302, "{proto} {host} {uri}");
        assert_eq!(renew_rd(&r).as_deref(), rd, "{proto} {host} {uri}");
        // Whatever rd the proxy headers made, renew only follows an
        // allowed one: without a session it goes to sign-in, keeping rd
        // only when allowed.
        let location = r.header("location").unwrap();
        let path = location.strip_prefix(GATE_URL).unwrap();
        let renew = send(&app, TestRequest::get().uri(path)).await;
        assert_eq!(renew.status, 303, "{path}");
        let to = renew.header("location").unwrap();
        let allowed_rd = rd.filter(|rd| rd.starts_with("https://app.example.com/"));
        match allowed_rd {
            Some(rd) => assert_eq!(to, format!("/auth/login?rd={}", urlencode(rd)), "{path}"),
            None => assert_eq!(to, "/auth/login", "{path}"),
        }
    }
}

#[actix_web::test]
async fn gate_rd_tricks_through_verify_logout_and_login_never_leave_the_allowed_hosts() {
    let h = gate_with_limits(Limits {
        request_per_identity: LimitPolicy::per_secs("request_identity", 100, 600),
        request_per_ip: LimitPolicy::per_secs("request_ip", 100, 600),
        ..Limits::default()
    });
    let app = h.app().await;
    let tricks = [
        "https://evil.example/",
        "//evil.example/",
        "https:evil.example",
        "\\\\evil.example",
        "https://app.example.com@evil.example/",
        "https://app.example.com%2F@evil.example/",
        "https://app.example.com\r\nSet-Cookie: otp_session=x",
        "https://app.example.com/\0",
        "https://app.example.com/%0d%0aSet-Cookie:%20x=1",
        "javascript:alert(1)//app.example.com",
        "http://app.example.com/",
    ];
    let long = format!("https://app.example.com/{}", "a".repeat(5000));
    for rd in tricks.iter().copied().chain([long.as_str()]) {
        // Login page: a foreign rd is not carried into the form.
        let mut b = Browser::default();
        let page = b
            .get(&app, &format!("/auth/login?rd={}", urlencode(rd)))
            .await;
        assert_eq!(page.status, 200, "{rd:?}");
        let carried = field(&page.text(), "rd");
        assert!(
            carried.is_empty() || carried == rd && rd.starts_with("https://app.example.com/%0d"),
            "{rd:?} → {carried:?}"
        );
        // Verify with it: 303 to the default redirect (or the rd itself
        // when it is an allowed, harmless URL), never elsewhere, and the
        // Location is a single clean header.
        let csrf = field(&page.text(), "csrf");
        let code_page = b
            .post(
                &app,
                "/auth/login",
                &[
                    ("csrf", &csrf),
                    ("rd", rd),
                    ("identity", "alice@example.com"),
                ],
            )
            .await;
        assert_eq!(code_page.status, 200, "{rd:?}: {}", code_page.text());
        let html = code_page.text();
        let code = h.outbox.last_code("alice@example.com");
        let done = b.verify(&app, &html, rd, &code).await;
        assert_eq!(done.status, 303, "{rd:?}");
        let to = done.header("location").unwrap();
        assert!(
            to == "https://app.example.com/" || to == rd && !to.contains(['\r', '\n', '\0']),
            "{rd:?} → {to:?}"
        );
        assert!(to.starts_with("https://app.example.com/"), "{to}");
        assert_eq!(done.headers.get_all("location").count(), 1);
        assert_eq!(done.headers.get_all("set-cookie").count(), 2, "{rd:?}");
        // Logout with it: to the login page, a foreign rd dropped.
        let csrf = field(&b.get(&app, "/auth/logout").await.text(), "csrf");
        let out = b
            .post(&app, "/auth/logout", &[("csrf", &csrf), ("rd", rd)])
            .await;
        assert_eq!(out.status, 303);
        let to = out.header("location").unwrap();
        assert!(to.starts_with("/auth/login?"), "{to}");
        assert!(!to.contains("evil"), "{rd:?} → {to}");
    }
    // A fragment survives the whole flow.
    let frag = "https://app.example.com/doc#section-2";
    let mut b = Browser::default();
    let page = b
        .get(&app, &format!("/auth/login?rd={}", urlencode(frag)))
        .await;
    assert_eq!(field(&page.text(), "rd"), frag);
}

#[actix_web::test]
async fn gate_csrf_tossed_cookie_from_a_sibling_subdomain_is_refused_by_the_origin_check() {
    let h = gated(
        Setup::default(),
        GateConfig {
            cookie_domain: Some("example.com".into()),
            ..gate_config()
        },
    );
    let app = h.app().await;
    // Mallory gets a genuine (cookie, token) pair from the gate ...
    let mut mallory = Browser::default();
    let token = mallory.csrf(&app).await;
    let planted = mallory.cookies["otp_csrf"].clone();
    // ... plants the cookie in the victim's browser from a sibling
    // (Domain=example.com) and posts the form from there.
    for (name, origin) in [
        ("Origin", "https://evil.example.com"),
        ("Origin", "https://app.example.com"),
        ("Origin", "null"),
        ("Referer", "https://evil.example.com/auth/login"),
    ] {
        let r = send(
            &app,
            TestRequest::post()
                .uri("/auth/login")
                .insert_header((name, origin))
                .insert_header(("Cookie", format!("otp_csrf={planted}")))
                .set_form([("csrf", token.as_str()), ("identity", "victim@example.com")]),
        )
        .await;
        assert_eq!(r.status, 403, "{name}: {origin}");
    }
    let r = send(
        &app,
        TestRequest::post()
            .uri("/auth/logout")
            .insert_header(("Origin", "https://evil.example.com"))
            .insert_header(("Cookie", format!("otp_csrf={planted}")))
            .set_form([("csrf", token.as_str())]),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(h.outbox.total(), 0, "nothing sent");
    // Two otp_csrf cookies (the planted one first): the token of the
    // browser's own is refused as foreign, so a planted cookie can block a
    // form (cookie tossing can always deny service) but never pass one.
    let mut victim = Browser::default();
    let own = victim.csrf(&app).await;
    let r = send(
        &app,
        TestRequest::post()
            .uri("/auth/login")
            .insert_header(("Origin", GATE_URL))
            .insert_header((
                "Cookie",
                format!(
                    "otp_csrf={planted}; otp_csrf={}",
                    victim.cookies["otp_csrf"]
                ),
            ))
            .set_form([("csrf", own.as_str()), ("identity", "victim@example.com")]),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(h.outbox.total(), 0);
}

#[actix_web::test]
async fn gate_malformed_bodies_get_a_4xx_page_never_a_500() {
    let h = gate_harness();
    let app = h.app().await;
    let mut b = Browser::default();
    let csrf = b.csrf(&app).await;
    let cookie = format!("otp_csrf={}", b.cookies["otp_csrf"]);
    let post = |uri: &str, content_type: &str, body: Vec<u8>| {
        TestRequest::post()
            .uri(uri)
            .insert_header(("Origin", GATE_URL))
            .insert_header(("Cookie", cookie.clone()))
            .insert_header(("Content-Type", content_type.to_owned()))
            .set_payload(body)
    };
    let form = |extra: &[u8]| {
        let mut body = format!("csrf={csrf}&identity=").into_bytes();
        body.extend_from_slice(extra);
        body
    };
    for uri in ["/auth/login", "/auth/verify", "/auth/logout"] {
        for (ct, body) in [
            ("application/x-www-form-urlencoded", form(b"\xff\xfe%FF%00")),
            (
                "application/x-www-form-urlencoded",
                b"csrf=a&csrf=b&&&==&%".to_vec(),
            ),
            (
                "application/json",
                br#"{"identity":"alice@example.com"}"#.to_vec(),
            ),
            ("text/plain", vec![0u8; 64]),
            ("multipart/form-data; boundary=x", b"--x--".to_vec()),
        ] {
            let r = send(&app, post(uri, ct, body)).await;
            assert!(
                r.status.is_client_error() || r.status.is_redirection(),
                "{uri} {ct}: {}",
                r.status
            );
        }
        let r = send(
            &app,
            post(
                uri,
                "application/x-www-form-urlencoded",
                form(&vec![b'a'; 20_000]),
            ),
        )
        .await;
        r.assert_error(413, "payload_too_large", None);
    }
    // An identity with bytes that are not UTF-8 is decoded lossily: an
    // identity the gate does not allow (the code page, nothing sent) or an
    // invalid one (422).
    let r = send(
        &app,
        post(
            "/auth/login",
            "application/x-www-form-urlencoded",
            form(b"%FF%FEalice"),
        ),
    )
    .await;
    assert!(r.status == 200 || r.status == 422, "{}", r.status);
    // A query that does not parse is the page without rd.
    let r = send(&app, TestRequest::get().uri("/auth/login?rd=%ZZ&rd=1&&=")).await;
    assert_eq!(r.status, 200);
    let r = send(&app, TestRequest::get().uri("/auth/renew?rd=%ZZ&rd=1")).await;
    assert_eq!(r.status, 303);
    assert_eq!(h.outbox.total(), 0);
}

#[actix_web::test]
async fn gate_an_allowed_rd_with_markup_is_escaped_in_every_field_and_link() {
    let h = gate_harness();
    let app = h.app().await;
    let rd = r#"https://app.example.com/x"><script>alert(1)</script>'"#;
    let mut b = Browser::default();
    b.sign_in(&h, &app, "alice@example.com").await;
    let page = b
        .get(&app, &format!("/auth/login?rd={}", urlencode(rd)))
        .await;
    let html = page.text();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains(r#"x">"#), "{html}");
    assert_eq!(
        field(&html, "rd"),
        rd.replace('"', "&#34;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('\'', "&#39;"),
        "{html}"
    );
    // Its code page and the logout page escape it too.
    let code_page = b.ask_code(&app, "alice@example.com").await;
    assert!(!code_page.text().contains("<script>"));
    let logout = b
        .get(&app, &format!("/auth/logout?rd={}", urlencode(rd)))
        .await;
    assert!(!logout.text().contains("<script>"), "{}", logout.text());
}
