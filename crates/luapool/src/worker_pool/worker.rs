//! One worker: an OS thread owning a current-thread tokio runtime, a `LocalSet` and a
//! `Vm`, running up to its concurrency of jobs at once as coroutines.

use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::job::Envelope;
use super::stats::{Finished, Stats};
use super::Shared;
use crate::error::{Error, Result};
use crate::live_vm::LiveVm;
use crate::vm::Vm;

/// How long an idle worker with nothing running keeps polling the queue before it
/// sleeps: waking a sleeping thread costs tens of microseconds on this kind of machine,
/// a spinning one picks a job up in well under one.
const SPIN: Duration = Duration::from_micros(50);

/// What the pool and its supervisor see of one worker.
pub(crate) struct WorkerState {
    pub(crate) id: usize,
    /// Jobs addressed to this worker only (`broadcast`).
    pub(crate) private: Mutex<VecDeque<Envelope>>,
    /// When the worker started polling a job, in nanoseconds since the pool started;
    /// 0 while it is not inside a job.
    pub(crate) polling_since: AtomicU64,
    /// Set by the supervisor when the worker is stuck: it takes no more jobs and exits
    /// once its running jobs end.
    pub(crate) abandoned: AtomicBool,
    /// Set when the worker's thread has ended (normally or not).
    pub(crate) exited: AtomicBool,
    running: AtomicUsize,
}

impl WorkerState {
    pub(crate) fn new(id: usize) -> Self {
        WorkerState {
            id,
            private: Mutex::new(VecDeque::new()),
            polling_since: AtomicU64::new(0),
            abandoned: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            running: AtomicUsize::new(0),
        }
    }

    fn pop_private(&self) -> Option<Envelope> {
        self.private
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }
}

/// Marks the worker exited when its thread ends, even by a panic.
struct ExitGuard(Arc<Shared>, Arc<WorkerState>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.1.exited.store(true, Ordering::Release);
        self.0.threads.fetch_sub(1, Ordering::AcqRel);
        self.0.exited.notify_waiters();
    }
}

/// The worker thread's body. `ready` learns whether the first VM could be built.
pub(crate) fn run(
    shared: Arc<Shared>,
    me: Arc<WorkerState>,
    ready: std::sync::mpsc::Sender<Result<()>>,
) {
    let _guard = ExitGuard(Arc::clone(&shared), Arc::clone(&me));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(Error::Engine {
                message: format!("cannot start a worker runtime: {e}"),
            }));
            return;
        }
    };
    let (vm, generation) = match shared.build_vm() {
        Ok(built) => built,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(shared, me, vm, generation));
}

/// Takes jobs and runs them on the worker's [`LiveVm`] until the pool is closed and
/// drained or the worker is abandoned; then lets the running jobs finish.
async fn serve(shared: Arc<Shared>, me: Arc<WorkerState>, vm: Vm, generation: u64) {
    let concurrency = shared.config.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let finished = Rc::new(Notify::new());
    // The source of the worker's VM is the generation of the recipe it was built from.
    let live = Rc::new(LiveVm::new(vm, generation));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        // Idle when the slot just taken is the only one: nothing else is running.
        let idle = || slots.available_permits() + 1 == concurrency;
        let Some(envelope) = next_job(&shared, &me, idle, &finished).await else {
            break;
        };
        refresh(&shared, &live);
        let vm = live.vm();
        let (shared, me, live, finished) = (
            Arc::clone(&shared),
            Arc::clone(&me),
            Rc::clone(&live),
            Rc::clone(&finished),
        );
        let mut task = Box::pin(async move {
            run_job(&shared, &me, &vm, envelope).await;
            let healed = live.heal(&vm, |_| shared.build_vm());
            if let Some(healed) = healed {
                record_rebuild(&shared, &live, healed.into_result().map(drop));
            }
            drop(slot);
            finished.notify_one();
        });
        // Most jobs finish without awaiting: run them here and spare the task machinery.
        let first = std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await;
        if first.is_pending() {
            tokio::task::spawn_local(task);
        }
    }
    // Let the running jobs finish.
    let _ = slots.acquire_many(concurrency as u32).await;
}

/// Rebuilds the VM if the init recipe was reloaded since it was built.
fn refresh(shared: &Shared, live: &LiveVm<u64>) {
    if live.source() != shared.generation() {
        let rebuilt = live.replace(|_| shared.build_vm());
        record_rebuild(shared, live, rebuilt);
    }
}

/// Counts a new VM, or logs why it could not be built and keeps the old one: the
/// current recipe is then not tried again until it changes or the VM is poisoned.
fn record_rebuild(shared: &Shared, live: &LiveVm<u64>, rebuilt: Result<()>) {
    match rebuilt {
        Ok(()) => Stats::count(&shared.stats.rebuilt, "luapool_vms_rebuilt_total"),
        Err(e) => {
            live.set_source(shared.generation());
            tracing::error!(error = %e, "cannot rebuild a worker VM; keeping the old one");
        }
    }
}

/// The next job for this worker: its private queue first, then the shared queue. `None`
/// when the pool is closed and drained, or the worker was abandoned. While nothing else
/// runs on the worker (`idle`), it polls the queue for [`SPIN`] before sleeping; it also
/// wakes when one of its running jobs finishes, to spin again once idle.
async fn next_job(
    shared: &Shared,
    me: &WorkerState,
    idle: impl Fn() -> bool,
    finished: &Notify,
) -> Option<Envelope> {
    loop {
        let spin_until = idle().then(|| Instant::now() + SPIN);
        loop {
            if let Some(e) = me.pop_private() {
                return Some(e);
            }
            if me.abandoned.load(Ordering::Acquire) {
                return None;
            }
            if let Some(e) = shared.pop() {
                return Some(e);
            }
            if shared.is_closed() {
                return None;
            }
            if spin_until.is_some_and(|t| Instant::now() < t) {
                // Yield rather than spin hot: on a small machine the submitter may need
                // this core to queue the job being waited for.
                std::thread::yield_now();
                continue;
            }
            break;
        }
        let job_ready = shared.job_ready.notified();
        let job_done = finished.notified();
        tokio::pin!(job_ready, job_done);
        job_ready.as_mut().enable();
        shared.sleepers.fetch_add(1, Ordering::SeqCst);
        let found = me.pop_private().or_else(|| shared.pop());
        if found.is_none() && !shared.is_closed() && !me.abandoned.load(Ordering::Acquire) {
            tokio::select! {
                () = &mut job_ready => {}
                () = &mut job_done => {}
            }
        }
        shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        if found.is_some() {
            return found;
        }
    }
}

/// Runs one job, records it, and sends its result. A job whose caller has gone (its
/// future was dropped) is not started, or, if running, dropped at its next poll, which
/// stops its script (see the limits' `Driver`).
async fn run_job(shared: &Shared, me: &WorkerState, vm: &Vm, envelope: Envelope) {
    let Envelope {
        job,
        mut reply,
        enqueued,
    } = envelope;
    if reply.is_closed() {
        return; // the caller gave up while the job was queued
    }
    let started = Instant::now();
    if me.running.fetch_add(1, Ordering::AcqRel) == 0 {
        shared.stats.busy_workers.fetch_add(1, Ordering::AcqRel);
    }
    shared.stats.in_flight.fetch_add(1, Ordering::AcqRel);
    let result = {
        let mut fut = std::pin::pin!(job.run(vm));
        std::future::poll_fn(|cx| {
            if reply.poll_closed(cx).is_ready() {
                return Poll::Ready(None);
            }
            me.polling_since.store(shared.now_ns(), Ordering::Release);
            let poll = fut.as_mut().poll(cx);
            me.polling_since.store(0, Ordering::Release);
            poll.map(Some)
        })
        .await
        // A cancelled job's future is dropped here, which releases its execution.
    };
    shared.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    if me.running.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.stats.busy_workers.fetch_sub(1, Ordering::AcqRel);
    }
    let outcome = match &result {
        None => Finished::Cancelled,
        Some(Ok(_)) => Finished::Ok,
        Some(Err(Error::Timeout { .. })) => Finished::TimedOut,
        Some(Err(_)) => Finished::Failed,
    };
    shared
        .stats
        .finished(started - enqueued, started.elapsed(), outcome);
    if let Some(result) = result {
        let _ = reply.send(result);
    }
}
