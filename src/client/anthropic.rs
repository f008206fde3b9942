//! The Anthropic Messages provider: where its endpoint and key come from, the JSON it sends
//! (system messages lifted to the top-level `system` field, `max_tokens` always present), how it
//! reads text blocks, the stop reason (refusals included) and token usage with cache reads and
//! writes, and how Anthropic's error bodies, in an error status or inside a 200 answer, become
//! classified [`AttemptError`]s, "prompt is too long" included.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backoff::parse_retry_after;
use super::http::{self, HttpResponse, HttpTransport};
use super::secret::{ApiKey, key_variable, with_api_key};
use super::types::{
    AttemptError, FailureKind, FinishReason, Provider, ProviderRequest, ProviderResponse, Usage,
    UsageReported,
};
use crate::config::ProviderSpec;
use crate::prompt::Role;

/// The public endpoint, used when neither the config nor the environment names another.
const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The environment variable that overrides the endpoint when the config does not.
const BASE_URL_VARIABLE: &str = "ANTHROPIC_BASE_URL";

/// The environment variable holding the key when the config does not name one.
const DEFAULT_KEY_VARIABLE: &str = "ANTHROPIC_API_KEY";

/// The API version sent when the config does not pin one.
const DEFAULT_API_VERSION: &str = "2023-06-01";

/// The API requires `max_tokens`; this is sent when the parameters leave it out.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// A provider speaking Anthropic's Messages API.
#[derive(Debug)]
pub struct AnthropicProvider {
    base_url: String,
    api_version: String,
    api_key_variable: String,
    api_key: Option<ApiKey>,
    attempt_limit: Duration,
    transport: Arc<HttpTransport>,
}

impl AnthropicProvider {
    /// A provider for `spec`, reading its key from the environment now.
    pub fn new(spec: &ProviderSpec, transport: Arc<HttpTransport>) -> AnthropicProvider {
        let api_key = ApiKey::from_env(&key_variable(
            spec.api_key_env.as_deref(),
            DEFAULT_KEY_VARIABLE,
        ));
        AnthropicProvider::with_api_key(spec, transport, api_key)
    }

    /// A provider for `spec` with a key obtained elsewhere (`None` behaves as an unset variable).
    pub fn with_api_key(
        spec: &ProviderSpec,
        transport: Arc<HttpTransport>,
        api_key: Option<ApiKey>,
    ) -> AnthropicProvider {
        let from_environment = std::env::var(BASE_URL_VARIABLE).ok();
        AnthropicProvider {
            base_url: AnthropicProvider::choose_base_url(
                spec.base_url.as_deref(),
                from_environment.as_deref(),
            ),
            api_version: spec
                .anthropic_version
                .clone()
                .filter(|version| !version.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_API_VERSION.to_string()),
            api_key_variable: key_variable(spec.api_key_env.as_deref(), DEFAULT_KEY_VARIABLE),
            api_key,
            attempt_limit: Duration::from_millis(spec.timeout_ms),
            transport,
        }
    }

    /// The endpoint: the configured one, else `ANTHROPIC_BASE_URL`, else the public API.
    pub fn choose_base_url(configured: Option<&str>, from_environment: Option<&str>) -> String {
        http::choose_base_url(configured, from_environment, DEFAULT_BASE_URL)
    }

    /// The endpoint this provider calls, without the `/v1/messages` path.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn error_from(&self, response: &HttpResponse) -> AttemptError {
        let mut error = error_from_response(response);
        error.retry_after = parse_retry_after(None, response.header("retry-after"), Utc::now());
        error
    }

    fn attempt(
        &self,
        request: &ProviderRequest<'_>,
        api_key: &ApiKey,
    ) -> Result<ProviderResponse, AttemptError> {
        let body =
            serde_json::to_vec(&MessagesRequest::from_request(request)).map_err(|error| {
                AttemptError::new(
                    FailureKind::Malformed,
                    format!("could not encode the request: {error}"),
                )
            })?;
        let headers = [
            ("x-api-key", api_key.expose()),
            ("anthropic-version", self.api_version.as_str()),
            ("content-type", "application/json"),
        ];
        let url = format!("{}/v1/messages", self.base_url);
        let timeout = request.timeout.min(self.attempt_limit);
        let response = self.transport.post_json(&url, &headers, &body, timeout)?;
        if !response.is_success() {
            return Err(self.error_from(&response));
        }
        parse_message(&response.body)
    }
}

impl Provider for AnthropicProvider {
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        with_api_key(self.api_key.as_ref(), &self.api_key_variable, |api_key| {
            self.attempt(request, api_key)
        })
    }
}

/// The Messages request body; absent parameters are left out, not sent as null.
#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<TurnMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
}

#[derive(Serialize)]
struct TurnMessage<'a> {
    role: &'static str,
    content: &'a str,
}

impl<'a> MessagesRequest<'a> {
    fn from_request(request: &ProviderRequest<'a>) -> MessagesRequest<'a> {
        let parameters = request.parameters;
        // The Messages API has no system role inside `messages`; instructions go top-level.
        let system_parts: Vec<&str> = request
            .messages
            .iter()
            .filter(|message| message.role == Role::System)
            .map(|message| message.content.as_str())
            .collect();
        MessagesRequest {
            model: request.model,
            max_tokens: parameters.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: (!system_parts.is_empty()).then(|| system_parts.join("\n\n")),
            messages: request
                .messages
                .iter()
                .filter(|message| message.role != Role::System)
                .map(|message| TurnMessage {
                    role: message.role.as_str(),
                    content: &message.content,
                })
                .collect(),
            temperature: parameters.temperature,
            top_p: parameters.top_p,
            stop_sequences: Some(parameters.stop.as_slice()).filter(|stop| !stop.is_empty()),
        }
    }
}

#[derive(Deserialize)]
struct MessagesResponse {
    /// `message`, or `error` when a 200 carries an error (as gateways and proxies send).
    #[serde(rename = "type")]
    response_type: Option<String>,
    error: Option<Value>,
    id: Option<String>,
    model: Option<String>,
    content: Option<Vec<ContentBlock>>,
    stop_reason: Option<String>,
    usage: Option<MessagesUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    block_type: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct MessagesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

fn parse_message(body: &[u8]) -> Result<ProviderResponse, AttemptError> {
    let message: MessagesResponse = serde_json::from_slice(body).map_err(|error| {
        AttemptError::new(
            FailureKind::Malformed,
            format!("response is not a message: {error}"),
        )
    })?;
    let error = message.error.as_ref().filter(|error| !error.is_null());
    if error.is_some() || message.response_type.as_deref() == Some("error") {
        return Err(error_in_body(error, body));
    }
    let blocks = message.content.ok_or_else(|| {
        AttemptError::new(FailureKind::Malformed, "response message has no content")
    })?;
    // Thinking and tool-use blocks carry no answer text; only text blocks are the reply.
    let text = blocks
        .into_iter()
        .filter(|block| block.block_type.as_deref() == Some("text"))
        .filter_map(|block| block.text)
        .collect::<String>();
    let finish_reason = message
        .stop_reason
        .as_deref()
        .map(FinishReason::from_anthropic);
    // A refusal stop may come with an explanation in the text blocks, or with none.
    let refusal =
        (finish_reason == Some(FinishReason::Refusal) && !text.is_empty()).then(|| text.clone());
    let (usage, usage_reported) = message.usage.map(to_usage).unwrap_or_default();
    Ok(ProviderResponse {
        text,
        finish_reason,
        raw_finish_reason: message.stop_reason,
        refusal,
        response_id: message.id,
        response_model: message.model,
        usage,
        usage_reported,
    })
}

fn to_usage(usage: MessagesUsage) -> (Usage, UsageReported) {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let cache_creation = usage.cache_creation_input_tokens.unwrap_or(0);
    // Anthropic's input_tokens leave cache reads and writes out; ours count every input token.
    let input = usage
        .input_tokens
        .unwrap_or(0)
        .saturating_add(cache_read)
        .saturating_add(cache_creation);
    let reported = UsageReported {
        input_tokens: usage.input_tokens.is_some() && input > 0,
        output_tokens: usage.output_tokens.is_some(),
    };
    let usage = Usage {
        input_tokens: input,
        output_tokens: usage.output_tokens.unwrap_or(0),
        cache_read_input_tokens: cache_read,
        cache_creation_input_tokens: cache_creation,
    };
    (usage, reported)
}

/// An error object inside a 2xx body: kept with its type and message, judged by the type.
fn error_in_body(error: Option<&Value>, body: &[u8]) -> AttemptError {
    let (error_type, message) = error_type_and_message(error, body);
    let described = match error_type {
        Some(error_type) => format!("error in a 2xx response ({error_type}): {message}"),
        None => format!("error in a 2xx response: {message}"),
    };
    let mut attempt_error =
        AttemptError::new(FailureKind::ErrorInBody, http::truncate_message(&described));
    if error_type == Some("invalid_request_error") && is_context_length(&message) {
        attempt_error.kind = FailureKind::ContextLength;
    }
    attempt_error.provider_error_type = error_type.map(str::to_string);
    attempt_error
}

fn error_type_and_message<'a>(error: Option<&'a Value>, body: &[u8]) -> (Option<&'a str>, String) {
    let text_field = |name: &str| {
        error
            .and_then(|error| error.get(name))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let message = text_field("message")
        .map(str::to_string)
        .unwrap_or_else(|| http::body_excerpt(body));
    (text_field("type"), message)
}

fn is_context_length(message: &str) -> bool {
    let lowered = message.to_lowercase();
    CONTEXT_LENGTH_PHRASES
        .iter()
        .any(|phrase| lowered.contains(phrase))
}

/// Phrases of 400 `invalid_request_error` messages that mean the prompt overflows the window.
const CONTEXT_LENGTH_PHRASES: [&str; 2] = ["prompt is too long", "exceed context limit"];

/// Classifies an error status from Anthropic's `{"type":"error","error":{"type","message"}}`.
fn error_from_response(response: &HttpResponse) -> AttemptError {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let error = parsed.as_ref().and_then(|body| body.get("error"));
    let (error_type, message) = error_type_and_message(error, &response.body);
    let context_length = response.status == 400
        && error_type == Some("invalid_request_error")
        && is_context_length(&message);
    let mut attempt_error = AttemptError::http(response.status, http::truncate_message(&message));
    attempt_error.provider_error_type = error_type.map(str::to_string);
    if context_length {
        attempt_error.kind = FailureKind::ContextLength;
    }
    attempt_error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelParameters;
    use crate::prompt::Message;

    fn message(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn configured_base_url_wins_over_the_environment() {
        let chosen =
            AnthropicProvider::choose_base_url(Some("http://gateway/"), Some("http://env"));
        assert_eq!(chosen, "http://gateway");
    }

    #[test]
    fn environment_base_url_wins_over_the_default() {
        let chosen = AnthropicProvider::choose_base_url(None, Some("http://env/"));
        assert_eq!(chosen, "http://env");
    }

    #[test]
    fn default_base_url_is_the_public_api() {
        assert_eq!(
            AnthropicProvider::choose_base_url(None, None),
            DEFAULT_BASE_URL
        );
    }

    #[test]
    fn system_messages_are_joined_into_the_top_level_field() {
        let messages = [
            message(Role::System, "Be brief."),
            message(Role::System, "Answer in French."),
            message(Role::User, "Hello"),
        ];
        let parameters = ModelParameters::default();
        let request = ProviderRequest {
            model: "claude-sonnet-4-5",
            messages: &messages,
            parameters: &parameters,
            request_id: "request-1",
            timeout: Duration::from_secs(1),
        };
        let body = serde_json::to_value(MessagesRequest::from_request(&request)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "system": "Be brief.\n\nAnswer in French.",
                "messages": [{"role": "user", "content": "Hello"}],
            })
        );
    }

    #[test]
    fn only_text_blocks_make_the_answer() {
        let body = br#"{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"a"},{"type":"text","text":"b"}]}"#;
        let response = parse_message(body).unwrap();
        assert_eq!(response.text, "ab");
        assert_eq!(response.usage, Usage::default());
        assert_eq!(response.usage_reported, UsageReported::default());
    }

    #[test]
    fn input_tokens_include_cache_reads_and_writes() {
        let (usage, reported) = to_usage(MessagesUsage {
            input_tokens: Some(21),
            output_tokens: Some(5),
            cache_read_input_tokens: Some(1500),
            cache_creation_input_tokens: Some(100),
        });
        assert_eq!(usage.input_tokens, 1621);
        assert_eq!(usage.uncached_input_tokens(), 21);
        assert_eq!(reported, UsageReported::ALL);
    }
}
