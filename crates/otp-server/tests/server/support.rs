//! Shared harness of otp-server's integration tests: runs the REAL binary
//! (`CARGO_BIN_EXE_otp-server`) on a free loopback port and stops it when the
//! guard drops; HTTP helpers. Declared once in `main.rs`; the test modules
//! `use crate::support`. Free ports, temporary directories, skips, the
//! process-group kill and the fixed keys come from `otp_testkit`.
//!
//! Every process started here runs in its own process group and is killed
//! with its whole group on drop (`otp_testkit::kill_process_group`),
//! also when the test fails or panics: nothing it started outlives the test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The OTP key (base64url) and the JWT secret every server gets.
pub use otp_testkit::keys::{JWT_SECRET as TEST_JWT_SECRET, OTP_KEY_B64 as TEST_OTP_KEY};
pub use otp_testkit::{
    free_port, kill_process_group, process_group_members, require_all, skip_without, TempDir,
};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_otp-server")
}

/// A running otp-server; killed on drop. Stdout lines are collected.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
    stdout: mpsc::Receiver<String>,
    pub stdout_lines: Vec<String>,
    stderr_path: std::path::PathBuf,
}

/// Builder of a server process.
pub struct ServerBuilder {
    env: Vec<(String, String)>,
    args: Vec<String>,
    port: Option<u16>,
    host: String,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            env: vec![
                ("OTP_SECRET_KEY".into(), TEST_OTP_KEY.into()),
                ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
                ("RUST_LOG".into(), "info".into()),
                ("LOG_FORMAT".into(), "json".into()),
                ("WORKERS".into(), "2".into()),
                // The harness reads codes from stdout; outside --dev that
                // must be chosen explicitly (it warns at start).
                ("DELIVERY_BACKEND".into(), "console".into()),
            ],
            args: vec!["serve".into()],
            port: None,
            host: "127.0.0.1".into(),
        }
    }
}

impl ServerBuilder {
    /// Sets an environment variable (later calls win).
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }

    /// Removes a variable set by default.
    pub fn unset(mut self, k: &str) -> Self {
        self.env.retain(|(key, _)| key != k);
        self
    }

    /// Adds CLI arguments after `serve`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    /// Listens on this port instead of a free one.
    pub fn port(mut self, p: u16) -> Self {
        self.port = Some(p);
        self
    }

    /// Listens on this loopback address (e.g. `127.0.0.2`, to run replicas
    /// on one port at several addresses) instead of 127.0.0.1.
    pub fn host(mut self, h: &str) -> Self {
        self.host = h.into();
        self
    }

    /// The command, without starting it.
    pub fn command(&self, port: u16) -> Command {
        let mut c = Command::new(bin());
        c.args(&self.args)
            .arg("--bind")
            .arg(format!("{}:{port}", self.host))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Starts the server and waits (up to 20 s) until it answers `/healthz`.
    pub fn start(self) -> Server {
        let port = self.port.unwrap_or_else(free_port);
        let stderr_path = std::env::temp_dir().join(format!(
            "otp-server-test-{}-{port}-{}.log",
            self.host,
            std::process::id()
        ));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut child = self
            .command(port)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .expect("spawn otp-server");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            url: format!("http://{}:{port}", self.host),
            port,
            stdout: rx,
            stdout_lines: Vec::new(),
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("otp-server exited early with {status}: {}", server.stderr());
            }
            if http_status(&format!("{}/healthz", server.url)) == Some(200) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "otp-server did not become healthy: {}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// A builder with test secrets, JSON logs and 2 workers.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Everything the process wrote to stderr (its logs) so far. The log
    /// writer batches lines for up to `otp_server::log_writer::LINGER`
    /// (5 ms) before writing them, so this first waits ten times as long
    /// for the lines of what the test just did.
    pub fn stderr(&self) -> String {
        std::thread::sleep(otp_server::log_writer::LINGER * 10);
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stdout lines received so far (console delivery prints codes there).
    pub fn drain_stdout(&mut self) -> &[String] {
        while let Ok(l) = self.stdout.try_recv() {
            self.stdout_lines.push(l);
        }
        &self.stdout_lines
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_process_group(&mut self.child);
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// Status code of a plain HTTP GET, `None` when nothing answers.
pub fn http_status(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s =
        std::net::TcpStream::connect_timeout(&authority.parse().ok()?, Duration::from_millis(500))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Server {
    /// Sends `signal` (e.g. `"TERM"`, `"INT"`) without waiting.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The most recent code printed by console delivery for `identity`
    /// (as normalized), reading stdout for up to `timeout`.
    pub fn console_code(&mut self, identity: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = last_console_code(self.drain_stdout(), identity) {
                return Some(code);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The code of the last console-delivery block for `identity` in `lines`.
pub fn last_console_code(lines: &[String], identity: &str) -> Option<String> {
    let mut current_identity = None;
    let mut found = None;
    for line in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("identity   :") {
            current_identity = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix("code       :") {
            if current_identity.as_deref() == Some(identity) {
                found = Some(rest.trim().to_owned());
            }
        }
    }
    found
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header (lower-cased name, value) pairs in order.
    pub headers: Vec<(String, String)>,
    /// Body as text (chunked transfer decoded).
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`),
/// bounded by a 30 s read timeout. `None` when nothing answers.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    json_body: Option<&str>,
) -> Option<HttpResponse> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s =
        std::net::TcpStream::connect_timeout(&authority.parse().ok()?, Duration::from_secs(2))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = json_body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = json_body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(tail.get(..n)?);
            rest = tail.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        body.to_owned()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

/// POSTs a JSON body to `url`.
pub fn post_json(url: &str, body: &serde_json::Value) -> HttpResponse {
    http("POST", url, &[], Some(&body.to_string()))
        .unwrap_or_else(|| panic!("no HTTP answer from {url}"))
}

/// Runs the binary to completion (killed after 30 s) with only `env` (plus
/// PATH) in its environment: (exit code, stdout, stderr).
pub fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    use std::io::Read;
    let mut child = Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn otp-server");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() >= deadline {
            kill_process_group(&mut child);
            panic!("otp-server {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().unwrap_or(-1),
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default(),
    )
}
