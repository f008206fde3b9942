//! What `complete()` returns: the completion with its attempts, or a `CompleteError` that
//! carries every attempt's failure in order.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::breaker::BreakerState;
use super::cost::EstimatedPart;
use super::types::{FailureKind, FinishReason, Usage};
use crate::resolve::Resolution;

mod error;

pub use error::{CompleteError, Interruption, UnusableAnswer};
pub(crate) use error::{counted, failure, invalid_summary};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The provider answered.
    Success,
    /// The provider was called and failed.
    Failed,
    /// Not called: its circuit breaker was open.
    SkippedCircuitOpen,
    /// Not called: the client-side rate limit was exhausted.
    SkippedRateLimited,
    /// A stream that had sent text broke (cut, stall, `error` event, no terminal event).
    StreamIncomplete,
    /// The provider answered, but the answer broke the output schema or a tool's argument
    /// schema (see [`FailureKind::InvalidOutput`]); the attempt was charged.
    InvalidOutput,
}

impl AttemptOutcome {
    /// The outcome's name in telemetry and JSON, matching the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::SkippedCircuitOpen => "skipped_circuit_open",
            AttemptOutcome::SkippedRateLimited => "skipped_rate_limited",
            AttemptOutcome::StreamIncomplete => "stream_incomplete",
            AttemptOutcome::InvalidOutput => "invalid_output",
        }
    }
}

/// One attempt of a `complete()` call, in order. Serialized with `error_type` (see
/// [`Attempt::error_type`]) in place of `failure`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1-based position in the call.
    pub number: u32,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// How it failed, or `None` when it succeeded. A skip carries the kind that made it
    /// (`CircuitOpen`, `RateLimitedLocally`).
    pub failure: Option<FailureKind>,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The failure's description.
    pub message: Option<String>,
    /// Time spent in the call to the provider, in milliseconds.
    pub latency_ms: f64,
    /// Time slept (backoff, Retry-After, rate limit) before this attempt, in milliseconds.
    pub wait_ms: f64,
    /// The breaker's state after the attempt.
    pub breaker_state: BreakerState,
    /// For an attempt of a streamed call that received text: its time to first token and
    /// chunk count; `None` otherwise.
    pub stream: Option<StreamStats>,
}

impl Attempt {
    /// The OpenTelemetry `error.type`: the HTTP status for an HTTP error (`"503"`), else the
    /// failure kind's name (`timeout`, `connect`, `circuit_open`, ...); `None` for a success.
    /// Borrowed except for a status, which is the only name written at run time.
    pub fn error_type(&self) -> Option<Cow<'static, str>> {
        Some(error_type_of(self.failure?, self.status))
    }
}

/// The `error.type` of a failure of `kind` with `status`: the status code for HTTP errors, else
/// the kind's name.
pub(crate) fn error_type_of(kind: FailureKind, status: Option<u16>) -> Cow<'static, str> {
    match (kind, status) {
        (FailureKind::Http, Some(status)) => Cow::Owned(status.to_string()),
        (kind, _) => Cow::Borrowed(kind.as_str()),
    }
}

/// The JSON bindings and `CompleteError::details` have always shown: the typed failure travels
/// as its `error_type` string, in the place the string field had.
impl Serialize for Attempt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Attempt", 11)?;
        state.serialize_field("number", &self.number)?;
        state.serialize_field("provider", &self.provider)?;
        state.serialize_field("model", &self.model)?;
        state.serialize_field("outcome", &self.outcome)?;
        state.serialize_field("error_type", &self.error_type())?;
        state.serialize_field("status", &self.status)?;
        state.serialize_field("message", &self.message)?;
        state.serialize_field("latency_ms", &self.latency_ms)?;
        state.serialize_field("wait_ms", &self.wait_ms)?;
        state.serialize_field("breaker_state", &self.breaker_state)?;
        if let Some(stream) = &self.stream {
            state.serialize_field("stream", stream)?;
        } else {
            state.skip_field("stream")?;
        }
        state.end()
    }
}

/// A successful `complete()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered (as configured).
    pub model: String,
    /// The model the provider reports, when it says.
    pub response_model: Option<String>,
    /// The provider's response id.
    pub response_id: Option<String>,
    /// Why generation stopped: `stop`, `length`, `content_filter`, `refusal`, `tool_calls` or
    /// `other` (see `raw_finish_reason`); absent when the provider did not say.
    pub finish_reason: Option<FinishReason>,
    /// The provider's own word for why generation stopped (`end_turn`, `stop`, `pause_turn`, ...).
    pub raw_finish_reason: Option<String>,
    /// The model's refusal message when it declined (then `finish_reason` is `refusal`).
    pub refusal: Option<String>,
    /// Token counts charged. `input_tokens` counts every input token, cache reads and writes
    /// included (they are parts of it); counts the provider did not report are estimated (see
    /// `cost_estimated`). They include the answers the call could not use (`invalid_output`
    /// attempts before this answer: the provider billed them).
    pub usage: Usage,
    /// Cost of the successful call in USD, invalid answers before this one and streams voided
    /// by a restart included; estimated, never zero, when tokens or price were unknown.
    pub cost_usd: f64,
    /// True when any part of `cost_usd` was estimated rather than reported and priced.
    pub cost_estimated: bool,
    /// What was estimated: `input_tokens`, `output_tokens`, `output_tokens_max`, `price`.
    pub cost_estimated_parts: Vec<EstimatedPart>,
    /// Wall time of the whole `complete()` in milliseconds.
    pub latency_ms: f64,
    /// Our id for the request, for feedback and telemetry.
    pub request_id: String,
    /// True when a budget's downgrade policy replaced the model chain.
    pub downgraded: bool,
    /// The resolution the call was made from.
    pub resolution: Resolution,
    /// Every attempt, the successful one last.
    pub attempts: Vec<Attempt>,
    /// Set when the answer came from the response cache instead of a provider (then
    /// `cost_usd` is 0 and `attempts` is empty); `None` when a provider answered.
    pub cache: Option<CacheHit>,
    /// Set for a streamed call (`Engine::stream`): time to first token and chunk count;
    /// `None` for `complete()`.
    pub stream: Option<StreamStats>,
    /// The parsed answer, valid against the version's output schema; `None` for a version
    /// without one (then `text` is prose). See [`Completion::parse`] for a typed value.
    pub data: Option<serde_json::Value>,
    /// The tool calls the model asked for (then `finish_reason` is `tool_calls`), each with
    /// arguments valid against its tool's schema; empty otherwise.
    pub tool_calls: Vec<crate::output::ToolCall>,
    /// How many repair attempts (an invalid answer sent back with its validation errors) the
    /// call made before this answer: 0 when the first answer was valid.
    pub repairs: u32,
}

impl Completion {
    /// The parsed answer as `T`.
    ///
    /// Errors: a [`serde_json::Error`] when the version declares no output schema (there is
    /// no data: the message says so) or when `T` does not match the (schema-valid) data.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.data {
            Some(data) => T::deserialize(data),
            None => Err(serde::de::Error::custom(
                "the completion has no data: its prompt version declares no output schema",
            )),
        }
    }
}

/// What a streamed call or attempt measured: how long the first text took and how many
/// chunks carried text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StreamStats {
    /// From the start of the call (of the attempt, for an attempt) to the first text delta,
    /// in milliseconds.
    pub time_to_first_token_ms: f64,
    /// Chunks that carried text.
    pub chunks: u64,
}

/// How a [`Completion`] was served from the response cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheHit {
    /// What the call cost when it was made and stored, in USD: the money this hit saved.
    pub saved_usd: f64,
    /// The partition the entry lives in (the allow-listed attributes' values), if the
    /// feature partitions its cache.
    pub partition: Option<String>,
}

/// A successful call as the client returns it, before the engine attaches the resolution.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The generated text.
    pub text: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered (as configured).
    pub model: String,
    /// The model the provider reports, when it says.
    pub response_model: Option<String>,
    /// The provider's response id.
    pub response_id: Option<String>,
    /// Why generation stopped: `stop`, `length`, `content_filter`, `refusal`, `tool_calls` or
    /// `other` (see `raw_finish_reason`); absent when the provider did not say.
    pub finish_reason: Option<FinishReason>,
    /// The provider's own word for why generation stopped (`end_turn`, `stop`, `pause_turn`, ...).
    pub raw_finish_reason: Option<String>,
    /// The model's refusal message when it declined (then `finish_reason` is `refusal`).
    pub refusal: Option<String>,
    /// Token counts charged. `input_tokens` counts every input token, cache reads and writes
    /// included (they are parts of it); counts the provider did not report are estimated (see
    /// `cost_estimated`).
    pub usage: Usage,
    /// Cost of the successful call in USD; estimated, never zero, when tokens or price were
    /// unknown.
    pub cost_usd: f64,
    /// True when any part of `cost_usd` was estimated rather than reported and priced.
    pub cost_estimated: bool,
    /// What was estimated: `input_tokens`, `output_tokens`, `output_tokens_max`, `price`.
    pub cost_estimated_parts: Vec<EstimatedPart>,
    /// Wall time of the whole `complete()` in milliseconds.
    pub latency_ms: f64,
    /// Our id for the request, for feedback and telemetry.
    pub request_id: String,
    /// True when a budget's downgrade policy replaced the model chain.
    pub downgraded: bool,
    /// Every attempt, the successful one last.
    pub attempts: Vec<Attempt>,
    /// Time to first token and chunks, for a streamed call.
    pub stream: Option<StreamStats>,
    /// The parsed answer, when the version declares an output schema.
    pub data: Option<serde_json::Value>,
    /// The normalised tool calls.
    pub tool_calls: Vec<crate::output::ToolCall>,
    /// Repair attempts made before this answer.
    pub repairs: u32,
}

impl Answer {
    /// The completion of `resolution`, the one the call was made from.
    pub(crate) fn with_resolution(self, resolution: Resolution) -> Completion {
        Completion {
            text: self.text,
            provider: self.provider,
            model: self.model,
            response_model: self.response_model,
            response_id: self.response_id,
            finish_reason: self.finish_reason,
            raw_finish_reason: self.raw_finish_reason,
            refusal: self.refusal,
            usage: self.usage,
            cost_usd: self.cost_usd,
            cost_estimated: self.cost_estimated,
            cost_estimated_parts: self.cost_estimated_parts,
            latency_ms: self.latency_ms,
            request_id: self.request_id,
            downgraded: self.downgraded,
            resolution,
            attempts: self.attempts,
            cache: None,
            stream: self.stream,
            data: self.data,
            tool_calls: self.tool_calls,
            repairs: self.repairs,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::breaker::BreakerState;
    use super::super::types::FailureKind;
    use super::{Attempt, AttemptOutcome};

    fn attempt(failure: Option<FailureKind>, status: Option<u16>) -> Attempt {
        Attempt {
            number: 1,
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
            outcome: if failure.is_some() {
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Success
            },
            failure,
            status,
            message: failure.map(|_| "HTTP 503: busy".into()),
            latency_ms: 12.5,
            wait_ms: 0.0,
            breaker_state: BreakerState::Closed,
            stream: None,
        }
    }

    #[test]
    fn an_http_failure_serializes_its_status_as_the_error_type_in_the_string_fields_place() {
        let json = serde_json::to_string(&attempt(Some(FailureKind::Http), Some(503))).unwrap();
        assert_eq!(
            json,
            r#"{"number":1,"provider":"openai","model":"gpt-4o-mini","outcome":"failed","error_type":"503","status":503,"message":"HTTP 503: busy","latency_ms":12.5,"wait_ms":0.0,"breaker_state":"closed"}"#
        );
    }

    #[test]
    fn other_failures_serialize_their_kind_name_and_a_success_none() {
        let timeout = attempt(Some(FailureKind::Timeout), None);
        assert_eq!(timeout.error_type().as_deref(), Some("timeout"));
        let json = serde_json::to_value(&timeout).unwrap();
        assert_eq!(json["error_type"], "timeout");
        let success = serde_json::to_value(attempt(None, None)).unwrap();
        assert_eq!(success["error_type"], serde_json::Value::Null);
    }

    fn failed(provider: &str, failure: FailureKind, status: Option<u16>) -> Attempt {
        Attempt {
            provider: provider.into(),
            ..attempt(Some(failure), status)
        }
    }

    fn kind_of(attempts: Vec<Attempt>) -> crate::ErrorKind {
        super::failure(attempts, false, Duration::from_secs(30), "req_1".into()).kind()
    }

    #[test]
    fn a_chain_where_every_attempt_lacked_its_key_fails_as_missing_api_key() {
        let attempts = vec![
            failed("openai", FailureKind::MissingApiKey, None),
            failed("anthropic", FailureKind::MissingApiKey, None),
        ];
        assert_eq!(kind_of(attempts), crate::ErrorKind::MissingApiKey);
    }

    #[test]
    fn a_chain_where_every_attempt_timed_out_fails_as_timeout() {
        let attempts = vec![
            failed("openai", FailureKind::Timeout, None),
            failed("anthropic", FailureKind::Timeout, None),
        ];
        assert_eq!(kind_of(attempts), crate::ErrorKind::Timeout);
    }

    #[test]
    fn mixed_failures_across_providers_fail_as_all_providers_failed() {
        let attempts = vec![
            failed("openai", FailureKind::Timeout, None),
            failed("anthropic", FailureKind::Http, Some(500)),
        ];
        assert_eq!(kind_of(attempts), crate::ErrorKind::AllProvidersFailed);
    }

    #[test]
    fn outcome_and_failure_kind_names_are_their_serialized_names() {
        use AttemptOutcome::*;
        for outcome in [Success, Failed, SkippedCircuitOpen, SkippedRateLimited] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
        }
        use FailureKind::*;
        let kinds = [
            Connect,
            Timeout,
            Http,
            Malformed,
            ContextLength,
            MissingApiKey,
            RateLimitedLocally,
            CircuitOpen,
            Injected,
            ErrorInBody,
            Cancelled,
        ];
        for kind in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
