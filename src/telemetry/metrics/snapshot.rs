//! The plain-data view of the metrics: [`MetricsSnapshot`] and the per-series snapshots it holds,
//! and how a request series copied out of its lock becomes a [`RequestSnapshot`] (counts, sums and
//! nearest-rank latency percentiles). These types are public and serializable, so their shapes
//! are a contract; recording and collecting stay in the parent module.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::series::{Histogram, nearest_rank_milliseconds};
use super::{CacheSnapshot, CollectedRequest, OutputSnapshot, RequestLabels, present};
use crate::client::BreakerState;

/// Everything recorded so far, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// One entry per request series, sorted by labels.
    pub requests: Vec<RequestSnapshot>,
    /// One entry per resolve series, sorted by labels.
    pub resolves: Vec<ResolveSnapshot>,
    /// One entry per feedback series, sorted by labels.
    pub feedback: Vec<FeedbackSnapshot>,
    /// One entry per breaker, sorted by name.
    pub breakers: Vec<BreakerSnapshot>,
    /// Telemetry events dropped because the writer's queue was full.
    pub dropped_events: u64,
    /// `prompt_config.state.degraded`: 1 while the fleet's shared state (Redis) is unavailable
    /// and the process serves from local state, else 0 (always 0 with the memory backend).
    #[serde(default)]
    pub state_degraded: u64,
    /// How often the shared state became degraded since the engine opened.
    #[serde(default)]
    pub state_degradations: u64,
    /// Response cache lookups and savings, by feature, version and partition.
    #[serde(default)]
    pub cache: Vec<CacheSnapshot>,
    /// Structured-output answers, invalid outputs and repairs, by feature, version, provider
    /// and model.
    #[serde(default)]
    pub output: Vec<OutputSnapshot>,
    /// The OTLP exporter's delivery: exported, dropped (by reason) and retried.
    #[serde(default)]
    pub otlp: super::OtlpSnapshot,
    /// Alert deliveries by channel and outcome (`sent`, `failed`).
    #[serde(default)]
    pub alert_deliveries: Vec<super::AlertDeliverySnapshot>,
}

impl MetricsSnapshot {
    /// The request series with exactly these labels, if any request was recorded under them.
    pub fn request(&self, labels: &RequestLabels<'_>) -> Option<&RequestSnapshot> {
        self.requests.iter().find(|series| {
            series.feature == labels.feature
                && series.version == labels.version
                && series.variant.as_deref() == present(labels.variant)
                && series.provider == labels.provider
                && series.model == labels.model
        })
    }
}

/// The totals of one request series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSnapshot {
    /// The feature.
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// The experiment variant, if any.
    pub variant: Option<String>,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Calls, successful or not.
    pub requests: u64,
    /// Successful calls.
    pub successes: u64,
    /// Failed calls.
    pub errors: u64,
    /// Failed calls by `error.type`.
    pub errors_by_type: BTreeMap<String, u64>,
    /// Nearest-rank latency percentiles over the most recent
    /// [`RECENT_DURATIONS`](super::RECENT_DURATIONS) calls.
    pub latency: LatencyPercentiles,
    /// All input tokens, cache reads and writes included (as
    /// [`Usage::input_tokens`](crate::client::Usage::input_tokens)).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Cost in USD, estimated parts included.
    pub cost_usd: f64,
    /// The part of `cost_usd` that was estimated (no usage reported, or no price).
    #[serde(default)]
    pub estimated_cost_usd: f64,
    /// Successful calls whose cost was estimated.
    #[serde(default)]
    pub cost_estimated_requests: u64,
    /// Calls that read anything from the prompt cache.
    pub cache_hits: u64,
    /// Streamed calls that received text (`Engine::stream`).
    #[serde(default)]
    pub streams: u64,
    /// The mean time to the first chunk of those streams, in milliseconds (0 without streams).
    #[serde(default)]
    pub mean_time_to_first_chunk_ms: f64,
    /// The mean gap between chunks after the first, in milliseconds (0 without one).
    #[serde(default)]
    pub mean_time_per_output_chunk_ms: f64,
    /// `gen_ai.client.operation.duration` of every call, in seconds, over
    /// [`DURATION_BUCKETS_SECONDS`](super::DURATION_BUCKETS_SECONDS) (the OTLP exporter sends it).
    #[serde(default)]
    pub duration: HistogramSnapshot,
    /// `gen_ai.client.token.usage` with `gen_ai.token.type` `input`, per successful call, over
    /// [`TOKEN_BUCKETS`](super::TOKEN_BUCKETS).
    #[serde(default)]
    pub input_token_usage: HistogramSnapshot,
    /// `gen_ai.client.token.usage` with `gen_ai.token.type` `output`.
    #[serde(default)]
    pub output_token_usage: HistogramSnapshot,
    /// `gen_ai.client.operation.time_to_first_chunk` of streamed calls, in seconds, over the
    /// duration buckets.
    #[serde(default)]
    pub time_to_first_chunk: HistogramSnapshot,
}

/// A cumulative explicit-bucket histogram: how many observations fell in each bucket (not
/// cumulative across buckets: one more count than the bounds, the last being the overflow
/// above the highest bound; a value equal to a bound counts in that bound's bucket), their sum
/// and their count, in the series' unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// Observations per bucket; empty before any observation was recorded.
    pub bucket_counts: Vec<u64>,
    /// The sum of the observations.
    pub sum: f64,
    /// The number of observations.
    pub count: u64,
}

impl From<&Histogram> for HistogramSnapshot {
    fn from(histogram: &Histogram) -> HistogramSnapshot {
        if histogram.count == 0 {
            return HistogramSnapshot::default();
        }
        HistogramSnapshot {
            bucket_counts: histogram.bucket_counts.to_vec(),
            sum: histogram.sum,
            count: histogram.count,
        }
    }
}

/// Latency percentiles of one series, in milliseconds, over its most recent calls only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyPercentiles {
    /// How many recent calls they are computed from (at most
    /// [`RECENT_DURATIONS`](super::RECENT_DURATIONS)).
    pub samples: usize,
    /// The median.
    pub p50_ms: f64,
    /// The 95th percentile.
    pub p95_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
}

/// The resolve count of one feature, version and variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveSnapshot {
    /// The feature.
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// The experiment variant, if any.
    pub variant: Option<String>,
    /// Resolves.
    pub resolves: u64,
}

/// The feedback totals of one metric, for one feature, version and variant when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSnapshot {
    /// The feature, when the request was still known.
    pub feature: Option<String>,
    /// The prompt version, when the request was still known.
    pub version: Option<String>,
    /// The experiment variant, when there was one and the request was still known.
    pub variant: Option<String>,
    /// The metric (`thumbs_up`, `rating`, ...).
    pub metric: String,
    /// Values recorded.
    pub count: u64,
    /// Their sum (for a boolean metric, the number of `true`s).
    pub sum: f64,
    /// Their mean (for a boolean metric, the success rate); 0 when there are none.
    pub mean: f64,
}

/// The state of one circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// The breaker: a provider, or `provider/model`.
    pub breaker: String,
    /// `closed`, `half_open` or `open`.
    pub state: String,
    /// The exposed gauge value: 0 closed, 1 half-open, 2 open.
    pub gauge: u8,
}

pub(super) fn request_snapshot(collected: CollectedRequest) -> RequestSnapshot {
    let CollectedRequest {
        key,
        totals,
        mut recent_nanoseconds,
    } = collected;
    let [feature, version, variant, provider, model] = key.0;
    recent_nanoseconds.sort_unstable();
    let errors = totals.error_count();
    RequestSnapshot {
        feature: feature.unwrap_or_default(),
        version: version.unwrap_or_default(),
        variant,
        provider: provider.unwrap_or_default(),
        model: model.unwrap_or_default(),
        requests: totals.successes + errors,
        successes: totals.successes,
        errors,
        latency: LatencyPercentiles {
            samples: recent_nanoseconds.len(),
            p50_ms: nearest_rank_milliseconds(&recent_nanoseconds, 50),
            p95_ms: nearest_rank_milliseconds(&recent_nanoseconds, 95),
            p99_ms: nearest_rank_milliseconds(&recent_nanoseconds, 99),
        },
        errors_by_type: totals.errors,
        input_tokens: totals.input_tokens,
        output_tokens: totals.output_tokens,
        cache_read_input_tokens: totals.cache_read_input_tokens,
        cost_usd: totals.cost_usd,
        estimated_cost_usd: totals.estimated_cost_usd,
        cost_estimated_requests: totals.cost_estimated_requests,
        cache_hits: totals.cache_hits,
        streams: totals.streams,
        mean_time_to_first_chunk_ms: mean_ms(&totals.time_to_first_chunk),
        mean_time_per_output_chunk_ms: mean_ms(&totals.time_per_output_chunk),
        duration: HistogramSnapshot::from(&totals.duration),
        input_token_usage: HistogramSnapshot::from(&totals.input_token_usage),
        output_token_usage: HistogramSnapshot::from(&totals.output_token_usage),
        time_to_first_chunk: HistogramSnapshot::from(&totals.time_to_first_chunk),
    }
}

fn mean_ms(histogram: &Histogram) -> f64 {
    if histogram.count == 0 {
        0.0
    } else {
        histogram.sum / histogram.count as f64 * 1000.0
    }
}

/// The gauge value of a breaker state, ordered by how much traffic it stops.
pub(super) fn breaker_gauge(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}
