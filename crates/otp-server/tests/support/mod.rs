//! Shared harness of otp-server's integration tests: runs the REAL binary
//! (`CARGO_BIN_EXE_otp-server`) on a free loopback port and stops it when the
//! guard drops. Each test file includes it with `mod support;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A 32-byte OTP key (base64url) for tests.
pub const TEST_OTP_KEY: &str = "dGVzdC1vdHAta2V5LXRlc3Qtb3RwLWtleS10ZXN0LW8";
/// A JWT secret of 40 bytes for tests.
pub const TEST_JWT_SECRET: &str = "test-jwt-secret-test-jwt-secret-test-jwt";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_otp-server")
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// True if and only if `OTP_E2E_REQUIRE_ALL=1`: missing components fail.
pub fn require_all() -> bool {
    std::env::var("OTP_E2E_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Skips (returns true) when `program` is not on PATH, or panics under
/// `OTP_E2E_REQUIRE_ALL=1`.
pub fn skip_without(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return false;
    }
    assert!(
        !require_all(),
        "{program} is required (OTP_E2E_REQUIRE_ALL=1) but not on PATH"
    );
    eprintln!("SKIP: {program} not on PATH");
    true
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
            ],
            args: vec!["serve".into()],
            port: None,
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

    /// The command, without starting it.
    pub fn command(&self, port: u16) -> Command {
        let mut c = Command::new(bin());
        c.args(&self.args)
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Starts the server and waits (up to 20 s) until it answers `/healthz`.
    pub fn start(self) -> Server {
        let port = self.port.unwrap_or_else(free_port);
        let stderr_path =
            std::env::temp_dir().join(format!("otp-server-test-{port}-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut child = self
            .command(port)
            .stdout(Stdio::piped())
            .stderr(stderr)
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
            url: format!("http://127.0.0.1:{port}"),
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

    /// Everything the process wrote to stderr (its logs) so far.
    pub fn stderr(&self) -> String {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
