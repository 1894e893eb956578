//! SMTP backend against a real SMTP server (aiosmtpd) on loopback: plain,
//! STARTTLS with a CA made here, implicit TLS, authentication, rejections,
//! header injection attempts.
#![cfg(feature = "smtp")]

use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use otp_core::Identity;
use otp_delivery::{
    build_delivery, DeliveryConfig, DeliveryErrorKind, DeliveryRetryPolicy, SmtpConfig,
    SmtpDelivery, SmtpTls,
};

fn policy() -> DeliveryRetryPolicy {
    DeliveryRetryPolicy {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
    }
}

fn config(port: u16, tls: SmtpTls) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "Example OTP <no-reply@example.com>".into(),
        tls,
        ..Default::default()
    }
}

/// A CA and a server certificate for localhost/127.0.0.1, as PEM files.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let dir = TempDir::new("pki");
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "otp-delivery test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        Pki { dir }
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn arg(&self, name: &str) -> String {
        self.file(name).to_string_lossy().into_owned()
    }
}

fn part<'a>(record: &'a serde_json::Value, mime: &str) -> &'a str {
    record["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == mime)
        .unwrap_or_else(|| panic!("no {mime} part in {record}"))["content"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn plain_delivery_is_multipart_with_the_code_in_both_parts() {
    if !python_has("aiosmtpd") {
        return;
    }
    let out = TempDir::new("smtp-plain");
    let (_server, port) = spawn_python("smtp_server.py", &["--dir", &out.path().to_string_lossy()]);
    let cfg = SmtpConfig {
        subject_template: "Code {otp}, {minutes} minutes".into(),
        body_template: "Your code: {otp} <valid> {minutes} min & more".into(),
        ..config(port, SmtpTls::None)
    };
    let delivery = build_delivery(&DeliveryConfig::Smtp(cfg), &policy()).unwrap();
    let receipt = delivery
        .deliver(&message("Alice@Example.COM", "246810"))
        .await
        .unwrap();
    assert_eq!(receipt.backend, "smtp");
    assert_eq!(receipt.attempts, 1);
    assert!(
        receipt
            .provider_id
            .as_deref()
            .unwrap()
            .contains("queued as Q0001"),
        "{receipt:?}"
    );

    let files = wait_for_files(out.path(), 1);
    assert_eq!(files.len(), 1);
    let r = read_json(&files[0]);
    assert_eq!(r["mail_from"], "no-reply@example.com");
    assert_eq!(r["rcpt_tos"], serde_json::json!(["alice@example.com"]));
    assert_eq!(r["from"], "Example OTP <no-reply@example.com>");
    assert_eq!(r["to"], "alice@example.com");
    assert_eq!(r["subject"], "Code 246810, 5 minutes");
    assert_eq!(r["content_type"], "multipart/alternative");
    assert_eq!(r["tls"], false);
    let text = part(&r, "text/plain");
    assert!(
        text.contains("Your code: 246810 <valid> 5 min & more"),
        "{text}"
    );
    let html = part(&r, "text/html");
    assert!(
        html.contains("Your code: 246810 &lt;valid&gt; 5 min &amp; more"),
        "{html}"
    );
}

#[tokio::test]
async fn custom_html_template_and_legacy_use_tls_false() {
    if !python_has("aiosmtpd") {
        return;
    }
    let out = TempDir::new("smtp-html");
    let (_server, port) = spawn_python("smtp_server.py", &["--dir", &out.path().to_string_lossy()]);
    let cfg = SmtpConfig {
        html_template: Some("<html><body><h1>{otp}</h1><p>{minutes} min</p></body></html>".into()),
        tls: SmtpTls::None,
        ..config(port, SmtpTls::StartTls)
    };
    let d = SmtpDelivery::new(&cfg, Duration::from_secs(5)).unwrap();
    use otp_delivery::Delivery;
    d.deliver(&message("bob@example.org", "1357"))
        .await
        .unwrap();
    let r = read_json(&wait_for_files(out.path(), 1)[0]);
    assert!(part(&r, "text/html").contains("<h1>1357</h1><p>5 min</p>"));
    assert!(part(&r, "text/plain").contains("Your verification code is 1357"));
    assert_eq!(r["subject"], "Your verification code");
}

/// With two fields wrong, the refusal names the one checked first (host,
/// port, from, login, CA file, templates; the CA file is not read without
/// TLS), and the clear-text login warning names fields (`smtp.tls`,
/// `smtp.username`), never the binary's variables.
#[test]
fn start_up_checks_keep_their_order_and_the_clear_text_warning_names_fields() {
    let dir = TempDir::new("smtp-config");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "no certificate here").unwrap();
    let plain = || config(25, SmtpTls::None);
    let cases = [
        (
            SmtpConfig {
                host: " ".into(),
                port: 0,
                ..plain()
            },
            "smtp.host",
        ),
        (
            SmtpConfig {
                port: 0,
                from: String::new(),
                ..plain()
            },
            "smtp.port",
        ),
        (
            SmtpConfig {
                from: " ".into(),
                username: Some("mailer".into()),
                ..plain()
            },
            "smtp.from",
        ),
        (
            SmtpConfig {
                username: Some("mailer".into()),
                ca_file: Some(dir.path().join("missing.pem")),
                ..config(25, SmtpTls::StartTls)
            },
            "smtp.password",
        ),
        (
            SmtpConfig {
                password: Some("secret".into()),
                body_template: "no code".into(),
                ..plain()
            },
            "smtp.username",
        ),
        (
            SmtpConfig {
                ca_file: Some(dir.path().join("missing.pem")),
                body_template: "no code".into(),
                ..config(25, SmtpTls::Tls)
            },
            "smtp.ca_file",
        ),
        (
            SmtpConfig {
                ca_file: Some(not_pem),
                body_template: "no code".into(),
                ..plain()
            },
            "smtp.body_template",
        ),
    ];
    for (cfg, field) in cases {
        let e = SmtpDelivery::new(&cfg, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.field, field, "{cfg:?}: {e}");
    }

    let (_guard, logs) = capture_logs();
    let login = |tls| SmtpConfig {
        username: Some("mailer".into()),
        password: Some("secret".into()),
        ..config(25, tls)
    };
    SmtpDelivery::new(&login(SmtpTls::StartTls), Duration::from_secs(1)).unwrap();
    assert_eq!(logs.text(), "", "no warning when the login is encrypted");
    SmtpDelivery::new(&login(SmtpTls::None), Duration::from_secs(1)).unwrap();
    let logged = logs.text();
    assert!(
        logged.contains(
            "smtp.tls=none with smtp.username set: the password crosses the network in clear text"
        ),
        "{logged}"
    );
    assert!(
        !logged.contains("SMTP_") && !logged.contains("secret"),
        "{logged}"
    );
}

#[tokio::test]
async fn headers_cannot_be_injected() {
    // A subject template with CR/LF is refused at start-up.
    let e = SmtpDelivery::new(
        &SmtpConfig {
            subject_template: "Hello\r\nBcc: attacker@evil.example".into(),
            ..config(25, SmtpTls::None)
        },
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert_eq!(e.field, "smtp.subject_template");
    // So is a From with CR/LF.
    let e = SmtpDelivery::new(
        &SmtpConfig {
            from: "a@example.com\r\nBcc: attacker@evil.example".into(),
            ..config(25, SmtpTls::None)
        },
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert_eq!(e.field, "smtp.from");
    // An identity cannot carry CR/LF at all.
    assert!(Identity::parse("victim@example.com\r\nBcc: attacker@evil.example").is_err());

    if !python_has("aiosmtpd") {
        return;
    }
    let out = TempDir::new("smtp-inject");
    let (_server, port) = spawn_python("smtp_server.py", &["--dir", &out.path().to_string_lossy()]);
    let d = build_delivery(
        &DeliveryConfig::Smtp(config(port, SmtpTls::None)),
        &policy(),
    )
    .unwrap();
    // Identities that are not one plain mailbox never get this far: since
    // SPEC §3.4 was amended, identity parsing refuses them (422), so they
    // cannot reach a backend (which would refuse them too).
    for hostile in [
        "a<b>@example.com",
        "bcc:attacker@example.com",
        "a,b@example.com",
        "a\"b@example.com",
    ] {
        assert!(Identity::parse(hostile).is_err(), "{hostile}");
    }
    // A valid one arrives with exactly one recipient and no smuggled header.
    d.deliver(&message("victim@example.com", "222222"))
        .await
        .unwrap();
    let files = wait_for_files(out.path(), 1);
    assert_eq!(files.len(), 1, "only the valid message may arrive");
    let r = read_json(&files[0]);
    assert_eq!(r["rcpt_tos"], serde_json::json!(["victim@example.com"]));
    let names: Vec<String> = r["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_lowercase())
        .collect();
    assert!(!names.contains(&"bcc".to_string()), "{names:?}");
    assert!(!names.contains(&"cc".to_string()), "{names:?}");
}

#[tokio::test]
async fn non_email_identities_are_refused() {
    let d = SmtpDelivery::new(&config(25, SmtpTls::None), Duration::from_secs(1)).unwrap();
    use otp_delivery::Delivery;
    assert!(!d.supports(otp_core::IdentityKind::Phone));
    let e = d
        .deliver(&message("+14155550100", "123456"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), DeliveryErrorKind::Recipient);
}

#[tokio::test]
async fn starttls_with_ca_file_and_authentication() {
    if !python_has("aiosmtpd") {
        return;
    }
    let pki = Pki::new();
    let out = TempDir::new("smtp-starttls");
    let (_server, port) = spawn_python(
        "smtp_server.py",
        &[
            "--dir",
            &out.path().to_string_lossy(),
            "--mode",
            "starttls",
            "--cert",
            &pki.arg("cert.pem"),
            "--key",
            &pki.arg("key.pem"),
            "--user",
            "relay-user",
            "--password",
            "relay-pass",
        ],
    );
    let cfg = SmtpConfig {
        username: Some("relay-user".into()),
        password: Some("relay-pass".into()),
        ca_file: Some(pki.file("ca.pem")),
        ..config(port, SmtpTls::StartTls)
    };
    let d = build_delivery(&DeliveryConfig::Smtp(cfg.clone()), &policy()).unwrap();
    d.deliver(&message("carol@example.net", "975310"))
        .await
        .unwrap();
    let r = read_json(&wait_for_files(out.path(), 1)[0]);
    assert_eq!(r["tls"], true);
    assert_eq!(r["login"], "relay-user");
    assert!(part(&r, "text/plain").contains("975310"));

    // The same server is not trusted without the CA file: TLS error, no retry.
    let untrusted = SmtpConfig {
        ca_file: None,
        ..cfg.clone()
    };
    let d = build_delivery(&DeliveryConfig::Smtp(untrusted), &policy()).unwrap();
    let e = d
        .deliver(&message("carol@example.net", "975310"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), DeliveryErrorKind::Tls, "{e}");
    assert_eq!(e.attempts(), 1);
    assert!(e.to_string().contains("TLS"), "{e}");

    // A wrong password is a permanent SMTP rejection (535).
    let wrong = SmtpConfig {
        password: Some("nope".into()),
        ..cfg
    };
    let d = build_delivery(&DeliveryConfig::Smtp(wrong), &policy()).unwrap();
    let e = d
        .deliver(&message("carol@example.net", "975310"))
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert_eq!(e.status(), Some(535), "{e}");
    assert_eq!(wait_for_files(out.path(), 1).len(), 1);
}

#[tokio::test]
async fn implicit_tls_works_and_fails_clearly_against_a_plain_server() {
    if !python_has("aiosmtpd") {
        return;
    }
    let pki = Pki::new();
    let out = TempDir::new("smtp-tls");
    let (_tls_server, tls_port) = spawn_python(
        "smtp_server.py",
        &[
            "--dir",
            &out.path().to_string_lossy(),
            "--mode",
            "tls",
            "--cert",
            &pki.arg("cert.pem"),
            "--key",
            &pki.arg("key.pem"),
        ],
    );
    let cfg = SmtpConfig {
        ca_file: Some(pki.file("ca.pem")),
        ..config(tls_port, SmtpTls::Tls)
    };
    build_delivery(&DeliveryConfig::Smtp(cfg), &policy())
        .unwrap()
        .deliver(&message("dave@example.com", "864200"))
        .await
        .unwrap();
    let r = read_json(&wait_for_files(out.path(), 1)[0]);
    assert_eq!(r["tls"], true);

    let plain_out = TempDir::new("smtp-tls-plain");
    let (_plain, plain_port) = spawn_python(
        "smtp_server.py",
        &["--dir", &plain_out.path().to_string_lossy()],
    );
    let cfg = SmtpConfig {
        ca_file: Some(pki.file("ca.pem")),
        ..config(plain_port, SmtpTls::Tls)
    };
    let started = std::time::Instant::now();
    let e = build_delivery(&DeliveryConfig::Smtp(cfg), &policy())
        .unwrap()
        .deliver(&message("dave@example.com", "864200"))
        .await
        .unwrap_err();
    eprintln!("tls against plain: {e}");
    assert_eq!(e.kind(), DeliveryErrorKind::Tls, "{e}");
    assert!(e.to_string().contains("smtp.tls=tls"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_for_files(plain_out.path(), 0).is_empty());

    // STARTTLS required, but the plain server does not offer it.
    let cfg = SmtpConfig {
        ca_file: Some(pki.file("ca.pem")),
        ..config(plain_port, SmtpTls::StartTls)
    };
    let e = build_delivery(&DeliveryConfig::Smtp(cfg), &policy())
        .unwrap()
        .deliver(&message("dave@example.com", "864200"))
        .await
        .unwrap_err();
    eprintln!("starttls against plain: {e}");
    assert_eq!(e.kind(), DeliveryErrorKind::Tls, "{e}");
    assert_eq!(e.attempts(), 1);
    assert!(wait_for_files(plain_out.path(), 0).is_empty());
}

#[tokio::test]
async fn rejections_are_permanent_and_temporary_failures_are_retried() {
    if !python_has("aiosmtpd") {
        return;
    }
    let out = TempDir::new("smtp-reject");
    let (_server, port) = spawn_python("smtp_server.py", &["--dir", &out.path().to_string_lossy()]);
    let d = build_delivery(
        &DeliveryConfig::Smtp(config(port, SmtpTls::None)),
        &policy(),
    )
    .unwrap();
    let e = d
        .deliver(&message("reject@example.com", "121212"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), DeliveryErrorKind::Rejected, "{e}");
    assert_eq!(e.status(), Some(550));
    assert_eq!(e.attempts(), 1);

    // 451 twice, accepted on the third attempt.
    let r = d
        .deliver(&message("tempfail@example.com", "343434"))
        .await
        .unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(wait_for_files(out.path(), 1).len(), 1);
}

#[tokio::test]
async fn connection_refused_is_transient_and_bounded() {
    // Bind then drop to get a port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = build_delivery(
        &DeliveryConfig::Smtp(config(port, SmtpTls::None)),
        &policy(),
    )
    .unwrap();
    let e = d
        .deliver(&message("x@example.com", "565656"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), DeliveryErrorKind::Connect, "{e}");
    assert_eq!(e.attempts(), 3);
}

#[test]
fn config_errors_name_the_variable() {
    let t = Duration::from_secs(1);
    let cases: Vec<(SmtpConfig, &str)> = vec![
        (
            SmtpConfig {
                host: " ".into(),
                ..config(25, SmtpTls::None)
            },
            "smtp.host",
        ),
        (
            SmtpConfig {
                port: 0,
                ..config(25, SmtpTls::None)
            },
            "smtp.port",
        ),
        (
            SmtpConfig {
                from: "".into(),
                ..config(25, SmtpTls::None)
            },
            "smtp.from",
        ),
        (
            SmtpConfig {
                from: "not an address".into(),
                ..config(25, SmtpTls::None)
            },
            "smtp.from",
        ),
        (
            SmtpConfig {
                username: Some("u".into()),
                ..config(25, SmtpTls::None)
            },
            "smtp.password",
        ),
        (
            SmtpConfig {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..config(25, SmtpTls::StartTls)
            },
            "smtp.ca_file",
        ),
        (
            SmtpConfig {
                body_template: "no code here".into(),
                ..config(25, SmtpTls::None)
            },
            "smtp.body_template",
        ),
        (
            SmtpConfig {
                html_template: Some("<p>none</p>".into()),
                ..config(25, SmtpTls::None)
            },
            "smtp.html_template",
        ),
    ];
    for (cfg, var) in cases {
        let e = SmtpDelivery::new(&cfg, t).unwrap_err();
        assert_eq!(e.field, var, "{e}");
    }
    let not_pem = TempDir::new("notpem");
    let f = not_pem.path().join("ca.pem");
    std::fs::write(&f, "hello").unwrap();
    let e = SmtpDelivery::new(
        &SmtpConfig {
            ca_file: Some(f),
            ..config(25, SmtpTls::StartTls)
        },
        t,
    )
    .unwrap_err();
    assert_eq!(e.field, "smtp.ca_file");
    // via build_delivery too
    let e = build_delivery(
        &DeliveryConfig::Smtp(SmtpConfig::default()),
        &DeliveryRetryPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(e.field, "smtp.host");
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_bound() {
    let port = silent_server().await;
    let policy = DeliveryRetryPolicy {
        timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..policy()
    };
    let d = build_delivery(&DeliveryConfig::Smtp(config(port, SmtpTls::None)), &policy).unwrap();
    let started = std::time::Instant::now();
    let e = d
        .deliver(&message("x@example.com", "989898"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind(), DeliveryErrorKind::Timeout, "{e}");
    assert_eq!(e.attempts(), 2);
    assert!(
        took < policy.worst_case() + Duration::from_millis(500),
        "{took:?}"
    );
}

/// Characters that make identities hard to deliver or easy to confuse:
/// quotes, brackets, dots, separators, non-ASCII letters, full-width forms,
/// the ideographic full stop, zero-width and bidi characters, white space.
fn tricky_char() -> impl proptest::strategy::Strategy<Value = char> {
    use proptest::prelude::*;
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('0', '9'),
        4 => proptest::sample::select(vec![
            '.', '-', '_', '+', '"', '\\', '[', ']', '(', ')', ',', ':', ';', '<', '>', '!', '#',
            '$', '%', '&', '\'', '*', '/', '=', '?', '^', '`', '{', '|', '}', '~', ' ', '@',
        ]),
        2 => proptest::sample::select(vec![
            'é', 'ü', 'ß', 'ø', 'а', 'е', 'Ａ', 'ｅ', '。', '．', '\u{200b}', '\u{200d}',
            '\u{00ad}', '\u{202e}', '\u{feff}', '\u{2060}', '\u{3000}', 'İ', 'K', '\u{0301}',
        ]),
    ]
}

/// Identities shaped like emails: a local part of mostly `atext`, `@`,
/// labels of mostly letters and digits joined by dots, sometimes bracketed or
/// with a trailing dot; every part sprinkled with tricky characters.
fn email_like() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let local_char = prop_oneof![
        12 => proptest::char::range('a', 'z'),
        3 => proptest::char::range('A', 'Z'),
        3 => proptest::char::range('0', '9'),
        3 => proptest::sample::select(".!#$%&'*+-/=?^_`{|}~".chars().collect::<Vec<_>>()),
        1 => tricky_char(),
    ];
    let label_char = prop_oneof![
        12 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        3 => proptest::char::range('0', '9'),
        2 => Just('-'),
        1 => tricky_char(),
    ];
    (
        proptest::collection::vec(local_char, 1..70),
        proptest::collection::vec(proptest::collection::vec(label_char, 1..12), 1..4),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(local, labels, bracket, trailing_dot)| {
            let labels: Vec<String> = labels
                .into_iter()
                .map(|l| l.into_iter().collect())
                .collect();
            let mut domain = labels.join(".");
            if trailing_dot {
                domain.push('.');
            }
            if bracket {
                domain = format!("[{domain}]");
            }
            format!("{}@{domain}", local.into_iter().collect::<String>())
        })
}

/// Email-shaped identities or any text of tricky characters.
fn identity_like() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        email_like(),
        proptest::collection::vec(tricky_char(), 1..40).prop_map(|cs| cs.into_iter().collect()),
    ]
}

// See: issue 13 item 4. Every email identity that SPEC §3.4 accepts must be
// deliverable by the SMTP backend: lettre's address parser takes it and the
// backend builds the message, so no accepted identity ends in a 502 because
// of its shape.
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    #[test]
    fn every_accepted_email_identity_is_a_lettre_address_the_smtp_backend_can_build(
        raw in identity_like()
    ) {
        use proptest::prelude::*;
        let Ok(identity) = Identity::parse(&raw) else {
            return Ok(());
        };
        if identity.kind() != otp_core::IdentityKind::Email {
            return Ok(());
        }
        let address: Result<lettre::Address, _> = identity.as_str().parse();
        prop_assert!(address.is_ok(), "{raw:?} -> {:?}: {:?}", identity.as_str(), address.err());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _entered = runtime.enter();
        let d = SmtpDelivery::new(&config(25, SmtpTls::None), Duration::from_secs(1)).unwrap();
        let m = otp_delivery::OtpMessage::new(identity.clone(), otp_core::OtpCode::parse("123456").unwrap(), 300, 1_800_000_000);
        let built = d.build_message(&m);
        prop_assert!(built.is_ok(), "{raw:?} -> {:?}: {:?}", identity.as_str(), built.err());
        // The identity is ASCII, so no relay needs SMTPUTF8 to carry it.
        prop_assert!(identity.as_str().is_ascii(), "{:?}", identity.as_str());
    }
}

/// The property above is not vacuous: these shapes are accepted and built.
#[test]
fn typical_and_internationalized_emails_are_accepted_and_built() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let d = SmtpDelivery::new(&config(25, SmtpTls::None), Duration::from_secs(1)).unwrap();
    for raw in [
        "alice@example.com",
        "O'Brien+otp@Mail.Example.co.uk",
        "x!#$%&'*+-/=?^_`{|}~@a-b.example",
        "bob@bücher.example",
        "bob@localhost",
    ] {
        let identity = Identity::parse(raw).unwrap();
        let m = otp_delivery::OtpMessage::new(
            identity,
            otp_core::OtpCode::parse("123456").unwrap(),
            300,
            1_800_000_000,
        );
        assert!(d.build_message(&m).is_ok(), "{raw:?}");
    }
}
