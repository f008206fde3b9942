//! The caller stops a stream (the callback returns `Stop`, or a `CancelToken` from another
//! thread): the call ends `cancelled` at once, the usage so far is estimated and charged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prompt_config::client::{CancelToken, CompleteError, StreamControl, SystemClock};
use prompt_config::{Engine, ErrorKind};
use serde_json::json;

use crate::setup::{Setup, context, failure};

fn with_budget() -> Setup {
    Setup::new(
        |_| {},
        |feature| feature["budget"] = json!({"daily_usd": 10.0, "policy": "block"}),
    )
}

fn settled(engine: &Engine) -> f64 {
    engine
        .budget_status()
        .iter()
        .map(|status| status.settled_usd)
        .fold(0.0, f64::max)
}

#[test]
fn stop_from_the_callback_ends_the_call_cancelled_with_the_text_so_far() {
    let setup = with_budget();
    let engine = setup.engine();
    let mut deltas = Vec::new();
    let result = engine.stream("summary", &context(), |event| {
        if let prompt_config::client::StreamEvent::Delta(delta) = event {
            deltas.push(delta.to_string());
        }
        if deltas.len() == 2 {
            StreamControl::Stop
        } else {
            StreamControl::Continue
        }
    });
    let error = failure(result.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    let CompleteError::Interrupted { interruption, .. } = &error else {
        panic!("expected an interruption, got {error}");
    };
    assert_eq!(interruption.partial_text, deltas.concat());
    assert_eq!(deltas.len(), 2, "no delta after Stop");
    assert!(interruption.cost_usd > 0.0);
    assert!(
        (settled(&engine) - interruption.cost_usd).abs() < 1e-12,
        "the budget settled the estimate"
    );
    assert!(
        engine
            .budget_status()
            .iter()
            .all(|status| status.reserved_usd == 0.0)
    );
}

#[test]
fn a_stopped_stream_does_not_count_against_the_breaker() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["circuit_breaker"]["consecutive_failures"] = json!(1)
        },
        |_| {},
    );
    let engine = setup.engine();
    let result = engine.stream("summary", &context(), |_| StreamControl::Stop);
    assert_eq!(failure(result.unwrap_err()).kind(), ErrorKind::Cancelled);
    assert!(
        engine
            .breaker_states()
            .iter()
            .all(|(_, state)| *state == prompt_config::client::BreakerState::Closed)
    );
}

/// A real clock and a slow mock stream (200 ms between chunks), so a cancel from another
/// thread lands mid-stream.
fn slow_engine(setup: &Setup) -> Engine {
    Engine::open(setup.options().with_clock(Arc::new(SystemClock))).unwrap()
}

#[test]
fn a_cancel_token_from_another_thread_ends_a_stream_cancelled_at_once() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["mock"] =
                json!({"latency_ms": 0, "stream_chunk_chars": 4, "stream_delay_ms": 200});
        },
        |_| {},
    );
    let engine = slow_engine(&setup);
    let token = CancelToken::new();
    let canceller = token.clone();
    let mut deltas = 0;
    let mut cancelled_at = None;
    let result = engine.stream_with("summary", &context(), &token, |_| {
        deltas += 1;
        if deltas == 1 {
            let canceller = canceller.clone();
            std::thread::spawn(move || canceller.cancel());
            cancelled_at = Some(Instant::now());
        }
        StreamControl::Continue
    });
    let error = failure(result.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    let CompleteError::Interrupted { interruption, .. } = &error else {
        panic!("expected an interruption, got {error}");
    };
    assert!(!interruption.partial_text.is_empty());
    assert!(
        cancelled_at.unwrap().elapsed() < Duration::from_millis(150),
        "the 200 ms sleep was cut short"
    );
}

#[test]
fn a_cancel_before_the_first_token_ends_the_call_cancelled() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["mock"] = json!({"latency_ms": 500});
            providers["providers"]["anthropic"]["mock"] = json!({"latency_ms": 500});
        },
        |_| {},
    );
    let engine = slow_engine(&setup);
    let token = CancelToken::new();
    let canceller = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let started = Instant::now();
    let mut deltas = 0;
    let result = engine.stream_with("summary", &context(), &token, |_| {
        deltas += 1;
        StreamControl::Continue
    });
    assert_eq!(failure(result.unwrap_err()).kind(), ErrorKind::Cancelled);
    assert_eq!(deltas, 0);
    assert!(started.elapsed() < Duration::from_millis(400));
}
