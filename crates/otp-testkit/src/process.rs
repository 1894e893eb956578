//! Processes and scratch space for tests: skip-or-fail when a component is
//! missing, free loopback ports, temporary directories removed on drop, and
//! [`ChildGuard`], which kills a child's whole process group on drop.
//!
//! Only `std` is used, so any test runtime works.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Name of the variable that turns skips into failures.
pub const REQUIRE_ALL_ENV: &str = "OTP_E2E_REQUIRE_ALL";

/// Returns true if and only if `OTP_E2E_REQUIRE_ALL=1`.
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Reports that `test` cannot run because of `reason`: prints it to stderr,
/// or panics when `OTP_E2E_REQUIRE_ALL=1`.
pub fn skip(test: &str, reason: &str) {
    if require_all() {
        panic!("{test}: {reason} (and {REQUIRE_ALL_ENV}=1 forbids skipping)");
    }
    eprintln!("SKIPPED {test}: {reason}");
}

/// Returns true if and only if `program --version` runs successfully.
pub fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns true (the caller returns: skipped) if and only if `program` is
/// not on PATH; panics instead under `OTP_E2E_REQUIRE_ALL=1`.
pub fn skip_without(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(program, &format!("{program} is not on PATH"));
    }
    !found
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A unique empty directory under the system temp dir, removed with its
/// contents on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "otp-{tag}-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SIGKILLs every process in the process group led by `child` (a child
/// spawned with `CommandExt::process_group(0)`, so the group id is its pid),
/// then reaps `child`. Children that the process started (nginx workers, a
/// browser's helpers) die with it instead of outliving the test. Safe after
/// `child` has exited: until it is reaped its pid, and so the group id,
/// cannot be reused.
pub fn kill_process_group(child: &mut Child) {
    // `kill -KILL -- -PGID`: std has no killpg, and unsafe is forbidden.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// The live (not zombie) processes whose process group is `pgid`, read from
/// `/proc/*/stat`: empty once a group was killed.
pub fn process_group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the `(comm)` field: state, ppid, pgrp, …
            let mut rest = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            let state = rest.next();
            let pgrp = rest.nth(1).and_then(|g| g.parse::<u32>().ok());
            state != Some("Z") && pgrp == Some(pgid)
        })
        .collect()
}

/// A child process leading its own process group; the whole group is killed
/// ([`kill_process_group`]) and the child reaped on drop, also when the test
/// panics.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `cmd` as the leader of a new process group; panics naming
    /// `what` when it cannot start.
    pub fn spawn(cmd: &mut Command, what: &str) -> ChildGuard {
        ChildGuard(
            cmd.process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {what}: {e}")),
        )
    }

    /// Waits (at most 10 s) until something accepts TCP connections on
    /// 127.0.0.1:`port`; panics naming `what` when the child exits first or
    /// the time is up.
    pub fn wait_for_port(&mut self, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(s)) = self.0.try_wait() {
                panic!("{what} exited early: {s}");
            }
            assert!(Instant::now() < deadline, "{what} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        kill_process_group(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("testkit");
        std::fs::write(dir.join("f"), b"x").unwrap();
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn child_guard_kills_the_whole_process_group() {
        // A shell that forks a grandchild and waits: both must die.
        let mut guard = ChildGuard::spawn(
            Command::new("sh")
                .args(["-c", "sleep 30 & echo $! ; wait"])
                .stdout(Stdio::piped()),
            "sh",
        );
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(guard.0.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild = line.trim().to_owned();
        drop(guard);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            // Gone, or a zombie waiting for init to reap it.
            if stat.map_or(true, |s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            }) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the grandchild outlived the guard"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
