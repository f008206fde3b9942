//! `Engine::stream` end to end over the real providers on loopback event-stream servers, beyond
//! the fault matrix (`stream_fault_matrix.rs`): usage from the last chunk and its cost, the
//! estimate when a stream sends none (charged to the budget, as are a broken stream's partial
//! text and a stream voided by a restart), cancellation from Rust (the callback's `Stop`, a
//! `CancelToken` from another thread, before or after the first token or during a Retry-After
//! wait) closing the connection at once, the stream statistics, and API keys kept out of
//! stream errors.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::engine_faults::{
    ANTHROPIC, ANTHROPIC_KEY, MARGIN, OPENAI, OPENAI_KEY, Setup, TEXT, fault, openai_error,
    providers, rows, set_keys, state_of, succeeded,
};
use crate::support::http_server::{Reply, TestServer};
use crate::support::sse_fixtures::{anthropic_error_event, anthropic_events, data, openai_events};
use crate::support::stream_engine::{
    CLOSE_WITHIN, OPENAI_TEXT, OPENAI_TEXTS, anthropic_stream, feature_spend, openai_stream,
    stream, stream_observed, stream_setup, stream_until, with_budget, with_stream_limits,
};
use prompt_config::client::{BreakerState, CancelToken, StreamControl, StreamEvent};
use prompt_config::{Context, ErrorKind};
use serde_json::{Value, json};

/// The price of every model of these tests: $1 per million input tokens, $2 per million output.
fn cost(input: u64, output: u64) -> f64 {
    (input as f64 * 1.0 + output as f64 * 2.0) / 1_000_000.0
}

#[test]
fn usage_from_the_last_chunk_is_the_completions_usage_and_cost() {
    set_keys();
    let openai = TestServer::start(vec![openai_stream()]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    let usage = (
        completion.usage.input_tokens,
        completion.usage.output_tokens,
    );
    assert_eq!(usage, (20, 4));
    assert!(
        (completion.cost_usd - cost(20, 4)).abs() < 1e-12,
        "{}",
        completion.cost_usd
    );
    assert!(!completion.cost_estimated);
    let request = openai.single_request().json();
    assert_eq!(request["stream"], json!(true));
    assert_eq!(request["stream_options"], json!({"include_usage": true}));
}

#[test]
fn a_stream_without_usage_is_charged_to_the_budget_with_an_estimate() {
    set_keys();
    let openai = TestServer::start(vec![Reply::events(openai_events(&OPENAI_TEXTS, None))]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    with_budget(&setup);
    let engine = setup.engine();
    let streamed = stream(&engine);
    let completion = streamed.completion();
    assert_eq!(completion.text, OPENAI_TEXT);
    assert!(completion.cost_estimated, "{completion:?}");
    assert!(completion.cost_usd > 0.0, "{}", completion.cost_usd);
    let spent = feature_spend(&engine);
    assert!((spent - completion.cost_usd).abs() < 1e-12, "{spent}");
}

#[test]
fn anthropic_usage_from_message_start_and_message_delta_is_the_completions_cost() {
    set_keys();
    let events = anthropic_events(&["A fox", " jumps."]);
    let anthropic = TestServer::start(vec![Reply::events(events)]);
    let setup = stream_setup(providers(None, Some(&anthropic)), &[ANTHROPIC]);
    let completion = stream(&setup.engine()).result.unwrap();
    // message_start: 25 input, 100 cache writes, 1500 cache reads; message_delta: 15 output.
    assert_eq!(completion.usage.output_tokens, 15);
    assert!(!completion.cost_estimated, "{completion:?}");
    assert!(
        completion.cost_usd > cost(25, 15),
        "{}",
        completion.cost_usd
    );
}

#[test]
fn the_deltas_joined_are_the_text_and_the_stream_statistics_are_recorded() {
    set_keys();
    let reply = openai_stream().event_interval(Duration::from_millis(10));
    let openai = TestServer::start(vec![reply]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    assert_eq!(streamed.deltas(), OPENAI_TEXTS);
    assert_eq!(streamed.deltas().concat(), completion.text);
    assert_eq!(rows(&completion.attempts), [succeeded("openai")]);
    let stats = completion.stream.expect("the call's stream statistics");
    assert_eq!(stats.chunks, 3);
    // Two events (role, first text) 10 ms apart each came before the first text.
    assert!(stats.time_to_first_token_ms >= 15.0, "{stats:?}");
    let attempt = completion.attempts[0]
        .stream
        .expect("the attempt's stream statistics");
    assert_eq!(attempt.chunks, 3);
    assert!(attempt.time_to_first_token_ms > 0.0, "{attempt:?}");
    assert!(attempt.time_to_first_token_ms <= stats.time_to_first_token_ms);
}

#[test]
fn the_callback_stopping_after_the_first_delta_cancels_closes_the_connection_and_charges_it() {
    set_keys();
    // Role chunk and "Fox", then the server waits (watching for the close).
    let openai = TestServer::start(vec![openai_stream().hang_after(2)]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    with_budget(&setup);
    let engine = setup.engine();
    let streamed = stream_until(&engine, Some(1), &CancelToken::new());
    let returned = Instant::now();
    let (kind, interruption) = streamed.interruption();
    assert_eq!(kind, ErrorKind::Cancelled);
    assert_eq!(interruption.partial_text, "Fox");
    assert_eq!(streamed.deltas(), ["Fox"]);
    let closed = openai
        .wait_for_stream_close(CLOSE_WITHIN)
        .expect("the server saw the connection close");
    assert!(closed <= returned + CLOSE_WITHIN);
    assert_eq!(
        interruption.attempts[0].error_type().as_deref(),
        Some("cancelled")
    );
    assert!(interruption.cost_usd > 0.0, "{interruption:?}");
    let spent = feature_spend(&engine);
    assert!((spent - interruption.cost_usd).abs() < 1e-12, "{spent}");
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
}

#[test]
fn a_cancel_token_from_another_thread_ends_a_stalled_stream_and_the_server_sees_the_close() {
    set_keys();
    let openai = TestServer::start(vec![openai_stream().hang_after(2)]);
    // A stall limit of seconds: only the cancel ends the wait.
    let mut config = with_stream_limits(providers(Some(&openai), None), false);
    config["client"]["stream"]["stall_timeout_ms"] = json!(10_000);
    let setup = Setup::new(config, &[OPENAI]);
    with_budget(&setup);
    let engine = setup.engine();
    let token = CancelToken::new();
    let (first_delta, arrived) = mpsc::channel();
    let canceller = {
        let token = token.clone();
        thread::spawn(move || {
            arrived.recv().expect("the first delta arrives");
            // The walk is now blocked reading the silent server.
            thread::sleep(Duration::from_millis(100));
            token.cancel();
            Instant::now()
        })
    };
    let started = Instant::now();
    let streamed = stream_observed(&engine, None, &token, |_| {
        let _ = first_delta.send(());
    });
    let cancelled_at = canceller.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stall limit did not end it"
    );
    let (kind, interruption) = streamed.interruption();
    assert_eq!(kind, ErrorKind::Cancelled);
    assert_eq!(interruption.partial_text, "Fox");
    let closed = openai
        .wait_for_stream_close(CLOSE_WITHIN)
        .expect("the server saw the connection close");
    assert!(
        closed.saturating_duration_since(cancelled_at) <= CLOSE_WITHIN,
        "closed {:?} after the cancel",
        closed.saturating_duration_since(cancelled_at)
    );
    assert!(interruption.cost_usd > 0.0, "{interruption:?}");
    assert!(feature_spend(&engine) > 0.0);
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
}

#[test]
fn api_keys_echoed_in_stream_error_events_never_appear_in_the_error() {
    set_keys();
    // openai: an error object echoing its key before any text (failover); anthropic: an
    // error event echoing its key after text (stream_incomplete).
    let mut openai_events = openai_events(&["x"], None);
    openai_events.truncate(1);
    let echoed = format!("bad header Bearer {OPENAI_KEY}");
    openai_events.push(data(
        &json!({"error": {"message": echoed, "type": "invalid_request_error"}}),
    ));
    let openai = TestServer::start(vec![Reply::events(openai_events)]);
    let mut anthropic_events = anthropic_events(&["Hel"]);
    anthropic_events.truncate(4);
    let echoed = format!("invalid x-api-key: {ANTHROPIC_KEY}");
    anthropic_events.push(anthropic_error_event("overloaded_error", &echoed));
    let anthropic = TestServer::start(vec![Reply::events(anthropic_events)]);
    let setup = stream_setup(
        providers(Some(&openai), Some(&anthropic)),
        &[OPENAI, ANTHROPIC],
    );
    let engine = setup.engine();
    let streamed = stream(&engine);
    let (kind, interruption) = streamed.interruption();
    assert_eq!(kind, ErrorKind::StreamIncomplete);
    assert_eq!(interruption.partial_text, "Hel");
    for attempt in &interruption.attempts {
        let message = attempt.message.as_deref().unwrap_or_default();
        assert!(
            message.contains("***"),
            "the echoed key is masked: {message}"
        );
    }
    let error = streamed.failure();
    let details = error.details();
    let shown = format!("{error}\n{error:?}\n{error:#?}\n{details}\n{engine:?}");
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!shown.contains(key), "{key} leaked:\n{shown}");
    }
}

#[test]
fn a_cancel_before_the_first_token_ends_the_call_without_failing_over() {
    set_keys();
    // The role chunk at once, the first text seconds later.
    let late = openai_stream().delay_before_event(1, Duration::from_secs(3));
    let openai = TestServer::start(vec![late]);
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let mut config = with_stream_limits(providers(Some(&openai), Some(&anthropic)), false);
    config["client"]["stream"]["first_token_timeout_ms"] = json!(10_000);
    let setup = Setup::new(config, &[OPENAI, ANTHROPIC]);
    let engine = setup.engine();
    let token = CancelToken::new();
    let canceller = cancel_after(&token, Duration::from_millis(200));
    let streamed = stream_until(&engine, None, &token);
    let cancelled_at = canceller.join().unwrap();
    assert_eq!(streamed.failure().kind(), ErrorKind::Cancelled);
    assert!(streamed.deltas().is_empty());
    let attempts = streamed.failure().attempts();
    assert_eq!(rows(attempts), [fault("openai", "cancelled")]);
    assert_eq!(anthropic.requests().len(), 0, "no failover after a cancel");
    let closed = openai
        .wait_for_stream_close(CLOSE_WITHIN)
        .expect("the server saw the connection close");
    assert!(closed.saturating_duration_since(cancelled_at) <= CLOSE_WITHIN);
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
}

#[test]
fn a_cancel_during_a_retry_after_wait_ends_the_call_at_once() {
    set_keys();
    let limited = openai_error(429, "slow down", Value::Null).header("retry-after", "2");
    let openai = TestServer::start(vec![limited, openai_stream()]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    let token = CancelToken::new();
    let canceller = cancel_after(&token, Duration::from_millis(200));
    let streamed = stream_until(&setup.engine(), None, &token);
    let returned = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    assert_eq!(streamed.failure().kind(), ErrorKind::Cancelled);
    assert!(returned.saturating_duration_since(cancelled_at) < MARGIN);
    assert_eq!(openai.requests().len(), 1, "the retry was never sent");
}

#[test]
fn a_stream_incomplete_is_charged_to_the_budget_with_an_estimate_of_its_partial_text() {
    set_keys();
    let cut = Reply::events(openai_events(&OPENAI_TEXTS, None)).cut_after(3);
    let openai = TestServer::start(vec![cut]);
    let setup = stream_setup(providers(Some(&openai), None), &[OPENAI]);
    with_budget(&setup);
    let engine = setup.engine();
    let streamed = stream(&engine);
    let (kind, interruption) = streamed.interruption();
    assert_eq!(kind, ErrorKind::StreamIncomplete);
    assert_eq!(interruption.partial_text, "Fox jumps");
    assert!(interruption.cost_usd > 0.0, "{interruption:?}");
    let spent = feature_spend(&engine);
    assert!((spent - interruption.cost_usd).abs() < 1e-12, "{spent}");
}

#[test]
fn a_restart_charges_the_voided_stream_with_the_answer() {
    set_keys();
    // anthropic breaks after "Hel"; openai answers with usage (20 in, 4 out).
    let mut broken = anthropic_events(&["Hel", "lo"]);
    broken.truncate(4);
    let anthropic = TestServer::start(vec![Reply::events(broken).cut_after(4)]);
    let openai = TestServer::start(vec![openai_stream()]);
    let config = with_stream_limits(providers(Some(&openai), Some(&anthropic)), true);
    let setup = Setup::new(config, &[ANTHROPIC, OPENAI]);
    with_budget(&setup);
    let engine = setup.engine();
    let streamed = stream(&engine);
    let completion = streamed.completion();
    assert_eq!(completion.text, OPENAI_TEXT);
    assert!(completion.cost_usd > cost(20, 4), "{}", completion.cost_usd);
    assert!(completion.cost_estimated, "the voided part is an estimate");
    let spent = feature_spend(&engine);
    assert!((spent - completion.cost_usd).abs() < 1e-12, "{spent}");
}

#[test]
fn a_caller_stopping_at_the_restart_keeps_the_stream_incomplete_ending() {
    set_keys();
    let cut = Reply::events(openai_events(&OPENAI_TEXTS, None)).cut_after(3);
    let openai = TestServer::start(vec![cut]);
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let config = with_stream_limits(providers(Some(&openai), Some(&anthropic)), true);
    let setup = Setup::new(config, &[OPENAI, ANTHROPIC]);
    let engine = setup.engine();
    let context = Context::new("user-1").variable("text", TEXT);
    let mut restarts = 0;
    let result = engine.stream("summary", &context, |event| match event {
        StreamEvent::Restart { .. } => {
            restarts += 1;
            StreamControl::Stop
        }
        _ => StreamControl::Continue,
    });
    assert_eq!(restarts, 1);
    let Err(prompt_config::Error::Complete(error)) = result else {
        panic!("expected a failure, got {result:?}");
    };
    assert_eq!(error.kind(), ErrorKind::StreamIncomplete);
    assert_eq!(anthropic.requests().len(), 0, "no request after the stop");
}

/// Cancels `token` from another thread `after` this call; the thread returns when it did.
fn cancel_after(token: &CancelToken, after: Duration) -> thread::JoinHandle<Instant> {
    let token = token.clone();
    thread::spawn(move || {
        thread::sleep(after);
        token.cancel();
        Instant::now()
    })
}

#[test]
fn after_a_failover_the_answer_counts_its_time_to_first_token_from_the_call_and_the_attempt_from_its_own_start()
 {
    set_keys();
    // openai sends no text within the first-token limit; anthropic answers at once.
    let late = openai_stream().delay_before_event(1, Duration::from_secs(3));
    let openai = TestServer::start(vec![late]);
    let anthropic = TestServer::start(vec![anthropic_stream()]);
    let setup = stream_setup(
        providers(Some(&openai), Some(&anthropic)),
        &[OPENAI, ANTHROPIC],
    );
    let streamed = stream(&setup.engine());
    let completion = streamed.completion();
    let expected = [fault("openai", "timeout"), succeeded("anthropic")];
    assert_eq!(rows(&completion.attempts), expected);
    let (failed, answered) = (&completion.attempts[0], &completion.attempts[1]);
    let call = completion.stream.expect("the call's stream statistics");
    assert!(
        call.time_to_first_token_ms >= failed.latency_ms,
        "{call:?} {failed:?}"
    );
    let attempt = answered.stream.expect("the attempt's stream statistics");
    assert_eq!(attempt.chunks, call.chunks);
    assert!(attempt.time_to_first_token_ms > 0.0, "{attempt:?}");
    assert!(
        attempt.time_to_first_token_ms <= answered.latency_ms,
        "{attempt:?} {answered:?}"
    );
}
