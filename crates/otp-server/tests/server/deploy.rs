//! What `deploy/` configures, run for real where it can be: the
//! `deploy/nginx` configuration rendered to loopback ports and served by the
//! Debian nginx (auth_request protecting a demo upstream; round robin over
//! three otp-server replicas sharing one `redis-server`), plus offline checks
//! of the Dockerfile, docker-compose, Kubernetes manifests (YAML parsed by
//! Python's `yaml`) and the systemd unit (`systemd-analyze verify`).
//!
//! A missing nginx, redis-server, python3 `yaml` or systemd-analyze skips
//! the test with a message, and fails it under `OTP_E2E_REQUIRE_ALL=1`.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use otp_testkit::{nginx, ChildGuard};
use serde_json::json;
use support::{free_port, http, post_json, require_all, run_bin, skip_without, Server, TempDir};

pub(crate) fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Replaces `from` by `to`, insisting that `from` occurs (so the test notices
/// when the deploy file changes shape).
pub(crate) fn must_replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy file no longer contains {from:?}"
    );
    text.replace(from, to)
}

/// `redis-server` on a free port, nothing persisted.
fn start_redis(dir: &TempDir) -> (ChildGuard, u16) {
    let port = free_port();
    (start_redis_on(dir, port), port)
}

/// `redis-server` on `port`, nothing persisted.
fn start_redis_on(dir: &TempDir, port: u16) -> ChildGuard {
    start_redis_with(dir, port, &[])
}

/// `redis-server` on `port` with `extra` arguments, nothing persisted.
fn start_redis_with(dir: &TempDir, port: u16, extra: &[&str]) -> ChildGuard {
    let mut redis = ChildGuard::spawn(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "redis-server",
    );
    redis.wait_for_port(port, "redis-server");
    redis
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

/// A DNS server on 127.0.0.1 (UDP) that answers A queries from a table the
/// test changes while nginx runs (names → loopback addresses, TTL 1 s;
/// anything else NXDOMAIN). It stands in for Docker's embedded DNS at
/// 127.0.0.11, so the `resolver` of deploy/nginx runs for real.
struct Dns {
    port: u16,
    names: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, Vec<std::net::Ipv4Addr>>>,
    >,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Dns {
    fn start() -> Dns {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind dns");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let names = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (table, done) = (names.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = dns_reply(&buf[..n], &table.lock().expect("table")) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Dns { port, names, stop }
    }

    /// From now on `name` resolves to `addrs`.
    fn set(&self, name: &str, addrs: &[&str]) {
        let addrs = addrs.iter().map(|a| a.parse().expect("IPv4")).collect();
        self.names
            .lock()
            .expect("table")
            .insert(name.to_owned(), addrs);
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The answer to one DNS query (RFC 1035 §4): the question echoed, one A
/// record per address for a known name and type A, NXDOMAIN for an unknown
/// name. `None` for anything that is not a one-question query.
fn dns_reply(
    query: &[u8],
    names: &std::collections::HashMap<String, Vec<std::net::Ipv4Addr>>,
) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = query.get(i..i + 2)?;
    let question_end = i + 4;
    let name = labels.join(".");
    let addrs = names.get(&name);
    let answers: &[std::net::Ipv4Addr] = match addrs {
        Some(a) if qtype == [0, 1] => a,
        _ => &[],
    };
    let mut out = Vec::with_capacity(question_end + 16 * answers.len());
    out.extend_from_slice(&query[0..2]);
    // QR, RD, RA; RCODE 3 (NXDOMAIN) for a name we do not know.
    out.extend_from_slice(&[0x81, if addrs.is_some() { 0x80 } else { 0x83 }]);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    for a in answers {
        // Name: pointer to the question's; type A, class IN, TTL 1 s.
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]);
        out.extend_from_slice(&a.octets());
    }
    Some(out)
}

/// The deploy/nginx configuration rendered into `dir`: pid, logs and temp
/// files in `dir`, Docker's resolver replaced by `dns` (answers cached 1 s
/// instead of 5 s), the replicas' port (`otp` resolves through `dns`) and the
/// demo's, a free loopback listen port. Checked with `nginx -t`.
fn render_nginx(dir: &TempDir, dns: &Dns, otp_port: u16, demo_port: u16) -> (Command, u16) {
    let port = free_port();
    let cmd = render_nginx_files(dir, port, |site| {
        let site = must_replace(
            &site,
            "resolver 127.0.0.11 valid=5s ipv6=off;",
            &format!("resolver 127.0.0.1:{} valid=1s ipv6=off;", dns.port),
        );
        let site = must_replace(
            &site,
            "set $otp_upstream http://otp:8000;",
            &format!("set $otp_upstream http://otp:{otp_port};"),
        );
        must_replace(
            &site,
            "set $demo_upstream http://demo:80;",
            &format!("set $demo_upstream http://demo:{demo_port};"),
        )
    });
    nginx::check(&cmd);
    (cmd, port)
}

/// Writes nginx.conf and conf.d/ into `dir` with scratch paths and `listen`
/// on 127.0.0.1:`port`, the site passed through `edit`; the returned command
/// runs nginx on them in the foreground.
fn render_nginx_files(dir: &TempDir, port: u16, edit: impl FnOnce(String) -> String) -> Command {
    let site = repo_file("deploy/nginx/conf.d/stateless-otp.conf");
    let site = must_replace(&site, "listen 8080;", &format!("listen 127.0.0.1:{port};"));
    render_nginx_conf(dir, "stateless-otp.conf", &edit(site))
}

/// Writes deploy/nginx/nginx.conf into `dir` with scratch paths (pid, logs,
/// temp files, one worker) and `site` as `conf.d/<name>`; the returned
/// command runs nginx on them in the foreground. The site must already
/// listen on loopback only.
pub(crate) fn render_nginx_conf(dir: &TempDir, name: &str, site: &str) -> Command {
    assert!(
        site.lines()
            .filter(|l| l.trim_start().starts_with("listen "))
            .all(|l| l.contains("127.0.0.1:")),
        "a rendered nginx site must listen on loopback only:\n{site}"
    );
    let root = dir.path().display().to_string();
    std::fs::create_dir_all(dir.join("conf.d")).expect("conf.d");
    std::fs::create_dir_all(dir.join("cache")).expect("cache");
    std::fs::create_dir_all(dir.join("logs")).expect("logs");

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
    std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
    std::fs::write(dir.join("conf.d").join(name), site).expect("write site");

    nginx::command(dir, &dir.join("nginx.conf"))
}

/// Renders (see [`render_nginx`]) and starts nginx; returns its guard and port.
fn start_nginx(dir: &TempDir, dns: &Dns, otp_port: u16, demo_port: u16) -> (ChildGuard, u16) {
    let (cmd, port) = render_nginx(dir, dns, otp_port, demo_port);
    (nginx::start(cmd, port), port)
}

/// A DNS table where `demo` is the echo upstream on 127.0.0.1 and `otp` is
/// each of `replicas`.
fn dns_for(replicas: &[&str]) -> Dns {
    let dns = Dns::start();
    dns.set("otp", replicas);
    dns.set("demo", &["127.0.0.1"]);
    dns
}

#[test]
fn the_shipped_nginx_configuration_passes_nginx_t() {
    if skip_without("nginx") {
        return;
    }
    // Docker's resolver and the compose host names as they are: only paths
    // and the listen port are rendered. Variables in proxy_pass mean nothing
    // is resolved before a request needs it.
    let dir = TempDir::new("nginx-t");
    let cmd = render_nginx_files(&dir, free_port(), |site| site);
    nginx::check(&cmd);
}

// See: issue 16 (nginx resolved the replicas once, at start-up).
#[test]
fn nginx_finds_a_restarted_replica_at_its_new_address() {
    if skip_without("nginx") {
        return;
    }
    let dir = TempDir::new("nginx-restart");
    let port = free_port();
    let replica = |host: &str| {
        Server::builder()
            .host(host)
            .port(port)
            .env("TRUSTED_PROXIES", "127.0.0.1/32")
            .env("WORKERS", "1")
            .start()
    };
    let before = replica("127.0.0.2");
    let dns = dns_for(&["127.0.0.2"]);
    let (_nginx, lb_port) = start_nginx(&dir, &dns, port, echo_upstream());
    let lb = format!("http://127.0.0.1:{lb_port}");
    let health = || http("GET", &format!("{lb}/health"), &[], None).map(|r| r.status);
    assert_eq!(health(), Some(200));

    // The replica restarts and comes back at another address (a container
    // restart gets a new IP); until DNS says so, nginx has nowhere to go.
    drop(before);
    let after = replica("127.0.0.3");
    assert_eq!(health(), Some(502), "the old address is gone");
    dns.set("otp", &["127.0.0.3"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while health() != Some(200) {
        assert!(
            Instant::now() < deadline,
            "nginx never sent to the restarted replica: {}",
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = post_json(
        &format!("{lb}/api/v1/otp/request"),
        &json!({"identity": "restart@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(after);
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
        let dns = dns_for(&["127.0.0.1"]);
        let (nginx, _port) = start_nginx(&dir, &dns, free_port(), free_port());
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
        .env("DELIVERY_BACKEND", "console")
        .start();
    let dns = dns_for(&["127.0.0.1"]);
    let (_nginx, port) = start_nginx(&dir, &dns, server.port, echo_upstream());
    let lb = format!("http://127.0.0.1:{port}");

    // No token, a malformed one, a forged subject header: 401, the upstream
    // is never reached, and otp-server's challenge arrives exactly once.
    let r = http("GET", &format!("{lb}/demo/hello"), &[], None).expect("nginx answers");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_one_bearer_challenge(&r);
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
    assert_one_bearer_challenge(&r);

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

/// Exactly one `WWW-Authenticate`, a Bearer challenge (issue 16: nginx
/// copied otp-server's and the site added its own).
fn assert_one_bearer_challenge(r: &support::HttpResponse) {
    let challenges: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(challenges.len(), 1, "WWW-Authenticate: {:?}", r.headers);
    assert!(challenges[0].starts_with("Bearer"), "{challenges:?}");
}

#[test]
fn three_replicas_share_redis_behind_nginx() {
    if skip_without("nginx") || skip_without("redis-server") {
        return;
    }
    let dir = TempDir::new("replicas");
    let (_redis, redis_port) = start_redis(&dir);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    // One port, three loopback addresses: `otp` resolves to all of them,
    // as Docker's DNS resolves the compose alias to every replica.
    let hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let port = free_port();
    let mut replicas: Vec<Server> = hosts
        .iter()
        .map(|host| {
            Server::builder()
                .host(host)
                .port(port)
                .env("DELIVERY_BACKEND", "console")
                .env("STORE_BACKEND", "redis")
                .env("REDIS_URL", redis_url.clone())
                .env("TRUSTED_PROXIES", "127.0.0.1/32")
                .env("WORKERS", "1")
                .start()
        })
        .collect();
    let dns = dns_for(&hosts);
    let (_nginx, lb_port) = start_nginx(&dir, &dns, port, echo_upstream());
    let lb = format!("http://127.0.0.1:{lb_port}");

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
    // nginx spreads requests over every address the name resolves to (its
    // access log names the upstream of each request).
    for _ in 0..30 {
        assert_eq!(
            http("GET", &format!("{lb}/health"), &[], None).map(|r| r.status),
            Some(200)
        );
    }
    let log = std::fs::read_to_string(dir.join("logs/access.log")).expect("access log");
    for host in hosts {
        assert!(
            log.contains(&format!("upstream={host}:{port}/")),
            "no request reached {host}:\n{log}"
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
pub(crate) fn yaml_docs(rel: &str) -> Option<Vec<serde_json::Value>> {
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

pub(crate) fn known_variables() -> Vec<String> {
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

/// The default of `name` in `otp-server env`'s table (`None` for "—").
fn documented_default(name: &str) -> Option<String> {
    let (code, out, _) = run_bin(&["env"], &[]);
    assert_eq!(code, 0);
    out.lines()
        .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>())
        .find(|cols| cols.get(1) == Some(&format!("`{name}`").as_str()))
        .and_then(|cols| Some(cols.get(2)?.trim_matches('`').to_owned()))
        .filter(|d| d != "—")
}

/// Seconds a probe allows before the kubelet acts on it.
fn probe_window(probe: &serde_json::Value) -> u64 {
    let field = |k: &str, default: u64| probe[k].as_u64().unwrap_or(default);
    field("initialDelaySeconds", 0) + field("periodSeconds", 10) * field("failureThreshold", 3)
}

#[test]
fn kubernetes_manifests_parse_and_use_real_variables_and_probes() {
    let vars = known_variables();
    let Some(kustomization) = yaml_docs("deploy/k8s/kustomization.yaml") else {
        return;
    };
    let kustomization = &kustomization[0];
    let mut docs = Vec::new();
    for file in kustomization["resources"].as_array().expect("resources") {
        let file = format!("deploy/k8s/{}", file.as_str().expect("file name"));
        for doc in yaml_docs(&file).expect("yaml") {
            docs.push((file.clone(), doc));
        }
    }
    let kinds = |kind: &str| -> Vec<&serde_json::Value> {
        docs.iter()
            .filter(|(_, d)| d["kind"] == kind)
            .map(|(_, d)| d)
            .collect()
    };
    let mut all: Vec<&str> = docs
        .iter()
        .filter_map(|(_, d)| d["kind"].as_str())
        .collect();
    all.sort();
    assert_eq!(
        all,
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service"
        ]
    );
    for (file, doc) in &docs {
        assert_eq!(doc["metadata"]["name"], "otp-server", "{file}");
    }

    // No committed Secret for `kubectl apply -k` to blank: it is generated
    // from a file git ignores, whose example names only real variables.
    let generator = &kustomization["secretGenerator"][0];
    assert_eq!(generator["name"], "otp-server");
    let env_file = generator["envs"][0].as_str().expect("envs file");
    let ignored = repo_file(".gitignore");
    assert!(
        ignored
            .lines()
            .any(|l| l == format!("deploy/k8s/{env_file}")),
        ".gitignore must keep deploy/k8s/{env_file} out of git"
    );
    let example = repo_file(&format!("deploy/k8s/{env_file}.example"));
    let secret_names: Vec<&str> = example
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for name in [
        "OTP_SECRET_KEY",
        "JWT_SECRET",
        "STORE_HASH_KEY",
        "REDIS_URL",
    ] {
        assert!(
            secret_names.contains(&name),
            "{env_file}.example lacks {name}"
        );
    }
    for name in &secret_names {
        assert_known(&vars, name, "otp-server.secret.env.example");
    }

    let config = &kinds("ConfigMap")[0]["data"];
    for name in config.as_object().expect("data").keys() {
        assert_known(&vars, name, "configmap.yaml");
    }

    // The HPA owns the replica count.
    let hpa = kinds("HorizontalPodAutoscaler")[0];
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "otp-server");
    assert!(hpa["spec"]["minReplicas"].as_u64() >= Some(2));
    let deployment = kinds("Deployment")[0];
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "deployment.yaml sets replicas beside the HPA: each apply resets the HPA's count"
    );

    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"],
        format!("stateless-otp:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    for e in c["env"].as_array().into_iter().flatten() {
        assert_known(
            &vars,
            e["name"].as_str().expect("env name"),
            "deployment.yaml",
        );
    }
    let from = c["envFrom"].as_array().expect("envFrom");
    assert_eq!(from.len(), 1, "only the ConfigMap comes in as environment");
    assert_eq!(from[0]["configMapRef"]["name"], "otp-server");

    // Secrets come from the generated Secret's files (<NAME>_FILE): one per
    // key of the example env file, in the directory the Secret is mounted at.
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], generator["name"]);
    let mount = c["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == pod["volumes"][0]["name"])
        .expect("the Secret is mounted");
    assert_eq!(mount["readOnly"], true);
    let dir = mount["mountPath"].as_str().expect("mountPath");
    assert_eq!(
        pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsUser"],
        "the non-root user can read the mounted secret files"
    );
    let mut from_files: Vec<&str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            let name = e["name"].as_str()?.strip_suffix("_FILE")?;
            assert_eq!(e["value"], format!("{dir}/{name}"), "{name}_FILE");
            Some(name)
        })
        .collect();
    from_files.sort();
    let mut in_example = secret_names.clone();
    in_example.sort();
    assert_eq!(
        from_files, in_example,
        "every key of the Secret is read through <NAME>_FILE"
    );

    // A pod waiting for Redis at start is not killed before its wait ends.
    let wait: u64 = config["REDIS_STARTUP_WAIT_SECONDS"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| documented_default("REDIS_STARTUP_WAIT_SECONDS"))
        .expect("REDIS_STARTUP_WAIT_SECONDS")
        .parse()
        .expect("seconds");
    let startup = probe_window(&c["startupProbe"]);
    assert!(
        startup > wait,
        "the startupProbe allows {startup} s, not more than REDIS_STARTUP_WAIT_SECONDS={wait}"
    );
    // Draining finishes before the kubelet's SIGKILL.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    let drain: u64 = config["SHUTDOWN_TIMEOUT_SECONDS"]
        .as_str()
        .expect("SHUTDOWN_TIMEOUT_SECONDS")
        .parse()
        .expect("seconds");
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        grace > drain + pre_stop,
        "grace {grace} <= {drain} + {pre_stop}"
    );

    // The probes, the Service and the NetworkPolicy use the port BIND_ADDRESS listens on.
    let bind = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "BIND_ADDRESS")
        .and_then(|e| e["value"].as_str())
        .expect("BIND_ADDRESS");
    let port: u64 = bind
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_eq!(c["ports"][0]["containerPort"], port);
    assert_eq!(
        kinds("Service")[0]["spec"]["ports"][0]["targetPort"],
        "http"
    );
    let policy = kinds("NetworkPolicy")[0];
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], port);

    // Trusted proxies: a narrow range, never everything.
    let trusted = config["TRUSTED_PROXIES"].as_str().expect("TRUSTED_PROXIES");
    for cidr in trusted.split(',') {
        let bits: u8 = cidr
            .rsplit('/')
            .next()
            .and_then(|b| b.parse().ok())
            .expect("CIDR");
        assert!(bits >= 12, "TRUSTED_PROXIES {cidr} trusts too much");
    }
}

#[test]
fn the_optional_redis_manifest_never_evicts() {
    let Some(kustomization) = yaml_docs("deploy/k8s/redis/kustomization.yaml") else {
        return;
    };
    let file = kustomization[0]["resources"][0].as_str().expect("resource");
    let docs = yaml_docs(&format!("deploy/k8s/redis/{file}")).expect("yaml");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let policy = args
        .windows(2)
        .find(|w| w[0] == "--maxmemory-policy")
        .map(|w| w[1]);
    assert_eq!(policy, Some("noeviction"), "{args:?}");
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("Service");
    let example = repo_file("deploy/k8s/otp-server.secret.env.example");
    assert!(
        example.contains(&format!(
            "REDIS_URL=redis://{}:{}",
            service["metadata"]["name"].as_str().expect("name"),
            service["spec"]["ports"][0]["port"]
        )),
        "the secret example points REDIS_URL at the optional Redis"
    );
    // Only otp-server may connect, and otp-server's policy lets it.
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "NetworkPolicy")
        .expect("NetworkPolicy");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
            ["app.kubernetes.io/name"],
        "otp-server"
    );
    let ours = yaml_docs("deploy/k8s/networkpolicy.yaml").expect("yaml");
    assert!(ours[0]["spec"]["egress"]
        .as_array()
        .expect("egress")
        .iter()
        .any(|rule| rule["to"][0]["podSelector"]["matchLabels"]
            == deployment["spec"]["selector"]["matchLabels"]));
}

/// True if and only if `image` names an exact `x.y.z` version (optionally
/// with a suffix such as `-alpine`) or a digest.
fn is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
    let version = tag.trim_start_matches('v').split('-').next().unwrap_or("");
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
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
    for (name, service) in services {
        let image = service["image"].as_str().expect("image");
        if service.get("build").is_some() {
            assert_eq!(
                image,
                format!("stateless-otp:{}", env!("CARGO_PKG_VERSION"))
            );
        } else {
            assert!(
                is_pinned(image),
                "{name}: image {image} is not pinned to a version"
            );
        }
    }
    let site = repo_file("deploy/nginx/conf.d/stateless-otp.conf");
    for name in ["otp-1", "otp-2", "otp-3"] {
        let service = &services[name];
        let env = service["environment"].as_object().expect("environment map");
        for k in env.keys() {
            assert_known(&vars, k, "docker-compose.yml");
        }
        assert_eq!(env["STORE_BACKEND"], "redis");
        assert_eq!(env["REDIS_URL"], "redis://redis:6379");
        assert_eq!(env["BIND_ADDRESS"], "0.0.0.0:8000");
        // The name nginx resolves, on the port the replicas listen on.
        assert!(
            service["networks"]["otp"]["aliases"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == "otp")),
            "{name} lacks the network alias `otp`"
        );
        assert!(site.contains("set $otp_upstream http://otp:8000;"));
        assert_eq!(
            service["healthcheck"]["test"],
            json!(["CMD", "/usr/local/bin/otp-server", "healthcheck"])
        );
        // nginx starts only once every replica is healthy.
        assert_eq!(
            services["nginx"]["depends_on"][name]["condition"], "service_healthy",
            "nginx must wait for {name} to be healthy"
        );
    }
    // Docker's DNS, looked up per request (no `upstream` block resolved once).
    assert!(site.contains("resolver 127.0.0.11 "));
    assert!(
        !site
            .lines()
            .any(|l| l.trim_start().starts_with("upstream ")),
        "an upstream block is resolved only at start-up"
    );
    let redis: Vec<&str> = services["redis"]["command"]
        .as_array()
        .expect("redis command")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(redis
        .windows(2)
        .any(|w| w == ["--maxmemory-policy", "noeviction"]));
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
fn dockerfile_is_pinned_stripped_labelled_non_root_with_a_healthcheck() {
    let d = repo_file("deploy/Dockerfile");
    let arg = |name: &str| {
        d.lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {name}=")))
            .unwrap_or_else(|| panic!("ARG {name}= in the Dockerfile"))
            .to_owned()
    };
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        froms,
        ["FROM ${RUST_IMAGE} AS build", "FROM ${RUNTIME_IMAGE}"]
    );
    // The build image is an exact Rust release, new enough for rust-version.
    let rust = arg("RUST_IMAGE");
    assert!(is_pinned(&rust), "{rust}");
    let version = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    let image_rust = version(
        rust.split(':')
            .nth(1)
            .and_then(|t| t.split('-').next())
            .expect("tag"),
    );
    let workspace = repo_file("Cargo.toml");
    let msrv = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .map(|v| version(v.trim_end_matches('"')))
        .expect("rust-version");
    assert!(
        image_rust >= msrv,
        "{rust} is older than rust-version {msrv:?}"
    );
    // The runtime: Debian 12's distroless cc image (digest-pinned at release).
    assert!(arg("RUNTIME_IMAGE").starts_with("gcr.io/distroless/cc-debian12:nonroot"));
    assert!(
        d.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"),
        "stripped binary"
    );
    assert!(d.contains("CARGO_PROFILE_RELEASE_DEBUG=0"));
    assert!(d.contains("cargo build --release --locked -p otp-server"));
    assert_eq!(arg("VERSION"), env!("CARGO_PKG_VERSION"));
    for label in [
        "org.opencontainers.image.title=",
        "org.opencontainers.image.version=\"${VERSION}\"",
        "org.opencontainers.image.licenses=\"MIT OR Apache-2.0\"",
        "org.opencontainers.image.source=",
    ] {
        assert!(d.contains(label), "OCI label {label}");
    }
    assert!(d.contains("docker run --rm stateless-otp:0.2.0 keygen otp"));
    let user = d
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("USER line");
    assert_eq!(user, "USER nonroot:nonroot");
    let hc = d
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    assert!(
        hc.contains("[\"/usr/local/bin/otp-server\", \"healthcheck\"]"),
        "{hc}"
    );
    assert!(d.contains("ENTRYPOINT [\"/usr/local/bin/otp-server\"]"));
    assert!(d.contains("ENV BIND_ADDRESS=0.0.0.0:8000"));
}

#[test]
fn the_image_healthcheck_follows_the_configured_bind_address() {
    // `otp-server healthcheck` as the image runs it: no arguments, only the
    // environment the container has.
    let server = Server::builder().env("DELIVERY_BACKEND", "console").start();
    let probe = |bind: &str| run_bin(&["healthcheck"], &[("BIND_ADDRESS", bind)]).0;
    assert_eq!(probe(&format!("127.0.0.1:{}", server.port)), 0);
    // The image's 0.0.0.0 means "probe loopback".
    assert_eq!(probe(&format!("0.0.0.0:{}", server.port)), 0);
    assert_ne!(probe(&format!("0.0.0.0:{}", free_port())), 0);
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
    // Secrets as credentials: every <NAME>_FILE points into the credentials
    // directory at a credential the unit loads, and names a real variable.
    let vars = known_variables();
    let files: Vec<(&str, &str)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.ends_with("_FILE"))
        .collect();
    assert!(
        files.len() >= 3,
        "OTP_SECRET_KEY, JWT_SECRET, STORE_HASH_KEY: {files:?}"
    );
    for (var, path) in files {
        assert_known(&vars, var, "otp-server.service");
        let credential = path.strip_prefix("%d/").expect("a path in %d");
        assert!(
            unit.lines()
                .any(|l| l.starts_with(&format!("LoadCredential={credential}:"))),
            "{var} reads credential {credential}, which the unit does not load"
        );
    }
    assert!(
        !unit
            .lines()
            .any(|l| l.starts_with("Environment=") && l.contains("SECRET=")),
        "no secret value in the unit"
    );
    if skip_without("systemd-analyze") {
        return;
    }
    // Verify a copy whose ExecStart points at the binary under test.
    let dir = TempDir::new("systemd");
    let rendered = must_replace(&unit, "/usr/local/bin/otp-server", support::bin());
    let path = dir.join("otp-server.service");
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

/// `POST /api/v1/otp/request` for `identity` answers 200 and the console
/// shows its code.
fn sends_a_code(server: &mut Server, identity: &str) {
    let r = post_json(
        &format!("{}/api/v1/otp/request", server.url),
        &json!({ "identity": identity }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(server
        .console_code(identity, Duration::from_secs(5))
        .is_some());
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
    sends_a_code(&mut server, "late@example.com");
}

/// `GET path` on `server`.
fn get(server: &Server, path: &str) -> support::HttpResponse {
    http("GET", &format!("{}{path}", server.url), &[], None).expect("otp-server answers")
}

#[test]
fn a_replica_started_during_a_redis_outage_becomes_ready_and_serves_once_redis_starts() {
    if skip_without("redis-server") {
        return;
    }
    let dir = TempDir::new("outage-start");
    let redis_port = free_port();
    // `start` returns once /healthz answers: nothing listens on the Redis port.
    let mut server = Server::builder()
        .env("STORE_BACKEND", "redis")
        .env(
            "REDIS_URL",
            format!("redis://:hunter2-redis-pw@127.0.0.1:{redis_port}"),
        )
        .env("REDIS_STARTUP_WAIT_SECONDS", "0")
        .start();
    let r = get(&server, "/readyz");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"status": "ready", "store": "redis", "store_status": "unavailable"})
    );
    let metrics = get(&server, "/metrics").body;
    assert!(metrics.contains("\notp_store_up 0\n"), "{metrics}");
    let r = post_json(
        &format!("{}/api/v1/otp/request", server.url),
        &json!({"identity": "outage@example.com"}),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "backend_unavailable");
    let err = server.stderr();
    assert!(
        err.contains("REDIS_URL: Redis did not answer within REDIS_STARTUP_WAIT_SECONDS=0s"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "password leaked: {err}");

    // Redis comes up on that port (with the password the URL names)
    let _redis = start_redis_with(&dir, redis_port, &["--requirepass", "hunter2-redis-pw"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(&server, "/readyz");
        if r.json()["store_status"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "still {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    sends_a_code(&mut server, "outage@example.com");
    // the background ping saw it too (every 5 s)
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let m = get(&server, "/metrics").body;
        if m.contains("\notp_store_up 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn readyz_requires_store_makes_the_binary_unready_while_redis_is_down() {
    let mut server = Server::builder()
        .env("STORE_BACKEND", "redis")
        .env("REDIS_URL", format!("redis://127.0.0.1:{}", free_port()))
        .env("REDIS_STARTUP_WAIT_SECONDS", "0")
        .env("READYZ_REQUIRES_STORE", "true")
        .start();
    let r = get(&server, "/readyz");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "backend_unavailable");
    // token verification does not depend on it
    let r = get(&server, "/api/v1/token/verify");
    assert_eq!(r.status, 401, "{}", r.body);
    server.terminate(Duration::from_secs(5));
}

/// The metric names a PromQL expression uses: the tokens that start with
/// one of otp-server's prefixes (`otp_`, `http_`). Label names and values,
/// functions and Grafana's `$__rate_interval` have other shapes.
fn metric_names_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("otp_") || t.starts_with("http_"))
        .map(str::to_owned)
        .collect()
}

/// Every sample name in an OpenMetrics scrape, plus the names its `# TYPE`
/// lines declare (counter `F` → `F_total`, histogram `F` → `F_bucket`,
/// `F_sum`, `F_count`; others `F`).
fn served_metric_names(scrape: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        } else if !line.starts_with('#') {
            if let Some(name) = line.split(['{', ' ']).next().filter(|n| !n.is_empty()) {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

// See: issue 16 (alert rules and a dashboard whose queries use real metrics).
#[test]
fn alert_rules_and_dashboard_use_only_metrics_the_server_serves() {
    let Some(rules) = yaml_docs("deploy/prometheus/otp-server.rules.yml") else {
        return;
    };
    let Some(mut redis) = otp_testkit::started_redis_or_skip("alert_rules") else {
        return;
    };
    let mut exprs: Vec<(String, String)> = Vec::new();
    for rule in rules[0]["groups"][0]["rules"].as_array().expect("rules") {
        let alert = rule["alert"].as_str().expect("alert name").to_owned();
        assert!(rule["labels"]["severity"].is_string(), "{alert}: severity");
        assert!(
            rule["annotations"]["summary"].is_string(),
            "{alert}: summary"
        );
        exprs.push((alert, rule["expr"].as_str().expect("expr").to_owned()));
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/grafana/otp-server.json")).expect("dashboard JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for t in targets {
            exprs.push((
                title.to_owned(),
                t["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }

    // A real server, with a few requests so that every family has a sample:
    // a send, a refused send, a good and a wrong code, forward auth, and a
    // store error once Redis is gone.
    let mut server = Server::builder()
        .env("DELIVERY_BACKEND", "console")
        .env("STORE_BACKEND", "redis")
        .env("REDIS_URL", redis.url())
        .env("RATE_REQUEST_OTP_MAX", "1")
        .start();
    let api =
        |path: &str, body: serde_json::Value| post_json(&format!("{}{path}", server.url), &body);
    assert_eq!(
        api("/api/v1/otp/request", json!({"identity": "m@example.com"})).status,
        200
    );
    assert_eq!(
        api("/api/v1/otp/request", json!({"identity": "m@example.com"})).status,
        429
    );
    let code = server
        .console_code("m@example.com", Duration::from_secs(5))
        .expect("code");
    let api =
        |path: &str, body: serde_json::Value| post_json(&format!("{}{path}", server.url), &body);
    let wrong: String = code
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    assert_eq!(
        api(
            "/api/v1/otp/verify",
            json!({"identity": "m@example.com", "otp": wrong})
        )
        .status,
        400
    );
    let verified = api(
        "/api/v1/otp/verify",
        json!({"identity": "m@example.com", "otp": code}),
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    let auth = format!(
        "Bearer {}",
        verified.json()["access_token"].as_str().expect("token")
    );
    let r = http(
        "GET",
        &format!("{}/api/v1/token/verify", server.url),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(r.map(|r| r.status), Some(200));
    redis.stop();
    assert_eq!(
        api("/api/v1/otp/request", json!({"identity": "n@example.com"})).status,
        503
    );

    let scrape = http("GET", &format!("{}/metrics", server.url), &[], None).expect("metrics");
    assert_eq!(scrape.status, 200);
    let served = served_metric_names(&scrape.body);
    let mut used = std::collections::BTreeSet::new();
    for (what, expr) in &exprs {
        let names = metric_names_in(expr);
        assert!(!names.is_empty(), "{what}: no otp-server metric in {expr}");
        for name in names {
            assert!(
                served.contains(&name),
                "{what} uses {name}, which /metrics does not serve; it serves {served:?}"
            );
            used.insert(name);
        }
    }
    // The files cover the families the operations guide documents.
    for family in [
        "otp_store_full_total",
        "otp_build_info",
        "otp_store_errors_total",
        "otp_deliveries_total",
        "otp_rate_limited_total",
        "http_requests_total",
    ] {
        assert!(used.contains(family), "neither file uses {family}");
    }
}

// See: issue 16 (every counter's label sets exist from start-up at 0, so
// the documented `increase() > 0` alerts see the first event).
#[test]
fn a_fresh_server_serves_every_labelled_service_series_at_0() {
    // `auto`: each routed backend is a series (none is contacted at start).
    let server = Server::builder()
        .env("DELIVERY_BACKEND", "auto")
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", "9")
        .env("SMTP_FROM", "no-reply@example.com")
        .env("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")
        .env("TWILIO_AUTH_TOKEN", "twilio-token-fresh-metrics")
        .env("TWILIO_FROM_NUMBER", "+15005550006")
        .env("WEBHOOK_URL", "http://127.0.0.1:9/otp")
        .env(
            "WEBHOOK_SECRET",
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .start();
    let scrape = http("GET", &format!("{}/metrics", server.url), &[], None).expect("metrics");
    assert_eq!(scrape.status, 200);
    let lines: Vec<&str> = scrape.body.lines().collect();
    let mut expected: Vec<String> = [
        "request_identity",
        "verify_identity",
        "verify_daily",
        "request_ip",
        "verify_ip",
        "global_send",
        "verify_daily_identity",
    ]
    .iter()
    .map(|l| format!(r#"otp_rate_limited_total{{limit="{l}"}} 0"#))
    .collect();
    for backend in ["smtp", "twilio", "webhook"] {
        for outcome in ["ok", "error"] {
            expected.push(format!(
                r#"otp_deliveries_total{{backend="{backend}",outcome="{outcome}"}} 0"#
            ));
            expected.push(format!(
                r#"otp_delivery_duration_seconds_count{{backend="{backend}",outcome="{outcome}"}} 0"#
            ));
        }
    }
    for op in ["limit", "counters", "advance", "failure", "clear"] {
        expected.push(format!(r#"otp_store_errors_total{{op="{op}"}} 0"#));
    }
    for line in &expected {
        assert!(
            lines.contains(&line.as_str()),
            "a fresh /metrics lacks {line}:\n{}",
            scrape.body
        );
    }
    assert!(
        !scrape.body.contains(r#"backend="auto""#),
        "the router's own name is not a backend"
    );
}

// See: issue 13 item 12 (operations.md named identity kinds the logs never use).
#[test]
fn the_identity_kinds_operations_md_names_are_the_ones_the_logs_use() {
    // A delivery that fails logs a warning inside the request's span, which
    // carries the identity's `kind` (and never the identity).
    let server = Server::builder()
        .env("DELIVERY_BACKEND", "webhook")
        .env(
            "WEBHOOK_URL",
            format!("http://127.0.0.1:{}/hook", free_port()),
        )
        .env(
            "WEBHOOK_SECRET",
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("DELIVERY_MAX_ATTEMPTS", "1")
        .start();
    let identities = ["kinds@example.com", "+14155550123", "user-4711"];
    for identity in identities {
        let r = post_json(
            &format!("{}/api/v1/otp/request", server.url),
            &json!({ "identity": identity }),
        );
        assert_eq!(r.status, 502, "{}", r.body);
    }
    std::thread::sleep(Duration::from_millis(200));
    let logs = server.stderr();
    let mut logged: Vec<String> = logs
        .split("\"kind\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    logged.sort();
    logged.dedup();
    for identity in identities {
        assert!(!logs.contains(identity), "the log names {identity}");
    }

    let ops = repo_file("docs/operations.md").replace('\n', " ");
    let listed = ops
        .split("identities appear only as their kind (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("operations.md says which kinds the logs show");
    let mut documented: Vec<String> = listed
        .split(',')
        .map(|k| k.trim().trim_matches('`').to_owned())
        .collect();
    documented.sort();
    assert_eq!(
        documented, logged,
        "operations.md vs the `kind` fields logged"
    );
}

// See: issue 13 item 12 (delivery.md quoted an error the binary never prints).
#[test]
fn every_start_up_error_delivery_md_quotes_is_what_the_binary_prints() {
    let doc = repo_file("docs/delivery.md");
    let flat: String = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    // Every quoted `VARIABLE: message` in the document (the test suite's own
    // `SKIP: …` lines are not the binary's) …
    let quoted: Vec<&str> = flat
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.split_once(": ").is_some_and(|(var, _)| {
                var != "SKIP"
                    && var.len() > 2
                    && var.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
        })
        .collect();
    // … with a configuration that makes check-config print it ("(…)" in the
    // document stands for a detail that varies).
    let webhook = [
        ("DELIVERY_BACKEND", "webhook"),
        ("WEBHOOK_URL", "http://127.0.0.1:9/hook"),
        (
            "WEBHOOK_SECRET",
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
    ];
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("DELIVERY_BACKEND", "smtp"),
            ("SMTP_FROM", "otp@example.com"),
        ],
        [&webhook[..], &[("WEBHOOK_TEMPLATE", r#"{"otp": "{otp}""#)]].concat(),
        [
            &webhook[..],
            &[
                ("DELIVERY_BACKEND", "auto"),
                ("SMTP_HOST", "127.0.0.1"),
                ("SMTP_FROM", "otp@example.com"),
            ],
        ]
        .concat(),
    ];
    let printed: Vec<String> = cases
        .iter()
        .map(|vars| {
            let mut env: Vec<(&str, &str)> = vec![
                ("OTP_SECRET_KEY", support::TEST_OTP_KEY),
                ("JWT_SECRET", support::TEST_JWT_SECRET),
            ];
            env.extend(vars.iter().copied());
            let (code, _, err) = run_bin(&["check-config"], &env);
            assert_ne!(code, 0, "{vars:?} should not be a valid configuration");
            let line = err.trim().lines().last().unwrap_or("").to_owned();
            line.strip_prefix("otp-server: ")
                .unwrap_or(&line)
                .to_owned()
        })
        .collect();
    assert!(!quoted.is_empty());
    for q in &quoted {
        let fixed = q.split("(…)").next().unwrap_or(q).trim_end();
        assert!(
            printed.iter().any(|p| p.starts_with(fixed) && (q.contains("(…)") || p == q)),
            "docs/delivery.md quotes `{q}`, which the binary does not print; it prints {printed:#?}"
        );
    }
}
