//! What limits cost a script that stays within them.
//!
//! Run with `cargo bench -p luapool --bench limits`. First prints a side-by-side summary
//! (medians of interleaved rounds, ratio to the same script with no limit), then the
//! criterion groups. Target: a CPU-bound script with a CPU limit within 5 % of no limit.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use luapool::{Script, Vm, VmConfig};

const LONG: &str = "local s = 0 for i = 1, 200000 do s = s + i % 7 end return s";
const SHORT: &str = "local s = 0 for i = 1, 100 do s = s + i end return s";

fn configs() -> Vec<(&'static str, VmConfig)> {
    let base = VmConfig::default();
    vec![
        ("no limit", base.clone()),
        (
            "cpu_limit 10s",
            base.clone().with_cpu_limit(Duration::from_secs(10)),
        ),
        (
            "memory_limit 64MiB",
            base.clone().with_memory_limit(64 << 20),
        ),
        (
            "timeout 10s",
            base.clone().with_timeout(Duration::from_secs(10)),
        ),
        (
            "cpu + memory + timeout",
            base.clone()
                .with_cpu_limit(Duration::from_secs(10))
                .with_memory_limit(64 << 20)
                .with_timeout(Duration::from_secs(10)),
        ),
        (
            "instruction_limit 1e12",
            base.with_instruction_limit(1_000_000_000_000),
        ),
    ]
}

fn summary(name: &str, source: &str, per_round: u32) {
    let script = Script::new("bench.lua", source);
    let vms: Vec<(&str, Vm)> = configs()
        .into_iter()
        .map(|(n, c)| (n, Vm::new(c).unwrap()))
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); vms.len()];
    for _ in 0..11 {
        for (i, (_, vm)) in vms.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(vm.eval::<i64>(&script).unwrap());
            }
            samples[i].push(start.elapsed() / per_round);
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect();
    eprintln!("== limits: {name} (median per execution, ratio to no limit) ==");
    for ((label, _), m) in vms.iter().zip(&medians) {
        eprintln!(
            "{label:<24} {m:>12.2?}  {:.3}x",
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

fn limits(c: &mut Criterion) {
    summary("CPU-bound loop, 200k iterations", LONG, 20);
    summary("short loop, 100 iterations", SHORT, 20_000);
    for (group, source) in [("limits_long_loop", LONG), ("limits_short_loop", SHORT)] {
        let script = Script::new("bench.lua", source);
        let mut g = c.benchmark_group(group);
        for (label, config) in configs() {
            let vm = Vm::new(config).unwrap();
            g.bench_function(label, |b| {
                b.iter(|| black_box(vm.eval::<i64>(&script).unwrap()))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = limits
}
criterion_main!(benches);
