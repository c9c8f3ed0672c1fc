//! A `WorkerPool`: a thread per VM, used from any thread or task.
//! Jobs awaiting an async host function share their worker; a full queue is an error.
//!
//! Run with `cargo run -p luapool --example worker_pool`.

use std::time::{Duration, Instant};

use luapool::{Error, Job, Script, Value, Vm, WorkerPool, WorkerPoolConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = WorkerPoolConfig::default()
        .with_workers(2) // two threads, each with its own runtime and VM
        .with_concurrency(500) // jobs one worker interleaves at their awaits
        .with_queue(1_000); // more waiting jobs than this: `Busy`

    // The init recipe runs in each worker (and again whenever its VM is rebuilt).
    let pool = WorkerPool::builder(config)
        .init(|vm: &Vm| {
            vm.register_async("fetch", |key: String| async move {
                tokio::time::sleep(Duration::from_millis(50)).await; // stands in for I/O
                Ok(format!("<{key}>"))
            })?;
            vm.register("double", |n: i64| Ok(n * 2))
        })
        .build()?;

    // Call a host function the recipe registered, from an async task.
    let result = pool.call("double", vec![Value::Integer(21)]).await?;
    println!("double(21) = {result:?}");

    // 1000 jobs that each wait 50 ms: they interleave, so this takes ~0.1 s, not 50 s.
    let job = Job::exec(Script::new("job.lua", "return fetch('k')"));
    let start = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (pool, job) = (pool.clone(), job.clone());
            tokio::spawn(async move { pool.submit(job).await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    println!("1000 jobs sleeping 50 ms each: {:?}", start.elapsed());

    // A plain thread uses the blocking API; the handle is `Send + Sync + Clone`.
    let handle = pool.clone();
    let from_thread = std::thread::spawn(move || {
        handle.submit_blocking(Job::exec(Script::new("t.lua", "return 'from a thread'")))
    })
    .join()
    .map_err(|_| "thread panicked")??;
    println!("{from_thread:?}");

    // `try_submit` never waits: with the queue full it fails with `Busy`.
    let mut queued = Vec::new();
    let refused = loop {
        match pool.try_submit(job.clone()) {
            Ok(future) => queued.push(future),
            Err(err @ Error::Busy { .. }) => break err,
            Err(other) => return Err(other.into()),
        }
    };
    println!("after {} queued: {refused}", queued.len());

    let s = pool.status();
    println!("status: {} in flight, {} queued", s.in_flight, s.queued);
    let summary = pool.shutdown(Duration::from_secs(5)).await; // queued jobs finish first
    println!(
        "shutdown: {} done, {} dropped",
        summary.completed, summary.dropped
    );
    Ok(())
}
