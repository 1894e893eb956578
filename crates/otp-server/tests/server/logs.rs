//! Secrets never reach the logs (SPEC §3.5, §7; docs/security.md): the REAL
//! binary runs at `RUST_LOG=trace` with JSON logs through request → verify →
//! bearer check → introspect → wrong codes → rate limits, delivering by
//! webhook to a local receiver so the test knows the codes. Then ALL of its
//! stderr and stdout is searched for the codes, the token (and its
//! signature), OTP_SECRET_KEY, JWT_SECRET, WEBHOOK_SECRET and a secret
//! webhook header value: none may appear.
//!
//! Codes are 8 digits here and searched as whole numbers, so that the 6-digit
//! microseconds of log timestamps cannot match by chance.

use crate::hostile;
use crate::support;

use std::time::Duration;

use hostile::{client, post, Behaviour, Receiver};
use serde_json::json;
use support::Server;

const WEBHOOK_SECRET: &str = "whsec_bG9ncy10ZXN0LXdlYmhvb2stc2VjcmV0LTEyMzQ1Ng==";
const WEBHOOK_SECRET_B64: &str = "bG9ncy10ZXN0LXdlYmhvb2stc2VjcmV0LTEyMzQ1Ng";
const HOOK_HEADER_SECRET: &str = "hook-header-secret-value-7f3a9c";
const IDENTITY: &str = "log.secrets@example.com";

/// True if `needle` (all digits) occurs in `hay` not next to another digit.
pub(crate) fn contains_number(hay: &str, needle: &str) -> bool {
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = start > 0 && bytes[start - 1].is_ascii_digit();
        let after = end < bytes.len() && bytes[end].is_ascii_digit();
        if !before && !after {
            return true;
        }
        from = start + 1;
    }
    false
}

fn last_code(receiver: &Receiver) -> String {
    let body = receiver.bodies().pop().expect("a webhook delivery");
    let v: serde_json::Value = serde_json::from_str(&body).expect("webhook JSON");
    v["otp"].as_str().expect("otp in the payload").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_token_or_secret_appears_in_trace_logs() {
    let receiver = Receiver::start(Behaviour::Status(204));
    let mut server = Server::builder()
        .env("RUST_LOG", "trace")
        .env("LOG_FORMAT", "json")
        .env("OTP_DIGITS", "8")
        .env("DELIVERY_BACKEND", "webhook")
        .env("WEBHOOK_URL", receiver.url.clone())
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env(
            "WEBHOOK_HEADERS",
            format!("X-Hook-Auth: {HOOK_HEADER_SECRET}"),
        )
        .env("RATE_REQUEST_OTP_MAX", "2")
        .env("RATE_VERIFY_OTP_MAX", "3")
        .start();
    let base = server.url.clone();
    let c = client(Duration::from_secs(10));
    let url = |p: &str| format!("{base}/api/v1{p}");

    // request → verify → bearer → introspect
    let (s, b) = post(&c, &url("/otp/request"), json!({"identity": IDENTITY}))
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let code1 = last_code(&receiver);
    assert_eq!(code1.len(), 8);
    let (s, b) = post(
        &c,
        &url("/otp/verify"),
        json!({"identity": IDENTITY, "otp": code1}),
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().expect("token").to_owned();
    let r = c
        .get(url("/token/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, b) = post(&c, &url("/token/introspect"), json!({"token": token}))
        .await
        .unwrap();
    assert_eq!((s, b["active"].as_bool()), (200, Some(true)));
    // A tampered token too (its text is logged nowhere either).
    let r = c
        .get(url("/token/verify"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // a second code, then wrong codes until the verify limit answers 429
    let (s, _) = post(&c, &url("/otp/request"), json!({"identity": IDENTITY}))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let code2 = last_code(&receiver);
    let wrong: Vec<String> = (0..4u64)
        .map(|i| {
            format!(
                "{:08}",
                (code2.parse::<u64>().unwrap() + 1 + i) % 100_000_000
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for w in &wrong {
        let (s, _) = post(
            &c,
            &url("/otp/verify"),
            json!({"identity": IDENTITY, "otp": w}),
        )
        .await
        .unwrap();
        statuses.push(s);
    }
    assert_eq!(
        statuses,
        vec![400, 400, 400, 429],
        "wrong codes, then the limit"
    );
    // the send limit (2 per window) answers 429 too
    let (s, b) = post(&c, &url("/otp/request"), json!({"identity": IDENTITY}))
        .await
        .unwrap();
    assert_eq!((s, b["error"].as_str()), (429, Some("rate_limit_exceeded")));

    assert!(
        server.terminate(Duration::from_secs(10)).is_some(),
        "exits on SIGTERM"
    );
    let mut all = server.stderr();
    for line in server.drain_stdout() {
        all.push_str(line);
        all.push('\n');
    }
    let lines = all.lines().count();
    assert!(lines > 30, "trace logging produced output ({lines} lines)");
    assert!(all.contains("TRACE"), "trace level is on");

    for (what, code) in [("first code", &code1), ("second code", &code2)] {
        assert!(!contains_number(&all, code), "{what} appears in the logs");
    }
    let signature = token.rsplit('.').next().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    for (what, secret) in [
        ("token", token.as_str()),
        ("token signature", signature),
        ("token payload", payload),
        ("OTP_SECRET_KEY", support::TEST_OTP_KEY),
        ("JWT_SECRET", support::TEST_JWT_SECRET),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("WEBHOOK_SECRET body", WEBHOOK_SECRET_B64),
        ("webhook header value", HOOK_HEADER_SECRET),
    ] {
        assert!(!all.contains(secret), "{what} appears in the logs");
    }
    // Wrong codes are secrets of a kind too (near guesses of the real one).
    for w in &wrong {
        assert!(
            !contains_number(&all, w),
            "a submitted code appears in the logs"
        );
    }
    eprintln!(
        "{lines} log lines at trace level; identity present in logs: {}",
        all.contains(IDENTITY)
    );
}
