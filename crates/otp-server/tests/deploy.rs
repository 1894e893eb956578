//! What `deploy/` configures, run for real where it can be: the
//! `deploy/nginx` configuration rendered to loopback ports and served by the
//! Debian nginx (auth_request protecting a demo upstream; round robin over
//! three otp-server replicas sharing one `redis-server`), plus offline checks
//! of the Dockerfile, docker-compose, Kubernetes manifests (YAML parsed by
//! Python's `yaml`) and the systemd unit (`systemd-analyze verify`).
//!
//! A missing nginx, redis-server, python3 `yaml` or systemd-analyze skips
//! the test with a message, and fails it under `OTP_E2E_REQUIRE_ALL=1`.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{free_port, http, post_json, require_all, run_bin, skip_without, Server, TempDir};

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Replaces `from` by `to`, insisting that `from` occurs (so the test notices
/// when the deploy file changes shape).
fn must_replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy file no longer contains {from:?}"
    );
    text.replace(from, to)
}

/// A child process started in its own process group (see [`spawn_grouped`]),
/// killed with the whole group (nginx's workers too) and reaped on drop,
/// also when the test panics.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        support::kill_process_group(&mut self.0);
    }
}

/// Spawns `cmd` as the leader of a new process group, so [`Guard`] can stop
/// it and everything it forks.
fn spawn_grouped(cmd: &mut Command, what: &str) -> Child {
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"))
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("{what} exited early: {s}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `redis-server` on a free port, nothing persisted.
fn start_redis(dir: &TempDir) -> (Guard, u16) {
    let port = free_port();
    (start_redis_on(dir, port), port)
}

/// `redis-server` on `port`, nothing persisted.
fn start_redis_on(dir: &TempDir, port: u16) -> Guard {
    let mut child = spawn_grouped(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "redis-server",
    );
    wait_for_port(port, "redis-server", &mut child);
    Guard(child)
}

/// A tiny HTTP upstream that answers every request with 200 and a JSON
/// object of the request headers it received (lower-cased names).
fn echo_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || serve_echo(conn));
        }
    });
    port
}

fn serve_echo(conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut conn = conn;
    // Keep-alive: nginx reuses upstream connections.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = serde_json::Map::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.insert(k, json!(v.trim()));
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let out = json!({"path": path, "headers": headers}).to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// The deploy/nginx configuration rendered into `dir` with the three
/// replica addresses, the demo upstream and a free listen port, then
/// checked with `nginx -t` and started in the foreground.
fn start_nginx(dir: &TempDir, replicas: [u16; 3], demo: u16) -> (Guard, u16) {
    let port = free_port();
    let root = dir.0.display().to_string();
    std::fs::create_dir_all(dir.path("conf.d")).expect("conf.d");
    std::fs::create_dir_all(dir.path("cache")).expect("cache");
    std::fs::create_dir_all(dir.path("logs")).expect("logs");

    let mut main = repo_file("deploy/nginx/nginx.conf");
    main = must_replace(&main, "worker_processes auto;", "worker_processes 1;");
    main = must_replace(&main, "/var/run/nginx.pid", &format!("{root}/nginx.pid"));
    main = must_replace(&main, "/var/log/nginx/", &format!("{root}/logs/"));
    main = must_replace(&main, "/var/cache/nginx/", &format!("{root}/cache/"));
    main = must_replace(
        &main,
        "include /etc/nginx/conf.d/*.conf;",
        &format!("include {root}/conf.d/*.conf;"),
    );
    std::fs::write(dir.path("nginx.conf"), main).expect("write nginx.conf");

    let mut site = repo_file("deploy/nginx/conf.d/stateless-otp.conf");
    for (i, p) in replicas.iter().enumerate() {
        site = must_replace(
            &site,
            &format!("server otp-{}:8000", i + 1),
            &format!("server 127.0.0.1:{p}"),
        );
    }
    site = must_replace(
        &site,
        "server demo:80;",
        &format!("server 127.0.0.1:{demo};"),
    );
    site = must_replace(&site, "listen 8080;", &format!("listen 127.0.0.1:{port};"));
    std::fs::write(dir.path("conf.d/stateless-otp.conf"), site).expect("write site");

    let conf = dir.path("nginx.conf");
    let args = |cmd: &mut Command| {
        cmd.arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path("logs/error.log"))
            .arg("-g")
            .arg("daemon off;");
    };
    let mut test = Command::new("nginx");
    args(&mut test);
    let out = test.arg("-t").output().expect("nginx -t");
    assert!(
        out.status.success(),
        "nginx -t rejects the rendered deploy/nginx configuration:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd = Command::new("nginx");
    args(&mut cmd);
    let mut child = spawn_grouped(cmd.stdout(Stdio::null()).stderr(Stdio::null()), "nginx");
    wait_for_port(port, "nginx", &mut child);
    (Guard(child), port)
}

// See: issue 13 item 13 (nginx workers outlived the deploy tests).
#[test]
fn nginx_and_its_workers_are_gone_after_a_test_panics() {
    if skip_without("nginx") {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let dir = TempDir::new("nginx-panic");
        let (nginx, _port) = start_nginx(&dir, [free_port(); 3], free_port());
        let pgid = nginx.0.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while support::process_group_members(pgid).len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        tx.send((pgid, support::process_group_members(pgid)))
            .expect("send");
        panic!("a deploy test failing while nginx runs (expected by this test)");
    })
    .join();
    assert!(failed.is_err(), "the inner test panicked");
    let (pgid, running) = rx.recv().expect("nginx started");
    assert!(
        running.len() >= 2,
        "nginx master and worker were running: {running:?}"
    );
    assert_eq!(
        support::process_group_members(pgid),
        Vec::<u32>::new(),
        "nginx processes survived the panicking test"
    );
}

#[test]
fn nginx_auth_request_protects_the_demo_upstream() {
    if skip_without("nginx") {
        return;
    }
    let dir = TempDir::new("nginx-auth");
    let mut server = Server::builder()
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .start();
    let demo = echo_upstream();
    let (_nginx, port) = start_nginx(&dir, [server.port; 3], demo);
    let lb = format!("http://127.0.0.1:{port}");

    // No token, a malformed one, a forged subject header: 401, the upstream
    // is never reached.
    let r = http("GET", &format!("{lb}/demo/hello"), &[], None).expect("nginx answers");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "WWW-Authenticate passed through: {:?}",
        r.headers
    );
    assert_eq!(r.json()["error"], "unauthorized");
    let r = http(
        "GET",
        &format!("{lb}/demo/hello"),
        &[
            ("Authorization", "Bearer not.a.token"),
            ("X-Auth-Subject", "mallory"),
        ],
        None,
    )
    .expect("nginx answers");
    assert_eq!(r.status, 401);

    // Log in through nginx (the API is proxied too) with the console code.
    let r = post_json(
        &format!("{lb}/api/v1/otp/request"),
        &json!({"identity": "Alice@Example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = server
        .console_code("alice@example.com", Duration::from_secs(5))
        .expect("console code");
    let r = post_json(
        &format!("{lb}/api/v1/otp/verify"),
        &json!({"identity": "alice@example.com", "otp": code}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["access_token"].as_str().expect("token").to_owned();

    // With the token: the upstream gets the subject, whatever the client claims.
    let auth = format!("Bearer {token}");
    let r = http(
        "GET",
        &format!("{lb}/demo/hello?x=1"),
        &[
            ("Authorization", &auth),
            ("X-Auth-Subject", "mallory"),
            ("Remote-User", "mallory"),
        ],
        None,
    )
    .expect("nginx answers");
    assert_eq!(r.status, 200, "{}", r.body);
    let echoed = r.json();
    assert_eq!(echoed["path"], "/hello?x=1");
    assert_eq!(echoed["headers"]["x-auth-subject"], "alice@example.com");
    assert_eq!(echoed["headers"]["remote-user"], "alice@example.com");

    // Swagger UI (and its assets), OpenAPI and JWKS are published.
    for path in ["/docs", "/openapi.json", "/.well-known/jwks.json"] {
        let r = http("GET", &format!("{lb}{path}"), &[], None).expect("answers");
        assert_eq!(r.status, 200, "{path} through nginx");
    }
    let page = http("GET", &format!("{lb}/docs"), &[], None)
        .expect("docs")
        .body;
    let asset = page
        .split(['"', '\''])
        .find(|s| s.ends_with(".js") && !s.starts_with("http"))
        .expect("the docs page loads a script");
    // Relative to the page `/docs`, i.e. to `/`.
    let asset_url = format!(
        "{lb}/{}",
        asset.trim_start_matches("./").trim_start_matches('/')
    );
    assert_eq!(
        http("GET", &asset_url, &[], None).map(|r| r.status),
        Some(200),
        "{asset_url}"
    );

    // Metrics and probes are not exposed through the load balancer.
    let r = http("GET", &format!("{lb}/metrics"), &[], None).expect("answers");
    assert_eq!(r.status, 404);
    assert_eq!(
        http("GET", &format!("{lb}/health"), &[], None).map(|r| r.status),
        Some(200)
    );
}

#[test]
fn three_replicas_share_redis_behind_nginx() {
    if skip_without("nginx") || skip_without("redis-server") {
        return;
    }
    let dir = TempDir::new("replicas");
    let (_redis, redis_port) = start_redis(&dir);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let mut replicas: Vec<Server> = (0..3)
        .map(|_| {
            Server::builder()
                .env("STORE_BACKEND", "redis")
                .env("REDIS_URL", redis_url.clone())
                .env("TRUSTED_PROXIES", "127.0.0.1/32")
                .env("WORKERS", "1")
                .start()
        })
        .collect();
    let demo = echo_upstream();
    let (_nginx, port) = start_nginx(
        &dir,
        [replicas[0].port, replicas[1].port, replicas[2].port],
        demo,
    );
    let lb = format!("http://127.0.0.1:{port}");

    // Six requests for one identity through the round-robin balancer: five
    // sends are allowed in total (RATE_REQUEST_OTP_MAX=5), not five each.
    let identity = "bob@example.com";
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            post_json(
                &format!("{lb}/api/v1/otp/request"),
                &json!({ "identity": identity }),
            )
        })
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    // The five sends were spread over the replicas (each printed a code).
    std::thread::sleep(Duration::from_millis(200));
    for (i, r) in replicas.iter_mut().enumerate() {
        assert!(
            r.console_code(identity, Duration::from_secs(2)).is_some(),
            "replica {i} delivered no code: nginx did not spread the requests"
        );
    }

    // A code verified on one replica is spent on every replica.
    let carol = "carol@example.com";
    let r = post_json(
        &format!("{}/api/v1/otp/request", replicas[0].url),
        &json!({ "identity": carol }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = replicas[0]
        .console_code(carol, Duration::from_secs(5))
        .expect("code");
    let body = json!({"identity": carol, "otp": code});
    let first = post_json(&format!("{}/api/v1/otp/verify", replicas[1].url), &body);
    assert_eq!(
        first.status, 200,
        "verifies on another replica: {}",
        first.body
    );
    let again = post_json(&format!("{}/api/v1/otp/verify", replicas[2].url), &body);
    assert_eq!(
        again.status, 400,
        "replayed on a third replica: {}",
        again.body
    );
    assert_eq!(again.json()["error"], "otp_invalid");
    let via_lb = post_json(&format!("{lb}/api/v1/otp/verify"), &body);
    assert_eq!(via_lb.status, 400, "{}", via_lb.body);

    // The token from one replica opens the demo through any replica.
    let token = first.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let auth = format!("Bearer {token}");
    for _ in 0..3 {
        let r = http(
            "GET",
            &format!("{lb}/demo/"),
            &[("Authorization", &auth)],
            None,
        )
        .expect("nginx answers");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["headers"]["x-auth-subject"], carol);
    }
}

/// Parses YAML documents with Python's `yaml` into JSON; `None` = skipped.
fn yaml_docs(rel: &str) -> Option<Vec<serde_json::Value>> {
    let has_yaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_yaml {
        assert!(
            !require_all(),
            "python3 with the yaml module is required (OTP_E2E_REQUIRE_ALL=1)"
        );
        eprintln!("SKIP: python3 yaml module not available");
        return None;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{rel} is not valid YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("json from python");
    Some(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn known_variables() -> Vec<String> {
    let (code, out, _) = run_bin(&["env"], &[]);
    assert_eq!(code, 0);
    out.lines()
        .skip(2)
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

fn assert_known(vars: &[String], name: &str, file: &str) {
    assert!(
        vars.iter().any(|v| v == name),
        "{file} sets {name}, which otp-server does not read"
    );
}

#[test]
fn kubernetes_manifests_parse_and_use_real_variables_and_probes() {
    let vars = known_variables();
    let mut kinds = Vec::new();
    for file in [
        "deploy/k8s/configmap.yaml",
        "deploy/k8s/secret.yaml",
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/pdb.yaml",
        "deploy/k8s/hpa.yaml",
    ] {
        let Some(docs) = yaml_docs(file) else { return };
        for doc in docs {
            let kind = doc["kind"].as_str().expect("kind").to_owned();
            assert_eq!(doc["metadata"]["name"], "otp-server", "{file}");
            for key in ["data", "stringData"] {
                if let Some(map) = doc[key].as_object() {
                    for name in map.keys() {
                        assert_known(&vars, name, file);
                    }
                }
            }
            if kind == "Deployment" {
                let pod = &doc["spec"]["template"]["spec"];
                assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
                let c = &pod["containers"][0];
                assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
                assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
                assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
                assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
                for e in c["env"].as_array().into_iter().flatten() {
                    assert_known(&vars, e["name"].as_str().expect("env name"), file);
                }
                // The port the probes use is the one BIND_ADDRESS listens on.
                assert_eq!(c["ports"][0]["containerPort"], 8000);
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ]
    );
}

#[test]
fn compose_file_has_three_replicas_redis_nginx_and_a_demo() {
    let vars = known_variables();
    let Some(docs) = yaml_docs("deploy/docker-compose.yml") else {
        return;
    };
    let services = docs[0]["services"].as_object().expect("services");
    for name in ["otp-1", "otp-2", "otp-3", "redis", "nginx", "demo"] {
        assert!(services.contains_key(name), "compose lacks {name}");
    }
    for name in ["otp-1", "otp-2", "otp-3"] {
        let env = services[name]["environment"]
            .as_object()
            .expect("environment map");
        for k in env.keys() {
            assert_known(&vars, k, "docker-compose.yml");
        }
        assert_eq!(env["STORE_BACKEND"], "redis");
        assert_eq!(env["REDIS_URL"], "redis://redis:6379");
        assert_eq!(env["BIND_ADDRESS"], "0.0.0.0:8000");
    }
    let nginx = &services["nginx"];
    let mounts: Vec<&str> = nginx["volumes"]
        .as_array()
        .expect("nginx volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        mounts.iter().any(|m| m.starts_with("./nginx/nginx.conf:")),
        "{mounts:?}"
    );
    assert!(
        mounts.iter().any(|m| m.starts_with("./nginx/conf.d")),
        "{mounts:?}"
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_healthcheck() {
    let d = repo_file("deploy/Dockerfile");
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms[0].contains(" AS build"), "{froms:?}");
    assert!(d.contains("cargo build --release --locked -p otp-server"));
    let user = d
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("USER line");
    assert!(!user.contains("root") || user.contains("nonroot"), "{user}");
    let hc = d
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    assert!(hc.contains("\"healthcheck\""), "{hc}");
    assert!(d.contains("ENTRYPOINT [\"/usr/local/bin/otp-server\"]"));
    // The healthcheck command the image runs works against this binary.
    let (code, _, err) = run_bin(&["healthcheck", "--help"], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let unit = repo_file("deploy/systemd/otp-server.service");
    for directive in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(directive), "unit lacks {directive:?}");
    }
    if skip_without("systemd-analyze") {
        return;
    }
    // Verify a copy whose ExecStart points at the binary under test.
    let dir = TempDir::new("systemd");
    let rendered = must_replace(&unit, "/usr/local/bin/otp-server", support::bin());
    let path = dir.path("otp-server.service");
    std::fs::write(&path, rendered).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Complaints about other units on this machine are not ours.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("otp-server.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );

    // systemd's own exposure score (0 = locked down, 10 = unprotected).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    match text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for otp-server.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    {
        Some(score) => assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}"),
        None => eprintln!(
            "note: this systemd-analyze cannot score units offline: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

#[test]
fn otp_key_rotation_on_shared_redis_keeps_codes_single_use() {
    if skip_without("redis-server") {
        return;
    }
    let dir = TempDir::new("rotation");
    let (_redis, redis_port) = start_redis(&dir);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let old_key = support::TEST_OTP_KEY;
    let new_key = "bmV3LW90cC1rZXktYWZ0ZXItcm90YXRpb24tMDEyMzQ1";
    let replica = |current: &str, previous: Option<&str>| {
        let mut b = Server::builder()
            .env("STORE_BACKEND", "redis")
            .env("REDIS_URL", redis_url.clone())
            .env("OTP_SECRET_KEY", current)
            .env("WORKERS", "1");
        if let Some(p) = previous {
            b = b.env("OTP_PREVIOUS_SECRET_KEYS", p);
        }
        b.start()
    };
    let verify = |s: &Server, identity: &str, code: &str| {
        post_json(
            &format!("{}/api/v1/otp/verify", s.url),
            &json!({"identity": identity, "otp": code}),
        )
        .status
    };
    let request = |s: &mut Server, identity: &str| {
        let r = post_json(
            &format!("{}/api/v1/otp/request", s.url),
            &json!({ "identity": identity }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        s.console_code(identity, Duration::from_secs(5))
            .expect("code")
    };

    // Before the rotation: one code verified, one sent and not yet used.
    let mut before = replica(old_key, None);
    let used = request(&mut before, "used@example.com");
    assert_eq!(verify(&before, "used@example.com", &used), 200);
    let pending = request(&mut before, "pending@example.com");

    // Rotation step 1 on another replica: new key, old key verify-only.
    let mut after = replica(new_key, Some(old_key));
    assert!(
        after.stderr().contains("Pin STORE_HASH_KEY"),
        "warns about the unpinned store key"
    );
    assert_eq!(
        verify(&after, "used@example.com", &used),
        400,
        "a code verified before the rotation must not verify again after it"
    );
    assert_eq!(
        verify(&after, "pending@example.com", &pending),
        200,
        "a code sent before the rotation still verifies once"
    );
    assert_eq!(verify(&before, "pending@example.com", &pending), 400);
    let fresh = request(&mut after, "fresh@example.com");
    assert_eq!(verify(&after, "fresh@example.com", &fresh), 200);
    assert_eq!(verify(&after, "fresh@example.com", &fresh), 400);
}

#[test]
fn a_replica_started_before_redis_waits_for_it() {
    if skip_without("redis-server") {
        return;
    }
    let dir = std::sync::Arc::new(TempDir::new("late-redis"));
    let redis_port = free_port();
    let d = dir.clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        start_redis_on(&d, redis_port)
    });
    // `start` waits (up to 20 s) for /healthz, i.e. until Redis answered.
    let mut server = Server::builder()
        .env("STORE_BACKEND", "redis")
        .env("REDIS_URL", format!("redis://127.0.0.1:{redis_port}"))
        .env("REDIS_STARTUP_WAIT_SECONDS", "15")
        .start();
    let _redis = late.join().expect("redis thread");
    assert!(
        server
            .stderr()
            .contains("Redis is not reachable yet; retrying"),
        "{}",
        server.stderr()
    );
    let r = post_json(
        &format!("{}/api/v1/otp/request", server.url),
        &json!({"identity": "late@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(server
        .console_code("late@example.com", Duration::from_secs(5))
        .is_some());
}

#[test]
fn an_unreachable_redis_stops_start_up_naming_redis_url_without_its_password() {
    let url = format!("redis://:hunter2-redis-pw@127.0.0.1:{}", free_port());
    let (code, _, err) = run_bin(
        &["serve", "--bind", &format!("127.0.0.1:{}", free_port())],
        &[
            ("OTP_SECRET_KEY", support::TEST_OTP_KEY),
            ("JWT_SECRET", support::TEST_JWT_SECRET),
            ("STORE_BACKEND", "redis"),
            ("REDIS_URL", &url),
            ("REDIS_STARTUP_WAIT_SECONDS", "0"),
        ],
    );
    assert_ne!(code, 0);
    let line = err.trim().lines().last().unwrap_or("");
    assert!(line.starts_with("otp-server: REDIS_URL:"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
}
