//! The live metrics ([`MetricsSnapshot`]) and the budgets as one OTLP metrics request, with
//! cumulative temporality since the engine opened. GenAI metrics keep their semantic-convention
//! names, units and bucket boundaries; ours are `prompt_config.*`:
//!
//! | metric | type | unit |
//! |---|---|---|
//! | `gen_ai.client.operation.duration` | histogram ([`DURATION_BUCKETS_SECONDS`]) | `s` |
//! | `gen_ai.client.token.usage` (`gen_ai.token.type` input/output) | histogram ([`TOKEN_BUCKETS`]) | `{token}` |
//! | `gen_ai.client.operation.time_to_first_chunk` | histogram ([`TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS`]) | `s` |
//! | `prompt_config.requests`, `prompt_config.errors` (`error.type`) | sum | `{request}` |
//! | `prompt_config.cost` | sum | `USD` |
//! | `prompt_config.cache.hits` (provider prompt cache) | sum | `{request}` |
//! | `prompt_config.response_cache.lookups` (`prompt_config.cache.hit`) | sum | `{lookup}` |
//! | `prompt_config.response_cache.saved` | sum | `USD` |
//! | `prompt_config.circuit_breaker.state` (0 closed, 1 half-open, 2 open) | gauge | `1` |
//! | `prompt_config.budget.spend_ratio` ((settled + reserved) / limit) | gauge | `1` |
//! | `prompt_config.output.invalid_outputs` | sum | `{answer}` |
//! | `prompt_config.telemetry.dropped_events` | sum | `{event}` |
//! | `prompt_config.state.degraded` | gauge | `1` |
//! | `prompt_config.otlp.exported` (`prompt_config.otlp.signal`), `prompt_config.otlp.dropped` (`prompt_config.otlp.reason`) | sum | `{item}` |

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
};

use super::attributes::Attributes;
use crate::client::BudgetStatus;
use crate::telemetry::metrics::{
    DURATION_BUCKETS_SECONDS, HistogramSnapshot, MetricsSnapshot, RequestSnapshot,
    TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS, TOKEN_BUCKETS,
};

/// The data points' start (the engine's open) and time (now), in Unix nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Times {
    start: u64,
    now: u64,
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|elapsed| u64::try_from(elapsed.as_nanos()).ok())
        .unwrap_or(0)
}

/// Every metric of `snapshot` and `budgets`, cumulative from `start` to `now`. A family with no
/// data point yet is left out (OTLP has no empty families).
pub(super) fn metrics(
    snapshot: &MetricsSnapshot,
    budgets: &[BudgetStatus],
    start: SystemTime,
    now: SystemTime,
) -> Vec<Metric> {
    let times = Times {
        start: nanos(start),
        now: nanos(now),
    };
    let requests = &snapshot.requests;
    let mut out = Vec::new();
    let duration = requests
        .iter()
        .map(|series| {
            histogram_point(
                times,
                series_attributes(series),
                &series.duration,
                &DURATION_BUCKETS_SECONDS,
            )
        })
        .collect();
    push_histogram(
        &mut out,
        "gen_ai.client.operation.duration",
        "GenAI operation duration: the wall time of each complete() or stream() call, successful or not.",
        "s",
        duration,
    );
    let mut usage = Vec::new();
    for series in requests {
        for (token_type, histogram) in [
            ("input", &series.input_token_usage),
            ("output", &series.output_token_usage),
        ] {
            let attributes = extended(series_attributes(series), |more| {
                more.string("gen_ai.token.type", token_type);
            });
            usage.push(histogram_point(
                times,
                attributes,
                histogram,
                &TOKEN_BUCKETS,
            ));
        }
    }
    push_histogram(
        &mut out,
        "gen_ai.client.token.usage",
        "Tokens used per successful call, by token type; input includes tokens read from or written to the prompt cache.",
        "{token}",
        usage,
    );
    let first_chunk = requests
        .iter()
        .filter(|series| series.streams > 0)
        .map(|series| {
            histogram_point(
                times,
                series_attributes(series),
                &series.time_to_first_chunk,
                &TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS,
            )
        })
        .collect();
    push_histogram(
        &mut out,
        "gen_ai.client.operation.time_to_first_chunk",
        "Time from sending a streamed request to its first chunk of text.",
        "s",
        first_chunk,
    );

    let calls = requests
        .iter()
        .map(|series| {
            number_point(
                times,
                series_attributes(series),
                NumberValue::AsInt(int(series.requests)),
            )
        })
        .collect();
    push_sum(
        &mut out,
        "prompt_config.requests",
        "Calls, successful or not.",
        "{request}",
        calls,
    );
    let mut errors = Vec::new();
    for series in requests {
        for (error_type, count) in &series.errors_by_type {
            let attributes = extended(series_attributes(series), |more| {
                more.string("error.type", error_type.as_str());
            });
            errors.push(number_point(
                times,
                attributes,
                NumberValue::AsInt(int(*count)),
            ));
        }
    }
    push_sum(
        &mut out,
        "prompt_config.errors",
        "Failed calls by error type.",
        "{request}",
        errors,
    );
    let cost = requests
        .iter()
        .map(|series| {
            number_point(
                times,
                series_attributes(series),
                NumberValue::AsDouble(series.cost_usd),
            )
        })
        .collect();
    push_sum(
        &mut out,
        "prompt_config.cost",
        "Cost of calls in US dollars, estimated parts included.",
        "USD",
        cost,
    );
    let prompt_cache = requests
        .iter()
        .map(|series| {
            number_point(
                times,
                series_attributes(series),
                NumberValue::AsInt(int(series.cache_hits)),
            )
        })
        .collect();
    push_sum(
        &mut out,
        "prompt_config.cache.hits",
        "Calls that read input tokens from the provider's prompt cache.",
        "{request}",
        prompt_cache,
    );

    let mut lookups = Vec::new();
    let mut saved = Vec::new();
    for cache in &snapshot.cache {
        let mut labels = Attributes::default();
        labels
            .string("gen_ai.prompt.name", cache.feature.as_str())
            .string("gen_ai.prompt.version", cache.version.as_str())
            .optional_string("prompt_config.cache.partition", cache.partition.as_deref());
        for (hit, count) in [(true, cache.hits), (false, cache.misses)] {
            let attributes = extended(labels.0.clone(), |more| {
                more.bool("prompt_config.cache.hit", hit);
            });
            lookups.push(number_point(
                times,
                attributes,
                NumberValue::AsInt(int(count)),
            ));
        }
        saved.push(number_point(
            times,
            labels.0,
            NumberValue::AsDouble(cache.saved_usd),
        ));
    }
    push_sum(
        &mut out,
        "prompt_config.response_cache.lookups",
        "Response cache lookups, hits and misses.",
        "{lookup}",
        lookups,
    );
    push_sum(
        &mut out,
        "prompt_config.response_cache.saved",
        "What the answers served from the response cache originally cost, in US dollars.",
        "USD",
        saved,
    );

    let breakers = snapshot
        .breakers
        .iter()
        .map(|breaker| {
            let mut attributes = Attributes::default();
            attributes.string("prompt_config.breaker", breaker.breaker.as_str());
            number_point(
                times,
                attributes.0,
                NumberValue::AsInt(i64::from(breaker.gauge)),
            )
        })
        .collect();
    push_gauge(
        &mut out,
        "prompt_config.circuit_breaker.state",
        "State of each circuit breaker: 0 closed, 1 half-open, 2 open.",
        "1",
        breakers,
    );

    let spend = budgets
        .iter()
        .filter(|budget| budget.limit_usd > 0.0)
        .map(|budget| {
            let mut attributes = Attributes::default();
            attributes
                .string("prompt_config.budget.scope", budget.scope.as_str())
                .string("prompt_config.budget.period", budget.period.as_str());
            let ratio = (budget.settled_usd + budget.reserved_usd) / budget.limit_usd;
            number_point(times, attributes.0, NumberValue::AsDouble(ratio))
        })
        .collect();
    push_gauge(
        &mut out,
        "prompt_config.budget.spend_ratio",
        "Spend of each budget's current period over its limit: (settled + reserved) / limit; 1 is the limit.",
        "1",
        spend,
    );

    let invalid = snapshot
        .output
        .iter()
        .map(|output| {
            let mut attributes = Attributes::default();
            attributes
                .string("gen_ai.prompt.name", output.feature.as_str())
                .string("gen_ai.prompt.version", output.version.as_str())
                .string("gen_ai.provider.name", output.provider.as_str())
                .string("gen_ai.request.model", output.model.as_str());
            number_point(
                times,
                attributes.0,
                NumberValue::AsInt(int(output.invalid_outputs)),
            )
        })
        .collect();
    push_sum(
        &mut out,
        "prompt_config.output.invalid_outputs",
        "Answers that broke the version's output schema or tools.",
        "{answer}",
        invalid,
    );
    let dropped = vec![number_point(
        times,
        Vec::new(),
        NumberValue::AsInt(int(snapshot.dropped_events)),
    )];
    push_sum(
        &mut out,
        "prompt_config.telemetry.dropped_events",
        "Telemetry events dropped because the writer's queue was full.",
        "{event}",
        dropped,
    );
    let delivery = snapshot.otlp;
    let exported = counts_by(
        times,
        "prompt_config.otlp.signal",
        [
            ("traces", delivery.spans_exported),
            ("logs", delivery.log_records_exported),
            ("metrics", delivery.metric_points_exported),
        ],
    );
    push_sum(
        &mut out,
        "prompt_config.otlp.exported",
        "Spans, log records and metric data points the collector accepted.",
        "{item}",
        exported,
    );
    let otlp_dropped = counts_by(
        times,
        "prompt_config.otlp.reason",
        [
            ("queue_full", delivery.dropped_queue_full),
            ("rejected", delivery.dropped_rejected),
            ("failed", delivery.dropped_failed),
        ],
    );
    push_sum(
        &mut out,
        "prompt_config.otlp.dropped",
        "What the OTLP exporter dropped, by reason (queue_full counts telemetry records).",
        "{item}",
        otlp_dropped,
    );
    let degraded = vec![number_point(
        times,
        Vec::new(),
        NumberValue::AsInt(int(snapshot.state_degraded)),
    )];
    push_gauge(
        &mut out,
        "prompt_config.state.degraded",
        "1 while the fleet's shared state (Redis) is unavailable, else 0.",
        "1",
        degraded,
    );
    out
}

/// `base` with the attributes `add` appends.
fn extended(base: Vec<KeyValue>, add: impl FnOnce(&mut Attributes)) -> Vec<KeyValue> {
    let mut attributes = Attributes(base);
    add(&mut attributes);
    attributes.0
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The labels of a request series: the GenAI operation, provider and model, and ours.
fn series_attributes(series: &RequestSnapshot) -> Vec<KeyValue> {
    let mut attributes = Attributes::default();
    attributes
        .string("gen_ai.operation.name", "chat")
        .string("gen_ai.provider.name", series.provider.as_str())
        .string("gen_ai.request.model", series.model.as_str())
        .string("gen_ai.prompt.name", series.feature.as_str())
        .string("gen_ai.prompt.version", series.version.as_str())
        .optional_string("prompt_config.variant", series.variant.as_deref());
    attributes.0
}

fn histogram_point(
    times: Times,
    attributes: Vec<KeyValue>,
    histogram: &HistogramSnapshot,
    bounds: &[f64],
) -> HistogramDataPoint {
    // OTLP wants one count more than bounds, or none: a series with no observation of this
    // kind (a failed call's token usage) sends zeros.
    let bucket_counts = if histogram.bucket_counts.len() == bounds.len() + 1 {
        histogram.bucket_counts.clone()
    } else {
        vec![0; bounds.len() + 1]
    };
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
        count: histogram.count,
        sum: Some(histogram.sum),
        bucket_counts,
        explicit_bounds: bounds.to_vec(),
        ..HistogramDataPoint::default()
    }
}

/// One integer point per `(label, count)`, the label under attribute `key`.
fn counts_by<const N: usize>(
    times: Times,
    key: &str,
    counts: [(&str, u64); N],
) -> Vec<NumberDataPoint> {
    counts
        .into_iter()
        .map(|(label, count)| {
            let mut attributes = Attributes::default();
            attributes.string(key, label);
            number_point(times, attributes.0, NumberValue::AsInt(int(count)))
        })
        .collect()
}

fn number_point(times: Times, attributes: Vec<KeyValue>, value: NumberValue) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
        value: Some(value),
        ..NumberDataPoint::default()
    }
}

fn metric(name: &str, description: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        data: Some(data),
        ..Metric::default()
    }
}

fn push_histogram(
    out: &mut Vec<Metric>,
    name: &str,
    description: &str,
    unit: &str,
    points: Vec<HistogramDataPoint>,
) {
    if !points.is_empty() {
        out.push(metric(
            name,
            description,
            unit,
            Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ));
    }
}

fn push_sum(
    out: &mut Vec<Metric>,
    name: &str,
    description: &str,
    unit: &str,
    points: Vec<NumberDataPoint>,
) {
    if !points.is_empty() {
        out.push(metric(
            name,
            description,
            unit,
            Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        ));
    }
}

fn push_gauge(
    out: &mut Vec<Metric>,
    name: &str,
    description: &str,
    unit: &str,
    points: Vec<NumberDataPoint>,
) {
    if !points.is_empty() {
        out.push(metric(
            name,
            description,
            unit,
            Data::Gauge(Gauge {
                data_points: points,
            }),
        ));
    }
}
