//! Private helpers of the hostile-input and fault tests (`faults.rs`,
//! `logs.rs`): a tiny HTTP receiver standing in for a webhook endpoint
//! (counts attempts, can be slow or fail), a TCP listener that accepts and
//! never answers (a hanging SMTP relay), and an async HTTP client. Everything
//! binds 127.0.0.1 on a free port and stops when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answer `status` at once.
    Status(u16),
    /// Wait this long, then answer 204.
    Slow(Duration),
}

/// An HTTP/1.1 receiver on 127.0.0.1 that records every request body.
pub struct Receiver {
    pub url: String,
    hits: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Receiver {
    /// Starts a receiver answering per `behaviour`.
    pub fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, b, s) = (hits.clone(), bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, b) = (h.clone(), b.clone());
                std::thread::spawn(move || serve_one(conn, behaviour, &h, &b));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            hits,
            bodies,
            stop,
            port,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(
    mut conn: TcpStream,
    behaviour: Behaviour,
    hits: &AtomicUsize,
    bodies: &Mutex<Vec<String>>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    if let Ok(mut b) = bodies.lock() {
        b.push(body);
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let status = match behaviour {
        Behaviour::Status(s) => s,
        Behaviour::Slow(d) => {
            std::thread::sleep(d);
            204
        }
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// A listener that accepts TCP connections and never sends a byte (a hung
/// SMTP relay). Holds every accepted socket open until dropped.
pub struct Hanging {
    pub port: u16,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Hanging {
    /// Starts it on a free port.
    pub fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hanging listener");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    a.fetch_add(1, Ordering::SeqCst);
                    held.push(c);
                }
            }
        });
        Hanging {
            port,
            accepted,
            stop,
        }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// An async client with a hard per-request timeout.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client")
}

/// POSTs JSON; returns (status, body as JSON or Null).
pub async fn post(
    c: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let r = c.post(url).json(&body).send().await?;
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

/// Environment that lifts the per-IP and global limits (every test request
/// comes from 127.0.0.1) so that only the behaviour under test shows.
pub const OPEN_LIMITS: &[(&str, &str)] = &[
    ("RATE_REQUEST_OTP_PER_IP_MAX", "10000000"),
    ("RATE_VERIFY_OTP_PER_IP_MAX", "10000000"),
    ("RATE_GLOBAL_SEND_MAX", "10000000"),
    ("RATE_REQUEST_OTP_MAX", "1000"),
];
