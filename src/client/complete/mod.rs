//! The failover loop of `complete()`: walk the model chain, respecting each provider's breaker
//! and rate limits, retrying transient failures with backoff (or the provider's Retry-After),
//! failing over at once when the next provider is healthy, all inside one deadline, with the
//! worst-case cost reserved against budgets first and settled with the real cost after. Every
//! answer of a structured-output or tool request is validated on the way (`repair`): the
//! answers the call could not use are charged with it.

mod attempts;
mod broken;
mod output;
mod repair;
mod stream;

pub(crate) use stream::{StreamSettings, stream};

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::budget::{Reservation, ReserveOutcome};
use super::cost::{CallCost, call_cost, estimate_prompt_tokens, worst_case_usd};
use super::events::ClientEvent;
use super::outcome::{
    Answer, Attempt, CompleteError, Interruption, UnusableAnswer, failure, invalid_summary,
};
use super::request::CallRequest;
use super::runtime::{ClientOptions, ClientRuntime};
use super::table::ProviderTable;
use super::types::ProviderResponse;
use crate::config::{BudgetPolicy, DowngradeChain, ModelSpec};
use attempts::{Call, Ended, Perform, PlainCall};
use output::{Charged, add_usage};

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
    answered: Box<attempts::Answered>,
    reservation: Option<Reservation>,
    downgraded: bool,
    attempts: Vec<Attempt>,
    /// Text of streams voided by a restart, with the model that sent it (charged too).
    voided: Vec<(ModelSpec, String)>,
    /// Repair attempts made.
    repairs: u32,
    /// What the answers the call could not use (invalid ones) cost.
    charged: Charged,
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
    perform_call(runtime, providers, options, request, start, &mut PlainCall)
}

/// One call, its attempts sent by `perform` (a plain call or a stream).
fn perform_call(
    runtime: &ClientRuntime,
    providers: &ProviderTable,
    options: &ClientOptions,
    request: &CallRequest<'_>,
    start: Start,
    perform: &mut dyn Perform,
) -> Result<Answer, Failure> {
    let started = start.at;
    let mut downgrade = None;
    let called = call(
        runtime,
        providers,
        options,
        request,
        start,
        &mut downgrade,
        perform,
    );
    // Taken before the cost: counting tokens of a response without usage (and, once per
    // process, loading a tokenizer's tables) is our work, not the call's latency.
    let latency = options.clock.now().saturating_duration_since(started);
    let Called {
        model,
        answered,
        reservation,
        downgraded,
        attempts,
        voided,
        repairs,
        charged,
    } = called.map_err(|error| Failure { error, latency })?;
    let attempts::Answered {
        response,
        stats: stream,
        data,
        tool_calls,
        messages,
    } = *answered;
    // A response that does not say what it cost is estimated, never free: the budget settles
    // the estimate. A repair's answer was the answer to the longer repair conversation.
    let messages = messages.as_deref().unwrap_or(request.messages);
    let mut cost = call_cost(providers, model, messages, &response);
    // The invalid answers before it were paid for too.
    cost.cost_usd += charged.cost_usd;
    add_usage(&mut cost.usage, &charged.usage);
    for part in charged.estimated {
        if !cost.estimated.contains(&part) {
            cost.estimated.push(part);
        }
    }
    // Streams voided by a restart were paid for too.
    let voided_usd = voided_cost(providers, request, &voided);
    if voided_usd > 0.0 {
        cost.cost_usd += voided_usd;
        if !cost
            .estimated
            .contains(&super::cost::EstimatedPart::OutputTokens)
        {
            cost.estimated
                .push(super::cost::EstimatedPart::OutputTokens);
        }
    }
    if let Some(reservation) = reservation {
        emit_alerts(
            options,
            request.request_id,
            runtime.budgets.settle(reservation, cost.cost_usd),
        );
    }
    Ok(Answer {
        data,
        tool_calls,
        repairs,
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
        stream,
    })
}

/// The estimated cost of the text of streams voided by restarts.
fn voided_cost(
    providers: &ProviderTable,
    request: &CallRequest<'_>,
    voided: &[(ModelSpec, String)],
) -> f64 {
    voided
        .iter()
        .map(|(model, text)| partial_cost(providers, model, request, text).cost_usd)
        .sum()
}

/// What the prompt and `text` (the output so far) of an unfinished answer cost, estimated, with
/// the token counts charged.
fn partial_cost(
    providers: &ProviderTable,
    model: &ModelSpec,
    request: &CallRequest<'_>,
    text: &str,
) -> CallCost {
    let response = ProviderResponse {
        text: text.to_string(),
        finish_reason: None,
        raw_finish_reason: None,
        refusal: None,
        response_id: None,
        response_model: None,
        usage: super::types::Usage::default(),
        usage_reported: super::types::UsageReported::default(),
        tool_calls: Vec::new(),
    };
    call_cost(providers, model, request.messages, &response)
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
    perform: &mut dyn Perform,
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
        providers,
        options,
        request,
        start,
        prompt_tokens,
        deadline,
        attempts: Vec::new(),
        perform,
        voided: Vec::new(),
        has_next_model: false,
        repairs: 0,
        repaired: Vec::new(),
        charged: Charged::default(),
        last_invalid: None,
    };
    match call.run(chain) {
        Ok((model, answered)) => Ok(Called {
            model,
            answered,
            reservation,
            downgraded,
            attempts: call.attempts,
            voided: call.voided,
            repairs: call.repairs,
            charged: call.charged,
        }),
        Err(Ended::Interrupted {
            kind,
            summary,
            partial,
            model,
            stream,
        }) => {
            // The provider was paid for the prompt and the text sent so far: estimated (a
            // broken stream rarely reports usage) and settled like a finished answer's cost,
            // with the invalid answers before it.
            let mut usage = call.charged.usage;
            let mut cost_usd = call.charged.cost_usd;
            let voided = call
                .voided
                .iter()
                .map(|(model, text)| (model, text.as_str()));
            for (model, text) in std::iter::once((model, partial.as_str())).chain(voided) {
                let charged = partial_cost(providers, model, request, text);
                cost_usd += charged.cost_usd;
                usage.input_tokens += charged.usage.input_tokens;
                usage.output_tokens += charged.usage.output_tokens;
            }
            if let Some(reservation) = reservation {
                emit_alerts(
                    options,
                    request_id,
                    runtime.budgets.settle(reservation, cost_usd),
                );
            }
            Err(CompleteError::Interrupted {
                kind,
                interruption: Box::new(
                    Interruption::new(
                        summary,
                        partial,
                        cost_usd,
                        request_id.to_string(),
                        call.attempts,
                    )
                    .with_usage(usage)
                    .with_stream(stream),
                ),
            })
        }
        Err(Ended::Unusable {
            kind,
            summary,
            response,
        }) => {
            // The refused or truncated answer is in `charged` already.
            let invalid = None;
            let unusable = Unusable {
                kind,
                summary,
                raw_text: response.text,
                refusal: response.refusal,
                invalid,
            };
            Err(unusable.into_error(options, request, reservation, &mut call))
        }
        Err(Ended::Failed {
            deadline: deadline_reached,
        }) => {
            let cancelled = crate::client::cancel::is_cancelled();
            match call.last_invalid.take() {
                // The walk ended on invalid answers (not on the deadline or a cancel): the
                // call failed with them.
                Some((invalid, raw_text)) if !deadline_reached && !cancelled => {
                    let unusable = Unusable {
                        kind: crate::ErrorKind::InvalidOutput,
                        summary: invalid_summary(&call.attempts),
                        raw_text,
                        refusal: None,
                        invalid: Some(invalid),
                    };
                    Err(unusable.into_error(options, request, reservation, &mut call))
                }
                _ => {
                    if let Some(reservation) = reservation {
                        // Invalid answers before the deadline or the cancel were still paid for.
                        if call.charged.cost_usd > 0.0 {
                            let alerts = runtime.budgets.settle(reservation, call.charged.cost_usd);
                            emit_alerts(options, request_id, alerts);
                        } else {
                            runtime.budgets.release(reservation);
                        }
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
    }
}

/// An answer the call could not use, before its cost is settled.
struct Unusable {
    kind: crate::ErrorKind,
    summary: String,
    raw_text: String,
    refusal: Option<String>,
    invalid: Option<crate::output::InvalidOutput>,
}

impl Unusable {
    /// Settles what the call's answers cost (and streams voided by a restart) and makes the
    /// error carrying it.
    fn into_error(
        self,
        options: &ClientOptions,
        request: &CallRequest<'_>,
        reservation: Option<Reservation>,
        call: &mut Call<'_>,
    ) -> CompleteError {
        let mut usage = call.charged.usage;
        let mut cost_usd = call.charged.cost_usd;
        for (model, text) in &call.voided {
            let voided = partial_cost(call.providers, model, request, text);
            cost_usd += voided.cost_usd;
            add_usage(&mut usage, &voided.usage);
        }
        if let Some(reservation) = reservation {
            let alerts = call.runtime.budgets.settle(reservation, cost_usd);
            emit_alerts(options, request.request_id, alerts);
        }
        CompleteError::Unusable {
            kind: self.kind,
            answer: Box::new(UnusableAnswer {
                summary: self.summary,
                raw_text: self.raw_text,
                invalid: self.invalid,
                refusal: self.refusal,
                cost_usd,
                usage,
                request_id: request.request_id.to_string(),
                attempts: std::mem::take(&mut call.attempts),
            }),
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
