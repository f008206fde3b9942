//! `config/alerts.json`: optional (absent: alerts off), parsed strictly, checked against its
//! JSON Schema and cross-checked, every problem naming the file and a JSON pointer, and reported
//! by `Engine::validate` / `Engine::open` / `prompt-config validate` with the configuration's
//! other problems.

use std::path::Path;

use prompt_config::telemetry::alerts::Severity;
use prompt_config::telemetry::alerts::config::{AlertsConfig, ChannelConfig, Condition};
use prompt_config::{ConfigError, Engine, Error, Problem};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::cli;
use crate::support::fixture::{Fixture, project_root};
use crate::support::temp_dir::TempDir;

/// A valid document: one channel, one rule of each window type.
fn valid() -> Value {
    json!({
        "channels": {"team": {"type": "slack", "webhook_url_env": "SLACK_URL"}},
        "rules": [
            {"name": "errors", "type": "error_rate", "window_seconds": 300, "above": 0.1,
             "severity": "error", "channels": ["team"]}
        ]
    })
}

/// The problems of `document` as `alerts.json`, or a panic when it loads.
fn problems_of(document: &Value) -> (Vec<Problem>, String) {
    let dir = TempDir::new("alerts_config");
    let path = dir.path().join("alerts.json");
    std::fs::write(&path, document.to_string()).unwrap();
    match AlertsConfig::load(dir.path()) {
        Ok(loaded) => panic!("loaded: {loaded:?}"),
        Err(error) => {
            assert_eq!(error.kind(), prompt_config::ErrorKind::ConfigInvalid);
            (error.problems().to_vec(), path.display().to_string())
        }
    }
}

/// The one problem of `document`, asserting it names the file and `pointer`.
fn the_problem_at(document: &Value, pointer: &str) -> Problem {
    let (problems, file) = problems_of(document);
    assert!(
        problems
            .iter()
            .any(|problem| problem.file == file && problem.pointer == pointer),
        "no problem at {pointer} in {problems:#?}"
    );
    problems
        .into_iter()
        .find(|problem| problem.pointer == pointer)
        .unwrap()
}

#[test]
fn an_absent_file_turns_alerts_off() {
    let dir = TempDir::new("alerts_config");
    assert_eq!(AlertsConfig::load(dir.path()).unwrap(), None);
}

#[test]
fn the_shipped_example_loads_with_every_rule_type() {
    let dir = TempDir::new("alerts_config");
    std::fs::copy(
        project_root().join("config/alerts.example.json"),
        dir.path().join("alerts.json"),
    )
    .unwrap();
    let config = AlertsConfig::load(dir.path()).unwrap().unwrap();
    let types: Vec<&str> = config
        .rules
        .iter()
        .map(|rule| rule.condition.type_name())
        .collect();
    assert_eq!(
        types,
        [
            "budget",
            "breaker_open",
            "error_rate",
            "latency_p95",
            "invalid_output_rate",
            "evaluation_failed"
        ]
    );
    assert!(matches!(
        config.channel("oncall"),
        Some(ChannelConfig::Pagerduty { url: None, .. })
    ));
    assert_eq!(config.rules[1].severity, Severity::Critical);
    assert_eq!(
        config.rules[2].condition,
        Condition::ErrorRate {
            feature: None,
            window_seconds: 300,
            above: 0.05,
            min_requests: 20
        }
    );
}

#[test]
fn the_example_file_is_not_read_as_the_alerts_config() {
    // The shipped config/ holds alerts.example.json only: alerts stay off for everyone.
    let fixture = Fixture::new();
    assert!(fixture.config_dir().join("alerts.example.json").exists());
    assert_eq!(AlertsConfig::load(&fixture.config_dir()).unwrap(), None);
    Engine::validate(&fixture.options()).unwrap();
}

#[test]
fn min_requests_defaults_to_ten() {
    let config = AlertsConfig::parse("alerts.json", valid().to_string().as_bytes(), None).unwrap();
    assert!(matches!(
        config.rules[0].condition,
        Condition::ErrorRate {
            min_requests: 10,
            ..
        }
    ));
}

#[test]
fn a_rule_naming_an_unknown_channel_is_a_problem_at_that_channel() {
    let mut document = valid();
    document["rules"][0]["channels"] = json!(["team", "pager"]);
    let problem = the_problem_at(&document, "/rules/0/channels/1");
    assert!(
        problem.message.contains("unknown channel \"pager\""),
        "{problem}"
    );
    assert!(
        problem.message.contains("team"),
        "lists the channels: {problem}"
    );
}

#[test]
fn a_duplicate_rule_name_is_a_problem_at_the_second_name() {
    let mut document = valid();
    let rule = document["rules"][0].clone();
    document["rules"].as_array_mut().unwrap().push(rule);
    let problem = the_problem_at(&document, "/rules/1/name");
    assert!(problem.message.contains("duplicate rule name"), "{problem}");
}

#[test]
fn an_empty_channel_list_is_a_problem() {
    let mut document = valid();
    document["rules"][0]["channels"] = json!([]);
    the_problem_at(&document, "/rules/0/channels");
}

#[test]
fn a_share_outside_zero_to_one_is_a_problem() {
    for above in [json!(1.5), json!(-0.1)] {
        let mut document = valid();
        document["rules"][0]["above"] = above;
        the_problem_at(&document, "/rules/0/above");
    }
}

#[test]
fn a_window_of_zero_seconds_is_a_problem() {
    let mut document = valid();
    document["rules"][0]["window_seconds"] = json!(0);
    the_problem_at(&document, "/rules/0/window_seconds");
}

#[test]
fn an_unknown_rule_type_is_a_problem_at_type() {
    let mut document = valid();
    document["rules"][0]["type"] = json!("cpu_usage");
    the_problem_at(&document, "/rules/0/type");
}

#[test]
fn an_unknown_severity_is_a_problem_at_severity() {
    let mut document = valid();
    document["rules"][0]["severity"] = json!("fatal");
    the_problem_at(&document, "/rules/0/severity");
}

#[test]
fn a_field_of_another_rule_type_is_a_problem() {
    let mut document = valid();
    document["rules"][0]["above_ms"] = json!(100);
    the_problem_at(&document, "/rules/0");
}

#[test]
fn a_channel_secret_must_be_an_environment_variable_name_not_a_url() {
    let mut document = valid();
    document["channels"]["team"]["webhook_url_env"] =
        json!("https://hooks.slack.com/services/T0/B0/SECRET-77");
    let problem = the_problem_at(&document, "/channels/team/webhook_url_env");
    assert!(
        problem
            .message
            .starts_with("must be the name of an environment variable"),
        "{}",
        problem.message
    );
    assert!(
        !problem.message.contains("SECRET-77"),
        "the secret written there by mistake is never printed: {}",
        problem.message
    );
}

#[test]
fn a_duplicate_key_is_a_problem_at_its_pointer() {
    let dir = TempDir::new("alerts_config");
    let path = dir.path().join("alerts.json");
    std::fs::write(&path, r#"{"channels": {}, "rules": [], "rules": []}"#).unwrap();
    let error = AlertsConfig::load(dir.path()).unwrap_err();
    assert!(
        error
            .problems()
            .iter()
            .any(|p| p.pointer == "/rules" && p.file == path.display().to_string()),
        "{error}"
    );
}

/// A feature config problem and an alerts problem in one fixture.
fn fixture_with_two_problems() -> Fixture {
    let fixture = Fixture::new();
    let mut document = valid();
    document["rules"][0]["feature"] = json!("no_such_feature");
    std::fs::write(
        fixture.config_dir().join("alerts.json"),
        document.to_string(),
    )
    .unwrap();
    fixture.edit_feature(|feature| feature["description"] = json!(42));
    fixture
}

#[test]
fn engine_validate_reports_alerts_problems_with_the_other_config_problems() {
    let fixture = fixture_with_two_problems();
    let Err(Error::Config(ConfigError::Invalid { problems })) =
        Engine::validate(&fixture.options())
    else {
        panic!("the configuration validated");
    };
    let alerts_file = fixture
        .config_dir()
        .join("alerts.json")
        .display()
        .to_string();
    let feature = problems
        .iter()
        .find(|problem| problem.file == alerts_file)
        .unwrap_or_else(|| panic!("no alerts problem in {problems:#?}"));
    assert_eq!(feature.pointer, "/rules/0/feature");
    assert!(
        feature
            .message
            .contains("unknown feature \"no_such_feature\"")
    );
    assert!(
        problems.iter().any(|problem| problem.file != alerts_file),
        "the feature's own problem is listed too: {problems:#?}"
    );
}

#[test]
fn engine_open_refuses_an_invalid_alerts_file() {
    let fixture = Fixture::new();
    let mut document = valid();
    document["rules"][0]["channels"] = json!(["nowhere"]);
    std::fs::write(
        fixture.config_dir().join("alerts.json"),
        document.to_string(),
    )
    .unwrap();
    let error = Engine::open(fixture.options()).unwrap_err();
    assert_eq!(error.kind(), prompt_config::ErrorKind::ConfigInvalid);
    assert!(error.to_string().contains("/rules/0/channels/0"), "{error}");
}

#[test]
fn prompt_config_validate_lists_alerts_problems_with_file_and_pointer() {
    let fixture = fixture_with_two_problems();
    let output = cli::run(&fixture, &["validate"]);
    assert!(!output.status.success());
    let stderr = cli::stderr(&output);
    assert!(
        stderr.contains("alerts.json: /rules/0/feature: unknown feature"),
        "{stderr}"
    );
}

/// Loads `bytes` as `alerts.json` in a fresh directory.
fn load_bytes(bytes: &[u8]) -> (Result<Option<AlertsConfig>, ConfigError>, String) {
    let dir = TempDir::new("alerts_config_prop");
    let path = dir.path().join("alerts.json");
    std::fs::write(&path, bytes).unwrap();
    (
        AlertsConfig::load(Path::new(dir.path())),
        path.display().to_string(),
    )
}

/// Every problem names the file; a failed load has at least one.
fn assert_located(result: &Result<Option<AlertsConfig>, ConfigError>, file: &str) {
    if let Err(error) = result {
        assert!(!error.problems().is_empty(), "{error}");
        for problem in error.problems() {
            assert_eq!(problem.file, file);
        }
    }
}

#[test]
fn an_empty_file_is_a_problem_not_a_panic() {
    let (result, file) = load_bytes(b"");
    assert!(result.is_err());
    assert_located(&result, &file);
}

#[test]
fn a_huge_rule_list_loads() {
    let mut document = valid();
    let rule = document["rules"][0].clone();
    let rules: Vec<Value> = (0..20_000)
        .map(|index| {
            let mut rule = rule.clone();
            rule["name"] = json!(format!("r{index}"));
            rule
        })
        .collect();
    document["rules"] = Value::Array(rules);
    let (result, _) = load_bytes(document.to_string().as_bytes());
    assert_eq!(result.unwrap().unwrap().rules.len(), 20_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_bytes_load_or_fail_with_located_problems(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (result, file) = load_bytes(&bytes);
        assert_located(&result, &file);
    }

    #[test]
    fn nul_and_non_utf8_in_names_fail_with_located_problems(
        name in "[a-z]{0,4}[\u{0}\u{1}\u{7f}\u{ffff}]{1,3}[a-z]{0,4}",
        raw in proptest::collection::vec(128u8..=255, 1..8),
    ) {
        let mut document = valid();
        document["rules"][0]["name"] = json!(name);
        let (result, file) = load_bytes(document.to_string().as_bytes());
        prop_assert!(result.is_err());
        assert_located(&result, &file);

        let mut bytes = br#"{"channels": {}, "rules": [{"name": ""#.to_vec();
        bytes.extend_from_slice(&raw);
        bytes.extend_from_slice(br#""}]}"#);
        let (result, file) = load_bytes(&bytes);
        prop_assert!(result.is_err());
        assert_located(&result, &file);
    }

    #[test]
    fn any_share_loads_exactly_when_it_is_between_zero_and_one(above in -2.0f64..2.0) {
        let mut document = valid();
        document["rules"][0]["above"] = json!(above);
        let (result, _) = load_bytes(document.to_string().as_bytes());
        prop_assert_eq!(result.is_ok(), (0.0..=1.0).contains(&above));
    }
}

#[test]
fn a_valid_alerts_file_is_served_by_the_snapshot_and_counts_in_its_revision() {
    let fixture = Fixture::new();
    let paths = fixture.options().paths;
    let without = prompt_config::Snapshot::load(&paths).unwrap();
    assert!(without.alerts().is_none());
    std::fs::write(
        fixture.config_dir().join("alerts.json"),
        valid().to_string(),
    )
    .unwrap();
    let with = prompt_config::Snapshot::load(&paths).unwrap();
    assert_eq!(with.alerts().unwrap().rules[0].name, "errors");
    assert_ne!(with.revision(), without.revision());
}

#[test]
fn the_readme_example_is_the_shipped_example_file() {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let section = readme
        .split("### Alert rules (`config/alerts.json`)")
        .nth(1)
        .expect("the README has the alert rules section");
    let block = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a JSON block");
    let shipped =
        std::fs::read_to_string(project_root().join("config/alerts.example.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(block).unwrap(),
        serde_json::from_str::<Value>(&shipped).unwrap()
    );
}

/// Every property and definition of `schema` (also inside `allOf`/`then`) without a description
/// or a `$ref` to a described definition; `true` (an allowance) needs none.
fn undocumented(schema: &Value, location: &str, found: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    let check = |child: &Value, here: String, found: &mut Vec<String>| {
        if child.is_object() && child.get("description").is_none() && child.get("$ref").is_none() {
            found.push(here.clone());
        }
        undocumented(child, &here, found);
    };
    for keyword in ["properties", "$defs"] {
        if let Some(Value::Object(children)) = map.get(keyword) {
            for (name, child) in children {
                check(child, format!("{location}/{keyword}/{name}"), found);
            }
        }
    }
    for keyword in ["additionalProperties", "items", "then"] {
        if let Some(child) = map.get(keyword) {
            undocumented(child, &format!("{location}/{keyword}"), found);
        }
    }
    if let Some(Value::Array(all)) = map.get("allOf") {
        for (index, child) in all.iter().enumerate() {
            undocumented(child, &format!("{location}/allOf/{index}"), found);
        }
    }
}

#[test]
fn the_schema_is_embedded_as_shipped_valid_and_documented_on_every_property() {
    use prompt_config::telemetry::alerts::config::ALERTS_SCHEMA;
    let on_disk =
        std::fs::read_to_string(project_root().join("config/schema/alerts_schema.json")).unwrap();
    assert_eq!(ALERTS_SCHEMA, on_disk);
    let schema: Value = serde_json::from_str(ALERTS_SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).unwrap();
    let mut found = Vec::new();
    undocumented(&schema, "", &mut found);
    assert!(found.is_empty(), "without a description: {found:?}");
}

#[test]
fn the_example_names_its_schema_by_a_path_that_exists() {
    let config = project_root().join("config");
    let example: Value =
        serde_json::from_str(&std::fs::read_to_string(config.join("alerts.example.json")).unwrap())
            .unwrap();
    assert!(config.join(example["$schema"].as_str().unwrap()).is_file());
}

#[test]
fn an_engine_opens_on_the_example_copied_to_alerts_json() {
    // The example names its schema (`$schema`, for editors): the alerts thread must accept
    // what validation accepts.
    let fixture = Fixture::new();
    std::fs::copy(
        fixture.config_dir().join("alerts.example.json"),
        fixture.config_dir().join("alerts.json"),
    )
    .unwrap();
    Engine::validate(&fixture.options()).unwrap();
    let engine = Engine::open(fixture.options().with_mock(true)).unwrap();
    engine.close();
}
