//! Fixtures shared by the provider tests (`tests/providers/`): a fake API key, provider specs and
//! providers pointed at a scripted [`TestServer`] (the sibling module `http_server`), a
//! five-message conversation, calls with default or full parameters, and success and error
//! bodies shaped as OpenAI and Anthropic send them; for structured calls, an [`Ask`] with an
//! output schema, a tool, and a tool loop's history.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use prompt_config::client::{
    AnthropicProvider, ApiKey, AttemptError, HttpTransport, OpenAiProvider, Provider,
    ProviderRequest, ProviderResponse,
};
use prompt_config::config::{ModelParameters, ProviderSpec};
use prompt_config::output::{OutputSchema, ToolCall, ToolChoice, ToolDefinition};
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
        traceparent: None,
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

/// What a structured call asks for beyond the conversation: a model, messages, an output
/// schema, tools and a tool choice. Built with [`Ask::new`] and chained setters.
pub struct Ask {
    pub model: String,
    pub messages: Vec<Message>,
    pub output: Option<OutputSchema>,
    pub tools: Vec<ToolDefinition>,
    pub tool_choice: ToolChoice,
}

impl Ask {
    /// `model` with one user message, no schema, no tools.
    pub fn new(model: &str) -> Ask {
        Ask {
            model: model.to_string(),
            messages: vec![Message::new(Role::User, "Suggest a career path.")],
            output: None,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
        }
    }

    /// With `messages` instead of the one user message.
    pub fn messages(mut self, messages: Vec<Message>) -> Ask {
        self.messages = messages;
        self
    }

    /// With the output schema [`career_paths`].
    pub fn output(mut self) -> Ask {
        self.output = Some(career_paths());
        self
    }

    /// With the tool [`weather_tool`] (and `choice`).
    pub fn tools(mut self, choice: ToolChoice) -> Ask {
        self.tools = vec![weather_tool()];
        self.tool_choice = choice;
        self
    }

    /// The provider request, as request `request-42` with default parameters.
    pub fn request<'a>(&'a self, parameters: &'a ModelParameters) -> ProviderRequest<'a> {
        ProviderRequest {
            model: &self.model,
            messages: &self.messages,
            parameters,
            request_id: "request-42",
            timeout: Duration::from_secs(5),
            output: self.output.as_ref(),
            tools: &self.tools,
            tool_choice: &self.tool_choice,
            traceparent: None,
        }
    }

    /// Calls `provider` with this request.
    pub fn call(&self, provider: &dyn Provider) -> Result<ProviderResponse, AttemptError> {
        let parameters = ModelParameters::default();
        provider.call(&self.request(&parameters))
    }
}

/// The schema of the Career Path Navigator's answer, as a version declares it.
pub fn career_paths_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "career_paths": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "first_step": {"type": "string"}},
                    "required": ["title", "first_step"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["career_paths"],
        "additionalProperties": false
    })
}

/// [`career_paths_schema`] compiled under the name `career_paths`.
pub fn career_paths() -> OutputSchema {
    OutputSchema::compile("career_paths", career_paths_schema(), true).expect("valid schema")
}

/// The parameters schema of [`weather_tool`].
pub fn weather_parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": false
    })
}

/// A tool `get_weather(city)` with a description.
pub fn weather_tool() -> ToolDefinition {
    ToolDefinition::compile(
        "get_weather",
        Some("Current weather in a city.".to_string()),
        weather_parameters(),
    )
    .expect("valid tool")
}

/// A tool call of `get_weather` for `city` with `id`.
pub fn weather_call(id: &str, city: &str) -> ToolCall {
    ToolCall {
        id: id.to_string(),
        name: "get_weather".to_string(),
        arguments: json!({"city": city}),
    }
}

/// An assistant turn of history: `content` and `calls`.
pub fn assistant_calling(content: &str, calls: Vec<ToolCall>) -> Message {
    let mut message = Message::new(Role::Assistant, content);
    message.tool_calls = calls;
    message
}

/// A tool loop's history whose two calls have ids `first_id` and `second_id`: system, user,
/// an assistant turn calling `get_weather` twice, both results, then the user's follow-up.
pub fn tool_loop(first_id: &str, second_id: &str) -> Vec<Message> {
    vec![
        Message::new(Role::System, "You plan trips."),
        Message::new(Role::User, "Paris or Rome?"),
        assistant_calling(
            "Checking both.",
            vec![
                weather_call(first_id, "Paris"),
                weather_call(second_id, "Rome"),
            ],
        ),
        Message::tool_result(first_id, "18C, sunny"),
        Message::tool_result(second_id, "24C, clear"),
        Message::new(Role::User, "Which is warmer?"),
    ]
}
