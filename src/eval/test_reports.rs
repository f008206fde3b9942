//! Reports built in code for the unit tests of what reads them (JUnit, the release gate):
//! one version, 2.0.0, of `career_path_navigator`, with the cases given.

use chrono::{TimeZone, Utc};

use super::GradeOutcome;
use super::report::{
    AssertionResult, CaseReport, EvalReport, LatencyPercentiles, RunResult, VersionReport,
};

pub(crate) fn run(repeat: u32, passed: bool, assertions: Vec<AssertionResult>) -> RunResult {
    RunResult {
        repeat,
        request_id: Some(format!("req_{repeat}")),
        passed,
        score: Some(if passed { 1.0 } else { 0.0 }),
        latency_ms: 250.0,
        cost_usd: 0.001,
        judge_cost_usd: 0.0,
        output_tokens: 40,
        finish_reason: Some("stop".into()),
        repairs: 0,
        invalid_output: false,
        error: None,
        output: Some("answer".into()),
        assertions,
    }
}

pub(crate) fn assertion(index: usize, outcome: GradeOutcome, reason: &str) -> AssertionResult {
    AssertionResult {
        index,
        kind: "contains",
        outcome,
        score: if outcome == GradeOutcome::Pass {
            1.0
        } else {
            0.0
        },
        weight: 1.0,
        reason: reason.into(),
    }
}

pub(crate) fn case(id: &str, runs: Vec<RunResult>) -> CaseReport {
    let passes = runs.iter().filter(|run| run.passed).count() as u32;
    let pass_rate = passes as f64 / runs.len() as f64;
    CaseReport {
        id: id.into(),
        description: None,
        tags: Vec::new(),
        location: "config/evals/f/smoke.jsonl:3".into(),
        judged: false,
        passes,
        pass_rate,
        required_pass_rate: 1.0,
        threshold: None,
        mean_score: Some(pass_rate),
        passed: pass_rate >= 1.0,
        runs,
    }
}

pub(crate) fn report(cases: Vec<CaseReport>) -> EvalReport {
    let passed = cases.iter().filter(|case| case.passed).count();
    let total = cases.len();
    EvalReport {
        run_id: "eval-0000000000000001".into(),
        feature: "career_path_navigator".into(),
        dataset: "smoke".into(),
        started_at: Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap(),
        duration_ms: 1234.5,
        repeat: 2,
        concurrency: 4,
        model: None,
        mock: true,
        min_pass_rate: 1.0,
        versions: vec![VersionReport {
            version: "2.0.0".into(),
            cases,
            cases_total: total,
            cases_passed: passed,
            pass_rate: passed as f64 / total as f64,
            mean_score: Some(0.5),
            cost_usd: 0.004,
            judge_cost_usd: 0.0,
            latency_ms: LatencyPercentiles {
                p50: 250.0,
                p95: 250.0,
                p99: 250.0,
            },
            invalid_output_rate: 0.0,
            errors: 0,
            skipped_assertions: 0,
            passed: passed == total,
        }],
        comparisons: Vec::new(),
        passed: passed == total,
    }
}
