//! `Provider::stream` of the `anthropic` kind (Messages API) against a loopback server sending
//! Server-Sent Events: the request, text deltas, usage from `message_start` and
//! `message_delta`, pings and unknown events ignored, `error` events, and a stream cut short.

use prompt_config::client::{FailureKind, FinishReason, UsageReported};
use serde_json::json;

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{anthropic, anthropic_error, anthropic_success};
use crate::support::sse_fixtures::{
    anthropic_error_event, anthropic_events, anthropic_message_delta, anthropic_start,
    anthropic_stop, anthropic_text, named, stream,
};

#[test]
fn an_anthropic_stream_yields_text_deltas_then_the_whole_response() {
    let server = TestServer::start(vec![Reply::events(anthropic_events(&["Hello", ", world"]))]);
    let read = stream(&anthropic(&server));
    assert_eq!(read.deltas, ["Hello", ", world"]);
    let response = read.response();
    assert_eq!(response.text, "Hello, world");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.raw_finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(response.response_id.as_deref(), Some("msg_01Stream"));
    assert_eq!(
        response.response_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
}

#[test]
fn usage_joins_the_input_of_message_start_and_the_output_of_message_delta() {
    let server = TestServer::start(vec![Reply::events(anthropic_events(&["Hi"]))]);
    let response = stream(&anthropic(&server)).response().clone();
    // Input as `call()` counts it: uncached 25 + cache reads 1500 + cache writes 100.
    assert_eq!(response.usage.input_tokens, 1625);
    assert_eq!(response.usage.cache_read_input_tokens, 1500);
    assert_eq!(response.usage.cache_creation_input_tokens, 100);
    assert_eq!(response.usage.output_tokens, 15);
    assert_eq!(response.usage_reported, UsageReported::ALL);
}

#[test]
fn the_stream_request_sets_stream_and_asks_for_an_event_stream() {
    let server = TestServer::start(vec![Reply::events(anthropic_events(&["Hi"]))]);
    stream(&anthropic(&server)).response();
    let request = server.single_request();
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("x-api-key"), Some("sk-test-SECRET-1234"));
    assert_eq!(request.json()["stream"], json!(true));
    assert_eq!(request.json()["max_tokens"], json!(1024));
}

#[test]
fn pings_and_unknown_event_types_are_ignored() {
    let events = vec![
        anthropic_start(Some(json!({"input_tokens": 5, "output_tokens": 1}))),
        named("ping", &json!({"type": "ping"})),
        anthropic_text("A"),
        named(
            "future_event",
            &json!({"type": "future_event", "payload": [1, 2]}),
        ),
        "event: another_new_event\ndata: not even json\n\n".to_string(),
        anthropic_text("B"),
        anthropic_message_delta("end_turn", 2),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&anthropic(&server));
    assert_eq!(read.deltas, ["A", "B"]);
    assert_eq!(read.response().text, "AB");
}

#[test]
fn deltas_other_than_text_are_skipped_without_failing() {
    let events = vec![
        anthropic_start(None),
        named(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        ),
        named(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\""}}),
        ),
        anthropic_text("Answer"),
        anthropic_message_delta("end_turn", 3),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&anthropic(&server));
    assert_eq!(read.deltas, ["Answer"]);
}

#[test]
fn an_error_event_mid_stream_fails_as_error_in_body_with_its_type() {
    let events = vec![
        anthropic_start(None),
        anthropic_text("Partial"),
        anthropic_error_event("overloaded_error", "Overloaded"),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&anthropic(&server));
    assert_eq!(read.deltas, ["Partial"]);
    let error = read.error();
    assert_eq!(error.kind, FailureKind::ErrorInBody);
    assert_eq!(
        error.provider_error_type.as_deref(),
        Some("overloaded_error")
    );
    assert!(error.message.contains("Overloaded"), "{}", error.message);
}

#[test]
fn an_error_event_before_any_text_fails_the_same_way() {
    let events = vec![anthropic_error_event("api_error", "Internal server error")];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&anthropic(&server));
    assert!(read.deltas.is_empty());
    assert_eq!(
        read.error().provider_error_type.as_deref(),
        Some("api_error")
    );
}

#[test]
fn a_stream_without_message_stop_is_malformed() {
    let mut events = anthropic_events(&["one", "two", "three"]);
    events.pop();
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&anthropic(&server));
    assert_eq!(read.deltas.len(), 3);
    let error = read.error();
    assert_eq!(error.kind, FailureKind::Malformed);
    assert_eq!(
        error.message,
        "stream ended before its terminal event (after 3 chunks)"
    );
}

#[test]
fn a_stream_without_usage_leaves_it_unreported_for_the_estimate() {
    let events = vec![
        anthropic_start(None),
        anthropic_text("x"),
        named(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}}),
        ),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let response = stream(&anthropic(&server)).response().clone();
    assert_eq!(response.usage_reported, UsageReported::default());
    assert_eq!(response.finish_reason, Some(FinishReason::Length));
}

#[test]
fn a_refusal_stop_reason_makes_the_text_the_refusal() {
    let events = vec![
        anthropic_start(None),
        anthropic_text("I can't help with that."),
        anthropic_message_delta("refusal", 6),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let response = stream(&anthropic(&server)).response().clone();
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(response.refusal.as_deref(), Some("I can't help with that."));
}

#[test]
fn an_overloaded_529_before_the_stream_is_classified_as_call_classifies_it() {
    let body = anthropic_error("overloaded_error", "Overloaded");
    let server = TestServer::start(vec![Reply::json(529, &body)]);
    let error = stream(&anthropic(&server)).error().clone();
    assert_eq!((error.kind, error.status), (FailureKind::Http, Some(529)));
    assert_eq!(
        error.provider_error_type.as_deref(),
        Some("overloaded_error")
    );
}

#[test]
fn a_json_message_to_a_stream_request_is_replayed_as_one_delta() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    let read = stream(&anthropic(&server));
    assert_eq!(read.deltas, ["Green."]);
    assert_eq!(read.response().usage.output_tokens, 393);
}
