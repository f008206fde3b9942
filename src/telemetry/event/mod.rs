//! The telemetry record: one JSON object per line, with OpenTelemetry GenAI attribute names
//! (semantic conventions v1.41.0) where one exists and `prompt_config.*` names for ours. Records
//! are built on the caller's thread from owned data and serialized on the writer's thread, so
//! the caller pays for a few string copies, not for JSON. The writer thread writes the three
//! events of every call (`prompt.resolve`, `llm.attempt`, `llm.request`) by hand, straight into
//! its batch buffer ([`TelemetryRecord::write_line`]); the line is byte for byte the one the
//! `Serialize` impl gives, which writes every other event.

mod alert;
mod eval;
mod line;
mod output;

pub use alert::AlertDeliveryFields;
pub use eval::{EvalCaseFields, EvalComparisonFields, EvalRunFields};
pub use output::{AttemptOutputFields, RequestOutputFields};

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::resolve::TraceContext;

/// The version of the line format; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// One line of the telemetry log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelemetryRecord {
    /// The line format's version.
    pub schema_version: u32,
    /// When the event happened, RFC 3339 UTC with milliseconds.
    #[serde(serialize_with = "rfc3339_milliseconds")]
    pub timestamp: DateTime<Utc>,
    /// The event's name (`llm.request`, `llm.attempt`, ...).
    pub event: &'static str,
    /// The request the event belongs to (empty for events outside a request).
    pub request_id: String,
    /// The event's fields.
    #[serde(flatten)]
    pub body: EventBody,
}

fn rfc3339_milliseconds<S: Serializer>(
    timestamp: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The fields of each kind of event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventBody {
    /// `prompt.resolve`: a resolution.
    Resolve(Box<ResolveFields>),
    /// `llm.request`: one `complete()` call, successful or not.
    Request(Box<RequestFields>),
    /// `llm.attempt`: one attempt of a call.
    Attempt(Box<AttemptFields>),
    /// `circuit.transition`: a breaker changed state.
    CircuitTransition(CircuitFields),
    /// `budget.alert`: a budget crossed a threshold.
    BudgetAlert(BudgetFields),
    /// `config.reload`: a reload succeeded or failed.
    Reload(ReloadFields),
    /// `feedback`: a quality signal about a request.
    Feedback(Box<FeedbackFields>),
    /// `telemetry.dropped`: events dropped because the queue was full.
    Dropped(DroppedFields),
    /// `state.degraded` / `state.restored`: the fleet's shared state (Redis) failed or is back.
    State(StateFields),
    /// `eval.case`: one case of an evaluation on one version.
    EvalCase(Box<EvalCaseFields>),
    /// `eval.run`: one version's results in an evaluation.
    EvalRun(Box<EvalRunFields>),
    /// `alert.sent` / `alert.failed`: an alert reached a channel, or did not after the retries.
    AlertDelivery(Box<AlertDeliveryFields>),
}

/// What every event about a resolved feature carries, so results can be cut by them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeatureFields {
    /// The feature.
    #[serde(rename = "gen_ai.prompt.name")]
    pub feature: String,
    /// The prompt version.
    #[serde(rename = "gen_ai.prompt.version")]
    pub version: String,
    /// Why the version was chosen (`pinned`, `experiment`, `rule`, `rollout`, `active`).
    #[serde(rename = "prompt_config.source")]
    pub source: &'static str,
    /// The experiment, when one decided.
    #[serde(
        rename = "prompt_config.experiment",
        skip_serializing_if = "Option::is_none"
    )]
    pub experiment: Option<String>,
    /// The variant, when an experiment decided.
    #[serde(
        rename = "prompt_config.variant",
        skip_serializing_if = "Option::is_none"
    )]
    pub variant: Option<String>,
    /// The targeting rule, when one decided.
    #[serde(rename = "prompt_config.rule", skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The subject's hash bucket, when an experiment or rollout decided.
    #[serde(
        rename = "prompt_config.bucket",
        skip_serializing_if = "Option::is_none"
    )]
    pub bucket: Option<f64>,
    /// The subject id, or `sha256:<hex>` of it when the feature hashes subject ids.
    #[serde(rename = "prompt_config.subject_id")]
    pub subject_id: String,
    /// The attributes the feature's `telemetry.attributes` allow-lists, by name.
    #[serde(
        rename = "prompt_config.attributes",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub attributes: BTreeMap<String, Value>,
    /// SHA-256 of the rendered messages.
    #[serde(rename = "prompt_config.prompt_hash")]
    pub prompt_hash: String,
    /// The config revision that served it.
    #[serde(rename = "prompt_config.config_revision")]
    pub config_revision: String,
    /// The evaluation run (`eval-...`) the request was made for; absent for users' traffic.
    #[serde(
        rename = "prompt_config.eval.run_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub eval_run_id: Option<String>,
    /// The caller's trace, when it passed a `traceparent`: `trace_id` and `parent_span_id`
    /// (hex), so lines join the caller's trace.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// `prompt.resolve` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolveFields {
    /// The feature and how it was resolved.
    #[serde(flatten)]
    pub feature: FeatureFields,
    /// The primary model's provider.
    #[serde(rename = "gen_ai.provider.name")]
    pub provider: String,
    /// The primary model.
    #[serde(rename = "gen_ai.request.model")]
    pub model: String,
    /// The rendered messages, only when the feature's `telemetry.record_text` is on.
    #[serde(
        rename = "gen_ai.input.messages",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_messages: Option<Value>,
}

/// `llm.request` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestFields {
    /// Always `chat`.
    #[serde(rename = "gen_ai.operation.name")]
    pub operation: &'static str,
    /// The feature and how it was resolved.
    #[serde(flatten)]
    pub feature: FeatureFields,
    /// The provider that answered, or the last one tried.
    #[serde(rename = "gen_ai.provider.name")]
    pub provider: String,
    /// The model that answered, or the last one tried.
    #[serde(rename = "gen_ai.request.model")]
    pub model: String,
    /// The model the provider reported.
    #[serde(
        rename = "gen_ai.response.model",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_model: Option<String>,
    /// The provider's response id.
    #[serde(rename = "gen_ai.response.id", skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Why generation stopped: the shared names (`stop`, `length`, `content_filter`, `refusal`,
    /// `tool_calls`), or the provider's own word for any other reason.
    #[serde(
        rename = "gen_ai.response.finish_reasons",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub finish_reasons: Vec<String>,
    /// All input tokens, cached ones included (as OpenTelemetry defines it).
    #[serde(rename = "gen_ai.usage.input_tokens")]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(rename = "gen_ai.usage.output_tokens")]
    pub output_tokens: u64,
    /// Of the input tokens, those read from the prompt cache.
    #[serde(rename = "gen_ai.usage.cache_read.input_tokens")]
    pub cache_read_input_tokens: u64,
    /// Of the input tokens, those written to the prompt cache.
    #[serde(rename = "gen_ai.usage.cache_creation.input_tokens")]
    pub cache_creation_input_tokens: u64,
    /// `success`, `error`, or for a stream `stream_incomplete` or `cancelled`.
    #[serde(rename = "prompt_config.outcome")]
    pub outcome: &'static str,
    /// The error kind (`all_providers_failed`, `budget_exceeded`, ...) on failure.
    #[serde(rename = "error.type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Attempts made.
    #[serde(rename = "prompt_config.attempts")]
    pub attempts: u32,
    /// Wall time of the call in milliseconds.
    #[serde(rename = "prompt_config.latency_ms")]
    pub latency_ms: f64,
    /// Cost in USD (0 on failure); estimated, never 0, when usage or price was unknown.
    #[serde(rename = "prompt_config.cost_usd")]
    pub cost_usd: f64,
    /// True when the cost (and the token counts) were estimated; absent otherwise.
    #[serde(
        rename = "prompt_config.cost_estimated",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub cost_estimated: bool,
    /// The model declined: the refusal happened (its text is only in `gen_ai.output.messages`
    /// when the feature records text); absent otherwise.
    #[serde(
        rename = "prompt_config.refusal",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub refusal: bool,
    /// True when a budget's downgrade policy replaced the model chain.
    #[serde(
        rename = "prompt_config.downgraded",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub downgraded: bool,
    /// Whether the answer came from the response cache; absent when the version has no cache
    /// (or the chain's temperature kept it out).
    #[serde(
        rename = "prompt_config.cache.hit",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_hit: Option<bool>,
    /// On a cache hit, what the original call cost in USD (the money saved); absent otherwise.
    #[serde(
        rename = "prompt_config.cache.saved_usd",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_saved_usd: Option<f64>,
    /// The cache partition looked in (`sector=tech`), when the feature partitions its cache.
    #[serde(
        rename = "prompt_config.cache.partition",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_partition: Option<String>,
    /// What a streamed call measured; absent for `complete()`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamFields>,
    /// Structured output and tool calls, for a version with an output schema or tools;
    /// absent otherwise.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub output: Option<RequestOutputFields>,
    /// The context's template variables (a JSON object), only when the feature's
    /// `telemetry.record_text` is on: with the messages they let `prompt-config dataset
    /// from-telemetry` rebuild the request as an evaluation case.
    #[serde(
        rename = "prompt_config.variables",
        skip_serializing_if = "Option::is_none"
    )]
    pub variables: Option<Value>,
    /// The messages sent: the rendered ones, then the conversation history (tool calls and
    /// tool results included), only when the feature's `telemetry.record_text` is on.
    #[serde(
        rename = "gen_ai.input.messages",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_messages: Option<Value>,
    /// The response text and tool calls (with their arguments), only when the feature's
    /// `telemetry.record_text` is on.
    #[serde(
        rename = "gen_ai.output.messages",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_messages: Option<Value>,
}

/// `llm.attempt` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptFields {
    /// Always `chat`.
    #[serde(rename = "gen_ai.operation.name")]
    pub operation: &'static str,
    /// The feature.
    #[serde(rename = "gen_ai.prompt.name")]
    pub feature: String,
    /// The prompt version.
    #[serde(rename = "gen_ai.prompt.version")]
    pub version: String,
    /// The provider called.
    #[serde(rename = "gen_ai.provider.name")]
    pub provider: String,
    /// The model called.
    #[serde(rename = "gen_ai.request.model")]
    pub model: String,
    /// 1-based attempt number within the request.
    #[serde(rename = "prompt_config.attempt")]
    pub attempt: u32,
    /// `success`, `failed`, `skipped_circuit_open`, `skipped_rate_limited`,
    /// `stream_incomplete` or `invalid_output`.
    #[serde(rename = "prompt_config.outcome")]
    pub outcome: &'static str,
    /// The failure's type: an HTTP status, `timeout`, `connect`, `circuit_open`, ...
    #[serde(rename = "error.type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The HTTP status, when there was one.
    #[serde(
        rename = "http.response.status_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<u16>,
    /// Time in the provider call in milliseconds.
    #[serde(rename = "prompt_config.latency_ms")]
    pub latency_ms: f64,
    /// Time slept before the attempt in milliseconds.
    #[serde(rename = "prompt_config.wait_ms")]
    pub wait_ms: f64,
    /// The breaker's state after the attempt.
    #[serde(rename = "prompt_config.breaker_state")]
    pub breaker_state: &'static str,
    /// What a streamed attempt measured; absent for `complete()`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamFields>,
    /// Why the answer was invalid, for an `invalid_output` attempt; absent otherwise.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub invalid_output: Option<AttemptOutputFields>,
    /// The caller's trace, as on [`FeatureFields::trace`].
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// The fields of a streamed call or attempt (`llm.request`, `llm.attempt`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamFields {
    /// Always true: the call streamed.
    #[serde(rename = "prompt_config.stream")]
    pub stream: bool,
    /// Seconds from sending the request (of the call, for `llm.request`) to the first text
    /// chunk; absent when none arrived.
    #[serde(
        rename = "gen_ai.response.time_to_first_chunk",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_to_first_chunk: Option<f64>,
    /// Chunks that carried text.
    #[serde(rename = "prompt_config.stream.chunks")]
    pub chunks: u64,
}

/// `circuit.transition` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitFields {
    /// The breaker: a provider, or `provider/model`.
    #[serde(rename = "prompt_config.breaker")]
    pub breaker: String,
    /// The state before (`closed`, `open`, `half_open`).
    #[serde(rename = "prompt_config.breaker.from")]
    pub from: &'static str,
    /// The state after.
    #[serde(rename = "prompt_config.breaker_state")]
    pub to: &'static str,
    /// Why.
    #[serde(rename = "prompt_config.breaker.reason")]
    pub reason: String,
    /// How long it stays open, in milliseconds.
    #[serde(
        rename = "prompt_config.breaker.open_for_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub open_for_ms: Option<u64>,
}

/// `budget.alert` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetFields {
    /// `overall` or `feature:<name>`.
    #[serde(rename = "prompt_config.budget.scope")]
    pub scope: String,
    /// `day` or `month`.
    #[serde(rename = "prompt_config.budget.period")]
    pub period: String,
    /// The period's label (`2026-11-27`, `2026-11`).
    #[serde(rename = "prompt_config.budget.period_start")]
    pub period_start: String,
    /// The threshold crossed, in percent.
    #[serde(rename = "prompt_config.budget.threshold_percent")]
    pub threshold_percent: u32,
    /// Spend so far in USD.
    #[serde(rename = "prompt_config.budget.spent_usd")]
    pub spent_usd: f64,
    /// The limit in USD.
    #[serde(rename = "prompt_config.budget.limit_usd")]
    pub limit_usd: f64,
    /// The policy at 100%.
    #[serde(rename = "prompt_config.budget.policy")]
    pub policy: String,
}

/// `config.reload` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadFields {
    /// `success` or `error`.
    #[serde(rename = "prompt_config.outcome")]
    pub outcome: &'static str,
    /// The revision now served.
    #[serde(rename = "prompt_config.config_revision")]
    pub config_revision: String,
    /// The problems of a failed reload, as `file: /pointer: message` lines.
    #[serde(
        rename = "prompt_config.problems",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub problems: Vec<String>,
}

/// `feedback` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackFields {
    /// The metric (`thumbs_up`, `rating`, `converted`, ...).
    #[serde(rename = "prompt_config.feedback.metric")]
    pub metric: String,
    /// The value: a boolean, a number, or a string.
    #[serde(rename = "prompt_config.feedback.value")]
    pub value: Value,
    /// The request's feature, version and variant when the engine still remembers it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub request: Option<FeedbackContext>,
}

/// What the engine remembers of a recent request, for feedback events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackContext {
    /// The feature.
    #[serde(rename = "gen_ai.prompt.name")]
    pub feature: String,
    /// The version.
    #[serde(rename = "gen_ai.prompt.version")]
    pub version: String,
    /// The experiment.
    #[serde(
        rename = "prompt_config.experiment",
        skip_serializing_if = "Option::is_none"
    )]
    pub experiment: Option<String>,
    /// The variant.
    #[serde(
        rename = "prompt_config.variant",
        skip_serializing_if = "Option::is_none"
    )]
    pub variant: Option<String>,
}

/// `telemetry.dropped` fields: written at least once a second while events are being dropped,
/// and once the queue drains, so the gaps in the log are marked where they happen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppedFields {
    /// Events dropped since the previous `telemetry.dropped` line.
    #[serde(rename = "prompt_config.dropped_events")]
    pub dropped_events: u64,
    /// Events this process's writer dropped since it started, this line's included.
    #[serde(rename = "prompt_config.dropped.total")]
    pub dropped_total: u64,
    /// When the first of this line's drops happened (RFC 3339 UTC with milliseconds).
    #[serde(
        rename = "prompt_config.dropped.first_at",
        serialize_with = "rfc3339_milliseconds"
    )]
    pub first_at: DateTime<Utc>,
    /// When the last of this line's drops happened.
    #[serde(
        rename = "prompt_config.dropped.last_at",
        serialize_with = "rfc3339_milliseconds"
    )]
    pub last_at: DateTime<Utc>,
}

/// `state.degraded` and `state.restored` fields (issue 11): the shared state failed and the
/// process serves from local state, or it answers again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateFields {
    /// The Redis server or cluster, password masked.
    #[serde(rename = "prompt_config.state.server")]
    pub server: String,
    /// What failed (`state.degraded` only; never a password).
    #[serde(
        rename = "prompt_config.state.reason",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<String>,
    /// How long the process ran on local state, in ms (`state.restored` only).
    #[serde(
        rename = "prompt_config.state.degraded_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub degraded_ms: Option<u64>,
}
