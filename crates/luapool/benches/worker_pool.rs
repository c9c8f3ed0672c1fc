//! Worker pool benchmarks: round trip, throughput, many sleeping jobs, fairness.
//!
//! Run with `cargo bench -p luapool --bench worker_pool`. Prints a summary measured in
//! one run (the figures the targets are about), then the criterion groups.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::StreamExt;
use luapool::{Job, Script, VmConfig, WorkerPool, WorkerPoolConfig};

const TRIVIAL: &str = "return 1";
const LOOP: &str = "local s = 0 for i = 1, 100 do s = s + i end return s";

fn pool(workers: usize) -> WorkerPool {
    pool_with(workers, WorkerPoolConfig::default().vm)
}

fn pool_with(workers: usize, vm: VmConfig) -> WorkerPool {
    WorkerPool::builder(
        WorkerPoolConfig::default()
            .with_workers(workers)
            .with_queue(16_384)
            .with_vm(vm),
    )
    .build()
    .unwrap()
}

/// Jobs per second with `in_flight` jobs outstanding at all times, over `total` jobs.
fn throughput(
    rt: &tokio::runtime::Runtime,
    pool: &WorkerPool,
    source: &str,
    in_flight: usize,
    total: usize,
) -> f64 {
    let script = Script::new("job.lua", source);
    rt.block_on(async {
        let start = Instant::now();
        let mut pending = std::collections::VecDeque::with_capacity(in_flight);
        for _ in 0..total {
            if pending.len() == in_flight {
                let f: luapool::JobFuture = pending.pop_front().unwrap();
                black_box(f.await.unwrap());
            }
            loop {
                match pool.try_submit(Job::exec(script.clone())) {
                    Ok(f) => {
                        pending.push_back(f);
                        break;
                    }
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        }
        for f in pending {
            black_box(f.await.unwrap());
        }
        total as f64 / start.elapsed().as_secs_f64()
    })
}

/// Submits 2,000 jobs at a steady 1,000 per second (well within what two workers
/// serve), 1 in 100 of them spinning 50 ms in Lua, through `submit(i, job)`; returns the
/// median and p99 time from submit to result of the trivial ones (their wait: a trivial
/// job runs in microseconds).
fn fairness(
    rt: &tokio::runtime::Runtime,
    submit: impl Fn(usize, Job) -> luapool::Result<luapool::JobFuture>,
) -> (Duration, Duration) {
    const JOBS: usize = 2_000;
    let heavy = Script::new(
        "heavy.lua",
        "local t = os.clock() while os.clock() - t < 0.05 do end return 1",
    );
    let trivial = Script::new("job.lua", TRIVIAL);
    let mut waits = rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut waits = Vec::new();
        let mut i = 0;
        while i < JOBS || !running.is_empty() {
            tokio::select! {
                _ = tick.tick(), if i < JOBS => {
                    let is_heavy = i % 100 == 50;
                    let script = if is_heavy { &heavy } else { &trivial };
                    let start = Instant::now();
                    let job = submit(i, Job::exec(script.clone())).unwrap();
                    running.push(async move {
                        job.await.unwrap();
                        (is_heavy, start.elapsed())
                    });
                    i += 1;
                }
                Some((is_heavy, wait)) = running.next(), if !running.is_empty() => {
                    waits.extend((!is_heavy).then_some(wait));
                }
            }
        }
        waits
    });
    waits.sort();
    (waits[waits.len() / 2], waits[waits.len() * 99 / 100])
}

fn summary() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let two = pool(2);
    let script = Script::new("job.lua", TRIVIAL);
    // Round trip, one in flight, blocking caller.
    for _ in 0..2000 {
        two.submit_blocking(Job::exec(script.clone())).unwrap();
    }
    let mut rts: Vec<Duration> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            black_box(two.submit_blocking(Job::exec(script.clone())).unwrap());
            t.elapsed()
        })
        .collect();
    rts.sort();
    let trivial = throughput(&rt, &two, TRIVIAL, 64, 200_000);
    let looped = throughput(&rt, &two, LOOP, 64, 200_000);
    eprintln!("== luapool worker pool summary (2 workers) ==");
    eprintln!(
        "round trip, 1 in flight (blocking caller): median {:?}, p99 {:?} (target median <= 3us)",
        rts[rts.len() / 2],
        rts[rts.len() * 99 / 100]
    );
    eprintln!(
        "throughput, 64 in flight, `return 1`     : {:.2} M jobs/s (target >= 1.5 M/s)",
        trivial / 1e6
    );
    eprintln!(
        "throughput, 64 in flight, 100-iter loop  : {:.2} M jobs/s (target >= 1 M/s)",
        looped / 1e6
    );

    // 10,000 jobs that each sleep 1 s, submitted at once to 2 workers.
    let sleepy = WorkerPool::builder(
        WorkerPoolConfig::default()
            .with_workers(2)
            .with_concurrency(5_000)
            .with_queue(10_000),
    )
    .build()
    .unwrap();
    let nap = Script::new("nap.lua", "sleep(1) return 1");
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        let futures: Vec<_> = (0..10_000)
            .map(|_| sleepy.try_submit(Job::exec(nap.clone())).unwrap())
            .collect();
        for f in futures {
            f.await.unwrap();
        }
        start.elapsed()
    });
    eprintln!(
        "10,000 jobs sleeping 1 s on 2 workers    : all done in {elapsed:?} (target <= 1.5 s)"
    );
    rt.block_on(sleepy.shutdown(Duration::from_secs(5)));

    // Fairness: 1 in 100 jobs runs ~50 ms of Lua, the rest are trivial. The same load
    // through the shared queue, and dealt round-robin to two one-worker pools (each
    // worker with its own queue); without time slices (the dispatch
    // alone) and with the default slice (which also lets trivial jobs past a long one
    // on its worker).
    eprintln!("fairness, 1% of jobs run 50 ms, trivial jobs' wait (submit to result):");
    for (label, vm) in [
        ("time slice off", VmConfig::default()),
        ("default time slice", WorkerPoolConfig::default().vm),
    ] {
        let shared = pool_with(2, vm.clone());
        let rr = [pool_with(1, vm.clone()), pool_with(1, vm)];
        let (shared_p50, shared_p99) = fairness(&rt, |_, job| shared.try_submit(job));
        let (rr_p50, rr_p99) = fairness(&rt, |i, job| rr[i % 2].try_submit(job));
        eprintln!("  {label:<18} shared queue : p50 {shared_p50:?}, p99 {shared_p99:?}");
        eprintln!("  {label:<18} round-robin  : p50 {rr_p50:?}, p99 {rr_p99:?}");
        for p in rr.into_iter().chain([shared]) {
            rt.block_on(p.shutdown(Duration::from_secs(5)));
        }
    }
    rt.block_on(two.shutdown(Duration::from_secs(5)));
}

fn benches(c: &mut Criterion) {
    summary();
    let pool = pool(2);
    let script = Script::new("job.lua", TRIVIAL);
    let mut g = c.benchmark_group("worker_pool");
    g.bench_function("round_trip_blocking", |b| {
        b.iter(|| black_box(pool.submit_blocking(Job::exec(script.clone())).unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
