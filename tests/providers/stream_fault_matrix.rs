//! The fault matrix of `Engine::stream` over the real `openai`, `anthropic` and
//! `openai_compatible` providers, each pointed at a scripted loopback event-stream server.
//! Before the first token every fault is an ordinary attempt failure (retry, Retry-After,
//! failover); after it a cut, a stall, an `error` event or a missing terminal event ends the
//! call as `stream_incomplete` with the text received, counted by the breaker, or restarts on
//! the next model when `restart_on_incomplete` says so; the call's deadline ends a steady
//! stream; a budget refuses a stream before any request; a JSON answer is replayed; streams
//! reuse a connection, never a stopped one. Real clock, short limits; nothing
//! leaves 127.0.0.1. Usage, cancellation, stream statistics and key secrecy are in
//! `stream_engine.rs`.

use std::time::{Duration, Instant};

use crate::support::engine_faults::{
    ANTHROPIC, MARGIN, OPENAI, OPENAI_KEY_VARIABLE, Row, dead_url, fault, http_failed,
    openai_error, openai_provider, provider, providers, row, rows, set_keys, state_of, succeeded,
};
use crate::support::http_server::{Reply, TestServer};
use crate::support::sse_fixtures::{
    DONE, anthropic_error_event, anthropic_events, anthropic_start, data, named, openai_chunk,
    openai_events,
};
use crate::support::stream_engine::{
    ANTHROPIC_TEXT, ANTHROPIC_TEXTS, FIRST_TOKEN_MS, STALL_MS, Seen, anthropic_stream, stream,
    stream_setup, stream_until, with_stream_limits,
};
use prompt_config::ErrorKind;
use prompt_config::client::AttemptOutcome::StreamIncomplete;
use prompt_config::client::{BreakerState, CancelToken};
use serde_json::{Value, json};

/// The deltas every broken stream of these tests sends before it breaks.
const PARTIAL: &[&str] = &["Hel", "lo"];

/// `openai` primary (answering `openai_reply`), `anthropic` fallback streaming
/// [`ANTHROPIC_TEXTS`]: the call succeeds on anthropic with exactly `expected` attempts.
fn assert_fails_over_before_the_first_token(openai_reply: Reply, expected: [Row; 2]) {
    set_keys();
    let openai = TestServer::start(vec![openai_reply]);
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let setup = stream_setup(
        providers(Some(&openai), Some(&anthropic)),
        &[OPENAI, ANTHROPIC],
    );
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    assert_eq!(rows(&completion.attempts), expected);
    assert_eq!(streamed.deltas(), ANTHROPIC_TEXTS, "no delta of openai");
    assert_eq!(completion.text, ANTHROPIC_TEXT);
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(completion.attempts[0].stream, None, "no text arrived");
    assert_eq!(openai.requests().len(), 1, "failed over without a retry");
}

#[test]
fn connection_refused_before_the_first_token_fails_over() {
    set_keys();
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let mut config = providers(None, Some(&anthropic));
    config["providers"]["openai"] = openai_provider(&dead_url());
    let setup = stream_setup(config, &[OPENAI, ANTHROPIC]);
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    let expected = [fault("openai", "connect"), succeeded("anthropic")];
    assert_eq!(rows(&completion.attempts), expected);
    assert_eq!(completion.text, ANTHROPIC_TEXT);
}

#[test]
fn a_500_before_the_first_token_fails_over() {
    let reply = openai_error(500, "server error", Value::Null);
    let expected = [http_failed("openai", 500), succeeded("anthropic")];
    assert_fails_over_before_the_first_token(reply, expected);
}

#[test]
fn an_openai_429_with_retry_after_ms_is_waited_and_the_stream_retried_on_the_same_provider() {
    set_keys();
    let limited = openai_error(429, "slow down", json!("rate_limit_exceeded"))
        .header("retry-after-ms", "300");
    let openai = TestServer::start(vec![limited, Reply::events(openai_events(&["ok"], None))]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let started = Instant::now();
    let streamed = stream(&setup.engine());
    let elapsed = started.elapsed();
    let completion = streamed.completion();
    let expected = [http_failed("openai", 429), succeeded("openai")];
    assert_eq!(rows(&completion.attempts), expected);
    let retry = &completion.attempts[1];
    assert!((retry.wait_ms - 300.0).abs() < 1e-6, "{retry:?}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert_eq!(completion.text, "ok");
}

#[test]
fn an_anthropic_429_with_retry_after_seconds_is_waited_and_the_stream_retried() {
    set_keys();
    let error = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}});
    let limited = Reply::json(429, &error).header("Retry-After", "1");
    let anthropic = TestServer::start(vec![limited, anthropic_stream()]);
    let setup = stream_setup(providers(None, Some(&anthropic)), &[ANTHROPIC]);
    let started = Instant::now();
    let streamed = stream(&setup.engine());
    let elapsed = started.elapsed();
    let completion = streamed.completion();
    let expected = [http_failed("anthropic", 429), succeeded("anthropic")];
    assert_eq!(rows(&completion.attempts), expected);
    let retry = &completion.attempts[1];
    assert!((retry.wait_ms - 1000.0).abs() < 1e-6, "{retry:?}");
    assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
    assert_eq!(streamed.deltas(), ANTHROPIC_TEXTS);
}

#[test]
fn headers_without_text_within_the_first_token_limit_fail_over_as_a_timeout() {
    // The role chunk arrives at once, the first text seconds later.
    let reply =
        Reply::events(openai_events(&["late"], None)).delay_before_event(1, Duration::from_secs(3));
    let expected = [fault("openai", "timeout"), succeeded("anthropic")];
    set_keys();
    let openai = TestServer::start(vec![reply]);
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let setup = stream_setup(
        providers(Some(&openai), Some(&anthropic)),
        &[OPENAI, ANTHROPIC],
    );
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    assert_eq!(rows(&completion.attempts), expected);
    assert_eq!(completion.text, ANTHROPIC_TEXT);
    let first = &completion.attempts[0];
    let bound = (Duration::from_millis(FIRST_TOKEN_MS) + MARGIN).as_secs_f64() * 1000.0;
    assert!(
        first.latency_ms >= FIRST_TOKEN_MS as f64 - 1.0 && first.latency_ms < bound,
        "{first:?}"
    );
}

#[test]
fn an_openai_error_object_before_any_text_fails_over() {
    let role = openai_chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let error = data(&json!({"error": {"message": "overloaded", "type": "server_error"}}));
    let reply = Reply::events([role, error]);
    let expected = [fault("openai", "error_in_body"), succeeded("anthropic")];
    assert_fails_over_before_the_first_token(reply, expected);
}

#[test]
fn an_anthropic_overloaded_error_event_before_any_text_fails_over() {
    set_keys();
    let events = [
        anthropic_start(Some(json!({"input_tokens": 20, "output_tokens": 1}))),
        anthropic_error_event("overloaded_error", "Overloaded"),
    ];
    let anthropic = TestServer::start(vec![Reply::events(events)]);
    let openai = TestServer::start(vec![Reply::events(openai_events(&["ok"], None))]);
    let setup = stream_setup(
        providers(Some(&openai), Some(&anthropic)),
        &[ANTHROPIC, OPENAI],
    );
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    let expected = [fault("anthropic", "error_in_body"), succeeded("openai")];
    assert_eq!(rows(&completion.attempts), expected);
    assert_eq!(streamed.deltas(), ["ok"]);
}

#[test]
fn a_stream_that_ends_before_any_text_fails_over() {
    // The role chunk, then the end of the body: no text, no `[DONE]`.
    let role = openai_chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let expected = [fault("openai", "malformed"), succeeded("anthropic")];
    assert_fails_over_before_the_first_token(Reply::events([role]), expected);
}

/// A single-model `chain` of `config`, whose server answers every request with the same
/// broken stream: three calls each end as `stream_incomplete` with `partial` (the deltas received)
/// and an attempt `stream_incomplete`/`error_type` carrying its stream statistics, and the
/// three failures open the breaker (3 consecutive failures).
fn assert_incomplete_after_the_first_token(
    config: Value,
    chain: (&str, &str),
    partial: &[&str],
    error_type: &str,
) {
    set_keys();
    let setup = stream_setup(config, &[chain]);
    let engine = setup.engine();
    for call in 0..3 {
        let streamed = stream(&engine);
        assert_eq!(streamed.deltas(), partial, "call {call}");
        let (kind, interruption) = streamed.interruption();
        assert_eq!(kind, ErrorKind::StreamIncomplete, "call {call}");
        assert_eq!(interruption.partial_text, partial.concat(), "call {call}");
        let broken = row(chain.0, StreamIncomplete, None, Some(error_type));
        assert_eq!(rows(&interruption.attempts), [broken], "call {call}");
        let stats = interruption.attempts[0].stream.expect("stream statistics");
        assert_eq!(stats.chunks, partial.len() as u64, "call {call}");
        assert!(stats.time_to_first_token_ms > 0.0, "call {call}: {stats:?}");
    }
    assert_eq!(state_of(&engine, chain.0), BreakerState::Open);
    let opened = format!(
        "{}: Closed -> Open (consecutive_failures, Some(10000))",
        chain.0
    );
    assert_eq!(setup.events.transitions(), [opened]);
}

/// `reply` to every request of an openai-only configuration.
fn openai_answering(reply: Reply) -> (TestServer, Value) {
    let server = TestServer::start_with_fallback(vec![], reply);
    let config = providers(Some(&server), None);
    (server, config)
}

/// `reply` to every request of an anthropic-only configuration.
fn anthropic_answering(reply: Reply) -> (TestServer, Value) {
    let server = TestServer::start_with_fallback(vec![], reply);
    let config = providers(None, Some(&server));
    (server, config)
}

#[test]
fn a_connection_cut_after_the_first_token_is_stream_incomplete_and_counted_by_the_breaker() {
    // Role chunk, "Hel", "lo", then the connection closes.
    let reply = Reply::events(openai_events(&["Hel", "lo", " world"], None)).cut_after(3);
    let (_server, config) = openai_answering(reply);
    assert_incomplete_after_the_first_token(config, OPENAI, PARTIAL, "malformed");
}

#[test]
fn a_stall_longer_than_the_limit_after_the_first_token_is_stream_incomplete() {
    // Role chunk, "Hel", "lo", then a gap of seconds before " world".
    let reply = Reply::events(openai_events(&["Hel", "lo", " world"], None))
        .delay_before_event(3, Duration::from_millis(STALL_MS * 10));
    let (_server, config) = openai_answering(reply);
    assert_incomplete_after_the_first_token(config, OPENAI, PARTIAL, "timeout");
}

#[test]
fn an_anthropic_overloaded_error_event_after_the_first_token_is_stream_incomplete() {
    // message_start, block start, ping, "Hel", "lo", then the error event.
    let mut events = anthropic_events(&["Hel", "lo"]);
    events.truncate(5);
    events.push(anthropic_error_event("overloaded_error", "Overloaded"));
    let (_server, config) = anthropic_answering(Reply::events(events));
    assert_incomplete_after_the_first_token(config, ANTHROPIC, PARTIAL, "error_in_body");
}

#[test]
fn an_openai_error_object_after_the_first_token_is_stream_incomplete() {
    let mut events = openai_events(&["Hel", "lo"], None);
    events.truncate(3);
    events.push(data(
        &json!({"error": {"message": "The server had an error", "type": "server_error"}}),
    ));
    let (_server, config) = openai_answering(Reply::events(events));
    assert_incomplete_after_the_first_token(config, OPENAI, PARTIAL, "error_in_body");
}

#[test]
fn an_openai_stream_without_done_is_stream_incomplete() {
    // Every chunk with `finish_reason: stop`, the body ends properly, but no `[DONE]`.
    let mut events = openai_events(&["Hel", "lo"], None);
    assert_eq!(events.pop().as_deref(), Some(DONE));
    let (_server, config) = openai_answering(Reply::events(events));
    assert_incomplete_after_the_first_token(config, OPENAI, PARTIAL, "malformed");
}

#[test]
fn an_anthropic_stream_without_message_stop_is_stream_incomplete() {
    let mut events = anthropic_events(&["Hel", "lo"]);
    let last = events.pop().expect("message_stop");
    assert!(last.starts_with("event: message_stop"), "{last}");
    let (_server, config) = anthropic_answering(Reply::events(events));
    assert_incomplete_after_the_first_token(config, ANTHROPIC, PARTIAL, "malformed");
}

#[test]
fn an_openai_compatible_stream_cut_after_the_first_token_is_stream_incomplete() {
    let reply = Reply::events(openai_events(&["Hel", "lo", " world"], None)).cut_after(3);
    let server = TestServer::start_with_fallback(vec![], reply);
    let gateway = provider(
        "openai_compatible",
        &format!("{}/v1", server.url()),
        OPENAI_KEY_VARIABLE,
        &["gw-model"],
    );
    let config = json!({"client": {"deadline_ms": 3000}, "providers": {"gateway": gateway}});
    let chain = ("gateway", "gw-model");
    assert_incomplete_after_the_first_token(config, chain, PARTIAL, "malformed");
    let request = server.requests()[0].json();
    assert_eq!(request["stream"], json!(true), "{request}");
}

#[test]
fn the_calls_deadline_ends_a_steady_stream_past_it_as_stream_incomplete() {
    set_keys();
    // 30 deltas 100 ms apart: 3 s, each gap well within the stall limit.
    let texts: Vec<String> = (0..30).map(|i| format!("w{i} ")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let reply =
        Reply::events(openai_events(&texts, None)).event_interval(Duration::from_millis(100));
    let openai = TestServer::start(vec![reply]);
    let mut config = providers(Some(&openai), None);
    config["client"]["deadline_ms"] = json!(1000);
    let setup = stream_setup(config, &[OPENAI]);
    let started = Instant::now();
    let streamed = stream(&setup.engine());
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1000) + MARGIN,
        "{elapsed:?}"
    );
    let (kind, interruption) = streamed.interruption();
    assert_eq!(kind, ErrorKind::StreamIncomplete);
    assert!(!interruption.partial_text.is_empty());
    assert_eq!(interruption.partial_text, streamed.deltas().concat());
    let broken = row("openai", StreamIncomplete, None, Some("timeout"));
    assert_eq!(rows(&interruption.attempts), [broken]);
    let message = interruption.attempts[0]
        .message
        .as_deref()
        .unwrap_or_default();
    assert!(message.contains("the call's deadline passed"), "{message}");
}

#[test]
fn restart_on_incomplete_tells_the_caller_and_answers_with_the_fallback_text_only() {
    set_keys();
    let cut = Reply::events(openai_events(&["Hel", "lo", " world"], None)).cut_after(3);
    let openai = TestServer::start(vec![cut]);
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let config = with_stream_limits(providers(Some(&openai), Some(&anthropic)), true);
    let setup = crate::support::engine_faults::Setup::new(config, &[OPENAI, ANTHROPIC]);
    let streamed = stream(&setup.engine());
    let delta = |text: &str| Seen::Delta(text.into());
    let expected = [
        delta("Hel"),
        delta("lo"),
        Seen::Restart("openai/gpt-test".into()),
        delta("A fox"),
        delta(" jumps."),
    ];
    assert_eq!(streamed.seen, expected);
    let completion = streamed.completion();
    assert_eq!(completion.text, ANTHROPIC_TEXT);
    let broken = row("openai", StreamIncomplete, None, Some("malformed"));
    assert_eq!(rows(&completion.attempts), [broken, succeeded("anthropic")]);
    let stats = completion.attempts[0]
        .stream
        .expect("the broken stream's statistics");
    assert_eq!(stats.chunks, 2);
}

#[test]
fn an_unknown_event_type_and_pings_are_ignored_end_to_end() {
    set_keys();
    let mut events = anthropic_events(&["A fox", " jumps."]);
    // After "A fox": another ping and an event type of a later API version.
    let future = named(
        "content_block_flourish",
        &json!({"type": "content_block_flourish"}),
    );
    events.insert(4, future);
    events.insert(4, named("ping", &json!({"type": "ping"})));
    let anthropic = TestServer::start(vec![Reply::events(events)]);
    let setup = stream_setup(providers(None, Some(&anthropic)), &[ANTHROPIC]);
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    assert_eq!(rows(&completion.attempts), [succeeded("anthropic")]);
    assert_eq!(streamed.deltas(), ANTHROPIC_TEXTS);
    assert_eq!(completion.text, ANTHROPIC_TEXT);
}

#[test]
fn a_budget_too_small_for_the_worst_case_refuses_the_stream_before_any_request() {
    set_keys();
    let openai = TestServer::start(vec![Reply::events(openai_events(&["ok"], None))]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let path = setup.root.join("config/features/summary.json");
    let mut feature: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    feature["budget"] = json!({"daily_usd": 0.0000001});
    std::fs::write(&path, feature.to_string()).unwrap();
    let streamed = stream(&setup.engine());
    assert_eq!(streamed.failure().kind(), ErrorKind::BudgetExceeded);
    assert!(streamed.seen.is_empty());
    assert_eq!(openai.connections(), 0);
}

#[test]
fn a_json_answer_to_a_stream_request_is_replayed_as_one_delta() {
    set_keys();
    // A gateway that ignores `stream: true`.
    let message = json!({"role": "assistant", "content": "Whole answer."});
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24});
    let body = json!({"id": "chatcmpl-1", "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage});
    let openai = TestServer::start(vec![Reply::json(200, &body)]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    assert_eq!(streamed.deltas(), ["Whole answer."]);
    assert_eq!(completion.text, "Whole answer.");
    assert_eq!(completion.stream.map(|stats| stats.chunks), Some(1));
    assert_eq!(completion.usage.output_tokens, 4);
}

#[test]
fn sequential_streams_reuse_one_connection_and_a_stopped_one_is_not_reused() {
    set_keys();
    let stopped = Reply::events(openai_events(&["Hel", "lo"], None)).hang_after(2);
    let healthy = || Reply::events(openai_events(&["ok"], None));
    let openai = TestServer::start(vec![stopped, healthy(), healthy(), healthy()]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let engine = setup.engine();
    let stopped = stream_until(&engine, Some(1), &CancelToken::new());
    assert_eq!(stopped.failure().kind(), ErrorKind::Cancelled);
    for call in 0..3 {
        assert_eq!(stream(&engine).completion().text, "ok", "call {call}");
    }
    let connections: Vec<usize> = openai.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 1, 1, 1]);
}
