//! A handler's outcome as a response: a reply as the handler gave it; a bad reply or a
//! handler error as an error status (see [`status_for`]), logged under the worker's
//! rate limit and counted by limit kind, with its details in the body in development
//! mode only.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use http_body_util::Full;
use tracing::error;

use super::Worker;
use crate::app::App;
use crate::compress::{compress, Encoding};
use crate::metrics::Metrics;
use crate::response::{Reply, DEFAULT_CONTENT_TYPE};
use crate::status::status_for;

impl Worker {
    /// The response to a handler's outcome; a reply's body compressed with `accepted`
    /// (the request's choice) if compression is on and applies to it.
    pub(super) fn reply(
        &self,
        result: luapool::Result<Reply>,
        id: &str,
        app: &App,
        accepted: Option<Encoding>,
    ) -> Response<Full<Bytes>> {
        match result {
            Ok(Reply::Ok {
                status,
                mut headers,
                body,
            }) => {
                let config = &self.shared.host.config;
                let body = if config.compression {
                    compress(
                        status,
                        &mut headers,
                        body,
                        accepted,
                        config.compression_min_size,
                    )
                } else {
                    body
                };
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                response
            }
            Ok(Reply::Invalid(why)) => {
                // (A `String`: a `format_args!` bound to a name needs Rust 1.89.)
                let detail = format!("bad reply: {why}");
                if self.may_log(&detail) {
                    error!(target: "luapool::handler", id, app = %app.path.display(), "{detail}");
                }
                self.failure(StatusCode::INTERNAL_SERVER_ERROR, &detail)
            }
            Err(e) => {
                let status = status_for(&e);
                if let Some(kind) = limit_kind(&e) {
                    Metrics::count(&self.shared.metrics.limits, kind);
                }
                let detail = Detail(&e);
                if self.may_log(&detail) {
                    error!(target: "luapool::handler", id, status = status.as_u16(), "{detail}");
                }
                self.failure(status, detail)
            }
        }
    }

    /// An error response: a generic body, or the details in development mode.
    fn failure(&self, status: StatusCode, detail: impl std::fmt::Display) -> Response<Full<Bytes>> {
        if self.shared.host.config.dev {
            text(status, &format!("{detail}\n"))
        } else {
            let reason = status.canonical_reason().unwrap_or("error");
            text(status, &format!("{reason}\n"))
        }
    }
}

/// The kind label of a limit error, for the limit counter.
fn limit_kind(e: &luapool::Error) -> Option<&'static str> {
    e.limit_kind().map(luapool::LimitKind::as_str)
}

/// A handler error as logged (and shown in development mode): the error, then its
/// traceback; formatted only when it is used.
pub(super) struct Detail<'a>(pub(super) &'a luapool::Error);

impl std::fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        match self.0.traceback() {
            Some(tb) => write!(f, "\n{tb}"),
            None => Ok(()),
        }
    }
}

/// A plain-text response.
pub(super) fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    response
}
