//! One dataset line into one [`Case`]: the line parsed as JSON, checked against the embedded
//! dataset schema (each violation a problem with its pointer), then compiled: the context
//! through the bindings' `Context` deserializer, each assertion into its [`AssertionKind`]
//! (regexes, JSON paths and schemas compiled here, once, not at every run). A line collects
//! every problem it has; only a line without any becomes a case.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::error::DatasetProblem;
use crate::eval::assertion::{
    Assertion, AssertionKind, AssertionSchema, JsonPathMatch, JsonPathQuery,
};
use crate::resolve::Context;

use super::{Case, DATASET_SCHEMA};

/// The longest problem message kept: schema messages quote the value at fault, which may be
/// a whole huge line.
const MAX_MESSAGE_CHARS: usize = 300;

/// What one file's lines gave.
#[derive(Default)]
pub(super) struct Parsed {
    /// The cases of the lines without problems.
    pub cases: Vec<Case>,
    /// Every problem of the other lines.
    pub problems: Vec<DatasetProblem>,
    /// The id of every line that has a string id, with or without problems, and its line:
    /// a duplicate is reported even when the line has other problems too.
    pub ids: Vec<(String, usize)>,
}

/// The cases of `lines` (1-based in problems; a line is `Err` with the reason when it is not
/// UTF-8) and every problem found; blank lines are skipped.
pub(super) fn parse_lines<'a>(
    file: &str,
    lines: impl Iterator<Item = Result<&'a str, String>>,
) -> Parsed {
    let mut parsed = Parsed::default();
    let Parsed {
        cases,
        problems,
        ids,
    } = &mut parsed;
    for (index, line) in lines.enumerate() {
        let number = index + 1;
        let problem = |pointer: &str, message: String| DatasetProblem {
            file: file.to_string(),
            line: number,
            pointer: pointer.to_string(),
            message: clip(message),
        };
        match line {
            Err(reason) => problems.push(problem("", reason)),
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => match parse_case(text, |id| ids.push((id.to_string(), number))) {
                Ok(mut case) => {
                    case.file = file.to_string();
                    case.line = number;
                    cases.push(case);
                }
                Err(found) => problems.extend(
                    found
                        .into_iter()
                        .map(|(pointer, message)| problem(&pointer, message)),
                ),
            },
        }
    }
    parsed
}

/// Why `line` is not UTF-8: the first bad byte and its 1-based column (in bytes).
pub(super) fn not_utf8(line: &[u8], error: std::str::Utf8Error) -> String {
    let at = error.valid_up_to();
    match line.get(at) {
        Some(byte) => format!(
            "not UTF-8: byte 0x{byte:02X} at column {}; a dataset is UTF-8 text",
            at + 1
        ),
        None => "not UTF-8; a dataset is UTF-8 text".to_string(),
    }
}

fn clip(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message,
    }
}

/// A problem inside a line: the pointer into the case and the message.
type LineProblem = (String, String);

/// The case on one non-blank line (without its file and line), or every problem of the line;
/// `found_id` is called with the case's id when it is a string, problems or not.
fn parse_case(text: &str, found_id: impl FnOnce(&str)) -> Result<Case, Vec<LineProblem>> {
    if let Some(at) = text.find('\0') {
        return Err(vec![(
            String::new(),
            format!(
                "a NUL byte at column {}: a line holds one case as a JSON object",
                at + 1
            ),
        )]);
    }
    let mut value: Value = serde_json::from_str(text).map_err(|error| {
        let message = error.to_string();
        // serde_json ends its messages with "at line 1 column N": the line is ours to name.
        let message = match message.rfind(" at line ") {
            Some(cut) => &message[..cut],
            None => &message,
        };
        vec![(
            String::new(),
            format!(
                "not JSON at column {}: {message}; a line holds one case as a JSON object",
                error.column()
            ),
        )]
    })?;
    let mut problems = Vec::new();
    if let Some(id) = value.get("id").and_then(Value::as_str) {
        found_id(id);
        if let Some(problem) = control_character(id) {
            problems.push(("/id".to_string(), problem));
        }
    }
    // Refused before the schema check, with the reason, and taken out so the schema does not
    // report it a second time as an unexpected property.
    if let Some(context) = value.get_mut("context").and_then(Value::as_object_mut)
        && context.remove("version").is_some()
    {
        problems.push((
            "/context/version".to_string(),
            "a case cannot pin a version: the evaluation pins each version it runs \
             (--versions, EvalOptions::versions)"
                .to_string(),
        ));
    }
    problems.extend(schema_problems(&value));
    // The parts the schema found nothing wrong with are still compiled, so a bad regex is
    // reported beside a bad weight on the same line rather than on the next attempt.
    let clean = |part: &str| {
        !problems.iter().any(|(pointer, _)| {
            pointer == part
                || pointer
                    .strip_prefix(part)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let context_clean = clean("/context") && value.get("context").is_some_and(Value::is_object);
    let listed = value.get("assertions").and_then(Value::as_array);
    let assertions_clean: Vec<bool> = match listed {
        Some(listed) if !problems.iter().any(|(pointer, _)| pointer == "/assertions") => (0
            ..listed.len())
            .map(|index| clean(&format!("/assertions/{index}")))
            .collect(),
        _ => Vec::new(),
    };
    match compile_case(&value, context_clean, &assertions_clean) {
        Ok(case) if problems.is_empty() => Ok(case),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Why `id` cannot name a case: the first control character (C0, DEL or C1) in it. An id is
/// printed in reports, error lines and JUnit names, where such a character would garble the
/// terminal or the CI log.
fn control_character(id: &str) -> Option<String> {
    let (at, found) = id
        .chars()
        .enumerate()
        .find(|(_, character)| character.is_control())?;
    Some(format!(
        "the id has a control character (U+{:04X} at character {}): an id is printed in \
         reports, error lines and JUnit test names; use printable characters",
        u32::from(found),
        at + 1
    ))
}

fn schema() -> Result<&'static jsonschema::Validator, &'static str> {
    static SCHEMA: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let schema: Value =
                serde_json::from_str(DATASET_SCHEMA).map_err(|error| error.to_string())?;
            jsonschema::validator_for(&schema).map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(String::as_str)
}

/// Every violation of the dataset schema, with its pointer into the case.
fn schema_problems(value: &Value) -> Vec<LineProblem> {
    let validator = match schema() {
        Ok(validator) => validator,
        Err(message) => {
            return vec![(
                String::new(),
                format!("the embedded dataset schema does not compile: {message}"),
            )];
        }
    };
    if validator.is_valid(value) {
        return Vec::new();
    }
    validator
        .iter_errors(value)
        .map(|error| {
            let pointer = error.instance_path().as_str().to_string();
            let keyword = error
                .schema_path()
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or("");
            let message = if pointer == "/assertions" && keyword == "minItems" {
                "a case must assert something: give at least one assertion".to_string()
            } else {
                let message = error.to_string();
                if message.chars().count() > MAX_MESSAGE_CHARS {
                    // The message quotes the value at fault; too long to read, so without it.
                    error.masked().to_string()
                } else {
                    message
                }
            };
            (pointer, message)
        })
        .collect()
}

/// The case of a line, or the problems of compiling it: the context when `context_clean` (the
/// schema found nothing wrong there), and each assertion whose `assertions_clean` entry is
/// true (the others are left out: the schema's problems already cover them).
fn compile_case(
    value: &Value,
    context_clean: bool,
    assertions_clean: &[bool],
) -> Result<Case, Vec<LineProblem>> {
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let share = |name: &str| value.get(name).and_then(Value::as_f64);
    let mut problems = Vec::new();
    let context = match serde_json::from_value::<Context>(value["context"].clone()) {
        _ if !context_clean => None,
        Ok(context) => Some(context),
        Err(error) => {
            let message = error.to_string();
            let pointer = if message.starts_with("user_id") {
                "/context/user_id"
            } else {
                "/context"
            };
            problems.push((pointer.to_string(), message));
            None
        }
    };
    let mut assertions = Vec::new();
    let listed = value["assertions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (index, assertion) in listed.iter().enumerate() {
        if !assertions_clean.get(index).copied().unwrap_or(false) {
            continue;
        }
        match compile_assertion(assertion) {
            Ok(assertion) => assertions.push(assertion),
            Err((field, message)) => {
                let pointer = if field.is_empty() {
                    format!("/assertions/{index}")
                } else {
                    format!("/assertions/{index}/{field}")
                };
                problems.push((pointer, message));
            }
        }
    }
    match context {
        Some(context) if problems.is_empty() => Ok(Case {
            id: text("id").unwrap_or_default(),
            description: text("description"),
            file: String::new(),
            line: 0,
            context,
            assertions,
            pass_rate: share("pass_rate"),
            threshold: share("threshold"),
            tags: value
                .get("tags")
                .and_then(Value::as_array)
                .map(|tags| {
                    tags.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }),
        _ => Err(problems),
    }
}

/// One schema-valid assertion compiled, or the field at fault (empty for the assertion) and why.
fn compile_assertion(value: &Value) -> Result<Assertion, (String, String)> {
    let empty = Map::new();
    let fields = value.as_object().unwrap_or(&empty);
    let string = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
    let number = |name: &str| fields.get(name).and_then(Value::as_f64);
    let at = |field: &str, message: String| (field.to_string(), message);
    let kind = match string("type").as_deref().unwrap_or("") {
        "equals" => AssertionKind::Equals {
            value: fields.get("value").cloned().unwrap_or(Value::Null),
        },
        kind @ ("contains" | "not_contains") => {
            let value = string("value").unwrap_or_default();
            let case_sensitive = fields
                .get("case_sensitive")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if kind == "contains" {
                AssertionKind::Contains {
                    value,
                    case_sensitive,
                }
            } else {
                AssertionKind::NotContains {
                    value,
                    case_sensitive,
                }
            }
        }
        "regex" => {
            let pattern = string("value").unwrap_or_default();
            let pattern = regex::Regex::new(&pattern).map_err(|error| {
                // The regex crate's message spans several lines, with a caret under the fault.
                let message = error.to_string().replace('\n', " ");
                let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
                at("value", format!("not a valid regex: {message}"))
            })?;
            AssertionKind::Regex { pattern }
        }
        "is_json" => AssertionKind::IsJson,
        "json_schema" => AssertionKind::JsonSchema {
            schema: match fields.get("value") {
                Some(schema) => {
                    Some(AssertionSchema::compile(schema.clone()).map_err(|m| at("value", m))?)
                }
                None => None,
            },
        },
        "json_path" => {
            let path = JsonPathQuery::parse(&string("path").unwrap_or_default())
                .map_err(|message| at("path", message))?;
            let expected = match (fields.get("equals"), fields.get("contains")) {
                (Some(value), None) => JsonPathMatch::Equals(value.clone()),
                (None, Some(value)) => JsonPathMatch::Contains(value.clone()),
                (Some(_), Some(_)) => {
                    return Err(at(
                        "",
                        "a json_path assertion takes \"equals\" or \"contains\", not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(at(
                        "",
                        "a json_path assertion needs \"equals\" or \"contains\": what the \
                         selected values must be"
                            .into(),
                    ));
                }
            };
            AssertionKind::JsonPath { path, expected }
        }
        "max_tokens" => AssertionKind::MaxTokens {
            // The schema took an integer, which JSON may write as 900.0.
            value: number("value").unwrap_or(0.0) as u64,
        },
        "max_latency_ms" => AssertionKind::MaxLatencyMs {
            value: number("value").unwrap_or(0.0),
        },
        "max_cost_usd" => AssertionKind::MaxCostUsd {
            value: number("value").unwrap_or(0.0),
        },
        "finish_reason" => AssertionKind::FinishReason {
            value: string("value").unwrap_or_default(),
        },
        "judge" => AssertionKind::Judge {
            rubric: string("value").unwrap_or_default(),
            feature: string("feature"),
            model: string("model"),
        },
        other => return Err(at("type", format!("unknown assertion type {other:?}"))),
    };
    let mut assertion = Assertion::new(kind);
    assertion.weight = number("weight").unwrap_or(1.0);
    assertion.threshold = number("threshold");
    assertion.versions = fields
        .get("versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(assertion)
}
