//! The failover loop of `complete()`: walk the model chain, respecting each provider's breaker
//! and rate limits, retrying transient failures with backoff (or the provider's Retry-After),
//! failing over at once when the next provider is healthy, all inside one deadline, with the
//! worst-case cost reserved against budgets first and settled with the real cost after.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::backoff::backoff_delay;
use super::breaker::{Admission, BreakerState};
use super::budget::{Reservation, ReserveOutcome};
use super::cost::{call_cost, estimate_prompt_tokens, max_output_tokens, worst_case_usd};
use super::events::{AttemptEnded, ClientEvent};
use super::limits;
use super::outcome::{Answer, Attempt, AttemptOutcome, CompleteError, failure};
use super::policy::{NextStep, breaker_failure, next_step};
use super::request::CallRequest;
use super::runtime::{ClientOptions, ClientRuntime, ProviderRuntime};
use super::table::ProviderTable;
use super::types::{AttemptError, FailureKind, ProviderRequest, ProviderResponse, UsageReported};
use crate::config::{AllOpenPolicy, BudgetPolicy, DowngradeChain, ModelSpec};

/// A failed `complete()` with its latency, measured where a successful call's is.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub error: CompleteError,
    /// From the start of the call to its failure, on the engine's clock.
    pub latency: Duration,
}

/// What the chain led to, before the call's latency is taken.
struct Called<'m> {
    model: &'m ModelSpec,
    response: ProviderResponse,
    reservation: Option<Reservation>,
    downgraded: bool,
    attempts: Vec<Attempt>,
}

/// Runs one `complete()` call; the engine attaches the resolution to the answer. The call's
/// latency is measured here, once, from the injected clock, for successes and failures alike.
pub(crate) fn complete(
    runtime: &ClientRuntime,
    providers: &ProviderTable,
    options: &ClientOptions,
    request: &CallRequest<'_>,
) -> Result<Answer, Failure> {
    let start = Start {
        at: options.clock.now(),
        utc: options.clock.utc_now(),
    };
    let started = start.at;
    let mut downgrade = None;
    let called = call(runtime, providers, options, request, start, &mut downgrade);
    // Taken before the cost: counting tokens of a response without usage (and, once per
    // process, loading a tokenizer's tables) is our work, not the call's latency.
    let latency = options.clock.now().saturating_duration_since(started);
    let Called {
        model,
        response,
        reservation,
        downgraded,
        attempts,
    } = called.map_err(|error| Failure { error, latency })?;
    // A response that does not say what it cost is estimated, never free: the budget settles
    // the estimate.
    let cost = call_cost(providers, model, request.messages, &response);
    if let Some(reservation) = reservation {
        emit_alerts(
            options,
            request.request_id,
            runtime.budgets.settle(reservation, cost.cost_usd),
        );
    }
    Ok(Answer {
        text: response.text,
        provider: model.provider.clone(),
        model: model.name.clone(),
        response_model: response.response_model,
        response_id: response.response_id,
        finish_reason: response.finish_reason,
        raw_finish_reason: response.raw_finish_reason,
        refusal: response.refusal,
        usage: cost.usage,
        cost_usd: cost.cost_usd,
        cost_estimated: !cost.estimated.is_empty(),
        cost_estimated_parts: cost.estimated,
        latency_ms: milliseconds(latency),
        request_id: request.request_id.to_string(),
        downgraded,
        attempts,
    })
}

/// A model chain, borrowed from the request or from a budget's downgrade: the primary, then its
/// fallbacks. Never copied: a call walks the models where they are.
#[derive(Clone, Copy)]
struct Chain<'m> {
    primary: &'m ModelSpec,
    fallbacks: &'m [ModelSpec],
}

impl<'m> Chain<'m> {
    fn iter(self) -> impl Iterator<Item = &'m ModelSpec> {
        std::iter::once(self.primary).chain(self.fallbacks)
    }

    fn get(self, index: usize) -> Option<&'m ModelSpec> {
        match index {
            0 => Some(self.primary),
            _ => self.fallbacks.get(index - 1),
        }
    }
}

/// When a call started, on both of the clock's scales: the wall-clock time of a later moment of
/// the call is derived from its monotonic reading, so a call reads the wall clock once.
#[derive(Debug, Clone, Copy)]
struct Start {
    at: Instant,
    utc: DateTime<Utc>,
}

impl Start {
    /// The wall-clock time of `instant`, a moment of this call.
    fn utc_at(self, instant: Instant) -> DateTime<Utc> {
        let elapsed = instant.saturating_duration_since(self.at);
        chrono::Duration::from_std(elapsed)
            .ok()
            .and_then(|elapsed| self.utc.checked_add_signed(elapsed))
            .unwrap_or(self.utc)
    }
}

/// Reserves the worst case against budgets (downgrading the chain when a budget says so), then
/// walks the chain; a failure has released its reservation. `downgrade` keeps the cheaper chain
/// of a downgrade, which the answer may borrow.
fn call<'m>(
    runtime: &ClientRuntime,
    providers: &ProviderTable,
    options: &ClientOptions,
    request: &CallRequest<'m>,
    start: Start,
    downgrade: &'m mut Option<DowngradeChain>,
) -> Result<Called<'m>, CompleteError> {
    let deadline = start.at + request.deadline;
    let request_id = request.request_id;
    let prompt_tokens = estimate_prompt_tokens(request.messages);

    let mut chain = Chain {
        primary: request.model,
        fallbacks: request.fallbacks,
    };
    let worst_case = |chain: Chain<'_>| {
        chain
            .iter()
            .map(|model| worst_case_usd(providers, model, prompt_tokens))
            .fold(0.0, f64::max)
    };
    // Taken at most once (a downgrade only happens in the enforced round).
    let mut downgrade = Some(downgrade);
    let mut downgraded = false;
    let mut reservation = None;
    if !runtime.budgets.is_empty() {
        let now = start.utc;
        // The second round only runs after a downgrade refusal, on the cheaper chain and with
        // downgrade budgets no longer enforced (block budgets still are).
        for enforce in [true, false] {
            match runtime
                .budgets
                .reserve(request.feature, worst_case(chain), now, enforce)
            {
                ReserveOutcome::Granted {
                    reservation: granted,
                    alerts,
                } => {
                    emit_alerts(options, request_id, alerts);
                    reservation = Some(granted);
                    break;
                }
                ReserveOutcome::Exceeded {
                    mut exceeded,
                    alerts,
                } => {
                    emit_alerts(options, request_id, alerts);
                    let downgrades = enforce && exceeded.policy == BudgetPolicy::Downgrade;
                    match (downgrades, exceeded.downgrade.take(), downgrade.take()) {
                        (true, Some(cheaper), Some(slot)) => {
                            let cheaper: &'m DowngradeChain = slot.insert(cheaper);
                            chain = Chain {
                                primary: &cheaper.model,
                                fallbacks: &cheaper.fallbacks,
                            };
                            downgraded = true;
                        }
                        (_, cheaper, _) => {
                            exceeded.downgrade = cheaper;
                            return Err(CompleteError::BudgetExceeded {
                                exceeded: Box::new(exceeded),
                                request_id: request_id.to_string(),
                            });
                        }
                    }
                }
                ReserveOutcome::Unavailable { scope, server } => {
                    return Err(super::budget::unverifiable(&scope, &server, request_id));
                }
            }
        }
    }

    let mut call = Call {
        runtime,
        options,
        request,
        start,
        prompt_tokens,
        deadline,
        attempts: Vec::new(),
    };
    match call.run(chain) {
        Ok((model, response)) => Ok(Called {
            model,
            response,
            reservation,
            downgraded,
            attempts: call.attempts,
        }),
        Err(deadline_reached) => {
            if let Some(reservation) = reservation {
                runtime.budgets.release(reservation);
            }
            Err(failure(
                call.attempts,
                deadline_reached,
                request.deadline,
                request_id.to_string(),
            ))
        }
    }
}

/// What trying one model led to.
enum ModelResult {
    Success(ProviderResponse),
    /// Try the next entry of the chain.
    Next,
    /// The deadline passed: stop the whole call.
    DeadlineReached,
}

struct Call<'a> {
    runtime: &'a ClientRuntime,
    options: &'a ClientOptions,
    request: &'a CallRequest<'a>,
    start: Start,
    prompt_tokens: u64,
    deadline: Instant,
    attempts: Vec<Attempt>,
}

impl Call<'_> {
    /// Walks the chain; `Err(true)` when the deadline ended it.
    fn run<'m>(&mut self, chain: Chain<'m>) -> Result<(&'m ModelSpec, ProviderResponse), bool> {
        for (index, model) in chain.iter().enumerate() {
            let Some(provider) = self.runtime.providers.get(&model.provider) else {
                continue;
            };
            let next_is_healthy = chain
                .get(index + 1)
                .is_some_and(|next| self.healthy_alternative(provider, model, next));
            match self.try_model(provider, model, next_is_healthy, None) {
                ModelResult::Success(response) => return Ok((model, response)),
                ModelResult::Next => {}
                ModelResult::DeadlineReached => return Err(true),
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
                match self.try_model(provider, model, false, Some(admission)) {
                    ModelResult::Success(response) => return Ok((model, response)),
                    ModelResult::Next => {}
                    ModelResult::DeadlineReached => return Err(true),
                }
            }
        }
        Err(false)
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

    fn try_model(
        &mut self,
        provider: &ProviderRuntime,
        model: &ModelSpec,
        next_is_healthy: bool,
        mut forced: Option<Admission>,
    ) -> ModelResult {
        let clock = &self.options.clock;
        let breaker = provider.breaker(&model.name);
        let retry = &provider.spec.retry;
        let tokens = self.prompt_tokens + max_output_tokens(model);
        let mut waited = Duration::ZERO;
        for attempt_number in 1..=retry.max_attempts.max(1) {
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
            let request = ProviderRequest {
                model: &model.name,
                messages: self.request.messages,
                parameters: &model.parameters,
                request_id: self.request.request_id,
                timeout,
            };
            let result = provider.provider.call(&request);
            let finished = clock.now();
            let latency = finished.saturating_duration_since(now);
            match result {
                Ok(response) => {
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
                    self.record(provider, model, None, started_at, latency, waited);
                    return ModelResult::Success(response);
                }
                Err(error) => {
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
                    self.record(provider, model, Some(&error), started_at, latency, waited);
                    match next_step(&error) {
                        NextStep::NextModel | NextStep::NextProvider => return ModelResult::Next,
                        NextStep::Retry
                            if attempt_number >= retry.max_attempts || next_is_healthy =>
                        {
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
            }
        }
        ModelResult::Next
    }

    fn record(
        &mut self,
        provider: &ProviderRuntime,
        model: &ModelSpec,
        error: Option<&AttemptError>,
        started_at: DateTime<Utc>,
        latency: Duration,
        waited: Duration,
    ) {
        self.ended(
            started_at,
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
            },
        );
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
            },
        );
    }

    /// Reports `attempt` to the event sink as it ends, then keeps it for the answer. The sink
    /// borrows it: a call without a telemetry log copies nothing for it.
    fn ended(&mut self, started_at: DateTime<Utc>, attempt: Attempt) {
        let ended = AttemptEnded {
            feature: self.request.feature,
            version: self.request.version,
            started_at,
            attempt: &attempt,
        };
        self.options
            .event_sink
            .attempt_ended(self.request.request_id, &ended);
        self.attempts.push(attempt);
    }

    fn emit_transition(&self, admission: &Admission) {
        self.emit(admission.transition.clone());
    }

    fn emit(&self, transition: Option<super::events::CircuitTransition>) {
        if let Some(transition) = transition {
            self.options.event_sink.emit(
                self.request.request_id,
                &ClientEvent::CircuitTransition(transition),
            );
        }
    }
}

fn emit_alerts(options: &ClientOptions, request_id: &str, alerts: Vec<super::events::BudgetAlert>) {
    for alert in alerts {
        options
            .event_sink
            .emit(request_id, &ClientEvent::BudgetAlert(alert));
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A request id: `req_` and 26 hex digits from the engine's random source. Written by hand
/// rather than with `format!`: it runs on every resolve.
pub(crate) fn new_request_id(random: &dyn super::clock::Random) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(30);
    id.push_str("req_");
    for _ in 0..2 {
        let bits = (random.next_f64() * (1u64 << 52) as f64) as u64;
        for shift in (0..13).rev() {
            id.push(DIGITS[((bits >> (shift * 4)) & 0xf) as usize] as char);
        }
    }
    id
}
