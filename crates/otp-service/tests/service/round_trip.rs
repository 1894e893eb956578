//! Request → delivered code → verify → token, extra claims, input
//! validation and delivery failures (SPEC §3, §4, §5 via the service API).

use std::sync::Arc;

use crate::harness::{config, memory_service, mid_window_now, FailingDelivery, Outbox};
use otp_core::Audience;
use otp_core::IdentityKind;
use otp_delivery::{Delivery, DeliveryError, DeliveryErrorKind, DeliveryReceipt, OtpMessage};
use otp_service::{RequestContext, ServiceError, VerifyOptions};
use serde_json::{json, Map, Value};

fn extra(v: Value) -> VerifyOptions {
    match v {
        Value::Object(m) => VerifyOptions::new().with_extra_claims(m),
        _ => unreachable!("extra claims are an object"),
    }
}

#[tokio::test]
async fn delivered_code_verifies_and_token_carries_normalized_sub_and_extra_claims() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();

    let sent = service
        .request_otp("  Alice@Example.COM ", &ctx)
        .await
        .unwrap();
    assert_eq!(sent.identity.as_str(), "alice@example.com");
    assert!(
        sent.ttl_seconds > 300 && sent.ttl_seconds <= 600,
        "{sent:?}"
    );
    assert!(sent.expires_at > otp_core::unix_now());

    let code = outbox.last_code("alice@example.com");
    assert_eq!(code.len(), 6);
    let verified = service
        .verify_otp(
            "alice@example.com",
            &code,
            &ctx,
            extra(json!({"role": "admin", "tenant": 42})),
        )
        .await
        .unwrap();
    assert_eq!(verified.identity.as_str(), "alice@example.com");
    assert_eq!(verified.token.expires_in, 900);

    let claims = service.verify_token(&verified.token.token).unwrap();
    assert_eq!(claims.sub, "alice@example.com");
    assert_eq!(claims.iss, "stateless-otp");
    assert_eq!(claims.aud, Audience::One("api".into()));
    assert_eq!(claims.amr, vec!["otp".to_owned()]);
    assert_eq!(claims.extra["role"], "admin");
    assert_eq!(claims.extra["tenant"], 42);
    assert_eq!(claims, verified.token.claims);

    let status = service.introspect(&verified.token.token);
    assert!(status.active);
    let body = status.claims.unwrap();
    assert_eq!(body["sub"], "alice@example.com");
    assert_eq!(body["role"], "admin");

    // A token with one flipped signature character is inactive.
    let mut forged = verified.token.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(service.verify_token(&forged).is_err());
    let status = service.introspect(&forged);
    assert!(!status.active);
    assert!(status.claims.is_none());
}

#[tokio::test]
async fn request_outcome_reports_true_remaining_validity_at_a_fixed_instant() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let now = mid_window_now();
    let sent = service
        .request_otp_at("bob", &RequestContext::default(), now)
        .await
        .unwrap();
    // 150 s left in the window + 1 drift window of 300 s.
    assert_eq!(sent.ttl_seconds, 450);
    assert_eq!(sent.expires_at, now + 450);
    assert_eq!(sent.rate_limit.limit, 1000);
    assert_eq!(sent.rate_limit.remaining, 999);
    assert_eq!(sent.rate_limit.window_secs, 600);
    // Opaque ids keep their case: "Bob" is somebody else.
    assert_eq!(outbox.codes("bob").len(), 1);
    assert!(outbox.codes("Bob").is_empty());
}

#[tokio::test]
async fn extra_claim_naming_a_registered_claim_is_reserved_claim_and_does_not_spend_the_code() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    service
        .request_otp_at("carol@example.com", &ctx, now)
        .await
        .unwrap();
    let code = outbox.last_code("carol@example.com");

    for name in ["sub", "exp", "iss", "aud", "iat", "nbf", "jti", "amr"] {
        let mut m = Map::new();
        m.insert("role".into(), json!("user"));
        m.insert(name.into(), json!("attacker"));
        match service
            .verify_otp_at(
                "carol@example.com",
                &code,
                &ctx,
                VerifyOptions::new().with_extra_claims(m),
                now,
            )
            .await
        {
            Err(ServiceError::ReservedClaim(n)) => assert_eq!(n, name),
            other => panic!("{name}: expected ReservedClaim, got {other:?}"),
        }
    }
    // The refused calls spent nothing: the code still verifies once.
    let ok = service
        .verify_otp_at("carol@example.com", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
    assert_eq!(ok.token.claims.sub, "carol@example.com");
    assert!(ok.token.claims.extra.is_empty());
}

#[tokio::test]
async fn bad_identities_are_invalid_identity_on_request_and_verify() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let long = "x".repeat(321);
    let bad = [
        "",
        "   ",
        "a@b@example.com",
        "@example.com",
        "alice@",
        "al ice@example.com",
        "+123",
        "+1234567890123456",
        "+12345abc678",
        "bob\u{7}",
        "line\nbreak",
        long.as_str(),
    ];
    for id in bad {
        match service.request_otp(id, &ctx).await {
            Err(ServiceError::InvalidIdentity(_)) => {}
            other => panic!("request {id:?}: expected InvalidIdentity, got {other:?}"),
        }
        match service
            .verify_otp(id, "123456", &ctx, VerifyOptions::new())
            .await
        {
            Err(ServiceError::InvalidIdentity(_)) => {}
            other => panic!("verify {id:?}: expected InvalidIdentity, got {other:?}"),
        }
    }
    assert_eq!(outbox.total(), 0, "nothing is delivered to a bad identity");
    // Phone formatting is normalized, not refused.
    let sent = service
        .request_otp("+1 (555) 010-2030", &ctx)
        .await
        .unwrap();
    assert_eq!(sent.identity.as_str(), "+15550102030");
}

#[tokio::test]
async fn codes_that_are_not_4_to_10_ascii_digits_are_invalid_code_format() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    service.request_otp_at("dave", &ctx, now).await.unwrap();
    let code = outbox.last_code("dave");
    let padded = format!(" {code}");
    let trailing = format!("{code}\n");
    let bad = [
        "",
        "123",
        "12345678901",
        "12a456",
        "12 456",
        "-12345",
        "+123456",
        "１２３４５６",                 // full-width digits
        "\u{661}\u{662}\u{663}\u{664}", // Arabic-Indic digits
        padded.as_str(),
        trailing.as_str(),
    ];
    for c in bad {
        match service
            .verify_otp_at("dave", c, &ctx, VerifyOptions::new(), now)
            .await
        {
            Err(ServiceError::InvalidCodeFormat) => {}
            other => panic!("{c:?}: expected InvalidCodeFormat, got {other:?}"),
        }
    }
    // None of that counted as a wrong code (5 would void it): it still works.
    service
        .verify_otp_at("dave", &code, &ctx, VerifyOptions::new(), now)
        .await
        .unwrap();
}

#[tokio::test]
async fn well_formed_code_of_the_wrong_length_is_invalid_otp() {
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    let ctx = RequestContext::default();
    let now = mid_window_now();
    service.request_otp_at("erin", &ctx, now).await.unwrap();
    let code = outbox.last_code("erin");
    // 4 and 8 digits (the policy has 6), including prefixes/extensions of the
    // real code.
    let four = &code[..4];
    let eight = format!("{code}00");
    for c in [four, eight.as_str(), "0000", "1234567890"] {
        match service
            .verify_otp_at("erin", c, &ctx, VerifyOptions::new(), now)
            .await
        {
            Err(ServiceError::InvalidOtp { .. }) => {}
            other => panic!("{c:?}: expected InvalidOtp, got {other:?}"),
        }
    }
    // A wrong six-digit code is InvalidOtp too.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(
        service
            .verify_otp_at("erin", wrong, &ctx, VerifyOptions::new(), now)
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
}

#[tokio::test]
async fn failing_delivery_is_delivery_failed_and_is_counted() {
    let service = memory_service(config(), Arc::new(FailingDelivery::Rejected));
    let err = service
        .request_otp("frank@example.com", &RequestContext::default())
        .await
        .unwrap_err();
    match &err {
        ServiceError::DeliveryFailed(e) => {
            assert_eq!(e.backend(), "failing");
            assert_eq!(e.kind(), DeliveryErrorKind::Rejected);
            assert_eq!(e.status(), Some(400));
        }
        other => panic!("expected DeliveryFailed, got {other:?}"),
    }
    let m = service.metrics();
    assert_eq!(
        m.otp_requested.get(),
        0,
        "a failed delivery is not a sent OTP"
    );
    let labels = otp_service::metrics::DeliveryLabels {
        backend: "failing",
        outcome: "error",
    };
    assert_eq!(m.deliveries.get_or_create(&labels).get(), 1);
}

/// Reaches email addresses only, like the SMTP backend.
#[derive(Debug, Default)]
struct EmailOnly(Outbox);

#[async_trait::async_trait]
impl Delivery for EmailOnly {
    fn name(&self) -> &'static str {
        "email-only"
    }
    fn supports(&self, kind: IdentityKind) -> bool {
        kind == IdentityKind::Email
    }
    async fn deliver(&self, m: &OtpMessage) -> Result<DeliveryReceipt, DeliveryError> {
        self.0.deliver(m).await
    }
}

#[tokio::test]
async fn identity_the_delivery_cannot_reach_is_refused_before_any_limit_is_spent() {
    let outbox = Arc::new(EmailOnly::default());
    let mut c = config();
    c.limits.global_send = otp_ratelimit::LimitPolicy::per_secs("global_send", 1, 3600);
    let service = memory_service(c, outbox.clone());
    let ctx = RequestContext::default();
    for _ in 0..3 {
        match service.request_otp("+15550102030", &ctx).await {
            Err(ServiceError::DeliveryFailed(e)) => {
                assert_eq!(e.kind(), DeliveryErrorKind::Recipient);
                assert_eq!(e.backend(), "email-only");
            }
            other => panic!("expected DeliveryFailed, got {other:?}"),
        }
    }
    assert_eq!(outbox.0.total(), 0);
    // The global budget of 1 is still there for an email address.
    service.request_otp("gina@example.com", &ctx).await.unwrap();
    assert_eq!(outbox.0.codes("gina@example.com").len(), 1);
}
