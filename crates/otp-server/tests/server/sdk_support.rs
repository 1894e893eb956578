//! Private helpers of `sdk_e2e.rs`: the webhook receiver that records the
//! codes the real server delivers, the environment (receiver + server) every
//! SDK suite runs against, and bounded subprocesses for the JS and Python
//! suites.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use otp_testkit::ChildGuard;

use crate::support::{free_port, Server, ServerBuilder};

/// The server's send limit per identity (`RATE_REQUEST_OTP_MAX`).
pub const RATE_LIMIT_REQUESTS: u32 = 3;

/// `ACCESS_TOKEN_TTL` (seconds) of the second server the JS and Python
/// session suites run against (`OTP_SHORT_TTL_BASE_URL`).
pub const SHORT_ACCESS_TTL: u32 = 3;

/// The repository root (`sdk/` lives there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A webhook receiver on 127.0.0.1:0: `POST` (any path) records the JSON
/// body's `identity` → `otp` (last one wins), and
/// `GET /codes/{percent-encoded identity}` answers `{"otp": "…"}` or 404.
/// Signatures are not checked here (otp-delivery's tests verify them with
/// the official standardwebhooks library). Stopped on drop.
pub struct CodeReceiver {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    addr: SocketAddr,
    codes: Arc<Mutex<HashMap<String, String>>>,
    deliveries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CodeReceiver {
    /// Starts the receiver.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let addr = listener.local_addr().expect("receiver address");
        let codes = Arc::new(Mutex::new(HashMap::new()));
        let deliveries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (codes, deliveries, stop) = (codes.clone(), deliveries.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (codes, deliveries) = (codes.clone(), deliveries.clone());
                    std::thread::spawn(move || {
                        let _ = handle(stream, &codes, &deliveries);
                    });
                }
            })
        };
        CodeReceiver {
            url: format!("http://{addr}"),
            addr,
            codes,
            deliveries,
            stop,
            thread: Some(thread),
        }
    }

    /// The webhook URL to give the server.
    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.url)
    }

    /// The last code delivered to `identity`, if any.
    pub fn code(&self, identity: &str) -> Option<String> {
        self.codes.lock().unwrap().get(identity).cloned()
    }

    /// Deliveries received so far.
    pub fn deliveries(&self) -> usize {
        self.deliveries.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) for a code for `identity` that differs from
    /// `previous`, then returns it.
    pub async fn wait_code(&self, identity: &str, previous: Option<&str>) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(code) = self.code(identity) {
                if Some(code.as_str()) != previous {
                    return code;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no code was delivered to {identity} within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for CodeReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(
    stream: TcpStream,
    codes: &Mutex<HashMap<String, String>>,
    deliveries: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, reply) = match method {
        "POST" => {
            let parsed: Option<(String, String)> =
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        Some((
                            v.get("identity")?.as_str()?.to_owned(),
                            v.get("otp")?.as_str()?.to_owned(),
                        ))
                    });
            match parsed {
                Some((identity, otp)) => {
                    codes.lock().unwrap().insert(identity, otp);
                    deliveries.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", "{}".to_owned())
                }
                None => (
                    "400 Bad Request",
                    r#"{"error":"no identity/otp"}"#.to_owned(),
                ),
            }
        }
        "GET" => match target.strip_prefix("/codes/").and_then(percent_decode) {
            Some(identity) => match codes.lock().unwrap().get(&identity) {
                Some(otp) => ("200 OK", serde_json::json!({ "otp": otp }).to_string()),
                None => ("404 Not Found", r#"{"error":"no code yet"}"#.to_owned()),
            },
            None => ("404 Not Found", r#"{"error":"not found"}"#.to_owned()),
        },
        _ => ("405 Method Not Allowed", "{}".to_owned()),
    };
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

/// Decodes `%XX` escapes (and nothing else); `None` on a bad escape or
/// non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A receiver plus a real server delivering to it by webhook, with the
/// limits the SDK suites expect.
pub struct E2eEnv {
    /// The webhook receiver.
    pub receiver: CodeReceiver,
    /// The server.
    pub server: Server,
    /// A URL where nothing listens.
    pub unreachable_url: String,
}

impl E2eEnv {
    /// The server builder every suite shares: webhook delivery to
    /// `receiver`, `RATE_REQUEST_OTP_MAX=3`, generous per-IP and global
    /// limits (every suite sends from 127.0.0.1).
    pub fn builder(receiver: &CodeReceiver) -> ServerBuilder {
        let secret = base64::engine::general_purpose::STANDARD.encode([0x5au8; 32]);
        Server::builder()
            .env("DELIVERY_BACKEND", "webhook")
            .env("WEBHOOK_URL", receiver.hook_url())
            .env("WEBHOOK_SECRET", format!("whsec_{secret}"))
            .env("DELIVERY_TIMEOUT_SECONDS", "5")
            .env("RATE_REQUEST_OTP_MAX", RATE_LIMIT_REQUESTS.to_string())
            .env("RATE_REQUEST_OTP_PER_IP_MAX", "1000")
            .env("RATE_VERIFY_OTP_PER_IP_MAX", "1000")
            .env("RATE_GLOBAL_SEND_MAX", "100000")
    }

    /// Starts a receiver and a server built by `configure(builder)`.
    pub fn start(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Self {
        let receiver = CodeReceiver::start();
        let server = configure(Self::builder(&receiver)).start();
        E2eEnv {
            receiver,
            server,
            unreachable_url: format!("http://127.0.0.1:{}", free_port()),
        }
    }

    /// A second server delivering to the same receiver whose access tokens
    /// live [`SHORT_ACCESS_TTL`] seconds, built by `configure(builder)`; its
    /// contract is [`E2eEnv::short_ttl_contract`].
    pub fn start_short_ttl(
        &self,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Server {
        configure(
            Self::builder(&self.receiver).env("ACCESS_TOKEN_TTL", SHORT_ACCESS_TTL.to_string()),
        )
        .start()
    }

    /// `OTP_SHORT_TTL_BASE_URL` and `OTP_SHORT_ACCESS_TTL` for `short`.
    pub fn short_ttl_contract(short: &Server) -> Vec<(String, String)> {
        vec![
            ("OTP_SHORT_TTL_BASE_URL".into(), short.url.clone()),
            ("OTP_SHORT_ACCESS_TTL".into(), SHORT_ACCESS_TTL.to_string()),
        ]
    }

    /// The environment contract of the JS and Python suites.
    pub fn contract(&self) -> Vec<(String, String)> {
        vec![
            ("OTP_BASE_URL".into(), self.server.url.clone()),
            ("OTP_CODES_URL".into(), self.receiver.url.clone()),
            (
                "OTP_RATE_LIMIT_REQUESTS".into(),
                RATE_LIMIT_REQUESTS.to_string(),
            ),
            ("OTP_UNREACHABLE_URL".into(), self.unreachable_url.clone()),
        ]
    }
}

/// How many requests `POST /api/v1/token/refresh` has answered, whatever
/// the status: the sum of the server's
/// `http_requests_total{route="/api/v1/token/refresh",…}` on `/metrics`.
pub async fn refresh_requests(server_url: &str) -> u64 {
    let text = reqwest::get(format!("{server_url}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    count_route(&text, "/api/v1/token/refresh")
}

/// The sum of `http_requests_total` over every status of `route`.
pub fn count_route(metrics: &str, route: &str) -> u64 {
    let label = format!("route=\"{route}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// What a finished subprocess printed.
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `command` with output to temporary files; panics with everything it
/// printed when it does not finish within `timeout`.
pub fn run_bounded(mut command: Command, timeout: Duration, label: &str) -> Finished {
    let dir = std::env::temp_dir();
    let tag = format!("otp-sdk-e2e-{label}-{}-{}", std::process::id(), free_port());
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    // Killed group and all (e.g. a browser it started) on drop, also when
    // the leader already exited and left children behind.
    let mut group = ChildGuard::spawn(command.stdin(Stdio::null()).stdout(out).stderr(err), label);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = group.0.try_wait().expect("wait for the suite") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(group);
    let read = |p: &Path| {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        s
    };
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    match status {
        Some(status) => Finished {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{label} did not finish within {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
    }
}
