//! Realistic telemetry records, as the engine sends them for an experiment-resolved call: its
//! `prompt.resolve`, its one `llm.attempt` and its `llm.request`. Shared by the telemetry bench
//! and the line-format tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::Utc;
use prompt_config::telemetry::event::{
    AttemptFields, EventBody, FeatureFields, RequestFields, ResolveFields, SCHEMA_VERSION,
    TelemetryRecord,
};
use serde_json::json;

/// The fields of an experiment-resolved call, as the engine copies them into each event.
pub fn feature_fields() -> FeatureFields {
    let attributes = BTreeMap::from([
        ("plan".to_owned(), json!("pro")),
        ("sector".to_owned(), json!("technology")),
    ]);
    FeatureFields {
        feature: "career_path_navigator".to_owned(),
        version: "v3".to_owned(),
        source: "experiment",
        experiment: Some("tone_test".to_owned()),
        variant: Some("concise".to_owned()),
        rule: None,
        bucket: Some(0.4273),
        subject_id: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            .to_owned(),
        attributes,
        prompt_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
        config_revision: "2026-11-27T10:15:00Z-4f2a".to_owned(),
        eval_run_id: None,
        trace: None,
    }
}

/// A `prompt.resolve` record as the engine sends one for an experiment-resolved call.
pub fn resolve_record(sequence: u64) -> TelemetryRecord {
    TelemetryRecord {
        schema_version: SCHEMA_VERSION,
        timestamp: Utc::now(),
        event: "prompt.resolve",
        request_id: format!("req_{sequence:016x}"),
        body: EventBody::Resolve(Box::new(ResolveFields {
            feature: feature_fields(),
            provider: "anthropic".to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            input_messages: None,
        })),
    }
}

/// An `llm.attempt` record: the one successful attempt of the call.
pub fn attempt_record(sequence: u64) -> TelemetryRecord {
    TelemetryRecord {
        schema_version: SCHEMA_VERSION,
        timestamp: Utc::now(),
        event: "llm.attempt",
        request_id: format!("req_{sequence:016x}"),
        body: EventBody::Attempt(Box::new(AttemptFields {
            operation: "chat",
            feature: "career_path_navigator".to_owned(),
            version: "v3".to_owned(),
            provider: "anthropic".to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            attempt: 1,
            outcome: "success",
            error_type: None,
            status: Some(200),
            latency_ms: 2315.9,
            wait_ms: 0.0,
            breaker_state: "closed",
            stream: None,
            invalid_output: None,
            trace: None,
        })),
    }
}

/// An `llm.request` record as the engine sends one for an experiment-resolved call.
pub fn request_record(sequence: u64) -> TelemetryRecord {
    TelemetryRecord {
        schema_version: SCHEMA_VERSION,
        timestamp: Utc::now(),
        event: "llm.request",
        request_id: format!("req_{sequence:016x}"),
        body: EventBody::Request(Box::new(RequestFields {
            operation: "chat",
            feature: feature_fields(),
            provider: "anthropic".to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            response_model: Some("claude-sonnet-4-5-20250929".to_owned()),
            response_id: Some(format!("msg_01{sequence:022}")),
            finish_reasons: vec!["end_turn".to_owned()],
            input_tokens: 1834,
            output_tokens: 412,
            cache_read_input_tokens: 1024,
            cache_creation_input_tokens: 0,
            outcome: "success",
            error_type: None,
            attempts: 1,
            latency_ms: 2317.4,
            cost_usd: 0.011_682,
            cost_estimated: false,
            refusal: false,
            downgraded: false,
            cache_hit: None,
            cache_saved_usd: None,
            cache_partition: None,
            stream: None,
            output: None,
            variables: None,
            input_messages: None,
            output_messages: None,
        })),
    }
}
