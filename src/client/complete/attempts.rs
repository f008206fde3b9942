//! The walk of one call's model chain, attempt by attempt: breaker admission (and the forced
//! probe when every breaker is open), local rate limits, the provider call, retries with
//! backoff or the provider's Retry-After, failing over at once to a healthy next model, all
//! before the call's deadline, with an `llm.attempt` event and a breaker transition event for
//! each step. Budgets are not its business: the parent reserves before the walk and settles
//! or releases after it.
//!
//! How one attempt reaches the provider is pluggable ([`Perform`]): `complete()` makes one
//! `call`, `stream()` opens a stream and reads it (see `super::stream`). Both share everything
//! else here. A streamed attempt that broke after text reached the caller
//! ([`Performed::Broken`], see `super::broken`) ends the walk (or, when the stream settings
//! allow it, restarts on the next model). An answer is judged against the version's output schema and tools before
//! it counts as a success (see `super::repair`: repairs, failover on invalid output, refusals
//! and truncation).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::broken::Attempted;
use super::{Chain, Start, milliseconds};
use crate::client::backoff::backoff_delay;
use crate::client::breaker::{Admission, BreakerState};
use crate::client::cost::{estimate_prompt_tokens, max_output_tokens};
use crate::client::events::{AttemptEnded, ClientEvent};
use crate::client::limits;
use crate::client::outcome::{Attempt, AttemptOutcome, StreamStats};
use crate::client::policy::{NextStep, breaker_failure, next_step};
use crate::client::request::CallRequest;
use crate::client::runtime::{ClientOptions, ClientRuntime, ProviderRuntime};
use crate::client::table::ProviderTable;
use crate::client::types::{
    AttemptError, FailureKind, ProviderRequest, ProviderResponse, UsageReported,
};
use crate::config::{AllOpenPolicy, ModelSpec};
use crate::output::{InvalidOutput, ToolCall};
use crate::prompt::Message;
use crate::resolve::{SpanRole, span_id};

/// What performing one attempt led to.
pub(super) enum Performed {
    /// The provider answered (a stream: it reached its terminal event).
    Answered(ProviderResponse, Option<StreamStats>),
    /// The attempt failed before any text reached the caller: `complete()`'s policy applies.
    Failed(AttemptError),
    /// A stream broke (or the caller stopped it: kind `Cancelled`) after text reached the
    /// caller; `partial` is that text.
    Broken {
        error: AttemptError,
        stats: BrokenStats,
        partial: String,
    },
}

/// The figures of a broken stream: its attempt's (time to first chunk from the attempt's start)
/// and the call's (from the call's start, as a finished stream's `Completion.stream`).
#[derive(Debug, Clone, Copy)]
pub(super) struct BrokenStats {
    pub(super) attempt: StreamStats,
    pub(super) call: StreamStats,
}

/// How one attempt is sent: the provider call point of the walk.
pub(super) trait Perform {
    /// Sends `request` to `provider` and reads its answer.
    fn perform(&mut self, provider: &ProviderRuntime, request: &ProviderRequest<'_>) -> Performed;

    /// A started stream of `provider`/`model` broke: true when the call may start again on the
    /// next model (the caller has been told its deltas are void). `complete()` never restarts.
    fn restart(&mut self, provider: &str, model: &str, reason: &str) -> bool {
        let _ = (provider, model, reason);
        false
    }

    /// The answer of `provider`/`model` was invalid and the walk goes on (a repair, or the next
    /// model): a stream tells the caller its deltas are void. False when the caller asked to
    /// stop there (the call then ends with the invalid answer). `complete()` always goes on.
    fn void(&mut self, provider: &str, model: &str, reason: &str) -> bool {
        let _ = (provider, model, reason);
        true
    }
}

/// `complete()`'s attempt: one provider call.
pub(super) struct PlainCall;

impl Perform for PlainCall {
    fn perform(&mut self, provider: &ProviderRuntime, request: &ProviderRequest<'_>) -> Performed {
        match provider.provider.call(request) {
            Ok(response) => Performed::Answered(response, None),
            Err(error) => Performed::Failed(error),
        }
    }
}

/// How a walk ended without an answer.
pub(super) enum Ended<'m> {
    /// Every model failed or was skipped (`deadline`: the deadline stopped the walk).
    Failed { deadline: bool },
    /// A started stream broke or was stopped: the call ends with `kind`.
    Interrupted {
        kind: crate::ErrorKind,
        summary: String,
        partial: String,
        model: &'m ModelSpec,
        /// The interrupted stream's figures, time to first chunk from the call's start.
        stream: StreamStats,
    },
    /// The model refused a structured request (`Refusal`) or its structured answer was cut at
    /// the output limit (`OutputTruncated`): the call ends with that answer, charged.
    Unusable {
        kind: crate::ErrorKind,
        summary: String,
        response: Box<ProviderResponse>,
    },
}

/// What trying one model led to.
pub(super) enum ModelResult<'m> {
    Success(Box<Answered>),
    /// The answer broke the output schema or a tool's schema (its attempt is recorded and
    /// charged): repair, or try the next entry of the chain.
    Invalid {
        invalid: InvalidOutput,
        response: ProviderResponse,
    },
    /// Try the next entry of the chain.
    Next,
    /// The deadline passed: stop the whole call.
    DeadlineReached,
    /// The caller cancelled: stop the whole call.
    Cancelled,
    /// A started stream broke, or the answer ended the call.
    Ended(Ended<'m>),
}

/// A valid answer, as the walk hands it back.
pub(super) struct Answered {
    pub(super) response: ProviderResponse,
    /// The call's stream figures, for a streamed call.
    pub(super) stats: Option<StreamStats>,
    /// The parsed answer, when the version declares an output schema.
    pub(super) data: Option<serde_json::Value>,
    /// The normalised tool calls.
    pub(super) tool_calls: Vec<ToolCall>,
    /// The messages of the repair attempt that answered, when one did (its prompt was longer
    /// than the request's).
    pub(super) messages: Option<Vec<Message>>,
}

/// A successful walk: the model that answered and its answer.
pub(super) type Walked<'m> = (&'m ModelSpec, Box<Answered>);

/// One call's walk of its chain, and the attempts it made on the way.
pub(super) struct Call<'a> {
    pub(super) runtime: &'a ClientRuntime,
    /// The providers' prices, for the cost of answers the call could not use.
    pub(super) providers: &'a ProviderTable,
    pub(super) options: &'a ClientOptions,
    pub(super) request: &'a CallRequest<'a>,
    pub(super) start: Start,
    pub(super) prompt_tokens: u64,
    pub(super) deadline: Instant,
    pub(super) attempts: Vec<Attempt>,
    /// Sends each attempt.
    pub(super) perform: &'a mut dyn Perform,
    /// The text of started streams voided by a restart, with the model that sent it: charged
    /// (estimated) with the call.
    pub(super) voided: Vec<(ModelSpec, String)>,
    /// Whether the chain has a model after the one being tried: a broken stream restarts only
    /// when there is somewhere to restart.
    pub(super) has_next_model: bool,
    /// Repair attempts made so far.
    pub(super) repairs: u32,
    /// The models (provider, name) already repaired in this call: one repair each.
    pub(super) repaired: Vec<(String, String)>,
    /// What the answers the call could not use cost (invalid, refused, truncated).
    pub(super) charged: super::output::Charged,
    /// The last invalid answer: why, and its raw text.
    pub(super) last_invalid: Option<(InvalidOutput, String)>,
}

impl Call<'_> {
    /// Walks the chain.
    pub(super) fn run<'m>(&mut self, chain: Chain<'m>) -> Result<Walked<'m>, Ended<'m>> {
        for (index, model) in chain.iter().enumerate() {
            let Some(provider) = self.runtime.providers.get(&model.provider) else {
                continue;
            };
            let next_is_healthy = chain
                .get(index + 1)
                .is_some_and(|next| self.healthy_alternative(provider, model, next));
            self.has_next_model = chain.get(index + 1).is_some();
            match self.try_with_repair(provider, model, next_is_healthy, None) {
                ModelResult::Success(answered) => return Ok((model, answered)),
                ModelResult::Next | ModelResult::Invalid { .. } => {}
                ModelResult::DeadlineReached => return Err(Ended::Failed { deadline: true }),
                ModelResult::Cancelled => return Err(Ended::Failed { deadline: false }),
                ModelResult::Ended(ended) => return Err(ended),
            }
        }
        let all_open = !self.attempts.is_empty()
            && self
                .attempts
                .iter()
                .all(|attempt| attempt.outcome == AttemptOutcome::SkippedCircuitOpen);
        if all_open && self.runtime.settings.when_all_open == AllOpenPolicy::TryEarliestOpened {
            let earliest = chain
                .iter()
                .filter_map(|model| {
                    let provider = self.runtime.providers.get(&model.provider)?;
                    let opened_at = provider.breaker(&model.name).observed_opened_at()?;
                    Some((opened_at, provider, model))
                })
                .min_by_key(|(opened_at, _, _)| *opened_at);
            if let Some((_, provider, model)) = earliest {
                let admission = provider
                    .breaker(&model.name)
                    .force_probe(self.options.clock.now());
                self.emit_transition(&admission);
                self.has_next_model = false;
                match self.try_with_repair(provider, model, false, Some(admission)) {
                    ModelResult::Success(answered) => return Ok((model, answered)),
                    ModelResult::Next | ModelResult::Invalid { .. } => {}
                    ModelResult::DeadlineReached => return Err(Ended::Failed { deadline: true }),
                    ModelResult::Cancelled => return Err(Ended::Failed { deadline: false }),
                    ModelResult::Ended(ended) => return Err(ended),
                }
            }
        }
        Err(Ended::Failed { deadline: false })
    }

    /// The next model is worth failing over to at once: another breaker, closed, and a
    /// provider that can send (a fallback without its API key would only fail, so the current
    /// model keeps its retries).
    fn healthy_alternative(
        &self,
        current: &ProviderRuntime,
        model: &ModelSpec,
        next: &ModelSpec,
    ) -> bool {
        let Some(next_provider) = self.runtime.providers.get(&next.provider) else {
            return false;
        };
        let current_breaker = current.breaker(&model.name);
        let next_breaker = next_provider.breaker(&next.name);
        !std::ptr::eq(current_breaker, next_breaker)
            && next_breaker.observed_state() == BreakerState::Closed
            && next_provider.provider.is_available()
    }

    /// Tries `model` with `messages` (the request's, or a repair conversation), retrying
    /// transient failures; an answer is judged before it counts (see `super::repair`).
    pub(super) fn try_model<'m>(
        &mut self,
        provider: &ProviderRuntime,
        model: &'m ModelSpec,
        next_is_healthy: bool,
        mut forced: Option<Admission>,
        messages: &[Message],
    ) -> ModelResult<'m> {
        let clock = &self.options.clock;
        let breaker = provider.breaker(&model.name);
        let retry = &provider.spec.retry;
        let prompt_tokens = if std::ptr::eq(messages, self.request.messages) {
            self.prompt_tokens
        } else {
            estimate_prompt_tokens(messages)
        };
        let tokens = prompt_tokens + max_output_tokens(model);
        let mut waited = Duration::ZERO;
        for attempt_number in 1..=retry.max_attempts.max(1) {
            // A cancelled call stops before its next attempt; `failure` names it `cancelled`.
            if crate::client::cancel::is_cancelled() {
                return ModelResult::Cancelled;
            }
            // One reading serves the deadline, the breaker and the limiters; the clock is read
            // again only after a wait.
            let now = clock.now();
            if now >= self.deadline {
                return ModelResult::DeadlineReached;
            }
            let admission = match forced.take() {
                Some(admission) => admission,
                None => match breaker.admit(now) {
                    Ok(admission) => {
                        self.emit_transition(&admission);
                        admission
                    }
                    Err(refusal) => {
                        self.emit(refusal.transition);
                        if attempt_number == 1 {
                            let shared = if refusal.fleet { " for the fleet" } else { "" };
                            let error = AttemptError::new(
                                FailureKind::CircuitOpen,
                                format!("circuit breaker of {} is open{shared}", provider.name),
                            );
                            self.skip(provider, model, &error, waited);
                        }
                        return ModelResult::Next;
                    }
                },
            };
            let start = self.start;
            let acquired = limits::acquire(
                provider,
                &model.name,
                tokens,
                now,
                &**clock,
                self.deadline,
                |at| start.utc_at(at).timestamp_millis(),
            );
            let (rate_wait, taken) = match acquired {
                Ok(acquired) => acquired,
                Err(()) => {
                    breaker.release(&admission);
                    let error = AttemptError::new(
                        FailureKind::RateLimitedLocally,
                        format!(
                            "client-side rate limit of {}/{} exhausted",
                            provider.name, model.name
                        ),
                    );
                    self.skip(provider, model, &error, waited);
                    return ModelResult::Next;
                }
            };
            waited += rate_wait;
            let now = if rate_wait.is_zero() {
                now
            } else {
                clock.now()
            };
            let started_at = self.start.utc_at(now);
            if now >= self.deadline {
                breaker.release(&admission);
                let now_ms = started_at.timestamp_millis();
                limits::release(provider, &model.name, now, now_ms, tokens, taken);
                return ModelResult::DeadlineReached;
            }
            let timeout = Duration::from_millis(provider.spec.timeout_ms).min(self.deadline - now);
            // The attempt's span id is derived from the request id and the attempt's number
            // (the one its `llm.attempt` line gets), so the exporter names the same span.
            let traceparent = self.request.trace.map(|trace| {
                let number = self.attempts.len() as u32 + 1;
                trace.traceparent(span_id(self.request.request_id, SpanRole::Attempt(number)))
            });
            let request = ProviderRequest {
                model: &model.name,
                messages,
                parameters: &model.parameters,
                request_id: self.request.request_id,
                timeout,
                output: self.request.output,
                tools: self.request.tools,
                tool_choice: self.request.tool_choice,
                traceparent: traceparent.as_deref(),
            };
            let result = self.perform.perform(provider, &request);
            let finished = clock.now();
            let latency = finished.saturating_duration_since(now);
            let error = match result {
                Performed::Answered(response, stats) => {
                    let transition = breaker.record_success(finished, &admission);
                    self.emit(transition);
                    // Unreported counts keep the reserved figure: conservative, like the cost.
                    let used = if response.usage_reported == UsageReported::ALL {
                        response.usage.input_tokens + response.usage.output_tokens
                    } else {
                        tokens
                    };
                    let finished_ms = self.start.utc_at(finished).timestamp_millis();
                    limits::settle(
                        provider,
                        &model.name,
                        finished,
                        finished_ms,
                        tokens,
                        used,
                        &taken,
                    );
                    let attempt = self.attempt(provider, model, None, latency, waited);
                    // A stream's statistics count from the call's start (the answer's time to
                    // first token); the attempt's count from its own start.
                    let before = now.saturating_duration_since(self.start.at);
                    let attempt_stats = stats.map(|call| StreamStats {
                        time_to_first_token_ms: (call.time_to_first_token_ms
                            - before.as_secs_f64() * 1000.0)
                            .max(0.0),
                        chunks: call.chunks,
                    });
                    let attempt = Attempt {
                        stream: attempt_stats,
                        ..attempt
                    };
                    let answer = super::repair::Answer {
                        response,
                        stats,
                        attempt,
                        started_at,
                    };
                    return self.answered(provider, model, messages, answer);
                }
                Performed::Broken {
                    error,
                    stats,
                    partial,
                } => {
                    let attempt = Attempted {
                        prompt_tokens,
                        started_at,
                        latency,
                        waited,
                        tokens,
                        taken: &taken,
                        finished,
                    };
                    return self.broken(provider, model, admission, attempt, error, stats, partial);
                }
                Performed::Failed(error) => error,
            };
            match breaker_failure(&error) {
                Some(failure) => {
                    let transition = breaker.record_failure(finished, &admission, failure);
                    self.emit(transition);
                }
                None => breaker.release(&admission),
            }
            let finished_ms = self.start.utc_at(finished).timestamp_millis();
            limits::settle(
                provider,
                &model.name,
                finished,
                finished_ms,
                tokens,
                0,
                &taken,
            );
            let attempt = self.attempt(provider, model, Some(&error), latency, waited);
            self.ended(started_at, attempt);
            match next_step(&error) {
                NextStep::NextModel | NextStep::NextProvider => return ModelResult::Next,
                NextStep::Retry if attempt_number >= retry.max_attempts || next_is_healthy => {
                    return ModelResult::Next;
                }
                NextStep::Retry => {}
            }
            let delay = match error.retry_after {
                Some(asked) if asked > Duration::from_millis(retry.max_retry_after_ms) => {
                    return ModelResult::Next;
                }
                Some(asked) => asked,
                None => backoff_delay(retry, attempt_number, &*self.options.random),
            };
            if clock.now() + delay >= self.deadline {
                return ModelResult::Next;
            }
            clock.sleep(delay);
            waited = delay;
        }
        ModelResult::Next
    }

    pub(super) fn attempt(
        &self,
        provider: &ProviderRuntime,
        model: &ModelSpec,
        error: Option<&AttemptError>,
        latency: Duration,
        waited: Duration,
    ) -> Attempt {
        {
            Attempt {
                number: self.attempts.len() as u32 + 1,
                provider: provider.name.clone(),
                model: model.name.clone(),
                outcome: if error.is_some() {
                    AttemptOutcome::Failed
                } else {
                    AttemptOutcome::Success
                },
                failure: error.map(|error| error.kind),
                status: error.and_then(|error| error.status),
                message: error.map(ToString::to_string),
                latency_ms: milliseconds(latency),
                wait_ms: milliseconds(waited),
                breaker_state: provider.breaker(&model.name).observed_state(),
                stream: None,
                invalid_output: None,
            }
        }
    }

    fn skip(
        &mut self,
        provider: &ProviderRuntime,
        model: &ModelSpec,
        error: &AttemptError,
        waited: Duration,
    ) {
        let started_at = self.start.utc_at(self.options.clock.now());
        // A skip is a failure the client made up itself: its kind says which skip it was.
        let outcome = if error.kind == FailureKind::CircuitOpen {
            AttemptOutcome::SkippedCircuitOpen
        } else {
            AttemptOutcome::SkippedRateLimited
        };
        self.ended(
            started_at,
            Attempt {
                number: self.attempts.len() as u32 + 1,
                provider: provider.name.clone(),
                model: model.name.clone(),
                outcome,
                failure: Some(error.kind),
                status: None,
                message: Some(error.message.clone()),
                latency_ms: 0.0,
                wait_ms: milliseconds(waited),
                breaker_state: provider.breaker(&model.name).observed_state(),
                stream: None,
                invalid_output: None,
            },
        );
    }

    /// Reports `attempt` to the event sink as it ends, then keeps it for the answer. The sink
    /// borrows it: a call without a telemetry log copies nothing for it.
    pub(super) fn ended(&mut self, started_at: DateTime<Utc>, attempt: Attempt) {
        let ended = AttemptEnded {
            feature: self.request.feature,
            version: self.request.version,
            started_at,
            attempt: &attempt,
            trace: self.request.trace,
        };
        self.options
            .event_sink
            .attempt_ended(self.request.request_id, &ended);
        self.attempts.push(attempt);
    }

    fn emit_transition(&self, admission: &Admission) {
        self.emit(admission.transition.clone());
    }

    pub(super) fn emit(&self, transition: Option<crate::client::events::CircuitTransition>) {
        if let Some(transition) = transition {
            self.options.event_sink.emit(
                self.request.request_id,
                &ClientEvent::CircuitTransition(transition),
            );
        }
    }
}
