//! Counters and histograms of a worker pool, also reported through the `metrics` facade.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Buckets of a [`Histogram`]: bucket `i` counts durations below `2^i` microseconds; the
/// last one counts everything longer.
const BUCKETS: usize = 28;

/// A lock-free histogram of durations with power-of-two microsecond buckets.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.buckets[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed)),
        }
    }
}

/// A copy of a duration histogram: `counts[i]` is the number of samples shorter than
/// `2^i` µs (and at least `2^(i-1)` µs); the last bucket holds all longer ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Samples per bucket.
    pub counts: Vec<u64>,
    /// Sum of all samples.
    pub sum: Duration,
}

impl HistogramSnapshot {
    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound of the bucket holding quantile `q` (0.0–1.0), e.g. `quantile(0.99)`;
    /// `None` without samples.
    ///
    /// ```
    /// # use luapool::HistogramSnapshot;
    /// let h = HistogramSnapshot { counts: vec![0, 0, 0, 5], sum: Default::default() };
    /// assert_eq!(h.quantile(0.5), Some(std::time::Duration::from_micros(8)));
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(1u64 << i.min(63)));
            }
        }
        None
    }
}

/// Counters shared by the pool's handles and workers.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) busy_workers: AtomicUsize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) created: AtomicU64,
    pub(crate) rebuilt: AtomicU64,
    pub(crate) respawned: AtomicU64,
    pub(crate) replaced: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) wait: Histogram,
    pub(crate) run: Histogram,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Stats {
            busy_workers: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            created: AtomicU64::new(0),
            rebuilt: AtomicU64::new(0),
            respawned: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            wait: Histogram::new(),
            run: Histogram::new(),
        }
    }

    /// Records a finished job, here and through the `metrics` facade.
    pub(crate) fn finished(&self, wait: Duration, run: Duration, outcome: Finished) {
        self.wait.record(wait);
        self.run.record(run);
        // Literal label values, so that the macros use static keys: a computed label
        // allocates and hashes a key on every job.
        let (counter, total) = match outcome {
            Finished::Ok => (
                &self.completed,
                metrics::counter!("luapool_jobs_total", "outcome" => "completed"),
            ),
            Finished::Failed => (
                &self.failed,
                metrics::counter!("luapool_jobs_total", "outcome" => "failed"),
            ),
            Finished::TimedOut => (
                &self.timed_out,
                metrics::counter!("luapool_jobs_total", "outcome" => "timed_out"),
            ),
            Finished::Cancelled => (
                &self.cancelled,
                metrics::counter!("luapool_jobs_total", "outcome" => "cancelled"),
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        total.increment(1);
        metrics::histogram!("luapool_job_wait_seconds").record(wait.as_secs_f64());
        metrics::histogram!("luapool_job_run_seconds").record(run.as_secs_f64());
    }

    pub(crate) fn count(counter: &AtomicU64, name: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(name).increment(1);
    }
}

/// How a job ended, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Finished {
    Ok,
    Failed,
    TimedOut,
    /// Its caller dropped the job's future while it ran.
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_power_of_two_micros() {
        let h = Histogram::new();
        h.record(Duration::from_nanos(500)); // < 1 µs
        h.record(Duration::from_micros(3)); // [2, 4)
        h.record(Duration::from_secs(1000)); // last bucket
        let s = h.snapshot();
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[2], 1);
        assert_eq!(s.counts[BUCKETS - 1], 1);
        assert_eq!(s.count(), 3);
        assert_eq!(s.quantile(0.5), Some(Duration::from_micros(4)));
    }
}
