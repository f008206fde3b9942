//! The telemetry of an evaluation: one `eval.case` event per case and version, one `eval.run`
//! event per version of the run (with, after the first version, its comparison with the
//! first), queued on the engine's telemetry writer when a file is configured, so `stats` and
//! dashboards see evaluations beside the requests they made. The lines carry case ids, counts,
//! rates and money, never an answer: the runs' own `llm.request` lines (joined by request id)
//! carry text only under the feature's `record_text`.

use crate::Engine;
use crate::telemetry::event::{EvalCaseFields, EvalComparisonFields, EvalRunFields};

use super::EvalReport;
use super::report::{CaseReport, Comparison, ComparisonVerdict, VersionReport};

/// Writes the report's events (nothing without a telemetry file).
pub(crate) fn record(engine: &Engine, report: &EvalReport) {
    engine.record_evaluation(|| (case_fields(report), run_fields(engine, report)));
}

/// One `eval.case` per case of each version, versions in the order run.
fn case_fields(report: &EvalReport) -> Vec<EvalCaseFields> {
    report
        .versions
        .iter()
        .flat_map(|version| {
            version
                .cases
                .iter()
                .map(move |case| case_line(report, version, case))
        })
        .collect()
}

fn case_line(report: &EvalReport, version: &VersionReport, case: &CaseReport) -> EvalCaseFields {
    EvalCaseFields {
        run_id: report.run_id.clone(),
        feature: report.feature.clone(),
        version: version.version.clone(),
        dataset: report.dataset.clone(),
        case_id: case.id.clone(),
        repeats: case.runs.len() as u32,
        passes: case.passes,
        pass_rate: case.pass_rate,
        required_pass_rate: case.required_pass_rate,
        passed: case.passed,
        judged: case.judged,
        mean_score: case.mean_score,
        errors: case.runs.iter().filter(|run| run.error.is_some()).count() as u32,
        cost_usd: case.runs.iter().map(|run| run.cost_usd).sum(),
        judge_cost_usd: case.runs.iter().map(|run| run.judge_cost_usd).sum(),
        request_ids: case
            .runs
            .iter()
            .filter_map(|run| run.request_id.clone())
            .collect(),
    }
}

/// One `eval.run` per version, the versions after the first with their comparison.
fn run_fields(engine: &Engine, report: &EvalReport) -> Vec<EvalRunFields> {
    report
        .versions
        .iter()
        .map(|version| {
            let comparison = report
                .comparisons
                .iter()
                .find(|comparison| comparison.candidate == version.version)
                .map(comparison_fields);
            let (provider, model) = primary_model(engine, report, &version.version);
            EvalRunFields {
                run_id: report.run_id.clone(),
                feature: report.feature.clone(),
                version: version.version.clone(),
                dataset: report.dataset.clone(),
                provider,
                model,
                model_override: report.model.is_some(),
                mock: report.mock,
                repeat: report.repeat,
                concurrency: report.concurrency,
                duration_ms: report.duration_ms,
                cases_total: version.cases_total,
                cases_passed: version.cases_passed,
                pass_rate: version.pass_rate,
                min_pass_rate: report.min_pass_rate,
                passed: version.passed,
                mean_score: version.mean_score,
                cost_usd: version.cost_usd,
                judge_cost_usd: version.judge_cost_usd,
                latency_p50_ms: version.latency_ms.p50,
                latency_p95_ms: version.latency_ms.p95,
                invalid_output_rate: version.invalid_output_rate,
                errors: version.errors,
                skipped_assertions: version.skipped_assertions,
                comparison,
            }
        })
        .collect()
}

fn comparison_fields(comparison: &Comparison) -> EvalComparisonFields {
    EvalComparisonFields {
        baseline_version: comparison.baseline.clone(),
        pass_rate_difference: comparison.difference,
        baseline_only: comparison.baseline_only,
        candidate_only: comparison.candidate_only,
        p_value: comparison.p_value,
        verdict: verdict_name(comparison.verdict),
    }
}

/// The verdict's wire name, as the report's JSON spells it.
fn verdict_name(verdict: ComparisonVerdict) -> &'static str {
    match verdict {
        ComparisonVerdict::Better => "better",
        ComparisonVerdict::Worse => "worse",
        ComparisonVerdict::NoSignificantDifference => "no_significant_difference",
    }
}

/// The provider and model the version's runs asked first: the override, or the version's own
/// primary model in the current snapshot (`None` if a reload removed the version meanwhile).
fn primary_model(
    engine: &Engine,
    report: &EvalReport,
    version: &str,
) -> (Option<String>, Option<String>) {
    if let Some((provider, name)) = report
        .model
        .as_deref()
        .and_then(|model| model.split_once('/'))
    {
        return (Some(provider.to_string()), Some(name.to_string()));
    }
    let snapshot = engine.snapshot();
    snapshot
        .features
        .get(&report.feature)
        .and_then(|feature| feature.pinnable.get(version))
        .map_or((None, None), |route| {
            (
                Some(route.chain.model.provider.clone()),
                Some(route.chain.model.name.clone()),
            )
        })
}
