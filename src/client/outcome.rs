//! What `complete()` returns: the completion with its attempts, or a `CompleteError` that
//! carries every attempt's failure in order.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use super::breaker::BreakerState;
use super::budget::{BudgetExceeded, format_usd};
use super::cost::EstimatedPart;
use super::types::{FailureKind, FinishReason, Usage};
use crate::ErrorKind;
use crate::resolve::Resolution;

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
        }
    }
}

/// Why `complete()` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// A budget with the `block` policy is exhausted.
    #[error("{}", describe_budget(.exceeded))]
    BudgetExceeded {
        /// The scope and period at fault (boxed: it is large and errors travel by value).
        exceeded: Box<BudgetExceeded>,
        /// The request id.
        request_id: String,
    },
    /// The chain failed; `kind` says how (see [`CompleteError::kind`]).
    #[error("{summary}{}", describe_attempts(.attempts))]
    Failed {
        /// `ProviderError`, `RateLimited`, `Timeout`, `AllProvidersFailed`, `CircuitOpen` or
        /// `MissingApiKey`.
        kind: crate::ErrorKind,
        /// One line saying what happened.
        summary: String,
        /// The last HTTP status seen, if any.
        status: Option<u16>,
        /// The request id.
        request_id: String,
        /// Every attempt in order.
        attempts: Vec<Attempt>,
    },
    /// A stream broke after its first token (`StreamIncomplete`) or the caller cancelled the
    /// call (`Cancelled`): never a success, whatever arrived is in the partial text.
    #[error("{}{}", .interruption.summary, describe_attempts(&.interruption.attempts))]
    Interrupted {
        /// `StreamIncomplete` or `Cancelled`.
        kind: crate::ErrorKind,
        /// What happened and what had arrived (boxed: errors travel by value).
        interruption: Box<Interruption>,
    },
    /// The shared state (Redis) is unavailable and a budget of the call says
    /// `while_degraded: block`: kind `StateUnavailable` (retryable), nothing was attempted.
    #[error("{summary}")]
    StateUnavailable {
        /// One line saying which budget could not be checked.
        summary: String,
        /// The Redis server or cluster, password masked (`redis://:***@host:6379/`).
        server: String,
        /// The request id.
        request_id: String,
    },
}

/// What an interrupted call had done: see [`CompleteError::Interrupted`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Interruption {
    /// One line saying what happened (`stream cut after 12 chunks: ...`).
    pub summary: String,
    /// The text received before the stream broke or was stopped (empty when none was).
    pub partial_text: String,
    /// What the partial answer was charged to budgets, in USD (estimated when the provider
    /// sent no usage).
    pub cost_usd: f64,
    /// The request id.
    pub request_id: String,
    /// Every attempt in order, the interrupted one last.
    pub attempts: Vec<Attempt>,
    /// The token counts `cost_usd` was charged for: the prompt and the partial text (plus any
    /// stream voided by a restart), estimated like `cost_usd` (all zero when nothing was
    /// charged, such as a replayed cache answer).
    pub usage: Usage,
    /// The interrupted stream's figures, time to first chunk counted from the call's start as
    /// in [`Completion::stream`]; `None` when no stream ran.
    pub stream: Option<StreamStats>,
}

impl Interruption {
    /// An interruption with these facts.
    pub fn new(
        summary: String,
        partial_text: String,
        cost_usd: f64,
        request_id: String,
        attempts: Vec<Attempt>,
    ) -> Interruption {
        Interruption {
            summary,
            partial_text,
            cost_usd,
            request_id,
            attempts,
            usage: Usage::default(),
            stream: None,
        }
    }

    /// The same interruption with the token counts its cost was charged for.
    pub fn with_usage(mut self, usage: Usage) -> Interruption {
        self.usage = usage;
        self
    }

    /// The same interruption with the figures of the interrupted stream.
    pub fn with_stream(mut self, stream: StreamStats) -> Interruption {
        self.stream = Some(stream);
        self
    }
}

/// `budget exceeded: feature:ask day limit $0.0043 for 2026-11-30 would be passed (spent and
/// reserved $0.0037, this call up to $0.0037)`. "Spent and reserved": the figure counts the
/// calls still in flight (on Redis, other processes' too), not only finished spend.
fn describe_budget(exceeded: &BudgetExceeded) -> String {
    format!(
        "budget exceeded: {} {} limit {} for {} would be passed (spent and reserved {}, this call \
         up to {})",
        exceeded.scope,
        exceeded.period,
        format_usd(exceeded.limit_usd),
        exceeded.period_start,
        format_usd(exceeded.spent_usd),
        format_usd(exceeded.requested_usd),
    )
}

fn describe_attempts(attempts: &[Attempt]) -> String {
    let mut text = String::new();
    for attempt in attempts {
        text.push_str(&format!(
            "\n  attempt {} {}/{}: {}",
            attempt.number,
            attempt.provider,
            attempt.model,
            attempt.message.as_deref().unwrap_or("ok")
        ));
    }
    text
}

impl CompleteError {
    /// The crate-level error kind.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            CompleteError::BudgetExceeded { .. } => crate::ErrorKind::BudgetExceeded,
            CompleteError::Failed { kind, .. } | CompleteError::Interrupted { kind, .. } => *kind,
            CompleteError::StateUnavailable { .. } => crate::ErrorKind::StateUnavailable,
        }
    }

    /// The attempts made before failing.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            CompleteError::BudgetExceeded { .. } | CompleteError::StateUnavailable { .. } => &[],
            CompleteError::Failed { attempts, .. } => attempts,
            CompleteError::Interrupted { interruption, .. } => &interruption.attempts,
        }
    }

    /// Attempts, status and budget as JSON, for bindings.
    pub fn details(&self) -> Value {
        match self {
            CompleteError::BudgetExceeded {
                exceeded,
                request_id,
            } => {
                serde_json::json!({ "budget": exceeded, "request_id": request_id })
            }
            CompleteError::Failed {
                status,
                request_id,
                attempts,
                ..
            } => {
                serde_json::json!({ "status": status, "request_id": request_id, "attempts": attempts })
            }
            CompleteError::Interrupted { interruption, .. } => serde_json::json!({
                "status": null,
                "request_id": interruption.request_id,
                "attempts": interruption.attempts,
                "partial_text": interruption.partial_text,
                "cost_usd": interruption.cost_usd,
                "usage": interruption.usage,
                "stream": interruption.stream,
            }),
            CompleteError::StateUnavailable {
                server, request_id, ..
            } => serde_json::json!({
                "server": server,
                "status": null,
                "request_id": request_id,
                "attempts": [],
            }),
        }
    }
}

/// The error for a chain where nothing succeeded, named after what the attempts have in common.
pub(crate) fn failure(
    attempts: Vec<Attempt>,
    deadline_reached: bool,
    deadline: Duration,
    request_id: String,
) -> CompleteError {
    let deadline_ms = deadline.as_millis();
    let all = |predicate: &dyn Fn(&Attempt) -> bool| {
        !attempts.is_empty() && attempts.iter().all(predicate)
    };
    let failed_with = |attempt: &Attempt, kind: FailureKind| attempt.failure == Some(kind);
    let providers: std::collections::BTreeSet<&str> = attempts
        .iter()
        .map(|attempt| attempt.provider.as_str())
        .collect();
    let provider_list = providers.iter().copied().collect::<Vec<_>>().join(", ");
    let status = attempts.iter().rev().find_map(|attempt| attempt.status);
    let cancelled = super::cancel::is_cancelled()
        || attempts
            .last()
            .is_some_and(|attempt| failed_with(attempt, FailureKind::Cancelled));
    let (kind, summary) = if cancelled {
        (
            ErrorKind::Cancelled,
            format!(
                "cancelled by the caller after {}",
                counted(attempts.len(), "attempt")
            ),
        )
    } else if deadline_reached {
        (
            ErrorKind::Timeout,
            format!(
                "deadline of {deadline_ms} ms reached after {}",
                counted(attempts.len(), "attempt")
            ),
        )
    } else if all(&|attempt| attempt.outcome == AttemptOutcome::SkippedCircuitOpen) {
        (
            ErrorKind::CircuitOpen,
            format!("every provider of the chain has an open circuit breaker ({provider_list})"),
        )
    } else if all(&|attempt| failed_with(attempt, FailureKind::MissingApiKey)) {
        (
            ErrorKind::MissingApiKey,
            format!("no API key for {provider_list}"),
        )
    } else if all(&|attempt| {
        attempt.outcome == AttemptOutcome::SkippedRateLimited || attempt.status == Some(429)
    }) {
        (
            ErrorKind::RateLimited,
            format!("rate limited by {provider_list}"),
        )
    } else if all(&|attempt| failed_with(attempt, FailureKind::Timeout)) {
        (
            ErrorKind::Timeout,
            format!("every attempt timed out ({provider_list})"),
        )
    } else if providers.len() == 1 {
        (ErrorKind::ProviderError, format!("{provider_list} failed"))
    } else if attempts.is_empty() {
        (
            ErrorKind::AllProvidersFailed,
            "no provider of the chain could be called".to_string(),
        )
    } else {
        (
            ErrorKind::AllProvidersFailed,
            format!("every provider of the chain failed ({provider_list})"),
        )
    };
    CompleteError::Failed {
        kind,
        summary,
        status,
        request_id,
        attempts,
    }
}

/// `count` and `noun`, with the noun plural unless the count is one: "1 attempt", "3 chunks".
pub(crate) fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
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
