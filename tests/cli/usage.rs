//! The command line helps: `--help`/`-h` on every command with examples, `--version`, exact
//! usage errors (exit 2), shell completions, plurals, and JSON errors and numbers with `--json`.

use std::fs;

use crate::support::cli::{PROFILE, run_in, stderr, stdout};
use crate::support::fixture::Fixture;
use serde_json::Value;

const COMMANDS: &[&str] = &[
    "validate",
    "resolve",
    "complete",
    "demo",
    "stats",
    "release",
    "rollback",
    "completions",
];

#[test]
fn help_and_h_work_on_every_command_and_show_examples() {
    let fixture = Fixture::new();
    for command in COMMANDS {
        for flag in ["--help", "-h"] {
            let output = run_in(&fixture.root, &[command, &flag]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{command} {flag}: {}",
                stderr(&output)
            );
            let text = stdout(&output);
            assert!(
                text.contains("Usage: prompt-config"),
                "{command} {flag}: {text}"
            );
            assert!(
                text.contains("prompt-config {command}") || text.contains("Example"),
                "{command} {flag} has no example: {text}"
            );
        }
    }
}

#[test]
fn top_level_help_lists_every_command() {
    let fixture = Fixture::new();
    for words in [&["--help"][..], &["-h"], &["help"]] {
        let output = run_in(&fixture.root, words);
        assert_eq!(output.status.code(), Some(0), "{words:?}");
        let text = stdout(&output);
        for command in COMMANDS {
            assert!(text.contains(command), "{words:?} lacks {command}: {text}");
        }
    }
}

#[test]
fn help_of_a_subcommand_through_the_help_command() {
    let fixture = Fixture::new();
    let output = run_in(&fixture.root, &["help", "resolve"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).contains("--attrs <JSON>"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn version_prints_the_crate_version() {
    let fixture = Fixture::new();
    let output = run_in(&fixture.root, &["--version"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        format!("prompt-config {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn resolve_still_takes_version_as_a_pin() {
    let fixture = Fixture::new();
    let output = run_in(
        &fixture.root,
        &[
            "resolve",
            "career_path_navigator",
            "--user",
            "7",
            "--vars",
            PROFILE,
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("career_path_navigator 1.0.0 (pinned)"));
}

#[test]
fn rollback_with_the_version_but_without_to_says_to_is_required() {
    let fixture = Fixture::new();
    let output = run_in(
        &fixture.root,
        &["rollback", "career_path_navigator", "1.0.0"],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("--to <VERSION> is required"), "{text}");
    assert!(
        text.contains("rollback career_path_navigator --to 1.0.0"),
        "{text}"
    );
}

#[test]
fn rollback_without_any_version_names_the_missing_to() {
    let fixture = Fixture::new();
    let output = run_in(&fixture.root, &["rollback", "career_path_navigator"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("required arguments were not provided") && text.contains("--to <VERSION>"),
        "{text}"
    );
}

#[test]
fn release_without_a_version_names_the_missing_argument() {
    let fixture = Fixture::new();
    let output = run_in(&fixture.root, &["release", "career_path_navigator"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("<VERSION>"), "{}", stderr(&output));
}

#[test]
fn a_misspelt_option_is_refused_with_a_suggestion() {
    let fixture = Fixture::new();
    let output = run_in(
        &fixture.root,
        &["resolve", "career_path_navigator", "--usr", "1"],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("unexpected argument '--usr'") && text.contains("--user"),
        "{text}"
    );
}

#[test]
fn validate_says_one_rule_not_one_rules() {
    let fixture = Fixture::new();
    let output = run_in(&fixture.root, &["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(", 1 rule, 1 rollout, 3 providers"), "{text}");
    assert!(text.contains("7 versions"), "{text}");
}

#[test]
fn validate_uses_the_plural_for_two_rules() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let mut second = document["rules"][0].clone();
        second["name"] = Value::from("second-rule");
        document["rules"].as_array_mut().unwrap().push(second);
    });
    let output = run_in(&fixture.root, &["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(", 2 rules,"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn completions_print_a_script_for_each_shell() {
    let fixture = Fixture::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef prompt-config"),
        ("fish", "complete -c prompt-config"),
    ] {
        let output = run_in(&fixture.root, &["completions", shell]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(
            text.contains(marker) && text.contains("rollback"),
            "{shell}: {text}"
        );
    }
    assert_eq!(
        run_in(&fixture.root, &["completions", "tcsh"])
            .status
            .code(),
        Some(2)
    );
}

/// Writes a small telemetry log with one request, attributes included.
fn telemetry_log(fixture: &Fixture) -> String {
    let output = run_in(
        &fixture.root,
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
            "--telemetry",
            "t.jsonl",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    "t.jsonl".to_string()
}

#[test]
fn stats_by_an_unknown_key_is_an_invalid_argument() {
    let fixture = Fixture::new();
    let log = telemetry_log(&fixture);
    let output = run_in(&fixture.root, &["stats", &log, "--by", "bogus"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with("error [invalid_argument]: --by \"bogus\" is not a dimension"),
        "{text}"
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn stats_by_a_misspelt_dimension_among_good_ones_is_refused() {
    let fixture = Fixture::new();
    let log = telemetry_log(&fixture);
    let output = run_in(&fixture.root, &["stats", &log, "--by", "feature,modle"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("\"modle\""), "{}", stderr(&output));
}

#[test]
fn stats_by_an_attribute_the_requests_carry_is_a_column() {
    let fixture = Fixture::new();
    let log = telemetry_log(&fixture);
    let output = run_in(&fixture.root, &["stats", &log, "--by", "sector"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output)
            .lines()
            .any(|line| line.starts_with("retail ")),
        "{}",
        stdout(&output)
    );
}

fn json_error(output: &std::process::Output) -> Value {
    let value: Value = serde_json::from_str(&stdout(output))
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", stdout(output)));
    let error = &value["error"];
    assert!(
        error["kind"].is_string() && error["message"].is_string() && error.get("details").is_some(),
        "{value}"
    );
    value
}

#[test]
fn with_json_a_library_error_is_json_on_stdout() {
    let fixture = Fixture::new();
    let output = run_in(&fixture.root, &["resolve", "nope", "--user", "1", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let value = json_error(&output);
    assert_eq!(value["error"]["kind"], "unknown_feature");
    assert_eq!(value["error"]["details"]["feature"], "nope");
    assert_eq!(stderr(&output), "");
}

#[test]
fn with_json_a_usage_error_is_json_too() {
    let fixture = Fixture::new();
    let output = run_in(
        &fixture.root,
        &["resolve", "career_path_navigator", "--json"],
    );
    assert_eq!(output.status.code(), Some(2));
    let value = json_error(&output);
    assert_eq!(value["error"]["kind"], "usage");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--user <ID>"),
        "{value}"
    );
}

#[test]
fn with_json_a_stats_error_is_json_with_its_kind() {
    let fixture = Fixture::new();
    let log = telemetry_log(&fixture);
    let output = run_in(&fixture.root, &["stats", &log, "--by", "bogus", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let value = json_error(&output);
    assert_eq!(value["error"]["kind"], "invalid_argument");
    assert_eq!(value["error"]["details"]["value"], "bogus");

    let output = run_in(&fixture.root, &["stats", "missing.jsonl", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_error(&output)["error"]["kind"], "io");
}

#[test]
fn json_numbers_have_no_floating_point_noise() {
    let fixture = Fixture::new();
    let line = |id: &str, latency: f64, cost: f64| {
        format!(
            r#"{{"event":"llm.request","timestamp":"2026-11-27T10:00:00Z","request_id":"{id}","gen_ai.prompt.name":"f","gen_ai.prompt.version":"1.0.0","prompt_config.outcome":"success","prompt_config.latency_ms":{latency},"prompt_config.cost_usd":{cost}}}"#
        )
    };
    // 0.1 + 0.2 is 0.30000000000000004 in binary floating point; 1684 + 1e-13 is the issue's
    // 1684.0000000000002.
    let log = [
        line("a", 0.1, 0.1),
        line("b", 0.2, 0.2),
        line("c", 1684.0000000000002, 0.0),
    ]
    .join("\n");
    fs::write(fixture.root.join("noise.jsonl"), log).unwrap();
    let output = run_in(
        &fixture.root,
        &["stats", "noise.jsonl", "--by", "feature", "--json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("0000000"), "{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    let group = &value["groups"][0];
    assert_eq!(group["cost_usd"], 0.3, "{group}");
    assert_eq!(group["latency_ms"]["p99"], 1684.0, "{group}");
}

#[test]
fn completion_json_keeps_milliseconds_to_three_decimals() {
    let fixture = Fixture::new();
    let output = run_in(
        &fixture.root,
        &[
            "complete",
            "career_path_navigator",
            "--user",
            "42",
            "--vars",
            PROFILE,
            "--mock",
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let latency = value["latency_ms"].as_f64().unwrap();
    assert_eq!((latency * 1000.0).round() / 1000.0, latency);
}

#[test]
fn a_negative_user_id_is_a_value_not_an_option() {
    let fixture = Fixture::new();
    let resolve = |user: &[&str]| {
        let mut args = vec!["resolve", "career_path_navigator"];
        args.extend(user);
        args.extend(["--vars", PROFILE, "--json"]);
        let output = run_in(&fixture.root, &args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let mut resolution: Value = serde_json::from_str(&stdout(&output)).unwrap();
        resolution["request_id"] = Value::Null;
        resolution
    };
    assert_eq!(resolve(&["--user", "-1"]), resolve(&["--user=-1"]));
}
