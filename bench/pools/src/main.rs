//! bench/pools.sh: luapool's pools side by side with a hand-rolled pool of raw mlua states.
//!
//! Every job runs the chunk `local x = ... return x + 1` with an integer argument in a
//! fresh global environment, and its result is checked. Two sides run the same jobs in
//! the same process, in alternating order (luapool, baseline, baseline, luapool, ...):
//!
//! - **luapool**: a [`WorkerPool`] of 2 workers (shapes 1 to 3) and, for shape 4, one
//!   [`CheckoutPool`] per thread (a checkout pool is bound to its thread);
//! - **baseline**: 2 threads, each owning a raw [`mlua::Lua`] with the chunk compiled
//!   once into a [`Function`], fed by one shared `crossbeam_channel` MPMC queue; each job
//!   carries a `tokio::sync::oneshot` sender for its reply. Per job the worker creates a
//!   table with the metatable `{__index = globals}`, makes it the chunk's `_ENV`, calls
//!   the chunk and sends back the `i64`. Shape 4's baseline is 2 threads doing the same
//!   per call, with no pool or queue at all. How the table becomes `_ENV` is
//!   [`EnvMode`]: by default the chunk is compiled once as `function(_ENV, ...) <chunk>
//!   end` and the table passed as the first argument (one call, nothing else allocated);
//!   `BASELINE_ENV=set_environment` uses mlua's [`Function::set_environment`] instead.
//!
//! The shapes:
//!
//! 1. one current-thread driver keeping 64 jobs in flight (`try_submit`, as the
//!    `throughput()` of `crates/luapool/benches/worker_pool.rs` does);
//! 2. a service: 64 tasks on a 2-thread tokio runtime, each looping `submit(..).await`;
//! 3. one plain thread, 1 job in flight (`submit_blocking`; baseline: send, then
//!    `blocking_recv`);
//! 4. 2 threads each looping checkout pool `get` + exec + drop (baseline: a raw state
//!    per thread, a fresh `_ENV` per call).
//!
//! Per shape and side it reports jobs per second, process CPU time (user + sys, from
//! `getrusage(RUSAGE_SELF)`, every thread of the process) per job, and the p50 / p99 of
//! each job's latency from submit to result as its submitter sees it, each the median
//! over the rounds. Shape 1's driver awaits its 64 jobs in submission order, so a job's
//! latency there ends when the driver gets to it, not when its result arrived.
//!
//! Environment: `ROUNDS` (default 3), `JOBS` per round and side (default 200000; shape 3
//! runs `JOBS / 4`), `TIME_SLICE=on|off` (default `on`: the worker pool's VMs get
//! `WorkerPoolConfig::default()`'s time slice; `off` builds them without one),
//! `BASELINE_ENV=param|set_environment` (default `param`, see [`EnvMode`]), `SHAPES`
//! (default `1,2,3,4`: which shapes to run). The report
//! goes to stdout, per-round figures to stderr.

use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use luapool::{
    CheckoutPoolConfig, CheckoutPool, Job, Script, Value, VmConfig, WorkerPool, WorkerPoolConfig,
};
use mlua::{Function, Lua, Table};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Worker threads of either pool (and threads of shape 4).
const WORKERS: usize = 2;
/// Jobs outstanding in shape 1.
const IN_FLIGHT: usize = 64;
/// Submitting tasks in shape 2.
const TASKS: usize = 64;
/// Queue bound of either pool (shapes 1 and 2 never have more than 64 jobs queued).
const QUEUE: usize = 1024;
/// Warm-up jobs per side before each shape's rounds.
const WARMUP: usize = 10_000;
/// The job's chunk name.
const NAME: &str = "job.lua";
/// The job: its argument plus one.
const SOURCE: &str = "local x = ... return x + 1";

fn main() {
    let settings = Settings::from_env();
    let load_start = loadavg();
    print_header(&settings, &load_start);

    // Both pools are built (and warmed up per shape) before anything is measured, and
    // stay alive across every round.
    let luapool = Luapool::new(settings.time_slice);
    let baseline = Baseline::new(WORKERS, settings.env_mode);
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
    let service = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("multi-thread runtime");

    let mut rows = Vec::new();
    let jobs = settings.jobs;
    let shape = |n: u8| settings.shapes.contains(&n);

    if shape(1) {
        in_flight(&current, &luapool, WARMUP);
        in_flight(&current, &baseline, WARMUP);
        rows.push(rounds(
            "1. WorkerPool, 64 in flight, 1 current-thread driver",
            settings.rounds,
            || measure(|| in_flight(&current, &luapool, jobs)),
            || measure(|| in_flight(&current, &baseline, jobs)),
        ));
    }

    if shape(2) {
        service_tasks(&service, &luapool, WARMUP);
        service_tasks(&service, &baseline, WARMUP);
        rows.push(rounds(
            "2. WorkerPool, 64 tasks on a 2-thread runtime",
            settings.rounds,
            || measure(|| service_tasks(&service, &luapool, jobs)),
            || measure(|| service_tasks(&service, &baseline, jobs)),
        ));
    }

    if shape(3) {
        blocking(&luapool, WARMUP);
        blocking(&baseline, WARMUP);
        rows.push(rounds(
            "3. WorkerPool, submit_blocking, 1 in flight",
            settings.rounds,
            || measure(|| blocking(&luapool, jobs / 4)),
            || measure(|| blocking(&baseline, jobs / 4)),
        ));
    }

    if shape(4) {
        let vm = VmConfig::default();
        let checkout = Team::spawn(WORKERS, move || checkout_loop(vm.clone()));
        let env_mode = settings.env_mode;
        let raw = Team::spawn(WORKERS, move || raw_loop(env_mode));
        checkout.run(WARMUP);
        raw.run(WARMUP);
        rows.push(rounds(
            "4. CheckoutPool get + exec + drop, 2 threads",
            settings.rounds,
            || measure(|| checkout.run(jobs)),
            || measure(|| raw.run(jobs)),
        ));
    }

    print_table(&rows);
    println!();
    print_rounds(&rows);
    println!();
    println!(
        "loadavg: {} at the start, {} at the end.",
        load_start,
        loadavg()
    );
    luapool.pool.shutdown_blocking(Duration::from_secs(5));
}

/// The run's settings, from the environment.
struct Settings {
    /// Measured rounds per shape and side.
    rounds: usize,
    /// Jobs per round (shape 3: a quarter).
    jobs: usize,
    /// Whether the worker pool's VMs have a time slice.
    time_slice: bool,
    /// How the baseline gives each job its environment.
    env_mode: EnvMode,
    /// The shapes to run (1 to 4).
    shapes: Vec<u8>,
}

impl Settings {
    fn from_env() -> Settings {
        let time_slice = match std::env::var("TIME_SLICE").as_deref() {
            Err(_) | Ok("") | Ok("on") => true,
            Ok("off") => false,
            Ok(other) => fail(&format!("TIME_SLICE must be on or off, not '{other}'")),
        };
        let env_mode = match std::env::var("BASELINE_ENV").as_deref() {
            Err(_) | Ok("") | Ok("param") => EnvMode::Param,
            Ok("set_environment") => EnvMode::SetEnvironment,
            Ok(other) => fail(&format!(
                "BASELINE_ENV must be param or set_environment, not '{other}'"
            )),
        };
        let shapes = std::env::var("SHAPES").unwrap_or_default();
        let shapes: Vec<u8> = if shapes.trim().is_empty() {
            vec![1, 2, 3, 4]
        } else {
            shapes
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| match s.parse() {
                    Ok(n @ 1..=4) => n,
                    _ => fail(&format!("SHAPES lists shapes 1 to 4, not '{s}'")),
                })
                .collect()
        };
        Settings {
            shapes,
            rounds: env_number("ROUNDS", 3).max(1),
            jobs: env_number("JOBS", 200_000).max(TASKS * 4),
            time_slice,
            env_mode,
        }
    }
}

/// A positive integer from the environment, or `default`.
fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) if v.is_empty() => default,
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name} must be a number, not '{v}'"))),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("pools: {message}");
    std::process::exit(2)
}

/// What either side offers shapes 1 to 3.
trait Side: Clone + Send + Sync + 'static {
    /// A queued job's result.
    type Pending: Future + Send;
    /// Queues the job for `x` without waiting; `None` if the queue is full.
    fn try_start(&self, x: i64) -> Option<Self::Pending>;
    /// Checks a finished job's result.
    fn check(out: <Self::Pending as Future>::Output, x: i64);
    /// Runs the job for `x` and checks its result, waiting for room if need be.
    fn submit(&self, x: i64) -> impl Future<Output = ()> + Send;
    /// Runs the job for `x` from a plain thread and checks its result.
    fn submit_blocking(&self, x: i64);
}

/// The luapool side: a 2-worker [`WorkerPool`] running [`SOURCE`] with `x` as `...`.
#[derive(Clone)]
struct Luapool {
    pool: WorkerPool,
    script: Script,
}

impl Luapool {
    fn new(time_slice: bool) -> Luapool {
        let mut config = WorkerPoolConfig::default()
            .with_workers(WORKERS)
            .with_queue(QUEUE);
        if !time_slice {
            config.vm = config.vm.with_time_slice(std::time::Duration::ZERO);
        }
        let pool = WorkerPool::builder(config)
            .build()
            .expect("luapool worker pool");
        Luapool {
            pool,
            script: Script::new(NAME, SOURCE),
        }
    }

    fn job(&self, x: i64) -> Job {
        Job::exec(self.script.clone()).with_args(vec![Value::Integer(x)])
    }
}

/// Panics unless `out` is the one result `x + 1`.
fn check_values(out: luapool::Result<Vec<Value>>, x: i64) {
    match out.expect("luapool job failed").as_slice() {
        [Value::Integer(n)] if *n == x + 1 => {}
        other => panic!("job {x}: unexpected result {other:?}"),
    }
}

impl Side for Luapool {
    type Pending = luapool::JobFuture;

    fn try_start(&self, x: i64) -> Option<Self::Pending> {
        self.pool.try_submit(self.job(x)).ok()
    }

    fn check(out: luapool::Result<Vec<Value>>, x: i64) {
        check_values(out, x);
    }

    async fn submit(&self, x: i64) {
        check_values(self.pool.submit(self.job(x)).await, x);
    }

    fn submit_blocking(&self, x: i64) {
        check_values(self.pool.submit_blocking(self.job(x)), x);
    }
}

/// A job of the baseline pool: the argument and where its result goes.
struct BaselineJob {
    x: i64,
    reply: oneshot::Sender<i64>,
}

/// The hand-rolled baseline: threads owning raw mlua states, one shared MPMC queue.
/// The threads end when the last handle is dropped.
#[derive(Clone)]
struct Baseline {
    queue: crossbeam_channel::Sender<BaselineJob>,
}

impl Baseline {
    fn new(threads: usize, env_mode: EnvMode) -> Baseline {
        let (queue, jobs) = crossbeam_channel::bounded::<BaselineJob>(QUEUE);
        let (ready_tx, ready_rx) = mpsc::channel();
        for i in 0..threads {
            let (jobs, ready) = (jobs.clone(), ready_tx.clone());
            std::thread::Builder::new()
                .name(format!("baseline-{i}"))
                .spawn(move || {
                    let state = RawState::new(env_mode);
                    ready.send(()).expect("main thread waits");
                    for job in jobs {
                        // A dropped receiver (a cancelled submit) is not an error.
                        let _ = job.reply.send(state.run(job.x));
                    }
                })
                .expect("spawn a baseline thread");
        }
        for _ in 0..threads {
            ready_rx.recv().expect("baseline thread started");
        }
        Baseline { queue }
    }

    /// Queues the job for `x`, blocking while the queue is full.
    fn send(&self, x: i64) -> oneshot::Receiver<i64> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(BaselineJob { x, reply })
            .expect("baseline threads run");
        rx
    }
}

impl Side for Baseline {
    type Pending = oneshot::Receiver<i64>;

    fn try_start(&self, x: i64) -> Option<Self::Pending> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(BaselineJob { x, reply })
            .ok()
            .map(|()| rx)
    }

    fn check(out: Result<i64, oneshot::error::RecvError>, x: i64) {
        assert_eq!(out.expect("baseline thread replies"), x + 1);
    }

    fn submit(&self, x: i64) -> impl Future<Output = ()> + Send {
        // The queue holds up to 1024 jobs and shape 2 has 64 outstanding: `send` never
        // blocks the runtime's thread here.
        let rx = self.send(x);
        async move { Self::check(rx.await, x) }
    }

    fn submit_blocking(&self, x: i64) {
        Self::check(self.send(x).blocking_recv(), x);
    }
}

/// How the baseline makes a job's fresh table the chunk's `_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvMode {
    /// The chunk is compiled once as `return function(_ENV, ...) <chunk> end`; each
    /// call passes the table as the first argument: the cheapest way in Lua 5.4.
    Param,
    /// The chunk is compiled as is, and each job calls [`Function::set_environment`]
    /// (mlua 0.12 loads a cached `return _ENV` chunk with the table as its environment
    /// and joins its upvalue to the chunk's: two more calls into Lua per job).
    SetEnvironment,
}

/// A raw mlua state with the job's chunk compiled once.
struct RawState {
    lua: Lua,
    chunk: Function,
    /// `{__index = globals}`, the metatable of every job's environment.
    env_mt: Table,
    env_mode: EnvMode,
}

impl RawState {
    fn new(env_mode: EnvMode) -> RawState {
        let lua = Lua::new();
        let name = format!("={NAME}");
        let chunk = match env_mode {
            EnvMode::Param => lua
                .load(format!("return function(_ENV, ...) {SOURCE}\nend"))
                .set_name(name)
                .eval::<Function>(),
            EnvMode::SetEnvironment => lua.load(SOURCE).set_name(name).into_function(),
        }
        .expect("compile the job");
        let env_mt = lua.create_table().expect("metatable");
        env_mt
            .raw_set("__index", lua.globals())
            .expect("metatable __index");
        RawState {
            lua,
            chunk,
            env_mt,
            env_mode,
        }
    }

    /// One job: a fresh environment, one call.
    fn run(&self, x: i64) -> i64 {
        let call = || -> mlua::Result<i64> {
            let env = self.lua.create_table()?;
            env.set_metatable(Some(self.env_mt.clone()))?;
            match self.env_mode {
                EnvMode::Param => self.chunk.call((env, x)),
                EnvMode::SetEnvironment => {
                    self.chunk.set_environment(env)?;
                    self.chunk.call(x)
                }
            }
        };
        call().expect("baseline job failed")
    }
}

/// Shape 1: `jobs` jobs from one current-thread driver, 64 in flight, awaited in order.
/// Returns each job's latency in nanoseconds.
fn in_flight<S: Side>(rt: &Runtime, side: &S, jobs: usize) -> Vec<u64> {
    rt.block_on(async {
        let mut latencies = Vec::with_capacity(jobs);
        let mut pending: VecDeque<(Instant, i64, S::Pending)> = VecDeque::with_capacity(IN_FLIGHT);
        for i in 0..jobs {
            if pending.len() == IN_FLIGHT {
                let (start, x, job) = pending.pop_front().expect("a job in flight");
                S::check(job.await, x);
                latencies.push(nanos(start.elapsed()));
            }
            let x = i as i64;
            let start = Instant::now();
            let job = loop {
                match side.try_start(x) {
                    Some(job) => break job,
                    None => tokio::task::yield_now().await,
                }
            };
            pending.push_back((start, x, job));
        }
        for (start, x, job) in pending {
            S::check(job.await, x);
            latencies.push(nanos(start.elapsed()));
        }
        latencies
    })
}

/// Shape 2: 64 tasks on `rt`, each submitting `jobs / 64` jobs one after the other.
/// Returns each job's latency in nanoseconds.
fn service_tasks<S: Side>(rt: &Runtime, side: &S, jobs: usize) -> Vec<u64> {
    let per_task = jobs / TASKS;
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let side = side.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_task);
                    for i in 0..per_task {
                        let x = (t * per_task + i) as i64;
                        let start = Instant::now();
                        side.submit(x).await;
                        latencies.push(nanos(start.elapsed()));
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(per_task * TASKS);
        for task in tasks {
            latencies.extend(task.await.expect("submitting task"));
        }
        latencies
    })
}

/// Shape 3: `jobs` jobs from this (plain) thread, one at a time. Returns each job's
/// latency in nanoseconds.
fn blocking<S: Side>(side: &S, jobs: usize) -> Vec<u64> {
    (0..jobs)
        .map(|i| {
            let start = Instant::now();
            side.submit_blocking(i as i64);
            nanos(start.elapsed())
        })
        .collect()
}

/// One thread's share of a shape 4 round: runs that many jobs, returns their latencies.
type Batch = Box<dyn FnMut(usize) -> Vec<u64>>;

/// Shape 4: persistent threads, each running its own [`Batch`] loop (built on the thread,
/// as a checkout pool cannot move between threads) when told to.
struct Team {
    orders: Vec<mpsc::Sender<usize>>,
    results: mpsc::Receiver<Vec<u64>>,
}

impl Team {
    /// Starts `threads` threads, each building its loop with `make`; returns once all
    /// are built.
    fn spawn(threads: usize, make: impl Fn() -> Batch + Send + Sync + 'static) -> Team {
        let make = Arc::new(make);
        let (results_tx, results) = mpsc::channel();
        let mut orders = Vec::with_capacity(threads);
        for i in 0..threads {
            let (order_tx, order_rx) = mpsc::channel::<usize>();
            let (make, results_tx) = (Arc::clone(&make), results_tx.clone());
            std::thread::Builder::new()
                .name(format!("team-{i}"))
                .spawn(move || {
                    let mut batch = make();
                    results_tx.send(Vec::new()).expect("main thread waits");
                    while let Ok(jobs) = order_rx.recv() {
                        if results_tx.send(batch(jobs)).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawn a team thread");
            orders.push(order_tx);
        }
        for _ in 0..threads {
            results.recv().expect("team thread started");
        }
        Team { orders, results }
    }

    /// Runs `jobs` jobs split evenly over the threads; returns every job's latency.
    fn run(&self, jobs: usize) -> Vec<u64> {
        let per_thread = jobs / self.orders.len();
        for order in &self.orders {
            order.send(per_thread).expect("team thread runs");
        }
        let mut latencies = Vec::with_capacity(jobs);
        for _ in &self.orders {
            latencies.extend(self.results.recv().expect("team thread replies"));
        }
        latencies
    }
}

/// Shape 4's luapool loop: a checkout pool of one VM on this thread; per job `get`
/// (awaited on a current-thread runtime), exec, drop.
fn checkout_loop(vm: VmConfig) -> Batch {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
    let pool = CheckoutPool::new(
        CheckoutPoolConfig::default()
            .with_max_size(1)
            .with_prewarm(1)
            .with_vm(vm),
    )
    .expect("luapool checkout pool");
    let script = Script::new(NAME, SOURCE);
    Box::new(move |jobs| {
        rt.block_on(async {
            let mut latencies = Vec::with_capacity(jobs);
            for i in 0..jobs {
                let x = i as i64;
                let start = Instant::now();
                let vm = pool.get().await.expect("checkout");
                let out = vm.exec_with_args(&script, x);
                drop(vm);
                check_values(out, x);
                latencies.push(nanos(start.elapsed()));
            }
            latencies
        })
    })
}

/// Shape 4's baseline loop: a raw state on this thread, a fresh `_ENV` per call.
fn raw_loop(env_mode: EnvMode) -> Batch {
    let state = RawState::new(env_mode);
    Box::new(move |jobs| {
        (0..jobs)
            .map(|i| {
                let x = i as i64;
                let start = Instant::now();
                assert_eq!(black_box(state.run(x)), x + 1);
                nanos(start.elapsed())
            })
            .collect()
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// User + system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` through a valid pointer; zeroed is a valid
    // `rusage` even if it did not.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: initialized (zeroed, then filled in by getrusage).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// One side's figures in one round.
#[derive(Clone, Copy)]
struct Sample {
    jobs_per_s: f64,
    cpu_us_per_job: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs `run` (which returns one latency per job) and measures it.
fn measure(run: impl FnOnce() -> Vec<u64>) -> Sample {
    let (cpu, wall) = (cpu_time(), Instant::now());
    let mut latencies = run();
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    latencies.sort_unstable();
    let jobs = latencies.len();
    let pct = |p: usize| latencies[(jobs * p / 100).min(jobs - 1)] as f64 / 1e3;
    Sample {
        jobs_per_s: jobs as f64 / wall.as_secs_f64(),
        cpu_us_per_job: cpu.as_secs_f64() * 1e6 / jobs as f64,
        p50_us: pct(50),
        p99_us: pct(99),
    }
}

/// One shape's rounds on both sides.
struct Row {
    shape: &'static str,
    luapool: Vec<Sample>,
    baseline: Vec<Sample>,
}

/// Runs `rounds` rounds of both sides, luapool first in even rounds and second in odd
/// ones (luapool, baseline, baseline, luapool, ...).
fn rounds(
    shape: &'static str,
    rounds: usize,
    mut luapool: impl FnMut() -> Sample,
    mut baseline: impl FnMut() -> Sample,
) -> Row {
    let mut row = Row {
        shape,
        luapool: Vec::new(),
        baseline: Vec::new(),
    };
    for round in 0..rounds {
        for luapool_turn in [round % 2 == 0, round % 2 == 1] {
            let (side, sample) = if luapool_turn {
                ("luapool", luapool())
            } else {
                ("baseline", baseline())
            };
            eprintln!(
                "[pools] {shape} | round {} {side:<8}: {:>10.0} jobs/s, {:.3} CPU us/job, p50 {:.1} us, p99 {:.1} us",
                round + 1,
                sample.jobs_per_s,
                sample.cpu_us_per_job,
                sample.p50_us,
                sample.p99_us
            );
            if luapool_turn {
                row.luapool.push(sample);
            } else {
                row.baseline.push(sample);
            }
        }
    }
    row
}

fn median(samples: &[Sample], field: impl Fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(field).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `1234567.8` as `1,234,568`.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_table(rows: &[Row]) {
    println!(
        "| shape | luapool jobs/s | baseline jobs/s | ratio | luapool CPU µs/job | baseline CPU µs/job | CPU ratio | luapool p50/p99 µs | baseline p50/p99 µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (l, b) = (&row.luapool, &row.baseline);
        let rate = (median(l, |s| s.jobs_per_s), median(b, |s| s.jobs_per_s));
        let cpu = (
            median(l, |s| s.cpu_us_per_job),
            median(b, |s| s.cpu_us_per_job),
        );
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |",
            row.shape,
            thousands(rate.0),
            thousands(rate.1),
            rate.0 / rate.1,
            cpu.0,
            cpu.1,
            cpu.0 / cpu.1,
            median(l, |s| s.p50_us),
            median(l, |s| s.p99_us),
            median(b, |s| s.p50_us),
            median(b, |s| s.p99_us),
        );
    }
}

/// Each round's jobs/s, to show the spread behind the medians.
fn print_rounds(rows: &[Row]) {
    println!("Jobs/s per round (k = 1000), luapool | baseline:");
    println!();
    let list = |samples: &[Sample]| {
        samples
            .iter()
            .map(|s| format!("{:.0}k", s.jobs_per_s / 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for row in rows {
        println!(
            "- {}: {} | {}",
            row.shape,
            list(&row.luapool),
            list(&row.baseline)
        );
    }
}

fn print_header(settings: &Settings, load: &str) {
    let slice = if settings.time_slice {
        format!(
            "on (WorkerPool VMs: {:?}, the WorkerPoolConfig default)",
            luapool::WorkerPoolConfig::DEFAULT_TIME_SLICE
        )
    } else {
        "off (WorkerPool VMs without a time slice)".to_string()
    };
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## luapool pools vs a hand-rolled mlua pool");
    println!();
    println!(
        "- date: {} | nproc: {nproc} | loadavg: {load} | luapool commit: {}",
        command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command("git", &["rev-parse", "--short", "HEAD"]),
    );
    println!(
        "- job: `{SOURCE}` with an integer argument, fresh globals per job; {WORKERS} workers \
         each side; {} jobs per round (shape 3: {}); median of {} rounds, order alternating",
        settings.jobs,
        settings.jobs / 4,
        settings.rounds
    );
    println!(
        "- time slice: {slice}; the CheckoutPool VMs: VmConfig::default() (none; sync \
         execs are never sliced)"
    );
    println!(
        "- baseline environment: {}",
        match settings.env_mode {
            EnvMode::Param => "`function(_ENV, ...) <job> end`, the fresh table as 1st argument",
            EnvMode::SetEnvironment => "mlua `Function::set_environment` per job",
        }
    );
    println!();
}

/// The first line of a command's output (run in this crate's directory), or `?`.
fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".to_string())
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_string())
}
