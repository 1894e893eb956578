//! The forward-auth fast lane (`otp_http::fast_lane`, SPEC §9): a server
//! with the lane answers every forward-auth request exactly as the same
//! app without it — status, headers, body — and records the same metrics.

use std::collections::BTreeMap;

use crate::support::*;
use serde_json::Map;

const ID: &str = "alice@example.com";
const VERIFY: &str = "/api/v1/token/verify";
const FORWARD: &str = "/api/v1/auth/forward";

/// One real response, normalized for comparison: `date` dropped, and the
/// request id checked (echoed when `sent` is sane, else 32 hex digits) and
/// dropped.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    body: Vec<u8>,
}

async fn ask(
    client: &reqwest::Client,
    server: &Running,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&'static str>,
) -> Answer {
    let mut req = client.request(method, server.url(path));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in res.headers() {
        out.entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap().to_owned());
    }
    out.remove("date");
    let ids = out.remove("x-request-id").unwrap_or_default();
    let sent: Vec<&String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(ids.len(), 1, "{path}: one request id: {ids:?}");
    match sent.as_slice() {
        [one] if !one.contains(' ') => assert_eq!(&ids[0], *one, "{path}: echoed"),
        _ => assert!(
            ids[0].len() == 32 && ids[0].bytes().all(|b| b.is_ascii_hexdigit()),
            "{path}: made id {ids:?}"
        ),
    }
    Answer {
        status,
        headers: out,
        body: res.bytes().await.unwrap().to_vec(),
    }
}

/// What a case sends: a name, method, path, headers and body.
type Case<'a> = (
    &'a str,
    reqwest::Method,
    &'a str,
    Vec<(&'a str, String)>,
    Option<&'static str>,
);

#[actix_web::test]
async fn the_lane_answers_exactly_as_the_app() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let expired = h
        .state
        .service
        .tokens()
        .issue(ID, otp_core::unix_now() - 3600, Map::new())
        .unwrap()
        .token;
    let plain = h.serve();
    let lane = h.serve_with_fast_lane();
    let client = reqwest::Client::new();
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    let cookie = |c: String| ("Cookie", c);
    let get = reqwest::Method::GET;
    let cases: Vec<Case<'_>> = vec![
        ("bearer", get.clone(), VERIFY, vec![bearer(&token)], None),
        (
            "bearer, twice (cached)",
            get.clone(),
            VERIFY,
            vec![bearer(&token)],
            None,
        ),
        (
            "cookie",
            get.clone(),
            VERIFY,
            vec![cookie(format!("a=1; otp_session={token}"))],
            None,
        ),
        (
            "two session cookies",
            get.clone(),
            VERIFY,
            vec![cookie(format!("otp_session=planted; otp_session={token}"))],
            None,
        ),
        (
            "basic auth and a cookie",
            get.clone(),
            VERIFY,
            vec![
                ("Authorization", "Basic YTpi".into()),
                cookie(format!("otp_session={token}")),
            ],
            None,
        ),
        (
            "forward route",
            get.clone(),
            FORWARD,
            vec![bearer(&token)],
            None,
        ),
        (
            "query string",
            get.clone(),
            "/api/v1/token/verify?next=/x",
            vec![bearer(&token)],
            None,
        ),
        (
            "sane request id",
            get.clone(),
            VERIFY,
            vec![bearer(&token), ("X-Request-Id", "req-42".into())],
            None,
        ),
        (
            "insane request id",
            get.clone(),
            VERIFY,
            vec![bearer(&token), ("X-Request-Id", "a b".into())],
            None,
        ),
        (
            "two request ids",
            get.clone(),
            VERIFY,
            vec![
                bearer(&token),
                ("X-Request-Id", "r1".into()),
                ("X-Request-Id", "r2".into()),
            ],
            None,
        ),
        ("no token", get.clone(), VERIFY, vec![], None),
        ("expired", get.clone(), VERIFY, vec![bearer(&expired)], None),
        (
            "tampered",
            get.clone(),
            VERIFY,
            vec![bearer(&format!("{token}x"))],
            None,
        ),
        (
            "forward, no token",
            get.clone(),
            FORWARD,
            vec![("Accept", "text/html".into())],
            None,
        ),
        (
            "a body",
            get.clone(),
            VERIFY,
            vec![bearer(&token)],
            Some("x"),
        ),
        (
            "HEAD forward",
            reqwest::Method::HEAD,
            FORWARD,
            vec![bearer(&token)],
            None,
        ),
        (
            "POST",
            reqwest::Method::POST,
            VERIFY,
            vec![bearer(&token)],
            None,
        ),
        (
            "trailing slash",
            get.clone(),
            "/api/v1/token/verify/",
            vec![bearer(&token)],
            None,
        ),
    ];
    for (what, method, path, headers, body) in cases {
        let a = ask(&client, &plain, method.clone(), path, &headers, body).await;
        let b = ask(&client, &lane, method, path, &headers, body).await;
        assert_eq!(b, a, "{what}: the lane's answer differs from the app's");
        if what == "bearer" {
            assert_eq!(a.status, 200);
            assert_eq!(a.headers["x-auth-subject"], [ID]);
        }
    }
}

#[actix_web::test]
async fn the_lane_records_the_apps_metrics() {
    let h = harness();
    let app = h.app().await;
    let token = login(&h, &app, ID).await;
    let lane = h.serve_with_fast_lane();
    let client = reqwest::Client::new();
    let scrape = || async {
        let text = client
            .get(lane.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ok = metric_with(
            &text,
            "http_requests_total",
            r#"route="/api/v1/token/verify",status="200""#,
        );
        let count = metric_with(
            &text,
            "http_request_duration_seconds_count",
            r#"route="/api/v1/token/verify""#,
        );
        let forward = metric_with(
            &text,
            "http_requests_total",
            r#"route="/api/v1/auth/forward",status="200""#,
        );
        (ok, count, forward)
    };
    let before = scrape().await;
    for _ in 0..5 {
        let r = client
            .get(lane.url(VERIFY))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client
        .get(lane.url(FORWARD))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = scrape().await;
    assert_eq!(
        after.0 - before.0,
        5.0,
        "http_requests_total of the verify route"
    );
    assert_eq!(after.1 - before.1, 5.0, "its latency histogram");
    assert_eq!(
        after.2 - before.2,
        1.0,
        "http_requests_total of the forward route"
    );
}
