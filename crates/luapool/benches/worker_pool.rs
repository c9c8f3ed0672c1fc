//! Worker pool benchmarks: round trip, throughput, many sleeping jobs, fairness.
//!
//! Run with `cargo bench -p luapool --bench worker_pool`. Prints a summary measured in
//! one run (the figures the targets are about), then the criterion groups.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use luapool::{Job, Script, WorkerPool, WorkerPoolConfig};

const TRIVIAL: &str = "return 1";
const LOOP: &str = "local s = 0 for i = 1, 100 do s = s + i end return s";

fn pool(workers: usize) -> WorkerPool {
    WorkerPool::builder(
        WorkerPoolConfig::default()
            .with_workers(workers)
            .with_queue(16_384),
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

    // Fairness: 1 in 100 jobs runs ~50 ms of Lua, the rest are trivial.
    let heavy = Script::new(
        "heavy.lua",
        "local t = os.clock() while os.clock() - t < 0.05 do end return 1",
    );
    let before = two.status().wait;
    rt.block_on(async {
        let mut futures = Vec::new();
        for i in 0..2_000 {
            let job = if i % 100 == 0 {
                Job::exec(heavy.clone())
            } else {
                Job::exec(script.clone())
            };
            futures.push(two.submit(job));
            if futures.len() == 64 {
                for f in futures.drain(..) {
                    f.await.unwrap();
                }
            }
        }
        for f in futures {
            f.await.unwrap();
        }
    });
    let after = two.status().wait;
    let delta = luapool::HistogramSnapshot {
        counts: after
            .counts
            .iter()
            .zip(&before.counts)
            .map(|(a, b)| a - b)
            .collect(),
        sum: after.sum.saturating_sub(before.sum),
    };
    eprintln!(
        "fairness, 1% of jobs run 50 ms: wait p50 <= {:?}, p99 <= {:?} (shared queue; round-robin would queue trivial jobs behind each heavy one for up to 50 ms)",
        delta.quantile(0.5).unwrap_or_default(),
        delta.quantile(0.99).unwrap_or_default()
    );
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
