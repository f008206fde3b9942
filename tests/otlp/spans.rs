//! Spans through a real engine and the exporter (helper H2): a call that fails over from
//! `openai` (503) to `anthropic` arrives at the collector as one request span with a resolve
//! span and one `chat {model}` client span per attempt, in the caller's trace when the context
//! carries a `traceparent`; an unsampled caller trace sends nothing; text only under
//! `record_text`.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prompt_config::resolve::span_id;
use prompt_config::{Context, SpanRole, TraceContext};
use serde_json::Value;

use super::exporting::{CALLER, WAIT, engine, record_text};
use crate::support::engine_faults::{Setup, TEXT, anthropic_success, openai_error, set_keys};
use crate::support::http_server::TestServer;
use crate::support::otlp_collector::OtlpCollector;

/// A call failing over from openai (503) to anthropic, with `context`; the spans sent.
fn failed_over_call(context: Context, text: bool) -> (String, Vec<Span>) {
    set_keys();
    let collector = OtlpCollector::start();
    let openai = TestServer::start(vec![openai_error(503, "busy", Value::Null)]);
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let setup = Setup::both(&openai, &anthropic);
    if text {
        record_text(&setup);
    }
    let engine = engine(&setup, &collector);
    let completion = engine
        .complete("summary", &context.variable("text", TEXT))
        .expect("the fallback answers");
    engine.close();
    let request_id = completion.resolution.request_id.clone();
    collector.wait_until(WAIT, |requests| {
        requests.iter().any(|request| request.path == "/v1/traces")
    });
    (request_id, collector.spans())
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name} among {names:?}"))
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValueKind> {
    attributes
        .iter()
        .find(|pair| pair.key == key)
        .and_then(|pair| pair.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn string(text: &str) -> Option<AnyValueKind> {
    Some(AnyValueKind::StringValue(text.to_string()))
}

#[test]
fn a_failed_over_call_is_a_request_span_with_resolve_and_a_chat_span_per_attempt() {
    let (request_id, spans) = failed_over_call(Context::new("user-1"), false);
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let trace = TraceContext::root_for(&request_id).trace_id.0.to_vec();
    assert!(spans.iter().all(|span| span.trace_id == trace));

    let parent = named(&spans, "prompt_config.complete summary");
    assert_eq!(
        parent.span_id,
        span_id(&request_id, SpanRole::Request).0.to_vec()
    );
    assert!(parent.parent_span_id.is_empty());
    assert_eq!(parent.kind, SpanKind::Internal as i32);
    assert!(parent.end_time_unix_nano > parent.start_time_unix_nano);

    let resolve = named(&spans, "prompt_config.resolve summary");
    assert_eq!(resolve.parent_span_id, parent.span_id);

    let failed = named(&spans, "chat gpt-test");
    let answered = named(&spans, "chat claude-test");
    for (span, number) in [(failed, 1), (answered, 2)] {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.parent_span_id, parent.span_id);
        assert_eq!(
            span.span_id,
            span_id(&request_id, SpanRole::Attempt(number)).0.to_vec()
        );
        assert!(span.start_time_unix_nano >= parent.start_time_unix_nano);
        assert!(span.end_time_unix_nano <= parent.end_time_unix_nano);
    }
    assert!(resolve.end_time_unix_nano <= failed.start_time_unix_nano);
    assert_eq!(
        value(&failed.attributes, "error.type"),
        string("503").as_ref()
    );
    assert_eq!(
        value(&failed.attributes, "http.response.status_code"),
        Some(&AnyValueKind::IntValue(503))
    );
    assert_eq!(
        failed.status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(
        value(&answered.attributes, "gen_ai.provider.name"),
        string("anthropic").as_ref()
    );
    assert_eq!(
        value(&answered.attributes, "gen_ai.response.id"),
        string("msg_fault_1").as_ref()
    );
    assert_eq!(
        value(&answered.attributes, "gen_ai.usage.input_tokens"),
        Some(&AnyValueKind::IntValue(20))
    );
    assert_eq!(
        value(&parent.attributes, "gen_ai.prompt.name"),
        string("summary").as_ref()
    );
    assert_eq!(
        value(&parent.attributes, "prompt_config.outcome"),
        string("success").as_ref()
    );
}

#[test]
fn a_callers_traceparent_makes_the_request_span_a_child_of_the_callers_span() {
    let caller = TraceContext::parse_traceparent(CALLER).expect("a valid traceparent");
    let context = Context::new("user-1").with_trace_context(caller);
    let (_, spans) = failed_over_call(context, false);
    assert_eq!(spans.len(), 4);
    assert!(
        spans
            .iter()
            .all(|span| span.trace_id == caller.trace_id.0.to_vec())
    );
    let parent = named(&spans, "prompt_config.complete summary");
    let caller_span = caller.parent_span_id.expect("the caller's span");
    assert_eq!(parent.parent_span_id, caller_span.0.to_vec());
}

#[test]
fn a_trace_the_caller_did_not_sample_sends_no_span() {
    set_keys();
    let caller = TraceContext::parse_traceparent(&CALLER.replace("-01", "-00"))
        .expect("a valid traceparent");
    let collector = OtlpCollector::start();
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let openai = TestServer::start(vec![openai_error(503, "busy", Value::Null)]);
    let setup = Setup::both(&openai, &anthropic);
    let engine = engine(&setup, &collector);
    let context = Context::new("user-1").with_trace_context(caller);
    engine
        .complete("summary", &context.variable("text", TEXT))
        .expect("the fallback answers");
    engine.close();
    assert!(collector.spans().is_empty());
}

#[test]
fn prompt_and_answer_text_are_a_span_event_only_under_record_text() {
    let (_, spans) = failed_over_call(Context::new("user-1"), false);
    assert!(spans.iter().all(|span| span.events.is_empty()));
    assert!(
        spans
            .iter()
            .all(|span| value(&span.attributes, "gen_ai.input.messages").is_none())
    );

    let (_, spans) = failed_over_call(Context::new("user-1"), true);
    let parent = named(&spans, "prompt_config.complete summary");
    let [event] = parent.events.as_slice() else {
        panic!("one details event: {:?}", parent.events);
    };
    assert_eq!(event.name, "gen_ai.client.inference.operation.details");
    assert!(value(&event.attributes, "gen_ai.input.messages").is_some());
    assert!(value(&event.attributes, "gen_ai.output.messages").is_some());
}

#[test]
fn a_bare_resolve_is_one_root_span() {
    set_keys();
    let collector = OtlpCollector::start();
    let openai = TestServer::start(Vec::new());
    let setup = Setup::openai_only(&openai);
    let engine = engine(&setup, &collector);
    let resolution = engine
        .resolve("summary", &Context::new("user-1").variable("text", TEXT))
        .expect("the feature resolves");
    engine.close();
    collector.wait_until(WAIT, |requests| {
        requests.iter().any(|request| request.path == "/v1/traces")
    });
    let spans = collector.spans();
    let [span] = spans.as_slice() else {
        panic!("one span: {spans:#?}");
    };
    assert_eq!(span.name, "prompt_config.resolve summary");
    assert!(span.parent_span_id.is_empty());
    assert_eq!(
        span.span_id,
        span_id(&resolution.request_id, SpanRole::Resolve)
            .0
            .to_vec()
    );
}

#[test]
fn a_call_refused_before_any_model_call_is_an_error_request_span_without_chat_spans() {
    set_keys();
    let collector = OtlpCollector::start();
    let openai = TestServer::start(Vec::new());
    let anthropic = TestServer::start(Vec::new());
    let setup = Setup::both(&openai, &anthropic);
    let engine = engine(&setup, &collector);
    let error = engine
        .complete("summary", &Context::new("user-1"))
        .expect_err("the text variable is missing");
    assert_eq!(error.kind().as_str(), "missing_variable");
    engine.close();
    collector.wait_until(WAIT, |requests| {
        requests.iter().any(|request| request.path == "/v1/traces")
    });
    let spans = collector.spans();
    let parent = named(&spans, "prompt_config.complete summary");
    assert_eq!(
        value(&parent.attributes, "error.type"),
        string("missing_variable").as_ref()
    );
    assert_eq!(
        parent.status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32)
    );
    assert!(
        spans.iter().all(|span| !span.name.starts_with("chat ")),
        "no model was called: {spans:#?}"
    );
    assert!(openai.requests().is_empty() && anthropic.requests().is_empty());
}
