//! `prompt-config dataset from-telemetry` on logs a real engine wrote: cases only from
//! requests whose feature records text, the subject hashed, history recovered, feedback
//! filters and comments, and the cases run again by `prompt-config eval`.

use std::path::{Path, PathBuf};

use prompt_config::{Context, Engine, Message, Role};
use serde_json::{Value, json};

use crate::support::cli::{run, stderr, stdout};
use crate::support::eval::fast_mock_fixture;
use crate::support::fixture::{Fixture, profile};

const FEATURE: &str = "career_path_navigator";

/// Turns the feature's `telemetry.record_text` (and `hash_subject_id`) on or off.
fn record_text(fixture: &Fixture, on: bool) {
    fixture.edit_feature(|document| {
        document["telemetry"]["record_text"] = json!(on);
        document["telemetry"]["hash_subject_id"] = json!(false);
    });
}

/// Three calls through a mock engine writing `log`: user "alice" on 2.0.0 (rated 1, with a
/// comment), "bob" on 2.1.0 (rated 5), "carol" on 2.0.0 with a conversation history (no
/// feedback). Returns their request ids in that order.
fn write_log(fixture: &Fixture, log: &Path) -> Vec<String> {
    let engine = Engine::open(fixture.options().with_mock(true).with_telemetry(log)).unwrap();
    let call = |user: &str, version: &str, history: Vec<Message>| {
        let context = Context::new(user)
            .with_variables(profile())
            .pin_version(version)
            .with_messages(history);
        engine.complete(FEATURE, &context).unwrap().request_id
    };
    let alice = call("alice", "2.0.0", Vec::new());
    let bob = call("bob", "2.1.0", Vec::new());
    let carol = call(
        "carol",
        "2.0.0",
        vec![Message::new(Role::User, "and in tech?")],
    );
    engine.feedback(&alice, "rating", json!(1)).unwrap();
    engine
        .feedback(&alice, "comment", json!("it ignored my nursing degree"))
        .unwrap();
    engine.feedback(&bob, "rating", json!(5)).unwrap();
    engine.flush_telemetry();
    drop(engine);
    vec![alice, bob, carol]
}

fn from_telemetry(fixture: &Fixture, log: &Path, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec![
        "dataset",
        "from-telemetry",
        log.to_str().unwrap(),
        "--feature",
        FEATURE,
    ];
    args.extend_from_slice(extra);
    let output = run(fixture, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let cases = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    (cases, stderr(&output))
}

fn log_path(fixture: &Fixture) -> PathBuf {
    fixture.root.join("telemetry.jsonl")
}

#[test]
fn every_recorded_request_becomes_a_case_with_its_context() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    let ids = write_log(&fixture, &log);
    let (cases, summary) = from_telemetry(&fixture, &log, &[]);
    assert_eq!(cases.len(), 3, "{summary}");
    let alice = &cases[0];
    assert_eq!(alice["id"], format!("telemetry-{}", ids[0]));
    assert_eq!(alice["tags"], json!(["from-telemetry"]));
    assert_eq!(alice["context"]["variables"], Value::Object(profile()));
    assert_eq!(alice["metadata"]["request_id"], ids[0]);
    assert_eq!(alice["metadata"]["version"], "2.0.0");
    assert!(
        alice["metadata"]["answer"]
            .as_str()
            .unwrap()
            .contains("paths")
    );
    assert!(
        alice["context"].get("messages").is_none(),
        "no history: {alice}"
    );
    assert!(summary.contains("3 kept"), "{summary}");
}

#[test]
fn the_subject_id_is_hashed() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let (cases, _) = from_telemetry(&fixture, &log, &[]);
    let expected = format!("sha256:{}", prompt_config_sha256("alice"));
    assert_eq!(cases[0]["context"]["user_id"], expected);
    assert!(!stdout_mentions(&cases, "\"alice\""));
}

fn prompt_config_sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn stdout_mentions(cases: &[Value], text: &str) -> bool {
    cases.iter().any(|case| case.to_string().contains(text))
}

#[test]
fn the_history_after_the_templates_messages_is_recovered() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let (cases, _) = from_telemetry(&fixture, &log, &[]);
    assert_eq!(
        cases[2]["context"]["messages"],
        json!([{"role": "user", "content": "and in tech?"}])
    );
}

#[test]
fn a_version_that_now_renders_differently_keeps_the_case_without_its_history() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    // The log outlives the config: 2.0.0 is no longer there to render.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replace(
            "\"gen_ai.prompt.version\":\"2.0.0\"",
            "\"gen_ai.prompt.version\":\"0.0.1\"",
        ),
    )
    .unwrap();
    let (cases, summary) = from_telemetry(&fixture, &log, &[]);
    assert_eq!(cases.len(), 3);
    assert!(cases[2]["context"].get("messages").is_none());
    assert!(
        summary.contains("2 cases kept without their history"),
        "{summary}"
    );
}

#[test]
fn an_evaluations_own_requests_never_become_cases() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    let engine = Engine::open(fixture.options().with_mock(true).with_telemetry(&log)).unwrap();
    let dataset =
        prompt_config::eval::Dataset::for_feature(&fixture.config_dir(), FEATURE).unwrap();
    let cases = dataset.cases.len();
    engine
        .evaluate(
            FEATURE,
            &dataset,
            &prompt_config::eval::EvalOptions::default(),
        )
        .unwrap();
    engine.close();
    let (taken, summary) = from_telemetry(&fixture, &log, &[]);
    assert!(taken.is_empty(), "{taken:?}");
    assert!(
        summary.contains(&format!("{cases} left out made by an evaluation run")),
        "{summary}"
    );
}

#[test]
fn without_record_text_nothing_is_taken() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, false);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let (cases, summary) = from_telemetry(&fixture, &log, &[]);
    assert!(cases.is_empty());
    assert!(
        summary.contains("3 requests of the feature: 0 kept, 3 left out without recorded text"),
        "{summary}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("prompt_config.variables"),
        "variables are text too"
    );
}

#[test]
fn feedback_below_keeps_the_low_rated_request_with_a_judge_rubric_from_its_comment() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    let ids = write_log(&fixture, &log);
    let (cases, summary) = from_telemetry(
        &fixture,
        &log,
        &["--feedback-below", "3", "--feedback-metric", "rating"],
    );
    assert_eq!(cases.len(), 1, "{summary}");
    assert_eq!(cases[0]["metadata"]["request_id"], ids[0]);
    let judge = cases[0]["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|assertion| assertion["type"] == "judge")
        .expect("a judge assertion");
    assert!(
        judge["value"]
            .as_str()
            .unwrap()
            .contains("it ignored my nursing degree"),
        "{judge}"
    );
    assert!(
        summary.contains("2 left out not below --feedback-below"),
        "{summary}"
    );
}

#[test]
fn every_case_asserts_a_complete_answer_and_the_schema_of_structured_versions() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let (cases, _) = from_telemetry(&fixture, &log, &["--limit", "1"]);
    assert_eq!(cases.len(), 1);
    assert_eq!(
        cases[0]["assertions"][0],
        json!({"type": "finish_reason", "value": "stop"})
    );
    assert_eq!(
        cases[0]["assertions"][1],
        json!({"type": "json_schema", "versions": ["2.2.0"]})
    );
}

#[test]
fn output_writes_the_file_and_eval_runs_its_cases() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let dataset = fixture.root.join("regressions.jsonl");
    let (printed, summary) =
        from_telemetry(&fixture, &log, &["--output", dataset.to_str().unwrap()]);
    assert!(printed.is_empty(), "the cases go to the file");
    assert!(summary.contains("regressions.jsonl"), "{summary}");
    let output = run(
        &fixture,
        &[
            "eval",
            FEATURE,
            "--mock",
            "--versions",
            "2.0.0,2.2.0",
            "--dataset",
            dataset.to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("version 2.2.0: passed (3 of 3 cases)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn unreadable_lines_are_skipped_and_counted() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(b"{not json\n\xff\xfe\n");
    std::fs::write(&log, bytes).unwrap();
    let (cases, summary) = from_telemetry(&fixture, &log, &[]);
    assert_eq!(cases.len(), 3);
    assert!(summary.contains("(2 unreadable)"), "{summary}");
}

#[test]
fn a_missing_log_and_an_unknown_feature_are_errors() {
    let fixture = fast_mock_fixture();
    let output = run(
        &fixture,
        &[
            "dataset",
            "from-telemetry",
            "nowhere.jsonl",
            "--feature",
            FEATURE,
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("[io]") && stderr(&output).contains("nowhere.jsonl"));
    let log = log_path(&fixture);
    std::fs::write(&log, "").unwrap();
    let output = run(
        &fixture,
        &[
            "dataset",
            "from-telemetry",
            log.to_str().unwrap(),
            "--feature",
            "nope",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[unknown_feature]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_request_id_in_overlapping_logs_gives_one_case() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    let ids = write_log(&fixture, &log);
    let copy = fixture.root.join("telemetry.jsonl.1");
    std::fs::copy(&log, &copy).unwrap();
    let (cases, summary) = from_telemetry(&fixture, &log, &[copy.to_str().unwrap()]);
    let case_ids: Vec<&str> = cases
        .iter()
        .map(|case| case["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = ids.iter().map(|id| format!("telemetry-{id}")).collect();
    assert_eq!(case_ids, expected);
    assert!(
        summary.contains("3 left out as repeats of an earlier request id"),
        "{summary}"
    );
    let alice = &cases[0];
    assert_eq!(
        alice["metadata"]["feedback"].as_array().unwrap().len(),
        2,
        "the feedback read twice counts once: {alice}"
    );
}

#[test]
fn output_refuses_an_existing_file_and_leaves_it_as_it_was() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let dataset = fixture.root.join("regressions.jsonl");
    std::fs::write(&dataset, "{\"id\": \"kept by hand\"}\n").unwrap();
    let output = run(
        &fixture,
        &[
            "dataset",
            "from-telemetry",
            log.to_str().unwrap(),
            "--feature",
            FEATURE,
            "--output",
            dataset.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("error [io]: --output") && error.contains("the file exists"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(&dataset).unwrap(),
        "{\"id\": \"kept by hand\"}\n"
    );
}

#[test]
fn output_into_a_missing_folder_fails_and_writes_nothing() {
    let fixture = fast_mock_fixture();
    record_text(&fixture, true);
    let log = log_path(&fixture);
    write_log(&fixture, &log);
    let folder = fixture.root.join("no-such-folder");
    let dataset = folder.join("regressions.jsonl");
    let output = run(
        &fixture,
        &[
            "dataset",
            "from-telemetry",
            log.to_str().unwrap(),
            "--feature",
            FEATURE,
            "--output",
            dataset.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot write the file"),
        "{}",
        stderr(&output)
    );
    assert!(!folder.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&fixture.root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
