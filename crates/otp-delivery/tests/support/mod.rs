//! Test harness: real components started per test (aiosmtpd, a Python
//! receiver using the official `standardwebhooks` library), guards that kill
//! them, temporary directories, and a tracing capture.
//!
//! A component that is not installed makes its test print why and return,
//! unless `OTP_E2E_REQUIRE_ALL=1`, where that is a failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otp_core::Identity;
use otp_core::OtpCode;
use otp_delivery::OtpMessage;

/// Returns true if and only if `OTP_E2E_REQUIRE_ALL=1`.
pub fn require_all() -> bool {
    std::env::var("OTP_E2E_REQUIRE_ALL")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// Returns true if and only if `python3` can import `module`. When it
/// cannot, prints why (or panics under `OTP_E2E_REQUIRE_ALL=1`).
pub fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let why =
            format!("python3 with the '{module}' package is not available (pip install {module})");
        if require_all() {
            panic!("OTP_E2E_REQUIRE_ALL=1 but {why}");
        }
        eprintln!("SKIP: {why}");
    }
    ok
}

/// Kills the child's whole process group (it is spawned as a group leader,
/// so anything it forks dies too) and reaps it when dropped, also when the
/// test panics.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // `kill -KILL -- -PGID`: std has no killpg and unsafe is forbidden.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `python3 tests/support/<script> <args>` and waits (at most 20 s)
/// for its `PORT <n>` line.
pub fn spawn_python(script: &str, args: &[&str]) -> (ChildGuard, u16) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {script}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{script} did not report its port within 20 s"));
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{script} printed {line:?} instead of PORT <n>"));
    (guard, port)
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "otp-delivery-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A message with a fixed code, 5 minutes of validity.
pub fn message(identity: &str, code: &str) -> OtpMessage {
    OtpMessage::new(
        Identity::parse(identity).expect("test identity"),
        OtpCode::parse(code).expect("test code"),
        300,
        1_800_000_000,
    )
}

/// Everything written by tracing while the guard lives (this thread only).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every tracing event (TRACE and up, all targets) on this thread.
pub fn capture_logs() -> (tracing::subscriber::DefaultGuard, Logs) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), logs)
}

/// Waits (at most 10 s) until `dir` holds `n` `.json` files; returns them sorted.
pub fn wait_for_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        if files.len() >= n || std::time::Instant::now() > deadline {
            return files;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("parse json")
}

/// A TCP server on loopback that accepts connections and never says a word
/// (a hung SMTP relay or HTTP receiver). Stops when the runtime ends.
pub async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}
