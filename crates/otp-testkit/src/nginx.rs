//! nginx in the foreground on a configuration a test rendered into a
//! [`TempDir`] (pid, logs and temp paths inside it, `listen` on a loopback
//! port): [`command`] builds the invocation, [`check`] runs `nginx -t` with
//! it, [`start`] spawns it in its own process group (workers die with the
//! master) and waits until it listens.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::process::{ChildGuard, TempDir};

/// `nginx -p <dir> -c <conf> -e <dir>/logs/error.log -g 'daemon off;'`:
/// nginx in the foreground with `dir` as its prefix. `conf` is usually
/// `dir.join("nginx.conf")`.
pub fn command(dir: &TempDir, conf: &Path) -> Command {
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .arg("-g")
        .arg("daemon off;");
    cmd
}

/// Runs `nginx -t` with the arguments of `cmd`; panics with nginx's message
/// when it rejects the configuration.
pub fn check(cmd: &Command) {
    let out = Command::new("nginx")
        .args(cmd.get_args())
        .arg("-t")
        .output()
        .expect("nginx -t");
    assert!(
        out.status.success(),
        "nginx -t rejects the rendered configuration:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `cmd` (see [`command`]; [`check`] it first) and waits until it
/// listens on 127.0.0.1:`port`.
pub fn start(mut cmd: Command, port: u16) -> ChildGuard {
    let mut guard = ChildGuard::spawn(cmd.stdout(Stdio::null()).stderr(Stdio::null()), "nginx");
    guard.wait_for_port(port, "nginx");
    guard
}
