//! The Anthropic Messages provider: where its endpoint and key come from, the JSON it sends
//! (system messages lifted to the top-level `system` field, `max_tokens` always present), how it
//! reads text blocks, the stop reason (refusals included) and token usage with cache reads and
//! writes, and how Anthropic's error bodies, in an error status or inside a 200 answer, become
//! classified [`AttemptError`]s, "prompt is too long" included.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::endpoint::{
    ApiDefaults, KeyHeader, KeyUse, Messages, ProviderError, Route, Sampling, WireFormat,
    WireMessage, decode,
};
use super::event_stream::{Step, StreamDecoder};
use super::http;
use super::secret::{ApiKey, key_variable};
use super::sse::SseEvent;
use super::types::{
    AttemptError, FailureKind, FinishReason, ProviderRequest, ProviderResponse, Usage,
    UsageReported,
};
use crate::config::ProviderSpec;
use crate::prompt::Role;

/// The API version sent when the config does not pin one.
const DEFAULT_API_VERSION: &str = "2023-06-01";

/// The API requires `max_tokens`; this is sent when the parameters leave it out.
const DEFAULT_MAX_TOKENS: u32 = 1024;

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
    const PARSE: fn(&[u8]) -> Result<ProviderResponse, AttemptError> = parse_message;
    const READ_ERROR: fn(Option<&Value>, &[u8], bool) -> ProviderError = read_error;
}

/// The Messages request body; absent parameters are left out, not sent as null.
#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    #[serde(flatten)]
    sampling: Sampling,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
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
                .map(WireMessage::from)
                .collect(),
            sampling: Sampling::from(parameters),
            stop_sequences: Some(parameters.stop.as_slice()).filter(|stop| !stop.is_empty()),
            stream: false,
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

#[derive(Deserialize, Default, Clone, Copy)]
struct MessagesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

fn parse_message(body: &[u8]) -> Result<ProviderResponse, AttemptError> {
    let message: MessagesResponse = decode(body, "a message")?;
    let error = message.error.as_ref().filter(|error| !error.is_null());
    if error.is_some() || message.response_type.as_deref() == Some("error") {
        return Err(read_error(error, body, true).into_error_in_body());
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
    Ok(response(
        text,
        message.stop_reason,
        message.id,
        message.model,
        message.usage,
    ))
}

/// The response of a message, whole or streamed: the same stop-reason, refusal and usage rules.
fn response(
    text: String,
    stop_reason: Option<String>,
    id: Option<String>,
    model: Option<String>,
    usage: Option<MessagesUsage>,
) -> ProviderResponse {
    let finish_reason = stop_reason.as_deref().map(FinishReason::from_anthropic);
    // A refusal stop may come with an explanation in the text blocks, or with none.
    let refusal =
        (finish_reason == Some(FinishReason::Refusal) && !text.is_empty()).then(|| text.clone());
    let (usage, usage_reported) = usage.map(to_usage).unwrap_or_default();
    ProviderResponse {
        text,
        finish_reason,
        raw_finish_reason: stop_reason,
        refusal,
        response_id: id,
        response_model: model,
        usage,
        usage_reported,
        tool_calls: Vec::new(),
    }
}

/// The event types a Messages stream is read by; any other (`ping`, and the types Anthropic's
/// versioning policy says may be added) is skipped.
const KNOWN_EVENTS: [&str; 7] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

/// One event's data; every field is optional because each event type has its own.
#[derive(Deserialize)]
struct MessagesEvent {
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// `message_start`: the message without content.
    message: Option<StartedMessage>,
    /// `content_block_delta` (`text_delta`, ...) or `message_delta` (`stop_reason`).
    delta: Option<EventDelta>,
    /// `message_delta`: the usage so far (output tokens; input and cache counts in newer
    /// versions).
    usage: Option<MessagesUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct StartedMessage {
    id: Option<String>,
    model: Option<String>,
    usage: Option<MessagesUsage>,
}

#[derive(Deserialize)]
struct EventDelta {
    #[serde(rename = "type")]
    delta_type: Option<String>,
    text: Option<String>,
    stop_reason: Option<String>,
}

/// Reads a Messages stream: `message_start`, content block events, `message_delta`, then
/// `message_stop`.
#[derive(Default)]
pub(crate) struct MessagesStreamDecoder {
    text: String,
    stop_reason: Option<String>,
    id: Option<String>,
    model: Option<String>,
    usage: Option<MessagesUsage>,
}

impl MessagesStreamDecoder {
    /// Counts in a later usage replace earlier ones; absent counts keep what came before.
    fn merge_usage(&mut self, later: MessagesUsage) {
        let earlier = self.usage.take().unwrap_or_default();
        self.usage = Some(MessagesUsage {
            input_tokens: later.input_tokens.or(earlier.input_tokens),
            output_tokens: later.output_tokens.or(earlier.output_tokens),
            cache_read_input_tokens: later
                .cache_read_input_tokens
                .or(earlier.cache_read_input_tokens),
            cache_creation_input_tokens: later
                .cache_creation_input_tokens
                .or(earlier.cache_creation_input_tokens),
        });
    }
}

impl StreamDecoder for MessagesStreamDecoder {
    fn event(&mut self, event: SseEvent) -> Result<Step, AttemptError> {
        if event.event == "ping" {
            return Ok(Step::Skip);
        }
        let parsed: MessagesEvent = match decode(event.data.as_bytes(), "a message stream event") {
            Ok(parsed) => parsed,
            // An unknown event type may carry anything; only ours must be JSON.
            Err(_) if !KNOWN_EVENTS.contains(&event.event.as_str()) => return Ok(Step::Skip),
            Err(error) => return Err(error),
        };
        // The data's `type` names the event; the SSE `event:` field is the fallback.
        let event_type = parsed.event_type.as_deref().unwrap_or(&event.event);
        match event_type {
            "error" => Err(
                read_error(parsed.error.as_ref(), event.data.as_bytes(), true).into_error_in_body(),
            ),
            "message_start" => {
                if let Some(message) = parsed.message {
                    self.id = message.id;
                    self.model = message.model;
                    if let Some(usage) = message.usage {
                        self.merge_usage(usage);
                    }
                }
                Ok(Step::Skip)
            }
            "content_block_delta" => match parsed.delta {
                // Thinking, tool input and citation deltas carry no answer text.
                Some(EventDelta {
                    delta_type: Some(delta_type),
                    text: Some(text),
                    ..
                }) if delta_type == "text_delta" => {
                    self.text.push_str(&text);
                    Ok(Step::Delta(text))
                }
                _ => Ok(Step::Skip),
            },
            "message_delta" => {
                if let Some(stop_reason) = parsed.delta.and_then(|delta| delta.stop_reason) {
                    self.stop_reason = Some(stop_reason);
                }
                if let Some(usage) = parsed.usage {
                    self.merge_usage(usage);
                }
                Ok(Step::Skip)
            }
            "message_stop" => {
                let decoder = std::mem::take(self);
                Ok(Step::Done(response(
                    decoder.text,
                    decoder.stop_reason,
                    decoder.id,
                    decoder.model,
                    decoder.usage,
                )))
            }
            _ => Ok(Step::Skip),
        }
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
    use crate::prompt::Message;

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
        let response = parse_message(body).unwrap();
        assert_eq!(response.text, "ab");
        assert_eq!(response.usage, Usage::default());
        assert_eq!(response.usage_reported, UsageReported::default());
    }

    fn sse(event: &str, data: serde_json::Value) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.to_string(),
            id: String::new(),
            retry: None,
        }
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
    fn a_message_delta_with_input_counts_replaces_those_of_message_start() {
        let mut decoder = MessagesStreamDecoder::default();
        let start = serde_json::json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}});
        let delta = serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 12, "output_tokens": 40}});
        assert!(matches!(
            decoder.event(sse("message_start", start)),
            Ok(Step::Skip)
        ));
        assert!(matches!(
            decoder.event(sse("message_delta", delta)),
            Ok(Step::Skip)
        ));
        let stop = serde_json::json!({"type": "message_stop"});
        let Ok(Step::Done(response)) = decoder.event(sse("message_stop", stop)) else {
            panic!("message_stop ends the stream");
        };
        assert_eq!(response.usage.input_tokens, 17);
        assert_eq!(response.usage.output_tokens, 40);
        assert_eq!(response.usage.cache_read_input_tokens, 5);
    }

    #[test]
    fn a_known_event_whose_data_is_not_json_is_malformed() {
        let mut decoder = MessagesStreamDecoder::default();
        let event = SseEvent {
            event: "content_block_delta".into(),
            data: "{not json".into(),
            id: String::new(),
            retry: None,
        };
        let Err(error) = decoder.event(event) else {
            panic!("unreadable data of a known event fails");
        };
        assert_eq!(error.kind, FailureKind::Malformed);
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
