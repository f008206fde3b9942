//! Placeholder, being written.

use serde::Serialize;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// No traffic except probes after the open time.
    Open,
    /// A limited number of probes are let through.
    HalfOpen,
}
