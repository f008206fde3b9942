//! The OpenAI Chat Completions provider: where its endpoint and key come from, the JSON it sends
//! (`request.rs`: messages with history's tool calls and results, `response_format`, tools),
//! how it reads a completion (text, tool calls, finish reason, refusal), whole or streamed
//! (`stream.rs`), and its token usage (cached prompt tokens as a part of the input), and how OpenAI's error bodies, in an error status or inside a 200
//! answer from a compatible gateway, become classified [`AttemptError`]s, context-length
//! overflows included.

use serde::Deserialize;
use serde_json::Value;

use super::endpoint::{
    ApiDefaults, ChatCompletions, KeyHeader, KeyUse, OpenAiProvider, ProviderError, Route,
    WireFormat, decode, with_query,
};
use super::http;
use super::secret::{ApiKey, key_variable};
use super::types::{
    AttemptError, FailureKind, FinishReason, ProviderRequest, ProviderResponse, Usage,
    UsageReported,
};
use crate::config::{ProviderKind, ProviderSpec};
use crate::output::RawToolCall;

#[cfg(test)]
mod props;
mod request;
mod stream;

use request::{ChatRequest, StreamOptions};
pub(crate) use stream::ChatStreamDecoder;

/// The header the key travels in unless `auth_header` names another.
const DEFAULT_AUTH_HEADER: &str = "authorization";

impl WireFormat for ChatCompletions {
    const DEFAULTS: ApiDefaults = ApiDefaults {
        base_url: "https://api.openai.com/v1",
        base_url_variable: "OPENAI_BASE_URL",
        key_variable: "OPENAI_API_KEY",
    };

    fn base_url(spec: &ProviderSpec) -> String {
        if is_compatible(spec) {
            // A compatible server has no default and is never redirected by OPENAI_BASE_URL,
            // which is meant for the OpenAI provider.
            return http::choose_base_url(spec.base_url.as_deref(), None, "");
        }
        let from_environment = std::env::var(Self::DEFAULTS.base_url_variable).ok();
        OpenAiProvider::choose_base_url(spec.base_url.as_deref(), from_environment.as_deref())
    }

    /// The configured variable, else `OPENAI_API_KEY` for `openai`; an `openai_compatible`
    /// provider without `api_key_env` sends no key.
    fn key_variable(spec: &ProviderSpec) -> Option<String> {
        if is_compatible(spec) {
            let configured = spec.api_key_env.as_deref().map(str::trim);
            configured
                .filter(|variable| !variable.is_empty())
                .map(str::to_string)
        } else {
            Some(key_variable(
                spec.api_key_env.as_deref(),
                Self::DEFAULTS.key_variable,
            ))
        }
    }

    fn route(spec: &ProviderSpec, base_url: &str, api_key: Option<ApiKey>) -> Route {
        let header = key_header(spec);
        let required = !is_compatible(spec) || spec.api_key_required != Some(false);
        let key = match ChatCompletions::key_variable(spec) {
            Some(variable) if required => KeyUse::Required {
                variable,
                key: api_key,
                header,
            },
            _ => KeyUse::Optional {
                key: api_key,
                header,
            },
        };
        Route {
            url: with_query(format!("{base_url}/chat/completions"), &spec.query),
            headers: spec.headers.clone().into_iter().collect(),
            key,
            request_id_header: Some("x-request-id"),
        }
    }

    const ENCODE: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>> =
        |request| serde_json::to_vec(&ChatRequest::from_request(request));
    const ENCODE_STREAM: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>> = |request| {
        let mut body = ChatRequest::from_request(request);
        body.stream = true;
        // Without it the stream carries no usage at all; with it the last chunk (empty
        // `choices`) has the usage of the whole answer.
        body.stream_options = Some(StreamOptions {
            include_usage: true,
        });
        serde_json::to_vec(&body)
    };
    type Decoder = ChatStreamDecoder;
    const PARSE: fn(&[u8], &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> =
        |body, _request| parse_completion(body);
    const READ_ERROR: fn(Option<&Value>, &[u8], bool) -> ProviderError = read_error;
}

fn is_compatible(spec: &ProviderSpec) -> bool {
    ProviderKind::from_name(&spec.kind) == Some(ProviderKind::OpenaiCompatible)
}

/// `auth_header` (default `authorization`) with `auth_scheme`; the scheme defaults to `Bearer`
/// for the `authorization` header and to none for any other (Azure's `api-key`), and an empty
/// scheme sends the bare key.
fn key_header(spec: &ProviderSpec) -> KeyHeader {
    let name = spec
        .auth_header
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(DEFAULT_AUTH_HEADER)
        .to_ascii_lowercase();
    let scheme = match spec.auth_scheme.as_deref().map(str::trim) {
        Some("") => None,
        Some(scheme) => Some(scheme.to_string()),
        None if name == DEFAULT_AUTH_HEADER => Some("Bearer".to_string()),
        None => None,
    };
    KeyHeader { name, scheme }
}

#[derive(Deserialize)]
struct ChatCompletion {
    /// Set by OpenAI-compatible gateways that answer an error with status 200.
    error: Option<Value>,
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

/// One of `message.tool_calls`: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    #[serde(rename = "type")]
    call_type: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: Option<String>,
    /// A string of JSON; some compatible servers send the object itself.
    arguments: Option<Value>,
}

impl WireToolCall {
    /// The call, unless it is not a function call (we declare only functions).
    fn into_raw(self) -> Option<RawToolCall> {
        if self
            .call_type
            .as_deref()
            .is_some_and(|kind| kind != "function")
        {
            return None;
        }
        let function = self.function?;
        Some(RawToolCall {
            id: self.id.unwrap_or_default(),
            name: function.name.unwrap_or_default(),
            arguments: arguments_text(function.arguments),
        })
    }
}

/// The arguments as JSON text: the string as sent, or an object written out.
pub(super) fn arguments_text(arguments: Option<Value>) -> String {
    match arguments {
        Some(Value::String(text)) => text,
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

#[derive(Deserialize)]
struct ChatUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    cached_tokens: Option<u64>,
}

fn parse_completion(body: &[u8]) -> Result<ProviderResponse, AttemptError> {
    let completion: ChatCompletion = decode(body, "a chat completion")?;
    if let Some(error) = completion.error.as_ref().filter(|error| !error.is_null()) {
        return Err(read_error(Some(error), body, true).into_error_in_body());
    }
    let malformed = |what: &str| AttemptError::new(FailureKind::Malformed, what.to_string());
    let choice = completion
        .choices
        .and_then(|choices| choices.into_iter().next())
        .ok_or_else(|| malformed("response has no choices"))?;
    let message = choice
        .message
        .ok_or_else(|| malformed("response choice has no message"))?;
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .filter_map(WireToolCall::into_raw)
        .collect();
    Ok(response(
        Answer {
            // A tool call leaves content null: an empty answer, not a fault.
            text: message.content.unwrap_or_default(),
            refusal: message.refusal,
            tool_calls,
        },
        choice.finish_reason,
        completion.id,
        completion.model,
        completion.usage,
    ))
}

/// What the model wrote: text, a refusal, tool calls.
struct Answer {
    text: String,
    refusal: Option<String>,
    tool_calls: Vec<RawToolCall>,
}

/// The response of a completion, whole or streamed: the same finish-reason, refusal and usage
/// rules for both.
fn response(
    answer: Answer,
    raw_finish_reason: Option<String>,
    id: Option<String>,
    model: Option<String>,
    usage: Option<ChatUsage>,
) -> ProviderResponse {
    // A refusal comes as `content: null` plus `refusal` text, with finish_reason `stop`; the
    // refusal is the terminal state the caller must see.
    let Answer {
        text,
        refusal,
        tool_calls,
    } = answer;
    let refusal = refusal.filter(|refusal| !refusal.is_empty());
    let finish_reason = if refusal.is_some() {
        Some(FinishReason::Refusal)
    } else {
        raw_finish_reason.as_deref().map(FinishReason::from_openai)
    };
    let (usage, usage_reported) = usage.map(to_usage).unwrap_or_default();
    ProviderResponse {
        text,
        finish_reason,
        raw_finish_reason,
        refusal,
        response_id: id,
        response_model: model,
        usage,
        usage_reported,
        tool_calls,
    }
}

fn to_usage(usage: ChatUsage) -> (Usage, UsageReported) {
    let reported = UsageReported {
        input_tokens: usage.prompt_tokens.is_some_and(|tokens| tokens > 0),
        output_tokens: usage.completion_tokens.is_some(),
    };
    // OpenAI's prompt_tokens already includes the cached tokens, as our input_tokens does.
    let prompt = usage.prompt_tokens.unwrap_or(0);
    let cached = usage
        .prompt_tokens_details
        .and_then(|details| details.cached_tokens)
        .unwrap_or(0)
        .min(prompt);
    let usage = Usage {
        input_tokens: prompt,
        output_tokens: usage.completion_tokens.unwrap_or(0),
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: 0,
    };
    (usage, reported)
}

/// The provider's error type, message and code from an `error` member: an object with
/// `type`, `message`, `code` (a string, or a number as some gateways send), or a bare string.
struct ErrorParts {
    error_type: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

fn error_parts(error: Option<&Value>) -> ErrorParts {
    let text_field = |name: &str| {
        let value = error?.get(name)?;
        match value {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    };
    let code = text_field("code");
    ErrorParts {
        error_type: text_field("type").or_else(|| code.clone()),
        message: text_field("message").or_else(|| {
            error
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        }),
        code,
    }
}

fn is_context_length(code: Option<&str>, message: &str) -> bool {
    code == Some("context_length_exceeded")
        || message.to_lowercase().contains("maximum context length")
}

/// Reads OpenAI's `{"error": {"message", "type", "code", "param"}}`; an error status's message
/// names the code too when it says more than the type.
fn read_error(error: Option<&Value>, body: &[u8], in_body: bool) -> ProviderError {
    let parts = error_parts(error);
    let message = match (&parts.message, &parts.code) {
        (Some(text), Some(code)) if !in_body && Some(code) != parts.error_type.as_ref() => {
            format!("{text} (code: {code})")
        }
        (Some(text), _) => text.clone(),
        (None, _) => http::body_excerpt(body),
    };
    ProviderError {
        context_length: is_context_length(parts.code.as_deref(), &message),
        error_type: parts.error_type,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::endpoint::test_request;
    use crate::config::ModelParameters;
    use crate::prompt::{Message, Role};

    #[test]
    fn request_body_omits_absent_parameters() {
        let messages = [Message::new(Role::User, "hi")];
        let parameters = ModelParameters::default();
        let request = test_request("gpt-4o-mini", &messages, &parameters);
        let body = serde_json::to_value(ChatRequest::from_request(&request)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn the_stream_request_body_asks_for_usage_in_the_last_chunk() {
        let messages = [Message::new(Role::User, "hi")];
        let parameters = ModelParameters::default();
        let request = test_request("gpt-4o-mini", &messages, &parameters);
        let body: serde_json::Value =
            serde_json::from_slice(&(ChatCompletions::ENCODE_STREAM)(&request).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                "stream": true, "stream_options": {"include_usage": true}})
        );
    }

    #[test]
    fn cached_tokens_beyond_the_prompt_are_capped() {
        let (usage, reported) = to_usage(ChatUsage {
            prompt_tokens: Some(10),
            completion_tokens: Some(2),
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(50),
            }),
        });
        assert_eq!(usage.input_tokens, 10);
        assert_eq!(usage.cache_read_input_tokens, 10);
        assert_eq!(usage.uncached_input_tokens(), 0);
        assert_eq!(reported, UsageReported::ALL);
    }

    #[test]
    fn a_usage_without_completion_tokens_reports_only_the_input() {
        let (_, reported) = to_usage(ChatUsage {
            prompt_tokens: Some(10),
            completion_tokens: None,
            prompt_tokens_details: None,
        });
        assert!(reported.input_tokens && !reported.output_tokens);
    }
}
