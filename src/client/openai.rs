//! The OpenAI Chat Completions provider: where its endpoint and key come from, the JSON it sends,
//! how it reads a completion (finish reason, refusal) and its token usage (cached prompt tokens
//! as a part of the input), and how OpenAI's error bodies, in an error status or inside a 200
//! answer from a compatible gateway, become classified [`AttemptError`]s, context-length
//! overflows included.

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

/// The public endpoint, used when neither the config nor the environment names another.
const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The environment variable that overrides the endpoint when the config does not.
const BASE_URL_VARIABLE: &str = "OPENAI_BASE_URL";

/// The environment variable holding the key when the config does not name one.
const DEFAULT_KEY_VARIABLE: &str = "OPENAI_API_KEY";

/// A provider speaking OpenAI's Chat Completions API.
#[derive(Debug)]
pub struct OpenAiProvider {
    base_url: String,
    api_key_variable: String,
    api_key: Option<ApiKey>,
    attempt_limit: Duration,
    transport: Arc<HttpTransport>,
}

impl OpenAiProvider {
    /// A provider for `spec`, reading its key from the environment now.
    pub fn new(spec: &ProviderSpec, transport: Arc<HttpTransport>) -> OpenAiProvider {
        let api_key = ApiKey::from_env(&key_variable(
            spec.api_key_env.as_deref(),
            DEFAULT_KEY_VARIABLE,
        ));
        OpenAiProvider::with_api_key(spec, transport, api_key)
    }

    /// A provider for `spec` with a key obtained elsewhere (`None` behaves as an unset variable).
    pub fn with_api_key(
        spec: &ProviderSpec,
        transport: Arc<HttpTransport>,
        api_key: Option<ApiKey>,
    ) -> OpenAiProvider {
        let from_environment = std::env::var(BASE_URL_VARIABLE).ok();
        OpenAiProvider {
            base_url: OpenAiProvider::choose_base_url(
                spec.base_url.as_deref(),
                from_environment.as_deref(),
            ),
            api_key_variable: key_variable(spec.api_key_env.as_deref(), DEFAULT_KEY_VARIABLE),
            api_key,
            attempt_limit: Duration::from_millis(spec.timeout_ms),
            transport,
        }
    }

    /// The endpoint: the configured one, else `OPENAI_BASE_URL`, else the public API.
    pub fn choose_base_url(configured: Option<&str>, from_environment: Option<&str>) -> String {
        http::choose_base_url(configured, from_environment, DEFAULT_BASE_URL)
    }

    /// The endpoint this provider calls, without the `/chat/completions` path.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn error_from(&self, response: &HttpResponse) -> AttemptError {
        let mut error = error_from_response(response);
        error.retry_after = parse_retry_after(
            response.header("retry-after-ms"),
            response.header("retry-after"),
            Utc::now(),
        );
        error
    }

    fn attempt(
        &self,
        request: &ProviderRequest<'_>,
        api_key: &ApiKey,
    ) -> Result<ProviderResponse, AttemptError> {
        let body = serde_json::to_vec(&ChatRequest::from_request(request)).map_err(|error| {
            AttemptError::new(
                FailureKind::Malformed,
                format!("could not encode the request: {error}"),
            )
        })?;
        let authorization = format!("Bearer {}", api_key.expose());
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
            ("x-request-id", request.request_id),
        ];
        let url = format!("{}/chat/completions", self.base_url);
        let timeout = request.timeout.min(self.attempt_limit);
        let response = self.transport.post_json(&url, &headers, &body, timeout)?;
        if !response.is_success() {
            return Err(self.error_from(&response));
        }
        parse_completion(&response.body)
    }
}

impl Provider for OpenAiProvider {
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        with_api_key(self.api_key.as_ref(), &self.api_key_variable, |api_key| {
            self.attempt(request, api_key)
        })
    }
}

/// The Chat Completions request body; absent parameters are left out, not sent as null.
#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    // `max_tokens` rather than `max_completion_tokens`: chat models still accept it, and
    // OpenAI-compatible gateways often know only this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

impl<'a> ChatRequest<'a> {
    fn from_request(request: &ProviderRequest<'a>) -> ChatRequest<'a> {
        let parameters = request.parameters;
        ChatRequest {
            model: request.model,
            messages: request
                .messages
                .iter()
                .map(|message| ChatMessage {
                    role: message.role.as_str(),
                    content: &message.content,
                })
                .collect(),
            temperature: parameters.temperature,
            max_tokens: parameters.max_tokens,
            top_p: parameters.top_p,
            stop: Some(parameters.stop.as_slice()).filter(|stop| !stop.is_empty()),
        }
    }
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
    let completion: ChatCompletion = serde_json::from_slice(body).map_err(|error| {
        AttemptError::new(
            FailureKind::Malformed,
            format!("response is not a chat completion: {error}"),
        )
    })?;
    if let Some(error) = completion.error.as_ref().filter(|error| !error.is_null()) {
        return Err(error_in_body(error, body));
    }
    let malformed = |what: &str| AttemptError::new(FailureKind::Malformed, what.to_string());
    let choice = completion
        .choices
        .and_then(|choices| choices.into_iter().next())
        .ok_or_else(|| malformed("response has no choices"))?;
    let message = choice
        .message
        .ok_or_else(|| malformed("response choice has no message"))?;
    // A refusal comes as `content: null` plus `refusal` text, with finish_reason `stop`; the
    // refusal is the terminal state the caller must see.
    let refusal = message.refusal.filter(|refusal| !refusal.is_empty());
    let finish_reason = if refusal.is_some() {
        Some(FinishReason::Refusal)
    } else {
        choice
            .finish_reason
            .as_deref()
            .map(FinishReason::from_openai)
    };
    let (usage, usage_reported) = completion.usage.map(to_usage).unwrap_or_default();
    Ok(ProviderResponse {
        // A tool call leaves content null: an empty answer, not a fault.
        text: message.content.unwrap_or_default(),
        finish_reason,
        raw_finish_reason: choice.finish_reason,
        refusal,
        response_id: completion.id,
        response_model: completion.model,
        usage,
        usage_reported,
    })
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

/// An error object inside a 2xx body: kept with its type and message, judged by the type.
fn error_in_body(error: &Value, body: &[u8]) -> AttemptError {
    let parts = error_parts(Some(error));
    let message = parts
        .message
        .clone()
        .unwrap_or_else(|| http::body_excerpt(body));
    let described = match &parts.error_type {
        Some(error_type) => format!("error in a 2xx response ({error_type}): {message}"),
        None => format!("error in a 2xx response: {message}"),
    };
    let mut attempt_error =
        AttemptError::new(FailureKind::ErrorInBody, http::truncate_message(&described));
    if is_context_length(parts.code.as_deref(), &message) {
        attempt_error.kind = FailureKind::ContextLength;
    }
    attempt_error.provider_error_type = parts.error_type;
    attempt_error
}

fn is_context_length(code: Option<&str>, message: &str) -> bool {
    code == Some("context_length_exceeded")
        || message.to_lowercase().contains("maximum context length")
}

/// Classifies an error status from OpenAI's `{"error": {"message", "type", "code", "param"}}`.
fn error_from_response(response: &HttpResponse) -> AttemptError {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let parts = error_parts(parsed.as_ref().and_then(|body| body.get("error")));
    let message = match (&parts.message, &parts.code) {
        (Some(text), Some(code)) if Some(code) != parts.error_type.as_ref() => {
            format!("{text} (code: {code})")
        }
        (Some(text), _) => text.clone(),
        (None, _) => http::body_excerpt(&response.body),
    };
    let context_length =
        response.status == 400 && is_context_length(parts.code.as_deref(), &message);
    let mut attempt_error = AttemptError::http(response.status, http::truncate_message(&message));
    attempt_error.provider_error_type = parts.error_type;
    if context_length {
        attempt_error.kind = FailureKind::ContextLength;
    }
    attempt_error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelParameters;
    use crate::prompt::{Message, Role};

    #[test]
    fn configured_base_url_wins_over_the_environment() {
        let chosen =
            OpenAiProvider::choose_base_url(Some("http://gateway/v1/"), Some("http://env/v1"));
        assert_eq!(chosen, "http://gateway/v1");
    }

    #[test]
    fn environment_base_url_wins_over_the_default() {
        let chosen = OpenAiProvider::choose_base_url(None, Some("http://env/v1/"));
        assert_eq!(chosen, "http://env/v1");
    }

    #[test]
    fn empty_base_urls_fall_through_to_the_default() {
        let chosen = OpenAiProvider::choose_base_url(Some(""), Some(" "));
        assert_eq!(chosen, DEFAULT_BASE_URL);
    }

    #[test]
    fn request_body_omits_absent_parameters() {
        let messages = [Message {
            role: Role::User,
            content: "hi".into(),
        }];
        let parameters = ModelParameters::default();
        let request = ProviderRequest {
            model: "gpt-4o-mini",
            messages: &messages,
            parameters: &parameters,
            request_id: "request-1",
            timeout: Duration::from_secs(1),
        };
        let body = serde_json::to_value(ChatRequest::from_request(&request)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
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
