//! A worker thread's start-up: its current-thread runtime and `LocalSet`, the listening
//! socket made async, the [`Worker`] with its first VM, its metric handles and its
//! hyper connection builder; then the accept loop of [`connection`](super::connection).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;
use luapool::LiveVm;
use tokio::sync::{mpsc, watch, Semaphore};

use super::connection::LocalExec;
use super::{Control, Shared, Worker, WorkerMetrics, WorkerSummary, LOG_MAX_DISTINCT, LOG_WINDOW};
use crate::app::App;
use crate::metrics::WorkerLabels;
use crate::ratelog::RateLimit;

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
        match Worker::start(index, listener, shared, app) {
            Ok((worker, listener)) => {
                let _ = ready.send(Ok(()));
                worker.serve(listener, control).await
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                WorkerSummary::default()
            }
        }
    })
}

impl Worker {
    /// The worker and its listener, inside its runtime.
    fn start(
        index: usize,
        listener: std::net::TcpListener,
        shared: Arc<Shared>,
        app: Arc<App>,
    ) -> crate::Result<(Rc<Worker>, tokio::net::TcpListener)> {
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|e| crate::Error::Worker {
                index,
                message: format!("cannot use the listening socket: {e}"),
            })?;
        let worker = Rc::new(Worker::new(index, shared, app)?);
        worker.install_timers();
        worker.init_worker();
        Ok((worker, listener))
    }

    /// A worker serving `app`, with its first VM built.
    fn new(index: usize, shared: Arc<Shared>, app: Arc<App>) -> crate::Result<Worker> {
        let vm = shared.host.build_vm(&app)?;
        let metrics = WorkerMetrics::new(&shared, index);
        metrics.vm_memory.set(vm.used_memory() as u64);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ok(Worker {
            index,
            live: LiveVm::new(vm, app),
            slots: Semaphore::new(shared.host.config.concurrency),
            next_id: Cell::new(0),
            id_prefix: format!("{started:x}-{index}-"),
            connections: Cell::new(0),
            closed: tokio::sync::Notify::new(),
            shutdown: watch::Sender::new(false),
            metrics,
            http: http_builder(),
            errors: RateLimit::new(LOG_WINDOW, LOG_MAX_DISTINCT),
            timers: super::timers::Timers::new(shared.host.config.max_timers),
            shared,
        })
    }
}

impl WorkerMetrics {
    /// The handles of worker `index`'s series.
    fn new(shared: &Shared, index: usize) -> WorkerMetrics {
        let labels = WorkerLabels { worker: index };
        let metrics = &shared.metrics;
        WorkerMetrics {
            latency: metrics.latency.get_or_create(&labels).clone(),
            in_flight: metrics.in_flight.get_or_create(&labels).clone(),
            queued: metrics.queued.get_or_create(&labels).clone(),
            timers: metrics.timers.get_or_create(&labels).clone(),
            connections: metrics.connections.get_or_create(&labels).clone(),
            vm_memory: metrics.vm_memory.get_or_create(&labels).clone(),
            by_status: RefCell::new(HashMap::new()),
        }
    }
}

/// hyper's connection builder: HTTP/1.1 with keep-alive and HTTP/2 cleartext, their
/// tasks on the worker's `LocalSet`.
fn http_builder() -> auto::Builder<LocalExec> {
    let mut http = auto::Builder::new(LocalExec);
    // The connection loop enforces the header read and keep-alive timeouts itself
    // (see `timeouts`): hyper's own header timer also runs between requests.
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    http.http2().timer(TokioTimer::new());
    http
}
