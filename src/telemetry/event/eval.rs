//! The fields of the two events an evaluation writes (issue 14): `eval.case`, one per case and
//! version, and `eval.run`, one per version of a run. They carry ids, counts, rates and money,
//! never a prompt or an answer (a case is named by its id; its runs' `llm.request` lines, joined
//! by `prompt_config.eval.request_ids`, carry text only under the feature's `record_text`).
//! Costs are under `prompt_config.eval.*`, not `prompt_config.cost_usd`, so a dashboard summing
//! the cost of every line does not count the runs' calls twice (their `llm.request` lines
//! already carry it). Written by the `Serialize` impls (these lines are rare).

use serde::Serialize;

/// `eval.case` fields: one case of a dataset on one version, over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalCaseFields {
    /// The evaluation run (`eval-` and 16 hex digits), shared by all its lines.
    #[serde(rename = "prompt_config.eval.run_id")]
    pub run_id: String,
    /// The feature evaluated.
    #[serde(rename = "gen_ai.prompt.name")]
    pub feature: String,
    /// The version the case ran on (pinned).
    #[serde(rename = "gen_ai.prompt.version")]
    pub version: String,
    /// The dataset's name.
    #[serde(rename = "prompt_config.eval.dataset")]
    pub dataset: String,
    /// The case's id in the dataset.
    #[serde(rename = "prompt_config.eval.case_id")]
    pub case_id: String,
    /// Runs of the case (the evaluation's repeat count).
    #[serde(rename = "prompt_config.eval.repeats")]
    pub repeats: u32,
    /// Runs that passed.
    #[serde(rename = "prompt_config.eval.passes")]
    pub passes: u32,
    /// `passes / repeats`, 0..=1.
    #[serde(rename = "prompt_config.eval.pass_rate")]
    pub pass_rate: f64,
    /// The pass rate the case needed, 0..=1.
    #[serde(rename = "prompt_config.eval.required_pass_rate")]
    pub required_pass_rate: f64,
    /// Whether `pass_rate` reached `required_pass_rate`.
    #[serde(rename = "prompt_config.eval.passed")]
    pub passed: bool,
    /// Whether a judge model graded the case.
    #[serde(rename = "prompt_config.eval.judged")]
    pub judged: bool,
    /// The mean of the runs' weighted scores (0..=1); absent when no assertion was graded.
    #[serde(
        rename = "prompt_config.eval.mean_score",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_score: Option<f64>,
    /// Runs whose call failed.
    #[serde(rename = "prompt_config.eval.errors")]
    pub errors: u32,
    /// What the feature's calls of the case cost, USD.
    #[serde(rename = "prompt_config.eval.cost_usd")]
    pub cost_usd: f64,
    /// What the judge's calls of the case cost, USD.
    #[serde(rename = "prompt_config.eval.judge_cost_usd")]
    pub judge_cost_usd: f64,
    /// The `request_id` of each run's `llm.request` line, in repeat order (runs whose call
    /// failed before resolving have none).
    #[serde(rename = "prompt_config.eval.request_ids")]
    pub request_ids: Vec<String>,
}

/// `eval.run` fields: one version's results in one evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRunFields {
    /// The evaluation run, shared with its `eval.case` lines.
    #[serde(rename = "prompt_config.eval.run_id")]
    pub run_id: String,
    /// The feature evaluated.
    #[serde(rename = "gen_ai.prompt.name")]
    pub feature: String,
    /// The version.
    #[serde(rename = "gen_ai.prompt.version")]
    pub version: String,
    /// The dataset's name.
    #[serde(rename = "prompt_config.eval.dataset")]
    pub dataset: String,
    /// The primary model's provider: the `--model` override's, or the version's own.
    #[serde(
        rename = "gen_ai.provider.name",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider: Option<String>,
    /// The primary model: the `--model` override, or the version's own (fallbacks may have
    /// answered some runs; their `llm.request` lines say which).
    #[serde(
        rename = "gen_ai.request.model",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<String>,
    /// Whether `--model` replaced the version's chain.
    #[serde(rename = "prompt_config.eval.model_override")]
    pub model_override: bool,
    /// Whether the providers were the offline mock.
    #[serde(rename = "prompt_config.eval.mock")]
    pub mock: bool,
    /// Runs per case.
    #[serde(rename = "prompt_config.eval.repeat")]
    pub repeat: u32,
    /// Runs in flight at once.
    #[serde(rename = "prompt_config.eval.concurrency")]
    pub concurrency: usize,
    /// Wall time of the whole evaluation run (every version), ms.
    #[serde(rename = "prompt_config.eval.duration_ms")]
    pub duration_ms: f64,
    /// Cases run.
    #[serde(rename = "prompt_config.eval.cases_total")]
    pub cases_total: usize,
    /// Cases that reached their pass rate.
    #[serde(rename = "prompt_config.eval.cases_passed")]
    pub cases_passed: usize,
    /// `cases_passed / cases_total`, 0..=1.
    #[serde(rename = "prompt_config.eval.pass_rate")]
    pub pass_rate: f64,
    /// The share of cases the version had to pass, 0..=1.
    #[serde(rename = "prompt_config.eval.min_pass_rate")]
    pub min_pass_rate: f64,
    /// Whether `pass_rate` reached `min_pass_rate`.
    #[serde(rename = "prompt_config.eval.passed")]
    pub passed: bool,
    /// The mean of the runs' weighted scores (0..=1); absent when nothing was graded.
    #[serde(
        rename = "prompt_config.eval.mean_score",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_score: Option<f64>,
    /// What the feature's calls cost, USD.
    #[serde(rename = "prompt_config.eval.cost_usd")]
    pub cost_usd: f64,
    /// What the judge's calls cost, USD.
    #[serde(rename = "prompt_config.eval.judge_cost_usd")]
    pub judge_cost_usd: f64,
    /// Median latency of the feature's calls, ms.
    #[serde(rename = "prompt_config.eval.latency_p50_ms")]
    pub latency_p50_ms: f64,
    /// 95th-percentile latency of the feature's calls, ms.
    #[serde(rename = "prompt_config.eval.latency_p95_ms")]
    pub latency_p95_ms: f64,
    /// The share of runs whose first answer broke the output schema, 0..=1.
    #[serde(rename = "prompt_config.eval.invalid_output_rate")]
    pub invalid_output_rate: f64,
    /// Runs whose call failed.
    #[serde(rename = "prompt_config.eval.errors")]
    pub errors: usize,
    /// Assertion grades skipped (judge verdicts on the mock).
    #[serde(rename = "prompt_config.eval.skipped_assertions")]
    pub skipped_assertions: usize,
    /// For every version but the first: how it compares with the first.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<EvalComparisonFields>,
}

/// The comparison fields of an `eval.run` line of a version after the first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalComparisonFields {
    /// The version compared with (the first of the run).
    #[serde(rename = "prompt_config.eval.baseline_version")]
    pub baseline_version: String,
    /// This version's pass rate minus the baseline's.
    #[serde(rename = "prompt_config.eval.pass_rate_difference")]
    pub pass_rate_difference: f64,
    /// Cases only the baseline passed (McNemar's b).
    #[serde(rename = "prompt_config.eval.baseline_only")]
    pub baseline_only: usize,
    /// Cases only this version passed (McNemar's c).
    #[serde(rename = "prompt_config.eval.candidate_only")]
    pub candidate_only: usize,
    /// McNemar's two-sided p-value.
    #[serde(rename = "prompt_config.eval.p_value")]
    pub p_value: f64,
    /// `better`, `worse` or `no_significant_difference` (at alpha 0.05).
    #[serde(rename = "prompt_config.eval.verdict")]
    pub verdict: &'static str,
}
