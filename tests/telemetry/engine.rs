//! The engine's telemetry end to end: which lines a resolve, a completion, a failure, a breaker
//! transition, a budget alert, a reload and feedback write, with which fields; text only when a
//! feature opts in; keys never; budgets rebuilt from the log after a restart; live metrics.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prompt_config::client::ManualClock;

use crate::support::fixture::{Fixture, context, profile};
use prompt_config::{Context, Engine};
use serde_json::{Value, json};

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("bad line {line}: {error}"))
        })
        .collect()
}

fn events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|record| record["event"] == name)
        .collect()
}

/// Mock providers on a manual clock, so simulated latencies cost no real time.
fn engine_with_log(fixture: &Fixture) -> (Engine, PathBuf) {
    let path = fixture.root.join("telemetry.jsonl");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let engine = Engine::open(
        fixture
            .options()
            .with_mock(true)
            .with_clock(clock)
            .with_telemetry(&path),
    )
    .unwrap();
    (engine, path)
}

#[test]
fn a_completion_writes_one_request_line_and_one_line_per_attempt() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    let completion = engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let requests = events(&records, "llm.request");
    assert_eq!(requests.len(), 1);
    let request = requests[0];
    assert_eq!(request["schema_version"], 1);
    assert_eq!(request["request_id"], completion.request_id.as_str());
    assert_eq!(request["gen_ai.operation.name"], "chat");
    assert_eq!(request["gen_ai.prompt.name"], "career_path_navigator");
    assert_eq!(
        request["gen_ai.prompt.version"],
        completion.resolution.version.as_str()
    );
    assert_eq!(
        request["gen_ai.provider.name"],
        completion.provider.as_str()
    );
    assert_eq!(request["gen_ai.request.model"], completion.model.as_str());
    assert_eq!(
        request["gen_ai.usage.input_tokens"],
        completion.usage.input_tokens
    );
    assert_eq!(
        request["gen_ai.usage.output_tokens"],
        completion.usage.output_tokens
    );
    assert_eq!(request["prompt_config.outcome"], "success");
    assert_eq!(
        request["prompt_config.cost_usd"].as_f64().unwrap(),
        completion.cost_usd
    );
    // The mock reports its usage and its model is priced: nothing is estimated.
    assert!(!completion.cost_estimated);
    assert!(request.get("prompt_config.cost_estimated").is_none());
    assert_eq!(request["gen_ai.response.finish_reasons"], json!(["stop"]));
    let timestamp = request["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.len() == "2026-11-27T10:00:00.000Z".len(),
        "{timestamp}"
    );
    assert_eq!(
        events(&records, "llm.attempt").len(),
        completion.attempts.len()
    );
}

#[test]
fn a_resolve_writes_a_resolve_line_with_the_decision() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    let resolution = engine
        .resolve("career_path_navigator", &context("2"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let resolve = events(&records, "prompt.resolve");
    assert_eq!(resolve.len(), 1);
    assert_eq!(resolve[0]["request_id"], resolution.request_id.as_str());
    assert_eq!(
        resolve[0]["prompt_config.source"],
        resolution.source.as_str()
    );
    assert!(!resolution.request_id.is_empty());
}

#[test]
fn subject_ids_are_hashed_and_only_allow_listed_attributes_are_recorded() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    let subject = context("user-77")
        .attribute("degree", "BSc")
        .attribute("salary", 90_000);
    engine.complete("career_path_navigator", &subject).unwrap();
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    let subject_id = request["prompt_config.subject_id"].as_str().unwrap();
    assert!(subject_id.starts_with("sha256:") && !subject_id.contains("user-77"));
    assert_eq!(
        request["prompt_config.attributes"],
        json!({"degree": "BSc", "sector": "technology"})
    );
}

#[test]
fn prompt_and_response_text_are_recorded_only_when_the_feature_opts_in() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    engine
        .complete("career_path_navigator", &context("1"))
        .unwrap();
    engine.close();
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("gen_ai.input.messages") && !text.contains("Registered Nurse"));

    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["telemetry"]["record_text"] = json!(true));
    let (engine, path) = engine_with_log(&fixture);
    engine
        .complete("career_path_navigator", &context("1"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    assert!(
        request["gen_ai.input.messages"]
            .to_string()
            .contains("Registered Nurse")
    );
    assert!(
        request["gen_ai.output.messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("[mock")
    );
}

#[test]
fn a_failed_completion_writes_an_error_request_line() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    engine.mock_provider("openai").unwrap().fail_next(10, 500);
    engine
        .mock_provider("anthropic")
        .unwrap()
        .fail_next(10, 500);
    let error = engine
        .complete("career_path_navigator", &context("1"))
        .unwrap_err();
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    assert_eq!(request["prompt_config.outcome"], "error");
    assert_eq!(request["error.type"], error.kind().as_str());
    assert_eq!(
        request["prompt_config.attempts"].as_u64().unwrap() as usize,
        events(&records, "llm.attempt").len()
    );
}

#[test]
fn a_call_refused_before_any_model_call_writes_an_error_request_line_under_its_version() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    let mut variables = profile();
    variables.remove("goals");
    let error = engine
        .complete(
            "career_path_navigator",
            &Context::new("7").with_variables(variables),
        )
        .unwrap_err();
    assert_eq!(error.kind().as_str(), "missing_variable");
    let errors = engine.prometheus_text();
    engine.close();
    let records = lines(&path);
    let requests = events(&records, "llm.request");
    assert_eq!(requests.len(), 1, "error rates and alerts must see it");
    let request = requests[0];
    assert_eq!(request["prompt_config.outcome"], "error");
    assert_eq!(request["error.type"], "missing_variable");
    assert_eq!(request["prompt_config.attempts"], 0);
    assert_eq!(request["gen_ai.prompt.name"], "career_path_navigator");
    assert!(
        !request["gen_ai.prompt.version"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert!(events(&records, "llm.attempt").is_empty());
    assert!(
        errors
            .lines()
            .any(|line| line.starts_with("prompt_config_errors_total")
                && line.contains("error_type=\"missing_variable\"")),
        "{errors}"
    );
}

#[test]
fn a_call_to_an_unknown_feature_writes_no_request_line() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    let error = engine
        .complete("no_such_feature", &context("7"))
        .unwrap_err();
    assert_eq!(error.kind().as_str(), "unknown_feature");
    engine.close();
    assert!(events(&lines(&path), "llm.request").is_empty());
    assert!(!engine_metrics_mention(&engine, "no_such_feature"));
}

/// Whether the live metrics name `text` anywhere (a label value).
fn engine_metrics_mention(engine: &Engine, text: &str) -> bool {
    engine.prometheus_text().contains(text)
}

/// Milliseconds the attempts of a call spent calling and waiting, on the engine's clock.
fn attempts_time(attempts: &[prompt_config::client::Attempt]) -> f64 {
    attempts
        .iter()
        .map(|attempt| attempt.latency_ms + attempt.wait_ms)
        .sum()
}

#[test]
fn a_failed_completions_latency_is_its_attempts_time_on_the_engines_clock() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    engine.mock_provider("openai").unwrap().fail_next(10, 503);
    engine
        .mock_provider("anthropic")
        .unwrap()
        .fail_next(10, 503);
    let error = engine
        .complete("career_path_navigator", &context("7"))
        .unwrap_err();
    engine.close();
    let records = lines(&path);
    let latency = events(&records, "llm.request")[0]["prompt_config.latency_ms"]
        .as_f64()
        .unwrap();
    let prompt_config::Error::Complete(error) = error else {
        panic!("not a completion error: {error}");
    };
    let spent = attempts_time(error.attempts());
    assert!(spent > 0.0);
    assert!((latency - spent).abs() < 1e-6, "{latency} != {spent}");
}

#[test]
fn a_successful_completions_latency_is_its_attempts_time_on_the_engines_clock() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    engine.mock_provider("openai").unwrap().fail_next(1, 503);
    let completion = engine
        .complete("career_path_navigator", &context("8"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let latency = events(&records, "llm.request")[0]["prompt_config.latency_ms"]
        .as_f64()
        .unwrap();
    let spent = attempts_time(&completion.attempts);
    assert!((completion.latency_ms - spent).abs() < 1e-6);
    assert_eq!(latency, completion.latency_ms);
}

#[test]
fn breaker_transitions_and_budget_alerts_become_lines() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    engine.mock_provider("openai").unwrap().fail_next(1, 401);
    engine
        .complete("career_path_navigator", &context("1"))
        .unwrap();
    // Just under the $20 daily limit, so the next call's worst case crosses 100%.
    engine.restore_budget_spend("feature:career_path_navigator", chrono::Utc::now(), 19.997);
    engine
        .complete("career_path_navigator", &context("2"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let transition = events(&records, "circuit.transition")[0];
    assert_eq!(transition["prompt_config.breaker"], "openai");
    assert_eq!(transition["prompt_config.breaker_state"], "open");
    assert_eq!(transition["prompt_config.breaker.reason"], "misconfigured");
    let alert = events(&records, "budget.alert")[0];
    assert_eq!(
        alert["prompt_config.budget.scope"],
        "feature:career_path_navigator"
    );
    assert_eq!(alert["prompt_config.budget.threshold_percent"], 100);
}

#[test]
fn feedback_is_attributed_to_the_request_version_and_variant() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    let completion = engine
        .complete("career_path_navigator", &context("5"))
        .unwrap();
    engine
        .feedback(&completion.request_id, "thumbs_up", json!(true))
        .unwrap();
    engine
        .feedback(&completion.request_id, "rating", json!(4))
        .unwrap();
    assert_eq!(
        engine.feedback("", "rating", json!(4)).unwrap_err().kind(),
        "invalid_feedback"
    );
    assert_eq!(
        engine
            .feedback("req_1", "rating", json!({"a": 1}))
            .unwrap_err()
            .kind(),
        "invalid_feedback"
    );
    engine.close();
    let records = lines(&path);
    let feedback = events(&records, "feedback");
    assert_eq!(feedback.len(), 2);
    assert_eq!(feedback[0]["request_id"], completion.request_id.as_str());
    assert_eq!(feedback[0]["prompt_config.feedback.metric"], "thumbs_up");
    assert_eq!(feedback[0]["prompt_config.feedback.value"], true);
    assert_eq!(
        feedback[0]["gen_ai.prompt.version"],
        completion.resolution.version.as_str()
    );
}

#[test]
fn reloads_are_logged_with_their_outcome() {
    let fixture = Fixture::new();
    let (engine, path) = engine_with_log(&fixture);
    engine.reload().unwrap();
    fixture.edit_feature(|document| document["active_version"] = json!("9.9.9"));
    engine.reload().unwrap_err();
    engine.close();
    let records = lines(&path);
    let reloads = events(&records, "config.reload");
    assert_eq!(reloads.len(), 2);
    assert_eq!(reloads[0]["prompt_config.outcome"], "success");
    assert_eq!(reloads[1]["prompt_config.outcome"], "error");
    assert!(
        reloads[1]["prompt_config.problems"][0]
            .as_str()
            .unwrap()
            .contains("/active_version")
    );
}

#[test]
fn api_keys_never_reach_the_log() {
    let fixture = Fixture::new();
    let path = fixture.root.join("telemetry.jsonl");
    // Real providers pointed at a closed port, with a key in the environment variable they name.
    let providers = fixture.config_dir().join("providers.json");
    fixture.edit_json(&providers, |document| {
        for provider in ["openai", "anthropic"] {
            document["providers"][provider]["base_url"] = json!("http://127.0.0.1:9");
            document["providers"][provider]["api_key_env"] = json!("PATH");
        }
    });
    let engine = Engine::open(fixture.options().with_telemetry(&path)).unwrap();
    let _ = engine.complete("career_path_navigator", &context("1"));
    engine.close();
    let text = fs::read_to_string(&path).unwrap();
    let key = std::env::var("PATH").unwrap();
    assert!(!text.contains(&key));
}

#[test]
fn budget_spend_is_rebuilt_from_the_log_after_a_restart() {
    let fixture = Fixture::new();
    let spent = {
        let (engine, _) = engine_with_log(&fixture);
        let total: f64 = (0..5)
            .map(|n| {
                engine
                    .complete("career_path_navigator", &context(&format!("u{n}")))
                    .unwrap()
                    .cost_usd
            })
            .sum();
        engine.close();
        total
    };
    let (engine, _) = engine_with_log(&fixture);
    let restored: f64 = engine
        .budget_status()
        .iter()
        .filter(|status| status.scope == "feature:career_path_navigator" && status.period == "day")
        .map(|status| status.settled_usd)
        .sum();
    assert!(
        (restored - spent).abs() < 1e-6,
        "restored {restored}, spent {spent}"
    );
}

#[test]
fn dropping_the_engine_loses_nothing() {
    let fixture = Fixture::new();
    let path = fixture.root.join("telemetry.jsonl");
    {
        let (engine, _) = engine_with_log(&fixture);
        for n in 0..200 {
            engine
                .resolve("career_path_navigator", &context(&format!("u{n}")))
                .unwrap();
        }
    }
    assert_eq!(events(&lines(&path), "prompt.resolve").len(), 200);
}

#[test]
fn live_metrics_count_requests_and_render_prometheus_text() {
    let fixture = Fixture::new();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let engine = Engine::open(fixture.options().with_mock(true).with_clock(clock)).unwrap();
    for n in 0..10 {
        engine
            .complete(
                "career_path_navigator",
                &Context::new(format!("m{n}")).with_variables(profile()),
            )
            .unwrap();
    }
    let snapshot = serde_json::to_value(engine.metrics()).unwrap();
    assert!(snapshot.to_string().contains("career_path_navigator"));
    let text = engine.prometheus_text();
    assert!(text.contains("gen_ai_client_operation_duration_seconds_bucket"));
    assert!(text.contains("prompt_config_requests_total"));
}

#[test]
fn attempt_lines_carry_each_attempts_own_start_on_the_engines_clock() {
    let fixture = Fixture::new();
    let path = fixture.root.join("telemetry.jsonl");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let clock = Arc::new(ManualClock::new(start));
    let options = fixture.options().with_mock(true).with_clock(clock.clone());
    let engine = Engine::open(options.with_telemetry(&path)).unwrap();
    // openai fails once (after its simulated latency), so anthropic is tried next.
    engine.mock_provider("openai").unwrap().fail_next(1, 500);
    let completion = engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    engine.close();
    assert_eq!(completion.attempts.len(), 2);
    let records = lines(&path);
    let stamps: Vec<&str> = events(&records, "llm.attempt")
        .iter()
        .map(|line| line["timestamp"].as_str().unwrap())
        .collect();
    // Each attempt starts when the one before ended plus what it waited.
    let first = start;
    let second = first
        + chrono::Duration::milliseconds(
            (completion.attempts[0].latency_ms + completion.attempts[1].wait_ms) as i64,
        );
    let expected: Vec<String> = [first, second]
        .iter()
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .collect();
    assert_eq!(stamps, expected);
    assert_ne!(stamps[0], stamps[1], "attempts do not share one timestamp");
    let request_at = events(&records, "llm.request")[0]["timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        request_at.as_str() > stamps[1],
        "the request line is stamped when the call ends"
    );
    let position = |name: &str| records.iter().rposition(|r| r["event"] == name).unwrap();
    assert!(position("llm.attempt") < position("llm.request"));
}
