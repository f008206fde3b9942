//! `prompt-config rollback` and `release` as a user runs them: edits that would change nothing
//! write nothing, edits are refused on a file the engine would refuse, unknown features use the
//! same error kind as `resolve`, and a rollback says whom it reaches.

use std::fs;
use std::process::Output;

use crate::support::cli::{run, stderr, stdout};
use crate::support::fixture::Fixture;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FEATURE: &str = "career_path_navigator";

fn rollback(fixture: &Fixture, to: &str) -> Output {
    run(fixture, &["rollback", FEATURE, "--to", to])
}

fn rollback_json(fixture: &Fixture, to: &str) -> Value {
    let output = run(fixture, &["rollback", FEATURE, "--to", to, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

/// The shipped feature's text with `active_version` written twice, as a bad merge leaves it.
fn write_duplicate_active_version(fixture: &Fixture) {
    let text = fs::read_to_string(fixture.feature_path()).unwrap();
    let text = text.replace(
        r#""active_version": "2.0.0","#,
        "\"active_version\": \"1.0.0\",\n  \"active_version\": \"2.0.0\",",
    );
    fs::write(fixture.feature_path(), text).unwrap();
}

#[test]
fn validate_refuses_a_feature_file_with_active_version_twice() {
    let fixture = Fixture::new();
    write_duplicate_active_version(&fixture);
    let output = run(&fixture, &["validate"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("config/features/career_path_navigator.json: /active_version: duplicate key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn rollback_on_a_file_with_active_version_twice_is_refused_and_writes_nothing() {
    // Before: the first key was rewritten, "2.0.0 -> 1.0.0" printed, and 2.0.0 still served.
    let fixture = Fixture::new();
    write_duplicate_active_version(&fixture);
    let before = fs::read(fixture.feature_path()).unwrap();
    let output = rollback(&fixture, "1.0.0");
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(message.contains("error [config_invalid]"), "{message}");
    assert!(
        message.contains("/active_version: duplicate key"),
        "{message}"
    );
    assert_eq!(fs::read(fixture.feature_path()).unwrap(), before);
}

#[test]
fn rollback_to_the_active_version_says_so_and_leaves_the_file_untouched() {
    let fixture = Fixture::new();
    let path = fixture.feature_path();
    let bytes = fs::read(&path).unwrap();
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let output = rollback(&fixture, "2.0.0");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("career_path_navigator: active_version is already 2.0.0; nothing changed"),
        "{text}"
    );
    assert!(!text.contains("2.0.0 -> 2.0.0"), "{text}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
}

#[test]
fn rollback_json_reports_an_unchanged_edit_as_data() {
    let fixture = Fixture::new();
    let outcome = rollback_json(&fixture, "2.0.0");
    assert_eq!(outcome["changed"], json!(false));
    assert_eq!(outcome["before"], "2.0.0");
    assert_eq!(outcome["after"], "2.0.0");
    assert_eq!(outcome["pointer"], "/active_version");
}

#[test]
fn rollback_to_the_active_version_of_a_broken_config_still_fails() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["model"]["name"] = json!("gpt-0"));
    let output = rollback(&fixture, "2.0.0");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("/model/name"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn rollback_of_an_unknown_feature_is_unknown_feature_like_resolve() {
    let fixture = Fixture::new();
    let output = run(&fixture, &["rollback", "nope", "--to", "2.0.0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error [unknown_feature]: unknown feature \"nope\""),
        "{}",
        stderr(&output)
    );
    let output = run(&fixture, &["release", "nope", "3.1.0"]);
    assert!(stderr(&output).starts_with("error [unknown_feature]"));
}

#[test]
fn a_feature_name_cannot_reach_outside_the_features_directory() {
    let fixture = Fixture::new();
    let before = fs::read(fixture.config_dir().join("providers.json")).unwrap();
    let output = run(&fixture, &["rollback", "../providers", "--to", "1.0.0"]);
    assert!(stderr(&output).starts_with("error [unknown_feature]"));
    assert_eq!(
        fs::read(fixture.config_dir().join("providers.json")).unwrap(),
        before
    );
}

#[test]
fn rollback_names_the_experiment_rule_and_rollout_that_still_take_precedence() {
    let fixture = Fixture::new();
    let output = rollback(&fixture, "1.0.0");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("career_path_navigator: active_version 2.0.0 -> 1.0.0 in "),
        "{text}"
    );
    assert_eq!(
        lines[1],
        "reach: 63% to 90% of subjects matching no versioned rule (pinned requests excepted)"
    );
    assert_eq!(lines[2], "still taking precedence for their users:");
    assert_eq!(
        lines[3],
        r#"  experiment cpn-json-output: 30% of subjects where {"sector":{"$ne":"healthcare"}}, serving 2.0.0, 2.2.0"#
    );
    assert_eq!(
        lines[4],
        r#"  rule healthcare-careful-model: every one of the subjects where {"sector":"healthcare"}, serving 2.0.0"#
    );
    assert_eq!(lines[5], "  rollout 3.0.0: 10% of subjects");
}

#[test]
fn rollback_json_carries_the_reach_as_data() {
    let fixture = Fixture::new();
    let outcome = rollback_json(&fixture, "1.0.0");
    assert_eq!(outcome["changed"], json!(true));
    assert_eq!(outcome["before"], "2.0.0");
    let reach = &outcome["reach"];
    assert!(
        (reach["share_min"].as_f64().unwrap() - 0.63).abs() < 1e-9,
        "{reach}"
    );
    assert!(
        (reach["share_max"].as_f64().unwrap() - 0.9).abs() < 1e-9,
        "{reach}"
    );
    let kinds: Vec<&str> = reach["precedence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["experiment", "rule", "rollout"]);
    assert_eq!(reach["precedence"][0]["share"], json!(0.3));
    assert_eq!(reach["precedence"][2]["share"], json!(0.1));
}

#[test]
fn rollback_of_a_feature_with_nothing_in_front_reaches_everyone() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let document = document.as_object_mut().unwrap();
        for key in ["experiments", "rules", "rollout"] {
            document.remove(key);
        }
    });
    let output = rollback(&fixture, "1.0.0");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(
            "reach: 100% of subjects matching no versioned rule (pinned requests excepted)\n\
             nothing else takes precedence"
        ),
        "{}",
        stdout(&output)
    );
}

#[test]
fn experiments_sharing_a_namespace_add_up_and_a_rule_without_version_follows() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let mut second = document["experiments"][0].clone();
        second["key"] = json!("cpn-second");
        second["namespace"]["start"] = json!(0.6);
        second["namespace"]["end"] = json!(1.0);
        second["coverage"] = json!(1.0);
        second.as_object_mut().unwrap().remove("condition");
        document["experiments"].as_array_mut().unwrap().push(second);
        document["rules"][0]
            .as_object_mut()
            .unwrap()
            .remove("version");
        document["rollout"]["percentage"] = json!(0);
    });
    let reach = &rollback_json(&fixture, "1.0.0")["reach"];
    // One namespace: 30% + 40% of subjects who meet both conditions, 40% for the others.
    assert!(
        (reach["share_min"].as_f64().unwrap() - 0.3).abs() < 1e-9,
        "{reach}"
    );
    assert!(
        (reach["share_max"].as_f64().unwrap() - 0.6).abs() < 1e-9,
        "{reach}"
    );
    assert_eq!(
        reach["following_rules"],
        json!(["healthcare-careful-model"])
    );
}

#[test]
fn rollback_keeps_a_utf8_byte_order_mark_and_changes_only_the_value() {
    let fixture = Fixture::new();
    let original = fs::read(fixture.feature_path()).unwrap();
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(&original);
    fs::write(fixture.feature_path(), &with_bom).unwrap();
    let output = rollback(&fixture, "1.0.0");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let after = fs::read(fixture.feature_path()).unwrap();
    assert!(after.starts_with(b"\xEF\xBB\xBF"));
    let expected = String::from_utf8(with_bom).unwrap().replace(
        r#""active_version": "2.0.0","#,
        r#""active_version": "1.0.0","#,
    );
    assert_eq!(String::from_utf8(after).unwrap(), expected);
}

#[test]
fn release_prints_what_it_recorded_and_json_names_the_status_pointer() {
    let fixture = Fixture::new();
    let output = run(&fixture, &["release", FEATURE, "3.1.0", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let outcome: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outcome["pointer"], "/versions/3.1.0/status");
    assert_eq!(outcome["after"], "released");
    assert!(outcome.get("reach").is_none());
}

/// Declares on the draft 3.1.0 an output schema in the file `answer.schema.json`, one tool and
/// a `tool_choice`, as a version about to be released would.
fn declare_output_and_tools_on_the_draft(fixture: &Fixture) {
    let parameters = json!({
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "additionalProperties": false
    });
    fs::write(
        fixture.prompt_path("3.1.0", "answer.schema.json"),
        serde_json::to_string_pretty(&parameters).unwrap(),
    )
    .unwrap();
    fixture.edit_feature(|document| {
        let version = &mut document["versions"]["3.1.0"];
        version["output"] = json!({"name": "answer", "schema": "answer.schema.json"});
        version["tools"] = json!([{"name": "search_jobs", "parameters": parameters}]);
        version["tool_choice"] = json!("required");
    });
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn release_records_the_hashes_of_the_output_schema_file_and_of_each_declaration() {
    let fixture = Fixture::new();
    declare_output_and_tools_on_the_draft(&fixture);
    let output = run(&fixture, &["release", FEATURE, "3.1.0"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document = fixture.read_json(&fixture.feature_path());
    let hashes = document["versions"]["3.1.0"]["sha256"].as_object().unwrap();
    let keys: Vec<&str> = hashes.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "system.j2",
            "user.j2",
            "assistant_example.j2",
            "answer.schema.json",
            "output",
            "tool_choice",
            "tools"
        ]
    );
    let schema_bytes = fs::read(fixture.prompt_path("3.1.0", "answer.schema.json")).unwrap();
    assert_eq!(hashes["answer.schema.json"], sha256_hex(&schema_bytes));
    // SHA-256 of the canonical JSON (keys sorted) of the declaration, with `repair` defaulted.
    let canonical_output = r#"{"name":"answer","repair":true,"schema":"answer.schema.json"}"#;
    assert_eq!(hashes["output"], sha256_hex(canonical_output.as_bytes()));
    assert_eq!(hashes["tool_choice"], sha256_hex(br#""required""#));
    let validate = run(&fixture, &["validate"]);
    assert_eq!(validate.status.code(), Some(0), "{}", stderr(&validate));
}

#[test]
fn a_schema_file_changed_after_its_release_fails_validation_as_an_integrity_problem() {
    let fixture = Fixture::new();
    declare_output_and_tools_on_the_draft(&fixture);
    let output = run(&fixture, &["release", FEATURE, "3.1.0"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let path = fixture.prompt_path("3.1.0", "answer.schema.json");
    let text = fs::read_to_string(&path).unwrap() + "\n";
    fs::write(&path, text).unwrap();
    let validate = run(&fixture, &["validate"]);
    assert_eq!(validate.status.code(), Some(1));
    let message = stderr(&validate);
    assert!(
        message.contains("/versions/3.1.0/sha256/answer.schema.json")
            && message.contains("answer.schema.json changed after release"),
        "{message}"
    );
}

#[test]
fn a_tool_declaration_changed_after_its_release_fails_validation_as_an_integrity_problem() {
    let fixture = Fixture::new();
    declare_output_and_tools_on_the_draft(&fixture);
    let output = run(&fixture, &["release", FEATURE, "3.1.0"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    fixture.edit_feature(|document| {
        document["versions"]["3.1.0"]["tools"][0]["description"] = json!("Searches job ads.")
    });
    let validate = run(&fixture, &["validate"]);
    assert_eq!(validate.status.code(), Some(1));
    let message = stderr(&validate);
    assert!(
        message.contains("/versions/3.1.0/sha256/tools")
            && message.contains("the tools declaration of 3.1.0 changed after release"),
        "{message}"
    );
}
