//! Pool benchmarks. The checkout pool's part: `get` + drop of an idle VM (the hot path),
//! `try_get` + drop, what a return costs (reset per isolation mode, `used_memory`, one
//! GC step, which decides the GC policy), a return handed to a waiting `get`, and VM
//! creation for contrast.
//!
//! Run with `cargo bench -p luapool --bench pool` (add `-- --quick` for a short run).
//! Targets: `get` + drop of an idle VM ≤ 20 ns; reset on return (`PerExecution`) ≤ 200 ns.
//!
//! To add benches, write `fn name(c: &mut Criterion)` and list it in `targets` below.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use luapool::{CheckoutPool, CheckoutPoolConfig, Isolation, Script, Vm, VmConfig};

fn checkout_pool(isolation: Isolation) -> CheckoutPool {
    let config = CheckoutPoolConfig::default()
        .with_max_size(1)
        .with_prewarm(1)
        .with_vm(VmConfig::default().with_isolation(isolation));
    CheckoutPool::new(config).unwrap()
}

/// Polls the future once in place, without a runtime: an idle VM is ready on the first
/// poll.
macro_rules! poll_now {
    ($fut:expr) => {{
        let mut cx = Context::from_waker(Waker::noop());
        pin!($fut).poll(&mut cx)
    }};
}

/// `get` + drop of an idle VM, and `try_get` + drop, per isolation mode.
fn checkout_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkout_get");
    for (name, isolation) in [
        ("per_execution", Isolation::PerExecution),
        ("shared", Isolation::Shared),
    ] {
        let pool = checkout_pool(isolation);
        group.bench_function(format!("get_drop_idle/{name}"), |b| {
            b.iter(|| match poll_now!(pool.get()) {
                Poll::Ready(vm) => drop(black_box(vm.unwrap())),
                Poll::Pending => unreachable!("an idle VM is ready at once"),
            })
        });
        group.bench_function(format!("try_get_drop/{name}"), |b| {
            b.iter(|| drop(black_box(pool.try_get().unwrap())))
        });
    }
    // The same through a current-thread runtime's `block_on`, as an application sees it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let pool = checkout_pool(Isolation::PerExecution);
    group.bench_function("get_drop_idle/block_on", |b| {
        b.iter(|| drop(black_box(rt.block_on(pool.get()).unwrap())))
    });
    group.finish();
}

/// What a return may do: reset per isolation mode, read the memory, run one GC step.
fn checkout_return_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkout_return");
    let per_exec = Vm::new(VmConfig::default()).unwrap();
    group.bench_function("reset/per_execution", |b| {
        b.iter(|| black_box(&per_exec).reset().unwrap())
    });
    let shared = Vm::new(VmConfig::default().with_isolation(Isolation::Shared)).unwrap();
    group.bench_function("reset/shared", |b| {
        b.iter(|| black_box(&shared).reset().unwrap())
    });
    let set = Script::new("set.lua", "x = 1");
    group.bench_function("reset/shared_after_a_global", |b| {
        b.iter_batched(
            || shared.exec(&set).unwrap(),
            |_| shared.reset().unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("used_memory", |b| {
        b.iter(|| black_box(black_box(&per_exec).used_memory()))
    });
    group.bench_function("gc_step/idle_vm", |b| {
        b.iter(|| black_box(black_box(&per_exec).gc_step().unwrap()))
    });
    let run = Script::new(
        "run.lua",
        "local t = {} for i = 1, 10 do t[i] = {i} end return #t",
    );
    group.bench_function("gc_step/after_a_small_script", |b| {
        b.iter_batched(
            || per_exec.exec(&run).unwrap(),
            |_| per_exec.gc_step().unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A return handed to a waiting `get` (oneshot hand-off), and VM creation.
fn checkout_handoff_and_create(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkout_slow_paths");
    let pool = checkout_pool(Isolation::PerExecution);
    group.bench_function("return_to_waiter", |b| {
        let mut cx = Context::from_waker(Waker::noop());
        b.iter(|| {
            let held = pool.try_get().unwrap();
            let mut waiting = pin!(pool.get());
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            drop(held);
            match waiting.as_mut().poll(&mut cx) {
                Poll::Ready(vm) => drop(black_box(vm.unwrap())),
                Poll::Pending => unreachable!("the VM was handed over"),
            }
        })
    });
    let pool = CheckoutPool::new(CheckoutPoolConfig::default().with_max_size(1)).unwrap();
    group.sample_size(20);
    group.bench_function("create_and_retire", |b| {
        b.iter(|| luapool::VmGuard::discard(pool.try_get().unwrap()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = checkout_get, checkout_return_parts, checkout_handoff_and_create
}
criterion_main!(benches);
