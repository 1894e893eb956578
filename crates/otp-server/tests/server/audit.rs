//! Audit events (SPEC §10; docs/audit.md) from the REAL binary: every
//! event kind for the flow that causes it, POSTed to `AUDIT_WEBHOOK_URL`
//! and verified there by the official Standard Webhooks library
//! (`webhook_receiver.py` runs `standardwebhooks`), retried with the same
//! `webhook-id` after 503s and after a timeout; pseudonyms by default, the identity and the
//! client network only with `AUDIT_INCLUDE_IDENTITY=true`; a full queue
//! drops and counts without slowing requests; and a `RUST_LOG=trace` scan
//! of a whole session flow (request, verify, wrong code, refresh, grace,
//! reuse, logout, revoke, sign out everywhere) finding no code, access
//! token or refresh token in stdout or stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use otp_testkit::sinks::{python_has, spawn_python};
use serde_json::{json, Value};

use crate::hostile::{Behaviour, Receiver};
use crate::logs::contains_number;
use crate::support::{self, http, post_json, run_bin, Server, TempDir};

const AUDIT_SECRET: &str = "whsec_YXVkaXQtd2ViaG9vay10ZXN0LXNlY3JldC0xMjM0";
const IDENTITY: &str = "audit.flow@example.com";

/// The Standard Webhooks receiver (official library) logging to a file.
struct AuditHook {
    _receiver: otp_testkit::ChildGuard,
    port: u16,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl AuditHook {
    fn start() -> AuditHook {
        let dir = TempDir::new("audit-hook");
        let log = dir.path().join("audit.log");
        let (receiver, port) = spawn_python(
            "webhook_receiver.py",
            &["--secret", AUDIT_SECRET, "--log", &log.to_string_lossy()],
        );
        AuditHook {
            _receiver: receiver,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request logged so far.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("receiver log line"))
            .collect()
    }

    /// Waits (up to 20 s) until the verified events cover `kinds`; returns
    /// every logged request.
    fn wait_for(&self, kinds: &[&str]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let requests = self.requests();
            let seen: BTreeSet<String> = requests
                .iter()
                .filter(|r| r["verified"] == true)
                .filter_map(|r| r["payload"]["data"]["event"].as_str().map(str::to_owned))
                .collect();
            if kinds.iter().all(|k| seen.contains(*k)) {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "audit events missing: {:?} (seen {seen:?})",
                kinds
                    .iter()
                    .filter(|k| !seen.contains(**k))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn api(server: &Server, path: &str) -> String {
    format!("{}/api/v1{path}", server.url)
}

/// Requests a code for `identity` and reads it from console delivery.
fn code_for(server: &mut Server, identity: &str, previous: Option<&str>) -> String {
    let r = post_json(
        &api(server, "/otp/request"),
        &json!({ "identity": identity }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let code = server.console_code(identity, Duration::from_secs(5));
        if let Some(code) = code.filter(|c| Some(c.as_str()) != previous) {
            return code;
        }
        assert!(Instant::now() < deadline, "no new code for {identity}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn refresh(server: &Server, token: &str) -> (u16, Value) {
    let r = post_json(
        &api(server, "/token/refresh"),
        &json!({ "refresh_token": token }),
    );
    let body = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

/// A wrong code of the same length as `code`.
fn wrong(code: &str, i: u64) -> String {
    let n: u64 = code.parse().unwrap();
    let m = 10u64.pow(code.len() as u32);
    format!("{:0w$}", (n + 1 + i) % m, w = code.len())
}

/// The whole flow that causes every event kind once at least; returns the
/// tokens and codes it handled (for the log scan).
struct Flow {
    codes: Vec<String>,
    wrong: Vec<String>,
    access: Vec<String>,
    refresh: Vec<String>,
}

const ALL_KINDS: [&str; 11] = [
    "code_sent",
    "sign_in",
    "code_wrong",
    "attempts_exhausted",
    "limit_hit",
    "refresh",
    "refresh_grace",
    "refresh_reuse",
    "logout",
    "sign_out_everywhere",
    "revoke",
];

/// The settings [`run_flow`] relies on: 4 sends per window (the fifth is
/// `limit_hit`), 2 wrong codes use up the budget, a 1 s reuse grace.
fn flow_server(builder: support::ServerBuilder) -> support::ServerBuilder {
    builder
        .env("RATE_REQUEST_OTP_MAX", "4")
        .env("OTP_MAX_ATTEMPTS", "2")
        .env("REFRESH_REUSE_GRACE_SECONDS", "1")
}

/// How a flow gets the code of a fresh request: (server, previous code).
type CodeSource<'a> = &'a mut dyn FnMut(&mut Server, Option<&str>) -> String;

/// Requests a code and verifies it: (access token, refresh token).
fn verify(server: &mut Server, flow: &mut Flow, codes_of: CodeSource<'_>) -> (String, String) {
    let code = codes_of(server, flow.codes.last().map(String::as_str));
    let r = post_json(
        &api(server, "/otp/verify"),
        &json!({ "identity": IDENTITY, "otp": code }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    let (a, t) = (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    );
    flow.codes.push(code);
    flow.access.push(a.clone());
    flow.refresh.push(t.clone());
    (a, t)
}

fn run_flow(server: &mut Server, codes_of: CodeSource<'_>) -> Flow {
    let mut flow = Flow {
        codes: vec![],
        wrong: vec![],
        access: vec![],
        refresh: vec![],
    };
    // code_sent, sign_in; refresh, refresh_grace, then refresh_reuse.
    let (_, r0) = verify(server, &mut flow, codes_of);
    let (s, b) = refresh(server, &r0);
    assert_eq!(s, 200, "{b}");
    let r1 = b["refresh_token"].as_str().unwrap().to_owned();
    flow.access
        .push(b["access_token"].as_str().unwrap().to_owned());
    let (s, again) = refresh(server, &r0);
    assert_eq!(
        (s, again["refresh_token"].as_str()),
        (200, Some(r1.as_str())),
        "grace"
    );
    std::thread::sleep(Duration::from_millis(2_500));
    let (s, b) = refresh(server, &r0);
    assert_eq!(
        (s, b["error"].as_str()),
        (401, Some("session_revoked")),
        "reuse"
    );
    flow.refresh.push(r1);
    // logout with the bearer access token
    let (a2, _) = verify(server, &mut flow, codes_of);
    let r = http(
        "POST",
        &api(server, "/logout"),
        &[("Authorization", &format!("Bearer {a2}"))],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // RFC 7009 revocation of a refresh token, then sign out everywhere
    let (_, r3) = verify(server, &mut flow, codes_of);
    let r = post_json(&api(server, "/token/revoke"), &json!({ "token": r3 }));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(
        &api(server, "/logout"),
        &json!({ "all": true, "refresh_token": r3 }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // a fourth code and two wrong guesses: code_wrong twice, the budget
    // used up; then the fifth send is refused (limit_hit)
    let code = codes_of(server, flow.codes.last().map(String::as_str));
    flow.codes.push(code.clone());
    for i in 0..2 {
        let w = wrong(&code, i);
        let r = post_json(
            &api(server, "/otp/verify"),
            &json!({ "identity": IDENTITY, "otp": w }),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        flow.wrong.push(w);
    }
    let r = post_json(
        &api(server, "/otp/request"),
        &json!({ "identity": IDENTITY }),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    flow
}

#[test]
fn every_audit_event_reaches_the_webhook_signed_per_standard_webhooks_with_pseudonyms() {
    if !python_has("standardwebhooks") {
        return;
    }
    let hook = AuditHook::start();
    // /flaky answers 503 twice, then 200: the first event is retried.
    let mut server = flow_server(Server::builder())
        .env("AUDIT_WEBHOOK_URL", hook.url("/flaky"))
        .env("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET)
        .start();
    let flow = run_flow(&mut server, &mut |s, prev| code_for(s, IDENTITY, prev));
    assert_eq!(flow.codes.len(), 4);
    let requests = hook.wait_for(&ALL_KINDS);

    // Retries: the first event was answered 503, 503, then 200, all with
    // one webhook-id (and each attempt verified by the library).
    let first_id = requests[0]["headers"]["webhook-id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts: Vec<&Value> = requests
        .iter()
        .filter(|r| r["headers"]["webhook-id"] == first_id.as_str())
        .collect();
    assert_eq!(attempts.len(), 3, "two 503s, then delivered: {attempts:?}");
    assert!(attempts.iter().all(|r| r["verified"] == true));

    let mut kinds = BTreeMap::<String, usize>::new();
    let mut subjects = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in &requests {
        assert_eq!(
            r["verified"], true,
            "signature verified by standardwebhooks: {r}"
        );
        let p = &r["payload"];
        let data = &p["data"];
        let event = data["event"].as_str().unwrap();
        assert_eq!(p["type"], format!("audit.{event}"));
        assert!(p["timestamp"].as_str().unwrap().ends_with('Z'), "{p}");
        assert_eq!(
            r["headers"]["webhook-id"], data["id"],
            "webhook-id is the event id"
        );
        ids.insert(data["id"].as_str().unwrap().to_owned());
        let subject = data["subject"].as_str().unwrap();
        assert!(
            subject.len() == 32 && subject.chars().all(|c| c.is_ascii_hexdigit()),
            "a pseudonym by default: {subject}"
        );
        subjects.insert(subject.to_owned());
        let network = data["network"].as_str().expect("network");
        assert!(network.len() == 32 && network != "127.0.0.1", "{network}");
        assert!(
            data["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "every event came from an HTTP request: {data}"
        );
        let needs_sid = !matches!(
            event,
            "code_sent" | "code_wrong" | "attempts_exhausted" | "limit_hit" | "sign_out_everywhere"
        );
        assert_eq!(data["sid"].is_string(), needs_sid, "{event}: {data}");
        assert_eq!(data["limit"].is_string(), event == "limit_hit", "{data}");
        if event == "limit_hit" {
            assert_eq!(data["limit"], "request_identity");
        }
        let body = r["body"].as_str().unwrap();
        assert!(
            !body.contains(IDENTITY) && !body.contains("127.0.0.1"),
            "{body}"
        );
        for secret in flow.codes.iter().chain(&flow.wrong) {
            assert!(!body.contains(&format!("\"{secret}\"")), "a code in {body}");
        }
        for t in flow.access.iter().chain(&flow.refresh) {
            assert!(!body.contains(t.as_str()), "a token in {body}");
        }
        *kinds.entry(event.to_owned()).or_default() += 1;
    }
    assert_eq!(
        subjects.len(),
        1,
        "one identity, one pseudonym: {subjects:?}"
    );
    // Each event once, except the retried first one (3 attempts).
    assert_eq!(ids.len(), requests.len() - 2);
    assert_eq!(
        kinds["code_sent"],
        4 + 2,
        "4 sends (+2 retries of the first)"
    );
    assert_eq!(kinds["sign_in"], 3);
    assert_eq!(kinds["code_wrong"], 2);
    for k in &ALL_KINDS[3..] {
        assert_eq!(kinds[*k], 1, "{k}: {kinds:?}");
    }

    // The same events are in the log, on target `audit`.
    let log = server.stderr();
    for kind in ALL_KINDS {
        assert!(
            log.lines().any(|l| l.contains("\"target\":\"audit\"")
                && l.contains(&format!("\"event\":\"{kind}\""))),
            "{kind} not in the audit log"
        );
    }
    assert!(!log.contains(IDENTITY), "the identity is not logged");
    let metrics = http("GET", &format!("{}/metrics", server.url), &[], None).unwrap();
    assert!(
        metrics
            .body
            .contains("otp_audit_dropped_total{reason=\"queue_full\"} 0")
            && metrics
                .body
                .contains("otp_audit_dropped_total{reason=\"undeliverable\"} 0"),
        "{}",
        metrics.body
    );
}

#[test]
fn audit_include_identity_names_the_identity_and_the_client_network() {
    if !python_has("standardwebhooks") {
        return;
    }
    let hook = AuditHook::start();
    let mut server = Server::builder()
        .env("AUDIT_WEBHOOK_URL", hook.url("/ok"))
        .env("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET)
        .env("AUDIT_INCLUDE_IDENTITY", "true")
        .start();
    let id = "Named.Person@Example.com";
    let _ = crate::replicas::sign_in(&mut server, &id.to_lowercase());
    let requests = hook.wait_for(&["code_sent", "sign_in"]);
    for r in &requests {
        assert_eq!(r["verified"], true, "{r}");
        let data = &r["payload"]["data"];
        assert_eq!(data["subject"], "named.person@example.com", "{data}");
        assert_eq!(data["network"], "127.0.0.1", "{data}");
    }
}

#[test]
fn a_full_audit_queue_drops_new_events_counts_them_and_warns_once() {
    // A receiver that takes 5 s per event and a queue of 1: the task holds
    // one event, the queue one more, every further one is dropped at once.
    let slow = Receiver::start(Behaviour::Slow(Duration::from_secs(5)));
    let mut server = Server::builder()
        .env("AUDIT_WEBHOOK_URL", slow.url.clone())
        .env("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET)
        .env("AUDIT_WEBHOOK_QUEUE_SIZE", "1")
        .env("RATE_REQUEST_OTP_MAX", "100")
        .env("RATE_REQUEST_OTP_PER_IP_MAX", "100")
        .start();
    let started = Instant::now();
    for i in 0..10 {
        let r = post_json(
            &api(&server, "/otp/request"),
            &json!({ "identity": format!("queue{i}@example.com") }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "requests never wait for the audit webhook ({took:?} for 10)"
    );
    let metrics = http("GET", &format!("{}/metrics", server.url), &[], None).unwrap();
    let dropped: f64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("otp_audit_dropped_total{reason=\"queue_full\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the queue_full series");
    assert!(
        dropped >= 8.0,
        "10 events, at most 2 held: {dropped} dropped"
    );
    let warnings = server
        .stderr()
        .lines()
        .filter(|l| l.contains("audit webhook queue full"))
        .count();
    assert_eq!(warnings, 1, "one warning, however many drops");
    let _ = server.drain_stdout();
}

#[test]
fn a_bad_audit_webhook_setting_is_one_line_naming_the_variable() {
    let base = [
        ("OTP_SECRET_KEY", support::TEST_OTP_KEY),
        ("JWT_SECRET", support::TEST_JWT_SECRET),
        ("DELIVERY_BACKEND", "console"),
    ];
    for (extra, var) in [
        (
            vec![("AUDIT_WEBHOOK_URL", "ftp://audit.example/")],
            "AUDIT_WEBHOOK_URL",
        ),
        (
            vec![("AUDIT_WEBHOOK_URL", "https://audit.example/")],
            "AUDIT_WEBHOOK_SECRET",
        ),
        (
            vec![
                ("AUDIT_WEBHOOK_URL", "https://audit.example/"),
                ("AUDIT_WEBHOOK_SECRET", "whsec_!!"),
            ],
            "AUDIT_WEBHOOK_SECRET",
        ),
        (
            vec![("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET)],
            "AUDIT_WEBHOOK_SECRET",
        ),
        (
            vec![("AUDIT_INCLUDE_IDENTITY", "perhaps")],
            "AUDIT_INCLUDE_IDENTITY",
        ),
        (
            vec![("AUDIT_WEBHOOK_QUEUE_SIZE", "0")],
            "AUDIT_WEBHOOK_QUEUE_SIZE",
        ),
    ] {
        let env: Vec<(&str, &str)> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, _, err) = run_bin(&["check-config"], &env);
        assert_ne!(code, 0, "{extra:?}");
        let line = err.lines().find(|l| l.contains(var)).unwrap_or_default();
        assert!(!line.is_empty(), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("whsec_!!"), "the secret is not echoed: {err}");
    }
}

#[test]
fn no_code_access_token_or_refresh_token_appears_in_trace_logs_of_a_session_flow() {
    // Codes by webhook (console delivery would print them), 8 digits so
    // the 6-digit microseconds of timestamps cannot match by chance; the
    // audit webhook on too, so its path is traced as well.
    let delivery = Receiver::start(Behaviour::Status(204));
    let audit = Receiver::start(Behaviour::Status(204));
    let mut server = flow_server(Server::builder())
        .env("RUST_LOG", "trace")
        .env("OTP_DIGITS", "8")
        .env("DELIVERY_BACKEND", "webhook")
        .env("WEBHOOK_URL", delivery.url.clone())
        .env("WEBHOOK_SECRET", AUDIT_SECRET)
        .env("AUDIT_WEBHOOK_URL", audit.url.clone())
        .env("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET)
        .start();
    let flow = run_flow(&mut server, &mut |s, _prev| {
        let before = delivery.bodies().len();
        let r = post_json(&api(s, "/otp/request"), &json!({ "identity": IDENTITY }));
        assert_eq!(r.status, 200, "{}", r.body);
        let deadline = Instant::now() + Duration::from_secs(5);
        while delivery.bodies().len() == before {
            assert!(Instant::now() < deadline, "no delivery");
            std::thread::sleep(Duration::from_millis(20));
        }
        let body = delivery.bodies().pop().unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        v["otp"].as_str().unwrap().to_owned()
    });
    // Wait until the audit webhook has had every event.
    let deadline = Instant::now() + Duration::from_secs(10);
    while audit.hits() < 17 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.terminate(Duration::from_secs(10)).is_some());
    let mut all = server.stderr();
    for line in server.drain_stdout() {
        all.push_str(line);
        all.push('\n');
    }
    assert!(all.contains("TRACE"), "trace level is on");
    assert!(all.lines().count() > 100, "trace output");
    for kind in ALL_KINDS {
        assert!(
            all.contains(&format!("\"event\":\"{kind}\"")),
            "{kind} logged"
        );
    }
    for code in flow.codes.iter().chain(&flow.wrong) {
        assert_eq!(code.len(), 8);
        assert!(!contains_number(&all, code), "a code appears in the logs");
    }
    assert_eq!(flow.access.len(), 4);
    for token in &flow.access {
        let mut parts = token.split('.');
        let (_, payload, signature) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        for (what, s) in [
            ("access token", token.as_str()),
            ("payload", payload),
            ("signature", signature),
        ] {
            assert!(!all.contains(s), "an {what} appears in the logs");
        }
    }
    assert_eq!(flow.refresh.len(), 4);
    for token in &flow.refresh {
        assert!(
            !all.contains(token.as_str()),
            "a refresh token appears in the logs"
        );
        // Any 24-character piece of its body (the MAC and the claims).
        let body = token.split_once('_').map_or(token.as_str(), |(_, b)| b);
        for piece in body.as_bytes().chunks(24).filter(|c| c.len() == 24) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(
                !all.contains(piece),
                "part of a refresh token appears in the logs"
            );
        }
    }
    for (what, secret) in [
        ("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET),
        ("OTP_SECRET_KEY", support::TEST_OTP_KEY),
        ("JWT_SECRET", support::TEST_JWT_SECRET),
    ] {
        assert!(!all.contains(secret), "{what} appears in the logs");
    }
}

/// Reads one HTTP request from `stream`: its `webhook-id` header, if any.
fn read_webhook_id(stream: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    header("webhook-id")
}

#[test]
fn an_audit_event_whose_post_timed_out_is_retried_with_the_same_webhook_id() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    // A receiver that never answers its first request (the 5 s timeout of
    // an audit POST expires) and answers 204 to every later one.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ids = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let ids = ids.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(id) = read_webhook_id(&mut stream) else {
                    continue;
                };
                let first = {
                    let mut ids = ids.lock().unwrap();
                    ids.push(id);
                    ids.len() == 1
                };
                if first {
                    held.push(stream);
                } else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
    }
    let mut server = Server::builder()
        .env(
            "AUDIT_WEBHOOK_URL",
            format!("http://127.0.0.1:{port}/audit"),
        )
        .env("AUDIT_WEBHOOK_SECRET", AUDIT_SECRET)
        .start();
    let started = Instant::now();
    let r = post_json(
        &api(&server, "/otp/request"),
        &json!({ "identity": "timeout@example.com" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request does not wait for the audit POST"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no retry after the timeout");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids[0], ids[1], "the retry carries the same webhook-id");
    assert!(ids[0].starts_with("msg_"), "{ids:?}");
    let _ = server.drain_stdout();
}
