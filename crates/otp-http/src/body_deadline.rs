//! The slow-body guard (SPEC §8): a request body must arrive within
//! [`HttpConfig::body_timeout`](crate::HttpConfig::body_timeout) of its head,
//! or the request is answered 408 `request_timeout` and the connection is
//! closed. actix's `client_request_timeout` covers only the head, so without
//! this a client that sends its headers and one byte of body holds a
//! connection (and a file descriptor) for as long as it likes.
//!
//! Two mechanisms, because a body can be stalled whether or not a handler
//! reads it:
//!
//! - **Deadline on reads.** The request's payload is wrapped in a stream that
//!   fails with [`std::io::ErrorKind::TimedOut`] once the deadline has passed
//!   and no byte is ready; the JSON extractor turns that into the 408
//!   (`ApiError::RequestTimeout`).
//! - **No unbounded drain.** The payload is also held by the response's body
//!   until the response is sent. actix then sees a body that
//!   was not read to its end, and closes the connection after the response
//!   instead of draining it: for a chunked body it would otherwise keep
//!   reading a stalled client forever after a 404 or 405, with no timer. A
//!   body that was read to its end changes nothing: keep-alive stays.
//!
//! [`configure`](crate::configure) applies it to every route it mounts; an
//! application wraps its whole `App` with [`guard`] (the `otp-server` binary
//! does) so unknown paths are covered too. Applied twice, the inner one steps
//! aside.

use std::cell::RefCell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::rt::time::{sleep_until, Instant, Sleep};
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use futures_core::Stream;

use crate::HttpState;

/// The default [`HttpConfig::body_timeout`](crate::HttpConfig::body_timeout):
/// 5 s, the same as actix's (and `CLIENT_REQUEST_TIMEOUT_MS`'s) default for
/// the head.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// The payload, shared by the handler's stream and the response.
type Shared = Rc<RefCell<Payload>>;

/// Marks a request whose payload is already guarded.
#[derive(Clone, Copy)]
struct Guarded;

/// A response body that keeps the request's payload alive until the body
/// has been sent (see the module docs): actix decides between closing and
/// draining when the last byte of the response is written, while the body
/// still exists.
pub struct HoldingBody {
    inner: BoxBody,
    _payload: Shared,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }
}

/// The payload as the handler sees it: fails once the deadline has passed.
pub(crate) struct DeadlineStream {
    payload: Shared,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: bool,
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        let ready = Pin::new(&mut *self.payload.borrow_mut()).poll_next(cx);
        if ready.is_ready() {
            return ready;
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired = true;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether `err` is the deadline of this module (the 408 case).
pub(crate) fn is_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// Middleware: the body of every request must arrive within `timeout` of
/// its head (see the module docs). `timeout` comes from
/// [`HttpConfig::body_timeout`](crate::HttpConfig::body_timeout) when the
/// request's app has an [`HttpState`], else [`DEFAULT_BODY_TIMEOUT`].
///
/// ```
/// use actix_web::{middleware::from_fn, App};
/// let _app = App::new().wrap(from_fn(otp_http::body_deadline::guard));
/// ```
pub async fn guard<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, HoldingBody>>, actix_web::Error> {
    let held = begin(&mut req);
    Ok(hold(next.call(req).await?, held))
}

/// The payload [`begin`] put under the deadline, for [`hold`].
pub(crate) struct Held(Shared);

/// Puts `req`'s payload under the deadline (the first half of [`guard`]);
/// `None` when it has no payload or an outer [`guard`] already did
/// (applied twice, the inner one steps aside).
pub(crate) fn begin(req: &mut ServiceRequest) -> Option<Held> {
    if req.extensions().contains::<Guarded>() {
        return None;
    }
    let timeout = req
        .app_data::<web::Data<HttpState>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |s| s.config.body_timeout);
    let (stream, held) = begin_payload(req.take_payload(), timeout)?;
    req.set_payload(Payload::Stream {
        payload: Box::pin(stream),
    });
    req.extensions_mut().insert(Guarded);
    Some(held)
}

/// [`begin`] for a payload already taken from its request (the
/// [`fast_lane`](crate::fast_lane)'s, which reads the body before any
/// `ServiceRequest` exists): the stream to read it through, failing once
/// `timeout` from now has passed, and what [`hold`] needs; `None` when
/// there is no payload.
pub(crate) fn begin_payload(payload: Payload, timeout: Duration) -> Option<(DeadlineStream, Held)> {
    let started = Instant::now();
    if matches!(payload, Payload::None) {
        return None;
    }
    let shared: Shared = Rc::new(RefCell::new(payload));
    let stream = DeadlineStream {
        payload: shared.clone(),
        deadline: started + timeout,
        sleep: None,
        expired: false,
    };
    Some((stream, Held(shared)))
}

/// The second half of [`guard`]: the response's body holds the payload
/// [`begin`] guarded until it has been sent.
pub(crate) fn hold<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    held: Option<Held>,
) -> ServiceResponse<EitherBody<B, HoldingBody>> {
    match held {
        None => res.map_into_left_body(),
        Some(Held(shared)) => res
            .map_body(|_, body| HoldingBody {
                inner: BoxBody::new(body),
                _payload: shared,
            })
            .map_into_right_body(),
    }
}
