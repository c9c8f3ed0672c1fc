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
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
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
use crate::metrics::{Metrics, StatusLabels, WorkerLabels};
use crate::request::LuaRequest;
use crate::response::{Reply, DEFAULT_CONTENT_TYPE};
use crate::status::status_for;

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
    vm_memory: Gauge<u64, AtomicU64>,
    by_status: RefCell<HashMap<u16, Counter>>,
}

struct Worker {
    index: usize,
    shared: Arc<Shared>,
    app: RefCell<Arc<App>>,
    vm: RefCell<Rc<Vm>>,
    slots: Semaphore,
    waiting: Cell<usize>,
    next_id: Cell<u64>,
    id_prefix: String,
    connections: Cell<usize>,
    closed: tokio::sync::Notify,
    shutdown: watch::Sender<bool>,
    metrics: WorkerMetrics,
    http: auto::Builder<LocalExec>,
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
            vm_memory: shared.metrics.vm_memory.get_or_create(&labels).clone(),
            by_status: RefCell::new(HashMap::new()),
        };
        metrics.vm_memory.set(vm.used_memory() as u64);
        let mut http = auto::Builder::new(LocalExec);
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
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
            waiting: Cell::new(0),
            next_id: Cell::new(0),
            id_prefix: format!("{started:x}-{index}-"),
            connections: Cell::new(0),
            closed: tokio::sync::Notify::new(),
            shutdown: watch::Sender::new(false),
            metrics,
            http,
            shared,
        })
    }

    /// Accepts connections until told to shut down, then drains them.
    async fn serve(
        self: Rc<Self>,
        listener: tokio::net::TcpListener,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> WorkerSummary {
        let deadline = loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::task::spawn_local(Rc::clone(&self).connection(stream, remote));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        warn!(worker = self.index, "accept failed: {e}");
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

    /// Serves one connection: HTTP/1.1 with keep-alive or HTTP/2 cleartext.
    async fn connection(self: Rc<Self>, stream: tokio::net::TcpStream, remote: SocketAddr) {
        let _open = OpenConnection::new(&self);
        let peer: Rc<str> = Rc::from(remote.to_string());
        let idle = Rc::new(Idle::default());
        let service = {
            let (worker, idle, peer) = (Rc::clone(&self), Rc::clone(&idle), Rc::clone(&peer));
            hyper::service::service_fn(move |req| {
                let (worker, idle, peer) = (Rc::clone(&worker), Rc::clone(&idle), Rc::clone(&peer));
                async move {
                    idle.active.set(idle.active.get() + 1);
                    let response = worker.handle(req, peer).await;
                    idle.active.set(idle.active.get() - 1);
                    idle.last.set(Instant::now());
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let conn = self.http.serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        let mut shutdown = self.shutdown.subscribe();
        let keep_alive = self.shared.host.config.keep_alive_timeout;
        let mut closing = *shutdown.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let idle_until = idle.last.get() + keep_alive;
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
                () = tokio::time::sleep_until(idle_until.into()), if !closing => {
                    if idle.active.get() == 0 && idle.last.get() + keep_alive <= Instant::now() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }

    /// Answers one request and records it.
    async fn handle(&self, req: Request<Incoming>, remote: Rc<str>) -> Response<Full<Bytes>> {
        let start = Instant::now();
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
        let _permit = match self.slots.try_acquire() {
            Ok(permit) => permit,
            Err(_) if self.waiting.get() >= config.max_queued => {
                Metrics::count(&self.shared.metrics.rejected, "overload");
                let mut response = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server busy, retry later\n",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            Err(_) => {
                self.waiting.set(self.waiting.get() + 1);
                let permit = self.slots.acquire().await;
                self.waiting.set(self.waiting.get() - 1);
                match permit {
                    Ok(permit) => permit,
                    Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "server closing\n"),
                }
            }
        };
        let (parts, body) = req.into_parts();
        let too_large = || {
            Metrics::count(&self.shared.metrics.rejected, "body_too_large");
            text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
        };
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > config.max_body_size as u64) {
            return too_large();
        }
        let body = match Limited::new(body, config.max_body_size).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(e) => {
                debug!(worker = self.index, "cannot read the request body: {e}");
                return text(StatusCode::BAD_REQUEST, "cannot read the request body\n");
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
        self.metrics.in_flight.inc();
        let result = vm
            .call_in_async::<Reply>(&app.script, "handle", request)
            .await;
        self.metrics.in_flight.dec();
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
                error!(target: "luapool::handler", id, app = %app.path.display(), "bad reply: {why}");
                self.failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("bad reply: {why}"),
                )
            }
            Err(e) => {
                let status = status_for(&e);
                if let Some(kind) = limit_kind(&e) {
                    Metrics::count(&self.shared.metrics.limits, kind);
                }
                let detail = match e.traceback() {
                    Some(tb) => format!("{e}\n{tb}"),
                    None => e.to_string(),
                };
                error!(target: "luapool::handler", id, status = status.as_u16(), "{detail}");
                self.failure(status, &detail)
            }
        }
    }

    /// An error response: a generic body, or the details in development mode.
    fn failure(&self, status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
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
                warn!(
                    worker = self.index,
                    "rebuilt the VM after it was poisoned ({why})"
                );
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
    Some(match e {
        luapool::Error::Timeout { .. } => "timeout",
        luapool::Error::CpuLimit { .. } => "cpu",
        luapool::Error::InstructionLimit { .. } => "instructions",
        luapool::Error::MemoryLimit { .. } => "memory",
        _ => return None,
    })
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

/// When a connection last finished a request, and how many it is handling.
struct Idle {
    last: Cell<Instant>,
    active: Cell<usize>,
}

impl Default for Idle {
    fn default() -> Self {
        Idle {
            last: Cell::new(Instant::now()),
            active: Cell::new(0),
        }
    }
}

/// Counts a worker's open connections, so shutdown knows when they are all closed.
struct OpenConnection<'a>(&'a Worker);

impl<'a> OpenConnection<'a> {
    fn new(worker: &'a Worker) -> Self {
        worker.connections.set(worker.connections.get() + 1);
        OpenConnection(worker)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        let n = self.0.connections.get() - 1;
        self.0.connections.set(n);
        if n == 0 {
            self.0.closed.notify_waiters();
        }
    }
}
