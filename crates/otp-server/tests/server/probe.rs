//! `otp-server probe` and `otp-server send-test` run as an operator runs
//! them: the real binary against a real redis-server (noeviction passes, a
//! `volatile-lru` policy and a missing Redis fail), a real aiosmtpd SMTP sink
//! with and without AUTH, a wiremock Twilio (200 passes, 401 fails naming
//! the credentials) and the Standard Webhooks receiver (`--webhook` sends a
//! signed `test` event it verifies). Every failure is one line; no secret
//! reaches the output.

use crate::support::{free_port, run_bin, TempDir, TEST_JWT_SECRET, TEST_OTP_KEY};
use otp_testkit::sinks::{python_has, spawn_python};
use otp_testkit::started_redis_or_skip;

const WEBHOOK_SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u";

/// Runs `otp-server <args>` with the test secrets and `env`; returns (exit
/// code, stdout, stderr).
fn otp_server(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut all = vec![
        ("OTP_SECRET_KEY", TEST_OTP_KEY),
        ("JWT_SECRET", TEST_JWT_SECRET),
        ("REDIS_STARTUP_WAIT_SECONDS", "0"),
    ];
    all.extend_from_slice(env);
    run_bin(args, &all)
}

/// The one line of `stdout` about `component`.
fn line<'a>(stdout: &'a str, component: &str) -> &'a str {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(component))
        .collect();
    assert_eq!(lines.len(), 1, "one {component} line in:\n{stdout}");
    lines[0]
}

#[test]
fn probe_passes_against_a_noeviction_redis_and_fails_naming_a_volatile_policy() {
    let Some(redis) = started_redis_or_skip("probe_redis") else {
        return;
    };
    let url = redis.url();
    let env = [
        ("STORE_BACKEND", "redis"),
        ("REDIS_URL", url.as_str()),
        ("DELIVERY_BACKEND", "none"),
    ];
    redis
        .cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .unwrap();
    let (code, out, err) = otp_server(&["probe"], &env);
    assert_eq!(code, 0, "{out}{err}");
    let l = line(&out, "redis");
    assert!(l.starts_with("ok"), "{l}");
    assert!(l.contains("PING ok") && l.contains("scripts loaded"), "{l}");
    assert!(l.contains("maxmemory-policy noeviction"), "{l}");
    // the scripts really are in Redis' cache now
    assert!(redis
        .cli(&["INFO", "memory"])
        .unwrap()
        .contains("used_memory_scripts"));

    redis
        .cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"])
        .unwrap();
    let (code, out, _) = otp_server(&["probe"], &env);
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "redis");
    assert!(l.starts_with("FAIL"), "{l}");
    assert!(
        l.contains("maxmemory-policy is volatile-lru, must be noeviction"),
        "{l}"
    );
}

#[test]
fn probe_says_the_policy_could_not_be_checked_where_config_is_disabled() {
    if otp_testkit::skip_without("redis-server") {
        return;
    }
    let dir = TempDir::new("probe-noconfig");
    let port = free_port();
    let mut redis = otp_testkit::ChildGuard::spawn(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--rename-command", "CONFIG", ""])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
        "redis-server",
    );
    redis.wait_for_port(port, "redis-server");
    let url = format!("redis://127.0.0.1:{port}");
    let (code, out, err) = otp_server(
        &["probe"],
        &[
            ("STORE_BACKEND", "redis"),
            ("REDIS_URL", &url),
            ("DELIVERY_BACKEND", "none"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let l = line(&out, "redis");
    assert!(
        l.starts_with("ok") && l.contains("maxmemory-policy could not be checked"),
        "{l}"
    );
}

#[test]
fn probe_fails_in_one_line_without_redis_and_never_prints_its_password() {
    let url = format!("redis://:hunter2-redis-pw@127.0.0.1:{}", free_port());
    let (code, out, err) = otp_server(
        &["probe"],
        &[
            ("STORE_BACKEND", "redis"),
            ("REDIS_URL", &url),
            ("DELIVERY_BACKEND", "none"),
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    let l = line(&out, "redis");
    assert!(l.starts_with("FAIL") && l.contains("PING failed"), "{l}");
    assert!(l.contains("redis://***@127.0.0.1:"), "{l}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
    // the delivery line is there too, and passes
    assert!(line(&out, "delivery").starts_with("ok"), "{out}");
}

#[test]
fn probe_connects_to_an_smtp_sink_with_and_without_auth_and_sends_no_mail() {
    if !python_has("aiosmtpd") {
        return;
    }
    let mail = TempDir::new("probe-smtp");
    let dir = mail.path().to_string_lossy().into_owned();
    let env = |port: &str, user: Option<(&'static str, &'static str)>| {
        let mut e = vec![
            ("DELIVERY_BACKEND", "smtp".to_owned()),
            ("SMTP_HOST", "127.0.0.1".to_owned()),
            ("SMTP_PORT", port.to_owned()),
            ("SMTP_TLS", "none".to_owned()),
            ("SMTP_FROM", "probe@example.com".to_owned()),
        ];
        if let Some((u, p)) = user {
            e.push(("SMTP_USERNAME", u.to_owned()));
            e.push(("SMTP_PASSWORD", p.to_owned()));
        }
        e
    };
    let run = |e: &[(&str, String)]| {
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        otp_server(&["probe"], &e)
    };

    let (_plain, port) = spawn_python("smtp_server.py", &["--dir", &dir]);
    let (code, out, err) = run(&env(&port.to_string(), None));
    assert_eq!(code, 0, "{out}{err}");
    assert!(line(&out, "smtp").contains("EHLO ok"), "{out}");

    let (_auth, port) = spawn_python(
        "smtp_server.py",
        &[
            "--dir",
            &dir,
            "--user",
            "relay-user",
            "--password",
            "relay-pass-secret",
        ],
    );
    let (code, out, err) = run(&env(
        &port.to_string(),
        Some(("relay-user", "relay-pass-secret")),
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(line(&out, "smtp").contains("AUTH ok"), "{out}");
    let (code, out, err) = run(&env(
        &port.to_string(),
        Some(("relay-user", "wrong-pass-secret")),
    ));
    assert_eq!(code, 1, "{out}{err}");
    let l = line(&out, "smtp");
    assert!(l.starts_with("FAIL") && l.contains("535"), "{l}");
    assert!(!out.contains("pass-secret") && !err.contains("pass-secret"));
    // nothing was sent
    assert_eq!(std::fs::read_dir(mail.path()).unwrap().count(), 0);
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`cert.pem`,
/// `key.pem`) in `dir`.
fn write_pki(dir: &TempDir) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "probe test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
}

#[test]
fn probe_checks_starttls_and_auth_and_fails_naming_tls_on_an_untrusted_certificate() {
    if !python_has("aiosmtpd") {
        return;
    }
    let pki = TempDir::new("probe-pki");
    write_pki(&pki);
    let file = |n: &str| pki.path().join(n).to_string_lossy().into_owned();
    let mail = TempDir::new("probe-smtp-tls");
    let (_server, port) = spawn_python(
        "smtp_server.py",
        &[
            "--dir",
            &mail.path().to_string_lossy(),
            "--mode",
            "starttls",
            "--cert",
            &file("cert.pem"),
            "--key",
            &file("key.pem"),
            "--user",
            "relay-user",
            "--password",
            "relay-pass-secret",
        ],
    );
    let port = port.to_string();
    let ca = file("ca.pem");
    let mut env = vec![
        ("DELIVERY_BACKEND", "smtp"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_TLS", "starttls"),
        ("SMTP_FROM", "probe@example.com"),
        ("SMTP_USERNAME", "relay-user"),
        ("SMTP_PASSWORD", "relay-pass-secret"),
    ];
    // without the CA the certificate is not trusted: a TLS failure
    let (code, out, _) = otp_server(&["probe"], &env);
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "smtp");
    assert!(l.starts_with("FAIL") && l.contains("TLS"), "{l}");
    env.push(("SMTP_CA_FILE", ca.as_str()));
    let (code, out, err) = otp_server(&["probe"], &env);
    assert_eq!(code, 0, "{out}{err}");
    let l = line(&out, "smtp");
    assert!(l.contains("TLS ok") && l.contains("AUTH ok"), "{l}");
    assert!(!out.contains("relay-pass-secret") && !err.contains("relay-pass-secret"));
    assert_eq!(
        std::fs::read_dir(mail.path()).unwrap().count(),
        0,
        "no mail"
    );
}

#[test]
fn probe_fails_naming_a_closed_smtp_port() {
    let port = free_port().to_string();
    let (code, out, _) = otp_server(
        &["probe"],
        &[
            ("DELIVERY_BACKEND", "smtp"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("SMTP_FROM", "probe@example.com"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "smtp");
    assert!(
        l.starts_with("FAIL") && l.contains(&format!("127.0.0.1:{port}")),
        "{l}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_looks_the_twilio_account_up_and_names_bad_credentials() {
    use wiremock::matchers::{header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let twilio = MockServer::start().await;
    let sid = "AC0123456789abcdef0123456789abcdef";
    Mock::given(method("GET"))
        .and(path(format!("/2010-04-01/Accounts/{sid}.json")))
        .and(header_exists("authorization"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"sid": sid, "status": "active"})),
        )
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
        ))
        .mount(&twilio)
        .await;
    let base = twilio.uri();
    let probe = move || {
        let base = base.clone();
        std::thread::spawn(move || {
            otp_server(
                &["probe"],
                &[
                    ("DELIVERY_BACKEND", "twilio"),
                    ("TWILIO_ACCOUNT_SID", sid),
                    ("TWILIO_AUTH_TOKEN", "twilio-token-secret"),
                    ("TWILIO_FROM_NUMBER", "+15005550006"),
                    ("TWILIO_API_BASE", &base),
                ],
            )
        })
        .join()
        .unwrap()
    };
    let (code, out, err) = probe();
    assert_eq!(code, 0, "{out}{err}");
    assert!(line(&out, "twilio").contains("account lookup ok"), "{out}");
    let (code, out, err) = probe();
    assert_eq!(code, 1, "{out}{err}");
    let l = line(&out, "twilio");
    assert!(
        l.starts_with("FAIL") && l.contains("HTTP 401: authentication failed"),
        "{l}"
    );
    assert!(!out.contains("twilio-token-secret") && !err.contains("twilio-token-secret"));
    let requests = twilio.received_requests().await.unwrap();
    assert!(
        requests.iter().all(|r| r.method.as_str() == "GET"),
        "no SMS sent"
    );
}

/// The Standard Webhooks receiver on a free port, logging into a temporary
/// directory.
struct Hook {
    _receiver: otp_testkit::ChildGuard,
    port: u16,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Hook {
    fn start() -> Hook {
        let dir = TempDir::new("hook");
        let log = dir.path().join("hook.log");
        let (receiver, port) = spawn_python(
            "webhook_receiver.py",
            &["--secret", WEBHOOK_SECRET, "--log", &log.to_string_lossy()],
        );
        Hook {
            _receiver: receiver,
            port,
            log,
            _dir: dir,
        }
    }

    /// `DELIVERY_BACKEND=webhook` to `path` of this receiver.
    fn env(&self, path: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DELIVERY_BACKEND", "webhook".into()),
            (
                "WEBHOOK_URL",
                format!("http://127.0.0.1:{}{path}", self.port),
            ),
            ("WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ]
    }

    /// The first request the receiver logged.
    fn first(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        serde_json::from_str(text.lines().next().expect("a logged request")).unwrap()
    }
}

/// [`otp_server`] with owned values.
fn otp_server_env(args: &[&str], env: &[(&'static str, String)]) -> (i32, String, String) {
    let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    otp_server(args, &e)
}

#[test]
fn probe_sends_a_signed_test_event_only_with_the_webhook_flag() {
    if !python_has("standardwebhooks") {
        return;
    }
    let hook = Hook::start();
    let env = hook.env("/ok");
    let (code, out, err) = otp_server_env(&["probe"], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(line(&out, "webhook").contains("not contacted"), "{out}");
    assert!(!hook.log.exists() || std::fs::read_to_string(&hook.log).unwrap().is_empty());

    let (code, out, err) = otp_server_env(&["probe", "--webhook"], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        line(&out, "webhook").contains("signed test event msg_"),
        "{out}"
    );
    let record = hook.first();
    assert_eq!(record["verified"], true, "{record}");
    assert_eq!(record["payload"]["type"], "test", "{record}");
    assert!(!out.contains(WEBHOOK_SECRET) && !err.contains(WEBHOOK_SECRET));

    // a receiver that refuses: one FAIL line naming the status
    let (code, out, _) = otp_server_env(&["probe", "--webhook"], &hook.env("/reject"));
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "webhook").contains("HTTP 400"), "{out}");
}

#[test]
fn send_test_delivers_one_code_and_says_where_without_printing_it() {
    if !python_has("standardwebhooks") {
        return;
    }
    let hook = Hook::start();
    let (code, out, err) = otp_server_env(&["send-test", "Ops@Example.com"], &hook.env("/ok"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.trim()
            .starts_with("sent a code to ops@example.com (email) via webhook; valid for "),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    let record = hook.first();
    assert_eq!(record["verified"], true, "{record}");
    assert_eq!(record["payload"]["identity"], "ops@example.com");
    let code_sent = record["payload"]["otp"].as_str().unwrap();
    assert!(!out.contains(code_sent) && !err.contains(code_sent));

    // a failure is one line and a non-zero exit
    let (code, out, err) = otp_server_env(&["send-test", "ops@example.com"], &hook.env("/reject"));
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    let last = err.trim().lines().last().unwrap_or("");
    assert!(last.starts_with("otp-server: "), "{err}");
}
