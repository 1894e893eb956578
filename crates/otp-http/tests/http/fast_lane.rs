//! The fast lane (`otp_http::fast_lane`, SPEC §9): a server with the lane
//! answers every forward-auth request, and every `POST` of the code and
//! refresh routes, exactly as the same app without it — status, headers,
//! body, the body deadline — and records the same metrics.

use std::collections::BTreeMap;

use crate::support::*;
use serde_json::Map;

const ID: &str = "alice@example.com";
const VERIFY: &str = "/api/v1/token/verify";
const FORWARD: &str = "/api/v1/auth/forward";
const OTP_VERIFY: &str = "/api/v1/otp/verify";
const REFRESH: &str = "/api/v1/token/refresh";

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
    body: Option<impl Into<reqwest::Body>>,
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
    // requests of `route` answered `status`, and its latency samples
    let scrape = |route: &'static str, status: &'static str| {
        let client = client.clone();
        let url = lane.url("/metrics");
        async move {
            let text = client.get(url).send().await.unwrap().text().await.unwrap();
            let of = format!(r#"route="{route}""#);
            (
                metric_with(
                    &text,
                    "http_requests_total",
                    &format!(r#"{of},status="{status}""#),
                ),
                metric_with(&text, "http_request_duration_seconds_count", &of),
            )
        }
    };
    let forward_auth = || async {
        let (ok, count) = scrape(VERIFY, "200").await;
        (ok, count, scrape(FORWARD, "200").await.0)
    };
    let before = forward_auth().await;
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
    let rose = |b: (f64, f64, f64), a: (f64, f64, f64)| (a.0 - b.0, a.1 - b.1, a.2 - b.2);
    assert_eq!(
        rose(before, forward_auth().await),
        (5.0, 5.0, 1.0),
        "http_requests_total and latency samples of the verify route, requests of the forward route"
    );
    // the POST routes the lane answers
    let posts = || async {
        let (wrong, count) = scrape(OTP_VERIFY, "400").await;
        (wrong, count, scrape(REFRESH, "401").await.0)
    };
    let before = posts().await;
    for _ in 0..3 {
        let r = client
            .post(lane.url(OTP_VERIFY))
            .json(&serde_json::json!({ "identity": "bob@example.com", "otp": "000000" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    let r = client
        .post(lane.url(REFRESH))
        .json(&serde_json::json!({ "refresh_token": "x.y.z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        rose(before, posts().await),
        (3.0, 3.0, 1.0),
        "http_requests_total and latency samples of the code route, requests of the refresh route"
    );
}

/// `json` padded with spaces to `len` bytes.
fn padded(json: String, len: usize) -> Vec<u8> {
    let mut out = json.into_bytes();
    out.resize(len, b' ');
    out
}

/// `answer` with the tokens of a 200 masked (fresh random tokens on each
/// server), checked to be non-empty strings first, and `Retry-After`
/// rounded down to tens of seconds (the two servers answer a millisecond
/// or so apart, which can move its rounded-up seconds by one); everything
/// else as is.
fn masked(mut answer: Answer) -> Answer {
    if let Some(v) = answer.headers.get_mut("retry-after") {
        let secs: u64 = v[0].parse().expect("Retry-After in seconds");
        v[0] = format!("{}0", secs / 10);
    }
    if answer.status != 200 {
        return answer;
    }
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&answer.body) else {
        return answer;
    };
    for key in ["access_token", "refresh_token"] {
        if let Some(t) = body.get_mut(key) {
            assert!(t.as_str().is_some_and(|t| t.len() > 20), "{key}: {t}");
            *t = "<token>".into();
        }
    }
    // same length: the masked tokens were as long on both servers
    body["<length>"] = answer.body.len().into();
    answer.body = serde_json::to_vec(&body).unwrap();
    answer
}

/// What a POST case sends: a name, method, path, headers and a body for
/// each of the two servers.
type PostCase<'a> = (
    &'a str,
    reqwest::Method,
    &'a str,
    Vec<(&'a str, String)>,
    [Vec<u8>; 2],
);

/// Sends `case` to the App alone, then to the lane; returns its name and
/// both answers.
async fn ask_both<'a>(
    client: &reqwest::Client,
    [plain, lane]: [&Running; 2],
    (what, method, path, headers, [body_a, body_b]): PostCase<'a>,
) -> (&'a str, Answer, Answer) {
    let a = ask(client, plain, method.clone(), path, &headers, Some(body_a)).await;
    let b = ask(client, lane, method, path, &headers, Some(body_b)).await;
    (what, a, b)
}

// See: issue 17 (the POST routes answered before the App).
#[actix_web::test]
async fn the_lane_answers_the_post_routes_exactly_as_the_app() {
    // Two services built alike (the same keys, fresh stores), one served by
    // the App alone and one through the lane: each case goes to both in
    // turn, so both stores see the same calls in the same order.
    let (ha, hb) = (harness(), harness());
    let (plain, lane) = (ha.serve(), hb.serve_with_fast_lane());
    let client = reqwest::Client::new();
    for server in [&plain, &lane] {
        let r = client
            .post(server.url("/api/v1/otp/request"))
            .json(&serde_json::json!({ "identity": ID }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let code = ha.outbox.last_code(ID);
    assert_eq!(
        hb.outbox.last_code(ID),
        code,
        "the same keys, the same code"
    );
    let wrong = wrong_code(&code);
    let json = || ("Content-Type", "application/json".to_owned());
    let both = |b: &[u8]| [b.to_vec(), b.to_vec()];
    let verify = |otp: &str| both(format!(r#"{{"identity":"{ID}","otp":"{otp}"}}"#).as_bytes());
    let post = reqwest::Method::POST;
    // at most 4 wrong codes before the right one (the attempt budget is 5)
    let cases: Vec<PostCase<'_>> = vec![
        (
            "wrong code",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            verify(&wrong),
        ),
        (
            "wrong code, a request id",
            post.clone(),
            OTP_VERIFY,
            vec![json(), ("X-Request-Id", "req-7".into())],
            verify(&wrong),
        ),
        (
            "unknown and nested fields",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(
                format!(r#"{{"x":[1,{{"y":null}}],"identity":"{ID}","otp":"{wrong}"}}"#).as_bytes(),
            ),
        ),
        (
            "malformed",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(br#"{"identity":"#),
        ),
        (
            "not an object",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(b"[1,2]"),
        ),
        (
            "missing otp",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(format!(r#"{{"identity":"{ID}"}}"#).as_bytes()),
        ),
        (
            "otp a number",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(format!(r#"{{"identity":"{ID}","otp":123456}}"#).as_bytes()),
        ),
        (
            "empty identity",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(br#"{"identity":"","otp":"123456"}"#),
        ),
        (
            "invalid UTF-8",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(b"{\"identity\":\"\xff\",\"otp\":\"1\"}"),
        ),
        (
            "empty body",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(b""),
        ),
        (
            "a charset (the App's on both)",
            post.clone(),
            OTP_VERIFY,
            vec![("Content-Type", "application/json; charset=utf-8".into())],
            verify(&wrong),
        ),
        (
            "text/plain",
            post.clone(),
            OTP_VERIFY,
            vec![("Content-Type", "text/plain".into())],
            verify(&code),
        ),
        (
            "no content type",
            post.clone(),
            OTP_VERIFY,
            vec![],
            verify(&code),
        ),
        ("GET", reqwest::Method::GET, OTP_VERIFY, vec![], both(b"")),
        (
            "trailing slash",
            post.clone(),
            "/api/v1/otp/verify/",
            vec![json()],
            verify(&code),
        ),
        (
            "16 KiB exactly (the lane's)",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(&padded(
                format!(r#"{{"identity":"{ID}"}}"#),
                otp_http::MAX_BODY_BYTES,
            )),
        ),
        (
            "a byte over 16 KiB (the App's on both)",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            both(&padded(
                format!(r#"{{"identity":"{ID}"}}"#),
                otp_http::MAX_BODY_BYTES + 1,
            )),
        ),
        (
            "right code",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            verify(&code),
        ),
        (
            "right code again",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            verify(&code),
        ),
    ];
    let mut refresh_tokens = Vec::new();
    for case in cases {
        let (what, a, b) = ask_both(&client, [&plain, &lane], case).await;
        if what == "right code" {
            assert_eq!(a.status, 200);
            for answer in [&a, &b] {
                let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
                refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
            }
        }
        if what == "wrong code" {
            assert_eq!(a.status, 400, "{:?}", String::from_utf8_lossy(&a.body));
        }
        assert_eq!(
            masked(b),
            masked(a),
            "{what}: the lane's answer differs from the app's"
        );
    }
    let refresh = |t: &str| format!(r#"{{"refresh_token":"{t}"}}"#).into_bytes();
    let spend = [refresh(&refresh_tokens[0]), refresh(&refresh_tokens[1])];
    let cases: Vec<PostCase<'_>> = vec![
        (
            "refresh",
            post.clone(),
            REFRESH,
            vec![json()],
            spend.clone(),
        ),
        (
            "the same token again (the reuse grace)",
            post.clone(),
            REFRESH,
            vec![json()],
            spend,
        ),
        (
            "not a token",
            post.clone(),
            REFRESH,
            vec![json()],
            both(&refresh("x.y.z")),
        ),
        (
            "empty token",
            post.clone(),
            REFRESH,
            vec![json()],
            both(&refresh("")),
        ),
        ("no token", post.clone(), REFRESH, vec![json()], both(b"{}")),
        (
            "a number",
            post.clone(),
            REFRESH,
            vec![json()],
            both(br#"{"refresh_token":5}"#),
        ),
        ("malformed", post.clone(), REFRESH, vec![json()], both(b"{")),
    ];
    for case in cases {
        let (what, a, b) = ask_both(&client, [&plain, &lane], case).await;
        if what == "refresh" {
            assert_eq!(a.status, 200, "{:?}", String::from_utf8_lossy(&a.body));
        }
        assert_eq!(
            masked(b),
            masked(a),
            "{what}: the lane's answer differs from the app's"
        );
    }
}

// See: issue 17. The lane reads the body under the same deadline as the
// App: a stalled body is answered 408 and its connection closed; a body in
// two parts within the deadline is answered and keeps the connection.
#[actix_web::test]
async fn the_lanes_post_routes_keep_the_body_deadline() {
    let h = crate::routes::quick_body_timeout();
    let server = h.serve_with_fast_lane();
    for path in [OTP_VERIFY, REFRESH] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        let (out, closed) = crate::routes::raw_exchange(server.addr, head).await;
        crate::routes::assert_cut_off_at_the_deadline(&out, closed);
    }
    let answers = crate::routes::bodies_in_two_parts(
        server.addr,
        vec![
            (
                OTP_VERIFY,
                format!(r#"{{"identity":"{ID}","otp":"000000"}}"#),
            ),
            (REFRESH, r#"{"refresh_token":"x.y.z"}"#.to_owned()),
        ],
    )
    .await;
    assert!(answers[0].starts_with("HTTP/1.1 400"), "{}", answers[0]);
    assert!(answers[1].starts_with("HTTP/1.1 401"), "{}", answers[1]);
    for a in &answers {
        assert!(!a.to_ascii_lowercase().contains("connection: close"), "{a}");
        assert!(a.to_ascii_lowercase().contains("x-request-id: "), "{a}");
    }
}

// See: issue 17. What the lane answers is logged as the App's requests
// are: every line inside the request's span with its id, and no code.
#[actix_web::test]
async fn the_lanes_log_lines_are_in_the_requests_span() {
    use actix_service::{Service, ServiceFactory};
    let h = harness();
    // an App without routes: whatever is answered here, the lane answered
    let lane = otp_http::fast_lane::FastLane::new(&h.state, actix_web::App::new())
        .new_service(actix_web::dev::AppConfig::default())
        .await
        .unwrap();
    let (_guard, logs) = otp_testkit::logs::capture_logs();
    let post = |path: &str, id: &str, body: String| {
        actix_web::test::TestRequest::post()
            .uri(path)
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Request-Id", id.to_owned()))
            .peer_addr("192.0.2.9:4000".parse().unwrap())
            .set_payload(body)
            .to_request()
    };
    let body = format!(r#"{{"identity":"{ID}","otp":"909090"}}"#);
    let res = lane
        .call(post(OTP_VERIFY, "req-lane-1", body))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers().get("x-request-id").unwrap(), "req-lane-1");
    let res = lane
        .call(post(REFRESH, "req-lane-2", "{".into()))
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("request{request_id=req-lane-1}") && l.contains("code_wrong")),
        "no audit line in the request's span:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("request{request_id=req-lane-2}")
                && l.contains("actix_web::types::json")
                && l.contains("Request path: /api/v1/token/refresh")),
        "not the JSON extractor's debug line:\n{text}"
    );
    for line in text.lines() {
        assert!(line.contains("request{request_id=req-lane-"), "{line}");
        assert!(!line.contains("909090") && !line.contains(ID), "{line}");
    }
}

// See: issue 17. The lane keys the per-IP limit by the same client address
// as the App: the right-most untrusted `X-Forwarded-For` hop behind a
// trusted proxy, the peer otherwise; its 429s are the App's.
#[actix_web::test]
async fn the_lane_limits_the_same_client_ips_as_the_app() {
    let setup = || {
        Setup {
            limits: otp_service::Limits {
                verify_per_ip: otp_service::LimitPolicy::per_secs("verify_ip", 2, 600),
                ..otp_service::Limits::default()
            },
            http: otp_http::HttpConfig {
                trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
                ..otp_http::HttpConfig::default()
            },
            ..Setup::default()
        }
        .build()
    };
    let (ha, hb) = (setup(), setup());
    let (plain, lane) = (ha.serve(), hb.serve_with_fast_lane());
    let client = reqwest::Client::new();
    let json = || ("Content-Type", "application/json".to_owned());
    let xff = |v: &str| vec![json(), ("X-Forwarded-For", v.to_owned())];
    let body = |who: &str| {
        let b = format!(r#"{{"identity":"{who}@example.com","otp":"000000"}}"#).into_bytes();
        [b.clone(), b]
    };
    let post = reqwest::Method::POST;
    let cases: Vec<PostCase<'_>> = vec![
        (
            "a, 1st",
            post.clone(),
            OTP_VERIFY,
            xff("203.0.113.1"),
            body("a"),
        ),
        (
            "a, 2nd",
            post.clone(),
            OTP_VERIFY,
            xff("203.0.113.1"),
            body("b"),
        ),
        (
            "a, 3rd: the IP's limit",
            post.clone(),
            OTP_VERIFY,
            xff("203.0.113.1"),
            body("c"),
        ),
        (
            "a hop spoofed left of a",
            post.clone(),
            OTP_VERIFY,
            xff("198.51.100.7, 203.0.113.1"),
            body("d"),
        ),
        (
            "another client",
            post.clone(),
            OTP_VERIFY,
            xff("203.0.113.2"),
            body("e"),
        ),
        (
            "no header: the proxy itself",
            post.clone(),
            OTP_VERIFY,
            vec![json()],
            body("f"),
        ),
    ];
    let mut statuses = Vec::new();
    for case in cases {
        let (what, a, b) = ask_both(&client, [&plain, &lane], case).await;
        statuses.push(a.status);
        assert_eq!(
            masked(b),
            masked(a),
            "{what}: the lane's answer differs from the app's"
        );
    }
    assert_eq!(statuses, [400, 400, 429, 429, 400, 400]);
}
