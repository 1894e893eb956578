//! The real `otp-server` binary as an operator meets it (issue #6): refusing
//! to start without secrets, one clear line per invalid variable, `--dev`,
//! `keygen` output accepted by `serve`, `check-config` redaction, TOML file
//! < environment < flag layering, graceful SIGTERM/SIGINT with an in-flight
//! request, and `healthcheck` exit codes.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use support::{
    free_port, http, http_status, post_json, run_bin, Server, TempDir, TEST_JWT_SECRET,
    TEST_OTP_KEY,
};

/// The least a production start needs: both secrets and a chosen delivery.
const SECRETS: [(&str, &str); 3] = [
    ("OTP_SECRET_KEY", TEST_OTP_KEY),
    ("JWT_SECRET", TEST_JWT_SECRET),
    ("DELIVERY_BACKEND", "console"),
];

/// `serve` on a free port with exactly `env`; returns (exit code, stderr).
fn serve_fails(env: &[(&str, &str)]) -> (i32, String) {
    let bind = format!("127.0.0.1:{}", free_port());
    let (code, _out, err) = run_bin(&["serve", "--bind", &bind], env);
    (code, err)
}

#[test]
fn refuses_to_start_without_secrets_naming_both_variables() {
    let (code, err) = serve_fails(&[]);
    assert_ne!(code, 0, "must not start without secrets");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("OTP_SECRET_KEY"), "{err}");
    assert!(err.contains("JWT_SECRET"), "{err}");
    assert!(err.contains("keygen"), "says how to create them: {err}");

    // Only one of the two missing: only that one is named.
    let (code, err) = serve_fails(&[("OTP_SECRET_KEY", TEST_OTP_KEY)]);
    assert_ne!(code, 0);
    assert!(
        err.contains("JWT_SECRET") && !err.contains("OTP_SECRET_KEY"),
        "{err}"
    );
}

/// (variables set, the variable the error line must name, a fragment of
/// what it says is accepted).
const WEBHOOK_SECRET: &str = "whsec_c3RhdGVsZXNzLW90cCB3ZWJob29rIGtleQ==";

type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn each_invalid_variable_stops_start_up_with_one_line_naming_it() {
    // (variables, the variable the line must name, a fragment of the accepted range)
    let cases: &[Case] = &[
        (&[("OTP_DIGITS", "11")], "OTP_DIGITS", "between 4 and 10"),
        (&[("OTP_DIGITS", "3")], "OTP_DIGITS", "between 4 and 10"),
        (&[("OTP_LENGTH", "11")], "OTP_DIGITS", "between 4 and 10"),
        (&[("OTP_DIGITS", "six")], "OTP_DIGITS", "between 4 and 10"),
        (
            &[("OTP_WINDOW_SECONDS", "10")],
            "OTP_WINDOW_SECONDS",
            "between 30 and",
        ),
        (
            &[("OTP_SECRET_KEY", "not base64 at all!!")],
            "OTP_SECRET_KEY",
            "base64",
        ),
        (
            &[("OTP_SECRET_KEY", "c2hvcnQta2V5")],
            "OTP_SECRET_KEY",
            "at least 16",
        ),
        (
            &[("OTP_PREVIOUS_SECRET_KEYS", "c2hvcnQta2V5")],
            "OTP_PREVIOUS_SECRET_KEYS",
            "at least 16",
        ),
        (&[("JWT_SECRET", "too-short-secret")], "JWT_SECRET", "32"),
        (
            &[("JWT_ALGORITHM", "RS256")],
            "JWT_ALGORITHM",
            "HS256 or EdDSA",
        ),
        (
            &[("JWT_ALGORITHM", "EdDSA")],
            "JWT_ED25519_PRIVATE_KEY",
            "keygen ed25519",
        ),
        (
            &[("OTP_ALGORITHM", "md5")],
            "OTP_ALGORITHM",
            "sha1, sha256 or sha512",
        ),
        (
            &[("DELIVERY_BACKEND", "smtp")],
            "SMTP_HOST",
            "DELIVERY_BACKEND=smtp",
        ),
        (
            &[("DELIVERY_BACKEND", "pigeon")],
            "DELIVERY_BACKEND",
            "console",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "webhook"),
                ("WEBHOOK_URL", "http://127.0.0.1:9/x"),
                ("WEBHOOK_SECRET", "whsec_!!"),
            ],
            "WEBHOOK_SECRET",
            "base64",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "webhook"),
                ("WEBHOOK_URL", "not a url"),
                ("WEBHOOK_SECRET", WEBHOOK_SECRET),
            ],
            "WEBHOOK_URL",
            "URL",
        ),
        (&[("STORE_BACKEND", "redis")], "REDIS_URL", "redis://"),
        (
            &[("STORE_BACKEND", "etcd")],
            "STORE_BACKEND",
            "memory or redis",
        ),
        (
            &[("RATE_LIMIT_FAIL_MODE", "sideways")],
            "RATE_LIMIT_FAIL_MODE",
            "closed or open",
        ),
        (
            &[("RATE_REQUEST_OTP_MAX", "0")],
            "RATE_REQUEST_OTP_MAX",
            "between 1 and",
        ),
        (
            &[("TRUSTED_PROXIES", "nonsense")],
            "TRUSTED_PROXIES",
            "CIDR",
        ),
        (
            &[("CORS_ORIGINS", "example.com")],
            "CORS_ORIGINS",
            "https://",
        ),
        (
            &[("OTP_SINGLE_USE", "maybe")],
            "OTP_SINGLE_USE",
            "true or false",
        ),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT", "pretty or json"),
        (
            &[("BIND_ADDRESS", "nowhere")],
            "BIND_ADDRESS",
            "127.0.0.1:8000",
        ),
        (&[("WORKERS", "0")], "WORKERS", "between 1 and"),
        (
            &[("RUST_LOG", "info,=nonsense=")],
            "RUST_LOG",
            "tracing filter",
        ),
        (
            &[("REDIS_STARTUP_WAIT_SECONDS", "-1")],
            "REDIS_STARTUP_WAIT_SECONDS",
            "between 0 and",
        ),
    ];
    for (vars, named, range) in cases {
        let mut env: Vec<(&str, &str)> = SECRETS.to_vec();
        env.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
        env.extend_from_slice(vars);
        // BIND_ADDRESS is only read when no --bind flag is given.
        let (code, err) = if vars.iter().any(|(k, _)| *k == "BIND_ADDRESS") {
            let (code, _, err) = run_bin(&["serve"], &env);
            (code, err)
        } else {
            serve_fails(&env)
        };
        let err = err.trim();
        assert_ne!(code, 0, "{vars:?} must stop start-up");
        assert_eq!(
            err.lines().count(),
            1,
            "{vars:?}: exactly one line, got:\n{err}"
        );
        assert!(
            err.contains(named),
            "{vars:?}: the line must name {named}: {err}"
        );
        assert!(
            err.contains(range),
            "{vars:?}: the line must say what is accepted ({range}): {err}"
        );
        assert!(!err.contains("panicked"), "{vars:?}: {err}");
        for (k, v) in *vars {
            if k.contains("SECRET") {
                assert!(!err.contains(v), "{k}: a secret value is echoed: {err}");
            }
        }
    }
}

#[test]
fn dev_mode_starts_with_a_loud_warning_and_console_delivery() {
    let mut server = Server::builder()
        .unset("OTP_SECRET_KEY")
        .unset("JWT_SECRET")
        .arg("--dev")
        .start();
    let log = server.stderr();
    // JSON logs: the warning is WARN records, and every line stays JSON.
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let warns: Vec<&str> = records
        .iter()
        .filter(|r| r["level"] == "WARN")
        .filter_map(|r| r["fields"]["message"].as_str())
        .collect();
    assert!(
        warns.contains(&"development mode (--dev): do not use in production"),
        "{log}"
    );
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("OTP_SECRET_KEY generated")),
        "{log}"
    );
    assert!(
        warns.iter().any(|w| w.starts_with("JWT_SECRET generated")),
        "{log}"
    );

    // The start-up line (JSON logs): bind address, backends, algorithm, docs URL.
    let start = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "stateless-otp listening")
        .unwrap_or_else(|| panic!("no start-up line in {log}"));
    let f = &start["fields"];
    assert_eq!(f["bind"], format!("127.0.0.1:{}", server.port));
    assert_eq!(f["store"], "memory");
    assert_eq!(f["delivery"], "console");
    assert_eq!(f["algorithm"], "HS256");
    assert_eq!(f["docs"], format!("{}/docs", server.url));

    let r = post_json(
        &format!("{}/api/v1/otp/request", server.url),
        &json!({"identity": "Dev@Example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = server
        .console_code("dev@example.com", Duration::from_secs(5))
        .expect("the code is printed on stdout");
    assert_eq!(code.len(), 6);
    let r = post_json(
        &format!("{}/api/v1/otp/verify", server.url),
        &json!({"identity": "dev@example.com", "otp": code}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The code never reaches the logs.
    assert!(!server.stderr().contains(&code) || code_in_json_noise(&server.stderr(), &code));
}

/// True when `code` only appears inside longer digit runs (timestamps), not
/// as a value of its own.
fn code_in_json_noise(log: &str, code: &str) -> bool {
    log.match_indices(code).all(|(i, _)| {
        let before = log[..i].chars().next_back();
        let after = log[i + code.len()..].chars().next();
        before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn pretty_logs_have_no_colour_codes_off_a_terminal() {
    let server = Server::builder()
        .env("LOG_FORMAT", "pretty")
        .unset("JWT_SECRET")
        .arg("--dev")
        .start();
    let log = server.stderr();
    // People get a box they cannot miss.
    assert!(
        log.contains("WARNING: development mode (--dev): do not use in production."),
        "{log}"
    );
    assert!(
        log.contains("- JWT_SECRET generated for this process only"),
        "{log}"
    );
    assert!(
        !log.contains("OTP_SECRET_KEY generated"),
        "a key that was set is not generated"
    );
    assert!(log.contains("stateless-otp listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a non-terminal log: {log:?}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(log.lines().next().unwrap_or("")).is_err());
}

#[test]
fn keygen_output_is_accepted_by_serve() {
    let key = |kind: &str| {
        let (code, out, err) = run_bin(&["keygen", kind], &[]);
        assert_eq!(code, 0, "keygen {kind}: {err}");
        assert_eq!(out.lines().count(), 1, "one line: {out}");
        out.trim().to_owned()
    };
    let (otp, jwt, ed) = (key("otp"), key("jwt"), key("ed25519"));
    assert_ne!(otp, key("otp"), "fresh keys each time");
    // Without a kind: an OTP key (32 bytes as unpadded base64url = 43 chars).
    let (code, out, _) = run_bin(&["keygen"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.trim().len(), 43, "{out}");
    assert_eq!(otp.len(), 43, "{otp}");

    // HS256 with generated OTP and JWT keys, no --dev.
    let server = Server::builder()
        .env("OTP_SECRET_KEY", otp.clone())
        .env("JWT_SECRET", jwt)
        .start();
    let r = post_json(
        &format!("{}/api/v1/otp/request", server.url),
        &json!({"identity": "keygen@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(server);

    // EdDSA with a generated Ed25519 key: the JWKS publishes it.
    let server = Server::builder()
        .env("OTP_SECRET_KEY", otp)
        .unset("JWT_SECRET")
        .env("JWT_ALGORITHM", "EdDSA")
        .env("JWT_ED25519_PRIVATE_KEY", ed)
        .start();
    let jwks = http(
        "GET",
        &format!("{}/.well-known/jwks.json", server.url),
        &[],
        None,
    )
    .expect("jwks answers")
    .json();
    let keys = jwks["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(server.stderr().contains("\"algorithm\":\"EdDSA\""));
}

#[test]
fn keygen_rejects_an_unknown_kind() {
    let (code, _, err) = run_bin(&["keygen", "rsa"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("otp") && err.contains("ed25519"), "{err}");
}

#[test]
fn check_config_prints_the_configuration_with_secrets_redacted() {
    let secrets: &[(&str, &str)] = &[
        ("OTP_SECRET_KEY", "b3RwLWN1cnJlbnQta2V5LWNoZWNrLWNvbmZpZy0x"),
        (
            "OTP_PREVIOUS_SECRET_KEYS",
            "b3RwLXByZXZpb3VzLWtleS1jaGVjay1jb25maWc",
        ),
        ("JWT_SECRET", "jwt-current-secret-check-config-0123456789"),
        (
            "JWT_PREVIOUS_SECRETS",
            "jwt-previous-secret-check-config-987654321",
        ),
        ("SMTP_PASSWORD", "smtp-password-check-config"),
        ("TWILIO_AUTH_TOKEN", "twilio-token-check-config"),
        (
            "WEBHOOK_SECRET",
            "whsec_d2ViaG9vay1zZWNyZXQtY2hlY2stY29uZmln",
        ),
        (
            "WEBHOOK_HEADERS",
            "Authorization: Bearer webhook-header-check-config",
        ),
        (
            "REDIS_URL",
            "redis://:redis-password-check-config@127.0.0.1:1",
        ),
        ("STORE_HASH_KEY", "c3RvcmUtaGFzaC1rZXktY2hlY2stY29uZmln"),
    ];
    let mut env = secrets.to_vec();
    env.extend_from_slice(&[
        ("DELIVERY_BACKEND", "auto"),
        ("SMTP_HOST", "smtp.example.com"),
        ("SMTP_FROM", "no-reply@example.com"),
        ("SMTP_USERNAME", "mailer"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_FROM_NUMBER", "+15005550006"),
        ("WEBHOOK_URL", "http://127.0.0.1:9/otp"),
        ("STORE_BACKEND", "redis"),
        ("OTP_DIGITS", "8"),
    ]);
    let (code, out, err) = run_bin(&["check-config"], &env);
    assert_eq!(code, 0, "valid configuration: {err}");
    let all = format!("{out}{err}");
    for (name, value) in secrets {
        assert!(
            !all.contains(value),
            "{name}'s value appears in check-config output"
        );
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{out}"));
        assert!(
            line.contains("<redacted>") && line.contains("(env)"),
            "{line}"
        );
    }
    for probe in ["redis-password", "webhook-header", "check-config-0123"] {
        assert!(!all.contains(probe), "{probe} leaked");
    }
    let digits = out
        .lines()
        .find(|l| l.starts_with("OTP_DIGITS"))
        .expect("OTP_DIGITS");
    assert!(
        digits.contains(" 8 ") && digits.contains("(env)"),
        "{digits}"
    );
    assert!(
        out.contains("SMTP_USERNAME") && out.contains("mailer"),
        "non-secrets shown"
    );
    assert!(out.contains("store=redis delivery=auto jwt=HS256"), "{out}");

    // check-config fails like serve does.
    let (code, _, err) = run_bin(&["check-config"], &[("OTP_DIGITS", "11")]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn toml_file_is_overridden_by_environment_which_is_overridden_by_flags() {
    let dir = TempDir::new("layering");
    let file = dir.join("otp-server.toml");
    std::fs::write(
        &file,
        format!(
            "# keys are the variable names, any case\n\
             otp_digits = 8\n\
             OTP_WINDOW_SECONDS = 3600\n\
             bind_address = \"127.0.0.1:1\"\n\
             otp_secret_key = \"{TEST_OTP_KEY}\"\n\
             jwt_secret = \"{TEST_JWT_SECRET}\"\n\
             delivery_backend = \"console\"\n\
             rate_request_otp_max = 2\n\
             trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\n"
        ),
    )
    .expect("write TOML");
    let file_s = file.to_str().expect("utf-8 path");

    // check-config shows where each value came from.
    let (code, out, err) = run_bin(
        &[
            "check-config",
            "--config",
            file_s,
            "--bind",
            "127.0.0.1:9999",
        ],
        &[("OTP_WINDOW_SECONDS", "60")],
    );
    assert_eq!(code, 0, "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("OTP_DIGITS"), "OTP_DIGITS 8 (file)");
    assert_eq!(line("OTP_WINDOW_SECONDS"), "OTP_WINDOW_SECONDS 60 (env)");
    assert_eq!(line("BIND_ADDRESS"), "BIND_ADDRESS 127.0.0.1:9999 (flag)");
    assert_eq!(line("OTP_SECRET_KEY"), "OTP_SECRET_KEY <redacted> (file)");
    assert_eq!(line("OTP_ALGORITHM"), "OTP_ALGORITHM sha256 (default)");
    assert_eq!(
        line("TRUSTED_PROXIES"),
        "TRUSTED_PROXIES 10.0.0.0/8,127.0.0.1/32 (file)",
        "a TOML array is the comma-separated list"
    );

    // And serve behaves accordingly: 8 digits (file), a 60 s window (env:
    // ttl <= 2 windows), the --bind port (flag), 2 sends (file).
    let mut server = Server::builder()
        .unset("OTP_SECRET_KEY")
        .unset("JWT_SECRET")
        .env("OTP_WINDOW_SECONDS", "60")
        .arg("--config")
        .arg(file_s)
        .start();
    let url = format!("{}/api/v1/otp/request", server.url);
    let r = post_json(&url, &json!({"identity": "layers@example.com"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let ttl = r.json()["ttl_seconds"].as_u64().expect("ttl_seconds");
    assert!(
        (60..=120).contains(&ttl),
        "ttl {ttl} for a 60 s window and drift 1"
    );
    let code = server
        .console_code("layers@example.com", Duration::from_secs(5))
        .expect("console code");
    assert_eq!(code.len(), 8, "OTP_DIGITS from the file");
    assert_eq!(
        post_json(&url, &json!({"identity": "layers@example.com"})).status,
        200
    );
    let third = post_json(&url, &json!({"identity": "layers@example.com"}));
    assert_eq!(
        third.status, 429,
        "RATE_REQUEST_OTP_MAX=2 from the file: {}",
        third.body
    );
}

#[test]
fn a_bad_config_file_is_named() {
    let dir = TempDir::new("badfile");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "otp_digitz = 8\n").expect("write");
    let (code, _, err) = run_bin(
        &["check-config", "--config", file.to_str().expect("path")],
        &SECRETS,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("otp_digitz") && err.contains("unknown setting"),
        "{err}"
    );

    std::fs::write(&file, "otp_digits = 12\n").expect("write");
    let (code, _, err) = run_bin(
        &["check-config", "--config", file.to_str().expect("path")],
        &SECRETS,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("OTP_DIGITS") && err.contains("between 4 and 10"),
        "{err}"
    );

    let (code, _, err) = run_bin(
        &["check-config", "--config", "/nonexistent/otp.toml"],
        &SECRETS,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--config") && err.contains("/nonexistent/otp.toml"),
        "{err}"
    );
}

/// A webhook receiver that accepts one delivery, reports it, and answers 200
/// only when released.
fn slow_webhook() -> (u16, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (got_tx, got_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read the head and the announced body.
        loop {
            let Ok(n) = conn.read(&mut chunk) else { return };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        let _ = got_tx.send(());
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        let _ =
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    (port, got_rx, release_tx)
}

#[test]
fn sigterm_stops_accepting_completes_the_in_flight_request_and_exits_zero() {
    let (hook_port, delivered, release) = slow_webhook();
    let mut server = Server::builder()
        .env("DELIVERY_BACKEND", "webhook")
        .env("WEBHOOK_URL", format!("http://127.0.0.1:{hook_port}/otp"))
        .env(
            "WEBHOOK_SECRET",
            "whsec_c3RhdGVsZXNzLW90cCB3ZWJob29rIGtleQ==",
        )
        .env("DELIVERY_TIMEOUT_SECONDS", "20")
        .env("SHUTDOWN_TIMEOUT_SECONDS", "20")
        .start();
    let url = format!("{}/api/v1/otp/request", server.url);
    let client = std::thread::spawn(move || {
        http(
            "POST",
            &url,
            &[],
            Some(&json!({"identity": "inflight@example.com"}).to_string()),
        )
    });
    delivered
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook receives the delivery");

    // The request is now held inside the server. Ask it to stop.
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "exited while a request was in flight"
    );
    // It stops accepting new connections while it drains.
    let health = format!("{}/healthz", server.url);
    let mut refused = false;
    for _ in 0..40 {
        if http_status(&health).is_none() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "still accepting new connections after SIGTERM");

    release.send(()).expect("release the webhook");
    let response = client
        .join()
        .expect("client thread")
        .expect("the in-flight request gets an answer");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["success"], true);
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits after draining");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigint_exits_zero() {
    let mut server = Server::builder().start();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn healthcheck_exits_zero_against_a_running_server_and_one_otherwise() {
    let server = Server::builder().start();
    let (code, out, err) = run_bin(
        &["healthcheck", "--url", &format!("{}/healthz", server.url)],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run_bin(
        &[
            "healthcheck",
            "--url",
            &format!("{}/no-such-path", server.url),
        ],
        &[],
    );
    assert_eq!(code, 1, "a 404 is unhealthy: {err}");
    assert!(err.contains("404"), "{err}");
    // Without --url: /healthz on BIND_ADDRESS (0.0.0.0 = loopback), or --bind.
    let (code, _, err) = run_bin(
        &["healthcheck"],
        &[("BIND_ADDRESS", &format!("0.0.0.0:{}", server.port))],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_bin(
        &[
            "healthcheck",
            "--bind",
            &format!("127.0.0.1:{}", server.port),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let nothing = format!("http://127.0.0.1:{}/healthz", free_port());
    let (code, _, err) = run_bin(
        &["healthcheck", "--url", &nothing, "--timeout-ms", "500"],
        &[],
    );
    assert_eq!(code, 1, "nothing listens: {err}");
    assert!(err.contains("unhealthy"), "{err}");
}

#[test]
fn version_and_help_describe_the_commands() {
    let (code, out, _) = run_bin(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("otp-server {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, out, _) = run_bin(&["--help"], &[]);
    assert_eq!(code, 0);
    for word in [
        "serve",
        "keygen",
        "check-config",
        "healthcheck",
        "env",
        "--bind",
        "--config",
        "--dev",
        "later wins",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    let (code, out, _) = run_bin(&["healthcheck", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("--url"), "{out}");
}

#[test]
fn a_busy_port_is_one_line_naming_bind_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, _, err) = run_bin(&["serve", "--bind", &addr], &SECRETS);
    assert_ne!(code, 0);
    let err = err.trim();
    let line = err.lines().last().unwrap_or("");
    assert!(
        line.starts_with("otp-server: BIND_ADDRESS: cannot listen on"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_drain_is_bounded_by_shutdown_timeout_seconds() {
    // The webhook receiver never answers while the test holds `_hold`.
    let (hook_port, delivered, _hold) = slow_webhook();
    let mut server = Server::builder()
        .env("DELIVERY_BACKEND", "webhook")
        .env("WEBHOOK_URL", format!("http://127.0.0.1:{hook_port}/otp"))
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("DELIVERY_TIMEOUT_SECONDS", "60")
        .env("SHUTDOWN_TIMEOUT_SECONDS", "1")
        .start();
    let url = format!("{}/api/v1/otp/request", server.url);
    let _client = std::thread::spawn(move || {
        http(
            "POST",
            &url,
            &[],
            Some(&json!({"identity": "stuck@example.com"}).to_string()),
        )
    });
    delivered
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook receives the delivery");
    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits although a request is stuck");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?} with SHUTDOWN_TIMEOUT_SECONDS=1",
        started.elapsed()
    );
    assert!(status.success(), "exit status {status}");
}

#[test]
fn workers_default_to_the_number_of_cores_minus_one() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (code, out, err) = run_bin(&["check-config"], &SECRETS);
    assert_eq!(code, 0, "{err}");
    let expected = cores.saturating_sub(1).max(1);
    assert!(out.contains(&format!("workers={expected}")), "{out}");
    let (_, out, _) = run_bin(&["check-config", "--workers", "3"], &SECRETS);
    assert!(out.contains("workers=3"), "{out}");
}

/// The lines the binary printed before the configuration was split into
/// per-concern builders and the libraries started naming fields instead of
/// variables (issue 12): each stays byte for byte, including the ones whose
/// text comes from otp-delivery (`smtp.password: … smtp.username …` mapped
/// back to the variables).
#[test]
fn invalid_values_keep_their_exact_one_line_messages() {
    const WH: &str = "whsec_c3RhdGVsZXNzLW90cCB3ZWJob29rIGtleQ==";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("OTP_DIGITS", "11")],
            "OTP_DIGITS: expected an integer between 4 and 10, got 11",
        ),
        (
            &[("OTP_DIGITS", "six")],
            "OTP_DIGITS: expected an integer between 4 and 10, got 'six'",
        ),
        (
            &[("OTP_CLOCK_SKEW_SECONDS", "400")],
            "OTP_CLOCK_SKEW_SECONDS: expected an integer between 0 and 299, got 400",
        ),
        (
            &[("JWT_ALGORITHM", "RS256")],
            "JWT_ALGORITHM: expected HS256 or EdDSA, got 'rs256'",
        ),
        (
            &[("DELIVERY_BACKEND", "pigeon")],
            "DELIVERY_BACKEND: must be one of console, smtp, twilio, webhook, auto, none",
        ),
        (
            &[("DELIVERY_BACKEND", "auto")],
            "SMTP_HOST: must be set with DELIVERY_BACKEND=auto (email identities go to SMTP)",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "smtp"),
                ("SMTP_HOST", "localhost"),
                ("SMTP_FROM", "a@b.example"),
                ("SMTP_USERNAME", "u"),
            ],
            "SMTP_PASSWORD: must be set when SMTP_USERNAME is set",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "smtp"),
                ("SMTP_HOST", "localhost"),
                ("SMTP_FROM", "a@b.example"),
                ("SMTP_TLS", "ssl"),
            ],
            "SMTP_TLS: must be one of starttls, tls, none",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "smtp"),
                ("SMTP_HOST", "localhost"),
                ("SMTP_FROM", "a@b.example"),
                ("SMTP_BODY_TEMPLATE", "nocode"),
            ],
            "SMTP_BODY_TEMPLATE: must contain the {otp} placeholder",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "twilio"),
                ("TWILIO_ACCOUNT_SID", "AC123"),
                ("TWILIO_AUTH_TOKEN", "t"),
                ("TWILIO_MESSAGING_SERVICE_SID", "XX1"),
            ],
            "TWILIO_MESSAGING_SERVICE_SID: must start with MG",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "webhook"),
                ("WEBHOOK_URL", "http://127.0.0.1:9/x"),
                ("WEBHOOK_SECRET", "whsec_!!"),
            ],
            "WEBHOOK_SECRET: the part after whsec_ is not valid standard base64",
        ),
        (
            &[
                ("DELIVERY_BACKEND", "webhook"),
                ("WEBHOOK_URL", "http://127.0.0.1:9/x"),
                ("WEBHOOK_SECRET", WH),
                ("WEBHOOK_HEADERS", "novalue"),
            ],
            "WEBHOOK_HEADERS: expected 'Name: value' pairs separated by commas or newlines",
        ),
        (
            &[("DELIVERY_MAX_ATTEMPTS", "0")],
            "DELIVERY_MAX_ATTEMPTS: expected an integer between 1 and 10, got 0",
        ),
        (
            &[
                ("STORE_BACKEND", "redis"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("REDIS_CLUSTER", "maybe"),
            ],
            "REDIS_CLUSTER: expected auto, true or false, got 'maybe'",
        ),
        (
            &[("RATE_GLOBAL_SEND_WINDOW", "0")],
            "RATE_GLOBAL_SEND_WINDOW: expected an integer between 1 and 31536000, got 0",
        ),
        // SMTP_USE_TLS used to be shadowed by SMTP_TLS's default; it is read now.
        (
            &[
                ("DELIVERY_BACKEND", "smtp"),
                ("SMTP_HOST", "localhost"),
                ("SMTP_FROM", "a@b.example"),
                ("SMTP_USE_TLS", "maybe"),
            ],
            "SMTP_USE_TLS: must be true or false",
        ),
    ];
    for (vars, line) in cases {
        let mut env: Vec<(&str, &str)> = SECRETS.to_vec();
        env.extend_from_slice(vars);
        let (code, _out, err) = run_bin(&["check-config"], &env);
        assert_ne!(code, 0, "{vars:?}");
        assert_eq!(err.trim(), format!("otp-server: {line}"), "{vars:?}");
    }
}

/// Issue 13 item 6: with real secrets and no `DELIVERY_BACKEND`, `serve`
/// used to print every code into the log. Outside `--dev` it refuses to
/// start, with one line naming the variable; `check-config` says the same.
#[test]
fn outside_dev_an_unset_delivery_backend_refuses_to_start_naming_it() {
    let secrets = &SECRETS[..2];
    for args in [&["serve"][..], &["check-config"][..]] {
        let bind = format!("127.0.0.1:{}", free_port());
        let mut args = args.to_vec();
        args.extend(["--bind", &bind]);
        let (code, out, err) = run_bin(&args, secrets);
        let err = err.trim();
        assert_ne!(code, 0, "{args:?} must refuse: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.starts_with("otp-server: DELIVERY_BACKEND: not set"),
            "{args:?}: {err}"
        );
        assert!(err.contains("console"), "names the explicit way out: {err}");
    }
    // --dev keeps console as its default, without refusing.
    let mut dev = Server::builder()
        .unset("DELIVERY_BACKEND")
        .arg("--dev")
        .start();
    assert_eq!(http_status(&format!("{}/health", dev.url)), Some(200));
    assert!(dev.terminate(Duration::from_secs(15)).is_some());
}

/// An explicit `DELIVERY_BACKEND=console` outside `--dev` starts, with a
/// warning at every start (log and `check-config`).
#[test]
fn explicit_console_delivery_starts_with_a_warning_every_start() {
    const WARNING: &str = "DELIVERY_BACKEND=console: every code is printed to stdout";
    for _ in 0..2 {
        let mut server = Server::builder().start();
        let log = server.stderr();
        let warn = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(WARNING))
            });
        let warn = warn.unwrap_or_else(|| panic!("no console warning in:\n{log}"));
        assert_eq!(warn["level"], "WARN", "{warn}");
        assert!(server.terminate(Duration::from_secs(15)).is_some());
    }
    let (code, out, err) = run_bin(&["check-config"], &SECRETS);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("warning: {WARNING}")), "{out}");
}

/// `OTP_SINGLE_USE=false` also switches the attempt budget off (it works by
/// using codes up): both the log and `check-config` say so.
#[test]
fn otp_single_use_false_warns_that_the_attempt_budget_is_off_too() {
    let mut env = SECRETS.to_vec();
    env.push(("OTP_SINGLE_USE", "false"));
    let (code, out, err) = run_bin(&["check-config"], &env);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("warning: OTP_SINGLE_USE=false"))
        .unwrap_or_else(|| panic!("no warning in:\n{out}"));
    assert!(
        line.contains("OTP_MAX_ATTEMPTS") && line.contains("off"),
        "{line}"
    );
    let mut server = Server::builder().env("OTP_SINGLE_USE", "false").start();
    let log = server.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("\"WARN\"") && l.contains("OTP_SINGLE_USE=false")),
        "{log}"
    );
    assert!(server.terminate(Duration::from_secs(15)).is_some());
    // The default (single use on) warns about nothing of the kind.
    let (_, out, _) = run_bin(&["check-config"], &SECRETS);
    assert!(!out.contains("warning: OTP_SINGLE_USE"), "{out}");
}

/// Requests a code for `identity`, reads it from the server's stdout and
/// verifies it: the access token.
fn sign_in(server: &mut Server, identity: &str) -> String {
    let r = post_json(
        &format!("{}/api/v1/otp/request", server.url),
        &json!({ "identity": identity }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = server
        .console_code(identity, Duration::from_secs(5))
        .expect("code on stdout");
    let r = post_json(
        &format!("{}/api/v1/otp/verify", server.url),
        &json!({"identity": identity, "otp": code}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().expect("token").to_owned()
}

/// Issue 13 item 7: `check-config` said "valid" for a CORS origin actix then
/// refused at `serve` with its own message. Both now stop on the same one
/// line, for it and for every other value `serve` refuses.
#[test]
fn check_config_fails_on_everything_serve_fails_on_with_the_same_line() {
    let cases: &[&[(&str, &str)]] = &[
        &[("CORS_ORIGINS", "https://exa mple.com")],
        &[("CORS_ORIGINS", "https://app.example.com/")],
        &[(
            "CORS_ORIGINS",
            "https://app.example.com,https://evil.example.com/x",
        )],
        &[("STORE_HASH_KEY", "c2hvcnQta2V5")],
        &[("TRUSTED_PROXIES", "10.0.0.0/33")],
        &[
            ("DELIVERY_BACKEND", "webhook"),
            ("WEBHOOK_URL", "http://127.0.0.1:9/x"),
            ("WEBHOOK_SECRET", "whsec_!!"),
        ],
        &[
            ("DELIVERY_BACKEND", "smtp"),
            ("SMTP_HOST", "localhost"),
            ("SMTP_FROM", "a@b.example"),
            ("SMTP_CA_FILE", "/nonexistent/ca.pem"),
        ],
        &[("OTP_DIGITS", "11")],
    ];
    for vars in cases {
        let mut env: Vec<(&str, &str)> = SECRETS.to_vec();
        env.extend_from_slice(vars);
        let (check_code, _, check_err) = run_bin(&["check-config"], &env);
        let (serve_code, serve_err) = serve_fails(&env);
        assert_ne!(check_code, 0, "{vars:?}: check-config must fail");
        assert_ne!(serve_code, 0, "{vars:?}: serve must fail");
        assert_eq!(check_err.trim().lines().count(), 1, "{vars:?}: {check_err}");
        assert_eq!(
            check_err.trim(),
            serve_err.trim(),
            "{vars:?}: the same line"
        );
        assert!(!check_err.contains("panicked"), "{check_err}");
    }
    let (_, _, err) = run_bin(
        &["check-config"],
        &[
            SECRETS[0],
            SECRETS[1],
            SECRETS[2],
            ("CORS_ORIGINS", "https://exa mple.com"),
        ],
    );
    assert_eq!(
        err.trim(),
        "otp-server: CORS_ORIGINS: expected origins like https://app.example.com or *, got 'https://exa mple.com'"
    );
}

/// `STORE_HASH_KEY` is a key like `OTP_SECRET_KEY`: at least 16 bytes.
#[test]
fn a_store_hash_key_shorter_than_16_bytes_is_refused() {
    let mut env = SECRETS.to_vec();
    env.push(("STORE_HASH_KEY", "AQ")); // one byte
    let (code, _, err) = run_bin(&["check-config"], &env);
    assert_ne!(code, 0);
    assert_eq!(
        err.trim(),
        "otp-server: STORE_HASH_KEY: key is too short: 1 bytes, at least 16 required \
         (expected base64 of at least 16 random bytes; create one with `otp-server keygen otp`)"
    );
    env.pop();
    env.push(("STORE_HASH_KEY", "c3RvcmUtaGFzaC1rZXktMTZi")); // 18 bytes
    let (code, _, err) = run_bin(&["check-config"], &env);
    assert_eq!(code, 0, "{err}");
}

/// Secrets are used byte for byte: a `JWT_SECRET` ending in a space signs
/// exactly the tokens PyJWT signs with that secret, space included (the
/// Python service did not trim either); the trimmed secret does not verify.
#[test]
fn secret_values_are_used_byte_for_byte_a_trailing_space_in_jwt_secret_signs_like_pyjwt() {
    let secret = format!("{TEST_JWT_SECRET} ");
    let mut server = Server::builder().env("JWT_SECRET", secret.clone()).start();
    let token = sign_in(&mut server, "bytes@example.com");
    let script = "import jwt, sys\n\
        token, secret = sys.argv[1], sys.argv[2]\n\
        claims = jwt.decode(token, secret, algorithms=['HS256'], audience='api', issuer='stateless-otp')\n\
        print(claims['sub'])\n\
        try:\n    jwt.decode(token, secret.strip(), algorithms=['HS256'], audience='api')\n    print('TRIMMED VERIFIES')\n\
        except jwt.InvalidSignatureError:\n    print('trimmed refused')\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, &token, &secret])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert_eq!(text.trim(), "bytes@example.com\ntrimmed refused", "{text}");
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'jwt'") => {
            assert!(!support::require_all(), "PyJWT is required");
            eprintln!("SKIP: PyJWT not installed");
        }
        other => panic!("python3 PyJWT check failed: {other:?}"),
    }
    assert!(server.terminate(Duration::from_secs(15)).is_some());
}

/// `otp-server env | head` and `check-config | head` used to panic on the
/// closed pipe ("failed printing to stdout"). They exit quietly now.
#[test]
fn env_and_check_config_exit_quietly_when_stdout_is_closed() {
    for args in [
        &["env"][..],
        &["env", "--grouped"],
        &["check-config"],
        &["keygen"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader); // closed before the first byte is written
        let out = std::process::Command::new(support::bin())
            .args(args)
            .env_clear()
            .envs(SECRETS)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run otp-server");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {} {err}", out.status);
        assert!(err.is_empty(), "{args:?}: quiet, got {err}");
    }
}

/// Issue 16: every secret can come from `<NAME>_FILE` (Docker/Kubernetes
/// secrets, systemd credentials). A server started with only files signs
/// with the file's content minus its one trailing newline, `check-config`
/// names the source, and a secret set both ways is one clear line.
#[test]
fn secrets_from_files_serve_with_exactly_one_trailing_newline_dropped() {
    let dir = TempDir::new("secret-files");
    let otp_file = dir.join("otp_secret_key");
    let jwt_file = dir.join("jwt_secret");
    std::fs::write(&otp_file, format!("{TEST_OTP_KEY}\n")).unwrap();
    std::fs::write(&jwt_file, format!("{TEST_JWT_SECRET}\n")).unwrap();
    let (otp_path, jwt_path) = (otp_file.to_str().unwrap(), jwt_file.to_str().unwrap());
    let files = [
        ("OTP_SECRET_KEY_FILE", otp_path),
        ("JWT_SECRET_FILE", jwt_path),
        ("DELIVERY_BACKEND", "console"),
    ];
    let (code, out, err) = run_bin(&["check-config"], &files);
    assert_eq!(code, 0, "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("JWT_SECRET").as_deref(),
        Some("JWT_SECRET <redacted> (secret file)")
    );
    assert!(
        !out.contains(TEST_JWT_SECRET) && !out.contains(TEST_OTP_KEY),
        "{out}"
    );

    let mut server = Server::builder()
        .unset("OTP_SECRET_KEY")
        .unset("JWT_SECRET")
        .env("OTP_SECRET_KEY_FILE", otp_path)
        .env("JWT_SECRET_FILE", jwt_path)
        .start();
    let token = sign_in(&mut server, "files@example.com");
    assert!(server.terminate(Duration::from_secs(15)).is_some());
    // The same secret given inline (no newline) verifies the token: the
    // file's newline was dropped, nothing else.
    let mut inline = Server::builder().start();
    let r = http(
        "GET",
        &format!("{}/api/v1/token/verify", inline.url),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
    .expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(inline.terminate(Duration::from_secs(15)).is_some());

    let mut both = files.to_vec();
    both.push(("JWT_SECRET", TEST_JWT_SECRET));
    let (code, _, err) = run_bin(&["check-config"], &both);
    assert_ne!(code, 0);
    assert_eq!(
        err.trim(),
        "otp-server: JWT_SECRET: both JWT_SECRET and JWT_SECRET_FILE are set; set only one of them"
    );
}
