//! A handler's outcome as a response: a reply as the handler gave it; a bad reply or a
//! handler error as an error status (see [`status_for`]), logged under the worker's
//! rate limit and counted by limit kind, with its details in the body in development
//! mode only.

use std::path::{Component, Path};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Response, StatusCode};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tracing::error;

use super::Worker;
use crate::app::App;
use crate::body::Body;
use crate::compress::{compress, Encoding};
use crate::metrics::Metrics;
use crate::response::{Reply, ReplyBody, DEFAULT_CONTENT_TYPE};
use crate::status::status_for;

impl Worker {
    /// The response to a handler's outcome; a reply's body compressed with `accepted`
    /// (the request's choice) if compression is on and applies to it.
    /// A `file = "path"` reply is `Err`, for [`send_file`](Worker::send_file): kept out of
    /// this function so that the common path stays synchronous (and the request's future
    /// small).
    pub(super) fn reply(
        &self,
        result: luapool::Result<Reply>,
        id: &str,
        app: &App,
        accepted: Option<Encoding>,
    ) -> Result<Response<Body>, Box<FileReply>> {
        match result {
            Ok(Reply::Ok {
                status,
                mut headers,
                body,
            }) => {
                let config = &self.shared.host.config;
                let compressed = |headers: &mut HeaderMap, body: Bytes| {
                    if config.compression {
                        compress(status, headers, body, accepted, config.compression_min_size)
                    } else {
                        body
                    }
                };
                let body = match body {
                    ReplyBody::Bytes(body) => Body::full(compressed(&mut headers, body)),
                    // Compressed as one piece (when compression is on and applies).
                    ReplyBody::Chunks(chunks) if config.compression => {
                        Body::full(compressed(&mut headers, Bytes::from(chunks.concat())))
                    }
                    ReplyBody::Chunks(chunks) => Body::chunks(chunks),
                    ReplyBody::File(path) => {
                        return Err(Box::new(FileReply {
                            path,
                            status,
                            headers,
                        }))
                    }
                };
                let mut response = Response::new(body);
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                Ok(response)
            }
            Ok(Reply::Invalid(why)) => Ok(self.bad_reply(id, app, &why)),
            Err(e) => {
                let status = status_for(&e);
                if let Some(kind) = limit_kind(&e) {
                    Metrics::count(&self.shared.metrics.limits, kind);
                }
                let detail = Detail(&e);
                if self.may_log(&detail) {
                    error!(target: "luapool::handler", id, status = status.as_u16(), "{detail}");
                }
                Ok(self.failure(status, detail))
            }
        }
    }

    /// The response to a `file = "path"` reply; see [`send_file`].
    pub(super) async fn send_file(
        &self,
        file: Box<FileReply>,
        id: &str,
        app: &App,
    ) -> Response<Body> {
        match send_file(app, &file.path, file.status, file.headers).await {
            Ok(response) => response,
            Err(why) => self.bad_reply(id, app, &why),
        }
    }

    /// The response to a reply that is not one: `500`, and the reason logged.
    fn bad_reply(&self, id: &str, app: &App, why: &str) -> Response<Body> {
        // (A `String`: a `format_args!` bound to a name needs Rust 1.89.)
        let detail = format!("bad reply: {why}");
        if self.may_log(&detail) {
            error!(target: "luapool::handler", id, app = %app.path.display(), "{detail}");
        }
        self.failure(StatusCode::INTERNAL_SERVER_ERROR, &detail)
    }

    /// An error response: a generic body, or the details in development mode.
    fn failure(&self, status: StatusCode, detail: impl std::fmt::Display) -> Response<Body> {
        if self.shared.host.config.dev {
            text(status, &format!("{detail}\n"))
        } else {
            let reason = status.canonical_reason().unwrap_or("error");
            text(status, &format!("{reason}\n"))
        }
    }
}

/// A `file = "path"` reply, to be served.
pub(super) struct FileReply {
    path: String,
    status: StatusCode,
    headers: HeaderMap,
}

/// A `file = "path"` reply: the file (a path relative to the app's directory, which it
/// may not leave, symbolic links included) read as it is sent, with the handler's status
/// and headers over tower-http's (content type, `Last-Modified`); `404` if there is no
/// such file. `Err` says why the path is refused.
async fn send_file(
    app: &App,
    path: &str,
    status: StatusCode,
    headers: HeaderMap,
) -> Result<Response<Body>, String> {
    let relative = Path::new(path);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if path.is_empty() || !plain {
        return Err(format!(
            "`file` must be a relative path without `..` (inside the app's directory), got '{path}'"
        ));
    }
    let dir = app.dir();
    let full = match tokio::fs::canonicalize(dir.join(relative)).await {
        Ok(full) => full,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(text(StatusCode::NOT_FOUND, "Not Found\n"))
        }
        Err(e) => return Err(format!("cannot open `file` '{path}': {e}")),
    };
    let inside = tokio::fs::canonicalize(&dir)
        .await
        .is_ok_and(|dir| full.starts_with(dir));
    if !inside {
        return Err(format!(
            "`file` '{path}' leads out of the app's directory (a symbolic link?)"
        ));
    }
    let request = http::Request::new(());
    let served = match ServeFile::new(full).oneshot(request).await {
        Ok(served) => served,
        Err(never) => match never {},
    };
    let (mut parts, body) = served.into_parts();
    if parts.status == StatusCode::OK {
        parts.status = status;
    }
    for (name, value) in &headers {
        parts.headers.insert(name, value.clone());
    }
    Ok(Response::from_parts(parts, Body::stream(body)))
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
pub(super) fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    response
}
