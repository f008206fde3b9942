//! The one-line summaries of interrupted calls: a stream's chunk count is said once, and counts
//! of one are singular ("after 1 attempt", "after 1 chunk").

use std::sync::Arc;
use std::time::Duration;

use prompt_config::client::{CancelToken, StreamControl, StreamFault, SystemClock};
use prompt_config::{Engine, ErrorKind};
use serde_json::json;

use crate::setup::{Setup, context, failure, mock, stream};

/// The summary of a stream broken by `fault` after `chunks` chunks on the primary.
fn summary_of_break(fault: StreamFault, chunks: u32) -> String {
    let setup = Setup::plain();
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(fault, chunks);
    let (_, result) = stream(&engine);
    let error = failure(result.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::StreamIncomplete);
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_stream_cut_after_three_chunks_says_the_chunk_count_once() {
    let summary = summary_of_break(StreamFault::Cut, 3);
    assert_eq!(summary.matches("3 chunks").count(), 1, "{summary}");
}

#[test]
fn a_stream_stalled_after_three_chunks_says_the_chunk_count_once() {
    let summary = summary_of_break(StreamFault::Stall, 3);
    assert_eq!(summary.matches("3 chunks").count(), 1, "{summary}");
}

#[test]
fn a_stream_cut_after_one_chunk_says_chunk_in_the_singular() {
    let summary = summary_of_break(StreamFault::Cut, 1);
    assert!(summary.contains("after 1 chunk"), "{summary}");
    assert!(!summary.contains("1 chunks"), "{summary}");
}

#[test]
fn a_cancel_during_the_first_attempt_says_attempt_in_the_singular() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["mock"] = json!({"latency_ms": 500});
        },
        |_| {},
    );
    let engine = Engine::open(setup.options().with_clock(Arc::new(SystemClock))).unwrap();
    let token = CancelToken::new();
    let canceller = token.clone();
    let cancelling = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let result = engine.stream_with("summary", &context(), &token, |_| StreamControl::Continue);
    cancelling.join().unwrap();
    let error = failure(result.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    let summary = error.to_string();
    assert!(summary.contains("after 1 attempt"), "{summary}");
    assert!(!summary.contains("1 attempts"), "{summary}");
}
