//! The OTLP exporter's delivery counters: spans, log records and metric data points the
//! collector accepted, what was dropped and why, and retried requests. The exporter holds the
//! same `Arc` as the engine's [`super::Metrics`] and bumps plain atomics from its own thread;
//! the caller's thread touches only `queue_full`.

use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// `prompt_config_otlp_exported_total{signal="traces"|"logs"|"metrics"}`.
const EXPORTED: &str = "prompt_config_otlp_exported_total";
/// `prompt_config_otlp_dropped_total{reason="queue_full"|"rejected"|"failed"}`.
const DROPPED: &str = "prompt_config_otlp_dropped_total";
/// `prompt_config_otlp_retries_total`.
const RETRIES: &str = "prompt_config_otlp_retries_total";

/// The exporter's counters (all monotonic).
#[derive(Debug, Default)]
pub struct OtlpCounters {
    spans_exported: AtomicU64,
    log_records_exported: AtomicU64,
    metric_points_exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_failed: AtomicU64,
    retries: AtomicU64,
}

/// What an export request carried, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpSignal {
    /// Spans to `/v1/traces`.
    Traces,
    /// Log records to `/v1/logs`.
    Logs,
    /// Metric data points to `/v1/metrics`.
    Metrics,
}

impl OtlpCounters {
    /// `count` items of `signal` the collector accepted.
    pub fn exported(&self, signal: OtlpSignal, count: u64) {
        let counter = match signal {
            OtlpSignal::Traces => &self.spans_exported,
            OtlpSignal::Logs => &self.log_records_exported,
            OtlpSignal::Metrics => &self.metric_points_exported,
        };
        counter.fetch_add(count, Ordering::Relaxed);
    }

    /// One telemetry record not queued because the exporter's queue was full.
    pub fn queue_full(&self) {
        self.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
    }

    /// `count` items the collector refused: a `partial_success`, or a 4xx that is not retried.
    pub fn rejected(&self, count: u64) {
        self.dropped_rejected.fetch_add(count, Ordering::Relaxed);
    }

    /// `count` items given up on after the retries (collector down, 5xx, timeouts).
    pub fn failed(&self, count: u64) {
        self.dropped_failed.fetch_add(count, Ordering::Relaxed);
    }

    /// One export request sent again after a retryable failure.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as plain data.
    pub fn snapshot(&self) -> OtlpSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        OtlpSnapshot {
            spans_exported: load(&self.spans_exported),
            log_records_exported: load(&self.log_records_exported),
            metric_points_exported: load(&self.metric_points_exported),
            dropped_queue_full: load(&self.dropped_queue_full),
            dropped_rejected: load(&self.dropped_rejected),
            dropped_failed: load(&self.dropped_failed),
            retries: load(&self.retries),
        }
    }
}

/// The OTLP exporter's delivery since the engine opened (all zero without an exporter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtlpSnapshot {
    /// Spans the collector accepted.
    pub spans_exported: u64,
    /// Log records the collector accepted.
    pub log_records_exported: u64,
    /// Metric data points the collector accepted.
    pub metric_points_exported: u64,
    /// Telemetry records dropped on the caller's thread because the exporter's queue was full.
    pub dropped_queue_full: u64,
    /// Spans, log records or data points the collector refused (`partial_success`, or a 4xx
    /// other than 429).
    pub dropped_rejected: u64,
    /// Spans, log records or data points given up on after the retries (collector down,
    /// 429/502/503/504 too long, timeouts).
    pub dropped_failed: u64,
    /// Export requests sent again after a retryable failure.
    pub retries: u64,
}

/// The three families in Prometheus text, `# HELP`/`# TYPE` always present.
pub(super) fn render(snapshot: &OtlpSnapshot, out: &mut impl Write) -> fmt::Result {
    writeln!(
        out,
        "# HELP {DROPPED} Spans, log records and metric points the OTLP exporter dropped, by \
         reason (queue_full counts telemetry records).\n# TYPE {DROPPED} counter"
    )?;
    for (reason, count) in [
        ("failed", snapshot.dropped_failed),
        ("queue_full", snapshot.dropped_queue_full),
        ("rejected", snapshot.dropped_rejected),
    ] {
        writeln!(out, "{DROPPED}{{reason=\"{reason}\"}} {count}")?;
    }
    writeln!(
        out,
        "# HELP {EXPORTED} Spans (traces), log records (logs) and metric data points (metrics) \
         the OTLP collector accepted.\n# TYPE {EXPORTED} counter"
    )?;
    for (signal, count) in [
        ("logs", snapshot.log_records_exported),
        ("metrics", snapshot.metric_points_exported),
        ("traces", snapshot.spans_exported),
    ] {
        writeln!(out, "{EXPORTED}{{signal=\"{signal}\"}} {count}")?;
    }
    writeln!(
        out,
        "# HELP {RETRIES} OTLP export requests sent again after a retryable failure.\n# TYPE \
         {RETRIES} counter\n{RETRIES} {}",
        snapshot.retries
    )
}
