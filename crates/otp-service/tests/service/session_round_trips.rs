//! One Redis round trip per session call (SPEC §10: "a refresh is one
//! round trip on Cluster too"), counted with `MONITOR` on every master:
//! a command a script runs is printed as `[0 lua]`, a command a client
//! sent with its address, so the client's commands are counted exactly
//! (`INFO commandstats` counts both and cannot tell them apart). A warm
//! refresh (a script call), logout, revoke and sign out everywhere each
//! send exactly one command, on standalone and on a 3-master Cluster, and a
//! malformed token none.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use otp_ratelimit::Store;
use otp_testkit as testkit;

use crate::harness::{config, redis_store, service_with, Outbox};
use crate::sessions::sign_in;

/// `redis-cli MONITOR` on one server, its lines collected by a thread.
struct Monitor {
    child: Child,
    reader: JoinHandle<Vec<String>>,
}

impl Monitor {
    /// Starts monitoring `server` and returns once Redis confirmed (`OK`).
    fn start(server: &testkit::RedisServer) -> Monitor {
        let mut child = Command::new("redis-cli")
            .arg("-p")
            .arg(server.port().to_string())
            .arg("MONITOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli MONITOR");
        let out = child.stdout.take().unwrap();
        let (ready, is_ready) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line == "OK" {
                    let _ = ready.send(());
                } else {
                    lines.push(line);
                }
            }
            lines
        });
        is_ready
            .recv_timeout(Duration::from_secs(10))
            .expect("MONITOR answered OK");
        Monitor { child, reader }
    }

    /// Stops monitoring (after the server had time to print) and returns
    /// the commands clients sent: `[db addr] "CMD" …` lines, not `lua`.
    fn client_commands(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        const NOT_DATA: &[&str] = &[
            "ping", "info", "cluster", "command", "client", "hello", "readonly", "select", "auth",
        ];
        self.reader
            .join()
            .unwrap()
            .into_iter()
            .filter(|l| !l.contains(" lua] "))
            .filter_map(|l| {
                let cmd = l.split('"').nth(1)?.to_ascii_lowercase();
                (!NOT_DATA.contains(&cmd.as_str())).then_some(cmd)
            })
            .collect()
    }
}

/// The client commands every server saw while `op` ran.
async fn commands_of<F: std::future::Future>(
    servers: &[&testkit::RedisServer],
    op: F,
) -> (F::Output, Vec<String>) {
    let monitors: Vec<Monitor> = servers.iter().map(|s| Monitor::start(s)).collect();
    let out = op.await;
    let cmds = monitors
        .into_iter()
        .flat_map(Monitor::client_commands)
        .collect();
    (out, cmds)
}

/// Exactly one command reached Redis (a script, or a single DEL for a
/// logout): one round trip.
fn one_round_trip(what: &str, cmds: &[String]) {
    assert_eq!(
        cmds.len(),
        1,
        "{what}: one round trip; the clients sent {cmds:?}"
    );
}

/// The rotation is a compare-and-set: one script call.
fn one_script(what: &str, cmds: &[String]) {
    one_round_trip(what, cmds);
    assert!(
        cmds[0] == "evalsha" || cmds[0] == "eval",
        "{what}: a script call; the clients sent {cmds:?}"
    );
}

async fn each_session_call_is_one_round_trip(servers: &[&testkit::RedisServer], urls: Vec<String>) {
    let store: Arc<dyn Store> = Arc::new(redis_store(urls).await);
    let outbox = Outbox::new();
    let s = service_with(config(), store, outbox.clone());
    // Warm every script (SCRIPT LOAD on first use) on a throwaway identity.
    let w = sign_in(&s, &outbox, "warm@example.com").await;
    let r = s.refresh(&w.refresh.unwrap().token).await.unwrap();
    s.revoke(&r.refresh.token).await.unwrap();
    let w = sign_in(&s, &outbox, "warm@example.com").await;
    s.logout(&w.token.token, false).await.unwrap();
    s.logout(&w.token.token, true).await.unwrap();

    let id = "trips@example.com";
    let v = sign_in(&s, &outbox, id).await;
    let (r, cmds) = commands_of(servers, s.refresh(&v.refresh.unwrap().token)).await;
    let r = r.unwrap();
    one_script("refresh", &cmds);
    let (again, cmds) = commands_of(servers, s.refresh(&r.refresh.token)).await;
    again.unwrap();
    one_script("second refresh", &cmds);
    let (out, cmds) = commands_of(servers, s.logout(&r.token.token, false)).await;
    out.unwrap();
    one_round_trip("logout", &cmds);
    let v = sign_in(&s, &outbox, id).await;
    let (out, cmds) = commands_of(servers, s.revoke(&v.refresh.unwrap().token)).await;
    out.unwrap();
    one_round_trip("revoke", &cmds);
    let v = sign_in(&s, &outbox, id).await;
    let (out, cmds) = commands_of(servers, s.logout(&v.token.token, true)).await;
    out.unwrap();
    one_round_trip("sign out everywhere", &cmds);
    // A refused token is no round trip at all.
    let (out, cmds) = commands_of(servers, s.refresh("ort1_garbage")).await;
    assert!(out.is_err());
    assert!(cmds.is_empty(), "a malformed token reached Redis: {cmds:?}");
}

#[tokio::test]
async fn each_session_call_is_one_redis_round_trip_on_standalone() {
    let Some(server) = testkit::started_redis_or_skip("session_round_trips_standalone") else {
        return;
    };
    each_session_call_is_one_round_trip(&[&server], vec![server.url()]).await;
}

#[tokio::test]
async fn each_session_call_is_one_redis_round_trip_on_a_cluster() {
    let Some(cluster) = testkit::cluster_or_skip("session_round_trips_cluster") else {
        return;
    };
    let nodes: Vec<&testkit::RedisServer> = cluster.nodes().iter().collect();
    each_session_call_is_one_round_trip(&nodes, cluster.urls()).await;
}
