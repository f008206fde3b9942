//! The event sink: how the client reports what happened (requests, attempts, breaker
//! transitions, budget alerts) to whoever listens, the telemetry writer above all. Emitting must
//! be cheap and must never fail the call that emits.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::breaker::BreakerState;
use super::outcome::Attempt;
use crate::resolve::TraceContext;

/// Receives client events. Implementations must not block for long: they run on the caller's
/// thread.
pub trait EventSink: Send + Sync {
    /// Handles one event of the request `request_id`.
    fn emit(&self, request_id: &str, event: &ClientEvent);

    /// Handles one attempt of the request `request_id` as it ends (succeeded, failed or was
    /// skipped), before the call returns, so each carries its own start time. Ignored unless
    /// overridden: the attempts also come back with the call's result.
    fn attempt_ended(&self, request_id: &str, ended: &AttemptEnded<'_>) {
        let _ = (request_id, ended);
    }
}

/// A sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _request_id: &str, _event: &ClientEvent) {}
}

/// Something the client reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event")]
#[non_exhaustive]
pub enum ClientEvent {
    /// A circuit breaker changed state.
    #[serde(rename = "circuit.transition")]
    CircuitTransition(CircuitTransition),
    /// A budget crossed a threshold.
    #[serde(rename = "budget.alert")]
    BudgetAlert(BudgetAlert),
}

/// One attempt of a `complete()` call, reported when it ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptEnded<'a> {
    /// The feature called.
    pub feature: &'a str,
    /// The prompt version called.
    pub version: &'a str,
    /// When the attempt started (for a skip, when it was skipped), from the engine's clock.
    pub started_at: DateTime<Utc>,
    /// The attempt; its `latency_ms` is its duration on the same clock.
    pub attempt: &'a Attempt,
    /// The trace of the call, when it has one ([`crate::client`]'s `CallRequest::trace`).
    pub trace: Option<&'a TraceContext>,
}

/// A breaker's change of state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitTransition {
    /// The breaker's name: the provider, or `provider/model` for per-model breakers.
    pub breaker: String,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why (`failure_rate`, `consecutive_failures`, `misconfigured`, `rate_limited`, `probe_succeeded`, `probe_failed`, `open_timeout_elapsed`);
    /// with the Redis backend also `fleet_open` (another process published that the breaker is
    /// open; the local breaker itself stays closed) and `fleet_closed` (the fleet's probe
    /// succeeded).
    pub reason: String,
    /// How long it stays open, in milliseconds, when it opened.
    pub open_for_ms: Option<u64>,
}

/// A budget threshold crossed for the first time in its period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetAlert {
    /// `overall` or `feature:<name>`.
    pub scope: String,
    /// `day` or `month`.
    pub period: String,
    /// The period's label: `2026-11-27` or `2026-11`.
    pub period_start: String,
    /// The threshold crossed, in percent (80, 90, 95, 100).
    pub threshold_percent: u32,
    /// Spend so far in the period, settled plus reserved, in USD.
    pub spent_usd: f64,
    /// The period's limit in USD.
    pub limit_usd: f64,
    /// The policy that applies at 100% (`block`, `downgrade`, `allow`).
    pub policy: String,
}
