//! Why a call failed: [`CompleteError`] with the attempts made, the interruption of a started
//! stream or a cancel ([`Interruption`]), an answer that could not be used ([`UnusableAnswer`]:
//! invalid output, a refusal, a truncated structured answer), and the summary naming what the
//! attempts have in common.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Attempt, AttemptOutcome, StreamStats};
use crate::ErrorKind;
use crate::client::budget::{BudgetExceeded, format_usd};
use crate::client::types::{FailureKind, Usage};
use crate::output::InvalidOutput;

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
    /// The provider answered but no answer was usable: every answer broke the version's output
    /// schema or a tool's argument schema, repairs included (`InvalidOutput`), the model refused
    /// a structured-output or tool request (`Refusal`), or a structured answer was cut at the
    /// output token limit (`OutputTruncated`). The answers were paid for: see
    /// [`UnusableAnswer::cost_usd`].
    #[error("{}{}", .answer.summary, describe_attempts(&.answer.attempts))]
    Unusable {
        /// `InvalidOutput`, `Refusal` or `OutputTruncated`.
        kind: crate::ErrorKind,
        /// The last answer and what the call was charged (boxed: errors travel by value).
        answer: Box<UnusableAnswer>,
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
    /// in [`Completion::stream`](super::Completion::stream); `None` when no stream ran.
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

/// What an answer the call could not use said, and what the call paid: see
/// [`CompleteError::Unusable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnusableAnswer {
    /// One line saying what happened (`every answer broke the output schema: ...`).
    pub summary: String,
    /// The text of the last answer as the provider sent it (for `OutputTruncated`, the text
    /// received before the limit cut it; empty for a refusal without text).
    pub raw_text: String,
    /// For `InvalidOutput`: why the last invalid answer was invalid (every violation with its
    /// JSON pointer into the answer, or into the tool call's arguments); `None` otherwise.
    pub invalid: Option<InvalidOutput>,
    /// For `Refusal`: the model's refusal message (OpenAI `message.refusal`; `None` when the
    /// provider only said so in its finish reason).
    pub refusal: Option<String>,
    /// What every answer of the call was charged to budgets, in USD (invalid answers, the
    /// refused or truncated one, streams voided by a restart).
    pub cost_usd: f64,
    /// The token counts `cost_usd` was charged for (estimated where the provider did not
    /// report them).
    pub usage: Usage,
    /// The request id.
    pub request_id: String,
    /// Every attempt in order.
    pub attempts: Vec<Attempt>,
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
            CompleteError::Failed { kind, .. }
            | CompleteError::Interrupted { kind, .. }
            | CompleteError::Unusable { kind, .. } => *kind,
            CompleteError::StateUnavailable { .. } => crate::ErrorKind::StateUnavailable,
        }
    }

    /// The attempts made before failing.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            CompleteError::BudgetExceeded { .. } | CompleteError::StateUnavailable { .. } => &[],
            CompleteError::Failed { attempts, .. } => attempts,
            CompleteError::Interrupted { interruption, .. } => &interruption.attempts,
            CompleteError::Unusable { answer, .. } => &answer.attempts,
        }
    }

    /// What a failed call was still charged to budgets, in USD, with the token counts charged:
    /// an interrupted stream's partial answer, or the answers of an unusable call; `None` when
    /// nothing was charged.
    pub fn charged(&self) -> Option<(f64, Usage)> {
        match self {
            CompleteError::Interrupted { interruption, .. } => {
                Some((interruption.cost_usd, interruption.usage))
            }
            CompleteError::Unusable { answer, .. } => Some((answer.cost_usd, answer.usage)),
            _ => None,
        }
        .filter(|(cost_usd, _)| *cost_usd > 0.0)
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
            CompleteError::Unusable { kind, answer } => unusable_details(*kind, answer),
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

/// The details of an unusable answer: the common fields, then the kind's own (`violations`,
/// `reason`, `tool` and `raw_text` for `invalid_output`; `refusal` and `raw_text` for
/// `refusal`; `partial_text` for `output_truncated`), the keys the gem's exception classes read.
fn unusable_details(kind: ErrorKind, answer: &UnusableAnswer) -> Value {
    let mut details = serde_json::json!({
        "status": null,
        "request_id": answer.request_id,
        "attempts": answer.attempts,
        "cost_usd": answer.cost_usd,
        "usage": answer.usage,
    });
    let extra = match kind {
        ErrorKind::OutputTruncated => serde_json::json!({ "partial_text": answer.raw_text }),
        ErrorKind::Refusal => {
            serde_json::json!({ "refusal": answer.refusal, "raw_text": answer.raw_text })
        }
        _ => serde_json::json!({
            "raw_text": answer.raw_text,
            "violations": answer.invalid.as_ref().map_or(&[][..], |invalid| &invalid.violations[..]),
            "reason": answer.invalid.as_ref().map(|invalid| invalid.reason),
            "tool": answer.invalid.as_ref().and_then(|invalid| invalid.tool.as_deref()),
        }),
    };
    if let (Some(details), Value::Object(extra)) = (details.as_object_mut(), extra) {
        details.extend(extra);
    }
    details
}

/// The summary of a call whose every answer was invalid: `every answer broke the output schema
/// (2 invalid answers: openai/gpt-test, anthropic/claude-test)`, or, when some attempts failed
/// otherwise, `no valid answer (...); the other attempts failed`.
pub(crate) fn invalid_summary(attempts: &[Attempt]) -> String {
    let invalid: Vec<&Attempt> = attempts
        .iter()
        .filter(|attempt| attempt.outcome == AttemptOutcome::InvalidOutput)
        .collect();
    let mut models: Vec<String> = Vec::new();
    for attempt in &invalid {
        let model = format!("{}/{}", attempt.provider, attempt.model);
        if !models.contains(&model) {
            models.push(model);
        }
    }
    let answers = format!(
        "{}: {}",
        counted(invalid.len(), "invalid answer"),
        models.join(", ")
    );
    if invalid.len() == attempts.len() {
        format!("every answer broke the output schema ({answers})")
    } else {
        format!("no valid answer ({answers}); the other attempts failed")
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
    let cancelled = crate::client::cancel::is_cancelled()
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
    use super::*;
    use crate::output::{InvalidReason, Violation};

    fn unusable(kind: ErrorKind, invalid: Option<InvalidOutput>) -> CompleteError {
        CompleteError::Unusable {
            kind,
            answer: Box::new(UnusableAnswer {
                summary: "summary".into(),
                raw_text: "{\"title\":".into(),
                invalid,
                refusal: (kind == ErrorKind::Refusal).then(|| "I can't.".to_string()),
                cost_usd: 0.002,
                usage: Usage::default(),
                request_id: "req_1".into(),
                attempts: Vec::new(),
            }),
        }
    }

    #[test]
    fn each_unusable_kind_details_the_keys_the_bindings_read() {
        let invalid = InvalidOutput {
            reason: InvalidReason::Schema,
            tool: None,
            violations: vec![Violation {
                pointer: "/skills".into(),
                message: "\"SQL\" is not of type \"array\"".into(),
            }],
        };
        let details = unusable(ErrorKind::InvalidOutput, Some(invalid)).details();
        assert_eq!(details["violations"][0]["pointer"], "/skills");
        assert_eq!(details["raw_text"], "{\"title\":");
        assert_eq!(details["reason"], "schema");
        assert_eq!(details["cost_usd"], 0.002);
        let details = unusable(ErrorKind::Refusal, None).details();
        assert_eq!(details["refusal"], "I can't.");
        assert!(details.get("violations").is_none());
        let details = unusable(ErrorKind::OutputTruncated, None).details();
        assert_eq!(details["partial_text"], "{\"title\":");
        assert_eq!(details["request_id"], "req_1");
    }

    #[test]
    fn an_unusable_call_reports_what_it_was_charged_and_a_plain_failure_nothing() {
        let error = unusable(ErrorKind::Refusal, None);
        assert_eq!(error.charged().map(|(usd, _)| usd), Some(0.002));
        let failed = failure(Vec::new(), false, Duration::from_secs(1), "req_1".into());
        assert_eq!(failed.charged(), None);
    }
}
