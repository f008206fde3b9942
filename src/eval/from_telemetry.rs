//! Dataset cases from production telemetry: each `llm.request` line of a feature that recorded
//! its text (the feature's `telemetry.record_text` opt-in, which also records the context's
//! template variables as `prompt_config.variables`) becomes a regression case in the dataset
//! line shape, so a failure users saw is run against every later version
//! (`prompt-config dataset from-telemetry`).
//!
//! What a case holds and why:
//! - `context`: the subject id hashed (`sha256:<hex>`, kept as it is when the log already
//!   hashed it), the attributes as recorded (only those the feature allow-lists), the recorded
//!   variables, and the conversation history when it can be recovered reliably: the request's
//!   version, rendered again from the recorded variables, must give exactly the first recorded
//!   input messages; what follows them is the history. When the version is gone or renders
//!   differently, the history is left out (counted in the summary), never guessed.
//! - `assertions`: `finish_reason` `stop` (`tool_calls` when the recorded answer called tools),
//!   so a cut-off answer fails; `json_schema` on every version of the feature with an output
//!   schema (each against its own schema); and, when the request's feedback carries a comment
//!   (a text value), a `judge` assertion whose rubric asks that the problem the user reported
//!   is gone. A low score without a comment says something was wrong but not what, so no
//!   rubric is made up from it.
//! - `metadata`: the request id, version, time, feedback and the recorded answer (or the
//!   error), for the person reviewing the case.
//!
//! Lines are read as `stats` reads them: bytes split on newlines, a line that is not UTF-8 or
//! not a JSON object skipped and counted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Snapshot;
use crate::error::Error;
use crate::prompt::sha256_hex;
use crate::resolve::ResolveError;
use crate::telemetry::TelemetryError;

/// What to take from the logs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FromTelemetryOptions {
    /// The feature whose requests become cases.
    pub feature: String,
    /// Keep only requests whose feedback score is below this (see [`FromTelemetryOptions::metric`]);
    /// requests without a numeric feedback value are then left out.
    pub feedback_below: Option<f64>,
    /// The feedback metric that scores a request (`rating`, `thumbs_up`); `None` takes the
    /// lowest value of any metric (booleans count 1/0).
    pub metric: Option<String>,
    /// At most this many cases, the first ones in log order.
    pub limit: Option<usize>,
}

impl FromTelemetryOptions {
    /// Every recorded request of `feature`.
    pub fn new(feature: impl Into<String>) -> Self {
        FromTelemetryOptions {
            feature: feature.into(),
            feedback_below: None,
            metric: None,
            limit: None,
        }
    }

    /// Only requests whose feedback score is below `score`.
    pub fn feedback_below(mut self, score: f64) -> Self {
        self.feedback_below = Some(score);
        self
    }

    /// The feedback metric that scores a request.
    pub fn metric(mut self, metric: impl Into<String>) -> Self {
        self.metric = Some(metric.into());
        self
    }

    /// At most `limit` cases.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// The cases built, and what happened to every line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TelemetryCases {
    /// One dataset line each (the agreed line shape), in log order.
    pub cases: Vec<Value>,
    /// The counts.
    pub summary: FromTelemetrySummary,
}

/// How many lines were read, kept and left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FromTelemetrySummary {
    /// Non-blank lines read, every file.
    pub lines_read: u64,
    /// Lines that were not UTF-8 JSON objects.
    pub lines_skipped: u64,
    /// `llm.request` lines of the feature.
    pub requests: u64,
    /// Cases written.
    pub kept: u64,
    /// Requests an evaluation made (`prompt_config.eval.run_id`): test traffic, never a
    /// user's request, so never a regression case.
    pub evaluation: u64,
    /// Requests without recorded text (the feature's `record_text` was off).
    pub no_text: u64,
    /// Requests with text but without `prompt_config.variables` (logged before the field
    /// existed).
    pub no_variables: u64,
    /// Requests left out by `feedback_below` (no score, or not below it).
    pub feedback_not_below: u64,
    /// Requests left out by `limit`.
    pub over_limit: u64,
    /// Requests left out because an earlier line had the same request id: logs given twice,
    /// or rotated files that overlap, give one case per request.
    pub repeated: u64,
    /// Kept cases whose recorded input had messages beyond the template's that could not be
    /// told apart from it (the version is gone or renders differently): history left out.
    pub history_left_out: u64,
}

/// One feedback value about a request.
#[derive(Debug, Clone, PartialEq)]
struct Feedback {
    metric: String,
    value: Value,
    /// When it was given (the line's `timestamp`): with the metric and value, what tells a
    /// feedback line read twice from a second feedback.
    timestamp: String,
}

impl Feedback {
    /// Booleans as 1/0, numbers as they are; text is a comment, not a score.
    fn score(&self) -> Option<f64> {
        match &self.value {
            Value::Bool(value) => Some(if *value { 1.0 } else { 0.0 }),
            Value::Number(number) => number.as_f64(),
            _ => None,
        }
    }
}

/// Reads `paths` (telemetry JSONL, rotated files included) and builds a case from every
/// recorded request of the options' feature. `snapshot` is the configuration the cases will
/// run against: it names the versions with an output schema and renders versions again to
/// find the history.
///
/// Errors: the feature is not in `snapshot` (`unknown_feature`), a file cannot be read (`io`).
pub fn cases_from_telemetry(
    snapshot: &Snapshot,
    paths: &[PathBuf],
    options: &FromTelemetryOptions,
) -> crate::Result<TelemetryCases> {
    let Some(compiled) = snapshot.features.get(&options.feature) else {
        return Err(ResolveError::UnknownFeature {
            feature: options.feature.clone(),
            known: snapshot
                .feature_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
        .into());
    };
    let mut structured: Vec<&String> = compiled
        .pinnable
        .iter()
        .filter(|(_, route)| route.prompt.output.is_some())
        .map(|(version, _)| version)
        .collect();
    structured.sort();
    let mut summary = FromTelemetrySummary::default();
    let mut requests: Vec<Map<String, Value>> = Vec::new();
    let mut feedback: HashMap<String, Vec<Feedback>> = HashMap::new();
    for path in paths {
        read_file(
            path,
            &options.feature,
            &mut summary,
            &mut requests,
            &mut feedback,
        )?;
    }
    let mut cases = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for request in &requests {
        summary.requests += 1;
        // The first line of a request id is the request; any later one is the same line read
        // again (a case id is `telemetry-<request_id>`, and a dataset refuses duplicate ids).
        if !seen.insert(text(request, "request_id")) {
            summary.repeated += 1;
            continue;
        }
        if request.contains_key("prompt_config.eval.run_id") {
            summary.evaluation += 1;
            continue;
        }
        let Some(input) = request
            .get("gen_ai.input.messages")
            .and_then(Value::as_array)
        else {
            summary.no_text += 1;
            continue;
        };
        let Some(Value::Object(variables)) = request.get("prompt_config.variables") else {
            summary.no_variables += 1;
            continue;
        };
        let request_id = text(request, "request_id");
        let given = feedback.get(request_id).map(Vec::as_slice).unwrap_or(&[]);
        let score = given
            .iter()
            .filter(|item| {
                options
                    .metric
                    .as_ref()
                    .is_none_or(|metric| *metric == item.metric)
            })
            .filter_map(Feedback::score)
            .min_by(f64::total_cmp);
        if let Some(below) = options.feedback_below
            && !score.is_some_and(|score| score < below)
        {
            summary.feedback_not_below += 1;
            continue;
        }
        if options.limit.is_some_and(|limit| cases.len() >= limit) {
            summary.over_limit += 1;
            continue;
        }
        let version = text(request, "gen_ai.prompt.version");
        let history = recover_history(
            compiled.pinnable.get(version).map(|r| &r.prompt),
            variables,
            input,
        );
        if history.is_none() {
            summary.history_left_out += 1;
        }
        cases.push(case(request, variables, history, given, &structured));
        summary.kept += 1;
    }
    Ok(TelemetryCases { cases, summary })
}

/// Reads one file's lines: the feature's requests and every feedback line.
fn read_file(
    path: &PathBuf,
    feature: &str,
    summary: &mut FromTelemetrySummary,
    requests: &mut Vec<Map<String, Value>>,
    feedback: &mut HashMap<String, Vec<Feedback>>,
) -> crate::Result<()> {
    let failure = |source: std::io::Error| {
        Error::from(TelemetryError::Io {
            path: path.clone(),
            source,
        })
    };
    let reader = BufReader::new(File::open(path).map_err(failure)?);
    read_lines(reader, feature, summary, requests, feedback).map_err(failure)
}

/// [`read_file`] on any reader.
fn read_lines(
    mut reader: impl BufRead,
    feature: &str,
    summary: &mut FromTelemetrySummary,
    requests: &mut Vec<Map<String, Value>>,
    feedback: &mut HashMap<String, Vec<Feedback>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        // Bytes, not `lines()`: a crash can leave invalid UTF-8, which is a skipped line.
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(());
        }
        let Ok(line) = std::str::from_utf8(&buffer) else {
            summary.lines_read += 1;
            summary.lines_skipped += 1;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        summary.lines_read += 1;
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line.trim()) else {
            summary.lines_skipped += 1;
            continue;
        };
        match fields.get("event").and_then(Value::as_str) {
            Some("llm.request") if text(&fields, "gen_ai.prompt.name") == feature => {
                requests.push(fields);
            }
            Some("feedback") => {
                let request_id = text(&fields, "request_id").to_string();
                let metric = text(&fields, "prompt_config.feedback.metric").to_string();
                if let Some(value) = fields.get("prompt_config.feedback.value") {
                    let given = Feedback {
                        metric,
                        value: value.clone(),
                        timestamp: text(&fields, "timestamp").to_string(),
                    };
                    // The same feedback line read again (overlapping logs) is one feedback.
                    let known = feedback.entry(request_id).or_default();
                    if !known.contains(&given) {
                        known.push(given);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The history of a recorded request: the input messages after those the version renders from
/// the recorded variables, when the rendering gives exactly the first recorded messages.
/// `Some(empty)` when there is no history; `None` when it cannot be told apart.
fn recover_history(
    prompt: Option<&Arc<crate::prompt::CompiledPrompt>>,
    variables: &Map<String, Value>,
    input: &[Value],
) -> Option<Vec<Value>> {
    let rendered = prompt?
        .render(&Arc::new(Value::Object(variables.clone())))
        .ok()?;
    let rendered = serde_json::to_value(&rendered).ok()?;
    let rendered = rendered.as_array()?;
    (input.len() >= rendered.len() && input[..rendered.len()] == rendered[..])
        .then(|| input[rendered.len()..].to_vec())
}

/// The dataset line of one request.
fn case(
    request: &Map<String, Value>,
    variables: &Map<String, Value>,
    history: Option<Vec<Value>>,
    feedback: &[Feedback],
    structured: &[&String],
) -> Value {
    let request_id = text(request, "request_id");
    let version = text(request, "gen_ai.prompt.version");
    let subject = text(request, "prompt_config.subject_id");
    let subject = if subject.starts_with("sha256:") {
        subject.to_string()
    } else {
        format!("sha256:{}", sha256_hex(subject.as_bytes()))
    };
    let mut context = json!({ "user_id": subject, "variables": variables });
    if let Some(Value::Object(attributes)) = request.get("prompt_config.attributes") {
        context["attributes"] = Value::Object(attributes.clone());
    }
    if let Some(history) = history.filter(|history| !history.is_empty()) {
        context["messages"] = Value::Array(history);
    }
    let answer = request
        .get("gen_ai.output.messages")
        .and_then(Value::as_array)
        .and_then(|messages| messages.first());
    let called_tools = answer.is_some_and(|message| message.get("tool_calls").is_some());
    let mut assertions = vec![json!({
        "type": "finish_reason",
        "value": if called_tools { "tool_calls" } else { "stop" },
    })];
    if !structured.is_empty() {
        assertions.push(json!({"type": "json_schema", "versions": structured}));
    }
    let comments: Vec<&str> = feedback
        .iter()
        .filter_map(|item| item.value.as_str())
        .collect();
    if !comments.is_empty() {
        assertions.push(json!({"type": "judge", "value": rubric(&comments)}));
    }
    let mut metadata = json!({
        "request_id": request_id,
        "version": version,
        "timestamp": text(request, "timestamp"),
        "feedback": feedback
            .iter()
            .map(|item| json!({"metric": item.metric, "value": item.value}))
            .collect::<Vec<_>>(),
    });
    match (answer, request.get("error.type")) {
        (_, Some(error)) => metadata["error"] = error.clone(),
        (Some(answer), None) => {
            metadata["answer"] = answer.get("content").cloned().unwrap_or(Value::Null);
        }
        (None, None) => {}
    }
    let description = match feedback.iter().find_map(Feedback::score) {
        Some(_) => format!(
            "{version} request {request_id} ({}), feedback {}",
            text(request, "timestamp"),
            feedback
                .iter()
                .map(|item| format!("{}={}", item.metric, item.value))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "{version} request {request_id} ({})",
            text(request, "timestamp")
        ),
    };
    json!({
        "id": format!("telemetry-{request_id}"),
        "description": description,
        "tags": ["from-telemetry"],
        "context": context,
        "assertions": assertions,
        "metadata": metadata,
    })
}

/// The rubric of a case whose request got comments: the problem users reported must be gone.
fn rubric(comments: &[&str]) -> String {
    let quoted: Vec<String> = comments
        .iter()
        .map(|comment| format!("{comment:?}"))
        .collect();
    format!(
        "A user reported a problem with an earlier answer to this same request: {}. Pass only \
         if this answer does not have that problem and still answers the request fully and \
         correctly.",
        quoted.join("; ")
    )
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> &'a str {
    fields.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests;
