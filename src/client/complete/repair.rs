//! The walk's answer to an answer: a valid one ends the walk with its parsed data and tool
//! calls; an invalid one is an `invalid_output` attempt (charged, the breaker recorded it as a
//! success: the service worked) followed by one repair attempt on the same model, when the
//! version allows it, then the next model of the chain with the original messages; a refusal
//! of a structured request or a structured answer cut at the output limit ends the call with
//! its own error kind, never retried.

use chrono::{DateTime, Utc};

use super::attempts::{Answered, Call, Ended, ModelResult};
use super::output::{Judged, judge, repair_messages, repairs};
use crate::client::breaker::Admission;
use crate::client::cost::call_cost;
use crate::client::outcome::{Attempt, AttemptOutcome, StreamStats};
use crate::client::runtime::ProviderRuntime;
use crate::client::types::{FailureKind, ProviderResponse};
use crate::config::ModelSpec;
use crate::prompt::Message;

/// An answered attempt before it is judged.
pub(super) struct Answer {
    pub(super) response: ProviderResponse,
    /// The call's stream figures, for a streamed call.
    pub(super) stats: Option<StreamStats>,
    /// The attempt, recorded as a success until judged otherwise.
    pub(super) attempt: Attempt,
    pub(super) started_at: DateTime<Utc>,
}

impl Call<'_> {
    /// Tries `model`, then, when its answer was invalid and the version repairs, tries it once
    /// more with the repair conversation (one repair per model and call). An invalid answer
    /// that is not repaired leaves the walk to the next model.
    pub(super) fn try_with_repair<'m>(
        &mut self,
        provider: &ProviderRuntime,
        model: &'m ModelSpec,
        next_is_healthy: bool,
        mut forced: Option<Admission>,
    ) -> ModelResult<'m> {
        let mut repair: Option<Vec<Message>> = None;
        loop {
            let messages = repair.as_deref().unwrap_or(self.request.messages);
            let result = self.try_model(provider, model, next_is_healthy, forced.take(), messages);
            let (invalid, response) = match result {
                ModelResult::Invalid { invalid, response } => (invalid, response),
                ModelResult::Success(mut answered) => {
                    answered.messages = repair;
                    return ModelResult::Success(answered);
                }
                other => return other,
            };
            let key = (model.provider.clone(), model.name.clone());
            let repairable =
                repair.is_none() && repairs(self.request) && !self.repaired.contains(&key);
            let next =
                repairable.then(|| repair_messages(self.request.messages, &response, &invalid));
            let reason = format!("invalid output: {invalid}");
            self.last_invalid = Some((invalid, response.text));
            match next {
                Some(next) => {
                    // The caller's deltas of the invalid answer are void before the repair streams.
                    if !self.perform.void(&provider.name, &model.name, &reason) {
                        return ModelResult::Ended(Ended::Failed { deadline: false });
                    }
                    self.repaired.push(key);
                    self.repairs += 1;
                    repair = Some(next);
                }
                None => {
                    if self.has_next_model
                        && !self.perform.void(&provider.name, &model.name, &reason)
                    {
                        return ModelResult::Ended(Ended::Failed { deadline: false });
                    }
                    return ModelResult::Next;
                }
            }
        }
    }

    /// Judges an answer of `model` to `messages` and records its attempt: a success, an
    /// `invalid_output` attempt, or the end of the call (refusal, truncation). Answers that are
    /// not used are charged.
    pub(super) fn answered<'m>(
        &mut self,
        provider: &ProviderRuntime,
        model: &'m ModelSpec,
        messages: &[Message],
        answer: Answer,
    ) -> ModelResult<'m> {
        let Answer {
            response,
            stats,
            mut attempt,
            started_at,
        } = answer;
        let judged = judge(self.request, &response);
        if !matches!(judged, Judged::Valid { .. }) {
            let cost = call_cost(self.providers, model, messages, &response);
            self.charged.add(&cost);
        }
        match judged {
            Judged::Valid { data, tool_calls } => {
                self.ended(started_at, attempt);
                ModelResult::Success(Box::new(Answered {
                    response,
                    stats,
                    data,
                    tool_calls,
                    messages: None,
                }))
            }
            Judged::Invalid(invalid) => {
                attempt.outcome = AttemptOutcome::InvalidOutput;
                attempt.failure = Some(FailureKind::InvalidOutput);
                attempt.message = Some(invalid.to_string());
                self.ended(started_at, attempt);
                ModelResult::Invalid { invalid, response }
            }
            Judged::Refused => {
                let summary = match response.refusal.as_deref() {
                    Some(refusal) => format!(
                        "{}/{} refused the structured request: {refusal}",
                        provider.name, model.name
                    ),
                    None => format!(
                        "{}/{} refused the structured request (finish reason refusal)",
                        provider.name, model.name
                    ),
                };
                attempt.message = Some(summary.clone());
                self.ended(started_at, attempt);
                ModelResult::Ended(Ended::Unusable {
                    kind: crate::ErrorKind::Refusal,
                    summary,
                    response: Box::new(response),
                })
            }
            Judged::Truncated => {
                let summary = format!(
                    "the structured answer of {}/{} was cut at the output token limit (finish \
                     reason length) after {} bytes; raise max_tokens",
                    provider.name,
                    model.name,
                    response.text.len()
                );
                attempt.message = Some(summary.clone());
                self.ended(started_at, attempt);
                ModelResult::Ended(Ended::Unusable {
                    kind: crate::ErrorKind::OutputTruncated,
                    summary,
                    response: Box::new(response),
                })
            }
        }
    }
}
