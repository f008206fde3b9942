//! The streaming read under both HTTP providers against a loopback event-stream server: the
//! first-token and stall limits, a cut connection, framing (CRLF, CR, comments, multi-line
//! data), bounded event size, connection reuse, and cancellation: from another thread through a
//! `CancelToken`, and by dropping the stream, both closing the socket at once (the server sees
//! it within 100 ms).

use std::thread;
use std::time::{Duration, Instant};

use prompt_config::client::{CancelToken, FailureKind, StreamChunk, StreamTimeouts};

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{anthropic, openai};
use crate::support::sse_fixtures::{
    anthropic_events, anthropic_start, anthropic_stop, anthropic_text, named, open, openai_events,
    relaxed, stream, stream_with,
};
use serde_json::json;

/// How soon the server must see the socket close after a cancel or a drop.
const CLOSE_WITHIN: Duration = Duration::from_millis(100);

fn limits(first_token_ms: u64, stall_ms: u64) -> StreamTimeouts {
    StreamTimeouts {
        first_token: Duration::from_millis(first_token_ms),
        stall: Duration::from_millis(stall_ms),
    }
}

#[test]
fn late_headers_fail_as_no_first_token_within_the_limit() {
    let reply =
        Reply::events(openai_events(&["a"], None)).delay_before_headers(Duration::from_secs(2));
    let server = TestServer::start(vec![reply]);
    let started = Instant::now();
    let read = stream_with(&openai(&server), limits(150, 5000));
    let error = read.error();
    assert_eq!(error.kind, FailureKind::Timeout);
    assert!(
        error.message.starts_with("no first token within 150 ms"),
        "{}",
        error.message
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[test]
fn headers_without_text_in_time_fail_as_no_first_token() {
    // The role chunk arrives at once; the first text is late.
    let reply =
        Reply::events(openai_events(&["late"], None)).delay_before_event(1, Duration::from_secs(2));
    let server = TestServer::start(vec![reply]);
    let started = Instant::now();
    let read = stream_with(&openai(&server), limits(200, 5000));
    assert!(read.deltas.is_empty());
    let error = read.error();
    assert_eq!(error.kind, FailureKind::Timeout);
    assert_eq!(error.message, "no first token within 200 ms");
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[test]
fn a_gap_after_the_first_token_longer_than_the_stall_limit_fails_as_a_stall() {
    // Events: message_start, block start, ping, "one", "two" (late).
    let reply = Reply::events(anthropic_events(&["one", "two"]))
        .delay_before_event(4, Duration::from_secs(2));
    let server = TestServer::start(vec![reply]);
    let started = Instant::now();
    let read = stream_with(&anthropic(&server), limits(5000, 150));
    assert_eq!(read.deltas, ["one"]);
    let error = read.error();
    assert_eq!(error.kind, FailureKind::Timeout);
    assert_eq!(
        error.message,
        "stream stalled: no chunk for 150 ms (after 1 chunk)"
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[test]
fn a_steady_stream_lasting_longer_than_the_stall_limit_completes() {
    let texts = ["a", "b", "c", "d", "e", "f"];
    let reply =
        Reply::events(openai_events(&texts, None)).event_interval(Duration::from_millis(50));
    let server = TestServer::start(vec![reply]);
    let started = Instant::now();
    let read = stream_with(&openai(&server), limits(1000, 250));
    assert_eq!(read.response().text, "abcdef");
    assert!(started.elapsed() > Duration::from_millis(250));
}

#[test]
fn a_connection_cut_mid_stream_is_malformed_and_says_cut() {
    // Role chunk, "a", "b", then the connection closes without the end of the body.
    let reply = Reply::events(openai_events(&["a", "b", "c"], None)).cut_after(3);
    let server = TestServer::start(vec![reply]);
    let read = stream(&openai(&server));
    assert_eq!(read.deltas, ["a", "b"]);
    let error = read.error();
    assert_eq!(error.kind, FailureKind::Malformed);
    assert!(
        error
            .message
            .starts_with("stream cut before its terminal event (after 2 chunks)"),
        "{}",
        error.message
    );
}

#[test]
fn an_anthropic_stream_cut_before_any_text_is_malformed_too() {
    let reply = Reply::events(anthropic_events(&["x"])).cut_after(1);
    let server = TestServer::start(vec![reply]);
    let error = stream(&anthropic(&server)).error().clone();
    assert_eq!(error.kind, FailureKind::Malformed);
    assert!(error.message.contains("cut"), "{}", error.message);
}

#[test]
fn crlf_cr_comments_and_multi_line_data_are_read_as_the_standard_says() {
    let events = vec![
        ": keep-alive comment\r\n\r\n".to_string(),
        "data: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"one\"}}]}\r\n\r\n".to_string(),
        "data: {\"choices\":[{\"delta\":{\"content\":\"two\"}}]}\r\r".to_string(),
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".to_string(),
        "data: [DONE]\r\n\r\n".to_string(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream(&openai(&server));
    assert_eq!(read.deltas, ["one", "two"]);
    assert_eq!(read.response().text, "onetwo");
}

#[test]
fn an_event_larger_than_the_bound_is_malformed() {
    let huge = format!("data: {}", "x".repeat(2 * 1024 * 1024));
    let server = TestServer::start(vec![Reply::events(vec![huge])]);
    let error = stream(&openai(&server)).error().clone();
    assert_eq!(error.kind, FailureKind::Malformed);
    assert!(error.message.contains("exceeds"), "{}", error.message);
}

#[test]
fn a_finished_stream_leaves_its_connection_for_the_next_call() {
    let server = TestServer::start(vec![
        Reply::events(openai_events(&["a"], None)),
        Reply::events(openai_events(&["b"], None)),
    ]);
    let provider = openai(&server);
    assert_eq!(stream(&provider).response().text, "a");
    assert_eq!(stream(&provider).response().text, "b");
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_stream_dropped_mid_way_closes_its_connection_at_once() {
    let reply = Reply::events(openai_events(&["first", "second"], None)).hang_after(2);
    let server = TestServer::start(vec![reply, Reply::events(openai_events(&["next"], None))]);
    let provider = openai(&server);
    let mut opened = open(&provider, relaxed()).expect("stream opens");
    assert_eq!(
        opened.next_chunk().expect("first delta"),
        StreamChunk::Delta("first".into())
    );
    let dropped_at = Instant::now();
    drop(opened);
    let closed_at = server
        .wait_for_stream_close(Duration::from_secs(2))
        .expect("the server sees the connection close");
    assert!(
        closed_at.duration_since(dropped_at) < CLOSE_WITHIN,
        "closed {:?} after the drop",
        closed_at.duration_since(dropped_at)
    );
    // The half-read connection was not pooled: the next call opens a new one.
    assert_eq!(stream(&provider).response().text, "next");
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_cancel_from_another_thread_mid_stream_ends_it_as_cancelled_and_closes_the_socket() {
    let reply = Reply::events(anthropic_events(&["first", "second"])).hang_after(4);
    let server = TestServer::start(vec![reply]);
    let provider = anthropic(&server);
    let token = CancelToken::new();
    let (cancelled_at, error, returned_at) = token.enter(|| {
        let mut opened = open(&provider, relaxed()).expect("stream opens");
        assert_eq!(
            opened.next_chunk().expect("first delta"),
            StreamChunk::Delta("first".into())
        );
        let canceller = token.clone();
        let cancelling = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            let at = Instant::now();
            canceller.cancel();
            at
        });
        let error = opened.next_chunk().expect_err("the stream is cancelled");
        let returned_at = Instant::now();
        let cancelled_at = cancelling.join().expect("canceller thread");
        (cancelled_at, error, returned_at)
    });
    assert_eq!(error.kind, FailureKind::Cancelled);
    assert!(returned_at.duration_since(cancelled_at) < CLOSE_WITHIN);
    let closed_at = server
        .wait_for_stream_close(Duration::from_secs(2))
        .expect("the server sees the connection close");
    assert!(
        closed_at.duration_since(cancelled_at) < CLOSE_WITHIN,
        "closed {:?} after the cancel",
        closed_at.duration_since(cancelled_at)
    );
}

#[test]
fn a_stream_opened_under_a_cancelled_token_fails_without_waiting() {
    let server = TestServer::start(vec![Reply::events(openai_events(&["a"], None))]);
    let provider = openai(&server);
    let token = CancelToken::new();
    token.cancel();
    let started = Instant::now();
    let read = token.enter(|| stream(&provider));
    assert_eq!(read.error().kind, FailureKind::Cancelled);
    assert!(started.elapsed() < CLOSE_WITHIN);
}

#[test]
fn a_cancel_while_waiting_for_the_headers_ends_the_stream_at_once() {
    let reply =
        Reply::events(openai_events(&["a"], None)).delay_before_headers(Duration::from_secs(2));
    let server = TestServer::start(vec![reply]);
    let provider = openai(&server);
    let token = CancelToken::new();
    let canceller = token.clone();
    let cancelling = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let at = Instant::now();
        canceller.cancel();
        at
    });
    let read = token.enter(|| stream(&provider));
    let returned_at = Instant::now();
    let cancelled_at = cancelling.join().expect("canceller thread");
    assert_eq!(read.error().kind, FailureKind::Cancelled);
    assert!(returned_at.duration_since(cancelled_at) < CLOSE_WITHIN);
}

#[test]
fn pings_do_not_keep_a_stalled_stream_alive() {
    let mut events = vec![anthropic_start(None), anthropic_text("one")];
    events.extend((0..10).map(|_| named("ping", &json!({"type": "ping"}))));
    events.extend([anthropic_text("two"), anthropic_stop()]);
    let reply = Reply::events(events).event_interval(Duration::from_millis(50));
    let server = TestServer::start(vec![reply]);
    let read = stream_with(&anthropic(&server), limits(5000, 150));
    assert_eq!(read.deltas, ["one"]);
    assert_eq!(read.error().kind, FailureKind::Timeout);
}
