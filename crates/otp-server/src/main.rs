//! # otp-server
//!
//! The stateless-otp binary, a thin `main` over the `otp_server` library:
//! parses the CLI (clap), loads the settings (defaults < TOML file <
//! environment < flags, [`otp_server::settings`]), sets up logging
//! (tracing-subscriber on the buffered stderr writer of
//! [`otp_server::log_writer`]), then [`otp_server::build`]s the store, delivery
//! backend and OTP service and [`otp_server::serve`]s the REST API until
//! SIGTERM/SIGINT, draining in-flight requests before exiting 0.
//!
//! Subcommands: `serve` (default), `keygen [otp|jwt|ed25519]`, `check-config`,
//! `healthcheck`, `probe [--webhook]`, `send-test IDENTITY`
//! ([`otp_server::probe`]). See `otp-server --help`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use otp_core::{encode_key, generate_key, GENERATED_KEY_BYTES};
use otp_core::{generate_ed25519_pkcs8, generate_hs256_secret};

/// mimalloc instead of glibc malloc: the request path allocates and frees many
/// small buffers (headers, JSON, futures), and glibc's malloc/free were 4–10 %
/// of the server's user-space samples (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use otp_server::log_format::{PlainFields, PlainLine, UtcMicros};
use otp_server::log_writer::{LogGuard, LogWriter};
use otp_server::settings::{LogFormat, RawSettings, Settings};
use otp_server::vars;

/// One-time-code authentication without a database of codes.
#[derive(Debug, Parser)]
#[command(
    name = "otp-server",
    version,
    about = "stateless-otp: one-time-code authentication without a database of codes",
    after_help = "Configuration layers, later wins: built-in defaults < TOML file (--config) < \
environment variables < flags. `otp-server env` lists every variable.\n\n\
Examples:\n  \
otp-server serve --dev                     development: ephemeral secrets, codes on the console\n  \
OTP_SECRET_KEY=$(otp-server keygen otp) JWT_SECRET=$(otp-server keygen jwt) otp-server serve --bind 0.0.0.0:8000\n  \
otp-server check-config --config /etc/otp-server.toml\n  \
otp-server healthcheck --url http://127.0.0.1:8000/healthz"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Clone, clap::Args, Default)]
struct ServeArgs {
    /// Listen address (overrides BIND_ADDRESS; default 127.0.0.1:8000).
    #[arg(long, global = true)]
    bind: Option<String>,
    /// TOML configuration file (keys are the variable names; environment and flags win).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Development mode: ephemeral secrets when unset (loud warning), console delivery by default.
    #[arg(long, global = true)]
    dev: bool,
    /// actix worker threads (overrides WORKERS; default: number of cores minus one, at least 1).
    #[arg(long, global = true)]
    workers: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Print a fresh key: otp (32 random bytes, base64url), jwt (HS256 secret), ed25519 (PKCS#8, base64 DER).
    Keygen {
        /// What to generate.
        #[arg(value_enum, default_value_t = KeyKind::Otp)]
        kind: KeyKind,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Print every configuration variable with its default and meaning (Markdown table).
    Env {
        /// One table per concern (server, HTTP, OTP policy, …), as in docs/operations.md.
        #[arg(long)]
        grouped: bool,
    },
    /// Connect to every configured component (Redis, SMTP, Twilio; the webhook with --webhook) and report each in one line; sends nothing. Exit 0 only if all pass.
    Probe {
        /// Also send one signed `test` event to WEBHOOK_URL.
        #[arg(long)]
        webhook: bool,
    },
    /// Send one real code to IDENTITY through the configured delivery and say where it went.
    SendTest {
        /// An email address, phone number (+E.164) or other identity.
        identity: String,
    },
    /// Probe a running server's /healthz (exit 0 when it answers 200); for container probes.
    Healthcheck {
        /// URL to probe [default: /healthz on --bind, else BIND_ADDRESS, else
        /// 127.0.0.1:8000; an unspecified address (0.0.0.0, ::) means loopback].
        #[arg(long)]
        url: Option<String>,
        /// Timeout in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyKind {
    Otp,
    Jwt,
    Ed25519,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // `otp-server env | head`: the reader has what it wanted.
        Err(e) if is_closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otp-server: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to stdout. Unlike `print!`, a closed stdout is an error
/// (which [`main`] turns into a quiet exit), not a panic.
fn emit(text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    write!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn load(args: &ServeArgs) -> anyhow::Result<(RawSettings, Settings)> {
    let mut raw = RawSettings::load(args.config.as_deref(), std::env::vars())?;
    if let Some(bind) = &args.bind {
        raw.set("BIND_ADDRESS", bind.clone(), "flag");
    }
    if let Some(w) = args.workers {
        raw.set("WORKERS", w.to_string(), "flag");
    }
    let settings = Settings::from_raw(&raw, args.dev)?;
    Ok((raw, settings))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Keygen { kind } => keygen(kind),
        Command::CheckConfig => check_config(&cli.serve),
        Command::Env { grouped } => {
            emit(if grouped {
                vars::markdown_grouped()
            } else {
                vars::markdown_table()
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url, timeout_ms } => {
            let url = url.unwrap_or_else(|| {
                let bind = cli
                    .serve
                    .bind
                    .clone()
                    .or_else(|| std::env::var("BIND_ADDRESS").ok());
                default_health_url(bind.as_deref())
            });
            Ok(healthcheck(&url, Duration::from_millis(timeout_ms)))
        }
        Command::Serve => {
            let (_, settings) = load(&cli.serve)?;
            serve(settings, cli.serve.dev)
        }
        Command::Probe { webhook } => probe(&cli.serve, webhook),
        Command::SendTest { identity } => {
            let (_, settings) = load(&cli.serve)?;
            let line = runtime()?.block_on(otp_server::probe::send_test(&settings, &identity))?;
            emit(format_args!("{line}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `otp-server keygen KIND`: one fresh key on stdout.
fn keygen(kind: KeyKind) -> anyhow::Result<ExitCode> {
    let out = match kind {
        KeyKind::Otp => encode_key(&generate_key(GENERATED_KEY_BYTES)?),
        KeyKind::Jwt => generate_hs256_secret()?.to_string(),
        KeyKind::Ed25519 => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(generate_ed25519_pkcs8()?.expose())
        }
    };
    emit(format_args!("{out}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// `otp-server check-config`: everything `serve` checks, then the effective
/// configuration with secrets redacted.
fn check_config(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let (raw, settings) = load(args)?;
    otp_server::components(&settings)?;
    let mut report = String::from("configuration is valid\n");
    for warning in &settings.warnings {
        report.push_str(&format!("warning: {warning}\n"));
    }
    for (name, value, source) in raw.redacted() {
        report.push_str(&format!("{name:<32} {value:<40} ({source})\n"));
    }
    report.push_str(&format!(
        "effective: store={} delivery={} jwt={} bind={} workers={}\n",
        store_name(&settings),
        settings.delivery.backend().as_str(),
        settings.token_keys.algorithm().as_str(),
        settings.server.bind,
        settings.server.workers
    ));
    emit(report)?;
    Ok(ExitCode::SUCCESS)
}

/// `otp-server probe`: one line per configured component; exit 1 unless all pass.
fn probe(args: &ServeArgs, webhook: bool) -> anyhow::Result<ExitCode> {
    let (_, settings) = load(args)?;
    let checks = runtime()?.block_on(otp_server::probe::probe(&settings, webhook));
    let mut out = String::new();
    for c in &checks {
        out.push_str(&format!("{c}\n"));
    }
    emit(out)?;
    Ok(if checks.iter().all(|c| c.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The `--dev` warning: a box on stderr for people, or WARN records when
/// logs are JSON (so log pipelines keep one JSON object per line).
fn dev_warning(format: LogFormat, notes: &[String]) {
    const HEADLINE: &str = "development mode (--dev): do not use in production";
    match format {
        LogFormat::Json => {
            tracing::warn!("{HEADLINE}");
            for note in notes {
                tracing::warn!(dev = true, "{note}");
            }
        }
        LogFormat::Pretty => {
            let rule = "=".repeat(66);
            eprintln!("\n  {rule}");
            eprintln!("  WARNING: {HEADLINE}.");
            for note in notes {
                eprintln!("    - {note}");
            }
            eprintln!("  {rule}\n");
        }
    }
}

/// A runtime for the one-shot subcommands (`probe`, `send-test`).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

fn store_name(s: &Settings) -> &'static str {
    match s.store {
        otp_ratelimit::StoreConfig::Memory { .. } => "memory",
        #[allow(unreachable_patterns)]
        _ => "redis",
    }
}

/// Installs the log subscriber on the buffered stderr writer
/// ([`otp_server::log_writer`]), with the cheaper timestamp and field
/// formatting of [`otp_server::log_format`] (the same bytes). Logs are written until the returned guard
/// drops; it writes whatever is still buffered then.
fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<LogGuard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: journald and container logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = LogWriter::stderr().context("log writer thread")?;
    writer.install_panic_flush();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_timer(UtcMicros)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        // The same lines as `DefaultFields` writes without colours, cheaper.
        LogFormat::Pretty if !ansi => builder
            .fmt_fields(PlainFields)
            .event_format(PlainLine::with_timer(UtcMicros))
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    Ok(guard)
}

fn serve(settings: Settings, dev: bool) -> anyhow::Result<ExitCode> {
    // Held to the end of `serve`, also when it returns an error: dropping
    // it writes every buffered line before `main` prints the error.
    let _log = init_logging(settings.server.log_format, &settings.server.rust_log)?;
    if dev {
        dev_warning(settings.server.log_format, &settings.dev_notes);
    }
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    // The main thread runs actix's system (store connections, signal
    // handling); request handling runs on `WORKERS` worker threads.
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let parts = otp_server::build(&settings).await?;
        let listener = otp_server::bind(settings.server.bind)?;
        // Machine-readable line for tests and scripts that bind port 0
        // (nobody reading stdout is no reason not to serve).
        let _ = emit(format_args!(
            "listening on http://{}\n",
            listener.local_addr()?
        ));
        otp_server::serve(parts, listener, shutdown_signal()).await
    })?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT (either starts the graceful drain).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// `http://<bind>/healthz`, with an unspecified address (0.0.0.0, ::)
/// replaced by loopback, so a container's `HEALTHCHECK` follows
/// `BIND_ADDRESS` without repeating the port.
fn default_health_url(bind: Option<&str>) -> String {
    let addr = bind
        .and_then(|b| b.trim().parse::<std::net::SocketAddr>().ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8000)));
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!(
        "http://{}/healthz",
        std::net::SocketAddr::new(ip, addr.port())
    )
}

/// GET `url` over plain HTTP/1.1; 0 exit when the status is 200.
fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
    let probe = || -> anyhow::Result<u16> {
        let rest = url
            .strip_prefix("http://")
            .context("only http:// URLs are supported")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = authority
            .to_socket_addrs()?
            .next()
            .context("address did not resolve")?;
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: otp-server-healthcheck\r\n\r\n")?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf)?;
        let head = std::str::from_utf8(&buf[..n]).unwrap_or("");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("not an HTTP response")?;
        Ok(status)
    };
    match probe() {
        Ok(200) => {
            let _ = emit("ok\n");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("unhealthy: {url} answered {status}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e:#}");
            ExitCode::from(1)
        }
    }
}
