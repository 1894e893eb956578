//! The `GATE_*` and `ALLOWED_IDENTITIES` settings as an operator meets them
//! (SPEC §11): `check-config` and `serve` refuse a gate without who may sign
//! in, without an https `GATE_URL` or a default redirect outside `--dev`,
//! and allowed hosts the session cookie cannot reach, each with one line
//! naming the variable; `--dev` defaults the gate to loopback http; the
//! binary serves the gate pages with `GATE=on` and not without, and its
//! JSON API sends no code to an identity outside `ALLOWED_IDENTITIES`.

use std::time::Duration;

use serde_json::json;

use crate::support::{http, post_json, run_bin, Server, TEST_JWT_SECRET, TEST_OTP_KEY};

/// A valid same-host gate outside `--dev`.
const SAME_HOST: [(&str, &str); 7] = [
    ("OTP_SECRET_KEY", TEST_OTP_KEY),
    ("JWT_SECRET", TEST_JWT_SECRET),
    ("DELIVERY_BACKEND", "console"),
    ("GATE", "on"),
    ("GATE_URL", "https://app.example.com"),
    ("GATE_ALLOWED_IDENTITIES", "*@example.com"),
    ("GATE_DEFAULT_REDIRECT", "https://app.example.com/"),
];

fn env_with<'a>(
    base: &[(&'a str, &'a str)],
    changes: &[(&'a str, Option<&'a str>)],
) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<_> = base
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .copied()
        .collect();
    env.extend(changes.iter().filter_map(|(k, v)| v.map(|v| (*k, v))));
    env
}

/// `check-config` with `env`: it must fail with exactly `line` (after the
/// binary's `otp-server: ` prefix) and so must `serve`.
#[track_caller]
fn refused(changes: &[(&str, Option<&str>)], line: &str) {
    let env = env_with(&SAME_HOST, changes);
    for command in ["check-config", "serve"] {
        let (code, _, err) = run_bin(&[command, "--bind", "127.0.0.1:1"], &env);
        assert_eq!(code, 2, "{command} {changes:?}: {err}");
        assert_eq!(
            err.trim(),
            format!("otp-server: {line}"),
            "{command} {changes:?}"
        );
    }
}

#[test]
fn gate_settings_refusals_are_one_line_naming_the_variable() {
    refused(
        &[("GATE_ALLOWED_IDENTITIES", None)],
        "GATE_ALLOWED_IDENTITIES: must be set with GATE=on: who may sign in, e.g. '*@example.com', 'alice@example.com +44*', or '*' for anyone",
    );
    refused(
        &[("GATE_URL", None)],
        "GATE_URL: must be set with GATE=on: the gate's public origin, like https://auth.example.com",
    );
    refused(
        &[("GATE_URL", Some("http://app.example.com"))],
        "GATE_URL: must be https outside --dev (the cookies are Secure), got 'http://app.example.com'",
    );
    refused(
        &[("GATE_DEFAULT_REDIRECT", None)],
        "GATE_DEFAULT_REDIRECT: must be set with GATE=on: where a sign-in without a valid rd lands, e.g. https://app.example.com/",
    );
    refused(
        &[("GATE_DEFAULT_REDIRECT", Some("//evil.example/"))],
        "GATE_DEFAULT_REDIRECT: '//evil.example/' is not an allowed redirect: it must be an absolute https URL on a host of GATE_ALLOWED_HOSTS (app.example.com)",
    );
    refused(
        &[("GATE_ALLOWED_IDENTITIES", Some("alice@example.com, bob*"))],
        "GATE_ALLOWED_IDENTITIES: entry 'bob*': '*' is only allowed as '*', '*@domain' or a phone prefix such as '+44*'",
    );
    refused(
        &[("ALLOWED_IDENTITIES", Some("+44x*"))],
        "ALLOWED_IDENTITIES: entry '+44x*': a phone prefix is '+', 1 to 15 digits (the first not 0), then '*'",
    );
    refused(
        &[("GATE_PATH", Some("/api"))],
        "GATE_PATH: /api is served by the API; choose another path, like /auth, got '/api'",
    );
    refused(
        &[("GATE", Some("yes please"))],
        "GATE: expected true or false, got 'yes please'",
    );
}

#[test]
fn check_config_refuses_allowed_hosts_the_session_cookie_cannot_reach() {
    // Host-only cookie: only GATE_URL's host.
    refused(
        &[("GATE_ALLOWED_HOSTS", Some("app.example.com,wiki.example.com"))],
        "GATE_ALLOWED_HOSTS: wiki.example.com cannot receive the session cookie: without GATE_COOKIE_DOMAIN the session cookie is host-only (app.example.com), so only GATE_URL's host can be allowed; set GATE_COOKIE_DOMAIN to a domain above both, or serve the app on app.example.com",
    );
    // A cookie domain: names at or under it.
    let cross = [
        ("GATE_URL", Some("https://auth.example.com")),
        ("GATE_COOKIE_DOMAIN", Some("example.com")),
        ("GATE_ALLOWED_HOSTS", Some("*.example.com, app.example.org")),
        ("GATE_DEFAULT_REDIRECT", Some("https://app.example.com/")),
    ];
    refused(
        &cross,
        "GATE_ALLOWED_HOSTS: app.example.org cannot receive the session cookie: the session cookie (Domain=example.com) reaches only example.com and names under it",
    );
    refused(
        &[
            ("GATE_URL", Some("https://auth.example.net")),
            ("GATE_COOKIE_DOMAIN", Some("example.com")),
        ],
        "GATE_COOKIE_DOMAIN: GATE_URL's host auth.example.net is not example.com or under it, so browsers would refuse the cookie",
    );
    // The same cross-subdomain layout with every host under the domain is valid.
    let ok = env_with(
        &SAME_HOST,
        &[
            ("GATE_URL", Some("https://auth.example.com")),
            ("GATE_COOKIE_DOMAIN", Some("example.com")),
            ("GATE_ALLOWED_HOSTS", Some("*.example.com")),
            ("GATE_DEFAULT_REDIRECT", Some("https://app.example.com/")),
            ("TRUSTED_PROXIES", Some("127.0.0.1/32")),
        ],
    );
    let (code, out, err) = run_bin(&["check-config"], &ok);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("configuration is valid\n"), "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in {out}"))
            .to_owned()
    };
    assert!(
        row("GATE").contains(" on ") && row("GATE").ends_with("(env)"),
        "{}",
        row("GATE")
    );
    assert!(row("GATE_PATH").contains("/auth") && row("GATE_PATH").ends_with("(default)"));
    assert!(row("GATE_COOKIE_DOMAIN").contains("example.com"));
    assert!(
        !out.lines().any(|l| l.starts_with("warning: GATE")),
        "no gate warning with TRUSTED_PROXIES set: {out}"
    );
}

#[test]
fn a_gate_without_trusted_proxies_or_gate_variables_without_the_gate_warn() {
    let (code, out, err) = run_bin(&["check-config"], &SAME_HOST);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "warning: GATE=on without TRUSTED_PROXIES: /api/v1/auth/forward ignores X-Forwarded-*"
        ),
        "{out}"
    );
    let off = env_with(&SAME_HOST, &[("GATE", Some("off"))]);
    let (code, out, err) = run_bin(&["check-config"], &off);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("warning: GATE_URL, GATE_ALLOWED_IDENTITIES, GATE_DEFAULT_REDIRECT set but GATE is off: the web gate is not served"),
        "{out}"
    );
}

#[test]
fn dev_gate_defaults_to_loopback_http_and_serves_the_pages() {
    let server = Server::builder()
        .arg("--dev")
        .env("GATE", "on")
        .env("GATE_ALLOWED_IDENTITIES", "*")
        .env("GATE_TITLE", "Example wiki")
        .start();
    let login = http("GET", &format!("{}/auth/login", server.url), &[], None).expect("login page");
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(
        login.body.contains("Example wiki"),
        "GATE_TITLE on the page"
    );
    // Not Secure in --dev: the CSRF cookie of the form is plain http.
    let cookies: Vec<&str> = login
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    let cookies = cookies.join("\n");
    assert!(
        cookies.contains("otp_csrf=") && !cookies.contains("Secure"),
        "{cookies}"
    );
    // Forward auth sends a browser to the renew URL on the defaulted GATE_URL.
    let forward = http(
        "GET",
        &format!("{}/api/v1/auth/forward", server.url),
        &[("Accept", "text/html")],
        None,
    )
    .expect("forward");
    assert_eq!(forward.status, 302, "{}", forward.body);
    let location = forward.header("location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("http://127.0.0.1:{}/auth/renew", server.port)),
        "{location}"
    );
    assert!(
        server
            .stderr()
            .contains("GATE_URL defaults to http://127.0.0.1:"),
        "dev note"
    );

    // GATE off (the default): no pages.
    let plain = Server::builder().arg("--dev").start();
    let r = http("GET", &format!("{}/auth/login", plain.url), &[], None).expect("answer");
    assert_eq!(r.status, 404);
}

#[test]
fn allowed_identities_on_the_binary_sends_no_code_to_a_refused_identity() {
    let mut server = Server::builder()
        .env("ALLOWED_IDENTITIES", "*@example.com, +44*")
        .start();
    let url = format!("{}/api/v1/otp/request", server.url);
    let refused = post_json(&url, &json!({"identity": "Eve@Evil.test"}));
    let allowed = post_json(&url, &json!({"identity": "ann@example.com"}));
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(refused.json(), allowed.json(), "the same answer");
    let code = server.console_code("ann@example.com", Duration::from_secs(10));
    assert!(code.is_some(), "the allowed identity got a code");
    // Console delivery prints in order: ann's block came after eve's
    // request was answered, so no block for eve will follow.
    assert_eq!(server.console_code("eve@evil.test", Duration::ZERO), None);
    let wrong = post_json(
        &format!("{}/api/v1/otp/verify", server.url),
        &json!({"identity": "eve@evil.test", "otp": "123456"}),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert_eq!(wrong.json()["error"], "otp_invalid");
}
