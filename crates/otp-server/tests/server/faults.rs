//! Fault injection against the REAL otp-server binary (SPEC §6, §7, §9):
//! Redis killed under load (fail closed / open, recovery on restart), SMTP
//! refused or hanging (502 within the delivery timeout, the runtime not
//! starved), webhook receivers slow or failing (bounded retries, 502),
//! slowloris and idle connections (timeouts and connection limits), and a
//! flood of one million identities through the memory limiter (bytes per
//! identity under the documented bound).
//!
//! Every test is bounded in time; every process and listener it starts is
//! stopped when it ends. Tests needing `redis-server` skip without it (and
//! fail under `OTP_E2E_REQUIRE_ALL=1`).

use crate::hostile;
use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hostile::{client, post, Behaviour, Hanging, Receiver, OPEN_LIMITS};
use otp_testkit::RedisServer;
use serde_json::json;
use support::{Server, ServerBuilder};

fn builder() -> ServerBuilder {
    let mut b = Server::builder();
    for (k, v) in OPEN_LIMITS {
        b = b.env(k, *v);
    }
    b
}

fn assert_no_panic(server: &Server) {
    let logs = server.stderr();
    assert!(!logs.contains("panicked"), "the server panicked: {logs}");
}

/// One request of the load: `/otp/request` for a fresh identity, or a wrong
/// code on `/otp/verify`. Returns (status, error code).
async fn one(c: &reqwest::Client, base: &str, n: usize) -> (u16, String) {
    let id = format!("load{n}@example.com");
    let r = if n.is_multiple_of(2) {
        post(
            c,
            &format!("{base}/api/v1/otp/request"),
            json!({"identity": id}),
        )
        .await
    } else {
        post(
            c,
            &format!("{base}/api/v1/otp/verify"),
            json!({"identity": id, "otp": "000000"}),
        )
        .await
    };
    match r {
        Ok((s, body)) => (s, body["error"].as_str().unwrap_or("").to_owned()),
        Err(e) => panic!("request failed without an HTTP answer: {e}"),
    }
}

/// Runs `conc` concurrent loops of [`one`] for `dur`; returns every outcome.
async fn load(base: &str, conc: usize, dur: Duration, seed: usize) -> Vec<(u16, String)> {
    let c = client(Duration::from_secs(5));
    let end = Instant::now() + dur;
    let mut tasks = Vec::new();
    for t in 0..conc {
        let (c, base) = (c.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = 0;
            while Instant::now() < end {
                out.push(one(&c, &base, seed + t * 1_000_000 + i).await);
                i += 1;
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all
}

fn redis_or_skip() -> Option<RedisServer> {
    if support::skip_without("redis-server") {
        return None;
    }
    Some(RedisServer::start().expect("start redis-server"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_load_fails_closed_without_500_and_recovers_within_5s() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    let server = builder()
        .env("STORE_BACKEND", "redis")
        .env("REDIS_URL", redis.url())
        .env("REDIS_TIMEOUT_MS", "200")
        .env("DELIVERY_BACKEND", "none")
        .start();
    let base = server.url.clone();

    let before = load(&base, 8, Duration::from_secs(1), 0).await;
    assert!(before.len() > 20, "load ran: {} requests", before.len());
    for (s, e) in &before {
        assert!(
            *s == 200 || (*s == 400 && e == "otp_invalid"),
            "before the kill: {s} {e}"
        );
    }

    redis.stop();
    let during = load(&base, 8, Duration::from_secs(2), 10_000_000).await;
    let mut n503 = 0;
    for (s, e) in &during {
        assert!(
            matches!(*s, 200 | 400 | 503),
            "while Redis is down: unexpected {s} {e}"
        );
        if *s == 503 {
            assert_eq!(e, "backend_unavailable");
            n503 += 1;
        }
    }
    // After the first failures the answers are all 503 (fail closed).
    let tail = load(&base, 4, Duration::from_millis(500), 20_000_000).await;
    assert!(!tail.is_empty());
    for (s, e) in &tail {
        assert_eq!(
            (*s, e.as_str()),
            (503, "backend_unavailable"),
            "Redis down: fail closed"
        );
    }
    eprintln!(
        "redis down: {} requests in 2 s, {n503} answered 503; then {} all 503",
        during.len(),
        tail.len()
    );
    let health = reqwest::get(format!("{base}/health"))
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "/health still answers");
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "readiness is about this process (SPEC §5)"
    );
    let body: serde_json::Value = ready.json().await.expect("readyz body");
    assert_eq!(body["store_status"], "unavailable", "{body}");

    redis.restart().expect("restart redis on the same port");
    let restarted = Instant::now();
    let c = client(Duration::from_secs(5));
    let mut n = 30_000_000;
    loop {
        let (s, e) = one(&c, &base, n).await;
        n += 2;
        if s == 200 {
            break;
        }
        assert_eq!((s, e.as_str()), (503, "backend_unavailable"));
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "not recovered 5 s after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("recovered {:?} after the restart", restarted.elapsed());
    let after = load(&base, 4, Duration::from_millis(500), 40_000_000).await;
    for (s, e) in &after {
        assert!(
            *s == 200 || (*s == 400 && e == "otp_invalid"),
            "after: {s} {e}"
        );
    }
    assert_no_panic(&server);
    let logs = server.stderr();
    assert!(
        logs.contains("store unavailable; refusing (fail closed)"),
        "a clear log line names the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_with_fail_mode_open_lets_requests_proceed() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    let server = builder()
        .env("STORE_BACKEND", "redis")
        .env("REDIS_URL", redis.url())
        .env("REDIS_TIMEOUT_MS", "200")
        .env("RATE_LIMIT_FAIL_MODE", "open")
        .env("DELIVERY_BACKEND", "none")
        .start();
    let base = server.url.clone();
    redis.stop();
    let during = load(&base, 4, Duration::from_secs(2), 0).await;
    assert!(!during.is_empty());
    for (s, e) in &during {
        assert!(
            *s == 200 || (*s == 400 && e == "otp_invalid"),
            "fail open: requests proceed, got {s} {e}"
        );
    }
    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "failing open, the replica stays ready");
    redis.restart().expect("restart redis");
    let after = load(&base, 2, Duration::from_millis(500), 50_000_000).await;
    for (s, e) in &after {
        assert!(
            *s == 200 || (*s == 400 && e == "otp_invalid"),
            "after: {s} {e}"
        );
    }
    assert_no_panic(&server);
    assert!(server
        .stderr()
        .contains("proceeding because the fail mode is open"));
}

fn smtp_server(port: u16) -> Server {
    builder()
        .env("DELIVERY_BACKEND", "smtp")
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", port.to_string())
        .env("SMTP_TLS", "none")
        .env("SMTP_FROM", "otp@example.com")
        .env("DELIVERY_TIMEOUT_SECONDS", "1")
        .env("DELIVERY_MAX_ATTEMPTS", "2")
        .env("DELIVERY_RETRY_BACKOFF_MS", "100")
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refused_answers_502_quickly() {
    let port = support::free_port(); // nothing listens there
    let server = smtp_server(port);
    let c = client(Duration::from_secs(15));
    let t = Instant::now();
    let (s, body) = post(
        &c,
        &format!("{}/api/v1/otp/request", server.url),
        json!({"identity": "refused@example.com"}),
    )
    .await
    .expect("answer");
    let took = t.elapsed();
    assert_eq!(s, 502, "{body}");
    assert_eq!(body["error"], "delivery_failed");
    assert_eq!(body["message"], "Failed to deliver OTP. Please try again.");
    assert!(
        took < Duration::from_secs(3),
        "refused connection: took {took:?}"
    );
    assert_no_panic(&server);
}

fn valid_token() -> String {
    use otp_core::{SigningKey, TokenConfig, TokenKeys, TokenService};
    let svc = TokenService::new(
        TokenKeys::single(SigningKey::hs256(support::TEST_JWT_SECRET).expect("key")),
        TokenConfig::default(),
    )
    .expect("token service");
    svc.issue_now("probe@example.com", serde_json::Map::new())
        .expect("issue")
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_hanging_answers_502_within_timeout_and_100_hung_deliveries_do_not_starve_health() {
    let relay = Hanging::start();
    let server = smtp_server(relay.port);
    let base = server.url.clone();

    // One alone: 2 attempts of 1 s (+ backoff) → 502.
    let c = client(Duration::from_secs(15));
    let t = Instant::now();
    let (s, body) = post(
        &c,
        &format!("{base}/api/v1/otp/request"),
        json!({"identity": "hang@example.com"}),
    )
    .await
    .expect("answer");
    let one_took = t.elapsed();
    assert_eq!((s, body["error"].as_str()), (502, Some("delivery_failed")));
    assert!(
        one_took >= Duration::from_millis(1900) && one_took < Duration::from_secs(4),
        "2 attempts of 1 s each: took {one_took:?}"
    );

    // 100 at once, while /health and /token/verify are probed.
    let token = valid_token();
    let start = Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..100 {
        let (c, base) = (c.clone(), base.clone());
        deliveries.push(tokio::spawn(async move {
            post(
                &c,
                &format!("{base}/api/v1/otp/request"),
                json!({"identity": format!("hang{i}@example.com")}),
            )
            .await
            .map(|(s, b)| (s, b["error"].as_str().unwrap_or("").to_owned()))
        }));
    }
    let probe = client(Duration::from_secs(5));
    // Probe during the intake of the burst too (reported, loosely bounded),
    // but the claim under test is about the hang: once the relay holds all
    // 100 connections, the workers must still answer fast.
    let mut worst_intake = Duration::ZERO;
    let mut worst_health = Duration::ZERO;
    let mut worst_verify = Duration::ZERO;
    let mut probes = 0;
    let accepted = || relay.accepted.load(std::sync::atomic::Ordering::SeqCst);
    while accepted() < 101 && start.elapsed() < Duration::from_millis(900) {
        let t = Instant::now();
        let h = probe
            .get(format!("{base}/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(h.status(), 200);
        worst_intake = worst_intake.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hung_at = start.elapsed();
    while start.elapsed() < Duration::from_millis(2000) {
        let t = Instant::now();
        let h = probe
            .get(format!("{base}/health"))
            .send()
            .await
            .expect("health");
        assert_eq!(h.status(), 200);
        worst_health = worst_health.max(t.elapsed());
        let t = Instant::now();
        let v = probe
            .get(format!("{base}/api/v1/token/verify"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("token verify");
        assert_eq!(v.status(), 200);
        worst_verify = worst_verify.max(t.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut statuses = Vec::new();
    for d in deliveries {
        statuses.push(d.await.expect("task").expect("an HTTP answer"));
    }
    let all_took = start.elapsed();
    eprintln!(
        "100 hung deliveries: all held by {hung_at:?}, all answered in {all_took:?}; worst /health during intake {worst_intake:?}; while hung: {probes} probes, worst /health {worst_health:?}, worst /token/verify {worst_verify:?}; relay accepted {}",
        accepted()
    );
    assert!(
        worst_intake < Duration::from_secs(2),
        "/health during the burst intake: {worst_intake:?}"
    );
    for (s, e) in &statuses {
        assert_eq!((*s, e.as_str()), (502, "delivery_failed"));
    }
    assert!(probes >= 10, "probes ran: {probes}");
    assert!(
        worst_health < Duration::from_millis(500),
        "/health starved: {worst_health:?}"
    );
    assert!(
        worst_verify < Duration::from_millis(500),
        "/token/verify starved: {worst_verify:?}"
    );
    assert!(
        all_took < Duration::from_secs(10),
        "bounded by the delivery timeout"
    );
    assert_no_panic(&server);
}

fn webhook_server(url: &str) -> Server {
    builder()
        .env("DELIVERY_BACKEND", "webhook")
        .env("WEBHOOK_URL", url)
        .env(
            "WEBHOOK_SECRET",
            "whsec_ZmF1bHRzLXRlc3Qtd2ViaG9vay1zZWNyZXQ=",
        )
        .env("DELIVERY_TIMEOUT_SECONDS", "1")
        .env("DELIVERY_MAX_ATTEMPTS", "2")
        .env("DELIVERY_RETRY_BACKOFF_MS", "100")
        .start()
}

async fn request_once(server: &Server, identity: &str) -> (u16, serde_json::Value, Duration) {
    let c = client(Duration::from_secs(15));
    let t = Instant::now();
    let (s, b) = post(
        &c,
        &format!("{}/api/v1/otp/request", server.url),
        json!({"identity": identity}),
    )
    .await
    .expect("answer");
    (s, b, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_failing_with_5xx_is_retried_a_bounded_number_of_times_then_502() {
    let receiver = Receiver::start(Behaviour::Status(500));
    let server = webhook_server(&receiver.url);
    let (s, b, took) = request_once(&server, "user-5xx").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (502, Some("delivery_failed")),
        "{b}"
    );
    assert_eq!(
        receiver.hits(),
        2,
        "DELIVERY_MAX_ATTEMPTS=2 attempts, no more"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // And nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits(), 2);
    assert_no_panic(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_4xx_is_not_retried() {
    let receiver = Receiver::start(Behaviour::Status(400));
    let server = webhook_server(&receiver.url);
    let (s, b, _) = request_once(&server, "user-4xx").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (502, Some("delivery_failed")),
        "{b}"
    );
    assert_eq!(receiver.hits(), 1, "4xx is final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_slow_receiver_times_out_per_attempt_then_502() {
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_secs(4)));
    let server = webhook_server(&receiver.url);
    let (s, b, took) = request_once(&server, "user-slow").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (502, Some("delivery_failed")),
        "{b}"
    );
    assert_eq!(receiver.hits(), 2, "each attempt timed out after 1 s");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "2 attempts × 1 s: took {took:?}"
    );
    assert_no_panic(&server);
}

/// Opens a connection and sends the first line of a request head, nothing
/// more.
fn slow_conn(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    s
}

/// True when the server has closed the connection (EOF, reset, or a 408
/// answer) within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        // Keep trickling a header byte now and then, like slowloris.
        let _ = s.write_all(b"X");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                if text.starts_with("HTTP/1.1 408") {
                    return true;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn slowloris_connections_do_not_block_a_normal_request_and_are_closed_after_the_timeout() {
    let server = builder()
        .env("CLIENT_REQUEST_TIMEOUT_MS", "1000")
        .env("KEEP_ALIVE_SECONDS", "2")
        .start();
    let mut slow: Vec<TcpStream> = (0..200).map(|_| slow_conn(server.port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(
        support::http_status(&format!("{}/health", server.url)),
        Some(200)
    );
    let normal = t.elapsed();
    assert!(
        normal < Duration::from_millis(500),
        "normal request took {normal:?}"
    );
    let t = Instant::now();
    let closed = slow
        .iter_mut()
        .map(|s| closed_by_server(s, Duration::from_secs(4)))
        .filter(|&c| c)
        .count();
    eprintln!(
        "200 slowloris connections: normal request in {normal:?}; {closed} closed by the server within {:?}",
        t.elapsed()
    );
    assert_eq!(
        closed, 200,
        "every slow connection is closed after the timeout"
    );
    assert_no_panic(&server);
}

#[test]
fn max_connections_full_of_idle_clients_recovers_after_the_request_timeout() {
    // 1 worker × 50 connections; 120 idle connections fill it (the rest wait
    // in the kernel's backlog). The idle ones are dropped after the 1 s
    // request timeout, and a normal request then gets through.
    let server = builder()
        .env("WORKERS", "1")
        .env("MAX_CONNECTIONS", "50")
        .env("CLIENT_REQUEST_TIMEOUT_MS", "1000")
        .start();
    let idle: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    assert!(idle.len() >= 50, "opened {} idle connections", idle.len());
    let t = Instant::now();
    let mut ok = false;
    while t.elapsed() < Duration::from_secs(8) {
        if support::http_status(&format!("{}/health", server.url)) == Some(200) {
            ok = true;
            break;
        }
    }
    let took = t.elapsed();
    eprintln!("normal request through a full connection table: {took:?}");
    assert!(ok, "a normal request gets through within 8 s");
    // The limit is enforced: the request had to wait for idle connections to
    // be timed out (1 s) before a slot was free.
    assert!(
        took >= Duration::from_millis(900),
        "MAX_CONNECTIONS=50 not enforced: answered in {took:?} past 120 idle connections"
    );
    drop(idle); // held open until here
    assert_no_panic(&server);
}

const FLOOD_CHILD: &str = "OTP_MEMORY_FLOOD_CHILD";
/// The documented bound: bytes of memory-store growth per tracked identity
/// (SPEC §9 target ≤ 200 B; docs/security.md).
const BYTES_PER_IDENTITY_BOUND: f64 = 200.0;
const FLOOD_IDENTITIES: usize = 1_000_000;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace()
        .nth(1)
        .and_then(|k| k.parse::<u64>().ok())
        .expect("VmRSS kB")
        * 1024
}

/// Runs in a child process of its own (so other tests' allocations do not
/// blur the RSS): one million distinct identities each send one request
/// through the per-identity send limit of the memory store. Prints
/// `FLOOD bytes_per_identity=…`.
#[test]
#[ignore = "child process of memory_flood_one_million_identities_stays_under_the_bound"]
fn memory_flood_child() {
    if std::env::var(FLOOD_CHILD).is_err() {
        return;
    }
    use otp_ratelimit::{LimitPolicy, MemoryStore};
    use std::fmt::Write as _;
    let policy = LimitPolicy::per_secs("request_identity", 5, 600);
    let store = MemoryStore::new(&b"flood-hash-key-0123456789abcdef!"[..]);
    let mut key = String::with_capacity(64);
    let before = rss_bytes();
    for i in 0..FLOOD_IDENTITIES {
        key.clear();
        let _ = write!(key, "flood{i}@example.com");
        let d = store.check_now(&policy, &key).expect("memory check");
        assert!(d.allowed);
    }
    let after = rss_bytes();
    assert_eq!(store.tracked_keys(), FLOOD_IDENTITIES);
    let per = after.saturating_sub(before) as f64 / FLOOD_IDENTITIES as f64;
    println!("FLOOD bytes_per_identity={per:.1} rss_before={before} rss_after={after}");
}

#[test]
fn memory_flood_one_million_identities_stays_under_the_bound() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            // The test's path inside the one test binary (tests/server/main.rs).
            "faults::memory_flood_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FLOOD_CHILD, "1")
        .output()
        .expect("run the flood child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flood child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let per: f64 = stdout
        .lines()
        .find_map(|l| l.split("bytes_per_identity=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no figure in: {stdout}"));
    eprintln!("memory flood: {FLOOD_IDENTITIES} identities, {per:.1} B per identity (RSS growth)");
    assert!(
        per <= BYTES_PER_IDENTITY_BOUND,
        "{per:.1} B per identity > {BYTES_PER_IDENTITY_BOUND} B"
    );
}

/// Slow bodies against the real binary (issue 13 item 5): a client that
/// sends its headers and one byte of body is cut off after
/// `CLIENT_REQUEST_TIMEOUT_MS`, and more such clients than the process has
/// file descriptors do not stop `/health` for longer than about that time.
mod slow_body {
    use super::*;

    /// Opens a connection and sends a complete head announcing a body, then
    /// one byte of that body, nothing more. Even connections post to an OTP
    /// route (which reads the body) with `Content-Length`, odd ones to an
    /// unknown path (which never reads it) with chunked framing.
    fn one_byte_of_body(port: u16, n: usize) -> Option<TcpStream> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let req: &[u8] = if n.is_multiple_of(2) {
            b"POST /api/v1/otp/request HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        } else {
            b"POST /no/such/route HTTP/1.1\r\nHost: x\r\n\
              Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
        };
        s.write_all(req).ok()?;
        Some(s)
    }

    /// When, after `since`, the server answered on `s` and when it closed it
    /// (EOF or reset); `None` for what did not happen by `since + within`.
    /// Sends nothing, so only the server's clock can end the connection.
    fn cut_off(
        s: &mut TcpStream,
        since: Instant,
        within: Duration,
    ) -> (Option<Duration>, Option<Duration>) {
        let mut buf = [0u8; 1024];
        let mut answered = None;
        loop {
            let Some(left) = (since + within).checked_duration_since(Instant::now()) else {
                return (answered, None);
            };
            let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match s.read(&mut buf) {
                Ok(0) => return (answered, Some(since.elapsed())),
                Ok(_) => {
                    answered.get_or_insert(since.elapsed());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return (answered, None)
                }
                Err(_) => return (answered, Some(since.elapsed())),
            }
        }
    }

    /// Lowers the open-file limit of the running server to `n` (soft and
    /// hard), like `ulimit -n n`; false when `prlimit` is not available.
    fn limit_descriptors(server: &Server, n: u32) -> bool {
        std::process::Command::new("prlimit")
            .arg("--pid")
            .arg(server.child.id().to_string())
            .arg(format!("--nofile={n}:{n}"))
            .status()
            .is_ok_and(|s| s.success())
    }

    // See: issue 13 item 5 (still open after 120 s; under a 200-descriptor
    // limit, 250 of them stopped `/health` answering).
    #[test]
    fn slow_bodies_are_cut_off_and_250_of_them_under_200_descriptors_do_not_stop_health() {
        const SLOW: usize = 250;
        let timeout = Duration::from_millis(1000);
        let server = builder()
            .env("CLIENT_REQUEST_TIMEOUT_MS", timeout.as_millis().to_string())
            .start();
        if !limit_descriptors(&server, 200) {
            otp_testkit::skip(
                "slow_bodies_are_cut_off_and_250_of_them_under_200_descriptors_do_not_stop_health",
                "prlimit(1) is not available",
            );
            return;
        }
        // One slow body alone: cut off after the timeout, not before.
        let started = Instant::now();
        let mut one = one_byte_of_body(server.port, 0).expect("connect");
        let (answered, closed) = cut_off(&mut one, started, Duration::from_secs(5));
        let answered = answered.expect("no 408 for a lone slow body within 5 s");
        let alone = closed.expect("a lone slow body is still open after 5 s");
        assert!(
            answered >= timeout - Duration::from_millis(100) && answered < 2 * timeout,
            "408 after {answered:?}"
        );
        // after the 408, actix lingers up to the 1 s client-disconnect time
        // for the client to close first
        assert!(
            alone < timeout + Duration::from_secs(2),
            "closed after {alone:?}"
        );
        // Then more slow bodies than the server has descriptors.
        let started = Instant::now();
        let mut slow: Vec<TcpStream> = (0..SLOW)
            .filter_map(|n| one_byte_of_body(server.port, n))
            .collect();
        assert_eq!(slow.len(), SLOW, "the kernel queues what is not accepted");
        let mut health = None;
        while started.elapsed() < Duration::from_secs(10) {
            if support::http_status(&format!("{}/health", server.url)) == Some(200) {
                health = Some(started.elapsed());
                break;
            }
        }
        let cut: Vec<Option<Duration>> = slow
            .iter_mut()
            .map(|s| cut_off(s, started, Duration::from_secs(10)).1)
            .collect();
        let open = cut.iter().filter(|c| c.is_none()).count();
        let last = cut.iter().flatten().max().copied().unwrap_or_default();
        eprintln!(
            "slow bodies: one alone answered 408 after {answered:?}, closed after {alone:?}; {SLOW} under a 200-descriptor limit: \
             /health answered after {health:?}, all cut off within {last:?}, {open} still open \
             (CLIENT_REQUEST_TIMEOUT_MS={})",
            timeout.as_millis()
        );
        assert_eq!(open, 0, "slow-body connections still open after 10 s");
        let health = health.expect("/health did not answer within 10 s");
        // Those accepted first are cut off after one timeout, the ones the
        // kernel queued meanwhile after a second: /health waits at most that.
        assert!(health < 3 * timeout, "/health answered after {health:?}");
        let t = Instant::now();
        assert_eq!(
            support::http_status(&format!("{}/health", server.url)),
            Some(200)
        );
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_no_panic(&server);
    }
}
