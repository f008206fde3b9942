//! The report of an evaluation: for each version, each case with its runs (one per repeat) and
//! their graded assertions, the case's pass rate over the repeats against the rate it needs,
//! and the version's figures (pass rate, mean score, cost, latency percentiles, invalid-output
//! rate); then each later version compared with the first. It serializes to the JSON that
//! `prompt-config eval --json`, the C ABI and the gem give.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use crate::ErrorKind;
pub use crate::telemetry::stats::LatencyPercentiles;

use super::GradeOutcome;

/// Everything an evaluation found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EvalReport {
    /// This run's id (`eval-` and 16 hex digits), also on its telemetry events.
    pub run_id: String,
    /// The feature evaluated.
    pub feature: String,
    /// The dataset's name.
    pub dataset: String,
    /// When the run started, RFC 3339 UTC.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// Wall time of the whole run in ms.
    pub duration_ms: f64,
    /// Runs per case and version.
    pub repeat: u32,
    /// Runs in flight at once.
    pub concurrency: usize,
    /// The model that replaced each version's chain (`provider/name`), if any.
    pub model: Option<String>,
    /// Whether the providers were the offline mock (judge verdicts are then skipped).
    pub mock: bool,
    /// The share of cases a version must pass.
    pub min_pass_rate: f64,
    /// One report per version, in the order asked.
    pub versions: Vec<VersionReport>,
    /// Each version after the first compared with the first.
    pub comparisons: Vec<Comparison>,
    /// True when every version met its thresholds: the exit code 0 of `prompt-config eval`.
    pub passed: bool,
}

fn rfc3339<S: Serializer>(timestamp: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// One version's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct VersionReport {
    /// The version.
    pub version: String,
    /// Each case, in dataset order.
    pub cases: Vec<CaseReport>,
    /// Cases run.
    pub cases_total: usize,
    /// Cases that reached their pass rate.
    pub cases_passed: usize,
    /// `cases_passed / cases_total`.
    pub pass_rate: f64,
    /// The mean of the runs' weighted scores (runs without a graded assertion left out).
    pub mean_score: Option<f64>,
    /// What the feature's calls cost, USD.
    pub cost_usd: f64,
    /// What the judge's calls cost, USD.
    pub judge_cost_usd: f64,
    /// Latency percentiles of the feature's calls, ms (failed calls included).
    pub latency_ms: LatencyPercentiles,
    /// The share of runs whose first answer broke the output schema (repaired or not).
    pub invalid_output_rate: f64,
    /// Runs whose call failed.
    pub errors: usize,
    /// Assertion grades that were skipped (mock judge verdicts).
    pub skipped_assertions: usize,
    /// Whether `pass_rate` reached the run's `min_pass_rate`.
    pub passed: bool,
}

/// One case on one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CaseReport {
    /// The case id.
    pub id: String,
    /// The case's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The case's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Where the case was read (`file:line`), empty for a case built in code.
    pub location: String,
    /// Whether an assertion applying to this version is a judge.
    pub judged: bool,
    /// One run per repeat.
    pub runs: Vec<RunResult>,
    /// Runs that passed.
    pub passes: u32,
    /// `passes / runs`.
    pub pass_rate: f64,
    /// The pass rate the case needs.
    pub required_pass_rate: f64,
    /// The case's own `threshold` (0..=1), if it set one: a run then passes when its weighted
    /// score reaches it, instead of when no assertion of non-zero weight fails.
    pub threshold: Option<f64>,
    /// The mean of the runs' scores.
    pub mean_score: Option<f64>,
    /// Whether `pass_rate` reached `required_pass_rate`.
    pub passed: bool,
}

/// One run of a case (one repeat).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RunResult {
    /// 1-based repeat number.
    pub repeat: u32,
    /// The feature call's request id (in the telemetry log), when the call resolved.
    pub request_id: Option<String>,
    /// Whether the run passed.
    pub passed: bool,
    /// The weighted mean score of the graded assertions (0..=1); `None` when none was graded.
    pub score: Option<f64>,
    /// The feature call's wall time, ms.
    pub latency_ms: f64,
    /// The feature call's cost, USD.
    pub cost_usd: f64,
    /// The judge calls' cost, USD.
    pub judge_cost_usd: f64,
    /// Output tokens of the answer.
    pub output_tokens: u64,
    /// The shared name of the finish reason.
    pub finish_reason: Option<String>,
    /// Repairs the answer needed.
    pub repairs: u32,
    /// Whether the first answer broke the output schema (repaired, or the call failed with
    /// `invalid_output`).
    pub invalid_output: bool,
    /// Why the call failed, if it did.
    pub error: Option<RunError>,
    /// The answer text (reports stay on the machine that ran them; telemetry carries it only
    /// under the feature's `record_text`).
    pub output: Option<String>,
    /// Each assertion that applies to the version, graded.
    pub assertions: Vec<AssertionResult>,
}

/// A failed call, as a run records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunError {
    /// The error kind.
    pub kind: ErrorKind,
    /// Its message.
    pub message: String,
}

/// One graded assertion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssertionResult {
    /// The assertion's index in the case (`/assertions/<index>` in the dataset).
    pub index: usize,
    /// Its kind's dataset name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Pass, fail or skipped.
    pub outcome: GradeOutcome,
    /// 0..=1.
    pub score: f64,
    /// Its weight.
    pub weight: f64,
    /// Why.
    pub reason: String,
}

/// A later version against the first, case by case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Comparison {
    /// The first version asked for.
    pub baseline: String,
    /// The version compared with it.
    pub candidate: String,
    /// The baseline's case pass rate.
    pub baseline_pass_rate: f64,
    /// The candidate's case pass rate.
    pub candidate_pass_rate: f64,
    /// `candidate_pass_rate - baseline_pass_rate`.
    pub difference: f64,
    /// Cases both passed.
    pub both_passed: usize,
    /// Cases only the baseline passed (McNemar's b).
    pub baseline_only: usize,
    /// Cases only the candidate passed (McNemar's c).
    pub candidate_only: usize,
    /// Cases neither passed.
    pub neither: usize,
    /// McNemar's two-sided p-value on the discordant cases (1 when there are none).
    pub p_value: f64,
    /// The plain verdict at alpha 0.05.
    pub verdict: ComparisonVerdict,
    /// One sentence for a person.
    pub summary: String,
}

/// What a comparison concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonVerdict {
    /// The candidate passes significantly more cases.
    Better,
    /// The candidate passes significantly fewer cases.
    Worse,
    /// The difference could be chance.
    NoSignificantDifference,
}

impl EvalReport {
    /// Every version's failing cases, as `version/case`.
    pub fn failed_cases(&self) -> Vec<String> {
        self.versions
            .iter()
            .flat_map(|version| {
                version
                    .cases
                    .iter()
                    .filter(|case| !case.passed)
                    .map(move |case| format!("{}/{}", version.version, case.id))
            })
            .collect()
    }

    /// The report as pretty JSON (what `--json` prints).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|error| {
            // Serializing plain owned data cannot fail; if it ever did, say so as JSON.
            serde_json::json!({ "error": error.to_string() }).to_string()
        })
    }
}
