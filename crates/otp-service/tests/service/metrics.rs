//! Service metrics as Prometheus text: after a request, a verify, a wrong
//! code, a rate-limited request and a failed delivery, the registry in which
//! `ServiceMetrics::register` was called shows those counts; before
//! anything happened, every labelled series the service can report is there
//! at 0 (issue 16: `increase() > 0` alerts must see the first event).

use std::sync::Arc;

use crate::harness::{config, memory_service, FailingDelivery, Outbox};
use otp_delivery::AutoRouter;
use otp_ratelimit::{LimitPolicy, MemoryStore};
use otp_service::metrics::{ServiceMetrics, StoreLabels};
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
    for op in StoreLabels::OPS {
        // No store error happened on the memory store.
        assert_line(&after, &format!(r#"otp_store_errors_total{{op="{op}"}} 0"#));
    }
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

// See: issue 16 (every label set exists at 0 from start-up).
#[test]
fn a_freshly_built_service_shows_every_labelled_series_at_0() {
    let mut registry = Registry::default();
    let metrics = Arc::new(ServiceMetrics::default());
    metrics.register(&mut registry);
    let _service = OtpService::builder(config(), crate::harness::tokens())
        .delivery(Outbox::new())
        .metrics(metrics.clone())
        .build();
    let fresh = lines(&registry);
    for limit in [
        "request_identity",
        "verify_identity",
        "verify_daily",
        "request_ip",
        "verify_ip",
        "global_send",
        "verify_daily_identity",
    ] {
        assert_line(
            &fresh,
            &format!(r#"otp_rate_limited_total{{limit="{limit}"}} 0"#),
        );
    }
    for outcome in ["ok", "error"] {
        assert_line(
            &fresh,
            &format!(r#"otp_deliveries_total{{backend="outbox",outcome="{outcome}"}} 0"#),
        );
        assert_line(
            &fresh,
            &format!(
                r#"otp_delivery_duration_seconds_count{{backend="outbox",outcome="{outcome}"}} 0"#
            ),
        );
    }
    for op in [
        "limit", "counters", "advance", "failure", "clear", "session",
    ] {
        assert_line(&fresh, &format!(r#"otp_store_errors_total{{op="{op}"}} 0"#));
    }
    let series = |prefix: &str| fresh.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(series("otp_rate_limited_total{"), 7, "one series per limit");
    assert_eq!(
        series("otp_deliveries_total{"),
        2,
        "one backend x ok, error"
    );
    assert_eq!(series("otp_store_errors_total{"), 6, "one series per op");
}

// See: issue 16 (with `auto`, each routed backend exists at 0 and counts).
#[tokio::test]
async fn under_auto_deliveries_are_counted_by_the_routed_backend() {
    let mut registry = Registry::default();
    let metrics = Arc::new(ServiceMetrics::default());
    metrics.register(&mut registry);
    let outbox = Outbox::new();
    let router = AutoRouter::new(
        outbox.clone(),
        Arc::new(FailingDelivery::Rejected),
        outbox.clone(),
    );
    let service = OtpService::builder(config(), crate::harness::tokens())
        .delivery(Arc::new(router))
        .metrics(metrics.clone())
        .build();
    let fresh = lines(&registry);
    for backend in ["outbox", "failing"] {
        for outcome in ["ok", "error"] {
            assert_line(
                &fresh,
                &format!(r#"otp_deliveries_total{{backend="{backend}",outcome="{outcome}"}} 0"#),
            );
        }
    }
    let ctx = RequestContext::default();
    service.request_otp("m@example.com", &ctx).await.unwrap();
    assert!(matches!(
        service.request_otp("+14155550100", &ctx).await,
        Err(ServiceError::DeliveryFailed(_))
    ));
    let after = lines(&registry);
    for (backend, outcome, count) in [
        ("outbox", "ok", 1),
        ("outbox", "error", 0),
        ("failing", "ok", 0),
        ("failing", "error", 1),
    ] {
        assert_line(
            &after,
            &format!(r#"otp_deliveries_total{{backend="{backend}",outcome="{outcome}"}} {count}"#),
        );
    }
    assert!(
        !after.iter().any(|l| l.contains(r#"backend="auto""#)),
        "the router's own name is not a backend"
    );
}
