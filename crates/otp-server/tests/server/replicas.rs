//! Sessions across replicas (SPEC §10, issue 14): two REAL `otp-server`
//! processes on one real Redis — standalone, then a 3-master Cluster —
//! share every session fact through the store alone:
//!
//! - a refresh token rotated on A gets the same successor on B within the
//!   grace; reused on B after the grace, it revokes the session, and A then
//!   refuses the successor too;
//! - a logout on A, and a sign-out everywhere on A, are seen on B;
//! - 50 concurrent refreshes of one token split over A and B all answer 200
//!   with byte-identical successors, and that successor keeps working;
//! - one refresh is one Redis script call (one round trip) on Cluster,
//!   counted with `INFO commandstats` on every master;
//! - a refresh token is never an access token: `GET /api/v1/token/verify`
//!   answers 401, `/api/v1/token/introspect` `active: false`, and PyJWT
//!   with `JWT_SECRET` refuses it.

use std::time::Duration;

use otp_testkit::redis::{cluster_or_skip, started_redis_or_skip};
use serde_json::{json, Value};

use crate::support::{self, http, post_json, Server};

/// Replica A and B on the same store (`store_env`), 1 s reuse grace.
fn replicas(store_env: &[(&str, String)]) -> (Server, Server) {
    let start = || {
        let mut b = Server::builder()
            .env("STORE_BACKEND", "redis")
            .env("REFRESH_REUSE_GRACE_SECONDS", "1");
        for (k, v) in store_env {
            b = b.env(k, v.clone());
        }
        b.start()
    };
    (start(), start())
}

fn api(server: &Server, path: &str) -> String {
    format!("{}/api/v1{path}", server.url)
}

/// Signs `identity` in on `server` (console delivery): (access token,
/// refresh token).
pub(crate) fn sign_in(server: &mut Server, identity: &str) -> (String, String) {
    let r = post_json(
        &api(server, "/otp/request"),
        &json!({ "identity": identity }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = server
        .console_code(identity, Duration::from_secs(5))
        .expect("a console code");
    let r = post_json(
        &api(server, "/otp/verify"),
        &json!({ "identity": identity, "otp": code }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// `POST /token/refresh` on `server`: (status, body).
fn refresh(server: &Server, token: &str) -> (u16, Value) {
    refresh_at(&server.url, token)
}

fn refresh_at(base: &str, token: &str) -> (u16, Value) {
    let r = post_json(
        &format!("{base}/api/v1/token/refresh"),
        &json!({ "refresh_token": token }),
    );
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

fn revoked(status_body: (u16, Value)) -> bool {
    status_body.0 == 401 && status_body.1["error"] == "session_revoked"
}

/// Every cross-replica behaviour, on whatever store A and B share.
fn sessions_hold_across_replicas(a: &mut Server, b: &mut Server, tag: &str) {
    // Rotation on A; the grace answer on B; reuse on B after the grace
    // revokes the session, and A refuses the successor then.
    let (_, r0) = sign_in(a, &format!("rotate.{tag}@example.com"));
    let (s, on_a) = refresh(a, &r0);
    assert_eq!(s, 200, "{on_a}");
    let r1 = on_a["refresh_token"].as_str().unwrap().to_owned();
    let (s, on_b) = refresh(b, &r0);
    assert_eq!(s, 200, "{on_b}");
    assert_eq!(
        on_b["refresh_token"],
        r1.as_str(),
        "B answers the same successor within the grace"
    );
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(revoked(refresh(b, &r0)), "reuse after the grace, on B");
    assert!(revoked(refresh(a, &r1)), "the session is gone on A too");

    // Logout on A (with the refresh token), seen on B.
    let (_, r) = sign_in(a, &format!("logout.{tag}@example.com"));
    let out = post_json(&api(a, "/logout"), &json!({ "refresh_token": r }));
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(revoked(refresh(b, &r)), "logout on A, refused on B");

    // Sign out everywhere on A (bearer access token of one session) ends
    // the other session too, on B.
    let id = format!("everywhere.{tag}@example.com");
    let (access1, _) = sign_in(a, &id);
    let (_, other) = sign_in(b, &id);
    let out = http(
        "POST",
        &api(a, "/logout"),
        &[("Authorization", &format!("Bearer {access1}"))],
        Some(r#"{"all": true}"#),
    )
    .unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        revoked(refresh(b, &other)),
        "signed out everywhere, refused on B"
    );

    // 50 concurrent refreshes of one token, split over A and B.
    let (_, token) = sign_in(a, &format!("race.{tag}@example.com"));
    let bases = [a.url.clone(), b.url.clone()];
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let (base, token) = (bases[i % 2].clone(), token.clone());
            std::thread::spawn(move || refresh_at(&base, &token))
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let successors: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(_, b)| b["refresh_token"].as_str().unwrap())
        .collect();
    assert_eq!(
        successors.len(),
        1,
        "byte-identical successors: {successors:?}"
    );
    let successor = successors.into_iter().next().unwrap().to_owned();
    let (s, next) = refresh(b, &successor);
    assert_eq!(s, 200, "the successor keeps working: {next}");
    let (s, _) = refresh(a, next["refresh_token"].as_str().unwrap());
    assert_eq!(s, 200, "and its successor on A");

    // A refresh token is never an access token.
    let r = http(
        "GET",
        &api(b, "/token/verify"),
        &[("Authorization", &format!("Bearer {successor}"))],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post_json(&api(b, "/token/introspect"), &json!({ "token": successor }));
    assert_eq!(
        (r.status, r.json()["active"].clone()),
        (200, json!(false)),
        "{}",
        r.body
    );
}

#[test]
fn sessions_hold_across_two_replicas_on_redis_standalone() {
    let Some(redis) =
        started_redis_or_skip("sessions_hold_across_two_replicas_on_redis_standalone")
    else {
        return;
    };
    let (mut a, mut b) = replicas(&[("REDIS_URL", redis.url())]);
    sessions_hold_across_replicas(&mut a, &mut b, "standalone");
}

#[test]
fn sessions_hold_across_two_replicas_on_a_redis_cluster() {
    let Some(cluster) = cluster_or_skip("sessions_hold_across_two_replicas_on_a_redis_cluster")
    else {
        return;
    };
    let (mut a, mut b) = replicas(&[
        ("REDIS_URL", cluster.urls().join(",")),
        ("REDIS_CLUSTER", "true".into()),
    ]);
    sessions_hold_across_replicas(&mut a, &mut b, "cluster");

    // One Redis round trip per refresh on Cluster: the commands the three
    // masters served for one refresh (a warm one: the scripts are loaded),
    // PING / INFO / CLUSTER and connection commands left out.
    let (_, token) = sign_in(&mut a, "roundtrip.cluster@example.com");
    let (s, warm) = refresh(&a, &token);
    assert_eq!(s, 200, "{warm}");
    let before = data_commands(&cluster);
    let (s, next) = refresh(&b, warm["refresh_token"].as_str().unwrap());
    let after = data_commands(&cluster);
    assert_eq!(s, 200, "{next}");
    let spent: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, d)| *d > 0)
        .collect();
    // INFO commandstats also counts the commands a script runs inside the
    // server (its TIME, HMGET, …): the round trips are the script calls.
    let scripts: u64 = spent
        .iter()
        .filter(|(k, _)| k == "evalsha" || k == "eval")
        .map(|(_, d)| d)
        .sum();
    assert_eq!(
        scripts, 1,
        "one script call (one round trip) per refresh: {spent:?}"
    );
    eprintln!("one refresh on Cluster: {spent:?} (all but evalsha inside the script)");
}

/// Calls per command over every master (`INFO commandstats`), without the
/// commands that are no data access (health pings, topology, connection
/// set-up, the INFO itself).
fn data_commands(cluster: &otp_testkit::RedisCluster) -> std::collections::BTreeMap<String, u64> {
    const NOT_DATA: &[&str] = &[
        "ping", "info", "cluster", "command", "client", "hello", "readonly", "select", "auth",
    ];
    let mut calls = std::collections::BTreeMap::new();
    for node in cluster.nodes() {
        let info = node
            .cli(&["INFO", "commandstats"])
            .expect("INFO commandstats");
        for line in info.lines() {
            let Some((name, rest)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let base = name.split('|').next().unwrap_or(name);
            if NOT_DATA.contains(&base) {
                continue;
            }
            let n: u64 = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            *calls.entry(name.to_owned()).or_insert(0) += n;
        }
    }
    calls
}

#[test]
fn pyjwt_with_the_jwt_secret_refuses_a_refresh_token() {
    if !otp_testkit::sinks::python_has("jwt") {
        return;
    }
    let mut server = Server::builder().start();
    let (access, refresh) = sign_in(&mut server, "pyjwt.refresh@example.com");
    let script = r#"
import sys, jwt
secret, token = sys.argv[1], sys.argv[2]
try:
    jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False, "verify_iss": False})
    print("ACCEPTED")
except Exception as e:
    print("REFUSED", type(e).__name__)
"#;
    let run = |token: &str| {
        let out = std::process::Command::new("python3")
            .args(["-c", script, support::TEST_JWT_SECRET, token])
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // The access token verifies (the check itself works) …
    assert_eq!(run(&access), "ACCEPTED");
    // … the refresh token never does.
    let refused = run(&refresh);
    assert!(refused.starts_with("REFUSED"), "{refused}");
}
