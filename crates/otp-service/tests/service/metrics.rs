//! Service metrics as Prometheus text: after a request, a verify, a wrong
//! code, a rate-limited request and a failed delivery, the registry in which
//! `ServiceMetrics::register` was called shows those counts.

use std::sync::Arc;

use crate::harness::{config, memory_service, FailingDelivery, Outbox};
use otp_ratelimit::{LimitPolicy, MemoryStore};
use otp_service::metrics::ServiceMetrics;
use otp_service::{OtpService, RequestContext, ServiceError, VerifyOptions};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

fn lines(registry: &Registry) -> Vec<String> {
    let mut out = String::new();
    encode(&mut out, registry).unwrap();
    out.lines().map(str::to_owned).collect()
}

fn assert_line(lines: &[String], expected: &str) {
    assert!(
        lines.iter().any(|l| l == expected),
        "missing line {expected:?} in\n{}",
        lines.join("\n")
    );
}

#[tokio::test]
async fn registry_shows_requests_verifies_failures_limits_and_deliveries() {
    let mut registry = Registry::default();
    let metrics = Arc::new(ServiceMetrics::default());
    metrics.register(&mut registry);

    // Before anything happened every plain counter reads 0.
    let before = lines(&registry);
    assert_line(&before, "otp_requested_total 0");
    assert_line(&before, "otp_verified_total 0");
    assert_line(&before, "otp_failed_total 0");
    assert_line(&before, "# EOF");

    let outbox = Outbox::new();
    let mut c = config();
    c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 1, 600);
    let service = OtpService::builder(c, crate::harness::tokens())
        .store(Arc::new(MemoryStore::default()))
        .delivery(outbox.clone())
        .metrics(metrics.clone())
        .build();
    let failing = OtpService::builder(config(), crate::harness::tokens())
        .delivery(Arc::new(FailingDelivery::Rejected))
        .metrics(metrics.clone())
        .build();
    let ctx = RequestContext::default();

    service.request_otp("m@example.com", &ctx).await.unwrap();
    let code = outbox.last_code("m@example.com");
    service
        .verify_otp("m@example.com", &code, &ctx, VerifyOptions::new())
        .await
        .unwrap();
    assert!(matches!(
        service
            .verify_otp("m@example.com", &code, &ctx, VerifyOptions::new())
            .await,
        Err(ServiceError::InvalidOtp { .. })
    ));
    assert!(matches!(
        service.request_otp("m@example.com", &ctx).await,
        Err(ServiceError::RateLimited { .. })
    ));
    assert!(matches!(
        failing.request_otp("m@example.com", &ctx).await,
        Err(ServiceError::DeliveryFailed(_))
    ));
    // Input errors are not verification failures.
    assert!(service
        .verify_otp("m@example.com", "12", &ctx, VerifyOptions::new())
        .await
        .is_err());

    let after = lines(&registry);
    assert_line(&after, "otp_requested_total 1");
    assert_line(&after, "otp_verified_total 1");
    assert_line(&after, "otp_failed_total 1");
    assert_line(
        &after,
        r#"otp_rate_limited_total{limit="request_identity"} 1"#,
    );
    assert_line(
        &after,
        r#"otp_deliveries_total{backend="outbox",outcome="ok"} 1"#,
    );
    assert_line(
        &after,
        r#"otp_deliveries_total{backend="failing",outcome="error"} 1"#,
    );
    assert_line(
        &after,
        r#"otp_delivery_duration_seconds_count{backend="outbox",outcome="ok"} 1"#,
    );
    assert_line(
        &after,
        r#"otp_delivery_duration_seconds_count{backend="failing",outcome="error"} 1"#,
    );
    assert!(
        !after
            .iter()
            .any(|l| l.starts_with("otp_store_errors_total")),
        "no store error happened on the memory store"
    );
    assert_line(&after, "otp_store_full_total 0");
    // The service hands out the shared instance.
    assert!(Arc::ptr_eq(service.metrics(), &metrics));
}

#[tokio::test]
async fn each_service_without_shared_metrics_counts_privately() {
    let a = memory_service(config(), Outbox::new());
    let b = memory_service(config(), Outbox::new());
    a.request_otp("p", &RequestContext::default())
        .await
        .unwrap();
    assert_eq!(a.metrics().otp_requested.get(), 1);
    assert_eq!(b.metrics().otp_requested.get(), 0);
}
