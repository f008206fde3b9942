//! Reading telemetry files into requests and feedback, then selecting what the analysis counts:
//! events from `--since` on, and feedback joined to its request by `request_id`. Only the fields
//! the analysis needs are kept, so millions of lines cost a few hundred bytes each.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::evaluations::EvalRunLine;
use super::output::{AnswerLine, OutputLine};
use super::report::FileSummary;
use super::streams::StreamLine;
use super::{DIMENSIONS, StatsError};

/// The value of a dimension a line does not carry.
pub(super) const MISSING: &str = "-";

/// The fields of an `llm.request` line the analysis uses.
#[derive(Debug, Clone)]
pub(super) struct Request {
    /// `request_id`, empty when absent.
    pub id: String,
    /// When the request finished.
    pub timestamp: DateTime<Utc>,
    /// The values of the `--by` dimensions, in order.
    pub key: Vec<String>,
    /// `gen_ai.prompt.name`, `-` when absent.
    pub feature: String,
    /// `prompt_config.experiment`.
    pub experiment: Option<String>,
    /// `prompt_config.variant`, `-` when absent.
    pub variant: String,
    /// `gen_ai.prompt.version`, `-` when absent.
    pub version: String,
    /// `gen_ai.provider.name`, `-` when absent.
    pub provider: String,
    /// `gen_ai.request.model`, `-` when absent.
    pub model: String,
    /// `prompt_config.outcome` is `error`, or an `error.type` is set.
    pub failed: bool,
    /// `prompt_config.latency_ms`.
    pub latency_ms: Option<f64>,
    /// `prompt_config.cost_usd`.
    pub cost_usd: Option<f64>,
    /// `prompt_config.cost_estimated` is true: the cost is an estimate.
    pub cost_estimated: bool,
    /// `gen_ai.usage.input_tokens`, 0 when absent.
    pub input_tokens: u64,
    /// `gen_ai.usage.output_tokens`, 0 when absent.
    pub output_tokens: u64,
    /// `prompt_config.cache.hit`: whether a response cache lookup hit; `None` without lookup.
    pub cache_hit: Option<bool>,
    /// `prompt_config.cache.saved_usd`, 0 when absent.
    pub cache_saved_usd: f64,
    /// `prompt_config.cache.partition`.
    pub cache_partition: Option<String>,
    /// The stream fields, when the request streamed.
    pub stream: Option<StreamLine>,
    /// The structured-output fields, when the version has an output schema or tools.
    pub output: Option<OutputLine>,
}

/// A feedback value as the analysis sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum FeedbackValue {
    /// `true` or `false`.
    Boolean(bool),
    /// Any JSON number.
    Number(f64),
    /// Strings and anything else: not averaged.
    Ignored,
}

impl FeedbackValue {
    /// Booleans as 1/0, numbers as they are.
    pub fn number(self) -> Option<f64> {
        match self {
            FeedbackValue::Boolean(value) => Some(if value { 1.0 } else { 0.0 }),
            FeedbackValue::Number(value) => Some(value),
            FeedbackValue::Ignored => None,
        }
    }
}

/// The fields of a `feedback` line the analysis uses.
#[derive(Debug, Clone)]
pub(super) struct Feedback {
    /// The request it is about.
    pub request_id: String,
    /// When it was given.
    pub timestamp: DateTime<Utc>,
    /// `prompt_config.feedback.metric`.
    pub metric: String,
    /// `prompt_config.feedback.value`.
    pub value: FeedbackValue,
}

/// Everything read from the files.
#[derive(Debug, Default)]
pub(super) struct Telemetry {
    /// Lines read and skipped per file.
    pub files: Vec<FileSummary>,
    /// Every `llm.request` line.
    pub requests: Vec<Request>,
    /// Every `feedback` line.
    pub feedback: Vec<Feedback>,
    /// Every `llm.attempt` line that got an answer.
    pub answers: Vec<AnswerLine>,
    /// Every readable `eval.run` line, in the order read.
    pub evaluations: Vec<EvalRunLine>,
    /// `llm.request` lines an evaluation made (`prompt_config.eval.run_id`), left out of the
    /// request statistics.
    pub evaluation_requests: u64,
}

/// What the analysis counts: requests from `--since` on, and their feedback.
#[derive(Debug, Default)]
pub(super) struct Selection {
    /// Requests from `since` on, oldest first.
    pub requests: Vec<Request>,
    /// Feedback with the index of its request in `requests`.
    pub feedback: Vec<(usize, Feedback)>,
    /// Attempts that got an answer, from `since` on.
    pub answers: Vec<AnswerLine>,
    /// `eval.run` lines from `since` on, in the order read.
    pub evaluations: Vec<EvalRunLine>,
    /// Feedback whose request id no request line carries.
    pub feedback_unmatched: u64,
    /// Events older than `since`, and feedback about such requests.
    pub dropped_before_since: u64,
}

enum Line {
    Request(Box<Request>),
    Feedback(Feedback),
    Answer(AnswerLine),
    EvalRun(Box<EvalRunLine>),
    /// A request an evaluation made: test traffic, counted apart.
    EvalRequest,
    Other,
    Unparseable,
}

/// Reads every line of every file, in the order given.
pub(super) fn read_files(paths: &[PathBuf], by: &[String]) -> Result<Telemetry, StatsError> {
    let mut telemetry = Telemetry::default();
    for path in paths {
        let failure = |source| StatsError::Read {
            path: path.clone(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(failure)?);
        let mut summary = FileSummary {
            path: path.display().to_string(),
            lines_read: 0,
            lines_skipped: 0,
        };
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            // Bytes, not `lines()`: a crash can leave invalid UTF-8, which is a skipped line
            // rather than a failed read.
            if reader.read_until(b'\n', &mut buffer).map_err(failure)? == 0 {
                break;
            }
            let line = match std::str::from_utf8(&buffer) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => parse_line(text.trim(), by),
                Err(_) => Line::Unparseable,
            };
            summary.lines_read += 1;
            match line {
                Line::Request(request) => telemetry.requests.push(*request),
                Line::Feedback(feedback) => telemetry.feedback.push(feedback),
                Line::Answer(answer) => telemetry.answers.push(answer),
                Line::EvalRun(run) => telemetry.evaluations.push(*run),
                Line::EvalRequest => telemetry.evaluation_requests += 1,
                Line::Other => {}
                Line::Unparseable => summary.lines_skipped += 1,
            }
        }
        telemetry.files.push(summary);
    }
    Ok(telemetry)
}

fn parse_line(text: &str, by: &[String]) -> Line {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return Line::Unparseable;
    };
    let Some(event) = text_field(&fields, "event") else {
        return Line::Unparseable;
    };
    if !matches!(
        event,
        "llm.request" | "feedback" | "llm.attempt" | "eval.run"
    ) {
        return Line::Other;
    }
    let Some(timestamp) = text_field(&fields, "timestamp")
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|timestamp| timestamp.with_timezone(&Utc))
    else {
        return Line::Unparseable;
    };
    if event == "llm.attempt" {
        // Attempt lines only feed the structured-output figures; one without an answer (or
        // unreadable) is no figure, not a skipped line.
        return AnswerLine::read(&fields, timestamp).map_or(Line::Other, Line::Answer);
    }
    if event == "eval.run" {
        // Evaluation lines are reported apart and never counted as requests; one without its
        // run id, feature, version or counts is no figure, not a skipped line.
        return EvalRunLine::read(&fields, timestamp)
            .map_or(Line::Other, |run| Line::EvalRun(Box::new(run)));
    }
    if event == "llm.request" && fields.contains_key("prompt_config.eval.run_id") {
        // An evaluation's calls are test traffic: counting them would mix pinned test runs
        // into the versions' production figures.
        return Line::EvalRequest;
    }
    let request_id = text_field(&fields, "request_id")
        .unwrap_or_default()
        .to_string();
    if event == "feedback" {
        let Some(metric) = text_field(&fields, "prompt_config.feedback.metric") else {
            return Line::Unparseable;
        };
        let value = match fields.get("prompt_config.feedback.value") {
            Some(Value::Bool(value)) => FeedbackValue::Boolean(*value),
            Some(Value::Number(number)) => number
                .as_f64()
                .map_or(FeedbackValue::Ignored, FeedbackValue::Number),
            _ => FeedbackValue::Ignored,
        };
        return Line::Feedback(Feedback {
            request_id,
            timestamp,
            metric: metric.to_string(),
            value,
        });
    }
    let error_type = fields
        .get("error.type")
        .is_some_and(|value| !value.is_null());
    let outcome = text_field(&fields, "prompt_config.outcome");
    Line::Request(Box::new(Request {
        id: request_id,
        timestamp,
        key: by.iter().map(|name| dimension(&fields, name)).collect(),
        feature: dimension(&fields, "feature"),
        experiment: text_field(&fields, "prompt_config.experiment").map(str::to_string),
        variant: dimension(&fields, "variant"),
        version: dimension(&fields, "version"),
        provider: dimension(&fields, "provider"),
        model: dimension(&fields, "model"),
        failed: outcome == Some("error") || error_type,
        latency_ms: fields
            .get("prompt_config.latency_ms")
            .and_then(Value::as_f64),
        cost_usd: fields.get("prompt_config.cost_usd").and_then(Value::as_f64),
        cost_estimated: fields
            .get("prompt_config.cost_estimated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        input_tokens: token_count(&fields, "gen_ai.usage.input_tokens"),
        output_tokens: token_count(&fields, "gen_ai.usage.output_tokens"),
        cache_hit: fields
            .get("prompt_config.cache.hit")
            .and_then(Value::as_bool),
        cache_saved_usd: fields
            .get("prompt_config.cache.saved_usd")
            .and_then(Value::as_f64)
            .filter(|usd| usd.is_finite() && *usd > 0.0)
            .unwrap_or(0.0),
        cache_partition: text_field(&fields, "prompt_config.cache.partition").map(str::to_string),
        stream: StreamLine::read(&fields),
        output: OutputLine::read(&fields),
    }))
}

fn text_field<'line>(fields: &'line Map<String, Value>, name: &str) -> Option<&'line str> {
    fields.get(name).and_then(Value::as_str)
}

fn token_count(fields: &Map<String, Value>, name: &str) -> u64 {
    fields.get(name).and_then(Value::as_u64).unwrap_or(0)
}

/// The value of a `--by` dimension on a line, `-` when absent.
fn dimension(fields: &Map<String, Value>, name: &str) -> String {
    let value = match DIMENSIONS.iter().find(|(dimension, _)| *dimension == name) {
        Some((_, field)) => fields.get(*field),
        None => fields
            .get("prompt_config.attributes")
            .and_then(|attributes| attributes.get(name)),
    };
    match value {
        None | Some(Value::Null) => MISSING.to_string(),
        Some(Value::String(text)) if text.is_empty() => MISSING.to_string(),
        Some(Value::String(text)) => text.clone(),
        // Numbers and booleans group by their JSON text, so `3` and `"3"` stay one group.
        Some(other) => other.to_string(),
    }
}

/// Keeps events from `since` on and joins feedback to its request.
pub(super) fn select(mut telemetry: Telemetry, since: Option<DateTime<Utc>>) -> Selection {
    // Chronological order, whatever order the files came in: floating-point sums depend on
    // the order of their terms, and the figures should not depend on how a glob listed files.
    telemetry
        .requests
        .sort_by(|left, right| (left.timestamp, &left.id).cmp(&(right.timestamp, &right.id)));
    telemetry.feedback.sort_by(|left, right| {
        (left.timestamp, &left.request_id, &left.metric).cmp(&(
            right.timestamp,
            &right.request_id,
            &right.metric,
        ))
    });
    let recent = |timestamp: DateTime<Utc>| since.is_none_or(|since| timestamp >= since);
    let mut selection = Selection::default();
    // `None` marks a request that exists but is older than `since`, so its feedback is dropped
    // with it instead of being reported as unmatched.
    let mut index_by_id: HashMap<String, Option<usize>> = HashMap::new();
    for request in telemetry.requests {
        let kept = recent(request.timestamp);
        if !kept {
            selection.dropped_before_since += 1;
        }
        let index = kept.then_some(selection.requests.len());
        // The first line of a request id wins; the engine never writes two.
        if !request.id.is_empty()
            && let Entry::Vacant(entry) = index_by_id.entry(request.id.clone())
        {
            entry.insert(index);
        }
        if kept {
            selection.requests.push(request);
        }
    }
    selection.answers = telemetry
        .answers
        .into_iter()
        .filter(|answer| recent(answer.timestamp))
        .collect();
    selection.evaluations = telemetry
        .evaluations
        .into_iter()
        .filter(|run| recent(run.at))
        .collect();
    for feedback in telemetry.feedback {
        if !recent(feedback.timestamp) {
            selection.dropped_before_since += 1;
            continue;
        }
        match index_by_id.get(&feedback.request_id) {
            Some(Some(index)) => selection.feedback.push((*index, feedback)),
            Some(None) => selection.dropped_before_since += 1,
            None => selection.feedback_unmatched += 1,
        }
    }
    selection
}
