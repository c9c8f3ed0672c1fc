//! Admission: what happens to a request before its handler runs. Its head is checked
//! ([`intake::check_head`]), it is refused at once when every slot is busy and the
//! queue is full, its body is read ([`intake::read_body`]), then it takes a slot,
//! waiting in the worker's queue if need be. Each refusal is its own response.

use std::future::Future;

use crate::body::Body;
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, RETRY_AFTER};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use tokio::sync::SemaphorePermit;

use super::reply::text;
use super::Worker;
use crate::intake::{self, Refused};
use crate::metrics::{Metrics, Raised};

/// A request let in: its head, its body, and the slot its handler runs in.
pub(super) struct Admitted<'a> {
    pub(super) parts: http::request::Parts,
    pub(super) body: Bytes,
    /// The handler slot, held until the handler ends.
    pub(super) slot: SemaphorePermit<'a>,
}

impl Worker {
    /// Lets a request in, or answers it without running its handler. The head is
    /// checked now; the future reads the body and waits for a slot. It holds the
    /// request's parts once (see [`Worker::handle`]).
    pub(super) fn admit(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Admitted<'_>, Response<Body>>> + '_ {
        let refused = self.refusal(&req);
        let version = req.version();
        let (parts, body) = req.into_parts();
        async move {
            if let Some(refused) = refused {
                return Err(refused);
            }
            let config = &self.shared.host.config;
            // The body is read before the request takes a slot: a slow client holds
            // only its own connection, for at most `body_read_timeout`.
            let body = intake::read_body(body, config.max_body_size, config.body_read_timeout)
                .await
                .map_err(|refused| self.refuse(refused, version))?;
            let slot = self.slot().await?;
            Ok(Admitted { parts, body, slot })
        }
    }

    /// The answer to a request refused on its head alone, if it is.
    fn refusal(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        let config = &self.shared.host.config;
        let version = req.version();
        if let Err(refused) = intake::check_head(req, config.max_body_size) {
            return Some(self.refuse(refused, version));
        }
        if self.slots.available_permits() == 0 && self.queue_full() {
            // No reason to read a body that could not run; on HTTP/1 the rest of it
            // must not be taken for the next request, so the connection closes.
            let mut response = self.overloaded();
            if version < Version::HTTP_2 && !hyper::body::Body::is_end_stream(req.body()) {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return Some(response);
        }
        None
    }

    /// A handler slot: a free one, or one waited for in the queue if it has room.
    async fn slot(&self) -> Result<SemaphorePermit<'_>, Response<Body>> {
        match self.slots.try_acquire() {
            Ok(permit) => Ok(permit),
            Err(_) if self.queue_full() => Err(self.overloaded()),
            Err(_) => {
                // Dropped with this future too, when the client gives up waiting.
                let _queued = Raised::new(&self.metrics.queued);
                self.slots
                    .acquire()
                    .await
                    .map_err(|_| text(StatusCode::SERVICE_UNAVAILABLE, "server closing\n"))
            }
        }
    }

    /// Whether the worker's queue is full (`max_queued` requests wait for a slot).
    fn queue_full(&self) -> bool {
        self.metrics.queued.get() >= self.shared.host.config.max_queued as i64
    }

    /// `503` with `Retry-After`: every slot busy and the queue full.
    fn overloaded(&self) -> Response<Body> {
        Metrics::count(&self.shared.metrics.rejected, "overload");
        let mut response = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "server busy, retry later\n",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    /// The answer to a request refused before its handler. On HTTP/1 the connection is
    /// closed after it, as the rest of the body may still be on its way.
    fn refuse(&self, refused: Refused, version: Version) -> Response<Body> {
        Metrics::count(&self.shared.metrics.rejected, refused.kind());
        let mut response = text(refused.status(), &format!("{refused}\n"));
        if version < Version::HTTP_2 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
