//! The structured-output fields of `llm.request` and `llm.attempt` lines: the hand-written fast
//! path gives byte for byte the serde line with every one of them present or absent, and an
//! `invalid_output` attempt carries its reason, violation count and first pointer.

use crate::support::telemetry_records::{attempt_record, request_record};
use prompt_config::telemetry::event::{
    AttemptOutputFields, EventBody, RequestOutputFields, TelemetryRecord,
};
use prompt_config::telemetry::writer::Record;
use serde_json::{Value, json};

fn line(record: &TelemetryRecord) -> String {
    let mut fast = Vec::new();
    record.write_json(&mut fast).unwrap();
    let fast = String::from_utf8(fast).unwrap();
    assert_eq!(fast, serde_json::to_string(record).unwrap());
    fast
}

fn invalid_attempt(tool: Option<&str>) -> TelemetryRecord {
    let mut record = attempt_record(3);
    if let EventBody::Attempt(fields) = &mut record.body {
        fields.outcome = "invalid_output";
        fields.error_type = Some("invalid_output".to_owned());
        fields.invalid_output = Some(AttemptOutputFields {
            reason: "schema",
            tool: tool.map(str::to_owned),
            violations: 2,
            pointer: "/career_paths/1/title".to_owned(),
        });
    }
    record
}

fn structured_request(output: RequestOutputFields) -> TelemetryRecord {
    let mut record = request_record(4);
    if let EventBody::Request(fields) = &mut record.body {
        fields.output = Some(output);
    }
    record
}

#[test]
fn an_invalid_output_attempt_carries_reason_count_and_first_pointer() {
    let written: Value = serde_json::from_str(&line(&invalid_attempt(None))).unwrap();
    assert_eq!(written["prompt_config.outcome"], "invalid_output");
    assert_eq!(written["prompt_config.output.invalid_reason"], "schema");
    assert_eq!(written["prompt_config.output.violations"], 2);
    assert_eq!(
        written["prompt_config.output.pointer"],
        "/career_paths/1/title"
    );
    assert!(written.get("prompt_config.output.tool").is_none());
}

#[test]
fn an_invalid_tool_call_attempt_names_the_tool() {
    let written: Value = serde_json::from_str(&line(&invalid_attempt(Some("lookup")))).unwrap();
    assert_eq!(written["prompt_config.output.tool"], "lookup");
}

#[test]
fn a_structured_request_line_is_the_serde_line_with_every_field() {
    let written = line(&structured_request(RequestOutputFields {
        schema: true,
        valid: Some(true),
        repairs: 1,
        invalid_outputs: 1,
        tool_calls: Some(2),
        data: Some(json!({"career_paths": [{"title": "quote \" é"}]})),
    }));
    let written: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(written["prompt_config.output.schema"], true);
    assert_eq!(written["prompt_config.output.valid"], true);
    assert_eq!(written["prompt_config.output.repairs"], 1);
    assert_eq!(written["prompt_config.output.invalid_outputs"], 1);
    assert_eq!(written["prompt_config.output.tool_calls"], 2);
    assert_eq!(
        written["prompt_config.output.data"]["career_paths"][0]["title"],
        "quote \" é"
    );
}

#[test]
fn absent_output_fields_stay_absent() {
    let written = line(&structured_request(RequestOutputFields {
        schema: false,
        valid: None,
        repairs: 0,
        invalid_outputs: 0,
        tool_calls: None,
        data: None,
    }));
    let written: Value = serde_json::from_str(&written).unwrap();
    for absent in [
        "prompt_config.output.schema",
        "prompt_config.output.valid",
        "prompt_config.output.tool_calls",
        "prompt_config.output.data",
    ] {
        assert!(written.get(absent).is_none(), "{absent} in {written}");
    }
    assert_eq!(written["prompt_config.output.repairs"], 0);
    let prose: Value = serde_json::from_str(&line(&request_record(5))).unwrap();
    assert!(prose.get("prompt_config.output.repairs").is_none());
}

#[test]
fn a_failed_structured_request_says_its_output_was_not_valid() {
    let written = line(&structured_request(RequestOutputFields {
        schema: true,
        valid: Some(false),
        repairs: 1,
        invalid_outputs: 2,
        tool_calls: None,
        data: None,
    }));
    let written: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(written["prompt_config.output.valid"], false);
}
