//! Server metrics in a Prometheus registry, rendered by the admin listener.
//!
//! Workers keep handles to the counters they touch on every request, so the hot path
//! is a few relaxed atomic additions and no registry lookup.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub(crate) status: u16,
}

/// Labels of per-worker series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WorkerLabels {
    pub(crate) worker: usize,
}

/// Labels of counters that count by kind (`limit`, `reason`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabels {
    pub(crate) kind: &'static str,
}

/// Every metric of one server.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<StatusLabels, Counter>,
    pub(crate) latency: Family<WorkerLabels, Histogram>,
    pub(crate) in_flight: Family<WorkerLabels, Gauge>,
    pub(crate) queued: Family<WorkerLabels, Gauge>,
    pub(crate) timers: Family<WorkerLabels, Gauge>,
    pub(crate) connections: Family<WorkerLabels, Gauge>,
    pub(crate) cancelled: Counter,
    pub(crate) log_suppressed: Counter,
    pub(crate) vm_memory: Family<WorkerLabels, Gauge<u64, AtomicU64>>,
    pub(crate) vm_rebuilt: Family<KindLabels, Counter>,
    pub(crate) limits: Family<KindLabels, Counter>,
    pub(crate) rejected: Family<KindLabels, Counter>,
    pub(crate) reloads: Family<KindLabels, Counter>,
    pub(crate) workers: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("luapool");
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by status",
            requests.clone(),
        );
        let latency = Family::<WorkerLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by worker",
            latency.clone(),
        );
        let in_flight = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being handled, by worker",
            in_flight.clone(),
        );
        let queued = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "http_requests_queued",
            "Requests waiting for a handler slot, by worker",
            queued.clone(),
        );
        let timers = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "timers_pending",
            "Timers (timer.after, timer.every) waiting or running, by worker",
            timers.clone(),
        );
        let connections = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "http_connections",
            "Open client connections, by worker",
            connections.clone(),
        );
        let cancelled = Counter::default();
        registry.register(
            "http_cancelled",
            "Requests the client gave up on (disconnect, HTTP/2 reset) before their response",
            cancelled.clone(),
        );
        let log_suppressed = Counter::default();
        registry.register(
            "log_suppressed",
            "Log lines held back by the rate limit of repeated errors",
            log_suppressed.clone(),
        );
        let vm_memory = Family::<WorkerLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "vm_memory_bytes",
            "Memory used by each worker's Lua VM after its last request",
            vm_memory.clone(),
        );
        let vm_rebuilt = Family::<KindLabels, Counter>::default();
        registry.register(
            "vm_rebuilt",
            "Worker VMs rebuilt, by reason (poisoned, reload)",
            vm_rebuilt.clone(),
        );
        let limits = Family::<KindLabels, Counter>::default();
        registry.register(
            "limit_exceeded",
            "Requests stopped by a limit (timeout, cpu, instructions, memory)",
            limits.clone(),
        );
        let rejected = Family::<KindLabels, Counter>::default();
        registry.register(
            "http_rejected",
            "Requests refused before their handler ran (overload, body_too_large, body_timeout, bad_request, bad_body)",
            rejected.clone(),
        );
        let reloads = Family::<KindLabels, Counter>::default();
        registry.register(
            "reloads",
            "App reloads, by outcome (ok, failed; tls_failed: the certificate could not be reloaded)",
            reloads.clone(),
        );
        let workers = Gauge::default();
        registry.register(
            "workers",
            "Worker threads serving requests",
            workers.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            queued,
            timers,
            connections,
            cancelled,
            log_suppressed,
            vm_memory,
            vm_rebuilt,
            limits,
            rejected,
            reloads,
            workers,
        }
    }

    /// Counts one event of `kind` in a by-kind family.
    pub(crate) fn count(family: &Family<KindLabels, Counter>, kind: &'static str) {
        family.get_or_create(&KindLabels { kind }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Adds one to a gauge for as long as it lives, however its owner ends (a request
/// dropped because its client went away included).
pub(crate) struct Raised<'a>(&'a Gauge);

impl<'a> Raised<'a> {
    /// Raises `gauge` by one.
    pub(crate) fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Raised(gauge)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts one on `counter` when dropped, unless [`CountIfDropped::disarm`]ed first: the
/// count of things that were abandoned half way.
pub(crate) struct CountIfDropped<'a>(Option<&'a Counter>);

impl<'a> CountIfDropped<'a> {
    /// Arms the guard.
    pub(crate) fn new(counter: &'a Counter) -> Self {
        CountIfDropped(Some(counter))
    }

    /// The thing finished: count nothing.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CountIfDropped<'_> {
    fn drop(&mut self) {
        if let Some(counter) = self.0 {
            counter.inc();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&StatusLabels { status: 200 })
            .inc();
        m.latency
            .get_or_create(&WorkerLabels { worker: 0 })
            .observe(0.001);
        Metrics::count(&m.limits, "timeout");
        let text = m.render();
        assert!(
            text.contains("luapool_http_requests_total{status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("luapool_http_request_duration_seconds_count{worker=\"0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("luapool_limit_exceeded_total{kind=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn guards_undo_on_drop() {
        let m = Metrics::new();
        let gauge = m.queued.get_or_create(&WorkerLabels { worker: 0 }).clone();
        {
            let _a = Raised::new(&gauge);
            let _b = Raised::new(&gauge);
            assert_eq!(gauge.get(), 2);
        }
        assert_eq!(gauge.get(), 0);
        CountIfDropped::new(&m.cancelled).disarm();
        drop(CountIfDropped::new(&m.cancelled));
        assert_eq!(m.cancelled.get(), 1);
    }
}
