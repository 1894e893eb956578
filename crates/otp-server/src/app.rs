//! From settings to a running server, shared by `serve`, `check-config` and
//! the tests (mini-redis' `server::run` shape):
//!
//! - [`components`] builds what needs no I/O (delivery backend, token
//!   service), so `check-config` fails on everything those constructors
//!   check;
//! - [`build`] adds the store (waiting up to `REDIS_STARTUP_WAIT_SECONDS`
//!   for Redis to answer, then going on without it: the store connects in
//!   the background, so a pod started during an outage never crash-loops),
//!   the audit webhook's background task when `AUDIT_WEBHOOK_URL` is set,
//!   and the OTP service: the [`Parts`];
//! - [`serve`] runs the REST API (and with `GATE=on` the web gate's pages)
//!   on a bound listener until `shutdown` resolves, then drains in-flight
//!   requests for at most `SHUTDOWN_TIMEOUT_SECONDS`; meanwhile a background ping
//!   ([`STORE_PING_INTERVAL`]) keeps the `otp_store_up` gauge current and
//!   logs when Redis goes away and comes back;
//! - [`run`] is `build` then `serve`.
//!
//! ```no_run
//! # async fn demo(settings: otp_server::Settings) -> anyhow::Result<()> {
//! let listener = otp_server::bind("127.0.0.1:0".parse()?)?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = otp_server::run(listener, settings, async { let _ = stopped.await; });
//! # drop(stop); server.await
//! # }
//! ```

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol};
use actix_service::{fn_service, map_config, ServiceFactoryExt as _};
use actix_web::dev::AppConfig;
use actix_web::{web, App};
use anyhow::Context as _;
use otp_core::TokenService;
use otp_delivery::Delivery;
use otp_http::gate::GateConfig;
use otp_http::{HttpConfig, HttpState, MAX_BODY_BYTES};
use otp_service::metrics::ServiceMetrics;
use otp_service::OtpService;

use crate::settings::{self, ServerSettings, SettingError, Settings};

/// Connections the kernel queues before `accept` (actix's default).
const BACKLOG: i32 = 1024;

/// How often [`serve`] pings a network store (Redis) in the background.
pub const STORE_PING_INTERVAL: Duration = Duration::from_secs(5);

/// The parts that need no I/O to build.
pub struct Components {
    /// The delivery backend, wrapped in its retry policy.
    pub delivery: Arc<dyn Delivery>,
    /// Issues and verifies tokens.
    pub tokens: TokenService,
}

/// Builds the delivery backend and the token service. Errors are the
/// binary's one line naming the variable.
pub fn components(settings: &Settings) -> Result<Components, SettingError> {
    // Some delivery clients expect a Tokio runtime when they are built.
    let rt;
    let handle = match tokio::runtime::Handle::try_current() {
        Ok(h) => h,
        Err(_) => {
            rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| settings::err("runtime", e.to_string()))?;
            rt.handle().clone()
        }
    };
    let _guard = handle.enter();
    let delivery = otp_delivery::build_delivery(&settings.delivery, &settings.retry)
        .map_err(|e| settings::delivery::map_error(&e))?;
    let tokens = TokenService::new(settings.token_keys.clone(), settings.token_config.clone())
        .map_err(|e| settings::token_error(&e))?;
    Ok(Components { delivery, tokens })
}

/// Everything [`serve`] needs: the service and the HTTP and server settings.
pub struct Parts {
    /// The OTP service (store, delivery, tokens).
    pub service: Arc<OtpService>,
    /// HTTP settings (CORS, trusted proxies).
    pub http: HttpConfig,
    /// Listener, workers and timeouts.
    pub server: ServerSettings,
    /// The web gate (`GATE=on`), mounted by [`serve`].
    pub gate: Option<GateConfig>,
}

/// Turns settings into the running parts: [`components`], then the store
/// (an unreachable Redis is awaited for `REDIS_STARTUP_WAIT_SECONDS`, then
/// left to connect in the background).
pub async fn build(settings: &Settings) -> anyhow::Result<Parts> {
    let Components { delivery, tokens } = components(settings)?;
    let store = otp_ratelimit::build_store_lazy(settings.store.clone())
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    let metrics = Arc::new(ServiceMetrics::default());
    let mut builder = OtpService::builder(settings.service.clone(), tokens)
        .store(store)
        .delivery(delivery)
        .metrics(metrics.clone());
    if let Some(webhook) = &settings.audit_webhook {
        builder = builder.audit_sink(audit_webhook(webhook, &metrics)?);
    }
    let service = builder.build();
    await_store(&service, settings.server.store_wait).await;
    Ok(Parts {
        service: Arc::new(service),
        http: settings.http.clone(),
        server: settings.server.clone(),
        gate: settings.gate.clone(),
    })
}

/// The audit webhook's queue and background task (SPEC §10), counting its
/// drops in `metrics`.
#[cfg(feature = "webhook")]
fn audit_webhook(
    webhook: &settings::audit::AuditWebhookSettings,
    metrics: &ServiceMetrics,
) -> Result<Arc<dyn otp_service::AuditSink>, SettingError> {
    let poster = settings::audit::poster(webhook)?;
    let config = otp_service::audit::AuditWebhookConfig {
        queue_size: webhook.queue_size,
        ..Default::default()
    };
    let sink =
        otp_service::audit::AuditWebhook::start(poster, config, metrics.audit_dropped.clone());
    Ok(Arc::new(sink))
}

/// Without the `webhook` feature, settings never hold an audit webhook.
#[cfg(not(feature = "webhook"))]
fn audit_webhook(
    webhook: &settings::audit::AuditWebhookSettings,
    _metrics: &ServiceMetrics,
) -> Result<Arc<dyn otp_service::AuditSink>, SettingError> {
    settings::audit::poster(webhook)?;
    Err(settings::err("AUDIT_WEBHOOK_URL", "no webhook support"))
}

/// Binds a loopback or public listener the way actix does (address reuse,
/// a 1024-connection backlog). `BIND_ADDRESS` names the error.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        Ok(socket.into())
    };
    listen().with_context(|| format!("BIND_ADDRESS: cannot listen on {addr}"))
}

/// [`build`], then [`serve`] until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let parts = build(&settings).await?;
    serve(parts, listener, shutdown).await
}

/// Serves the REST API on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish (at most
/// `SHUTDOWN_TIMEOUT_SECONDS`) and returns.
pub async fn serve(
    parts: Parts,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Parts {
        service,
        http,
        server: s,
        gate,
    } = parts;
    let addr = listener.local_addr().context("listener address")?;
    let gate_path = gate.as_ref().map(|g| g.path.clone());
    let state = HttpState::new(service.clone(), http.clone());
    let state = match gate {
        Some(g) => state.with_gate(g),
        None => state,
    };
    // actix-web's `HttpServer::listen`, with one difference: each accepted
    // connection is a `Coalesced`, whose responses go out at the end of the
    // worker's turn (crate::coalesce).
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let keep_alive = s.keep_alive;
    let (request_timeout, disconnect_timeout) = (s.client_request_timeout, Duration::from_secs(1));
    let factory = move || {
        // forward auth's common case and the JSON POSTs of the code check
        // and the refresh are answered before the App (the answer the App
        // would give: otp_http::fast_lane)
        let app = App::new()
            // slow bodies are cut off on every path, unknown ones included
            .wrap(actix_web::middleware::from_fn(
                otp_http::body_deadline::guard,
            ))
            .wrap(actix_web::middleware::Condition::new(
                !http.cors_origins.is_empty(),
                otp_http::cors(&http).unwrap_or_default(),
            ))
            // outermost: every answer gets its request id, every line its span
            .wrap(actix_web::middleware::from_fn(otp_http::observe::observe))
            .configure(otp_http::configure(state.clone()))
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .default_service(web::to(otp_http::routes::not_found));
        let lane = otp_http::fast_lane::FastLane::new(&state, app)
            .map_err(|e: actix_web::Error| e.error_response());
        let graceful = graceful.clone();
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let graceful = graceful.clone();
                async move { graceful.notified().await }
            })
            .keep_alive(keep_alive)
            .client_request_timeout(request_timeout)
            .client_disconnect_timeout(disconnect_timeout)
            .local_addr(addr)
            // the App's connection config, as `HttpServer` gives it
            .finish(map_config(lane, move |()| {
                AppConfig::__priv_test_new(false, addr.to_string(), addr)
            }));
        fn_service(|io: tokio::net::TcpStream| async move {
            let peer = io.peer_addr().ok();
            Ok::<_, DispatchError>((crate::coalesce::Coalesced::new(io), Protocol::Http1, peer))
        })
        .and_then(http)
    };
    let server = builder
        .workers(s.workers)
        .shutdown_timeout(s.shutdown_timeout.as_secs())
        .max_concurrent_connections(s.max_connections)
        .disable_signals()
        .listen(format!("stateless-otp-{addr}"), listener, factory)
        .with_context(|| format!("BIND_ADDRESS: cannot listen on {addr}"))?;
    tracing::info!(
        bind = %addr,
        store = service.store_backend(),
        delivery = service.delivery_backend(),
        algorithm = service.tokens().algorithm().as_str(),
        workers = s.workers,
        docs = %format!("http://{addr}/docs"),
        gate = gate_path.as_deref().unwrap_or("off"),
        "stateless-otp listening"
    );
    let server = server.run();
    let handle = server.handle();
    // Memory always answers; only a network store needs watching.
    let pinger =
        (service.store_backend() != "memory").then(|| tokio::spawn(ping_store(service.clone())));
    let _pinger = AbortOnDrop(pinger);
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("server error"),
        () = shutdown => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
    // `stop` sends the command at once; the server future carries it out.
    let stopped = handle.stop(true);
    let result = server.await.context("server error");
    stopped.await;
    result
}

/// Pings the store until it answers or `wait` has passed (a log line per
/// failed try). Never fails: a store still down afterwards is connected in
/// the background by its next operations and [`ping_store`].
async fn await_store(service: &OtpService, wait: Duration) {
    let deadline = std::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(250);
    loop {
        match service.store_ping().await {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Redis is not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "REDIS_URL: Redis did not answer within REDIS_STARTUP_WAIT_SECONDS={}s; serving without it (requests that need it answer 503) and connecting in the background",
                    wait.as_secs()
                );
                return;
            }
        }
    }
}

/// Pings the store every [`STORE_PING_INTERVAL`] (the `otp_store_up` gauge)
/// and logs each change: Redis lost, Redis back.
async fn ping_store(service: Arc<OtpService>) {
    let mut up = service.store_ping().await.is_ok();
    let mut tick = tokio::time::interval(STORE_PING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = service.store_ping().await;
        match (&now, up) {
            (Ok(()), false) => tracing::info!("store answers again"),
            (Err(e), true) => {
                tracing::warn!(error = %e, "store unavailable; requests that need it answer 503 until it answers");
            }
            _ => {}
        }
        up = now.is_ok();
    }
}

/// Aborts the background task when [`serve`] returns, however it returns.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}
