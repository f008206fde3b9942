//! The engine's telemetry: turns resolutions, completions, attempts, client events, reloads and
//! feedback into records for the log (when a file is configured) and observations for the live
//! metrics (always). Everything here runs on the caller's thread, so it only copies what a
//! record needs and hands it to the writer's queue.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event::{
    AttemptFields, BudgetFields, CircuitFields, EventBody, FeatureFields, FeedbackFields,
    ReloadFields, RequestFields, ResolveFields, SCHEMA_VERSION, StateFields, TelemetryRecord,
};
use super::metrics::{Metrics, RequestLabels};
use super::recent::{RecentRequests, RequestFacts};
use super::sink::RecordSink;
use super::writer::TelemetryWriter;
use crate::cache::CacheOutcome;
use crate::client::{
    AttemptEnded, BreakerState, ClientEvent, CompleteError, Completion, FinishReason, Usage,
};
use crate::config::TelemetrySettings;
use crate::prompt::sha256_hex;
use crate::resolve::{Context, Resolution};
use crate::state::StateChange;

mod alert;
mod eval;
mod record;

/// The log writer (optional), the other sinks (OTLP, alerts), live metrics and recent-request
/// memory of one engine.
pub(crate) struct Telemetry {
    pub writer: Option<TelemetryWriter<Arc<TelemetryRecord>>>,
    /// The sinks beside the log, each fed every record the log gets.
    pub sinks: Vec<Arc<dyn RecordSink>>,
    pub metrics: Metrics,
    pub recent: RecentRequests,
}

/// The state name as it appears in events and metrics.
pub(crate) fn state_name(state: BreakerState) -> &'static str {
    state.as_str()
}

/// The fields every event about `resolution` carries.
pub(crate) fn feature_fields(
    resolution: &Resolution,
    context: &Context,
    settings: &TelemetrySettings,
) -> FeatureFields {
    let subject_id = if settings.hash_subject_id {
        format!("sha256:{}", sha256_hex(context.subject_id().as_bytes()))
    } else {
        context.subject_id().to_string()
    };
    let attributes: BTreeMap<String, Value> = settings
        .attributes
        .iter()
        .filter_map(|name| Some((name.clone(), context.attributes().get(name)?.clone())))
        .collect();
    FeatureFields {
        feature: resolution.feature.clone(),
        version: resolution.version.clone(),
        source: resolution.source.as_str(),
        experiment: resolution.experiment.clone(),
        variant: resolution.variant.clone(),
        rule: resolution.rule.clone(),
        bucket: resolution.bucket,
        subject_id,
        attributes,
        prompt_hash: resolution.prompt_hash.clone(),
        config_revision: resolution.config_revision.clone(),
        eval_run_id: context.evaluation_run().map(str::to_string),
        trace: context.trace_context().copied(),
    }
}

fn input_messages(resolution: &Resolution, settings: &TelemetrySettings) -> Option<Value> {
    settings
        .record_text
        .then(|| serde_json::to_value(&resolution.messages).unwrap_or(Value::Null))
}

/// The context's template variables, only under `record_text` (they hold the user's text).
fn recorded_variables(context: &Context, settings: &TelemetrySettings) -> Option<Value> {
    settings
        .record_text
        .then(|| context.variables_value().clone())
}

/// How a call without an answer ended: what `failed` and `refused` pass to `unanswered`.
struct Unanswered<'a> {
    kind: crate::ErrorKind,
    /// Its attempts, last one last (none for a call refused before any).
    attempts: &'a [crate::client::Attempt],
    failure: super::streamed::FailureFields,
    latency: Duration,
}

impl Telemetry {
    fn write(
        &self,
        timestamp: DateTime<Utc>,
        event: &'static str,
        request_id: &str,
        body: EventBody,
    ) {
        if !self.writes_lines() {
            return;
        }
        let record = Arc::new(TelemetryRecord {
            schema_version: SCHEMA_VERSION,
            timestamp,
            event,
            request_id: request_id.to_string(),
            body,
        });
        for sink in &self.sinks {
            sink.accept(&record);
        }
        if let Some(writer) = &self.writer {
            writer.enqueue(record);
        }
    }

    fn remember(&self, resolution: &Resolution) {
        self.recent.remember_facts(
            &resolution.request_id,
            RequestFacts {
                feature: &resolution.feature,
                version: &resolution.version,
                experiment: resolution.experiment.as_deref(),
                variant: resolution.variant.as_deref(),
            },
        );
    }

    /// A resolve that succeeded. `now` is read only when a line is written: the wall clock is
    /// not read for metrics alone.
    pub fn resolved(
        &self,
        now: impl FnOnce() -> DateTime<Utc>,
        resolution: &Resolution,
        context: &Context,
        settings: &TelemetrySettings,
    ) {
        self.metrics.record_resolve(
            &resolution.feature,
            &resolution.version,
            resolution.variant.as_deref(),
        );
        if !self.writes_lines() {
            return;
        }
        self.remember(resolution);
        let fields = ResolveFields {
            feature: feature_fields(resolution, context, settings),
            provider: resolution.model.provider.clone(),
            model: resolution.model.name.clone(),
            input_messages: input_messages(resolution, settings),
        };
        self.write(
            now(),
            "prompt.resolve",
            &resolution.request_id,
            EventBody::Resolve(Box::new(fields)),
        );
    }

    /// A `complete()` that succeeded.
    pub fn completed(
        &self,
        now: impl FnOnce() -> DateTime<Utc>,
        completion: &Completion,
        context: &Context,
        settings: &TelemetrySettings,
        cache: Option<&CacheOutcome>,
    ) {
        let resolution = &completion.resolution;
        self.remember(resolution);
        let labels = RequestLabels {
            feature: &resolution.feature,
            version: &resolution.version,
            variant: resolution.variant.as_deref(),
            provider: &completion.provider,
            model: &completion.model,
        };
        let duration = Duration::from_secs_f64(completion.latency_ms.max(0.0) / 1000.0);
        self.metrics.record_call(
            &labels,
            None,
            duration,
            &completion.usage,
            completion.cost_usd,
            completion.cost_estimated,
        );
        super::streamed::record_metrics(&self.metrics, &labels, completion);
        super::structured::record_metrics(&self.metrics, resolution, &completion.attempts);
        if let Some(cache) = cache {
            self.metrics.record_cache(
                &resolution.feature,
                &resolution.version,
                cache.partition.as_deref(),
                cache.hit,
                cache.saved_usd,
            );
        }
        if !self.writes_lines() {
            return;
        }
        let output_messages = settings
            .record_text
            .then(|| super::structured::output_messages(completion));
        // The shared name, or the provider's own word when it is none of them.
        let finish_reasons = completion
            .finish_reason
            .iter()
            .map(|reason| match reason {
                FinishReason::Other(raw) => raw.clone(),
                known => known.as_str().to_string(),
            })
            .collect();
        let fields = RequestFields {
            operation: "chat",
            feature: feature_fields(resolution, context, settings),
            provider: completion.provider.clone(),
            model: completion.model.clone(),
            response_model: completion.response_model.clone(),
            response_id: completion.response_id.clone(),
            finish_reasons,
            input_tokens: completion.usage.input_tokens,
            output_tokens: completion.usage.output_tokens,
            cache_read_input_tokens: completion.usage.cache_read_input_tokens,
            cache_creation_input_tokens: completion.usage.cache_creation_input_tokens,
            outcome: "success",
            error_type: None,
            attempts: completion.attempts.len() as u32,
            latency_ms: completion.latency_ms,
            cost_usd: completion.cost_usd,
            cost_estimated: completion.cost_estimated,
            refusal: completion.finish_reason == Some(FinishReason::Refusal),
            downgraded: completion.downgraded,
            cache_hit: cache.map(|cache| cache.hit),
            cache_saved_usd: cache.filter(|cache| cache.hit).map(|cache| cache.saved_usd),
            cache_partition: cache.and_then(|cache| cache.partition.clone()),
            stream: completion.stream.map(super::streamed::stream_fields),
            output: super::structured::completed_fields(completion, settings.record_text),
            variables: recorded_variables(context, settings),
            input_messages: input_messages(resolution, settings),
            output_messages,
        };
        self.write(
            now(),
            "llm.request",
            &resolution.request_id,
            EventBody::Request(Box::new(fields)),
        );
    }

    /// A `complete()` that failed after resolving.
    pub fn failed(
        &self,
        now: impl FnOnce() -> DateTime<Utc>,
        resolution: &Resolution,
        error: &CompleteError,
        latency: Duration,
        context: &Context,
        settings: &TelemetrySettings,
    ) {
        let failure = super::streamed::failure_fields(error);
        let call = Unanswered {
            kind: error.kind(),
            attempts: error.attempts(),
            failure,
            latency,
        };
        self.unanswered(now, resolution, call, context, settings);
    }

    /// A `complete()` or `stream()` refused before any model call (its variables do not fit
    /// the version, a template failed to render, the history or the model override was
    /// refused): an `llm.request` line with outcome `error`, `error.type` `kind` and no
    /// attempt, counted in the request metrics, so error rates and alerts see it. `resolution`
    /// is the route the subject took, without messages.
    pub fn refused(
        &self,
        now: impl FnOnce() -> DateTime<Utc>,
        resolution: &Resolution,
        kind: crate::ErrorKind,
        latency: Duration,
        context: &Context,
        settings: &TelemetrySettings,
    ) {
        let failure = super::streamed::FailureFields {
            outcome: "error",
            cost_usd: 0.0,
            usage: Usage::default(),
            stream: None,
        };
        let call = Unanswered {
            kind,
            attempts: &[],
            failure,
            latency,
        };
        self.unanswered(now, resolution, call, context, settings);
    }

    /// The metrics and `llm.request` line of a call that ended without an answer.
    fn unanswered(
        &self,
        now: impl FnOnce() -> DateTime<Utc>,
        resolution: &Resolution,
        call: Unanswered<'_>,
        context: &Context,
        settings: &TelemetrySettings,
    ) {
        self.remember(resolution);
        let Unanswered {
            kind,
            attempts,
            failure:
                super::streamed::FailureFields {
                    outcome,
                    cost_usd,
                    usage,
                    stream,
                },
            latency,
        } = call;
        let (provider, model) = attempts
            .last()
            .map(|attempt| (attempt.provider.as_str(), attempt.model.as_str()))
            .unwrap_or((&resolution.model.provider, &resolution.model.name));
        let labels = RequestLabels {
            feature: &resolution.feature,
            version: &resolution.version,
            variant: resolution.variant.as_deref(),
            provider,
            model,
        };
        if cost_usd > 0.0 {
            self.metrics.record_call(
                &labels,
                Some(kind.as_str()),
                latency,
                &usage,
                cost_usd,
                true,
            );
        } else {
            self.metrics
                .record_request(&labels, Some(kind.as_str()), latency, &usage, 0.0);
        }
        super::structured::record_metrics(&self.metrics, resolution, attempts);
        if !self.writes_lines() {
            return;
        }
        let output = super::structured::failed_fields(
            resolution,
            attempts,
            kind == crate::ErrorKind::InvalidOutput,
        );
        let fields = RequestFields {
            operation: "chat",
            feature: feature_fields(resolution, context, settings),
            provider: provider.to_string(),
            model: model.to_string(),
            response_model: None,
            response_id: None,
            finish_reasons: Vec::new(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
            outcome,
            error_type: Some(kind.as_str().to_string()),
            attempts: attempts.len() as u32,
            latency_ms: latency.as_secs_f64() * 1000.0,
            cost_usd,
            cost_estimated: cost_usd > 0.0,
            refusal: false,
            downgraded: false,
            cache_hit: None,
            cache_saved_usd: None,
            cache_partition: None,
            stream,
            output,
            variables: recorded_variables(context, settings),
            input_messages: input_messages(resolution, settings),
            output_messages: None,
        };
        self.write(
            now(),
            "llm.request",
            &resolution.request_id,
            EventBody::Request(Box::new(fields)),
        );
    }

    /// One `llm.attempt` line, stamped with the attempt's own start: attempts arrive through
    /// the event sink as they end, so their lines precede their call's `llm.request` line.
    pub fn attempt_ended(&self, request_id: &str, ended: &AttemptEnded<'_>) {
        if !self.writes_lines() {
            return;
        }
        let attempt = &ended.attempt;
        let fields = AttemptFields {
            operation: "chat",
            feature: ended.feature.to_string(),
            version: ended.version.to_string(),
            provider: attempt.provider.clone(),
            model: attempt.model.clone(),
            attempt: attempt.number,
            outcome: attempt.outcome.as_str(),
            error_type: attempt.error_type().map(Cow::into_owned),
            status: attempt.status,
            latency_ms: attempt.latency_ms,
            wait_ms: attempt.wait_ms,
            breaker_state: state_name(attempt.breaker_state),
            stream: attempt.stream.map(super::streamed::stream_fields),
            invalid_output: super::structured::attempt_fields(attempt),
            trace: ended.trace.copied(),
        };
        self.write(
            ended.started_at,
            "llm.attempt",
            request_id,
            EventBody::Attempt(Box::new(fields)),
        );
    }

    /// A breaker transition or budget alert from the client.
    pub fn client_event(&self, now: DateTime<Utc>, request_id: &str, event: &ClientEvent) {
        match event {
            ClientEvent::CircuitTransition(transition) => {
                self.metrics
                    .set_breaker_state(&transition.breaker, transition.to);
                let fields = CircuitFields {
                    breaker: transition.breaker.clone(),
                    from: state_name(transition.from),
                    to: state_name(transition.to),
                    reason: transition.reason.clone(),
                    open_for_ms: transition.open_for_ms,
                };
                self.write(
                    now,
                    "circuit.transition",
                    request_id,
                    EventBody::CircuitTransition(fields),
                );
            }
            ClientEvent::BudgetAlert(alert) => {
                let fields = BudgetFields {
                    scope: alert.scope.clone(),
                    period: alert.period.clone(),
                    period_start: alert.period_start.clone(),
                    threshold_percent: alert.threshold_percent,
                    spent_usd: alert.spent_usd,
                    limit_usd: alert.limit_usd,
                    policy: alert.policy.clone(),
                };
                self.write(
                    now,
                    "budget.alert",
                    request_id,
                    EventBody::BudgetAlert(fields),
                );
            }
        }
    }

    /// A change of health of the fleet's shared state: a `state.degraded` or `state.restored`
    /// line, and the `prompt_config.state.degraded` gauge (with the degradation counter).
    pub fn state_changed(&self, now: DateTime<Utc>, change: &StateChange) {
        let (event, fields) = match change {
            StateChange::Degraded { server, reason } => {
                self.metrics.set_state_degraded(true);
                let fields = StateFields {
                    server: server.clone(),
                    reason: Some(reason.clone()),
                    degraded_ms: None,
                };
                ("state.degraded", fields)
            }
            StateChange::Restored {
                server,
                degraded_ms,
            } => {
                self.metrics.set_state_degraded(false);
                let fields = StateFields {
                    server: server.clone(),
                    reason: None,
                    degraded_ms: Some(*degraded_ms),
                };
                ("state.restored", fields)
            }
        };
        self.write(now, event, "", EventBody::State(fields));
    }

    /// A reload attempt.
    pub fn reloaded(&self, now: DateTime<Utc>, config_revision: &str, problems: Vec<String>) {
        let outcome = if problems.is_empty() {
            "success"
        } else {
            "error"
        };
        let fields = ReloadFields {
            outcome,
            config_revision: config_revision.to_string(),
            problems,
        };
        self.write(now, "config.reload", "", EventBody::Reload(fields));
    }

    /// A feedback value for a request.
    pub fn feedback(&self, now: DateTime<Utc>, request_id: &str, metric: &str, value: &Value) {
        let request = self.recent.get(request_id);
        let numeric = match value {
            Value::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
            Value::Number(number) => number.as_f64(),
            _ => None,
        };
        if let Some(numeric) = numeric {
            self.metrics.record_feedback(
                request.as_ref().map(|context| context.feature.as_str()),
                request.as_ref().map(|context| context.version.as_str()),
                request
                    .as_ref()
                    .and_then(|context| context.variant.as_deref()),
                metric,
                numeric,
            );
        }
        let fields = FeedbackFields {
            metric: metric.to_string(),
            value: value.clone(),
            request,
        };
        self.write(
            now,
            "feedback",
            request_id,
            EventBody::Feedback(Box::new(fields)),
        );
    }
}
