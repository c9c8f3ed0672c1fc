//! What happens to a request before it may take a handler slot: its head is checked
//! and its body read, within `max_body_size` and `body_read_timeout`. Nothing here
//! holds a slot, so a slow or broken client only ever holds its own connection.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

/// Why a request was answered before its handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// An HTTP/1.1 request without `Host`, or any request with more than one
    /// (RFC 9112, section 3.2).
    #[error("a request needs exactly one Host header")]
    BadHost,
    /// The body is larger than `max_body_size` (declared or actual).
    #[error("request body too large")]
    TooLarge,
    /// The body did not arrive within `body_read_timeout`.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// The body could not be read (the client broke off, bad chunked encoding).
    #[error("cannot read the request body")]
    BadBody,
}

impl Refused {
    /// The status answered.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Refused::BadHost | Refused::BadBody => StatusCode::BAD_REQUEST,
            Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The `kind` label of `luapool_http_rejected_total`.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Refused::BadHost => "bad_request",
            Refused::BadBody => "bad_body",
            Refused::TooLarge => "body_too_large",
            Refused::BodyTimeout => "body_timeout",
        }
    }
}

/// Checks the head of `req` (`Host`, a declared length over `max_body`).
///
/// # Errors
/// [`Refused::BadHost`], [`Refused::TooLarge`].
pub(crate) fn check_head(req: &Request<Incoming>, max_body: usize) -> Result<(), Refused> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => false,
        (Some(_), None) => true,
        (None, _) => req.version() != Version::HTTP_11,
    };
    if !host_ok {
        return Err(Refused::BadHost);
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(Refused::TooLarge);
    }
    Ok(())
}

/// Reads the whole body of a request, at most `max` bytes within `timeout`.
///
/// # Errors
/// [`Refused::TooLarge`], [`Refused::BodyTimeout`], [`Refused::BadBody`].
pub(crate) async fn read_body(
    body: Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, Refused> {
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_elapsed) => Err(Refused::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Refused::TooLarge),
        Ok(Err(e)) => {
            tracing::debug!("cannot read the request body: {e}");
            Err(Refused::BadBody)
        }
    }
}
