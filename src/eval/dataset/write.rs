//! Cases back into their dataset line shape: what `dataset from-telemetry` writes, and what a
//! loaded case reads as again (a case written, then parsed, is the same case).

use serde_json::{Map, Value, json};

use crate::eval::assertion::{Assertion, AssertionKind, JsonPathMatch};

use super::Case;

impl Case {
    /// The case as one dataset line's JSON object (`{"id", "description"?, "tags"?,
    /// "context", "assertions", "pass_rate"?, "threshold"?}`), fields left out at their
    /// defaults. Write it with `serde_json::to_string` and a newline.
    pub fn to_json(&self) -> Value {
        let mut case = Map::new();
        case.insert("id".into(), json!(self.id));
        if let Some(description) = &self.description {
            case.insert("description".into(), json!(description));
        }
        if !self.tags.is_empty() {
            case.insert("tags".into(), json!(self.tags));
        }
        // The wire shape; a case never pins a version (the evaluation does).
        let mut context = serde_json::to_value(&self.context)
            .unwrap_or_else(|_| json!({"user_id": self.context.subject_id()}));
        if let Some(fields) = context.as_object_mut() {
            fields.remove("version");
        }
        case.insert("context".into(), context);
        case.insert(
            "assertions".into(),
            Value::Array(self.assertions.iter().map(Assertion::to_json).collect()),
        );
        if let Some(rate) = self.pass_rate {
            case.insert("pass_rate".into(), json!(rate));
        }
        if let Some(threshold) = self.threshold {
            case.insert("threshold".into(), json!(threshold));
        }
        Value::Object(case)
    }
}

impl Assertion {
    /// The assertion in its dataset shape (`{"type": "contains", "value": "paths",
    /// "case_sensitive": false}`), weight, threshold and versions left out at their defaults.
    pub fn to_json(&self) -> Value {
        let mut fields = Map::new();
        fields.insert("type".into(), json!(self.type_name()));
        match &self.kind {
            AssertionKind::Equals { value } => {
                fields.insert("value".into(), value.clone());
            }
            AssertionKind::Contains {
                value,
                case_sensitive,
            }
            | AssertionKind::NotContains {
                value,
                case_sensitive,
            } => {
                fields.insert("value".into(), json!(value));
                if !case_sensitive {
                    fields.insert("case_sensitive".into(), json!(false));
                }
            }
            AssertionKind::Regex { pattern } => {
                fields.insert("value".into(), json!(pattern.as_str()));
            }
            AssertionKind::IsJson => {}
            AssertionKind::JsonSchema { schema } => {
                if let Some(schema) = schema {
                    fields.insert("value".into(), schema.schema().clone());
                }
            }
            AssertionKind::JsonPath { path, expected } => {
                fields.insert("path".into(), json!(path.as_str()));
                let (name, value) = match expected {
                    JsonPathMatch::Equals(value) => ("equals", value),
                    JsonPathMatch::Contains(value) => ("contains", value),
                };
                fields.insert(name.into(), value.clone());
            }
            AssertionKind::MaxTokens { value } => {
                fields.insert("value".into(), json!(value));
            }
            AssertionKind::MaxLatencyMs { value } | AssertionKind::MaxCostUsd { value } => {
                fields.insert("value".into(), json!(value));
            }
            AssertionKind::FinishReason { value } => {
                fields.insert("value".into(), json!(value));
            }
            AssertionKind::Judge {
                rubric,
                feature,
                model,
            } => {
                fields.insert("value".into(), json!(rubric));
                if let Some(feature) = feature {
                    fields.insert("feature".into(), json!(feature));
                }
                if let Some(model) = model {
                    fields.insert("model".into(), json!(model));
                }
            }
        }
        if self.weight != 1.0 {
            fields.insert("weight".into(), json!(self.weight));
        }
        if let Some(threshold) = self.threshold {
            fields.insert("threshold".into(), json!(threshold));
        }
        if !self.versions.is_empty() {
            fields.insert("versions".into(), json!(self.versions));
        }
        Value::Object(fields)
    }
}
