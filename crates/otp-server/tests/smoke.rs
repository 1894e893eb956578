//! The real binary starts, answers, and stops on SIGTERM with exit 0.

mod support;

use std::time::Duration;
use support::{http_status, Server};

#[test]
fn binary_serves_health_and_exits_zero_on_sigterm() {
    let mut server = Server::builder().start();
    assert_eq!(http_status(&format!("{}/health", server.url)), Some(200));
    assert_eq!(
        http_status(&format!("{}/no-such-route", server.url)),
        Some(404)
    );
    let status = server
        .terminate(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
}
