//! The Anthropic Messages provider: where its endpoint and key come from, the JSON it sends
//! (`request.rs`: system messages lifted to the top-level `system` field, `max_tokens` always
//! present, tools, history's tool calls and results as content blocks, the output schema native
//! or as a forced tool), how it reads text and `tool_use` blocks (the forced output tool's input
//! as the answer text), the stop reason (refusals included) and token usage with cache reads and
//! writes, whole or streamed (`stream.rs`), and how Anthropic's error bodies, in an error status
//! or inside a 200 answer, become classified [`AttemptError`]s, "prompt is too long" included.

use serde::Deserialize;
use serde_json::Value;

use super::endpoint::{
    ApiDefaults, KeyHeader, KeyUse, Messages, ProviderError, Route, WireFormat, decode,
};
use super::http;
use super::secret::{ApiKey, key_variable};
use super::types::{
    AttemptError, FailureKind, FinishReason, ProviderRequest, ProviderResponse, Usage,
    UsageReported,
};
use crate::config::ProviderSpec;
use crate::output::RawToolCall;

#[cfg(test)]
mod props;
mod request;
mod stream;

use request::{MessagesRequest, OutputMode};
pub(crate) use stream::MessagesStreamDecoder;

/// The API version sent when the config does not pin one.
const DEFAULT_API_VERSION: &str = "2023-06-01";

impl WireFormat for Messages {
    const DEFAULTS: ApiDefaults = ApiDefaults {
        base_url: "https://api.anthropic.com",
        base_url_variable: "ANTHROPIC_BASE_URL",
        key_variable: "ANTHROPIC_API_KEY",
    };

    fn route(spec: &ProviderSpec, base_url: &str, api_key: Option<ApiKey>) -> Route {
        let api_version = spec
            .anthropic_version
            .clone()
            .filter(|version| !version.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_string());
        let mut headers = vec![("anthropic-version".to_string(), api_version)];
        headers.extend(spec.headers.clone());
        let variable = key_variable(spec.api_key_env.as_deref(), Self::DEFAULTS.key_variable);
        let header = KeyHeader {
            name: "x-api-key".into(),
            scheme: None,
        };
        Route {
            url: format!("{base_url}/v1/messages"),
            headers,
            key: KeyUse::Required {
                variable,
                key: api_key,
                header,
            },
            request_id_header: None,
        }
    }

    const ENCODE: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>> =
        |request| serde_json::to_vec(&MessagesRequest::from_request(request));
    const ENCODE_STREAM: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>> = |request| {
        let mut body = MessagesRequest::from_request(request);
        body.stream = true;
        serde_json::to_vec(&body)
    };
    type Decoder = MessagesStreamDecoder;
    const PARSE: fn(&[u8], &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> =
        |body, request| parse_message(body, OutputMode::of(request).output_tool());
    const READ_ERROR: fn(Option<&Value>, &[u8], bool) -> ProviderError = read_error;
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

/// One content block: `text`, `tool_use` (`id`, `name`, `input`), or one we do not read
/// (`thinking`, server tool blocks).
#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    block_type: Option<String>,
    text: Option<String>,
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct MessagesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

/// Reads a message; `output_tool` names the forced output tool when the request had one.
fn parse_message(body: &[u8], output_tool: Option<&str>) -> Result<ProviderResponse, AttemptError> {
    let message: MessagesResponse = decode(body, "a message")?;
    let error = message.error.as_ref().filter(|error| !error.is_null());
    if error.is_some() || message.response_type.as_deref() == Some("error") {
        return Err(read_error(error, body, true).into_error_in_body());
    }
    let blocks = message.content.ok_or_else(|| {
        AttemptError::new(FailureKind::Malformed, "response message has no content")
    })?;
    let mut reply = Reply::default();
    // Thinking and server-tool blocks carry no answer; text and tool_use blocks do.
    for block in blocks {
        match block.block_type.as_deref() {
            Some("text") => reply.text.push_str(block.text.as_deref().unwrap_or("")),
            Some("tool_use") => {
                let name = block.name.unwrap_or_default();
                let input = block.input.map(|input| input.to_string());
                if output_tool == Some(name.as_str()) && reply.answer.is_none() {
                    reply.answer = Some(input.unwrap_or_default());
                } else {
                    reply.tool_calls.push(RawToolCall {
                        id: block.id.unwrap_or_default(),
                        name,
                        arguments: input.unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(response(
        reply,
        message.stop_reason,
        message.id,
        message.model,
        message.usage,
    ))
}

/// What the model wrote, whole or streamed.
#[derive(Default)]
struct Reply {
    /// The text blocks, joined.
    text: String,
    /// The forced output tool's input as JSON text, when it was called: the answer.
    answer: Option<String>,
    /// The calls of the version's tools, in order.
    tool_calls: Vec<RawToolCall>,
}

/// The response of a message, whole or streamed: the same stop-reason, refusal and usage rules.
/// The forced output tool's input is the answer text, and its `tool_use` stop a natural one;
/// without it the text blocks are the answer.
fn response(
    reply: Reply,
    stop_reason: Option<String>,
    id: Option<String>,
    model: Option<String>,
    usage: Option<MessagesUsage>,
) -> ProviderResponse {
    let answered_by_tool = reply.answer.is_some() && reply.tool_calls.is_empty();
    let finish_reason = match stop_reason.as_deref() {
        Some("tool_use") if answered_by_tool => Some(FinishReason::Stop),
        other => other.map(FinishReason::from_anthropic),
    };
    // A refusal stop may come with an explanation in the text blocks, or with none.
    let refusal = (finish_reason == Some(FinishReason::Refusal) && !reply.text.is_empty())
        .then(|| reply.text.clone());
    let (usage, usage_reported) = usage.map(to_usage).unwrap_or_default();
    ProviderResponse {
        text: reply.answer.unwrap_or(reply.text),
        finish_reason,
        raw_finish_reason: stop_reason,
        refusal,
        response_id: id,
        response_model: model,
        usage,
        usage_reported,
        tool_calls: reply.tool_calls,
    }
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

/// Reads Anthropic's `{"type": "error", "error": {"type", "message"}}`; only an
/// `invalid_request_error` can mean the prompt is too long.
fn read_error(error: Option<&Value>, body: &[u8], _in_body: bool) -> ProviderError {
    let (error_type, message) = error_type_and_message(error, body);
    ProviderError {
        context_length: error_type == Some("invalid_request_error") && is_context_length(&message),
        error_type: error_type.map(str::to_string),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::endpoint::test_request;
    use crate::config::ModelParameters;
    use crate::prompt::{Message, Role};

    fn message(role: Role, content: &str) -> Message {
        Message::new(role, content)
    }

    #[test]
    fn system_messages_are_joined_into_the_top_level_field() {
        let messages = [
            message(Role::System, "Be brief."),
            message(Role::System, "Answer in French."),
            message(Role::User, "Hello"),
        ];
        let parameters = ModelParameters::default();
        let request = test_request("claude-sonnet-4-5", &messages, &parameters);
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
        let response = parse_message(body, None).unwrap();
        assert_eq!(response.text, "ab");
        assert_eq!(response.usage, Usage::default());
        assert_eq!(response.usage_reported, UsageReported::default());
    }

    #[test]
    fn the_stream_request_body_adds_only_stream_true() {
        let messages = [message(Role::User, "Hello")];
        let parameters = ModelParameters::default();
        let request = test_request("claude-sonnet-4-5", &messages, &parameters);
        let body: serde_json::Value =
            serde_json::from_slice(&(Messages::ENCODE_STREAM)(&request).unwrap()).unwrap();
        assert_eq!(body["stream"], serde_json::json!(true));
        let plain: serde_json::Value =
            serde_json::from_slice(&(Messages::ENCODE)(&request).unwrap()).unwrap();
        assert_eq!(plain.get("stream"), None);
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
