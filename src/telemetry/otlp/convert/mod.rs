//! Records to OTLP messages. PLACEHOLDER with the agreed signatures: helper H2 replaces the
//! bodies (spans, log records, metrics); helper H1's exporter calls them.

// Placeholder until its helper lands: nothing calls it yet.
#![allow(dead_code)]

use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::OtlpOptions;
use crate::client::BudgetStatus;
use crate::telemetry::event::TelemetryRecord;
use crate::telemetry::metrics::MetricsSnapshot;

/// Turns records into spans and log records as they arrive (on the exporter's thread) and
/// hands them out in batches; turns the live metrics into an OTLP metrics request.
#[derive(Debug)]
pub(crate) struct Converter {
    pending: usize,
}

impl Converter {
    /// A converter whose resource is built from `options` (`service.name`, the resource
    /// attributes, the pinned `schema_url`).
    pub fn new(options: &OtlpOptions) -> Converter {
        let _ = options;
        Converter { pending: 0 }
    }

    /// Adds the spans and log records `record` gives (none for some events).
    pub fn push(&mut self, record: &TelemetryRecord) {
        let _ = record;
    }

    /// Spans and log records waiting to be taken.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Up to `max` waiting spans as one export request; `None` when none wait.
    pub fn take_traces(&mut self, max: usize) -> Option<ExportTraceServiceRequest> {
        let _ = max;
        None
    }

    /// Up to `max` waiting log records as one export request; `None` when none wait.
    pub fn take_logs(&mut self, max: usize) -> Option<ExportLogsServiceRequest> {
        let _ = max;
        None
    }

    /// The live metrics (cumulative since `start`, the engine's open) and the budgets' spend
    /// ratios as one export request stamped `now`.
    pub fn metrics(
        &self,
        snapshot: &MetricsSnapshot,
        budgets: &[BudgetStatus],
        start: SystemTime,
        now: SystemTime,
    ) -> ExportMetricsServiceRequest {
        let _ = (snapshot, budgets, start, now);
        ExportMetricsServiceRequest::default()
    }
}
