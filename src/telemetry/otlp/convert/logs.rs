//! Telemetry lines that are not spans (`circuit.transition`, `budget.alert`, `config.reload`,
//! `feedback`, `state.degraded`/`state.restored`, `eval.case`, `eval.run`,
//! `telemetry.dropped`, and any event added later, alerts included) to OTLP log records: the
//! record's `event_name` is the line's event, its attributes the line's fields (objects
//! flattened with dotted keys), its time the line's timestamp. A record that names a request
//! (`feedback`) carries that request's trace and span id, so backends link it to the call.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};

use super::attributes::{flattened, unix_nanos};
use crate::resolve::{SpanRole, TraceContext, span_id};
use crate::telemetry::event::{EventBody, TelemetryRecord};

/// Requests whose trace is remembered for the log records that refer to them later.
pub(super) const REMEMBERED_TRACES: usize = 4096;

/// Builds log records, remembering the traces of recent requests.
#[derive(Debug, Default)]
pub(super) struct LogAssembler {
    traces: HashMap<String, TraceContext>,
    order: VecDeque<String>,
}

impl LogAssembler {
    /// The log record of `record`, if it is an event that is not a span; a request line's
    /// trace is remembered instead.
    pub(super) fn push(
        &mut self,
        record: &TelemetryRecord,
        observed: SystemTime,
    ) -> Option<LogRecord> {
        match &record.body {
            EventBody::Request(fields) => {
                if let Some(trace) = fields.feature.trace {
                    self.remember(&record.request_id, trace);
                }
                None
            }
            EventBody::Resolve(_) | EventBody::Attempt(_) => None,
            _ => Some(self.log_record(record, observed)),
        }
    }

    fn remember(&mut self, request_id: &str, trace: TraceContext) {
        if self.traces.len() >= REMEMBERED_TRACES
            && let Some(oldest) = self.order.pop_front()
        {
            self.traces.remove(&oldest);
        }
        if self.traces.insert(request_id.to_string(), trace).is_none() {
            self.order.push_back(request_id.to_string());
        }
    }

    fn log_record(&self, record: &TelemetryRecord, observed: SystemTime) -> LogRecord {
        let (severity, text) = severity(record);
        // Serializing through the line's own `Serialize` keeps the attribute names those of
        // the JSONL log, for every event, present and future.
        let attributes = serde_json::to_value(record)
            .map(|line| flattened(&line))
            .unwrap_or_default();
        let (trace_id, span) = if record.request_id.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            // The caller's trace when the request line passed by recently; else the trace
            // the request rooted (the one its spans were exported in when it had no caller).
            let trace = self
                .traces
                .get(&record.request_id)
                .copied()
                .unwrap_or_else(|| TraceContext::root_for(&record.request_id));
            (
                trace.trace_id.0.to_vec(),
                span_id(&record.request_id, SpanRole::Request).0.to_vec(),
            )
        };
        LogRecord {
            time_unix_nano: unix_nanos(record.timestamp),
            observed_time_unix_nano: unix_nanos(observed.into()),
            severity_number: severity as i32,
            severity_text: text.to_string(),
            attributes,
            trace_id,
            span_id: span,
            event_name: record.event.to_string(),
            ..LogRecord::default()
        }
    }
}

/// WARN for what an operator should look at (a breaker opened, a budget threshold crossed,
/// the shared state degraded, a reload failed, telemetry dropped); INFO otherwise.
fn severity(record: &TelemetryRecord) -> (SeverityNumber, &'static str) {
    let warn = match &record.body {
        EventBody::CircuitTransition(fields) => fields.to == "open",
        EventBody::BudgetAlert(_) | EventBody::Dropped(_) => true,
        EventBody::Reload(fields) => fields.outcome != "success",
        EventBody::State(_) => record.event == "state.degraded",
        _ => false,
    };
    if warn {
        (SeverityNumber::Warn, "WARN")
    } else {
        (SeverityNumber::Info, "INFO")
    }
}
