//! The worker pool: jobs, isolation, concurrency, exhaustion, healing, reload, shutdown.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use luapool::{
    Error, HostError, Isolation, Job, Script, Value, VmConfig, WorkerPool, WorkerPoolConfig,
};
use tokio::sync::Notify;

fn script(source: &str) -> Script {
    Script::new("job.lua", source)
}

/// A pool whose VMs have `wait_gate()`, an async host function that returns when the
/// test opens the gate.
fn gated_pool(config: WorkerPoolConfig) -> (WorkerPool, Arc<Notify>) {
    let gate = Arc::new(Notify::new());
    let g = Arc::clone(&gate);
    let pool = WorkerPool::builder(config)
        .init(move |vm| {
            let g = Arc::clone(&g);
            vm.register_async("wait_gate", move |()| {
                let g = Arc::clone(&g);
                async move {
                    g.notified().await;
                    Ok(())
                }
            })
        })
        .build()
        .unwrap();
    (pool, gate)
}

fn one_worker() -> WorkerPoolConfig {
    WorkerPoolConfig::default().with_workers(1)
}

#[tokio::test]
async fn runs_exec_call_and_call_in_jobs() {
    let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2))
        .init(|vm| vm.register("add", |(a, b): (i64, i64)| Ok(a + b)))
        .build()
        .unwrap();
    assert_eq!(
        pool.exec(script("return add(1, 2)")).await.unwrap(),
        vec![Value::Integer(3)]
    );
    assert_eq!(
        pool.call("add", vec![Value::Integer(2), Value::Integer(5)])
            .await
            .unwrap(),
        vec![Value::Integer(7)]
    );
    let app = script("function handle(x) return x .. '!' end");
    let out = pool
        .submit(Job::call_in(app, "handle", vec![Value::from("hi")]))
        .await
        .unwrap();
    assert_eq!(out, vec![Value::from("hi!")]);
    let err = pool.exec(script("error('boom')")).await.unwrap_err();
    assert!(
        matches!(err, Error::Runtime { ref message, .. } if message.contains("job.lua:1: boom")),
        "{err:?}"
    );
    let status = pool.status();
    assert_eq!((status.completed, status.failed, status.workers), (3, 1, 2));
    assert_eq!(status.run.count(), 4);
}

#[test]
fn blocking_api_outside_a_runtime() {
    let pool = WorkerPool::builder(one_worker()).build().unwrap();
    let out = pool
        .submit_blocking(Job::exec(script("return 'ok'")))
        .unwrap();
    assert_eq!(out, vec![Value::from("ok")]);
    let summary = pool.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(summary.completed, 1);
    assert!(matches!(
        pool.submit_blocking(Job::exec(script("return 1"))),
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn blocking_api_inside_a_runtime_is_an_error_not_a_deadlock() {
    let pool = WorkerPool::builder(one_worker()).build().unwrap();
    let err = pool
        .submit_blocking(Job::exec(script("return 1")))
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn globals_do_not_leak_between_jobs() {
    let pool = WorkerPool::builder(one_worker()).build().unwrap();
    pool.exec(script("secret = 42")).await.unwrap();
    assert_eq!(
        pool.exec(script("return secret")).await.unwrap(),
        vec![Value::Nil]
    );
}

#[tokio::test]
async fn interleaved_jobs_on_one_worker_keep_their_own_globals() {
    let (pool, gate) = gated_pool(one_worker());
    let a = pool
        .try_submit(Job::exec(script("name = 'a' wait_gate() return name")))
        .unwrap();
    let b = pool
        .try_submit(Job::exec(script("name = 'b' wait_gate() return name")))
        .unwrap();
    // Both are in flight at once on the single worker.
    while pool.status().in_flight < 2 {
        tokio::task::yield_now().await;
    }
    // `in_flight` may count a job that has not reached the gate yet: open the gate until
    // both have passed it.
    let both = async { (a.await.unwrap(), b.await.unwrap()) };
    tokio::pin!(both);
    let (ra, rb) = loop {
        gate.notify_waiters();
        tokio::select! {
            r = &mut both => break r,
            () = tokio::task::yield_now() => {}
        }
    };
    assert_eq!(ra, vec![Value::from("a")]);
    assert_eq!(rb, vec![Value::from("b")]);
}

#[tokio::test]
async fn an_awaiting_job_does_not_hold_up_the_worker() {
    let (pool, gate) = gated_pool(one_worker());
    let slow = pool
        .try_submit(Job::exec(script("wait_gate() return 'slow'")))
        .unwrap();
    // The only worker is awaiting the gate, yet a later job completes first.
    assert_eq!(
        pool.exec(script("return 'fast'")).await.unwrap(),
        vec![Value::from("fast")]
    );
    gate.notify_one();
    assert_eq!(slow.await.unwrap(), vec![Value::from("slow")]);
}

#[tokio::test]
async fn a_slow_job_does_not_hold_up_jobs_queued_behind_it() {
    // Concurrency 1: each worker runs one job at a time. The first worker is held by a
    // gated job; the jobs behind it go to the other worker.
    let (pool, gate) = gated_pool(
        WorkerPoolConfig::default()
            .with_workers(2)
            .with_concurrency(1),
    );
    let slow = pool
        .try_submit(Job::exec(script("wait_gate() return 0")))
        .unwrap();
    while pool.status().in_flight < 1 {
        tokio::task::yield_now().await;
    }
    for i in 0..20 {
        let out = pool.exec(script(&format!("return {i}"))).await.unwrap();
        assert_eq!(out, vec![Value::Integer(i)]);
    }
    gate.notify_one();
    slow.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn full_queue_is_busy_and_submit_waits_with_a_timeout() {
    let (pool, gate) = gated_pool(one_worker().with_concurrency(1).with_queue(1));
    let running = pool.try_submit(Job::exec(script("wait_gate()"))).unwrap();
    while pool.status().in_flight < 1 {
        tokio::task::yield_now().await;
    }
    let queued = pool
        .try_submit(Job::exec(script("return 'queued'")))
        .unwrap();
    let busy = pool.try_submit(Job::exec(script("return 1"))).unwrap_err();
    assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
    let waited = pool
        .submit_timeout(Job::exec(script("return 1")), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(waited, Error::WaitTimeout { waited } if waited == Duration::from_millis(200))
    );
    assert_eq!(pool.status().rejected, 2);
    gate.notify_one();
    running.await.unwrap();
    assert_eq!(queued.await.unwrap(), vec![Value::from("queued")]);
}

#[tokio::test]
async fn poisoned_vm_is_rebuilt_from_the_recipe() {
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&inits);
    // A memory error poisons a VM whose state outlives executions (shared globals).
    let vm = VmConfig::default()
        .with_memory_limit(1 << 20)
        .with_isolation(luapool::Isolation::Shared);
    let pool = WorkerPool::builder(one_worker().with_vm(vm))
        .init(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .build()
        .unwrap();
    let err = pool
        .exec(script("local t = {} while true do t[#t + 1] = {} end"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemoryLimit { .. }), "{err:?}");
    assert_eq!(
        pool.exec(script("return 'fine'")).await.unwrap(),
        vec![Value::from("fine")]
    );
    assert_eq!(inits.load(Ordering::SeqCst), 2);
    assert_eq!(pool.status().rebuilt, 1);
}

#[tokio::test]
async fn panicking_host_function_fails_its_job_and_the_vm_is_rebuilt() {
    let pool = WorkerPool::builder(one_worker())
        .init(|vm| {
            vm.register("explode", |()| -> Result<(), HostError> {
                panic!("host bug")
            })
        })
        .build()
        .unwrap();
    let err = pool.exec(script("explode()")).await.unwrap_err();
    assert!(
        matches!(err, Error::Runtime { ref message, .. } if message.contains("host bug")),
        "{err:?}"
    );
    assert_eq!(
        pool.exec(script("return 2")).await.unwrap(),
        vec![Value::Integer(2)]
    );
    assert_eq!(pool.status().rebuilt, 1);
}

#[tokio::test]
async fn dead_worker_thread_is_respawned() {
    // The recipe panics once, while rebuilding a poisoned VM: that kills the worker
    // thread. The supervisor starts a new one.
    let rebuilds = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&rebuilds);
    // No time slice: printing the host panic (with a backtrace) can outlast one, and a
    // sliced job finishes in a task of its own, where tokio would catch the panic.
    let config = one_worker();
    let vm = config.vm.clone().with_time_slice(Duration::ZERO);
    let pool = WorkerPool::builder(config.with_vm(vm))
        .init(move |vm| {
            if r.fetch_add(1, Ordering::SeqCst) == 1 {
                panic!("recipe failed");
            }
            vm.register("explode", |()| -> Result<(), HostError> {
                panic!("host bug")
            })
        })
        .build()
        .unwrap();
    assert!(pool.exec(script("explode()")).await.is_err());
    // The next job is served by the respawned worker.
    assert_eq!(
        pool.exec(script("return 'back'")).await.unwrap(),
        vec![Value::from("back")]
    );
    assert_eq!(pool.status().respawned, 1);
    assert_eq!(pool.status().workers, 1);
}

#[tokio::test]
async fn stuck_worker_is_replaced_and_other_jobs_go_on() {
    let finished = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&finished);
    let pool = WorkerPool::builder(one_worker().with_stuck_after(Duration::from_millis(50)))
        .init(move |vm| {
            let f = Arc::clone(&f);
            // Stands for a long call into C that no hook can interrupt.
            vm.register("block", move |()| {
                std::thread::sleep(Duration::from_millis(1500));
                f.store(true, Ordering::SeqCst);
                Ok(())
            })
        })
        .build()
        .unwrap();
    let stuck = pool
        .try_submit(Job::exec(script("block() return 'late'")))
        .unwrap();
    while pool.status().in_flight < 1 {
        tokio::task::yield_now().await;
    }
    let out = pool.exec(script("return 'served'")).await.unwrap();
    assert_eq!(out, vec![Value::from("served")]);
    assert!(
        !finished.load(Ordering::SeqCst),
        "served only after the stuck call returned"
    );
    assert_eq!(pool.status().replaced, 1);
    // The stuck job is not lost: it completes when its call returns.
    assert_eq!(stuck.await.unwrap(), vec![Value::from("late")]);
}

#[tokio::test]
async fn broadcast_runs_on_every_worker_in_shared_mode() {
    let pool = WorkerPool::builder(
        WorkerPoolConfig::default()
            .with_workers(3)
            .with_vm(VmConfig::default().with_isolation(Isolation::Shared)),
    )
    .build()
    .unwrap();
    let bump = Job::exec(script("hits = (hits or 0) + 1 return hits"));
    let first = pool.broadcast(bump.clone()).await.unwrap();
    assert_eq!(first.len(), 3);
    let second = pool.broadcast(bump).await.unwrap();
    for result in second {
        assert_eq!(result.unwrap(), vec![Value::Integer(2)]);
    }
}

#[tokio::test]
async fn reload_switches_the_recipe() {
    let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2))
        .init(|vm| vm.set_global("VERSION", Value::Integer(1)))
        .build()
        .unwrap();
    assert_eq!(
        pool.exec(script("return VERSION")).await.unwrap(),
        vec![Value::Integer(1)]
    );
    pool.reload(|vm| vm.set_global("VERSION", Value::Integer(2)))
        .unwrap();
    for _ in 0..10 {
        assert_eq!(
            pool.exec(script("return VERSION")).await.unwrap(),
            vec![Value::Integer(2)]
        );
    }
    let bad = pool.reload(|_| {
        Err(Error::Config {
            message: "nope".into(),
        })
    });
    assert!(bad.is_err());
    assert_eq!(
        pool.exec(script("return VERSION")).await.unwrap(),
        vec![Value::Integer(2)]
    );
}

#[tokio::test]
async fn shutdown_drains_queued_and_running_jobs() {
    let pool = WorkerPool::builder(one_worker().with_concurrency(2))
        .build()
        .unwrap();
    let jobs: Vec<_> = (0..10)
        .map(|i| {
            pool.try_submit(Job::exec(script(&format!("sleep(0.001) return {i}"))))
                .unwrap()
        })
        .collect();
    let summary = pool.shutdown(Duration::from_secs(10)).await;
    assert_eq!(summary.completed, 10);
    assert_eq!((summary.dropped, summary.stragglers), (0, 0));
    for (i, job) in jobs.into_iter().enumerate() {
        assert_eq!(job.await.unwrap(), vec![Value::Integer(i as i64)]);
    }
    assert!(matches!(
        pool.exec(script("return 1")).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn a_recipe_that_fails_fails_the_build() {
    let err = WorkerPool::builder(one_worker())
        .init(|vm| {
            vm.exec(&Script::new("init.lua", "error('bad init')"))
                .map(|_| ())
        })
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Runtime { ref message, .. } if message.contains("bad init")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_job_sliced_right_after_its_first_host_poll_still_gets_its_wake_up() {
    // The host future's first poll outlasts the time slice, so the slice yields the job
    // inside mlua's async wrapper, between that poll and the job's first await, during
    // the worker's inline first poll: the future holds the waker of the worker loop, not
    // of the job's own task. Regression test: such a job stayed in flight forever.
    let config =
        one_worker().with_vm(VmConfig::default().with_time_slice(Duration::from_millis(2)));
    let pool = WorkerPool::builder(config)
        .init(|vm| {
            vm.register_async("slow_then_wait", |()| async {
                std::thread::sleep(Duration::from_millis(5)); // blocks past the slice
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(1)
            })
        })
        .build()
        .unwrap();
    for _ in 0..3 {
        let job = pool.exec(script("return slow_then_wait()"));
        let result = tokio::time::timeout(Duration::from_secs(5), job).await;
        assert_eq!(
            result.expect("the job was lost").unwrap(),
            vec![Value::Integer(1)]
        );
    }
}

#[derive(serde::Serialize)]
struct Order {
    total: f64,
    country: &'static str,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Verdict {
    allow: bool,
    fee: f64,
}

#[tokio::test]
async fn jobs_take_and_return_serde_types() {
    let pool = WorkerPool::builder(one_worker()).build().unwrap();
    let rules =
        script("function decide(o, cap) return { allow = o.total <= cap, fee = o.total / 10 } end");
    let order = Order {
        total: 50.0,
        country: "FR",
    };
    let verdict: Verdict = pool
        .eval(Job::call_in(rules.clone(), "decide", (order, 100)))
        .await
        .unwrap();
    assert_eq!(
        verdict,
        Verdict {
            allow: true,
            fee: 5.0
        }
    );
    // Several results are a tuple; none is `()`.
    let pair: (i64, String) = pool
        .eval(Job::exec(script("return 1, 'two'")))
        .await
        .unwrap();
    assert_eq!(pair, (1, "two".to_string()));
    pool.eval::<()>(Job::exec(script("return"))).await.unwrap();
    // Arguments that cannot be serialized fail the submit, before any worker runs them.
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), "tuple keys have no JSON form");
    let err = pool
        .submit(Job::call_in(rules, "decide", (bad,)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conversion { .. }), "{err:?}");
    // A structured error keeps its fields.
    let err = pool
        .submit(Job::exec(script("error({ code = 42 })")))
        .await
        .unwrap_err();
    assert_eq!(
        err.value().and_then(|v| v.get("code")),
        Some(&Value::Integer(42))
    );
}

#[tokio::test]
async fn a_job_carries_its_own_limits_and_context() {
    let pool = WorkerPool::builder(one_worker())
        .init(|vm| {
            vm.register("tenant", |()| {
                Ok(luapool::Context::get::<String>().map(|t| (*t).clone()))
            })
        })
        .build()
        .unwrap();
    let err = pool
        .submit(Job::exec(script("while true do end")).with_cpu_limit(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CpuLimit { limit } if limit == Duration::from_millis(20)),
        "{err:?}"
    );
    let err = pool
        .submit(Job::exec(script("while true do end")).with_instruction_limit(50_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InstructionLimit { budget: 50_000 }),
        "{err:?}"
    );
    let who: Option<String> = pool
        .eval(Job::call("tenant", ()).with_context("acme".to_string()))
        .await
        .unwrap();
    assert_eq!(who.as_deref(), Some("acme"));
    let who: Option<String> = pool.eval(Job::call("tenant", ())).await.unwrap();
    assert_eq!(who, None);
}

#[tokio::test]
async fn dropping_a_queued_job_means_it_never_runs() {
    let ran = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Notify::new());
    let (r, g) = (Arc::clone(&ran), Arc::clone(&gate));
    let pool = WorkerPool::builder(one_worker().with_concurrency(1))
        .init(move |vm| {
            let g = Arc::clone(&g);
            vm.register_async("wait_gate", move |()| {
                let g = Arc::clone(&g);
                async move {
                    g.notified().await;
                    Ok(())
                }
            })?;
            let r = Arc::clone(&r);
            vm.register("mark", move |()| {
                r.store(true, Ordering::SeqCst);
                Ok(())
            })
        })
        .build()
        .unwrap();
    let first = pool.try_submit(Job::exec(script("wait_gate()"))).unwrap();
    let queued = pool.try_submit(Job::exec(script("mark()"))).unwrap();
    drop(queued);
    gate.notify_one();
    first.await.unwrap();
    // The queue is FIFO on one worker: once this runs, the dropped job had its turn.
    pool.exec(script("return 1")).await.unwrap();
    assert!(!ran.load(Ordering::SeqCst), "a dropped job ran");
}

#[tokio::test]
async fn dropping_a_running_job_stops_its_script() {
    if cfg!(feature = "luajit") {
        // LuaJIT cannot slice executions: a CPU-bound job that never awaits is dropped
        // only when a limit stops it (see `WorkerPool::submit`).
        return;
    }
    let started = Arc::new(Notify::new());
    let s = Arc::clone(&started);
    let pool = WorkerPool::builder(one_worker().with_concurrency(1))
        .init(move |vm| {
            let s = Arc::clone(&s);
            vm.register("started", move |()| {
                s.notify_one();
                Ok(())
            })
        })
        .build()
        .unwrap();
    let spinning = pool
        .try_submit(Job::exec(script("started() while true do end")))
        .unwrap();
    started.notified().await;
    drop(spinning);
    // With one slot, this runs only once the spinning job has been stopped.
    assert_eq!(
        pool.exec(script("return 7")).await.unwrap(),
        vec![Value::Integer(7)]
    );
    assert_eq!(pool.status().cancelled, 1);
}

#[tokio::test]
async fn a_vm_config_without_a_time_slice_keeps_the_pool_default() {
    // A spinning job on a one-slot worker... with two slots: the second job runs beside
    // it only if the first yields its time slice.
    let config = one_worker()
        .with_concurrency(2)
        .with_vm(VmConfig::default().with_cpu_limit(Duration::from_secs(30)));
    let pool = WorkerPool::builder(config)
        .init(|vm| {
            vm.register_async("pause", |()| async {
                tokio::task::yield_now().await;
                Ok(())
            })
        })
        .build()
        .unwrap();
    let spinning = pool
        .try_submit(Job::exec(script("pause() while true do end")))
        .unwrap();
    assert_eq!(
        pool.exec(script("return 'beside'")).await.unwrap(),
        vec![Value::from("beside")]
    );
    drop(spinning);
}

#[tokio::test]
async fn a_module_is_built_once_and_registered_on_every_worker() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let counter = luapool::Module::new("counter").function("bump", move |()| {
        Ok(c.fetch_add(1, Ordering::SeqCst) as i64 + 1)
    });
    fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
    assert_send_sync(&counter);
    let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2))
        .module(counter)
        .build()
        .unwrap();
    let results = pool
        .broadcast(Job::exec(script("return require('counter').bump()")))
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
