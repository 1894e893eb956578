//! The real binary starts, answers, and stops on SIGTERM with exit 0.

use crate::support;

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

/// The server as a library (issue 12): `otp_server::run` serves on a
/// listener bound to 127.0.0.1:0, in this process, and returns once the
/// shutdown future resolves — no binary, no signal.
#[test]
fn run_serves_in_process_on_port_0_and_stops_when_the_shutdown_future_resolves() {
    let env = [
        ("OTP_SECRET_KEY", support::TEST_OTP_KEY),
        ("JWT_SECRET", support::TEST_JWT_SECRET),
        ("DELIVERY_BACKEND", "none"),
        ("WORKERS", "1"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let raw = otp_server::RawSettings::load(None, env.into_iter()).expect("raw settings");
    let settings = otp_server::Settings::from_raw(&raw, false).expect("settings");
    let listener = otp_server::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (done_tx, done) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let result = actix_web::rt::System::new().block_on(otp_server::run(
            listener,
            settings,
            async move {
                // Poll the std channel without blocking the runtime.
                while stopped.try_recv().is_err() {
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                }
            },
        ));
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });
    let url = format!("http://{addr}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http_status(&format!("{url}/health")) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "no answer on {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let issued = support::post_json(
        &format!("{url}/api/v1/otp/request"),
        &serde_json::json!({"identity": "alice@example.com"}),
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    stop.send(()).unwrap();
    let result = done
        .recv_timeout(Duration::from_secs(15))
        .expect("run returns after the shutdown future resolves");
    assert_eq!(result, Ok(()));
    thread.join().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting on {addr} after run returned"
    );
}
