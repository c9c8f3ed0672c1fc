//! Connections: the accept loop (which also takes the server's control messages), one
//! connection served by hyper (HTTP/1.1 with keep-alive or HTTP/2: cleartext, or over
//! TLS chosen by ALPN) under its header read and keep-alive timeouts (the TLS handshake
//! included), and the drain at shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{Control, Worker, WorkerSummary};
use crate::metrics::Raised;
use crate::timeouts::{Activity, Deadline, Watched};

/// Runs hyper's HTTP/2 stream tasks on the worker's `LocalSet`.
#[derive(Clone, Copy, Debug)]
pub(super) struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

impl Worker {
    /// Accepts connections until told to shut down, then drains them.
    pub(super) async fn serve(
        self: Rc<Self>,
        listener: tokio::net::TcpListener,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> WorkerSummary {
        let mut log_tick = tokio::time::interval(self.errors.window());
        let deadline = loop {
            tokio::select! {
                _ = log_tick.tick() => self.report_held_logs(),
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::task::spawn_local(Rc::clone(&self).connection(stream, remote));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        if self.may_log(format_args!("accept failed: {e}")) {
                            warn!(worker = self.index, "accept failed: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                message = control.recv() => match message {
                    Some(Control::Reload(app)) => self.reload(app),
                    Some(Control::Shutdown(deadline)) => break deadline,
                    // The server is gone: stop now.
                    None => break Instant::now(),
                },
            }
        };
        drop(listener);
        self.cancel_timers();
        self.drain(deadline).await
    }

    /// Tells open connections to finish and waits for them until `deadline`.
    async fn drain(&self, deadline: Instant) -> WorkerSummary {
        self.shutdown.send_replace(true);
        let drained = tokio::time::timeout_at(deadline.into(), async {
            while self.connections.get() > 0 {
                self.closed.notified().await;
            }
        })
        .await;
        WorkerSummary {
            abandoned: if drained.is_ok() {
                0
            } else {
                self.connections.get()
            },
        }
    }

    /// Serves one connection: with TLS, its handshake first, which must end within the
    /// header read timeout (counted from the accept, the first request's headers
    /// included); then HTTP/1.1 with keep-alive or HTTP/2.
    async fn connection(self: Rc<Self>, stream: tokio::net::TcpStream, remote: SocketAddr) {
        let _open = OpenConnection::new(&self);
        let config = &self.shared.host.config;
        let handshake_deadline = Instant::now() + config.header_read_timeout;
        let activity = Activity::new(config.header_read_timeout, config.keep_alive_timeout);
        let Some(tls) = &self.shared.tls else {
            return self.serve_http(stream, activity, remote).await;
        };
        let handshake =
            tokio::time::timeout_at(handshake_deadline.into(), tls.acceptor().accept(stream));
        let mut shutdown = self.shutdown.subscribe();
        let outcome = tokio::select! {
            outcome = handshake => outcome,
            // Shutting down: a connection that has not finished its handshake has no
            // request to finish.
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match outcome {
            Ok(Ok(stream)) => self.serve_http(stream, activity, remote).await,
            Ok(Err(e)) => debug!(worker = self.index, %remote, "TLS handshake failed: {e}"),
            Err(_) => debug!(worker = self.index, %remote, "closed: TLS handshake timeout"),
        }
    }

    /// Serves one connection's HTTP: HTTP/1.1 with keep-alive or HTTP/2, closing it
    /// when one of its timeouts passes (see [`Activity`]) or, at shutdown, once its
    /// requests are answered.
    async fn serve_http<S>(self: &Rc<Self>, stream: S, activity: Rc<Activity>, remote: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let config = &self.shared.host.config;
        let service = self.service(Rc::clone(&activity), remote);
        let io = TokioIo::new(Watched::new(stream, Rc::clone(&activity)));
        let conn = self.http.serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        let mut shutdown = self.shutdown.subscribe();
        let mut closing = *shutdown.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        // Set once an idle HTTP/2 connection was told to go away: it must be gone then.
        let mut hard_stop: Option<Instant> = None;
        loop {
            let wake = hard_stop.unwrap_or_else(|| activity.next_check(Instant::now()));
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(worker = self.index, %remote, "connection ended: {e}");
                    }
                    return;
                }
                changed = shutdown.changed(), if !closing => {
                    if changed.is_err() || *shutdown.borrow() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    match timer(&activity, now, hard_stop) {
                        Timer::Close(why) => {
                            debug!(worker = self.index, %remote, "closed: {why}");
                            return;
                        }
                        Timer::GoAway => {
                            // GOAWAY, then give the client a moment to see it.
                            if !closing {
                                closing = true;
                                conn.as_mut().graceful_shutdown();
                            }
                            hard_stop = Some(now + config.header_read_timeout);
                        }
                        Timer::Wait => {}
                    }
                }
            }
        }
    }
}

impl Worker {
    /// The hyper service of a connection from `remote`: each request is handled by
    /// [`Worker::handle`] and counted as activity on the connection.
    fn service(
        self: &Rc<Self>,
        activity: Rc<Activity>,
        remote: SocketAddr,
    ) -> impl Service<
        Request<Incoming>,
        Response = Response<Body>,
        Error = Infallible,
        Future: 'static,
    > + 'static {
        let peer: Rc<str> = Rc::from(remote.to_string());
        let worker = Rc::clone(self);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            // Taken now, dropped with the future: a request hyper drops because its
            // client went away ends too.
            let in_request = activity.begin(req.version());
            Worker::handle(Rc::clone(&worker), req, Rc::clone(&peer), in_request)
        })
    }
}

/// What a connection does when its timer fires.
enum Timer {
    /// Close it now, for this reason.
    Close(&'static str),
    /// An idle HTTP/2 connection: tell the client to go away, close it a little later.
    GoAway,
    /// Nothing is due yet.
    Wait,
}

/// What a connection does at `now`, given its activity and when it was told it must be
/// gone (`hard_stop`).
fn timer(activity: &Activity, now: Instant, hard_stop: Option<Instant>) -> Timer {
    if hard_stop.is_some_and(|at| at <= now) {
        return Timer::Close("did not go away in time");
    }
    match activity.deadline() {
        Deadline::Headers(at) if at <= now => Timer::Close("header read timeout"),
        Deadline::Idle(at) if at <= now && !activity.is_h2() => Timer::Close("idle"),
        Deadline::Idle(at) if at <= now => Timer::GoAway,
        _ => Timer::Wait,
    }
}

/// Counts a worker's open connections, so shutdown knows when they are all closed.
struct OpenConnection<'a> {
    worker: &'a Worker,
    _gauge: Raised<'a>,
}

impl<'a> OpenConnection<'a> {
    fn new(worker: &'a Worker) -> Self {
        worker.connections.set(worker.connections.get() + 1);
        OpenConnection {
            worker,
            _gauge: Raised::new(&worker.metrics.connections),
        }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        let n = self.worker.connections.get() - 1;
        self.worker.connections.set(n);
        if n == 0 {
            self.worker.closed.notify_waiters();
        }
    }
}
