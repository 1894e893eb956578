//! The connection layer of the real binary (`otp_server::coalesce`: the
//! responses a worker finished in one turn are sent at its end). Whatever
//! the batching, every connection gets its own answers, complete and in
//! order: pipelined requests, many connections at once, a client that
//! stops reading until the server's socket buffer is full, large answers
//! beside small ones, and a connection the client asks to close.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::Server;

/// One parsed HTTP/1.1 response.
struct Answer {
    status: u16,
    request_id: Option<String>,
    close: bool,
    body: Vec<u8>,
}

/// Reads one response with a `Content-Length` body (every answer of the
/// routes used here has one).
fn read_answer(r: &mut BufReader<TcpStream>) -> Answer {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line:?}"));
    let (mut len, mut request_id, mut close) = (None, None, false);
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').expect("header");
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => len = value.parse::<usize>().ok(),
            "x-request-id" => request_id = Some(value.to_string()),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; len.expect("content-length")];
    r.read_exact(&mut body).expect("body");
    Answer {
        status,
        request_id,
        close,
        body,
    }
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn get(path: &str, id: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: {id}\r\n\r\n")
}

/// What `path` answers on a connection of its own.
fn alone(server: &Server, path: &str) -> Answer {
    let s = connect(server);
    (&s).write_all(get(path, "alone").as_bytes()).unwrap();
    read_answer(&mut BufReader::new(s))
}

#[test]
fn pipelined_requests_are_answered_in_order_with_their_own_bodies() {
    let server = Server::builder().start();
    let health = alone(&server, "/healthz");
    let doc = alone(&server, "/openapi.json");
    assert_eq!(health.status, 200);
    assert_eq!(doc.status, 200);
    assert!(
        doc.body.len() > 4096,
        "the document is large: {}",
        doc.body.len()
    );
    let s = connect(&server);
    let mut wire = String::new();
    for i in 0..300 {
        // small answers, a 401, and large ones in between
        let path = match i % 3 {
            0 => "/healthz",
            1 => "/api/v1/token/verify",
            _ if i % 30 == 2 => "/openapi.json",
            _ => "/readyz",
        };
        wire.push_str(&get(path, &format!("pipelined-{i:04}")));
    }
    (&s).write_all(wire.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    for i in 0..300 {
        let a = read_answer(&mut r);
        assert_eq!(a.request_id.as_deref(), Some(&*format!("pipelined-{i:04}")));
        match i % 3 {
            0 => assert_eq!((a.status, &a.body), (200, &health.body)),
            1 => assert_eq!(a.status, 401),
            _ if i % 30 == 2 => assert_eq!((a.status, &a.body), (200, &doc.body)),
            _ => assert_eq!(a.status, 200),
        }
    }
}

#[test]
fn many_connections_at_once_each_get_their_own_answers() {
    let server = Server::builder().start();
    let port = server.port;
    let threads: Vec<_> = (0..64)
        .map(|c| {
            std::thread::spawn(move || {
                let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                for i in 0..100 {
                    let id = format!("conn-{c:02}-{i:03}");
                    // one at a time, and now and then two at once
                    (&s).write_all(get("/healthz", &id).as_bytes()).unwrap();
                    if i % 10 == 0 {
                        (&s).write_all(get("/healthz", &format!("{id}-b")).as_bytes())
                            .unwrap();
                    }
                    let a = read_answer(&mut r);
                    assert_eq!(a.status, 200);
                    assert_eq!(a.request_id.as_deref(), Some(&*id));
                    if i % 10 == 0 {
                        let b = read_answer(&mut r);
                        assert_eq!(b.request_id.as_deref(), Some(&*format!("{id}-b")));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a connection got a wrong answer");
    }
}

#[test]
fn a_client_that_stops_reading_still_gets_every_answer_once_it_reads() {
    let server = Server::builder().start();
    let doc = alone(&server, "/openapi.json").body;
    // a small receive window, and far more answers than the socket
    // buffers hold, the document's among them
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], server.port)).into())
        .expect("connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let n = 40_000;
    let mut wire = String::new();
    for i in 0..n {
        let path = if i % 2500 == 7 {
            "/openapi.json"
        } else {
            "/healthz"
        };
        wire.push_str(&get(path, &format!("slow-{i:05}")));
    }
    let writer = {
        let s = s.try_clone().unwrap();
        std::thread::spawn(move || (&s).write_all(wire.as_bytes()))
    };
    std::thread::sleep(Duration::from_millis(800));
    let mut r = BufReader::with_capacity(512, s);
    for i in 0..n {
        if i % 5000 == 0 {
            // stop reading again for a while
            std::thread::sleep(Duration::from_millis(200));
        }
        let a = read_answer(&mut r);
        assert_eq!(a.status, 200, "answer {i}");
        assert_eq!(a.request_id.as_deref(), Some(&*format!("slow-{i:05}")));
        if i % 2500 == 7 {
            assert!(a.body == doc, "answer {i}: the document, whole");
        }
    }
    writer
        .join()
        .unwrap()
        .expect("the requests were all written");
}

#[test]
fn a_connection_the_client_closes_gets_its_answer_then_the_end() {
    let server = Server::builder().start();
    let doc = alone(&server, "/openapi.json").body;
    for (path, body) in [("/healthz", None), ("/openapi.json", Some(&doc))] {
        let s = connect(&server);
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        (&s).write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let a = read_answer(&mut r);
        assert_eq!(a.status, 200);
        assert!(a.close, "{path}: the answer says the connection closes");
        if let Some(body) = body {
            assert!(&a.body == body, "{path}: the whole body");
        }
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("the server closes");
        assert!(rest.is_empty(), "{path}: nothing after the answer");
    }
}

#[test]
fn answers_before_a_malformed_request_all_arrive_then_its_400() {
    // the dispatcher ends such a connection right after the 400, with
    // the answers before it possibly still queued
    let server = Server::builder().start();
    let s = connect(&server);
    let mut wire = String::new();
    for i in 0..200 {
        wire.push_str(&get("/healthz", &format!("before-{i:03}")));
    }
    wire.push_str("NOT A REQUEST\r\n\r\n");
    (&s).write_all(wire.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut r = BufReader::new(s);
    for i in 0..200 {
        let a = read_answer(&mut r);
        assert_eq!(a.status, 200, "answer {i}");
        assert_eq!(a.request_id.as_deref(), Some(&*format!("before-{i:03}")));
    }
    assert_eq!(read_answer(&mut r).status, 400);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).expect("the server closes");
    assert!(rest.is_empty(), "nothing after the 400");
}
