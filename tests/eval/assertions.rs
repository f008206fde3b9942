//! Grading: every assertion kind but `judge` (see the judge tests), each shown holding and not
//! holding, from an observation of an answer. Assertions are written in their dataset shape
//! and loaded through the dataset parser, as a team would write them.

use prompt_config::eval::{Assertion, Dataset, Grade, GradeOutcome, Observation};
use prompt_config::output::OutputSchema;
use serde_json::{Value, json};

/// The assertion written as `shape` in a dataset line.
fn assertion(shape: Value) -> Assertion {
    let line = json!({"id": "a", "context": {"user_id": "u"}, "assertions": [shape]});
    let dataset = Dataset::parse("inline.jsonl", &line.to_string()).unwrap();
    dataset.cases[0].assertions[0].clone()
}

/// An observation of a prose answer `text`, with plain figures.
fn prose(text: &str) -> Observation<'_> {
    Observation {
        text,
        data: None,
        tool_calls: &[],
        output_schema: None,
        output_tokens: 120,
        latency_ms: 840.0,
        cost_usd: 0.0004,
        finish_reason: Some("stop"),
    }
}

fn grade(shape: Value, observation: &Observation<'_>) -> Grade {
    let assertion = assertion(shape);
    assertion.with_threshold(assertion.grade(observation))
}

fn passes(shape: Value, observation: &Observation<'_>) {
    let grade = grade(shape.clone(), observation);
    assert_eq!(
        grade.outcome,
        GradeOutcome::Pass,
        "{shape}: {}",
        grade.reason
    );
    assert_eq!(grade.score, 1.0);
}

fn fails(shape: Value, observation: &Observation<'_>) -> String {
    let grade = grade(shape.clone(), observation);
    assert_eq!(
        grade.outcome,
        GradeOutcome::Fail,
        "{shape}: {}",
        grade.reason
    );
    assert_eq!(grade.score, 0.0);
    grade.reason
}

const ANSWER: &str =
    "Three paths: 1. Clinical Data Analyst; 2. Nurse Informatician; 3. Health Data Scientist.";

const PATHS: &str = r#"{"paths": [
    {"role": "Clinical Data Analyst", "fit": "uses Excel", "skills_to_add": ["SQL", "Python"], "first_step": "Take a SQL course"},
    {"role": "Nurse Informatician", "fit": "clinical knowledge", "skills_to_add": ["HL7"], "first_step": "Join the EHR team"},
    {"role": "Health Data Scientist", "fit": "a larger change", "skills_to_add": ["statistics"], "first_step": "Start a certificate"}
]}"#;

fn output_schema() -> OutputSchema {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::support::fixture::project_root()
                .join("prompts/career_path_navigator/2.2.0/output.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    OutputSchema::compile("career_paths", schema, true).unwrap()
}

#[test]
fn equals_a_string_compares_the_text_exactly() {
    passes(json!({"type": "equals", "value": ANSWER}), &prose(ANSWER));
    let reason = fails(
        json!({"type": "equals", "value": "Three paths"}),
        &prose(ANSWER),
    );
    assert!(reason.contains("is not \"Three paths\""), "{reason}");
}

#[test]
fn equals_a_json_value_compares_the_parsed_answer() {
    let text = r#"{"b": [1, 2], "a": "x"}"#;
    passes(
        json!({"type": "equals", "value": {"a": "x", "b": [1, 2]}}),
        &prose(text),
    );
    fails(json!({"type": "equals", "value": {"a": "x"}}), &prose(text));
    let reason = fails(json!({"type": "equals", "value": [1]}), &prose(ANSWER));
    assert!(reason.starts_with("the answer is not JSON"), "{reason}");
}

#[test]
fn contains_finds_the_text_with_case_by_default() {
    passes(
        json!({"type": "contains", "value": "Nurse Informatician"}),
        &prose(ANSWER),
    );
    fails(
        json!({"type": "contains", "value": "nurse informatician"}),
        &prose(ANSWER),
    );
}

#[test]
fn contains_folds_case_when_asked() {
    passes(
        json!({"type": "contains", "value": "NURSE informatician", "case_sensitive": false}),
        &prose(ANSWER),
    );
    fails(
        json!({"type": "contains", "value": "surgeon", "case_sensitive": false}),
        &prose(ANSWER),
    );
}

#[test]
fn not_contains_holds_when_the_text_is_absent() {
    passes(
        json!({"type": "not_contains", "value": "lorem ipsum"}),
        &prose(ANSWER),
    );
    fails(
        json!({"type": "not_contains", "value": "Data"}),
        &prose(ANSWER),
    );
    fails(
        json!({"type": "not_contains", "value": "three PATHS", "case_sensitive": false}),
        &prose(ANSWER),
    );
}

#[test]
fn regex_matches_anywhere_in_the_text() {
    passes(
        json!({"type": "regex", "value": r"1\. .+; 2\. .+; 3\. "}),
        &prose(ANSWER),
    );
    passes(
        json!({"type": "regex", "value": "(?i)NURSE"}),
        &prose(ANSWER),
    );
    let reason = fails(json!({"type": "regex", "value": "^Four"}), &prose(ANSWER));
    assert_eq!(reason, "/^Four/ did not match");
}

#[test]
fn is_json_holds_for_json_text_only() {
    passes(json!({"type": "is_json"}), &prose(PATHS));
    passes(json!({"type": "is_json"}), &prose(" [1, 2] "));
    fails(json!({"type": "is_json"}), &prose(ANSWER));
    let reason = fails(json!({"type": "is_json"}), &prose(""));
    assert_eq!(reason, "the answer is empty, not JSON");
}

#[test]
fn json_schema_with_its_own_schema_checks_the_answer() {
    let shape = json!({"type": "json_schema", "value": {
        "type": "object", "required": ["paths"],
        "properties": {"paths": {"type": "array", "minItems": 3, "maxItems": 3}}
    }});
    passes(shape.clone(), &prose(PATHS));
    let reason = fails(shape, &prose(r#"{"paths": [1]}"#));
    assert!(
        reason.starts_with("the answer breaks the assertion's schema: /paths:"),
        "{reason}"
    );
}

#[test]
fn json_schema_without_a_schema_uses_the_versions_output_schema() {
    let schema = output_schema();
    let mut observation = prose(PATHS);
    observation.output_schema = Some(&schema);
    passes(json!({"type": "json_schema"}), &observation);
    let broken = r#"{"paths": []}"#;
    let mut observation = prose(broken);
    observation.output_schema = Some(&schema);
    let reason = fails(json!({"type": "json_schema"}), &observation);
    assert!(
        reason.starts_with("the answer breaks the version's output schema"),
        "{reason}"
    );
}

#[test]
fn json_schema_on_a_version_without_an_output_schema_fails_saying_so() {
    let reason = fails(json!({"type": "json_schema"}), &prose(PATHS));
    assert!(
        reason.starts_with("the version declares no output schema"),
        "{reason}"
    );
}

#[test]
fn json_schema_on_a_version_without_an_output_schema_says_so_for_a_prose_answer_too() {
    for text in [ANSWER, "", "{not json"] {
        let reason = fails(json!({"type": "json_schema"}), &prose(text));
        assert!(
            reason.starts_with("the version declares no output schema"),
            "{text:?}: {reason}"
        );
    }
}

#[test]
fn json_schema_fails_an_answer_that_is_not_json() {
    let reason = fails(
        json!({"type": "json_schema", "value": true}),
        &prose(ANSWER),
    );
    assert!(reason.starts_with("the answer is not JSON"), "{reason}");
}

#[test]
fn json_path_equals_compares_the_single_selected_value() {
    let path =
        |path: &str, equals: Value| json!({"type": "json_path", "path": path, "equals": equals});
    passes(
        path("$.paths[0].role", json!("Clinical Data Analyst")),
        &prose(PATHS),
    );
    passes(
        path("$.paths[1].skills_to_add", json!(["HL7"])),
        &prose(PATHS),
    );
    let reason = fails(path("$.paths[0].role", json!("Nurse")), &prose(PATHS));
    assert_eq!(
        reason,
        "$.paths[0].role selected \"Clinical Data Analyst\", expected \"Nurse\""
    );
}

#[test]
fn json_path_equals_compares_several_or_no_selected_values_as_an_array() {
    let path =
        |path: &str, equals: Value| json!({"type": "json_path", "path": path, "equals": equals});
    passes(
        path(
            "$.paths[*].role",
            json!([
                "Clinical Data Analyst",
                "Nurse Informatician",
                "Health Data Scientist"
            ]),
        ),
        &prose(PATHS),
    );
    passes(path("$.paths[3]", json!([])), &prose(PATHS));
    passes(
        path("$.paths[?length(@.role) == 0]", json!([])),
        &prose(PATHS),
    );
    let reason = fails(path("$.paths[9].role", json!("x")), &prose(PATHS));
    assert_eq!(reason, "$.paths[9].role selected nothing, expected \"x\"");
}

#[test]
fn json_path_contains_finds_a_value_a_substring_or_an_array_element() {
    let path = |path: &str, contains: Value| json!({"type": "json_path", "path": path, "contains": contains});
    // Some selected value equals it.
    passes(
        path("$.paths[*].role", json!("Nurse Informatician")),
        &prose(PATHS),
    );
    // A selected string contains it.
    passes(
        path("$.paths[*].first_step", json!("SQL course")),
        &prose(PATHS),
    );
    // A selected array holds it.
    passes(
        path("$.paths[*].skills_to_add", json!("HL7")),
        &prose(PATHS),
    );
    let reason = fails(
        path("$.paths[*].skills_to_add", json!("Java")),
        &prose(PATHS),
    );
    assert!(reason.contains("does not contain \"Java\""), "{reason}");
    fails(path("$.nothing", json!("x")), &prose(PATHS));
}

#[test]
fn json_path_reads_the_parsed_structured_answer_when_there_is_one() {
    let data = json!({"paths": [{"role": "From data"}]});
    let mut observation = prose("not the text that is read");
    observation.data = Some(&data);
    passes(
        json!({"type": "json_path", "path": "$.paths[0].role", "equals": "From data"}),
        &observation,
    );
}

#[test]
fn json_path_fails_an_answer_that_is_not_json() {
    let reason = fails(
        json!({"type": "json_path", "path": "$.a", "equals": 1}),
        &prose(ANSWER),
    );
    assert!(reason.starts_with("the answer is not JSON"), "{reason}");
}

#[test]
fn max_tokens_holds_at_and_below_the_limit() {
    passes(json!({"type": "max_tokens", "value": 120}), &prose(ANSWER));
    let reason = fails(json!({"type": "max_tokens", "value": 119}), &prose(ANSWER));
    assert_eq!(reason, "120 output tokens, limit 119");
}

#[test]
fn max_latency_ms_holds_at_and_below_the_limit() {
    passes(
        json!({"type": "max_latency_ms", "value": 840}),
        &prose(ANSWER),
    );
    fails(
        json!({"type": "max_latency_ms", "value": 839.5}),
        &prose(ANSWER),
    );
}

#[test]
fn max_cost_usd_holds_at_and_below_the_limit() {
    passes(
        json!({"type": "max_cost_usd", "value": 0.001}),
        &prose(ANSWER),
    );
    fails(
        json!({"type": "max_cost_usd", "value": 0.0001}),
        &prose(ANSWER),
    );
}

#[test]
fn finish_reason_compares_the_shared_name() {
    passes(
        json!({"type": "finish_reason", "value": "stop"}),
        &prose(ANSWER),
    );
    let reason = fails(
        json!({"type": "finish_reason", "value": "length"}),
        &prose(ANSWER),
    );
    assert_eq!(reason, "finish reason stop, expected length");
    let mut observation = prose(ANSWER);
    observation.finish_reason = None;
    fails(
        json!({"type": "finish_reason", "value": "stop"}),
        &observation,
    );
}

#[test]
fn a_judge_is_not_graded_here() {
    let grade = grade(json!({"type": "judge", "value": "helpful"}), &prose(ANSWER));
    assert_eq!(grade.outcome, GradeOutcome::Skipped);
}

#[test]
fn a_threshold_lets_the_score_decide() {
    // Plain assertions score 1 or 0, so a threshold of 0 passes even a miss.
    passes(
        json!({"type": "contains", "value": "Nurse", "threshold": 1}),
        &prose(ANSWER),
    );
    let grade = grade(
        json!({"type": "contains", "value": "absent", "threshold": 0}),
        &prose(ANSWER),
    );
    assert_eq!(grade.outcome, GradeOutcome::Pass, "{}", grade.reason);
}

#[test]
fn every_kind_reports_its_dataset_name() {
    let kinds = [
        json!({"type": "equals", "value": 1}),
        json!({"type": "contains", "value": "x"}),
        json!({"type": "not_contains", "value": "x"}),
        json!({"type": "regex", "value": "x"}),
        json!({"type": "is_json"}),
        json!({"type": "json_schema"}),
        json!({"type": "json_path", "path": "$", "equals": 1}),
        json!({"type": "max_tokens", "value": 1}),
        json!({"type": "max_latency_ms", "value": 1}),
        json!({"type": "max_cost_usd", "value": 1}),
        json!({"type": "finish_reason", "value": "stop"}),
        json!({"type": "judge", "value": "x"}),
    ];
    for shape in kinds {
        let name = shape["type"].as_str().unwrap_or_default().to_string();
        assert_eq!(assertion(shape).type_name(), name);
    }
}
