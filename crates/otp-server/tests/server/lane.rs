//! The fast lane in the real binary (issue 17): otp-server as it runs by
//! default (the lane on) answers the code and refresh `POST`s exactly as
//! the same binary with `ACCESS_LOG=true`, which turns the lane off (every
//! request then goes through the whole `App`). Both share the keys, so
//! the same calls in the same order give the same answers.

use std::time::Duration;

use crate::support::{http, HttpResponse, Server};

const ID: &str = "lane@example.com";

/// The parts compared: status, headers without `date` (sorted: actix's
/// header map orders them by a per-process hash), and the body with the
/// tokens of a 200 masked (fresh random tokens on each server).
fn normalized(r: HttpResponse) -> (u16, Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k != "date")
        .cloned()
        .collect();
    headers.sort();
    let mut body = r.body.clone();
    if r.status == 200 {
        let mut v = r.json();
        for key in ["access_token", "refresh_token"] {
            if let Some(t) = v.get_mut(key) {
                assert!(t.as_str().is_some_and(|t| t.len() > 20), "{key}: {t}");
                *t = "<token>".into();
            }
        }
        body = v.to_string();
    }
    (r.status, headers, body)
}

#[test]
fn the_binary_answers_the_post_routes_alike_with_and_without_its_fast_lane() {
    let mut app = Server::builder().env("ACCESS_LOG", "true").start();
    let mut lane = Server::builder().start();
    let mut codes = Vec::new();
    for server in [&mut app, &mut lane] {
        let r = http(
            "POST",
            &format!("{}/api/v1/otp/request", server.url),
            &[],
            Some(&format!(r#"{{"identity":"{ID}"}}"#)),
        )
        .expect("an answer");
        assert_eq!(r.status, 200);
        codes.push(
            server
                .console_code(ID, Duration::from_secs(5))
                .expect("a code"),
        );
    }
    assert_eq!(codes[0], codes[1], "the same keys, the same code");
    let code = &codes[0];
    let wrong: String = code
        .bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect();
    let verify = |otp: &str| format!(r#"{{"identity":"{ID}","otp":"{otp}"}}"#);
    let ask = |server: &Server, path: &str, body: &str| {
        let r = http(
            "POST",
            &format!("{}{path}", server.url),
            &[("X-Request-Id", "lane-equality")],
            Some(body),
        )
        .expect("an answer");
        (r.clone(), normalized(r))
    };
    let mut refresh = Vec::new();
    for (what, path, body) in [
        ("wrong code", "/api/v1/otp/verify", verify(&wrong)),
        (
            "malformed",
            "/api/v1/otp/verify",
            r#"{"identity":"#.to_owned(),
        ),
        (
            "missing otp",
            "/api/v1/otp/verify",
            format!(r#"{{"identity":"{ID}"}}"#),
        ),
        ("right code", "/api/v1/otp/verify", verify(code)),
        ("right code again", "/api/v1/otp/verify", verify(code)),
        (
            "not a token",
            "/api/v1/token/refresh",
            r#"{"refresh_token":"x.y.z"}"#.to_owned(),
        ),
        ("no token", "/api/v1/token/refresh", "{}".to_owned()),
    ] {
        let (raw_a, a) = ask(&app, path, &body);
        let (raw_b, b) = ask(&lane, path, &body);
        assert_eq!(b, a, "{what}: the lane's answer differs from the App's");
        if what == "right code" {
            assert_eq!(a.0, 200, "{}", raw_a.body);
            refresh = vec![raw_a.json(), raw_b.json()];
        }
    }
    let spend = |i: usize| {
        format!(
            r#"{{"refresh_token":"{}"}}"#,
            refresh[i]["refresh_token"].as_str().unwrap()
        )
    };
    for what in ["refresh", "the same token again (the reuse grace)"] {
        let (_, a) = ask(&app, "/api/v1/token/refresh", &spend(0));
        let (_, b) = ask(&lane, "/api/v1/token/refresh", &spend(1));
        assert_eq!(a.0, 200, "{what}: {}", a.2);
        assert_eq!(b, a, "{what}: the lane's answer differs from the App's");
    }
}
