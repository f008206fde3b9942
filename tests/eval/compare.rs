//! Comparing versions through `Engine::evaluate`: each later version against the first, case by
//! case, with McNemar's test on the cases where they disagree. The tables are built on the
//! fast mock: an assertion no mock answer satisfies, scoped by `versions` to one side, fails a
//! case on that side only, so b (passed only on the baseline) and c (only on the candidate)
//! are whatever a test needs; p-values are the hand-worked ones of the stats unit tests.

use prompt_config::Context;
use prompt_config::eval::{
    Assertion, AssertionKind, Case, ComparisonVerdict, Dataset, EvalOptions, EvalReport,
};

use crate::support::eval::{fast_mock_fixture, mock_engine};
use crate::support::fixture::profile;

fn contains(text: &str) -> Assertion {
    Assertion::new(AssertionKind::Contains {
        value: text.to_string(),
        case_sensitive: true,
    })
}

/// An assertion that fails on `version` only (no mock answer contains its text).
fn fails_on(version: &str) -> Assertion {
    let mut assertion = contains("text no mock answer contains");
    assertion.versions = vec![version.to_string()];
    assertion
}

fn case(id: String, assertions: Vec<Assertion>) -> Case {
    Case::new(
        id.clone(),
        Context::new(id).with_variables(profile()),
        assertions,
    )
}

/// A dataset of `both` cases that pass on both versions, `baseline_only` that fail on
/// `candidate`, `candidate_only` that fail on `baseline`, and `neither` that fail on both.
fn table(
    baseline: &str,
    candidate: &str,
    both: usize,
    baseline_only: usize,
    candidate_only: usize,
    neither: usize,
) -> Dataset {
    let mut cases = Vec::new();
    for index in 0..both {
        cases.push(case(format!("both-{index}"), vec![contains("paths")]));
    }
    for index in 0..baseline_only {
        cases.push(case(format!("baseline-{index}"), vec![fails_on(candidate)]));
    }
    for index in 0..candidate_only {
        cases.push(case(format!("candidate-{index}"), vec![fails_on(baseline)]));
    }
    for index in 0..neither {
        cases.push(case(
            format!("neither-{index}"),
            vec![contains("text no mock answer contains")],
        ));
    }
    Dataset::new("table", cases)
}

fn evaluate(dataset: &Dataset, versions: [&str; 2]) -> EvalReport {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    engine
        .evaluate(
            "career_path_navigator",
            dataset,
            &EvalOptions::default().versions(versions).concurrency(8),
        )
        .unwrap()
}

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

#[test]
fn versions_that_pass_the_same_cases_show_no_significant_difference() {
    let report = evaluate(&table("2.0.0", "2.1.0", 6, 0, 0, 1), ["2.0.0", "2.1.0"]);
    let comparison = &report.comparisons[0];
    assert_eq!(
        (comparison.baseline.as_str(), comparison.candidate.as_str()),
        ("2.0.0", "2.1.0")
    );
    assert_eq!(comparison.both_passed, 6);
    assert_eq!(comparison.neither, 1);
    assert_eq!(
        (comparison.baseline_only, comparison.candidate_only),
        (0, 0)
    );
    assert_eq!(comparison.p_value, 1.0);
    assert_eq!(comparison.difference, 0.0);
    assert_eq!(
        comparison.verdict,
        ComparisonVerdict::NoSignificantDifference
    );
}

#[test]
fn the_json_version_fails_every_prose_assertion_and_is_worse() {
    // 2.2.0 answers JSON, so prose the 2.0.0 mock writes is never in it: b = 12, c = 0, and
    // the exact p-value is 2 * C(12, 0) / 2^12 = 2 / 4096.
    let cases = (0..12)
        .map(|index| {
            case(
                format!("prose-{index}"),
                vec![contains("Three suggested paths")],
            )
        })
        .collect();
    let report = evaluate(&Dataset::new("prose", cases), ["2.0.0", "2.2.0"]);
    assert_eq!(report.versions[0].pass_rate, 1.0, "{}", report.to_json());
    assert_eq!(report.versions[1].pass_rate, 0.0);
    let comparison = &report.comparisons[0];
    assert_eq!(
        (comparison.baseline_only, comparison.candidate_only),
        (12, 0)
    );
    assert_close(comparison.p_value, 0.00048828125, 1e-12);
    assert_eq!(comparison.difference, -1.0);
    assert_eq!(comparison.verdict, ComparisonVerdict::Worse);
    assert!(
        comparison
            .summary
            .contains("2.2.0 passes fewer cases than 2.0.0")
            && comparison.summary.contains("p < 0.001"),
        "{}",
        comparison.summary
    );
}

#[test]
fn one_case_lost_against_nine_gained_is_better_at_the_exact_p_value() {
    // b = 1, c = 9: 2 * (C(10,0) + C(10,1)) / 2^10 = 0.021484375 < 0.05.
    let report = evaluate(&table("2.0.0", "2.1.0", 2, 1, 9, 1), ["2.0.0", "2.1.0"]);
    let comparison = &report.comparisons[0];
    assert_eq!(
        (
            comparison.both_passed,
            comparison.baseline_only,
            comparison.candidate_only,
            comparison.neither
        ),
        (2, 1, 9, 1)
    );
    assert_close(comparison.p_value, 0.021484375, 1e-12);
    // 3 of 13 cases against 11 of 13.
    assert_close(comparison.baseline_pass_rate, 3.0 / 13.0, 1e-12);
    assert_close(comparison.candidate_pass_rate, 11.0 / 13.0, 1e-12);
    assert_close(comparison.difference, 8.0 / 13.0, 1e-12);
    assert_eq!(comparison.verdict, ComparisonVerdict::Better);
    assert!(
        comparison.summary.contains("p = 0.021") && comparison.summary.contains("better"),
        "{}",
        comparison.summary
    );
}

#[test]
fn thirty_five_discordant_cases_use_the_chi_square_both_ways_round() {
    // b = 10, c = 25: (|10 - 25| - 1)^2 / 35 = 5.6, p = erfc(sqrt(2.8)) = 0.0179605.
    let dataset = table("2.0.0", "2.1.0", 0, 10, 25, 0);
    let forward = evaluate(&dataset, ["2.0.0", "2.1.0"]);
    let comparison = &forward.comparisons[0];
    assert_eq!(
        (comparison.baseline_only, comparison.candidate_only),
        (10, 25)
    );
    assert_close(comparison.p_value, 0.017960477526078766, 1e-8);
    assert_eq!(comparison.verdict, ComparisonVerdict::Better);
    // With 2.1.0 as the baseline the same cases are b = 25, c = 10: the same p, worse.
    let backward = evaluate(&dataset, ["2.1.0", "2.0.0"]);
    let comparison = &backward.comparisons[0];
    assert_eq!(
        (comparison.baseline_only, comparison.candidate_only),
        (25, 10)
    );
    assert_close(comparison.p_value, 0.017960477526078766, 1e-8);
    assert_eq!(comparison.verdict, ComparisonVerdict::Worse);
}

#[test]
fn more_cases_passed_by_chance_are_no_significant_difference() {
    // b = 2, c = 5: 2 * (1 + 7 + 21) / 2^7 = 0.453125; the candidate passes three more cases,
    // which seven discordant cases cannot tell from chance.
    let report = evaluate(&table("2.0.0", "2.1.0", 3, 2, 5, 0), ["2.0.0", "2.1.0"]);
    let comparison = &report.comparisons[0];
    assert_close(comparison.p_value, 0.453125, 1e-12);
    assert!(comparison.difference > 0.0);
    assert_eq!(
        comparison.verdict,
        ComparisonVerdict::NoSignificantDifference
    );
    assert!(
        comparison
            .summary
            .contains("2 cases passed only on 2.0.0, 5 only on 2.1.0"),
        "{}",
        comparison.summary
    );
}

#[test]
fn one_case_passed_only_on_the_baseline_is_said_in_the_singular() {
    let report = evaluate(&table("2.0.0", "2.1.0", 3, 1, 0, 0), ["2.0.0", "2.1.0"]);
    let summary = &report.comparisons[0].summary;
    assert!(
        summary.contains("(1 case passed only on 2.0.0, 0 only on 2.1.0)"),
        "{summary}"
    );
}

#[test]
fn every_later_version_is_compared_with_the_first() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = table("2.0.0", "2.1.0", 2, 0, 0, 0);
    let report = engine
        .evaluate(
            "career_path_navigator",
            &dataset,
            &EvalOptions::default().versions(["2.0.0", "2.1.0", "3.0.0"]),
        )
        .unwrap();
    let pairs: Vec<(&str, &str)> = report
        .comparisons
        .iter()
        .map(|comparison| (comparison.baseline.as_str(), comparison.candidate.as_str()))
        .collect();
    assert_eq!(pairs, [("2.0.0", "2.1.0"), ("2.0.0", "3.0.0")]);
}
