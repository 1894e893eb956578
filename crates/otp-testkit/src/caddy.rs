//! Caddy in the foreground on a Caddyfile a test rendered into a
//! [`TempDir`]: [`write_config`] writes it (refusing one that could bind
//! more than loopback or open the admin API elsewhere), [`command`] builds
//! `caddy run --config … --adapter caddyfile` with Caddy's data and config
//! directories inside the scratch directory, [`check`] runs
//! `caddy validate` on it, and [`start`] spawns it in its own process group
//! and waits until it listens.
//!
//! A rendered Caddyfile turns automatic HTTPS off (`auto_https off` in the
//! global options, `http://` site addresses), binds each site to 127.0.0.1
//! (`bind 127.0.0.1`) and turns the admin endpoint off (`admin off`), so
//! nothing is fetched from outside and nothing listens beyond loopback.
//!
//! ```no_run
//! # fn main() {
//! use otp_testkit::{caddy, free_port, skip_without, TempDir};
//! if skip_without("caddy") {
//!     return; // reason printed (or panicked under OTP_E2E_REQUIRE_ALL=1)
//! }
//! let dir = TempDir::new("caddy");
//! let port = free_port();
//! let conf = caddy::write_config(
//!     &dir,
//!     &format!(
//!         "{{\n\tadmin off\n\tauto_https off\n}}\n\
//!          http://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n\trespond \"ok\"\n}}\n"
//!     ),
//! );
//! let cmd = caddy::command(&dir, &conf);
//! caddy::check(&cmd);
//! let _caddy = caddy::start(cmd, port);
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::{ChildGuard, TempDir};

/// Writes `caddyfile` to `dir/Caddyfile` and returns its path. Panics when
/// the text lacks `admin off`, `auto_https off` or `bind 127.0.0.1` (a test
/// must not listen beyond loopback or reach out for certificates).
pub fn write_config(dir: &TempDir, caddyfile: &str) -> PathBuf {
    for needed in ["admin off", "auto_https off", "bind 127.0.0.1"] {
        assert!(
            caddyfile.contains(needed),
            "a test Caddyfile must say `{needed}`:\n{caddyfile}"
        );
    }
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `caddy run --config <conf> --adapter caddyfile`, with `HOME`,
/// `XDG_DATA_HOME` and `XDG_CONFIG_HOME` inside `dir` (Caddy keeps its
/// storage and autosaved configuration there, not in the user's home).
pub fn command(dir: &TempDir, conf: &Path) -> Command {
    let mut cmd = Command::new("caddy");
    cmd.arg("run")
        .arg("--config")
        .arg(conf)
        .arg("--adapter")
        .arg("caddyfile");
    with_scratch_home(&mut cmd, dir);
    cmd
}

fn with_scratch_home(cmd: &mut Command, dir: &TempDir) {
    cmd.env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
}

/// Runs `caddy validate` on the configuration of `cmd` (see [`command`]);
/// panics with Caddy's message when it rejects it.
pub fn check(cmd: &Command) {
    let mut args = cmd.get_args();
    let _run = args.next();
    let mut validate = Command::new("caddy");
    validate.arg("validate").args(args);
    validate.envs(
        cmd.get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
    );
    let out = validate.output().expect("caddy validate");
    assert!(
        out.status.success(),
        "caddy validate rejects the rendered configuration:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `cmd` (see [`command`]; [`check`] it first) and waits until it
/// listens on 127.0.0.1:`port`. Caddy's log goes to `dir/caddy.log` of the
/// directory its `HOME` points at.
pub fn start(mut cmd: Command, port: u16) -> ChildGuard {
    let log = cmd
        .get_envs()
        .find(|(k, _)| *k == "HOME")
        .and_then(|(_, v)| v)
        .map(|home| Path::new(home).join("caddy.log"));
    let stderr = match log.and_then(|p| std::fs::File::create(p).ok()) {
        Some(file) => Stdio::from(file),
        None => Stdio::null(),
    };
    let mut guard = ChildGuard::spawn(cmd.stdout(Stdio::null()).stderr(stderr), "caddy");
    guard.wait_for_port(port, "caddy");
    guard
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{free_port, skip_without};
    use std::io::{Read, Write};

    #[test]
    fn a_caddyfile_that_could_bind_beyond_loopback_is_refused() {
        let dir = TempDir::new("caddy-refuse");
        let open = "{\n\tadmin off\n\tauto_https off\n}\nhttp://:8080 {\n\trespond ok\n}\n";
        let refused = std::panic::catch_unwind(|| write_config(&dir, open));
        assert!(refused.is_err());
    }

    #[test]
    fn caddy_serves_a_rendered_caddyfile_on_loopback_and_dies_with_its_guard() {
        if skip_without("caddy") {
            return;
        }
        let dir = TempDir::new("caddy-serve");
        let port = free_port();
        let conf = write_config(
            &dir,
            &format!(
                "{{\n\tadmin off\n\tauto_https off\n}}\n\
                 http://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n\trespond \"hello from caddy\"\n}}\n"
            ),
        );
        let cmd = command(&dir, &conf);
        check(&cmd);
        let guard = start(cmd, port);
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("hello from caddy"), "{out}");
        let pgid = guard.0.id();
        drop(guard);
        assert!(crate::process::process_group_members(pgid).is_empty());
    }
}
