//! Records to OTLP messages, following the OpenTelemetry semantic conventions pinned in
//! [`SEMCONV_VERSION`](super::SEMCONV_VERSION): spans (`spans.rs`: the request, resolve and
//! `chat {model}` spans of each call), log records (`logs.rs`: the events that are not spans)
//! and metrics (`metrics.rs`: the live [`MetricsSnapshot`] and the budgets), each export request
//! under one resource (`resource.rs`) and the `prompt_config` scope, both stamped with
//! [`SCHEMA_URL`](super::SCHEMA_URL). Runs on the exporter's thread only; the caller's thread
//! never converts anything.

// Until helper H1's exporter (which calls the converter) is merged, nothing outside the tests
// does.
#![allow(dead_code)]

mod attributes;
mod logs;
mod metrics;
mod resource;
mod spans;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::{OtlpOptions, SCHEMA_URL};
use crate::client::BudgetStatus;
use crate::telemetry::event::TelemetryRecord;
use crate::telemetry::metrics::MetricsSnapshot;

/// Turns records into spans and log records as they arrive (on the exporter's thread) and
/// hands them out in batches; turns the live metrics into an OTLP metrics request.
#[derive(Debug)]
pub(crate) struct Converter {
    resource: Resource,
    spans: VecDeque<Span>,
    logs: VecDeque<LogRecord>,
    assembler: spans::SpanAssembler,
    log_assembler: logs::LogAssembler,
}

impl Converter {
    /// A converter whose resource is built from `options` (`service.name`, the resource
    /// attributes, the pinned `schema_url`).
    pub fn new(options: &OtlpOptions) -> Converter {
        Converter {
            resource: resource::resource(options),
            spans: VecDeque::new(),
            logs: VecDeque::new(),
            assembler: spans::SpanAssembler::default(),
            log_assembler: logs::LogAssembler::default(),
        }
    }

    /// Adds the spans and log records `record` gives (none for some events).
    pub fn push(&mut self, record: &TelemetryRecord) {
        let mut ready = Vec::new();
        self.assembler.push(record, Instant::now(), &mut ready);
        self.spans.extend(ready);
        if let Some(log) = self.log_assembler.push(record, SystemTime::now()) {
            self.logs.push_back(log);
        }
    }

    /// Spans and log records waiting to be taken. Attempt spans held for their request line
    /// are not counted until it arrives, or until they have waited [`spans::HOLD`] (then the
    /// next [`Converter::take_traces`] sends them without it).
    pub fn pending(&self) -> usize {
        self.spans.len() + self.logs.len() + self.assembler.stale_spans(Instant::now())
    }

    /// Up to `max` waiting spans as one export request; `None` when none wait. Attempt spans
    /// whose request line has not come within [`spans::HOLD`] are released first.
    pub fn take_traces(&mut self, max: usize) -> Option<ExportTraceServiceRequest> {
        let mut stale = Vec::new();
        self.assembler.release_stale(Instant::now(), &mut stale);
        self.spans.extend(stale);
        let count = max.min(self.spans.len());
        if count == 0 {
            return None;
        }
        let spans: Vec<Span> = self.spans.drain(..count).collect();
        Some(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(resource::scope()),
                    spans,
                    schema_url: SCHEMA_URL.to_string(),
                }],
                schema_url: SCHEMA_URL.to_string(),
            }],
        })
    }

    /// Up to `max` waiting log records as one export request; `None` when none wait.
    pub fn take_logs(&mut self, max: usize) -> Option<ExportLogsServiceRequest> {
        let count = max.min(self.logs.len());
        if count == 0 {
            return None;
        }
        let log_records: Vec<LogRecord> = self.logs.drain(..count).collect();
        Some(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(resource::scope()),
                    log_records,
                    schema_url: SCHEMA_URL.to_string(),
                }],
                schema_url: SCHEMA_URL.to_string(),
            }],
        })
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
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(resource::scope()),
                    metrics: metrics::metrics(snapshot, budgets, start, now),
                    schema_url: SCHEMA_URL.to_string(),
                }],
                schema_url: SCHEMA_URL.to_string(),
            }],
        }
    }
}
