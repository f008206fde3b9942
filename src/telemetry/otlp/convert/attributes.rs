//! OTLP attribute values: the small constructors every converter uses, JSON values (message
//! lists, allow-listed attributes) as structured `AnyValue`s, and a telemetry line flattened to
//! scalar attributes for a log record.

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use serde_json::Value;

/// Attributes being collected for one span, log record or data point.
#[derive(Debug, Default)]
pub(super) struct Attributes(pub(super) Vec<KeyValue>);

impl Attributes {
    pub(super) fn string(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.push(key, AnyValueKind::StringValue(value.into()))
    }

    pub(super) fn optional_string(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.string(key, value);
        }
        self
    }

    pub(super) fn int(&mut self, key: &str, value: u64) -> &mut Self {
        // OTLP integers are signed 64-bit; counts above i64::MAX saturate rather than wrap.
        self.push(
            key,
            AnyValueKind::IntValue(i64::try_from(value).unwrap_or(i64::MAX)),
        )
    }

    pub(super) fn double(&mut self, key: &str, value: f64) -> &mut Self {
        self.push(key, AnyValueKind::DoubleValue(value))
    }

    pub(super) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.push(key, AnyValueKind::BoolValue(value))
    }

    pub(super) fn strings(&mut self, key: &str, values: &[String]) -> &mut Self {
        let values = values
            .iter()
            .map(|value| any(AnyValueKind::StringValue(value.clone())))
            .collect();
        self.push(key, AnyValueKind::ArrayValue(ArrayValue { values }))
    }

    /// A JSON value as a structured attribute (objects as key-value lists, arrays as arrays),
    /// as the GenAI conventions ask for `gen_ai.input.messages` and `gen_ai.output.messages`.
    pub(super) fn json(&mut self, key: &str, value: &Value) -> &mut Self {
        self.0.push(key_value(key, json_value(value)));
        self
    }

    fn push(&mut self, key: &str, value: AnyValueKind) -> &mut Self {
        self.0.push(key_value(key, any(value)));
        self
    }
}

fn any(value: AnyValueKind) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn key_value(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..KeyValue::default()
    }
}

/// `value` as an `AnyValue`; `null` is the empty value (no kind), as the OTLP JSON mapping
/// reads an absent value.
pub(super) fn json_value(value: &Value) -> AnyValue {
    let kind = match value {
        Value::Null => None,
        Value::Bool(flag) => Some(AnyValueKind::BoolValue(*flag)),
        Value::Number(number) => Some(match number.as_i64() {
            Some(integer) => AnyValueKind::IntValue(integer),
            None => AnyValueKind::DoubleValue(number.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(text) => Some(AnyValueKind::StringValue(text.clone())),
        Value::Array(items) => Some(AnyValueKind::ArrayValue(ArrayValue {
            values: items.iter().map(json_value).collect(),
        })),
        Value::Object(fields) => Some(AnyValueKind::KvlistValue(KeyValueList {
            values: fields
                .iter()
                .map(|(key, value)| key_value(key, json_value(value)))
                .collect(),
        })),
    };
    AnyValue { value: kind }
}

/// The fields of a serialized telemetry line as attributes: scalars as they are, arrays of
/// scalars as arrays, objects flattened with dotted keys (`prompt_config.attributes.plan`).
/// `null`s are left out. The envelope (`schema_version`, `timestamp`, `event`, `request_id`) is
/// the log record's own fields, not attributes.
pub(super) fn flattened(line: &Value) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    if let Value::Object(fields) = line {
        for (key, value) in fields {
            if matches!(
                key.as_str(),
                "schema_version" | "timestamp" | "event" | "request_id"
            ) {
                continue;
            }
            flatten_into(&mut attributes, key, value);
        }
    }
    attributes
}

fn flatten_into(attributes: &mut Vec<KeyValue>, key: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Object(fields) => {
            for (inner, value) in fields {
                flatten_into(attributes, &format!("{key}.{inner}"), value);
            }
        }
        _ => attributes.push(key_value(key, json_value(value))),
    }
}

/// Nanoseconds since the Unix epoch (0 for a time before it or past 2262, which OTLP reads as
/// unknown).
pub(super) fn unix_nanos(time: DateTime<Utc>) -> u64 {
    time.timestamp_nanos_opt()
        .and_then(|nanos| u64::try_from(nanos).ok())
        .unwrap_or(0)
}

/// `milliseconds` (a record's latency) as whole nanoseconds; negative or non-finite as 0.
pub(super) fn millis_to_nanos(milliseconds: f64) -> u64 {
    if milliseconds.is_finite() && milliseconds > 0.0 {
        // `as` saturates at u64::MAX for a huge value, which is what an end time wants.
        (milliseconds * 1_000_000.0) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValueKind> {
        attributes
            .iter()
            .find(|pair| pair.key == key)
            .and_then(|pair| pair.value.as_ref())
            .and_then(|value| value.value.as_ref())
    }

    #[test]
    fn flattened_nests_objects_with_dotted_keys_and_skips_the_envelope_and_nulls() {
        let line = json!({
            "schema_version": 1, "timestamp": "2026-12-01T00:00:00.000Z", "event": "feedback",
            "request_id": "req_1", "prompt_config.attributes": {"plan": "pro"},
            "prompt_config.feedback.value": 4.5, "gone": null, "list": ["a", 1]
        });
        let attributes = flattened(&line);
        assert_eq!(attributes.len(), 3);
        assert_eq!(
            find(&attributes, "prompt_config.attributes.plan"),
            Some(&AnyValueKind::StringValue("pro".into()))
        );
        assert_eq!(
            find(&attributes, "prompt_config.feedback.value"),
            Some(&AnyValueKind::DoubleValue(4.5))
        );
        assert!(matches!(
            find(&attributes, "list"),
            Some(AnyValueKind::ArrayValue(array)) if array.values.len() == 2
        ));
    }

    #[test]
    fn json_values_keep_integers_as_integers_and_objects_as_key_value_lists() {
        let value = json_value(&json!({"role": "user", "n": 3, "big": u64::MAX}));
        let Some(AnyValueKind::KvlistValue(list)) = value.value else {
            panic!("an object becomes a kvlist, got {value:?}");
        };
        assert_eq!(find(&list.values, "n"), Some(&AnyValueKind::IntValue(3)));
        assert_eq!(
            find(&list.values, "big"),
            Some(&AnyValueKind::DoubleValue(u64::MAX as f64))
        );
    }

    #[test]
    fn latencies_that_are_negative_or_not_finite_are_zero_nanoseconds() {
        assert_eq!(millis_to_nanos(-1.0), 0);
        assert_eq!(millis_to_nanos(f64::NAN), 0);
        assert_eq!(millis_to_nanos(1.5), 1_500_000);
    }
}
