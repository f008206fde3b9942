//! Before the first token a failure is an ordinary attempt failure: retry, back off (or wait
//! the provider's Retry-After), fail over, exactly as `complete()`.

use std::time::Duration;

use prompt_config::client::{AttemptOutcome, FailureKind, StreamFault};

use crate::setup::{Setup, mock, outcomes, stream};

#[test]
fn a_server_error_before_the_first_token_fails_over_to_the_fallback() {
    let setup = Setup::plain();
    let engine = setup.engine();
    mock(&engine, "openai").fail_next(1, 500);
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(
        outcomes(&completion.attempts),
        [
            ("openai".into(), AttemptOutcome::Failed),
            ("anthropic".into(), AttemptOutcome::Success)
        ]
    );
    assert!(seen.restarts.is_empty());
    assert_eq!(seen.text(), completion.text);
}

#[test]
fn a_server_error_before_the_first_token_is_retried_when_there_is_no_fallback() {
    let setup = Setup::new(
        |_| {},
        |feature| feature["fallbacks"] = serde_json::json!([]),
    );
    let engine = setup.engine();
    mock(&engine, "openai").fail_next(2, 503);
    let (_, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.attempts.len(), 3);
    assert!(
        completion.attempts[1].wait_ms > 0.0,
        "backed off before retrying"
    );
}

#[test]
fn a_429_with_retry_after_before_the_first_token_waits_that_long_then_succeeds() {
    let setup = Setup::new(
        |_| {},
        |feature| feature["fallbacks"] = serde_json::json!([]),
    );
    let engine = setup.engine();
    mock(&engine, "openai").rate_limit_next(1, Some(Duration::from_millis(1500)));
    let (_, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.attempts[0].status, Some(429));
    assert_eq!(completion.attempts[1].wait_ms, 1500.0);
    assert_eq!(completion.attempts[1].outcome, AttemptOutcome::Success);
}

#[test]
fn no_first_token_within_the_first_token_limit_times_out_and_fails_over() {
    let setup = Setup::plain();
    let engine = setup.engine();
    mock(&engine, "openai").time_out_next(1);
    let (_, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.attempts[0].failure, Some(FailureKind::Timeout));
    // The first-token limit (1000 ms), not the provider's 20 s timeout, bounded the wait.
    assert_eq!(completion.attempts[0].latency_ms, 1000.0);
    assert_eq!(completion.provider, "anthropic");
}

#[test]
fn an_error_event_before_any_text_is_an_ordinary_failure_not_an_incomplete_stream() {
    let setup = Setup::plain();
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(StreamFault::ErrorEvent, 0);
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(seen.text(), completion.text);
}

#[test]
fn a_mock_stream_cut_before_any_text_fails_as_malformed_and_fails_over() {
    let setup = Setup::plain();
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(StreamFault::Cut, 0);
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(completion.attempts[0].failure, Some(FailureKind::Malformed));
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(seen.text(), completion.text);
}
