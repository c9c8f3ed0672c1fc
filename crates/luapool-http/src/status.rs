//! The one place that maps core errors to HTTP statuses.

use http::StatusCode;

/// The status a request gets when its handler fails with `err`.
///
/// | error | status |
/// |---|---|
/// | wall-clock timeout, CPU-time or instruction limit ([`LimitKind::is_time`](luapool::LimitKind::is_time)) | `504 Gateway Timeout` |
/// | pool busy | `503 Service Unavailable` |
/// | anything else (Lua error, memory limit, missing `handle`) | `500 Internal Server Error` |
///
/// ```
/// use luapool_http::status_for;
/// let err = luapool::Error::Timeout { limit: std::time::Duration::from_secs(1) };
/// assert_eq!(status_for(&err).as_u16(), 504);
/// ```
pub fn status_for(err: &luapool::Error) -> StatusCode {
    if err.limit_kind().is_some_and(luapool::LimitKind::is_time) {
        return StatusCode::GATEWAY_TIMEOUT;
    }
    match err {
        luapool::Error::Busy { .. } | luapool::Error::WaitTimeout { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
