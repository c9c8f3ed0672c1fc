//! The worker pool: a thread per VM, shared by any thread or task.
//!
//! A [`WorkerPool`] is a `Send + Sync + Clone` handle. Each worker is an OS thread owning
//! a current-thread tokio runtime, a `LocalSet` and a [`Vm`] built by the pool's *init
//! recipe*. A worker runs up to [`WorkerPoolConfig::concurrency`] jobs at once as
//! coroutines, so a job awaiting an async host function (`sleep`, I/O) does not hold up
//! the others on that worker.
//!
//! Jobs wait in one bounded queue that idle workers pull from: a slow job never holds
//! up fast jobs behind it while another worker is free. A full queue is an error
//! ([`Error::Busy`]), never an unbounded backlog. An idle worker polls the queue for a
//! few tens of microseconds before it sleeps, because waking a sleeping thread costs far
//! more than that on small machines.
//!
//! ```
//! use luapool::{Job, Script, Value, WorkerPool, WorkerPoolConfig};
//!
//! let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2))
//!     .init(|vm| vm.register("double", |n: i64| Ok(n * 2)))
//!     .build()?;
//! let result = pool.submit_blocking(Job::exec(Script::new("job.lua", "return double(21)")))?;
//! assert_eq!(result, vec![Value::Integer(42)]);
//! pool.shutdown_blocking(std::time::Duration::from_secs(1));
//! # Ok::<(), luapool::Error>(())
//! ```
//!
//! Healing: a job whose VM got poisoned (see [`Vm::poisoned`]) fails with its own error
//! and the worker rebuilds its VM from the recipe before its next job; a worker thread
//! that dies is respawned; a worker stuck in one long call past
//! [`WorkerPoolConfig::stuck_after`] is replaced (the stuck thread takes no more jobs and
//! exits when the call returns). Jobs waiting in the queue are never lost.

mod job;
mod stats;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use serde::Deserialize;
use tokio::sync::{oneshot, Notify};

use crate::config::VmConfig;
use crate::error::{Error, Result};
use crate::host::Module;
use crate::script::Script;
use crate::value::Value;
use crate::vm::Vm;
use job::Envelope;
pub use job::{Job, JobArgs};
pub use stats::HistogramSnapshot;
use stats::Stats;
use worker::WorkerState;

/// Configuration of a [`WorkerPool`]: plain data, `Default`, deserializable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WorkerPoolConfig {
    /// Number of worker threads. Default: the number of available cores.
    pub workers: usize,
    /// Jobs one worker runs at once (as coroutines interleaved at their awaits).
    /// Default: `64`.
    pub concurrency: usize,
    /// Jobs that may wait for a worker; beyond it, submitting fails with
    /// [`Error::Busy`] or waits for room. Default: `1024`.
    pub queue: usize,
    /// How long `submit` waits for room in a full queue before failing with
    /// [`Error::WaitTimeout`]; `None` waits as long as it takes. Default: none.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub submit_timeout: Option<Duration>,
    /// A worker inside one job poll for longer than this (a long C call the limits cannot
    /// interrupt) is replaced by a new worker. Default: none.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub stuck_after: Option<Duration>,
    /// Configuration of each worker's VM (isolation, limits, modules, time slice).
    /// Default: `VmConfig::default()`. A VM configuration without a
    /// [`time_slice`](VmConfig::time_slice) gets [`WorkerPoolConfig::DEFAULT_TIME_SLICE`] when the pool is
    /// built, so that a long job does not hold up the short ones interleaved with it on
    /// its worker; `Duration::ZERO` turns slicing off.
    pub vm: VmConfig,
}

impl Default for WorkerPoolConfig {
    fn default() -> Self {
        WorkerPoolConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            concurrency: 64,
            queue: 1024,
            submit_timeout: None,
            stuck_after: None,
            vm: VmConfig::default(),
        }
    }
}

/// The time slice of worker pool jobs unless configured otherwise (see
/// [`VmConfig::time_slice`]).
pub(crate) const DEFAULT_TIME_SLICE: Duration = Duration::from_millis(2);

impl WorkerPoolConfig {
    /// The time slice of worker pool jobs unless configured otherwise (see
    /// [`VmConfig::time_slice`]): 2 ms.
    pub const DEFAULT_TIME_SLICE: Duration = DEFAULT_TIME_SLICE;

    /// Sets the number of workers.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets how many jobs one worker runs at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the queue bound.
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// Sets (or, with `None`, clears) how long `submit` waits for room in a full queue.
    pub fn with_submit_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.submit_timeout = timeout.into();
        self
    }

    /// Sets (or clears) when a worker stuck in one call is replaced.
    pub fn with_stuck_after(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.stuck_after = after.into();
        self
    }

    /// Sets the configuration of each worker's VM.
    pub fn with_vm(mut self, vm: VmConfig) -> Self {
        self.vm = vm;
        self
    }
}

/// Builds each worker's VM: register host functions, run an init script.
pub(crate) type Recipe = Arc<dyn Fn(&Vm) -> Result<()> + Send + Sync>;

/// A snapshot of a pool's state and counters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerPoolStatus {
    /// Worker threads serving jobs.
    pub workers: usize,
    /// Workers running at least one job.
    pub busy: usize,
    /// Jobs waiting in the queue.
    pub queued: usize,
    /// Jobs running now.
    pub in_flight: usize,
    /// VMs built (at start, for respawned and replacement workers, and rebuilds).
    pub created: u64,
    /// VMs rebuilt because they were poisoned or the recipe was reloaded.
    pub rebuilt: u64,
    /// Worker threads respawned after they died.
    pub respawned: u64,
    /// Stuck workers replaced.
    pub replaced: u64,
    /// Jobs that succeeded.
    pub completed: u64,
    /// Jobs that failed (other than timeouts).
    pub failed: u64,
    /// Jobs that ended with [`Error::Timeout`].
    pub timed_out: u64,
    /// Jobs stopped while running because their caller dropped their future.
    pub cancelled: u64,
    /// Submissions refused because the queue was full or the pool closed.
    pub rejected: u64,
    /// Time jobs waited in the queue.
    pub wait: HistogramSnapshot,
    /// Time jobs took to run.
    pub run: HistogramSnapshot,
}

/// What [`WorkerPool::shutdown`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSummary {
    /// Jobs that succeeded over the pool's life.
    pub completed: u64,
    /// Jobs that failed over the pool's life.
    pub failed: u64,
    /// Jobs still queued at the deadline, failed with [`Error::Closed`].
    pub dropped: usize,
    /// Worker threads still running at the deadline (left to finish on their own).
    pub stragglers: usize,
}

/// State shared by the handles, the workers and the supervisor.
pub(crate) struct Shared {
    config: WorkerPoolConfig,
    queue: ArrayQueue<Envelope>,
    job_ready: Notify,
    room: Notify,
    exited: Notify,
    closed: AtomicBool,
    /// Registered on every VM before the recipe runs.
    modules: Vec<Module>,
    recipe: Mutex<Recipe>,
    generation: AtomicU64,
    stats: Stats,
    workers: Mutex<Vec<Arc<WorkerState>>>,
    threads: AtomicUsize,
    /// Workers waiting for `job_ready`: submitters notify only when there are some.
    sleepers: AtomicUsize,
    /// Submitters waiting for room in the queue: workers notify only when there are some.
    room_waiters: AtomicUsize,
    next_id: AtomicUsize,
    started: Instant,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Wakes a sleeping worker, if any, after a job was queued.
    fn job_queued(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.job_ready.notify_one();
        }
    }

    fn pop(&self) -> Option<Envelope> {
        let e = self.queue.pop()?;
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
        Some(e)
    }

    /// A VM of the pool's configuration with its modules, before any recipe.
    fn new_vm(&self) -> Result<Vm> {
        let vm = Vm::new(self.config.vm.clone())?;
        for module in &self.modules {
            vm.register_module(module.clone())?;
        }
        Ok(vm)
    }

    /// Builds a VM from the current recipe; returns it with the recipe's generation.
    fn build_vm(&self) -> Result<(Vm, u64)> {
        let (recipe, generation) = {
            let recipe = self.recipe.lock().unwrap_or_else(|p| p.into_inner());
            (Arc::clone(&recipe), self.generation())
        };
        let vm = self.new_vm()?;
        recipe(&vm)?;
        Stats::count(&self.stats.created, "luapool_vms_created_total");
        Ok((vm, generation))
    }

    /// Starts a worker thread; waits until its VM is built.
    fn spawn_worker(self: &Arc<Self>) -> Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(WorkerState::new(id));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.threads.fetch_add(1, Ordering::AcqRel);
        let (shared, me) = (Arc::clone(self), Arc::clone(&state));
        let spawned = std::thread::Builder::new()
            .name(format!("luapool-worker-{id}"))
            .spawn(move || worker::run(shared, me, ready_tx));
        if let Err(e) = spawned {
            self.threads.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Engine {
                message: format!("cannot spawn a worker thread: {e}"),
            });
        }
        match ready_rx.recv() {
            Ok(Ok(())) => {
                self.workers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(state);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::WorkerLost {
                reason: "worker thread ended while starting".to_string(),
            }),
        }
    }
}

/// A submitter waiting for room in the queue, counted in [`Shared::room_waiters`] for as
/// long as it lives.
struct RoomWaiter<'a>(&'a AtomicUsize);

impl<'a> RoomWaiter<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        RoomWaiter(count)
    }
}

impl Drop for RoomWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The user-facing handle; closing the pool when the last one is dropped.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.job_ready.notify_waiters();
    }
}

/// A pool of worker threads, each with its own [`Vm`], shared by any thread or task: a
/// job submitted from anywhere runs on one worker, next to that worker's other jobs.
#[derive(Clone)]
pub struct WorkerPool {
    handle: Arc<Handle>,
}

/// Builds a [`WorkerPool`]; see [`WorkerPool::builder`].
pub struct WorkerPoolBuilder {
    config: WorkerPoolConfig,
    modules: Vec<Module>,
    recipe: Recipe,
}

impl WorkerPoolBuilder {
    /// Registers `module` on every VM of the pool (before the init recipe runs): built
    /// once, shared by all workers, with no recipe closure needed.
    ///
    /// ```
    /// use luapool::{Job, Module, Script, WorkerPool, WorkerPoolConfig};
    ///
    /// let geo = Module::new("geo").function("dist", |(a, b): (f64, f64)| Ok((a - b).abs()));
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = WorkerPool::builder(WorkerPoolConfig::default()).module(geo).build()?;
    /// let d: f64 = pool.eval(Job::exec(Script::new("d.lua", "return geo.dist(1, 4)"))).await?;
    /// assert_eq!(d, 3.0);
    /// # pool.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok::<(), luapool::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn module(mut self, module: Module) -> Self {
        self.modules.push(module);
        self
    }

    /// Sets the init recipe, run on every new VM (at start, and whenever a VM must be
    /// rebuilt).
    pub fn init(mut self, recipe: impl Fn(&Vm) -> Result<()> + Send + Sync + 'static) -> Self {
        self.recipe = Arc::new(recipe);
        self
    }

    /// Starts the workers; returns once every worker has built its VM.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero worker count or queue; the recipe's error if a VM
    /// cannot be built.
    pub fn build(self) -> Result<WorkerPool> {
        let mut config = self.config;
        // No time slice configured: the pool's default (`Duration::ZERO` turns it off).
        config.vm.time_slice = Some(config.vm.time_slice.unwrap_or(DEFAULT_TIME_SLICE));
        if config.workers == 0 || config.queue == 0 || config.concurrency == 0 {
            return Err(Error::Config {
                message: "a worker pool needs at least one worker, a queue and a concurrency of 1"
                    .to_string(),
            });
        }
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(config.queue),
            job_ready: Notify::new(),
            room: Notify::new(),
            exited: Notify::new(),
            closed: AtomicBool::new(false),
            modules: self.modules,
            recipe: Mutex::new(self.recipe),
            generation: AtomicU64::new(0),
            stats: Stats::new(),
            workers: Mutex::new(Vec::new()),
            threads: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            room_waiters: AtomicUsize::new(0),
            next_id: AtomicUsize::new(0),
            started: Instant::now(),
            config,
        });
        let pool = WorkerPool {
            handle: Arc::new(Handle {
                shared: Arc::clone(&shared),
            }),
        };
        for _ in 0..shared.config.workers {
            shared.spawn_worker()?;
        }
        supervise(Arc::downgrade(&shared));
        Ok(pool)
    }
}

impl WorkerPool {
    /// A builder with `config` and an init recipe that does nothing.
    pub fn builder(config: WorkerPoolConfig) -> WorkerPoolBuilder {
        WorkerPoolBuilder {
            config,
            modules: Vec::new(),
            recipe: Arc::new(|_| Ok(())),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Queues `job`; waits for room up to `wait` (`None`: no waiting).
    async fn enqueue(&self, job: Job, wait: Option<Option<Duration>>) -> Result<JobFuture> {
        if let Some(e) = job.invalid() {
            return Err(e.clone());
        }
        let shared = self.shared();
        let (reply, rx) = oneshot::channel();
        let mut envelope = Envelope {
            job,
            reply,
            enqueued: Instant::now(),
        };
        let deadline = wait.flatten().map(|d| tokio::time::Instant::now() + d);
        loop {
            if shared.is_closed() {
                shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Closed);
            }
            match shared.queue.push(envelope) {
                Ok(()) => {
                    shared.job_queued();
                    return Ok(JobFuture { rx });
                }
                Err(back) => envelope = back,
            }
            if wait.is_none() {
                shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Busy {
                    what: format!("the queue of {} jobs is full", shared.config.queue),
                });
            }
            let room = shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            // Counted until this iteration ends, also when the submit future is dropped
            // while it waits (a cancelled submit must not leave workers notifying).
            let waiting = RoomWaiter::new(&shared.room_waiters);
            let still_full = shared.queue.is_full() && !shared.is_closed();
            let waited = match (still_full, deadline) {
                (false, _) => Ok(()),
                (true, Some(deadline)) => tokio::time::timeout_at(deadline, room).await,
                (true, None) => {
                    room.await;
                    Ok(())
                }
            };
            drop(waiting);
            if waited.is_err() {
                shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Error::WaitTimeout {
                    waited: wait.flatten().unwrap_or_default(),
                });
            }
        }
    }

    /// Runs `job` on the first free worker and returns its results. Waits for room in a
    /// full queue up to [`WorkerPoolConfig::submit_timeout`].
    ///
    /// Dropping the returned future cancels the job: a queued job is not run, a running
    /// one is dropped the next time its worker polls it (at its next await, or when its
    /// time slice runs out), which stops its script as a timeout would. On LuaJIT, which
    /// cannot slice executions, a CPU-bound job that never awaits runs on until one of
    /// its limits stops it.
    ///
    /// # Errors
    /// The job's own error; [`Error::Conversion`] if its arguments could not be
    /// converted; [`Error::WaitTimeout`] if the queue stayed full; [`Error::Closed`]
    /// after shutdown; [`Error::WorkerLost`] if its worker died.
    pub async fn submit(&self, job: Job) -> Result<Vec<Value>> {
        let wait = Some(self.shared().config.submit_timeout);
        self.enqueue(job, wait).await?.await
    }

    /// Like [`submit`](Self::submit), converting the results to `T` through serde: no
    /// result is `nil` (`()`, `Option`), one result is itself, several are a sequence (a
    /// tuple or a `Vec`).
    ///
    /// ```
    /// use luapool::{Job, Script, WorkerPool, WorkerPoolConfig};
    ///
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Verdict { allow: bool, reason: String }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(1)).build()?;
    /// let rules = Script::new("rules.lua", r#"
    ///     function decide(user) return { allow = user.age >= 18, reason = "age" } end
    /// "#);
    /// let user = serde_json::json!({ "age": 20 });
    /// let verdict: Verdict = pool.eval(Job::call_in(rules, "decide", (user,))).await?;
    /// assert_eq!(verdict, Verdict { allow: true, reason: "age".into() });
    /// # pool.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok::<(), luapool::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`submit`](Self::submit), and [`Error::Conversion`] if the results do not fit
    /// `T`.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, job: Job) -> Result<T> {
        Value::deserialize_results(self.submit(job).await?)
    }

    /// Like [`submit`](Self::submit), waiting at most `timeout` for room in the queue
    /// (a get with a timeout).
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub async fn submit_timeout(&self, job: Job, timeout: Duration) -> Result<Vec<Value>> {
        self.enqueue(job, Some(Some(timeout))).await?.await
    }

    /// Queues `job` without waiting: [`Error::Busy`] if the queue is full. The returned
    /// future resolves to the job's results.
    ///
    /// # Errors
    /// [`Error::Busy`], [`Error::Closed`].
    pub fn try_submit(&self, job: Job) -> Result<JobFuture> {
        self.try_push(job).map_err(|(e, _)| {
            if matches!(e, Error::Busy { .. }) {
                self.shared().stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
            e
        })
    }

    /// Queues `job` if there is room; gives it back with the error otherwise.
    // The job comes back by value so that `submit_blocking` can retry it; boxing it would
    // allocate on every retry against a full queue.
    #[allow(clippy::result_large_err)]
    fn try_push(&self, job: Job) -> std::result::Result<JobFuture, (Error, Job)> {
        if let Some(e) = job.invalid() {
            return Err((e.clone(), job));
        }
        let shared = self.shared();
        if shared.is_closed() {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err((Error::Closed, job));
        }
        let (reply, rx) = oneshot::channel();
        let envelope = Envelope {
            job,
            reply,
            enqueued: Instant::now(),
        };
        match shared.queue.push(envelope) {
            Ok(()) => {
                shared.job_queued();
                Ok(JobFuture { rx })
            }
            Err(back) => Err((
                Error::Busy {
                    what: format!("the queue of {} jobs is full", shared.config.queue),
                },
                back.job,
            )),
        }
    }

    /// [`submit`](Self::submit) for callers outside an async runtime: blocks the calling
    /// thread (spinning briefly first, as a sleeping thread is slow to wake).
    ///
    /// # Errors
    /// As [`submit`](Self::submit); [`Error::Config`] if called from inside an async
    /// runtime, where blocking would stall it.
    pub fn submit_blocking(&self, job: Job) -> Result<Vec<Value>> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Config {
                message: "submit_blocking called inside an async runtime; use submit".to_string(),
            });
        }
        let timeout = self.shared().config.submit_timeout;
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut job = job;
        let future = loop {
            match self.try_push(job) {
                Ok(f) => break f,
                Err((Error::Busy { .. }, back)) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        self.shared().stats.rejected.fetch_add(1, Ordering::Relaxed);
                        return Err(Error::WaitTimeout {
                            waited: timeout.unwrap_or_default(),
                        });
                    }
                    std::thread::sleep(Duration::from_micros(100));
                    job = back;
                }
                Err((e, _)) => return Err(e),
            }
        };
        future.wait_blocking()
    }

    /// Runs `script` on a worker (shorthand for `submit(Job::exec(script))`).
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub async fn exec(&self, script: Script) -> Result<Vec<Value>> {
        self.submit(Job::exec(script)).await
    }

    /// Calls a global function on a worker (shorthand for `submit(Job::call(..))`).
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub async fn call(&self, function: &str, args: impl JobArgs) -> Result<Vec<Value>> {
        self.submit(Job::call(function, args)).await
    }

    /// Runs `job` once on every worker (e.g. to warm a cache or read per-worker state in
    /// `Isolation::Shared` mode); returns each worker's result.
    ///
    /// # Errors
    /// [`Error::Closed`] after shutdown; per-worker errors are in the returned list.
    pub async fn broadcast(&self, job: Job) -> Result<Vec<Result<Vec<Value>>>> {
        let shared = self.shared();
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        let workers: Vec<Arc<WorkerState>> = shared
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut pending = Vec::with_capacity(workers.len());
        for w in &workers {
            let (reply, rx) = oneshot::channel();
            w.private
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(Envelope {
                    job: job.clone(),
                    reply,
                    enqueued: Instant::now(),
                });
            pending.push(JobFuture { rx });
        }
        shared.job_ready.notify_waiters();
        let mut results = Vec::with_capacity(pending.len());
        for p in pending {
            results.push(p.await);
        }
        Ok(results)
    }

    /// Replaces the init recipe. Each worker builds a new VM from it before its next
    /// job; jobs already running finish on the old VM.
    ///
    /// # Errors
    /// The recipe's error, found by building one VM with it on the calling thread first.
    pub fn reload(&self, recipe: impl Fn(&Vm) -> Result<()> + Send + Sync + 'static) -> Result<()> {
        let shared = self.shared();
        let vm = shared.new_vm()?;
        recipe(&vm)?;
        *shared.recipe.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(recipe);
        shared.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// A snapshot of the pool's state and counters.
    pub fn status(&self) -> WorkerPoolStatus {
        let shared = self.shared();
        let s = &shared.stats;
        WorkerPoolStatus {
            workers: shared.threads.load(Ordering::Acquire),
            busy: s.busy_workers.load(Ordering::Acquire),
            queued: shared.queue.len(),
            in_flight: s.in_flight.load(Ordering::Acquire),
            created: s.created.load(Ordering::Relaxed),
            rebuilt: s.rebuilt.load(Ordering::Relaxed),
            respawned: s.respawned.load(Ordering::Relaxed),
            replaced: s.replaced.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            timed_out: s.timed_out.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            wait: s.wait.snapshot(),
            run: s.run.snapshot(),
        }
    }

    /// Stops accepting jobs ([`Error::Closed`]), lets queued and running jobs finish until
    /// `deadline` has passed, then fails whatever is still queued and returns a summary.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownSummary {
        let shared = self.shared();
        self.close();
        let until = tokio::time::Instant::now() + deadline;
        while shared.threads.load(Ordering::Acquire) > 0 {
            let exited = shared.exited.notified();
            tokio::pin!(exited);
            exited.as_mut().enable();
            if shared.threads.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(until, exited).await.is_err() {
                break;
            }
        }
        self.summary()
    }

    /// [`shutdown`](Self::shutdown) for callers outside an async runtime.
    pub fn shutdown_blocking(&self, deadline: Duration) -> ShutdownSummary {
        let shared = self.shared();
        self.close();
        let until = Instant::now() + deadline;
        while shared.threads.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.summary()
    }

    fn close(&self) {
        let shared = self.shared();
        shared.closed.store(true, Ordering::Release);
        shared.job_ready.notify_waiters();
        shared.room.notify_waiters();
    }

    fn summary(&self) -> ShutdownSummary {
        let shared = self.shared();
        let mut dropped = 0;
        while let Some(e) = shared.queue.pop() {
            let _ = e.reply.send(Err(Error::Closed));
            dropped += 1;
        }
        ShutdownSummary {
            completed: shared.stats.completed.load(Ordering::Relaxed),
            failed: shared.stats.failed.load(Ordering::Relaxed),
            dropped,
            stragglers: shared.threads.load(Ordering::Acquire),
        }
    }
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("config", &self.shared().config)
            .finish()
    }
}

/// The result of a queued job; resolves when a worker has run it.
#[derive(Debug)]
pub struct JobFuture {
    rx: oneshot::Receiver<Result<Vec<Value>>>,
}

impl JobFuture {
    /// Blocks the calling thread until the job is done (spinning briefly first). Do not
    /// call it from inside an async runtime.
    ///
    /// # Errors
    /// The job's error; [`Error::WorkerLost`] if its worker died.
    pub fn wait_blocking(mut self) -> Result<Vec<Value>> {
        let spin_until = Instant::now() + Duration::from_micros(50);
        while Instant::now() < spin_until {
            match self.rx.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Empty) => std::hint::spin_loop(),
                Err(oneshot::error::TryRecvError::Closed) => return Err(lost()),
            }
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Config {
                message: "wait_blocking called inside an async runtime; await the JobFuture"
                    .to_string(),
            });
        }
        self.rx.blocking_recv().unwrap_or_else(|_| Err(lost()))
    }
}

impl std::future::Future for JobFuture {
    type Output = Result<Vec<Value>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(lost())))
    }
}

fn lost() -> Error {
    Error::WorkerLost {
        reason: "the worker running the job ended before finishing it".to_string(),
    }
}

/// The supervisor: respawns dead workers and replaces stuck ones, until the pool closes.
fn supervise(shared: Weak<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("luapool-supervisor".to_string())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(10));
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.is_closed() {
                return;
            }
            let now = shared.now_ns();
            let stuck_after = shared
                .config
                .stuck_after
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            let mut replace = 0;
            {
                let mut workers = shared.workers.lock().unwrap_or_else(|p| p.into_inner());
                workers.retain(|w| {
                    if w.exited.load(Ordering::Acquire) {
                        tracing::warn!(worker = w.id, "worker thread ended; respawning it");
                        Stats::count(&shared.stats.respawned, "luapool_workers_respawned_total");
                        replace += 1;
                        return false;
                    }
                    let since = w.polling_since.load(Ordering::Acquire);
                    if let Some(limit) = stuck_after {
                        if since != 0 && now.saturating_sub(since) > limit {
                            tracing::warn!(worker = w.id, "worker stuck in one call; replacing it");
                            w.abandoned.store(true, Ordering::Release);
                            Stats::count(&shared.stats.replaced, "luapool_workers_replaced_total");
                            replace += 1;
                            return false;
                        }
                    }
                    true
                });
            }
            for _ in 0..replace {
                if let Err(e) = shared.spawn_worker() {
                    tracing::error!(error = %e, "cannot start a replacement worker");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the worker pool supervisor");
    }
}
