//! The worker pool reports through the `metrics` facade, so any exporter picks its
//! counters and histograms up. A test binary of its own: it installs the process-wide
//! recorder.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luapool::{Error, HostError, Job, Script, WorkerPool, WorkerPoolConfig};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Totals per metric: counter increments, and the number of histogram samples.
#[derive(Default)]
struct Totals(Mutex<HashMap<String, f64>>);

impl Totals {
    fn add(&self, key: &str, value: f64) {
        *self.0.lock().unwrap().entry(key.to_string()).or_default() += value;
    }

    fn get(&self, key: &str) -> f64 {
        self.0.lock().unwrap().get(key).copied().unwrap_or_default()
    }
}

/// One registered metric: its rendered key (`name{label=value,...}`) and the totals.
struct Handle(String, Arc<Totals>);

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.1.add(&self.0, value as f64);
    }

    fn absolute(&self, _value: u64) {}
}

impl HistogramFn for Handle {
    fn record(&self, _value: f64) {
        self.1.add(&self.0, 1.0);
    }
}

struct TestRecorder(Arc<Totals>);

fn render(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_string()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(render(key), Arc::clone(&self.0))))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle(render(key), Arc::clone(&self.0))))
    }
}

#[tokio::test]
async fn the_pool_reports_jobs_vms_and_wait_and_run_times() {
    let totals = Arc::new(Totals::default());
    metrics::set_global_recorder(TestRecorder(Arc::clone(&totals))).unwrap();

    let config = WorkerPoolConfig::default()
        .with_workers(1)
        .with_vm(luapool::VmConfig::default().with_timeout(Duration::from_millis(300)));
    let pool = WorkerPool::builder(config)
        .init(|vm| {
            vm.register("explode", |()| -> Result<(), HostError> {
                panic!("host bug")
            })
        })
        .build()
        .unwrap();
    let script = |source: &str| Job::exec(Script::new("job.lua", source));
    for _ in 0..3 {
        pool.submit(script("return 1")).await.unwrap();
    }
    assert!(pool.submit(script("error('no')")).await.is_err());
    let err = pool.submit(script("sleep(10)")).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(pool.submit(script("explode()")).await.is_err()); // rebuilds the VM
    pool.submit(script("return 2")).await.unwrap();
    let summary = pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!((summary.completed, summary.failed), (4, 2), "{summary:?}");

    assert_eq!(totals.get("luapool_jobs_total{outcome=completed}"), 4.0);
    assert_eq!(totals.get("luapool_jobs_total{outcome=failed}"), 2.0);
    assert_eq!(totals.get("luapool_jobs_total{outcome=timed_out}"), 1.0);
    assert_eq!(totals.get("luapool_job_wait_seconds"), 7.0);
    assert_eq!(totals.get("luapool_job_run_seconds"), 7.0);
    assert_eq!(totals.get("luapool_vms_created_total"), 2.0);
    assert_eq!(totals.get("luapool_vms_rebuilt_total"), 1.0);
}
