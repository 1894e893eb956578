//! `DELIVERY_BACKEND=auto` across the three real network backends, with
//! every tracing event captured: the code must never appear in a log line
//! or an error, whatever happens (success, retry, rejection).
#![cfg(all(feature = "smtp", feature = "twilio", feature = "webhook"))]

use std::time::Duration;

use crate::support::*;
use otp_delivery::{
    build_delivery, DeliveryConfig, DeliveryRetryPolicy, SmtpConfig, SmtpTls, TwilioConfig,
    WebhookConfig,
};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn auto_routes_by_kind_and_codes_never_reach_logs_or_errors() {
    if !python_has("aiosmtpd") || !python_has("standardwebhooks") {
        return;
    }
    let (_guard, logs) = capture_logs();
    // While only one dispatcher is alive, tracing-core computes a callsite's
    // interest from the registering thread's dispatcher alone
    // (`has_just_one`): a retry line first emitted by a parallel test of this
    // binary, on a thread without a subscriber, would stay disabled here.
    // A second live dispatcher makes every registration consult all of them.
    let _second_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());

    let mail = TempDir::new("auto-smtp");
    let (_smtp, smtp_port) =
        spawn_python("smtp_server.py", &["--dir", &mail.path().to_string_lossy()]);
    let hooks = TempDir::new("auto-hook");
    let hook_log = hooks.path().join("requests.jsonl");
    let (_hook, hook_port) = spawn_python(
        "webhook_receiver.py",
        &["--secret", SECRET, "--log", &hook_log.to_string_lossy()],
    );
    let twilio = MockServer::start().await;
    // Twilio: a 400 whose message echoes the whole form body (code included) for
    // one number, 429 (refused unprocessed, so retried) then 201 for the others.
    Mock::given(method("POST"))
        .and(body_string_contains("To=%2B15550001111"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code": 21211, "message": "Invalid 'To': body was To=+15550001111&Body=Your verification code is 700001.",
            "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400
        })))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_string("slow down; your code 700002"))
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SMauto"})),
        )
        .mount(&twilio)
        .await;

    let config = DeliveryConfig::Auto {
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            from: "otp@example.com".into(),
            tls: SmtpTls::None,
            ..Default::default()
        }),
        twilio: Some(TwilioConfig {
            account_sid: "AC42".into(),
            auth_token: "token".into(),
            from_number: Some("+15005550006".into()),
            api_base: twilio.uri(),
            ..Default::default()
        }),
        webhook: Some(WebhookConfig {
            url: format!("http://127.0.0.1:{hook_port}/flaky"),
            secret: SECRET.into(),
            ..Default::default()
        }),
    };
    let policy = DeliveryRetryPolicy {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    let d = build_delivery(&config, &policy).unwrap();
    assert_eq!(d.name(), "auto");

    let mut errors = Vec::new();
    // Twilio: permanent failure whose provider message echoes the code.
    errors.push(
        d.deliver(&message("+15550001111", "700001"))
            .await
            .unwrap_err(),
    );
    // Twilio: 429 (body mentions the code), then 201.
    let r = d.deliver(&message("+14155550100", "700002")).await.unwrap();
    assert_eq!(
        (r.backend, r.attempts, r.provider_id.as_deref()),
        ("twilio", 2, Some("SMauto"))
    );
    // SMTP: success and a 550 rejection.
    let r = d
        .deliver(&message("someone@example.com", "700003"))
        .await
        .unwrap();
    assert_eq!(r.backend, "smtp");
    errors.push(
        d.deliver(&message("reject@example.com", "700004"))
            .await
            .unwrap_err(),
    );
    // Webhook: 503, 503, then 200.
    let r = d.deliver(&message("opaque-user", "700005")).await.unwrap();
    assert_eq!((r.backend, r.attempts), ("webhook", 3));
    // SMTP unreachable (transient, retried): a second auto delivery with a dead port.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = DeliveryConfig::Smtp(SmtpConfig {
        host: "127.0.0.1".into(),
        port: dead_port,
        from: "otp@example.com".into(),
        tls: SmtpTls::None,
        ..Default::default()
    });
    errors.push(
        build_delivery(&dead, &policy)
            .unwrap()
            .deliver(&message("x@example.com", "700006"))
            .await
            .unwrap_err(),
    );

    // The mail and the webhook really carried the codes.
    let mails = wait_for_files(mail.path(), 1);
    assert_eq!(mails.len(), 1);
    assert!(std::fs::read_to_string(&mails[0])
        .unwrap()
        .contains("700003"));
    assert!(std::fs::read_to_string(&hook_log)
        .unwrap()
        .contains("700005"));

    let logged = logs.text();
    // The capture works: retries and failures were logged.
    assert!(
        logged.contains("transient delivery failure, retrying"),
        "{logged}"
    );
    assert!(logged.contains("delivery failed"), "{logged}");
    assert!(logged.contains("Twilio refused the message"), "{logged}");
    for code in ["700001", "700002", "700003", "700004", "700005", "700006"] {
        assert!(
            !logged.contains(code),
            "code {code} appears in the logs:\n{logged}"
        );
        for e in &errors {
            assert!(!e.to_string().contains(code), "code {code} in error {e}");
            assert!(
                !format!("{e:?}").contains(code),
                "code {code} in error {e:?}"
            );
        }
    }
}

#[test]
fn auto_requires_every_backend_at_build_time() {
    let smtp = SmtpConfig {
        host: "smtp.example.com".into(),
        from: "otp@example.com".into(),
        ..Default::default()
    };
    let twilio = TwilioConfig {
        account_sid: "AC1".into(),
        auth_token: "t".into(),
        from_number: Some("+15005550006".into()),
        ..Default::default()
    };
    let webhook = WebhookConfig {
        url: "https://hooks.example.com/otp".into(),
        secret: SECRET.into(),
        ..Default::default()
    };
    let p = DeliveryRetryPolicy::default();
    let build = |s: Option<SmtpConfig>, t: Option<TwilioConfig>, w: Option<WebhookConfig>| {
        build_delivery(
            &DeliveryConfig::Auto {
                smtp: s,
                twilio: t,
                webhook: w,
            },
            &p,
        )
    };
    assert!(build(
        Some(smtp.clone()),
        Some(twilio.clone()),
        Some(webhook.clone())
    )
    .is_ok());
    assert_eq!(
        build(None, Some(twilio.clone()), Some(webhook.clone()))
            .unwrap_err()
            .field,
        "smtp.host"
    );
    assert_eq!(
        build(Some(smtp.clone()), None, Some(webhook.clone()))
            .unwrap_err()
            .field,
        "twilio.account_sid"
    );
    assert_eq!(
        build(Some(smtp.clone()), Some(twilio.clone()), None)
            .unwrap_err()
            .field,
        "webhook.url"
    );
    // and each present config is validated too
    let bad = WebhookConfig {
        secret: "whsec_short".into(),
        ..webhook
    };
    assert_eq!(
        build(Some(smtp), Some(twilio), Some(bad))
            .unwrap_err()
            .field,
        "webhook.secret"
    );
}

#[test]
fn retry_policy_is_validated_for_network_backends() {
    let smtp = SmtpConfig {
        host: "smtp.example.com".into(),
        from: "otp@example.com".into(),
        ..Default::default()
    };
    let p = DeliveryRetryPolicy {
        max_attempts: 0,
        ..Default::default()
    };
    assert_eq!(
        build_delivery(&DeliveryConfig::Smtp(smtp), &p)
            .unwrap_err()
            .field,
        "retry.max_attempts"
    );
    // console and none ignore it
    assert!(build_delivery(&DeliveryConfig::Console, &p).is_ok());
}
