//! Property tests: any strings and values convert to messages that round-trip.

use proptest::prelude::*;

use super::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\0".to_string()),
        "\\PC{0,40}",
        Just("x".repeat(100_000)),
    ]
}

fn latency() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(f64::MAX),
        0.0..1.0e7f64,
    ]
}

proptest! {
    /// Whatever the strings and latencies of a call, its spans encode and decode, stay in
    /// one trace, and never end before they start.
    #[test]
    fn any_call_converts_to_spans_that_round_trip(
        request_id in text(),
        feature_name in text(),
        model in text(),
        attempt_latency in latency(),
        request_latency in latency(),
    ) {
        let mut converter = converter();
        let mut first = attempt(1, 10, attempt_latency, None, None);
        let mut last = request(1000, request_latency, None);
        first.request_id.clone_from(&request_id);
        last.request_id.clone_from(&request_id);
        if let EventBody::Attempt(fields) = &mut first.body {
            fields.model.clone_from(&model);
        }
        if let EventBody::Request(fields) = &mut last.body {
            fields.feature.feature.clone_from(&feature_name);
            fields.input_messages = Some(json!([{"role": "user", "content": feature_name}]));
        }
        converter.push(&first);
        converter.push(&last);
        let (_, spans) = sent_spans(&mut converter);
        prop_assert_eq!(spans.len(), 3);
        let trace = TraceContext::root_for(&request_id).trace_id.0.to_vec();
        for span in &spans {
            prop_assert_eq!(&span.trace_id, &trace);
            prop_assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        }
    }

    /// Any feedback value (numbers of every size, NUL bytes, empty strings, nesting)
    /// becomes a log record that encodes and decodes.
    #[test]
    fn any_feedback_value_is_a_log_record_that_round_trips(
        value in prop_oneof![
            any::<i64>().prop_map(|number| json!(number)),
            any::<u64>().prop_map(|number| json!(number)),
            any::<f64>().prop_filter("JSON numbers are finite", |number| number.is_finite())
                .prop_map(|number| json!(number)),
            text().prop_map(|text| json!(text)),
            text().prop_map(|text| json!({"nested": [text, null, {}]})),
            Just(json!([])),
        ],
        metric_name in text(),
    ) {
        let mut converter = converter();
        converter.push(&record(
            "feedback",
            at(0),
            EventBody::Feedback(Box::new(FeedbackFields {
                metric: metric_name,
                value,
                request: None,
            })),
        ));
        let logs = sent_logs(&mut converter);
        prop_assert_eq!(logs.len(), 1);
        prop_assert_eq!(logs[0].event_name.as_str(), "feedback");
    }
}
