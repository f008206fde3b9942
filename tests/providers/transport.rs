//! The HTTP transport under both providers against a scripted local HTTP server: how malformed
//! replies, timeouts, refused and dropped connections and redirects are classified, that
//! connections are reused and shared, and what the transport itself sends and accepts. Nothing
//! leaves 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    anthropic, anthropic_success, call, call_with, failure, fake_key, fresh_transport, openai,
    openai_success, spec,
};
use prompt_config::client::{AnthropicProvider, FailureKind, HttpTransport, OpenAiProvider};
use prompt_config::config::ModelParameters;
use serde_json::json;

#[test]
fn a_non_json_error_body_becomes_a_short_single_line_excerpt() {
    let page = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n{}</html>",
        "padding ".repeat(200)
    );
    let server = TestServer::start(vec![Reply::text(502, &page)]);
    let error = failure(call(&openai(&server)));
    assert_eq!((error.kind, error.status), (FailureKind::Http, Some(502)));
    assert_eq!(error.provider_error_type, None);
    assert!(
        error
            .message
            .starts_with("<html> <head><title>502 Bad Gateway</title></head>")
    );
    assert!(error.message.chars().count() <= 201, "{}", error.message);
}

#[test]
fn a_body_cut_short_is_malformed() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success()).truncated()]);
    let error = failure(call(&openai(&server)));
    assert_eq!(error.kind, FailureKind::Malformed);
    assert!(error.message.contains("cut short"), "{}", error.message);
}

#[test]
fn a_success_body_that_is_not_json_is_malformed() {
    let server = TestServer::start(vec![Reply::text(200, "{\"choices\": [")]);
    assert_eq!(failure(call(&openai(&server))).kind, FailureKind::Malformed);
    let server = TestServer::start(vec![Reply::text(200, "<html>ok</html>")]);
    assert_eq!(
        failure(call(&anthropic(&server))).kind,
        FailureKind::Malformed
    );
}

#[test]
fn a_success_without_choices_or_content_is_malformed() {
    let server = TestServer::start(vec![Reply::json(
        200,
        &json!({"id": "chatcmpl-1", "choices": []}),
    )]);
    assert_eq!(failure(call(&openai(&server))).kind, FailureKind::Malformed);
    let server = TestServer::start(vec![Reply::json(
        200,
        &json!({"id": "msg_1", "type": "message"}),
    )]);
    assert_eq!(
        failure(call(&anthropic(&server))).kind,
        FailureKind::Malformed
    );
}

#[test]
fn a_response_that_is_not_http_is_malformed() {
    let server = TestServer::start(vec![Reply::raw("HTTP/1.1 abc nonsense\r\n\r\n")]);
    assert_eq!(failure(call(&openai(&server))).kind, FailureKind::Malformed);
}

#[test]
fn a_hanging_server_times_out_within_the_timeout() {
    let server = TestServer::start(vec![Reply::hang()]);
    let started = Instant::now();
    let error = failure(call_with(
        &openai(&server),
        &ModelParameters::default(),
        Duration::from_millis(300),
    ));
    let elapsed = started.elapsed();
    assert_eq!(error.kind, FailureKind::Timeout);
    assert!(error.message.contains("300 ms"), "{}", error.message);
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[test]
fn the_timeout_covers_a_body_that_trickles_in() {
    let reply = Reply::json(200, &anthropic_success()).slow_body(Duration::from_millis(50));
    let server = TestServer::start(vec![reply]);
    let started = Instant::now();
    let error = failure(call_with(
        &anthropic(&server),
        &ModelParameters::default(),
        Duration::from_millis(400),
    ));
    assert_eq!(error.kind, FailureKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn a_late_but_timely_answer_succeeds() {
    let reply =
        Reply::json(200, &openai_success()).delay_before_headers(Duration::from_millis(100));
    let server = TestServer::start(vec![reply]);
    call_with(
        &openai(&server),
        &ModelParameters::default(),
        Duration::from_secs(5),
    )
    .expect("success");
}

#[test]
fn the_configured_timeout_caps_the_requested_one() {
    let server = TestServer::start(vec![Reply::hang()]);
    let mut spec = spec("openai", &server.url());
    spec.timeout_ms = 200;
    let provider = OpenAiProvider::with_api_key(&spec, fresh_transport(), fake_key());
    let started = Instant::now();
    let error = failure(call_with(
        &provider,
        &ModelParameters::default(),
        Duration::from_secs(20),
    ));
    assert_eq!(error.kind, FailureKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn a_refused_connection_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let provider =
        AnthropicProvider::with_api_key(&spec("anthropic", &url), fresh_transport(), fake_key());
    assert_eq!(failure(call(&provider)).kind, FailureKind::Connect);
}

#[test]
fn a_connection_closed_without_a_reply_is_a_connect_failure() {
    let server = TestServer::start(vec![Reply::close_immediately()]);
    assert_eq!(failure(call(&openai(&server))).kind, FailureKind::Connect);
}

#[test]
fn sequential_calls_reuse_one_connection() {
    let server = TestServer::start(vec![
        Reply::json(200, &openai_success()),
        Reply::json(200, &openai_success()),
    ]);
    let provider = openai(&server);
    call(&provider).expect("first");
    call(&provider).expect("second");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.connections(), 1);
}

#[test]
fn providers_sharing_a_transport_share_its_connections() {
    let server = TestServer::start(vec![
        Reply::json(200, &openai_success()),
        Reply::json(200, &anthropic_success()),
    ]);
    let transport = fresh_transport();
    let key = fake_key();
    let openai = OpenAiProvider::with_api_key(
        &spec("openai", &server.url()),
        Arc::clone(&transport),
        key.clone(),
    );
    let anthropic =
        AnthropicProvider::with_api_key(&spec("anthropic", &server.url()), transport, key);
    call(&openai).expect("openai");
    call(&anthropic).expect("anthropic");
    assert_eq!(server.connections(), 1);
}

#[test]
fn reset_makes_the_next_call_open_a_new_connection() {
    let server = TestServer::start(vec![
        Reply::json(200, &openai_success()),
        Reply::json(200, &openai_success()),
    ]);
    let transport = fresh_transport();
    let provider = OpenAiProvider::with_api_key(
        &spec("openai", &server.url()),
        Arc::clone(&transport),
        fake_key(),
    );
    call(&provider).expect("first");
    transport.reset();
    call(&provider).expect("second");
    let connections: Vec<usize> = server
        .requests()
        .iter()
        .map(|request| request.connection)
        .collect();
    assert_eq!(connections, [0, 1]);
}

#[test]
fn transport_returns_error_statuses_as_responses_with_lower_cased_headers() {
    let server = TestServer::start(vec![
        Reply::text(418, "teapot").header("X-Custom-Header", "yes"),
    ]);
    let transport = HttpTransport::new();
    let response = transport
        .post_json(
            &format!("{}/anything", server.url()),
            &[("x-test", "1")],
            b"{}",
            Duration::from_secs(5),
        )
        .expect("a response");
    assert_eq!(response.status, 418);
    assert_eq!(response.body, b"teapot");
    assert!(
        response
            .headers
            .iter()
            .any(|(name, value)| name == "x-custom-header" && value == "yes")
    );
    assert_eq!(response.header("X-Custom-Header"), Some("yes"));
    let request = server.single_request();
    assert_eq!(
        (request.header("x-test"), request.body.as_str()),
        (Some("1"), "{}")
    );
}

#[test]
fn a_redirect_is_reported_not_followed() {
    let target = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let reply =
        Reply::status(307).header("location", &format!("{}/v1/chat/completions", target.url()));
    let server = TestServer::start(vec![reply]);
    let error = failure(call(&openai(&server)));
    assert_eq!((error.kind, error.status), (FailureKind::Http, Some(307)));
    assert_eq!(target.connections(), 0);
}

#[test]
fn transport_sends_json_content_type_unless_told_otherwise() {
    let server = TestServer::start(vec![Reply::status(204), Reply::status(204)]);
    let transport = HttpTransport::new();
    let timeout = Duration::from_secs(5);
    transport
        .post_json(&server.url(), &[], b"{}", timeout)
        .expect("first");
    transport
        .post_json(
            &server.url(),
            &[("Content-Type", "text/plain")],
            b"x",
            timeout,
        )
        .expect("second");
    let content_types: Vec<String> = server
        .requests()
        .iter()
        .flat_map(|request| request.headers.clone())
        .filter(|(name, _)| name == "content-type")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(content_types, ["application/json", "text/plain"]);
}

#[test]
fn transport_refuses_bodies_over_sixteen_mebibytes() {
    let server = TestServer::start(vec![
        Reply::status(200).body(vec![b'a'; 16 * 1024 * 1024 + 1]),
    ]);
    let error = HttpTransport::new()
        .post_json(&server.url(), &[], b"{}", Duration::from_secs(20))
        .expect_err("too large");
    assert_eq!(error.kind, FailureKind::Malformed);
}

/// `body` compressed with gzip.
fn gzip(body: &serde_json::Value) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(body.to_string().as_bytes())
        .expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// A 200 whose JSON body is gzip-compressed, as compressing gateways send it.
fn gzip_reply(body: &serde_json::Value) -> Reply {
    Reply::status(200)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(body))
}

#[test]
fn requests_ask_for_gzip() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    call(&openai(&server)).expect("success");
    let accepted = server.single_request();
    let accepted = accepted.header("accept-encoding").unwrap_or_default();
    assert!(accepted.contains("gzip"), "accept-encoding: {accepted:?}");
}

#[test]
fn a_gzip_compressed_openai_answer_succeeds_on_the_first_attempt() {
    let server = TestServer::start(vec![gzip_reply(&openai_success())]);
    let response = call(&openai(&server)).expect("a compressed answer is an answer");
    assert_eq!(response.text, "Green.");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_gzip_compressed_anthropic_answer_succeeds_on_the_first_attempt() {
    let server = TestServer::start(vec![gzip_reply(&anthropic_success())]);
    let response = call(&anthropic(&server)).expect("a compressed answer is an answer");
    assert_eq!(response.text, "Green.");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_gzip_compressed_error_body_keeps_the_provider_message() {
    let body = json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
    let reply = Reply::status(429)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&body));
    let server = TestServer::start(vec![reply]);
    let error = failure(call(&openai(&server)));
    assert_eq!(error.status, Some(429));
    assert!(
        error.message.contains("Rate limit reached"),
        "{}",
        error.message
    );
}

#[test]
fn a_cancel_from_another_thread_ends_a_call_blocked_on_a_silent_server_at_once() {
    let server = TestServer::start(vec![Reply::hang()]);
    let provider = openai(&server);
    let token = prompt_config::client::CancelToken::new();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            token.cancel();
        })
    };
    let started = Instant::now();
    let error = failure(token.enter(|| call(&provider)));
    let elapsed = started.elapsed();
    canceller.join().unwrap();
    assert_eq!(error.kind, FailureKind::Cancelled, "{error:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}
