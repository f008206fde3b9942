//! After the first token a broken stream is never a success: it ends `stream_incomplete` with
//! the text received, the breaker counts it, unless the settings restart on the next model.

use prompt_config::ErrorKind;
use prompt_config::client::{
    AttemptOutcome, BreakerState, CompleteError, FailureKind, StreamFault,
};
use serde_json::json;

use crate::setup::{Seen, Setup, failure, mock, outcomes, stream};

/// Streams with `fault` after 3 chunks on the primary; returns what the caller saw and the error.
fn broken_after_three(setup: &Setup, fault: StreamFault) -> (Seen, CompleteError) {
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(fault, 3);
    let (seen, result) = stream(&engine);
    (seen, failure(result.unwrap_err()))
}

fn assert_incomplete_with_partial_text(seen: &Seen, error: &CompleteError) {
    assert_eq!(error.kind(), ErrorKind::StreamIncomplete);
    let CompleteError::Interrupted { interruption, .. } = error else {
        panic!("expected an interruption, got {error}");
    };
    assert_eq!(seen.deltas.len(), 3);
    assert_eq!(interruption.partial_text, seen.text());
    assert_eq!(
        outcomes(&interruption.attempts),
        [("openai".into(), AttemptOutcome::StreamIncomplete)]
    );
    assert_eq!(
        interruption.attempts[0].stream.map(|stats| stats.chunks),
        Some(3)
    );
    assert!(interruption.cost_usd > 0.0, "the partial answer is charged");
    assert_eq!(error.details()["partial_text"], json!(seen.text()));
}

#[test]
fn an_interruption_carries_the_estimated_tokens_charged_and_the_stream_figures() {
    let setup = Setup::plain();
    let (_, error) = broken_after_three(&setup, StreamFault::Cut);
    let CompleteError::Interrupted { interruption, .. } = &error else {
        panic!("expected an interruption, got {error}");
    };
    assert!(interruption.usage.input_tokens > 0);
    assert!(interruption.usage.output_tokens > 0);
    assert_eq!(interruption.stream.map(|stats| stats.chunks), Some(3));
    let details = error.details();
    assert_eq!(
        details["usage"]["output_tokens"],
        interruption.usage.output_tokens
    );
    assert_eq!(details["stream"]["chunks"], 3);
}

#[test]
fn a_cut_after_the_first_token_ends_stream_incomplete_with_the_partial_text() {
    let setup = Setup::plain();
    let (seen, error) = broken_after_three(&setup, StreamFault::Cut);
    assert_incomplete_with_partial_text(&seen, &error);
}

#[test]
fn a_cut_mock_stream_fails_its_attempt_as_malformed_like_a_cut_http_stream() {
    let setup = Setup::plain();
    let (_, error) = broken_after_three(&setup, StreamFault::Cut);
    let attempt = &error.attempts()[0];
    assert_eq!(attempt.failure, Some(FailureKind::Malformed));
    let message = attempt.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("cut before its terminal event"),
        "{message}"
    );
}

#[test]
fn a_stall_after_the_first_token_ends_stream_incomplete_after_the_stall_limit() {
    let setup = Setup::plain();
    let (seen, error) = broken_after_three(&setup, StreamFault::Stall);
    assert_incomplete_with_partial_text(&seen, &error);
    assert!(error.to_string().contains("2000 ms"), "{error}");
}

#[test]
fn an_error_event_after_the_first_token_ends_stream_incomplete() {
    let setup = Setup::plain();
    let (seen, error) = broken_after_three(&setup, StreamFault::ErrorEvent);
    assert_incomplete_with_partial_text(&seen, &error);
}

#[test]
fn a_stream_without_its_terminal_event_is_never_a_success() {
    let setup = Setup::plain();
    let (seen, error) = broken_after_three(&setup, StreamFault::NoTerminal);
    assert_incomplete_with_partial_text(&seen, &error);
}

#[test]
fn an_incomplete_stream_counts_as_a_failure_for_the_breaker() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["circuit_breaker"]["consecutive_failures"] = json!(1)
        },
        |_| {},
    );
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(StreamFault::Cut, 2);
    let (_, result) = stream(&engine);
    assert!(result.is_err());
    let states = engine.breaker_states();
    let openai = states
        .iter()
        .find(|(name, _)| name.starts_with("openai"))
        .unwrap();
    assert_eq!(openai.1, BreakerState::Open);
}

#[test]
fn with_restart_on_incomplete_a_broken_stream_restarts_on_the_next_model() {
    let setup = Setup::new(
        |providers| providers["client"]["stream"]["restart_on_incomplete"] = json!(true),
        |_| {},
    );
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(StreamFault::Cut, 2);
    let (seen, result) = stream(&engine);
    let completion = result.unwrap();
    assert_eq!(seen.restarts, [("openai".into(), "gpt-test".into(), 2)]);
    assert_eq!(seen.deltas[2..].concat(), completion.text);
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(
        outcomes(&completion.attempts),
        [
            ("openai".into(), AttemptOutcome::StreamIncomplete),
            ("anthropic".into(), AttemptOutcome::Success)
        ]
    );
}

#[test]
fn with_restart_on_incomplete_the_last_model_breaking_ends_stream_incomplete_without_a_restart() {
    let setup = Setup::new(
        |providers| providers["client"]["stream"]["restart_on_incomplete"] = json!(true),
        |_| {},
    );
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(StreamFault::Cut, 2);
    mock(&engine, "anthropic").break_next_stream(StreamFault::Cut, 3);
    let (seen, result) = stream(&engine);
    let error = failure(result.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::StreamIncomplete, "{error}");
    assert_eq!(seen.restarts, [("openai".into(), "gpt-test".into(), 2)]);
    let CompleteError::Interrupted { interruption, .. } = &error else {
        panic!("expected an interruption, got {error}");
    };
    assert_eq!(interruption.partial_text, seen.deltas[2..].concat());
    assert_eq!(
        outcomes(&interruption.attempts),
        [
            ("openai".into(), AttemptOutcome::StreamIncomplete),
            ("anthropic".into(), AttemptOutcome::StreamIncomplete)
        ]
    );
    assert!(
        interruption.cost_usd > 0.0,
        "both broken streams are charged"
    );
}
