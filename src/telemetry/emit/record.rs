//! A telemetry record as the writer's queue sees it: the `telemetry.dropped` record it writes
//! for events it had to drop, the approximate memory a queued record holds (the queue's bound
//! is in bytes), and its JSON line.

use std::mem;

use chrono::Utc;
use serde_json::Value;

use crate::telemetry::event::{
    DroppedFields, EventBody, FeatureFields, SCHEMA_VERSION, TelemetryRecord,
};
use crate::telemetry::writer::{DropReport, Record};

/// What the engine queues: one record shared with the other sinks, so it is built once.
impl Record for std::sync::Arc<TelemetryRecord> {
    fn dropped(report: &DropReport) -> Self {
        std::sync::Arc::new(TelemetryRecord::dropped(report))
    }

    fn approximate_size(&self) -> usize {
        (**self).approximate_size()
    }

    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        (**self).write_json(out)
    }
}

impl Record for TelemetryRecord {
    fn dropped(report: &DropReport) -> Self {
        TelemetryRecord {
            schema_version: SCHEMA_VERSION,
            timestamp: Utc::now(),
            event: "telemetry.dropped",
            request_id: String::new(),
            body: EventBody::Dropped(DroppedFields {
                dropped_events: report.count,
                dropped_total: report.total,
                first_at: report.first_at.into(),
                last_at: report.last_at.into(),
            }),
        }
    }

    /// The record, its boxed fields, and the heap its strings, lists and JSON values hold,
    /// each heap block counted with `ALLOCATION_OVERHEAD` bytes for the allocator; a sum of
    /// lengths and capacities, so it costs a few dozen additions per record.
    fn approximate_size(&self) -> usize {
        let body = match &self.body {
            EventBody::Resolve(fields) => {
                boxed(&**fields)
                    + feature_size(&fields.feature)
                    + string_size(&fields.provider)
                    + string_size(&fields.model)
                    + fields.input_messages.as_ref().map_or(0, value_size)
            }
            EventBody::Request(fields) => {
                boxed(&**fields)
                    + feature_size(&fields.feature)
                    + string_size(&fields.provider)
                    + string_size(&fields.model)
                    + optional_size(&fields.response_model)
                    + optional_size(&fields.response_id)
                    + strings_size(&fields.finish_reasons)
                    + optional_size(&fields.error_type)
                    + optional_size(&fields.cache_partition)
                    + fields.variables.as_ref().map_or(0, value_size)
                    + fields.input_messages.as_ref().map_or(0, value_size)
                    + fields.output_messages.as_ref().map_or(0, value_size)
                    + fields
                        .output
                        .as_ref()
                        .and_then(|output| output.data.as_ref())
                        .map_or(0, value_size)
            }
            EventBody::Attempt(fields) => {
                boxed(&**fields)
                    + string_size(&fields.feature)
                    + string_size(&fields.version)
                    + string_size(&fields.provider)
                    + string_size(&fields.model)
                    + optional_size(&fields.error_type)
                    + fields.invalid_output.as_ref().map_or(0, |invalid| {
                        optional_size(&invalid.tool) + string_size(&invalid.pointer)
                    })
            }
            EventBody::CircuitTransition(fields) => {
                string_size(&fields.breaker) + string_size(&fields.reason)
            }
            EventBody::BudgetAlert(fields) => {
                string_size(&fields.scope)
                    + string_size(&fields.period)
                    + string_size(&fields.period_start)
                    + string_size(&fields.policy)
            }
            EventBody::Reload(fields) => {
                string_size(&fields.config_revision) + strings_size(&fields.problems)
            }
            EventBody::Feedback(fields) => {
                boxed(&**fields)
                    + string_size(&fields.metric)
                    + value_size(&fields.value)
                    + fields.request.as_ref().map_or(0, |request| {
                        string_size(&request.feature)
                            + string_size(&request.version)
                            + optional_size(&request.experiment)
                            + optional_size(&request.variant)
                    })
            }
            EventBody::Dropped(_) => 0,
            EventBody::State(fields) => string_size(&fields.server) + optional_size(&fields.reason),
            EventBody::EvalCase(fields) => {
                boxed(&**fields)
                    + string_size(&fields.run_id)
                    + string_size(&fields.feature)
                    + string_size(&fields.version)
                    + string_size(&fields.dataset)
                    + string_size(&fields.case_id)
                    + strings_size(&fields.request_ids)
            }
            EventBody::EvalRun(fields) => {
                boxed(&**fields)
                    + string_size(&fields.run_id)
                    + string_size(&fields.feature)
                    + string_size(&fields.version)
                    + string_size(&fields.dataset)
                    + optional_size(&fields.provider)
                    + optional_size(&fields.model)
                    + fields
                        .comparison
                        .as_ref()
                        .map_or(0, |comparison| string_size(&comparison.baseline_version))
            }
            EventBody::AlertDelivery(fields) => {
                boxed(&**fields)
                    + string_size(&fields.channel)
                    + string_size(&fields.rule)
                    + string_size(&fields.scope)
                    + string_size(&fields.dedup_key)
                    + optional_size(&fields.error)
            }
        };
        mem::size_of::<Self>() + string_size(&self.request_id) + body
    }

    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        self.write_line(out)
    }
}

/// What the allocator adds to each heap block, on average (its header and rounding).
const ALLOCATION_OVERHEAD: usize = 16;
/// Entries in a `BTreeMap` node.
const BTREE_NODE_ENTRIES: usize = 11;

fn heap_block(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes + ALLOCATION_OVERHEAD
    }
}

fn boxed<T>(value: &T) -> usize {
    heap_block(mem::size_of_val(value))
}

fn string_size(string: &String) -> usize {
    heap_block(string.capacity())
}

fn optional_size(string: &Option<String>) -> usize {
    string.as_ref().map_or(0, string_size)
}

fn strings_size(strings: &Vec<String>) -> usize {
    heap_block(strings.capacity() * mem::size_of::<String>())
        + strings.iter().map(string_size).sum::<usize>()
}

fn feature_size(fields: &FeatureFields) -> usize {
    let attributes = &fields.attributes;
    let nodes = attributes.len().div_ceil(BTREE_NODE_ENTRIES);
    let entry = mem::size_of::<String>() + mem::size_of::<Value>();
    string_size(&fields.feature)
        + string_size(&fields.version)
        + optional_size(&fields.experiment)
        + optional_size(&fields.variant)
        + optional_size(&fields.rule)
        + string_size(&fields.subject_id)
        + nodes * heap_block(BTREE_NODE_ENTRIES * entry)
        + attributes
            .iter()
            .map(|(name, value)| string_size(name) + value_size(value))
            .sum::<usize>()
        + string_size(&fields.prompt_hash)
        + string_size(&fields.config_revision)
}

/// The heap a JSON value holds beyond its own size.
fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(string) => string_size(string),
        Value::Array(items) => {
            heap_block(items.capacity() * mem::size_of::<Value>())
                + items.iter().map(value_size).sum::<usize>()
        }
        Value::Object(map) => {
            // An ordered map: its entries (key, value and hash) and an index per entry.
            let entry = mem::size_of::<String>() + mem::size_of::<Value>() + 2 * 8;
            heap_block(map.len() * entry)
                + map
                    .iter()
                    .map(|(name, value)| string_size(name) + value_size(value))
                    .sum::<usize>()
        }
    }
}
