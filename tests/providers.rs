//! The OpenAI and Anthropic providers against a scripted local HTTP server: the exact requests
//! they send, how they read successes and errors, how transport failures are classified, that
//! connections are reused, and that the API key never shows. Nothing leaves 127.0.0.1.

#[path = "support/http_server.rs"]
mod http_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http_server::{Reply, TestServer};
use prompt_config::client::{
    AnthropicProvider, ApiKey, AttemptError, FailureKind, HttpTransport, OpenAiProvider, Provider,
    ProviderRequest, ProviderResponse, Usage,
};
use prompt_config::config::{ModelParameters, ProviderSpec};
use prompt_config::{Message, Role};
use serde_json::{Value, json};

const FAKE_KEY: &str = "sk-test-SECRET-1234";

fn fresh_transport() -> Arc<HttpTransport> {
    Arc::new(HttpTransport::new())
}

fn fake_key() -> Option<ApiKey> {
    Some(ApiKey::new(FAKE_KEY))
}

fn spec(kind: &str, base_url: &str) -> ProviderSpec {
    serde_json::from_value(json!({"kind": kind, "base_url": base_url, "models": {}}))
        .expect("provider spec")
}

fn openai(server: &TestServer) -> OpenAiProvider {
    let spec = spec("openai", &format!("{}/v1", server.url()));
    OpenAiProvider::with_api_key(&spec, fresh_transport(), fake_key())
}

fn anthropic(server: &TestServer) -> AnthropicProvider {
    let spec = spec("anthropic", &server.url());
    AnthropicProvider::with_api_key(&spec, fresh_transport(), fake_key())
}

fn conversation() -> Vec<Message> {
    let message = |role, content: &str| Message {
        role,
        content: content.into(),
    };
    vec![
        message(Role::System, "You are terse."),
        message(Role::System, "Answer in English."),
        message(Role::User, "Name a colour."),
        message(Role::Assistant, "Blue."),
        message(Role::User, "Another."),
    ]
}

fn all_parameters() -> ModelParameters {
    ModelParameters {
        temperature: Some(0.2),
        max_tokens: Some(300),
        top_p: Some(0.9),
        stop: vec!["\n\n".into(), "END".into()],
    }
}

fn call_with(
    provider: &dyn Provider,
    parameters: &ModelParameters,
    timeout: Duration,
) -> Result<ProviderResponse, AttemptError> {
    let messages = conversation();
    provider.call(&ProviderRequest {
        model: "test-model",
        messages: &messages,
        parameters,
        request_id: "request-42",
        timeout,
    })
}

fn call(provider: &dyn Provider) -> Result<ProviderResponse, AttemptError> {
    call_with(
        provider,
        &ModelParameters::default(),
        Duration::from_secs(5),
    )
}

fn failure(result: Result<ProviderResponse, AttemptError>) -> AttemptError {
    result.expect_err("the call should fail")
}

fn openai_success() -> Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Green.", "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035"
    })
}

fn anthropic_success() -> Value {
    json!({
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Green"}, {"type": "text", "text": "."}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 21,
            "cache_creation_input_tokens": 188086,
            "cache_read_input_tokens": 1500,
            "output_tokens": 393
        }
    })
}

fn openai_error(message: &str, error_type: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}

fn anthropic_error(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}

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
    let messages = [Message {
        role: Role::User,
        content: "Hi".into(),
    }];
    let parameters = ModelParameters::default();
    provider
        .call(&ProviderRequest {
            model: "claude-haiku-4-5",
            messages: &messages,
            parameters: &parameters,
            request_id: "request-1",
            timeout: Duration::from_secs(5),
        })
        .expect("success");
    assert_eq!(
        server.single_request().json(),
        json!({"model": "claude-haiku-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]})
    );
}

#[test]
fn openai_success_yields_text_finish_reason_ids_and_usage_with_cached_tokens_apart() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let response = call(&openai(&server)).expect("success");
    assert_eq!(response.text, "Green.");
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        response.response_id.as_deref(),
        Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT")
    );
    assert_eq!(
        response.response_model.as_deref(),
        Some("gpt-4o-2024-08-06")
    );
    let expected = Usage {
        input_tokens: 86,
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
    assert_eq!(response.finish_reason.as_deref(), Some("content_filter"));
}

#[test]
fn anthropic_success_joins_text_blocks_and_reports_cache_reads_and_writes() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    let response = call(&anthropic(&server)).expect("success");
    assert_eq!(response.text, "Green.");
    assert_eq!(response.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(
        response.response_id.as_deref(),
        Some("msg_013Zva2CMHLNnXjNJJKqJ2EF")
    );
    assert_eq!(
        response.response_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    let expected = Usage {
        input_tokens: 21,
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
fn a_missing_key_fails_without_network_naming_the_default_variable() {
    let server = TestServer::start(vec![]);
    let transport = fresh_transport();
    let openai =
        OpenAiProvider::with_api_key(&spec("openai", &server.url()), Arc::clone(&transport), None);
    let anthropic =
        AnthropicProvider::with_api_key(&spec("anthropic", &server.url()), transport, None);
    let openai_error = failure(call(&openai));
    let anthropic_error = failure(call(&anthropic));
    assert_eq!(
        (openai_error.kind, openai_error.message.as_str()),
        (FailureKind::MissingApiKey, "OPENAI_API_KEY is not set")
    );
    assert_eq!(
        (anthropic_error.kind, anthropic_error.message.as_str()),
        (FailureKind::MissingApiKey, "ANTHROPIC_API_KEY is not set")
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_missing_key_names_the_configured_variable() {
    let server = TestServer::start(vec![]);
    let mut spec = spec("openai", &server.url());
    spec.api_key_env = Some("PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET".into());
    let error = failure(call(&OpenAiProvider::new(&spec, fresh_transport())));
    assert_eq!(error.kind, FailureKind::MissingApiKey);
    assert_eq!(
        error.message,
        "PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET is not set"
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn base_url_precedence_is_config_then_environment_then_default() {
    assert_eq!(
        OpenAiProvider::choose_base_url(Some("http://gateway/v1/"), Some("http://env/v1")),
        "http://gateway/v1"
    );
    assert_eq!(
        OpenAiProvider::choose_base_url(None, Some("http://env/v1")),
        "http://env/v1"
    );
    assert_eq!(
        OpenAiProvider::choose_base_url(None, Some("")),
        "https://api.openai.com/v1"
    );
    assert_eq!(
        AnthropicProvider::choose_base_url(Some("http://gateway"), Some("http://env")),
        "http://gateway"
    );
    assert_eq!(
        AnthropicProvider::choose_base_url(None, Some("http://env/")),
        "http://env"
    );
    assert_eq!(
        AnthropicProvider::choose_base_url(None, None),
        "https://api.anthropic.com"
    );
}

#[test]
fn a_configured_base_url_is_used_without_its_trailing_slash() {
    let provider =
        OpenAiProvider::new(&spec("openai", "http://127.0.0.1:9/v1/"), fresh_transport());
    assert_eq!(provider.base_url(), "http://127.0.0.1:9/v1");
}

#[test]
fn debug_output_never_shows_the_key() {
    let server = TestServer::start(vec![]);
    let shown = format!(
        "{:?} {:#?} {:?}",
        openai(&server),
        anthropic(&server),
        ApiKey::new(FAKE_KEY)
    );
    assert!(!shown.contains(FAKE_KEY), "{shown}");
    assert!(shown.contains("ApiKey(***)"));
}

#[test]
fn errors_never_show_the_key_even_when_the_server_echoes_it() {
    let echoed = format!("Invalid header: Bearer {FAKE_KEY}");
    let server = TestServer::start(vec![
        Reply::json(
            401,
            &openai_error(&echoed, "invalid_request_error", json!("invalid_api_key")),
        ),
        Reply::json(401, &anthropic_error("authentication_error", &echoed)),
        Reply::text(400, &echoed),
        Reply::json(200, &json!({"choices": echoed})),
    ]);
    let errors = [
        call(&openai(&server)),
        call(&anthropic(&server)),
        call(&openai(&server)),
        call(&openai(&server)),
    ]
    .map(failure);
    for error in errors {
        let shown = format!(
            "{error} {error:?} {}",
            serde_json::to_string(&error).unwrap()
        );
        assert!(!shown.contains(FAKE_KEY), "{shown}");
        assert!(error.message.contains("***"), "{}", error.message);
    }
}

#[test]
fn a_key_that_cannot_be_a_header_value_fails_without_revealing_it() {
    let server = TestServer::start(vec![]);
    let broken_key = format!("{FAKE_KEY}\nx-injected: 1");
    let provider = OpenAiProvider::with_api_key(
        &spec("openai", &server.url()),
        fresh_transport(),
        Some(ApiKey::new(broken_key)),
    );
    let error = failure(call(&provider));
    assert_eq!(error.kind, FailureKind::Connect);
    assert!(!format!("{error} {error:?}").contains(FAKE_KEY));
    assert_eq!(server.connections(), 0);
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
