//! Assertions: what an answer must satisfy, each graded into a [`Grade`] (pass, fail or
//! skipped, a score in 0..=1 and a reason). Every kind but `judge` is graded here from an
//! [`Observation`] of the answer; `judge` asks a judge model (see the `judge` module), which the
//! runner dispatches.

mod json;

use serde_json::Value;

use crate::client::Completion;
use crate::output::{OutputSchema, ToolCall};

pub use json::{AssertionSchema, JsonPathQuery};

/// One assertion of a case: `{"type": ..., "value": ..., "weight": ..., "threshold": ...,
/// "versions": [...]}` in a dataset.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Assertion {
    /// What is checked.
    pub kind: AssertionKind,
    /// How much the assertion counts in the case's weighted score (default 1; 0 makes it
    /// informational: graded and reported, never failing the case).
    pub weight: f64,
    /// The lowest score that passes (0..=1); without one, the kind's own pass/fail decides.
    /// Mostly for `judge`, whose verdict carries a score.
    pub threshold: Option<f64>,
    /// The versions the assertion applies to; empty for every version (a `json_path` on the
    /// JSON version of a feature that also has prose versions names it here).
    pub versions: Vec<String>,
}

/// The kinds of assertion. Text comparisons look at the answer text (for a structured version,
/// the JSON text the model wrote).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AssertionKind {
    /// `equals`: the text equals `value` (a string), or the parsed answer equals `value` (any
    /// other JSON value).
    Equals {
        /// The expected text or JSON value.
        value: Value,
    },
    /// `contains`: the text contains `value` (`"case_sensitive": false` folds case).
    Contains {
        /// The text looked for.
        value: String,
        /// Whether case matters (default true).
        case_sensitive: bool,
    },
    /// `not_contains`: the text does not contain `value`.
    NotContains {
        /// The text that must be absent.
        value: String,
        /// Whether case matters (default true).
        case_sensitive: bool,
    },
    /// `regex`: the text matches the pattern (Rust `regex` syntax, unanchored).
    Regex {
        /// The compiled pattern.
        pattern: regex::Regex,
    },
    /// `is_json`: the text parses as JSON.
    IsJson,
    /// `json_schema`: the text parses as JSON valid against `value`, or against the version's
    /// output schema when the assertion gives none.
    JsonSchema {
        /// The schema given, compiled; `None` for the version's own.
        schema: Option<AssertionSchema>,
    },
    /// `json_path`: the values a JSONPath (RFC 9535) selects in the parsed answer equal, or
    /// contain, the expected value.
    JsonPath {
        /// The query, compiled (`$.paths[0].title`).
        path: JsonPathQuery,
        /// How the selected values are compared.
        expected: JsonPathMatch,
    },
    /// `max_tokens`: the answer used at most this many output tokens.
    MaxTokens {
        /// Output tokens.
        value: u64,
    },
    /// `max_latency_ms`: the call took at most this long (ms).
    MaxLatencyMs {
        /// Milliseconds.
        value: f64,
    },
    /// `max_cost_usd`: the call cost at most this much (USD).
    MaxCostUsd {
        /// US dollars.
        value: f64,
    },
    /// `finish_reason`: generation stopped for this reason (`stop`, `length`, `tool_calls`,
    /// ...; the shared names of [`FinishReason`](crate::client::FinishReason)).
    FinishReason {
        /// The expected reason.
        value: String,
    },
    /// `judge`: a judge model grades the answer against a rubric and returns a structured
    /// verdict `{pass, score, reason}`.
    Judge {
        /// What a good answer does, in the rubric's words.
        rubric: String,
        /// The judge feature (default [`DEFAULT_JUDGE_FEATURE`](super::DEFAULT_JUDGE_FEATURE)).
        feature: Option<String>,
        /// A model of `providers.json` (`provider/name`) replacing the judge feature's chain.
        model: Option<String>,
    },
}

/// How a `json_path` assertion compares what the path selects.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JsonPathMatch {
    /// The single selected value equals it (a path selecting zero or several values compares
    /// the array of them, so `"equals": []` says the path selects nothing).
    Equals(Value),
    /// Some selected value equals it, or a selected string contains it (a string), or a
    /// selected array holds it.
    Contains(Value),
}

/// What a run produced, as assertions see it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The answer text (a structured version's JSON text).
    pub text: &'a str,
    /// The parsed answer of a version with an output schema.
    pub data: Option<&'a Value>,
    /// The tool calls the model asked for.
    pub tool_calls: &'a [ToolCall],
    /// The version's output schema, for `json_schema` without a schema of its own.
    pub output_schema: Option<&'a OutputSchema>,
    /// Output tokens used.
    pub output_tokens: u64,
    /// The call's wall time in ms.
    pub latency_ms: f64,
    /// The call's cost in USD.
    pub cost_usd: f64,
    /// The shared name of the finish reason, if the provider gave one.
    pub finish_reason: Option<&'a str>,
}

impl<'a> Observation<'a> {
    /// What `completion` shows.
    pub fn of(completion: &'a Completion) -> Observation<'a> {
        Observation {
            text: &completion.text,
            data: completion.data.as_ref(),
            tool_calls: &completion.tool_calls,
            output_schema: completion.resolution.output.as_ref(),
            output_tokens: completion.usage.output_tokens,
            latency_ms: completion.latency_ms,
            cost_usd: completion.cost_usd,
            finish_reason: completion
                .finish_reason
                .as_ref()
                .map(|reason| reason.as_str()),
        }
    }
}

/// Whether an assertion passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GradeOutcome {
    /// It held.
    Pass,
    /// It did not.
    Fail,
    /// It could not be graded meaningfully and counts neither way (a judge verdict made up by
    /// the mock provider).
    Skipped,
}

/// The grade of one assertion on one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// Pass, fail or skipped.
    pub outcome: GradeOutcome,
    /// 0..=1: 1 or 0 for plain assertions, the verdict's score for a judge.
    pub score: f64,
    /// Why, for a person (`"found \"Nurse\""`, `"took 1840 ms, above 1500"`).
    pub reason: String,
}

impl Grade {
    /// A pass with score 1.
    pub fn pass(reason: impl Into<String>) -> Grade {
        Grade {
            outcome: GradeOutcome::Pass,
            score: 1.0,
            reason: reason.into(),
        }
    }

    /// A failure with score 0.
    pub fn fail(reason: impl Into<String>) -> Grade {
        Grade {
            outcome: GradeOutcome::Fail,
            score: 0.0,
            reason: reason.into(),
        }
    }

    /// Neither: not counted.
    pub fn skipped(reason: impl Into<String>) -> Grade {
        Grade {
            outcome: GradeOutcome::Skipped,
            score: 0.0,
            reason: reason.into(),
        }
    }

    /// Pass or fail by `holds`.
    pub fn check(holds: bool, reason: impl Into<String>) -> Grade {
        if holds {
            Grade::pass(reason)
        } else {
            Grade::fail(reason)
        }
    }
}

impl Assertion {
    /// An assertion of `kind` with weight 1, no threshold, for every version.
    pub fn new(kind: AssertionKind) -> Assertion {
        Assertion {
            kind,
            weight: 1.0,
            threshold: None,
            versions: Vec::new(),
        }
    }

    /// The dataset name of the kind (`contains`, `json_path`, ...).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            AssertionKind::Equals { .. } => "equals",
            AssertionKind::Contains { .. } => "contains",
            AssertionKind::NotContains { .. } => "not_contains",
            AssertionKind::Regex { .. } => "regex",
            AssertionKind::IsJson => "is_json",
            AssertionKind::JsonSchema { .. } => "json_schema",
            AssertionKind::JsonPath { .. } => "json_path",
            AssertionKind::MaxTokens { .. } => "max_tokens",
            AssertionKind::MaxLatencyMs { .. } => "max_latency_ms",
            AssertionKind::MaxCostUsd { .. } => "max_cost_usd",
            AssertionKind::FinishReason { .. } => "finish_reason",
            AssertionKind::Judge { .. } => "judge",
        }
    }

    /// Whether this is a `judge` assertion (graded by a model, not by [`Assertion::grade`]).
    pub fn is_judge(&self) -> bool {
        matches!(self.kind, AssertionKind::Judge { .. })
    }

    /// Whether the assertion applies to `version`.
    pub fn applies_to(&self, version: &str) -> bool {
        self.versions.is_empty() || self.versions.iter().any(|listed| listed == version)
    }

    /// Applies the threshold to a grade of this assertion: with one, the score decides.
    pub fn with_threshold(&self, grade: Grade) -> Grade {
        match (self.threshold, grade.outcome) {
            (Some(threshold), GradeOutcome::Pass | GradeOutcome::Fail) => Grade {
                outcome: if grade.score >= threshold {
                    GradeOutcome::Pass
                } else {
                    GradeOutcome::Fail
                },
                reason: format!(
                    "score {:.2} against threshold {threshold:.2}: {}",
                    grade.score, grade.reason
                ),
                score: grade.score,
            },
            _ => grade,
        }
    }

    /// Grades every kind but `judge` against what a run produced (a `judge` is skipped here:
    /// the runner asks the judge model).
    pub fn grade(&self, observation: &Observation<'_>) -> Grade {
        let text = observation.text;
        match &self.kind {
            AssertionKind::Contains {
                value,
                case_sensitive,
            } => {
                let found = contains(text, value, *case_sensitive);
                Grade::check(
                    found,
                    format!("{} {value:?}", if found { "found" } else { "did not find" }),
                )
            }
            AssertionKind::NotContains {
                value,
                case_sensitive,
            } => {
                let found = contains(text, value, *case_sensitive);
                Grade::check(
                    !found,
                    format!("{} {value:?}", if found { "found" } else { "did not find" }),
                )
            }
            AssertionKind::MaxTokens { value } => Grade::check(
                observation.output_tokens <= *value,
                format!("{} output tokens, limit {value}", observation.output_tokens),
            ),
            AssertionKind::MaxLatencyMs { value } => Grade::check(
                observation.latency_ms <= *value,
                format!("took {:.0} ms, limit {value} ms", observation.latency_ms),
            ),
            AssertionKind::MaxCostUsd { value } => Grade::check(
                observation.cost_usd <= *value,
                format!("cost {:.6} USD, limit {value} USD", observation.cost_usd),
            ),
            AssertionKind::FinishReason { value } => {
                let actual = observation.finish_reason.unwrap_or("none");
                Grade::check(
                    actual == value,
                    format!("finish reason {actual}, expected {value}"),
                )
            }
            AssertionKind::Equals { value } => json::grade_equals(value, observation),
            AssertionKind::Regex { pattern } => {
                let found = pattern.find(text);
                Grade::check(
                    found.is_some(),
                    match found {
                        Some(found) => format!("/{pattern}/ matched {:?}", clip(found.as_str())),
                        None => format!("/{pattern}/ did not match"),
                    },
                )
            }
            AssertionKind::IsJson => match json::answer_value(observation) {
                Ok(_) => Grade::pass("the answer is JSON"),
                Err(reason) => Grade::fail(reason),
            },
            AssertionKind::JsonSchema { schema } => {
                json::grade_schema(schema.as_ref(), observation)
            }
            AssertionKind::JsonPath { path, expected } => {
                json::grade_path(path, expected, observation)
            }
            AssertionKind::Judge { .. } => Grade::skipped("graded by the judge model"),
        }
    }
}

/// At most 80 characters of `text`, with `...` when cut: reasons quote answers, which may be
/// long.
pub(crate) fn clip(text: &str) -> String {
    const LIMIT: usize = 80;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

fn contains(text: &str, value: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        text.contains(value)
    } else {
        text.to_lowercase().contains(&value.to_lowercase())
    }
}
