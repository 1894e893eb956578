//! Captures the request/response pairs shown in `docs/api.md`: real `curl -i`
//! runs against real servers (the `otp-server` app shape, bound on
//! 127.0.0.1), each response's status checked. Ignored by default because
//! it writes a file; run it with
//!
//! ```text
//! OTP_TRANSCRIPT_OUT=/tmp/api-transcript.md \
//!   cargo test -p otp-http --all-features --test http transcript:: -- --ignored --nocapture
//! ```
//!
//! The random port is shown as `127.0.0.1:8000` (the binary's default bind),
//! the `date` header is left out and the other headers are sorted by name
//! (actix's order is random); everything else is verbatim. Regenerating
//! changes only times, codes, tokens and temporary file names.

use std::process::Command;
use std::sync::Arc;

use crate::support::*;
use otp_core::unix_now;
use otp_http::HttpConfig;
use otp_ratelimit::{LimitPolicy, RedisConfig, RedisStore};
use otp_service::Limits;
use otp_testkit::{on_path, skip, started_redis_or_skip};
use serde_json::Map;

const SHOWN: &str = "http://127.0.0.1:8000";

struct Transcript {
    out: String,
}

fn shell_quote(arg: &str) -> String {
    if arg
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,".contains(&b))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

impl Transcript {
    fn heading(&mut self, title: &str) {
        self.out.push_str(&format!("\n### {title}\n\n"));
    }

    /// Runs `curl -sS -i <args>` against `server` (`{base}` in an argument is
    /// the base URL), records command and response (at most `max_lines`
    /// body lines), asserts the status and returns the body.
    async fn curl(
        &mut self,
        server: &Running,
        args: &[&str],
        expect: u16,
        max_lines: usize,
    ) -> String {
        let base = server.url("");
        let real: Vec<String> = args.iter().map(|a| a.replace("{base}", &base)).collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| shell_quote(&a.replace("{base}", SHOWN)))
            .collect();
        let out = actix_web::rt::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["-sS", "-i"])
                .args(&real)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let status: u16 = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert_eq!(status, expect, "curl {shown:?}\n{text}");
        // The status line, then the headers sorted by name: actix keeps
        // headers in a randomly seeded hash map, so their order changes from
        // run to run and would make every regeneration a diff.
        let mut head: Vec<&str> = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect();
        if let Some(headers) = head.get_mut(1..) {
            headers.sort_by_key(|l| l.to_ascii_lowercase());
        }
        let mut lines: Vec<&str> = body.lines().collect();
        let total = lines.len();
        let cut = total > max_lines;
        lines.truncate(max_lines);
        self.out.push_str("```console\n$ curl -i ");
        self.out.push_str(&shown.join(" "));
        self.out.push('\n');
        self.out.push_str(&head.join("\n"));
        self.out.push_str("\n\n");
        for l in &lines {
            if l.len() > 400 {
                self.out.push_str(&l[..400]);
                self.out.push_str(" …(truncated)\n");
            } else {
                self.out.push_str(l);
                self.out.push('\n');
            }
        }
        if cut {
            self.out
                .push_str(&format!("…({} more lines)\n", total - max_lines));
        }
        self.out.push_str("```\n");
        body.to_owned()
    }
}

const JSON: &str = "Content-Type: application/json";

/// `POST {base}{path}` with a JSON body, expecting `expect`; returns the body.
async fn post(t: &mut Transcript, s: &Running, path: &str, body: &str, expect: u16) -> String {
    let url = format!("{{base}}{path}");
    t.curl(s, &["-X", "POST", &url, "-H", JSON, "-d", body], expect, 5)
        .await
}

/// The session routes (SPEC §10): refresh (rotation, the grace answer,
/// errors), a refresh token is no access token, RFC 7009 revocation,
/// logout by bearer token and sign out everywhere.
async fn sessions(t: &mut Transcript, s: &Running, access: &str, refresh0: &str) {
    let refresh_body = |token: &str| format!(r#"{{"refresh_token":"{token}"}}"#);
    t.heading("POST /api/v1/token/refresh — 200 (rotation)");
    let body = post(t, s, "/api/v1/token/refresh", &refresh_body(refresh0), 200).await;
    let refresh1 = serde_json::from_str::<serde_json::Value>(&body).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    t.heading(
        "POST /api/v1/token/refresh — 200 (the same token again within the grace: the same successor)",
    );
    post(t, s, "/api/v1/token/refresh", &refresh_body(refresh0), 200).await;
    t.heading("POST /api/v1/token/refresh — 401 token_invalid");
    post(
        t,
        s,
        "/api/v1/token/refresh",
        &refresh_body("ort1_forged"),
        401,
    )
    .await;
    t.heading("POST /api/v1/token/refresh — 422 (no refresh_token)");
    post(t, s, "/api/v1/token/refresh", "{}", 422).await;
    t.heading("GET /api/v1/token/verify — 401 (a refresh token is not an access token)");
    let bearer = format!("Authorization: Bearer {refresh1}");
    t.curl(s, &["{base}/api/v1/token/verify", "-H", &bearer], 401, 5)
        .await;
    t.heading("POST /api/v1/token/introspect — a refresh token is inactive");
    let intro = format!(r#"{{"token":"{refresh1}"}}"#);
    post(t, s, "/api/v1/token/introspect", &intro, 200).await;
    t.heading("POST /api/v1/token/revoke — 200 (form body, RFC 7009)");
    let form = format!("token={refresh1}&token_type_hint=refresh_token");
    let url = "{base}/api/v1/token/revoke";
    t.curl(s, &["-X", "POST", url, "-d", &form], 200, 5).await;
    t.heading("POST /api/v1/token/revoke — 200 (any token, JSON body)");
    post(t, s, "/api/v1/token/revoke", r#"{"token":"garbage"}"#, 200).await;
    t.heading("POST /api/v1/token/refresh — 401 session_revoked (after the revocation)");
    post(t, s, "/api/v1/token/refresh", &refresh_body(&refresh1), 401).await;
    t.heading("POST /api/v1/logout — 200 (bearer access token)");
    let bearer = format!("Authorization: Bearer {access}");
    let url = "{base}/api/v1/logout";
    t.curl(s, &["-X", "POST", url, "-H", &bearer], 200, 5).await;
    t.heading("POST /api/v1/logout — 200 (sign out everywhere)");
    let all = format!(r#"{{"refresh_token":"{refresh0}","all":true}}"#);
    post(t, s, "/api/v1/logout", &all, 200).await;
    t.heading("POST /api/v1/logout — 401 token_missing");
    t.curl(s, &["-X", "POST", url], 401, 5).await;
}

#[actix_web::test]
#[ignore = "writes the docs/api.md transcript; run explicitly"]
async fn capture_api_transcript() {
    if !on_path("curl") {
        skip("capture_api_transcript", "curl is not on PATH");
        return;
    }
    let mut t = Transcript { out: String::new() };
    let h = harness();
    let s = h.serve();
    let id = "alice@example.com";

    t.heading("GET /health");
    t.curl(&s, &["{base}/health"], 200, 5).await;
    t.heading("GET /healthz");
    t.curl(&s, &["{base}/healthz"], 200, 5).await;
    t.heading("GET /readyz (memory store)");
    t.curl(&s, &["{base}/readyz"], 200, 5).await;

    t.heading("POST /api/v1/otp/request — 200");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            r#"{"identity":"Alice@Example.com"}"#,
        ],
        200,
        5,
    )
    .await;
    let code = h.outbox.last_code(id);
    let verify_body = format!(r#"{{"identity":"alice@example.com","otp":"{code}"}}"#);

    t.heading("POST /api/v1/otp/request — 422 (missing identity)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            "{}",
        ],
        422,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/request — 422 (empty identity)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            r#"{"identity":""}"#,
        ],
        422,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/request — 422 (malformed email)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            r#"{"identity":"a@b@c"}"#,
        ],
        422,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/request — 422 (body is not JSON)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            "identity=alice",
        ],
        422,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/request — 422 (JSON array)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            r#"["alice"]"#,
        ],
        422,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/request — 415 (text/plain)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            "Content-Type: text/plain",
            "-d",
            r#"{"identity":"alice@example.com"}"#,
        ],
        415,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/request — 413 (17 KiB body)");
    let big_path = std::env::temp_dir().join(format!("otp-big-{}.json", std::process::id()));
    std::fs::write(
        &big_path,
        format!(
            r#"{{"identity":"alice@example.com","pad":"{}"}}"#,
            "x".repeat(17 * 1024)
        ),
    )
    .unwrap();
    let big_arg = format!("@{}", big_path.display());
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "--data-binary",
            &big_arg,
        ],
        413,
        5,
    )
    .await;
    let _ = std::fs::remove_file(&big_path);

    t.heading("POST /api/v1/otp/verify — 422 (not 4 to 10 digits)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/verify",
            "-H",
            JSON,
            "-d",
            r#"{"identity":"alice@example.com","otp":"12ab56"}"#,
        ],
        422,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/verify — 400 (wrong code)");
    let wrong = format!(
        r#"{{"identity":"alice@example.com","otp":"{}"}}"#,
        wrong_code(&code)
    );
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/verify",
            "-H",
            JSON,
            "-d",
            &wrong,
        ],
        400,
        5,
    )
    .await;
    t.heading("POST /api/v1/otp/verify — 200 (the delivered code)");
    let body = t
        .curl(
            &s,
            &[
                "-X",
                "POST",
                "{base}/api/v1/otp/verify",
                "-H",
                JSON,
                "-d",
                &verify_body,
            ],
            200,
            5,
        )
        .await;
    let verified = serde_json::from_str::<serde_json::Value>(&body).unwrap();
    let token = verified["access_token"].as_str().unwrap().to_owned();
    let refresh0 = verified["refresh_token"].as_str().unwrap().to_owned();
    t.heading("POST /api/v1/otp/verify — 400 (the same code again: single use)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/verify",
            "-H",
            JSON,
            "-d",
            &verify_body,
        ],
        400,
        5,
    )
    .await;

    sessions(&mut t, &s, &token, &refresh0).await;

    t.heading("POST /api/v1/token/introspect — active");
    let intro = format!(r#"{{"token":"{token}"}}"#);
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/token/introspect",
            "-H",
            JSON,
            "-d",
            &intro,
        ],
        200,
        5,
    )
    .await;
    t.heading("POST /api/v1/token/introspect — inactive");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/token/introspect",
            "-H",
            JSON,
            "-d",
            r#"{"token":"garbage"}"#,
        ],
        200,
        5,
    )
    .await;
    t.heading("POST /api/v1/token/introspect — 422 (no token)");
    t.curl(
        &s,
        &[
            "-X",
            "POST",
            "{base}/api/v1/token/introspect",
            "-H",
            JSON,
            "-d",
            "{}",
        ],
        422,
        5,
    )
    .await;

    t.heading("GET /api/v1/token/verify — 200");
    let auth = format!("Authorization: Bearer {token}");
    t.curl(&s, &["{base}/api/v1/token/verify", "-H", &auth], 200, 5)
        .await;
    t.heading("GET /api/v1/token/verify — 401 token_missing");
    t.curl(&s, &["{base}/api/v1/token/verify"], 401, 5).await;
    t.heading("GET /api/v1/token/verify — 401 token_invalid");
    t.curl(
        &s,
        &[
            "{base}/api/v1/token/verify",
            "-H",
            "Authorization: Bearer garbage",
        ],
        401,
        5,
    )
    .await;
    t.heading("GET /api/v1/token/verify — 401 token_expired");
    let old = hs256_tokens()
        .issue(id, unix_now() - 7200, Map::new())
        .unwrap()
        .token;
    let old_auth = format!("Authorization: Bearer {old}");
    t.curl(&s, &["{base}/api/v1/token/verify", "-H", &old_auth], 401, 5)
        .await;

    t.heading("GET /.well-known/jwks.json — HS256");
    t.curl(&s, &["{base}/.well-known/jwks.json"], 200, 5).await;
    t.heading("GET /metrics (first lines)");
    t.curl(&s, &["{base}/metrics"], 200, 12).await;
    t.heading("GET /openapi.json (first bytes)");
    t.curl(&s, &["{base}/openapi.json"], 200, 1).await;
    t.heading("GET /docs");
    t.curl(&s, &["{base}/docs"], 200, 20).await;
    t.heading("404 and 405");
    t.curl(&s, &["{base}/api/v1/nope"], 404, 5).await;
    t.curl(&s, &["{base}/api/v1/otp/request"], 405, 5).await;

    // ---- limits (RATE_REQUEST_OTP_MAX=1, RATE_VERIFY_OTP_MAX=1)
    let limited = Setup {
        limits: Limits {
            request_per_identity: LimitPolicy::per_secs("request_identity", 1, 600),
            verify_per_identity: LimitPolicy::per_secs("verify_identity", 1, 600),
            ..Limits::default()
        },
        ..Setup::default()
    }
    .build();
    let l = limited.serve();
    t.heading("429 on request (server with RATE_REQUEST_OTP_MAX=1)");
    let req = r#"{"identity":"bob@example.com"}"#;
    t.curl(
        &l,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            req,
        ],
        200,
        5,
    )
    .await;
    t.curl(
        &l,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            req,
        ],
        429,
        5,
    )
    .await;
    t.heading("429 on verify (server with RATE_VERIFY_OTP_MAX=1)");
    let bad = r#"{"identity":"bob@example.com","otp":"000000"}"#;
    let bob = limited.outbox.last_code("bob@example.com");
    let expect_first = if bob == "000000" { 200 } else { 400 };
    t.curl(
        &l,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/verify",
            "-H",
            JSON,
            "-d",
            bad,
        ],
        expect_first,
        5,
    )
    .await;
    t.curl(
        &l,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/verify",
            "-H",
            JSON,
            "-d",
            bad,
        ],
        429,
        5,
    )
    .await;

    // ---- delivery down
    let failing = Setup {
        delivery: Some(Arc::new(FailingDelivery::Unreachable)),
        ..Setup::default()
    }
    .build();
    let f = failing.serve();
    t.heading("502 (the delivery backend fails)");
    t.curl(
        &f,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-d",
            req,
        ],
        502,
        5,
    )
    .await;

    // ---- Redis down
    if let Some(mut redis) = started_redis_or_skip("capture_api_transcript (503)") {
        let store = RedisStore::connect(RedisConfig::new(vec![redis.url()], vec![1u8; 32]))
            .await
            .unwrap();
        let rh = Setup {
            store: Some(Arc::new(store)),
            ..Setup::default()
        }
        .build();
        let r = rh.serve();
        t.heading("GET /readyz (STORE_BACKEND=redis, Redis up)");
        t.curl(&r, &["{base}/readyz"], 200, 5).await;
        redis.stop();
        t.heading("503 on the OTP routes, /readyz still 200 (STORE_BACKEND=redis, Redis down)");
        t.curl(
            &r,
            &[
                "-X",
                "POST",
                "{base}/api/v1/otp/request",
                "-H",
                JSON,
                "-d",
                req,
            ],
            503,
            5,
        )
        .await;
        t.curl(&r, &["{base}/readyz"], 200, 5).await;
    }

    // ---- EdDSA
    let ed = Setup {
        eddsa: true,
        ..Setup::default()
    }
    .build();
    let e = ed.serve();
    t.heading("GET /.well-known/jwks.json — EdDSA");
    t.curl(&e, &["{base}/.well-known/jwks.json"], 200, 5).await;

    // ---- CORS
    let cors = Setup {
        http: HttpConfig {
            cors_origins: vec!["https://app.example.com".into()],
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build();
    let c = cors.serve();
    t.heading("CORS: allowed origin (CORS_ORIGINS=https://app.example.com)");
    t.curl(
        &c,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-H",
            "Origin: https://app.example.com",
            "-d",
            req,
        ],
        200,
        5,
    )
    .await;
    t.heading("CORS: preflight");
    t.curl(
        &c,
        &[
            "-X",
            "OPTIONS",
            "{base}/api/v1/otp/request",
            "-H",
            "Origin: https://app.example.com",
            "-H",
            "Access-Control-Request-Method: POST",
            "-H",
            "Access-Control-Request-Headers: content-type",
        ],
        200,
        5,
    )
    .await;
    t.heading("CORS: preflight from an origin not in the list");
    t.curl(
        &c,
        &[
            "-X",
            "OPTIONS",
            "{base}/api/v1/otp/request",
            "-H",
            "Origin: https://evil.example",
            "-H",
            "Access-Control-Request-Method: POST",
        ],
        400,
        5,
    )
    .await;
    let wild = Setup {
        http: HttpConfig {
            cors_origins: vec!["*".into()],
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build();
    let w = wild.serve();
    t.heading("CORS: CORS_ORIGINS=* (no credentials)");
    t.curl(
        &w,
        &["{base}/health", "-H", "Origin: https://anyone.example"],
        200,
        5,
    )
    .await;

    // ---- trusted proxy
    let proxied = Setup {
        limits: Limits {
            request_per_ip: LimitPolicy::per_secs("request_ip", 1, 600),
            ..Limits::default()
        },
        http: HttpConfig {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build();
    let p = proxied.serve();
    t.heading("Client IP behind a trusted proxy (TRUSTED_PROXIES=127.0.0.1/32, RATE_REQUEST_OTP_PER_IP_MAX=1)");
    t.curl(
        &p,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-H",
            "X-Forwarded-For: 198.51.100.1",
            "-d",
            r#"{"identity":"c1"}"#,
        ],
        200,
        5,
    )
    .await;
    t.curl(
        &p,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-H",
            "X-Forwarded-For: 198.51.100.2",
            "-d",
            r#"{"identity":"c2"}"#,
        ],
        200,
        5,
    )
    .await;
    t.curl(
        &p,
        &[
            "-X",
            "POST",
            "{base}/api/v1/otp/request",
            "-H",
            JSON,
            "-H",
            "X-Forwarded-For: 203.0.113.66, 198.51.100.1",
            "-d",
            r#"{"identity":"c3"}"#,
        ],
        429,
        5,
    )
    .await;

    let path = std::env::var("OTP_TRANSCRIPT_OUT").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("otp-api-transcript.md")
            .display()
            .to_string()
    });
    std::fs::write(&path, &t.out).unwrap();
    eprintln!("transcript written to {path}");
}
