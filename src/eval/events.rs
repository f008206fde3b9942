//! The telemetry of an evaluation: one `eval.case` event per case and version, one `eval.run`
//! event per run, written to the engine's telemetry file.

use crate::Engine;

use super::EvalReport;

/// Writes the report's events.
pub(crate) fn record(_engine: &Engine, _report: &EvalReport) {
    // Replaced by the telemetry work (issue 14, helper H3).
}
