//! End-to-end: the three SDKs (Rust `otp-client`, JavaScript, Python)
//! against the REAL `otp-server` binary, whose webhook delivery lands in a
//! receiver in this test process (`sdk_support::CodeReceiver`), so every
//! suite can read the code a user would have received.
//!
//! One `#[test]` per SDK (plus one for offline JWKS verification), each with
//! its own receiver and server, so a failure names the SDK. The JS and
//! Python suites get the environment contract of
//! `sdk/javascript/test-support/e2e-env.mjs` / `sdk/python/tests/support.py`
//! (`OTP_BASE_URL`, `OTP_CODES_URL`, `OTP_RATE_LIMIT_REQUESTS`,
//! `OTP_UNREACHABLE_URL`, `OTP_BROWSER_PORT`, and for the session suites
//! `OTP_SHORT_TTL_BASE_URL`/`OTP_SHORT_ACCESS_TTL`: a second server whose
//! access tokens live a few seconds) and run as bounded
//! subprocesses. A missing runtime (node, node_modules, python3) skips that
//! test with a message, or fails it under `OTP_E2E_REQUIRE_ALL=1`.

use crate::sdk_support;
use crate::snippets::verify_jsonwebtoken;
use crate::support;

// The README's login example, compiled here and run against the server.
#[allow(dead_code)]
#[path = "../../../otp-client/examples/login.rs"]
mod login_example;

use std::process::Command;
use std::time::Duration;

use otp_client::token::TokenConfig;
use otp_client::{Error, OtpClient, UnauthorizedReason};
use sdk_support::{
    refresh_requests, repo_root, run_bounded, E2eEnv, Finished, RATE_LIMIT_REQUESTS,
    SHORT_ACCESS_TTL,
};
use support::{free_port, require_all, skip_without};

/// A fresh identity, so tests never share limits or codes.
fn identity(prefix: &str) -> String {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{prefix}-{:x}{:x}@example.com", n, std::process::id())
}

/// A code of the same length that differs in every digit.
fn wrong_code_for(code: &str) -> String {
    code.chars()
        .map(|c| char::from_digit((c.to_digit(10).unwrap_or(0) + 1) % 10, 10).unwrap_or('0'))
        .collect()
}

fn client(env: &E2eEnv) -> OtpClient {
    OtpClient::builder(&env.server.url)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_against_the_server() {
    let env = E2eEnv::start(|b| b);

    // The README example (examples/login.rs), verbatim.
    let who = identity("rs-readme");
    let receiver = &env.receiver;
    let signed_in = login_example::login(&env.server.url, &who, |id| async move {
        Ok(receiver.wait_code(&id, None).await)
    })
    .await
    .expect("the README login signs in");
    let token = signed_in
        .access_token()
        .expect("the example keeps the token");
    let status = signed_in.introspect_token(&token).await.unwrap();
    assert!(status.active);
    assert_eq!(status.claims.unwrap()["sub"], who.as_str());

    // Full login, field by field.
    let c = client(&env);
    let who = identity("rs-login");
    let sent = c.request_otp(&who).await.expect("request");
    assert!(sent.success);
    assert_eq!(sent.message, "OTP sent successfully.");
    assert!(sent.ttl_seconds > 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(sent.expires_at > now);
    assert_eq!(sent.rate_limit_remaining, RATE_LIMIT_REQUESTS - 1);
    let code = env.receiver.wait_code(&who, None).await;
    let verified = c.verify_otp(&who, &code).await.expect("verify");
    assert_eq!(verified.message, "OTP verified successfully.");
    assert_eq!(verified.token_type, "bearer");
    assert!(verified.expires_in > 0);
    assert_eq!(
        c.access_token().as_deref(),
        Some(verified.access_token.as_str())
    );
    let bearer = c.verify_bearer().await.expect("bearer");
    assert!(bearer.active);
    let claims = bearer.claims.clone().unwrap();
    assert_eq!(claims["sub"], who.as_str());
    assert!(claims["exp"].as_u64().unwrap() > now);
    assert_eq!(
        c.introspect_token(&verified.access_token).await.unwrap(),
        bearer
    );
    c.clear_tokens();
    assert!(matches!(
        c.verify_bearer().await,
        Err(Error::Unauthorized {
            reason: UnauthorizedReason::Missing,
            ..
        })
    ));

    // Replay: the same code a second time.
    let err = client(&env).verify_otp(&who, &code).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOtp { .. }), "replay: {err:?}");

    // Wrong code.
    let c = client(&env);
    let who = identity("rs-wrong");
    c.request_otp(&who).await.unwrap();
    let code = env.receiver.wait_code(&who, None).await;
    let err = c
        .verify_otp(&who, &wrong_code_for(&code))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidOtp { .. }),
        "wrong code: {err:?}"
    );
    assert_eq!(err.status(), Some(400));
    assert_eq!(c.access_token(), None, "nothing stored after a failure");

    // Rate limit: RATE_REQUEST_OTP_MAX sends, then 429 with Retry-After.
    let who = identity("rs-limit");
    let mut remaining = u32::MAX;
    for _ in 0..RATE_LIMIT_REQUESTS {
        let sent = c.request_otp(&who).await.unwrap();
        assert!(sent.rate_limit_remaining < remaining);
        remaining = sent.rate_limit_remaining;
    }
    assert_eq!(remaining, 0);
    match c.request_otp(&who).await.unwrap_err() {
        Error::RateLimited {
            retry_after: Some(wait),
            message,
        } => {
            assert!(wait > Duration::ZERO, "{wait:?}");
            assert_eq!(
                message,
                "Too many OTP requests. Please wait before requesting again."
            );
        }
        other => panic!("expected RateLimited with Retry-After, got {other:?}"),
    }

    // Garbage tokens.
    let err = c.verify_bearer_token("not.a.token").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                reason: UnauthorizedReason::Invalid,
                ..
            }
        ),
        "{err:?}"
    );
    for garbage in ["not.a.token", "garbage"] {
        let status = c.introspect_token(garbage).await.unwrap();
        assert!(!status.active);
        assert!(status.claims.is_none());
    }

    // Bad identity: 422 with the offending field.
    match c.request_otp("   ").await.unwrap_err() {
        Error::Validation { details, .. } => assert!(!details.is_empty()),
        other => panic!("expected Validation, got {other:?}"),
    }
    // A code that is not 4..=10 digits.
    assert!(matches!(
        c.verify_otp("a@example.com", "12ab").await,
        Err(Error::Validation { .. })
    ));

    // Health and JWKS (HS256: no public key, so no offline verification).
    assert_eq!(c.health().await.unwrap().service, "stateless-otp");
    assert!(c.jwks().await.unwrap().keys.is_empty());
    let err = c
        .offline_verifier(TokenConfig::default())
        .verify(&verified.access_token)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Jwks(_)), "{err:?}");

    // Nothing listens: a typed transport error.
    let down = OtpClient::builder(&env.unreachable_url)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = down.request_otp(&identity("rs-down")).await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(err.code(), "network_error");
}

// See: issue 14 (SDKs): sign in, refresh, use the new token, log out, and
// the spent session refused; an expired access token refreshed once and
// the call retried; N concurrent callers make one refresh request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_refreshes_logs_out_and_refreshes_an_expired_token_once() {
    // Access tokens that live a few seconds (not one: `exp` is whole
    // seconds, so a one-second token may live a tenth of one, too short for
    // a refresh and its retry on a busy machine); sessions by default.
    let env = E2eEnv::start(|b| b.env("ACCESS_TOKEN_TTL", SHORT_ACCESS_TTL.to_string()));
    let c = client(&env);
    let who = identity("rs-session");
    c.request_otp(&who).await.unwrap();
    let code = env.receiver.wait_code(&who, None).await;
    let verified = c.verify_otp(&who, &code).await.unwrap();
    let first_refresh = verified.refresh_token.clone().expect("a session");
    assert!(first_refresh.starts_with("ort1_"));
    assert_eq!(c.refresh_token().as_deref(), Some(first_refresh.as_str()));

    // An explicit refresh rotates both tokens; the new access token works.
    let fresh = c.refresh().await.expect("refresh");
    assert_ne!(fresh.refresh_token, first_refresh);
    assert_ne!(fresh.access_token, verified.access_token);
    assert_eq!(
        c.access_token().as_deref(),
        Some(fresh.access_token.as_str())
    );
    assert_eq!(
        c.verify_bearer().await.unwrap().claims.unwrap()["sub"],
        who.as_str()
    );

    // The access token expires; 8 concurrent calls refresh once and retry.
    tokio::time::sleep(Duration::from_millis(
        u64::from(SHORT_ACCESS_TTL) * 1000 + 1200,
    ))
    .await;
    let expired = c.access_token().unwrap();
    let err = c.verify_bearer_token(&expired).await.unwrap_err();
    assert_eq!(err.code(), "token_expired", "the stored token has expired");
    let before = refresh_requests(&env.server.url).await;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.verify_bearer().await })
        })
        .collect();
    for caller in callers {
        let me = caller.await.unwrap().expect("refreshed once and retried");
        assert_eq!(me.claims.unwrap()["sub"], who.as_str());
    }
    assert_eq!(
        refresh_requests(&env.server.url).await - before,
        1,
        "eight callers, one refresh request"
    );
    assert_ne!(c.access_token().unwrap(), expired);
    let spent = c.refresh_token().unwrap();

    // Logout ends the session: its refresh token is refused afterwards.
    c.logout().await.expect("logout");
    assert!(c.tokens().is_empty());
    let other = OtpClient::builder(&env.server.url)
        .refresh_token(spent)
        .build()
        .unwrap();
    let err = other.refresh().await.unwrap_err();
    assert!(
        matches!(err, Error::SessionRevoked { .. }),
        "a logged-out session: {err:?}"
    );
    assert!(other.tokens().is_empty(), "the dead session is forgotten");

    // Sign out everywhere, from one device, ends the other device's session.
    let (phone, laptop) = (client(&env), client(&env));
    let mut previous = code;
    for device in [&phone, &laptop] {
        device.request_otp(&who).await.unwrap();
        previous = env.receiver.wait_code(&who, Some(&previous)).await;
        device.verify_otp(&who, &previous).await.unwrap();
    }
    assert_ne!(phone.refresh_token(), laptop.refresh_token());
    phone
        .logout_everywhere()
        .await
        .expect("sign out everywhere");
    assert!(phone.tokens().is_empty());
    let err = laptop.refresh().await.unwrap_err();
    assert!(
        matches!(err, Error::SessionRevoked { .. }),
        "the other device's session ended: {err:?}"
    );
}

/// A server signing EdDSA tokens (a fresh key from `otp-server keygen
/// ed25519`) for the audience `orders`.
fn eddsa_env() -> E2eEnv {
    let keygen = Command::new(support::bin())
        .args(["keygen", "ed25519"])
        .output()
        .expect("otp-server keygen ed25519");
    assert!(keygen.status.success(), "keygen failed");
    let key = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    E2eEnv::start(|b| {
        b.env("JWT_ALGORITHM", "EdDSA")
            .env("JWT_ED25519_PRIVATE_KEY", key)
            .env("TOKEN_AUDIENCE", "orders")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_verifies_eddsa_tokens_offline_against_the_jwks() {
    let env = eddsa_env();
    let c = client(&env);
    let jwks = c.jwks().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kty, "OKP");

    let who = identity("rs-eddsa");
    c.request_otp(&who).await.unwrap();
    let code = env.receiver.wait_code(&who, None).await;
    let token = c.verify_otp(&who, &code).await.unwrap().access_token;

    let config = TokenConfig {
        audience: "orders".into(),
        ..TokenConfig::default()
    };
    let verifier = c.offline_verifier(config.clone());
    for _ in 0..3 {
        let claims = verifier.verify(&token).await.expect("offline verify");
        assert_eq!(claims.sub, who);
        assert_eq!(claims.amr, vec!["otp".to_owned()]);
    }
    assert_eq!(verifier.fetch_count(), 1, "the JWKS is fetched once");
    // The server agrees.
    assert_eq!(
        c.verify_bearer().await.unwrap().claims.unwrap()["sub"],
        who.as_str()
    );

    // A tampered signature, the wrong audience, and expiry are all refused.
    let forged = forge_signature(&token);
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(Error::Token(_))
    ));
    let wrong_aud = c.offline_verifier(TokenConfig::default());
    let err = wrong_aud.verify(&token).await.unwrap_err();
    assert!(
        matches!(&err, Error::Token(e) if e.check() == "wrong_audience"),
        "{err:?}"
    );
    let exp = verifier.verify(&token).await.unwrap().exp;
    let err = verifier.verify_at(&token, exp + 1).await.unwrap_err();
    assert!(matches!(&err, Error::Token(e) if e.is_expired()), "{err:?}");

    // A token from another EdDSA server (unknown kid) triggers one refetch
    // and is refused.
    let other = otp_core::TokenService::new(
        otp_core::TokenKeys::single(
            otp_core::SigningKey::ed25519_from_pkcs8(
                otp_core::generate_ed25519_pkcs8().unwrap().expose(),
            )
            .unwrap(),
        ),
        config,
    )
    .unwrap();
    let stranger = other.issue_now(&who, Default::default()).unwrap().token;
    let fresh = c.offline_verifier(TokenConfig {
        audience: "orders".into(),
        ..TokenConfig::default()
    });
    fresh.verify(&token).await.unwrap();
    let err = fresh.verify(&stranger).await.unwrap_err();
    assert!(
        matches!(&err, Error::Token(e) if e.check() == "unknown_kid"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_types_expired_tokens_and_failed_deliveries() {
    // Tokens that live one second, and no sessions: nothing to refresh with.
    let env = E2eEnv::start(|b| b.env("ACCESS_TOKEN_TTL", "1").env("SESSIONS", "off"));
    let c = client(&env);
    let who = identity("rs-expiry");
    c.request_otp(&who).await.unwrap();
    let code = env.receiver.wait_code(&who, None).await;
    let verified = c.verify_otp(&who, &code).await.unwrap();
    assert_eq!(verified.expires_in, 1);
    assert_eq!(verified.refresh_token, None, "SESSIONS=off");
    assert_eq!(c.refresh_token(), None);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = c.verify_bearer().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                reason: UnauthorizedReason::Expired,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "token_expired");
    assert!(
        !c.introspect_token(&verified.access_token)
            .await
            .unwrap()
            .active
    );

    // A webhook receiver that is not there: 502 delivery_failed.
    let nowhere = format!("http://127.0.0.1:{}/hook", free_port());
    let env = E2eEnv::start(|b| {
        b.env("WEBHOOK_URL", nowhere)
            .env("DELIVERY_MAX_ATTEMPTS", "1")
    });
    let err = client(&env)
        .request_otp(&identity("rs-undeliverable"))
        .await
        .unwrap_err();
    match &err {
        Error::DeliveryFailed { message } => {
            assert_eq!(message, "Failed to deliver OTP. Please try again.")
        }
        other => panic!("expected DeliveryFailed, got {other:?}"),
    }
    assert_eq!(err.status(), Some(502));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_retry_waits_for_a_server_that_is_starting() {
    // The client starts first; the server comes up a little later on the
    // port it was given. Refused connections are retried (bounded).
    let receiver = sdk_support::CodeReceiver::start();
    let port = free_port();
    let builder = E2eEnv::builder(&receiver).port(port);
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        builder.start()
    });
    let c = OtpClient::builder(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(5))
        .retry(otp_client::ClientRetryPolicy {
            max_retries: 40,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(250),
        })
        .build()
        .unwrap();
    let health = c.health().await.expect("retried until the server answered");
    assert_eq!(health.status, "ok");
    let server = starter.join().expect("server started");
    drop(server);
    // Without retry, the stopped server is a transport error at once.
    let err = OtpClient::new(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
}

/// Prints a suite's output and asserts it passed.
fn assert_passed(label: &str, run: &Finished) {
    let summary: Vec<&str> = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .filter(|l| {
            let l = l.trim_start();
            [
                "# tests",
                "# pass",
                "# fail",
                "# skipped",
                "# skip",
                "# todo",
                "Ran ",
                "OK",
                "FAILED",
                "SKIP",
            ]
            .iter()
            .any(|p| l.starts_with(p))
                || l.contains("skipped")
        })
        .collect();
    eprintln!("{label} summary:\n{}", summary.join("\n"));
    assert!(
        run.status.success(),
        "{label} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

/// Skips (true) or, under OTP_E2E_REQUIRE_ALL=1, fails when `present` is false.
fn skip_unless(present: bool, why: &str) -> bool {
    if present {
        return false;
    }
    assert!(!require_all(), "OTP_E2E_REQUIRE_ALL=1 but {why}");
    eprintln!("SKIP: {why}");
    true
}

#[test]
fn javascript_sdk_against_the_server() {
    if skip_without("node") {
        return;
    }
    let root = repo_root();
    let js = root.join("sdk/javascript");
    if skip_unless(
        js.join("node_modules/playwright-core").is_dir(),
        "sdk/javascript/node_modules is missing (run `npm ci` in sdk/javascript)",
    ) {
        return;
    }
    let browser_port = free_port();
    let cors = format!("http://127.0.0.1:{browser_port}");
    let env = E2eEnv::start(|b| b.env("CORS_ORIGINS", &cors));
    let short = env.start_short_ttl(|b| b.env("CORS_ORIGINS", &cors));
    let mut node = Command::new("node");
    node.args(["--test", "sdk/javascript/test/"])
        .current_dir(&root)
        .envs(env.contract())
        .envs(E2eEnv::short_ttl_contract(&short))
        .env("OTP_BROWSER_PORT", browser_port.to_string());
    let run = run_bounded(node, Duration::from_secs(300), "node --test");
    assert_passed("JavaScript SDK (node --test sdk/javascript/test/)", &run);
    assert!(env.receiver.deliveries() > 0, "the JS suites sent codes");
}

#[test]
fn python_sdk_against_the_server() {
    if skip_without("python3") {
        return;
    }
    let root = repo_root();
    let env = E2eEnv::start(|b| b);
    let short = env.start_short_ttl(|b| b);
    let mut python = Command::new("python3");
    python
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "sdk/python/tests",
            "-t",
            "sdk/python",
        ])
        .current_dir(&root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.contract())
        .envs(E2eEnv::short_ttl_contract(&short));
    let run = run_bounded(python, Duration::from_secs(300), "python3 -m unittest");
    assert_passed("Python SDK (python3 -m unittest discover)", &run);
    assert!(
        env.receiver.deliveries() > 0,
        "the Python suites sent codes"
    );
}

// See: issue 13 item 13. A suite whose runner exits while something it
// started (a browser) still runs must not leave that behind.
#[test]
fn a_suite_that_exits_leaving_a_child_behind_has_the_child_killed() {
    let mut sh = Command::new("sh");
    sh.args(["-c", "sleep 300 & echo $$ $!"]);
    let run = run_bounded(sh, Duration::from_secs(30), "leaves-a-child");
    assert!(run.status.success(), "{}", run.stderr);
    let pids: Vec<u32> = run
        .stdout
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    let [group, sleeper] = pids[..] else {
        panic!("expected two pids: {:?}", run.stdout)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !support::process_group_members(group).is_empty() && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !support::process_group_members(group).contains(&sleeper),
        "the child ({sleeper}) of the finished suite is still running"
    );
}

/// Runs a documented verification snippet (`program args…`) with the
/// server's URL and the audience in its environment: (exit ok?, stdout).
fn run_snippet(program: &str, args: &[&str], env: &E2eEnv, audience: &str) -> (bool, String) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(repo_root())
        .env("OTP_URL", &env.server.url)
        .env("TOKEN_AUDIENCE", audience)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let run = run_bounded(cmd, Duration::from_secs(60), program);
    (run.status.success(), run.stdout + &run.stderr)
}

// See: issue 16 ("verifying our tokens elsewhere"): the docs' jose and PyJWT
// snippets, verbatim from docs/verify-elsewhere.md, against a real EdDSA server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_jose_and_pyjwt_verify_our_eddsa_tokens_against_the_jwks() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/verify-elsewhere.md")).expect("docs");
    for (file, fence) in [
        ("sdk/javascript/examples/verify-jose.mjs", "js"),
        ("sdk/python/examples/verify_pyjwt.py", "python"),
    ] {
        let snippet = std::fs::read_to_string(root.join(file)).expect("snippet");
        assert!(
            doc.contains(&format!("```{fence}\n{snippet}```")),
            "docs/verify-elsewhere.md must show {file} verbatim"
        );
    }
    let has_jose = root.join("sdk/javascript/node_modules/jose").is_dir();
    let has_pyjwt = Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if skip_without("node")
        || skip_unless(has_jose, "jose is not installed (npm ci in sdk/javascript)")
        || skip_unless(has_pyjwt, "python3 lacks PyJWT with cryptography")
    {
        return;
    }

    let env = eddsa_env();
    let c = client(&env);
    let who = identity("stock-jwt");
    c.request_otp(&who).await.unwrap();
    let code = env.receiver.wait_code(&who, None).await;
    let token = c.verify_otp(&who, &code).await.unwrap().access_token;
    let forged = forge_signature(&token);

    let js = "sdk/javascript/examples/verify-jose.mjs";
    let py = "sdk/python/examples/verify_pyjwt.py";
    for (program, script) in [("node", js), ("python3", py)] {
        let (ok, out) = run_snippet(program, &[script, &token], &env, "orders");
        assert!(ok, "{script} refused a valid token: {out}");
        let claims: serde_json::Value = serde_json::from_str(out.trim()).expect("claims JSON");
        assert_eq!(claims["sub"], who.as_str(), "{script}");
        assert_eq!(claims["amr"], serde_json::json!(["otp"]));
        let (ok, out) = run_snippet(program, &[script, &forged], &env, "orders");
        assert!(
            !ok && out.contains("invalid token"),
            "{script} accepted a forged token: {out}"
        );
        let (ok, out) = run_snippet(program, &[script, &token], &env, "api");
        assert!(
            !ok && out.contains("invalid token"),
            "{script} ignored the audience: {out}"
        );
    }

    // The documented Express/Connect middleware, called as Express would.
    let probe = format!(
        "import {{ requireAccessToken }} from './{js}';\n\
         const call = (auth) => new Promise((done) => {{\n\
           const req = {{ headers: {{ authorization: auth }} }};\n\
           const res = {{ headers: {{}}, setHeader(k, v) {{ this.headers[k] = v; }}, end() {{ done(`${{this.statusCode}} ${{this.headers['WWW-Authenticate']}}`); }} }};\n\
           requireAccessToken(req, res, () => done(`next ${{req.user.sub}}`));\n\
         }});\n\
         console.log(await call('Bearer {token}'));\n\
         console.log(await call('Bearer {forged}'));\n\
         console.log(await call(undefined));\n"
    );
    let (ok, out) = run_snippet(
        "node",
        &["--input-type=module", "-e", &probe],
        &env,
        "orders",
    );
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("next {who}").as_str(),
            "401 Bearer error=\"invalid_token\"",
            "401 Bearer error=\"invalid_token\""
        ]
    );
}

// See: issue 16 ("verifying our tokens elsewhere"): the docs' Rust
// `jsonwebtoken` snippet, verbatim from docs/verify-elsewhere.md, against the
// JWKS of a real EdDSA server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_jsonwebtoken_verifies_our_eddsa_tokens_against_the_jwks() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/verify-elsewhere.md")).expect("docs");
    let file = "crates/otp-server/tests/server/snippets/verify_jsonwebtoken.rs";
    let snippet = std::fs::read_to_string(root.join(file)).expect("snippet");
    assert!(
        doc.contains(&format!("```rust\n{snippet}```")),
        "docs/verify-elsewhere.md must show {file} verbatim"
    );

    let env = eddsa_env();
    let c = client(&env);
    let who = identity("stock-jwt-rs");
    c.request_otp(&who).await.unwrap();
    let code = env.receiver.wait_code(&who, None).await;
    let token = c.verify_otp(&who, &code).await.unwrap().access_token;
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{}/.well-known/jwks.json", env.server.url))
            .await
            .expect("GET jwks")
            .json()
            .await
            .expect("a JWKS jsonwebtoken can read");
    let audience = "orders"; // eddsa_env's TOKEN_AUDIENCE

    let claims = verify_jsonwebtoken::verify(&token, &jwks, audience).expect("a valid token");
    assert_eq!(claims["sub"], who.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["otp"]));
    assert!(verify_jsonwebtoken::verify(&forge_signature(&token), &jwks, audience).is_err());
    assert!(verify_jsonwebtoken::verify(&token, &jwks, "another-service").is_err());
    let empty = jsonwebtoken::jwk::JwkSet { keys: vec![] };
    assert!(verify_jsonwebtoken::verify(&token, &empty, audience).is_err());
}

/// Runs `script` with `sh -e`, bounded; (success, stdout + stderr).
fn run_sh(script: &str) -> (bool, String) {
    let mut sh = Command::new("sh");
    sh.args(["-e", "-c", script]).current_dir(repo_root());
    let run = run_bounded(sh, Duration::from_secs(60), "readme-walk-through");
    (run.status.success(), run.stdout + &run.stderr)
}

// See: issue 13 item 12 (the README's step 3 used $TOKEN without setting it).
#[test]
fn the_readme_curl_walk_through_runs_as_written() {
    if skip_without("curl") {
        return;
    }
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let section = readme
        .split("## Walk-through with curl")
        .nth(1)
        .expect("README has the walk-through");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the walk-through's sh block");
    // The two things a reader changes: the port (here a free one) and the
    // code the dev server printed.
    let (step1, rest) = block
        .split_once("CODE=853284\n")
        .expect("the walk-through sets CODE=853284 before step 2");
    let mut server = support::Server::builder()
        .unset("OTP_SECRET_KEY")
        .unset("JWT_SECRET")
        .arg("--dev")
        .start();
    let url = server.url.clone();
    let at_port = |s: &str| s.replace("http://127.0.0.1:8000", &url);

    let (ok, out) = run_sh(&at_port(step1));
    assert!(ok && out.contains(r#""success":true"#), "step 1: {out}");
    let code = server
        .console_code("alice@example.com", Duration::from_secs(5))
        .expect("the dev server printed a code");
    let (ok, out) = run_sh(&format!("CODE={code}\n{}", at_port(rest)));
    assert!(ok, "steps 2 and 3: {out}");
    assert!(
        out.contains(r#""message":"OTP verified successfully.""#),
        "{out}"
    );
    assert!(out.contains("HTTP/1.1 200 OK"), "step 3 is not 200: {out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("x-auth-subject: alice@example.com"),
        "{out}"
    );
    assert!(out.contains(r#""active":true"#), "{out}");
}

/// `token` with one character in the middle of its signature changed.
///
/// Not the last character: of an Ed25519 signature's 86 base64url characters
/// the last carries 2 bits of the signature and 4 padding bits, so changing
/// it may leave the decoded signature as it was. Lenient decoders (jose,
/// PyJWT) then accept the "forged" token, and a test would fail by chance.
fn forge_signature(token: &str) -> String {
    let at = token.rfind('.').expect("a JWS has three segments") + 10;
    let mut forged = token.to_owned();
    let was = forged.as_bytes()[at];
    let with = if was == b'A' { "B" } else { "A" };
    forged.replace_range(at..=at, with);
    forged
}
