//! The per-route layers in one middleware: the request id and span
//! ([`observe`](crate::observe)), the slow-body guard
//! ([`body_deadline`](crate::body_deadline)) and the request metrics
//! ([`http_metrics`](crate::http_metrics)), in that order from the
//! outside in, as [`configure`](crate::configure) and the gate apply them
//! to every route they mount.
//!
//! One middleware instead of three: each actix middleware layer boxes the
//! future of the layer inside it, and each would look up the request's
//! extensions and labels again. The route's metric series are resolved
//! once per worker, when the route is mounted. The observe and guard
//! halves still step aside when the application wraps its whole `App`
//! with [`observe::observe`](crate::observe::observe) and
//! [`body_deadline::guard`](crate::body_deadline::guard) (as `otp-server`
//! does); the metrics are only recorded here.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_service::{forward_ready, Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use futures_core::future::LocalBoxFuture;
use tracing::Instrument;

use crate::body_deadline::{self, HoldingBody};
use crate::http_metrics::{route_of, HttpMetrics, RouteMetrics};
use crate::observe::Observed;

/// The middleware of one route (see the module docs), for
/// `Resource::wrap`. Build it where the route is mounted (once per
/// worker: the handles it holds are not shared across threads).
pub(crate) struct RouteLayers {
    route: Rc<RouteMetrics>,
}

impl RouteLayers {
    /// The layers of the route mounted at `path` (its metrics label is
    /// [`route_of`] the path).
    pub(crate) fn new(metrics: &Arc<HttpMetrics>, path: &str) -> Self {
        RouteLayers {
            route: Rc::new(RouteMetrics::of(metrics, route_of(path))),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RouteLayers
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, HoldingBody>>;
    type Error = actix_web::Error;
    type Transform = RouteLayersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RouteLayersService {
            service: Rc::new(service),
            route: self.route.clone(),
        }))
    }
}

/// The service [`RouteLayers`] wraps a route in.
pub(crate) struct RouteLayersService<S> {
    service: Rc<S>,
    route: Rc<RouteMetrics>,
}

impl<S, B> Service<ServiceRequest> for RouteLayersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, HoldingBody>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let route = self.route.clone();
        Box::pin(async move {
            let observed = Observed::begin(&req, route.route());
            let started = Instant::now();
            let held = body_deadline::begin(&mut req);
            let inner = service.call(req);
            let result = match &observed {
                Some(o) => inner.instrument(o.span.clone()).await,
                None => inner.await,
            };
            let result = result.map(|res| {
                route.record(res.status().as_u16(), started);
                body_deadline::hold(res, held)
            });
            match observed {
                Some(o) => o.finish(result),
                None => result,
            }
        })
    }
}
