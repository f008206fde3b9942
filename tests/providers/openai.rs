//! The OpenAI provider against a scripted local HTTP server: the exact request it sends to
//! `/chat/completions`, how it reads a completion and its usage, how error statuses, context-length
//! errors and Retry-After headers become attempt errors. Nothing leaves 127.0.0.1.

use std::time::Duration;

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    all_parameters, call, call_with, failure, openai, openai_error, openai_success,
};
use prompt_config::client::{FailureKind, FinishReason, Usage, UsageReported};
use serde_json::{Value, json};

#[test]
fn openai_posts_to_chat_completions_with_bearer_key_content_type_and_request_id() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    call(&openai(&server)).expect("success");
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk-test-SECRET-1234")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-request-id"), Some("request-42"));
    let user_agent = format!("prompt_config/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(request.header("user-agent"), Some(user_agent.as_str()));
}

#[test]
fn openai_body_carries_model_messages_in_order_and_every_given_parameter() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    call_with(&openai(&server), &all_parameters(), Duration::from_secs(5)).expect("success");
    assert_eq!(
        server.single_request().json(),
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "system", "content": "Answer in English."},
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another."}
            ],
            "temperature": 0.2,
            "max_tokens": 300,
            "top_p": 0.9,
            "stop": ["\n\n", "END"]
        })
    );
}

#[test]
fn openai_body_omits_absent_parameters() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    call(&openai(&server)).expect("success");
    let body = server.single_request().json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["model", "messages"]);
}

#[test]
fn openai_success_yields_text_finish_reason_ids_and_usage_with_cached_tokens_inside_input() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let response = call(&openai(&server)).expect("success");
    assert_eq!(response.text, "Green.");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.raw_finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.refusal, None);
    assert_eq!(
        response.response_id.as_deref(),
        Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT")
    );
    assert_eq!(
        response.response_model.as_deref(),
        Some("gpt-4o-2024-08-06")
    );
    let expected = Usage {
        input_tokens: 2006,
        output_tokens: 300,
        cache_read_input_tokens: 1920,
        cache_creation_input_tokens: 0,
    };
    assert_eq!(response.usage, expected);
}

#[test]
fn openai_null_content_is_an_empty_answer() {
    let mut body = openai_success();
    body["choices"][0]["message"]["content"] = Value::Null;
    body["choices"][0]["finish_reason"] = json!("content_filter");
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&openai(&server)).expect("success");
    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, Some(FinishReason::ContentFilter));
}

#[test]
fn openai_error_statuses_become_http_failures_with_provider_type_and_message() {
    let cases = [
        (
            400,
            "invalid_request_error",
            "invalid_value",
            "Invalid value for 'temperature'.",
        ),
        (
            401,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key: sk-test-***1234.",
        ),
        (
            403,
            "request_forbidden",
            "unsupported_country_region_territory",
            "Not supported",
        ),
        (
            404,
            "invalid_request_error",
            "model_not_found",
            "The model `gpt-9` does not exist.",
        ),
        (422, "invalid_request_error", "", "Unprocessable request."),
        (
            429,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for gpt-4o (RPM).",
        ),
        (
            500,
            "server_error",
            "",
            "The server had an error processing your request.",
        ),
        (
            503,
            "server_error",
            "",
            "The engine is currently overloaded.",
        ),
        (529, "server_error", "", "Overloaded."),
    ];
    for (status, error_type, code, message) in cases {
        let code_value = if code.is_empty() {
            Value::Null
        } else {
            json!(code)
        };
        let body = openai_error(message, error_type, code_value);
        let server = TestServer::start(vec![Reply::json(status, &body)]);
        let error = failure(call(&openai(&server)));
        let expected_message = match code {
            "" => message.to_string(),
            code => format!("{message} (code: {code})"),
        };
        assert_eq!(error.kind, FailureKind::Http, "status {status}");
        assert_eq!(error.status, Some(status));
        assert_eq!(error.provider_error_type.as_deref(), Some(error_type));
        assert_eq!(error.message, expected_message);
    }
}

#[test]
fn openai_context_length_exceeded_code_is_a_context_length_failure() {
    let body = openai_error(
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130571 tokens.",
        "invalid_request_error",
        json!("context_length_exceeded"),
    );
    let server = TestServer::start(vec![Reply::json(400, &body)]);
    let error = failure(call(&openai(&server)));
    assert_eq!(error.kind, FailureKind::ContextLength);
    assert_eq!(error.status, Some(400));
    assert_eq!(
        error.provider_error_type.as_deref(),
        Some("invalid_request_error")
    );
}

#[test]
fn openai_maximum_context_length_message_without_code_is_a_context_length_failure() {
    let body = json!({"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error"}});
    let server = TestServer::start(vec![Reply::json(400, &body)]);
    assert_eq!(
        failure(call(&openai(&server))).kind,
        FailureKind::ContextLength
    );
}

#[test]
fn openai_retry_after_ms_gives_a_fractional_wait() {
    let body = openai_error(
        "Rate limit reached.",
        "requests",
        json!("rate_limit_exceeded"),
    );
    let reply = Reply::json(429, &body)
        .header("retry-after-ms", "1250.5")
        .header("retry-after", "2");
    let server = TestServer::start(vec![reply]);
    let error = failure(call(&openai(&server)));
    assert_eq!(error.retry_after, Some(Duration::from_micros(1_250_500)));
}

#[test]
fn openai_retry_after_in_seconds_is_honoured() {
    let reply = Reply::json(
        503,
        &openai_error("Overloaded.", "server_error", Value::Null),
    )
    .header("Retry-After", "7");
    let server = TestServer::start(vec![reply]);
    assert_eq!(
        failure(call(&openai(&server))).retry_after,
        Some(Duration::from_secs(7))
    );
}

#[test]
fn openai_refusal_with_null_content_is_a_refusal_carrying_its_text() {
    let mut body = openai_success();
    body["choices"][0]["message"]["content"] = Value::Null;
    body["choices"][0]["message"]["refusal"] = json!("I'm sorry, I can't help with that.");
    body["choices"][0]["finish_reason"] = json!("stop");
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&openai(&server)).expect("a refusal is an answer");
    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(
        response.refusal.as_deref(),
        Some("I'm sorry, I can't help with that.")
    );
    assert_eq!(response.raw_finish_reason.as_deref(), Some("stop"));
}

#[test]
fn openai_finish_reasons_map_to_the_shared_vocabulary() {
    let cases = [
        ("length", FinishReason::Length),
        ("tool_calls", FinishReason::ToolCalls),
        ("function_call", FinishReason::ToolCalls),
        ("content_filter", FinishReason::ContentFilter),
        ("eos", FinishReason::Other("eos".into())),
    ];
    for (raw, expected) in cases {
        let mut body = openai_success();
        body["choices"][0]["finish_reason"] = json!(raw);
        let server = TestServer::start(vec![Reply::json(200, &body)]);
        let response = call(&openai(&server)).expect("success");
        assert_eq!(response.finish_reason, Some(expected), "{raw}");
        assert_eq!(response.raw_finish_reason.as_deref(), Some(raw));
    }
}

#[test]
fn openai_error_object_in_a_200_body_keeps_its_type_and_message() {
    let body = openai_error(
        "The server had an error while processing your request.",
        "server_error",
        Value::Null,
    );
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let error = failure(call(&openai(&server)));
    assert_eq!(error.kind, FailureKind::ErrorInBody);
    assert_eq!(error.status, None);
    assert_eq!(error.provider_error_type.as_deref(), Some("server_error"));
    assert!(
        error
            .message
            .contains("The server had an error while processing your request."),
        "{}",
        error.message
    );
}

#[test]
fn gateway_error_in_a_200_body_with_a_numeric_code_keeps_the_code_as_its_type() {
    let body =
        json!({"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min"}});
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let error = failure(call(&openai(&server)));
    assert_eq!(error.kind, FailureKind::ErrorInBody);
    assert_eq!(error.provider_error_type.as_deref(), Some("429"));
    assert!(
        error.message.contains("free-models-per-min"),
        "{}",
        error.message
    );
}

#[test]
fn openai_200_without_usage_reports_no_counts() {
    let mut body = openai_success();
    body.as_object_mut().unwrap().remove("usage");
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let response = call(&openai(&server)).expect("success");
    assert_eq!(response.usage, Usage::default());
    assert_eq!(response.usage_reported, UsageReported::default());
}
