//! `--attr NAME=VALUE` values are strings, always; `--attrs JSON` gives typed values; `--attr`
//! wins over `--attrs` for the same name.

use crate::support::cli::{PROFILE, run_in, stderr, stdout};
use crate::support::fixture::Fixture;
use serde_json::{Value, json};

/// The shipped targeting rule, with `condition` instead of `sector: healthcare`.
fn fixture_with_rule_condition(condition: Value) -> Fixture {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["rules"][0]["condition"] = condition);
    fixture
}

/// Resolves for user 42 (whom the shipped rule catches when it matches) and returns the JSON.
fn resolve(fixture: &Fixture, extra: &[&str]) -> Value {
    let mut args = vec![
        "resolve",
        "career_path_navigator",
        "--user",
        "42",
        "--vars",
        PROFILE,
        "--json",
    ];
    args.extend(extra);
    let output = run_in(&fixture.root, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

#[test]
fn attr_app_version_1_10_stays_a_version_string_and_passes_vgte() {
    let fixture = fixture_with_rule_condition(json!({"app_version": {"$vgte": "1.9.0"}}));
    let resolution = resolve(&fixture, &["--attr", "app_version=1.10"]);
    assert_eq!(resolution["source"], "rule", "{resolution}");
    assert_eq!(resolution["rule"], "healthcare-careful-model");
}

#[test]
fn attr_tier_2_is_the_string_2_not_a_number() {
    let fixture = fixture_with_rule_condition(json!({"tier": {"$type": "string"}}));
    let resolution = resolve(&fixture, &["--attr", "tier=2"]);
    assert_eq!(resolution["source"], "rule", "{resolution}");
}

#[test]
fn attrs_json_gives_typed_values() {
    let fixture = fixture_with_rule_condition(json!({"tier": {"$type": "number"}, "beta": true}));
    let resolution = resolve(&fixture, &["--attrs", r#"{"beta": true, "tier": 2}"#]);
    assert_eq!(resolution["source"], "rule", "{resolution}");
}

#[test]
fn attr_wins_over_attrs_for_the_same_name() {
    let fixture = Fixture::new();
    let resolution = resolve(
        &fixture,
        &[
            "--attrs",
            r#"{"sector": "retail"}"#,
            "--attr",
            "sector=healthcare",
        ],
    );
    assert_eq!(resolution["source"], "rule", "{resolution}");
    let resolution = resolve(
        &fixture,
        &[
            "--attr",
            "sector=healthcare",
            "--attrs",
            r#"{"sector": "retail"}"#,
        ],
    );
    assert_eq!(
        resolution["source"], "rule",
        "order on the line does not matter: {resolution}"
    );
}

#[test]
fn attrs_that_are_not_an_object_are_a_usage_error_naming_the_option() {
    let fixture = Fixture::new();
    for bad in ["[1, 2]", "{not json"] {
        let output = run_in(
            &fixture.root,
            &[
                "resolve",
                "career_path_navigator",
                "--user",
                "1",
                "--attrs",
                bad,
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&output).contains("--attrs must be a JSON object"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn attr_without_a_name_is_a_usage_error() {
    let fixture = Fixture::new();
    for bad in ["sector", "=healthcare"] {
        let output = run_in(
            &fixture.root,
            &[
                "resolve",
                "career_path_navigator",
                "--user",
                "1",
                "--attr",
                bad,
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&output).contains("--attr expects NAME=VALUE"),
            "{}",
            stderr(&output)
        );
    }
}
