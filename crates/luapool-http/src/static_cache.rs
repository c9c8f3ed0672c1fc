//! The fast path of static files: small files answered from memory on the worker's own
//! thread.
//!
//! tower-http's `ServeDir` does each file-system call (metadata, open, every read) on
//! tokio's blocking thread pool: four or more thread hand-offs per request, which cost
//! more than everything else a request does (139 µs of CPU per request for a 4 KiB file,
//! against 14 for nginx, `bench/http.sh`). Here a `GET` or `HEAD` of a file of at most
//! [`MAX_CACHED`] bytes costs one `stat` on the worker's thread (as nginx does) and, when
//! the file changed or is not in this worker's cache yet, one read. Everything else goes
//! to `ServeDir` (directories and `index.html`, `Range` requests, files with precompressed
//! siblings when the client accepts an encoding, larger files, paths this module does not
//! resolve itself).
//!
//! A read blocks the worker for as long as the disk takes: fine for files in the page
//! cache, which is what a server's static files are; the bound is the file size limit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::Body;
use crate::static_files::{if_none_match, weak_etag};

/// Largest file served from memory.
pub(crate) const MAX_CACHED: u64 = 1 << 20;
/// Most files a worker keeps; past it the cache starts over.
const MAX_ENTRIES: usize = 1024;
/// Most bytes a worker keeps; past it the cache starts over.
const MAX_BYTES: usize = 64 << 20;

/// One file as last read.
struct Entry {
    len: u64,
    modified: SystemTime,
    body: Bytes,
    content_type: HeaderValue,
    last_modified: HeaderValue,
    etag: HeaderValue,
    /// A `.br`, `.zst` or `.gz` sibling existed when the file was read.
    precompressed: bool,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<PathBuf, Rc<Entry>>,
    bytes: usize,
}

thread_local! {
    /// Each worker's files (workers do not share: no lock on the request path).
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The response for `rest` (the URL path under the mount, still percent-encoded) from
/// `root`, or `None` to leave the request to `ServeDir`.
pub(crate) fn serve(root: &Path, rest: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    if headers.contains_key(RANGE) {
        return None;
    }
    let path = resolve(root, rest)?;
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_CACHED {
        return None;
    }
    let modified = meta.modified().ok()?;
    let entry = match cached(&path, meta.len(), modified) {
        Some(entry) => entry,
        None => load(path, meta.len(), modified)?,
    };
    if entry.precompressed && headers.contains_key(ACCEPT_ENCODING) {
        return None;
    }
    Some(respond(&entry, headers))
}

/// The file of `rest` under `root`: percent-decoded segments, none of them `..` or
/// holding a NUL or a backslash (`None`: `ServeDir` decides).
fn resolve(root: &Path, rest: &str) -> Option<PathBuf> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(rest).collect();
    let mut path = root.to_path_buf();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return None,
            s if s.contains(&0) || s.contains(&b'\\') => return None,
            s => path.push(std::ffi::OsStr::from_bytes(s)),
        }
    }
    Some(path)
}

/// The cached entry of `path` if it is still the file's content.
fn cached(path: &Path, len: u64, modified: SystemTime) -> Option<Rc<Entry>> {
    CACHE.with(|c| {
        c.borrow()
            .entries
            .get(path)
            .filter(|e| e.len == len && e.modified == modified)
            .cloned()
    })
}

/// Reads `path` and keeps it.
fn load(path: PathBuf, len: u64, modified: SystemTime) -> Option<Rc<Entry>> {
    let body = Bytes::from(std::fs::read(&path).ok()?);
    if body.len() as u64 != len {
        // Changed while read: serve it through ServeDir this time.
        return None;
    }
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let content_type = HeaderValue::from_str(mime.as_ref()).ok()?;
    let last_modified = HeaderValue::from_str(&httpdate::fmt_http_date(modified)).ok()?;
    // The same weak ETag `ServeDir`'s responses get.
    let etag = weak_etag(len, modified)?;
    let precompressed = ["br", "zst", "gz"].iter().any(|ext| {
        let mut sibling = path.clone().into_os_string();
        sibling.push(".");
        sibling.push(ext);
        Path::new(&sibling).is_file()
    });
    let entry = Rc::new(Entry {
        len,
        modified,
        body,
        content_type,
        last_modified,
        etag,
        precompressed,
    });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.entries.len() >= MAX_ENTRIES || c.bytes + entry.body.len() > MAX_BYTES {
            c.entries.clear();
            c.bytes = 0;
        }
        c.bytes += entry.body.len();
        if let Some(old) = c.entries.insert(path, Rc::clone(&entry)) {
            c.bytes -= old.body.len();
        }
    });
    Some(entry)
}

/// `200` with the file, or `304` when the request's validators match.
fn respond(entry: &Entry, headers: &HeaderMap) -> Response<Body> {
    let not_modified = if headers.contains_key(IF_NONE_MATCH) {
        if_none_match(headers, &entry.etag)
    } else {
        headers
            .get(IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .zip(
                entry
                    .last_modified
                    .to_str()
                    .ok()
                    .and_then(|v| httpdate::parse_http_date(v).ok()),
            )
            .is_some_and(|(since, modified)| modified <= since)
    };
    let mut response = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::full(entry.body.clone()));
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, entry.content_type.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    };
    let h = response.headers_mut();
    h.insert(LAST_MODIFIED, entry.last_modified.clone());
    h.insert(ETAG, entry.etag.clone());
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/srv/www");
        assert_eq!(resolve(root, "/a/b.css"), Some(root.join("a/b.css")));
        assert_eq!(resolve(root, "/a%20b.txt"), Some(root.join("a b.txt")));
        assert_eq!(resolve(root, "/./a//b"), Some(root.join("a/b")));
        for bad in ["/../etc/passwd", "/a/%2e%2e/x", "/a/..", "/a%00b", "/a%5cb"] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }
}
