//! What `complete()` returns: the completion with its attempts, or a `CompleteError` that
//! carries every attempt's failure in order.

use serde::Serialize;
use serde_json::Value;

use super::breaker::BreakerState;
use super::budget::BudgetExceeded;
use super::cost::EstimatedPart;
use super::types::{FinishReason, Usage};
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
}

impl AttemptOutcome {
    /// The outcome's name in telemetry and JSON, matching the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::SkippedCircuitOpen => "skipped_circuit_open",
            AttemptOutcome::SkippedRateLimited => "skipped_rate_limited",
        }
    }
}

/// One attempt of a `complete()` call, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// 1-based position in the call.
    pub number: u32,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The OpenTelemetry `error.type`: an HTTP status, or `timeout`, `connect`, `circuit_open`, ...
    pub error_type: Option<String>,
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
        }
    }
}

/// Why `complete()` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompleteError {
    /// A budget with the `block` policy is exhausted.
    #[error(
        "budget exceeded: {} {} limit ${:.2} for {} would be passed (spent ${:.4}, this call up to ${:.4})",
        .exceeded.scope, .exceeded.period, .exceeded.limit_usd, .exceeded.period_start, .exceeded.spent_usd,
        .exceeded.requested_usd
    )]
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
            CompleteError::Failed { kind, .. } => *kind,
        }
    }

    /// The attempts made before failing.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            CompleteError::BudgetExceeded { .. } => &[],
            CompleteError::Failed { attempts, .. } => attempts,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::FailureKind;
    use super::AttemptOutcome;

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
        ];
        for kind in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
