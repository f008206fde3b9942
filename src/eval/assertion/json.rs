//! The assertions that read the answer as JSON: `equals` with a JSON value, `is_json`,
//! `json_schema` (a schema of the assertion's own, compiled once, or the version's output
//! schema) and `json_path` (an RFC 9535 query, compiled once). The answer is the version's
//! parsed structured answer when it has one, else the answer text parsed here.

use std::sync::Arc;

use serde_json::Value;

use super::{Grade, JsonPathMatch, Observation, clip};

/// A JSON Schema given by a `json_schema` assertion, compiled: any schema `jsonschema`
/// compiles (draft 2020-12 unless its `$schema` says otherwise), not only the subset the
/// providers' structured output accepts, since it only checks answers.
#[derive(Clone)]
pub struct AssertionSchema {
    schema: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for AssertionSchema {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_tuple("AssertionSchema")
            .field(&self.schema)
            .finish()
    }
}

impl PartialEq for AssertionSchema {
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema
    }
}

impl AssertionSchema {
    /// Compiles `schema`.
    ///
    /// Errors: why `jsonschema` refused it, with the pointer into the schema when it gives one
    /// (`/properties/paths/type: ...`).
    pub fn compile(schema: Value) -> Result<AssertionSchema, String> {
        let validator = jsonschema::validator_for(&schema).map_err(|error| {
            let pointer = error.schema_path().as_str().to_string();
            if pointer.is_empty() {
                format!("not a valid JSON Schema: {error}")
            } else {
                format!("not a valid JSON Schema at {pointer}: {error}")
            }
        })?;
        Ok(AssertionSchema {
            schema: Arc::new(schema),
            validator: Arc::new(validator),
        })
    }

    /// The schema as written in the dataset.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Every violation of `value`, each `pointer: message` (`(root)` for the root).
    fn violations(&self, value: &Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .map(|error| {
                let pointer = error.instance_path().as_str().to_string();
                let pointer = if pointer.is_empty() {
                    "(root)".to_string()
                } else {
                    pointer
                };
                format!("{pointer}: {}", clip(&error.to_string()))
            })
            .collect()
    }
}

/// An RFC 9535 JSONPath query, compiled, with the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPathQuery {
    text: String,
    query: serde_json_path::JsonPath,
}

impl JsonPathQuery {
    /// Compiles `text` (`$.paths[0].role`, `$.paths[*].skills_to_add`,
    /// `$.paths[?length(@.role) == 0]`).
    ///
    /// Errors: the parser's message (where the query stops making sense).
    pub fn parse(text: &str) -> Result<JsonPathQuery, String> {
        if !text.starts_with('$') {
            // The parser's own words for this are "at position 0, parser error".
            return Err(format!(
                "not an RFC 9535 JSONPath: a query starts with $ (the answer's root), as in \
                 $.paths[0].role, not {:?}",
                clip(text)
            ));
        }
        let query = serde_json_path::JsonPath::parse(text)
            .map_err(|error| format!("not an RFC 9535 JSONPath: {error}"))?;
        Ok(JsonPathQuery {
            text: text.to_string(),
            query,
        })
    }

    /// The query as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The values the query selects in `value`, in document order.
    pub fn select<'v>(&self, value: &'v Value) -> Vec<&'v Value> {
        self.query.query(value).all()
    }
}

/// The answer as JSON: the parsed structured answer, else the text parsed.
///
/// Errors: why the text is not JSON, for a grade's reason.
pub(super) fn answer_value(observation: &Observation<'_>) -> Result<Value, String> {
    if let Some(data) = observation.data {
        return Ok(data.clone());
    }
    serde_json::from_str(observation.text).map_err(|error| {
        if observation.text.trim().is_empty() {
            "the answer is empty, not JSON".to_string()
        } else {
            format!("the answer is not JSON: {error}")
        }
    })
}

/// `equals`: a string compares with the text as is; any other value with the parsed answer.
pub(super) fn grade_equals(expected: &Value, observation: &Observation<'_>) -> Grade {
    if let Value::String(expected) = expected {
        let text = observation.text;
        return Grade::check(
            text == expected,
            if text == expected {
                "the answer equals the expected text".to_string()
            } else {
                format!("the answer {:?} is not {:?}", clip(text), clip(expected))
            },
        );
    }
    match answer_value(observation) {
        Ok(actual) if actual == *expected => Grade::pass("the answer equals the expected JSON"),
        Ok(actual) => Grade::fail(format!(
            "the answer {} is not {}",
            clip(&actual.to_string()),
            clip(&expected.to_string())
        )),
        Err(reason) => Grade::fail(reason),
    }
}

/// `json_schema`: the answer against the assertion's schema, or the version's output schema.
pub(super) fn grade_schema(
    schema: Option<&AssertionSchema>,
    observation: &Observation<'_>,
) -> Grade {
    // Before the answer is read: without a schema to check against, the assertion is what is
    // wrong, whatever the answer (JSON or prose).
    if schema.is_none() && observation.output_schema.is_none() {
        return Grade::fail(
            "the version declares no output schema; give the assertion a schema of its own \
             (\"value\") or limit it to the JSON versions (\"versions\")",
        );
    }
    let value = match answer_value(observation) {
        Ok(value) => value,
        Err(reason) => return Grade::fail(reason),
    };
    let violations = match (schema, observation.output_schema) {
        (Some(schema), _) => schema.violations(&value),
        (None, Some(output)) => match output.validate(&value.to_string()) {
            Ok(_) => Vec::new(),
            Err(invalid) => vec![clip(&invalid.to_string())],
        },
        // Returned above.
        (None, None) => Vec::new(),
    };
    let whose = match schema {
        Some(_) => "the assertion's schema",
        None => "the version's output schema",
    };
    if violations.is_empty() {
        Grade::pass(format!("the answer is valid against {whose}"))
    } else {
        Grade::fail(format!(
            "the answer breaks {whose}: {}",
            violations.join("; ")
        ))
    }
}

/// `json_path`: what the query selects in the answer, compared as [`JsonPathMatch`] says.
pub(super) fn grade_path(
    path: &JsonPathQuery,
    expected: &JsonPathMatch,
    observation: &Observation<'_>,
) -> Grade {
    let value = match answer_value(observation) {
        Ok(value) => value,
        Err(reason) => return Grade::fail(reason),
    };
    let selected = path.select(&value);
    let shown = |values: &[&Value]| -> String {
        match values {
            [] => "nothing".to_string(),
            [one] => clip(&one.to_string()),
            many => clip(&Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string()),
        }
    };
    match expected {
        JsonPathMatch::Equals(expected) => {
            let actual = match selected.as_slice() {
                [one] => (*one).clone(),
                values => Value::Array(values.iter().map(|value| (*value).clone()).collect()),
            };
            let holds = actual == *expected;
            Grade::check(
                holds,
                format!(
                    "{} selected {}{}",
                    path.as_str(),
                    shown(&selected),
                    if holds {
                        String::new()
                    } else {
                        format!(", expected {}", clip(&expected.to_string()))
                    }
                ),
            )
        }
        JsonPathMatch::Contains(expected) => {
            let holds = selected.iter().any(|value| holds_value(value, expected));
            Grade::check(
                holds,
                format!(
                    "{} selected {}, which {} {}",
                    path.as_str(),
                    shown(&selected),
                    if holds {
                        "contains"
                    } else {
                        "does not contain"
                    },
                    clip(&expected.to_string())
                ),
            )
        }
    }
}

/// Whether one selected value holds `expected`: equals it, is a string containing it (a
/// string), or an array with an element equal to it.
fn holds_value(value: &Value, expected: &Value) -> bool {
    if value == expected {
        return true;
    }
    match (value, expected) {
        (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
        (Value::Array(items), _) => items.contains(expected),
        _ => false,
    }
}
