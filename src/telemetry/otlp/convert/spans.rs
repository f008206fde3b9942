//! Telemetry lines to spans (GenAI semantic conventions v1.41.0). One `complete()`/`stream()`
//! gives three kinds of span, all in the caller's trace when it passed a `traceparent`, else in
//! a trace rooted at the request ([`TraceContext::root_for`]):
//!
//! ```text
//! prompt_config.complete {feature}     INTERNAL  the llm.request line (whole call)
//! ├── prompt_config.resolve {feature}  INTERNAL  call start -> first attempt's start
//! ├── chat {model}                     CLIENT    llm.attempt 1
//! └── chat {model}                     CLIENT    llm.attempt 2 (a retry or a fallback)
//! ```
//!
//! Attempt lines arrive before their request line and know nothing of the answer, so their
//! spans are held per request id until the request line comes: it gives the answering attempt
//! its response model, id, finish reasons and usage, and the resolve span its end. A request
//! line that never comes (dropped when the queue was full) releases its attempts after
//! [`HOLD`], or when more than [`MAX_HELD_REQUESTS`] requests are held. A bare `resolve()` (its
//! `prompt.resolve` line: `complete()` writes none) is a span of its own, in the caller's trace
//! or a root. Span ids come from [`span_id`], so they match the `traceparent` the client sent
//! the provider for each attempt. `gen_ai.provider.name` is the record's: our provider kinds
//! already use the conventions' values (`openai`, `anthropic`); `mock` and custom names pass
//! through.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use super::attributes::{Attributes, millis_to_nanos, unix_nanos};
use crate::resolve::{SpanId, SpanRole, TraceContext, span_id};
use crate::telemetry::event::{
    AttemptFields, FeatureFields, RequestFields, ResolveFields, StreamFields, TelemetryRecord,
};

/// How long attempt spans wait for their request line before they are sent without it.
pub(super) const HOLD: Duration = Duration::from_secs(600);

/// Requests whose attempt spans may be held at once; the oldest is released beyond it.
pub(super) const MAX_HELD_REQUESTS: usize = 4096;

/// The name of the span event carrying prompt and answer text (GenAI semantic conventions).
pub(super) const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

/// W3C trace-flags `sampled` in the low byte of `Span.flags`, with "has is-remote" (bit 8) set
/// and "is remote" (bit 9) set when the parent is the caller's span (OTLP `SpanFlags`).
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Attempt spans waiting for their request line.
#[derive(Debug)]
struct HeldRequest {
    attempts: Vec<Span>,
    /// The index in `attempts` of the last successful one: the one that answered.
    answered: Option<usize>,
    /// The earliest attempt start, in Unix nanoseconds: where the resolve span ends.
    first_attempt_start: Option<u64>,
    held_since: Instant,
}

/// Spans built from records, and attempt spans waiting for their request line.
#[derive(Debug, Default)]
pub(super) struct SpanAssembler {
    held: HashMap<String, HeldRequest>,
    /// Request ids in the order they were first held, to release the oldest first.
    order: VecDeque<String>,
}

impl SpanAssembler {
    /// The spans `record` completes, appended to `out` (none for an attempt, which is held, for
    /// an unsampled trace and for events that are not spans).
    pub(super) fn push(&mut self, record: &TelemetryRecord, now: Instant, out: &mut Vec<Span>) {
        use crate::telemetry::event::EventBody;
        match &record.body {
            EventBody::Attempt(fields) => self.attempt(record, fields, now, out),
            EventBody::Request(fields) => self.request(record, fields, out),
            EventBody::Resolve(fields) => {
                if let Some(span) = bare_resolve(record, fields) {
                    out.push(span);
                }
            }
            _ => {}
        }
    }

    /// Sends attempt spans held longer than [`HOLD`] without their request line.
    pub(super) fn release_stale(&mut self, now: Instant, out: &mut Vec<Span>) {
        while let Some(oldest) = self.order.front() {
            let stale = self
                .held
                .get(oldest)
                .is_none_or(|held| now.saturating_duration_since(held.held_since) >= HOLD);
            if !stale {
                break;
            }
            if let Some(id) = self.order.pop_front()
                && let Some(held) = self.held.remove(&id)
            {
                out.extend(held.attempts);
            }
        }
    }

    /// Attempt spans held now.
    pub(super) fn held_spans(&self) -> usize {
        self.held.values().map(|held| held.attempts.len()).sum()
    }

    /// Attempt spans [`SpanAssembler::release_stale`] would release at `now`.
    pub(super) fn stale_spans(&self, now: Instant) -> usize {
        self.held
            .values()
            .filter(|held| now.saturating_duration_since(held.held_since) >= HOLD)
            .map(|held| held.attempts.len())
            .sum()
    }

    fn attempt(
        &mut self,
        record: &TelemetryRecord,
        fields: &AttemptFields,
        now: Instant,
        out: &mut Vec<Span>,
    ) {
        let Some(trace) = sampled_trace(fields.trace.as_ref(), &record.request_id) else {
            return;
        };
        let start = unix_nanos(record.timestamp);
        let span = attempt_span(record, fields, &trace, start);
        let success = fields.outcome == "success";
        if !self.held.contains_key(&record.request_id) {
            if self.held.len() >= MAX_HELD_REQUESTS
                && let Some(oldest) = self.order.pop_front()
                && let Some(held) = self.held.remove(&oldest)
            {
                out.extend(held.attempts);
            }
            self.order.push_back(record.request_id.clone());
        }
        let held = self
            .held
            .entry(record.request_id.clone())
            .or_insert_with(|| HeldRequest {
                attempts: Vec::new(),
                answered: None,
                first_attempt_start: None,
                held_since: now,
            });
        if success {
            held.answered = Some(held.attempts.len());
        }
        held.first_attempt_start = Some(held.first_attempt_start.map_or(start, |s| s.min(start)));
        held.attempts.push(span);
    }

    fn request(&mut self, record: &TelemetryRecord, fields: &RequestFields, out: &mut Vec<Span>) {
        let held = self.held.remove(&record.request_id);
        if held.is_some() {
            self.order.retain(|id| id != &record.request_id);
        }
        let Some(trace) = sampled_trace(fields.feature.trace.as_ref(), &record.request_id) else {
            return;
        };
        let end = unix_nanos(record.timestamp);
        let start = end.saturating_sub(millis_to_nanos(fields.latency_ms));
        let request_id = span_id(&record.request_id, SpanRole::Request);
        out.push(request_span(record, fields, &trace, start, end));

        let first_attempt = held.as_ref().and_then(|held| held.first_attempt_start);
        let resolve_end = first_attempt.unwrap_or(end).clamp(start, end);
        let mut attributes = Attributes::default();
        feature_attributes(&mut attributes, &fields.feature);
        attributes
            .string("gen_ai.provider.name", fields.provider.as_str())
            .string("gen_ai.request.model", fields.model.as_str());
        out.push(Span {
            name: format!("prompt_config.resolve {}", fields.feature.feature),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: resolve_end,
            attributes: attributes.0,
            ..ids(
                &trace,
                &record.request_id,
                SpanRole::Resolve,
                Some(request_id),
            )
        });

        if let Some(mut held) = held {
            if let Some(answered) = held.answered.and_then(|index| held.attempts.get_mut(index)) {
                let mut response = Attributes::default();
                response_attributes(&mut response, fields);
                answered.attributes.extend(response.0);
            }
            out.extend(held.attempts);
        }
    }
}

/// The trace of a record: the caller's, or one rooted at the request; `None` when the caller
/// did not sample it (nothing of the request is exported).
pub(super) fn sampled_trace(
    trace: Option<&TraceContext>,
    request_id: &str,
) -> Option<TraceContext> {
    let trace = trace
        .copied()
        .unwrap_or_else(|| TraceContext::root_for(request_id));
    trace.sampled.then_some(trace)
}

/// A span's trace id, span id, parent and flags (the rest left to fill in).
fn ids(trace: &TraceContext, request_id: &str, role: SpanRole, parent: Option<SpanId>) -> Span {
    let remote_parent = parent.is_none() && trace.parent_span_id.is_some();
    let parent = parent.or(trace.parent_span_id);
    let mut flags = FLAG_SAMPLED | FLAG_HAS_IS_REMOTE;
    if remote_parent {
        flags |= FLAG_IS_REMOTE;
    }
    Span {
        trace_id: trace.trace_id.0.to_vec(),
        span_id: span_id(request_id, role).0.to_vec(),
        parent_span_id: parent.map(|id| id.0.to_vec()).unwrap_or_default(),
        flags,
        ..Span::default()
    }
}

fn error_status(error_type: Option<&str>) -> Option<Status> {
    error_type.map(|error_type| Status {
        code: StatusCode::Error as i32,
        message: error_type.to_string(),
    })
}

/// `prompt_config.complete {feature}` (or `prompt_config.stream {feature}`): the whole call.
fn request_span(
    record: &TelemetryRecord,
    fields: &RequestFields,
    trace: &TraceContext,
    start: u64,
    end: u64,
) -> Span {
    let operation = if fields.stream.is_some() {
        "stream"
    } else {
        "complete"
    };
    let mut attributes = Attributes::default();
    feature_attributes(&mut attributes, &fields.feature);
    attributes
        .string("gen_ai.provider.name", fields.provider.as_str())
        .string("gen_ai.request.model", fields.model.as_str());
    response_attributes(&mut attributes, fields);
    attributes
        .string("prompt_config.outcome", fields.outcome)
        .optional_string("error.type", fields.error_type.as_deref())
        .int("prompt_config.attempts", u64::from(fields.attempts))
        .double("prompt_config.cost_usd", fields.cost_usd);
    if fields.cost_estimated {
        attributes.bool("prompt_config.cost_estimated", true);
    }
    if fields.refusal {
        attributes.bool("prompt_config.refusal", true);
    }
    if fields.downgraded {
        attributes.bool("prompt_config.downgraded", true);
    }
    if let Some(hit) = fields.cache_hit {
        attributes.bool("prompt_config.cache.hit", hit);
    }
    if let Some(saved) = fields.cache_saved_usd {
        attributes.double("prompt_config.cache.saved_usd", saved);
    }
    attributes.optional_string(
        "prompt_config.cache.partition",
        fields.cache_partition.as_deref(),
    );
    stream_attributes(&mut attributes, fields.stream.as_ref());
    if let Some(output) = &fields.output {
        if output.schema {
            attributes.bool("prompt_config.output.schema", true);
        }
        if let Some(valid) = output.valid {
            attributes.bool("prompt_config.output.valid", valid);
        }
        attributes
            .int("prompt_config.output.repairs", u64::from(output.repairs))
            .int(
                "prompt_config.output.invalid_outputs",
                u64::from(output.invalid_outputs),
            );
        if let Some(calls) = output.tool_calls {
            attributes.int("prompt_config.output.tool_calls", u64::from(calls));
        }
    }
    Span {
        name: format!("prompt_config.{operation} {}", fields.feature.feature),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attributes.0,
        events: text_event(fields, end).into_iter().collect(),
        status: error_status(fields.error_type.as_deref()),
        ..ids(trace, &record.request_id, SpanRole::Request, None)
    }
}

/// The prompt and answer text, present on the record only under the feature's
/// `telemetry.record_text`: one `gen_ai.client.inference.operation.details` event at the call's
/// end. Never built otherwise.
fn text_event(fields: &RequestFields, end: u64) -> Option<Event> {
    let data = fields
        .output
        .as_ref()
        .and_then(|output| output.data.as_ref());
    if fields.input_messages.is_none()
        && fields.output_messages.is_none()
        && fields.variables.is_none()
        && data.is_none()
    {
        return None;
    }
    let mut attributes = Attributes::default();
    if let Some(messages) = &fields.input_messages {
        attributes.json("gen_ai.input.messages", messages);
    }
    if let Some(messages) = &fields.output_messages {
        attributes.json("gen_ai.output.messages", messages);
    }
    if let Some(variables) = &fields.variables {
        attributes.json("prompt_config.variables", variables);
    }
    if let Some(data) = data {
        attributes.json("prompt_config.output.data", data);
    }
    Some(Event {
        time_unix_nano: end,
        name: DETAILS_EVENT.to_string(),
        attributes: attributes.0,
        dropped_attributes_count: 0,
    })
}

/// `chat {model}`: one call to a provider (or one skipped by its breaker or rate limit).
fn attempt_span(
    record: &TelemetryRecord,
    fields: &AttemptFields,
    trace: &TraceContext,
    start: u64,
) -> Span {
    let mut attributes = Attributes::default();
    attributes
        .string("gen_ai.operation.name", fields.operation)
        .string("gen_ai.provider.name", fields.provider.as_str())
        .string("gen_ai.request.model", fields.model.as_str())
        .string("gen_ai.prompt.name", fields.feature.as_str())
        .string("gen_ai.prompt.version", fields.version.as_str())
        .int("prompt_config.attempt", u64::from(fields.attempt))
        .string("prompt_config.outcome", fields.outcome)
        .optional_string("error.type", fields.error_type.as_deref());
    if let Some(status) = fields.status {
        attributes.int("http.response.status_code", u64::from(status));
    }
    attributes
        .double("prompt_config.wait_ms", fields.wait_ms)
        .string("prompt_config.breaker_state", fields.breaker_state);
    stream_attributes(&mut attributes, fields.stream.as_ref());
    if let Some(invalid) = &fields.invalid_output {
        attributes
            .string("prompt_config.output.invalid_reason", invalid.reason)
            .optional_string("prompt_config.output.tool", invalid.tool.as_deref())
            .int(
                "prompt_config.output.violations",
                u64::from(invalid.violations),
            )
            .string("prompt_config.output.pointer", invalid.pointer.as_str());
    }
    // A failed attempt always has a type; an outcome that is not a success without one
    // (`stream_incomplete`) is named by the outcome.
    let error = match (fields.error_type.as_deref(), fields.outcome) {
        (Some(error_type), _) => Some(error_type),
        (None, "success") => None,
        (None, outcome) => Some(outcome),
    };
    let request = span_id(&record.request_id, SpanRole::Request);
    Span {
        name: format!("{} {}", fields.operation, fields.model),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(millis_to_nanos(fields.latency_ms)),
        attributes: attributes.0,
        status: error_status(error),
        ..ids(
            trace,
            &record.request_id,
            SpanRole::Attempt(fields.attempt),
            Some(request),
        )
    }
}

/// A bare `resolve()`: an instant span (the line is written when the resolve ends and does
/// not measure it) under the caller's span, or a root.
fn bare_resolve(record: &TelemetryRecord, fields: &ResolveFields) -> Option<Span> {
    let trace = sampled_trace(fields.feature.trace.as_ref(), &record.request_id)?;
    let time = unix_nanos(record.timestamp);
    let mut attributes = Attributes::default();
    feature_attributes(&mut attributes, &fields.feature);
    attributes
        .string("gen_ai.provider.name", fields.provider.as_str())
        .string("gen_ai.request.model", fields.model.as_str());
    let events = fields.input_messages.as_ref().map(|messages| {
        let mut text = Attributes::default();
        text.json("gen_ai.input.messages", messages);
        Event {
            time_unix_nano: time,
            name: DETAILS_EVENT.to_string(),
            attributes: text.0,
            dropped_attributes_count: 0,
        }
    });
    Some(Span {
        name: format!("prompt_config.resolve {}", fields.feature.feature),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: time,
        end_time_unix_nano: time,
        attributes: attributes.0,
        events: events.into_iter().collect(),
        ..ids(&trace, &record.request_id, SpanRole::Resolve, None)
    })
}

/// How the feature was resolved: `gen_ai.prompt.*` and `prompt_config.*`.
fn feature_attributes(attributes: &mut Attributes, fields: &FeatureFields) {
    attributes
        .string("gen_ai.prompt.name", fields.feature.as_str())
        .string("gen_ai.prompt.version", fields.version.as_str())
        .string("prompt_config.source", fields.source)
        .optional_string("prompt_config.experiment", fields.experiment.as_deref())
        .optional_string("prompt_config.variant", fields.variant.as_deref())
        .optional_string("prompt_config.rule", fields.rule.as_deref());
    if let Some(bucket) = fields.bucket {
        attributes.double("prompt_config.bucket", bucket);
    }
    attributes
        .string("prompt_config.subject_id", fields.subject_id.as_str())
        .string("prompt_config.prompt_hash", fields.prompt_hash.as_str())
        .string(
            "prompt_config.config_revision",
            fields.config_revision.as_str(),
        )
        .optional_string("prompt_config.eval.run_id", fields.eval_run_id.as_deref());
    for (name, value) in &fields.attributes {
        attributes.json(&format!("prompt_config.attributes.{name}"), value);
    }
}

/// The answer's GenAI summary: response model and id, finish reasons, token usage.
fn response_attributes(attributes: &mut Attributes, fields: &RequestFields) {
    attributes
        .optional_string("gen_ai.response.model", fields.response_model.as_deref())
        .optional_string("gen_ai.response.id", fields.response_id.as_deref());
    if !fields.finish_reasons.is_empty() {
        attributes.strings("gen_ai.response.finish_reasons", &fields.finish_reasons);
    }
    attributes
        .int("gen_ai.usage.input_tokens", fields.input_tokens)
        .int("gen_ai.usage.output_tokens", fields.output_tokens)
        .int(
            "gen_ai.usage.cache_read.input_tokens",
            fields.cache_read_input_tokens,
        )
        .int(
            "gen_ai.usage.cache_creation.input_tokens",
            fields.cache_creation_input_tokens,
        );
}

fn stream_attributes(attributes: &mut Attributes, stream: Option<&StreamFields>) {
    let Some(stream) = stream else {
        return;
    };
    attributes.bool("prompt_config.stream", true);
    if let Some(seconds) = stream.time_to_first_chunk {
        attributes.double("gen_ai.response.time_to_first_chunk", seconds);
    }
    attributes.int("prompt_config.stream.chunks", stream.chunks);
}
