//! Comparing two versions of one evaluation case by case: the difference in case pass rate,
//! McNemar's paired test on the cases where they disagree (the statistics code of `stats`),
//! and a plain verdict at the same alpha `stats` uses.

use crate::telemetry::stats::significance::{ALPHA, mcnemar};

use super::report::{Comparison, ComparisonVerdict, VersionReport};

/// `candidate` against `baseline`, pairing their cases by position (both ran the same dataset).
pub(crate) fn compare(baseline: &VersionReport, candidate: &VersionReport) -> Comparison {
    let (mut both_passed, mut baseline_only, mut candidate_only, mut neither) = (0, 0, 0, 0);
    for (old, new) in baseline.cases.iter().zip(&candidate.cases) {
        match (old.passed, new.passed) {
            (true, true) => both_passed += 1,
            (true, false) => baseline_only += 1,
            (false, true) => candidate_only += 1,
            (false, false) => neither += 1,
        }
    }
    let p_value = mcnemar(baseline_only as u64, candidate_only as u64);
    let difference = candidate.pass_rate - baseline.pass_rate;
    let verdict = if p_value >= ALPHA || candidate_only == baseline_only {
        ComparisonVerdict::NoSignificantDifference
    } else if candidate_only > baseline_only {
        ComparisonVerdict::Better
    } else {
        ComparisonVerdict::Worse
    };
    // Three decimals would print a tiny p-value as "p = 0.000"; say "p < 0.001" as `stats` does.
    let p = if p_value < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {p_value:.3}")
    };
    let summary = match verdict {
        ComparisonVerdict::Better => format!(
            "{} passes more cases than {} ({:+.1} points, {p}): better",
            candidate.version,
            baseline.version,
            difference * 100.0
        ),
        ComparisonVerdict::Worse => format!(
            "{} passes fewer cases than {} ({:+.1} points, {p}): worse",
            candidate.version,
            baseline.version,
            difference * 100.0
        ),
        ComparisonVerdict::NoSignificantDifference => format!(
            "{} against {}: {:+.1} points, {p}: no significant difference \
             ({baseline_only} {} passed only on {}, {candidate_only} only on {})",
            candidate.version,
            baseline.version,
            difference * 100.0,
            if baseline_only == 1 { "case" } else { "cases" },
            baseline.version,
            candidate.version
        ),
    };
    Comparison {
        baseline: baseline.version.clone(),
        candidate: candidate.version.clone(),
        baseline_pass_rate: baseline.pass_rate,
        candidate_pass_rate: candidate.pass_rate,
        difference,
        both_passed,
        baseline_only,
        candidate_only,
        neither,
        p_value,
        verdict,
        summary,
    }
}
