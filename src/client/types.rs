//! The vocabulary shared by providers, the failure policy and the orchestration: what is sent,
//! what comes back, and how an attempt failed.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::ModelParameters;
use crate::output::{OutputSchema, RawToolCall, ToolChoice, ToolDefinition};
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
    /// The version's output schema: the provider asks for JSON matching it (OpenAI
    /// `response_format` `json_schema` strict; Anthropic's native structured output or one
    /// forced tool) and returns the JSON as `ProviderResponse::text`.
    pub output: Option<&'a OutputSchema>,
    /// The version's tools, sent in the provider's format; empty for none.
    pub tools: &'a [ToolDefinition],
    /// Whether (and which) tool the model must call; ignored without `tools`.
    pub tool_choice: &'a ToolChoice,
    /// The W3C `traceparent` header value naming this attempt's span
    /// (`00-{trace id}-{attempt span id}-{flags}`), when the call belongs to a trace; HTTP
    /// providers send it so the provider's (or a gateway's) spans join the caller's trace.
    /// `None`: no header.
    pub traceparent: Option<&'a str>,
}

/// Token counts of one response.
///
/// One definition of input tokens everywhere (`Completion.usage`, the `gen_ai.usage.input_tokens`
/// telemetry field and the metrics): **all** input tokens of the request, however billed, as
/// OpenTelemetry's GenAI conventions define them. Cache reads and cache writes are parts of that
/// total, not additions to it; [`Usage::uncached_input_tokens`] is what is billed at the full
/// input price. OpenAI's `prompt_tokens` already is this total; Anthropic's `input_tokens` is
/// only the uncached part, so its provider adds the cache reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Usage {
    /// All input tokens, cache reads and writes included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache (OpenAI `cached_tokens`,
    /// Anthropic `cache_read_input_tokens`).
    pub cache_read_input_tokens: u64,
    /// Of `input_tokens`, those written to the prompt cache (Anthropic
    /// `cache_creation_input_tokens`).
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// All input tokens, however billed: the same as `input_tokens` (kept for callers written
    /// when `input_tokens` left cached tokens out).
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens
    }

    /// Input tokens billed at the full input price: neither read from nor written to the cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_input_tokens)
            .saturating_sub(self.cache_creation_input_tokens)
    }
}

/// Which counts of a response's [`Usage`] the provider actually reported. A count it did not
/// report is 0 in the response's usage, and the cost rules estimate it (see `Completion`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageReported {
    /// The provider gave a non-zero input token count.
    pub input_tokens: bool,
    /// The provider gave an output token count (zero only allowed for an empty answer).
    pub output_tokens: bool,
}

impl UsageReported {
    /// Both counts reported.
    pub const ALL: UsageReported = UsageReported {
        input_tokens: true,
        output_tokens: true,
    };
}

/// Why generation stopped, the same vocabulary for every provider. Serialized in snake_case;
/// [`FinishReason::Other`] serializes as `other`, and the provider's own word is kept beside it
/// (`Completion.raw_finish_reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end or a stop sequence (OpenAI `stop`; Anthropic `end_turn`, `stop_sequence`).
    Stop,
    /// The output token limit or the context window was reached (OpenAI `length`; Anthropic
    /// `max_tokens`, `model_context_window_exceeded`).
    Length,
    /// The provider's content filter cut or withheld the answer (OpenAI `content_filter`).
    ContentFilter,
    /// The model declined (OpenAI `message.refusal` set; Anthropic `refusal`).
    Refusal,
    /// The model asked for tools (OpenAI `tool_calls`, `function_call`; Anthropic `tool_use`).
    ToolCalls,
    /// Any other reason, as the provider wrote it (Anthropic `pause_turn`, new values).
    Other(String),
}

impl FinishReason {
    /// The snake_case name: `stop`, `length`, `content_filter`, `refusal`, `tool_calls`, `other`.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Refusal => "refusal",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(_) => "other",
        }
    }

    /// OpenAI's `finish_reason` (Chat Completions API reference).
    pub fn from_openai(raw: &str) -> FinishReason {
        match raw {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_string()),
        }
    }

    /// Anthropic's `stop_reason` (Messages API reference, "Handling stop reasons").
    pub fn from_anthropic(raw: &str) -> FinishReason {
        match raw {
            "end_turn" | "stop_sequence" => FinishReason::Stop,
            "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
            "tool_use" => FinishReason::ToolCalls,
            "refusal" => FinishReason::Refusal,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for FinishReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A successful provider response, parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderResponse {
    /// The generated text (empty for a refusal or a tool call).
    pub text: String,
    /// Why generation stopped, mapped to the shared vocabulary.
    pub finish_reason: Option<FinishReason>,
    /// Why generation stopped in the provider's own word (`end_turn`, `stop`, ...).
    pub raw_finish_reason: Option<String>,
    /// The model's refusal message, when it declined (OpenAI `message.refusal`; for Anthropic
    /// the text of a `refusal` stop, when there is any).
    pub refusal: Option<String>,
    /// The provider's response id.
    pub response_id: Option<String>,
    /// The model that answered, as the provider reports it.
    pub response_model: Option<String>,
    /// Token counts; an unreported count is 0 here (see `usage_reported`).
    pub usage: Usage,
    /// Which counts of `usage` the provider reported.
    pub usage_reported: UsageReported,
    /// The tool calls the model asked for, in order, before validation (then
    /// `finish_reason` is `tool_calls`). A forced output tool (Anthropic's structured output
    /// without native support) is not one of them: its input is `text`.
    pub tool_calls: Vec<RawToolCall>,
}

/// What went wrong in one attempt, as far as the failure policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// A 2xx response whose body is an error object (`{"error": {...}}`, Anthropic
    /// `{"type": "error", ...}`), as OpenAI-compatible gateways send; the provider's error type
    /// is in `provider_error_type` and decides the failure policy.
    ErrorInBody,
    /// The caller cancelled the call (a [`CancelToken`](crate::client::CancelToken), a stream
    /// callback returning stop): never retried, never counted against the provider.
    Cancelled,
    /// The answer is not JSON matching the version's output schema, or a tool call's
    /// arguments do not match its tool's schema: repaired once on the same model (when the
    /// version allows), then the next model; never counted against the provider's breaker.
    InvalidOutput,
}

impl FailureKind {
    /// The kind's name in `error.type` and JSON (`connect`, `rate_limited_locally`, ...),
    /// matching the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Http => "http",
            FailureKind::Malformed => "malformed",
            FailureKind::ContextLength => "context_length",
            FailureKind::MissingApiKey => "missing_api_key",
            FailureKind::RateLimitedLocally => "rate_limited_locally",
            FailureKind::CircuitOpen => "circuit_open",
            FailureKind::Injected => "injected",
            FailureKind::ErrorInBody => "error_in_body",
            FailureKind::Cancelled => "cancelled",
            FailureKind::InvalidOutput => "invalid_output",
        }
    }
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
        super::outcome::error_type_of(self.kind, self.status).into_owned()
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

/// A model API: turns one request into one response or one classified failure. Implement it
/// and register a factory with `EngineOptions::with_provider_kind` to serve a kind of your own
/// (see the README's *Your own provider*); the engine adds retries, failover, breakers, rate
/// limits, budgets and telemetry around it. `Any` lets the engine recognise its own mock.
pub trait Provider: std::any::Any + Send + Sync {
    /// Performs one attempt; never retries by itself. `request.timeout` is the most the attempt
    /// may take; a blocking implementation must give up by then (as a `timeout` failure).
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError>;

    /// Opens a streamed attempt (the provider's `stream: true`). Returns once the response
    /// headers say the stream started; a failure to connect or an error status is an `Err`
    /// exactly as for [`call`](Provider::call). `timeouts` bound the silences of the stream
    /// (see [`ProviderStream::next_chunk`](super::stream::ProviderStream::next_chunk)).
    ///
    /// The default, for a provider that cannot stream, makes one `call` and replays its text
    /// as a single delta.
    fn stream(
        &self,
        request: &ProviderRequest<'_>,
        timeouts: super::stream::StreamTimeouts,
    ) -> Result<Box<dyn super::stream::ProviderStream + '_>, AttemptError> {
        let _ = timeouts;
        let response = self.call(request)?;
        Ok(Box::new(super::stream::Replay::new(response)))
    }

    /// Whether an attempt could be sent at all, without sending one (false when a required API
    /// key is missing). The failover loop only fails over at once, instead of retrying the
    /// current model, to a next model whose provider is available. Defaults to `true`.
    fn is_available(&self) -> bool {
        true
    }
}
