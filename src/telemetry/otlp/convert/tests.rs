//! The converter as the exporter drives it: records in, export requests out, encoded with prost
//! and decoded again before anything is checked, so the checks see what a collector would.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::json;

use super::Converter;
use super::spans::{HOLD, SpanAssembler};
use crate::client::{BreakerState, BudgetStatus, Usage};
use crate::resolve::{SpanRole, TraceContext, span_id};
use crate::telemetry::event::{
    AttemptFields, BudgetFields, CircuitFields, EventBody, FeatureFields, FeedbackFields,
    RequestFields, ResolveFields, SCHEMA_VERSION, TelemetryRecord,
};
use crate::telemetry::metrics::{DURATION_BUCKETS_SECONDS, Metrics, RequestLabels, TOKEN_BUCKETS};
use crate::telemetry::otlp::{OtlpOptions, SCHEMA_URL};

const REQUEST: &str = "req_0001";
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn at(milliseconds: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_764_547_200_000 + milliseconds)
        .single()
        .expect("a valid test time")
}

fn nanos(milliseconds: i64) -> u64 {
    u64::try_from(1_764_547_200_000 + milliseconds).expect("positive") * 1_000_000
}

fn record(event: &'static str, timestamp: DateTime<Utc>, body: EventBody) -> TelemetryRecord {
    TelemetryRecord {
        schema_version: SCHEMA_VERSION,
        timestamp,
        event,
        request_id: REQUEST.to_string(),
        body,
    }
}

fn feature(trace: Option<TraceContext>) -> FeatureFields {
    FeatureFields {
        feature: "summarize".to_string(),
        version: "v2".to_string(),
        source: "experiment",
        experiment: Some("tone".to_string()),
        variant: Some("concise".to_string()),
        bucket: Some(0.25),
        subject_id: "user_1".to_string(),
        attributes: BTreeMap::from([("plan".to_string(), json!("pro"))]),
        prompt_hash: "abc".to_string(),
        config_revision: "rev1".to_string(),
        trace,
        ..FeatureFields::default()
    }
}

/// Attempt `number`, starting `start_ms` after the test epoch and lasting `latency_ms`.
fn attempt(
    number: u32,
    start_ms: i64,
    latency_ms: f64,
    error: Option<&str>,
    trace: Option<TraceContext>,
) -> TelemetryRecord {
    record(
        "llm.attempt",
        at(start_ms),
        EventBody::Attempt(Box::new(AttemptFields {
            operation: "chat",
            feature: "summarize".to_string(),
            version: "v2".to_string(),
            provider: "openai".to_string(),
            model: if number == 1 { "gpt-4o" } else { "gpt-4o-mini" }.to_string(),
            attempt: number,
            outcome: if error.is_some() { "failed" } else { "success" },
            error_type: error.map(str::to_string),
            status: Some(if error.is_some() { 503 } else { 200 }),
            latency_ms,
            wait_ms: 0.0,
            breaker_state: "closed",
            stream: None,
            invalid_output: None,
            trace,
        })),
    )
}

/// The call's `llm.request`, ending `end_ms` after the test epoch, `latency_ms` long.
fn request(end_ms: i64, latency_ms: f64, trace: Option<TraceContext>) -> TelemetryRecord {
    record(
        "llm.request",
        at(end_ms),
        EventBody::Request(Box::new(RequestFields {
            operation: "chat",
            feature: feature(trace),
            provider: "openai".to_string(),
            model: "gpt-4o-mini".to_string(),
            response_model: Some("gpt-4o-mini-2024-07-18".to_string()),
            response_id: Some("chatcmpl-1".to_string()),
            finish_reasons: vec!["stop".to_string()],
            input_tokens: 120,
            output_tokens: 30,
            cache_read_input_tokens: 64,
            cache_creation_input_tokens: 0,
            outcome: "success",
            error_type: None,
            attempts: 2,
            latency_ms,
            cost_usd: 0.0012,
            cost_estimated: false,
            refusal: false,
            downgraded: false,
            cache_hit: Some(false),
            cache_saved_usd: None,
            cache_partition: None,
            stream: None,
            output: None,
            variables: None,
            input_messages: None,
            output_messages: None,
        })),
    )
}

/// A call of two attempts (the first failed with a 503) from 0 to 1000 ms: resolve until 10 ms,
/// attempt 1 from 10 to 310 ms, attempt 2 from 320 to 990 ms.
fn two_attempt_call(trace: Option<TraceContext>) -> Vec<TelemetryRecord> {
    vec![
        attempt(1, 10, 300.0, Some("503"), trace),
        attempt(2, 320, 670.0, None, trace),
        request(1000, 1000.0, trace),
    ]
}

fn converter() -> Converter {
    Converter::new(&OtlpOptions::new("http://127.0.0.1:4318"))
}

/// What a collector receives: the request encoded and decoded again.
fn sent_spans(converter: &mut Converter) -> (ExportTraceServiceRequest, Vec<Span>) {
    let request = converter.take_traces(512).expect("spans to send");
    let decoded = ExportTraceServiceRequest::decode(request.encode_to_vec().as_slice())
        .expect("our encoding decodes");
    let spans = decoded
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| scope.spans.clone())
        .collect();
    (decoded, spans)
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name} among {:?}", names(spans)))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|span| span.name.as_str()).collect()
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValueKind> {
    attributes
        .iter()
        .find(|pair| pair.key == key)
        .and_then(|pair| pair.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn string(value: &str) -> Option<AnyValueKind> {
    Some(AnyValueKind::StringValue(value.to_string()))
}

fn int(value: i64) -> Option<AnyValueKind> {
    Some(AnyValueKind::IntValue(value))
}

#[test]
fn a_call_is_a_request_span_with_resolve_and_one_client_span_per_attempt_under_it() {
    let mut converter = converter();
    for record in two_attempt_call(None) {
        converter.push(&record);
    }
    let (_, spans) = sent_spans(&mut converter);
    assert_eq!(spans.len(), 4, "{:?}", names(&spans));
    let trace = TraceContext::root_for(REQUEST).trace_id.0.to_vec();
    assert!(spans.iter().all(|span| span.trace_id == trace));

    let parent = named(&spans, "prompt_config.complete summarize");
    assert_eq!(
        parent.span_id,
        span_id(REQUEST, SpanRole::Request).0.to_vec()
    );
    assert!(parent.parent_span_id.is_empty(), "a root without a caller");
    assert_eq!(parent.kind, SpanKind::Internal as i32);
    assert_eq!(
        (parent.start_time_unix_nano, parent.end_time_unix_nano),
        (nanos(0), nanos(1000))
    );

    let resolve = named(&spans, "prompt_config.resolve summarize");
    assert_eq!(
        resolve.span_id,
        span_id(REQUEST, SpanRole::Resolve).0.to_vec()
    );
    assert_eq!(resolve.parent_span_id, parent.span_id);
    assert_eq!(
        (resolve.start_time_unix_nano, resolve.end_time_unix_nano),
        (nanos(0), nanos(10))
    );

    let first = named(&spans, "chat gpt-4o");
    let second = named(&spans, "chat gpt-4o-mini");
    for (span, number) in [(first, 1), (second, 2)] {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.parent_span_id, parent.span_id);
        assert_eq!(
            span.span_id,
            span_id(REQUEST, SpanRole::Attempt(number)).0.to_vec()
        );
    }
    assert_eq!(
        (first.start_time_unix_nano, first.end_time_unix_nano),
        (nanos(10), nanos(310))
    );
    assert_eq!(
        (second.start_time_unix_nano, second.end_time_unix_nano),
        (nanos(320), nanos(990))
    );
}

#[test]
fn a_callers_traceparent_makes_our_request_span_its_child_in_its_trace() {
    let caller = TraceContext::parse_traceparent(CALLER).expect("a valid traceparent");
    let mut converter = converter();
    for record in two_attempt_call(Some(caller)) {
        converter.push(&record);
    }
    let (_, spans) = sent_spans(&mut converter);
    assert!(
        spans
            .iter()
            .all(|span| span.trace_id == caller.trace_id.0.to_vec())
    );
    let parent = named(&spans, "prompt_config.complete summarize");
    let caller_span = caller.parent_span_id.expect("the caller's span").0.to_vec();
    assert_eq!(parent.parent_span_id, caller_span);
    assert_eq!(parent.flags, 0x301, "sampled, with a remote parent");
    assert_eq!(
        named(&spans, "chat gpt-4o").flags,
        0x101,
        "sampled, local parent"
    );
}

#[test]
fn a_trace_the_caller_did_not_sample_exports_no_span() {
    let unsampled = TraceContext::parse_traceparent(&CALLER.replace("-01", "-00"))
        .expect("a valid traceparent");
    assert!(!unsampled.sampled);
    let mut converter = converter();
    for record in two_attempt_call(Some(unsampled)) {
        converter.push(&record);
    }
    assert_eq!(converter.pending(), 0);
    assert!(converter.take_traces(512).is_none());
}

#[test]
fn attempt_spans_wait_for_their_request_line() {
    let mut converter = converter();
    converter.push(&attempt(1, 10, 300.0, None, None));
    assert_eq!(converter.pending(), 0);
    assert!(converter.take_traces(512).is_none());
    converter.push(&request(400, 400.0, None));
    assert_eq!(converter.pending(), 3);
}

#[test]
fn attempts_whose_request_line_never_comes_are_sent_after_the_hold() {
    let mut assembler = SpanAssembler::default();
    let start = Instant::now();
    let mut out = Vec::new();
    assembler.push(&attempt(1, 10, 300.0, None, None), start, &mut out);
    assembler.release_stale(start + HOLD / 2, &mut out);
    assert!(out.is_empty());
    assert_eq!(assembler.stale_spans(start + HOLD / 2), 0);
    assert_eq!(assembler.stale_spans(start + HOLD), 1);
    assembler.release_stale(start + HOLD, &mut out);
    assert_eq!(names(&out), ["chat gpt-4o"]);
    assert_eq!(assembler.held_spans(), 0);
}

#[test]
fn the_answering_attempt_carries_the_response_and_usage_and_a_failed_one_its_error() {
    let mut converter = converter();
    for record in two_attempt_call(None) {
        converter.push(&record);
    }
    let (_, spans) = sent_spans(&mut converter);
    let answered = &named(&spans, "chat gpt-4o-mini").attributes;
    assert_eq!(
        value(answered, "gen_ai.operation.name"),
        string("chat").as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.provider.name"),
        string("openai").as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.request.model"),
        string("gpt-4o-mini").as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.response.model"),
        string("gpt-4o-mini-2024-07-18").as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.response.id"),
        string("chatcmpl-1").as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.usage.input_tokens"),
        int(120).as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.usage.output_tokens"),
        int(30).as_ref()
    );
    assert_eq!(
        value(answered, "gen_ai.usage.cache_read.input_tokens"),
        int(64).as_ref()
    );
    assert!(matches!(
        value(answered, "gen_ai.response.finish_reasons"),
        Some(AnyValueKind::ArrayValue(reasons)) if reasons.values.len() == 1
    ));

    let failed = named(&spans, "chat gpt-4o");
    assert_eq!(
        value(&failed.attributes, "error.type"),
        string("503").as_ref()
    );
    assert_eq!(
        value(&failed.attributes, "http.response.status_code"),
        int(503).as_ref()
    );
    assert_eq!(value(&failed.attributes, "gen_ai.response.id"), None);
    let status = failed
        .status
        .as_ref()
        .expect("a failed attempt has a status");
    assert_eq!(status.code, StatusCode::Error as i32);
}

#[test]
fn the_request_span_carries_our_attributes_and_an_error_status_on_failure() {
    let mut converter = converter();
    let mut failed = request(1000, 1000.0, None);
    if let EventBody::Request(fields) = &mut failed.body {
        fields.outcome = "error";
        fields.error_type = Some("all_providers_failed".to_string());
    }
    converter.push(&failed);
    let (_, spans) = sent_spans(&mut converter);
    let parent = named(&spans, "prompt_config.complete summarize");
    let attributes = &parent.attributes;
    for (key, expected) in [
        ("gen_ai.prompt.name", "summarize"),
        ("gen_ai.prompt.version", "v2"),
        ("prompt_config.source", "experiment"),
        ("prompt_config.experiment", "tone"),
        ("prompt_config.variant", "concise"),
        ("prompt_config.attributes.plan", "pro"),
        ("error.type", "all_providers_failed"),
    ] {
        assert_eq!(value(attributes, key), string(expected).as_ref(), "{key}");
    }
    assert_eq!(
        value(attributes, "prompt_config.cost_usd"),
        Some(&AnyValueKind::DoubleValue(0.0012))
    );
    assert_eq!(
        value(attributes, "prompt_config.cache.hit"),
        Some(&AnyValueKind::BoolValue(false))
    );
    let status = parent.status.as_ref().expect("a failed call has a status");
    assert_eq!(status.code, StatusCode::Error as i32);
}

#[test]
fn text_is_a_span_event_only_when_the_record_carries_it() {
    let mut converter = converter();
    converter.push(&request(1000, 1000.0, None));
    let (_, spans) = sent_spans(&mut converter);
    assert!(spans.iter().all(|span| span.events.is_empty()));

    let mut with_text = request(1000, 1000.0, None);
    if let EventBody::Request(fields) = &mut with_text.body {
        fields.input_messages =
            Some(json!([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]));
        fields.output_messages = Some(json!([{"role": "assistant", "parts": []}]));
    }
    converter.push(&with_text);
    let (_, spans) = sent_spans(&mut converter);
    let parent = named(&spans, "prompt_config.complete summarize");
    let [event] = parent.events.as_slice() else {
        panic!("one details event, got {:?}", parent.events);
    };
    assert_eq!(event.name, "gen_ai.client.inference.operation.details");
    assert!(matches!(
        value(&event.attributes, "gen_ai.input.messages"),
        Some(AnyValueKind::ArrayValue(messages)) if messages.values.len() == 1
    ));
    assert!(value(&event.attributes, "gen_ai.output.messages").is_some());
    assert!(value(&parent.attributes, "gen_ai.input.messages").is_none());
}

#[test]
fn a_bare_resolve_is_its_own_span_under_the_caller_or_a_root() {
    let resolve = |trace| {
        record(
            "prompt.resolve",
            at(5),
            EventBody::Resolve(Box::new(ResolveFields {
                feature: feature(trace),
                provider: "openai".to_string(),
                model: "gpt-4o".to_string(),
                input_messages: None,
            })),
        )
    };
    let mut converter = converter();
    converter.push(&resolve(None));
    let (_, spans) = sent_spans(&mut converter);
    let span = named(&spans, "prompt_config.resolve summarize");
    assert!(span.parent_span_id.is_empty());

    let caller = TraceContext::parse_traceparent(CALLER).expect("a valid traceparent");
    converter.push(&resolve(Some(caller)));
    let (_, spans) = sent_spans(&mut converter);
    let span = named(&spans, "prompt_config.resolve summarize");
    assert_eq!(
        span.parent_span_id,
        caller.parent_span_id.expect("a parent").0.to_vec()
    );
    assert_eq!(span.trace_id, caller.trace_id.0.to_vec());
}

#[test]
fn batches_hold_at_most_max_spans_under_the_resource_scope_and_schema_url() {
    let mut options = OtlpOptions::new("http://127.0.0.1:4318");
    options.service_name = "rails-app".to_string();
    options.resource_attributes = vec![
        (
            "deployment.environment.name".to_string(),
            "prod".to_string(),
        ),
        ("service.name".to_string(), "ignored".to_string()),
    ];
    let mut converter = Converter::new(&options);
    for record in two_attempt_call(None) {
        converter.push(&record);
    }
    let first = converter.take_traces(3).expect("a first batch");
    let spans: usize = first.resource_spans[0].scope_spans[0].spans.len();
    assert_eq!(spans, 3);
    assert_eq!(converter.pending(), 1);
    assert!(converter.take_traces(3).is_some());
    assert!(converter.take_traces(3).is_none());

    let resource_spans = &first.resource_spans[0];
    assert_eq!(resource_spans.schema_url, SCHEMA_URL);
    let scope_spans = &resource_spans.scope_spans[0];
    assert_eq!(scope_spans.schema_url, SCHEMA_URL);
    let scope = scope_spans.scope.as_ref().expect("a scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("prompt_config", env!("CARGO_PKG_VERSION"))
    );
    let resource = &resource_spans
        .resource
        .as_ref()
        .expect("a resource")
        .attributes;
    assert_eq!(
        value(resource, "service.name"),
        string("rails-app").as_ref()
    );
    assert_eq!(
        resource
            .iter()
            .filter(|pair| pair.key == "service.name")
            .count(),
        1
    );
    assert_eq!(
        value(resource, "deployment.environment.name"),
        string("prod").as_ref()
    );
    assert_eq!(
        value(resource, "telemetry.sdk.name"),
        string("prompt_config").as_ref()
    );
    assert_eq!(
        value(resource, "telemetry.sdk.language"),
        string("rust").as_ref()
    );
    assert_eq!(
        value(resource, "telemetry.sdk.version"),
        string(env!("CARGO_PKG_VERSION")).as_ref()
    );
}

fn sent_logs(converter: &mut Converter) -> Vec<LogRecord> {
    let request = converter.take_logs(512).expect("log records to send");
    let decoded = ExportLogsServiceRequest::decode(request.encode_to_vec().as_slice())
        .expect("our encoding decodes");
    assert_eq!(decoded.resource_logs[0].schema_url, SCHEMA_URL);
    decoded.resource_logs[0].scope_logs[0].log_records.clone()
}

#[test]
fn events_that_are_not_spans_are_log_records_named_by_the_event_with_a_severity() {
    let mut converter = converter();
    let mut budget = record(
        "budget.alert",
        at(0),
        EventBody::BudgetAlert(BudgetFields {
            scope: "overall".to_string(),
            period: "day".to_string(),
            period_start: "2025-12-01".to_string(),
            threshold_percent: 80,
            spent_usd: 8.0,
            limit_usd: 10.0,
            policy: "block".to_string(),
        }),
    );
    budget.request_id = String::new();
    let breaker = |to: &'static str| {
        let mut line = record(
            "circuit.transition",
            at(1),
            EventBody::CircuitTransition(CircuitFields {
                breaker: "openai".to_string(),
                from: "closed",
                to,
                reason: "5 failures".to_string(),
                open_for_ms: None,
            }),
        );
        line.request_id = String::new();
        line
    };
    converter.push(&budget);
    converter.push(&breaker("open"));
    converter.push(&breaker("closed"));
    let logs = sent_logs(&mut converter);
    let events: Vec<(&str, i32)> = logs
        .iter()
        .map(|log| (log.event_name.as_str(), log.severity_number))
        .collect();
    assert_eq!(
        events,
        [
            ("budget.alert", SeverityNumber::Warn as i32),
            ("circuit.transition", SeverityNumber::Warn as i32),
            ("circuit.transition", SeverityNumber::Info as i32),
        ]
    );
    let budget = &logs[0];
    assert_eq!(budget.time_unix_nano, nanos(0));
    assert_eq!(
        value(&budget.attributes, "prompt_config.budget.threshold_percent"),
        int(80).as_ref()
    );
    assert!(value(&budget.attributes, "timestamp").is_none());
    assert!(budget.trace_id.is_empty() && budget.span_id.is_empty());
}

#[test]
fn feedback_on_a_request_carries_its_trace_and_request_span() {
    let caller = TraceContext::parse_traceparent(CALLER).expect("a valid traceparent");
    let mut converter = converter();
    converter.push(&request(1000, 1000.0, Some(caller)));
    converter.push(&record(
        "feedback",
        at(2000),
        EventBody::Feedback(Box::new(FeedbackFields {
            metric: "thumbs_up".to_string(),
            value: json!(true),
            request: None,
        })),
    ));
    let logs = sent_logs(&mut converter);
    let [feedback] = logs.as_slice() else {
        panic!("only the feedback is a log record: {logs:?}");
    };
    assert_eq!(feedback.trace_id, caller.trace_id.0.to_vec());
    assert_eq!(
        feedback.span_id,
        span_id(REQUEST, SpanRole::Request).0.to_vec()
    );
    assert_eq!(
        value(&feedback.attributes, "prompt_config.feedback.value"),
        Some(&AnyValueKind::BoolValue(true))
    );
}

fn sent_metrics(snapshot_of: &Metrics, budgets: &[BudgetStatus]) -> Vec<Metric> {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_547_200);
    let now = start + Duration::from_secs(60);
    let request = converter().metrics(&snapshot_of.snapshot(), budgets, start, now);
    let decoded = ExportMetricsServiceRequest::decode(request.encode_to_vec().as_slice())
        .expect("our encoding decodes");
    assert_eq!(decoded.resource_metrics[0].schema_url, SCHEMA_URL);
    decoded.resource_metrics[0].scope_metrics[0].metrics.clone()
}

fn metric<'a>(metrics: &'a [Metric], name: &str) -> &'a Metric {
    metrics
        .iter()
        .find(|metric| metric.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn recorded() -> Metrics {
    let metrics = Metrics::new();
    let labels = RequestLabels {
        feature: "summarize",
        version: "v2",
        variant: None,
        provider: "openai",
        model: "gpt-4o",
    };
    let usage = Usage {
        input_tokens: 100,
        output_tokens: 20,
        ..Usage::default()
    };
    metrics.record_request(&labels, None, Duration::from_millis(300), &usage, 0.5);
    metrics.record_request(
        &labels,
        Some("timeout"),
        Duration::from_secs(30),
        &Usage::default(),
        0.0,
    );
    metrics.set_breaker_state("openai", BreakerState::Open);
    metrics
}

#[test]
fn operation_duration_is_a_cumulative_histogram_in_seconds_on_the_genai_buckets() {
    let metrics = sent_metrics(&recorded(), &[]);
    let duration = metric(&metrics, "gen_ai.client.operation.duration");
    assert_eq!(duration.unit, "s");
    let Some(Data::Histogram(histogram)) = &duration.data else {
        panic!("a histogram");
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let [point] = histogram.data_points.as_slice() else {
        panic!("one series");
    };
    assert_eq!(point.explicit_bounds, DURATION_BUCKETS_SECONDS);
    assert_eq!(point.count, 2);
    assert_eq!(
        point.bucket_counts.len(),
        DURATION_BUCKETS_SECONDS.len() + 1
    );
    assert_eq!(
        point.bucket_counts[5], 1,
        "0.3 s in the (0.16, 0.32] bucket"
    );
    assert_eq!(
        point.bucket_counts[12], 1,
        "30 s in the (20.48, 40.96] bucket"
    );
    assert_eq!(point.start_time_unix_nano, 1_764_547_200 * 1_000_000_000);
    assert_eq!(point.time_unix_nano, 1_764_547_260 * 1_000_000_000);
    assert_eq!(
        value(&point.attributes, "gen_ai.operation.name"),
        string("chat").as_ref()
    );
    assert_eq!(
        value(&point.attributes, "gen_ai.provider.name"),
        string("openai").as_ref()
    );
    assert_eq!(
        value(&point.attributes, "gen_ai.request.model"),
        string("gpt-4o").as_ref()
    );
}

#[test]
fn token_usage_is_a_histogram_of_tokens_per_token_type() {
    let metrics = sent_metrics(&recorded(), &[]);
    let usage = metric(&metrics, "gen_ai.client.token.usage");
    assert_eq!(usage.unit, "{token}");
    let Some(Data::Histogram(histogram)) = &usage.data else {
        panic!("a histogram");
    };
    let by_type: Vec<(Option<&AnyValueKind>, u64, Option<f64>)> = histogram
        .data_points
        .iter()
        .map(|point| {
            (
                value(&point.attributes, "gen_ai.token.type"),
                point.count,
                point.sum,
            )
        })
        .collect();
    assert_eq!(
        by_type,
        [
            (string("input").as_ref(), 1, Some(100.0)),
            (string("output").as_ref(), 1, Some(20.0)),
        ]
    );
    assert!(
        histogram
            .data_points
            .iter()
            .all(|point| point.explicit_bounds == TOKEN_BUCKETS)
    );
}

#[test]
fn cost_errors_and_breaker_state_are_sums_and_gauges_with_their_units() {
    let metrics = sent_metrics(&recorded(), &[]);
    let cost = metric(&metrics, "prompt_config.cost");
    assert_eq!(cost.unit, "USD");
    let Some(Data::Sum(sum)) = &cost.data else {
        panic!("a sum");
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.data_points[0].value, Some(NumberValue::AsDouble(0.5)));

    let Some(Data::Sum(errors)) = &metric(&metrics, "prompt_config.errors").data else {
        panic!("a sum");
    };
    assert_eq!(
        value(&errors.data_points[0].attributes, "error.type"),
        string("timeout").as_ref()
    );

    let Some(Data::Gauge(breakers)) = &metric(&metrics, "prompt_config.circuit_breaker.state").data
    else {
        panic!("a gauge");
    };
    assert_eq!(breakers.data_points[0].value, Some(NumberValue::AsInt(2)));
    assert_eq!(
        value(&breakers.data_points[0].attributes, "prompt_config.breaker"),
        string("openai").as_ref()
    );
}

#[test]
fn budget_spend_ratio_counts_reserved_spend_against_the_limit() {
    let budget = BudgetStatus {
        scope: "feature:summarize".to_string(),
        period: "day".to_string(),
        period_start: "2025-12-01".to_string(),
        limit_usd: 10.0,
        settled_usd: 7.0,
        reserved_usd: 1.0,
        alerts_sent: Vec::new(),
    };
    let metrics = sent_metrics(&Metrics::new(), &[budget]);
    let ratio = metric(&metrics, "prompt_config.budget.spend_ratio");
    let Some(Data::Gauge(gauge)) = &ratio.data else {
        panic!("a gauge");
    };
    let [point] = gauge.data_points.as_slice() else {
        panic!("one budget");
    };
    assert_eq!(point.value, Some(NumberValue::AsDouble(0.8)));
    assert_eq!(
        value(&point.attributes, "prompt_config.budget.scope"),
        string("feature:summarize").as_ref()
    );
    assert_eq!(
        value(&point.attributes, "prompt_config.budget.period"),
        string("day").as_ref()
    );
}

#[test]
fn time_to_first_chunk_is_sent_only_for_series_that_streamed() {
    let metrics = sent_metrics(&recorded(), &[]);
    assert!(
        metrics
            .iter()
            .all(|metric| metric.name != "gen_ai.client.operation.time_to_first_chunk")
    );
    let streamed = recorded();
    let labels = RequestLabels {
        feature: "summarize",
        version: "v2",
        variant: None,
        provider: "openai",
        model: "gpt-4o",
    };
    streamed.record_stream(&labels, Duration::from_millis(150), None);
    let metrics = sent_metrics(&streamed, &[]);
    let first_chunk = metric(&metrics, "gen_ai.client.operation.time_to_first_chunk");
    assert_eq!(first_chunk.unit, "s");
    let Some(Data::Histogram(histogram)) = &first_chunk.data else {
        panic!("a histogram");
    };
    assert_eq!(histogram.data_points[0].count, 1);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("\0".to_string()),
            "\\PC{0,40}",
            Just("x".repeat(100_000)),
        ]
    }

    fn latency() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-1.0),
            Just(f64::MAX),
            0.0..1.0e7f64,
        ]
    }

    proptest! {
        /// Whatever the strings and latencies of a call, its spans encode and decode, stay in
        /// one trace, and never end before they start.
        #[test]
        fn any_call_converts_to_spans_that_round_trip(
            request_id in text(),
            feature_name in text(),
            model in text(),
            attempt_latency in latency(),
            request_latency in latency(),
        ) {
            let mut converter = converter();
            let mut first = attempt(1, 10, attempt_latency, None, None);
            let mut last = request(1000, request_latency, None);
            first.request_id.clone_from(&request_id);
            last.request_id.clone_from(&request_id);
            if let EventBody::Attempt(fields) = &mut first.body {
                fields.model.clone_from(&model);
            }
            if let EventBody::Request(fields) = &mut last.body {
                fields.feature.feature.clone_from(&feature_name);
                fields.input_messages = Some(json!([{"role": "user", "content": feature_name}]));
            }
            converter.push(&first);
            converter.push(&last);
            let (_, spans) = sent_spans(&mut converter);
            prop_assert_eq!(spans.len(), 3);
            let trace = TraceContext::root_for(&request_id).trace_id.0.to_vec();
            for span in &spans {
                prop_assert_eq!(&span.trace_id, &trace);
                prop_assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
            }
        }

        /// Any feedback value (numbers of every size, NUL bytes, empty strings, nesting)
        /// becomes a log record that encodes and decodes.
        #[test]
        fn any_feedback_value_is_a_log_record_that_round_trips(
            value in prop_oneof![
                any::<i64>().prop_map(|number| json!(number)),
                any::<u64>().prop_map(|number| json!(number)),
                any::<f64>().prop_filter("JSON numbers are finite", |number| number.is_finite())
                    .prop_map(|number| json!(number)),
                text().prop_map(|text| json!(text)),
                text().prop_map(|text| json!({"nested": [text, null, {}]})),
                Just(json!([])),
            ],
            metric_name in text(),
        ) {
            let mut converter = converter();
            converter.push(&record(
                "feedback",
                at(0),
                EventBody::Feedback(Box::new(FeedbackFields {
                    metric: metric_name,
                    value,
                    request: None,
                })),
            ));
            let logs = sent_logs(&mut converter);
            prop_assert_eq!(logs.len(), 1);
            prop_assert_eq!(logs[0].event_name.as_str(), "feedback");
        }
    }
}
