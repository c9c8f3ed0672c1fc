//! A worker: one OS thread with a current-thread runtime that accepts connections,
//! serves them with hyper and runs their handlers on the worker's own VM, so a request
//! never crosses threads.
//!
//! One module per job, in the order a worker meets them:
//!
//! | module | owns |
//! |---|---|
//! | [`start`] | the thread's start-up: its runtime, its listener, its [`Worker`] |
//! | [`connection`] | the accept loop, the control messages (reload, shutdown), one connection's keep-alive and timeouts, the drain at shutdown |
//! | [`request`] | one request: its id, the access log and request metrics, the handler's call |
//! | [`admission`] | what happens before the handler: the head check, the body, the slots and the queue, and the refusals |
//! | [`reply`] | the handler's outcome as a response: replies, errors and how they are logged |
//! | [`vm`] | which VM requests run on ([`luapool::LiveVm`]): rebuilt when poisoned, replaced on reload |
//! | [`stream`] | streamed responses: `stream.start`/`stream.write`, the handler running on after the head is sent |
//! | [`timers`] | background work: `timer.after`/`timer.every` and the app's `init_worker()` |
//!
//! The [`Worker`] itself is the state these share, on its thread (`Rc`, `Cell`).

mod admission;
mod connection;
mod reply;
mod request;
mod start;
mod stream;
mod timers;
mod vm;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::server::conn::auto;
use luapool::LiveVm;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{watch, Semaphore};
use tracing::error;

use crate::app::{App, Host};
use crate::metrics::Metrics;
use crate::ratelog::RateLimit;

pub(crate) use start::run;
pub(crate) use stream::module as stream_module;
pub(crate) use timers::module as timer_module;

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
    /// The certificate connections are accepted with, when the server speaks TLS.
    pub(crate) tls: Option<crate::tls::Certificates>,
}

/// Metric handles a worker updates on every request.
struct WorkerMetrics {
    latency: Histogram,
    in_flight: Gauge,
    queued: Gauge,
    timers: Gauge,
    connections: Gauge,
    vm_memory: Gauge<u64, AtomicU64>,
    by_status: RefCell<HashMap<u16, Counter>>,
}

/// One worker's state, shared by its connections and requests on its thread.
struct Worker {
    /// The worker's number, in logs and metric labels.
    index: usize,
    shared: Arc<Shared>,
    /// The VM new requests run on, with the app it was built for.
    live: LiveVm<Arc<App>>,
    /// Requests that may run handlers at once (`concurrency`).
    slots: Semaphore,
    /// Request ids: `id_prefix` then a counter.
    next_id: Cell<u64>,
    id_prefix: String,
    /// Connections open now, and a notification when the last one closes.
    connections: Cell<usize>,
    closed: tokio::sync::Notify,
    /// Set at shutdown: connections finish their requests and close.
    shutdown: watch::Sender<bool>,
    metrics: WorkerMetrics,
    http: auto::Builder<connection::LocalExec>,
    /// Rate limit of the worker's error log lines.
    errors: RateLimit,
    /// Pending `timer.after` / `timer.every` timers.
    timers: timers::Timers,
}

impl Worker {
    /// Whether a log line may be written now (see [`RateLimit::admit`]); counts it as
    /// suppressed if not.
    fn may_log(&self, line: impl std::fmt::Display) -> bool {
        let admitted = self.errors.admit(line);
        if !admitted {
            self.shared.metrics.log_suppressed.inc();
        }
        admitted
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
}
