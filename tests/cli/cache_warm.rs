//! `prompt-config cache warm` (issue 11): what it reports (stored, not stored), when it fails,
//! its one JSON object, and how it reads the inputs file.

use std::fs;

use serde_json::{Value, json};

use super::cache::{cached_fixture, json_of, line, warm, write_inputs};
use crate::support::cli::{run, stderr, stdout};
use crate::support::fixture::Fixture;

#[test]
fn warm_json_with_a_failing_line_prints_exactly_one_object_holding_the_error_and_the_report() {
    let fixture = cached_fixture();
    let inputs = write_inputs(
        &fixture,
        &[
            line("1", "Nurse"),
            json!({"user": "2", "variables": {}}).to_string(),
        ],
    );
    let output = warm(&fixture, &inputs, &["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    // json_of parses the whole of stdout: a second object would fail it.
    let error = json_of(&output)["error"].clone();
    assert_eq!(error["kind"], "missing_variable", "{error}");
    assert_eq!(error["details"]["completed"], 1, "{error}");
    assert_eq!(error["details"]["failed"], 1, "{error}");
    assert!(
        error["details"]["failures"][0]
            .as_str()
            .is_some_and(|failure| failure.contains("inputs.jsonl:2: [missing_variable]")),
        "{error}"
    );
}

#[test]
fn warm_reports_how_many_answers_were_stored() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), line("2", "Astronaut")]);
    let output = warm(&fixture, &inputs, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["stored"], 2, "{report}");
    assert_eq!(report["not_stored"], 0, "{report}");
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
}

/// The trial's example: an unreachable Redis stored nothing, yet warm said 8 completed, exit 0.
#[test]
fn warm_fails_when_redis_is_unreachable_and_nothing_was_stored() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), line("2", "Astronaut")]);
    let output = warm(
        &fixture,
        &inputs,
        &["--redis", "redis://127.0.0.1:1/", "--json"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let error = json_of(&output)["error"].clone();
    assert_eq!(error["kind"], "state_unavailable", "{error}");
    assert!(
        error["message"].as_str().is_some_and(|message| message
            .contains("nothing was stored in the redis cache")
            && message.contains("Redis unreachable or degraded")),
        "{error}"
    );
    assert_eq!(error["details"]["stored"], 0, "{error}");
    assert_eq!(error["details"]["store_failed"], 2, "{error}");
}

#[test]
fn warm_of_a_feature_without_a_cache_fails_saying_nothing_was_stored() {
    let fixture = Fixture::new();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse")]);
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("nothing was stored in the memory cache")
            && stderr(&output).contains("without an enabled `cache`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn warm_warns_on_stderr_when_some_answers_were_not_stored() {
    let fixture = cached_fixture();
    fixture.edit_feature(|feature| {
        feature["versions"]["1.0.0"]["cache"] = json!({"enabled": false});
    });
    let mut pinned: Value = serde_json::from_str(&line("2", "Nurse")).unwrap();
    pinned["version"] = "1.0.0".into();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), pinned.to_string()]);
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 stored, 1 not stored"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("warning: 1 of 2 answers were not stored"),
        "{}",
        stderr(&output)
    );
}

/// The trial's example: `cache warm nosuch` printed one `[unknown_feature]` per line.
#[test]
fn warm_of_an_unknown_feature_fails_once_before_reading_the_inputs() {
    let fixture = cached_fixture();
    // Not even a file: the feature is checked first.
    let missing = fixture.root.join("missing.jsonl").display().to_string();
    let output = run(
        &fixture,
        &["cache", "warm", "nosuch", "--inputs", &missing, "--mock"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).matches("[unknown_feature]").count(),
        1,
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
}

#[test]
fn warm_of_an_unknown_feature_with_json_names_the_known_ones() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), line("2", "Nurse")]);
    let output = run(
        &fixture,
        &[
            "cache", "warm", "nosuch", "--inputs", &inputs, "--mock", "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = json_of(&output)["error"].clone();
    assert_eq!(error["kind"], "unknown_feature", "{error}");
    assert_eq!(
        error["details"]["known"][0], "career_path_navigator",
        "{error}"
    );
}

/// The trial's example: a UTF-8 BOM on line 1 was `invalid JSON`; config files accept one.
#[test]
fn an_inputs_file_starting_with_a_bom_is_read() {
    let fixture = cached_fixture();
    let path = fixture.root.join("inputs.jsonl");
    fs::write(&path, format!("\u{FEFF}{}\n", line("1", "Nurse"))).unwrap();
    let inputs = path.display().to_string();
    let output = warm(&fixture, &inputs, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json_of(&output)["stored"], 1);
}

#[test]
fn a_bom_after_the_first_line_is_still_invalid_json_named_by_line() {
    let fixture = cached_fixture();
    let path = fixture.root.join("inputs.jsonl");
    let text = format!("{}\n\u{FEFF}{}\n", line("1", "Nurse"), line("2", "Nurse"));
    fs::write(&path, text).unwrap();
    let output = warm(&fixture, &path.display().to_string(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("inputs.jsonl:2: invalid JSON"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_inputs_file_is_a_usage_error_naming_the_argument_like_a_folder() {
    let fixture = cached_fixture();
    for path in [fixture.root.join("missing.jsonl"), fixture.root.clone()] {
        let output = warm(&fixture, &path.display().to_string(), &["--json"]);
        assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
        let error = json_of(&output)["error"].clone();
        assert_eq!(error["kind"], "invalid_argument", "{error}");
        assert_eq!(error["details"]["argument"], "--inputs", "{error}");
    }
}

/// Trial 2, finding 4: `cache warm` refused `"user_id"` (which `load` and the library read)
/// with a misleading `"user" must be a non-empty string or a number`.
#[test]
fn an_inputs_line_may_name_its_user_as_user_id() {
    let fixture = cached_fixture();
    let mut by_user_id: Value = serde_json::from_str(&line("7", "Nurse")).unwrap();
    let user = by_user_id.as_object_mut().unwrap().remove("user").unwrap();
    by_user_id["user_id"] = user;
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), by_user_id.to_string()]);
    let output = warm(&fixture, &inputs, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json_of(&output)["completed"], 2);
}

/// Trial 2, finding 4: `cache warm` refused `"user": ""`, which `load` and `complete --user ""`
/// accept.
#[test]
fn an_empty_user_is_a_user_as_complete_has_it() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[line("", "Nurse")]);
    let output = warm(&fixture, &inputs, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json_of(&output)["completed"], 1);
}

#[test]
fn a_line_with_both_user_and_user_id_is_a_usage_error_saying_give_one() {
    let fixture = cached_fixture();
    let mut both: Value = serde_json::from_str(&line("1", "Nurse")).unwrap();
    both["user_id"] = json!(1);
    let inputs = write_inputs(&fixture, &[both.to_string()]);
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(r#"--inputs "#)
            && stderr(&output).contains(r#"inputs.jsonl:1: both "user_id" and "user" given"#),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_line_without_a_user_names_both_spellings() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[json!({"variables": {}}).to_string()]);
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(r#"inputs.jsonl:1: "user_id" (or "user") is missing"#),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_line_that_is_not_utf8_names_the_file_and_line() {
    let fixture = cached_fixture();
    let path = fixture.root.join("inputs.jsonl");
    let mut bytes = format!("{}\n", line("1", "Nurse")).into_bytes();
    bytes.extend_from_slice(b"{\"user\": \"caf\xe9\"}\n");
    fs::write(&path, bytes).unwrap();
    let output = warm(&fixture, &path.display().to_string(), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("inputs.jsonl:2: cannot read: not UTF-8"),
        "{}",
        stderr(&output)
    );
}
