//! `Provider::stream` of the OpenAI Chat Completions kinds (`openai`, `openai_compatible`)
//! against a loopback server sending Server-Sent Events: the request, deltas, the final response
//! built as `call()` builds it, and every way the stream can fail before or after it starts.

use prompt_config::client::{FailureKind, FinishReason, OpenAiProvider, UsageReported};
use serde_json::{Value, json};
use std::time::Duration;

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    fresh_transport, openai, openai_error, openai_success, spec,
};
use crate::support::sse_fixtures::{
    DONE, data, openai_chunk, openai_events, openai_usage_chunk, stream,
};

#[test]
fn an_openai_stream_yields_its_deltas_in_order_then_the_whole_response() {
    let events = openai_events(&["Gre", "en", "."], Some((19, 3, 0)));
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&openai(&server));
    assert_eq!(read.deltas, ["Gre", "en", "."]);
    let response = read.response();
    assert_eq!(response.text, "Green.");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.raw_finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.response_id.as_deref(), Some("chatcmpl-stream-1"));
    assert_eq!(
        response.response_model.as_deref(),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert_eq!(response.refusal, None);
}

#[test]
fn the_stream_request_asks_for_an_event_stream_with_usage() {
    let server = TestServer::start(vec![Reply::events(openai_events(&["a"], None))]);
    stream(&openai(&server)).response();
    let request = server.single_request();
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk-test-SECRET-1234")
    );
    assert_eq!(request.header("x-request-id"), Some("request-42"));
    let body = request.json();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["model"], json!("test-model"));
}

#[test]
fn usage_comes_from_the_last_chunk_with_cached_tokens() {
    let events = openai_events(&["Hi"], Some((2006, 300, 1920)));
    let server = TestServer::start(vec![Reply::events(events)]);
    let response = stream(&openai(&server)).response().clone();
    assert_eq!(response.usage.input_tokens, 2006);
    assert_eq!(response.usage.output_tokens, 300);
    assert_eq!(response.usage.cache_read_input_tokens, 1920);
    assert_eq!(response.usage_reported, UsageReported::ALL);
}

#[test]
fn a_stream_without_usage_leaves_it_unreported_for_the_estimate() {
    let server = TestServer::start(vec![Reply::events(openai_events(&["Hi"], None))]);
    let response = stream(&openai(&server)).response().clone();
    assert_eq!(response.usage_reported, UsageReported::default());
    assert_eq!(response.usage.input_tokens, 0);
}

#[test]
fn a_finish_reason_in_a_late_chunk_is_mapped_as_call_maps_it() {
    let events = vec![
        openai_chunk(json!({"content": "Once upon"}), Value::Null),
        openai_chunk(json!({}), json!("length")),
        openai_usage_chunk(10, 2, 0),
        DONE.to_string(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let response = stream(&openai(&server)).response().clone();
    assert_eq!(response.finish_reason, Some(FinishReason::Length));
    assert_eq!(response.text, "Once upon");
}

#[test]
fn refusal_deltas_become_the_refusal_and_no_text() {
    let events = vec![
        openai_chunk(
            json!({"role": "assistant", "refusal": "I can't "}),
            Value::Null,
        ),
        openai_chunk(json!({"refusal": "help with that."}), Value::Null),
        openai_chunk(json!({}), json!("stop")),
        DONE.to_string(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&openai(&server));
    assert!(read.deltas.is_empty());
    let response = read.response();
    assert_eq!(response.text, "");
    assert_eq!(response.refusal.as_deref(), Some("I can't help with that."));
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
}

#[test]
fn an_error_object_in_a_data_line_fails_as_error_in_body_with_its_type() {
    let events = vec![
        openai_chunk(json!({"content": "Half"}), Value::Null),
        data(
            &json!({"error": {"message": "Upstream overloaded", "type": "server_error", "code": null}}),
        ),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&openai(&server));
    assert_eq!(read.deltas, ["Half"]);
    let error = read.error();
    assert_eq!(error.kind, FailureKind::ErrorInBody);
    assert_eq!(error.provider_error_type.as_deref(), Some("server_error"));
    assert!(
        error.message.contains("Upstream overloaded"),
        "{}",
        error.message
    );
}

#[test]
fn a_rate_limit_error_in_a_data_line_keeps_the_gateways_type() {
    let events = vec![data(
        &json!({"error": {"message": "slow down", "type": "rate_limit_exceeded"}}),
    )];
    let server = TestServer::start(vec![Reply::events(events)]);
    let error = stream(&openai(&server)).error().clone();
    assert_eq!(error.kind, FailureKind::ErrorInBody);
    assert_eq!(
        error.provider_error_type.as_deref(),
        Some("rate_limit_exceeded")
    );
}

#[test]
fn a_stream_that_ends_without_done_is_malformed_and_counts_its_chunks() {
    let mut events = openai_events(&["a", "b"], Some((5, 2, 0)));
    events.pop();
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&openai(&server));
    assert_eq!(read.deltas, ["a", "b"]);
    let error = read.error();
    assert_eq!(error.kind, FailureKind::Malformed);
    assert_eq!(
        error.message,
        "stream ended before its terminal event (after 2 chunks)"
    );
}

#[test]
fn an_empty_stream_is_malformed_not_an_empty_answer() {
    let server = TestServer::start(vec![Reply::events(Vec::<String>::new())]);
    let error = stream(&openai(&server)).error().clone();
    assert_eq!(error.kind, FailureKind::Malformed);
    assert!(
        error.message.contains("after 0 chunks"),
        "{}",
        error.message
    );
}

#[test]
fn an_openai_compatible_provider_streams_too() {
    let server = TestServer::start(vec![Reply::events(openai_events(&["ok"], None))]);
    let spec = spec("openai_compatible", &format!("{}/v1", server.url()));
    let provider = OpenAiProvider::with_api_key(&spec, fresh_transport(), None);
    let read = stream(&provider);
    assert_eq!(read.deltas, ["ok"]);
    assert_eq!(read.response().text, "ok");
    let request = server.single_request();
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.json()["stream"], json!(true));
}

#[test]
fn a_json_answer_to_a_stream_request_is_replayed_as_one_delta() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let read = stream(&openai(&server));
    assert_eq!(read.deltas, ["Green."]);
    let response = read.response();
    assert_eq!(response.text, "Green.");
    assert_eq!(response.usage.input_tokens, 2006);
}

#[test]
fn a_500_before_the_stream_is_classified_as_call_classifies_it() {
    let body = openai_error("The server had an error", "server_error", Value::Null);
    let server = TestServer::start(vec![Reply::json(500, &body)]);
    let error = stream(&openai(&server)).error().clone();
    assert_eq!((error.kind, error.status), (FailureKind::Http, Some(500)));
    assert_eq!(error.provider_error_type.as_deref(), Some("server_error"));
}

#[test]
fn a_429_with_retry_after_before_the_stream_keeps_the_delay() {
    let body = openai_error(
        "Rate limit reached",
        "requests",
        json!("rate_limit_exceeded"),
    );
    let server = TestServer::start(vec![Reply::json(429, &body).header("retry-after", "7")]);
    let error = stream(&openai(&server)).error().clone();
    assert_eq!((error.kind, error.status), (FailureKind::Http, Some(429)));
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
}

#[test]
fn a_context_length_400_before_the_stream_is_context_length() {
    let body = openai_error(
        "This model's maximum context length is 128000 tokens.",
        "invalid_request_error",
        json!("context_length_exceeded"),
    );
    let server = TestServer::start(vec![Reply::json(400, &body)]);
    let error = stream(&openai(&server)).error().clone();
    assert_eq!(error.kind, FailureKind::ContextLength);
}

#[test]
fn a_missing_key_fails_before_any_request() {
    let server = TestServer::start(vec![]);
    let spec = spec("openai", &format!("{}/v1", server.url()));
    let provider = OpenAiProvider::with_api_key(&spec, fresh_transport(), None);
    let error = stream(&provider).error().clone();
    assert_eq!(error.kind, FailureKind::MissingApiKey);
    assert_eq!(server.connections(), 0);
}

#[test]
fn an_error_event_echoing_the_key_is_redacted() {
    let events = vec![data(
        &json!({"error": {"message": "Incorrect API key provided: sk-test-SECRET-1234", "type": "invalid_request_error"}}),
    )];
    let server = TestServer::start(vec![Reply::events(events)]);
    let error = stream(&openai(&server)).error().clone();
    assert!(
        !error.message.contains("sk-test-SECRET-1234"),
        "{}",
        error.message
    );
}
