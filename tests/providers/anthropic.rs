//! The Anthropic provider against a scripted local HTTP server: the exact request it sends to
//! `/v1/messages`, how it reads a message and its cache usage, how error statuses, prompt-too-long
//! errors and Retry-After headers become attempt errors. Nothing leaves 127.0.0.1.

use std::time::Duration;

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    FAKE_KEY, all_parameters, anthropic, anthropic_error, anthropic_success, call, call_with,
    failure, fake_key, fresh_transport, spec,
};
use chrono::Utc;
use prompt_config::client::{
    AnthropicProvider, FailureKind, FinishReason, Provider, ProviderRequest, Usage, UsageReported,
};
use prompt_config::config::ModelParameters;
use prompt_config::{Message, Role};
use serde_json::json;

#[test]
fn anthropic_posts_to_v1_messages_with_api_key_version_and_content_type() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    call(&anthropic(&server)).expect("success");
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("x-api-key"), Some(FAKE_KEY));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
}

#[test]
fn anthropic_version_header_comes_from_the_config_when_set() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    let mut spec = spec("anthropic", &server.url());
    spec.anthropic_version = Some("2024-01-01".into());
    let provider = AnthropicProvider::with_api_key(&spec, fresh_transport(), fake_key());
    call(&provider).expect("success");
    assert_eq!(
        server.single_request().header("anthropic-version"),
        Some("2024-01-01")
    );
}

#[test]
fn anthropic_body_lifts_system_messages_to_the_top_level_and_maps_every_parameter() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    call_with(
        &anthropic(&server),
        &all_parameters(),
        Duration::from_secs(5),
    )
    .expect("success");
    assert_eq!(
        server.single_request().json(),
        json!({
            "model": "test-model",
            "max_tokens": 300,
            "system": "You are terse.\n\nAnswer in English.",
            "messages": [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another."}
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["\n\n", "END"]
        })
    );
}

#[test]
fn anthropic_body_defaults_max_tokens_and_omits_absent_parameters_and_system() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    let provider = anthropic(&server);
    let messages = [Message::new(Role::User, "Hi")];
    let parameters = ModelParameters::default();
    provider
        .call(&ProviderRequest {
            model: "claude-haiku-4-5",
            messages: &messages,
            parameters: &parameters,
            request_id: "request-1",
            timeout: Duration::from_secs(5),
            output: None,
            tools: &[],
            tool_choice: &Default::default(),
            traceparent: None,
        })
        .expect("success");
    assert_eq!(
        server.single_request().json(),
        json!({"model": "claude-haiku-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]})
    );
}

#[test]
fn anthropic_success_joins_text_blocks_and_reports_cache_reads_and_writes() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    let response = call(&anthropic(&server)).expect("success");
    assert_eq!(response.text, "Green.");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.raw_finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(response.refusal, None);
    assert_eq!(
        response.response_id.as_deref(),
        Some("msg_013Zva2CMHLNnXjNJJKqJ2EF")
    );
    assert_eq!(
        response.response_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    // Input tokens count every input token: 21 uncached + 1500 read + 188086 written.
    let expected = Usage {
        input_tokens: 21 + 1500 + 188086,
        output_tokens: 393,
        cache_read_input_tokens: 1500,
        cache_creation_input_tokens: 188086,
    };
    assert_eq!(response.usage, expected);
}

#[test]
fn anthropic_usage_without_cache_fields_counts_them_as_zero() {
    let mut body = anthropic_success();
    body["usage"] = json!({"input_tokens": 12, "output_tokens": 3});
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let usage = call(&anthropic(&server)).expect("success").usage;
    assert_eq!(
        (
            usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens
        ),
        (0, 0)
    );
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 3));
}

#[test]
fn anthropic_error_statuses_become_http_failures_with_provider_type_and_message() {
    let cases = [
        (
            400,
            "invalid_request_error",
            "messages: roles must alternate",
        ),
        (401, "authentication_error", "invalid x-api-key"),
        (
            403,
            "permission_error",
            "Your API key does not have permission to use it.",
        ),
        (404, "not_found_error", "model: claude-9"),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        (422, "invalid_request_error", "Unprocessable request."),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
        ),
        (500, "api_error", "Internal server error"),
        (503, "api_error", "Service unavailable"),
        (529, "overloaded_error", "Overloaded"),
    ];
    for (status, error_type, message) in cases {
        let body = anthropic_error(error_type, message);
        let server = TestServer::start(vec![Reply::json(status, &body)]);
        let error = failure(call(&anthropic(&server)));
        assert_eq!(error.kind, FailureKind::Http, "status {status}");
        assert_eq!(error.status, Some(status));
        assert_eq!(error.provider_error_type.as_deref(), Some(error_type));
        assert_eq!(error.message, message);
    }
}

#[test]
fn anthropic_prompt_too_long_is_a_context_length_failure() {
    let body = anthropic_error(
        "invalid_request_error",
        "prompt is too long: 208310 tokens > 200000 maximum",
    );
    let server = TestServer::start(vec![Reply::json(400, &body)]);
    let error = failure(call(&anthropic(&server)));
    assert_eq!(error.kind, FailureKind::ContextLength);
    assert_eq!(error.status, Some(400));
    assert_eq!(
        error.provider_error_type.as_deref(),
        Some("invalid_request_error")
    );
}

#[test]
fn anthropic_retry_after_as_an_http_date_is_the_time_until_it() {
    let date = (Utc::now() + chrono::Duration::seconds(120)).format("%a, %d %b %Y %H:%M:%S GMT");
    let reply = Reply::json(529, &anthropic_error("overloaded_error", "Overloaded"))
        .header("retry-after", &date.to_string());
    let server = TestServer::start(vec![reply]);
    let wait = failure(call(&anthropic(&server)))
        .retry_after
        .expect("a wait");
    assert!(
        wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
}

#[test]
fn anthropic_retry_after_seconds_on_rate_limit_is_honoured() {
    let reply = Reply::json(429, &anthropic_error("rate_limit_error", "slow down"))
        .header("retry-after", "30");
    let server = TestServer::start(vec![reply]);
    assert_eq!(
        failure(call(&anthropic(&server))).retry_after,
        Some(Duration::from_secs(30))
    );
}

#[test]
fn anthropic_refusal_stop_reason_is_a_refusal_with_its_text() {
    let mut body = anthropic_success();
    body["stop_reason"] = json!("refusal");
    body["content"] = json!([{"type": "text", "text": "I can't help with that."}]);
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&anthropic(&server)).expect("a refusal is an answer");
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(response.refusal.as_deref(), Some("I can't help with that."));
    assert_eq!(response.raw_finish_reason.as_deref(), Some("refusal"));
}

#[test]
fn anthropic_refusal_with_empty_content_has_no_refusal_text_but_says_refusal() {
    let mut body = anthropic_success();
    body["stop_reason"] = json!("refusal");
    body["content"] = json!([]);
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&anthropic(&server)).expect("a refusal is an answer");
    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(response.refusal, None);
}

#[test]
fn anthropic_stop_reasons_map_to_the_shared_vocabulary_and_keep_the_raw_word() {
    let cases = [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("model_context_window_exceeded", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("pause_turn", FinishReason::Other("pause_turn".into())),
    ];
    for (raw, expected) in cases {
        let mut body = anthropic_success();
        body["stop_reason"] = json!(raw);
        let server = TestServer::start(vec![Reply::json(200, &body)]);
        let response = call(&anthropic(&server)).expect("success");
        assert_eq!(response.finish_reason, Some(expected), "{raw}");
        assert_eq!(response.raw_finish_reason.as_deref(), Some(raw));
    }
}

#[test]
fn anthropic_error_object_in_a_200_body_keeps_its_type_and_message() {
    let body = anthropic_error("overloaded_error", "Overloaded");
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let error = failure(call(&anthropic(&server)));
    assert_eq!(error.kind, FailureKind::ErrorInBody);
    assert_eq!(
        error.provider_error_type.as_deref(),
        Some("overloaded_error")
    );
    assert!(error.message.contains("Overloaded"), "{}", error.message);
    assert!(
        error.message.contains("overloaded_error"),
        "{}",
        error.message
    );
}

#[test]
fn anthropic_200_without_usage_reports_no_counts() {
    let mut body = anthropic_success();
    body.as_object_mut().unwrap().remove("usage");
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&anthropic(&server)).expect("success");
    assert_eq!(response.usage_reported, UsageReported::default());
}

#[test]
fn anthropic_empty_content_is_an_empty_answer_that_stopped() {
    let mut body = anthropic_success();
    body["content"] = json!([]);
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&anthropic(&server)).expect("an empty answer is an answer");
    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.refusal, None);
}
