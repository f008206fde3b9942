//! Evaluation of prompt versions: datasets of cases (a context and assertions), runs of every
//! case against pinned versions (repeated, with bounded concurrency, through the engine's own
//! `complete()`, so budgets, the deadline, failover and telemetry all apply), grading (plain
//! assertions, and a judge model answering through the structured-output path), and the report:
//! per-case pass rates over the repeats, per-version figures, and a paired comparison of
//! versions (McNemar on the cases, from the statistics code of `stats`).
//!
//! This layer sits above the engine and uses only its public calls; it never reaches into the
//! client. [`Engine::evaluate`](crate::Engine::evaluate) is defined here.

pub mod assertion;
mod compare;
pub mod dataset;
mod events;
mod from_telemetry;
mod gate;
mod judge;
mod junit;
pub mod report;
mod run;
#[cfg(test)]
mod test_reports;

pub use assertion::{Assertion, AssertionKind, Grade, GradeOutcome, JsonPathMatch, Observation};
pub use dataset::{Case, Dataset};
pub use from_telemetry::{
    FromTelemetryOptions, FromTelemetrySummary, TelemetryCases, cases_from_telemetry,
};
pub use report::{
    AssertionResult, CaseReport, Comparison, ComparisonVerdict, EvalReport, LatencyPercentiles,
    RunResult, VersionReport,
};
pub use run::{EvalOptions, Progress};

/// The pass rate a case needs over its repeats when it has no judge assertion and neither the
/// case nor the options set one: every repeat must pass (deterministic assertions).
pub const DEFAULT_CASE_PASS_RATE: f64 = 1.0;

/// The pass rate a case with a judge assertion needs when neither the case nor the options set
/// one: a judge model's verdicts are noisy, so 4 repeats in 5.
pub const DEFAULT_JUDGED_CASE_PASS_RATE: f64 = 0.8;

/// The feature a `judge` assertion asks when it names none: the shipped
/// `config/features/eval_judge.json` with its versioned prompts under `prompts/eval_judge/`.
pub const DEFAULT_JUDGE_FEATURE: &str = "eval_judge";
