//! `stats` on structured output: per group the invalid-output rate (invalid answers over answers
//! validated) and repairs from the `prompt_config.output.*` fields of `llm.request` lines, and
//! per feature, version, provider and model from the `llm.attempt` lines, in text and JSON. Each
//! log is a few hand-written lines shaped like the engine writes them.

use std::fs;
use std::path::PathBuf;

use prompt_config::telemetry::stats::{StatsOptions, StatsReport, analyze};
use serde_json::{Value, json};

/// An `llm.request` line of `cpn` `version` answered by `model`: `output` is `(valid, repairs,
/// invalid outputs)`, `None` for a prose version; a `valid: false` line is a failed call.
fn request(id: &str, version: &str, model: &str, output: Option<(bool, u64, u64)>) -> String {
    let mut line = json!({
        "schema_version": 1, "timestamp": "2026-11-30T10:00:00.000Z", "event": "llm.request",
        "request_id": id, "gen_ai.prompt.name": "cpn", "gen_ai.prompt.version": version,
        "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
        "prompt_config.outcome": "success", "prompt_config.latency_ms": 100.0,
        "prompt_config.cost_usd": 0.001,
    });
    if let Some((valid, repairs, invalid)) = output {
        line["prompt_config.output.schema"] = json!(true);
        line["prompt_config.output.valid"] = json!(valid);
        line["prompt_config.output.repairs"] = json!(repairs);
        line["prompt_config.output.invalid_outputs"] = json!(invalid);
        if !valid {
            line["prompt_config.outcome"] = json!("error");
            line["error.type"] = json!("invalid_output");
        }
    }
    format!("{line}\n")
}

/// An `llm.attempt` line of `cpn` `version` on `model` ending `outcome`.
fn attempt(id: &str, version: &str, model: &str, outcome: &str) -> String {
    let mut line = json!({
        "schema_version": 1, "timestamp": "2026-11-30T10:00:00.000Z", "event": "llm.attempt",
        "request_id": id, "gen_ai.operation.name": "chat", "gen_ai.prompt.name": "cpn",
        "gen_ai.prompt.version": version, "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model, "prompt_config.attempt": 1,
        "prompt_config.outcome": outcome, "prompt_config.latency_ms": 90.0,
        "prompt_config.wait_ms": 0.0, "prompt_config.breaker_state": "closed",
    });
    if outcome == "invalid_output" {
        line["prompt_config.output.invalid_reason"] = json!("schema");
        line["prompt_config.output.violations"] = json!(1);
        line["prompt_config.output.pointer"] = json!("/career_paths");
    }
    format!("{line}\n")
}

/// The JSON version 2.2.0 and the prose 2.0.0:
/// - r1: valid at once on mini;
/// - r2: invalid on mini, repaired on mini;
/// - r3: invalid on mini, repair invalid, failed over to nano and valid there;
/// - r4: invalid twice on nano, failed;
/// - p1, p2: prose requests (no output fields), whose attempts are not counted.
fn log() -> Vec<String> {
    vec![
        attempt("r1", "2.2.0", "mini", "success"),
        request("r1", "2.2.0", "mini", Some((true, 0, 0))),
        attempt("r2", "2.2.0", "mini", "invalid_output"),
        attempt("r2", "2.2.0", "mini", "success"),
        request("r2", "2.2.0", "mini", Some((true, 1, 1))),
        attempt("r3", "2.2.0", "mini", "invalid_output"),
        attempt("r3", "2.2.0", "mini", "invalid_output"),
        attempt("r3", "2.2.0", "nano", "success"),
        request("r3", "2.2.0", "nano", Some((true, 1, 2))),
        attempt("r4", "2.2.0", "nano", "invalid_output"),
        attempt("r4", "2.2.0", "nano", "invalid_output"),
        request("r4", "2.2.0", "nano", Some((false, 1, 2))),
        attempt("p1", "2.0.0", "mini", "success"),
        request("p1", "2.0.0", "mini", None),
        attempt("p2", "2.0.0", "mini", "failed"),
        request("p2", "2.0.0", "mini", None),
    ]
}

fn write_log(name: &str, lines: &[String]) -> PathBuf {
    let directory = std::env::temp_dir().join(format!(
        "telemetry-stats-output-{name}-{}",
        std::process::id()
    ));
    fs::create_dir_all(&directory).unwrap();
    let path = directory.join("telemetry.jsonl");
    fs::write(&path, lines.concat()).unwrap();
    path
}

fn analyze_log(name: &str, by: &[&str]) -> StatsReport {
    let path = write_log(name, &log());
    let options = StatsOptions::default().with_by(by.iter().map(|name| name.to_string()).collect());
    let report = analyze(std::slice::from_ref(&path), &options).unwrap();
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
    report
}

#[test]
fn a_group_counts_invalid_answers_over_answers_validated_and_its_repairs() {
    let report = analyze_log("group", &["version"]);
    let output = report
        .group(&["2.2.0"])
        .and_then(|group| group.output.clone())
        .expect("the JSON version has output figures");
    assert_eq!(output.requests, 4);
    // Three valid answers (r1, r2, r3) and five invalid ones.
    assert_eq!(output.answers, 8);
    assert_eq!(output.invalid_outputs, 5);
    assert_eq!(output.invalid_output_rate, 5.0 / 8.0);
    assert_eq!(output.repairs, 3);
    assert_eq!(output.repairs_per_request, 0.75);
    assert_eq!(output.failed_invalid, 1);
}

#[test]
fn a_prose_group_has_no_output_figures() {
    let report = analyze_log("prose", &["version"]);
    let prose = report.group(&["2.0.0"]).expect("the prose version");
    assert_eq!(prose.output, None);
}

#[test]
fn per_model_the_rate_comes_from_the_attempts_that_model_answered() {
    let report = analyze_log("model", &["version"]);
    let row = |model: &str| {
        report
            .output
            .iter()
            .find(|row| row.version == "2.2.0" && row.model == model)
            .unwrap_or_else(|| panic!("no row for {model}: {:?}", report.output))
    };
    let mini = row("mini");
    assert_eq!((mini.answers, mini.invalid_outputs), (5, 3));
    assert_eq!(mini.invalid_output_rate, 0.6);
    assert_eq!((mini.requests, mini.repairs), (2, 1));
    let nano = row("nano");
    assert_eq!((nano.answers, nano.invalid_outputs), (3, 2));
    assert_eq!((nano.requests, nano.repairs), (2, 2));
    // The prose version's attempts are not structured answers.
    assert!(report.output.iter().all(|row| row.version == "2.2.0"));
}

#[test]
fn json_carries_the_output_figures_and_text_shows_both_tables() {
    let report = analyze_log("text", &["version", "model"]);
    let json: Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["output"][0]["model"], "mini");
    assert_eq!(json["output"][0]["invalid_output_rate"], 0.6);
    let groups = json["groups"].as_array().unwrap();
    assert!(groups.iter().any(|group| group["output"]["repairs"] == 1));
    assert!(
        groups
            .iter()
            .all(|group| group["key"]["version"] != "2.0.0" || group.get("output").is_none())
    );
    let text = report.to_string();
    assert!(text.contains("structured output (invalid%"), "{text}");
    assert!(text.contains("structured output by model"), "{text}");
    let mini_row = text
        .lines()
        .find(|line| line.contains("2.2.0") && line.contains("mini") && line.contains("60.0%"));
    assert!(mini_row.is_some(), "{text}");
}

#[test]
fn a_log_without_structured_versions_prints_no_output_table() {
    let path = write_log(
        "none",
        &[
            attempt("p1", "2.0.0", "mini", "success"),
            request("p1", "2.0.0", "mini", None),
        ],
    );
    let report = analyze(std::slice::from_ref(&path), &StatsOptions::default()).unwrap();
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
    assert!(report.output.is_empty());
    assert!(!report.to_string().contains("structured output"));
    assert!(
        serde_json::to_value(&report)
            .unwrap()
            .get("output")
            .is_none()
    );
}
