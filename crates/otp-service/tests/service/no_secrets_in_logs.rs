//! Nothing the service logs contains a code, a token or a secret (SPEC §3.5,
//! §7): every tracing event and span of a full run — requests, a verify, a
//! replay, wrong codes, a rate limit, a failed delivery and (with a real
//! redis-server) a store outage in both fail modes — is captured at TRACE
//! level and searched.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::harness::{
    config, memory_service, redis_store_fast, service_with, wrong_code, FailingDelivery, Outbox,
    JWT_SECRET, OTP_KEY,
};
use otp_core::OtpPolicy;
use otp_ratelimit::LimitPolicy;
use otp_service::{FailMode, RequestContext, ServiceConfig, VerifyOptions};
use otp_testkit as testkit;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every event and span on this thread at TRACE, no colours, no time, with
/// `spans` events, until the guard drops.
/// One capture at a time: two thread-local subscribers registered and
/// dropped concurrently race in tracing's interest cache and global level
/// hint, and a capture could then miss every event.
static CAPTURING: Mutex<()> = Mutex::new(());

/// A capture's subscriber guard, and the turn it holds (released after it).
type Capture = (
    tracing::subscriber::DefaultGuard,
    std::sync::MutexGuard<'static, ()>,
);

fn capture(spans: FmtSpan) -> (Captured, Capture) {
    let turn = CAPTURING.lock().unwrap_or_else(|e| e.into_inner());
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .without_time()
        .with_span_events(spans)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Tests of this binary run in parallel, each thread with or without a
    // subscriber of its own: a callsite first hit on another thread while
    // this subscriber was being registered can keep a cached "never"
    // interest and skip this thread's subscriber. Recompute every
    // callsite's interest now that it is registered.
    tracing::callsite::rebuild_interest_cache();
    (logs, (guard, turn))
}

/// Ten-digit codes, so no timestamp or counter in a log line can look like
/// one by chance (the subscriber also prints no time).
fn ten_digit_config() -> ServiceConfig {
    let mut c = config();
    c.policy = OtpPolicy::builder()
        .digits(otp_core::Digits::Ten)
        .build()
        .unwrap();
    c.limits.request_per_identity = LimitPolicy::per_secs("request_identity", 3, 600);
    c
}

#[tokio::test]
async fn codes_tokens_and_secrets_never_reach_the_logs() {
    let (logs, _guard) = capture(FmtSpan::FULL);

    let ctx = RequestContext::with_ip("192.0.2.44".parse().unwrap());
    let outbox = Outbox::new();
    let mut tokens = Vec::new();
    let id = "secret.person@example.com";

    // Memory store: success, replay, wrong codes, rate limit.
    let service = memory_service(ten_digit_config(), outbox.clone());
    service.request_otp(id, &ctx).await.unwrap();
    let code = outbox.last_code(id);
    let v = service
        .verify_otp(id, &code, &ctx, VerifyOptions::new())
        .await
        .unwrap();
    tokens.push(v.token.token.clone());
    // Sessions (SPEC §10): refresh, the same refresh in the grace, a reuse
    // after it, logout and revocation; refresh tokens never reach a log.
    let mut refresh_tokens = vec![v.refresh.clone().unwrap().token];
    let r1 = service.refresh(&refresh_tokens[0]).await.unwrap();
    assert!(service.refresh(&refresh_tokens[0]).await.is_ok());
    refresh_tokens.push(r1.refresh.token.clone());
    tokens.push(r1.token.token.clone());
    let r2 = service.refresh(&r1.refresh.token).await.unwrap();
    refresh_tokens.push(r2.refresh.token.clone());
    assert!(service.refresh(&refresh_tokens[0]).await.is_err(), "reuse");
    service.revoke(&r2.refresh.token).await.unwrap();
    assert!(service.logout(&r1.token.token, true).await.is_ok());
    assert!(service
        .verify_otp(id, &code, &ctx, VerifyOptions::new())
        .await
        .is_err());
    service.request_otp(id, &ctx).await.unwrap();
    let code2 = outbox.last_code(id);
    for _ in 0..5 {
        assert!(service
            .verify_otp(id, &wrong_code(&code2), &ctx, VerifyOptions::new())
            .await
            .is_err());
    }
    service.request_otp(id, &ctx).await.unwrap();
    assert!(service.request_otp(id, &ctx).await.is_err(), "rate limited");
    assert!(service.introspect(&tokens[0]).active);
    assert!(!service.introspect("not-a-token").active);

    // A failed delivery.
    let failing = memory_service(ten_digit_config(), Arc::new(FailingDelivery::Rejected));
    assert!(failing.request_otp(id, &ctx).await.is_err());

    // A Redis outage, closed and open, and the recovery.
    match testkit::started_redis_or_skip(
        "codes_tokens_and_secrets_never_reach_the_logs (outage part)",
    ) {
        Some(mut redis) => {
            let store = Arc::new(redis_store_fast(redis.url()).await);
            let mut closed_c = ten_digit_config();
            closed_c.fail_mode = FailMode::Closed;
            let mut open_c = ten_digit_config();
            open_c.fail_mode = FailMode::Open;
            let closed = service_with(closed_c, store.clone(), outbox.clone());
            let open = service_with(open_c, store, outbox.clone());
            closed.request_otp("redis-user", &ctx).await.unwrap();
            let c = outbox.last_code("redis-user");
            tokens.push(
                closed
                    .verify_otp("redis-user", &c, &ctx, VerifyOptions::new())
                    .await
                    .unwrap()
                    .token
                    .token,
            );
            redis.stop();
            assert!(closed.request_otp("redis-user", &ctx).await.is_err());
            assert!(closed
                .verify_otp("redis-user", &c, &ctx, VerifyOptions::new())
                .await
                .is_err());
            open.request_otp("redis-user", &ctx).await.unwrap();
            let c = outbox.last_code("redis-user");
            assert!(open
                .verify_otp("redis-user", &wrong_code(&c), &ctx, VerifyOptions::new())
                .await
                .is_err());
            tokens.push(
                open.verify_otp("redis-user", &c, &ctx, VerifyOptions::new())
                    .await
                    .unwrap()
                    .token
                    .token,
            );
            redis.restart().unwrap();
        }
        None => eprintln!("store-outage log lines not checked"),
    }

    let text = logs.text();
    if std::env::var_os("OTP_TEST_DUMP_LOGS").is_some() {
        eprintln!("{text}");
    }
    // The capture works and saw the interesting paths.
    assert!(text.contains("OTP delivery failed"), "{text}");
    assert!(text.contains("attempt budget used up"), "{text}");

    let mut codes: Vec<String> = Vec::new();
    for who in [id, "redis-user"] {
        codes.extend(outbox.codes(who));
    }
    assert!(codes.len() >= 4);
    for code in &codes {
        assert_eq!(code.len(), 10);
        assert!(
            !text.contains(code.as_str()),
            "a code reached the logs:\n{text}"
        );
        assert!(
            !text.contains(&wrong_code(code)),
            "a submitted code reached the logs"
        );
    }
    for token in &refresh_tokens {
        let body = token.trim_start_matches("ort1_");
        assert!(
            !text.contains(&body[..32]),
            "a refresh token reached the logs:\n{text}"
        );
    }
    // The audit events are there, with a pseudonym instead of the identity.
    for event in ["sign_in", "refresh", "refresh_reuse", "sign_out_everywhere"] {
        assert!(
            text.lines()
                .any(|l| l.contains("audit:") && l.contains(&format!("event=\"{event}\""))),
            "no audit event {event}:\n{text}"
        );
    }
    for token in &tokens {
        for segment in token.split('.').skip(1) {
            assert!(!text.contains(segment), "a token reached the logs:\n{text}");
        }
    }
    assert!(
        !text.contains(JWT_SECRET),
        "the JWT secret reached the logs"
    );
    assert_eq!(OTP_KEY, [b'Z'; 32]);
    // OTP_KEY is 32 bytes of 'Z' (0x5a); its base64 starts with "WlpaWlpa".
    assert!(
        !text.contains("ZZZZZZZZ") && !text.contains("WlpaWlpa"),
        "the OTP key reached the logs"
    );
    // Identities are not logged either (only their kind).
    assert!(!text.contains(id), "the identity reached the logs:\n{text}");
    assert!(
        !text.contains("192.0.2.44"),
        "the client IP reached the logs:\n{text}"
    );
}

// See: issue 17 (the span's kind is set when it opens instead of recorded
// afterwards; the lines must read as before).
#[tokio::test]
async fn a_verify_logs_inside_its_span_named_with_the_identity_kind() {
    let (logs, _guard) = capture(FmtSpan::NONE);
    let ctx = RequestContext::with_ip("192.0.2.45".parse().unwrap());
    let outbox = Outbox::new();
    let service = memory_service(config(), outbox.clone());
    // Warm up, then rebuild the interest cache: a callsite this path
    // registers for the first time can be registered by a sibling test's
    // thread with no subscriber and cached as "never" for every thread
    // (tracing-core's one-dispatch short path, tokio-rs/tracing#3611; seen
    // once in a `cargo test --workspace` run). Once every callsite of the
    // path is registered, the rebuild on this thread computes their
    // interest from this thread's subscriber.
    for id in ["warm@example.com", "+14155550199"] {
        service.request_otp(id, &ctx).await.unwrap();
        let code = outbox.last_code(id);
        let _ = service
            .verify_otp(id, &wrong_code(&code), &ctx, VerifyOptions::new())
            .await;
    }
    tracing::callsite::rebuild_interest_cache();
    for (id, kind) in [("ann@example.com", "email"), ("+14155550100", "phone")] {
        service.request_otp(id, &ctx).await.unwrap();
        let code = outbox.last_code(id);
        let wrong = service
            .verify_otp(id, &wrong_code(&code), &ctx, VerifyOptions::new())
            .await;
        assert!(wrong.is_err());
        let text = logs.text();
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("code_wrong"))
            .unwrap_or_else(|| panic!("no code_wrong line in {text}"));
        assert!(
            line.contains(&format!("verify_otp{{kind=\"{kind}\"}}: ")),
            "{line}"
        );
    }
    // An identity that does not parse is refused before the span opens.
    assert!(service
        .verify_otp("", "123456", &ctx, VerifyOptions::new())
        .await
        .is_err());
}
