//! The checkout pool: reuse, growth, exhaustion, FIFO waiting, timeouts, cancellation at
//! every await point, isolation, healing, retirement, prewarm, init, close.
//!
//! Every test runs on a paused clock; nothing sleeps to synchronise. Futures are polled
//! by hand (`poll_once`) to stop them exactly at their await points.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use luapool::{
    CheckoutPool, CheckoutPoolConfig, CheckoutPoolStatus, Error, Isolation, Script, Value, Vm,
    VmConfig, VmGuard,
};

fn script(source: &str) -> Script {
    Script::new("t.lua", source)
}

/// A pool whose VMs know their creation number (`VM_ID`, 1-based), with a counter of
/// how many VMs the init recipe built.
fn numbered(config: CheckoutPoolConfig) -> (CheckoutPool, Rc<Cell<usize>>) {
    let inits = Rc::new(Cell::new(0));
    let counter = Rc::clone(&inits);
    let pool = CheckoutPool::builder(config)
        .init(move |vm: &Vm| {
            counter.set(counter.get() + 1);
            vm.set_global("VM_ID", Value::Integer(counter.get() as i64))
        })
        .build()
        .unwrap();
    (pool, inits)
}

fn id(vm: &Vm) -> i64 {
    vm.eval(&script("return VM_ID")).unwrap()
}

/// Polls `fut` once with the test task's waker.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Asserts the pool's accounting: `size == idle + in_use`, and the given counts.
#[track_caller]
fn assert_status(pool: &CheckoutPool, size: usize, idle: usize, waiting: usize) {
    let s: CheckoutPoolStatus = pool.status();
    assert_eq!(s.size, s.idle + s.in_use, "{s:?}");
    assert_eq!((s.size, s.idle, s.waiting), (size, idle, waiting), "{s:?}");
}

fn max(n: usize) -> CheckoutPoolConfig {
    CheckoutPoolConfig::default().with_max_size(n)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn get_and_return_reuses_the_same_vm() {
    let (pool, inits) = numbered(max(4));
    for _ in 0..5 {
        let vm = pool.get().await.unwrap();
        assert_eq!(id(&vm), 1);
        assert_status(&pool, 1, 0, 0);
    }
    assert_eq!(inits.get(), 1);
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.in_use, s.created), (1, 1, 0, 1));
    let vm = pool.try_get().unwrap();
    assert_eq!((id(&vm), VmGuard::uses(&vm)), (1, 6));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn grows_lazily_up_to_max_size_then_try_get_is_busy() {
    let (pool, inits) = numbered(max(3));
    assert_status(&pool, 0, 0, 0);
    let mut held = Vec::new();
    for n in 1..=3 {
        held.push(pool.get().await.unwrap());
        assert_status(&pool, n, 0, 0);
    }
    let ids: Vec<i64> = held.iter().map(|vm| id(vm)).collect();
    assert_eq!(ids, [1, 2, 3]);
    match pool.try_get() {
        Err(Error::Busy { what }) => assert_eq!(what, "all 3 VMs are checked out"),
        other => panic!("expected Busy, got {other:?}"),
    }
    held.pop();
    assert_status(&pool, 3, 1, 0);
    assert_eq!(id(&pool.try_get().unwrap()), 3);
    assert_eq!(inits.get(), 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn waiters_are_served_in_fifo_order() {
    let (pool, _) = numbered(max(1));
    let held = pool.get().await.unwrap();
    let mut first = pin!(pool.get());
    let mut second = pin!(pool.get());
    let mut third = pin!(pool.get());
    assert!(poll_once(first.as_mut()).await.is_pending());
    assert!(poll_once(second.as_mut()).await.is_pending());
    assert!(poll_once(third.as_mut()).await.is_pending());
    assert_status(&pool, 1, 0, 3);

    drop(held);
    // Handed to the oldest waiter; the others still wait even when polled first.
    assert_status(&pool, 1, 0, 2);
    assert!(poll_once(third.as_mut()).await.is_pending());
    assert!(poll_once(second.as_mut()).await.is_pending());
    let vm = first.await.unwrap();
    assert_eq!(VmGuard::uses(&vm), 2);

    drop(vm);
    assert!(poll_once(third.as_mut()).await.is_pending());
    let vm = second.await.unwrap();
    assert_eq!(VmGuard::uses(&vm), 3);
    drop(vm);
    let vm = third.await.unwrap();
    assert_eq!(VmGuard::uses(&vm), 4);
    drop(vm);
    assert_status(&pool, 1, 1, 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn wait_timeout_fails_with_wait_timeout() {
    let pool = CheckoutPool::new(max(1).with_wait_timeout(Duration::from_millis(100))).unwrap();
    let held = pool.get().await.unwrap();
    let start = tokio::time::Instant::now();
    match pool.get().await {
        Err(Error::WaitTimeout { waited }) => assert_eq!(waited, Duration::from_millis(100)),
        other => panic!("expected WaitTimeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_status(&pool, 1, 0, 0);

    // `get_timeout` overrides the configured timeout.
    match pool.get_timeout(Duration::from_secs(3)).await {
        Err(Error::WaitTimeout { waited }) => assert_eq!(waited, Duration::from_secs(3)),
        other => panic!("expected WaitTimeout, got {other:?}"),
    }
    drop(held);
    assert_status(&pool, 1, 1, 0);
    assert!(pool.get().await.is_ok());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_vm_returned_in_time_beats_the_timeout() {
    let pool = CheckoutPool::new(max(1).with_wait_timeout(Duration::from_millis(100))).unwrap();
    let held = pool.get().await.unwrap();
    let (vm, ()) = tokio::join!(pool.get(), async move {
        tokio::time::sleep(Duration::from_millis(99)).await;
        drop(held);
    });
    assert!(vm.is_ok());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelling_a_waiting_get_leaves_the_queue() {
    let pool = CheckoutPool::new(max(1)).unwrap();
    let held = pool.get().await.unwrap();

    // Dropped after one poll, by hand.
    {
        let mut waiting = pin!(pool.get());
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        assert_status(&pool, 1, 0, 1);
    }
    assert_status(&pool, 1, 0, 0);

    // Lost a `select!`.
    tokio::select! {
        _ = pool.get() => panic!("the pool is exhausted"),
        () = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
    assert_status(&pool, 1, 0, 0);

    // Cut by an outer timeout (with and without a wait timeout of its own).
    assert!(tokio::time::timeout(Duration::from_millis(10), pool.get())
        .await
        .is_err());
    assert!(tokio::time::timeout(
        Duration::from_millis(10),
        pool.get_timeout(Duration::from_secs(1))
    )
    .await
    .is_err());
    assert_status(&pool, 1, 0, 0);

    // A cancelled waiter in the middle of the queue does not hold up the next one.
    let mut first = pin!(pool.get());
    assert!(poll_once(first.as_mut()).await.is_pending());
    {
        let mut middle = pin!(pool.get());
        assert!(poll_once(middle.as_mut()).await.is_pending());
    }
    let mut last = pin!(pool.get());
    assert!(poll_once(last.as_mut()).await.is_pending());
    assert_status(&pool, 1, 0, 2);
    drop(held);
    drop(first.await.unwrap());
    drop(last.await.unwrap());
    assert_status(&pool, 1, 1, 0);
    assert_eq!(pool.status().created, 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelling_a_get_that_was_handed_a_vm_gives_it_back() {
    let (pool, _) = numbered(max(1));
    let held = pool.get().await.unwrap();
    {
        let mut waiting = pin!(pool.get());
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        drop(held); // handed to `waiting`, which never resumes
        let s = pool.status();
        assert_eq!((s.idle, s.in_use, s.waiting), (0, 1, 0));
    }
    assert_status(&pool, 1, 1, 0);

    // And when another waiter is queued behind it, that one gets the VM.
    let held = pool.get().await.unwrap();
    let mut next = pin!(pool.get());
    {
        let mut cancelled = pin!(pool.get());
        assert!(poll_once(cancelled.as_mut()).await.is_pending());
        assert!(poll_once(next.as_mut()).await.is_pending());
        drop(held);
    }
    assert_status(&pool, 1, 0, 0);
    let vm = next.await.unwrap();
    assert_eq!(id(&vm), 1);
    drop(vm);
    assert_eq!(pool.status().created, 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelling_a_get_that_was_handed_a_free_slot_frees_it() {
    let (pool, inits) = numbered(max(1));
    let held = pool.get().await.unwrap();
    {
        let mut waiting = pin!(pool.get());
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        VmGuard::discard(held); // frees the slot: `waiting` may create a VM, but never resumes
        assert_status(&pool, 1, 0, 0);
    }
    assert_status(&pool, 0, 0, 0);
    assert_eq!(inits.get(), 1);

    // With a waiter behind, the freed slot goes to it.
    let held = pool.get().await.unwrap();
    let mut next = pin!(pool.get());
    {
        let mut cancelled = pin!(pool.get());
        assert!(poll_once(cancelled.as_mut()).await.is_pending());
        assert!(poll_once(next.as_mut()).await.is_pending());
        VmGuard::discard(held);
    }
    assert_status(&pool, 1, 0, 0);
    let vm = next.await.unwrap();
    assert_eq!(id(&vm), 3);
    drop(vm);
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.created, s.discarded), (1, 1, 3, 2));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelling_a_timed_get_that_was_handed_a_vm_or_a_slot_gives_it_back() {
    // The same await point behind a wait timeout: the configured one, and `get_timeout`.
    let (pool, inits) = numbered(max(1).with_wait_timeout(Duration::from_secs(1)));
    let held = pool.get().await.unwrap();
    {
        let mut waiting = pin!(pool.get());
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        drop(held); // handed over; `waiting` never resumes
    }
    assert_status(&pool, 1, 1, 0);
    let held = pool.get().await.unwrap();
    {
        let mut waiting = pin!(pool.get_timeout(Duration::from_secs(1)));
        assert!(poll_once(waiting.as_mut()).await.is_pending());
        VmGuard::discard(held); // a free slot this time
    }
    assert_status(&pool, 0, 0, 0);
    // The timer of the dropped waiters is gone with them: nothing fires later.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_status(&pool, 0, 0, 0);
    let vm = pool.get().await.unwrap();
    assert_eq!(id(&vm), 2);
    assert_eq!(inits.get(), 2);
}

/// A one-VM pool whose init recipe fails while the returned flag is set.
fn failing_pool(failing: bool) -> (CheckoutPool, Rc<Cell<bool>>) {
    let fail = Rc::new(Cell::new(failing));
    let f = Rc::clone(&fail);
    let pool = CheckoutPool::builder(max(1))
        .init(move |_| match f.get() {
            true => Err(Error::Config {
                message: "no".into(),
            }),
            false => Ok(()),
        })
        .build()
        .unwrap();
    (pool, fail)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_whose_new_vm_fails_to_build_frees_the_slot_for_the_next() {
    let (pool, fail) = failing_pool(false);
    let held = pool.get().await.unwrap();
    let mut first = pin!(pool.get());
    let mut second = pin!(pool.get());
    assert!(poll_once(first.as_mut()).await.is_pending());
    assert!(poll_once(second.as_mut()).await.is_pending());
    assert_status(&pool, 1, 0, 2);
    fail.set(true);
    VmGuard::discard(held); // the slot goes to `first`, whose VM cannot be built
    assert!(matches!(first.await, Err(Error::Config { .. })));
    // ... and on to `second`, which builds one once the recipe works again.
    fail.set(false);
    let vm = second.await.unwrap();
    assert_status(&pool, 1, 0, 0);
    drop(vm);
    assert_status(&pool, 1, 1, 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn per_execution_globals_do_not_leak_between_checkouts() {
    let pool = CheckoutPool::new(max(1)).unwrap();
    let vm = pool.get().await.unwrap();
    vm.exec(&script("secret = 'hunter2'")).unwrap();
    assert_eq!(vm.exec(&script("return secret")).unwrap(), [Value::Nil]);
    drop(vm);
    let vm = pool.get().await.unwrap();
    assert_eq!(vm.exec(&script("return secret")).unwrap(), [Value::Nil]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shared_globals_last_one_checkout_and_are_reset_on_return() {
    let config = max(1).with_vm(VmConfig::default().with_isolation(Isolation::Shared));
    let (pool, _) = numbered(config);
    let vm = pool.get().await.unwrap();
    vm.exec(&script("count = (count or 0) + 1")).unwrap();
    vm.exec(&script("count = (count or 0) + 1")).unwrap();
    assert_eq!(
        vm.exec(&script("return count")).unwrap(),
        [Value::Integer(2)]
    );
    drop(vm);
    let vm = pool.get().await.unwrap();
    assert_eq!(id(&vm), 1, "the same VM");
    assert_eq!(vm.exec(&script("return count")).unwrap(), [Value::Nil]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_poisoned_vm_is_discarded_and_replaced() {
    // A memory error poisons a VM whose state outlives executions (shared globals).
    let config = max(1).with_vm(
        VmConfig::default()
            .with_memory_limit(1 << 20)
            .with_isolation(Isolation::Shared),
    );
    let (pool, _) = numbered(config);
    let vm = pool.get().await.unwrap();
    let bomb = vm.exec(&script("local t = {} while true do t[#t + 1] = {} end"));
    assert!(matches!(bomb, Err(Error::MemoryLimit { .. })), "{bomb:?}");
    assert!(vm.poisoned().is_some());
    drop(vm);
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.discarded, s.retired), (0, 0, 1, 0));

    let vm = pool.get().await.unwrap();
    assert_eq!(id(&vm), 2);
    assert_eq!(vm.poisoned(), None);
    assert_eq!(vm.exec(&script("return 1")).unwrap(), [Value::Integer(1)]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_gets_a_fresh_vm_when_the_returned_one_is_discarded() {
    // A memory error poisons a VM whose state outlives executions (shared globals).
    let config = max(1).with_vm(
        VmConfig::default()
            .with_memory_limit(1 << 20)
            .with_isolation(Isolation::Shared),
    );
    let (pool, _) = numbered(config);
    let vm = pool.get().await.unwrap();
    let mut waiting = pin!(pool.get());
    assert!(poll_once(waiting.as_mut()).await.is_pending());
    let _ = vm.exec(&script("local t = {} while true do t[#t + 1] = {} end"));
    drop(vm);
    let vm = waiting.await.unwrap();
    assert_eq!(id(&vm), 2);
    assert_eq!(pool.status().discarded, 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn max_uses_retires_a_vm() {
    let (pool, _) = numbered(max(2).with_max_uses(3));
    for expected in [1, 1, 1, 2, 2, 2, 3] {
        let vm = pool.get().await.unwrap();
        assert_eq!(id(&vm), expected);
    }
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.created, s.retired), (1, 1, 3, 2));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn max_memory_retires_a_vm_that_keeps_memory_but_not_one_that_made_garbage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("big.lua"),
        "local t = {} for i = 1, 100000 do t[i] = {} end return t",
    )
    .unwrap();
    let vm_config = VmConfig::default()
        .with_isolation(Isolation::Shared)
        .with_module_path(dir.path());
    let baseline = Vm::new(vm_config.clone()).unwrap().used_memory();
    let config = max(1)
        .with_vm(vm_config)
        .with_max_memory(baseline + (2 << 20));
    let (pool, _) = numbered(config);

    // Garbage (here: shared globals, forgotten by the reset on return) does not count.
    let vm = pool.get().await.unwrap();
    vm.exec(&script("junk = {} for i = 1, 100000 do junk[i] = {} end"))
        .unwrap();
    assert!(vm.used_memory() > baseline + (2 << 20));
    drop(vm);
    assert_eq!(pool.status().retired, 0);

    // A module keeps what it allocates for the VM's life: over the limit, retired.
    let vm = pool.get().await.unwrap();
    assert_eq!(id(&vm), 1);
    vm.exec(&script("require('big')")).unwrap();
    drop(vm);
    let s = pool.status();
    assert_eq!((s.size, s.retired), (0, 1));
    assert_eq!(id(&pool.get().await.unwrap()), 2);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn prewarm_creates_vms_up_front() {
    let (pool, inits) = numbered(max(4).with_prewarm(3));
    assert_eq!(inits.get(), 3);
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.in_use, s.created), (3, 3, 0, 3));
    let vms = [
        pool.try_get().unwrap(),
        pool.try_get().unwrap(),
        pool.try_get().unwrap(),
    ];
    assert_eq!(inits.get(), 3, "prewarmed VMs are used first");
    drop(vms);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn init_recipe_runs_once_per_new_vm() {
    let (pool, inits) = numbered(max(2));
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert_eq!(inits.get(), 2);
    drop((a, b));
    for _ in 0..10 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(inits.get(), 2);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_init_recipe_fails_the_get_and_frees_the_slot() {
    let (pool, fail) = failing_pool(true);
    assert!(matches!(pool.get().await, Err(Error::Config { .. })));
    assert!(matches!(pool.try_get(), Err(Error::Config { .. })));
    assert_status(&pool, 0, 0, 0);
    fail.set(false);
    assert!(pool.get().await.is_ok());

    // Prewarm reports the recipe's error.
    let err = CheckoutPool::builder(max(1).with_prewarm(1))
        .init(|_| Err(Error::Closed))
        .build();
    assert!(matches!(err, Err(Error::Closed)));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn invalid_configurations_are_refused() {
    assert!(matches!(
        CheckoutPool::new(max(0)),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        CheckoutPool::new(max(2).with_prewarm(3)),
        Err(Error::Config { .. })
    ));
    let config: CheckoutPoolConfig = serde_json::from_str(
        r#"{ "max_size": 2, "max_uses": 10, "vm": { "isolation": "shared" } }"#,
    )
    .unwrap();
    assert_eq!(config.max_uses, Some(10));
    assert_eq!(config.vm.isolation, Isolation::Shared);
    assert!(serde_json::from_str::<CheckoutPoolConfig>(r#"{ "max": 2 }"#).is_err());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn close_waits_for_outstanding_guards_then_gets_fail() {
    let (pool, _) = numbered(max(2).with_prewarm(2));
    let held = pool.get().await.unwrap();
    let mut close = pin!(pool.close());
    assert!(poll_once(close.as_mut()).await.is_pending());
    assert!(pool.is_closed());
    assert_status(&pool, 1, 0, 0); // the idle VM is dropped at once
    assert!(matches!(pool.get().await, Err(Error::Closed)));
    assert!(matches!(pool.try_get(), Err(Error::Closed)));

    // Still usable until returned.
    assert_eq!(id(&held), 2);
    assert!(poll_once(close.as_mut()).await.is_pending());
    drop(held);
    close.await;
    assert_status(&pool, 0, 0, 0);
    assert!(matches!(pool.get().await, Err(Error::Closed)));
    pool.close().await; // again: nothing to wait for
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn close_wakes_waiters_with_closed() {
    let pool = CheckoutPool::new(max(1).with_wait_timeout(Duration::from_secs(5))).unwrap();
    let held = pool.get().await.unwrap();
    let mut waiting = pin!(pool.get());
    assert!(poll_once(waiting.as_mut()).await.is_pending());
    let mut close = pin!(pool.close());
    assert!(poll_once(close.as_mut()).await.is_pending());
    assert!(matches!(waiting.await, Err(Error::Closed)));
    drop(held);
    close.await;
    assert_status(&pool, 0, 0, 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_vm_handed_over_before_close_is_dropped_and_the_waiter_told() {
    let pool = CheckoutPool::new(max(1)).unwrap();
    let held = pool.get().await.unwrap();
    let mut waiting = pin!(pool.get());
    assert!(poll_once(waiting.as_mut()).await.is_pending());
    drop(held); // handed to `waiting`
    let mut close = pin!(pool.close());
    assert!(poll_once(close.as_mut()).await.is_pending());
    assert!(matches!(waiting.await, Err(Error::Closed)));
    close.await;
    assert_status(&pool, 0, 0, 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tasks_on_a_local_set_share_the_pool() {
    let pool = CheckoutPool::builder(max(2))
        .init(|vm| {
            vm.register_async("pause", |ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            })
        })
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let results = local
        .run_until(async {
            let tasks: Vec<_> = (0..6_i64)
                .map(|n| {
                    let pool = pool.clone();
                    tokio::task::spawn_local(async move {
                        let vm = pool.get().await?;
                        let s = Script::new("job.lua", "local n = ... pause(10) return n * 2");
                        vm.exec_with_args_async(&s, n).await
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap().unwrap());
            }
            results
        })
        .await;
    let doubled: Vec<Vec<Value>> = (0..6).map(|n| vec![Value::Integer(n * 2)]).collect();
    assert_eq!(results, doubled);
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.created, s.waiting), (2, 2, 2, 0));
}

/// The waiting machinery (queue entry, timer) is boxed on the slow path, so futures that
/// await `get` stay small.
#[test]
fn get_futures_are_small() {
    let pool = CheckoutPool::new(max(1)).unwrap();
    assert!(std::mem::size_of_val(&pool.get()) <= 64);
    assert!(std::mem::size_of_val(&pool.get_timeout(Duration::ZERO)) <= 64);
}
