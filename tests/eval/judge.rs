//! Judge assertions: the shipped judge `eval_judge` grading Career Path Navigator's answers
//! through a loopback OpenAI-compatible server that returns fixed verdicts (see
//! `judge_setup.rs`): the verdict becomes the grade, a threshold applies to its score, an
//! invalid verdict is repaired through the structured-output path, a failed judge fails the
//! assertion, its cost is reported apart, judged cases pass at 4 repeats in 5, the mock's
//! verdicts are not counted, and a judge or model that does not exist stops the evaluation
//! before any call.

use prompt_config::ErrorKind;
use prompt_config::eval::{Assertion, AssertionKind, GradeOutcome};

use crate::judge_setup::{
    ANSWER, JudgeSetup, RUBRIC, VERDICT_USD, evaluate, invalid_verdict, judge, judge_with,
    nurse_case, verdict,
};
use crate::support::eval::{fast_mock_fixture, mock_engine};

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-12
}

#[test]
fn a_passing_verdict_passes_with_the_judges_score_and_reason() {
    let setup = JudgeSetup::new(vec![verdict(true, 0.9, "Three grounded paths.")]);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 1).unwrap();
    let case = &report.versions[0].cases[0];
    assert!(case.judged);
    assert!(case.passed, "{}", report.to_json());
    let result = &case.runs[0].assertions[0];
    assert_eq!(result.kind, "judge");
    assert_eq!(result.outcome, GradeOutcome::Pass);
    assert_eq!(result.score, 0.9);
    assert_eq!(result.reason, "Three grounded paths.");
    assert_eq!(case.runs[0].score, Some(0.9));
}

#[test]
fn a_failing_verdict_fails_the_case() {
    let setup = JudgeSetup::new(vec![verdict(false, 0.2, "Only one path is named.")]);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 1).unwrap();
    let case = &report.versions[0].cases[0];
    let result = &case.runs[0].assertions[0];
    assert_eq!(result.outcome, GradeOutcome::Fail);
    assert_eq!(result.score, 0.2);
    assert_eq!(result.reason, "Only one path is named.");
    assert!(!case.passed);
    assert_eq!(report.failed_cases(), ["2.0.0/nurse"]);
}

#[test]
fn a_score_under_the_assertions_threshold_fails_although_the_judge_said_pass() {
    let setup = JudgeSetup::new(vec![verdict(true, 0.6, "Paths are vague.")]);
    let mut assertion = judge();
    assertion.threshold = Some(0.7);
    let report = evaluate(&setup.engine(), &nurse_case(vec![assertion]), "2.0.0", 1).unwrap();
    let result = &report.versions[0].cases[0].runs[0].assertions[0];
    assert_eq!(result.outcome, GradeOutcome::Fail);
    assert_eq!(result.score, 0.6);
    assert!(
        result.reason.contains("0.60") && result.reason.contains("0.70"),
        "{}",
        result.reason
    );
    assert!(!report.passed);
}

#[test]
fn a_score_above_1_is_clamped_to_1() {
    let setup = JudgeSetup::new(vec![verdict(true, 7.0, "Excellent.")]);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 1).unwrap();
    let result = &report.versions[0].cases[0].runs[0].assertions[0];
    assert_eq!(result.score, 1.0);
}

#[test]
fn an_invalid_verdict_is_repaired_and_the_second_answer_grades() {
    let setup = JudgeSetup::new(vec![
        invalid_verdict(r#"{"verdict": "looks good", "score": "high"}"#),
        verdict(true, 0.8, "Repaired: three paths."),
    ]);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 1).unwrap();
    let run = &report.versions[0].cases[0].runs[0];
    let result = &run.assertions[0];
    assert_eq!(result.outcome, GradeOutcome::Pass, "{}", result.reason);
    assert_eq!(result.reason, "Repaired: three paths.");
    let requests = setup.judge_requests();
    assert_eq!(requests.len(), 2, "the invalid verdict was sent back once");
    let repair = requests[1].json();
    let messages = repair["messages"].as_array().unwrap();
    let instruction = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(
        instruction.contains("\"pass\" is a required property")
            && instruction.contains("/score: \"high\" is not of type \"number\""),
        "{instruction}"
    );
    // Both verdicts were billed: the judge's cost counts the invalid one too.
    assert!(
        close(run.judge_cost_usd, 2.0 * VERDICT_USD),
        "{}",
        run.judge_cost_usd
    );
}

#[test]
fn a_judge_that_fails_on_every_provider_fails_the_assertion_naming_the_error_kind() {
    let setup = JudgeSetup::new(Vec::new());
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 1).unwrap();
    let run = &report.versions[0].cases[0].runs[0];
    assert!(run.error.is_none(), "the judged call itself succeeded");
    let result = &run.assertions[0];
    assert_eq!(result.outcome, GradeOutcome::Fail);
    assert!(
        result
            .reason
            .starts_with("the judge eval_judge failed (all_providers_failed)"),
        "{}",
        result.reason
    );
    assert!(!setup.judge_requests().is_empty());
    assert!(
        !setup.anthropic.requests().is_empty(),
        "the judge failed over"
    );
    assert_eq!(run.judge_cost_usd, 0.0, "HTTP 500 answers cost nothing");
    assert!(!report.passed);
}

#[test]
fn the_judges_cost_is_reported_apart_from_the_runs_cost() {
    let setup = JudgeSetup::new(vec![
        verdict(true, 1.0, "Good."),
        verdict(true, 1.0, "Good."),
    ]);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 2).unwrap();
    let version = &report.versions[0];
    for run in &version.cases[0].runs {
        assert!(
            close(run.judge_cost_usd, VERDICT_USD),
            "{}",
            run.judge_cost_usd
        );
        // The judged answer: 200 in and 80 out on gpt-4o-mini ($0.15 / $0.60 per million).
        assert!(
            close(run.cost_usd, (200.0 * 0.15 + 80.0 * 0.6) / 1e6),
            "{}",
            run.cost_usd
        );
    }
    assert!(close(version.judge_cost_usd, 2.0 * VERDICT_USD));
}

#[test]
fn a_judged_case_passes_when_4_of_5_verdicts_pass() {
    let mut verdicts = vec![verdict(true, 0.9, "Good."); 4];
    verdicts.insert(2, verdict(false, 0.3, "Vague."));
    let setup = JudgeSetup::new(verdicts);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 5).unwrap();
    let case = &report.versions[0].cases[0];
    assert_eq!(case.passes, 4);
    assert_eq!(case.required_pass_rate, 0.8);
    assert!(case.passed, "{}", report.to_json());
    assert!(report.passed);
}

#[test]
fn a_judged_case_fails_when_3_of_5_verdicts_pass() {
    let mut verdicts = vec![verdict(true, 0.9, "Good."); 3];
    verdicts.extend(vec![verdict(false, 0.3, "Vague."); 2]);
    let setup = JudgeSetup::new(verdicts);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 5).unwrap();
    let case = &report.versions[0].cases[0];
    assert_eq!(case.passes, 3);
    assert_eq!(case.pass_rate, 0.6);
    assert!(!case.passed);
    assert!(!report.passed);
}

#[test]
fn the_judge_reads_the_rubric_the_request_sent_and_the_answer() {
    let setup = JudgeSetup::new(vec![verdict(true, 1.0, "Good.")]);
    evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.0.0", 1).unwrap();
    let request = setup.judge_requests()[0].json();
    let messages = request["messages"].as_array().unwrap();
    let user = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(user.contains(RUBRIC), "{user}");
    assert!(user.contains(ANSWER), "{user}");
    let judged = setup.feature_requests()[0].json();
    for message in judged["messages"].as_array().unwrap() {
        let line = format!(
            "{}: {}",
            message["role"].as_str().unwrap(),
            message["content"].as_str().unwrap()
        );
        assert!(user.contains(&line), "{line} missing from {user}");
    }
    assert_eq!(request["model"], "gpt-4o", "the shipped judge's model");
    assert_eq!(request["temperature"], 0.0);
}

#[test]
fn a_structured_answer_is_judged_as_its_json() {
    let setup = JudgeSetup::new(vec![verdict(true, 1.0, "Good.")]);
    let report = evaluate(&setup.engine(), &nurse_case(vec![judge()]), "2.2.0", 1).unwrap();
    assert!(report.passed, "{}", report.to_json());
    let request = setup.judge_requests()[0].json();
    let user = request["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        user.contains("\"paths\": [") && user.contains("\"role\": \"Nurse educator\""),
        "{user}"
    );
}

#[test]
fn a_model_named_by_the_assertion_replaces_the_judges_chain() {
    let setup = JudgeSetup::new(vec![verdict(true, 1.0, "Good.")]);
    let dataset = nurse_case(vec![judge_with(None, Some("openai/gpt-4.1-nano"))]);
    let report = evaluate(&setup.engine(), &dataset, "2.0.0", 1).unwrap();
    assert!(report.passed, "{}", report.to_json());
    assert_eq!(setup.judge_requests()[0].json()["model"], "gpt-4.1-nano");
    assert_eq!(setup.feature_requests()[0].json()["model"], "gpt-4o-mini");
    // Priced as the model that answered: $0.10 in, $0.40 out per million.
    let run = &report.versions[0].cases[0].runs[0];
    assert!(close(run.judge_cost_usd, (400.0 * 0.1 + 30.0 * 0.4) / 1e6));
}

#[test]
fn an_unknown_judge_model_stops_the_evaluation_before_any_call() {
    let setup = JudgeSetup::new(Vec::new());
    let dataset = nurse_case(vec![judge_with(None, Some("openai/gpt-9"))]);
    let error = evaluate(&setup.engine(), &dataset, "2.0.0", 1).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnknownModel);
    assert!(error.to_string().contains("openai/gpt-9"), "{error}");
    assert!(setup.openai.requests().is_empty());
}

#[test]
fn a_judge_feature_that_does_not_exist_stops_the_evaluation_naming_the_assertion() {
    let setup = JudgeSetup::new(Vec::new());
    let dataset = nurse_case(vec![
        Assertion::new(AssertionKind::Contains {
            value: "paths".into(),
            case_sensitive: false,
        }),
        judge_with(Some("strict_judge"), None),
    ]);
    let error = evaluate(&setup.engine(), &dataset, "2.0.0", 1).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
    let text = error.to_string();
    assert!(
        text.contains("/assertions/1/feature: case \"nurse\": judge feature \"strict_judge\" is not configured"),
        "{text}"
    );
    assert!(setup.openai.requests().is_empty());
}

#[test]
fn a_judge_feature_without_an_output_schema_is_refused() {
    let setup = JudgeSetup::new(Vec::new());
    // Career Path Navigator's active version (2.0.0) answers prose: it cannot give a verdict.
    let dataset = nurse_case(vec![judge_with(Some("career_path_navigator"), None)]);
    let error = evaluate(&setup.engine(), &dataset, "2.0.0", 1).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
    assert!(
        error.to_string().contains("declares no output schema"),
        "{error}"
    );
}

#[test]
fn under_the_mock_the_judge_is_called_but_its_verdict_is_skipped_and_not_counted() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let contains = Assertion::new(AssertionKind::Contains {
        value: "paths".into(),
        case_sensitive: false,
    });
    let dataset = nurse_case(vec![contains, judge()]);
    let report = evaluate(&engine, &dataset, "2.0.0", 2).unwrap();
    let version = &report.versions[0];
    let case = &version.cases[0];
    for run in &case.runs {
        let judged = &run.assertions[1];
        assert_eq!(judged.outcome, GradeOutcome::Skipped);
        assert!(judged.reason.contains("mock"), "{}", judged.reason);
        assert!(
            run.judge_cost_usd > 0.0,
            "the mock judge call was made and priced"
        );
        // Only the `contains` assertion counts in the score.
        assert_eq!(run.score, Some(1.0));
        assert!(run.passed);
    }
    assert_eq!(version.skipped_assertions, 2);
    assert!(case.passed, "{}", report.to_json());
}

#[test]
fn a_judge_model_of_kind_mock_is_skipped_too() {
    let setup = JudgeSetup::new(Vec::new());
    let dataset = nurse_case(vec![judge_with(None, Some("mock/mock-large"))]);
    let report = evaluate(&setup.engine(), &dataset, "2.0.0", 1).unwrap();
    let result = &report.versions[0].cases[0].runs[0].assertions[0];
    assert_eq!(result.outcome, GradeOutcome::Skipped, "{}", result.reason);
    assert!(
        setup.judge_requests().is_empty(),
        "the mock answered, not the server"
    );
}

#[test]
fn a_dataset_line_naming_a_missing_judge_is_refused_at_its_file_and_line() {
    let setup = JudgeSetup::new(Vec::new());
    let profile = serde_json::Value::Object(crate::support::fixture::profile());
    let line = |id: &str, judge: serde_json::Value| {
        serde_json::json!({"id": id, "context": {"user_id": id, "variables": profile}, "assertions": [
            {"type": "contains", "value": "paths", "case_sensitive": false}, judge
        ]})
        .to_string()
    };
    let text = [
        line(
            "default-judge",
            serde_json::json!({"type": "judge", "value": RUBRIC}),
        ),
        line(
            "own-judge",
            serde_json::json!({"type": "judge", "value": RUBRIC, "feature": "strict_judge"}),
        ),
    ]
    .join("\n");
    let dataset = prompt_config::eval::Dataset::parse("judged.jsonl", &text).unwrap();
    let error = evaluate(&setup.engine(), &dataset, "2.0.0", 1).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
    let text = error.to_string();
    assert!(
        text.contains("judged.jsonl:2: /assertions/1/feature: judge feature \"strict_judge\" is not configured"),
        "{text}"
    );
    assert!(
        !text.contains("judged.jsonl:1:"),
        "the shipped judge exists: {text}"
    );
    assert!(setup.openai.requests().is_empty());
}
