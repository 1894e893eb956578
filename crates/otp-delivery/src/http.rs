//! HTTP plumbing shared by the Twilio and webhook backends: a rustls (ring)
//! reqwest client and the mapping of HTTP outcomes to transient/permanent.

use std::time::Duration;

use crate::error::{DeliveryError, DeliveryErrorKind};

/// A reqwest client with rustls (ring), bounded connect and request times,
/// no redirects (a redirect would re-send the form elsewhere).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("stateless-otp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client setup failed ({e})"))
}

/// Classifies a reqwest transport error (no response). The URL is kept out
/// of the text; the error never holds the request body.
pub(crate) fn transport_error(backend: &'static str, e: reqwest::Error) -> DeliveryError {
    let kind = if e.is_timeout() {
        DeliveryErrorKind::Timeout
    } else if e.is_connect() || e.is_request() {
        DeliveryErrorKind::Connect
    } else {
        DeliveryErrorKind::Other
    };
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    DeliveryError::new(backend, kind, text)
}

/// Permanent for 4xx except 408 and 429; transient for those and 5xx.
pub(crate) fn status_kind(status: reqwest::StatusCode) -> DeliveryErrorKind {
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        DeliveryErrorKind::Unavailable
    } else {
        DeliveryErrorKind::Rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn status_classification() {
        assert_eq!(
            status_kind(StatusCode::BAD_REQUEST),
            DeliveryErrorKind::Rejected
        );
        assert_eq!(
            status_kind(StatusCode::UNAUTHORIZED),
            DeliveryErrorKind::Rejected
        );
        assert_eq!(
            status_kind(StatusCode::NOT_FOUND),
            DeliveryErrorKind::Rejected
        );
        assert_eq!(
            status_kind(StatusCode::REQUEST_TIMEOUT),
            DeliveryErrorKind::Unavailable
        );
        assert_eq!(
            status_kind(StatusCode::TOO_MANY_REQUESTS),
            DeliveryErrorKind::Unavailable
        );
        assert_eq!(
            status_kind(StatusCode::INTERNAL_SERVER_ERROR),
            DeliveryErrorKind::Unavailable
        );
        assert_eq!(
            status_kind(StatusCode::SERVICE_UNAVAILABLE),
            DeliveryErrorKind::Unavailable
        );
    }
}
