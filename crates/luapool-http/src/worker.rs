//! A worker: one OS thread with a current-thread runtime that accepts connections,
//! serves them with hyper and runs their handlers on the worker's own VM, so a request
//! never crosses threads.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use luapool::Vm;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::AtomicU64;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, error, info, warn};

use crate::app::{App, Host};
use crate::intake::{self, Refused};
use crate::metrics::{CountIfDropped, Metrics, Raised, StatusLabels, WorkerLabels};
use crate::ratelog::RateLimit;
use crate::request::LuaRequest;
use crate::response::{Reply, DEFAULT_CONTENT_TYPE};
use crate::status::status_for;
use crate::timeouts::{Activity, Deadline, Watched};

/// How long repeated error lines are held back and counted (see [`RateLimit`]).
const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Distinct error lines a worker logs per [`LOG_WINDOW`]; past them it only counts.
const LOG_MAX_DISTINCT: usize = 50;

/// What the server tells a worker.
pub(crate) enum Control {
    /// Serve this app from now on, on a new VM; requests in flight finish on the old one.
    Reload(Arc<App>),
    /// Stop accepting, let open connections finish until the deadline, then stop.
    Shutdown(Instant),
}

/// What a worker reports when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WorkerSummary {
    /// Connections still open at the deadline (closed without finishing).
    pub(crate) abandoned: usize,
}

/// Everything a worker shares with the server and the other workers.
pub(crate) struct Shared {
    pub(crate) host: Host,
    pub(crate) metrics: Metrics,
}

/// Runs a worker on the current thread until it is told to shut down. `ready` gets
/// `Ok` once the worker's VM is built and it is accepting, or the error that stopped it.
pub(crate) fn run(
    index: usize,
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    app: Arc<App>,
    control: mpsc::UnboundedReceiver<Control>,
    ready: std::sync::mpsc::Sender<crate::Result<()>>,
) -> WorkerSummary {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(crate::Error::Worker {
                index,
                message: format!("cannot start its runtime: {e}"),
            }));
            return WorkerSummary::default();
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(crate::Error::Worker {
                    index,
                    message: format!("cannot use the listening socket: {e}"),
                }));
                return WorkerSummary::default();
            }
        };
        let worker = match Worker::new(index, shared, app) {
            Ok(w) => Rc::new(w),
            Err(e) => {
                let _ = ready.send(Err(e));
                return WorkerSummary::default();
            }
        };
        let _ = ready.send(Ok(()));
        worker.serve(listener, control).await
    })
}

/// Metric handles a worker updates on every request.
struct WorkerMetrics {
    latency: Histogram,
    in_flight: Gauge,
    queued: Gauge,
    connections: Gauge,
    vm_memory: Gauge<u64, AtomicU64>,
    by_status: RefCell<HashMap<u16, Counter>>,
}

struct Worker {
    index: usize,
    shared: Arc<Shared>,
    app: RefCell<Arc<App>>,
    vm: RefCell<Rc<Vm>>,
    slots: Semaphore,
    next_id: Cell<u64>,
    id_prefix: String,
    connections: Cell<usize>,
    closed: tokio::sync::Notify,
    shutdown: watch::Sender<bool>,
    metrics: WorkerMetrics,
    http: auto::Builder<LocalExec>,
    /// Rate limit of the worker's error log lines.
    errors: RateLimit,
}

/// Runs hyper's HTTP/2 stream tasks on the worker's `LocalSet`.
#[derive(Clone, Copy, Debug)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

impl Worker {
    fn new(index: usize, shared: Arc<Shared>, app: Arc<App>) -> crate::Result<Worker> {
        let vm = shared.host.build_vm(&app)?;
        let config = &shared.host.config;
        let labels = WorkerLabels { worker: index };
        let metrics = WorkerMetrics {
            latency: shared.metrics.latency.get_or_create(&labels).clone(),
            in_flight: shared.metrics.in_flight.get_or_create(&labels).clone(),
            queued: shared.metrics.queued.get_or_create(&labels).clone(),
            connections: shared.metrics.connections.get_or_create(&labels).clone(),
            vm_memory: shared.metrics.vm_memory.get_or_create(&labels).clone(),
            by_status: RefCell::new(HashMap::new()),
        };
        metrics.vm_memory.set(vm.used_memory() as u64);
        let mut http = auto::Builder::new(LocalExec);
        // The connection loop enforces the header read and keep-alive timeouts itself
        // (see `timeouts`): hyper's own header timer also runs between requests.
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true);
        http.http2().timer(TokioTimer::new());
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ok(Worker {
            index,
            app: RefCell::new(app),
            vm: RefCell::new(Rc::new(vm)),
            slots: Semaphore::new(config.concurrency),
            next_id: Cell::new(0),
            id_prefix: format!("{started:x}-{index}-"),
            connections: Cell::new(0),
            closed: tokio::sync::Notify::new(),
            shutdown: watch::Sender::new(false),
            metrics,
            http,
            errors: RateLimit::new(LOG_WINDOW, LOG_MAX_DISTINCT),
            shared,
        })
    }

    /// Accepts connections until told to shut down, then drains them.
    async fn serve(
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
                        if self.errors.admit(format_args!("accept failed: {e}")) {
                            warn!(worker = self.index, "accept failed: {e}");
                        } else {
                            self.shared.metrics.log_suppressed.inc();
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

    /// Serves one connection: HTTP/1.1 with keep-alive or HTTP/2 cleartext, closing it
    /// when one of its timeouts passes (see [`Activity`]).
    async fn connection(self: Rc<Self>, stream: tokio::net::TcpStream, remote: SocketAddr) {
        let _open = OpenConnection::new(&self);
        let config = &self.shared.host.config;
        let activity = Activity::new(config.header_read_timeout, config.keep_alive_timeout);
        let peer: Rc<str> = Rc::from(remote.to_string());
        let service = {
            let (worker, activity, peer) = (Rc::clone(&self), Rc::clone(&activity), peer);
            hyper::service::service_fn(move |req: Request<Incoming>| {
                // Taken now, dropped with the future: a request hyper drops because its
                // client went away ends too.
                let in_request = activity.begin(req.version());
                let (worker, peer) = (Rc::clone(&worker), Rc::clone(&peer));
                async move {
                    let response = worker.handle(req, peer).await;
                    drop(in_request);
                    Ok::<_, Infallible>(response)
                }
            })
        };
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
                    if hard_stop.is_some_and(|at| at <= now) {
                        debug!(worker = self.index, %remote, "closed: did not go away in time");
                        return;
                    }
                    match activity.deadline() {
                        Deadline::Headers(at) if at <= now => {
                            debug!(worker = self.index, %remote, "closed: header read timeout");
                            return;
                        }
                        Deadline::Idle(at) if at <= now => {
                            if !activity.is_h2() {
                                debug!(worker = self.index, %remote, "closed: idle");
                                return;
                            }
                            // GOAWAY, then give the client a moment to see it.
                            if !closing {
                                closing = true;
                                conn.as_mut().graceful_shutdown();
                            }
                            hard_stop = Some(now + config.header_read_timeout);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Answers one request and records it.
    async fn handle(&self, req: Request<Incoming>, remote: Rc<str>) -> Response<Full<Bytes>> {
        let start = Instant::now();
        let unanswered = CountIfDropped::new(&self.shared.metrics.cancelled);
        let access = self
            .shared
            .host
            .config
            .access_log
            .then(|| (req.method().clone(), req.uri().clone()));
        let id = {
            let n = self.next_id.get();
            self.next_id.set(n + 1);
            let mut id = self.id_prefix.clone();
            id.push_str(&n.to_string());
            id
        };
        let response = self.respond(req, Rc::clone(&remote), &id).await;
        unanswered.disarm();
        let status = response.status().as_u16();
        self.count(status);
        let elapsed = start.elapsed();
        self.metrics.latency.observe(elapsed.as_secs_f64());
        if let Some((method, uri)) = access {
            info!(
                target: "luapool::access",
                id = %id,
                remote = %remote,
                method = %method,
                uri = %uri,
                status,
                micros = elapsed.as_micros() as u64,
            );
        }
        response
    }

    fn count(&self, status: u16) {
        let mut by_status = self.metrics.by_status.borrow_mut();
        by_status
            .entry(status)
            .or_insert_with(|| {
                self.shared
                    .metrics
                    .requests
                    .get_or_create(&StatusLabels { status })
                    .clone()
            })
            .inc();
    }

    async fn respond(
        &self,
        req: Request<Incoming>,
        remote: Rc<str>,
        id: &str,
    ) -> Response<Full<Bytes>> {
        let config = &self.shared.host.config;
        let version = req.version();
        if let Err(refused) = intake::check_head(&req, config.max_body_size) {
            return self.refuse(refused, version);
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
            return response;
        }
        // The body is read before the request takes a slot: a slow client holds only
        // its own connection, for at most `body_read_timeout`.
        let (parts, body) = req.into_parts();
        let body =
            match intake::read_body(body, config.max_body_size, config.body_read_timeout).await {
                Ok(body) => body,
                Err(refused) => return self.refuse(refused, version),
            };
        let _permit = match self.slots.try_acquire() {
            Ok(permit) => permit,
            Err(_) if self.queue_full() => return self.overloaded(),
            Err(_) => {
                // Dropped with this future too, when the client gives up waiting.
                let _queued = Raised::new(&self.metrics.queued);
                match self.slots.acquire().await {
                    Ok(permit) => permit,
                    Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "server closing\n"),
                }
            }
        };
        let vm = Rc::clone(&self.vm.borrow());
        let app = Arc::clone(&self.app.borrow());
        let request = LuaRequest {
            parts,
            body,
            remote,
            id: id.to_string(),
        };
        let result = {
            let _running = Raised::new(&self.metrics.in_flight);
            vm.call_in_async::<Reply>(&app.script, "handle", request)
                .await
        };
        self.metrics.vm_memory.set(vm.used_memory() as u64);
        if let Some(poison) = vm.poisoned() {
            self.rebuild(&vm, &format!("{poison:?}"));
        }
        match result {
            Ok(Reply::Ok {
                status,
                headers,
                body,
            }) => {
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                response
            }
            Ok(Reply::Invalid(why)) => {
                let detail = format_args!("bad reply: {why}");
                if self.errors.admit(detail) {
                    error!(target: "luapool::handler", id, app = %app.path.display(), "{detail}");
                } else {
                    self.shared.metrics.log_suppressed.inc();
                }
                self.failure(StatusCode::INTERNAL_SERVER_ERROR, detail)
            }
            Err(e) => {
                let status = status_for(&e);
                if let Some(kind) = limit_kind(&e) {
                    Metrics::count(&self.shared.metrics.limits, kind);
                }
                let detail = Detail(&e);
                if self.errors.admit(&detail) {
                    error!(target: "luapool::handler", id, status = status.as_u16(), "{detail}");
                } else {
                    self.shared.metrics.log_suppressed.inc();
                }
                self.failure(status, detail)
            }
        }
    }

    /// Whether the worker's queue is full (`max_queued` requests wait for a slot).
    fn queue_full(&self) -> bool {
        self.metrics.queued.get() >= self.shared.host.config.max_queued as i64
    }

    /// `503` with `Retry-After`: every slot busy and the queue full.
    fn overloaded(&self) -> Response<Full<Bytes>> {
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
    fn refuse(&self, refused: Refused, version: Version) -> Response<Full<Bytes>> {
        Metrics::count(&self.shared.metrics.rejected, refused.kind());
        let mut response = text(refused.status(), &format!("{refused}\n"));
        if version < Version::HTTP_2 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// Logs what the error rate limit held back in the window that just ended.
    fn report_held_logs(&self) {
        let Some(held) = self.errors.roll(Instant::now()) else {
            return;
        };
        let secs = self.errors.window().as_secs();
        for (excerpt, n) in held.repeats {
            error!(
                target: "luapool::handler",
                worker = self.index,
                "... and {n} more like this in the last {secs} s: {excerpt}"
            );
        }
        if held.overflow > 0 {
            error!(
                target: "luapool::handler",
                worker = self.index,
                "... and {} more errors in the last {secs} s (not logged: too many distinct ones)",
                held.overflow
            );
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

    /// Replaces a poisoned VM with a new one, unless that already happened.
    fn rebuild(&self, poisoned: &Rc<Vm>, why: &str) {
        if !Rc::ptr_eq(&self.vm.borrow(), poisoned) {
            return;
        }
        let app = Arc::clone(&self.app.borrow());
        match self.shared.host.build_vm(&app) {
            Ok(vm) => {
                if self
                    .errors
                    .admit(format_args!("rebuilt the poisoned VM ({why})"))
                {
                    warn!(
                        worker = self.index,
                        "rebuilt the VM after it was poisoned ({why})"
                    );
                } else {
                    self.shared.metrics.log_suppressed.inc();
                }
                Metrics::count(&self.shared.metrics.vm_rebuilt, "poisoned");
                *self.vm.borrow_mut() = Rc::new(vm);
            }
            Err(e) => error!(worker = self.index, "cannot rebuild the poisoned VM: {e}"),
        }
    }

    /// Switches to a new app on a new VM; requests in flight finish on the old one.
    fn reload(&self, app: Arc<App>) {
        match self.shared.host.build_vm(&app) {
            Ok(vm) => {
                *self.vm.borrow_mut() = Rc::new(vm);
                *self.app.borrow_mut() = app;
                Metrics::count(&self.shared.metrics.vm_rebuilt, "reload");
                debug!(worker = self.index, "reloaded the app");
            }
            Err(e) => error!(
                worker = self.index,
                "reload failed, keeping the old app: {e}"
            ),
        }
    }
}

/// The kind label of a limit error, for the limit counter.
fn limit_kind(e: &luapool::Error) -> Option<&'static str> {
    e.limit_kind().map(luapool::LimitKind::as_str)
}

/// A handler error as logged (and shown in development mode): the error, then its
/// traceback; formatted only when it is used.
struct Detail<'a>(&'a luapool::Error);

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
fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    response
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
