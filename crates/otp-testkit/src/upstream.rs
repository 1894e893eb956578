//! A sample application for the web-gate tests: a small HTTP/1.1 server on
//! a free loopback port (one `std` thread per connection) that a proxy
//! protects. It answers every request with 200 and a tiny HTML page naming
//! the `X-Auth-Subject` it received and the path, and records each
//! request's method, target and headers, so a test can tell whether the
//! proxy passed the subject and whether a `Cookie` with `otp_refresh` ever
//! reached the application.
//!
//! ```no_run
//! # fn main() {
//! let app = otp_testkit::upstream::Upstream::start();
//! // … point a proxy at app.port() …
//! assert!(app.requests().iter().all(|r| !r.has_cookie("otp_refresh")));
//! # }
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `<h1>` of every page the sample application serves.
pub const HEADING: &str = "Sample application";

/// One request the application received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// The headers in order, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header named `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Returns true if and only if a `Cookie` header of the request carries
    /// a cookie named `name`.
    pub fn has_cookie(&self, name: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .any(|pair| pair.split('=').next().map(str::trim) == Some(name))
    }
}

/// The running sample application; stops accepting when dropped.
#[derive(Debug)]
pub struct Upstream {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// Binds 127.0.0.1 on a free port and serves in background threads.
    pub fn start() -> Upstream {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the sample application");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(conn, &log));
            }
        });
        Upstream {
            port,
            requests,
            stop,
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Serves one connection (keep-alive: proxies reuse upstream connections).
fn serve(conn: TcpStream, log: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut conn = conn;
    while let Some(request) = read_request(&mut reader) {
        let page = page(&request);
        if let Ok(mut requests) = log.lock() {
            requests.push(request);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
             Cache-Control: no-store\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        );
        if conn.write_all(response.as_bytes()).is_err() {
            break;
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

/// Reads one request (head and a `Content-Length` body); `None` at the end
/// of the connection or on a malformed head.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
    })
}

/// The page: who the proxy says the user is, and what was asked for.
fn page(request: &Request) -> String {
    let subject = request.header("x-auth-subject").unwrap_or("");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{HEADING}</title></head><body><main><h1>{HEADING}</h1>\
         <p>Signed in as <span id=\"subject\">{}</span></p>\
         <p>Path <span id=\"path\">{}</span></p></main></body></html>",
        escape(subject),
        escape(&request.target)
    )
}

/// HTML-escapes text for an element's content.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(port: u16, head: &str) -> String {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn records_headers_and_shows_the_subject_escaped() {
        let app = Upstream::start();
        let out = get(
            app.port(),
            "GET /x?y=1 HTTP/1.1\r\nHost: app\r\nX-Auth-Subject: <a@example.com>\r\n\
             Cookie: otp_session=abc; otp_refresh=def\r\n\r\n",
        );
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("<span id=\"subject\">&lt;a@example.com&gt;</span>"));
        let seen = app.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].target, "/x?y=1");
        assert_eq!(seen[0].header("X-Auth-Subject"), Some("<a@example.com>"));
        assert!(seen[0].has_cookie("otp_session"));
        assert!(seen[0].has_cookie("otp_refresh"));
        assert!(!seen[0].has_cookie("otp"));
    }

    #[test]
    fn a_cookie_named_like_another_is_not_that_cookie() {
        let app = Upstream::start();
        get(
            app.port(),
            "GET / HTTP/1.1\r\nCookie: my_otp_refresh=1; otp_refresh_x=2\r\n\r\n",
        );
        assert!(!app.requests()[0].has_cookie("otp_refresh"));
    }
}
