//! Evaluations in `stats`: the `eval.run` lines an evaluation writes (one per version of a run,
//! issue 14), reported as the latest run of each feature and version with its pass rate, cases,
//! cost and verdict against the run's baseline, and how many runs of it the files hold. These
//! lines are not requests: they never enter the request groups, experiments or figures, and
//! neither do the runs' own `llm.request` lines, which carry `prompt_config.eval.run_id`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::read::Selection;

/// One `eval.run` line as read: the stats of that one run (`runs` 1), which `summarize` keeps
/// when it is the latest of its feature and version.
pub(super) type EvalRunLine = EvaluationStats;

impl EvalRunLine {
    /// The run of an `eval.run` line; `None` (a line with no figure, not a skipped one) without
    /// a run id, feature, version or case counts.
    pub(super) fn read(
        fields: &Map<String, Value>,
        timestamp: DateTime<Utc>,
    ) -> Option<EvalRunLine> {
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        let number = |name: &str| fields.get(name).and_then(Value::as_f64);
        let count = |name: &str| fields.get(name).and_then(Value::as_u64);
        let cases_total = count("prompt_config.eval.cases_total")?;
        let cases_passed = count("prompt_config.eval.cases_passed")?;
        let pass_rate = number("prompt_config.eval.pass_rate").unwrap_or(if cases_total == 0 {
            0.0
        } else {
            cases_passed as f64 / cases_total as f64
        });
        let min_pass_rate = number("prompt_config.eval.min_pass_rate").unwrap_or(1.0);
        Some(EvalRunLine {
            runs: 1,
            at: timestamp,
            run_id: text("prompt_config.eval.run_id")?,
            feature: text("gen_ai.prompt.name")?,
            version: text("gen_ai.prompt.version")?,
            dataset: text("prompt_config.eval.dataset").unwrap_or_else(|| "-".to_string()),
            model: text("gen_ai.request.model"),
            mock: fields.get("prompt_config.eval.mock") == Some(&Value::Bool(true)),
            repeat: count("prompt_config.eval.repeat").unwrap_or(1),
            cases_total,
            cases_passed,
            pass_rate,
            min_pass_rate,
            passed: fields
                .get("prompt_config.eval.passed")
                .and_then(Value::as_bool)
                .unwrap_or(pass_rate + 1e-9 >= min_pass_rate),
            mean_score: number("prompt_config.eval.mean_score"),
            cost_usd: number("prompt_config.eval.cost_usd").unwrap_or(0.0)
                + number("prompt_config.eval.judge_cost_usd").unwrap_or(0.0),
            latency_p50_ms: number("prompt_config.eval.latency_p50_ms"),
            latency_p95_ms: number("prompt_config.eval.latency_p95_ms"),
            errors: count("prompt_config.eval.errors").unwrap_or(0),
            baseline_version: text("prompt_config.eval.baseline_version"),
            p_value: number("prompt_config.eval.p_value"),
            verdict: text("prompt_config.eval.verdict"),
        })
    }
}

/// The latest evaluation of one feature and version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationStats {
    /// The feature (`gen_ai.prompt.name`).
    pub feature: String,
    /// The version.
    pub version: String,
    /// `eval.run` lines of this feature and version in the files (from `--since` on).
    pub runs: u64,
    /// The latest run's id (`prompt_config.eval.run_id`).
    pub run_id: String,
    /// When the latest run ended, RFC 3339 UTC.
    pub at: DateTime<Utc>,
    /// Its dataset.
    pub dataset: String,
    /// The primary model it asked (`gen_ai.request.model`), when the line names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Whether it ran on the offline mock.
    pub mock: bool,
    /// Runs per case.
    pub repeat: u64,
    /// Cases run.
    pub cases_total: u64,
    /// Cases that reached their pass rate.
    pub cases_passed: u64,
    /// `cases_passed / cases_total`, 0..=1.
    pub pass_rate: f64,
    /// The share of cases it needed, 0..=1.
    pub min_pass_rate: f64,
    /// Whether it met `min_pass_rate`.
    pub passed: bool,
    /// The mean of its runs' scores, 0..=1.
    pub mean_score: Option<f64>,
    /// What the run cost, feature and judge calls together, USD.
    pub cost_usd: f64,
    /// Median latency of its calls, ms.
    pub latency_p50_ms: Option<f64>,
    /// 95th-percentile latency of its calls, ms.
    pub latency_p95_ms: Option<f64>,
    /// Runs whose call failed.
    pub errors: u64,
    /// The version it was compared with (the run's first), when it was not the first.
    pub baseline_version: Option<String>,
    /// McNemar's p-value against the baseline.
    pub p_value: Option<f64>,
    /// `better`, `worse` or `no_significant_difference` against the baseline.
    pub verdict: Option<String>,
}

/// One [`EvaluationStats`] per feature and version with an `eval.run` line, sorted by feature
/// and version; the latest line wins (by timestamp, then by position in the files).
pub(super) fn summarize(selection: &Selection) -> Vec<EvaluationStats> {
    let mut latest: BTreeMap<(&str, &str), (u64, &EvalRunLine)> = BTreeMap::new();
    for line in &selection.evaluations {
        latest
            .entry((line.feature.as_str(), line.version.as_str()))
            .and_modify(|(runs, kept)| {
                *runs += 1;
                if line.at >= kept.at {
                    *kept = line;
                }
            })
            .or_insert((1, line));
    }
    latest
        .into_values()
        .map(|(runs, line)| EvaluationStats {
            runs,
            ..line.clone()
        })
        .collect()
}

/// The evaluations table of the text report.
pub(super) fn table(evaluations: &[EvaluationStats]) -> super::text::Table {
    let header = [
        "feature", "version", "dataset", "runs", "cases", "passed", "pass%", "needed", "result",
        "score", "$ total", "p50 ms", "vs", "p", "verdict", "last run",
    ];
    let right = header
        .iter()
        .map(|name| {
            matches!(
                *name,
                "runs" | "cases" | "passed" | "pass%" | "needed" | "score" | "$ total" | "p50 ms"
            )
        })
        .collect();
    let mut table = super::text::Table::new(header.map(str::to_string).to_vec(), right);
    let missing = || "-".to_string();
    for evaluation in evaluations {
        table.push(vec![
            evaluation.feature.clone(),
            evaluation.version.clone(),
            evaluation.dataset.clone(),
            evaluation.runs.to_string(),
            evaluation.cases_total.to_string(),
            evaluation.cases_passed.to_string(),
            super::text::percent(evaluation.pass_rate),
            super::text::percent(evaluation.min_pass_rate),
            if evaluation.passed { "pass" } else { "FAIL" }.to_string(),
            evaluation
                .mean_score
                .map_or_else(missing, |score| format!("{score:.2}")),
            format!("{:.6}", evaluation.cost_usd),
            evaluation
                .latency_p50_ms
                .map_or_else(missing, super::text::quantity),
            evaluation.baseline_version.clone().unwrap_or_else(missing),
            evaluation
                .p_value
                .map_or_else(missing, super::text::format_p),
            evaluation
                .verdict
                .as_deref()
                .map_or_else(missing, |verdict| verdict.replace('_', " ")),
            format!(
                "{}{}",
                evaluation.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                if evaluation.mock { " (mock)" } else { "" }
            ),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, minute, 0).unwrap()
    }

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    fn line(run_id: &str, version: &str, minute: u32, cases_passed: u64) -> EvalRunLine {
        EvalRunLine::read(
            &fields(json!({
                "prompt_config.eval.run_id": run_id,
                "gen_ai.prompt.name": "career_path_navigator",
                "gen_ai.prompt.version": version,
                "prompt_config.eval.cases_total": 4,
                "prompt_config.eval.cases_passed": cases_passed,
            })),
            at(minute),
        )
        .expect("a readable line")
    }

    #[test]
    fn a_line_without_rates_derives_them_from_the_counts() {
        let run = line("eval-1", "2.0.0", 0, 3);
        assert_eq!(run.pass_rate, 0.75);
        assert_eq!(run.min_pass_rate, 1.0);
        assert!(!run.passed);
        assert_eq!(run.dataset, "-");
        assert_eq!(run.repeat, 1);
    }

    #[test]
    fn a_line_without_run_id_feature_version_or_counts_is_no_figure() {
        let complete = json!({
            "prompt_config.eval.run_id": "eval-1",
            "gen_ai.prompt.name": "f",
            "gen_ai.prompt.version": "1.0.0",
            "prompt_config.eval.cases_total": 1,
            "prompt_config.eval.cases_passed": 1,
        });
        assert!(EvalRunLine::read(&fields(complete.clone()), at(0)).is_some());
        for missing in [
            "prompt_config.eval.run_id",
            "gen_ai.prompt.name",
            "gen_ai.prompt.version",
            "prompt_config.eval.cases_total",
            "prompt_config.eval.cases_passed",
        ] {
            let mut partial = fields(complete.clone());
            partial.remove(missing);
            assert!(EvalRunLine::read(&partial, at(0)).is_none(), "{missing}");
        }
        let mut empty_version = fields(complete);
        empty_version.insert("gen_ai.prompt.version".into(), json!(""));
        assert!(EvalRunLine::read(&empty_version, at(0)).is_none());
    }

    #[test]
    fn the_latest_run_of_a_version_wins_and_every_run_is_counted() {
        let selection = Selection {
            evaluations: vec![
                line("eval-late", "2.0.0", 30, 4),
                line("eval-early", "2.0.0", 10, 1),
                line("eval-other", "2.1.0", 10, 2),
            ],
            ..Selection::default()
        };
        let evaluations = summarize(&selection);
        let versions: Vec<(&str, u64, &str)> = evaluations
            .iter()
            .map(|stats| (stats.version.as_str(), stats.runs, stats.run_id.as_str()))
            .collect();
        assert_eq!(
            versions,
            [("2.0.0", 2, "eval-late"), ("2.1.0", 1, "eval-other")]
        );
        assert_eq!(evaluations[0].cases_passed, 4);
    }

    #[test]
    fn of_two_runs_at_the_same_instant_the_one_read_last_wins() {
        let selection = Selection {
            evaluations: vec![line("eval-a", "2.0.0", 5, 1), line("eval-b", "2.0.0", 5, 2)],
            ..Selection::default()
        };
        assert_eq!(summarize(&selection)[0].run_id, "eval-b");
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|number| json!(number)),
            any::<u64>().prop_map(|number| json!(number)),
            (-1.0e300..1.0e300f64).prop_map(|number| json!(number)),
            ".*".prop_map(Value::String),
            Just(json!([])),
            Just(json!({})),
        ]
    }

    proptest! {
        /// Whatever a line holds under the fields `stats` reads, reading it never panics, and
        /// a line it keeps names a run, a feature and a version.
        #[test]
        fn reading_any_values_never_panics(values in proptest::collection::vec(any_value(), 12)) {
            let names = [
                "prompt_config.eval.run_id", "gen_ai.prompt.name", "gen_ai.prompt.version",
                "prompt_config.eval.cases_total", "prompt_config.eval.cases_passed",
                "prompt_config.eval.pass_rate", "prompt_config.eval.min_pass_rate",
                "prompt_config.eval.passed", "prompt_config.eval.cost_usd",
                "prompt_config.eval.p_value", "prompt_config.eval.verdict",
                "prompt_config.eval.dataset",
            ];
            let line: Map<String, Value> = names
                .iter()
                .map(|name| name.to_string())
                .zip(values)
                .collect();
            if let Some(run) = EvalRunLine::read(&line, at(0)) {
                prop_assert!(!run.run_id.is_empty() && !run.feature.is_empty() && !run.version.is_empty());
                let selection = Selection { evaluations: vec![run], ..Selection::default() };
                let evaluations = summarize(&selection);
                prop_assert_eq!(evaluations.len(), 1);
                let _ = table(&evaluations);
            }
        }
    }
}
