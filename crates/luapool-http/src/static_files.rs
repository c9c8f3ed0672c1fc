//! Static files: directories served under URL prefixes (`[static]` in `luapool.toml`),
//! before any handler runs.
//!
//! The files are served by tower-http's `ServeDir` (safe path resolution, `Range`,
//! `Last-Modified` and `If-Modified-Since`, precompressed `.br`, `.zst` and `.gz`
//! siblings chosen by `Accept-Encoding`, `index.html` for directories); this module adds
//! a weak `ETag` and `If-None-Match`. Files are read as they are sent, so a large one
//! holds only a buffer of memory. Small files take a faster path first
//! ([`static_cache`](crate::static_cache)).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_NONE_MATCH, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::body::Body;
use crate::error::{Error, Result};

/// The static mounts of a server: URL prefix → directory.
#[derive(Clone, Default)]
pub(crate) struct StaticFiles {
    mounts: Vec<Mount>,
}

#[derive(Clone)]
struct Mount {
    /// The URL prefix, without a trailing slash (`/assets`; empty for `/`).
    prefix: String,
    /// The directory, for the fast path of small files (`static_cache`).
    root: PathBuf,
    dir: ServeDir,
}

impl StaticFiles {
    /// The mounts of `config` (`prefix → directory`), directories relative to `base`
    /// (the app's directory). Longer prefixes are tried first.
    pub(crate) fn new<'a>(
        config: impl IntoIterator<Item = (&'a String, &'a PathBuf)>,
        base: &Path,
    ) -> Result<StaticFiles> {
        let mut mounts = Vec::new();
        for (prefix, dir) in config {
            if !prefix.starts_with('/') {
                return Err(Error::Config {
                    message: format!("static prefix '{prefix}' must start with '/'"),
                });
            }
            let dir = base.join(dir);
            if !dir.is_dir() {
                return Err(Error::Config {
                    message: format!(
                        "static directory '{}' (for '{prefix}') is not a directory",
                        dir.display()
                    ),
                });
            }
            mounts.push(Mount {
                prefix: prefix.trim_end_matches('/').to_string(),
                root: dir.clone(),
                dir: ServeDir::new(dir)
                    .precompressed_br()
                    .precompressed_zstd()
                    .precompressed_gzip(),
            });
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Ok(StaticFiles { mounts })
    }

    /// True if there is nothing to serve.
    pub(crate) fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The response for a `GET` or `HEAD` of a path under a mount, or `None` when the
    /// request is not for static files (other methods, other paths).
    pub(crate) async fn serve(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Response<Body>> {
        if *method != Method::GET && *method != Method::HEAD {
            return None;
        }
        let path = uri.path();
        let mount = self.mounts.iter().find(|m| {
            path.strip_prefix(m.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })?;
        let rest = &path[mount.prefix.len()..];
        let rest = if rest.is_empty() { "/" } else { rest };
        if let Some(response) = crate::static_cache::serve(&mount.root, rest, headers) {
            return Some(response);
        }
        let target = match uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        let mut request = Request::builder().method(method.clone()).uri(target);
        if let Some(h) = request.headers_mut() {
            h.clone_from(headers);
        }
        let request = request.body(()).ok()?;
        let response = match mount.dir.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        Some(finish(response, headers))
    }
}

/// Adds the ETag and answers `If-None-Match`; the body is read as it is sent.
fn finish<B>(response: Response<B>, request: &HeaderMap) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = response.into_parts();
    if let Some(etag) = etag(&parts.headers) {
        if if_none_match(request, &etag) && parts.status == StatusCode::OK {
            let mut not_modified = Response::new(Body::empty());
            *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
            not_modified.headers_mut().insert(ETAG, etag);
            if let Some(lm) = parts.headers.get(LAST_MODIFIED) {
                not_modified.headers_mut().insert(LAST_MODIFIED, lm.clone());
            }
            return not_modified;
        }
        parts.headers.insert(ETAG, etag);
    }
    Response::from_parts(parts, Body::stream(body))
}

/// A weak ETag from the file's size and modification time (as the response states
/// them: the whole size, also for a range).
fn etag(headers: &HeaderMap) -> Option<HeaderValue> {
    let modified = headers.get(LAST_MODIFIED)?.to_str().ok()?;
    let size = match headers.get(CONTENT_RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) => range.rsplit('/').next()?.to_string(),
        None => headers.get(CONTENT_LENGTH)?.to_str().ok()?.to_string(),
    };
    weak_etag(size, httpdate::parse_http_date(modified).ok()?)
}

/// The weak ETag of a file of `size` bytes last modified at `modified`:
/// `W/"SIZE-SECONDS"` (seconds since the epoch, in hex).
pub(crate) fn weak_etag(size: impl std::fmt::Display, modified: SystemTime) -> Option<HeaderValue> {
    let stamp = modified.duration_since(UNIX_EPOCH).ok()?.as_secs();
    HeaderValue::from_str(&format!("W/\"{size}-{stamp:x}\"")).ok()
}

/// Whether the request's `If-None-Match` matches `etag` (`*`, or any listed tag by weak
/// comparison, RFC 9110 8.8.3.2); false without the header.
pub(crate) fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or("").trim_start_matches("W/");
    request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == ours
            })
        })
}
