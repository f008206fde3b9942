//! The lines the telemetry writer writes for engine records: the hand-written fast path
//! (`Record::write_json`) gives byte for byte what `serde_json` gives for the same record, for
//! every event kind and every optional field; and drop reports carry their counts and span.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::support::telemetry_records::{attempt_record, request_record, resolve_record};
use chrono::{DateTime, TimeZone, Utc};
use prompt_config::telemetry::event::{
    CircuitFields, EventBody, FeedbackFields, ReloadFields, TelemetryRecord,
};
use prompt_config::telemetry::writer::{DropReport, Record};
use serde_json::{Value, json};

fn assert_same_line(record: &TelemetryRecord) {
    let mut fast = Vec::new();
    record.write_json(&mut fast).unwrap();
    let expected = serde_json::to_vec(record).unwrap();
    assert_eq!(
        String::from_utf8(fast).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

fn at(record: TelemetryRecord, timestamp: DateTime<Utc>) -> TelemetryRecord {
    TelemetryRecord {
        timestamp,
        ..record
    }
}

/// Text that needs every kind of JSON escape, and some that needs none but is not ASCII.
const AWKWARD: &str = "quote \" backslash \\ newline \n tab \t control \u{1} é 😀 \u{2028}";

#[test]
fn resolve_attempt_and_request_lines_are_the_serde_lines() {
    for sequence in [0, 7, u64::MAX] {
        assert_same_line(&resolve_record(sequence));
        assert_same_line(&attempt_record(sequence));
        assert_same_line(&request_record(sequence));
    }
}

#[test]
fn absent_optional_fields_stay_absent() {
    let mut resolve = resolve_record(1);
    if let EventBody::Resolve(fields) = &mut resolve.body {
        fields.feature.experiment = None;
        fields.feature.variant = None;
        fields.feature.bucket = None;
        fields.feature.attributes = BTreeMap::new();
    }
    assert_same_line(&resolve);
    let mut attempt = attempt_record(1);
    if let EventBody::Attempt(fields) = &mut attempt.body {
        fields.status = None;
    }
    assert_same_line(&attempt);
    let mut request = request_record(1);
    if let EventBody::Request(fields) = &mut request.body {
        fields.response_model = None;
        fields.response_id = None;
        fields.finish_reasons.clear();
    }
    assert_same_line(&request);
}

#[test]
fn every_optional_field_present_is_written_in_serde_order() {
    let messages = json!([{"role": "user", "content": AWKWARD}, {"n": [1, 2.5, null, true]}]);
    let mut resolve = resolve_record(2);
    if let EventBody::Resolve(fields) = &mut resolve.body {
        fields.feature.rule = Some("beta users".to_owned());
        fields.input_messages = Some(messages.clone());
    }
    assert_same_line(&resolve);
    let mut attempt = attempt_record(2);
    if let EventBody::Attempt(fields) = &mut attempt.body {
        fields.outcome = "failed";
        fields.error_type = Some("429".to_owned());
        fields.status = Some(429);
        fields.wait_ms = 1250.125;
    }
    assert_same_line(&attempt);
    let mut request = request_record(2);
    if let EventBody::Request(fields) = &mut request.body {
        fields.outcome = "error";
        fields.error_type = Some("all_providers_failed".to_owned());
        fields.cost_estimated = true;
        fields.refusal = true;
        fields.downgraded = true;
        fields.finish_reasons = vec!["refusal".to_owned(), "end_turn".to_owned()];
        fields.input_messages = Some(messages.clone());
        fields.output_messages = Some(json!([{"role": "assistant", "content": AWKWARD}]));
    }
    assert_same_line(&request);
}

#[test]
fn strings_needing_escapes_and_odd_numbers_are_written_as_serde_writes_them() {
    let mut request = request_record(3);
    request.request_id = AWKWARD.to_owned();
    if let EventBody::Request(fields) = &mut request.body {
        fields.feature.feature = AWKWARD.to_owned();
        fields.feature.subject_id = String::new();
        fields.feature.bucket = Some(f64::NAN);
        fields
            .feature
            .attributes
            .insert(AWKWARD.to_owned(), json!(AWKWARD));
        fields.model = "x".repeat(100);
        fields.latency_ms = f64::INFINITY;
        fields.cost_usd = 1e-12;
        fields.input_tokens = u64::MAX;
    }
    assert_same_line(&request);
}

#[test]
fn timestamps_are_written_as_chrono_writes_them() {
    let timestamps = [
        Utc.with_ymd_and_hms(2026, 11, 30, 8, 36, 4).unwrap(),
        Utc.timestamp_opt(1_795_000_000, 999_999_999).unwrap(),
        Utc.timestamp_opt(1_795_000_000, 1_000_000).unwrap(),
        Utc.timestamp_opt(0, 0).unwrap(),
        // A leap second, years outside 0000-9999: chrono's own forms.
        Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap(),
        Utc.with_ymd_and_hms(12_345, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).unwrap(),
    ];
    for timestamp in timestamps {
        // Twice in a row: once formatted, once from the per-second cache.
        assert_same_line(&at(attempt_record(4), timestamp));
        assert_same_line(&at(attempt_record(4), timestamp + Duration::from_millis(1)));
    }
}

#[test]
fn other_events_are_written_through_serde() {
    let bodies = [
        EventBody::CircuitTransition(CircuitFields {
            breaker: "openai/gpt-4o".to_owned(),
            from: "closed",
            to: "open",
            reason: AWKWARD.to_owned(),
            open_for_ms: Some(30_000),
        }),
        EventBody::Reload(ReloadFields {
            outcome: "error",
            config_revision: "r1".to_owned(),
            problems: vec!["features/a.json: /model: missing".to_owned()],
        }),
        EventBody::Feedback(Box::new(FeedbackFields {
            metric: "rating".to_owned(),
            value: json!(4),
            request: None,
        })),
    ];
    for body in bodies {
        assert_same_line(&TelemetryRecord {
            body,
            ..attempt_record(5)
        });
    }
}

#[test]
fn a_drop_report_line_carries_its_counts_and_the_span_of_its_drops() {
    let first_at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
    let last_at = first_at + Duration::from_millis(870);
    let record = TelemetryRecord::dropped(&DropReport {
        count: 12,
        total: 40,
        first_at,
        last_at,
    });
    let mut line = Vec::new();
    record.write_json(&mut line).unwrap();
    let line: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(line["event"], "telemetry.dropped");
    assert_eq!(line["request_id"], "");
    assert_eq!(line["prompt_config.dropped_events"], 12);
    assert_eq!(line["prompt_config.dropped.total"], 40);
    assert_eq!(
        line["prompt_config.dropped.first_at"],
        "2026-11-18T11:06:40.123Z"
    );
    assert_eq!(
        line["prompt_config.dropped.last_at"],
        "2026-11-18T11:06:40.993Z"
    );
}

#[test]
fn the_size_estimate_grows_with_what_a_record_holds() {
    let small = attempt_record(6);
    let request = request_record(6);
    assert!(small.approximate_size() < request.approximate_size());
    let mut long = request_record(6);
    if let EventBody::Request(fields) = &mut long.body {
        fields.output_messages =
            Some(json!([{"role": "assistant", "content": "x".repeat(10_000)}]));
    }
    assert!(long.approximate_size() >= request.approximate_size() + 10_000);
    // Not a serialization: a request record is estimated at its heap, about a kilobyte or two.
    assert!((500..4000).contains(&request.approximate_size()));
}
