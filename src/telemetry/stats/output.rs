//! Structured output in `stats`: how often answers broke the output schema (or a tool's
//! argument schema) and how many repairs it took, so a JSON version can be judged against a
//! prose one. Per group of the `--by` dimensions from the `prompt_config.output.*` fields of
//! `llm.request` lines (a successful request had one valid answer, and each invalid one is
//! counted in `prompt_config.output.invalid_outputs`); per feature, version, provider and model
//! from the `llm.attempt` lines (`invalid_output` against `success`, under the model that gave
//! the answer) with the repairs of the requests that model ended.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::read::Selection;

/// The `prompt_config.output.*` fields of one `llm.request` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct OutputLine {
    /// `prompt_config.output.valid` is `false`: the call failed on invalid answers.
    pub invalid: bool,
    /// `prompt_config.output.repairs`.
    pub repairs: u64,
    /// `prompt_config.output.invalid_outputs`.
    pub invalid_outputs: u64,
    /// `prompt_config.output.tool_calls`, 0 when absent.
    pub tool_calls: u64,
}

impl OutputLine {
    /// The output fields of a line, `None` unless it carries `prompt_config.output.repairs`
    /// (every request of a version with an output schema or tools does).
    pub fn read(fields: &Map<String, Value>) -> Option<OutputLine> {
        let count = |name: &str| fields.get(name).and_then(Value::as_u64).unwrap_or(0);
        let repairs = fields
            .get("prompt_config.output.repairs")
            .and_then(Value::as_u64)?;
        Some(OutputLine {
            invalid: fields.get("prompt_config.output.valid") == Some(&Value::Bool(false)),
            repairs,
            invalid_outputs: count("prompt_config.output.invalid_outputs"),
            tool_calls: count("prompt_config.output.tool_calls"),
        })
    }
}

/// An `llm.attempt` line that got an answer: `success` or `invalid_output`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AnswerLine {
    /// When the attempt started.
    pub timestamp: DateTime<Utc>,
    /// `gen_ai.prompt.name`.
    pub feature: String,
    /// `gen_ai.prompt.version`.
    pub version: String,
    /// `gen_ai.provider.name`.
    pub provider: String,
    /// `gen_ai.request.model`.
    pub model: String,
    /// The outcome was `invalid_output`.
    pub invalid: bool,
}

impl AnswerLine {
    /// The answer of an `llm.attempt` line, `None` for attempts that got none (failures,
    /// skips, broken streams) or lines without feature, version or model.
    pub fn read(fields: &Map<String, Value>, timestamp: DateTime<Utc>) -> Option<AnswerLine> {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
        let invalid = match fields
            .get("prompt_config.outcome")
            .and_then(Value::as_str)?
        {
            "success" => false,
            "invalid_output" => true,
            _ => return None,
        };
        Some(AnswerLine {
            timestamp,
            feature: text("gen_ai.prompt.name")?,
            version: text("gen_ai.prompt.version")?,
            provider: text("gen_ai.provider.name").unwrap_or_else(|| "-".to_string()),
            model: text("gen_ai.request.model")?,
            invalid,
        })
    }
}

/// The structured-output figures of one group; absent (and left out of JSON) when none of its
/// requests was of a version with an output schema or tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputGroupStats {
    /// Requests of a version with an output schema or tools.
    pub requests: u64,
    /// Answers validated: one per successful request, plus every invalid one.
    pub answers: u64,
    /// Answers that were invalid (attempt outcome `invalid_output`).
    pub invalid_outputs: u64,
    /// `invalid_outputs / answers`.
    pub invalid_output_rate: f64,
    /// Repair attempts, summed over the requests.
    pub repairs: u64,
    /// `repairs / requests`.
    pub repairs_per_request: f64,
    /// Requests that failed because no valid answer came (`prompt_config.output.valid: false`).
    pub failed_invalid: u64,
    /// Tool calls returned, summed over the requests.
    pub tool_calls: u64,
}

/// What a group's structured requests collect before their figures are computed.
#[derive(Debug, Default)]
pub(super) struct OutputAccumulator {
    requests: u64,
    valid_answers: u64,
    invalid_outputs: u64,
    repairs: u64,
    failed_invalid: u64,
    tool_calls: u64,
}

impl OutputAccumulator {
    /// Counts one structured request; `failed` says whether the request failed.
    pub fn add(&mut self, line: &OutputLine, failed: bool) {
        self.requests += 1;
        self.valid_answers += u64::from(!failed);
        self.invalid_outputs += line.invalid_outputs;
        self.repairs += line.repairs;
        self.failed_invalid += u64::from(line.invalid);
        self.tool_calls += line.tool_calls;
    }

    /// The group's figures, `None` when it had no structured request.
    pub fn finish(self) -> Option<OutputGroupStats> {
        if self.requests == 0 {
            return None;
        }
        let answers = self.valid_answers + self.invalid_outputs;
        Some(OutputGroupStats {
            requests: self.requests,
            answers,
            invalid_outputs: self.invalid_outputs,
            invalid_output_rate: ratio(self.invalid_outputs, answers),
            repairs: self.repairs,
            repairs_per_request: ratio(self.repairs, self.requests),
            failed_invalid: self.failed_invalid,
            tool_calls: self.tool_calls,
        })
    }
}

/// Structured-output figures of one feature, version, provider and model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputStats {
    /// The feature (`gen_ai.prompt.name`).
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// Answers this model gave (`llm.attempt` lines ending `success` or `invalid_output`).
    pub answers: u64,
    /// Of those, the invalid ones.
    pub invalid_outputs: u64,
    /// `invalid_outputs / answers`.
    pub invalid_output_rate: f64,
    /// Structured requests this model ended (answered, or failed on last).
    pub requests: u64,
    /// Repair attempts of those requests.
    pub repairs: u64,
}

/// One [`OutputStats`] per feature, version, provider and model of the structured versions
/// found (a version is structured when any of its request lines carries output fields),
/// sorted.
pub(super) fn summarize(selection: &Selection) -> Vec<OutputStats> {
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str);
    let structured: BTreeSet<(&str, &str)> = selection
        .requests
        .iter()
        .filter(|request| request.output.is_some())
        .map(|request| (request.feature.as_str(), request.version.as_str()))
        .collect();
    let mut rows: BTreeMap<Key<'_>, OutputStats> = BTreeMap::new();
    for answer in &selection.answers {
        if !structured.contains(&(answer.feature.as_str(), answer.version.as_str())) {
            continue;
        }
        let stats = row(
            &mut rows,
            (
                &answer.feature,
                &answer.version,
                &answer.provider,
                &answer.model,
            ),
        );
        stats.answers += 1;
        stats.invalid_outputs += u64::from(answer.invalid);
    }
    for request in &selection.requests {
        let Some(output) = &request.output else {
            continue;
        };
        let stats = row(
            &mut rows,
            (
                &request.feature,
                &request.version,
                &request.provider,
                &request.model,
            ),
        );
        stats.requests += 1;
        stats.repairs += output.repairs;
    }
    rows.into_values()
        .map(|mut stats| {
            stats.invalid_output_rate = ratio(stats.invalid_outputs, stats.answers);
            stats
        })
        .collect()
}

/// The row of `key`, created empty on first use.
fn row<'k, 'r>(
    rows: &'r mut BTreeMap<(&'k str, &'k str, &'k str, &'k str), OutputStats>,
    key: (&'k str, &'k str, &'k str, &'k str),
) -> &'r mut OutputStats {
    let (feature, version, provider, model) = key;
    rows.entry(key).or_insert_with(|| OutputStats {
        feature: feature.to_string(),
        version: version.to_string(),
        provider: provider.to_string(),
        model: model.to_string(),
        answers: 0,
        invalid_outputs: 0,
        invalid_output_rate: 0.0,
        requests: 0,
        repairs: 0,
    })
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
