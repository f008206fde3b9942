//! Fixtures shared by the provider tests (`tests/providers/`): a fake API key, provider specs and
//! providers pointed at a scripted [`TestServer`] (the sibling module `http_server`), a
//! five-message conversation, calls with default or full parameters, and success and error
//! bodies shaped as OpenAI and Anthropic send them.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use prompt_config::client::{
    AnthropicProvider, ApiKey, AttemptError, HttpTransport, OpenAiProvider, Provider,
    ProviderRequest, ProviderResponse,
};
use prompt_config::config::{ModelParameters, ProviderSpec};
use prompt_config::{Message, Role};
use serde_json::{Value, json};

use super::http_server::TestServer;

/// The API key every fixture provider sends; no output may ever show it.
pub const FAKE_KEY: &str = "sk-test-SECRET-1234";

/// A transport of its own, so no connection is shared with another test.
pub fn fresh_transport() -> Arc<HttpTransport> {
    Arc::new(HttpTransport::new())
}

/// [`FAKE_KEY`] as an [`ApiKey`].
pub fn fake_key() -> Option<ApiKey> {
    Some(ApiKey::new(FAKE_KEY))
}

/// A provider spec of `kind` (`openai` or `anthropic`) at `base_url`, with no models.
pub fn spec(kind: &str, base_url: &str) -> ProviderSpec {
    serde_json::from_value(json!({"kind": kind, "base_url": base_url, "models": {}}))
        .expect("provider spec")
}

/// An OpenAI provider on `server` (its `/v1`) with the fake key.
pub fn openai(server: &TestServer) -> OpenAiProvider {
    let spec = spec("openai", &format!("{}/v1", server.url()));
    OpenAiProvider::with_api_key(&spec, fresh_transport(), fake_key())
}

/// An Anthropic provider on `server` with the fake key.
pub fn anthropic(server: &TestServer) -> AnthropicProvider {
    let spec = spec("anthropic", &server.url());
    AnthropicProvider::with_api_key(&spec, fresh_transport(), fake_key())
}

/// Two system messages, then user, assistant and user turns.
pub fn conversation() -> Vec<Message> {
    let message = |role, content: &str| Message::new(role, content);
    vec![
        message(Role::System, "You are terse."),
        message(Role::System, "Answer in English."),
        message(Role::User, "Name a colour."),
        message(Role::Assistant, "Blue."),
        message(Role::User, "Another."),
    ]
}

/// Every model parameter set: temperature, max tokens, top-p and two stop sequences.
pub fn all_parameters() -> ModelParameters {
    // `ModelParameters` is `#[non_exhaustive]`: built from its default, field by field.
    let mut parameters = ModelParameters::default();
    parameters.temperature = Some(0.2);
    parameters.max_tokens = Some(300);
    parameters.top_p = Some(0.9);
    parameters.stop = vec!["\n\n".into(), "END".into()];
    parameters
}

/// Calls `test-model` with the conversation, as request `request-42`.
pub fn call_with(
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
        output: None,
        tools: &[],
        tool_choice: &Default::default(),
    })
}

/// [`call_with`] with default parameters and a 5 s timeout.
pub fn call(provider: &dyn Provider) -> Result<ProviderResponse, AttemptError> {
    call_with(
        provider,
        &ModelParameters::default(),
        Duration::from_secs(5),
    )
}

/// The error of a call that must fail; panics on a success, failing the test.
pub fn failure(result: Result<ProviderResponse, AttemptError>) -> AttemptError {
    result.expect_err("the call should fail")
}

/// A chat completion as OpenAI sends it, with cached prompt tokens.
pub fn openai_success() -> Value {
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

/// A message as Anthropic sends it: two text blocks, cache reads and writes.
pub fn anthropic_success() -> Value {
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

/// An OpenAI error body.
pub fn openai_error(message: &str, error_type: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}

/// An Anthropic error body.
pub fn anthropic_error(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}
