//! Benchmarks of one [`Vm`]: creation, idle memory, one execution of a cached chunk per
//! isolation mode, and a Lua-to-async-Rust call.
//!
//! Run with `cargo bench -p luapool --bench vm`. Before the criterion groups, a summary
//! measured side by side in one run prints the figures the targets are about: creation
//! time, idle memory (`used_memory`), and the per-execution isolation overhead
//! (`PerExecution` minus `Shared`, same script).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use luapool::{Isolation, Script, Vm, VmConfig};

fn vm(isolation: Isolation) -> Vm {
    Vm::new(VmConfig::default().with_isolation(isolation)).unwrap()
}

/// Median time per call of `f`, over `rounds` rounds of `per_round` calls.
fn median(rounds: usize, per_round: u32, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                f();
            }
            start.elapsed() / per_round
        })
        .collect();
    samples.sort();
    samples[rounds / 2]
}

fn summary() {
    let script = Script::new("bench.lua", "return 1");
    let shared = vm(Isolation::Shared);
    let per_exec = vm(Isolation::PerExecution);
    let _: i64 = shared.eval(&script).unwrap();
    let _: i64 = per_exec.eval(&script).unwrap();
    // Interleave the two so that machine noise hits both alike.
    let (mut s, mut p) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        s.push(median(1, 20_000, || {
            black_box(shared.eval::<i64>(&script).unwrap());
        }));
        p.push(median(1, 20_000, || {
            black_box(per_exec.eval::<i64>(&script).unwrap());
        }));
    }
    s.sort();
    p.sort();
    let (s, p) = (s[7], p[7]);
    // Creation interleaved with raw `mlua::Lua::new()`, whose cost on this machine the
    // issue gives (about 40 µs), so that the ratio survives a slower or busier machine.
    let (mut c, mut r) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        c.push(median(1, 300, || {
            drop(black_box(vm(Isolation::PerExecution)))
        }));
        r.push(median(1, 300, || {
            drop(black_box(luapool::mlua::Lua::new()))
        }));
    }
    c.sort();
    r.sort();
    let (create, raw) = (c[7], r[7]);
    let idle = vm(Isolation::PerExecution).used_memory();
    let first = vm(Isolation::PerExecution);
    first.exec(&script).unwrap();
    eprintln!("== luapool vm summary (medians, side by side) ==");
    eprintln!("create + drop sandboxed VM : {create:?} (target <= 30us)");
    eprintln!(
        "raw mlua::Lua::new + drop  : {raw:?} (sandboxed VM: {:.2}x of it)",
        create.as_secs_f64() / raw.as_secs_f64()
    );
    eprintln!(
        "idle VM used_memory        : {idle} bytes = {:.1} KiB (target <= 32 KiB)",
        idle as f64 / 1024.0
    );
    eprintln!("VM after first execution   : {} bytes", first.used_memory());
    eprintln!("exec cached chunk, Shared  : {s:?}");
    eprintln!("exec cached chunk, PerExec : {p:?}");
    eprintln!(
        "isolation overhead         : {} ns (target <= 200 ns), ratio {:.2}x",
        p.as_nanos() as i128 - s.as_nanos() as i128,
        p.as_secs_f64() / s.as_secs_f64()
    );
}

fn creation(c: &mut Criterion) {
    summary();
    let mut g = c.benchmark_group("create");
    g.bench_function("sandboxed", |b| {
        b.iter_batched(
            || (),
            |_| vm(Isolation::PerExecution),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sandboxed_without_host_library", |b| {
        let config = VmConfig::default().with_host_library(false);
        b.iter_batched(
            || (),
            |_| Vm::new(config.clone()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sandboxed_then_first_exec", |b| {
        let script = Script::new("bench.lua", "return 1");
        b.iter_batched(
            || (),
            |_| {
                let vm = vm(Isolation::PerExecution);
                vm.exec(&script).unwrap();
                vm
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("raw_mlua_lua_new", |b| {
        b.iter_batched(|| (), |_| luapool::mlua::Lua::new(), BatchSize::SmallInput)
    });
    g.finish();
}

fn execution(c: &mut Criterion) {
    let script = Script::new("bench.lua", "return 1");
    let mut g = c.benchmark_group("exec_cached_chunk");
    for (name, isolation) in [
        ("shared", Isolation::Shared),
        ("per_execution", Isolation::PerExecution),
    ] {
        let vm = vm(isolation);
        g.bench_function(name, |b| {
            b.iter(|| black_box(vm.eval::<i64>(&script).unwrap()))
        });
    }
    let handler = Script::new("app.lua", "function handle(x) return x + 1 end");
    let vm = vm(Isolation::PerExecution);
    g.bench_function("per_execution_call_in", |b| {
        b.iter(|| black_box(vm.call_in::<i64>(&handler, "handle", 1).unwrap()))
    });
    g.finish();
}

fn async_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let vm = vm(Isolation::PerExecution);
    vm.register_async("ready", |x: i64| async move { Ok(x + 1) })
        .unwrap();
    vm.register("sync", |x: i64| Ok(x + 1)).unwrap();
    let one_async = Script::new("a.lua", "return ready(1)");
    let many_async = Script::new(
        "b.lua",
        "local s = 0 for i = 1, 100 do s = s + ready(i) end return s",
    );
    let many_sync = Script::new(
        "c.lua",
        "local s = 0 for i = 1, 100 do s = s + sync(i) end return s",
    );
    let mut g = c.benchmark_group("host_call");
    g.bench_function("exec_async_one_async_call", |b| {
        b.iter(|| rt.block_on(async { black_box(vm.eval_async::<i64>(&one_async).await.unwrap()) }))
    });
    g.bench_function("100_async_calls", |b| {
        b.iter(|| {
            rt.block_on(async { black_box(vm.eval_async::<i64>(&many_async).await.unwrap()) })
        })
    });
    g.bench_function("100_sync_calls", |b| {
        b.iter(|| black_box(vm.eval::<i64>(&many_sync).unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = creation, execution, async_call
}
criterion_main!(benches);
