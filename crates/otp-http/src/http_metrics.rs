//! Request metrics: count by route and status, latency histogram by route,
//! and `otp_build_info`. Labels are static strings, so recording allocates
//! nothing. Every documented (route, status) pair and every route's
//! histogram exist at 0 from start-up ([`HttpMetrics::precreate`]).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of one request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route template, e.g. `/api/v1/otp/verify`.
    pub route: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        10.0,
    ])
}

/// Labels of `otp_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version (the workspace's), e.g. `0.2.0`.
    pub version: &'static str,
}

/// HTTP-level metrics.
#[derive(Debug)]
pub struct HttpMetrics {
    /// Requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Latency by route, seconds.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// `otp_build_info{version} 1`.
    pub build_info: Family<BuildLabels, Gauge>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            build_info,
        }
    }
}

impl HttpMetrics {
    /// Creates, at 0, the counter of every `(route, status)` given (routes
    /// this crate does not serve are skipped) and the latency histogram of
    /// every route this crate serves.
    pub fn precreate<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, u16)>) {
        for (path, status) in pairs {
            if let Some(route) = ROUTES.iter().copied().find(|r| *r == path) {
                drop(
                    self.requests
                        .get_or_create(&RequestLabels { route, status }),
                );
            }
        }
        for route in ROUTES {
            drop(self.latency.get_or_create(&RouteLabels { route }));
        }
    }

    /// Registers the families (`http_requests_total`,
    /// `http_request_duration_seconds`, `otp_build_info`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            self.latency.clone(),
        );
        registry.register(
            "otp_build_info",
            "Always 1; the labels name the running build",
            self.build_info.clone(),
        );
    }
}

/// The route templates this crate serves; anything else is `other`.
pub(crate) const ROUTES: [&str; 15] = [
    "/api/v1/otp/request",
    "/api/v1/otp/verify",
    "/api/v1/token/refresh",
    "/api/v1/logout",
    "/api/v1/token/revoke",
    "/api/v1/token/introspect",
    "/api/v1/token/verify",
    "/api/v1/auth/forward",
    "/health",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/.well-known/jwks.json",
    "/docs",
];

/// The web gate's pages (SPEC §11): path suffix under `GATE_PATH`, route
/// label (`{gate}` stands for `GATE_PATH`), and the statuses each answers.
pub(crate) const GATE_ROUTES: [(&str, &str, &[u16]); 5] = [
    ("/login", "{gate}/login", &[200, 403, 422, 429, 502, 503]),
    ("/verify", "{gate}/verify", &[303, 400, 403, 422, 429, 503]),
    ("/renew", "{gate}/renew", &[303, 503]),
    ("/logout", "{gate}/logout", &[200, 303, 403, 503]),
    ("/static/gate.css", "{gate}/static/gate.css", &[200]),
];

impl HttpMetrics {
    /// Creates, at 0, the counters and histograms of the gate's pages
    /// ([`crate::HttpState::with_gate`]).
    pub(crate) fn precreate_gate(&self) {
        for (_, route, statuses) in GATE_ROUTES {
            for &status in statuses {
                drop(
                    self.requests
                        .get_or_create(&RequestLabels { route, status }),
                );
            }
            drop(self.latency.get_or_create(&RouteLabels { route }));
        }
    }
}

/// The static route label of `path` (suffix match, so a mount prefix works).
pub(crate) fn route_of(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| path.ends_with(*r))
        .copied()
        .or_else(|| {
            GATE_ROUTES
                .iter()
                .find(|(suffix, _, _)| path.ends_with(suffix))
                .map(|(_, route, _)| *route)
        })
        .unwrap_or(if path.contains("/docs/") {
            "/docs"
        } else {
            "other"
        })
}

/// One route's series, resolved once per worker: recording a request
/// takes no lock and hashes no labels (the handles share the families'
/// own series, so `/metrics` shows every sample).
pub(crate) struct RouteMetrics {
    metrics: Arc<HttpMetrics>,
    route: &'static str,
    latency: Histogram,
    /// The counters of the statuses this route has answered so far: a
    /// handful, so a scan beats a map.
    counts: RefCell<Vec<(u16, Counter)>>,
}

impl RouteMetrics {
    /// The series of `route` (a route template, see [`route_of`]).
    pub(crate) fn of(metrics: &Arc<HttpMetrics>, route: &'static str) -> Self {
        RouteMetrics {
            metrics: metrics.clone(),
            route,
            latency: metrics
                .latency
                .get_or_create(&RouteLabels { route })
                .clone(),
            counts: RefCell::new(Vec::new()),
        }
    }

    /// The route template these series are labelled with.
    pub(crate) fn route(&self) -> &'static str {
        self.route
    }

    /// Counts one answer of `status` and observes its latency.
    pub(crate) fn record(&self, status: u16, started: Instant) {
        let counted = self
            .counts
            .borrow()
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, c)| c.inc())
            .is_some();
        if !counted {
            let counter = self
                .metrics
                .requests
                .get_or_create(&RequestLabels {
                    route: self.route,
                    status,
                })
                .clone();
            counter.inc();
            self.counts.borrow_mut().push((status, counter));
        }
        self.latency.observe(started.elapsed().as_secs_f64());
    }
}
