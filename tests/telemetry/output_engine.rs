//! Structured output in the engine's telemetry, end to end on the mock providers: a request of
//! the JSON version 2.2.0 says it has a schema, whether its answer was valid and how many
//! repairs it took; an invalid answer is an `invalid_output` attempt line with its reason,
//! count and first pointer but no text; the parsed answer is recorded only under the feature's
//! `telemetry.record_text`; the live metrics count answers, invalid ones and repairs per model.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::fixture::{Fixture, context};
use prompt_config::Engine;
use prompt_config::client::ManualClock;
use serde_json::Value;

const FEATURE: &str = "career_path_navigator";

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|record| record["event"] == name)
        .collect()
}

/// A fixture whose OpenAI mock answers invalid JSON at `openai_share` and Anthropic's never,
/// with the feature's text opt-in at `record_text`.
fn fixture(openai_share: f64, record_text: bool) -> Fixture {
    let fixture = Fixture::new();
    fixture.edit_json(&fixture.config_dir().join("providers.json"), |providers| {
        providers["providers"]["openai"]["mock"]["invalid_output_share"] = openai_share.into();
        providers["providers"]["anthropic"]["mock"]["invalid_output_share"] = 0.0.into();
    });
    fixture.edit_feature(|feature| feature["telemetry"]["record_text"] = record_text.into());
    fixture
}

fn engine_with_log(fixture: &Fixture) -> (Engine, PathBuf) {
    let path = fixture.root.join("telemetry.jsonl");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let options = fixture
        .options()
        .with_mock(true)
        .with_clock(clock)
        .with_telemetry(&path);
    (Engine::open(options).unwrap(), path)
}

#[test]
fn a_json_request_line_says_it_has_a_schema_a_valid_answer_and_no_repair() {
    let fixture = fixture(0.0, false);
    let (engine, path) = engine_with_log(&fixture);
    engine
        .complete(FEATURE, &context("7").pin_version("2.2.0"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    assert_eq!(request["prompt_config.output.schema"], true);
    assert_eq!(request["prompt_config.output.valid"], true);
    assert_eq!(request["prompt_config.output.repairs"], 0);
    assert_eq!(request["prompt_config.output.invalid_outputs"], 0);
    assert!(request.get("prompt_config.output.data").is_none());
    assert!(request.get("gen_ai.output.messages").is_none());
}

#[test]
fn a_prose_request_line_has_no_output_fields() {
    let fixture = fixture(0.0, false);
    let (engine, path) = engine_with_log(&fixture);
    engine
        .complete(FEATURE, &context("7").pin_version("2.0.0"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    let output_fields: Vec<&String> = request
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| key.starts_with("prompt_config.output."))
        .collect();
    assert!(output_fields.is_empty(), "{output_fields:?}");
}

#[test]
fn under_the_text_opt_in_the_parsed_answer_is_recorded() {
    let fixture = fixture(0.0, true);
    let (engine, path) = engine_with_log(&fixture);
    let completion = engine
        .complete(FEATURE, &context("7").pin_version("2.2.0"))
        .unwrap();
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    let data = completion.data.expect("a parsed answer");
    assert_eq!(request["prompt_config.output.data"], data);
    assert_eq!(
        request["gen_ai.output.messages"][0]["content"],
        completion.text.as_str()
    );
}

#[test]
fn invalid_answers_are_attempt_lines_with_reason_count_and_pointer_but_no_text() {
    // OpenAI's mock answers invalid JSON every time: the first answer, then its repair, are
    // invalid; the call fails over to Anthropic, whose answer is valid.
    let fixture = fixture(1.0, false);
    let (engine, path) = engine_with_log(&fixture);
    let completion = engine
        .complete(FEATURE, &context("7").pin_version("2.2.0"))
        .unwrap();
    let metrics = engine.metrics();
    engine.close();
    let records = lines(&path);
    let invalid: Vec<&Value> = events(&records, "llm.attempt")
        .into_iter()
        .filter(|attempt| attempt["prompt_config.outcome"] == "invalid_output")
        .collect();
    assert!(!invalid.is_empty());
    for attempt in &invalid {
        assert_eq!(attempt["gen_ai.provider.name"], "openai");
        assert_eq!(attempt["error.type"], "invalid_output");
        let reason = attempt["prompt_config.output.invalid_reason"].as_str();
        assert!(matches!(reason, Some("not_json" | "schema")), "{attempt}");
        assert!(attempt["prompt_config.output.violations"].as_u64() >= Some(1));
        assert!(attempt["prompt_config.output.pointer"].is_string());
        // No message, no answer text: the mock's words are the prompt's.
        let line = attempt.to_string();
        assert!(!line.contains("Registered Nurse"), "{line}");
    }
    let request = events(&records, "llm.request")[0];
    assert_eq!(request["prompt_config.output.valid"], true);
    assert_eq!(
        request["prompt_config.output.invalid_outputs"],
        invalid.len() as u64
    );
    assert_eq!(request["prompt_config.output.repairs"], completion.repairs);
    let openai = metrics
        .output
        .iter()
        .find(|series| series.provider == "openai")
        .expect("openai's answers are counted");
    assert_eq!(openai.invalid_outputs, invalid.len() as u64);
    assert_eq!(openai.invalid_output_rate, 1.0);
    let anthropic = metrics
        .output
        .iter()
        .find(|series| series.provider == "anthropic")
        .expect("anthropic's answer is counted");
    assert_eq!((anthropic.answers, anthropic.invalid_outputs), (1, 0));
}

#[test]
fn a_call_failed_on_invalid_answers_logs_what_they_cost() {
    // Both mocks answer invalid JSON every time: the call fails `invalid_output` after four
    // paid answers, and its request line carries their cost and tokens as budgets were charged.
    let fixture = fixture(1.0, false);
    fixture.edit_json(&fixture.config_dir().join("providers.json"), |providers| {
        providers["providers"]["anthropic"]["mock"]["invalid_output_share"] = 1.0.into();
    });
    let (engine, path) = engine_with_log(&fixture);
    let error = engine
        .complete(FEATURE, &context("7").pin_version("2.2.0"))
        .unwrap_err();
    assert_eq!(error.kind(), prompt_config::ErrorKind::InvalidOutput);
    engine.close();
    let records = lines(&path);
    let request = events(&records, "llm.request")[0];
    assert_eq!(request["prompt_config.outcome"], "error");
    assert!(
        request["prompt_config.cost_usd"].as_f64().unwrap() > 0.0,
        "{request}"
    );
    assert!(request["gen_ai.usage.output_tokens"].as_u64().unwrap() > 0);
}
