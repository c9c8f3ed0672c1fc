//! A connection's own timeouts: [`Activity`] knows what a connection is doing (reading
//! headers, handling requests, idle between requests) and when it must be closed.
//!
//! | phase | bounded by |
//! |---|---|
//! | accept to the end of the first request's headers (the TLS handshake included, which the connection loop bounds before it builds this) | `header_read_timeout` |
//! | end of a request to the first byte of the next (HTTP/1.1), or no stream open (HTTP/2) | `keep_alive_timeout` |
//! | first byte of a later request to the end of its headers (HTTP/1.1) | `header_read_timeout` |
//! | requests being handled | no connection deadline (the body read and request timeouts bound them) |
//!
//! The connection's IO is wrapped in [`Watched`], which tells the `Activity` when bytes
//! of a new request arrive on an idle HTTP/1.1 connection. Each request holds an
//! [`InRequest`] guard for as long as hyper keeps its service future, so a request the
//! client cancels (disconnect, HTTP/2 stream reset) ends its count too.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What one connection is doing, shared by its IO, its requests and the loop that
/// enforces its timeouts.
pub(crate) struct Activity {
    opened: Instant,
    header_read: Duration,
    keep_alive: Duration,
    /// Requests being handled (more than one on HTTP/2).
    active: Cell<usize>,
    /// When the last request ended; `None` before the first.
    last_done: Cell<Option<Instant>>,
    /// When the first byte of a new request arrived on the idle connection.
    reading_since: Cell<Option<Instant>>,
    /// Whether the connection speaks HTTP/2 (known from its first request).
    h2: Cell<bool>,
}

/// When a connection is due to be closed, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// A request is in progress: no connection deadline; look again later.
    Busy,
    /// The headers of a request must be complete by then.
    Headers(Instant),
    /// The connection may stay idle until then.
    Idle(Instant),
}

impl Activity {
    /// A connection accepted now.
    pub(crate) fn new(header_read: Duration, keep_alive: Duration) -> Rc<Activity> {
        Rc::new(Activity {
            opened: Instant::now(),
            header_read,
            keep_alive,
            active: Cell::new(0),
            last_done: Cell::new(None),
            reading_since: Cell::new(None),
            h2: Cell::new(false),
        })
    }

    /// The connection's current deadline.
    pub(crate) fn deadline(&self) -> Deadline {
        if self.active.get() > 0 {
            return Deadline::Busy;
        }
        match (self.last_done.get(), self.reading_since.get()) {
            (None, _) => Deadline::Headers(self.opened + self.header_read),
            (Some(_), Some(first_byte)) if !self.h2.get() => {
                Deadline::Headers(first_byte + self.header_read)
            }
            (Some(done), _) => Deadline::Idle(done + self.keep_alive),
        }
    }

    /// Whether the connection speaks HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.get()
    }

    /// When the timeout loop must look at [`Activity::deadline`] again: at the deadline,
    /// and at the latest after the shorter of the two timeouts.
    /// Nothing needs to wake the loop early: a deadline that starts while it sleeps (a
    /// request ends, or bytes of a new one arrive) is at least that far away, so the
    /// loop sees it in time without a wake-up per request.
    pub(crate) fn next_check(&self, now: Instant) -> Instant {
        let step = now + self.header_read.min(self.keep_alive);
        match self.deadline() {
            Deadline::Headers(at) | Deadline::Idle(at) => at.min(step),
            Deadline::Busy => step,
        }
    }

    /// Marks a request as started until the guard drops.
    pub(crate) fn begin(self: &Rc<Self>, version: http::Version) -> InRequest {
        if version == http::Version::HTTP_2 {
            self.h2.set(true);
        }
        self.active.set(self.active.get() + 1);
        self.reading_since.set(None);
        InRequest(Rc::clone(self))
    }

    fn bytes_arrived(&self) {
        if self.active.get() == 0
            && self.last_done.get().is_some()
            && self.reading_since.get().is_none()
            && !self.h2.get()
        {
            self.reading_since.set(Some(Instant::now()));
        }
    }
}

/// A request in progress on its connection; ends it when dropped, also when hyper drops
/// the request because the client went away.
pub(crate) struct InRequest(Rc<Activity>);

impl Drop for InRequest {
    fn drop(&mut self) {
        let a = &self.0;
        a.active.set(a.active.get().saturating_sub(1));
        a.last_done.set(Some(Instant::now()));
        a.reading_since.set(None);
    }
}

/// A connection's IO, reporting to its [`Activity`] when bytes arrive.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Rc<Activity>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S, activity: Rc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn deadlines_follow_the_phases_of_a_connection() {
        let a = Activity::new(S, 5 * S);
        let opened = a.opened;
        assert_eq!(a.deadline(), Deadline::Headers(opened + S));
        let req = a.begin(http::Version::HTTP_11);
        assert_eq!(a.deadline(), Deadline::Busy);
        drop(req);
        let Deadline::Idle(idle) = a.deadline() else {
            panic!("{:?}", a.deadline())
        };
        assert!(idle >= opened + 5 * S);
        a.bytes_arrived();
        let Deadline::Headers(headers) = a.deadline() else {
            panic!("{:?}", a.deadline())
        };
        assert!(headers < idle);
    }

    #[test]
    fn the_loop_looks_again_before_any_deadline_can_pass() {
        let a = Activity::new(S, 5 * S);
        let now = Instant::now();
        assert_eq!(a.next_check(now), (a.opened + S).min(now + S));
        let req = a.begin(http::Version::HTTP_11);
        let check = a.next_check(now);
        assert_eq!(check, now + S);
        drop(req);
        // The idle deadline (5 s after the end) is after the check the loop sleeps to.
        let Deadline::Idle(idle) = a.deadline() else {
            panic!()
        };
        assert!(idle > check);
    }

    #[test]
    fn a_cancelled_request_still_ends() {
        let a = Activity::new(S, S);
        let (r1, r2) = (
            a.begin(http::Version::HTTP_2),
            a.begin(http::Version::HTTP_2),
        );
        drop(r1);
        assert_eq!(a.deadline(), Deadline::Busy);
        drop(r2);
        assert!(matches!(a.deadline(), Deadline::Idle(_)));
        // HTTP/2 frames on an idle connection do not turn it into a header read.
        a.bytes_arrived();
        assert!(matches!(a.deadline(), Deadline::Idle(_)));
    }
}
