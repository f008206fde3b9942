//! The runner: every case against every version, repeated, with pass rates per case and per
//! version, on the mock provider.

use prompt_config::eval::{Assertion, AssertionKind, Case, Dataset, EvalOptions, GradeOutcome};
use prompt_config::{Context, ErrorKind};

use crate::support::eval::{fast_mock_fixture, mock_engine};
use crate::support::fixture::profile;

fn contains(text: &str) -> Assertion {
    Assertion::new(AssertionKind::Contains {
        value: text.to_string(),
        case_sensitive: true,
    })
}

fn case(id: &str, assertions: Vec<Assertion>) -> Case {
    Case::new(id, Context::new(id).with_variables(profile()), assertions)
}

#[test]
fn every_case_runs_against_every_version_repeat_times() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new(
        "inline",
        vec![
            case("a", vec![contains("paths")]),
            case("b", vec![contains("paths")]),
        ],
    );
    let options = EvalOptions::default()
        .versions(["2.0.0", "2.1.0"])
        .repeat(3)
        .concurrency(4);
    let report = engine
        .evaluate("career_path_navigator", &dataset, &options)
        .unwrap();
    assert_eq!(report.versions.len(), 2);
    for version in &report.versions {
        assert_eq!(version.cases_total, 2);
        for case in &version.cases {
            assert_eq!(case.runs.len(), 3);
            let repeats: Vec<u32> = case.runs.iter().map(|run| run.repeat).collect();
            assert_eq!(repeats, [1, 2, 3]);
        }
    }
    assert!(report.passed, "{}", report.to_json());
    assert_eq!(report.comparisons.len(), 1);
}

#[test]
fn a_failing_assertion_fails_the_case_and_the_version() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new(
        "inline",
        vec![
            case("passes", vec![contains("paths")]),
            case(
                "fails",
                vec![contains("this text is never in a mock answer")],
            ),
        ],
    );
    let report = engine
        .evaluate(
            "career_path_navigator",
            &dataset,
            &EvalOptions::default().versions(["2.0.0"]),
        )
        .unwrap();
    let version = &report.versions[0];
    assert_eq!(version.cases_passed, 1);
    assert_eq!(version.pass_rate, 0.5);
    assert!(!version.passed);
    assert!(!report.passed);
    assert_eq!(report.failed_cases(), ["2.0.0/fails"]);
    let failing = &version.cases[1].runs[0].assertions[0];
    assert_eq!(failing.outcome, GradeOutcome::Fail);
}

#[test]
fn a_version_passes_at_the_minimum_pass_rate_asked_for() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new(
        "inline",
        vec![
            case("passes", vec![contains("paths")]),
            case("fails", vec![contains("never there")]),
        ],
    );
    let options = EvalOptions::default()
        .versions(["2.0.0"])
        .min_pass_rate(0.5);
    let report = engine
        .evaluate("career_path_navigator", &dataset, &options)
        .unwrap();
    assert!(report.passed);
}

#[test]
fn an_unknown_version_is_refused_before_any_call() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new("inline", vec![case("a", vec![contains("paths")])]);
    let error = engine
        .evaluate(
            "career_path_navigator",
            &dataset,
            &EvalOptions::default().versions(["9.9.9"]),
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnknownVersion);
}

#[test]
fn a_model_override_not_in_providers_json_is_unknown_model() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new("inline", vec![case("a", vec![contains("paths")])]);
    let error = engine
        .evaluate(
            "career_path_navigator",
            &dataset,
            &EvalOptions::default().model("openai/gpt-9"),
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnknownModel);
    assert!(error.to_string().contains("openai/gpt-4o-mini"), "{error}");
}

#[test]
fn a_model_override_answers_every_run() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new("inline", vec![case("a", vec![contains("mock-large")])]);
    let report = engine
        .evaluate(
            "career_path_navigator",
            &dataset,
            &EvalOptions::default()
                .versions(["2.0.0"])
                .model("mock/mock-large"),
        )
        .unwrap();
    assert!(report.passed, "{}", report.to_json());
}

#[test]
fn zero_repeats_and_zero_concurrency_are_invalid_arguments() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new("inline", vec![case("a", vec![contains("paths")])]);
    for options in [
        EvalOptions::default().repeat(0),
        EvalOptions::default().concurrency(0),
        EvalOptions::default().min_pass_rate(1.5),
    ] {
        let error = engine
            .evaluate("career_path_navigator", &dataset, &options)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{options:?}");
    }
}

#[test]
fn an_empty_dataset_is_an_invalid_dataset() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let error = engine
        .evaluate(
            "career_path_navigator",
            &Dataset::new("empty", Vec::new()),
            &EvalOptions::default(),
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
}

#[test]
fn without_versions_the_active_version_runs() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let dataset = Dataset::new("inline", vec![case("a", vec![contains("paths")])]);
    let report = engine
        .evaluate("career_path_navigator", &dataset, &EvalOptions::default())
        .unwrap();
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["2.0.0"]);
}
