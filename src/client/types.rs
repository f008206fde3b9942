//! The vocabulary shared by providers, the failure policy and the orchestration: what is sent,
//! what comes back, and how an attempt failed.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::ModelParameters;
use crate::prompt::Message;

/// One call to one model of one provider.
#[derive(Debug, Clone, Copy)]
pub struct ProviderRequest<'a> {
    /// The model name sent to the provider.
    pub model: &'a str,
    /// The rendered chat messages, system first when present.
    pub messages: &'a [Message],
    /// Sampling parameters.
    pub parameters: &'a ModelParameters,
    /// Our request id, sent as a header for correlation when the provider accepts one.
    pub request_id: &'a str,
    /// The most this attempt may take, connect to last byte.
    pub timeout: Duration,
}

/// Token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Usage {
    /// Input tokens billed at the full input price (excludes cache reads).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache (OpenAI `cached_tokens`, Anthropic
    /// `cache_read_input_tokens`).
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache (Anthropic `cache_creation_input_tokens`).
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// All input tokens, however billed.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens
    }
}

/// A successful provider response, parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderResponse {
    /// The generated text.
    pub text: String,
    /// Why generation stopped (`stop`, `length`, `end_turn`, `max_tokens`, ...), as the provider says.
    pub finish_reason: Option<String>,
    /// The provider's response id.
    pub response_id: Option<String>,
    /// The model that answered, as the provider reports it.
    pub response_model: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// What went wrong in one attempt, as far as the failure policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Could not connect, or the connection broke before a status line.
    Connect,
    /// The attempt's timeout passed.
    Timeout,
    /// The provider answered with an HTTP error status (see `status`).
    Http,
    /// The response was not the JSON we expect, or was cut short.
    Malformed,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// No API key in the environment variable the provider config names.
    MissingApiKey,
    /// The client-side rate limit for this provider or model is exhausted.
    RateLimitedLocally,
    /// The provider's circuit breaker is open.
    CircuitOpen,
    /// A scripted fault of the mock provider.
    Injected,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptError {
    /// The category of failure.
    pub kind: FailureKind,
    /// The HTTP status when there was one.
    pub status: Option<u16>,
    /// How long the provider asked us to wait (`retry-after-ms`, `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// The provider's error type when it gave one (`rate_limit_error`, `invalid_request_error`, ...).
    pub provider_error_type: Option<String>,
    /// A readable description; never contains an API key.
    pub message: String,
}

impl AttemptError {
    /// A failure without HTTP status.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> AttemptError {
        AttemptError {
            kind,
            status: None,
            retry_after: None,
            provider_error_type: None,
            message: message.into(),
        }
    }

    /// An HTTP error status with the provider's message.
    pub fn http(status: u16, message: impl Into<String>) -> AttemptError {
        AttemptError {
            status: Some(status),
            ..AttemptError::new(FailureKind::Http, message)
        }
    }

    /// The OpenTelemetry `error.type` value: the status code for HTTP errors, else the kind.
    pub fn error_type(&self) -> String {
        match (self.kind, self.status) {
            (FailureKind::Http, Some(status)) => status.to_string(),
            (kind, _) => serde_json::to_value(kind)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(formatter, "HTTP {status}: {}", self.message),
            None => write!(formatter, "{}", self.message),
        }
    }
}

/// A model API: turns one request into one response or one classified failure.
pub trait Provider: Send + Sync {
    /// Performs one attempt; never retries by itself.
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError>;
}
