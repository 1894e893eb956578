//! Shared helpers of the otp-delivery integration tests. The real
//! components (the aiosmtpd SMTP sink and the Standard Webhooks receiver,
//! `otp_testkit::sinks`), process guards, temporary directories and the
//! tracing capture come from otp-testkit; what is left here is specific to
//! delivery: a fixed message, waiting for the sinks' files, and a server
//! that never answers.
//!
//! A component that is not installed makes its test print why and return,
//! unless `OTP_E2E_REQUIRE_ALL=1`, where that is a failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use otp_core::Identity;
use otp_core::OtpCode;
use otp_delivery::OtpMessage;
pub use otp_testkit::logs::capture_logs;
pub use otp_testkit::sinks::{python_has, spawn_python};
pub use otp_testkit::{ChildGuard, TempDir};

/// A message with a fixed code, 5 minutes of validity.
pub fn message(identity: &str, code: &str) -> OtpMessage {
    OtpMessage::new(
        Identity::parse(identity).expect("test identity"),
        OtpCode::parse(code).expect("test code"),
        300,
        1_800_000_000,
    )
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
