//! The delivery sinks the otp-delivery tests send to for real: Python
//! scripts in `scripts/` (next to this crate's `Cargo.toml`) that bind
//! 127.0.0.1 on a free port, print `PORT <n>`, and serve until killed.
//!
//! - `smtp_server.py`: an SMTP server (aiosmtpd) that writes every accepted
//!   message as JSON into `--dir`; plain, STARTTLS or implicit TLS.
//! - `webhook_receiver.py`: verifies every request with the official
//!   Standard Webhooks library (`standardwebhooks`) and logs it as one JSON
//!   line.
//!
//! The scripts' own docstrings describe their arguments and modes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{skip, ChildGuard};

/// The SMTP sink script (aiosmtpd).
pub const SMTP_SERVER: &str = "smtp_server.py";
/// The Standard Webhooks receiver script.
pub const WEBHOOK_RECEIVER: &str = "webhook_receiver.py";

/// The directory of the scripts (`crates/otp-testkit/scripts`).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// Returns true if and only if `python3` can import `module`. When it
/// cannot, prints why (or panics under `OTP_E2E_REQUIRE_ALL=1`).
pub fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(
            module,
            &format!("python3 with the '{module}' package is not available (pip install {module})"),
        );
    }
    ok
}

/// Starts `python3 scripts/<script> <args>` in its own process group and
/// waits (at most 20 s) for its `PORT <n>` line; returns the guard that
/// kills it and the port.
pub fn spawn_python(script: &str, args: &[&str]) -> (ChildGuard, u16) {
    let mut guard = ChildGuard::spawn(
        Command::new("python3")
            .arg("-u")
            .arg(scripts_dir().join(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
        script,
    );
    let stdout = guard.0.stdout.take().expect("piped stdout");
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
