//! The hand-written line of the three events every call sends (`prompt.resolve`, `llm.attempt`,
//! `llm.request`): [`TelemetryRecord::write_line`] writes them field by field straight into the
//! writer's batch buffer, with the timestamp formatted in place once per second per thread. It
//! owns keeping those bytes identical to what the `Serialize` impls give (same keys, same order,
//! same skipped fields), so a field added to one of these structs must be added here too.

use std::cell::Cell;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    AttemptFields, EventBody, FeatureFields, RequestFields, StreamFields, TelemetryRecord, output,
};
use crate::telemetry::writer::json::{self, JsonObject};
use crate::resolve::TraceContext;

impl TelemetryRecord {
    /// Appends the record as one JSON object (no newline): the same bytes as
    /// `serde_json::to_writer(out, self)`, written field by field for the events every call
    /// sends, with no intermediate value, map or string per field.
    pub fn write_line(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let body = match &self.body {
            EventBody::Resolve(_) | EventBody::Request(_) | EventBody::Attempt(_) => &self.body,
            _ => return serde_json::to_writer(out, self),
        };
        let timestamp = cached_timestamp(&self.timestamp).unwrap_or_else(|| {
            let mut bytes = Vec::new();
            let formatted = self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true);
            json::write_str(&mut bytes, &formatted);
            Timestamp::Other(bytes)
        });
        let mut object = JsonObject::begin(out);
        object.value("schema_version", &self.schema_version)?;
        object.raw("timestamp", timestamp.as_bytes());
        object.str("event", self.event);
        object.str("request_id", &self.request_id);
        match body {
            EventBody::Resolve(fields) => {
                write_feature(&mut object, &fields.feature)?;
                object.str("gen_ai.provider.name", &fields.provider);
                object.str("gen_ai.request.model", &fields.model);
                if let Some(messages) = &fields.input_messages {
                    object.value("gen_ai.input.messages", messages)?;
                }
            }
            EventBody::Request(fields) => write_request(&mut object, fields)?,
            EventBody::Attempt(fields) => write_attempt(&mut object, fields)?,
            _ => {}
        }
        object.end();
        Ok(())
    }
}

/// A timestamp as a JSON string: formatted in place, or by chrono for the rare odd one.
enum Timestamp {
    /// `"YYYY-MM-DDTHH:MM:SS.mmmZ"`, quotes included.
    Formatted([u8; 26]),
    Other(Vec<u8>),
}

impl Timestamp {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Timestamp::Formatted(bytes) => bytes,
            Timestamp::Other(bytes) => bytes,
        }
    }
}

thread_local! {
    /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS`: consecutive
    /// records mostly share their second, so chrono formats each second once.
    static LAST_SECOND: Cell<Option<(i64, [u8; 19])>> = const { Cell::new(None) };
}

/// The RFC 3339 form with milliseconds that chrono gives, when the year has four digits and
/// the instant is no leap second (`None` otherwise: chrono formats those).
fn cached_timestamp(timestamp: &DateTime<Utc>) -> Option<Timestamp> {
    let nanos = timestamp.timestamp_subsec_nanos();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let second = timestamp.timestamp();
    let prefix = match LAST_SECOND.get() {
        Some((cached, prefix)) if cached == second => prefix,
        _ => {
            let formatted = timestamp.to_rfc3339_opts(SecondsFormat::Secs, true);
            let bytes = formatted.as_bytes();
            if bytes.len() != 20 || bytes[19] != b'Z' {
                return None;
            }
            let mut prefix = [0; 19];
            prefix.copy_from_slice(&bytes[..19]);
            LAST_SECOND.set(Some((second, prefix)));
            prefix
        }
    };
    let millis = nanos / 1_000_000;
    let mut bytes = [0; 26];
    bytes[0] = b'"';
    bytes[1..20].copy_from_slice(&prefix);
    bytes[20] = b'.';
    bytes[21] = b'0' + (millis / 100) as u8;
    bytes[22] = b'0' + (millis / 10 % 10) as u8;
    bytes[23] = b'0' + (millis % 10) as u8;
    bytes[24] = b'Z';
    bytes[25] = b'"';
    Some(Timestamp::Formatted(bytes))
}

/// [`FeatureFields`] in its `Serialize` order.
fn write_feature(object: &mut JsonObject<'_>, fields: &FeatureFields) -> serde_json::Result<()> {
    object.str("gen_ai.prompt.name", &fields.feature);
    object.str("gen_ai.prompt.version", &fields.version);
    object.str("prompt_config.source", fields.source);
    object.opt_str("prompt_config.experiment", fields.experiment.as_deref());
    object.opt_str("prompt_config.variant", fields.variant.as_deref());
    object.opt_str("prompt_config.rule", fields.rule.as_deref());
    if let Some(bucket) = fields.bucket {
        object.value("prompt_config.bucket", &bucket)?;
    }
    object.str("prompt_config.subject_id", &fields.subject_id);
    if !fields.attributes.is_empty() {
        object.value("prompt_config.attributes", &fields.attributes)?;
    }
    object.str("prompt_config.prompt_hash", &fields.prompt_hash);
    object.str("prompt_config.config_revision", &fields.config_revision);
    object.opt_str("prompt_config.eval.run_id", fields.eval_run_id.as_deref());
    write_trace(object, fields.trace.as_ref());
    Ok(())
}

/// [`TraceContext`]'s `Serialize` fields, when the caller gave a trace.
fn write_trace(object: &mut JsonObject<'_>, trace: Option<&TraceContext>) {
    if let Some(trace) = trace {
        object.str("trace_id", &trace.trace_id.to_hex());
        if let Some(parent) = trace.parent_span_id {
            object.str("parent_span_id", &parent.to_hex());
        }
    }
}

/// [`RequestFields`] in its `Serialize` order.
fn write_request(object: &mut JsonObject<'_>, fields: &RequestFields) -> serde_json::Result<()> {
    object.str("gen_ai.operation.name", fields.operation);
    write_feature(object, &fields.feature)?;
    object.str("gen_ai.provider.name", &fields.provider);
    object.str("gen_ai.request.model", &fields.model);
    object.opt_str("gen_ai.response.model", fields.response_model.as_deref());
    object.opt_str("gen_ai.response.id", fields.response_id.as_deref());
    if !fields.finish_reasons.is_empty() {
        object.value("gen_ai.response.finish_reasons", &fields.finish_reasons)?;
    }
    object.value("gen_ai.usage.input_tokens", &fields.input_tokens)?;
    object.value("gen_ai.usage.output_tokens", &fields.output_tokens)?;
    object.value(
        "gen_ai.usage.cache_read.input_tokens",
        &fields.cache_read_input_tokens,
    )?;
    object.value(
        "gen_ai.usage.cache_creation.input_tokens",
        &fields.cache_creation_input_tokens,
    )?;
    object.str("prompt_config.outcome", fields.outcome);
    object.opt_str("error.type", fields.error_type.as_deref());
    object.value("prompt_config.attempts", &fields.attempts)?;
    object.value("prompt_config.latency_ms", &fields.latency_ms)?;
    object.value("prompt_config.cost_usd", &fields.cost_usd)?;
    for (flag, key) in [
        (fields.cost_estimated, "prompt_config.cost_estimated"),
        (fields.refusal, "prompt_config.refusal"),
        (fields.downgraded, "prompt_config.downgraded"),
    ] {
        if flag {
            object.raw(key, b"true");
        }
    }
    if let Some(hit) = fields.cache_hit {
        object.raw(
            "prompt_config.cache.hit",
            if hit { b"true" } else { b"false" },
        );
    }
    if let Some(saved) = &fields.cache_saved_usd {
        object.value("prompt_config.cache.saved_usd", saved)?;
    }
    object.opt_str(
        "prompt_config.cache.partition",
        fields.cache_partition.as_deref(),
    );
    write_stream(object, fields.stream.as_ref())?;
    output::write_request_output(object, fields.output.as_ref())?;
    if let Some(variables) = &fields.variables {
        object.value("prompt_config.variables", variables)?;
    }
    if let Some(messages) = &fields.input_messages {
        object.value("gen_ai.input.messages", messages)?;
    }
    if let Some(messages) = &fields.output_messages {
        object.value("gen_ai.output.messages", messages)?;
    }
    Ok(())
}

/// [`AttemptFields`] in its `Serialize` order.
fn write_attempt(object: &mut JsonObject<'_>, fields: &AttemptFields) -> serde_json::Result<()> {
    object.str("gen_ai.operation.name", fields.operation);
    object.str("gen_ai.prompt.name", &fields.feature);
    object.str("gen_ai.prompt.version", &fields.version);
    object.str("gen_ai.provider.name", &fields.provider);
    object.str("gen_ai.request.model", &fields.model);
    object.value("prompt_config.attempt", &fields.attempt)?;
    object.str("prompt_config.outcome", fields.outcome);
    object.opt_str("error.type", fields.error_type.as_deref());
    if let Some(status) = fields.status {
        object.value("http.response.status_code", &status)?;
    }
    object.value("prompt_config.latency_ms", &fields.latency_ms)?;
    object.value("prompt_config.wait_ms", &fields.wait_ms)?;
    object.str("prompt_config.breaker_state", fields.breaker_state);
    write_stream(object, fields.stream.as_ref())?;
    output::write_attempt_output(object, fields.invalid_output.as_ref())?;
    write_trace(object, fields.trace.as_ref());
    Ok(())
}

/// [`StreamFields`] in its `Serialize` order, when the call or attempt streamed.
fn write_stream(object: &mut JsonObject<'_>, fields: Option<&StreamFields>) -> serde_json::Result<()> {
    let Some(fields) = fields else {
        return Ok(());
    };
    object.raw("prompt_config.stream", b"true");
    if let Some(seconds) = &fields.time_to_first_chunk {
        object.value("gen_ai.response.time_to_first_chunk", seconds)?;
    }
    object.value("prompt_config.stream.chunks", &fields.chunks)?;
    Ok(())
}
