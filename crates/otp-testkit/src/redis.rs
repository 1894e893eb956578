//! Real `redis-server` processes for the integration tests of otp-ratelimit,
//! otp-service, otp-http and otp-server.
//!
//! - [`RedisServer`]: one standalone server on a free loopback port, in its
//!   own temporary directory, without persistence; can be stopped and
//!   restarted on the same port (outage tests).
//! - [`RedisCluster`]: a 3-master Redis Cluster (no replicas), created with
//!   `redis-cli --cluster create` and ready (`cluster_state:ok`).
//! - [`redis_or_skip`] / [`started_redis_or_skip`] / [`cluster_or_skip`]:
//!   start one, or explain why the test is skipped (a failure under
//!   `OTP_E2E_REQUIRE_ALL=1`). [`redis_or_skip`] uses `REDIS_URL` instead of
//!   starting a server when it is set.
//!
//! Every server runs in its own process group and is killed with that whole
//! group ([`kill_process_group`]), and its directory removed, when its guard
//! is dropped, also when the test panics. Only `std` is used: a server is a
//! port and a URL, never a store type (see the crate's dependency rule).
//!
//! ```no_run
//! # fn main() {
//! use otp_testkit::redis;
//! let Some(cluster) = redis::cluster_or_skip("my_cluster_test") else {
//!     return;
//! };
//! let seeds: Vec<String> = cluster.urls(); // one URL per master
//! # let _ = seeds;
//! # }
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::process::kill_process_group;
use crate::process::{on_path, skip, TempDir};

/// A Redis to test against: a started server, or `REDIS_URL`.
pub enum RedisTarget {
    /// A server started for this test (killed on drop).
    Started(RedisServer),
    /// An external server from `REDIS_URL` (shared: use unique keys).
    External(String),
}

impl RedisTarget {
    /// The `redis://` URL.
    pub fn url(&self) -> String {
        match self {
            RedisTarget::Started(s) => s.url(),
            RedisTarget::External(u) => u.clone(),
        }
    }
}

/// `REDIS_URL` if set, else a fresh [`RedisServer`]; `None` (after
/// [`skip`]) when neither is possible.
pub fn redis_or_skip(test: &str) -> Option<RedisTarget> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        if !url.trim().is_empty() {
            return Some(RedisTarget::External(url));
        }
    }
    started_redis_or_skip(test).map(RedisTarget::Started)
}

/// A fresh [`RedisServer`] (never `REDIS_URL`: for tests that stop it);
/// `None` (after [`skip`]) when `redis-server` is missing or fails.
pub fn started_redis_or_skip(test: &str) -> Option<RedisServer> {
    if !on_path("redis-server") {
        skip(test, "redis-server is not on PATH");
        return None;
    }
    match RedisServer::start() {
        Ok(s) => Some(s),
        Err(e) => {
            skip(test, &format!("could not start redis-server: {e}"));
            None
        }
    }
}

/// A fresh 3-master [`RedisCluster`]; `None` (after [`skip`]) when
/// `redis-server`/`redis-cli` are missing or the cluster fails to form.
pub fn cluster_or_skip(test: &str) -> Option<RedisCluster> {
    for p in ["redis-server", "redis-cli"] {
        if !on_path(p) {
            skip(test, &format!("{p} is not on PATH"));
            return None;
        }
    }
    match RedisCluster::start(3) {
        Ok(c) => Some(c),
        Err(e) => {
            skip(test, &format!("could not start a Redis Cluster: {e}"));
            None
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (and, if `bus`, whose
/// Cluster bus port `port + 10000` was free too).
fn free_port(bus: bool) -> std::io::Result<u16> {
    for _ in 0..200 {
        let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        let port = l.local_addr()?.port();
        if !bus {
            return Ok(port);
        }
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port pair found"))
}

/// Sends one inline command and returns what arrives within `timeout`
/// (enough for `PING` and `CLUSTER INFO`).
fn raw_command(port: u16, command: &str, timeout: Duration) -> std::io::Result<String> {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let mut s = TcpStream::connect_timeout(&addr.into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(format!("{command}\r\n").as_bytes())?;
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf)?;
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A `redis-server` child process on 127.0.0.1 (see the module docs).
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    cluster: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server on a free port and waits until it answers
    /// `PING` (at most 10 s).
    pub fn start() -> Result<Self, String> {
        Self::start_inner(false)
    }

    fn start_inner(cluster: bool) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port(cluster).map_err(|e| e.to_string())?;
            let dir = TempDir::new("redis");
            let mut s = RedisServer {
                port,
                dir,
                cluster,
                child: None,
            };
            match s.spawn() {
                Ok(()) => return Ok(s),
                // Most likely the port was taken in between: try another.
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--daemonize")
            .arg("no")
            .arg("--dir")
            .arg(self.dir.path().as_os_str())
            .arg("--logfile")
            .arg(self.log_path().as_os_str());
        if self.cluster {
            cmd.arg("--cluster-enabled")
                .arg("yes")
                .arg("--cluster-config-file")
                .arg(self.dir.join(&format!("nodes-{}.conf", self.port)))
                .arg("--cluster-node-timeout")
                .arg("2000");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = raw_command(self.port, "PING", Duration::from_millis(500)) {
                if r.starts_with("+PONG") {
                    return Ok(());
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "redis-server on port {} exited with {status}",
                        self.port
                    ));
                }
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("redis-server on port {} did not answer", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_process_group(&mut c);
        }
    }

    /// Starts the server again on the same port (empty, no persistence).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        // The port may linger briefly after the kill; retry for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs `redis-cli -p <port> <args>` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .map_err(|e| format!("redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of N masters without replicas (see the module docs).
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` (≥ 3) cluster-enabled servers, joins them with
    /// `redis-cli --cluster create` and waits until every node reports
    /// `cluster_state:ok` (at most 20 s).
    pub fn start(masters: usize) -> Result<Self, String> {
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            nodes.push(RedisServer::start_inner(true)?);
        }
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        for n in &nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = cmd
            .arg("--cluster-replicas")
            .arg("0")
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        wait_cluster_ok(&nodes)?;
        Ok(RedisCluster { nodes })
    }

    /// The seed URLs, one per master.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes (to run `redis-cli` on each, e.g. to scan keys).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, to stop or restart some of them.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Restarts every node on its port (each keeps its cluster config file,
    /// so the slot map survives; data does not) and waits for
    /// `cluster_state:ok` (at most 20 s).
    pub fn restart_all(&mut self) -> Result<(), String> {
        for n in &mut self.nodes {
            n.restart()?;
        }
        wait_cluster_ok(&self.nodes)
    }
}

/// Waits (at most 20 s) until every node reports `cluster_state:ok`.
fn wait_cluster_ok(nodes: &[RedisServer]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = nodes.iter().all(|n| {
            raw_command(n.port, "CLUSTER INFO", Duration::from_millis(500))
                .is_ok_and(|r| r.contains("cluster_state:ok"))
        });
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("cluster_state never became ok".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
