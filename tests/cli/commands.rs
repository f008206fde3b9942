//! The `prompt-config` command line: exit codes, output, and the file edits of release and
//! rollback.

use std::fs;
use std::process::Command;

use crate::support::cli::{PROFILE, run, stderr, stdout};
use crate::support::fixture::Fixture;
use serde_json::Value;

#[test]
fn validate_prints_a_one_line_summary_and_exits_zero() {
    let fixture = Fixture::new();
    let output = run(&fixture, &["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.starts_with("ok: 2 features, 7 versions, 1 running experiment"),
        "{text}"
    );
}

#[test]
fn validate_lists_every_problem_and_exits_one() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["active_version"] = Value::from("7.0.0");
        document["fallbacks"][0]["name"] = Value::from("claude-0");
    });
    let output = run(&fixture, &["validate"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(
            "config/features/career_path_navigator.json: /active_version: unknown version"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "config/features/career_path_navigator.json: /fallbacks/0/name: unknown model"
        ),
        "{text}"
    );
}

#[test]
fn directories_come_from_the_environment_when_not_given() {
    let fixture = Fixture::new();
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-config"))
        .arg("validate")
        .current_dir(std::env::temp_dir())
        .env("PROMPT_CONFIG_DIR", fixture.config_dir())
        .env("PROMPT_PROMPTS_DIR", fixture.prompts_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn flags_override_the_environment() {
    let fixture = Fixture::new();
    let config = fixture.config_dir();
    let prompts = fixture.prompts_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-config"))
        .args([
            "validate",
            "--config",
            config.to_str().unwrap(),
            "--prompts",
            prompts.to_str().unwrap(),
        ])
        .env("PROMPT_CONFIG_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn resolve_json_prints_one_object_with_the_documented_fields() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "resolve",
            "career_path_navigator",
            "--user",
            "42",
            "--attr",
            "sector=healthcare",
            "--vars",
            PROFILE,
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    for field in [
        "feature",
        "version",
        "source",
        "experiment",
        "variant",
        "bucket",
        "model",
        "fallbacks",
        "messages",
        "prompt_hash",
    ] {
        assert!(value.get(field).is_some(), "{field} missing");
    }
    assert_eq!(value["source"], "rule");
    assert_eq!(value["model"]["provider"], "anthropic");
}

#[test]
fn resolve_takes_variables_one_by_one_with_json_values() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "resolve",
            "career_path_navigator",
            "--user=7",
            "--version",
            "2.0.0",
            "--var",
            "current_role=Data Analyst",
            "--var",
            "degree=BSc",
            "--var",
            r#"skills=["SQL","Python"]"#,
            "--var",
            "sector=tech",
            "--var",
            "goals=lead",
            "--var",
            "years_experience=4",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("career_path_navigator 2.0.0 (pinned)"),
        "{text}"
    );
    assert!(
        text.contains("- Skills: SQL, Python") && text.contains("- Years of experience: 4"),
        "{text}"
    );
}

#[test]
fn resolve_with_missing_variables_names_them_and_exits_one() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "resolve",
            "career_path_navigator",
            "--user",
            "1",
            "--var",
            "degree=BSc",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("[missing_variable]")
            && text.contains("current_role")
            && text.contains("goals"),
        "{text}"
    );
}

#[test]
fn usage_mistakes_exit_two() {
    let fixture = Fixture::new();
    assert_eq!(
        run(&fixture, &["resolve", "career_path_navigator"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&fixture, &["validate", "--colour"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&fixture, &["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&fixture, &[]).status.code(), Some(2));
}

#[test]
fn rollback_changes_only_the_active_version_line() {
    let fixture = Fixture::new();
    let before = fs::read_to_string(fixture.feature_path()).unwrap();
    let output = run(
        &fixture,
        &["rollback", "career_path_navigator", "--to", "1.0.0"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("active_version 2.0.0 -> 1.0.0"));
    let after = fs::read_to_string(fixture.feature_path()).unwrap();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(old, new)| old != new)
        .collect();
    assert_eq!(
        changed,
        [(
            r#"  "active_version": "2.0.0","#,
            r#"  "active_version": "1.0.0","#
        )]
    );
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(run(&fixture, &["validate"]).status.code(), Some(0));
}

#[test]
fn rollback_to_a_draft_is_refused_and_leaves_the_file_alone() {
    let fixture = Fixture::new();
    let before = fs::read(fixture.feature_path()).unwrap();
    let output = run(
        &fixture,
        &["rollback", "career_path_navigator", "--to", "3.1.0"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("draft"));
    assert_eq!(fs::read(fixture.feature_path()).unwrap(), before);
}

#[test]
fn rollback_to_an_unknown_version_is_refused() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &["rollback", "career_path_navigator", "--to", "0.9.0"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no version \"0.9.0\""));
}

#[test]
fn rollback_is_refused_when_the_rest_of_the_config_is_broken() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["model"]["name"] = Value::from("gpt-0"));
    let before = fs::read(fixture.feature_path()).unwrap();
    let output = run(
        &fixture,
        &["rollback", "career_path_navigator", "--to", "1.0.0"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("/model/name"));
    assert_eq!(fs::read(fixture.feature_path()).unwrap(), before);
}

#[test]
fn release_freezes_a_draft_with_the_hashes_of_its_files() {
    let fixture = Fixture::new();
    let before = fs::read_to_string(fixture.feature_path()).unwrap();
    let output = run(&fixture, &["release", "career_path_navigator", "3.1.0"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let document = fixture.read_json(&fixture.feature_path());
    let version = &document["versions"]["3.1.0"];
    assert_eq!(version["status"], "released");
    assert!(version["released_at"].as_str().unwrap().ends_with('Z'));
    let recorded = version["sha256"]["assistant_example.j2"].as_str().unwrap();
    let bytes = fs::read(fixture.prompt_path("3.1.0", "assistant_example.j2")).unwrap();
    assert_eq!(recorded, prompt_config::prompt::sha256_hex(&bytes));

    // Everything before the edited version is byte for byte the same.
    let after = fs::read_to_string(fixture.feature_path()).unwrap();
    let prefix = &before[..before.find("\"3.1.0\": {").unwrap()];
    assert!(after.starts_with(prefix));
    assert_eq!(run(&fixture, &["validate"]).status.code(), Some(0));

    // Released means immutable from now on.
    fs::write(fixture.prompt_path("3.1.0", "system.j2"), "changed\n").unwrap();
    let output = run(&fixture, &["validate"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[prompt_integrity]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn release_of_a_released_version_is_refused() {
    let fixture = Fixture::new();
    let output = run(&fixture, &["release", "career_path_navigator", "2.0.0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already released"));
}

#[test]
fn complete_with_mock_prints_the_completion_as_json() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "complete",
            "career_path_navigator",
            "--user",
            "42",
            "--attr",
            "sector=retail",
            "--vars",
            PROFILE,
            "--mock",
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(value["text"].as_str().unwrap().contains("[mock"));
    for field in [
        "provider",
        "model",
        "usage",
        "cost_usd",
        "latency_ms",
        "request_id",
        "attempts",
        "resolution",
    ] {
        assert!(value.get(field).is_some(), "{field} missing");
    }
    assert_eq!(value["attempts"][0]["outcome"], "success");
}

#[test]
fn complete_without_api_keys_fails_naming_the_missing_key_and_sends_nothing() {
    let fixture = Fixture::new();
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-config"))
        .args([
            "complete",
            "career_path_navigator",
            "--user",
            "42",
            "--vars",
            PROFILE,
        ])
        .current_dir(&fixture.root)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("PROMPT_CONFIG_DIR")
        .env_remove("PROMPT_PROMPTS_DIR")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("[missing_api_key]"), "{text}");
    assert!(
        text.contains("ANTHROPIC_API_KEY") && text.contains("OPENAI_API_KEY"),
        "{text}"
    );
}

#[test]
fn demo_stages_the_outage_and_the_budget_and_prints_the_table() {
    let fixture = Fixture::new();
    let output = run(&fixture, &["demo", "--requests", "120"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "circuit openai: closed -> open (consecutive_failures)",
        "circuit openai: half_open -> open (probe_failed)",
        "circuit openai: half_open -> closed (probe_succeeded)",
        "budget feature:career_path_navigator day at 100%",
        "120/120",
        "p50",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.lines().any(|line| line.starts_with("anthropic ")),
        "{text}"
    );
}
